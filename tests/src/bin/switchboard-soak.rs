//! The fault-injection soak: the scenarios of `tests/tests/robustness.rs`
//! with many more rounds, over and over with successive seeds, for
//! `--minutes N`; then a table of operations, faults injected, checks made
//! and violations (zero expected). Exits 1 on any violation.
//!
//! Usage: `switchboard-soak [--minutes N] [--seed S] [--only SCENARIO]`
//! (needs the workspace's binaries built: `cargo build --workspace --bins`).
//! `--only registry-crash` (or `agent-faults`, `watcher-faults`,
//! `netns-partition`, `disk-full`) repeats one scenario, e.g. to reproduce
//! a failure with its seed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;
use std::time::Duration;

use switchboard_tests::faults::scenario::{
    agent_faults, disk_full, netns_partition, registry_crashes, watcher_faults,
};
use switchboard_tests::faults::{Report, seed, table};
use tokio::time::Instant;

/// The scenarios in the order the soak cycles through them.
const SCENARIOS: [&str; 5] =
    ["registry-crash", "agent-faults", "watcher-faults", "netns-partition", "disk-full"];

/// Command-line settings.
struct Arguments {
    minutes: f64,
    seed: u64,
    only: Option<String>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let arguments = match arguments() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!(
                "switchboard-soak: {message}\n\
                 usage: switchboard-soak [--minutes N] [--seed S] [--only SCENARIO]"
            );
            return ExitCode::from(2);
        }
    };
    let deadline = Instant::now() + Duration::from_secs_f64(arguments.minutes * 60.0);
    let mut reports: Vec<Report> = Vec::new();
    let mut panicked = Vec::new();
    let mut skipped = Vec::new();
    let mut seed = arguments.seed;
    let mut turn = 0usize;
    // At least one run, however short the soak.
    while turn == 0 || Instant::now() < deadline {
        let scenario = match &arguments.only {
            Some(only) => only.clone(),
            None => SCENARIOS[turn % SCENARIOS.len()].to_owned(),
        };
        turn += 1;
        if skipped.contains(&scenario) {
            continue;
        }
        let mut task = tokio::spawn(run(scenario.clone(), seed));
        let finished = tokio::select! {
            finished = &mut task => finished,
            () = interrupted() => {
                // Dropping the run kills its child processes.
                task.abort();
                let _ = task.await;
                eprintln!("interrupted during {scenario} (seed {seed})");
                break;
            }
        };
        match finished {
            Ok(Ok(report)) => {
                eprintln!("{}", report.summary());
                for violation in &report.violations {
                    eprintln!("  VIOLATION {violation}");
                }
                reports.push(report);
            }
            Ok(Err(reason)) => {
                eprintln!("{scenario} skipped: {reason}");
                skipped.push(scenario);
                if arguments.only.is_some() {
                    break;
                }
            }
            Err(error) => {
                eprintln!("{scenario} with seed {seed} panicked: {error}");
                panicked.push((scenario, seed));
            }
        }
        seed = seed.wrapping_add(1);
    }
    println!("{}", table(&reports));
    let violations: usize = reports.iter().map(|r| r.violations.len()).sum();
    println!("violations: {violations}; runs that panicked: {panicked:?}; skipped: {skipped:?}");
    if violations > 0 || !panicked.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// SIGINT or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// One run of `scenario`, long form.
async fn run(scenario: String, seed: u64) -> Result<Report, String> {
    match scenario.as_str() {
        "registry-crash" => Ok(registry_crashes(seed, 60).await),
        "agent-faults" => Ok(agent_faults(seed, 40).await),
        "watcher-faults" => Ok(watcher_faults(seed, 15).await),
        "netns-partition" => netns_partition(seed, 20).await,
        "disk-full" => disk_full(seed).await.map(|outcome| outcome.report),
        other => Err(format!("unknown scenario {other:?} (one of {SCENARIOS:?})")),
    }
}

fn arguments() -> Result<Arguments, String> {
    let mut parsed = Arguments { minutes: 10.0, seed: seed(), only: None };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag}: bad value {value:?}");
        match flag.as_str() {
            "--minutes" => parsed.minutes = value.parse().map_err(|_| bad())?,
            "--seed" => parsed.seed = value.parse().map_err(|_| bad())?,
            "--only" if SCENARIOS.contains(&value.as_str()) => parsed.only = Some(value),
            "--only" => return Err(format!("--only: one of {SCENARIOS:?}")),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(parsed)
}

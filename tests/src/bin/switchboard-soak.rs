//! The fault-injection soak: the scenarios of `tests/tests/robustness.rs`
//! with many more rounds, over and over with successive seeds, for
//! `--minutes N`; then a table of operations, faults injected and
//! violations (zero expected). Exits 1 on any violation.
//!
//! Usage: `switchboard-soak [--minutes N] [--seed S]` (needs the workspace's
//! binaries built: `cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;
use std::time::Duration;

use switchboard_tests::faults::scenario::{
    agent_faults, disk_full, registry_crashes, watcher_faults,
};
use switchboard_tests::faults::{Report, seed, table};
use tokio::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let (minutes, mut seed) = match arguments() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!(
                "switchboard-soak: {message}\nusage: switchboard-soak [--minutes N] [--seed S]"
            );
            return ExitCode::from(2);
        }
    };
    let deadline = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let mut reports: Vec<Report> = Vec::new();
    let mut failed = Vec::new();
    match disk_full(seed).await {
        Ok(outcome) => {
            eprintln!("{}", outcome.report.summary());
            reports.push(outcome.report);
        }
        Err(reason) => eprintln!("disk-full skipped: {reason}"),
    }
    let mut turn = 0usize;
    while Instant::now() < deadline {
        seed = seed.wrapping_add(1);
        let run = match turn % 3 {
            0 => tokio::spawn(registry_crashes(seed, 60)),
            1 => tokio::spawn(agent_faults(seed, 40)),
            _ => tokio::spawn(watcher_faults(seed, 15)),
        };
        turn += 1;
        match run.await {
            Ok(report) => {
                eprintln!("{}", report.summary());
                for violation in &report.violations {
                    eprintln!("  VIOLATION {violation}");
                }
                reports.push(report);
            }
            Err(error) => {
                eprintln!("run with seed {seed} panicked: {error}");
                failed.push(seed);
            }
        }
    }
    println!("{}", table(&reports));
    let violations: usize = reports.iter().map(|r| r.violations.len()).sum();
    println!("violations: {violations}; runs that panicked: {failed:?}");
    if violations > 0 || !failed.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn arguments() -> Result<(f64, u64), String> {
    let mut minutes = 10.0;
    let mut first_seed = seed();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--minutes" => {
                minutes = value.parse().map_err(|_| format!("--minutes: bad number {value:?}"))?;
            }
            "--seed" => {
                first_seed = value.parse().map_err(|_| format!("--seed: bad number {value:?}"))?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok((minutes, first_seed))
}

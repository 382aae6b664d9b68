//! `switchboard bench …`: a thin launcher of the load generator. The load
//! generator is its own binary, `switchboard-bench`, so that none of it (its
//! histograms, signals, helper processes) is part of what operators deploy;
//! this command only runs the `switchboard-bench` found next to this binary
//! with the same arguments, and says how to get it when it is not there.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use clap::Args;

/// The load generator's binary name.
const BENCH_BIN: &str = "switchboard-bench";

/// Flags of `switchboard bench`: everything goes to `switchboard-bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Arguments of `switchboard-bench` (`switchboard bench --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

/// Replaces this process with `switchboard-bench ARGS…`; returns only when
/// that cannot be done.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let this = std::env::current_exe().context("cannot find the switchboard binary")?;
    let bench = this.with_file_name(BENCH_BIN);
    if !bench.is_file() {
        return Err(missing(&bench));
    }
    let error = Command::new(&bench).args(&args.args).exec();
    Err(error).with_context(|| format!("cannot run {}", bench.display()))
}

fn missing(bench: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "bench: the load generator is a separate binary, {BENCH_BIN}, and there is none at {} \
         (next to this one): build it with `cargo build --release -p switchboard-bench`, or run \
         `cargo run --release -p switchboard-bench -- <scenario>`",
        bench.display()
    )
}

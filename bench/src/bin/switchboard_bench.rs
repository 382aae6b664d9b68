//! `switchboard-bench`: the load generator. `main` only parses the command
//! line and hands over to the library; see `switchboard-bench --help`.

use std::process::ExitCode;

use clap::Parser;
use switchboard_bench::BenchError;
use switchboard_bench::cli::BenchArgs;

/// mimalloc instead of glibc's allocator: a forwarded call allocates and
/// frees many small buffers across threads, where glibc's arenas spent a
/// sixth of the gateway's CPU (`malloc`, `_int_free`, `malloc_consolidate`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure Switchboard (or a peer) on this machine: heartbeat, register,
/// watch-fanout, rewire, gateway, restart.
#[derive(Debug, Parser)]
#[command(name = "switchboard-bench", version, about)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> ExitCode {
    switchboard_tls::ensure_crypto_provider();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard-bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(switchboard_bench::cli::run(cli.args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard-bench: {error}");
            // 2: the options were wrong and nothing was measured.
            ExitCode::from(if matches!(error, BenchError::Option(_)) { 2 } else { 1 })
        }
    }
}

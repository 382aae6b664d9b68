//! The `everything` example agent (see `switchboard_examples::everything`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    switchboard_examples::run_main("everything", switchboard_examples::everything::start).await
}

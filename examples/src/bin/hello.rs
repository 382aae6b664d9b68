//! The `hello` example agent (see `switchboard_examples::hello`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    switchboard_examples::run_main("hello", switchboard_examples::hello::start).await
}

//! The `date-service` example agent (see `switchboard_examples::date_service`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    switchboard_examples::run_main("date-service", switchboard_examples::date_service::start).await
}

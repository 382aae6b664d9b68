//! `switchboard whoami`: the identity and role the registry sees for the
//! presented token (or certificate).

use clap::Args;
use serde_json::json;
use switchboard_proto::v1::WhoAmIRequest;
use switchboard_proto::v1::access_service_client::AccessServiceClient;

use super::common::{self, Output, OutputFlag, RegistryFlag};
use super::token::{role_text, token_json};

/// Flags of `switchboard whoami`.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    registry: RegistryFlag,
    #[command(flatten)]
    output: OutputFlag,
}

/// Asks the registry who we are.
pub async fn run(args: WhoamiArgs) -> anyhow::Result<()> {
    let mut client = AccessServiceClient::new(common::registry(&args.registry).await?);
    let answer = client
        .who_am_i(WhoAmIRequest {})
        .await
        .map_err(|status| common::status_error(&args.registry.registry, &status))?
        .into_inner();
    match args.output.output {
        Output::Json => common::print_json(&json!({
            "identity": answer.identity,
            "role": role_text(answer.role()),
            "token": answer.token.as_ref().map(token_json),
        })),
        Output::Table => {
            let token =
                answer.token.as_ref().map(|t| format!(" (token {})", t.id)).unwrap_or_default();
            println!("{} role {}{token}", answer.identity, role_text(answer.role()));
        }
    }
    Ok(())
}

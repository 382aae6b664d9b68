//! `switchboard key create|list|revoke`: API keys for machine clients of
//! the gateway — registry tokens of role `client`, whose scopes say what
//! the key may do at a gateway (`tools:call`, `resources:read`,
//! `prompts:get`). The registry stores only a hash; the secret is printed
//! once, at creation. Managing keys takes an admin's registry token
//! (`--token` / `SWITCHBOARD_TOKEN`).

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use switchboard_proto::prost_types;
use switchboard_proto::v1::access_service_client::AccessServiceClient;
use switchboard_proto::v1::{
    CreateTokenRequest, ListTokensRequest, RevokeTokenRequest, Role, TokenInfo,
};

use super::ExitCode;
use super::common::{self, Output, OutputFlag, RegistryFlag};
use super::render::time;
use super::table::Table;

/// Flags of `switchboard key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
    /// The registry, and the admin's token (`--token`).
    #[command(flatten)]
    registry: RegistryFlag,
    #[command(flatten)]
    output: OutputFlag,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Issue a key; its secret is printed once.
    Create {
        /// The key's name (what policy rules and audit records call it: `key:<name>`).
        #[arg(long)]
        name: String,
        /// Scopes, comma-separated [default: tools:call].
        #[arg(long, value_delimiter = ',', default_value = "tools:call")]
        scopes: Vec<String>,
        /// Lifetime (`30d`, `12h`); never expires when absent.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// List keys (never their secrets).
    List {
        /// Also revoked and expired keys.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a key by id (or unique name): refused at every gateway within a second.
    Revoke {
        /// The key's id or name.
        id: String,
    },
}

/// Runs a `key` command.
pub async fn run(args: KeyArgs) -> anyhow::Result<()> {
    let address = &args.registry.registry;
    let channel = common::registry(&args.registry).await?;
    let mut client = AccessServiceClient::new(channel);
    let fail = |status: tonic::Status| common::status_error(address, &status);
    match args.command {
        KeyCommand::Create { name, scopes, ttl } => {
            let ttl = ttl
                .map(|text| ttl_of(&text))
                .transpose()
                .map_err(|e| ExitCode::error(ExitCode::USAGE, format!("--ttl: {e}")))?;
            let message = CreateTokenRequest {
                name,
                role: Role::Client as i32,
                scopes,
                ttl: ttl.and_then(|d| prost_types::Duration::try_from(d).ok()),
                ..CreateTokenRequest::default()
            };
            let created = client.create_token(message).await.map_err(fail)?;
            let created = created.into_inner();
            let info = created.token.unwrap_or_default();
            match args.output.output {
                Output::Json => {
                    let mut document = key_json(&info);
                    document["secret"] = created.secret.clone().into();
                    common::print_json(&document);
                }
                Output::Table => {
                    println!(
                        "key {:?} ({}) created; its secret, shown only now:",
                        info.name, info.id
                    );
                    println!("{}", created.secret);
                }
            }
        }
        KeyCommand::List { all } => {
            let message = ListTokensRequest { include_inactive: all };
            let listed = client.list_tokens(message).await.map_err(fail)?.into_inner();
            let keys: Vec<&TokenInfo> =
                listed.tokens.iter().filter(|t| t.role() == Role::Client).collect();
            match args.output.output {
                Output::Json => common::print_json(&Value::from(
                    keys.iter().map(|k| key_json(k)).collect::<Vec<_>>(),
                )),
                Output::Table => {
                    let mut table =
                        Table::new(&["ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "REVOKED"]);
                    for key in keys {
                        let at = |t: Option<&prost_types::Timestamp>| {
                            time(t).unwrap_or_else(|| "-".into())
                        };
                        table.row(vec![
                            key.id.clone(),
                            key.name.clone(),
                            key.scopes.join(","),
                            at(key.created_at.as_ref()),
                            at(key.expires_at.as_ref()),
                            at(key.revoked_at.as_ref()),
                        ]);
                    }
                    print!("{}", table.render());
                }
            }
        }
        KeyCommand::Revoke { id } => {
            let revoked = client.revoke_token(RevokeTokenRequest { id }).await.map_err(fail)?;
            let info = revoked.into_inner().token.unwrap_or_default();
            match args.output.output {
                Output::Json => common::print_json(&key_json(&info)),
                Output::Table => println!("key {:?} ({}) revoked", info.name, info.id),
            }
        }
    }
    Ok(())
}

/// A key's lifetime: a configuration duration, or whole days (`30d`).
fn ttl_of(text: &str) -> Result<std::time::Duration, String> {
    match text.strip_suffix('d').map(str::parse::<u64>) {
        Some(Ok(days)) => Ok(std::time::Duration::from_secs(days.saturating_mul(86_400))),
        _ => crate::duration::parse(text),
    }
}

fn key_json(key: &TokenInfo) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "scopes": key.scopes,
        "created_at": time(key.created_at.as_ref()),
        "expires_at": time(key.expires_at.as_ref()),
        "revoked_at": time(key.revoked_at.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_take_days_too() {
        assert_eq!(ttl_of("30d"), Ok(std::time::Duration::from_secs(30 * 86_400)));
        assert_eq!(ttl_of("12h"), Ok(std::time::Duration::from_secs(12 * 3600)));
        assert!(ttl_of("soon").is_err());
    }
}

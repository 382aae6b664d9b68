//! `switchboard token create|list|revoke`: the registry's bearer tokens
//! (admin only). A secret is printed once, by `create`; the registry keeps
//! only its hash.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use switchboard_proto::v1::access_service_client::AccessServiceClient;
use switchboard_proto::v1::{
    CreateTokenRequest, ListTokensRequest, RevokeTokenRequest, Role, TokenInfo,
};

use super::ExitCode;
use super::common::{self, Output, OutputFlag, RegistryFlag};
use super::render::{or_dash, time};
use super::table::Table;

/// Flags of `switchboard token`.
#[derive(Debug, Args)]
pub struct TokenCmd {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a token and print its secret (shown only this once).
    Create(CreateArgs),
    /// List tokens (never their secrets).
    List(ListArgs),
    /// Revoke a token: its calls and open streams are refused from now on.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// Name of the token; tokens with one name are one identity (`token:<name>`).
    #[arg(long)]
    name: String,
    /// What the token may do.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// Agent names an agent token may register as (globs, `*` wildcard; repeat or comma-separate).
    #[arg(long = "agent", value_delimiter = ',')]
    agent_names: Vec<String>,
    /// Capabilities an agent token may provide (globs; repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    provides: Vec<String>,
    /// Gateway scopes of a client token (`tools:call`; repeat or comma-separate).
    #[arg(long = "scope", value_delimiter = ',')]
    scopes: Vec<String>,
    /// Lifetime, e.g. 12h, 30d [default: never expires].
    #[arg(long)]
    ttl: Option<String>,
    #[command(flatten)]
    registry: RegistryFlag,
    #[command(flatten)]
    output: OutputFlag,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Also list revoked and expired tokens.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    registry: RegistryFlag,
    #[command(flatten)]
    output: OutputFlag,
}

#[derive(Debug, Args)]
struct RevokeArgs {
    /// The token's id (or its name, when only one active token has it).
    id: String,
    #[command(flatten)]
    registry: RegistryFlag,
    #[command(flatten)]
    output: OutputFlag,
}

/// A role on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    /// Everything: tokens, deregister anyone.
    Admin,
    /// Read everything, drain (deregister) agents.
    Operator,
    /// Read everything.
    Viewer,
    /// Register and heartbeat its own agents, within --agent and --provides.
    Agent,
    /// A gateway API key: no registry rights, --scope says what it may do at a gateway.
    Client,
}

/// Runs a token command.
pub async fn run(command: TokenCmd) -> anyhow::Result<()> {
    match command.command {
        TokenCommand::Create(args) => create(args).await,
        TokenCommand::List(args) => list(args).await,
        TokenCommand::Revoke(args) => revoke(args).await,
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let ttl = match &args.ttl {
        Some(text) => {
            let ttl = crate::duration::parse(text)
                .map_err(|e| ExitCode::error(ExitCode::USAGE, format!("--ttl: {e}")))?;
            Some(
                switchboard_proto::prost_types::Duration::try_from(ttl)
                    .map_err(|e| ExitCode::error(ExitCode::USAGE, format!("--ttl: {e}")))?,
            )
        }
        None => None,
    };
    let request = CreateTokenRequest {
        name: args.name.clone(),
        role: Role::from(args.role) as i32,
        agent_names: args.agent_names.clone(),
        provides: args.provides.clone(),
        scopes: args.scopes.clone(),
        ttl,
    };
    let mut client = AccessServiceClient::new(common::registry(&args.registry).await?);
    let answer = client
        .create_token(request)
        .await
        .map_err(|status| common::status_error(&args.registry.registry, &status))?
        .into_inner();
    let token = answer.token.unwrap_or_default();
    match args.output.output {
        Output::Json => {
            common::print_json(&json!({ "token": token_json(&token), "secret": answer.secret }));
        }
        Output::Table => {
            print!("{}", tokens_table(std::slice::from_ref(&token)));
            eprintln!("the secret below is shown only now: store it (e.g. in a 0600 file)");
            println!("{}", answer.secret);
        }
    }
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let mut client = AccessServiceClient::new(common::registry(&args.registry).await?);
    let tokens = client
        .list_tokens(ListTokensRequest { include_inactive: args.all })
        .await
        .map_err(|status| common::status_error(&args.registry.registry, &status))?
        .into_inner()
        .tokens;
    match args.output.output {
        Output::Json => {
            common::print_json(
                &json!({ "tokens": tokens.iter().map(token_json).collect::<Vec<_>>() }),
            );
        }
        Output::Table => print!("{}", tokens_table(&tokens)),
    }
    Ok(())
}

async fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let mut client = AccessServiceClient::new(common::registry(&args.registry).await?);
    let token = client
        .revoke_token(RevokeTokenRequest { id: args.id.clone() })
        .await
        .map_err(|status| common::status_error(&args.registry.registry, &status))?
        .into_inner()
        .token
        .unwrap_or_default();
    match args.output.output {
        Output::Json => common::print_json(&json!({ "token": token_json(&token) })),
        Output::Table => println!("revoked token {} ({})", token.id, token.name),
    }
    Ok(())
}

/// A token for scripts (never a secret: the record has none).
pub fn token_json(token: &TokenInfo) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "role": role_text(token.role()),
        "agent_names": token.agent_names,
        "provides": token.provides,
        "scopes": token.scopes,
        "created_at": time(token.created_at.as_ref()),
        "expires_at": time(token.expires_at.as_ref()),
        "revoked_at": time(token.revoked_at.as_ref()),
    })
}

fn tokens_table(tokens: &[TokenInfo]) -> String {
    let mut table =
        Table::new(&["ID", "NAME", "ROLE", "AGENTS", "PROVIDES", "SCOPES", "EXPIRES", "REVOKED"]);
    for token in tokens {
        table.row(vec![
            token.id.clone(),
            token.name.clone(),
            role_text(token.role()).to_owned(),
            or_dash(&token.agent_names.join(",")),
            or_dash(&token.provides.join(",")),
            or_dash(&token.scopes.join(",")),
            time(token.expires_at.as_ref()).unwrap_or_else(|| "never".into()),
            time(token.revoked_at.as_ref()).unwrap_or_else(|| "-".into()),
        ]);
    }
    table.render()
}

/// The lowercase role name, as `--role` spells it.
pub fn role_text(role: Role) -> &'static str {
    switchboard_registry::access::role_name(role)
}

// === impl RoleArg ===

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Operator => Role::Operator,
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Agent => Role::Agent,
            RoleArg::Client => Role::Client,
        }
    }
}

//! What every operator command shares: the `--registry`, `--gateway` and
//! `--output` flags, the registry channel, and the mapping of failures to exit
//! codes.

use clap::{Args, ValueEnum};
use switchboard_client::AuthChannel;
use switchboard_proto::v1::AgentStatus;

use crate::credentials::TokenArgs;

use super::ExitCode;
use crate::settings::ClientTlsArgs;

/// Agent filters shared by `agents` and `watch` (combined with AND).
#[derive(Debug, Clone, Args)]
pub struct AgentFilter {
    /// Only agents with a tool providing this capability.
    #[arg(long)]
    pub capability: Option<String>,
    /// Only agents with a tool carrying this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only agents with this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusFilter>,
    /// Only agents with this name.
    #[arg(long)]
    pub name: Option<String>,
}

/// `--registry`: where the registry's gRPC API listens, the token to
/// present there, and how to reach it over TLS (the same CA serves for the
/// gateway where a command dials both).
#[derive(Debug, Clone, Args)]
pub struct RegistryFlag {
    /// The registry's gRPC address (`host:port` or URL), or several
    /// replicas' separated by commas: the first that answers is used.
    #[arg(long, env = "SWITCHBOARD_REGISTRY", default_value = switchboard_client::DEFAULT_REGISTRY_ADDR)]
    pub registry: String,
    /// The token sent with every call.
    #[command(flatten)]
    pub token: TokenArgs,
    /// TLS to the registry.
    #[command(flatten)]
    pub tls: ClientTlsArgs,
}

/// `--gateway`: the gateway's MCP endpoint.
#[derive(Debug, Clone, Args)]
pub struct GatewayFlag {
    /// The gateway's MCP endpoint URL [default: http://127.0.0.1:7700/mcp].
    #[arg(long, env = "SWITCHBOARD_GATEWAY", default_value_t = default_gateway_url())]
    pub gateway: String,
}

/// The MCP endpoint of a gateway on its default address.
fn default_gateway_url() -> String {
    format!("http://{}/mcp", switchboard_gateway::DEFAULT_GATEWAY_ADDR)
}

/// `--output`: for people or for scripts.
#[derive(Debug, Clone, Args)]
pub struct OutputFlag {
    /// Output format: a human table, or JSON for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, env = "SWITCHBOARD_OUTPUT")]
    pub output: Output,
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// One JSON document (for `watch`, one JSON object per line).
    Json,
}

/// A status filter on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusFilter {
    /// Heartbeats arrive on time.
    Healthy,
    /// Heartbeats are late or the heartbeat stream broke.
    Degraded,
    /// No heartbeat for `expired_after`.
    Expired,
}

impl From<StatusFilter> for AgentStatus {
    fn from(filter: StatusFilter) -> Self {
        match filter {
            StatusFilter::Healthy => AgentStatus::Healthy,
            StatusFilter::Degraded => AgentStatus::Degraded,
            StatusFilter::Expired => AgentStatus::Expired,
        }
    }
}

/// The TLS configuration for `address`, or `None`: a file that does not
/// load is a usage mistake (exit code 2) naming the file and its flag.
pub fn client_tls(
    tls: &ClientTlsArgs,
    address: &str,
) -> anyhow::Result<Option<switchboard_tls::ClientTls>> {
    tls.load(address).map_err(|error| ExitCode::error(ExitCode::USAGE, error.0))
}

/// Connects now to the first registry of the list that answers, over TLS
/// when the flags or the addresses ask for it, sending the flag's token
/// with every call: a bad entry, token or TLS file is exit code 2, none
/// reachable exit code 3.
pub async fn registry(flag: &RegistryFlag) -> anyhow::Result<AuthChannel> {
    let bearer = flag.token.bearer().map_err(|error| ExitCode::error(ExitCode::USAGE, error.0))?;
    let tls = client_tls(&flag.tls, &flag.registry)?;
    let connected = match switchboard_client::RegistryAddrs::parse(&flag.registry) {
        Ok(addrs) => {
            switchboard_client::connect_any(&addrs.with_tls(tls)).await.map(|(_, channel)| channel)
        }
        Err(error) => Err(error),
    };
    let channel = connected.map_err(|error| match error {
        switchboard_client::ConnectError::BadAddress { .. }
        | switchboard_client::ConnectError::Tls { .. } => {
            ExitCode::error(ExitCode::USAGE, error.to_string())
        }
        switchboard_client::ConnectError::Unreachable { .. } => {
            ExitCode::error(ExitCode::UNREACHABLE, error.to_string())
        }
    })?;
    Ok(bearer.channel(channel))
}

/// Maps a failed registry call to its exit code, with the registry's message.
pub fn status_error(address: &str, status: &tonic::Status) -> anyhow::Error {
    let message = status.message();
    // A plaintext HTTP/2 client on a TLS port: the connection opens, then
    // the first call fails at the transport, or is cancelled when the
    // server drops the connection.
    let transport = matches!(
        (status.code(), message),
        (tonic::Code::Unknown, "transport error")
            | (tonic::Code::Cancelled, "operation was canceled")
    ) || message.starts_with("h2 protocol error");
    if transport {
        let cause = std::error::Error::source(status)
            .map(|source| format!(": {}", switchboard_client::error_chain(source)))
            .unwrap_or_default();
        return ExitCode::error(
            ExitCode::UNREACHABLE,
            format!(
                "cannot reach the registry at {address}: {message}{cause} (if the registry serves TLS, give --tls-ca or an https:// address)"
            ),
        );
    }
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => ExitCode::error(
            ExitCode::UNREACHABLE,
            format!("cannot reach the registry at {address}: {message}"),
        ),
        tonic::Code::NotFound => ExitCode::error(ExitCode::NOT_FOUND, message),
        tonic::Code::InvalidArgument => ExitCode::error(ExitCode::USAGE, message),
        tonic::Code::Unauthenticated => ExitCode::error(
            ExitCode::DENIED,
            format!("the registry refused the credentials: {message} (see --token)"),
        ),
        tonic::Code::PermissionDenied => {
            ExitCode::error(ExitCode::DENIED, format!("not allowed: {message}"))
        }
        code => ExitCode::error(ExitCode::FAILED, format!("registry answered {code:?}: {message}")),
    }
}

/// Prints one JSON document (pretty) on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

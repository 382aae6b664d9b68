//! Channels to a registry: TCP_NODELAY (no Nagle stalls on small messages)
//! and HTTP/2 keepalive, so a dead registry is noticed without waiting for TCP.
//!
//! TLS when the caller gives a [`ClientTls`] (`--tls-ca`, …) or the address
//! is `https://` (then the system's trusted roots verify the registry);
//! plaintext otherwise.

use std::time::Duration;

use switchboard_tls::{ClientTls, ClientTlsConfig};
use tonic::transport::{Channel, Endpoint};

/// Where a registry serves gRPC unless told otherwise (defined once, in the
/// contract crate).
///
/// ```
/// assert_eq!(switchboard_client::DEFAULT_REGISTRY_ADDR, "127.0.0.1:7600");
/// ```
pub use switchboard_proto::DEFAULT_REGISTRY_ADDR;

/// A registry address that cannot be used.
///
/// ```
/// let error = switchboard_client::connect_lazy("not a uri").unwrap_err();
/// assert!(error.to_string().starts_with("bad registry address \"not a uri\""), "{error}");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The address is not a URI.
    #[error("bad registry address {address:?}: {reason}")]
    BadAddress {
        /// The address given.
        address: String,
        /// Why it is bad.
        reason: String,
    },
    /// Connecting failed.
    #[error("cannot reach the registry at {address}: {cause}")]
    Unreachable {
        /// The address given.
        address: String,
        /// The transport error with its causes (`transport error: connection refused`).
        cause: String,
    },
    /// The TLS settings cannot be used.
    #[error("registry {address}: {source}")]
    Tls {
        /// The address given.
        address: String,
        /// Which file or flag, and why.
        #[source]
        source: switchboard_tls::TlsError,
    },
}

/// `host:port` → `http://host:port`; full URIs pass through.
///
/// ```
/// use switchboard_client::endpoint_uri;
///
/// assert_eq!(endpoint_uri("127.0.0.1:7600"), "http://127.0.0.1:7600");
/// assert_eq!(endpoint_uri("https://registry.example:443"), "https://registry.example:443");
/// ```
pub fn endpoint_uri(address: &str) -> String {
    if address.contains("://") { address.to_owned() } else { format!("http://{address}") }
}

/// The TLS configuration to dial `address` with: the caller's, or the
/// system's roots for an `https://` address, or none (plaintext).
fn transport(address: &str, tls: Option<&ClientTls>) -> Result<Option<ClientTls>, ConnectError> {
    match tls {
        Some(tls) => Ok(Some(tls.clone())),
        None if address.starts_with("https://") => ClientTls::load(&ClientTlsConfig::default())
            .map(Some)
            .map_err(|source| ConnectError::Tls { address: address.to_owned(), source }),
        None => Ok(None),
    }
}

fn endpoint(address: &str, tls: bool) -> Result<Endpoint, ConnectError> {
    let bad = |reason: String| ConnectError::BadAddress { address: address.to_owned(), reason };
    let uri = match address.contains("://") {
        false if tls => format!("https://{address}"),
        _ => endpoint_uri(address),
    };
    if tls && uri.starts_with("http://") {
        return Err(bad("a TLS connection needs an https:// address (or host:port)".into()));
    }
    let endpoint = Endpoint::from_shared(uri).map_err(|e| bad(e.to_string()))?;
    Ok(endpoint
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true))
}

/// Connects now; fails when the registry is unreachable.
///
/// ```no_run
/// use switchboard_client::{ConnectError, DEFAULT_REGISTRY_ADDR, connect};
/// use switchboard_proto::v1::ListAgentsRequest;
/// use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let channel = connect(DEFAULT_REGISTRY_ADDR).await?;
/// let agents = RegistryServiceClient::new(channel).list_agents(ListAgentsRequest::default()).await?;
/// println!("{} agents", agents.into_inner().agents.len());
/// # Ok(())
/// # }
/// ```
pub async fn connect(address: &str) -> Result<Channel, ConnectError> {
    connect_with(address, None).await
}

/// [`connect`] over TLS when `tls` is given (or the address is `https://`).
pub async fn connect_with(address: &str, tls: Option<&ClientTls>) -> Result<Channel, ConnectError> {
    let tls = transport(address, tls)?;
    let endpoint = endpoint(address, tls.is_some())?;
    let connected = match &tls {
        Some(tls) => endpoint.connect_with_connector(tls.connector()).await,
        None => endpoint.connect().await,
    };
    connected.map_err(|error| {
        let mut cause = error_chain(&error);
        if tls.is_none() && !cause.contains("refused") && !cause.contains("timed out") {
            // A TLS port answers a plaintext HTTP/2 preface by closing.
            cause.push_str(" (if the registry serves TLS, give --tls-ca or an https:// address)");
        }
        ConnectError::Unreachable { address: address.to_owned(), cause }
    })
}

/// A channel that connects on first use and reconnects by itself.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), switchboard_client::ConnectError> {
/// // Nothing is dialled yet: a registry that is down now may be up by the first call.
/// let channel = switchboard_client::connect_lazy("127.0.0.1:7600")?;
/// # drop(channel);
/// # Ok(())
/// # }
/// ```
pub fn connect_lazy(address: &str) -> Result<Channel, ConnectError> {
    connect_lazy_with(address, None)
}

/// [`connect_lazy`] over TLS when `tls` is given (or the address is `https://`).
pub fn connect_lazy_with(address: &str, tls: Option<&ClientTls>) -> Result<Channel, ConnectError> {
    let tls = transport(address, tls)?;
    let endpoint = endpoint(address, tls.is_some())?;
    Ok(match tls {
        Some(tls) => endpoint.connect_with_connector_lazy(tls.connector()),
        None => endpoint.connect_lazy(),
    })
}

/// An error and its sources, joined: tonic's own message alone ("transport
/// error") does not say what went wrong.
///
/// ```
/// #[derive(Debug, thiserror::Error)]
/// #[error("transport error")]
/// struct Transport(#[source] std::io::Error);
///
/// let error = Transport(std::io::Error::other("connection refused"));
/// assert_eq!(switchboard_client::error_chain(&error), "transport error: connection refused");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

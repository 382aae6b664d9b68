//! Channels to a registry: TCP_NODELAY (no Nagle stalls on small messages)
//! and HTTP/2 keepalive, so a dead registry is noticed without waiting for TCP.

use std::time::Duration;

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

fn endpoint(address: &str) -> Result<Endpoint, ConnectError> {
    let bad = |reason: String| ConnectError::BadAddress { address: address.to_owned(), reason };
    let endpoint = Endpoint::from_shared(endpoint_uri(address)).map_err(|e| bad(e.to_string()))?;
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
    endpoint(address)?.connect().await.map_err(|error| ConnectError::Unreachable {
        address: address.to_owned(),
        cause: error_chain(&error),
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
    Ok(endpoint(address)?.connect_lazy())
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

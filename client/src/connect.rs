//! Channels to a registry: TCP_NODELAY (no Nagle stalls on small messages)
//! and HTTP/2 keepalive, so a dead registry is noticed without waiting for TCP.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// A registry address that cannot be used.
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

/// `127.0.0.1:7600` → `http://127.0.0.1:7600`; full URIs pass through.
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
pub async fn connect(address: &str) -> Result<Channel, ConnectError> {
    endpoint(address)?.connect().await.map_err(|error| ConnectError::Unreachable {
        address: address.to_owned(),
        cause: error_chain(&error),
    })
}

/// A channel that connects on first use and reconnects by itself.
pub fn connect_lazy(address: &str) -> Result<Channel, ConnectError> {
    Ok(endpoint(address)?.connect_lazy())
}

/// An error and its sources, joined: tonic's own message alone ("transport
/// error") does not say what went wrong.
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

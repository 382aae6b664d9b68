//! TLS for every Switchboard listener and client.
//!
//! Certificates come from PEM files and are **reloaded when the files
//! change**: a task polls their modification times every second and builds
//! a new rustls configuration; new handshakes use it, open connections keep
//! the one they started with (no restart for a rotation). A new file that
//! does not load (half-written, wrong key) keeps the previous configuration
//! and logs why, so a botched rotation never takes a listener down.
//!
//! - [`ServerTls`]: server side, with optional mTLS (client certificates
//!   required and verified against a client CA); [`Incoming`] turns a
//!   `TcpListener` into tonic connections, [`serve_http`] serves an axum
//!   router. Both put the verified client certificate's names
//!   ([`PeerNames`]) into each request's extensions.
//! - [`ClientTls`]: client side (CA file, optional client certificate), as a
//!   tonic connector ([`ClientTls::connector`]) and a reqwest client
//!   ([`ClientTls::http_client`]).
//! - [`dev`]: a development CA and certificates for a local mesh.
//!
//! One rustls (0.23, ring provider) serves tonic, axum and reqwest alike.

mod client;
pub mod dev;
mod error;
mod files;
mod http;
mod incoming;
mod maybe_tls;
mod peer;
mod provider;
mod reload;
mod server;

pub use client::{ClientStream, ClientTls, ClientTlsConfig, ClientTlsFlags, Connector};
pub use error::TlsError;
pub use http::serve_http;
pub use incoming::{Conn, ConnInfo, Incoming, PeerNamesLayer, PeerNamesService};
pub use maybe_tls::MaybeTls;
pub use provider::{ensure_crypto_provider, http_client_builder};
pub use server::{ServerTls, ServerTlsConfig};

/// The names a verified client certificate carries (its DNS and URI subject
/// alternative names, in certificate order).
///
/// A TLS listener that asks for client certificates inserts this into each
/// request's extensions once the handshake has verified the chain against
/// the client CA, so the registry can turn a certificate into an identity
/// without knowing anything about TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerNames(pub Vec<String>);

/// A result with a [`TlsError`].
pub type Result<T, E = TlsError> = std::result::Result<T, E>;

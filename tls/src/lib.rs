//! TLS for every Switchboard listener and client.

/// The names a verified client certificate carries (its DNS and URI subject
/// alternative names, in certificate order).
///
/// A TLS listener that asks for client certificates inserts this into each
/// request's extensions once the handshake has verified the chain against
/// the client CA, so the registry can turn a certificate into an identity
/// without knowing anything about TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerNames(pub Vec<String>);

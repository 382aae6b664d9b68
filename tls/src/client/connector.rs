//! Dialling a server for tonic: TCP (`TCP_NODELAY`), then TLS when the
//! connector has a configuration. The server name checked against the
//! certificate is the URI's host.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::ClientTls;
use crate::MaybeTls;

/// A tonic connector (`Endpoint::connect_with_connector`): plaintext
/// without a configuration, TLS with one.
#[derive(Debug, Clone)]
pub struct Connector {
    tls: Option<ClientTls>,
}

/// A connection a [`Connector`] made.
pub type ClientStream = MaybeTls<TlsStream<TcpStream>>;

// === impl Connector ===

impl Connector {
    /// `tls: None` dials plaintext.
    pub fn new(tls: Option<ClientTls>) -> Self {
        Self { tls }
    }

    async fn dial(tls: Option<ClientTls>, uri: Uri) -> io::Result<ClientStream> {
        let invalid =
            |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{what} in {uri}"));
        let host = uri.host().ok_or_else(|| invalid("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let default_port = if tls.is_some() { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default_port);
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let Some(tls) = tls else { return Ok(MaybeTls::Plain(tcp)) };
        let name = ServerName::try_from(host).map_err(|_| invalid("bad server name"))?;
        let stream =
            TlsConnector::from(tls.grpc_config()).connect(name, tcp).await.map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("tls handshake with {uri}: {}", explain(&error)),
                )
            })?;
        Ok(MaybeTls::Tls(Box::new(stream)))
    }
}

/// rustls' reason, without its "unexpected error" prefix for the
/// messages this crate writes itself.
fn explain(error: &io::Error) -> String {
    match error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::General(message)) => message.clone(),
        _ => error.to_string(),
    }
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<ClientStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move { Self::dial(tls, uri).await.map(TokioIo::new) })
    }
}

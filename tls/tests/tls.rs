//! The crate's promises, on real sockets: PeerNames reach tonic and axum
//! services, an untrusted CA is refused with a message that says so, and a
//! rotation is picked up by new connections without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use switchboard_tls::{
    ClientTls, ClientTlsFlags, Incoming, PeerNames, PeerNamesLayer, ServerTls, dev,
};
use tokio::net::TcpListener;
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

async fn listener() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A tonic health server on TLS that records the PeerNames of each request.
async fn grpc_server(tls: ServerTls) -> (std::net::SocketAddr, Arc<Mutex<Vec<Option<PeerNames>>>>) {
    let (listener, addr) = listener().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let recorder = tower::layer::layer_fn(move |inner| Recorder { inner, seen: record.clone() });
    tokio::spawn(
        Server::builder()
            .layer(PeerNamesLayer)
            .layer(recorder)
            .add_service(health)
            .serve_with_incoming(Incoming::new(listener, Some(tls))),
    );
    (addr, seen)
}

#[derive(Clone)]
struct Recorder<S> {
    inner: S,
    seen: Arc<Mutex<Vec<Option<PeerNames>>>>,
}

impl<S, B> tower::Service<http::Request<B>> for Recorder<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.seen.lock().push(request.extensions().get::<PeerNames>().cloned());
        self.inner.call(request)
    }
}

async fn health_check(addr: std::net::SocketAddr, tls: &ClientTls) -> Result<(), String> {
    let endpoint = Endpoint::from_shared(format!("https://localhost:{}", addr.port())).unwrap();
    let channel = endpoint.connect_with_connector(tls.connector()).await.map_err(|e| chain(&e))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map(drop)
        .map_err(|status| format!("{status}: {}", status.source().map(chain).unwrap_or_default()))
}

use std::error::Error as _;

fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_verified_client_certificates_names_reach_the_grpc_service() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dev::generate(dir.path(), &[], &["weather".into()]).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for key in [&certs.ca_key, &certs.server_key, &certs.clients[0].2] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }
    let (addr, seen) = grpc_server(ServerTls::load(&certs.server_config(true)).unwrap()).await;
    let client = ClientTls::load(&certs.client_config("weather")).unwrap();
    health_check(addr, &client).await.unwrap();
    assert_eq!(seen.lock().as_slice(), [Some(PeerNames(vec!["weather".into()]))]);
}

#[tokio::test]
async fn a_client_without_a_certificate_or_from_another_ca_is_refused() {
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let certs = dev::generate(ours.path(), &[], &["weather".into()]).unwrap();
    let other = dev::generate(theirs.path(), &[], &["weather".into()]).unwrap();
    let (addr, seen) = grpc_server(ServerTls::load(&certs.server_config(true)).unwrap()).await;

    let anonymous = ClientTls::load(&certs.client_config("nobody")).unwrap();
    assert_eq!(anonymous.missing_certificate(), None, "no server asked yet");
    let error = health_check(addr, &anonymous).await.unwrap_err();
    assert!(error.contains("CertificateRequired") || error.contains("certificate"), "{error}");
    // The server's alert may not reach the caller: the configuration says
    // what was missing, naming its flags.
    let flags =
        ClientTlsFlags { ca: "--etcd-tls-ca", cert: "--etcd-tls-cert", key: "--etcd-tls-key" };
    let named = ClientTls::load_with_flags(&certs.client_config("nobody"), flags).unwrap();
    health_check(addr, &named).await.unwrap_err();
    let missing = named.missing_certificate().unwrap();
    assert!(missing.contains("give --etcd-tls-cert and --etcd-tls-key"), "{missing}");

    // Trusts our server, presents a certificate of another CA.
    let mut foreign = other.client_config("weather");
    foreign.ca = Some(certs.ca.clone());
    let error = health_check(addr, &ClientTls::load(&foreign).unwrap()).await.unwrap_err();
    assert!(error.contains("UnknownCA") || error.contains("unknown"), "{error}");
    assert!(seen.lock().is_empty(), "no request got through");

    // A client trusting only the other CA does not trust our server.
    let error = health_check(addr, &ClientTls::load(&other.client_config("weather")).unwrap())
        .await
        .unwrap_err();
    assert!(error.contains("not trusted (unknown issuer)"), "{error}");
}

#[tokio::test]
async fn new_connections_see_rotated_files_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = dev::generate(dir.path(), &[], &["weather".into()]).unwrap();
    let (addr, _) = grpc_server(ServerTls::load(&first.server_config(false)).unwrap()).await;
    let before = tempfile::tempdir().unwrap();
    std::fs::copy(&first.ca, before.path().join("ca.pem")).unwrap();
    let old_ca = switchboard_tls::ClientTlsConfig {
        ca: Some(before.path().join("ca.pem")),
        ..Default::default()
    };
    health_check(addr, &ClientTls::load(&old_ca).unwrap()).await.unwrap();

    let second = dev::generate(dir.path(), &[], &["weather".into()]).unwrap();
    let new_ca = ClientTls::load(&second.client_config("weather")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while health_check(addr, &new_ca).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the rotation was never picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = health_check(addr, &ClientTls::load(&old_ca).unwrap()).await.unwrap_err();
    assert!(error.contains("not trusted (unknown issuer)"), "{error}");
}

#[tokio::test]
async fn axum_handlers_see_peer_names_and_plaintext_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dev::generate(dir.path(), &[], &["gateway".into()]).unwrap();
    let (listener, addr) = listener().await;
    let app = axum::Router::new().route(
        "/whoami",
        axum::routing::get(|names: Option<axum::Extension<PeerNames>>| async move {
            names.map(|axum::Extension(PeerNames(names))| names.join(",")).unwrap_or_default()
        }),
    );
    let tls = ServerTls::load(&certs.server_config(true)).unwrap();
    tokio::spawn(switchboard_tls::serve_http(listener, Some(tls), app, std::future::pending()));

    let client = ClientTls::load(&certs.client_config("gateway")).unwrap();
    let http = client.http_client(reqwest::Client::builder()).build().unwrap();
    let url = format!("https://localhost:{}/whoami", addr.port());
    let body = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, "gateway");

    // Plaintext to the TLS port: a 400 that says what to do.
    let plain = switchboard_tls::http_client_builder().build().unwrap();
    let answer =
        plain.get(format!("http://127.0.0.1:{}/whoami", addr.port())).send().await.unwrap();
    assert_eq!(answer.status(), 400);
    let text = answer.text().await.unwrap();
    assert!(text.contains("this port serves TLS only"), "{text}");
}

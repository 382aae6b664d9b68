//! A stand-in OAuth 2.1 authorization server run by the test: Ed25519
//! keys the test makes, a JWKS endpoint serving whichever keys are
//! published now (so a test can rotate them), RFC 8414 metadata, and
//! access-token minting. Plus raw 2026-07-28 MCP requests with a chosen
//! `Authorization`, for asserting statuses and challenges exactly.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// One Ed25519 signing key.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    seed: [u8; 32],
}

impl TestKey {
    pub fn new(kid: &str) -> Self {
        Self { kid: kid.to_owned(), seed: rand::random() }
    }

    /// The same key id over a different key (a forger's).
    pub fn impostor(&self) -> Self {
        Self::new(&self.kid)
    }

    fn encoding_key(&self) -> EncodingKey {
        // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410).
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&self.seed);
        EncodingKey::from_ed_der(&der)
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        let public = ed25519_dalek::SigningKey::from_bytes(&self.seed).verifying_key();
        json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
            "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(public.to_bytes()),
        })
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).expect("sign")
    }
}

struct Published {
    keys: Vec<TestKey>,
    fetches: usize,
}

/// The running issuer.
pub struct TestIssuer {
    pub addr: SocketAddr,
    /// The issuer identifier (`iss`), its base URL.
    pub issuer: String,
    state: Arc<Mutex<Published>>,
    task: JoinHandle<()>,
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

impl TestIssuer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let state = Arc::new(Mutex::new(Published { keys: vec![TestKey::new("k1")], fetches: 0 }));
        let metadata = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks.json"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        });
        let app = axum::Router::new()
            .route(
                "/jwks.json",
                axum::routing::get(|State(state): State<Arc<Mutex<Published>>>| async move {
                    let mut published = state.lock().unwrap();
                    published.fetches += 1;
                    let keys: Vec<Value> = published.keys.iter().map(TestKey::jwk).collect();
                    axum::Json(json!({ "keys": keys }))
                }),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                axum::routing::get(move || async move { axum::Json(metadata.clone()) }),
            )
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, issuer, state, task }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.issuer)
    }

    /// The key tokens are signed with now.
    pub fn current_key(&self) -> TestKey {
        self.state.lock().unwrap().keys.last().cloned().unwrap()
    }

    /// Replaces the published keys with a new one (`kid`).
    pub fn rotate(&self, kid: &str) -> TestKey {
        let key = TestKey::new(kid);
        self.state.lock().unwrap().keys = vec![key.clone()];
        key
    }

    /// JWKS fetches served so far.
    pub fn fetches(&self) -> usize {
        self.state.lock().unwrap().fetches
    }

    /// Standard claims for `sub` with `scopes`, for `audience`, valid 5 min.
    pub fn claims(&self, sub: &str, scopes: &str, audience: &str) -> Value {
        let now = now();
        json!({
            "iss": self.issuer, "sub": sub, "aud": audience, "scope": scopes,
            "iat": now, "nbf": now, "exp": now + 300,
        })
    }

    /// A valid access token.
    pub fn token(&self, sub: &str, scopes: &str, audience: &str) -> String {
        self.current_key().sign(&self.claims(sub, scopes, audience))
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The answer to one raw request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    pub fn error_code(&self) -> Option<i64> {
        self.body["error"]["code"].as_i64()
    }

    pub fn error_message(&self) -> String {
        self.body["error"]["message"].as_str().unwrap_or_default().to_owned()
    }

    /// The names in a `tools/list` result, sorted.
    pub fn tool_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.body["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("not a tools/list result: {:?}", self.body))
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// The text of a `tools/call` result.
    pub fn text(&self) -> String {
        self.body["result"]["content"][0]["text"].as_str().unwrap_or_default().to_owned()
    }
}

/// A stateless (2026-07-28) MCP request to `url` with `auth` headers.
pub async fn mcp(url: &str, auth: &[(&str, String)], method: &str, params: Value) -> Answer {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let name = params.get("name").or_else(|| params.get("uri")).and_then(Value::as_str);
    let name = name.map(str::to_owned);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut request = crate::gateway::http_client()
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", method)
        .json(&body);
    if let Some(name) = name {
        request = request.header("Mcp-Name", name);
    }
    for (header, value) in auth {
        request = request.header(*header, value);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, headers, body }
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {token}"))]
}

/// `tools/call` of `name` with no arguments.
pub async fn call(url: &str, auth: &[(&str, String)], name: &str) -> Answer {
    mcp(url, auth, "tools/call", json!({"name": name, "arguments": {}})).await
}

/// `tools/list`.
pub async fn list(url: &str, auth: &[(&str, String)]) -> Answer {
    mcp(url, auth, "tools/list", json!({})).await
}

/// A registry, the two example agents (`get_date`, `greet`), a test issuer
/// and a gateway accepting its tokens (plus whatever `configure` adds).
pub struct SecuredMesh {
    pub registry: crate::TestRegistry,
    pub issuer: TestIssuer,
    pub gateway: crate::InProcessGateway,
    /// The gateway's resource URL: the audience of its tokens.
    pub resource: String,
    _agents: Vec<switchboard_agent::RunningAgent>,
}

impl SecuredMesh {
    pub async fn start(
        configure: impl FnOnce(&mut switchboard_gateway::access::AccessConfig),
    ) -> Self {
        use switchboard_gateway::access::{AccessConfig, JwksSource, OAuthConfig};
        let issuer = TestIssuer::start().await;
        let registry = crate::TestRegistry::start().await;
        let addr = registry.addr.to_string();
        let agent =
            |name: &str| switchboard_agent::Agent::new(name).registry(&addr).listen("127.0.0.1:0");
        let agents = vec![
            switchboard_examples::date_service::start(agent("date-service")).await.unwrap(),
            switchboard_examples::hello::start(agent("hello")).await.unwrap(),
        ];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let resource = format!("http://{}/mcp", listener.local_addr().unwrap());
        let mut oauth =
            OAuthConfig::new(&resource, &issuer.issuer, JwksSource::Url(issuer.jwks_url()));
        // Rotation is tested as a client sees it: the first unknown key id refetches.
        oauth.jwks_min_refresh = std::time::Duration::ZERO;
        let mut access = AccessConfig { oauth: Some(oauth), ..AccessConfig::default() };
        configure(&mut access);
        let config = switchboard_gateway::GatewayConfig {
            registry: addr.clone(),
            access,
            ..switchboard_gateway::GatewayConfig::default()
        };
        let gateway = crate::InProcessGateway::start_on(listener, config);
        gateway.caught_up(registry.registry().snapshot().revision).await;
        Self { registry, issuer, gateway, resource, _agents: agents }
    }

    pub fn url(&self) -> String {
        self.gateway.url()
    }

    /// A valid token for `sub` with `scopes`.
    pub fn token(&self, sub: &str, scopes: &str) -> String {
        self.issuer.token(sub, scopes, &self.resource)
    }

    /// `Authorization` for a valid token.
    pub fn auth(&self, sub: &str, scopes: &str) -> Vec<(&'static str, String)> {
        bearer(&self.token(sub, scopes))
    }
}

/// A legacy (2025-06-18) MCP session opened with `auth` on every request.
pub struct LegacySession {
    url: String,
    auth: Vec<(&'static str, String)>,
    id: String,
}

impl LegacySession {
    pub async fn open(url: &str, auth: &[(&'static str, String)]) -> Self {
        let mut session = Self { url: url.to_owned(), auth: auth.to_vec(), id: String::new() };
        let hello = json!({"protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "access-test", "version": "1.0.0"}});
        let answer = session.post("initialize", Some(hello)).await;
        assert_eq!(answer.status, 200, "initialize: {:?}", answer.body);
        session.id = answer.header("mcp-session-id");
        assert!(!session.id.is_empty(), "no session id: {:?}", answer.headers);
        session.post("notifications/initialized", None).await;
        session
    }

    /// `tools/call` of `name` with `arguments`.
    pub async fn call(&self, name: &str, arguments: Value) -> Answer {
        self.post("tools/call", Some(json!({"name": name, "arguments": arguments}))).await
    }

    /// A request (`params` given) or a notification (none).
    pub async fn post(&self, method: &str, params: Option<Value>) -> Answer {
        let body = match params {
            Some(params) => json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
            None => json!({"jsonrpc": "2.0", "method": method}),
        };
        let mut request = crate::gateway::http_client()
            .post(&self.url)
            .header("Accept", "application/json, text/event-stream")
            .json(&body);
        if !self.id.is_empty() {
            request = request.header("Mcp-Session-Id", &self.id);
        }
        for (header, value) in &self.auth {
            request = request.header(*header, value);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("POST {method}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        // An SSE answer: its last data line is the response.
        let mut data = text.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim);
        let last = data.rfind(|d| !d.is_empty()).map(str::to_owned);
        let body = serde_json::from_str(&text)
            .or_else(|_| serde_json::from_str(last.as_deref().unwrap_or_default()))
            .unwrap_or(Value::String(text));
        Answer { status, headers, body }
    }
}

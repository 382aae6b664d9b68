//! The dashboard's event stream as a browser sees it: the registry's Watch as
//! server-sent events, snapshot first, and a reconnect with `Last-Event-ID`
//! that resumes after the last event seen, with nothing lost or repeated.
//! Plus the agent detail that explains each dependency's candidates, and
//! the two places the dashboard is mounted (the gateway's port, the
//! registry's admin port) with their Host/Origin rule.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use switchboard_dashboard::{DashboardConfig, router};
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{DeregisterAgentRequest, RegisterAgentRequest, SendHeartbeatRequest};
use switchboard_tests::{InProcessGateway, SwitchboardProcess, TestRegistry};
use tonic::transport::Channel;

const DEADLINE: Duration = Duration::from_secs(30);

/// One server-sent event.
#[derive(Debug)]
struct SseEvent {
    id: Option<String>,
    event: String,
    data: Value,
}

/// Reads `text/event-stream` frames off a response.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(addr: SocketAddr, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new().get(format!("http://{addr}/ui/events"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("open /ui/events");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(content_type, "text/event-stream");
        Self { response, buffer: String::new() }
    }

    /// The next event with a name (the leading `retry:` frame has none).
    async fn next(&mut self) -> SseEvent {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, String::new());
                for line in frame.lines() {
                    match line.split_once(':').map(|(k, v)| (k, v.trim_start())) {
                        Some(("id", v)) => id = Some(v.to_owned()),
                        Some(("event", v)) => event = Some(v.to_owned()),
                        Some(("data", v)) => data.push_str(v),
                        _ => {}
                    }
                }
                if let Some(event) = event {
                    let data = serde_json::from_str(&data).expect("event data is JSON");
                    return SseEvent { id, event, data };
                }
            }
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("an event within the deadline")
                .expect("read the stream")
                .expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Events up to the next change of `kind` (bookmarks are skipped).
    async fn next_change(&mut self) -> SseEvent {
        loop {
            let event = self.next().await;
            if event.event != "bookmark" {
                return event;
            }
        }
    }
}

async fn serve_dashboard(registry: &TestRegistry) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(DashboardConfig::new(registry.channel().await));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn named(id: &str, request: RegisterAgentRequest) -> RegisterAgentRequest {
    RegisterAgentRequest { agent_id: id.into(), ..request }
}

/// A client of `registry`, which now holds the provider `date-1` (date 1.0.0).
async fn with_date_provider(registry: &TestRegistry) -> RegistryServiceClient<Channel> {
    let mut client = registry.registry_client().await;
    client
        .register_agent(named("date-1", common::provider("date", "date", "1.0.0", &[])))
        .await
        .unwrap();
    client
}

#[tokio::test]
async fn events_resume_from_last_event_id_without_loss() {
    let registry = TestRegistry::start().await;
    let mut client = with_date_provider(&registry).await;
    let addr = serve_dashboard(&registry).await;

    let mut stream = SseReader::open(addr, None).await;
    let first = stream.next().await;
    assert_eq!(first.event, "snapshot");
    assert_eq!(first.data["agent"]["id"], "date-1");
    assert_eq!(first.data["agent"]["status"], "healthy");
    assert_eq!(first.data["agent"]["tools"][0]["capability"], "date");
    assert!(first.id.is_none(), "a snapshot entry is no place to resume from");
    let end = stream.next().await;
    assert_eq!(end.event, "end_of_snapshot");
    let end_id = end.id.expect("END_OF_SNAPSHOT is a resume point");

    client
        .register_agent(named("clock-1", common::consumer("clock", "date", ">=1.0", &[])))
        .await
        .unwrap();
    let added = stream.next_change().await;
    assert_eq!(
        (added.event.as_str(), &added.data["agent"]["id"]),
        ("added", &Value::from("clock-1"))
    );
    let added_id = added.id.expect("a change is a resume point");
    assert!(added_id.ends_with(&format!(":{}", added.data["revision"])), "{added_id}");
    drop(stream);

    // Changes while the browser is away are delivered on reconnect, in order.
    client.deregister_agent(DeregisterAgentRequest { agent_id: "date-1".into() }).await.unwrap();
    client
        .register_agent(named("date-2", common::provider("date", "date", "1.1.0", &[])))
        .await
        .unwrap();
    let mut resumed = SseReader::open(addr, Some(&added_id)).await;
    let removed = resumed.next_change().await;
    assert_eq!(
        (removed.event.as_str(), &removed.data["agent"]["id"]),
        ("removed", &Value::from("date-1"))
    );
    assert_eq!(removed.data["reason"], "deregistered");
    let again = resumed.next_change().await;
    assert_eq!(
        (again.event.as_str(), &again.data["agent"]["id"]),
        ("added", &Value::from("date-2"))
    );
    drop(resumed);

    // Resuming from the end of the snapshot replays every change after it.
    let mut replay = SseReader::open(addr, Some(&end_id)).await;
    let ids: Vec<Value> =
        [replay.next_change().await, replay.next_change().await, replay.next_change().await]
            .into_iter()
            .map(|e| e.data["agent"]["id"].clone())
            .collect();
    assert_eq!(ids, ["clock-1", "date-1", "date-2"]);
}

#[tokio::test]
async fn bad_last_event_id_is_refused_naming_the_header() {
    let registry = TestRegistry::start().await;
    let addr = serve_dashboard(&registry).await;
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/ui/events"))
        .header("Last-Event-ID", "seven")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "bad Last-Event-ID \"seven\": want epoch:revision");
}

#[tokio::test]
async fn agent_detail_explains_each_candidate() {
    let registry = TestRegistry::start().await;
    let mut client = with_date_provider(&registry).await;
    client
        .register_agent(named("date-old", common::provider("date", "date", "0.9.0", &[])))
        .await
        .unwrap();
    client
        .register_agent(named("clock-1", common::consumer("clock", "date", ">=1.0", &[])))
        .await
        .unwrap();
    let addr = serve_dashboard(&registry).await;

    let detail: Value = reqwest::get(format!("http://{addr}/ui/api/agents/clock-1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["agent"]["name"], "clock");
    let wired = &detail["resolutions"][0]["dependencies"][0]["providers"];
    assert_eq!(wired[0]["agent_id"], "date-1", "{detail:#}");
    let explanation = &detail["explanations"][0];
    assert_eq!(explanation["tool"], "use_it");
    let candidates = explanation["candidates"].as_array().unwrap();
    let old = candidates.iter().find(|c| c["provider"]["agent_id"] == "date-old").unwrap();
    assert_eq!(old["chosen"], false);
    assert!(old["reason"].as_str().unwrap().contains("0.9.0"), "{old}");

    let missing = reqwest::get(format!("http://{addr}/ui/api/agents/nobody")).await.unwrap();
    assert_eq!(missing.status(), 404);
    let gateway = reqwest::get(format!("http://{addr}/ui/api/gateway")).await.unwrap();
    assert_eq!(gateway.status(), 404, "no gateway in this process");
}

#[tokio::test]
async fn last_heartbeat_times_are_served_for_the_agents_table() {
    let registry = TestRegistry::start().await;
    with_date_provider(&registry).await;
    let mut heartbeats = registry.heartbeat_client().await;
    let beat =
        SendHeartbeatRequest { agent_id: "date-1".into(), sequence: 1, labels: None, health: None };
    heartbeats.send_heartbeat(beat).await.unwrap();
    let addr = serve_dashboard(&registry).await;

    let times: Value = reqwest::get(format!("http://{addr}/ui/api/heartbeats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at =
        times["date-1"].as_i64().unwrap_or_else(|| panic!("a time after a heartbeat: {times}"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let age = i64::try_from(now.as_millis()).unwrap() - at;
    assert!((0..60_000).contains(&age), "heartbeat {age} ms ago");
}

#[tokio::test]
async fn page_and_assets_are_embedded() {
    let registry = TestRegistry::start().await;
    let addr = serve_dashboard(&registry).await;
    for (path, kind) in
        [("/ui/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")]
    {
        let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("https://"), "{path} fetches nothing from the internet");
    }
}

/// A page on another site must not read the mesh through the operator's
/// browser: a foreign `Host` (DNS rebinding) or `Origin` gets 403 naming it.
async fn refuses_foreign_callers(addr: SocketAddr) {
    let client = reqwest::Client::new();
    for (header, value) in [("host", "evil.example"), ("origin", "http://evil.example")] {
        for path in ["/ui/events", "/ui/", "/ui/api/agents/date-1"] {
            let response = client
                .get(format!("http://{addr}{path}"))
                .header(header, value)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{path} with {header}: {value}");
            let body: Value = response.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("evil.example"), "{body}");
        }
    }
}

#[tokio::test]
async fn gateway_dashboard_keeps_the_mcp_host_and_origin_rule() {
    let registry = TestRegistry::start().await;
    let gateway = InProcessGateway::start(&registry.addr.to_string()).await;
    refuses_foreign_callers(gateway.addr).await;
    let response = reqwest::Client::new()
        .get(format!("http://{}/ui/events", gateway.addr))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "a loopback origin is the operator's own page");
    let mut stream = SseReader::open(gateway.addr, None).await;
    assert_eq!(stream.next().await.event, "end_of_snapshot", "an empty registry");
}

#[tokio::test]
async fn registry_admin_port_serves_the_dashboard_unless_turned_off() {
    let registry = TestRegistry::builder().child_process(&[]).start().await;
    let mut client = with_date_provider(&registry).await;
    let admin = registry.admin_addr;
    let page = reqwest::get(format!("http://{admin}/ui/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<title>Switchboard</title>"));

    // The dashboard watches its own registry: snapshot, then live changes.
    let mut stream = SseReader::open(admin, None).await;
    let first = stream.next().await;
    assert_eq!((first.event.as_str(), &first.data["agent"]["id"]), ("snapshot", &"date-1".into()));
    assert_eq!(stream.next().await.event, "end_of_snapshot");
    client
        .register_agent(named("clock-1", common::consumer("clock", "date", ">=1.0", &[])))
        .await
        .unwrap();
    let added = stream.next_change().await;
    assert_eq!((added.event.as_str(), &added.data["agent"]["id"]), ("added", &"clock-1".into()));

    let gateway = reqwest::get(format!("http://{admin}/ui/api/gateway")).await.unwrap();
    assert_eq!(gateway.status(), 404);
    let body: Value = gateway.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("no gateway is served here"), "{body}");
    refuses_foreign_callers(admin).await;
    drop(stream);
    registry.stop().await;

    let off = TestRegistry::builder().child_process(&["--no-ui"]).start().await;
    for path in ["/ui/", "/ui/events", "/ui/app.js"] {
        let response = reqwest::get(format!("http://{}{path}", off.admin_addr)).await.unwrap();
        assert_eq!(response.status(), 404, "{path} with --no-ui");
    }
    let health = reqwest::get(format!("http://{}/healthz", off.admin_addr)).await.unwrap();
    assert_eq!(health.status(), 200, "the probes stay");
}

#[tokio::test]
async fn up_serves_the_dashboard_on_both_ports_and_no_ui_turns_off_both() {
    let ui_status = |addr: SocketAddr| async move {
        reqwest::get(format!("http://{addr}/ui/")).await.unwrap().status().as_u16()
    };
    for (flags, want) in [(&[][..], 200), (&["--no-ui"][..], 404)] {
        let dir = tempfile::TempDir::new().unwrap();
        let data = dir.path().to_str().unwrap().to_owned();
        let mut args = vec!["up", "--data-dir", &data, "--registry-addr", "127.0.0.1:0"];
        args.extend(["--registry-admin-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0"]);
        args.extend(flags);
        let owned: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let up = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = owned.iter().map(String::as_str).collect();
            SwitchboardProcess::spawn(&args, &["registry-grpc", "registry-admin", "gateway"])
        })
        .await
        .unwrap();
        for port in ["gateway", "registry-admin"] {
            assert_eq!(ui_status(up.addr(port)).await, want, "{port} /ui with {flags:?}");
        }
        up.kill();
    }
}

//! The gateway forwards rather than re-models: a recording upstream shows
//! what its client (the gateway) sent on behalf of a gateway client, and
//! what flowed back during a call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{Prompt, RegisterAgentRequest, Resource, ResourceTemplate, Tool};
use switchboard_tests::gateway::http_client;
use switchboard_tests::{
    HeartbeatSession, InProcessGateway, RecordingUpstream, TestRegistry, eventually,
};

const DEADLINE: Duration = Duration::from_secs(30);
const TOOLS: [&str; 5] = ["remember", "recall", "chatty", "ask", "hang"];

struct Mesh {
    registry: TestRegistry,
    gateway: InProcessGateway,
    recorder: RecordingUpstream,
    _heartbeat: HeartbeatSession,
}

/// Registers `recorder` as agent `name` with the tools, and a memo
/// resource, a greeting prompt and (`with_template`) a memo template.
async fn register(
    registry: &TestRegistry,
    name: &str,
    recorder: &RecordingUpstream,
    with_template: bool,
) -> HeartbeatSession {
    let channel = registry.channel().await;
    let definition = |value: Value| serde_json::to_vec(&value).unwrap().into();
    let request = RegisterAgentRequest {
        name: name.into(),
        version: "1.0.0".into(),
        endpoint: recorder.url(),
        tools: TOOLS
            .iter()
            .map(|name| Tool { name: (*name).into(), version: "1.0.0".into(), ..Tool::default() })
            .collect(),
        resources: vec![Resource {
            uri: "memo://today".into(),
            mcp_definition: definition(json!({"uri": "memo://today", "name": "today",
                "title": format!("today's memo at {name}"), "mimeType": "text/plain",
                "_meta": {"com.example/owner": name}})),
        }],
        resource_templates: if with_template {
            vec![ResourceTemplate {
                uri_template: "memo://{day}".into(),
                mcp_definition: definition(json!({"uriTemplate": "memo://{day}", "name": "memo"})),
            }]
        } else {
            Vec::new()
        },
        prompts: vec![Prompt {
            name: "greeting".into(),
            mcp_definition: definition(json!({"name": "greeting", "title": "Greeting",
                "arguments": [{"name": "who", "required": true}]})),
        }],
        ..RegisterAgentRequest::default()
    };
    let agent_id = RegistryServiceClient::new(channel.clone())
        .register_agent(request)
        .await
        .unwrap()
        .into_inner()
        .agent_id;
    HeartbeatSession::open(channel, &agent_id, Duration::from_millis(500)).await
}

async fn mesh() -> Mesh {
    let registry = TestRegistry::start().await;
    let recorder = RecordingUpstream::start().await;
    let heartbeat = register(&registry, "recorder", &recorder, true).await;
    let gateway = InProcessGateway::start(&registry.addr.to_string()).await;
    gateway.caught_up(registry.registry().snapshot().revision).await;
    Mesh { registry, gateway, recorder, _heartbeat: heartbeat }
}

/// A legacy-session MCP client speaking raw HTTP.
struct Client {
    url: String,
    session: String,
    http: reqwest::Client,
}

impl Client {
    async fn connect(url: &str, version: &str, capabilities: Value, info: Value) -> Self {
        let http = http_client();
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": capabilities, "clientInfo": info}});
        let response = http
            .post(url)
            .header("Accept", "application/json, text/event-stream")
            .json(&init)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let client = Self { url: url.to_owned(), session, http };
        let status = client
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
            .status();
        assert_eq!(status, 202);
        client
    }

    async fn plain(url: &str) -> Self {
        Self::connect(url, "2025-06-18", json!({}), json!({"name": "plain", "version": "1"})).await
    }

    async fn post(&self, body: &Value) -> reqwest::Response {
        self.post_bytes(serde_json::to_vec(body).unwrap()).await
    }

    async fn post_bytes(&self, body: Vec<u8>) -> reqwest::Response {
        self.http
            .post(&self.url)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("Mcp-Session-Id", &self.session)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A `tools/call` answered as JSON or SSE: every message, in order.
    async fn call(&self, id: u64, tool: &str, arguments: Value, meta: Value) -> Messages {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, "_meta": meta}});
        Messages::of(self.post(&body).await)
    }

    async fn text(&self, id: u64, tool: &str, arguments: Value) -> String {
        let mut messages = self.call(id, tool, arguments, json!({})).await;
        let last = messages.until_answer().await;
        last["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{last}")).to_owned()
    }
}

/// The messages of one answer, as they arrive.
struct Messages {
    response: reqwest::Response,
    buffer: Vec<u8>,
    json: bool,
}

impl Messages {
    fn of(response: reqwest::Response) -> Self {
        let json =
            response.headers()["content-type"].to_str().unwrap().starts_with("application/json");
        Self { response, buffer: Vec::new(), json }
    }

    async fn next(&mut self) -> Option<Value> {
        loop {
            if self.json {
                while let Some(chunk) = self.response.chunk().await.unwrap() {
                    self.buffer.extend_from_slice(&chunk);
                }
                if self.buffer.is_empty() {
                    return None;
                }
                return Some(serde_json::from_slice(&std::mem::take(&mut self.buffer)).unwrap());
            }
            let text = String::from_utf8_lossy(&self.buffer).into_owned();
            if let Some(end) = text.find("\n\n") {
                let event = text[..end].to_owned();
                self.buffer.drain(..end + 2);
                let data: Vec<&str> =
                    event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim).collect();
                let data = data.join("\n");
                if data.is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&data).unwrap());
            }
            match self.response.chunk().await.unwrap() {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => return None,
            }
        }
    }

    /// Messages up to and including the answer (a result or an error).
    async fn collect(&mut self) -> Vec<Value> {
        let mut all = Vec::new();
        while let Some(message) = self.next().await {
            let done = message.get("method").is_none();
            all.push(message);
            if done {
                break;
            }
        }
        all
    }

    async fn until_answer(&mut self) -> Value {
        self.collect().await.pop().expect("an answer")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_sees_the_callers_capabilities_client_info_progress_token_and_meta() {
    let mesh = mesh().await;
    let capabilities = json!({"elicitation": {}, "roots": {"listChanged": true}});
    let info = json!({"name": "recording-test-client", "version": "9.9.9"});
    let client =
        Client::connect(&mesh.gateway.url(), "2025-06-18", capabilities.clone(), info.clone())
            .await;
    let meta = json!({"progressToken": "p-1", "com.example/ticket": {"id": 42}});
    let mut answer = client.call(5, "chatty", json!({"loud": true}), meta).await;
    let messages = answer.collect().await;
    let methods: Vec<&str> =
        messages.iter().map(|m| m["method"].as_str().unwrap_or("(answer)")).collect();
    assert_eq!(
        methods,
        [
            "notifications/progress",
            "notifications/progress",
            "notifications/progress",
            "notifications/message",
            "(answer)"
        ],
        "in order, before the result: {messages:?}"
    );
    let progress: Vec<&Value> = messages[..3].iter().map(|m| &m["params"]["progress"]).collect();
    assert_eq!(progress, [&json!(1), &json!(2), &json!(3)]);
    assert_eq!(messages[0]["params"]["progressToken"], "p-1", "the client's own token");
    assert_eq!(messages[4]["id"], 5, "the client's id");
    assert_eq!(messages[4]["result"]["content"][0]["text"], "done");

    let records = mesh.recorder.records();
    let hello = records.initializes.last().unwrap();
    assert_eq!(hello["capabilities"], capabilities, "{hello}");
    assert_eq!(hello["clientInfo"], info, "{hello}");
    assert_eq!(hello["_meta"]["io.switchboard/gateway"]["name"], "switchboard-gateway");
    let call = records.calls.last().unwrap();
    assert_eq!(call["params"]["arguments"], json!({"loud": true}));
    assert_eq!(call["params"]["_meta"]["progressToken"], "p-1", "{call}");
    assert_eq!(call["params"]["_meta"]["com.example/ticket"], json!({"id": 42}), "{call}");
    let left = call["params"]["_meta"]["io.switchboard/deadlineMs"].as_u64().expect("a deadline");
    assert!(left > 0 && left <= 30_000, "the gateway's time left: {left} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_elicitation_reaches_the_client_and_its_answer_reaches_the_agent() {
    let mesh = mesh().await;
    let client = Client::plain(&mesh.gateway.url()).await;
    let mut answer = client.call(9, "ask", json!({}), json!({})).await;
    let question = answer.next().await.expect("the agent's request");
    assert_eq!(question["method"], "elicitation/create", "{question}");
    assert_eq!(question["params"]["message"], "favourite colour?");
    let reply = json!({"jsonrpc": "2.0", "id": question["id"],
        "result": {"action": "accept", "content": {"color": "blue"}}});
    assert_eq!(client.post(&reply).await.status(), 202);
    let last = answer.until_answer().await;
    assert_eq!(last["id"], 9);
    assert_eq!(last["result"]["content"][0]["text"], "you said blue", "{last}");
    let answers = mesh.recorder.records().answers;
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["id"], "e1", "the agent's own id: {answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_is_cancelled_upstream() {
    let mesh = mesh().await;
    let client = std::sync::Arc::new(Client::plain(&mesh.gateway.url()).await);
    let caller = client.clone();
    let waiting =
        tokio::spawn(
            async move { caller.call(11, "hang", json!({}), json!({})).await.collect().await },
        );
    let upstream_id = eventually("the hang call reaches the agent", DEADLINE, || async {
        let records = mesh.recorder.records();
        records.calls.iter().find(|c| c["params"]["name"] == "hang").map(|c| c["id"].clone())
    })
    .await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 11, "reason": "user pressed stop"}});
    assert_eq!(client.post(&cancel).await.status(), 202);
    let cancelled = eventually("the agent is told", DEADLINE, || async {
        mesh.recorder.records().cancelled.first().cloned()
    })
    .await;
    assert_eq!(cancelled["requestId"], upstream_id, "the agent's id for the call");
    assert_eq!(cancelled["reason"], "user pressed stop");
    let _ = tokio::time::timeout(DEADLINE, waiting).await.expect("the client's request ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_of_a_stateful_upstream_see_isolated_state() {
    let mesh = mesh().await;
    let a = Client::plain(&mesh.gateway.url()).await;
    let b = Client::plain(&mesh.gateway.url()).await;
    assert_eq!(a.text(1, "remember", json!({"value": "from a"})).await, "");
    assert_eq!(b.text(1, "recall", json!({})).await, "", "b does not see a's state");
    assert_eq!(b.text(2, "remember", json!({"value": "from b"})).await, "");
    assert_eq!(a.text(2, "recall", json!({})).await, "from a");
    assert_eq!(mesh.recorder.sessions(), 2, "one upstream session per gateway client");

    // Ending a gateway session ends its upstream session.
    let ended = a.http.delete(&a.url).header("Mcp-Session-Id", &a.session).send().await.unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    eventually("a's upstream session is closed", DEADLINE, || async {
        (mesh.recorder.sessions() == 1).then_some(())
    })
    .await;
    assert_eq!(b.text(3, "recall", json!({})).await, "from b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_session_upstream_recovers_within_a_call_and_nothing_is_replayed() {
    let mut mesh = mesh().await;
    let url = mesh.gateway.url();
    let client = std::sync::Arc::new(Client::plain(&url).await);
    assert_eq!(client.text(1, "remember", json!({"value": "before"})).await, "");

    // Load during the restart: every call ends (an answer or a clear error), none hangs.
    let load: Vec<_> = (0..8u64)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut ends = Vec::new();
                for i in 0..10u64 {
                    let id = 100 + n * 100 + i;
                    let value = format!("v{id}");
                    let call = client.call(id, "remember", json!({"value": value}), json!({}));
                    let last =
                        tokio::time::timeout(DEADLINE, async { call.await.until_answer().await })
                            .await
                            .expect("no call hangs");
                    ends.push(last);
                }
                ends
            })
        })
        .collect();
    mesh.recorder.restart().await;
    let mut errors = 0;
    for task in load {
        for end in task.await.unwrap() {
            if end.get("error").is_some() {
                errors += 1;
                let code = end["error"]["code"].as_i64().unwrap();
                assert!([-32002, -32003, -32005].contains(&code), "a clear gateway error: {end}");
            }
        }
    }
    // After the restart calls work again, on a new upstream session.
    let recovered = eventually("a call after the restart", DEADLINE, || async {
        let mut answer = client.call(7, "recall", json!({}), json!({})).await;
        let last = answer.until_answer().await;
        last.get("result").is_some().then_some(last)
    })
    .await;
    assert!(recovered["result"]["content"].is_array(), "{recovered}");
    // No request that may have run was sent twice.
    let calls = mesh.recorder.records().calls;
    let mut seen = std::collections::HashSet::new();
    for call in &calls {
        let value = call["params"]["arguments"]["value"].to_string();
        if call["params"]["name"] == "remember" {
            assert!(seen.insert(value.clone()), "sent twice: {value}");
        }
    }
    tracing::info!(errors, "calls that failed fast during the restart");
    let _ = &mesh.registry;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_the_status_and_code_the_spec_asks_for() {
    let mesh = mesh().await;
    let url = mesh.gateway.url();
    let client = Client::plain(&url).await;

    let malformed = client.post_bytes(b"{not json".to_vec()).await;
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");

    let nameless =
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"arguments": {}}});
    let body: Value = client.post(&nameless).await.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("params.name"), "{body}");
    assert_eq!(body["id"], 3);

    // Batches: refused on a revision without them, answered on 2025-03-26.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "recall", "arguments": {}}},
    ]);
    let refused = client.post(&batch).await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600, "{body}");
    let old =
        Client::connect(&url, "2025-03-26", json!({}), json!({"name": "old", "version": "1"}))
            .await;
    let answered = old.post(&batch).await;
    assert_eq!(answered.status(), 200);
    let body: Value = answered.json().await.unwrap();
    let answers = body.as_array().unwrap_or_else(|| panic!("an array: {body}"));
    assert_eq!(answers.len(), 2, "{body}");
    assert!(answers[0]["result"]["tools"].as_array().unwrap().len() >= TOOLS.len(), "{body}");
    assert_eq!(answers[1]["id"], 2, "{body}");
    assert!(answers[1]["result"]["content"].is_array(), "{body}");

    // DELETE: an unknown session is 404; a known one ends, then is unknown.
    let http = http_client();
    let unknown =
        http.delete(&url).header("Mcp-Session-Id", "no-such-session").send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let ended = http.delete(&url).header("Mcp-Session-Id", &client.session).send().await.unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    let after = client.post(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"})).await;
    assert_eq!(after.status(), 404);
}

async fn request(client: &Client, id: u64, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    Messages::of(client.post(&body).await).until_answer().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_templates_prompts_and_completion_are_federated_and_routed() {
    let mut mesh = mesh().await;
    let second = RecordingUpstream::named("second").await;
    let _second = register(&mesh.registry, "second", &second, false).await;
    mesh.gateway.caught_up(mesh.registry.registry().snapshot().revision).await;
    let client = Client::plain(&mesh.gateway.url()).await;

    // Both serve memo://today and greeting: each is prefixed, definitions kept.
    let listed = request(&client, 1, "resources/list", json!({})).await;
    let resources = listed["result"]["resources"].as_array().unwrap_or_else(|| panic!("{listed}"));
    let uris: Vec<&str> = resources.iter().map(|r| r["uri"].as_str().unwrap()).collect();
    assert_eq!(uris, ["switchboard://recorder/memo://today", "switchboard://second/memo://today"]);
    assert_eq!(resources[1]["title"], "today's memo at second", "{listed}");
    assert_eq!(resources[1]["_meta"]["com.example/owner"], "second", "{listed}");
    let templates = request(&client, 2, "resources/templates/list", json!({})).await;
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"], "memo://{day}",
        "{templates}"
    );
    let prompts = request(&client, 3, "prompts/list", json!({})).await;
    let names: Vec<&str> = prompts["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["recorder__greeting", "second__greeting"]);
    assert_eq!(prompts["result"]["prompts"][0]["arguments"][0]["name"], "who");

    let read =
        request(&client, 4, "resources/read", json!({"uri": "switchboard://second/memo://today"}))
            .await;
    assert_eq!(read["result"]["contents"][0]["text"], "second: memo://today", "{read}");
    let by_template = request(&client, 5, "resources/read", json!({"uri": "memo://monday"})).await;
    assert_eq!(
        by_template["result"]["contents"][0]["text"], "recorder: memo://monday",
        "{by_template}"
    );
    let prompt = request(
        &client,
        6,
        "prompts/get",
        json!({"name": "second__greeting", "arguments": {"who": "Ada"}}),
    )
    .await;
    assert_eq!(prompt["result"]["messages"][0]["content"]["text"], "second: greeting", "{prompt}");
    let completion = request(
        &client,
        7,
        "completion/complete",
        json!({
        "ref": {"type": "ref/prompt", "name": "recorder__greeting"},
        "argument": {"name": "who", "value": "A"}}),
    )
    .await;
    let value = completion["result"]["completion"]["values"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{completion}"));
    assert!(value.starts_with("recorder: ") && value.contains(r#""name":"greeting""#), "{value}");
    let got = second.records().requests.into_iter().find(|r| r["method"] == "prompts/get").unwrap();
    assert_eq!(got["params"]["arguments"], json!({"who": "Ada"}), "arguments verbatim: {got}");

    let level = request(&client, 8, "logging/setLevel", json!({"level": "debug"})).await;
    assert_eq!(level["result"], json!({}), "{level}");
    eventually("the level reaches the client's upstream sessions", DEADLINE, || async {
        let records = mesh.recorder.records();
        records.requests.iter().any(|r| r["method"] == "logging/setLevel").then_some(())
    })
    .await;
    let unknown = request(&client, 9, "prompts/get", json!({"name": "nope"})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let _ = &mut mesh;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_agent_sends_outside_a_request_reaches_the_clients_session_stream() {
    let mut mesh = mesh().await;
    // A second agent serving memo://today: the gateway exposes both prefixed.
    let second = RecordingUpstream::named("second").await;
    let _second = register(&mesh.registry, "second", &second, false).await;
    mesh.gateway.caught_up(mesh.registry.registry().snapshot().revision).await;
    let client = Client::plain(&mesh.gateway.url()).await;
    let stream = client
        .http
        .get(&client.url)
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", &client.session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut stream = Messages::of(stream);

    let uri = "switchboard://recorder/memo://today";
    let subscribed = request(&client, 1, "resources/subscribe", json!({"uri": uri})).await;
    assert_eq!(subscribed["result"], json!({}), "{subscribed}");
    let records = mesh.recorder.records();
    let upstream = records.requests.iter().find(|r| r["method"] == "resources/subscribe").unwrap();
    assert_eq!(upstream["params"]["uri"], "memo://today", "the agent's own URI: {upstream}");
    eventually("the gateway listens to the agent's session stream", DEADLINE, || async {
        (mesh.recorder.streams() == 1).then_some(())
    })
    .await;

    // The agent's own list_changed is absorbed (the gateway's lists are
    // unions); progress without a live call of that token has no stream.
    mesh.recorder
        .notify(&json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}))
        .await;
    mesh.recorder
        .notify(&json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": "nobody", "progress": 1}}))
        .await;
    mesh.recorder
        .notify(&json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "warning", "logger": "memo", "data": "disk almost full"}}))
        .await;
    mesh.recorder
        .notify(&json!({"jsonrpc": "2.0", "method": "notifications/resources/updated",
            "params": {"uri": "memo://today"}}))
        .await;

    let log = tokio::time::timeout(DEADLINE, stream.next()).await.unwrap().expect("the log");
    assert_eq!(log["method"], "notifications/message", "{log}");
    assert_eq!(log["params"]["data"], "disk almost full", "{log}");
    assert_eq!(log["params"]["logger"], "memo", "{log}");
    let updated = tokio::time::timeout(DEADLINE, stream.next()).await.unwrap().expect("the update");
    assert_eq!(updated["method"], "notifications/resources/updated", "{updated}");
    assert_eq!(updated["params"]["uri"], uri, "the URI the client subscribed to: {updated}");

    // Progress on the session stream for a live call goes to that call's stream.
    // The answer's head comes with its first message: the call waits on its own task.
    let client = std::sync::Arc::new(client);
    let caller = client.clone();
    let hanging = tokio::spawn(async move {
        caller.call(2, "recorder__hang", json!({}), json!({"progressToken": "p-7"})).await
    });
    eventually("the hang call reaches the agent", DEADLINE, || async {
        let records = mesh.recorder.records();
        records.calls.iter().any(|c| c["params"]["name"] == "hang").then_some(())
    })
    .await;
    mesh.recorder
        .notify(&json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": "p-7", "progress": 5, "total": 10}}))
        .await;
    let mut hanging = tokio::time::timeout(DEADLINE, hanging).await.unwrap().unwrap();
    let progress =
        tokio::time::timeout(DEADLINE, hanging.next()).await.unwrap().expect("the progress");
    assert_eq!(progress["method"], "notifications/progress", "{progress}");
    assert_eq!(progress["params"]["progressToken"], "p-7", "{progress}");
    assert_eq!(progress["params"]["progress"], 5, "{progress}");
    let _ = &mut mesh;
}

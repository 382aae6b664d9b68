//! The Rust SDK serves every MCP server feature of its handler and registers
//! all of it in one call; agents announce their own `serverInfo`; a caller's
//! deadline (`_meta["io.switchboard/deadlineMs"]`) shortens dependency calls.
//! Real registry, real agents on 127.0.0.1, real MCP clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{tool, tool_router};
use serde_json::{Value, json};
use switchboard_agent::deadline::DEADLINE_META_KEY;
use switchboard_agent::{Agent, Dependency, RunningAgent};
use switchboard_client::{McpPool, McpPoolConfig};
use switchboard_proto::v1::GetAgentRequest;
use switchboard_tests::{TestRegistry, eventually, mcp};
use tokio_util::sync::CancellationToken;

/// Bound for anything that should happen promptly.
const PROMPTLY: Duration = Duration::from_secs(30);

async fn registered(registry: &TestRegistry, agent: &RunningAgent) -> switchboard_proto::v1::Agent {
    let request = GetAgentRequest { agent_id: agent.agent_id.clone() };
    let response = registry.registry_client().await.get_agent(request).await.expect("get agent");
    response.into_inner().agent.expect("the agent")
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("definitions are JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_registers_its_resources_templates_prompts_and_capabilities() {
    let registry = TestRegistry::start().await;
    let agent = Agent::new("everything")
        .version("4.5.6")
        .registry(&registry.addr.to_string())
        .listen("127.0.0.1:0");
    let everything = switchboard_examples::everything::start(agent).await.expect("everything");
    let agent = registered(&registry, &everything).await;

    let static_text = agent.resources.iter().find(|r| r.uri == "test://static-text");
    let static_text = json_of(&static_text.expect("static-text is registered").mcp_definition);
    assert_eq!(static_text["name"], "static-text");
    assert_eq!(static_text["mimeType"], "text/plain");
    assert_eq!(agent.resources.len(), 3, "every resource");

    let templates: Vec<&str> =
        agent.resource_templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(templates, ["test://template/{id}/data"]);
    let template = json_of(&agent.resource_templates[0].mcp_definition);
    assert_eq!(template["uriTemplate"], "test://template/{id}/data");

    let mut prompts: Vec<&str> = agent.prompts.iter().map(|p| p.name.as_str()).collect();
    prompts.sort_unstable();
    assert_eq!(
        prompts,
        [
            "test_prompt_with_arguments",
            "test_prompt_with_embedded_resource",
            "test_prompt_with_image",
            "test_simple_prompt"
        ]
    );
    let with_arguments =
        agent.prompts.iter().find(|p| p.name == "test_prompt_with_arguments").unwrap();
    let with_arguments = json_of(&with_arguments.mcp_definition);
    assert_eq!(with_arguments["arguments"][1]["name"], "arg2");
    assert_eq!(with_arguments["title"], "Prompt with arguments");

    // Tool definitions travel verbatim: title, annotations, output schema and
    // JSON Schema 2020-12 keywords survive.
    let tool = |name: &str| {
        let tool = agent.tools.iter().find(|t| t.name == name).expect(name);
        json_of(&tool.mcp_definition)
    };
    let simple = tool("test_simple_text");
    assert_eq!(simple["title"], "Simple text");
    assert_eq!(simple["annotations"]["readOnlyHint"], true);
    assert_eq!(simple["outputSchema"]["required"], json!(["text"]));
    let schema = tool("json_schema_2020_12_tool");
    assert_eq!(schema["inputSchema"]["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["inputSchema"]["additionalProperties"], false);

    let capabilities = json_of(&agent.mcp_capabilities);
    assert_eq!(capabilities["resources"]["subscribe"], true, "{capabilities}");
    assert!(capabilities.get("completions").is_some(), "{capabilities}");
    assert!(capabilities.get("logging").is_some(), "{capabilities}");
    assert!(capabilities.get("prompts").is_some(), "{capabilities}");

    let server_info = json_of(&agent.mcp_server_info);
    assert_eq!(server_info["name"], "everything");
    assert_eq!(server_info["version"], "4.5.6");
    everything.shutdown().await.expect("shutdown");
}

/// A tool-router agent, with rmcp's default `serverInfo`.
#[derive(Clone)]
struct Plain;

#[tool_router(server_handler)]
impl Plain {
    #[tool(description = "Says hi")]
    async fn hi(&self) -> String {
        "hi".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_announces_its_own_name_and_version_to_clients() {
    let registry = TestRegistry::start().await;
    let plain = Agent::new("plain-agent")
        .version("2.3.4")
        .registry(&registry.addr.to_string())
        .listen("127.0.0.1:0")
        .start(Plain, Plain::tool_router())
        .await
        .expect("plain agent");
    let transport = StreamableHttpClientTransport::from_uri(plain.endpoint.clone());
    let client = ().serve(transport).await.expect("initialize");
    let info = client.peer_info().and_then(|info| info.server_info.clone()).expect("serverInfo");
    assert_eq!((info.name.as_str(), info.version.as_str()), ("plain-agent", "2.3.4"));
    let _ = client.cancel().await;

    let agent = registered(&registry, &plain).await;
    assert_eq!(json_of(&agent.mcp_server_info)["name"], "plain-agent");
    let tools: Vec<&str> = agent.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, ["hi"]);
    plain.shutdown().await.expect("shutdown");
}

/// A provider whose tool answers only when the test releases it.
#[derive(Clone)]
struct Stuck {
    release: CancellationToken,
}

#[tool_router(server_handler)]
impl Stuck {
    #[tool(description = "Answers once released")]
    async fn wait(&self) -> String {
        self.release.cancelled().await;
        "released".into()
    }
}

/// A consumer whose tool reports how its dependency call went.
#[derive(Clone)]
struct Asker {
    stuck: Dependency,
}

#[tool_router(server_handler)]
impl Asker {
    #[tool(description = "Calls the stuck dependency and reports the outcome")]
    async fn ask(&self) -> String {
        match self.stuck.call_text(json!({})).await {
            Ok(text) => format!("answered: {text}"),
            Err(error) => format!("degraded: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_deadline_shortens_a_dependency_call() {
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let release = CancellationToken::new();
    let _stuck = Agent::new("stuck")
        .registry(&addr)
        .listen("127.0.0.1:0")
        .tool("wait", |t| t.capability("stuck"))
        .start(Stuck { release: release.clone() }, Stuck::tool_router())
        .await
        .expect("stuck agent");
    // The dependency's own timeout is far longer than the test runs: only
    // the caller's deadline can end the call.
    let stuck = Dependency::new("stuck", "").with_timeout(Duration::from_secs(3600));
    let asker = Agent::new("asker")
        .registry(&addr)
        .listen("127.0.0.1:0")
        .tool("ask", |t| t.capability("asking").depends_on(&stuck))
        .start(Asker { stuck: stuck.clone() }, Asker::tool_router())
        .await
        .expect("asker agent");
    eventually("the dependency is wired", PROMPTLY, || async { stuck.is_resolved().then_some(()) })
        .await;

    let pool = McpPool::new(McpPoolConfig { call_timeout: PROMPTLY, ..McpPoolConfig::default() });
    let mut params = CallToolRequestParams::new("ask");
    params.meta = Some(JsonObject::from_iter([(DEADLINE_META_KEY.into(), json!(500))]).into());
    let result = pool.call_tool(&asker.endpoint, params).await;
    release.cancel();
    let text = mcp::text(&result.expect("ask answers before the caller's deadline"));
    assert!(text.starts_with("degraded: ") && text.contains("timed out"), "{text}");

    // Without a deadline the same call waits for the provider.
    let answered = pool.call_tool(&asker.endpoint, CallToolRequestParams::new("ask")).await;
    assert_eq!(mcp::text(&answered.expect("ask answers")), "answered: released");
}

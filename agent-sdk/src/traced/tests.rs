//! [`Traced`] over real HTTP: what the author's handler serves besides tools
//! (here prompts) still works, and tool calls are counted by outcome.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, InitializeResult, ListPromptsResult,
    PaginatedRequestParams, Prompt, PromptMessage, Role, ServerCapabilities,
};
use rmcp::service::RequestContext;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt as _};
use tokio_util::sync::CancellationToken;

use crate::metrics::METRICS;

#[derive(Clone)]
struct Author;

impl ServerHandler for Author {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().enable_prompts().build())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompt = Prompt::new("haiku", Some("a haiku"), None);
        Ok(ListPromptsResult::with_all_items(vec![prompt]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let message = PromptMessage::new_text(Role::User, format!("write a {}", request.name));
        Ok(GetPromptResponse::Complete(GetPromptResult::new(vec![message])))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let text = ContentBlock::text(format!("ran {}", request.name));
        match request.name.as_ref() {
            "traced_ok" => Ok(CallToolResponse::Complete(CallToolResult::success(vec![text]))),
            "traced_fails" => Ok(CallToolResponse::Complete(CallToolResult::error(vec![text]))),
            _ => Err(ErrorData::invalid_params("no such tool", None)),
        }
    }
}

fn served(text: &str, tool: &str, outcome: &str) -> f64 {
    let sample =
        format!("switchboard_agent_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&sample)).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

#[tokio::test]
async fn prompts_pass_through_and_tool_calls_are_counted_by_outcome() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let hosts = crate::server::allowed_hosts("127.0.0.1", Some(addr.port()));
    let settings = crate::server::Settings {
        hosts,
        sessions: false,
        server_info: rmcp::model::Implementation::new("author", "1.0.0"),
        health: crate::health::Health::start(Vec::new(), &stop).0,
        registered: tokio::sync::watch::channel(false).1,
    };
    let serving =
        tokio::spawn(crate::server::serve(listener, None, Author, settings, stop.clone()));
    switchboard_tls::ensure_crypto_provider();

    let transport = StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let client = ().serve(transport).await.unwrap();
    let prompts = client.list_all_prompts().await.unwrap();
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].name, "haiku");
    let prompt = client.get_prompt(GetPromptRequestParams::new("haiku")).await.unwrap();
    assert_eq!(prompt.messages.len(), 1);

    let ok = client.call_tool(CallToolRequestParams::new("traced_ok")).await.unwrap();
    assert_ne!(ok.is_error, Some(true));
    let failed = client.call_tool(CallToolRequestParams::new("traced_fails")).await.unwrap();
    assert_eq!(failed.is_error, Some(true));
    assert!(client.call_tool(CallToolRequestParams::new("traced_unknown")).await.is_err());

    let text = METRICS.render();
    assert_eq!(served(&text, "traced_ok", "ok"), 1.0, "{text}");
    assert_eq!(served(&text, "traced_fails", "tool_error"), 1.0, "{text}");
    assert_eq!(served(&text, "traced_unknown", "error"), 1.0, "{text}");

    let _ = client.cancel().await;
    stop.cancel();
    serving.await.unwrap().unwrap();
}

//! What an agent serves, learned the way any MCP client learns it.
//!
//! The agent's handler may be any rmcp [`rmcp::ServerHandler`]: a tool
//! router, hand-written resources and prompts, or both. Rather than asking
//! each kind of handler in its own way, the SDK connects to the agent's own
//! endpoint over loopback once it listens, runs `initialize` (which gives the
//! `serverInfo` and `capabilities`) and lists every tool, resource, resource
//! template and prompt the capabilities announce. The registration carries
//! exactly what a client would see, serialized verbatim.

use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::model::{Implementation, Prompt, Resource, ResourceTemplate, ServerCapabilities, Tool};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

use crate::AgentError;

/// Longest wait for the whole introspection.
const INTROSPECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the handler serves, as a client sees it.
#[derive(Debug, Default)]
pub struct Served {
    pub server_info: Option<Implementation>,
    pub capabilities: Option<ServerCapabilities>,
    pub tools: Vec<Tool>,
    pub resources: Vec<Resource>,
    pub resource_templates: Vec<ResourceTemplate>,
    pub prompts: Vec<Prompt>,
}

/// Lists what the MCP server at `url` serves.
pub async fn served(
    url: &str,
    tls: Option<&switchboard_tls::ClientTls>,
) -> Result<Served, AgentError> {
    match tokio::time::timeout(INTROSPECT_TIMEOUT, list(url, tls)).await {
        Ok(result) => result,
        Err(_) => Err(AgentError::Introspect(format!(
            "the agent's own endpoint {url} did not answer within {INTROSPECT_TIMEOUT:?}"
        ))),
    }
}

async fn list(url: &str, tls: Option<&switchboard_tls::ClientTls>) -> Result<Served, AgentError> {
    let failed = |what: &str, error: &dyn std::fmt::Display| {
        AgentError::Introspect(format!("{what} on the agent's own endpoint {url}: {error}"))
    };
    let builder = switchboard_tls::http_client_builder().pool_max_idle_per_host(0);
    let builder = match tls {
        Some(tls) => tls.http_client(builder),
        None => builder,
    };
    let http = builder.build().map_err(|e| failed("http client", &e))?;
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    let client = ().serve(transport).await.map_err(|e| failed("initialize", &e))?;
    let info = client.peer_info();
    let capabilities = info.as_ref().map(|info| info.capabilities.clone()).unwrap_or_default();
    let mut served = Served {
        server_info: info.as_ref().and_then(|info| info.server_info.clone()),
        ..Served::default()
    };
    if capabilities.tools.is_some() {
        served.tools = client.list_all_tools().await.map_err(|e| failed("tools/list", &e))?;
    }
    if capabilities.resources.is_some() {
        served.resources =
            client.list_all_resources().await.map_err(|e| failed("resources/list", &e))?;
        served.resource_templates = client
            .list_all_resource_templates()
            .await
            .map_err(|e| failed("resources/templates/list", &e))?;
    }
    if capabilities.prompts.is_some() {
        served.prompts = client.list_all_prompts().await.map_err(|e| failed("prompts/list", &e))?;
    }
    served.capabilities = Some(capabilities);
    if let Err(error) = client.cancel().await {
        tracing::debug!(%error, "closing the introspection session");
    }
    Ok(served)
}

//! `everything`: an agent serving every MCP server feature the conformance
//! suite (`@modelcontextprotocol/conformance`) exercises: tools with every
//! content kind, errors, logging, progress, sampling and elicitation from
//! inside a tool; static resources, a resource template and subscriptions;
//! prompts with arguments, images and embedded resources; completion; and
//! `logging/setLevel`.
//!
//! It is a hand-written [`ServerHandler`], not a tool router: the SDK
//! registers whatever a handler serves. The definitions are JSON, exactly as
//! a client sees them (the suite checks fields such as a tool's JSON Schema
//! 2020-12 keywords verbatim). Its tools ask the client things mid-call, so
//! it serves legacy sessions ([`Agent::sessions`]).

// Logging, sampling and subscriptions are deprecated by the protocol's next
// era but are part of the 2025 protocols this agent serves.
#![allow(deprecated)]

mod content;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, InitializeResult, JsonObject, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, LoggingLevel,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerConfig,
    SetLevelRequestParams, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use switchboard_agent::{Agent, AgentError, RunningAgent};

/// The pause between a tool's notifications, so a client sees them arrive
/// one by one during the call.
const STEP: Duration = Duration::from_millis(50);

/// The everything agent: its subscriptions and the log level the client set.
#[derive(Clone, Default)]
pub struct Everything {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    subscriptions: HashSet<String>,
    level: Option<LoggingLevel>,
}

/// Starts everything as `agent` and registers it.
pub async fn start(agent: Agent) -> Result<RunningAgent, AgentError> {
    agent.sessions(true).start_handler(Everything::default()).await
}

/// `value` as the rmcp type `T`; the definitions here are fixed, so a
/// mismatch is a bug reported as an internal error, never a panic.
fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ErrorData> {
    serde_json::from_value(value).map_err(|error| {
        ErrorData::internal_error(format!("everything: bad definition: {error}"), None)
    })
}

fn argument<'a>(arguments: Option<&'a JsonObject>, name: &str) -> Result<&'a str, ErrorData> {
    arguments.and_then(|a| a.get(name)).and_then(Value::as_str).ok_or_else(|| {
        ErrorData::invalid_params(format!("argument {name:?} is required (a string)"), None)
    })
}

// === impl Everything ===

impl Everything {
    /// The subscribed resource URIs (what `resources/updated` would go to).
    pub fn subscriptions(&self) -> Vec<String> {
        self.state.lock().map(|s| s.subscriptions.iter().cloned().collect()).unwrap_or_default()
    }

    async fn log(&self, context: &RequestContext<RoleServer>, text: &str) -> Result<(), ErrorData> {
        let param = typed(json!({"level": "info", "logger": "everything", "data": text}))?;
        context.peer.notify_logging_message(param).await.map_err(peer_error)
    }

    async fn progress(
        &self,
        context: &RequestContext<RoleServer>,
        progress: u32,
    ) -> Result<(), ErrorData> {
        let Some(token) = context.meta.get_progress_token() else { return Ok(()) };
        let param = typed(json!({"progressToken": token, "progress": progress, "total": 100}))?;
        context.peer.notify_progress(param).await.map_err(peer_error)
    }

    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let arguments = request.arguments.as_ref();
        match request.name.as_ref() {
            "test_tool_with_logging" => {
                self.log(&context, "Tool execution started").await?;
                tokio::time::sleep(STEP).await;
                self.log(&context, "Tool processing data").await?;
                tokio::time::sleep(STEP).await;
                self.log(&context, "Tool execution completed").await?;
                typed(content::text("Logging tool finished: 3 messages sent"))
            }
            "test_tool_with_progress" => {
                for (step, progress) in [0, 50, 100].into_iter().enumerate() {
                    if step > 0 {
                        tokio::time::sleep(STEP).await;
                    }
                    self.progress(&context, progress).await?;
                }
                typed(content::text("Progress tool finished"))
            }
            "test_sampling" => {
                let prompt = argument(arguments, "prompt")?;
                let supported = context
                    .peer
                    .peer_info()
                    .is_some_and(|info| info.capabilities.sampling.is_some());
                if !supported {
                    return typed(content::error("the client does not support sampling"));
                }
                let params = typed(json!({
                    "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                    "maxTokens": 100,
                }))?;
                let answer = context.peer.create_message(params).await.map_err(peer_error)?;
                let answer = serde_json::to_value(&answer.message.content).unwrap_or_default();
                let text = answer
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| answer.to_string());
                typed(content::text(&format!("LLM response: {text}")))
            }
            "test_elicitation" => {
                let message = argument(arguments, "message")?;
                self.elicit(&context, "User response", content::elicitation_user(message)).await
            }
            "test_elicitation_sep1034_defaults" => {
                self.elicit(&context, "Elicitation completed", content::elicitation_defaults())
                    .await
            }
            "test_elicitation_sep1330_enums" => {
                self.elicit(&context, "Elicitation completed", content::elicitation_enums()).await
            }
            name => match content::fixed_result(name) {
                Some(result) => typed(result),
                None => Err(ErrorData::invalid_params(format!("no tool named {name:?}"), None)),
            },
        }
    }

    async fn elicit(
        &self,
        context: &RequestContext<RoleServer>,
        label: &str,
        params: Value,
    ) -> Result<CallToolResult, ErrorData> {
        let supported =
            context.peer.peer_info().is_some_and(|info| info.capabilities.elicitation.is_some());
        if !supported {
            return typed(content::error("the client does not support elicitation"));
        }
        let answer = context.peer.create_elicitation(typed(params)?).await.map_err(peer_error)?;
        let answer = serde_json::to_value(&answer).unwrap_or_default();
        let action = answer.get("action").and_then(Value::as_str).unwrap_or("unknown");
        let data = answer.get("content").cloned().unwrap_or(Value::Null);
        typed(content::text(&format!("{label}: action={action}, content={data}")))
    }
}

/// A failed request to the client, as the tool's error.
fn peer_error(error: rmcp::ServiceError) -> ErrorData {
    ErrorData::internal_error(format!("request to the client failed: {error}"), None)
}

impl ServerHandler for Everything {
    fn get_info(&self) -> ServerConfig {
        let capabilities = serde_json::from_value(json!({
            "tools": {"listChanged": false},
            "resources": {"subscribe": true, "listChanged": false},
            "prompts": {"listChanged": false},
            "logging": {},
            "completions": {},
        }))
        .unwrap_or_default();
        InitializeResult::new(capabilities)
            .with_instructions("Switchboard's everything agent: every MCP server feature.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        typed(json!({"tools": content::tools()}))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.call(request, context).await.map(CallToolResponse::from)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        typed(json!({"resources": content::resources()}))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        typed(json!({"resourceTemplates": content::resource_templates()}))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match content::read(&request.uri) {
            Some(contents) => {
                typed::<rmcp::model::ReadResourceResult>(json!({"contents": contents}))
                    .map(ReadResourceResponse::from)
            }
            None => Err(ErrorData::resource_not_found(
                format!("no resource at uri {:?}", request.uri),
                None,
            )),
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut state) = self.state.lock() {
            state.subscriptions.insert(request.uri);
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut state) = self.state.lock() {
            state.subscriptions.remove(&request.uri);
        }
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        typed(json!({"prompts": content::prompts()}))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let arguments = request.arguments.as_ref();
        let messages = match request.name.as_str() {
            "test_simple_prompt" => content::simple_prompt(),
            "test_prompt_with_arguments" => content::prompt_with_arguments(
                argument(arguments, "arg1")?,
                argument(arguments, "arg2")?,
            ),
            "test_prompt_with_embedded_resource" => {
                content::prompt_with_resource(argument(arguments, "resourceUri")?)
            }
            "test_prompt_with_image" => content::prompt_with_image(),
            name => {
                return Err(ErrorData::invalid_params(format!("no prompt named {name:?}"), None));
            }
        };
        typed::<rmcp::model::GetPromptResult>(json!({"messages": messages}))
            .map(GetPromptResponse::from)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let values = content::completions(&request.argument.value);
        typed(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut state) = self.state.lock() {
            state.level = Some(request.level);
        }
        Ok(())
    }
}

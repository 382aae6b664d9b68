//! The agents a benchmark registers: realistic registrations of five tools
//! (description, input schema, tags, one dependency), with ids that are
//! unique per run so a shared registry is never confused.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use switchboard_proto::EncodedStruct;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{
    DependencySpec, DeregisterAgentRequest, RegisterAgentRequest, RegisterAgentResponse, Tool,
};
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::stats::Latency;

/// Tools per benchmark agent.
pub const TOOLS_PER_AGENT: usize = 5;
/// Label carrying the load generator's send time (ns since its start) so a
/// watcher can compute the latency of the change it receives.
pub const SENT_LABEL: &str = "bench.sent_ns";

/// Bytes of one watch-fanout change as a watcher receives it: a five-tool
/// registration's encoding (the event adds a few header fields). etcd's watch
/// is driven with values of this size, so both carry the same bytes.
pub fn change_bytes() -> usize {
    use prost::Message as _;
    agent_request("wchg", &run_tag(), 0).encoded_len()
}

/// A short random tag that keeps the ids of one run apart from another's.
pub fn run_tag() -> String {
    format!("{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// The id of agent `index` of group `group` in run `tag`.
pub fn agent_id(group: &str, tag: &str, index: usize) -> String {
    format!("bench-{group}-{tag}-{index}")
}

/// A registration of five tools. Tool 0 provides `bench.cap<index % 50>`,
/// the others serve MCP clients only; tool 4 depends on `bench.base`, which
/// no benchmark agent provides (so registrations don't rewire each other).
pub fn agent_request(group: &str, tag: &str, index: usize) -> RegisterAgentRequest {
    let schema = EncodedStruct::from_struct(&schema());
    let tools = (0..TOOLS_PER_AGENT)
        .map(|t| Tool {
            name: format!("tool_{t}"),
            capability: if t == 0 { format!("bench.cap{}", index % 50) } else { String::new() },
            version: format!("1.{}.0", index % 5),
            tags: vec!["bench".into(), if index.is_multiple_of(2) { "eu" } else { "us" }.into()],
            description: format!(
                "Benchmark tool {t} of agent {index}: takes a text and a count, answers text."
            ),
            input_schema: Some(schema.clone()),
            dependencies: if t == TOOLS_PER_AGENT - 1 {
                vec![DependencySpec {
                    capability: "bench.base".into(),
                    version: ">=1.0".into(),
                    tags: vec!["+eu".into()],
                }]
            } else {
                Vec::new()
            },
            ..Tool::default()
        })
        .collect();
    RegisterAgentRequest {
        agent_id: agent_id(group, tag, index),
        name: format!("bench-{group}"),
        version: "1.0.0".into(),
        endpoint: format!("http://127.0.0.1:9/bench/{group}/{index}/mcp"),
        labels: [("bench.run".to_owned(), tag.to_owned())].into_iter().collect(),
        tools,
        ..RegisterAgentRequest::default()
    }
}

/// Encoded size of one benchmark registration (of agent 0 of a run; the
/// others differ by a few bytes of their index), the value size the etcd
/// comparison puts.
pub fn registration_bytes() -> usize {
    use prost::Message as _;
    agent_request("reg", &run_tag(), 0).encoded_len()
}

/// `{"type":"object","properties":{"text":{"type":"string"},"count":{"type":"integer"}},"required":["text"]}`
fn schema() -> Struct {
    let string = |s: &str| Value { kind: Some(Kind::StringValue(s.to_owned())) };
    let object = |fields: Vec<(&str, Value)>| Value {
        kind: Some(Kind::StructValue(Struct {
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<BTreeMap<_, _>>(),
        })),
    };
    let properties = object(vec![
        ("text", object(vec![("type", string("string"))])),
        ("count", object(vec![("type", string("integer"))])),
    ]);
    let required =
        Value { kind: Some(Kind::ListValue(ListValue { values: vec![string("text")] })) };
    Struct {
        fields: [
            ("type".to_owned(), string("object")),
            ("properties".to_owned(), properties),
            ("required".to_owned(), required),
        ]
        .into_iter()
        .collect(),
    }
}

/// What a bulk registration produced.
#[derive(Debug)]
pub struct Registered {
    /// Latency of every call.
    pub latency: Latency,
    /// The response with the highest revision.
    pub last: Option<RegisterAgentResponse>,
}

/// Times one bulk registration is retried after `UNAVAILABLE`.
const UNAVAILABLE_RETRIES: u64 = 10;

/// Registers `requests` with `concurrency` calls in flight, spread over
/// `channels`; `on_done` is called after each success (progress). A call
/// refused with `UNAVAILABLE` is sent again, a few times.
pub async fn register_all(
    channels: &[Channel],
    requests: Vec<RegisterAgentRequest>,
    concurrency: usize,
    on_done: impl Fn() + Sync,
) -> BenchResult<Registered> {
    if channels.is_empty() {
        return Err(BenchError::Option("no channel to register through".into()));
    }
    let on_done = &on_done;
    let mut calls = futures::stream::iter(requests.into_iter().enumerate())
        .map(|(i, request)| {
            let mut client = RegistryServiceClient::new(channels[i % channels.len()].clone());
            async move {
                let id = request.agent_id.clone();
                let started = std::time::Instant::now();
                let mut attempt = 0u64;
                let response = loop {
                    match client.register_agent(request.clone()).await {
                        Ok(response) => break response,
                        // A replica that lost too many races in a row refuses with
                        // UNAVAILABLE; an SDK registers again, and so does this.
                        Err(status)
                            if status.code() == tonic::Code::Unavailable
                                && attempt < UNAVAILABLE_RETRIES =>
                        {
                            attempt += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(10 * attempt))
                                .await;
                        }
                        Err(status) => {
                            return Err(BenchError::rpc(format!("registering {id}"), status));
                        }
                    }
                };
                on_done();
                Ok::<_, BenchError>((started.elapsed(), response.into_inner()))
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut registered = Registered { latency: Latency::new(), last: None };
    while let Some(result) = calls.next().await {
        let (took, response) = result?;
        registered.latency.record(took);
        if registered.last.as_ref().is_none_or(|l| l.revision < response.revision) {
            registered.last = Some(response);
        }
    }
    Ok(registered)
}

/// Deregisters `ids` (best effort: the run is over, a failure is only logged
/// by the count it returns).
pub async fn deregister_all(channel: &Channel, ids: Vec<String>, concurrency: usize) -> usize {
    futures::stream::iter(ids)
            .map(|agent_id| {
                let mut client = RegistryServiceClient::new(channel.clone());
                async move {
                    client.deregister_agent(DeregisterAgentRequest { agent_id }).await.is_err()
                }
            })
            .buffer_unordered(concurrency.max(1))
            .filter(|failed| std::future::ready(*failed))
            .count()
            .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_five_tools_and_unique_ids() {
        let a = agent_request("hb", "abc123", 1);
        let b = agent_request("hb", "abc123", 2);
        assert_eq!(a.tools.len(), TOOLS_PER_AGENT);
        assert_ne!(a.agent_id, b.agent_id);
        assert_eq!(a.tools[4].dependencies.len(), 1);
    }
}

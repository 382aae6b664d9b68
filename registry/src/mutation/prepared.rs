//! A registration prepared outside the single writer.
//!
//! Most of an agent's record is what its registration sent: tools with their
//! JSON Schemas, resources, prompts, labels. The RPC handler encodes those
//! fields once, in its own task and in parallel with other handlers; the
//! writer then encodes only the few fields it decides itself (id, revisions,
//! status, times, owner) and appends the prepared bytes. Protobuf decodes a
//! message from its fields in any order, and these two parts share no field,
//! so the concatenation decodes to exactly the record an encoding of the
//! whole agent gives. The one encoding serves both the stored record and the
//! agent inside the stored event.

use bytes::Bytes;
use prost::Message as _;
use switchboard_proto::v1::{Agent, RegisterAgentRequest};

/// A validated registration with the fields it sets already encoded.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The requested id (empty: the writer assigns one).
    pub agent_id: String,
    /// The agent's fields taken from the request; every other field unset.
    pub fields: Agent,
    /// The protobuf encoding of `fields`.
    pub encoded: Bytes,
}

/// The fields a registration sets, taken out of an agent for a moment.
struct Registered {
    name: String,
    version: String,
    endpoint: String,
    labels: std::collections::HashMap<String, String>,
    tools: Vec<switchboard_proto::v1::Tool>,
    resources: Vec<switchboard_proto::v1::Resource>,
    resource_templates: Vec<switchboard_proto::v1::ResourceTemplate>,
    prompts: Vec<switchboard_proto::v1::Prompt>,
    mcp_capabilities: Bytes,
    mcp_server_info: Bytes,
}

// === impl Registration ===

impl Registration {
    /// Takes the request apart and encodes the agent fields it sets.
    pub fn new(request: RegisterAgentRequest) -> Self {
        let fields = Agent {
            name: request.name,
            version: request.version,
            endpoint: request.endpoint,
            labels: request.labels,
            tools: request.tools,
            resources: request.resources,
            resource_templates: request.resource_templates,
            prompts: request.prompts,
            mcp_capabilities: request.mcp_capabilities,
            mcp_server_info: request.mcp_server_info,
            ..Agent::default()
        };
        let encoded = Bytes::from(fields.encode_to_vec());
        Self { agent_id: request.agent_id, fields, encoded }
    }
}

/// The encoding of `agent`, whose registered fields are those `registered`
/// encodes: only the other fields are encoded here.
pub fn encode_with(agent: &mut Agent, registered: &[u8]) -> Bytes {
    let taken = Registered::take(agent);
    let mut buffer = Vec::with_capacity(agent.encoded_len() + registered.len());
    agent.encode_raw(&mut buffer);
    taken.restore(agent);
    buffer.extend_from_slice(registered);
    Bytes::from(buffer)
}

// === impl Registered ===

impl Registered {
    /// Moves the registered fields out (no copy), leaving them unset.
    fn take(agent: &mut Agent) -> Self {
        use std::mem::take;
        Self {
            name: take(&mut agent.name),
            version: take(&mut agent.version),
            endpoint: take(&mut agent.endpoint),
            labels: take(&mut agent.labels),
            tools: take(&mut agent.tools),
            resources: take(&mut agent.resources),
            resource_templates: take(&mut agent.resource_templates),
            prompts: take(&mut agent.prompts),
            mcp_capabilities: take(&mut agent.mcp_capabilities),
            mcp_server_info: take(&mut agent.mcp_server_info),
        }
    }

    /// Puts the fields back.
    fn restore(self, agent: &mut Agent) {
        agent.name = self.name;
        agent.version = self.version;
        agent.endpoint = self.endpoint;
        agent.labels = self.labels;
        agent.tools = self.tools;
        agent.resources = self.resources;
        agent.resource_templates = self.resource_templates;
        agent.prompts = self.prompts;
        agent.mcp_capabilities = self.mcp_capabilities;
        agent.mcp_server_info = self.mcp_server_info;
    }
}

#[cfg(test)]
mod tests {
    use prost_types::value::Kind;
    use prost_types::{Struct, Timestamp, Value};
    use switchboard_health::{LivenessConfig, LivenessTracker};
    use switchboard_proto::v1::{
        AgentStatus, DependencySpec, Event, Prompt, Resource, ResourceTemplate, StatusReason, Tool,
    };

    use super::*;
    use crate::access::Claim;
    use crate::mutation::{BatchBuilder, Mutation};
    use crate::state::Snapshot;

    /// A registration setting every field a request can set.
    fn request(id: &str) -> RegisterAgentRequest {
        let text = Value { kind: Some(Kind::StringValue("string".into())) };
        let schema = Struct { fields: [("type".to_owned(), text)].into_iter().collect() };
        RegisterAgentRequest {
            agent_id: id.into(),
            name: "weather".into(),
            version: "1.2.3".into(),
            endpoint: "http://127.0.0.1:9/mcp".into(),
            labels: [("zone".to_owned(), "eu".to_owned())].into_iter().collect(),
            tools: vec![Tool {
                name: "forecast".into(),
                capability: "weather.forecast".into(),
                version: "1.0.0".into(),
                tags: vec!["eu".into()],
                description: "forecast for a city".into(),
                input_schema: Some(schema.into()),
                dependencies: vec![DependencySpec {
                    capability: "geo.lookup".into(),
                    ..DependencySpec::default()
                }],
                ..Tool::default()
            }],
            resources: vec![Resource { uri: "file:///a".into(), ..Resource::default() }],
            resource_templates: vec![ResourceTemplate {
                uri_template: "file:///{x}".into(),
                ..ResourceTemplate::default()
            }],
            prompts: vec![Prompt { name: "hello".into(), ..Prompt::default() }],
            mcp_capabilities: Bytes::from_static(b"{\"logging\":{}}"),
            mcp_server_info: Bytes::from_static(b"{\"name\":\"weather\"}"),
        }
    }

    #[test]
    fn the_prepared_encoding_decodes_to_the_whole_agent() {
        let Registration { agent_id, fields, encoded } = Registration::new(request("weather-1"));
        let time = Some(Timestamp { seconds: 1_700_000_000, nanos: 5 });
        let mut agent = Agent {
            id: agent_id,
            status: AgentStatus::Degraded as i32,
            create_revision: 3,
            mod_revision: 9,
            registered_at: time,
            status_changed_at: time,
            status_reason: "heartbeat late".into(),
            status_cause: StatusReason::HeartbeatLate as i32,
            owner: "token:ops".into(),
            ..fields
        };
        let before = agent.clone();
        let bytes = encode_with(&mut agent, &encoded);
        assert_eq!(agent, before, "the agent is left as it was");
        assert_eq!(Agent::decode(bytes.clone()).unwrap(), agent);
        assert_eq!(bytes.len(), agent.encoded_len(), "no field is written twice");
    }

    #[test]
    fn a_registration_stores_the_record_and_event_the_whole_encoding_gives() {
        let snapshot = Snapshot { epoch: "e".into(), ..Snapshot::default() };
        let mut builder = BatchBuilder::new(&snapshot, 100, std::time::Duration::from_secs(60));
        let now = tokio::time::Instant::now();
        let mut tracker = LivenessTracker::new(LivenessConfig::default(), now);
        for id in ["weather-1", "weather-2"] {
            let registration = Box::new(Registration::new(request(id)));
            let outcome =
                builder.apply(Mutation::Register(registration, Claim::anonymous()), &mut tracker);
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        let built = builder.finish();
        assert_eq!(built.batch.upserts.len(), 2);
        for upsert in &built.batch.upserts {
            assert!(upsert.encoded.is_some(), "a registration is stored from its prepared bytes");
            let stored = Agent::decode(upsert.encode()).unwrap();
            assert_eq!(stored, *built.snapshot.agents[&upsert.agent.id]);
            assert_eq!(stored, Agent::decode(upsert.agent.encode_to_vec().as_slice()).unwrap());
        }
        assert_eq!(built.batch.events.len(), 2);
        for event in &built.batch.events {
            assert!(event.agent.is_some());
            let stored = Event::decode(event.encode().as_slice()).unwrap();
            assert_eq!(stored, event.change.to_event());
        }
    }
}

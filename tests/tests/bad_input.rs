//! Malformed requests get the right status code and a message naming the
//! field; none of them harms the server.

mod common;

use prost_types::value::Kind;
use prost_types::{Struct, Value};
use switchboard_proto::EncodedStruct;
use switchboard_proto::v1::{
    DependencySpec, DeregisterAgentRequest, GetAgentRequest, ListAgentsRequest,
    RegisterAgentRequest, ResolveDependenciesRequest, Tool,
};
use switchboard_tests::TestRegistry;
use tonic::Code;
use tonic_types::StatusExt as _;

fn valid() -> RegisterAgentRequest {
    common::consumer("hello", "date_service", ">=1.0", &["+eu"])
}

fn big_schema(bytes: usize) -> Struct {
    let mut schema = Struct::default();
    schema
        .fields
        .insert("description".into(), Value { kind: Some(Kind::StringValue("x".repeat(bytes))) });
    schema
}

/// (case, request mutation, field the error must name)
fn malformed_registrations() -> Vec<(&'static str, RegisterAgentRequest, &'static str)> {
    let mut cases = Vec::new();
    let mut r = valid();
    r.name = String::new();
    cases.push(("empty name", r, "name"));
    let mut r = valid();
    r.name = "Bad Name!".into();
    cases.push(("bad name", r, "name"));
    let mut r = valid();
    r.agent_id = "spaces are bad".into();
    cases.push(("bad agent id", r, "agent_id"));
    let mut r = valid();
    r.endpoint = "ftp://127.0.0.1/mcp".into();
    cases.push(("bad endpoint scheme", r, "endpoint"));
    let mut r = valid();
    r.tools[0].version = "1.x.y".into();
    cases.push(("bad tool version", r, "tools[0].version"));
    let mut r = valid();
    r.tools[0].dependencies[0].version = ">=banana".into();
    cases.push(("bad semver constraint", r, "tools[0].dependencies[0].version"));
    let mut r = valid();
    r.tools[0].tags = vec!["Not A Tag".into()];
    cases.push(("bad tag", r, "tools[0].tags[0]"));
    let mut r = valid();
    r.tools[0].dependencies[0].tags = vec!["+".into()];
    cases.push(("bad dependency tag", r, "tools[0].dependencies[0].tags"));
    let mut r = valid();
    r.tools[0].dependencies[0].capability = String::new();
    cases.push(("dependency without capability", r, "tools[0].dependencies[0].capability"));
    let mut r = valid();
    r.tools[0].input_schema = Some(big_schema(100 * 1024).into());
    cases.push(("oversized schema", r, "tools[0].input_schema"));
    let mut r = valid();
    // A `Struct` whose map entry is cut short: the registry holds schemas
    // encoded and checks them when they arrive.
    r.tools[0].input_schema =
        Some(EncodedStruct::from_encoded(vec![0x0a, 0x02, 0xff, 0xff].into()));
    cases.push(("schema that is no Struct", r, "tools[0].input_schema"));
    let mut r = valid();
    r.tools = (0..300).map(|i| Tool { name: format!("t{i}"), ..Tool::default() }).collect();
    cases.push(("too many tools", r, "tools"));
    let mut r = valid();
    r.tools.push(r.tools[0].clone());
    cases.push(("duplicate tool names", r, "tools[1].name"));
    let mut r = valid();
    r.tools[0].name = "has.dot".into();
    cases.push(("tool name invalid for mcp clients", r, "tools[0].name"));
    let mut r = valid();
    r.labels = (0..100).map(|i| (format!("k{i}"), "v".into())).collect();
    cases.push(("too many labels", r, "labels"));
    let mut r = valid();
    r.tools[0].dependencies = (0..40)
        .map(|_| DependencySpec { capability: "x".into(), ..DependencySpec::default() })
        .collect();
    cases.push(("too many dependencies", r, "tools[0].dependencies"));
    cases
}

#[tokio::test]
async fn malformed_registrations_are_invalid_argument_naming_the_field() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    for (case, request, field) in malformed_registrations() {
        let status = client.register_agent(request).await.expect_err(case);
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
        assert!(
            status.message().starts_with(field),
            "{case}: message {:?} should name {field}",
            status.message()
        );
        let details = status
            .get_details_bad_request()
            .unwrap_or_else(|| panic!("{case}: no BadRequest details"));
        assert_eq!(details.field_violations[0].field, field, "{case}");
    }
    // Nothing was stored, and the server still works.
    let list = client.list_agents(ListAgentsRequest::default()).await.unwrap().into_inner();
    assert!(list.agents.is_empty());
    client.register_agent(valid()).await.expect("a valid request still succeeds");
}

#[tokio::test]
async fn unknown_agents_and_bad_lookups_get_clear_codes() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;

    let status = client
        .deregister_agent(DeregisterAgentRequest { agent_id: "ghost-00000000".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("ghost-00000000"));

    let status =
        client.get_agent(GetAgentRequest { agent_id: "ghost-00000000".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let status = client.get_agent(GetAgentRequest { agent_id: String::new() }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("agent_id"));

    let status = client
        .list_agents(ListAgentsRequest { page_size: 5000, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("page_size"));

    let status = client
        .list_agents(ListAgentsRequest { page_token: "%%%".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(status.message().starts_with("page_token"), "{status:?}");

    let status = client
        .list_agents(ListAgentsRequest { status: 42, ..Default::default() })
        .await
        .unwrap_err();
    assert!(status.message().starts_with("status"), "{status:?}");

    let status = client
        .resolve_dependencies(ResolveDependenciesRequest {
            dependencies: vec![DependencySpec {
                capability: "Bad Cap".into(),
                ..Default::default()
            }],
            requester_agent_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("dependencies[0].capability"), "{status:?}");
}

#[tokio::test]
async fn an_oversized_message_is_refused_without_harm() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await.max_encoding_message_size(64 * 1024 * 1024);
    let mut request = valid();
    request.tools[0].description = "x".repeat(5 * 1024 * 1024);
    let status = client.register_agent(request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("limit of 4194304 bytes"), "{status:?}");
    client.register_agent(valid()).await.expect("server still serves");
}

//! RegistryService behaviour a client relies on: idempotent upserts,
//! per-tool resolution in the registration answer, filters, pagination,
//! capabilities, explained resolution.

mod common;

use switchboard_proto::v1::{
    AgentStatus, DependencySpec, GetAgentRequest, ListAgentsRequest, ListCapabilitiesRequest,
    ResolveDependenciesRequest,
};
use switchboard_tests::TestRegistry;

#[tokio::test]
async fn registration_is_an_idempotent_upsert_with_resolution_and_heartbeat_parameters() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    client.register_agent(common::provider("date", "date_service", "1.2.0", &[])).await.unwrap();
    let mut request = common::consumer("hello", "date_service", ">=1.0", &[]);
    request.agent_id = "hello-0000abcd".into();

    let first = client.register_agent(request.clone()).await.unwrap().into_inner();
    assert!(first.created);
    assert_eq!(first.agent_id, "hello-0000abcd");
    assert_eq!(first.resolutions.len(), 1, "one resolution per tool");
    let providers = &first.resolutions[0].dependencies[0].providers;
    assert_eq!(providers.len(), 1);
    assert!(providers[0].agent_id.starts_with("date-"));
    let heartbeat = first.heartbeat.unwrap();
    assert_eq!(heartbeat.interval.unwrap().seconds, 5);
    assert!(first.resolution_revision > 0);

    // The same registration again changes nothing: same revision, no event.
    let second = client.register_agent(request.clone()).await.unwrap().into_inner();
    assert!(!second.created);
    assert_eq!(second.revision, first.revision);

    // A real change is a new revision, the record keeps its creation revision.
    request.version = "2.0".into();
    let third = client.register_agent(request).await.unwrap().into_inner();
    assert!(third.revision > first.revision);
    let agent = client
        .get_agent(GetAgentRequest { agent_id: "hello-0000abcd".into() })
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(agent.create_revision, first.revision);
    assert_eq!(agent.mod_revision, third.revision);
    assert_eq!(agent.status(), AgentStatus::Healthy);
}

#[tokio::test]
async fn list_agents_filters_and_pages_without_gaps_or_repeats() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    for i in 0..25 {
        let tags: &[&str] = if i % 2 == 0 { &["eu"] } else { &["us"] };
        client
            .register_agent(common::provider(&format!("w{i:02}"), "weather", "1.0.0", tags))
            .await
            .unwrap();
    }
    client.register_agent(common::provider("clock", "time", "1.0.0", &[])).await.unwrap();

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_agents(ListAgentsRequest {
                capability: "weather".into(),
                page_size: 10,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.agents.len() <= 10);
        seen.extend(page.agents.into_iter().map(|a| a.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 25, "every weather agent exactly once");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ordered by id, no repeats");

    let eu = client
        .list_agents(ListAgentsRequest { tag: "eu".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(eu.agents.len(), 13);
    let named = client
        .list_agents(ListAgentsRequest { name: "clock".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(named.agents.len(), 1);
    let healthy = client
        .list_agents(ListAgentsRequest {
            status: AgentStatus::Healthy as i32,
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(healthy.agents.len(), 26);
}

#[tokio::test]
async fn capabilities_and_explained_resolution() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    client.register_agent(common::provider("old", "date_service", "0.9.0", &[])).await.unwrap();
    client.register_agent(common::provider("new", "date_service", "1.4.0", &["eu"])).await.unwrap();

    let capabilities =
        client.list_capabilities(ListCapabilitiesRequest {}).await.unwrap().into_inner();
    let date = &capabilities.capabilities[0];
    assert_eq!(date.capability, "date_service");
    assert_eq!(date.versions, vec!["1.4.0", "0.9.0"]);
    assert_eq!(date.providers, 2);
    assert_eq!(date.healthy_providers, 2);

    let answer = client
        .resolve_dependencies(ResolveDependenciesRequest {
            dependencies: vec![
                DependencySpec {
                    capability: "date_service".into(),
                    version: ">=1.0".into(),
                    tags: vec![],
                },
                DependencySpec { capability: "nothing".into(), ..Default::default() },
            ],
            requester_agent_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let date = &answer.resolutions[0];
    assert_eq!(date.providers.len(), 1);
    assert!(date.providers[0].agent_id.starts_with("new-"));
    assert_eq!(date.candidates.len(), 2, "every candidate explained");
    let excluded = date.candidates.iter().find(|c| !c.chosen).unwrap();
    assert!(excluded.reason.contains("0.9.0"), "reason names the version: {}", excluded.reason);
    let missing = &answer.resolutions[1];
    assert!(missing.providers.is_empty());
    assert!(missing.reason.contains("nothing"), "{}", missing.reason);
}

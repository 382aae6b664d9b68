//! An acknowledged registration survives `kill -9` of the registry process.

mod common;

use std::collections::HashMap;

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{GetAgentRequest, ListAgentsRequest};
use switchboard_tests::TestRegistry;

const AGENTS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_registrations_survive_sigkill_with_their_revisions() {
    let process = TestRegistry::builder().child_process(&[]).start().await;
    let channel = switchboard_client::connect(&process.addr.to_string()).await.unwrap();

    // Concurrent registrations: they share flushes, and each is acked only
    // once durable.
    let mut calls = Vec::new();
    for i in 0..AGENTS {
        let mut client = RegistryServiceClient::new(channel.clone());
        calls.push(tokio::spawn(async move {
            let request = common::provider(&format!("agent{i}"), "cap", "1.0.0", &[]);
            client.register_agent(request).await.map(|r| r.into_inner())
        }));
    }
    let mut acked = HashMap::new();
    let mut epoch = String::new();
    for call in calls {
        let response = call.await.unwrap().expect("registration acknowledged");
        epoch = response.store_epoch.clone();
        acked.insert(response.agent_id, response.revision);
    }
    assert_eq!(acked.len(), AGENTS);
    let highest = *acked.values().max().unwrap();
    let again = process.relaunch();
    process.kill();

    let process = again.start().await;
    let channel = switchboard_client::connect(&process.addr.to_string()).await.unwrap();
    let mut client = RegistryServiceClient::new(channel);
    for (id, revision) in &acked {
        let agent = client
            .get_agent(GetAgentRequest { agent_id: id.clone() })
            .await
            .unwrap_or_else(|e| panic!("acknowledged agent {id} lost: {e}"))
            .into_inner();
        assert_eq!(agent.agent.unwrap().mod_revision, *revision, "revision of {id} changed");
    }
    let list = client
        .list_agents(ListAgentsRequest { page_size: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(list.revision >= highest, "revision went backwards: {} < {highest}", list.revision);
    let again = client.register_agent(common::provider("late", "cap", "1.0.0", &[])).await.unwrap();
    assert_eq!(again.get_ref().store_epoch, epoch, "epoch changed across a crash");
    assert!(again.get_ref().revision > highest);
}

//! `switchboard agents`: every agent (filtered), one row each.

use clap::Args;
use serde_json::json;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{Agent, AgentStatus, ListAgentsRequest};

use super::common::{self, AgentFilter, Output, OutputFlag, RegistryFlag};
use super::render::{agent_json, human_age, status_name};
use super::table::Table;

/// Agents per page asked of the registry (its maximum).
const PAGE_SIZE: i32 = 1000;

/// Flags of `switchboard agents`.
#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    registry: RegistryFlag,
    #[command(flatten)]
    output: OutputFlag,
    #[command(flatten)]
    filter: AgentFilter,
}

/// Lists the agents.
pub async fn run(args: AgentsArgs) -> anyhow::Result<()> {
    let address = &args.registry.registry;
    let mut client = RegistryServiceClient::new(common::registry(&args.registry).await?);
    let mut request = ListAgentsRequest {
        capability: args.filter.capability.unwrap_or_default(),
        tag: args.filter.tag.unwrap_or_default(),
        status: args.filter.status.map_or(AgentStatus::Unspecified, AgentStatus::from) as i32,
        name: args.filter.name.unwrap_or_default(),
        page_size: PAGE_SIZE,
        page_token: String::new(),
    };
    let (mut agents, mut revision) = (Vec::new(), 0);
    loop {
        let page = client
            .list_agents(request.clone())
            .await
            .map_err(|status| common::status_error(address, &status))?
            .into_inner();
        agents.extend(page.agents);
        revision = revision.max(page.revision);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    match args.output.output {
        Output::Json => common::print_json(&json!({
            "revision": revision,
            "agents": agents.iter().map(agent_json).collect::<Vec<_>>(),
        })),
        Output::Table => print!("{}", table(&agents).render()),
    }
    Ok(())
}

fn table(agents: &[Agent]) -> Table {
    let mut table = Table::new(&["ID", "NAME", "STATUS", "TOOLS", "HEARTBEAT", "ENDPOINT"]);
    for agent in agents {
        let tools: Vec<&str> = agent.tools.iter().map(|t| t.name.as_str()).collect();
        table.row(vec![
            agent.id.clone(),
            agent.name.clone(),
            status_name(agent.status).to_owned(),
            if tools.is_empty() { "-".to_owned() } else { tools.join(",") },
            human_age(agent.last_heartbeat_at.as_ref()),
            agent.endpoint.clone(),
        ]);
    }
    table
}

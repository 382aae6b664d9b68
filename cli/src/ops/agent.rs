//! `switchboard agent <id>`: one agent, its tools and the current wiring of
//! their dependencies.

use clap::Args;
use serde_json::json;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{GetAgentRequest, GetAgentResponse, Provider};

use super::ExitCode;
use super::common::{self, Output, OutputFlag, RegistryFlag};
use super::render::{
    agent_json, human_age, or_dash, spec_text, status_name, time, tool_resolution_json,
};
use super::table::Table;

/// Flags of `switchboard agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent's id (`switchboard agents` lists them).
    id: String,
    #[command(flatten)]
    registry: RegistryFlag,
    #[command(flatten)]
    output: OutputFlag,
}

/// Shows one agent.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let address = &args.registry.registry;
    let mut client = RegistryServiceClient::new(common::registry(&args.registry).await?);
    let request = GetAgentRequest { agent_id: args.id.clone() };
    let answer = client.get_agent(request).await.map_err(|status| {
        if status.code() == tonic::Code::NotFound {
            ExitCode::error(ExitCode::NOT_FOUND, format!("no agent {:?} in the registry", args.id))
        } else {
            common::status_error(address, &status)
        }
    })?;
    let answer = answer.into_inner();
    match args.output.output {
        Output::Json => common::print_json(&json!({
            "revision": answer.revision,
            "agent": answer.agent.as_ref().map(agent_json),
            "resolution_revision": answer.resolution_revision,
            "resolutions": answer.resolutions.iter().map(tool_resolution_json).collect::<Vec<_>>(),
        })),
        Output::Table => print!("{}", detail(&answer)),
    }
    Ok(())
}

fn detail(answer: &GetAgentResponse) -> String {
    let Some(agent) = &answer.agent else { return String::new() };
    let mut status = status_name(agent.status).to_owned();
    if !agent.status_reason.is_empty() {
        status.push_str(&format!(" ({})", agent.status_reason));
    }
    let mut labels: Vec<String> = agent.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    let at = |t| time(t).unwrap_or_else(|| "-".to_owned());
    let mut out = String::new();
    let mut fields = Table::new(&["id:", &agent.id]);
    for (key, value) in [
        ("name:", agent.name.clone()),
        ("version:", or_dash(&agent.version)),
        ("status:", status),
        ("endpoint:", agent.endpoint.clone()),
        ("labels:", or_dash(&labels.join(", "))),
        (
            "registered:",
            format!("{} (revision {})", at(agent.registered_at.as_ref()), agent.create_revision),
        ),
        ("status changed:", at(agent.status_changed_at.as_ref())),
        ("last heartbeat:", human_age(agent.last_heartbeat_at.as_ref())),
        ("modified:", format!("revision {}", agent.mod_revision)),
    ] {
        fields.row(vec![key.to_owned(), value]);
    }
    out.push_str(&fields.render());

    out.push_str("\nTOOLS\n");
    let mut tools = Table::new(&["NAME", "CAPABILITY", "VERSION", "TAGS", "DEPENDS ON"]);
    for tool in &agent.tools {
        let needs: Vec<String> = tool.dependencies.iter().map(spec_text).collect();
        tools.row(vec![
            tool.name.clone(),
            or_dash(&tool.capability),
            or_dash(&tool.version),
            or_dash(&tool.tags.join(",")),
            or_dash(&needs.join("; ")),
        ]);
    }
    out.push_str(&tools.render());

    let resolutions: Vec<_> =
        answer.resolutions.iter().filter(|r| !r.dependencies.is_empty()).collect();
    if !resolutions.is_empty() {
        out.push_str(&format!(
            "\nDEPENDENCIES (resolution revision {})\n",
            answer.resolution_revision
        ));
        let mut wiring = Table::new(&["TOOL", "NEEDS", "PROVIDERS"]);
        for tool in resolutions {
            for dependency in &tool.dependencies {
                let needs = dependency.spec.as_ref().map(spec_text).unwrap_or_default();
                let providers = if dependency.providers.is_empty() {
                    format!("unresolved: {}", dependency.reason)
                } else {
                    dependency.providers.iter().map(provider_text).collect::<Vec<_>>().join("; ")
                };
                wiring.row(vec![tool.tool_name.clone(), needs, providers]);
            }
        }
        out.push_str(&wiring.render());
    }
    out
}

/// `date-service-1a2b3c4d get_date 1.0.0 (healthy) http://127.0.0.1:9000/mcp`.
fn provider_text(provider: &Provider) -> String {
    format!(
        "{} {} {} ({}) {}",
        provider.agent_id,
        provider.tool_name,
        or_dash(&provider.version),
        status_name(provider.status),
        provider.endpoint
    )
}

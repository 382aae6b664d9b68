//! `switchboard resolve <capability>`: who would serve this dependency now,
//! and why each candidate was chosen or excluded.

use clap::Args;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{DependencyResolution, DependencySpec, ResolveDependenciesRequest};

use super::ExitCode;
use super::common::{self, Output, OutputFlag, RegistryFlag};
use super::render::{or_dash, resolution_json, spec_text, status_name};
use super::table::Table;

/// Flags of `switchboard resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The capability needed.
    capability: String,
    /// Semver requirement (`>=1.2, <2`, `^1.2`, `1.x || 2.x`); any when absent.
    #[arg(long)]
    version: Option<String>,
    /// Tag constraint, repeatable: `tag` required, `+tag` preferred, `-tag` excluded.
    #[arg(long = "tag", allow_hyphen_values = true)]
    tags: Vec<String>,
    /// Resolve on behalf of this agent (its own tools are not candidates).
    #[arg(long)]
    requester: Option<String>,
    #[command(flatten)]
    registry: RegistryFlag,
    #[command(flatten)]
    output: OutputFlag,
}

/// Resolves one spec; exit code 4 when nothing can serve it.
pub async fn run(args: ResolveArgs) -> anyhow::Result<()> {
    let address = &args.registry.registry;
    let mut client = RegistryServiceClient::new(common::registry(&args.registry).await?);
    let spec = DependencySpec {
        capability: args.capability.clone(),
        version: args.version.unwrap_or_default(),
        tags: args.tags,
    };
    let request = ResolveDependenciesRequest {
        dependencies: vec![spec.clone()],
        requester_agent_id: args.requester.unwrap_or_default(),
    };
    let answer = client
        .resolve_dependencies(request)
        .await
        .map_err(|status| common::status_error(address, &status))?
        .into_inner();
    let resolution = answer.resolutions.into_iter().next().unwrap_or_default();
    match args.output.output {
        Output::Json => {
            let mut document = resolution_json(&resolution);
            document["revision"] = answer.revision.into();
            common::print_json(&document);
        }
        Output::Table => print!("{}", explain(&spec, &resolution)),
    }
    if resolution.providers.is_empty() {
        return Err(ExitCode::error(
            ExitCode::NOT_FOUND,
            format!("no provider for {}: {}", spec_text(&spec), resolution.reason),
        ));
    }
    Ok(())
}

fn explain(spec: &DependencySpec, resolution: &DependencyResolution) -> String {
    let verdict = match resolution.providers.len() {
        0 => "unresolved".to_owned(),
        1 => "1 provider".to_owned(),
        n => format!("{n} providers"),
    };
    let mut out = format!("{}: {verdict}", spec_text(spec));
    if !resolution.reason.is_empty() {
        out.push_str(&format!(" ({})", resolution.reason));
    }
    out.push('\n');
    if resolution.candidates.is_empty() {
        return out;
    }
    let mut table = Table::new(&[
        "CHOSEN", "AGENT", "TOOL", "VERSION", "STATUS", "SCORE", "ENDPOINT", "REASON",
    ]);
    for candidate in &resolution.candidates {
        let provider = candidate.provider.clone().unwrap_or_default();
        table.row(vec![
            if candidate.chosen { "*" } else { "-" }.to_owned(),
            provider.agent_id,
            provider.tool_name,
            or_dash(&provider.version),
            status_name(provider.status).to_owned(),
            provider.score.to_string(),
            provider.endpoint,
            or_dash(&candidate.reason),
        ]);
    }
    out.push('\n');
    out.push_str(&table.render());
    out
}

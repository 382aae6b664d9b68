//! `switchboard status`: is the mesh up? Registry health (`grpc.health.v1`),
//! revision and agent counts by status; gateway `/healthz` and `/readyz` on the
//! HTTP address of `--gateway`.
//!
//! The whole report is printed even when something is down; the exit code
//! then says what: 3 when the registry or the gateway is unreachable, 1 when
//! one answers but is not serving or not ready.

use std::time::Duration;

use clap::Args;
use serde_json::json;
use switchboard_proto::v1::ListCapabilitiesRequest;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{AgentStatus, ListAgentsRequest};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::ExitCode;
use super::common::{self, GatewayFlag, Output, OutputFlag, RegistryFlag};
use super::table::Table;
use crate::settings::ClientTlsArgs;

/// Longest wait for each probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Flags of `switchboard status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Check only the registry (no gateway deployed).
    #[arg(long)]
    skip_gateway: bool,
    #[command(flatten)]
    registry: RegistryFlag,
    #[command(flatten)]
    gateway: GatewayFlag,
    #[command(flatten)]
    output: OutputFlag,
}

/// What the registry said.
#[derive(Debug, Default)]
struct RegistryReport {
    error: Option<String>,
    health: String,
    revision: u64,
    counts: [u64; 3],
    capabilities: usize,
}

/// What the gateway said.
#[derive(Debug, Default)]
struct GatewayReport {
    error: Option<String>,
    healthz: Option<u16>,
    readyz: Option<u16>,
}

/// Probes both and prints the report.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let registry = probe_registry(&args.registry).await;
    let gateway = if args.skip_gateway {
        None
    } else {
        Some(probe_gateway(&args.gateway.gateway, &args.registry.tls).await)
    };
    match args.output.output {
        Output::Json => common::print_json(&report_json(&args, &registry, gateway.as_ref())),
        Output::Table => print!("{}", report_table(&args, &registry, gateway.as_ref())),
    }
    if let Some(error) = &registry.error {
        return Err(ExitCode::error(ExitCode::UNREACHABLE, error.clone()));
    }
    if let Some(error) = gateway.as_ref().and_then(|g| g.error.clone()) {
        return Err(ExitCode::error(ExitCode::UNREACHABLE, error));
    }
    if registry.health != "serving" {
        return Err(ExitCode::error(ExitCode::FAILED, format!("registry is {}", registry.health)));
    }
    if let Some(gateway) = &gateway
        && (gateway.healthz != Some(200) || gateway.readyz != Some(200))
    {
        return Err(ExitCode::error(ExitCode::FAILED, "gateway is not ready"));
    }
    Ok(())
}

async fn probe_registry(flag: &RegistryFlag) -> RegistryReport {
    let address = flag.registry.as_str();
    let channel = match common::registry(flag).await {
        Ok(channel) => channel,
        Err(error) => {
            return RegistryReport { error: Some(error.to_string()), ..Default::default() };
        }
    };
    let mut report = RegistryReport::default();
    let mut health = HealthClient::new(channel.clone());
    let check = health.check(HealthCheckRequest { service: String::new() });
    report.health = match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(answer)) => {
            let status = ServingStatus::try_from(answer.into_inner().status).unwrap_or_default();
            status.as_str_name().to_ascii_lowercase().replace('_', " ")
        }
        Ok(Err(status)) => format!("unknown ({})", status.message()),
        Err(_) => "unknown (no answer)".to_owned(),
    };
    let mut client = RegistryServiceClient::new(channel);
    let mut request = ListAgentsRequest { page_size: 1000, ..ListAgentsRequest::default() };
    loop {
        let page = match client.list_agents(request.clone()).await {
            Ok(page) => page.into_inner(),
            Err(status) => {
                report.error = Some(common::status_error(address, &status).to_string());
                return report;
            }
        };
        report.revision = report.revision.max(page.revision);
        for agent in &page.agents {
            match AgentStatus::try_from(agent.status) {
                Ok(AgentStatus::Healthy) => report.counts[0] += 1,
                Ok(AgentStatus::Degraded) => report.counts[1] += 1,
                Ok(AgentStatus::Expired) => report.counts[2] += 1,
                _ => {}
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    if let Ok(answer) = client.list_capabilities(ListCapabilitiesRequest {}).await {
        report.capabilities = answer.into_inner().capabilities.len();
    }
    report
}

async fn probe_gateway(url: &str, tls: &ClientTlsArgs) -> GatewayReport {
    let base = match reqwest::Url::parse(url) {
        Ok(base) => base,
        Err(error) => {
            return GatewayReport {
                error: Some(format!("bad gateway URL {url:?}: {error}")),
                ..Default::default()
            };
        }
    };
    let tls = match common::client_tls(tls, url) {
        Ok(tls) => tls,
        Err(error) => {
            return GatewayReport { error: Some(error.to_string()), ..Default::default() };
        }
    };
    let builder = switchboard_tls::http_client_builder().timeout(PROBE_TIMEOUT);
    let builder = match &tls {
        Some(tls) => tls.http_client(builder),
        None => builder,
    };
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => {
            return GatewayReport { error: Some(error.to_string()), ..Default::default() };
        }
    };
    let mut codes = [None, None];
    for (path, code) in ["/healthz", "/readyz"].into_iter().zip(&mut codes) {
        let Ok(probe) = base.join(path) else { continue };
        match client.get(probe).send().await {
            Ok(response) => *code = Some(response.status().as_u16()),
            Err(error) => {
                let origin = base.origin().ascii_serialization();
                let error = format!(
                    "cannot reach the gateway at {origin}: {}",
                    switchboard_client::error_chain(&error)
                );
                return GatewayReport { error: Some(error), ..Default::default() };
            }
        }
    }
    let [healthz, readyz] = codes;
    GatewayReport { error: None, healthz, readyz }
}

fn report_json(
    args: &StatusArgs,
    registry: &RegistryReport,
    gateway: Option<&GatewayReport>,
) -> serde_json::Value {
    let [healthy, degraded, expired] = registry.counts;
    json!({
        "registry": {
            "address": args.registry.registry,
            "reachable": registry.error.is_none(),
            "error": registry.error,
            "health": registry.health,
            "revision": registry.revision,
            "agents": {
                "total": healthy + degraded + expired,
                "healthy": healthy,
                "degraded": degraded,
                "expired": expired,
            },
            "capabilities": registry.capabilities,
        },
        "gateway": gateway.map(|g| json!({
            "url": args.gateway.gateway,
            "reachable": g.error.is_none(),
            "error": g.error,
            "healthz": g.healthz,
            "readyz": g.readyz,
            "ready": g.healthz == Some(200) && g.readyz == Some(200),
        })),
    })
}

fn report_table(
    args: &StatusArgs,
    registry: &RegistryReport,
    gateway: Option<&GatewayReport>,
) -> String {
    let mut table = Table::new(&["registry", &args.registry.registry]);
    match &registry.error {
        Some(error) => table.row(vec!["  error:".into(), error.clone()]),
        None => {
            let [healthy, degraded, expired] = registry.counts;
            table.row(vec!["  health:".into(), registry.health.clone()]);
            table.row(vec!["  revision:".into(), registry.revision.to_string()]);
            table.row(vec![
                "  agents:".into(),
                format!(
                    "{} (healthy {healthy}, degraded {degraded}, expired {expired})",
                    healthy + degraded + expired
                ),
            ]);
            table.row(vec!["  capabilities:".into(), registry.capabilities.to_string()]);
        }
    }
    if let Some(gateway) = gateway {
        table.row(vec!["gateway".into(), args.gateway.gateway.clone()]);
        match &gateway.error {
            Some(error) => table.row(vec!["  error:".into(), error.clone()]),
            None => {
                table.row(vec!["  /healthz:".into(), probe_text(gateway.healthz)]);
                table.row(vec!["  /readyz:".into(), probe_text(gateway.readyz)]);
            }
        }
    }
    table.render()
}

fn probe_text(code: Option<u16>) -> String {
    match code {
        Some(200) => "200 ok".to_owned(),
        Some(code) => format!("{code} not ok"),
        None => "-".to_owned(),
    }
}

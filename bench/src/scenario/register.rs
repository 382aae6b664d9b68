//! `register`: C concurrent clients, each registering new agents (five
//! tools each) back to back for the phase; every call is acknowledged only
//! once durable, so this measures group commit.

use std::time::Duration;

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;

use crate::error::BenchResult;
use crate::fixture::{
    TOOLS_PER_AGENT, agent_id, agent_request, deregister_all, registration_bytes, run_tag,
};
use crate::phase::closed_loop;
use crate::report::{Report, Row};

use super::Ctx;

/// Most registrations of one case, whatever the duration.
const MAX_REGISTRATIONS: usize = 2_000_000;
/// Longest cleanup of a registry that was not spawned.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let sizes = options.sizes(&options.concurrency, &[64], &[4]);
    let length = options.phase(Duration::from_secs(10), Duration::from_millis(1500));
    for clients in sizes {
        let target = ctx.target(&[]).await?;
        let tag = run_tag();
        let connections = options.connections.unwrap_or(clients.min(8));
        let channels = target.channels(connections).await?;
        let label = format!("{clients} clients");
        let plan = ctx.plan(&label, "registrations", length, &target);
        let stats = closed_loop(&plan, clients, |worker| {
            let client = RegistryServiceClient::new(channels[worker % connections].clone());
            let tag = tag.clone();
            move |n: usize| {
                let request = (n < MAX_REGISTRATIONS).then(|| agent_request("reg", &tag, n))?;
                let mut client = client.clone();
                Some(async move { client.register_agent(request).await.is_ok() })
            }
        })
        .await;
        report.rows.push(
            Row::phase(format!("register (durable), {clients} clients"), &stats)
                .with("tools_per_agent", TOOLS_PER_AGENT as u64)
                .with("request_bytes", registration_bytes() as u64)
                .with("connections", connections as u64),
        );
        if !target.is_spawned() {
            let issued = (stats.issued as usize).min(MAX_REGISTRATIONS);
            let ids = (0..issued).map(|i| agent_id("reg", &tag, i)).collect();
            ctx.progress.say(format!("deregistering {issued} benchmark agents"));
            let cleanup = deregister_all(&channels[0], ids, clients);
            if tokio::time::timeout(CLEANUP_TIMEOUT, cleanup).await.is_err() {
                report.note("cleanup: deregistering the benchmark agents took over 120 s; stopped");
            }
        }
        target.shutdown().await;
    }
    report.note(
        "register: each call registers a new agent with 5 tools (schema, description, tags, one \
         dependency) and returns once the write is flushed to disk",
    );
    Ok(())
}

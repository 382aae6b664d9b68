//! `rewire`: how fast a dependent's wiring follows its providers.
//!
//! - join: a provider registers → the dependent's heartbeat stream gets the
//!   pushed update naming it (from RegisterAgent sent);
//! - leave: the provider deregisters → the update saying "unresolved";
//! - crash: a provider process (`switchboard-bench provider`) is SIGKILLed
//!   while a second provider serves the same capability → the update that
//!   drops the dead one (from the kill);
//! - fan-out (`--dependents N,…`, instead of the three above): one more
//!   provider of a capability N dependents share → acknowledged, and every
//!   dependent pushed.

use std::time::{Duration, Instant};

use switchboard_proto::v1::DeregisterAgentRequest;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::fixture::run_tag;
use crate::helpers::{StreamingAgent, dependent_request, provider_request, providers};
use crate::process::ChildProcess;
use crate::report::{Report, Row};
use crate::stats::Latency;
use crate::target::RegistryTarget;

use super::Ctx;

mod fanout;

/// Longest wait for one pushed update.
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    if !options.dependents.is_empty() {
        return fanout::run(ctx, report, &options.dependents).await;
    }
    let joins = options.iterations.unwrap_or(if options.smoke { 5 } else { 200 });
    let crashes = options.iterations.map_or(if options.smoke { 2 } else { 20 }, |i| i.min(50));
    let target = ctx.target(&[]).await?;
    let tag = run_tag();
    let channel = crate::helpers::connect(&target.addr).await?;
    ctx.progress.say(format!("{joins} provider joins and leaves"));
    let (join, leave) = join_and_leave(&channel, &tag, joins).await?;
    report.rows.push(Row::samples("provider joins → dependent rewired", &join));
    report.rows.push(Row::samples("provider deregisters → dependent rewired", &leave));
    ctx.progress.say(format!("{crashes} provider processes SIGKILLed"));
    let crash = crash(ctx, &target, &channel, &tag, crashes).await?;
    report.rows.push(
        Row::samples("provider SIGKILLed → dependent rewired", &crash)
            .with_registry(target.stats()),
    );
    report.note(
        "rewire: latency = RegisterAgent/DeregisterAgent sent (or SIGKILL sent) → the pushed \
         ResolutionUpdate received on the dependent's heartbeat stream; one change at a time; \
         the gateway's routing after a crash is not part of this scenario",
    );
    target.shutdown().await;
    Ok(())
}

/// `rounds` providers, one at a time, register then deregister; returns the
/// join and the leave latencies seen by a dependent.
async fn join_and_leave(
    channel: &Channel,
    tag: &str,
    rounds: usize,
) -> BenchResult<(Latency, Latency)> {
    let mut registry = RegistryServiceClient::new(channel.clone());
    let capability = format!("bench.rewire.{tag}");
    let mut dependent = StreamingAgent::start(
        channel.clone(),
        dependent_request(&format!("bench-dep-{tag}"), &capability),
    )
    .await?;
    let (mut join, mut leave) = (Latency::new(), Latency::new());
    for i in 0..rounds {
        let provider = format!("bench-prov-{tag}-{i}");
        dependent.drain();
        let sent = Instant::now();
        registry
            .register_agent(provider_request(&provider, &capability))
            .await
            .map_err(|s| BenchError::rpc("registering a provider", s))?;
        let at = dependent
            .wait_update("the join push", PUSH_TIMEOUT, |u| {
                providers(u).contains(&provider.as_str())
            })
            .await?;
        join.record(at.saturating_duration_since(sent));
        let sent = Instant::now();
        registry
            .deregister_agent(DeregisterAgentRequest { agent_id: provider.clone() })
            .await
            .map_err(|s| BenchError::rpc("deregistering a provider", s))?;
        let at = dependent
            .wait_update("the leave push", PUSH_TIMEOUT, |u| providers(u).is_empty())
            .await?;
        leave.record(at.saturating_duration_since(sent));
    }
    Ok((join, leave))
}

/// `rounds` provider processes, one at a time, SIGKILLed while a backup
/// provider serves the same capability; returns kill → push latencies.
async fn crash(
    ctx: &Ctx<'_>,
    target: &RegistryTarget,
    channel: &Channel,
    tag: &str,
    rounds: usize,
) -> BenchResult<Latency> {
    let capability = format!("bench.crash.{tag}");
    let backup_id = format!("bench-backup-{tag}");
    let _backup =
        StreamingAgent::start(channel.clone(), provider_request(&backup_id, &capability)).await?;
    let mut dependent = StreamingAgent::start(
        channel.clone(),
        dependent_request(&format!("bench-dep2-{tag}"), &capability),
    )
    .await?;
    let args: Vec<String> = ["provider", "--registry", &target.addr, "--capability", &capability]
        .map(String::from)
        .into();
    let mut crash = Latency::new();
    for _ in 0..rounds {
        let mut victim = ChildProcess::spawn(&ctx.options.bench_bin, &args, &[])?;
        let victim_id = victim
            .wait_for_line("REGISTERED", Duration::from_secs(30), |line| {
                line.strip_prefix("REGISTERED ").map(|id| id.trim().to_owned())
            })
            .await?;
        dependent
            .wait_update("the victim in the wiring", PUSH_TIMEOUT, |u| {
                let p = providers(u);
                p.contains(&victim_id.as_str()) && p.contains(&backup_id.as_str())
            })
            .await?;
        let killed = Instant::now();
        victim.signal(nix::sys::signal::Signal::SIGKILL)?;
        let at = dependent
            .wait_update("the push without the killed provider", PUSH_TIMEOUT, |u| {
                !providers(u).contains(&victim_id.as_str())
            })
            .await?;
        crash.record(at.saturating_duration_since(killed));
        victim.kill().await;
    }
    Ok(crash)
}

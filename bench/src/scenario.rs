//! Dispatch of the scenarios and what they share: the registry to load, the
//! agent population some of them heartbeat with, and the report being filled.

mod gateway;
mod growth;
mod heartbeat;
mod population;
mod register;
mod replica_kill;
mod restart;
mod rewire;
mod watch_fanout;
mod watch_memory;

use crate::error::BenchResult;
use crate::etcd_cluster::EtcdCluster;
use crate::phase::PhasePlan;
use crate::progress::Progress;
use crate::report::Report;
use crate::target::RegistryTarget;
use crate::{BenchOptions, Scenario};

pub(crate) use population::Population;

/// What a running scenario works with.
pub(crate) struct Ctx<'a> {
    pub options: &'a BenchOptions,
    pub progress: Progress,
}

impl Ctx<'_> {
    /// A registry for one case: a fresh child with `spawn_args` when
    /// spawning (N replicas on a fresh etcd prefix with `--replicas N`), else
    /// the given one.
    pub async fn target(&self, spawn_args: &[String]) -> BenchResult<RegistryTarget> {
        if let Some(count) = self.options.replicas {
            let etcd = if self.options.etcd_endpoints.is_empty() {
                let etcd = EtcdCluster::start().await?;
                self.progress.say(format!("started etcd members at {}", etcd.endpoints_flag()));
                etcd
            } else {
                EtcdCluster::external(&self.options.etcd_endpoints)
            };
            let bin = self.options.switchboard()?;
            let target = RegistryTarget::spawn_replicas(bin, spawn_args, count, etcd).await?;
            self.progress.say(format!(
                "spawned {count} registry replicas (etcd store) at {}; measured process: pid {}",
                target.addrs().join(", "),
                target.pid().unwrap_or(0)
            ));
            return Ok(target);
        }
        match &self.options.registry {
            Some(addr) => RegistryTarget::external(addr).await,
            None => {
                let target = RegistryTarget::spawn(self.options.switchboard()?, spawn_args).await?;
                self.progress.say(format!(
                    "spawned registry pid {} at {}",
                    target.pid().unwrap_or(0),
                    target.addr
                ));
                Ok(target)
            }
        }
    }

    /// A phase of `length` shown as `label`, measuring `target`'s process.
    pub fn plan<'a>(
        &'a self,
        label: &'a str,
        unit: &'a str,
        length: std::time::Duration,
        target: &RegistryTarget,
    ) -> PhasePlan<'a> {
        PhasePlan { progress: &self.progress, label, unit, length, server: target.pid() }
    }
}

pub(crate) async fn run(options: &BenchOptions) -> BenchResult<Report> {
    let name = options.scenario.name();
    let ctx = Ctx { options, progress: Progress::new(name, options.quiet) };
    let mut report = Report::new(name, options.smoke);
    if options.registry.is_none() {
        let bin = options.switchboard_bin.to_string_lossy();
        if bin.contains("/debug/") {
            report.machine.build = "debug".into();
            report.note("the registry is a debug build: figures are not representative (use a release build)");
        } else if bin.contains("/release/") {
            report.machine.build = "release".into();
        }
    }
    match options.scenario {
        Scenario::Heartbeat => heartbeat::run(&ctx, &mut report).await?,
        Scenario::Register => register::run(&ctx, &mut report).await?,
        Scenario::WatchFanout => watch_fanout::run(&ctx, &mut report).await?,
        Scenario::WatchMemory => watch_memory::run(&ctx, &mut report).await?,
        Scenario::Rewire => rewire::run(&ctx, &mut report).await?,
        Scenario::Gateway => gateway::run(&ctx, &mut report).await?,
        Scenario::Restart => restart::run(&ctx, &mut report).await?,
        Scenario::Growth => growth::run(&ctx, &mut report).await?,
        Scenario::ReplicaKill => replica_kill::run(&ctx, &mut report).await?,
    }
    if let Some(replicas) = options.replicas {
        report.system = format!("switchboard, {replicas} replicas on etcd");
        report.note(format!(
            "{replicas} registry replicas (--store etcd) on one etcd prefix{}; connections \
             alternate between replicas; registry CPU and RSS figures are replica 0's only",
            if options.etcd_endpoints.is_empty() { " (3 etcd members started here)" } else { "" }
        ));
    }
    Ok(report)
}

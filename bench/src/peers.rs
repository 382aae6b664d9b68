//! The peers' side of the side-by-side comparisons (`bench/compare-*`):
//! the same scenarios, flags and phases driven against etcd (feature `etcd`)
//! or against the MCP Mesh registry's HTTP API, reported in the same
//! [`crate::Report`] with the same case names, so rows can be paired.

pub mod mcp_mesh;

#[cfg(feature = "etcd")]
pub mod etcd;

use std::time::Duration;

use crate::error::BenchResult;
use crate::phase::PhasePlan;
use crate::progress::Progress;
use crate::report::Report;
use crate::{BenchOptions, Peer};

/// The peer being driven.
pub(crate) struct Driven<'a> {
    /// Its address.
    pub url: &'a str,
    /// Where progress lines go.
    pub progress: &'a Progress,
    /// Its process, when it runs here (found by its listening port).
    pub server: Option<u32>,
}

/// Runs the scenario of `options` against `peer`.
pub(crate) async fn run(options: &BenchOptions, peer: &Peer) -> BenchResult<Report> {
    let name = options.scenario.name();
    let progress = Progress::new(&format!("{} {name}", peer.flag()), options.quiet);
    let mut report = Report::new(name, options.smoke);
    let (Peer::Etcd(url) | Peer::McpMesh(url)) = peer;
    let driven = Driven { url, progress: &progress, server: server_pid(url) };
    match peer {
        Peer::Etcd(_) => {
            report.system = "etcd".into();
            report.machine.build = "debian".into();
            run_etcd(options, &driven, &mut report).await?;
        }
        Peer::McpMesh(_) => {
            report.system = "mcp-mesh-registry 3.7.1".into();
            report.machine.build = "upstream".into();
            mcp_mesh::run(options, &driven, &mut report).await?;
        }
    }
    // Rows of samples have no window: they get the server's figures now.
    report.attach_process(driven.server);
    Ok(report)
}

#[cfg(feature = "etcd")]
async fn run_etcd(
    options: &BenchOptions,
    driven: &Driven<'_>,
    report: &mut Report,
) -> BenchResult<()> {
    etcd::run(options, driven, report).await
}

#[cfg(not(feature = "etcd"))]
async fn run_etcd(_: &BenchOptions, _: &Driven<'_>, _: &mut Report) -> BenchResult<()> {
    Err(crate::BenchError::Option(
        "--etcd: this switchboard-bench was built without the `etcd` feature (it needs protoc): \
         cargo build --release -p switchboard-bench --features etcd"
            .into(),
    ))
}

impl Driven<'_> {
    /// A phase of `length` shown as `label`, measuring the peer's process.
    pub fn plan<'a>(&'a self, label: &'a str, unit: &'a str, length: Duration) -> PhasePlan<'a> {
        PhasePlan { progress: self.progress, label, unit, length, server: self.server }
    }
}

/// The pid of the server listening at `url` (`http://127.0.0.1:2379`), when
/// it runs here.
fn server_pid(url: &str) -> Option<u32> {
    let addr = url.trim_start_matches("http://").trim_end_matches('/').parse().ok()?;
    crate::procfs::listener_pid(addr)
}

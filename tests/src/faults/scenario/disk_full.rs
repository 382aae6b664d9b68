//! A full disk under the registry: its data directory is a tmpfs of a few
//! MiB, filled with registrations until a write fails. The client must get a
//! clear error, the registry must stop rather than serve a state it could
//! not make durable, and once its data is moved to a larger disk every
//! acknowledged registration must be there.
//!
//! Needs root (to mount the tmpfs); otherwise it returns an error saying so.

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use tempfile::TempDir;
use tonic::Code;
use tonic::transport::Channel;

use super::{rules, settle};
use crate::faults::agent::CALL_TIMEOUT;
use crate::faults::cluster::{Cluster, Settings};
use crate::faults::load::{registration, registry_client};
use crate::faults::run::{Report, Run};
use crate::history::{History, OpKind, Outcome};

/// Size of the tmpfs.
const DISK: &str = "4m";
/// Concurrent writers (so that failing batches hold several writes).
const WRITERS: usize = 4;
/// Registrations per writer at most; far more than fit.
const MOST: usize = 2000;

/// What the disk-full run saw, besides the history.
#[derive(Debug)]
pub struct DiskFull {
    /// The run's report (checked after the restart on a larger disk).
    pub report: Report,
    /// How each writer's last write failed (code and message), earliest
    /// first: the writes the full disk refused, and those cut short by the
    /// registry's stop.
    pub errors: Vec<(Code, String)>,
    /// How the registry process ended by itself, if it did.
    pub exit: Option<ExitStatus>,
    /// Registrations acknowledged before the disk filled up.
    pub acknowledged: usize,
    /// Why the registry would not start on its data moved to a larger
    /// disk, if it would not.
    pub reopen_error: Option<String>,
}

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: TempDir,
}

/// The disk-full run; an error when no tmpfs can be mounted here.
pub async fn disk_full(seed: u64) -> Result<DiskFull, String> {
    let tmpfs = Tmpfs::mount(DISK)?;
    let mut run = Run::new("disk-full", seed);
    let settings = Settings::short();
    let cluster_seed = run.sub_seed();
    let data = Arc::new(TempDir::new_in(tmpfs.dir.path()).map_err(|e| format!("temp dir: {e}"))?);
    let mut cluster = Cluster::start_in(data, settings.clone(), &run.history, cluster_seed).await;
    let addr = cluster.addr();

    let calls = (0..WRITERS).map(|w| fill(registry_client(&addr), w, run.history.clone()));
    let mut errors: Vec<_> = join_all(calls).await.into_iter().flatten().collect();
    errors.sort_by_key(|(at, _, _)| *at);
    run.injected("data disk full");
    let exit = cluster.wait_exit(Duration::from_secs(10)).await;
    if exit.is_none() {
        // It hangs instead of stopping: kill it, then check what it kept.
        cluster.kill().await;
        run.note("the registry did not stop within 10 s of the failed write; killed".into());
    }
    let acknowledged = run.history.counts().get("register ok").copied().unwrap_or(0);

    let reopened = cluster.restart_elsewhere().await;
    if let Err(error) = &reopened {
        run.note(format!("the registry would not start on its data after the full disk: {error}"));
    } else {
        settle(&mut run, &addr, &mut []).await;
    }
    cluster.stop().await;
    drop(cluster);
    drop(tmpfs);
    run.note(format!("{acknowledged} registrations acknowledged before the disk was full"));
    let seen: Vec<String> =
        errors.iter().map(|(_, code, message)| format!("{code:?} {message:?}")).collect();
    run.note(format!("failed writes: {}; registry exit: {exit:?}", seen.join(", ")));
    Ok(DiskFull {
        report: run.finish(&rules(&settings)),
        errors: errors.into_iter().map(|(_, code, message)| (code, message)).collect(),
        exit,
        acknowledged,
        reopen_error: reopened.err(),
    })
}

/// Registers bulky agents until a registration fails; returns when and how.
async fn fill(
    mut client: RegistryServiceClient<Channel>,
    writer: usize,
    history: History,
) -> Option<(SystemTime, Code, String)> {
    for n in 0..MOST {
        let agent_id = format!("bulk{writer}-{n:08x}");
        let invoked = SystemTime::now();
        let answer = tokio::time::timeout(
            CALL_TIMEOUT,
            client.register_agent(registration(&agent_id, "bulk", 16_000)),
        )
        .await;
        let result = match answer {
            Ok(Ok(response)) => {
                let response = response.into_inner();
                Outcome::Written { revision: response.revision, epoch: response.store_epoch }
            }
            Ok(Err(status)) => Outcome::failed(&status),
            Err(_) => Outcome::failed(&tonic::Status::deadline_exceeded("no answer in time")),
        };
        let op = history.record(
            &format!("writer-{writer}"),
            OpKind::Register { agent_id },
            invoked,
            result,
        );
        if let Outcome::Failed { code, message } = op.result {
            return Some((op.completed_at, code, message));
        }
    }
    None
}

// === impl Tmpfs ===

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = TempDir::new().map_err(|e| format!("temp dir: {e}"))?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map_err(|e| format!("mount: {e}"))?;
        if !status.success() {
            return Err(format!("mount -t tmpfs failed ({status}): needs root"));
        }
        Ok(Self { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = umount(self.dir.path(), false) || umount(self.dir.path(), true);
        if !unmounted {
            eprintln!("could not unmount the tmpfs at {}", self.dir.path().display());
        }
    }
}

fn umount(dir: &Path, lazy: bool) -> bool {
    let mut command = Command::new("umount");
    if lazy {
        command.arg("-l");
    }
    command.arg(dir).status().is_ok_and(|s| s.success())
}

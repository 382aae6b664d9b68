//! The etcd under a set of registry replicas (`--replicas N`): a 3-member
//! cluster of the `etcd` binary started here on free loopback ports with its
//! data in a temporary directory (killed when dropped), or the members given
//! by `--etcd-endpoints`.
//!
//! Its members' Prometheus text at `/metrics` gives the write counters
//! (`etcd_mvcc_put_total`, `etcd_mvcc_txn_total`) that show a heartbeat
//! writes nothing to etcd.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{BenchError, BenchResult};
use crate::process::ChildProcess;

/// Members of a cluster started here: a quorum survives one loss.
const MEMBERS: usize = 3;
/// Longest wait for every member to answer `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The etcd the replicas share.
pub struct EtcdCluster {
    /// Client endpoints (`127.0.0.1:PORT`), as `--etcd-endpoints` takes them.
    pub endpoints: Vec<String>,
    members: Vec<ChildProcess>,
    _dir: Option<TempDir>,
}

/// Write counters of etcd's key-value store, summed over members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EtcdWrites {
    /// `etcd_mvcc_put_total`: keys put (also inside transactions).
    pub puts: u64,
    /// `etcd_mvcc_txn_total`: transactions of more than one operation.
    pub txns: u64,
    /// `etcd_mvcc_delete_total`: keys deleted.
    pub deletes: u64,
}

// === impl EtcdCluster ===

impl EtcdCluster {
    /// The members at `endpoints` (`host:port`), started elsewhere.
    pub fn external(endpoints: &[String]) -> Self {
        let endpoints =
            endpoints.iter().map(|e| e.trim_start_matches("http://").to_owned()).collect();
        Self { endpoints, members: Vec::new(), _dir: None }
    }

    /// Starts three members of `$ETCD_BIN` (default `etcd` on the PATH) and
    /// waits until each answers `/health`.
    pub async fn start() -> BenchResult<Self> {
        let bin = std::env::var_os("ETCD_BIN").map_or_else(|| PathBuf::from("etcd"), PathBuf::from);
        let dir = tempfile::Builder::new()
            .prefix("switchboard-bench-etcd-")
            .tempdir()
            .map_err(|e| BenchError::io("creating etcd's temp data dir", e))?;
        // Peer URLs form the initial cluster, so every port is chosen first.
        let ports: Vec<(u16, u16)> =
            (0..MEMBERS).map(|_| Ok((free_port()?, free_port()?))).collect::<BenchResult<_>>()?;
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("sb-bench-{:08x}", rand::random::<u32>());
        let mut members = Vec::with_capacity(MEMBERS);
        for (i, (client, peer)) in ports.iter().enumerate() {
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let args: Vec<String> = [
                "--name",
                &format!("m{i}"),
                "--data-dir",
                &dir.path().join(format!("m{i}")).display().to_string(),
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &initial,
                "--initial-cluster-token",
                &token,
                "--initial-cluster-state",
                "new",
                "--log-level",
                "warn",
            ]
            .map(String::from)
            .into();
            members.push(ChildProcess::spawn(&bin, &args, &[])?);
        }
        let endpoints = ports.iter().map(|(client, _)| format!("127.0.0.1:{client}")).collect();
        let cluster = Self { endpoints, members, _dir: Some(dir) };
        cluster.wait_healthy(START_TIMEOUT).await?;
        Ok(cluster)
    }

    /// Whether the members were started here.
    pub fn is_spawned(&self) -> bool {
        !self.members.is_empty()
    }

    /// The pids of the members started here.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(ChildProcess::pid).collect()
    }

    /// `--etcd-endpoints` for a replica.
    pub fn endpoints_flag(&self) -> String {
        self.endpoints.join(",")
    }

    /// The write counters summed over every member now.
    pub async fn writes(&self) -> BenchResult<EtcdWrites> {
        let http = reqwest::Client::new();
        let mut total = EtcdWrites::default();
        for endpoint in &self.endpoints {
            let url = format!("http://{endpoint}/metrics");
            let text = async { http.get(&url).send().await?.error_for_status()?.text().await }
                .await
                .map_err(|e| BenchError::Option(format!("reading etcd metrics at {url}: {e}")))?;
            total = total.plus(EtcdWrites::parse(&text));
        }
        Ok(total)
    }

    /// Waits until the write counters stop moving (two readings `quiet`
    /// apart agree), at most `timeout`: claims and status writes that trail
    /// a registration burst are not counted against what follows.
    pub async fn settle(&self, quiet: Duration, timeout: Duration) -> BenchResult<EtcdWrites> {
        let deadline = Instant::now() + timeout;
        let mut last = self.writes().await?;
        loop {
            tokio::time::sleep(quiet).await;
            let now = self.writes().await?;
            if now == last || Instant::now() > deadline {
                return Ok(now);
            }
            last = now;
        }
    }

    async fn wait_healthy(&self, timeout: Duration) -> BenchResult<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        for endpoint in &self.endpoints {
            let url = format!("http://{endpoint}/health");
            loop {
                let healthy = match http.get(&url).send().await {
                    Ok(response) => response.text().await.is_ok_and(|t| t.contains("\"true\"")),
                    Err(_) => false,
                };
                if healthy {
                    break;
                }
                if Instant::now() > deadline {
                    let tail =
                        self.members.iter().map(ChildProcess::stderr_tail).collect::<Vec<_>>();
                    return Err(BenchError::Process {
                        program: "etcd".into(),
                        message: format!(
                            "{url} not healthy within {timeout:?}; stderr: {}",
                            tail.join("\n")
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
}

// === impl EtcdWrites ===

impl EtcdWrites {
    /// The counters in one member's Prometheus text (absent ones are 0).
    pub fn parse(text: &str) -> Self {
        let mut writes = Self::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut words = line.split_whitespace();
            let (Some(name), Some(value)) = (words.next(), words.next()) else { continue };
            // Counters are printed as floats (`1.234e+06` for large ones).
            let Some(value) = value.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
            else {
                continue;
            };
            let slot = match name {
                "etcd_mvcc_put_total" => &mut writes.puts,
                "etcd_mvcc_txn_total" => &mut writes.txns,
                "etcd_mvcc_delete_total" => &mut writes.deletes,
                _ => continue,
            };
            *slot = value.round() as u64;
        }
        writes
    }

    /// Both summed.
    pub fn plus(self, other: Self) -> Self {
        Self {
            puts: self.puts + other.puts,
            txns: self.txns + other.txns,
            deletes: self.deletes + other.deletes,
        }
    }

    /// What happened between `before` and `self`.
    pub fn since(self, before: Self) -> Self {
        Self {
            puts: self.puts.saturating_sub(before.puts),
            txns: self.txns.saturating_sub(before.txns),
            deletes: self.deletes.saturating_sub(before.deletes),
        }
    }
}

/// A port free on 127.0.0.1 now (released just before etcd binds it).
fn free_port() -> BenchResult<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BenchError::io("finding a free port for etcd", e))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| BenchError::io("reading a free port", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_counters_come_from_the_prometheus_text() {
        let text = "# HELP etcd_mvcc_put_total Total number of puts seen by this member.\n\
                    # TYPE etcd_mvcc_put_total counter\n\
                    etcd_mvcc_put_total 1.234567e+06\n\
                    etcd_mvcc_txn_total 42\n\
                    etcd_mvcc_range_total 99\n\
                    etcd_mvcc_delete_total 3\n\
                    etcd_mvcc_put_total_bogus nan\n";
        let writes = EtcdWrites::parse(text);
        assert_eq!(writes, EtcdWrites { puts: 1_234_567, txns: 42, deletes: 3 });
        assert_eq!(EtcdWrites::parse("garbage\n\netcd_mvcc_txn_total -1"), EtcdWrites::default());
    }

    #[test]
    fn deltas_sum_members_and_never_go_negative() {
        let a = EtcdWrites { puts: 10, txns: 5, deletes: 1 };
        let b = EtcdWrites { puts: 1, txns: 2, deletes: 0 };
        assert_eq!(a.plus(b), EtcdWrites { puts: 11, txns: 7, deletes: 1 });
        assert_eq!(a.plus(b).since(a), b);
        assert_eq!(b.since(a), EtcdWrites::default());
    }
}

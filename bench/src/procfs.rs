//! Reading a process's memory and write activity from `/proc` (Linux), and
//! finding which local process listens on a port.

use std::net::SocketAddr;

use serde::Serialize;

/// Memory, CPU and write figures of one process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProcessStats {
    /// The process.
    pub pid: u32,
    /// Resident set size (`VmRSS`), KiB.
    pub rss_kb: Option<u64>,
    /// Peak resident set size (`VmHWM`), KiB.
    pub peak_rss_kb: Option<u64>,
    /// Bytes passed to `write`-like syscalls so far (`wchar`: logs included).
    pub written_bytes: Option<u64>,
    /// `write`-like syscalls so far (`syscw`).
    pub write_syscalls: Option<u64>,
    /// Bytes sent to the block layer so far (`write_bytes`).
    pub disk_write_bytes: Option<u64>,
    /// CPU time used so far, user + system, in seconds.
    pub cpu_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads `/proc/<pid>/status` and `/proc/<pid>/io`; `None` when the
    /// process is gone or `/proc` is not there.
    pub fn read(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
        Some(Self {
            pid,
            rss_kb: field(&status, "VmRSS:"),
            peak_rss_kb: field(&status, "VmHWM:"),
            written_bytes: field(&io, "wchar:"),
            write_syscalls: field(&io, "syscw:"),
            disk_write_bytes: field(&io, "write_bytes:"),
            cpu_seconds: cpu_seconds(pid),
        })
    }

    /// Cores used on average between `earlier` and this reading, `wall`
    /// seconds apart.
    pub fn cores_since(&self, earlier: &ProcessStats, wall: f64) -> Option<f64> {
        let used = self.cpu_seconds? - earlier.cpu_seconds?;
        (wall > 0.0).then(|| used / wall)
    }

    /// Resident set size in MiB.
    pub fn rss_mb(&self) -> Option<f64> {
        self.rss_kb.map(|kb| kb as f64 / 1024.0)
    }
}

/// Write activity between two readings of the same process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriteDelta {
    /// `write` syscalls made.
    pub syscalls: u64,
    /// Bytes passed to them.
    pub bytes: u64,
    /// Bytes that reached the block layer.
    pub disk_bytes: u64,
}

impl WriteDelta {
    /// `after - before` (zero where a figure is unknown).
    pub fn between(before: &ProcessStats, after: &ProcessStats) -> Self {
        let d = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => a.saturating_sub(b),
            _ => 0,
        };
        Self {
            syscalls: d(after.write_syscalls, before.write_syscalls),
            bytes: d(after.written_bytes, before.written_bytes),
            disk_bytes: d(after.disk_write_bytes, before.disk_write_bytes),
        }
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on
/// every Linux architecture that matters here).
const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime of `/proc/<pid>/stat`, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

fn field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// The pid of the local process listening on `addr` (IPv4 or IPv6 loopback
/// or any), found through `/proc/net/tcp*` and the processes' socket fds.
/// `None` when it cannot be seen (another user's process, no `/proc`).
pub fn listener_pid(addr: SocketAddr) -> Option<u32> {
    let port = addr.port();
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is "HEXIP:HEXPORT", st "0A" is LISTEN, inode col 9.
            let (Some(local), Some(state), Some(inode)) = (cols.get(1), cols.get(3), cols.get(9))
            else {
                continue;
            };
            let listening = *state == "0A";
            let same_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                .is_some_and(|p| p == port);
            if listening && same_port {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| target.to_str() == Some(i.as_str()))
            {
                return Some(pid);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let stats = ProcessStats::read(std::process::id()).unwrap();
        assert!(stats.rss_kb.unwrap() > 0);
        assert!(stats.peak_rss_kb.unwrap() >= stats.rss_kb.unwrap());
        assert!(stats.cpu_seconds.unwrap() >= 0.0);
    }

    #[test]
    fn finds_the_listener_of_a_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(listener_pid(addr), Some(std::process::id()));
    }
}

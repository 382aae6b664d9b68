//! A kernel-level partition: agents in their own network namespace, joined
//! to the registry's by a veth pair whose host end is set down and up. Unlike
//! the relay's partitions, nothing in user space sees the link go: packets
//! are simply not delivered, and TCP retransmits into the void until the
//! link returns or a keepalive gives up.
//!
//! Needs root and `ip` (iproute2); [`NetnsLink::create`] says why when it
//! cannot, and callers skip.

use std::fs::File;
use std::future::Future;
use std::net::Ipv4Addr;
use std::process::Command;

use nix::sched::{CloneFlags, setns};

/// A network namespace with a veth link to this one; removed on drop.
pub struct NetnsLink {
    namespace: String,
    host_end: String,
    /// The host end's address: agents in the namespace connect here.
    pub host_ip: Ipv4Addr,
}

// === impl NetnsLink ===

impl NetnsLink {
    /// Creates the namespace and the link (up), or says why it cannot.
    pub fn create() -> Result<Self, String> {
        let id = std::process::id();
        let subnet = u8::try_from(id % 250).unwrap_or(0);
        let link = Self {
            namespace: format!("sbfault{id}"),
            host_end: format!("sbh{}", id % 100_000),
            host_ip: Ipv4Addr::new(10, 213, subnet, 1),
        };
        let inner_end = format!("sbn{}", id % 100_000);
        let inner_ip = format!("10.213.{subnet}.2/30");
        let host_ip = format!("{}/30", link.host_ip);
        let ns = link.namespace.as_str();
        ip(&["netns", "add", ns])?;
        let steps: [&[&str]; 8] = [
            &["link", "add", &link.host_end, "type", "veth", "peer", "name", &inner_end],
            &["link", "set", &inner_end, "netns", ns],
            &["addr", "add", &host_ip, "dev", &link.host_end],
            &["link", "set", &link.host_end, "up"],
            &["-n", ns, "addr", "add", &inner_ip, "dev", &inner_end],
            &["-n", ns, "link", "set", &inner_end, "up"],
            &["-n", ns, "link", "set", "lo", "up"],
            &["-n", ns, "route", "add", "default", "dev", &inner_end],
        ];
        for step in steps {
            ip(step)?;
        }
        Ok(link)
    }

    /// Cuts the link: the host end goes down.
    pub fn down(&self) -> Result<(), String> {
        ip(&["link", "set", &self.host_end, "down"])
    }

    /// Restores the link.
    pub fn up(&self) -> Result<(), String> {
        ip(&["link", "set", &self.host_end, "up"])
    }

    /// Runs `work` on a new thread inside the namespace, on a runtime of its
    /// own: every socket its tasks open lives in the namespace.
    pub fn spawn<F, Fut>(&self, work: F) -> std::thread::JoinHandle<Result<(), String>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let path = format!("/var/run/netns/{}", self.namespace);
        std::thread::spawn(move || {
            let namespace = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            setns(&namespace, CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {path}: {e}"))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("runtime: {e}"))?;
            runtime.block_on(work());
            Ok(())
        })
    }
}

impl Drop for NetnsLink {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = ip(&["netns", "del", &self.namespace]);
        let _ = ip(&["link", "del", &self.host_end]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "ip {}: {} (needs root)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

//! An SDK agent process whose one tool records every call and then holds it
//! open, for tests that kill a provider while it is inside a call.
//!
//! Usage: `sb-test-blocking-provider NAME CAPABILITY CALLS_FILE` with the
//! registry in `SWITCHBOARD_REGISTRY`. Each call of `work` appends a line to
//! CALLS_FILE before anything else, then answers NAME once a file named
//! CALLS_FILE plus `.release` exists. Prints the SDK's `LISTEN agent-mcp
//! <addr>` and `REGISTERED <id>` lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rmcp::{tool, tool_router};
use switchboard_agent::{Agent, AgentError};

#[derive(Clone)]
struct Work {
    name: Arc<str>,
    calls: Arc<PathBuf>,
    release: Arc<PathBuf>,
}

#[tool_router(server_handler)]
impl Work {
    #[tool(description = "Records the call, then answers once released")]
    async fn work(&self) -> String {
        // Written and closed before the wait, so a test reading the file
        // knows the call is inside the tool.
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(&*self.calls).unwrap();
        writeln!(file, "call").unwrap();
        drop(file);
        while !self.release.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.name.to_string()
    }
}

#[tokio::main]
async fn main() -> Result<(), AgentError> {
    let args: Vec<String> = std::env::args().collect();
    let [_, name, capability, calls] = args.as_slice() else {
        eprintln!("usage: sb-test-blocking-provider NAME CAPABILITY CALLS_FILE");
        std::process::exit(2);
    };
    let calls = PathBuf::from(calls);
    let mut release = calls.clone().into_os_string();
    release.push(".release");
    let work = Work {
        name: name.as_str().into(),
        calls: Arc::new(calls),
        release: Arc::new(PathBuf::from(release)),
    };
    Agent::new(name)
        .tool("work", |t| t.capability(capability))
        .serve(work, Work::tool_router())
        .await
}

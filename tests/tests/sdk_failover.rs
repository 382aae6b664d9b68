//! The SDK's dependency proxies and the gateway fail over by one rule: to
//! another provider only when the request certainly never reached the first.
//! A provider killed while inside a call may have run it, so that call fails
//! ("failed mid-call") and no other provider runs the tool a second time; a
//! provider that is merely gone (connection refused) is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use rmcp::{tool, tool_router};
use serde_json::json;
use switchboard_agent::{Agent, Dependency};
use switchboard_tests::gateway::{error_code, http_get};
use switchboard_tests::{
    AgentProcess, InProcessGateway, McpClient, TestRegistry, eventually, metric_value,
};
use tokio::task::JoinHandle;

const DEADLINE: Duration = Duration::from_secs(30);

/// The dependent: `relay` calls the `work` capability once and says how it went.
#[derive(Clone)]
struct Relay {
    work: Dependency,
}

#[tool_router(server_handler)]
impl Relay {
    #[tool(description = "Calls the work capability and reports the outcome")]
    async fn relay(&self) -> String {
        match self.work.call_text(json!({})).await {
            Ok(text) => format!("ok: {text}"),
            Err(error) => format!("{}: {error}", error.metric_label()),
        }
    }
}

/// How many times a provider's tool was entered.
fn calls(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|text| text.lines().count()).unwrap_or(0)
}

fn release(calls: &Path) {
    let mut release = calls.as_os_str().to_owned();
    release.push(".release");
    std::fs::write(PathBuf::from(release), "").unwrap();
}

/// A provider process of the `work` capability and its calls file.
struct Provider {
    process: AgentProcess,
    calls: PathBuf,
}

/// `sb-test-blocking-provider` processes named `names`, registered at `registry`.
fn providers(registry: &str, dir: &Path, names: &[&str]) -> Vec<Provider> {
    let bin = Path::new(env!("CARGO_BIN_EXE_sb-test-blocking-provider"));
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let calls = dir.join(format!("{i}.calls"));
            let args = [name, "work", calls.to_str().unwrap()];
            let process =
                AgentProcess::spawn_exe(bin, &args, &[("SWITCHBOARD_REGISTRY", registry)]);
            Provider { process, calls }
        })
        .collect()
}

/// Waits until one of the two providers is inside `call`, SIGKILLs it, and
/// waits until `call` ends — or the other provider runs it too, which the
/// caller then reports. Returns the other provider, and the killed one's index.
async fn kill_the_one_inside<T>(
    mut providers: Vec<Provider>,
    call: &JoinHandle<T>,
) -> (Provider, usize) {
    let inside = eventually("one provider inside the call", DEADLINE, || async {
        providers.iter().position(|p| calls(&p.calls) == 1)
    })
    .await;
    let doomed = providers.swap_remove(inside);
    let survivor = providers.pop().unwrap();
    tokio::task::spawn_blocking(move || doomed.process.kill()).await.unwrap();
    eventually("the call to end", DEADLINE, || async {
        (call.is_finished() || calls(&survivor.calls) > 0).then_some(())
    })
    .await;
    assert_eq!(calls(&survivor.calls), 0, "the survivor must not run a call that may have run");
    (survivor, inside)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_mid_call_fails_the_call_and_no_other_provider_runs_it() {
    let registry = TestRegistry::start().await;
    let address = registry.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let providers = providers(&address, dir.path(), &["work-a", "work-b"]);

    let work = Dependency::new("work", "");
    let relay = Agent::new("relay")
        .registry(&address)
        .listen("127.0.0.1:0")
        .tool("relay", |t| t.depends_on(&work))
        .start(Relay { work: work.clone() }, Relay::tool_router())
        .await
        .unwrap();
    eventually("the relay wired to both providers", DEADLINE, || async {
        (work.providers().len() == 2).then_some(())
    })
    .await;

    let endpoint = relay.endpoint.clone();
    let call =
        tokio::spawn(async move { McpClient::new(&endpoint).call_text("relay", json!({})).await });
    let (survivor, killed) = kill_the_one_inside(providers, &call).await;
    let answer = call.await.unwrap();
    assert!(answer.starts_with("failed: "), "the mid-call failure, typed: {answer}");
    assert!(answer.contains("may have run"), "says why it was not retried: {answer}");

    let metrics_url = format!("http://{}/metrics", relay.local_addr);
    let (_, metrics) = http_get(&metrics_url).await;
    let failed = r#"switchboard_agent_dependency_calls_total{capability="work",outcome="failed"}"#;
    assert_eq!(metric_value(&metrics, failed), Some(1.0), "{metrics}");

    // The dead provider is skipped (the request never reaches it, or the
    // registry has rewired the relay already): the next call runs once, on
    // the survivor.
    release(&survivor.calls);
    let answer = McpClient::new(&relay.endpoint).call_text("relay", json!({})).await;
    let survivor_name = if killed == 0 { "work-b" } else { "work-a" };
    assert_eq!(answer, format!("ok: {survivor_name}"));
    assert_eq!(calls(&survivor.calls), 1, "exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_call_answers_32005_through_the_gateway_and_no_other_replica_runs_it()
{
    let registry = TestRegistry::start().await;
    let address = registry.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    // One agent name: two replicas of one tool `work`.
    let replicas = providers(&address, dir.path(), &["work", "work"]);
    let gateway = InProcessGateway::start(&address).await;
    gateway.caught_up(registry.registry().snapshot().revision).await;

    let url = gateway.url();
    let call = tokio::spawn(async move { McpClient::new(&url).call("work", json!({})).await });
    let (survivor, _) = kill_the_one_inside(replicas, &call).await;
    let error = call.await.unwrap().expect_err("the call broke mid-way");
    assert_eq!(error_code(&error), Some(-32005), "{error}");
    assert!(error.to_string().contains("may have run"), "{error}");
    let metrics = gateway.metrics().await;
    let failed = r#"switchboard_gateway_requests_total{tool="work",outcome="failed"}"#;
    assert_eq!(metric_value(&metrics, failed), Some(1.0), "{metrics}");
    assert_eq!(metric_value(&metrics, "switchboard_gateway_failovers_total"), Some(0.0));

    release(&survivor.calls);
    let answer = McpClient::new(&gateway.url()).call_text("work", json!({})).await;
    assert_eq!(answer, "work");
    assert_eq!(calls(&survivor.calls), 1, "exactly once");
}

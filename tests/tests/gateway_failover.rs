//! Load balancing, failover and the circuit breaker of the gateway, with
//! real agent processes where a crash matters (SIGKILL), and the pool's
//! classification failover depends on: a request that never reached the
//! agent may go elsewhere; one that did must not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use serde_json::json;
use switchboard_agent::Agent;
use switchboard_client::{McpCallError, McpPool, McpPoolConfig};
use switchboard_tests::gateway::{free_addr, register_fake, sample};
use switchboard_tests::{
    AgentProcess, InProcessGateway, McpClient, TestRegistry, echo, eventually, metric_value,
    start_echo,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const DEADLINE: Duration = Duration::from_secs(30);

fn get_date() -> CallToolRequestParams {
    CallToolRequestParams::new("get_date")
}

/// `get_date` calls an agent process served, from its own `/metrics`.
async fn served(replica: &AgentProcess) -> f64 {
    let url = format!("http://{}/metrics", replica.mcp_addr);
    let (status, metrics) = switchboard_tests::gateway::http_get(&url).await;
    assert_eq!(status, 200, "{url}: {metrics}");
    metric_value(&metrics, r#"switchboard_agent_tool_calls_total{tool="get_date",outcome="ok"}"#)
        .unwrap_or(0.0)
}

fn breaker_sample(endpoint: &str) -> String {
    format!(r#"switchboard_gateway_breaker_state{{endpoint="{endpoint}"}}"#)
}

async fn kill(replica: AgentProcess) {
    tokio::task::spawn_blocking(move || replica.kill()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_session_to_a_killed_agent_is_unreachable_so_failover_may_retry_it() {
    let registry = TestRegistry::start().await;
    let agent = AgentProcess::spawn("date-service", &registry.addr.to_string());
    let endpoint = agent.endpoint();
    let pool = McpPool::new(McpPoolConfig::default());
    for _ in 0..3 {
        pool.call_tool(&endpoint, get_date()).await.expect("the agent answers");
    }
    assert_eq!(pool.len(), 1, "one pooled session, reused");

    kill(agent).await;
    let error = pool.call_tool(&endpoint, get_date()).await.expect_err("the agent is dead");
    assert!(
        matches!(error, McpCallError::Unreachable { .. }) && error.is_retryable_elsewhere(),
        "a call to a killed agent never reached it (connection refused): {error:?}"
    );
    let again = pool.call_tool(&endpoint, get_date()).await.expect_err("still dead");
    assert!(again.is_retryable_elsewhere(), "{again:?}");
}

/// A TCP proxy in front of an agent. While `swallow` is set, it reads what
/// a client sends and closes the connection without forwarding it or
/// answering: the request reached "the agent", which then vanished.
struct SwallowingProxy {
    addr: SocketAddr,
    swallow: Arc<AtomicBool>,
    swallowed: Arc<AtomicUsize>,
}

impl SwallowingProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let swallow = Arc::new(AtomicBool::new(false));
        let swallowed = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (swallow.clone(), swallowed.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(Self::pipe(client, upstream, flag.clone(), count.clone()));
            }
        });
        Self { addr, swallow, swallowed }
    }

    async fn pipe(
        client: TcpStream,
        upstream: SocketAddr,
        swallow: Arc<AtomicBool>,
        swallowed: Arc<AtomicUsize>,
    ) {
        let Ok(server) = TcpStream::connect(upstream).await else { return };
        let (mut from_client, mut to_client) = client.into_split();
        let (mut from_server, mut to_server) = server.into_split();
        let down =
            tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            let read = match from_client.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            if swallow.load(Ordering::SeqCst) {
                swallowed.fetch_add(1, Ordering::SeqCst);
                break;
            }
            if to_server.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        // Both directions close: the client sees its connection end unanswered.
        down.abort();
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_request_reached_the_agent_is_never_retryable_elsewhere() {
    let registry = TestRegistry::start().await;
    let agent = echo(&registry.addr.to_string(), "echo", "echo").await;
    let proxy = SwallowingProxy::start(agent.local_addr).await;
    let pool = McpPool::new(McpPoolConfig::default());
    let whoami = || CallToolRequestParams::new("whoami");
    pool.call_tool(&proxy.url(), whoami()).await.expect("answers through the proxy");

    proxy.swallow.store(true, Ordering::SeqCst);
    let error = pool.call_tool(&proxy.url(), whoami()).await.expect_err("no answer");
    assert!(proxy.swallowed.load(Ordering::SeqCst) >= 1, "the request reached the proxy");
    assert!(
        matches!(error, McpCallError::Transport { .. }) && !error.is_retryable_elsewhere(),
        "the agent may have run the tool: not retryable elsewhere: {error:?}"
    );

    proxy.swallow.store(false, Ordering::SeqCst);
    pool.call_tool(&proxy.url(), whoami()).await.expect("a new session after the broken one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_through_the_gateway_are_spread_across_two_replicas() {
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let replicas =
        [AgentProcess::spawn("date-service", &addr), AgentProcess::spawn("date-service", &addr)];
    let gateway = InProcessGateway::start(&addr).await;
    gateway.caught_up(registry.registry().snapshot().revision).await;
    let client = McpClient::new(&gateway.url());

    for _ in 0..32 {
        let date = client.call_text("get_date", json!({})).await;
        assert!(date.starts_with('2') && date.len() == 10, "{date}");
    }
    let counts = [served(&replicas[0]).await, served(&replicas[1]).await];
    assert!(counts.iter().all(|&n| n >= 1.0), "both replicas serve: {counts:?}");
    assert_eq!(counts[0] + counts[1], 32.0, "every call served exactly once: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_run_costs_no_call_and_leaves_the_table() {
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let doomed = AgentProcess::spawn("date-service", &addr);
    let survivor = AgentProcess::spawn("date-service", &addr);
    let doomed_endpoint = doomed.endpoint();
    let gateway = InProcessGateway::start(&addr).await;
    gateway.caught_up(registry.registry().snapshot().revision).await;
    let client = McpClient::new(&gateway.url());

    eventually("both replicas served a call", DEADLINE, || async {
        client.call_text("get_date", json!({})).await;
        (served(&doomed).await >= 1.0 && served(&survivor).await >= 1.0).then_some(())
    })
    .await;
    let metrics = gateway.metrics().await;
    assert_eq!(sample(&metrics, &breaker_sample(&doomed_endpoint)), Some(0.0), "{metrics}");

    kill(doomed).await;
    for call in 0..30 {
        let result = client.call("get_date", json!({})).await;
        let result = result.unwrap_or_else(|e| panic!("call {call} after the kill failed: {e}"));
        assert_ne!(result.is_error, Some(true), "call {call}: {result:?}");
    }

    eventually("the killed replica gone from the gateway's table", DEADLINE, || async {
        let metrics = gateway.metrics().await;
        sample(&metrics, &breaker_sample(&doomed_endpoint)).is_none().then_some(())
    })
    .await;
    let failovers = |metrics: &str| metric_value(metrics, "switchboard_gateway_failovers_total");
    let before = failovers(&gateway.metrics().await).unwrap();
    let served_before = served(&survivor).await;
    for _ in 0..10 {
        client.call_text("get_date", json!({})).await;
    }
    let after = failovers(&gateway.metrics().await).unwrap();
    assert_eq!(after, before, "no call tries the dead replica any more");
    assert_eq!(served(&survivor).await - served_before, 10.0, "the survivor serves every call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_replica_is_taken_out_by_its_breaker_and_probed_back_when_it_returns() {
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let _good = echo(&addr, "echo", "good").await;
    // A replica of the same agent whose endpoint refuses connections, kept
    // HEALTHY by its heartbeat stream: only the gateway's breaker can tell.
    let dead = free_addr();
    let dead_endpoint = format!("http://{dead}/mcp");
    let fake = register_fake(registry.channel().await, "echo", "whoami", &dead_endpoint).await;
    let gateway = InProcessGateway::start(&addr).await;
    gateway.caught_up(registry.registry().snapshot().revision).await;
    let client = McpClient::new(&gateway.url());

    let breaker = breaker_sample(&dead_endpoint);
    eventually("the dead replica's breaker open", DEADLINE, || async {
        assert_eq!(client.call_text("whoami", json!({})).await, "good");
        let metrics = gateway.metrics().await;
        (sample(&metrics, &breaker) == Some(1.0)).then_some(())
    })
    .await;
    let metrics = gateway.metrics().await;
    let failovers = metric_value(&metrics, "switchboard_gateway_failovers_total").unwrap();
    assert!(failovers >= 3.0, "the breaker opened after failed-over calls: {failovers}");
    for _ in 0..5 {
        assert_eq!(client.call_text("whoami", json!({})).await, "good");
    }

    // The replica comes back on its address: after the cooldown a probe
    // goes through, closes the breaker, and calls reach it again.
    let revived =
        start_echo(Agent::new("echo").registry(&addr).listen(&dead.to_string()), "revived");
    let _revived = revived.await;
    eventually("the revived replica probed back and serving", DEADLINE, || async {
        let text = client.call_text("whoami", json!({})).await;
        let metrics = gateway.metrics().await;
        (text == "revived" && sample(&metrics, &breaker) == Some(0.0)).then_some(())
    })
    .await;
    fake.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_killed_replica_still_listed_fail_over_on_its_pooled_session() {
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let doomed = AgentProcess::spawn("date-service", &addr);
    let survivor = AgentProcess::spawn("date-service", &addr);
    let doomed_endpoint = doomed.endpoint();
    // A second registration of the doomed endpoint, kept HEALTHY after the
    // kill: the registry cannot save the gateway from trying it.
    let shadow =
        register_fake(registry.channel().await, "date-service", "get_date", &doomed_endpoint).await;
    let gateway = InProcessGateway::start(&addr).await;
    gateway.caught_up(registry.registry().snapshot().revision).await;
    let client = McpClient::new(&gateway.url());
    eventually("the doomed replica served a call (its session is pooled)", DEADLINE, || async {
        client.call_text("get_date", json!({})).await;
        (served(&doomed).await >= 1.0).then_some(())
    })
    .await;

    kill(doomed).await;
    let breaker = breaker_sample(&doomed_endpoint);
    eventually("the killed replica's breaker open", DEADLINE, || async {
        let result = client.call("get_date", json!({})).await;
        let result = result.unwrap_or_else(|e| panic!("a call failed after the kill: {e}"));
        assert_ne!(result.is_error, Some(true), "{result:?}");
        let metrics = gateway.metrics().await;
        (sample(&metrics, &breaker) == Some(1.0)).then_some(())
    })
    .await;
    let metrics = gateway.metrics().await;
    let failovers = metric_value(&metrics, "switchboard_gateway_failovers_total").unwrap();
    assert!(failovers >= 3.0, "each failed try went on to the survivor: {metrics}");
    let failed = metric_value(
        &metrics,
        r#"switchboard_gateway_requests_total{tool="get_date",outcome="failed"}"#,
    );
    assert_eq!(failed, None, "no call failed: {metrics}");

    shadow.abort();
    eventually("the dead endpoint gone from the table", DEADLINE, || async {
        sample(&gateway.metrics().await, &breaker).is_none().then_some(())
    })
    .await;
    let served_before = served(&survivor).await;
    for _ in 0..5 {
        client.call_text("get_date", json!({})).await;
    }
    assert_eq!(served(&survivor).await - served_before, 5.0);
}

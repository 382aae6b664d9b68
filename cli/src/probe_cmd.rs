//! `switchboard probe`: the container health check. Images carry no shell and
//! no curl, so the binary itself asks a registry's `grpc.health.v1` or an HTTP
//! probe path (`/readyz`, `/healthz`) and exits 0 only on a healthy answer.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::duration;
use crate::ops::ExitCode;

/// Flags of `switchboard probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// Ask the gRPC health service at this address (host:port), e.g. a registry.
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "http")]
    pub grpc: Option<String>,
    /// GET this URL and expect 200, e.g. http://127.0.0.1:7601/readyz.
    #[arg(long, value_name = "URL", conflicts_with = "grpc")]
    pub http: Option<String>,
    /// Service name for the gRPC check [default: "", the whole server].
    #[arg(long, default_value = "", requires = "grpc")]
    pub service: String,
    /// Give up after this long [default: 3s].
    #[arg(long, default_value = "3s")]
    pub timeout: String,
}

/// Runs one probe; an unhealthy answer is exit code 1, no answer 3.
pub async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let timeout = duration::parse(&args.timeout)
        .map_err(|e| ExitCode::error(ExitCode::USAGE, format!("timeout: {e}")))?;
    let probe = async {
        match (&args.grpc, &args.http) {
            (Some(address), _) => probe_grpc(address, &args.service).await,
            (None, Some(url)) => probe_http(url).await,
            (None, None) => Err(ExitCode::error(ExitCode::USAGE, "probe: give --grpc or --http")),
        }
    };
    let what = args.grpc.as_deref().or(args.http.as_deref()).unwrap_or_default();
    match tokio::time::timeout(timeout, probe).await {
        Ok(result) => result,
        Err(_) => Err(ExitCode::error(
            ExitCode::UNREACHABLE,
            format!("probe {what}: no answer within {}", args.timeout),
        )),
    }
}

async fn probe_grpc(address: &str, service: &str) -> anyhow::Result<()> {
    let uri =
        if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
    let channel = tonic::transport::Endpoint::from_shared(uri)
        .map_err(|e| {
            ExitCode::error(ExitCode::USAGE, format!("grpc: bad address {address:?}: {e}"))
        })?
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .map_err(|e| ExitCode::error(ExitCode::UNREACHABLE, format!("grpc {address}: {e}")))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest { service: service.to_owned() })
        .await
        .map_err(|s| {
            ExitCode::error(ExitCode::FAILED, format!("grpc {address}: {}", s.message()))
        })?;
    let status = ServingStatus::try_from(answer.into_inner().status).unwrap_or_default();
    if status != ServingStatus::Serving {
        let name = status.as_str_name().to_ascii_lowercase();
        return Err(ExitCode::error(ExitCode::FAILED, format!("grpc {address}: {name}")));
    }
    println!("grpc {address}: serving");
    Ok(())
}

async fn probe_http(url: &str) -> anyhow::Result<()> {
    let response = reqwest::get(url)
        .await
        .map_err(|e| ExitCode::error(ExitCode::UNREACHABLE, format!("http {url}: {e}")))?;
    let status = response.status();
    let body = response.text().await.with_context(|| format!("http {url}: reading the body"))?;
    if !status.is_success() {
        let text = body.trim();
        return Err(ExitCode::error(ExitCode::FAILED, format!("http {url}: {status}: {text}")));
    }
    println!("http {url}: {status}");
    Ok(())
}

//! `switchboard gateway`: the MCP front door, fed by a registry's Watch.

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::settings::{GatewayArgs, GatewaySettings};
use crate::{shutdown, telemetry};

/// Runs the gateway until a shutdown signal.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    let _telemetry = telemetry::init("switchboard-gateway", &settings.telemetry)?;
    settings.check_exposure()?;
    let stop = shutdown::on_signal();
    let listener = bind(&settings).await?;
    serve(settings, listener, stop).await
}

/// Binds the gateway port and announces it (`LISTEN gateway <addr>`); the
/// caller has checked that the address may be bound.
pub async fn bind(settings: &GatewaySettings) -> anyhow::Result<TcpListener> {
    let addr = settings.gateway_addr;
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("gateway: cannot bind {addr}"))?;
    let local = listener.local_addr()?;
    println!("LISTEN gateway {local}");
    tracing::info!(%local, registry = %settings.gateway.registry, "gateway listening; MCP at http://{local}/mcp");
    Ok(listener)
}

/// Serves until `stop` is cancelled.
pub async fn serve(
    settings: GatewaySettings,
    listener: TcpListener,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    switchboard_gateway::serve(settings.gateway, listener, async move { stop.cancelled().await })
        .await
        .context("gateway")?;
    tracing::info!("gateway stopped");
    Ok(())
}

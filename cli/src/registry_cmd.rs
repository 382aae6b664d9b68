//! `switchboard registry`: run the registry on the embedded sled store (or,
//! with `--store etcd`, on etcd) until SIGTERM or ctrl-c. `up` reuses [`start`].
//!
//! Unless `--no-ui`, the admin port also serves the read-only dashboard at
//! `/ui`. It reads the registry as any client does, over gRPC to the
//! registry's own listener, so it shows exactly what operators and gateways
//! see; it is held to the gateway's `Host`/`Origin` rule (loopback plus
//! `--admin-allowed-hosts`), and its Gateway view says no gateway is here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use switchboard_dashboard::{Admission, DashboardConfig};
use switchboard_gateway::Guard;
use switchboard_registry::{RunningRegistry, StoreSpec};

use crate::settings::{RegistryArgs, RegistrySettings};
use crate::{shutdown, telemetry};

/// Runs the registry until a shutdown signal.
pub async fn run(args: RegistryArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    let _telemetry = telemetry::init("switchboard-registry", &settings.telemetry)?;
    let stop = shutdown::on_signal();
    let running = start(settings).await?;
    let asked = running.until_stopped(stop.cancelled()).await;
    running.stop().await?;
    anyhow::ensure!(asked, "the registry stopped after a storage failure (see the log)");
    Ok(())
}

/// Starts the registry on the settings' store and ports, and announces the
/// ports on stdout as `LISTEN registry-grpc <addr>` and
/// `LISTEN registry-admin <addr>`: the lines scripts and tests wait for.
pub async fn start(mut settings: RegistrySettings) -> anyhow::Result<RunningRegistry> {
    settings.check_exposure()?;
    // The bootstrap admin token is a local file whatever the store: etcd
    // keeps only its hash, like sled.
    if settings.registry.auth.bootstrap_token_file.is_none() {
        settings.registry.auth.bootstrap_token_file =
            Some(settings.data_dir.join(switchboard_registry::BOOTSTRAP_TOKEN_FILE));
    }
    let store = match settings.etcd {
        Some((config, prefix)) => StoreSpec::Etcd { config, prefix },
        None => StoreSpec::Sled { data_dir: settings.data_dir },
    };
    let auth = settings.registry.auth.enabled;
    let loaded = switchboard_registry::load(settings.registry, store).await?;
    // The dashboard reads the registry as a client without a token, so it
    // cannot run beside auth (yet): say so rather than serve a page of errors.
    if settings.ui && auth {
        tracing::warn!(
            "the dashboard (/ui) is off: it cannot read a registry that runs with --auth"
        );
    }
    let hosts = (settings.ui && !auth).then_some(settings.admin_allowed_hosts);
    let (tls_on, client_tls) = (settings.tls.is_some(), settings.client_tls);
    let ui = |grpc: SocketAddr| {
        hosts.map(|hosts| dashboard(grpc, &hosts, tls_on, client_tls.as_ref())).unwrap_or_default()
    };
    let loaded = loaded.with_tls(settings.tls);
    let running = loaded
        .serve_with_admin_routes(settings.registry_addr, settings.registry_admin_addr, ui)
        .await?;
    println!("LISTEN registry-grpc {}", running.grpc_addr);
    println!("LISTEN registry-admin {}", running.admin_addr);
    Ok(running)
}

/// The dashboard's routes, watching the registry on `grpc` (over TLS with
/// `client_tls`: a TLS registry is dialled as any client dials it).
fn dashboard(
    grpc: SocketAddr,
    allowed_hosts: &[String],
    tls_on: bool,
    client_tls: Option<&switchboard_tls::ClientTls>,
) -> axum::Router {
    let target = SocketAddr::new(reachable(grpc.ip()), grpc.port());
    if tls_on && client_tls.is_none() {
        tracing::warn!(
            "dashboard: the registry serves TLS; give --tls-ca (and a client certificate for mTLS) so /ui can read it; /ui is off"
        );
        return axum::Router::new();
    }
    let channel = match switchboard_client::connect_lazy_with(&target.to_string(), client_tls) {
        Ok(channel) => channel,
        Err(error) => {
            tracing::error!(%error, %target, "dashboard: cannot reach the registry; /ui is off");
            return axum::Router::new();
        }
    };
    let guard = Guard::new(allowed_hosts, &[]);
    let admission: Admission = Arc::new(move |headers| guard.refusal(headers).map_or(Ok(()), Err));
    switchboard_dashboard::router(DashboardConfig::new(channel).with_admission(admission))
}

/// A listener on every interface is reached through loopback.
fn reachable(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(v6) if v6.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        other => other,
    }
}

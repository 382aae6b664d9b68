//! `switchboard registry`: run the registry on the embedded sled store until
//! SIGTERM or ctrl-c. `up` reuses [`start`].

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
pub async fn start(settings: RegistrySettings) -> anyhow::Result<RunningRegistry> {
    let running = switchboard_registry::serve(
        settings.registry,
        StoreSpec::Sled { data_dir: settings.data_dir },
        settings.registry_addr,
        settings.registry_admin_addr,
    )
    .await?;
    println!("LISTEN registry-grpc {}", running.grpc_addr);
    println!("LISTEN registry-admin {}", running.admin_addr);
    Ok(running)
}

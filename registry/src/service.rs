//! The gRPC services over the registry core, and helpers they share.

mod access_api;
mod heartbeat;
mod registry_api;
pub mod watch;

use prost_types::Duration;
use switchboard_proto::v1::HeartbeatParameters;

use crate::config::RegistryConfig;

pub use access_api::AccessApi;
pub use heartbeat::{HeartbeatApi, HeartbeatServer};
pub use registry_api::RegistryApi;
pub use watch::WatchApi;

/// The heartbeat timing agents must follow.
pub fn heartbeat_parameters(config: &RegistryConfig) -> HeartbeatParameters {
    let duration = |d: std::time::Duration| Duration::try_from(d).unwrap_or_default();
    HeartbeatParameters {
        interval: Some(duration(config.liveness.interval)),
        degraded_after: Some(duration(config.liveness.degraded_after)),
        expired_after: Some(duration(config.liveness.expired_after)),
    }
}

//! Logging setup shared by every command: `SWITCHBOARD_LOG` is the filter
//! (default `info`), `SWITCHBOARD_LOG_FORMAT=plain|json` the format. Logs go
//! to stderr; stdout carries only machine-readable lines (`LISTEN ...`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,h2=warn,hyper=warn,tower=warn"));
    let format = std::env::var("SWITCHBOARD_LOG_FORMAT").unwrap_or_else(|_| "plain".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format.as_str() {
        "json" => builder.json().flatten_event(true).try_init(),
        "plain" => builder.try_init(),
        other => {
            anyhow::bail!("SWITCHBOARD_LOG_FORMAT: unknown format {other:?} (want plain or json)")
        }
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

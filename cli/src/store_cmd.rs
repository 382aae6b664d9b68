//! `switchboard store copy --from sled:DIR --to etcd:ENDPOINTS` (and back):
//! moves a registry's whole state into a new, empty store, with every agent,
//! the revision and the retained history. Run it with the registry stopped:
//! a copy of a store that is still being written misses the later writes.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use switchboard_registry::EtcdConfig;
use switchboard_registry::store::{self, EtcdStore, SledStore, Store};

use crate::settings::{ConfigError, EtcdTlsArgs};

/// `switchboard store …`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy every agent, the revision and the history into a new, empty store
    /// (stop the registry first). Stores: `sled:DIR`, `etcd:HOST:PORT,HOST:PORT`.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
struct CopyArgs {
    /// The store to read: `sled:DIR` or `etcd:ENDPOINTS` (comma-separated).
    #[arg(long)]
    from: String,
    /// The empty store to write: `sled:DIR` or `etcd:ENDPOINTS`.
    #[arg(long)]
    to: String,
    /// Key prefix of the etcd side(s).
    #[arg(long, env = "SWITCHBOARD_ETCD_PREFIX", default_value = "/switchboard")]
    etcd_prefix: String,
    /// etcd user name, when etcd has authentication enabled.
    #[arg(long, env = "SWITCHBOARD_ETCD_USER")]
    etcd_user: Option<String>,
    /// Password of --etcd-user.
    #[arg(long, env = "SWITCHBOARD_ETCD_PASSWORD", hide_env_values = true)]
    etcd_password: Option<String>,
    /// TLS to the etcd side(s).
    #[command(flatten)]
    etcd_tls: EtcdTlsArgs,
}

/// Where a store is, as given on the command line.
#[derive(Debug, PartialEq)]
enum Location {
    Sled(PathBuf),
    Etcd(Vec<String>),
}

/// Runs a `store` command.
pub async fn run(args: StoreArgs) -> anyhow::Result<()> {
    match args.command {
        StoreCommand::Copy(args) => copy(args).await,
    }
}

async fn copy(args: CopyArgs) -> anyhow::Result<()> {
    let from = Location::parse("from", &args.from)?;
    let to = Location::parse("to", &args.to)?;
    if from == to {
        return Err(ConfigError("to: the same store as --from".into()).into());
    }
    if let Location::Sled(dir) = &from
        && !dir.is_dir()
    {
        return Err(ConfigError(format!("from: {} is not a directory", dir.display())).into());
    }
    let source = open(&from, &args).await.with_context(|| format!("opening {}", args.from))?;
    let target = open(&to, &args).await.with_context(|| format!("opening {}", args.to))?;
    let report = store::copy(source.as_ref(), target.as_ref())
        .await
        .with_context(|| format!("copying {} to {}", args.from, args.to))?;
    println!(
        "copied {} agents and {} history events at revision {} to {} (epoch {})",
        report.agents, report.events, report.revision, args.to, report.epoch
    );
    Ok(())
}

async fn open(location: &Location, args: &CopyArgs) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match location {
        Location::Sled(dir) => {
            let dir = dir.clone();
            Arc::new(tokio::task::spawn_blocking(move || SledStore::open(&dir)).await??)
        }
        Location::Etcd(endpoints) => {
            let mut config = EtcdConfig::new(endpoints.clone());
            if let (Some(user), Some(password)) = (&args.etcd_user, &args.etcd_password) {
                config = config.with_user(user.clone(), password.clone());
            }
            let config = args.etcd_tls.apply(config)?;
            Arc::new(EtcdStore::open(config, &args.etcd_prefix).await?)
        }
    })
}

// === impl Location ===

impl Location {
    fn parse(flag: &str, text: &str) -> Result<Self, ConfigError> {
        match text.split_once(':') {
            Some(("sled", dir)) if !dir.is_empty() => Ok(Self::Sled(PathBuf::from(dir))),
            Some(("etcd", endpoints)) => {
                let endpoints: Vec<String> = endpoints
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect();
                if endpoints.is_empty() {
                    return Err(ConfigError(format!("{flag}: etcd: needs endpoints")));
                }
                Ok(Self::Etcd(endpoints))
            }
            _ => Err(ConfigError(format!(
                "{flag}: {text:?} is not sled:DIR or etcd:HOST:PORT[,HOST:PORT…]"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_bad_ones_name_the_flag() {
        assert_eq!(
            Location::parse("from", "sled:./data").unwrap(),
            Location::Sled("./data".into())
        );
        assert_eq!(
            Location::parse("to", "etcd:127.0.0.1:2379, 127.0.0.1:2381").unwrap(),
            Location::Etcd(vec!["127.0.0.1:2379".into(), "127.0.0.1:2381".into()])
        );
        assert!(Location::parse("to", "etcd:").unwrap_err().0.starts_with("to:"));
        assert!(Location::parse("from", "./data").unwrap_err().0.starts_with("from:"));
    }
}

//! `switchboard cert dev`: a development CA and certificates for a local
//! mesh, so the secure path is one command away. Running it again into the
//! same directory rotates everything (a new CA too): servers pick up their
//! new files within a second, clients given the new CA trust them.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

/// `switchboard cert …`.
#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(subcommand)]
    command: CertCommand,
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Write a development CA (ca.pem, ca-key.pem), a server certificate for
    /// localhost/127.0.0.1/::1 (server.pem, server-key.pem) and a client certificate per
    /// --name (client-NAME.pem, client-NAME-key.pem); keys are 0600. Not for production.
    Dev(DevArgs),
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Directory to write into (created when missing; existing files are replaced).
    #[arg(long, default_value = "switchboard-certs")]
    out: PathBuf,
    /// A client certificate for this name (its SAN, the client's identity under mTLS);
    /// repeat for several.
    #[arg(long = "name")]
    names: Vec<String>,
    /// An extra name for the server certificate (a host name, an IP); repeat for several.
    #[arg(long = "server-name")]
    server_names: Vec<String>,
}

/// Runs a `cert` subcommand.
pub fn run(args: CertArgs) -> anyhow::Result<()> {
    let CertCommand::Dev(args) = args.command;
    let certs = switchboard_tls::dev::generate(&args.out, &args.server_names, &args.names)
        .context("cert dev")?;
    let show = |path: &PathBuf| path.display().to_string();
    println!("wrote a development CA and certificates to {}", args.out.display());
    println!();
    println!("servers (registry, gateway, agents):");
    println!("  --tls-cert {} --tls-key {}", show(&certs.server_cert), show(&certs.server_key));
    println!("  mTLS: add --tls-client-ca {}", show(&certs.ca));
    println!("clients (CLI, gateway, agents):");
    println!("  --tls-ca {}", show(&certs.ca));
    for (name, cert, key) in &certs.clients {
        println!("  as {name:?}: --tls-client-cert {} --tls-client-key {}", show(cert), show(key));
    }
    Ok(())
}

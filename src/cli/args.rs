//! Raw command-line arguments (clap). Each command turns these into validated settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Keeps VMware cloud estates in line with YAML manifests kept in Git.
#[derive(Debug, Parser)]
#[command(name = "sextant", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// More logging on stderr (-v info, -vv debug, -vvv trace). Secrets are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Never use colour (also when NO_COLOR is set).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the simulator of the vendor APIs.
    #[command(subcommand)]
    Sim(SimCommand),
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve every simulated API on one port until SIGINT or SIGTERM.
    ///
    /// Example: sextant sim serve --listen 127.0.0.1:8080 --state sim.json
    Serve(SimServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SimServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Keep state in this file across restarts (saved atomically after each change).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Simulated seconds per real second (240: a 2-hour SDDC create takes 30 s).
    #[arg(long, default_value_t = 240.0)]
    pub time_scale: f64,
    /// Preload objects from this YAML or JSON file (sections `csp`, `vmc`, `vsphere`, `raas`,
    /// `vcd`; each section present replaces that API's default estate). Ignored when the
    /// `--state` file already exists.
    #[arg(long)]
    pub seed_data: Option<PathBuf>,
    /// Accept only the credentials (API tokens, usernames, passwords) listed in this file, one
    /// per line; blank lines and lines starting with `#` are ignored.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Seed for injected faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Lifetime of access tokens in simulated seconds.
    #[arg(long, default_value_t = 1800)]
    pub token_ttl: u64,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Answers to the points the API documents leave unverified, as JSON, e.g.
    /// '{"vmc_concurrent_update_status": 409}' (see `GET /_sim/options` for every name).
    #[arg(long, value_name = "JSON")]
    pub options: Option<String>,
}

//! `sextant sim serve`: runs the embedded simulator (`crate::sim`) on one port until SIGINT or
//! SIGTERM, printing `listening on http://ADDR` on stdout once it accepts connections, then
//! `<system> listening on http://ADDR` for each system asked to have an address of its own.

use std::io::Write;
use std::time::Duration;

use super::args::{RaasLoginGet, SimCommand, SimServeArgs, VsphereFlavorArg};
use super::{Failure, Reporter, exit};
use crate::sim::{self, OwnPort, SimConfig};

pub async fn run(command: SimCommand, reporter: &Reporter) -> Result<i32, Failure> {
    match command {
        SimCommand::Serve(args) => serve(args, reporter).await,
    }
}

async fn serve(args: SimServeArgs, reporter: &Reporter) -> Result<i32, Failure> {
    if !(args.time_scale > 0.0 && args.time_scale.is_finite()) {
        return Err(Failure::new(format!(
            "`--time-scale` must be a positive number, not {}",
            args.time_scale
        )));
    }
    let mut config = SimConfig {
        listen: args.listen,
        time_scale: args.time_scale,
        token_ttl: Duration::from_secs(args.token_ttl.max(1)),
        seed: args.seed,
        state_file: args.state,
        seed_data: args.seed_data,
        credentials_file: args.credentials,
        own_ports: [
            (OwnPort::Vcd, args.listen_vcd),
            (OwnPort::Vsphere, args.listen_vsphere),
        ]
        .into_iter()
        .filter_map(|(system, addr)| Some((system, addr?)))
        .collect(),
        ..SimConfig::default()
    };
    config.faults.latency_ms = args.latency_ms;
    if let Some(options) = &args.options {
        config.options = serde_json::from_str(options).map_err(|err| {
            Failure::with_source("`--options` is not valid", err)
                .with_hint("run the simulator and `GET /_sim/options` to see every option")
        })?;
    }
    if let Some(mode) = args.raas_login_get {
        config.options.raas_login_get = match mode {
            RaasLoginGet::Serve => sim::raas::LoginGet::Serve,
            RaasLoginGet::Refuse => sim::raas::LoginGet::Refuse,
        };
    }
    if let Some(flavor) = args.vsphere_flavor {
        config.options.vsphere_flavors = match flavor {
            VsphereFlavorArg::Both => sim::vsphere::ServedFlavors::Both,
            VsphereFlavorArg::Api => sim::vsphere::ServedFlavors::Api,
            VsphereFlavorArg::Rest => sim::vsphere::ServedFlavors::Rest,
        };
    }
    let handle = sim::start(config).await?;
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {}", handle.base_url);
        for (system, url) in &handle.own_urls {
            let _ = writeln!(stdout, "{} listening on {url}", system.name());
        }
        let _ = stdout.flush();
    }
    wait_for_shutdown_signal().await;
    reporter.note("simulator stopped");
    handle.stop().await;
    Ok(exit::OK)
}

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

//! `sextant sim serve`: runs the embedded simulator (`crate::sim`) on one port until SIGINT or
//! SIGTERM, printing `listening on http://ADDR` on stdout once it accepts connections, then
//! `<system> listening on http://ADDR` for each system asked to have an address of its own.

use std::io::Write;

use super::{Failure, Reporter, exit};
use crate::sim::{self, SimConfig};

/// Serves the simulator `config` describes until SIGINT or SIGTERM.
pub async fn serve(config: SimConfig, reporter: &Reporter) -> Result<i32, Failure> {
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

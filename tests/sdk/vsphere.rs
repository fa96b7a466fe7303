//! vsphere through its official Python SDK: `create_vsphere_client` (vAPI JSON-RPC at
//! `/api`) against `sextant sim serve`, the assertions in `tests/sdk/vsphere_sdk.py`.

use crate::support::sdk::{SimServer, run_script};

/// `host:port` of a simulator URL, as `create_vsphere_client(server=…)` takes it.
fn server(sim: &SimServer) -> String {
    sim.url.trim_start_matches("http://").to_owned()
}

async fn script(args: Vec<String>) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_script("vsphere_sdk.py", &args);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vsphere_sdk_manages_sessions_vms_power_and_hardware_and_gets_the_documented_errors() {
    let sim = SimServer::start(&[]).await;
    script(vec![server(&sim)]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vsphere_sdk_works_whichever_rest_flavour_the_simulator_serves() {
    // JSON-RPC is the SDK's transport on every vCenter, with or without `/rest`.
    let api = SimServer::start(&["--vsphere-flavor", "api"]).await;
    let rest = SimServer::start(&["--vsphere-flavor", "rest"]).await;
    script(vec!["smoke".to_owned(), server(&api), server(&rest)]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vsphere_sdk_gets_service_unavailable_for_guest_shutdown_without_vmware_tools() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        "vsphere:\n  vms:\n    - { name: legacy-01, id: vm-7, power_state: POWERED_ON, tools_running: false }\n",
    )
    .unwrap();
    let sim = SimServer::start(&["--seed-data", seed.to_str().unwrap()]).await;
    script(vec!["tools".to_owned(), server(&sim), "vm-7".to_owned()]).await;
}

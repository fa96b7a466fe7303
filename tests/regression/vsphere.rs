//! Regressions of vsphere.
//!
//! Evidence: `/rest` is deprecated since vSphere 7.0 U2 and announced for removal; `/api` is
//! the current flavour (`POST /api/session` → a bare JSON string, `GET /api/vcenter/vm` → a
//! bare list, `POST …/power?action=`, `PATCH …/hardware/cpu` `{"count": n}` → 204): VMware,
//! "vSphere 7 Update 2 – REST API Modernization" and the `/api` reference, as cited in
//! `api/README.md`, "Corrections after the audit". Guest power and `VM.Info`: the vSphere
//! SDK's bindings, `com/vmware/vcenter/vm/guest_client.py` (`Power.shutdown`:
//! `ServiceUnavailable` "if VMware Tools is not running") and `com/vmware/vcenter_client.py`
//! (`VM.Info`).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sextant::providers::vsphere::{Flavor, parse_vm_info};
use sextant::sim::SimConfig;
use sextant::sim::SimOptions;
use sextant::sim::vsphere::ServedFlavors;

use crate::support::estate::{Estate, Run, SECRETS};

const USER: &str = "administrator@vsphere.local";
const PASSWORD: &str = SECRETS[3].1;

/// web-01 (on, 2 CPUs, 4 GiB) gets 4 CPUs through a power cycle; db-01 (off) is started.
const VMS: &str = r#"kind: VirtualMachine
name: web-01
spec:
  power_state: POWERED_ON
  cpu_count: 4
  memory_size_MiB: 8192
  allow_power_cycle: true
---
kind: VirtualMachine
name: db-01
spec:
  power_state: POWERED_ON
"#;

async fn estate_with(options: SimOptions) -> Estate {
    Estate::with_config(SimConfig {
        time_scale: 240.0,
        options,
        ..SimConfig::default()
    })
    .await
}

async fn apply(estate: &Estate) -> Run {
    estate.run(&["apply", "--auto-approve", "manifests"]).await
}

fn vm<'a>(state: &'a Value, name: &str) -> &'a Value {
    state["vsphere"]["vms"]
        .as_object()
        .unwrap()
        .values()
        .find(|vm| vm["name"] == name)
        .unwrap_or_else(|| panic!("no VM {name}"))
}

/// Applies `VMS` and checks that the estate then matches and plans no changes.
async fn apply_and_settle(estate: &Estate) {
    estate.write("vms.yaml", VMS);
    let applied = apply(estate).await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let state = estate.state().await;
    let web = vm(&state, "web-01");
    assert_eq!(web["cpu_count"], 4);
    assert_eq!(web["memory_size_MiB"], 8192);
    assert_eq!(web["power_state"], "POWERED_ON");
    assert_eq!(vm(&state, "db-01")["power_state"], "POWERED_ON");
    let settled = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(settled.code, 0, "{}\n{}", settled.stdout, settled.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_against_a_vcenter_serving_only_api_changes_the_vms() {
    let estate = estate_with(SimOptions {
        vsphere_flavors: ServedFlavors::Api,
        ..SimOptions::default()
    })
    .await;
    apply_and_settle(&estate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_against_a_vcenter_serving_only_rest_falls_back_from_api() {
    let estate = estate_with(SimOptions {
        vsphere_flavors: ServedFlavors::Rest,
        ..SimOptions::default()
    })
    .await;
    apply_and_settle(&estate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_flavor_pins_the_flavour_and_names_the_fix_when_the_server_lacks_it() {
    let estate = estate_with(SimOptions {
        vsphere_flavors: ServedFlavors::Rest,
        ..SimOptions::default()
    })
    .await;
    let pinned = |flavor: &str| {
        super::support::connections(&estate.sim.base_url, "salt").replace(
            "  password: { env: SEXTANT_T_VSPHERE_PASSWORD }\n",
            &format!("  password: {{ env: SEXTANT_T_VSPHERE_PASSWORD }}\n  api_flavor: {flavor}\n"),
        )
    };
    estate.write("connections.yaml", &pinned("api"));
    estate.write("vms.yaml", VMS);
    let refused = estate.run(&["plan", "manifests"]).await;
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("api_flavor: rest"),
        "{}",
        refused.stderr
    );
    estate.write("connections.yaml", &pinned("rest"));
    let applied = apply(&estate).await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
}

/// A session on the simulator, in `flavor`.
async fn session(base: &str, flavor: Flavor) -> String {
    let path = match flavor {
        Flavor::Api => "/api/session",
        Flavor::Rest => "/rest/com/vmware/cis/session",
    };
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .basic_auth(USER, Some(PASSWORD))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    match flavor {
        Flavor::Api => {
            assert_eq!(status, 201);
            body.as_str().expect("a bare JSON string").to_owned()
        }
        Flavor::Rest => {
            assert_eq!(status, 200);
            body["value"].as_str().unwrap().to_owned()
        }
    }
}

async fn vcenter(method: Method, url: String, session: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("vmware-api-session-id", session)
        .header("accept", "application/json");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulated_api_flavour_refuses_rest_shaped_requests() {
    let estate = Estate::start(240.0).await;
    let base = estate.sim.base_url.clone();
    let id = session(&base, Flavor::Api).await;
    let cpu = format!("{base}/api/vcenter/vm/vm-1003/hardware/cpu");
    let (status, body) = vcenter(
        Method::PATCH,
        cpu.clone(),
        &id,
        Some(json!({"spec": {"count": 8}})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_type"], "INVALID_ARGUMENT", "{body}");
    let (status, body) = vcenter(
        Method::GET,
        format!("{base}/api/vcenter/vm?filter.names=web-01"),
        &id,
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = vcenter(Method::PATCH, cpu, &id, Some(json!({"count": 8}))).await;
    assert_eq!(status, 204);
    assert_eq!(vm(&estate.state().await, "db-01")["cpu_count"], 8);
}

/// The fields of `VM.Info` in `com/vmware/vcenter_client.py` that are not optional, plus
/// `identity`.
const VM_INFO_FIELDS: &[&str] = &[
    "guest_OS",
    "name",
    "identity",
    "power_state",
    "hardware",
    "boot",
    "boot_devices",
    "cpu",
    "memory",
    "disks",
    "nics",
    "cdroms",
    "floppies",
    "parallel_ports",
    "serial_ports",
    "sata_adapters",
    "scsi_adapters",
];

const VM_INFO_MAPS: &[&str] = &[
    "disks",
    "nics",
    "cdroms",
    "floppies",
    "parallel_ports",
    "serial_ports",
    "sata_adapters",
    "scsi_adapters",
];

#[tokio::test(flavor = "multi_thread")]
async fn vm_get_returns_the_whole_vm_info_in_both_flavours_and_sextant_reads_it() {
    let estate = Estate::start(240.0).await;
    let base = estate.sim.base_url.clone();
    for flavor in [Flavor::Api, Flavor::Rest] {
        let id = session(&base, flavor).await;
        let prefix = if flavor == Flavor::Api { "api" } else { "rest" };
        let url = format!("{base}/{prefix}/vcenter/vm/vm-1001");
        let response = reqwest::Client::new()
            .get(url)
            .header("vmware-api-session-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let bytes = response.bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let info = if flavor == Flavor::Api {
            &body
        } else {
            &body["value"]
        };
        for field in VM_INFO_FIELDS {
            assert!(
                info.get(*field).is_some(),
                "{flavor:?}: no `{field}` in {info}"
            );
        }
        for field in ["retry", "retry_delay", "delay", "type", "enter_setup_mode"] {
            assert!(info["boot"].get(field).is_some(), "boot.{field}: {info}");
        }
        for map in VM_INFO_MAPS {
            match flavor {
                // `/api` encodes maps as JSON objects…
                Flavor::Api => assert!(info[*map].is_object(), "{map}: {}", info[*map]),
                // …`/rest` as lists of `{"key": …, "value": …}`.
                Flavor::Rest => {
                    let entries = info[*map].as_array().unwrap_or_else(|| panic!("{map}"));
                    assert!(
                        entries
                            .iter()
                            .all(|e| e.get("key").is_some() && e.get("value").is_some())
                    );
                }
            }
        }
        assert_eq!(info["disks"].as_object().map_or(1, |m| m.len()), 1);
        let parsed = parse_vm_info(flavor, &bytes).unwrap();
        assert_eq!(parsed.cpu.and_then(|c| c.count), Some(2));
        assert_eq!(parsed.memory.and_then(|m| m.size_mib), Some(4096));
        assert_eq!(parsed.power_state.as_deref(), Some("POWERED_ON"));
    }
}

/// Seed data: `web-01` and `db-01` as in the default estate, `legacy-01` on without VMware
/// Tools.
fn seed_with_a_vm_without_tools(estate_dir: &std::path::Path) -> std::path::PathBuf {
    let path = estate_dir.join("seed.yaml");
    std::fs::write(
        &path,
        "vsphere:\n  vms:\n    - { name: web-01, id: vm-1001, power_state: POWERED_ON, cpu_count: 2, memory_size_MiB: 4096 }\n    - { name: legacy-01, id: vm-1002, power_state: POWERED_ON, cpu_count: 2, memory_size_MiB: 4096, tools_running: false }\n",
    )
    .unwrap();
    path
}

async fn estate_with_seed(shutdown_secs: u64) -> Estate {
    let seed_dir = tempfile::tempdir().unwrap();
    let seed = seed_with_a_vm_without_tools(seed_dir.path());
    let estate = Estate::with_config(SimConfig {
        time_scale: 240.0,
        seed_data: Some(seed),
        options: SimOptions {
            vsphere_guest_shutdown_secs: shutdown_secs,
            ..SimOptions::default()
        },
        ..SimConfig::default()
    })
    .await;
    drop(seed_dir);
    estate
}

/// How the simulator saw `name` go off last: `guest_shutdown` or `power_stop` (its own
/// bookkeeping in `/_sim/state`).
async fn last_power_off(estate: &Estate, name: &str) -> Value {
    vm(&estate.state().await, name)["last_power_off"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_power_cycle_shuts_the_guest_down_and_waits_for_it_to_power_off() {
    // The guest takes 8 simulated minutes (2 s here) to shut down.
    let estate = estate_with_seed(480).await;
    let manifest = "kind: VirtualMachine\nname: web-01\nspec:\n  power_state: POWERED_OFF\n  cpu_count: 4\n  allow_power_cycle: true\n";
    estate.write("vms.yaml", manifest);
    let plan = estate.run(&["plan", "manifests"]).await;
    assert!(
        plan.stdout
            .contains("# steps: guest shutdown → change CPU/memory"),
        "{}",
        plan.stdout
    );
    let started = std::time::Instant::now();
    let applied = apply(&estate).await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(started.elapsed() >= Duration::from_secs(2), "did not wait");
    let state = estate.state().await;
    assert_eq!(vm(&state, "web-01")["cpu_count"], 4);
    assert_eq!(vm(&state, "web-01")["power_state"], "POWERED_OFF");
    assert_eq!(last_power_off(&estate, "web-01").await, "guest_shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_shutdown_that_outlasts_timeouts_update_fails_the_apply() {
    // The guest takes 10 simulated hours: far past a 1 s update timeout.
    let estate = estate_with_seed(36_000).await;
    let manifest = "kind: VirtualMachine\nname: web-01\ntimeouts: { update: 1s }\nspec:\n  power_state: POWERED_ON\n  cpu_count: 4\n  allow_power_cycle: true\n";
    estate.write("vms.yaml", manifest);
    let applied = apply(&estate).await;
    assert_eq!(applied.code, 1, "{}\n{}", applied.stdout, applied.stderr);
    assert!(
        format!("{}{}", applied.stdout, applied.stderr).contains("timed out"),
        "{}\n{}",
        applied.stdout,
        applied.stderr
    );
    assert_eq!(vm(&estate.state().await, "web-01")["cpu_count"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_vmware_tools_a_power_cycle_powers_off_hard_only_when_the_manifest_allows_it() {
    let estate = estate_with_seed(60).await;
    let manifest = |allow: &str| {
        format!(
            "kind: VirtualMachine\nname: legacy-01\nspec:\n  power_state: POWERED_OFF\n  cpu_count: 4\n  allow_power_cycle: {allow}\n"
        )
    };
    estate.write("vms.yaml", &manifest("true"));
    let refused = apply(&estate).await;
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    let output = format!("{}{}", refused.stdout, refused.stderr);
    assert!(output.contains("VMware Tools is not running"), "{output}");
    assert!(output.contains("graceful_or_hard"), "{output}");
    let state = estate.state().await;
    assert_eq!(vm(&state, "legacy-01")["power_state"], "POWERED_ON");
    assert_eq!(vm(&state, "legacy-01")["cpu_count"], 2);

    estate.write("vms.yaml", &manifest("graceful_or_hard"));
    let plan = estate.run(&["plan", "manifests"]).await;
    assert!(
        plan.stdout
            .contains("guest shutdown (hard power-off if VMware Tools is not running)"),
        "{}",
        plan.stdout
    );
    let applied = apply(&estate).await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert_eq!(vm(&estate.state().await, "legacy-01")["cpu_count"], 4);
    assert_eq!(last_power_off(&estate, "legacy-01").await, "power_stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_power_cycle_hard_powers_off_at_once_and_the_plan_says_so() {
    let estate = estate_with_seed(36_000).await;
    estate.write(
        "vms.yaml",
        "kind: VirtualMachine\nname: web-01\nspec:\n  power_state: POWERED_OFF\n  memory_size_MiB: 8192\n  allow_power_cycle: hard\n",
    );
    let plan = estate.run(&["plan", "--format", "json", "manifests"]).await;
    assert!(plan.stdout.contains("hard power-off"), "{}", plan.stdout);
    let applied = apply(&estate).await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert_eq!(vm(&estate.state().await, "web-01")["memory_size_MiB"], 8192);
    assert_eq!(last_power_off(&estate, "web-01").await, "power_stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_session_on_the_shared_port_is_vspheres_for_vsphere_clients_only() {
    let estate = Estate::start(240.0).await;
    let base = estate.sim.base_url.clone();
    let id = session(&base, Flavor::Api).await;
    let (status, body) = vcenter(Method::GET, format!("{base}/api/session"), &id, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], USER);
    // A Cloud Director client's request to the same path is not answered by vSphere.
    let response = reqwest::Client::new()
        .get(format!("{base}/api/session"))
        .header("accept", "application/*+xml;version=36.1")
        .header("x-vcloud-authorization", "not-a-vsphere-session")
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(!text.contains(USER), "{text}");
    assert!(
        !text.contains("This method requires authentication."),
        "{text}"
    );
}

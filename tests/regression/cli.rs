//! Regressions of the command line: what a new operator ran into (issue 15).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::estate::{Estate, Run};

const SALT: &str = r#"kind: SaltTarget
name: web servers
spec:
  desc: Web tier
  tgt: { "*": { tgt_type: glob, tgt: "web-*" } }
---
kind: SaltJob
name: Apply web state
spec:
  desc: Apply nginx
  cmd: local
  fun: state.apply
  target: web servers
"#;

const VM: &str = r#"kind: VirtualMachine
name: db-01
spec:
  power_state: POWERED_ON
"#;

/// Names of the simulator's RaaS objects of one section (`target_groups`, `jobs`, …).
async fn raas_names(estate: &Estate, section: &str) -> Vec<String> {
    let state = estate.state().await;
    let mut names: Vec<String> = state["raas"][section]
        .as_object()
        .map(|objects| {
            objects
                .values()
                .filter_map(|o| o["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Requests the simulator served, per API.
async fn counters(estate: &Estate) -> BTreeMap<String, u64> {
    let counters = estate
        .admin(reqwest::Method::GET, "/_sim/counters", None)
        .await;
    counters
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
        .collect()
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_applied_with_target_is_refused_and_nothing_is_applied() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SALT);
    estate.write("vm.yaml", VM);
    ok(&estate
        .run(&["plan", "--out", "all.plan", "manifests"])
        .await);
    let before = raas_names(&estate, "target_groups").await;

    let run = estate
        .run(&["apply", "--target", "VirtualMachine/db-01", "all.plan"])
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("`--target VirtualMachine/db-01` cannot change a saved plan"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("Apply complete"), "{}", run.stdout);
    assert_eq!(raas_names(&estate, "target_groups").await, before);
    assert!(!before.contains(&"web servers".to_string()));
    let state = estate.state().await;
    let db = state["vsphere"]["vms"]
        .as_object()
        .and_then(|vms| vms.values().find(|vm| vm["name"] == "db-01"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(db["power_state"], "POWERED_OFF", "{db}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_saved_under_sim_applies_under_sim() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SALT);
    ok(&estate
        .run(&["plan", "--sim", "--out", "sim.plan", "manifests"])
        .await);
    let run = estate.run(&["apply", "--sim", "sim.plan"]).await;
    ok(&run);
    assert!(
        run.stdout.contains("Apply complete! Resources: 2 added"),
        "{}",
        run.stdout
    );
    let again = estate.run(&["plan", "--sim", "manifests"]).await;
    ok(&again);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_saved_plan_names_the_file_and_the_connection_setting_that_changed() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SALT);
    ok(&estate.run(&["plan", "--out", "p.plan", "manifests"]).await);
    // Another org for the vSphere connection, and another description for the job.
    let connections = std::fs::read_to_string(estate.path().join("manifests/connections.yaml"))
        .unwrap()
        .replace(
            "username: administrator@vsphere.local",
            "username: operator@vsphere.local",
        );
    estate.write("connections.yaml", &connections);
    estate.write("salt.yaml", &SALT.replace("Apply nginx", "Apply nginx now"));

    let run = estate.run(&["apply", "p.plan"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("connection `vcenter`: `spec.username` changed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("`SaltJob/Apply web state` changed in `manifests/salt.yaml`"),
        "{}",
        run.stderr
    );
    assert!(
        raas_names(&estate, "jobs")
            .await
            .iter()
            .all(|n| n != "Apply web state")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_raas_token_is_reported_before_any_request() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SALT);
    let output = estate
        .command(&["plan", "manifests"])
        .env_remove("SEXTANT_T_RAAS_TOKEN")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("connection `salt`")
            && stderr.contains("environment variable `SEXTANT_T_RAAS_TOKEN` is not set"),
        "{stderr}"
    );
    let served = counters(&estate).await;
    assert_eq!(served.get("total"), Some(&0), "{served:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_endpoint_is_reported_while_retrying_and_named_at_the_end() {
    let estate = Estate::start(240.0).await;
    // A port nobody listens on: bound, then released.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    estate.write(
        "connections.yaml",
        &format!(
            "kind: Connection\nname: vcenter\nspec:\n  type: vsphere\n  url: http://127.0.0.1:{port}\n  max_retries: 3\n  username: u\n  password: {{ env: SEXTANT_T_VSPHERE_PASSWORD }}\n"
        ),
    );
    estate.write("vm.yaml", VM);
    let run = estate.run(&["plan", "manifests"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let retries: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(&format!("retrying POST http://127.0.0.1:{port}/")))
        .collect();
    // One budget: `max_retries: 3` of the one request that opens the session (4 attempts),
    // each announced with its cause, and nothing retried around it.
    assert_eq!(retries.len(), 3, "{}", run.stderr);
    for (i, line) in retries.iter().enumerate() {
        assert!(
            line.contains("connection refused")
                && line.contains(&format!("(attempt {} of 4)", i + 2)),
            "{line}"
        );
    }
    let error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(error.contains("vcenter"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot connect to `127.0.0.1:{port}`")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("4 attempts"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_neither_declared_nor_live_is_a_plan_error_naming_the_document_and_connection()
{
    let estate = Estate::start(240.0).await;
    // "All Minions" is built into every RaaS server (raas.md §6): referring to it is fine.
    estate.write(
        "jobs.yaml",
        r#"kind: SaltJob
name: Everywhere
spec:
  cmd: local
  fun: test.ping
  target: All Minions
---
kind: SaltJob
name: Orphan
spec:
  cmd: local
  fun: test.ping
  target: No Such Target
---
kind: SaltSchedule
name: Hourly ping
spec:
  job: Everywhere
  target: Nowhere
  schedule: { minutes: 60 }
"#,
    );
    let run = estate.run(&["plan", "manifests"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "SaltJob/Orphan: manifests/jobs.yaml:13:11 `spec.target` names `SaltTarget/No Such Target`, which is neither declared in the manifests nor live on connection `salt`",
        "SaltSchedule/Hourly ping: manifests/jobs.yaml:19:11 `spec.target` names `SaltTarget/Nowhere`, which is neither declared in the manifests nor live on connection `salt`",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("SaltJob/Everywhere"), "{}", run.stderr);
    assert!(!run.stdout.contains("to add"), "{}", run.stdout);
}

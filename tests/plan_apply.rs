//! `plan` and `apply` through the real binary against the simulator over loopback: the
//! quickstart end to end, drift, updates and deletes, failures, interruptions, saved plans,
//! request counts and determinism.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use support::estate::{Estate, assert_secrets_absent, command_in};

impl Estate {
    /// SDDCs of a name that are not deleted.
    async fn live_sddcs(&self, name: &str) -> usize {
        let state = self.state().await;
        find_objects(&state["vmc"], "sddc_state")
            .iter()
            .filter(|s| s["name"] == name && s["sddc_state"] != "DELETED")
            .count()
    }
}

/// Every JSON object under `value` that has the key `marker`.
fn find_objects<'a>(value: &'a Value, marker: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            if map.contains_key(marker) {
                out.push(value);
            }
            for v in map.values() {
                out.extend(find_objects(v, marker));
            }
        }
        Value::Array(items) => {
            for v in items {
                out.extend(find_objects(v, marker));
            }
        }
        _ => {}
    }
    out
}

use support::SALT;

const VMS: &str = r#"kind: VirtualMachine
name: web-01
spec:
  power_state: POWERED_ON
  cpu_count: 2
"#;

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_applies_on_the_embedded_simulator_then_plans_no_changes() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let copy = dir.path().join("quickstart");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&quickstart).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    let run = |args: Vec<&'static str>| {
        let mut command = command_in(dir.path(), &args);
        command.arg(&copy);
        async move { command.output().await.unwrap() }
    };
    let apply = run(vec![
        "apply",
        "--sim",
        "--sim-time-scale",
        "7200",
        "--auto-approve",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&apply.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&apply.stderr).into_owned();
    assert_eq!(apply.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Apply complete! Resources: 7 added, 1 changed, 0 destroyed."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Sddc/quickstart-sddc: Creation complete"),
        "{stdout}"
    );

    let token_file = copy.join(".secrets/ci-pipeline-token.json");
    let meta = std::fs::metadata(&token_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let token: Value =
        serde_json::from_str(&std::fs::read_to_string(&token_file).unwrap()).unwrap();
    let secret = token["refresh_token"].as_str().unwrap();
    assert!(secret.len() > 8);
    assert!(token["token_type"].is_string() && token["updated_on"].is_string());
    assert!(!stdout.contains(secret) && !stderr.contains(secret));

    let plan = run(vec!["plan", "--sim", "--detailed-exitcode"]).await;
    let plan_out = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(0), "{plan_out}");
    assert_eq!(
        plan_out,
        "No changes. Your infrastructure matches the configuration.\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_in_one_field_is_one_in_place_change_with_exit_code_2() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SALT);
    estate.write("vms.yaml", VMS);
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let clean = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(clean.code, 0, "{}\n{}", clean.stdout, clean.stderr);

    // Power the VM off behind sextant's back, through the vSphere API.
    let client = reqwest::Client::new();
    let base = &estate.sim.base_url;
    let session: Value = client
        .post(format!("{base}/rest/com/vmware/cis/session"))
        .basic_auth("someone", Some("pw"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = session["value"].as_str().unwrap().to_string();
    let vms: Value = client
        .get(format!("{base}/rest/vcenter/vm?filter.names=web-01"))
        .header("vmware-api-session-id", &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vm = vms["value"][0]["vm"].as_str().unwrap().to_string();
    let stop = client
        .post(format!("{base}/rest/vcenter/vm/{vm}/power/stop"))
        .header("vmware-api-session-id", &session)
        .send()
        .await
        .unwrap();
    assert!(stop.status().is_success());

    let drift = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    sextant_snapshot!("plan-drift-in-one-field", drift);

    let json = estate.run(&["plan", "--format", "json", "manifests"]).await;
    let parsed: Value = serde_json::from_str(&json.stdout).expect("one JSON document on stdout");
    let changes: Vec<&Value> = parsed["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"]["actions"] != json!(["no-op"]))
        .collect();
    assert_eq!(changes.len(), 1, "{}", json.stdout);
    assert_eq!(changes[0]["address"], "VirtualMachine/web-01");
    assert_eq!(changes[0]["change"]["actions"], json!(["update"]));
    assert_secrets_absent(&[
        &apply.stdout,
        &apply.stderr,
        &drift.stdout,
        &drift.stderr,
        &json.stdout,
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_and_deletes_converge() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SALT);
    let first = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);

    estate.write(
        "salt.yaml",
        &SALT.replace("desc: Apply nginx", "desc: Apply nginx and php"),
    );
    let plan = estate.run(&["plan", "manifests"]).await;
    assert!(
        plan.stdout
            .contains(r#"~ desc = "Apply nginx" -> "Apply nginx and php""#),
        "{}",
        plan.stdout
    );
    let update = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(update.code, 0, "{}\n{}", update.stdout, update.stderr);
    assert!(update.stdout.contains("1 changed"), "{}", update.stdout);
    let after = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(after.code, 0, "{}", after.stdout);

    // Delete the schedule and then the job: the schedule goes first.
    let absent = SALT
        .replace(
            "kind: SaltSchedule\nname: Nightly\n",
            "kind: SaltSchedule\nname: Nightly\nensure: absent\n",
        )
        .replace(
            "kind: SaltJob\nname: Apply web state\n",
            "kind: SaltJob\nname: Apply web state\nensure: absent\n",
        );
    estate.write("salt.yaml", &absent);
    let delete = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(delete.code, 0, "{}\n{}", delete.stdout, delete.stderr);
    assert!(delete.stdout.contains("2 destroyed"), "{}", delete.stdout);
    let schedule_done = delete
        .stdout
        .find("SaltSchedule/Nightly: Destruction complete")
        .unwrap();
    let job_started = delete
        .stdout
        .find("SaltJob/Apply web state: Destroying")
        .unwrap();
    assert!(schedule_done < job_started, "{}", delete.stdout);
    let settled = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(settled.code, 0, "{}", settled.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_sddc_task_skips_dependants_and_independent_work_still_applies() {
    let estate = Estate::start(7200.0).await;
    estate
        .admin(
            reqwest::Method::PUT,
            "/_sim/faults",
            Some(json!({"fail_sddc_tasks": ["doomed"]})),
        )
        .await;
    estate.write(
        "mixed.yaml",
        r#"kind: Sddc
name: doomed
spec: { region: us-west-2, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal, account_link: { delay: true } }
---
kind: SaltJob
name: Configure vCenter
spec:
  cmd: local
  fun: test.ping
  desc: "vCenter at ${Sddc/doomed.vc_url}"
  target: All Minions
---
kind: SaltJob
name: Independent
spec: { cmd: local, fun: test.ping, target: All Minions }
"#,
    );
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 1, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply.stdout.contains("Sddc/doomed: failed"),
        "{}",
        apply.stdout
    );
    assert!(
        apply
            .stdout
            .contains("SaltJob/Configure vCenter: skipped because Sddc/doomed"),
        "{}",
        apply.stdout
    );
    assert!(
        apply
            .stdout
            .contains("SaltJob/Independent: Creation complete"),
        "{}",
        apply.stdout
    );
    assert!(apply.stdout.contains("Apply failed."), "{}", apply.stdout);
    // The failure is rendered once by the reporter, its cause on a `Caused by:` line.
    assert!(
        apply
            .stderr
            .contains("error: applying `Sddc/doomed` failed\n  Caused by: the server task failed"),
        "{}",
        apply.stderr
    );

    // The failed SDDC is planned as a replacement, the independent job is done.
    let plan = estate.run(&["plan", "manifests"]).await;
    assert!(
        plan.stdout.contains("# Sddc/doomed must be replaced"),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("SaltJob/Independent"),
        "{}",
        plan.stdout
    );
}

/// Starts an apply that creates an SDDC and returns once the create is under way.
async fn start_sddc_apply(estate: &Estate) -> tokio::process::Child {
    estate.write(
        "sddc.yaml",
        "kind: Sddc\nname: resumable\nspec: { region: us-west-2, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal, account_link: { delay: true } }\n",
    );
    let mut child = estate
        .command(&["apply", "--auto-approve", "manifests"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Sddc/resumable: Creating...") {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the create never started");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // Let the create request reach the server.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_during_an_sddc_create_exits_130_and_the_next_apply_waits_instead_of_duplicating() {
    let estate = Estate::start(480.0).await;
    let child = start_sddc_apply(&estate).await;
    let pid = child.id().unwrap() as i32;
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(estate.live_sddcs("resumable").await, 1);

    let plan = estate.run(&["plan", "manifests"]).await;
    assert!(
        plan.stdout.contains(
            "# Sddc/resumable has a task in progress on the server; apply will wait for it"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("0 to add, 0 to change, 0 to destroy, 1 to wait."),
        "{}",
        plan.stdout
    );
    let resume = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(resume.code, 0, "{}\n{}", resume.stdout, resume.stderr);
    assert_eq!(estate.live_sddcs("resumable").await, 1);
    let settled = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(settled.code, 0, "{}", settled.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_an_sddc_create_then_apply_leaves_exactly_one_sddc() {
    let estate = Estate::start(480.0).await;
    let mut child = start_sddc_apply(&estate).await;
    child.kill().await.unwrap();
    let _ = child.wait().await;
    assert_eq!(estate.live_sddcs("resumable").await, 1);
    let resume = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(resume.code, 0, "{}\n{}", resume.stdout, resume.stderr);
    assert_eq!(estate.live_sddcs("resumable").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_plan_file_is_refused_and_a_fresh_one_applies() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SALT);
    let plan = estate
        .run(&["plan", "--out", "salt.plan", "manifests"])
        .await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    // Someone else creates the target group first.
    let partial = estate
        .run(&[
            "apply",
            "--auto-approve",
            "--target",
            "SaltTarget/web servers",
            "manifests",
        ])
        .await;
    assert_eq!(partial.code, 0, "{}\n{}", partial.stdout, partial.stderr);
    let stale = estate.run(&["apply", "salt.plan"]).await;
    assert_eq!(stale.code, 1, "{}\n{}", stale.stdout, stale.stderr);
    assert!(stale.stderr.contains("stale"), "{}", stale.stderr);
    assert!(
        stale.stderr.contains("SaltTarget/web servers"),
        "{}",
        stale.stderr
    );

    let fresh = estate
        .run(&["plan", "--out", "salt.plan", "manifests"])
        .await;
    assert_eq!(fresh.code, 0);
    let applied = estate.run(&["apply", "salt.plan"]).await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains("Apply complete!"),
        "{}",
        applied.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_without_a_terminal_refuses_unless_approved() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SALT);
    let refused = estate.run(&["apply", "manifests"]).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("--auto-approve"),
        "{}",
        refused.stderr
    );
    let plan = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(plan.code, 2, "nothing was applied: {}", plan.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_of_an_unchanged_estate_are_byte_identical_in_every_format() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SALT);
    estate.write(
        "vms.yaml",
        &VMS.replace(
            "cpu_count: 2",
            "cpu_count: 2\n  memory_size_MiB: 8192\n  allow_power_cycle: true",
        ),
    );
    for format in ["text", "json", "markdown"] {
        let first = estate.run(&["plan", "--format", format, "manifests"]).await;
        let second = estate.run(&["plan", "--format", format, "manifests"]).await;
        assert_eq!(first.code, 0, "{}", first.stderr);
        assert!(!first.stdout.is_empty());
        assert_eq!(first.stdout, second.stdout, "format {format}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cpu_change_on_a_running_vm_needs_allow_power_cycle() {
    let estate = Estate::start(240.0).await;
    estate.write("vms.yaml", &VMS.replace("cpu_count: 2", "cpu_count: 4"));
    let refused = estate.run(&["plan", "manifests"]).await;
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("allow_power_cycle"),
        "{}",
        refused.stderr
    );

    estate.write(
        "vms.yaml",
        &VMS.replace("cpu_count: 2", "cpu_count: 4\n  allow_power_cycle: true"),
    );
    let plan = estate.run(&["plan", "manifests"]).await;
    assert!(
        plan.stdout
            .contains("# steps: guest shutdown → change CPU/memory → start"),
        "{}",
        plan.stdout
    );
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let settled = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(settled.code, 0, "{}", settled.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_of_2000_jobs_lists_them_in_the_minimum_number_of_pages() {
    let estate = Estate::start(240.0).await;
    let mut jobs = String::new();
    for i in 0..2000 {
        jobs.push_str(&format!(
            "---\nkind: SaltJob\nname: job {i:04}\nspec: {{ cmd: local, fun: test.ping, target: All Minions }}\n"
        ));
    }
    estate.write("jobs.yaml", &jobs);
    let apply = estate
        .run(&[
            "apply",
            "--auto-approve",
            "--parallelism",
            "20",
            "manifests",
        ])
        .await;
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    estate
        .admin(reqwest::Method::POST, "/_sim/counters/reset", None)
        .await;
    let plan = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(plan.code, 0, "{}", plan.stdout);
    let counters = estate
        .admin(reqwest::Method::GET, "/_sim/counters", None)
        .await;
    let raas = counters["raas"].as_u64().unwrap();
    let cap = estate
        .admin(reqwest::Method::GET, "/_sim/raas/options", None)
        .await;
    let page = cap["max_limit"].as_u64().unwrap_or(1000).min(1000);
    // The simulator's own estate holds a few jobs besides the 2,000 declared ones.
    let state = estate.state().await;
    let live_jobs = state["raas"]["jobs"]
        .as_object()
        .map_or(0, |jobs| jobs.len() as u64);
    assert!(live_jobs >= 2000, "{live_jobs} jobs live");
    // The cloud login (one `POST /account/login/`), then the job pages, one page of target
    // groups (to map `target` names) and one listing of `All Minions`, which the jobs name
    // but no manifest declares (it must be live).
    let minimum = 1 + live_jobs.div_ceil(page) + 1 + 1;
    assert!(
        raas <= minimum,
        "{raas} RaaS requests for a minimum of {minimum}: {counters}"
    );
    assert_eq!(
        counters["vmc"].as_u64().unwrap_or(0),
        0,
        "no VMC resource is declared"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unused_connections_are_never_contacted() {
    let estate = Estate::start(240.0).await;
    estate.write("vms.yaml", VMS);
    estate
        .admin(reqwest::Method::POST, "/_sim/counters/reset", None)
        .await;
    let plan = estate.run(&["plan", "manifests"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let counters = estate
        .admin(reqwest::Method::GET, "/_sim/counters", None)
        .await;
    for api in ["csp", "vmc", "raas", "vcd"] {
        assert_eq!(counters[api].as_u64().unwrap_or(0), 0, "{api}: {counters}");
    }
    assert!(counters["vsphere"].as_u64().unwrap() >= 2);
    // The vSphere session was ended when the command finished.
    let state = estate.state().await;
    let sessions = state["vsphere"]["sessions"]
        .as_object()
        .map_or(0, |s| s.len());
    assert_eq!(sessions, 0, "{}", state["vsphere"]["sessions"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vcd_token_whose_secret_file_is_lost_is_reported_then_recreated_on_request() {
    let estate = Estate::start(240.0).await;
    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci\nspec: { file: secrets/ci.json }\n",
    );
    let created = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(created.code, 0, "{}\n{}", created.stdout, created.stderr);
    let file = estate.path().join("manifests/secrets/ci.json");
    let first: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let first_secret = first["refresh_token"].as_str().unwrap().to_string();
    assert!(!created.stdout.contains(&first_secret) && !created.stderr.contains(&first_secret));

    std::fs::remove_file(&file).unwrap();
    let warned = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(warned.code, 0, "{}", warned.stdout);
    assert!(warned.stderr.contains("secret file"), "{}", warned.stderr);
    assert!(
        warned.stderr.contains("--recreate-lost-secrets"),
        "{}",
        warned.stderr
    );

    let recreated = estate
        .run(&[
            "apply",
            "--auto-approve",
            "--recreate-lost-secrets",
            "manifests",
        ])
        .await;
    assert_eq!(
        recreated.code, 0,
        "{}\n{}",
        recreated.stdout, recreated.stderr
    );
    assert!(
        recreated.stdout.contains("must be replaced"),
        "{}",
        recreated.stdout
    );
    let second: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let settled = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(settled.code, 0, "{}\n{}", settled.stdout, settled.stderr);
    assert!(
        !settled.stderr.contains("secret file"),
        "{}",
        settled.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn salt_only_estates_survive_a_restart_of_the_embedded_simulator() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("salt.yaml"),
        "kind: Connection\nname: salt\nspec: { type: raas, region: us, api_token: { env: SEXTANT_UNSET_TOKEN } }\n---\n".to_string() + SALT,
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut command = command_in(dir.path(), args);
        async move { command.output().await.unwrap() }
    };
    let apply = run(&["apply", "--sim", "--auto-approve", "salt.yaml"]).await;
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let plan = run(&["plan", "--sim", "--detailed-exitcode", "salt.yaml"]).await;
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_being_polled_holds_no_parallelism_slot() {
    // At parallelism 1, Salt jobs still run while the SDDC create is being polled.
    let estate = Estate::start(2400.0).await;
    let mut manifests = String::from(
        "kind: Sddc\nname: slow\nspec: { region: us-west-2, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal, account_link: { delay: true } }\n",
    );
    for i in 0..20 {
        manifests.push_str(&format!(
            "---\nkind: SaltJob\nname: job {i:02}\nspec: {{ cmd: local, fun: test.ping, target: All Minions }}\n"
        ));
    }
    estate.write("mixed.yaml", &manifests);
    let apply = estate
        .run(&["apply", "--auto-approve", "--parallelism", "1", "manifests"])
        .await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let sddc_done = apply.stdout.find("Sddc/slow: Creation complete").unwrap();
    let last_job_done = apply
        .stdout
        .rfind("SaltJob/job 19: Creation complete")
        .unwrap();
    assert!(sddc_done > apply.stdout.find("Sddc/slow: Creating...").unwrap());
    assert!(last_job_done < sddc_done, "{}", apply.stdout);
}

/// One RaaS RPC call the way another client would make it (Basic auth, XSRF header and
/// cookie); returns `ret`.
async fn raas_rpc(estate: &Estate, resource: &str, method: &str, kwarg: Value) -> Value {
    use base64::Engine;
    let client = reqwest::Client::new();
    let url = &estate.sim.base_url;
    let login = client
        .get(format!("{url}/account/login"))
        .send()
        .await
        .unwrap();
    let xsrf = login.headers()["x-xsrftoken"].to_str().unwrap().to_owned();
    let basic = base64::engine::general_purpose::STANDARD.encode("root:salt");
    let reply: Value = client
        .post(format!("{url}/rpc"))
        .header("authorization", format!("Basic {basic}"))
        .header("x-xsrftoken", &xsrf)
        .header("cookie", format!("_xsrf={xsrf}"))
        .json(&json!({"resource": resource, "method": method, "kwarg": kwarg}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["error"], Value::Null, "{reply}");
    reply["ret"].clone()
}

/// The simulated job or target group named `name` (`collection`: `jobs` or `target_groups`).
async fn raas_object(estate: &Estate, collection: &str, name: &str) -> Value {
    let state = estate.state().await;
    let found: Vec<&Value> = state["raas"][collection]
        .as_object()
        .unwrap()
        .values()
        .filter(|o| o["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{collection}/{name}");
    found[0].clone()
}

const ACCESS: &str = r#"kind: SaltTarget
name: web
spec:
  tgt: { "*": { tgt_type: glob, tgt: "web-*" } }
  access: { Ops: [write, read] }
---
kind: SaltJob
name: deploy
spec:
  fun: state.apply
  target: web
  access:
    Ops: [run, read]
    Dev: [read]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn salt_access_is_applied_read_back_and_drift_through_the_api_is_planned_per_role() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", ACCESS);
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let job = raas_object(&estate, "jobs", "deploy").await;
    assert_eq!(job["access"]["Ops"]["run"], true);
    assert_eq!(job["access"]["Ops"]["write"], false);
    assert_eq!(job["access"]["Dev"]["read"], true);
    // Roles the manifest does not name keep their access.
    assert_eq!(job["access"]["Administrator"]["write"], true);
    let web = raas_object(&estate, "target_groups", "web").await;
    assert_eq!(web["access"]["Ops"]["write"], true);
    let settled = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(settled.code, 0, "{}", settled.stdout);

    // Someone changes the access through the API: Ops may no longer run, Dev is gone, and
    // a new role appears.
    let uuid = job["uuid"].as_str().unwrap();
    let mut payload = raas_rpc(&estate, "job", "get_job_access", json!({"job_uuid": uuid})).await;
    payload["Ops"]["run"] = json!(false);
    payload.as_object_mut().unwrap().remove("Dev");
    payload["Audit"] = json!({"read": true});
    raas_rpc(
        &estate,
        "job",
        "save_job_access",
        json!({"job_uuid": uuid, "access_payload": payload}),
    )
    .await;
    let drift = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(drift.code, 2, "{}\n{}", drift.stdout, drift.stderr);
    assert!(
        drift
            .stdout
            .contains(r#"~ access.Ops = ["read"] -> ["read","run"]"#),
        "{}",
        drift.stdout
    );
    assert!(
        drift.stdout.contains(r#"+ access.Dev = ["read"]"#),
        "{}",
        drift.stdout
    );
    assert!(!drift.stdout.contains("Audit"), "{}", drift.stdout);
    assert!(drift.stdout.contains("1 to change"), "{}", drift.stdout);
    let fix = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(fix.code, 0, "{}\n{}", fix.stdout, fix.stderr);
    let job = raas_object(&estate, "jobs", "deploy").await;
    assert_eq!(job["access"]["Ops"]["run"], true);
    assert_eq!(job["access"]["Dev"]["read"], true);
    assert_eq!(
        job["access"]["Audit"]["read"], true,
        "not named: left alone"
    );
    let settled = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(settled.code, 0, "{}", settled.stdout);

    // `access_exclusive: true` takes access from every role the manifest does not name.
    estate.write(
        "salt.yaml",
        &ACCESS.replace("  access:\n", "  access_exclusive: true\n  access:\n"),
    );
    let exclusive = estate.run(&["plan", "manifests"]).await;
    for role in ["Administrator", "Audit", "Superuser", "User"] {
        assert!(
            exclusive.stdout.contains(&format!("- access.{role} = ")),
            "{role}: {}",
            exclusive.stdout
        );
    }
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let job = raas_object(&estate, "jobs", "deploy").await;
    let granted: Vec<&String> = job["access"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, perms)| perms.as_object().unwrap().values().any(|v| v == true))
        .map(|(role, _)| role)
        .collect();
    assert_eq!(granted, ["Dev", "Ops"]);
    let settled = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(settled.code, 0, "{}", settled.stdout);
}

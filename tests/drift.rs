//! `sextant drift` through the real binary against the simulator, in real Git repositories:
//! apply, tag the applied commit, then change the estate behind sextant's back, commit
//! changes without applying them and make objects by hand, and check what drift reports,
//! how it exits, and that `show` of a saved report prints what the run printed.

mod support;

use std::path::Path;

use serde_json::{Value, json};

use support::SALT;
use support::estate::{Estate, Run, assert_secrets_absent};

const TAG: &str = "sextant/applied/test";

/// The RaaS objects of the simulator's default estate, which no manifest here declares.
const DEFAULT_RAAS: &str = r#"    ignore:
      - "SaltTarget/All Minions"
      - "SaltTarget/Linux"
      - "SaltJob/{Ping all minions,Highstate Linux}"
      - "SaltSchedule/Nightly highstate"
"#;

const VM: &str = r#"kind: VirtualMachine
name: web-01
spec:
  power_state: POWERED_ON
"#;

const TOKEN: &str = r#"kind: VcdApiToken
name: ci-pipeline
spec:
  file: .secrets/ci-pipeline.json
"#;

/// The connections of the tests, the RaaS one ignoring the simulator's default objects plus
/// `extra_ignore`.
fn connections_yaml(url: &str, extra_ignore: &[&str]) -> String {
    let mut ignore = DEFAULT_RAAS.to_string();
    for glob in extra_ignore {
        ignore.push_str(&format!("      - \"{glob}\"\n"));
    }
    support::connections(url, "salt").replace(
        "  api_token: { env: SEXTANT_T_RAAS_TOKEN }\n",
        &format!("  api_token: {{ env: SEXTANT_T_RAAS_TOKEN }}\n  unmanaged:\n{ignore}"),
    )
}

/// An estate whose directory is a Git repository holding `manifests/`.
async fn repository() -> Estate {
    let estate = Estate::start(7200.0).await;
    estate.write(
        "connections.yaml",
        &connections_yaml(&estate.sim.base_url, &[]),
    );
    std::fs::write(estate.path().join(".gitignore"), ".secrets/\n.sextant/\n").unwrap();
    git(estate.path(), &["init", "-q", "-b", "main"]);
    git(estate.path(), &["config", "user.name", "Drift Test"]);
    git(
        estate.path(),
        &["config", "user.email", "drift@example.com"],
    );
    git(estate.path(), &["config", "commit.gpgsign", "false"]);
    estate
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit(estate: &Estate, message: &str) -> String {
    git(estate.path(), &["add", "-A"]);
    git(estate.path(), &["commit", "-q", "-m", message]);
    git(estate.path(), &["rev-parse", "HEAD"])
}

/// Applies `manifests/`, then moves the tag to the applied commit.
async fn apply_and_tag(estate: &Estate) {
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    git(estate.path(), &["tag", "-f", TAG]);
}

async fn drift(estate: &Estate, extra: &[&str]) -> Run {
    let mut args = vec!["drift", "--baseline", TAG];
    args.extend_from_slice(extra);
    args.push("manifests");
    estate.run(&args).await
}

fn parse(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "one JSON document on stdout ({e}):\n{}\n{}",
            run.stdout, run.stderr
        )
    })
}

fn addresses(report: &Value, section: &str) -> Vec<String> {
    report[section]
        .as_array()
        .unwrap_or_else(|| panic!("`{section}` is an array: {report}"))
        .iter()
        .map(|item| item["address"].as_str().unwrap().to_string())
        .collect()
}

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

/// Powers `web-01` off through the vSphere API, as someone at the console would.
async fn power_off_behind_sextants_back(estate: &Estate) {
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
}

async fn requests(estate: &Estate) -> u64 {
    let counters = estate
        .admin(reqwest::Method::GET, "/_sim/counters", None)
        .await;
    counters["total"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_out_of_band_change_is_drifted_with_exactly_that_field_and_exits_2() {
    let estate = repository().await;
    estate.write("salt.yaml", SALT);
    estate.write("vms.yaml", VM);
    commit(&estate, "salt and a VM");
    apply_and_tag(&estate).await;

    let clean = drift(&estate, &[]).await;
    assert_eq!(clean.code, 0, "{}\n{}", clean.stdout, clean.stderr);
    assert!(
        clean
            .stdout
            .contains("Drift: 0 drifted, 0 pending, 0 unmanaged (5 ignored), 4 in sync."),
        "{}",
        clean.stdout
    );

    power_off_behind_sextants_back(&estate).await;
    let text = drift(&estate, &[]).await;
    assert_eq!(text.code, 2, "{}\n{}", text.stdout, text.stderr);
    assert!(
        text.stdout
            .contains(r#"~ power_state = "POWERED_OFF" -> "POWERED_ON""#),
        "{}",
        text.stdout
    );
    let json = drift(&estate, &["--format", "json"]).await;
    assert_eq!(json.code, 2, "{}", json.stderr);
    let report = parse(&json);
    assert_eq!(report["format_version"], "1.0");
    let head = git(estate.path(), &["rev-parse", "HEAD"]);
    assert_eq!(report["baseline"], head.as_str());
    assert_eq!(report["baseline_ref"], TAG);
    assert_eq!(addresses(&report, "drifted"), ["VirtualMachine/web-01"]);
    let drifted = &report["drifted"][0];
    assert_eq!(drifted["kind"], "VirtualMachine");
    assert_eq!(drifted["name"], "web-01");
    assert_eq!(drifted["connection"], "vcenter");
    assert_eq!(drifted["change"]["actions"], json!(["update"]));
    assert_eq!(drifted["change"]["before"]["power_state"], "POWERED_OFF");
    assert_eq!(drifted["change"]["after"]["power_state"], "POWERED_ON");
    assert_eq!(
        drifted["fields"],
        json!([{"field": "power_state", "before": "POWERED_OFF", "after": "POWERED_ON", "forces_replacement": false}])
    );
    assert!(addresses(&report, "pending").is_empty(), "{report}");
    assert!(addresses(&report, "unmanaged").is_empty(), "{report}");
    assert_eq!(report["summary"]["in_sync"], 3);

    // JUnit: one test case per declared resource, one failure: the drifted VM.
    let junit = drift(&estate, &["--format", "junit"]).await;
    assert_eq!(junit.code, 2, "{}", junit.stderr);
    let document = roxmltree::Document::parse(&junit.stdout)
        .unwrap_or_else(|e| panic!("JUnit parses as XML ({e}):\n{}", junit.stdout));
    let cases: Vec<roxmltree::Node> = document
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 4, "{}", junit.stdout);
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    assert_eq!(failed, ["VirtualMachine/web-01"]);
    let failure = document
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(
        failure.text().unwrap_or_default().contains("power_state"),
        "{}",
        junit.stdout
    );
    assert_eq!(document.root_element().attribute("failures"), Some("1"));
    assert_secrets_absent(&[&text.stdout, &text.stderr, &json.stdout, &junit.stdout]);
}

#[tokio::test(flavor = "multi_thread")]
async fn show_of_a_saved_report_prints_what_the_run_printed_in_every_format() {
    let estate = repository().await;
    estate.write("salt.yaml", SALT);
    estate.write("vms.yaml", VM);
    commit(&estate, "salt and a VM");
    apply_and_tag(&estate).await;
    power_off_behind_sextants_back(&estate).await;
    estate.write(
        "salt.yaml",
        &SALT.replace("desc: Web tier", "desc: Web tier, v2"),
    );
    commit(&estate, "a pending change");
    raas_rpc(
        &estate,
        "tgt",
        "save_target_group",
        json!({"name": "made by hand", "tgt": {"*": {"tgt_type": "glob", "tgt": "x*"}}}),
    )
    .await;

    let saved = estate.path().join("drift.json");
    for format in ["text", "json", "markdown", "junit"] {
        let live = drift(&estate, &["--format", format, "--out", "drift.json"]).await;
        assert_eq!(live.code, 2, "{}\n{}", live.stdout, live.stderr);
        let again = drift(&estate, &["--format", format]).await;
        assert_eq!(live.stdout, again.stdout, "two runs differ in {format}");
        let shown = estate
            .run(&["show", "--format", format, saved.to_str().unwrap()])
            .await;
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert_eq!(shown.stdout, live.stdout, "show differs in {format}");
    }
    let report = parse(&drift(&estate, &["--format", "json"]).await);
    assert_eq!(addresses(&report, "drifted"), ["VirtualMachine/web-01"]);
    assert_eq!(addresses(&report, "pending"), ["SaltTarget/web servers"]);
    assert_eq!(addresses(&report, "unmanaged"), ["SaltTarget/made by hand"]);

    // `show` needs nothing but the file: no manifests, no credentials, no simulator.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("drift.json");
    std::fs::copy(&saved, &copy).unwrap();
    estate.sim.stop().await;
    let output = tokio::process::Command::new(support::estate::BIN)
        .args(["show", "--format", "json", copy.to_str().unwrap()])
        .current_dir(elsewhere.path())
        .env_clear()
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let offline: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(offline, report);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_but_unapplied_change_is_pending_and_exits_0_by_default() {
    let estate = repository().await;
    estate.write("salt.yaml", SALT);
    commit(&estate, "salt");
    apply_and_tag(&estate).await;

    // Merged, not applied: a changed field, a new document, and a removed one.
    let schedule = SALT.find("---\nkind: SaltSchedule").unwrap();
    let changed = SALT[..schedule].replace("desc: Apply nginx", "desc: Apply nginx and php");
    estate.write("salt.yaml", &changed);
    estate.write(
        "more.yaml",
        "kind: SaltTarget\nname: db servers\nspec:\n  tgt: { \"*\": { tgt_type: glob, tgt: \"db-*\" } }\n",
    );
    commit(&estate, "unapplied changes");

    let run = drift(&estate, &["--format", "json"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = parse(&run);
    assert!(addresses(&report, "drifted").is_empty(), "{report}");
    assert_eq!(
        addresses(&report, "pending"),
        ["SaltJob/Apply web state", "SaltTarget/db servers"],
        "the removed schedule is not pending: apply leaves it alone"
    );
    let job = &report["pending"][0];
    assert_eq!(job["change"]["actions"], json!(["update"]));
    assert_eq!(
        job["fields"],
        json!([{"field": "desc", "before": "Apply nginx", "after": "Apply nginx and php", "forces_replacement": false}])
    );
    assert_eq!(report["pending"][1]["change"]["actions"], json!(["create"]));
    // Pending was found without a request beyond the listings plan makes.
    let pending_fails = drift(&estate, &["--fail-on", "pending"]).await;
    assert_eq!(pending_fails.code, 2, "{}", pending_fails.stderr);
    assert!(
        pending_fails
            .stdout
            .contains(r#"~ desc = "Apply nginx" -> "Apply nginx and php""#),
        "{}",
        pending_fails.stdout
    );
    // Applying makes it drift-free again once the tag moves.
    apply_and_tag(&estate).await;
    let settled = drift(&estate, &["--fail-on", "drift,pending,unmanaged"]).await;
    assert_eq!(settled.code, 0, "{}\n{}", settled.stdout, settled.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_created_by_hand_is_unmanaged_unless_ignored() {
    let estate = repository().await;
    estate.write("salt.yaml", SALT);
    commit(&estate, "salt");
    apply_and_tag(&estate).await;
    let uuid = raas_rpc(
        &estate,
        "tgt",
        "save_target_group",
        json!({"name": "tmp-adhoc", "tgt": {"*": {"tgt_type": "glob", "tgt": "tmp*"}}}),
    )
    .await;

    let run = drift(&estate, &["--format", "json"]).await;
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = parse(&run);
    assert_eq!(addresses(&report, "unmanaged"), ["SaltTarget/tmp-adhoc"]);
    let item = &report["unmanaged"][0];
    assert_eq!(item["connection"], "salt");
    assert_eq!(item["kind"], "SaltTarget");
    assert_eq!(item["name"], "tmp-adhoc");
    assert_eq!(item["id"], uuid);
    assert_eq!(report["summary"]["ignored"], 5);
    // Only drift counts: unmanaged objects alone pass with `--fail-on drift`.
    let drift_only = drift(&estate, &["--fail-on", "drift"]).await;
    assert_eq!(drift_only.code, 0, "{}", drift_only.stderr);

    // Ignored by a glob: counted, not listed.
    estate.write(
        "connections.yaml",
        &connections_yaml(&estate.sim.base_url, &["SaltTarget/tmp-*"]),
    );
    commit(&estate, "ignore temporary targets");
    let ignored = drift(&estate, &["--format", "json"]).await;
    assert_eq!(ignored.code, 0, "{}\n{}", ignored.stdout, ignored.stderr);
    let report = parse(&ignored);
    assert!(addresses(&report, "unmanaged").is_empty(), "{report}");
    assert_eq!(report["summary"]["ignored"], 6);
    let text = drift(&estate, &[]).await;
    assert!(
        text.stdout
            .contains("6 unmanaged objects matched `unmanaged.ignore` and are not listed."),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("tmp-adhoc"), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vcd_api_token_created_outside_sextant_is_unmanaged() {
    let estate = repository().await;
    estate.write("vcd.yaml", TOKEN);
    commit(&estate, "a token");
    apply_and_tag(&estate).await;

    // An administrator registers a token by hand through the Cloud Director API.
    let client = reqwest::Client::new();
    let base = &estate.sim.base_url;
    let accept = "application/json;version=36.1";
    let login = client
        .post(format!("{base}/cloudapi/1.0.0/sessions/provider"))
        .basic_auth("administrator@System", Some("pw"))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success(), "{}", login.status());
    let bearer = login.headers()["x-vmware-vcloud-access-token"]
        .to_str()
        .unwrap()
        .to_string();
    let register = client
        .post(format!("{base}/oauth/provider/register"))
        .bearer_auth(&bearer)
        .header("accept", accept)
        .json(&json!({"client_name": "laptop of someone"}))
        .send()
        .await
        .unwrap();
    assert!(register.status().is_success(), "{}", register.status());

    let run = drift(&estate, &["--format", "json"]).await;
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = parse(&run);
    assert_eq!(
        addresses(&report, "unmanaged"),
        ["VcdApiToken/laptop of someone"]
    );
    assert_eq!(report["unmanaged"][0]["connection"], "vcd");
    assert!(addresses(&report, "drifted").is_empty(), "{report}");
    let traced = drift(
        &estate,
        &["-vvv", "--format", "junit", "--out", "drift.json"],
    )
    .await;
    assert_eq!(traced.code, 2, "{}", traced.stderr);
    let saved = std::fs::read_to_string(estate.path().join("drift.json")).unwrap();
    assert_secrets_absent(&[
        &run.stdout,
        &run.stderr,
        &traced.stdout,
        &traced.stderr,
        &saved,
    ]);
    assert!(
        !traced.stderr.contains(&bearer),
        "the hand-made session's token leaked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_makes_the_requests_plan_makes() {
    let estate = repository().await;
    estate.write("salt.yaml", SALT);
    estate.write("vms.yaml", VM);
    estate.write("vcd.yaml", TOKEN);
    commit(&estate, "one of each");
    apply_and_tag(&estate).await;
    estate
        .admin(reqwest::Method::POST, "/_sim/counters/reset", None)
        .await;
    let plan = estate.run(&["plan", "manifests"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let by_plan = requests(&estate).await;
    estate
        .admin(reqwest::Method::POST, "/_sim/counters/reset", None)
        .await;
    let run = drift(&estate, &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(requests(&estate).await, by_plan);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_baseline_every_difference_is_drifted_and_a_note_says_so() {
    let estate = repository().await;
    estate.write("salt.yaml", SALT);
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    estate.write(
        "salt.yaml",
        &SALT.replace("desc: Web tier", "desc: Web tier, v2"),
    );
    let run = estate
        .run(&["drift", "--format", "json", "manifests"])
        .await;
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = parse(&run);
    assert_eq!(report["baseline"], Value::Null);
    assert_eq!(addresses(&report, "drifted"), ["SaltTarget/web servers"]);
    assert!(report["notes"][0].as_str().unwrap().contains("--baseline"));
    assert!(
        run.stderr.contains("cannot be told from pending"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_baselines_and_unmanaged_settings_are_errors_that_contact_nothing() {
    let estate = repository().await;
    estate.write("salt.yaml", SALT);
    commit(&estate, "salt");
    git(estate.path(), &["tag", TAG]);
    estate
        .admin(reqwest::Method::POST, "/_sim/counters/reset", None)
        .await;

    let not_a_commit = estate
        .run(&["drift", "--baseline", "no-such-tag", "manifests"])
        .await;
    assert_eq!(not_a_commit.code, 1);
    assert!(
        not_a_commit
            .stderr
            .contains("`no-such-tag` is not a commit of the Git repository"),
        "{}",
        not_a_commit.stderr
    );
    let option = estate
        .run(&["drift", "--baseline=--output=x", "manifests"])
        .await;
    assert_eq!(option.code, 1, "{}", option.stderr);
    assert!(!estate.path().join("x").exists());

    let outside = tempfile::tempdir().unwrap();
    std::fs::copy(
        estate.path().join("manifests/salt.yaml"),
        outside.path().join("salt.yaml"),
    )
    .unwrap();
    std::fs::copy(
        estate.path().join("manifests/connections.yaml"),
        outside.path().join("connections.yaml"),
    )
    .unwrap();
    let no_repo = estate
        .run(&[
            "drift",
            "--baseline",
            "HEAD",
            outside.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(no_repo.code, 1);
    assert!(
        no_repo.stderr.contains("is not inside a Git repository"),
        "{}",
        no_repo.stderr
    );

    // Invalid manifests at the baseline are located there.
    estate.write(
        "broken.yaml",
        "kind: SaltJob\nname: x\nspec:\n  fun: test.ping\n  nmae: 1\n",
    );
    commit(&estate, "broken");
    git(estate.path(), &["tag", "broken"]);
    std::fs::remove_file(estate.path().join("manifests/broken.yaml")).unwrap();
    commit(&estate, "fixed");
    let broken = estate
        .run(&["drift", "--baseline", "broken", "manifests"])
        .await;
    assert_eq!(broken.code, 1);
    assert!(
        broken
            .stderr
            .contains("error: broken:manifests/broken.yaml:5:3: `spec.nmae`: unknown field `nmae`"),
        "{}",
        broken.stderr
    );
    assert!(
        !broken.stderr.contains("sextant-baseline-"),
        "{}",
        broken.stderr
    );

    // A malformed glob and an unknown kind are located manifest errors.
    let connections = std::fs::read_to_string(estate.path().join("manifests/connections.yaml"))
        .unwrap()
        .replace(
            "    ignore:\n",
            "    kinds: [SaltTarget, SaltJobz]\n    ignore:\n      - \"SaltJob/[tmp\"\n",
        );
    estate.write("connections.yaml", &connections);
    let invalid = estate.run(&["drift", "--baseline", TAG, "manifests"]).await;
    assert_eq!(invalid.code, 1);
    assert!(
        invalid
            .stderr
            .contains("connections.yaml:17:25: `spec.unmanaged.kinds[1]`: unknown kind `SaltJobz`"),
        "{}",
        invalid.stderr
    );
    assert!(
        invalid.stderr.contains("did you mean `SaltJob`?"),
        "{}",
        invalid.stderr
    );
    assert!(
        invalid
            .stderr
            .contains("`spec.unmanaged.ignore[0]`: `SaltJob/[tmp` is not a valid glob"),
        "{}",
        invalid.stderr
    );
    assert_eq!(requests(&estate).await, 0, "nothing was contacted");
}

#[tokio::test(flavor = "multi_thread")]
async fn show_of_a_saved_plan_prints_what_plan_printed() {
    let estate = Estate::start(7200.0).await;
    estate.write("salt.yaml", SALT);
    for format in ["text", "json", "markdown"] {
        let plan = estate
            .run(&[
                "plan",
                "--format",
                format,
                "--out",
                "saved.plan",
                "manifests",
            ])
            .await;
        assert_eq!(plan.code, 0, "{}", plan.stderr);
        let shown = estate
            .run(&["show", "--format", format, "saved.plan"])
            .await;
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert_eq!(shown.stdout, plan.stdout, "{format}");
    }
    let junit = estate
        .run(&["show", "--format", "junit", "saved.plan"])
        .await;
    assert_eq!(junit.code, 1);
    assert!(
        junit.stderr.contains("JUnit renders drift reports"),
        "{}",
        junit.stderr
    );
    estate.write("not-a-report.yaml", "kind: SaltJob\n");
    let neither = estate.run(&["show", "manifests/not-a-report.yaml"]).await;
    assert_eq!(neither.code, 1);
    assert!(neither.stderr.contains("is not JSON"), "{}", neither.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn environments_and_vars_apply_to_the_manifests_at_the_baseline_too() {
    let estate = repository().await;
    std::fs::rename(estate.path().join("manifests"), estate.path().join("base")).unwrap();
    std::fs::write(
        estate.path().join("base/salt.yaml"),
        "kind: SaltTarget\nname: web\nspec:\n  desc: ${var.desc}\n  tgt: { \"*\": { tgt_type: glob, tgt: \"web-*\" } }\n",
    )
    .unwrap();
    std::fs::create_dir_all(estate.path().join("envs/test")).unwrap();
    std::fs::write(
        estate.path().join("envs/test/env.yaml"),
        "kind: Environment\nname: test\nspec:\n  include: [../../base]\n  values:\n    desc: from the environment\n",
    )
    .unwrap();
    commit(&estate, "an environment");
    let apply = estate
        .run(&[
            "apply",
            "--auto-approve",
            "--var",
            "desc=given on the command line",
            "envs/test",
        ])
        .await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    git(estate.path(), &["tag", TAG]);

    let same = estate
        .run(&[
            "drift",
            "--baseline",
            TAG,
            "--var",
            "desc=given on the command line",
            "envs/test",
        ])
        .await;
    assert_eq!(same.code, 0, "{}\n{}", same.stdout, same.stderr);
    assert!(
        same.stdout.contains("0 drifted, 0 pending"),
        "{}",
        same.stdout
    );
    // Without the value apply was given, the manifests at the baseline say otherwise.
    let other = estate
        .run(&["drift", "--baseline", TAG, "--format", "json", "envs/test"])
        .await;
    assert_eq!(other.code, 2, "{}\n{}", other.stdout, other.stderr);
    let report = parse(&other);
    assert_eq!(addresses(&report, "drifted"), ["SaltTarget/web"]);
    assert_eq!(
        report["drifted"][0]["fields"][0]["before"],
        "given on the command line"
    );
    assert!(addresses(&report, "pending").is_empty(), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn uncommitted_and_untracked_manifests_are_compared_with_the_baseline_too() {
    let estate = repository().await;
    estate.write("salt.yaml", SALT);
    commit(&estate, "salt");
    apply_and_tag(&estate).await;
    let unchanged = drift(&estate, &["--format", "json", "-v"]).await;
    assert_eq!(unchanged.code, 0, "{}", unchanged.stderr);
    assert!(
        unchanged
            .stderr
            .contains("the manifests at the baseline are the working tree's"),
        "{}",
        unchanged.stderr
    );

    // Neither change is committed: the working tree is what the next apply reads.
    estate.write(
        "salt.yaml",
        &SALT.replace("desc: Web tier", "desc: Web tier, v2"),
    );
    estate.write(
        "untracked.yaml",
        "kind: SaltTarget\nname: db servers\nspec:\n  tgt: { \"*\": { tgt_type: glob, tgt: \"db-*\" } }\n",
    );
    let run = drift(&estate, &["--format", "json"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = parse(&run);
    assert_eq!(
        addresses(&report, "pending"),
        ["SaltTarget/db servers", "SaltTarget/web servers"]
    );
    assert!(addresses(&report, "drifted").is_empty(), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_deleted_outside_sextant_are_drifted_as_creates() {
    let estate = repository().await;
    estate.write("salt.yaml", SALT);
    commit(&estate, "salt");
    apply_and_tag(&estate).await;
    let state = estate.state().await;
    let job = state["raas"]["jobs"]
        .as_object()
        .unwrap()
        .values()
        .find(|job| job["name"] == "Apply web state")
        .expect("the applied job")["uuid"]
        .clone();
    // Deleted by hand, with the schedule that runs it.
    raas_rpc(
        &estate,
        "job",
        "delete_job",
        json!({"job_uuid": job, "force": true}),
    )
    .await;

    let run = drift(&estate, &["--format", "json"]).await;
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = parse(&run);
    assert_eq!(
        addresses(&report, "drifted"),
        ["SaltJob/Apply web state", "SaltSchedule/Nightly"]
    );
    for item in report["drifted"].as_array().unwrap() {
        assert_eq!(item["change"]["actions"], json!(["create"]), "{item}");
        assert_eq!(item["change"]["before"], Value::Null, "{item}");
    }
    assert!(addresses(&report, "pending").is_empty(), "{report}");
    let text = drift(&estate, &[]).await;
    assert!(
        text.stdout.contains(
            "+ SaltJob/Apply web state (connection `salt`) is missing: deleted outside sextant; apply creates it again"
        ),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_the_next_apply_prunes_is_pending_not_unmanaged() {
    let estate = repository().await;
    estate.write(
        "connections.yaml",
        &connections_yaml(&estate.sim.base_url, &[]).replace(
            "  unmanaged:\n",
            "  prune: { kinds: [SaltJob] }\n  unmanaged:\n",
        ),
    );
    estate.write("salt.yaml", SALT);
    estate.write(
        "old.yaml",
        "kind: SaltJob\nname: old job\nspec: { fun: test.ping }\n",
    );
    commit(&estate, "salt and an old job");
    apply_and_tag(&estate).await;

    // The document is removed and merged, not applied yet: pruning deletes the job sextant
    // created, so it is pending, and not reported as unmanaged.
    std::fs::remove_file(estate.path().join("manifests/old.yaml")).unwrap();
    commit(&estate, "remove the old job");
    let run = drift(&estate, &["--format", "json"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = parse(&run);
    assert_eq!(
        addresses(&report, "pending"),
        ["SaltJob/old job"],
        "{report}"
    );
    assert_eq!(report["pending"][0]["change"]["actions"], json!(["delete"]));
    assert_eq!(
        report["pending"][0]["action_reason"],
        json!("pruned: created by sextant, no longer declared")
    );
    assert!(
        !addresses(&report, "unmanaged").contains(&"SaltJob/old job".to_string()),
        "{report}"
    );
    // The plan agrees: the next apply prunes exactly that job.
    let plan = estate.run(&["plan", "--format", "json", "manifests"]).await;
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let pruned: Vec<&str> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action_reason"] == "pruned")
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(pruned, ["SaltJob/old job"]);
}

/// The baseline load reuses the working tree's parsed documents where their text is the
/// same; an error one of them raises at the baseline is still located in the baseline's file,
/// at its line there.
#[tokio::test]
async fn an_error_in_a_document_shared_with_the_working_tree_is_located_at_the_baseline() {
    let estate = repository().await;
    let job =
        "---\nkind: SaltJob\nname: uses-t\nspec:\n  fun: test.ping\ndepends_on: [SaltTarget/t]\n";
    let first = "kind: SaltJob\nname: first\nspec:\n  fun: test.ping\n";
    // At the baseline `SaltTarget/t` is declared nowhere, and `uses-t` is two lines lower.
    estate.write(
        "jobs.yaml",
        &format!("{first}  desc: two more\n  cmd: local\n{job}"),
    );
    commit(&estate, "a dangling dependency");
    git(estate.path(), &["tag", TAG]);
    estate.write("jobs.yaml", &format!("{first}{job}"));
    estate.write(
        "targets.yaml",
        "kind: SaltTarget\nname: t\nspec:\n  tgt: { \"*\": { tgt_type: glob, tgt: \"t-*\" } }\n",
    );
    let run = drift(&estate, &[]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: {TAG}:manifests/jobs.yaml:12:14: `depends_on[0]`: `SaltTarget/t` is not declared"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(":10:14"), "{}", run.stderr);
}

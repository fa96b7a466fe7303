//! Pruning, renames and `--replace`, through the real binary against the simulator over
//! loopback: what is deleted is compared object by object with what should be, hand-made
//! look-alike objects included, and the estate converges after injected 503s and a SIGKILL.

mod support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sextant::sim::SimConfig;
use support::estate::{Estate, Run, assert_secrets_absent};
use tokio::io::{AsyncBufReadExt, BufReader};

const NO_CHANGES: &str = "No changes. Your infrastructure matches the configuration.";

/// The simulator's RaaS seeded with objects made by hand (server-chosen uuids), and
/// connections whose `salt` RaaS connection carries `salt_extra` (e.g. a `prune:` block).
async fn estate_with(seed: &str, salt_extra: &str, time_scale: f64) -> Estate {
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("seed.yaml");
    std::fs::write(&seed_path, seed).unwrap();
    let estate = Estate::with_config(SimConfig {
        time_scale,
        seed_data: Some(seed_path),
        ..SimConfig::default()
    })
    .await;
    // The seed file is read at start; the directory may go.
    drop(dir);
    connections_with(&estate, salt_extra, "");
    estate
}

/// Rewrites `connections.yaml` with `salt_extra` under the RaaS connection's spec and
/// `vmc_extra` under the VMC one.
fn connections_with(estate: &Estate, salt_extra: &str, vmc_extra: &str) {
    let base = support::connections(&estate.sim.base_url, "salt");
    let text = base
        .replace(
            "  api_token: { env: SEXTANT_T_RAAS_TOKEN }\n",
            &format!("  api_token: {{ env: SEXTANT_T_RAAS_TOKEN }}\n{salt_extra}"),
        )
        .replace(
            "  api_token: { env: SEXTANT_T_VMC_TOKEN }\n",
            &format!("  api_token: {{ env: SEXTANT_T_VMC_TOKEN }}\n{vmc_extra}"),
        );
    estate.write("connections.yaml", &text);
}

/// A hand-made job (its uuid chosen by the server, not derived by sextant).
fn hand_made_job(name: &str, uuid: &str) -> String {
    format!("    - uuid: {uuid}\n      name: {name}\n      cmd: local\n      fun: test.ping\n")
}

fn job(name: &str) -> String {
    format!("kind: SaltJob\nname: {name}\nspec: {{ cmd: local, fun: test.ping }}\n")
}

fn ok(run: &Run, what: &str) {
    assert_eq!(run.code, 0, "{what}\n{}\n{}", run.stdout, run.stderr);
    assert_secrets_absent(&[&run.stdout, &run.stderr]);
}

/// Live objects of a RaaS section (`jobs`, `target_groups`, `schedules`) by name → uuid.
async fn raas(estate: &Estate, section: &str) -> BTreeMap<String, String> {
    let state = estate.state().await;
    uuids(&state["raas"][section], |_| true)
}

fn uuids(section: &Value, keep: impl Fn(&Value) -> bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Value::Object(map) = section {
        for (key, item) in map {
            if !keep(item) {
                continue;
            }
            let name = item["name"].as_str().unwrap().to_string();
            let id = item["uuid"]
                .as_str()
                .or_else(|| item["id"].as_str())
                .unwrap_or(key)
                .to_string();
            assert!(
                out.insert(name.clone(), id).is_none(),
                "two live objects named `{name}`"
            );
        }
    }
    out
}

const PRUNE_JOBS: &str = "  prune: { kinds: [SaltJob] }\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_job_sextant_created_is_pruned_and_a_hand_made_look_alike_is_not() {
    let handmade = "7d1f0c55-2a57-4bb4-9a0c-6a3e9f0d1c11";
    let estate = estate_with(
        &format!(
            "raas:\n  jobs:\n{}",
            hand_made_job("prod-handmade", handmade)
        ),
        PRUNE_JOBS,
        240.0,
    )
    .await;
    estate.write(
        "jobs.yaml",
        &format!("{}---\n{}", job("prod-keep"), job("prod-old")),
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    let before = raas(&estate, "jobs").await;
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["prod-handmade", "prod-keep", "prod-old"]
    );

    estate.write("jobs.yaml", &job("prod-keep"));
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan, "plan");
    assert!(
        plan.stdout.contains(
            "# SaltJob/prod-old will be destroyed (pruned: created by sextant, no longer declared)"
        ),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("prod-handmade"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("prod-keep"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 0 to change, 1 to destroy."),
        "{}",
        plan.stdout
    );

    let json = estate.run(&["plan", "--format", "json", "manifests"]).await;
    ok(&json, "plan json");
    let document: Value = serde_json::from_str(&json.stdout).unwrap();
    let changes = document["resource_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{changes:#?}");
    let pruned = changes
        .iter()
        .find(|c| c["address"] == "SaltJob/prod-old")
        .unwrap();
    assert_eq!(pruned["change"]["actions"], json!(["delete"]));
    assert_eq!(pruned["action_reason"], "pruned");
    assert_eq!(
        pruned["action_reason_detail"],
        "created by sextant, no longer declared"
    );
    assert_eq!(pruned["change"]["before"]["fun"], "test.ping");

    let markdown = estate
        .run(&["plan", "--format", "markdown", "manifests"])
        .await;
    ok(&markdown, "plan markdown");
    assert!(
        markdown.stdout.contains("`SaltJob/prod-old` (pruned)"),
        "{}",
        markdown.stdout
    );
    assert!(
        markdown.stdout.contains("(pruned: created by sextant"),
        "{}",
        markdown.stdout
    );

    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "prune",
    );
    let after = raas(&estate, "jobs").await;
    let mut expected = before.clone();
    expected.remove("prod-old");
    assert_eq!(after, expected);
    assert_eq!(after["prod-handmade"], handmade);

    let again = estate.run(&["plan", "manifests"]).await;
    ok(&again, "plan after");
    assert!(again.stdout.contains(NO_CHANGES), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn pruning_is_off_unless_the_connection_opts_in() {
    let estate = estate_with("raas:\n  jobs: []\n", "", 240.0).await;
    estate.write(
        "jobs.yaml",
        &format!("{}---\n{}", job("prod-keep"), job("prod-old")),
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    estate.write("jobs.yaml", &job("prod-keep"));
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan, "plan");
    assert!(plan.stdout.contains(NO_CHANGES), "{}", plan.stdout);
    assert!(raas(&estate, "jobs").await.contains_key("prod-old"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hand_made_job_is_pruned_only_inside_the_connections_scope() {
    let estate = estate_with(
        &format!(
            "raas:\n  jobs:\n{}{}",
            hand_made_job("prod-handmade", "0b6f2c3e-5d1a-4f0e-8a9b-1c2d3e4f5a6b"),
            hand_made_job("ops-handmade", "1c7e3d4f-6e2b-4a1f-9bac-2d3e4f5a6b7c")
        ),
        "  prune: { kinds: [SaltJob], scope: \"prod-*\" }\n",
        240.0,
    )
    .await;
    estate.write(
        "jobs.yaml",
        &format!("{}---\n{}", job("prod-keep"), job("ops-sextant")),
    );
    // The first plan already prunes the hand-made job inside the scope.
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan, "plan");
    assert!(
        plan.stdout.contains(
            "# SaltJob/prod-handmade will be destroyed (pruned: in the connection's prune scope `prod-*`, no longer declared)"
        ),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("ops-handmade"), "{}", plan.stdout);
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create and prune",
    );
    // Outside the scope nothing is pruned, not even a job sextant created.
    estate.write("jobs.yaml", &job("prod-keep"));
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan, "plan");
    assert!(plan.stdout.contains(NO_CHANGES), "{}", plan.stdout);
    let jobs = raas(&estate, "jobs").await;
    assert_eq!(
        jobs.keys().collect::<Vec<_>>(),
        ["ops-handmade", "ops-sextant", "prod-keep"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_group_still_used_by_an_undeclared_job_is_not_pruned_and_users_go_first() {
    let estate = estate_with(
        "raas:\n  target_groups:\n    - uuid: 2d8f4e5a-7f3c-4b2a-8cbd-3e4f5a6b7c8d\n      name: prod-shared\n      tgt: { \"*\": { tgt_type: glob, tgt: \"db*\" } }\n  jobs:\n    - uuid: 3e9a5f6b-8a4d-4c3b-9dce-4f5a6b7c8d9e\n      name: ops-check\n      cmd: local\n      fun: test.ping\n      tgt_uuid: 2d8f4e5a-7f3c-4b2a-8cbd-3e4f5a6b7c8d\n",
        "  prune: { kinds: [SaltTarget, SaltJob, SaltSchedule], scope: \"prod-*\" }\n",
        240.0,
    )
    .await;
    estate.write(
        "salt.yaml",
        "kind: SaltTarget\nname: prod-web\nspec: { tgt: { \"*\": { tgt_type: glob, tgt: \"web*\" } } }\n---\n\
         kind: SaltJob\nname: prod-deploy\nspec: { cmd: local, fun: state.apply, target: prod-web }\n---\n\
         kind: SaltSchedule\nname: prod-nightly\nspec: { job: prod-deploy, target: prod-web, schedule: { cron: \"0 3 * * *\" } }\n---\n\
         kind: SaltJob\nname: prod-keep\nspec: { cmd: local, fun: test.ping }\n",
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    estate.write("salt.yaml", &job("prod-keep"));
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan, "plan");
    let at = |needle: &str| {
        plan.stdout
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing:\n{}", plan.stdout))
    };
    let schedule = at("# SaltSchedule/prod-nightly will be destroyed (pruned:");
    let job = at("# SaltJob/prod-deploy will be destroyed (pruned:");
    let target = at("# SaltTarget/prod-web will be destroyed (pruned:");
    assert!(schedule < job && job < target, "{}", plan.stdout);
    assert!(!plan.stdout.contains("prod-shared"), "{}", plan.stdout);
    assert!(
        plan.stderr
            .contains("SaltTarget/prod-shared: not pruned: `SaltJob/ops-check` still uses it"),
        "{}",
        plan.stderr
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "prune",
    );
    assert_eq!(
        raas(&estate, "target_groups")
            .await
            .keys()
            .filter(|n| n.starts_with("prod-") || n.starts_with("ops-"))
            .collect::<Vec<_>>(),
        ["prod-shared"]
    );
    assert_eq!(
        raas(&estate, "jobs").await.keys().collect::<Vec<_>>(),
        ["ops-check", "prod-keep"]
    );
    assert!(raas(&estate, "schedules").await.is_empty());
    let again = estate.run(&["plan", "manifests"]).await;
    ok(&again, "plan after");
    assert!(again.stdout.contains(NO_CHANGES), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_destroy_refuses_a_plan_destroying_more_naming_the_count() {
    let estate = estate_with("raas:\n  jobs: []\n", PRUNE_JOBS, 240.0).await;
    let all: Vec<String> = (1..=3).map(|i| job(&format!("prod-{i}"))).collect();
    estate.write("jobs.yaml", &all.join("---\n"));
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    estate.write("jobs.yaml", &job("prod-keep"));

    let refused = estate
        .run(&["apply", "--auto-approve", "--max-destroy", "2", "manifests"])
        .await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("the plan destroys 3 objects (3 of them pruned), more than 2"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("`--max-destroy`"),
        "{}",
        refused.stderr
    );
    assert_eq!(raas(&estate, "jobs").await.len(), 3);

    // The Connection's `max_destroy` is the default.
    connections_with(&estate, &format!("{PRUNE_JOBS}  max_destroy: 1\n"), "");
    let plan = estate.run(&["plan", "manifests"]).await;
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stderr
            .contains("more than 1, the most `max_destroy` of connection `salt` allows"),
        "{}",
        plan.stderr
    );

    ok(
        &estate
            .run(&["apply", "--auto-approve", "--max-destroy", "3", "manifests"])
            .await,
        "allowed",
    );
    assert_eq!(
        raas(&estate, "jobs").await.keys().collect::<Vec<_>>(),
        ["prod-keep"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn renames_of_targets_jobs_schedules_and_sddcs_apply_in_place_keeping_their_ids() {
    let estate = estate_with("raas:\n  jobs: []\n", "", 3600.0).await;
    let manifests = |suffix: &str, previous: bool| {
        let was = |name: &str| {
            if previous {
                format!("previous_names: [{name}]\n")
            } else {
                String::new()
            }
        };
        format!(
            "kind: SaltTarget\nname: web{suffix}\n{}spec: {{ tgt: {{ \"*\": {{ tgt_type: glob, tgt: \"web*\" }} }} }}\n---\n\
             kind: SaltJob\nname: deploy{suffix}\n{}spec: {{ cmd: local, fun: state.apply, target: web{suffix} }}\n---\n\
             kind: SaltSchedule\nname: nightly{suffix}\n{}spec: {{ job: deploy{suffix}, target: web{suffix}, schedule: {{ cron: \"0 3 * * *\" }} }}\n---\n\
             kind: Sddc\nname: lab{suffix}\n{}spec: {{ region: us-west-2, provider: ZEROCLOUD, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal }}\n",
            was("web"),
            was("deploy"),
            was("nightly"),
            was("lab"),
        )
    };
    estate.write("estate.yaml", &manifests("", false));
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    let ids = |state: &Value| {
        [
            uuids(&state["raas"]["target_groups"], |_| true),
            uuids(&state["raas"]["jobs"], |_| true),
            uuids(&state["raas"]["schedules"], |_| true),
            uuids(&state["vmc"]["sddcs"], |s| s["sddc_state"] != "DELETED"),
        ]
    };
    let before = ids(&estate.state().await);

    estate.write("estate.yaml", &manifests("-2", true));
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan, "plan");
    for (address, old) in [
        ("SaltTarget/web-2", "web"),
        ("SaltJob/deploy-2", "deploy"),
        ("SaltSchedule/nightly-2", "nightly"),
        ("Sddc/lab-2", "lab"),
    ] {
        let new = address.split_once('/').unwrap().1;
        assert!(
            plan.stdout.contains(&format!(
                "# {address} will be updated in-place (renamed from `{old}`)"
            )),
            "{address}:\n{}",
            plan.stdout
        );
        assert!(
            plan.stdout
                .contains(&format!("~ name = \"{old}\" -> \"{new}\"")),
            "{address}:\n{}",
            plan.stdout
        );
    }
    assert!(
        plan.stdout.contains("0 to add") && plan.stdout.contains("0 to destroy"),
        "{}",
        plan.stdout
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "rename",
    );
    let after = ids(&estate.state().await);
    for (before, after) in before.iter().zip(&after) {
        let renamed: BTreeMap<String, String> = before
            .iter()
            .map(|(name, id)| (format!("{name}-2"), id.clone()))
            .filter(|(name, _)| !name.starts_with("All Minions"))
            .collect();
        let after: BTreeMap<String, String> = after
            .iter()
            .filter(|(name, _)| !name.starts_with("All Minions"))
            .map(|(n, i)| (n.clone(), i.clone()))
            .collect();
        assert_eq!(after, renamed);
    }
    let again = estate.run(&["plan", "manifests"]).await;
    ok(&again, "plan after");
    assert!(again.stdout.contains(NO_CHANGES), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn both_names_live_is_an_error_naming_both_objects() {
    let estate = estate_with("raas:\n  jobs: []\n", "", 240.0).await;
    estate.write(
        "jobs.yaml",
        &format!("{}---\n{}", job("old-name"), job("new-name")),
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    let jobs = raas(&estate, "jobs").await;
    estate.write(
        "jobs.yaml",
        "kind: SaltJob\nname: new-name\nprevious_names: [old-name]\nspec: { cmd: local, fun: test.ping }\n",
    );
    let plan = estate.run(&["plan", "manifests"]).await;
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    let expected = format!(
        "both `SaltJob/new-name` (id `{}`) and `SaltJob/old-name` (id `{}`) exist live",
        jobs["new-name"], jobs["old-name"]
    );
    assert!(plan.stderr.contains(&expected), "{}", plan.stderr);

    // An old name another document declares belongs to that document.
    estate.write(
        "jobs.yaml",
        &format!(
            "{}---\nkind: SaltJob\nname: new-name\nprevious_names: [old-name]\nspec: {{ cmd: local, fun: test.ping }}\n",
            job("old-name")
        ),
    );
    let plan = estate.run(&["plan", "manifests"]).await;
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stderr
            .contains("`previous_names` lists `old-name`, but `SaltJob/old-name` is declared too"),
        "{}",
        plan.stderr
    );
    assert_eq!(raas(&estate, "jobs").await, jobs);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cloud_director_token_rename_is_a_replacement_that_says_why() {
    let estate = estate_with("raas:\n  jobs: []\n", "", 240.0).await;
    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci\nspec: { file: secrets/ci.json }\n",
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci-2\nprevious_names: [ci]\nspec: { file: secrets/ci-2.json }\n",
    );
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan, "plan");
    assert!(
        plan.stdout.contains(
            "# VcdApiToken/ci-2 must be replaced: renamed from `ci`, and a VcdApiToken cannot be renamed in place"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{}",
        plan.stdout
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "replace",
    );
    let state = estate.state().await;
    let tokens = uuids(&state["vcd"]["tokens"], |t| {
        t["name"].as_str().is_some_and(|n| n.starts_with("ci"))
    });
    assert_eq!(tokens.keys().collect::<Vec<_>>(), ["ci-2"]);
    assert!(estate.path().join("manifests/secrets/ci-2.json").exists());
    let again = estate.run(&["plan", "manifests"]).await;
    ok(&again, "plan after");
    assert!(again.stdout.contains(NO_CHANGES), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_plans_a_requested_replacement_and_respects_prevent_destroy() {
    let estate = estate_with("raas:\n  jobs: []\n", "", 240.0).await;
    estate.write(
        "jobs.yaml",
        &format!(
            "{}---\nkind: SaltJob\nname: guarded\nlifecycle: {{ prevent_destroy: true }}\nspec: {{ cmd: local, fun: test.ping }}\n---\n\
             kind: SaltTarget\nname: used\nspec: {{ tgt: {{ \"*\": {{ tgt_type: glob, tgt: \"db*\" }} }} }}\n---\n\
             kind: SaltJob\nname: on-target\nspec: {{ cmd: local, fun: test.ping, target: used }}\n",
            job("flaky")
        ),
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    let before = raas(&estate, "jobs").await;

    let plan = estate
        .run(&["plan", "--replace", "SaltJob/flaky", "manifests"])
        .await;
    ok(&plan, "plan");
    assert!(
        plan.stdout.contains("-/+ SaltJob \"flaky\" {"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("# SaltJob/flaky will be replaced, as requested"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{}",
        plan.stdout
    );
    let json = estate
        .run(&[
            "plan",
            "--format",
            "json",
            "--replace",
            "SaltJob/flaky",
            "manifests",
        ])
        .await;
    ok(&json, "plan json");
    let document: Value = serde_json::from_str(&json.stdout).unwrap();
    let flaky = document["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "SaltJob/flaky")
        .unwrap()
        .clone();
    assert_eq!(flaky["change"]["actions"], json!(["delete", "create"]));
    assert_eq!(flaky["action_reason"], "requested");

    let guarded = estate
        .run(&["plan", "--replace", "SaltJob/guarded", "manifests"])
        .await;
    assert_eq!(guarded.code, 1, "{}\n{}", guarded.stdout, guarded.stderr);
    assert!(
        guarded
            .stderr
            .contains("`lifecycle.prevent_destroy` is set"),
        "{}",
        guarded.stderr
    );
    let used = estate
        .run(&["plan", "--replace", "SaltTarget/used", "manifests"])
        .await;
    assert_eq!(used.code, 1, "{}\n{}", used.stdout, used.stderr);
    assert!(
        used.stderr.contains(
            "`--replace` would delete it while `SaltJob/on-target` uses it on the server"
        ),
        "{}",
        used.stderr
    );
    let unknown = estate
        .run(&["plan", "--replace", "SaltJob/nope", "manifests"])
        .await;
    assert_eq!(unknown.code, 1);
    assert!(
        unknown
            .stderr
            .contains("`--replace SaltJob/nope` names no declared resource"),
        "{}",
        unknown.stderr
    );

    ok(
        &estate
            .run(&[
                "apply",
                "--auto-approve",
                "--replace",
                "SaltJob/flaky",
                "manifests",
            ])
            .await,
        "replace",
    );
    let after = raas(&estate, "jobs").await;
    assert_ne!(
        after["flaky"], before["flaky"],
        "a new job replaced the old"
    );
    assert_eq!(after["guarded"], before["guarded"]);
    assert_eq!(after.len(), before.len());
    let again = estate.run(&["plan", "manifests"]).await;
    ok(&again, "plan after");
    assert!(again.stdout.contains(NO_CHANGES), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_records_its_prunes_and_apply_refuses_when_they_changed() {
    let estate = estate_with("raas:\n  jobs: []\n", PRUNE_JOBS, 240.0).await;
    estate.write(
        "jobs.yaml",
        &format!("{}---\n{}", job("prod-keep"), job("prod-old")),
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    estate.write("jobs.yaml", &job("prod-keep"));
    let saved = estate.path().join("plan.json");
    let saved = saved.to_str().unwrap();
    ok(
        &estate.run(&["plan", "--out", saved, "manifests"]).await,
        "plan --out",
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(saved).unwrap()).unwrap();
    assert_eq!(file["prunes"], json!(["SaltJob/prod-old"]));
    assert_eq!(file["format_version"], "3");

    // Another checkout with the same connection creates a job sextant would prune too.
    std::fs::create_dir_all(estate.path().join("other")).unwrap();
    std::fs::copy(
        estate.path().join("manifests/connections.yaml"),
        estate.path().join("other/connections.yaml"),
    )
    .unwrap();
    std::fs::write(
        estate.path().join("other/jobs.yaml"),
        format!(
            "{}---\n{}---\n{}",
            job("prod-keep"),
            job("prod-old"),
            job("prod-extra")
        ),
    )
    .unwrap();
    ok(
        &estate.run(&["apply", "--auto-approve", "other"]).await,
        "other checkout",
    );
    let refused = estate.run(&["apply", saved]).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("`SaltJob/prod-extra` would be pruned now"),
        "{}",
        refused.stderr
    );
    assert_eq!(raas(&estate, "jobs").await.len(), 3);

    // A plan file of the format before prunes were recorded is refused, saying why.
    let mut old = file.clone();
    old["format_version"] = json!("2");
    std::fs::write(saved, old.to_string()).unwrap();
    let old = estate.run(&["apply", saved]).await;
    assert_eq!(old.code, 1);
    assert!(
        old.stderr
            .contains("has format version 2; this sextant reads version 3 only"),
        "{}",
        old.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sddc_is_pruned_only_with_sddc_in_prune_kinds_and_allow_destroy() {
    let estate = estate_with("raas:\n  jobs: []\n", "", 3600.0).await;
    connections_with(&estate, "", "  prune: { kinds: [Sddc] }\n");
    let sddc = |name: &str| {
        format!(
            "kind: Sddc\nname: {name}\nspec: {{ region: us-west-2, provider: ZEROCLOUD, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal }}\n"
        )
    };
    estate.write(
        "sddc.yaml",
        &format!("{}---\n{}", sddc("lab-keep"), sddc("lab-old")),
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    estate.write("sddc.yaml", &sddc("lab-keep"));
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan, "plan");
    assert!(
        plan.stdout.contains(
            "# Sddc/lab-old will be destroyed (pruned: created by sextant, no longer declared)"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stderr.contains("--allow-destroy Sddc"),
        "{}",
        plan.stderr
    );
    let refused = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("apply with `--allow-destroy Sddc`"),
        "{}",
        refused.stderr
    );
    let live = |state: &Value| uuids(&state["vmc"]["sddcs"], |s| s["sddc_state"] != "DELETED");
    assert_eq!(live(&estate.state().await).len(), 2);
    ok(
        &estate
            .run(&[
                "apply",
                "--auto-approve",
                "--allow-destroy",
                "Sddc",
                "manifests",
            ])
            .await,
        "allowed",
    );
    assert_eq!(
        live(&estate.state().await).keys().collect::<Vec<_>>(),
        ["lab-keep"]
    );
}

/// Twelve jobs (six to keep, six to prune) on a connection that prunes jobs by scope.
async fn estate_to_prune(time_scale: f64) -> (Estate, Vec<String>, Vec<String>) {
    let estate = estate_with(
        "raas:\n  jobs: []\n",
        "  prune: { kinds: [SaltJob], scope: \"p-*\" }\n  max_destroy: 20\n",
        time_scale,
    )
    .await;
    let keep: Vec<String> = (0..6).map(|i| format!("p-keep-{i}")).collect();
    let gone: Vec<String> = (0..6).map(|i| format!("p-gone-{i}")).collect();
    let all: Vec<String> = keep.iter().chain(&gone).map(|n| job(n)).collect();
    estate.write("jobs.yaml", &all.join("---\n"));
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );
    let kept: Vec<String> = keep.iter().map(|n| job(n)).collect();
    estate.write("jobs.yaml", &kept.join("---\n"));
    (estate, keep, gone)
}

async fn assert_converged(estate: &Estate, keep: &[String], before: &BTreeMap<String, String>) {
    let jobs = raas(estate, "jobs").await;
    let expected: BTreeMap<String, String> = keep
        .iter()
        .map(|n| (n.clone(), before[n].clone()))
        .collect();
    assert_eq!(jobs, expected, "declared jobs intact, pruned ones gone");
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan, "plan after");
    assert!(plan.stdout.contains(NO_CHANGES), "{}", plan.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn pruning_under_injected_503s_converges_without_deleting_anything_declared() {
    let (estate, keep, _) = estate_to_prune(240.0).await;
    let before = raas(&estate, "jobs").await;
    estate
        .admin(
            reqwest::Method::PUT,
            "/_sim/faults",
            Some(json!({"rate_503": 0.3})),
        )
        .await;
    let mut applies = 0;
    loop {
        applies += 1;
        let run = estate.run(&["apply", "--auto-approve", "manifests"]).await;
        assert_secrets_absent(&[&run.stdout, &run.stderr]);
        // A declared job is never planned for deletion, whatever failed before.
        for name in &keep {
            assert!(
                !run.stdout
                    .contains(&format!("SaltJob/{name} will be destroyed")),
                "{}",
                run.stdout
            );
        }
        if run.code == 0 || applies == 8 {
            assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
            break;
        }
    }
    estate
        .admin(reqwest::Method::PUT, "/_sim/faults", Some(json!({})))
        .await;
    assert_converged(&estate, &keep, &before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_in_the_middle_of_pruning_then_apply_converges() {
    let (estate, keep, gone) = estate_to_prune(240.0).await;
    let before = raas(&estate, "jobs").await;
    // Slow requests so that the kill lands between deletes.
    estate
        .admin(
            reqwest::Method::PUT,
            "/_sim/faults",
            Some(json!({"latency_ms": 60})),
        )
        .await;
    let mut child = estate
        .command(&["apply", "--auto-approve", "--parallelism", "1", "manifests"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut destroyed = 0;
    let killed = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Destruction complete") {
                destroyed += 1;
                if destroyed == 2 {
                    return true;
                }
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    child.start_kill().ok();
    let status = child.wait().await.unwrap();
    assert!(
        killed && status.code().is_none(),
        "the apply ended before the kill"
    );
    let partway = raas(&estate, "jobs").await;
    let left = gone.iter().filter(|n| partway.contains_key(*n)).count();
    assert!(
        left > 0 && left < gone.len(),
        "killed mid-prune: {partway:?}"
    );
    for name in &keep {
        assert_eq!(partway.get(name), before.get(name));
    }
    estate
        .admin(reqwest::Method::PUT, "/_sim/faults", Some(json!({})))
        .await;
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "resume",
    );
    assert_converged(&estate, &keep, &before).await;
}

/// `sextant drift` lists what the next apply prunes through the library, without the CLI:
/// [`sextant::plan::prunes`] over a live state read scanning [`sextant::plan::scan_set`].
#[tokio::test(flavor = "multi_thread")]
async fn the_library_lists_the_prunes_without_the_cli() {
    let estate = estate_with(
        &format!(
            "raas:\n  jobs:\n{}",
            hand_made_job("prod-handmade", "4fab6a7c-9b5e-4d4c-8edf-5a6b7c8d9eaf")
        ),
        PRUNE_JOBS,
        240.0,
    )
    .await;
    estate.write(
        "jobs.yaml",
        &format!("{}---\n{}", job("prod-keep"), job("prod-old")),
    );
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "create",
    );

    // The same manifests, read by the library: the connection's token from a file.
    let dir = estate.path().join("library");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("raas-token"), "raas-api-token-secret-2").unwrap();
    std::fs::write(
        dir.join("estate.yaml"),
        format!(
            "kind: Connection\nname: salt\nspec:\n  type: raas\n  url: {url}\n  csp_url: {url}\n  api_token: {{ file: raas-token }}\n{PRUNE_JOBS}---\n{}",
            job("prod-keep"),
            url = estate.sim.base_url
        ),
    )
    .unwrap();
    let model = sextant::manifest::load(&[dir]).unwrap();
    let scope = sextant::plan::scope(&model, &[]);
    let scan = sextant::plan::scan_set(&model);
    let providers = sextant::plan::ProviderSet::connect_scanning(&model, &scope, &scan).unwrap();
    let live = sextant::plan::read_live_state_scanning(&model, &scope, &scan, &providers, 4)
        .await
        .unwrap();
    let pruning = sextant::plan::prunes(&model, &live);
    let listed: Vec<(String, String)> = pruning
        .prunes
        .iter()
        .map(|p| (p.address.to_string(), p.reason()))
        .collect();
    assert_eq!(
        listed,
        [(
            "SaltJob/prod-old".to_string(),
            "pruned: created by sextant, no longer declared".to_string()
        )]
    );
    providers.close().await;
    // Listing changed nothing.
    assert_eq!(raas(&estate, "jobs").await.len(), 3);
}

/// A declared job moved to another group is updated before its old group is pruned; a group a
/// manifest names but does not declare is never pruned.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_a_declared_job_leaves_is_pruned_after_the_job_moves_and_a_named_one_is_kept() {
    let estate = estate_with(
        "raas:\n  target_groups:\n    - uuid: 5abc7b8d-ac6f-4e5d-9fe0-6b7c8d9eafb0\n      name: prod-hand\n      tgt: { \"*\": { tgt_type: glob, tgt: \"hand*\" } }\n",
        "  prune: { kinds: [SaltTarget], scope: \"prod-*\" }\n",
        240.0,
    )
    .await;
    let group = |name: &str| {
        format!(
            "kind: SaltTarget\nname: {name}\nspec: {{ tgt: {{ \"*\": {{ tgt_type: glob, tgt: \"{name}*\" }} }} }}\n"
        )
    };
    let job_on = |name: &str, target: &str| {
        format!(
            "kind: SaltJob\nname: {name}\nspec: {{ cmd: local, fun: test.ping, target: {target} }}\n"
        )
    };
    estate.write(
        "salt.yaml",
        &[
            group("prod-a"),
            group("prod-b"),
            job_on("prod-j", "prod-a"),
            job_on("prod-uses-hand", "prod-hand"),
        ]
        .join("---\n"),
    );
    let created = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    ok(&created, "create");
    assert!(
        created.stderr.contains(
            "SaltTarget/prod-hand: not pruned: `SaltJob/prod-uses-hand` names it in its manifest"
        ),
        "{}",
        created.stderr
    );
    estate.write(
        "salt.yaml",
        &[
            group("prod-b"),
            job_on("prod-j", "prod-b"),
            job_on("prod-uses-hand", "prod-hand"),
        ]
        .join("---\n"),
    );
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan, "plan");
    let update = plan
        .stdout
        .find("# SaltJob/prod-j will be updated in-place")
        .unwrap_or_else(|| panic!("{}", plan.stdout));
    let prune = plan
        .stdout
        .find("# SaltTarget/prod-a will be destroyed (pruned:")
        .unwrap_or_else(|| panic!("{}", plan.stdout));
    assert!(update < prune, "{}", plan.stdout);
    ok(
        &estate.run(&["apply", "--auto-approve", "manifests"]).await,
        "move and prune",
    );
    let groups = raas(&estate, "target_groups").await;
    assert!(!groups.contains_key("prod-a"), "{groups:?}");
    assert!(
        groups.contains_key("prod-b") && groups.contains_key("prod-hand"),
        "{groups:?}"
    );
    let again = estate.run(&["plan", "manifests"]).await;
    ok(&again, "plan after");
    assert!(again.stdout.contains(NO_CHANGES), "{}", again.stdout);
}

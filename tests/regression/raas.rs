//! Regressions of the Aria Automation Config (RaaS) client and its simulator.

use serde_json::{Value, json};

use crate::sextant_snapshot;
use crate::support::estate::{Estate, Run, advance};

const GET: reqwest::Method = reqwest::Method::GET;

fn assert_ok(run: &Run) {
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

fn assert_no_changes(run: &Run) {
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("No changes."),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

/// The simulator's clock.
async fn sim_now(estate: &Estate) -> chrono::DateTime<chrono::Utc> {
    let clock = estate.admin(GET, "/_sim/clock", None).await;
    clock["now"].as_str().unwrap().parse().unwrap()
}

/// The simulated RaaS objects of one kind (`target_groups`, `jobs`, `schedules`) named `name`.
async fn raas_objects(estate: &Estate, kind: &str, name: &str) -> Vec<Value> {
    let state = estate.state().await;
    state["raas"][kind]
        .as_object()
        .unwrap()
        .values()
        .filter(|object| object["name"] == name)
        .cloned()
        .collect()
}

/// `schedule.get` leaves out every schedule whose `once` time or `until` date has passed
/// unless the call sets `show_past: true` (D2: saltstack/raas-mcp
/// `raas_mcp/data/api_discovery.json`, `schedule.get`, `GetSchedulerSchema.show_past`,
/// "include entries that were scheduled to run in the past"). Without it a fired `once`
/// schedule looks absent and every apply creates it again.
#[tokio::test(flavor = "multi_thread")]
async fn fired_once_schedules_are_found_and_not_created_again() {
    let estate = Estate::start(1.0).await;
    let once = (sim_now(&estate).await + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M");
    estate.write(
        "salt.yaml",
        &format!(
            r#"kind: SaltTarget
name: web servers
spec:
  tgt: {{ "*": {{ tgt_type: glob, tgt: "web-*" }} }}
---
kind: SaltJob
name: Restart nginx
spec:
  fun: service.restart
  arg: {{ arg: [nginx] }}
  target: web servers
---
kind: SaltSchedule
name: Restart once
spec:
  job: Restart nginx
  target: web servers
  schedule: {{ once: "{once}" }}
"#
        ),
    );
    let first = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_ok(&first);
    assert!(first.stdout.contains("3 added"), "{}", first.stdout);

    // The schedule fires: its `once` time is now in the past.
    advance(&estate, 2 * 3600).await;
    let plan = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_no_changes(&plan);
    let again = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_ok(&again);
    assert_eq!(
        raas_objects(&estate, "schedules", "Restart once")
            .await
            .len(),
        1
    );
}

/// Every RaaS kind on `connection`, named after it.
fn salt_estate(connection: &str) -> String {
    format!(
        r#"kind: SaltTarget
name: {connection} web
connection: {connection}
spec:
  tgt: {{ "*": {{ tgt_type: glob, tgt: "web-*" }} }}
---
kind: SaltJob
name: {connection} ping
connection: {connection}
spec:
  fun: test.ping
  target: {connection} web
---
kind: SaltSchedule
name: {connection} hourly
connection: {connection}
spec:
  job: {connection} ping
  target: {connection} web
  schedule: {{ hours: 1 }}
"#
    )
}

/// A cloud login is seed `000`'s cURL recipe, `POST {server}/account/login/` with the CSP
/// Bearer alone, the XSRF token coming back in `X-Xsrftoken` (README.md "Corrections after
/// the audit"); an on-prem login survives a failing `GET /account/login`, whose status
/// saltstack/raas-cli `salt_config_cli/api/client.py` (`_init_xsrf`) ignores too. Here the
/// simulator answers that GET with 401, and a whole apply of every RaaS kind over a cloud and
/// an on-prem connection still succeeds and then plans no changes.
#[tokio::test(flavor = "multi_thread")]
async fn logins_succeed_when_the_server_refuses_get_account_login() {
    let estate = Estate::start(240.0).await;
    let options = estate
        .admin(
            reqwest::Method::PUT,
            "/_sim/options",
            Some(json!({"raas_login_get": "refuse"})),
        )
        .await;
    assert_eq!(options["raas_login_get"], "refuse");
    estate.write(
        "onprem.yaml",
        &format!(
            r#"kind: Connection
name: salt-onprem
spec:
  type: raas
  url: {}
  username: root
  password: {{ env: SEXTANT_T_VCD_PASSWORD }}
"#,
            estate.sim.base_url
        ),
    );
    estate.write(
        "salt.yaml",
        &format!("{}---\n{}", salt_estate("salt"), salt_estate("salt-onprem")),
    );
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_ok(&apply);
    assert!(apply.stdout.contains("6 added"), "{}", apply.stdout);
    for connection in ["salt", "salt-onprem"] {
        for (kind, name) in [
            ("target_groups", format!("{connection} web")),
            ("jobs", format!("{connection} ping")),
            ("schedules", format!("{connection} hourly")),
        ] {
            assert_eq!(raas_objects(&estate, kind, &name).await.len(), 1, "{name}");
        }
    }
    let plan = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_no_changes(&plan);
}

/// The one schedule named `name`'s `schedule` dict and target, as the simulator holds them.
async fn live_schedule(estate: &Estate, name: &str) -> (Value, Value) {
    let found = raas_objects(estate, "schedules", name).await;
    assert_eq!(found.len(), 1, "{found:?}");
    (found[0]["schedule"].clone(), found[0]["tgt_uuid"].clone())
}

const SWITCHED: &str = r#"kind: SaltTarget
name: db servers
spec:
  tgt: { "*": { tgt_type: glob, tgt: "db-*" } }
---
kind: SaltJob
name: Vacuum
spec:
  fun: cmd.run
  arg: { arg: ["vacuumdb --all"] }
  target: db servers
---
kind: SaltSchedule
name: Vacuum nightly
spec:
  job: Vacuum
  target: db servers
  schedule: { cron: "0 3 * * *", until: "2099-01-01T00:00" }
"#;

/// `schedule.update` is a partial update: keys the call leaves out stay, and the ones to
/// remove are named in `delete_fields` (D2: saltstack/raas-mcp
/// `raas_mcp/data/api_discovery.json`, `schedule.update`, `UpdateSchedulerSchema.delete_fields`,
/// "List of fields to remove from the schedule"; README.md "Corrections after the audit").
/// A schedule switched from `cron` to an interval, its `until` removed, keeps neither.
#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_switched_from_cron_to_an_interval_keeps_no_cron_or_until() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SWITCHED);
    assert_ok(&estate.run(&["apply", "--auto-approve", "manifests"]).await);
    let (timing, _) = live_schedule(&estate, "Vacuum nightly").await;
    assert_eq!(
        timing,
        json!({"cron": "0 3 * * *", "until": "2099-01-01T00:00"})
    );

    estate.write(
        "salt.yaml",
        &SWITCHED.replace(
            r#"schedule: { cron: "0 3 * * *", until: "2099-01-01T00:00" }"#,
            "schedule: { minutes: 30 }",
        ),
    );
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_ok(&apply);
    assert!(apply.stdout.contains("1 changed"), "{}", apply.stdout);
    let (timing, target) = live_schedule(&estate, "Vacuum nightly").await;
    assert_eq!(timing, json!({"minutes": 30}));
    assert!(target.is_string(), "the target stays: {target}");
    assert_no_changes(
        &estate
            .run(&["plan", "--detailed-exitcode", "manifests"])
            .await,
    );
}

/// Keys dropped from the manifest inside what it states whole are cleared, not kept: a
/// schedule's `until` (alone) and its target (`delete_fields`, as above), a job's keyword
/// argument (`save_job` is sent the whole `arg`) and a target group's master (`save_target_group`
/// is sent the whole `tgt`, raas.md §6). Each shows in the plan first.
#[tokio::test(flavor = "multi_thread")]
async fn keys_dropped_from_schedules_jobs_and_target_groups_are_cleared() {
    let estate = Estate::start(240.0).await;
    let before = r#"kind: SaltTarget
name: mixed
spec:
  tgt:
    master-a: { tgt_type: glob, tgt: "a-*" }
    master-b: { tgt_type: glob, tgt: "b-*" }
---
kind: SaltJob
name: Deploy
spec:
  fun: state.apply
  arg: { kwarg: { mods: web, test: true } }
  target: mixed
---
kind: SaltSchedule
name: Deploy daily
spec:
  job: Deploy
  target: mixed
  schedule: { cron: "0 4 * * *", until: "2099-01-01T00:00" }
"#;
    estate.write("salt.yaml", before);
    assert_ok(&estate.run(&["apply", "--auto-approve", "manifests"]).await);
    let after = before
        .replace("    master-b: { tgt_type: glob, tgt: \"b-*\" }\n", "")
        .replace("kwarg: { mods: web, test: true }", "kwarg: { mods: web }")
        .replace(
            "  target: mixed\n  schedule: { cron: \"0 4 * * *\", until: \"2099-01-01T00:00\" }",
            "  schedule: { cron: \"0 4 * * *\" }",
        );
    estate.write("salt.yaml", &after);
    let plan = estate.run(&["plan", "manifests"]).await;
    assert!(
        plan.stdout.contains("3 to change"),
        "{}\n{}",
        plan.stdout,
        plan.stderr
    );
    assert!(
        plan.stdout.contains(r#"- target = "mixed""#),
        "{}",
        plan.stdout
    );
    assert_ok(&estate.run(&["apply", "--auto-approve", "manifests"]).await);

    let (timing, target) = live_schedule(&estate, "Deploy daily").await;
    assert_eq!(timing, json!({"cron": "0 4 * * *"}));
    assert!(target.is_null(), "{target}");
    let job = &raas_objects(&estate, "jobs", "Deploy").await[0];
    assert_eq!(job["arg"]["kwarg"], json!({"mods": "web"}));
    let group = &raas_objects(&estate, "target_groups", "mixed").await[0];
    assert_eq!(
        group["tgt"],
        json!({"master-a": {"tgt_type": "glob", "tgt": "a-*"}})
    );
    assert_no_changes(
        &estate
            .run(&["plan", "--detailed-exitcode", "manifests"])
            .await,
    );
}

/// A `cron` with five fields that are not cron values (`a b c d e`) passed the field count
/// and reached RaaS, which takes any string (D2: saltstack/raas-mcp
/// `raas_mcp/data/api_discovery.json`, `schedule.save`, `cron` is a plain string) and whose
/// master then fails to schedule it. It is a located manifest error, and nothing is created.
#[tokio::test(flavor = "multi_thread")]
async fn a_cron_of_five_non_values_is_a_located_error() {
    let estate = Estate::start(1.0).await;
    let before = estate.state().await["raas"].clone();
    for (name, cron) in [("letters", "a b c d e"), ("hour-25", "0 25 * * *")] {
        estate.write(
            "salt.yaml",
            &crate::support::SALT.replace("0 3 * * *", cron),
        );
        let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
        sextant_snapshot!(format!("raas-cron-of-{name}"), apply);
        assert_eq!(estate.state().await["raas"], before, "changed for `{cron}`");
    }
}

/// Saves send a schedule's timing and a target group's `tgt` in the order the manifest wrote
/// them, on create and on update: the typed spec keeps no order, and a server that stores the
/// JSON it is sent (the simulator does; an update keeps the place of the keys it keeps) lists
/// it back in that order, which is how a later plan shows the live value. Sending the typed
/// spec's own order changed what plans show.
#[tokio::test(flavor = "multi_thread")]
async fn saves_keep_the_order_the_manifest_wrote_maps_in() {
    let estate = Estate::start(240.0).await;
    let manifest = r#"kind: SaltTarget
name: ordered
spec:
  tgt:
    zz: { tgt: "z-*", tgt_type: glob }
    aa: { tgt_type: glob, tgt: "a-*" }
---
kind: SaltJob
name: Ping
spec:
  fun: test.ping
---
kind: SaltSchedule
name: Ping weekly
spec:
  job: Ping
  schedule:
    timezone: UTC
    splay: { end: 5, start: 1 }
    cron: "0 3 * * *"
"#;
    estate.write("salt.yaml", manifest);
    assert_ok(&estate.run(&["apply", "--auto-approve", "manifests"]).await);
    let (timing, _) = live_schedule(&estate, "Ping weekly").await;
    assert_eq!(
        timing.to_string(),
        r#"{"timezone":"UTC","splay":{"end":5,"start":1},"cron":"0 3 * * *"}"#
    );
    let group = &raas_objects(&estate, "target_groups", "ordered").await[0];
    let masters: Vec<&String> = group["tgt"].as_object().unwrap().keys().collect();
    assert_eq!(masters, ["zz", "aa"]);

    estate.write(
        "salt.yaml",
        &manifest
            .replace("    zz: { tgt: \"z-*\", tgt_type: glob }\n", "")
            .replace("    aa: { tgt_type: glob, tgt: \"a-*\" }\n", "    mm: { tgt_type: glob, tgt: \"m-*\" }\n    bb: { tgt_type: glob, tgt: \"b-*\" }\n")
            .replace(
                "    splay: { end: 5, start: 1 }\n    cron: \"0 3 * * *\"\n",
                "    when: { weekly: { tue: [\"04:00\"], mon: [\"03:00\"] } }\n",
            ),
    );
    assert_ok(&estate.run(&["apply", "--auto-approve", "manifests"]).await);
    let (timing, _) = live_schedule(&estate, "Ping weekly").await;
    assert_eq!(
        timing.to_string(),
        r#"{"timezone":"UTC","when":{"weekly":{"tue":["04:00"],"mon":["03:00"]}}}"#
    );
    let group = &raas_objects(&estate, "target_groups", "ordered").await[0];
    let masters: Vec<&String> = group["tgt"].as_object().unwrap().keys().collect();
    assert_eq!(masters, ["mm", "bb"]);
}

//! Regressions of the apply lock and of creates racing a twin (issue 16 point 2).

use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use sextant::model::{
    Address, Connection, ConnectionConfig, Kind, SecretSource, SecretValue, SourceLocation,
    SystemType,
};
use sextant::providers::raas::{RaasProvider, RpcCall};
use sextant::providers::vcd::VcdProvider;
use sextant::providers::{CreateRequest, Outcome, Provider};
use sextant::sim::SimConfig;

use crate::support::estate::Estate;

use crate::support::SALT;

/// Objects of the simulator's RaaS `collection` (`target_groups`, `jobs`, `schedules`) named `name`.
fn named(state: &Value, collection: &str, name: &str) -> Vec<String> {
    state["raas"][collection]
        .as_object()
        .map(|objects| {
            objects
                .values()
                .filter(|o| o["name"] == name)
                .map(|o| o["uuid"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The `N` of `Resources: N added` in an apply's output (0 when it did not get that far).
fn added(stdout: &str) -> usize {
    stdout
        .split("Resources: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn applies_of_one_estate_with_paths_in_either_order_never_both_mutate() {
    // The lock used to live in the directory of the first path: `apply connections env` and
    // `apply env connections` took two locks, ran together and saved the schedule twice.
    let estate = Estate::with_config(SimConfig {
        time_scale: 60.0,
        ..SimConfig::default()
    })
    .await;
    estate.write("env/salt.yaml", SALT);
    // Every request takes a while, so the two applies overlap from start to end.
    estate
        .admin(
            reqwest::Method::PUT,
            "/_sim/faults",
            Some(json!({"latency_ms": 150})),
        )
        .await;
    let spawn = |paths: [&str; 2]| {
        let mut args = vec!["apply", "--auto-approve"];
        args.extend(paths);
        estate
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn(["manifests/connections.yaml", "manifests/env"]);
    let second = spawn(["manifests/env", "manifests/connections.yaml"]);
    let (first, second) = tokio::join!(first.wait_with_output(), second.wait_with_output());
    let runs = [first.unwrap(), second.unwrap()];
    let text = |i: usize| {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&runs[i].stdout),
            String::from_utf8_lossy(&runs[i].stderr)
        )
    };
    estate
        .admin(reqwest::Method::PUT, "/_sim/faults", Some(json!({})))
        .await;

    let state = estate.state().await;
    assert_eq!(
        named(&state, "schedules", "Nightly").len(),
        1,
        "{}\n{}",
        text(0),
        text(1)
    );
    assert_eq!(named(&state, "target_groups", "web servers").len(), 1);
    assert_eq!(named(&state, "jobs", "Apply web state").len(), 1);
    // Only one of them mutated: the other was refused by the lock, naming the holder, or
    // planned after the first had finished and found nothing to do.
    let total: usize = (0..2)
        .map(|i| added(&String::from_utf8_lossy(&runs[i].stdout)))
        .sum();
    assert_eq!(total, 3, "{}\n{}", text(0), text(1));
    for (i, run) in runs.iter().enumerate() {
        let stderr = String::from_utf8_lossy(&run.stderr);
        match run.status.code() {
            Some(0) => {}
            Some(1) => assert!(
                stderr.contains(&format!(
                    "the lock on RaaS at {} is held by pid",
                    estate.sim.base_url
                )),
                "{}",
                text(i)
            ),
            other => panic!("exit {other:?}\n{}", text(i)),
        }
    }
    let plan = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
}

fn raas_connection(url: &str) -> Connection {
    let mut config = ConnectionConfig::with_defaults(SystemType::Raas);
    config.url = url.to_string();
    config.csp_url = url.to_string();
    config.api_token = Some(SecretSource::Fixed(SecretValue::new("raas-api-token")));
    Connection {
        name: "salt".to_string(),
        config,
        location: SourceLocation::default(),
    }
}

fn vcd_connection(url: &str) -> Connection {
    let mut config = ConnectionConfig::with_defaults(SystemType::Vcd);
    config.url = url.to_string();
    config.username = Some("administrator".to_string());
    config.password = Some(SecretSource::Fixed(SecretValue::new("vcd-password")));
    Connection {
        name: "vcd".to_string(),
        config,
        location: SourceLocation::default(),
    }
}

fn attribute(outcome: &Outcome, name: &str) -> String {
    match outcome {
        Outcome::Done { attributes, .. } => attributes[name].clone(),
        Outcome::Task(task) => panic!("unexpected task {task:?}"),
    }
}

/// What the provider's create of `kind/name` with `spec` answers.
async fn create(provider: &dyn Provider, kind: Kind, name: &str, spec: Value) -> Outcome {
    let address = Address::new(kind, name);
    provider
        .create(&CreateRequest {
            address: &address,
            spec: &spec,
            idempotency_key: uuid::Uuid::new_v4(),
            base_dir: Path::new("."),
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_racing_create_finds_its_twin_instead_of_duplicating() {
    // Target groups, schedules and Cloud Director tokens take no client-chosen id: a create
    // planned before a twin appeared (another apply, another tool) must adopt the twin.
    let estate = Estate::start(60.0).await;
    let url = estate.sim.base_url.clone();
    let raas = RaasProvider::new(&raas_connection(&url)).unwrap();
    let target_spec =
        json!({"desc": "Web tier", "tgt": {"*": {"tgt_type": "glob", "tgt": "web-*"}}});
    let schedule_spec = json!({"job": "Apply web state", "target": "web servers", "schedule": {"cron": "0 3 * * *"}});

    let target = attribute(
        &create(&raas, Kind::SaltTarget, "web servers", target_spec.clone()).await,
        "uuid",
    );
    let twin = attribute(
        &create(&raas, Kind::SaltTarget, "web servers", target_spec.clone()).await,
        "uuid",
    );
    assert_eq!(twin, target);
    create(
        &raas,
        Kind::SaltJob,
        "Apply web state",
        json!({"cmd": "local", "fun": "state.apply", "target": "web servers"}),
    )
    .await;
    let schedule = attribute(
        &create(&raas, Kind::SaltSchedule, "Nightly", schedule_spec.clone()).await,
        "uuid",
    );
    let twin = attribute(
        &create(&raas, Kind::SaltSchedule, "Nightly", schedule_spec.clone()).await,
        "uuid",
    );
    assert_eq!(twin, schedule);

    // The batched path (several saves in one request) checks the same way.
    let addresses = [
        Address::new(Kind::SaltTarget, "web servers"),
        Address::new(Kind::SaltTarget, "db servers"),
        Address::new(Kind::SaltSchedule, "Nightly"),
        Address::new(Kind::SaltSchedule, "Weekly"),
    ];
    let db_spec = json!({"tgt": {"*": {"tgt_type": "glob", "tgt": "db-*"}}});
    let specs = [&target_spec, &db_spec, &schedule_spec, &schedule_spec];
    let requests: Vec<CreateRequest<'_>> = addresses
        .iter()
        .zip(specs)
        .map(|(address, spec)| CreateRequest {
            address,
            spec,
            idempotency_key: uuid::Uuid::new_v4(),
            base_dir: Path::new("."),
        })
        .collect();
    let outcomes: Vec<Outcome> = raas
        .create_many(&requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(attribute(&outcomes[0], "uuid"), target);
    assert_eq!(attribute(&outcomes[2], "uuid"), schedule);

    let state = estate.state().await;
    for (collection, name) in [
        ("target_groups", "web servers"),
        ("target_groups", "db servers"),
        ("schedules", "Nightly"),
        ("schedules", "Weekly"),
    ] {
        assert_eq!(named(&state, collection, name).len(), 1, "{name}");
    }

    let vcd = VcdProvider::new(&vcd_connection(&url)).unwrap();
    let first = create(&vcd, Kind::VcdApiToken, "ci", json!({})).await;
    let Outcome::Done {
        secret: Some(_), ..
    } = &first
    else {
        panic!("the first create issues the secret: {first:?}");
    };
    let twin = create(&vcd, Kind::VcdApiToken, "ci", json!({})).await;
    assert_eq!(attribute(&twin, "id"), attribute(&first, "id"));
    let state = estate.state().await;
    let tokens = state["vcd"]["tokens"]
        .as_object()
        .unwrap()
        .values()
        .filter(|t| t["name"] == "ci")
        .count();
    assert_eq!(tokens, 1);
}

#[tokio::test]
async fn two_live_objects_of_one_name_are_reported_with_their_ids() {
    let estate = Estate::start(60.0).await;
    estate.write("salt.yaml", SALT);
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    // A second schedule of the same name, saved behind sextant's back.
    let raas = RaasProvider::new(&raas_connection(&estate.sim.base_url)).unwrap();
    let call = RpcCall::new(
        "schedule",
        "save",
        json!({"name": "Nightly", "schedule": {"cron": "0 4 * * *"}, "fun": "test.ping", "tgt": {"*": {"tgt_type": "glob", "tgt": "*"}}}),
    );
    raas.session().call(&call, false).await.unwrap().unwrap();
    let uuids = named(&estate.state().await, "schedules", "Nightly");
    assert_eq!(uuids.len(), 2);

    let plan = estate.run(&["plan", "manifests"]).await;
    assert_eq!(plan.code, 1, "{}\n{}", plan.stdout, plan.stderr);
    let line = plan
        .stderr
        .lines()
        .find(|l| l.contains("SaltSchedule/Nightly"))
        .unwrap_or_else(|| panic!("{}", plan.stderr));
    for uuid in &uuids {
        assert!(line.contains(uuid.as_str()), "{line}");
    }
    assert!(line.contains("keep one and delete the others"), "{line}");
}

/// `lock status` and `lock release` read the `Lock` document with the directories the operator
/// named (`--secret-dir`), as `apply` does: they used to ignore them and refuse a database URL
/// kept in a secret file outside the manifest folders.
#[tokio::test]
async fn lock_status_reads_the_lock_document_with_the_secret_dirs_apply_uses() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let url_file = outside.path().join("lock-url");
    // Nothing listens on port 1: the command gets as far as connecting, then fails.
    std::fs::write(&url_file, "postgres://sextant@127.0.0.1:1/locks\n").unwrap();
    std::fs::create_dir(dir.path().join("manifests")).unwrap();
    std::fs::write(
        dir.path().join("manifests/lock.yaml"),
        format!(
            "kind: Lock\nname: shared\nspec:\n  postgres:\n    url: {{ file: {} }}\n",
            url_file.display()
        ),
    )
    .unwrap();
    let outside_dir = outside.path().to_str().unwrap();
    for command in [
        vec!["lock", "status", "--secret-dir", outside_dir, "manifests"],
        vec![
            "lock",
            "release",
            "--force",
            "--yes",
            "--secret-dir",
            outside_dir,
            "raas:https://salt.example.com",
            "manifests",
        ],
    ] {
        let run = crate::support::estate::run_in(dir.path(), &command).await;
        assert_eq!(run.code, 1, "{command:?}\n{}", run.stderr);
        assert!(
            !run.stderr.contains("outside the manifest folders"),
            "{command:?}\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("check that the database is up"),
            "{command:?}\n{}",
            run.stderr
        );
    }
}

//! The PostgreSQL lock backend against a real PostgreSQL (`support::postgres`) and the real
//! binary against the simulator: two checkouts of one estate never both mutate, a waiting
//! apply finds nothing left to do, a killed holder's lock goes within seconds, unrelated orgs
//! apply side by side, and an unreachable or lost database stops the apply safely.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sextant::sim::SimConfig;
use tokio::io::{AsyncBufReadExt, BufReader};

use support::estate::{Estate, Run, command_in, run_in};

use support::SALT;

async fn slow_estate(latency_ms: u64) -> Estate {
    let estate = Estate::start(60.0).await;
    estate.write("salt.yaml", SALT);
    set_latency(&estate, latency_ms).await;
    estate
}

async fn set_latency(estate: &Estate, latency_ms: u64) {
    estate
        .admin(
            reqwest::Method::PUT,
            "/_sim/faults",
            Some(json!({"latency_ms": latency_ms})),
        )
        .await;
}

/// A second checkout of `estate`'s manifests in another directory.
fn checkout(estate: &Estate) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &estate.path().join("manifests"),
        &dir.path().join("manifests"),
    );
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn named(state: &Value, collection: &str, name: &str) -> usize {
    state["raas"][collection]
        .as_object()
        .map_or(0, |o| o.values().filter(|v| v["name"] == name).count())
}

fn added(stdout: &str) -> usize {
    stdout
        .split("Resources: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn raas_key(estate: &Estate) -> String {
    format!("raas:{}", estate.sim.base_url)
}

/// The lines of `sextant lock status`.
async fn status(dir: &Path, pg: &str) -> Vec<String> {
    let run = run_in(dir, &["lock", "status", "--lock", pg]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_secret_free(&run);
    run.stdout.lines().map(str::to_string).collect()
}

/// Waits until `lock status` lists `key`; returns its line.
async fn wait_held(dir: &Path, pg: &str, key: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(line) = status(dir, pg)
            .await
            .into_iter()
            .find(|l| l.starts_with(&format!("{key}\t")))
        {
            return line;
        }
        assert!(Instant::now() < deadline, "`{key}` was never held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_secret_free(run: &Run) {
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains(support::postgres::PASSWORD),
            "the database password leaked:\n{text}"
        );
    }
    support::estate::assert_secrets_absent(&[&run.stdout, &run.stderr]);
}

/// Spawns an apply and waits until its stdout shows `line`; the rest of its stdout is
/// collected in the background.
async fn spawn_until(
    mut command: tokio::process::Command,
    line: &str,
) -> (tokio::process::Child, tokio::task::JoinHandle<String>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let next = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("`{line}` never came:\n{seen}"))
            .unwrap();
        let Some(next) = next else {
            panic!("the apply ended before `{line}`:\n{seen}");
        };
        seen.push_str(&next);
        seen.push('\n');
        if next.contains(line) {
            break;
        }
    }
    let rest = tokio::spawn(async move {
        while let Ok(Some(next)) = lines.next_line().await {
            seen.push_str(&next);
            seen.push('\n');
        }
        seen
    });
    (child, rest)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_checkouts_of_one_estate_never_both_mutate_and_a_waiting_apply_finds_nothing_to_do() {
    let Some(pg) = support::postgres::url() else {
        return;
    };
    // A 100-second SDDC create at 20x keeps the first apply (and its locks) busy for 5 s.
    let estate = Estate::start(20.0).await;
    estate.write("salt.yaml", SALT);
    estate.write(
        "sddc.yaml",
        "kind: Sddc\nname: contended\nspec: { region: us-west-2, provider: ZEROCLOUD, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal }\n",
    );
    set_latency(&estate, 50).await;
    let second = checkout(&estate);
    let key = raas_key(&estate);

    let mut first = estate.command(&["apply", "--auto-approve", "--lock", &pg, "manifests"]);
    first
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_REPOSITORY", "acme/estate")
        .env("GITHUB_RUN_ID", "42");
    let (first, first_out) = spawn_until(first, "SaltTarget/web servers: Creating...").await;
    let first_pid = first.id().unwrap();
    let held = wait_held(second.path(), &pg, &key).await;
    assert!(
        held.contains(&format!("pid {first_pid} "))
            && held.contains("https://github.example/acme/estate/actions/runs/42"),
        "{held}"
    );

    // Without --lock-timeout, the second checkout is refused at once and changes nothing.
    let refused = run_in(
        second.path(),
        &["apply", "--auto-approve", "--lock", &pg, "manifests"],
    )
    .await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            " at {} is held by pid {first_pid} ",
            estate.sim.base_url
        )) && refused.stderr.contains("nothing was changed"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stdout.contains("Creating..."),
        "{}",
        refused.stdout
    );
    assert_secret_free(&refused);

    // With --lock-timeout, it waits, naming the holder, then plans again and finds the work
    // done.
    let waiting = run_in(
        second.path(),
        &[
            "apply",
            "--auto-approve",
            "--lock",
            &pg,
            "--lock-timeout",
            "60s",
            "manifests",
        ],
    )
    .await;
    let first = Run::of(first.wait_with_output().await.unwrap());
    let first_stdout = first_out.await.unwrap();
    assert_eq!(first.code, 0, "{first_stdout}\n{}", first.stderr);
    assert_eq!(added(&first_stdout), 4, "{first_stdout}");
    assert_eq!(waiting.code, 0, "{}\n{}", waiting.stdout, waiting.stderr);
    assert!(
        waiting.stderr.contains("waiting for the lock on ")
            && waiting.stderr.contains(&format!(
                " at {} held by pid {first_pid} ",
                estate.sim.base_url
            )),
        "{}",
        waiting.stderr
    );
    assert!(
        waiting
            .stdout
            .contains("No changes. Your infrastructure matches the configuration."),
        "{}",
        waiting.stdout
    );
    assert_secret_free(&first);
    assert_secret_free(&waiting);

    let state = estate.state().await;
    assert_eq!(named(&state, "target_groups", "web servers"), 1);
    assert_eq!(named(&state, "jobs", "Apply web state"), 1);
    assert_eq!(named(&state, "schedules", "Nightly"), 1);
    let sddcs = state["vmc"]["sddcs"].as_object().map_or(0, |o| {
        o.values().filter(|s| s["name"] == "contended").count()
    });
    assert_eq!(sddcs, 1, "{}", state["vmc"]);
    assert!(
        !status(estate.path(), &pg)
            .await
            .iter()
            .any(|l| l.starts_with(&format!("{key}\t"))),
        "the lock was released"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holder_loses_its_lock_within_seconds() {
    let Some(pg) = support::postgres::url() else {
        return;
    };
    let estate = slow_estate(300).await;
    let key = raas_key(&estate);
    let (mut holder, _out) = spawn_until(
        estate.command(&["apply", "--auto-approve", "--lock", &pg, "manifests"]),
        "SaltTarget/web servers: Creating...",
    )
    .await;
    wait_held(estate.path(), &pg, &key).await;
    holder.start_kill().unwrap();
    let killed = Instant::now();
    holder.wait().await.unwrap();
    loop {
        let held = status(estate.path(), &pg).await;
        if !held.iter().any(|l| l.starts_with(&format!("{key}\t"))) {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "still held 10 s after SIGKILL: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    set_latency(&estate, 0).await;
    let next = estate
        .run(&["apply", "--auto-approve", "--lock", &pg, "manifests"])
        .await;
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    let state = estate.state().await;
    assert_eq!(named(&state, "target_groups", "web servers"), 1);
    assert_eq!(named(&state, "schedules", "Nightly"), 1);
}

/// A Cloud Director connection of `org` (user `user`) with one API token to create.
fn vcd_manifests(url: &str, org: &str, user: &str, token: &str) -> String {
    format!(
        r#"kind: Connection
name: vcd
spec:
  type: vcd
  url: {url}
  org: {org}
  username: {user}
  password: {{ env: SEXTANT_T_VCD_PASSWORD }}
---
kind: VcdApiToken
name: {token}
spec:
  file: .secrets/{token}.json
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn applies_to_unrelated_orgs_run_side_by_side() {
    let Some(pg) = support::postgres::url() else {
        return;
    };
    // One Cloud Director, two orgs (the simulator's `System` and `acme`), one checkout each.
    let sim = sextant::sim::start(SimConfig {
        time_scale: 60.0,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let url = sim.base_url.clone();
    let client = reqwest::Client::new();
    client
        .put(format!("{url}/_sim/faults"))
        .json(&json!({"latency_ms": 300}))
        .send()
        .await
        .unwrap();
    let checkouts: Vec<tempfile::TempDir> = [("System", "administrator"), ("acme", "orgadmin")]
        .iter()
        .map(|(org, user)| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("manifests")).unwrap();
            std::fs::write(
                dir.path().join("manifests/vcd.yaml"),
                vcd_manifests(&url, org, user, &format!("{}-bot", org.to_lowercase())),
            )
            .unwrap();
            dir
        })
        .collect();
    let spawn = |dir: &Path| {
        command_in(
            dir,
            &["apply", "--auto-approve", "--lock", &pg, "manifests"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (spawn(checkouts[0].path()), spawn(checkouts[1].path()));
    // Both keys are held at the same moment at some point.
    let keys = [
        format!("vcd:{url}#org=system"),
        format!("vcd:{url}#org=acme"),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = status(checkouts[0].path(), &pg).await;
        if keys
            .iter()
            .all(|k| held.iter().any(|l| l.starts_with(&format!("{k}\t"))))
        {
            break;
        }
        assert!(Instant::now() < deadline, "never both held: {held:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (a, b) = tokio::join!(a.wait_with_output(), b.wait_with_output());
    for run in [Run::of(a.unwrap()), Run::of(b.unwrap())] {
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("1 added"), "{}", run.stdout);
    }
    sim.stop().await;
}

#[tokio::test]
async fn an_unreachable_lock_database_fails_before_any_api_call() {
    let estate = Estate::start(60.0).await;
    estate.write("salt.yaml", SALT);
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://sextant:hunter2-db-pw@127.0.0.1:{port}/locks?sslmode=disable");
    let run = estate
        .run(&["apply", "--auto-approve", "--lock", &url, "manifests"])
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "cannot connect to the lock database postgres://127.0.0.1:{port}/locks"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"));
    let counters = estate
        .admin(reqwest::Method::GET, "/_sim/counters", None)
        .await;
    assert_eq!(counters["total"], 0, "an API was called: {counters}");
    // The same through the environment.
    let mut command = estate.command(&["apply", "--auto-approve", "manifests"]);
    command.env("SEXTANT_LOCK_URL", &url);
    let run = Run::of(command.output().await.unwrap());
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("cannot connect to the lock database"));
    assert!(!run.stderr.contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_lock_starts_no_new_action_and_exits_1() {
    let Some(pg) = support::postgres::url() else {
        return;
    };
    let estate = slow_estate(300).await;
    let key = raas_key(&estate);
    let (holder, out) = spawn_until(
        estate.command(&["apply", "--auto-approve", "--lock", &pg, "manifests"]),
        "SaltTarget/web servers: Creating...",
    )
    .await;
    // An operator ends the stuck holder's session.
    let release = estate
        .run(&["lock", "release", &key, "--force", "--yes", "--lock", &pg])
        .await;
    assert_eq!(release.code, 0, "{}\n{}", release.stdout, release.stderr);
    assert!(
        release.stdout.contains(&format!("Released `{key}`")),
        "{}",
        release.stdout
    );
    assert_secret_free(&release);
    let holder = Run::of(holder.wait_with_output().await.unwrap());
    let stdout = out.await.unwrap();
    assert_eq!(holder.code, 1, "{stdout}\n{}", holder.stderr);
    assert!(
        holder.stderr.contains(&format!(
            "the lock on RaaS at {} was lost during the apply; no new action was started",
            estate.sim.base_url
        )),
        "{}",
        holder.stderr
    );
    assert!(stdout.contains("not started"), "{stdout}");
    assert!(
        !stdout.contains("SaltSchedule/Nightly: Creating..."),
        "{stdout}"
    );

    set_latency(&estate, 0).await;
    let next = estate
        .run(&["apply", "--auto-approve", "--lock", &pg, "manifests"])
        .await;
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    let state = estate.state().await;
    assert_eq!(named(&state, "target_groups", "web servers"), 1);
    assert_eq!(named(&state, "schedules", "Nightly"), 1);

    let refused = estate.run(&["lock", "release", &key, "--lock", &pg]).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("pass `--force`"),
        "{}",
        refused.stderr
    );
}

/// A `kind: Lock` document whose URL (with its password) comes from `SEXTANT_TEST_LOCK_DB`.
fn lock_document(timeout: &str) -> String {
    format!(
        "kind: Lock\nname: shared\nspec:\n  postgres:\n    url: {{env: SEXTANT_TEST_LOCK_DB}}\n  timeout: {timeout}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_document_names_the_database_and_how_long_to_wait() {
    let Some(pg) = support::postgres::url() else {
        return;
    };
    let estate = Estate::start(20.0).await;
    estate.write("salt.yaml", SALT);
    estate.write(
        "sddc.yaml",
        "kind: Sddc\nname: contended\nspec: { region: us-west-2, provider: ZEROCLOUD, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal }\n",
    );
    estate.write("lock.yaml", &lock_document("2m"));
    set_latency(&estate, 50).await;
    let second = checkout(&estate);
    let key = raas_key(&estate);

    // No `--lock`: the document names the database, and `lock status` reads it too.
    let mut first = estate.command(&["apply", "--auto-approve", "manifests"]);
    first.env("SEXTANT_TEST_LOCK_DB", &pg);
    let (first, first_out) = spawn_until(first, "SaltTarget/web servers: Creating...").await;
    let first_pid = first.id().unwrap();
    let held = wait_held(second.path(), &pg, &key).await;
    assert!(held.contains(&format!("pid {first_pid} ")), "{held}");
    let mut from_document = command_in(second.path(), &["lock", "status", "manifests"]);
    from_document.env("SEXTANT_TEST_LOCK_DB", &pg);
    let listed = Run::of(from_document.output().await.unwrap());
    assert_eq!(listed.code, 0, "{}\n{}", listed.stdout, listed.stderr);
    assert!(
        listed.stdout.contains(&format!("{key}\t")),
        "{}",
        listed.stdout
    );
    assert_secret_free(&listed);

    // The document's `timeout: 2m` makes the second checkout wait instead of failing at once
    // (the default without it), then find nothing to do.
    let mut waiting = command_in(second.path(), &["apply", "--auto-approve", "manifests"]);
    waiting.env("SEXTANT_TEST_LOCK_DB", &pg);
    let waiting = Run::of(waiting.output().await.unwrap());
    let first = Run::of(first.wait_with_output().await.unwrap());
    let first_stdout = first_out.await.unwrap();
    assert_eq!(first.code, 0, "{first_stdout}\n{}", first.stderr);
    assert_eq!(waiting.code, 0, "{}\n{}", waiting.stdout, waiting.stderr);
    assert!(
        waiting.stderr.contains("waiting for the lock on ")
            && waiting
                .stderr
                .contains(&format!("held by pid {first_pid} ")),
        "{}",
        waiting.stderr
    );
    assert!(
        waiting
            .stdout
            .contains("No changes. Your infrastructure matches the configuration."),
        "{}",
        waiting.stdout
    );
    assert_secret_free(&first);
    assert_secret_free(&waiting);
    let state = estate.state().await;
    assert_eq!(named(&state, "jobs", "Apply web state"), 1);
}

#[tokio::test]
async fn a_lock_document_whose_database_is_unreachable_stops_the_apply_before_any_api_call() {
    let estate = Estate::start(60.0).await;
    estate.write("salt.yaml", SALT);
    estate.write("lock.yaml", &lock_document("0s"));
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://sextant:hunter2-db-pw@127.0.0.1:{port}/locks?sslmode=disable");
    let mut command = estate.command(&["apply", "--auto-approve", "manifests"]);
    command.env("SEXTANT_TEST_LOCK_DB", &url);
    let run = Run::of(command.output().await.unwrap());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "cannot connect to the lock database postgres://127.0.0.1:{port}/locks"
        )) && run.stderr.contains("the URL of `Lock/shared` (")
            && run.stderr.contains("lock.yaml:1:1)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"));
    let counters = estate
        .admin(reqwest::Method::GET, "/_sim/counters", None)
        .await;
    assert_eq!(counters["total"], 0, "an API was called: {counters}");

    // The variable unset: a clear error naming it, nothing contacted.
    let run = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("cannot read the database URL of `Lock/shared`")
            && run.stderr.contains("`SEXTANT_TEST_LOCK_DB` is not set"),
        "{}",
        run.stderr
    );
    // `--lock file` overrides the document.
    let run = estate
        .run(&["apply", "--auto-approve", "--lock", "file", "manifests"])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

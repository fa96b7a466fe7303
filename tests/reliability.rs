//! Reliability and secrets, through the real binary against the simulator over loopback:
//! applies under injected 503s, 429s and short-lived access tokens; SIGKILL at many moments
//! of an apply; dropped responses to committed creates; two applies at once; and an audit of
//! every command's output for secret values.
//!
//! Secret values are recognisable (`*-secret-N`) or taken from the simulator's state.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sextant::sim::SimConfig;
use sha2::Digest;
use support::estate::{SECRETS, admin, command_in};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const NO_CHANGES: &str = "No changes. Your infrastructure matches the configuration.\n";

/// The support estate (RaaS connection `salt-cloud`) plus what its manifests declare.
struct Estate {
    estate: support::estate::Estate,
    declared: Declared,
}

impl std::ops::Deref for Estate {
    type Target = support::estate::Estate;

    fn deref(&self) -> &Self::Target {
        &self.estate
    }
}

/// Names of what the manifests declare, per kind, to check the server against.
#[derive(Default, Clone)]
struct Declared {
    targets: Vec<String>,
    jobs: Vec<String>,
    schedules: Vec<String>,
    /// Token name and its secret file relative to `manifests/`.
    tokens: Vec<(String, String)>,
    sddcs: Vec<String>,
}

impl Estate {
    async fn start(config: SimConfig) -> Self {
        Self {
            estate: support::estate::Estate::with_raas_name(config, "salt-cloud").await,
            declared: Declared::default(),
        }
    }

    async fn faults(&self, faults: Value) {
        self.admin(reqwest::Method::PUT, "/_sim/faults", Some(faults))
            .await;
    }

    /// Simulated time now.
    async fn sim_now(&self) -> chrono::DateTime<chrono::FixedOffset> {
        let clock = self.admin(reqwest::Method::GET, "/_sim/clock", None).await;
        chrono::DateTime::parse_from_rfc3339(clock["now"].as_str().unwrap()).unwrap()
    }

    /// Asserts that at least `lifetimes` access-token lifetimes (20 s) passed since `since`.
    async fn assert_tokens_expired(
        &self,
        since: chrono::DateTime<chrono::FixedOffset>,
        lifetimes: i64,
    ) {
        let elapsed = (self.sim_now().await - since).num_seconds();
        assert!(
            elapsed >= 20 * lifetimes,
            "only {elapsed} simulated seconds passed: the access tokens expired fewer than {lifetimes} times"
        );
    }

    /// Writes the quickstart's Salt, VCD and VM manifests plus a ZEROCLOUD SDDC (100
    /// simulated seconds to create): every kind.
    fn write_every_kind(&mut self) {
        let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
        for file in ["salt.yaml", "vcd.yaml", "vms.yaml"] {
            self.write(
                file,
                &std::fs::read_to_string(quickstart.join(file)).unwrap(),
            );
        }
        self.write(
            "sddc.yaml",
            "kind: Sddc\nname: chaos-sddc\nspec:\n  region: us-west-2\n  provider: ZEROCLOUD\n  sddc_type: 1NODE\n  num_hosts: 1\n  host_instance_type: i3.metal\n",
        );
        self.declared = Declared {
            targets: vec!["web servers".into(), "databases".into()],
            jobs: vec!["Apply web state".into(), "Check disk usage".into()],
            schedules: vec!["Nightly web state".into()],
            tokens: vec![(
                "ci-pipeline".into(),
                ".secrets/ci-pipeline-token.json".into(),
            )],
            sddcs: vec!["chaos-sddc".into()],
        };
    }

    /// Writes `targets` target groups, `jobs` jobs (each on a target), `schedules` schedules
    /// (each of a job) and `tokens` VCD tokens.
    fn write_many(&mut self, targets: usize, jobs: usize, schedules: usize, tokens: usize) {
        let mut text = String::new();
        let mut declared = Declared::default();
        for i in 0..targets {
            let name = format!("target {i:03}");
            text.push_str(&format!(
                "---\nkind: SaltTarget\nname: {name}\nspec: {{ desc: group {i}, tgt: {{ \"*\": {{ tgt_type: glob, tgt: \"host-{i}-*\" }} }} }}\n"
            ));
            declared.targets.push(name);
        }
        for i in 0..jobs {
            let name = format!("job {i:03}");
            text.push_str(&format!(
                "---\nkind: SaltJob\nname: {name}\nspec: {{ desc: job {i}, cmd: local, fun: test.ping, target: target {:03} }}\n",
                i % targets
            ));
            declared.jobs.push(name);
        }
        for i in 0..schedules {
            let name = format!("schedule {i:03}");
            text.push_str(&format!(
                "---\nkind: SaltSchedule\nname: {name}\nspec: {{ job: job {i:03}, target: target {:03}, schedule: {{ cron: \"{} 3 * * *\" }} }}\n",
                i % targets,
                i % 60
            ));
            declared.schedules.push(name);
        }
        self.write("salt.yaml", &text);
        let mut text = String::new();
        for i in 0..tokens {
            let name = format!("token-{i:03}");
            let file = format!("secrets/{name}.json");
            text.push_str(&format!(
                "---\nkind: VcdApiToken\nname: {name}\nspec: {{ file: {file} }}\n"
            ));
            declared.tokens.push((name, file));
        }
        if tokens > 0 {
            self.write("vcd.yaml", &text);
        }
        self.declared = declared;
    }

    fn write_sddc(&mut self, name: &str) {
        self.write(
            "sddc.yaml",
            &format!(
                "kind: Sddc\nname: {name}\nspec: {{ region: us-west-2, provider: ZEROCLOUD, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal }}\n"
            ),
        );
        self.declared.sddcs.push(name.to_string());
    }

    /// Every declared object exists exactly once on the server, under its name.
    async fn assert_no_duplicates(&self) {
        let state = self.state().await;
        let raas = &state["raas"];
        for (section, declared) in [
            ("target_groups", &self.declared.targets),
            ("jobs", &self.declared.jobs),
            ("schedules", &self.declared.schedules),
        ] {
            let counts = names(&raas[section], |_| true);
            for name in declared {
                assert_eq!(
                    counts.get(name),
                    Some(&1),
                    "raas {section} `{name}`: {counts:?}"
                );
            }
        }
        let tokens = names(&state["vcd"]["tokens"], |_| true);
        for (name, _) in &self.declared.tokens {
            assert_eq!(tokens.get(name), Some(&1), "vcd token `{name}`: {tokens:?}");
        }
        let sddcs = names(&state["vmc"]["sddcs"], |s| s["sddc_state"] != "DELETED");
        for name in &self.declared.sddcs {
            assert_eq!(sddcs.get(name), Some(&1), "sddc `{name}`: {sddcs:?}");
        }
    }

    /// Each declared token's file exists, has mode 0600 and holds the secret whose digest the
    /// server keeps for that token.
    async fn assert_token_files_match(&self) {
        let state = self.state().await;
        let tokens = state["vcd"]["tokens"].as_object().unwrap();
        for (name, file) in &self.declared.tokens {
            let path = self.manifests().join(file);
            let meta = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("token file `{}`: {e}", path.display()));
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o600,
                "{}",
                path.display()
            );
            let saved: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let digest = sha256(saved["refresh_token"].as_str().unwrap());
            let live = tokens
                .values()
                .find(|t| t["name"] == name.as_str())
                .unwrap();
            assert_eq!(
                live["secret_digest"].as_str(),
                Some(digest.as_str()),
                "the file of `{name}` does not hold the live token's secret"
            );
        }
    }

    /// A second plan has nothing to do, nothing is duplicated and every token file is right.
    async fn assert_converged(&self) {
        let plan = self
            .run(&["plan", "--detailed-exitcode", "manifests"])
            .await;
        assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
        assert_eq!(plan.stdout, NO_CHANGES, "{}", plan.stderr);
        assert!(!plan.stderr.contains("secret file"), "{}", plan.stderr);
        self.assert_no_duplicates().await;
        self.assert_token_files_match().await;
    }
}

fn sha256(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// How many objects of each `name` a map or list of objects holds, among those `keep` accepts.
fn names(section: &Value, keep: impl Fn(&Value) -> bool) -> BTreeMap<String, usize> {
    let items: Vec<&Value> = match section {
        Value::Object(map) => map.values().collect(),
        Value::Array(items) => items.iter().collect(),
        _ => Vec::new(),
    };
    let mut counts = BTreeMap::new();
    for item in items.into_iter().filter(|i| keep(i)) {
        if let Some(name) = item["name"].as_str() {
            *counts.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

// ---------------------------------------------------------------------------------------------
// Chaos: 5 % 503, 2 % 429 with Retry-After, 20-second access tokens.
// ---------------------------------------------------------------------------------------------

/// The faults of the chaos suite.
fn chaos(retry_after_secs: u64) -> Value {
    json!({
        "rate_503": 0.05,
        "rate_429": 0.02,
        "retry_after_secs": retry_after_secs,
        "token_ttl_secs": 20,
    })
}

/// Applies every kind under chaos. At 10 simulated seconds per real second the access tokens
/// live 2 real seconds (above `Retry-After` and its jitter, as in reality) and the SDDC takes
/// 10, so tokens expire several times during the run.
async fn chaos_every_kind(seed: u64) {
    let mut estate = Estate::start(SimConfig {
        seed,
        time_scale: 10.0,
        ..SimConfig::default()
    })
    .await;
    estate.write_every_kind();
    estate.faults(chaos(1)).await;
    let started = estate.sim_now().await;
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(
        apply.code, 0,
        "seed {seed}\n{}\n{}",
        apply.stdout, apply.stderr
    );
    assert!(apply.stdout.contains("Apply complete!"), "{}", apply.stdout);
    estate.assert_tokens_expired(started, 3).await;
    estate.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chaos_every_kind_converges_without_duplicates_for_several_seeds() {
    futures::future::join_all([1, 2, 3].map(chaos_every_kind)).await;
}

/// Applies 500 resources under chaos (`Retry-After: 0` keeps the run short). Batched saves
/// make the run fast, so besides running at 12x the test pushes the simulated clock on by
/// 1 s every 50 ms while the apply runs (about 32x in all: a token lives ~0.6 real seconds,
/// long enough for a login and the call that follows it).
async fn chaos_500_resources(seed: u64) {
    let mut estate = Estate::start(SimConfig {
        seed,
        time_scale: 12.0,
        ..SimConfig::default()
    })
    .await;
    // 150 + 200 + 100 + 48 + the quickstart's 2 VMs = 500.
    estate.write_many(150, 200, 100, 48);
    estate.write(
        "vms.yaml",
        "kind: VirtualMachine\nname: web-01\nspec: { power_state: POWERED_ON, cpu_count: 2 }\n---\nkind: VirtualMachine\nname: db-01\nspec: { power_state: POWERED_ON }\n",
    );
    estate.write(
        "connections.yaml",
        &support::connections(&estate.sim.base_url, "salt-cloud")
            .replace("  type: raas\n", "  type: raas\n  max_concurrency: 20\n")
            .replace("  type: vcd\n", "  type: vcd\n  max_concurrency: 20\n"),
    );
    estate.faults(chaos(0)).await;
    let started = estate.sim_now().await;
    let base_url = estate.sim.base_url.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            admin(
                &base_url,
                reqwest::Method::POST,
                "/_sim/clock/advance",
                Some(json!({"seconds": 1})),
            )
            .await;
        }
    });
    let apply = estate
        .run(&[
            "apply",
            "--auto-approve",
            "--parallelism",
            "40",
            "manifests",
        ])
        .await;
    ticker.abort();
    assert_eq!(
        apply.code, 0,
        "seed {seed}\n{}\n{}",
        apply.stdout, apply.stderr
    );
    assert!(
        apply.stdout.contains("Resources: 498 added, 1 changed"),
        "{}",
        apply.stdout
    );
    estate.assert_tokens_expired(started, 2).await;
    estate.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chaos_500_resources_converge_without_duplicates_for_several_seeds() {
    futures::future::join_all([7, 8].map(chaos_500_resources)).await;
}

// ---------------------------------------------------------------------------------------------
// Interruptions: SIGKILL at many moments, then apply again.
// ---------------------------------------------------------------------------------------------

/// When the running apply is killed.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// After this many progress lines (`Creating...`, `Creation complete`, …).
    Lines(usize),
    /// This many milliseconds after the first progress line.
    Millis(u64),
    /// As soon as the SDDC exists on the server.
    SddcExists,
    /// As soon as some VCD token is registered and its secret not yet granted.
    TokenRegistered,
    /// As soon as this many Salt jobs are saved.
    JobsSaved(usize),
}

/// SDDC, Salt and VCD resources; every request is slowed down by 40 ms so the kill moments
/// spread over the SDDC create (2 s), the Salt saves and the token grants.
async fn interrupted_estate() -> Estate {
    let mut estate = Estate::start(SimConfig {
        time_scale: 50.0,
        ..SimConfig::default()
    })
    .await;
    estate.write_many(4, 5, 3, 4);
    estate.write_sddc("kill-sddc");
    estate.faults(json!({"latency_ms": 40})).await;
    estate
}

/// Whether the server state says it is time to kill.
fn state_reached(state: &Value, at: KillAt) -> bool {
    match at {
        KillAt::SddcExists => !names(&state["vmc"]["sddcs"], |_| true).is_empty(),
        KillAt::TokenRegistered => state["vcd"]["tokens"]
            .as_object()
            .unwrap()
            .values()
            .any(|t| {
                t["name"].as_str().is_some_and(|n| n.starts_with("token-"))
                    && t["secret_digest"].is_null()
            }),
        KillAt::JobsSaved(n) => {
            names(&state["raas"]["jobs"], |j| {
                j["name"].as_str().is_some_and(|n| n.starts_with("job "))
            })
            .len()
                >= n
        }
        KillAt::Lines(_) | KillAt::Millis(_) => false,
    }
}

/// Starts an apply, kills it at `at` and returns whether it was killed before finishing.
async fn apply_and_kill(estate: &Estate, at: KillAt) -> bool {
    let mut child = estate
        .command(&["apply", "--auto-approve", "--parallelism", "2", "manifests"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let killed_in_time = tokio::time::timeout(Duration::from_secs(30), async {
        let mut progress = 0;
        match at {
            KillAt::Lines(_) | KillAt::Millis(_) => {
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains(": Creat") || line.contains(": Still creating") {
                        progress += 1;
                    }
                    match at {
                        KillAt::Lines(n) if progress >= n => return true,
                        KillAt::Millis(ms) if progress >= 1 => {
                            tokio::spawn(async move {
                                while let Ok(Some(_)) = lines.next_line().await {}
                            });
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            return true;
                        }
                        _ => {}
                    }
                }
                false
            }
            _ => {
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                loop {
                    if state_reached(&estate.state().await, at) {
                        return true;
                    }
                    if child.try_wait().unwrap().is_some() {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    })
    .await
    .unwrap_or(false);
    child.start_kill().ok();
    let status = child.wait().await.unwrap();
    killed_in_time && status.code().is_none()
}

/// Kills an apply at `at`, then checks that no secret was lost silently and that a second
/// apply converges without duplicates. Returns whether a lost secret was reported.
async fn kill_then_converge(at: KillAt) -> bool {
    let estate = interrupted_estate().await;
    let killed = apply_and_kill(&estate, at).await;
    assert!(killed, "{at:?}: the apply finished before the kill");

    // Every token on the server whose file is missing is reported by plan.
    let plan = estate.run(&["plan", "manifests"]).await;
    assert_eq!(plan.code, 0, "{at:?}\n{}\n{}", plan.stdout, plan.stderr);
    let state = estate.state().await;
    let live = names(&state["vcd"]["tokens"], |_| true);
    let mut lost = false;
    for (name, file) in &estate.declared.tokens {
        if live.contains_key(name) && !estate.manifests().join(file).exists() {
            lost = true;
            let line = plan
                .stderr
                .lines()
                .find(|l| l.contains(&format!("VcdApiToken/{name}")))
                .unwrap_or_else(|| panic!("{at:?}: lost `{name}` not reported:\n{}", plan.stderr));
            assert!(line.contains("--recreate-lost-secrets"), "{line}");
        }
    }

    let resume = estate
        .run(&[
            "apply",
            "--auto-approve",
            "--recreate-lost-secrets",
            "manifests",
        ])
        .await;
    assert_eq!(
        resume.code, 0,
        "{at:?}\n{}\n{}",
        resume.stdout, resume.stderr
    );
    if lost {
        assert!(
            resume.stdout.contains("must be replaced"),
            "{}",
            resume.stdout
        );
    }
    estate.assert_converged().await;
    lost
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_after_n_progress_lines_then_apply_converges() {
    futures::future::join_all([1, 3, 6, 10, 15].map(|n| kill_then_converge(KillAt::Lines(n))))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_n_ms_into_the_apply_then_apply_converges() {
    futures::future::join_all([0, 150, 400, 900].map(|ms| kill_then_converge(KillAt::Millis(ms))))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_the_sddc_create_salt_saves_and_token_grant_then_apply_converges() {
    let (_, _, lost) = tokio::join!(
        kill_then_converge(KillAt::SddcExists),
        kill_then_converge(KillAt::JobsSaved(2)),
        kill_then_converge(KillAt::TokenRegistered),
    );
    // Registered but not granted: the secret never existed, plan reports it and
    // `--recreate-lost-secrets` revokes and re-creates the token.
    assert!(
        lost,
        "killing right after a token registration lost no secret"
    );
}

/// Applies with the replies of the first 3 and then 30% of the mutations dropped after they
/// were carried out.
async fn apply_with_dropped_replies(mode: &str) {
    let mut estate = Estate::start(SimConfig {
        time_scale: 60.0,
        seed: 5,
        ..SimConfig::default()
    })
    .await;
    estate.write_many(4, 5, 3, 4);
    estate.write_sddc("dropped-sddc");
    estate
        .faults(json!({"drop_next_mutations": 3, "drop_rate": 0.3, "drop_mode": mode}))
        .await;
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    let left = estate
        .admin(reqwest::Method::GET, "/_sim/faults", None)
        .await;
    assert_eq!(
        left["drop_next_mutations"], 0,
        "{mode}: not every drop happened"
    );
    estate.faults(json!({})).await;
    // Each lost reply is followed by a lookup by name (or a resend of a save that names
    // its own uuid), so the apply itself succeeds.
    assert_eq!(apply.code, 0, "{mode}\n{}\n{}", apply.stdout, apply.stderr);
    estate.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_whose_responses_are_dropped_after_commit_are_not_repeated() {
    tokio::join!(
        apply_with_dropped_replies("gateway_timeout"),
        apply_with_dropped_replies("reset"),
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrent applies and the lock.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lock_refuses_apply_naming_the_holder_and_plan_still_runs() {
    let mut estate = Estate::start(SimConfig::default()).await;
    estate.write_many(2, 2, 1, 0);
    // Another apply (on another runner) holds the lock on the Salt estate.
    let key =
        sextant::apply::lock::EstateKey::parse(&format!("raas:{}", estate.sim.base_url)).unwrap();
    let holder = sextant::apply::lock::Holder {
        host: "ci-runner-7".into(),
        pid: 4242,
        user: "runner".into(),
        since: "2026-01-01T00:00:00Z".into(),
        ci_run_url: None,
    };
    let backend = sextant::apply::lock::file::FileBackend::per_user();
    let held = match sextant::apply::lock::LockBackend::try_acquire(&backend, &key, &holder)
        .await
        .unwrap()
    {
        sextant::apply::lock::Attempt::Acquired(lock) => lock,
        sextant::apply::lock::Attempt::Held(_) => panic!("the estate's lock is free"),
    };

    let refused = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("the lock on RaaS at {}", estate.sim.base_url)),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("pid 4242 of `runner` on ci-runner-7, since 2026-01-01T00:00:00Z"),
        "{}",
        refused.stderr
    );
    let plan = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(
        plan.code, 2,
        "plan takes no lock: {}\n{}",
        plan.stdout, plan.stderr
    );
    let state = estate.state().await;
    assert!(
        names(&state["raas"]["jobs"], |_| true)
            .keys()
            .all(|n| !n.starts_with("job ")),
        "the refused apply changed something"
    );

    held.release().await;
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    estate.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_applies_at_once_never_both_mutate() {
    // A 100-second SDDC create at 20x keeps the first apply busy for 5 s.
    let mut estate = Estate::start(SimConfig {
        time_scale: 20.0,
        ..SimConfig::default()
    })
    .await;
    estate.write_many(2, 2, 1, 1);
    estate.write_sddc("contended");
    let spawn = || {
        estate
            .command(&["apply", "--auto-approve", "manifests"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let pids = [first.id().unwrap(), second.id().unwrap()];
    let (first, second) = tokio::join!(first.wait_with_output(), second.wait_with_output());
    let outputs = [first.unwrap(), second.unwrap()];
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let winner = codes.iter().position(|c| *c == Some(0));
    let loser = codes.iter().position(|c| *c == Some(1));
    let (Some(winner), Some(loser)) = (winner, loser) else {
        panic!(
            "expected one success and one refusal, got {codes:?}\n{}\n{}",
            String::from_utf8_lossy(&outputs[0].stderr),
            String::from_utf8_lossy(&outputs[1].stderr)
        );
    };
    let refusal = String::from_utf8_lossy(&outputs[loser].stderr);
    assert!(
        refusal.contains("is held by") && refusal.contains(&format!("pid {} ", pids[winner])),
        "{refusal}"
    );
    let loser_out = String::from_utf8_lossy(&outputs[loser].stdout);
    assert!(!loser_out.contains("Creating..."), "{loser_out}");
    estate.assert_converged().await;
}

// ---------------------------------------------------------------------------------------------
// Secrets audit.
// ---------------------------------------------------------------------------------------------

/// A `sextant -vvv sim serve` child and the URL it listens on.
async fn serve_simulator(dir: &Path) -> (tokio::process::Child, String) {
    let state = dir.join("served-state.json");
    let mut child = command_in(
        dir,
        &[
            "-vvv",
            "sim",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state",
            state.to_str().unwrap(),
            "--time-scale",
            "100",
            "--token-ttl",
            "20",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    tokio::time::timeout(Duration::from_secs(20), stdout.read_line(&mut first))
        .await
        .expect("the simulator never said where it listens")
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line `{first}`"))
        .to_string();
    (child, url)
}

/// Every secret value the simulator issued or accepted, plus the SHA-256 digests of those
/// it keeps only hashed (Cloud Director access tokens and token secrets).
fn issued_secrets(state: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut values: BTreeSet<String> = SECRETS
        .into_iter()
        .map(|(_, secret)| secret.to_string())
        .collect();
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    values.extend(keys(&state["csp"]["access_tokens"]));
    values.extend(keys(&state["raas"]["sessions"]));
    values.extend(keys(&state["vsphere"]["sessions"]));
    if let Some(access) = state["vcd"]["access_tokens"].as_object() {
        values.extend(
            access
                .values()
                .filter_map(|a| a["session_id"].as_str())
                .map(str::to_string),
        );
    }
    let mut digests: BTreeSet<String> = keys(&state["vcd"]["access_tokens"]).into_iter().collect();
    if let Some(tokens) = state["vcd"]["tokens"].as_object() {
        digests.extend(
            tokens
                .values()
                .filter_map(|t| t["secret_digest"].as_str())
                .map(str::to_string),
        );
    }
    (values, digests)
}

/// Fails if `text` holds any of `values`, or any word whose SHA-256 is in `digests`.
fn assert_clean(label: &str, text: &str, values: &BTreeSet<String>, digests: &BTreeSet<String>) {
    for value in values {
        assert!(
            !text.contains(value.as_str()),
            "{label} leaks `{value}`:\n{text}"
        );
    }
    let secretish = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    for word in text
        .split(|c: char| !secretish(c))
        .filter(|w| w.len() >= 16)
    {
        for candidate in [word, word.trim_matches(|c| c == '.' || c == '=')] {
            assert!(
                !digests.contains(&sha256(candidate)),
                "{label} leaks a hashed secret `{candidate}`"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_command_prints_a_secret_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = serve_simulator(dir.path()).await;
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("manifests")).unwrap();
    // The manifests of the every-kind estate, pointed at the served simulator.
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    for file in ["salt.yaml", "vcd.yaml", "vms.yaml"] {
        std::fs::copy(quickstart.join(file), work.join("manifests").join(file)).unwrap();
    }
    std::fs::write(
        work.join("manifests/connections.yaml"),
        support::connections(&url, "salt-cloud"),
    )
    .unwrap();
    std::fs::write(
        work.join("manifests/sddc.yaml"),
        "kind: Sddc\nname: audited\nspec: { region: us-west-2, provider: ZEROCLOUD, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal }\n",
    )
    .unwrap();

    let mut texts: Vec<(String, String)> = Vec::new();
    let mut run = async |args: &[&str], expect: &[i32]| {
        let output = command_in(&work, args).output().await.unwrap();
        let code = output.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            expect.contains(&code),
            "{args:?} exited {code}\n{stdout}\n{stderr}"
        );
        texts.push((format!("stdout of {args:?}"), stdout));
        texts.push((format!("stderr of {args:?}"), stderr));
    };
    run(&["-vvv", "validate", "manifests"], &[0]).await;
    run(&["-vvv", "graph", "manifests"], &[0]).await;
    for (format, out) in [("text", "p.text"), ("json", "p.json"), ("markdown", "p.md")] {
        run(
            &[
                "-vvv",
                "plan",
                "--format",
                format,
                "--out",
                out,
                "manifests",
            ],
            &[0],
        )
        .await;
    }
    run(&["-vvv", "apply", "p.text"], &[0]).await;
    run(&["-vvv", "plan", "--detailed-exitcode", "manifests"], &[0]).await;
    run(
        &["-vvv", "apply", "--json", "--auto-approve", "manifests"],
        &[0],
    )
    .await;
    // Lose the token file, then replace the token: the new secret is written, never printed.
    std::fs::remove_file(work.join("manifests/.secrets/ci-pipeline-token.json")).unwrap();
    run(&["-vvv", "plan", "manifests"], &[0]).await;
    run(
        &[
            "-vvv",
            "apply",
            "--auto-approve",
            "--recreate-lost-secrets",
            "manifests",
        ],
        &[0],
    )
    .await;
    for connection in ["vmc", "salt-cloud", "vcd", "vcenter"] {
        run(
            &["-vvv", "export", "--connection", connection, "manifests"],
            &[0],
        )
        .await;
        run(
            &[
                "-vvv",
                "export",
                "--connection",
                connection,
                "--out",
                "exported",
                "manifests",
            ],
            &[0],
        )
        .await;
    }
    for entry in std::fs::read_dir(work.join("exported")).unwrap() {
        let path = entry.unwrap().path();
        texts.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    for file in ["p.text", "p.json", "p.md"] {
        texts.push((
            file.to_string(),
            std::fs::read_to_string(work.join(file)).unwrap(),
        ));
    }

    // A query string on a URL never shows up in an error.
    let broken = tempfile::tempdir().unwrap();
    for (i, bad) in [
        "http://127.0.0.1:9/vsphere?session=query-secret-5".to_string(),
        format!("{url}/x?api_key=query-secret-6"),
        "http://user:userinfo-secret-7@127.0.0.1:9".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let dir = broken.path().join(format!("case-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("vm.yaml"),
            format!(
                "kind: Connection\nname: vcenter\nspec: {{ type: vsphere, url: \"{bad}\", username: u, password: {{ env: SEXTANT_T_VSPHERE_PASSWORD }}, max_retries: 0 }}\n---\nkind: VirtualMachine\nname: web-01\nspec: {{ power_state: POWERED_ON }}\n"
            ),
        )
        .unwrap();
        let output = command_in(&dir, &["-vvv", "plan", "vm.yaml"])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{bad}\n{stdout}\n{stderr}");
        for secret in ["query-secret-5", "query-secret-6", "userinfo-secret-7"] {
            assert!(!stderr.contains(secret), "{bad}: {stderr}");
            assert!(!stdout.contains(secret), "{bad}: {stdout}");
        }
    }

    let state = admin(&url, reqwest::Method::GET, "/_sim/state", None).await;
    let (mut values, digests) = issued_secrets(&state);
    assert!(
        values.len() > 6,
        "the simulator issued no session or token: {values:?}"
    );
    assert!(!digests.is_empty(), "no hashed secret to look for");
    let token_file = work.join("manifests/.secrets/ci-pipeline-token.json");
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&token_file).unwrap()).unwrap();
    values.insert(saved["refresh_token"].as_str().unwrap().to_string());

    let pid = server.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let mut log = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .await
        .unwrap();
    let status = server.wait().await.unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    texts.push(("the simulator's log".to_string(), log));

    for (label, text) in &texts {
        assert_clean(label, text, &values, &digests);
    }
}

//! Scale benchmarks (issue 8) and simulator capacity (issue 3 item 9).
//!
//! `cargo bench --bench scale [FILTER...]` starts the simulator in this process with injected
//! latency (20 ms per request unless `--latency-ms N`), seeds its state directly, writes
//! manifests to a temporary directory and runs each client-side scenario in a child process
//! (this binary with `--child`), so the CPU time and peak RSS it reports belong to sextant's
//! own work, not to the simulator. Request counts come from the simulator's `/_sim/counters`.
//! A baseline that refreshes one resource per request at parallelism 10 (what Terraform does)
//! runs against the same simulator, for the ratio of requests and wall time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use sextant::apply::{self, ApplyOptions, Event, EventSink};
use sextant::model::{SecretSource, SecretValue, SystemType};
use sextant::plan::{self, PlanOptions, ProviderSet};
use sextant::providers::raas::{RaasProvider, RpcCall};
use sextant::sim::raas::{
    JOB_PERMISSIONS, Job, Owner, TARGET_PERMISSIONS, TargetGroup, default_access,
};
use sextant::sim::{SimConfig, SimHandle};

#[path = "support/plan_fixture.rs"]
mod plan_fixture;

/// The allocator of the `sextant` binary, so that the client side is measured as it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Page size cap of the simulated RaaS list methods.
const RAAS_PAGE: u64 = sextant::sim::raas::MAX_PAGE_LIMIT;
/// Org every simulated CSP token sees.
const ORG: &str = sextant::sim::csp::DEFAULT_ORG_ID;
/// Parallelism of plan listings and of apply, as the CLI defaults it.
const PARALLELISM: usize = 10;

/// One line of the table.
#[derive(Default)]
struct Row {
    scenario: String,
    resources: usize,
    requests: Option<u64>,
    minimum: Option<u64>,
    wall: Duration,
    cpu: Option<Duration>,
    rss_kb: Option<u64>,
    note: String,
}

/// What a child process reports on its stdout (one JSON line).
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct ChildReport {
    load_ms: f64,
    wall_ms: f64,
    cpu_ms: f64,
    rss_kb: u64,
    requests: u64,
    /// Requests by API.
    by_api: BTreeMap<String, u64>,
    planned: BTreeMap<String, usize>,
    polls: u64,
    failed: usize,
    /// Peak RSS (kB) reached by the end of each stage: load, live, plan.
    stage_rss_kb: Vec<(String, u64)>,
}

impl ChildReport {
    fn mark_stage(&mut self, name: &str) {
        self.stage_rss_kb
            .push((name.to_string(), peak_rss_kb().unwrap_or(0)));
    }
}

struct Settings {
    latency_ms: u64,
    filters: Vec<String>,
}

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child_main(&args[1..]);
    }
    let mut settings = Settings {
        latency_ms: 20,
        filters: Vec::new(),
    };
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--latency-ms" => {
                settings.latency_ms = iter.next().ok_or("`--latency-ms` needs a value")?.parse()?;
            }
            // `cargo bench` passes `--bench`; other flags belong to other harnesses.
            flag if flag.starts_with("--") => {}
            filter => settings.filters.push(filter.to_string()),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_all(&settings))
}

type Scenario = (&'static str, usize);

/// Every scenario, in the order they run.
const SCENARIOS: &[&str] = &[
    "plan-100",
    "plan-10k",
    "plan-10k-drift1%",
    "plan-100k-rss",
    "load-10k-files",
    "apply-1000-jobs",
    "sddc-create-2h",
    "diff-order-100k",
    "diff-order-100k-one-target",
    "executor-1k-instant",
    "executor-10k-instant",
    "sim-capacity",
    "load-10k-env",
    "drift-10k",
    "drift-10k-pending",
    "load-10k-git",
];

async fn run_all(settings: &Settings) -> BenchResult<()> {
    // A filter that names a scenario exactly selects only it; others select by substring.
    let wanted = |name: &str| {
        settings.filters.is_empty()
            || settings.filters.iter().any(|f| {
                name == f || (!SCENARIOS.contains(&f.as_str()) && name.contains(f.as_str()))
            })
    };
    print_header(settings);
    let mut rows = Table;
    let plans: [(&str, usize, usize, usize, f64); 4] = [
        ("plan-100", 80, 10, 10, 0.0),
        ("plan-10k", 10_000, 1_000, 100, 0.0),
        ("plan-10k-drift1%", 10_000, 1_000, 100, 0.01),
        ("plan-100k-rss", 90_000, 9_900, 100, 0.0),
    ];
    for (name, jobs, targets, sddcs, drift) in plans {
        if wanted(name) {
            rows.extend(plan_scenario(settings, name, (jobs, targets, sddcs), drift).await?);
        }
    }
    if wanted("load-10k-files") {
        rows.push(load_files_scenario("load-10k-files", 10_000).await?);
    }
    if wanted("apply-1000-jobs") {
        rows.push(apply_jobs_scenario(settings, "apply-1000-jobs", 1_000).await?);
    }
    if wanted("sddc-create-2h") {
        rows.push(sddc_create_scenario("sddc-create-2h").await?);
    }
    for (name, n) in [
        ("diff-order-100k", 100_000usize),
        ("diff-order-100k-one-target", 100_000),
    ] as [Scenario; 2]
    {
        if wanted(name) {
            rows.push(diff_order_scenario(name, n)?);
        }
    }
    for n in [1_000usize, 10_000] {
        let name = format!("executor-{}k-instant", n / 1000);
        if wanted(&name) {
            rows.push(executor_scenario(&name, n).await?);
        }
    }
    if wanted("load-10k-env") {
        rows.push(load_environment_scenario(
            "load-10k-env",
            (10_000, 1_000, 100),
        )?);
    }
    if wanted("sim-capacity") {
        rows.push(sim_capacity_scenario().await?);
    }
    if wanted("drift-10k") {
        rows.extend(drift_scenario(settings, "drift-10k", (10_000, 1_000, 100), false).await?);
    }
    if wanted("drift-10k-pending") {
        rows.extend(
            drift_scenario(settings, "drift-10k-pending", (10_000, 1_000, 100), true).await?,
        );
    }
    if wanted("load-10k-git") {
        rows.extend(load_git_scenario("load-10k-git", 10_000)?);
    }
    Ok(())
}

/// Runs `git ARGS` in `dir`.
fn git(dir: &Path, args: &[&str]) -> BenchResult<()> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// Makes `dir` a Git repository whose one commit holds everything in it, tagged `tag`.
fn commit_all(dir: &Path, tag: &str) -> BenchResult<()> {
    git(dir, &["init", "-q"])?;
    git(dir, &["config", "user.name", "bench"])?;
    git(dir, &["config", "user.email", "bench@example.com"])?;
    git(dir, &["config", "commit.gpgsign", "false"])?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "manifests"])?;
    git(dir, &["tag", tag])
}

/// `sextant drift --baseline TAG` against `sextant plan` on the estate of `plan-10k`, both
/// the binary from start to exit, runs interleaved, medians shown: requests and wall time.
/// With `pending`, one job's description changed in a commit after the tag, so the
/// manifests at the tag are read from Git and loaded too (without, they are the working
/// tree's and Git only confirms it).
async fn drift_scenario(
    settings: &Settings,
    name: &str,
    shape: (usize, usize, usize),
    pending: bool,
) -> BenchResult<Vec<Row>> {
    let sim = start_sim(settings.latency_ms, 1.0).await?;
    seed(&sim, shape, 0.0).await?;
    let dir = tempfile::tempdir()?;
    write_manifests(dir.path(), &sim.base_url, shape)?;
    commit_all(dir.path(), "sextant/applied/bench")?;
    if pending {
        let jobs = dir.path().join("jobs.yaml");
        let text = std::fs::read_to_string(&jobs)?.replacen(
            &format!("desc: {}", job_desc(0)),
            "desc: changed since the apply",
            1,
        );
        std::fs::write(&jobs, text)?;
        git(
            dir.path(),
            &["commit", "-q", "-a", "-m", "one pending change"],
        )?;
    }
    if let Ok(seconds) = std::env::var("SEXTANT_BENCH_HOLD") {
        // For profiling by hand: keep the estate and the simulator up for a while.
        let seconds: u64 = seconds.parse().unwrap_or(600);
        eprintln!(
            "holding {seconds} s: estate in {}, SEXTANT_BENCH_TOKEN=bench-api-token",
            dir.path().display()
        );
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }
    let resources = shape.0 + shape.1 + shape.2;
    let commands: [(&str, Vec<&str>); 2] = [
        ("plan", vec!["plan", "--no-color"]),
        (
            "drift",
            vec!["drift", "--no-color", "--baseline", "sextant/applied/bench"],
        ),
    ];
    let mut runs: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut requests: BTreeMap<&str, u64> = BTreeMap::new();
    let mut said: BTreeMap<&str, String> = BTreeMap::new();
    for _ in 0..BINARY_RUNS {
        for (label, args) in &commands {
            reset_counters(&sim.base_url).await?;
            let started = Instant::now();
            let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
                .args(args)
                .arg(".")
                .current_dir(dir.path())
                .env("SEXTANT_BENCH_TOKEN", "bench-api-token")
                .output()
                .await?;
            let wall = started.elapsed();
            if !matches!(run.status.code(), Some(0 | 2)) {
                return Err(format!(
                    "`sextant {label}` failed with {}: {}",
                    run.status,
                    String::from_utf8_lossy(&run.stderr)
                )
                .into());
            }
            runs.entry(label).or_default().push(wall);
            requests.insert(label, counters(&sim.base_url).await?);
            let stdout = String::from_utf8_lossy(&run.stdout);
            let last = stdout
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            said.insert(label, last.trim().to_string());
        }
    }
    sim.stop().await;
    let median = |label: &str| {
        let mut walls = runs.get(label).cloned().unwrap_or_default();
        walls.sort();
        walls.get(walls.len() / 2).copied().unwrap_or_default()
    };
    let (plan_wall, drift_wall) = (median("plan"), median("drift"));
    let (plan_requests, drift_requests) = (requests["plan"], requests["drift"]);
    Ok(vec![
        Row {
            scenario: format!("{name} plan"),
            resources,
            requests: Some(plan_requests),
            minimum: None,
            wall: plan_wall,
            cpu: None,
            rss_kb: None,
            note: format!(
                "`sextant plan .` in the Git checkout, median of {BINARY_RUNS} runs interleaved with drift's; it said: {}",
                said["plan"]
            ),
        },
        Row {
            scenario: name.to_string(),
            resources,
            requests: Some(drift_requests),
            minimum: Some(plan_requests),
            wall: drift_wall,
            cpu: None,
            rss_kb: None,
            note: format!(
                "`sextant drift --baseline sextant/applied/bench .` ({}, listings scanned whole for unmanaged objects), median of {BINARY_RUNS} runs: {:+} requests and {:+.1} % wall time against plan (budget: same requests, ≤ +15 %); it said: {}",
                if pending {
                    "one commit since the tag: the manifests at the tag read from Git and loaded beside the working tree's"
                } else {
                    "nothing changed since the tag: Git confirms the manifests are the working tree's"
                },
                drift_requests as i64 - plan_requests as i64,
                (drift_wall.as_secs_f64() / plan_wall.as_secs_f64().max(1e-9) - 1.0) * 100.0,
                said["drift"]
            ),
        },
    ])
}

/// Reading 10,000 one-document manifests at a Git revision (`git ls-tree` and one `git
/// cat-file --batch` into a temporary tree, then the one loader) against reading them from
/// the working tree, in this process, medians of several runs.
fn load_git_scenario(name: &str, files: usize) -> BenchResult<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    write_manifests(dir.path(), "https://salt.example.com", (0, 0, 0))?;
    let jobs = dir.path().join("jobs");
    std::fs::create_dir_all(&jobs)?;
    for i in 0..files {
        std::fs::write(
            jobs.join(format!("job-{i:05}.yaml")),
            format!(
                "kind: SaltJob\nname: {}\nspec:\n  desc: {}\n  cmd: local\n  fun: test.ping\n  target: All Minions\n",
                job_name(i),
                job_desc(i)
            ),
        )?;
    }
    commit_all(dir.path(), "baseline")?;
    let paths = vec![dir.path().to_path_buf()];
    const RUNS: usize = 5;
    let mut tree_runs = Vec::new();
    let mut git_runs = Vec::new();
    let mut extract_runs = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let model = sextant::manifest::load(&paths).map_err(|d| d.to_string())?;
        tree_runs.push(started.elapsed());
        if model.resources.len() != files {
            return Err(format!("{name}: loaded {} resources", model.resources.len()).into());
        }
        let started = Instant::now();
        let tree = sextant::drift::baseline::BaselineTree::read("baseline", &paths)?;
        let extracted = started.elapsed();
        let model = sextant::manifest::load(&tree.paths).map_err(|d| d.to_string())?;
        drop(tree);
        git_runs.push(started.elapsed());
        extract_runs.push(extracted);
        if model.resources.len() != files {
            return Err(format!("{name}: loaded {} at the baseline", model.resources.len()).into());
        }
    }
    for runs in [&mut tree_runs, &mut git_runs, &mut extract_runs] {
        runs.sort();
    }
    let (tree, at_git, extract) = (
        tree_runs[RUNS / 2],
        git_runs[RUNS / 2],
        extract_runs[RUNS / 2],
    );
    Ok(vec![
        Row {
            scenario: format!("{name} working tree"),
            resources: files,
            wall: tree,
            note: format!(
                "manifest load of {files} one-document files from the working tree, median of {RUNS}"
            ),
            ..Row::default()
        },
        Row {
            scenario: name.to_string(),
            resources: files,
            wall: at_git,
            note: format!(
                "the same files read at a Git tag and loaded (`BaselineTree::read` + load, temporary tree removed), median of {RUNS}: {:+.3} s against the working tree (budget ≤ +0.3 s), of which writing the tree out of Git {:.3} s",
                at_git.as_secs_f64() - tree.as_secs_f64(),
                extract.as_secs_f64()
            ),
            ..Row::default()
        },
    ])
}

/// Prints each row as soon as its scenario finished.
struct Table;

impl Table {
    fn push(&mut self, row: Row) {
        print_row(&row);
    }

    fn extend(&mut self, rows: Vec<Row>) {
        for row in rows {
            print_row(&row);
        }
    }
}

fn print_header(settings: &Settings) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nlatency {} ms per request; machine: {} cores\n",
        settings.latency_ms,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        out,
        "| scenario | resources | requests | minimum | wall | CPU | peak RSS | notes |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    print!("{out}");
}

fn print_row(row: &Row) {
    let mut out = String::new();
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.3} s | {} | {} | {} |",
            row.scenario,
            row.resources,
            opt(row.requests),
            opt(row.minimum),
            row.wall.as_secs_f64(),
            row.cpu
                .map_or("-".to_string(), |c| format!("{:.3} s", c.as_secs_f64())),
            row.rss_kb.map_or("-".to_string(), |kb| format!(
                "{:.1} MB",
                kb as f64 / 1024.0
            )),
            row.note
        );
    }
    print!("{out}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

// ---------------------------------------------------------------------------------------
// Seeding and manifests

fn owner() -> Owner {
    Owner {
        username: "bench".into(),
        config_name: "internal".into(),
        uuid: "00000000-0000-4000-8000-000000000001".into(),
    }
}

fn target_name(i: usize) -> String {
    format!("tgt-{i:05}")
}

fn job_name(i: usize) -> String {
    format!("job-{i:06}")
}

fn target_uuid(i: usize) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("tgt-{i}").as_bytes()).to_string()
}

fn job_uuid(i: usize) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("job-{i}").as_bytes()).to_string()
}

fn target_group(i: usize) -> TargetGroup {
    let mut tgt = serde_json::Map::new();
    tgt.insert(
        "*".into(),
        json!({"tgt_type": "glob", "tgt": format!("web-{i}-*")}),
    );
    TargetGroup {
        uuid: target_uuid(i),
        name: target_name(i),
        desc: format!("target {i}"),
        tgt,
        pillars: Vec::new(),
        owner: owner(),
        access: default_access(TARGET_PERMISSIONS),
    }
}

fn job_desc(i: usize) -> String {
    format!("job {i}")
}

fn job(i: usize, targets: usize, drifted: bool) -> Job {
    Job {
        uuid: job_uuid(i),
        name: job_name(i),
        desc: if drifted {
            format!("changed by hand {i}")
        } else {
            job_desc(i)
        },
        cmd: Some("local".into()),
        fun: Some("test.ping".into()),
        arg: json!({"arg": [], "kwarg": {}}),
        masters: Vec::new(),
        tgt_uuid: Some(target_uuid(i % targets)),
        owner: owner(),
        access: default_access(JOB_PERMISSIONS),
    }
}

fn sddc_name(i: usize) -> String {
    format!("sddc-{i:03}")
}

async fn start_sim(latency_ms: u64, time_scale: f64) -> BenchResult<SimHandle> {
    let mut config = SimConfig {
        time_scale,
        seed: 8,
        ..SimConfig::default()
    };
    config.faults.latency_ms = latency_ms;
    Ok(sextant::sim::start(config).await?)
}

/// Puts `targets` groups, `jobs` jobs and `sddcs` READY SDDCs into the simulator.
async fn seed(
    sim: &SimHandle,
    (jobs, targets, sddcs): (usize, usize, usize),
    drift: f64,
) -> BenchResult<()> {
    let drift_every = if drift > 0.0 {
        (1.0 / drift).round() as usize
    } else {
        0
    };
    let seed: sextant::sim::vmc::VmcSeed = serde_json::from_value(json!({
        "sddcs": (0..sddcs).map(|i| json!({
            "name": sddc_name(i),
            "region": "US_WEST_2",
            "provider": "AWS",
            "num_hosts": 2,
        })).collect::<Vec<_>>()
    }))?;
    let vmc = sextant::sim::vmc::VmcState::from_seed(seed, ORG, chrono::Utc::now())?;
    let mut state = sim.sim.state.lock().await;
    state.vmc = vmc;
    for i in 0..targets {
        let group = target_group(i);
        state.raas.target_groups.insert(group.uuid.clone(), group);
    }
    for i in 0..jobs {
        let drifted = drift_every > 0 && i % drift_every == 0;
        let job = job(i, targets, drifted);
        state.raas.jobs.insert(job.uuid.clone(), job);
    }
    Ok(())
}

/// Objects of each list the planner reads, after seeding (the simulator's own estate
/// included).
async fn listed_counts(sim: &SimHandle) -> (u64, u64) {
    let state = sim.sim.state.lock().await;
    (
        state.raas.jobs.len() as u64,
        state.raas.target_groups.len() as u64,
    )
}

/// Writes manifests for `jobs` jobs (`job-N`, targeting `tgt-(N mod targets)`), `targets`
/// groups and `sddcs` SDDCs, with both connections pointed at the simulator at `url`.
fn write_manifests(
    dir: &Path,
    url: &str,
    (jobs, targets, sddcs): (usize, usize, usize),
) -> BenchResult<()> {
    std::fs::write(
        dir.join("connections.yaml"),
        format!(
            "kind: Connection\nname: vmc\nspec:\n  type: vmc\n  org_id: {ORG}\n  url: {url}\n  csp_url: {url}\n  api_token: {{ env: SEXTANT_BENCH_TOKEN }}\n---\nkind: Connection\nname: salt\nspec:\n  type: raas\n  url: {url}\n  csp_url: {url}\n  api_token: {{ env: SEXTANT_BENCH_TOKEN }}\n"
        ),
    )?;
    let mut text = String::new();
    for i in 0..targets {
        let _ = write!(
            text,
            "---\nkind: SaltTarget\nname: {}\nspec:\n  desc: target {i}\n  tgt:\n    \"*\":\n      tgt_type: glob\n      tgt: \"web-{i}-*\"\n",
            target_name(i)
        );
    }
    std::fs::write(dir.join("targets.yaml"), &text)?;
    text.clear();
    for i in 0..jobs {
        let _ = write!(
            text,
            "---\nkind: SaltJob\nname: {}\nspec:\n  desc: {}\n  cmd: local\n  fun: test.ping\n  target: {}\n",
            job_name(i),
            job_desc(i),
            target_name(i % targets.max(1))
        );
    }
    std::fs::write(dir.join("jobs.yaml"), &text)?;
    text.clear();
    for i in 0..sddcs {
        let _ = write!(
            text,
            "---\nkind: Sddc\nname: {}\nspec:\n  region: us-west-2\n  provider: AWS\n  num_hosts: 2\n  account_link:\n    connected_account_id: bench-aws-account\n    customer_subnet_ids: [subnet-bench]\n",
            sddc_name(i)
        );
    }
    std::fs::write(dir.join("sddcs.yaml"), &text)?;
    Ok(())
}

/// Writes the estate of [`write_manifests`] as a shared base plus an environment: every
/// document names, describes or sizes itself through `${var.…}` (an SDDC's `num_hosts` is a
/// typed value), and a patch sets fields of one SDDC; the final documents equal the flat
/// ones.
fn write_environment_manifests(
    dir: &Path,
    url: &str,
    (jobs, targets, sddcs): (usize, usize, usize),
) -> BenchResult<()> {
    let base = dir.join("base");
    let env = dir.join("envs/bench");
    std::fs::create_dir_all(&base)?;
    std::fs::create_dir_all(&env)?;
    std::fs::write(
        base.join("connections.yaml"),
        "kind: Connection\nname: vmc\nspec:\n  type: vmc\n  org_id: ${var.org}\n  url: ${var.url}\n  csp_url: ${var.url}\n  api_token: { env: SEXTANT_BENCH_TOKEN }\n---\nkind: Connection\nname: salt\nspec:\n  type: raas\n  url: ${var.url}\n  csp_url: ${var.url}\n  api_token: { env: SEXTANT_BENCH_TOKEN }\n",
    )?;
    let mut text = String::new();
    for i in 0..targets {
        let _ = write!(
            text,
            "---\nkind: SaltTarget\nname: ${{var.target}}-{i:05}\nspec:\n  desc: ${{var.target_word}} {i}\n  tgt:\n    \"*\":\n      tgt_type: ${{var.tgt_type}}\n      tgt: \"${{var.web}}-{i}-*\"\n"
        );
    }
    std::fs::write(base.join("targets.yaml"), &text)?;
    text.clear();
    for i in 0..jobs {
        let _ = write!(
            text,
            "---\nkind: SaltJob\nname: ${{var.job}}-{i:06}\nspec:\n  desc: ${{var.job}} {i}\n  cmd: ${{var.cmd}}\n  fun: ${{var.fun}}\n  target: ${{var.target}}-{:05}\n",
            i % targets.max(1)
        );
    }
    std::fs::write(base.join("jobs.yaml"), &text)?;
    text.clear();
    for i in 0..sddcs {
        let _ = write!(
            text,
            "---\nkind: Sddc\nname: ${{var.sddc}}-{i:03}\nspec:\n  region: ${{var.region}}\n  provider: AWS\n  num_hosts: ${{var.hosts}}\n  account_link: ${{var.account_link}}\n"
        );
    }
    std::fs::write(base.join("sddcs.yaml"), &text)?;
    std::fs::write(
        env.join("env.yaml"),
        format!(
            "kind: Environment\nname: bench\nspec:\n  include: [../../base]\n  values:\n    org: {ORG}\n    url: {url}\n    target: tgt\n    target_word: target\n    tgt_type: glob\n    web: web\n    job: job\n    cmd: local\n    fun: test.ping\n    sddc: sddc\n    region: us-west-2\n    hosts: 2\n    account_link:\n      connected_account_id: bench-aws-account\n      customer_subnet_ids: [subnet-bench]\n  patches:\n    - target: Sddc/sddc-000\n      spec: {{num_hosts: 2, provider: AWS}}\n"
        ),
    )?;
    Ok(())
}

/// Loads of the 10,000-resource estate written flat and as base + environment, alternating,
/// in this process: medians of the wall time, and the ratio (issue 19: at most 10 % more).
fn load_environment_scenario(name: &str, shape: (usize, usize, usize)) -> BenchResult<Row> {
    const RUNS: usize = 9;
    let url = "https://sim.invalid";
    let flat = tempfile::tempdir()?;
    write_manifests(flat.path(), url, shape)?;
    let layered = tempfile::tempdir()?;
    write_environment_manifests(layered.path(), url, shape)?;
    let env_dir = layered.path().join("envs/bench");
    let specs = |model: &sextant::model::Model| -> BTreeMap<String, String> {
        model
            .resources
            .iter()
            .map(|(address, r)| (address.to_string(), r.spec.as_str().to_string()))
            .collect()
    };
    let flat_model = sextant::manifest::load(&[flat.path().to_path_buf()])
        .map_err(|d| format!("flat manifests: {}", d.render(false)))?;
    let env_model = sextant::manifest::load(std::slice::from_ref(&env_dir))
        .map_err(|d| format!("environment manifests: {}", d.render(false)))?;
    if specs(&flat_model) != specs(&env_model)
        || flat_model.connections.len() != env_model.connections.len()
    {
        return Err("the environment does not load the same resources as the flat estate".into());
    }
    let resources = flat_model.resources.len();
    drop((flat_model, env_model));
    let mut flat_times = Vec::new();
    let mut env_times = Vec::new();
    for _ in 0..RUNS {
        for (dir, times) in [
            (flat.path().to_path_buf(), &mut flat_times),
            (env_dir.clone(), &mut env_times),
        ] {
            let started = Instant::now();
            let model =
                sextant::manifest::load(std::slice::from_ref(&dir)).map_err(|d| d.render(false))?;
            times.push(started.elapsed());
            drop(model);
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (flat_median, env_median) = (median(&mut flat_times), median(&mut env_times));
    let ratio = env_median.as_secs_f64() / flat_median.as_secs_f64() - 1.0;
    Ok(Row {
        scenario: name.to_string(),
        resources,
        wall: env_median,
        note: format!(
            "median of {RUNS}: flat {:.3} s ({:.3}–{:.3}), base + environment {:.3} s ({:.3}–{:.3}): {:+.1} % (target ≤ +10 %)",
            flat_median.as_secs_f64(),
            flat_times[0].as_secs_f64(),
            flat_times[RUNS - 1].as_secs_f64(),
            env_median.as_secs_f64(),
            env_times[0].as_secs_f64(),
            env_times[RUNS - 1].as_secs_f64(),
            ratio * 100.0
        ),
        ..Row::default()
    })
}

/// Runs this binary as `--child KIND` against the simulator at `url`.
async fn run_child(kind: &str, url: &str, dir: &Path, extra: &[&str]) -> BenchResult<ChildReport> {
    let exe = std::env::current_exe()?;
    // `SEXTANT_BENCH_CHILD_WRAPPER="valgrind --tool=massif"` (or `perf record`) runs the
    // child under a profiler.
    let wrapper = std::env::var("SEXTANT_BENCH_CHILD_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut command = tokio::process::Command::new(program);
            command.args(words).arg(exe);
            command
        }
        None => tokio::process::Command::new(exe),
    };
    let output = command
        .arg("--child")
        .arg(kind)
        .arg(url)
        .arg(dir)
        .args(extra)
        .env("SEXTANT_BENCH_TOKEN", "bench-api-token")
        .output()
        .await?;
    if !output.status.success() {
        return Err(format!(
            "child `{kind}` failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let text = String::from_utf8(output.stdout)?;
    let line = text
        .lines()
        .last()
        .ok_or_else(|| format!("child `{kind}` printed nothing"))?;
    Ok(serde_json::from_str(line)?)
}

fn describe_plan(report: &ChildReport) -> String {
    let planned: Vec<String> = report
        .planned
        .iter()
        .map(|(action, n)| format!("{n} {action}"))
        .collect();
    planned.join(", ")
}

async fn plan_scenario(
    settings: &Settings,
    name: &str,
    shape: (usize, usize, usize),
    drift: f64,
) -> BenchResult<Vec<Row>> {
    let sim = start_sim(settings.latency_ms, 1.0).await?;
    seed(&sim, shape, drift).await?;
    let dir = tempfile::tempdir()?;
    write_manifests(dir.path(), &sim.base_url, shape)?;
    let (jobs_listed, targets_listed) = listed_counts(&sim).await;
    // Auth: two CSP token exchanges (one per connection) and one RaaS login; listings: the
    // job and target pages, the SDDC list and the VMC task list.
    let minimum = 3 + jobs_listed.div_ceil(RAAS_PAGE) + targets_listed.div_ceil(RAAS_PAGE) + 1 + 1;
    let resources = shape.0 + shape.1 + shape.2;
    let sim_cpu_before = cpu_time().unwrap_or_default();
    let report = run_child("plan", &sim.base_url, dir.path(), &[]).await?;
    // This process is the simulator while the child plans (manifest load included).
    let sim_cpu = cpu_time()
        .unwrap_or_default()
        .saturating_sub(sim_cpu_before);
    let round_trips = report.wall_ms / settings.latency_ms.max(1) as f64;
    let mut rows = vec![Row {
        scenario: name.to_string(),
        resources,
        requests: Some(report.requests),
        minimum: Some(minimum),
        wall: Duration::from_secs_f64(report.wall_ms / 1000.0),
        cpu: Some(Duration::from_secs_f64(report.cpu_ms / 1000.0)),
        rss_kb: Some(report.rss_kb),
        note: format!(
            "plan only (manifest load {:.2} s extra); ≈{round_trips:.1} round trips; simulator CPU {:.2} s; {}; peak RSS by stage: {}",
            report.load_ms / 1000.0,
            sim_cpu.as_secs_f64(),
            describe_plan(&report),
            report
                .stage_rss_kb
                .iter()
                .map(|(stage, kb)| format!("{stage} {} MB", kb / 1024))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }];
    if !name.contains("rss") {
        rows.push(binary_plan_row(name, resources, minimum, &sim.base_url, dir.path()).await?);
        let before = counters(&sim.base_url).await?;
        let started = Instant::now();
        let refreshed = baseline_refresh(&sim, shape).await?;
        let wall = started.elapsed();
        let requests = counters(&sim.base_url).await? - before;
        rows.push(Row {
            scenario: format!("{name} baseline"),
            resources,
            requests: Some(requests),
            minimum: Some(minimum),
            wall,
            cpu: None,
            rss_kb: None,
            note: format!(
                "one read per resource, parallelism {PARALLELISM} ({refreshed} refreshed); {:.0}× the requests, {:.0}× the wall time of sextant",
                requests as f64 / report.requests.max(1) as f64,
                wall.as_secs_f64() * 1000.0 / report.wall_ms.max(1.0)
            ),
        });
    }
    sim.stop().await;
    Ok(rows)
}

/// Runs of the binary per plan scenario.
const BINARY_RUNS: usize = 7;

/// The `sextant` binary itself, timed from start to exit: `sextant plan DIR` with the
/// connections pointed at the simulator (process start, manifest load, plan and rendering).
async fn binary_plan_row(
    name: &str,
    resources: usize,
    minimum: u64,
    url: &str,
    manifests: &Path,
) -> BenchResult<Row> {
    // Several runs, the median shown: one run on a shared machine varies by ±30 %.
    let mut runs: Vec<(Duration, Duration)> = Vec::new();
    let mut requests = 0;
    let mut output = None;
    for _ in 0..BINARY_RUNS {
        reset_counters(url).await?;
        let children_before = children_cpu_time().unwrap_or_default();
        let started = Instant::now();
        let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
            .args(["plan", "--no-color", "--detailed-exitcode"])
            .arg(manifests)
            .env("SEXTANT_BENCH_TOKEN", "bench-api-token")
            .output()
            .await?;
        let wall = started.elapsed();
        let cpu = children_cpu_time()
            .unwrap_or_default()
            .saturating_sub(children_before);
        requests = counters(url).await?;
        // 0: no changes, 2: changes (drift scenarios).
        if !matches!(run.status.code(), Some(0 | 2)) {
            return Err(format!(
                "`sextant plan` failed with {}: {}",
                run.status,
                String::from_utf8_lossy(&run.stderr)
            )
            .into());
        }
        runs.push((wall, cpu));
        output = Some(run);
    }
    let output = output.ok_or("no run")?;
    runs.sort();
    let (wall, cpu) = runs[runs.len() / 2];
    let (fastest, slowest) = (runs[0].0, runs[runs.len() - 1].0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(Row {
        scenario: format!("{name} binary"),
        resources,
        requests: Some(requests),
        minimum: Some(minimum),
        wall,
        cpu: Some(cpu),
        rss_kb: None,
        note: format!(
            "`sextant plan DIR` from start to exit (manifest load and rendering included), median of {BINARY_RUNS} runs ({:.3}–{:.3} s); it said: {summary}",
            fastest.as_secs_f64(),
            slowest.as_secs_f64()
        ),
    })
}

async fn counters(url: &str) -> BenchResult<u64> {
    Ok(counters_by_api(url)
        .await?
        .get("total")
        .copied()
        .unwrap_or(0))
}

async fn counters_by_api(url: &str) -> BenchResult<BTreeMap<String, u64>> {
    let value: Value = reqwest::get(format!("{url}/_sim/counters"))
        .await?
        .json()
        .await?;
    Ok(value
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default())
}

/// Terraform's way: one read per resource (a RaaS `get_jobs`/`get_target_group` by uuid, a
/// VMC `GET …/sddcs/{id}`), ten at a time, over raw HTTP for VMC and the RaaS RPC transport.
async fn baseline_refresh(
    sim: &SimHandle,
    (jobs, targets, sddcs): (usize, usize, usize),
) -> BenchResult<usize> {
    let url = &sim.base_url;
    let mut connection = bench_connection("salt", SystemType::Raas, url);
    connection.config.max_concurrency = PARALLELISM;
    let raas = RaasProvider::new(&connection)?;
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{url}{}", sextant::sim::csp::AUTHORIZE_PATH))
        .form(&[("refresh_token", "bench-api-token")])
        .send()
        .await?
        .json()
        .await?;
    let access = token
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or("no access token")?
        .to_string();
    let sddc_ids: Vec<String> = {
        let state = sim.sim.state.lock().await;
        state.vmc.sddcs.keys().take(sddcs).cloned().collect()
    };
    enum Read {
        Job(usize),
        Target(usize),
        Sddc(String),
    }
    let reads = (0..jobs)
        .map(Read::Job)
        .chain((0..targets).map(Read::Target))
        .chain(sddc_ids.into_iter().map(Read::Sddc));
    let results: Vec<BenchResult<()>> = stream::iter(reads)
        .map(|read| {
            let (raas, http, access) = (&raas, &http, &access);
            async move {
                match read {
                    Read::Job(i) => {
                        let call =
                            RpcCall::new("job", "get_jobs", json!({"job_uuid": job_uuid(i)}));
                        raas.session()
                            .call(&call, true)
                            .await?
                            .map_err(|e| e.describe())?;
                    }
                    Read::Target(i) => {
                        let call = RpcCall::new(
                            "tgt",
                            "get_target_group",
                            json!({"tgt_uuid": target_uuid(i)}),
                        );
                        raas.session()
                            .call(&call, true)
                            .await?
                            .map_err(|e| e.describe())?;
                    }
                    Read::Sddc(id) => {
                        let response = http
                            .get(format!("{url}/vmc/api/orgs/{ORG}/sddcs/{id}"))
                            .header("csp-auth-token", access.as_str())
                            .send()
                            .await?;
                        if !response.status().is_success() {
                            return Err(format!("GET sddc {id}: {}", response.status()).into());
                        }
                        response.bytes().await?;
                    }
                }
                Ok(())
            }
        })
        .buffer_unordered(PARALLELISM)
        .collect()
        .await;
    let refreshed = results.len();
    for result in results {
        result?;
    }
    Ok(refreshed)
}

fn bench_connection(name: &str, system: SystemType, url: &str) -> sextant::model::Connection {
    let mut config = sextant::model::ConnectionConfig::with_defaults(system);
    config.url = url.to_string();
    config.csp_url = url.to_string();
    config.org_id = Some(ORG.to_string());
    config.api_token = Some(SecretSource::Fixed(SecretValue::new("bench-api-token")));
    sextant::model::Connection {
        name: name.to_string(),
        config,
        location: Default::default(),
    }
}

async fn apply_jobs_scenario(settings: &Settings, name: &str, jobs: usize) -> BenchResult<Row> {
    let sim = start_sim(settings.latency_ms, 1.0).await?;
    let targets = 100;
    // The targets exist; the jobs are new.
    seed(&sim, (0, targets, 0), 0.0).await?;
    let dir = tempfile::tempdir()?;
    write_manifests(dir.path(), &sim.base_url, (jobs, targets, 0))?;
    let report = run_child("apply", &sim.base_url, dir.path(), &[]).await?;
    let created = {
        let state = sim.sim.state.lock().await;
        state
            .raas
            .jobs
            .values()
            .filter(|j| j.name.starts_with("job-"))
            .count()
    };
    sim.stop().await;
    let round_trips = report.wall_ms / settings.latency_ms.max(1) as f64;
    let budget = 1.5 * jobs.div_ceil(PARALLELISM) as f64;
    Ok(Row {
        scenario: name.to_string(),
        resources: jobs + targets,
        requests: Some(report.requests),
        // One save per job (or one batched request per 100 saves) is the floor.
        minimum: Some(jobs.div_ceil(sextant::providers::raas::BATCH_SIZE) as u64),
        wall: Duration::from_secs_f64(report.wall_ms / 1000.0),
        cpu: Some(Duration::from_secs_f64(report.cpu_ms / 1000.0)),
        rss_kb: Some(report.rss_kb),
        note: format!(
            "apply only, parallelism {PARALLELISM}; ≈{round_trips:.1} round trips (target ≤ {budget:.0}); {created} jobs on the server, {} failed",
            report.failed
        ),
    })
}

/// A 2-hour SDDC create compressed 1440× (5 s), with the executor's poll delays compressed by
/// the same factor; latency is not injected (20 ms would be 29 simulated seconds).
/// Loading `files` manifest files of one document each (a SaltJob), plus the connection: the
/// cost of a file must be that of its document, not of a per-file buffer.
async fn load_files_scenario(name: &str, files: usize) -> BenchResult<Row> {
    let dir = tempfile::tempdir()?;
    write_manifests(dir.path(), "https://salt.example.com", (0, 0, 0))?;
    let jobs = dir.path().join("jobs");
    std::fs::create_dir_all(&jobs)?;
    for i in 0..files {
        std::fs::write(
            jobs.join(format!("job-{i:05}.yaml")),
            format!(
                "kind: SaltJob\nname: {}\nspec:\n  desc: {}\n  cmd: local\n  fun: test.ping\n  target: All Minions\n",
                job_name(i),
                job_desc(i)
            ),
        )?;
    }
    let report = run_child("load", "-", dir.path(), &[]).await?;
    let loaded = report.planned.get("resources").copied().unwrap_or(0);
    if loaded != files {
        return Err(format!("{name}: loaded {loaded} resources, wrote {files}").into());
    }
    Ok(Row {
        scenario: name.to_string(),
        resources: files,
        requests: None,
        minimum: None,
        wall: Duration::from_secs_f64(report.wall_ms / 1000.0),
        cpu: Some(Duration::from_secs_f64(report.cpu_ms / 1000.0)),
        rss_kb: Some(report.rss_kb),
        note: format!(
            "manifest load only: {files} files of one document each (budget ≤ 2 s, ≤ 150 MB)"
        ),
    })
}

async fn sddc_create_scenario(name: &str) -> BenchResult<Row> {
    let scale = 1440.0;
    let sim = start_sim(0, scale).await?;
    let dir = tempfile::tempdir()?;
    write_manifests(dir.path(), &sim.base_url, (0, 0, 1))?;
    let report = run_child(
        "apply",
        &sim.base_url,
        dir.path(),
        &["--time-scale", "1440"],
    )
    .await?;
    let task_reads = report.by_api.get("vmc").copied().unwrap_or(0);
    sim.stop().await;
    Ok(Row {
        scenario: name.to_string(),
        resources: 1,
        requests: Some(report.requests),
        minimum: None,
        wall: Duration::from_secs_f64(report.wall_ms / 1000.0),
        cpu: Some(Duration::from_secs_f64(report.cpu_ms / 1000.0)),
        rss_kb: Some(report.rss_kb),
        note: format!(
            "time ×{scale}: {:.0} simulated minutes; {} polls (target ≤ 40); {task_reads} VMC requests; {} failed",
            report.wall_ms / 1000.0 * scale / 60.0,
            report.polls,
            report.failed
        ),
    })
}

/// Diff and dependency ordering of `n` resources in memory (no network).
fn diff_order_scenario(name: &str, n: usize) -> BenchResult<Row> {
    let one_target = name.contains("one-target");
    let (model, live) = plan_fixture::build(n, if one_target { 1 } else { n / 100 });
    let scope = plan::scope(&model, &[]);
    let cpu_before = cpu_time();
    let started = Instant::now();
    let plan = plan::make_plan(&model, &scope, &live, PlanOptions::default());
    let wall = started.elapsed();
    let cpu = cpu_time().map(|after| after.saturating_sub(cpu_before.unwrap_or_default()));
    Ok(Row {
        scenario: name.to_string(),
        resources: n,
        wall,
        cpu,
        note: format!(
            "make_plan (diff + order), one thread; {} changes; see `cargo bench --bench plan_core`",
            plan.changes.iter().filter(|c| c.is_change()).count()
        ),
        ..Row::default()
    })
}

/// A provider that creates instantly, to time the executor's own bookkeeping.
struct InstantProvider;

#[async_trait::async_trait]
impl sextant::providers::Provider for InstantProvider {
    async fn list(
        &self,
        _kind: sextant::model::Kind,
        _names: &[String],
    ) -> sextant::providers::ProviderResult<Vec<sextant::providers::LiveObject>> {
        Ok(Vec::new())
    }

    async fn create(
        &self,
        _request: &sextant::providers::CreateRequest<'_>,
    ) -> sextant::providers::ProviderResult<sextant::providers::Outcome> {
        Ok(sextant::providers::Outcome::done())
    }

    async fn update(
        &self,
        _request: &sextant::providers::UpdateRequest<'_>,
    ) -> sextant::providers::ProviderResult<sextant::providers::Outcome> {
        Ok(sextant::providers::Outcome::done())
    }

    async fn delete(
        &self,
        _request: &sextant::providers::DeleteRequest<'_>,
    ) -> sextant::providers::ProviderResult<sextant::providers::Outcome> {
        Ok(sextant::providers::Outcome::done())
    }

    async fn poll(
        &self,
        _task: &sextant::providers::TaskHandle,
    ) -> sextant::providers::ProviderResult<sextant::providers::TaskStatus> {
        Ok(sextant::providers::TaskStatus::Done)
    }
}

/// Apply of `n` creates (jobs over `n / 100` targets, all missing) through a provider that
/// answers at once: the executor's scheduling cost alone.
async fn executor_scenario(name: &str, n: usize) -> BenchResult<Row> {
    let (model, _) = plan_fixture::build(n, n / 100);
    let scope = plan::scope(&model, &[]);
    let plan = plan::make_plan(
        &model,
        &scope,
        &plan::LiveState::default(),
        PlanOptions::default(),
    );
    let provider: std::sync::Arc<dyn sextant::providers::Provider> =
        std::sync::Arc::new(InstantProvider);
    let providers = ProviderSet::from_providers(BTreeMap::from([("salt".to_string(), provider)]));
    let sink = PollCounter {
        polls: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    };
    let cpu_before = cpu_time();
    let started = Instant::now();
    let report = apply::apply(
        &plan,
        &model,
        &providers,
        &ApplyOptions::default(),
        &sink,
        CancellationToken::new(),
    )
    .await;
    let wall = started.elapsed();
    let cpu = cpu_time().map(|after| after.saturating_sub(cpu_before.unwrap_or_default()));
    Ok(Row {
        scenario: name.to_string(),
        resources: n,
        wall,
        cpu,
        note: format!(
            "apply through a provider that answers at once, parallelism 10; {} created",
            report.added
        ),
        ..Row::default()
    })
}

/// Requests per second the simulator serves with no injected latency while it holds
/// 100,000 objects: small RaaS reads (one job by uuid) from 32 concurrent callers.
async fn sim_capacity_scenario() -> BenchResult<Row> {
    let sim = start_sim(0, 240.0).await?;
    let (jobs, targets) = (90_000, 9_900);
    seed(&sim, (jobs, targets, 100), 0.0).await?;
    let objects = {
        let state = sim.sim.state.lock().await;
        state.raas.jobs.len() + state.raas.target_groups.len() + state.vmc.sddcs.len()
    };
    let mut connection = bench_connection("salt", SystemType::Raas, &sim.base_url);
    connection.config.max_concurrency = 64;
    let raas = RaasProvider::new(&connection)?;
    // Log in before the clock starts.
    raas.session()
        .call(&RpcCall::new("test", "echo", json!({"value": 1})), true)
        .await?
        .ok();
    let before = counters(&sim.base_url).await?;
    let done = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let duration = Duration::from_secs(3);
    let started = Instant::now();
    let cpu_before = cpu_time();
    let workers = (0..32u64).map(|w| {
        let (raas, done, errors) = (&raas, &done, &errors);
        async move {
            let mut i = w as usize;
            while started.elapsed() < duration {
                let call = RpcCall::new("job", "get_jobs", json!({"job_uuid": job_uuid(i % jobs)}));
                match raas.session().call(&call, true).await {
                    Ok(Ok(_)) => done.fetch_add(1, Ordering::Relaxed),
                    _ => errors.fetch_add(1, Ordering::Relaxed),
                };
                i += 32;
            }
        }
    });
    futures::future::join_all(workers).await;
    let wall = started.elapsed();
    let cpu = cpu_time().map(|after| after.saturating_sub(cpu_before.unwrap_or_default()));
    let requests = counters(&sim.base_url).await? - before;
    let rss_kb = peak_rss_kb();
    sim.stop().await;
    Ok(Row {
        scenario: "sim-capacity".into(),
        resources: objects,
        requests: Some(requests),
        minimum: None,
        wall,
        cpu,
        rss_kb,
        note: format!(
            "no latency; {:.0} requests/s (target ≥ 5000), {} errors; 32 callers in the same process (their CPU included); RSS is simulator + callers",
            done.load(Ordering::Relaxed) as f64 / wall.as_secs_f64(),
            errors.load(Ordering::Relaxed)
        ),
    })
}

// ---------------------------------------------------------------------------------------
// Child processes: the client side, measured alone.

/// CPU time of this process (user + system).
fn cpu_time() -> Option<Duration> {
    stat_cpu_time(11)
}

/// CPU time of this process's children that have been waited for.
fn children_cpu_time() -> Option<Duration> {
    stat_cpu_time(13)
}

/// The sum of the user and system tick fields at `user` and `user + 1` of `/proc/self/stat`,
/// counted from `state`.
fn stat_cpu_time(user: usize) -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at `state`.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user_ticks: u64 = fields.get(user)?.parse().ok()?;
    let system_ticks: u64 = fields.get(user + 1)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis((user_ticks + system_ticks) * 10))
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct PollCounter {
    polls: AtomicU64,
    failed: AtomicU64,
}

impl EventSink for PollCounter {
    fn emit(&self, event: &Event) {
        match event {
            Event::StillRunning { .. } => {
                self.polls.fetch_add(1, Ordering::Relaxed);
            }
            Event::Failed { address, message } => {
                eprintln!("{address}: {message}");
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    fn wants_every_poll(&self) -> bool {
        true
    }
}

fn child_main(args: &[String]) -> BenchResult<()> {
    let [kind, url, dir, rest @ ..] = args else {
        return Err("usage: --child KIND URL DIR [--time-scale N]".into());
    };
    let time_scale: f64 = match rest {
        [flag, value] if flag == "--time-scale" => value.parse()?,
        _ => 1.0,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(child_run(kind, url, Path::new(dir), time_scale))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

async fn reset_counters(url: &str) -> BenchResult<()> {
    reqwest::Client::new()
        .post(format!("{url}/_sim/counters/reset"))
        .send()
        .await?;
    Ok(())
}

async fn child_run(kind: &str, url: &str, dir: &Path, time_scale: f64) -> BenchResult<ChildReport> {
    let mut report = ChildReport::default();
    let cpu_start = cpu_time().unwrap_or_default();
    let started = Instant::now();
    let model = sextant::manifest::load(&[dir.to_path_buf()])
        .map_err(|d| format!("manifests: {}", d.render(false)))?;
    report.load_ms = started.elapsed().as_secs_f64() * 1000.0;
    report.mark_stage("load");
    if kind == "load" {
        report.wall_ms = report.load_ms;
        report.cpu_ms = cpu_time()
            .unwrap_or_default()
            .saturating_sub(cpu_start)
            .as_secs_f64()
            * 1000.0;
        report.rss_kb = peak_rss_kb().unwrap_or(0);
        report
            .planned
            .insert("resources".into(), model.resources.len());
        return Ok(report);
    }
    let scope = plan::scope(&model, &[]);
    let providers = ProviderSet::connect(&model, &scope)?;
    reset_counters(url).await?;
    let cpu_plan = cpu_time().unwrap_or_default();
    let plan_started = Instant::now();
    let live = plan::read_live_state(&model, &scope, &providers, PARALLELISM).await?;
    report.mark_stage("live");
    let plan = plan::make_plan(&model, &scope, &live, PlanOptions::default());
    report.mark_stage("plan");
    if !plan.problems.is_empty() {
        return Err(format!(
            "plan problems: {:?}",
            &plan.problems[..plan.problems.len().min(3)]
        )
        .into());
    }
    for change in &plan.changes {
        *report
            .planned
            .entry(format!("{:?}", change.action).to_lowercase())
            .or_default() += 1;
    }
    let (wall, cpu_from) = match kind {
        "plan" => (plan_started.elapsed(), cpu_plan),
        "apply" => {
            reset_counters(url).await?;
            let options = ApplyOptions {
                parallelism: PARALLELISM,
                first_poll: ApplyOptions::default().first_poll.div_f64(time_scale),
                max_poll_interval: ApplyOptions::default()
                    .max_poll_interval
                    .div_f64(time_scale),
                heartbeat: Duration::from_secs(3600),
                ..ApplyOptions::default()
            };
            let sink = PollCounter {
                polls: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            };
            let cpu_apply = cpu_time().unwrap_or_default();
            let apply_started = Instant::now();
            let result = apply::apply(
                &plan,
                &model,
                &providers,
                &options,
                &sink,
                CancellationToken::new(),
            )
            .await;
            report.failed = result
                .results
                .values()
                .filter(|o| !matches!(o, apply::ResourceOutcome::Done))
                .count();
            // Every pending poll emitted one event; the final poll answered done.
            let pending = sink.polls.load(Ordering::Relaxed);
            report.polls = if pending > 0 { pending + 1 } else { 0 };
            (apply_started.elapsed(), cpu_apply)
        }
        other => return Err(format!("unknown child kind `{other}`").into()),
    };
    report.wall_ms = wall.as_secs_f64() * 1000.0;
    report.cpu_ms = cpu_time()
        .unwrap_or_default()
        .saturating_sub(cpu_from)
        .as_secs_f64()
        * 1000.0;
    let _ = cpu_start;
    report.rss_kb = peak_rss_kb().unwrap_or(0);
    report.by_api = counters_by_api(url).await?;
    report.requests = report.by_api.get("total").copied().unwrap_or(0);
    drop(providers);
    Ok(report)
}

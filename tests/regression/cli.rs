//! Regressions of the command line: what a new operator ran into (issue 15).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::sextant_snapshot;
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
    sextant_snapshot!("cli-saved-plan-with-target-is-refused", run);
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
    sextant_snapshot!("cli-apply-a-plan-saved-under-sim", run);
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
    sextant_snapshot!("cli-stale-saved-plan", run);
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
    sextant_snapshot!("cli-missing-raas-token", Run::of(output));
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
async fn a_target_neither_declared_nor_live_is_a_plan_error_naming_the_document_and_connection() {
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
    sextant_snapshot!("cli-target-neither-declared-nor-live", run);
}

/// A vSphere connection to a port nobody listens on, failing at once (`max_retries: 0`).
fn unreachable_vcenter() -> String {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    format!(
        "kind: Connection\nname: vcenter\nspec:\n  type: vsphere\n  url: http://127.0.0.1:{port}\n  max_retries: 0\n  username: u\n  password: {{ env: SEXTANT_T_VSPHERE_PASSWORD }}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_json_fills_errored_and_errors_on_stdout_when_a_connection_fails() {
    let estate = Estate::start(240.0).await;
    estate.write("connections.yaml", &unreachable_vcenter());
    estate.write("vm.yaml", VM);
    let run = estate.run(&["plan", "--format", "json", "manifests"]).await;
    let plan: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", run.stdout));
    assert_eq!(plan["errored"], true, "{plan}");
    sextant_snapshot!("cli-plan-json-with-an-unreachable-connection", run);

    // A credential that cannot be read is a connection failure too.
    let output = estate
        .command(&["plan", "--format", "json", "manifests"])
        .env_remove("SEXTANT_T_VSPHERE_PASSWORD")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["errored"], true, "{plan}");
    assert_eq!(
        plan["errors"][0]["address"], "VirtualMachine/db-01",
        "{plan}"
    );
    let message = plan["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("SEXTANT_T_VSPHERE_PASSWORD"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_flags_are_refused_by_commands_they_do_not_affect() {
    let estate = Estate::start(240.0).await;
    for (name, args) in [
        ("validate", &["validate", "--sim", "manifests"][..]),
        ("graph", &["graph", "--sim-time-scale", "10", "manifests"]),
        ("schema", &["schema", "--sim"]),
        ("sim-serve", &["sim", "serve", "--sim-time-scale", "10"]),
        // Where it does something, the time scale needs `--sim`.
        ("plan", &["plan", "--sim-time-scale", "10", "manifests"]),
    ] {
        let run = estate.run(args).await;
        sextant_snapshot!(format!("cli-sim-flags-refused-by-{name}"), run);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vcd_token_plan_entry_shows_the_secret_file_it_will_write() {
    let estate = Estate::start(240.0).await;
    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci\nspec:\n  file: .secrets/ci-token.json\n",
    );
    let run = estate.run(&["plan", "manifests"]).await;
    sextant_snapshot!("cli-vcd-token-plan-entry", run);
}

#[tokio::test(flavor = "multi_thread")]
async fn sddc_progress_under_sim_shows_real_remaining_time() {
    let estate = Estate::start(240.0).await;
    estate.write(
        "sddc.yaml",
        "kind: Sddc\nname: quick\nspec: { region: us-west-2, num_hosts: 1, sddc_type: 1NODE, host_instance_type: i3.metal, account_link: { delay: true } }\n",
    );
    // 2 simulated hours at 480x: 15 real seconds; the first heartbeat comes after 10.
    let run = estate
        .run(&[
            "apply",
            "--sim",
            "--sim-time-scale",
            "480",
            "--auto-approve",
            "--json",
            "manifests",
        ])
        .await;
    ok(&run);
    let etas: Vec<u64> = run
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["type"] == "still_running")
        .filter_map(|event| event["eta_seconds"].as_u64())
        .collect();
    assert!(!etas.is_empty(), "{}", run.stdout);
    // Real seconds left (the whole create takes 15), not simulated ones: the server counts in
    // whole minutes, 60 s and more.
    assert!(etas.iter().all(|eta| *eta <= 15), "{etas:?}");
}

/// Backticked relative paths of files in the documentation (`docs/x.md`, `examples/ci/`,
/// `a/*.md`); runtime paths (`.sextant/…`, `x/.secrets/`) are left out.
fn documented_paths(text: &str) -> Vec<String> {
    const EXTENSIONS: [&str; 7] = [".md", ".rs", ".yaml", ".yml", ".json", ".txt", ".toml"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|token| {
            token.contains('/')
                && token.starts_with(|c: char| c.is_ascii_lowercase())
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-*".contains(c))
                && !token.split('/').any(|segment| segment.starts_with('.'))
                && (token.ends_with('/') || EXTENSIONS.iter().any(|e| token.ends_with(e)))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_docs_point_only_at_paths_the_project_contains() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for dir in [
        "docs",
        "examples/gitops",
        "examples/ci",
        "examples/quickstart",
    ] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    let mut missing = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for token in documented_paths(&text) {
            // `dir/*.md` names a directory's files: the directory must exist.
            let path = match token.rsplit_once('/') {
                Some((dir, last)) if last.contains('*') => dir.to_string(),
                _ => token.clone(),
            };
            let near = page.parent().unwrap().join(&path);
            if !near.exists() && !root.join(&path).exists() {
                missing.push(format!("{}: `{token}`", page.display()));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_without_paths_reads_the_directorys_own_manifests_and_skips_other_yaml() {
    let estate = Estate::start(240.0).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "connections.yaml",
        &crate::support::connections(&estate.sim.base_url, "salt"),
    );
    write("salt.yaml", SALT);
    // What a repository root also holds: another tool's YAML and invalid test fixtures.
    write(
        "ci.yml",
        "on: push\njobs:\n  test: { runs-on: ubuntu-latest }\n",
    );
    write(
        "tests/fixtures/invalid.yaml",
        "kind: SaltJob\nname: broken\nspec: { no_such_field: 1 }\n",
    );
    let run = crate::support::estate::run_in(dir.path(), &["plan"]).await;
    sextant_snapshot!("cli-plan-without-paths", run);
}

/// Copies a directory tree (dot-files included).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The lines of the first ```sh block after `heading` in a Markdown text.
fn sh_block_after(text: &str, heading: &str) -> Vec<String> {
    let rest = &text[text.find(heading).expect("heading")..];
    let start = rest.find("```sh\n").expect("an sh block") + "```sh\n".len();
    let block = &rest[start..];
    block[..block.find("```").expect("a closed block")]
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs one shell line in `dir` with the binary under test first on `PATH`.
async fn shell(dir: &std::path::Path, line: &str) -> Run {
    let bin_dir = std::path::Path::new(crate::support::estate::BIN)
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::process::Command::new("bash")
        .args(["-c", line])
        .current_dir(dir)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    Run::of(output)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gitops_adoption_recipe_adopts_only_what_no_environment_declares() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&root.join("examples/gitops"), dir.path());
    // Both environments are applied, and someone made a prod job by hand.
    for env in ["envs/prod", "envs/staging"] {
        let run = shell(
            dir.path(),
            &format!("sextant apply --sim --sim-time-scale 7200 --auto-approve {env}"),
        )
        .await;
        ok(&run);
    }
    std::fs::create_dir_all(dir.path().join("by-hand")).unwrap();
    std::fs::write(
        dir.path().join("by-hand/job.yaml"),
        "kind: Connection\nname: salt\nspec: { type: raas, region: us, api_token: { env: SEXTANT_RAAS_TOKEN } }\n---\n\
         kind: SaltJob\nname: Rotate logs (prod)\nspec: { cmd: local, fun: logrotate.run, target: prod web }\n",
    )
    .unwrap();
    ok(&shell(dir.path(), "sextant apply --sim --auto-approve by-hand").await);
    std::fs::remove_dir_all(dir.path().join("by-hand")).unwrap();

    // The recipe as written, on the simulator.
    let readme = std::fs::read_to_string(root.join("examples/gitops/README.md")).unwrap();
    let recipe = sh_block_after(&readme, "## Adopting what already exists");
    assert_eq!(recipe.len(), 2, "{recipe:?}");
    for line in &recipe {
        let line = line
            .replace("sextant export ", "sextant export --sim ")
            .replace("sextant plan ", "sextant plan --sim ");
        let run = shell(dir.path(), &line).await;
        assert_eq!(run.code, 0, "{line}\n{}\n{}", run.stdout, run.stderr);
    }
    let jobs = std::fs::read_to_string(dir.path().join("envs/prod/adopted/salt-job.yaml")).unwrap();
    assert!(jobs.contains("name: Rotate logs (prod)"), "{jobs}");
    assert_eq!(jobs.matches("name:").count(), 1, "{jobs}");
}

/// The fenced blocks of a Markdown section, in order: `(is_sh, text)`.
fn blocks_of_section(text: &str, heading: &str) -> Vec<(bool, String)> {
    let start = text.find(heading).expect("heading");
    let section = &text[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let (info, body) = after.split_once('\n').expect("a block");
        let close = body.find("```").expect("a closed block");
        blocks.push((info.trim() == "sh", body[..close].to_string()));
        rest = &body[close + 3..];
    }
    blocks
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_tour_runs_as_written_after_the_quickstart() {
    const NO_CHANGES: &str = "No changes. Your infrastructure matches the configuration.";
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root.join("examples/quickstart")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let to = dir
                .path()
                .join("examples/quickstart")
                .join(entry.file_name());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
    // The environments step reads examples/gitops.
    copy_tree(
        &root.join("examples/gitops"),
        &dir.path().join("examples/gitops"),
    );
    let run = |script: String| {
        let dir = dir.path().to_path_buf();
        async move {
            tokio::time::timeout(std::time::Duration::from_secs(120), shell(&dir, &script))
                .await
                .unwrap_or_else(|_| panic!("timed out:\n{script}"))
        }
    };

    // The README's first command (the quickstart), with the binary under test.
    let first = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -- "))
        .expect("the quickstart command");
    let quickstart = first
        .split('#')
        .next()
        .unwrap()
        .replace("cargo run --release -- ", "sextant ");
    ok(&run(quickstart).await);

    let blocks = blocks_of_section(&readme, "## A 5-minute tour on the simulator");
    // The first block builds the binary and puts it on PATH: the test's own binary is used.
    assert!(blocks[0].1.contains("cargo build"), "{:?}", blocks[0]);
    let mut previous: Option<Run> = None;
    let mut ran = Vec::new();
    for (is_sh, text) in &blocks[1..] {
        if !is_sh {
            // Expected output: what the block before printed.
            let printed = previous.as_ref().expect("output follows a command block");
            assert!(
                printed.stdout.contains(text.as_str()),
                "expected:\n{text}\nprinted:\n{}\n{}",
                printed.stdout,
                printed.stderr
            );
            continue;
        }
        let result = run(text.clone()).await;
        assert_eq!(
            result.code, 0,
            "{text}\n{}\n{}",
            result.stdout, result.stderr
        );
        for noise in ["curl:", "error:", "command not found"] {
            assert!(!result.stderr.contains(noise), "{text}\n{}", result.stderr);
        }
        if text.contains(&format!("# {NO_CHANGES}")) {
            assert!(
                result.stdout.contains(NO_CHANGES),
                "{text}\n{}",
                result.stdout
            );
        }
        ran.push((text.clone(), result.stdout.clone()));
        previous = Some(result);
    }
    // Step 1 plans from the default estate, as its text says, although the quickstart ran.
    let (step1, plan1) = &ran[0];
    assert!(
        step1.contains("sextant plan --sim examples/quickstart"),
        "{step1}"
    );
    for created in [
        "Sddc/quickstart-sddc will be created",
        "VcdApiToken/ci-pipeline will be created",
        "VirtualMachine/db-01 will be updated in-place",
    ] {
        assert!(plan1.contains(created), "{created}\n{plan1}");
    }
    assert!(ran.len() >= 6, "{ran:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raas_server_that_hangs_up_is_tried_max_retries_plus_one_times_not_more() {
    // A server that accepts every connection and closes it at once, counting them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let estate = Estate::start(240.0).await;
    estate.write(
        "connections.yaml",
        &format!(
            "kind: Connection\nname: salt\nspec:\n  type: raas\n  url: http://127.0.0.1:{port}\n  max_retries: 2\n  username: u\n  password: {{ env: SEXTANT_T_VCD_PASSWORD }}\n"
        ),
    );
    estate.write(
        "salt.yaml",
        "kind: SaltTarget\nname: web servers\nspec: { tgt: { \"*\": { tgt_type: glob, tgt: \"web-*\" } } }\n",
    );
    let run = estate.run(&["plan", "manifests"]).await;
    server.abort();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // One budget for the one request that failed: nothing resends around it.
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("(attempt 3 of 3)"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("no answer from `127.0.0.1:{port}`"))
            && run.stderr.contains("gave up after 3 attempts"),
        "{}",
        run.stderr
    );
}

/// A live Salt job whose text holds `${` (a shell variable in its description) used to be
/// exported as written, which the loader then read as a broken `${Kind/name.attr}`
/// reference: the adopted manifests failed to load. Export now escapes it as `$${`, and plan
/// writes the escape out again, so the adopted estate plans `No changes.`. A job's `desc` is a
/// free string (`save_job(name, desc, …)`, /work/shared/api/raas.md, "Saved jobs").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_text_with_a_dollar_brace_loads_and_plans_no_changes() {
    let estate = Estate::start(240.0).await;
    estate.write(
        "job.yaml",
        "kind: SaltJob\nname: home report\nspec:\n  fun: cmd.run\n  desc: \"lists $${HOME} and $${PATH}\"\n",
    );
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let export = estate
        .run(&[
            "export",
            "--connection",
            "salt",
            "--kind",
            "SaltJob",
            "--out",
            "adopted",
            "manifests/connections.yaml",
        ])
        .await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    let adopted = std::fs::read_to_string(estate.path().join("adopted/salt-job.yaml")).unwrap();
    assert!(adopted.contains("lists $${HOME} and $${PATH}"), "{adopted}");
    let plan: Run = estate
        .run(&["plan", "manifests/connections.yaml", "adopted"])
        .await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
}

/// A plan file saved by another sextant (another plan-file format version) was taken for a
/// manifest: `apply FILE` answered "unknown kind `sextant-plan`" instead of saying the plan
/// must be made again.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_file_of_another_format_version_is_refused_as_a_plan_not_read_as_a_manifest() {
    let estate = Estate::start(240.0).await;
    estate.write("salt.yaml", SALT);
    let out = estate.path().join("old.plan");
    let out = out.to_str().unwrap();
    let saved = estate.run(&["plan", "--out", out, "manifests"]).await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    file["format_version"] = Value::from("1");
    std::fs::write(out, file.to_string()).unwrap();
    let before = raas_names(&estate, "jobs").await;
    let refused = estate.run(&["apply", out]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("has format version 1")
            && refused.stderr.contains("make the plan again"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("unknown kind"),
        "{}",
        refused.stderr
    );
    assert_eq!(raas_names(&estate, "jobs").await, before);
}

/// Failures of the CLI itself flattened their cause into the message (`…: {err}`), so the
/// reporter's `Caused by:` never showed and the cause's own chain was lost. The cause is now
/// kept and shown once, under the message.
#[tokio::test(flavor = "multi_thread")]
async fn a_cli_failure_shows_its_cause_once_under_caused_by() {
    let estate = Estate::start(240.0).await;
    let options = estate
        .run(&["sim", "serve", "--options", "{not json"])
        .await;
    sextant_snapshot!("cli-sim-options-not-json", options);
    // `--out` names a file: the directory for the exported files cannot be created.
    estate.write_file("taken", "");
    let export = estate
        .run(&[
            "export",
            "--connection",
            "vcenter",
            "--out",
            "taken",
            "manifests",
        ])
        .await;
    sextant_snapshot!("cli-export-out-is-a-file", export);
    // `show` of a file that cannot be read, and of one that is not JSON: the reading error
    // and the JSON parser's own message are the causes.
    let missing = estate.run(&["show", "missing.plan"]).await;
    sextant_snapshot!("cli-show-unreadable-file", missing);
    estate.write_file("notes.yaml", "kind: SaltJob\n");
    let not_json = estate.run(&["show", "notes.yaml"]).await;
    sextant_snapshot!("cli-show-not-json", not_json);
}

//! `sextant validate`, `graph` and `schema` through the real binary: every invalid fixture
//! under `tests/fixtures/invalid/` is snapshotted (exit code, stdout, stderr), and the committed
//! JSON Schema is current. The examples are validated in `tests/examples.rs`.

mod support;

use std::path::{Path, PathBuf};

use support::estate::{Run, run_blocking};

/// Runs the binary from the crate root with relative paths, without colour or inherited
/// sextant variables.
fn sextant(args: &[&str]) -> Run {
    run_blocking(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

#[test]
fn invalid_fixtures_fail_with_located_errors() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 30, "only {} fixtures", fixtures.len());
    for fixture in fixtures {
        let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let relative = format!("tests/fixtures/invalid/{name}");
        let output = sextant(&["validate", &relative]);
        assert_eq!(output.code, 1, "{name}: {}", output.stderr);
        assert!(output.stdout.is_empty(), "{name}: stdout {}", output.stdout);
        assert!(
            !output.stderr.contains("panicked"),
            "{name}: {}",
            output.stderr
        );
        let errors: Vec<&str> = output
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert!(!errors.is_empty(), "{name}: {}", output.stderr);
        for line in errors {
            let location = line
                .strip_prefix("error: ")
                .and_then(|rest| rest.split(": ").next())
                .unwrap_or_default();
            let mut parts = location.rsplitn(3, ':');
            let column = parts.next().unwrap_or_default();
            let row = parts.next().unwrap_or_default();
            assert!(
                column.parse::<usize>().is_ok_and(|c| c >= 1)
                    && row.parse::<usize>().is_ok_and(|r| r >= 1),
                "{name}: no line:column in {line:?}"
            );
        }
        sextant_snapshot!(format!("invalid-{name}"), output);
    }
}

#[test]
fn inline_secret_is_never_echoed() {
    let output = sextant(&["validate", "tests/fixtures/invalid/inline-secret.yaml"]);
    assert_eq!(output.code, 1);
    assert!(
        output.stderr.contains("cannot be written inline"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("hunter2"), "{}", output.stderr);
}

#[test]
fn validate_defaults_to_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    for entry in std::fs::read_dir(quickstart).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let output = run_blocking(dir.path(), &["validate"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(
        output.stderr,
        "Reading 5 manifest files of the current directory (no PATHS given; subdirectories are read only when named): `connections.yaml`, `salt.yaml`, `sddc.yaml`, `vcd.yaml`, `vms.yaml`.\n\
         manifests are valid: 4 connections, 9 resources\n"
    );
    let output = run_blocking(dir.path(), &["-q", "validate"]);
    assert_eq!((output.code, output.stderr.as_str()), (0, ""));
    std::fs::write(dir.path().join("zz.yaml"), "kind: Sddc\nname: x\n").unwrap();
    let output = run_blocking(dir.path(), &["validate", "--quiet"]);
    assert_eq!(output.code, 1);
    assert!(
        output.stderr.starts_with("error: zz.yaml:1:1: "),
        "{}",
        output.stderr
    );
}

#[test]
fn quickstart_loads_into_the_canonical_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = sextant::manifest::load(&[root.join("examples/quickstart")]).unwrap();
    assert_eq!(
        model.connections.keys().collect::<Vec<_>>(),
        vec!["salt-cloud", "vcd", "vcenter", "vmc"]
    );
    let salt = &model.connections["salt-cloud"].config;
    assert_eq!(salt.url, "https://ssc-gateway.mgmt.cloud.vmware.com");
    assert_eq!(salt.max_concurrency, 4);
    assert!(matches!(
        salt.api_token,
        Some(sextant::model::SecretSource::Env(ref name)) if name == "SEXTANT_RAAS_TOKEN"
    ));
    let sddc = model
        .resources
        .get(&sextant::model::Address::parse("Sddc/quickstart-sddc").unwrap())
        .unwrap();
    assert_eq!(sddc.connection, "vmc");
    assert_eq!(sddc.spec.value()["region"], "US_WEST_2");
    assert_eq!(sddc.spec.value()["deployment_type"], "SingleAZ");
    assert!(sddc.lifecycle.prevent_destroy);
    assert!(sddc.spec.get("skip_creating_vxlan").is_none());
    let schedule = model
        .resources
        .get(&sextant::model::Address::parse("SaltSchedule/Nightly web state").unwrap())
        .unwrap();
    let deps: Vec<String> = schedule.depends_on.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        deps,
        vec!["SaltTarget/web servers", "SaltJob/Apply web state"]
    );
    let token = model
        .resources
        .get(&sextant::model::Address::parse("VcdApiToken/ci-pipeline").unwrap())
        .unwrap();
    assert!(token.base_dir.is_absolute());
    assert!(token.base_dir.ends_with("examples/quickstart"));
}

#[test]
fn graph_renders_dot_and_mermaid() {
    let output = sextant(&["graph", "examples/quickstart", "--format", "mermaid"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("graph-quickstart-mermaid", output.stdout);
    });
    let output = sextant(&["graph", "--format", "dot", "examples/quickstart"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stdout.starts_with("digraph sextant {"));
    assert!(
        output
            .stdout
            .contains("\"SaltJob/Apply web state\" -> \"SaltSchedule/Nightly web state\";")
    );
    let output = sextant(&["graph", "tests/fixtures/invalid/cycle.yaml"]);
    assert_eq!(output.code, 1);
    assert!(output.stdout.is_empty());
}

#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/manifest.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = sextant::manifest::schema_json();
    assert!(
        committed == generated,
        "schemas/manifest.schema.json is stale; regenerate it with:\n    \
         cargo run -- schema > schemas/manifest.schema.json"
    );
    let output = sextant(&["schema"]);
    assert_eq!(output.code, 0);
    assert_eq!(output.stdout, generated);
}

#[test]
fn usage_errors_exit_1() {
    let output = sextant(&["validate", "--no-such-flag"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    let output = sextant(&["graph", "examples/quickstart", "--format", "png"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
}

/// A file large enough to be parsed in pieces on several threads reports syntax and
/// structure errors at their place in the whole file, as a single parse would.
#[test]
fn errors_in_large_files_point_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let connection = "kind: Connection\nname: salt\nspec:\n  type: raas\n  url: https://raas.example.com\n  username: root\n  password: { env: SALT_PW }\n";
    let jobs = |from: usize, to: usize| -> String {
        (from..to)
            .map(|i| {
                format!("---\nkind: SaltJob\nname: job-{i}\nspec:\n  desc: job {i}\n  cmd: local\n  fun: test.ping\n  target: tg\n")
            })
            .collect()
    };
    let target =
        "---\nkind: SaltTarget\nname: tg\nspec:\n  tgt: {\"*\": {tgt_type: glob, tgt: \"*\"}}\n";
    // Over twice the size of a piece (256 KiB), so that it is cut wherever two cores exist.
    let base = format!("{connection}{target}{}", jobs(0, 9_000));
    assert!(base.len() > 512 * 1024, "{}", base.len());
    let file = dir.path().join("big.yaml");

    std::fs::write(&file, &base).unwrap();
    let output = sextant(&["validate", file.to_str().unwrap()]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(
        output.stderr.contains("9001 resources"),
        "{}",
        output.stderr
    );

    // Each text's error is on its last line, at `column` when given.
    let refused_on_last_line = |text: &str, column: &str| {
        std::fs::write(&file, text).unwrap();
        let output = sextant(&["validate", file.to_str().unwrap()]);
        assert_eq!(output.code, 1, "{}", output.stderr);
        let place = format!("big.yaml:{}:{column}", text.lines().count());
        assert!(output.stderr.contains(&place), "{place}: {}", output.stderr);
    };
    // An unknown field in the last job's spec.
    refused_on_last_line(
        &format!("{base}{}  colour: blue\n", jobs(9_000, 9_001)),
        "3: ",
    );
    // A syntax error (bad indentation) in the last document.
    refused_on_last_line(&format!("{base}---\nkind: SaltJob\n name: broken\n"), "");
}

//! Environments through the real binary: `${var.NAME}` typing and escapes, the override
//! order of `--var` and `--var-file`, merge patches, every located error (snapshotted:
//! exit code and stderr), `render` determinism and `render --check`, and staging and prod
//! planned and applied from one base on one simulator without touching each other.

mod support;

use std::path::Path;

use serde_json::Value;
use support::estate::{Estate, Run, run_blocking, run_in};

/// A directory of manifests written for one test.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new(files: &[(&str, &str)]) -> Self {
        let tree = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        for (name, text) in files {
            tree.write(name, text);
        }
        tree
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the binary in the tree's directory, without colour or inherited sextant variables.
    fn run(&self, args: &[&str]) -> Run {
        run_blocking(self.path(), args)
    }

    /// `render` that must succeed; its stdout.
    fn render(&self, args: &[&str]) -> String {
        let mut all = vec!["render"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert_eq!(output.code, 0, "{}", output.stderr);
        output.stdout
    }
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, text);
    });
}

const VMC: &str =
    "kind: Connection\nname: vmc\nspec:\n  type: vmc\n  api_token: {env: SEXTANT_T_VMC_TOKEN}\n";
const RAAS: &str = "kind: Connection\nname: salt\nspec:\n  type: raas\n  url: ${var.raas_url}\n  api_token: {env: SEXTANT_T_RAAS_TOKEN}\n";

// ---------------------------------------------------------------- substitution and overrides

#[test]
fn a_whole_reference_takes_the_value_type_and_text_interpolates() {
    let tree = Tree::new(&[
        (
            "base/sddc.yaml",
            &format!(
                "{VMC}---\nkind: Sddc\nname: ${{var.prefix}}-sddc\nlifecycle:\n  prevent_destroy: ${{var.guard}}\n  ignore_changes: ${{var.ignored}}\n\
                 spec:\n  region: ${{var.region}}\n  num_hosts: ${{var.hosts}}\n  account_link: ${{var.link}}\n  sso_domain: \"${{var.hosts}} hosts in ${{var.region}}\"\n  skip_creating_vxlan: \"${{var.guard}}\"\n"
            ),
        ),
        (
            "envs/prod/env.yaml",
            "kind: Environment\nname: prod\nspec:\n  include: [../../base]\n  values:\n    prefix: prod\n    hosts: 4\n    guard: true\n    region: us-west-2\n    ignored: [spec.size]\n    link: {delay: true}\n",
        ),
    ]);
    let rendered = tree.render(&["envs/prod"]);
    snapshot("environments-typing", &rendered);
    // The values keep their types: validate checks `num_hosts` is an integer and
    // `prevent_destroy` a boolean, and the text is the text.
    assert!(rendered.contains("  num_hosts: 4\n"), "{rendered}");
    assert!(rendered.contains("  prevent_destroy: true\n"), "{rendered}");
    assert!(
        rendered.contains("  sso_domain: 4 hosts in us-west-2\n"),
        "{rendered}"
    );
    assert!(rendered.contains("    - spec.size\n"), "{rendered}");
    assert_eq!(tree.run(&["validate", "envs/prod"]).code, 0);
}

#[test]
fn escapes_stay_literal_and_a_resource_reference_stays_a_reference() {
    let tree = Tree::new(&[
        (
            "base/salt.yaml",
            &format!(
                "{RAAS}---\nkind: SaltJob\nname: report\nspec:\n  fun: cmd.run\n  desc: \"$${{HOME}} and $${{var.prefix}} stay, ${{var.prefix}} goes\"\n  arg:\n    arg: [\"echo ${{Sddc/lab.vc_url}}\"]\n\
                 ---\nkind: Sddc\nname: lab\nconnection: vmc\nspec: {{region: us-west-2, num_hosts: 2, account_link: {{delay: true}}}}\n---\n{VMC}"
            ),
        ),
        (
            "env/env.yaml",
            "kind: Environment\nname: e\nspec:\n  include: [../base]\n  values: {prefix: p, raas_url: 'https://salt.example.com'}\n",
        ),
    ]);
    let rendered = tree.render(&["env"]);
    assert!(
        rendered.contains("  desc: $${HOME} and $${var.prefix} stay, p goes\n"),
        "{rendered}"
    );
    assert!(
        rendered.contains("      - echo ${Sddc/lab.vc_url}\n"),
        "{rendered}"
    );
    // The reference still orders the job after the SDDC.
    let graph = tree.run(&["graph", "env"]);
    assert_eq!(graph.code, 0, "{}", graph.stderr);
    assert!(
        graph.stdout.contains("\"Sddc/lab\" -> \"SaltJob/report\""),
        "{}",
        graph.stdout
    );
}

#[test]
fn overrides_apply_in_order_environment_then_var_then_var_file() {
    let tree = Tree::new(&[
        (
            "base/sddc.yaml",
            &format!(
                "{VMC}---\nkind: Sddc\nname: ${{var.prefix}}-sddc\nspec:\n  region: us-west-2\n  num_hosts: ${{var.hosts}}\n  account_link: {{delay: true}}\n"
            ),
        ),
        (
            "env/env.yaml",
            "kind: Environment\nname: e\nspec:\n  include: [../base]\n  values: {prefix: from-env, hosts: 2}\n",
        ),
        ("late.yaml", "prefix: from-file\n"),
        ("later.yaml", "prefix: from-later-file\nhosts: 8\n"),
    ]);
    let name = |rendered: &str| {
        rendered
            .lines()
            .find(|l| l.starts_with("name: ") && l.ends_with("-sddc"))
            .unwrap()
            .to_string()
    };
    let hosts = |rendered: &str| {
        rendered
            .lines()
            .find(|l| l.contains("num_hosts"))
            .unwrap()
            .trim()
            .to_string()
    };
    let env = tree.render(&["env"]);
    assert_eq!(name(&env), "name: from-env-sddc");
    let var = tree.render(&["env", "--var", "prefix=from-var", "--var", "hosts=6"]);
    assert_eq!(name(&var), "name: from-var-sddc");
    // `--var` values are typed like YAML: `6` is an integer.
    assert_eq!(hosts(&var), "num_hosts: 6");
    let file = tree.render(&["env", "--var", "prefix=from-var", "--var-file", "late.yaml"]);
    assert_eq!(name(&file), "name: from-file-sddc");
    // The flags' order on the command line does not matter; later files win.
    let files = tree.render(&[
        "--var-file",
        "late.yaml",
        "--var-file",
        "later.yaml",
        "env",
        "--var",
        "prefix=from-var",
    ]);
    assert_eq!(name(&files), "name: from-later-file-sddc");
    assert_eq!(hosts(&files), "num_hosts: 8");
    // A quoted number is a string, and `num_hosts` says so where it is used.
    let quoted = tree.run(&["validate", "env", "--var", "hosts=\"6\""]);
    sextant_snapshot!("environments-override-type-mismatch", quoted);
}

// ---------------------------------------------------------------- patches

#[test]
fn patches_merge_remove_with_null_and_apply_inner_environments_first() {
    let tree = Tree::new(&[
        (
            "base/all.yaml",
            &format!(
                "{VMC}---\nkind: Sddc\nname: ${{var.prefix}}-sddc\nspec:\n  region: us-west-2\n  num_hosts: 2\n  size: large\n  vpc_cidr: 10.0.0.0/16\n  account_link: {{delay: true}}\n\
                 ---\n{RAAS}---\nkind: SaltJob\nname: j\nspec:\n  fun: test.ping\n  desc: base\n  arg:\n    kwarg: {{a: 1, b: 2}}\n"
            ),
        ),
        (
            "envs/region/env.yaml",
            "kind: Environment\nname: region\nspec:\n  include: [../../base]\n  values: {prefix: region, raas_url: 'https://a.example.com'}\n  patches:\n    - target: SaltJob/j\n      spec: {desc: from-region, arg: {kwarg: {c: 3}}}\n",
        ),
        (
            "envs/prod/env.yaml",
            "kind: Environment\nname: prod\nspec:\n  include: [../region]\n  values: {prefix: prod}\n  patches:\n    - target: Sddc/${var.prefix}-sddc\n      spec: {num_hosts: 6, size: null}\n      lifecycle: {prevent_destroy: true}\n    - target: SaltJob/j\n      spec: {desc: from-prod, arg: {kwarg: {a: null}}}\n",
        ),
    ]);
    let rendered = tree.render(&["envs/prod"]);
    snapshot("environments-patches", &rendered);
    // Outer values override inner ones; merge keeps the untouched fields; null removes.
    assert!(rendered.contains("name: prod-sddc\n"), "{rendered}");
    assert!(rendered.contains("  num_hosts: 6\n"), "{rendered}");
    assert!(!rendered.contains("size"), "{rendered}");
    assert!(rendered.contains("  vpc_cidr: 10.0.0.0/16\n"), "{rendered}");
    assert!(rendered.contains("  desc: from-prod\n"), "{rendered}");
    assert!(
        rendered.contains("    kwarg:\n      b: 2\n      c: 3\n"),
        "{rendered}"
    );
    // The inner environment alone: its own patch, its own values.
    let region = tree.render(&["envs/region"]);
    assert!(region.contains("name: region-sddc\n"), "{region}");
    assert!(region.contains("  desc: from-region\n"), "{region}");
}

// ---------------------------------------------------------------- located errors

/// The base every error case starts from, with the environment of `env_yaml`.
fn broken(base: &str, env_yaml: &str) -> Tree {
    Tree::new(&[
        ("base/connections.yaml", &format!("{VMC}---\n{RAAS}")),
        ("base/sddc.yaml", base),
        ("envs/prod/env.yaml", env_yaml),
    ])
}

const ENV: &str = "kind: Environment\nname: prod\nspec:\n  include: [../../base]\n  values:\n    prefix: prod\n    hosts: 4\n    raas_url: https://salt.example.com\n";
const SDDC: &str = "kind: Sddc\nname: ${var.prefix}-sddc\nspec:\n  region: us-west-2\n  num_hosts: ${var.hosts}\n  vpc_cidr: 10.0.0.0/16\n  account_link: {delay: true}\n";

/// `validate` and `plan` fail alike, with every error located; `plan` contacts nothing
/// (the connections point at a closed port, so a request would fail differently).
fn check_error(name: &str, tree: &Tree, needle: &str) {
    let validate = tree.run(&["validate", "envs/prod"]);
    assert_eq!(validate.code, 1, "{}", validate.stderr);
    assert!(validate.stderr.contains(needle), "{}", validate.stderr);
    sextant_snapshot!(format!("environments-error-{name}"), validate);
    let plan = tree.run(&["plan", "envs/prod"]);
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    assert!(plan.stderr.contains(needle), "{}", plan.stderr);
    assert!(
        plan.stderr
            .contains("in the manifests; nothing was changed"),
        "{}",
        plan.stderr
    );
    assert!(plan.stdout.is_empty(), "{}", plan.stdout);
}

#[test]
fn an_undefined_variable_is_located_where_it_is_used_with_a_suggestion() {
    let tree = broken(
        &SDDC.replace(
            "vpc_cidr: 10.0.0.0/16",
            "vpc_cidr: 10.0.0.0/16\n  size: \"${var.prefix}-${var.prefx}\"",
        ),
        ENV,
    );
    check_error(
        "undefined-variable",
        &tree,
        "base/sddc.yaml:7:24: `spec.size`: undefined variable `prefx`",
    );
}

#[test]
fn a_type_mismatch_after_substitution_is_located_where_the_reference_is() {
    let tree = broken(SDDC, &ENV.replace("hosts: 4", "hosts: four"));
    check_error(
        "type-mismatch",
        &tree,
        "base/sddc.yaml:5:14: `spec.num_hosts`: expected an integer, found a string (after substituting `${var.hosts}`)",
    );
}

#[test]
fn an_include_cycle_is_shown_as_a_path() {
    let tree = broken(
        SDDC,
        &ENV.replace("[../../base]", "[../../base, ../shared]"),
    );
    tree.write(
        "envs/shared/env.yaml",
        "kind: Environment\nname: shared\nspec:\n  include: [../prod]\n",
    );
    check_error(
        "include-cycle",
        &tree,
        "envs/shared/env.yaml:4:13: `spec.include`: include cycle: `envs/prod/env.yaml -> envs/shared/env.yaml -> envs/prod/env.yaml`",
    );
}

#[test]
fn an_include_that_does_not_exist_is_located_in_the_environment() {
    let tree = broken(
        SDDC,
        &ENV.replace("[../../base]", "[../../base, ../../bsae]"),
    );
    check_error(
        "missing-include",
        &tree,
        "envs/prod/env.yaml:4:25: `spec.include`: include `../../bsae` does not exist",
    );
}

#[test]
fn a_patch_whose_target_matches_nothing_is_an_error() {
    let tree = broken(
        SDDC,
        &format!(
            "{ENV}  patches:\n    - target: Sddc/${{var.prefix}}-sdc\n      spec: {{num_hosts: 6}}\n"
        ),
    );
    check_error(
        "patch-target",
        &tree,
        "envs/prod/env.yaml:10:15: `spec.patches[0].target`: patch target `Sddc/prod-sdc` matches no document",
    );
}

#[test]
fn two_documents_with_one_address_after_substitution_are_an_error() {
    let tree = broken(
        &format!(
            "{SDDC}---\nkind: Sddc\nname: prod-sddc\nspec:\n  region: us-west-2\n  num_hosts: 2\n  account_link: {{delay: true}}\n"
        ),
        ENV,
    );
    check_error(
        "duplicate-address",
        &tree,
        "base/sddc.yaml:10:7: `name`: `Sddc/prod-sddc` is declared twice",
    );
}

#[test]
fn an_error_in_what_a_patch_brought_is_located_in_the_environment() {
    let tree = broken(
        SDDC,
        &format!(
            "{ENV}  patches:\n    - target: Sddc/prod-sddc\n      spec: {{num_hosts: many}}\n"
        ),
    );
    check_error(
        "patched-value",
        &tree,
        "envs/prod/env.yaml:11:25: `spec.num_hosts`: expected an integer, found a string",
    );
}

#[test]
fn unknown_overrides_and_variables_without_an_environment_are_errors() {
    let tree = broken(SDDC, ENV);
    let output = tree.run(&["validate", "envs/prod", "--var", "hsots=2"]);
    assert_eq!(output.code, 1);
    sextant_snapshot!("environments-error-unknown-override", output);
    // A value is inserted as written: one that uses a variable would never be substituted.
    let output = tree.run(&["validate", "envs/prod", "--var", "prefix=${var.hosts}"]);
    assert_eq!(output.code, 1);
    assert!(
        output.stderr.contains(
            "envs/prod/env.yaml:2:7: `spec.values`: the value of `prefix` uses a variable"
        ),
        "{}",
        output.stderr
    );
    let output = tree.run(&["validate", "base", "--var", "hosts=2"]);
    assert_eq!(output.code, 1);
    assert!(
        output.stderr.contains("no environment is loaded"),
        "{}",
        output.stderr
    );
    // Without an environment, a variable is an error where it is written.
    let output = tree.run(&["validate", "base"]);
    sextant_snapshot!("environments-error-no-environment", output);
}

#[test]
fn commands_that_contact_apis_take_one_environment_and_validate_checks_each() {
    let tree = broken(SDDC, ENV);
    tree.write(
        "envs/staging/env.yaml",
        &ENV.replace("name: prod", "name: staging")
            .replace("prefix: prod", "prefix: staging")
            .replace("hosts: 4", "hosts: x"),
    );
    for command in ["plan", "apply", "export", "graph", "render"] {
        let mut args = vec![command, "envs"];
        if command == "export" {
            args.extend(["--connection", "vmc"]);
        }
        let output = tree.run(&args);
        assert_eq!(output.code, 1, "{command}: {}", output.stderr);
        assert!(
            output
                .stderr
                .contains("a second environment, `staging`, in one run"),
            "{command}: {}",
            output.stderr
        );
    }
    let output = tree.run(&["validate", "envs/prod", "envs/staging"]);
    sextant_snapshot!("environments-validate-each", output);
    assert_eq!(output.code, 1);
    let output = tree.run(&["validate", "envs"]);
    assert!(
        output
            .stderr
            .contains("environment `prod` (envs/prod/env.yaml) is valid")
    );
}

// ---------------------------------------------------------------- render

#[test]
fn render_is_deterministic_and_independent_of_how_the_input_is_written() {
    let one = Tree::new(&[
        (
            "base/a.yaml",
            &format!(
                "{VMC}---\n{RAAS}---\nkind: SaltJob\nname: b\nspec: {{fun: test.ping, desc: d, arg: {{kwarg: {{k2: 1, k1: 2}}}}}}\n"
            ),
        ),
        (
            "base/b.yaml",
            "kind: SaltTarget\nname: t\nspec:\n  tgt: {'*': {tgt: 'w*', tgt_type: glob}}\n  desc: ${var.prefix}\n",
        ),
        (
            "env/env.yaml",
            "kind: Environment\nname: e\nspec:\n  include: [../base]\n  values: {prefix: p, raas_url: 'https://s.example.com'}\n",
        ),
    ]);
    // The same documents, in other files, in another order, fields reordered.
    let two = Tree::new(&[
        (
            "shared/z.yaml",
            "spec:\n  desc: ${var.prefix}\n  tgt: {'*': {tgt_type: glob, tgt: 'w*'}}\nname: t\nkind: SaltTarget\n---\nkind: SaltJob\nname: b\nspec: {arg: {kwarg: {k1: 2, k2: 1}}, desc: d, fun: test.ping}\n",
        ),
        ("shared/y.yaml", &format!("{RAAS}---\n{VMC}")),
        (
            "env/e.yaml",
            "kind: Environment\nname: e\nspec:\n  values: {raas_url: 'https://s.example.com', prefix: p}\n  include: [../shared]\n",
        ),
    ]);
    let first = one.render(&["env"]);
    assert_eq!(first, one.render(&["env"]));
    assert_eq!(first, two.render(&["env"]));
    snapshot("environments-render", &first);

    // --check: current is exit 0; stale prints a unified diff and exits 1; missing too.
    one.write("rendered/e.yaml", &first);
    let check = one.run(&["render", "--check", "rendered/e.yaml", "env"]);
    assert_eq!(
        (check.code, check.stdout.as_str()),
        (0, ""),
        "{}",
        check.stderr
    );
    one.write(
        "env/env.yaml",
        "kind: Environment\nname: e\nspec:\n  include: [../base]\n  values: {prefix: q, raas_url: 'https://s.example.com'}\n",
    );
    let check = one.run(&["render", "--check", "rendered/e.yaml", "env"]);
    assert_eq!(check.code, 1);
    sextant_snapshot!("environments-render-check-stale", check);
    let check = one.run(&["render", "--check", "rendered/none.yaml", "env"]);
    assert_eq!(check.code, 1);
    assert!(check.stderr.contains("does not exist"), "{}", check.stderr);
    assert!(
        check.stdout.starts_with("--- rendered/none.yaml\n"),
        "{}",
        check.stdout
    );
}

#[test]
fn render_shows_secrets_as_references_only() {
    let tree = Tree::new(&[
        (
            "base/c.yaml",
            "kind: Connection\nname: vcd\nspec:\n  type: vcd\n  url: https://vcd.example.com\n  username: u\n  password:\n    file: secrets/${var.prefix}-password\n",
        ),
        (
            "env/env.yaml",
            "kind: Environment\nname: e\nspec:\n  include: [../base]\n  values: {prefix: prod}\n",
        ),
        ("base/secrets/prod-password", "hunter2-secret\n"),
    ]);
    let rendered = tree.render(&["env"]);
    assert!(
        rendered.contains("  password:\n    file: secrets/prod-password\n"),
        "{rendered}"
    );
    assert!(!rendered.contains("hunter2"), "{rendered}");
    // A value is never a secret: an inline one is refused without being echoed.
    let tree = Tree::new(&[
        (
            "base/c.yaml",
            "kind: Connection\nname: vmc\nspec:\n  type: vmc\n  api_token: ${var.token}\n",
        ),
        (
            "env/env.yaml",
            "kind: Environment\nname: e\nspec:\n  include: [../base]\n  values: {token: hunter2-secret}\n",
        ),
    ]);
    let output = tree.run(&["render", "env"]);
    assert_eq!(output.code, 1);
    assert!(
        output.stderr.contains("cannot be written inline"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("hunter2") && !output.stdout.contains("hunter2"));
}

// ---------------------------------------------------------------- end to end

/// The base of the end-to-end test: every kind, named after the environment, connections
/// pointing where the environment says.
fn write_estate(estate: &Estate) {
    let connections = support::connections("${var.sim_url}", "salt");
    estate.write("base/connections.yaml", &connections);
    estate.write(
        "base/estate.yaml",
        "kind: Sddc\nname: ${var.prefix}-sddc\nspec:\n  region: us-west-2\n  num_hosts: ${var.hosts}\n  vpc_cidr: ${var.cidr}\n  account_link: {delay: true}\n\
         ---\nkind: SaltTarget\nname: ${var.prefix} web\nspec:\n  desc: ${var.prefix} web tier\n  tgt:\n    '*': {tgt_type: glob, tgt: '${var.prefix}-web-*'}\n\
         ---\nkind: SaltJob\nname: deploy ${var.prefix}\nspec:\n  fun: cmd.run\n  desc: \"runs $${HOME}/deploy.sh on ${var.prefix}\"\n  target: ${var.prefix} web\n\
         ---\nkind: VcdApiToken\nname: ${var.prefix}-ci\nspec:\n  file: .secrets/${var.prefix}-ci.json\n\
         ---\nkind: VirtualMachine\nname: ${var.vm}\nspec:\n  power_state: POWERED_ON\n  cpu_count: ${var.cpus}\n",
    );
    let url = &estate.sim.base_url;
    estate.write(
        "envs/staging/env.yaml",
        &format!(
            "kind: Environment\nname: staging\nspec:\n  include: [../../base]\n  values:\n    sim_url: {url}\n    prefix: staging\n    hosts: 1\n    cidr: 10.20.0.0/16\n    vm: web-02\n    cpus: 2\n  patches:\n    - target: Sddc/staging-sddc\n      spec: {{sddc_type: 1NODE}}\n"
        ),
    );
    estate.write(
        "envs/prod/env.yaml",
        &format!(
            "kind: Environment\nname: prod\nspec:\n  include: [../../base]\n  values:\n    sim_url: {url}\n    prefix: prod\n    hosts: 3\n    cidr: 10.10.0.0/16\n    vm: db-01\n    cpus: 4\n  patches:\n    - target: Sddc/prod-sddc\n      lifecycle: {{prevent_destroy: true}}\n      spec: {{num_hosts: 4}}\n"
        ),
    );
}

fn objects_named<'a>(value: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if map.get("name").and_then(Value::as_str) == Some(name) {
                out.push(value);
            }
            map.values().for_each(|v| objects_named(v, name, out));
        }
        Value::Array(items) => items.iter().for_each(|v| objects_named(v, name, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_and_prod_from_one_base_apply_side_by_side_on_one_simulator() {
    let estate = Estate::start(14_400.0).await;
    write_estate(&estate);
    let counters = |estate: &Estate| {
        let url = format!("{}/_sim/counters", estate.sim.base_url);
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()["total"]
                .as_u64()
                .unwrap()
        }
    };

    // A broken environment contacts nothing.
    let before = counters(&estate).await;
    let broken = run_in(
        estate.path(),
        &["plan", "manifests/envs/staging", "--var", "hosts=many"],
    )
    .await;
    assert_eq!(broken.code, 1, "{}", broken.stderr);
    assert!(
        broken
            .stderr
            .contains("(after substituting `${var.hosts}`)")
    );
    assert_eq!(counters(&estate).await, before);

    for env in ["staging", "prod"] {
        let path = format!("manifests/envs/{env}");
        let plan = estate.run(&["plan", &path]).await;
        assert_eq!(plan.code, 0, "{env}: {}", plan.stderr);
        assert!(
            plan.stdout.contains(&format!("Sddc \"{env}-sddc\"")),
            "{env}: {}",
            plan.stdout
        );
        let apply = estate.run(&["apply", "--auto-approve", &path]).await;
        assert_eq!(apply.code, 0, "{env}: {}", apply.stderr);
    }
    // Each environment converged, and applying one left the other alone.
    for env in ["staging", "prod"] {
        let path = format!("manifests/envs/{env}");
        let plan = estate.run(&["plan", "--detailed-exitcode", &path]).await;
        assert_eq!(plan.code, 0, "{env}: {}\n{}", plan.stdout, plan.stderr);
        assert!(
            plan.stdout.contains("No changes."),
            "{env}: {}",
            plan.stdout
        );
    }
    let state = estate.state().await;
    // One SDDC each (their sizes are checked by the `No changes.` above).
    for name in ["staging-sddc", "prod-sddc"] {
        let mut found = Vec::new();
        objects_named(&state["vmc"], name, &mut found);
        let live = found
            .iter()
            .filter(|s| s.get("sddc_state").is_some_and(|st| st != "DELETED"))
            .count();
        assert_eq!(live, 1, "{name}: {found:#?}");
    }
    // The escape reached the server as a literal `${`.
    let mut jobs = Vec::new();
    objects_named(&state["raas"], "deploy prod", &mut jobs);
    assert_eq!(jobs.len(), 1, "{:#?}", state["raas"]);
    assert_eq!(jobs[0]["desc"], "runs ${HOME}/deploy.sh on prod");
    for name in ["staging web", "prod web", "deploy staging"] {
        let mut found = Vec::new();
        objects_named(&state["raas"], name, &mut found);
        assert_eq!(found.len(), 1, "{name}");
    }
    // Secret files of both tokens, each its own.
    for env in ["staging", "prod"] {
        let file = estate
            .path()
            .join(format!("manifests/base/.secrets/{env}-ci.json"));
        assert!(file.exists(), "{}", file.display());
    }
}

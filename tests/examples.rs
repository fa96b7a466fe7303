//! The examples, docs and command-line help stay true: example manifests validate, the
//! GitOps plan snapshots match what sextant prints, CI workflows parse and call real
//! commands with real flags, `docs/manifests.md` is generated from the JSON Schema,
//! `docs/cli.md` names every command and flag, every command's help has an example, and
//! completions and the man page are generated.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use serde_json::Value;
use sextant::cli::Cli;

use support::estate::run_blocking;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

// ---------------------------------------------------------------- example manifests

/// The manifest sets of the examples: each is loaded as one `sextant plan` would load it.
fn manifest_sets() -> Vec<Vec<PathBuf>> {
    let examples = root().join("examples");
    let gitops = examples.join("gitops");
    vec![
        vec![examples.join("quickstart")],
        vec![gitops.join("envs/staging")],
        vec![gitops.join("envs/prod")],
    ]
}

/// The environments of `examples/gitops`.
const GITOPS_ENVIRONMENTS: [&str; 2] = ["staging", "prod"];

#[test]
fn every_example_manifest_directory_validates() {
    let mut covered = BTreeSet::new();
    for set in manifest_sets() {
        let model = sextant::manifest::load(&set)
            .unwrap_or_else(|d| panic!("{set:?}:\n{}", d.render(false)));
        assert!(!model.resources.is_empty(), "{set:?} declares nothing");
        for path in &set {
            let mut files = Vec::new();
            files_under(path, &mut files);
            covered.extend(files);
        }
    }
    // The shared base is loaded through the environments that include it.
    let mut base = Vec::new();
    files_under(&root().join("examples/gitops/base"), &mut base);
    covered.extend(base);
    // No manifest under examples/ escapes the sets above (rendered snapshots aside: they
    // are checked against the environments below).
    let mut all = Vec::new();
    files_under(&root().join("examples"), &mut all);
    for file in all {
        let is_yaml = file.extension().is_some_and(|e| e == "yaml" || e == "yml");
        let rendered = file
            .parent()
            .is_some_and(|p| p.ends_with("gitops/rendered"));
        if is_yaml && !rendered && read(&file).lines().any(|l| l.starts_with("kind: ")) {
            assert!(
                covered.contains(&file),
                "{} is not validated",
                file.display()
            );
        }
    }
}

#[test]
fn gitops_rendered_snapshots_are_current() {
    let gitops = root().join("examples/gitops");
    for env in GITOPS_ENVIRONMENTS {
        let rendered = format!("rendered/{env}.yaml");
        let envs = format!("envs/{env}");
        let output = run_blocking(&gitops, &["render", "--check", &rendered, &envs]);
        assert_eq!(
            output.code, 0,
            "examples/gitops/rendered/{env}.yaml is stale: regenerate it with `sextant render envs/{env} > rendered/{env}.yaml` in examples/gitops\n{}{}",
            output.stdout, output.stderr
        );
    }
}

#[test]
fn gitops_environments_plan_on_a_fresh_simulator() {
    let gitops = root().join("examples/gitops");
    for env in GITOPS_ENVIRONMENTS {
        let dir = tempfile::tempdir().unwrap();
        let envs = gitops.join("envs").join(env);
        let output = run_blocking(
            dir.path(),
            &["plan", "--sim", "--no-color", envs.to_str().unwrap()],
        );
        assert!(
            output.stdout.contains(&format!("Sddc \"{env}-sddc\"")),
            "{env}: {}",
            output.stdout
        );
        sextant_snapshot!(format!("examples-gitops-{env}-plan"), output);
    }
}

// ---------------------------------------------------------------- CI workflows

/// Shell words of one line (single and double quotes, backslash escapes); operators such as
/// `>`, `|`, `&&`, `;` become their own words.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '>' | '|' | '&' | ';' | '(' | ')' => {
                if in_word && !(c == '>' && word.chars().all(|d| d.is_ascii_digit())) {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                in_word = false;
                let mut op = c.to_string();
                while let Some(&next) = chars.peek() {
                    if matches!(next, '>' | '|' | '&') {
                        op.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                words.push(op);
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn is_operator(word: &str) -> bool {
    word.chars()
        .all(|c| matches!(c, '>' | '|' | '&' | ';' | '(' | ')'))
}

/// Every `sextant …` command in `text`: the words after `sextant` in command position, up to
/// the next shell operator.
fn sextant_commands(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let words = shell_words(line.trim());
        let mut command_position = true;
        let mut i = 0;
        while i < words.len() {
            let word = &words[i];
            if command_position && word == "sextant" {
                let args: Vec<String> = words[i + 1..]
                    .iter()
                    .take_while(|w| !is_operator(w))
                    .cloned()
                    .collect();
                i += args.len();
                out.push(args);
                command_position = false;
            } else if is_operator(word) {
                // After `>` comes a file name, not a command.
                command_position = !word.contains('>');
            } else {
                command_position = matches!(
                    word.as_str(),
                    "if" | "then" | "do" | "!" | "time" | "{" | "else"
                );
            }
            i += 1;
        }
    }
    out
}

/// Every shell script in a parsed workflow: GitHub's `run`, GitLab's `script`,
/// `before_script` and `after_script` (a string or a list of strings).
fn scripts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| scripts(v, out)),
        Value::Object(map) => {
            for (key, v) in map {
                if matches!(
                    key.as_str(),
                    "run" | "script" | "before_script" | "after_script"
                ) {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        Value::Array(lines) => {
                            out.extend(lines.iter().filter_map(Value::as_str).map(String::from))
                        }
                        _ => {}
                    }
                } else {
                    scripts(v, out);
                }
            }
        }
        _ => {}
    }
}

fn check_commands(source: &str, commands: &[Vec<String>]) {
    for args in commands {
        let argv = std::iter::once("sextant".to_string()).chain(args.iter().cloned());
        if let Err(err) = Cli::try_parse_from(argv) {
            panic!(
                "{source}: `sextant {}` is not a valid command line:\n{err}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn ci_workflows_parse_and_call_real_commands() {
    let mut files = Vec::new();
    files_under(&root().join("examples/ci"), &mut files);
    let workflows: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    assert!(workflows.len() >= 4, "{workflows:?}");
    let mut seen = Vec::new();
    for file in &workflows {
        let text = read(file);
        let value: Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        assert!(value.is_object(), "{}", file.display());
        let mut all = Vec::new();
        scripts(&value, &mut all);
        let commands: Vec<Vec<String>> = all.iter().flat_map(|s| sextant_commands(s)).collect();
        assert!(
            !commands.is_empty(),
            "{} runs no sextant command",
            file.display()
        );
        check_commands(&file.display().to_string(), &commands);
        seen.extend(commands.into_iter().map(|c| c.join(" ")));
    }
    // What the issue asks the workflows to do is there.
    for needle in [
        "plan --no-color --out",
        "show --format markdown",
        "render --check rendered/$ENV_NAME.yaml envs/$ENV_NAME",
        "drift --baseline sextant/applied/$ENV_NAME --format junit --out",
        "apply --no-color reviewed.plan",
        "validate envs/staging envs/prod",
    ] {
        assert!(
            seen.iter().any(|c| c.contains(needle)),
            "no `{needle}` in {seen:#?}"
        );
    }
    let github = read(&root().join("examples/ci/github/sextant-apply.yml"));
    assert!(github.contains("concurrency:") && github.contains("cancel-in-progress: false"));
    let gitlab = read(&root().join("examples/ci/gitlab/.gitlab-ci.yml"));
    assert!(gitlab.contains("resource_group:"));
    // Applies record the applied commit in a tag, the baseline of the nightly drift job.
    for apply in [&github, &gitlab] {
        assert!(apply.contains("git tag -f \"sextant/applied/$ENV_NAME\""));
        assert!(apply.contains("refs/tags/sextant/applied/$ENV_NAME"));
    }
    let nightly = read(&root().join("examples/ci/github/sextant-drift.yml"));
    assert!(nightly.contains("junit") && !nightly.contains("--detailed-exitcode"));
    assert!(gitlab.contains("junit: \"drift-$ENV_NAME.xml\""));
}

#[test]
fn the_command_extractor_finds_commands_in_command_position_only() {
    let found = sextant_commands(
        "cargo install --locked sextant\nif ! sextant plan --detailed-exitcode a > \"out file\"; then x; fi\nset +e; sextant apply p.plan 2>&1 | tee log",
    );
    assert_eq!(
        found,
        vec![
            vec!["plan".to_string(), "--detailed-exitcode".into(), "a".into()],
            vec!["apply".to_string(), "p.plan".into()],
        ]
    );
}

#[test]
fn command_lines_in_the_docs_are_valid() {
    let mut docs = vec![
        root().join("README.md"),
        root().join("examples/gitops/README.md"),
    ];
    for name in ["cli.md", "simulator.md", "manifests.md", "locking.md"] {
        docs.push(root().join("docs").join(name));
    }
    let mut total = 0;
    for doc in docs {
        let text = read(&doc);
        // Only code blocks hold command lines.
        let mut code = String::new();
        let mut inside = false;
        for line in text.lines() {
            if let Some(info) = line.trim_start().strip_prefix("```") {
                // Shell blocks only: other blocks show output, YAML or a usage synopsis.
                inside = !inside && matches!(info.trim(), "sh" | "bash" | "shell" | "console");
            } else if inside {
                let line = line.split(" # ").next().unwrap_or(line);
                code.push_str(line.trim_start_matches("$ "));
                code.push('\n');
            }
        }
        let commands = sextant_commands(&code);
        total += commands.len();
        check_commands(&doc.display().to_string(), &commands);
    }
    assert!(total >= 10, "only {total} command lines found in the docs");
}

// ---------------------------------------------------------------- CLI help, docs/cli.md

fn all_commands(command: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("{prefix}{}", sub.get_name()).trim().to_string();
        out.push((name.clone(), sub.clone()));
        all_commands(sub, &format!("{name} "), out);
    }
}

#[test]
fn every_command_has_an_example_in_its_help() {
    let mut commands = Vec::new();
    all_commands(&Cli::command(), "", &mut commands);
    assert!(commands.len() >= 10, "{}", commands.len());
    for (name, mut command) in commands {
        let help = command.render_long_help().to_string();
        assert!(
            help.contains("Example"),
            "`sextant {name} --help` has no example:\n{help}"
        );
    }
}

#[test]
fn docs_cli_names_every_command_flag_and_exit_code() {
    let doc = read(&root().join("docs/cli.md"));
    let mut commands = Vec::new();
    let cli = Cli::command();
    all_commands(&cli, "", &mut commands);
    commands.push(("sextant".to_string(), cli));
    for (name, command) in commands {
        if name != "sextant" {
            assert!(
                doc.contains(&format!("sextant {name}")),
                "docs/cli.md does not describe `sextant {name}`"
            );
        }
        for arg in command.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    doc.contains(&format!("--{long}")),
                    "docs/cli.md does not mention `--{long}` of `{name}`"
                );
            }
        }
    }
    for code in ["`0`", "`1`", "`2`", "`130`"] {
        assert!(
            doc.contains(code),
            "docs/cli.md does not explain exit code {code}"
        );
    }
}

#[test]
fn completions_and_man_page_name_every_subcommand() {
    let subcommands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    let mut outputs = Vec::new();
    for shell in ["bash", "zsh", "fish"] {
        outputs.push((shell, vec!["completions", shell]));
    }
    outputs.push(("man", vec!["man"]));
    for (label, args) in outputs {
        let output = run_blocking(&root(), &args);
        assert_eq!(output.code, 0, "{label}");
        let text = output.stdout;
        assert!(text.len() > 500, "{label}: {text}");
        for sub in &subcommands {
            assert!(text.contains(sub.as_str()), "{label} does not name `{sub}`");
        }
        if label == "man" {
            assert!(text.starts_with(".ie") || text.contains(".TH"), "{label}");
            assert!(
                text.contains("\\-\\-detailed\\-exitcode"),
                "man lacks subcommand flags"
            );
        }
    }
    let bad = run_blocking(&root(), &["completions", "tcsh"]);
    assert_eq!(bad.code, 1);
}

// ---------------------------------------------------------------- docs/manifests.md

const MANIFESTS_PREAMBLE: &str = "\
# Manifest reference

<!-- Generated from schemas/manifest.schema.json by tests/examples.rs; do not edit.
     Regenerate with: SEXTANT_UPDATE_DOCS=1 cargo test --test examples manifests_md -->

A manifest file holds one or more YAML documents separated by `---`. Each document has a
`kind`, a `name` and (except for `ensure: absent`) a `spec`. Managed objects are addressed as
`Kind/name`; strings in a spec may read another object's attribute with
`${Kind/name.attribute}`, which also makes that object a dependency; `$${` is a literal `${`.
Secrets are never written inline: they are `{env: NAME}` or `{file: PATH}` and are read only
when a connection is used.

An [Environment](#environment) document builds one estate from shared manifests: it includes
files and directories, sets the values of `${var.NAME}` (anywhere a string may stand: a value
that is exactly `${var.NAME}` takes the value's type, inside a longer string it is written as
text; `--var NAME=VALUE` and then `--var-file FILE` override them) and patches documents by
address. In the tables below, [Variable](#variable) marks the fields where a whole
`${var.NAME}` stands for a value of another type.

The editor-friendly JSON Schema is `schemas/manifest.schema.json` (`sextant schema` prints
it); add `# yaml-language-server: $schema=<path>/manifest.schema.json` to a file for
completion and checks in editors. `sextant validate` checks everything below without any
credentials.

Kinds: [Connection](#connection), [Sddc](#sddc), [SaltTarget](#salttarget),
[SaltJob](#saltjob), [SaltSchedule](#saltschedule), [VcdApiToken](#vcdapitoken),
[VirtualMachine](#virtualmachine), [Environment](#environment). Shared types are at the end.
";

fn def_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = def_name(reference);
        return match name {
            "EnvRef" => "`{env: NAME}`".to_string(),
            "FileRef" => "`{file: PATH}`".to_string(),
            _ => format!("[{name}](#{})", name.to_lowercase()),
        };
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = schema.get(key) {
            let parts: Vec<String> = options
                .iter()
                .filter(|o| o.get("type") != Some(&Value::from("null")))
                .map(type_of)
                .collect();
            return parts.join(" or ");
        }
    }
    if let Some(constant) = schema.get("const") {
        return format!(
            "`{}`",
            constant.as_str().map_or(constant.to_string(), String::from)
        );
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        let values: Vec<String> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| format!("`{}`", v.as_str().map_or(v.to_string(), String::from)))
            .collect();
        return values.join(", ");
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    match types.as_slice() {
        ["array"] => match schema.get("items") {
            Some(Value::Bool(true)) | None => "list".to_string(),
            Some(items) => format!("list of {}", type_of(items)),
        },
        ["object"] => match schema.get("additionalProperties") {
            Some(Value::Bool(true)) => "map".to_string(),
            Some(Value::Bool(false)) | None => "object".to_string(),
            Some(values) => format!("map of {}", type_of(values)),
        },
        [] => "any".to_string(),
        many => many.join(" or "),
    }
}

fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn description(schema: &Value) -> String {
    schema
        .get("description")
        .and_then(Value::as_str)
        .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A `### Name` section for one `$defs` entry: its fields or its values.
fn def_section(name: &str, def: &Value) -> String {
    let mut out = format!("### {name}\n\n");
    let text = description(def);
    if !text.is_empty() {
        out.push_str(&format!("{text}\n\n"));
    }
    if let Some(Value::Object(properties)) = def.get("properties") {
        out.push_str(&properties_table(def, properties));
    } else if let Some(Value::Array(options)) = def.get("oneOf")
        && options.iter().all(|o| o.get("const").is_some())
    {
        out.push_str("| Value | Meaning |\n|---|---|\n");
        for option in options {
            out.push_str(&format!(
                "| {} | {} |\n",
                type_of(option),
                cell(&description(option))
            ));
        }
    } else {
        out.push_str(&format!("Type: {}.\n", type_of(def)));
    }
    out.push('\n');
    out
}

fn properties_table(def: &Value, properties: &serde_json::Map<String, Value>) -> String {
    let required: BTreeSet<&str> = def
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = "| Field | Type | Required | Description |\n|---|---|---|---|\n".to_string();
    for (field, schema) in properties {
        let mut text = description(schema);
        if schema.get("x-sextant-secret") == Some(&Value::Bool(true)) {
            text.push_str(" (secret)");
        }
        out.push_str(&format!(
            "| `{field}` | {} | {} | {} |\n",
            cell(&type_of(schema)),
            if required.contains(field.as_str()) {
                "yes"
            } else {
                ""
            },
            cell(&text)
        ));
    }
    out
}

fn manifests_md() -> String {
    let schema = sextant::manifest::manifest_schema();
    let defs = schema["$defs"].as_object().unwrap().clone();
    let mut out = MANIFESTS_PREAMBLE.to_string();
    let mut rendered = BTreeSet::new();
    for kind in sextant::manifest::DocumentKind::declared() {
        let document_name = format!("{kind}Document");
        let document = &defs[&document_name];
        rendered.insert(document_name.clone());
        out.push_str(&format!("\n## {kind}\n\n{}\n\n", description(document)));
        if matches!(kind, sextant::manifest::DocumentKind::Resource(_)) {
            out.push_str("`spec` is required unless `ensure: absent`.\n\n");
        }
        out.push_str(&properties_table(
            document,
            document["properties"].as_object().unwrap(),
        ));
        out.push('\n');
        if let Some(reference) = document["properties"]["spec"]["$ref"].as_str() {
            let name = def_name(reference).to_string();
            out.push_str(&def_section(&name, &defs[&name]));
            rendered.insert(name);
        }
    }
    let environment = &defs["EnvironmentDocument"];
    rendered.insert("EnvironmentDocument".to_string());
    out.push_str(&format!(
        "\n## Environment\n\n{}\n\n",
        description(environment)
    ));
    out.push_str(&properties_table(
        environment,
        environment["properties"].as_object().unwrap(),
    ));
    out.push('\n');
    for name in ["EnvironmentSpec", "PatchSpec", "IncludePath"] {
        out.push_str(&def_section(name, &defs[name]));
        rendered.insert(name.to_string());
    }
    out.push_str("\n## Shared types\n\n");
    for (name, def) in &defs {
        if !rendered.contains(name) {
            out.push_str(&def_section(name, def));
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[test]
fn manifests_md_is_generated_from_the_schema() {
    let path = root().join("docs/manifests.md");
    let generated = manifests_md();
    if std::env::var_os("SEXTANT_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = read(&path);
    assert!(
        committed == generated,
        "docs/manifests.md is stale: run `SEXTANT_UPDATE_DOCS=1 cargo test --test examples manifests_md`"
    );
    // Belt and braces: every property of every definition is named in the document.
    let schema = sextant::manifest::manifest_schema();
    for (name, def) in schema["$defs"].as_object().unwrap() {
        for field in def["properties"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.keys())
        {
            assert!(committed.contains(&format!("`{field}`")), "{name}.{field}");
        }
    }
}

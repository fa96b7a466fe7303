//! The layering of `src/` (DESIGN.md, STYLE.md): the model imports nothing above it, the
//! providers only the model, and the simulator none of the clients (it is a second, independent
//! reading of the wire protocols). Checked on the source text, comments left out, so a
//! violation fails here before it spreads.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::<module>` paths used by the code (not the comments) under `src/<layer>`.
fn uses(layer: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(!files.is_empty(), "no sources under {}", root.display());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (at, _) in code.match_indices("crate::") {
                let module: String = code[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push((format!("{}:{}", file.display(), number + 1), module));
            }
        }
    }
    found
}

fn assert_only(layer: &str, allowed: &[&str]) {
    let wrong: Vec<String> = uses(layer)
        .into_iter()
        .filter(|(_, module)| !allowed.contains(&module.as_str()))
        .map(|(place, module)| format!("{place}: crate::{module}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "src/{layer} may use only {allowed:?}:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_model_imports_nothing_above_it() {
    assert_only("model", &["model"]);
}

#[test]
fn providers_import_only_the_model() {
    assert_only("providers", &["model", "providers"]);
}

#[test]
fn the_simulator_imports_none_of_the_clients() {
    // `local_file` is a leaf: it imports nothing of the crate (checked below).
    assert_only("sim", &["model", "sim", "local_file"]);
}

#[test]
fn the_local_file_module_is_a_leaf() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/local_file.rs");
    let text = std::fs::read_to_string(path).unwrap();
    let code = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default());
    assert!(code.clone().count() > 10);
    assert!(code.filter(|line| line.contains("crate::")).count() == 0);
}

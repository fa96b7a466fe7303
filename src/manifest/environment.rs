//! Environments: a `kind: Environment` document includes shared manifests, sets the values
//! of `${var.NAME}` and patches documents by address. This layer sits between reading YAML
//! documents and checking them: every document of a run passes through a [`Layer`] that
//! substitutes variables and applies patches, so everything after it sees the final
//! documents, with the positions where each node was written (in the included file, or in
//! the environment file for what a patch brought in).
//!
//! It owns finding environments among the given paths, following includes (with cycles
//! reported as a path), merging values with `--var` / `--var-file` overrides, and the
//! located errors of all of these. It does not parse YAML itself (`node.rs`), check
//! structure (`structure.rs`) or build the model (`validate.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value as Json;

use super::Access;
use super::diagnostics::{Diagnostic, Diagnostics};
use super::did_you_mean;
use super::document_kind::DocumentAddress;
use super::files::{self, Confinement, SourceFile};
use super::node::{Entry, Node, Pos, Value, parse_documents_with};
use super::patch::{self, Inserted};
use super::schema::{ENVIRONMENT_DEF, checker_schema};
use super::structure::Checker;
use super::validate::{self, Share, SharedDocuments};
use super::variables::{
    Notes, Origin, SourceText, Substitution, Variable, Variables, first_reference, is_name,
};
use crate::model::Model;

/// The `kind` of an environment document.
pub const ENVIRONMENT_KIND: &str = "Environment";

/// Values given on the command line: `--var NAME=VALUE` (in order), then `--var-file FILE`
/// (in order); each overrides the environment's values and those before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub vars: Vec<(String, String)>,
    pub var_files: Vec<PathBuf>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty() && self.var_files.is_empty()
    }
}

/// An environment document found in a file.
struct Found {
    source: SourceFile,
    /// The file's real path, to recognise it when reached again.
    real: PathBuf,
    node: Node,
    /// The file's text, for precise columns in its patches.
    text: Arc<str>,
}

impl Found {
    fn file(&self) -> Arc<Path> {
        Arc::from(self.source.path.as_path())
    }

    fn name(&self) -> String {
        self.node
            .get("name")
            .and_then(Node::as_str)
            .unwrap_or(ENVIRONMENT_KIND)
            .to_string()
    }

    fn kind_pos(&self) -> Pos {
        self.node.get("kind").map_or(self.node.pos, |k| k.pos)
    }

    fn location(&self) -> String {
        let pos = self.kind_pos();
        format!("{}:{}:{}", self.source.path.display(), pos.line, pos.column)
    }
}

fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// `path` with `.` and `name/..` removed, without asking the file system (for messages and
/// for paths relative to an environment file).
fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// The environment documents in `sources`. A file is parsed here only when its text names
/// the kind; parse errors are left to the load, which reports them.
fn scan(sources: &[SourceFile]) -> Vec<Found> {
    let mut found = Vec::new();
    for source in sources {
        let mut ignored = Vec::new();
        let Some(text) = validate::read_file(source, &mut ignored) else {
            continue;
        };
        if !text.contains(ENVIRONMENT_KIND) {
            continue;
        }
        let Ok(docs) = parse_documents_with(&text, |node| node) else {
            continue;
        };
        let text: Arc<str> = Arc::from(text);
        for node in docs {
            if node.get("kind").and_then(Node::as_str) == Some(ENVIRONMENT_KIND) {
                found.push(Found {
                    source: source.clone(),
                    real: real_path(&source.path),
                    node,
                    text: Arc::clone(&text),
                });
            }
        }
    }
    found
}

/// One patch, ready to apply: its target address after substitution and the document
/// fields it merges.
struct Patch {
    target: String,
    /// Its field path in the environment document.
    path: String,
    file: Arc<Path>,
    target_pos: Pos,
    fields: Node,
}

/// A document field a patch moved into a document, for locating later errors in it.
struct Relocation {
    file: Arc<Path>,
    to: Arc<Path>,
    inserted: Vec<Inserted>,
}

impl Relocation {
    fn covers(&self, diagnostic: &Diagnostic) -> bool {
        let related = |a: &str, b: &str| {
            a == b || (a.starts_with(b) && matches!(a.as_bytes().get(b.len()), Some(b'.' | b'[')))
        };
        *self.file == *diagnostic.file
            && self.inserted.iter().any(|i| {
                i.pos.line as usize == diagnostic.line
                    && i.pos.column as usize == diagnostic.column
                    && (related(&diagnostic.path, &i.path) || related(&i.path, &diagnostic.path))
            })
    }
}

/// What every document of a run passes through before its structure is checked:
/// substitution of `${var.NAME}`, then the patches whose target is its address.
pub struct Layer {
    vars: Variables,
    patches: Vec<Patch>,
    by_target: HashMap<String, Vec<usize>>,
    matched: Vec<AtomicBool>,
    relocations: Mutex<Vec<Relocation>>,
    /// Addresses of the documents seen, for suggestions when a patch matches none.
    addresses: Mutex<BTreeSet<String>>,
    /// The final documents, kept for `render`.
    kept: Option<Mutex<Vec<Node>>>,
    /// Whether an `Environment` document among the documents is an error (it is read
    /// before the layer exists, so it is skipped otherwise).
    reject_environments: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Layer {
    fn new(vars: Variables, patches: Vec<Patch>) -> Self {
        let mut by_target: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, patch) in patches.iter().enumerate() {
            by_target
                .entry(patch.target.clone())
                .or_default()
                .push(index);
        }
        Self {
            matched: patches.iter().map(|_| AtomicBool::new(false)).collect(),
            vars,
            patches,
            by_target,
            relocations: Mutex::new(Vec::new()),
            addresses: Mutex::new(BTreeSet::new()),
            kept: None,
            reject_environments: false,
        }
    }

    /// No environment: documents are read as written, and a `${var.NAME}` is an error.
    pub fn flat() -> Self {
        Self::new(Variables::none(), Vec::new())
    }

    /// Rewrites one parsed document; `None` drops it (an environment document).
    pub fn prepare(
        &self,
        source: &SourceText<'_>,
        mut node: Node,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<(Node, Notes)> {
        if let Some(kind) = node
            .get("kind")
            .filter(|k| k.as_str() == Some(ENVIRONMENT_KIND))
        {
            if self.reject_environments {
                errors.push(
                    Diagnostic::new(
                        source.file,
                        kind.pos,
                        "kind",
                        "an `Environment` is read from a manifest file or directory, not here",
                    )
                    .with_hint(Some(
                        "run sextant on the environment's directory".to_string(),
                    )),
                );
            }
            return None;
        }
        let notes = Substitution {
            vars: &self.vars,
            source,
        }
        .apply(&mut node, errors);
        if !self.patches.is_empty() {
            self.patch(source.file, &mut node);
        }
        if let Some(kept) = &self.kept {
            lock(kept).push(node.clone());
        }
        Some((node, notes))
    }

    fn patch(&self, file: &Arc<Path>, node: &mut Node) {
        let (Some(kind), Some(name)) = (
            node.get("kind").and_then(Node::as_str),
            node.get("name").and_then(Node::as_str),
        ) else {
            return;
        };
        let address = format!("{kind}/{name}");
        let targets = self.by_target.get(&address).cloned();
        lock(&self.addresses).insert(address);
        for index in targets.into_iter().flatten() {
            let patch = &self.patches[index];
            let mut inserted = Vec::new();
            patch::merge(node, &patch.fields, &mut inserted);
            self.matched[index].store(true, Ordering::Relaxed);
            lock(&self.relocations).push(Relocation {
                file: Arc::clone(file),
                to: Arc::clone(&patch.file),
                inserted,
            });
        }
    }

    /// Adjusts the structural errors of one document (those from `first` on): an error at
    /// a reference that could not be substituted is dropped (it was reported), one at a
    /// substituted value names the variable.
    pub fn annotate(&self, notes: &Notes, errors: &mut Vec<Diagnostic>, first: usize) {
        if notes.failed.is_empty() && notes.replaced.is_empty() {
            return;
        }
        let at = |d: &Diagnostic, pos: &Pos| {
            d.line == pos.line as usize && d.column == pos.column as usize
        };
        let mut index = first;
        while index < errors.len() {
            if notes.failed.iter().any(|pos| at(&errors[index], pos)) {
                errors.remove(index);
                continue;
            }
            if let Some((_, name)) = notes
                .replaced
                .iter()
                .find(|(pos, _)| at(&errors[index], pos))
            {
                let diagnostic = &mut errors[index];
                diagnostic
                    .message
                    .push_str(&format!(" (after substituting `${{var.{name}}}`)"));
                let origin = match self.vars.get(name).map(|v| &v.origin) {
                    Some(Origin::File { file, pos }) => {
                        format!("set at {}:{}:{}", file.display(), pos.line, pos.column)
                    }
                    _ => "set by `--var`".to_string(),
                };
                let set = format!("`{name}` is {origin}");
                // A hint to quote the value is beside the point after substitution.
                diagnostic.hint = match diagnostic.hint.take() {
                    Some(hint) if !hint.starts_with("quote the value") => {
                        Some(format!("{hint}; {set}"))
                    }
                    _ => Some(set),
                };
            }
            index += 1;
        }
    }

    /// Completes a load: errors a patch brought into a document move to the environment
    /// file, and a patch that matched no document is an error.
    fn finish(&self, result: Result<Model, Diagnostics>) -> Result<Model, Diagnostics> {
        let mut extra = Vec::new();
        let addresses = lock(&self.addresses);
        for (index, patch) in self.patches.iter().enumerate() {
            if self.matched[index].load(Ordering::Relaxed) {
                continue;
            }
            let hint = did_you_mean::closest(&patch.target, addresses.iter().map(String::as_str))
                .map(|close| format!("did you mean `{close}`?"))
                .or_else(|| {
                    Some(
                        "a patch applies to the documents with that address after substitution"
                            .to_string(),
                    )
                });
            extra.push(
                Diagnostic::new(
                    &patch.file,
                    patch.target_pos,
                    patch.path.clone(),
                    format!("patch target `{}` matches no document", patch.target),
                )
                .with_hint(hint),
            );
        }
        let relocations = lock(&self.relocations);
        match result {
            Ok(model) if extra.is_empty() => Ok(model),
            Ok(_) => {
                let mut diagnostics = Diagnostics {
                    errors: extra,
                    warnings: Vec::new(),
                };
                diagnostics.sort();
                Err(diagnostics)
            }
            Err(mut diagnostics) => {
                for diagnostic in &mut diagnostics.errors {
                    if let Some(relocation) = relocations.iter().find(|r| r.covers(diagnostic)) {
                        diagnostic.file = relocation.to.to_path_buf();
                    }
                }
                diagnostics.errors.append(&mut extra);
                diagnostics.sort();
                Err(diagnostics)
            }
        }
    }
}

/// The environment a run loads: its name and the file that declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvironmentInfo {
    pub name: String,
    pub file: PathBuf,
}

/// The documents of one run: the files to read and the layer every document passes
/// through. A run without an environment reads the files as written.
pub struct Unit {
    pub environment: Option<EnvironmentInfo>,
    files: Vec<SourceFile>,
    /// The given paths and everything included: the manifest tree of the run.
    confinement: Confinement,
    layer: Layer,
    errors: Vec<Diagnostic>,
    share: Share,
}

impl Unit {
    fn flat(files: Vec<SourceFile>, confinement: Confinement, errors: Vec<Diagnostic>) -> Self {
        Self {
            environment: None,
            files,
            confinement,
            layer: Layer::flat(),
            errors,
            share: Share::None,
        }
    }

    /// Hands this run's parsed documents to another run of nearly the same files (see
    /// [`SharedDocuments`]), when both read the files as written (no environment): the
    /// other run then parses only what differs.
    pub fn share_documents(&mut self, to: std::sync::mpsc::SyncSender<SharedDocuments>) {
        if self.environment.is_none() {
            self.share = Share::Send(to);
        }
    }

    /// Takes the documents another run hands over with [`Unit::share_documents`] (waiting
    /// for them), when this run reads its files as written.
    pub fn reuse_documents(&mut self, from: std::sync::mpsc::Receiver<SharedDocuments>) {
        if self.environment.is_none() {
            self.share = Share::Receive(from);
        }
    }

    /// Keeps the final documents, for [`Unit::render`].
    pub fn keep_documents(&mut self) {
        self.layer.kept = Some(Mutex::new(Vec::new()));
    }

    /// Loads and validates the unit's documents.
    pub fn load(self) -> Result<Model, Diagnostics> {
        let result = validate::validate_files(
            &self.files,
            &self.confinement,
            self.errors,
            &self.layer,
            self.share,
        );
        self.layer.finish(result)
    }

    /// Loads, validates and returns the final documents (kept with [`Unit::keep_documents`]).
    pub fn load_documents(mut self) -> Result<(Model, Vec<Node>), Diagnostics> {
        if self.layer.kept.is_none() {
            self.keep_documents();
        }
        let share = std::mem::replace(&mut self.share, Share::None);
        let result = validate::validate_files(
            &self.files,
            &self.confinement,
            self.errors,
            &self.layer,
            share,
        );
        let model = self.layer.finish(result)?;
        let documents = self
            .layer
            .kept
            .map(|kept| kept.into_inner().unwrap_or_else(PoisonError::into_inner))
            .unwrap_or_default();
        Ok((model, documents))
    }
}

/// Loads one text as a file named `source` (no environment: an `Environment` is an error).
pub fn load_text(
    source: &SourceFile,
    confinement: &Confinement,
    text: &str,
) -> Result<Model, Diagnostics> {
    let mut layer = Layer::flat();
    layer.reject_environments = true;
    let result = validate::validate_text(source, confinement, text, &layer);
    layer.finish(result)
}

/// The run for `paths`: one environment at most.
pub fn unit(
    paths: &[PathBuf],
    overrides: &Overrides,
    access: &Access,
) -> Result<Unit, Diagnostics> {
    let mut errors = Vec::new();
    let confinement = Confinement::new(paths, access);
    let sources = files::discover(paths, &confinement, &mut errors);
    let mut found = scan(&sources);
    match found.len() {
        0 => Ok(Unit::flat(sources, confinement, errors)),
        1 => Ok(environment_unit(
            found.remove(0),
            sources,
            errors,
            overrides,
            (paths, access),
        )),
        _ => {
            let first = &found[0];
            let mut diagnostics = Diagnostics::default();
            for other in &found[1..] {
                diagnostics.push(
                    Diagnostic::new(
                        &other.source.path,
                        other.kind_pos(),
                        "kind",
                        format!(
                            "a second environment, `{}`, in one run (the first is `{}` at {})",
                            other.name(),
                            first.name(),
                            first.location()
                        ),
                    )
                    .with_hint(Some(
                        "this command loads one environment per run: give it one environment's directory (`sextant validate` checks several)"
                            .to_string(),
                    )),
                );
            }
            diagnostics.sort();
            Err(diagnostics)
        }
    }
}

/// The runs for `paths` when each environment is checked on its own (`validate`): one per
/// environment, with the files under its directory, and one for files under none.
pub fn units(paths: &[PathBuf], overrides: &Overrides, access: &Access) -> Vec<Unit> {
    let mut errors = Vec::new();
    let confinement = Confinement::new(paths, access);
    let sources = files::discover(paths, &confinement, &mut errors);
    let found = scan(&sources);
    if found.len() < 2 {
        let mut found = found;
        return vec![match found.pop() {
            None => Unit::flat(sources, confinement, errors),
            Some(env) => environment_unit(env, sources, errors, overrides, (paths, access)),
        }];
    }
    // Each file goes with the environment whose directory holds it most closely.
    let dirs: Vec<PathBuf> = found
        .iter()
        .map(|f| f.real.parent().map(Path::to_path_buf).unwrap_or_default())
        .collect();
    let mut groups: Vec<Vec<SourceFile>> = vec![Vec::new(); found.len()];
    let mut loose = Vec::new();
    for source in sources {
        let real = real_path(&source.path);
        let owner = dirs
            .iter()
            .enumerate()
            .filter(|(_, dir)| real.starts_with(dir))
            .max_by_key(|(_, dir)| dir.components().count())
            .map(|(index, _)| index);
        match owner {
            Some(index) => groups[index].push(source),
            None => loose.push(source),
        }
    }
    let mut units = Vec::new();
    let mut first_in_dir: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for (index, (env, files)) in found.into_iter().zip(groups).enumerate() {
        if let Some(&first) = first_in_dir.get(&dirs[index]) {
            let first: &Unit = &units[first];
            let first_name = first
                .environment
                .as_ref()
                .map(|e| e.name.clone())
                .unwrap_or_default();
            errors.push(
                Diagnostic::new(
                    &env.source.path,
                    env.kind_pos(),
                    "kind",
                    format!(
                        "a second environment, `{}`, in the directory of environment `{first_name}`",
                        env.name()
                    ),
                )
                .with_hint(Some(
                    "an environment directory holds one `Environment` document".to_string(),
                )),
            );
            continue;
        }
        first_in_dir.insert(dirs[index].clone(), units.len());
        units.push(environment_unit(
            env,
            files,
            Vec::new(),
            overrides,
            (paths, access),
        ));
    }
    if !loose.is_empty() {
        units.push(Unit::flat(loose, confinement, Vec::new()));
    }
    if let Some(first) = units.first_mut() {
        first.errors.append(&mut errors);
    }
    units
}

/// Builds the run of one environment: follows its includes, merges values and overrides,
/// and prepares its patches.
/// `given` are the run's paths: with the included ones (and the operator's directories of
/// `access`) they bound what the run may read and write.
fn environment_unit(
    env: Found,
    own: Vec<SourceFile>,
    errors: Vec<Diagnostic>,
    overrides: &Overrides,
    (given, access): (&[PathBuf], &Access),
) -> Unit {
    let schema = checker_schema();
    let info = EnvironmentInfo {
        name: env.name(),
        file: env.source.path.clone(),
    };
    let mut builder = Builder {
        schema,
        access,
        included: Vec::new(),
        errors,
        files: Vec::new(),
        seen: BTreeSet::new(),
        layers: Vec::new(),
        stack: Vec::new(),
        done: BTreeSet::new(),
    };
    builder.environment(&env);
    for source in own {
        builder.add_file(source);
    }
    let Builder {
        mut errors,
        files,
        layers,
        included,
        ..
    } = builder;
    let roots: Vec<PathBuf> = given.iter().cloned().chain(included).collect();
    let confinement = Confinement::new(&roots, access);
    let mut vars = Variables::of_environment(&info.name);
    for layer in &layers {
        for (name, value) in &layer.values {
            vars.set(
                name,
                Variable {
                    value: value.clone(),
                    origin: Origin::File {
                        file: Arc::clone(&layer.file),
                        pos: value.pos,
                    },
                },
            );
        }
    }
    apply_overrides(&env, overrides, &mut vars, &mut errors);
    for (name, variable) in vars.iter() {
        let Some(pos) = first_reference(&variable.value) else {
            continue;
        };
        let (file, pos, path) = match &variable.origin {
            Origin::File { file, .. } => (file.to_path_buf(), pos, format!("spec.values.{name}")),
            Origin::Flag => (
                env.source.path.clone(),
                env.node.get("name").map_or(env.node.pos, |n| n.pos),
                "spec.values".to_string(),
            ),
        };
        errors.push(
            Diagnostic::new(&file, pos, path, format!("the value of `{name}` uses a variable"))
                .with_hint(Some(
                    "values are inserted as written, never substituted: write the text out, or `$${` for a literal `${`"
                        .to_string(),
                )),
        );
    }
    let mut patches = Vec::new();
    for layer in &layers {
        let source = SourceText::new(&layer.file, &layer.text);
        for (index, raw) in layer.patches.iter().enumerate() {
            let mut node = raw.clone();
            let first = errors.len();
            Substitution {
                vars: &vars,
                source: &source,
            }
            .apply(&mut node, &mut errors);
            let prefix = format!("spec.patches[{index}]");
            for error in &mut errors[first..] {
                error.path = if error.path.is_empty() {
                    prefix.clone()
                } else {
                    format!("{prefix}.{}", error.path)
                };
            }
            if let Some(patch) = ready_patch(&layer.file, node, index, &mut errors) {
                patches.push(patch);
            }
        }
    }
    Unit {
        environment: Some(info),
        files,
        confinement,
        layer: Layer::new(vars, patches),
        errors,
        share: Share::None,
    }
}

/// A patch node (one item of `spec.patches`) as a [`Patch`]; `None` when it is not usable.
fn ready_patch(
    file: &Arc<Path>,
    node: Node,
    index: usize,
    errors: &mut Vec<Diagnostic>,
) -> Option<Patch> {
    let Value::Map(entries) = node.value else {
        return None;
    };
    let target = entries
        .iter()
        .find(|e| e.key.as_str() == Some("target"))
        .map(|e| e.value.clone())?;
    let text = target.as_str()?.to_string();
    if DocumentAddress::parse(&text).is_none() {
        errors.push(
            Diagnostic::new(
                file,
                target.pos,
                format!("spec.patches[{index}].target"),
                format!("patch target `{text}` is not an address"),
            )
            .with_hint(Some(
                "write `Kind/name`, e.g. `Sddc/prod` (after substitution)".to_string(),
            )),
        );
        return None;
    }
    let fields: Vec<Entry> = entries
        .into_vec()
        .into_iter()
        .filter(|e| e.key.as_str() != Some("target"))
        .collect();
    Some(Patch {
        target: text,
        path: format!("spec.patches[{index}].target"),
        file: Arc::clone(file),
        target_pos: target.pos,
        fields: Node {
            pos: node.pos,
            value: Value::Map(fields.into_boxed_slice()),
        },
    })
}

/// Applies `--var` then `--var-file` over the environment's values. Each name must be one
/// the environment sets.
fn apply_overrides(
    env: &Found,
    overrides: &Overrides,
    vars: &mut Variables,
    errors: &mut Vec<Diagnostic>,
) {
    let env_name = env.name();
    let name_pos = env.node.get("name").map_or(env.node.pos, |n| n.pos);
    let unknown_hint = |vars: &Variables, name: &str| {
        did_you_mean::closest(name, vars.names())
            .map(|close| format!("did you mean `{close}`?"))
            .or_else(|| {
                Some(format!(
                    "an override replaces a value the environment sets: add `{name}` to `spec.values` first"
                ))
            })
    };
    for (name, text) in &overrides.vars {
        if !vars.contains(name) {
            errors.push(
                Diagnostic::new(
                    &env.source.path,
                    name_pos,
                    "spec.values",
                    format!(
                        "`--var {name}` sets a variable environment `{env_name}` does not define"
                    ),
                )
                .with_hint(unknown_hint(vars, name)),
            );
            continue;
        }
        vars.set(
            name,
            Variable {
                value: flag_value(text),
                origin: Origin::Flag,
            },
        );
    }
    for path in &overrides.var_files {
        let source = SourceFile {
            path: path.clone(),
            base_dir: PathBuf::new(),
        };
        let Some(text) = validate::read_file(&source, errors) else {
            continue;
        };
        let docs = match parse_documents_with(&text, |node| node) {
            Ok(docs) => docs,
            Err(err) => {
                errors.push(Diagnostic::new(
                    path,
                    err.pos,
                    "",
                    format!("invalid YAML: {}", err.message),
                ));
                continue;
            }
        };
        let file: Arc<Path> = Arc::from(path.as_path());
        for doc in docs {
            let Some(entries) = doc.as_map() else {
                errors.push(
                    Diagnostic::new(
                        path,
                        doc.pos,
                        "",
                        format!(
                            "a variable file holds a mapping of names to values, found {}",
                            doc.value.describe()
                        ),
                    )
                    .with_hint(Some("write `NAME: value` lines".to_string())),
                );
                continue;
            };
            for entry in entries {
                let name = entry.key.key_text();
                if !vars.contains(&name) {
                    errors.push(
                        Diagnostic::new(
                            path,
                            entry.key.pos,
                            name.clone(),
                            format!("`{name}` is not a variable environment `{env_name}` defines"),
                        )
                        .with_hint(unknown_hint(vars, &name)),
                    );
                    continue;
                }
                vars.set(
                    &name,
                    Variable {
                        value: entry.value.clone(),
                        origin: Origin::File {
                            file: Arc::clone(&file),
                            pos: entry.value.pos,
                        },
                    },
                );
            }
        }
    }
}

/// The value of `--var NAME=VALUE`: VALUE read as a YAML scalar or collection (`6` is an
/// integer, `"6"` a string), the text itself when it is not valid YAML, `""` when empty.
fn flag_value(text: &str) -> Node {
    if matches!(text.trim(), "null" | "~") {
        return Node {
            pos: Pos::START,
            value: Value::Null,
        };
    }
    let parsed = parse_documents_with(text, |node| node)
        .ok()
        .and_then(|mut docs| (docs.len() == 1).then(|| docs.remove(0)));
    let value = match parsed {
        Some(node) if node.value != Value::Null => node.value,
        _ => Value::String(super::node::Text::new(text)),
    };
    Node {
        pos: Pos::START,
        value,
    }
}

/// One environment's part of a run, in the order layers apply (included ones first).
struct EnvLayer {
    file: Arc<Path>,
    text: Arc<str>,
    values: Vec<(String, Node)>,
    patches: Vec<Node>,
}

struct Builder<'a> {
    schema: &'a Json,
    access: &'a Access,
    /// Every path included, for the run's confinement.
    included: Vec<PathBuf>,
    errors: Vec<Diagnostic>,
    files: Vec<SourceFile>,
    seen: BTreeSet<PathBuf>,
    layers: Vec<EnvLayer>,
    /// The environments being followed, outermost first: (real path, path for messages).
    stack: Vec<(PathBuf, PathBuf)>,
    done: BTreeSet<PathBuf>,
}

impl Builder<'_> {
    fn add_file(&mut self, source: SourceFile) {
        if self.seen.insert(real_path(&source.path)) {
            self.files.push(source);
        }
    }

    fn environment(&mut self, env: &Found) {
        if !self.done.insert(env.real.clone()) {
            return;
        }
        let file = env.file();
        let checker = Checker::new(self.schema, &env.source.path);
        if let Some(def) = checker.definition(ENVIRONMENT_DEF) {
            checker.check(def, &env.node, "", &mut self.errors);
        }
        let spec = env.node.get("spec");
        let mut values = Vec::new();
        for entry in spec
            .and_then(|s| s.get("values"))
            .and_then(Node::as_map)
            .unwrap_or_default()
        {
            let Some(name) = entry.key.as_str() else {
                continue;
            };
            if !is_name(name) {
                self.errors.push(
                    Diagnostic::new(
                        &env.source.path,
                        entry.key.pos,
                        format!("spec.values.{name}"),
                        format!("`{name}` is not a variable name"),
                    )
                    .with_hint(Some(
                        "variable names are letters, digits, `_` and `-`, starting with a letter or `_`"
                            .to_string(),
                    )),
                );
                continue;
            }
            values.push((name.to_string(), entry.value.clone()));
        }
        let patches: Vec<Node> = spec
            .and_then(|s| s.get("patches"))
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .to_vec();
        self.stack.push((env.real.clone(), env.source.path.clone()));
        for item in spec
            .and_then(|s| s.get("include"))
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            if let Some(text) = item.as_str().filter(|t| !t.is_empty()) {
                self.include(env, item.pos, text);
            }
        }
        self.stack.pop();
        self.add_file(env.source.clone());
        self.layers.push(EnvLayer {
            file,
            text: Arc::clone(&env.text),
            values,
            patches,
        });
    }

    fn include(&mut self, env: &Found, pos: Pos, text: &str) {
        let dir = env.source.path.parent().unwrap_or(Path::new(""));
        let path = normalize(&dir.join(text));
        let error = |message: String, hint: String| {
            Diagnostic::new(&env.source.path, pos, "spec.include", message).with_hint(Some(hint))
        };
        if !path.exists() {
            let shown = if dir.as_os_str().is_empty() {
                ".".to_string()
            } else {
                dir.display().to_string()
            };
            self.errors.push(error(
                format!("include `{text}` does not exist"),
                format!(
                    "include paths are relative to the environment file's directory, `{shown}`"
                ),
            ));
            return;
        }
        let mut found_errors = Vec::new();
        let include = std::slice::from_ref(&path);
        let sources = files::discover(
            include,
            &Confinement::new(include, self.access),
            &mut found_errors,
        );
        if sources.is_empty() {
            self.errors.push(error(
                format!("include `{text}` holds no manifest files"),
                "manifests are `*.yaml` or `*.yml` files".to_string(),
            ));
            return;
        }
        self.errors.append(&mut found_errors);
        self.included.push(path.clone());
        let nested = scan(&sources);
        for found in &nested {
            if let Some(start) = self.stack.iter().position(|(real, _)| *real == found.real) {
                let mut cycle: Vec<String> = self.stack[start..]
                    .iter()
                    .map(|(_, shown)| shown.display().to_string())
                    .collect();
                cycle.push(found.source.path.display().to_string());
                self.errors.push(error(
                    format!("include cycle: `{}`", cycle.join(" -> ")),
                    "an environment cannot include itself, directly or through the environments it includes".to_string(),
                ));
                return;
            }
        }
        match nested.as_slice() {
            [] => {}
            [inner] => self.environment(inner),
            several => {
                let names: Vec<String> =
                    several.iter().map(|f| format!("`{}`", f.name())).collect();
                self.errors.push(error(
                    format!(
                        "include `{text}` holds {} environments ({})",
                        several.len(),
                        names.join(", ")
                    ),
                    "include one environment's directory, or the shared manifests themselves"
                        .to_string(),
                ));
                return;
            }
        }
        for source in sources {
            self.add_file(source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    /// Errors of loading `path` under `dir`, as `file:line:col path: message`.
    fn errors(dir: &Path, path: &str) -> Vec<String> {
        let unit = unit(&[dir.join(path)], &Overrides::default(), &Access::default()).unwrap();
        match unit.load() {
            Ok(_) => Vec::new(),
            Err(d) => d
                .errors
                .iter()
                .map(|e| {
                    let file = e.file.strip_prefix(dir).unwrap_or(&e.file);
                    format!(
                        "{}:{}:{} {}: {}",
                        file.display(),
                        e.line,
                        e.column,
                        e.path,
                        e.message
                    )
                })
                .collect(),
        }
    }

    const CONN: &str = "kind: Connection\nname: vmc\nspec: {type: vmc, api_token: {env: T}}\n";

    #[test]
    fn an_environment_that_includes_its_own_directory_is_a_cycle() {
        let dir = tree(&[(
            "env/env.yaml",
            "kind: Environment\nname: e\nspec:\n  include: [.]\n",
        )]);
        let found = errors(dir.path(), "env");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("include cycle: `"), "{found:?}");
        assert!(
            found[0].starts_with("env/env.yaml:4:13 spec.include"),
            "{found:?}"
        );
    }

    #[test]
    fn includes_reached_twice_are_read_once() {
        let dir = tree(&[
            ("base/a.yaml", CONN),
            (
                "mid/env.yaml",
                "kind: Environment\nname: mid\nspec:\n  include: [../base]\n  values: {x: 1}\n",
            ),
            (
                "top/env.yaml",
                "kind: Environment\nname: top\nspec:\n  include: [../base, ../mid, ../base/a.yaml]\n",
            ),
        ]);
        assert_eq!(errors(dir.path(), "top"), Vec::<String>::new());
    }

    #[test]
    fn an_include_of_several_environments_or_of_nothing_is_an_error() {
        let dir = tree(&[
            ("envs/a/env.yaml", "kind: Environment\nname: a\nspec: {}\n"),
            ("envs/b/env.yaml", "kind: Environment\nname: b\nspec: {}\n"),
            ("notes/readme.txt", "nothing"),
            (
                "top/env.yaml",
                "kind: Environment\nname: top\nspec:\n  include: [../envs, ../notes]\n",
            ),
        ]);
        let found = errors(dir.path(), "top");
        assert_eq!(
            found,
            vec![
                "top/env.yaml:4:13 spec.include: include `../envs` holds 2 environments (`a`, `b`)",
                "top/env.yaml:4:22 spec.include: include `../notes` holds no manifest files",
            ]
        );
    }

    #[test]
    fn validate_runs_each_environment_with_the_files_of_its_directory() {
        let dir = tree(&[
            (
                "envs/a/env.yaml",
                "kind: Environment\nname: a\nspec: {values: {na: vmc}}\n",
            ),
            (
                "envs/a/c.yaml",
                "kind: Connection\nname: ${var.na}\nspec: {type: vmc, api_token: {env: T}}\n",
            ),
            (
                "envs/b/env.yaml",
                "kind: Environment\nname: b\nspec: {values: {mb: vmc}}\n",
            ),
            (
                "envs/b/c.yaml",
                "kind: Connection\nname: ${var.mb}\nspec: {type: vmc, api_token: {env: T}}\n",
            ),
            (
                "envs/b/twin.yaml",
                "kind: Environment\nname: twin\nspec: {}\n",
            ),
            ("loose.yaml", CONN),
        ]);
        let units = units(
            &[dir.path().to_path_buf()],
            &Overrides::default(),
            &Access::default(),
        );
        let names: Vec<Option<String>> = units
            .iter()
            .map(|u| u.environment.as_ref().map(|e| e.name.clone()))
            .collect();
        assert_eq!(names, vec![Some("a".into()), Some("b".into()), None]);
        let results: Vec<bool> = units.into_iter().map(|u| u.load().is_ok()).collect();
        // The second environment in b's directory is reported with the first run.
        assert_eq!(results, vec![false, true, true]);
        // One run: two environments are an error naming both.
        let Err(diagnostics) = unit(
            &[dir.path().join("envs")],
            &Overrides::default(),
            &Access::default(),
        ) else {
            panic!("two environments loaded as one run");
        };
        assert!(
            diagnostics.errors[0]
                .message
                .contains("a second environment")
        );
    }

    #[test]
    fn var_files_must_be_mappings_of_defined_names() {
        let dir = tree(&[
            (
                "env/env.yaml",
                &format!(
                    "kind: Environment\nname: e\nspec:\n  values: {{nm: vmc}}\n---\n{}",
                    CONN.replace("name: vmc", "name: ${var.nm}")
                ),
            ),
            ("vars.yaml", "nm: other\nmm: 1\n"),
            ("list.yaml", "- n\n"),
        ]);
        let overrides = Overrides {
            vars: Vec::new(),
            var_files: vec![dir.path().join("vars.yaml"), dir.path().join("list.yaml")],
        };
        let result = unit(&[dir.path().join("env")], &overrides, &Access::default())
            .unwrap()
            .load();
        let messages: Vec<String> = result
            .unwrap_err()
            .errors
            .iter()
            .map(|e| format!("{}:{} {}", e.line, e.column, e.message))
            .collect();
        assert_eq!(
            messages,
            vec![
                "1:1 a variable file holds a mapping of names to values, found a list",
                "2:1 `mm` is not a variable environment `e` defines",
            ]
        );
    }

    #[test]
    fn paths_are_normalized_without_the_file_system() {
        assert_eq!(
            normalize(Path::new("envs/prod/../../base")),
            PathBuf::from("base")
        );
        assert_eq!(normalize(Path::new("./a/./b")), PathBuf::from("a/b"));
        assert_eq!(normalize(Path::new("../../x")), PathBuf::from("../../x"));
        assert_eq!(normalize(Path::new("/a/../../b")), PathBuf::from("/b"));
        assert_eq!(normalize(Path::new("a/..")), PathBuf::from("."));
    }

    #[test]
    fn flag_values_are_typed_like_yaml() {
        assert_eq!(flag_value("6").value, Value::Int(6));
        assert_eq!(flag_value("true").value, Value::Bool(true));
        assert_eq!(flag_value("\"6\"").as_str(), Some("6"));
        assert_eq!(flag_value("prod-eu").as_str(), Some("prod-eu"));
        assert_eq!(flag_value("").as_str(), Some(""));
        assert_eq!(flag_value("a: b: c").as_str(), Some("a: b: c"));
        assert_eq!(flag_value("null").value, Value::Null);
        assert!(flag_value("{env: X}").as_map().is_some());
    }
}

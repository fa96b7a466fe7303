//! Finding manifest files: explicit files as given, directories walked recursively in
//! sorted order, skipping dot-directories (`.git`, `.github`) and non-YAML files; and, when
//! no path is given, the current directory's own YAML files that declare a sextant `kind`.

use std::path::{Path, PathBuf};

use super::diagnostics::Diagnostic;
use super::node::Pos;

/// One manifest file: how to name it in messages, and its directory as an absolute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub base_dir: PathBuf,
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n != "." && n != "..")
}

fn source_file(path: PathBuf) -> SourceFile {
    let absolute = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    let base_dir = absolute
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    SourceFile { path, base_dir }
}

/// Largest manifest file read (128 MiB): a larger one is refused with an error naming it.
/// A generated file of 100,000 resources is about a fifth of it.
pub const MAX_MANIFEST_BYTES: u64 = 128 * 1024 * 1024;

/// The directories a run may read manifests from, and read and write the files manifests
/// name: the given roots and the directories the operator named, all as real paths (symlinks
/// resolved), so that a symlink cannot lead a path out of them.
#[derive(Clone, Debug, Default)]
pub struct Confinement {
    /// The manifest tree: each directory given, and the directory of each file given.
    pub roots: Vec<PathBuf>,
    /// Where `{file: …}` secrets may also be read (`--secret-dir`, `SEXTANT_SECRET_DIRS`).
    pub secret_dirs: Vec<PathBuf>,
    /// Where `VcdApiToken.file` may also be written (`--token-dir`).
    pub token_dirs: Vec<PathBuf>,
}

impl Confinement {
    /// The confinement of manifests at `paths`, with the operator's extra directories.
    pub fn new(paths: &[PathBuf], access: &super::Access) -> Self {
        let roots = paths
            .iter()
            .map(|path| {
                let dir = if path.is_dir() {
                    path.as_path()
                } else {
                    path.parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."))
                };
                real_path(dir)
            })
            .collect();
        let real = |dirs: &[PathBuf]| dirs.iter().map(|d| real_path(d)).collect();
        Self {
            roots,
            secret_dirs: real(&access.secret_dirs),
            token_dirs: real(&access.token_dirs),
        }
    }

    pub fn in_tree(&self, path: &Path) -> bool {
        let real = real_path(path);
        self.roots.iter().any(|root| real.starts_with(root))
    }

    /// Whether a secret at `path` may be read: inside the tree or a named secret directory.
    pub fn may_read_secret(&self, path: &Path) -> bool {
        let real = real_path(path);
        self.roots
            .iter()
            .chain(&self.secret_dirs)
            .any(|dir| real.starts_with(dir))
    }

    /// Whether a token file may be written at `path`: inside the tree or a named directory.
    pub fn may_write_token(&self, path: &Path) -> bool {
        let real = real_path(path);
        self.roots
            .iter()
            .chain(&self.token_dirs)
            .any(|dir| real.starts_with(dir))
    }
}

/// `path` made absolute with every symlink resolved: the longest prefix that exists is
/// canonicalized and the rest is appended (`..` and `.` resolved by hand).
pub fn real_path(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let components: Vec<_> = absolute.components().collect();
    for split in (0..=components.len()).rev() {
        let prefix: PathBuf = components[..split].iter().collect();
        if let Ok(mut real) = std::fs::canonicalize(&prefix) {
            for component in &components[split..] {
                match component {
                    std::path::Component::ParentDir => {
                        real.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => real.push(other),
                }
            }
            return real;
        }
    }
    absolute
}

fn walk(
    dir: &Path,
    confinement: &Confinement,
    visited: &mut std::collections::BTreeSet<PathBuf>,
    found: &mut Vec<SourceFile>,
    errors: &mut Vec<Diagnostic>,
) {
    // Each real directory is read once (no loops through symlinks).
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !visited.insert(real) {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            errors.push(Diagnostic::new(
                dir,
                Pos::START,
                "",
                format!("cannot read directory: {err}"),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if is_hidden(&path) {
            continue;
        }
        let is_link = path.symlink_metadata().is_ok_and(|m| m.is_symlink());
        // A symlink is followed only when it stays inside the given roots: a link to `/`
        // must not make the walk read the whole machine.
        if is_link && !confinement.in_tree(&path) {
            if path.is_dir() || is_manifest(&path) {
                errors.push(
                    Diagnostic::new(
                        &path,
                        Pos::START,
                        "",
                        "symlink leads outside the manifest folders; not followed",
                    )
                    .as_warning(),
                );
            }
            continue;
        }
        if path.is_dir() {
            walk(&path, confinement, visited, found, errors);
        } else if is_manifest(&path) {
            found.push(source_file(path));
        }
    }
}

/// Every manifest file under `paths`, in order, without duplicates. Directory symlinks are
/// followed only when they stay inside `confinement`'s roots.
pub fn discover(
    paths: &[PathBuf],
    confinement: &Confinement,
    errors: &mut Vec<Diagnostic>,
) -> Vec<SourceFile> {
    let mut found = Vec::new();
    let mut visited = std::collections::BTreeSet::new();
    for path in paths {
        if path.is_dir() {
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            if visited.contains(&real) {
                continue;
            }
            let before = found.len();
            walk(path, confinement, &mut visited, &mut found, errors);
            if found.len() == before {
                errors.push(
                    Diagnostic::new(path, Pos::START, "", "no manifest files found")
                        .with_hint(Some("manifests are `*.yaml` or `*.yml` files".to_string())),
                );
            }
        } else if path.exists() {
            found.push(source_file(path.clone()));
        } else {
            errors.push(Diagnostic::new(
                path,
                Pos::START,
                "",
                "no such file or directory",
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    found.retain(|f| seen.insert(f.base_dir.join(f.path.file_name().unwrap_or_default())));
    found
}

/// The manifests of a directory when no path is given: its own `*.yaml`/`*.yml` files (not
/// its subdirectories, where fixtures, CI workflows and other tools' YAML live) that declare
/// a sextant `kind`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DefaultManifests {
    /// Files with a sextant `kind`, sorted.
    pub files: Vec<PathBuf>,
    /// YAML files without one, sorted.
    pub skipped: Vec<PathBuf>,
}

/// Finds the manifests of `dir` (see [`DefaultManifests`]); paths are relative to `dir`.
pub fn default_manifests(dir: &Path) -> std::io::Result<DefaultManifests> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok())
        .map(|entry| PathBuf::from(entry.file_name()))
        .filter(|name| is_manifest(name) && !is_hidden(name) && dir.join(name).is_file())
        .collect();
    paths.sort();
    let mut found = DefaultManifests::default();
    for path in paths {
        let declares = std::fs::read(dir.join(&path))
            .map(|bytes| declares_a_kind(&String::from_utf8_lossy(&bytes)))
            .unwrap_or(true);
        if declares {
            found.files.push(path);
        } else {
            found.skipped.push(path);
        }
    }
    Ok(found)
}

/// Whether some document of a YAML text starts a line with `kind: <a sextant kind>`.
/// Unreadable or odd files count as manifests, so their problems are reported, not hidden.
fn declares_a_kind(text: &str) -> bool {
    text.lines().any(|line| {
        let Some(value) = line.strip_prefix("kind:") else {
            return false;
        };
        let value = value.split(" #").next().unwrap_or(value).trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        super::document_kind::DocumentKind::parse(value).is_some()
    })
}

/// Reads a manifest file: only a regular file (after following a symlink), at most
/// [`MAX_MANIFEST_BYTES`]. A FIFO, a device or a socket is refused before it is opened, so
/// it cannot block the run or feed it without end.
pub fn read_manifest(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let metadata = std::fs::metadata(path).map_err(|err| format!("cannot read file: {err}"))?;
    if !metadata.is_file() {
        return Err("not a regular file; manifests are read only from regular files".to_string());
    }
    if metadata.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "file is larger than {} MiB",
            MAX_MANIFEST_BYTES / (1024 * 1024)
        ));
    }
    let file = open_nonblocking(path).map_err(|err| format!("cannot read file: {err}"))?;
    // The file may have been swapped for another kind since it was looked at.
    let opened = file
        .metadata()
        .map_err(|err| format!("cannot read file: {err}"))?;
    if !opened.is_file() {
        return Err("not a regular file; manifests are read only from regular files".to_string());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot read file: {err}"))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "file is larger than {} MiB",
            MAX_MANIFEST_BYTES / (1024 * 1024)
        ));
    }
    Ok(bytes)
}

/// Opens a file for reading without blocking on a FIFO that has no writer.
pub fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// 1-based line and column of a byte offset in `bytes`.
pub fn position_of(bytes: &[u8], offset: usize) -> Pos {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Pos::new(line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confined(paths: &[PathBuf]) -> Confinement {
        Confinement::new(paths, &crate::manifest::Access::default())
    }

    #[test]
    fn walks_sorted_and_skips_dot_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("b")).unwrap();
        std::fs::write(root.join(".git/x.yaml"), "").unwrap();
        std::fs::write(root.join("b/z.yml"), "").unwrap();
        std::fs::write(root.join("a.yaml"), "").unwrap();
        std::fs::write(root.join("notes.txt"), "").unwrap();
        let mut errors = Vec::new();
        let found = discover(
            &[root.to_path_buf()],
            &confined(&[root.to_path_buf()]),
            &mut errors,
        );
        let names: Vec<_> = found
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            names,
            vec![PathBuf::from("a.yaml"), PathBuf::from("b/z.yml")]
        );
        assert!(errors.is_empty());
        assert!(found[1].base_dir.ends_with("b"));
    }

    #[test]
    fn symlink_loops_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x.yaml"), "").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("a/loop")).unwrap();
        let mut errors = Vec::new();
        let found = discover(
            &[dir.path().to_path_buf()],
            &confined(&[dir.path().to_path_buf()]),
            &mut errors,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(errors.is_empty());
    }

    #[test]
    fn missing_path_and_empty_directory_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut errors = Vec::new();
        let paths = [dir.path().to_path_buf(), dir.path().join("nope.yaml")];
        discover(&paths, &confined(&paths), &mut errors);
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn without_paths_only_the_directorys_own_files_with_a_sextant_kind_are_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("tests/fixtures")).unwrap();
        std::fs::write(
            root.join("tests/fixtures/bad.yaml"),
            "kind: SaltJob
",
        )
        .unwrap();
        std::fs::write(
            root.join("b.yaml"),
            "# x\nkind: 'SaltJob' # a job\nname: j\n",
        )
        .unwrap();
        std::fs::write(root.join("a.yml"), "---\nkind: Connection\n").unwrap();
        std::fs::write(root.join("ci.yml"), "on: push\njobs: {}\n").unwrap();
        std::fs::write(root.join("k.yaml"), "kind: Deployment\n").unwrap();
        std::fs::write(root.join("notes.txt"), "kind: SaltJob\n").unwrap();
        let found = default_manifests(root).unwrap();
        assert_eq!(
            found.files,
            [PathBuf::from("a.yml"), PathBuf::from("b.yaml")]
        );
        assert_eq!(
            found.skipped,
            [PathBuf::from("ci.yml"), PathBuf::from("k.yaml")]
        );
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position_of(b"ab\ncd", 4), Pos { line: 2, column: 2 });
        assert_eq!(
            position_of("é\nx".as_bytes(), 2),
            Pos { line: 1, column: 2 }
        );
    }
}

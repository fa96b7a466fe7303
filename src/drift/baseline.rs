//! The manifests at a Git revision: resolving `--baseline REF` to a commit of the repository
//! that holds the manifest paths, and writing that commit's manifests (every `*.yaml`/`*.yml`
//! file, and the paths named) into a private temporary tree, so that the one manifest loader
//! reads them with paths resolved exactly as in the working tree.
//!
//! Talks to the `git` CLI only (`rev-parse`, `ls-tree`, `cat-file --batch`): two processes
//! and one pass over the blobs, whatever the number of files. Touches neither the
//! repository's index nor its working tree.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why the manifests at a revision cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot run `git`")]
    Git(#[source] std::io::Error),
    #[error("`{path}` is not inside a Git repository, so `--baseline` has nothing to read")]
    NotARepository { path: PathBuf },
    #[error("`{path}` is not in the Git repository at `{root}` that holds `{first}`")]
    OtherRepository {
        path: PathBuf,
        root: PathBuf,
        first: PathBuf,
    },
    #[error("cannot read `{path}`")]
    Path {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{reference}` is not a commit of the Git repository at `{root}`")]
    NotACommit { reference: String, root: PathBuf },
    #[error("`{path}` does not exist at `{reference}` (commit {commit})")]
    Missing {
        path: String,
        reference: String,
        commit: String,
    },
    #[error("`git {command}` failed: {message}")]
    Failed { command: String, message: String },
    #[error("cannot write the manifests at the baseline to `{path}`")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The manifests of one commit, written to a temporary directory removed on drop.
#[derive(Debug)]
pub struct BaselineTree {
    /// The revision as given (`sextant/applied/prod`).
    pub reference: String,
    /// The commit it resolves to (40 hex digits).
    pub commit: String,
    /// The repository's top directory in the working tree.
    pub root: PathBuf,
    /// Where the commit's manifests were written (the repository's top directory at REF).
    pub dir: PathBuf,
    /// The manifest paths, as given, mapped into `dir`.
    pub paths: Vec<PathBuf>,
}

impl Drop for BaselineTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `--baseline REF` resolved in the repository that holds the manifest paths.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The revision as given (`sextant/applied/prod`).
    pub reference: String,
    /// The commit it resolves to (40 hex digits).
    pub commit: String,
    /// The repository's top directory in the working tree.
    pub root: PathBuf,
    /// The manifest paths as given, and relative to `root`.
    given: Vec<PathBuf>,
    relative: Vec<PathBuf>,
}

impl Baseline {
    /// Resolves `reference` in the repository holding `paths` (files or directories of the
    /// working tree, all in one repository).
    pub fn resolve(reference: &str, paths: &[PathBuf]) -> Result<Self, BaselineError> {
        let mut real = Vec::with_capacity(paths.len());
        for path in paths {
            let canonical = std::fs::canonicalize(path).map_err(|source| BaselineError::Path {
                path: path.clone(),
                source,
            })?;
            real.push(canonical);
        }
        let Some(first) = real.first() else {
            return Err(BaselineError::NotARepository {
                path: PathBuf::from("."),
            });
        };
        let anchor = if first.is_dir() {
            first.clone()
        } else {
            first.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let root = repository_root(&anchor)?.ok_or_else(|| BaselineError::NotARepository {
            path: paths[0].clone(),
        })?;
        let mut relative = Vec::with_capacity(real.len());
        for (given, path) in paths.iter().zip(&real) {
            let inside = path
                .strip_prefix(&root)
                .map_err(|_| BaselineError::OtherRepository {
                    path: given.clone(),
                    root: root.clone(),
                    first: paths[0].clone(),
                })?;
            relative.push(inside.to_path_buf());
        }
        let commit = resolve(&root, reference)?;
        Ok(Self {
            reference: reference.to_string(),
            commit,
            root,
            given: paths.to_vec(),
            relative,
        })
    }

    /// Whether every manifest of the working tree (each `*.yaml`/`*.yml` file of the
    /// repository, tracked or not, and the paths named) is byte for byte what the commit
    /// holds, and the commit holds no other: then the manifests at the baseline are those of
    /// the working tree, and need not be read again. The usual case of a nightly run when
    /// nothing was merged since the last apply. Asks Git (`diff --quiet`, `ls-files
    /// --others`), which compares only files whose stat data changed.
    pub fn same_as_working_tree(&self) -> Result<bool, BaselineError> {
        let mut specs: Vec<String> = vec!["*.yaml".into(), "*.yml".into()];
        specs.extend(self.relative.iter().map(|p| {
            let text = display_relative(p);
            format!(":(literal){text}")
        }));
        let mut diff: Vec<&str> = vec![
            "diff",
            "--quiet",
            "--no-ext-diff",
            "--no-textconv",
            &self.commit,
            "--",
        ];
        diff.extend(specs.iter().map(String::as_str));
        let status = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(&diff)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(BaselineError::Git)?;
        if !status.success() {
            return Ok(false);
        }
        let mut others: Vec<&str> = vec!["ls-files", "--others", "-z", "--"];
        others.extend(specs.iter().map(String::as_str));
        Ok(git(&self.root, &others)?.is_empty())
    }

    /// Writes the commit's manifests into a temporary tree.
    pub fn read(self) -> Result<BaselineTree, BaselineError> {
        let dir = private_dir()?;
        let mut tree = BaselineTree {
            reference: self.reference,
            commit: self.commit,
            root: self.root,
            dir,
            paths: Vec::new(),
        };
        tree.write_manifests(&self.relative)?;
        for (inside, _given) in self.relative.iter().zip(&self.given) {
            let at = tree.dir.join(inside);
            if std::fs::symlink_metadata(&at).is_err() {
                return Err(BaselineError::Missing {
                    path: display_relative(inside),
                    reference: tree.reference.clone(),
                    commit: tree.commit.clone(),
                });
            }
            tree.paths.push(at);
        }
        Ok(tree)
    }
}

impl BaselineTree {
    /// Resolves `reference` in the repository holding `paths` and writes the manifests of
    /// that commit ([`Baseline::resolve`], then [`Baseline::read`]).
    pub fn read(reference: &str, paths: &[PathBuf]) -> Result<Self, BaselineError> {
        Baseline::resolve(reference, paths)?.read()
    }

    /// `path` of the temporary tree as the user knows it: `REF:path/in/repository`.
    pub fn locate(&self, path: &Path) -> Option<String> {
        let inside = path.strip_prefix(&self.dir).ok()?;
        Some(format!("{}:{}", self.reference, display_relative(inside)))
    }

    /// `text` with every mention of the temporary tree written as `REF:`.
    pub fn relocate_text(&self, text: &str) -> String {
        let prefix = format!("{}/", self.dir.display());
        text.replace(&prefix, &format!("{}:", self.reference))
            .replace(
                &self.dir.display().to_string(),
                &format!("{}:", self.reference),
            )
    }

    /// Writes the commit's `*.yaml`/`*.yml` files, and the paths named, under `self.dir`.
    fn write_manifests(&self, named: &[PathBuf]) -> Result<(), BaselineError> {
        let listing = git(
            &self.root,
            &["ls-tree", "-r", "-z", "--full-tree", &self.commit],
        )?;
        let mut wanted: Vec<(String, String, bool)> = Vec::new();
        for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            let Some((meta, path)) = entry.split_once('\t') else {
                continue;
            };
            let mut parts = meta.split(' ');
            let (Some(mode), Some("blob"), Some(object)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let is_manifest = Path::new(path)
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml");
            let is_named = named.iter().any(|n| Path::new(path) == n);
            if is_manifest || is_named {
                wanted.push((object.to_string(), path.to_string(), mode == "120000"));
            }
        }
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            // `--buffer`: one large write instead of a flush per object.
            .args(["cat-file", "--batch", "--buffer"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(BaselineError::Git)?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let requests: String = wanted.iter().map(|(o, _, _)| format!("{o}\n")).collect();
        // Written from another thread: git answers while it reads, and both pipes are bounded.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(requests.as_bytes());
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut header = String::new();
        let mut result = Ok(());
        let mut made: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
        for (object, path, link) in &wanted {
            header.clear();
            if stdout.read_line(&mut header).unwrap_or(0) == 0 {
                result = Err(BaselineError::Failed {
                    command: "cat-file --batch".into(),
                    message: format!("no answer for `{path}`"),
                });
                break;
            }
            let size: usize = match header.trim_end().rsplit(' ').next().map(str::parse) {
                Some(Ok(size)) if header.starts_with(object.as_str()) => size,
                _ => {
                    result = Err(BaselineError::Failed {
                        command: "cat-file --batch".into(),
                        message: format!("unexpected answer `{}`", header.trim_end()),
                    });
                    break;
                }
            };
            let mut content = vec![0u8; size + 1];
            if let Err(err) = stdout.read_exact(&mut content) {
                result = Err(BaselineError::Git(err));
                break;
            }
            content.pop();
            if let Err(err) = self.write_file(path, &content, *link, &mut made) {
                result = Err(err);
                break;
            }
        }
        drop(stdout);
        let _ = writer.join();
        let _ = child.wait();
        result
    }

    fn write_file(
        &self,
        path: &str,
        content: &[u8],
        link: bool,
        made: &mut std::collections::HashSet<PathBuf>,
    ) -> Result<(), BaselineError> {
        // Paths come from Git's own tree, which never holds `..` or absolute entries.
        let target = self.dir.join(path);
        let write = |source| BaselineError::Write {
            path: self.dir.clone(),
            source,
        };
        if let Some(parent) = target.parent()
            && !made.contains(parent)
        {
            std::fs::create_dir_all(parent).map_err(write)?;
            made.insert(parent.to_path_buf());
        }
        if link {
            let to = String::from_utf8_lossy(content).into_owned();
            std::os::unix::fs::symlink(to, &target).map_err(write)
        } else {
            std::fs::write(&target, content).map_err(write)
        }
    }
}

fn display_relative(path: &Path) -> String {
    let text = path.display().to_string();
    if text.is_empty() {
        ".".to_string()
    } else {
        text
    }
}

/// The top directory of the repository holding `dir`, symlinks resolved; `None` outside
/// any repository.
fn repository_root(dir: &Path) -> Result<Option<PathBuf>, BaselineError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(BaselineError::Git)?;
    if !out.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(std::fs::canonicalize(text.trim_end_matches('\n')).ok())
}

/// The commit `reference` names in the repository at `root`.
fn resolve(root: &Path, reference: &str) -> Result<String, BaselineError> {
    let not_a_commit = || BaselineError::NotACommit {
        reference: reference.to_string(),
        root: root.to_path_buf(),
    };
    if reference.is_empty() || reference.starts_with('-') {
        return Err(not_a_commit());
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{reference}^{{commit}}"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(BaselineError::Git)?;
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || commit.is_empty() {
        return Err(not_a_commit());
    }
    Ok(commit)
}

/// Runs `git -C dir ARGS` and returns its stdout.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, BaselineError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(BaselineError::Git)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(BaselineError::Failed {
            command: args.first().copied().unwrap_or_default().to_string(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Where the temporary tree goes: a memory file system when there is one (`/dev/shm`:
/// creating 10,000 small files on a disk costs seconds), else the temporary directory.
fn temporary_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if std::env::var_os("TMPDIR").is_none() && shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A new directory only this user may read.
fn private_dir() -> Result<PathBuf, BaselineError> {
    use std::os::unix::fs::DirBuilderExt;
    let base = temporary_base();
    let mut last = None;
    for _ in 0..8 {
        let name = format!(
            "sextant-baseline-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let dir = base.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(std::fs::canonicalize(&dir).unwrap_or(dir)),
            Err(err) => last = Some(err),
        }
    }
    Err(BaselineError::Write {
        path: base,
        source: last.unwrap_or_else(|| std::io::Error::other("no directory created")),
    })
}

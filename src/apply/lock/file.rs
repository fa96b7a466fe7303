//! The default lock backend: one lock file per estate key in a per-user directory, locked
//! with `flock` (released by the OS when the process dies). It serializes applies of one
//! user on one machine, whatever checkout or path order they start from; runners on other
//! machines need the PostgreSQL backend.
//!
//! The directory is the first of: `$SEXTANT_LOCK_DIR`; `$XDG_RUNTIME_DIR/sextant/locks`;
//! `$XDG_STATE_HOME/sextant/locks`; `$HOME/.local/state/sextant/locks`;
//! `<temp dir>/sextant-<uid>/locks`. Files are named by a hash of the key and hold the
//! holder's identity as JSON while it holds the lock (empty otherwise); they are never
//! removed, as removing a lock file races with the next holder opening it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::{Attempt, EstateKey, HeldBy, HeldLock, Holder, LockBackend, LockError};

/// Environment variable naming the lock directory.
pub const LOCK_DIR_ENV: &str = "SEXTANT_LOCK_DIR";

/// How often, and how far apart, a refused try reads the holder's identity (the holder
/// writes it just after taking the lock).
const HOLDER_READS: u32 = 40;
const HOLDER_READ_PAUSE: Duration = Duration::from_millis(25);

/// What a lock file holds while its lock is held.
#[derive(serde::Serialize, serde::Deserialize)]
struct Content {
    key: String,
    #[serde(flatten)]
    holder: Holder,
}

/// Lock files in one directory.
pub struct FileBackend {
    dir: PathBuf,
}

impl FileBackend {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The backend in the per-user directory (see the module docs).
    pub fn per_user() -> Self {
        Self::new(default_dir(&|name| std::env::var_os(name)))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, key: &EstateKey) -> PathBuf {
        let digest = Sha256::digest(key.to_string().as_bytes());
        self.dir
            .join(format!("{}.lock", hex::encode(&digest[..12])))
    }

    fn create_dir(&self) -> Result<(), LockError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| LockError::File {
                path: self.dir.clone(),
                source,
            })
    }
}

/// The per-user lock directory, from the environment `var` reads.
pub fn default_dir(var: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(LOCK_DIR_ENV) {
        return dir;
    }
    if let Some(runtime) = set("XDG_RUNTIME_DIR") {
        return runtime.join("sextant").join("locks");
    }
    if let Some(state) = set("XDG_STATE_HOME") {
        return state.join("sextant").join("locks");
    }
    if let Some(home) = set("HOME") {
        return home
            .join(".local")
            .join("state")
            .join("sextant")
            .join("locks");
    }
    let uid = super::own_uid().map_or_else(|| "user".to_string(), |uid| uid.to_string());
    std::env::temp_dir()
        .join(format!("sextant-{uid}"))
        .join("locks")
}

/// A held lock file; the OS lock goes with the file descriptor.
struct FileLock {
    key: EstateKey,
    file: File,
    lost: CancellationToken,
}

#[async_trait::async_trait]
impl HeldLock for FileLock {
    fn key(&self) -> &EstateKey {
        &self.key
    }

    fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    async fn release(self: Box<Self>) {
        // Clear the identity before the lock goes, so nobody names a holder that has left.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Option<Content> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[async_trait::async_trait]
impl LockBackend for FileBackend {
    fn describe(&self) -> String {
        format!("lock files in `{}`", self.dir.display())
    }

    async fn try_acquire(&self, key: &EstateKey, me: &Holder) -> Result<Attempt, LockError> {
        self.create_dir()?;
        let path = self.path_of(key);
        let io = |source| LockError::File {
            path: path.clone(),
            source,
        };
        let mut file = match crate::local_file::try_lock(&path).map_err(io)? {
            Ok(file) => file,
            Err(mut file) => {
                for _ in 0..HOLDER_READS {
                    if let Some(content) = read_holder(&mut file) {
                        return Ok(Attempt::Held(Some(content.holder)));
                    }
                    tokio::time::sleep(HOLDER_READ_PAUSE).await;
                }
                return Ok(Attempt::Held(None));
            }
        };
        let content = serde_json::to_vec(&Content {
            key: key.to_string(),
            holder: me.clone(),
        })
        .map_err(|err| io(std::io::Error::other(err)))?;
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(&content).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Attempt::Acquired(Box::new(FileLock {
            key: key.clone(),
            file,
            lost: CancellationToken::new(),
        })))
    }

    /// Lock files whose holder wrote its identity and whose process still runs on this host.
    async fn held(&self) -> Result<Vec<HeldBy>, LockError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(LockError::File {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let host = super::hostname();
        let mut held = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "lock") {
                continue;
            }
            let Ok(mut file) = File::open(&path) else {
                continue;
            };
            let Some(content) = read_holder(&mut file) else {
                continue;
            };
            let alive = content.holder.host != host
                || Path::new(&format!("/proc/{}", content.holder.pid)).exists();
            if alive {
                held.push(HeldBy {
                    key: content.key,
                    holder: Some(content.holder),
                });
            }
        }
        held.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(held)
    }

    async fn force_release(&self, key: &str) -> Result<Option<HeldBy>, LockError> {
        let holder = self.held().await?.into_iter().find(|h| h.key == key);
        match holder {
            None => Ok(None),
            Some(held) => Err(LockError::Backend(format!(
                "a file lock ends only with its process: stop {} to release `{key}`",
                held.holder
                    .as_ref()
                    .map_or_else(|| "its holder".to_string(), |h| h.to_string())
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConnectionConfig, SystemType};

    fn key(url: &str) -> EstateKey {
        let mut config = ConnectionConfig::with_defaults(SystemType::Raas);
        config.url = url.to_string();
        EstateKey::of(&config)
    }

    #[tokio::test]
    async fn a_second_holder_is_refused_with_the_first_ones_identity() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path().join("locks"));
        let me = Holder::me();
        let Attempt::Acquired(first) = backend
            .try_acquire(&key("https://salt"), &me)
            .await
            .unwrap()
        else {
            panic!("the first try takes the lock");
        };
        match backend
            .try_acquire(&key("https://SALT/"), &me)
            .await
            .unwrap()
        {
            Attempt::Held(Some(holder)) => assert_eq!(holder, me),
            _ => panic!("the same estate is refused while held"),
        }
        let held = backend.held().await.unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].key, "raas:https://salt");
        assert!(matches!(
            backend.try_acquire(&key("https://other"), &me).await,
            Ok(Attempt::Acquired(_))
        ));
        first.release().await;
        assert!(matches!(
            backend.try_acquire(&key("https://salt"), &me).await,
            Ok(Attempt::Acquired(_))
        ));
    }

    #[test]
    fn the_lock_directory_is_per_user() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| std::ffi::OsString::from(*v))
            }
        };
        assert_eq!(
            default_dir(&env(&[("XDG_RUNTIME_DIR", "/run/user/7"), ("HOME", "/h")])),
            PathBuf::from("/run/user/7/sextant/locks")
        );
        assert_eq!(
            default_dir(&env(&[("HOME", "/h")])),
            PathBuf::from("/h/.local/state/sextant/locks")
        );
        assert_eq!(
            default_dir(&env(&[(LOCK_DIR_ENV, "/x"), ("HOME", "/h")])),
            PathBuf::from("/x")
        );
    }
}

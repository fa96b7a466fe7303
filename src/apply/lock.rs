//! The apply lock: a file lock beside the manifests so two `apply` runs on one checkout never
//! mutate at once. It covers one machine; CI runners on different machines need the CI
//! system's concurrency groups.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// File name of the lock, created in the directory of the first manifest path.
pub const LOCK_FILE: &str = ".sextant.lock";

/// How often, and how far apart, a refused apply reads the holder's identity.
const HOLDER_READS: u32 = 40;
const HOLDER_READ_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// Held for the duration of an apply; released on drop (and by the OS if the process dies).
#[derive(Debug)]
pub struct ApplyLock {
    file: File,
    pub path: PathBuf,
}

impl Drop for ApplyLock {
    /// Clears the identity before the lock goes, so nobody names a holder that has left.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another `sextant apply` holds the lock `{path}` ({holder})")]
    Held { path: PathBuf, holder: String },
    #[error("cannot open the lock file `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lock's directory for a set of manifest paths.
pub fn lock_dir(first_path: &Path) -> PathBuf {
    if first_path.is_dir() {
        first_path.to_path_buf()
    } else {
        first_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

impl ApplyLock {
    /// Takes the lock without waiting; if it is held, says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder writes who it is just after taking the lock: an empty file means
                // it has not yet, so look again for a moment.
                let mut holder = String::new();
                for _ in 0..HOLDER_READS {
                    holder.clear();
                    let _ = file.rewind();
                    let _ = file.read_to_string(&mut holder);
                    if !holder.trim().is_empty() {
                        break;
                    }
                    std::thread::sleep(HOLDER_READ_PAUSE);
                }
                let holder = holder.trim();
                return Err(LockError::Held {
                    path,
                    holder: if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(err)) => return Err(io(err)),
        }
        let who = format!(
            "pid {} on {}, since {}",
            std::process::id(),
            hostname(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(who.as_bytes()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { file, path })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_identity() {
        let dir = tempfile::tempdir().unwrap();
        let first = ApplyLock::acquire(dir.path()).unwrap();
        let err = ApplyLock::acquire(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        ApplyLock::acquire(dir.path()).unwrap();
    }
}

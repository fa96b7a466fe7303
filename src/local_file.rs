//! Files on this machine that several processes share.
//!
//! - [`write_atomic`]: a whole file written so that a reader sees the old content or the new,
//!   never a part: the bytes go to a temporary file beside it (`tempfile`), which is then
//!   renamed over it. Used for saved plans, VCD token secret files and the simulator's state.
//! - [`try_lock`]: a lock file taken without waiting (the apply lock's file backend, the
//!   simulator's state file).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `bytes` to `path` atomically with permission bits `mode` (before the umask), and
/// with `sync` flushes them to disk before the rename (what a crash must not lose).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    if sync {
        file.as_file().sync_all()?;
    }
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Opens `path` for reading and writing (created when missing, its content kept) and takes
/// its exclusive lock without waiting: `Ok(file)` locked, `Err(file)` held by another process
/// (the file open, to read what its holder wrote).
pub fn try_lock(path: &Path) -> std::io::Result<Result<File, File>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Ok(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(Err(file)),
        Err(std::fs::TryLockError::Error(err)) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_file_whole_with_the_mode_asked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, "old and longer").unwrap();
        super::write_atomic(&path, b"new", 0o600, true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_lock_is_held_until_its_file_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = super::try_lock(&path).unwrap().expect("free");
        assert!(super::try_lock(&path).unwrap().is_err(), "held");
        drop(first);
        assert!(super::try_lock(&path).unwrap().is_ok(), "free again");
    }
}

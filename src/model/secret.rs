//! Secret references (`{env: NAME}` / `{file: PATH}`) and the wrapped values they resolve to.
//!
//! A secret is read only when a connection is first used, and from then on lives in a
//! [`SecretValue`] whose `Debug` never shows it.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

/// Where a secret comes from. Never holds the secret itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    /// Absolute path, resolved against the manifest's directory.
    File(PathBuf),
    /// A value supplied by sextant itself (the simulator's dummy credentials).
    Fixed(SecretValue),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    #[error("cannot read secret file `{path}`")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret file `{0}` is empty")]
    EmptyFile(PathBuf),
    #[error("secret file `{0}` is not a regular file; secrets are read only from regular files")]
    NotRegular(PathBuf),
    #[error("secret file `{0}` is larger than 64 KiB; no secret is that long")]
    TooLarge(PathBuf),
}

/// Largest secret file read: API tokens and passwords are far shorter.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Reads a secret file: a regular file only (after following a symlink), at most
/// [`MAX_SECRET_FILE_BYTES`]. A FIFO, `/dev/zero` or a socket is refused before it is read, so
/// none can block the run or grow it without end.
fn read_secret_file(path: &Path) -> Result<String, SecretError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| SecretError::File {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(SecretError::NotRegular(path.to_path_buf()));
    }
    if metadata.len() > MAX_SECRET_FILE_BYTES {
        return Err(SecretError::TooLarge(path.to_path_buf()));
    }
    // Non-blocking, and checked again once open: the path may have been swapped meanwhile.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(SecretError::NotRegular(path.to_path_buf()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(SecretError::TooLarge(path.to_path_buf()));
    }
    String::from_utf8(bytes).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is not UTF-8 text",
        ))
    })
}

impl SecretSource {
    /// Reads the secret now. File contents are trimmed of surrounding whitespace.
    pub fn resolve(&self) -> Result<SecretValue, SecretError> {
        match self {
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(SecretValue::new(value)),
                _ => Err(SecretError::MissingEnv(name.clone())),
            },
            SecretSource::File(path) => {
                let text = read_secret_file(path)?;
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    return Err(SecretError::EmptyFile(path.clone()));
                }
                Ok(SecretValue::new(trimmed.to_string()))
            }
            SecretSource::Fixed(value) => Ok(value.clone()),
        }
    }

    /// A description safe to print (`env HOME_TOKEN`, `file /path`), never the value.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(name) => format!("env `{name}`"),
            SecretSource::File(path) => format!("file `{}`", path.display()),
            SecretSource::Fixed(_) => "built-in value".to_string(),
        }
    }
}

/// A secret value: `Debug` prints `[REDACTED]`, there is no `Display`.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The plain value, for putting on the wire. Never log the result.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for SecretValue {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = SecretValue::new("hunter2-token");
        let shown = format!("{:?} {:?}", secret, SecretSource::Fixed(secret.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn missing_env_names_the_variable_only() {
        let err = SecretSource::Env("SEXTANT_TEST_SURELY_UNSET".into())
            .resolve()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable `SEXTANT_TEST_SURELY_UNSET` is not set"
        );
    }
}

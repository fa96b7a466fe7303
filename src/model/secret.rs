//! Secret references (`{env: NAME}` / `{file: PATH}`) and the wrapped values they resolve to.
//!
//! A secret is read only when a connection is first used, and from then on lives in a
//! [`SecretValue`] whose `Debug` never shows it.

use std::path::PathBuf;

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
                let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
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

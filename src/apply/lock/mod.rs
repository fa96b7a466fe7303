//! The apply lock: one lock per estate an apply mutates, so two applies of one estate never
//! interleave their mutations, wherever they run and whichever checkout they start from.
//!
//! The key is the estate — the normalized URL and org/tenant of a connection — never a
//! manifest path ([`EstateKey`]). A backend is a small trait ([`LockBackend`]: try to take a
//! key, say who holds it, release, and report when a held lock is lost); [`acquire_all`] takes
//! a set of keys in sorted order (so two applies never deadlock) and owns waiting and its
//! deadline. The executor knows nothing of locks: a lost lock reaches it as a cancellation.
//!
//! Backends: [`file`] (the default: per-user lock files, one machine) and [`postgres`]
//! (session-level advisory locks, any number of machines). A Kubernetes Lease or a Consul
//! session would be one more implementation of [`LockBackend`] (see `docs/locking.md`).

pub mod file;
pub mod postgres;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::model::{ConnectionConfig, SystemType};

/// What one lock covers: the system, the normalized URL of its API and, where one server
/// serves several tenants, the org.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EstateKey {
    pub system: SystemType,
    /// Scheme, host and port (default ports left out), path without a trailing slash; never
    /// userinfo, query or fragment.
    pub url: String,
    /// VMC org id or Cloud Director org (lowercase); `None` when the connection does not
    /// name one.
    pub org: Option<String>,
}

impl EstateKey {
    /// The key of a connection's estate.
    pub fn of(config: &ConnectionConfig) -> Self {
        let org = match config.system {
            SystemType::Vmc | SystemType::Raas => config.org_id.clone(),
            SystemType::Vcd => Some(config.org.clone()),
            SystemType::Vsphere => None,
        }
        .map(|org| org.trim().to_lowercase())
        .filter(|org| !org.is_empty());
        Self {
            system: config.system,
            url: normalize_url(&config.url),
            org,
        }
    }

    /// Parses the text [`fmt::Display`] writes (`sextant lock release KEY`).
    pub fn parse(text: &str) -> Option<Self> {
        let (system, rest) = text.split_once(':')?;
        let system = match system {
            "vmc" => SystemType::Vmc,
            "raas" => SystemType::Raas,
            "vcd" => SystemType::Vcd,
            "vsphere" => SystemType::Vsphere,
            _ => return None,
        };
        let (url, org) = match rest.split_once("#org=") {
            Some((url, org)) => (url, Some(org.to_string())),
            None => (rest, None),
        };
        url::Url::parse(url).ok()?;
        Some(Self {
            system,
            url: normalize_url(url),
            org,
        })
    }

    /// The estate in words, for messages: `VMC org 0f5c… at https://vmc.vmware.com`.
    pub fn describe(&self) -> String {
        let system = match self.system {
            SystemType::Vmc => "VMC",
            SystemType::Raas => "RaaS",
            SystemType::Vcd => "Cloud Director",
            SystemType::Vsphere => "vCenter",
        };
        match &self.org {
            Some(org) => format!("{system} org `{org}` at {}", self.url),
            None => format!("{system} at {}", self.url),
        }
    }
}

/// `vmc:https://vmc.vmware.com#org=0f5c…`: one word, safe to pass on a command line.
impl fmt::Display for EstateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.system, self.url)?;
        if let Some(org) = &self.org {
            write!(f, "#org={org}")?;
        }
        Ok(())
    }
}

/// Lowercase scheme and host, no default port, no userinfo, query, fragment or trailing
/// slash. Text that is not a URL is kept as written (trimmed, without a trailing slash).
pub fn normalize_url(text: &str) -> String {
    let text = text.trim();
    let Ok(url) = url::Url::parse(text) else {
        return text.trim_end_matches('/').to_string();
    };
    let mut out = format!("{}://", url.scheme());
    if let Some(host) = url.host_str() {
        out.push_str(&host.to_ascii_lowercase());
    }
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path().trim_end_matches('/'));
    out
}

/// Who holds a lock: written by the holder, shown to whoever waits for it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub user: String,
    /// RFC 3339, seconds.
    pub since: String,
    /// The CI run that holds it, when the holder runs in CI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_run_url: Option<String>,
}

impl Holder {
    /// This process.
    pub fn me() -> Self {
        Self {
            host: hostname(),
            pid: std::process::id(),
            user: user_name(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ci_run_url: ci_run_url(&|name| std::env::var(name).ok()),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} of `{}` on {}, since {}",
            self.pid, self.user, self.host, self.since
        )?;
        if let Some(url) = &self.ci_run_url {
            write!(f, " ({url})")?;
        }
        Ok(())
    }
}

/// The CI run URL from GitHub Actions (`GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/
/// GITHUB_RUN_ID`) or GitLab (`CI_JOB_URL`).
pub fn ci_run_url(var: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if let (Some(server), Some(repository), Some(run)) = (
        set("GITHUB_SERVER_URL"),
        set("GITHUB_REPOSITORY"),
        set("GITHUB_RUN_ID"),
    ) {
        return Some(format!(
            "{}/{repository}/actions/runs/{run}",
            server.trim_end_matches('/')
        ));
    }
    set("CI_JOB_URL")
}

/// This machine's name, as the lock holder's `host`.
pub fn hostname() -> String {
    let host = gethostname::gethostname();
    let host = host.to_string_lossy();
    match host.trim() {
        "" => "an unknown host".to_string(),
        host => host.to_string(),
    }
}

/// The user name from the environment, else `uid N`.
pub fn user_name() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| match own_uid() {
            Some(uid) => format!("uid {uid}"),
            None => "unknown".to_string(),
        })
}

/// This process's uid, read from `/proc/self` (no `unsafe` call needed).
pub fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// A lock failure. Never holds a secret: database URLs appear without userinfo.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the lock on {} is held by {}; nothing was changed", key.describe(), holder_text(holder))]
    Held {
        key: Box<EstateKey>,
        holder: Option<Box<Holder>>,
    },
    #[error("the lock on {} is still held by {} after waiting {}; nothing was changed", key.describe(), holder_text(holder), humantime::format_duration(*waited))]
    TimedOut {
        key: Box<EstateKey>,
        holder: Option<Box<Holder>>,
        waited: Duration,
    },
    #[error("cannot use the lock file `{path}`")]
    File {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The lock backend cannot be reached or refused a request.
    #[error("{0}")]
    Backend(String),
}

fn holder_text(holder: &Option<impl std::ops::Deref<Target = Holder>>) -> String {
    match holder {
        Some(holder) => holder.to_string(),
        None => "another sextant (holder unknown)".to_string(),
    }
}

/// What one try to take a key found.
pub enum Attempt {
    Acquired(Box<dyn HeldLock>),
    /// Someone else holds it (who, when they said).
    Held(Option<Holder>),
}

/// A lock taken on one estate.
#[async_trait::async_trait]
pub trait HeldLock: Send + Sync {
    fn key(&self) -> &EstateKey;
    /// Fires when the lock is lost while held (its database session ended); never for
    /// backends whose locks cannot be lost while the process lives.
    fn lost(&self) -> CancellationToken;
    /// Gives the lock up (also done, less promptly, when the process ends).
    async fn release(self: Box<Self>);
}

/// One held lock as `sextant lock status` shows it.
#[derive(Clone, Debug)]
pub struct HeldBy {
    /// The key as written ([`EstateKey`]'s display form).
    pub key: String,
    pub holder: Option<Holder>,
}

/// A place where applies take their locks.
#[async_trait::async_trait]
pub trait LockBackend: Send + Sync {
    /// Where the locks are, for messages (a database URL without userinfo, a directory).
    fn describe(&self) -> String;

    /// Takes `key` at once or says who holds it; never waits.
    async fn try_acquire(&self, key: &EstateKey, me: &Holder) -> Result<Attempt, LockError>;

    /// The locks held now, sorted by key.
    async fn held(&self) -> Result<Vec<HeldBy>, LockError>;

    /// Ends the holder of `key` so its lock goes (after a human confirmed); returns who held
    /// it, or `None` when nobody did.
    async fn force_release(&self, key: &str) -> Result<Option<HeldBy>, LockError>;
}

/// The locks an apply holds, released together.
#[derive(Default)]
pub struct HeldLocks {
    locks: Vec<Box<dyn HeldLock>>,
}

impl HeldLocks {
    pub fn keys(&self) -> BTreeSet<EstateKey> {
        self.locks.iter().map(|l| l.key().clone()).collect()
    }

    /// The first lost lock, if any.
    pub fn lost_key(&self) -> Option<&EstateKey> {
        self.locks
            .iter()
            .find(|l| l.lost().is_cancelled())
            .map(|l| l.key())
    }

    /// Resolves when any held lock is lost (never, when none can be).
    pub async fn wait_lost(&self) -> EstateKey {
        if self.locks.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.locks.iter().map(|l| {
            let token = l.lost();
            let key = l.key().clone();
            Box::pin(async move {
                token.cancelled().await;
                key
            })
        });
        futures::future::select_all(waits).await.0
    }

    pub async fn release(self) {
        for lock in self.locks.into_iter().rev() {
            lock.release().await;
        }
    }
}

/// How [`acquire_all`] waits.
#[derive(Clone, Copy, Debug)]
pub struct Waiting {
    /// How long to wait for each held key; zero fails at once.
    pub timeout: Duration,
    /// Pause between tries.
    pub retry: Duration,
    /// How often a progress line is written while waiting.
    pub progress_every: Duration,
}

impl Waiting {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            retry: Duration::from_millis(500),
            progress_every: Duration::from_secs(10),
        }
    }
}

/// Takes every key in sorted order (two applies wanting overlapping sets never deadlock),
/// waiting up to `waiting.timeout` in all for keys held by others and reporting who holds them
/// through `progress`. On failure, the keys already taken are released.
pub async fn acquire_all(
    backend: &dyn LockBackend,
    keys: &BTreeSet<EstateKey>,
    me: &Holder,
    waiting: Waiting,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<HeldLocks, LockError> {
    let started = tokio::time::Instant::now();
    let mut held = HeldLocks::default();
    for key in keys {
        let mut last_report: Option<tokio::time::Instant> = None;
        loop {
            let attempt = match backend.try_acquire(key, me).await {
                Ok(attempt) => attempt,
                Err(err) => {
                    held.release().await;
                    return Err(err);
                }
            };
            let holder = match attempt {
                Attempt::Acquired(lock) => {
                    held.locks.push(lock);
                    break;
                }
                Attempt::Held(holder) => holder,
            };
            let waited = started.elapsed();
            if waited >= waiting.timeout {
                held.release().await;
                return Err(if waiting.timeout.is_zero() {
                    LockError::Held {
                        key: Box::new(key.clone()),
                        holder: holder.map(Box::new),
                    }
                } else {
                    LockError::TimedOut {
                        key: Box::new(key.clone()),
                        holder: holder.map(Box::new),
                        waited: Duration::from_secs(waited.as_secs()),
                    }
                });
            }
            let now = tokio::time::Instant::now();
            if last_report.is_none_or(|at| now.duration_since(at) >= waiting.progress_every) {
                last_report = Some(now);
                let left = waiting.timeout.saturating_sub(waited);
                progress(&format!(
                    "waiting for the lock on {} held by {} ({} left)",
                    key.describe(),
                    holder_text(&holder.as_ref()),
                    humantime::format_duration(Duration::from_secs(left.as_secs().max(1)))
                ));
            }
            let pause = waiting
                .retry
                .min(waiting.timeout.saturating_sub(started.elapsed()));
            tokio::time::sleep(pause).await;
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_host_is_the_kernel_hostname() {
        if let Ok(kernel) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            assert_eq!(hostname(), kernel.trim());
        }
        assert!(!hostname().is_empty());
    }

    fn config(system: SystemType, url: &str) -> ConnectionConfig {
        let mut config = ConnectionConfig::with_defaults(system);
        config.url = url.to_string();
        config
    }

    #[test]
    fn one_estate_spelled_differently_has_one_key() {
        let a = EstateKey::of(&config(SystemType::Raas, "HTTPS://Salt.Example.com:443/"));
        let b = EstateKey::of(&config(
            SystemType::Raas,
            "https://user:pw@salt.example.com?x=1",
        ));
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "raas:https://salt.example.com");
        assert!(!b.to_string().contains("pw"));
        let other_port = EstateKey::of(&config(SystemType::Raas, "https://salt.example.com:8443"));
        assert_ne!(a, other_port);
    }

    #[test]
    fn orgs_and_tenants_are_part_of_the_key() {
        let mut one = config(SystemType::Vcd, "https://vcd.example.com");
        one.org = "Acme".into();
        let mut two = one.clone();
        two.org = "Globex".into();
        assert_ne!(EstateKey::of(&one), EstateKey::of(&two));
        assert_eq!(
            EstateKey::of(&one).to_string(),
            "vcd:https://vcd.example.com#org=acme"
        );
        let mut vmc = config(SystemType::Vmc, "https://vmc.vmware.com");
        vmc.org_id = Some("0F5C".into());
        let key = EstateKey::of(&vmc);
        assert_eq!(key.describe(), "VMC org `0f5c` at https://vmc.vmware.com");
        assert_eq!(EstateKey::parse(&key.to_string()), Some(key));
    }

    #[test]
    fn the_ci_run_is_named_from_github_or_gitlab() {
        let github = |name: &str| {
            Some(
                match name {
                    "GITHUB_SERVER_URL" => "https://github.com/",
                    "GITHUB_REPOSITORY" => "acme/estate",
                    "GITHUB_RUN_ID" => "42",
                    _ => return None,
                }
                .to_string(),
            )
        };
        assert_eq!(
            ci_run_url(&github).as_deref(),
            Some("https://github.com/acme/estate/actions/runs/42")
        );
        let gitlab =
            |name: &str| (name == "CI_JOB_URL").then(|| "https://gitlab.com/a/b/-/jobs/7".into());
        assert_eq!(
            ci_run_url(&gitlab).as_deref(),
            Some("https://gitlab.com/a/b/-/jobs/7")
        );
        assert_eq!(ci_run_url(&|_| None), None);
    }
}

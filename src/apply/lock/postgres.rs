//! The PostgreSQL lock backend: session-level advisory locks (`pg_try_advisory_lock`), one
//! per estate key, on a database the team already runs; no lock server of sextant's own.
//!
//! One connection (one session) holds every lock of an apply. PostgreSQL ends the session —
//! and so releases its locks — when the process dies, even by SIGKILL, as soon as the
//! server sees the connection close. Who holds a key is written to the table
//! `sextant_lock_holders` (created if missing); a row counts only while its session still
//! holds the advisory lock (`pg_locks`), so rows left by killed holders are never shown.
//! The session is watched: when it ends or stops answering, every lock it held is reported
//! lost. URLs are shown without userinfo or query; TLS is rustls (no OpenSSL), verified
//! against the public web roots plus `sslrootcert=FILE` when the URL names one.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::{Attempt, EstateKey, HeldBy, HeldLock, Holder, LockBackend, LockError};

/// The holders' table.
pub const HOLDERS_TABLE: &str = "sextant_lock_holders";
/// Advisory lock (transaction-scoped) serializing the table's creation.
const SCHEMA_LOCK_ID: i64 = 0x7365_7874_616e_7401;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the session is checked while the backend lives, and how long a check may take
/// before the session counts as lost.
const HEARTBEAT: Duration = Duration::from_secs(2);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often, and how far apart, a refused try reads the holder's row (the holder writes it
/// just after taking the lock).
const HOLDER_READS: u32 = 40;
const HOLDER_READ_PAUSE: Duration = Duration::from_millis(25);

/// Whether `text` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(text: &str) -> bool {
    let lower = text.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// `url` without userinfo and query: what messages show.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(parsed) => {
            let mut out = format!("{}://", parsed.scheme());
            if let Some(host) = parsed.host_str() {
                out.push_str(host);
            }
            if let Some(port) = parsed.port() {
                out.push_str(&format!(":{port}"));
            }
            out.push_str(parsed.path());
            out
        }
        Err(_) => "the lock database URL (not shown)".to_string(),
    }
}

/// The advisory lock id of a key: the first 8 bytes of a SHA-256 of its text.
pub fn lock_id(key: &str) -> i64 {
    let digest = Sha256::digest(format!("sextant-apply-lock:{key}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Advisory locks held by this database session.
pub struct PgBackend {
    client: Arc<Client>,
    shown: String,
    lost: CancellationToken,
    watchers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        for watcher in &self.watchers {
            watcher.abort();
        }
    }
}

/// Splits `sslrootcert=FILE` off a URL's query (tokio-postgres does not read it).
fn take_root_cert(url: &str) -> (String, Option<String>) {
    let Ok(mut parsed) = url::Url::parse(url.trim()) else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "sslrootcert" {
                root = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    if root.is_none() {
        return (url.to_string(), None);
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    (parsed.to_string(), root)
}

fn tls_config(root_cert: Option<&str>, shown: &str) -> Result<rustls::ClientConfig, LockError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = root_cert {
        let certs = CertificateDer::pem_file_iter(path).map_err(|err| {
            LockError::Backend(format!(
                "cannot read `sslrootcert` `{path}` of the lock database {shown}: {err}"
            ))
        })?;
        for cert in certs {
            let cert = cert.map_err(|err| {
                LockError::Backend(format!("`sslrootcert` `{path}` is not PEM: {err}"))
            })?;
            roots.add(cert).map_err(|err| {
                LockError::Backend(format!(
                    "`sslrootcert` `{path}` holds a bad certificate: {err}"
                ))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| LockError::Backend(format!("cannot set up TLS: {err}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl PgBackend {
    /// Connects and creates the holders' table if missing. Fails with a clear error — before
    /// the apply makes any API call — when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, LockError> {
        let shown = redact(url);
        let (url, root_cert) = take_root_cert(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|err| {
            LockError::Backend(format!("the lock database URL {shown} is not valid: {err}"))
        })?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("sextant");
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(
            root_cert.as_deref(),
            &shown,
        )?);
        let (client, connection) = config.connect(tls).await.map_err(|err| {
            LockError::Backend(format!(
                "cannot connect to the lock database {shown}: {err}"
            ))
        })?;
        let lost = CancellationToken::new();
        let mut watchers = Vec::new();
        {
            let lost = lost.clone();
            watchers.push(tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!("the lock database connection ended: {err}");
                }
                lost.cancel();
            }));
        }
        let client = Arc::new(client);
        {
            let lost = lost.clone();
            let client = client.clone();
            watchers.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    let answered =
                        tokio::time::timeout(HEARTBEAT_TIMEOUT, client.simple_query("SELECT 1"))
                            .await;
                    if !matches!(answered, Ok(Ok(_))) {
                        lost.cancel();
                        return;
                    }
                }
            }));
        }
        let backend = Self {
            client,
            shown,
            lost,
            watchers,
        };
        backend.create_table().await?;
        Ok(backend)
    }

    fn failed(&self, what: &str, err: tokio_postgres::Error) -> LockError {
        LockError::Backend(format!(
            "the lock database {} failed to {what}: {err}",
            self.shown
        ))
    }

    async fn create_table(&self) -> Result<(), LockError> {
        // Two first applies at once would race on CREATE TABLE: serialize it.
        let sql = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock({SCHEMA_LOCK_ID});
             CREATE TABLE IF NOT EXISTS {HOLDERS_TABLE} (
                 key text PRIMARY KEY,
                 lock_id bigint NOT NULL,
                 host text NOT NULL,
                 pid bigint NOT NULL,
                 username text NOT NULL,
                 started_at timestamptz NOT NULL,
                 ci_run_url text,
                 backend_pid integer NOT NULL
             );
             COMMIT;"
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|err| self.failed("create its holders' table", err))
    }

    /// Live holders (their session still holds the advisory lock), optionally of one key.
    async fn live_holders(&self, key: Option<&str>) -> Result<Vec<(HeldBy, i32)>, LockError> {
        let sql = format!(
            "SELECT h.key, h.host, h.pid, h.username,
                    to_char(h.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    h.ci_run_url, h.backend_pid
             FROM {HOLDERS_TABLE} h
             JOIN pg_locks l
               ON l.locktype = 'advisory' AND l.granted AND l.pid = h.backend_pid
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid::text::bigint = (h.lock_id >> 32) & 4294967295
              AND l.objid::text::bigint = h.lock_id & 4294967295
              AND l.objsubid = 1
             WHERE $1::text IS NULL OR h.key = $1::text
             ORDER BY h.key"
        );
        let rows = self
            .client
            .query(&sql, &[&key])
            .await
            .map_err(|err| self.failed("read the lock holders", err))?;
        Ok(rows
            .iter()
            .map(|row| {
                let pid: i64 = row.get(2);
                (
                    HeldBy {
                        key: row.get(0),
                        holder: Some(Holder {
                            host: row.get(1),
                            pid: u32::try_from(pid).unwrap_or_default(),
                            user: row.get(3),
                            since: row.get(4),
                            ci_run_url: row.get(5),
                        }),
                    },
                    row.get::<_, i32>(6),
                )
            })
            .collect())
    }

    /// The session holding the advisory lock of `key`, when one does (with or without a row).
    async fn session_holding(&self, key: &str) -> Result<Option<i32>, LockError> {
        let id = lock_id(key);
        let row = self
            .client
            .query_opt(
                "SELECT l.pid FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.granted
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND l.classid::text::bigint = ($1::bigint >> 32) & 4294967295
                   AND l.objid::text::bigint = $1::bigint & 4294967295
                   AND l.objsubid = 1
                 LIMIT 1",
                &[&id],
            )
            .await
            .map_err(|err| self.failed("read pg_locks", err))?;
        Ok(row.map(|r| r.get(0)))
    }
}

/// One key locked by the backend's session.
struct PgLock {
    key: EstateKey,
    text: String,
    id: i64,
    client: Arc<Client>,
    lost: CancellationToken,
}

#[async_trait::async_trait]
impl HeldLock for PgLock {
    fn key(&self) -> &EstateKey {
        &self.key
    }

    fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    async fn release(self: Box<Self>) {
        if self.lost.is_cancelled() {
            return;
        }
        let delete = format!(
            "DELETE FROM {HOLDERS_TABLE} WHERE key = $1 AND backend_pid = pg_backend_pid()"
        );
        if let Err(err) = self.client.execute(&delete, &[&self.text]).await {
            tracing::debug!("clearing the lock holder failed: {err}");
        }
        if let Err(err) = self
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&self.id])
            .await
        {
            tracing::debug!("releasing the advisory lock failed: {err}");
        }
    }
}

#[async_trait::async_trait]
impl LockBackend for PgBackend {
    fn describe(&self) -> String {
        format!("advisory locks in {}", self.shown)
    }

    async fn try_acquire(&self, key: &EstateKey, me: &Holder) -> Result<Attempt, LockError> {
        if self.lost.is_cancelled() {
            return Err(LockError::Backend(format!(
                "the connection to the lock database {} was lost",
                self.shown
            )));
        }
        let text = key.to_string();
        let id = lock_id(&text);
        let taken: bool = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&id])
            .await
            .map_err(|err| self.failed("take an advisory lock", err))?
            .get(0);
        if !taken {
            for _ in 0..HOLDER_READS {
                if let Some((held, _)) = self.live_holders(Some(&text)).await?.pop() {
                    return Ok(Attempt::Held(held.holder));
                }
                tokio::time::sleep(HOLDER_READ_PAUSE).await;
            }
            return Ok(Attempt::Held(None));
        }
        let upsert = format!(
            "INSERT INTO {HOLDERS_TABLE}
                 (key, lock_id, host, pid, username, started_at, ci_run_url, backend_pid)
             VALUES ($1, $2, $3, $4, $5, $6::text::timestamptz, $7, pg_backend_pid())
             ON CONFLICT (key) DO UPDATE SET
                 lock_id = EXCLUDED.lock_id, host = EXCLUDED.host, pid = EXCLUDED.pid,
                 username = EXCLUDED.username, started_at = EXCLUDED.started_at,
                 ci_run_url = EXCLUDED.ci_run_url, backend_pid = EXCLUDED.backend_pid"
        );
        let written = self
            .client
            .execute(
                &upsert,
                &[
                    &text,
                    &id,
                    &me.host,
                    &i64::from(me.pid),
                    &me.user,
                    &me.since,
                    &me.ci_run_url,
                ],
            )
            .await;
        if let Err(err) = written {
            let _ = self
                .client
                .execute("SELECT pg_advisory_unlock($1)", &[&id])
                .await;
            return Err(self.failed("record the lock holder", err));
        }
        Ok(Attempt::Acquired(Box::new(PgLock {
            key: key.clone(),
            text,
            id,
            client: self.client.clone(),
            lost: self.lost.clone(),
        })))
    }

    async fn held(&self) -> Result<Vec<HeldBy>, LockError> {
        Ok(self
            .live_holders(None)
            .await?
            .into_iter()
            .map(|(held, _)| held)
            .collect())
    }

    async fn force_release(&self, key: &str) -> Result<Option<HeldBy>, LockError> {
        let holder = self.live_holders(Some(key)).await?.pop();
        let (held, session) = match holder {
            Some((held, session)) => (held, session),
            None => match self.session_holding(key).await? {
                Some(session) => (
                    HeldBy {
                        key: key.to_string(),
                        holder: None,
                    },
                    session,
                ),
                None => return Ok(None),
            },
        };
        let ended: bool = self
            .client
            .query_one("SELECT pg_terminate_backend($1)", &[&session])
            .await
            .map_err(|err| self.failed("end the holder's session", err))?
            .get(0);
        if !ended {
            return Err(LockError::Backend(format!(
                "the lock database {} did not end session {session}; it may have ended already",
                self.shown
            )));
        }
        Ok(Some(held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_userinfo_or_query() {
        assert_eq!(
            redact("postgres://sextant:s3cret@db.example.com:5433/locks?sslmode=require"),
            "postgres://db.example.com:5433/locks"
        );
        assert_eq!(
            redact("host=db password=s3cret"),
            "the lock database URL (not shown)"
        );
    }

    #[test]
    fn sslrootcert_is_read_by_sextant_not_passed_on() {
        let (url, root) = take_root_cert("postgres://u:p@db/x?sslmode=require&sslrootcert=/ca.pem");
        assert_eq!(url, "postgres://u:p@db/x?sslmode=require");
        assert_eq!(root.as_deref(), Some("/ca.pem"));
        let (url, root) = take_root_cert("postgres://db/x");
        assert_eq!((url.as_str(), root), ("postgres://db/x", None));
    }

    #[test]
    fn lock_ids_differ_per_key_and_never_change() {
        assert_ne!(lock_id("raas:https://a"), lock_id("raas:https://b"));
        assert_eq!(lock_id("raas:https://a"), lock_id("raas:https://a"));
        assert!(is_postgres_url("postgresql://db/x"));
        assert!(!is_postgres_url("file"));
    }
}

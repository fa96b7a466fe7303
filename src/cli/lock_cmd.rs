//! `sextant lock status` and `sextant lock release`, and the choice of lock backend that
//! `apply` shares.

use std::io::{BufRead, IsTerminal, Write};

use super::args::LockBackendArgs;
use super::settings::{GlobalSettings, LockReleaseSettings, LockStatusSettings};
use super::{Failure, Reporter, exit};
use crate::apply::lock::LockBackend;
use crate::apply::lock::file::FileBackend;
use crate::apply::lock::postgres::{PgBackend, is_postgres_url};
use crate::model::LockSettings;

/// The URL of a `kind: Lock` document could not be read (the cause names the variable or
/// file, never the value).
#[derive(Debug, thiserror::Error)]
#[error("cannot read the database URL of `Lock/{name}` ({location})")]
struct LockUrlError {
    name: String,
    location: String,
    #[source]
    source: crate::model::secret::SecretError,
}

/// The backend `--lock` / `SEXTANT_LOCK_URL` names, else the one the manifests' `kind: Lock`
/// document declares, else per-user lock files. A database is connected to here, so an
/// unreachable one fails before any API call.
pub async fn open_backend(
    args: &LockBackendArgs,
    declared: Option<&LockSettings>,
) -> Result<Box<dyn LockBackend>, Failure> {
    let from_flag = args
        .lock
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    match (from_flag, declared) {
        (Some("file"), _) | (None, None) => Ok(Box::new(FileBackend::per_user())),
        (Some(url), _) if is_postgres_url(url) => connect_postgres(
            url,
            "check that the database is up and the URL in `--lock` or `SEXTANT_LOCK_URL` is right",
        )
        .await,
        // The value is not echoed: it may carry a password.
        (Some(_), _) => Err(Failure::new(
            "`--lock` (or `SEXTANT_LOCK_URL`) is neither `file` nor a `postgres://` URL",
        )
        .with_hint("e.g. `--lock postgres://sextant@db.example.com/sextant`")),
        (None, Some(lock)) => {
            let url = lock.postgres_url.resolve().map_err(|source| {
                Failure::from(LockUrlError {
                    name: lock.name.clone(),
                    location: lock.location.to_string(),
                    source,
                })
                .with_hint("nothing was changed; `--lock` overrides the document")
            })?;
            if !is_postgres_url(url.expose()) {
                return Err(Failure::new(format!(
                    "the database URL of `Lock/{}` ({}) is not a `postgres://` URL",
                    lock.name, lock.location
                ))
                .with_hint("nothing was changed"));
            }
            connect_postgres(
                url.expose(),
                &format!(
                    "check that the database is up and the URL of `Lock/{}` ({}) is right",
                    lock.name, lock.location
                ),
            )
            .await
        }
    }
}

async fn connect_postgres(url: &str, check: &str) -> Result<Box<dyn LockBackend>, Failure> {
    match PgBackend::connect(url).await {
        Ok(backend) => Ok(Box::new(backend)),
        Err(err) => Err(Failure::from(err).with_hint(format!("nothing was changed; {check}"))),
    }
}

/// The `kind: Lock` document among `paths`, when `--lock` is not given (`lock status` and
/// `lock release` read the same backend apply would).
fn declared_lock(
    args: &LockBackendArgs,
    paths: &[std::path::PathBuf],
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<Option<LockSettings>, Failure> {
    if args.lock.is_some() || paths.is_empty() {
        return Ok(None);
    }
    let unit = crate::manifest::unit(
        paths,
        &crate::manifest::Overrides::default(),
        &global.access,
    )
    .map_err(|diagnostics| super::workspace::manifest_failure(&diagnostics, reporter))?;
    let model = unit
        .load()
        .map_err(|diagnostics| super::workspace::manifest_failure(&diagnostics, reporter))?;
    Ok(model.lock)
}

/// `lock status`: the locks held now and their holders.
pub async fn status(
    args: LockStatusSettings,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let declared = declared_lock(&args.backend, &args.paths, global, reporter)?;
    let backend = open_backend(&args.backend, declared.as_ref()).await?;
    let held = backend.held().await?;
    if held.is_empty() {
        println!("No locks are held ({}).", backend.describe());
    }
    for lock in held {
        match lock.holder {
            Some(holder) => println!("{}\t{holder}", lock.key),
            None => println!("{}\tholder unknown", lock.key),
        }
    }
    Ok(exit::OK)
}

/// `lock release`: ends the session holding a lock, after confirmation.
pub async fn release(
    args: LockReleaseSettings,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let declared = declared_lock(&args.backend, &args.paths, global, reporter)?;
    let backend = open_backend(&args.backend, declared.as_ref()).await?;
    if !args.yes {
        confirm(&args.key, backend.as_ref()).await?;
    }
    match backend.force_release(&args.key).await? {
        Some(held) => {
            let holder = held
                .holder
                .map_or_else(|| "an unknown holder".to_string(), |h| h.to_string());
            println!("Released `{}`: ended the session of {holder}.", args.key);
        }
        None => reporter.note(&format!("Nobody holds `{}`; nothing to do.", args.key)),
    }
    Ok(exit::OK)
}

async fn confirm(key: &str, backend: &dyn LockBackend) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            "refusing to release a lock without confirmation: standard input is not a terminal",
        )
        .with_hint("pass `--yes` to release it anyway"));
    }
    let holder = backend
        .held()
        .await?
        .into_iter()
        .find(|h| h.key == key)
        .and_then(|h| h.holder)
        .map_or_else(|| "its holder".to_string(), |h| h.to_string());
    print!(
        "End the session of {holder} to release `{key}`?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure::new("release cancelled; nothing was changed"))
    }
}

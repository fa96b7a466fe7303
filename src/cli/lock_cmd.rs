//! `sextant lock status` and `sextant lock release`, and the choice of lock backend that
//! `apply` shares.

use std::io::{BufRead, IsTerminal, Write};

use super::args::{LockBackendArgs, LockCommand};
use super::{Failure, Reporter, exit};
use crate::apply::lock::file::FileBackend;
use crate::apply::lock::postgres::{PgBackend, is_postgres_url};
use crate::apply::lock::{EstateKey, LockBackend};

/// The backend `--lock` / `SEXTANT_LOCK_URL` names (per-user lock files when unset or
/// `file`). A database is connected to here, so an unreachable one fails before any API call.
pub async fn open_backend(args: &LockBackendArgs) -> Result<Box<dyn LockBackend>, Failure> {
    match args.lock.as_deref().map(str::trim) {
        None | Some("") | Some("file") => Ok(Box::new(FileBackend::per_user())),
        Some(url) if is_postgres_url(url) => {
            Ok(Box::new(PgBackend::connect(url).await.map_err(|err| {
                Failure::from(err).with_hint(
                    "nothing was changed; check that the database is up and the URL in `--lock` or `SEXTANT_LOCK_URL` is right",
                )
            })?))
        }
        // The value is not echoed: it may carry a password.
        Some(_) => Err(Failure::new(
            "`--lock` (or `SEXTANT_LOCK_URL`) is neither `file` nor a `postgres://` URL",
        )
        .with_hint("e.g. `--lock postgres://sextant@db.example.com/sextant`")),
    }
}

pub async fn run(command: LockCommand, reporter: &Reporter) -> Result<i32, Failure> {
    match command {
        LockCommand::Status(args) => {
            let backend = open_backend(&args.backend).await?;
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
        LockCommand::Release(args) => {
            if EstateKey::parse(&args.key).is_none() {
                return Err(Failure::new(format!(
                    "`{}` is not a lock key",
                    args.key.escape_debug()
                ))
                .with_hint(
                    "copy the key from `sextant lock status`, e.g. `raas:https://salt.example.com`",
                ));
            }
            if !args.force {
                return Err(Failure::new(
                    "`lock release` ends another apply's session; pass `--force` to do so",
                )
                .with_hint("an apply that lost its lock starts no new action and exits 1"));
            }
            let backend = open_backend(&args.backend).await?;
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
    }
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

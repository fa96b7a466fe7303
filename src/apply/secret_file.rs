//! Writing the one-time secret of a new VCD API token to `spec.file`, mode 0600, before
//! anything else can fail.

use std::path::PathBuf;

use crate::model::Resource;
use crate::providers::IssuedSecret;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{address} has no `spec.file` to write its token to")]
    NoFile { address: String },
    #[error(
        "cannot write the token of {address} to `{path}`; the token exists on the server and its secret is lost: revoke it and apply again"
    )]
    Write {
        address: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `{token_type, refresh_token, updated_on, id}` as JSON with mode 0600 (temporary file,
/// then rename, so a reader never sees half a file).
pub fn write(resource: &Resource, secret: &IssuedSecret) -> Result<PathBuf, SecretFileError> {
    let address = resource.address.to_string();
    let path = resource
        .address
        .kind
        .rules()
        .secret_file(resource)
        .ok_or_else(|| SecretFileError::NoFile {
            address: address.clone(),
        })?;
    let fail = |source| SecretFileError::Write {
        address: address.clone(),
        path: path.clone(),
        source,
    };
    let mut body = serde_json::json!({
        "token_type": secret.token_type,
        "refresh_token": secret.value.expose(),
        "updated_on": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    // Which token the file holds: how a rotation a crash interrupted is recognised.
    if let Some(id) = &secret.id {
        body["id"] = serde_json::Value::String(id.clone());
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut text =
        serde_json::to_string_pretty(&body).map_err(|e| fail(std::io::Error::other(e)))?;
    text.push('\n');
    crate::local_file::write_atomic(&path, text.as_bytes(), 0o600, true).map_err(fail)?;
    Ok(path)
}

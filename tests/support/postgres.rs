//! The PostgreSQL the lock tests use: `SEXTANT_TEST_PG_URL` when set (`.ci/run` starts one),
//! else a throwaway cluster started once per test binary by `throwaway-postgres.sh` (it stops
//! by itself when the test binary exits), when Debian's server binaries are installed.

use std::sync::OnceLock;

/// The variable naming the database the tests may use.
pub const URL_ENV: &str = "SEXTANT_TEST_PG_URL";

/// The password of the clusters `throwaway-postgres.sh` starts: no output may show it.
pub const PASSWORD: &str = "sextant-test-pw";

/// The test database's URL; `None` (after saying why on stderr) when there is none and this
/// is not CI. In CI (`CI` set) a missing database fails the test instead of skipping it.
pub fn url() -> Option<String> {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    let found = URL.get_or_init(|| match std::env::var(URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => start_throwaway(),
    });
    match found {
        Ok(url) => Some(url.clone()),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("no PostgreSQL for the lock tests: {why}")
        }
        Err(why) => {
            eprintln!("skipped: no PostgreSQL for the lock tests ({why}); set {URL_ENV}");
            None
        }
    }
}

fn start_throwaway() -> Result<String, String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/throwaway-postgres.sh"
    );
    let dir = std::env::temp_dir().join(format!(
        "sextant-test-pg-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let output = std::process::Command::new("bash")
        .arg(script)
        .arg("start")
        .arg(&dir)
        .arg(std::process::id().to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {script}: {err}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

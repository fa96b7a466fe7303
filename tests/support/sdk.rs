//! VMware's official Python SDKs (pinned in `tests/sdk/requirements.txt`) in a virtual
//! environment, and `sextant sim serve` for them to talk to.
//!
//! `.ci/run` creates the environment ahead and names its interpreter in
//! `SEXTANT_SDK_PYTHON`; otherwise the first test that needs it creates it under the target
//! directory (Python 3 and the Python package registry are needed once).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use tokio::io::{AsyncBufReadExt, BufReader};

const REQUIREMENTS: &str = include_str!("../sdk/requirements.txt");

/// The requirements an environment was built from, written once pip is done. Not
/// `requirements.txt`: `vmware-vapi-runtime` installs a file of that name into the
/// environment's root, which would make every run build the environment again.
const STAMP: &str = "sextant-requirements.txt";

/// The interpreter of the SDK environment, created on first use.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(python) = std::env::var_os("SEXTANT_SDK_PYTHON") {
                return PathBuf::from(python);
            }
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdk-venv");
            let python = venv.join("bin/python");
            let stamp = venv.join(STAMP);
            if std::fs::read_to_string(&stamp).ok().as_deref() != Some(REQUIREMENTS) {
                create_venv(&venv);
            }
            python
        })
        .clone()
}

/// Builds the environment beside `venv` and renames it into place, so test binaries that
/// race for it never see a half-installed one.
fn create_venv(venv: &Path) {
    let building = venv.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&building)
        .status()
        .expect("python3 is needed for the SDK tests");
    assert!(status.success(), "python3 -m venv failed");
    let requirements = building.join("requirements.txt");
    std::fs::write(&requirements, REQUIREMENTS).unwrap();
    let status = Command::new(building.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "pip install of tests/sdk/requirements.txt failed"
    );
    std::fs::write(building.join(STAMP), REQUIREMENTS).unwrap();
    let _ = std::fs::remove_dir_all(venv);
    if std::fs::rename(&building, venv).is_err() {
        // Another test binary won the race; its environment is as good as ours.
        let _ = std::fs::remove_dir_all(&building);
    }
}

/// `sextant sim serve` on a free loopback port, stopped when dropped.
pub struct SimServer {
    pub url: String,
    /// `(system, URL)` of each system served on an address of its own (`--listen-vcd`).
    pub own_urls: Vec<(String, String)>,
    _child: tokio::process::Child,
    _state: tempfile::TempDir,
}

impl SimServer {
    /// Starts the simulator with extra `sim serve` arguments and waits for its URL.
    pub async fn start(extra: &[&str]) -> Self {
        let state = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(super::estate::BIN)
            .args(["sim", "serve", "--listen", "127.0.0.1:0", "--state"])
            .arg(state.path().join("sim-state.json"))
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("sim serve exited before listening");
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.trim().to_owned();
            }
        };
        // `<system> listening on URL` follows for each `--listen-<system>`.
        let mut own_urls = Vec::new();
        for _ in extra.iter().filter(|a| a.starts_with("--listen-")) {
            let line = lines.next_line().await.unwrap().expect("sim serve output");
            let (system, url) = line
                .split_once(" listening on ")
                .expect("`<system> listening on URL`");
            own_urls.push((system.to_owned(), url.trim().to_owned()));
        }
        Self {
            url,
            own_urls,
            _child: child,
            _state: state,
        }
    }
}

impl SimServer {
    /// The URL of `system` on its own address, else the shared one.
    pub fn url_of(&self, system: &str) -> &str {
        self.own_urls
            .iter()
            .find(|(s, _)| s == system)
            .map_or(&self.url, |(_, url)| url)
    }
}

/// Runs `tests/sdk/<script>` with the SDK interpreter and `args`; panics with its output
/// unless it exits 0. Returns its stdout.
pub fn run_script(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let output = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

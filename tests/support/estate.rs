//! A simulator plus a directory of manifests pointing at it, and runs of the real binary in
//! that directory: the estate every end-to-end test starts from.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use sextant::sim::{self, SimConfig, SimHandle};

pub const BIN: &str = env!("CARGO_BIN_EXE_sextant");

/// The test secrets the connections of [`super::connections`] read; no output may show them.
pub const SECRETS: [(&str, &str); 4] = [
    ("SEXTANT_T_VMC_TOKEN", "vmc-api-token-secret-1"),
    ("SEXTANT_T_RAAS_TOKEN", "raas-api-token-secret-2"),
    ("SEXTANT_T_VCD_PASSWORD", "vcd-password-secret-3"),
    ("SEXTANT_T_VSPHERE_PASSWORD", "vsphere-password-secret-4"),
];

/// A simulator plus a directory of manifests (`manifests/`) that point at it.
pub struct Estate {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
}

/// What one run of the binary printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Estate {
    /// A simulator with `config` and a `manifests/connections.yaml` naming one connection of
    /// each system (the RaaS one is called `salt`).
    pub async fn with_config(config: SimConfig) -> Self {
        Self::with_raas_name(config, "salt").await
    }

    /// [`Estate::with_config`] with the RaaS connection called `raas_name`.
    pub async fn with_raas_name(config: SimConfig, raas_name: &str) -> Self {
        let estate = Self::empty(|_| config).await;
        estate.write(
            "connections.yaml",
            &super::connections(&estate.sim.base_url, raas_name),
        );
        estate
    }

    /// A simulator configured by `config` (given the estate's directory) and an empty
    /// directory: nothing written yet.
    pub async fn empty(config: impl FnOnce(&Path) -> SimConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sim = sim::start(config(dir.path())).await.unwrap();
        Self { sim, dir }
    }

    pub async fn start(time_scale: f64) -> Self {
        Self::with_config(SimConfig {
            time_scale,
            ..SimConfig::default()
        })
        .await
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn manifests(&self) -> PathBuf {
        self.path().join("manifests")
    }

    /// Writes `manifests/<name>`.
    pub fn write(&self, name: &str, text: &str) {
        self.write_file(&format!("manifests/{name}"), text);
    }

    /// Writes `<name>` under the estate's directory.
    pub fn write_file(&self, name: &str, text: &str) {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Reads `<name>` under the estate's directory.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name))
            .unwrap_or_else(|err| panic!("{name}: {err}"))
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        command_in(self.path(), args)
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        run_in(self.path(), args).await
    }

    /// A run that must exit 0.
    pub async fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, 0, "{args:?}\n{}\n{}", run.stdout, run.stderr);
        run
    }

    /// A call to the simulator's `/_sim/` admin API that must succeed.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        admin(self, method, path, body).await
    }

    pub async fn state(&self) -> Value {
        self.admin(reqwest::Method::GET, "/_sim/state", None).await
    }
}

/// A simulator the admin helpers can reach: a handle, an estate or its base URL.
pub trait SimBase {
    fn base(&self) -> &str;
}

impl SimBase for SimHandle {
    fn base(&self) -> &str {
        &self.base_url
    }
}

impl SimBase for Estate {
    fn base(&self) -> &str {
        &self.sim.base_url
    }
}

impl SimBase for str {
    fn base(&self) -> &str {
        self
    }
}

impl SimBase for String {
    fn base(&self) -> &str {
        self
    }
}

/// A call to the simulator's `/_sim/` admin API that must succeed.
pub async fn admin(
    sim: &(impl SimBase + ?Sized),
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let client = reqwest::Client::new();
    let mut request = client.request(method, format!("{}{path}", sim.base()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

/// Moves the simulator's clock on by `seconds`.
pub async fn advance(sim: &(impl SimBase + ?Sized), seconds: u64) {
    let body = serde_json::json!({ "seconds": seconds });
    admin(
        sim,
        reqwest::Method::POST,
        "/_sim/clock/advance",
        Some(body),
    )
    .await;
}

/// Replaces the simulator's injected faults.
pub async fn set_faults(sim: &(impl SimBase + ?Sized), faults: Value) {
    admin(sim, reqwest::Method::PUT, "/_sim/faults", Some(faults)).await;
}

/// The requests the simulator counted, per API.
pub async fn counters(sim: &(impl SimBase + ?Sized)) -> Value {
    admin(sim, reqwest::Method::GET, "/_sim/counters", None).await
}

pub async fn reset_counters(sim: &(impl SimBase + ?Sized)) {
    admin(sim, reqwest::Method::POST, "/_sim/counters/reset", None).await;
}

/// The binary in `dir`, without colour or a terminal, with the test secrets in its environment.
pub fn command_in(dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (name, value) in SECRETS {
        command.env(name, value);
    }
    command
}

pub async fn run_in(dir: &Path, args: &[&str]) -> Run {
    Run::of(command_in(dir, args).output().await.unwrap())
}

impl Run {
    /// What a finished process printed and how it exited.
    pub fn of(output: std::process::Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The binary run to completion in `dir`, blocking, without colour or the `SEXTANT_*`
/// variables of the environment the tests run in.
pub fn run_blocking(dir: &Path, args: &[&str]) -> Run {
    let mut command = std::process::Command::new(BIN);
    command.args(args).current_dir(dir).env("NO_COLOR", "1");
    for (name, _) in std::env::vars() {
        if name.starts_with("SEXTANT_") {
            command.env_remove(name);
        }
    }
    Run::of(command.output().expect("run sextant"))
}

/// Fails when any test secret appears in `texts`.
pub fn assert_secrets_absent(texts: &[&str]) {
    for text in texts {
        for (_, secret) in SECRETS {
            assert!(!text.contains(secret), "secret {secret} leaked in:\n{text}");
        }
    }
}

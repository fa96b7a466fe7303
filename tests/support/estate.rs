//! A simulator plus a directory of manifests pointing at it, and runs of the real binary in
//! that directory: the estate every end-to-end test starts from.

use std::path::Path;
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
        let dir = tempfile::tempdir().unwrap();
        let sim = sim::start(config).await.unwrap();
        let estate = Self { sim, dir };
        estate.write(
            "connections.yaml",
            &super::connections(&estate.sim.base_url, "salt"),
        );
        estate
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

    /// Writes `manifests/<name>`.
    pub fn write(&self, name: &str, text: &str) {
        let path = self.path().join("manifests").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        command_in(self.path(), args)
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        run_in(self.path(), args).await
    }

    /// A call to the simulator's `/_sim/` admin API that must succeed.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let client = reqwest::Client::new();
        let mut request = client.request(method, format!("{}{path}", self.sim.base_url));
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

    pub async fn state(&self) -> Value {
        self.admin(reqwest::Method::GET, "/_sim/state", None).await
    }
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
    let output = command_in(dir, args).output().await.unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Fails when any test secret appears in `texts`.
pub fn assert_secrets_absent(texts: &[&str]) {
    for text in texts {
        for (_, secret) in SECRETS {
            assert!(!text.contains(secret), "secret {secret} leaked in:\n{text}");
        }
    }
}

//! What the integration tests that drive the binary against a simulator share: the estate,
//! runs of the binary and the simulator's admin calls (`estate.rs`), one snapshot macro for
//! a run (`snapshot.rs`, `sextant_snapshot!`; new snapshots are written with
//! `INSTA_UPDATE=always` or `cargo insta review`), the Postgres lock server (`postgres.rs`)
//! and the vendor SDK harness (`sdk.rs`).
#![allow(dead_code)]

pub mod estate;
pub mod postgres;
pub mod sdk;
pub mod snapshot;

/// A target group, a job on it and a schedule of the job, on the connection `salt`.
pub const SALT: &str = r#"kind: SaltTarget
name: web servers
spec:
  desc: Web tier
  tgt: { "*": { tgt_type: glob, tgt: "web-*" } }
---
kind: SaltJob
name: Apply web state
spec:
  desc: Apply nginx
  cmd: local
  fun: state.apply
  arg: { arg: [], kwarg: { mods: nginx } }
  target: web servers
---
kind: SaltSchedule
name: Nightly
spec:
  job: Apply web state
  target: web servers
  schedule: { cron: "0 3 * * *" }
"#;

/// One connection of each system, all pointing at the simulator at `url`, with secrets read
/// from the `SEXTANT_T_*` environment variables; the RaaS connection is called `raas_name`.
pub fn connections(url: &str, raas_name: &str) -> String {
    format!(
        r#"kind: Connection
name: vmc
spec:
  type: vmc
  url: {url}
  csp_url: {url}
  api_token: {{ env: SEXTANT_T_VMC_TOKEN }}
---
kind: Connection
name: {raas_name}
spec:
  type: raas
  url: {url}
  csp_url: {url}
  api_token: {{ env: SEXTANT_T_RAAS_TOKEN }}
---
kind: Connection
name: vcd
spec:
  type: vcd
  url: {url}
  username: administrator
  password: {{ env: SEXTANT_T_VCD_PASSWORD }}
---
kind: Connection
name: vcenter
spec:
  type: vsphere
  url: {url}
  username: administrator@vsphere.local
  password: {{ env: SEXTANT_T_VSPHERE_PASSWORD }}
"#
    )
}

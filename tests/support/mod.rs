//! What the integration tests that drive the binary against a simulator share.
#![allow(dead_code)]

pub mod estate;
pub mod postgres;
pub mod sdk;

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

//! One test per fixed defect, named after the behaviour it guarantees; each fails when its fix
//! is reverted. Each test cites the evidence (vendor document, seed or vendor client code) for
//! the wire fact it relies on. Grouped by the part of the product the defect was in.

mod support;

#[path = "regression/cli.rs"]
mod cli;
#[path = "regression/lock.rs"]
mod lock;
#[path = "regression/manifest.rs"]
mod manifest;
#[path = "regression/raas.rs"]
mod raas;
#[path = "regression/security.rs"]
mod security;
#[path = "regression/vcd.rs"]
mod vcd;
#[path = "regression/vmc.rs"]
mod vmc;
#[path = "regression/vsphere.rs"]
mod vsphere;

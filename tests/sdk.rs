//! The simulator as VMware's own Python SDKs see it: `sextant sim serve` driven through the
//! vSphere Automation SDK and pyvcloud (pinned in `tests/sdk/requirements.txt`), each
//! script in `tests/sdk/` asserting what the SDK got back.

mod support;

#[path = "sdk/vcd.rs"]
mod vcd;
#[path = "sdk/vsphere.rs"]
mod vsphere;

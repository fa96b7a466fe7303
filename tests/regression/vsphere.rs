//! Regressions of vsphere.

#[allow(unused_imports)]
use crate::support::estate::{Estate, Run};

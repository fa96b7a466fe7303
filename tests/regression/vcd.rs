//! Regressions of vcd.

#[allow(unused_imports)]
use crate::support::estate::{Estate, Run};

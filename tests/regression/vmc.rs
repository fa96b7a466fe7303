//! Regressions of vmc.

#[allow(unused_imports)]
use crate::support::estate::{Estate, Run};

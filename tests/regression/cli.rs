//! Regressions of cli.

#[allow(unused_imports)]
use crate::support::estate::{Estate, Run};

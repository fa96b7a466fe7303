//! Regressions of raas.

#[allow(unused_imports)]
use crate::support::estate::{Estate, Run};

//! Regressions of security.

#[allow(unused_imports)]
use crate::support::estate::{Estate, Run};

//! vcd through its official Python SDK.

#[allow(unused_imports)]
use crate::support::sdk::{SimServer, run_script};

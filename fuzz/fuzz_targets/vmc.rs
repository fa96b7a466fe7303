//! Fuzzes the VMC reply parsers: the SDDC list (normalized into live objects) and `Task`
//! replies (status and handle), each fed the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant::providers::http::HttpResponse;
use sextant::providers::vmc;

fuzz_target!(|data: &[u8]| {
    let response = |path: &str| HttpResponse {
        method: reqwest::Method::GET,
        path: path.to_string(),
        status: 200,
        headers: Default::default(),
        body: data.to_vec(),
    };
    let _ = vmc::parse_sddc_list(&response("/vmc/api/orgs/o/sddcs"));
    let task = response("/vmc/api/orgs/o/tasks/t");
    let _ = vmc::task_status(&task, "t");
    let _ = vmc::task_handle(&task, "s");
});

//! Fuzzes the vSphere VM list reply parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant::providers::http::HttpResponse;

fuzz_target!(|data: &[u8]| {
    let response = HttpResponse {
        method: reqwest::Method::GET,
        path: "/rest/vcenter/vm".to_string(),
        status: 200,
        headers: Default::default(),
        body: data.to_vec(),
    };
    let _ = sextant::providers::vsphere::parse_vm_list(&response);
});

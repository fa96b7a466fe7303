//! Fuzzes the CSP API-token exchange reply parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant::providers::http::HttpResponse;

fuzz_target!(|data: &[u8]| {
    let response = HttpResponse {
        method: reqwest::Method::POST,
        path: sextant::providers::csp::AUTHORIZE_PATH.to_string(),
        status: 200,
        headers: Default::default(),
        body: data.to_vec(),
    };
    let _ = sextant::providers::csp::parse_token_reply(&response);
});

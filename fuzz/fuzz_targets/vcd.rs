//! Fuzzes the Cloud Director reply parsers: a token list page, a client registration and
//! the one-time grant, each fed the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant::providers::http::HttpResponse;
use sextant::providers::vcd;

fuzz_target!(|data: &[u8]| {
    let response = |method: reqwest::Method, path: &str| HttpResponse {
        method,
        path: path.to_string(),
        status: 200,
        headers: Default::default(),
        body: data.to_vec(),
    };
    let _ = vcd::parse_token_list(&response(reqwest::Method::GET, "/cloudapi/1.0.0/tokens"));
    let _ = vcd::parse_register_reply(&response(reqwest::Method::POST, "/oauth/tenant/o/register"));
    let _ = vcd::parse_grant_reply(&response(reqwest::Method::POST, "/oauth/tenant/o/token"), "t");
});

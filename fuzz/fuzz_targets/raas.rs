//! Fuzzes the RaaS RPC reply parser and, for a reply carrying `ret`, the list-page parser
//! for each Salt kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sextant::model::Kind;
use sextant::providers::http::HttpResponse;
use sextant::providers::raas::{RpcCall, parse_list_page, session::parse_call_reply};

fuzz_target!(|data: &[u8]| {
    let response = HttpResponse {
        method: reqwest::Method::POST,
        path: "/rpc".to_string(),
        status: 200,
        headers: Default::default(),
        body: data.to_vec(),
    };
    let call = RpcCall::new("tgt", "get_target_group", json!({"limit": 100, "page": 0}));
    if let Ok(Ok(ret)) = parse_call_reply(&response, &call) {
        for kind in [Kind::SaltTarget, Kind::SaltJob, Kind::SaltSchedule] {
            let _ = parse_list_page(kind, &call, &ret);
        }
    }
});

//! Cloud Director through its official Python SDK, pyvcloud (`tests/sdk/pyvcloud_session.py`).

use crate::support::sdk::{SimServer, run_script};

/// pyvcloud negotiates a version from `/api/versions`, logs in through cloudapi and the
/// legacy `/api/sessions`, follows the session's absolute links to the orgs, reads the
/// current session and the token list through its OpenAPI client, and logs in with an API
/// token's access token; Cloud Director has an address of its own there, as a real one does
/// (its `/api/session` is vSphere's on the shared address).
#[tokio::test(flavor = "multi_thread")]
async fn pyvcloud_logs_in_follows_the_session_links_and_calls_cloudapi() {
    let sim = SimServer::start(&["--listen-vcd", "127.0.0.1:0"]).await;
    let vcd = sim.url_of("vcd").to_owned();
    assert_ne!(vcd, sim.url, "Cloud Director got an address of its own");
    let url = sim.url.clone();
    let out = tokio::task::spawn_blocking(move || run_script("pyvcloud_session.py", &[&vcd, &url]))
        .await
        .unwrap();
    assert!(out.contains("pyvcloud: ok"), "{out}");
}

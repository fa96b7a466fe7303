//! Regressions of security: what hostile servers, manifests and files cannot make sextant do.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[allow(unused_imports)]
use crate::support::estate::{Estate, Run, run_in};

/// Serves `router` on a fresh loopback port; returns `http://127.0.0.1:PORT`.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// A manifest directory `manifests/` under `dir` with one vSphere connection to `url` and one
/// VM; `extra` is appended to the connection's spec.
fn vsphere_manifests(dir: &Path, url: &str, extra: &str) {
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("estate.yaml"),
        format!(
            "kind: Connection\nname: vcenter\nspec:\n  type: vsphere\n  url: {url}\n  username: administrator@vsphere.local\n  password: {{ env: SEXTANT_T_VSPHERE_PASSWORD }}\n  max_retries: 0\n{extra}---\nkind: VirtualMachine\nname: web-01\nspec:\n  power_state: POWERED_ON\n"
        ),
    )
    .unwrap();
}

/// Header names of every request that reached a server.
type Seen = Arc<Mutex<Vec<Vec<String>>>>;

async fn record(State(seen): State<Seen>, request: Request) -> StatusCode {
    let names = request
        .headers()
        .keys()
        .map(|name| name.as_str().to_string())
        .collect();
    seen.lock().unwrap().push(names);
    StatusCode::NOT_FOUND
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_reported_naming_both_urls_and_no_credential_follows_it() {
    // The second host logs every request and which headers it carried.
    let seen: Seen = Arc::default();
    let elsewhere = serve(
        axum::Router::new()
            .fallback(record)
            .with_state(seen.clone()),
    )
    .await;
    // The first host lets sextant log in (vSphere `POST /rest/com/vmware/cis/session` answers
    // `{"value": <session id>}`, `shared/api/vsphere.md`), then redirects every API call to
    // the second one, over plain HTTP and with a query string.
    let target = format!("{elsewhere}/collect?stolen=1");
    let first = serve(axum::Router::new().fallback(move |request: Request| {
        let target = target.clone();
        async move {
            if request.uri().path() == "/rest/com/vmware/cis/session" {
                axum::Json(serde_json::json!({"value": "session-id-from-the-first-host"}))
                    .into_response()
            } else {
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header("location", target)
                    .body(axum::body::Body::empty())
                    .unwrap()
            }
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    vsphere_manifests(dir.path(), &first, "");

    let run = run_in(dir.path(), &["plan", "manifests"]).await;

    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let reached = seen.lock().unwrap().clone();
    assert!(
        reached.is_empty(),
        "requests reached the second host, with headers {reached:?}"
    );
    assert!(
        run.stderr
            .contains(&format!("{first}/rest/vcenter/vm answered 302")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("to {elsewhere}/collect;")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("stolen"), "{}", run.stderr);
}

/// Runs the binary in `dir` with extra environment variables.
async fn run_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = crate::support::estate::command_in(dir, args);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn values_read_from_the_environment_are_never_echoed_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    // A secret used by mistake as a duration, and a URL whose credentials and query are secret.
    vsphere_manifests(
        dir.path(),
        "{ env: SEXTANT_T_URL }",
        "  timeout: { env: SEXTANT_T_VSPHERE_PASSWORD }\n  refresh_before_expiry: { env: SEXTANT_T_URL }\n",
    );
    let url = "https://admin:url-password-secret@vc.example.com/?session=url-query-secret";
    for command in ["validate", "plan"] {
        let run = run_with_env(
            dir.path(),
            &[command, "manifests"],
            &[("SEXTANT_T_URL", url)],
        )
        .await;
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        let output = format!("{}{}", run.stdout, run.stderr);
        for secret in [
            "vsphere-password-secret-4",
            "url-password-secret",
            "url-query-secret",
        ] {
            assert!(
                !output.contains(secret),
                "`{command}` printed {secret}:\n{output}"
            );
        }
        assert!(
            run.stderr.contains(
                "the value of environment variable `SEXTANT_T_VSPHERE_PASSWORD` is not a duration"
            ),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(
                "`spec.url`: the value of environment variable `SEXTANT_T_URL` holds credentials"
            ),
            "{}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn connection_urls_with_credentials_a_query_or_an_invalid_port_are_refused_where_written() {
    for (url, problem) in [
        (
            "https://vc.example.com:99999",
            "is not a valid URL: invalid port number",
        ),
        (
            "https://vc.example.com/sdk?x=1",
            "has a query string or fragment",
        ),
        ("https://root:hunter2@vc.example.com", "holds credentials"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        vsphere_manifests(dir.path(), url, "");
        let run = run_in(dir.path(), &["validate", "manifests"]).await;
        assert_eq!(run.code, 1, "{url}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("estate.yaml:5:8: `spec.url`: `https://")
                && run.stderr.contains(problem),
            "{url}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    }
}

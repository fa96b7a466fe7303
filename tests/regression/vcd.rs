//! Regressions of vcd.

use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

#[allow(unused_imports)]
use crate::support::estate::{BIN, Estate, Run};

const XML_36: &str = "application/*+xml;version=36.1";
const JSON_36: &str = "application/json;version=36.1";

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A password session's JWT from `POST /cloudapi/1.0.0/sessions/provider`.
async fn admin_session(base: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/cloudapi/1.0.0/sessions/provider"))
        .header("accept", JSON_36)
        .header("authorization", basic("administrator@System", "pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.headers()["x-vmware-vcloud-access-token"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A new API token `name` of the session's user: `(id, secret)`.
async fn create_token(base: &str, jwt: &str, name: &str) -> (String, String) {
    let client = reqwest::Client::new();
    let registered: Value = client
        .post(format!("{base}/oauth/provider/register"))
        .bearer_auth(jwt)
        .json(&json!({"client_name": name}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let grant: Value = client
        .post(format!("{base}/oauth/provider/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", jwt),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        format!("urn:vcloud:token:{client_id}"),
        grant["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// The access token of API token `secret` (refresh grant).
async fn token_session(base: &str, secret: &str) -> String {
    let grant: Value = reqwest::Client::new()
        .post(format!("{base}/oauth/provider/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", secret)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    grant["access_token"].as_str().unwrap().to_owned()
}

async fn token_names(base: &str, bearer: &str) -> Vec<String> {
    let list: Value = reqwest::Client::new()
        .get(format!("{base}/cloudapi/1.0.0/tokens"))
        .header("accept", JSON_36)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<String> = list["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// A session opened from an API token may not create tokens, nor view or revoke any but its
/// own (seed `004`; `vcd.md` §7; `../shared/api/README.md`, "Corrections after the audit"):
/// the simulator lists only the token's own entry to it and refuses register and revoke
/// with 403.
#[tokio::test]
async fn an_api_token_session_sees_only_its_own_token_and_may_not_create_or_revoke() {
    let estate = Estate::start(1.0).await;
    let base = &estate.sim.base_url;
    let jwt = admin_session(base).await;
    let (_, first) = create_token(base, &jwt, "first").await;
    let (second_id, _) = create_token(base, &jwt, "second").await;
    assert_eq!(token_names(base, &jwt).await, ["first", "second"]);

    let restricted = token_session(base, &first).await;
    assert_eq!(token_names(base, &restricted).await, ["first"]);
    let client = reqwest::Client::new();
    let get = client
        .get(format!("{base}/cloudapi/1.0.0/tokens/{second_id}"))
        .header("accept", JSON_36)
        .bearer_auth(&restricted)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::FORBIDDEN);
    let register = client
        .post(format!("{base}/oauth/provider/register"))
        .bearer_auth(&restricted)
        .json(&json!({"client_name": "third"}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), StatusCode::FORBIDDEN);
    let revoke = client
        .delete(format!("{base}/cloudapi/1.0.0/tokens/{second_id}"))
        .header("accept", JSON_36)
        .bearer_auth(&restricted)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::FORBIDDEN);
    assert_eq!(token_names(base, &jwt).await, ["first", "second"]);
}

/// A connection with both an API token and username/password lists, creates and revokes
/// `VcdApiToken`s with the user session (go-vcloud-director `govcd/api_token.go`; seed
/// `004`): listed through the API token's session, every other token looks absent and is
/// planned again on every run.
#[tokio::test]
async fn vcd_tokens_are_listed_with_the_user_session_when_the_connection_has_one() {
    let estate = Estate::start(1.0).await;
    estate.write(
        "tokens.yaml",
        "kind: VcdApiToken\nname: pipeline\nspec:\n  file: pipeline.json\n",
    );
    let run = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let file = std::fs::read_to_string(estate.path().join("manifests/pipeline.json")).unwrap();
    let secret = serde_json::from_str::<Value>(&file).unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The connection now logs in with that token by default, and keeps its user and password.
    let connections = std::fs::read_to_string(estate.path().join("manifests/connections.yaml"))
        .unwrap()
        .replace(
            "  username: administrator\n",
            "  username: administrator\n  api_token: { env: SEXTANT_T_VCD_API_TOKEN }\n",
        );
    assert!(connections.contains("SEXTANT_T_VCD_API_TOKEN"));
    estate.write("connections.yaml", &connections);
    estate.write(
        "tokens.yaml",
        "kind: VcdApiToken\nname: pipeline\nspec:\n  file: pipeline.json\n---\n\
         kind: VcdApiToken\nname: nightly\nspec:\n  file: nightly.json\n",
    );
    let run = |args: &'static [&'static str]| {
        let mut command = estate.command(args);
        command.env("SEXTANT_T_VCD_API_TOKEN", &secret);
        async move { command.output().await.unwrap() }
    };
    let apply = run(&["apply", "--auto-approve", "manifests"]).await;
    assert!(apply.status.success(), "{apply:?}");
    let plan = run(&["plan", "--detailed-exitcode", "manifests"]).await;
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(0), "{stdout}\n{plan:?}");
    assert!(!stdout.contains(&secret));
}

/// A `VcdApiToken` on a connection without username and password cannot work: a session
/// opened from an API token may not list, create or revoke tokens (seed `004`). `validate`
/// says so at the document.
#[tokio::test]
async fn validate_refuses_vcd_tokens_on_a_connection_without_username_and_password() {
    let estate = Estate::start(1.0).await;
    let connections = std::fs::read_to_string(estate.path().join("manifests/connections.yaml"))
        .unwrap()
        .replace(
            "  username: administrator\n  password: { env: SEXTANT_T_VCD_PASSWORD }\n",
            "  api_token: { env: SEXTANT_T_VCD_PASSWORD }\n",
        );
    estate.write("connections.yaml", &connections);
    estate.write(
        "tokens.yaml",
        "kind: VcdApiToken\nname: pipeline\nspec:\n  file: pipeline.json\n",
    );
    let run = estate.run(&["validate", "manifests"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("tokens.yaml:1:7: `connection`: managing API tokens needs a user session, but connection `vcd` has no `username` and `password`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("a session opened from an API token may not list, create or revoke"),
        "{}",
        run.stderr
    );
}

/// `GET /api/versions` answers without authentication (every client's first call: pyvcloud
/// `get_supported_versions_list`, go-vcloud-director `vcdFetchSupportedVersions`; README,
/// "Corrections") with `VersionInfo`/`Version`/`LoginUrl` entries.
#[tokio::test]
async fn api_versions_lists_the_supported_versions_without_authentication() {
    let estate = Estate::start(1.0).await;
    let base = &estate.sim.base_url;
    let response = reqwest::get(format!("{base}/api/versions")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("<SupportedVersions "), "{text}");
    assert!(
        text.contains(&format!(
            "<VersionInfo deprecated=\"false\"><Version>36.1</Version><LoginUrl>{base}/api/sessions</LoginUrl></VersionInfo>"
        )),
        "{text}"
    );
}

/// `POST /api/sessions` answers with `x-vcloud-authorization` (and, from API 33,
/// `X-VMWARE-VCLOUD-ACCESS-TOKEN`), which authenticates the next calls (pyvcloud
/// `set_credentials`; README, "Corrections"); every href in the XML is absolute.
#[tokio::test]
async fn legacy_login_answers_with_x_vcloud_authorization_and_absolute_hrefs() {
    let estate = Estate::start(1.0).await;
    let base = &estate.sim.base_url;
    let client = reqwest::Client::new();
    let login = |version: &str| {
        client
            .post(format!("{base}/api/sessions"))
            .header("accept", format!("application/*+xml;version={version}"))
            .header("authorization", basic("orgadmin@acme", "pw"))
            .send()
    };
    let old = login("32.0").await.unwrap();
    assert_eq!(old.status(), StatusCode::OK);
    assert!(!old.headers().contains_key("x-vmware-vcloud-access-token"));
    let response = login("36.1").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let legacy = response.headers()["x-vcloud-authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(legacy.len(), 32);
    assert!(
        response
            .headers()
            .contains_key("x-vmware-vcloud-access-token")
    );
    let session = response.text().await.unwrap();
    let orgs = client
        .get(format!("{base}/api/org/"))
        .header("accept", XML_36)
        .header("x-vcloud-authorization", &legacy)
        .send()
        .await
        .unwrap();
    assert_eq!(orgs.status(), StatusCode::OK);
    let org_list = orgs.text().await.unwrap();
    let org_href = href_of(&org_list, "<Org ").unwrap();
    let org = client
        .get(&org_href)
        .header("accept", XML_36)
        .header("x-vcloud-authorization", &legacy)
        .send()
        .await
        .unwrap();
    assert_eq!(org.status(), StatusCode::OK);
    let org = org.text().await.unwrap();
    assert!(org.contains("name=\"acme\""), "{org}");
    for xml in [&session, &org_list, &org] {
        let hrefs: Vec<&str> = xml.split("href=\"").skip(1).collect();
        assert!(!hrefs.is_empty(), "{xml}");
        for rest in hrefs {
            assert!(
                rest.starts_with(&format!("{base}/")),
                "not absolute: {rest}"
            );
        }
    }
}

fn href_of(xml: &str, element: &str) -> Option<String> {
    let start = xml.find(element)?;
    let rest = &xml[start..];
    let href = rest.split("href=\"").nth(1)?;
    Some(href.split('"').next()?.to_owned())
}

/// vSphere and Cloud Director both own `/api/session`; `sim serve --listen-vcd` serves Cloud
/// Director alone on an address of its own (real deployments are separate hosts) and says
/// where, after the shared address's line. There `GET /api/session` is Cloud Director's
/// current session (pyvcloud `rehydrate_from_token`); on the shared address it stays
/// vSphere's.
#[tokio::test]
async fn sim_serve_listen_vcd_gives_cloud_director_its_own_address() {
    let state = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "sim",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--listen-vcd",
            "127.0.0.1:0",
        ])
        .arg("--state")
        .arg(state.path().join("state.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let shared = first.strip_prefix("listening on ").unwrap().to_owned();
    let second = lines.next_line().await.unwrap().unwrap();
    let vcd = second.strip_prefix("vcd listening on ").unwrap().to_owned();
    assert_ne!(shared, vcd);

    let jwt = admin_session(&vcd).await;
    let client = reqwest::Client::new();
    let session = client
        .get(format!("{vcd}/api/session"))
        .header("accept", XML_36)
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::OK);
    let text = session.text().await.unwrap();
    assert!(
        text.contains("<Session ") && text.contains("user=\"administrator\""),
        "{text}"
    );
    let logout = client
        .delete(format!("{vcd}/api/session"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after = client
        .get(format!("{vcd}/api/session"))
        .header("accept", XML_36)
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    // The shared address: the same state, `/api/session` is vSphere's.
    let jwt = admin_session(&shared).await;
    let on_shared = client
        .get(format!("{shared}/api/session"))
        .header("accept", XML_36)
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_ne!(on_shared.status(), StatusCode::OK);
    let text = on_shared.text().await.unwrap();
    assert!(!text.contains("<Session "), "{text}");
    let _ = child.start_kill();
}

/// A rotation whose revoke Cloud Director answers with a task (202 + `Location`) hands the
/// task to the executor's loop instead of sleeping between polls inside the step: a SIGTERM
/// while the task runs stops the apply and reports the task as still running (the step used
/// to poll it in place, so the signal waited for the task or the step's own limit, and the
/// apply then reported a failed rotation instead of the running task).
#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_waiting_on_its_revoke_task_stops_at_sigterm_and_reports_the_task() {
    use tokio::io::AsyncReadExt;
    let estate = Estate::start(1.0).await;
    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci\nspec: { file: secrets/ci.json, rotate_after: 90d }\n",
    );
    let created = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(created.code, 0, "{}\n{}", created.stdout, created.stderr);
    // The token file says the token is 100 days old: due for rotation.
    let path = estate.path().join("manifests/secrets/ci.json");
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let old_id = file["id"].as_str().unwrap().to_string();
    let then = chrono::Utc::now() - chrono::Duration::days(100);
    file["updated_on"] = json!(then.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    std::fs::write(&path, file.to_string()).unwrap();
    estate.sim.sim.state.lock().await.vcd.options.revoke_status = 202;
    estate
        .admin(
            reqwest::Method::PUT,
            "/_sim/faults",
            Some(json!({"hold_revoke_tasks": true})),
        )
        .await;

    let mut child = estate
        .command(&["apply", "--auto-approve", "manifests"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the old token is revoked on the server, its task is what the apply waits on.
    let revoked = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let state = estate.state().await;
            let tokens = state["vcd"]["tokens"].as_object().unwrap();
            if !tokens.contains_key(&old_id) && tokens.len() == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(revoked.is_ok(), "the old token was never revoked");
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    // A guard against a hang only, well past the minute the step used to poll on its own:
    // the test tells the two behaviours apart by what the apply reports, not by its speed.
    let status = tokio::time::timeout(std::time::Duration::from_secs(180), async {
        let _ = out_pipe.read_to_string(&mut stdout).await;
        let _ = err_pipe.read_to_string(&mut stderr).await;
        child.wait().await.unwrap()
    })
    .await
    .expect("the apply did not stop after SIGTERM");
    assert_eq!(status.code(), Some(143), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("still running on the server: 1")
            && stdout.contains("- VcdApiToken/ci (task /api/task/"),
        "{stdout}\n{stderr}"
    );
    // The file names the new token, which the server keeps.
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_ne!(file["id"], json!(old_id));
    let state = estate.state().await;
    assert!(
        state["vcd"]["tokens"]
            .as_object()
            .unwrap()
            .contains_key(file["id"].as_str().unwrap())
    );
}

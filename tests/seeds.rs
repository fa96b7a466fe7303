//! What the seed documents ask for beyond plain create/update/delete (issue 22), through the
//! real binary against the simulator: Cloud Director token rotation (`rotate_after`), an
//! interrupted rotation finished by the next apply, and warnings before credentials expire.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use support::estate::{Estate, Run, SECRETS, assert_secrets_absent};

const TOKEN: &str =
    "kind: VcdApiToken\nname: ci\nspec: { file: secrets/ci.json, rotate_after: 90d }\n";

impl Estate {
    fn token_file(&self) -> PathBuf {
        self.path().join("manifests/secrets/ci.json")
    }

    fn token_file_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.token_file()).unwrap()).unwrap()
    }

    /// Makes the token file look `days` old, keeping its secret and id.
    fn age_token_file(&self, days: i64) {
        let mut file = self.token_file_json();
        let then = chrono::Utc::now() - chrono::Duration::days(days);
        file["updated_on"] = json!(then.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        std::fs::write(self.token_file(), file.to_string()).unwrap();
    }

    /// The live Cloud Director tokens of the declared token `ci` (itself and its rotated
    /// generations), by id.
    async fn ci_tokens(&self) -> Vec<String> {
        let state = self.state().await;
        let mut ids: Vec<String> = state["vcd"]["tokens"]
            .as_object()
            .unwrap()
            .values()
            .filter(|t| {
                t["name"]
                    .as_str()
                    .is_some_and(|n| n == "ci" || n.starts_with("ci.rotated-"))
            })
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// Whether the refresh grant accepts API token `secret` (`vcd.md` §4).
    async fn token_works(&self, secret: &str) -> bool {
        reqwest::Client::new()
            .post(format!("{}/oauth/provider/token", self.sim.base_url))
            .header("accept", "application/json")
            .form(&[("grant_type", "refresh_token"), ("refresh_token", secret)])
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    }

    async fn faults(&self, faults: Value) {
        self.admin(reqwest::Method::PUT, "/_sim/faults", Some(faults))
            .await;
    }
}

fn secret_of(file: &Value) -> String {
    file["refresh_token"].as_str().unwrap().to_string()
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

/// Creates token `ci` and checks the file holds the one live token.
/// Registers a newer generation of token `ci` on the server, as a rotation that never wrote
/// its file leaves it.
async fn register_newer_generation(estate: &Estate) {
    let jwt = vcd_session(estate).await;
    let registered: Value = reqwest::Client::new()
        .post(format!("{}/oauth/provider/register", estate.sim.base_url))
        .bearer_auth(&jwt)
        .json(&json!({"client_name": "ci.rotated-20261201T000000Z"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(registered["client_id"].is_string(), "{registered}");
    assert_eq!(estate.ci_tokens().await.len(), 2);
}

async fn estate_with_token() -> Estate {
    let estate = Estate::start(1.0).await;
    estate.write("token.yaml", TOKEN);
    ok(&estate.run(&["apply", "--auto-approve", "manifests"]).await);
    let file = estate.token_file_json();
    assert_eq!(
        estate.ci_tokens().await,
        vec![file["id"].as_str().unwrap().to_string()]
    );
    estate
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vcd_token_older_than_rotate_after_is_rotated_new_file_first_then_the_old_token_revoked()
{
    let estate = estate_with_token().await;
    let young = estate.run(&["plan", "manifests"]).await;
    ok(&young);
    assert!(young.stdout.contains("No changes"), "{}", young.stdout);

    let old = estate.token_file_json();
    estate.age_token_file(100);
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan);
    assert!(
        plan.stdout.contains("~ rotate VcdApiToken \"ci\""),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("will be rotated"), "{}", plan.stdout);
    assert!(plan.stdout.contains("rotate_after: 90d"), "{}", plan.stdout);
    assert!(plan.stdout.contains("1 to change"), "{}", plan.stdout);
    let json_plan = estate.run(&["plan", "--format", "json", "manifests"]).await;
    ok(&json_plan);
    let document: Value = serde_json::from_str(&json_plan.stdout).unwrap();
    let change = &document["resource_changes"][0];
    assert_eq!(change["change"]["actions"], json!(["create", "delete"]));
    assert!(
        change["action_reason"]
            .as_str()
            .unwrap()
            .starts_with("rotate:"),
        "{change}"
    );
    let markdown = estate
        .run(&["plan", "--format", "markdown", "manifests"])
        .await;
    ok(&markdown);
    assert!(
        markdown.stdout.contains("will be rotated"),
        "{}",
        markdown.stdout
    );

    let applied = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    ok(&applied);
    assert!(
        applied.stdout.contains("Rotation complete"),
        "{}",
        applied.stdout
    );
    let new = estate.token_file_json();
    assert_ne!(new["id"], old["id"]);
    assert_eq!(
        estate.ci_tokens().await,
        vec![new["id"].as_str().unwrap().to_string()]
    );
    assert!(estate.token_works(&secret_of(&new)).await);
    assert!(!estate.token_works(&secret_of(&old)).await);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(estate.token_file())
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let after = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(after.code, 0, "{}\n{}", after.stdout, after.stderr);
    for run in [&plan, &json_plan, &markdown, &applied, &after] {
        assert_secrets_absent(&[&run.stdout, &run.stderr]);
        for secret in [secret_of(&old), secret_of(&new)] {
            assert!(!run.stdout.contains(&secret) && !run.stderr.contains(&secret));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_killed_before_the_old_token_is_revoked_is_finished_by_the_next_apply() {
    let estate = estate_with_token().await;
    let old = estate.token_file_json();
    estate.age_token_file(100);
    estate.faults(json!({"hold_token_revokes": true})).await;
    let mut child = estate
        .command(&["apply", "--auto-approve", "manifests"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once the file names the new token: the revoke of the old one is held unanswered.
    let switched = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let file = estate.token_file_json();
            if file["id"] != old["id"] && estate.ci_tokens().await.len() == 2 {
                return file;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the apply ended before the kill"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the new token was never written");
    child.start_kill().unwrap();
    assert!(child.wait().await.unwrap().code().is_none(), "not killed");

    // Both tokens live; the file names the new one, which works.
    assert!(
        estate
            .ci_tokens()
            .await
            .contains(&switched["id"].as_str().unwrap().to_string())
    );
    assert!(estate.token_works(&secret_of(&switched)).await);
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan);
    assert!(
        plan.stdout.contains("~ rotate VcdApiToken \"ci\""),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("finish an interrupted rotation"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(old["id"].as_str().unwrap()),
        "{}",
        plan.stdout
    );

    estate.faults(json!({})).await;
    ok(&estate.run(&["apply", "--auto-approve", "manifests"]).await);
    let file = estate.token_file_json();
    assert_eq!(
        file["id"], switched["id"],
        "the finished rotation wrote the file again"
    );
    assert_eq!(
        estate.ci_tokens().await,
        vec![file["id"].as_str().unwrap().to_string()]
    );
    assert!(estate.token_works(&secret_of(&file)).await);
    assert!(!estate.token_works(&secret_of(&old)).await);
    let after = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(after.code, 0, "{}\n{}", after.stdout, after.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_generation_whose_secret_was_never_written_is_revoked_and_the_file_kept() {
    let estate = estate_with_token().await;
    let file = estate.token_file_json();
    // What a crash between the new token's grant and the file write leaves: a newer
    // generation on the server that no file holds.
    register_newer_generation(&estate).await;

    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan);
    assert!(
        plan.stdout.contains("finish an interrupted rotation"),
        "{}",
        plan.stdout
    );
    ok(&estate.run(&["apply", "--auto-approve", "manifests"]).await);
    assert_eq!(
        estate.ci_tokens().await,
        vec![file["id"].as_str().unwrap().to_string()]
    );
    assert_eq!(estate.token_file_json(), file);
    assert!(estate.token_works(&secret_of(&file)).await);
}

/// A password session of the simulator's administrator (`vcd.md` §3).
async fn vcd_session(estate: &Estate) -> String {
    use base64::Engine;
    let password = SECRETS
        .iter()
        .find(|(name, _)| *name == "SEXTANT_T_VCD_PASSWORD")
        .unwrap()
        .1;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("administrator@System:{password}"));
    let response = reqwest::Client::new()
        .post(format!(
            "{}/cloudapi/1.0.0/sessions/provider",
            estate.sim.base_url
        ))
        .header("accept", "application/json;version=36.1")
        .header("authorization", format!("Basic {basic}"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.headers()["x-vmware-vcloud-access-token"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csp_api_token_expiring_within_the_window_is_warned_about_without_its_value() {
    let estate = Estate::start(1.0).await;
    estate.write("salt.yaml", support::SALT);
    // Six months by default (seed `000`): nothing to say within 30 days.
    let quiet = estate.run(&["plan", "--format", "json", "manifests"]).await;
    ok(&quiet);
    let document: Value = serde_json::from_str(&quiet.stdout).unwrap();
    assert_eq!(document["warnings"], json!([]), "{}", quiet.stdout);
    assert!(!quiet.stderr.contains("expires on"), "{}", quiet.stderr);

    estate
        .admin(
            reqwest::Method::PUT,
            "/_sim/csp/api-token-ttl",
            Some(json!({"seconds": 10 * 24 * 3600})),
        )
        .await;
    let text = estate.run(&["plan", "manifests"]).await;
    ok(&text);
    let line = text
        .stderr
        .lines()
        .find(|l| l.contains("CSP API token"))
        .unwrap_or_else(|| panic!("no expiry warning:\n{}", text.stderr));
    assert!(line.contains("connection `salt`"), "{line}");
    assert!(line.contains("env `SEXTANT_T_RAAS_TOKEN`"), "{line}");
    assert!(line.contains("expires on"), "{line}");
    let json_plan = estate.run(&["plan", "--format", "json", "manifests"]).await;
    ok(&json_plan);
    let document: Value = serde_json::from_str(&json_plan.stdout).unwrap();
    let warnings = document["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{}", json_plan.stdout);
    assert_eq!(warnings[0]["kind"], "credential_expiry");
    assert_eq!(warnings[0]["connection"], "salt");
    assert!(warnings[0]["expires_at"].is_string());
    let markdown = estate
        .run(&["plan", "--format", "markdown", "manifests"])
        .await;
    ok(&markdown);
    assert!(
        markdown.stdout.contains("**Warning:**") && markdown.stdout.contains("CSP API token"),
        "{}",
        markdown.stdout
    );
    let applied = estate
        .run(&["apply", "--auto-approve", "--json", "manifests"])
        .await;
    ok(&applied);
    assert!(
        applied.stderr.contains("CSP API token"),
        "{}",
        applied.stderr
    );
    // `apply --json`: the warning leads the event stream.
    let first: Value = serde_json::from_str(applied.stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {}", applied.stdout));
    assert_eq!(first["type"], "warning", "{}", applied.stdout);
    assert_eq!(first["kind"], "credential_expiry");
    assert_eq!(first["connection"], "salt");
    // `drift` warns the same way, in its report's `warnings`.
    let drift = estate
        .run(&["drift", "--format", "json", "manifests"])
        .await;
    // Exit 2: the simulator's own Salt objects are unmanaged here.
    assert_ne!(drift.code, 1, "{}\n{}", drift.stdout, drift.stderr);
    let report: Value = serde_json::from_str(&drift.stdout).unwrap();
    assert_eq!(
        report["warnings"][0]["kind"], "credential_expiry",
        "{report}"
    );
    assert!(drift.stderr.contains("CSP API token"), "{}", drift.stderr);
    let narrow = estate
        .run(&["plan", "--warn-expiry", "5d", "manifests"])
        .await;
    ok(&narrow);
    assert!(
        !narrow.stderr.contains("CSP API token"),
        "{}",
        narrow.stderr
    );
    for run in [&text, &json_plan, &markdown, &applied, &narrow, &drift] {
        assert_secrets_absent(&[&run.stdout, &run.stderr]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vcd_token_file_near_its_max_age_is_warned_about_without_its_value() {
    let estate = estate_with_token().await;
    let url = estate.sim.base_url.clone();
    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci\nconnection: vcd\nspec: { file: secrets/ci.json }\n",
    );
    estate.write(
        "ci-connection.yaml",
        &format!(
            "kind: Connection\nname: vcd-ci\nspec:\n  type: vcd\n  url: {url}\n  api_token: {{ file: secrets/ci.json }}\n  max_age: 90d\n  username: administrator\n  password: {{ env: SEXTANT_T_VCD_PASSWORD }}\n---\nkind: VcdApiToken\nname: other\nconnection: vcd-ci\nspec: {{ file: secrets/other.json }}\n"
        ),
    );
    let young = estate.run(&["plan", "manifests"]).await;
    ok(&young);
    assert!(!young.stderr.contains("max_age"), "{}", young.stderr);

    estate.age_token_file(80);
    let secret = secret_of(&estate.token_file_json());
    let plan = estate.run(&["plan", "--format", "json", "manifests"]).await;
    ok(&plan);
    let line = plan
        .stderr
        .lines()
        .find(|l| l.contains("max_age"))
        .unwrap_or_else(|| panic!("no age warning:\n{}", plan.stderr));
    assert!(line.contains("connection `vcd-ci`"), "{line}");
    assert!(line.contains("ci.json"), "{line}");
    let document: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(
        document["warnings"][0]["connection"], "vcd-ci",
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains(&secret) && !plan.stderr.contains(&secret));
    assert_secrets_absent(&[&plan.stdout, &plan.stderr]);
}

/// `POST /csp/gateway/am/api/auth/api-tokens/details` for `token`: status and body.
async fn csp_details(estate: &Estate, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/csp/gateway/am/api/auth/api-tokens/details",
            estate.sim.base_url
        ))
        .json(&json!({"tokenValue": token}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn csp_exchange(estate: &Estate, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!(
            "{}/csp/gateway/am/api/auth/api-tokens/authorize",
            estate.sim.base_url
        ))
        .form(&[("api_token", token)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulated_csp_reports_api_token_lifetimes_and_refuses_expired_tokens_once_one_is_set()
{
    let estate = Estate::start(1.0).await;
    let token = "csp-api-token-for-details";
    assert_eq!(csp_exchange(&estate, token).await, 200);
    let (status, details) = csp_details(&estate, token).await;
    assert_eq!(status, 200, "{details}");
    let lifetime = |d: &Value| d["expiresAt"].as_i64().unwrap() - d["createdAt"].as_i64().unwrap();
    // Six months by default (seed `000`, `csp.md` §5), in epoch milliseconds.
    assert_eq!(lifetime(&details), 183 * 24 * 3600 * 1000);
    assert!(!details.to_string().contains(token));

    estate
        .admin(
            reqwest::Method::PUT,
            "/_sim/csp/api-token-ttl",
            Some(json!({"seconds": 10 * 24 * 3600})),
        )
        .await;
    let (_, details) = csp_details(&estate, token).await;
    assert_eq!(lifetime(&details), 10 * 24 * 3600 * 1000);
    estate
        .admin(
            reqwest::Method::POST,
            "/_sim/clock/advance",
            Some(json!({"seconds": 11 * 24 * 3600})),
        )
        .await;
    assert_eq!(csp_exchange(&estate, token).await, 400);
    let (status, body) = csp_details(&estate, token).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid_grant"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_rotate_after_or_a_max_age_outside_vcd_is_a_located_error() {
    let estate = Estate::start(1.0).await;
    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci\nspec:\n  file: secrets/ci.json\n  rotate_after: soon\n",
    );
    let run = estate.run(&["validate", "manifests"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("manifests/token.yaml:5:")
            && run.stderr.contains("spec.rotate_after")
            && run.stderr.contains("`soon` is not a duration"),
        "{}",
        run.stderr
    );

    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci\nspec: { file: secrets/ci.json, rotate_after: 90d }\n",
    );
    let url = estate.sim.base_url.clone();
    estate.write(
        "extra.yaml",
        &format!("kind: Connection\nname: vs\nspec:\n  type: vsphere\n  url: {url}\n  username: u\n  password: {{ env: SEXTANT_T_VSPHERE_PASSWORD }}\n  max_age: 90d\n"),
    );
    let run = estate.run(&["validate", "manifests"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("manifests/extra.yaml:") && run.stderr.contains("max_age"),
        "{}",
        run.stderr
    );

    std::fs::remove_file(estate.path().join("manifests/extra.yaml")).unwrap();
    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci.rotated-20261201T000000Z\nspec: { file: secrets/ci.json }\n",
    );
    let run = estate.run(&["validate", "manifests"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("manifests/token.yaml:2:")
            && run.stderr.contains("rotated generation of API token `ci`"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_rotation_plan_applies_as_saved() {
    let estate = estate_with_token().await;
    let old = estate.token_file_json();
    estate.age_token_file(100);
    let plan = estate
        .run(&["plan", "--out", "rotate.plan", "manifests"])
        .await;
    ok(&plan);
    let saved = std::fs::read_to_string(estate.path().join("rotate.plan")).unwrap();
    assert!(!saved.contains(&secret_of(&old)));
    let applied = estate.run(&["apply", "rotate.plan"]).await;
    ok(&applied);
    let new = estate.token_file_json();
    assert_ne!(new["id"], old["id"]);
    assert_eq!(
        estate.ci_tokens().await,
        vec![new["id"].as_str().unwrap().to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_file_naming_a_token_no_longer_live_is_reported_then_replaced_on_request() {
    let estate = estate_with_token().await;
    let mut file = estate.token_file_json();
    file["id"] = json!("urn:vcloud:token:00000000-0000-0000-0000-000000000000");
    std::fs::write(estate.token_file(), file.to_string()).unwrap();
    let plan = estate.run(&["plan", "manifests"]).await;
    ok(&plan);
    assert!(plan.stderr.contains("no longer live"), "{}", plan.stderr);
    assert!(
        plan.stderr.contains("--recreate-lost-secrets"),
        "{}",
        plan.stderr
    );
    let applied = estate
        .run(&[
            "apply",
            "--auto-approve",
            "--recreate-lost-secrets",
            "manifests",
        ])
        .await;
    ok(&applied);
    let new = estate.token_file_json();
    assert_eq!(
        estate.ci_tokens().await,
        vec![new["id"].as_str().unwrap().to_string()]
    );
    assert!(estate.token_works(&secret_of(&new)).await);
    assert_secrets_absent(&[&plan.stderr, &applied.stdout, &applied.stderr]);
}

/// Deleting a token revokes every generation in turn; when Cloud Director answers each revoke
/// with a task (202 + `Location`), the provider hands the executor one task that its polls
/// carry from one revoke to the next, and no generation is left behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_of_two_generations_whose_revokes_are_tasks_is_deleted_whole() {
    let estate = estate_with_token().await;
    register_newer_generation(&estate).await;
    estate.sim.sim.state.lock().await.vcd.options.revoke_status = 202;

    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci\nensure: absent\n",
    );
    let applied = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    ok(&applied);
    assert!(applied.stdout.contains("1 destroyed"), "{}", applied.stdout);
    assert_eq!(estate.ci_tokens().await, Vec::<String>::new());
    let after = estate
        .run(&["plan", "--detailed-exitcode", "manifests"])
        .await;
    assert_eq!(after.code, 0, "{}\n{}", after.stdout, after.stderr);
}

/// Deleting a token whose document still names its secret file leaves the file where it is
/// (it may be the only copy a pipeline reads) and says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_token_leaves_its_secret_file_in_place_with_a_warning() {
    let estate = estate_with_token().await;
    estate.write(
        "token.yaml",
        "kind: VcdApiToken\nname: ci\nensure: absent\nspec: { file: secrets/ci.json }\n",
    );
    let applied = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    ok(&applied);
    assert!(applied.stdout.contains("1 destroyed"), "{}", applied.stdout);
    assert_eq!(estate.ci_tokens().await, Vec::<String>::new());
    assert!(estate.token_file().exists());
    assert!(
        applied.stderr.contains("VcdApiToken/ci: the token file `")
            && applied
                .stderr
                .contains("secrets/ci.json` was left in place"),
        "{}",
        applied.stderr
    );
    assert_secrets_absent(&[&applied.stdout, &applied.stderr]);
}

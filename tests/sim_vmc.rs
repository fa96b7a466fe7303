//! The simulator's core, CSP, VMC and vSphere APIs over loopback: success shapes, documented
//! errors, task progression, fault injection, counters, persistence and `sim serve`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sextant::sim::{self, SimConfig, SimHandle, SimOptions};

const AUTHORIZE: &str = "/csp/gateway/am/api/auth/api-tokens/authorize";

/// Access tokens outlive every clock jump the tests make (the TTL itself is tested apart).
const LONG_TTL: Duration = Duration::from_secs(30 * 86_400);

/// A simulator whose clock only moves when a test advances it (time_scale 1: a test run is a
/// few simulated seconds at most, far below any task duration).
async fn start() -> SimHandle {
    start_with(config()).await
}

fn config() -> SimConfig {
    SimConfig {
        time_scale: 1.0,
        token_ttl: LONG_TTL,
        ..SimConfig::default()
    }
}

async fn start_with(config: SimConfig) -> SimHandle {
    sim::start(config).await.expect("simulator starts")
}

/// [`start`] with other answers to the unverified points.
async fn start_with_options(options: SimOptions) -> SimHandle {
    start_with(SimConfig {
        options,
        ..config()
    })
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Exchanges an API token at the CSP (form-encoded `api_token`).
async fn exchange(sim: &SimHandle, api_token: &str) -> reqwest::Response {
    client()
        .post(format!("{}{AUTHORIZE}", sim.base_url))
        .form(&[("api_token", api_token)])
        .send()
        .await
        .unwrap()
}

async fn access_token(sim: &SimHandle) -> String {
    let response = exchange(sim, "good-api-token").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// GETs `url` (an admin or anonymous endpoint) and parses the body as JSON.
async fn get_json(url: impl reqwest::IntoUrl) -> Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn org_id(sim: &SimHandle) -> String {
    let body = get_json(format!("{}/_sim/csp/org", sim.base_url)).await;
    body["org_id"].as_str().unwrap().to_owned()
}

async fn advance(sim: &SimHandle, seconds: u64) {
    let response = client()
        .post(format!("{}/_sim/clock/advance", sim.base_url))
        .json(&json!({ "seconds": seconds }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// `PUT /_sim/<setting>` with `body`; returns the status.
async fn put_admin(sim: &SimHandle, setting: &str, body: &Value) -> StatusCode {
    client()
        .put(format!("{}/_sim/{setting}", sim.base_url))
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
}

async fn put_faults(sim: &SimHandle, faults: Value) {
    assert_eq!(
        put_admin(sim, "faults", &faults).await,
        StatusCode::OK,
        "{faults}"
    );
}

/// Sends `method base+path` with the credential header `auth` (name, value) and the JSON
/// `body` where given; returns the response as it came.
async fn raw_call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = client().request(method, format!("{base}{path}"));
    if let Some((header, value)) = auth {
        request = request.header(header, value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// A logged-in client of one simulated API ([`Vmc`], [`Vsphere`]): every call carries its
/// credential header and answers (status, body parsed as JSON, `Null` when empty or not JSON).
trait ApiClient {
    /// What paths are appended to.
    fn base(&self) -> &str;

    /// The credential header: (name, value).
    fn auth(&self) -> (&str, &str);

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = raw_call(self.base(), method, path, Some(self.auth()), body.as_ref()).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }
}

/// A VMC session: base URL of the org plus a valid token.
struct Vmc {
    base: String,
    org: String,
    token: String,
}

impl Vmc {
    async fn new(sim: &SimHandle) -> Vmc {
        let org = org_id(sim).await;
        Vmc {
            base: format!("{}/vmc/api/orgs/{org}", sim.base_url),
            token: access_token(sim).await,
            org,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates an SDDC and returns (sddc id, task id).
    async fn create(&self, body: Value) -> (String, String) {
        let (status, task) = self.post("/sddcs", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{task}");
        (
            task["resource_id"].as_str().unwrap().to_owned(),
            task["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates an SDDC and lets its deployment finish.
    async fn ready_sddc(&self, sim: &SimHandle, body: Value) -> String {
        let (id, _) = self.create(body).await;
        advance(sim, 3 * 3600).await;
        let (_, sddc) = self.get(&format!("/sddcs/{id}")).await;
        assert_eq!(sddc["sddc_state"], "READY");
        id
    }
}

impl ApiClient for Vmc {
    fn base(&self) -> &str {
        &self.base
    }

    fn auth(&self) -> (&str, &str) {
        ("csp-auth-token", &self.token)
    }
}

fn sddc_body(name: &str, hosts: u32) -> Value {
    json!({"name": name, "num_hosts": hosts, "provider": "AWS", "region": "US_WEST_2",
        "account_link_config": {"delay_account_link": true}})
}

fn assert_error_response(body: &Value, status: u16) {
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["path"].as_str().unwrap().starts_with("/vmc/api/"),
        "{body}"
    );
    assert!(body["retryable"].is_boolean(), "{body}");
    assert!(body["error_code"].is_string(), "{body}");
    assert!(
        body["error_messages"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

// ---------------------------------------------------------------- CSP

#[tokio::test]
async fn csp_exchange_accepts_all_three_token_forms_and_returns_every_dto_field() {
    let sim = start_with(SimConfig {
        time_scale: 1.0,
        ..SimConfig::default()
    })
    .await;
    let url = format!("{}{AUTHORIZE}", sim.base_url);
    let forms = [
        client().post(&url).form(&[("api_token", "tok-1")]),
        client().post(&url).form(&[("refresh_token", "tok-1")]),
        client()
            .post(format!("{url}?refresh_token=tok-1"))
            .header("content-type", "application/x-www-form-urlencoded"),
    ];
    for request in forms {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        for field in [
            "access_token",
            "token_type",
            "expires_in",
            "scope",
            "id_token",
            "refresh_token",
        ] {
            assert!(!body[field].is_null(), "missing {field} in {body}");
        }
        assert_eq!(body["expires_in"], 1800);
        assert!(
            body["token_type"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("bearer")
        );
    }
}

#[tokio::test]
async fn csp_rejects_missing_invalid_and_revoked_api_tokens_with_csp_error_bodies() {
    let sim = start().await;
    let url = format!("{}{AUTHORIZE}", sim.base_url);
    let missing = client()
        .post(&url)
        .form(&[("other", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["statusCode"], 400);
    assert_eq!(body["message"], "Invalid request body");

    let bad = exchange(&sim, "invalid-token").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid_grant:")
    );
    for field in [
        "statusCode",
        "moduleCode",
        "cspErrorCode",
        "errorCode",
        "requestId",
        "traceId",
    ] {
        assert!(!body[field].is_null(), "missing {field} in {body}");
    }
    assert!(body.get("metadata").is_some_and(Value::is_null));
    assert!(
        !body.to_string().contains("invalid-token"),
        "error echoes the token"
    );

    // Revocation stops new exchanges; the access token already issued keeps working.
    let vmc = Vmc::new(&sim).await;
    let revoke = client()
        .post(format!("{}/_sim/csp/revoke-api-token", sim.base_url))
        .json(&json!({"api_token": "good-api-token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    let again = exchange(&sim, "good-api-token").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(vmc.get("").await.0, StatusCode::OK);
}

// ---------------------------------------------------------------- VMC auth and orgs

#[tokio::test]
async fn vmc_rejects_missing_unknown_and_expired_tokens_with_401() {
    let sim = start().await;
    let org = org_id(&sim).await;
    let url = format!("{}/vmc/api/orgs/{org}/sddcs", sim.base_url);
    let missing = client().get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_error_response(&missing.json().await.unwrap(), 401);

    let bogus = client()
        .get(&url)
        .header("csp-auth-token", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), StatusCode::UNAUTHORIZED);

    // `Authorization: Bearer` (VMware's Python SDK) carries the same access token.
    let bearer = client().get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    let token = access_token(&sim).await;
    let bearer = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    put_faults(&sim, json!({"token_ttl_secs": 20})).await;
    let short = access_token(&sim).await;
    let ok = client()
        .get(&url)
        .header("csp-auth-token", &short)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    advance(&sim, 21).await;
    let expired = client()
        .get(&url)
        .header("csp-auth-token", &short)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_error_response(&expired.json().await.unwrap(), 401);
}

/// Every VMC endpoint, with a body where it takes one.
fn vmc_endpoints(
    org: &str,
    sddc: &str,
    task: &str,
) -> Vec<(reqwest::Method, String, Option<Value>)> {
    use reqwest::Method;
    let o = format!("/vmc/api/orgs/{org}");
    vec![
        (Method::GET, "/vmc/api/orgs".to_owned(), None),
        (Method::GET, o.clone(), None),
        (Method::GET, format!("{o}/sddcs"), None),
        (Method::POST, format!("{o}/sddcs"), Some(sddc_body("x", 2))),
        (Method::GET, format!("{o}/sddcs/provision-spec"), None),
        (Method::GET, format!("{o}/sddcs/{sddc}"), None),
        (
            Method::PATCH,
            format!("{o}/sddcs/{sddc}"),
            Some(json!({"name": "y"})),
        ),
        (Method::DELETE, format!("{o}/sddcs/{sddc}"), None),
        (
            Method::POST,
            format!("{o}/sddcs/{sddc}/esxs"),
            Some(json!({"num_hosts": 1})),
        ),
        (
            Method::GET,
            format!("{o}/sddcs/{sddc}/primarycluster"),
            None,
        ),
        (Method::POST, format!("{o}/sddcs/{sddc}/convert"), None),
        (Method::GET, format!("{o}/tasks"), None),
        (Method::GET, format!("{o}/tasks/{task}"), None),
        (
            Method::POST,
            format!("{o}/tasks/{task}?action=cancel"),
            None,
        ),
    ]
}

#[tokio::test]
async fn every_vmc_endpoint_answers_401_to_missing_bogus_and_expired_tokens() {
    let sim = start_with(SimConfig {
        time_scale: 1.0,
        token_ttl: Duration::from_secs(60),
        ..SimConfig::default()
    })
    .await;
    let vmc = Vmc::new(&sim).await;
    let (sddc, task) = vmc.create(sddc_body("target", 2)).await;
    advance(&sim, 61).await;
    for (method, path, body) in vmc_endpoints(&vmc.org, &sddc, &task) {
        for token in [None, Some("bogus"), Some(vmc.token.as_str())] {
            let auth = token.map(|token| ("csp-auth-token", token));
            let response =
                raw_call(&sim.base_url, method.clone(), &path, auth, body.as_ref()).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert!(response.headers().contains_key("www-authenticate"));
            assert_error_response(&response.json().await.unwrap(), 401);
        }
    }
}

#[tokio::test]
async fn every_vmc_sddc_and_task_endpoint_answers_404_for_unknown_ids() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let unknown = "11111111-2222-4333-8444-555555555555";
    for (method, path, body) in vmc_endpoints(&vmc.org, unknown, unknown) {
        if !path.contains(unknown) {
            continue;
        }
        let path = path
            .trim_start_matches(&format!("/vmc/api/orgs/{}", vmc.org))
            .to_owned();
        let (status, error) = vmc.call(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_error_response(&error, 404);
    }
}

#[tokio::test]
async fn vmc_mutations_reject_invalid_bodies_and_busy_sddcs() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let mut body = sddc_body("one", 1);
    body["sddc_type"] = json!("1NODE");
    let single = vmc.ready_sddc(&sim, body).await;
    let multi = vmc.ready_sddc(&sim, sddc_body("three", 3)).await;
    let invalid = [
        (
            reqwest::Method::PATCH,
            format!("/sddcs/{multi}"),
            json!({"name": 5}),
        ),
        (reqwest::Method::PATCH, format!("/sddcs/{multi}"), json!({})),
        (
            reqwest::Method::POST,
            format!("/sddcs/{multi}/esxs"),
            json!({"num_hosts": "two"}),
        ),
        (
            reqwest::Method::POST,
            format!("/sddcs/{multi}/esxs"),
            json!({"num_hosts": 0}),
        ),
        (
            reqwest::Method::POST,
            format!("/sddcs/{single}/convert"),
            json!({"num_hosts": "x"}),
        ),
        (
            reqwest::Method::POST,
            format!("/sddcs/{single}/convert"),
            json!({"num_hosts": 2}),
        ),
        (reqwest::Method::POST, "/sddcs".to_owned(), json!([1, 2])),
    ];
    for (method, path, body) in invalid {
        let (status, error) = vmc.call(method.clone(), &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path} {body}");
        assert_error_response(&error, 400);
    }
    // Busy: a conversion in flight blocks every other mutation.
    let (status, _) = vmc
        .post(&format!("/sddcs/{single}/convert"), json!({"num_hosts": 3}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            format!("/sddcs/{single}/convert"),
            None,
        ),
        (reqwest::Method::DELETE, format!("/sddcs/{single}"), None),
        (
            reqwest::Method::POST,
            format!("/sddcs/{single}/esxs"),
            Some(json!({"num_hosts": 1})),
        ),
    ] {
        let (status, error) = vmc.call(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert!(
            error["error_messages"][0]
                .as_str()
                .unwrap()
                .contains("Concurrent update"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn vmc_lists_and_gets_the_token_org_and_refuses_others() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let orgs: Value = client()
        .get(format!("{}/vmc/api/orgs", sim.base_url))
        .header("csp-auth-token", &vmc.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orgs.as_array().unwrap().len(), 1);
    assert_eq!(orgs[0]["id"], vmc.org.as_str());
    let (status, org) = vmc.get("").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(org["id"], vmc.org.as_str());
    assert!(org["display_name"].is_string());

    let other = client()
        .get(format!(
            "{}/vmc/api/orgs/00000000-0000-4000-8000-000000000000",
            sim.base_url
        ))
        .header("csp-auth-token", &vmc.token)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert_error_response(&other.json().await.unwrap(), 403);
}

// ---------------------------------------------------------------- VMC SDDCs and tasks

#[tokio::test]
async fn vmc_create_returns_a_task_that_advances_until_the_sddc_is_ready() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let (status, task) = vmc.post("/sddcs", sddc_body("prod", 2)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(task["status"], "STARTED");
    assert_eq!(task["task_type"], "SDDC-PROVISION");
    assert_eq!(task["resource_type"], "sddc");
    let sddc_id = task["resource_id"].as_str().unwrap().to_owned();
    let task_id = task["id"].as_str().unwrap().to_owned();
    let first_eta = task["estimated_remaining_minutes"].as_i64().unwrap();
    assert!(first_eta > 100, "create takes about 2 h: {first_eta}");

    let (_, sddc) = vmc.get(&format!("/sddcs/{sddc_id}")).await;
    assert_eq!(sddc["sddc_state"], "DEPLOYING");
    assert_eq!(sddc["resource_config"]["region"], "US_WEST_2");
    assert_eq!(sddc["resource_config"]["deployment_type"], "SINGLE_AZ");

    advance(&sim, 3600).await;
    let (_, task) = vmc.get(&format!("/tasks/{task_id}")).await;
    assert_eq!(task["status"], "STARTED");
    let progress = task["progress_percent"].as_i64().unwrap();
    assert!((30..=70).contains(&progress), "{progress}");
    assert!(task["estimated_remaining_minutes"].as_i64().unwrap() < first_eta);
    assert_ne!(task["phase_in_progress"], "");

    advance(&sim, 3700).await;
    let (_, task) = vmc.get(&format!("/tasks/{task_id}")).await;
    assert_eq!(task["status"], "FINISHED");
    assert_eq!(task["progress_percent"], 100);
    assert_eq!(task["estimated_remaining_minutes"], 0);
    assert!(task["end_time"].is_string());
    let (_, sddc) = vmc.get(&format!("/sddcs/{sddc_id}")).await;
    assert_eq!(sddc["sddc_state"], "READY");
    let hosts = &sddc["resource_config"]["clusters"][0]["esx_host_list"];
    assert_eq!(hosts.as_array().unwrap().len(), 2);
    let (status, list) = vmc.get("/sddcs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn vmc_tasks_finish_on_their_own_with_a_high_time_scale() {
    let sim = start_with(SimConfig {
        time_scale: 200_000.0,
        token_ttl: LONG_TTL,
        ..SimConfig::default()
    })
    .await;
    let vmc = Vmc::new(&sim).await;
    let (sddc_id, task_id) = vmc.create(sddc_body("fast", 2)).await;
    let mut status = Value::Null;
    for _ in 0..200 {
        let (_, task) = vmc.get(&format!("/tasks/{task_id}")).await;
        status = task["status"].clone();
        if status == "FINISHED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "FINISHED");
    let (_, sddc) = vmc.get(&format!("/sddcs/{sddc_id}")).await;
    assert_eq!(sddc["sddc_state"], "READY");
}

#[tokio::test]
async fn vmc_create_validates_the_body_as_documented() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let cases = [
        (
            sddc_body("a", 1),
            "Sddc provisioning requires a minimum of 2 hosts.",
        ),
        (
            json!({"name": "a", "num_hosts": 6, "provider": "AWS", "region": "US_WEST_2", "sddc_type": "1NODE"}),
            "Maximum host limit of 4 hosts reached for the cluster.",
        ),
        (
            json!({"name": "a", "num_hosts": 2, "provider": "AWS", "region": "MARS_1"}),
            "region",
        ),
        (
            json!({"num_hosts": 2, "provider": "AWS", "region": "US_WEST_2"}),
            "name",
        ),
        (
            json!({"name": "a", "num_hosts": 3, "provider": "AWS", "region": "US_WEST_2", "deployment_type": "MultiAZ"}),
            "even",
        ),
        (
            json!({"name": "a", "num_hosts": 2, "provider": "AWS", "region": "US_WEST_2", "vpc_cidr": "10.0.0.0/16"}),
            "reserved",
        ),
        (
            json!({"name": "a", "num_hosts": 2, "provider": "GCP", "region": "US_WEST_2"}),
            "provider",
        ),
    ];
    for (body, message) in cases {
        let (status, error) = vmc.post("/sddcs", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_error_response(&error, 400);
        let text = error["error_messages"][0].as_str().unwrap();
        assert!(text.contains(message), "{text} lacks {message}");
    }
    let broken = client()
        .post(format!("{}/sddcs", vmc.base))
        .header("csp-auth-token", &vmc.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);

    // validateOnly: 200, nothing created; "" counts as absent; unknown fields are ignored.
    let relaxed = json!({"name": "a", "num_hosts": 1, "provider": "ZEROCLOUD", "region": "us-west-2",
        "sddc_type": "1NODE", "vpc_cidr": "", "host_instance_type": "", "sddc_template_id": "",
        "brand_new_field": true});
    let (status, _) = vmc.post("/sddcs?validateOnly=true", relaxed.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vmc.get("/sddcs").await.1.as_array().unwrap().len(), 0);
    let (status, _) = vmc.post("/sddcs", relaxed).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn vmc_client_chosen_sddc_id_is_honoured_and_a_repeat_is_rejected() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let id = "6f1d3c2a-9b8e-4d7c-a1f0-3e2d1c0b9a88";
    let mut body = sddc_body("chosen", 2);
    body["sddc_id"] = json!(id);
    let (status, task) = vmc.post("/sddcs", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(task["resource_id"], id);
    let (status, sddc) = vmc.get(&format!("/sddcs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sddc["id"], id);
    let (status, error) = vmc.post("/sddcs", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["error_messages"][0].as_str().unwrap().contains(id));
    assert_eq!(vmc.get("/sddcs").await.1.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn vmc_repeated_sddc_id_can_return_the_original_task() {
    let sim = start_with_options(SimOptions {
        vmc_duplicate_sddc_id_returns_task: true,
        ..SimOptions::default()
    })
    .await;
    let vmc = Vmc::new(&sim).await;
    let mut body = sddc_body("chosen", 2);
    body["sddc_id"] = json!("0b6a1f7e-2c3d-4e5f-8a9b-0c1d2e3f4a5b");
    let (_, first) = vmc.post("/sddcs", body.clone()).await;
    let (status, second) = vmc.post("/sddcs", body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first["id"], second["id"]);
}

#[tokio::test]
async fn vmc_provision_spec_lists_regions_and_host_counts() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let (status, spec) = vmc.get("/sddcs/provision-spec").await;
    assert_eq!(status, StatusCode::OK);
    let aws = &spec["provider"]["AWS"];
    assert!(
        aws["region_display_names"]["US_WEST_2"].is_string(),
        "{spec}"
    );
    let hosts = &aws["sddc_type_config_spec"]["DEFAULT"]["availability"]["US_WEST_2"][0]["hosts"];
    assert_eq!(hosts[0], 2);
}

#[tokio::test]
async fn vmc_unknown_sddc_and_task_are_404() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    for path in [
        "/sddcs/9d3c1e2f-0000-4000-8000-000000000001",
        "/tasks/nope",
        "/sddcs/x/primarycluster",
    ] {
        let (status, body) = vmc.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_error_response(&body, 404);
    }
    let (status, body) = vmc.delete("/sddcs/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_response(&body, 404);
}

#[tokio::test]
async fn vmc_busy_sddc_rejects_a_second_mutation_as_a_concurrent_update() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let id = vmc.ready_sddc(&sim, sddc_body("busy", 3)).await;
    let (status, _) = vmc
        .post(
            &format!("/sddcs/{id}/esxs?action=add"),
            json!({"num_hosts": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, error) = vmc
        .post(&format!("/sddcs/{id}/esxs"), json!({"num_hosts": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_response(&error, 400);
    assert!(
        error["error_messages"][0]
            .as_str()
            .unwrap()
            .contains(&format!("Concurrent update on {id}"))
    );
    let (status, _) = vmc.delete(&format!("/sddcs/{id}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn vmc_concurrent_update_status_is_an_option() {
    let sim = start_with_options(SimOptions {
        vmc_concurrent_update_status: 409,
        ..SimOptions::default()
    })
    .await;
    let vmc = Vmc::new(&sim).await;
    let id = vmc.ready_sddc(&sim, sddc_body("busy", 3)).await;
    vmc.post(&format!("/sddcs/{id}/esxs"), json!({"num_hosts": 1}))
        .await;
    let (status, error) = vmc
        .post(&format!("/sddcs/{id}/esxs"), json!({"num_hosts": 1}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error_response(&error, 409);
}

#[tokio::test]
async fn vmc_hosts_are_added_and_removed_on_the_primary_cluster() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let id = vmc.ready_sddc(&sim, sddc_body("hosts", 3)).await;
    let (status, cluster) = vmc.get(&format!("/sddcs/{id}/primarycluster")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cluster["esx_host_list"].as_array().unwrap().len(), 3);
    assert_eq!(cluster["cluster_name"], "Cluster-1");

    let body = json!({"num_hosts": 2, "cluster_id": cluster["cluster_id"]});
    let (status, task) = vmc
        .post(&format!("/sddcs/{id}/esxs?action=add"), body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(task["status"], "STARTED");
    let (_, cluster_now) = vmc.get(&format!("/sddcs/{id}/primarycluster")).await;
    assert_eq!(cluster_now["cluster_state"], "ADDING_HOSTS");
    advance(&sim, 3600).await;
    let (_, task) = vmc
        .get(&format!("/tasks/{}", task["id"].as_str().unwrap()))
        .await;
    assert_eq!(task["status"], "FINISHED");
    let (_, cluster) = vmc.get(&format!("/sddcs/{id}/primarycluster")).await;
    assert_eq!(cluster["esx_host_list"].as_array().unwrap().len(), 5);

    let victim = cluster["esx_host_list"][0]["esx_id"].clone();
    let (status, _) = vmc
        .post(
            &format!("/sddcs/{id}/esxs?action=remove"),
            json!({"num_hosts": 1, "esxs": ["no-such-host"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = vmc
        .post(
            &format!("/sddcs/{id}/esxs?action=remove"),
            json!({"num_hosts": 1, "esxs": [victim]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    advance(&sim, 3600).await;
    let (_, cluster) = vmc.get(&format!("/sddcs/{id}/primarycluster")).await;
    let hosts = cluster["esx_host_list"].as_array().unwrap();
    assert_eq!(hosts.len(), 4);
    assert!(
        hosts.iter().all(|h| h["esx_id"] != victim),
        "the chosen host went"
    );

    // Errors: below the minimum, privileged action, missing num_hosts, unknown cluster.
    let (status, _) = vmc
        .post(
            &format!("/sddcs/{id}/esxs?action=remove"),
            json!({"num_hosts": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = vmc
        .post(
            &format!("/sddcs/{id}/esxs?action=force-remove"),
            json!({"num_hosts": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = vmc
        .post(&format!("/sddcs/{id}/esxs"), json!({"cluster_id": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = vmc
        .post(
            &format!("/sddcs/{id}/esxs"),
            json!({"num_hosts": 1, "cluster_id": "other"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn vmc_multi_az_host_changes_must_be_even() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let mut body = sddc_body("stretched", 6);
    body["deployment_type"] = json!("MultiAZ");
    let id = vmc.ready_sddc(&sim, body).await;
    let (_, sddc) = vmc.get(&format!("/sddcs/{id}")).await;
    assert_eq!(sddc["resource_config"]["deployment_type"], "MULTI_AZ");
    let (status, _) = vmc
        .post(&format!("/sddcs/{id}/esxs"), json!({"num_hosts": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = vmc
        .post(&format!("/sddcs/{id}/esxs"), json!({"num_hosts": 2}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn vmc_converts_a_single_host_sddc_to_three_hosts() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let mut body = sddc_body("one", 1);
    body["sddc_type"] = json!("1NODE");
    let id = vmc.ready_sddc(&sim, body).await;
    let (_, sddc) = vmc.get(&format!("/sddcs/{id}")).await;
    assert!(sddc["expiration_date"].is_string(), "a 1NODE SDDC expires");
    let (status, _) = vmc
        .post(&format!("/sddcs/{id}/esxs"), json!({"num_hosts": 1}))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "1NODE needs a conversion first"
    );
    let convert = client()
        .post(format!("{}/sddcs/{id}/convert", vmc.base))
        .header("csp-auth-token", &vmc.token)
        .send()
        .await
        .unwrap();
    assert_eq!(convert.status(), StatusCode::ACCEPTED);
    let task: Value = convert.json().await.unwrap();
    assert_eq!(task["status"], "STARTED");
    advance(&sim, 3 * 3600).await;
    let (_, sddc) = vmc.get(&format!("/sddcs/{id}")).await;
    assert_eq!(sddc["sddc_type"], "DEFAULT");
    assert!(sddc["expiration_date"].is_null());
    assert_eq!(
        sddc["resource_config"]["clusters"][0]["esx_host_list"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let (status, _) = vmc.post(&format!("/sddcs/{id}/convert"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "only 1NODE converts");
}

#[tokio::test]
async fn vmc_delete_leaves_a_readable_deleted_sddc_hidden_from_the_list() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let (deploying, _) = vmc.create(sddc_body("young", 2)).await;
    let (status, error) = vmc.delete(&format!("/sddcs/{deploying}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(
        error["error_messages"][0]
            .as_str()
            .unwrap()
            .contains("valid for deletion")
    );

    advance(&sim, 3 * 3600).await;
    let (status, task) = vmc
        .delete(&format!("/sddcs/{deploying}?retain_configuration=false"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(task["task_type"], "SDDC-DELETE");
    let (_, sddc) = vmc.get(&format!("/sddcs/{deploying}")).await;
    assert_eq!(sddc["sddc_state"], "DELETING");
    advance(&sim, 3600).await;
    let (status, sddc) = vmc.get(&format!("/sddcs/{deploying}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sddc["sddc_state"], "DELETED");
    assert_eq!(vmc.get("/sddcs").await.1.as_array().unwrap().len(), 0);
    let (_, all) = vmc.get("/sddcs?includeDeleted=true").await;
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn vmc_deleted_sddc_can_be_404_by_option() {
    let sim = start_with_options(SimOptions {
        vmc_deleted_sddc_not_found: true,
        ..SimOptions::default()
    })
    .await;
    let vmc = Vmc::new(&sim).await;
    let id = vmc.ready_sddc(&sim, sddc_body("gone", 2)).await;
    vmc.delete(&format!("/sddcs/{id}")).await;
    advance(&sim, 3600).await;
    assert_eq!(
        vmc.get(&format!("/sddcs/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn vmc_task_cancel_goes_through_canceling_to_canceled() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let (sddc_id, task_id) = vmc.create(sddc_body("stop", 2)).await;
    let (status, _) = vmc
        .post(&format!("/tasks/{task_id}?action=pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, task) = vmc
        .post(&format!("/tasks/{task_id}?action=cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["status"], "CANCELING");
    advance(&sim, 600).await;
    let (_, task) = vmc.get(&format!("/tasks/{task_id}")).await;
    assert_eq!(task["status"], "CANCELED");
    let (_, sddc) = vmc.get(&format!("/sddcs/{sddc_id}")).await;
    assert_eq!(sddc["sddc_state"], "CANCELED");
    let (status, error) = vmc
        .post(&format!("/tasks/{task_id}?action=cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error_messages"][0], "Invalid action or bad argument");
}

#[tokio::test]
async fn vmc_tasks_list_supports_filter() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let (a, _) = vmc.create(sddc_body("a", 2)).await;
    vmc.create(sddc_body("b", 2)).await;
    let (status, all) = vmc.get("/tasks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, one) = vmc
        .get(&format!(
            "/tasks?$filter=(resource_id eq '{a}') and (status eq 'STARTED')"
        ))
        .await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["resource_id"], a.as_str());
    let (status, _) = vmc.get("/tasks?$filter=status%20eq").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn vmc_rename_is_synchronous_and_needs_a_ready_sddc() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let (young, _) = vmc.create(sddc_body("young", 2)).await;
    let (status, _) = vmc
        .patch(&format!("/sddcs/{young}"), json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    advance(&sim, 3 * 3600).await;
    let (status, sddc) = vmc
        .patch(&format!("/sddcs/{young}"), json!({"name": "grown"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sddc["name"], "grown");
}

#[tokio::test]
async fn vmc_failure_fault_fails_the_task_and_the_sddc() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    put_faults(&sim, json!({"fail_sddc_tasks": ["doomed"]})).await;
    let (id, task_id) = vmc.create(sddc_body("doomed", 2)).await;
    advance(&sim, 3 * 3600).await;
    let (_, task) = vmc.get(&format!("/tasks/{task_id}")).await;
    assert_eq!(task["status"], "FAILED");
    assert!(task["error_message"].is_string());
    let (_, sddc) = vmc.get(&format!("/sddcs/{id}")).await;
    assert_eq!(sddc["sddc_state"], "FAILED");
}

#[tokio::test]
async fn vmc_cancel_fault_ends_the_task_canceled() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let id = vmc.ready_sddc(&sim, sddc_body("flaky", 3)).await;
    put_faults(&sim, json!({"cancel_sddc_tasks": [id]})).await;
    let (_, task) = vmc
        .post(&format!("/sddcs/{id}/esxs"), json!({"num_hosts": 1}))
        .await;
    advance(&sim, 3600).await;
    let (_, task) = vmc
        .get(&format!("/tasks/{}", task["id"].as_str().unwrap()))
        .await;
    assert_eq!(task["status"], "CANCELED");
    let (_, sddc) = vmc.get(&format!("/sddcs/{id}")).await;
    assert_eq!(sddc["sddc_state"], "READY");
    let hosts = &sddc["resource_config"]["clusters"][0]["esx_host_list"];
    assert_eq!(
        hosts.as_array().unwrap().len(),
        3,
        "a canceled add adds nothing"
    );
}

#[tokio::test]
async fn wrong_methods_get_405_in_the_api_shape() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    let (status, body) = vmc
        .call(reqwest::Method::PUT, "/sddcs", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_response(&body, 405);
    let vs = Vsphere::login(&sim).await;
    let (status, body) = vs.delete("/rest/vcenter/vm").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("com.vmware.vapi.std.errors.")
    );
}

#[tokio::test]
async fn options_can_change_at_runtime_through_the_admin_api() {
    let sim = start().await;
    let url = format!("{}/_sim/options", sim.base_url);
    let current = get_json(&url).await;
    assert_eq!(current["vmc_concurrent_update_status"], 400);
    assert_eq!(current["vsphere_list_cap"], 1000);
    let bad = json!({"vmc_concurrent_update_status": 418});
    assert_eq!(
        put_admin(&sim, "options", &bad).await,
        StatusCode::BAD_REQUEST
    );
    let ok = json!({"vsphere_hardware_error_kind": "not_allowed_in_current_state"});
    assert_eq!(put_admin(&sim, "options", &ok).await, StatusCode::OK);
    let vs = Vsphere::login(&sim).await;
    let web = vs.vm_id("web-02").await;
    let (status, body) = vs
        .patch(
            &format!("/rest/vcenter/vm/{web}/hardware/cpu"),
            json!({"spec": {"count": 8}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_vapi_error(&body, "not_allowed_in_current_state");
}

#[tokio::test]
async fn vmc_strict_query_option_rejects_miscased_names() {
    let sim = start_with_options(SimOptions {
        vmc_strict_query: true,
        ..SimOptions::default()
    })
    .await;
    let vmc = Vmc::new(&sim).await;
    assert_eq!(
        vmc.get("/sddcs?includeDeleted=true").await.0,
        StatusCode::OK
    );
    assert_eq!(
        vmc.get("/sddcs?include_deleted=true").await.0,
        StatusCode::BAD_REQUEST
    );
}

// ---------------------------------------------------------------- vSphere

/// `POST /rest/com/vmware/cis/session` with basic auth.
async fn rest_login(sim: &SimHandle, user: &str, password: &str) -> reqwest::Response {
    client()
        .post(format!("{}/rest/com/vmware/cis/session", sim.base_url))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
}

/// A vSphere session: the simulator's base URL plus a session id.
struct Vsphere {
    base: String,
    session: String,
}

impl Vsphere {
    /// Logs in through `/rest` with basic auth.
    async fn login(sim: &SimHandle) -> Vsphere {
        let response = rest_login(sim, "administrator@vsphere.local", "secret").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        Vsphere::with_session(sim, body["value"].as_str().unwrap())
    }

    fn with_session(sim: &SimHandle, session: &str) -> Vsphere {
        Vsphere {
            base: sim.base_url.clone(),
            session: session.to_owned(),
        }
    }

    /// `POST` without a body (power operations, session actions).
    async fn post(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, None).await
    }

    /// The id of the VM named `name`.
    async fn vm_id(&self, name: &str) -> String {
        let (_, found) = self
            .get(&format!("/rest/vcenter/vm?filter.names={name}"))
            .await;
        found["value"][0]["vm"].as_str().unwrap().to_owned()
    }
}

impl ApiClient for Vsphere {
    fn base(&self) -> &str {
        &self.base
    }

    fn auth(&self) -> (&str, &str) {
        ("vmware-api-session-id", &self.session)
    }
}

fn assert_vapi_error(body: &Value, kind: &str) {
    assert_eq!(
        body["type"],
        format!("com.vmware.vapi.std.errors.{kind}"),
        "{body}"
    );
    assert!(
        body["value"]["messages"][0]["default_message"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn vsphere_session_lifecycle_with_header_and_cookie() {
    let sim = start().await;
    let url = format!("{}/rest/com/vmware/cis/session", sim.base_url);
    let response = rest_login(&sim, "u", "p").await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("vmware-api-session-id="));
    let id = response.json::<Value>().await.unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let vs = Vsphere::with_session(&sim, &id);

    let header_only = client()
        .post(&url)
        .basic_auth("u", Some("p"))
        .header("vmware-use-header-authn", "true")
        .send()
        .await
        .unwrap();
    assert!(!header_only.headers().contains_key("set-cookie"));

    let (status, info) = vs.post("/rest/com/vmware/cis/session?~action=get").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["value"]["user"], "u");
    let by_cookie = client()
        .get(format!("{}/rest/vcenter/vm", sim.base_url))
        .header("cookie", format!("vmware-api-session-id={id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);

    let (status, _) = vs.delete("/rest/com/vmware/cis/session").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = vs.get("/rest/vcenter/vm").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_vapi_error(&body, "unauthenticated");

    for (user, password) in [("u", "invalid-pass"), ("invalid-user", "p")] {
        let bad = rest_login(&sim, user, password).await;
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
        assert_vapi_error(&bad.json().await.unwrap(), "unauthenticated");
    }
    let none = client().post(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_vsphere_endpoint_needs_a_session_and_knows_unknown_vms() {
    use reqwest::Method;
    let sim = start().await;
    let vs = Vsphere::login(&sim).await;
    let endpoints = |vm: &str| {
        vec![
            (Method::GET, "/rest/vcenter/vm".to_owned(), None),
            (Method::GET, format!("/rest/vcenter/vm/{vm}"), None),
            (Method::GET, format!("/rest/vcenter/vm/{vm}/power"), None),
            (
                Method::POST,
                format!("/rest/vcenter/vm/{vm}/power/start"),
                None,
            ),
            (
                Method::POST,
                format!("/rest/vcenter/vm/{vm}/power/stop"),
                None,
            ),
            (
                Method::POST,
                format!("/rest/vcenter/vm/{vm}/power/suspend"),
                None,
            ),
            (
                Method::POST,
                format!("/rest/vcenter/vm/{vm}/power/reset"),
                None,
            ),
            (
                Method::GET,
                format!("/rest/vcenter/vm/{vm}/hardware/cpu"),
                None,
            ),
            (
                Method::PATCH,
                format!("/rest/vcenter/vm/{vm}/hardware/cpu"),
                Some(json!({"spec": {"count": 2}})),
            ),
            (
                Method::GET,
                format!("/rest/vcenter/vm/{vm}/hardware/memory"),
                None,
            ),
            (
                Method::PATCH,
                format!("/rest/vcenter/vm/{vm}/hardware/memory"),
                Some(json!({"spec": {"size_MiB": 4096}})),
            ),
            (Method::GET, format!("/api/vcenter/vm/{vm}"), None),
            (
                Method::POST,
                format!("/api/vcenter/vm/{vm}/power?action=start"),
                None,
            ),
        ]
    };
    for (method, path, body) in endpoints("vm-1001") {
        for session in [None, Some("not-a-session")] {
            let auth = session.map(|session| ("vmware-api-session-id", session));
            let response =
                raw_call(&sim.base_url, method.clone(), &path, auth, body.as_ref()).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path}"
            );
        }
    }
    for (method, path, body) in endpoints("vm-404") {
        if !path.contains("vm-404") {
            continue;
        }
        let (status, error) = vs.call(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        if path.starts_with("/rest") {
            assert_vapi_error(&error, "not_found");
        } else {
            assert_eq!(error["error_type"], "NOT_FOUND");
        }
    }
}

#[tokio::test]
async fn vsphere_sessions_can_be_expired_by_the_admin_api() {
    let sim = start().await;
    let vs = Vsphere::login(&sim).await;
    let expire = client()
        .post(format!("{}/_sim/vsphere/expire-sessions", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(expire.status(), StatusCode::NO_CONTENT);
    let (status, _) = vs.get("/rest/vcenter/vm").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The POST form of logout ends the session as DELETE does.
    let vs = Vsphere::login(&sim).await;
    let url = "/rest/com/vmware/cis/session?~action=delete";
    let (status, _) = vs.post(url).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = vs.get("/rest/vcenter/vm").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn vsphere_vm_list_filters_and_the_default_estate() {
    let sim = start().await;
    let vs = Vsphere::login(&sim).await;
    let (status, all) = vs.get("/rest/vcenter/vm").await;
    assert_eq!(status, StatusCode::OK);
    let vms = all["value"].as_array().unwrap();
    assert_eq!(vms.len(), 3);
    let web01 = vms.iter().find(|v| v["name"] == "web-01").unwrap();
    assert_eq!(web01["power_state"], "POWERED_ON");
    assert_eq!(web01["cpu_count"], 2);
    assert_eq!(web01["memory_size_MiB"], 4096);
    assert!(web01["vm"].as_str().unwrap().starts_with("vm-"));

    let (_, named) = vs
        .get("/rest/vcenter/vm?filter.names=web-01&filter.names=db-01")
        .await;
    assert_eq!(named["value"].as_array().unwrap().len(), 2);
    let (_, indexed) = vs.get("/rest/vcenter/vm?filter.names.1=db-01").await;
    assert_eq!(indexed["value"][0]["name"], "db-01");
    assert_eq!(indexed["value"][0]["cpu_count"], 4);
    assert_eq!(indexed["value"][0]["memory_size_MiB"], 8192);
    let (_, off) = vs
        .get("/rest/vcenter/vm?filter.power_states=POWERED_OFF")
        .await;
    assert_eq!(off["value"].as_array().unwrap().len(), 1);
    let (status, body) = vs.get("/rest/vcenter/vm?filter.power_states=ON").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_vapi_error(&body, "invalid_argument");
}

#[tokio::test]
async fn vsphere_vm_list_over_the_cap_is_unable_to_allocate_resource() {
    let sim = start_with_options(SimOptions {
        vsphere_list_cap: 2,
        ..SimOptions::default()
    })
    .await;
    let vs = Vsphere::login(&sim).await;
    let (status, body) = vs.get("/rest/vcenter/vm").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_vapi_error(&body, "unable_to_allocate_resource");
    let (status, _) = vs.get("/rest/vcenter/vm?filter.names=web-01").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn vsphere_vm_get_and_power_operations_with_their_errors() {
    let sim = start().await;
    let vs = Vsphere::login(&sim).await;
    let db = vs.vm_id("db-01").await;
    let (status, info) = vs.get(&format!("/rest/vcenter/vm/{db}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["value"]["name"], "db-01");
    assert_eq!(info["value"]["cpu"]["count"], 4);
    assert_eq!(info["value"]["memory"]["size_MiB"], 8192);
    let (status, body) = vs.get("/rest/vcenter/vm/vm-999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_vapi_error(&body, "not_found");

    let power = |op: &str| format!("/rest/vcenter/vm/{db}/power/{op}");
    // (operation, the vAPI error it meets or None for success, the power state after it)
    let steps = [
        ("stop", Some("already_in_desired_state"), "POWERED_OFF"),
        (
            "suspend",
            Some("not_allowed_in_current_state"),
            "POWERED_OFF",
        ),
        ("start", None, "POWERED_ON"),
        ("start", Some("already_in_desired_state"), "POWERED_ON"),
        ("suspend", None, "SUSPENDED"),
        ("start", None, "POWERED_ON"),
        ("reset", None, "POWERED_ON"),
        ("stop", None, "POWERED_OFF"),
    ];
    for (op, error, after) in steps {
        let (status, body) = vs.post(&power(op)).await;
        match error {
            Some(kind) => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{op}");
                assert_vapi_error(&body, kind);
            }
            None => {
                assert_eq!(status, StatusCode::OK, "{op}");
                assert_eq!(body, Value::Null, "no body on success");
            }
        }
        let (_, state) = vs.get(&format!("/rest/vcenter/vm/{db}/power")).await;
        assert_eq!(state["value"]["state"], after, "after {op}");
    }
    let (_, state) = vs.get(&format!("/rest/vcenter/vm/{db}/power")).await;
    assert_eq!(state["value"]["clean_power_off"], true);

    put_faults(&sim, json!({"busy_vms": ["db-01"]})).await;
    let (status, body) = vs.post(&power("start")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_vapi_error(&body, "resource_busy");
}

#[tokio::test]
async fn vsphere_cpu_and_memory_changes_follow_the_hot_add_rules() {
    let sim = start().await;
    let vs = Vsphere::login(&sim).await;
    let web = vs.vm_id("web-01").await;
    let cpu = format!("/rest/vcenter/vm/{web}/hardware/cpu");
    let memory = format!("/rest/vcenter/vm/{web}/hardware/memory");
    // Powered on without hot-add, no growth; and the /rest spec wrapper is required.
    for (path, body) in [
        (&cpu, json!({"spec": {"count": 4}})),
        (&memory, json!({"spec": {"size_MiB": 8192}})),
        (&cpu, json!({"count": 4})),
    ] {
        let (status, error) = vs.patch(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert_vapi_error(&error, "invalid_argument");
    }

    vs.post(&format!("/rest/vcenter/vm/{web}/power/stop")).await;
    let (status, _) = vs
        .patch(&cpu, json!({"spec": {"count": 3, "cores_per_socket": 2}}))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "count must be a multiple of cores_per_socket"
    );
    let (status, _) = vs.patch(&cpu, json!({"spec": {"count": 4}})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = vs.patch(&memory, json!({"spec": {"size_MiB": 8192}})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, cpu_info) = vs.get(&cpu).await;
    assert_eq!(cpu_info["value"]["count"], 4);
    assert_eq!(cpu_info["value"]["hot_add_enabled"], false);
    let (_, memory_info) = vs.get(&memory).await;
    assert_eq!(memory_info["value"]["size_MiB"], 8192);
    let (status, body) = vs
        .patch(
            "/rest/vcenter/vm/vm-0/hardware/cpu",
            json!({"spec": {"count": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_vapi_error(&body, "not_found");
}

#[tokio::test]
async fn vsphere_api_flavour_is_unwrapped_and_answers_201_and_204() {
    let sim = start().await;
    let response = client()
        .post(format!("{}/api/session", sim.base_url))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let id: String = response.json().await.unwrap();
    let vs = Vsphere::with_session(&sim, &id);
    let (status, list) = vs.get("/api/vcenter/vm?names=db-01").await;
    assert_eq!(status, StatusCode::OK);
    let db = list[0]["vm"].as_str().unwrap().to_owned();
    let (status, _) = vs
        .post(&format!("/api/vcenter/vm/{db}/power?action=start"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = vs
        .post(&format!("/api/vcenter/vm/{db}/power?action=start"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_type"], "ALREADY_IN_DESIRED_STATE");
    let (status, body) = vs
        .patch(
            &format!("/api/vcenter/vm/{db}/hardware/memory"),
            json!({"size_MiB": 1024}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_type"], "INVALID_ARGUMENT");
    let (status, info) = vs.get("/api/session").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["user"], "u");
    let (status, _) = vs.delete("/api/session").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = vs.get("/api/vcenter/vm").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_type"], "UNAUTHENTICATED");
}

// ---------------------------------------------------------------- faults, counters, admin

async fn counters(sim: &SimHandle) -> Value {
    get_json(format!("{}/_sim/counters", sim.base_url)).await
}

#[tokio::test]
async fn counters_count_requests_per_api_and_reset() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    vmc.get("/sddcs").await;
    vmc.get("/sddcs").await;
    let vs = Vsphere::login(&sim).await;
    vs.get("/rest/vcenter/vm").await;
    client()
        .get(format!("{}/rpc", sim.base_url))
        .send()
        .await
        .unwrap();
    client()
        .get(format!("{}/cloudapi/1.0.0/tokens", sim.base_url))
        .send()
        .await
        .unwrap();
    let c = counters(&sim).await;
    assert_eq!(c["csp"], 1);
    assert_eq!(c["vmc"], 2);
    assert_eq!(c["vsphere"], 2);
    assert_eq!(c["raas"], 1);
    assert_eq!(c["vcd"], 1);
    assert_eq!(c["total"], 7);
    let reset = client()
        .post(format!("{}/_sim/counters/reset", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(counters(&sim).await["total"], 0);
}

#[tokio::test]
async fn injected_429_and_503_follow_the_configured_rates_and_spare_the_admin_api() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    put_faults(&sim, json!({"rate_429": 1.0, "retry_after_secs": 7})).await;
    let response = client()
        .get(format!("{}/sddcs", vmc.base))
        .header("csp-auth-token", &vmc.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_error_response(&response.json().await.unwrap(), 429);
    let csp = exchange(&sim, "x").await;
    assert_eq!(csp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        counters(&sim).await["vmc"],
        1,
        "the admin API stays reachable"
    );

    put_faults(&sim, json!({"rate_503": 1.0})).await;
    let response = client()
        .get(format!("{}/rest/vcenter/vm", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_vapi_error(&response.json().await.unwrap(), "service_unavailable");

    // A partial rate: some requests pass, some fail, and the same seed gives the same sequence.
    async fn sequence(seed: u64) -> Vec<u16> {
        let sim = start_with(SimConfig {
            time_scale: 1.0,
            seed,
            faults: sextant::sim::admin::Faults {
                rate_503: 0.5,
                ..Default::default()
            },
            ..SimConfig::default()
        })
        .await;
        let mut statuses = Vec::new();
        for _ in 0..24 {
            let r = client()
                .get(format!("{}/vmc/api/orgs", sim.base_url))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        statuses
    }
    let first = sequence(42).await;
    assert!(first.contains(&503) && first.contains(&401), "{first:?}");
    assert_eq!(first, sequence(42).await);

    assert_eq!(
        put_admin(&sim, "faults", &json!({"rate_429": 2.0})).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put_admin(&sim, "faults", &json!({"no_such_fault": 1})).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn commit_then_drop_applies_the_change_but_loses_the_response() {
    let sim = start().await;
    let vmc = Vmc::new(&sim).await;
    put_faults(&sim, json!({"drop_next_mutations": 1})).await;
    let (status, _) = vmc.post("/sddcs", sddc_body("dropped", 2)).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let (_, list) = vmc.get("/sddcs").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "the create happened");
    let faults = get_json(format!("{}/_sim/faults", sim.base_url)).await;
    assert_eq!(faults["drop_next_mutations"], 0);
    let (status, _) = vmc.post("/sddcs", sddc_body("kept", 2)).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    put_faults(&sim, json!({"drop_rate": 1.0, "drop_mode": "reset"})).await;
    let result = client()
        .post(format!("{}/sddcs", vmc.base))
        .header("csp-auth-token", &vmc.token)
        .json(&sddc_body("reset", 2))
        .send()
        .await;
    let delivered = match result {
        Ok(response) => response.bytes().await.is_ok(),
        Err(_) => false,
    };
    assert!(!delivered, "the response must not arrive intact");
    put_faults(&sim, json!({})).await;
    let (_, list) = vmc.get("/sddcs").await;
    assert_eq!(list.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn state_dump_and_unknown_paths() {
    let sim = start().await;
    let state = get_json(format!("{}/_sim/state", sim.base_url)).await;
    assert_eq!(state["vsphere"]["vms"].as_object().unwrap().len(), 3);
    assert_eq!(state["vmc"]["orgs"].as_object().unwrap().len(), 1);
    let vmc = Vmc::new(&sim).await;
    let (status, body) = vmc.get("/no/such/thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_response(&body, 404);
}

// ---------------------------------------------------------------- persistence, seed, credentials

#[tokio::test]
async fn state_file_survives_a_restart_and_tasks_keep_their_progress() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    let config = || SimConfig {
        state_file: Some(path.clone()),
        ..config()
    };
    let sim = start_with(config()).await;
    let vmc = Vmc::new(&sim).await;
    let (sddc_id, task_id) = vmc.create(sddc_body("kept", 2)).await;
    let vs = Vsphere::login(&sim).await;
    let db = vs.vm_id("db-01").await;
    vs.post(&format!("/rest/vcenter/vm/{db}/power/start")).await;
    advance(&sim, 3600).await;
    vmc.get(&format!("/tasks/{task_id}")).await;
    sim.stop().await;
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(saved["vmc"]["sddcs"][&sddc_id].is_object());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");

    let sim = start_with(config()).await;
    let vmc2 = Vmc {
        base: vmc
            .base
            .replace(&vmc.base[..vmc.base.find("/vmc").unwrap()], &sim.base_url),
        org: vmc.org.clone(),
        token: vmc.token.clone(),
    };
    let (status, task) = vmc2.get(&format!("/tasks/{task_id}")).await;
    assert_eq!(status, StatusCode::OK, "the access token survived too");
    assert!(task["progress_percent"].as_i64().unwrap() >= 40, "{task}");
    let vs2 = Vsphere::with_session(&sim, &vs.session);
    let (_, state) = vs2.get(&format!("/rest/vcenter/vm/{db}/power")).await;
    assert_eq!(state["value"]["state"], "POWERED_ON");
}

#[tokio::test]
async fn seed_data_replaces_the_default_estate_per_api() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.yaml");
    std::fs::write(
        &path,
        "vmc:\n  sddcs:\n    - name: seeded\n      num_hosts: 4\n      region: eu-central-1\n\
         vsphere:\n  vms:\n    - name: app-01\n      power_state: POWERED_ON\n      cpu_count: 8\n      memory_size_MiB: 16384\n",
    )
    .unwrap();
    let sim = start_with(SimConfig {
        seed_data: Some(path),
        ..config()
    })
    .await;
    let vmc = Vmc::new(&sim).await;
    let (_, list) = vmc.get("/sddcs").await;
    assert_eq!(list[0]["name"], "seeded");
    assert_eq!(list[0]["sddc_state"], "READY");
    assert_eq!(list[0]["resource_config"]["region"], "EU_CENTRAL_1");
    let vs = Vsphere::login(&sim).await;
    let (_, vms) = vs.get("/rest/vcenter/vm").await;
    assert_eq!(vms["value"].as_array().unwrap().len(), 1);
    assert_eq!(vms["value"][0]["cpu_count"], 8);

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "vmc:\n  sddcs:\n    - name: x\n      num_hosts: 1\n").unwrap();
    let err = sim::start(SimConfig {
        seed_data: Some(bad),
        ..SimConfig::default()
    })
    .await
    .err()
    .expect("a one-host DEFAULT SDDC is invalid seed data");
    assert!(err.to_string().contains("seed data"));
}

#[tokio::test]
async fn credentials_file_restricts_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds");
    std::fs::write(&path, "# accepted\nallowed-token\nadmin\ns3cret\n").unwrap();
    let sim = start_with(SimConfig {
        credentials_file: Some(path),
        ..config()
    })
    .await;
    let ok = exchange(&sim, "allowed-token").await;
    assert_eq!(ok.status(), StatusCode::OK);
    let other = exchange(&sim, "other-token").await;
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
    let ok = rest_login(&sim, "admin", "s3cret").await;
    assert_eq!(ok.status(), StatusCode::OK);
    let bad = rest_login(&sim, "admin", "guess").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------- the binary

#[tokio::test]
async fn sim_serve_prints_its_url_serves_and_stops_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args([
            "sim",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--time-scale",
            "1000",
            "--token-ttl",
            "60",
            "--latency-ms",
            "1",
            "--options",
            r#"{"vmc_concurrent_update_status": 409}"#,
        ])
        .arg("--state")
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    })
    .await
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let token: Value = client()
        .post(format!("{url}{AUTHORIZE}"))
        .form(&[("api_token", "t")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], 60);
    let options = get_json(format!("{url}/_sim/options")).await;
    assert_eq!(options["vmc_concurrent_update_status"], 409);
    let faults = get_json(format!("{url}/_sim/faults")).await;
    assert_eq!(faults["latency_ms"], 1);
    assert!(state.exists());
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

//! The simulator's RaaS (Aria Automation Config) and Cloud Director endpoints over loopback,
//! spoken the way the documented clients speak them (`raas.md`, `vcd.md`).

use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sextant::sim::csp::IssuedAccessToken;
use sextant::sim::raas::{ALL_MINIONS_UUID, MAX_PAGE_LIMIT};
use sextant::sim::{self, SimConfig, SimHandle};

/// A simulator with its default estate, whose access tokens live `ttl` simulated seconds.
async fn start_with_ttl(ttl: Duration) -> SimHandle {
    sim::start(SimConfig {
        token_ttl: ttl,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn start() -> SimHandle {
    start_with_ttl(Duration::from_secs(1800)).await
}

/// Registers a CSP access token directly (the CSP exchange is another module's concern).
async fn csp_token(handle: &SimHandle, value: &str, valid_for_secs: i64) {
    let now = handle.sim.clock.now();
    handle.sim.state.lock().await.csp.access_tokens.insert(
        value.to_owned(),
        IssuedAccessToken {
            expires_at: now + chrono::Duration::seconds(valid_for_secs),
            org_id: "org-1".to_owned(),
        },
    );
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Sends an XSRF token the way RaaS clients do: in the header and in the `_xsrf` cookie.
trait WithXsrf {
    fn xsrf(self, token: &str) -> Self;
}

impl WithXsrf for reqwest::RequestBuilder {
    fn xsrf(self, token: &str) -> Self {
        self.header("x-xsrftoken", token)
            .header("cookie", format!("_xsrf={token}"))
    }
}

/// The value of cookie `name` among the response's `Set-Cookie` headers.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn xsrf(handle: &SimHandle) -> String {
    let response = client()
        .get(format!("{}/account/login", handle.base_url))
        .send()
        .await
        .unwrap();
    set_cookie(&response, "_xsrf").unwrap()
}

/// How a test authenticates its RPC calls.
#[derive(Clone)]
struct Raas {
    base: String,
    auth: String,
    xsrf: String,
}

impl Raas {
    /// A Basic-auth client with a fresh XSRF token.
    async fn basic(handle: &SimHandle) -> Self {
        let basic = base64::engine::general_purpose::STANDARD.encode("root:salt");
        Self {
            base: handle.base_url.clone(),
            auth: format!("Basic {basic}"),
            xsrf: xsrf(handle).await,
        }
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        client()
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .xsrf(&self.xsrf)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Checks that an RPC call is refused with the "jwt not authorized" 401.
    async fn assert_jwt_not_authorized(&self) {
        let response = self
            .post(
                "/rpc",
                json!({"resource": "test", "method": "echo", "arg": ["x"]}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("jwt not authorized")
        );
    }

    /// One RPC call; returns the reply envelope.
    async fn call(&self, resource: &str, method: &str, kwarg: Value) -> Value {
        let response = self
            .post(
                "/rpc",
                json!({"resource": resource, "method": method, "kwarg": kwarg, "riq": 1}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// One RPC call that must succeed; returns `ret`.
    async fn ret(&self, resource: &str, method: &str, kwarg: Value) -> Value {
        let reply = self.call(resource, method, kwarg).await;
        assert_eq!(reply["error"], Value::Null, "{reply}");
        reply["ret"].clone()
    }
}

fn error_code(reply: &Value) -> i64 {
    reply["error"]["code"].as_i64().unwrap()
}

fn error_message(reply: &Value) -> String {
    reply["error"]["message"].as_str().unwrap().to_owned()
}

// ---- RaaS: login and XSRF --------------------------------------------------------------

/// GETs `path`, checks that it hands out the XSRF token (header and the same `_xsrf`
/// cookie) and the instance id; returns the token and the JSON body.
async fn get_xsrf_handout(handle: &SimHandle, path: &str) -> (String, Value) {
    let response = client()
        .get(format!("{}{path}", handle.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let header = response.headers()["x-xsrftoken"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!header.is_empty());
    assert_eq!(set_cookie(&response, "_xsrf").unwrap(), header);
    let raw = response.headers()["set-cookie"].to_str().unwrap();
    assert_eq!(raw, format!("_xsrf={header}; Path=/"));
    assert!(response.headers().contains_key("raas-instance-id"));
    (header, response.json().await.unwrap())
}

#[tokio::test]
async fn get_login_sets_xsrf_cookie_and_header() {
    let handle = start().await;
    let (_, body) = get_xsrf_handout(&handle, "/account/login").await;
    assert_eq!(body["authenticated"], false);
}

#[tokio::test]
async fn get_version_hands_out_the_same_xsrf_token_and_it_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        state_file: Some(dir.path().join("state.json")),
        ..Default::default()
    };
    let handle = sim::start(config.clone()).await.unwrap();
    let (header, body) = get_xsrf_handout(&handle, "/version").await;
    assert!(body["version"].is_string());
    assert_eq!(xsrf(&handle).await, header);
    handle.stop().await;

    let handle = sim::start(config).await.unwrap();
    let raas = Raas {
        xsrf: header,
        ..Raas::basic(&handle).await
    };
    assert_eq!(
        raas.ret("test", "echo", json!({"message": "kept"})).await,
        "kept"
    );
}

#[tokio::test]
async fn cloud_login_with_only_the_bearer_token_returns_xsrf_and_session() {
    let handle = start().await;
    csp_token(&handle, "access-1", 600).await;
    for path in ["/account/login/", "/account/login"] {
        let response = client()
            .post(format!("{}{path}", handle.base_url))
            .header("authorization", "Bearer access-1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let token = response.headers()["x-xsrftoken"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(set_cookie(&response, "_xsrf").unwrap(), token);
        assert!(set_cookie(&response, "raas_session").is_some());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["authenticated"], true);
        assert_eq!(body["attributes"]["config_name"], "CSP");

        let raas = Raas {
            base: handle.base_url.clone(),
            auth: "Bearer access-1".into(),
            xsrf: token,
        };
        assert_eq!(
            raas.ret("test", "echo", json!({"message": "hi"})).await,
            "hi"
        );
    }
}

#[tokio::test]
async fn csp_auth_token_header_is_accepted_only_when_the_option_is_on() {
    let handle = start().await;
    csp_token(&handle, "access-3", 600).await;
    let token = xsrf(&handle).await;
    let echo = || {
        client()
            .post(format!("{}/rpc", handle.base_url))
            .header("csp-auth-token", "access-3")
            .xsrf(&token)
            .json(&json!({"resource": "test", "method": "echo", "arg": ["x"]}))
            .send()
    };
    assert_eq!(echo().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    handle
        .sim
        .state
        .lock()
        .await
        .raas
        .options
        .accept_csp_auth_token_header = true;
    assert_eq!(echo().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn cloud_login_get_first_flow_then_rpc_on_raas_rpc() {
    let handle = start().await;
    csp_token(&handle, "access-2", 600).await;
    let token = xsrf(&handle).await;
    let response = client()
        .post(format!("{}/account/login", handle.base_url))
        .header("authorization", "Bearer access-2")
        .xsrf(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let raas = Raas {
        base: handle.base_url.clone(),
        auth: "Bearer access-2".into(),
        xsrf: token,
    };
    let response = raas
        .post(
            "/raas/rpc",
            json!({"resource": "test", "method": "echo", "kwarg": {"message": "x"}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["ret"], "x");
}

#[tokio::test]
async fn cloud_login_refuses_unknown_and_expired_access_tokens() {
    let handle = start().await;
    csp_token(&handle, "expired", -5).await;
    for (token, needle) in [("nope", "not accepted"), ("expired", "jwt not authorized")] {
        let response = client()
            .post(format!("{}/account/login", handle.base_url))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["title"], "Invalid Credentials");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(needle)
        );
    }
    // An expired token is refused on /rpc too, with the "jwt not authorized" 401.
    let token = xsrf(&handle).await;
    let raas = Raas {
        base: handle.base_url.clone(),
        auth: "Bearer expired".into(),
        xsrf: token,
    };
    raas.assert_jwt_not_authorized().await;
}

#[tokio::test]
async fn password_login_needs_xsrf_and_returns_a_jwt() {
    let handle = start().await;
    let login = json!({"username": "root", "password": "salt", "config_name": "internal", "token_type": "jwt"});
    let response = client()
        .post(format!("{}/account/login", handle.base_url))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.headers()["x-xsrftoken-missing"]
            .to_str()
            .unwrap()
            .contains("missing xsrf")
    );

    let token = xsrf(&handle).await;
    let post = |body: Vec<u8>| {
        client()
            .post(format!("{}/account/login", handle.base_url))
            .header("content-type", "application/json")
            .xsrf(&token)
            .body(body)
            .send()
    };
    let response = post(serde_json::to_vec(&login).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = set_cookie(&response, "raas_session").unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["authenticated"], true);
    assert_eq!(body["attributes"]["username"], "root");
    assert_eq!(body["attributes"]["config_name"], "internal");
    let jwt = body["jwt"].as_str().unwrap().to_owned();

    let raas = Raas {
        base: handle.base_url.clone(),
        auth: format!("JWT {jwt}"),
        xsrf: token.clone(),
    };
    assert_eq!(raas.ret("test", "echo", json!({"message": 1})).await, 1);

    // The session cookie alone authenticates too.
    let response = client()
        .post(format!("{}/rpc", handle.base_url))
        .header("x-xsrftoken", &token)
        .header("cookie", format!("_xsrf={token}; raas_session={session}"))
        .json(&json!({"resource": "test", "method": "echo", "kwarg": {"message": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let bad = json!({"username": "root", "password": "invalid-password"});
    let response = post(serde_json::to_vec(&bad).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["title"], "Invalid Credentials");

    let response = post(b"username=root".to_vec()).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Without token_type=jwt there is no JWT, only the session.
    let response = post(br#"{"username":"root","password":"salt"}"#.to_vec())
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(body.get("jwt").is_none());
}

#[tokio::test]
async fn rpc_needs_both_the_xsrf_header_and_cookie() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    let echo = json!({"resource": "test", "method": "echo", "kwarg": {"message": "x"}});
    let cases = [
        (Some(raas.xsrf.clone()), None),
        (None, Some(raas.xsrf.clone())),
        (Some(raas.xsrf.clone()), Some("2|00|11|0".to_owned())),
        (None, None),
    ];
    for (header, cookie) in cases {
        let mut request = client()
            .post(format!("{}/rpc", handle.base_url))
            .header("authorization", &raas.auth)
            .json(&echo);
        if let Some(h) = &header {
            request = request.header("x-xsrftoken", h);
        }
        if let Some(c) = &cookie {
            request = request.header("cookie", format!("_xsrf={c}"));
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{header:?} {cookie:?}"
        );
        assert!(response.headers().contains_key("x-xsrftoken-missing"));
    }
    assert_eq!(raas.post("/rpc", echo).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn rotated_xsrf_token_is_refused_until_fetched_again() {
    let handle = start().await;
    let mut raas = Raas::basic(&handle).await;
    let echo = json!({"resource": "test", "method": "echo", "kwarg": {"message": "x"}});
    let response = client()
        .post(format!("{}/_sim/raas/rotate-xsrf", handle.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        raas.post("/rpc", echo.clone()).await.status(),
        StatusCode::FORBIDDEN
    );
    let fresh = xsrf(&handle).await;
    assert_ne!(fresh, raas.xsrf);
    raas.xsrf = fresh;
    assert_eq!(raas.post("/rpc", echo).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn rpc_refuses_missing_and_bad_credentials_with_401() {
    let handle = start().await;
    let token = xsrf(&handle).await;
    let echo = json!({"resource": "test", "method": "echo", "kwarg": {"message": "x"}});
    let invalid_basic = base64::engine::general_purpose::STANDARD.encode("root:invalid-pw");
    for auth in [
        None,
        Some("Bearer unknown-token".to_owned()),
        Some("JWT not-a-session".to_owned()),
        Some(format!("Basic {invalid_basic}")),
    ] {
        let mut request = client()
            .post(format!("{}/rpc", handle.base_url))
            .xsrf(&token)
            .json(&echo);
        if let Some(auth) = &auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body["errors"][0]["message"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn expired_jwt_gets_401_jwt_not_authorized() {
    // Tokens that live zero simulated seconds are expired by the next request.
    let handle = start_with_ttl(Duration::ZERO).await;
    let token = xsrf(&handle).await;
    let response = client()
        .post(format!("{}/account/login", handle.base_url))
        .xsrf(&token)
        .json(&json!({"username": "root", "password": "salt", "token_type": "jwt"}))
        .send()
        .await
        .unwrap();
    let jwt = response.json::<Value>().await.unwrap()["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let raas = Raas {
        base: handle.base_url.clone(),
        auth: format!("JWT {jwt}"),
        xsrf: token,
    };
    raas.assert_jwt_not_authorized().await;
}

#[tokio::test]
async fn html_login_page_option_answers_200_to_unauthenticated_calls() {
    let handle = start().await;
    handle
        .sim
        .state
        .lock()
        .await
        .raas
        .options
        .html_login_page_when_unauthenticated = true;
    let token = xsrf(&handle).await;
    let response = client()
        .post(format!("{}/rpc", handle.base_url))
        .xsrf(&token)
        .json(&json!({"resource": "test", "method": "echo", "arg": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("<html>"));
}

#[tokio::test]
async fn cloud_login_with_an_access_token_from_the_csp_exchange() {
    let handle = start().await;
    let response = client()
        .post(format!(
            "{}/csp/gateway/am/api/auth/api-tokens/authorize",
            handle.base_url
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("api_token=my-api-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let access = response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = client()
        .post(format!("{}/account/login/", handle.base_url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let raas = Raas {
        base: handle.base_url.clone(),
        auth: format!("Bearer {access}"),
        xsrf: response.headers()["x-xsrftoken"]
            .to_str()
            .unwrap()
            .to_owned(),
    };
    let ret = raas
        .ret(
            "tgt",
            "get_target_group",
            json!({"tgt_uuid": ALL_MINIONS_UUID}),
        )
        .await;
    assert_eq!(ret["count"], 1);
}

#[tokio::test]
async fn xsrf_403_carries_the_missing_xsrf_reason_phrase() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let handle = start().await;
    let mut stream = tokio::net::TcpStream::connect(handle.addr).await.unwrap();
    let body = r#"{"resource":"test","method":"echo","arg":["x"]}"#;
    let request = format!(
        "POST /rpc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    let status_line = reply.lines().next().unwrap();
    assert_eq!(status_line, "HTTP/1.1 403 Missing XSRF token");
}

#[tokio::test]
async fn with_xsrf_disabled_no_cookie_is_handed_out_and_none_is_needed() {
    let handle = start().await;
    let response = client()
        .put(format!("{}/_sim/raas/options", handle.base_url))
        .json(&json!({"xsrf_enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client()
        .get(format!("{}/account/login", handle.base_url))
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&response, "_xsrf").is_none());
    assert!(!response.headers().contains_key("x-xsrftoken"));
    let response = client()
        .post(format!("{}/rpc", handle.base_url))
        .header("authorization", basic("root", "salt"))
        .json(&json!({"resource": "test", "method": "echo", "arg": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn raas_and_vcd_state_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        state_file: Some(dir.path().join("state.json")),
        ..Default::default()
    };
    let handle = sim::start(config.clone()).await.unwrap();
    let raas = Raas::basic(&handle).await;
    let job = raas
        .ret(
            "job",
            "save_job",
            json!({"name": "kept", "fun": "test.ping"}),
        )
        .await;
    let jwt = vcd_login(&handle, "administrator", "System").await;
    let (client_id, secret) = create_token(&handle, &jwt, "System", "kept").await;
    let response = cloudapi(
        &handle,
        reqwest::Method::DELETE,
        &format!("tokens/urn:vcloud:token:{client_id}"),
        &jwt,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    handle.stop().await;

    let handle = sim::start(config).await.unwrap();
    let raas = Raas {
        base: handle.base_url.clone(),
        ..raas
    };
    let ret = raas.ret("job", "get_jobs", json!({"job_uuid": job})).await;
    assert_eq!(ret["results"][0]["name"], "kept");
    let response = cloudapi(&handle, reqwest::Method::GET, "sessions/current", &jwt).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = form(
        &handle,
        "/oauth/provider/token",
        &format!("grant_type=refresh_token&refresh_token={secret}"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

// ---- RaaS: envelope --------------------------------------------------------------------

#[tokio::test]
async fn envelope_echoes_riq_and_accepts_plural_arg_names() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    let reply: Value = raas
        .post(
            "/rpc",
            json!({"resource": "test", "method": "echo", "args": [], "kwargs": {"message": "m"}, "riq": 42}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply,
        json!({"riq": 42, "ret": "m", "error": null, "warnings": []})
    );
    let reply = raas.call("test", "warnings", json!({})).await;
    assert_eq!(reply["warnings"].as_array().unwrap().len(), 1);
    let reply = raas.call("test", "error", json!({})).await;
    assert_eq!(error_code(&reply), 5000);
}

#[tokio::test]
async fn unknown_method_and_unknown_kwarg_are_rpc_errors_in_http_200() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    let reply = raas.call("job", "get_job", json!({})).await;
    assert_eq!(error_code(&reply), 4005);
    assert_eq!(reply["ret"], Value::Null);

    let reply = raas
        .call("job", "get_jobs", json!({"names": ["x"], "limit": 5}))
        .await;
    assert_eq!(error_code(&reply), 4001);
    assert_eq!(
        error_message(&reply),
        "Additional properties are not allowed ('names' was unexpected)"
    );

    let reply = raas
        .call("tgt", "get_target_group", json!({"limit": "ten"}))
        .await;
    assert_eq!(error_code(&reply), 4001);
    assert!(error_message(&reply).contains("is not of type 'integer'"));

    let response = raas.post("/rpc", json!("just a string")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = client()
        .post(format!("{}/rpc", handle.base_url))
        .header("authorization", &raas.auth)
        .xsrf(&raas.xsrf)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0]["message"].is_string());
}

#[tokio::test]
async fn batch_replies_in_request_order_with_a_retcode() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    let batch = json!([
        {"resource": "test", "method": "echo", "kwarg": {"message": "a"}, "riq": 1},
        {"resource": "nope", "method": "nothing", "riq": 2},
        {"resource": "tgt", "method": "get_target_group", "kwarg": {"tgt_uuid": ALL_MINIONS_UUID}, "riq": 3},
    ]);
    let reply: Value = raas.post("/rpc", batch).await.json().await.unwrap();
    assert_eq!(reply["batched_retcode"], 1);
    let ret = reply["ret"].as_array().unwrap();
    assert_eq!(ret.len(), 3);
    assert_eq!(ret[0]["riq"], 1);
    assert_eq!(ret[0]["ret"], "a");
    assert_eq!(ret[1]["riq"], 2);
    assert!(ret[1]["error"]["code"].is_i64());
    assert_eq!(ret[2]["ret"]["results"][0]["name"], "All Minions");

    let ok = json!([{"resource": "test", "method": "echo", "kwarg": {"message": "a"}}]);
    let reply: Value = raas.post("/rpc", ok).await.json().await.unwrap();
    assert_eq!(reply["batched_retcode"], 0);
}

// ---- RaaS: target groups, jobs, schedules ----------------------------------------------

#[tokio::test]
async fn all_minions_is_seeded_with_its_fixed_uuid() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    let ret = raas
        .ret("tgt", "get_target_group", json!({"name": "All Minions"}))
        .await;
    assert_eq!(ret["count"], 1);
    let group = &ret["results"][0];
    assert_eq!(group["uuid"], ALL_MINIONS_UUID);
    assert_eq!(
        group["tgt"],
        json!({"*": {"tgt_type": "compound", "tgt": "*"}})
    );
    assert!(group["metadata"]["auth"]["owner"]["username"].is_string());
}

#[tokio::test]
async fn target_groups_save_update_filter_and_validate() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    let tgt = json!({"*": {"tgt_type": "glob", "tgt": "web*"}});
    let web = raas
        .ret(
            "tgt",
            "save_target_group",
            json!({"name": "web", "desc": "Web servers", "tgt": tgt}),
        )
        .await;
    raas.ret(
        "tgt",
        "save_target_group",
        json!({"name": "web-canary", "tgt": {"*": {"tgt_type": "list", "tgt": "web1"}}}),
    )
    .await;
    // Name filters are substring matches.
    let ret = raas
        .ret("tgt", "get_target_group", json!({"name": "WEB"}))
        .await;
    assert_eq!(ret["count"], 2);

    let updated = raas
        .ret(
            "tgt",
            "save_target_group",
            json!({"tgt_uuid": web, "name": "web", "desc": "changed", "tgt": tgt}),
        )
        .await;
    assert_eq!(updated, web);
    let ret = raas
        .ret("tgt", "get_target_group", json!({"tgt_uuid": web}))
        .await;
    assert_eq!(ret["results"][0]["desc"], "changed");

    let reply = raas
        .call(
            "tgt",
            "save_target_group",
            json!({"tgt_uuid": "00000000-0000-4000-8000-000000000000", "tgt": tgt}),
        )
        .await;
    assert_eq!(error_code(&reply), 4004);
    let reply = raas
        .call("tgt", "save_target_group", json!({"name": "x"}))
        .await;
    assert_eq!(error_message(&reply), "'tgt' is a required property");
    let reply = raas
        .call(
            "tgt",
            "save_target_group",
            json!({"tgt": {"*": {"tgt_type": "regex", "tgt": "x"}}}),
        )
        .await;
    assert_eq!(error_code(&reply), 4001);

    let ret = raas
        .ret(
            "tgt",
            "get_target_group",
            json!({"tgt_uuid": "00000000-0000-4000-8000-000000000000"}),
        )
        .await;
    assert_eq!(ret, json!({"count": 0, "limit": 50, "results": []}));
}

#[tokio::test]
async fn pagination_pages_through_results_and_caps_the_limit() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    for i in 0..12 {
        raas.ret(
            "tgt",
            "save_target_group",
            json!({"name": format!("page-{i:02}"), "tgt": {"*": {"tgt_type": "glob", "tgt": "*"}}}),
        )
        .await;
    }
    let ret = raas
        .ret(
            "tgt",
            "get_target_group",
            json!({"name": "page-", "limit": 5, "page": 2}),
        )
        .await;
    assert_eq!(ret["count"], 12);
    assert_eq!(ret["limit"], 5);
    let names: Vec<&str> = ret["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["page-10", "page-11"]);

    let ret = raas
        .ret("tgt", "get_target_group", json!({"limit": 1_000_000}))
        .await;
    assert_eq!(ret["limit"], MAX_PAGE_LIMIT);

    let response = client()
        .put(format!("{}/_sim/raas/options", handle.base_url))
        .json(&json!({"max_page_limit": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let ret = raas
        .ret(
            "tgt",
            "get_target_group",
            json!({"name": "page-", "limit": 50}),
        )
        .await;
    assert_eq!(ret["limit"], 4);
    assert_eq!(ret["results"].as_array().unwrap().len(), 4);
    assert_eq!(ret["count"], 12);

    let reply = raas
        .call("tgt", "get_target_group", json!({"limit": -2}))
        .await;
    assert_eq!(error_code(&reply), 4001);
}

#[tokio::test]
async fn save_job_with_a_client_chosen_uuid_is_idempotent() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    let uuid = "5b0f3c1e-8d2a-4f6b-9c7e-1a2b3c4d5e6f";
    let job = json!({
        "job_uuid": uuid, "name": "deploy-nginx", "desc": "", "cmd": "local", "fun": "state.apply",
        "arg": {"arg": [], "kwarg": {"mods": "nginx"}}, "tgt_uuid": ALL_MINIONS_UUID,
    });
    assert_eq!(raas.ret("job", "save_job", job.clone()).await, uuid);
    assert_eq!(raas.ret("job", "save_job", job).await, uuid);
    let ret = raas
        .ret("job", "get_jobs", json!({"name": "deploy-nginx"}))
        .await;
    assert_eq!(ret["count"], 1);
    let stored = &ret["results"][0];
    assert_eq!(stored["uuid"], uuid);
    assert_eq!(stored["tgt_name"], "All Minions");
    assert_eq!(stored["arg"]["kwarg"]["mods"], "nginx");

    let reply = raas
        .call("job", "save_job", json!({"name": "x", "cmd": "ssh"}))
        .await;
    assert_eq!(
        error_message(&reply),
        "'ssh' is not one of ['cloud', 'local', 'runner', 'wheel']"
    );
    let reply = raas
        .call(
            "job",
            "save_job",
            json!({"name": "x", "tgt_uuid": "00000000-0000-4000-8000-000000000000"}),
        )
        .await;
    assert_eq!(error_code(&reply), 4004);
    let ret = raas
        .ret(
            "job",
            "get_jobs",
            json!({"job_uuid": "00000000-0000-4000-8000-000000000000"}),
        )
        .await;
    assert_eq!(ret["count"], 0);
    let reply = raas
        .call(
            "job",
            "delete_job",
            json!({"job_uuid": "00000000-0000-4000-8000-000000000000"}),
        )
        .await;
    assert_eq!(error_code(&reply), 4004);
}

/// A target group, a job on it and a schedule of the job.
async fn chain(raas: &Raas) -> (String, String, String) {
    let tgt = raas
        .ret(
            "tgt",
            "save_target_group",
            json!({"name": "db", "tgt": {"*": {"tgt_type": "grain", "tgt": "role:db"}}}),
        )
        .await;
    let job = raas
        .ret(
            "job",
            "save_job",
            json!({"name": "db-backup", "cmd": "local", "fun": "state.apply", "tgt_uuid": tgt}),
        )
        .await;
    let schedule = raas
        .ret(
            "schedule",
            "save",
            json!({"name": "nightly-db", "schedule": {"cron": "0 3 * * *"}, "job_uuid": job, "tgt_uuid": tgt, "cmd": "local"}),
        )
        .await;
    (
        tgt.as_str().unwrap().to_owned(),
        job.as_str().unwrap().to_owned(),
        schedule.as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn deleting_a_used_job_or_target_needs_force() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    let (tgt, job, schedule) = chain(&raas).await;

    let reply = raas
        .call("job", "delete_job", json!({"job_uuid": job}))
        .await;
    assert_eq!(error_code(&reply), 4009);
    assert!(error_message(&reply).starts_with("FailedResourceDependency"));
    assert!(error_message(&reply).contains("nightly-db"));
    let reply = raas
        .call("tgt", "delete_target_group", json!({"tgt_uuid": [tgt]}))
        .await;
    assert_eq!(error_code(&reply), 4009);

    raas.ret("job", "delete_job", json!({"job_uuid": job, "force": true}))
        .await;
    let ret = raas.ret("schedule", "get", json!({"uuid": schedule})).await;
    assert_eq!(ret["count"], 0);

    // A second job on the target still blocks its deletion (option on by default).
    let (tgt2, job2, _) = chain(&raas).await;
    raas.ret(
        "job",
        "delete_job",
        json!({"job_uuid": job2, "force": true}),
    )
    .await;
    let other = raas
        .ret(
            "job",
            "save_job",
            json!({"name": "uses-db", "tgt_uuid": tgt2}),
        )
        .await;
    let reply = raas
        .call("tgt", "delete_target_group", json!({"tgt_uuid": tgt2}))
        .await;
    assert_eq!(error_code(&reply), 4009);
    assert!(error_message(&reply).contains("uses-db"));
    raas.ret("job", "delete_job", json!({"job_uuid": other}))
        .await;
    raas.ret("tgt", "delete_target_group", json!({"tgt_uuid": tgt2}))
        .await;
    raas.ret(
        "tgt",
        "delete_target_group",
        json!({"tgt_uuid": tgt, "force": true}),
    )
    .await;
    let ret = raas
        .ret("tgt", "get_target_group", json!({"name": "db"}))
        .await;
    assert_eq!(ret["count"], 0);
}

#[tokio::test]
async fn schedules_save_get_update_remove_and_validate() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    let (_, job, schedule) = chain(&raas).await;
    let ret = raas
        .ret("schedule", "get", json!({"names": ["nightly-db"]}))
        .await;
    assert_eq!(ret["count"], 1);
    let item = &ret["results"][0];
    assert_eq!(item["uuid"], schedule);
    assert_eq!(item["schedule"], json!({"cron": "0 3 * * *"}));
    assert_eq!(item["job_name"], "db-backup");
    assert_eq!(item["enabled"], true);

    // A partial update: the `schedule` keys given merge into the stored ones, and the keys
    // named in `delete_fields` go.
    raas.ret(
        "schedule",
        "update",
        json!({"uuid": schedule, "enabled": false, "schedule": {"minutes": 30}}),
    )
    .await;
    let ret = raas.ret("schedule", "get", json!({"uuid": schedule})).await;
    assert_eq!(ret["results"][0]["enabled"], false);
    assert_eq!(
        ret["results"][0]["schedule"],
        json!({"cron": "0 3 * * *", "minutes": 30})
    );
    raas.ret(
        "schedule",
        "update",
        json!({"uuid": schedule, "delete_fields": ["cron"]}),
    )
    .await;
    let ret = raas.ret("schedule", "get", json!({"uuid": schedule})).await;
    assert_eq!(ret["results"][0]["schedule"], json!({"minutes": 30}));
    assert_eq!(ret["results"][0]["enabled"], false);

    let bad = [
        (json!({"seconds": 59}), "59 is less than the minimum of 60"),
        (
            json!({"every": 5}),
            "Additional properties are not allowed ('every' was unexpected)",
        ),
        (
            json!({"splay": {"start": 1}}),
            "'end' is a required property",
        ),
    ];
    for (body, message) in bad {
        let reply = raas
            .call(
                "schedule",
                "save",
                json!({"name": "bad", "schedule": body, "job_uuid": job}),
            )
            .await;
        assert_eq!(error_code(&reply), 4001);
        assert_eq!(error_message(&reply), message);
    }
    let reply = raas
        .call(
            "schedule",
            "save",
            json!({"schedule": {"minutes": 5}, "job_uuid": job}),
        )
        .await;
    assert_eq!(error_message(&reply), "'name' is a required property");

    assert_eq!(
        raas.ret("schedule", "remove", json!({"uuid": schedule}))
            .await,
        true
    );
    assert_eq!(
        raas.ret("schedule", "remove", json!({"uuid": schedule}))
            .await,
        false
    );
    let reply = raas
        .call(
            "schedule",
            "update",
            json!({"uuid": schedule, "enabled": true}),
        )
        .await;
    assert_eq!(error_code(&reply), 4004);
}

#[tokio::test]
async fn route_cmd_returns_a_jid_and_api_methods_describe_the_server() {
    let handle = start().await;
    let raas = Raas::basic(&handle).await;
    let jid = raas
        .ret(
            "cmd",
            "route_cmd",
            json!({"cmd": "local", "fun": "test.ping", "tgt_uuid": ALL_MINIONS_UUID}),
        )
        .await;
    assert_eq!(jid.as_str().unwrap().len(), 20);
    let status = raas
        .ret("cmd", "get_cmd_status", json!({"jids": [jid]}))
        .await;
    assert_eq!(status[0]["jid"], jid);
    let reply = raas
        .call(
            "cmd",
            "route_cmd",
            json!({"cmd": "ssh", "fun": "test.ping"}),
        )
        .await;
    assert_eq!(error_code(&reply), 4001);

    let versions = raas.ret("api", "get_versions", json!({})).await;
    assert!(versions["raas"].is_string());
    let discovered = raas
        .ret(
            "api",
            "discover",
            json!({"include": ["errors", "constants"]}),
        )
        .await;
    assert_eq!(
        discovered["errors"]["errorcode"]["5000"],
        "RPCInternalServerError"
    );
    assert!(discovered["constants"]["rpc-api-version"].is_i64());
    assert!(discovered.get("api").is_none());
    let discovered = raas.ret("api", "discover", json!({})).await;
    assert!(discovered["api"]["job"]["save_job"]["formatted"].is_string());
}

// ---- Cloud Director ----------------------------------------------------------------------

const ACCEPT: &str = "application/json;version=36.1";

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Logs in with user/password; returns the session JWT.
async fn vcd_login(handle: &SimHandle, user: &str, org: &str) -> String {
    let path = if org.eq_ignore_ascii_case("system") {
        "/cloudapi/1.0.0/sessions/provider"
    } else {
        "/cloudapi/1.0.0/sessions"
    };
    let response = client()
        .post(format!("{}{path}", handle.base_url))
        .header("accept", ACCEPT)
        .header("authorization", basic(&format!("{user}@{org}"), "secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-vmware-vcloud-token-type"], "Bearer");
    response.headers()["x-vmware-vcloud-access-token"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn oauth_path(org: &str, what: &str) -> String {
    if org.eq_ignore_ascii_case("system") {
        format!("/oauth/provider/{what}")
    } else {
        format!("/oauth/tenant/{org}/{what}")
    }
}

async fn form(handle: &SimHandle, path: &str, body: &str) -> reqwest::Response {
    client()
        .post(format!("{}{path}", handle.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// Registers an OAuth client (a new API token) at `org` with the session `jwt`.
async fn register(handle: &SimHandle, jwt: &str, org: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!(
            "{}{}",
            handle.base_url,
            oauth_path(org, "register")
        ))
        .bearer_auth(jwt)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Registers a token and fetches its secret; returns `(client_id, secret)`.
async fn create_token(handle: &SimHandle, jwt: &str, org: &str, name: &str) -> (String, String) {
    let response = register(handle, jwt, org, json!({"client_name": name})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let registered: Value = response.json().await.unwrap();
    assert_eq!(registered["client_name"], name);
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let response = form(
        handle,
        &oauth_path(org, "token"),
        &format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}&client_id={client_id}"
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let grant: Value = response.json().await.unwrap();
    assert_eq!(grant["token_type"], "Bearer");
    let secret = grant["refresh_token"].as_str().unwrap().to_owned();
    (client_id, secret)
}

async fn cloudapi(
    handle: &SimHandle,
    method: reqwest::Method,
    path: &str,
    jwt: &str,
) -> reqwest::Response {
    client()
        .request(method, format!("{}/cloudapi/1.0.0/{path}", handle.base_url))
        .header("accept", ACCEPT)
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn vcd_session_login_returns_the_jwt_header_and_checks_accept_and_org() {
    let handle = start().await;
    let jwt = vcd_login(&handle, "administrator", "System").await;
    assert!(jwt.len() > 32);
    let current: Value = cloudapi(&handle, reqwest::Method::GET, "sessions/current", &jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["user"]["name"], "administrator");
    assert_eq!(current["org"]["name"], "System");
    assert_eq!(current["roles"], json!(["System Administrator"]));
    let tenant = vcd_login(&handle, "orgadmin", "acme").await;
    assert_ne!(tenant, jwt);
    let current: Value = cloudapi(&handle, reqwest::Method::GET, "sessions/current", &tenant)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["roles"], json!(["Organization Administrator"]));

    let login =
        |path: &'static str, accept: Option<&'static str>, user: &'static str, pw: &'static str| {
            let mut request = client()
                .post(format!("{}{path}", handle.base_url))
                .header("authorization", basic(user, pw));
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            request.send()
        };
    let provider = "/cloudapi/1.0.0/sessions/provider";
    for (accept, status) in [
        (None, StatusCode::NOT_ACCEPTABLE),
        (
            Some("application/json;version=12.0"),
            StatusCode::NOT_ACCEPTABLE,
        ),
        (Some("application/*;version=36.1"), StatusCode::OK),
    ] {
        let response = login(provider, accept, "administrator@System", "pw")
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{accept:?}");
    }
    for (path, user, pw) in [
        (provider, "administrator@System", "invalid-pw"),
        (provider, "orgadmin@acme", "pw"),
        ("/cloudapi/1.0.0/sessions", "administrator@System", "pw"),
        ("/cloudapi/1.0.0/sessions", "someone@no-such-org", "pw"),
        ("/cloudapi/1.0.0/sessions", "no-org-part", "pw"),
    ] {
        let response = login(path, Some(ACCEPT), user, pw).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path} {user}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["minorErrorCode"], "UNAUTHORIZED");
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn vcd_token_secret_is_handed_out_once_and_refresh_grant_works() {
    let handle = start().await;
    let jwt = vcd_login(&handle, "administrator", "System").await;
    let (client_id, secret) = create_token(&handle, &jwt, "System", "ci").await;

    // The one-time grant fails the second time.
    let response = form(
        &handle,
        "/oauth/provider/token",
        &format!(
            "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion={jwt}&client_id={client_id}"
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["minorErrorCode"], "invalid_grant");

    // The token is listed with its URN and type.
    let got: Value = cloudapi(
        &handle,
        reqwest::Method::GET,
        &format!("tokens/urn:vcloud:token:{client_id}"),
        &jwt,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(got["name"], "ci");
    assert_eq!(got["type"], "REFRESH");
    assert_eq!(got["owner"]["name"], "administrator");
    assert_eq!(got["token"], Value::Null);

    // Refresh grant: "System" matches case-insensitively through /oauth/tenant/system too.
    for path in ["/oauth/provider/token", "/oauth/tenant/system/token"] {
        let response = form(
            &handle,
            path,
            &format!("grant_type=refresh_token&refresh_token={secret}"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let grant: Value = response.json().await.unwrap();
        assert_eq!(grant["token_type"], "Bearer");
        assert!(grant["expires_in"].as_i64().unwrap() > 0);
        assert_eq!(grant["refresh_token"], Value::Null);
        assert!(grant["access_token"].as_str().unwrap().len() > 32);
    }
    // A token works only at its owner's org.
    let response = form(
        &handle,
        "/oauth/tenant/acme/token",
        &format!("grant_type=refresh_token&refresh_token={secret}"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["minorErrorCode"], "invalid_grant");
    assert!(body["stackTrace"].is_string());

    // Duplicate names per user are refused.
    let response = register(&handle, &jwt, "System", json!({"client_name": "ci"})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = register(
        &handle,
        &jwt,
        "System",
        json!({"name": "missing client_name"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn vcd_api_token_sessions_are_restricted() {
    let handle = start().await;
    let jwt = vcd_login(&handle, "orgadmin", "acme").await;
    let (client_id, secret) = create_token(&handle, &jwt, "acme", "automation").await;
    let admin = vcd_login(&handle, "administrator", "System").await;
    create_token(&handle, &admin, "System", "admin-token").await;

    let grant: Value = form(
        &handle,
        "/oauth/tenant/acme/token",
        &format!("grant_type=refresh_token&refresh_token={secret}"),
    )
    .await
    .json()
    .await
    .unwrap();
    let access = grant["access_token"].as_str().unwrap().to_owned();

    let response = register(&handle, &access, "acme", json!({"client_name": "more"})).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = cloudapi(
        &handle,
        reqwest::Method::DELETE,
        &format!("tokens/urn:vcloud:token:{client_id}"),
        &access,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Only its own tokens are visible; the admin sees both.
    let list: Value = cloudapi(&handle, reqwest::Method::GET, "tokens", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["resultTotal"], 1);
    let list: Value = cloudapi(&handle, reqwest::Method::GET, "tokens", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["resultTotal"], 2);
    // An org admin cannot create tokens in another org.
    let response = register(&handle, &jwt, "System", json!({"client_name": "elsewhere"})).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn vcd_revoked_token_is_refused_by_the_refresh_grant() {
    let handle = start().await;
    let jwt = vcd_login(&handle, "administrator", "System").await;
    let (client_id, secret) = create_token(&handle, &jwt, "System", "short-lived").await;
    let id = format!("tokens/urn:vcloud:token:{client_id}");
    let response = cloudapi(&handle, reqwest::Method::DELETE, &id, &jwt).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let response = cloudapi(&handle, reqwest::Method::GET, &id, &jwt).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["minorErrorCode"], "ACCESS_TO_RESOURCE_IS_FORBIDDEN");
    let response = cloudapi(&handle, reqwest::Method::DELETE, &id, &jwt).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let response = form(
        &handle,
        "/oauth/provider/token",
        &format!("grant_type=refresh_token&refresh_token={secret}"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["minorErrorCode"], "invalid_grant");
    assert_eq!(body["message"], "Invalid refresh token");

    // The 202 + Location variant, behind an option.
    handle.sim.state.lock().await.vcd.options.revoke_status = 202;
    let (client_id, _) = create_token(&handle, &jwt, "System", "async").await;
    let response = cloudapi(
        &handle,
        reqwest::Method::DELETE,
        &format!("tokens/urn:vcloud:token:{client_id}"),
        &jwt,
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let task: Value = client()
        .get(format!("{}{location}", handle.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(task["status"], "success");
}

#[tokio::test]
async fn vcd_unknown_tokens_follow_the_credential_rule() {
    let handle = start().await;
    let response = form(
        &handle,
        "/oauth/tenant/acme/token",
        "grant_type=refresh_token&refresh_token=quickstart-dummy",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    for body in [
        "grant_type=refresh_token&refresh_token=invalid-token",
        "grant_type=refresh_token&refresh_token=",
    ] {
        let response = form(&handle, "/oauth/tenant/acme/token", body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let response = form(
        &handle,
        "/oauth/tenant/no-such-org/token",
        "grant_type=refresh_token&refresh_token=x",
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["minorErrorCode"], "invalid_grant");
    let response = form(&handle, "/oauth/provider/token", "grant_type=password").await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["minorErrorCode"], "unsupported_grant_type");
}

#[tokio::test]
async fn vcd_token_list_pages_caps_page_size_and_filters() {
    let handle = start().await;
    let jwt = vcd_login(&handle, "administrator", "System").await;
    for i in 0..5 {
        create_token(&handle, &jwt, "System", &format!("tok-{i}")).await;
    }
    let list: Value = cloudapi(
        &handle,
        reqwest::Method::GET,
        "tokens?page=2&pageSize=2",
        &jwt,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["resultTotal"], 5);
    assert_eq!(list["pageCount"], 3);
    assert_eq!(list["page"], 2);
    let names: Vec<&str> = list["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tok-2", "tok-3"]);

    let list: Value = cloudapi(&handle, reqwest::Method::GET, "tokens?pageSize=500", &jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["pageSize"], 128);

    let filter = "(name==tok-3;owner.name==administrator;(type==PROXY,type==REFRESH))";
    let response = client()
        .get(format!("{}/cloudapi/1.0.0/tokens", handle.base_url))
        .query(&[("filter", filter)])
        .header("accept", ACCEPT)
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["resultTotal"], 1);
    assert_eq!(list["values"][0]["name"], "tok-3");

    let response = cloudapi(
        &handle,
        reqwest::Method::GET,
        "tokens?filter=secret==x",
        &jwt,
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = cloudapi(&handle, reqwest::Method::GET, "tokens?page=0", &jwt).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = client()
        .get(format!("{}/cloudapi/1.0.0/tokens", handle.base_url))
        .header("accept", "application/json;version=36.0")
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    let response = client()
        .get(format!("{}/cloudapi/1.0.0/tokens", handle.base_url))
        .header("accept", ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn vcd_checks_the_accept_version_before_the_access_token() {
    let handle = start().await;
    for (method, path, accept) in [
        (reqwest::Method::GET, "/cloudapi/1.0.0/tokens", None),
        (
            reqwest::Method::GET,
            "/cloudapi/1.0.0/tokens/urn:vcloud:token:x",
            Some("application/json;version=36.0"),
        ),
        (
            reqwest::Method::DELETE,
            "/cloudapi/1.0.0/tokens/urn:vcloud:token:x",
            Some("application/json;version=36.0"),
        ),
        (
            reqwest::Method::GET,
            "/cloudapi/1.0.0/sessions/current",
            Some("application/json;version=33.0"),
        ),
        (
            reqwest::Method::DELETE,
            "/cloudapi/1.0.0/sessions/current",
            None,
        ),
    ] {
        let mut request = client()
            .request(method.clone(), format!("{}{path}", handle.base_url))
            .bearer_auth("not-a-token");
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::NOT_ACCEPTABLE,
            "{method} {path}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["minorErrorCode"], "NOT_ACCEPTABLE", "{method} {path}");
    }
    let response = client()
        .get(format!("{}/api/org", handle.base_url))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    let text = response.text().await.unwrap();
    assert!(text.contains("minorErrorCode=\"NOT_ACCEPTABLE\""), "{text}");
}

#[tokio::test]
async fn vcd_expired_access_tokens_get_401() {
    let handle = start_with_ttl(Duration::ZERO).await;
    let jwt = vcd_login(&handle, "administrator", "System").await;
    let response = cloudapi(&handle, reqwest::Method::GET, "sessions/current", &jwt).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["minorErrorCode"], "UNAUTHORIZED");
    // An expired session cannot register a client either.
    let response = register(&handle, &jwt, "System", json!({"client_name": "late"})).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn vcd_logout_ends_the_session() {
    let handle = start().await;
    let jwt = vcd_login(&handle, "administrator", "System").await;
    let response = cloudapi(&handle, reqwest::Method::DELETE, "sessions/current", &jwt).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = cloudapi(&handle, reqwest::Method::GET, "sessions/current", &jwt).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn vcd_legacy_login_and_org_list_speak_xml() {
    let handle = start().await;
    let response = client()
        .post(format!("{}/api/sessions", handle.base_url))
        .header("accept", "application/*+xml;version=36.1")
        .header("authorization", basic("orgadmin@acme", "pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let jwt = response.headers()["x-vmware-vcloud-access-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let session = response.text().await.unwrap();
    assert!(session.contains("<Session "));
    assert!(
        session.contains(" roles=\"Organization Administrator\" "),
        "{session}"
    );
    let list = |token: String| {
        client()
            .get(format!("{}/api/org", handle.base_url))
            .header("accept", "application/*+xml;version=36.1")
            .bearer_auth(token)
            .send()
    };
    let response = list(jwt).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("name=\"acme\""), "{text}");
    assert!(!text.contains("name=\"System\""), "{text}");
    let response = list("not-a-token".to_owned()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("<Error "));
}

#[tokio::test]
async fn yaml_seed_data_lists_raas_objects_without_uuids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.yaml");
    std::fs::write(
        &path,
        "raas:\n  target_groups:\n    - name: web\n      desc: Web servers\n      tgt:\n        \"*\": {tgt_type: glob, tgt: \"web*\"}\n",
    )
    .unwrap();
    let handle = sim::start(SimConfig {
        seed_data: Some(path),
        ..Default::default()
    })
    .await
    .unwrap();
    let raas = Raas::basic(&handle).await;
    let ret = raas.ret("tgt", "get_target_group", json!({})).await;
    assert_eq!(ret["count"], 1);
    assert_eq!(ret["results"][0]["name"], "web");
    let uuid = ret["results"][0]["uuid"].as_str().unwrap().to_owned();
    let again = raas
        .ret("tgt", "get_target_group", json!({"tgt_uuid": uuid}))
        .await;
    assert_eq!(again["count"], 1);
}

#[tokio::test]
async fn sim_serve_can_refuse_get_account_login_and_still_take_the_login_post() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args([
            "sim",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--raas-login-get",
            "refuse",
        ])
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
    for path in ["/account/login", "/raas/account/login"] {
        let refused = client().get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(set_cookie(&refused, "_xsrf").is_none(), "{path}");
        let body: Value = refused.json().await.unwrap();
        assert!(body["errors"][0]["message"].is_string(), "{body}");
    }
    let options: Value = client()
        .get(format!("{url}/_sim/options"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(options["raas_login_get"], "refuse");
    // The cloud login POST (seed `000`'s recipe) still hands out the XSRF token.
    let token: Value = client()
        .post(format!(
            "{url}/csp/gateway/am/api/auth/api-tokens/authorize"
        ))
        .form(&[("api_token", "t")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let login = client()
        .post(format!("{url}/account/login/"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert!(login.headers().contains_key("x-xsrftoken"));
    // Switched back through the admin API.
    let put = client()
        .put(format!("{url}/_sim/options"))
        .json(&json!({"raas_login_get": "serve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let served = client()
        .get(format!("{url}/account/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
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

#[tokio::test]
async fn job_and_target_access_is_listed_and_a_role_without_read_does_not_see_the_object() {
    let handle = start().await;
    let root = Raas::basic(&handle).await;
    let as_user = |user: &str| {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:salt"));
        Raas {
            auth: format!("Basic {basic}"),
            ..root.clone()
        }
    };
    let job = root
        .ret(
            "job",
            "save_job",
            json!({"name": "restricted", "fun": "test.ping"}),
        )
        .await;
    let group = root
        .ret(
            "tgt",
            "save_target_group",
            json!({"name": "restricted", "tgt": {"*": {"tgt_type": "glob", "tgt": "r*"}}}),
        )
        .await;
    // New objects get the default access.
    let listed = root.ret("job", "get_jobs", json!({"job_uuid": job})).await;
    assert_eq!(
        listed["results"][0]["metadata"]["auth"]["access"]["Administrator"]["run"],
        true
    );
    root.ret(
        "job",
        "save_job_access",
        json!({"job_uuid": job, "access_payload": {"Ops": {"read": true, "run": true}}}),
    )
    .await;
    root.ret(
        "tgt",
        "save_target_group_access",
        json!({"tgt_uuid": group, "access_payload": {"Ops": ["read", "discover"]}}),
    )
    .await;
    let access = root
        .ret("tgt", "get_target_group_access", json!({"tgt_uuid": group}))
        .await;
    assert_eq!(
        access,
        json!({"Ops": {"read": true, "write": false, "discover": true, "delete": false}})
    );
    let roles = client()
        .put(format!("{}/_sim/raas/user-roles", handle.base_url))
        .json(&json!({"dev": ["Dev"], "ops": ["Ops", "Dev"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(roles.status(), StatusCode::OK);
    let names = |reply: Value| -> Vec<String> {
        reply["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (resource, method) in [("job", "get_jobs"), ("tgt", "get_target_group")] {
        let dev = as_user("dev").ret(resource, method, json!({})).await;
        assert!(!names(dev).contains(&"restricted".to_owned()), "{method}");
        let ops = as_user("ops").ret(resource, method, json!({})).await;
        assert_eq!(names(ops), ["restricted"], "{method}");
        // A user with no roles listed is a superuser.
        let root_names = names(root.ret(resource, method, json!({})).await);
        assert!(root_names.contains(&"restricted".to_owned()), "{method}");
    }
    let bad = root
        .call(
            "job",
            "save_job_access",
            json!({"job_uuid": job, "access_payload": {"Ops": {"execute": true}}}),
        )
        .await;
    assert_eq!(error_code(&bad), 4001, "{bad}");
}

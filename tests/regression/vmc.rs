//! Regressions of vmc.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sextant::sim::SimConfig;

#[allow(unused_imports)]
use crate::support::estate::{Estate, Run};

const AUTHORIZE: &str = "/csp/gateway/am/api/auth/api-tokens/authorize";

/// A simulator where a 2-hour SDDC create takes a tenth of a second and access tokens
/// outlive the test.
async fn fast_estate() -> Estate {
    Estate::with_config(SimConfig {
        time_scale: 100_000.0,
        token_ttl: Duration::from_secs(365 * 86_400),
        ..SimConfig::default()
    })
    .await
}

/// An access token for the simulator's CSP, and its org.
async fn access_token(estate: &Estate) -> (String, String) {
    let client = reqwest::Client::new();
    let body: Value = client
        .post(format!("{}{AUTHORIZE}", estate.sim.base_url))
        .form(&[("api_token", "regression-api-token")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org: Value = client
        .get(format!("{}/_sim/csp/org", estate.sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        org["org_id"].as_str().unwrap().to_owned(),
    )
}

/// VMC refuses an AWS SDDC create that neither links an AWS account nor delays linking, with
/// 400 "Invalid account linking configuration: null" (vmware/terraform-provider-vmc PR #215;
/// `../shared/api/README.md`, "Corrections after the audit"). `validate` refuses such a
/// manifest at `account_link` (or at the spec when it is absent), with a hint.
#[tokio::test]
async fn validate_refuses_an_aws_sddc_that_neither_links_an_account_nor_delays_linking() {
    let estate = Estate::start(1.0).await;
    estate.write(
        "sddc.yaml",
        "kind: Sddc\nname: unlinked\nspec:\n  region: us-west-2\n  num_hosts: 2\n---\n\
         kind: Sddc\nname: no-subnet\nspec:\n  region: us-west-2\n  num_hosts: 2\n  account_link:\n    connected_account_id: acc-1\n",
    );
    let run = estate.run(&["validate", "manifests"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("sddc.yaml:4:3: `spec.account_link`: an `AWS` SDDC needs `account_link`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "sddc.yaml:13:5: `spec.account_link`: `account_link` of an `AWS` SDDC needs `customer_subnet_ids`"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hint: set `account_link.connected_account_id`")
    );

    // Linked, delayed or ZEROCLOUD: valid.
    estate.write(
        "sddc.yaml",
        "kind: Sddc\nname: linked\nspec:\n  region: us-west-2\n  num_hosts: 2\n  account_link: { connected_account_id: acc-1, customer_subnet_ids: [subnet-1] }\n---\n\
         kind: Sddc\nname: later\nspec:\n  region: us-west-2\n  num_hosts: 2\n  account_link: { delay: true }\n---\n\
         kind: Sddc\nname: test\nspec:\n  region: us-west-2\n  provider: ZEROCLOUD\n  num_hosts: 2\n",
    );
    let run = estate.run(&["validate", "manifests"]).await;
    assert_eq!(run.code, 0, "{run:?}");
}

/// The simulator refuses what VMC refuses: an AWS create body without
/// `account_link_sddc_config` or `account_link_config.delay_account_link: true` gets 400
/// "Invalid account linking configuration: null" (terraform-provider-vmc PR #215). An apply
/// of a linked and of a delayed SDDC goes through, so sextant's create body carries both.
#[tokio::test]
async fn the_simulator_refuses_an_aws_sddc_create_without_account_linking() {
    let estate = fast_estate().await;
    let (token, org) = access_token(&estate).await;
    let create = |body: Value| {
        reqwest::Client::new()
            .post(format!("{}/vmc/api/orgs/{org}/sddcs", estate.sim.base_url))
            .header("csp-auth-token", &token)
            .json(&body)
            .send()
    };
    let response = create(json!({"name": "bare", "num_hosts": 2, "provider": "AWS",
        "region": "US_WEST_2", "account_link_config": {"delay_account_link": false}}))
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error_messages"],
        json!(["Invalid account linking configuration: null"])
    );

    estate.write(
        "sddc.yaml",
        "kind: Sddc\nname: linked\nspec:\n  region: us-west-2\n  num_hosts: 2\n  account_link: { connected_account_id: acc-1, customer_subnet_ids: [subnet-1] }\n---\n\
         kind: Sddc\nname: later\nspec:\n  region: us-west-2\n  num_hosts: 2\n  account_link: { delay: true }\n",
    );
    let run = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let state = estate.state().await;
    let mut links: Vec<(String, bool)> = state["vmc"]["sddcs"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["delay_account_link"].as_bool().unwrap(),
            )
        })
        .collect();
    links.sort();
    assert_eq!(
        links,
        vec![("later".to_owned(), true), ("linked".to_owned(), false)]
    );
}

/// VMware's Python SDK exchanges the API token with `refresh_token` in the query
/// (`vmware/vapi/vmc/csp_filter.py`) and sends the access token as `Authorization: Bearer`
/// (`vmware/vapi/security/oauth.py`); vmc.vmware.com takes it as it takes `csp-auth-token`
/// (`../shared/api/README.md`, "Corrections"). The SDK's calls: org list, SDDC create
/// (`AwsSddcConfig` with account linking), task get, SDDC get.
#[tokio::test]
async fn vmc_takes_the_access_token_as_bearer_as_the_python_sdk_sends_it() {
    let estate = fast_estate().await;
    let client = reqwest::Client::new();
    let base = &estate.sim.base_url;
    let grant: Value = client
        .post(format!("{base}{AUTHORIZE}"))
        .query(&[("refresh_token", "sdk-api-token")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = grant["access_token"].as_str().unwrap().to_owned();
    let call = |method: reqwest::Method, path: String| {
        client
            .request(method, format!("{base}/vmc/api{path}"))
            .bearer_auth(&token)
            .header("accept", "application/json")
    };
    let response = call(reqwest::Method::GET, "/orgs".into())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let orgs: Value = response.json().await.unwrap();
    let org = orgs[0]["id"].as_str().unwrap().to_owned();

    let config = json!({
        "name": "sdk-sddc", "num_hosts": 1, "provider": "AWS", "region": "US_WEST_2",
        "sddc_type": "1NODE", "deployment_type": "SingleAZ", "host_instance_type": "i3.metal",
        "account_link_config": {"delay_account_link": false},
        "account_link_sddc_config": [{"connected_account_id": "acc-1", "customer_subnet_ids": ["subnet-1"]}],
    });
    let response = call(reqwest::Method::POST, format!("/orgs/{org}/sddcs"))
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let task: Value = response.json().await.unwrap();
    let response = call(
        reqwest::Method::GET,
        format!("/orgs/{org}/tasks/{}", task["id"].as_str().unwrap()),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let sddc = task["resource_id"].as_str().unwrap();
    let response = call(reqwest::Method::GET, format!("/orgs/{org}/sddcs/{sddc}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["account_link_state"], "LINKED");

    // A Bearer token the CSP never issued is refused like an unknown `csp-auth-token`.
    let response = client
        .get(format!("{base}/vmc/api/orgs"))
        .bearer_auth("not-issued")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

//! The VMC and vSphere clients (and the HTTP layer and CSP auth under them) against the
//! embedded simulator over loopback: every operation, every auth path, faults, and request
//! counts read from `/_sim/counters`.
//!
//! Simulated time runs at real speed (`time_scale` 1) and is moved on with
//! `/_sim/clock/advance`, so tasks finish and tokens expire exactly when a test says.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sextant::model::{
    Address, Connection, ConnectionConfig, Kind, SecretSource, SecretValue, SourceLocation,
    SystemType,
};
use sextant::providers::{
    self, CreateRequest, DeleteRequest, LiveObject, LiveStatus, Outcome, Provider, ProviderError,
    TaskHandle, TaskStatus, UpdateRequest,
};
use sextant::sim::{self, SimConfig, SimHandle};
use support::estate::{admin, advance, counters, reset_counters, set_faults};

const API_TOKEN: &str = "sextant-test-api-token-5f1e9c";
const VSPHERE_PASSWORD: &str = "sextant-test-vc-password-93ab";

async fn start_sim(configure: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut config = SimConfig {
        time_scale: 1.0,
        ..SimConfig::default()
    };
    configure(&mut config);
    sim::start(config).await.unwrap()
}

fn vmc_connection(sim: &SimHandle, configure: impl FnOnce(&mut ConnectionConfig)) -> Connection {
    let mut config = ConnectionConfig::with_defaults(SystemType::Vmc);
    config.url = sim.base_url.clone();
    config.csp_url = sim.base_url.clone();
    config.api_token = Some(SecretSource::Fixed(SecretValue::new(API_TOKEN)));
    configure(&mut config);
    Connection {
        name: "vmc-test".to_string(),
        config,
        location: SourceLocation::default(),
    }
}

fn vsphere_connection(
    sim: &SimHandle,
    configure: impl FnOnce(&mut ConnectionConfig),
) -> Connection {
    let mut config = ConnectionConfig::with_defaults(SystemType::Vsphere);
    config.url = sim.base_url.clone();
    config.username = Some("administrator@vsphere.local".to_string());
    config.password = Some(SecretSource::Fixed(SecretValue::new(VSPHERE_PASSWORD)));
    configure(&mut config);
    Connection {
        name: "vc-test".to_string(),
        config,
        location: SourceLocation::default(),
    }
}

async fn list_sddcs(provider: &dyn Provider) -> Vec<LiveObject> {
    provider.list(Kind::Sddc, &[]).await.unwrap()
}

async fn find(provider: &dyn Provider, kind: Kind, name: &str) -> LiveObject {
    let mut found: Vec<LiveObject> = provider
        .list(kind, &[name.to_string()])
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.name == name && o.status != LiveStatus::Deleted)
        .collect();
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    found.remove(0)
}

fn task_of(outcome: Outcome) -> TaskHandle {
    match outcome {
        Outcome::Task(task) => task,
        Outcome::Done { .. } => panic!("expected a task, got a synchronous result"),
    }
}

/// Polls after moving simulated time past any task's duration.
async fn finish(sim: &SimHandle, provider: &dyn Provider, task: &TaskHandle) -> TaskStatus {
    advance(sim, 4 * 3600).await;
    provider.poll(task).await.unwrap()
}

async fn create_sddc(
    provider: &dyn Provider,
    name: &str,
    spec: &Value,
    key: uuid::Uuid,
) -> Result<Outcome, ProviderError> {
    let address = Address::new(Kind::Sddc, name);
    provider
        .create(&CreateRequest {
            address: &address,
            spec,
            idempotency_key: key,
            base_dir: Path::new("."),
        })
        .await
}

async fn update(
    provider: &dyn Provider,
    live: &LiveObject,
    spec: &Value,
    changed: &[&str],
    allow_power_cycle: bool,
) -> Result<Outcome, ProviderError> {
    let address = Address::new(live.kind, live.name.clone());
    let changed: Vec<String> = changed.iter().map(|s| s.to_string()).collect();
    // The provider reads the permission from the desired spec, as the manifest writes it.
    let mut spec = spec.clone();
    if allow_power_cycle {
        spec["allow_power_cycle"] = json!(true);
    }
    provider
        .update(&UpdateRequest {
            address: &address,
            live,
            spec: &spec,
            changed: &changed,
        })
        .await
}

fn two_host_spec() -> Value {
    json!({"region": "US_WEST_2", "provider": "AWS", "num_hosts": 2, "sddc_type": "DEFAULT",
        "deployment_type": "SingleAZ", "host_instance_type": "i4i.metal", "size": "medium",
        "vpc_cidr": "10.2.0.0/16", "account_link": {"delay": true}})
}

fn subset_matches(live: &Value, desired: &Value) -> bool {
    desired
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "account_link")
        .all(|(k, v)| live.get(k) == Some(v))
}

#[tokio::test]
async fn connecting_contacts_nothing_until_the_first_call() {
    let sim = start_sim(|_| {}).await;
    let _vmc = providers::connect(&vmc_connection(&sim, |_| {})).unwrap();
    let _vc = providers::connect(&vsphere_connection(&sim, |_| {})).unwrap();
    assert_eq!(counters(&sim).await["total"], 0);
}

#[tokio::test]
async fn sddc_lifecycle_create_grow_delete_with_org_discovery() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vmc_connection(&sim, |_| {})).unwrap();

    assert!(list_sddcs(&*provider).await.is_empty());
    // One exchange, the org lookup (no `org_id` configured) and one bulk list.
    let c = counters(&sim).await;
    assert_eq!((c["csp"].as_u64(), c["vmc"].as_u64()), (Some(1), Some(2)));

    let spec = two_host_spec();
    let key = uuid::Uuid::new_v4();
    let task = task_of(create_sddc(&*provider, "prod", &spec, key).await.unwrap());
    assert_eq!(task.object_id, key.to_string());

    let deploying = find(&*provider, Kind::Sddc, "prod").await;
    match &deploying.status {
        LiveStatus::Busy {
            task: Some(t),
            activity,
        } => {
            assert_eq!(activity, "DEPLOYING");
            assert_eq!(t.id, task.id);
        }
        other => panic!("expected busy with the create task, got {other:?}"),
    }
    advance(&sim, 600).await;
    match provider.poll(&task).await.unwrap() {
        TaskStatus::Pending { progress, eta } => {
            assert!(progress.is_some_and(|p| p < 100), "{progress:?}");
            assert!(eta.is_some_and(|e| e > Duration::ZERO), "{eta:?}");
        }
        other => panic!("expected pending, got {other:?}"),
    }
    assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);

    let ready = find(&*provider, Kind::Sddc, "prod").await;
    assert_eq!(ready.status, LiveStatus::Ready);
    assert!(
        subset_matches(&ready.spec.value(), &spec),
        "{:?}",
        ready.spec
    );
    assert_eq!(ready.id, key.to_string());
    assert_eq!(ready.attributes["id"], key.to_string());
    assert_eq!(ready.attributes["sddc_state"], "READY");
    assert!(ready.attributes.contains_key("vc_url"));
    assert!(ready.attributes.contains_key("cloud_username"));
    assert_ne!(ready.fingerprint, deploying.fingerprint);

    let mut bigger = spec.clone();
    bigger["num_hosts"] = json!(4);
    let task = task_of(
        update(&*provider, &ready, &bigger, &["num_hosts"], false)
            .await
            .unwrap(),
    );
    assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);
    let grown = find(&*provider, Kind::Sddc, "prod").await;
    assert_eq!(grown.spec.value()["num_hosts"], 4);

    let task = task_of(
        update(&*provider, &grown, &spec, &["num_hosts"], false)
            .await
            .unwrap(),
    );
    assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);
    let shrunk = find(&*provider, Kind::Sddc, "prod").await;
    assert_eq!(shrunk.spec.value()["num_hosts"], 2);

    let address = Address::new(Kind::Sddc, "prod");
    let task = task_of(
        provider
            .delete(&DeleteRequest {
                address: &address,
                live: &shrunk,
            })
            .await
            .unwrap(),
    );
    assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);
    let all = list_sddcs(&*provider).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, LiveStatus::Deleted);

    // Deleting what is already gone is done, not an error.
    let again = provider
        .delete(&DeleteRequest {
            address: &address,
            live: &shrunk,
        })
        .await;
    assert!(
        matches!(again, Ok(Outcome::Done { .. })) || matches!(again, Ok(Outcome::Task(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn one_node_sddc_converts_to_three_hosts() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vmc_connection(&sim, |_| {})).unwrap();
    let spec = json!({"region": "us-west-2", "provider": "AWS", "num_hosts": 1, "sddc_type": "1NODE",
            "account_link": {"delay": true}});
    let task = task_of(
        create_sddc(&*provider, "lab", &spec, uuid::Uuid::new_v4())
            .await
            .unwrap(),
    );
    assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);
    let live = find(&*provider, Kind::Sddc, "lab").await;
    assert_eq!(live.spec.value()["sddc_type"], "1NODE");
    assert_eq!(live.spec.value()["region"], "US_WEST_2");

    // Adding hosts to a 1NODE SDDC is refused before anything is sent.
    let mut two = spec.clone();
    two["num_hosts"] = json!(2);
    reset_counters(&sim).await;
    let err = update(&*provider, &live, &two, &["num_hosts"], false)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Invalid(_)), "{err}");
    assert_eq!(counters(&sim).await["total"], 0);

    let converted = json!({"region": "US_WEST_2", "num_hosts": 3, "sddc_type": "DEFAULT"});
    let task = task_of(
        update(
            &*provider,
            &live,
            &converted,
            &["num_hosts", "sddc_type"],
            false,
        )
        .await
        .unwrap(),
    );
    // A running conversion shows as busy with its task, though the SDDC stays READY.
    match find(&*provider, Kind::Sddc, "lab").await.status {
        LiveStatus::Busy { task: Some(t), .. } => assert_eq!(t.id, task.id),
        other => panic!("expected busy with the conversion, got {other:?}"),
    }
    assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);
    let live = find(&*provider, Kind::Sddc, "lab").await;
    assert_eq!(live.status, LiveStatus::Ready);
    assert_eq!(live.spec.value()["sddc_type"], "DEFAULT");
    assert_eq!(live.spec.value()["num_hosts"], 3);

    // Fields that force replacement are refused in place.
    let mut moved = converted.clone();
    moved["region"] = json!("EU_CENTRAL_1");
    let err = update(&*provider, &live, &moved, &["region"], false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`region`"), "{err}");
}

#[tokio::test]
async fn create_whose_response_is_dropped_after_commit_is_not_duplicated() {
    for mode in ["gateway_timeout", "reset"] {
        let sim = start_sim(|_| {}).await;
        let provider = providers::connect(&vmc_connection(&sim, |_| {})).unwrap();
        list_sddcs(&*provider).await;
        set_faults(&sim, json!({"drop_next_mutations": 1, "drop_mode": mode})).await;
        let key = uuid::Uuid::new_v4();
        let outcome = create_sddc(&*provider, "prod", &two_host_spec(), key)
            .await
            .unwrap_or_else(|err| panic!("{mode}: {err}"));
        let task = task_of(outcome);
        assert_eq!(task.object_id, key.to_string());
        let all = list_sddcs(&*provider).await;
        assert_eq!(all.len(), 1, "{mode}: {all:?}");
        assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);

        // A delete whose answer is lost is resent, finds the SDDC deleting and waits for it.
        let live = find(&*provider, Kind::Sddc, "prod").await;
        set_faults(&sim, json!({"drop_next_mutations": 1, "drop_mode": mode})).await;
        let address = Address::new(Kind::Sddc, "prod");
        let outcome = provider
            .delete(&DeleteRequest {
                address: &address,
                live: &live,
            })
            .await
            .unwrap_or_else(|err| panic!("{mode}: {err}"));
        let task = task_of(outcome);
        assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);
        let all = list_sddcs(&*provider).await;
        assert_eq!(all[0].status, LiveStatus::Deleted, "{mode}");
    }
}

#[tokio::test]
async fn host_change_whose_response_is_dropped_adopts_the_running_task() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vmc_connection(&sim, |_| {})).unwrap();
    let spec = two_host_spec();
    let task = task_of(
        create_sddc(&*provider, "prod", &spec, uuid::Uuid::new_v4())
            .await
            .unwrap(),
    );
    finish(&sim, &*provider, &task).await;
    let live = find(&*provider, Kind::Sddc, "prod").await;

    set_faults(&sim, json!({"drop_next_mutations": 1})).await;
    let mut bigger = spec.clone();
    bigger["num_hosts"] = json!(3);
    let task = task_of(
        update(&*provider, &live, &bigger, &["num_hosts"], false)
            .await
            .unwrap(),
    );
    assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);
    // Sent once: one host more, not two.
    assert_eq!(
        find(&*provider, Kind::Sddc, "prod").await.spec.value()["num_hosts"],
        3
    );
}

#[tokio::test]
async fn concurrent_update_rejections_are_retried() {
    for status in [400u16, 409] {
        let sim = start_sim(|c| c.options.vmc_concurrent_update_status = status).await;
        let provider = providers::connect(&vmc_connection(&sim, |_| {})).unwrap();
        let spec = two_host_spec();
        let task = task_of(
            create_sddc(&*provider, "prod", &spec, uuid::Uuid::new_v4())
                .await
                .unwrap(),
        );
        finish(&sim, &*provider, &task).await;
        let live = find(&*provider, Kind::Sddc, "prod").await;
        let mut bigger = spec.clone();
        bigger["num_hosts"] = json!(4);
        let _running = update(&*provider, &live, &bigger, &["num_hosts"], false)
            .await
            .unwrap();

        // The second mutation meets the running one. The call does not wait: it returns a
        // task whose polls send the mutation again (the caller's loop owns the delay).
        let mut grown = live.clone();
        let mut spec_grown = grown.spec.value();
        spec_grown["num_hosts"] = json!(4);
        grown.spec = spec_grown.into();
        let task = task_of(
            update(&*provider, &grown, &spec, &["num_hosts"], false)
                .await
                .unwrap_or_else(|err| panic!("{status}: {err}")),
        );
        // Still busy: the poll sends it again and is refused again.
        reset_counters(&sim).await;
        assert!(
            matches!(
                provider.poll(&task).await.unwrap(),
                TaskStatus::Pending { .. }
            ),
            "{status}"
        );
        assert!(counters(&sim).await["vmc"].as_u64().unwrap() >= 1);
        // Once the first mutation finished, the next poll's resend is accepted, and polls
        // then follow the server's task to its end.
        advance(&sim, 4 * 3600).await;
        assert!(
            matches!(
                provider.poll(&task).await.unwrap(),
                TaskStatus::Pending { .. }
            ),
            "{status}"
        );
        assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);
        assert_eq!(
            find(&*provider, Kind::Sddc, "prod").await.spec.value()["num_hosts"],
            2
        );
    }
}

#[tokio::test]
async fn access_token_expiry_mid_sequence_is_re_exchanged_once() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vmc_connection(&sim, |_| {})).unwrap();
    list_sddcs(&*provider).await;
    // The token expires on the server while the client still holds it.
    advance(&sim, 2 * 3600).await;
    reset_counters(&sim).await;
    list_sddcs(&*provider).await;
    let c = counters(&sim).await;
    // 401, one exchange, the retried list.
    assert_eq!((c["csp"].as_u64(), c["vmc"].as_u64()), (Some(1), Some(2)));

    // A short lifetime is refreshed ahead of expiry (half of it), without a 401.
    set_faults(&sim, json!({"token_ttl_secs": 1})).await;
    advance(&sim, 2 * 3600).await;
    list_sddcs(&*provider).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    reset_counters(&sim).await;
    list_sddcs(&*provider).await;
    let c = counters(&sim).await;
    assert_eq!((c["csp"].as_u64(), c["vmc"].as_u64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn a_refused_api_token_is_an_auth_error_without_the_token() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vmc_connection(&sim, |c| {
        c.api_token = Some(SecretSource::Fixed(SecretValue::new("invalid-token-77aa")));
    }))
    .unwrap();
    let err = provider.list(Kind::Sddc, &[]).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ProviderError::Auth { .. }), "{text}");
    assert!(text.contains("vmc-test"), "{text}");
    assert!(!text.contains("invalid-token-77aa"), "{text}");
}

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after_and_bounded() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vmc_connection(&sim, |c| c.max_retries = 2)).unwrap();
    list_sddcs(&*provider).await;

    set_faults(&sim, json!({"rate_429": 1.0, "retry_after_secs": 1})).await;
    reset_counters(&sim).await;
    let err = provider.list(Kind::Sddc, &[]).await.unwrap_err();
    match &err {
        ProviderError::Api {
            method,
            path,
            status,
            message,
            ..
        } => {
            assert_eq!((method.as_str(), *status), ("GET", 429));
            assert!(path.ends_with("/sddcs"), "{path}");
            assert!(!path.contains('?'), "{path}");
            assert!(message.contains("too many requests"), "{message}");
        }
        other => panic!("expected an API error, got {other}"),
    }
    // The first try and `max_retries` retries.
    assert_eq!(counters(&sim).await["vmc"], 3);

    set_faults(&sim, json!({"rate_429": 0.5, "retry_after_secs": 0})).await;
    let provider = providers::connect(&vmc_connection(&sim, |c| c.max_retries = 10)).unwrap();
    for _ in 0..5 {
        list_sddcs(&*provider).await;
    }
}

#[tokio::test]
async fn service_unavailable_bursts_are_retried() {
    let sim = start_sim(|c| c.seed = 7).await;
    let provider = providers::connect(&vmc_connection(&sim, |c| c.max_retries = 10)).unwrap();
    set_faults(&sim, json!({"rate_503": 0.4})).await;
    let key = uuid::Uuid::new_v4();
    let task = task_of(
        create_sddc(&*provider, "prod", &two_host_spec(), key)
            .await
            .unwrap(),
    );
    assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);
    let all = list_sddcs(&*provider).await;
    assert_eq!(all.len(), 1);
    assert!(counters(&sim).await["total"].as_u64().unwrap() > 4);

    // A burst longer than the retries is an error naming the call.
    set_faults(&sim, json!({"rate_503": 1.0})).await;
    let provider = providers::connect(&vmc_connection(&sim, |c| c.max_retries = 1)).unwrap();
    let err = provider.list(Kind::Sddc, &[]).await.unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn unknown_tasks_and_sddcs_are_reported_or_treated_as_gone() {
    let sim = start_sim(|_| {}).await;
    let org = admin(&sim, reqwest::Method::GET, "/_sim/csp/org", None).await["org_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A configured org is used as is: no org lookup.
    let provider = providers::connect(&vmc_connection(&sim, |c| c.org_id = Some(org))).unwrap();
    let err = provider
        .poll(&TaskHandle {
            kind: Kind::Sddc,
            id: "no-such-task".to_string(),
            object_id: "x".to_string(),
        })
        .await
        .unwrap_err();
    match &err {
        ProviderError::Api { status, path, .. } => {
            assert_eq!(*status, 404);
            assert!(path.ends_with("/tasks/no-such-task"), "{path}");
        }
        other => panic!("expected a 404, got {other}"),
    }
    let c = counters(&sim).await;
    assert_eq!((c["csp"].as_u64(), c["vmc"].as_u64()), (Some(1), Some(1)));

    let ghost = LiveObject {
        kind: Kind::Sddc,
        name: "ghost".to_string(),
        id: uuid::Uuid::new_v4().to_string(),
        spec: json!({}).into(),
        attributes: sextant::providers::Attributes::default(),
        status: LiveStatus::Ready,
        fingerprint: String::new(),
    };
    let address = Address::new(Kind::Sddc, "ghost");
    let outcome = provider
        .delete(&DeleteRequest {
            address: &address,
            live: &ghost,
        })
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Done { .. }));
}

#[tokio::test]
async fn a_failed_task_reports_the_server_message_and_the_sddc_shows_failed() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vmc_connection(&sim, |_| {})).unwrap();
    set_faults(&sim, json!({"fail_sddc_tasks": ["doomed"]})).await;
    let task = task_of(
        create_sddc(&*provider, "doomed", &two_host_spec(), uuid::Uuid::new_v4())
            .await
            .unwrap(),
    );
    match finish(&sim, &*provider, &task).await {
        TaskStatus::Failed(message) => assert!(message.contains(&task.id), "{message}"),
        other => panic!("expected failed, got {other:?}"),
    }
    let live = find(&*provider, Kind::Sddc, "doomed").await;
    assert!(
        matches!(live.status, LiveStatus::Failed { .. }),
        "{:?}",
        live.status
    );

    // Canceled on request: the task is canceling, then fails as canceled.
    let vmc = sextant::providers::vmc::VmcProvider::new(&vmc_connection(&sim, |_| {})).unwrap();
    let task = task_of(
        create_sddc(&vmc, "stopped", &two_host_spec(), uuid::Uuid::new_v4())
            .await
            .unwrap(),
    );
    assert!(matches!(
        vmc.cancel_task(&task).await.unwrap(),
        TaskStatus::Pending { .. }
    ));
    match finish(&sim, &vmc, &task).await {
        TaskStatus::Failed(message) => assert!(message.contains("canceled"), "{message}"),
        other => panic!("expected the canceled task to fail, got {other:?}"),
    }

    set_faults(&sim, json!({"cancel_sddc_tasks": ["called-off"]})).await;
    let task = task_of(
        create_sddc(
            &*provider,
            "called-off",
            &two_host_spec(),
            uuid::Uuid::new_v4(),
        )
        .await
        .unwrap(),
    );
    match finish(&sim, &*provider, &task).await {
        TaskStatus::Failed(message) => assert!(message.contains("canceled"), "{message}"),
        other => panic!("expected the canceled task to fail, got {other:?}"),
    }
}

#[tokio::test]
async fn an_api_token_that_sees_several_orgs_needs_org_id() {
    let server = Scripted::start(|seen, n| match seen.path.as_str() {
        "/csp/gateway/am/api/auth/api-tokens/authorize" => csp_reply(n),
        "/vmc/api/orgs" => (
            200,
            json!([{"id": "org-a", "display_name": "A"}, {"id": "org-b", "display_name": "B"}]),
        ),
        _ => (200, json!([])),
    })
    .await;
    let provider = providers::connect(&server.vmc(None)).unwrap();
    let err = provider.list(Kind::Sddc, &[]).await.unwrap_err();
    assert!(matches!(err, ProviderError::Config { .. }), "{err}");
    assert!(err.to_string().contains("`org_id`"), "{err}");
    assert!(err.to_string().contains("`org-b`"), "{err}");
    assert!(server.seen("GET", "/sddcs").is_empty());
}

#[tokio::test]
async fn unusable_tls_settings_are_configuration_errors() {
    let sim = start_sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "this is not a certificate").unwrap();
    for ca_file in [dir.path().join("missing.pem"), not_pem] {
        let connection = vmc_connection(&sim, |c| c.tls.ca_file = Some(ca_file.clone()));
        match providers::connect(&connection) {
            Err(ProviderError::Config {
                connection,
                message,
            }) => {
                assert_eq!(connection, "vmc-test");
                assert!(message.contains("`tls.ca_file`"), "{message}");
            }
            Err(other) => panic!("expected a configuration error, got {other}"),
            Ok(_) => panic!("{} was accepted as a CA file", ca_file.display()),
        }
    }
    // Skipping verification is allowed (with a warning) and still talks to the server.
    let provider = providers::connect(&vmc_connection(&sim, |c| c.tls.insecure = true)).unwrap();
    assert!(list_sddcs(&*provider).await.is_empty());
}

fn seed_vms(dir: &Path, count: usize) -> std::path::PathBuf {
    let vms: Vec<Value> = (0..count)
        .map(|i| {
            json!({"name": format!("app-{i:04}"), "power_state": "POWERED_ON", "cpu_count": 2,
                "memory_size_MiB": 2048})
        })
        .collect();
    let path = dir.join("seed.json");
    std::fs::write(&path, json!({"vsphere": {"vms": vms}}).to_string()).unwrap();
    path
}

#[tokio::test]
async fn vsphere_lists_declared_names_in_chunks_with_one_login() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_vms(dir.path(), 1100);
    let sim = start_sim(|c| c.seed_data = Some(seed)).await;
    let provider = providers::connect(&vsphere_connection(&sim, |_| {})).unwrap();
    let mut names: Vec<String> = (0..1100).map(|i| format!("app-{i:04}")).collect();
    names.push("not-there".to_string());
    let live = provider.list(Kind::VirtualMachine, &names).await.unwrap();
    assert_eq!(live.len(), 1100);
    let first = live.iter().find(|o| o.name == "app-0000").unwrap();
    assert_eq!(
        first.spec,
        json!({"power_state": "POWERED_ON", "cpu_count": 2, "memory_size_MiB": 2048})
    );
    assert_eq!(first.attributes["vm"], first.id);
    // One login and ceil(1101 / 200) = 6 lists; the summaries carry CPU and memory, so no
    // per-VM reads.
    let expected = 1 + 1101usize.div_ceil(sextant::providers::vsphere::NAMES_PER_LIST);
    assert_eq!(counters(&sim).await["vsphere"], expected as u64);
}

#[tokio::test]
async fn vsphere_power_and_hardware_changes_follow_the_power_cycle_rule() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vsphere_connection(&sim, |_| {})).unwrap();
    let web = find(&*provider, Kind::VirtualMachine, "web-01").await;
    assert_eq!(web.spec.value()["power_state"], "POWERED_ON");

    let bigger = json!({"power_state": "POWERED_ON", "cpu_count": 4, "memory_size_MiB": 8192});
    reset_counters(&sim).await;
    let err = update(
        &*provider,
        &web,
        &bigger,
        &["cpu_count", "memory_size_MiB"],
        false,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProviderError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("allow_power_cycle"), "{err}");
    assert_eq!(counters(&sim).await["total"], 0);

    // The running VM is shut down from its guest: a task that finishes once it is off.
    let task = task_of(
        update(
            &*provider,
            &web,
            &bigger,
            &["cpu_count", "memory_size_MiB"],
            true,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        provider.poll(&task).await.unwrap(),
        TaskStatus::Pending {
            progress: None,
            eta: None
        }
    );
    assert_eq!(finish(&sim, &*provider, &task).await, TaskStatus::Done);
    let web = find(&*provider, Kind::VirtualMachine, "web-01").await;
    assert_eq!(web.spec, bigger);

    // Power only: off, suspended via on, back on.
    for state in ["POWERED_OFF", "SUSPENDED", "POWERED_ON"] {
        let live = find(&*provider, Kind::VirtualMachine, "web-01").await;
        let mut desired = bigger.clone();
        desired["power_state"] = json!(state);
        update(&*provider, &live, &desired, &["power_state"], false)
            .await
            .unwrap();
        assert_eq!(
            find(&*provider, Kind::VirtualMachine, "web-01")
                .await
                .spec
                .value()["power_state"],
            state
        );
    }

    // A powered-off VM changes without a power cycle and stays off.
    let db = find(&*provider, Kind::VirtualMachine, "db-01").await;
    let mut desired = db.spec.value();
    desired["memory_size_MiB"] = json!(16384);
    update(&*provider, &db, &desired, &["memory_size_MiB"], false)
        .await
        .unwrap();
    assert_eq!(
        find(&*provider, Kind::VirtualMachine, "db-01").await.spec,
        desired
    );
}

#[tokio::test]
async fn vsphere_restores_the_power_state_when_the_change_fails() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vsphere_connection(&sim, |_| {})).unwrap();
    let web = find(&*provider, Kind::VirtualMachine, "web-02").await;
    let impossible = json!({"power_state": "POWERED_ON", "cpu_count": 100000});
    let task = task_of(
        update(&*provider, &web, &impossible, &["cpu_count"], true)
            .await
            .unwrap(),
    );
    advance(&sim, 3600).await;
    let err = provider.poll(&task).await.unwrap_err();
    match &err {
        ProviderError::Api {
            method,
            path,
            status,
            ..
        } => {
            assert_eq!((method.as_str(), *status), ("PATCH", 400));
            assert!(path.ends_with("/hardware/cpu"), "{path}");
        }
        other => panic!("expected the PATCH error, got {other}"),
    }
    let after = find(&*provider, Kind::VirtualMachine, "web-02").await;
    assert_eq!(after.spec.value()["power_state"], "POWERED_ON");
    assert_eq!(
        after.spec.value()["cpu_count"],
        web.spec.value()["cpu_count"]
    );
}

#[tokio::test]
async fn vsphere_session_expiry_logs_in_again_once() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vsphere_connection(&sim, |_| {})).unwrap();
    find(&*provider, Kind::VirtualMachine, "web-01").await;
    admin(
        &sim,
        reqwest::Method::POST,
        "/_sim/vsphere/expire-sessions",
        None,
    )
    .await;
    reset_counters(&sim).await;
    find(&*provider, Kind::VirtualMachine, "web-01").await;
    // 401, a new session, the retried list.
    assert_eq!(counters(&sim).await["vsphere"], 3);
}

#[tokio::test]
async fn vsphere_refuses_bad_credentials_creates_and_deletes() {
    let sim = start_sim(|_| {}).await;
    let bad = providers::connect(&vsphere_connection(&sim, |c| {
        c.password = Some(SecretSource::Fixed(SecretValue::new("invalid-pw-1234")));
    }))
    .unwrap();
    let err = bad
        .list(Kind::VirtualMachine, &["web-01".to_string()])
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ProviderError::Auth { .. }), "{text}");
    assert!(!text.contains("invalid-pw-1234"), "{text}");

    let provider = providers::connect(&vsphere_connection(&sim, |_| {})).unwrap();
    let address = Address::new(Kind::VirtualMachine, "new-vm");
    let spec = json!({"power_state": "POWERED_ON"});
    assert!(
        provider
            .create(&CreateRequest {
                address: &address,
                spec: &spec,
                idempotency_key: uuid::Uuid::new_v4(),
                base_dir: Path::new("."),
            })
            .await
            .is_err()
    );
    let web = find(&*provider, Kind::VirtualMachine, "web-01").await;
    assert!(
        provider
            .delete(&DeleteRequest {
                address: &address,
                live: &web,
            })
            .await
            .is_err()
    );
}

/// A writer that appends formatted log lines to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A TRACE subscriber for the whole test binary. A scoped (`set_default`) subscriber misses
/// events whose callsites other test threads cached as uninteresting first, which made the
/// capture flaky; a global one sees every event (other tests' lines land here too, and must
/// be free of secrets as well).
fn global_capture() -> Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(capture.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
            capture
        })
        .clone()
}

async fn issued_secrets(sim: &SimHandle, into: &mut Vec<String>) {
    let state = sim.sim.state.lock().await;
    into.extend(state.csp.access_tokens.keys().cloned());
    into.extend(state.vsphere.sessions.keys().cloned());
}

#[tokio::test]
async fn no_secret_appears_in_trace_logs_errors_or_debug_output() {
    let capture = global_capture();

    let sim = start_sim(|_| {}).await;
    let mut secrets = vec![API_TOKEN.to_string(), VSPHERE_PASSWORD.to_string()];
    let mut shown = String::new();

    let vmc = providers::connect(&vmc_connection(&sim, |_| {})).unwrap();
    let task = task_of(
        create_sddc(&*vmc, "prod", &two_host_spec(), uuid::Uuid::new_v4())
            .await
            .unwrap(),
    );
    issued_secrets(&sim, &mut secrets).await;
    shown.push_str(&format!("{:?}", finish(&sim, &*vmc, &task).await));
    // Expired token mid-sequence: a second exchange.
    let live = find(&*vmc, Kind::Sddc, "prod").await;
    issued_secrets(&sim, &mut secrets).await;
    shown.push_str(&format!("{live:?}"));
    let mut bigger = two_host_spec();
    bigger["num_hosts"] = json!(3);
    let task = task_of(
        update(&*vmc, &live, &bigger, &["num_hosts"], false)
            .await
            .unwrap(),
    );
    issued_secrets(&sim, &mut secrets).await;
    shown.push_str(&format!("{:?}", finish(&sim, &*vmc, &task).await));
    let bad = providers::connect(&vmc_connection(&sim, |c| {
        c.api_token = Some(SecretSource::Fixed(SecretValue::new(
            "invalid-secret-token-x9",
        )));
    }))
    .unwrap();
    secrets.push("invalid-secret-token-x9".to_string());
    let err = bad.list(Kind::Sddc, &[]).await.unwrap_err();
    shown.push_str(&format!("{err} {err:?}"));

    let vc = providers::connect(&vsphere_connection(&sim, |_| {})).unwrap();
    let web = find(&*vc, Kind::VirtualMachine, "web-01").await;
    issued_secrets(&sim, &mut secrets).await;
    admin(
        &sim,
        reqwest::Method::POST,
        "/_sim/vsphere/expire-sessions",
        None,
    )
    .await;
    let mut desired = web.spec.value();
    desired["cpu_count"] = json!(4);
    update(&*vc, &web, &desired, &["cpu_count"], true)
        .await
        .unwrap();
    issued_secrets(&sim, &mut secrets).await;
    shown.push_str(&format!("{web:?}"));

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("http request"), "request logging is missing");
    assert!(logs.contains("/vmc/api/orgs"), "request paths are missing");
    secrets.sort();
    secrets.dedup();
    assert!(secrets.len() >= 5, "{} secrets collected", secrets.len());
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs");
        assert!(
            !shown.contains(secret.as_str()),
            "a secret is in debug or error output"
        );
    }
}

/// One request as a scripted server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: reqwest::header::HeaderMap,
    body: String,
}

type Script = dyn Fn(&Seen, usize) -> (u16, Value) + Send + Sync;

/// A scripted server: answers each request with `script(request, n)` where `n` counts earlier
/// requests with the same method and path, and records everything it saw.
struct Scripted {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    async fn start(script: impl Fn(&Seen, usize) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let log = log.clone();
            let script = script.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let request = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    headers: parts.headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let n = {
                    let mut log = log.lock().unwrap();
                    let n = log
                        .iter()
                        .filter(|s| s.method == request.method && s.path == request.path)
                        .count();
                    log.push(request.clone());
                    n
                };
                let (status, body) = script(&request, n);
                let mut response = axum::response::IntoResponse::into_response(axum::Json(body));
                *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base_url, seen }
    }

    fn seen(&self, method: &str, path_end: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == method && s.path.ends_with(path_end))
            .cloned()
            .collect()
    }

    fn vmc(&self, org: Option<&str>) -> Connection {
        let mut config = ConnectionConfig::with_defaults(SystemType::Vmc);
        config.url = self.base_url.clone();
        config.csp_url = self.base_url.clone();
        config.org_id = org.map(str::to_string);
        config.max_retries = 3;
        config.api_token = Some(SecretSource::Fixed(SecretValue::new(API_TOKEN)));
        Connection {
            name: "scripted".to_string(),
            config,
            location: SourceLocation::default(),
        }
    }
}

fn csp_reply(n: usize) -> (u16, Value) {
    (
        200,
        json!({"access_token": format!("access-{n}"), "token_type": "bearer", "expires_in": 1800,
            "scope": "", "id_token": "x", "refresh_token": "y"}),
    )
}

#[tokio::test]
async fn csp_exchange_and_vmc_calls_carry_exactly_the_documented_fields() {
    let server = Scripted::start(|seen, n| match seen.path.as_str() {
        "/csp/gateway/am/api/auth/api-tokens/authorize" => csp_reply(n),
        "/vmc/api/orgs" => (200, json!([{"id": "org-1", "display_name": "Only"}])),
        _ => (200, json!([])),
    })
    .await;
    let provider = providers::connect(&server.vmc(None)).unwrap();
    assert!(list_sddcs(&*provider).await.is_empty());

    let exchange = server.seen("POST", "/authorize");
    assert_eq!(exchange.len(), 1);
    let exchange = &exchange[0];
    assert_eq!(
        exchange.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(exchange.body, format!("api_token={API_TOKEN}"));
    assert_eq!(exchange.query, "");
    assert!(exchange.headers.get("authorization").is_none());
    assert!(exchange.headers.get("csp-auth-token").is_none());

    let list = server.seen("GET", "/vmc/api/orgs/org-1/sddcs");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].headers["csp-auth-token"], "access-0");
    assert!(list[0].headers.get("authorization").is_none());
    assert_eq!(list[0].query, "includeDeleted=true");
}

#[tokio::test]
async fn a_second_401_after_a_fresh_token_is_an_auth_error() {
    let server = Scripted::start(|seen, n| match seen.path.as_str() {
        "/csp/gateway/am/api/auth/api-tokens/authorize" => csp_reply(n),
        _ => (
            401,
            json!({"status": 401, "path": seen.path, "retryable": false, "error_code": "unauthenticated",
                "error_messages": ["The access token has expired."]}),
        ),
    })
    .await;
    let provider = providers::connect(&server.vmc(Some("org-1"))).unwrap();
    let err = provider.list(Kind::Sddc, &[]).await.unwrap_err();
    assert!(matches!(err, ProviderError::Auth { .. }), "{err}");
    assert_eq!(server.seen("POST", "/authorize").len(), 2);
    let lists = server.seen("GET", "/sddcs");
    assert_eq!(lists.len(), 2);
    assert_eq!(lists[0].headers["csp-auth-token"], "access-0");
    assert_eq!(lists[1].headers["csp-auth-token"], "access-1");
}

#[tokio::test]
async fn server_marked_retryable_errors_are_retried_and_creates_without_retry_marks_are_not() {
    let server = Scripted::start(|seen, n| match (seen.method.as_str(), seen.path.as_str()) {
        (_, "/csp/gateway/am/api/auth/api-tokens/authorize") => csp_reply(n),
        ("GET", path) if path.ends_with("/sddcs") && n == 0 => (
            500,
            json!({"status": 500, "path": path, "retryable": true, "error_code": "x",
                "error_messages": ["try again"]}),
        ),
        ("GET", path) if path.ends_with("/tasks") && seen.query.contains("filter") => (
            400,
            json!({"status": 400, "path": path, "retryable": false, "error_code": "bad_filter",
                "error_messages": ["Invalid $filter"]}),
        ),
        ("GET", path) if path.ends_with("/primarycluster") => (
            200,
            json!({"cluster_id": "c-1", "cluster_name": "Cluster-1"}),
        ),
        ("POST", path) if path.ends_with("/esxs") => (
            503,
            json!({"status": 503, "path": path, "retryable": false, "error_code": "y",
                "error_messages": ["unavailable"]}),
        ),
        _ => (200, json!([])),
    })
    .await;
    let provider = providers::connect(&server.vmc(Some("org-1"))).unwrap();
    assert!(list_sddcs(&*provider).await.is_empty());
    assert_eq!(server.seen("GET", "/sddcs").len(), 2);

    let live = LiveObject {
        kind: Kind::Sddc,
        name: "prod".to_string(),
        id: "sddc-1".to_string(),
        spec: json!({"num_hosts": 2, "sddc_type": "DEFAULT", "deployment_type": "SingleAZ"}).into(),
        attributes: sextant::providers::Attributes::default(),
        status: LiveStatus::Ready,
        fingerprint: String::new(),
    };
    // A whole desired spec, as the executor hands it (the provider reads it typed).
    let desired = json!({"region": "US_WEST_2", "num_hosts": 5});
    let err = update(&*provider, &live, &desired, &["num_hosts"], false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Api { status: 503, .. }),
        "{err}"
    );
    // The host change has no client id: a 503 after sending is not resent blindly; the
    // client looked for a task it may have started instead.
    let posts = server.seen("POST", "/esxs");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].query, "action=add");
    assert_eq!(
        serde_json::from_str::<Value>(&posts[0].body).unwrap(),
        json!({"num_hosts": 3, "cluster_id": "c-1"})
    );
    // The task lookup fell back to the plain list when `$filter` was refused.
    let lookups = server.seen("GET", "/tasks");
    assert_eq!(lookups.len(), 2);
    assert!(lookups[0].query.contains("filter="), "{}", lookups[0].query);
    assert_eq!(lookups[1].query, "");
}

#[tokio::test]
async fn vsphere_reads_a_vm_only_when_the_list_lacks_cpu_or_memory() {
    let server = Scripted::start(|seen, _| match (seen.method.as_str(), seen.path.as_str()) {
        ("POST", "/rest/com/vmware/cis/session") => (200, json!({"value": "session-1"})),
        ("GET", "/rest/vcenter/vm") => (
            200,
            json!({"value": [
                {"vm": "vm-1", "name": "full", "power_state": "POWERED_ON", "cpu_count": 2, "memory_size_MiB": 1024},
                {"vm": "vm-2", "name": "partial", "power_state": "POWERED_OFF"},
                {"vm": "vm-3", "name": "fullish", "power_state": "POWERED_OFF", "cpu_count": 1, "memory_size_MiB": 512}
            ]}),
        ),
        ("GET", "/rest/vcenter/vm/vm-2") => (
            200,
            json!({"value": {"name": "partial", "cpu": {"count": 8}, "memory": {"size_MiB": 65536}}}),
        ),
        _ => (404, json!({"type": "com.vmware.vapi.std.errors.not_found", "value": {"messages": []}})),
    })
    .await;
    let mut config = ConnectionConfig::with_defaults(SystemType::Vsphere);
    config.url = server.base_url.clone();
    config.username = Some("admin".to_string());
    config.password = Some(SecretSource::Fixed(SecretValue::new(VSPHERE_PASSWORD)));
    let connection = Connection {
        name: "vc".to_string(),
        config,
        location: SourceLocation::default(),
    };
    let provider = providers::connect(&connection).unwrap();
    let names = ["full", "partial"].map(String::from);
    let live = provider.list(Kind::VirtualMachine, &names).await.unwrap();
    // `fullish` was not declared: the client keeps exact matches only.
    assert_eq!(live.len(), 2);
    let partial = live.iter().find(|o| o.name == "partial").unwrap();
    assert_eq!(
        partial.spec,
        json!({"power_state": "POWERED_OFF", "cpu_count": 8, "memory_size_MiB": 65536})
    );
    assert_eq!(server.seen("GET", "/rest/vcenter/vm/vm-2").len(), 1);
    assert_eq!(server.seen("GET", "/rest/vcenter/vm/vm-1").len(), 0);

    let login = &server.seen("POST", "/session")[0];
    let expected = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("admin:{VSPHERE_PASSWORD}")
        )
    );
    assert_eq!(login.headers["authorization"], expected.as_str());
    assert_eq!(login.headers["vmware-use-header-authn"], "true");
    let list = &server.seen("GET", "/rest/vcenter/vm")[0];
    assert_eq!(list.headers["vmware-api-session-id"], "session-1");
    assert_eq!(list.query, "filter.names=full&filter.names=partial");
}

#[tokio::test]
async fn validation_errors_carry_the_server_message_and_are_not_retried() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vmc_connection(&sim, |_| {})).unwrap();
    list_sddcs(&*provider).await;
    reset_counters(&sim).await;
    let mut one_host = two_host_spec();
    one_host["num_hosts"] = json!(1);
    let err = create_sddc(&*provider, "tiny", &one_host, uuid::Uuid::new_v4())
        .await
        .unwrap_err();
    match &err {
        ProviderError::Api {
            method,
            status,
            message,
            ..
        } => {
            assert_eq!((method.as_str(), *status), ("POST", 400));
            assert!(message.contains("minimum of 2 hosts"), "{message}");
        }
        other => panic!("expected the server's validation error, got {other}"),
    }
    // The POST once, then one read to make sure it did not create anything.
    assert_eq!(counters(&sim).await["vmc"], 2);
    assert!(list_sddcs(&*provider).await.is_empty());
}

#[tokio::test]
async fn a_busy_vm_is_retried_then_reported() {
    let sim = start_sim(|_| {}).await;
    let provider = providers::connect(&vsphere_connection(&sim, |c| c.max_retries = 1)).unwrap();
    let db = find(&*provider, Kind::VirtualMachine, "db-01").await;
    set_faults(&sim, json!({"busy_vms": ["db-01"]})).await;
    reset_counters(&sim).await;
    let mut desired = db.spec.value();
    desired["power_state"] = json!("POWERED_ON");
    let err = update(&*provider, &db, &desired, &["power_state"], false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("resource_busy"), "{err}");
    assert_eq!(counters(&sim).await["vsphere"], 2);
}

#[tokio::test]
async fn an_adopted_sddc_without_a_visible_task_is_waited_for_by_its_state() {
    let key = uuid::Uuid::new_v4();
    let id = key.to_string();
    let sddc = move |state: &str| json!({"id": id, "name": "prod", "sddc_state": state, "resource_config": {"region": "US_WEST_2"}});
    let server = Scripted::start(
        move |seen, n| match (seen.method.as_str(), seen.path.as_str()) {
            (_, "/csp/gateway/am/api/auth/api-tokens/authorize") => csp_reply(n),
            ("POST", path) if path.ends_with("/sddcs") => (
                400,
                json!({"status": 400, "path": path, "retryable": false, "error_code": "dup",
                "error_messages": ["An SDDC with this id already exists."]}),
            ),
            ("GET", path) if path.contains("/sddcs/") => {
                (200, sddc(if n < 2 { "DEPLOYING" } else { "READY" }))
            }
            _ => (200, json!([])),
        },
    )
    .await;
    let provider = providers::connect(&server.vmc(Some("org-1"))).unwrap();
    let task = task_of(
        create_sddc(&*provider, "prod", &two_host_spec(), key)
            .await
            .unwrap(),
    );
    assert_eq!(task.id, "");
    assert_eq!(task.object_id, key.to_string());
    assert!(matches!(
        provider.poll(&task).await.unwrap(),
        TaskStatus::Pending { .. }
    ));
    assert_eq!(provider.poll(&task).await.unwrap(), TaskStatus::Done);
    // The create was sent once: a 400 is not resent.
    assert_eq!(server.seen("POST", "/sddcs").len(), 1);
}

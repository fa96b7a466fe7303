//! The RaaS and Cloud Director clients against the embedded simulator over loopback: every
//! operation and auth path, paging with request counts, XSRF rotation, expiry mid-sequence,
//! lost replies that must not duplicate, and no secret in TRACE output.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sextant::model::{
    Address, Connection, ConnectionConfig, Kind, SecretSource, SecretValue, SourceLocation,
    SystemType,
};
use sextant::providers::raas::RaasProvider;
use sextant::providers::vcd::VcdProvider;
use sextant::providers::{
    CreateRequest, DeleteRequest, LiveObject, Outcome, Provider, ProviderError, UpdateRequest,
};
use sextant::sim::raas::RaasState;
use sextant::sim::vcd::VcdState;
use sextant::sim::{SimConfig, SimHandle};
use support::estate::{advance, counters, set_faults};

const PASSWORD: &str = "pw-Sextant-7f3a9c";

async fn start_sim() -> SimHandle {
    let handle = sextant::sim::start(SimConfig {
        time_scale: 1.0,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    handle.sim.state.lock().await.raas = RaasState::default_estate();
    handle
}

fn connection(system: SystemType, url: &str) -> ConnectionConfig {
    let mut config = ConnectionConfig::with_defaults(system);
    config.url = url.to_string();
    config.csp_url = url.to_string();
    config.max_retries = 2;
    config
}

fn onprem(url: &str) -> Connection {
    let mut config = connection(SystemType::Raas, url);
    config.username = Some("root".to_string());
    config.password = Some(SecretSource::Fixed(SecretValue::new(PASSWORD)));
    Connection {
        name: "salt".to_string(),
        config,
        location: SourceLocation::default(),
    }
}

fn cloud(url: &str, api_token: &str) -> Connection {
    let mut config = connection(SystemType::Raas, url);
    config.api_token = Some(SecretSource::Fixed(SecretValue::new(api_token)));
    Connection {
        name: "salt-cloud".to_string(),
        config,
        location: SourceLocation::default(),
    }
}

/// A live spec without its `access` (every object has some: the server's default roles).
fn without_access(spec: Value) -> Value {
    let mut spec = spec;
    if let Some(map) = spec.as_object_mut() {
        map.remove("access");
    }
    spec
}

fn find<'a>(objects: &'a [LiveObject], name: &str) -> &'a LiveObject {
    let found: Vec<_> = objects.iter().filter(|o| o.name == name).collect();
    assert_eq!(found.len(), 1, "exactly one `{name}` expected");
    found[0]
}

async fn create(
    provider: &dyn Provider,
    kind: Kind,
    name: &str,
    spec: Value,
) -> Result<Outcome, ProviderError> {
    let address = Address::new(kind, name);
    let request = CreateRequest {
        address: &address,
        spec: &spec,
        idempotency_key: uuid::Uuid::new_v4(),
        base_dir: Path::new("."),
    };
    provider.create(&request).await
}

fn uuid_of(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Done { attributes, .. } => attributes["uuid"].clone(),
        Outcome::Task(task) => panic!("unexpected task {task:?}"),
    }
}

/// How many requests the simulator counted for `key` (an API such as `raas`), wherever the
/// counters document nests it.
fn count_of(counters: &Value, key: &str) -> u64 {
    fn walk(value: &Value, key: &str) -> u64 {
        match value {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    if k == key {
                        v.as_u64().unwrap_or(0)
                    } else {
                        walk(v, key)
                    }
                })
                .sum(),
            _ => 0,
        }
    }
    walk(counters, key)
}

#[tokio::test]
async fn onprem_login_lists_the_seeded_estate_in_manifest_shape() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    let targets = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    let all = find(&targets, "All Minions");
    assert_eq!(all.id, sextant::providers::raas::ALL_MINIONS_UUID);
    assert_eq!(
        without_access(all.spec.value()),
        json!({"desc": "", "tgt": {"*": {"tgt_type": "compound", "tgt": "*"}}})
    );
    // Access is read from the listing's `metadata.auth.access`, roles with no permission
    // left out.
    assert_eq!(
        all.spec.value()["access"],
        json!({"Administrator": ["delete", "discover", "read", "write"],
               "Superuser": ["delete", "discover", "read", "write"],
               "User": ["discover", "read"]})
    );
    let jobs = provider.list(Kind::SaltJob, &[]).await.unwrap();
    let highstate = find(&jobs, "Highstate Linux");
    assert_eq!(highstate.spec.value()["target"], "Linux");
    assert_eq!(
        highstate.spec.value()["arg"],
        json!({"arg": [], "kwarg": {}})
    );
    let schedules = provider.list(Kind::SaltSchedule, &[]).await.unwrap();
    let nightly = find(&schedules, "Nightly highstate");
    assert_eq!(nightly.spec.value()["job"], "Highstate Linux");
    assert_eq!(nightly.spec.value()["target"], "Linux");
    assert_eq!(nightly.spec.value()["enabled"], true);
    assert_eq!(nightly.spec.value()["schedule"]["cron"], "0 2 * * *");
    assert_eq!(nightly.attributes["uuid"], nightly.id);
}

#[tokio::test]
async fn constructing_a_provider_never_contacts_the_server() {
    // Nothing listens on this port: `new` must still succeed.
    let mut conn = onprem("http://127.0.0.1:9");
    conn.config.max_retries = 0;
    let provider = RaasProvider::new(&conn).unwrap();
    let err = provider.list(Kind::SaltTarget, &[]).await.unwrap_err();
    assert!(matches!(err, ProviderError::Transport { .. }), "{err}");
}

#[tokio::test]
async fn bad_onprem_password_is_an_auth_error_without_the_password() {
    let sim = start_sim().await;
    let mut conn = onprem(&sim.base_url);
    conn.config.password = Some(SecretSource::Fixed(SecretValue::new("invalid-pw-123")));
    let provider = RaasProvider::new(&conn).unwrap();
    let err = provider.list(Kind::SaltJob, &[]).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ProviderError::Auth { .. }), "{text}");
    assert!(!text.contains("invalid-pw-123"), "{text}");
}

#[tokio::test]
async fn targets_jobs_and_schedules_round_trip_by_name() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    let tgt_spec =
        json!({"desc": "web servers", "tgt": {"*": {"tgt_type": "glob", "tgt": "web*"}}});
    let with_access = json!({"desc": "web servers", "tgt": {"*": {"tgt_type": "glob", "tgt": "web*"}},
        "access": {"Ops": ["discover", "read"], "User": []}});
    let target = create(&provider, Kind::SaltTarget, "web", with_access)
        .await
        .unwrap();
    let job_spec = json!({
        "desc": "apply web state", "cmd": "local", "fun": "state.apply",
        "arg": {"arg": ["web"], "kwarg": {"test": true}}, "masters": [], "target": "web"
    });
    let key = uuid::Uuid::new_v4();
    let address = Address::new(Kind::SaltJob, "deploy-web");
    let job = provider
        .create(&CreateRequest {
            address: &address,
            spec: &job_spec,
            idempotency_key: key,
            base_dir: Path::new("."),
        })
        .await
        .unwrap();
    // The job uuid is the client-chosen idempotency key.
    assert_eq!(uuid_of(&job), key.to_string());
    let sched_spec =
        json!({"job": "deploy-web", "target": "web", "schedule": {"minutes": 30}, "enabled": true});
    let schedule = create(
        &provider,
        Kind::SaltSchedule,
        "every-30",
        sched_spec.clone(),
    )
    .await
    .unwrap();

    let targets = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    let live_target = find(&targets, "web");
    assert_eq!(without_access(live_target.spec.value()), tgt_spec);
    // The roles named were saved after the create; the others kept their default access.
    assert_eq!(
        live_target.spec.value()["access"],
        json!({"Administrator": ["delete", "discover", "read", "write"],
               "Ops": ["discover", "read"],
               "Superuser": ["delete", "discover", "read", "write"]})
    );
    assert_eq!(live_target.id, uuid_of(&target));
    let jobs = provider.list(Kind::SaltJob, &[]).await.unwrap();
    assert_eq!(
        without_access(find(&jobs, "deploy-web").spec.value()),
        job_spec
    );
    let schedules = provider.list(Kind::SaltSchedule, &[]).await.unwrap();
    let live_schedule = find(&schedules, "every-30");
    assert_eq!(live_schedule.spec, sched_spec);
    assert_eq!(live_schedule.id, uuid_of(&schedule));

    // Update: only `desc` changes. The desired spec is whole, as the executor passes it.
    let address = Address::new(Kind::SaltTarget, "web");
    let desired = json!({"desc": "all web servers", "tgt": tgt_spec["tgt"]});
    provider
        .update(&UpdateRequest {
            address: &address,
            live: live_target,
            spec: &desired,
            changed: &["desc".to_string()],
        })
        .await
        .unwrap();
    let targets = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    let updated = find(&targets, "web");
    assert_eq!(updated.spec.value()["desc"], "all web servers");
    assert_eq!(updated.spec.value()["tgt"], tgt_spec["tgt"]);
    assert_ne!(updated.fingerprint, live_target.fingerprint);

    let address = Address::new(Kind::SaltSchedule, "every-30");
    let desired = json!({"job": "deploy-web", "schedule": {"minutes": 45}, "enabled": false});
    provider
        .update(&UpdateRequest {
            address: &address,
            live: live_schedule,
            spec: &desired,
            changed: &["enabled".to_string(), "schedule".to_string()],
        })
        .await
        .unwrap();
    let schedules = provider.list(Kind::SaltSchedule, &[]).await.unwrap();
    let updated = find(&schedules, "every-30");
    assert_eq!(updated.spec.value()["schedule"], json!({"minutes": 45}));
    assert_eq!(updated.spec.value()["enabled"], false);
    assert_eq!(updated.spec.value()["job"], "deploy-web");

    // Deleting the target while the schedule and job depend on it is refused (no force).
    let address = Address::new(Kind::SaltTarget, "web");
    let targets = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    let err = provider
        .delete(&DeleteRequest {
            address: &address,
            live: find(&targets, "web"),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("depend"), "{err}");

    // Reverse order works: schedule, job, target.
    for (kind, name) in [
        (Kind::SaltSchedule, "every-30"),
        (Kind::SaltJob, "deploy-web"),
        (Kind::SaltTarget, "web"),
    ] {
        let live = provider.list(kind, &[]).await.unwrap();
        let address = Address::new(kind, name);
        provider
            .delete(&DeleteRequest {
                address: &address,
                live: find(&live, name),
            })
            .await
            .unwrap();
        let after = provider.list(kind, &[]).await.unwrap();
        assert!(
            after.iter().all(|o| o.name != name),
            "{kind}/{name} still there"
        );
    }
}

#[tokio::test]
async fn a_reference_to_a_missing_target_is_a_clear_error() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    let err = create(
        &provider,
        Kind::SaltJob,
        "orphan",
        json!({"cmd": "local", "fun": "test.ping", "target": "nope"}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("`nope` does not exist"), "{err}");
}

#[tokio::test]
async fn exact_names_are_matched_although_the_server_filters_by_substring() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    for name in ["web-prod", "web"] {
        create(
            &provider,
            Kind::SaltTarget,
            name,
            json!({"tgt": {"*": {"tgt_type": "glob", "tgt": format!("{name}*")}}}),
        )
        .await
        .unwrap();
    }
    // "web" is a substring of "web-prod": the job must still point at "web".
    create(
        &provider,
        Kind::SaltJob,
        "ping-web",
        json!({"cmd": "local", "fun": "test.ping", "target": "web"}),
    )
    .await
    .unwrap();
    let jobs = provider.list(Kind::SaltJob, &[]).await.unwrap();
    assert_eq!(find(&jobs, "ping-web").spec.value()["target"], "web");
}

#[tokio::test]
async fn xsrf_rotation_and_session_expiry_mid_sequence_log_in_again() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    provider.list(Kind::SaltTarget, &[]).await.unwrap();

    reqwest::Client::new()
        .post(format!("{}/_sim/raas/rotate-xsrf", sim.base_url))
        .send()
        .await
        .unwrap();
    let after_rotation = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    assert!(after_rotation.iter().any(|t| t.name == "All Minions"));

    // Simulated time passes every JWT's expiry: the next call gets 401 and logs in again.
    advance(&sim, 2 * 3600).await;
    create(
        &provider,
        Kind::SaltTarget,
        "after-expiry",
        json!({"tgt": {"*": {"tgt_type": "glob", "tgt": "x*"}}}),
    )
    .await
    .unwrap();
    let targets = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    find(&targets, "after-expiry");
}

async fn save_jobs(provider: &RaasProvider, count: usize) {
    let addresses: Vec<Address> = (0..count)
        .map(|i| Address::new(Kind::SaltJob, format!("job-{i:05}")))
        .collect();
    let spec = json!({"cmd": "local", "fun": "test.ping", "desc": "bulk"});
    let requests: Vec<CreateRequest<'_>> = addresses
        .iter()
        .map(|address| CreateRequest {
            address,
            spec: &spec,
            idempotency_key: uuid::Uuid::new_v4(),
            base_dir: Path::new("."),
        })
        .collect();
    let results = provider.save_many(&requests).await.unwrap();
    assert_eq!(results.len(), count);
    for result in results {
        result.unwrap();
    }
}

#[tokio::test]
async fn batched_creates_save_access_in_two_more_batched_requests() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    provider.list(Kind::SaltTarget, &[]).await.unwrap();
    let addresses: Vec<Address> = (0..150)
        .map(|i| Address::new(Kind::SaltJob, format!("guarded-{i:03}")))
        .collect();
    let spec =
        json!({"fun": "test.ping", "access": {"Ops": ["read", "run"]}, "access_exclusive": true});
    let requests: Vec<CreateRequest<'_>> = addresses
        .iter()
        .map(|address| CreateRequest {
            address,
            spec: &spec,
            idempotency_key: uuid::Uuid::new_v4(),
            base_dir: Path::new("."),
        })
        .collect();
    let before = counters(&sim).await;
    for result in provider.save_many(&requests).await.unwrap() {
        result.unwrap();
    }
    let after = counters(&sim).await;
    // Per 100 jobs: one batch of saves, one of read-backs, one of access saves.
    assert_eq!(
        count_of(&after, "raas") - count_of(&before, "raas"),
        6,
        "{after}"
    );
    let jobs = provider.list(Kind::SaltJob, &[]).await.unwrap();
    for address in &addresses {
        assert_eq!(
            find(&jobs, &address.name).spec.value()["access"],
            json!({"Ops": ["read", "run"]}),
            "{}",
            address.name
        );
    }
}

#[tokio::test]
async fn batched_saves_and_a_paged_list_of_1500_jobs() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    provider.list(Kind::SaltTarget, &[]).await.unwrap();
    let before = counters(&sim).await;
    save_jobs(&provider, 1500).await;
    let after_saves = counters(&sim).await;
    // 1500 saves in batches of 100: 15 requests.
    assert_eq!(
        count_of(&after_saves, "raas") - count_of(&before, "raas"),
        15,
        "{after_saves}"
    );
    let jobs = provider.list(Kind::SaltJob, &[]).await.unwrap();
    assert_eq!(jobs.len(), 1502);
    let after_list = counters(&sim).await;
    // Page 0 (1000) + page 1; every job carries `tgt_name`, so no target listing.
    assert_eq!(
        count_of(&after_list, "raas") - count_of(&after_saves, "raas"),
        2,
        "{after_list}"
    );
}

#[tokio::test]
async fn a_server_that_caps_the_page_size_is_paged_by_its_own_limit() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    save_jobs(&provider, 1050).await;
    sim.sim.state.lock().await.raas.options.max_page_limit = 100;
    let before = counters(&sim).await;
    let jobs = provider.list(Kind::SaltJob, &[]).await.unwrap();
    let after = counters(&sim).await;
    assert_eq!(jobs.len(), 1052);
    let names: std::collections::BTreeSet<_> = jobs.iter().map(|j| j.name.clone()).collect();
    assert_eq!(names.len(), 1052, "no page fetched twice");
    // 1052 objects in pages of 100: 11 requests.
    assert_eq!(
        count_of(&after, "raas") - count_of(&before, "raas"),
        11,
        "{after}"
    );
}

/// Captures everything logged at TRACE level while a future runs.
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

/// A TRACE subscriber for the whole test binary, installed once. A scoped (`set_default`)
/// subscriber misses events whose callsites other test threads cached as uninteresting first,
/// which makes the capture flaky; a global one sees every event (other tests' lines land here
/// too, and must be free of secrets as well).
fn capture() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || Capture(writer.clone()))
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
            buffer
        })
        .clone()
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_appears_in_trace_output_or_errors() {
    let buffer = capture();
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    let outcome = create(
        &provider,
        Kind::SaltTarget,
        "traced",
        json!({"tgt": {"*": {"tgt_type": "glob", "tgt": "t*"}}}),
    )
    .await
    .unwrap();
    sim.sim.state.lock().await.raas.sessions.clear();
    let objects = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    let mut bad = onprem(&sim.base_url);
    bad.config.password = Some(SecretSource::Fixed(SecretValue::new("invalid-Zq81")));
    let err = RaasProvider::new(&bad)
        .unwrap()
        .list(Kind::SaltJob, &[])
        .await
        .unwrap_err();

    // Cloud RaaS: the CSP API token and the access tokens it was exchanged for.
    let cloud_provider = RaasProvider::new(&cloud(&sim.base_url, "csp-Trace-77q")).unwrap();
    let cloud_objects = cloud_provider.list(Kind::SaltJob, &[]).await.unwrap();

    // Cloud Director: the password session, the issued secret and its refresh grant.
    sim.sim.state.lock().await.vcd = VcdState::default_estate();
    let vcd = VcdProvider::new(&vcd_user(&sim.base_url, "System", "administrator")).unwrap();
    let issued = create(&vcd, Kind::VcdApiToken, "traced", json!({}))
        .await
        .unwrap();
    let (_, vcd_secret) = secret_of(&issued);
    let mut by_token = connection(SystemType::Vcd, &sim.base_url);
    by_token.api_token = Some(SecretSource::Fixed(SecretValue::new(vcd_secret.clone())));
    let tokens = VcdProvider::new(&Connection {
        name: "vcd-token".to_string(),
        config: by_token,
        location: SourceLocation::default(),
    })
    .unwrap()
    .list(Kind::VcdApiToken, &[])
    .await
    .unwrap();
    assert_eq!(tokens.len(), 1);

    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    assert!(text.contains("logged in to raas"), "tracing was captured");
    assert!(text.contains("TRACE"), "TRACE events were captured");
    let shown = format!(
        "{text} {outcome:?} {objects:?} {err} {err:?} {cloud_objects:?} {issued:?} {tokens:?}"
    );
    let state = sim.sim.state.lock().await;
    let mut secrets = vec![
        PASSWORD.to_string(),
        "invalid-Zq81".to_string(),
        "csp-Trace-77q".to_string(),
        vcd_secret,
        state.raas.xsrf_token.clone(),
    ];
    secrets.extend(state.csp.access_tokens.keys().cloned());
    assert!(secrets.len() > 5, "access tokens were issued");
    for secret in &secrets {
        assert!(!shown.contains(secret.as_str()), "a secret leaked");
    }
}

/// The simulator really dropped a committed reply (the fault was used up).
async fn assert_drop_consumed(handle: &SimHandle) {
    let faults: Value = reqwest::get(format!("{}/_sim/faults", handle.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["drop_next_mutations"], 0, "{faults}");
}

#[tokio::test]
async fn creates_whose_reply_is_dropped_after_commit_never_duplicate() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    provider.list(Kind::SaltTarget, &[]).await.unwrap();
    let cases = [
        (
            "gateway_timeout",
            Kind::SaltTarget,
            "dropped-target-504",
            json!({"tgt": {"*": {"tgt_type": "glob", "tgt": "d*"}}}),
        ),
        (
            "reset",
            Kind::SaltTarget,
            "dropped-target-reset",
            json!({"tgt": {"*": {"tgt_type": "glob", "tgt": "r*"}}}),
        ),
        (
            "gateway_timeout",
            Kind::SaltSchedule,
            "dropped-schedule",
            json!({"job": "Ping all minions", "target": "All Minions", "schedule": {"hours": 1}}),
        ),
        (
            "reset",
            Kind::SaltSchedule,
            "dropped-schedule-reset",
            json!({"job": "Ping all minions", "target": "All Minions", "schedule": {"hours": 2}}),
        ),
        // A job carries its own uuid: it is simply sent again.
        (
            "gateway_timeout",
            Kind::SaltJob,
            "dropped-job",
            json!({"cmd": "local", "fun": "test.ping"}),
        ),
        (
            "reset",
            Kind::SaltJob,
            "dropped-job-reset",
            json!({"cmd": "local", "fun": "test.ping"}),
        ),
    ];
    for (mode, kind, name, spec) in cases {
        set_faults(&sim, json!({"drop_next_mutations": 1, "drop_mode": mode})).await;
        let outcome = create(&provider, kind, name, spec).await.unwrap();
        assert_drop_consumed(&sim).await;
        let live = provider.list(kind, &[]).await.unwrap();
        assert_eq!(
            find(&live, name).id,
            uuid_of(&outcome),
            "{kind}/{name} created once"
        );
    }
}

#[tokio::test]
async fn cloud_login_uses_the_csp_bearer_and_survives_access_token_expiry() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&cloud(&sim.base_url, "csp-api-token-8d1e")).unwrap();
    let before = counters(&sim).await;
    let targets = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    find(&targets, "All Minions");
    let after = counters(&sim).await;
    // One exchange; one `POST /account/login/` (no GET) and one RPC.
    assert_eq!(
        count_of(&after, "csp") - count_of(&before, "csp"),
        1,
        "{after}"
    );
    assert_eq!(
        count_of(&after, "raas") - count_of(&before, "raas"),
        2,
        "{after}"
    );

    // Simulated time passes the access token's expiry (the client's own clock has not):
    // the next RPC gets 401 and the client exchanges the API token again, once.
    advance(&sim, 2 * 3600).await;
    let outcome = create(
        &provider,
        Kind::SaltTarget,
        "cloud-web",
        json!({"tgt": {"*": {"tgt_type": "glob", "tgt": "w*"}}}),
    )
    .await
    .unwrap();
    let targets = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    assert_eq!(find(&targets, "cloud-web").id, uuid_of(&outcome));
    let again = counters(&sim).await;
    assert_eq!(
        count_of(&again, "csp") - count_of(&after, "csp"),
        1,
        "{again}"
    );
}

#[tokio::test]
async fn a_refused_csp_api_token_is_an_auth_error() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&cloud(&sim.base_url, "invalid-token-55")).unwrap();
    let err = provider.list(Kind::SaltTarget, &[]).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ProviderError::Auth { .. }), "{text}");
    assert!(!text.contains("invalid-token-55"), "{text}");
}

/// A strict cloud RaaS written from seed `000`'s recipe: `GET /account/login` answers 401,
/// and the login is `POST /account/login/` with the Bearer alone (any XSRF header, cookie or
/// body is refused). A scripted server, so that every request can be checked exactly.
mod strict_cloud_raas {
    use super::*;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};

    pub type Log = Arc<Mutex<Vec<String>>>;

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub async fn start() -> (String, Log) {
        let log: Log = Arc::default();
        let record = |log: &Log, line: String| log.lock().unwrap().push(line);
        let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
        let app = axum::Router::new()
            .route(
                "/csp/gateway/am/api/auth/api-tokens/authorize",
                post(move |body: String| async move {
                    record(&l1, format!("csp {}", body.starts_with("api_token=")));
                    axum::Json(json!({"access_token": "at-1", "token_type": "bearer", "expires_in": 1800}))
                }),
            )
            .route(
                "/account/login",
                get(move || async move {
                    record(&l2, "GET /account/login".to_string());
                    StatusCode::UNAUTHORIZED
                }),
            )
            .route(
                "/account/login/",
                post(move |headers: HeaderMap, body: String| async move {
                    let xsrf = header(&headers, "x-xsrftoken").to_string();
                    let cookie = header(&headers, "cookie").to_string();
                    record(&l3, format!(
                        "POST /account/login/ xsrf={xsrf} cookie={cookie} body={} auth={}",
                        body.len(),
                        header(&headers, "authorization")
                    ));
                    if !xsrf.is_empty() || !cookie.is_empty() || !body.is_empty() {
                        return (StatusCode::FORBIDDEN, "'_xsrf' argument missing from POST").into_response();
                    }
                    if header(&headers, "authorization") != "Bearer at-1" {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    ([("set-cookie", "_xsrf=x2; Path=/"), ("x-xsrftoken", "x2")], "{}").into_response()
                }),
            )
            .route(
                "/rpc",
                post(move |headers: HeaderMap| async move {
                    record(&l4, format!(
                        "POST /rpc xsrf={} cookie={} auth={}",
                        header(&headers, "x-xsrftoken"),
                        header(&headers, "cookie"),
                        header(&headers, "authorization")
                    ));
                    axum::Json(json!({"riq": 1, "ret": {"count": 0, "limit": 1000, "results": []}, "error": null, "warnings": []}))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, log)
    }
}

#[tokio::test]
async fn a_cloud_login_posts_the_bearer_alone_and_never_gets_the_login_page() {
    let (url, log) = strict_cloud_raas::start().await;
    let provider = RaasProvider::new(&cloud(&url, "api-token-1")).unwrap();
    let targets = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    assert!(targets.is_empty());
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "csp true".to_string(),
            "POST /account/login/ xsrf= cookie= body=0 auth=Bearer at-1".to_string(),
            "POST /rpc xsrf=x2 cookie=_xsrf=x2 auth=Bearer at-1".to_string(),
        ]
    );
}

// ---- Cloud Director ---------------------------------------------------------------------

fn vcd_user(url: &str, org: &str, username: &str) -> Connection {
    let mut config = connection(SystemType::Vcd, url);
    config.org = org.to_string();
    config.username = Some(username.to_string());
    config.password = Some(SecretSource::Fixed(SecretValue::new(PASSWORD)));
    Connection {
        name: "vcd".to_string(),
        config,
        location: SourceLocation::default(),
    }
}

fn secret_of(outcome: &Outcome) -> (String, String) {
    match outcome {
        Outcome::Done {
            attributes,
            secret: Some(secret),
        } => (attributes["id"].clone(), secret.value.expose().to_string()),
        other => panic!("expected a secret, got {other:?}"),
    }
}

/// A scripted Cloud Director whose first registration reply is lost (after the client was
/// registered) and whose first jwt-bearer grant answers `invalid_grant`.
mod flaky_vcd {
    use super::*;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct Script {
        pub log: Vec<String>,
        logins: u32,
        registered: Option<String>,
        grants: u32,
    }

    pub type Shared = Arc<Mutex<Script>>;

    pub async fn start() -> (String, Shared) {
        let script: Shared = Arc::default();
        let (s1, s2, s3, s4) = (
            script.clone(),
            script.clone(),
            script.clone(),
            script.clone(),
        );
        let app = axum::Router::new()
            .route(
                "/cloudapi/1.0.0/sessions/provider",
                post(move |headers: HeaderMap| async move {
                    let mut s = s1.lock().unwrap();
                    s.logins += 1;
                    let accept = headers
                        .get("accept")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    s.log.push(format!("login {accept}"));
                    let jwt = format!("jwt-{}", s.logins);
                    ([("x-vmware-vcloud-access-token", jwt)], "{}")
                }),
            )
            .route(
                "/oauth/provider/register",
                post(move |body: axum::Json<Value>| async move {
                    let mut s = s2.lock().unwrap();
                    s.log.push(format!("register {}", body["client_name"]));
                    if s.registered.is_none() {
                        s.registered = Some(body["client_name"].as_str().unwrap().to_string());
                        return StatusCode::GATEWAY_TIMEOUT.into_response();
                    }
                    axum::Json(json!({"client_id": "c-2"})).into_response()
                }),
            )
            .route(
                "/cloudapi/1.0.0/tokens",
                get(
                    move |query: axum::extract::Query<HashMap<String, String>>| async move {
                        let s = s3.lock().unwrap();
                        let filter = query.get("filter").cloned().unwrap_or_default();
                        let mut s = s;
                        s.log.push(format!("list {filter}"));
                        let values: Vec<Value> = s
                            .registered
                            .iter()
                            .map(|name| {
                                json!({"id": "urn:vcloud:token:c-1", "name": name,
                            "owner": {"name": "administrator"}, "type": "REFRESH"})
                            })
                            .collect();
                        axum::Json(
                            json!({"resultTotal": values.len(), "pageCount": 1, "page": 1,
                        "pageSize": 128, "values": values}),
                        )
                    },
                ),
            )
            .route(
                "/oauth/provider/token",
                post(
                    move |form: axum::extract::Form<HashMap<String, String>>| async move {
                        let mut s = s4.lock().unwrap();
                        s.grants += 1;
                        s.log.push(format!(
                            "grant {} client_id={} assertion={}",
                            form.get("grant_type").cloned().unwrap_or_default(),
                            form.get("client_id").cloned().unwrap_or_default(),
                            form.get("assertion").cloned().unwrap_or_default()
                        ));
                        if s.grants == 1 {
                            return (
                                StatusCode::BAD_REQUEST,
                                axum::Json(json!({
                            "minorErrorCode": "invalid_grant", "message": "Invalid assertion",
                            "stackTrace": "x"})),
                            )
                                .into_response();
                        }
                        axum::Json(json!({"access_token": "at", "token_type": "Bearer",
                        "expires_in": 3600, "refresh_token": "vcd-secret-Q9w"}))
                        .into_response()
                    },
                ),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, script)
    }
}

#[tokio::test]
async fn vcd_lost_registration_is_adopted_and_invalid_grant_is_retried_once() {
    let (url, script) = flaky_vcd::start().await;
    let provider = VcdProvider::new(&vcd_user(&url, "System", "administrator")).unwrap();
    let outcome = create(&provider, Kind::VcdApiToken, "ci-token", json!({}))
        .await
        .unwrap();
    let (id, secret) = secret_of(&outcome);
    assert_eq!(id, "urn:vcloud:token:c-1");
    assert_eq!(secret, "vcd-secret-Q9w");
    let log = script.lock().unwrap().log.clone();
    let accept = "application/json;version=36.1";
    assert_eq!(
        log,
        vec![
            format!("login {accept}"),
            // No twin created since the plan read the tokens.
            "list (name==ci-token;owner.name==administrator;(type==PROXY,type==REFRESH))"
                .to_string(),
            "register \"ci-token\"".to_string(),
            "list (name==ci-token;owner.name==administrator;(type==PROXY,type==REFRESH))"
                .to_string(),
            format!("login {accept}"),
            "grant urn:ietf:params:oauth:grant-type:jwt-bearer client_id=c-1 assertion=jwt-2"
                .to_string(),
            format!("login {accept}"),
            "grant urn:ietf:params:oauth:grant-type:jwt-bearer client_id=c-1 assertion=jwt-3"
                .to_string(),
        ]
    );
    assert!(!format!("{outcome:?}").contains("vcd-secret-Q9w"));
}

async fn start_vcd_sim() -> SimHandle {
    let handle = start_sim().await;
    handle.sim.state.lock().await.vcd = VcdState::default_estate();
    handle
}

async fn vcd_names(provider: &VcdProvider) -> Vec<String> {
    let mut names: Vec<String> = provider
        .list(Kind::VcdApiToken, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn vcd_tokens_are_created_listed_used_and_revoked() {
    let sim = start_vcd_sim().await;
    let admin = VcdProvider::new(&vcd_user(&sim.base_url, "System", "administrator")).unwrap();
    let outcome = create(&admin, Kind::VcdApiToken, "ci", json!({"file": "ci.json"}))
        .await
        .unwrap();
    let (id, secret) = secret_of(&outcome);
    assert!(id.starts_with("urn:vcloud:token:"), "{id}");
    let live = admin
        .list(Kind::VcdApiToken, &["ci".to_string()])
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, id);
    assert_eq!(live[0].spec, json!({}));
    assert_eq!(live[0].attributes["id"], id);
    // The session JWT expires in simulated time: the next call logs in again.
    advance(&sim, 2 * 3600).await;
    let before = counters(&sim).await;
    assert_eq!(vcd_names(&admin).await, vec!["ci".to_string()]);
    let after = counters(&sim).await;
    // The refused list, a new session, the list again.
    assert_eq!(
        count_of(&after, "vcd") - count_of(&before, "vcd"),
        3,
        "{after}"
    );

    // The issued secret is an API token: a connection using it lists its owner's tokens.
    let mut with_token = connection(SystemType::Vcd, &sim.base_url);
    with_token.api_token = Some(SecretSource::Fixed(SecretValue::new(secret.clone())));
    let token_conn = Connection {
        name: "vcd-token".to_string(),
        config: with_token,
        location: SourceLocation::default(),
    };
    let by_token = VcdProvider::new(&token_conn).unwrap();
    assert_eq!(vcd_names(&by_token).await, vec!["ci".to_string()]);
    // An API-token session cannot create tokens.
    let err = create(&by_token, Kind::VcdApiToken, "nope", json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("username"), "{err}");

    let address = Address::new(Kind::VcdApiToken, "ci");
    let outcome = admin
        .delete(&DeleteRequest {
            address: &address,
            live: &live[0],
        })
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Done { .. }));
    assert!(vcd_names(&admin).await.is_empty());
    // The revoked secret no longer works.
    let err = VcdProvider::new(&token_conn)
        .unwrap()
        .list(Kind::VcdApiToken, &[])
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ProviderError::Auth { .. }), "{text}");
    assert!(!text.contains(&secret), "{text}");
}

#[tokio::test]
async fn vcd_tenant_tokens_page_and_revoke_through_a_task() {
    let sim = start_vcd_sim().await;
    {
        let mut state = sim.sim.state.lock().await;
        state.vcd.options.max_page_size = 10;
        state.vcd.options.revoke_status = 202;
    }
    let orgadmin = VcdProvider::new(&vcd_user(&sim.base_url, "acme", "orgadmin")).unwrap();
    for i in 0..25 {
        create(&orgadmin, Kind::VcdApiToken, &format!("t{i:02}"), json!({}))
            .await
            .unwrap();
    }
    // The System administrator sees everyone's tokens but lists only its own.
    let admin = VcdProvider::new(&vcd_user(&sim.base_url, "System", "administrator")).unwrap();
    create(&admin, Kind::VcdApiToken, "t00", json!({}))
        .await
        .unwrap();
    assert_eq!(vcd_names(&admin).await, vec!["t00".to_string()]);

    let before = counters(&sim).await;
    let live = orgadmin.list(Kind::VcdApiToken, &[]).await.unwrap();
    let after = counters(&sim).await;
    assert_eq!(live.len(), 25);
    // 25 tokens in pages the server capped at 10: 3 requests.
    assert_eq!(
        count_of(&after, "vcd") - count_of(&before, "vcd"),
        3,
        "{after}"
    );

    let token = live.iter().find(|t| t.name == "t07").unwrap();
    let address = Address::new(Kind::VcdApiToken, "t07");
    let outcome = orgadmin
        .delete(&DeleteRequest {
            address: &address,
            live: token,
        })
        .await
        .unwrap();
    let Outcome::Task(task) = outcome else {
        panic!("a 202 revoke is a task")
    };
    assert_eq!(
        orgadmin.poll(&task).await.unwrap(),
        sextant::providers::TaskStatus::Done
    );
    let names = vcd_names(&orgadmin).await;
    assert_eq!(names.len(), 24);
    assert!(!names.contains(&"t07".to_string()));
}

#[tokio::test]
async fn a_batch_whose_reply_is_lost_is_settled_without_duplicates() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    provider.list(Kind::SaltTarget, &[]).await.unwrap();
    let addresses: Vec<Address> = ["b1", "b2", "b3"]
        .iter()
        .map(|name| Address::new(Kind::SaltTarget, *name))
        .collect();
    let spec = json!({"tgt": {"*": {"tgt_type": "glob", "tgt": "b*"}}});
    let requests: Vec<CreateRequest<'_>> = addresses
        .iter()
        .map(|address| CreateRequest {
            address,
            spec: &spec,
            idempotency_key: uuid::Uuid::new_v4(),
            base_dir: Path::new("."),
        })
        .collect();
    set_faults(&sim, json!({"drop_next_mutations": 1})).await;
    let results = provider.save_many(&requests).await.unwrap();
    assert_drop_consumed(&sim).await;
    let live = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    for (address, result) in addresses.iter().zip(results) {
        let outcome = result.unwrap();
        assert_eq!(find(&live, &address.name).id, uuid_of(&outcome));
    }
}

#[tokio::test]
async fn concurrent_callers_share_one_login() {
    let sim = start_sim().await;
    // On-prem: one GET and one POST of `/account/login`; cloud: one POST; then the 8 RPCs.
    for (conn, logins) in [
        (onprem(&sim.base_url), 2),
        (cloud(&sim.base_url, "csp-shared-1"), 1),
    ] {
        let provider = Arc::new(RaasProvider::new(&conn).unwrap());
        let before = counters(&sim).await;
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let provider = provider.clone();
                tokio::spawn(async move { provider.list(Kind::SaltTarget, &[]).await })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        let after = counters(&sim).await;
        assert_eq!(
            count_of(&after, "raas") - count_of(&before, "raas"),
            logins + 8,
            "{after}"
        );
        assert!(
            count_of(&after, "csp") - count_of(&before, "csp") <= 1,
            "{after}"
        );
    }
}

#[tokio::test]
async fn cloud_sessions_survive_xsrf_rotation() {
    let sim = start_sim().await;
    let provider = RaasProvider::new(&cloud(&sim.base_url, "csp-rotate-2")).unwrap();
    provider.list(Kind::SaltJob, &[]).await.unwrap();
    reqwest::Client::new()
        .post(format!("{}/_sim/raas/rotate-xsrf", sim.base_url))
        .send()
        .await
        .unwrap();
    let before = counters(&sim).await;
    let jobs = provider.list(Kind::SaltJob, &[]).await.unwrap();
    find(&jobs, "Ping all minions");
    let after = counters(&sim).await;
    // The refused RPC, a new login (which hands out the new token), the RPC again; no new
    // exchange.
    assert_eq!(
        count_of(&after, "raas") - count_of(&before, "raas"),
        3,
        "{after}"
    );
    assert_eq!(
        count_of(&after, "csp") - count_of(&before, "csp"),
        0,
        "{after}"
    );
}

#[tokio::test]
async fn tenant_api_tokens_use_the_tenant_grant_url() {
    let sim = start_vcd_sim().await;
    let orgadmin = VcdProvider::new(&vcd_user(&sim.base_url, "acme", "orgadmin")).unwrap();
    let (_, secret) = secret_of(
        &create(&orgadmin, Kind::VcdApiToken, "tenant-ci", json!({}))
            .await
            .unwrap(),
    );
    let mut config = connection(SystemType::Vcd, &sim.base_url);
    config.org = "acme".to_string();
    config.api_token = Some(SecretSource::Fixed(SecretValue::new(secret)));
    let by_token = VcdProvider::new(&Connection {
        name: "acme-token".to_string(),
        config: config.clone(),
        location: SourceLocation::default(),
    })
    .unwrap();
    assert_eq!(vcd_names(&by_token).await, vec!["tenant-ci".to_string()]);
    // The same token at the provider URL belongs to the wrong org and is refused.
    config.org = "System".to_string();
    let wrong_org = VcdProvider::new(&Connection {
        name: "wrong-org".to_string(),
        config,
        location: SourceLocation::default(),
    })
    .unwrap();
    let err = wrong_org.list(Kind::VcdApiToken, &[]).await.unwrap_err();
    assert!(matches!(err, ProviderError::Auth { .. }), "{err}");
}

/// A VCF 9 "Salt for VCF Components" server: only the `/raas/...` paths exist.
#[tokio::test]
async fn the_vcf_raas_paths_are_used_when_the_plain_ones_are_missing() {
    use axum::routing::{get, post};
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let app = axum::Router::new()
        .route(
            "/raas/account/login",
            get(move || async move {
                l1.lock()
                    .unwrap()
                    .push("GET /raas/account/login".to_string());
                ([("set-cookie", "_xsrf=v1; Path=/")], "{}")
            })
            .post(move |body: axum::Json<Value>| async move {
                l2.lock().unwrap().push(format!(
                    "POST /raas/account/login config_name={}",
                    body["config_name"]
                ));
                axum::Json(json!({"jwt": "h.e30.s", "attributes": {"username": "root"}}))
            }),
        )
        .route(
            "/raas/rpc",
            post(move |headers: axum::http::HeaderMap| async move {
                let auth = headers["authorization"].to_str().unwrap().to_string();
                l3.lock().unwrap().push(format!("POST /raas/rpc {auth}"));
                axum::Json(
                    json!({"ret": {"count": 0, "limit": 1000, "results": []}, "error": null}),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let provider = RaasProvider::new(&onprem(&url)).unwrap();
    assert!(
        provider
            .list(Kind::SaltTarget, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "GET /raas/account/login".to_string(),
            "POST /raas/account/login config_name=\"internal\"".to_string(),
            "POST /raas/rpc JWT h.e30.s".to_string(),
        ]
    );
}

#[tokio::test]
async fn an_html_login_page_instead_of_json_means_logging_in_again() {
    let sim = start_sim().await;
    sim.sim
        .state
        .lock()
        .await
        .raas
        .options
        .html_login_page_when_unauthenticated = true;
    let provider = RaasProvider::new(&onprem(&sim.base_url)).unwrap();
    provider.list(Kind::SaltTarget, &[]).await.unwrap();
    advance(&sim, 2 * 3600).await;
    let before = counters(&sim).await;
    let targets = provider.list(Kind::SaltTarget, &[]).await.unwrap();
    find(&targets, "All Minions");
    let after = counters(&sim).await;
    // The login page, a new XSRF bootstrap and login, the RPC again.
    assert_eq!(
        count_of(&after, "raas") - count_of(&before, "raas"),
        4,
        "{after}"
    );
}

/// A RaaS whose `get_jobs` serves at most 100 results but echoes the requested `limit`, and
/// whose job count can change between pages.
mod echoing_raas {
    use super::*;
    use axum::routing::{get, post};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct Server {
        pub url: String,
        pub total: Arc<AtomicU64>,
        pub pages: Arc<Mutex<Vec<(u64, u64)>>>,
    }

    pub async fn start() -> Server {
        let total = Arc::new(AtomicU64::new(250));
        let pages: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
        let (t, p) = (total.clone(), pages.clone());
        let app = axum::Router::new()
            .route(
                "/account/login",
                get(|| async { ([("set-cookie", "_xsrf=e1; Path=/")], "{}") })
                    .post(|| async { axum::Json(json!({"jwt": "h.e30.s"})) }),
            )
            .route(
                "/rpc",
                post(move |body: axum::Json<Value>| async move {
                    let limit = body["kwarg"]["limit"].as_u64().unwrap();
                    let page = body["kwarg"]["page"].as_u64().unwrap();
                    p.lock().unwrap().push((page, limit));
                    let count = t.load(Ordering::SeqCst);
                    let size = limit.min(100);
                    let results: Vec<Value> = (page * size..((page + 1) * size).min(count))
                        .map(|i| json!({"uuid": format!("u{i}"), "name": format!("j{i}")}))
                        .collect();
                    // One more job appears after the first page was served.
                    if page == 0 && count == 251 {
                        t.store(252, Ordering::SeqCst);
                    }
                    axum::Json(json!({"ret": {"count": count, "limit": limit, "results": results}, "error": null}))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { url, total, pages }
    }
}

#[tokio::test]
async fn pages_follow_what_the_server_served_and_a_changing_count_fails_loudly() {
    let server = echoing_raas::start().await;
    let provider = RaasProvider::new(&onprem(&server.url)).unwrap();
    let jobs = provider.list(Kind::SaltJob, &[]).await.unwrap();
    assert_eq!(jobs.len(), 250);
    let mut pages = server.pages.lock().unwrap().clone();
    pages.sort();
    assert_eq!(pages, vec![(0, 1000), (1, 100), (2, 100)]);

    server.total.store(251, std::sync::atomic::Ordering::SeqCst);
    let err = provider.list(Kind::SaltJob, &[]).await.unwrap_err();
    assert!(err.to_string().contains("changed while paging"), "{err}");
}

#[tokio::test]
async fn a_vcd_registration_whose_reply_is_dropped_is_not_registered_twice() {
    let sim = start_vcd_sim().await;
    let admin = VcdProvider::new(&vcd_user(&sim.base_url, "System", "administrator")).unwrap();
    admin.list(Kind::VcdApiToken, &[]).await.unwrap();
    for (mode, name) in [("gateway_timeout", "lost-504"), ("reset", "lost-reset")] {
        set_faults(&sim, json!({"drop_next_mutations": 1, "drop_mode": mode})).await;
        let outcome = create(&admin, Kind::VcdApiToken, name, json!({}))
            .await
            .unwrap();
        assert_drop_consumed(&sim).await;
        let (id, secret) = secret_of(&outcome);
        assert!(!secret.is_empty());
        let live = admin
            .list(Kind::VcdApiToken, &[name.to_string()])
            .await
            .unwrap();
        assert_eq!(live.len(), 1, "{name} registered once");
        assert_eq!(live[0].id, id);
    }
    assert_eq!(sim.sim.state.lock().await.vcd.tokens.len(), 2);
}

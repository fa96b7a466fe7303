//! An in-memory model and live state of `n` resources for the planner benchmarks: target
//! groups and saved jobs spread over them, 1% of the jobs drifted.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use sextant::model::Model;
use sextant::plan;

fn target_name(i: usize) -> String {
    format!("tgt-{i:05}")
}

fn job_name(i: usize) -> String {
    format!("job-{i:06}")
}

/// `n` resources: `targets` target groups and jobs spread over them; 1% of jobs drift.
pub fn build(n: usize, targets: usize) -> (Model, plan::LiveState) {
    use sextant::model::{Address, Ensure, Kind, Lifecycle, Resource, Timeouts};
    use sextant::providers::{LiveObject, LiveStatus};
    let targets = targets.max(1);
    let mut model = Model::default();
    let mut live = plan::LiveState::default();
    let mut listed_targets = Vec::new();
    let mut listed_jobs = Vec::new();
    let resource = |address: Address, spec: Value, depends_on: Vec<Address>| Resource {
        address,
        connection: "salt".into(),
        depends_on,
        ensure: Ensure::Present,
        lifecycle: Lifecycle::default(),
        timeouts: Timeouts::default(),
        spec: spec.into(),
        references: Vec::new(),
        named: Vec::new(),
        previous_names: Vec::new(),
        base_dir: Arc::from(Path::new("")),
        location: Default::default(),
    };
    let object = |kind: Kind, name: String, spec: Value| LiveObject {
        kind,
        id: format!("id-{name}"),
        attributes: sextant::providers::Attributes::from([(
            "uuid".to_string(),
            format!("id-{name}"),
        )]),
        fingerprint: format!("fp-{name}"),
        name,
        spec: spec.into(),
        status: LiveStatus::Ready,
    };
    for i in 0..targets {
        let spec = json!({"desc": format!("target {i}"), "tgt": {"*": {"tgt_type": "glob", "tgt": format!("web-{i}-*")}}});
        let address = Address::new(Kind::SaltTarget, target_name(i));
        listed_targets.push(object(Kind::SaltTarget, target_name(i), spec.clone()));
        model
            .resources
            .insert(address.clone(), resource(address, spec, Vec::new()));
    }
    for i in 0..n.saturating_sub(targets) {
        let target = target_name(i % targets);
        let spec = json!({"desc": format!("job {i}"), "cmd": "local", "fun": "test.ping", "target": target});
        let mut live_spec = spec.clone();
        if i % 100 == 0 {
            live_spec["desc"] = json!("changed by hand");
        }
        let address = Address::new(Kind::SaltJob, job_name(i));
        listed_jobs.push(object(Kind::SaltJob, job_name(i), live_spec));
        model.resources.insert(
            address.clone(),
            resource(address, spec, vec![Address::new(Kind::SaltTarget, target)]),
        );
    }
    let names = |kind: Kind| -> Vec<String> {
        model
            .resources
            .keys()
            .filter(|a| a.kind == kind)
            .map(|a| a.name.clone())
            .collect()
    };
    live.match_listing(Kind::SaltTarget, &names(Kind::SaltTarget), listed_targets);
    live.match_listing(Kind::SaltJob, &names(Kind::SaltJob), listed_jobs);
    (model, live)
}

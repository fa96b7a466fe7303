//! `sextant export` through the real binary against the simulator: every kind round trips
//! (export, then plan over the exported files shows no changes), undeclared objects are
//! exported too, secrets never are, and `--kind` is checked against the connection's system.

mod support;

use std::path::{Path, PathBuf};

use sextant::sim::SimConfig;
use support::estate::{Estate, Run, SECRETS, command_in};

/// A fast simulator keeping its state beside `conn/connections.yaml`.
async fn start() -> Estate {
    let estate = Estate::empty(|dir| SimConfig {
        time_scale: 7200.0,
        state_file: Some(dir.join("sim-state.json")),
        ..SimConfig::default()
    })
    .await;
    estate.write_file(
        "conn/connections.yaml",
        &support::connections(&estate.sim.base_url, "salt"),
    );
    estate
}

/// One object of every kind, with fields that need canonical spelling (`us-west-2`).
const ESTATE: &str = r#"kind: Sddc
name: adopt-me
spec:
  region: us-west-2
  provider: AWS
  sddc_type: 1NODE
  num_hosts: 1
  host_instance_type: i3.metal
  deployment_type: SingleAZ
  vpc_cidr: 10.2.0.0/16
  account_link: { delay: true }
---
kind: SaltTarget
name: "web: servers"
spec:
  desc: "Web tier #1"
  tgt: { "*": { tgt_type: glob, tgt: "web-*" } }
---
kind: SaltJob
name: Apply web state
spec:
  desc: "yes"
  cmd: local
  fun: state.apply
  arg: { arg: ["1", 2, true], kwarg: { mods: nginx, test: true } }
  target: "web: servers"
---
kind: SaltSchedule
name: Nightly
spec:
  job: Apply web state
  target: "web: servers"
  schedule: { cron: "0 3 * * *", timezone: UTC }
  enabled: false
---
kind: VcdApiToken
name: ci-pipeline
spec:
  file: .secrets/ci-pipeline.json
---
kind: VirtualMachine
name: web-01
spec:
  power_state: POWERED_OFF
  cpu_count: 3
  memory_size_MiB: 2048
  allow_power_cycle: true
"#;

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_round_trips_through_export_then_plans_no_changes() {
    let estate = start().await;
    estate.write_file("declared/estate.yaml", ESTATE);
    estate
        .ok(&["apply", "--auto-approve", "conn", "declared"])
        .await;

    for connection in ["vmc", "salt", "vcd", "vcenter"] {
        estate
            .ok(&[
                "export",
                "--connection",
                connection,
                "--out",
                "adopted",
                "conn",
            ])
            .await;
    }
    let expected: [(&str, &[&str]); 6] = [
        ("sddc.yaml", &["name: adopt-me", "region: US_WEST_2"]),
        ("salt-target.yaml", &["web: servers", "All Minions"]),
        ("salt-job.yaml", &["name: Apply web state", "mods: nginx"]),
        ("salt-schedule.yaml", &["name: Nightly", "enabled: false"]),
        (
            "vcd-api-token.yaml",
            &[
                "name: ci-pipeline",
                "file: .secrets/ci-pipeline.json",
                "cannot be exported",
            ],
        ),
        (
            "virtual-machine.yaml",
            &[
                "name: web-01",
                "power_state: POWERED_OFF",
                "cpu_count: 3",
                "memory_size_MiB: 2048",
            ],
        ),
    ];
    let mut texts = Vec::new();
    for (file, needles) in expected {
        let text = estate.read(&format!("adopted/{file}"));
        for needle in needles {
            assert!(text.contains(needle), "{file} lacks `{needle}`:\n{text}");
        }
        for (_, secret) in SECRETS {
            assert!(!text.contains(secret), "{file} holds a secret");
        }
        texts.push(text);
    }
    // Undeclared objects are exported too: the simulator's seeded VMs and salt targets.
    assert!(texts[5].contains("name: db-01"), "{}", texts[5]);

    // The exported files load and describe the estate exactly.
    let model =
        sextant::manifest::load(&[estate.path().join("conn"), estate.path().join("adopted")])
            .unwrap_or_else(|d| panic!("{}", d.render(false)));
    for kind in [
        "Sddc",
        "SaltTarget",
        "SaltJob",
        "SaltSchedule",
        "VcdApiToken",
        "VirtualMachine",
    ] {
        assert!(
            model.resources.keys().any(|a| a.kind.as_str() == kind),
            "no {kind} exported"
        );
    }
    let plan = estate
        .ok(&["plan", "--detailed-exitcode", "conn", "adopted"])
        .await;
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);

    // Exporting again writes the same bytes.
    estate
        .ok(&["export", "--connection", "salt", "--out", "again", "conn"])
        .await;
    for file in ["salt-target.yaml", "salt-job.yaml", "salt-schedule.yaml"] {
        assert_eq!(
            estate.read(&format!("again/{file}")),
            estate.read(&format!("adopted/{file}")),
            "{file}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kind_filter_stdout_and_errors() {
    let estate = start().await;
    let run = estate
        .ok(&[
            "export",
            "--connection",
            "vcenter",
            "--kind",
            "VirtualMachine",
            "conn",
        ])
        .await;
    let documents: Vec<&str> = run.stdout.split("\n---\n").collect();
    assert!(documents.len() >= 2, "{}", run.stdout);
    let names: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("name: "))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(run.stdout.contains("memory_size_MiB: "), "{}", run.stdout);

    // The kind must belong to the connection's system.
    let wrong = estate
        .run(&[
            "export",
            "--connection",
            "vcenter",
            "--kind",
            "SaltJob",
            "conn",
        ])
        .await;
    sextant_snapshot!("export-kind-of-another-system", wrong);
    let unknown = estate
        .run(&["export", "--connection", "nope", "conn"])
        .await;
    sextant_snapshot!("export-unknown-connection", unknown);

    // A kind with no objects removes its stale file.
    let stale = estate.path().join("out/vcd-api-token.yaml");
    estate.write_file(
        "out/vcd-api-token.yaml",
        "kind: VcdApiToken\nname: old\nspec: {file: x}\n",
    );
    estate
        .ok(&["export", "--connection", "vcd", "--out", "out", "conn"])
        .await;
    assert!(!PathBuf::from(&stale).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn export_with_sim_uses_the_embedded_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let connections = quickstart.join("connections.yaml");
    let output = command_in(
        dir.path(),
        &[
            "export",
            "--sim",
            "--connection",
            "vcenter",
            connections.to_str().unwrap(),
        ],
    )
    .output()
    .await
    .unwrap();
    sextant_snapshot!("export-sim-vcenter", Run::of(output));
}

#[tokio::test(flavor = "multi_thread")]
async fn vms_past_the_listing_cap_are_listed_by_power_state_with_a_warning() {
    let estate = start().await;
    let client = reqwest::Client::new();
    let set_cap = |cap: u64| {
        let client = client.clone();
        let url = format!("{}/_sim/options", estate.sim.base_url);
        async move {
            let response = client
                .put(url)
                .json(&serde_json::json!({ "vsphere_api_list_cap": cap }))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
        }
    };
    // Three VMs, two of them on: a cap of 2 refuses the full listing but not each state.
    set_cap(2).await;
    let run = estate
        .ok(&["export", "--connection", "vcenter", "conn"])
        .await;
    for name in ["db-01", "web-01", "web-02"] {
        assert!(
            run.stdout.contains(&format!("name: {name}\n")),
            "{}",
            run.stdout
        );
    }
    assert!(
        run.stderr.contains("more VMs than one listing returns"),
        "{}",
        run.stderr
    );

    set_cap(1).await;
    let run = estate
        .run(&["export", "--connection", "vcenter", "conn"])
        .await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("power state `POWERED_ON`"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

//! Regressions of cli.

#[allow(unused_imports)]
use crate::support::estate::{Estate, Run};

/// A live Salt job whose text holds `${` (a shell variable in its description) used to be
/// exported as written, which the loader then read as a broken `${Kind/name.attr}`
/// reference: the adopted manifests failed to load. Export now escapes it as `$${`, and plan
/// writes the escape out again, so the adopted estate plans `No changes.`. A job's `desc` is a
/// free string (`save_job(name, desc, …)`, /work/shared/api/raas.md, "Saved jobs").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_text_with_a_dollar_brace_loads_and_plans_no_changes() {
    let estate = Estate::start(240.0).await;
    estate.write(
        "job.yaml",
        "kind: SaltJob\nname: home report\nspec:\n  fun: cmd.run\n  desc: \"lists $${HOME} and $${PATH}\"\n",
    );
    let apply = estate.run(&["apply", "--auto-approve", "manifests"]).await;
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let export = estate
        .run(&[
            "export",
            "--connection",
            "salt",
            "--kind",
            "SaltJob",
            "--out",
            "adopted",
            "manifests/connections.yaml",
        ])
        .await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    let adopted = std::fs::read_to_string(estate.path().join("adopted/salt-job.yaml")).unwrap();
    assert!(adopted.contains("lists $${HOME} and $${PATH}"), "{adopted}");
    let plan: Run = estate
        .run(&["plan", "manifests/connections.yaml", "adopted"])
        .await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
}

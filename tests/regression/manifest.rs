//! Regressions of the manifest language: messages that pointed the user the wrong way.

use crate::support::estate::run_in;

/// A `${Connection/x.attr}` reference used to say the connection "is not declared" even when
/// it was: the user was sent to declare what already existed.
#[tokio::test]
async fn a_reference_to_a_declared_connection_says_connections_have_no_attributes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.yaml"),
        "kind: Connection\nname: salt\nspec: { type: raas, url: https://salt.example.com, api_token: { env: T } }\n---\nkind: SaltJob\nname: j\nspec:\n  fun: test.ping\n  desc: \"${Connection/salt.url}\"\n",
    )
    .unwrap();
    let run = run_in(dir.path(), &["validate", "m.yaml"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "m.yaml:9:9: `spec.desc`: reference `${Connection/salt.url}` names a connection; references read the attributes of managed objects only"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("not declared"), "{}", run.stderr);
}

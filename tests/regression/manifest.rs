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
            "m.yaml:9:9: `spec.desc`: reference `${Connection/salt.url}` names a `Connection`, which configures sextant; references read the attributes of managed objects only"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("not declared"), "{}", run.stderr);
}

/// A `Lock` (or `Environment`) named by `depends_on` or a reference used to be "an unknown
/// kind", although the same manifests declare it.
#[tokio::test]
async fn a_lock_named_by_a_resource_is_configuration_not_an_unknown_kind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.yaml"),
        "kind: Lock\nname: shared\nspec: { postgres: { url: { env: SEXTANT_T_LOCK } } }\n---\nkind: Connection\nname: salt\nspec: { type: raas, url: https://salt.example.com, api_token: { env: T } }\n---\nkind: SaltJob\nname: j\ndepends_on: [Lock/shared]\nspec:\n  fun: test.ping\n  desc: \"${Lock/shared.url}\"\n",
    )
    .unwrap();
    let run = run_in(dir.path(), &["validate", "m.yaml"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    for expected in [
        "m.yaml:11:14: `depends_on[0]`: a resource cannot depend on a `Lock`, which configures sextant",
        "m.yaml:14:9: `spec.desc`: reference `${Lock/shared.url}` names a `Lock`, which configures sextant",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("unknown kind"), "{}", run.stderr);
}

//! One snapshot of a run of the binary: exit code, stdout and stderr, through filters every
//! test shares, so a snapshot holds no port, temporary path or duration that changes between
//! runs. Use [`sextant_snapshot!`](crate::sextant_snapshot).

use super::estate::Run;

/// `(pattern, replacement)`: the checkout becomes `[ROOT]`, loopback URLs `[URL]`, temporary
/// directories `[TMP]` and elapsed times (`01m20s`, `1h02m03s`) `[ELAPSED]`.
pub fn filters() -> Vec<(String, String)> {
    let tmp = std::env::temp_dir();
    let tmp = regex::escape(tmp.to_str().unwrap_or("/tmp").trim_end_matches('/'));
    [
        (regex::escape(env!("CARGO_MANIFEST_DIR")), "[ROOT]"),
        (
            r"(?:https?://)?(?:127\.0\.0\.1|localhost|\[::1\]):[0-9]+".to_string(),
            "[URL]",
        ),
        (format!(r"{tmp}/\.?tmp[A-Za-z0-9_]+"), "[TMP]"),
        (
            r"\b(?:[0-9]+h)?[0-9]{2}m[0-9]{2}s\b".to_string(),
            "[ELAPSED]",
        ),
    ]
    .into_iter()
    .map(|(pattern, replacement)| (pattern, replacement.to_string()))
    .collect()
}

/// The text a snapshot records.
pub fn render(run: &Run) -> String {
    format!(
        "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        run.code, run.stdout, run.stderr
    )
}

/// Snapshots a [`Run`](crate::support::estate::Run) as `tests/snapshots/<name>.snap`
/// (exit code, stdout, stderr) through the shared [`filters`].
#[macro_export]
macro_rules! sextant_snapshot {
    ($name:expr, $run:expr $(,)?) => {{
        let filters = $crate::support::snapshot::filters();
        let filters: Vec<(&str, &str)> = filters
            .iter()
            .map(|(pattern, replacement)| (pattern.as_str(), replacement.as_str()))
            .collect();
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
            prepend_module_to_snapshot => false,
            filters => filters,
        }, {
            insta::assert_snapshot!(
                $name,
                $crate::support::snapshot::render(&$run),
                stringify!($run)
            );
        });
    }};
}

//! Renderings of a [`DriftReport`]: text (readable without colour), Markdown (a comment or a
//! job summary) and JUnit XML (GitLab and GitHub test reporters). Each is a function of the
//! report alone, so `sextant show` of a saved report prints what the run printed. No
//! timestamps, no durations: an unchanged estate renders byte-identical.

use std::fmt::Write as _;

use serde_json::Value;

use super::{DriftItem, DriftReport, FieldDiff, UnmanagedItem};
use crate::model::shown;
use crate::plan::render::MARKDOWN_LIMIT;

/// Which side of a field change is which, per section.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Drifted,
    Pending,
}

/// Plain text: one section per finding, then the summary line.
pub fn text(report: &DriftReport) -> String {
    let mut out = String::new();
    match (&report.baseline_ref, &report.baseline) {
        (Some(reference), Some(commit)) => {
            let _ = writeln!(
                out,
                "Drift against the baseline `{}` (commit {commit}).",
                shown::visible(reference)
            );
        }
        _ => out.push_str(
            "Drift against the manifests as they are (no baseline: drift and pending are not told apart).\n",
        ),
    }
    for note in &report.notes {
        let _ = writeln!(out, "Note: {}", shown::visible(note));
    }
    if !report.drifted.is_empty() {
        let _ = writeln!(
            out,
            "\nDrifted ({}): live objects that differ from the manifests{} (live -> declared):",
            report.drifted.len(),
            if report.baseline.is_some() {
                " at the baseline"
            } else {
                ""
            }
        );
        for item in &report.drifted {
            item_block(&mut out, item, Section::Drifted);
        }
    }
    if !report.pending.is_empty() {
        let _ = writeln!(
            out,
            "\nPending ({}): changed in the manifests since the baseline, not applied yet (baseline -> working tree):",
            report.pending.len()
        );
        for item in &report.pending {
            item_block(&mut out, item, Section::Pending);
        }
    }
    if !report.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "\nUnmanaged ({}): live objects no manifest declares:",
            report.unmanaged.len()
        );
        for item in &report.unmanaged {
            let _ = writeln!(out, "  ? {}", unmanaged_line(item));
        }
    }
    if report.summary.ignored > 0 {
        let _ = writeln!(
            out,
            "\n{} unmanaged object{} matched `unmanaged.ignore` and {} not listed.",
            report.summary.ignored,
            plural(report.summary.ignored),
            if report.summary.ignored == 1 {
                "is"
            } else {
                "are"
            }
        );
    }
    if report.drifted.is_empty() && report.pending.is_empty() && report.unmanaged.is_empty() {
        out.push_str("\nNo drift. The live objects match the manifests.\n");
    }
    let _ = writeln!(out, "\n{}", summary_line(report));
    out
}

/// `Drift: 1 drifted, 2 pending, 0 unmanaged (3 ignored), 5 in sync.`
pub fn summary_line(report: &DriftReport) -> String {
    let s = &report.summary;
    let mut line = format!(
        "Drift: {} drifted, {} pending, {} unmanaged",
        s.drifted, s.pending, s.unmanaged
    );
    if s.ignored > 0 {
        let _ = write!(line, " ({} ignored)", s.ignored);
    }
    let _ = write!(line, ", {} in sync.", s.in_sync);
    line
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn symbol(item: &DriftItem) -> &'static str {
    match actions(item).as_slice() {
        ["create"] => "+",
        ["delete"] => "-",
        ["delete", "create"] => "-/+",
        ["wait"] => "…",
        _ => "~",
    }
}

fn actions(item: &DriftItem) -> Vec<&str> {
    item.change.actions.iter().map(String::as_str).collect()
}

/// What happened to the object, in words.
fn headline(item: &DriftItem, section: Section) -> String {
    let what = match (section, actions(item).as_slice()) {
        (Section::Drifted, ["create"]) => {
            "is missing: deleted outside sextant; apply creates it again"
        }
        (Section::Drifted, ["delete"]) => {
            "exists, but the manifests say `ensure: absent`; apply deletes it"
        }
        (Section::Drifted, ["delete", "create"]) => "changed outside sextant; apply replaces it",
        (Section::Drifted, ["wait"]) => "has a task running on the server",
        (Section::Drifted, _) => "changed outside sextant",
        (Section::Pending, ["create"]) => "is new in the manifests; apply creates it",
        (Section::Pending, ["delete"]) => "is now `ensure: absent`; apply deletes it",
        (Section::Pending, ["delete", "create"]) => "changed in the manifests; apply replaces it",
        (Section::Pending, _) => "changed in the manifests; apply updates it",
    };
    let mut line = format!(
        "{} (connection `{}`) {what}",
        shown::visible(&item.address),
        shown::visible(&item.connection)
    );
    if let Some(reason) = &item.action_reason {
        let _ = write!(line, " ({})", shown::visible(reason));
    }
    line
}

fn item_block(out: &mut String, item: &DriftItem, section: Section) {
    let _ = writeln!(out, "  {} {}", symbol(item), headline(item, section));
    if actions(item).as_slice() == ["create"] && section == Section::Drifted {
        return;
    }
    for field in &item.fields {
        let _ = writeln!(out, "      {}", field_line(field));
    }
    if !item.change.steps.is_empty() {
        let _ = writeln!(out, "      # steps: {}", item.change.steps.join(" → "));
    }
}

fn field_line(field: &FieldDiff) -> String {
    let name = shown::visible(&field.field);
    let forces = if field.forces_replacement {
        " # forces replacement"
    } else {
        ""
    };
    match (&field.before, &field.after) {
        (None, Some(after)) => format!("+ {name} = {}{forces}", inline(after)),
        (Some(before), None) => format!("- {name} = {}{forces}", inline(before)),
        (Some(before), Some(after)) => {
            format!("~ {name} = {} -> {}{forces}", inline(before), inline(after))
        }
        (None, None) => format!("~ {name}"),
    }
}

/// A value on one line, as compact JSON with invisible characters made visible.
fn inline(value: &Value) -> String {
    shown::visible(&value.to_string()).into_owned()
}

fn unmanaged_line(item: &UnmanagedItem) -> String {
    format!(
        "{} (connection `{}`, id `{}`)",
        shown::visible(&item.address),
        shown::visible(&item.connection),
        shown::visible(&item.id)
    )
}

/// A comment or job summary: the counts, the addresses, and the text report in a block.
pub fn markdown(report: &DriftReport) -> String {
    let mut out = String::new();
    let nothing =
        report.drifted.is_empty() && report.pending.is_empty() && report.unmanaged.is_empty();
    let s = &report.summary;
    if nothing {
        out.push_str("### ✅ Sextant drift: nothing to report\n\n");
    } else {
        let _ = writeln!(
            out,
            "### ⚠️ Sextant drift: {} drifted, {} pending, {} unmanaged\n",
            s.drifted, s.pending, s.unmanaged
        );
    }
    match (&report.baseline_ref, &report.baseline) {
        (Some(reference), Some(commit)) => {
            let _ = writeln!(
                out,
                "Baseline: {} (commit {})\n",
                shown::markdown_code(reference),
                shown::markdown_code(commit)
            );
        }
        _ => out.push_str("Baseline: none (drift and pending are not told apart)\n\n"),
    }
    for note in &report.notes {
        let _ = writeln!(out, "> **Note:** {}\n", shown::markdown_inline(note));
    }
    for warning in &report.warnings {
        let _ = writeln!(
            out,
            "> **Warning:** {}\n",
            shown::markdown_inline(&warning.message)
        );
    }
    const LISTED: usize = 50;
    let mut list = |title: &str, addresses: Vec<String>| {
        if addresses.is_empty() {
            return;
        }
        let _ = writeln!(out, "**{title}** ({})\n", addresses.len());
        for address in addresses.iter().take(LISTED) {
            let _ = writeln!(out, "- {address}");
        }
        if addresses.len() > LISTED {
            let _ = writeln!(out, "- … and {} more", addresses.len() - LISTED);
        }
        out.push('\n');
    };
    list(
        "Drifted",
        report
            .drifted
            .iter()
            .map(|i| shown::markdown_code(&i.address))
            .collect(),
    );
    list(
        "Pending",
        report
            .pending
            .iter()
            .map(|i| shown::markdown_code(&i.address))
            .collect(),
    );
    list(
        "Unmanaged",
        report
            .unmanaged
            .iter()
            .map(|i| {
                format!(
                    "{} on {}",
                    shown::markdown_code(&i.address),
                    shown::markdown_code(&i.connection)
                )
            })
            .collect(),
    );
    let body = text(report);
    let fence = shown::fence_for(&body);
    let opening = format!("<details><summary>Show the report</summary>\n\n{fence}text\n");
    let closing = format!("{fence}\n\n</details>\n");
    let note = "\n… (report truncated to stay within the comment size limit; run `sextant show` on the saved report to see it all)\n";
    let budget =
        MARKDOWN_LIMIT.saturating_sub(1 + out.len() + opening.len() + closing.len() + note.len());
    out.push_str(&opening);
    if body.len() <= budget {
        out.push_str(&body);
    } else {
        let mut used = 0;
        for line in body.lines() {
            if used + line.len() + 1 > budget {
                break;
            }
            out.push_str(line);
            out.push('\n');
            used += line.len() + 1;
        }
        out.push_str(note);
    }
    out.push_str(&closing);
    out
}

/// JUnit XML: one test case per declared resource (failed when drifted, skipped when only
/// pending), one failed test case per unmanaged object.
pub fn junit(report: &DriftReport) -> String {
    struct Case {
        classname: String,
        name: String,
        outcome: Outcome,
    }
    enum Outcome {
        Passed,
        Failed {
            kind: &'static str,
            message: String,
            text: String,
        },
        Skipped(String),
    }
    let pending: std::collections::BTreeMap<&str, &DriftItem> = report
        .pending
        .iter()
        .map(|i| (i.address.as_str(), i))
        .collect();
    let mut declared: Vec<Case> = Vec::new();
    for item in &report.drifted {
        let mut text = format!("{} {}\n", symbol(item), headline(item, Section::Drifted));
        for field in &item.fields {
            let _ = writeln!(text, "    {}", field_line(field));
        }
        if let Some(also) = pending.get(item.address.as_str()) {
            let _ = writeln!(text, "also pending: {}", headline(also, Section::Pending));
        }
        declared.push(Case {
            classname: format!("drift.{}", item.connection),
            name: item.address.clone(),
            outcome: Outcome::Failed {
                kind: "drift",
                message: format!(
                    "{} drifted: {}",
                    item.address,
                    changed_fields(item).unwrap_or_else(|| "the object".to_string())
                ),
                text,
            },
        });
    }
    let drifted: std::collections::BTreeSet<&str> =
        report.drifted.iter().map(|i| i.address.as_str()).collect();
    for item in report
        .pending
        .iter()
        .filter(|i| !drifted.contains(i.address.as_str()))
    {
        declared.push(Case {
            classname: format!("drift.{}", item.connection),
            name: item.address.clone(),
            outcome: Outcome::Skipped(format!("pending: {}", headline(item, Section::Pending))),
        });
    }
    for resource in report
        .in_sync
        .iter()
        .filter(|r| !pending.contains_key(r.address.as_str()))
    {
        declared.push(Case {
            classname: format!("drift.{}", resource.connection),
            name: resource.address.clone(),
            outcome: Outcome::Passed,
        });
    }
    declared.sort_by(|a, b| (&a.name, &a.classname).cmp(&(&b.name, &b.classname)));
    let unmanaged: Vec<Case> = report
        .unmanaged
        .iter()
        .map(|item| Case {
            classname: format!("unmanaged.{}", item.connection),
            name: item.address.clone(),
            outcome: Outcome::Failed {
                kind: "unmanaged",
                message: format!("{} is live but no manifest declares it", item.address),
                text: format!("? {}\n", unmanaged_line(item)),
            },
        })
        .collect();

    let count = |cases: &[Case]| {
        let failures = cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
            .count();
        let skipped = cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
            .count();
        (cases.len(), failures, skipped)
    };
    let (dt, df, ds) = count(&declared);
    let (ut, uf, us) = count(&unmanaged);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"sextant drift\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
        dt + ut,
        df + uf,
        ds + us
    );
    for (name, cases, (tests, failures, skipped)) in [
        ("declared resources", &declared, (dt, df, ds)),
        ("unmanaged objects", &unmanaged, (ut, uf, us)),
    ] {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">"
        );
        for case in cases.iter() {
            let open = format!(
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml_escape(&case.classname),
                xml_escape(&case.name)
            );
            match &case.outcome {
                Outcome::Passed => {
                    let _ = writeln!(out, "{open}/>");
                }
                Outcome::Skipped(message) => {
                    let _ = writeln!(
                        out,
                        "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml_escape(message)
                    );
                }
                Outcome::Failed {
                    kind,
                    message,
                    text,
                } => {
                    let _ = writeln!(
                        out,
                        "{open}>\n      <failure type=\"{kind}\" message=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(message),
                        xml_escape(text)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// `power_state, cpu_count`, or `None` when no field is listed.
fn changed_fields(item: &DriftItem) -> Option<String> {
    (!item.fields.is_empty()).then(|| {
        item.fields
            .iter()
            .map(|f| f.field.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Escapes text for XML attributes and content. Characters XML 1.0 cannot hold at all
/// (control characters but tab and newline) are written as `U+XXXX`.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                let _ = write!(out, "U+{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{DriftSummary, ResourceRef, ScannedListing};
    use crate::plan::render::JsonChange;
    use crate::plan::render::JsonWarning;
    use serde_json::json;

    fn report() -> DriftReport {
        let change = |actions: &[&str], before: Value, after: Value| JsonChange {
            actions: actions.iter().map(|a| a.to_string()).collect(),
            before: Some(before),
            after: Some(after),
            replace_paths: vec![],
            steps: vec![],
        };
        DriftReport {
            format_version: "1.0".into(),
            sextant_version: "0.1.0".into(),
            baseline: Some("0123456789012345678901234567890123456789".into()),
            baseline_ref: Some("sextant/applied/prod".into()),
            notes: vec![],
            summary: DriftSummary {
                drifted: 1,
                pending: 1,
                unmanaged: 1,
                ignored: 2,
                in_sync: 1,
            },
            drifted: vec![DriftItem {
                address: "VirtualMachine/web-01".into(),
                kind: "VirtualMachine".into(),
                name: "web-01".into(),
                connection: "vcenter".into(),
                change: change(
                    &["update"],
                    json!({"power_state": "POWERED_OFF"}),
                    json!({"power_state": "POWERED_ON"}),
                ),
                action_reason: None,
                fields: vec![FieldDiff {
                    field: "power_state".into(),
                    before: Some(json!("POWERED_OFF")),
                    after: Some(json!("POWERED_ON")),
                    forces_replacement: false,
                }],
                unchanged: 1,
            }],
            pending: vec![DriftItem {
                address: "SaltJob/a <b> & \"c\"".into(),
                kind: "SaltJob".into(),
                name: "a <b> & \"c\"".into(),
                connection: "salt".into(),
                change: change(&["update"], json!({"desc": "x"}), json!({"desc": "y\u{1}"})),
                action_reason: None,
                fields: vec![FieldDiff {
                    field: "desc".into(),
                    before: Some(json!("x")),
                    after: Some(json!("y\u{1}")),
                    forces_replacement: false,
                }],
                unchanged: 0,
            }],
            unmanaged: vec![UnmanagedItem {
                address: "SaltTarget/adhoc".into(),
                kind: "SaltTarget".into(),
                name: "adhoc".into(),
                connection: "salt".into(),
                id: "uuid-1".into(),
            }],
            scanned: vec![ScannedListing {
                connection: "salt".into(),
                kind: "SaltTarget".into(),
                unmanaged: 1,
                ignored: 2,
            }],
            in_sync: vec![ResourceRef {
                address: "SaltTarget/web".into(),
                kind: "SaltTarget".into(),
                name: "web".into(),
                connection: "salt".into(),
            }],
            warnings: vec![JsonWarning {
                kind: "credential_expiry".into(),
                connection: Some("salt".into()),
                address: None,
                expires_at: Some("2027-01-01T00:00:00Z".into()),
                message:
                    "the API token of connection `salt` ({env: SALT_TOKEN}) expires on 2027-01-01"
                        .into(),
            }],
        }
    }

    #[test]
    fn text_of_every_section() {
        insta::assert_snapshot!(text(&report()));
    }

    #[test]
    fn markdown_of_every_section() {
        insta::assert_snapshot!(markdown(&report()));
    }

    #[test]
    fn junit_of_every_section() {
        insta::assert_snapshot!(junit(&report()));
    }

    #[test]
    fn xml_escapes_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"c\"'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;U+0001\n"
        );
    }

    #[test]
    fn committed_drift_schema_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/drift.schema.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == crate::drift::json_schema(),
            "schemas/drift.schema.json is stale; regenerate it with:\n    cargo run -- schema --drift > schemas/drift.schema.json"
        );
    }
}

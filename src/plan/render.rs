//! Rendering a plan as text (Terraform's vocabulary), JSON (shaped like `terraform show
//! -json`) and Markdown (for pull-request comments). Output is deterministic: no timestamps,
//! percentages or ETAs, so a committed rendering changes only when the plan does.

use std::fmt::Write as _;

use anstyle::AnsiColor;
use serde_json::Value;

use super::{Action, ActionCause, FieldChange, Plan, ResourceChange, is_sensitive_key};
use crate::model::shown;

/// The version of the JSON plan format (`format_version`).
pub const JSON_FORMAT_VERSION: &str = "1.0";

/// Markdown comments must stay below GitHub's 65,536-character limit.
pub const MARKDOWN_LIMIT: usize = 65_536;

const SENSITIVE: &str = "(sensitive value)";

/// Resources listed by name above the details of a Markdown plan.
const MARKDOWN_LIST_MAX: usize = 50;

/// Text colours, off unless writing to a terminal.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, text: &str, action: Action) -> String {
        let color = match action {
            Action::Create => AnsiColor::Green,
            Action::Update | Action::Wait | Action::Rotate => AnsiColor::Yellow,
            Action::Delete => AnsiColor::Red,
            Action::Replace => AnsiColor::Magenta,
            Action::NoOp => return text.to_string(),
        };
        shown::paint(text, color.on_default(), self.color)
    }

    fn bold(self, text: &str) -> String {
        shown::paint(text, shown::BOLD, self.color)
    }
}

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "  +",
        Action::Update => "  ~",
        Action::Delete => "  -",
        Action::Replace => "-/+",
        Action::Wait => "  …",
        Action::Rotate => "  ~",
        Action::NoOp => "   ",
    }
}

fn legend(action: Action) -> &'static str {
    match action {
        Action::Create => "  + create",
        Action::Update => "  ~ update in-place",
        Action::Delete => "  - destroy",
        Action::Replace => "-/+ destroy and then create replacement",
        Action::Wait => "  … wait for a task already running on the server",
        Action::Rotate => {
            "  ~ rotate: create a new credential, hand over its secret, then revoke the old one"
        }
        Action::NoOp => "",
    }
}

fn header(change: &ResourceChange) -> String {
    let address = shown::visible(&change.address.to_string()).into_owned();
    let reason = change.reason.as_deref().map(shown::visible);
    match (change.action, change.cause, reason) {
        (Action::Delete, Some(ActionCause::Pruned), Some(reason)) => {
            return format!("# {address} will be destroyed (pruned: {reason})");
        }
        (Action::Replace, Some(ActionCause::Requested), _) => {
            return format!("# {address} will be replaced, as requested");
        }
        (Action::Update, Some(ActionCause::Renamed), Some(reason)) => {
            return format!("# {address} will be updated in-place ({reason})");
        }
        _ => {}
    }
    match change.action {
        Action::Create => format!("# {address} will be created"),
        Action::Update => format!("# {address} will be updated in-place"),
        Action::Delete => format!("# {address} will be destroyed"),
        Action::Replace => match &change.reason {
            Some(reason) => format!("# {address} must be replaced: {}", shown::visible(reason)),
            None => format!("# {address} must be replaced"),
        },
        Action::Wait => {
            format!("# {address} has a task in progress on the server; apply will wait for it")
        }
        Action::Rotate => match &change.reason {
            Some(reason) => format!(
                "# {address} will be rotated: {}",
                shown::visible(reason.strip_prefix("rotate: ").unwrap_or(reason))
            ),
            None => format!("# {address} will be rotated"),
        },
        Action::NoOp => format!("# {address} is up to date"),
    }
}

/// The summary line.
pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    let mut line = format!(
        "Plan: {} to add, {} to change, {} to destroy",
        s.add, s.change, s.destroy
    );
    if s.wait > 0 {
        let _ = write!(line, ", {} to wait", s.wait);
    }
    line.push('.');
    line
}

/// Terraform-like text.
pub fn text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if !plan.problems.is_empty() {
        out.push_str("Planning failed.\n");
        return out;
    }
    if !plan.has_changes() {
        out.push_str("No changes. Your infrastructure matches the configuration.\n");
        return out;
    }
    out.push_str(
        "Sextant read the live state and found these actions. Resource actions are indicated with the following symbols:\n",
    );
    let mut present: Vec<Action> = plan.changes.iter().map(|c| c.action).collect();
    present.sort();
    present.dedup();
    for action in present.into_iter().filter(|a| *a != Action::NoOp) {
        let _ = writeln!(out, "{}", style.paint(legend(action), action));
    }
    out.push_str("\nSextant will perform the following actions:\n");
    for change in plan.changes.iter().filter(|c| c.is_change()) {
        out.push('\n');
        resource_block(&mut out, change, style);
    }
    let _ = writeln!(out, "\n{}", style.bold(&summary_line(plan)));
    out
}

fn resource_block(out: &mut String, change: &ResourceChange, style: Style) {
    let _ = writeln!(out, "  {}", style.bold(&header(change)));
    if change.action == Action::Wait {
        if let Some(reason) = &change.reason {
            let _ = writeln!(out, "    # (server reports: {})", shown::visible(reason));
        }
        return;
    }
    if matches!(change.action, Action::Update | Action::Rotate) && !change.steps.is_empty() {
        let _ = writeln!(
            out,
            "    # steps: {}",
            shown::visible(&change.steps.join(" → "))
        );
    }
    let verb = if change.action == Action::Rotate {
        " rotate"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "{}{verb} {} \"{}\" {{",
        style.paint(symbol(change.action), change.action),
        change.address.kind,
        shown::visible(&change.address.name)
    );
    let rules = crate::model::rules::rules_for(change.address.kind);
    for field in &change.fields {
        field_lines(out, field, style, rules.field_note(&field.field));
    }
    if change.unchanged > 0 && matches!(change.action, Action::Update | Action::Replace) {
        let noun = if change.unchanged == 1 {
            "attribute"
        } else {
            "attributes"
        };
        let _ = writeln!(
            out,
            "        # ({} unchanged {noun} hidden)",
            change.unchanged
        );
    }
    out.push_str("    }\n");
}

fn field_lines(out: &mut String, field: &FieldChange, style: Style, note: Option<&str>) {
    let sensitive = is_sensitive_key(&field.field);
    let show = |value: &Value| -> String {
        if sensitive {
            SENSITIVE.to_string()
        } else {
            inline_value(value)
        }
    };
    let name = shown::visible(&field.field);
    let forces = if field.forces_replacement {
        " # forces replacement".to_string()
    } else if let Some(note) = note {
        format!(" # {note}")
    } else {
        String::new()
    };
    match (&field.before, &field.after) {
        (None, Some(after)) => {
            let _ = writeln!(
                out,
                "      {} {name} = {}{forces}",
                style.paint("+", Action::Create),
                show(after)
            );
        }
        (Some(before), None) => {
            let _ = writeln!(
                out,
                "      {} {name} = {}",
                style.paint("-", Action::Delete),
                show(before)
            );
        }
        (Some(Value::String(before)), Some(Value::String(after)))
            if !sensitive && (before.contains('\n') || after.contains('\n')) =>
        {
            let _ = writeln!(
                out,
                "      {} {name} = <<-EOT{forces}",
                style.paint("~", Action::Update),
            );
            let diff = similar::TextDiff::from_lines(before.as_str(), after.as_str());
            for line in diff.iter_all_changes() {
                let sign = match line.tag() {
                    similar::ChangeTag::Delete => "-",
                    similar::ChangeTag::Insert => "+",
                    similar::ChangeTag::Equal => " ",
                };
                let _ = writeln!(
                    out,
                    "          {sign} {}",
                    shown::visible_lines(line.value().trim_end_matches('\n'))
                );
            }
            out.push_str("        EOT\n");
        }
        (Some(before), Some(after)) => {
            let after_text = if sensitive && before != after {
                "(sensitive value changed)".to_string()
            } else {
                show(after)
            };
            let _ = writeln!(
                out,
                "      {} {name} = {} -> {}{forces}",
                style.paint("~", Action::Update),
                show(before),
                after_text
            );
        }
        (None, None) => {}
    }
}

/// A value on one line: strings quoted, objects and arrays as compact JSON (which escapes
/// control characters), with bidi and invisible characters made visible too.
fn inline_value(value: &Value) -> String {
    match value {
        Value::String(s) if s == super::UNKNOWN => s.clone(),
        Value::Null => "null".to_string(),
        other => shown::visible(&mask(other).to_string()).into_owned(),
    }
}

/// Replaces the values of sensitive keys, leaf by leaf.
pub fn mask(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_sensitive_key(k) && !v.is_object() {
                        Value::String(SENSITIVE.to_string())
                    } else {
                        mask(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        other => other.clone(),
    }
}

/// The JSON plan document (`plan --format json`), shaped like `terraform show -json`.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct JsonPlan {
    /// Version of this format; a change of the major part breaks readers.
    pub format_version: String,
    pub sextant_version: String,
    /// False when `--target` limited the plan.
    pub complete: bool,
    /// True when planning failed for at least one resource (see `errors`).
    pub errored: bool,
    /// One entry per declared resource in scope, in execution order.
    pub resource_changes: Vec<JsonResourceChange>,
    pub summary: JsonSummary,
    pub errors: Vec<JsonPlanError>,
    /// Things to know that do not stop the plan: credentials in use that expire soon, VCD
    /// tokens whose secret file is lost. Never holds a secret.
    pub warnings: Vec<JsonWarning>,
}

/// One warning of the plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct JsonWarning {
    /// `credential_expiry` (a credential expires within `--warn-expiry`) or `resource`.
    pub kind: String,
    /// The connection whose credential it is (`credential_expiry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// The resource it is about (`resource`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// When the credential expires, RFC 3339 (`credential_expiry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub message: String,
}

/// Every warning of `plan`: credentials first (by connection), then resources (by address).
pub fn json_warnings(plan: &Plan) -> Vec<JsonWarning> {
    let mut warnings = credential_json_warnings(&plan.credentials);
    warnings.extend(plan.warnings.iter().map(|w| JsonWarning {
        kind: "resource".to_string(),
        connection: None,
        address: Some(w.address.to_string()),
        expires_at: None,
        message: w.message(),
    }));
    warnings
}

/// Credential warnings as JSON (the plan's and the drift report's `warnings`).
pub fn credential_json_warnings(
    credentials: &[crate::plan::credentials::CredentialWarning],
) -> Vec<JsonWarning> {
    let credentials = credentials.iter().map(|w| JsonWarning {
        kind: "credential_expiry".to_string(),
        connection: Some(w.connection.clone()),
        address: None,
        expires_at: Some(
            w.expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        message: w.message.clone(),
    });
    credentials.collect()
}

/// Warnings as Markdown quote lines, for the top of a comment.
fn markdown_warnings(plan: &Plan) -> String {
    let mut out = String::new();
    for warning in json_warnings(plan) {
        let message = match &warning.address {
            Some(address) => format!("{address}: {}", warning.message),
            None => warning.message,
        };
        let _ = writeln!(out, "> **Warning:** {}\n", shown::markdown_inline(&message));
    }
    out
}

/// One resource's planned change.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct JsonResourceChange {
    /// `Kind/name`.
    pub address: String,
    pub kind: String,
    pub name: String,
    pub connection: String,
    pub change: JsonChange,
    /// Why this action was chosen, when it is not obvious: `pruned` (an undeclared object
    /// sextant owns), `requested` (`--replace`), `renamed` (`previous_names`), or the
    /// server's words (`deployment failed`, a task in progress).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_reason: Option<String>,
    /// The details of `pruned`, `requested` and `renamed` (`created by sextant, no longer
    /// declared`, `renamed from \`old\``).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_reason_detail: Option<String>,
}

/// The change itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct JsonChange {
    /// `["create"]`, `["update"]`, `["delete"]`, `["delete","create"]` (replace), `["wait"]`,
    /// `["create","delete"]` (a credential rotation: the new one first, see `action_reason`)
    /// or `["no-op"]`.
    pub actions: Vec<String>,
    /// The live spec (normalized), or null when the object does not exist.
    pub before: Option<Value>,
    /// The desired spec, or null for a delete. Values not known yet are
    /// `"(known after apply)"`; sensitive values are `"(sensitive value)"`.
    pub after: Option<Value>,
    /// Spec fields forcing a replacement, as paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_paths: Vec<Vec<String>>,
    /// Steps of an in-place change made of several calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
}

/// Counts of the summary line.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct JsonSummary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    pub wait: usize,
}

/// A resource that could not be planned.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct JsonPlanError {
    pub address: String,
    pub message: String,
}

/// The JSON Schema of [`JsonPlan`] (committed as `schemas/plan.schema.json`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(JsonPlan);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// The `change` of one resource in the JSON plan (secrets masked).
pub fn json_change(change: &ResourceChange) -> JsonChange {
    JsonChange {
        actions: change
            .action
            .json_actions()
            .iter()
            .map(|a| a.to_string())
            .collect(),
        before: change
            .before()
            .filter(|_| change.action != Action::Create)
            .map(|before| mask(&before)),
        after: change
            .after
            .as_ref()
            .filter(|_| change.action != Action::Delete)
            .map(|after| mask(&after.value())),
        replace_paths: change
            .fields
            .iter()
            .filter(|f| f.forces_replacement)
            .map(|f| vec!["spec".to_string(), f.field.clone()])
            .collect(),
        steps: change.steps.clone(),
    }
}

/// Terraform-`show -json`-like document.
pub fn json(plan: &Plan) -> JsonPlan {
    let resource_changes = plan
        .changes
        .iter()
        .map(|change| JsonResourceChange {
            address: change.address.to_string(),
            kind: change.address.kind.as_str().to_string(),
            name: change.address.name.clone(),
            connection: change.connection.clone(),
            change: json_change(change),
            action_reason: match change.cause {
                Some(cause) => Some(cause.as_str().to_string()),
                None => change.reason.clone(),
            },
            action_reason_detail: change.cause.and(change.reason.clone()),
        })
        .collect();
    let summary = plan.summary();
    JsonPlan {
        format_version: JSON_FORMAT_VERSION.to_string(),
        sextant_version: env!("CARGO_PKG_VERSION").to_string(),
        complete: !plan.partial,
        errored: !plan.problems.is_empty(),
        resource_changes,
        summary: JsonSummary {
            add: summary.add,
            change: summary.change,
            destroy: summary.destroy,
            wait: summary.wait,
        },
        errors: plan
            .problems
            .iter()
            .map(|p| JsonPlanError {
                address: p.address.to_string(),
                message: p.message(),
            })
            .collect(),
        warnings: json_warnings(plan),
    }
}

/// A pull-request comment: summary line, collapsible details with a ```diff block.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.problems.is_empty() {
        out.push_str("### ❌ Sextant plan failed\n\n");
        for problem in &plan.problems {
            let _ = writeln!(
                out,
                "- {}: {}",
                shown::markdown_code(&problem.address.to_string()),
                shown::markdown_inline(&problem.message())
            );
        }
        return out;
    }
    if !plan.has_changes() {
        out.push_str(
            "### ✅ Sextant plan: no changes\n\nYour infrastructure matches the configuration.\n",
        );
        let warnings = markdown_warnings(plan);
        if !warnings.is_empty() {
            out.push('\n');
            out.push_str(&warnings);
        }
        return out;
    }
    let _ = writeln!(
        out,
        "### Sextant plan: {}\n",
        summary_line(plan).trim_start_matches("Plan: ")
    );
    out.push_str(&markdown_warnings(plan));
    if plan.partial {
        out.push_str("> **Warning:** this plan is partial (`--target` was used).\n\n");
    }
    let listed: Vec<&ResourceChange> = plan.changes.iter().filter(|c| c.is_change()).collect();
    for change in listed.iter().take(MARKDOWN_LIST_MAX) {
        let marker = if change.action == Action::Rotate {
            "~ rotate"
        } else {
            symbol(change.action).trim()
        };
        let _ = writeln!(
            out,
            "- `{marker}` {}{}",
            shown::markdown_code(&change.address.to_string()),
            change
                .cause
                .map(|cause| format!(" ({})", cause.as_str()))
                .unwrap_or_default()
        );
    }
    if listed.len() > MARKDOWN_LIST_MAX {
        let _ = writeln!(out, "- … and {} more", listed.len() - MARKDOWN_LIST_MAX);
    }
    let body = text(plan, Style::default());
    // Values are already single-line in the text, and the fence outgrows any backtick run in
    // it: nothing a manifest holds can close the block and be rendered as Markdown.
    let fence = shown::fence_for(&body);
    let opening = format!("\n<details><summary>Show plan</summary>\n\n{fence}diff\n");
    let closing = format!("{fence}\n\n</details>\n");
    let note = "\n… (output truncated to stay within the comment size limit; run `sextant plan` to see it all)\n";
    let budget =
        MARKDOWN_LIMIT.saturating_sub(1 + out.len() + opening.len() + closing.len() + note.len());
    out.push_str(&opening);
    if body.len() <= budget {
        out.push_str(&diff_markers(&body));
    } else {
        let mut used = 0;
        for line in diff_markers(&body).lines() {
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

/// Moves the action symbol to the first column so GitHub's `diff` highlighting colours it.
fn diff_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = match trimmed.chars().next() {
            Some('+') => "+",
            Some('-') if trimmed.starts_with("-/+") => "!",
            Some('-') => "-",
            Some('~') => "!",
            _ => " ",
        };
        let _ = writeln!(out, "{marker} {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Kind};
    use crate::plan::{PlanProblem, ResourceChange, UNKNOWN};
    use crate::providers::{LiveObject, LiveStatus, TaskHandle};
    use serde_json::json;
    use std::sync::Arc;

    fn change(kind: Kind, name: &str, action: Action) -> ResourceChange {
        ResourceChange {
            address: Address::new(kind, name),
            connection: "conn".into(),
            action,
            reason: None,
            cause: None,
            fields: vec![],
            unchanged: 0,
            steps: vec![],
            after: None,
            live: None,
            task: None,
            attempt: 0,
            depends_on: vec![],
        }
    }

    /// A ready live object of `change`'s address whose normalized spec is `spec`.
    fn live(change: &ResourceChange, spec: Value) -> Option<Arc<LiveObject>> {
        Some(Arc::new(LiveObject {
            kind: change.address.kind,
            name: change.address.name.clone(),
            id: format!("id-{}", change.address.name),
            spec: spec.into(),
            attributes: crate::providers::Attributes::default(),
            status: LiveStatus::Ready,
            fingerprint: "f".into(),
        }))
    }

    fn field(name: &str, before: Option<Value>, after: Option<Value>) -> FieldChange {
        FieldChange {
            field: name.into(),
            before,
            after,
            forces_replacement: false,
        }
    }

    /// One change of every kind of action the renderer knows.
    fn every_action() -> Plan {
        let mut create = change(Kind::SaltJob, "Check disk usage", Action::Create);
        create.after = Some(json!({"cmd": "local", "fun": "disk.usage", "target": "All Minions", "arg": {"kwarg": {"password": "hunter2"}}}).into());
        create.fields = vec![
            field("arg", None, Some(json!({"kwarg": {"password": "hunter2"}}))),
            field("cmd", None, Some(json!("local"))),
            field("fun", None, Some(json!("disk.usage"))),
            field("target", None, Some(json!("All Minions"))),
        ];
        let mut update = change(Kind::SaltTarget, "web servers", Action::Update);
        update.live = live(&update, json!({"desc": "line one\nline two\n"}));
        update.after = Some(json!({"desc": "line one\nline 2\n"}).into());
        update.fields = vec![field(
            "desc",
            Some(json!("line one\nline two\n")),
            Some(json!("line one\nline 2\n")),
        )];
        update.unchanged = 1;
        let mut replace = change(Kind::Sddc, "prod", Action::Replace);
        replace.live = live(&replace, json!({"region": "US_WEST_2", "num_hosts": 2}));
        replace.after = Some(json!({"region": "US_EAST_1", "num_hosts": 2}).into());
        replace.fields = vec![FieldChange {
            forces_replacement: true,
            ..field("region", Some(json!("US_WEST_2")), Some(json!("US_EAST_1")))
        }];
        replace.unchanged = 1;
        let mut failed = change(Kind::Sddc, "broken", Action::Replace);
        failed.reason = Some("deployment failed".into());
        failed.after = Some(json!({"region": "US_WEST_2"}).into());
        failed.fields = vec![field("region", None, Some(json!("US_WEST_2")))];
        let mut delete = change(Kind::SaltSchedule, "old schedule", Action::Delete);
        delete.live = live(&delete, json!({"enabled": true}));
        delete.fields = vec![field("enabled", Some(json!(true)), None)];
        let mut wait = change(Kind::Sddc, "deploying", Action::Wait);
        wait.reason = Some("DEPLOYING".into());
        wait.task = Some(TaskHandle {
            kind: Kind::Sddc,
            id: "task-1".into(),
            object_id: "sddc-1".into(),
        });
        wait.live = Some(Arc::new(LiveObject {
            kind: Kind::Sddc,
            name: "deploying".into(),
            id: "sddc-1".into(),
            spec: json!({}).into(),
            attributes: crate::providers::Attributes::default(),
            status: LiveStatus::Busy {
                task: None,
                activity: "DEPLOYING".into(),
            },
            fingerprint: "x".into(),
        }));
        let mut cycle = change(Kind::VirtualMachine, "web-01", Action::Update);
        cycle.steps = vec![
            "guest shutdown".into(),
            "change CPU/memory".into(),
            "start".into(),
        ];
        cycle.live = live(&cycle, json!({"cpu_count": 2, "power_state": "POWERED_ON"}));
        cycle.after = Some(json!({"cpu_count": 4, "power_state": "POWERED_ON"}).into());
        cycle.fields = vec![field("cpu_count", Some(json!(2)), Some(json!(4)))];
        cycle.unchanged = 1;
        let mut unknown = change(Kind::SaltJob, "Configure vCenter", Action::Create);
        unknown.after = Some(json!({"arg": {"kwarg": {"vcenter": UNKNOWN}}}).into());
        unknown.fields = vec![field(
            "arg",
            None,
            Some(json!({"kwarg": {"vcenter": UNKNOWN}})),
        )];
        let noop = change(Kind::VirtualMachine, "db-01", Action::NoOp);
        let mut rotate = change(Kind::VcdApiToken, "ci", Action::Rotate);
        rotate.live = live(&rotate, json!({}));
        rotate.after = Some(json!({"file": "secrets/ci.json", "rotate_after": "90d"}).into());
        rotate.reason = Some(
            "rotate: the secret file was written on 2026-08-01, longer ago than `rotate_after: 90d`"
                .into(),
        );
        rotate.steps = vec![
            "create a new token".into(),
            "write its secret to the file (0600)".into(),
            "revoke `urn:vcloud:token:1`".into(),
        ];
        Plan {
            changes: vec![
                create, update, replace, failed, delete, wait, cycle, unknown, rotate, noop,
            ],
            problems: vec![],
            warnings: vec![PlanProblem {
                address: Address::new(Kind::VcdApiToken, "lost"),
                error: crate::plan::PlanError::LostSecret {
                    problem: "its secret file is missing".into(),
                },
            }],
            credentials: vec![crate::plan::credentials::CredentialWarning {
                connection: "vmc".into(),
                credential: "CSP API token (env `VMC_TOKEN`)".into(),
                expires_at: chrono::DateTime::from_timestamp(1_796_000_000, 0).unwrap(),
                expired: false,
                message: "connection `vmc`: the CSP API token (env `VMC_TOKEN`) expires on 2026-11-30, within the 30d warning window; create a new API token in the CSP console and hand it to sextant before then".into(),
            }],
            partial: false,
        }
    }

    /// A pruned delete, a requested replacement and a rename in place.
    fn prune_rename_replace() -> Plan {
        let mut pruned = change(Kind::SaltJob, "prod-old", Action::Delete);
        pruned.live = live(&pruned, json!({"cmd": "local", "fun": "test.ping"}));
        pruned.cause = Some(ActionCause::Pruned);
        pruned.reason = Some("created by sextant, no longer declared".into());
        pruned.fields = vec![
            field("cmd", Some(json!("local")), None),
            field("fun", Some(json!("test.ping")), None),
        ];
        let mut requested = change(Kind::SaltJob, "flaky", Action::Replace);
        requested.live = live(&requested, json!({"fun": "test.ping"}));
        requested.after = Some(json!({"fun": "test.ping"}).into());
        requested.cause = Some(ActionCause::Requested);
        requested.reason = Some("requested with `--replace`".into());
        requested.fields = vec![field("fun", None, Some(json!("test.ping")))];
        let mut renamed = change(Kind::SaltTarget, "web-2", Action::Update);
        renamed.live = live(&renamed, json!({"desc": "web"}));
        renamed.after = Some(json!({"desc": "web"}).into());
        renamed.cause = Some(ActionCause::Renamed);
        renamed.reason = Some("renamed from `web`".into());
        renamed.fields = vec![field("name", Some(json!("web")), Some(json!("web-2")))];
        renamed.unchanged = 1;
        Plan {
            changes: vec![pruned, requested, renamed],
            ..Plan::default()
        }
    }

    #[test]
    fn prunes_renames_and_requested_replacements_say_why_in_every_format() {
        let plan = prune_rename_replace();
        let text = text(&plan, Style::default());
        assert!(text.contains(
            "# SaltJob/prod-old will be destroyed (pruned: created by sextant, no longer declared)"
        ));
        insta::assert_snapshot!(text);
        let json = json(&plan);
        assert_eq!(
            json.resource_changes[0].action_reason.as_deref(),
            Some("pruned")
        );
        insta::assert_json_snapshot!(json);
        insta::assert_snapshot!(markdown(&plan));
    }

    #[test]
    fn text_of_every_action() {
        insta::assert_snapshot!(text(&every_action(), Style::default()));
    }

    #[test]
    fn json_of_every_action() {
        insta::assert_json_snapshot!(json(&every_action()));
    }

    #[test]
    fn markdown_of_every_action() {
        insta::assert_snapshot!(markdown(&every_action()));
    }

    #[test]
    fn secrets_are_masked_in_every_format() {
        let plan = every_action();
        for rendered in [
            text(&plan, Style::default()),
            serde_json::to_string(&json(&plan)).unwrap(),
            markdown(&plan),
        ] {
            assert!(!rendered.contains("hunter2"), "{rendered}");
            assert!(rendered.contains(SENSITIVE));
        }
    }

    #[test]
    fn no_changes_reads_like_terraform() {
        let plan = Plan::default();
        assert_eq!(
            text(&plan, Style::default()),
            "No changes. Your infrastructure matches the configuration.\n"
        );
        assert!(!json(&plan).errored);
    }

    #[test]
    fn failed_planning_is_said_in_every_format() {
        let plan = Plan {
            problems: vec![PlanProblem {
                address: Address::new(Kind::Sddc, "x"),
                error: crate::plan::PlanError::Refused("two live objects".into()),
            }],
            ..Plan::default()
        };
        assert_eq!(text(&plan, Style::default()), "Planning failed.\n");
        assert!(json(&plan).errored);
        assert!(markdown(&plan).contains("two live objects"));
    }

    #[test]
    fn markdown_is_truncated_below_the_comment_limit() {
        let mut plan = Plan::default();
        for i in 0..3000 {
            let mut c = change(Kind::SaltJob, &format!("job {i:04}"), Action::Create);
            c.fields = vec![field("desc", None, Some(json!("x".repeat(40))))];
            plan.changes.push(c);
        }
        let rendered = markdown(&plan);
        assert!(rendered.len() < MARKDOWN_LIMIT, "{}", rendered.len());
        assert!(rendered.contains("output truncated"));
        assert!(rendered.ends_with("</details>\n"));
    }

    #[test]
    fn committed_plan_schema_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/plan.schema.json");
        let committed = std::fs::read_to_string(&path).expect("schemas/plan.schema.json exists");
        assert!(
            committed == json_schema(),
            "schemas/plan.schema.json is stale; regenerate it with:\n    cargo run -- schema --plan > schemas/plan.schema.json"
        );
    }

    #[test]
    fn colour_is_only_added_when_asked() {
        let plan = every_action();
        assert!(!text(&plan, Style { color: false }).contains('\x1b'));
        assert!(text(&plan, Style { color: true }).contains('\x1b'));
    }
}

//! Rendering a plan as text (Terraform's vocabulary), JSON (shaped like `terraform show
//! -json`) and Markdown (for pull-request comments). Output is deterministic: no timestamps,
//! percentages or ETAs, so a committed rendering changes only when the plan does.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Action, FieldChange, Plan, ResourceChange, is_sensitive_key};

/// The version of the JSON plan format (`format_version`).
pub const JSON_FORMAT_VERSION: &str = "1.0";

/// Markdown comments must stay below GitHub's 65,536-character limit.
pub const MARKDOWN_LIMIT: usize = 65_536;

const SENSITIVE: &str = "(sensitive value)";

/// Text colours, off unless writing to a terminal.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, text: &str, action: Action) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match action {
            Action::Create => "32",
            Action::Update | Action::Wait => "33",
            Action::Delete => "31",
            Action::Replace => "35",
            Action::NoOp => "0",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn bold(self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "  +",
        Action::Update => "  ~",
        Action::Delete => "  -",
        Action::Replace => "-/+",
        Action::Wait => "  …",
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
        Action::NoOp => "",
    }
}

fn header(change: &ResourceChange) -> String {
    let address = &change.address;
    match change.action {
        Action::Create => format!("# {address} will be created"),
        Action::Update => format!("# {address} will be updated in-place"),
        Action::Delete => format!("# {address} will be destroyed"),
        Action::Replace => match &change.reason {
            Some(reason) => format!("# {address} must be replaced: {reason}"),
            None => format!("# {address} must be replaced"),
        },
        Action::Wait => {
            format!("# {address} has a task in progress on the server; apply will wait for it")
        }
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
            let _ = writeln!(out, "    # (server reports: {reason})");
        }
        return;
    }
    if change.action == Action::Update && !change.steps.is_empty() {
        let _ = writeln!(out, "    # steps: {}", change.steps.join(" → "));
    }
    let _ = writeln!(
        out,
        "{} {} \"{}\" {{",
        style.paint(symbol(change.action), change.action),
        change.address.kind,
        change.address.name
    );
    for field in &change.fields {
        field_lines(out, field, style);
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

fn field_lines(out: &mut String, field: &FieldChange, style: Style) {
    let sensitive = is_sensitive_key(&field.field);
    let show = |value: &Value| -> String {
        if sensitive {
            SENSITIVE.to_string()
        } else {
            inline_value(value)
        }
    };
    let forces = if field.forces_replacement {
        " # forces replacement"
    } else {
        ""
    };
    match (&field.before, &field.after) {
        (None, Some(after)) => {
            let _ = writeln!(
                out,
                "      {} {} = {}{forces}",
                style.paint("+", Action::Create),
                field.field,
                show(after)
            );
        }
        (Some(before), None) => {
            let _ = writeln!(
                out,
                "      {} {} = {}",
                style.paint("-", Action::Delete),
                field.field,
                show(before)
            );
        }
        (Some(Value::String(before)), Some(Value::String(after)))
            if !sensitive && (before.contains('\n') || after.contains('\n')) =>
        {
            let _ = writeln!(
                out,
                "      {} {} = <<-EOT{forces}",
                style.paint("~", Action::Update),
                field.field
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
                    line.value().trim_end_matches('\n')
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
                "      {} {} = {} -> {}{forces}",
                style.paint("~", Action::Update),
                field.field,
                show(before),
                after_text
            );
        }
        (None, None) => {}
    }
}

/// A value on one line: strings quoted, objects and arrays as compact JSON.
fn inline_value(value: &Value) -> String {
    match value {
        Value::String(s) if s == super::UNKNOWN => s.clone(),
        Value::Null => "null".to_string(),
        other => mask(other).to_string(),
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

/// Terraform-`show -json`-like document.
pub fn json(plan: &Plan) -> Value {
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|change| {
            let replace_paths: Vec<Value> = change
                .fields
                .iter()
                .filter(|f| f.forces_replacement)
                .map(|f| json!(["spec", f.field]))
                .collect();
            let mut entry = json!({
                "address": change.address.to_string(),
                "kind": change.address.kind.as_str(),
                "name": change.address.name,
                "connection": change.connection,
                "change": {
                    "actions": change.action.json_actions(),
                    "before": change.before.as_ref().filter(|_| change.action != Action::Create).map(mask),
                    "after": change.after.as_ref().filter(|_| change.action != Action::Delete).map(mask),
                },
            });
            if !replace_paths.is_empty() {
                entry["change"]["replace_paths"] = Value::Array(replace_paths);
            }
            if !change.steps.is_empty() {
                entry["change"]["steps"] = json!(change.steps);
            }
            if let Some(reason) = &change.reason {
                entry["action_reason"] = json!(reason);
            }
            entry
        })
        .collect();
    let problems: Vec<Value> = plan
        .problems
        .iter()
        .map(|p| json!({"address": p.address.to_string(), "message": p.message}))
        .collect();
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "sextant_version": env!("CARGO_PKG_VERSION"),
        "complete": !plan.partial,
        "errored": !plan.problems.is_empty(),
        "resource_changes": changes,
        "summary": plan.summary(),
        "errors": problems,
    })
}

/// A pull-request comment: summary line, collapsible details with a ```diff block.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.problems.is_empty() {
        out.push_str("### ❌ Sextant plan failed\n\n");
        for problem in &plan.problems {
            let _ = writeln!(out, "- `{}`: {}", problem.address, problem.message);
        }
        return out;
    }
    if !plan.has_changes() {
        out.push_str(
            "### ✅ Sextant plan: no changes\n\nYour infrastructure matches the configuration.\n",
        );
        return out;
    }
    let _ = writeln!(
        out,
        "### Sextant plan: {}\n",
        summary_line(plan).trim_start_matches("Plan: ")
    );
    if plan.partial {
        out.push_str("> **Warning:** this plan is partial (`--target` was used).\n\n");
    }
    for change in plan.changes.iter().filter(|c| c.is_change()) {
        let _ = writeln!(
            out,
            "- `{}` {}",
            symbol(change.action).trim(),
            change.address
        );
    }
    let body = text(plan, Style::default());
    let opening = "\n<details><summary>Show plan</summary>\n\n```diff\n";
    let closing = "```\n\n</details>\n";
    let note = "\n… (output truncated to stay within the comment size limit; run `sextant plan` to see it all)\n";
    let budget = MARKDOWN_LIMIT - 1 - out.len() - opening.len() - closing.len() - note.len();
    out.push_str(opening);
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
    out.push_str(closing);
    out
}

/// Moves the action symbol to the first column so GitHub's `diff` highlighting colours it.
fn diff_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = match trimmed.chars().next() {
            Some('+') => "+",
            Some('-') if !trimmed.starts_with("-/+") => "-",
            Some('~') => "!",
            _ => " ",
        };
        let _ = writeln!(out, "{marker} {line}");
    }
    out
}

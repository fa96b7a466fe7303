//! Field-by-field comparison of a desired spec with a live one, comparing only what the user
//! wrote, and resolution of `${Kind/name.attr}` references.

use std::collections::BTreeSet;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Action, LiveMatch, LiveState, ResourceChange};
use crate::model::rules::CompleteObject;
use crate::model::{Address, CompactJson, Reference};

/// The value shown for something only known once apply has run.
pub const UNKNOWN: &str = "(known after apply)";

/// One changed top-level field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub forces_replacement: bool,
}

/// The result of [`diff_spec`].
#[derive(Debug, Default)]
pub struct SpecDiff {
    pub changes: Vec<FieldChange>,
    pub unchanged: usize,
}

/// Which side [`all_fields`] fills.
#[derive(Clone, Copy)]
pub enum Side {
    Before,
    After,
}

/// Every top-level field of `spec` as a change from or to nothing.
pub fn all_fields(spec: &Value, side: Side) -> Vec<FieldChange> {
    let Value::Object(map) = spec else {
        return Vec::new();
    };
    map.iter()
        .map(|(field, value)| FieldChange {
            field: field.clone(),
            before: matches!(side, Side::Before).then(|| value.clone()),
            after: matches!(side, Side::After).then(|| value.clone()),
            forces_replacement: false,
        })
        .collect()
}

/// Compares the fields of `desired` (only those the user wrote) with `live`, skipping `skip`.
pub fn diff_spec(desired: &Value, live: &Value, skip: &BTreeSet<&str>) -> SpecDiff {
    let mut out = SpecDiff::default();
    let Value::Object(wanted) = desired else {
        return out;
    };
    for (field, want) in wanted {
        if skip.contains(field.as_str()) {
            continue;
        }
        out.compare(field, want, live.get(field));
    }
    out
}

impl SpecDiff {
    /// Counts `field` unchanged when the live value covers the desired one, else records it.
    fn compare(&mut self, field: &str, want: &Value, have: Option<&Value>) {
        if covers(want, have) {
            self.unchanged += 1;
        } else {
            self.changes.push(FieldChange {
                field: field.to_string(),
                before: have.cloned(),
                after: Some(want.clone()),
                forces_replacement: false,
            });
        }
    }
}

/// [`diff_spec`] on specs held as compact text, without building either tree when a field's
/// text is the same on both sides (the usual case: a plan of 100,000 resources that did not
/// drift compares 100,000 pairs). A field whose texts differ is parsed and compared as
/// [`diff_spec`] does. Falls back to [`diff_spec`] on anything unusual (a spec that is not an
/// object, a key written with escapes).
pub fn diff_compact(desired: &CompactJson, live: &CompactJson, skip: &BTreeSet<&str>) -> SpecDiff {
    diff_fields(desired.as_str(), live.as_str(), skip)
        .unwrap_or_else(|| diff_spec(&desired.value(), &live.value(), skip))
}

/// The fields the manifest dropped while the live object keeps them, as changes (see
/// [`KindRules::complete_objects`] and [`KindRules::cleared_when_absent`]): a field in
/// `cleared` that the manifest leaves out but the live object holds, or an object in
/// `complete` with a live key the manifest does not write. Fields in `skip` or already in
/// `changed` are left out. Only the fields the rules name are parsed.
///
/// [`KindRules::complete_objects`]: crate::model::rules::KindRules::complete_objects
/// [`KindRules::cleared_when_absent`]: crate::model::rules::KindRules::cleared_when_absent
pub fn dropped_fields(
    desired: &CompactJson,
    live: &CompactJson,
    complete: &[CompleteObject],
    cleared: &[&str],
    skip: &BTreeSet<&str>,
    changed: &[FieldChange],
) -> Vec<FieldChange> {
    let mut out: Vec<FieldChange> = Vec::new();
    if complete.is_empty() && cleared.is_empty() {
        return out;
    }
    let wanted = top_fields(desired.as_str());
    let have = top_fields(live.as_str());
    let raw =
        |fields: &Option<Vec<(&str, &RawValue)>>, whole: &CompactJson, name: &str| match fields {
            Some(fields) => fields
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, raw)| raw.get().to_string()),
            None => whole.value().get(name).map(Value::to_string),
        };
    let parse = |text: Option<String>| -> Option<Value> {
        text.and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .filter(|v| !v.is_null())
    };
    let open = |field: &str, out: &[FieldChange]| {
        !skip.contains(field) && !changed.iter().chain(out).any(|c| c.field == field)
    };
    for &field in cleared {
        if !open(field, &out) || parse(raw(&wanted, desired, field)).is_some() {
            continue;
        }
        if let Some(before) = parse(raw(&have, live, field)).filter(|v| !is_empty(v)) {
            out.push(FieldChange {
                field: field.to_string(),
                before: Some(before),
                after: None,
                forces_replacement: false,
            });
        }
    }
    for rule in complete {
        let mut path = rule.path.split('.');
        let Some(field) = path.next() else { continue };
        if !open(field, &out) {
            continue;
        }
        if let Some(flag) = rule.when
            && parse(raw(&wanted, desired, flag)) != Some(Value::Bool(true))
        {
            continue;
        }
        let want_text = raw(&wanted, desired, field);
        let have_text = raw(&have, live, field);
        if want_text.is_none() || want_text == have_text {
            continue;
        }
        let (Some(want), Some(have)) = (parse(want_text), parse(have_text)) else {
            continue;
        };
        let rest: Vec<&str> = path.collect();
        let at = |value: &Value| {
            rest.iter()
                .try_fold(value.clone(), |v, key| v.get(*key).cloned())
        };
        let wanted_keys = at(&want);
        let Some(Value::Object(live_keys)) = at(&have) else {
            continue;
        };
        let dropped = live_keys.iter().any(|(key, value)| {
            !is_empty(value)
                && !rule.defaults.iter().any(|(name, default)| {
                    name == key && serde_json::from_str::<Value>(default).is_ok_and(|d| d == *value)
                })
                && wanted_keys
                    .as_ref()
                    .and_then(Value::as_object)
                    .is_none_or(|w| !w.contains_key(key))
        });
        if dropped {
            out.push(FieldChange {
                field: field.to_string(),
                before: Some(have),
                after: Some(want),
                forces_replacement: false,
            });
        }
    }
    out
}

/// Replaces each change of an object field in `fields` with one change per key that differs
/// (`access.<role>`), reading a key with an empty value as an absent one. Keys only the live
/// object has count when `complete(field)` says the manifest states the object whole.
/// Returns the changes and how many of them turned out to change nothing.
pub fn split_by_key(
    changes: Vec<FieldChange>,
    fields: &[&str],
    complete: impl Fn(&str) -> bool,
) -> (Vec<FieldChange>, usize) {
    if fields.is_empty() {
        return (changes, 0);
    }
    let mut out = Vec::with_capacity(changes.len());
    let mut unchanged = 0;
    for change in changes {
        let (Some(Value::Object(want)), before) = (&change.after, &change.before) else {
            out.push(change);
            continue;
        };
        if !fields.contains(&change.field.as_str()) {
            out.push(change);
            continue;
        }
        let empty = Map::new();
        let have = match before {
            Some(Value::Object(have)) => have,
            _ => &empty,
        };
        let whole = complete(&change.field);
        let mut keys: Vec<&String> = want.keys().collect();
        if whole {
            keys.extend(have.keys().filter(|k| !want.contains_key(*k)));
        }
        keys.sort();
        let mut split = Vec::new();
        for key in keys {
            let before = have.get(key).filter(|v| !is_empty(v));
            let after = want.get(key);
            let differs = match after {
                Some(after) if is_empty(after) => before.is_some(),
                Some(after) => !covers(after, before),
                None => before.is_some(),
            };
            if differs {
                split.push(FieldChange {
                    field: format!("{}.{key}", change.field),
                    before: before.cloned(),
                    after: after.cloned(),
                    forces_replacement: change.forces_replacement,
                });
            }
        }
        if split.is_empty() {
            unchanged += 1;
        }
        out.extend(split);
    }
    (out, unchanged)
}

/// Null, `""`, `[]` or `{}`: what a server may hold for a key nobody set.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn diff_fields(desired: &str, live: &str, skip: &BTreeSet<&str>) -> Option<SpecDiff> {
    let wanted = top_fields(desired)?;
    let have = top_fields(live)?;
    let mut out = SpecDiff::default();
    for &(field, want) in &wanted {
        if skip.contains(field) {
            continue;
        }
        let have = have
            .iter()
            .find(|(key, _)| *key == field)
            .map(|(_, raw)| *raw);
        // Identical text is an identical value, which covers itself unless it is unknown.
        if have.is_some_and(|have| have.get() == want.get()) && !want.get().contains(UNKNOWN) {
            out.unchanged += 1;
            continue;
        }
        let want: Value = serde_json::from_str(want.get()).ok()?;
        let have: Option<Value> = match have {
            Some(raw) => Some(serde_json::from_str(raw.get()).ok()?),
            None => None,
        };
        out.compare(field, &want, have.as_ref());
    }
    Some(out)
}

/// The top-level fields of a JSON object as unparsed text, in order; `None` when the text is
/// not an object or a key needs unescaping.
fn top_fields(text: &str) -> Option<Vec<(&str, &RawValue)>> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let fields = serde::Deserializer::deserialize_map(&mut deserializer, TopFields).ok()?;
    deserializer.end().ok()?;
    Some(fields)
}

/// Collects an object's entries as borrowed keys and unparsed values.
struct TopFields;

impl<'de> serde::de::Visitor<'de> for TopFields {
    type Value = Vec<(&'de str, &'de RawValue)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
            fields.push(entry);
        }
        Ok(fields)
    }
}

/// Whether the live value satisfies the desired one: objects compare only the desired keys,
/// everything else compares whole; an unknown desired value never matches.
fn covers(want: &Value, have: Option<&Value>) -> bool {
    match (want, have) {
        (Value::String(s), _) if s.contains(UNKNOWN) => false,
        (Value::Null, None) => true,
        (_, None) => false,
        (Value::Object(w), Some(Value::Object(h))) => {
            w.iter().all(|(key, value)| covers(value, h.get(key)))
        }
        (Value::Array(w), Some(Value::Array(h))) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| covers(a, Some(b)))
        }
        (Value::Number(a), Some(Value::Number(b))) => a.as_f64() == b.as_f64(),
        (a, Some(b)) => a == b,
    }
}

/// Replaces `${Kind/name.attr}` in every string of `spec` with the attribute's value, or marks
/// it [`UNKNOWN`] when the target is still to be created or replaced.
pub fn resolve_references(
    spec: &CompactJson,
    references: &[Reference],
    decided: &[ResourceChange],
    live: &LiveState,
) -> CompactJson {
    // `$${` (a literal `${`) is kept in the model and written out here.
    if references.is_empty() && !spec.as_str().contains("$${") {
        return spec.clone();
    }
    let lookup = |reference: &Reference| -> Option<String> {
        if let Ok(index) = decided.binary_search_by(|c| c.address.cmp(&reference.target))
            && matches!(decided[index].action, Action::Create | Action::Replace)
        {
            return None;
        }
        match live.get(&reference.target) {
            LiveMatch::Found { object, .. } => object.attributes.get(&reference.attribute).cloned(),
            _ => None,
        }
    };
    CompactJson::new(&substitute(&spec.value(), &|reference| lookup(reference)))
}

/// Replaces references in strings using `value_of`; unresolved ones become [`UNKNOWN`].
/// `$${` is an escaped `${` and becomes `${`.
pub fn substitute(spec: &Value, value_of: &dyn Fn(&Reference) -> Option<String>) -> Value {
    match spec {
        Value::String(text) if text.contains("${") => {
            let mut out = String::new();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                if rest[..start].ends_with('$') {
                    out.push_str(&rest[..start - 1]);
                    out.push_str("${");
                    rest = &rest[start + 2..];
                    continue;
                }
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else {
                    out.push_str(&rest[start..]);
                    rest = "";
                    break;
                };
                let inner = &after[..end];
                let resolved = parse_reference(inner).and_then(|r| value_of(&r));
                match resolved {
                    Some(value) => out.push_str(&value),
                    None => return Value::String(UNKNOWN.to_string()),
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute(v, value_of)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, value_of)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Parses `Kind/name.attr` (the attribute is after the last `.`).
pub fn parse_reference(inner: &str) -> Option<Reference> {
    let (target, attribute) = inner.rsplit_once('.')?;
    Some(Reference {
        target: Address::parse(target)?,
        attribute: attribute.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn skip() -> BTreeSet<&'static str> {
        BTreeSet::new()
    }

    #[test]
    fn diffing_compact_text_agrees_with_diffing_trees() {
        let unknown = json!({"a": UNKNOWN});
        let pairs = [
            (
                json!({"desc": "a", "n": 3}),
                json!({"desc": "a", "n": 3, "extra": [1]}),
            ),
            (json!({"n": 2}), json!({"n": 2.0})),
            (
                json!({"tgt": {"*": {"tgt": "w"}}}),
                json!({"tgt": {"*": {"tgt": "w", "tgt_type": "glob"}}}),
            ),
            (
                json!({"tgt": {"*": {"tgt": "w"}}}),
                json!({"tgt": {"*": {"tgt": "x"}}}),
            ),
            (
                json!({"desc": "a", "gone": null, "missing": 1}),
                json!({"desc": "b"}),
            ),
            (json!({"arg": [1, 2]}), json!({"arg": [1, 2, 3]})),
            (unknown.clone(), unknown.clone()),
            (
                json!({"skipped": 1, "k\"q": 1}),
                json!({"skipped": 2, "k\"q": 2}),
            ),
            (json!({"desc": "é ✓"}), json!({"desc": "é ✓"})),
            (json!([1]), json!({"a": 1})),
            (json!({"a": 1}), json!("not an object")),
        ];
        let skip: BTreeSet<&str> = ["skipped"].into();
        for (desired, live) in pairs {
            let trees = diff_spec(&desired, &live, &skip);
            let compact = diff_compact(&desired.clone().into(), &live.clone().into(), &skip);
            assert_eq!(compact.changes, trees.changes, "{desired} vs {live}");
            assert_eq!(compact.unchanged, trees.unchanged, "{desired} vs {live}");
        }
    }

    #[test]
    fn diff_of_an_object_with_itself_is_empty() {
        let spec = json!({"desc": "a", "tgt": {"*": {"tgt_type": "glob", "tgt": "web*"}}, "n": 3});
        let d = diff_spec(&spec, &spec, &skip());
        assert!(d.changes.is_empty());
        assert_eq!(d.unchanged, 3);
    }

    #[test]
    fn only_written_fields_are_compared() {
        let desired = json!({"desc": "a"});
        let live = json!({"desc": "a", "server_filled": 7});
        assert!(diff_spec(&desired, &live, &skip()).changes.is_empty());
    }

    #[test]
    fn nested_objects_compare_only_written_keys() {
        let desired = json!({"arg": {"kwarg": {"a": 1}}});
        let live = json!({"arg": {"arg": [], "kwarg": {"a": 1}}});
        assert!(diff_spec(&desired, &live, &skip()).changes.is_empty());
    }

    #[test]
    fn a_changed_field_is_reported_with_both_sides() {
        let d = diff_spec(&json!({"num_hosts": 4}), &json!({"num_hosts": 2}), &skip());
        assert_eq!(
            d.changes,
            vec![FieldChange {
                field: "num_hosts".into(),
                before: Some(json!(2)),
                after: Some(json!(4)),
                forces_replacement: false
            }]
        );
    }

    #[test]
    fn keys_dropped_from_complete_objects_and_cleared_fields_are_changes() {
        let complete = [
            CompleteObject {
                path: "schedule",
                when: None,
                defaults: &[("timezone", "\"UTC\"")],
            },
            CompleteObject {
                path: "arg.kwarg",
                when: None,
                defaults: &[],
            },
            CompleteObject {
                path: "access",
                when: Some("exclusive"),
                defaults: &[],
            },
        ];
        let dropped = |desired: Value, live: Value| -> Vec<(String, bool)> {
            dropped_fields(
                &desired.into(),
                &live.into(),
                &complete,
                &["target"],
                &skip(),
                &[],
            )
            .into_iter()
            .map(|c| (c.field, c.after.is_some()))
            .collect()
        };
        let live = json!({
            "schedule": {"cron": "0 3 * * *", "until": "2099-01-01", "splay": {}, "timezone": "UTC"},
            "arg": {"arg": [], "kwarg": {"mods": "web", "test": true}},
            "access": {"ops": ["read"], "dev": ["read"]},
            "target": "web",
        });
        // Everything the live object holds is written: nothing dropped.
        let same = live.clone();
        assert!(dropped(same, live.clone()).is_empty());
        // A dropped timing key, kwarg and target; empty live values and keys at their
        // defaults do not count.
        let desired = json!({
            "schedule": {"cron": "0 3 * * *"},
            "arg": {"kwarg": {"mods": "web"}},
            "access": {"ops": ["read"]},
        });
        assert_eq!(
            dropped(desired.clone(), live.clone()),
            [
                ("target".to_string(), false),
                ("schedule".to_string(), true),
                ("arg".to_string(), true),
            ]
        );
        // An object the manifest does not write is not managed; `when` turns a rule on.
        let mut exclusive =
            json!({"access": {"ops": ["read"]}, "exclusive": true, "target": "web"});
        assert_eq!(
            dropped(exclusive.clone(), live.clone()),
            [("access".to_string(), true)]
        );
        exclusive["exclusive"] = json!(false);
        assert!(dropped(exclusive, live.clone()).is_empty());
        // Fields already changed or skipped are left alone.
        let skip: BTreeSet<&str> = BTreeSet::from(["schedule", "target"]);
        let already = [FieldChange {
            field: "arg".into(),
            before: None,
            after: None,
            forces_replacement: false,
        }];
        let found = dropped_fields(
            &desired.into(),
            &live.into(),
            &complete,
            &["target"],
            &skip,
            &already,
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn object_changes_split_per_key_and_empty_equals_absent() {
        let change = |before: Value, after: Value| FieldChange {
            field: "access".into(),
            before: Some(before),
            after: Some(after),
            forces_replacement: false,
        };
        let live = json!({"Ops": ["read"], "Dev": ["read", "write"], "Gone": []});
        let desired =
            json!({"Ops": ["read", "run"], "Gone": [], "New": [], "Dev": ["read", "write"]});
        let (split, unchanged) = split_by_key(
            vec![change(live.clone(), desired.clone())],
            &["access"],
            |_| false,
        );
        assert_eq!(unchanged, 0);
        assert_eq!(
            split
                .iter()
                .map(|c| (c.field.as_str(), c.before.clone(), c.after.clone()))
                .collect::<Vec<_>>(),
            [(
                "access.Ops",
                Some(json!(["read"])),
                Some(json!(["read", "run"]))
            )]
        );
        // A complete map also lists the live roles it leaves out.
        let (split, _) = split_by_key(
            vec![change(live.clone(), json!({"Ops": ["read"]}))],
            &["access"],
            |_| true,
        );
        let fields: Vec<&str> = split.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["access.Dev"]);
        assert_eq!(split[0].after, None);
        // Nothing left to change: the field counts as unchanged; other fields pass through.
        let other = FieldChange {
            field: "desc".into(),
            before: Some(json!("a")),
            after: Some(json!("b")),
            forces_replacement: false,
        };
        let (split, unchanged) = split_by_key(
            vec![change(live, json!({"Gone": []})), other],
            &["access"],
            |_| false,
        );
        assert_eq!(unchanged, 1);
        assert_eq!(split.len(), 1);
        assert_eq!(split[0].field, "desc");
    }

    #[test]
    fn skipped_fields_are_not_compared() {
        let mut skip = BTreeSet::new();
        skip.insert("desc");
        assert!(
            diff_spec(&json!({"desc": "x"}), &json!({"desc": "y"}), &skip)
                .changes
                .is_empty()
        );
    }

    #[test]
    fn integers_and_floats_of_equal_value_match() {
        assert!(
            diff_spec(&json!({"n": 2}), &json!({"n": 2.0}), &skip())
                .changes
                .is_empty()
        );
    }

    #[test]
    fn references_resolve_or_become_unknown() {
        let known = |r: &Reference| (r.attribute == "vc_url").then(|| "https://vc".to_string());
        let spec = json!({"a": "url=${Sddc/prod.vc_url}", "b": ["${Sddc/prod.id}"]});
        let out = substitute(&spec, &known);
        assert_eq!(out, json!({"a": "url=https://vc", "b": [UNKNOWN]}));
    }

    #[test]
    fn escaped_dollar_braces_become_literal_text() {
        let known = |r: &Reference| (r.attribute == "vc_url").then(|| "https://vc".to_string());
        let spec = json!({"a": "echo $${HOME} at ${Sddc/prod.vc_url}", "b": "$$${x}", "c": "$${"});
        let out = substitute(&spec, &known);
        assert_eq!(
            out,
            json!({"a": "echo ${HOME} at https://vc", "b": "$${x}", "c": "${"})
        );
        // Without any reference the escapes are written out too.
        let live = LiveState::default();
        let resolved = resolve_references(
            &CompactJson::new(&json!({"d": "$${HOME}"})),
            &[],
            &[],
            &live,
        );
        assert_eq!(resolved.value(), json!({"d": "${HOME}"}));
    }

    #[test]
    fn unknown_values_never_match() {
        let d = diff_spec(&json!({"a": UNKNOWN}), &json!({"a": "x"}), &skip());
        assert_eq!(d.changes.len(), 1);
    }
}

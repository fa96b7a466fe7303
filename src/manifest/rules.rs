//! Per-kind rules beyond the schema (host counts, CIDR prefixes, schedule timing, ...) and
//! the canonical spelling of each kind's spec, as the planner compares it.

use std::path::Path;

use serde_json::Value as Json;

use super::diagnostics::Diagnostic;
use super::node::{Node, Pos};
use super::spec::{
    SaltJobSpec, SaltScheduleSpec, SaltTargetSpec, SddcProvider, SddcSpec, SddcType,
};

/// Collects rule violations for one spec, positioned at the offending node.
pub struct RuleContext<'a> {
    pub file: &'a Path,
    pub spec_node: &'a Node,
    pub errors: Vec<Diagnostic>,
}

fn has_reference(text: &str) -> bool {
    text.contains("${")
}

impl<'a> RuleContext<'a> {
    pub fn new(file: &'a Path, spec_node: &'a Node) -> Self {
        Self {
            file,
            spec_node,
            errors: Vec::new(),
        }
    }

    fn pos(&self, path: &[&str]) -> Pos {
        let mut node = self.spec_node;
        for key in path {
            match node.get(key) {
                Some(next) => node = next,
                None => break,
            }
        }
        node.pos
    }

    fn error(&mut self, path: &[&str], message: impl Into<String>, hint: Option<&str>) {
        let pos = self.pos(path);
        let full = std::iter::once("spec")
            .chain(path.iter().copied())
            .collect::<Vec<_>>()
            .join(".");
        self.errors.push(
            Diagnostic::new(self.file, pos, full, message).with_hint(hint.map(str::to_string)),
        );
    }

    pub fn check_sddc(&mut self, spec: &SddcSpec) {
        let one_node = spec.sddc_type == Some(SddcType::OneNode);
        let multi_az = spec.deployment_type.is_some_and(|d| d.is_multi_az());
        let hosts = spec.num_hosts;
        if one_node && hosts != 1 {
            self.error(
                &["num_hosts"],
                format!("a `1NODE` SDDC has exactly 1 host, found {hosts}"),
                Some("remove `sddc_type: 1NODE` for a regular SDDC of 2 hosts or more"),
            );
        } else if !one_node && hosts < 2 {
            self.error(
                &["num_hosts"],
                format!("an SDDC needs at least 2 hosts, found {hosts}"),
                Some("set `sddc_type: 1NODE` for a single-host SDDC"),
            );
        }
        if multi_az && one_node {
            self.error(
                &["deployment_type"],
                "a `1NODE` SDDC cannot be `MultiAZ`",
                None,
            );
        } else if multi_az && !hosts.is_multiple_of(2) {
            self.error(
                &["num_hosts"],
                format!("a `MultiAZ` SDDC needs an even number of hosts, found {hosts}"),
                Some("hosts are added in pairs across the two availability zones"),
            );
        }
        if !has_reference(&spec.region) && canonical_region(&spec.region).is_none() {
            self.error(
                &["region"],
                format!("`{}` is not an AWS region", spec.region),
                Some("write it like `us-west-2` or `US_WEST_2`"),
            );
        }
        if let Some(cidr) = &spec.vpc_cidr
            && !has_reference(cidr)
        {
            match parse_cidr(cidr) {
                Err(message) => self.error(&["vpc_cidr"], message, None),
                Ok((_, prefix)) if ![16, 20, 23].contains(&prefix) => self.error(
                    &["vpc_cidr"],
                    format!("`vpc_cidr` must have prefix /16, /20 or /23, found /{prefix}"),
                    None,
                ),
                Ok(_) => {}
            }
        }
        if let Some(subnet) = &spec.vxlan_subnet
            && !has_reference(subnet)
            && let Err(message) = parse_cidr(subnet)
        {
            self.error(&["vxlan_subnet"], message, None);
        }
        self.check_account_link(spec, multi_az);
    }

    /// An `AWS` SDDC is created with its AWS account linked (`connected_account_id` plus one
    /// subnet, two for MultiAZ) or with linking explicitly delayed: the service refuses
    /// anything else with 400 "Invalid account linking configuration: null"
    /// (vmware/terraform-provider-vmc PR #215; `../shared/api/README.md`, "Corrections").
    fn check_account_link(&mut self, spec: &SddcSpec, multi_az: bool) {
        let (expected, layout, subnets) = if multi_az {
            (2, "MultiAZ", "two subnets, one per zone,")
        } else {
            (1, "SingleAZ", "one subnet")
        };
        let link = spec.account_link.as_ref();
        if let Some(subnets) = link.and_then(|l| l.customer_subnet_ids.as_ref())
            && subnets.len() != expected
        {
            self.error(
                &["account_link", "customer_subnet_ids"],
                format!(
                    "a `{layout}` SDDC links exactly {expected} subnet(s), found {}",
                    subnets.len()
                ),
                None,
            );
            return;
        }
        let aws = spec.provider.is_none_or(|p| p == SddcProvider::Aws);
        if !aws || link.and_then(|l| l.delay) == Some(true) {
            return;
        }
        let hint = format!(
            "set `account_link.connected_account_id` and `account_link.customer_subnet_ids` ({subnets} for {layout}), or `account_link: {{ delay: true }}` to link the AWS account later"
        );
        let missing: Vec<&str> = match link {
            None => {
                self.error(
                    &["account_link"],
                    "an `AWS` SDDC needs `account_link`: the service refuses to create it without a linked AWS account or an explicit delay",
                    Some(hint.as_str()),
                );
                return;
            }
            Some(link) => [
                (
                    link.connected_account_id
                        .as_deref()
                        .is_none_or(|a| a.trim().is_empty()),
                    "`connected_account_id`",
                ),
                (link.customer_subnet_ids.is_none(), "`customer_subnet_ids`"),
            ]
            .into_iter()
            .filter(|(absent, _)| *absent)
            .map(|(_, name)| name)
            .collect(),
        };
        if !missing.is_empty() {
            self.error(
                &["account_link"],
                format!(
                    "`account_link` of an `AWS` SDDC needs {} unless `delay: true`",
                    missing.join(" and ")
                ),
                Some(hint.as_str()),
            );
        }
    }

    pub fn check_salt_target(&mut self, spec: &SaltTargetSpec) {
        for (master, entry) in &spec.tgt {
            if entry.tgt.trim().is_empty() {
                self.error(
                    &["tgt", master, "tgt"],
                    "targeting expression is empty",
                    None,
                );
            }
        }
        if spec.tgt.contains_key("*") && spec.tgt.len() > 1 {
            self.error(
                &["tgt"],
                "`*` (every master) must be the only key of `tgt`",
                None,
            );
        }
        self.check_access(
            spec.access.as_ref().map(|a| a.keys()),
            spec.access_exclusive,
        );
    }

    /// `access` names its roles; `access_exclusive: true` needs `access`.
    fn check_access<'r>(
        &mut self,
        roles: Option<impl Iterator<Item = &'r String>>,
        exclusive: Option<bool>,
    ) {
        match roles {
            Some(roles) => {
                for role in roles {
                    if role.trim().is_empty() {
                        self.error(&["access"], "a role name is empty", None);
                    }
                }
            }
            None if exclusive == Some(true) => self.error(
                &["access_exclusive"],
                "`access_exclusive: true` needs `access`",
                Some("name the roles that keep access in `access`; `access: {}` takes it from every role"),
            ),
            None => {}
        }
    }

    pub fn check_salt_job(&mut self, spec: &SaltJobSpec) {
        let fun = spec.fun.trim();
        if !has_reference(fun) && (!fun.contains('.') || fun.starts_with('.') || fun.ends_with('.'))
        {
            self.error(
                &["fun"],
                format!("`{fun}` is not a Salt function name"),
                Some("write `module.function`, e.g. `test.ping` or `state.apply`"),
            );
        }
        self.check_access(
            spec.access.as_ref().map(|a| a.keys()),
            spec.access_exclusive,
        );
    }

    pub fn check_salt_schedule(&mut self, spec: &SaltScheduleSpec) {
        let timing = &spec.schedule;
        let interval = timing.seconds.is_some()
            || timing.minutes.is_some()
            || timing.hours.is_some()
            || timing.days.is_some();
        let styles = [
            (interval, "an interval"),
            (timing.cron.is_some(), "`cron`"),
            (timing.once.is_some(), "`once`"),
            (timing.when.is_some(), "`when`"),
        ];
        let used: Vec<&str> = styles
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        if used.is_empty() {
            self.error(
                &["schedule"],
                "`schedule` does not say when to run",
                Some("set one of `seconds`, `minutes`, `hours`, `days`, `cron`, `once` or `when`"),
            );
        } else if used.len() > 1 {
            self.error(
                &["schedule"],
                format!("`schedule` mixes {}; use one of them", used.join(" and ")),
                None,
            );
        }
        if let Some(cron) = &timing.cron
            && let Err(message) = check_cron(cron)
        {
            self.error(
                &["schedule", "cron"],
                message,
                Some("e.g. `0 3 * * *` runs every day at 03:00"),
            );
        }
        if let Some(once) = &timing.once
            && parse_date_time(once).is_none()
        {
            self.error(
                &["schedule", "once"],
                format!("`{once}` is not an ISO 8601 date-time"),
                Some("e.g. `2026-06-25T23:00`"),
            );
        }
        for (field, value) in [("after", &timing.after), ("until", &timing.until)] {
            if let Some(value) = value
                && parse_date_time(value).is_none()
            {
                self.error(
                    &["schedule", field],
                    format!("`{value}` is not an ISO 8601 date-time"),
                    Some("e.g. `2026-06-25T23:00`"),
                );
            }
        }
        if let Some(when) = &timing.when {
            let mut times: Vec<(Vec<&str>, &String)> = Vec::new();
            for time in when.daily.iter().flatten() {
                times.push((vec!["schedule", "when", "daily"], time));
            }
            if let Some(weekly) = &when.weekly {
                let days = [
                    ("mon", &weekly.mon),
                    ("tue", &weekly.tue),
                    ("wed", &weekly.wed),
                    ("thu", &weekly.thu),
                    ("fri", &weekly.fri),
                    ("sat", &weekly.sat),
                    ("sun", &weekly.sun),
                ];
                for (day, list) in days {
                    for time in list.iter().flatten() {
                        times.push((vec!["schedule", "when", "weekly", day], time));
                    }
                }
            }
            if times.is_empty() {
                self.error(&["schedule", "when"], "`when` lists no times", None);
            }
            for (path, time) in times {
                if chrono::NaiveTime::parse_from_str(time, "%H:%M").is_err() {
                    self.error(
                        &path,
                        format!("`{time}` is not a time of day"),
                        Some("write `HH:MM`, e.g. `03:30`"),
                    );
                }
            }
        }
        if let Some(splay) = &timing.splay
            && splay.start.unwrap_or(0) > splay.end
        {
            self.error(
                &["schedule", "splay"],
                "`splay.start` is greater than `splay.end`",
                None,
            );
        }
    }
}

fn parse_date_time(text: &str) -> Option<chrono::NaiveDateTime> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(dt.naive_utc());
    }
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
}

/// Checks a Salt schedule's `cron` as the master reads it: Salt hands it to `croniter`
/// (saltstack/salt `doc/topics/jobs/schedule.rst`, "cron"), which takes five fields, a sixth
/// for seconds written last, or an `@` macro. `croner` checks the values; it reads seconds
/// first, so a sixth field is moved to the front.
fn check_cron(cron: &str) -> Result<(), String> {
    const MACROS: [&str; 7] = [
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ];
    const NAMES: [&str; 6] = [
        "second",
        "minute",
        "hour",
        "day of month",
        "month",
        "day of week",
    ];
    let mut fields: Vec<&str> = cron.split_whitespace().collect();
    if fields.len() == 1 && fields[0].starts_with('@') {
        return if MACROS.contains(&fields[0]) {
            Ok(())
        } else {
            Err(format!(
                "`{cron}` is not a cron expression (macros are {})",
                MACROS.join(", ")
            ))
        };
    }
    if !(5..=6).contains(&fields.len()) {
        return Err(format!(
            "`{cron}` is not a cron expression (5 fields expected, found {})",
            fields.len()
        ));
    }
    if fields.len() == 6 {
        fields.rotate_right(1);
    }
    let names = &NAMES[6 - fields.len()..];
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .build();
    let Err(whole) = parser.parse(&fields.join(" ")) else {
        return Ok(());
    };
    // Name the first field croner refuses on its own, every other field a `*`.
    let alone = |i: usize| {
        let mut probe = vec!["*"; fields.len()];
        probe[i] = fields[i];
        parser.parse(&probe.join(" ")).err()
    };
    Err(match (0..fields.len()).find_map(|i| Some((i, alone(i)?))) {
        Some((i, err)) => format!(
            "`{cron}` is not a cron expression: the {} field `{}` is invalid ({})",
            names[i],
            fields[i],
            cron_reason(&err)
        ),
        None => format!(
            "`{cron}` is not a cron expression ({})",
            cron_reason(&whole)
        ),
    })
}

/// croner's reason without its type-name prefix or closing period.
fn cron_reason(err: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    let text = match err {
        CronError::InvalidPattern(text)
        | CronError::IllegalCharacters(text)
        | CronError::ComponentError(text) => text.clone(),
        other => other.to_string(),
    };
    let text = text.trim_end_matches('.');
    let text = text.strip_prefix("CronPattern ").unwrap_or(text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Parses `a.b.c.d/p`; host bits must be zero.
pub fn parse_cidr(text: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let net: ipnet::Ipv4Net = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an IPv4 CIDR block like `10.2.0.0/16`"))?;
    if net != net.trunc() {
        return Err(format!(
            "`{text}` has host bits set; the network is `{}`",
            net.trunc()
        ));
    }
    Ok((net.addr(), net.prefix_len()))
}

/// `us-west-2` / `US_WEST_2` → `US_WEST_2`; `None` when it does not look like a region.
pub fn canonical_region(region: &str) -> Option<String> {
    let canonical = region.trim().to_uppercase().replace('-', "_");
    let parts: Vec<&str> = canonical.split('_').collect();
    let valid = parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_uppercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_uppercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    valid.then_some(canonical)
}

/// Rewrites a spec (user-written fields only) into the canonical spelling of its kind.
pub fn canonicalize(kind: crate::model::Kind, spec: &mut Json) {
    let Json::Object(map) = spec else { return };
    map.retain(|_, value| !value.is_null());
    if matches!(
        kind,
        crate::model::Kind::SaltJob | crate::model::Kind::SaltTarget
    ) && let Some(Json::Object(access)) = map.get_mut("access")
    {
        // Each role's permissions as a set: sorted, once each.
        for permissions in access.values_mut() {
            if let Json::Array(list) = permissions {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                list.dedup();
            }
        }
    }
    if kind != crate::model::Kind::Sddc {
        return;
    }
    if let Some(Json::String(region)) = map.get_mut("region")
        && let Some(canonical) = canonical_region(region)
    {
        *region = canonical;
    }
    if let Some(Json::String(deployment)) = map.get_mut("deployment_type") {
        match deployment.as_str() {
            "SINGLE_AZ" => *deployment = "SingleAZ".to_string(),
            "MULTI_AZ" => *deployment = "MultiAZ".to_string(),
            _ => {}
        }
    }
    if let Some(Json::String(size)) = map.get_mut("size") {
        *size = size.to_lowercase();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::parse_documents;

    fn run<T: serde::de::DeserializeOwned>(
        yaml: &str,
        check: impl Fn(&mut RuleContext<'_>, &T),
    ) -> Vec<String> {
        let node = parse_documents(yaml).unwrap().remove(0);
        let spec: T = serde_json::from_value(node.to_json()).unwrap();
        let mut ctx = RuleContext::new(Path::new("t.yaml"), &node);
        check(&mut ctx, &spec);
        ctx.errors
            .iter()
            .map(|d| format!("{}:{} {}: {}", d.line, d.column, d.path, d.message))
            .collect()
    }

    /// The rules of a `ZEROCLOUD` SDDC (which needs no account link) written as `yaml`.
    fn sddc(yaml: &str) -> Vec<String> {
        aws_sddc(&format!("{yaml}provider: ZEROCLOUD\n"))
    }

    fn aws_sddc(yaml: &str) -> Vec<String> {
        run::<SddcSpec>(yaml, |ctx, spec| ctx.check_sddc(spec))
    }

    fn schedule(yaml: &str) -> Vec<String> {
        run::<SaltScheduleSpec>(yaml, |ctx, spec| ctx.check_salt_schedule(spec))
    }

    #[test]
    fn one_node_sddc_has_exactly_one_host() {
        let errors = sddc("region: us-west-2\nnum_hosts: 2\nsddc_type: 1NODE\n");
        assert_eq!(
            errors,
            vec!["2:12 spec.num_hosts: a `1NODE` SDDC has exactly 1 host, found 2"]
        );
        assert!(sddc("region: us-west-2\nnum_hosts: 1\nsddc_type: 1NODE\n").is_empty());
    }

    #[test]
    fn regular_sddc_needs_two_hosts() {
        let errors = sddc("region: us-west-2\nnum_hosts: 1\n");
        assert_eq!(
            errors,
            vec!["2:12 spec.num_hosts: an SDDC needs at least 2 hosts, found 1"]
        );
    }

    #[test]
    fn multi_az_needs_even_hosts() {
        let errors = sddc("region: us-west-2\nnum_hosts: 3\ndeployment_type: MULTI_AZ\n");
        assert_eq!(
            errors,
            vec!["2:12 spec.num_hosts: a `MultiAZ` SDDC needs an even number of hosts, found 3"]
        );
        let errors =
            sddc("region: us-west-2\nnum_hosts: 1\nsddc_type: 1NODE\ndeployment_type: MultiAZ\n");
        assert_eq!(
            errors,
            vec!["4:18 spec.deployment_type: a `1NODE` SDDC cannot be `MultiAZ`"]
        );
    }

    #[test]
    fn vpc_cidr_prefix_and_host_bits() {
        let errors = sddc("region: us-west-2\nnum_hosts: 2\nvpc_cidr: 10.2.0.0/24\n");
        assert_eq!(
            errors,
            vec!["3:11 spec.vpc_cidr: `vpc_cidr` must have prefix /16, /20 or /23, found /24"]
        );
        let errors = sddc("region: us-west-2\nnum_hosts: 2\nvpc_cidr: 10.2.0.1/16\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("the network is `10.2.0.0/16`"),
            "{errors:?}"
        );
        let errors = sddc("region: us-west-2\nnum_hosts: 2\nvxlan_subnet: 10.2.0/16\n");
        assert_eq!(errors.len(), 1);
        assert!(sddc("region: us-west-2\nnum_hosts: 2\nvpc_cidr: 10.2.0.0/20\n").is_empty());
    }

    #[test]
    fn region_spelling() {
        assert_eq!(canonical_region("us-west-2").as_deref(), Some("US_WEST_2"));
        assert_eq!(
            canonical_region("AP_SOUTHEAST_1").as_deref(),
            Some("AP_SOUTHEAST_1")
        );
        assert_eq!(canonical_region("oregon"), None);
        let errors = sddc("region: oregon\nnum_hosts: 2\n");
        assert_eq!(
            errors,
            vec!["1:9 spec.region: `oregon` is not an AWS region"]
        );
    }

    #[test]
    fn account_link_subnets_follow_the_layout() {
        let errors =
            sddc("region: us-west-2\nnum_hosts: 2\naccount_link:\n  customer_subnet_ids: [a, b]\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("exactly 1 subnet"), "{errors:?}");
    }

    #[test]
    fn aws_sddcs_link_an_account_or_delay_linking() {
        let errors = aws_sddc("region: us-west-2\nnum_hosts: 2\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("1:1 spec.account_link: an `AWS` SDDC needs `account_link`"),
            "{errors:?}"
        );
        let errors = aws_sddc(
            "region: us-west-2\nnum_hosts: 2\nprovider: AWS\naccount_link:\n  customer_subnet_ids: [s]\n",
        );
        assert_eq!(
            errors,
            vec![
                "5:3 spec.account_link: `account_link` of an `AWS` SDDC needs `connected_account_id` unless `delay: true`"
            ]
        );
        let errors = aws_sddc(
            "region: us-west-2\nnum_hosts: 2\ndeployment_type: MultiAZ\naccount_link: { connected_account_id: a, customer_subnet_ids: [s] }\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("exactly 2 subnet"), "{errors:?}");
        for ok in [
            "account_link: { delay: true }\n",
            "account_link: { connected_account_id: a, customer_subnet_ids: [s] }\n",
            "provider: ZEROCLOUD\n",
        ] {
            let errors = aws_sddc(&format!("region: us-west-2\nnum_hosts: 2\n{ok}"));
            assert!(errors.is_empty(), "{ok}: {errors:?}");
        }
    }

    #[test]
    fn canonical_sddc_spelling() {
        let mut spec = serde_json::json!({
            "region": "us-west-2", "deployment_type": "SINGLE_AZ", "size": "medium", "desc": null
        });
        canonicalize(crate::model::Kind::Sddc, &mut spec);
        assert_eq!(
            spec,
            serde_json::json!({"region": "US_WEST_2", "deployment_type": "SingleAZ", "size": "medium"})
        );
    }

    #[test]
    fn schedule_needs_exactly_one_timing_style() {
        let errors = schedule("job: j\nschedule:\n  timezone: UTC\n");
        assert_eq!(
            errors,
            vec!["3:3 spec.schedule: `schedule` does not say when to run"]
        );
        let errors = schedule("job: j\nschedule:\n  minutes: 5\n  cron: '0 3 * * *'\n");
        assert_eq!(
            errors,
            vec!["3:3 spec.schedule: `schedule` mixes an interval and `cron`; use one of them"]
        );
        assert!(schedule("job: j\nschedule:\n  cron: '0 3 * * *'\n").is_empty());
        assert!(schedule("job: j\nschedule:\n  cron: '@daily'\n").is_empty());
    }

    #[test]
    fn access_permissions_are_a_sorted_set_and_exclusive_needs_access() {
        let mut spec = serde_json::json!({"fun": "test.ping",
            "access": {"Ops": ["run", "read", "run"], "Dev": []}});
        canonicalize(crate::model::Kind::SaltJob, &mut spec);
        assert_eq!(
            spec["access"],
            serde_json::json!({"Ops": ["read", "run"], "Dev": []})
        );
        let errors = run::<SaltJobSpec>("fun: test.ping\naccess_exclusive: true\n", |ctx, spec| {
            ctx.check_salt_job(spec)
        });
        assert_eq!(
            errors,
            vec!["2:19 spec.access_exclusive: `access_exclusive: true` needs `access`"]
        );
        let errors = run::<SaltTargetSpec>(
            "tgt: {'*': {tgt_type: glob, tgt: w}}\naccess: {' ': [read]}\n",
            |ctx, spec| ctx.check_salt_target(spec),
        );
        assert_eq!(errors, vec!["2:9 spec.access: a role name is empty"]);
    }

    #[test]
    fn schedule_values_are_checked() {
        let errors = schedule("job: j\nschedule:\n  cron: every day\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        for bad in [
            "a b c d e",
            "61 * * * *",
            "0 3 * * 8",
            "0 0 3 * * * 2030",
            "@sometimes",
        ] {
            let errors = schedule(&format!("job: j\nschedule:\n  cron: '{bad}'\n"));
            assert_eq!(errors.len(), 1, "`{bad}` passed: {errors:?}");
            assert!(
                errors[0].starts_with("3:9 spec.schedule.cron: "),
                "{errors:?}"
            );
        }
        for good in [
            "*/5 * * * *",
            "0 3 * * 1-5",
            "0 0 1 JAN *",
            "0 3 * * * 30",
            "@hourly",
        ] {
            let errors = schedule(&format!("job: j\nschedule:\n  cron: '{good}'\n"));
            assert!(errors.is_empty(), "`{good}`: {errors:?}");
        }
        let errors = schedule("job: j\nschedule:\n  once: tomorrow\n");
        assert_eq!(
            errors,
            vec!["3:9 spec.schedule.once: `tomorrow` is not an ISO 8601 date-time"]
        );
        let errors = schedule("job: j\nschedule:\n  when:\n    daily: ['25:00']\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        let errors = schedule("job: j\nschedule:\n  minutes: 5\n  splay: {start: 10, end: 5}\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn salt_function_names_have_a_module() {
        let errors = run::<SaltJobSpec>("fun: ping\n", |ctx, spec| ctx.check_salt_job(spec));
        assert_eq!(
            errors,
            vec!["1:6 spec.fun: `ping` is not a Salt function name"]
        );
    }

    #[test]
    fn star_master_must_be_alone() {
        let errors = run::<SaltTargetSpec>(
            "tgt:\n  '*': {tgt_type: glob, tgt: 'web*'}\n  m1: {tgt_type: glob, tgt: ''}\n",
            |ctx, spec| ctx.check_salt_target(spec),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}

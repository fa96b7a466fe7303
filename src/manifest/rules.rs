//! Where a kind's checks beyond the schema report (its module's `ResourceKind::check`):
//! [`RuleContext`] turns each finding into a diagnostic at the offending node, and answers
//! what the checks ask of the document being loaded.

use std::path::{Path, PathBuf};

use super::diagnostics::Diagnostic;
use super::files::Confinement;
use super::node::{Node, Pos};
use crate::model::Connection;
use crate::model::kinds::CheckContext;

/// Collects rule violations for one spec, positioned at the offending node.
pub struct RuleContext<'a> {
    pub file: &'a Path,
    /// The whole document, for findings about its top-level fields.
    pub doc_node: &'a Node,
    pub spec_node: &'a Node,
    /// The document's `name`.
    pub name: &'a str,
    /// The directory of the document's file, for paths the spec names.
    pub base_dir: &'a Path,
    /// Where secrets may be written; `None`: nowhere.
    pub confinement: Option<&'a Confinement>,
    /// The connection the document resolved to, when declared and valid.
    pub connection: Option<&'a Connection>,
    pub errors: Vec<Diagnostic>,
}

impl<'a> RuleContext<'a> {
    /// A context for the spec alone: no name, no connection, nowhere to write.
    pub fn new(file: &'a Path, spec_node: &'a Node) -> Self {
        Self {
            file,
            doc_node: spec_node,
            spec_node,
            name: "",
            base_dir: Path::new("."),
            confinement: None,
            connection: None,
            errors: Vec::new(),
        }
    }

    fn pos(&self, path: &[&str]) -> Pos {
        self.spec_node.deepest(path.iter().copied()).pos
    }
}

impl CheckContext for RuleContext<'_> {
    fn error(&mut self, path: &[&str], message: String, hint: Option<String>) {
        let pos = self.pos(path);
        let full = std::iter::once("spec")
            .chain(path.iter().copied())
            .collect::<Vec<_>>()
            .join(".");
        self.errors
            .push(Diagnostic::new(self.file, pos, full, message).with_hint(hint));
    }

    fn document_error(&mut self, field: &str, message: String, hint: Option<String>) {
        let pos = self
            .doc_node
            .get(field)
            .or_else(|| self.doc_node.get("kind"))
            .map_or(self.doc_node.pos, |n| n.pos);
        self.errors
            .push(Diagnostic::new(self.file, pos, field, message).with_hint(hint));
    }

    fn name(&self) -> &str {
        self.name
    }

    fn local_path(&self, relative: &str) -> PathBuf {
        self.base_dir.join(relative)
    }

    fn may_write(&self, path: &Path) -> bool {
        self.confinement.is_some_and(|c| c.may_write_token(path))
    }

    fn connection(&self) -> Option<&Connection> {
        self.connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::parse_documents;
    use crate::model::Kind;
    use crate::model::kinds::ResourceKind;
    use crate::model::kinds::salt_job::{SaltJob, SaltJobSpec};
    use crate::model::kinds::salt_schedule::{SaltSchedule, SaltScheduleSpec};
    use crate::model::kinds::salt_target::{SaltTarget, SaltTargetSpec};
    use crate::model::kinds::sddc::{Sddc, SddcSpec, canonical_region};

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
        run::<SddcSpec>(yaml, |ctx, spec| Sddc::check(spec, ctx))
    }

    fn schedule(yaml: &str) -> Vec<String> {
        run::<SaltScheduleSpec>(yaml, |ctx, spec| SaltSchedule::check(spec, ctx))
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
        Kind::Sddc.canonicalize(&mut spec);
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
        Kind::SaltJob.canonicalize(&mut spec);
        assert_eq!(
            spec["access"],
            serde_json::json!({"Ops": ["read", "run"], "Dev": []})
        );
        let errors = run::<SaltJobSpec>("fun: test.ping\naccess_exclusive: true\n", |ctx, spec| {
            SaltJob::check(spec, ctx)
        });
        assert_eq!(
            errors,
            vec!["2:19 spec.access_exclusive: `access_exclusive: true` needs `access`"]
        );
        let errors = run::<SaltTargetSpec>(
            "tgt: {'*': {tgt_type: glob, tgt: w}}\naccess: {' ': [read]}\n",
            |ctx, spec| SaltTarget::check(spec, ctx),
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
        let errors = run::<SaltJobSpec>("fun: ping\n", |ctx, spec| SaltJob::check(spec, ctx));
        assert_eq!(
            errors,
            vec!["1:6 spec.fun: `ping` is not a Salt function name"]
        );
    }

    #[test]
    fn star_master_must_be_alone() {
        let errors = run::<SaltTargetSpec>(
            "tgt:\n  '*': {tgt_type: glob, tgt: 'web*'}\n  m1: {tgt_type: glob, tgt: ''}\n",
            |ctx, spec| SaltTarget::check(spec, ctx),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}

//! A VMware Cloud on AWS SDDC: its spec, and how a change is carried out (host count and
//! 1NODE→DEFAULT in place, anything else by replacement).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::checks::{CheckContext, has_reference};
use super::{ResourceKind, typed_specs};
use crate::model::SystemType;
use crate::model::rules::{KindRules, UpdateKind};

/// The `Sddc` kind: what the core knows of it ([`ResourceKind`]) and its planning rules
/// ([`KindRules`]).
pub struct Sddc;

impl ResourceKind for Sddc {
    const NAME: &'static str = "Sddc";
    const SYSTEM: SystemType = SystemType::Vmc;
    const ATTRIBUTES: &'static [&'static str] = &[
        "id",
        "vc_url",
        "sddc_state",
        "cloud_username",
        "nsx_mgr_url",
    ];
    const DESCRIPTION: &'static str = "A VMware Cloud on AWS SDDC (vmc connection).";
    type Spec = SddcSpec;

    fn check(spec: &SddcSpec, context: &mut dyn CheckContext) {
        let one_node = spec.sddc_type == Some(SddcType::OneNode);
        let multi_az = spec.deployment_type.is_some_and(|d| d.is_multi_az());
        let hosts = spec.num_hosts;
        if one_node && hosts != 1 {
            context.error(
                &["num_hosts"],
                format!("a `1NODE` SDDC has exactly 1 host, found {hosts}"),
                Some("remove `sddc_type: 1NODE` for a regular SDDC of 2 hosts or more".into()),
            );
        } else if !one_node && hosts < 2 {
            context.error(
                &["num_hosts"],
                format!("an SDDC needs at least 2 hosts, found {hosts}"),
                Some("set `sddc_type: 1NODE` for a single-host SDDC".into()),
            );
        }
        if multi_az && one_node {
            context.error(
                &["deployment_type"],
                "a `1NODE` SDDC cannot be `MultiAZ`".into(),
                None,
            );
        } else if multi_az && !hosts.is_multiple_of(2) {
            context.error(
                &["num_hosts"],
                format!("a `MultiAZ` SDDC needs an even number of hosts, found {hosts}"),
                Some("hosts are added in pairs across the two availability zones".into()),
            );
        }
        if !has_reference(&spec.region) && canonical_region(&spec.region).is_none() {
            context.error(
                &["region"],
                format!("`{}` is not an AWS region", spec.region),
                Some("write it like `us-west-2` or `US_WEST_2`".into()),
            );
        }
        if let Some(cidr) = &spec.vpc_cidr
            && !has_reference(cidr)
        {
            match parse_cidr(cidr) {
                Err(message) => context.error(&["vpc_cidr"], message, None),
                Ok((_, prefix)) if ![16, 20, 23].contains(&prefix) => context.error(
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
            context.error(&["vxlan_subnet"], message, None);
        }
        check_account_link(spec, multi_az, context);
    }

    /// The region as `US_WEST_2`, the deployment type as `SingleAZ`/`MultiAZ`, the size in
    /// lower case: how VMC returns them.
    fn canonicalize(spec: &mut Map<String, Value>) {
        if let Some(Value::String(region)) = spec.get_mut("region")
            && let Some(canonical) = canonical_region(region)
        {
            *region = canonical;
        }
        if let Some(Value::String(deployment)) = spec.get_mut("deployment_type") {
            match deployment.as_str() {
                "SINGLE_AZ" => *deployment = "SingleAZ".to_string(),
                "MULTI_AZ" => *deployment = "MultiAZ".to_string(),
                _ => {}
            }
        }
        if let Some(Value::String(size)) = spec.get_mut("size") {
            *size = size.to_lowercase();
        }
    }
}

/// An `AWS` SDDC is created with its AWS account linked (`connected_account_id` plus one
/// subnet, two for MultiAZ) or with linking explicitly delayed: the service refuses
/// anything else with 400 "Invalid account linking configuration: null"
/// (vmware/terraform-provider-vmc PR #215; `../shared/api/README.md`, "Corrections").
fn check_account_link(spec: &SddcSpec, multi_az: bool, context: &mut dyn CheckContext) {
    let (expected, layout, subnets) = if multi_az {
        (2, "MultiAZ", "two subnets, one per zone,")
    } else {
        (1, "SingleAZ", "one subnet")
    };
    let link = spec.account_link.as_ref();
    if let Some(subnets) = link.and_then(|l| l.customer_subnet_ids.as_ref())
        && subnets.len() != expected
    {
        context.error(
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
            context.error(
                &["account_link"],
                "an `AWS` SDDC needs `account_link`: the service refuses to create it without a linked AWS account or an explicit delay".into(),
                Some(hint),
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
        context.error(
            &["account_link"],
            format!(
                "`account_link` of an `AWS` SDDC needs {} unless `delay: true`",
                missing.join(" and ")
            ),
            Some(hint),
        );
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

/// `us-west-2` and `US_WEST_2` → `US_WEST_2`, whether or not it names a region (how the VMC
/// provider spells what the server returns).
pub fn region_spelling(region: &str) -> String {
    region.trim().to_uppercase().replace('-', "_")
}

/// `us-west-2` / `US_WEST_2` → `US_WEST_2`; `None` when it does not look like a region.
pub fn canonical_region(region: &str) -> Option<String> {
    let canonical = region_spelling(region);
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

/// Hosts a 1NODE SDDC has once converted to `DEFAULT`: the conversion (`POST
/// /sddcs/{id}/convert`, no body) always yields three (`vmc.md` §10).
pub const CONVERTED_HOSTS: u64 = 3;

/// How a change of `sddc_type` from `from` to `to` with `hosts` declared is carried out.
/// The one statement of the 1NODE→DEFAULT rule: the planner classifies with it, the VMC
/// provider refuses what it does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeChange {
    /// 1NODE→DEFAULT declaring [`CONVERTED_HOSTS`]: converted in place.
    Convert,
    /// 1NODE→DEFAULT declaring 2 hosts: only a new SDDC has 2.
    ReplaceForTwoHosts,
    /// 1NODE→DEFAULT declaring another count (or none): refused.
    WrongHosts,
    /// Any other change of type: the SDDC is replaced.
    Replace,
}

impl TypeChange {
    pub fn of(from: &str, to: &str, hosts: Option<u64>) -> TypeChange {
        if from != "1NODE" || to != "DEFAULT" {
            return TypeChange::Replace;
        }
        match hosts {
            Some(CONVERTED_HOSTS) => TypeChange::Convert,
            Some(2) => TypeChange::ReplaceForTwoHosts,
            _ => TypeChange::WrongHosts,
        }
    }
}

/// SDDC hardware provider.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum SddcProvider {
    /// Amazon Web Services (default).
    #[serde(rename = "AWS")]
    Aws,
    /// Simulated hosts, for testing.
    #[serde(rename = "ZEROCLOUD")]
    Zerocloud,
}

/// ESXi host instance type.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum HostInstanceType {
    #[serde(rename = "i3.metal")]
    I3,
    #[serde(rename = "i3en.metal")]
    I3en,
    #[serde(rename = "i4i.metal")]
    I4i,
    #[serde(rename = "c6i.metal")]
    C6i,
    #[serde(rename = "m7i.metal-24xl")]
    M7i24,
    #[serde(rename = "m7i.metal-48xl")]
    M7i48,
}

/// SDDC type: `1NODE` is a single-host SDDC, `DEFAULT` a regular one.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum SddcType {
    /// Exactly one host.
    #[serde(rename = "1NODE")]
    OneNode,
    /// Two hosts or more.
    #[serde(rename = "DEFAULT")]
    Default,
}

/// Single or stretched (multi availability zone) cluster.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum DeploymentType {
    /// One availability zone (default).
    SingleAZ,
    /// Stretched across two availability zones; host counts are even.
    MultiAZ,
    /// Same as `SingleAZ`.
    #[serde(rename = "SINGLE_AZ")]
    SingleAzUpper,
    /// Same as `MultiAZ`.
    #[serde(rename = "MULTI_AZ")]
    MultiAzUpper,
}

impl DeploymentType {
    pub fn is_multi_az(self) -> bool {
        matches!(self, DeploymentType::MultiAZ | DeploymentType::MultiAzUpper)
    }
}

/// Size of the management appliances.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SddcSize {
    Medium,
    Large,
}

/// Link to the customer's AWS account (create-only; the server never returns it). An `AWS`
/// SDDC needs `connected_account_id` and `customer_subnet_ids`, or `delay: true`: VMC
/// refuses to create it otherwise ("Invalid account linking configuration").
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountLink {
    /// Create the SDDC now and link the AWS account later (`delay_account_link`). Default
    /// `false`.
    pub delay: Option<bool>,
    /// Id of the connected AWS account (VMC console: Connected Accounts).
    pub connected_account_id: Option<String>,
    /// Subnets of the connected VPC: one for SingleAZ, two (one per zone) for MultiAZ.
    pub customer_subnet_ids: Option<Vec<String>>,
}

/// A VMware Cloud on AWS SDDC. `num_hosts` and 1NODE→DEFAULT change in place; any other
/// change replaces the SDDC.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SddcSpec {
    /// AWS region, `us-west-2` or `US_WEST_2` (the same thing).
    pub region: String,
    /// `AWS` (default) or `ZEROCLOUD`.
    pub provider: Option<SddcProvider>,
    /// Number of ESXi hosts in the primary cluster: exactly 1 for `1NODE`, otherwise 2 to 16
    /// (even for MultiAZ).
    #[schemars(range(min = 1, max = 16))]
    pub num_hosts: u32,
    /// ESXi host instance type. Default `i3.metal`.
    pub host_instance_type: Option<HostInstanceType>,
    /// `1NODE` or `DEFAULT` (default).
    pub sddc_type: Option<SddcType>,
    /// `SingleAZ` (default) or `MultiAZ` (`SINGLE_AZ`/`MULTI_AZ` also accepted).
    pub deployment_type: Option<DeploymentType>,
    /// Management network CIDR with prefix /16, /20 or /23, e.g. `10.2.0.0/16`.
    pub vpc_cidr: Option<String>,
    /// Compute gateway logical network CIDR, e.g. `192.168.1.0/24`.
    pub vxlan_subnet: Option<String>,
    /// Do not create the default logical network. Default `true`.
    pub skip_creating_vxlan: Option<bool>,
    /// SSO domain of the vCenter. Default `vmc.local`.
    pub sso_domain: Option<String>,
    /// Appliance size, `medium` (default) or `large`.
    pub size: Option<SddcSize>,
    /// Link to the customer's AWS account; required for `AWS` (the default provider):
    /// `connected_account_id` and `customer_subnet_ids`, or `delay: true`.
    pub account_link: Option<AccountLink>,
}

impl SddcType {
    /// As manifests and the VMC API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            SddcType::OneNode => "1NODE",
            SddcType::Default => "DEFAULT",
        }
    }
}

impl SddcSpec {
    /// The declared type, `DEFAULT` when none is.
    pub fn sddc_type(&self) -> SddcType {
        self.sddc_type.unwrap_or(SddcType::Default)
    }
}

impl KindRules for Sddc {
    fn prune_needs_confirmation(&self) -> Option<&'static str> {
        Some("pruning an SDDC destroys its hosts and workloads")
    }

    /// `sddc_id` of `AwsSddcConfig` is an optional client-chosen id (vmc.md, `AwsSddcConfig` table).
    fn client_chosen_id(&self) -> bool {
        true
    }

    fn create_only_fields(&self) -> &'static [&'static str] {
        &["account_link"]
    }

    fn replace_fields(&self) -> &'static [&'static str] {
        &[
            "region",
            "provider",
            "host_instance_type",
            "deployment_type",
            "vpc_cidr",
            "vxlan_subnet",
            "skip_creating_vxlan",
            "sso_domain",
            "size",
        ]
    }

    fn classify_update(
        &self,
        desired: &Value,
        live: &Value,
        changed: &[String],
    ) -> Result<UpdateKind, String> {
        let mut forced_by: Vec<String> = changed
            .iter()
            .filter(|field| self.replace_fields().contains(&field.as_str()))
            .cloned()
            .collect();
        let (desired, live) = typed_specs::<Self>(desired, live)?;
        let mut steps = Vec::new();
        if changed.iter().any(|f| f == "sddc_type") {
            let name = |sddc_type: Option<SddcType>| sddc_type.map_or("", SddcType::as_str);
            let hosts = Some(u64::from(desired.num_hosts));
            match TypeChange::of(name(live.sddc_type), name(desired.sddc_type), hosts) {
                TypeChange::Convert => steps.push(format!(
                    "convert 1NODE to DEFAULT ({CONVERTED_HOSTS} hosts)"
                )),
                TypeChange::WrongHosts => {
                    return Err(format!(
                        "a 1NODE SDDC converts in place only to {CONVERTED_HOSTS} hosts (or is replaced to get 2); set `num_hosts` to {CONVERTED_HOSTS} or 2"
                    ));
                }
                TypeChange::ReplaceForTwoHosts | TypeChange::Replace => {
                    forced_by.push("sddc_type".to_string())
                }
            }
        } else if changed.iter().any(|f| f == "num_hosts") {
            let (from, to) = (live.num_hosts, desired.num_hosts);
            if to > from {
                steps.push(format!("add {} host(s)", to - from));
            } else {
                steps.push(format!("remove {} host(s)", from - to));
            }
        }
        if forced_by.is_empty() {
            Ok(UpdateKind::InPlace { steps })
        } else {
            forced_by.sort();
            forced_by.dedup();
            Ok(UpdateKind::Replace { forced_by })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_node_converts_in_place_only_to_the_converted_host_count() {
        assert_eq!(
            TypeChange::of("1NODE", "DEFAULT", Some(3)),
            TypeChange::Convert
        );
        assert_eq!(
            TypeChange::of("1NODE", "DEFAULT", Some(2)),
            TypeChange::ReplaceForTwoHosts
        );
        assert_eq!(
            TypeChange::of("1NODE", "DEFAULT", Some(4)),
            TypeChange::WrongHosts
        );
        assert_eq!(
            TypeChange::of("1NODE", "DEFAULT", None),
            TypeChange::WrongHosts
        );
        assert_eq!(
            TypeChange::of("DEFAULT", "1NODE", Some(1)),
            TypeChange::Replace
        );
    }

    #[test]
    fn canonical_spelling_is_what_vmc_returns() {
        let mut spec = serde_json::json!({
            "region": "us-west-2", "deployment_type": "MULTI_AZ", "size": "LARGE"
        });
        crate::model::Kind::Sddc.canonicalize(&mut spec);
        assert_eq!(
            spec,
            serde_json::json!({"region": "US_WEST_2", "deployment_type": "MultiAZ", "size": "large"})
        );
        assert_eq!(region_spelling(" eu-central-1 "), "EU_CENTRAL_1");
    }
}

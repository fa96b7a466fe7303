//! A VMware Cloud on AWS SDDC: its spec, and how a change is carried out (host count and
//! 1NODE→DEFAULT in place, anything else by replacement).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::ResourceKind;
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

impl KindRules for Sddc {
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
        let mut steps = Vec::new();
        if changed.iter().any(|f| f == "sddc_type") {
            let from = live.get("sddc_type").and_then(Value::as_str).unwrap_or("");
            let to = desired
                .get("sddc_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let hosts = desired
                .get("num_hosts")
                .and_then(Value::as_u64)
                .or_else(|| live.get("num_hosts").and_then(Value::as_u64));
            match (from, to, hosts) {
                ("1NODE", "DEFAULT", Some(3)) => {
                    steps.push("convert 1NODE to DEFAULT (3 hosts)".to_string())
                }
                ("1NODE", "DEFAULT", Some(2)) => forced_by.push("sddc_type".to_string()),
                ("1NODE", "DEFAULT", _) => {
                    return Err(
                        "a 1NODE SDDC converts in place only to 3 hosts (or is replaced to get 2); set `num_hosts` to 3 or 2"
                            .to_string(),
                    );
                }
                _ => forced_by.push("sddc_type".to_string()),
            }
        } else if changed.iter().any(|f| f == "num_hosts") {
            let from = live.get("num_hosts").and_then(Value::as_u64).unwrap_or(0);
            let to = desired
                .get("num_hosts")
                .and_then(Value::as_u64)
                .unwrap_or(0);
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

//! The kinds sextant manages and which system each belongs to.

use std::fmt;

/// A manifest `kind`. `Connection` is configuration, the others are managed objects.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Kind {
    Connection,
    Sddc,
    SaltTarget,
    SaltJob,
    SaltSchedule,
    VcdApiToken,
    VirtualMachine,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Connection,
        Kind::Sddc,
        Kind::SaltTarget,
        Kind::SaltJob,
        Kind::SaltSchedule,
        Kind::VcdApiToken,
        Kind::VirtualMachine,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Connection => "Connection",
            Kind::Sddc => "Sddc",
            Kind::SaltTarget => "SaltTarget",
            Kind::SaltJob => "SaltJob",
            Kind::SaltSchedule => "SaltSchedule",
            Kind::VcdApiToken => "VcdApiToken",
            Kind::VirtualMachine => "VirtualMachine",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The system whose connection manages this kind (`None` for `Connection`).
    pub fn system(self) -> Option<SystemType> {
        match self {
            Kind::Connection => None,
            Kind::Sddc => Some(SystemType::Vmc),
            Kind::SaltTarget | Kind::SaltJob | Kind::SaltSchedule => Some(SystemType::Raas),
            Kind::VcdApiToken => Some(SystemType::Vcd),
            Kind::VirtualMachine => Some(SystemType::Vsphere),
        }
    }

    /// Attributes other resources may read with `${Kind/name.attribute}`.
    pub fn attributes(self) -> &'static [&'static str] {
        match self {
            Kind::Connection => &[],
            Kind::Sddc => &[
                "id",
                "vc_url",
                "sddc_state",
                "cloud_username",
                "nsx_mgr_url",
            ],
            Kind::SaltTarget | Kind::SaltJob | Kind::SaltSchedule => &["uuid"],
            Kind::VcdApiToken => &["id"],
            Kind::VirtualMachine => &["vm"],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Connection.spec.type`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SystemType {
    Vmc,
    Raas,
    Vcd,
    Vsphere,
}

impl SystemType {
    pub fn as_str(self) -> &'static str {
        match self {
            SystemType::Vmc => "vmc",
            SystemType::Raas => "raas",
            SystemType::Vcd => "vcd",
            SystemType::Vsphere => "vsphere",
        }
    }

    /// The URL used when a connection does not set `url`.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            SystemType::Vmc => Some("https://vmc.vmware.com"),
            _ => None,
        }
    }
}

impl fmt::Display for SystemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

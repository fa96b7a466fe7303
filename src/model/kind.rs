//! The systems sextant talks to. The kinds themselves are listed in [`super::kinds`].

use std::fmt;

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

//! Published ports: the pre-DNAT view (host address : host port) and the
//! container behind it.

use std::{collections::BTreeMap, fmt, net::IpAddr, str::FromStr};

use serde::{Deserialize, Serialize};

/// Transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Self::Tcp => dockfw_common::proto::TCP,
            Self::Udp => dockfw_common::proto::UDP,
        }
    }

    /// The lowercase name (`tcp`, `udp`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Proto {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            other => Err(format!("unknown protocol {other:?} (expected tcp or udp)")),
        }
    }
}

/// Address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub const fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// The ABI code ([`dockfw_common::family`]).
    pub const fn code(self) -> u8 {
        match self {
            Self::V4 => dockfw_common::family::V4,
            Self::V6 => dockfw_common::family::V6,
        }
    }
}

/// What the data plane keys a published port by: the packet's destination
/// before DNAT. `addr` is `None` for a wildcard binding (0.0.0.0 or ::).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BindingKey {
    /// Family of the binding.
    pub family: Family,
    /// Protocol.
    pub proto: Proto,
    /// Specific host address, or `None` for the wildcard.
    pub addr: Option<IpAddr>,
    /// Host port.
    pub port: u16,
}

impl BindingKey {
    /// `8080/tcp`, or `192.0.2.1:8080/tcp` / `[2001:db8::1]:8080/tcp` for a
    /// specific address; the label used in status and metrics.
    pub fn label(&self) -> String {
        match self.addr {
            None => format!("{}/{}", self.port, self.proto),
            Some(IpAddr::V4(addr)) => format!("{addr}:{}/{}", self.port, self.proto),
            Some(IpAddr::V6(addr)) => format!("[{addr}]:{}/{}", self.port, self.proto),
        }
    }

    /// Whether a packet to `dst` on this key's port would match it.
    pub fn covers(&self, dst: &IpAddr) -> bool {
        Family::of(dst) == self.family && self.addr.is_none_or(|addr| addr == *dst)
    }
}

impl fmt::Display for BindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = match self.family {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        };
        write!(f, "{} ({family})", self.label())
    }
}

/// The container behind a published port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRef {
    /// Full container id.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// One host port published by Docker, in both views.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// Pre-DNAT key (what the data plane matches).
    pub key: BindingKey,
    /// The container.
    pub container: ContainerRef,
    /// Post-DNAT destination address (the container's address on the network
    /// Docker DNATs to), if known.
    pub container_addr: Option<IpAddr>,
    /// Post-DNAT destination port.
    pub container_port: u16,
}

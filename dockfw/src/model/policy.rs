//! Policy: ordered rules over published ports, from any source of intent
//! (policy file, container labels, DOCKER-USER), in one shape.

use std::{fmt, path::PathBuf, str::FromStr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::ports::{BindingKey, Proto, PublishedPort};

/// The whole policy in force: rules in order (first match wins) and defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Rules in evaluation order.
    pub rules: Vec<Rule>,
    /// What to do with non-first fragments of datagrams to any published
    /// port (a rule's `fragments` overrides this for its ports).
    pub fragments: FragmentAction,
}

/// Non-first fragments carry no ports; this decides their fate per port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FragmentAction {
    /// Hand them to netfilter (reassembly and Docker's chains decide).
    #[default]
    Pass,
    /// Drop them here.
    Drop,
}

/// Where a rule came from, for status, traces and error messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleOrigin {
    /// A `[[rules]]` entry of a policy file.
    PolicyFile {
        /// The file.
        path: PathBuf,
        /// 1-based line of the entry's `[[rules]]` header.
        line: usize,
    },
    /// `dockfw.*` labels of a container.
    Label {
        /// Container name.
        container: String,
    },
    /// A rule of the DOCKER-USER chain (or a chain it jumps to).
    DockerUser {
        /// Chain holding the rule.
        chain: String,
        /// 1-based position in that chain.
        position: usize,
        /// The rule as `iptables-save` prints it.
        text: String,
    },
}

impl fmt::Display for RuleOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PolicyFile { path, line } => write!(f, "{}:{line}", path.display()),
            Self::Label { container } => write!(f, "labels of container {container}"),
            Self::DockerUser {
                chain, position, ..
            } => write!(f, "{chain} rule {position}"),
        }
    }
}

/// A port range of one protocol, inclusive: `3306/tcp`, `8000-8010/udp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortSpec {
    /// Protocol.
    pub proto: Proto,
    /// First port.
    pub low: u16,
    /// Last port.
    pub high: u16,
}

impl PortSpec {
    /// Whether the spec covers a protocol and port.
    pub fn contains(&self, proto: Proto, port: u16) -> bool {
        self.proto == proto && (self.low..=self.high).contains(&port)
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}/{}", self.low, self.proto)
        } else {
            write!(f, "{}-{}/{}", self.low, self.high, self.proto)
        }
    }
}

impl FromStr for PortSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (ports, proto) = text.split_once('/').ok_or_else(|| {
            format!(
                "port {text:?} needs a protocol: \"PORT/tcp\", \"PORT/udp\" or \"LOW-HIGH/tcp\""
            )
        })?;
        let proto: Proto = proto.parse()?;
        let parse = |port: &str| -> Result<u16, String> {
            match port.trim().parse::<u16>() {
                Ok(0) | Err(_) => Err(format!("port {port:?} in {text:?} is not a number 1-65535")),
                Ok(port) => Ok(port),
            }
        };
        let (low, high) = match ports.split_once('-') {
            Some((low, high)) => (parse(low)?, parse(high)?),
            None => {
                let port = parse(ports)?;
                (port, port)
            }
        };
        if low > high {
            return Err(format!("port range {text:?} runs backwards"));
        }
        Ok(Self { proto, low, high })
    }
}

/// Which published ports a rule applies to. All conditions must hold; an
/// empty selector selects every published port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSelector {
    /// Host port ranges (empty = any port).
    pub ports: Vec<PortSpec>,
    /// Container name or id (prefix of the id, 12+ characters, also works).
    pub container: Option<String>,
    /// Container label `key` or `key=value`.
    pub label: Option<(String, Option<String>)>,
    /// An explicit list of bindings (from a translated DOCKER-USER rule).
    pub bindings: Option<Vec<BindingKey>>,
}

impl PortSelector {
    /// Whether the selector picks this published port.
    pub fn selects(&self, port: &PublishedPort) -> bool {
        if !self.ports.is_empty()
            && !self
                .ports
                .iter()
                .any(|spec| spec.contains(port.key.proto, port.key.port))
        {
            return false;
        }
        if let Some(container) = &self.container {
            let by_id = container.len() >= 12 && port.container.id.starts_with(container.as_str());
            if port.container.name != *container && !by_id {
                return false;
            }
        }
        if let Some((key, value)) = &self.label {
            match (port.container.labels.get(key), value) {
                (None, _) => return false,
                (Some(found), Some(value)) if found != value => return false,
                _ => {}
            }
        }
        if let Some(bindings) = &self.bindings
            && !bindings.contains(&port.key)
        {
            return false;
        }
        true
    }
}

/// A rule's source condition. `from = None` means any source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMatch {
    /// The source must be in one of these prefixes (`None` = any source).
    pub from: Option<Vec<IpNet>>,
    /// ... and in none of these.
    pub not_from: Vec<IpNet>,
}

impl SourceMatch {
    /// Whether the condition is "any source".
    pub fn is_any(&self) -> bool {
        self.from.is_none() && self.not_from.is_empty()
    }

    /// Whether an address satisfies the condition.
    pub fn matches(&self, addr: &std::net::IpAddr) -> bool {
        let inside = |nets: &[IpNet]| nets.iter().any(|net| net.contains(addr));
        self.from.as_deref().is_none_or(inside) && !inside(&self.not_from)
    }
}

/// A packet rate: `count` packets per `per_ns` nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Packets.
    pub count: u64,
    /// Per this many nanoseconds.
    pub per_ns: u64,
}

/// Nanoseconds per second.
const NS_PER_SECOND: u64 = 1_000_000_000;

impl Rate {
    /// Nanoseconds between packets at this rate (at least 1).
    pub fn interval_ns(&self) -> u64 {
        (self.per_ns / self.count.max(1)).max(1)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per_ns {
            NS_PER_SECOND => "s",
            ns if ns == 60 * NS_PER_SECOND => "m",
            ns if ns == 3600 * NS_PER_SECOND => "h",
            _ => return write!(f, "{}/{}ns", self.count, self.per_ns),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage =
            || format!("rate {text:?} is not COUNT/UNIT (e.g. \"200/s\", \"30/m\", \"1000/h\")");
        let (count, unit) = text.trim().split_once('/').ok_or_else(usage)?;
        let count: u64 = count.trim().parse().map_err(|_| usage())?;
        if count == 0 {
            return Err(format!(
                "rate {text:?} is zero; use action = \"drop\" instead"
            ));
        }
        let per_ns = match unit.trim() {
            "s" | "sec" | "second" => NS_PER_SECOND,
            "m" | "min" | "minute" => 60 * NS_PER_SECOND,
            "h" | "hour" => 3600 * NS_PER_SECOND,
            _ => return Err(usage()),
        };
        if count > per_ns {
            return Err(format!("rate {text:?} is above one packet per nanosecond"));
        }
        Ok(Self { count, per_ns })
    }
}

/// Whose packets share a token bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    /// One bucket per source address (IPv6: per /64).
    #[default]
    Source,
    /// One bucket for the port.
    Port,
}

/// A token bucket: `rate` sustained, `burst` packets at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Sustained rate.
    pub rate: Rate,
    /// Packets admitted at once after idling.
    pub burst: u32,
    /// Bucket granularity.
    pub per: Per,
    /// With `per = source`: an aggregate cap over all sources of the port
    /// (rate, burst), so that spoofed sources that thrash the per-source
    /// table still meet a limit.
    pub total: Option<(Rate, u32)>,
}

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Stop evaluating; hand the packet to netfilter.
    Pass,
    /// Drop it.
    Drop,
    /// Pass within the bucket, drop beyond it.
    RateLimit(RateLimit),
}

impl Action {
    /// The short name used in status and metrics.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Drop => "drop",
            Self::RateLimit(_) => "rate-limit",
        }
    }
}

/// One rule. Conditions are ANDed; a rule with none matches every packet to
/// the ports it selects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique name (status, metrics, traces).
    pub name: String,
    /// Where it came from.
    pub origin: RuleOrigin,
    /// Ports it applies to.
    pub ports: PortSelector,
    /// Source addresses.
    pub sources: SourceMatch,
    /// Ingress interfaces (empty = any).
    pub ifaces: Vec<String>,
    /// Only TCP SYN without ACK (connection attempts).
    pub syn_only: bool,
    /// Source port range, inclusive.
    pub source_ports: Option<(u16, u16)>,
    /// TCP flags condition: `(flags & mask) == value`.
    pub tcp_flags: Option<(u8, u8)>,
    /// Action.
    pub action: Action,
    /// Count would-be drops instead of dropping.
    pub audit: bool,
    /// Fragment policy for the ports this rule selects.
    pub fragments: Option<FragmentAction>,
}

impl Rule {
    /// A rule with no conditions and the given action.
    pub fn new(name: impl Into<String>, origin: RuleOrigin, action: Action) -> Self {
        Self {
            name: name.into(),
            origin,
            ports: PortSelector::default(),
            sources: SourceMatch::default(),
            ifaces: Vec::new(),
            syn_only: false,
            source_ports: None,
            tcp_flags: None,
            action,
            audit: false,
            fragments: None,
        }
    }
}

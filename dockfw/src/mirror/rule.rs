//! A saved rule as conditions and a target (the parser is in
//! [`options`](super::options)), and the value grammar of iptables options
//! (addresses, ports, flags, rates).

use std::net::IpAddr;

use ipnet::IpNet;

pub use super::options::parse_rule;

/// Which side of the packet a condition looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Source.
    Src,
    /// Destination.
    Dst,
}

/// `-p`: a protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtoMatch {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// Any protocol (`all`, `0`).
    All,
    /// Any other protocol (never TCP or UDP).
    Other(String),
}

/// A token-bucket rate: `count` per `per_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSpec {
    /// Packets.
    pub count: u64,
    /// Per this many nanoseconds.
    pub per_ns: u64,
}

/// `-m hashlimit` options that matter for a translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashLimitSpec {
    /// `--hashlimit-above` (true) or `--hashlimit-upto` (false).
    pub above: bool,
    /// The rate, `None` when it is a byte rate.
    pub rate: Option<RateSpec>,
    /// Burst (default 5).
    pub burst: u32,
    /// `--hashlimit-mode` words (`srcip`, `dstport`, ...).
    pub mode: Vec<String>,
    /// `--hashlimit-srcmask`.
    pub srcmask: Option<u8>,
}

/// What a condition tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClauseKind {
    /// `-s NET`.
    Source(IpNet),
    /// `-d NET` (after DNAT).
    Dest(IpNet),
    /// `-i NAME` (`+` suffix: prefix match).
    InIface(String),
    /// `-o NAME`.
    OutIface(String),
    /// `-p PROTO`.
    Proto(ProtoMatch),
    /// `-f`: a non-first fragment.
    Fragment,
    /// `--sport` / `--dport` of `-m tcp` / `-m udp`, inclusive range.
    Port {
        /// Source or destination port.
        dir: Dir,
        /// Protocol of the module.
        proto: ProtoMatch,
        /// First port.
        low: u16,
        /// Last port.
        high: u16,
    },
    /// `--tcp-flags MASK COMP` / `--syn`.
    TcpFlags {
        /// Flags examined.
        mask: u8,
        /// Flags that must be set among them.
        value: u8,
    },
    /// `-m multiport`: `dir` `None` = `--ports` (either side).
    MultiPort {
        /// Side, or either.
        dir: Option<Dir>,
        /// Inclusive ranges.
        ranges: Vec<(u16, u16)>,
    },
    /// `-m iprange --src-range/--dst-range`.
    AddrRange {
        /// Side.
        dir: Dir,
        /// First address.
        low: IpAddr,
        /// Last address.
        high: IpAddr,
    },
    /// `-m set --match-set NAME DIRS`.
    Set {
        /// Set name.
        name: String,
        /// One direction per dimension of the set.
        dirs: Vec<Dir>,
    },
    /// `--ctstate` / `--state`: upper-case state names.
    CtState(Vec<String>),
    /// `--ctorigsrc` / `--ctorigdst`.
    CtOrigAddr(Dir, IpNet),
    /// `--ctorigsrcport` / `--ctorigdstport`, inclusive.
    CtOrigPort(Dir, u16, u16),
    /// `--ctdir ORIGINAL` (true) / `REPLY`.
    CtDirOriginal(bool),
    /// `--ctproto`.
    CtProto(ProtoMatch),
    /// `-m addrtype --dst-type TYPES` (src types are unknown).
    DstAddrType(Vec<String>),
    /// `-m limit`.
    Limit {
        /// Rate.
        rate: RateSpec,
        /// Burst.
        burst: u32,
    },
    /// `-m hashlimit`.
    HashLimit(HashLimitSpec),
    /// A condition that always holds (`-m comment`).
    Always,
    /// Anything else: what it was.
    Unknown(String),
}

/// A condition and whether `!` negates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    /// `!` before it.
    pub negated: bool,
    /// What it tests.
    pub kind: ClauseKind,
}

/// What happens to a matching packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// No `-j`: only counts.
    None,
    /// `ACCEPT`.
    Accept,
    /// `DROP`.
    Drop,
    /// `RETURN`.
    Return,
    /// `REJECT` (drops with a reply).
    Reject,
    /// `DNAT --to-destination ADDR[:PORT]`.
    Dnat(Option<String>),
    /// `-g CHAIN`.
    Goto(String),
    /// Any other `-j NAME`: a user chain or an extension target.
    Named(String),
}

/// A rule's conditions (all must hold) and its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRule {
    /// Conditions.
    pub clauses: Vec<Clause>,
    /// Target.
    pub target: Target,
}

/// TCP flag names as iptables writes them.
const FLAG_NAMES: &[(&str, u8)] = &[
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
    ("ECE", 0x40),
    ("CWR", 0x80),
    ("ALL", 0x3f),
    ("NONE", 0x00),
];
/// `--syn`: `FIN,SYN,RST,ACK SYN`.
pub const SYN_FLAGS: (u8, u8) = (0x17, 0x02);

/// `10.0.0.0/8`, a bare address, or a contiguous dotted mask.
pub fn parse_net(text: &str) -> Option<IpNet> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(net.trunc());
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some(IpNet::from(addr));
    }
    let (addr, mask) = text.split_once('/')?;
    let addr: std::net::Ipv4Addr = addr.parse().ok()?;
    let mask = u32::from(mask.parse::<std::net::Ipv4Addr>().ok()?);
    let len = mask.leading_ones();
    if mask.checked_shl(len).unwrap_or(0) != 0 {
        return None;
    }
    IpNet::new(IpAddr::V4(addr), len as u8)
        .ok()
        .map(|net| net.trunc())
}

pub(super) fn parse_proto(text: &str) -> ProtoMatch {
    match text.to_ascii_lowercase().as_str() {
        "tcp" | "6" => ProtoMatch::Tcp,
        "udp" | "17" => ProtoMatch::Udp,
        "all" | "0" => ProtoMatch::All,
        other => ProtoMatch::Other(other.to_owned()),
    }
}

/// `80`, `80:90`, `:90`, `80:` (iptables) or `80-90`.
pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let (low, high) = match text.split_once([':', '-']) {
        Some((low, high)) => (
            if low.is_empty() { 0 } else { low.parse().ok()? },
            if high.is_empty() {
                u16::MAX
            } else {
                high.parse().ok()?
            },
        ),
        None => {
            let port = text.parse().ok()?;
            (port, port)
        }
    };
    (low <= high).then_some((low, high))
}

pub(super) fn parse_flags(text: &str) -> Option<u8> {
    text.split(',').try_fold(0u8, |flags, name| {
        let bit = FLAG_NAMES
            .iter()
            .find(|(flag, _)| flag.eq_ignore_ascii_case(name))?
            .1;
        Some(flags | bit)
    })
}

/// `10/sec`, `3/hour`, `1/min`, `5/day` (and the short units); byte rates
/// (`10kb/s`) are refused.
pub fn parse_rate(text: &str) -> Option<RateSpec> {
    let (count, unit) = text.split_once('/').unwrap_or((text, "sec"));
    let count: u64 = count.parse().ok()?;
    let second = 1_000_000_000u64;
    let per_ns = match unit {
        "s" | "sec" | "second" => second,
        "m" | "min" | "minute" => 60 * second,
        "h" | "hour" => 3600 * second,
        "d" | "day" => 86_400 * second,
        _ => return None,
    };
    (count > 0).then_some(RateSpec { count, per_ns })
}

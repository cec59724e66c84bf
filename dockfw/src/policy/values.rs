//! The value grammar shared by the policy file and container labels:
//! addresses, TCP flags, source ports, interfaces, and the action fields
//! with their cross-checks. Every parser returns a message a user can act on;
//! the caller adds the location (`path:line`, or container and label key).

use std::net::IpAddr;

use ipnet::IpNet;

use super::file_errors::did_you_mean;
use crate::model::{Action, FragmentAction, Per, Proto, Rate, RateLimit, Rule};

/// Longest Linux interface name (`IFNAMSIZ` - 1).
const IFNAME_MAX: usize = 15;

/// A CIDR (`203.0.113.0/24`, `2001:db8::/32`) or a bare address (a /32 or
/// /128). A CIDR with host bits set is refused: `10.0.0.1/8` is usually a
/// typo for `10.0.0.0/8` or for the host `10.0.0.1`.
pub(crate) fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    let not_net = || format!("{text:?} is not an address or CIDR");
    let Some((addr, len)) = text.split_once('/') else {
        return text
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| not_net());
    };
    let addr: IpAddr = addr.parse().map_err(|_| not_net())?;
    let len: u8 = len.parse().map_err(|_| not_net())?;
    let net = IpNet::new(addr, len).map_err(|_| {
        let (family, max) = if addr.is_ipv4() {
            ("IPv4", 32)
        } else {
            ("IPv6", 128)
        };
        format!("{text:?}: /{len} is too long for an {family} prefix (at most /{max})")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "{text:?} has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// TCP flag names and bits, as in the TCP header's flags byte.
const TCP_FLAGS: [(&str, u8); 8] = [
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
    ("ECE", 0x40),
    ("CWR", 0x80),
];

/// iptables-like `MASK/VALUE` (a space may stand for the slash, as in
/// `--tcp-flags SYN,ACK SYN`): comma-separated flag names, or `ALL` /
/// `NONE`. Returns `(mask, value)`: a packet matches when
/// `flags & mask == value`.
pub(crate) fn parse_tcp_flags(text: &str) -> Result<(u8, u8), String> {
    let usage = || {
        format!(
            "tcp_flags {text:?} is not MASK/VALUE, e.g. \"SYN,ACK/SYN\" (flags: FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, ALL, NONE)"
        )
    };
    let trimmed = text.trim();
    let (mask, value) = trimmed
        .split_once('/')
        .or_else(|| trimmed.split_once(char::is_whitespace))
        .ok_or_else(usage)?;
    let flags = |list: &str| -> Result<u8, String> {
        let list = list.trim();
        match list.to_ascii_uppercase().as_str() {
            "ALL" => return Ok(u8::MAX),
            "NONE" => return Ok(0),
            _ => {}
        }
        list.split(',').try_fold(0u8, |bits, name| {
            let name = name.trim();
            TCP_FLAGS
                .iter()
                .find(|(flag, _)| flag.eq_ignore_ascii_case(name))
                .map(|(_, bit)| bits | bit)
                .ok_or_else(|| {
                    let hint = did_you_mean(
                        &name.to_ascii_uppercase(),
                        TCP_FLAGS.iter().map(|(flag, _)| *flag),
                        ("", ""),
                    );
                    format!("unknown TCP flag {name:?} in tcp_flags {text:?}{hint}")
                })
        })
    };
    let (mask, value) = (flags(mask)?, flags(value)?);
    if mask == 0 {
        return Err(format!(
            "tcp_flags {text:?} has an empty mask, so it matches every packet"
        ));
    }
    if value & !mask != 0 {
        return Err(format!(
            "tcp_flags {text:?}: the value has flags that are not in the mask, so it never matches"
        ));
    }
    Ok((mask, value))
}

/// `LOW-HIGH` or a single port, 0-65535.
pub(crate) fn parse_source_ports(text: &str) -> Result<(u16, u16), String> {
    let port = |part: &str| {
        part.trim().parse::<u16>().map_err(|_| {
            format!("source_ports {text:?} is not a port or range like \"1024-65535\"")
        })
    };
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (port(low)?, port(high)?),
        None => {
            let single = port(text)?;
            (single, single)
        }
    };
    if low > high {
        return Err(format!("source_ports {text:?} runs backwards"));
    }
    Ok((low, high))
}

/// `pass` or `drop`.
pub(crate) fn parse_fragments(text: &str) -> Result<FragmentAction, String> {
    match text {
        "pass" => Ok(FragmentAction::Pass),
        "drop" => Ok(FragmentAction::Drop),
        other => Err(format!(
            "fragments must be \"pass\" or \"drop\", found {other:?}{}",
            did_you_mean(other, ["pass", "drop"], ("\"", "\""))
        )),
    }
}

/// A container label selector: `key=value` or just `key` (label present).
pub(crate) fn parse_label_selector(text: &str) -> Result<(String, Option<String>), String> {
    let (key, value) = match text.split_once('=') {
        Some((key, value)) => (key.trim(), Some(value.trim().to_owned())),
        None => (text.trim(), None),
    };
    if key.is_empty() {
        return Err(format!(
            "label {text:?} has no key; write \"key=value\" or \"key\""
        ));
    }
    Ok((key.to_owned(), value))
}

/// An ingress interface name as the kernel knows it.
pub(crate) fn parse_iface(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err("empty interface name".to_owned());
    }
    if name.ends_with('+') || name.contains('*') {
        return Err(format!(
            "interface {name:?}: wildcards are not supported; list each interface"
        ));
    }
    if name.len() > IFNAME_MAX || name.contains(['/', ':']) || name.contains(char::is_whitespace) {
        return Err(format!(
            "{name:?} is not an interface name (at most {IFNAME_MAX} characters, no '/', ':' or spaces)"
        ));
    }
    Ok(name.to_owned())
}

/// A problem tied to one field of a rule (`rate`, `per`, ...); the caller
/// turns the field into a location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldProblem {
    /// The field name as written in the policy file (labels use the same
    /// names after `dockfw.`).
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl FieldProblem {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The action fields of a rule as written, before they are checked together.
#[derive(Clone, Debug, Default)]
pub(crate) struct ActionFields<'a> {
    /// `action`.
    pub action: Option<&'a str>,
    /// `rate`.
    pub rate: Option<&'a str>,
    /// `burst`.
    pub burst: Option<u64>,
    /// `per`.
    pub per: Option<&'a str>,
    /// `total_rate`.
    pub total_rate: Option<&'a str>,
    /// `total_burst`.
    pub total_burst: Option<u64>,
}

/// Words people use for an action, and the action dockfw calls it.
const ACTION_SYNONYMS: [(&str, &str); 6] = [
    ("allow", "pass"),
    ("accept", "pass"),
    ("deny", "drop"),
    ("reject", "drop"),
    ("block", "drop"),
    ("limit", "rate-limit"),
];

/// Builds the [`Action`], reporting every inconsistency between the fields.
pub(crate) fn build_action(fields: &ActionFields<'_>) -> Result<Action, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let Some(action) = fields.action else {
        return Err(vec![FieldProblem::new(
            "action",
            "missing `action` (one of \"drop\", \"pass\", \"rate-limit\")",
        )]);
    };
    let simple = match action {
        "drop" => Some(Action::Drop),
        "pass" => Some(Action::Pass),
        "rate-limit" => None,
        other => {
            let hint = match ACTION_SYNONYMS
                .iter()
                .find(|(word, _)| word.eq_ignore_ascii_case(other))
            {
                Some((_, ours)) => format!("; did you mean \"{ours}\"?"),
                None => did_you_mean(other, ["drop", "pass", "rate-limit"], ("\"", "\"")),
            };
            let expected = if hint.is_empty() {
                " (expected \"drop\", \"pass\" or \"rate-limit\")"
            } else {
                ""
            };
            return Err(vec![FieldProblem::new(
                "action",
                format!("unknown action {other:?}{hint}{expected}"),
            )]);
        }
    };
    if let Some(simple) = simple {
        let present = [
            ("rate", fields.rate.is_some()),
            ("burst", fields.burst.is_some()),
            ("per", fields.per.is_some()),
            ("total_rate", fields.total_rate.is_some()),
            ("total_burst", fields.total_burst.is_some()),
        ];
        problems.extend(present.iter().filter(|(_, given)| *given).map(|(field, _)| {
            FieldProblem::new(field, format!("`{field}` only applies to action = \"rate-limit\" (this rule's action is \"{action}\")"))
        }));
        return if problems.is_empty() {
            Ok(simple)
        } else {
            Err(problems)
        };
    }

    let rate = match fields.rate.map(str::parse::<Rate>) {
        None => {
            problems.push(FieldProblem::new(
                "action",
                "action \"rate-limit\" needs `rate`, e.g. \"200/s\"",
            ));
            None
        }
        Some(Err(message)) => {
            problems.push(FieldProblem::new("rate", message));
            None
        }
        Some(Ok(rate)) => Some(rate),
    };
    let burst = fields
        .burst
        .and_then(|burst| bucket_size("burst", burst, &mut problems));
    let per = match fields.per {
        None | Some("source") => Some(Per::Source),
        Some("port") => Some(Per::Port),
        Some(other) => {
            let hint = did_you_mean(other, ["source", "port"], ("\"", "\""));
            problems.push(FieldProblem::new(
                "per",
                format!("`per` must be \"source\" or \"port\", found {other:?}{hint}"),
            ));
            None
        }
    };
    let total_rate = match fields.total_rate.map(str::parse::<Rate>) {
        Some(Ok(_)) if per == Some(Per::Port) => {
            let message = "`total_rate` only applies with per = \"source\" (with per = \"port\", `rate` already caps the whole port)";
            problems.push(FieldProblem::new("total_rate", message));
            None
        }
        Some(Err(message)) => {
            problems.push(FieldProblem::new("total_rate", message));
            None
        }
        Some(Ok(total)) => Some(total),
        None => None,
    };
    let total_burst = fields
        .total_burst
        .and_then(|burst| bucket_size("total_burst", burst, &mut problems));
    if fields.total_burst.is_some() && fields.total_rate.is_none() {
        problems.push(FieldProblem::new(
            "total_burst",
            "`total_burst` needs `total_rate`",
        ));
    }
    match (rate, per) {
        (Some(rate), Some(per)) if problems.is_empty() => Ok(Action::RateLimit(RateLimit {
            rate,
            burst: burst.unwrap_or_else(|| default_burst(rate)),
            per,
            total: total_rate
                .map(|total| (total, total_burst.unwrap_or_else(|| default_burst(total)))),
        })),
        _ => Err(problems),
    }
}

/// The default bucket size: the rate's count (one second's worth for a
/// per-second rate).
fn default_burst(rate: Rate) -> u32 {
    u32::try_from(rate.count).unwrap_or(u32::MAX)
}

/// A bucket size 1..=u32::MAX.
fn bucket_size(field: &'static str, value: u64, problems: &mut Vec<FieldProblem>) -> Option<u32> {
    match u32::try_from(value) {
        Ok(0) => problems.push(FieldProblem::new(
            field,
            format!("`{field}` must be at least 1"),
        )),
        Ok(size) => return Some(size),
        Err(_) => problems.push(FieldProblem::new(
            field,
            format!("`{field}` {value} is too large (at most {})", u32::MAX),
        )),
    }
    None
}

/// Checks between conditions of a finished rule that no single field shows.
pub(crate) fn check_rule(rule: &Rule) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let ports = &rule.ports.ports;
    let udp_only = !ports.is_empty() && ports.iter().all(|spec| spec.proto == Proto::Udp);
    if udp_only && rule.syn_only {
        problems.push(FieldProblem::new(
            "syn_only",
            "`syn_only` matches only TCP, but `ports` selects only UDP ports",
        ));
    }
    if udp_only && rule.tcp_flags.is_some() {
        problems.push(FieldProblem::new(
            "tcp_flags",
            "`tcp_flags` matches only TCP, but `ports` selects only UDP ports",
        ));
    }
    if rule.audit && rule.action == Action::Pass {
        problems.push(FieldProblem::new(
            "audit",
            "`audit` has no effect with action = \"pass\" (nothing would be dropped)",
        ));
    }
    problems
}

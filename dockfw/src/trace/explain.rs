//! A data-plane decision ([`TraceRecord`]) in words: verdict, reason, the
//! published port and container, the matching rule and where it comes from,
//! and what happens to the packet next. Pure: tested without a kernel.

use std::net::IpAddr;

use dockfw_common::{TraceRecord, outcome, reason, trace_flag, xdp_verdict};
use serde::{Deserialize, Serialize};

use super::{
    context::{ContextSource, NetfilterOnlyRule, PortContext, StatMeaning, TraceContext},
    frame::FrameSummary,
};

/// The published port a packet resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedPort {
    /// `8080/tcp` or `192.0.2.1:8080/tcp`.
    pub published: String,
    /// Container name (empty when unknown).
    pub container: String,
    /// Container id, short (empty when unknown).
    pub container_id: String,
    /// Where Docker's DNAT sends the packet.
    pub container_addr: Option<IpAddr>,
    /// The port behind DNAT (0 when unknown).
    pub container_port: u16,
}

/// The rule that matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedRule {
    /// Position on the port (0 = evaluated first).
    pub index: u32,
    /// Name (empty when unknown).
    pub name: String,
    /// `pass`, `drop`, `rate-limit` (empty when unknown).
    pub action: String,
    /// Policy file line, container labels or DOCKER-USER position (empty
    /// when unknown).
    pub origin: String,
    /// The rule only counts would-be drops.
    pub audit: bool,
}

/// What netfilter does with a packet dockfw passes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetfilterNext {
    /// The path through netfilter, in words.
    pub path: String,
    /// DOCKER-USER rules that stay netfilter-only for this traffic, when the
    /// daemon mirrors DOCKER-USER; `None` when it does not (then every
    /// DOCKER-USER rule applies).
    pub docker_user: Option<Vec<NetfilterOnlyRule>>,
}

/// One traced packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The packet (`None` for frames that are not IP).
    pub packet: Option<FrameSummary>,
    /// `pass` or `drop`.
    pub verdict: String,
    /// The reason code's name (as in metrics: `rule`, `ban`, `rate_limit`,
    /// `unmatched`, `not_published`, ...).
    pub reason: String,
    /// The decision in a sentence.
    pub explanation: String,
    /// The packet would be dropped but is passed because of audit.
    pub would_drop: bool,
    /// The published port it resolved to.
    pub port: Option<TracedPort>,
    /// The rule that matched.
    pub rule: Option<TracedRule>,
    /// The statistic id it is counted under when it really arrives (0 =
    /// a global reason counter).
    pub stat_id: u32,
    /// Data-plane generation slot that decided.
    pub slot: u32,
    /// What happens next; `None` when the packet is dropped.
    pub next: Option<NetfilterNext>,
    /// Caveats (names unavailable, rate-limit state, interfaces, ...).
    pub notes: Vec<String>,
}

impl Trace {
    /// Whether the verdict is a drop.
    pub fn dropped(&self) -> bool {
        self.verdict == "drop"
    }
}

fn traced_port(port: &PortContext) -> TracedPort {
    TracedPort {
        published: port.key.label(),
        container: port.container.clone(),
        container_id: port.container_id.clone(),
        container_addr: port.container_addr,
        container_port: port.container_port,
    }
}

/// The rule's name for sentences: `rule "drop-bad"` or `rule #2`.
fn rule_words(rule: Option<&TracedRule>, index: u32) -> String {
    match rule {
        Some(rule) if !rule.name.is_empty() => format!("rule {:?}", rule.name),
        _ => format!("rule #{index} of the port"),
    }
}

/// Explains one decision.
pub fn explain(
    record: &TraceRecord,
    packet: Option<FrameSummary>,
    context: &TraceContext,
) -> Trace {
    let meaning = context.meaning(record.stat_id);
    let port = meaning.map(|meaning| meaning.port());
    let published = record.flags & trace_flag::PUBLISHED != 0;
    let matched = record.flags & trace_flag::RULE_MATCHED != 0;
    let rule = match meaning {
        Some(StatMeaning::Rule(_, rule)) => Some(TracedRule {
            index: rule.index.unwrap_or(record.rule_index),
            name: rule.name.clone(),
            action: rule.action.clone(),
            origin: rule.origin.clone(),
            audit: rule.audit,
        }),
        _ if matched => Some(TracedRule {
            index: record.rule_index,
            name: String::new(),
            action: String::new(),
            origin: String::new(),
            audit: false,
        }),
        _ => None,
    };
    let would_drop = record.outcome == outcome::AUDIT;
    let code = u8::try_from(record.reason).unwrap_or(u8::MAX);
    let rule_name = rule_words(rule.as_ref(), record.rule_index);
    let audit_suffix = if would_drop {
        " would drop it, but audit counts it and passes it on"
    } else {
        " drops it"
    };
    let explanation = match code {
        reason::NOT_PUBLISHED => "no published port has this destination address, port and \
             protocol: dockfw does not touch the packet"
            .to_owned(),
        reason::NOT_IP => "not an IPv4 or IPv6 packet: dockfw does not touch it".to_owned(),
        reason::MALFORMED => {
            "a header is cut short or malformed: passed untouched (fail-open), netfilter \
             decides"
                .to_owned()
        }
        reason::IPV6_EXT_LIMIT => "more IPv6 extension headers than dockfw walks: passed \
             untouched (fail-open), netfilter decides"
            .to_owned(),
        reason::FRAGMENT_UNTRACKED => "a non-first fragment of a datagram whose first fragment \
             dockfw has not seen go to a published port: passed untouched"
            .to_owned(),
        reason::UNMATCHED => {
            "a published port, but no rule matched: handed to netfilter".to_owned()
        }
        reason::RULE_PASS => {
            format!("{rule_name} passes it: handed to netfilter, later rules are not evaluated")
        }
        reason::RULE_DROP => format!("{rule_name}{audit_suffix}"),
        reason::BANNED => {
            format!("the source is banned (see `dockfw bans`); the ban{audit_suffix}")
        }
        reason::RATE_LIMIT_PASS => format!(
            "{rule_name} rate-limits it and the packet is within the rate right now (the trace \
             spent no token)"
        ),
        reason::RATE_LIMIT_DROP => format!(
            "{rule_name} rate-limits it and its bucket is empty right now: the rate limit{audit_suffix}"
        ),
        reason::FRAGMENT => {
            if record.verdict == xdp_verdict::DROP || would_drop {
                format!(
                    "a non-first fragment to a port whose fragment action is drop; dockfw{audit_suffix}"
                )
            } else {
                "a non-first fragment to a published port: handed to netfilter (fragments: pass)"
                    .to_owned()
            }
        }
        reason::NO_POLICY => "the port is published but has no policy in the active generation \
             (should not happen): passed (fail-open)"
            .to_owned(),
        other => format!("unknown reason code {other}"),
    };

    let mut notes = Vec::new();
    match context.source {
        ContextSource::Daemon => {}
        ContextSource::StateFile => notes.push(
            "no daemon is running: names come from its state file; containers and rule origins \
             are unknown"
                .to_owned(),
        ),
        ContextSource::None => notes.push(
            "no daemon is running and no state file was found: only numbers can be shown"
                .to_owned(),
        ),
    }
    if published && port.is_none() && context.source != ContextSource::None {
        notes.push(format!(
            "statistic id {} is not known to the daemon (the policy changed during the trace?)",
            record.stat_id
        ));
    }
    if let Some(slot) = context.active_slot
        && published
        && slot != record.generation
    {
        notes.push(format!(
            "the data plane decided with generation slot {} but the daemon reports slot {slot}: \
             the policy changed during the trace; run it again",
            record.generation
        ));
    }

    let verdict = if record.verdict == xdp_verdict::DROP {
        "drop"
    } else {
        "pass"
    };
    let next = (verdict == "pass").then(|| netfilter_next(published, port, context));
    Trace {
        packet,
        verdict: verdict.to_owned(),
        reason: reason::name(code).to_owned(),
        explanation,
        would_drop,
        port: port.map(traced_port),
        rule,
        stat_id: record.stat_id,
        slot: record.generation,
        next,
        notes,
    }
}

/// The path a passed packet takes through netfilter.
fn netfilter_next(
    published: bool,
    port: Option<&PortContext>,
    context: &TraceContext,
) -> NetfilterNext {
    if !published {
        return NetfilterNext {
            path: "netfilter and the host's stack, exactly as without dockfw".to_owned(),
            docker_user: None,
        };
    }
    let dnat = match port {
        Some(port) => match (port.container_addr, port.container_port) {
            (Some(IpAddr::V4(addr)), container_port) if container_port != 0 => {
                format!("DNAT to {addr}:{container_port}")
            }
            (Some(IpAddr::V6(addr)), container_port) if container_port != 0 => {
                format!("DNAT to [{addr}]:{container_port}")
            }
            (None, container_port) if container_port != 0 => {
                format!("DNAT to the container's port {container_port}")
            }
            _ => "DNAT to the container".to_owned(),
        },
        None => "DNAT to the container".to_owned(),
    };
    let path = format!(
        "netfilter: raw PREROUTING, conntrack, nat PREROUTING -> DOCKER ({dnat}), filter FORWARD \
         -> DOCKER-USER -> Docker's chains -> the container"
    );
    let docker_user = match (&context.mirror, port) {
        (Some(mirror), Some(port)) => Some(mirror.rules_for(&port.key).cloned().collect()),
        (Some(mirror), None) => Some(
            mirror
                .netfilter_only
                .iter()
                .filter(|rule| rule.ports.is_none())
                .cloned()
                .collect(),
        ),
        (None, _) => None,
    };
    NetfilterNext { path, docker_user }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{BindingKey, Family, Proto},
        trace::context::{MirrorContext, RuleContext},
    };

    fn context() -> TraceContext {
        let key = BindingKey {
            family: Family::V4,
            proto: Proto::Tcp,
            addr: None,
            port: 8080,
        };
        TraceContext {
            source: ContextSource::Daemon,
            active_slot: Some(1),
            ports: vec![PortContext {
                key,
                container: "web".into(),
                container_id: "0123456789ab".into(),
                container_addr: Some("10.210.90.2".parse().unwrap()),
                container_port: 80,
                stat_unmatched: Some(1),
                stat_banned: Some(2),
                stat_fragments: Some(3),
                rules: vec![RuleContext {
                    index: Some(0),
                    name: "drop-bad".into(),
                    action: "drop".into(),
                    origin: "/etc/dockfw/policy.toml:4".into(),
                    stat_id: 4,
                    audit: false,
                }],
            }],
            ..TraceContext::default()
        }
    }

    fn record(verdict: u32, code: u8, stat_id: u32, flags: u32) -> TraceRecord {
        TraceRecord {
            written: 1,
            verdict,
            reason: u32::from(code),
            stat_id,
            generation: 1,
            flags,
            ..TraceRecord::default()
        }
    }

    #[test]
    fn a_rule_drop_names_rule_origin_port_and_container() {
        let record = record(
            xdp_verdict::DROP,
            reason::RULE_DROP,
            4,
            trace_flag::PUBLISHED | trace_flag::RULE_MATCHED,
        );
        let trace = explain(&record, None, &context());
        assert!(trace.dropped());
        assert_eq!(trace.reason, "rule");
        assert_eq!(trace.explanation, "rule \"drop-bad\" drops it");
        let rule = trace.rule.unwrap();
        assert_eq!(rule.origin, "/etc/dockfw/policy.toml:4");
        let port = trace.port.unwrap();
        assert_eq!(
            (port.published.as_str(), port.container.as_str()),
            ("8080/tcp", "web")
        );
        assert_eq!(trace.next, None, "a dropped packet goes nowhere");
        assert!(trace.notes.is_empty(), "{:?}", trace.notes);
    }

    #[test]
    fn a_pass_says_where_netfilter_sends_it() {
        let record = record(
            xdp_verdict::PASS,
            reason::UNMATCHED,
            1,
            trace_flag::PUBLISHED,
        );
        let mut context = context();
        let trace = explain(&record, None, &context);
        let next = trace.next.unwrap();
        assert!(
            next.path.contains("DNAT to 10.210.90.2:80"),
            "{}",
            next.path
        );
        assert_eq!(next.docker_user, None, "not mirrored: every rule applies");

        context.mirror = Some(MirrorContext {
            netfilter_only: vec![NetfilterOnlyRule {
                family: "ipv4".into(),
                chain: "DOCKER-USER".into(),
                position: 2,
                text: "-A DOCKER-USER -p tcp -m tcp --dport 80 -j REJECT".into(),
                reason: "REJECT".into(),
                ports: Some(vec![context.ports[0].key.label()]),
            }],
        });
        let trace = explain(&record, None, &context);
        let rules = trace.next.unwrap().docker_user.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].position, 2);
    }

    #[test]
    fn audit_and_unknown_names_are_said() {
        let mut record = record(
            xdp_verdict::PASS,
            reason::RULE_DROP,
            77,
            trace_flag::PUBLISHED | trace_flag::RULE_MATCHED,
        );
        record.outcome = outcome::AUDIT;
        record.rule_index = 3;
        let trace = explain(&record, None, &TraceContext::default());
        assert!(trace.would_drop);
        assert_eq!(
            trace.explanation,
            "rule #3 of the port would drop it, but audit counts it and passes it on"
        );
        assert_eq!(trace.notes.len(), 1, "{:?}", trace.notes);
    }

    #[test]
    fn a_generation_change_during_the_trace_is_noted() {
        let mut record = record(
            xdp_verdict::PASS,
            reason::UNMATCHED,
            1,
            trace_flag::PUBLISHED,
        );
        record.generation = 0;
        let trace = explain(&record, None, &context());
        assert!(trace.notes[0].contains("run it again"), "{:?}", trace.notes);
    }
}

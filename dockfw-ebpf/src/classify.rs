//! Classify: published port -> ban -> the port's rule bitmap -> first match.
//!
//! Per packet this is: the configuration, the port index and the port's
//! policy (three array lookups the verifier inlines), for a port published
//! on the wildcard address the local-address check (one more, see
//! [`crate::local`]), the ban state of the
//! source (an inlined array lookup, two more for a partly banned /24, see
//! [`crate::bans`]), the source bitmap (one inlined array lookup per address
//! byte down the port's trie, see [`crate::sources`]), an interface-mask
//! lookup only when the port has interface conditions, and the matching rule
//! (an inlined array lookup) - whatever the number of rules or prefixes.
//! Rule order is bit order: the first matching rule is the lowest set bit.

use dockfw_common::{
    IfaceMaskKey, MAX_RULES_PER_PORT, PORT_INDEX_SPECIFIC, PortKey, PortPolicy, RuleAction, action,
    outcome, port_flag, port_index, reason, rule_flag, trace_flag, xdp_verdict,
};

use crate::{
    bans::is_banned,
    clock::Clock,
    fragments::{lookup_fragment, remember_fragment},
    local::is_local,
    maps::{DFW_CONFIG, DFW_IFMASK, DFW_POLICIES, DFW_PORT_ADDRS, DFW_PORT_INDEX, DFW_RULES},
    parse::{FRAG_FIRST, FRAG_LATER, Packet},
    ratelimit::within_rate,
    sources::source_bits,
};

/// The decision for one packet, before it is counted.
pub struct Decision {
    /// [`xdp_verdict`].
    pub verdict: u32,
    /// [`reason`] code.
    pub reason: u8,
    /// [`outcome`] code.
    pub outcome: u32,
    /// Statistic id to count under; [`dockfw_common::STAT_NONE`] = global
    /// reason counter.
    pub stat_id: u32,
    /// Matching rule index (valid with [`trace_flag::RULE_MATCHED`]).
    pub rule_index: u32,
    /// [`trace_flag`]s.
    pub flags: u32,
    /// Policy index of the port (0 when not published).
    pub slot: u32,
    /// Active generation.
    pub generation: u32,
    /// Rule bitmap after every condition.
    pub candidate_bits: u32,
}

impl Decision {
    #[inline(always)]
    fn skip(reason: u8, flags: u32, generation: u32) -> Self {
        Self {
            verdict: xdp_verdict::PASS,
            reason,
            outcome: outcome::PASS,
            stat_id: dockfw_common::STAT_NONE,
            rule_index: 0,
            flags,
            slot: 0,
            generation,
            candidate_bits: 0,
        }
    }
}

/// The address words as the bytes they hold (network order).
#[inline(always)]
pub fn address_bytes(words: [u32; 4]) -> [u8; 16] {
    // SAFETY: [u32; 4] and [u8; 16] have the same size and every bit pattern
    // is valid for both.
    unsafe { core::mem::transmute::<[u32; 4], [u8; 16]>(words) }
}

/// A drop that becomes a counted pass when `audit` is set.
#[inline(always)]
fn drop_or_audit(audit: bool) -> (u32, u32) {
    if audit {
        (xdp_verdict::PASS, outcome::AUDIT)
    } else {
        (xdp_verdict::DROP, outcome::DROP)
    }
}

/// Classifies a parsed packet. `commit` is false in a trace instance: no
/// bucket is spent and no fragment is remembered.
#[inline(always)]
pub fn classify(packet: &Packet, ifindex: u32, commit: bool, clock: &mut Clock) -> Decision {
    let Some(config) = DFW_CONFIG.get(0) else {
        return Decision::skip(reason::NO_POLICY, 0, 0);
    };
    let generation = config.active_generation & 1;
    let mut flags = if packet.is_syn() { trace_flag::SYN } else { 0 };

    // Later fragments carry no ports: take the port their first fragment had.
    let mut dport_raw = packet.dport_raw;
    if packet.fragment == FRAG_LATER {
        flags |= trace_flag::FRAGMENT;
        match lookup_fragment(packet) {
            Some(first) => dport_raw = first.port_be,
            None => return Decision::skip(reason::FRAGMENT_UNTRACKED, flags, generation),
        }
    }

    let slot = lookup_port(generation, packet, dport_raw, config.flags, &mut flags);
    if slot == 0 {
        return Decision::skip(reason::NOT_PUBLISHED, flags, generation);
    }
    flags |= trace_flag::PUBLISHED;
    let Some(policy) = DFW_POLICIES.get(slot) else {
        return Decision::skip(reason::NO_POLICY, flags, generation);
    };
    let mut decision = Decision {
        verdict: xdp_verdict::PASS,
        reason: reason::UNMATCHED,
        outcome: outcome::PASS,
        stat_id: policy.stat_unmatched,
        rule_index: 0,
        flags,
        slot,
        generation,
        candidate_bits: 0,
    };
    let port_audit = policy.flags & port_flag::AUDIT != 0;

    // Remember a first fragment even from a banned source: its later
    // fragments are then banned too instead of passing as untracked.
    if packet.fragment == FRAG_FIRST && commit {
        remember_fragment(packet);
    }

    if is_banned(packet, config.flags, clock) {
        decision.flags |= trace_flag::BANNED;
        decision.reason = reason::BANNED;
        decision.stat_id = policy.stat_banned;
        (decision.verdict, decision.outcome) = drop_or_audit(port_audit);
        return decision;
    }

    if packet.fragment == FRAG_LATER {
        decision.reason = reason::FRAGMENT;
        decision.stat_id = policy.stat_fragments;
        if policy.flags & port_flag::FRAGMENTS_DROP != 0 {
            (decision.verdict, decision.outcome) = drop_or_audit(port_audit);
        }
        return decision;
    }

    if policy.rule_count == 0 {
        return decision;
    }
    let bits = candidate_rules(policy, packet, slot, ifindex, decision.flags, config.flags);
    decision.candidate_bits = bits;
    let Some(index) = first_match(policy, bits, packet) else {
        return decision;
    };
    let Some(rule) = DFW_RULES.get(policy.rule_base + index) else {
        return decision;
    };
    decision.flags |= trace_flag::RULE_MATCHED;
    decision.rule_index = index;
    decision.stat_id = rule.stat_id;
    apply_rule(rule, packet, commit, clock, &mut decision);
    decision
}

/// The policy index for the packet's destination: a binding on its specific
/// address first (only looked up when the port has one), else the wildcard
/// binding if the destination is one of the host's addresses. 0 = not
/// published.
#[inline(always)]
fn lookup_port(
    generation: u32,
    packet: &Packet,
    dport_raw: u16,
    config_flags: u32,
    flags: &mut u32,
) -> u32 {
    let index = port_index(generation, packet.family, packet.proto, dport_raw);
    let entry = match DFW_PORT_INDEX.get(index) {
        Some(entry) => *entry,
        None => 0,
    };
    if entry & PORT_INDEX_SPECIFIC != 0 {
        let key = PortKey {
            addr: address_bytes(packet.dst),
            port_be: dport_raw,
            proto: packet.proto,
            family: packet.family,
            generation: generation as u8,
            pad: [0; 3],
        };
        if let Some(found) = DFW_PORT_ADDRS.get_ptr(key) {
            // SAFETY: a pointer from a successful lookup, read once.
            let slot = unsafe { *found };
            if slot != 0 {
                *flags |= trace_flag::SPECIFIC_ADDRESS;
                return slot;
            }
        }
    }
    let slot = entry & !PORT_INDEX_SPECIFIC;
    if slot != 0 && !is_local(packet, config_flags) {
        return 0;
    }
    slot
}

/// The rules whose source, interface and SYN conditions hold.
#[inline(always)]
fn candidate_rules(
    policy: &PortPolicy,
    packet: &Packet,
    slot: u32,
    ifindex: u32,
    flags: u32,
    config_flags: u32,
) -> u32 {
    let mut bits = policy.default_bits;
    if policy.flags & port_flag::HAS_SOURCE_RULES != 0 {
        bits = source_bits(packet, policy, slot, config_flags);
    }
    if policy.flags & port_flag::HAS_IFACE_RULES != 0 {
        let key = IfaceMaskKey { slot, ifindex };
        bits &= match DFW_IFMASK.get_ptr(key) {
            // SAFETY: a pointer from a successful lookup, read once.
            Some(mask) => unsafe { *mask },
            None => policy.iface_default_mask,
        };
    }
    if flags & trace_flag::SYN == 0 {
        bits &= !policy.syn_only_mask;
    }
    bits
}

/// The index of the first candidate whose residual conditions (source port,
/// TCP flags) hold. Without residual rules among the candidates that is
/// simply the lowest set bit, with no loop.
#[inline(always)]
fn first_match(policy: &PortPolicy, mut bits: u32, packet: &Packet) -> Option<u32> {
    if bits & policy.residual_mask == 0 {
        return if bits != 0 {
            Some(lowest_bit(bits))
        } else {
            None
        };
    }
    for _ in 0..MAX_RULES_PER_PORT {
        if bits == 0 {
            break;
        }
        let index = lowest_bit(bits);
        if policy.residual_mask & (1 << index) == 0 {
            return Some(index);
        }
        let rule = DFW_RULES.get(policy.rule_base + index)?;
        if residual_match(rule, packet) {
            return Some(index);
        }
        bits &= bits - 1;
    }
    None
}

/// Index of the lowest set bit of a non-zero word, bounded for the verifier.
///
/// LLVM lowers count-trailing-zeros to a de Bruijn table lookup in `.rodata`;
/// knowing the result is below 32 it would drop a mask, but the verifier
/// only sees "a byte from a table". Passing the count through a volatile
/// stack slot hides what LLVM knows, so the mask stays.
#[inline(always)]
fn lowest_bit(bits: u32) -> u32 {
    let index = bits.trailing_zeros();
    // SAFETY: reading back a local just written.
    let index = unsafe { core::ptr::read_volatile(&index) };
    index & (MAX_RULES_PER_PORT as u32 - 1)
}

#[inline(always)]
fn residual_match(rule: &RuleAction, packet: &Packet) -> bool {
    let sport = u16::from_be(packet.sport_raw);
    if sport < rule.sport_lo || sport > rule.sport_hi {
        return false;
    }
    packet.tcp_flags & rule.tcp_flags_mask == rule.tcp_flags_value
}

#[inline(always)]
fn apply_rule(
    rule: &RuleAction,
    packet: &Packet,
    commit: bool,
    clock: &mut Clock,
    decision: &mut Decision,
) {
    let audit = rule.flags & rule_flag::AUDIT != 0;
    match rule.action {
        action::DROP => {
            decision.reason = reason::RULE_DROP;
            (decision.verdict, decision.outcome) = drop_or_audit(audit);
        }
        action::RATE_LIMIT => {
            if within_rate(rule, packet, commit, clock) {
                decision.reason = reason::RATE_LIMIT_PASS;
            } else {
                decision.reason = reason::RATE_LIMIT_DROP;
                (decision.verdict, decision.outcome) = drop_or_audit(audit);
            }
        }
        _ => decision.reason = reason::RULE_PASS,
    }
}

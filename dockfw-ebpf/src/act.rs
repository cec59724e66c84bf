//! Act: count the decision, sample drop events, or (in a trace instance)
//! record the decision instead of touching any shared state.

use aya_ebpf::Global;
use dockfw_common::{Counter, DropEvent, STAT_NONE, TraceRecord, outcome, stat_index};

use crate::{
    classify::{Decision, address_bytes},
    clock::Clock,
    maps::{DFW_CONFIG, DFW_EVBUDGET, DFW_EVENTS, DFW_GSTATS, DFW_STATS, DFW_TRACE},
    parse::Packet,
    ratelimit::gcra_next,
};

/// Set to 1 at load time by `dockfw trace`: this instance records its one
/// decision in `DFW_TRACE` and writes nothing else.
#[unsafe(no_mangle)]
static DFW_TRACE_MODE: Global<u8> = Global::new(0);

/// True in a trace instance. The value is frozen read-only data, so the
/// verifier prunes the branch it does not take.
#[inline(always)]
pub fn trace_mode() -> bool {
    DFW_TRACE_MODE.load() != 0
}

#[inline(always)]
fn add(counter: Option<*mut Counter>, bytes: u64) {
    if let Some(counter) = counter {
        // SAFETY: a per-CPU slot from a successful lookup; only this CPU
        // writes it while the program runs.
        unsafe {
            (*counter).packets += 1;
            (*counter).bytes += bytes;
        }
    }
}

/// Counts a packet that reached no published port, under its reason.
#[inline(always)]
pub fn count_global(reason: u8, bytes: u64) {
    if !trace_mode() {
        add(DFW_GSTATS.get_ptr_mut(u32::from(reason)), bytes);
    }
}

/// Counts a classified packet and samples an event for drops.
#[inline(always)]
pub fn record(decision: &Decision, packet: &Packet, ifindex: u32, bytes: u64, clock: &mut Clock) {
    if trace_mode() {
        write_trace(decision, ifindex);
        return;
    }
    if decision.stat_id == STAT_NONE {
        add(DFW_GSTATS.get_ptr_mut(u32::from(decision.reason)), bytes);
        return;
    }
    add(
        DFW_STATS.get_ptr_mut(stat_index(decision.stat_id, decision.outcome)),
        bytes,
    );
    if decision.outcome != outcome::PASS {
        sample_event(decision, packet, ifindex, bytes, clock);
    }
}

/// Writes the trace record for a packet the parser skipped.
#[inline(always)]
pub fn trace_skip(reason: u8, ifindex: u32) {
    if trace_mode() {
        let record = TraceRecord {
            written: 1,
            verdict: dockfw_common::xdp_verdict::PASS,
            reason: u32::from(reason),
            ifindex,
            ..TraceRecord::default()
        };
        let _ = DFW_TRACE.set(0, record, 0);
    }
}

#[inline(always)]
fn write_trace(decision: &Decision, ifindex: u32) {
    let record = TraceRecord {
        written: 1,
        verdict: decision.verdict,
        reason: u32::from(decision.reason),
        outcome: decision.outcome,
        stat_id: decision.stat_id,
        rule_index: decision.rule_index,
        slot: decision.slot,
        generation: decision.generation,
        flags: decision.flags,
        candidate_bits: decision.candidate_bits,
        ifindex,
        pad: 0,
    };
    let _ = DFW_TRACE.set(0, record, 0);
}

/// One event per statistic id per `event_interval_ns` on average (with a
/// burst), so a flood cannot flood user space; a full ring drops the event.
#[inline(always)]
fn sample_event(decision: &Decision, packet: &Packet, ifindex: u32, bytes: u64, clock: &mut Clock) {
    let Some(config) = DFW_CONFIG.get(0) else {
        return;
    };
    if config.event_interval_ns == 0 {
        return;
    }
    let Some(budget) = DFW_EVBUDGET.get_ptr_mut(decision.stat_id) else {
        return;
    };
    let now = clock.now();
    // SAFETY: a pointer into the array from a successful lookup.
    let tat = unsafe { *budget };
    let Some(next) = gcra_next(tat, now, config.event_interval_ns, config.event_burst_ns) else {
        return;
    };
    // SAFETY: as above.
    unsafe { *budget = next };
    let Some(mut entry) = DFW_EVENTS.reserve::<DropEvent>(0) else {
        return;
    };
    entry.write(DropEvent {
        timestamp_ns: now,
        stat_id: decision.stat_id,
        ifindex,
        packet_len: bytes as u32,
        outcome: decision.outcome as u8,
        reason: decision.reason,
        family: packet.family,
        proto: packet.proto,
        dst_port_be: packet.dport_raw,
        src_port_be: packet.sport_raw,
        tcp_flags: packet.tcp_flags,
        pad: [0; 3],
        src: address_bytes(packet.src),
        dst: address_bytes(packet.dst),
    });
    entry.submit(0);
}

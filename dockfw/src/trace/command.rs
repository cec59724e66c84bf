//! `dockfw trace`: the binary's edge (errors with context for the operator).

use std::{ffi::CString, process::ExitCode};

use anyhow::{Context as _, bail};
use dockfw_common::{TraceRecord, outcome, reason, rule_flag, trace_flag, xdp_verdict};

use super::{
    args::{DEFAULT_SOURCE_PORT, TraceArgs},
    context::{ContextSource, TraceContext},
    explain::{Trace, explain},
    frame::{FrameSpec, TCP_ACK, TCP_SYN, build, summarize},
    pcap,
    render::{CaptureEntry, CaptureReport, render, render_capture},
    replay::RateReplay,
    tracer::Tracer,
};
use crate::{
    cli::ClientArgs,
    control::{
        Request, Response,
        client::{ClientError, request},
    },
    daemon::state::{PersistedState, STATE_FILE},
    model::Proto,
};

/// Bytes of an Ethernet header: the kernel runs no shorter frame.
const ETHERNET_HEADER: usize = 14;

/// `dockfw trace`.
pub fn command(args: &TraceArgs) -> anyhow::Result<ExitCode> {
    let (context, mut notes) = load_context(&args.client);
    let ifindex = match &args.iface {
        Some(name) => {
            let index = ifindex(name)?;
            if context.source == ContextSource::Daemon
                && !context.interfaces.iter().any(|(iface, _)| iface == name)
            {
                notes.push(format!(
                    "dockfw is not attached to {name}: packets arriving there never reach it; \
                     traced as if they did"
                ));
            }
            Some(index)
        }
        None => None,
    };
    let mut tracer = Tracer::open(&args.client.pin_dir).with_context(|| {
        format!(
            "cannot trace against the data plane pinned under {}",
            args.client.pin_dir.display()
        )
    })?;
    match &args.pcap {
        Some(path) => {
            let packets = pcap::read_file(path)?;
            let report = replay_capture(&mut tracer, &context, ifindex, packets, notes)?;
            if args.client.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render_capture(&report));
            }
        }
        None => {
            let frame = single_frame(args)?;
            let record = tracer.trace(&frame, ifindex)?;
            let mut trace = explain(&record, summarize(&frame), &context);
            trace.notes.extend(notes);
            if args.client.json {
                println!("{}", serde_json::to_string_pretty(&trace)?);
            } else {
                print!("{}", render(&trace));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The frame `--from/--to/--syn/--vlan` describe.
fn single_frame(args: &TraceArgs) -> anyhow::Result<Vec<u8>> {
    let (Some(from), Some(to)) = (args.from, args.to) else {
        bail!("--from and --to are both needed to build a packet (or give --pcap FILE)");
    };
    if args.syn && to.proto == Proto::Udp {
        bail!("--syn is a TCP flag; {to} is UDP");
    }
    let spec = FrameSpec {
        src: from.addr,
        sport: from.port.unwrap_or(DEFAULT_SOURCE_PORT),
        dst: to.addr,
        dport: to.port,
        proto: to.proto,
        tcp_flags: if args.syn { TCP_SYN } else { TCP_ACK },
        vlan: args.vlan,
    };
    Ok(build(&spec)?)
}

/// The names for a trace: from the daemon, else its state file.
fn load_context(client: &ClientArgs) -> (TraceContext, Vec<String>) {
    let mut notes = Vec::new();
    match request(&client.run_dir, &Request::TraceContext) {
        Ok(Response::TraceContext { context }) => return (*context, notes),
        Ok(Response::Error { message }) => notes.push(format!(
            "the daemon could not describe its policy ({message}); names come from its state file"
        )),
        Ok(other) => notes.push(format!(
            "the daemon answered {other:?} instead of its policy; names come from its state file"
        )),
        Err(ClientError::NotRunning(_)) => {}
        Err(error) => notes.push(format!(
            "asking the daemon failed ({error}); names come from its state file"
        )),
    }
    let path = client.run_dir.join(STATE_FILE);
    if !path.exists() {
        return (TraceContext::default(), notes);
    }
    let state = PersistedState::load(&path);
    (TraceContext::from_registry(&state.registry), notes)
}

/// The index of an interface in this network namespace.
fn ifindex(name: &str) -> anyhow::Result<u32> {
    let c_name = CString::new(name).with_context(|| format!("bad interface name {name:?}"))?;
    // SAFETY: a valid NUL-terminated string; the call only reads it.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        bail!(
            "no interface {name} in this network namespace: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(index)
}

/// Traces every packet of a capture, replaying rate limits at the capture's
/// timestamps.
fn replay_capture(
    tracer: &mut Tracer,
    context: &TraceContext,
    ifindex: Option<u32>,
    packets: Vec<pcap::CapturedPacket>,
    mut notes: Vec<String>,
) -> anyhow::Result<CaptureReport> {
    let mut replay = RateReplay::default();
    let mut entries = Vec::with_capacity(packets.len());
    let (mut rate_limited, mut truncated, mut untracked, mut skipped) =
        (false, 0usize, 0usize, 0usize);
    for packet in packets {
        if packet.frame.len() < ETHERNET_HEADER {
            skipped += 1;
            continue;
        }
        let mut record = tracer
            .trace(&packet.frame, ifindex)
            .with_context(|| format!("tracing packet #{}", packet.number))?;
        let summary = summarize(&packet.frame);
        let replayed = replay_rate_limit(tracer, &mut replay, &mut record, &summary, &packet);
        rate_limited |= replayed;
        truncated += usize::from(packet.truncated);
        untracked += usize::from(u32::from(reason::FRAGMENT_UNTRACKED) == record.reason);
        let mut trace = explain(&record, summary, context);
        if replayed {
            trace.explanation = replayed_explanation(&trace);
        }
        entries.push(CaptureEntry {
            number: packet.number,
            timestamp_ns: packet.timestamp_ns,
            trace,
        });
    }
    if let Some(first) = entries.first_mut() {
        // Notes about the names hold for every packet: say them once.
        notes.append(&mut first.trace.notes);
        for entry in &mut entries {
            entry.trace.notes.retain(|note| !notes.contains(note));
        }
    }
    if rate_limited {
        notes.push(
            "rate limits were replayed at the capture's timestamps, every bucket starting full \
             (the live buckets were read, never spent)"
                .to_owned(),
        );
    }
    if truncated > 0 {
        notes.push(format!(
            "{truncated} packets were captured shorter than they were (snap length); their \
             headers may be cut"
        ));
    }
    if skipped > 0 {
        notes.push(format!(
            "{skipped} frames shorter than an Ethernet header were skipped"
        ));
    }
    if untracked > 0 {
        notes.push(format!(
            "{untracked} non-first fragments were judged against the live fragment table \
             (a trace remembers no first fragment)"
        ));
    }
    Ok(CaptureReport::new(entries, notes))
}

/// Re-decides a rate-limited packet with the replay's buckets. Returns
/// whether it did.
fn replay_rate_limit(
    tracer: &Tracer,
    replay: &mut RateReplay,
    record: &mut TraceRecord,
    summary: &Option<super::frame::FrameSummary>,
    packet: &pcap::CapturedPacket,
) -> bool {
    let rate_reason = [
        u32::from(reason::RATE_LIMIT_PASS),
        u32::from(reason::RATE_LIMIT_DROP),
    ];
    if record.flags & trace_flag::RULE_MATCHED == 0 || !rate_reason.contains(&record.reason) {
        return false;
    }
    let (Some(rule), Some(summary)) = (tracer.rule(record), summary) else {
        return false;
    };
    if replay.admit(&rule, summary.src, packet.timestamp_ns) {
        record.reason = u32::from(reason::RATE_LIMIT_PASS);
        record.verdict = xdp_verdict::PASS;
        record.outcome = outcome::PASS;
    } else {
        record.reason = u32::from(reason::RATE_LIMIT_DROP);
        if rule.flags & rule_flag::AUDIT != 0 {
            record.verdict = xdp_verdict::PASS;
            record.outcome = outcome::AUDIT;
        } else {
            record.verdict = xdp_verdict::DROP;
            record.outcome = outcome::DROP;
        }
    }
    true
}

fn replayed_explanation(trace: &Trace) -> String {
    let rule = trace
        .rule
        .as_ref()
        .filter(|rule| !rule.name.is_empty())
        .map_or_else(
            || "the rate-limit rule".to_owned(),
            |rule| format!("rule {:?}", rule.name),
        );
    match (trace.dropped(), trace.would_drop) {
        (true, _) => format!("{rule}: over the rate at this point of the capture"),
        (false, true) => {
            format!("{rule}: over the rate at this point of the capture (audit: passed)")
        }
        (false, false) => format!("{rule}: within the rate at this point of the capture"),
    }
}

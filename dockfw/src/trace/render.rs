//! Text output of `dockfw trace`: one packet in detail, or a capture as
//! one line per packet and a per-verdict summary.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::{Deserialize, Serialize};

use super::explain::Trace;

/// Width of the labels in the detailed view.
const LABEL: usize = 9;

fn line(out: &mut String, label: &str, text: &str) {
    let _ = writeln!(out, "{:<LABEL$}{text}", format!("{label}:"));
}

fn verdict_words(trace: &Trace) -> String {
    match (trace.dropped(), trace.would_drop) {
        (true, _) => "DROP".to_owned(),
        (false, true) => "PASS (audit: would drop)".to_owned(),
        (false, false) => "PASS".to_owned(),
    }
}

/// The detailed view of one trace.
pub fn render(trace: &Trace) -> String {
    let mut out = String::new();
    match &trace.packet {
        Some(packet) => line(
            &mut out,
            "packet",
            &format!("{} ({} bytes)", packet.describe(), packet.len),
        ),
        None => line(&mut out, "packet", "not IP"),
    }
    line(&mut out, "verdict", &verdict_words(trace));
    line(
        &mut out,
        "reason",
        &format!("{}: {}", trace.reason, trace.explanation),
    );
    if let Some(port) = &trace.port {
        let mut text = port.published.clone();
        if !port.container.is_empty() {
            let _ = write!(text, " -> container {}", port.container);
            if !port.container_id.is_empty() {
                let _ = write!(text, " ({})", port.container_id);
            }
        }
        if port.container_port != 0 {
            match port.container_addr {
                Some(addr) if addr.is_ipv6() => {
                    let _ = write!(text, ", [{addr}]:{}", port.container_port);
                }
                Some(addr) => {
                    let _ = write!(text, ", {addr}:{}", port.container_port);
                }
                None => {
                    let _ = write!(text, ", port {}", port.container_port);
                }
            }
        }
        line(&mut out, "port", &text);
    }
    if let Some(rule) = &trace.rule {
        let mut text = format!("#{}", rule.index);
        if !rule.name.is_empty() {
            let _ = write!(text, " {}", rule.name);
        }
        let details: Vec<&str> = [rule.action.as_str(), rule.origin.as_str()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect();
        if !details.is_empty() {
            let _ = write!(text, " ({})", details.join("; "));
        }
        if rule.audit {
            text.push_str(" [audit]");
        }
        line(&mut out, "rule", &text);
    }
    match &trace.next {
        None => line(
            &mut out,
            "next",
            "nothing: dropped before conntrack and netfilter",
        ),
        Some(next) => {
            line(&mut out, "next", &next.path);
            let indent = " ".repeat(LABEL);
            match &next.docker_user {
                _ if trace.port.is_none() => {}
                None => {
                    let _ = writeln!(
                        out,
                        "{indent}DOCKER-USER is not mirrored by dockfw: every rule in it still \
                         applies (iptables -L DOCKER-USER -v -n --line-numbers)"
                    );
                }
                Some(rules) if rules.is_empty() => {
                    let _ = writeln!(
                        out,
                        "{indent}no DOCKER-USER rule stays netfilter-only for this traffic"
                    );
                }
                Some(rules) => {
                    let _ = writeln!(
                        out,
                        "{indent}DOCKER-USER rules that stay netfilter-only for this traffic:"
                    );
                    for rule in rules {
                        let _ = writeln!(
                            out,
                            "{indent}  {} rule {}: {} ({})",
                            rule.chain, rule.position, rule.text, rule.reason
                        );
                    }
                }
            }
        }
    }
    for note in &trace.notes {
        line(&mut out, "note", note);
    }
    out
}

/// One packet of a replayed capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureEntry {
    /// 1-based position in the capture.
    pub number: usize,
    /// Capture time, ns since the epoch.
    pub timestamp_ns: u64,
    /// The trace.
    pub trace: Trace,
}

/// One line of the per-verdict summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryLine {
    /// `pass` or `drop`.
    pub verdict: String,
    /// Reason name.
    pub reason: String,
    /// Published port, if any.
    pub port: Option<String>,
    /// Rule name, if any.
    pub rule: Option<String>,
    /// Packets.
    pub packets: u64,
    /// Of which would have been dropped (audit).
    pub would_drop: u64,
}

/// A replayed capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureReport {
    /// Every packet.
    pub packets: Vec<CaptureEntry>,
    /// Per verdict, reason, port and rule, most packets first.
    pub summary: Vec<SummaryLine>,
    /// Caveats about the whole replay.
    pub notes: Vec<String>,
}

impl CaptureReport {
    /// Builds the summary over `packets`.
    pub fn new(packets: Vec<CaptureEntry>, notes: Vec<String>) -> Self {
        type Group = (String, String, Option<String>, Option<String>);
        let mut groups: BTreeMap<Group, (u64, u64)> = BTreeMap::new();
        for entry in &packets {
            let trace = &entry.trace;
            let key = (
                trace.verdict.clone(),
                trace.reason.clone(),
                trace.port.as_ref().map(|port| port.published.clone()),
                trace
                    .rule
                    .as_ref()
                    .map(|rule| rule.name.clone())
                    .filter(|name| !name.is_empty()),
            );
            let counts = groups.entry(key).or_default();
            counts.0 += 1;
            counts.1 += u64::from(trace.would_drop);
        }
        let mut summary: Vec<SummaryLine> = groups
            .into_iter()
            .map(
                |((verdict, reason, port, rule), (packets, would_drop))| SummaryLine {
                    verdict,
                    reason,
                    port,
                    rule,
                    packets,
                    would_drop,
                },
            )
            .collect();
        // Drops first ("drop" < "pass"), then the biggest groups.
        summary.sort_by(|a, b| {
            a.verdict
                .cmp(&b.verdict)
                .then_with(|| b.packets.cmp(&a.packets))
                .then_with(|| a.reason.cmp(&b.reason))
        });
        Self {
            packets,
            summary,
            notes,
        }
    }
}

/// The text view of a replayed capture.
pub fn render_capture(report: &CaptureReport) -> String {
    let mut out = String::new();
    let start = report.packets.first().map_or(0, |entry| entry.timestamp_ns);
    for entry in &report.packets {
        let trace = &entry.trace;
        let offset = entry.timestamp_ns.saturating_sub(start) as f64 / 1e9;
        let packet = trace
            .packet
            .as_ref()
            .map_or_else(|| "not IP".to_owned(), |packet| packet.describe());
        let mut what = trace.reason.clone();
        if let Some(rule) = trace.rule.as_ref().filter(|rule| !rule.name.is_empty()) {
            let _ = write!(what, " {}", rule.name);
        }
        let verdict = match (trace.dropped(), trace.would_drop) {
            (true, _) => "DROP",
            (false, true) => "PASS*",
            (false, false) => "PASS",
        };
        let _ = writeln!(
            out,
            "#{:<6} {offset:>10.6}s  {verdict:<5}  {packet}  {what}",
            entry.number
        );
    }
    let total = report.packets.len();
    let dropped = report
        .packets
        .iter()
        .filter(|entry| entry.trace.dropped())
        .count();
    let would_drop = report
        .packets
        .iter()
        .filter(|entry| entry.trace.would_drop)
        .count();
    let _ = write!(
        out,
        "\n{total} packets: {dropped} dropped, {} passed",
        total - dropped
    );
    if would_drop > 0 {
        let _ = write!(
            out,
            " ({would_drop} of them would be dropped without audit, marked PASS*)"
        );
    }
    out.push('\n');
    for summary in &report.summary {
        let mut what = summary.reason.clone();
        if let Some(port) = &summary.port {
            let _ = write!(what, " {port}");
        }
        if let Some(rule) = &summary.rule {
            let _ = write!(what, " rule {rule}");
        }
        let _ = writeln!(
            out,
            "  {:>8}  {:<4}  {what}",
            summary.packets, summary.verdict
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::explain::{NetfilterNext, TracedPort, TracedRule};

    fn trace(verdict: &str, reason: &str, rule: Option<&str>) -> Trace {
        Trace {
            packet: None,
            verdict: verdict.into(),
            reason: reason.into(),
            explanation: "because".into(),
            would_drop: false,
            port: Some(TracedPort {
                published: "8080/tcp".into(),
                container: "web".into(),
                container_id: "0123456789ab".into(),
                container_addr: Some("10.210.90.2".parse().unwrap()),
                container_port: 80,
            }),
            rule: rule.map(|name| TracedRule {
                index: 0,
                name: name.into(),
                action: "drop".into(),
                origin: "policy.toml:4".into(),
                audit: false,
            }),
            stat_id: 4,
            slot: 0,
            next: (verdict == "pass").then(|| NetfilterNext {
                path: "netfilter: ...".into(),
                docker_user: None,
            }),
            notes: vec![],
        }
    }

    #[test]
    fn the_detailed_view_names_everything() {
        let text = render(&trace("drop", "rule", Some("drop-bad")));
        assert_eq!(
            text,
            "packet:  not IP\n\
             verdict: DROP\n\
             reason:  rule: because\n\
             port:    8080/tcp -> container web (0123456789ab), 10.210.90.2:80\n\
             rule:    #0 drop-bad (drop; policy.toml:4)\n\
             next:    nothing: dropped before conntrack and netfilter\n"
        );
        let text = render(&trace("pass", "unmatched", None));
        assert!(text.contains("DOCKER-USER is not mirrored"), "{text}");
    }

    #[test]
    fn the_capture_summary_groups_by_verdict_reason_port_and_rule() {
        let entries = [
            trace("drop", "rule", Some("drop-bad")),
            trace("drop", "rule", Some("drop-bad")),
            trace("pass", "unmatched", None),
        ]
        .into_iter()
        .enumerate()
        .map(|(index, trace)| CaptureEntry {
            number: index + 1,
            timestamp_ns: 1_000 + index as u64,
            trace,
        })
        .collect();
        let report = CaptureReport::new(entries, vec![]);
        assert_eq!(report.summary.len(), 2);
        assert_eq!(
            (
                report.summary[0].verdict.as_str(),
                report.summary[0].packets
            ),
            ("drop", 2)
        );
        let text = render_capture(&report);
        assert!(text.contains("3 packets: 2 dropped, 1 passed"), "{text}");
        assert!(
            text.contains("2  drop  rule 8080/tcp rule drop-bad"),
            "{text}"
        );
    }
}

//! `dockfw events` without `--json`: one readable line per event.

use std::net::IpAddr;

use super::SampledEvent;

/// `ADDR:PORT`, with brackets for IPv6.
pub fn endpoint(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(addr) => format!("{addr}:{port}"),
        IpAddr::V6(addr) => format!("[{addr}]:{port}"),
    }
}

/// One line: time, outcome, reason, source, target, rule and packet facts.
pub fn line(event: &SampledEvent) -> String {
    let target = event
        .published_port
        .clone()
        .unwrap_or_else(|| format!("{}/{}", event.destination_port, event.protocol));
    let mut text = format!(
        "{} {:<5} {:<10} {} -> {}",
        event.time,
        event.outcome,
        event.reason,
        endpoint(&event.source, event.source_port),
        target,
    );
    if let Some(container) = &event.container {
        text.push_str(&format!(" ({container})"));
    }
    if let Some(rule) = &event.rule {
        text.push_str(&format!(" rule={rule}"));
    }
    if !event.tcp_flags.is_empty() {
        text.push_str(&format!(" flags={}", event.tcp_flags));
    }
    text.push_str(&format!(" len={} iface={}", event.length, event.iface));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_everything_known() {
        let event = SampledEvent {
            time: "2024-05-01T10:00:00.000Z".into(),
            monotonic_ns: 1,
            outcome: "drop".into(),
            reason: "rule".into(),
            source: "198.51.100.7".parse().unwrap(),
            source_port: 40000,
            destination: "192.0.2.1".parse().unwrap(),
            destination_port: 8080,
            protocol: "tcp".into(),
            published_port: Some("8080/tcp".into()),
            family: "ipv4".into(),
            container: Some("web".into()),
            rule: Some("drop-bad".into()),
            tcp_flags: "S".into(),
            length: 74,
            iface: "eth0".into(),
            stat_id: 9,
        };
        assert_eq!(
            line(&event),
            "2024-05-01T10:00:00.000Z drop  rule       198.51.100.7:40000 -> 8080/tcp (web) \
             rule=drop-bad flags=S len=74 iface=eth0"
        );
    }
}

//! Reading the data plane's ring buffer of [`DropEvent`]s: woken by epoll
//! through tokio's `AsyncFd`, each event named with the labels of its
//! statistic id and handed to the [`EventHub`].

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, SystemTime},
};

use aya::maps::{MapData, RingBuf};
use dockfw_common::{DropEvent, family, outcome, proto};
use tokio::{io::unix::AsyncFd, task::JoinHandle};
use tracing::{debug, warn};

use super::{EventHub, SampledEvent};
use crate::{
    bans::monotonic_ns,
    metrics::labels::{LabelTable, Reason, StatLabels},
};

/// Labels shared between the daemon's loop (writer) and the reader.
pub type SharedLabels = Arc<RwLock<LabelTable>>;

/// Starts reading `ring` on the current tokio runtime.
pub fn spawn(
    ring: RingBuf<MapData>,
    hub: EventHub,
    labels: SharedLabels,
) -> io::Result<JoinHandle<()>> {
    // SAFETY: the ring buffer owns its map descriptor, which stays open and
    // unchanged until the ring (moved into the `AsyncFd`) is dropped, and
    // `as_raw_fd` always returns it.
    let fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)? };
    Ok(tokio::spawn(run(fd, hub, labels)))
}

async fn run(mut fd: AsyncFd<RingBuf<MapData>>, hub: EventHub, labels: SharedLabels) {
    let mut ifaces = IfaceNames::default();
    loop {
        let mut guard = match fd.readable_mut().await {
            Ok(guard) => guard,
            Err(error) => {
                warn!(%error, "waiting on the event ring buffer failed; events stop");
                return;
            }
        };
        // Cleared before draining: a record committed after the last read
        // wakes the ring again and is not lost.
        guard.clear_ready();
        let clock = WallClock::now();
        let ring = guard.get_inner_mut();
        let mut batch = Vec::new();
        while let Some(item) = ring.next() {
            match parse(&item) {
                Some(raw) => batch.push(raw),
                None => debug!(len = item.len(), "event of unexpected size skipped"),
            }
        }
        drop(guard);
        if batch.is_empty() {
            continue;
        }
        let table = labels.read().unwrap_or_else(PoisonError::into_inner);
        for raw in batch {
            let iface = ifaces.name(raw.ifindex);
            let event = name_event(&raw, table.get(raw.stat_id).map(Arc::as_ref), &clock, iface);
            hub.publish(event);
        }
    }
}

/// The event in a ring buffer record, if it has the ABI's size.
pub fn parse(bytes: &[u8]) -> Option<DropEvent> {
    if bytes.len() < size_of::<DropEvent>() {
        return None;
    }
    // SAFETY: the slice holds at least one `DropEvent`, a `#[repr(C)]` type
    // of integers and byte arrays (any bit pattern is valid); the record may
    // be unaligned, hence `read_unaligned`.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<DropEvent>()) })
}

/// Converts `CLOCK_MONOTONIC` stamps to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    wall: SystemTime,
    monotonic_ns: u64,
}

impl WallClock {
    /// The clocks now.
    pub fn now() -> Self {
        Self {
            wall: SystemTime::now(),
            monotonic_ns: monotonic_ns(),
        }
    }

    /// Both clocks at a known instant (tests).
    pub const fn at(wall: SystemTime, monotonic_ns: u64) -> Self {
        Self { wall, monotonic_ns }
    }

    /// The wall-clock time of a monotonic stamp, RFC 3339 with ms.
    pub fn format(&self, stamp_ns: u64) -> String {
        let wall = if stamp_ns <= self.monotonic_ns {
            self.wall
                .checked_sub(Duration::from_nanos(self.monotonic_ns - stamp_ns))
                .unwrap_or(self.wall)
        } else {
            self.wall + Duration::from_nanos(stamp_ns - self.monotonic_ns)
        };
        humantime::format_rfc3339_millis(wall).to_string()
    }
}

/// Interface names by index, looked up once each.
#[derive(Debug, Default)]
struct IfaceNames(HashMap<u32, String>);

impl IfaceNames {
    fn name(&mut self, ifindex: u32) -> &str {
        self.0
            .entry(ifindex)
            .or_insert_with(|| iface_name(ifindex).unwrap_or_else(|| ifindex.to_string()))
    }
}

fn iface_name(ifindex: u32) -> Option<String> {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as if_indextoname needs.
    let name = unsafe { libc::if_indextoname(ifindex, buffer.as_mut_ptr()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buffer.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

fn address(family_code: u8, bytes: [u8; 16]) -> IpAddr {
    if family_code == family::V6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

/// TCP flags as letters in header order (`FSRPAU` + `EC`).
pub fn tcp_flag_letters(flags: u8) -> String {
    const LETTERS: [(u8, char); 8] = [
        (0x01, 'F'),
        (0x02, 'S'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x10, 'A'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'C'),
    ];
    LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, letter)| *letter)
        .collect()
}

/// Names a raw event. `labels` are those of its statistic id, when known
/// (they decide `mirror` for DOCKER-USER rules); without them the reason
/// comes from the data plane's code.
pub fn name_event(
    raw: &DropEvent,
    labels: Option<&StatLabels>,
    clock: &WallClock,
    iface: &str,
) -> SampledEvent {
    let reason = labels
        .map(|labels| labels.reason)
        .or_else(|| Reason::of_code(raw.reason))
        .map_or_else(
            || dockfw_common::reason::name(raw.reason).to_string(),
            |reason| reason.as_str().to_string(),
        );
    let is_tcp = raw.proto == proto::TCP;
    SampledEvent {
        time: clock.format(raw.timestamp_ns),
        monotonic_ns: raw.timestamp_ns,
        outcome: if u32::from(raw.outcome) == outcome::AUDIT {
            "audit".into()
        } else {
            "drop".into()
        },
        reason,
        source: address(raw.family, raw.src),
        source_port: u16::from_be(raw.src_port_be),
        destination: address(raw.family, raw.dst),
        destination_port: u16::from_be(raw.dst_port_be),
        protocol: if is_tcp { "tcp" } else { "udp" }.into(),
        published_port: labels.map(|labels| labels.published_port.clone()),
        family: if raw.family == family::V6 {
            "ipv6"
        } else {
            "ipv4"
        }
        .into(),
        container: labels.map(|labels| labels.container.clone()),
        rule: labels
            .filter(|labels| !labels.rule.is_empty())
            .map(|labels| labels.rule.clone()),
        tcp_flags: if is_tcp {
            tcp_flag_letters(raw.tcp_flags)
        } else {
            String::new()
        },
        length: raw.packet_len,
        iface: iface.to_string(),
        stat_id: raw.stat_id,
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use dockfw_common::reason;

    use super::*;

    fn raw() -> DropEvent {
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[198, 51, 100, 7]);
        let mut dst = [0u8; 16];
        dst[..4].copy_from_slice(&[192, 0, 2, 1]);
        DropEvent {
            timestamp_ns: 9_000_000_000,
            stat_id: 12,
            ifindex: 3,
            packet_len: 74,
            outcome: outcome::DROP as u8,
            reason: reason::RULE_DROP,
            family: family::V4,
            proto: proto::TCP,
            dst_port_be: 8080u16.to_be(),
            src_port_be: 40000u16.to_be(),
            tcp_flags: 0x02,
            pad: [0; 3],
            src,
            dst,
        }
    }

    fn labels(reason: Reason) -> StatLabels {
        StatLabels {
            stat_id: 12,
            reason,
            published_port: "8080/tcp".into(),
            family: "ipv4",
            container: "web".into(),
            rule: "drop-bad".into(),
            outcomes: 0,
            rendered: String::new(),
        }
    }

    #[test]
    fn records_parse_unaligned_and_short_ones_are_refused() {
        let event = raw();
        // SAFETY: viewing a plain-old-data struct as bytes.
        let bytes: &[u8] = unsafe {
            std::slice::from_raw_parts(
                std::ptr::from_ref(&event).cast::<u8>(),
                size_of::<DropEvent>(),
            )
        };
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(bytes);
        assert_eq!(parse(&shifted[1..]), Some(event));
        assert_eq!(parse(&bytes[..10]), None);
    }

    #[test]
    fn events_are_named_from_their_statistic() {
        let clock = WallClock::at(UNIX_EPOCH + Duration::from_secs(10), 10_000_000_000);
        let event = name_event(&raw(), Some(&labels(Reason::Mirror)), &clock, "eth0");
        assert_eq!(event.reason, "mirror", "the statistic's labels win");
        assert_eq!(event.time, "1970-01-01T00:00:09.000Z");
        assert_eq!(event.source.to_string(), "198.51.100.7");
        assert_eq!(event.source_port, 40000);
        assert_eq!(event.destination_port, 8080);
        assert_eq!(event.published_port.as_deref(), Some("8080/tcp"));
        assert_eq!(event.rule.as_deref(), Some("drop-bad"));
        assert_eq!(event.tcp_flags, "S");
        assert_eq!(event.outcome, "drop");

        let unknown = name_event(&raw(), None, &clock, "3");
        assert_eq!(unknown.reason, "rule", "else the data plane's code");
        assert_eq!(unknown.published_port, None);
    }

    #[test]
    fn flags_read_in_header_order() {
        assert_eq!(tcp_flag_letters(0x12), "SA");
        assert_eq!(tcp_flag_letters(0x11), "FA");
        assert_eq!(tcp_flag_letters(0), "");
    }
}

//! The frames a trace runs: built from `--from/--to` (Ethernet, an optional
//! 802.1Q tag, IPv4 or IPv6, TCP or UDP, with valid checksums so the packet
//! is one netfilter would accept too), and read back for display.

use std::net::IpAddr;

use crate::model::Proto;

/// TCP SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP ACK.
pub const TCP_ACK: u8 = 0x10;

/// Ethertypes.
const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
/// Ethernet header length.
const ETH_LEN: usize = 14;
/// IPv6 extension headers the display parser steps over (hop-by-hop,
/// routing, destination options).
const IPV6_EXT: [u8; 3] = [0, 43, 60];
/// IPv6 fragment header.
const IPV6_FRAGMENT: u8 = 44;
/// Extension headers the display parser walks at most.
const IPV6_EXT_MAX: usize = 8;

/// One packet to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    /// Source address (same family as `dst`).
    pub src: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// Protocol.
    pub proto: Proto,
    /// TCP flags byte (ignored for UDP).
    pub tcp_flags: u8,
    /// 802.1Q VLAN id.
    pub vlan: Option<u16>,
}

/// Source and destination of different families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--from {src} and --to {dst} must be of one address family (both IPv4 or both IPv6)")]
pub struct FamilyMismatch {
    /// Source.
    pub src: IpAddr,
    /// Destination.
    pub dst: IpAddr,
}

/// The Internet checksum over `parts` (one's complement sum of 16-bit words).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for byte in parts.iter().flat_map(|part| part.iter().copied()) {
        match odd.take() {
            Some(high) => sum += u32::from(u16::from_be_bytes([high, byte])),
            None => odd = Some(byte),
        }
    }
    if let Some(high) = odd {
        sum += u32::from(u16::from_be_bytes([high, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds the frame's bytes.
pub fn build(spec: &FrameSpec) -> Result<Vec<u8>, FamilyMismatch> {
    let mismatch = FamilyMismatch {
        src: spec.src,
        dst: spec.dst,
    };
    let mut l4 = Vec::with_capacity(20);
    l4.extend_from_slice(&spec.sport.to_be_bytes());
    l4.extend_from_slice(&spec.dport.to_be_bytes());
    match spec.proto {
        Proto::Tcp => {
            l4.extend_from_slice(&1u32.to_be_bytes()); // sequence
            let ack = if spec.tcp_flags & TCP_ACK != 0 {
                1u32
            } else {
                0
            };
            l4.extend_from_slice(&ack.to_be_bytes());
            l4.push(5 << 4); // data offset: 20 bytes
            l4.push(spec.tcp_flags);
            l4.extend_from_slice(&64240u16.to_be_bytes()); // window
            l4.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        }
        Proto::Udp => {
            l4.extend_from_slice(&8u16.to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
        }
    }
    let l4_len = l4.len() as u16;
    let proto = spec.proto.number();
    let checksum_at = match spec.proto {
        Proto::Tcp => 16,
        Proto::Udp => 6,
    };

    let mut frame = Vec::with_capacity(ETH_LEN + 4 + 40 + l4.len());
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // destination MAC
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // source MAC
    if let Some(vlan) = spec.vlan {
        frame.extend_from_slice(&ETH_VLAN.to_be_bytes());
        frame.extend_from_slice(&(vlan & 0x0fff).to_be_bytes());
    }
    match (spec.src, spec.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let (src, dst) = (src.octets(), dst.octets());
            let sum = checksum(&[
                &src,
                &dst,
                &[0, proto],
                &l4_len.to_be_bytes(),
                l4.as_slice(),
            ]);
            l4[checksum_at..checksum_at + 2].copy_from_slice(&sum.to_be_bytes());
            frame.extend_from_slice(&ETH_IPV4.to_be_bytes());
            let start = frame.len();
            frame.extend_from_slice(&[0x45, 0]);
            frame.extend_from_slice(&(20 + l4_len).to_be_bytes());
            frame.extend_from_slice(&[0x12, 0x34, 0x40, 0]); // id, DF
            frame.extend_from_slice(&[64, proto, 0, 0]); // TTL, protocol
            frame.extend_from_slice(&src);
            frame.extend_from_slice(&dst);
            let sum = checksum(&[&frame[start..]]);
            frame[start + 10..start + 12].copy_from_slice(&sum.to_be_bytes());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let (src, dst) = (src.octets(), dst.octets());
            let sum = checksum(&[
                &src,
                &dst,
                &u32::from(l4_len).to_be_bytes(),
                &[0, 0, 0, proto],
                l4.as_slice(),
            ]);
            l4[checksum_at..checksum_at + 2].copy_from_slice(&sum.to_be_bytes());
            frame.extend_from_slice(&ETH_IPV6.to_be_bytes());
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&l4_len.to_be_bytes());
            frame.extend_from_slice(&[proto, 64]);
            frame.extend_from_slice(&src);
            frame.extend_from_slice(&dst);
        }
        _ => return Err(mismatch),
    }
    frame.extend_from_slice(&l4);
    Ok(frame)
}

/// What a frame carries, as far as a trace shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameSummary {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub proto: u8,
    /// Ports, when the frame has a TCP or UDP header.
    pub ports: Option<(u16, u16)>,
    /// TCP flags byte.
    pub tcp_flags: Option<u8>,
    /// VLAN ids, outermost first.
    pub vlans: Vec<u16>,
    /// A non-first fragment (no ports).
    pub later_fragment: bool,
    /// Frame length in bytes.
    pub len: usize,
}

impl FrameSummary {
    /// `198.51.100.7:49152 -> 192.0.2.1:8080/tcp SYN`.
    pub fn describe(&self) -> String {
        let endpoint = |addr: &IpAddr, port: Option<u16>| match (addr, port) {
            (IpAddr::V4(addr), Some(port)) => format!("{addr}:{port}"),
            (IpAddr::V6(addr), Some(port)) => format!("[{addr}]:{port}"),
            (addr, None) => addr.to_string(),
        };
        let proto = match self.proto {
            6 => "tcp".to_owned(),
            17 => "udp".to_owned(),
            1 => "icmp".to_owned(),
            58 => "icmpv6".to_owned(),
            other => format!("proto {other}"),
        };
        let mut text = format!(
            "{} -> {}/{proto}",
            endpoint(&self.src, self.ports.map(|(sport, _)| sport)),
            endpoint(&self.dst, self.ports.map(|(_, dport)| dport)),
        );
        if let Some(flags) = self.tcp_flags {
            text.push(' ');
            text.push_str(&tcp_flag_names(flags));
        }
        if self.later_fragment {
            text.push_str(" (non-first fragment)");
        }
        for vlan in &self.vlans {
            text.push_str(&format!(" vlan {vlan}"));
        }
        text
    }
}

/// `SYN`, `SYN,ACK`, `ACK,PSH`; `none` for no flags.
pub fn tcp_flag_names(flags: u8) -> String {
    const NAMES: [(u8, &str); 8] = [
        (0x02, "SYN"),
        (0x10, "ACK"),
        (0x01, "FIN"),
        (0x04, "RST"),
        (0x08, "PSH"),
        (0x20, "URG"),
        (0x40, "ECE"),
        (0x80, "CWR"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(",")
    }
}

/// Reads the addresses, protocol and ports of an Ethernet frame; `None` for
/// frames that are not IP or are cut short before the addresses.
pub fn summarize(frame: &[u8]) -> Option<FrameSummary> {
    let be16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
    };
    let mut offset = 12;
    let mut ethertype = be16(offset)?;
    let mut vlans = Vec::new();
    while matches!(ethertype, ETH_VLAN | ETH_QINQ) && vlans.len() < 2 {
        vlans.push(be16(offset + 2)? & 0x0fff);
        offset += 4;
        ethertype = be16(offset)?;
    }
    offset += 2;
    let (src, dst, mut proto, mut l4, later_fragment) = match ethertype {
        ETH_IPV4 => {
            let header = frame.get(offset..offset + 20)?;
            let ihl = usize::from(header[0] & 0x0f) * 4;
            let fragment_offset = u16::from_be_bytes([header[6], header[7]]) & 0x1fff;
            let src: [u8; 4] = header[12..16].try_into().ok()?;
            let dst: [u8; 4] = header[16..20].try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                header[9],
                offset + ihl.max(20),
                fragment_offset != 0,
            )
        }
        ETH_IPV6 => {
            let header = frame.get(offset..offset + 40)?;
            let src: [u8; 16] = header[8..24].try_into().ok()?;
            let dst: [u8; 16] = header[24..40].try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                header[6],
                offset + 40,
                false,
            )
        }
        _ => return None,
    };
    let mut later_fragment = later_fragment;
    if src.is_ipv6() {
        for _ in 0..IPV6_EXT_MAX {
            if IPV6_EXT.contains(&proto) {
                let next = *frame.get(l4)?;
                let len = (usize::from(*frame.get(l4 + 1)?) + 1) * 8;
                proto = next;
                l4 += len;
            } else if proto == IPV6_FRAGMENT {
                let next = *frame.get(l4)?;
                later_fragment = be16(l4 + 2)? & 0xfff8 != 0;
                proto = next;
                l4 += 8;
            } else {
                break;
            }
        }
    }
    let has_ports = matches!(proto, 6 | 17) && !later_fragment;
    let ports = if has_ports {
        be16(l4).zip(be16(l4 + 2))
    } else {
        None
    };
    let tcp_flags = if proto == 6 && ports.is_some() {
        frame.get(l4 + 13).copied()
    } else {
        None
    };
    Some(FrameSummary {
        src,
        dst,
        proto,
        ports,
        tcp_flags,
        vlans,
        later_fragment,
        len: frame.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(src: &str, dst: &str, proto: Proto) -> FrameSpec {
        FrameSpec {
            src: src.parse().unwrap(),
            sport: 49152,
            dst: dst.parse().unwrap(),
            dport: 8080,
            proto,
            tcp_flags: TCP_SYN,
            vlan: None,
        }
    }

    #[test]
    fn ipv4_tcp_frames_have_valid_checksums() {
        let frame = build(&spec("198.51.100.7", "192.0.2.1", Proto::Tcp)).unwrap();
        assert_eq!(frame.len(), 14 + 20 + 20);
        assert_eq!(checksum(&[&frame[14..34]]), 0, "IPv4 header checksum");
        let pseudo = [&frame[26..34], &[0, 6, 0, 20], &frame[34..]];
        assert_eq!(checksum(&pseudo), 0, "TCP checksum");
        let summary = summarize(&frame).unwrap();
        assert_eq!(
            summary.describe(),
            "198.51.100.7:49152 -> 192.0.2.1:8080/tcp SYN"
        );
    }

    #[test]
    fn ipv6_udp_frames_with_a_vlan_read_back() {
        let mut spec = spec("2001:db8::7", "2001:db8::1", Proto::Udp);
        spec.vlan = Some(42);
        let frame = build(&spec).unwrap();
        assert_eq!(frame.len(), 14 + 4 + 40 + 8);
        let pseudo = [&frame[26..58], &[0, 0, 0, 8, 0, 0, 0, 17], &frame[58..]];
        assert_eq!(checksum(&pseudo), 0, "UDP checksum");
        assert_eq!(
            summarize(&frame).unwrap().describe(),
            "[2001:db8::7]:49152 -> [2001:db8::1]:8080/udp vlan 42"
        );
    }

    #[test]
    fn mixed_families_are_refused() {
        let error = build(&spec("198.51.100.7", "2001:db8::1", Proto::Tcp)).unwrap_err();
        assert!(error.to_string().contains("one address family"));
    }

    #[test]
    fn frames_that_are_not_ip_have_no_summary() {
        let mut arp = vec![0xff; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        assert_eq!(summarize(&arp), None);
        assert_eq!(summarize(&arp[..10]), None);
    }
}

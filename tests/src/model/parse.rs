//! The model's parser: the same header walk the specification describes, with
//! every field decoded by `etherparse` rather than by the data plane's code.
//!
//! What the specification says a frame must carry, and so where the model
//! stops:
//! - Ethernet, then at most [`MAX_VLAN_TAGS`] 802.1Q / 802.1ad tags; a third
//!   tag is not IP as far as dockfw is concerned ([`reason::NOT_IP`]);
//! - IPv4 with a valid version and IHL and all its options present (total
//!   length is netfilter's business, not the classifier's);
//! - IPv6 with at most [`MAX_IPV6_EXT_HEADERS`] extension headers
//!   (hop-by-hop, routing, destination options, fragment), each present in
//!   full; a longer chain is [`reason::IPV6_EXT_LIMIT`];
//! - TCP with its whole header (data offset included), UDP with its 8 bytes;
//! - any header that ends early is [`reason::MALFORMED`]; another IP
//!   protocol is [`reason::NOT_PUBLISHED`];
//! - a later fragment (non-zero offset) carries no ports: it is classified
//!   through the datagram's first fragment, when its protocol is TCP or UDP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dockfw_common::{MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS, reason};
use etherparse::{
    Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice,
    Ipv6RawExtHeaderSlice, SingleVlanHeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const TPID_8021Q: u16 = 0x8100;
const TPID_8021AD: u16 = 0x88a8;

/// Fragment position of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    None,
    /// Offset 0 of a fragmented datagram (IPv6: any fragment header with
    /// offset 0); carries the ports.
    First {
        /// Identification (IPv4: 16 bits).
        id: u32,
    },
    /// A later fragment: no ports.
    Later {
        /// Identification.
        id: u32,
    },
}

/// What the classifier needs from a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelPacket {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol (for IPv6: the upper-layer protocol, or the fragment
    /// header's next header for a later fragment).
    pub proto: u8,
    /// Source port (0 for a later fragment).
    pub sport: u16,
    /// Destination port (0 for a later fragment).
    pub dport: u16,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    /// Fragment position.
    pub fragment: Fragment,
}

/// The parse result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A TCP/UDP packet (or a later fragment) to classify.
    Packet(ModelPacket),
    /// Passed unclassified, counted under this global [`reason`].
    Skip(u8),
}

/// Parses `frame` the way the specification says.
pub fn parse(frame: &[u8]) -> Parsed {
    let Ok(eth) = Ethernet2HeaderSlice::from_slice(frame) else {
        return Parsed::Skip(reason::MALFORMED);
    };
    let mut ethertype = eth.ether_type().0;
    let mut rest = &frame[eth.slice().len()..];
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != TPID_8021Q && ethertype != TPID_8021AD {
            break;
        }
        let Ok(tag) = SingleVlanHeaderSlice::from_slice(rest) else {
            return Parsed::Skip(reason::MALFORMED);
        };
        ethertype = tag.ether_type().0;
        rest = &rest[tag.slice().len()..];
    }
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(rest),
        ETHERTYPE_IPV6 => ipv6(rest),
        _ => Parsed::Skip(reason::NOT_IP),
    }
}

fn ipv4(bytes: &[u8]) -> Parsed {
    let Ok(header) = Ipv4HeaderSlice::from_slice(bytes) else {
        return Parsed::Skip(reason::MALFORMED);
    };
    let proto = header.protocol().0;
    let id = u32::from(header.identification());
    let offset = header.fragments_offset().value();
    let fragment = if offset != 0 {
        Fragment::Later { id }
    } else if header.more_fragments() {
        Fragment::First { id }
    } else {
        Fragment::None
    };
    let packet = ModelPacket {
        src: IpAddr::V4(Ipv4Addr::from(header.source())),
        dst: IpAddr::V4(Ipv4Addr::from(header.destination())),
        proto,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        fragment,
    };
    if let Fragment::Later { .. } = fragment {
        return later(packet);
    }
    transport(packet, &bytes[header.slice().len()..])
}

fn ipv6(bytes: &[u8]) -> Parsed {
    let Ok(header) = Ipv6HeaderSlice::from_slice(bytes) else {
        return Parsed::Skip(reason::MALFORMED);
    };
    let mut packet = ModelPacket {
        src: IpAddr::V6(Ipv6Addr::from(header.source())),
        dst: IpAddr::V6(Ipv6Addr::from(header.destination())),
        proto: 0,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        fragment: Fragment::None,
    };
    let mut next = header.next_header();
    let mut rest = &bytes[header.slice().len()..];
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            IpNumber::IPV6_HEADER_HOP_BY_HOP
            | IpNumber::IPV6_ROUTE_HEADER
            | IpNumber::IPV6_DESTINATION_OPTIONS => {
                let Ok(ext) = Ipv6RawExtHeaderSlice::from_slice(rest) else {
                    return Parsed::Skip(reason::MALFORMED);
                };
                next = ext.next_header();
                rest = &rest[ext.slice().len()..];
            }
            IpNumber::IPV6_FRAGMENTATION_HEADER => {
                let Ok(ext) = Ipv6FragmentHeaderSlice::from_slice(rest) else {
                    return Parsed::Skip(reason::MALFORMED);
                };
                next = ext.next_header();
                let id = ext.identification();
                if ext.fragment_offset().value() != 0 {
                    packet.proto = next.0;
                    packet.fragment = Fragment::Later { id };
                    return later(packet);
                }
                packet.fragment = Fragment::First { id };
                rest = &rest[ext.slice().len()..];
            }
            _ => break,
        }
    }
    if matches!(
        next,
        IpNumber::IPV6_HEADER_HOP_BY_HOP
            | IpNumber::IPV6_ROUTE_HEADER
            | IpNumber::IPV6_DESTINATION_OPTIONS
            | IpNumber::IPV6_FRAGMENTATION_HEADER
    ) {
        return Parsed::Skip(reason::IPV6_EXT_LIMIT);
    }
    packet.proto = next.0;
    transport(packet, rest)
}

/// A later fragment is only trackable for TCP and UDP datagrams.
fn later(packet: ModelPacket) -> Parsed {
    if packet.proto == IpNumber::TCP.0 || packet.proto == IpNumber::UDP.0 {
        Parsed::Packet(packet)
    } else {
        Parsed::Skip(reason::NOT_PUBLISHED)
    }
}

fn transport(mut packet: ModelPacket, bytes: &[u8]) -> Parsed {
    match IpNumber(packet.proto) {
        IpNumber::TCP => {
            let Ok(tcp) = TcpHeaderSlice::from_slice(bytes) else {
                return Parsed::Skip(reason::MALFORMED);
            };
            packet.sport = tcp.source_port();
            packet.dport = tcp.destination_port();
            packet.tcp_flags = [
                tcp.cwr(),
                tcp.ece(),
                tcp.urg(),
                tcp.ack(),
                tcp.psh(),
                tcp.rst(),
                tcp.syn(),
                tcp.fin(),
            ]
            .iter()
            .fold(0u8, |flags, bit| flags << 1 | u8::from(*bit));
        }
        IpNumber::UDP => {
            let Ok(udp) = UdpHeaderSlice::from_slice(bytes) else {
                return Parsed::Skip(reason::MALFORMED);
            };
            packet.sport = udp.source_port();
            packet.dport = udp.destination_port();
        }
        _ => return Parsed::Skip(reason::NOT_PUBLISHED),
    }
    Parsed::Packet(packet)
}

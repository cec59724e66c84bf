//! Parse: Ethernet -> up to two VLAN tags -> IPv4 (IHL honoured) or IPv6
//! (bounded extension-header walk) -> TCP or UDP.
//!
//! Follows the cursor contract of xdp-tools' `parsing_helpers.h`: every step
//! checks that the bytes it reads lie before `data_end`, advances the cursor
//! and yields the next protocol or a reason to stop. Nothing is read out of
//! bounds; a frame that ends early is [`reason::MALFORMED`].
//!
//! Header fields are read as byte arrays and compared as integers, never
//! reinterpreted as enums (a packet may carry any value).

use core::ptr::read_unaligned;

use dockfw_common::{MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS, family, proto, reason};

const ETH_HLEN: usize = 14;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const VLAN_HLEN: usize = 4;

const IPV4_MIN_HLEN: usize = 20;
/// IPv4 flags+fragment-offset word: the 13-bit offset.
const IPV4_FRAG_OFFSET_MASK: u16 = 0x1fff;
/// IPv4 "more fragments" flag.
const IPV4_MORE_FRAGMENTS: u16 = 0x2000;

const IPV6_HLEN: usize = 40;
const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_DSTOPTS: u8 = 60;
const IPV6_FRAG_HLEN: usize = 8;

const TCP_MIN_HLEN: usize = 20;
const UDP_HLEN: usize = 8;

/// TCP flag bits (byte 13 of the header).
pub const TCP_SYN: u8 = 0x02;
/// TCP ACK flag.
pub const TCP_ACK: u8 = 0x10;

/// The packet is not a fragment.
pub const FRAG_NONE: u8 = 0;
/// The first fragment of a fragmented datagram (carries the L4 header).
pub const FRAG_FIRST: u8 = 1;
/// A later fragment (no L4 header; ports unknown).
pub const FRAG_LATER: u8 = 2;

/// What classification needs from a packet. Addresses and ports stay in
/// network byte order: each address word holds the packet's 4 bytes as they
/// are in memory; IPv4 addresses fill the first word.
pub struct Packet {
    /// Source address.
    pub src: [u32; 4],
    /// Destination address.
    pub dst: [u32; 4],
    /// IP identification (fragments only), network order.
    pub frag_id: u32,
    /// Source port as its two bytes loaded natively (network order kept; 0
    /// for later fragments).
    pub sport_raw: u16,
    /// Destination port, likewise.
    pub dport_raw: u16,
    /// [`family`] code.
    pub family: u8,
    /// [`proto`] number.
    pub proto: u8,
    /// TCP flags byte, 0 for UDP.
    pub tcp_flags: u8,
    /// [`FRAG_NONE`], [`FRAG_FIRST`] or [`FRAG_LATER`].
    pub fragment: u8,
}

impl Packet {
    /// A connection-opening TCP segment: SYN without ACK.
    #[inline(always)]
    pub fn is_syn(&self) -> bool {
        self.proto == proto::TCP && self.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
    }
}

/// The parser's result: a TCP/UDP packet (or later fragment) to classify, or
/// the reason it goes to netfilter unclassified.
pub enum Parsed {
    /// Classify this packet.
    Packet(Packet),
    /// Pass without classification; the [`reason`] is counted globally.
    Skip(u8),
}

/// Reads `N` bytes at `pos` if they lie inside the packet.
#[inline(always)]
fn load<const N: usize>(pos: usize, end: usize) -> Option<[u8; N]> {
    if pos + N > end {
        return None;
    }
    // SAFETY: `pos..pos + N` is inside the packet (checked against data_end
    // just above); a byte array has alignment 1.
    Some(unsafe { read_unaligned(pos as *const [u8; N]) })
}

/// Loads the 4 packet bytes at `pos + OFF` as one word, their order kept.
///
/// Written as one BPF load: Rust's unaligned read would become four byte
/// loads and shifts (packet data is only 2-byte aligned behind Ethernet),
/// while the kernel accepts unaligned packet loads on the architectures with
/// efficient unaligned access.
///
/// # Safety
///
/// `pos + OFF + 4` must not exceed `data_end`, checked on a pointer the
/// verifier ties to `pos`.
#[inline(always)]
unsafe fn load_word<const OFF: i16>(pos: usize) -> u32 {
    let value: u64;
    // SAFETY: the caller checked the bounds; a plain 32-bit load.
    unsafe {
        core::arch::asm!(
            "{value} = *(u32 *)({pos} + {off})",
            value = lateout(reg) value,
            pos = in(reg) pos,
            off = const OFF,
            options(readonly, nostack, preserves_flags),
        );
    }
    value as u32
}

/// Loads the 2 packet bytes at `pos + OFF`, their order kept.
///
/// # Safety
///
/// As for [`load_word`], for 2 bytes.
#[inline(always)]
unsafe fn load_half<const OFF: i16>(pos: usize) -> u16 {
    let value: u64;
    // SAFETY: the caller checked the bounds; a plain 16-bit load.
    unsafe {
        core::arch::asm!(
            "{value} = *(u16 *)({pos} + {off})",
            value = lateout(reg) value,
            pos = in(reg) pos,
            off = const OFF,
            options(readonly, nostack, preserves_flags),
        );
    }
    value as u16
}

#[inline(always)]
fn be16(hi: u8, lo: u8) -> u16 {
    u16::from_be_bytes([hi, lo])
}

/// Parses the frame in `data..end`.
#[inline(always)]
pub fn parse(data: usize, end: usize) -> Parsed {
    let Some(eth) = load::<ETH_HLEN>(data, end) else {
        return Parsed::Skip(reason::MALFORMED);
    };
    let mut ethertype = be16(eth[12], eth[13]);
    let mut pos = data + ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(tag) = load::<VLAN_HLEN>(pos, end) else {
            return Parsed::Skip(reason::MALFORMED);
        };
        ethertype = be16(tag[2], tag[3]);
        pos += VLAN_HLEN;
    }
    match ethertype {
        ETH_P_IPV4 => parse_ipv4(pos, end),
        ETH_P_IPV6 => parse_ipv6(pos, end),
        _ => Parsed::Skip(reason::NOT_IP),
    }
}

#[inline(always)]
fn parse_ipv4(pos: usize, end: usize) -> Parsed {
    let Some(h) = load::<IPV4_MIN_HLEN>(pos, end) else {
        return Parsed::Skip(reason::MALFORMED);
    };
    if h[0] >> 4 != 4 {
        return Parsed::Skip(reason::MALFORMED);
    }
    // IHL counts 32-bit words; options follow the fixed header.
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < IPV4_MIN_HLEN || pos + ihl > end {
        return Parsed::Skip(reason::MALFORMED);
    }
    let mut packet = Packet {
        // SAFETY: `load` checked that 20 bytes follow `pos`.
        src: [unsafe { load_word::<12>(pos) }, 0, 0, 0],
        // SAFETY: as above.
        dst: [unsafe { load_word::<16>(pos) }, 0, 0, 0],
        frag_id: 0,
        sport_raw: 0,
        dport_raw: 0,
        family: family::V4,
        proto: h[9],
        tcp_flags: 0,
        fragment: FRAG_NONE,
    };
    let frag = be16(h[6], h[7]);
    if frag & (IPV4_FRAG_OFFSET_MASK | IPV4_MORE_FRAGMENTS) != 0 {
        packet.frag_id = u32::from_be_bytes([0, 0, h[4], h[5]]);
        if frag & IPV4_FRAG_OFFSET_MASK != 0 {
            packet.fragment = FRAG_LATER;
            return later_fragment(packet);
        }
        packet.fragment = FRAG_FIRST;
    }
    parse_l4(packet, pos + ihl, end)
}

#[inline(always)]
fn parse_ipv6(pos: usize, end: usize) -> Parsed {
    let Some(h) = load::<IPV6_HLEN>(pos, end) else {
        return Parsed::Skip(reason::MALFORMED);
    };
    if h[0] >> 4 != 6 {
        return Parsed::Skip(reason::MALFORMED);
    }
    // SAFETY (all eight loads): `load` checked that 40 bytes follow `pos`.
    let mut packet = Packet {
        src: unsafe {
            [
                load_word::<8>(pos),
                load_word::<12>(pos),
                load_word::<16>(pos),
                load_word::<20>(pos),
            ]
        },
        dst: unsafe {
            [
                load_word::<24>(pos),
                load_word::<28>(pos),
                load_word::<32>(pos),
                load_word::<36>(pos),
            ]
        },
        frag_id: 0,
        sport_raw: 0,
        dport_raw: 0,
        family: family::V6,
        proto: 0,
        tcp_flags: 0,
        fragment: FRAG_NONE,
    };
    let mut next = h[6];
    let mut pos = pos + IPV6_HLEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                // Generic extension header: next header, length in 8-octet
                // units not counting the first 8.
                let Some(ext) = load::<2>(pos, end) else {
                    return Parsed::Skip(reason::MALFORMED);
                };
                next = ext[0];
                pos += (usize::from(ext[1]) + 1) * 8;
                // The whole header must be there, even when what follows it
                // is never read (another protocol, or the end of the walk).
                if pos > end {
                    return Parsed::Skip(reason::MALFORMED);
                }
            }
            IPPROTO_FRAGMENT => {
                let Some(ext) = load::<IPV6_FRAG_HLEN>(pos, end) else {
                    return Parsed::Skip(reason::MALFORMED);
                };
                next = ext[0];
                packet.frag_id = u32::from_be_bytes([ext[4], ext[5], ext[6], ext[7]]);
                // Offset in the upper 13 bits, M flag in bit 0.
                let offset_flags = be16(ext[2], ext[3]);
                if offset_flags >> 3 != 0 {
                    packet.proto = next;
                    packet.fragment = FRAG_LATER;
                    return later_fragment(packet);
                }
                packet.fragment = FRAG_FIRST;
                pos += IPV6_FRAG_HLEN;
            }
            _ => break,
        }
    }
    if matches!(
        next,
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT
    ) {
        return Parsed::Skip(reason::IPV6_EXT_LIMIT);
    }
    packet.proto = next;
    parse_l4(packet, pos, end)
}

/// A later fragment has no ports; only TCP and UDP datagrams can be tracked.
#[inline(always)]
fn later_fragment(packet: Packet) -> Parsed {
    if packet.proto == proto::TCP || packet.proto == proto::UDP {
        Parsed::Packet(packet)
    } else {
        Parsed::Skip(reason::NOT_PUBLISHED)
    }
}

#[inline(always)]
fn parse_l4(mut packet: Packet, pos: usize, end: usize) -> Parsed {
    match packet.proto {
        proto::TCP => {
            let Some(t) = load::<TCP_MIN_HLEN>(pos, end) else {
                return Parsed::Skip(reason::MALFORMED);
            };
            // Data offset below 5 words is not a valid TCP header.
            if t[12] >> 4 < 5 {
                return Parsed::Skip(reason::MALFORMED);
            }
            // Options cut off by the end of the frame: a truncated header.
            if pos + usize::from(t[12] >> 4) * 4 > end {
                return Parsed::Skip(reason::MALFORMED);
            }
            // SAFETY: `load` checked that 20 bytes follow `pos`.
            packet.sport_raw = unsafe { load_half::<0>(pos) };
            // SAFETY: as above.
            packet.dport_raw = unsafe { load_half::<2>(pos) };
            packet.tcp_flags = t[13];
        }
        proto::UDP => {
            if load::<UDP_HLEN>(pos, end).is_none() {
                return Parsed::Skip(reason::MALFORMED);
            }
            // SAFETY: `load` checked that 8 bytes follow `pos`.
            packet.sport_raw = unsafe { load_half::<0>(pos) };
            // SAFETY: as above.
            packet.dport_raw = unsafe { load_half::<2>(pos) };
        }
        _ => return Parsed::Skip(reason::NOT_PUBLISHED),
    }
    Parsed::Packet(packet)
}

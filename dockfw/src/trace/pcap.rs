//! Reading captures for `dockfw trace --pcap`: classic pcap (either byte
//! order, micro- or nanosecond timestamps) and pcapng (section, interface,
//! enhanced, simple and obsolete packet blocks). Link types other than
//! Ethernet (Linux cooked captures from `tcpdump -i any`, raw IP) are given
//! a synthetic Ethernet header, since the data plane parses from layer 2.

use std::path::{Path, PathBuf};

/// Classic pcap magic, microsecond timestamps.
const PCAP_MICRO: u32 = 0xa1b2_c3d4;
/// Classic pcap magic, nanosecond timestamps.
const PCAP_NANO: u32 = 0xa1b2_3c4d;
/// pcapng section header block type (also the file's first four bytes).
const PCAPNG_SECTION: u32 = 0x0a0d_0d0a;
/// pcapng byte-order magic.
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;
/// pcapng block types.
const PCAPNG_INTERFACE: u32 = 1;
const PCAPNG_OBSOLETE_PACKET: u32 = 2;
const PCAPNG_SIMPLE_PACKET: u32 = 3;
const PCAPNG_ENHANCED_PACKET: u32 = 6;
/// pcapng interface option: timestamp resolution.
const PCAPNG_IF_TSRESOL: u16 = 9;

/// Link types (`LINKTYPE_*`).
const LINK_ETHERNET: u32 = 1;
const LINK_RAW: u32 = 101;
const LINK_LINUX_SLL: u32 = 113;
const LINK_IPV4: u32 = 228;
const LINK_IPV6: u32 = 229;
const LINK_LINUX_SLL2: u32 = 276;

/// One captured packet, as an Ethernet frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedPacket {
    /// 1-based position in the capture.
    pub number: usize,
    /// Capture time in ns since the epoch.
    pub timestamp_ns: u64,
    /// The frame (with a synthetic Ethernet header for other link types).
    pub frame: Vec<u8>,
    /// The packet was longer on the wire than captured (snap length).
    pub truncated: bool,
}

/// Why a capture cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not a pcap or pcapng file.
    #[error(
        "not a pcap or pcapng capture (first bytes {0:02x?}); write one with `tcpdump -w FILE`"
    )]
    NotACapture(Vec<u8>),
    /// The file ends inside a header or block.
    #[error("the capture is cut short at byte {0}")]
    Truncated(usize),
    /// A link type the data plane cannot be given.
    #[error(
        "link type {0} is not supported (Ethernet, Linux cooked (tcpdump -i any) and raw IP are); \
         capture on the interface dockfw is attached to"
    )]
    LinkType(u32),
    /// A pcapng block names an interface that was not described.
    #[error("pcapng block at byte {offset} names interface {interface}, which is not described")]
    UnknownInterface {
        /// Byte offset of the block.
        offset: usize,
        /// Interface id.
        interface: u32,
    },
}

/// Reads a capture file.
pub fn read_file(path: &Path) -> Result<Vec<CapturedPacket>, PcapError> {
    let bytes = std::fs::read(path).map_err(|source| PcapError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes)
}

/// Parses a capture held in memory.
pub fn parse(bytes: &[u8]) -> Result<Vec<CapturedPacket>, PcapError> {
    let magic = bytes
        .get(..4)
        .ok_or_else(|| PcapError::NotACapture(bytes.to_vec()))?;
    let little = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]);
    let big = u32::from_be_bytes([magic[0], magic[1], magic[2], magic[3]]);
    match (little, big) {
        (PCAPNG_SECTION, _) => parse_pcapng(bytes),
        (PCAP_MICRO | PCAP_NANO, _) => parse_pcap(bytes, Order::Little),
        (_, PCAP_MICRO | PCAP_NANO) => parse_pcap(bytes, Order::Big),
        _ => Err(PcapError::NotACapture(magic.to_vec())),
    }
}

/// Byte order of a file or section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Little,
    Big,
}

/// A bounds-checked reader over the file.
struct Reader<'a> {
    bytes: &'a [u8],
    order: Order,
}

impl Reader<'_> {
    fn u16(&self, at: usize) -> Result<u16, PcapError> {
        let raw: [u8; 2] = self
            .bytes
            .get(at..at + 2)
            .and_then(|slice| slice.try_into().ok())
            .ok_or(PcapError::Truncated(at))?;
        Ok(match self.order {
            Order::Little => u16::from_le_bytes(raw),
            Order::Big => u16::from_be_bytes(raw),
        })
    }

    fn u32(&self, at: usize) -> Result<u32, PcapError> {
        let raw: [u8; 4] = self
            .bytes
            .get(at..at + 4)
            .and_then(|slice| slice.try_into().ok())
            .ok_or(PcapError::Truncated(at))?;
        Ok(match self.order {
            Order::Little => u32::from_le_bytes(raw),
            Order::Big => u32::from_be_bytes(raw),
        })
    }

    fn slice(&self, at: usize, len: usize) -> Result<&[u8], PcapError> {
        self.bytes
            .get(at..at.saturating_add(len))
            .ok_or(PcapError::Truncated(at))
    }
}

fn parse_pcap(bytes: &[u8], order: Order) -> Result<Vec<CapturedPacket>, PcapError> {
    let reader = Reader { bytes, order };
    let nanos = reader.u32(0)? == PCAP_NANO;
    let link = reader.u32(20)? & 0x0fff_ffff; // upper bits: FCS length flags
    let mut packets = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let seconds = u64::from(reader.u32(at)?);
        let fraction = u64::from(reader.u32(at + 4)?);
        let captured = reader.u32(at + 8)? as usize;
        let original = reader.u32(at + 12)? as usize;
        let data = reader.slice(at + 16, captured)?;
        let fraction_ns = if nanos { fraction } else { fraction * 1_000 };
        packets.push(CapturedPacket {
            number: packets.len() + 1,
            timestamp_ns: seconds * 1_000_000_000 + fraction_ns,
            frame: to_ethernet(link, data)?,
            truncated: original > captured,
        });
        at += 16 + captured;
    }
    Ok(packets)
}

/// A pcapng interface: link type and timestamp units per second.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: u32,
    units_per_second: u64,
    snap_len: u32,
}

fn parse_pcapng(bytes: &[u8]) -> Result<Vec<CapturedPacket>, PcapError> {
    let mut packets = Vec::new();
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut reader = Reader {
        bytes,
        order: Order::Little,
    };
    let mut at = 0;
    while at < bytes.len() {
        if reader.slice(at, 4)? == PCAPNG_SECTION.to_le_bytes() {
            // The section's byte order decides how every length is read,
            // this block's own included.
            let magic = reader.slice(at + 8, 4)?;
            reader.order = if magic == PCAPNG_BYTE_ORDER.to_le_bytes() {
                Order::Little
            } else if magic == PCAPNG_BYTE_ORDER.to_be_bytes() {
                Order::Big
            } else {
                return Err(PcapError::NotACapture(magic.to_vec()));
            };
            interfaces.clear();
        }
        let kind = reader.u32(at)?;
        let length = reader.u32(at + 4)? as usize;
        if length < 12 || !length.is_multiple_of(4) {
            return Err(PcapError::Truncated(at));
        }
        let body = reader.slice(at + 8, length - 12)?;
        match kind {
            PCAPNG_INTERFACE => interfaces.push(read_interface(&reader, at, length)?),
            PCAPNG_ENHANCED_PACKET | PCAPNG_OBSOLETE_PACKET => {
                let (interface, body_at) = if kind == PCAPNG_ENHANCED_PACKET {
                    (reader.u32(at + 8)?, at + 12)
                } else {
                    (u32::from(reader.u16(at + 8)?), at + 12)
                };
                let described =
                    *interfaces
                        .get(interface as usize)
                        .ok_or(PcapError::UnknownInterface {
                            offset: at,
                            interface,
                        })?;
                let high = u64::from(reader.u32(body_at)?);
                let low = u64::from(reader.u32(body_at + 4)?);
                let captured = reader.u32(body_at + 8)? as usize;
                let original = reader.u32(body_at + 12)? as usize;
                let data = reader.slice(body_at + 16, captured)?;
                packets.push(CapturedPacket {
                    number: packets.len() + 1,
                    timestamp_ns: to_ns((high << 32) | low, described.units_per_second),
                    frame: to_ethernet(described.link, data)?,
                    truncated: original > captured,
                });
            }
            PCAPNG_SIMPLE_PACKET => {
                let described = *interfaces.first().ok_or(PcapError::UnknownInterface {
                    offset: at,
                    interface: 0,
                })?;
                let original = reader.u32(at + 8)? as usize;
                let mut captured = original.min(body.len().saturating_sub(4));
                if described.snap_len != 0 {
                    captured = captured.min(described.snap_len as usize);
                }
                let data = reader.slice(at + 12, captured)?;
                packets.push(CapturedPacket {
                    number: packets.len() + 1,
                    timestamp_ns: 0,
                    frame: to_ethernet(described.link, data)?,
                    truncated: original > captured,
                });
            }
            _ => {}
        }
        at += length;
    }
    Ok(packets)
}

fn read_interface(reader: &Reader<'_>, at: usize, length: usize) -> Result<Interface, PcapError> {
    let link = u32::from(reader.u16(at + 8)?);
    let snap_len = reader.u32(at + 12)?;
    let mut units_per_second = 1_000_000;
    let end = at + length - 4;
    let mut option = at + 16;
    while option + 4 <= end {
        let code = reader.u16(option)?;
        let len = usize::from(reader.u16(option + 2)?);
        if code == 0 {
            break;
        }
        if code == PCAPNG_IF_TSRESOL && len >= 1 {
            let value = reader.slice(option + 4, 1)?[0];
            let exponent = u32::from(value & 0x7f);
            units_per_second = if value & 0x80 != 0 {
                2u64.checked_pow(exponent).unwrap_or(u64::MAX)
            } else {
                10u64.checked_pow(exponent).unwrap_or(u64::MAX)
            };
        }
        option += 4 + len.div_ceil(4) * 4;
    }
    Ok(Interface {
        link,
        units_per_second: units_per_second.max(1),
        snap_len,
    })
}

/// A timestamp in interface units to ns.
fn to_ns(units: u64, units_per_second: u64) -> u64 {
    let seconds = units / units_per_second;
    let rest = units % units_per_second;
    let rest_ns = (u128::from(rest) * 1_000_000_000 / u128::from(units_per_second)) as u64;
    seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(rest_ns)
}

/// A synthetic Ethernet header: locally administered MACs and `ethertype`.
fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The ethertype of a raw IP packet, from its version nibble.
fn ip_ethertype(packet: &[u8]) -> u16 {
    match packet.first().map(|byte| byte >> 4) {
        Some(6) => 0x86dd,
        _ => 0x0800,
    }
}

fn to_ethernet(link: u32, data: &[u8]) -> Result<Vec<u8>, PcapError> {
    let be16 = |at: usize| {
        data.get(at..at + 2)
            .map(|raw| u16::from_be_bytes([raw[0], raw[1]]))
            .unwrap_or(0)
    };
    Ok(match link {
        LINK_ETHERNET => data.to_vec(),
        LINK_RAW => ethernet(ip_ethertype(data), data),
        LINK_IPV4 => ethernet(0x0800, data),
        LINK_IPV6 => ethernet(0x86dd, data),
        // struct sll_header: 16 bytes, protocol (ethertype) last.
        LINK_LINUX_SLL => ethernet(be16(14), data.get(16..).unwrap_or_default()),
        // struct sll2_header: 20 bytes, protocol first.
        LINK_LINUX_SLL2 => ethernet(be16(0), data.get(20..).unwrap_or_default()),
        other => return Err(PcapError::LinkType(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_packet() -> Vec<u8> {
        let mut packet = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
        packet.extend_from_slice(&[198, 51, 100, 7, 192, 0, 2, 1]);
        packet.extend_from_slice(&[0xc0, 0, 0x1f, 0x90]);
        packet.extend_from_slice(&[0; 16]);
        packet
    }

    fn classic(order: Order, nanos: bool, link: u32, packets: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let word = |value: u32| match order {
            Order::Little => value.to_le_bytes(),
            Order::Big => value.to_be_bytes(),
        };
        let half = |value: u16| match order {
            Order::Little => value.to_le_bytes(),
            Order::Big => value.to_be_bytes(),
        };
        let mut file = Vec::new();
        file.extend_from_slice(&word(if nanos { PCAP_NANO } else { PCAP_MICRO }));
        file.extend_from_slice(&half(2));
        file.extend_from_slice(&half(4));
        file.extend_from_slice(&word(0));
        file.extend_from_slice(&word(0));
        file.extend_from_slice(&word(65535));
        file.extend_from_slice(&word(link));
        for (seconds, fraction, data) in packets {
            file.extend_from_slice(&word(*seconds));
            file.extend_from_slice(&word(*fraction));
            file.extend_from_slice(&word(data.len() as u32));
            file.extend_from_slice(&word(data.len() as u32 + 10));
            file.extend_from_slice(data);
        }
        file
    }

    #[test]
    fn classic_pcap_in_both_byte_orders() {
        let frame = ethernet(0x0800, &ipv4_packet());
        for order in [Order::Little, Order::Big] {
            let file = classic(order, false, LINK_ETHERNET, &[(10, 500, frame.clone())]);
            let packets = parse(&file).unwrap();
            assert_eq!(packets.len(), 1);
            assert_eq!(packets[0].frame, frame);
            assert_eq!(packets[0].timestamp_ns, 10_000_500_000);
            assert!(packets[0].truncated);
        }
        let file = classic(Order::Little, true, LINK_ETHERNET, &[(1, 7, frame)]);
        assert_eq!(parse(&file).unwrap()[0].timestamp_ns, 1_000_000_007);
    }

    #[test]
    fn cooked_and_raw_captures_get_an_ethernet_header() {
        let packet = ipv4_packet();
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&0x0800u16.to_be_bytes());
        sll.extend_from_slice(&packet);
        let mut sll2 = 0x0800u16.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(&packet);
        for (link, data) in [
            (LINK_LINUX_SLL, sll),
            (LINK_LINUX_SLL2, sll2),
            (LINK_RAW, packet.clone()),
            (LINK_IPV4, packet.clone()),
        ] {
            let file = classic(Order::Little, false, link, &[(0, 0, data)]);
            let frame = &parse(&file).unwrap()[0].frame;
            assert_eq!(&frame[12..14], &[0x08, 0x00], "link {link}");
            assert_eq!(&frame[14..], packet.as_slice(), "link {link}");
        }
        let file = classic(Order::Little, false, 147, &[(0, 0, packet)]);
        assert!(matches!(parse(&file), Err(PcapError::LinkType(147))));
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let length = (12 + padded) as u32;
        let mut out = kind.to_le_bytes().to_vec();
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(8 + padded, 0);
        out.extend_from_slice(&length.to_le_bytes());
        out
    }

    #[test]
    fn pcapng_with_nanosecond_interfaces() {
        let frame = ethernet(0x0800, &ipv4_packet());
        let mut section = PCAPNG_BYTE_ORDER.to_le_bytes().to_vec();
        section.extend_from_slice(&[1, 0, 0, 0]);
        section.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut interface = vec![1, 0, 0, 0];
        interface.extend_from_slice(&0u32.to_le_bytes());
        interface.extend_from_slice(&PCAPNG_IF_TSRESOL.to_le_bytes());
        interface.extend_from_slice(&1u16.to_le_bytes());
        interface.extend_from_slice(&[9, 0, 0, 0]);
        interface.extend_from_slice(&[0, 0, 0, 0]);
        let timestamp: u64 = 5_000_000_123;
        let mut enhanced = 0u32.to_le_bytes().to_vec();
        enhanced.extend_from_slice(&((timestamp >> 32) as u32).to_le_bytes());
        enhanced.extend_from_slice(&(timestamp as u32).to_le_bytes());
        enhanced.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        enhanced.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        enhanced.extend_from_slice(&frame);
        let mut file = block(PCAPNG_SECTION, &section);
        file.extend(block(PCAPNG_INTERFACE, &interface));
        file.extend(block(PCAPNG_ENHANCED_PACKET, &enhanced));
        file.extend(block(0x0000_0005, &[0; 8])); // statistics: skipped
        let packets = parse(&file).unwrap();
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].frame, frame);
        assert_eq!(packets[0].timestamp_ns, timestamp);
        assert!(!packets[0].truncated);
    }

    #[test]
    fn junk_is_refused() {
        assert!(matches!(
            parse(b"hello world"),
            Err(PcapError::NotACapture(_))
        ));
        let frame = ethernet(0x0800, &ipv4_packet());
        let file = classic(Order::Little, false, LINK_ETHERNET, &[(0, 0, frame)]);
        assert!(matches!(
            parse(&file[..file.len() - 3]),
            Err(PcapError::Truncated(_))
        ));
    }
}

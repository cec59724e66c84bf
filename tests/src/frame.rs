//! Builds Ethernet frames byte by byte, including the unusual ones (IPv4
//! options, VLAN stacks, IPv6 extension headers, fragments, truncation).

use std::net::IpAddr;

/// TCP SYN.
pub const SYN: u8 = 0x02;
/// TCP ACK.
pub const ACK: u8 = 0x10;
/// TCP RST.
pub const RST: u8 = 0x04;
/// TCP FIN.
pub const FIN: u8 = 0x01;
/// TCP PSH.
pub const PSH: u8 = 0x08;

/// IPv6 extension headers the builder can insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    /// Hop-by-hop options (8 bytes).
    HopByHop,
    /// Routing header (type 0, 24 bytes with one address).
    Routing,
    /// Destination options (8 bytes).
    DestOpts,
    /// Fragment header with offset (8-byte units) and more-fragments flag.
    Fragment {
        /// Offset in 8-octet units.
        offset: u16,
        /// More fragments follow.
        more: bool,
        /// Identification.
        id: u32,
    },
}

/// Layer 4 of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// TCP with the given flags byte.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Flags byte.
        flags: u8,
    },
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// Another IP protocol with an 8-byte payload.
    Other(u8),
}

/// A frame description; [`Frame::build`] turns it into bytes.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Source address (decides the family with `dst`).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Layer 4.
    pub l4: L4,
    /// VLAN tags, outermost first: (TPID, VLAN id).
    pub vlans: Vec<(u16, u16)>,
    /// IPv4 options bytes (padded to a multiple of 4).
    pub ipv4_options: Vec<u8>,
    /// IPv4 fragment: (offset in 8-octet units, more fragments, id).
    pub ipv4_fragment: Option<(u16, bool, u16)>,
    /// IPv6 extension headers in order.
    pub ipv6_ext: Vec<Ext>,
    /// Payload bytes after the L4 header.
    pub payload: usize,
}

impl Frame {
    /// TCP from `src` to `dst`.
    pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Self {
        Self::new(
            src,
            dst,
            L4::Tcp {
                sport,
                dport,
                flags,
            },
        )
    }

    /// UDP from `src` to `dst`.
    pub fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Self {
        Self::new(src, dst, L4::Udp { sport, dport })
    }

    /// A frame with the given layer 4.
    pub fn new(src: &str, dst: &str, l4: L4) -> Self {
        Self {
            src: parse_ip(src),
            dst: parse_ip(dst),
            l4,
            vlans: Vec::new(),
            ipv4_options: Vec::new(),
            ipv4_fragment: None,
            ipv6_ext: Vec::new(),
            payload: 0,
        }
    }

    /// Adds a VLAN tag (inner tags after outer ones).
    pub fn vlan(mut self, tpid: u16, id: u16) -> Self {
        self.vlans.push((tpid, id));
        self
    }

    /// Sets IPv4 options.
    pub fn options(mut self, options: &[u8]) -> Self {
        self.ipv4_options = options.to_vec();
        self
    }

    /// Makes this an IPv4 fragment.
    pub fn fragment(mut self, offset: u16, more: bool, id: u16) -> Self {
        self.ipv4_fragment = Some((offset, more, id));
        self
    }

    /// Adds an IPv6 extension header.
    pub fn ext(mut self, ext: Ext) -> Self {
        self.ipv6_ext.push(ext);
        self
    }

    /// Adds payload bytes.
    pub fn payload(mut self, len: usize) -> Self {
        self.payload = len;
        self
    }

    /// Whether the L4 header is present (not a later fragment).
    fn has_l4(&self) -> bool {
        let v4_later = self.ipv4_fragment.is_some_and(|(offset, _, _)| offset != 0);
        let v6_later = self
            .ipv6_ext
            .iter()
            .any(|ext| matches!(ext, Ext::Fragment { offset, .. } if *offset != 0));
        !(v4_later || v6_later)
    }

    fn l4_bytes(&self) -> (u8, Vec<u8>) {
        let mut bytes = Vec::new();
        let proto = match self.l4 {
            L4::Tcp {
                sport,
                dport,
                flags,
            } => {
                bytes.extend_from_slice(&sport.to_be_bytes());
                bytes.extend_from_slice(&dport.to_be_bytes());
                bytes.extend_from_slice(&1u32.to_be_bytes());
                bytes.extend_from_slice(&0u32.to_be_bytes());
                bytes.push(5 << 4);
                bytes.push(flags);
                bytes.extend_from_slice(&65535u16.to_be_bytes());
                bytes.extend_from_slice(&[0, 0, 0, 0]);
                6
            }
            L4::Udp { sport, dport } => {
                bytes.extend_from_slice(&sport.to_be_bytes());
                bytes.extend_from_slice(&dport.to_be_bytes());
                let len = (8 + self.payload) as u16;
                bytes.extend_from_slice(&len.to_be_bytes());
                bytes.extend_from_slice(&[0, 0]);
                17
            }
            L4::Other(proto) => {
                bytes.extend_from_slice(&[0; 8]);
                proto
            }
        };
        bytes.extend(std::iter::repeat_n(0xab, self.payload));
        if !self.has_l4() {
            // A later fragment carries payload only.
            let len = bytes.len();
            bytes = vec![0xcd; len];
        }
        (proto, bytes)
    }

    /// The frame's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
        let ethertype: u16 = if self.src.is_ipv4() { 0x0800 } else { 0x86dd };
        for (tpid, id) in &self.vlans {
            frame.extend_from_slice(&tpid.to_be_bytes());
            frame.extend_from_slice(&id.to_be_bytes());
        }
        frame.extend_from_slice(&ethertype.to_be_bytes());
        let (proto, l4) = self.l4_bytes();
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut options = self.ipv4_options.clone();
                while !options.len().is_multiple_of(4) {
                    options.push(0);
                }
                let ihl = 5 + options.len() / 4;
                let total = (ihl * 4 + l4.len()) as u16;
                let (frag, id) = match self.ipv4_fragment {
                    Some((offset, more, id)) => (offset | if more { 0x2000 } else { 0 }, id),
                    None => (0x4000, 0x1234), // DF
                };
                let start = frame.len();
                frame.push(0x40 | ihl as u8);
                frame.push(0);
                frame.extend_from_slice(&total.to_be_bytes());
                frame.extend_from_slice(&id.to_be_bytes());
                frame.extend_from_slice(&frag.to_be_bytes());
                frame.push(64);
                frame.push(proto);
                frame.extend_from_slice(&[0, 0]);
                frame.extend_from_slice(&src.octets());
                frame.extend_from_slice(&dst.octets());
                frame.extend_from_slice(&options);
                let sum = checksum(&frame[start..]);
                frame[start + 10..start + 12].copy_from_slice(&sum.to_be_bytes());
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut ext_bytes = Vec::new();
                let codes: Vec<u8> = self
                    .ipv6_ext
                    .iter()
                    .map(|ext| match ext {
                        Ext::HopByHop => 0,
                        Ext::Routing => 43,
                        Ext::DestOpts => 60,
                        Ext::Fragment { .. } => 44,
                    })
                    .collect();
                for (i, ext) in self.ipv6_ext.iter().enumerate() {
                    let next = codes.get(i + 1).copied().unwrap_or(proto);
                    match ext {
                        Ext::HopByHop | Ext::DestOpts => {
                            // PadN filling the 6 option bytes.
                            ext_bytes.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
                        }
                        Ext::Routing => {
                            ext_bytes.extend_from_slice(&[next, 2, 0, 0, 0, 0, 0, 0]);
                            ext_bytes.extend_from_slice(&[0; 16]);
                        }
                        Ext::Fragment { offset, more, id } => {
                            let word = (offset << 3) | u16::from(*more);
                            ext_bytes.extend_from_slice(&[next, 0]);
                            ext_bytes.extend_from_slice(&word.to_be_bytes());
                            ext_bytes.extend_from_slice(&id.to_be_bytes());
                        }
                    }
                }
                let first = codes.first().copied().unwrap_or(proto);
                let payload_len = (ext_bytes.len() + l4.len()) as u16;
                frame.extend_from_slice(&[0x60, 0, 0, 0]);
                frame.extend_from_slice(&payload_len.to_be_bytes());
                frame.push(first);
                frame.push(64);
                frame.extend_from_slice(&src.octets());
                frame.extend_from_slice(&dst.octets());
                frame.extend_from_slice(&ext_bytes);
            }
            _ => panic!("source and destination of a frame must be of one family"),
        }
        frame.extend_from_slice(&l4);
        frame
    }
}

fn parse_ip(text: &str) -> IpAddr {
    match text.parse() {
        Ok(ip) => ip,
        Err(error) => panic!("bad address {text:?} in a test frame: {error}"),
    }
}

/// The Internet checksum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

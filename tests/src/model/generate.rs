//! Random policies and frames for the fuzzer, from a seeded generator so a
//! seed reproduces a case. Addresses and ports come from small pools so that
//! rules, sets, bans and published ports actually meet the traffic.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use dockfw::model::{
    Action, BindingKey, ContainerRef, Family, FragmentAction, Per, Policy, PortSpec, Proto,
    PublishedPort, Rate, RateLimit, Rule, RuleOrigin, SourceMatch,
};
use ipnet::IpNet;

use super::eval::BanExpiry;
use crate::frame::{Ext, Frame, L4};

/// A small, fast, seedable generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.bits() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Destination addresses: the first two of each family are host addresses
/// ports may be bound to, the last is never bound.
const DST_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 1),
    Ipv4Addr::new(192, 0, 2, 2),
    Ipv4Addr::new(198, 51, 100, 7),
];
const DST_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99),
];
/// Ports published and aimed at most of the time.
const PORTS: [u16; 5] = [80, 443, 8080, 53, 5353];
const CONTAINERS: [&str; 4] = ["web", "api", "dns", "db"];
/// Interface names rules may use; `ifaces` maps the attached ones.
pub const IFACE_NAMES: [&str; 3] = ["ingress-a", "ingress-b", "not-attached"];

fn origin(index: usize) -> RuleOrigin {
    RuleOrigin::PolicyFile {
        path: "fuzz.toml".into(),
        line: index + 1,
    }
}

/// A source address from the pools rules and bans are written over.
pub fn source(rng: &mut Rng, family: Family) -> IpAddr {
    match family {
        Family::V4 => {
            let addr = match rng.below(10) {
                0 => rng.bits() as u32,
                1 => 0xcb00_7100 | (rng.below(256) as u32),
                _ => 0x0a00_0000 | ((rng.below(2) as u32) << 16) | (rng.below(1024) as u32),
            };
            IpAddr::V4(Ipv4Addr::from(addr))
        }
        Family::V6 => {
            let addr = match rng.below(10) {
                0 => u128::from(rng.bits()) << 64 | u128::from(rng.bits()),
                _ => {
                    0x2001_0db8_000a_0000_0000_0000_0000_0000u128
                        | u128::from(rng.below(2)) << 80
                        | u128::from(rng.below(4)) << 64
                        | u128::from(rng.below(300))
                }
            };
            IpAddr::V6(Ipv6Addr::from(addr))
        }
    }
}

/// A prefix around the source pools.
fn prefix(rng: &mut Rng, family: Family) -> IpNet {
    let addr = source(rng, family);
    let len = match family {
        Family::V4 => *rng.pick(&[0u8, 8, 15, 16, 22, 24, 30, 31, 32]),
        Family::V6 => *rng.pick(&[0u8, 16, 23, 32, 48, 63, 64, 120, 128]),
    };
    IpNet::new(addr, len)
        .map(|net| net.trunc())
        .unwrap_or_else(|error| panic!("generated prefix: {error}"))
}

fn random_family(rng: &mut Rng) -> Family {
    if rng.chance(60) {
        Family::V4
    } else {
        Family::V6
    }
}

fn random_port(rng: &mut Rng) -> u16 {
    if rng.chance(85) {
        *rng.pick(&PORTS)
    } else {
        1 + rng.below(65535) as u16
    }
}

/// Published ports: wildcard and specific bindings, both families and
/// protocols, sometimes the same port twice.
pub fn ports(rng: &mut Rng) -> Vec<PublishedPort> {
    (0..rng.below(7))
        .map(|_| {
            let family = random_family(rng);
            let addr = if rng.chance(30) {
                Some(match family {
                    Family::V4 => IpAddr::V4(DST_V4[rng.below(2) as usize]),
                    Family::V6 => IpAddr::V6(DST_V6[rng.below(2) as usize]),
                })
            } else {
                None
            };
            let container = *rng.pick(&CONTAINERS);
            PublishedPort {
                key: BindingKey {
                    family,
                    proto: if rng.chance(60) {
                        Proto::Tcp
                    } else {
                        Proto::Udp
                    },
                    addr,
                    port: random_port(rng),
                },
                container: ContainerRef {
                    id: format!("{container}0123456789abcdef"),
                    name: container.into(),
                    labels: BTreeMap::from([("tier".to_string(), container.to_string())]),
                },
                container_addr: None,
                container_port: 80,
            }
        })
        .collect()
}

/// A rate the model can predict: "slow" (hours per few packets: only the
/// burst passes during a case) or "fast" (one packet per ns with a burst of
/// a second: always admitted, even by a clock that only moves once a tick).
fn rate(rng: &mut Rng) -> (Rate, u32) {
    const HOUR_NS: u64 = 3600 * 1_000_000_000;
    const SECOND_NS: u64 = 1_000_000_000;
    if rng.chance(60) {
        let count = *rng.pick(&[1u64, 2, 5, 10]);
        let burst = 1 + rng.below(4) as u32;
        (
            Rate {
                count,
                per_ns: HOUR_NS,
            },
            burst,
        )
    } else {
        (
            Rate {
                count: SECOND_NS,
                per_ns: SECOND_NS,
            },
            SECOND_NS as u32,
        )
    }
}

fn action(rng: &mut Rng) -> Action {
    match rng.below(20) {
        0..=4 => Action::Pass,
        5..=11 => Action::Drop,
        _ => {
            let (rate, burst) = rate(rng);
            let per = if rng.chance(60) {
                Per::Source
            } else {
                Per::Port
            };
            let total = (per == Per::Source && rng.chance(50)).then(|| rate_pair(rng));
            Action::RateLimit(RateLimit {
                rate,
                burst,
                per,
                total,
            })
        }
    }
}

fn rate_pair(rng: &mut Rng) -> (Rate, u32) {
    rate(rng)
}

fn rule(rng: &mut Rng, index: usize, name: String) -> Rule {
    let mut rule = Rule::new(name, origin(index), action(rng));
    if rng.chance(50) {
        rule.ports.ports = (0..1 + rng.below(2))
            .map(|_| {
                let low = random_port(rng);
                PortSpec {
                    proto: if rng.chance(60) {
                        Proto::Tcp
                    } else {
                        Proto::Udp
                    },
                    low,
                    high: low.saturating_add(rng.below(3) as u16),
                }
            })
            .collect();
    }
    if rng.chance(15) {
        rule.ports.container = Some((*rng.pick(&CONTAINERS)).into());
    }
    if rng.chance(10) {
        let tier = *rng.pick(&CONTAINERS);
        rule.ports.label = Some(("tier".into(), rng.chance(70).then(|| tier.into())));
    }
    if rng.chance(50) {
        let from = rng.chance(70).then(|| {
            (0..1 + rng.below(3))
                .map(|_| {
                    let family = random_family(rng);
                    prefix(rng, family)
                })
                .collect()
        });
        let not_from = (0..rng.below(3))
            .map(|_| {
                let family = random_family(rng);
                prefix(rng, family)
            })
            .collect();
        rule.sources = SourceMatch { from, not_from };
    }
    rule.syn_only = rng.chance(15);
    if rng.chance(15) {
        rule.ifaces = vec![(*rng.pick(&IFACE_NAMES)).into()];
    }
    if rng.chance(15) {
        let low = rng.below(65536) as u16;
        rule.source_ports = Some((low, low.saturating_add(rng.below(20000) as u16)));
    }
    if rng.chance(10) {
        rule.tcp_flags = Some((rng.bits() as u8, rng.bits() as u8));
    }
    rule.audit = rng.chance(10);
    if rng.chance(15) {
        rule.fragments = Some(if rng.chance(50) {
            FragmentAction::Drop
        } else {
            FragmentAction::Pass
        });
    }
    rule
}

/// A policy of up to 10 rules with unique names drawn from a small pool, so
/// successive policies keep, drop and reuse names (and statistic ids).
pub fn policy(rng: &mut Rng) -> Policy {
    let mut names: Vec<usize> = (0..16).collect();
    let count = rng.below(11) as usize;
    let rules = (0..count)
        .map(|index| {
            let name = names.remove(rng.below(names.len() as u64) as usize);
            rule(rng, index, format!("r{name}"))
        })
        .collect();
    Policy {
        rules,
        fragments: if rng.chance(30) {
            FragmentAction::Drop
        } else {
            FragmentAction::Pass
        },
    }
}

/// Bans around the source pools, in force or expired. Mostly /16 and
/// longer: a wide IPv4 ban rewrites a state word per 32 /24s it covers, and
/// the fuzzer's time is better spent on frames.
pub fn bans(rng: &mut Rng) -> Vec<(IpNet, BanExpiry)> {
    (0..rng.below(4))
        .map(|_| {
            let family = random_family(rng);
            let mut net = prefix(rng, family);
            if let IpNet::V4(v4) = net
                && v4.prefix_len() < 16
                && !rng.chance(5)
            {
                let len = *rng.pick(&[16u8, 20, 23, 24, 25, 28, 32]);
                net = IpNet::new(IpAddr::V4(v4.addr()), len)
                    .map(|net| net.trunc())
                    .unwrap_or_else(|error| panic!("generated ban: {error}"));
            }
            if let IpNet::V4(v4) = net
                && v4.prefix_len() == 0
            {
                net = IpNet::new(IpAddr::V4(v4.addr()), 8)
                    .map(|net| net.trunc())
                    .unwrap_or_else(|error| panic!("generated ban: {error}"));
            }
            let expiry = *rng.pick(&[BanExpiry::Never, BanExpiry::Future, BanExpiry::Past]);
            (net, expiry)
        })
        .collect()
}

/// A first fragment the generator may send later fragments for.
#[derive(Clone, Debug)]
pub struct Datagram {
    src: IpAddr,
    dst: IpAddr,
    l4: L4,
    id: u32,
}

/// Generates the frames of one step.
pub struct FrameGen<'a> {
    rng: &'a mut Rng,
    /// Ports aimed at (published ones and a few others).
    targets: Vec<(Family, Proto, Option<IpAddr>, u16)>,
    datagrams: Vec<Datagram>,
}

impl<'a> FrameGen<'a> {
    /// A generator aiming at `ports`.
    pub fn new(rng: &'a mut Rng, ports: &[PublishedPort]) -> Self {
        let targets = ports
            .iter()
            .map(|port| {
                (
                    port.key.family,
                    port.key.proto,
                    port.key.addr,
                    port.key.port,
                )
            })
            .collect();
        Self {
            rng,
            targets,
            datagrams: Vec::new(),
        }
    }

    fn destination(&mut self) -> (IpAddr, IpAddr, Proto, u16) {
        let (family, proto, addr, port) = if !self.targets.is_empty() && self.rng.chance(80) {
            *self.rng.pick(&self.targets)
        } else {
            let family = random_family(self.rng);
            let proto = if self.rng.chance(50) {
                Proto::Tcp
            } else {
                Proto::Udp
            };
            (family, proto, None, random_port(self.rng))
        };
        let dst = match (addr, family) {
            (Some(addr), _) if self.rng.chance(80) => addr,
            (_, Family::V4) => IpAddr::V4(*self.rng.pick(&DST_V4)),
            (_, Family::V6) => IpAddr::V6(*self.rng.pick(&DST_V6)),
        };
        (source(self.rng, family), dst, proto, port)
    }

    fn tcp_flags(&mut self) -> u8 {
        match self.rng.below(6) {
            0 | 1 => 0x02,
            2 => 0x12,
            3 => 0x10,
            4 => 0x04,
            _ => self.rng.bits() as u8,
        }
    }

    /// A well-formed frame with random encapsulation.
    fn valid(&mut self) -> Frame {
        let (src, dst, proto, dport) = self.destination();
        let sport = if self.rng.chance(50) {
            self.rng.below(65536) as u16
        } else {
            1024 + self.rng.below(100) as u16
        };
        let l4 = match self.rng.below(20) {
            0 => L4::Other(*self.rng.pick(&[1u8, 58, 59, 132, 47])),
            _ => match proto {
                Proto::Tcp => L4::Tcp {
                    sport,
                    dport,
                    flags: self.tcp_flags(),
                },
                Proto::Udp => L4::Udp { sport, dport },
            },
        };
        let mut frame = Frame {
            src,
            dst,
            l4,
            vlans: Vec::new(),
            ipv4_options: Vec::new(),
            ipv4_fragment: None,
            ipv6_ext: Vec::new(),
            payload: self.rng.below(48) as usize,
        };
        let tags = match self.rng.below(10) {
            0..=5 => 0,
            6 | 7 => 1,
            8 => 2,
            _ => 3,
        };
        for _ in 0..tags {
            let tpid = *self.rng.pick(&[0x8100u16, 0x88a8]);
            frame.vlans.push((tpid, self.rng.below(4096) as u16));
        }
        if src.is_ipv4() {
            if self.rng.chance(20) {
                frame.ipv4_options = vec![1; 1 + self.rng.below(40) as usize];
            }
        } else if self.rng.chance(40) {
            let count = match self.rng.below(4) {
                0 => 6 + self.rng.below(3),
                _ => 1 + self.rng.below(4),
            };
            for _ in 0..count {
                frame.ipv6_ext.push(match self.rng.below(3) {
                    0 => Ext::HopByHop,
                    1 => Ext::Routing,
                    _ => Ext::DestOpts,
                });
            }
        }
        frame
    }

    /// A fragment: a first one (remembered), or a later one of a remembered
    /// or an unknown datagram.
    fn fragment(&mut self) -> Frame {
        if !self.datagrams.is_empty() && self.rng.chance(60) {
            let datagram = self.rng.pick(&self.datagrams).clone();
            let offset = 1 + self.rng.below(100) as u16;
            let mut frame = Frame {
                src: datagram.src,
                dst: datagram.dst,
                l4: datagram.l4,
                vlans: Vec::new(),
                ipv4_options: Vec::new(),
                ipv4_fragment: None,
                ipv6_ext: Vec::new(),
                payload: self.rng.below(64) as usize,
            };
            let more = self.rng.chance(50);
            self.make_fragment(&mut frame, offset, more, datagram.id);
            return frame;
        }
        let mut frame = self.valid();
        let id = if frame.src.is_ipv4() {
            self.rng.below(65536) as u32
        } else {
            self.rng.bits() as u32
        };
        let offset = if self.rng.chance(70) {
            0
        } else {
            1 + self.rng.below(200) as u16
        };
        self.make_fragment(&mut frame, offset, true, id);
        if offset == 0 {
            self.datagrams.push(Datagram {
                src: frame.src,
                dst: frame.dst,
                l4: frame.l4,
                id,
            });
        }
        frame
    }

    fn make_fragment(&mut self, frame: &mut Frame, offset: u16, more: bool, id: u32) {
        if frame.src.is_ipv4() {
            frame.ipv4_fragment = Some((offset, more, id as u16));
        } else {
            let fragment = Ext::Fragment { offset, more, id };
            // Usually right after the fixed header; sometimes behind other
            // extension headers.
            let at = if self.rng.chance(70) {
                0
            } else {
                self.rng.below(frame.ipv6_ext.len() as u64 + 1) as usize
            };
            frame.ipv6_ext.insert(at, fragment);
        }
    }

    /// Random bytes behind an Ethernet header that claims IP or VLAN.
    fn garbage(&mut self) -> Vec<u8> {
        let len = 14 + self.rng.below(120) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| self.rng.bits() as u8).collect();
        let ethertype: u16 = *self.rng.pick(&[0x0800u16, 0x86dd, 0x8100, 0x88a8, 0x0806]);
        bytes[12..14].copy_from_slice(&ethertype.to_be_bytes());
        if len > 14 && self.rng.chance(60) {
            bytes[14] = if ethertype == 0x86dd { 0x60 } else { 0x45 };
        }
        bytes
    }

    /// Damages a frame: truncation, bogus IHL or data offset, a flipped
    /// byte, a wrong ethertype, trailing bytes.
    fn mutate(&mut self, frame: &Frame, mut bytes: Vec<u8>) -> Vec<u8> {
        let l2 = 14 + 4 * frame.vlans.len();
        let l4_len = match frame.l4 {
            L4::Tcp { .. } => 20,
            L4::Udp { .. } | L4::Other(_) => 8,
        };
        let l4 = bytes.len().saturating_sub(l4_len + frame.payload);
        match self.rng.below(7) {
            0 => {
                let len = 14 + self.rng.below((bytes.len() - 13) as u64) as usize;
                bytes.truncate(len);
            }
            1 if l2 < bytes.len() => {
                bytes[l2] = (bytes[l2] & 0xf0) | self.rng.below(16) as u8;
            }
            2 if l4 + 12 < bytes.len() => {
                bytes[l4 + 12] = (self.rng.below(16) as u8) << 4;
            }
            3 => {
                let at = self.rng.below(bytes.len() as u64) as usize;
                bytes[at] = self.rng.bits() as u8;
            }
            4 => {
                let at = 12 + 4 * self.rng.below(frame.vlans.len() as u64 + 1) as usize;
                let value = *self.rng.pick(&[0x0800u16, 0x86dd, 0x8100, 0x88a8, 0x9100]);
                bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
            }
            5 if l2 + 6 < bytes.len() && frame.src.is_ipv6() => {
                // The next-header field of the fixed IPv6 header.
                bytes[l2 + 6] = *self.rng.pick(&[0u8, 43, 44, 60, 6, 17, 59]);
            }
            _ => {
                let extra = self.rng.below(16) as usize;
                bytes.extend((0..extra).map(|_| self.rng.bits() as u8));
            }
        }
        bytes
    }

    /// The next frames: usually one, sometimes a frame with every truncation
    /// of it.
    pub fn next_frames(&mut self, out: &mut Vec<Vec<u8>>) {
        match self.rng.below(100) {
            0..=44 => out.push(self.valid().build()),
            45..=64 => out.push(self.fragment().build()),
            65..=89 => {
                let frame = if self.rng.chance(70) {
                    self.valid()
                } else {
                    self.fragment()
                };
                let bytes = frame.build();
                out.push(self.mutate(&frame, bytes));
            }
            90..=95 => out.push(self.garbage()),
            _ => {
                let frame = if self.rng.chance(70) {
                    self.valid()
                } else {
                    self.fragment()
                };
                let bytes = frame.build();
                for len in 14..=bytes.len() {
                    out.push(bytes[..len].to_vec());
                }
            }
        }
    }
}

//! Seeded random DOCKER-USER rule sets (the supported grammar plus rules
//! that cannot be translated) and seeded random packets, for the
//! differential test against netfilter.

use std::{collections::BTreeSet, net::IpAddr};

/// A small deterministic generator (xorshift64*), so a seed reproduces a run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1) ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// One element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A published port as the test sees it.
#[derive(Clone, Debug)]
pub struct Service {
    /// `tcp` / `udp`.
    pub proto: &'static str,
    /// Host port.
    pub host_port: u16,
    /// Host address it is bound to (`None`: every address).
    pub host_addr: Option<IpAddr>,
    /// Container address of the family.
    pub container_addr: IpAddr,
    /// Container port.
    pub container_port: u16,
    /// The container's name.
    pub container: String,
}

/// What the generator draws from, per family.
#[derive(Clone, Debug)]
pub struct Pools {
    /// `ipv4` / `ipv6`.
    pub family: &'static str,
    /// Sources of packets.
    pub sources: Vec<IpAddr>,
    /// Prefixes rules name.
    pub prefixes: Vec<String>,
    /// Address sets (`src` matches).
    pub sets: Vec<String>,
    /// Local addresses packets are sent to.
    pub local: Vec<IpAddr>,
    /// A routed address that is not local.
    pub far: IpAddr,
    /// Published ports of the family.
    pub services: Vec<Service>,
    /// Docker subnets (for `-d`).
    pub subnets: Vec<String>,
    /// The attached interface.
    pub iface: String,
}

/// Ports nothing is published on.
pub const UNPUBLISHED: &[u16] = &[22, 80, 5000, 7004, 9999];

/// The user chains rule sets may jump to.
pub const SUB_CHAINS: &[&str] = &["DFW-A", "DFW-B"];

fn untranslatable(rng: &mut Rng, pools: &Pools, proto: Option<&str>) -> String {
    let mut menu = vec![
        "-o docker0".to_owned(),
        "-m length --length 0:60".into(),
        "-m statistic --mode random --probability 0.50000000000".into(),
        "-m string --string \"dockfw\" --algo bm".into(),
        "-m mark --mark 0x1".into(),
        "-m pkttype --pkt-type unicast".into(),
        "-m limit --limit 5/sec".into(),
        "-m recent --rcheck --name dfw".into(),
    ];
    menu.push(if pools.family == "ipv4" {
        "-m ttl --ttl-gt 10".into()
    } else {
        "-m hl --hl-gt 10".into()
    });
    if proto == Some("tcp") {
        menu.push("-m connlimit --connlimit-above 1".into());
        menu.push("-m tcp --tcp-option 2".into());
    }
    rng.pick(&menu).clone()
}

fn port_range(rng: &mut Rng, ports: &[u16]) -> String {
    let port = *rng.pick(ports);
    if rng.chance(25) {
        let high = port.saturating_add(1 + rng.below(3) as u16);
        format!("{port}:{high}")
    } else {
        port.to_string()
    }
}

/// One condition of a kind the rule does not have yet (`used`): iptables
/// refuses a repeated `-s`, `-d` or `-i`.
fn condition(
    rng: &mut Rng,
    pools: &Pools,
    proto: Option<&str>,
    used: &mut BTreeSet<usize>,
) -> String {
    let neg = if rng.chance(20) { "! " } else { "" };
    let container_ports: Vec<u16> = pools
        .services
        .iter()
        .filter(|s| proto.is_none_or(|p| p == s.proto))
        .map(|s| s.container_port)
        .chain(UNPUBLISHED.iter().copied())
        .collect();
    let host_ports: Vec<u16> = pools
        .services
        .iter()
        .filter(|s| proto.is_none_or(|p| p == s.proto))
        .map(|s| s.host_port)
        .collect();
    loop {
        let kind = rng.below(12);
        // Both source choices are one kind.
        if !used.insert(kind.max(1)) {
            continue;
        }
        match kind {
            0 | 1 => return format!("{neg}-s {}", rng.pick(&pools.prefixes)),
            2 if pools.family == "ipv4" => {
                return format!("-m iprange {neg}--src-range 198.51.100.0-198.51.100.150");
            }
            3 => return format!("-m set {neg}--match-set {} src", rng.pick(&pools.sets)),
            4 => {
                let service = rng.pick(&pools.services);
                let target = if rng.chance(50) {
                    let bits = if pools.family == "ipv4" { 32 } else { 128 };
                    format!("{}/{bits}", service.container_addr)
                } else {
                    rng.pick(&pools.subnets).clone()
                };
                return format!("{neg}-d {target}");
            }
            5 if proto.is_some() && !container_ports.is_empty() => {
                let module = proto.unwrap_or("tcp");
                return format!(
                    "-m {module} {neg}--dport {}",
                    port_range(rng, &container_ports)
                );
            }
            6 if proto.is_some() && !container_ports.is_empty() => {
                let count = 1 + rng.below(3);
                let list: BTreeSet<u16> = (0..count).map(|_| *rng.pick(&container_ports)).collect();
                let list: Vec<String> = list.iter().map(u16::to_string).collect();
                return format!("-m multiport {neg}--dports {}", list.join(","));
            }
            7 if proto.is_some() => {
                let module = proto.unwrap_or("tcp");
                let low = rng.below(40000) as u16;
                let high = low + rng.below(25000) as u16;
                return format!("-m {module} {neg}--sport {low}:{high}");
            }
            8 if proto == Some("tcp") => {
                return rng
                    .pick(&[
                        "-m tcp --syn",
                        "-m tcp ! --syn",
                        "-m tcp --tcp-flags SYN,ACK ACK",
                        "-m tcp --tcp-flags FIN,SYN,RST,ACK SYN",
                        "-m tcp --tcp-flags ALL ACK,PSH",
                    ])
                    .to_string();
            }
            9 => {
                let state = rng.pick(&[
                    "NEW",
                    "ESTABLISHED,RELATED",
                    "NEW,ESTABLISHED",
                    "INVALID",
                    "DNAT",
                ]);
                return format!("-m conntrack {neg}--ctstate {state}");
            }
            10 if proto.is_some() && !host_ports.is_empty() => {
                let mut text = format!(
                    "-m conntrack --ctorigdstport {}",
                    port_range(rng, &host_ports)
                );
                if rng.chance(40) {
                    text.push_str(&format!(" --ctorigdst {}", rng.pick(&pools.local)));
                }
                if rng.chance(50) {
                    text.push_str(" --ctdir ORIGINAL");
                }
                return text;
            }
            11 => {
                let iface = &pools.iface;
                return rng
                    .pick(&[
                        format!("-i {iface}"),
                        "-i eth+".to_owned(),
                        format!("! -i {iface}"),
                        "-i docker0".to_owned(),
                    ])
                    .clone();
            }
            _ => {
                used.remove(&kind.max(1));
                continue;
            }
        }
    }
}

/// One rule's arguments after `-A CHAIN`; `jumps` allows a jump to a user
/// chain.
pub fn rule(rng: &mut Rng, pools: &Pools, jumps: bool) -> String {
    let proto = match rng.below(10) {
        0..=2 => None,
        3..=6 => Some("tcp"),
        _ => Some("udp"),
    };
    let mut parts = Vec::new();
    if let Some(proto) = proto {
        parts.push(format!("-p {proto}"));
    }
    let mut used = BTreeSet::new();
    for _ in 0..rng.below(3) + usize::from(rng.chance(50)) {
        parts.push(condition(rng, pools, proto, &mut used));
    }
    if rng.chance(15) {
        parts.push(untranslatable(rng, pools, proto));
    }
    if rng.chance(10) {
        parts.push("-m comment --comment \"dockfw test\"".into());
    }
    let target = match rng.below(20) {
        0..=8 => "-j DROP".to_owned(),
        9..=11 => "-j ACCEPT".into(),
        12 | 13 => "-j RETURN".into(),
        14 => "-j LOG --log-prefix \"dfw: \"".into(),
        15 if proto == Some("tcp") => "-j REJECT --reject-with tcp-reset".into(),
        15 => "-j REJECT".into(),
        16..=18 if jumps => format!("-j {}", rng.pick(SUB_CHAINS)),
        19 if jumps => format!("-g {}", rng.pick(SUB_CHAINS)),
        _ => "-j DROP".into(),
    };
    parts.push(target);
    parts.join(" ")
}

/// An `iptables-restore --noflush` text replacing DOCKER-USER and the sub
/// chains with a random rule set.
pub fn rule_set(rng: &mut Rng, pools: &Pools) -> String {
    let mut text = String::from("*filter\n");
    for chain in SUB_CHAINS {
        text.push_str(&format!(":{chain} - [0:0]\n"));
    }
    text.push_str("-F DOCKER-USER\n");
    for chain in SUB_CHAINS {
        text.push_str(&format!("-F {chain}\n"));
    }
    for _ in 0..4 + rng.below(9) {
        text.push_str(&format!("-A DOCKER-USER {}\n", rule(rng, pools, true)));
    }
    for chain in SUB_CHAINS {
        for _ in 0..1 + rng.below(3) {
            text.push_str(&format!("-A {chain} {}\n", rule(rng, pools, false)));
        }
    }
    text.push_str("COMMIT\n");
    text
}

/// Where a packet goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Aim {
    /// A published port (index into the family's services).
    Published(usize),
    /// A port nothing is published on, at a local address.
    Unpublished,
    /// A published port number at an address that is not local.
    Elsewhere(usize),
}

/// One test packet.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Source.
    pub src: IpAddr,
    /// Destination.
    pub dst: IpAddr,
    /// `tcp` / `udp`.
    pub proto: &'static str,
    /// Source port (unique per source over the whole run).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP flags.
    pub flags: u8,
    /// What it is aimed at.
    pub aim: Aim,
}

/// TCP flag mixes: clean SYN, ACK (picked up by conntrack as NEW), PSH+ACK,
/// SYN+ACK, FIN+ACK and RST (both INVALID without a connection).
const FLAG_MIX: &[u8] = &[0x02, 0x02, 0x02, 0x02, 0x10, 0x10, 0x18, 0x12, 0x11, 0x04];

/// `count` packets of a family; `used` keeps (source, source port) unique.
pub fn packets(
    rng: &mut Rng,
    pools: &Pools,
    count: usize,
    used: &mut BTreeSet<(IpAddr, u16)>,
) -> Vec<Packet> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let src = *rng.pick(&pools.sources);
        let sport = 1 + rng.below(65534) as u16;
        if !used.insert((src, sport)) {
            continue;
        }
        let roll = rng.below(100);
        let (aim, dst, proto, dport) = if roll < 85 {
            let index = rng.below(pools.services.len());
            let service = &pools.services[index];
            let dst = service.host_addr.unwrap_or_else(|| *rng.pick(&pools.local));
            (Aim::Published(index), dst, service.proto, service.host_port)
        } else if roll < 93 {
            let proto = if rng.chance(60) { "tcp" } else { "udp" };
            (
                Aim::Unpublished,
                *rng.pick(&pools.local),
                proto,
                *rng.pick(UNPUBLISHED),
            )
        } else {
            let index = rng.below(pools.services.len());
            let service = &pools.services[index];
            (
                Aim::Elsewhere(index),
                pools.far,
                service.proto,
                service.host_port,
            )
        };
        let flags = if proto == "tcp" {
            *rng.pick(FLAG_MIX)
        } else {
            0
        };
        out.push(Packet {
            src,
            dst,
            proto,
            sport,
            dport,
            flags,
            aim,
        });
    }
    out
}

//! The realistic policy dockfw runs with: a policy file with 16 rules on
//! the attacked port (the flood matches the 16th, after 15 rules whose
//! source sets it misses; `--rules` changes the count), a rate-limit rule over the other published
//! ports, and 100,000 banned IPv4 prefixes. None of it covers the
//! legitimate client. Seeded, so every run and machine gets the same one.

use std::{fmt::Write as _, net::Ipv4Addr};

use dockfw::bans::{BanSet, NEVER};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::topology::{ATTACK_BASE, ATTACK_NET, ATTACK_RANDOM_BITS, WEB_PORT};
use crate::bench::rng::Rng;

/// Prefixes per family in each filler rule's source set.
const FILLER_PREFIXES: usize = 4;
/// Prefixes of the background rule on the other ports.
const BACKGROUND_PREFIXES: usize = 16;
/// Seeds of the two random streams.
const POLICY_SEED: u64 = 0xd0c4_3ac0;
const BANS_SEED: u64 = 0xba11_0044;
/// Every address this benchmark sends from is in 10.0.0.0/8: random
/// prefixes stay out of it, so they neither ban nor match the flood or the
/// client by accident.
const OURS: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 8) {
    Ok(net) => net,
    Err(_) => panic!("10.0.0.0/8"),
};

fn random_v4(rng: &mut Rng, shortest: u32, longest: u32) -> Ipv4Net {
    loop {
        let len = rng.range(shortest, longest) as u8;
        let Ok(net) = Ipv4Net::new(Ipv4Addr::from(rng.next_u32()), len) else {
            continue;
        };
        let net = net.trunc();
        if !net.contains(&OURS.network()) && !OURS.contains(&net.network()) {
            return net;
        }
    }
}

fn random_v6(rng: &mut Rng) -> Ipv6Net {
    let len = rng.range(32, 128) as u8;
    // Global unicast (2000::/3), like real lists.
    let high = (rng.next_u64() & !(0b111 << 61)) | (0b001 << 61);
    let addr = (u128::from(high) << 64) | u128::from(rng.next_u64());
    Ipv6Net::new(addr.into(), len)
        .map(|net| net.trunc())
        .unwrap_or_default()
}

fn quoted(nets: &[String]) -> String {
    let items: Vec<String> = nets.iter().map(|net| format!("\"{net}\"")).collect();
    format!("[{}]", items.join(", "))
}

/// The policy file's text: `rules` rules on the attacked port, the flood
/// matching the last. `bulk` is the range of the other published ports, if
/// any.
pub fn policy_file(rules: usize, bulk: Option<(u16, u16)>) -> String {
    let mut rng = Rng::new(POLICY_SEED);
    let ports = format!("[\"{WEB_PORT}/tcp\", \"{WEB_PORT}/udp\"]");
    let mut text = String::from(
        "# dockfw macro benchmark: the flood matches the last rule on the attacked port.\n\
         fragments = \"pass\"\n\n",
    );
    let _ = writeln!(text, "[sets.flood]\ncidrs = [\"{ATTACK_NET}\"]\n");
    for index in 0..rules.saturating_sub(1) {
        let mut from = Vec::new();
        for _ in 0..FILLER_PREFIXES {
            from.push(random_v4(&mut rng, 8, 32).to_string());
            from.push(random_v6(&mut rng).to_string());
        }
        let _ = writeln!(
            text,
            "[[rules]]\nname = \"filler-{index:02}\"\nports = {ports}\nfrom = {}",
            quoted(&from)
        );
        // Actions vary as in a real policy; none of these rules matches.
        let action = match index % 3 {
            0 => "action = \"drop\"\n".to_string(),
            1 => "action = \"pass\"\n".to_string(),
            _ => "action = \"rate-limit\"\nrate = \"10/s\"\nburst = 20\nper = \"source\"\n\
                  total_rate = \"1000/s\"\ntotal_burst = 2000\n"
                .to_string(),
        };
        let _ = writeln!(text, "{action}");
    }
    let _ = writeln!(
        text,
        "[[rules]]\nname = \"flood\"\nports = {ports}\nfrom = [\"@flood\"]\naction = \"drop\"\n"
    );
    if let Some((first, last)) = bulk {
        let from: Vec<String> = (0..BACKGROUND_PREFIXES)
            .map(|_| random_v4(&mut rng, 8, 32).to_string())
            .collect();
        let _ = writeln!(
            text,
            "[[rules]]\nname = \"background\"\nports = [\"{first}-{last}/tcp\"]\nfrom = {}\n\
             action = \"rate-limit\"\nrate = \"100/s\"\nburst = 200\nper = \"source\"\n",
            quoted(&from)
        );
    }
    text
}

/// `count` IPv4 bans, permanent: a /32 at the top of every /24 of the
/// attack prefix (so the flood's /24s are "partly banned" and each flood
/// packet reads its /24's ban bitmap, as the micro benchmark's common path
/// does;
/// 1 in 256 random sources is banned), then random /16../32 prefixes
/// outside 10.0.0.0/8.
pub fn bans(count: usize) -> BanSet {
    let mut rng = Rng::new(BANS_SEED);
    let mut set = BanSet::new();
    let base = u32::from(ATTACK_BASE);
    let slash24s = 1u32 << (ATTACK_RANDOM_BITS - 8);
    for index in 0..slash24s.min(count as u32) {
        let top = Ipv4Addr::from(base + (index << 8) + 255);
        if let Ok(net) = Ipv4Net::new(top, 32) {
            set.insert(IpNet::V4(net), NEVER);
        }
    }
    while set.len() < count {
        set.insert(IpNet::V4(random_v4(&mut rng, 16, 32)), NEVER);
    }
    set
}

//! The benchmark's world: a generator namespace (the internet: the flood
//! and the legitimate clients) and a host namespace (a real dockerd with a
//! published HTTP container and a container publishing the other ports),
//! joined by one veth pair. The host's end of the veth is the interface
//! every variant protects; its NAPI runs threaded on the receiver CPU.

use std::{net::Ipv4Addr, time::Instant};

use dockfw_tests::{
    docker::DockerEngine,
    netns::{NetNs, VethPair},
    trafficgen::mac_of,
};

use super::receiver;

/// The host's address on the veth (the published ports' address).
pub const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The legitimate client's address (the generator's veth).
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// Prefix length of the veth subnet: the flood's sources are on-link, so
/// reverse-path filtering has nothing to say about them.
const SUBNET_LEN: u8 = 16;
/// The flood's sources: random within this /17 ...
pub const ATTACK_NET: &str = "10.77.128.0/17";
/// ... base address and random low bits of that /17.
pub const ATTACK_BASE: Ipv4Addr = Ipv4Addr::new(10, 77, 128, 0);
/// Random low bits of a random-source flood (a /17: 32,768 sources).
pub const ATTACK_RANDOM_BITS: u8 = 15;
/// The fixed source of a fixed-source flood (inside [`ATTACK_NET`]).
pub const ATTACK_FIXED: Ipv4Addr = Ipv4Addr::new(10, 77, 200, 7);
/// The published port of the HTTP container (TCP and UDP).
pub const WEB_PORT: u16 = 8080;
/// First of the other published ports (one container publishes them all).
pub const BULK_FIRST: u16 = 10_000;
/// Docker's bridge (a subnet in the range this benchmark may use).
const DOCKER_BIP: &str = "10.210.100.1/24";
/// The HTTP server in the test image.
const WEB_CMD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];

/// Everything in the kernel and in Docker; fields drop in order (the engine
/// before the namespace it lives in).
pub struct Topology {
    /// dockerd with `web` and `bulk`.
    pub engine: DockerEngine,
    _veth: VethPair,
    /// The host namespace (dockerd, the protected interface).
    pub host: NetNs,
    /// The generator namespace.
    pub gen_ns: NetNs,
    /// The protected interface (host end of the veth).
    pub rx_dev: String,
    /// The generator's end.
    pub gen_dev: String,
    /// `gen_dev`'s ifindex in the generator namespace.
    pub gen_ifindex: u32,
    /// MAC of `rx_dev`.
    pub rx_mac: [u8; 6],
    /// MAC of `gen_dev`.
    pub gen_mac: [u8; 6],
    /// Published TCP ports in all (web's 8080 and the bulk range).
    pub published_tcp: u16,
}

/// A failed setup step.
pub type SetupError = String;

impl Topology {
    /// Builds it: namespaces, veth (GRO on, threaded NAPI), dockerd without
    /// the userland proxy (1,000 docker-proxy processes would not fit), the
    /// web container first (so its DNAT rule is the first in Docker's nat
    /// chain, as on a host where it was started first) and the bulk range.
    pub fn build(published_tcp: u16, coalesce_us: u32) -> Result<Self, SetupError> {
        // Interface names carry the pid: the NAPI kthread is found by name,
        // machine-wide (see `receiver::napi_thread`).
        let pid = std::process::id();
        let rx_dev = format!("dr{pid:x}");
        let gen_dev = format!("dg{pid:x}");
        let gen_ns = NetNs::new("mgen");
        let host = NetNs::new("mhost");
        let host_cidr = format!("{HOST_ADDR}/{SUBNET_LEN}");
        let client_cidr = format!("{CLIENT_ADDR}/{SUBNET_LEN}");
        let veth = VethPair::new(
            &gen_ns,
            &gen_dev,
            &[&client_cidr],
            &host,
            &rx_dev,
            &[&host_cidr],
        );
        // veth runs NAPI on the receiving side only with GRO on (or an XDP
        // program attached); netfilter-only variants need GRO.
        receiver::run_in(
            &host,
            "turning GRO on",
            "ethtool",
            &["-K", &rx_dev, "gro", "on"],
        )?;
        // The clients' skbs must queue in the same ring as the flood, as on
        // a NIC: veth hands a TSO-capable sender's skbs to the peer's
        // backlog on the *sender's* CPU instead (veth_xmit:
        // veth_skb_is_eligible_for_gro), so TSO goes off on the sending end.
        receiver::run_in(
            &gen_ns,
            "turning TSO off",
            "ethtool",
            &["-K", &gen_dev, "tso", "off"],
        )?;
        receiver::enable_threaded_napi(&host, &rx_dev, coalesce_us)?;
        receiver::pin_napi_thread(&rx_dev)?;
        let gen_ifindex = {
            let _inside = gen_ns.enter();
            dockfw::dataplane::attach::ifindex(&gen_dev)
                .ok_or_else(|| format!("{gen_dev} has no ifindex"))?
        };
        let rx_mac = mac_of(&host, &rx_dev);
        let gen_mac = mac_of(&gen_ns, &gen_dev);

        eprintln!("starting dockerd in {} ...", host.name());
        let mut engine = DockerEngine::start(&host, DOCKER_BIP);
        let config = engine.dir().join("daemon.json");
        std::fs::write(&config, "{\"userland-proxy\": false}\n")
            .map_err(|error| format!("writing {}: {error}", config.display()))?;
        engine.stop_daemon();
        engine.restart_daemon();
        let web_publish = [format!("{WEB_PORT}:80"), format!("{WEB_PORT}:80/udp")];
        let web_publish: Vec<&str> = web_publish.iter().map(String::as_str).collect();
        engine.run_container("web", &web_publish, WEB_CMD);
        let mut topology = Self {
            engine,
            _veth: veth,
            host,
            gen_ns,
            rx_dev,
            gen_dev,
            gen_ifindex,
            rx_mac,
            gen_mac,
            published_tcp: 1,
        };
        if published_tcp > 1 {
            let last = BULK_FIRST + (published_tcp - 2);
            let range = format!("{BULK_FIRST}-{last}:{BULK_FIRST}-{last}");
            eprintln!(
                "publishing {} more ports ({range}; Docker writes iptables rules one call at a time) ...",
                published_tcp - 1
            );
            let started = Instant::now();
            topology
                .engine
                .run_container("bulk", &[&range], &["sleep", "100000000"]);
            eprintln!("  took {:.1?}", started.elapsed());
            topology.published_tcp = published_tcp;
        }
        Ok(topology)
    }

    /// The last published bulk port, if any.
    pub fn bulk_last(&self) -> Option<u16> {
        (self.published_tcp > 1).then(|| BULK_FIRST + (self.published_tcp - 2))
    }

    /// Removes Docker's rules for the bulk range in one go before the
    /// engine is torn down: otherwise dockerd deletes them one iptables
    /// call at a time, each reading the whole ruleset (minutes). Its own
    /// deletions then fail fast on a small ruleset; the namespace goes
    /// right after.
    pub fn fast_teardown(&self) {
        for (table, chain) in [
            ("nat", "DOCKER"),
            ("filter", "DOCKER"),
            ("nat", "POSTROUTING"),
        ] {
            let _ = self
                .host
                .command("iptables")
                .args(["-t", table, "-F", chain])
                .output();
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Runs before the fields drop: the engine, then the veth and the
        // namespaces.
        self.fast_teardown();
    }
}

//! The world of the DOCKER-USER differential test: a host namespace with a
//! real dockerd (IPv4 and IPv6, ip6tables on), containers publishing
//! remapped ports, ranges, UDP and a port bound to one address, a client
//! namespace that sends raw frames, and a far namespace behind the host for
//! traffic to an address that is not the host's. Everything is removed on
//! drop.

pub mod rules;
pub mod wire;

use std::{
    net::IpAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use self::rules::{Pools, Service};
use crate::{
    docker::DockerEngine,
    netns::{NetNs, VethPair},
};

/// The host's first address (the attached interface).
pub const HOST_V4: &str = "10.210.61.1";
/// A second address of the host, also the one a port is bound to.
pub const HOST_V4_B: &str = "10.210.61.254";
/// The host's IPv6 address.
pub const HOST_V6: &str = "fd00:d0f:61::1";
/// The far namespace (routed through the host, not local to it).
pub const FAR_V4: &str = "10.210.63.5";
/// Its IPv6 address.
pub const FAR_V6: &str = "fd00:d0f:63::5";
/// The interface dockfw attaches to.
pub const HOST_IFACE: &str = "eth-h";
/// Docker's bridge network.
pub const BIP: &str = "10.210.60.1/24";

const DAEMON_JSON: &str = r#"{"ipv6": true, "fixed-cidr-v6": "fd00:d0f:60::/64", "experimental": true, "ip6tables": true}
"#;

/// Address sets the rule sets name; fixed for the whole run.
const IPSETS: &str = "\
create dfw-net4 hash:net family inet
add dfw-net4 198.51.100.0/24
add dfw-net4 198.51.100.128/26 nomatch
add dfw-net4 100.64.0.0/16
create dfw-ip4 hash:ip family inet
add dfw-ip4 203.0.113.5
add dfw-ip4 192.0.2.150
add dfw-ip4 10.210.61.77
create dfw-net6 hash:net family inet6
add dfw-net6 2001:db8:a::/48
add dfw-net6 2001:db8:a:1::/64 nomatch
";

/// Everything the test runs in.
pub struct World {
    /// dockerd (dropped first: it lives in `host`).
    pub engine: DockerEngine,
    _client_link: VethPair,
    _far_link: VethPair,
    /// The host namespace (dockerd, dockfw).
    pub host: NetNs,
    /// Where frames are sent from.
    pub client: NetNs,
    /// Behind the host.
    pub far: NetNs,
    /// IPv4 and IPv6 pools.
    pub pools: Vec<Pools>,
    /// Where to capture deliveries.
    pub capture_points: Vec<(PathBuf, String)>,
    /// MAC of the host's interface.
    pub host_mac: [u8; 6],
    /// MAC of the client's interface.
    pub client_mac: [u8; 6],
}

fn mac(ns: &NetNs, iface: &str) -> [u8; 6] {
    let output = ns.run_ok("read a MAC address", "ip", &["-j", "link", "show", iface]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("ip -j link: {error}"));
    let text = json[0]["address"].as_str().unwrap_or_default().to_owned();
    let bytes: Vec<u8> = text
        .split(':')
        .filter_map(|byte| u8::from_str_radix(byte, 16).ok())
        .collect();
    bytes
        .try_into()
        .unwrap_or_else(|_| panic!("MAC of {iface}: {text:?}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|error| panic!("bad address {text}: {error}"))
}

impl World {
    /// Builds it all; panics naming the step that failed.
    pub fn start() -> Self {
        crate::require_root("the DOCKER-USER differential test");
        let host = NetNs::new("mo-host");
        let client = NetNs::new("mo-client");
        let far = NetNs::new("mo-far");
        let client_link = VethPair::new(
            &host,
            HOST_IFACE,
            &["10.210.61.1/24", "10.210.61.254/24", "fd00:d0f:61::1/64"],
            &client,
            "eth-c",
            &["10.210.61.2/24", "fd00:d0f:61::2/64"],
        );
        let far_link = VethPair::new(
            &host,
            "eth-f",
            &["10.210.63.1/24", "fd00:d0f:63::1/64"],
            &far,
            "eth-f0",
            &["10.210.63.5/24", "fd00:d0f:63::5/64"],
        );
        for (key, value) in [
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
            ("net.ipv4.conf.eth-h.rp_filter", "0"),
        ] {
            host.run_ok("sysctl", "sysctl", &["-qw", &format!("{key}={value}")]);
        }
        let engine = DockerEngine::start_with_config(&host, BIP, DAEMON_JSON);
        engine.docker_ok(
            "create a second network",
            &[
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "10.210.62.0/24",
                "--subnet",
                "fd00:d0f:62::/64",
                "dfw-n2",
            ],
        );
        let sleep = ["sleep", "100000"];
        engine.run_container("web", &["8080:80", "8053:53/udp"], &sleep);
        engine.run_container("same", &["9000:9000", "9000:9000/udp"], &sleep);
        engine.run_container(
            "rng",
            &["7000-7003:7000-7003", "7100-7101:7100-7101/udp"],
            &sleep,
        );
        engine.run_container("bound", &["10.210.61.254:8443:443"], &sleep);
        engine.docker_ok(
            "run net2",
            &[
                "run",
                "-d",
                "--name",
                "net2",
                "--network",
                "dfw-n2",
                "-p",
                "9100:9100",
                crate::docker::TEST_IMAGE,
                "sleep",
                "100000",
            ],
        );
        // Docker 20.10 makes no DOCKER-USER in ip6tables; later engines do.
        host.run_ok(
            "ip6tables -N DOCKER-USER",
            "ip6tables",
            &["-N", "DOCKER-USER"],
        );
        host.run_ok(
            "jump to the IPv6 DOCKER-USER",
            "ip6tables",
            &["-I", "FORWARD", "1", "-j", "DOCKER-USER"],
        );
        let sets = host
            .command("ipset")
            .arg("restore")
            .stdin(std::process::Stdio::piped())
            .spawn();
        let mut sets = sets.unwrap_or_else(|error| panic!("ipset restore: {error}"));
        if let Some(mut stdin) = sets.stdin.take() {
            use std::io::Write as _;
            stdin
                .write_all(IPSETS.as_bytes())
                .unwrap_or_else(|error| panic!("feed ipset restore: {error}"));
        }
        let status = sets
            .wait()
            .unwrap_or_else(|error| panic!("ipset restore: {error}"));
        assert!(status.success(), "ipset restore failed");

        let mut capture_points = vec![(far.path(), "eth-f0".to_owned())];
        let mut services = [Vec::new(), Vec::new()];
        for name in ["web", "same", "rng", "bound", "net2"] {
            let inspect = engine.inspect(name);
            let pid = inspect["State"]["Pid"].as_u64().unwrap_or(0);
            let ns = PathBuf::from(format!("/proc/{pid}/ns/net"));
            // Replies stay inside the container: DOCKER-USER counts only
            // the test's packets, and the client needs no route back.
            // Neighbour discovery must go on, or the host never learns the
            // container's IPv6 link-layer address.
            let ndp = |kind: &str| {
                vec![
                    "ip6tables",
                    "-A",
                    "OUTPUT",
                    "-p",
                    "ipv6-icmp",
                    "-m",
                    "icmp6",
                    "--icmpv6-type",
                    kind,
                    "-j",
                    "ACCEPT",
                ]
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<String>>()
            };
            let commands = [
                ndp("neighbour-advertisement"),
                ndp("neighbour-solicitation"),
                ["ip6tables", "-A", "OUTPUT", "-j", "DROP"]
                    .map(str::to_owned)
                    .to_vec(),
                ["iptables", "-A", "OUTPUT", "-j", "DROP"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for command in commands {
                let output = std::process::Command::new("nsenter")
                    .arg(format!("--net={}", ns.display()))
                    .arg("--")
                    .args(&command)
                    .output()
                    .unwrap_or_else(|error| panic!("{command:?} in {name}: {error}"));
                assert!(output.status.success(), "{command:?} in {name}");
            }
            capture_points.push((ns, "eth0".to_owned()));
            let networks = &inspect["NetworkSettings"]["Networks"];
            let network = networks
                .as_object()
                .and_then(|map| map.values().next())
                .cloned()
                .unwrap_or_default();
            let v4 = ip(network["IPAddress"].as_str().unwrap_or("0.0.0.0"));
            let v6 = network["GlobalIPv6Address"].as_str().unwrap_or_default();
            let ports = inspect["NetworkSettings"]["Ports"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (key, bindings) in ports {
                let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
                let container_port: u16 = port.parse().unwrap_or(0);
                let proto: &'static str = if proto == "udp" { "udp" } else { "tcp" };
                for binding in bindings.as_array().into_iter().flatten() {
                    let host_ip = binding["HostIp"].as_str().unwrap_or_default();
                    let host_port: u16 = binding["HostPort"]
                        .as_str()
                        .unwrap_or("0")
                        .parse()
                        .unwrap_or(0);
                    let (family, host_addr, container_addr) = match host_ip {
                        "" | "0.0.0.0" => (0, None, v4),
                        "::" if !v6.is_empty() => (1, None, ip(v6)),
                        "::" => continue,
                        other => (usize::from(other.contains(':')), Some(ip(other)), v4),
                    };
                    services[family].push(Service {
                        proto,
                        host_port,
                        host_addr,
                        container_addr,
                        container_port,
                        container: name.to_owned(),
                    });
                }
            }
        }
        let [services_v4, services_v6] = services;
        let pools = vec![
            Pools {
                family: "ipv4",
                sources: [
                    "198.51.100.1",
                    "198.51.100.7",
                    "198.51.100.130",
                    "198.51.100.200",
                    "203.0.113.1",
                    "203.0.113.5",
                    "203.0.113.66",
                    "192.0.2.10",
                    "192.0.2.150",
                    "192.0.2.201",
                    "100.64.1.1",
                    "100.100.2.3",
                    "10.210.61.3",
                    "10.210.61.77",
                    "45.155.205.9",
                ]
                .map(ip)
                .to_vec(),
                prefixes: [
                    "198.51.100.0/24",
                    "198.51.100.128/25",
                    "203.0.113.0/24",
                    "192.0.2.0/25",
                    "100.64.0.0/10",
                    "10.210.61.0/24",
                    "0.0.0.0/1",
                    "198.51.100.7/32",
                    "203.0.113.5/32",
                ]
                .map(str::to_owned)
                .to_vec(),
                sets: vec!["dfw-net4".into(), "dfw-ip4".into()],
                local: vec![ip(HOST_V4), ip(HOST_V4_B)],
                far: ip(FAR_V4),
                services: services_v4,
                subnets: vec!["10.210.60.0/24".into(), "10.210.62.0/24".into()],
                iface: HOST_IFACE.into(),
            },
            Pools {
                family: "ipv6",
                sources: [
                    "2001:db8:a::1",
                    "2001:db8:a::2",
                    "2001:db8:a:1::5",
                    "2001:db8:b::1",
                    "2001:db8:bad::7",
                    "fd00:d0f:61::77",
                    "fd00:d0f:61::99",
                    "2001:db8:c::1",
                ]
                .map(ip)
                .to_vec(),
                prefixes: [
                    "2001:db8:a::/48",
                    "2001:db8::/32",
                    "2001:db8:bad::/48",
                    "fd00:d0f:61::/64",
                    "2001:db8:a:1::/64",
                ]
                .map(str::to_owned)
                .to_vec(),
                sets: vec!["dfw-net6".into()],
                local: vec![ip(HOST_V6)],
                far: ip(FAR_V6),
                services: services_v6,
                subnets: vec!["fd00:d0f:60::/64".into(), "fd00:d0f:62::/64".into()],
                iface: HOST_IFACE.into(),
            },
        ];
        let host_mac = mac(&host, HOST_IFACE);
        let client_mac = mac(&client, "eth-c");
        // Neighbour entries for the far side, so the first packets are not
        // lost to address resolution.
        for addr in [FAR_V4, FAR_V6] {
            let _ = host.run("ping", &["-c", "1", "-W", "1", addr]);
        }
        Self {
            engine,
            _client_link: client_link,
            _far_link: far_link,
            host,
            client,
            far,
            pools,
            capture_points,
            host_mac,
            client_mac,
        }
    }

    /// Installs a rule set with `iptables-restore --noflush` (or
    /// `ip6tables-restore`): one atomic commit.
    pub fn install(&self, family: &str, text: &str) {
        let tool = if family == "ipv4" {
            "iptables-restore"
        } else {
            "ip6tables-restore"
        };
        let mut child = self
            .host
            .command(tool)
            .arg("--noflush")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{tool}: {error}"));
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write as _;
            stdin
                .write_all(text.as_bytes())
                .unwrap_or_else(|error| panic!("feed {tool}: {error}"));
        }
        let output = child
            .wait_with_output()
            .unwrap_or_else(|error| panic!("{tool}: {error}"));
        assert!(
            output.status.success(),
            "{tool} refused the rule set: {}\n{text}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Packet counters of every rule of DOCKER-USER and the sub chains, by
    /// `CHAIN#POSITION`, read with `iptables-save -c`.
    pub fn counters(&self, family: &str) -> Vec<(String, String, u64)> {
        let tool = if family == "ipv4" {
            "iptables-save"
        } else {
            "ip6tables-save"
        };
        let output = self
            .host
            .run_ok("read counters", tool, &["-c", "-t", "filter"]);
        let mut positions = std::collections::BTreeMap::<String, usize>::new();
        let mut out = Vec::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Some(rest) = line.strip_prefix('[') else {
                continue;
            };
            let Some((counts, rule)) = rest.split_once("] ") else {
                continue;
            };
            let Some(chain) = rule.strip_prefix("-A ").and_then(|r| r.split(' ').next()) else {
                continue;
            };
            let position = positions.entry(chain.to_owned()).or_default();
            *position += 1;
            let packets = counts
                .split(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            out.push((format!("{chain}#{position}"), rule.to_owned(), packets));
        }
        out
    }

    /// Zeroes the filter counters.
    pub fn zero_counters(&self) {
        self.host.run_ok("zero counters", "iptables", &["-Z"]);
        self.host.run_ok("zero counters", "ip6tables", &["-Z"]);
    }

    /// Waits until `ready` holds, up to `timeout`; how long it took.
    pub fn wait(timeout: Duration, mut ready: impl FnMut() -> bool) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if ready() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

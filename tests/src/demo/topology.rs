//! The demo's world: an "internet" namespace (the legitimate client and the
//! attacker) and a Docker host namespace (a real dockerd with a published
//! HTTP container), joined by a veth pair. The host's end is the interface
//! dockfw protects; its receive work runs in a NAPI thread on a CPU of its
//! own, where it is measured.
//!
//! ```text
//!  dfw-demo-wan-PID-N                      dfw-demo-host-PID-N
//!  client 10.77.0.2       veth             10.77.0.1 ── Docker DNAT ── web (httpd)
//!  attacker 10.77.128.0/17 ─────────────── published 8080/tcp -> 80
//! ```

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use dockfw_tests::{
    docker::{DockerEngine, TEST_PAGE},
    netns::{NetNs, VethPair},
    trafficgen::mac_of,
};
use serde_json::json;

use super::{receiver, signals, state::StateDir};

/// The Docker host's address (where its ports are published).
pub const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The legitimate client.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The link's prefix length: the attacker's sources are on-link too, so
/// reverse-path filtering has nothing to say about them.
const LINK_PREFIX_LEN: u8 = 16;
/// The attacker's network, as the DOCKER-USER rule names it.
pub const ATTACK_NET: &str = "10.77.128.0/17";
/// Base of the spoofed sources: random low bits of [`ATTACK_NET`].
pub const ATTACK_BASE: Ipv4Addr = Ipv4Addr::new(10, 77, 128, 0);
/// Random low bits of a spoofed source (the /17: 32,768 addresses).
pub const ATTACK_RANDOM_BITS: u8 = 15;
/// The attacker's one fixed source (inside [`ATTACK_NET`]).
pub const ATTACK_FIXED: Ipv4Addr = Ipv4Addr::new(10, 77, 200, 66);
/// The published port and the container port behind it.
pub const WEB_PORT: u16 = 8080;
const CONTAINER_PORT: u16 = 80;
/// The container's name.
pub const WEB_CONTAINER: &str = "web";
/// Docker's bridge (the demo's share of 10.210.0.0/16 is 110-119).
const DOCKER_BIP: &str = "10.210.110.1/24";
/// The HTTP server of the test image.
const WEB_CMD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];
/// How long the container may take to answer its first request.
const WEB_READY: Duration = Duration::from_secs(20);

/// Everything in the kernel and in Docker. Fields drop in order: the
/// engine (containers, dockerd) before the veth and the namespaces.
pub struct Topology {
    /// dockerd with the `web` container.
    pub engine: DockerEngine,
    _veth: VethPair,
    /// The Docker host.
    pub host: NetNs,
    /// The internet: client and attacker.
    pub wan: NetNs,
    /// The protected interface (host end of the veth).
    pub host_dev: String,
    /// The internet's end.
    pub wan_dev: String,
    /// `wan_dev`'s ifindex in `wan`.
    pub wan_ifindex: u32,
    /// MAC of `host_dev`.
    pub host_mac: [u8; 6],
    /// MAC of `wan_dev`.
    pub wan_mac: [u8; 6],
}

impl Topology {
    /// Builds it for a flood of `rate` frames per second, writing each
    /// piece into `state` as it comes to exist; `progress` hears about the
    /// slow steps.
    pub fn build(
        state: &mut StateDir,
        rate: u64,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Self, String> {
        let pid = std::process::id();
        // The NAPI kthread is found by interface name, machine-wide: the
        // names carry the pid (and fit the 15-byte comm).
        let host_dev = format!("dmh{pid:x}");
        let wan_dev = format!("dmw{pid:x}");
        progress("creating the namespaces and the link");
        let wan = NetNs::new("demo-wan");
        state.push("namespaces", json!(wan.name()))?;
        let host = NetNs::new("demo-host");
        state.push("namespaces", json!(host.name()))?;
        let veth = VethPair::new(
            &wan,
            &wan_dev,
            &[&format!("{CLIENT_ADDR}/{LINK_PREFIX_LEN}")],
            &host,
            &host_dev,
            &[&format!("{HOST_ADDR}/{LINK_PREFIX_LEN}")],
        );
        // Like a NIC's, the host's receive ring must carry the client's
        // packets too, so that they share the flood's fate. veth hands an
        // skb to the receiving end's NAPI (GRO) ring only when the sender
        // does no TSO (`veth_skb_is_eligible_for_gro`); otherwise it goes to
        // the backlog of the sending CPU and never meets the flood.
        receiver::run_in(
            &wan,
            "turning TSO off",
            "ethtool",
            &["-K", &wan_dev, "tso", "off"],
        )?;
        receiver::enable_threaded_napi(&host, &host_dev, rate)?;
        receiver::pin_napi_thread(&host_dev)?;
        let wan_ifindex = {
            let _inside = wan.enter();
            dockfw::dataplane::attach::ifindex(&wan_dev)
                .ok_or_else(|| format!("{wan_dev} has no ifindex"))?
        };
        let host_mac = mac_of(&host, &host_dev);
        let wan_mac = mac_of(&wan, &wan_dev);
        signals::check()?;

        progress("starting dockerd (its own data root, in the host namespace)");
        let engine = DockerEngine::start(&host, DOCKER_BIP);
        state.record("engine_dir", json!(engine.dir()))?;
        signals::check()?;
        progress("starting the web container (publishes 8080 -> 80)");
        let publish = format!("{WEB_PORT}:{CONTAINER_PORT}");
        engine.run_container(WEB_CONTAINER, &[&publish], WEB_CMD);
        let topology = Self {
            engine,
            _veth: veth,
            host,
            wan,
            host_dev,
            wan_dev,
            wan_ifindex,
            host_mac,
            wan_mac,
        };
        topology.wait_for_web()?;
        Ok(topology)
    }

    /// The published URL the client requests.
    pub fn web_addr() -> SocketAddr {
        SocketAddr::from((HOST_ADDR, WEB_PORT))
    }

    /// Requests the page from the client's namespace until it comes back.
    fn wait_for_web(&self) -> Result<(), String> {
        let deadline = Instant::now() + WEB_READY;
        let _inside = self.wan.enter();
        loop {
            signals::check()?;
            if fetch(Self::web_addr(), Duration::from_secs(1)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the web container did not answer on {} within {WEB_READY:?}",
                    Self::web_addr()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One `GET /` from the calling thread's namespace, the page checked;
/// fails past `timeout` (connect, send and receive together).
pub fn fetch(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|error| format!("connect: {error}"))?;
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("timed out".into());
    }
    stream
        .set_read_timeout(Some(left))
        .and_then(|()| stream.set_write_timeout(Some(left)))
        .and_then(|()| stream.write_all(b"GET / HTTP/1.0\r\nHost: demo\r\n\r\n"))
        .map_err(|error| format!("send: {error}"))?;
    let mut body = Vec::new();
    stream
        .read_to_end(&mut body)
        .map_err(|error| format!("receive: {error}"))?;
    if Instant::now() > deadline {
        return Err("timed out".into());
    }
    if String::from_utf8_lossy(&body).contains(TEST_PAGE.trim()) {
        Ok(())
    } else {
        Err("unexpected response".into())
    }
}

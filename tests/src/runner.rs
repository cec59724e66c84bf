//! A loaded data plane with private maps, driven the way the daemon drives
//! it (compile -> write generation -> flip), and a verdict runner on top of
//! `BPF_PROG_TEST_RUN`. Three steps per test, as in cilium's `bpf/tests`:
//! build a packet, seed the maps, check verdict and counters.

use std::collections::BTreeMap;

use dockfw::{
    bans::BanSet,
    compile::{CompileInput, CompiledPolicy, StatOwner, StatRegistry, compile},
    dataplane::{
        Capacities, Dataplane, GenerationWriter, LoadOptions, TrieUsage,
        counters::{StatCounters, Totals, read_global, read_stat},
        local::{LocalUpdate, LocalWriter},
        testrun::{Program, run},
    },
    model::{BindingKey, ContainerRef, Family, Policy, Proto, PublishedPort},
};
use dockfw_common::Config;

use crate::frame::Frame;

/// A data plane under test.
pub struct Harness {
    /// The loaded programs and maps.
    pub dataplane: Dataplane,
    writer: GenerationWriter,
    local_writer: LocalWriter,
    /// Statistic ids, as the daemon keeps them.
    pub registry: StatRegistry,
    /// Bans in force.
    pub bans: BanSet,
    /// The last compiled policy.
    pub compiled: CompiledPolicy,
    /// Interfaces rules may name.
    pub ifaces: BTreeMap<String, u32>,
    /// Global audit mode for the next `apply`.
    pub audit: bool,
    /// Over every `apply` so far: ports whose source table went to a
    /// trie / to the hash and LPM tables, and the most nodes one generation
    /// used.
    pub tries: TrieUsage,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// Loads the data plane with default capacities.
    pub fn new() -> Self {
        Self::with_capacities(Capacities::default())
    }

    /// Loads the data plane with the given capacities.
    pub fn with_capacities(capacities: Capacities) -> Self {
        crate::require_root("loading the data plane");
        let options = LoadOptions {
            capacities,
            ..LoadOptions::default()
        };
        let mut dataplane = Dataplane::load(&options).unwrap_or_else(|error| {
            panic!("loading the data plane failed: {}", crate::chain(&error))
        });
        dataplane
            .maps
            .config
            .set(0, Config::default(), 0)
            .unwrap_or_else(|error| panic!("initialising DFW_CONFIG failed: {error}"));
        Self {
            dataplane,
            writer: GenerationWriter::new(),
            local_writer: LocalWriter::new(),
            registry: StatRegistry::default(),
            bans: BanSet::new(),
            compiled: CompiledPolicy::default(),
            ifaces: BTreeMap::new(),
            audit: false,
            tries: TrieUsage::default(),
        }
    }

    /// Compiles and activates `policy` over `ports`.
    pub fn apply(&mut self, policy: &Policy, ports: &[PublishedPort]) {
        let capacities = self
            .dataplane
            .maps
            .capacities()
            .unwrap_or_else(|error| panic!("reading map capacities failed: {error}"));
        let input = CompileInput {
            policy,
            ports,
            ifaces: &self.ifaces,
            audit: self.audit,
            stats_capacity: capacities.stats,
        };
        let compiled = compile(&input, &mut self.registry)
            .unwrap_or_else(|error| panic!("compiling the policy failed: {error}"));
        let fresh = self.registry.take_fresh();
        let applied = self
            .writer
            .apply(&mut self.dataplane.maps, &compiled, &fresh)
            .unwrap_or_else(|error| panic!("writing the generation failed: {error}"));
        self.tries.ports_in_tries += applied.tries.ports_in_tries;
        self.tries.ports_in_levels += applied.tries.ports_in_levels;
        self.tries.nodes = self.tries.nodes.max(applied.tries.nodes);
        self.compiled = compiled;
    }

    /// Makes `prefixes` the host's local addresses, as the daemon does from
    /// the local routing table; whether the maps changed.
    pub fn set_local(&mut self, prefixes: &[&str]) -> LocalUpdate {
        let prefixes: Vec<ipnet::IpNet> = prefixes
            .iter()
            .map(|net| {
                net.parse()
                    .unwrap_or_else(|error| panic!("bad test CIDR {net}: {error}"))
            })
            .collect();
        self.local_writer
            .write(&mut self.dataplane.maps, &prefixes)
            .unwrap_or_else(|error| panic!("writing the local addresses failed: {error}"))
    }

    /// Bans `net` until `expires_ns` (monotonic; `dockfw::bans::NEVER`).
    pub fn ban(&mut self, net: &str, expires_ns: u64) {
        let mut next = self.bans.clone();
        next.insert(
            net.parse()
                .unwrap_or_else(|error| panic!("bad test CIDR {net}: {error}")),
            expires_ns,
        );
        self.set_bans(next);
    }

    /// Lifts the ban of `net`.
    pub fn unban(&mut self, net: &str) {
        let mut next = self.bans.clone();
        next.remove(
            &net.parse()
                .unwrap_or_else(|error| panic!("bad test CIDR {net}: {error}")),
        );
        self.set_bans(next);
    }

    /// Moves the maps to `bans`.
    pub fn set_bans(&mut self, bans: BanSet) {
        dockfw::dataplane::bans::write_bans(&mut self.dataplane.maps, &self.bans, &bans)
            .unwrap_or_else(|error| panic!("writing bans failed: {error}"));
        self.bans = bans;
    }

    /// Runs a frame through `program` once; the verdict as an XDP code.
    pub fn verdict(&mut self, program: Program, frame: &[u8]) -> u32 {
        self.verdict_on(program, frame, None)
    }

    /// Runs a frame through `program` with an XDP ingress ifindex.
    pub fn verdict_on(&mut self, program: Program, frame: &[u8], ifindex: Option<u32>) -> u32 {
        let result = run(&mut self.dataplane, program, frame, ifindex, 1).unwrap_or_else(|error| {
            panic!("test run of {program:?} failed: {}", crate::chain(&error))
        });
        assert_ne!(
            result.verdict,
            dockfw_common::xdp_verdict::ABORTED,
            "{program:?} aborted on {frame:02x?}"
        );
        result.verdict
    }

    /// Runs a described frame through XDP.
    pub fn xdp(&mut self, frame: &Frame) -> u32 {
        self.verdict(Program::Xdp, &frame.build())
    }

    /// Runs a described frame through TC.
    pub fn tc(&mut self, frame: &Frame) -> u32 {
        self.verdict(Program::Tc, &frame.build())
    }

    /// The counters of a statistic owner.
    pub fn stat(&self, owner: &StatOwner) -> StatCounters {
        let id = self
            .registry
            .get(owner)
            .unwrap_or_else(|| panic!("no statistic id for {owner:?}"));
        read_stat(&self.dataplane.maps, id)
            .unwrap_or_else(|error| panic!("reading stat {id} failed: {error}"))
    }

    /// The counters of rule `name` on `key`.
    pub fn rule_stat(&self, key: BindingKey, name: &str) -> StatCounters {
        self.stat(&StatOwner::Rule(key, name.into()))
    }

    /// A global reason's counter.
    pub fn global(&self, reason: u8) -> Totals {
        read_global(&self.dataplane.maps, reason)
            .unwrap_or_else(|error| panic!("reading global counter {reason} failed: {error}"))
    }
}

/// A wildcard IPv4 TCP binding of `port` for `container`.
pub fn tcp4(port: u16, container: &str) -> PublishedPort {
    published(Family::V4, Proto::Tcp, None, port, container)
}

/// A published port.
pub fn published(
    family: Family,
    proto: Proto,
    addr: Option<&str>,
    port: u16,
    container: &str,
) -> PublishedPort {
    PublishedPort {
        key: BindingKey {
            family,
            proto,
            addr: addr.map(|addr| {
                addr.parse()
                    .unwrap_or_else(|error| panic!("bad test address {addr}: {error}"))
            }),
            port,
        },
        container: ContainerRef {
            id: format!("{container}0123456789abcdef"),
            name: container.into(),
            labels: BTreeMap::new(),
        },
        container_addr: None,
        container_port: port,
    }
}

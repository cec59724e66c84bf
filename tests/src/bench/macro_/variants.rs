//! The eight ways to drop the flood, in the order the benchmark runs them,
//! and what "installed" means for each: a guard that removes it again and
//! knows where its drops are counted.

use std::path::Path;

use dockfw::bans::BanSet;

use super::{
    daemon::{DockfwDaemon, Expect},
    netfilter::{Chain, IptablesRules, NftIngress},
    receiver,
    topology::Topology,
    xdp::{Floor, XDP_DROPS, XdpFilter},
};

/// A way to drop the flood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// iptables filter DOCKER-USER with `-m conntrack --ctorigdst*`.
    DockerUser,
    /// iptables raw PREROUTING.
    RawPrerouting,
    /// nftables netdev ingress.
    NftIngress,
    /// xdp-filter (xdp-tools), native XDP.
    XdpFilter,
    /// A native XDP program that drops everything.
    Floor,
    /// A minimal native XDP port matcher (a reference, not one of the
    /// issue's eight).
    Matcher,
    /// dockfw, native XDP.
    DockfwNative,
    /// dockfw, generic (skb) XDP.
    DockfwGeneric,
    /// dockfw, TC ingress.
    DockfwTc,
}

/// Every variant, in run order.
pub const ALL: [Variant; 9] = [
    Variant::DockerUser,
    Variant::RawPrerouting,
    Variant::NftIngress,
    Variant::XdpFilter,
    Variant::Floor,
    Variant::Matcher,
    Variant::DockfwNative,
    Variant::DockfwGeneric,
    Variant::DockfwTc,
];

impl Variant {
    /// Short name (command line, JSON, charts).
    pub fn key(self) -> &'static str {
        match self {
            Self::DockerUser => "docker-user",
            Self::RawPrerouting => "raw",
            Self::NftIngress => "nft-ingress",
            Self::XdpFilter => "xdp-filter",
            Self::Floor => "floor",
            Self::Matcher => "matcher",
            Self::DockfwNative => "dockfw-native",
            Self::DockfwGeneric => "dockfw-generic",
            Self::DockfwTc => "dockfw-tc",
        }
    }

    /// What the report calls it.
    pub fn label(self) -> &'static str {
        match self {
            Self::DockerUser => {
                "iptables DOCKER-USER (conntrack --ctorigdst, after conntrack + DNAT)"
            }
            Self::RawPrerouting => "iptables raw PREROUTING",
            Self::NftIngress => "nftables netdev ingress",
            Self::XdpFilter => "xdp-filter (native XDP)",
            Self::Floor => "native XDP drop-everything (the floor)",
            Self::Matcher => "minimal native XDP port matcher (reference)",
            Self::DockfwNative => "dockfw native XDP, realistic policy",
            Self::DockfwGeneric => "dockfw generic XDP, realistic policy",
            Self::DockfwTc => "dockfw TC ingress, realistic policy",
        }
    }

    fn dockfw_mode(self) -> Option<&'static str> {
        match self {
            Self::DockfwNative => Some("native"),
            Self::DockfwGeneric => Some("generic"),
            Self::DockfwTc => Some("tc"),
            _ => None,
        }
    }
}

/// What dockfw variants need.
pub struct DockfwInputs<'a> {
    /// The `dockfw` binary.
    pub bin: &'a Path,
    /// The policy file.
    pub policy: &'a Path,
    /// The bans to pre-populate.
    pub bans: &'a BanSet,
    /// Rules on the attacked port.
    pub rules: usize,
}

/// An installed variant; removed on drop.
pub enum Installed {
    /// iptables rules.
    Iptables(IptablesRules),
    /// The nftables table.
    Nft(NftIngress),
    /// xdp-filter.
    XdpFilter(XdpFilter),
    /// The floor.
    Floor(#[expect(dead_code, reason = "held for its Drop, which detaches the program")] Floor),
    /// The dockfw daemon.
    Dockfw(Box<DockfwDaemon>),
}

impl Installed {
    /// Sets `variant` up on the topology's protected interface, and pins
    /// the (possibly re-created) NAPI kthread; returns it with the kthread.
    pub fn install(
        variant: Variant,
        topology: &Topology,
        dockfw: &DockfwInputs<'_>,
    ) -> Result<(Self, u32), String> {
        let host = &topology.host;
        let dev = &topology.rx_dev;
        let installed = match variant {
            Variant::DockerUser => Self::Iptables(IptablesRules::install(host, Chain::DockerUser)?),
            Variant::RawPrerouting => {
                Self::Iptables(IptablesRules::install(host, Chain::RawPrerouting)?)
            }
            Variant::NftIngress => Self::Nft(NftIngress::install(host, dev)?),
            Variant::XdpFilter => Self::XdpFilter(XdpFilter::attach(host, dev)?),
            Variant::Floor => Self::Floor(Floor::attach(host, dev)?),
            Variant::Matcher => Self::Floor(Floor::attach_matcher(host, dev)?),
            Variant::DockfwNative | Variant::DockfwGeneric | Variant::DockfwTc => {
                let mode = variant.dockfw_mode().unwrap_or("native");
                let mut daemon = DockfwDaemon::start(
                    dockfw.bin,
                    host,
                    dev,
                    mode,
                    dockfw.policy,
                    &topology.engine.host_url(),
                    dockfw.bans,
                )?;
                daemon.wait_ready(&Expect {
                    tcp_ports: usize::from(topology.published_tcp),
                    rules_on_port: dockfw.rules,
                    bans: dockfw.bans.len(),
                })?;
                Self::Dockfw(Box::new(daemon))
            }
        };
        let napi = receiver::pin_napi_thread(dev)?;
        Ok((installed, napi))
    }

    /// Flood packets dropped so far, where this variant counts them.
    pub fn drops(&self, topology: &Topology) -> Result<u64, String> {
        match self {
            Self::Iptables(rules) => rules.packets(&topology.host),
            Self::Nft(table) => table.packets(&topology.host),
            Self::XdpFilter(_) | Self::Floor(_) => {
                receiver::ethtool_stat(&topology.host, &topology.rx_dev, XDP_DROPS)
            }
            Self::Dockfw(daemon) => daemon.drops(),
        }
    }

    /// What the variant's own counters say, for a failure message.
    pub fn counters(&self, topology: &Topology) -> String {
        let xdp = ["rx_queue_0_xdp_packets", XDP_DROPS]
            .map(|name| {
                let value = receiver::ethtool_stat(&topology.host, &topology.rx_dev, name);
                format!("{name} {}", value.unwrap_or_default())
            })
            .join(", ");
        match self {
            Self::Dockfw(daemon) => format!("{xdp}; dockfw: {}", daemon.counters()),
            _ => xdp,
        }
    }

    /// A note for the report (which program xdp-filter runs).
    pub fn note(&self) -> Option<String> {
        match self {
            Self::XdpFilter(filter) => Some(format!(
                "xdp-filter: the interface runs `{}` (`xdp-filter load --mode native` + `xdp-filter port`)",
                filter.program
            )),
            _ => None,
        }
    }
}

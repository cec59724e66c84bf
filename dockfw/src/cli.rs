//! The command line. Users and scripts rely on these names; `--help` on
//! every command explains it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::dataplane::{Capacities, RequestedMode};

/// Default pin directory on the BPF filesystem.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/dockfw";
/// Default directory for the control socket and daemon state.
pub const DEFAULT_RUN_DIR: &str = "/run/dockfw";
/// Default policy file (used when it exists).
pub const DEFAULT_POLICY: &str = "/etc/dockfw/policy.toml";
/// Default metrics address.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9469";

/// dockfw: drops and rate-limits traffic to Docker's published ports in
/// XDP/TC, before conntrack and DNAT, and leaves Docker's iptables in place
/// as the fallback.
#[derive(Debug, Parser)]
#[command(name = "dockfw", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the enforcer: attach to interfaces, follow Docker and the policy,
    /// serve metrics and the control socket.
    Run(Box<RunArgs>),
    /// Ban a source prefix at every published port (optionally for a while).
    Ban(BanArgs),
    /// Lift a ban.
    Unban(UnbanArgs),
    /// List the bans in force.
    Bans(ClientArgs),
    /// Show interfaces, policy generation, published ports, rules and
    /// counters.
    Status(StatusArgs),
    /// Validate a policy file without touching the kernel.
    Check(CheckArgs),
    /// Remove dockfw's programs, links and pinned maps.
    Detach(DetachArgs),
    /// Stream the sampled drop events of the running daemon, one per line.
    Events(EventsArgs),
    /// Live view of drop and pass rates per published port, reason and
    /// rule, and the heaviest sampled sources, refreshed like `top`.
    Top(TopArgs),
    /// Explain what dockfw does with a packet (or every packet of a
    /// capture): verdict, reason, rule, published port and container, and
    /// what netfilter does next. Runs the real data plane against the live
    /// maps without side effects.
    Trace(crate::trace::TraceArgs),
    /// Preview how the DOCKER-USER chain would be mirrored into the fast
    /// path (`--explain`): each rule, its position, what it becomes in XDP
    /// (published ports, action) or why it stays netfilter-only.
    Mirror(MirrorArgs),
}

/// Where the running daemon and its pins are.
#[derive(Clone, Debug, Args)]
pub struct ClientArgs {
    /// Directory of the daemon's control socket and state.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR, env = "DOCKFW_RUN_DIR")]
    pub run_dir: PathBuf,
    /// Pin directory (used directly when no daemon is running).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PIN_DIR, env = "DOCKFW_PIN_DIR")]
    pub pin_dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `dockfw ban`.
#[derive(Debug, Args)]
pub struct BanArgs {
    /// Source address or CIDR (IPv4 or IPv6), e.g. 198.51.100.0/24.
    pub cidr: ipnet::IpNet,
    /// Lift the ban after this long (e.g. 30s, 10m, 1h, 2d). Default: never.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `dockfw unban`.
#[derive(Debug, Args)]
pub struct UnbanArgs {
    /// The banned prefix, exactly as banned.
    pub cidr: ipnet::IpNet,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `dockfw status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `dockfw check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy file to validate.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
}

/// `dockfw detach`.
#[derive(Debug, Args)]
pub struct DetachArgs {
    /// Pin directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PIN_DIR, env = "DOCKFW_PIN_DIR")]
    pub pin_dir: PathBuf,
}

/// `dockfw events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print the events the daemon has buffered before the new ones.
    #[arg(long)]
    pub replay: bool,
    /// Exit after this many events.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `dockfw top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Time between refreshes (`1s`, `500ms`; a plain number is seconds).
    #[arg(
        short = 'd',
        long,
        value_name = "INTERVAL",
        default_value = "1s",
        value_parser = crate::top::command::parse_interval
    )]
    pub interval: Duration,
    /// Exit after this many frames.
    #[arg(short = 'n', long, value_name = "N")]
    pub iterations: Option<u64>,
    /// Print frames one after another without clearing the screen (for
    /// logs and pipes; also when stdout is not a terminal).
    #[arg(short = 'b', long)]
    pub batch: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `dockfw mirror`.
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// Explain the translation of DOCKER-USER without enforcing anything.
    #[arg(long)]
    pub explain: bool,
    /// Interface dockfw is (or would be) attached to, for `-i` conditions
    /// (repeatable). Default: the running daemon's interfaces.
    #[arg(long = "iface", value_name = "IFACE")]
    pub ifaces: Vec<String>,
    /// Docker engine URL. Default: $DOCKER_HOST, else
    /// unix:///var/run/docker.sock.
    #[arg(long, value_name = "URL")]
    pub docker_host: Option<String>,
    /// Also translate the supported -m limit / -m hashlimit patterns (as
    /// `dockfw run --mirror-rate-limits` does).
    #[arg(long)]
    pub rate_limits: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// How the daemon logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// `dockfw run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Interface to protect (repeatable): the one the internet reaches the
    /// host on.
    #[arg(long = "iface", value_name = "IFACE", required = true)]
    pub ifaces: Vec<String>,
    /// auto = native XDP, falling back to generic XDP with a warning;
    /// native / generic = that XDP mode only; tc = the TC ingress program.
    #[arg(long, value_name = "MODE", default_value = "auto", value_parser = parse_mode)]
    pub mode: RequestedMode,
    /// Policy file. Default: /etc/dockfw/policy.toml when it exists, else
    /// no file rules.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Docker engine URL (unix:///path or tcp://host:port). Default:
    /// $DOCKER_HOST, else unix:///var/run/docker.sock.
    #[arg(long, value_name = "URL")]
    pub docker_host: Option<String>,
    /// Where to serve Prometheus metrics.
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_METRICS_ADDR)]
    pub metrics_addr: SocketAddr,
    /// Pin directory on the BPF filesystem (maps and links live there, so a
    /// restart re-adopts them without a gap).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PIN_DIR)]
    pub pin_dir: PathBuf,
    /// Directory of the control socket (mode 0600) and daemon state.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    /// Count would-be drops and drop nothing.
    #[arg(long)]
    pub audit: bool,
    /// Replace an XDP program another tool attached to the interface.
    #[arg(long)]
    pub force: bool,
    /// Leave enforcement (attached, pinned) in place when stopped with
    /// SIGTERM/SIGINT; by default dockfw detaches cleanly (pinned maps,
    /// i.e. bans and rate-limit state, are kept for the next start either
    /// way; `dockfw detach` removes them).
    #[arg(long)]
    pub keep_on_exit: bool,
    /// Log format.
    #[arg(long, value_name = "FORMAT", default_value = "human")]
    pub log_format: LogFormat,
    /// Sampled drop events: at most this many per second per rule and port
    /// (0 disables events).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub events_per_second: u32,
    /// Mirror the DOCKER-USER chain into the fast path: drop in XDP what
    /// DOCKER-USER would drop, as far as it translates exactly (see `dockfw
    /// mirror --explain`); the chain keeps running in netfilter.
    #[arg(long)]
    pub mirror_docker_user: bool,
    /// With --mirror-docker-user: also turn `-m limit` / `-m hashlimit`
    /// patterns into XDP token buckets (they can disagree with netfilter's
    /// near the limit, so this is opt-in).
    #[arg(long, requires = "mirror_docker_user")]
    pub mirror_rate_limits: bool,
    #[command(flatten)]
    pub capacities: CapacityArgs,
}

/// Map capacities (apply when the maps are created; pinned maps keep theirs
/// until `dockfw detach`).
#[derive(Clone, Copy, Debug, Args)]
pub struct CapacityArgs {
    /// Published ports (per generation).
    #[arg(long, value_name = "N", default_value_t = dockfw_common::capacity::POLICIES / 2 - 1)]
    pub max_ports: u32,
    /// Rules over all ports (per generation).
    #[arg(long, value_name = "N", default_value_t = dockfw_common::capacity::RULES / 2)]
    pub max_rules: u32,
    /// Banned prefixes per family.
    #[arg(long, value_name = "N", default_value_t = dockfw_common::capacity::BANS_V4)]
    pub max_bans: u32,
    /// Rule source entries per family (both generations) for ports whose
    /// source tables do not fit the tries (--max-source-trie-nodes): IPv4
    /// prefixes expanded to /8, /16, /24 and /32 levels, IPv6 prefixes.
    #[arg(long, value_name = "N", default_value_t = dockfw_common::capacity::RULE_SOURCES_V4)]
    pub max_rule_sources: u32,
    /// Nodes of the rule-source tries, both generations (2 KiB each,
    /// allocated up front; an IPv4 /32 needs up to 3 new nodes, an IPv6 /64
    /// up to 7). Ports with identical source sets share one trie; a port
    /// whose trie does not fit uses hash (IPv4) or LPM-trie (IPv6) lookups
    /// instead of array lookups (slower; logged).
    #[arg(
        long,
        value_name = "N",
        default_value_t = dockfw_common::capacity::RULE_SOURCE_NODES,
        value_parser = clap::value_parser!(u32).range(2..=65_536)
    )]
    pub max_source_trie_nodes: u32,
    /// Per-source rate-limit buckets (least recently used are evicted).
    #[arg(long, value_name = "N", default_value_t = dockfw_common::capacity::RATE_SOURCES)]
    pub max_rate_sources: u32,
    /// Statistic ids (3 per port + 1 per rule and port).
    #[arg(long, value_name = "N", default_value_t = dockfw_common::capacity::STATS)]
    pub max_stats: u32,
}

impl CapacityArgs {
    /// The map capacities these arguments ask for.
    pub fn capacities(&self) -> Capacities {
        Capacities {
            policies: self.max_ports.saturating_add(1).saturating_mul(2),
            rules: self.max_rules.saturating_mul(2),
            port_addrs: self.max_ports,
            bans_v4: self.max_bans,
            bans_v6: self.max_bans,
            rule_sources_v4: self.max_rule_sources,
            rule_sources_v6: self.max_rule_sources,
            rule_source_nodes: self.max_source_trie_nodes,
            rate_sources: self.max_rate_sources,
            stats: self.max_stats,
            ..Capacities::default()
        }
    }
}

fn parse_mode(text: &str) -> Result<RequestedMode, String> {
    text.parse()
}

/// Parses `30s`, `10m`, `1h`, `2d`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration like 30s, 10m, 1h or 2d: {error}"))?;
    if duration.is_zero() {
        return Err("a ban duration must be longer than zero".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn documented_invocations_parse() {
        for line in [
            "dockfw run --iface eth0",
            "dockfw run --iface eth0 --iface eth1 --mode tc --policy /etc/dockfw/policy.toml --audit",
            "dockfw run --iface eth0 --mode generic --metrics-addr 0.0.0.0:9469 --pin-dir /sys/fs/bpf/x --keep-on-exit",
            "dockfw ban 198.51.100.0/24 --for 1h",
            "dockfw ban 2001:db8::/32",
            "dockfw unban 198.51.100.0/24",
            "dockfw bans --json",
            "dockfw status --json",
            "dockfw check --policy policy.toml",
            "dockfw detach",
            "dockfw events --json --replay --count 5",
            "dockfw top --interval 2s -n 3 --batch",
            "dockfw top -d 500ms --json",
            "dockfw run --iface eth0 --mirror-docker-user --mirror-rate-limits",
            "dockfw mirror --explain --json --iface eth0",
        ] {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Err(error) = Cli::try_parse_from(&words) {
                panic!("{line}: {error}");
            }
        }
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        for (line, needle) in [
            ("dockfw run", "--iface"),
            ("dockfw run --iface eth0 --mode turbo", "unknown mode"),
            ("dockfw ban 10.0.0.0/33", "invalid"),
            ("dockfw ban 10.0.0.0/8 --for soon", "not a duration"),
        ] {
            let words: Vec<&str> = line.split_whitespace().collect();
            let error = Cli::try_parse_from(&words).expect_err(line).to_string();
            assert!(error.contains(needle), "{line}: {error}");
        }
    }
}

//! The netfilter variants, written the way their documentation writes them,
//! each dropping the flood's sources to the published port:
//!
//! - `DOCKER-USER`, as Docker's documentation says to match a published
//!   port there: `-m conntrack --ctorigdst HOST --ctorigdstport PORT`. The
//!   packet has been through conntrack and DNAT (and the FIB) by then.
//! - raw PREROUTING: before conntrack, so on the pre-DNAT port.
//! - nftables netdev ingress: right after the driver (and GRO).
//!
//! Rules carry a comment so their counters can be read back (iptables-nft
//! keeps comments as rule metadata: no run-time cost).

use dockfw_tests::netns::NetNs;

use super::{
    receiver::run_in,
    topology::{ATTACK_NET, HOST_ADDR, WEB_PORT},
};

/// Comment on every rule this benchmark adds.
const COMMENT: &str = "dfw-bench";
/// nftables table of the ingress variant.
const NFT_TABLE: &str = "dfwbench";

/// Where the iptables rules go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// filter DOCKER-USER, post-DNAT, matched by conntrack's original tuple.
    DockerUser,
    /// raw PREROUTING, pre-DNAT.
    RawPrerouting,
    /// mangle PREROUTING, counting only (conntrack's NEW state).
    ConntrackProbe,
}

impl Chain {
    fn table_and_chain(self) -> (&'static str, &'static str) {
        match self {
            Self::DockerUser => ("filter", "DOCKER-USER"),
            Self::RawPrerouting => ("raw", "PREROUTING"),
            Self::ConntrackProbe => ("mangle", "PREROUTING"),
        }
    }

    fn rules(self) -> Vec<Vec<String>> {
        let host = HOST_ADDR.to_string();
        let port = WEB_PORT.to_string();
        let mut rules = Vec::new();
        for proto in ["udp", "tcp"] {
            let mut rule: Vec<String> =
                vec!["-s".into(), ATTACK_NET.into(), "-p".into(), proto.into()];
            match self {
                Self::DockerUser => rule.extend(
                    [
                        "-m",
                        "conntrack",
                        "--ctorigdst",
                        &host,
                        "--ctorigdstport",
                        &port,
                    ]
                    .map(String::from),
                ),
                Self::RawPrerouting => {
                    rule.extend(["-d", &host, "--dport", &port].map(String::from));
                }
                Self::ConntrackProbe => {
                    rule.extend(["-m", "conntrack", "--ctstate", "NEW"].map(String::from));
                }
            }
            rule.extend(["-m", "comment", "--comment", COMMENT].map(String::from));
            if self != Self::ConntrackProbe {
                rule.extend(["-j", "DROP"].map(String::from));
            }
            rules.push(rule);
        }
        rules
    }
}

/// iptables rules in one chain; removed on drop.
pub struct IptablesRules {
    ns: std::path::PathBuf,
    chain: Chain,
    inserted: Vec<Vec<String>>,
}

impl IptablesRules {
    /// Inserts the rules of `chain` at its top.
    pub fn install(ns: &NetNs, chain: Chain) -> Result<Self, String> {
        let (table, name) = chain.table_and_chain();
        let mut installed = Self {
            ns: ns.path(),
            chain,
            inserted: Vec::new(),
        };
        for rule in chain.rules() {
            let mut args = vec!["-w", "-t", table, "-I", name];
            args.extend(rule.iter().map(String::as_str));
            run_in(ns, "inserting an iptables rule", "iptables", &args)?;
            installed.inserted.push(rule);
        }
        Ok(installed)
    }

    /// Packets the rules matched so far.
    pub fn packets(&self, ns: &NetNs) -> Result<u64, String> {
        let (table, name) = self.chain.table_and_chain();
        let text = run_in(
            ns,
            "reading iptables counters",
            "iptables",
            &["-w", "-t", table, "-L", name, "-v", "-x", "-n"],
        )?;
        Ok(text
            .lines()
            .filter(|line| line.contains(COMMENT))
            .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
            .sum())
    }
}

impl Drop for IptablesRules {
    fn drop(&mut self) {
        let (table, name) = self.chain.table_and_chain();
        for rule in &self.inserted {
            let result = std::process::Command::new("nsenter")
                .arg(format!("--net={}", self.ns.display()))
                .args(["--", "iptables", "-w", "-t", table, "-D", name])
                .args(rule)
                .output();
            if let Ok(output) = result
                && !output.status.success()
            {
                eprintln!(
                    "cleanup: iptables -D {name}: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
    }
}

/// An nftables netdev table with an ingress chain on the protected
/// interface; deleted on drop.
pub struct NftIngress {
    ns: std::path::PathBuf,
}

impl NftIngress {
    /// Creates the table: drop (and count) the flood's sources to the port.
    pub fn install(ns: &NetNs, dev: &str) -> Result<Self, String> {
        let script = format!(
            "table netdev {NFT_TABLE} {{\n\
             \tchain ingress {{\n\
             \t\ttype filter hook ingress device \"{dev}\" priority -500; policy accept;\n\
             \t\tip saddr {ATTACK_NET} ip daddr {HOST_ADDR} udp dport {WEB_PORT} counter drop\n\
             \t\tip saddr {ATTACK_NET} ip daddr {HOST_ADDR} tcp dport {WEB_PORT} counter drop\n\
             \t}}\n\
             }}\n"
        );
        let path = std::env::temp_dir().join(format!("dfw-bench-nft-{}.nft", std::process::id()));
        std::fs::write(&path, script)
            .map_err(|error| format!("writing {}: {error}", path.display()))?;
        let file = path.display().to_string();
        let result = run_in(ns, "loading the nftables table", "nft", &["-f", &file]);
        let _ = std::fs::remove_file(&path);
        result?;
        Ok(Self { ns: ns.path() })
    }

    /// Packets the drop rules counted.
    pub fn packets(&self, ns: &NetNs) -> Result<u64, String> {
        let text = run_in(
            ns,
            "reading nftables counters",
            "nft",
            &["list", "table", "netdev", NFT_TABLE],
        )?;
        Ok(text
            .split("counter packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum())
    }
}

impl Drop for NftIngress {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nsenter")
            .arg(format!("--net={}", self.ns.display()))
            .args(["--", "nft", "delete", "table", "netdev", NFT_TABLE])
            .output();
    }
}

//! `dockfw trace` arguments: the packet to build (or the capture to replay)
//! and where the daemon is.

use std::{fmt, net::IpAddr, path::PathBuf, str::FromStr};

use clap::Args;

use crate::{cli::ClientArgs, model::Proto};

/// `dockfw trace`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("input").required(true).args(["to", "pcap"])
))]
pub struct TraceArgs {
    /// Source of the packet: ADDR or ADDR:PORT (IPv6: [ADDR]:PORT). The
    /// source port defaults to 49152.
    #[arg(long, value_name = "ADDR[:PORT]", requires = "to")]
    pub from: Option<Source>,
    /// Destination of the packet as the host receives it, before DNAT:
    /// ADDR:PORT/PROTO, e.g. 192.0.2.1:8080/tcp or [2001:db8::1]:443/tcp.
    #[arg(long, value_name = "ADDR:PORT/PROTO", requires = "from")]
    pub to: Option<Destination>,
    /// Make the TCP packet a connection attempt (SYN); without it the packet
    /// is an ACK of an established connection.
    #[arg(long, requires = "to")]
    pub syn: bool,
    /// The packet arrives on this interface (rules with an `iface`
    /// condition see it). Default: no interface dockfw is attached to.
    #[arg(long, value_name = "IFACE")]
    pub iface: Option<String>,
    /// Add an 802.1Q VLAN tag with this id (1-4094).
    #[arg(long, value_name = "ID", requires = "to", value_parser = clap::value_parser!(u16).range(1..=4094))]
    pub vlan: Option<u16>,
    /// Trace every packet of a capture (pcap or pcapng) and print a
    /// per-verdict summary: yesterday's attack against today's policy.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from", "to", "syn", "vlan"])]
    pub pcap: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The source port a traced packet has unless `--from` gives one: the first
/// port of the dynamic range, where clients' ephemeral ports come from.
pub const DEFAULT_SOURCE_PORT: u16 = 49152;

/// `--from`: an address with an optional port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// Address.
    pub addr: IpAddr,
    /// Port, if given.
    pub port: Option<u16>,
}

/// `--to`: address, port and protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination {
    /// Address (the host's, before DNAT).
    pub addr: IpAddr,
    /// Port (the published host port).
    pub port: u16,
    /// Protocol.
    pub proto: Proto,
}

/// Splits `ADDR`, `ADDR:PORT`, `[V6]`, `[V6]:PORT` or a bare IPv6 address.
fn split_host_port(text: &str) -> Result<(IpAddr, Option<&str>), String> {
    let not_address = || format!("{text:?} is not ADDR or ADDR:PORT (IPv6: [ADDR]:PORT)");
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(not_address)?;
        let addr = addr.parse().map_err(|_| not_address())?;
        return match after {
            "" => Ok((addr, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((addr, Some(port))),
                None => Err(not_address()),
            },
        };
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok((addr, None));
    }
    let (addr, port) = text.rsplit_once(':').ok_or_else(not_address)?;
    let addr: IpAddr = addr.parse().map_err(|_| not_address())?;
    if addr.is_ipv6() {
        return Err(format!(
            "{text:?}: write an IPv6 address with a port as [ADDR]:PORT"
        ));
    }
    Ok((addr, Some(port)))
}

fn parse_port(text: &str, what: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{what} {text:?} is not a port 1-65535")),
        Ok(port) => Ok(port),
    }
}

impl FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, port) = split_host_port(text.trim())?;
        let port = port
            .map(|port| parse_port(port, "source port"))
            .transpose()?;
        Ok(Self { addr, port })
    }
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let usage = || {
            format!(
                "{text:?} is not ADDR:PORT/PROTO, e.g. 192.0.2.1:8080/tcp or [2001:db8::1]:443/udp"
            )
        };
        let (endpoint, proto) = text.rsplit_once('/').ok_or_else(usage)?;
        let proto: Proto = proto.parse()?;
        let (addr, port) = split_host_port(endpoint)?;
        let port = port.ok_or_else(|| match addr {
            IpAddr::V6(_) => format!("{text:?}: write an IPv6 destination as [ADDR]:PORT/PROTO"),
            IpAddr::V4(_) => usage(),
        })?;
        let port = parse_port(port, "destination port")?;
        Ok(Self { addr, port, proto })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(addr) => write!(f, "{addr}:{}/{}", self.port, self.proto),
            IpAddr::V6(addr) => write!(f, "[{addr}]:{}/{}", self.port, self.proto),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::Cli;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(line.split_whitespace())
    }

    #[test]
    fn the_command_line_takes_a_packet_or_a_capture() {
        for line in [
            "dockfw trace --from 198.51.100.7 --to 192.0.2.1:8080/tcp --syn",
            "dockfw trace --from [2001:db8::7]:5000 --to [2001:db8::1]:53/udp --vlan 10 --json",
            "dockfw trace --from 198.51.100.7 --to 192.0.2.1:8080/tcp --iface eth0",
            "dockfw trace --pcap attack.pcap",
            "dockfw trace --pcap attack.pcapng --iface eth0 --json",
        ] {
            if let Err(error) = parse(line) {
                panic!("{line}: {error}");
            }
        }
        for (line, needle) in [
            ("dockfw trace", "required"),
            ("dockfw trace --from 198.51.100.7", "--to"),
            ("dockfw trace --to 192.0.2.1:80/tcp", "--from"),
            (
                "dockfw trace --pcap a.pcap --from 198.51.100.7",
                "cannot be used with",
            ),
            (
                "dockfw trace --from 198.51.100.7 --to 192.0.2.1:80/tcp --vlan 4095",
                "4095",
            ),
            (
                "dockfw trace --from web --to 192.0.2.1:80/tcp",
                "is not ADDR",
            ),
        ] {
            let error = parse(line).map(|_| ()).expect_err(line).to_string();
            assert!(error.contains(needle), "{line}: {error}");
        }
    }

    #[test]
    fn sources_parse_with_and_without_ports() {
        let cases = [
            ("198.51.100.7", "198.51.100.7", None),
            ("198.51.100.7:1234", "198.51.100.7", Some(1234)),
            ("2001:db8::7", "2001:db8::7", None),
            ("[2001:db8::7]", "2001:db8::7", None),
            ("[2001:db8::7]:53", "2001:db8::7", Some(53)),
        ];
        for (text, addr, port) in cases {
            let source: Source = text.parse().unwrap();
            assert_eq!(source.addr, addr.parse::<IpAddr>().unwrap(), "{text}");
            assert_eq!(source.port, port, "{text}");
        }
    }

    #[test]
    fn destinations_need_port_and_protocol() {
        let to: Destination = "192.0.2.1:8080/tcp".parse().unwrap();
        assert_eq!((to.port, to.proto), (8080, Proto::Tcp));
        let to: Destination = "[2001:db8::1]:443/UDP".parse().unwrap();
        assert_eq!((to.port, to.proto), (443, Proto::Udp));
        assert_eq!(to.to_string(), "[2001:db8::1]:443/udp");
        for (text, needle) in [
            ("192.0.2.1:8080", "is not ADDR:PORT/PROTO"),
            ("192.0.2.1/tcp", "is not ADDR:PORT/PROTO"),
            ("192.0.2.1:0/tcp", "not a port 1-65535"),
            ("192.0.2.1:80/icmp", "unknown protocol"),
            ("2001:db8::1:80/tcp", "[ADDR]:PORT"),
            ("web:80/tcp", "is not ADDR or ADDR:PORT"),
        ] {
            let error = text.parse::<Destination>().unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}

//! The thin adapter: runs `iptables-save`, `ip6tables-save`, `ipset save`
//! (and `nft list tables` when there is no DOCKER-USER) with fixed argument
//! lists, no shell, and reads the host's addresses and the interfaces
//! stacked on the attached ones. Everything it returns is plain text and
//! data for the pure translation.

use std::{
    collections::BTreeSet,
    hash::{Hash, Hasher},
    io::ErrorKind,
    net::IpAddr,
    path::Path,
    process::Command,
};

use super::{MirrorInput, save::normalize};
use crate::model::PublishedPort;

/// Interfaces stacked on an attached one are followed this deep.
const MAX_STACK: usize = 4;

/// Why a command gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// It could not be started.
    #[error("running {command}: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It failed.
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        /// The command.
        command: String,
        /// Exit status.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
}

/// One reading of everything the translation needs besides Docker's ports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// `iptables-save` output, normalized (`None`: unreadable).
    pub v4_save: Option<String>,
    /// `ip6tables-save` output, normalized.
    pub v6_save: Option<String>,
    /// `ipset save` output (empty without ipset).
    pub ipsets: String,
    /// The host's addresses, sorted.
    pub local_addrs: Vec<IpAddr>,
    /// Attached interfaces and the names their traffic may have in
    /// netfilter.
    pub ifaces: Vec<(String, BTreeSet<String>)>,
    /// Docker's nftables backend is in use.
    pub nftables_backend: bool,
    /// What could not be read.
    pub errors: Vec<String>,
}

fn run(program: &str, args: &[&str]) -> Result<String, SourceError> {
    let command = format!("{program} {}", args.join(" ")).trim().to_owned();
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| SourceError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(SourceError::Failed {
            command,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl Snapshot {
    /// Reads everything, in the calling thread's network namespace, for
    /// the attached interfaces `ifaces`.
    pub fn read(ifaces: &[String]) -> Self {
        let mut errors = Vec::new();
        let mut save = |program: &str| match run(program, &[]) {
            Ok(text) => Some(normalize(&text)),
            Err(error) => {
                errors.push(error.to_string());
                None
            }
        };
        let v4_save = save("iptables-save");
        let v6_save = save("ip6tables-save");
        let ipsets = match run("ipset", &["save"]) {
            Ok(text) => text,
            Err(SourceError::Spawn { source, .. }) if source.kind() == ErrorKind::NotFound => {
                String::new()
            }
            Err(error) => {
                errors.push(error.to_string());
                String::new()
            }
        };
        let has_docker_user = v4_save
            .as_deref()
            .is_some_and(|text| text.contains(":DOCKER-USER "));
        let nftables_backend = !has_docker_user
            && run("nft", &["list", "tables"]).is_ok_and(|text| {
                text.lines()
                    .any(|line| line.trim() == "table ip docker-bridges")
            });
        let ifaces: Vec<(String, BTreeSet<String>)> = ifaces
            .iter()
            .map(|iface| (iface.clone(), in_names(Path::new("/sys/class/net"), iface)))
            .collect();
        let attached: BTreeSet<&str> = ifaces
            .iter()
            .flat_map(|(_, names)| names.iter().map(String::as_str))
            .collect();
        let mut local_addrs: Vec<IpAddr> = local_addresses()
            .unwrap_or_else(|error| {
                errors.push(format!("reading the host's addresses: {error}"));
                Vec::new()
            })
            .into_iter()
            .filter(|(iface, addr)| reachable(addr, attached.contains(iface.as_str())))
            .map(|(_, addr)| addr)
            .collect();
        local_addrs.sort_unstable();
        local_addrs.dedup();
        Self {
            v4_save,
            v6_save,
            ipsets,
            local_addrs,
            ifaces,
            nftables_backend,
            errors,
        }
    }

    /// A hash of the content, for change detection.
    pub fn digest(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }

    /// The translation's input over these readings and `ports`.
    pub fn input<'a>(&'a self, ports: &'a [PublishedPort], rate_limits: bool) -> MirrorInput<'a> {
        MirrorInput {
            v4_save: self.v4_save.as_deref(),
            v6_save: self.v6_save.as_deref(),
            ipsets: &self.ipsets,
            ports,
            local_addrs: &self.local_addrs,
            ifaces: &self.ifaces,
            rate_limits,
            nftables_backend: self.nftables_backend,
            errors: &self.errors,
        }
    }
}

/// `iface` and every device stacked on it (`upper_*` links in sysfs:
/// VLANs, its bridge or bond, and theirs).
pub fn in_names(sysfs: &Path, iface: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::from([iface.to_owned()]);
    let mut frontier = vec![iface.to_owned()];
    for _ in 0..MAX_STACK {
        let mut next = Vec::new();
        for name in &frontier {
            let Ok(entries) = std::fs::read_dir(sysfs.join(name)) else {
                continue;
            };
            for entry in entries.flatten() {
                let file = entry.file_name();
                let Some(upper) = file.to_str().and_then(|file| file.strip_prefix("upper_")) else {
                    continue;
                };
                if names.insert(upper.to_owned()) {
                    next.push(upper.to_owned());
                }
            }
        }
        frontier = next;
    }
    names
}

/// Whether traffic arriving on an attached interface can be addressed to
/// `addr` and be taken as local: an IPv6 link-local address only on the
/// interface it belongs to, and never `::1` (IPv6 drops it from any other
/// device before netfilter). Leaving an address out only leaves its traffic
/// to netfilter.
fn reachable(addr: &IpAddr, on_attached: bool) -> bool {
    match addr {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => {
            !v6.is_loopback() && (on_attached || (v6.segments()[0] & 0xffc0) != 0xfe80)
        }
    }
}

/// The addresses configured on the host's interfaces, with the interface
/// (what `addrtype LOCAL` matches, routes of type `local` aside).
pub fn local_addresses() -> std::io::Result<Vec<(String, IpAddr)>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut addrs = Vec::new();
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        // SAFETY: ifa_name is a NUL-terminated string of the node.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.ifa_name) }
            .to_string_lossy()
            .into_owned();
        if !entry.ifa_addr.is_null() {
            // SAFETY: a non-null ifa_addr points to a sockaddr of its family.
            let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: AF_INET addresses are sockaddr_in.
                let sin = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in>() };
                addrs.push((name, IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes())));
            } else if family == libc::AF_INET6 {
                // SAFETY: AF_INET6 addresses are sockaddr_in6.
                let sin6 = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in6>() };
                addrs.push((name, IpAddr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: freeing the list getifaddrs allocated, once.
    unsafe { libc::freeifaddrs(list) };
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_devices_are_followed() {
        let dir = std::env::temp_dir().join(format!("dfw-mirror-sysfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (device, uppers) in [("eth0", &["eth0.100", "br0"][..]), ("br0", &["br0.5"][..])] {
            let path = dir.join(device);
            std::fs::create_dir_all(&path).unwrap();
            for upper in uppers {
                std::fs::write(path.join(format!("upper_{upper}")), "").unwrap();
            }
        }
        let names = in_names(&dir, "eth0");
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["br0", "br0.5", "eth0", "eth0.100"]
        );
        assert_eq!(in_names(&dir, "lonely").len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn loopback_is_local() {
        let addrs = local_addresses().unwrap();
        assert!(
            addrs
                .iter()
                .any(|(name, addr)| name == "lo" && addr.is_loopback()),
            "{addrs:?}"
        );
        assert!(!reachable(&"::1".parse().unwrap(), true));
        assert!(!reachable(&"fe80::1".parse().unwrap(), false));
        assert!(reachable(&"fe80::1".parse().unwrap(), true));
        assert!(reachable(&"127.0.0.1".parse().unwrap(), false));
    }
}

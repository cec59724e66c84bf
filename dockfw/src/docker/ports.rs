//! From one container's inspect response to the ports Docker publishes for
//! it, in both views: the pre-DNAT key the data plane matches and the
//! container address and port behind it. Pure: no I/O.
//!
//! Docker's `NetworkSettings.Ports` maps a container port (`80/tcp`,
//! sometimes a range `9000-9002/udp`) to its host bindings. Engines expand
//! `-p 9000-9002:9000-9002` into one entry per port; a range key whose host
//! range has the same length is expanded here too. Docker 20.10 lists one
//! `-p 8080:80` twice, once with host IP `0.0.0.0` and once with `::`: those
//! are two keys (IPv4 and IPv6 wildcards) and both are kept.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
};

use bollard::models::{
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, EndpointSettings,
    PortBinding,
};
use tracing::{debug, warn};

use crate::model::{BindingKey, ContainerRef, Family, Proto, PublishedPort};

/// `HostConfig.NetworkMode` of a container on the default bridge.
const DEFAULT_NETWORK_MODE: &str = "default";
/// Name of Docker's default bridge network in `NetworkSettings.Networks`.
const DEFAULT_BRIDGE: &str = "bridge";

/// A binding that cannot be turned into a [`PublishedPort`]; logged and
/// skipped, the container's other bindings still count.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum BindingError {
    /// The container-port key is not `PORT[-PORT][/PROTO]`.
    #[error("container port {key:?} is not PORT[-PORT][/tcp|udp|sctp]")]
    ContainerPort { key: String },
    /// The host port is not `PORT[-PORT]`.
    #[error("host port {port:?} of {key} is not PORT[-PORT]")]
    HostPort { key: String, port: String },
    /// The host port range and the container port range differ in length.
    #[error("host ports {port} and container ports {key} differ in count")]
    RangeMismatch { key: String, port: String },
    /// The host IP is not an address.
    #[error("host IP {ip:?} of {key} is not an IP address")]
    HostIp { key: String, ip: String },
}

/// Every port Docker publishes for this container, sorted by key.
///
/// A container that is not running (created, restarting, exited, dead,
/// being removed) publishes nothing: Docker removes its DNAT rules when it
/// stops. A paused container keeps its ports: its DNAT rules stay. SCTP
/// bindings are ignored (the data plane matches TCP and UDP). Bindings that
/// cannot be parsed are logged and skipped.
pub fn published_ports(inspect: &ContainerInspectResponse) -> Vec<PublishedPort> {
    let Some(id) = inspect.id.as_deref().filter(|id| !id.is_empty()) else {
        warn!("container inspect response without an id; ignoring it");
        return Vec::new();
    };
    if !keeps_ports(inspect.state.as_ref()) {
        return Vec::new();
    }
    let Some(port_map) = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
    else {
        return Vec::new();
    };
    let container = ContainerRef {
        id: id.to_owned(),
        name: inspect
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        labels: inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .map(|labels| labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    };
    let networks = ordered_networks(inspect);

    let mut ports = Vec::new();
    for (key, bindings) in port_map {
        // `null` bindings: the port is exposed, not published.
        let Some(bindings) = bindings else { continue };
        for binding in bindings {
            match expand(key, binding) {
                Ok(entries) => {
                    ports.extend(
                        entries
                            .into_iter()
                            .map(|(key, container_port)| PublishedPort {
                                key,
                                container: container.clone(),
                                container_addr: container_addr(&networks, key.family),
                                container_port,
                            }),
                    )
                }
                Err(Skip::Sctp) => {
                    debug!(container = %container.name, key, "ignoring SCTP binding")
                }
                Err(Skip::Unallocated) => {
                    debug!(container = %container.name, key, "host port not allocated yet")
                }
                Err(Skip::Invalid(error)) => {
                    warn!(container = %container.name, %error, "ignoring a published port")
                }
            }
        }
    }
    ports.sort_by_key(|p| (p.key, p.container_port));
    ports.dedup();
    ports
}

/// Whether Docker keeps DNAT rules for a container in this state.
fn keeps_ports(state: Option<&ContainerState>) -> bool {
    let Some(state) = state else { return false };
    match state.status {
        // A container being stopped still runs and keeps its DNAT rules
        // until it dies (newer engines report `stopping`).
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::STOPPING,
        ) => true,
        // Between two attempts of a restart policy the network is released.
        Some(
            ContainerStateStatusEnum::CREATED
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::REMOVING
            | ContainerStateStatusEnum::EXITED
            | ContainerStateStatusEnum::DEAD,
        ) => false,
        Some(ContainerStateStatusEnum::EMPTY) | None => {
            state.running == Some(true) && state.restarting != Some(true)
        }
    }
}

/// Why a binding yields no port.
enum Skip {
    /// SCTP, which the data plane does not match.
    Sctp,
    /// `HostPort` empty: the engine has not picked a port yet.
    Unallocated,
    /// Malformed.
    Invalid(BindingError),
}

/// One binding of one container-port key, as (pre-DNAT key, container port)
/// pairs: one pair, or one per port of a range.
fn expand(key: &str, binding: &PortBinding) -> Result<Vec<(BindingKey, u16)>, Skip> {
    let invalid_key = || {
        Skip::Invalid(BindingError::ContainerPort {
            key: key.to_owned(),
        })
    };
    let (ports, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => return Err(Skip::Sctp),
        _ => return Err(invalid_key()),
    };
    let (container_first, container_last) = parse_range(ports).ok_or_else(invalid_key)?;

    let host_port = binding.host_port.as_deref().unwrap_or_default().trim();
    if host_port.is_empty() {
        return Err(Skip::Unallocated);
    }
    let (host_first, host_last) = parse_range(host_port).ok_or_else(|| {
        Skip::Invalid(BindingError::HostPort {
            key: key.to_owned(),
            port: host_port.to_owned(),
        })
    })?;
    if host_last - host_first != container_last - container_first {
        return Err(Skip::Invalid(BindingError::RangeMismatch {
            key: key.to_owned(),
            port: host_port.to_owned(),
        }));
    }

    let host_ip = binding.host_ip.as_deref().unwrap_or_default().trim();
    let (family, addr) = match host_ip {
        "" | "0.0.0.0" => (Family::V4, None),
        "::" => (Family::V6, None),
        other => {
            let addr: IpAddr = other.parse().map_err(|_| {
                Skip::Invalid(BindingError::HostIp {
                    key: key.to_owned(),
                    ip: other.to_owned(),
                })
            })?;
            (Family::of(&addr), Some(addr))
        }
    };
    Ok((host_first..=host_last)
        .zip(container_first..=container_last)
        .map(|(port, container_port)| {
            (
                BindingKey {
                    family,
                    proto,
                    addr,
                    port,
                },
                container_port,
            )
        })
        .collect())
}

/// `PORT` or `FIRST-LAST` (inclusive, FIRST <= LAST, no port 0).
fn parse_range(text: &str) -> Option<(u16, u16)> {
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let first: u16 = first.trim().parse().ok()?;
    let last: u16 = last.trim().parse().ok()?;
    (first != 0 && first <= last).then_some((first, last))
}

/// The container's networks, the one Docker publishes through first.
///
/// Docker DNATs a published port to the container's address on the network
/// it was started on (`HostConfig.NetworkMode`, `default` meaning the
/// `bridge` network); the rest follow by name so the choice is stable.
/// bollard's model (API 1.53) has no top-level `NetworkSettings.IPAddress`:
/// older engines report the same address under `Networks.bridge`.
fn ordered_networks(inspect: &ContainerInspectResponse) -> Vec<&EndpointSettings> {
    let Some(networks) = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
    else {
        return Vec::new();
    };
    let mode = inspect
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.as_deref());
    let primary = match mode {
        None | Some(DEFAULT_NETWORK_MODE) => DEFAULT_BRIDGE,
        Some(name) => name,
    };
    let sorted: BTreeMap<&str, &EndpointSettings> = networks
        .iter()
        .map(|(name, endpoint)| (name.as_str(), endpoint))
        .collect();
    let first = endpoint_of(networks, primary);
    first
        .into_iter()
        .chain(
            sorted
                .into_iter()
                .filter(|(name, _)| *name != primary)
                .map(|(_, e)| e),
        )
        .collect()
}

/// The endpoint on `name`; `NetworkMode` may also hold a network id.
fn endpoint_of<'a>(
    networks: &'a HashMap<String, EndpointSettings>,
    name: &str,
) -> Option<&'a EndpointSettings> {
    networks.get(name).or_else(|| {
        networks
            .values()
            .find(|e| e.network_id.as_deref().is_some_and(|id| id == name))
    })
}

/// The container's first address of `family` over `networks`.
fn container_addr(networks: &[&EndpointSettings], family: Family) -> Option<IpAddr> {
    networks.iter().find_map(|endpoint| {
        let text = match family {
            Family::V4 => endpoint.ip_address.as_deref(),
            Family::V6 => endpoint.global_ipv6_address.as_deref(),
        }?;
        let addr: IpAddr = text.trim().parse().ok()?;
        (Family::of(&addr) == family).then_some(addr)
    })
}

#[cfg(test)]
#[path = "ports_tests.rs"]
mod tests;

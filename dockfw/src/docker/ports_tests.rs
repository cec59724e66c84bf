//! Conversion tests on inspect responses captured from dockerd 20.10
//! (`fixtures/*.json`, API 1.41) and on hand-written edge cases.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bollard::models::ContainerInspectResponse;
use serde_json::json;

use super::*;

fn fixture(text: &str) -> ContainerInspectResponse {
    match serde_json::from_str(text) {
        Ok(inspect) => inspect,
        Err(error) => panic!("fixture does not decode as ContainerInspectResponse: {error}"),
    }
}

fn key(family: Family, proto: Proto, addr: Option<&str>, port: u16) -> BindingKey {
    let addr = addr.map(|a| match a.parse::<IpAddr>() {
        Ok(addr) => addr,
        Err(error) => panic!("bad test address {a}: {error}"),
    });
    BindingKey {
        family,
        proto,
        addr,
        port,
    }
}

fn keys(ports: &[PublishedPort]) -> Vec<(BindingKey, u16)> {
    ports.iter().map(|p| (p.key, p.container_port)).collect()
}

/// A minimal running container on the default bridge with these port entries.
fn with_ports(ports: serde_json::Value) -> ContainerInspectResponse {
    let value = json!({
        "Id": "c0ffee",
        "Name": "/edge",
        "State": { "Status": "running", "Running": true },
        "HostConfig": { "NetworkMode": "default" },
        "NetworkSettings": {
            "Ports": ports,
            "Networks": { "bridge": { "IPAddress": "172.17.0.9", "GlobalIPv6Address": "" } }
        }
    });
    match serde_json::from_value(value) {
        Ok(inspect) => inspect,
        Err(error) => panic!("test inspect does not decode: {error}"),
    }
}

const WEB: &str = include_str!("fixtures/running_web.json");
const MULTI: &str = include_str!("fixtures/running_multi_network.json");
const PAUSED: &str = include_str!("fixtures/paused.json");
const EXITED: &str = include_str!("fixtures/exited.json");
const CRASHED: &str = include_str!("fixtures/exited_after_daemon_crash.json");

#[test]
fn running_container_on_default_bridge() {
    // docker run -l app=demo -l tier=front -p 8080:80 -p 9000-9002:9000-9002/udp
    //   -p 127.0.0.1:7070:70 ... httpd
    let ports = published_ports(&fixture(WEB));
    let (v4, v6) = (Family::V4, Family::V6);
    let (tcp, udp) = (Proto::Tcp, Proto::Udp);
    let mut expected = vec![
        (key(v4, tcp, None, 8080), 80),
        (key(v6, tcp, None, 8080), 80),
        (key(v4, tcp, Some("127.0.0.1"), 7070), 70),
    ];
    for port in 9000..=9002 {
        expected.push((key(v4, udp, None, port), port));
        expected.push((key(v6, udp, None, port), port));
    }
    expected.sort();
    assert_eq!(keys(&ports), expected);

    let first = &ports[0];
    assert_eq!(
        first.container.id,
        "4c2e42e2ab81a00ee726eee1eff56a623c362e27cd98d7cde907cda94a520cd6"
    );
    assert_eq!(first.container.name, "web");
    assert_eq!(
        first.container.labels.get("app").map(String::as_str),
        Some("demo")
    );
    assert_eq!(
        first.container.labels.get("tier").map(String::as_str),
        Some("front")
    );
    for port in &ports {
        let want = match port.key.family {
            // The bridge has no IPv6 here: the `::` bindings are served by
            // docker-proxy and have no container IPv6 address.
            Family::V4 => Some(IpAddr::V4(Ipv4Addr::new(10, 210, 77, 2))),
            Family::V6 => None,
        };
        assert_eq!(port.container_addr, want, "{}", port.key);
    }
}

#[test]
fn user_network_is_preferred_and_ipv6_uses_the_global_address() {
    // docker run --network dfw-v6 -p [::1]:8443:443 -p 5353:53/udp
    //   -p 10.210.99.1:8081:81 ...; then docker network connect bridge.
    let ports = published_ports(&fixture(MULTI));
    let (v4, v6) = (Family::V4, Family::V6);
    let mut expected = vec![
        (key(v6, Proto::Tcp, Some("::1"), 8443), 443),
        (key(v4, Proto::Udp, None, 5353), 53),
        (key(v6, Proto::Udp, None, 5353), 53),
        (key(v4, Proto::Tcp, Some("10.210.99.1"), 8081), 81),
    ];
    expected.sort();
    assert_eq!(keys(&ports), expected);
    for port in &ports {
        let want = match port.key.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 211, 0, 2)),
            Family::V6 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0xdfa, 0, 0, 0, 0, 0, 2)),
        };
        assert_eq!(port.container_addr, Some(want), "{}", port.key);
        assert_eq!(port.container.name, "multi");
    }
}

#[test]
fn paused_container_keeps_its_ports() {
    let ports = published_ports(&fixture(PAUSED));
    assert_eq!(
        keys(&ports),
        vec![
            (key(Family::V4, Proto::Tcp, None, 8090), 80),
            (key(Family::V6, Proto::Tcp, None, 8090), 80)
        ]
    );
}

#[test]
fn exited_container_publishes_nothing() {
    assert!(published_ports(&fixture(EXITED)).is_empty());
}

#[test]
fn container_killed_by_a_daemon_restart_publishes_nothing() {
    // dockerd was SIGKILLed and restarted without live-restore: it killed the
    // container (exit 137) but its inspect still lists the old bindings.
    let inspect = fixture(CRASHED);
    let listed = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref());
    assert!(
        listed.is_some_and(|ports| !ports.is_empty()),
        "fixture lost its stale bindings"
    );
    assert!(published_ports(&inspect).is_empty());
}

#[test]
fn stale_bindings_of_a_stopped_container_are_ignored() {
    let mut inspect = fixture(WEB);
    if let Some(state) = inspect.state.as_mut() {
        state.status = Some(ContainerStateStatusEnum::EXITED);
        state.running = Some(false);
    }
    assert!(published_ports(&inspect).is_empty());
    for status in [
        ContainerStateStatusEnum::CREATED,
        ContainerStateStatusEnum::RESTARTING,
    ] {
        let mut inspect = fixture(WEB);
        if let Some(state) = inspect.state.as_mut() {
            state.status = Some(status);
        }
        assert!(published_ports(&inspect).is_empty(), "{status:?}");
    }
}

#[test]
fn ranges_empty_host_ip_sctp_and_unallocated_ports() {
    let inspect = with_ports(json!({
        "8000-8002/tcp": [{ "HostIp": "", "HostPort": "18000-18002" }],
        "53": [{ "HostIp": "::", "HostPort": "53" }],
        "6000/sctp": [{ "HostIp": "0.0.0.0", "HostPort": "6000" }],
        "7000/tcp": [{ "HostIp": "0.0.0.0", "HostPort": "" }],
        "7001/tcp": null
    }));
    let ports = published_ports(&inspect);
    let v4 = Family::V4;
    assert_eq!(
        keys(&ports),
        vec![
            (key(v4, Proto::Tcp, None, 18000), 8000),
            (key(v4, Proto::Tcp, None, 18001), 8001),
            (key(v4, Proto::Tcp, None, 18002), 8002),
            (key(Family::V6, Proto::Tcp, None, 53), 53),
        ]
    );
    assert_eq!(ports[0].container.name, "edge");
    assert_eq!(
        ports[0].container_addr,
        Some(IpAddr::V4(Ipv4Addr::new(172, 17, 0, 9)))
    );
}

#[test]
fn malformed_bindings_are_skipped_not_fatal() {
    let inspect = with_ports(json!({
        "80/tcp": [
            { "HostIp": "not-an-ip", "HostPort": "8080" },
            { "HostIp": "0.0.0.0", "HostPort": "eighty" },
            { "HostIp": "0.0.0.0", "HostPort": "8080-8081" },
            { "HostIp": "192.0.2.7", "HostPort": "8080" }
        ],
        "x/tcp": [{ "HostIp": "0.0.0.0", "HostPort": "1" }],
        "81/icmp": [{ "HostIp": "0.0.0.0", "HostPort": "81" }],
        "0/tcp": [{ "HostIp": "0.0.0.0", "HostPort": "1" }]
    }));
    assert_eq!(
        keys(&published_ports(&inspect)),
        vec![(key(Family::V4, Proto::Tcp, Some("192.0.2.7"), 8080), 80)]
    );
}

#[test]
fn missing_id_or_state_publishes_nothing() {
    let mut no_id = fixture(WEB);
    no_id.id = None;
    assert!(published_ports(&no_id).is_empty());
    let mut no_state = fixture(WEB);
    no_state.state = None;
    assert!(published_ports(&no_state).is_empty());
}

#[test]
fn state_flags_decide_when_status_is_absent() {
    let mut inspect = fixture(PAUSED);
    if let Some(state) = inspect.state.as_mut() {
        state.status = None;
    }
    assert_eq!(published_ports(&inspect).len(), 2);
    if let Some(state) = inspect.state.as_mut() {
        state.running = Some(false);
    }
    assert!(published_ports(&inspect).is_empty());
}

#[test]
fn parse_range_rejects_zero_and_reversed() {
    assert_eq!(parse_range("80"), Some((80, 80)));
    assert_eq!(parse_range("9000-9002"), Some((9000, 9002)));
    assert_eq!(parse_range("0"), None);
    assert_eq!(parse_range("9002-9000"), None);
    assert_eq!(parse_range("65536"), None);
}

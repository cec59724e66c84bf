//! The programs attached for real (native XDP, generic XDP and TC) on a veth
//! in a namespace the test creates, with real packets from a second
//! namespace: allowed traffic arrives, dropped traffic does not, counters
//! agree, and a port that is not published is never touched.
//! Root tier: `cargo test -p dockfw-tests --test attach -- --test-threads=1`.

use std::time::Duration;

use dockfw::{
    compile::StatOwner,
    dataplane::{AttachMode, RequestedMode, attach::attach},
    model::{Action, Family, FragmentAction, Policy, Proto, Rule, RuleOrigin, SourceMatch},
};
use dockfw_tests::{
    netns::{NetNs, VethPair},
    runner::{Harness, published},
    traffic::{TcpListener, UdpCounter, send_udp, tcp_connects},
};

const HOST_V4: &str = "10.77.0.1";
const GOOD_V4: &str = "10.77.0.2";
const BAD_V4: &str = "10.77.0.3";
const HOST_V6: &str = "fd77::1";
const GOOD_V6: &str = "fd77::2";
const BAD_V6: &str = "fd77::3";
const UDP_PORT: u16 = 5300;
const TCP_PORT: u16 = 8080;
const SSH_PORT: u16 = 2222;
const DATAGRAMS: u32 = 300;

struct Topology {
    // Field order is drop order: the pair before the namespaces.
    _veth: VethPair,
    client: NetNs,
    host: NetNs,
}

fn topology() -> Topology {
    let host = NetNs::new("attach-host");
    let client = NetNs::new("attach-client");
    let veth = VethPair::new(
        &host,
        "veth-h",
        &["10.77.0.1/24", "fd77::1/64"],
        &client,
        "veth-c",
        &["10.77.0.2/24", "10.77.0.3/24", "fd77::2/64", "fd77::3/64"],
    );
    Topology {
        _veth: veth,
        client,
        host,
    }
}

fn policy() -> Policy {
    let origin = RuleOrigin::PolicyFile {
        path: "attach.toml".into(),
        line: 1,
    };
    let mut drop_bad = Rule::new("drop-bad", origin, Action::Drop);
    drop_bad.sources = SourceMatch {
        from: Some(vec![
            "10.77.0.3/32".parse().unwrap(),
            "fd77::3/128".parse().unwrap(),
        ]),
        not_from: vec![],
    };
    Policy {
        rules: vec![drop_bad],
        fragments: FragmentAction::Pass,
    }
}

fn run_mode(requested: RequestedMode, expected: AttachMode) {
    let topology = topology();
    let ports = [
        published(Family::V4, Proto::Udp, None, UDP_PORT, "udp-app"),
        published(Family::V6, Proto::Udp, None, UDP_PORT, "udp-app"),
        published(Family::V4, Proto::Tcp, None, TCP_PORT, "tcp-app"),
    ];
    let (mut harness, attachment) = {
        // Load and attach from inside the host namespace (ifindex lookups).
        let _inside = topology.host.enter();
        let mut harness = Harness::new();
        harness.apply(&policy(), &ports);
        let attachment = attach(&mut harness.dataplane, "veth-h", requested, None, false)
            .unwrap_or_else(|error| {
                panic!("attaching {requested:?}: {}", dockfw_tests::chain(&error))
            });
        assert_eq!(attachment.mode, expected);
        (harness, attachment)
    };

    // UDP: good sources arrive, the bad one does not (v4 and v6).
    for (listen, good, bad, host) in [
        ("0.0.0.0", GOOD_V4, BAD_V4, HOST_V4),
        ("::", GOOD_V6, BAD_V6, HOST_V6),
    ] {
        let receiver = UdpCounter::start(&topology.host, listen, UDP_PORT, 2.5);
        send_udp(&topology.client, good, host, UDP_PORT, DATAGRAMS);
        send_udp(&topology.client, bad, host, UDP_PORT, DATAGRAMS);
        let counts = receiver.counts();
        let received = |addr: &str| counts.get(addr).copied().unwrap_or(0);
        assert_eq!(
            received(good),
            u64::from(DATAGRAMS),
            "{expected}: good source, counts {counts:?}"
        );
        assert_eq!(
            received(bad),
            0,
            "{expected}: dropped source, counts {counts:?}"
        );
    }
    for key in [ports[0].key, ports[1].key] {
        let dropped = harness.rule_stat(key, "drop-bad").dropped.packets;
        assert_eq!(
            dropped,
            u64::from(DATAGRAMS),
            "{expected}: drop counter of {key}"
        );
        assert!(harness.stat(&StatOwner::Unmatched(key)).passed.packets >= u64::from(DATAGRAMS));
    }

    // TCP to the published port: refused for the bad source; an unpublished
    // port (think SSH) is never touched, even for that source.
    let _web = TcpListener::start(&topology.host, "0.0.0.0", TCP_PORT);
    let _ssh = TcpListener::start(&topology.host, "0.0.0.0", SSH_PORT);
    let timeout = Duration::from_secs(2);
    assert!(
        tcp_connects(&topology.client, GOOD_V4, HOST_V4, TCP_PORT, timeout),
        "{expected}: good source connects"
    );
    assert!(
        !tcp_connects(&topology.client, BAD_V4, HOST_V4, TCP_PORT, timeout),
        "{expected}: bad source is dropped"
    );
    assert!(
        tcp_connects(&topology.client, BAD_V4, HOST_V4, SSH_PORT, timeout),
        "{expected}: unpublished port untouched"
    );

    // A ban on the good source now drops it too.
    harness.ban("10.77.0.2/32", dockfw::bans::NEVER);
    assert!(
        !tcp_connects(&topology.client, GOOD_V4, HOST_V4, TCP_PORT, timeout),
        "{expected}: banned"
    );
    assert!(
        tcp_connects(&topology.client, GOOD_V4, HOST_V4, SSH_PORT, timeout),
        "{expected}: bans spare unpublished ports"
    );
    attachment
        .detach()
        .unwrap_or_else(|error| panic!("detaching: {}", dockfw_tests::chain(&error)));
    assert!(
        tcp_connects(&topology.client, BAD_V4, HOST_V4, TCP_PORT, timeout),
        "{expected}: detached, nothing enforced"
    );
    drop(harness);
}

#[test]
fn native_xdp_on_a_veth_drops_what_the_policy_says() {
    run_mode(RequestedMode::Native, AttachMode::XdpNative);
}

#[test]
fn generic_xdp_drops_what_the_policy_says() {
    run_mode(RequestedMode::Generic, AttachMode::XdpGeneric);
}

#[test]
fn tc_drops_what_the_policy_says() {
    run_mode(RequestedMode::Tc, AttachMode::Tc);
}

#[test]
fn auto_mode_prefers_native_xdp() {
    run_mode(RequestedMode::Auto, AttachMode::XdpNative);
}

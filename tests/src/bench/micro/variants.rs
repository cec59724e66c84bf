//! What is measured: each variant is a program, a frame and the verdict it
//! must return (a variant that takes another path than intended would
//! measure the wrong thing, so the verdict is checked before timing).
//! Variants are timed round-robin, one run each per round, so drift on the
//! machine (other jobs, frequency changes) spreads over all of them.

use dockfw::dataplane::testrun::Program;
use dockfw_common::{
    Config,
    xdp_verdict::{DROP, PASS},
};

use super::{
    scenario::{
        self, PORT_1_RULE, PORT_8_RULES, PORT_16_RULES, PORT_32_RULES, PORT_ANY_SOURCE,
        PORT_NO_RULES, PORT_UNPUBLISHED, SRC_BANNED, SRC_NEAR, SRC_QUIET,
    },
    world::{PEER_INSTANCES, Subject, World},
};
use crate::bench::measure::Sample;

/// The table a variant is reported in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// Floor, peer, common and worst path.
    Headline,
    /// The common path over ban counts.
    Bans,
    /// The common path over rule counts.
    Rules,
    /// Cost per step of the data plane.
    Attribution,
}

/// Drop events sampled at most once per ms per statistic (burst of 10): a
/// plausible daemon setting; the ring sees a few dozen events per run, every
/// other drop pays for the budget check.
const EVENT_INTERVAL_NS: u64 = 1_000_000;
const EVENT_BURST_NS: u64 = 10 * EVENT_INTERVAL_NS;

/// One measured variant.
pub struct Variant {
    /// Row label.
    pub name: String,
    /// Where it is reported.
    pub table: Table,
    /// Which program.
    pub subject: Subject,
    /// The frame.
    pub frame: Vec<u8>,
    /// The verdict it must return.
    pub expect: u32,
    /// Run with drop events enabled in the data plane's configuration.
    pub events: bool,
    /// The timed runs.
    pub samples: Vec<Sample>,
}

fn variant(
    name: impl Into<String>,
    table: Table,
    subject: Subject,
    frame: Vec<u8>,
    expect: u32,
) -> Variant {
    Variant {
        name: name.into(),
        table,
        subject,
        frame,
        expect,
        events: false,
        samples: Vec::new(),
    }
}

/// Name of the headline common-path row (the targets refer to it).
pub const COMMON: &str = "dockfw common path";
/// Name of the headline worst-path row.
pub const WORST: &str = "dockfw worst path: VLAN + IPv6 + 3 ext headers";
/// Name of the floor row.
pub const FLOOR: &str = "floor: XDP_DROP only";

/// Every variant of the run.
pub fn all(world: &World) -> Vec<Variant> {
    use Table::{Attribution, Bans, Headline, Rules};
    let main = world.main;
    let xdp = |index| Subject::Dockfw(index, Program::Xdp);
    let common = scenario::syn_v4(SRC_NEAR, PORT_16_RULES);
    let mut list = vec![variant(
        FLOOR,
        Headline,
        Subject::Floor,
        common.clone(),
        DROP,
    )];
    for (index, (label, _)) in PEER_INSTANCES.iter().enumerate() {
        list.push(variant(
            *label,
            Headline,
            Subject::Peer(index),
            common.clone(),
            DROP,
        ));
    }
    list.push(variant(COMMON, Headline, xdp(main), common.clone(), DROP));
    list.push(variant(
        WORST,
        Headline,
        xdp(main),
        scenario::syn_v6_worst(PORT_16_RULES),
        DROP,
    ));

    for (index, dataplane) in world.dataplanes.iter().enumerate() {
        list.push(variant(
            format!("{} IPv4 bans", thousands(dataplane.bans_v4)),
            Bans,
            xdp(index),
            common.clone(),
            DROP,
        ));
    }
    for (rules, port) in [
        (1, PORT_1_RULE),
        (8, PORT_8_RULES),
        (16, PORT_16_RULES),
        (32, PORT_32_RULES),
    ] {
        let label = if rules == 1 {
            "1 rule".to_string()
        } else {
            format!("{rules} rules")
        };
        list.push(variant(
            label,
            Rules,
            xdp(main),
            scenario::syn_v4(SRC_NEAR, port),
            DROP,
        ));
    }

    let steps: [(&str, Vec<u8>, u32); 10] = [
        (
            "a. ARP: Ethernet parse + global counter",
            scenario::arp(),
            PASS,
        ),
        (
            "b. IPv4 SYN to an unpublished port: + IPv4/TCP parse, port index",
            scenario::syn_v4(SRC_QUIET, PORT_UNPUBLISHED),
            PASS,
        ),
        (
            "c. published, no rules, quiet source: + policy, ban summary, port counter",
            scenario::syn_v4(SRC_QUIET, PORT_NO_RULES),
            PASS,
        ),
        (
            "d. published, no rules, near source: + partly banned /24 bitmap (miss)",
            scenario::syn_v4(SRC_NEAR, PORT_NO_RULES),
            PASS,
        ),
        (
            "e. 1 drop rule, no source condition, quiet: + rule, drop counter",
            scenario::syn_v4(SRC_QUIET, PORT_ANY_SOURCE),
            DROP,
        ),
        (
            "f. 1 rule with a source set, quiet: + source trie",
            scenario::syn_v4(SRC_QUIET, PORT_1_RULE),
            DROP,
        ),
        (
            "g. 16 rules, quiet source (common path minus the /24 bitmap)",
            scenario::syn_v4(SRC_QUIET, PORT_16_RULES),
            DROP,
        ),
        (
            "h. 16 rules, near source (= common path)",
            common.clone(),
            DROP,
        ),
        (
            "i. banned source: /24 bitmap hit, early drop",
            scenario::syn_v4(SRC_BANNED, PORT_16_RULES),
            DROP,
        ),
        (
            "j. plain IPv6 SYN, 16 rules (worst path minus VLAN and ext headers)",
            scenario::syn_v6_plain(PORT_16_RULES),
            DROP,
        ),
    ];
    for (name, frame, expect) in steps {
        list.push(variant(name, Attribution, xdp(main), frame, expect));
    }
    let mut events = variant(
        "k. common path with drop events on (budget spent)",
        Attribution,
        xdp(main),
        common.clone(),
        DROP,
    );
    events.events = true;
    list.push(events);
    list.push(variant(
        "l. common path through the TC program",
        Attribution,
        Subject::Dockfw(main, Program::Tc),
        common,
        DROP,
    ));
    for (name, src, expect) in [
        (
            "m. plain IPv6 SYN from a source sharing a /64 with a /128 ban: + exact /64 entry, its host filter (miss)",
            scenario::SRC_SAME64_V6,
            DROP,
        ),
        (
            "n. IPv6 source in a banned /64: exact /64 entry hit, early drop",
            scenario::SRC_BANNED_V6,
            DROP,
        ),
        (
            "o. plain IPv6 SYN from a source sharing a /64 with a /96 ban: + ban trie walk (miss)",
            scenario::SRC_TRIE_V6,
            DROP,
        ),
    ] {
        list.push(variant(
            name,
            Attribution,
            xdp(main),
            scenario::syn_v6(src, PORT_16_RULES),
            expect,
        ));
    }
    list
}

/// `1000000` -> `1,000,000`.
pub fn thousands(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Sets or clears drop events in the configuration of the data plane
/// `subject` runs in.
fn set_events(world: &mut World, subject: Subject, on: bool) -> Result<(), String> {
    let Subject::Dockfw(index, _) = subject else {
        return Ok(());
    };
    let config = &mut world.dataplanes[index].harness.dataplane.maps.config;
    let current = config
        .get(&0, 0)
        .map_err(|error| format!("reading DFW_CONFIG: {error}"))?;
    let next = Config {
        event_interval_ns: if on { EVENT_INTERVAL_NS } else { 0 },
        event_burst_ns: if on { EVENT_BURST_NS } else { 0 },
        ..current
    };
    config
        .set(0, next, 0)
        .map_err(|error| format!("writing DFW_CONFIG: {error}"))
}

fn run_once(world: &mut World, variant: &Variant, repeat: u32) -> Result<(u32, Sample), String> {
    if variant.events {
        set_events(world, variant.subject, true)?;
    }
    let result = world.time(variant.subject, &variant.frame, repeat);
    if variant.events {
        set_events(world, variant.subject, false)?;
    }
    result
}

fn verdict_name(verdict: u32) -> &'static str {
    match verdict {
        DROP => "DROP",
        PASS => "PASS",
        0 => "ABORTED",
        _ => "other",
    }
}

/// Checks every variant's verdict with one run.
pub fn check(world: &mut World, variants: &[Variant]) -> Result<(), String> {
    for variant in variants {
        let (verdict, _) =
            run_once(world, variant, 1).map_err(|error| format!("{}: {error}", variant.name))?;
        if verdict != variant.expect {
            return Err(format!(
                "{} returned {} where {} was expected: it does not take the path it is meant to measure",
                variant.name,
                verdict_name(verdict),
                verdict_name(variant.expect)
            ));
        }
    }
    Ok(())
}

/// `runs` rounds, each timing every variant once.
pub fn time_all(
    world: &mut World,
    variants: &mut [Variant],
    runs: usize,
    repeat: u32,
) -> Result<(), String> {
    for round in 0..runs {
        eprintln!("round {}/{runs} ...", round + 1);
        for variant in variants.iter_mut() {
            let (verdict, sample) = run_once(world, variant, repeat)
                .map_err(|error| format!("{}: {error}", variant.name))?;
            if verdict != variant.expect {
                return Err(format!(
                    "{} changed its verdict to {}",
                    variant.name,
                    verdict_name(verdict)
                ));
            }
            variant.samples.push(sample);
        }
    }
    Ok(())
}

/// The verdict's name, for the report.
pub fn verdict_label(variant: &Variant) -> &'static str {
    verdict_name(variant.expect)
}

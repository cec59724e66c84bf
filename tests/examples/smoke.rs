use aya::programs::{TestRun, TestRunOptions};
use dockfw::dataplane::{Dataplane, LoadOptions};
use dockfw_common::*;
use dockfw_tests::frame::{Frame, SYN};

fn main() {
    let mut dp = match Dataplane::load(&LoadOptions::default()) {
        Ok(d) => d,
        Err(e) => { eprintln!("{e}"); let mut s: &dyn std::error::Error = &e; while let Some(x) = s.source() { eprintln!("  {x}"); s = x; } std::process::exit(1) }
    };
    dp.maps.config.set(0, Config::default(), 0).unwrap();
    let idx = port_index(0, family::V4, proto::TCP, u16::from_ne_bytes(8080u16.to_be_bytes()));
    dp.maps.port_index.set(idx, 5, 0).unwrap();
    let mut pol = PortPolicy::default();
    pol.stat_unmatched = 1; pol.stat_banned = 2; pol.stat_fragments = 3;
    pol.rule_count = 1; pol.default_bits = 1; pol.rule_base = 10;
    dp.maps.policies.set(5, pol, 0).unwrap();
    let mut r = RuleAction::default(); r.action = action::DROP; r.stat_id = 4;
    dp.maps.rules.set(10, r, 0).unwrap();
    let f = Frame::tcp("10.0.0.1", 1234, "10.0.0.2", 8080, SYN).build();
    let f2 = Frame::tcp("10.0.0.1", 1234, "10.0.0.2", 22, SYN).build();
    let mut fl = aya::Ebpf::load(dockfw::ebpf::FLOOR_OBJECT).unwrap();
    let p: &mut aya::programs::Xdp = fl.program_mut("dockfw_floor").unwrap().try_into().unwrap();
    p.load().unwrap();
    for _ in 0..3 {
        let r = p.test_run(TestRunOptions { data_in: Some(&f), repeat: 1_000_000, ..Default::default() }).unwrap();
        println!("floor verdict {} dur {:?}", r.return_value, r.duration);
        let xdp = dp.xdp().unwrap();
        let r = xdp.test_run(TestRunOptions { data_in: Some(&f), repeat: 1_000_000, ..Default::default() }).unwrap();
        println!("xdp verdict {} dur {:?}", r.return_value, r.duration);
        let r = xdp.test_run(TestRunOptions { data_in: Some(&f2), repeat: 1_000_000, ..Default::default() }).unwrap();
        println!("xdp unpublished verdict {} dur {:?}", r.return_value, r.duration);
    }
    let tc = dp.tc().unwrap();
    let r = tc.test_run(TestRunOptions { data_in: Some(&f), repeat: 1, ..Default::default() }).unwrap();
    println!("tc verdict {}", r.return_value);
    if std::env::var("PAUSE").is_ok() { std::thread::sleep(std::time::Duration::from_secs(30)); }
}

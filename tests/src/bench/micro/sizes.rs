//! Program sizes as the kernel holds them (`bpftool prog show`): translated
//! instructions after the verifier's rewrites, JIT image bytes, and the
//! instructions the verifier walked. A static view to set beside the
//! measured cost per packet.

use std::process::Command;

use aya::programs::{Xdp, loaded_programs};

use super::world::World;

/// Size figures of one program.
pub struct ProgramSize {
    /// Row label.
    pub label: String,
    /// Kernel program id.
    pub id: u32,
    /// `bytes_xlated / 8`.
    pub xlated_insns: Option<u64>,
    /// JIT image bytes.
    pub jited_bytes: Option<u64>,
    /// Instructions the verifier processed.
    pub verified_insns: Option<u64>,
}

/// A number after `"key":` in bpftool's JSON.
fn json_number(text: &str, key: &str) -> Option<u64> {
    let rest = text.split(&format!("\"{key}\":")).nth(1)?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn size(label: &str, id: u32) -> ProgramSize {
    let json = Command::new("bpftool")
        .args(["-j", "prog", "show", "id", &id.to_string()])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    ProgramSize {
        label: label.to_string(),
        id,
        xlated_insns: json_number(&json, "bytes_xlated").map(|bytes| bytes / 8),
        jited_bytes: json_number(&json, "bytes_jited"),
        // bpftool 7.1 does not print it; the kernel's program info has it.
        verified_insns: loaded_programs()
            .filter_map(Result::ok)
            .find(|info| info.id() == id)
            .and_then(|info| info.verified_instruction_count())
            .map(u64::from),
    }
}

fn id_of(program: &Xdp) -> Option<u32> {
    program.info().ok().map(|info| info.id())
}

/// Sizes of the floor, the peers and dockfw's programs.
pub fn collect(world: &mut World) -> Vec<ProgramSize> {
    let mut sizes = Vec::new();
    let floor = dockfw::ebpf::FLOOR_PROGRAM;
    if let Some(id) = world
        .floor
        .program(floor)
        .and_then(|program| <&Xdp>::try_from(program).ok())
        .and_then(id_of)
    {
        sizes.push(size(floor, id));
    }
    for peer in &world.peer.programs {
        sizes.push(size(
            &format!("{} ({})", peer.timed_name, peer.label),
            peer.id,
        ));
    }
    let dataplane = &mut world.main().harness.dataplane;
    if let Some(id) = dataplane.xdp().ok().and_then(|program| id_of(program)) {
        sizes.push(size(dockfw_common::PROG_XDP, id));
    }
    if let Some(id) = dataplane
        .tc()
        .ok()
        .and_then(|program| program.info().ok())
        .map(|info| info.id())
    {
        sizes.push(size(dockfw_common::PROG_TC, id));
    }
    sizes
}

//! The XDP variants other than dockfw: the floor (a program that drops every
//! frame, built with dockfw in the same run), a minimal port matcher (the
//! least a filter reads: a reference beside the floor) and the peer,
//! xdp-filter from
//! Debian's xdp-tools set up as an operator would (`xdp-filter load IFACE`,
//! `xdp-filter port PORT`). Both attach in native mode to the protected
//! interface; their drops are the veth's `rx_queue_0_xdp_drops`.

use std::process::Command;

use aya::{
    Ebpf,
    maps::Array,
    programs::{Xdp, XdpMode},
};
use dockfw_tests::netns::NetNs;

use super::{receiver::run_in, topology::WEB_PORT};

/// The veth counter of native XDP drops.
pub const XDP_DROPS: &str = "rx_queue_0_xdp_drops";

/// The floor, or the minimal matcher, attached to the interface; detached
/// on drop.
pub struct Floor {
    // Dropping the object detaches its link (a bpf_link: no namespace
    // needed to let it go).
    _ebpf: Ebpf,
}

impl Floor {
    /// Loads `dockfw_floor` (drops every frame) and attaches it natively to
    /// `dev` in `ns`.
    pub fn attach(ns: &NetNs, dev: &str) -> Result<Self, String> {
        Self::attach_program(ns, dev, dockfw::ebpf::FLOOR_PROGRAM)
    }

    /// Loads `dockfw_matcher` (parses the headers, drops the published
    /// port) and attaches it natively to `dev` in `ns`.
    pub fn attach_matcher(ns: &NetNs, dev: &str) -> Result<Self, String> {
        Self::attach_program(ns, dev, dockfw::ebpf::MATCHER_PROGRAM)
    }

    fn attach_program(ns: &NetNs, dev: &str, name: &str) -> Result<Self, String> {
        let mut ebpf = Ebpf::load(dockfw::ebpf::FLOOR_OBJECT)
            .map_err(|error| format!("loading the floor object: {error}"))?;
        if name == dockfw::ebpf::MATCHER_PROGRAM {
            let map_name = dockfw::ebpf::MATCHER_PORT_MAP;
            let map = ebpf
                .map_mut(map_name)
                .ok_or_else(|| format!("the floor object has no map {map_name}"))?;
            let mut port: Array<_, u16> =
                Array::try_from(map).map_err(|error| format!("{map_name}: {error}"))?;
            port.set(0, WEB_PORT.to_be(), 0)
                .map_err(|error| format!("writing {map_name}: {error}"))?;
        }
        let program: &mut Xdp = ebpf
            .program_mut(name)
            .ok_or_else(|| format!("the floor object has no program {name}"))?
            .try_into()
            .map_err(|error| format!("{name} is not an XDP program: {error}"))?;
        program
            .load()
            .map_err(|error| format!("loading {name}: {error}"))?;
        {
            let _inside = ns.enter();
            program
                .attach(dev, XdpMode::Driver)
                .map_err(|error| format!("attaching {name} to {dev} (native): {error}"))?;
        }
        Ok(Self { _ebpf: ebpf })
    }
}

/// xdp-filter attached to the interface; detached on drop.
pub struct XdpFilter {
    ns: std::path::PathBuf,
    dev: String,
    /// Name of the program the interface runs (xdp-filter's own, or the
    /// libxdp dispatcher in front of it).
    pub program: String,
}

impl XdpFilter {
    /// `xdp-filter load --mode native DEV` + `xdp-filter port PORT`, in a
    /// private mount namespace with a bpffs of its own: xdp-filter pins its
    /// maps under /sys/fs/bpf/xdp-filter, a path the whole machine shares,
    /// so neither a concurrent xdp-filter nor a previous run can meet this
    /// one. The pins go with the mount namespace; the attachment stays
    /// (netlink holds it) until `xdp off`.
    pub fn attach(ns: &NetNs, dev: &str) -> Result<Self, String> {
        let script = format!(
            "mount -t bpf bpf /sys/fs/bpf && xdp-filter load --mode native {dev} && xdp-filter port {WEB_PORT}"
        );
        super::receiver::run(
            "loading xdp-filter (is xdp-tools installed? `cargo xtask setup`)",
            Command::new("nsenter")
                .arg(format!("--net={}", ns.path().display()))
                .args(["unshare", "--mount", "--propagation", "private"])
                .args(["sh", "-c", &script]),
        )?;
        let mut filter = Self {
            ns: ns.path(),
            dev: dev.to_string(),
            program: String::new(),
        };
        let link = run_in(
            ns,
            "reading the attached program",
            "ip",
            &["-d", "link", "show", "dev", dev],
        )?;
        let id = link
            .split("prog/xdp id ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or_else(|| format!("xdp-filter attached nothing to {dev}:\n{link}"))?
            .to_string();
        let info = super::receiver::run(
            "naming the attached program",
            Command::new("bpftool").args(["prog", "show", "id", &id]),
        )
        .unwrap_or_default();
        let program = info
            .split(" name ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        filter.program = program;
        Ok(filter)
    }
}

impl Drop for XdpFilter {
    fn drop(&mut self) {
        let result = Command::new("nsenter")
            .arg(format!("--net={}", self.ns.display()))
            .args(["--", "ip", "link", "set", "dev", &self.dev, "xdp", "off"])
            .output();
        if let Ok(output) = result
            && !output.status.success()
        {
            eprintln!(
                "cleanup: detaching xdp-filter from {}: {}",
                self.dev,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
}

//! The compiled data plane, embedded once.

/// The eBPF object (BPF ELF with BTF) holding `dockfw_xdp`, `dockfw_tc` and
/// their maps, built by `build.rs` with aya-build.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dockfw"));

/// An XDP program that drops every frame (`dockfw_floor`): the floor that
/// benchmarks measure dockfw against, built in the same run.
pub static FLOOR_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dockfw-floor"));

/// Name of the program in [`FLOOR_OBJECT`].
pub const FLOOR_PROGRAM: &str = "dockfw_floor";

/// A minimal port matcher in [`FLOOR_OBJECT`]: parses Ethernet, IPv4 and
/// TCP/UDP and drops the port in [`MATCHER_PORT_MAP`] (element 0, network
/// byte order).
pub const MATCHER_PROGRAM: &str = "dockfw_matcher";

/// The matcher's port map.
pub const MATCHER_PORT_MAP: &str = "MATCHER_PORT";

/// The traffic generator for benchmarks and the demo (`dockfw_gen`, run with
/// BPF_PROG_RUN in live-frames mode); see `dockfw-ebpf/src/trafficgen.rs`.
pub static TRAFFICGEN_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dockfw-trafficgen"));

/// Name of the program in [`TRAFFICGEN_OBJECT`].
pub const TRAFFICGEN_PROGRAM: &str = "dockfw_gen";

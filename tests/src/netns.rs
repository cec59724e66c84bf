//! RAII guards for network namespaces and veth pairs, and a guard that moves
//! the calling thread into a namespace (for aya attach code).
//!
//! Everything a test creates lives inside namespaces it created: commands
//! run through `nsenter --net=/run/netns/NAME` with their arguments passed
//! as a vector (no shell), and the root namespace's interfaces, routes and
//! firewall are never touched. Failures panic naming the step.

use std::{
    ffi::OsStr,
    fs::File,
    marker::PhantomData,
    os::fd::AsRawFd,
    path::PathBuf,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

/// Prefix of every namespace the tests create, so leftovers are easy to find.
pub const NETNS_PREFIX: &str = "dfw-";

/// Where `ip netns` keeps its namespace handles.
const NETNS_DIR: &str = "/run/netns";

/// Per-process sequence number that keeps namespace names unique.
static NEXT_NETNS: AtomicU32 = AtomicU32::new(0);

/// Runs a command to completion, panicking with `step` if it cannot be
/// spawned.
fn output(step: &str, command: &mut Command) -> Output {
    match command.output() {
        Ok(output) => output,
        Err(error) => panic!("{step}: cannot run {command:?}: {error}"),
    }
}

/// Panics with `step`, the command's status and its stderr unless it
/// succeeded.
pub fn check(step: &str, output: Output) -> Output {
    if !output.status.success() {
        panic!(
            "{step}: {}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    output
}

/// A network namespace `dfw-<prefix>-<pid>-<n>`, deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates the namespace (`ip netns add`) and brings its loopback up.
    pub fn new(prefix: &str) -> Self {
        assert!(
            !prefix.is_empty()
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "namespace prefix {prefix:?} must be ASCII letters, digits or '-'"
        );
        let seq = NEXT_NETNS.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NETNS_PREFIX}{prefix}-{}-{seq}", std::process::id());
        check(
            &format!("create network namespace {name}"),
            output(
                "ip netns add",
                Command::new("ip").args(["netns", "add", &name]),
            ),
        );
        let ns = Self { name };
        ns.run_ok("bring lo up", "ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (`dfw-...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, the handle `nsenter --net=` and `setns` take.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    /// A command that runs `program` inside the namespace (`nsenter --net=`),
    /// for callers that spawn it themselves. Only the network namespace
    /// changes; `ip netns exec` is avoided because it remounts /sys, which
    /// breaks dockerd.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        command
    }

    /// Runs `program args...` inside the namespace and returns its output,
    /// whatever its exit status.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        output(
            &format!("run {program} in {}", self.name),
            self.command(program).args(args),
        )
    }

    /// Like [`run`](Self::run), panicking with `step` unless it succeeds.
    pub fn run_ok(&self, step: &str, program: &str, args: &[&str]) -> Output {
        check(
            &format!("{step} (in {})", self.name),
            self.run(program, args),
        )
    }

    /// Moves the calling thread into the namespace until the guard drops.
    /// Only this thread moves: run aya attach code, socket binds and the
    /// like on it, not on an async runtime's other workers.
    pub fn enter(&self) -> NsEnterGuard {
        let step = format!("enter network namespace {}", self.name);
        let previous = match File::open("/proc/thread-self/ns/net") {
            Ok(file) => file,
            Err(error) => panic!("{step}: cannot open the current namespace: {error}"),
        };
        let target = match File::open(self.path()) {
            Ok(file) => file,
            Err(error) => panic!("{step}: cannot open {}: {error}", self.path().display()),
        };
        setns(&target, &step);
        NsEnterGuard {
            previous,
            _not_send: PhantomData,
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        match Command::new("ip")
            .args(["netns", "del", &self.name])
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "cleanup: ip netns del {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(error) => eprintln!("cleanup: ip netns del {}: {error}", self.name),
        }
    }
}

/// `setns(fd, CLONE_NEWNET)` for the calling thread.
fn setns(target: &File, step: &str) {
    // SAFETY: `target` is an open namespace file descriptor for the call's
    // duration; setns only reads it.
    let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        panic!("{step}: setns: {}", std::io::Error::last_os_error());
    }
}

/// The calling thread is inside another network namespace until this
/// drops; it then returns to the namespace it came from. Not `Send`: the
/// namespace belongs to the thread.
#[derive(Debug)]
pub struct NsEnterGuard {
    previous: File,
    _not_send: PhantomData<*const ()>,
}

impl Drop for NsEnterGuard {
    fn drop(&mut self) {
        // SAFETY: `previous` is an open namespace file descriptor.
        let rc = unsafe { libc::setns(self.previous.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            let error = std::io::Error::last_os_error();
            if std::thread::panicking() {
                eprintln!("cleanup: cannot return to the previous network namespace: {error}");
            } else {
                panic!("cannot return to the previous network namespace: {error}");
            }
        }
    }
}

/// A veth pair between two namespaces, with addresses, links up; deleted on
/// drop (deleting one end removes both).
#[derive(Debug)]
pub struct VethPair {
    ns_a: PathBuf,
    ifname_a: String,
}

impl VethPair {
    /// Creates `ifname_a` in `ns_a` and its peer `ifname_b` in `ns_b`, adds
    /// each side's addresses (CIDR, IPv4 or IPv6; IPv6 without duplicate
    /// address detection so they are usable at once) and brings both up.
    pub fn new(
        ns_a: &NetNs,
        ifname_a: &str,
        addrs_a: &[&str],
        ns_b: &NetNs,
        ifname_b: &str,
        addrs_b: &[&str],
    ) -> Self {
        // Created from inside `ns_a`, the pair never exists in the root namespace.
        ns_a.run_ok(
            &format!("create veth {ifname_a} <-> {ifname_b}"),
            "ip",
            &[
                "link",
                "add",
                ifname_a,
                "type",
                "veth",
                "peer",
                "name",
                ifname_b,
                "netns",
                ns_b.name(),
            ],
        );
        let pair = Self {
            ns_a: ns_a.path(),
            ifname_a: ifname_a.to_owned(),
        };
        for (ns, ifname, addrs) in [(ns_a, ifname_a, addrs_a), (ns_b, ifname_b, addrs_b)] {
            for addr in addrs {
                let step = format!("add {addr} to {ifname}");
                if addr.contains(':') {
                    ns.run_ok(
                        &step,
                        "ip",
                        &["-6", "addr", "add", addr, "dev", ifname, "nodad"],
                    );
                } else {
                    ns.run_ok(&step, "ip", &["addr", "add", addr, "dev", ifname]);
                }
            }
            ns.run_ok(
                &format!("bring {ifname} up"),
                "ip",
                &["link", "set", ifname, "up"],
            );
        }
        pair
    }

    /// The name of the `ns_a` end.
    pub fn ifname_a(&self) -> &str {
        &self.ifname_a
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        if !self.ns_a.exists() {
            return; // the namespace went first and took the pair with it
        }
        let result = Command::new("nsenter")
            .arg(format!("--net={}", self.ns_a.display()))
            .args(["--", "ip", "link", "del", &self.ifname_a])
            .output();
        match result {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "cleanup: ip link del {}: {}",
                self.ifname_a,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(error) => eprintln!("cleanup: ip link del {}: {error}", self.ifname_a),
        }
    }
}

//! The attack surface: the control socket is root's only, the daemon listens
//! on nothing but its metrics address, runs with the capabilities SECURITY.md
//! lists and no more, and never hands a string to a shell.
//!
//! Root tier: `cargo test -p dockfw-tests --test security -- --test-threads=1`.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use dockfw_tests::{
    daemon::Daemon,
    docker::DockerEngine,
    netns::{NetNs, VethPair},
    traffic::http_get,
};

const BIN: &str = env!("CARGO_BIN_EXE_dockfw");
const HOST: &str = "10.79.1.1";
const GOOD: &str = "10.79.1.2";
const BAD: &str = "10.79.1.3";
const TIMEOUT: Duration = Duration::from_secs(2);
/// The capabilities SECURITY.md documents for `dockfw run` (with the BPF
/// filesystem already mounted).
const DAEMON_CAPS: &[&str] = &["bpf", "net_admin", "perfmon"];
/// Bit numbers of those capabilities (linux/capability.h).
const CAP_BITS: &[(&str, u32)] = &[("net_admin", 12), ("perfmon", 38), ("bpf", 39)];
/// Where the metrics listener binds by default.
const METRICS: &str = "127.0.0.1:9469";

/// A veth pair inside `ns` (`dfw0` <-> `dfw1`): an interface to attach to
/// (this kernel has no dummy driver).
fn local_veth(ns: &NetNs) {
    ns.run_ok(
        "a veth pair",
        "ip",
        &[
            "link", "add", "dfw0", "type", "veth", "peer", "name", "dfw1",
        ],
    );
    for ifname in ["dfw0", "dfw1"] {
        ns.run_ok("veth up", "ip", &["link", "set", ifname, "up"]);
    }
}

/// A daemon in a namespace of its own, with no Docker engine behind it (it
/// keeps retrying the engine, which is all these tests need).
fn lone_daemon(ns: &NetNs, bin: &str) -> Daemon {
    local_veth(ns);
    Daemon::start(
        bin,
        ns,
        &[
            "--iface",
            "dfw0",
            "--mode",
            "generic",
            "--docker-host",
            "unix:///nonexistent/dfw-security/docker.sock",
        ],
    )
}

fn mode(path: &Path) -> (u32, fs::FileType) {
    let metadata =
        fs::metadata(path).unwrap_or_else(|error| panic!("stat {}: {error}", path.display()));
    (metadata.permissions().mode() & 0o7777, metadata.file_type())
}

fn daemon_pid(daemon: &Daemon) -> u32 {
    daemon.status()["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("status without a pid")) as u32
}

#[test]
fn the_control_socket_is_for_root_only() {
    dockfw_tests::require_root("the security tests");
    let ns = NetNs::new("sec-sock");
    let daemon = lone_daemon(&ns, BIN);
    let socket = daemon.run_dir.join("dockfw.sock");
    let (socket_mode, kind) = mode(&socket);
    assert!(kind.is_socket(), "{} is a socket", socket.display());
    assert_eq!(socket_mode, 0o600, "control socket mode {socket_mode:o}");
    let (dir_mode, _) = mode(&daemon.run_dir);
    assert_eq!(dir_mode, 0o700, "run directory mode {dir_mode:o}");

    // nobody: the socket refuses, and the pins are no way around it.
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "--",
            ])
            .arg(BIN)
            .args(args)
            .arg("--run-dir")
            .arg(&daemon.run_dir)
            .arg("--pin-dir")
            .arg(&daemon.pin_dir)
            .output()
            .unwrap_or_else(|error| panic!("setpriv: {error}"))
    };
    for args in [&["status"][..], &["ban", "192.0.2.0/24"], &["bans"]] {
        let output = as_nobody(args);
        assert!(
            !output.status.success(),
            "dockfw {args:?} as nobody must fail: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        !daemon.cli_ok(&["bans"]).contains("192.0.2.0"),
        "nobody's ban was not applied"
    );
    // Root still gets in.
    assert!(daemon.status()["pid"].as_u64().is_some());
}

/// Socket inodes the process holds open.
fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let dir = format!("/proc/{pid}/fd");
    fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("reading {dir}: {error}"))
        .filter_map(Result::ok)
        .filter_map(|entry| fs::read_link(entry.path()).ok())
        .filter_map(|target| {
            let text = target.to_string_lossy().into_owned();
            text.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// `ADDR:PORT` of a /proc/net/{tcp,udp}[6] address column.
fn proc_addr(column: &str, v6: bool) -> String {
    let (addr, port) = column.split_once(':').unwrap_or_default();
    let port = u16::from_str_radix(port, 16).unwrap_or(0);
    if v6 {
        let mut bytes = [0u8; 16];
        for (word, chunk) in bytes.chunks_mut(4).enumerate() {
            let value = u32::from_str_radix(&addr[word * 8..word * 8 + 8], 16).unwrap_or(0);
            chunk.copy_from_slice(&value.to_ne_bytes());
        }
        format!("[{}]:{port}", std::net::Ipv6Addr::from(bytes))
    } else {
        let value = u32::from_str_radix(addr, 16).unwrap_or(0);
        format!("{}:{port}", std::net::Ipv4Addr::from(value.to_ne_bytes()))
    }
}

#[test]
fn the_daemon_listens_on_nothing_but_metrics() {
    dockfw_tests::require_root("the security tests");
    let ns = NetNs::new("sec-listen");
    let daemon = lone_daemon(&ns, BIN);
    let pid = daemon_pid(&daemon);
    let mine = socket_inodes(pid);
    let mut listeners = Vec::new();
    for (file, v6, tcp) in [
        ("tcp", false, true),
        ("tcp6", true, true),
        ("udp", false, false),
        ("udp6", true, false),
        ("raw", false, false),
        ("raw6", true, false),
    ] {
        let path = format!("/proc/{pid}/net/{file}");
        let text =
            fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {path}: {error}"));
        for line in text.lines().skip(1) {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) =
                (columns.get(1), columns.get(3), columns.get(9))
            else {
                continue;
            };
            let inode: u64 = inode.parse().unwrap_or(0);
            // TCP: only sockets in LISTEN (0A) accept anything.
            if mine.contains(&inode) && (!tcp || *state == "0A") {
                listeners.push(format!("{file} {}", proc_addr(local, v6)));
            }
        }
    }
    assert_eq!(
        listeners,
        [format!("tcp {METRICS}")],
        "the daemon listens on its metrics address (loopback by default) and nothing else"
    );
    // Its Unix sockets: the control socket, and nothing bound elsewhere.
    let unix = fs::read_to_string(format!("/proc/{pid}/net/unix"))
        .unwrap_or_else(|error| panic!("reading /proc/{pid}/net/unix: {error}"));
    let control = daemon.run_dir.join("dockfw.sock");
    for line in unix.lines().skip(1) {
        let columns: Vec<&str> = line.split_whitespace().collect();
        let (Some(inode), Some(path)) = (columns.get(6), columns.get(7)) else {
            continue;
        };
        if mine.contains(&inode.parse().unwrap_or(0)) {
            assert_eq!(
                Path::new(path),
                control,
                "a Unix socket other than the control socket"
            );
        }
    }
}

/// A wrapper that runs dockfw with only `caps` in its bounding set (so the
/// root user gets exactly those).
fn capped_dockfw(dir: &Path, caps: &[&str]) -> PathBuf {
    let list: Vec<String> = caps.iter().map(|cap| format!("+{cap}")).collect();
    let set = format!("-all,{}", list.join(","));
    let wrapper = dir.join("dockfw-capped");
    // The script's only variable parts are our own constants and paths.
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec setpriv --bounding-set={set} --inh-caps={set} --no-new-privs -- {BIN} \"$@\"\n"
        ),
    )
    .unwrap_or_else(|error| panic!("writing {}: {error}", wrapper.display()));
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|error| panic!("chmod {}: {error}", wrapper.display()));
    wrapper
}

fn cap_mask(caps: &[&str]) -> u64 {
    caps.iter()
        .map(|cap| {
            let (_, bit) = CAP_BITS
                .iter()
                .find(|(name, _)| name == cap)
                .unwrap_or_else(|| panic!("unknown capability {cap}"));
            1u64 << bit
        })
        .sum()
}

fn effective_caps(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("reading /proc/{pid}/status: {error}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no CapEff in /proc/{pid}/status"))
}

#[test]
fn the_daemon_enforces_with_exactly_its_documented_capabilities() {
    dockfw_tests::require_root("the security tests");
    let host = NetNs::new("sec-caps-h");
    let client = NetNs::new("sec-caps-c");
    let _veth = VethPair::new(
        &host,
        "eth-h",
        &["10.79.1.1/24"],
        &client,
        "eth-c",
        &["10.79.1.2/24", "10.79.1.3/24"],
    );
    let engine = DockerEngine::start(&host, "10.210.86.1/24");
    engine.run_container(
        "web",
        &["8080:80"],
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let dir = std::env::temp_dir().join(format!("dfw-sec-caps-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
    let wrapper = capped_dockfw(&dir, DAEMON_CAPS);
    let wrapper_path = wrapper.display().to_string();
    let docker_host = engine.host_url();
    let daemon = Daemon::start(
        &wrapper_path,
        &host,
        &[
            "--iface",
            "eth-h",
            "--mode",
            "native",
            "--docker-host",
            &docker_host,
        ],
    );
    daemon.wait_status("the published port", Duration::from_secs(30), |status| {
        status["ports"]
            .as_array()
            .is_some_and(|ports| ports.iter().any(|port| port["port"] == "8080/tcp"))
    });
    let pid = daemon_pid(&daemon);
    assert_eq!(
        effective_caps(pid),
        cap_mask(DAEMON_CAPS),
        "the daemon runs with exactly {DAEMON_CAPS:?}"
    );
    assert!(http_get(&client, GOOD, HOST, 8080, TIMEOUT).is_some());
    daemon.cli_ok(&["ban", &format!("{BAD}/32")]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while http_get(&client, BAD, HOST, 8080, TIMEOUT).is_some() {
        assert!(
            Instant::now() < deadline,
            "the ban is enforced\n{}",
            daemon.log()
        );
    }
    assert!(
        http_get(&client, GOOD, HOST, 8080, TIMEOUT).is_some(),
        "others still served"
    );
    drop(daemon);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn no_capability_of_the_set_is_superfluous() {
    dockfw_tests::require_root("the security tests");
    let dir = std::env::temp_dir().join(format!("dfw-sec-min-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
    for missing in DAEMON_CAPS {
        let caps: Vec<&str> = DAEMON_CAPS
            .iter()
            .copied()
            .filter(|cap| cap != missing)
            .collect();
        let wrapper = capped_dockfw(&dir, &caps);
        let ns = NetNs::new("sec-min");
        local_veth(&ns);
        let pins = format!("/sys/fs/bpf/dfw-test-min-{}", std::process::id());
        let run = dir.join("run");
        let output = Command::new("timeout")
            .arg("20")
            .arg("nsenter")
            .arg(format!("--net={}", ns.path().display()))
            .arg("--")
            .arg(&wrapper)
            .args(["run", "--iface", "dfw0", "--mode", "generic"])
            .args([
                "--docker-host",
                "unix:///nonexistent/dfw-security/docker.sock",
            ])
            .args(["--pin-dir", &pins])
            .arg("--run-dir")
            .arg(&run)
            .output()
            .unwrap_or_else(|error| panic!("running the capped daemon: {error}"));
        let _ = Command::new(BIN)
            .args(["detach", "--pin-dir", &pins])
            .output();
        let _ = fs::remove_dir_all(&pins);
        let _ = fs::remove_dir_all(&run);
        assert!(
            !output.status.success() && output.status.code() != Some(124),
            "without {missing} the daemon must refuse to start, it ran: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Every place dockfw starts a program; each is reviewed in SECURITY.md.
const REVIEWED_COMMANDS: &[(&str, &str)] = &[
    ("dataplane/attach.rs", "std::process::Command::new(\"ip\")"),
    ("mirror/source.rs", "Command::new(program)"),
];

#[test]
fn no_shell_and_every_command_is_reviewed() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dockfw/src");
    let mut found = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
            .filter_map(Result::ok)
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
            let relative = path
                .strip_prefix(&src)
                .map_or_else(|_| path.display().to_string(), |p| p.display().to_string());
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or_default();
                for shell in ["\"sh\"", "\"bash\"", "\"-c\"", "/bin/sh"] {
                    assert!(
                        !code.contains(shell),
                        "{relative}: a shell invocation: {line}"
                    );
                }
                if code.contains("Command::new") {
                    found.push((relative.clone(), code.trim().to_string()));
                }
            }
        }
    }
    for (file, code) in &found {
        assert!(
            REVIEWED_COMMANDS
                .iter()
                .any(|(reviewed, call)| file == reviewed && code.contains(call)),
            "{file}: `{code}` starts a program; review it for untrusted arguments and add it to \
             SECURITY.md and REVIEWED_COMMANDS"
        );
    }
}

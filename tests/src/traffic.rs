//! Real traffic between namespaces a test created: a UDP receiver that counts
//! datagrams per source, a UDP sender, and TCP connect probes. Python's
//! standard library does the socket work (arguments are passed as argv, never
//! spliced into code).

use std::{
    collections::BTreeMap,
    process::{Child, Stdio},
    time::Duration,
};

use crate::netns::NetNs;

const RECEIVER: &str = r#"
import json, socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
sock = socket.socket(family, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.bind((sys.argv[1], int(sys.argv[2])))
sock.settimeout(0.2)
print("ready", flush=True)
deadline = time.time() + float(sys.argv[3])
counts = {}
while time.time() < deadline:
    try:
        data, addr = sock.recvfrom(2048)
    except socket.timeout:
        continue
    counts[addr[0]] = counts.get(addr[0], 0) + 1
print(json.dumps(counts), flush=True)
"#;

const SENDER: &str = r#"
import socket, sys, time
src, dst, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
family = socket.AF_INET6 if ":" in dst else socket.AF_INET
sock = socket.socket(family, socket.SOCK_DGRAM)
sock.bind((src, 0))
for i in range(count):
    sock.sendto(b"dockfw test datagram %d" % i, (dst, port))
    if i % 50 == 49:
        time.sleep(0.005)
"#;

const CONNECT: &str = r#"
import socket, sys
src, dst, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
family = socket.AF_INET6 if ":" in dst else socket.AF_INET
sock = socket.socket(family, socket.SOCK_STREAM)
sock.bind((src, 0))
sock.settimeout(timeout)
try:
    sock.connect((dst, port))
    print("connected")
except Exception as error:
    print("failed", error)
"#;

const HTTP_GET: &str = r#"
import http.client, sys
src, host, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
try:
    conn = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(src, 0))
    conn.request("GET", "/")
    response = conn.getresponse()
    print(response.status, response.read().decode(errors="replace").strip())
except Exception as error:
    print("failed", error)
"#;

const LISTENER: &str = r#"
import socket, sys, threading
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
sock = socket.socket(family, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((sys.argv[1], int(sys.argv[2])))
sock.listen(128)
print("ready", flush=True)
while True:
    conn, _ = sock.accept()
    conn.close()
"#;

/// A UDP receiver running in a namespace for a fixed time.
pub struct UdpCounter {
    child: Child,
}

impl UdpCounter {
    /// Listens on `addr:port` in `ns` for `seconds`.
    pub fn start(ns: &NetNs, addr: &str, port: u16, seconds: f64) -> Self {
        let mut child = ns
            .command("python3")
            .args([
                "-c",
                RECEIVER,
                addr,
                &port.to_string(),
                &seconds.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting the UDP receiver in {}: {error}", ns.name()));
        wait_ready(&mut child, "UDP receiver");
        Self { child }
    }

    /// Waits for the receiver to finish; datagrams per source address.
    pub fn counts(mut self) -> BTreeMap<String, u64> {
        let output = std::mem::replace(&mut self.child, dummy_child())
            .wait_with_output()
            .unwrap_or_else(|error| panic!("waiting for the UDP receiver: {error}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|_| {
            panic!(
                "UDP receiver output unreadable: {stdout:?}, stderr {:?}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }
}

impl Drop for UdpCounter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dummy_child() -> Child {
    match std::process::Command::new("true").spawn() {
        Ok(child) => child,
        Err(error) => panic!("spawning true: {error}"),
    }
}

fn wait_ready(child: &mut Child, what: &str) {
    use std::io::{BufRead, BufReader};
    let Some(stdout) = child.stdout.as_mut() else {
        panic!("{what}: no stdout");
    };
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    if reader.read_line(&mut line).is_err() || line.trim() != "ready" {
        let _ = child.kill();
        panic!("{what} did not start: {line:?}");
    }
}

/// Sends `count` UDP datagrams from `src` to `dst:port` inside `ns`.
pub fn send_udp(ns: &NetNs, src: &str, dst: &str, port: u16, count: u32) {
    ns.run_ok(
        &format!("send {count} datagrams {src} -> {dst}:{port}"),
        "python3",
        &[
            "-c",
            SENDER,
            src,
            dst,
            &port.to_string(),
            &count.to_string(),
        ],
    );
}

/// Whether a TCP connection from `src` to `dst:port` succeeds within
/// `timeout` (a dropped SYN times out).
pub fn tcp_connects(ns: &NetNs, src: &str, dst: &str, port: u16, timeout: Duration) -> bool {
    let output = ns.run(
        "python3",
        &[
            "-c",
            CONNECT,
            src,
            dst,
            &port.to_string(),
            &timeout.as_secs_f64().to_string(),
        ],
    );
    String::from_utf8_lossy(&output.stdout).starts_with("connected")
}

/// A TCP listener that accepts and closes connections, killed on drop.
pub struct TcpListener {
    child: Child,
}

impl TcpListener {
    /// Listens on `addr:port` in `ns`.
    pub fn start(ns: &NetNs, addr: &str, port: u16) -> Self {
        let mut child = ns
            .command("python3")
            .args(["-c", LISTENER, addr, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting a TCP listener in {}: {error}", ns.name()));
        wait_ready(&mut child, "TCP listener");
        Self { child }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /` from `src` to `host:port`; the status line and body, or `None`
/// when the request fails (refused, timed out).
pub fn http_get(ns: &NetNs, src: &str, host: &str, port: u16, timeout: Duration) -> Option<String> {
    let output = ns.run(
        "python3",
        &[
            "-c",
            HTTP_GET,
            src,
            host,
            &port.to_string(),
            &timeout.as_secs_f64().to_string(),
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!text.starts_with("failed") && !text.is_empty()).then_some(text)
}

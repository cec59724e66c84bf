//! A real Prometheus server started by a test inside a test namespace, and
//! plain HTTP from the test thread into that namespace (scrapes, the query
//! API). Killed and its data directory removed on drop.

use std::{
    fs,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::netns::NetNs;

/// `GET path` from inside `ns`; the status code and body.
pub fn http_get(ns: &NetNs, addr: &str, path: &str, accept: Option<&str>) -> (u16, String) {
    let _inside = ns.enter();
    let mut stream = TcpStream::connect(addr)
        .unwrap_or_else(|error| panic!("connecting to {addr} in {}: {error}", ns.name()));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap_or_else(|error| panic!("read timeout: {error}"));
    let accept = accept
        .map(|accept| format!("Accept: {accept}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|error| panic!("sending GET {path} to {addr}: {error}"));
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .unwrap_or_else(|error| panic!("reading the answer to GET {path} from {addr}: {error}"));
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in the answer from {addr}: {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, decode_body(head, body))
}

/// Undoes `Transfer-Encoding: chunked` (Prometheus' API uses it).
fn decode_body(head: &str, body: &str) -> String {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a query-string value.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// `promtool check metrics` over an exposition; panics with its complaints.
pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("running promtool (apt package prometheus, `cargo xtask setup`): {error}")
        });
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|error| panic!("feeding promtool: {error}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|error| panic!("waiting for promtool: {error}"));
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A Prometheus server running in a namespace.
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    /// `ADDR:PORT` of its web API inside the namespace.
    pub listen: String,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus in `ns`, scraping `target` (`ADDR:PORT`) every
    /// second, with its API on `listen`; waits until it is ready.
    pub fn start(ns: &NetNs, target: &str, listen: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dfw-prometheus-{}-{}",
            std::process::id(),
            ns.name()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("data"))
            .unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n  - job_name: dockfw\n    static_configs:\n      \
             - targets: ['{target}']\n"
        );
        let config_path = dir.join("prometheus.yml");
        fs::write(&config_path, config)
            .unwrap_or_else(|error| panic!("writing {}: {error}", config_path.display()));
        let log = dir.join("prometheus.log");
        let log_file = fs::File::create(&log)
            .unwrap_or_else(|error| panic!("creating {}: {error}", log.display()));
        let child = ns
            .command("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|error| {
                panic!("starting prometheus (apt package prometheus): {error}")
            });
        let server = Self {
            child,
            dir,
            listen: listen.to_string(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = {
                let _inside = ns.enter();
                TcpStream::connect(listen).is_ok()
            };
            if ready && http_get(ns, listen, "/-/ready", None).0 == 200 {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not get ready within 60 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Prometheus' own log.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query; the raw JSON answer.
    pub fn query(&self, ns: &NetNs, expr: &str) -> serde_json::Value {
        let path = format!("/api/v1/query?query={}", url_encode(expr));
        let (status, body) = http_get(ns, &self.listen, &path, None);
        assert_eq!(status, 200, "query {expr}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|error| panic!("query {expr}: {error}: {body}"))
    }

    /// The value of a query that yields one sample, if it yields any.
    pub fn value(&self, ns: &NetNs, expr: &str) -> Option<f64> {
        let answer = self.query(ns, expr);
        let result = answer["data"]["result"].as_array()?;
        assert!(result.len() <= 1, "{expr} yields several series: {answer}");
        result.first()?.get("value")?.get(1)?.as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

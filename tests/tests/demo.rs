//! `dockfw-demo`, the newcomer's demo, run briefly: its summary has sane
//! numbers (the client is served in both phases, the attack is offered,
//! dockfw drops nearly all of it for less host CPU per packet than
//! DOCKER-USER), and nothing is left behind: after a normal run, after
//! Ctrl-C, and after `--keep` followed by `--teardown`. A missing
//! prerequisite is refused before anything is created.
//!
//! Only what holds on a loaded two-core machine is asserted: no rates, no
//! ratio beyond "lower".
//!
//! Root tier: `cargo test -p dockfw-tests --test demo -- --test-threads=1`.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

const DEMO: &str = env!("CARGO_BIN_EXE_dockfw-demo");
/// A brief run: setup, two 5-second phases, teardown.
const BRIEF: &[&str] = &["--duration", "5", "--rate", "100k", "--legit-rate", "50"];
/// Far more than a brief run takes (dockerd's start and stop included).
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// Waits for `child` up to `timeout`; on a timeout, kills it, tears down
/// what it left and panics naming `step`.
fn wait(mut child: Child, step: &str, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = Command::new(DEMO).arg("--teardown").output();
                panic!("{step}: the demo did not finish within {timeout:?} ({other:?})");
            }
        }
    }
    child
        .wait_with_output()
        .unwrap_or_else(|error| panic!("{step}: collecting the demo's output: {error}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The two figures (DOCKER-USER, dockfw) of the summary row `label`.
fn row(stdout: &str, label: &str) -> (Option<f64>, Option<f64>) {
    let line = stdout
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no summary row {label:?} in:\n{stdout}"));
    let cells: Vec<&str> = line[label.len()..]
        .split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .collect();
    assert!(
        cells.len() >= 2,
        "row {label:?} has no two figures: {line:?}"
    );
    (number(cells[0]), number(cells[1]))
}

/// `1,450 ns` -> 1450, `1.50 M/s` -> 1.5e6, `97 %` -> 97, `-` -> None.
fn number(cell: &str) -> Option<f64> {
    let digits: String = cell
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
        .filter(|c| *c != ',')
        .collect();
    let value: f64 = digits.parse().ok()?;
    let unit = cell[digits.len()..].trim_start_matches(',').trim_start();
    Some(match unit.chars().next() {
        Some('M') => value * 1e6,
        Some('k') => value * 1e3,
        _ => value,
    })
}

fn figure(value: Option<f64>, what: &str, stdout: &str) -> f64 {
    value.unwrap_or_else(|| panic!("{what} is missing from the summary:\n{stdout}"))
}

/// Everything run `pid` could have created, still there.
fn left_behind(pid: u32) -> Vec<String> {
    let mut left = Vec::new();
    let names = |dir: &str| -> Vec<String> {
        fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let tag = format!("-{pid}-");
    left.extend(
        names("/run/netns")
            .into_iter()
            .filter(|name| name.starts_with("dfw-demo") && name.contains(&tag))
            .map(|name| format!("namespace {name}")),
    );
    for path in [
        format!("/sys/fs/bpf/dfw-demo-{pid}"),
        format!("/run/dfw-demo-{pid}"),
    ] {
        if Path::new(&path).exists() {
            left.push(path);
        }
    }
    let engine = format!("dfw-docker-{pid}-");
    left.extend(
        names("/tmp")
            .into_iter()
            .filter(|name| name.starts_with(&engine))
            .map(|name| format!("/tmp/{name}")),
    );
    let markers = [engine, format!("dfw-demo-{pid}")];
    for proc_pid in names("/proc")
        .into_iter()
        .filter_map(|name| name.parse::<u32>().ok())
    {
        let Ok(cmdline) = fs::read(format!("/proc/{proc_pid}/cmdline")) else {
            continue;
        };
        let cmdline = text(&cmdline).replace('\0', " ");
        if markers
            .iter()
            .any(|marker| cmdline.contains(marker.as_str()))
        {
            left.push(format!("process {proc_pid}: {cmdline}"));
        }
    }
    left
}

fn assert_nothing_left(pid: u32, step: &str) {
    // dockerd's containerd and shims may take a moment to go.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = left_behind(pid);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            let _ = Command::new(DEMO).arg("--teardown").output();
            panic!("{step}: the demo left behind:\n  {}", left.join("\n  "));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_brief_demo_shows_sane_figures_and_leaves_nothing() {
    dockfw_tests::require_root("the demo");
    let child = Command::new(DEMO)
        .args(BRIEF)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {DEMO}: {error}"));
    let pid = child.id();
    let output = wait(child, "a brief demo", RUN_TIMEOUT);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "the demo failed ({}):\n{stdout}\n--- stderr ---\n{}",
        output.status,
        text(&output.stderr)
    );
    eprintln!("{stdout}");
    for line in stdout.lines() {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns ({}): {line}",
            line.chars().count()
        );
    }

    let (netfilter, xdp) = row(&stdout, "client requests served");
    let (netfilter, xdp) = (
        figure(netfilter, "DOCKER-USER's served requests", &stdout),
        figure(xdp, "dockfw's served requests", &stdout),
    );
    assert!(
        netfilter > 0.0 && xdp > 0.0,
        "the client must be served in both phases:\n{stdout}"
    );

    let (netfilter, xdp) = row(&stdout, "attack offered");
    for (value, who) in [(netfilter, "DOCKER-USER"), (xdp, "dockfw")] {
        let offered = figure(
            value,
            &format!("the attack offered in the {who} phase"),
            &stdout,
        );
        assert!(
            offered > 0.0,
            "no attack offered in the {who} phase:\n{stdout}"
        );
    }

    let (_, xdp) = row(&stdout, "attack dropped by policy");
    let dropped = figure(xdp, "dockfw's dropped share", &stdout);
    assert!(
        dropped >= 90.0,
        "dockfw dropped only {dropped} % of the attack:\n{stdout}"
    );

    let (netfilter, xdp) = row(&stdout, "host CPU receiving");
    assert!(
        figure(netfilter, "DOCKER-USER's CPU", &stdout) > 0.0
            || figure(xdp, "dockfw's CPU", &stdout) > 0.0,
        "no host CPU measured:\n{stdout}"
    );

    let (netfilter, xdp) = row(&stdout, "CPU per dropped packet");
    let netfilter = figure(netfilter, "DOCKER-USER's CPU per drop", &stdout);
    let xdp = figure(xdp, "dockfw's CPU per drop", &stdout);
    assert!(
        netfilter > 0.0 && xdp > 0.0,
        "CPU per drop must be positive:\n{stdout}"
    );
    assert!(
        xdp < netfilter,
        "dockfw must spend less host CPU per dropped packet ({xdp} ns) than DOCKER-USER ({netfilter} ns):\n{stdout}"
    );

    assert_nothing_left(pid, "after a brief demo");
}

#[test]
fn ctrl_c_removes_everything() {
    dockfw_tests::require_root("the demo");
    let mut child = Command::new(DEMO)
        .args(["--duration", "60", "--rate", "100k"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {DEMO}: {error}"));
    let pid = child.id();
    // Interrupt in the middle of phase 1: dockerd, the container and the
    // flood are all up then.
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (lines, seen) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("Phase 1/2") {
                let _ = lines.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if seen.recv_timeout(Duration::from_secs(120)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        let _ = Command::new(DEMO).arg("--teardown").output();
        panic!(
            "phase 1 did not start within 120 s:\n{}",
            reader.join().unwrap_or_default()
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0, "SIGINT");
    let output = wait(child, "the interrupted demo", Duration::from_secs(90));
    let stdout = reader.join().unwrap_or_default();
    assert_eq!(
        output.status.code(),
        Some(130),
        "an interrupted demo exits with 130:\n{stdout}\n--- stderr ---\n{}",
        text(&output.stderr)
    );
    assert!(
        !stdout.contains("Summary"),
        "an interrupted demo shows no summary:\n{stdout}"
    );
    assert_nothing_left(pid, "after Ctrl-C");
}

#[test]
fn a_kept_demo_is_torn_down_later() {
    dockfw_tests::require_root("the demo");
    let child = Command::new(DEMO)
        .args(["--duration", "2", "--rate", "50k", "--keep"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {DEMO}: {error}"));
    let pid = child.id();
    let output = wait(child, "a kept demo", RUN_TIMEOUT);
    let stdout = text(&output.stdout);
    let teardown = || Command::new(DEMO).arg("--teardown").output();
    if !output.status.success() {
        let _ = teardown();
        panic!(
            "the kept demo failed ({}):\n{stdout}\n{}",
            output.status,
            text(&output.stderr)
        );
    }
    // The printed status command works against the daemon left running.
    let status_line = stdout
        .lines()
        .map(str::trim)
        .find(|line| line.contains("dockfw status --run-dir"));
    let status = status_line.map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        Command::new(words[0])
            .args(&words[1..])
            .arg("--json")
            .output()
    });
    let left = left_behind(pid);
    let removed = teardown().unwrap_or_else(|error| panic!("--teardown: {error}"));
    let Some(Ok(status)) = status else {
        panic!("no working `dockfw status` line in:\n{stdout}");
    };
    assert!(
        status.status.success() && text(&status.stdout).contains("xdp-native"),
        "the printed status command: {}{}",
        text(&status.stdout),
        text(&status.stderr)
    );
    assert!(
        left.iter()
            .any(|item| item.starts_with("namespace dfw-demo-host")),
        "--keep left the host namespace up: {left:?}"
    );
    assert!(
        removed.status.success(),
        "--teardown failed: {}",
        text(&removed.stderr)
    );
    assert!(
        text(&removed.stdout).contains(&format!("kept demo {pid}")),
        "--teardown names the kept run:\n{}",
        text(&removed.stdout)
    );
    assert_nothing_left(pid, "after --teardown");
}

#[test]
fn a_missing_prerequisite_is_refused_before_anything_is_created() {
    dockfw_tests::require_root("the demo");
    let child = Command::new(DEMO)
        .args(["--duration", "5"])
        .env("PATH", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {DEMO}: {error}"));
    let pid = child.id();
    let output = wait(
        child,
        "a demo without its programs",
        Duration::from_secs(30),
    );
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(3),
        "refused with status 3:\n{stderr}"
    );
    for needle in [
        "nothing was created",
        "`dockerd` in PATH",
        "`ip` in PATH",
        "cargo xtask setup",
    ] {
        assert!(
            stderr.contains(needle),
            "the refusal names {needle:?}:\n{stderr}"
        );
    }
    assert!(
        left_behind(pid).is_empty(),
        "a refused demo created {:?}",
        left_behind(pid)
    );
}

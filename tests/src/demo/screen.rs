//! What the demo shows. On a terminal: a panel per phase, redrawn in place
//! every second, with a progress bar and colour (unless `NO_COLOR`). On a
//! pipe or a file: one plain line per second. Every line fits 80 columns.

use std::{
    io::{IsTerminal as _, Write as _},
    time::Duration,
};

use super::phase::{Enforcement, Rates};

/// Width of the progress bar.
const BAR: usize = 30;

/// The output, terminal or plain.
pub struct Screen {
    tty: bool,
    color: bool,
    /// Lines of the live panel on screen (to redraw in place).
    panel: usize,
}

impl Screen {
    /// Looks at stdout.
    pub fn new() -> Self {
        let tty = std::io::stdout().is_terminal();
        let color = tty
            && std::env::var_os("NO_COLOR").is_none()
            && std::env::var("TERM").is_ok_and(|term| term != "dumb");
        Self {
            tty,
            color,
            panel: 0,
        }
    }

    fn style(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold.
    pub fn bold(&self, text: &str) -> String {
        self.style("1", text)
    }

    fn dim(&self, text: &str) -> String {
        self.style("2", text)
    }

    fn good(&self, text: &str) -> String {
        self.style("32", text)
    }

    fn bad(&self, text: &str) -> String {
        self.style("31", text)
    }

    /// Prints a line (and forgets any live panel above it).
    pub fn line(&mut self, text: &str) {
        println!("{text}");
        self.panel = 0;
    }

    /// A setup step in progress.
    pub fn step(&mut self, text: &str) {
        let text = format!("  ... {text}");
        self.line(&self.dim(&text));
    }

    /// The heading of a phase.
    pub fn phase_start(&mut self, number: usize, enforcement: Enforcement) {
        let (title, how) = match enforcement {
            Enforcement::DockerUser => (
                "DOCKER-USER only",
                "the rule drops the attack after conntrack, DNAT and routing",
            ),
            Enforcement::Dockfw => (
                "dockfw",
                "the same rule, mirrored into XDP: dropped before conntrack",
            ),
        };
        self.line("");
        let heading = format!("Phase {number}/2: {title}");
        let heading = self.bold(&heading);
        self.line(&format!("{heading}  {}", self.dim(&format!("({how})"))));
    }

    /// Shows the last second of a running phase.
    pub fn tick(
        &mut self,
        enforcement: Enforcement,
        elapsed: Duration,
        total: Duration,
        rates: &Rates,
    ) {
        let elapsed_s = elapsed.as_secs().min(total.as_secs());
        if !self.tty {
            println!(
                "  {elapsed_s:>3}s  client {:>4}/{:<4} req/s  attack {:>6}/s  dropped {:>6}/s  cpu {:>3.0}%",
                rate(rates.client_served_rps),
                rate(rates.client_offered_rps),
                pps(rates.offered_pps),
                pps(rates.dropped_pps),
                100.0 * rates.cpu_busy
            );
            return;
        }
        let mut lines = Vec::new();
        let done = ((elapsed.as_secs_f64() / total.as_secs_f64().max(1e-3)) * BAR as f64)
            .round()
            .clamp(0.0, BAR as f64) as usize;
        lines.push(format!(
            "  [{}{}] {elapsed_s} s of {} s",
            "#".repeat(done),
            self.dim(&".".repeat(BAR - done)),
            total.as_secs()
        ));
        lines.extend(self.panel_lines(enforcement, rates));
        let mut out = std::io::stdout().lock();
        if self.panel > 0 {
            // Back to the panel's first line.
            let _ = write!(out, "\x1b[{}A", self.panel);
        }
        for line in &lines {
            let _ = writeln!(out, "\r\x1b[2K{line}");
        }
        let _ = out.flush();
        self.panel = lines.len();
    }

    fn panel_lines(&self, enforcement: Enforcement, rates: &Rates) -> Vec<String> {
        let share = rates.served_share();
        let served = format!(
            "{} served ({:.0} %)",
            rate(rates.client_served_rps),
            100.0 * share
        );
        let served = if share >= 0.95 {
            self.good(&served)
        } else {
            self.bad(&served)
        };
        let who = match enforcement {
            Enforcement::DockerUser => "DOCKER-USER",
            Enforcement::Dockfw => "dockfw",
        };
        let cpu = format!("{:>3.0} % of a CPU", 100.0 * rates.cpu_busy);
        let cpu = if rates.cpu_busy >= 0.5 {
            self.bad(&cpu)
        } else {
            self.good(&cpu)
        };
        vec![
            format!(
                "  client    {:>4} req/s offered  {served}  p50 {}  p99 {}",
                rate(rates.client_offered_rps),
                millis(rates.client_p50_ms),
                millis(rates.client_p99_ms)
            ),
            format!(
                "  attack    {}/s offered  {}/s dropped by {who}  {}/s ring full",
                pps(rates.offered_pps),
                pps(rates.dropped_pps),
                pps(rates.ring_full_pps)
            ),
            format!(
                "  host CPU  {cpu} receiving  {} per dropped packet",
                nanos(rates.ns_per_drop)
            ),
        ]
    }

    /// Replaces the live panel with the phase's figures.
    pub fn phase_done(&mut self, enforcement: Enforcement, rates: &Rates) {
        if self.tty {
            let mut out = std::io::stdout().lock();
            if self.panel > 0 {
                let _ = write!(out, "\x1b[{}A", self.panel);
                for _ in 0..self.panel {
                    let _ = writeln!(out, "\r\x1b[2K");
                }
                let _ = write!(out, "\x1b[{}A", self.panel);
            }
            let _ = out.flush();
            drop(out);
            self.panel = 0;
            self.line(&self.dim(&format!("  whole phase, {:.0} s:", rates.seconds)));
            for line in self.panel_lines(enforcement, rates) {
                self.line(&line);
            }
        } else {
            self.line(&format!(
                "  phase: client {}/{} req/s p99 {}; attack {}/s, dropped {}/s, ring full {}/s; cpu {:.0} %, {} per drop",
                rate(rates.client_served_rps),
                rate(rates.client_offered_rps),
                millis(rates.client_p99_ms),
                pps(rates.offered_pps),
                pps(rates.dropped_pps),
                pps(rates.ring_full_pps),
                100.0 * rates.cpu_busy,
                nanos(rates.ns_per_drop)
            ));
        }
    }

    /// The summary table: both phases side by side, with dockfw's gain.
    pub fn summary(
        &mut self,
        duration: Duration,
        attack_rate: u64,
        legit_rate: u32,
        phases: &[Rates; 2],
    ) {
        let [before, after] = phases;
        self.line("");
        self.line(&self.bold(&format!(
            "Summary: {} s per phase, SYN flood at {}/s, client at {legit_rate} req/s",
            duration.as_secs(),
            pps(attack_rate as f64)
        )));
        self.line("");
        for line in summary_table(before, after) {
            self.line(&line);
        }
        self.line("");
        for line in conclusion(before, after) {
            self.line(&line);
        }
    }
}

/// The table's rows; the figures are what the test reads back.
pub fn summary_table(before: &Rates, after: &Rates) -> Vec<String> {
    let row = |label: &str, a: String, b: String, gain: String| {
        format!("{label:<26}{a:>15}{b:>15}   {gain}")
    };
    let percent = |share: f64| format!("{:.0} %", 100.0 * share);
    vec![
        row(
            "",
            Enforcement::DockerUser.label().into(),
            Enforcement::Dockfw.label().into(),
            "dockfw gain".into(),
        ),
        row(
            "client requests served",
            format!("{}/s", rate(before.client_served_rps)),
            format!("{}/s", rate(after.client_served_rps)),
            ratio(after.client_served_rps, before.client_served_rps, "x"),
        ),
        row(
            "client requests kept",
            percent(before.served_share()),
            percent(after.served_share()),
            String::new(),
        ),
        row(
            "client latency p99",
            millis(before.client_p99_ms),
            millis(after.client_p99_ms),
            match (before.client_p99_ms, after.client_p99_ms) {
                (Some(a), Some(b)) => ratio(a, b, "x lower"),
                _ => String::new(),
            },
        ),
        row(
            "attack offered",
            format!("{}/s", pps(before.offered_pps)),
            format!("{}/s", pps(after.offered_pps)),
            String::new(),
        ),
        row(
            "attack dropped by policy",
            percent(before.dropped_share()),
            percent(after.dropped_share()),
            String::new(),
        ),
        row(
            "lost to a full ring",
            format!("{}/s", pps(before.ring_full_pps)),
            format!("{}/s", pps(after.ring_full_pps)),
            String::new(),
        ),
        row(
            "host CPU receiving",
            percent(before.cpu_busy),
            percent(after.cpu_busy),
            ratio(before.cpu_busy, after.cpu_busy, "x less"),
        ),
        row(
            "CPU per dropped packet",
            nanos(before.ns_per_drop),
            nanos(after.ns_per_drop),
            match (before.ns_per_drop, after.ns_per_drop) {
                (Some(a), Some(b)) => ratio(a, b, "x less"),
                _ => String::new(),
            },
        ),
    ]
}

/// Two sentences that say what the table means.
fn conclusion(before: &Rates, after: &Rates) -> Vec<String> {
    let mut lines = Vec::new();
    if let (Some(a), Some(b)) = (before.ns_per_drop, after.ns_per_drop)
        && b > 0.0
    {
        lines.push(format!(
            "dockfw dropped the attack for {:.1}x less host CPU per packet than DOCKER-USER:",
            a / b
        ));
        lines.push(
            "XDP drops it in the driver, before conntrack, NAT and routing ever see it.".into(),
        );
    }
    lines.push(format!(
        "The client got {:.0} % of its requests through with DOCKER-USER alone, {:.0} % with dockfw.",
        100.0 * before.served_share(),
        100.0 * after.served_share()
    ));
    lines
}

/// `a / b` as `12.3x LABEL` (empty when `b` is zero).
fn ratio(a: f64, b: f64, label: &str) -> String {
    if b > 0.0 && a.is_finite() {
        let value = a / b;
        if value >= 100.0 {
            format!("{value:.0}{label}")
        } else {
            format!("{value:.1}{label}")
        }
    } else {
        String::new()
    }
}

/// Packets per second: `1.50 M`, `50.0 k`, `900`.
pub fn pps(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

/// Requests per second.
fn rate(value: f64) -> String {
    format!("{value:.0}")
}

/// `0.4 ms`, `210 ms`, `-`.
fn millis(value: Option<f64>) -> String {
    match value {
        Some(ms) if ms < 10.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{} ms", thousands(ms.round() as u64)),
        None => "-".into(),
    }
}

/// `1,450 ns`, `-`.
fn nanos(value: Option<f64>) -> String {
    value.map_or_else(
        || "-".into(),
        |ns| format!("{} ns", thousands(ns.round() as u64)),
    )
}

/// `1234567` as `1,234,567`.
pub fn thousands(value: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(pps(1_500_000.0), "1.50 M");
        assert_eq!(pps(50_000.0), "50.0 k");
        assert_eq!(millis(Some(0.42)), "0.4 ms");
        assert_eq!(millis(Some(1234.0)), "1,234 ms");
        assert_eq!(ratio(1450.0, 95.0, "x less"), "15.3x less");
        assert_eq!(ratio(1.0, 0.0, "x"), "");
    }

    #[test]
    fn the_summary_fits_80_columns() {
        let phase = |cpu: f64, ns: f64| Rates {
            seconds: 20.0,
            offered_pps: 1_500_000.0,
            dropped_pps: 700_000.0,
            ring_full_pps: 800_000.0,
            cpu_busy: cpu,
            ns_per_drop: Some(ns),
            client_offered_rps: 100.0,
            client_served_rps: 55.0,
            client_p50_ms: Some(0.4),
            client_p99_ms: Some(1_012.0),
        };
        for line in summary_table(&phase(1.0, 1_428.0), &phase(0.14, 95.0))
            .iter()
            .chain(&conclusion(&phase(1.0, 1_428.0), &phase(0.14, 95.0)))
        {
            assert!(
                line.chars().count() <= 80,
                "{} columns: {line}",
                line.chars().count()
            );
        }
    }
}

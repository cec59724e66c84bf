//! What the demo shows. On a terminal: a panel per phase, redrawn in place
//! every second, with a progress bar and colour (unless `NO_COLOR`). On a
//! pipe or a file: one plain line per second. Every line fits 80 columns.

use std::{
    io::{IsTerminal as _, Write as _},
    time::Duration,
};

use super::{
    phase::{Enforcement, Rates},
    summary::{conclusion, summary_table},
    units::{millis, nanos, pps, rate},
};

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
        self.line(&self.bold(&heading));
        self.line(&self.dim(&format!("  ({how})")));
    }

    /// Shows the last second of a running phase.
    pub fn tick(&mut self, elapsed: Duration, total: Duration, rates: &Rates) {
        let elapsed_s = elapsed.as_secs().min(total.as_secs());
        if !self.tty {
            println!("{}", plain_tick(elapsed_s, rates));
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
        lines.extend(self.panel_lines(rates));
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

    fn panel_lines(&self, rates: &Rates) -> Vec<String> {
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
                "  attack    {}/s offered  {}/s dropped  {}/s ring full",
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
    pub fn phase_done(&mut self, rates: &Rates) {
        if self.tty && self.panel > 0 {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\x1b[{}A", self.panel);
            for _ in 0..self.panel {
                let _ = writeln!(out, "\r\x1b[2K");
            }
            let _ = write!(out, "\x1b[{}A", self.panel);
            let _ = out.flush();
        }
        self.panel = 0;
        self.line(&self.dim(&format!("  whole phase, {:.0} s:", rates.seconds)));
        for line in self.panel_lines(rates) {
            self.line(&line);
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

/// One plain line per second (not a terminal).
fn plain_tick(elapsed_s: u64, rates: &Rates) -> String {
    format!(
        "  {elapsed_s:>3}s  client {:>4}/{:<4} req/s  attack {:>7}/s  dropped {:>7}/s  cpu {:>3.0}%",
        rate(rates.client_served_rps),
        rate(rates.client_offered_rps),
        pps(rates.offered_pps),
        pps(rates.dropped_pps),
        100.0 * rates.cpu_busy
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_lines_fit_80_columns() {
        let wide = Rates {
            seconds: 3600.0,
            offered_pps: 888_888.0,
            dropped_pps: 888_888.0,
            ring_full_pps: 888_888.0,
            cpu_busy: 1.0,
            ns_per_drop: Some(88_888.0),
            client_offered_rps: 2_000.0,
            client_served_rps: 2_000.0,
            client_p50_ms: Some(8_888.0),
            client_p99_ms: Some(8_888.0),
        };
        let screen = Screen {
            tty: true,
            color: false,
            panel: 0,
        };
        for line in screen
            .panel_lines(&wide)
            .iter()
            .chain([&plain_tick(3600, &wide)])
        {
            assert!(
                line.chars().count() <= 80,
                "{} columns: {line}",
                line.chars().count()
            );
        }
    }
}

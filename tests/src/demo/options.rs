//! The demo's command line: three knobs (`--duration`, `--rate`, `--keep`),
//! the legitimate load, and `--teardown` for a topology left up by `--keep`
//! (or by a demo that was killed).

use std::time::Duration;

/// `--help`.
pub const USAGE: &str = "\
usage: dockfw-demo [--duration D] [--rate PPS] [--legit-rate RPS] [--keep]
       dockfw-demo --teardown

Starts a real dockerd with a published HTTP container in network namespaces
it creates, serves a legitimate client while an attacker floods the
published port with TCP SYNs, first with only a DOCKER-USER drop rule, then
with dockfw enforcing the same rule in XDP, and compares the two. Removes
everything it created when it ends, also on Ctrl-C. Needs root and two CPUs.

  --duration D      length of each phase (default 20s; e.g. 5s, 1m)
  --rate PPS        attack rate in packets per second (default 1.5M; e.g.
                    50000, 200k, 2M)
  --legit-rate RPS  the legitimate client's requests per second (default 100)
  --keep            leave the topology and dockfw running afterwards and print
                    how to attach `dockfw top`, scrape /metrics and tear down
  --teardown        remove what a --keep run (or a killed demo) left behind
  -h, --help        this text";

/// Default phase length: both phases, setup and teardown stay under two
/// minutes.
const DEFAULT_DURATION: Duration = Duration::from_secs(20);
/// Default attack rate: above what one core can drop through conntrack and
/// DNAT (~0.7 Mpps in ARCHITECTURE.md), well below what XDP drops (>8 Mpps).
const DEFAULT_RATE: u64 = 1_500_000;
/// Default legitimate load.
const DEFAULT_LEGIT_RATE: u32 = 100;
/// Bounds that keep a typo from starting a 10-hour demo or a 1-pps flood.
const MAX_DURATION: Duration = Duration::from_secs(3600);
const RATE_RANGE: (u64, u64) = (1_000, 20_000_000);
const LEGIT_RANGE: (u32, u32) = (1, 2_000);

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Run both phases.
    Run(Options),
    /// Remove kept or left-over topologies.
    Teardown,
    /// Print the usage.
    Help,
}

/// The knobs of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Length of each phase.
    pub duration: Duration,
    /// Attack packets per second.
    pub rate: u64,
    /// Legitimate requests per second.
    pub legit_rate: u32,
    /// Leave everything up afterwards.
    pub keep: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            duration: DEFAULT_DURATION,
            rate: DEFAULT_RATE,
            legit_rate: DEFAULT_LEGIT_RATE,
            keep: false,
        }
    }
}

/// Parses the arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Mode, String> {
    let mut options = Options::default();
    let mut teardown = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "-h" | "--help" => return Ok(Mode::Help),
            "--duration" => options.duration = parse_duration(&value()?)?,
            "--rate" => options.rate = parse_rate(&value()?)?,
            "--legit-rate" => options.legit_rate = parse_legit_rate(&value()?)?,
            "--keep" => options.keep = true,
            "--teardown" => teardown = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if teardown {
        if options != Options::default() {
            return Err("--teardown takes no other option".into());
        }
        return Ok(Mode::Teardown);
    }
    Ok(Mode::Run(options))
}

/// `20s`, `1m`, `90` (seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            dockfw::cli::parse_duration(text).map_err(|error| format!("--duration: {error}"))?
        }
    };
    if duration < Duration::from_secs(1) || duration > MAX_DURATION {
        return Err(format!(
            "--duration {text}: between 1s and {}s, please",
            MAX_DURATION.as_secs()
        ));
    }
    Ok(duration)
}

/// `50000`, `200k`, `1.5M`.
fn parse_rate(text: &str) -> Result<u64, String> {
    let (number, scale) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 1e3),
        Some((at, 'm' | 'M')) => (&text[..at], 1e6),
        _ => (text, 1.0),
    };
    let rate = number.replace('_', "").parse::<f64>().map_err(|_| {
        format!("--rate {text:?}: a number of packets per second like 50000, 200k or 1.5M")
    })? * scale;
    let (low, high) = RATE_RANGE;
    if !(low as f64..=high as f64).contains(&rate) {
        return Err(format!(
            "--rate {text}: between {low} and {high} packets per second, please"
        ));
    }
    Ok(rate.round() as u64)
}

fn parse_legit_rate(text: &str) -> Result<u32, String> {
    let (low, high) = LEGIT_RANGE;
    match text.parse::<u32>() {
        Ok(rate) if (low..=high).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "--legit-rate {text:?}: requests per second between {low} and {high}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn knobs_parse() {
        let Ok(Mode::Run(options)) = parse(&args("--duration 5 --rate 50k --keep --legit-rate=20"))
        else {
            panic!("parse failed");
        };
        assert_eq!(options.duration, Duration::from_secs(5));
        assert_eq!(options.rate, 50_000);
        assert_eq!(options.legit_rate, 20);
        assert!(options.keep);
        let Ok(Mode::Run(options)) = parse(&args("--duration=1m --rate 1.5M")) else {
            panic!("parse failed");
        };
        assert_eq!((options.duration.as_secs(), options.rate), (60, 1_500_000));
        assert_eq!(parse(&args("")), Ok(Mode::Run(Options::default())));
        assert_eq!(parse(&args("--teardown")), Ok(Mode::Teardown));
        assert_eq!(parse(&args("-h")), Ok(Mode::Help));
    }

    #[test]
    fn mistakes_are_refused_with_a_reason() {
        for (line, needle) in [
            ("--rate", "needs a value"),
            ("--rate lots", "packets per second"),
            ("--rate 10", "between"),
            ("--duration 0s", "duration"),
            ("--duration 2h", "between"),
            ("--teardown --keep", "no other option"),
            ("--fast", "unknown"),
        ] {
            let error = parse(&args(line)).expect_err(line);
            assert!(error.contains(needle), "{line}: {error}");
        }
    }
}

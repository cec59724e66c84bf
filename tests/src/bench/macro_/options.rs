//! The macro benchmark's command line.

use std::{path::PathBuf, time::Duration};

use super::{
    legit::Load,
    variants::{ALL, Variant},
};

/// Usage text.
pub const USAGE: &str = "\
usage: dockfw-bench macro [--runs N] [--seconds S] [--only KEYS] [--ports N] [--bans N]
                          [--rules N] [--flood-rate PPS] [--no-legit] [--legit-rate R] [--legit-seconds S]
                          [--legit-floods PPS,...] [--dockfw PATH] [--out DIR]

  --runs N            floods per variant and flood kind; medians are reported (default 3)
  --seconds S         length of each flood, also bounded in packets (default 2)
  --only KEYS         comma-separated variants to run: docker-user, raw, nft-ingress,
                      xdp-filter, floor, matcher, dockfw-native, dockfw-generic, dockfw-tc
                      (ratios needing a skipped variant show n/a)
  --ports N           published TCP ports in Docker (default 1000)
  --coalesce-us N     the receiving veth's NAPI polls again N us after a poll that found
                      work instead of waiting to be woken, as a NIC's rx-usecs (default 0:
                      woken by every burst)
  --bans N            banned IPv4 prefixes for dockfw (default 100000)
  --flood-rate PPS    pace the measured floods at PPS instead of as fast as the generator
                      goes: every variant then gets the same offered rate, and CPU per
                      drop compares like for like below each one's saturation
  --rules N           dockfw rules on the attacked port, the flood matching the last
                      (default 16, at most 32)
  --no-legit          skip legitimate traffic under attack
  --legit-rate R      HTTP requests per second offered (default 200)
  --legit-seconds S   seconds per flood rate (default 4)
  --legit-floods L    flood rates in pps, 0 = as fast as the generator goes
                      (default 250000,500000,1000000,2000000,4000000,0)
  --dockfw PATH       the dockfw binary (default: $DOCKFW_BIN, else next to this program;
                      `cargo xtask bench` builds it and sets DOCKFW_BIN)
  --out DIR           where macro.md, macro.json and the charts go (default bench/results);
                      with --only and without --out nothing is written";

/// Options of the macro benchmark.
pub struct Options {
    /// Floods per variant and kind.
    pub runs: usize,
    /// Seconds per flood.
    pub seconds: f64,
    /// Variants to run (None: all).
    pub only: Option<Vec<Variant>>,
    /// Published TCP ports.
    pub ports: u16,
    /// Bans.
    pub bans: usize,
    /// Rules on the attacked port.
    pub rules: usize,
    /// Offered rate of the measured floods (None: as fast as it goes).
    pub flood_rate: Option<u64>,
    /// Interrupt coalescing of the receiving veth, in us.
    pub coalesce_us: u32,
    /// Whether to measure legitimate traffic.
    pub legit: bool,
    /// Requests per second.
    pub legit_rate: f64,
    /// Seconds per point.
    pub legit_seconds: f64,
    /// Flood rates of the curve (0: unpaced).
    pub legit_flood_rates: Vec<u64>,
    /// `--dockfw`.
    pub dockfw: Option<PathBuf>,
    /// Report directory (None: the default, unless --only narrowed the run).
    pub out: Option<PathBuf>,
}

impl Options {
    /// Parses the arguments after `macro`; `Err("")` asks for the usage.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            runs: 3,
            seconds: 2.0,
            only: None,
            ports: 1000,
            bans: 100_000,
            rules: 16,
            flood_rate: None,
            coalesce_us: 0,
            legit: true,
            legit_rate: 200.0,
            legit_seconds: 4.0,
            legit_flood_rates: vec![250_000, 500_000, 1_000_000, 2_000_000, 4_000_000, 0],
            dockfw: None,
            out: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            let number = |text: &String| -> Result<f64, String> {
                text.replace('_', "")
                    .parse()
                    .map_err(|_| format!("{flag} takes a number, not {text:?}"))
            };
            match flag.as_str() {
                "--runs" => options.runs = number(value()?)?.max(1.0) as usize,
                "--seconds" => options.seconds = number(value()?)?.clamp(0.2, 30.0),
                "--ports" => options.ports = number(value()?)?.clamp(1.0, 5000.0) as u16,
                "--bans" => options.bans = number(value()?)?.max(0.0) as usize,
                "--flood-rate" => {
                    options.flood_rate = Some(number(value()?)?.clamp(1000.0, 20e6) as u64)
                }
                "--rules" => options.rules = number(value()?)?.clamp(1.0, 32.0) as usize,
                "--coalesce-us" => {
                    options.coalesce_us = number(value()?)?.clamp(0.0, 1000.0) as u32
                }
                "--no-legit" => options.legit = false,
                "--legit-rate" => options.legit_rate = number(value()?)?.clamp(1.0, 5000.0),
                "--legit-seconds" => {
                    options.legit_seconds = number(value()?)?.clamp(0.5, 60.0);
                }
                "--legit-floods" => {
                    options.legit_flood_rates = value()?
                        .split(',')
                        .map(|rate| number(&rate.trim().to_string()).map(|r| r as u64))
                        .collect::<Result<_, _>>()?;
                }
                "--only" => {
                    let keys = value()?;
                    let mut only = Vec::new();
                    for key in keys.split(',') {
                        let variant = ALL
                            .into_iter()
                            .find(|variant| variant.key() == key.trim())
                            .ok_or_else(|| format!("--only: no variant {key:?}"))?;
                        only.push(variant);
                    }
                    options.only = Some(only);
                }
                "--dockfw" => options.dockfw = Some(PathBuf::from(value()?)),
                "--out" => options.out = Some(PathBuf::from(value()?)),
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(options)
    }

    /// The variants to run, in run order.
    pub fn variants(&self) -> Vec<Variant> {
        ALL.into_iter()
            .filter(|variant| self.only.as_ref().is_none_or(|only| only.contains(variant)))
            .collect()
    }

    /// The request load of the legitimate-traffic curve.
    pub fn legit_load(&self) -> Load {
        Load {
            rate: self.legit_rate,
            seconds: self.legit_seconds,
            timeout: Duration::from_secs(1),
        }
    }

    /// The `dockfw` binary: `--dockfw`, `$DOCKFW_BIN`, or beside this one
    /// (cargo puts every bin target of a profile in one directory).
    pub fn dockfw_binary(&self) -> Result<PathBuf, String> {
        let candidate = match (&self.dockfw, std::env::var_os("DOCKFW_BIN")) {
            (Some(path), _) => path.clone(),
            (None, Some(path)) => PathBuf::from(path),
            (None, None) => std::env::current_exe()
                .map_err(|error| format!("locating this program: {error}"))?
                .with_file_name("dockfw"),
        };
        if candidate.is_file() {
            Ok(candidate)
        } else {
            Err(format!(
                "no dockfw binary at {}: build it (`cargo build --release -p dockfw`) and pass \
                 --dockfw PATH, or run `cargo xtask bench`, which does both",
                candidate.display()
            ))
        }
    }

    /// Where the report goes, if anywhere.
    pub fn out_dir(&self) -> Option<PathBuf> {
        match (&self.out, &self.only) {
            (Some(out), _) => Some(out.clone()),
            (None, None) => Some(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join("bench/results"),
            ),
            (None, Some(_)) => None,
        }
    }
}

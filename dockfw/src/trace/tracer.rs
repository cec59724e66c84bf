//! Running frames through the real data-plane code against the live,
//! pinned maps, without side effects.
//!
//! A trace loads its own instance of the programs with the read-only global
//! [`dockfw_common::TRACE_MODE_GLOBAL`] set: that instance reads the pinned
//! maps (ports, policies, rules, bans, buckets, fragments) like the attached
//! one, but writes no counter, spends no token, remembers no fragment and
//! emits no event; it records its one decision in its private
//! [`dockfw_common::TRACE_MAP`]. The instance is attached nowhere and runs
//! only through `BPF_PROG_TEST_RUN`.

use std::path::Path;

use dockfw_common::{PINNED_MAPS, PortPolicy, RuleAction, TraceRecord};

use crate::dataplane::{
    Dataplane, LoadError, LoadOptions,
    load::maps_pin_dir,
    testrun::{Program, RunError, run},
};

/// Why a trace could not run.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Loading the trace instance failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A pinned map is missing: loading would create (and pin) it, which a
    /// trace must not do.
    #[error(
        "the pinned map {0} is missing (a data plane of another dockfw version?); a trace \
         creates nothing, so it stops here"
    )]
    MissingPin(String),
    /// The test run failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The trace record could not be read or reset.
    #[error("reading the trace record: {0}")]
    Record(#[source] aya::maps::MapError),
    /// The program ran but recorded nothing (an older object without trace
    /// support).
    #[error("the data plane recorded no decision for this frame")]
    NotRecorded,
}

/// A loaded trace instance.
pub struct Tracer {
    dataplane: Dataplane,
}

impl Tracer {
    /// Loads a trace instance over the maps pinned under `pin_dir`.
    pub fn open(pin_dir: &Path) -> Result<Self, TraceError> {
        let maps = maps_pin_dir(pin_dir);
        if !maps.join(dockfw_common::CONFIG_MAP).exists() {
            return Err(LoadError::NotPinned(maps).into());
        }
        if let Some(missing) = PINNED_MAPS.iter().find(|name| !maps.join(name).exists()) {
            return Err(TraceError::MissingPin((*missing).to_owned()));
        }
        let options = LoadOptions {
            pin_dir: Some(pin_dir.to_path_buf()),
            trace: true,
            ..LoadOptions::default()
        };
        Ok(Self {
            dataplane: Dataplane::load(&options)?,
        })
    }

    /// Runs one frame through the XDP program (the TC program shares its
    /// core) as if it arrived on `ifindex`, and returns the decision.
    pub fn trace(&mut self, frame: &[u8], ifindex: Option<u32>) -> Result<TraceRecord, TraceError> {
        self.dataplane
            .maps
            .trace
            .set(0, TraceRecord::default(), 0)
            .map_err(TraceError::Record)?;
        run(&mut self.dataplane, Program::Xdp, frame, ifindex, 1)?;
        let record = self
            .dataplane
            .maps
            .trace
            .get(&0, 0)
            .map_err(TraceError::Record)?;
        if record.written == 0 {
            return Err(TraceError::NotRecorded);
        }
        Ok(record)
    }

    /// The rule a record matched, as the data plane holds it (for the
    /// rate-limit replay of captures).
    pub fn rule(&self, record: &TraceRecord) -> Option<RuleAction> {
        let policy: PortPolicy = self.dataplane.maps.policies.get(&record.slot, 0).ok()?;
        self.dataplane
            .maps
            .rules
            .get(&(policy.rule_base + record.rule_index), 0)
            .ok()
    }
}

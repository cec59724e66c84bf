//! The host's local addresses, kept current in the data plane for ports
//! published on the wildcard address.

use ipnet::IpNet;
use tracing::{info, warn};

use crate::dataplane::{
    Maps,
    local::{LocalUpdate, LocalWriter, local_set},
};

/// What the daemon last wrote, and why the last read or write failed.
#[derive(Debug, Default)]
pub struct LocalAddresses {
    writer: LocalWriter,
    /// The prefixes in force (`None`: not written yet).
    pub prefixes: Option<Vec<IpNet>>,
    /// Why the last read or write failed.
    pub error: Option<String>,
}

impl LocalAddresses {
    /// Re-reads the host's local addresses and activates them when they
    /// changed. On failure the set in force stays and the error is kept for
    /// the status.
    pub fn refresh(&mut self, maps: &mut Maps) {
        let prefixes = match crate::host::local_prefixes() {
            Ok(prefixes) => prefixes,
            Err(error) => {
                if self.error.is_none() {
                    warn!(%error, "reading the host's local addresses failed; the last set stays in force");
                }
                self.error = Some(format!("reading the local routing table: {error}"));
                return;
            }
        };
        if self.prefixes.as_ref() == Some(&prefixes) && self.error.is_none() {
            return;
        }
        match self.writer.write(maps, &prefixes) {
            Ok(update) => {
                if update == LocalUpdate::Flipped {
                    let list: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
                    info!(prefixes = %list.join(" "), "wildcard ports match these local addresses");
                }
                if overflows(&prefixes) {
                    warn!("{}", super::report::local_overflow());
                }
                self.prefixes = Some(prefixes);
                self.error = None;
            }
            Err(error) => {
                warn!(%error, "writing the host's local addresses failed; the last set stays in force");
                self.error = Some(error.to_string());
            }
        }
    }

    /// True when the set in force holds fewer prefixes than the host has.
    pub fn overflowing(&self) -> bool {
        self.prefixes.as_deref().is_some_and(overflows)
    }
}

fn overflows(prefixes: &[IpNet]) -> bool {
    local_set(prefixes).flags != 0
}

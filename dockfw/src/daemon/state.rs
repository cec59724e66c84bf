//! State the daemon keeps across restarts next to the control socket (the
//! maps themselves are pinned): statistic ids, so counters keep counting the
//! same things, and the policy generation number.

use std::{fs, io, path::Path};

use serde::{Deserialize, Serialize};

use crate::compile::StatRegistry;

/// File name in the run directory.
pub const STATE_FILE: &str = "state.json";

/// The persisted state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    /// Statistic ids.
    pub registry: StatRegistry,
    /// Policies activated so far.
    pub applies: u64,
}

impl PersistedState {
    /// Reads the state; a missing or unreadable file gives the default (the
    /// ids are then re-allocated and their counters zeroed).
    pub fn load(path: &Path) -> Self {
        fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Writes the state atomically (temporary file + rename).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let temporary = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        fs::write(&temporary, bytes)?;
        fs::rename(&temporary, path)
    }
}

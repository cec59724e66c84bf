//! The engine's DOCKER-USER mirror (`dockfw run --mirror-docker-user`):
//! new readings of the chain, its sets and Docker's DNAT go through the
//! same single compile and generation flip as every other change.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{DaemonError, engine::Engine};
use crate::{
    mirror::{
        daemon::{MirrorStatus, watch_sources},
        source::Snapshot,
    },
    model::{Policy, PublishedPort},
};

/// The receiving end of the mirror's readings, and the task producing them
/// (none when mirroring is off: the channel then never changes).
pub struct MirrorFeed {
    /// New snapshots.
    pub rx: watch::Receiver<Option<Arc<Snapshot>>>,
    /// Kept so that `rx.changed()` waits forever when mirroring is off.
    _tx: Option<watch::Sender<Option<Arc<Snapshot>>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl MirrorFeed {
    /// Starts reading the sources every second when `enabled`.
    pub fn start(enabled: bool, ifaces: Vec<String>, shutdown: CancellationToken) -> Self {
        let (tx, rx) = watch::channel(None);
        if enabled {
            let task = tokio::spawn(watch_sources(ifaces, tx, shutdown));
            Self {
                rx,
                _tx: None,
                task: Some(task),
            }
        } else {
            Self {
                rx,
                _tx: Some(tx),
                task: None,
            }
        }
    }

    /// Waits for the reading task to end (after shutdown).
    pub async fn stop(self) {
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

impl Engine {
    /// New readings of DOCKER-USER's sources: recompiles when they differ
    /// from the ones in force.
    pub fn set_mirror_snapshot(&mut self, snapshot: Arc<Snapshot>) -> Result<(), DaemonError> {
        let Some(mirror) = self.mirror.as_mut() else {
            return Ok(());
        };
        if !mirror.set_snapshot(snapshot) {
            return Ok(());
        }
        self.reconcile()
    }

    /// Appends the mirrored rules to `policy` and returns the ports to
    /// compile (the published ports, plus the entries mirrored rules need).
    pub(super) fn with_mirror(&mut self, policy: &mut Policy) -> Vec<PublishedPort> {
        match self.mirror.as_mut() {
            Some(mirror) => mirror.apply(policy, &self.ports),
            None => self.ports.clone(),
        }
    }

    /// The mirror's netfilter-only rules for `dockfw trace` (`None`: off).
    pub fn mirror_trace_context(&self) -> Option<crate::trace::context::MirrorContext> {
        self.mirror.as_ref().map(|mirror| mirror.trace_context())
    }

    /// What `dockfw status` shows about mirroring (`None`: off).
    pub fn mirror_status(&self) -> Option<MirrorStatus> {
        self.mirror.as_ref().map(|mirror| mirror.status())
    }
}

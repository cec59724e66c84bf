//! The Docker watcher: keeps a [`DockerState`] (every published port) current
//! from the engine's API and event stream, and survives the engine going
//! away.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dockfw::docker::DockerError> {
//! use dockfw::docker::{DockerHost, DockerState, DockerWatcher};
//! use tokio_util::sync::CancellationToken;
//!
//! let watcher = DockerWatcher::new(DockerHost::from_env()?);
//! let sync_errors = watcher.sync_errors(); // for /metrics
//! let (tx, mut rx) = tokio::sync::watch::channel(DockerState::default());
//! let stop = CancellationToken::new();
//! let task = tokio::spawn(watcher.run(tx, stop.clone()));
//! while rx.changed().await.is_ok() {
//!     let state = rx.borrow_and_update().clone();
//!     if state.synced {
//!         // recompile the policy against state.ports and swap the maps
//!     }
//! #   break;
//! }
//! stop.cancel();
//! let _ = task.await;
//! # Ok(()) }
//! ```

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{
    DockerError, DockerHost,
    session::{PortsById, Session, affected_container},
};
use crate::model::PublishedPort;

/// What the watcher knows about the engine; published on a
/// [`tokio::sync::watch`] channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DockerState {
    /// Every published port of every running or paused container, sorted by
    /// key then container id. While disconnected: the last known set.
    pub ports: Vec<PublishedPort>,
    /// Whether the engine is reachable and the event stream is followed.
    pub connected: bool,
    /// Whether `ports` comes from at least one full sync. Until then it is
    /// empty because nothing is known, not because nothing is published: a
    /// consumer must not act on it (e.g. must not clear the kernel map).
    pub synced: bool,
    /// Incremented on every change of this state; 0 until the first change.
    pub generation: u64,
}

/// Timing of the watcher. The defaults keep the product promise: a change
/// reaches the state within `debounce` plus the inspect round trips after
/// the engine reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchOptions {
    /// How long to gather events before re-inspecting (bursts such as
    /// kill + die + stop, or `docker compose up`, cost one update).
    pub debounce: Duration,
    /// First reconnect delay; doubled after each failure.
    pub backoff_initial: Duration,
    /// Longest reconnect delay. It bounds how long after the engine's
    /// return the ports are resynced, so it stays short: a connect attempt
    /// on a local socket costs next to nothing.
    pub backoff_max: Duration,
    /// Timeout of one API request (not of the event stream). Whole seconds
    /// (bollard's granularity), at least one.
    pub request_timeout: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(50),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Follows one Docker engine and publishes its published ports.
///
/// [`run`](Self::run) connects, lists the running containers, inspects each
/// and publishes a full snapshot; then it follows `/events` (container
/// start, restart, die, stop, kill, destroy, pause, unpause, rename, update;
/// network connect, disconnect), re-inspects the containers an event names
/// and publishes the new snapshot. When the engine goes away it keeps the
/// last known ports, marks the state disconnected, reconnects with
/// exponential backoff and resyncs fully. Failed attempts are counted in
/// [`sync_errors`](Self::sync_errors).
#[derive(Debug)]
pub struct DockerWatcher {
    host: DockerHost,
    options: WatchOptions,
    sync_errors: Arc<AtomicU64>,
}

/// Why a connected session ended.
enum SessionEnd {
    /// The state channel has no receiver left: nobody listens.
    Unobserved,
}

impl DockerWatcher {
    /// A watcher for the engine at `host`, with default [`WatchOptions`].
    pub fn new(host: DockerHost) -> Self {
        Self {
            host,
            options: WatchOptions::default(),
            sync_errors: Arc::default(),
        }
    }

    /// Replaces the timing options.
    #[must_use]
    pub fn with_options(mut self, options: WatchOptions) -> Self {
        self.options = options;
        self
    }

    /// The engine this watcher follows.
    pub fn host(&self) -> &DockerHost {
        &self.host
    }

    /// Counter of failed syncs (failed connects, failed API calls, event
    /// streams that broke), shared with the running watcher, for metrics.
    pub fn sync_errors(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.sync_errors)
    }

    /// Runs until `shutdown` is cancelled or every receiver of `tx` is
    /// dropped. Never fails: an unreachable engine is retried forever, and
    /// the last known ports stay in `tx` meanwhile.
    pub async fn run(self, tx: watch::Sender<DockerState>, shutdown: CancellationToken) {
        let mut delay = self.options.backoff_initial;
        // Set when the engine was lost (or never reached); cleared, with a
        // log line, by the next successful sync.
        let mut unreachable_since: Option<Instant> = None;
        let mut connected = false;
        loop {
            let outcome = tokio::select! {
                () = shutdown.cancelled() => break,
                outcome = self.session(&tx, &mut delay, &mut connected, &mut unreachable_since) => outcome,
            };
            let error = match outcome {
                Ok(SessionEnd::Unobserved) => {
                    debug!("no receiver for the Docker state left; stopping the watcher");
                    break;
                }
                Err(error) => error,
            };
            self.sync_errors.fetch_add(1, Ordering::Relaxed);
            tx.send_if_modified(|state| {
                let changed = state.connected;
                if changed {
                    state.connected = false;
                    state.generation += 1;
                }
                changed
            });
            if connected || unreachable_since.is_none() {
                warn!(
                    host = %self.host,
                    error = %error_chain(&error),
                    retry_in = ?delay,
                    "Docker engine unreachable, keeping last known published ports"
                );
                unreachable_since = Some(Instant::now());
            } else {
                debug!(
                    host = %self.host,
                    error = %error_chain(&error),
                    retry_in = ?delay,
                    "Docker engine still unreachable"
                );
            }
            connected = false;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.options.backoff_max);
        }
        debug!(host = %self.host, "Docker watcher stopped");
    }

    /// One connection: sync, then follow events until something breaks.
    async fn session(
        &self,
        tx: &watch::Sender<DockerState>,
        delay: &mut Duration,
        connected: &mut bool,
        unreachable_since: &mut Option<Instant>,
    ) -> Result<SessionEnd, DockerError> {
        let session = Session::connect(&self.host, self.options.request_timeout).await?;
        let since = session.events_since().await?;
        // Created before the list; `since` covers the gap until the engine
        // has subscribed it.
        let mut events = Box::pin(session.events(since));
        let mut ports = session.full_sync().await?;
        publish(tx, &ports);
        *delay = self.options.backoff_initial;
        *connected = true;
        match unreachable_since.take() {
            Some(since) => info!(
                host = session.host(),
                containers = ports.len(),
                unreachable_for = ?since.elapsed(),
                "reconnected to the Docker engine, published ports resynced"
            ),
            None => info!(
                host = session.host(),
                containers = ports.len(),
                "connected to the Docker engine, published ports synced"
            ),
        }

        let mut pending = BTreeSet::new();
        let mut deadline: Option<Instant> = None;
        loop {
            tokio::select! {
                () = sleep_until(deadline), if deadline.is_some() => {
                    deadline = None;
                    session.refresh(&mut ports, std::mem::take(&mut pending)).await?;
                    publish(tx, &ports);
                }
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        if let Some(id) = affected_container(&event) {
                            debug!(container = %id, action = event.action.as_deref().unwrap_or_default(), "Docker event");
                            pending.insert(id);
                            deadline.get_or_insert_with(|| Instant::now() + self.options.debounce);
                        }
                    }
                    Some(Err(source)) => {
                        return Err(DockerError::Api { call: "GET /events", host: session.host().to_owned(), source });
                    }
                    None => return Err(DockerError::EventsEnded { host: session.host().to_owned() }),
                },
                () = tx.closed() => return Ok(SessionEnd::Unobserved),
            }
        }
    }
}

/// Sleeps until `deadline`; the caller only polls it when there is one.
async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

/// Publishes a synced, connected snapshot; no notification if nothing changed.
fn publish(tx: &watch::Sender<DockerState>, by_id: &PortsById) {
    let mut ports: Vec<PublishedPort> = by_id.values().flatten().cloned().collect();
    ports.sort_by(|a, b| {
        (a.key, &a.container.id, a.container_port).cmp(&(b.key, &b.container.id, b.container_port))
    });
    tx.send_if_modified(|state| {
        if state.connected && state.synced && state.ports == ports {
            return false;
        }
        state.ports = ports;
        state.connected = true;
        state.synced = true;
        state.generation += 1;
        true
    });
}

/// `error: cause: cause`, for one log line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

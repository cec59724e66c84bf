//! The daemon's event buffer: the latest sampled events (bounded) and a
//! fan-out to every subscriber (`dockfw events`), where a slow subscriber
//! loses events instead of holding up the reader or growing memory.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::SampledEvent;

/// Events kept for late subscribers and `dockfw top`.
pub const DEFAULT_BUFFER: usize = 4096;
/// Events queued per subscriber before it starts losing them.
const SUBSCRIBER_QUEUE: usize = 1024;

/// A source address among the sampled events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCount {
    /// Source address.
    pub source: IpAddr,
    /// Sampled events from it in the window.
    pub events: u64,
    /// Published port of its latest event.
    pub published_port: Option<String>,
    /// Reason of its latest event.
    pub reason: String,
    /// Rule of its latest event.
    pub rule: Option<String>,
}

#[derive(Debug)]
struct Inner {
    recent: Mutex<VecDeque<Arc<SampledEvent>>>,
    capacity: usize,
    sender: broadcast::Sender<Arc<SampledEvent>>,
    sampled: AtomicU64,
}

/// Shared by the reader, the control socket and the loop.
#[derive(Clone, Debug)]
pub struct EventHub {
    inner: Arc<Inner>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new(DEFAULT_BUFFER)
    }
}

impl EventHub {
    /// A hub keeping the latest `capacity` events.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_QUEUE);
        Self {
            inner: Arc::new(Inner {
                recent: Mutex::new(VecDeque::with_capacity(capacity.min(DEFAULT_BUFFER))),
                capacity: capacity.max(1),
                sender,
                sampled: AtomicU64::new(0),
            }),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<SampledEvent>>> {
        // The buffer stays consistent whatever panicked while holding it.
        self.inner
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an event: into the buffer (evicting the oldest) and to every
    /// subscriber.
    pub fn publish(&self, event: SampledEvent) {
        let event = Arc::new(event);
        let mut recent = self.recent();
        if recent.len() == self.inner.capacity {
            recent.pop_front();
        }
        recent.push_back(Arc::clone(&event));
        self.inner.sampled.fetch_add(1, Ordering::Relaxed);
        // Sent under the lock, so a subscriber's backlog and stream neither
        // overlap nor leave a gap. No subscriber is not an error.
        let _ = self.inner.sender.send(event);
    }

    /// The buffered events (oldest first) and a receiver for every later
    /// one.
    pub fn subscribe(
        &self,
    ) -> (
        Vec<Arc<SampledEvent>>,
        broadcast::Receiver<Arc<SampledEvent>>,
    ) {
        let recent = self.recent();
        let receiver = self.inner.sender.subscribe();
        (recent.iter().cloned().collect(), receiver)
    }

    /// Events read since the daemon started.
    pub fn sampled(&self) -> u64 {
        self.inner.sampled.load(Ordering::Relaxed)
    }

    /// The buffered events, oldest first.
    pub fn buffered(&self) -> Vec<Arc<SampledEvent>> {
        self.recent().iter().cloned().collect()
    }

    /// The `limit` sources with the most buffered events at or after
    /// `since_ns` (`CLOCK_MONOTONIC`), most first.
    pub fn heaviest_sources(&self, since_ns: u64, limit: usize) -> Vec<SourceCount> {
        heaviest_sources(
            self.recent()
                .iter()
                .filter(|event| event.monotonic_ns >= since_ns)
                .map(Arc::as_ref),
            limit,
        )
    }
}

/// The `limit` most frequent sources among `events` (in time order), ties
/// broken by address so the order is stable.
pub fn heaviest_sources<'a>(
    events: impl Iterator<Item = &'a SampledEvent>,
    limit: usize,
) -> Vec<SourceCount> {
    let mut by_source: HashMap<IpAddr, SourceCount> = HashMap::new();
    for event in events {
        let entry = by_source
            .entry(event.source)
            .or_insert_with(|| SourceCount {
                source: event.source,
                events: 0,
                published_port: None,
                reason: String::new(),
                rule: None,
            });
        entry.events += 1;
        entry.published_port.clone_from(&event.published_port);
        entry.reason.clone_from(&event.reason);
        entry.rule.clone_from(&event.rule);
    }
    let mut sources: Vec<SourceCount> = by_source.into_values().collect();
    sources.sort_by(|a, b| b.events.cmp(&a.events).then(a.source.cmp(&b.source)));
    sources.truncate(limit);
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn event(source: &str, at: u64) -> SampledEvent {
        SampledEvent {
            time: String::new(),
            monotonic_ns: at,
            outcome: "drop".into(),
            reason: "rule".into(),
            source: source.parse().unwrap(),
            source_port: 1234,
            destination: "192.0.2.1".parse().unwrap(),
            destination_port: 8080,
            protocol: "tcp".into(),
            published_port: Some("8080/tcp".into()),
            family: "ipv4".into(),
            container: Some("web".into()),
            rule: Some("drop-bad".into()),
            tcp_flags: "S".into(),
            length: 60,
            iface: "eth0".into(),
            stat_id: 7,
        }
    }

    #[test]
    fn the_buffer_is_bounded_and_keeps_the_latest() {
        let hub = EventHub::new(3);
        for at in 0..5 {
            hub.publish(event("198.51.100.1", at));
        }
        let times: Vec<u64> = hub.buffered().iter().map(|e| e.monotonic_ns).collect();
        assert_eq!(times, [2, 3, 4]);
        assert_eq!(hub.sampled(), 5);
    }

    #[test]
    fn subscribers_get_the_backlog_then_new_events() {
        let hub = EventHub::new(8);
        hub.publish(event("198.51.100.1", 1));
        let (backlog, mut receiver) = hub.subscribe();
        hub.publish(event("198.51.100.2", 2));
        assert_eq!(backlog.len(), 1);
        assert_eq!(receiver.try_recv().unwrap().monotonic_ns, 2);
    }

    #[test]
    fn heaviest_sources_count_within_the_window() {
        let hub = EventHub::new(16);
        for (source, at) in [
            ("198.51.100.1", 1),
            ("198.51.100.2", 5),
            ("198.51.100.2", 6),
            ("198.51.100.3", 7),
            ("198.51.100.1", 8),
            ("198.51.100.2", 9),
        ] {
            hub.publish(event(source, at));
        }
        let top = hub.heaviest_sources(5, 2);
        let got: Vec<(String, u64)> = top
            .iter()
            .map(|count| (count.source.to_string(), count.events))
            .collect();
        assert_eq!(
            got,
            [
                ("198.51.100.2".to_string(), 3),
                ("198.51.100.1".to_string(), 1)
            ]
        );
    }
}

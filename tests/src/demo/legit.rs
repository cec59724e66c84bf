//! The legitimate client: `GET /` of the published container from the
//! internet namespace, open loop as real users are (every request starts on
//! schedule whether or not earlier ones were answered), each counted as
//! served only if the page arrived within [`TIMEOUT`]. A SYN lost to a full
//! ring is retried by TCP after a second, so under an attack the host
//! cannot keep up with, requests time out.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::Scope,
    time::{Duration, Instant},
};

use super::{
    receiver::{self, WAN_CPU},
    signals,
    topology::{Topology, fetch},
};

/// A request not answered within this is lost.
pub const TIMEOUT: Duration = Duration::from_secs(1);
/// Stack of a client thread (it only holds a socket and a small buffer).
const WORKER_STACK: usize = 256 * 1024;
/// Time the workers get to enter the namespace before the schedule starts.
pub const CLIENT_WARM_UP: Duration = Duration::from_millis(200);

/// What the client saw so far.
#[derive(Clone, Debug, Default)]
pub struct ClientStats {
    /// Requests started.
    pub started: u64,
    /// Requests answered within the timeout.
    pub served: u64,
    /// Latency of each served request, in microseconds, in completion order.
    pub latencies_us: Vec<u32>,
}

/// The client: its counters, shared with the worker threads.
#[derive(Default)]
pub struct Client {
    stats: Mutex<ClientStats>,
}

impl Client {
    /// A copy of the counters.
    pub fn snapshot(&self) -> ClientStats {
        self.stats
            .lock()
            .map(|stats| stats.clone())
            .unwrap_or_default()
    }

    fn record(&self, latency: Option<Duration>) {
        if let Ok(mut stats) = self.stats.lock() {
            stats.started += 1;
            if let Some(latency) = latency {
                stats.served += 1;
                stats
                    .latencies_us
                    .push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
            }
        }
    }

    /// Starts the workers in `scope`: `rate` requests per second from now
    /// (after a short warm-up) until `stop` is set. Each worker takes every
    /// `workers`-th slot, and there are enough of them that none is still
    /// busy with its last request when its next slot comes.
    pub fn start<'scope>(
        &'scope self,
        scope: &'scope Scope<'scope, '_>,
        topology: &'scope Topology,
        rate: u32,
        stop: &'scope AtomicBool,
    ) -> Result<(), String> {
        let rate = f64::from(rate);
        let workers = ((rate * (TIMEOUT.as_secs_f64() + 0.5)).ceil() as usize).max(1);
        let gap = Duration::from_secs_f64(workers as f64 / rate);
        let start = Instant::now() + CLIENT_WARM_UP;
        for worker in 0..workers {
            let first = start + Duration::from_secs_f64(worker as f64 / rate);
            std::thread::Builder::new()
                .name(format!("client-{worker}"))
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, move || self.work(topology, first, gap, stop))
                .map_err(|error| format!("starting client thread {worker}: {error}"))?;
        }
        Ok(())
    }

    fn work(&self, topology: &Topology, first: Instant, gap: Duration, stop: &AtomicBool) {
        signals::block_in_this_thread();
        let _inside = topology.wan.enter();
        // The client is part of the internet: it runs beside the generator,
        // not on the host's receiving CPU.
        let _ = receiver::set_affinity(0, WAN_CPU);
        let mut slot = first;
        loop {
            while Instant::now() < slot {
                if stop.load(Ordering::SeqCst) || signals::interrupted() {
                    return;
                }
                let left = slot.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
            if stop.load(Ordering::SeqCst) || signals::interrupted() {
                return;
            }
            let began = Instant::now();
            let served = fetch(Topology::web_addr(), TIMEOUT).is_ok();
            self.record(served.then(|| began.elapsed()));
            slot += gap;
        }
    }
}

/// The `q`-quantile (0..=1) of `values`, in milliseconds (None if empty).
pub fn quantile_ms(values: &[u32], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(index).map(|us| f64::from(*us) / 1000.0)
}

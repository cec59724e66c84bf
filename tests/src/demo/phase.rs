//! One phase: the client and the attack run together for the phase's
//! duration while the counters are sampled every second for the screen;
//! the phase's figures are the differences between the first and the last
//! sample.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use super::{
    attack, docker_user,
    enforcer::Enforcer,
    legit::{CLIENT_WARM_UP, Client, quantile_ms},
    receiver,
    screen::Screen,
    signals,
    topology::Topology,
};

/// How often the screen is refreshed.
const TICK: Duration = Duration::from_secs(1);
/// Time the receiving ring needs to drain after the flood stops.
const DRAIN: Duration = Duration::from_millis(200);

/// Who drops the attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// Only the DOCKER-USER rule.
    DockerUser,
    /// dockfw, mirroring that rule into XDP (the rule stays behind it).
    Dockfw,
}

impl Enforcement {
    /// Column heading and phase name.
    pub fn label(self) -> &'static str {
        match self {
            Self::DockerUser => "DOCKER-USER only",
            Self::Dockfw => "dockfw (XDP)",
        }
    }
}

/// Cumulative counters at one instant.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    at: Option<Instant>,
    /// Frames the generator put on the link (into the host's ring or not).
    offered: u64,
    /// Frames that found the host's receive ring full.
    ring_full: u64,
    /// Packets the phase's enforcement dropped.
    dropped: u64,
    /// The NAPI thread's CPU time.
    cpu_ns: u64,
    /// Client requests started and served.
    started: u64,
    served: u64,
}

/// What the phase measured, as rates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rates {
    /// Seconds measured.
    pub seconds: f64,
    /// Attack frames per second offered.
    pub offered_pps: f64,
    /// Attack packets per second dropped by the enforcement.
    pub dropped_pps: f64,
    /// Frames per second lost to a full receive ring (the host too busy).
    pub ring_full_pps: f64,
    /// Share of one CPU the host spent receiving.
    pub cpu_busy: f64,
    /// Host CPU nanoseconds per dropped packet (None: nothing dropped).
    pub ns_per_drop: Option<f64>,
    /// Client requests per second started.
    pub client_offered_rps: f64,
    /// Client requests per second served in time.
    pub client_served_rps: f64,
    /// Median latency of the served requests (ms).
    pub client_p50_ms: Option<f64>,
    /// 99th percentile latency of the served requests (ms).
    pub client_p99_ms: Option<f64>,
}

impl Rates {
    /// The rates between two samples: the attack's over `attack_seconds`,
    /// the client's over `client_seconds`, latencies as given.
    fn between(
        before: &Counters,
        after: &Counters,
        attack_seconds: f64,
        client_seconds: f64,
        latencies: &[u32],
    ) -> Self {
        let attack_seconds = attack_seconds.max(1e-3);
        let client_seconds = client_seconds.max(1e-3);
        let delta = |from: u64, to: u64| to.saturating_sub(from) as f64;
        let dropped = delta(before.dropped, after.dropped);
        let cpu = delta(before.cpu_ns, after.cpu_ns);
        Self {
            seconds: attack_seconds,
            offered_pps: delta(before.offered, after.offered) / attack_seconds,
            dropped_pps: dropped / attack_seconds,
            ring_full_pps: delta(before.ring_full, after.ring_full) / attack_seconds,
            cpu_busy: cpu / attack_seconds / 1e9,
            ns_per_drop: (dropped > 0.0).then(|| cpu / dropped),
            client_offered_rps: delta(before.started, after.started) / client_seconds,
            client_served_rps: delta(before.served, after.served) / client_seconds,
            client_p50_ms: quantile_ms(latencies, 0.5),
            client_p99_ms: quantile_ms(latencies, 0.99),
        }
    }

    /// Share of the client's requests served in time.
    pub fn served_share(&self) -> f64 {
        if self.client_offered_rps > 0.0 {
            self.client_served_rps / self.client_offered_rps
        } else {
            0.0
        }
    }

    /// Share of the attack the enforcement dropped.
    pub fn dropped_share(&self) -> f64 {
        if self.offered_pps > 0.0 {
            (self.dropped_pps / self.offered_pps).min(1.0)
        } else {
            0.0
        }
    }
}

/// The phase's inputs.
pub struct Phase<'a> {
    /// The world.
    pub topology: &'a Topology,
    /// dockfw, in the dockfw phase.
    pub enforcer: Option<&'a Enforcer>,
    /// The receiving veth's NAPI kthread.
    pub napi: u32,
    /// Attack rate.
    pub rate: u64,
    /// Client requests per second.
    pub legit_rate: u32,
    /// How long.
    pub duration: Duration,
}

impl Phase<'_> {
    fn read(&self, client: &Client) -> Result<Counters, String> {
        let topology = self.topology;
        let xmit = receiver::tx_queue_stat(&topology.wan, &topology.wan_dev, "xdp_xmit")?;
        let ring_full =
            receiver::tx_queue_stat(&topology.wan, &topology.wan_dev, "xdp_xmit_errors")?;
        let dropped = match self.enforcer {
            Some(enforcer) => enforcer.dropped()?,
            None => docker_user::dropped(&topology.host)?,
        };
        let cpu_ns = receiver::run_time_ns(self.napi)?;
        let stats = client.snapshot();
        Ok(Counters {
            at: Some(Instant::now()),
            offered: xmit + ring_full,
            ring_full,
            dropped,
            cpu_ns,
            started: stats.started,
            served: stats.served,
        })
    }

    /// Runs the phase, showing it on `screen`; the whole phase's rates.
    pub fn run(&self, screen: &mut Screen) -> Result<Rates, String> {
        let client = Client::default();
        let stop = AtomicBool::new(false);
        let first = self.read(&client)?;
        let started = Instant::now();
        let (flooded, client_seconds) = std::thread::scope(|scope| {
            let attack = scope
                .spawn(|| attack::run(self.topology, self.rate, started + self.duration, &stop));
            let sampled = client
                .start(scope, self.topology, self.legit_rate, &stop)
                .and_then(|()| {
                    self.show(screen, &client, started, &first, || attack.is_finished())
                });
            let stopped = Instant::now();
            stop.store(true, Ordering::SeqCst);
            let flooded = attack
                .join()
                .map_err(|_| "the flood generator failed (it panicked)".to_string())?;
            sampled?;
            let client_seconds = stopped
                .saturating_duration_since(started + CLIENT_WARM_UP)
                .as_secs_f64();
            Ok::<_, String>((flooded?, client_seconds))
        })?;
        // The client threads have returned (the scope joined them); what
        // is still in the ring is the attack's too.
        std::thread::sleep(DRAIN);
        let after = self.read(&client)?;
        let stats = client.snapshot();
        let rates = Rates::between(
            &first,
            &after,
            flooded.as_secs_f64(),
            client_seconds,
            &stats.latencies_us,
        );
        screen.phase_done(&rates);
        Ok(rates)
    }

    /// Samples the counters every [`TICK`] and shows the last second's
    /// rates, until the phase's time is up, a signal arrives or the attack
    /// ended early (its error is reported by the caller).
    fn show(
        &self,
        screen: &mut Screen,
        client: &Client,
        started: Instant,
        first: &Counters,
        attack_finished: impl Fn() -> bool,
    ) -> Result<(), String> {
        let end = started + self.duration;
        let mut last = *first;
        let mut next = started + TICK;
        loop {
            if !signals::sleep(next.min(end).saturating_duration_since(Instant::now())) {
                signals::check()?;
            }
            if attack_finished() {
                return Ok(());
            }
            let now = self.read(client)?;
            let stats = client.snapshot();
            let recent = &stats.latencies_us[latencies_since(&stats, &last)..];
            let seconds = match (last.at, now.at) {
                (Some(from), Some(to)) => to.duration_since(from).as_secs_f64(),
                _ => TICK.as_secs_f64(),
            };
            let rates = Rates::between(&last, &now, seconds, seconds, recent);
            screen.tick(started.elapsed(), self.duration, &rates);
            last = now;
            if Instant::now() >= end {
                return Ok(());
            }
            next += TICK;
        }
    }
}

/// Index of the first latency recorded after the `last` sample.
fn latencies_since(stats: &super::legit::ClientStats, last: &Counters) -> usize {
    // Latencies are pushed once per served request, in completion order.
    (last.served as usize).min(stats.latencies_us.len())
}

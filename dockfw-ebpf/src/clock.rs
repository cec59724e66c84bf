//! The time, read at most once per packet and only when a decision needs it
//! (token buckets, timed bans, the event budget).
//!
//! `bpf_ktime_get_coarse_ns` (jiffy resolution, Linux >= 5.11) instead of
//! `bpf_ktime_get_ns`: measured at ~5 ns against ~31 ns per call in a KVM
//! guest (kvm-clock). A few milliseconds of resolution only shape bursts at
//! tick boundaries; sustained rates and expiries stay exact over time. Both
//! clocks count CLOCK_MONOTONIC, the clock user space writes expiries in.

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;

/// A lazily read clock.
pub struct Clock {
    now: u64,
}

impl Clock {
    /// A clock not read yet.
    #[inline(always)]
    pub const fn new() -> Self {
        Self { now: 0 }
    }

    /// Monotonic ns, read on first use.
    #[inline(always)]
    pub fn now(&mut self) -> u64 {
        if self.now == 0 {
            // SAFETY: helper without arguments.
            self.now = unsafe { bpf_ktime_get_coarse_ns() };
        }
        self.now
    }
}

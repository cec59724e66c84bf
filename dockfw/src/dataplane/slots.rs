//! Slots of arrays that packets read while user space rewrites them (the
//! partially banned /24s and their /16 blocks). A packet may hold a slot
//! index for the microseconds its program runs, so a released slot is only
//! handed out again once [`REUSE_AFTER`] has passed: until then it keeps
//! what it held, and a late reader still sees a consistent old value.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

/// How long a released slot waits before it is reused (XDP and TC programs
/// run for microseconds; the generation writer waits as long).
pub const REUSE_AFTER: Duration = crate::dataplane::writer::QUIESCE;

/// Allocation state of one array: slot 0 is never handed out (it means
/// "none" to the data plane).
#[derive(Clone, Debug)]
pub struct Slots {
    used: Vec<u64>,
    capacity: u32,
    cursor: u32,
    in_use: u32,
    limbo: VecDeque<(u32, Instant)>,
}

impl Slots {
    /// `capacity` slots, all free but slot 0.
    pub fn new(capacity: u32) -> Self {
        let mut slots = Self {
            used: vec![0; capacity.div_ceil(64) as usize],
            capacity,
            cursor: 1,
            in_use: 0,
            limbo: VecDeque::new(),
        };
        slots.mark_used(0);
        slots
    }

    /// Marks a slot found in use (by a scan of the maps); `false` when it
    /// is out of range or already taken.
    pub fn mark_used(&mut self, slot: u32) -> bool {
        if slot >= self.capacity || self.is_used(slot) {
            return false;
        }
        self.used[(slot / 64) as usize] |= 1 << (slot % 64);
        self.in_use += 1;
        true
    }

    fn is_used(&self, slot: u32) -> bool {
        self.used[(slot / 64) as usize] >> (slot % 64) & 1 != 0
    }

    /// Slots in use or waiting to be reusable (slot 0 included).
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// A free slot, waiting for a released one to become reusable when
    /// nothing else is free; `None` when every slot is in use.
    pub fn alloc(&mut self) -> Option<u32> {
        self.promote();
        if self.in_use == self.capacity
            && let Some((_, released)) = self.limbo.front()
        {
            std::thread::sleep(REUSE_AFTER.saturating_sub(released.elapsed()));
            self.promote();
        }
        if self.in_use == self.capacity {
            return None;
        }
        let words = self.used.len() as u32;
        let start = self.cursor / 64;
        for step in 0..=words {
            let word_index = (start + step) % words;
            let word = self.used[word_index as usize];
            if word == u64::MAX {
                continue;
            }
            let slot = word_index * 64 + (!word).trailing_zeros();
            if slot >= self.capacity {
                continue;
            }
            self.mark_used(slot);
            self.cursor = slot + 1;
            return Some(slot);
        }
        None
    }

    /// Releases a slot: reusable after [`REUSE_AFTER`].
    pub fn release(&mut self, slot: u32) {
        if slot != 0 && slot < self.capacity && self.is_used(slot) {
            self.limbo.push_back((slot, Instant::now()));
        }
    }

    /// Frees the released slots whose wait is over.
    fn promote(&mut self) {
        while let Some((slot, released)) = self.limbo.front().copied() {
            if released.elapsed() < REUSE_AFTER {
                break;
            }
            self.limbo.pop_front();
            self.used[(slot / 64) as usize] &= !(1 << (slot % 64));
            self.in_use -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_zero_is_never_handed_out_and_every_other_slot_is_once() {
        let mut slots = Slots::new(130);
        let mut seen = std::collections::BTreeSet::new();
        while let Some(slot) = slots.alloc() {
            assert_ne!(slot, 0);
            assert!(seen.insert(slot), "slot {slot} twice");
        }
        assert_eq!(seen.len(), 129);
        assert_eq!(seen.last(), Some(&129));
    }

    #[test]
    fn a_released_slot_waits_before_it_is_reused() {
        let mut slots = Slots::new(3);
        let a = slots.alloc().unwrap();
        slots.alloc().unwrap();
        assert_eq!(slots.alloc(), None);
        slots.release(a);
        let started = Instant::now();
        // Everything else is in use: the allocation waits for `a`.
        assert_eq!(slots.alloc(), Some(a));
        assert!(started.elapsed() >= REUSE_AFTER.saturating_sub(Duration::from_millis(1)));
        // A slot released while others are free is not taken first.
        let mut slots = Slots::new(4);
        let first = slots.alloc().unwrap();
        slots.release(first);
        let next = slots.alloc().unwrap();
        assert_ne!(next, first);
    }

    #[test]
    fn scanned_slots_stay_taken() {
        let mut slots = Slots::new(5);
        assert!(slots.mark_used(2));
        assert!(slots.mark_used(3));
        assert!(!slots.mark_used(3), "taken twice");
        assert!(!slots.mark_used(5), "out of range");
        let mut got = vec![slots.alloc().unwrap(), slots.alloc().unwrap()];
        got.sort();
        assert_eq!(got, vec![1, 4]);
        assert_eq!(slots.alloc(), None);
    }
}

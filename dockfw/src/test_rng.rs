//! The xorshift generator of the randomised unit tests (fixed seeds, so a
//! failure replays).

/// Advances `state` one xorshift64 step and returns it.
pub(crate) fn step(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A generator of `u64`s from `seed` (non-zero).
pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || step(&mut state)
}

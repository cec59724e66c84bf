//! A reference model of the data plane's classification, independent of its
//! code: frames are parsed with `etherparse` and judged against the policy
//! as the operator wrote it (rules in order, first match wins), not against
//! the compiled bitmaps. The fuzzer ([`check`]) runs random and damaged
//! frames under random policies through the real XDP and TC programs and
//! through this model, and compares verdicts and counters.
//!
//! - [`parse`]: the header walk the specification describes;
//! - [`eval`]: published port, fragments, bans, rules, rate limits, audit;
//! - [`generate`]: seeded random policies and frames;
//! - [`check`]: runs cases on a [`crate::runner::Harness`], shrinks and
//!   saves failing ones.

pub mod check;
pub mod eval;
pub mod generate;
pub mod parse;

//! `dockfw trace`: why was this packet dropped (or passed)?
//!
//! A trace builds a frame (or reads every frame of a capture), runs it
//! through the real data-plane code against the live, pinned maps with
//! `BPF_PROG_TEST_RUN`, and explains the decision: verdict, reason, the
//! published port and container it resolved to, the matching rule with its
//! origin (policy file line, container labels, DOCKER-USER position), and
//! for a pass what netfilter does next.
//!
//! A trace has no side effects: it runs its own program instance in trace
//! mode ([`tracer`]), which writes no counter, spends no rate-limit token,
//! remembers no fragment and emits no event.
//!
//! The data flow: [`args`] -> [`frame`] (or [`pcap`]) -> [`tracer`] (kernel)
//! -> [`explain`] with the names of [`context`] -> [`render`].

pub mod args;
pub mod command;
pub mod context;
pub mod explain;
pub mod frame;
pub mod pcap;
pub mod render;
pub mod replay;
pub mod tracer;

pub use args::TraceArgs;
pub use command::command;
pub use context::TraceContext;
pub use explain::{Trace, explain};
pub use tracer::{TraceError, Tracer};

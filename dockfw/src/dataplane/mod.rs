//! The kernel adapter: loading, attaching, pinning and writing the maps.

pub mod abi;
pub mod attach;
pub mod bans;
pub mod bpffs;
pub mod compat;
pub mod counters;
pub mod load;
pub mod local;
pub mod pins;
pub mod slots;
pub mod testrun;
pub mod writer;

pub use attach::{AttachError, AttachMode, Attachment, RequestedMode};
pub use load::{Capacities, Dataplane, LoadError, LoadOptions, Maps};
pub use writer::{Applied, GenerationWriter, Placement, TrieUsage, WriteError};

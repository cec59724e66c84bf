//! The kernel adapter: loading, attaching, pinning and writing the maps.

pub mod load;

pub use load::{Capacities, Dataplane, LoadError, LoadOptions, Maps};

//! The pure model: what is published (from Docker) and what the operator
//! wants (policy). No I/O here; every source of intent produces these types
//! and the compiler turns them into map contents.

pub mod policy;
pub mod ports;

pub use policy::{
    Action, Per, Policy, Rate, RateLimit, Rule, RuleOrigin, SourceMatch, PortSelector, PortSpec,
    FragmentAction,
};
pub use ports::{BindingKey, ContainerRef, Family, Proto, PublishedPort};

//! The pure model: what is published (from Docker) and what the operator
//! wants (policy). No I/O here; every source of intent produces these types
//! and the compiler turns them into map contents.

pub mod policy;
pub mod ports;

pub use policy::{
    Action, FragmentAction, Per, Policy, PortSelector, PortSpec, Rate, RateLimit, Rule, RuleOrigin,
    SourceMatch,
};
pub use ports::{BindingKey, ContainerRef, Family, Proto, PublishedPort};

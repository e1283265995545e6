//! Link monitoring and link selection for a MACsec forwarder with redundant secure
//! links to one peer forwarder.
//!
//! - [`probe`]: the probe payload codec.
//! - [`stats`]: windowed loss and RTT statistics.
//! - [`link`]: the per-link monitor and state machine ([`link::Monitor`]).
//! - [`select`]: active-backup and balance link selection, and the flow hash.
//!
//! Sans-IO: no clocks, threads or I/O; time is passed in. Nothing allocates per probe or
//! per frame after construction.

pub mod link;
pub mod probe;
pub mod select;
pub mod stats;

#[cfg(test)]
mod sim;

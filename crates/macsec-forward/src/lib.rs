//! The userspace MACsec forwarder built on the [`macsec`] core.
//!
//! - [`io`]: the batch-shaped port seam and its `AF_PACKET` implementation (the only
//!   module with `unsafe` code), interface checks, the EAPOL socket, namespaces.
//! - [`forward`]: the pumps (plain to secure protects, secure to plain validates), the PN
//!   store, the MKA runtime.
//! - [`config`]: the TOML configuration, validated at load; errors name the field.
//! - [`pcap`]: protect or validate capture files.
//! - [`monitor`]: per-link probes, loss/RTT statistics, link states and link selection
//!   (sans-IO, time passed in).
//! - [`control`]: the control socket, the Prometheus endpoint and the event log.
//! - [`csum`], [`gso`]: checksum completion and segmentation of offloaded super-frames.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod control;
pub mod csum;
pub mod forward;
pub mod gso;
pub mod io;
pub mod keychain;
pub mod monitor;
pub mod pcap;

//! MACsec (IEEE 802.1AE) data plane and MKA (IEEE 802.1X) key agreement.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
#[cfg(feature = "forwarder")]
pub mod io;
pub mod wire;

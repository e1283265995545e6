//! Test support for the macsec workspace (not published): network-namespace labs with a
//! forwarder pair, built in-process over netlink ([`netlab`]: no `ip`, `ping`, `ethtool`
//! or other outside program), in-memory ports with fault injection, the root check of
//! every root test ([`root`]), and the bodies of the fuzz targets (also replayed on
//! stable by this crate's tests).
#![warn(missing_docs)]

#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "lab")]
pub mod impair;
#[cfg(feature = "lab")]
pub mod lab;
#[cfg(feature = "lab")]
pub mod mem;
#[cfg(feature = "lab")]
pub mod netlab;
#[cfg(feature = "lab")]
pub mod root;
#[cfg(feature = "lab")]
pub mod topology;
pub mod vectors;

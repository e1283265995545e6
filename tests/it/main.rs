//! Integration tests: one binary, one module per area.

#[cfg(feature = "forwarder")]
mod io;

//! Integration tests: one binary, one module per area.

#[cfg(feature = "forwarder")]
mod forward;
#[cfg(feature = "forwarder")]
mod forward_mem;
#[cfg(feature = "forwarder")]
mod cli;
#[cfg(feature = "forwarder")]
mod io;
mod mka;
mod pcap_cli;
mod props;
mod secy;
mod util;
mod vectors;

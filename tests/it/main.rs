//! Integration tests: one binary, one module per area.

mod alloc;
#[cfg(feature = "forwarder")]
mod cli;
#[cfg(feature = "forwarder")]
mod forward;
#[cfg(feature = "forwarder")]
mod forward_mem;
mod fuzz_corpus;
#[cfg(feature = "forwarder")]
mod io;
mod mka;
mod pcap_cli;
mod props;
mod secy;
mod util;
mod vectors;

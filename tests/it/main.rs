//! Integration tests: one binary, one module per area.

mod pcap_cli;
mod util;
mod vectors;

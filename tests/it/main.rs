//! Integration tests: one binary, one module per area.

mod mka;
mod pcap_cli;
mod props;
mod secy;
mod util;
mod vectors;

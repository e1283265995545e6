//! Integration tests of the forwarder and the `macsec` command: one binary, one module
//! per area.

mod cli;
mod common;
mod forward;
mod forward_mem;
mod hardening;
mod io;
mod keychain;
mod multilink_mem;
mod pcap_cli;
mod redundancy;
mod status_cli;
mod status_live;
mod tx_full_mem;

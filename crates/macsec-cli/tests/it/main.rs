//! Integration tests of the forwarder and the `macsec` command: one binary, one module
//! per area.

mod cli;
mod forward;
mod forward_mem;
mod io;
mod pcap_cli;

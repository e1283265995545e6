//! Arbitrary bytes as a capture file through `macsec pcap encrypt` and `decrypt`; see
//! `macsec_testkit::fuzzing::pcap_read`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = macsec_testkit::fuzzing::pcap_read(data);
});

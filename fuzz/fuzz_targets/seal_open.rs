//! Parameters (11 octets) and a frame: protect, then validate on a peer with the same
//! key, replay, and a one-bit flip; see `macsec_testkit::fuzzing::seal_open`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = macsec_testkit::fuzzing::seal_open(data);
});

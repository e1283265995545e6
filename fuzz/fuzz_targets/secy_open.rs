//! Arbitrary bytes as a received frame through several SecY receive configurations and
//! both AES-GCM backends; see `macsec_testkit::fuzzing::secy_open` for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = macsec_testkit::fuzzing::secy_open(data);
});

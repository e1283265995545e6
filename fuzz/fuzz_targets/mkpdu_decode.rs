//! Arbitrary bytes as a received Ethernet frame through the MKPDU decoder (EAPOL-MKA,
//! every parameter set); see `macsec_testkit::fuzzing::mkpdu_decode` for the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    macsec_testkit::fuzzing::mkpdu_decode(data);
});

//! A series of MKPDUs (re-signed for a fixed test CA so they pass the ICV check) and
//! clock steps into one MKA participant; see `macsec_testkit::fuzzing::mka_participant`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    macsec_testkit::fuzzing::mka_participant(data);
});

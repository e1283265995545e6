//! A series of MKPDUs (re-signed for a fixed test CA so they pass the ICV check) and
//! clock steps into one MKA participant; see `macsec::mka::fuzz_participant`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    macsec::mka::fuzz_participant(data);
});

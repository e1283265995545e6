//! Arbitrary bytes as a SecTAG: `SecTag::new_checked` -> `SecTagRepr::parse` (32- and
//! 64-bit PN) -> `emit` must reproduce the input prefix; see `macsec_testkit::fuzzing::sectag_parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    macsec_testkit::fuzzing::sectag_parse(data);
});

//! The test vectors of `crates/macsec/tests/data`, for tests outside the core crate: the
//! core's own test helpers, compiled here too, so there is one copy.
#[path = "../../macsec/tests/it/util.rs"]
mod util;
pub use util::*;

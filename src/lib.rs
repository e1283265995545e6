//! MACsec (IEEE 802.1AE) data plane and MKA (IEEE 802.1X) key agreement.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
pub mod secy;
pub mod wire;

#[doc(hidden)]
pub mod fuzzing;

//! MKA integration tests: crypto vectors, the MKPDU codec on real and constructed
//! frames, and simulated-clock scenarios with several participants.

mod codec;
mod harness;
mod hostap;
mod scenarios;
mod vectors;

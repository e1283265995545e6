//! Integration tests: one binary, one module per area.

mod alloc;
mod fuzz_corpus;
mod util;
mod vectors;

//! Integration tests of the core: one binary, one module per area.

mod alloc;
mod mka;
mod props;
mod secy;
mod util;
mod vectors;

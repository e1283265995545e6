//! Integration tests of the core: one binary, one module per area.

mod alloc;
mod mka;
mod out_of_place;
mod props;
mod secy;
mod util;
mod vectors;

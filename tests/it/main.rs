//! Integration tests (one binary, see the architecture guide).

mod mka;

//! Wire formats: zero-copy views and validated representations. Pure: no crypto, no state.

pub mod csum;
pub mod sci;

pub use sci::{MacAddr, ParseIdError, Sci};

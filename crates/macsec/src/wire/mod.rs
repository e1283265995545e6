//! Wire formats: zero-copy views and validated representations. Pure: no crypto, no state.

pub mod ethernet;
pub mod sci;
pub mod sectag;

pub use sci::{MacAddr, ParseIdError, Sci};
pub use sectag::{SecTag, SecTagRepr, TagError};

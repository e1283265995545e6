//! Cryptography: cipher suites, key types, IV construction and the AES-GCM backend seam.

pub mod aead;
pub mod keys;
pub mod suite;

pub use aead::{AeadKey, AuthError, Backend, SealError};
pub use keys::{KeyHexError, KeyLenError, Sak, Salt, SecretKey, Ssci};
pub use suite::{CipherSuite, ICV_LEN};

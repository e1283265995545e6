//! The AES-GCM backend seam.
//!
//! Two backends sit behind [`AeadKey`]: AWS-LC (feature `aws-lc`, the default, the fast
//! path) and RustCrypto's pure-Rust `aes-gcm` (always built; the portable path and a
//! cross-check). A key is expanded once, when its SA is installed; the per-frame calls
//! are in place, with a detached 16-octet tag, and never allocate.

use super::keys::SecretKey;
use aes_gcm::aead::{AeadInOut, KeyInit};
use core::fmt;

/// Which AES-GCM implementation an [`AeadKey`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// AWS-LC through `aws-lc-rs` (assembly, VAES/AVX-512 where the CPU has it).
    #[cfg(feature = "aws-lc")]
    AwsLc,
    /// RustCrypto `aes-gcm` 0.11 (pure Rust, AES-NI/CLMUL autodetected).
    Portable,
}

impl Backend {
    /// Every backend compiled into this build.
    pub const ALL: &'static [Backend] = &[
        #[cfg(feature = "aws-lc")]
        Backend::AwsLc,
        Backend::Portable,
    ];

    /// Name for logs and benchmark labels.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => "aws-lc",
            Backend::Portable => "portable",
        }
    }
}

impl Default for Backend {
    /// AWS-LC when the `aws-lc` feature is on, otherwise the portable backend.
    fn default() -> Self {
        #[cfg(feature = "aws-lc")]
        {
            Backend::AwsLc
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            Backend::Portable
        }
    }
}

/// The ICV did not verify (or the input was too long for GCM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ICV does not verify")]
pub struct AuthError;

/// The input was too long for GCM (more than 2^36 - 32 octets); never happens for frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("input too long for AES-GCM")]
pub struct SealError;

enum Inner {
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc_rs::aead::LessSafeKey),
    Portable128(Box<aes_gcm::Aes128Gcm>),
    Portable256(Box<aes_gcm::Aes256Gcm>),
}

/// An expanded AES-GCM key (128 or 256 bit) bound to one backend.
///
/// Both backends wipe their key schedule on drop. `Debug` shows only the backend.
pub struct AeadKey {
    inner: Inner,
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeadKey({}, <redacted>)", self.backend().name())
    }
}

impl AeadKey {
    /// Expands `key` (16 or 32 octets) for `backend`.
    pub fn new(backend: Backend, key: &SecretKey) -> AeadKey {
        let k = key.expose_secret();
        let inner = match backend {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => {
                use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_128_GCM, AES_256_GCM};
                let alg = if k.len() == 16 {
                    &AES_128_GCM
                } else {
                    &AES_256_GCM
                };
                // Cannot fail: SecretKey guarantees 16 or 32 octets.
                Inner::AwsLc(LessSafeKey::new(
                    UnboundKey::new(alg, k).expect("AES key of 16 or 32 octets"),
                ))
            }
            Backend::Portable => {
                if k.len() == 16 {
                    Inner::Portable128(Box::new(
                        aes_gcm::Aes128Gcm::new_from_slice(k).expect("16-octet key"),
                    ))
                } else {
                    Inner::Portable256(Box::new(
                        aes_gcm::Aes256Gcm::new_from_slice(k).expect("32-octet key"),
                    ))
                }
            }
        };
        AeadKey { inner }
    }

    /// The backend this key runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            #[cfg(feature = "aws-lc")]
            Inner::AwsLc(_) => Backend::AwsLc,
            Inner::Portable128(_) | Inner::Portable256(_) => Backend::Portable,
        }
    }

    /// Encrypts `data` in place and returns the 16-octet tag over `aad` and the
    /// ciphertext. With empty `data` this is GMAC over `aad` (integrity only).
    #[inline(always)]
    pub fn seal_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; 16], SealError> {
        match &self.inner {
            #[cfg(feature = "aws-lc")]
            Inner::AwsLc(k) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                let tag = k
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(*iv),
                        Aad::from(aad),
                        data,
                    )
                    .map_err(|_| SealError)?;
                let mut out = [0u8; 16];
                out.copy_from_slice(tag.as_ref());
                Ok(out)
            }
            Inner::Portable128(k) => k
                .encrypt_inout_detached(iv.into(), aad, data.into())
                .map(|t| t.into())
                .map_err(|_| SealError),
            Inner::Portable256(k) => k
                .encrypt_inout_detached(iv.into(), aad, data.into())
                .map(|t| t.into())
                .map_err(|_| SealError),
        }
    }

    /// Verifies `tag` over `aad` and `data` and decrypts `data` in place. On failure the
    /// contents of `data` are unspecified.
    #[inline(always)]
    pub fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), AuthError> {
        match &self.inner {
            #[cfg(feature = "aws-lc")]
            Inner::AwsLc(k) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                k.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*iv),
                    Aad::from(aad),
                    tag,
                    data,
                )
                .map(|_| ())
                .map_err(|_| AuthError)
            }
            Inner::Portable128(k) => k
                .decrypt_inout_detached(iv.into(), aad, data.into(), tag.into())
                .map_err(|_| AuthError),
            Inner::Portable256(k) => k
                .decrypt_inout_detached(iv.into(), aad, data.into(), tag.into())
                .map_err(|_| AuthError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST GCM test case 4 (McGrew & Viega), AES-128, with AAD.
    #[test]
    fn gcm_known_answer_all_backends() {
        let key = SecretKey::from_hex("feffe9928665731c6d6a8f9467308308").unwrap();
        let iv: [u8; 12] = hex::decode("cafebabefacedbaddecaf888")
            .unwrap()
            .try_into()
            .unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let pt = hex::decode("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39").unwrap();
        let ct = hex::decode("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091").unwrap();
        let tag = hex::decode("5bc94fbc3221a5db94fae95ae7121a47").unwrap();
        for &b in Backend::ALL {
            let k = AeadKey::new(b, &key);
            let mut d = pt.clone();
            let t = k.seal_in_place(&iv, &aad, &mut d).unwrap();
            assert_eq!(d, ct, "{b:?}");
            assert_eq!(t.as_slice(), tag.as_slice(), "{b:?}");
            k.open_in_place(&iv, &aad, &mut d, &t).unwrap();
            assert_eq!(d, pt);
            let mut bad = t;
            bad[0] ^= 1;
            assert_eq!(
                k.open_in_place(&iv, &aad, &mut d.clone(), &bad),
                Err(AuthError)
            );
        }
    }
}

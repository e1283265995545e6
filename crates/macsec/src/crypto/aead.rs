//! The AES-GCM backend seam.
//!
//! Two backends sit behind [`AeadKey`]: AWS-LC (feature `aws-lc`, the default, the fast
//! path) and RustCrypto's pure-Rust `aes-gcm` (always built; the portable path and a
//! cross-check). A key is expanded once, when its SA is installed; the per-frame calls
//! are in place, with a detached 16-octet tag, and never allocate.

use super::keys::SecretKey;
use aes_gcm::aead::inout::InOutBuf;
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

impl AeadKey {
    /// Encrypts `in1 ‖ in2` into `out` (out of place: the inputs are only read) and
    /// writes the 16-octet tag over `aad` and the ciphertext right after it, so `out`
    /// must be exactly `in1.len() + in2.len() + 16` octets. With empty inputs this is
    /// GMAC over `aad`. The result is what [`seal_in_place`](Self::seal_in_place)
    /// gives for the concatenated input, with the tag appended.
    ///
    /// AWS-LC encrypts both parts in one pass from the inputs into `out` (its scatter
    /// seal). The portable backend encrypts out of place when `in1` is empty, and
    /// otherwise copies both parts into `out` and encrypts there.
    #[inline(always)]
    pub fn seal_into(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        in1: &[u8],
        in2: &[u8],
        out: &mut [u8],
    ) -> Result<(), SealError> {
        let n = in1.len() + in2.len();
        if out.len() != n + 16 {
            return Err(SealError);
        }
        match &self.inner {
            #[cfg(feature = "aws-lc")]
            Inner::AwsLc(k) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                let (o1, o2) = out.split_at_mut(in1.len());
                k.seal_out_of_place_scatter(
                    Nonce::assume_unique_for_key(*iv),
                    Aad::from(aad),
                    in1,
                    o1,
                    in2,
                    o2,
                )
                .map_err(|_| SealError)
            }
            Inner::Portable128(k) => portable_seal_into(&**k, iv, aad, in1, in2, out),
            Inner::Portable256(k) => portable_seal_into(&**k, iv, aad, in1, in2, out),
        }
    }

    /// Verifies `tag` over `aad` and the ciphertext `input` and decrypts `input` into
    /// `out` (out of place: `input` is only read), which must be as long as `input`.
    /// On failure the contents of `out` are unspecified.
    #[inline(always)]
    pub fn open_into(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        input: &[u8],
        tag: &[u8; 16],
        out: &mut [u8],
    ) -> Result<(), AuthError> {
        if out.len() != input.len() {
            return Err(AuthError);
        }
        match &self.inner {
            #[cfg(feature = "aws-lc")]
            Inner::AwsLc(k) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                k.open_separate_gather(
                    Nonce::assume_unique_for_key(*iv),
                    Aad::from(aad),
                    input,
                    tag,
                    out,
                )
                .map_err(|_| AuthError)
            }
            Inner::Portable128(k) => portable_open_into(&**k, iv, aad, input, tag, out),
            Inner::Portable256(k) => portable_open_into(&**k, iv, aad, input, tag, out),
        }
    }
}

/// [`AeadKey::seal_into`] for a RustCrypto key: one out-of-place pass when there is one
/// input part; two parts are copied into `out` first (it has no streaming API).
#[inline(always)]
fn portable_seal_into<A>(
    k: &A,
    iv: &[u8; 12],
    aad: &[u8],
    in1: &[u8],
    in2: &[u8],
    out: &mut [u8],
) -> Result<(), SealError>
where
    A: AeadInOut
        + aes_gcm::aead::AeadCore<
            NonceSize = aes_gcm::aead::consts::U12,
            TagSize = aes_gcm::aead::consts::U16,
        >,
{
    let n = in1.len() + in2.len();
    let (data, tag_out) = out.split_at_mut(n);
    let tag = if in1.is_empty() {
        let buf = InOutBuf::new(in2, data).map_err(|_| SealError)?;
        k.encrypt_inout_detached(iv.into(), aad, buf)
    } else {
        data[..in1.len()].copy_from_slice(in1);
        data[in1.len()..].copy_from_slice(in2);
        k.encrypt_inout_detached(iv.into(), aad, data.into())
    }
    .map_err(|_| SealError)?;
    tag_out.copy_from_slice(&tag);
    Ok(())
}

/// [`AeadKey::open_into`] for a RustCrypto key.
#[inline(always)]
fn portable_open_into<A>(
    k: &A,
    iv: &[u8; 12],
    aad: &[u8],
    input: &[u8],
    tag: &[u8; 16],
    out: &mut [u8],
) -> Result<(), AuthError>
where
    A: AeadInOut
        + aes_gcm::aead::AeadCore<
            NonceSize = aes_gcm::aead::consts::U12,
            TagSize = aes_gcm::aead::consts::U16,
        >,
{
    let buf = InOutBuf::new(input, out).map_err(|_| AuthError)?;
    k.decrypt_inout_detached(iv.into(), aad, buf, tag.into())
        .map_err(|_| AuthError)
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

//! Activation keys: one string that carries a CKN and its pre-shared CAK, for pasting at
//! both ends of a link (`macsec keygen` prints one; `macsec forward` accepts it).
//!
//! Format: `mka1.<CKN hex>.<CAK hex>.<check>`, where `<check>` is the first 4 octets
//! (8 hex digits) of AES-CMAC(CAK, "macsec activation key" ‖ CKN). The check catches a
//! truncated or mistyped paste before two ends fail to agree in silence; it reveals
//! nothing useful about the CAK. The CKN is 16 or 32 octets as generated (1..=32
//! accepted), the CAK 16 or 32 octets (802.1X-2010 6.2: 128- or 256-bit CAKs).

use super::crypto::aes_cmac;
use super::types::Ckn;
use crate::crypto::SecretKey;
use zeroize::Zeroizing;

const PREFIX: &str = "mka1";
const CHECK_LABEL: &[u8] = b"macsec activation key";

/// Why an activation key was refused. Never contains key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActivationKeyError {
    /// Not four dot-separated fields starting with `mka1`.
    #[error("an activation key looks like mka1.<CKN hex>.<CAK hex>.<8 hex digits>")]
    Format,
    /// The CKN field is not 2..=64 hex digits.
    #[error("the CKN part must be 2 to 64 hex digits")]
    Ckn,
    /// The CAK field is not 32 or 64 hex digits.
    #[error("the CAK part must be 32 or 64 hex digits (a 128- or 256-bit CAK)")]
    Cak,
    /// The check digits do not match: a typo or a truncated paste.
    #[error("the check digits do not match: the activation key was mistyped or cut short")]
    Check,
}

/// A parsed activation key.
pub struct ActivationKey {
    /// The CA key name.
    pub ckn: Ckn,
    /// The pre-shared CAK.
    pub cak: SecretKey,
}

impl core::fmt::Debug for ActivationKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ActivationKey(ckn {:?}, cak <redacted>)", self.ckn)
    }
}

fn check(cak: &SecretKey, ckn: &Ckn) -> [u8; 4] {
    let m = aes_cmac(cak, &[CHECK_LABEL, ckn.as_bytes()]);
    [m[0], m[1], m[2], m[3]]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl ActivationKey {
    /// A fresh CKN (16 random octets) and CAK of `cak_len` octets (16 or 32).
    pub fn generate(cak_len: usize) -> Result<ActivationKey, crate::crypto::KeyLenError> {
        let cak = SecretKey::random(cak_len)?;
        let mut n = [0u8; 16];
        getrandom::fill(&mut n).expect("OS random number generator failed");
        Ok(ActivationKey {
            ckn: Ckn::new(&n).expect("16 octets"),
            cak,
        })
    }

    /// The activation key string. It contains the CAK: treat it as a secret.
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{PREFIX}.{}.{}.{}",
            hex(self.ckn.as_bytes()),
            hex(self.cak.expose_secret()),
            hex(&check(&self.cak, &self.ckn))
        ))
    }

    /// Parses an activation key (surrounding whitespace ignored).
    pub fn parse(s: &str) -> Result<ActivationKey, ActivationKeyError> {
        let mut parts = s.trim().split('.');
        let (Some(p), Some(ckn), Some(cak), Some(chk), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(ActivationKeyError::Format);
        };
        if p != PREFIX {
            return Err(ActivationKeyError::Format);
        }
        let ckn = Ckn::from_hex(ckn).map_err(|_| ActivationKeyError::Ckn)?;
        let cak = SecretKey::from_hex(cak).map_err(|_| ActivationKeyError::Cak)?;
        let mut want = [0u8; 4];
        crate::wire::sci::parse_hex_into(chk, &mut want).map_err(|_| ActivationKeyError::Check)?;
        if want != check(&cak, &ckn) {
            return Err(ActivationKeyError::Check);
        }
        Ok(ActivationKey { ckn, cak })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_typos() {
        for len in [16, 32] {
            let k = ActivationKey::generate(len).unwrap();
            let s = k.encode();
            let back = ActivationKey::parse(&s).unwrap();
            assert_eq!(back.ckn, k.ckn);
            assert_eq!(back.cak, k.cak);
            // Any single changed hex digit is caught.
            for i in 5..s.len() {
                let mut t = s.as_bytes().to_vec();
                if t[i] == b'.' {
                    continue;
                }
                t[i] = if t[i] == b'0' { b'1' } else { b'0' };
                let t = String::from_utf8(t).unwrap();
                assert!(ActivationKey::parse(&t).is_err(), "{i}");
            }
            assert_eq!(
                ActivationKey::parse(&s[..s.len() - 1]).unwrap_err(),
                ActivationKeyError::Check
            );
        }
        assert_eq!(
            ActivationKey::parse("mka2.00.00.00").unwrap_err(),
            ActivationKeyError::Format
        );
        assert!(!format!("{:?}", ActivationKey::generate(16).unwrap()).contains("cak: "));
    }
}

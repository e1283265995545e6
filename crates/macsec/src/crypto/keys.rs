//! Key material types. Every secret is zeroized on drop and never printed.

use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Error when key material has the wrong length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("key must be {expected} octets, got {got}")]
pub struct KeyLenError {
    /// Octets expected (for a SAK: 16 or 32).
    pub expected: usize,
    /// Octets given.
    pub got: usize,
}

/// A secret key of 16 or 32 octets: a SAK (802.1AE), or in MKA a CAK, ICK or KEK.
///
/// Zeroized on drop. `Debug` prints only the length. There is no `Clone`; use
/// [`SecretKey::duplicate`] where a second copy is really needed, so copies stay visible.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey {
    bytes: [u8; 32],
    len: u8,
}

/// A Secure Association Key (802.1AE 3.x, 10.7.x): the AES key of one SA.
pub type Sak = SecretKey;

impl SecretKey {
    /// Builds a key from 16 or 32 octets.
    pub fn from_slice(b: &[u8]) -> Result<SecretKey, KeyLenError> {
        if b.len() != 16 && b.len() != 32 {
            return Err(KeyLenError {
                expected: if b.len() < 24 { 16 } else { 32 },
                got: b.len(),
            });
        }
        let mut bytes = [0u8; 32];
        bytes[..b.len()].copy_from_slice(b);
        Ok(SecretKey {
            bytes,
            len: b.len() as u8,
        })
    }

    /// Parses a key from hex (16 or 32 octets). The error never contains the input.
    pub fn from_hex(s: &str) -> Result<SecretKey, KeyHexError> {
        let s = s.trim();
        let digits = s.chars().filter(|c| !c.is_ascii_whitespace()).count();
        if digits != 32 && digits != 64 {
            return Err(KeyHexError::Length { digits });
        }
        let mut buf = zeroize::Zeroizing::new([0u8; 32]);
        let n = digits / 2;
        crate::wire::sci::parse_hex_into(s, &mut buf[..n]).map_err(|_| KeyHexError::NotHex)?;
        Ok(SecretKey::from_slice(&buf[..n]).expect("length checked"))
    }

    /// Fresh random key of `len` octets (16 or 32) from the OS generator.
    pub fn random(len: usize) -> Result<SecretKey, KeyLenError> {
        if len != 16 && len != 32 {
            return Err(KeyLenError {
                expected: 16,
                got: len,
            });
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes[..len]).expect("OS random number generator failed");
        Ok(SecretKey {
            bytes,
            len: len as u8,
        })
    }

    /// Key length in octets.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// The key octets. Handle with care: do not log, copy or keep them.
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// An explicit second copy of the key (also zeroized on drop).
    pub fn duplicate(&self) -> SecretKey {
        SecretKey {
            bytes: self.bytes,
            len: self.len,
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<{} octets redacted>)", self.len)
    }
}

impl PartialEq for SecretKey {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        if self.len != other.len {
            return false;
        }
        let mut d = 0u8;
        for (a, b) in self.bytes.iter().zip(other.bytes.iter()) {
            d |= a ^ b;
        }
        d == 0
    }
}
impl Eq for SecretKey {}

/// Error from parsing a hex key. Deliberately carries no part of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyHexError {
    /// Not 32 or 64 hex digits.
    #[error("key must be 32 or 64 hex digits (16 or 32 octets), got {digits} characters")]
    Length {
        /// Characters given.
        digits: usize,
    },
    /// A character that is not a hex digit.
    #[error("key contains a character that is not a hex digit")]
    NotHex,
}

/// The 32-bit Short SCI of the XPN suites (802.1AE 14.7): names the transmitting SC
/// within the CA.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ssci(pub u32);

impl fmt::Debug for Ssci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ssci({:08x})", self.0)
    }
}

/// The 96-bit Salt of the XPN suites (802.1AE 14.7), one per SAK. Not secret, but
/// zeroized with the key it belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Default, Zeroize)]
pub struct Salt(pub [u8; 12]);

impl std::str::FromStr for Salt {
    type Err = crate::wire::ParseIdError;
    /// 24 hex digits; `:` `-` `.` `_` and spaces between them are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = [0u8; 12];
        crate::wire::sci::parse_hex_into(s, &mut b)?;
        Ok(Salt(b))
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salt(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key() {
        let k = SecretKey::from_hex("AD7A2BD03EAC835A6F620FDCB506B345").unwrap();
        let s = format!("{k:?}");
        assert!(!s.to_lowercase().contains("ad7a"), "{s}");
        assert!(s.contains("16 octets"));
    }

    #[test]
    fn hex_errors_do_not_echo_input() {
        let e = SecretKey::from_hex("AD7A2BD03EAC835A6F620FDCB506B3ZZ").unwrap_err();
        assert_eq!(e, KeyHexError::NotHex);
        assert!(!e.to_string().contains("AD7A"));
        assert_eq!(
            SecretKey::from_hex("AD7A").unwrap_err(),
            KeyHexError::Length { digits: 4 }
        );
    }

    #[test]
    fn lengths() {
        assert!(SecretKey::from_slice(&[0; 24]).is_err());
        assert_eq!(SecretKey::random(32).unwrap().len(), 32);
        assert_ne!(
            SecretKey::random(16).unwrap(),
            SecretKey::random(16).unwrap()
        );
    }
}

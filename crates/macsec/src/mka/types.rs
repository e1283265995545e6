//! Small MKA value types: Member Identifier, Key Identifier, CAK Name, MACsec
//! capability and confidentiality offset codes (802.1X-2010 clause 9 and 11.11).

use core::fmt;

/// A Member Identifier (802.1X-2010 9.4.2): 96 random bits naming one participant
/// instance. A participant picks a fresh one whenever it (re)starts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mi(pub [u8; 12]);

impl Mi {
    /// A fresh random MI from the OS generator.
    ///
    /// # Panics
    /// Only if the operating system's random number generator fails.
    pub fn random() -> Mi {
        let mut b = [0u8; 12];
        getrandom::fill(&mut b).expect("OS random number generator failed");
        Mi(b)
    }

    /// Whether all 96 bits are zero (an empty Key Identifier slot on the wire).
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 12]
    }
}

impl fmt::Display for Mi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Mi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mi({self})")
    }
}

/// A Key Identifier (802.1X-2010 9.8): the key server's MI when it generated the SAK,
/// and the Key Number it gave the SAK (big-endian on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ki {
    /// The key server's Member Identifier.
    pub mi: Mi,
    /// The Key Number (hostap starts at 1 and counts up per SAK).
    pub kn: u32,
}

impl Ki {
    /// The all-zero KI, which means "no key" in a MACsec SAK Use parameter set.
    pub const NONE: Ki = Ki {
        mi: Mi([0; 12]),
        kn: 0,
    };

    /// Whether this is the all-zero KI.
    pub fn is_none(&self) -> bool {
        self.mi.is_zero() && self.kn == 0
    }
}

impl fmt::Display for Ki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.mi, self.kn)
    }
}

impl fmt::Debug for Ki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ki({self})")
    }
}

/// Error for a CAK Name of the wrong size or with bad hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CknError {
    /// Not 1 to 32 octets (802.1X-2010 9.3.1).
    #[error("CKN must be 1 to 32 octets, got {0}")]
    Length(usize),
    /// Not an even number of hex digits.
    #[error("CKN must be an even number of hex digits (2 to 64)")]
    NotHex,
}

/// A Secure Connectivity Association Key Name (CKN, 802.1X-2010 9.3.1): 1 to 32
/// octets. Not secret: it is sent in clear in every MKPDU.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ckn {
    len: u8,
    bytes: [u8; 32],
}

impl Ckn {
    /// The longest CKN (802.1X-2010 9.3.1; hostap `MAX_CKN_LEN`).
    pub const MAX_LEN: usize = 32;

    /// Builds a CKN from 1 to 32 octets.
    pub fn new(b: &[u8]) -> Result<Ckn, CknError> {
        if b.is_empty() || b.len() > Self::MAX_LEN {
            return Err(CknError::Length(b.len()));
        }
        let mut bytes = [0u8; 32];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Ckn {
            len: b.len() as u8,
            bytes,
        })
    }

    /// Parses a CKN from 2 to 64 hex digits (as wpa_supplicant's `mka_ckn`).
    pub fn from_hex(s: &str) -> Result<Ckn, CknError> {
        let s = s.trim();
        if !s.len().is_multiple_of(2) || !s.is_ascii() {
            return Err(CknError::NotHex);
        }
        let n = s.len() / 2;
        if n == 0 || n > Self::MAX_LEN {
            return Err(CknError::Length(n));
        }
        let mut b = [0u8; 32];
        for (i, out) in b.iter_mut().take(n).enumerate() {
            *out = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| CknError::NotHex)?;
        }
        Ckn::new(&b[..n])
    }

    /// The CKN octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Length in octets (1..=32).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len as usize
    }
}

impl fmt::Display for Ckn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Ckn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ckn({self})")
    }
}

/// MACsec Capability, the 2-bit field of the Basic Parameter Set (802.1X-2010 11.11.1,
/// Table 11-6). Ordered: a higher value can do everything a lower one can.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub enum Capability {
    /// 0: MACsec not implemented.
    NotImplemented,
    /// 1: integrity without confidentiality.
    IntegrityOnly,
    /// 2: integrity, and confidentiality with offset 0 only. The Linux driver of
    /// wpa_supplicant reports this one.
    #[default]
    Confidentiality,
    /// 3: integrity, and confidentiality with offset 0, 30 or 50.
    ConfidentialityWithOffsets,
}

impl Capability {
    /// The 2-bit wire code.
    pub fn code(self) -> u8 {
        match self {
            Capability::NotImplemented => 0,
            Capability::IntegrityOnly => 1,
            Capability::Confidentiality => 2,
            Capability::ConfidentialityWithOffsets => 3,
        }
    }

    /// From the 2-bit wire code (higher bits ignored).
    pub fn from_code(c: u8) -> Capability {
        match c & 3 {
            0 => Capability::NotImplemented,
            1 => Capability::IntegrityOnly,
            2 => Capability::Confidentiality,
            _ => Capability::ConfidentialityWithOffsets,
        }
    }

    /// The most protective confidentiality offset this capability allows that does
    /// not exceed `wanted`.
    pub fn limit(self, wanted: ConfidentialityOffset) -> ConfidentialityOffset {
        match self {
            Capability::NotImplemented | Capability::IntegrityOnly => {
                ConfidentialityOffset::IntegrityOnly
            }
            Capability::Confidentiality => match wanted {
                ConfidentialityOffset::IntegrityOnly => ConfidentialityOffset::IntegrityOnly,
                _ => ConfidentialityOffset::Offset0,
            },
            Capability::ConfidentialityWithOffsets => wanted,
        }
    }
}

/// The Confidentiality Offset code a key server distributes with a SAK
/// (802.1X-2010 11.11.1, Distributed SAK parameter set; 802.1AE 10.7.24).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum ConfidentialityOffset {
    /// 0: integrity only, no encryption (E = 0, C = 0).
    IntegrityOnly,
    /// 1: confidentiality with offset 0 (the whole user data is encrypted).
    #[default]
    Offset0,
    /// 2: confidentiality with the first 30 octets of user data in clear.
    Offset30,
    /// 3: confidentiality with the first 50 octets of user data in clear.
    Offset50,
}

impl ConfidentialityOffset {
    /// The 2-bit wire code.
    pub fn code(self) -> u8 {
        match self {
            ConfidentialityOffset::IntegrityOnly => 0,
            ConfidentialityOffset::Offset0 => 1,
            ConfidentialityOffset::Offset30 => 2,
            ConfidentialityOffset::Offset50 => 3,
        }
    }

    /// From the 2-bit wire code (higher bits ignored).
    pub fn from_code(c: u8) -> ConfidentialityOffset {
        match c & 3 {
            0 => ConfidentialityOffset::IntegrityOnly,
            1 => ConfidentialityOffset::Offset0,
            2 => ConfidentialityOffset::Offset30,
            _ => ConfidentialityOffset::Offset50,
        }
    }

    /// The offset in octets, or `None` for integrity only.
    pub fn octets(self) -> Option<usize> {
        match self {
            ConfidentialityOffset::IntegrityOnly => None,
            ConfidentialityOffset::Offset0 => Some(0),
            ConfidentialityOffset::Offset30 => Some(30),
            ConfidentialityOffset::Offset50 => Some(50),
        }
    }

    /// Whether frames are encrypted (E = 1, C = 1) with this offset.
    pub fn encrypts(self) -> bool {
        self != ConfidentialityOffset::IntegrityOnly
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckn_lengths_and_hex() {
        assert_eq!(Ckn::new(&[]), Err(CknError::Length(0)));
        assert_eq!(Ckn::new(&[0; 33]), Err(CknError::Length(33)));
        let c = Ckn::from_hex("96437A93CCF10D9D").unwrap();
        assert_eq!(c.len(), 8);
        assert_eq!(c.to_string(), "96437a93ccf10d9d");
        assert_eq!(Ckn::from_hex("abc"), Err(CknError::NotHex));
        assert_eq!(Ckn::from_hex("zz"), Err(CknError::NotHex));
        assert!(Ckn::from_hex(&"11".repeat(32)).is_ok());
        assert_eq!(Ckn::from_hex(&"11".repeat(33)), Err(CknError::Length(33)));
        assert_eq!(Ckn::from_hex("é1"), Err(CknError::NotHex));
    }

    #[test]
    fn codes_round_trip() {
        for c in 0..4 {
            assert_eq!(Capability::from_code(c).code(), c);
            assert_eq!(ConfidentialityOffset::from_code(c).code(), c);
        }
        assert_eq!(
            Capability::Confidentiality.limit(ConfidentialityOffset::Offset50),
            ConfidentialityOffset::Offset0
        );
        assert_eq!(
            Capability::IntegrityOnly.limit(ConfidentialityOffset::Offset0),
            ConfidentialityOffset::IntegrityOnly
        );
        assert!(Ki::NONE.is_none());
    }
}

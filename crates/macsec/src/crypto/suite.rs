//! The four MACsec cipher suites (802.1AE-2018 clause 14, Table 14-1).

use core::fmt;
use core::str::FromStr;

/// A MACsec cipher suite. All four use AES-GCM with a 96-bit IV and a 16-octet ICV
/// (802.1AE 14.5, 14.6, 14.7, 14.8).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[non_exhaustive]
pub enum CipherSuite {
    /// GCM-AES-128 (802.1AE 14.5): 128-bit SAK, 32-bit PN, IV = SCI ‖ PN.
    #[default]
    GcmAes128,
    /// GCM-AES-256 (802.1AE 14.6): 256-bit SAK, 32-bit PN, IV = SCI ‖ PN.
    GcmAes256,
    /// GCM-AES-XPN-128 (802.1AE 14.7, 802.1AEbw): 128-bit SAK, 64-bit PN,
    /// IV = (SSCI ‖ PN) XOR Salt.
    GcmAesXpn128,
    /// GCM-AES-XPN-256 (802.1AE 14.8, 802.1AEbw): 256-bit SAK, 64-bit PN,
    /// IV = (SSCI ‖ PN) XOR Salt.
    GcmAesXpn256,
}

/// The ICV length of every supported suite (802.1AE 14.1).
pub const ICV_LEN: usize = 16;

impl CipherSuite {
    /// All suites, in Table 14-1 order.
    pub const ALL: [CipherSuite; 4] = [
        CipherSuite::GcmAes128,
        CipherSuite::GcmAes256,
        CipherSuite::GcmAesXpn128,
        CipherSuite::GcmAesXpn256,
    ];

    /// Whether this is an extended packet numbering (XPN, 64-bit PN) suite.
    pub fn is_xpn(self) -> bool {
        matches!(self, CipherSuite::GcmAesXpn128 | CipherSuite::GcmAesXpn256)
    }

    /// SAK length in octets (16 or 32).
    pub fn key_len(self) -> usize {
        match self {
            CipherSuite::GcmAes128 | CipherSuite::GcmAesXpn128 => 16,
            CipherSuite::GcmAes256 | CipherSuite::GcmAesXpn256 => 32,
        }
    }

    /// The largest PN the suite can use: 2^32 - 1, or 2^64 - 1 for XPN.
    pub fn max_pn(self) -> u64 {
        if self.is_xpn() {
            u64::MAX
        } else {
            u32::MAX as u64
        }
    }

    /// The Cipher Suite Identifier (802.1AE-2018 Table 14-1).
    pub fn id(self) -> [u8; 8] {
        let last = match self {
            CipherSuite::GcmAes128 => 1,
            CipherSuite::GcmAes256 => 2,
            CipherSuite::GcmAesXpn128 => 3,
            CipherSuite::GcmAesXpn256 => 4,
        };
        [0x00, 0x80, 0xC2, 0x00, 0x01, 0x00, 0x00, last]
    }

    /// Looks a suite up by its identifier. Also accepts 00-80-02-00-01-00-00-01, the
    /// wrong GCM-AES-128 value printed in 802.1AE-2006 and 802.1X-2010 that hostap and
    /// Linux still use.
    pub fn from_id(id: &[u8]) -> Option<CipherSuite> {
        const DEPRECATED_128: [u8; 8] = [0x00, 0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x01];
        if id == DEPRECATED_128 {
            return Some(CipherSuite::GcmAes128);
        }
        CipherSuite::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The name as `ip macsec` spells it.
    pub fn name(self) -> &'static str {
        match self {
            CipherSuite::GcmAes128 => "gcm-aes-128",
            CipherSuite::GcmAes256 => "gcm-aes-256",
            CipherSuite::GcmAesXpn128 => "gcm-aes-xpn-128",
            CipherSuite::GcmAesXpn256 => "gcm-aes-xpn-256",
        }
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown cipher suite name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cipher suite; expected one of gcm-aes-128, gcm-aes-256, gcm-aes-xpn-128, gcm-aes-xpn-256")]
pub struct UnknownCipherSuite;

impl FromStr for CipherSuite {
    type Err = UnknownCipherSuite;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.trim().to_ascii_lowercase().replace('_', "-");
        CipherSuite::ALL
            .into_iter()
            .find(|c| c.name() == l)
            .ok_or(UnknownCipherSuite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_round_trip() {
        for s in CipherSuite::ALL {
            assert_eq!(s.name().parse::<CipherSuite>().unwrap(), s);
            assert_eq!(CipherSuite::from_id(&s.id()), Some(s));
        }
        assert_eq!(
            CipherSuite::from_id(&[0, 0x80, 0x02, 0, 1, 0, 0, 1]),
            Some(CipherSuite::GcmAes128)
        );
        assert_eq!(CipherSuite::from_id(&[0, 0x80, 0xC2, 0, 1, 0, 0, 5]), None);
        assert!("aes-128".parse::<CipherSuite>().is_err());
    }
}

//! Secure Channel Identifier (802.1AE clause 8.2.1 and 9.9).

use core::fmt;
use core::str::FromStr;

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The PAE group address that MKPDUs are sent to by default (802.1X-2020 Table 11-1).
    pub const PAE_GROUP: MacAddr = MacAddr([0x01, 0x80, 0xC2, 0x00, 0x00, 0x03]);

    /// Whether the group (multicast) bit is set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error from parsing a MAC address or SCI from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseIdError {
    /// Wrong number of hex digits or octets.
    #[error("expected {expected} hex digits (separators ':' or '-' allowed)")]
    Length {
        /// Hex digits expected.
        expected: usize,
    },
    /// A character that is not a hex digit or separator.
    #[error("invalid character {0:?}; expected hex digits")]
    Char(char),
}

/// Parses hex digits, ignoring `:` `-` `.` and spaces, into `out`.
pub(crate) fn parse_hex_into(s: &str, out: &mut [u8]) -> Result<(), ParseIdError> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let mut n = 0usize;
    let mut hi: Option<u8> = None;
    for c in s.chars() {
        if matches!(c, ':' | '-' | '.' | ' ' | '_') {
            continue;
        }
        let v = c.to_digit(16).ok_or(ParseIdError::Char(c))? as u8;
        match hi.take() {
            None => hi = Some(v),
            Some(h) => {
                if n >= out.len() {
                    return Err(ParseIdError::Length {
                        expected: out.len() * 2,
                    });
                }
                out[n] = (h << 4) | v;
                n += 1;
            }
        }
    }
    if hi.is_some() || n != out.len() {
        return Err(ParseIdError::Length {
            expected: out.len() * 2,
        });
    }
    Ok(())
}

impl FromStr for MacAddr {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = [0u8; 6];
        parse_hex_into(s, &mut b)?;
        Ok(MacAddr(b))
    }
}

/// A Secure Channel Identifier: the transmitting port's MAC address followed by a
/// 16-bit Port Identifier, big-endian (802.1AE 8.2.1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sci(pub [u8; 8]);

impl Sci {
    /// The Port Identifier an end station uses (802.1AE 9.5: ES=1 implies port 0x0001).
    pub const END_STATION_PORT: u16 = 1;

    /// Builds an SCI from a MAC address and a port number.
    pub fn new(mac: MacAddr, port: u16) -> Sci {
        let mut b = [0u8; 8];
        b[..6].copy_from_slice(&mac.0);
        b[6..].copy_from_slice(&port.to_be_bytes());
        Sci(b)
    }

    /// The SCI as a 64-bit big-endian integer.
    pub fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// Builds an SCI from its 64-bit big-endian integer form.
    pub fn from_u64(v: u64) -> Sci {
        Sci(v.to_be_bytes())
    }

    /// The MAC address part.
    pub fn mac(&self) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.0[..6]);
        MacAddr(m)
    }

    /// The Port Identifier part.
    pub fn port(&self) -> u16 {
        u16::from_be_bytes([self.0[6], self.0[7]])
    }
}

impl fmt::Display for Sci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sci({self})")
    }
}

impl FromStr for Sci {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = [0u8; 8];
        parse_hex_into(s, &mut b)?;
        Ok(Sci(b))
    }
}

/// An SCI serializes as its 16 hex digits.
#[cfg(feature = "serde")]
impl serde::Serialize for Sci {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sci_parts() {
        let sci: Sci = "52:54:00:12:34:56-00:01".parse().unwrap();
        assert_eq!(sci.mac().to_string(), "52:54:00:12:34:56");
        assert_eq!(sci.port(), 1);
        assert_eq!(sci.to_string(), "5254001234560001");
        assert_eq!(Sci::from_u64(sci.to_u64()), sci);
        assert_eq!(Sci::new(sci.mac(), 1), sci);
    }

    #[test]
    fn bad_text() {
        assert_eq!(
            "12345".parse::<Sci>(),
            Err(ParseIdError::Length { expected: 16 })
        );
        assert_eq!("zz".parse::<MacAddr>(), Err(ParseIdError::Char('z')));
        assert!("001122334455667788".parse::<Sci>().is_err());
    }
}

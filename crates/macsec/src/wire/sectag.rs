//! The MACsec Security TAG (802.1AE clause 9.3).
//!
//! ```text
//!  octet:  1      2      3        4      5    6    7    8     9 ........ 16
//!        +------+------+--------+------+----+----+----+----+--------------+
//!        | EtherType   | TCI/AN |  SL  |    Packet Number   |  SCI (opt.)  |
//!        | 0x88E5      |        |      |    (PN, 32 bits)   |  8 octets    |
//!        +------+------+--------+------+----+----+----+----+--------------+
//!
//!  TCI/AN octet (9.4, 9.5, 9.6):  bit 8  7   6   5    4  3  2..1
//!                                     V  ES  SC  SCB  E  C  AN
//!  SL octet (9.7):                bits 8-7 reserved (0), bits 6-1 Short Length
//! ```
//!
//! [`SecTag`] is a zero-copy view over a buffer that starts at the SecTAG's
//! EtherType; after [`SecTag::new_checked`] no accessor can panic. [`SecTagRepr`] is
//! the parsed, validated form: it can only hold a SecTAG that 802.1AE 9.12 accepts
//! (with the E=0/C=1 choice described on [`TagError::ChangedWithoutEncryption`]), and
//! [`SecTagRepr::emit`] writes exactly the octets [`SecTagRepr::parse`] read.

use super::ethernet::ethertype;
use super::sci::Sci;

/// SecTAG length without SCI (EtherType, TCI/AN, SL, PN).
pub const SECTAG_LEN: usize = 8;
/// SecTAG length with an explicit SCI.
pub const SECTAG_SCI_LEN: usize = 16;
/// Secure Data lengths below this are carried in SL (802.1AE 9.7).
pub const SHORT_LEN_LIMIT: usize = 48;

mod field {
    use core::ops::Range;
    pub const ETHERTYPE: Range<usize> = 0..2;
    pub const TCI_AN: usize = 2;
    pub const SL: usize = 3;
    pub const PN: Range<usize> = 4..8;
    pub const SCI: Range<usize> = 8..16;
}

/// TCI bits (802.1AE 9.4-9.6), as masks of the TCI/AN octet.
pub mod tci {
    /// Version: must be 0.
    pub const V: u8 = 0x80;
    /// End Station: SCI = MAC source address ‖ port 1, not encoded.
    pub const ES: u8 = 0x40;
    /// SCI encoded in the SecTAG.
    pub const SC: u8 = 0x20;
    /// Single Copy Broadcast (EPON).
    pub const SCB: u8 = 0x10;
    /// Encryption.
    pub const E: u8 = 0x08;
    /// Changed Text.
    pub const C: u8 = 0x04;
    /// Association Number mask.
    pub const AN: u8 = 0x03;
}

/// Why a SecTAG (or the MPDU around it) is not acceptable. Each maps to one 802.1AE
/// 9.12 rule; all but [`TagError::NotMacsec`] and [`TagError::ReservedEncoding`]
/// are counted as InPktsBadTag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    /// Fewer octets than the SecTAG needs (8, or 16 with SC=1).
    #[error("SecTAG truncated")]
    Truncated,
    /// The EtherType is not 0x88E5 (an untagged frame).
    #[error("not a MACsec frame (EtherType is not 0x88E5)")]
    NotMacsec,
    /// V = 1 (9.12 c).
    #[error("SecTAG version bit V is set (802.1AE 9.12 c)")]
    Version,
    /// ES = 1 together with SC = 1 (9.12 d).
    #[error("ES and SC both set (802.1AE 9.12 d)")]
    EndStationWithSci,
    /// SCB = 1 together with SC = 1 (9.12 d).
    #[error("SCB and SC both set (802.1AE 9.12 d)")]
    ScbWithSci,
    /// Bits 8 and 7 of the SL octet are not 0 (9.12 e).
    #[error("reserved bits of the SL octet are set (802.1AE 9.12 e)")]
    ReservedShortLenBits,
    /// SL >= 48 (9.7: SL is only used for Secure Data shorter than 48 octets).
    #[error("SL is 48 or more (802.1AE 9.7)")]
    ShortLenTooLarge,
    /// SL is not 0 and does not match the Secure Data length (9.12 f-i).
    #[error("SL does not match the Secure Data length (802.1AE 9.12)")]
    ShortLenMismatch,
    /// SL is 0 but the Secure Data is shorter than 48 octets (9.12 f-i).
    #[error("SL is 0 but the Secure Data is shorter than 48 octets (802.1AE 9.12)")]
    TooShortForZeroShortLen,
    /// PN = 0 with a 32-bit PN suite (802.1AEbw Figure 10-5: PN 0 is never sent).
    #[error("PN 0 with a 32-bit PN suite")]
    ZeroPn,
    /// E = 0 with C = 1 ("changed text" without encryption).
    ///
    /// Our choice (open item 7 of the notes): with the four GCM-AES suites and their
    /// 16-octet ICV no conformant transmitter sets C without E, so such a frame is
    /// rejected and counted InPktsBadTag, as Marvell CN10K hardware does (DPDK vectors
    /// `bad_tag-1`, `intr_test-1`). Linux accepts it only because it supports shorter ICVs.
    #[error("C set without E")]
    ChangedWithoutEncryption,
    /// E = 1 with C = 0: a reserved encoding that is not for the Controlled Port
    /// (802.1AE 10.6; Linux passes it to the Uncontrolled Port without counting). Not a
    /// bad tag: the SecY hands it back as "uncontrolled".
    #[error("E set without C: for the Uncontrolled Port (802.1AE 10.6)")]
    ReservedEncoding,
}

/// A read-only or read-write view over a buffer that starts with a SecTAG.
#[derive(Debug, Clone, Copy)]
pub struct SecTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SecTag<T> {
    /// Wraps a buffer without checking its length; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> SecTag<T> {
        SecTag { buffer }
    }

    /// Wraps a buffer after [`SecTag::check_len`].
    pub fn new_checked(buffer: T) -> Result<SecTag<T>, TagError> {
        let t = SecTag::new_unchecked(buffer);
        t.check_len()?;
        Ok(t)
    }

    /// Checks that the buffer holds the whole SecTAG (8 octets, or 16 if SC=1).
    pub fn check_len(&self) -> Result<(), TagError> {
        let b = self.buffer.as_ref();
        if b.len() < SECTAG_LEN {
            return Err(TagError::Truncated);
        }
        if b.len() < self.header_len() {
            return Err(TagError::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The EtherType field.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The whole TCI/AN octet.
    #[inline]
    pub fn tci_an(&self) -> u8 {
        self.buffer.as_ref()[field::TCI_AN]
    }

    /// The Association Number.
    #[inline]
    pub fn an(&self) -> u8 {
        self.tci_an() & tci::AN
    }

    /// The whole SL octet, reserved bits included.
    #[inline]
    pub fn sl_octet(&self) -> u8 {
        self.buffer.as_ref()[field::SL]
    }

    /// The Short Length (low 6 bits of the SL octet).
    #[inline]
    pub fn short_len(&self) -> u8 {
        self.sl_octet() & 0x3F
    }

    /// The 32-bit PN field.
    #[inline]
    pub fn pn(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::PN];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The SecTAG length given the SC bit: 8 or 16.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.buffer.as_ref()[field::TCI_AN] & tci::SC != 0 {
            SECTAG_SCI_LEN
        } else {
            SECTAG_LEN
        }
    }

    /// The explicit SCI, if SC=1.
    #[inline]
    pub fn sci(&self) -> Option<Sci> {
        if self.tci_an() & tci::SC == 0 {
            return None;
        }
        let mut s = [0u8; 8];
        s.copy_from_slice(&self.buffer.as_ref()[field::SCI]);
        Some(Sci(s))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SecTag<T> {
    /// Sets the EtherType field.
    #[inline]
    pub fn set_ethertype(&mut self, v: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the TCI/AN octet.
    #[inline]
    pub fn set_tci_an(&mut self, v: u8) {
        self.buffer.as_mut()[field::TCI_AN] = v;
    }
    /// Sets the SL octet.
    #[inline]
    pub fn set_sl_octet(&mut self, v: u8) {
        self.buffer.as_mut()[field::SL] = v;
    }
    /// Sets the PN field.
    #[inline]
    pub fn set_pn(&mut self, v: u32) {
        self.buffer.as_mut()[field::PN].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the SCI field (the buffer must hold 16 octets).
    #[inline]
    pub fn set_sci(&mut self, sci: Sci) {
        self.buffer.as_mut()[field::SCI].copy_from_slice(&sci.0);
    }
}

/// A validated SecTAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecTagRepr {
    /// ES: end station; the SCI is the source MAC ‖ port 1.
    pub end_station: bool,
    /// SCB: single copy broadcast.
    pub scb: bool,
    /// E and C: the Secure Data is encrypted (both bits set) or not (both clear).
    pub encrypted: bool,
    /// Association Number, 0..=3.
    pub an: u8,
    /// Short Length: the Secure Data length if below 48, else 0.
    pub short_len: u8,
    /// The low 32 bits of the PN (the whole PN for 32-bit suites).
    pub pn: u32,
    /// The explicit SCI (SC=1), or `None`.
    pub sci: Option<Sci>,
}

impl SecTagRepr {
    /// Parses and validates the TCI, SL and PN fields (802.1AE 9.12 c-e and the PN rule).
    /// `xpn` says whether the SA uses a 64-bit PN suite, for which a wire PN of 0 is legal.
    /// The length rules that need the frame length are in [`check_mpdu_len`].
    pub fn parse<T: AsRef<[u8]>>(tag: &SecTag<T>, xpn: bool) -> Result<SecTagRepr, TagError> {
        SecTagRepr::parse_bytes(tag.buffer.as_ref(), xpn)
    }

    /// [`SecTagRepr::parse`] on a buffer that starts with the SecTAG (the receive path's
    /// form: one bounds check, fixed-offset reads).
    #[inline(always)]
    pub fn parse_bytes(b: &[u8], xpn: bool) -> Result<SecTagRepr, TagError> {
        let Some(h) = b.first_chunk::<SECTAG_LEN>() else {
            return Err(TagError::Truncated);
        };
        if h[0] != 0x88 || h[1] != 0xE5 {
            return Err(TagError::NotMacsec);
        }
        let t = h[2];
        let sci = if t & tci::SC != 0 {
            let Some(x) = b.get(SECTAG_LEN..SECTAG_SCI_LEN) else {
                return Err(TagError::Truncated);
            };
            let mut s = [0u8; 8];
            s.copy_from_slice(x);
            Some(Sci(s))
        } else {
            None
        };
        if t & tci::V != 0 {
            return Err(TagError::Version);
        }
        if t & tci::SC != 0 {
            if t & tci::ES != 0 {
                return Err(TagError::EndStationWithSci);
            }
            if t & tci::SCB != 0 {
                return Err(TagError::ScbWithSci);
            }
        }
        match (t & tci::E != 0, t & tci::C != 0) {
            (true, false) => return Err(TagError::ReservedEncoding),
            (false, true) => return Err(TagError::ChangedWithoutEncryption),
            _ => {}
        }
        let sl = h[3];
        if sl & 0xC0 != 0 {
            return Err(TagError::ReservedShortLenBits);
        }
        if sl as usize >= SHORT_LEN_LIMIT {
            return Err(TagError::ShortLenTooLarge);
        }
        let pn = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        if pn == 0 && !xpn {
            return Err(TagError::ZeroPn);
        }
        Ok(SecTagRepr {
            end_station: t & tci::ES != 0,
            scb: t & tci::SCB != 0,
            encrypted: t & tci::E != 0,
            an: t & tci::AN,
            short_len: sl,
            pn,
            sci,
        })
    }

    /// The TCI/AN octet this repr encodes.
    pub fn tci_an(&self) -> u8 {
        let mut t = self.an & tci::AN;
        if self.end_station {
            t |= tci::ES;
        }
        if self.sci.is_some() {
            t |= tci::SC;
        }
        if self.scb {
            t |= tci::SCB;
        }
        if self.encrypted {
            t |= tci::E | tci::C;
        }
        t
    }

    /// SecTAG length: 8, or 16 with an explicit SCI.
    pub fn buffer_len(&self) -> usize {
        if self.sci.is_some() {
            SECTAG_SCI_LEN
        } else {
            SECTAG_LEN
        }
    }

    /// The SL value for Secure Data of `secure_data_len` octets (802.1AE 9.7).
    pub fn short_len_for(secure_data_len: usize) -> u8 {
        if secure_data_len < SHORT_LEN_LIMIT {
            secure_data_len as u8
        } else {
            0
        }
    }

    /// Writes the SecTAG into the first [`SecTagRepr::buffer_len`] octets of `tag`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, tag: &mut SecTag<T>) {
        tag.set_ethertype(ethertype::MACSEC);
        tag.set_tci_an(self.tci_an());
        tag.set_sl_octet(self.short_len & 0x3F);
        tag.set_pn(self.pn);
        if let Some(sci) = self.sci {
            tag.set_sci(sci);
        }
    }
}

/// The Secure Data length of an MPDU, from the SL rule (802.1AE 9.12 f-i).
///
/// `after_tag` is the number of octets after the SecTAG (Secure Data + ICV, plus any
/// Ethernet padding), `icv_len` the suite's ICV length. With SL = 0 the Secure Data must
/// be at least 48 octets. With SL != 0 it is exactly SL octets; extra octets are
/// accepted only as Ethernet padding of a minimum-size frame, i.e. when `frame_len`
/// (the whole frame without FCS) is at most `min_frame_len` (60, plus 4 per VLAN tag
/// kept in clear). Anything else is a length error.
pub fn check_mpdu_len(
    short_len: u8,
    after_tag: usize,
    icv_len: usize,
    frame_len: usize,
    min_frame_len: usize,
) -> Result<usize, TagError> {
    let sl = short_len as usize;
    if sl == 0 {
        if after_tag < SHORT_LEN_LIMIT + icv_len {
            return Err(TagError::TooShortForZeroShortLen);
        }
        return Ok(after_tag - icv_len);
    }
    let needed = sl + icv_len;
    if after_tag == needed || (after_tag > needed && frame_len <= min_frame_len) {
        Ok(sl)
    } else {
        Err(TagError::ShortLenMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(tci_an: u8, sl: u8, pn: u32, sci: bool) -> Vec<u8> {
        let mut b = vec![0x88, 0xE5, tci_an, sl];
        b.extend_from_slice(&pn.to_be_bytes());
        if sci {
            b.extend_from_slice(&[1, 2, 3, 4, 5, 6, 0, 1]);
        }
        b
    }

    #[test]
    fn parse_annex_c_tag() {
        // C.5.1: 88E5 4C 2A 76D457ED (ES=1, E=1, C=1, AN 0, SL 42).
        let b = tag(0x4C, 0x2A, 0x76D4_57ED, false);
        let r = SecTagRepr::parse(&SecTag::new_checked(&b[..]).unwrap(), false).unwrap();
        assert!(r.end_station && r.encrypted && !r.scb);
        assert_eq!((r.an, r.short_len, r.pn, r.sci), (0, 42, 0x76D4_57ED, None));
        let mut out = [0u8; 8];
        r.emit(&mut SecTag::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], &b[..]);
    }

    #[test]
    fn each_rule_has_its_own_error() {
        let p = |t: u8, sl: u8, pn: u32, xpn: bool| {
            let b = tag(t, sl, pn, t & tci::SC != 0);
            SecTagRepr::parse(&SecTag::new_unchecked(&b[..]), xpn)
        };
        assert_eq!(p(0xAC, 0, 2, false), Err(TagError::Version));
        assert_eq!(p(0x6C, 0, 2, false), Err(TagError::EndStationWithSci));
        assert_eq!(p(0x3C, 0, 2, false), Err(TagError::ScbWithSci));
        assert_eq!(
            p(0x24, 0, 2, false),
            Err(TagError::ChangedWithoutEncryption)
        );
        assert_eq!(p(0x28, 0, 2, false), Err(TagError::ReservedEncoding));
        assert_eq!(p(0x2C, 0x80, 2, false), Err(TagError::ReservedShortLenBits));
        assert_eq!(p(0x2C, 49, 2, false), Err(TagError::ShortLenTooLarge));
        assert_eq!(p(0x2C, 0, 0, false), Err(TagError::ZeroPn));
        assert!(p(0x2C, 0, 0, true).is_ok());
        let b = tag(0x2C, 0, 1, true);
        assert_eq!(
            SecTag::new_checked(&b[..15]).unwrap_err(),
            TagError::Truncated
        );
        assert_eq!(
            SecTag::new_checked(&b[..7]).unwrap_err(),
            TagError::Truncated
        );
        let mut nb = b.clone();
        nb[1] = 0xD7;
        assert_eq!(
            SecTagRepr::parse(&SecTag::new_unchecked(&nb[..]), false),
            Err(TagError::NotMacsec)
        );
    }

    #[test]
    fn mpdu_length_rules() {
        // SL=0 needs >= 48 octets of Secure Data.
        assert_eq!(check_mpdu_len(0, 64, 16, 100, 60), Ok(48));
        assert_eq!(
            check_mpdu_len(0, 63, 16, 100, 60),
            Err(TagError::TooShortForZeroShortLen)
        );
        // SL != 0 must match exactly...
        assert_eq!(check_mpdu_len(42, 58, 16, 78, 60), Ok(42));
        assert_eq!(
            check_mpdu_len(42, 59, 16, 79, 60),
            Err(TagError::ShortLenMismatch)
        );
        assert_eq!(
            check_mpdu_len(42, 57, 16, 77, 60),
            Err(TagError::ShortLenMismatch)
        );
        // ...unless the excess is padding of a minimum-size frame.
        assert_eq!(check_mpdu_len(4, 24, 16, 60, 60), Ok(4));
        assert_eq!(
            check_mpdu_len(4, 25, 16, 61, 60),
            Err(TagError::ShortLenMismatch)
        );
    }

    /// Every TCI/AN octet x SL octet pair (65,536) either is rejected or parses and
    /// emits back to the same two octets.
    #[test]
    fn exhaustive_tci_sl() {
        let mut accepted = 0;
        for t in 0..=255u8 {
            for sl in 0..=255u8 {
                for xpn in [false, true] {
                    let b = tag(t, sl, 0x0102_0304, t & tci::SC != 0);
                    let v = SecTag::new_checked(&b[..]).unwrap();
                    if let Ok(r) = SecTagRepr::parse(&v, xpn) {
                        let mut out = vec![0u8; r.buffer_len()];
                        r.emit(&mut SecTag::new_unchecked(&mut out[..]));
                        assert_eq!(out, b, "tci {t:#04x} sl {sl:#04x}");
                        if !xpn {
                            accepted += 1;
                        }
                    }
                }
            }
        }
        // Valid TCIs: V=0, (E,C) in {00,11}, SC excludes ES and SCB: per AN and EC pair
        // there are 5 ES/SC/SCB combos (000,100,010,001,101) -> 5*2*4 = 40 TCIs,
        // times 48 SL values.
        assert_eq!(accepted, 40 * 48);
    }
}

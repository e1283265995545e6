//! The MAC Security Entity (802.1AE clause 10): transmit and receive processing,
//! SCs and SAs, replay protection, PN exhaustion, counters.
//!
//! A [`SecY`] is split into a [`Transmitter`] and a [`Receiver`] so that each
//! direction can be owned by its own thread with no shared state. Both transform
//! frames in place in a caller-owned buffer: a frame lives in `buf[range]`, with free
//! headroom before it and tailroom after it. Protection needs up to 16 octets of
//! headroom (or tailroom) for the SecTAG and 16 of tailroom for the ICV; validation
//! only shrinks the frame. Nothing in the per-frame path allocates, and every frame from
//! the wire yields a verdict and a counter, never a panic.
//!
//! ```
//! use macsec::crypto::{CipherSuite, SecretKey};
//! use macsec::secy::{FrameBuf, RxVerdict, SecY, SecYConfig};
//! use macsec::wire::Sci;
//!
//! let key = "AD7A2BD03EAC835A6F620FDCB506B345";
//! let (a_sci, b_sci): (Sci, Sci) = ("0200000000010001".parse().unwrap(), "0200000000020001".parse().unwrap());
//! let mut a = SecY::new(SecYConfig::new(a_sci)).unwrap();
//! a.tx.install_sa(0, &SecretKey::from_hex(key).unwrap(), 1, None).unwrap();
//! let mut b = SecY::new(SecYConfig::new(b_sci)).unwrap();
//! b.rx.add_sc(a_sci).unwrap();
//! b.rx.install_sa(a_sci, 0, &SecretKey::from_hex(key).unwrap(), 1, None).unwrap();
//!
//! // An Ethernet frame: DA, SA, EtherType 0x0800, payload.
//! let plain = [&[0xff; 6][..], &[2, 0, 0, 0, 0, 1], &[0x08, 0x00], b"hello, MACsec"].concat();
//! let mut f = FrameBuf::new(&plain);
//! a.tx.protect_buf(&mut f).unwrap();
//! assert_eq!(f.len(), plain.len() + 16 + 16); // SecTAG with SCI + ICV
//! assert_eq!(b.rx.validate_buf(&mut f), RxVerdict::Ok);
//! assert_eq!(f.as_slice(), &plain[..]);
//! ```

pub mod counters;
pub mod replay;
pub mod rx;
pub mod tx;

pub use counters::*;
pub use replay::{recover_xpn_pn, ReplayMode, ReplayWindow};
pub use rx::{Receiver, RxSaState, RxScStats, RxStats, RxVerdict};
pub use tx::{Transmitter, TxDrop, TxEvent, TxSaStats, TxScStats, TxStats};

use crate::crypto::{Backend, CipherSuite, Salt, Ssci};
use crate::wire::Sci;
use core::ops::Range;

/// validateFrames (802.1AE 10.7.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum ValidateFrames {
    /// No validation of frames without C=1; untagged frames delivered.
    Disabled,
    /// Validate, but deliver integrity-only frames that fail (InPktsInvalid).
    Check,
    /// Validate and discard everything that fails (the default, as in Linux).
    #[default]
    Strict,
}

/// Confidentiality offset (802.1AE 10.7.25): how many octets of the User Data,
/// counted from its first octet (the EtherType), are sent in clear but integrity
/// protected. 30 leaves the EtherType, an IPv4 header and the transport ports in clear;
/// 50 does the same for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ConfidentialityOffset {
    /// Everything after the SecTAG is encrypted.
    #[default]
    Zero,
    /// 30 octets in clear.
    Thirty,
    /// 50 octets in clear.
    Fifty,
}

impl ConfidentialityOffset {
    /// The offset in octets.
    pub fn octets(self) -> usize {
        match self {
            ConfidentialityOffset::Zero => 0,
            ConfidentialityOffset::Thirty => 30,
            ConfidentialityOffset::Fifty => 50,
        }
    }

    /// From an octet count (0, 30 or 50).
    pub fn from_octets(n: u64) -> Option<Self> {
        match n {
            0 => Some(ConfidentialityOffset::Zero),
            30 => Some(ConfidentialityOffset::Thirty),
            50 => Some(ConfidentialityOffset::Fifty),
            _ => None,
        }
    }
}

/// How transmitted frames are protected; received frames are accepted with either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protection {
    /// E=0, C=0: the User Data is sent in clear, covered by the ICV.
    IntegrityOnly,
    /// E=1, C=1: encrypted after the given offset.
    Confidentiality(ConfidentialityOffset),
}

impl Default for Protection {
    fn default() -> Self {
        Protection::Confidentiality(ConfidentialityOffset::Zero)
    }
}

/// The fraction of the PN space after which a transmit SA asks for a new key.
pub const DEFAULT_PN_THRESHOLD: f64 = 0.75;

/// Configuration of one SecY. Validated by [`SecY::new`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SecYConfig {
    /// Cipher suite of every SA of this SecY.
    pub cipher: CipherSuite,
    /// protectFrames (10.7.17): protect transmitted frames (else send them untagged).
    pub protect_frames: bool,
    /// Integrity only or confidentiality with an offset, for transmission; also the
    /// offset assumed for received encrypted frames.
    pub protection: Protection,
    /// validateFrames.
    pub validate: ValidateFrames,
    /// replayProtect.
    pub replay_protect: bool,
    /// replayWindow.
    pub replay_window: u32,
    /// Standard lower bound, or also reject duplicates.
    pub replay_mode: ReplayMode,
    /// Always include the SCI in the SecTAG (Linux `send_sci`, default on).
    pub send_sci: bool,
    /// ES: this SecY is an end station; the SCI is MAC ‖ port 1 and not sent.
    pub end_station: bool,
    /// SCB: single copy broadcast (EPON); the SCI is not sent.
    pub scb: bool,
    /// Number of 802.1Q/802.1ad tags left in clear before the SecTAG (0..=2). They
    /// are not covered by the ICV (a vendor "clear tag" extension; DPDK vectors).
    pub vlan_in_clear: u8,
    /// The transmit SC's SCI.
    pub sci: Sci,
    /// The MTU of the port protected frames are sent on: a protected frame longer than
    /// this plus 14 (plus 4 per clear tag) is discarded as OutPktsTooLong. `None`: no limit.
    pub mtu: Option<usize>,
    /// Fraction of the PN space after which a transmit SA raises [`TxEvent::PnThreshold`].
    pub pn_threshold: f64,
    /// AES-GCM backend.
    pub backend: Backend,
}

impl SecYConfig {
    /// The defaults (see [`Default`]) with this transmit SCI; change the public fields
    /// from there.
    pub fn new(sci: Sci) -> SecYConfig {
        SecYConfig {
            sci,
            ..SecYConfig::default()
        }
    }
}

impl Default for SecYConfig {
    /// The Linux defaults (validate Strict, send_sci on, GCM-AES-128), except that
    /// frames are encrypted and replay protection is on: this is a data plane that
    /// encrypts by default.
    fn default() -> Self {
        SecYConfig {
            cipher: CipherSuite::GcmAes128,
            protect_frames: true,
            protection: Protection::default(),
            validate: ValidateFrames::Strict,
            replay_protect: true,
            replay_window: 0,
            replay_mode: ReplayMode::LowerBound,
            send_sci: true,
            end_station: false,
            scb: false,
            vlan_in_clear: 0,
            sci: Sci::default(),
            mtu: None,
            pn_threshold: DEFAULT_PN_THRESHOLD,
            backend: Backend::default(),
        }
    }
}

/// Errors in SecY configuration and SA management. Each names the setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SecYError {
    /// send_sci together with end_station or scb (Linux refuses this too).
    #[error("send_sci cannot be combined with end_station or scb (the SCI is implicit there)")]
    SendSciWithImplicitSci,
    /// end_station together with scb.
    #[error("end_station and scb cannot both be set")]
    EndStationWithScb,
    /// end_station with an SCI whose port is not 1.
    #[error("end_station requires the SCI port to be 0001 (802.1AE 9.5), got {0:04x}")]
    EndStationPort(u16),
    /// vlan_in_clear above 2.
    #[error("vlan_in_clear must be 0, 1 or 2, got {0}")]
    VlanInClear(u8),
    /// Replay window too large for the cipher suite or mode.
    #[error("replay_window {window} is too large: at most {max} {why}")]
    ReplayWindow {
        /// Configured window.
        window: u32,
        /// Largest allowed.
        max: u32,
        /// Which rule.
        why: &'static str,
    },
    /// pn_threshold outside (0, 1].
    #[error("pn_threshold must be in (0, 1], got {0}")]
    PnThreshold(f64),
    /// AN outside 0..=3.
    #[error("association number must be 0..3, got {0}")]
    An(u8),
    /// Key length does not match the cipher suite.
    #[error("key for {cipher} must be {expected} octets, got {got}")]
    KeyLength {
        /// Suite.
        cipher: CipherSuite,
        /// Expected octets.
        expected: usize,
        /// Given octets.
        got: usize,
    },
    /// PN 0, or above the suite's range.
    #[error("pn {pn} is out of range for {cipher}: must be 1..={max}")]
    Pn {
        /// Suite.
        cipher: CipherSuite,
        /// Given PN.
        pn: u64,
        /// Largest PN.
        max: u64,
    },
    /// An XPN SA without SSCI and salt, or a non-XPN SA with them.
    #[error("{0}")]
    XpnParams(&'static str),
    /// Receive SC lookup failed.
    #[error("no receive SC with SCI {0}")]
    UnknownSc(Sci),
    /// Receive SC added twice.
    #[error("receive SC with SCI {0} already exists")]
    DuplicateSc(Sci),
    /// SA not installed.
    #[error("no SA with AN {0}")]
    NoSa(u8),
}

/// SSCI and salt of an XPN SA (802.1AE 14.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XpnParams {
    /// Short SCI of the transmitting SC.
    pub ssci: Ssci,
    /// Per-SAK salt.
    pub salt: Salt,
}

impl SecYConfig {
    /// Checks the combination of settings (the rules Linux `macsec_validate_attr` and
    /// 802.1AEbw 10.7.8 apply).
    pub fn check(&self) -> Result<(), SecYError> {
        if self.send_sci && (self.end_station || self.scb) {
            return Err(SecYError::SendSciWithImplicitSci);
        }
        if self.end_station && self.scb {
            return Err(SecYError::EndStationWithScb);
        }
        if self.end_station && self.sci.port() != 1 {
            return Err(SecYError::EndStationPort(self.sci.port()));
        }
        if self.vlan_in_clear > 2 {
            return Err(SecYError::VlanInClear(self.vlan_in_clear));
        }
        if self.cipher.is_xpn() && self.replay_window > replay::MAX_XPN_WINDOW {
            return Err(SecYError::ReplayWindow {
                window: self.replay_window,
                max: replay::MAX_XPN_WINDOW,
                why: "for an XPN cipher suite (802.1AEbw 10.7.8)",
            });
        }
        if self.replay_mode == ReplayMode::RejectDuplicates
            && self.replay_window > replay::MAX_DUPLICATE_WINDOW
        {
            return Err(SecYError::ReplayWindow {
                window: self.replay_window,
                max: replay::MAX_DUPLICATE_WINDOW,
                why: "with replay_mode = \"reject-duplicates\"",
            });
        }
        if !(self.pn_threshold > 0.0 && self.pn_threshold <= 1.0) {
            return Err(SecYError::PnThreshold(self.pn_threshold));
        }
        Ok(())
    }
}

/// Checks the AN, key length, PN range and XPN parameters of a new SA.
pub(crate) fn check_sa(
    cipher: CipherSuite,
    an: u8,
    key_len: usize,
    pn: u64,
    xpn: Option<&XpnParams>,
) -> Result<(), SecYError> {
    if an > 3 {
        return Err(SecYError::An(an));
    }
    if key_len != cipher.key_len() {
        return Err(SecYError::KeyLength {
            cipher,
            expected: cipher.key_len(),
            got: key_len,
        });
    }
    if pn == 0 || pn > cipher.max_pn() {
        return Err(SecYError::Pn {
            cipher,
            pn,
            max: cipher.max_pn(),
        });
    }
    match (cipher.is_xpn(), xpn.is_some()) {
        (true, false) => Err(SecYError::XpnParams(
            "an XPN cipher suite needs ssci and salt for every SA",
        )),
        (false, true) => Err(SecYError::XpnParams(
            "ssci and salt are only for the XPN cipher suites",
        )),
        _ => Ok(()),
    }
}

/// The per-SA constant part of the GCM IV: SCI ‖ 0 for the 32-bit PN suites,
/// (SSCI ‖ 0) XOR Salt for XPN (802.1AE 14.5, 14.7). The PN is XORed into octets 4..12
/// per frame by [`iv_for`].
pub(crate) fn iv_base(sci: Sci, xpn: Option<&XpnParams>) -> [u8; 12] {
    let mut iv = [0u8; 12];
    match xpn {
        None => iv[..8].copy_from_slice(&sci.0),
        Some(p) => {
            iv[..4].copy_from_slice(&p.ssci.0.to_be_bytes());
            for (o, s) in iv.iter_mut().zip(p.salt.0.iter()) {
                *o ^= s;
            }
        }
    }
    iv
}

/// The IV for `pn`: octets 4..12 of the base XOR the 64-bit PN. For the 32-bit suites
/// the PN's high half is zero, so this is SCI ‖ PN32.
#[inline(always)]
pub(crate) fn iv_for(base: &[u8; 12], pn: u64) -> [u8; 12] {
    // Built and stored as octets 0..8 and 8..12, the split in which the AEAD front end
    // loads the nonce again, so each load is forwarded from one store.
    let mut head = [0u8; 8];
    head.copy_from_slice(&base[..8]);
    let mut tail = [0u8; 4];
    tail.copy_from_slice(&base[8..]);
    let head = u64::from_be_bytes(head) ^ (pn >> 32);
    let tail = u32::from_be_bytes(tail) ^ pn as u32;
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(&head.to_be_bytes());
    iv[8..].copy_from_slice(&tail.to_be_bytes());
    iv
}

/// Per-SecY counters of both directions, as one object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SecYCounters {
    /// Receive counters.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rx: RxSecYCounters,
    /// Transmit counters.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub tx: TxSecYCounters,
}

/// All counters of a SecY: per SecY, the transmit SC and its SAs, each receive SC and
/// its SAs. Serializes with the 802.1AE names as keys.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SecYStats {
    /// Per-SecY counters (both directions).
    pub secy: SecYCounters,
    /// Transmit SC.
    pub tx_sc: TxScStats,
    /// Receive SCs.
    pub rx_sc: Vec<RxScStats>,
}

impl SecYStats {
    /// Combines the snapshots of the two halves.
    pub fn new(tx: TxStats, rx: RxStats) -> SecYStats {
        SecYStats {
            secy: SecYCounters {
                rx: rx.secy,
                tx: tx.secy,
            },
            tx_sc: tx.sc,
            rx_sc: rx.rx_sc,
        }
    }
}

/// A SecY: the two halves, each with its own state and counters.
#[derive(Debug)]
pub struct SecY {
    /// Transmit half (protectFrames path).
    pub tx: Transmitter,
    /// Receive half (validateFrames path).
    pub rx: Receiver,
}

impl SecY {
    /// Builds a SecY with no SAs installed.
    pub fn new(cfg: SecYConfig) -> Result<SecY, SecYError> {
        cfg.check()?;
        Ok(SecY {
            tx: Transmitter::new(&cfg),
            rx: Receiver::new(&cfg),
        })
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> SecYStats {
        SecYStats::new(self.tx.stats(), self.rx.stats())
    }

    /// Splits into the two halves.
    pub fn split(self) -> (Transmitter, Receiver) {
        (self.tx, self.rx)
    }
}

/// Headroom [`FrameBuf`] reserves before a frame: a SecTAG with SCI.
pub const HEADROOM: usize = 16;
/// Tailroom [`FrameBuf`] reserves after a frame: the ICV.
pub const TAILROOM: usize = 16;

/// An owned frame buffer with headroom and tailroom for in-place protection.
#[derive(Clone, PartialEq, Eq)]
pub struct FrameBuf {
    buf: Vec<u8>,
    range: Range<usize>,
}

impl core::fmt::Debug for FrameBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FrameBuf({} octets)", self.range.len())
    }
}

impl FrameBuf {
    /// Copies `frame` into a new buffer with [`HEADROOM`] and [`TAILROOM`].
    pub fn new(frame: &[u8]) -> FrameBuf {
        let mut f = FrameBuf::with_capacity(frame.len());
        f.set(frame);
        f
    }

    /// An empty buffer for frames of up to `max_frame` octets.
    pub fn with_capacity(max_frame: usize) -> FrameBuf {
        FrameBuf {
            buf: vec![0u8; HEADROOM + max_frame + TAILROOM],
            range: HEADROOM..HEADROOM,
        }
    }

    /// Replaces the content with `frame`, growing the buffer only if it is too small.
    pub fn set(&mut self, frame: &[u8]) {
        let need = HEADROOM + frame.len() + TAILROOM;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        self.buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        self.range = HEADROOM..HEADROOM + frame.len();
    }

    /// The frame.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }

    /// Frame length.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// The whole buffer and the frame's range in it, for the in-place calls.
    pub fn parts(&mut self) -> (&mut [u8], Range<usize>) {
        (&mut self.buf, self.range.clone())
    }

    /// Sets the frame's range after an in-place call.
    pub fn set_range(&mut self, r: Range<usize>) {
        assert!(r.start <= r.end && r.end <= self.buf.len());
        self.range = r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rules() {
        let ok = SecYConfig::default();
        assert!(ok.check().is_ok());
        let bad = |f: fn(&mut SecYConfig)| {
            let mut c = SecYConfig::default();
            f(&mut c);
            c.check().unwrap_err()
        };
        assert_eq!(
            bad(|c| c.end_station = true),
            SecYError::SendSciWithImplicitSci
        );
        assert!(matches!(
            bad(|c| {
                c.cipher = CipherSuite::GcmAesXpn128;
                c.replay_window = 1 << 30;
            }),
            SecYError::ReplayWindow { .. }
        ));
        assert_eq!(bad(|c| c.vlan_in_clear = 3), SecYError::VlanInClear(3));
        assert_eq!(bad(|c| c.pn_threshold = 0.0), SecYError::PnThreshold(0.0));
        assert_eq!(
            bad(|c| {
                c.send_sci = false;
                c.end_station = true;
                c.sci = "0200000000010002".parse().unwrap();
            }),
            SecYError::EndStationPort(2)
        );
    }

    #[test]
    fn iv_layouts() {
        // C.1.1: IV = SCI ‖ PN.
        let sci: Sci = "12153524C0895E81".parse().unwrap();
        let b = iv_base(sci, None);
        assert_eq!(
            iv_for(&b, 0xB2C2_8465),
            [0x12, 0x15, 0x35, 0x24, 0xC0, 0x89, 0x5E, 0x81, 0xB2, 0xC2, 0x84, 0x65]
        );
        // C.1.3: IV = (SSCI ‖ PN64) XOR salt = 9C002902F801C33EAEA47E08.
        let p = XpnParams {
            ssci: Ssci(0x7A30_C118),
            salt: Salt([
                0xE6, 0x30, 0xE8, 0x1A, 0x48, 0xDE, 0x86, 0xA2, 0x1C, 0x66, 0xFA, 0x6D,
            ]),
        };
        let b = iv_base(sci, Some(&p));
        assert_eq!(
            iv_for(&b, 0xB0DF_459C_B2C2_8465),
            [0x9C, 0x00, 0x29, 0x02, 0xF8, 0x01, 0xC3, 0x3E, 0xAE, 0xA4, 0x7E, 0x08]
        );
    }
}

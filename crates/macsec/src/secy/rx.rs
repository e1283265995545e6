//! Receive processing (802.1AE 10.6): SecTAG validation, SC and SA lookup, replay
//! protection, XPN PN recovery, ICV check, and the counters of every outcome.
//!
//! Order of checks (notes section 6; 802.1AE 10.6.1-10.6.5):
//! 1. EtherType not 0x88E5: untagged (InPktsNoTag under Strict, else InPktsUntagged).
//! 2. E=1,C=0: reserved, for the Uncontrolled Port only.
//! 3. SecTAG and MPDU validity (9.12): InPktsBadTag. Unlike Linux, which skips these
//!    checks for frames with an unknown SCI, a malformed tag is always BadTag here, so
//!    a malformed frame can never be delivered unvalidated.
//! 4. SC lookup by SCI: InPktsNoSCI/InPktsUnknownSCI (InPktsNoSAError/InPktsNoSA).
//! 5. SA lookup by AN: InPktsNotUsingSA/InPktsUnusedSA (InPktsNoSAError/InPktsNoSA).
//! 6. PN recovery (XPN) and the replay check before decryption: InPktsLate.
//! 7. ICV check unless validateFrames is Disabled and C=0: InPktsNotValid/InPktsInvalid.
//! 8. InPktsOK or InPktsDelayed; nextPN is raised only by a frame whose ICV verified.

use super::counters::{RxSaCounters, RxScCounters, RxSecYCounters};
use super::replay::{recover_xpn_pn, ReplayMode, ReplayWindow};
use super::tx::{frame_header, move_header, with_contiguous_aad};
use super::{
    check_sa, iv_base, iv_for, Protection, SecYConfig, SecYError, ValidateFrames, XpnParams,
};
use crate::crypto::{AeadKey, Backend, CipherSuite, SecretKey, ICV_LEN};
use crate::wire::ethernet::{be16, ethertype, ADDRS_LEN, HEADER_LEN, MIN_FRAME_LEN, VLAN_TAG_LEN};
use crate::wire::sectag::{
    check_mpdu_len, tci, SecTagRepr, TagError, SECTAG_SCI_LEN, SHORT_LEN_LIMIT,
};
use crate::wire::{MacAddr, Sci};
use core::ops::Range;

/// The outcome of receiving one frame: one variant per counter that it increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RxVerdict {
    /// Valid (InPktsOK). Delivered.
    Ok,
    /// Valid but below the lowest acceptable PN, replayProtect off (InPktsDelayed). Delivered.
    Delayed,
    /// Not validated: validateFrames Disabled, C=0 (InPktsUnchecked). Delivered.
    Unchecked,
    /// Failed validation under Check, integrity only (InPktsInvalid). Delivered.
    Invalid,
    /// No SecTAG, not Strict (InPktsUntagged). Delivered unchanged.
    Untagged,
    /// Unknown SCI, not Strict and C=0 (InPktsUnknownSCI, InPktsNoSA). Delivered unvalidated.
    UnknownSci,
    /// SA not in use, not Strict and C=0 (InPktsUnusedSA, InPktsNoSA). Delivered unvalidated.
    UnusedSa,
    /// No SecTAG, Strict (InPktsNoTag). Dropped.
    NoTag,
    /// Invalid SecTAG or MPDU length (InPktsBadTag). Dropped.
    BadTag(TagError),
    /// Unknown SCI, Strict or C=1 (InPktsNoSCI, InPktsNoSAError). Dropped.
    NoSci,
    /// SA not in use, Strict or C=1 (InPktsNotUsingSA, InPktsNoSAError). Dropped.
    NotUsingSa,
    /// PN below the lowest acceptable PN, or (duplicate mode) already seen (InPktsLate). Dropped.
    Late,
    /// Failed validation, Strict or C=1 (InPktsNotValid). Dropped.
    NotValid,
    /// E=1,C=0: for the Uncontrolled Port only (InPktsUncontrolled). Not delivered.
    Uncontrolled,
}

impl RxVerdict {
    /// Whether the frame goes to the Controlled Port.
    pub fn is_delivered(self) -> bool {
        matches!(
            self,
            RxVerdict::Ok
                | RxVerdict::Delayed
                | RxVerdict::Unchecked
                | RxVerdict::Invalid
                | RxVerdict::Untagged
                | RxVerdict::UnknownSci
                | RxVerdict::UnusedSa
        )
    }
}

struct RxSa {
    key: AeadKey,
    iv_base: [u8; 12],
    active: bool,
    replay: ReplayWindow,
    counters: RxSaCounters,
}

struct RxSc {
    /// The SCI as a big-endian integer: the lookup key (same order as the octets).
    key: u64,
    sci: Sci,
    sas: [Option<RxSa>; 4],
    counters: RxScCounters,
}

impl RxSc {
    fn first_active_sa(&mut self) -> Option<&mut RxSa> {
        self.sas.iter_mut().flatten().find(|s| s.active)
    }
}

/// State of one receive SA, for the KaY and for export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RxSaState {
    /// Association Number.
    pub an: u8,
    /// Whether the SA is in use.
    pub active: bool,
    /// One more than the highest PN accepted (`None` after PN 2^64 - 1).
    pub next_pn: Option<u64>,
    /// Lowest acceptable PN (`None` when nothing is acceptable any more).
    pub lowest_pn: Option<u64>,
    /// Counters.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub counters: RxSaCounters,
}

/// Receive SC snapshot.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RxScStats {
    /// The SC's SCI.
    pub sci: String,
    /// SC counters.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub counters: RxScCounters,
    /// Installed SAs.
    pub sa: Vec<RxSaState>,
}

/// A snapshot of all receive counters.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RxStats {
    /// Per-SecY receive counters.
    pub secy: RxSecYCounters,
    /// Per receive SC.
    pub rx_sc: Vec<RxScStats>,
    /// The SCI of the last frame that matched no receive SC (InPktsNoSCI or
    /// InPktsUnknownSCI), so an operator can tell which peer it was.
    pub last_unknown_sci: Option<Sci>,
}

/// The receive half of a SecY: receive SCs keyed by SCI, each with up to four SAs.
pub struct Receiver {
    cipher: CipherSuite,
    /// `cipher.is_xpn()`, kept for the per-frame path.
    xpn: bool,
    backend: Backend,
    offset: usize,
    validate: ValidateFrames,
    replay_protect: bool,
    replay_window: u32,
    replay_mode: ReplayMode,
    vlan_in_clear: usize,
    /// Sorted by SCI for binary search.
    scs: Vec<RxSc>,
    secy: RxSecYCounters,
    last_unknown_sci: Option<Sci>,
}

impl core::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Receiver")
            .field("cipher", &self.cipher)
            .field("scs", &self.scs.iter().map(|s| s.sci).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Receiver {
    pub(crate) fn new(cfg: &SecYConfig) -> Receiver {
        Receiver {
            cipher: cfg.cipher,
            xpn: cfg.cipher.is_xpn(),
            backend: cfg.backend,
            offset: match cfg.protection {
                Protection::Confidentiality(o) => o.octets(),
                Protection::IntegrityOnly => 0,
            },
            validate: cfg.validate,
            replay_protect: cfg.replay_protect,
            replay_window: cfg.replay_window,
            replay_mode: cfg.replay_mode,
            vlan_in_clear: cfg.vlan_in_clear as usize,
            scs: Vec::new(),
            secy: RxSecYCounters::default(),
            last_unknown_sci: None,
        }
    }

    #[inline(always)]
    fn sc_index(&self, sci: Sci) -> Result<usize, usize> {
        let key = sci.to_u64();
        // Most SecYs have one or two peers: compare integers before searching.
        if self.scs.len() <= 4 {
            return match self.scs.iter().position(|s| s.key >= key) {
                Some(i) if self.scs[i].key == key => Ok(i),
                Some(i) => Err(i),
                None => Err(self.scs.len()),
            };
        }
        self.scs.binary_search_by(|s| s.key.cmp(&key))
    }

    /// Adds a receive SC for a peer's SCI.
    pub fn add_sc(&mut self, sci: Sci) -> Result<(), SecYError> {
        match self.sc_index(sci) {
            Ok(_) => Err(SecYError::DuplicateSc(sci)),
            Err(i) => {
                self.scs.insert(
                    i,
                    RxSc {
                        key: sci.to_u64(),
                        sci,
                        sas: [None, None, None, None],
                        counters: RxScCounters::default(),
                    },
                );
                Ok(())
            }
        }
    }

    /// Removes a receive SC and its SAs.
    pub fn remove_sc(&mut self, sci: Sci) -> Result<(), SecYError> {
        let i = self.sc_index(sci).map_err(|_| SecYError::UnknownSc(sci))?;
        self.scs.remove(i);
        Ok(())
    }

    /// Changes the cipher suite (e.g. the one a key server distributes). Every SA of
    /// every SC is removed; the SCs stay.
    pub fn set_cipher(&mut self, cipher: CipherSuite) {
        if cipher != self.cipher {
            self.cipher = cipher;
            self.xpn = cipher.is_xpn();
            for sc in &mut self.scs {
                sc.sas = [None, None, None, None];
            }
        }
    }

    /// The cipher suite.
    pub fn cipher(&self) -> CipherSuite {
        self.cipher
    }

    /// Changes the confidentiality offset assumed for received encrypted frames.
    pub fn set_protection(&mut self, p: Protection) {
        self.offset = match p {
            Protection::Confidentiality(o) => o.octets(),
            Protection::IntegrityOnly => 0,
        };
    }

    /// Changes validateFrames (802.1AE 10.7.8), e.g. to pass unprotected frames while
    /// no CA is secured under a should-secure policy, and back to Strict once one is.
    pub fn set_validate_frames(&mut self, v: ValidateFrames) {
        self.validate = v;
    }

    /// validateFrames.
    pub fn validate_frames(&self) -> ValidateFrames {
        self.validate
    }

    /// Number of receive SCs.
    pub fn sc_count(&self) -> usize {
        self.scs.len()
    }

    /// The SCIs of the receive SCs.
    pub fn scis(&self) -> impl Iterator<Item = Sci> + '_ {
        self.scs.iter().map(|s| s.sci)
    }

    /// Installs (or replaces) SA `an` of the SC `sci`, in use at once, accepting PNs
    /// from `lowest_pn` on. For XPN, `xpn` carries the transmitter's SSCI and the salt.
    pub fn install_sa(
        &mut self,
        sci: Sci,
        an: u8,
        key: &SecretKey,
        lowest_pn: u64,
        xpn: Option<XpnParams>,
    ) -> Result<(), SecYError> {
        check_sa(self.cipher, an, key.len(), lowest_pn, xpn.as_ref())?;
        let i = self.sc_index(sci).map_err(|_| SecYError::UnknownSc(sci))?;
        let sa = RxSa {
            key: AeadKey::new(self.backend, key),
            iv_base: iv_base(sci, xpn.as_ref()),
            active: true,
            replay: ReplayWindow::new(lowest_pn, self.replay_window, self.replay_mode),
            counters: RxSaCounters::default(),
        };
        self.scs[i].sas[an as usize] = Some(sa);
        Ok(())
    }

    fn sa_mut(&mut self, sci: Sci, an: u8) -> Result<&mut RxSa, SecYError> {
        let i = self.sc_index(sci).map_err(|_| SecYError::UnknownSc(sci))?;
        self.scs[i]
            .sas
            .get_mut(an as usize)
            .and_then(|s| s.as_mut())
            .ok_or(SecYError::NoSa(an))
    }

    /// Removes SA `an` of SC `sci` (its key is wiped).
    pub fn remove_sa(&mut self, sci: Sci, an: u8) -> Result<(), SecYError> {
        self.sa_mut(sci, an)?;
        let i = self.sc_index(sci).map_err(|_| SecYError::UnknownSc(sci))?;
        self.scs[i].sas[an as usize] = None;
        Ok(())
    }

    /// Marks an SA in use or not (802.1AE 10.7.22 inUse).
    pub fn set_sa_active(&mut self, sci: Sci, an: u8, active: bool) -> Result<(), SecYError> {
        self.sa_mut(sci, an)?.active = active;
        Ok(())
    }

    /// Raises the lowest acceptable PN of an SA (the KaY's updates, 802.1X 12.x).
    pub fn set_lowest_pn(&mut self, sci: Sci, an: u8, pn: u64) -> Result<(), SecYError> {
        self.sa_mut(sci, an)?.replay.raise_floor(pn);
        Ok(())
    }

    /// The expanded key of SA `an` of SC `sci`, for the benches only (feature
    /// `bench-internals`; see `Transmitter::sa_aead_key`).
    #[cfg(feature = "bench-internals")]
    #[doc(hidden)]
    pub fn sa_aead_key(&self, sci: Sci, an: u8) -> Option<&AeadKey> {
        let i = self.sc_index(sci).ok()?;
        self.scs[i].sas.get(an as usize)?.as_ref().map(|s| &s.key)
    }

    /// The state of SA `an` of SC `sci`.
    pub fn sa_state(&self, sci: Sci, an: u8) -> Option<RxSaState> {
        let i = self.sc_index(sci).ok()?;
        let sa = self.scs[i].sas.get(an as usize)?.as_ref()?;
        Some(RxSaState {
            an,
            active: sa.active,
            next_pn: sa.replay.next_pn(),
            lowest_pn: sa.replay.lowest_pn(),
            counters: sa.counters,
        })
    }

    /// Per-SecY receive counters. The octet totals are the sums over the receive SCs
    /// (kept per SC only, so the per-frame path updates one counter, not two).
    pub fn secy_counters(&self) -> RxSecYCounters {
        let mut c = self.secy;
        for sc in &self.scs {
            c.in_octets_validated += sc.counters.in_octets_validated;
            c.in_octets_decrypted += sc.counters.in_octets_decrypted;
        }
        c
    }

    /// Counters of the SC `sci`.
    pub fn sc_counters(&self, sci: Sci) -> Option<&RxScCounters> {
        self.sc_index(sci).ok().map(|i| &self.scs[i].counters)
    }

    /// Counts frames lost before they reached the receiver (InPktsOverrun), e.g. the
    /// drops a kernel receive ring reports.
    pub fn count_overrun(&mut self, n: u64) {
        self.secy.in_pkts_overrun += n;
    }

    /// A snapshot of all receive counters.
    pub fn stats(&self) -> RxStats {
        RxStats {
            secy: self.secy_counters(),
            rx_sc: self
                .scs
                .iter()
                .map(|sc| RxScStats {
                    sci: sc.sci.to_string(),
                    counters: sc.counters,
                    sa: (0..4u8)
                        .filter_map(|an| self.sa_state(sc.sci, an))
                        .collect(),
                })
                .collect(),
            last_unknown_sci: self.last_unknown_sci,
        }
    }

    /// The SC for a frame without an explicit SCI (802.1AE 9.9): ES=1 means the
    /// source MAC ‖ port 1; otherwise try that too (as Linux does), then fall back to
    /// the single receive SC of a point-to-point CA.
    #[inline]
    fn implicit_sc(&self, src: MacAddr) -> Option<usize> {
        if let Ok(i) = self.sc_index(Sci::new(src, Sci::END_STATION_PORT)) {
            return Some(i);
        }
        (self.scs.len() == 1).then_some(0)
    }

    /// Validates the frame in `buf[frame]` in place (802.1AE 10.6). Returns the verdict
    /// and, for a delivered frame, its range: the SecTAG and ICV removed, clear VLAN
    /// tags kept in front of the User Data, Ethernet padding after a short frame removed.
    //
    // Always inlined into the caller's per-frame loop: as a call it cost 7–12 ns more per
    // frame than the same code inlined (benches/secy.rs; the raw AEAD runs 230–330 ns at
    // 1514 octets), enough to miss the 0.95 target. The callers are few (the pumps,
    // `pcap`, the `*_buf` wrappers).
    #[inline(always)]
    pub fn validate(
        &mut self,
        buf: &mut [u8],
        frame: Range<usize>,
    ) -> (RxVerdict, Option<Range<usize>>) {
        let Range { start, end } = frame;
        if start > end || end > buf.len() || end - start < HEADER_LEN {
            self.secy.in_pkts_bad_tag += 1;
            return (RxVerdict::BadTag(TagError::Truncated), None);
        }
        match common_header(buf, start, end, self.xpn) {
            Some(h) => self.validate_header(InPlace { buf, start }, h),
            None => self.validate_other(buf, start, end),
        }
    }

    /// Validates `frame` *out of place* (802.1AE 10.6): the frame is only read, and a
    /// delivered frame (SecTAG and ICV removed, as [`Receiver::validate`] leaves it) is
    /// written into `out`, whose range holding it is returned with the verdict. Verdicts,
    /// counters and replay state, and the delivered octets, are exactly those of
    /// [`Receiver::validate`] on the same frame (the tests hold the two to that).
    ///
    /// This is the forwarder's one pass per frame: a frame of the usual shape (see the
    /// fast path of [`Receiver::validate`]) is decrypted by the cipher straight from the
    /// receive buffer into the transmit buffer, with no copy in between. Any other frame
    /// is copied into `out` and validated there. `out` must be at least as long as
    /// `frame`; a longer frame is not looked at and counts as InPktsBadTag, as a frame
    /// range outside the buffer does for [`Receiver::validate`].
    #[inline(always)]
    pub fn validate_into(
        &mut self,
        frame: &[u8],
        out: &mut [u8],
    ) -> (RxVerdict, Option<Range<usize>>) {
        let end = frame.len();
        if end < HEADER_LEN || out.len() < end {
            self.secy.in_pkts_bad_tag += 1;
            return (RxVerdict::BadTag(TagError::Truncated), None);
        }
        match common_header(frame, 0, end, self.xpn) {
            Some(h) => self.validate_header(Split { frame, out }, h),
            None => self.validate_into_other(frame, out),
        }
    }

    /// [`Receiver::validate_into`] for a frame that [`common_header`] did not take: it
    /// is copied into `out` and validated there, in place.
    #[inline(never)]
    fn validate_into_other(
        &mut self,
        frame: &[u8],
        out: &mut [u8],
    ) -> (RxVerdict, Option<Range<usize>>) {
        let end = frame.len();
        out[..end].copy_from_slice(frame);
        self.validate_other(out, 0, end)
    }

    /// [`Receiver::validate`] for a frame that [`common_header`] did not take: clear
    /// VLAN tags, no SCI, short frames, and every malformed one.
    #[inline(never)]
    fn validate_other(
        &mut self,
        buf: &mut [u8],
        start: usize,
        end: usize,
    ) -> (RxVerdict, Option<Range<usize>>) {
        match parse_header(buf, start, end, self.vlan_in_clear, self.xpn) {
            Ok(h) => self.validate_header(InPlace { buf, start }, h),
            Err(e) => self.count_unprotected(e, start..end),
        }
    }

    /// Receive processing after the SecTAG checks (802.1AE 10.6.2-10.6.5): SC and SA
    /// lookup, PN recovery and replay check, ICV check, counters. Inlined twice, so the
    /// fast path gets [`common_header`]'s constant offsets folded in.
    #[inline(always)]
    fn validate_header<I: RxIo>(
        &mut self,
        mut io: I,
        h: Header,
    ) -> (RxVerdict, Option<Range<usize>>) {
        let xpn = self.xpn;
        let Header {
            ntags,
            et_off,
            tag_len,
            secure_len,
            encrypted: changed,
            an,
            pn: wire_pn,
            sci,
        } = h;
        let strict = self.validate == ValidateFrames::Strict;
        let l = RxLayout {
            ntags,
            et_off,
            tag_len,
            secure_len,
        };

        let sc_idx = match sci {
            Some(sci) => self.sc_index(sci).ok(),
            None => self.implicit_sc(MacAddr(io.src_mac())),
        };
        let Some(sc_idx) = sc_idx else {
            self.last_unknown_sci = Some(sci.unwrap_or_else(|| Sci::new(MacAddr(io.src_mac()), 1)));
            if changed || strict {
                self.secy.in_pkts_no_sci += 1;
                self.secy.in_pkts_no_sa_error += 1;
                return (RxVerdict::NoSci, None);
            }
            self.secy.in_pkts_unknown_sci += 1;
            self.secy.in_pkts_no_sa += 1;
            return (RxVerdict::UnknownSci, Some(io.strip(&l)));
        };
        let sc = &mut self.scs[sc_idx];
        let an = an as usize;
        if !sc.sas[an].as_ref().is_some_and(|s| s.active) {
            if changed || strict {
                sc.counters.in_pkts_not_using_sa += 1;
                if let Some(sa) = sc.first_active_sa() {
                    sa.counters.in_pkts_not_using_sa += 1;
                }
                self.secy.in_pkts_no_sa_error += 1;
                return (RxVerdict::NotUsingSa, None);
            }
            sc.counters.in_pkts_unused_sa += 1;
            if let Some(sa) = sc.first_active_sa() {
                sa.counters.in_pkts_unused_sa += 1;
            }
            self.secy.in_pkts_no_sa += 1;
            return (RxVerdict::UnusedSa, Some(io.strip(&l)));
        }
        let Some(sa) = sc.sas[an].as_mut() else {
            unreachable!("checked above")
        };

        // 802.1AEbw 10.6.2: recover the 64-bit PN against the lowest acceptable PN.
        let pn = if xpn {
            match recover_xpn_pn(wire_pn, sa.replay.recovery_reference()) {
                Some(pn) => pn,
                None => {
                    // Beyond the end of the PN space: cannot be a fresh frame.
                    sc.counters.in_pkts_late += 1;
                    return (RxVerdict::Late, None);
                }
            }
        } else {
            wire_pn as u64
        };
        if self.replay_protect && !sa.replay.check(pn) {
            sc.counters.in_pkts_late += 1;
            return (RxVerdict::Late, None);
        }

        if self.validate == ValidateFrames::Disabled && !changed {
            let v = if sa.replay.is_below_lowest(pn) {
                sc.counters.in_pkts_delayed += 1;
                RxVerdict::Delayed
            } else {
                sc.counters.in_pkts_unchecked += 1;
                RxVerdict::Unchecked
            };
            return (v, Some(io.strip(&l)));
        }

        let clear = if changed {
            self.offset.min(secure_len)
        } else {
            secure_len
        };
        let iv = iv_for(&sa.iv_base, pn);
        let ok = io.open(&l, clear, &sa.key, &iv);
        if !ok {
            if changed || strict {
                sc.counters.in_pkts_not_valid += 1;
                sa.counters.in_pkts_not_valid += 1;
                return (RxVerdict::NotValid, None);
            }
            sc.counters.in_pkts_invalid += 1;
            sa.counters.in_pkts_invalid += 1;
            return (RxVerdict::Invalid, Some(io.strip(&l)));
        }
        let octets = secure_len as u64;
        if changed {
            sc.counters.in_octets_decrypted += octets;
        } else {
            sc.counters.in_octets_validated += octets;
        }
        let v = if sa.replay.is_below_lowest(pn) {
            sc.counters.in_pkts_delayed += 1;
            RxVerdict::Delayed
        } else {
            sc.counters.in_pkts_ok += 1;
            sa.counters.in_pkts_ok += 1;
            RxVerdict::Ok
        };
        sa.replay.commit(pn);
        (v, Some(io.opened(&l)))
    }

    /// Counts a frame that [`parse_header`] turned away before any SC lookup.
    #[cold]
    #[inline(never)]
    fn count_unprotected(
        &mut self,
        why: Unprotected,
        frame: Range<usize>,
    ) -> (RxVerdict, Option<Range<usize>>) {
        match why {
            Unprotected::NoSecTag if self.validate == ValidateFrames::Strict => {
                self.secy.in_pkts_no_tag += 1;
                (RxVerdict::NoTag, None)
            }
            Unprotected::NoSecTag => {
                self.secy.in_pkts_untagged += 1;
                (RxVerdict::Untagged, Some(frame))
            }
            Unprotected::Reserved => {
                self.secy.in_pkts_uncontrolled += 1;
                (RxVerdict::Uncontrolled, None)
            }
            Unprotected::BadTag(e) => {
                self.secy.in_pkts_bad_tag += 1;
                (RxVerdict::BadTag(e), None)
            }
        }
    }

    /// [`Receiver::validate`] on a [`super::FrameBuf`]; a delivered frame replaces
    /// the buffer's content.
    pub fn validate_buf(&mut self, f: &mut super::FrameBuf) -> RxVerdict {
        let (buf, r) = f.parts();
        let (v, out) = self.validate(buf, r);
        if let Some(out) = out {
            f.set_range(out);
        }
        v
    }
}

/// Where the parts of a received frame are, once its header is parsed.
struct RxLayout {
    /// Clear 802.1Q tags between SA and SecTAG.
    ntags: usize,
    /// Offset of the MACsec EtherType from the frame start.
    et_off: usize,
    /// SecTAG length: 8 or 16.
    tag_len: usize,
    /// Octets of Secure Data between SecTAG and ICV (padding excluded).
    secure_len: usize,
}

impl RxLayout {
    /// End of the ICV (padding excluded), from the frame start.
    #[inline(always)]
    fn end(&self) -> usize {
        self.et_off + self.tag_len + self.secure_len + ICV_LEN
    }
}

/// How [`Receiver::validate_header`] reads a frame and delivers it: in place in one
/// buffer, or from the received frame into a separate output.
trait RxIo {
    /// The frame's source address.
    fn src_mac(&self) -> [u8; 6];
    /// Delivers the frame as received, without SecTAG and ICV; returns its range.
    fn strip(&mut self, l: &RxLayout) -> Range<usize>;
    /// Checks the ICV over DA ‖ SA ‖ SecTAG ‖ the first `clear` octets of Secure Data
    /// (the AAD) and the rest, and decrypts the rest. Whether the ICV verified.
    fn open(&mut self, l: &RxLayout, clear: usize, key: &AeadKey, iv: &[u8; 12]) -> bool;
    /// After a successful [`open`](Self::open): delivers the frame; returns its range.
    fn opened(&mut self, l: &RxLayout) -> Range<usize>;
}

/// The frame starting at `buf[start]`, validated in place.
struct InPlace<'a> {
    buf: &'a mut [u8],
    start: usize,
}

impl RxIo for InPlace<'_> {
    #[inline(always)]
    fn src_mac(&self) -> [u8; 6] {
        let mut src = [0u8; 6];
        src.copy_from_slice(&self.buf[self.start + 6..self.start + 12]);
        src
    }

    #[inline(always)]
    fn strip(&mut self, l: &RxLayout) -> Range<usize> {
        let start = self.start;
        move_header(self.buf, start, start + l.tag_len, l.et_off);
        start + l.tag_len..start + l.end() - ICV_LEN
    }

    #[inline(always)]
    fn open(&mut self, l: &RxLayout, clear: usize, key: &AeadKey, iv: &[u8; 12]) -> bool {
        let (buf, start) = (&mut *self.buf, self.start);
        let end = start + l.end();
        let icv_off = end - ICV_LEN;
        let mut icv = [0u8; ICV_LEN];
        icv.copy_from_slice(&buf[icv_off..end]);
        let aad_len = ADDRS_LEN + l.tag_len + clear;
        if l.ntags == 0 {
            let (aad, rest) = buf[start..icv_off].split_at_mut(aad_len);
            key.open_in_place(iv, aad, rest, &icv).is_ok()
        } else {
            with_contiguous_aad(buf, start, l.ntags, icv_off, |region| {
                let (aad, rest) = region.split_at_mut(aad_len);
                key.open_in_place(iv, aad, rest, &icv)
            })
            .is_ok()
        }
    }

    #[inline(always)]
    fn opened(&mut self, l: &RxLayout) -> Range<usize> {
        self.strip(l)
    }
}

/// A received frame (no clear tags, as [`common_header`] takes them) validated into
/// `out`, which is at least as long as the frame.
struct Split<'a> {
    frame: &'a [u8],
    out: &'a mut [u8],
}

impl RxIo for Split<'_> {
    #[inline(always)]
    fn src_mac(&self) -> [u8; 6] {
        let mut src = [0u8; 6];
        src.copy_from_slice(&self.frame[6..12]);
        src
    }

    #[inline(always)]
    fn strip(&mut self, l: &RxLayout) -> Range<usize> {
        let user = l.et_off + l.tag_len;
        let n = l.et_off + l.secure_len;
        self.out[..l.et_off].copy_from_slice(&self.frame[..l.et_off]);
        self.out[l.et_off..n].copy_from_slice(&self.frame[user..user + l.secure_len]);
        0..n
    }

    #[inline(always)]
    fn open(&mut self, l: &RxLayout, clear: usize, key: &AeadKey, iv: &[u8; 12]) -> bool {
        debug_assert!(l.ntags == 0);
        let f = self.frame;
        let user = l.et_off + l.tag_len;
        let icv_off = user + l.secure_len;
        let mut icv = [0u8; ICV_LEN];
        icv.copy_from_slice(&f[icv_off..icv_off + ICV_LEN]);
        // DA ‖ SA and the clear octets go out as they came; the rest is decrypted
        // straight from the frame into `out`.
        let out = &mut self.out[..l.et_off + l.secure_len];
        out[..l.et_off].copy_from_slice(&f[..l.et_off]);
        let (clear_out, dec_out) = out[l.et_off..].split_at_mut(clear);
        clear_out.copy_from_slice(&f[user..user + clear]);
        key.open_into(
            iv,
            &f[..user + clear],
            &f[user + clear..icv_off],
            &icv,
            dec_out,
        )
        .is_ok()
    }

    #[inline(always)]
    fn opened(&mut self, l: &RxLayout) -> Range<usize> {
        0..l.et_off + l.secure_len
    }
}

/// What receive processing needs from the octets in front of the Secure Data: the
/// clear VLAN tags, the SecTAG (802.1AE 9.3) and the MPDU length it implies (9.7, 9.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    /// Clear 802.1Q tags between SA and SecTAG.
    ntags: usize,
    /// Offset of the MACsec EtherType from the frame start.
    et_off: usize,
    /// SecTAG length, EtherType included: 8 or 16.
    tag_len: usize,
    /// Octets of Secure Data between SecTAG and ICV (Ethernet padding excluded).
    secure_len: usize,
    /// E=1,C=1.
    encrypted: bool,
    an: u8,
    /// The PN field (the low 32 bits of the PN for XPN).
    pn: u32,
    /// The explicit SCI, if SC=1.
    sci: Option<Sci>,
}

/// Why a frame has no usable SecTAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unprotected {
    /// No MACsec EtherType where the SecTAG belongs (InPktsUntagged / InPktsNoTag).
    NoSecTag,
    /// E=1,C=0 (InPktsUncontrolled).
    Reserved,
    /// SecTAG or MPDU length invalid (InPktsBadTag).
    BadTag(TagError),
}

/// The header of the frame in `buf[start..end]` (at least [`HEADER_LEN`] octets),
/// parsed with every 802.1AE 9.12 rule; `vlan_in_clear` clear tags are skipped first.
fn parse_header(
    buf: &[u8],
    start: usize,
    end: usize,
    vlan_in_clear: usize,
    xpn: bool,
) -> Result<Header, Unprotected> {
    let len = end - start;
    let (ntags, et_off) = frame_header(buf, start, end, vlan_in_clear)
        .ok_or(Unprotected::BadTag(TagError::Truncated))?;
    if be16(&buf[start..end], et_off) != Some(ethertype::MACSEC) {
        return Err(Unprotected::NoSecTag);
    }
    let repr = match SecTagRepr::parse_bytes(&buf[start + et_off..end], xpn) {
        Ok(r) => r,
        Err(TagError::ReservedEncoding) => return Err(Unprotected::Reserved),
        Err(e) => return Err(Unprotected::BadTag(e)),
    };
    let tag_len = repr.buffer_len();
    let after_tag = len - et_off - tag_len;
    let min_len = MIN_FRAME_LEN + ntags * VLAN_TAG_LEN;
    let secure_len = check_mpdu_len(repr.short_len, after_tag, ICV_LEN, len, min_len)
        .map_err(Unprotected::BadTag)?;
    Ok(Header {
        ntags,
        et_off,
        tag_len,
        secure_len,
        encrypted: repr.encrypted,
        an: repr.an,
        pn: repr.pn,
        sci: repr.sci,
    })
}

/// Shortest frame that [`common_header`] takes: DA ‖ SA, a SecTAG with SCI, at least
/// the 48 octets of Secure Data that SL = 0 requires (802.1AE 9.7), and the ICV.
const COMMON_MIN_LEN: usize = ADDRS_LEN + SECTAG_SCI_LEN + SHORT_LEN_LIMIT + ICV_LEN;

/// The header of the frame in `buf[start..end]` (`end <= buf.len()`) if it has the
/// shape nearly every frame on a point-to-point link has: no clear VLAN tag, the
/// SecTAG right after SA with V=0, ES=0, SC=1, SCB=0, E=C (integrity only or
/// confidentiality), SL=0 and a PN that is valid for the suite. `None` for anything
/// else, which then goes through [`parse_header`].
///
/// This is the per-frame fast path: the EtherType, TCI/AN, SL and PN are checked
/// with one 8-octet load and a mask, not field by field. For every frame it accepts
/// it returns exactly what [`parse_header`] returns (a property test holds it to
/// that), whatever `vlan_in_clear` is: the octets after SA are the MACsec EtherType,
/// not a VLAN TPID, so no tag is skipped.
#[inline(always)]
fn common_header(buf: &[u8], start: usize, end: usize, xpn: bool) -> Option<Header> {
    let len = end.checked_sub(start)?;
    if len < COMMON_MIN_LEN {
        return None;
    }
    let f = buf.get(start..start + ADDRS_LEN + SECTAG_SCI_LEN)?;
    let word = u64::from_be_bytes(f[ADDRS_LEN..ADDRS_LEN + 8].try_into().ok()?);
    // EtherType (16) ‖ TCI/AN (8) ‖ SL (8), with AN, E and C masked out.
    let head = (word >> 32) as u32;
    const FIXED: u32 = 0xFFFF_F0FF;
    const WANT: u32 = ((ethertype::MACSEC as u32) << 16) | ((tci::SC as u32) << 8);
    let ec = (head >> 8) as u8 & (tci::E | tci::C);
    let pn = word as u32;
    if head & FIXED != WANT || !(ec == 0 || ec == tci::E | tci::C) || (pn == 0 && !xpn) {
        return None;
    }
    let sci: [u8; 8] = f[ADDRS_LEN + 8..].try_into().ok()?;
    Some(Header {
        ntags: 0,
        et_off: ADDRS_LEN,
        tag_len: SECTAG_SCI_LEN,
        secure_len: len - ADDRS_LEN - SECTAG_SCI_LEN - ICV_LEN,
        encrypted: ec != 0,
        an: (head >> 8) as u8 & tci::AN,
        pn,
        sci: Some(Sci(sci)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A frame of `len` octets (at least 14) whose octets after SA look like a SecTAG
    /// most of the time, so that both parsers see every interesting shape.
    fn frame() -> impl Strategy<Value = (Vec<u8>, usize)> {
        let tci = prop_oneof![
            Just(0x20u8),
            Just(0x2C),
            Just(0x2D),
            Just(0x23),
            Just(0x0C),
            Just(0x4C),
            Just(0x28),
            Just(0x24),
            Just(0x30),
            Just(0x60),
            Just(0xA0),
            any::<u8>(),
        ];
        let sl = prop_oneof![Just(0u8), 1u8..48, any::<u8>()];
        let pn = prop_oneof![Just(0u32), Just(1), any::<u32>()];
        let len = prop_oneof![14usize..120, Just(91), Just(92), Just(93), Just(1514)];
        let et = prop_oneof![
            4 => Just(0x88E5u16),
            1 => Just(0x8100),
            1 => any::<u16>(),
        ];
        (len, 0usize..3, et, tci, sl, pn, any::<[u8; 8]>()).prop_map(
            |(len, start, et, tci, sl, pn, sci)| {
                let mut b: Vec<u8> = (0..start + len).map(|i| i as u8).collect();
                let h = start + ADDRS_LEN;
                let mut tag = [0u8; 16];
                tag[..2].copy_from_slice(&et.to_be_bytes());
                tag[2] = tci;
                tag[3] = sl;
                tag[4..8].copy_from_slice(&pn.to_be_bytes());
                tag[8..].copy_from_slice(&sci);
                let n = (b.len() - h).min(16);
                b[h..h + n].copy_from_slice(&tag[..n]);
                (b, start)
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// The fast path never disagrees with the full 802.1AE 9.12 checks: whatever
        /// it accepts, `parse_header` accepts with the same result, for every
        /// `vlan_in_clear` and both PN widths.
        #[test]
        fn common_header_agrees_with_parse_header((b, start) in frame()) {
            for xpn in [false, true] {
                if let Some(h) = common_header(&b, start, b.len(), xpn) {
                    for vlans in 0..=2 {
                        prop_assert_eq!(parse_header(&b, start, b.len(), vlans, xpn), Ok(h));
                    }
                }
            }
        }
    }

    /// Every TCI/AN × SL octet pair, at the lengths around SL = 0's minimum, PN 0 and 1,
    /// both PN widths: the fast path takes exactly the two TCI shapes it is for (each AN)
    /// with SL = 0 and a valid PN, and agrees with `parse_header` on each.
    #[test]
    fn common_header_exhaustive_over_tci_and_sl() {
        let mut taken = 0;
        for len in [COMMON_MIN_LEN - 1, COMMON_MIN_LEN, 200] {
            for pn in [0u32, 1] {
                for xpn in [false, true] {
                    for tci in 0..=255u8 {
                        for sl in 0..=255u8 {
                            let mut b = vec![0x5Au8; len];
                            b[12..16].copy_from_slice(&[0x88, 0xE5, tci, sl]);
                            b[16..20].copy_from_slice(&pn.to_be_bytes());
                            let Some(h) = common_header(&b, 0, len, xpn) else {
                                continue;
                            };
                            taken += 1;
                            assert!(matches!(tci & 0xFC, 0x20 | 0x2C), "{tci:#x}");
                            assert_eq!(sl, 0);
                            assert!(len >= COMMON_MIN_LEN && (pn != 0 || xpn));
                            assert_eq!(parse_header(&b, 0, len, 0, xpn), Ok(h));
                        }
                    }
                }
            }
        }
        // 2 shapes × 4 ANs, at 2 lengths, with PN 1 (both widths) and PN 0 (XPN only).
        assert_eq!(taken, 8 * 2 * 3);
    }

    /// The shape the fast path is for: what a default SecY sends at any size from
    /// the shortest frame that needs SL = 0, both modes, AN 0-3.
    #[test]
    fn common_header_takes_the_usual_frames() {
        for (tci, encrypted) in [(0x20u8, false), (0x2C, true)] {
            for an in 0..4u8 {
                for len in [COMMON_MIN_LEN, 200, 1546, 9046] {
                    let mut b = vec![0u8; len];
                    b[12..16].copy_from_slice(&[0x88, 0xE5, tci | an, 0]);
                    b[16..20].copy_from_slice(&7u32.to_be_bytes());
                    b[20..28].copy_from_slice(&[2, 0, 0, 0, 0, 1, 0, 1]);
                    let h = common_header(&b, 0, len, false).expect("fast path");
                    assert_eq!(h.encrypted, encrypted);
                    assert_eq!((h.an, h.pn, h.tag_len), (an, 7, 16));
                    assert_eq!(h.secure_len, len - 12 - 16 - 16);
                    assert_eq!(parse_header(&b, 0, len, 0, false), Ok(h));
                }
            }
        }
        // One octet short of SL = 0's minimum, and PN 0 for a 32-bit suite: not taken.
        let mut b = vec![0u8; COMMON_MIN_LEN - 1];
        b[12..16].copy_from_slice(&[0x88, 0xE5, 0x20, 0]);
        b[19] = 1;
        assert_eq!(common_header(&b, 0, b.len(), false), None);
        let mut b = vec![0u8; COMMON_MIN_LEN];
        b[12..16].copy_from_slice(&[0x88, 0xE5, 0x20, 0]);
        assert_eq!(common_header(&b, 0, b.len(), false), None);
        assert!(common_header(&b, 0, b.len(), true).is_some());
    }
}

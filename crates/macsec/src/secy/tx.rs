//! Transmit processing (802.1AE 10.5): the transmit SC, its SAs, PN assignment and
//! exhaustion, and in-place protection.

use super::counters::{TxSaCounters, TxScCounters, TxSecYCounters};
use super::{check_sa, iv_base, iv_for, Protection, SecYConfig, SecYError, XpnParams};
use crate::crypto::{AeadKey, Backend, CipherSuite, SecretKey, ICV_LEN};
use crate::wire::ethernet::{skip_vlan_tags, ADDRS_LEN, HEADER_LEN, VLAN_TAG_LEN};
use crate::wire::sectag::{tci, SecTagRepr, SECTAG_LEN, SECTAG_SCI_LEN};
use crate::wire::Sci;
use core::ops::Range;

/// Why a frame was not transmitted. Each maps to one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TxDrop {
    /// No encoding SA installed and active (extension counter OutPktsNoSA).
    #[error("no encoding SA installed and active (OutPktsNoSA)")]
    NoActiveSa,
    /// The encoding SA has no PN left, or reached its PN ceiling (OutPktsPnExhausted).
    #[error("the encoding SA has no packet number left (OutPktsPnExhausted)")]
    PnExhausted,
    /// The protected frame would exceed the MTU (OutPktsTooLong).
    #[error("the protected frame would exceed the MTU (OutPktsTooLong)")]
    TooLong,
    /// Not an Ethernet frame, or no room in the buffer (OutPktsMalformed).
    #[error("not an Ethernet frame, or no room for SecTAG and ICV (OutPktsMalformed)")]
    Malformed,
    /// end_station is set and the frame's source address is not the SCI's MAC
    /// (OutPktsSourceMismatch).
    #[error("source address is not the SCI's MAC address (OutPktsSourceMismatch)")]
    SourceMismatch,
}

/// Something the owner of a [`Transmitter`] must act on, from [`Transmitter::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxEvent {
    /// The SA's next PN passed the rekey threshold (default 75% of the PN space): time
    /// to install a new SAK (802.1X 12.x: the KaY rekeys before exhaustion).
    PnThreshold {
        /// Association Number.
        an: u8,
        /// The SA's next PN.
        next_pn: u64,
    },
    /// The SA sent its last PN and refuses to transmit (802.1AE 10.5.2: the PN never wraps).
    PnExhausted {
        /// Association Number.
        an: u8,
    },
    /// The SA reached its PN ceiling (see [`Transmitter::set_pn_ceiling`]) and waits
    /// for it to be raised.
    PnCeiling {
        /// Association Number.
        an: u8,
        /// The next PN it would use.
        next_pn: u64,
    },
}

struct TxSa {
    key: AeadKey,
    iv_base: [u8; 12],
    next_pn: u64,
    /// The last PN was used: the SA is done.
    exhausted: bool,
    /// Highest PN this SA may use now (at most the suite's maximum).
    ceiling: u64,
    threshold: u64,
    threshold_pending: bool,
    threshold_done: bool,
    exhausted_pending: bool,
    ceiling_pending: bool,
    counters: TxSaCounters,
}

impl TxSa {
    /// Takes the next PN (802.1AE 10.5.2), or refuses.
    #[inline(always)]
    fn take_pn(&mut self, max: u64) -> Option<u64> {
        if self.exhausted {
            return None;
        }
        let pn = self.next_pn;
        if pn > self.ceiling {
            self.ceiling_pending = true;
            return None;
        }
        if pn >= max {
            self.exhausted = true;
            self.exhausted_pending = true;
        } else {
            self.next_pn = pn + 1;
        }
        if pn >= self.threshold && !self.threshold_done {
            self.threshold_done = true;
            self.threshold_pending = true;
        }
        Some(pn)
    }
}

/// A snapshot of the transmit counters, for export.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TxStats {
    /// Per-SecY transmit counters.
    pub secy: TxSecYCounters,
    /// The transmit SC.
    pub sc: TxScStats,
}

/// Transmit SC snapshot.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TxScStats {
    /// The transmit SC's SCI.
    pub sci: String,
    /// The encoding AN.
    pub encoding_sa: u8,
    /// The transmit SC counters.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub counters: TxScCounters,
    /// Per installed SA: AN, next PN (None when exhausted) and counters.
    pub sa: Vec<TxSaStats>,
}

/// Transmit SA snapshot.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TxSaStats {
    /// Association Number.
    pub an: u8,
    /// Next PN to be used; `None` when exhausted.
    pub next_pn: Option<u64>,
    /// Counters.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub counters: TxSaCounters,
}

/// The transmit half of a SecY: one transmit SC (802.1AE 10.5) with up to four SAs.
pub struct Transmitter {
    cipher: CipherSuite,
    backend: Backend,
    protect_frames: bool,
    protection: Protection,
    send_sci: bool,
    end_station: bool,
    scb: bool,
    vlan_in_clear: usize,
    sci: Sci,
    mtu: Option<usize>,
    pn_threshold: f64,
    rx_sc_count: usize,
    /// The SecTAG settings derived from the fields above, for the per-frame path.
    shape: TagShape,
    encoding_an: u8,
    /// Whether the encoding SA may be used (802.1X: the KaY enables transmission only
    /// once every peer can receive with the new SA).
    transmit_enabled: bool,
    sas: [Option<TxSa>; 4],
    secy: TxSecYCounters,
    sc: TxScCounters,
}

impl core::fmt::Debug for Transmitter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transmitter")
            .field("cipher", &self.cipher)
            .field("sci", &self.sci)
            .field("encoding_an", &self.encoding_an)
            .finish_non_exhaustive()
    }
}

impl Transmitter {
    pub(crate) fn new(cfg: &SecYConfig) -> Transmitter {
        let mut tx = Transmitter {
            cipher: cfg.cipher,
            backend: cfg.backend,
            protect_frames: cfg.protect_frames,
            protection: cfg.protection,
            send_sci: cfg.send_sci,
            end_station: cfg.end_station,
            scb: cfg.scb,
            vlan_in_clear: cfg.vlan_in_clear as usize,
            sci: cfg.sci,
            mtu: cfg.mtu,
            pn_threshold: cfg.pn_threshold,
            rx_sc_count: 0,
            shape: TagShape::default(),
            encoding_an: 0,
            transmit_enabled: true,
            sas: [None, None, None, None],
            secy: TxSecYCounters::default(),
            sc: TxScCounters::default(),
        };
        tx.shape = tx.tag_shape();
        tx
    }

    /// Installs (or replaces) the transmit SA `an` with its key, the next PN to send
    /// and, for XPN, its SSCI and salt. The key is expanded here, once.
    pub fn install_sa(
        &mut self,
        an: u8,
        key: &SecretKey,
        next_pn: u64,
        xpn: Option<XpnParams>,
    ) -> Result<(), SecYError> {
        check_sa(self.cipher, an, key.len(), next_pn, xpn.as_ref())?;
        let max = self.cipher.max_pn();
        let threshold = ((max as f64) * self.pn_threshold).min(max as f64) as u64;
        self.sas[an as usize] = Some(TxSa {
            key: AeadKey::new(self.backend, key),
            iv_base: iv_base(self.sci, xpn.as_ref()),
            next_pn,
            exhausted: false,
            ceiling: max,
            threshold,
            threshold_pending: false,
            threshold_done: false,
            exhausted_pending: false,
            ceiling_pending: false,
            counters: TxSaCounters::default(),
        });
        Ok(())
    }

    /// Removes transmit SA `an` (its key is wiped).
    pub fn remove_sa(&mut self, an: u8) -> Result<(), SecYError> {
        match self.sas.get_mut(an as usize) {
            Some(s @ Some(_)) => {
                *s = None;
                Ok(())
            }
            _ => Err(SecYError::NoSa(an)),
        }
    }

    /// Selects the SA used for transmission (encodingSA, 802.1AE 10.7.18).
    pub fn set_encoding_sa(&mut self, an: u8) -> Result<(), SecYError> {
        if an > 3 {
            return Err(SecYError::An(an));
        }
        self.encoding_an = an;
        Ok(())
    }

    /// Stops or allows transmission with the encoding SA. With it stopped, installed
    /// SAs wait (frames are dropped as OutPktsNoSA) until [`Transmitter::enable_sa`].
    pub fn set_transmit_enabled(&mut self, on: bool) {
        self.transmit_enabled = on;
    }

    /// Makes `an` the encoding SA and allows transmission (the KaY's "enable transmit").
    pub fn enable_sa(&mut self, an: u8) -> Result<(), SecYError> {
        if self.sas.get(an as usize).and_then(|s| s.as_ref()).is_none() {
            return Err(SecYError::NoSa(an));
        }
        self.encoding_an = an;
        self.transmit_enabled = true;
        Ok(())
    }

    /// Changes the cipher suite (e.g. the one a key server distributes). Every SA is
    /// removed: keys of one suite are meaningless under another.
    pub fn set_cipher(&mut self, cipher: CipherSuite) {
        if cipher != self.cipher {
            self.cipher = cipher;
            self.sas = [None, None, None, None];
        }
    }

    /// The encoding AN.
    pub fn encoding_sa(&self) -> u8 {
        self.encoding_an
    }

    /// The next PN of SA `an`: `Ok(None)` when the SA is exhausted.
    pub fn next_pn(&self, an: u8) -> Result<Option<u64>, SecYError> {
        let sa = self
            .sas
            .get(an as usize)
            .and_then(|s| s.as_ref())
            .ok_or(SecYError::NoSa(an))?;
        Ok(if sa.exhausted { None } else { Some(sa.next_pn) })
    }

    /// Limits SA `an` to PNs up to and including `ceiling`. A forwarder that persists a
    /// PN high-water mark raises the ceiling only after the new mark is on disk, so no
    /// PN can be sent that a restart might send again.
    pub fn set_pn_ceiling(&mut self, an: u8, ceiling: u64) -> Result<(), SecYError> {
        let max = self.cipher.max_pn();
        let sa = self
            .sas
            .get_mut(an as usize)
            .and_then(|s| s.as_mut())
            .ok_or(SecYError::NoSa(an))?;
        sa.ceiling = ceiling.min(max);
        sa.ceiling_pending = false;
        Ok(())
    }

    /// Tells the transmitter how many receive SCs the SecY has: with more than one
    /// (and neither ES nor SCB) the SCI is always sent (802.1AE 10.5.3, Linux `send_sci()`).
    pub fn set_rx_sc_count(&mut self, n: usize) {
        self.rx_sc_count = n;
        self.shape = self.tag_shape();
    }

    /// Changes how frames are protected (e.g. the confidentiality offset the KaY
    /// distributes).
    pub fn set_protection(&mut self, p: Protection) {
        self.protection = p;
        self.shape = self.tag_shape();
    }

    /// Changes protectFrames (802.1AE 10.7.17): while off, frames are sent unprotected
    /// and counted as OutPktsUntagged (a should-secure policy before a CA is secured).
    pub fn set_protect_frames(&mut self, on: bool) {
        self.protect_frames = on;
    }

    /// protectFrames.
    pub fn protect_frames(&self) -> bool {
        self.protect_frames
    }

    /// Sets the MTU used for the OutPktsTooLong check.
    pub fn set_mtu(&mut self, mtu: Option<usize>) {
        self.mtu = mtu;
    }

    /// The cipher suite.
    pub fn cipher(&self) -> CipherSuite {
        self.cipher
    }

    /// The transmit SCI.
    pub fn sci(&self) -> Sci {
        self.sci
    }

    /// Per-SecY transmit counters. The octet totals are those of the one transmit SC
    /// (kept there only, so the per-frame path updates one counter, not two).
    pub fn secy_counters(&self) -> TxSecYCounters {
        TxSecYCounters {
            out_octets_protected: self.sc.out_octets_protected,
            out_octets_encrypted: self.sc.out_octets_encrypted,
            ..self.secy
        }
    }

    /// Transmit SC counters.
    pub fn sc_counters(&self) -> &TxScCounters {
        &self.sc
    }

    /// Counters of SA `an`, if installed.
    pub fn sa_counters(&self, an: u8) -> Option<&TxSaCounters> {
        self.sas.get(an as usize)?.as_ref().map(|s| &s.counters)
    }

    /// The expanded key of SA `an`, for the benches only (feature `bench-internals`):
    /// their raw AEAD baseline must use the very key context MACsec uses, or it
    /// compares where the allocator put two contexts (see `benches/README.md`).
    #[cfg(feature = "bench-internals")]
    #[doc(hidden)]
    pub fn sa_aead_key(&self, an: u8) -> Option<&AeadKey> {
        self.sas.get(an as usize)?.as_ref().map(|s| &s.key)
    }

    /// A snapshot of all transmit counters.
    pub fn stats(&self) -> TxStats {
        TxStats {
            secy: self.secy_counters(),
            sc: TxScStats {
                sci: self.sci.to_string(),
                encoding_sa: self.encoding_an,
                counters: self.sc,
                sa: self
                    .sas
                    .iter()
                    .enumerate()
                    .filter_map(|(an, s)| {
                        s.as_ref().map(|s| TxSaStats {
                            an: an as u8,
                            next_pn: if s.exhausted { None } else { Some(s.next_pn) },
                            counters: s.counters,
                        })
                    })
                    .collect(),
            },
        }
    }

    /// The next pending event, if any. Cheap; call once per batch.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        for (an, sa) in self.sas.iter_mut().enumerate() {
            let Some(sa) = sa else { continue };
            let an = an as u8;
            if sa.exhausted_pending {
                sa.exhausted_pending = false;
                return Some(TxEvent::PnExhausted { an });
            }
            if sa.threshold_pending {
                sa.threshold_pending = false;
                return Some(TxEvent::PnThreshold {
                    an,
                    next_pn: sa.next_pn,
                });
            }
            if sa.ceiling_pending {
                sa.ceiling_pending = false;
                return Some(TxEvent::PnCeiling {
                    an,
                    next_pn: sa.next_pn,
                });
            }
        }
        None
    }

    /// What every SecTAG sent with the current settings has in common (802.1AE 9.4-9.6,
    /// 10.5.3). Kept in `self.shape`; each setter that changes an input recomputes it.
    fn tag_shape(&self) -> TagShape {
        // The SCI is sent when configured, and always with more than one receive SC
        // unless ES or SCB says how to derive it (802.1AE 10.5.3, Linux `send_sci()`).
        let with_sci = self.send_sci || (!self.end_station && !self.scb && self.rx_sc_count > 1);
        let mut tci = 0;
        if self.end_station {
            tci |= tci::ES;
        }
        if with_sci {
            tci |= tci::SC;
        }
        if self.scb {
            tci |= tci::SCB;
        }
        let offset = match self.protection {
            Protection::IntegrityOnly => None,
            Protection::Confidentiality(o) => {
                tci |= tci::E | tci::C;
                Some(o.octets())
            }
        };
        TagShape {
            tci,
            tag_len: if with_sci { SECTAG_SCI_LEN } else { SECTAG_LEN },
            offset,
        }
    }

    /// Protects the frame in `buf[frame]` in place (802.1AE 10.5) and returns the
    /// protected frame's range. The frame (DA, SA, optional clear VLAN tags, User Data)
    /// needs 16 octets of headroom before it, or 16 more of tailroom, plus 16 octets of
    /// tailroom for the ICV. On error the frame is not sent and a counter says why.
    //
    // Always inlined into the caller's per-frame loop: as a call it cost 7–12 ns more per
    // frame than the same code inlined (benches/secy.rs; the raw AEAD runs 230–330 ns at
    // 1514 octets), enough to miss the 0.95 target. The callers are few (the pumps,
    // `pcap`, the `*_buf` wrappers).
    #[inline(always)]
    pub fn protect(&mut self, buf: &mut [u8], frame: Range<usize>) -> Result<Range<usize>, TxDrop> {
        let Range { start, end } = frame;
        if start > end || end > buf.len() {
            self.secy.out_pkts_malformed += 1;
            return Err(TxDrop::Malformed);
        }
        if !self.protect_frames {
            self.secy.out_pkts_untagged += 1;
            return Ok(start..end);
        }
        if self.vlan_in_clear == 0 && end - start >= HEADER_LEN {
            self.protect_at(InPlace { buf, start, end }, 0, ADDRS_LEN)
        } else {
            self.protect_other(buf, start, end)
        }
    }

    /// [`Transmitter::protect`] when clear VLAN tags may be present, or the frame is
    /// too short to have an EtherType.
    #[inline(never)]
    fn protect_other(
        &mut self,
        buf: &mut [u8],
        start: usize,
        end: usize,
    ) -> Result<Range<usize>, TxDrop> {
        let Some((ntags, et_off)) = frame_header(buf, start, end, self.vlan_in_clear) else {
            self.secy.out_pkts_malformed += 1;
            return Err(TxDrop::Malformed);
        };
        self.protect_at(InPlace { buf, start, end }, ntags, et_off)
    }

    /// Protection of a frame whose EtherType (after `ntags` clear tags) is at `et_off`,
    /// read and written through `io` (in place, or from a source into an output).
    /// Inlined into each caller, so the usual case gets the offsets as constants.
    #[inline(always)]
    fn protect_at<I: TxIo>(
        &mut self,
        mut io: I,
        ntags: usize,
        et_off: usize,
    ) -> Result<Range<usize>, TxDrop> {
        debug_assert!(self.shape == self.tag_shape());
        let len = io.len();
        if self.end_station && *io.src_mac() != self.sci.0[..6] {
            self.secy.out_pkts_source_mismatch += 1;
            return Err(TxDrop::SourceMismatch);
        }
        let an = self.encoding_an;
        let shape = self.shape;
        let tag_len = shape.tag_len;
        let out_len = len + tag_len + ICV_LEN;
        if let Some(mtu) = self.mtu {
            if out_len - HEADER_LEN - ntags * VLAN_TAG_LEN > mtu {
                self.secy.out_pkts_too_long += 1;
                return Err(TxDrop::TooLong);
            }
        }
        let max_pn = self.cipher.max_pn();
        let Some(sa) = self.sas[an as usize]
            .as_mut()
            .filter(|_| self.transmit_enabled)
        else {
            self.secy.out_pkts_no_sa += 1;
            return Err(TxDrop::NoActiveSa);
        };
        let Some(ns) = io.room(tag_len, out_len) else {
            self.secy.out_pkts_malformed += 1;
            return Err(TxDrop::Malformed);
        };
        let Some(pn) = sa.take_pn(max_pn) else {
            self.secy.out_pkts_pn_exhausted += 1;
            return Err(TxDrop::PnExhausted);
        };
        let secure_len = len - et_off;
        let (encrypted, offset) = match shape.offset {
            None => (false, secure_len),
            Some(o) => (true, o.min(secure_len)),
        };
        // The SecTAG (802.1AE 9.3), built in registers and stored at once.
        let mut tag = [0u8; SECTAG_SCI_LEN];
        tag[0] = 0x88;
        tag[1] = 0xE5;
        tag[2] = shape.tci | (an & tci::AN);
        tag[3] = SecTagRepr::short_len_for(secure_len);
        tag[4..8].copy_from_slice(&(pn as u32).to_be_bytes());
        tag[8..].copy_from_slice(&self.sci.0);
        let iv = iv_for(&sa.iv_base, pn);
        let layout = TxLayout {
            ns,
            et_off,
            ntags,
            tag_len,
            clear: offset,
            out_len,
        };
        if io.seal(&layout, &tag, &sa.key, &iv).is_err() {
            // Unreachable for frames (GCM takes up to 2^36 octets); never send it.
            self.secy.out_pkts_malformed += 1;
            return Err(TxDrop::Malformed);
        }
        let octets = secure_len as u64;
        if encrypted {
            self.sc.out_pkts_encrypted += 1;
            self.sc.out_octets_encrypted += octets;
            sa.counters.out_pkts_encrypted += 1;
        } else {
            self.sc.out_pkts_protected += 1;
            self.sc.out_octets_protected += octets;
            sa.counters.out_pkts_protected += 1;
        }
        Ok(ns..ns + out_len)
    }

    /// Protects the frame `head ‖ body` (DA, SA, optional clear VLAN tags, User Data)
    /// *out of place*: the protected frame is written to the start of `out` and its range
    /// there returned; `head` and `body` are only read. Verdicts, PNs, counters and the
    /// octets produced are exactly those of [`Transmitter::protect`] on the same frame
    /// (the tests hold the two to that).
    ///
    /// This is the forwarder's one pass per frame: the frame is read from a receive
    /// buffer and its protected form written into a transmit buffer by the cipher
    /// itself, with no copy in between. The frame comes in two parts so that a caller
    /// can change its first octets without copying the rest: a re-inserted VLAN tag, a
    /// completed checksum, the rebuilt headers of a segment. `head` holds at least DA and
    /// SA for the one-pass path; `out` needs room for the frame, the SecTAG and the ICV
    /// (32 octets more than the frame), or the frame is dropped as OutPktsMalformed. Frames
    /// with clear VLAN tags (`vlan_in_clear`) are assembled in `out` and protected there.
    #[inline(always)]
    pub fn protect_into(
        &mut self,
        head: &[u8],
        body: &[u8],
        out: &mut [u8],
    ) -> Result<Range<usize>, TxDrop> {
        let len = head.len() + body.len();
        if self.protect_frames
            && self.vlan_in_clear == 0
            && head.len() >= ADDRS_LEN
            && len >= HEADER_LEN
        {
            self.protect_at(Split { head, body, out }, 0, ADDRS_LEN)
        } else {
            self.protect_into_other(head, body, out)
        }
    }

    /// [`Transmitter::protect_into`] for everything but the one-pass case: the frame is
    /// assembled in `out` (with room for the SecTAG in front) and protected in place.
    #[inline(never)]
    fn protect_into_other(
        &mut self,
        head: &[u8],
        body: &[u8],
        out: &mut [u8],
    ) -> Result<Range<usize>, TxDrop> {
        let len = head.len() + body.len();
        if out.len() < len {
            self.secy.out_pkts_malformed += 1;
            return Err(TxDrop::Malformed);
        }
        let at = if out.len() >= SECTAG_SCI_LEN + len + ICV_LEN {
            SECTAG_SCI_LEN
        } else {
            0
        };
        out[at..at + head.len()].copy_from_slice(head);
        out[at + head.len()..at + len].copy_from_slice(body);
        self.protect(out, at..at + len)
    }

    /// [`Transmitter::protect`] on a [`super::FrameBuf`].
    pub fn protect_buf(&mut self, f: &mut super::FrameBuf) -> Result<(), TxDrop> {
        let (buf, r) = f.parts();
        let out = self.protect(buf, r)?;
        f.set_range(out);
        Ok(())
    }
}

/// The constant part of the SecTAGs a [`Transmitter`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct TagShape {
    /// TCI bits ES, SC, SCB, E and C (the AN is added per frame).
    tci: u8,
    /// SecTAG length with the EtherType: 8, or 16 with the SCI.
    tag_len: usize,
    /// Confidentiality offset in octets; `None` for integrity only.
    offset: Option<usize>,
}

/// Where the protected frame goes, as [`Transmitter::protect_at`] works it out.
struct TxLayout {
    /// Start of the protected frame in the output.
    ns: usize,
    /// Offset of the EtherType (and so of the SecTAG) from the frame start.
    et_off: usize,
    /// Clear VLAN tags between SA and SecTAG (not covered by the ICV).
    ntags: usize,
    /// SecTAG length: 8 or 16.
    tag_len: usize,
    /// Octets of User Data sent in clear (the confidentiality offset, or all of it for
    /// integrity only): part of the AAD.
    clear: usize,
    /// Length of the protected frame.
    out_len: usize,
}

/// How [`Transmitter::protect_at`] reads a frame and writes its protected form: in place
/// in one buffer, or from a source into a separate output.
trait TxIo {
    /// Length of the frame to protect.
    fn len(&self) -> usize;
    /// The frame's source address.
    fn src_mac(&self) -> &[u8];
    /// Where the protected frame of `out_len` octets can start, or `None` if there is
    /// no room for it.
    fn room(&self, tag_len: usize, out_len: usize) -> Option<usize>;
    /// Writes the protected frame: header, SecTAG (`tag[..tag_len]`), clear and
    /// encrypted User Data, ICV.
    fn seal(
        &mut self,
        l: &TxLayout,
        tag: &[u8; SECTAG_SCI_LEN],
        key: &AeadKey,
        iv: &[u8; 12],
    ) -> Result<(), crate::crypto::SealError>;
}

/// The frame in `buf[start..end]`, protected in place.
struct InPlace<'a> {
    buf: &'a mut [u8],
    start: usize,
    end: usize,
}

impl TxIo for InPlace<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.end - self.start
    }

    #[inline(always)]
    fn src_mac(&self) -> &[u8] {
        &self.buf[self.start + 6..self.start + 12]
    }

    /// Room for the SecTAG: DA/SA (and clear tags) move into the headroom, or if there
    /// is none, the User Data into the tailroom.
    #[inline(always)]
    fn room(&self, tag_len: usize, out_len: usize) -> Option<usize> {
        let (start, end) = (self.start, self.end);
        if start >= tag_len && end + ICV_LEN <= self.buf.len() {
            Some(start - tag_len)
        } else if start + out_len <= self.buf.len() {
            Some(start)
        } else {
            None
        }
    }

    #[inline(always)]
    fn seal(
        &mut self,
        l: &TxLayout,
        tag: &[u8; SECTAG_SCI_LEN],
        key: &AeadKey,
        iv: &[u8; 12],
    ) -> Result<(), crate::crypto::SealError> {
        let (buf, start, end) = (&mut *self.buf, self.start, self.end);
        let (ns, et_off, tag_len) = (l.ns, l.et_off, l.tag_len);
        if ns < start {
            move_header(buf, start, ns, et_off);
        } else {
            buf.copy_within(start + et_off..end, start + et_off + tag_len);
        }
        let tag_off = ns + et_off;
        if tag_len == SECTAG_SCI_LEN {
            buf[tag_off..tag_off + SECTAG_SCI_LEN].copy_from_slice(tag);
        } else {
            buf[tag_off..tag_off + SECTAG_LEN].copy_from_slice(&tag[..SECTAG_LEN]);
        }
        let icv_off = ns + l.out_len - ICV_LEN;
        let aad_len = ADDRS_LEN + tag_len + l.clear;
        let icv = if l.ntags == 0 {
            let (aad, rest) = buf[ns..icv_off].split_at_mut(aad_len);
            key.seal_in_place(iv, aad, rest)
        } else {
            with_contiguous_aad(buf, ns, l.ntags, icv_off, |region| {
                let (aad, rest) = region.split_at_mut(aad_len);
                key.seal_in_place(iv, aad, rest)
            })
        }?;
        buf[icv_off..icv_off + ICV_LEN].copy_from_slice(&icv);
        Ok(())
    }
}

/// The frame `head ‖ body` (DA and SA in `head`, no clear tags), protected into `out`.
struct Split<'a> {
    head: &'a [u8],
    body: &'a [u8],
    out: &'a mut [u8],
}

impl TxIo for Split<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    #[inline(always)]
    fn src_mac(&self) -> &[u8] {
        &self.head[6..12]
    }

    #[inline(always)]
    fn room(&self, _tag_len: usize, out_len: usize) -> Option<usize> {
        (out_len <= self.out.len()).then_some(0)
    }

    #[inline(always)]
    fn seal(
        &mut self,
        l: &TxLayout,
        tag: &[u8; SECTAG_SCI_LEN],
        key: &AeadKey,
        iv: &[u8; 12],
    ) -> Result<(), crate::crypto::SealError> {
        debug_assert!(l.ns == 0 && l.ntags == 0 && l.et_off == ADDRS_LEN);
        let out = &mut self.out[..l.out_len];
        let tag_len = l.tag_len;
        // DA ‖ SA ‖ SecTAG, then the clear User Data: together the AAD.
        out[..ADDRS_LEN].copy_from_slice(&self.head[..ADDRS_LEN]);
        out[ADDRS_LEN..ADDRS_LEN + tag_len].copy_from_slice(&tag[..tag_len]);
        let user = ADDRS_LEN + tag_len;
        // The User Data is head[ADDRS_LEN..] ‖ body; its first `clear` octets are copied.
        let h = &self.head[ADDRS_LEN..];
        let in_h = l.clear.min(h.len());
        let in_b = l.clear - in_h;
        out[user..user + in_h].copy_from_slice(&h[..in_h]);
        out[user + in_h..user + l.clear].copy_from_slice(&self.body[..in_b]);
        let (aad, rest) = out.split_at_mut(user + l.clear);
        key.seal_into(iv, aad, &h[in_h..], &self.body[in_b..], rest)
    }
}

/// The number of clear VLAN tags (at most `max`) and the offset of the EtherType after
/// them, for the frame in `buf[start..end]`; `None` if it is not a whole Ethernet header.
#[inline(always)]
pub(crate) fn frame_header(
    buf: &[u8],
    start: usize,
    end: usize,
    max: usize,
) -> Option<(usize, usize)> {
    if end - start < HEADER_LEN {
        return None;
    }
    if max == 0 {
        return Some((0, ADDRS_LEN));
    }
    let (n, et) = skip_vlan_tags(&buf[start..end], max)?;
    (et + 2 <= end - start).then_some((n, et))
}

/// Moves DA ‖ SA (‖ clear tags): `len` octets from `from` to `to`. The common case, 12
/// octets, is two fixed-size moves instead of a memmove call.
#[inline(always)]
pub(crate) fn move_header(buf: &mut [u8], from: usize, to: usize, len: usize) {
    if len == ADDRS_LEN {
        let mut h = [0u8; ADDRS_LEN];
        h.copy_from_slice(&buf[from..from + ADDRS_LEN]);
        buf[to..to + ADDRS_LEN].copy_from_slice(&h);
    } else {
        buf.copy_within(from..from + len, to);
    }
}

/// Runs `op` over `buf[ns + 4n .. icv_off]` arranged as DA ‖ SA ‖ SecTAG ‖ …, i.e.
/// with the `ntags` clear VLAN tags (not covered by the ICV) temporarily taken out
/// from between SA and SecTAG by moving DA ‖ SA over them; restores them afterwards.
#[inline]
pub(crate) fn with_contiguous_aad<R>(
    buf: &mut [u8],
    ns: usize,
    ntags: usize,
    icv_off: usize,
    op: impl FnOnce(&mut [u8]) -> R,
) -> R {
    if ntags == 0 {
        return op(&mut buf[ns..icv_off]);
    }
    let shift = ntags * VLAN_TAG_LEN;
    let mut saved = [0u8; 2 * VLAN_TAG_LEN];
    saved[..shift].copy_from_slice(&buf[ns + ADDRS_LEN..ns + ADDRS_LEN + shift]);
    buf.copy_within(ns..ns + ADDRS_LEN, ns + shift);
    let r = op(&mut buf[ns + shift..icv_off]);
    buf.copy_within(ns + shift..ns + shift + ADDRS_LEN, ns);
    buf[ns + ADDRS_LEN..ns + ADDRS_LEN + shift].copy_from_slice(&saved[..shift]);
    r
}

//! The two pumps of the forwarder. Each is run-to-completion on its own thread and
//! owns its half of the SecY and its ports: plain RX -> protect -> secure TX, and
//! secure RX -> validate -> plain TX. A received frame is copied once, into a transmit
//! slot with headroom, and transformed in place there. Nothing allocates per frame.

use crate::gso::{GsoError, TcpSegmenter, UdpSegmenter};
use crate::io::{Gso, RxFrame, RxPort, TxPort, TX_HEADROOM};
use macsec::secy::{Receiver, Transmitter};
use macsec::wire::ethernet::{be16, skip_vlan_tags, ADDRS_LEN, HEADER_LEN, VLAN_TAG_LEN};
use std::time::Duration;

/// Frames taken from the receive ring per wake-up, and so per transmit flush (one
/// `sendto()`): 64 keeps a batch of jumbo frames within the L2 cache; larger batches
/// gained nothing (docs/design-notes.md).
pub const BATCH: usize = 64;

/// Counters of one pump that are not 802.1AE counters (those live in the SecY).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PumpCounters {
    /// Frames taken from the receive port.
    pub frames_in: u64,
    /// Frames handed to the transmit port (after protection or validation).
    pub frames_out: u64,
    /// Frames the SecY did not pass (see its counters for the reason).
    pub secy_dropped: u64,
    /// Frames lost because the transmit ring stayed full.
    pub tx_ring_full: u64,
    /// Transmit errors reported by the kernel.
    pub tx_errors: u64,
    /// Frames the receive ring could only capture in part.
    pub truncated: u64,
    /// Frames too large for the outgoing port that could not be segmented.
    pub oversize: u64,
    /// Frames whose transport checksum was left to offload and was completed here.
    pub csum_completed: u64,
    /// Of those, frames whose checksum could not be completed (sent as they were).
    pub csum_failed: u64,
    /// TCP and UDP super-frames (GSO) received and cut into MTU-sized segments (UDP: at
    /// the sender's datagram boundaries).
    pub gso_frames: u64,
    /// Segments produced from them.
    pub gso_segments: u64,
    /// EAPOL/MKPDU frames seen on the secure port (left to the KaY's own socket).
    pub eapol: u64,
    /// Frames the kernel dropped before this pump could read them (ring full).
    pub kernel_drops: u64,
    /// Times the receive port went down (forwarding resumes when it is back up).
    pub link_down: u64,
}

/// Copies `f` into `slot` at `at`, putting back an 802.1Q tag the kernel stripped.
/// Returns the frame's length.
fn place(f: &RxFrame<'_>, slot: &mut [u8], at: usize) -> Option<usize> {
    let d = f.data;
    match f.vlan_tci {
        None => {
            let out = slot.get_mut(at..at + d.len())?;
            out.copy_from_slice(d);
            Some(d.len())
        }
        Some(tci) => {
            if d.len() < ADDRS_LEN {
                return None;
            }
            let n = d.len() + VLAN_TAG_LEN;
            let out = slot.get_mut(at..at + n)?;
            out[..ADDRS_LEN].copy_from_slice(&d[..ADDRS_LEN]);
            out[ADDRS_LEN..ADDRS_LEN + 2].copy_from_slice(&f.vlan_tpid.to_be_bytes());
            out[ADDRS_LEN + 2..ADDRS_LEN + 4].copy_from_slice(&tci.to_be_bytes());
            out[ADDRS_LEN + 4..].copy_from_slice(&d[ADDRS_LEN..]);
            Some(n)
        }
    }
}

/// A TCP or UDP super-frame being cut into frames that fit the MTU.
enum Segmenter<'a> {
    Tcp(TcpSegmenter<'a>),
    Udp(UdpSegmenter<'a>),
}

impl Segmenter<'_> {
    fn is_done(&self) -> bool {
        match self {
            Segmenter::Tcp(s) => s.is_done(),
            Segmenter::Udp(s) => s.is_done(),
        }
    }

    fn next_into(&mut self, out: &mut [u8]) -> Result<Option<usize>, GsoError> {
        match self {
            Segmenter::Tcp(s) => s.next_into(out),
            Segmenter::Udp(s) => s.next_into(out),
        }
    }
}

/// Length of the frame's IP packet (after DA/SA, tags and EtherType).
fn l3_len(frame: &[u8]) -> usize {
    match skip_vlan_tags(frame, 2) {
        Some((_, et)) => frame.len().saturating_sub(et + 2),
        None => 0,
    }
}

/// The plain -> secure pump.
pub struct ProtectPump<R: RxPort, T: TxPort> {
    /// Plain port, receive side.
    pub rx: R,
    /// Secure port, transmit side.
    pub tx: T,
    /// The SecY's transmit half.
    pub secy: Transmitter,
    /// Pump counters.
    pub counters: PumpCounters,
    /// The plain port's MTU: larger IP packets are TCP super-frames to segment.
    pub plain_mtu: usize,
    /// Frame with a re-inserted VLAN tag, for the segmenter (reused).
    scratch: Vec<u8>,
}

impl<R: RxPort, T: TxPort> ProtectPump<R, T> {
    /// A pump between `rx` (plain) and `tx` (secure).
    pub fn new(rx: R, tx: T, secy: Transmitter, plain_mtu: usize) -> Self {
        ProtectPump {
            rx,
            tx,
            secy,
            counters: PumpCounters::default(),
            plain_mtu,
            scratch: Vec::with_capacity(1 << 17),
        }
    }

    /// Takes up to [`BATCH`] frames (waiting at most `timeout`), protects and sends
    /// them, and flushes the transmit port. Returns the number of frames received.
    pub fn run_batch(&mut self, timeout: Duration) -> std::io::Result<usize> {
        let Self {
            rx,
            tx,
            secy,
            counters: c,
            plain_mtu,
            scratch,
        } = self;
        let mtu = *plain_mtu;
        let n = rx.recv_batch(BATCH, timeout, &mut |f: RxFrame<'_>| {
            c.frames_in += 1;
            if f.truncated {
                c.truncated += 1;
                return;
            }
            let len = f.data.len()
                + if f.vlan_tci.is_some() {
                    VLAN_TAG_LEN
                } else {
                    0
                };
            // A super-frame from a sender with TSO/GSO is cut, then each piece is
            // protected. With the kernel's GSO metadata it is cut where the sender
            // asked, even if it would fit the MTU whole: UDP at the datagram size
            // (sent whole it would be one datagram with the payload of several), TCP
            // at the sender's MSS (which path MTU or MSS clamping may have made
            // smaller than the MTU allows). Without it, TCP is cut at the MTU.
            let (udp_seg, tcp_mss) = match f.gso {
                Some(Gso::Udp { size }) => (Some(size as usize), 0),
                Some(Gso::Tcp { size }) => (None, size as usize),
                _ => (None, 0),
            };
            let cut = udp_seg.is_some() || tcp_mss > 0 || l3_len(f.data) > mtu;
            if cut && len > HEADER_LEN {
                scratch.clear();
                scratch.resize(len, 0);
                if place(&f, scratch, 0).is_none() {
                    c.oversize += 1;
                    return;
                }
                let seg = match udp_seg {
                    Some(size) => UdpSegmenter::new(scratch, size, mtu).map(Segmenter::Udp),
                    None => {
                        TcpSegmenter::new(scratch, mtu).map(|t| Segmenter::Tcp(t.with_mss(tcp_mss)))
                    }
                };
                let Ok(seg) = seg else {
                    c.oversize += 1;
                    return;
                };
                send_segments(tx, c, secy, seg);
                return;
            }
            let csum = f.csum_not_ready;
            let mut csum_ok = true;
            let sent = send(tx, c, &mut |slot| {
                let n = place(&f, slot, TX_HEADROOM)?;
                if csum {
                    csum_ok =
                        crate::csum::complete(&mut slot[TX_HEADROOM..TX_HEADROOM + n]).is_ok();
                }
                protect(secy, slot, n)
            });
            if csum && sent {
                c.csum_completed += 1;
                if !csum_ok {
                    c.csum_failed += 1;
                }
            }
        })?;
        if let Err(e) = tx.flush() {
            c.tx_errors += 1;
            tracing::debug!("secure port flush: {e}");
        }
        Ok(n)
    }
}

/// Protects and sends every piece of a super-frame being cut; a piece that cannot be cut
/// ends it and is counted as oversize.
fn send_segments(
    tx: &mut dyn TxPort,
    c: &mut PumpCounters,
    secy: &mut Transmitter,
    mut seg: Segmenter<'_>,
) {
    c.gso_frames += 1;
    while !seg.is_done() {
        let mut failed = false;
        let sent = send(
            tx,
            c,
            &mut |slot| match seg.next_into(&mut slot[TX_HEADROOM..]) {
                Ok(Some(n)) => protect(secy, slot, n),
                _ => {
                    failed = true;
                    None
                }
            },
        );
        if failed {
            // Counted as secy_dropped by send(); it is a segmentation failure.
            c.secy_dropped -= 1;
            c.oversize += 1;
            break;
        }
        if !sent {
            break;
        }
        c.gso_segments += 1;
    }
}

fn protect(secy: &mut Transmitter, slot: &mut [u8], n: usize) -> Option<std::ops::Range<usize>> {
    secy.protect(slot, TX_HEADROOM..TX_HEADROOM + n).ok()
}

/// Offers one frame to `tx`; if the ring is full, flushes and tries once more. Counts
/// the outcome. Returns whether a slot was available.
fn send(
    tx: &mut dyn TxPort,
    c: &mut PumpCounters,
    fill: &mut dyn FnMut(&mut [u8]) -> Option<std::ops::Range<usize>>,
) -> bool {
    let mut wrote = false;
    let mut f = |slot: &mut [u8]| {
        let r = fill(slot);
        wrote = r.is_some();
        r
    };
    let mut got = tx.send_with(&mut f);
    if matches!(got, Ok(false)) {
        let _ = tx.flush();
        got = tx.send_with(&mut f);
    }
    match got {
        Ok(true) => {
            if wrote {
                c.frames_out += 1;
            } else {
                c.secy_dropped += 1;
            }
            true
        }
        Ok(false) => {
            c.tx_ring_full += 1;
            false
        }
        Err(_) => {
            c.tx_errors += 1;
            false
        }
    }
}

/// The secure -> plain pump.
pub struct ValidatePump<R: RxPort, T: TxPort> {
    /// Secure port, receive side.
    pub rx: R,
    /// Plain port, transmit side.
    pub tx: T,
    /// The SecY's receive half.
    pub secy: Receiver,
    /// Pump counters.
    pub counters: PumpCounters,
    /// Largest frame the plain port can send (MTU + Ethernet header + 2 tags).
    pub plain_max_frame: usize,
    /// EtherType of MKPDUs (0x888E unless configured otherwise).
    pub eapol_ethertype: u16,
    /// 802.1Q tags kept in clear before the SecTAG.
    pub vlan_in_clear: usize,
}

impl<R: RxPort, T: TxPort> ValidatePump<R, T> {
    /// A pump between `rx` (secure) and `tx` (plain).
    pub fn new(rx: R, tx: T, secy: Receiver, plain_mtu: usize, vlan_in_clear: usize) -> Self {
        ValidatePump {
            rx,
            tx,
            secy,
            counters: PumpCounters::default(),
            plain_max_frame: plain_mtu + HEADER_LEN + 2 * VLAN_TAG_LEN,
            eapol_ethertype: macsec::wire::ethernet::ethertype::EAPOL,
            vlan_in_clear,
        }
    }

    /// Takes up to [`BATCH`] frames (waiting at most `timeout`), validates them, sends
    /// the delivered ones, and flushes. Returns the number of frames received.
    pub fn run_batch(&mut self, timeout: Duration) -> std::io::Result<usize> {
        let Self {
            rx,
            tx,
            secy,
            counters: c,
            plain_max_frame,
            eapol_ethertype,
            vlan_in_clear,
        } = self;
        let (max, eapol, tags) = (*plain_max_frame, *eapol_ethertype, *vlan_in_clear);
        let n = rx.recv_batch(BATCH, timeout, &mut |f: RxFrame<'_>| {
            c.frames_in += 1;
            if f.truncated {
                c.truncated += 1;
                return;
            }
            // MKPDUs belong to the KaY (802.1X clause 11), which has its own socket;
            // also those on a VLAN (`[mka] vlan`, or another CA's), whose outer tag the
            // kernel has already taken off into `vlan_tci`. None is ever forwarded.
            if let Some((_, et)) = skip_vlan_tags(f.data, tags) {
                if be16(f.data, et) == Some(eapol) {
                    c.eapol += 1;
                    return;
                }
            }
            let mut too_big = false;
            send(tx, c, &mut |slot| {
                let n = place(&f, slot, TX_HEADROOM)?;
                let (_, out) = secy.validate(slot, TX_HEADROOM..TX_HEADROOM + n);
                let out = out?;
                if out.len() > max {
                    too_big = true;
                    return None;
                }
                Some(out)
            });
            if too_big {
                c.oversize += 1;
                c.secy_dropped -= 1;
            }
        })?;
        if let Err(e) = tx.flush() {
            c.tx_errors += 1;
            tracing::debug!("plain port flush: {e}");
        }
        Ok(n)
    }
}

//! The two pumps of the forwarder: plain RX -> protect -> a secure link's TX, and every
//! secure link's RX -> validate -> plain TX. Each is run-to-completion and owns its
//! ports and its halves of the links' SecYs (one SecY per secure link). Nothing
//! allocates per frame.
//!
//! The protect pump sends each frame on the link a [`Path`] picks (the selector's
//! decision, updated by the control thread), and sends the link monitor's probes,
//! protected like any frame. The validate pump hands validated probes to the monitor
//! instead of the plain port.
//!
//! One pass per frame: the SecY reads the frame in the receive slot and writes its
//! protected (or validated) form into a transmit slot, inside the AES-GCM pass
//! ([`macsec::secy::Transmitter::protect_into`], [`macsec::secy::Receiver::validate_into`]).
//! What changes at the front of a frame (a VLAN tag the kernel stripped, a checksum left
//! for offload, a segment's rebuilt headers) is built in a small buffer on the stack and
//! handed over as the frame's head, the rest is read where it lies. The ports are generic
//! and their callbacks typed ([`crate::io::RxPort::recv_each`],
//! [`crate::io::TxPort::send_slot`]), so nothing per frame is called through a pointer,
//! and a full transmit ring costs the frame (counted as `tx_ring_full`), never a wait.

mod protect;
mod validate;

pub use protect::{ProtectPump, TxLink};
pub use validate::{ProbeIn, RxLink, ValidatePump};

use crate::gso::{GsoError, TcpSegmenter, UdpSegmenter};
use crate::io::{RxFrame, TxPort, TX_HEADROOM};
use macsec::wire::ethernet::{skip_vlan_tags, ADDRS_LEN, VLAN_TAG_LEN};
use macsec::wire::MacAddr;
use std::ops::Range;

/// Frames taken from the receive ring per wake-up, and so per transmit flush (one
/// `sendto()`): 64 keeps a batch of jumbo frames within the L2 cache; larger batches
/// gained nothing (docs/design-notes.md).
pub const BATCH: usize = 64;

/// EtherType of link-monitor probes (IEEE 802 local experimental 1).
pub const PROBE_ETHERTYPE: u16 = crate::monitor::probe::SUGGESTED_ETHERTYPE;
/// Destination of link-monitor probes: the nearest-bridge group address, which no
/// 802.1Q bridge forwards, so a peer that does not run the monitor (a kernel `macsec`
/// device, a router) delivers probes only to its own stack, which ignores the EtherType.
pub const PROBE_DA: MacAddr = MacAddr([0x01, 0x80, 0xC2, 0x00, 0x00, 0x0E]);
/// Most probe payload octets carried (a version 1 probe is 88).
pub const PROBE_MAX: usize = 128;

/// Counters of a pump that are not 802.1AE counters (those live in the SecYs).
/// Kept per direction and per link; [`PumpCounters::add`] sums them.
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
    /// Plain frames dropped because no secure link could carry them.
    pub no_link: u64,
    /// Link-monitor probes sent (protect) or received and validated (validate).
    pub probes: u64,
    /// Plain frames dropped because they look like link-monitor probes (the probe
    /// EtherType to the probe address): the far end would take them for probes.
    pub probe_like: u64,
}

impl PumpCounters {
    /// Adds every counter of `o` to `self`.
    pub fn add(&mut self, o: &PumpCounters) {
        let PumpCounters {
            frames_in,
            frames_out,
            secy_dropped,
            tx_ring_full,
            tx_errors,
            truncated,
            oversize,
            csum_completed,
            csum_failed,
            gso_frames,
            gso_segments,
            eapol,
            kernel_drops,
            link_down,
            no_link,
            probes,
            probe_like,
        } = o;
        self.frames_in += frames_in;
        self.frames_out += frames_out;
        self.secy_dropped += secy_dropped;
        self.tx_ring_full += tx_ring_full;
        self.tx_errors += tx_errors;
        self.truncated += truncated;
        self.oversize += oversize;
        self.csum_completed += csum_completed;
        self.csum_failed += csum_failed;
        self.gso_frames += gso_frames;
        self.gso_segments += gso_segments;
        self.eapol += eapol;
        self.kernel_drops += kernel_drops;
        self.link_down += link_down;
        self.no_link += no_link;
        self.probes += probes;
        self.probe_like += probe_like;
    }
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

    /// The next segment's headers, written to `out`, and its payload's range in the
    /// frame.
    fn next_parts(&mut self, out: &mut [u8]) -> Result<Option<(usize, Range<usize>)>, GsoError> {
        match self {
            Segmenter::Tcp(s) => s.next_parts(out),
            Segmenter::Udp(s) => s.next_parts(out),
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

/// What a fill callback did with a transmit slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filled {
    /// A frame is in the slot, to be sent.
    Frame,
    /// Nothing to send: the SecY dropped the frame (counted as `secy_dropped`).
    Dropped,
    /// Nothing to send, and the caller counted why.
    Taken,
}

/// Offers one slot of `tx` to `fill`, which returns what it did and the frame's range in
/// the slot. If the ring is full, hands the queued frames to the kernel (a flush, which
/// never waits) and tries once more; if it is still full the frame is lost and counted
/// as `tx_ring_full`, and the receive ring goes on. Counts the outcome in `c`. Returns
/// whether a slot was available.
#[inline(always)]
fn send<T: TxPort>(
    tx: &mut T,
    c: &mut PumpCounters,
    mut fill: impl FnMut(&mut [u8]) -> (Filled, Option<Range<usize>>),
) -> bool {
    let mut filled = Filled::Taken;
    let mut f = |slot: &mut [u8]| {
        let (what, r) = fill(slot);
        filled = what;
        r
    };
    let mut got = tx.send_slot(&mut f);
    if matches!(got, Ok(false)) {
        let _ = tx.flush();
        got = tx.send_slot(&mut f);
    }
    match got {
        Ok(true) => {
            match filled {
                Filled::Frame => c.frames_out += 1,
                Filled::Dropped => c.secy_dropped += 1,
                Filled::Taken => {}
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

/// Longest head a frame may have when its first octets change (a re-inserted tag and the
/// headers up to a transport checksum): DA/SA, two tags, EtherType, an IPv6 header with
/// extension headers, and a TCP header with options.
const HEAD_MAX: usize = 256;

/// A frame as the SecY takes it: `head ‖ body`, where `head` may be a modified copy of
/// the frame's first octets (in `buf`) and `body` the rest, read where it lies.
struct Parts<'a> {
    buf: [u8; HEAD_MAX],
    head_len: usize,
    body: &'a [u8],
}

impl<'a> Parts<'a> {
    /// The frame `f` with a stripped tag put back, its first `cut` octets (after the
    /// tag) copied into the head. `None` if `cut` is out of range.
    #[inline(always)]
    fn new(f: &RxFrame<'a>, cut: usize) -> Option<Parts<'a>> {
        let d = f.data;
        if cut > d.len() || cut < ADDRS_LEN {
            return None;
        }
        let mut buf = [0u8; HEAD_MAX];
        let head_len = match f.vlan_tci {
            None => {
                buf.get_mut(..cut)?.copy_from_slice(&d[..cut]);
                cut
            }
            Some(tci) => {
                let n = cut + VLAN_TAG_LEN;
                let h = buf.get_mut(..n)?;
                h[..ADDRS_LEN].copy_from_slice(&d[..ADDRS_LEN]);
                h[ADDRS_LEN..ADDRS_LEN + 2].copy_from_slice(&f.vlan_tpid.to_be_bytes());
                h[ADDRS_LEN + 2..ADDRS_LEN + 4].copy_from_slice(&tci.to_be_bytes());
                h[ADDRS_LEN + 4..].copy_from_slice(&d[ADDRS_LEN..cut]);
                n
            }
        };
        Some(Parts {
            buf,
            head_len,
            body: &d[cut..],
        })
    }

    fn head(&self) -> &[u8] {
        &self.buf[..self.head_len]
    }

    fn head_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.head_len]
    }
}

/// Shifts a range in `slot[TX_HEADROOM..]` to the whole slot.
#[inline(always)]
fn in_slot(r: Range<usize>) -> Range<usize> {
    r.start + TX_HEADROOM..r.end + TX_HEADROOM
}

/// Whether a whole, untagged frame is addressed as a link-monitor probe: DA and
/// EtherType. (Probes are never tagged; a tagged frame carries 0x8100 there.)
fn is_probe_frame(frame: &[u8]) -> bool {
    frame.get(..6) == Some(&PROBE_DA.0[..])
        && frame.get(12..14) == Some(&PROBE_ETHERTYPE.to_be_bytes()[..])
}

//! The plain -> secure pump: protects every plain frame with the SecY of the link the
//! path picks, and sends the link monitor's probes.

use super::{
    in_slot, is_probe_frame, l3_len, place, send, Filled, Parts, PumpCounters, Segmenter, BATCH,
    HEAD_MAX, PROBE_DA, PROBE_ETHERTYPE, PROBE_MAX,
};
use crate::gso::{TcpSegmenter, UdpSegmenter};
use crate::io::{Gso, RxFrame, RxPort, TxPort, TX_HEADROOM};
use crate::monitor::select::Path;
use macsec::secy::Transmitter;
use macsec::wire::ethernet::{ADDRS_LEN, HEADER_LEN, VLAN_TAG_LEN};
use macsec::wire::MacAddr;
use std::ops::Range;
use std::time::Duration;

/// Size of the buffer a tagged super-frame is put together in: an IP packet of up to
/// 64 KiB, its Ethernet header and two tags, rounded up.
const SCRATCH_LEN: usize = 65_536 + 512;

/// One secure link's transmit side: its port, its SecY's transmit half, its counters.
pub struct TxLink<T: TxPort> {
    port: T,
    secy: Transmitter,
    counters: PumpCounters,
    /// Source address of the probes sent on this link (the port's MAC).
    mac: MacAddr,
    /// Frames queued since the last flush.
    queued: bool,
}

impl<T: TxPort> TxLink<T> {
    /// The link's port.
    pub fn port(&self) -> &T {
        &self.port
    }

    /// The link's port, to replace or reconfigure it.
    pub fn port_mut(&mut self) -> &mut T {
        &mut self.port
    }

    /// The link's SecY transmit half.
    pub fn secy(&self) -> &Transmitter {
        &self.secy
    }

    /// The link's SecY transmit half, for the KaY's and the PN store's changes.
    pub fn secy_mut(&mut self) -> &mut Transmitter {
        &mut self.secy
    }

    /// Frames sent on this link and what went wrong sending them.
    pub fn counters(&self) -> &PumpCounters {
        &self.counters
    }
}

/// The plain -> secure pump.
pub struct ProtectPump<R: RxPort, T: TxPort> {
    rx: R,
    links: Vec<TxLink<T>>,
    path: Path,
    /// Plain-side counters (frames in, segmentation, checksums, frames with no link).
    counters: PumpCounters,
    /// The plain port's MTU: larger IP packets are TCP super-frames to segment.
    plain_mtu: usize,
    /// A super-frame with a re-inserted VLAN tag, for the segmenter (allocated once at
    /// its full size; frames without a stripped tag are cut where they lie).
    scratch: Vec<u8>,
}

impl<R: RxPort, T: TxPort> ProtectPump<R, T> {
    /// A pump reading the plain port `rx`, with no link yet (see [`add_link`](Self::add_link)).
    pub fn new(rx: R, plain_mtu: usize) -> Self {
        ProtectPump {
            rx,
            links: Vec::new(),
            path: Path::NONE,
            counters: PumpCounters::default(),
            plain_mtu,
            scratch: vec![0; SCRATCH_LEN],
        }
    }

    /// A pump from `rx` (plain) to one secure link `tx`, which carries every frame.
    pub fn single(rx: R, tx: T, secy: Transmitter, plain_mtu: usize) -> Self {
        let mut p = ProtectPump::new(rx, plain_mtu);
        p.add_link(tx, secy, MacAddr::default());
        p.set_path(Path::single(0));
        p
    }

    /// Adds a secure link (its transmit port, its SecY's transmit half and the MAC its
    /// probes come from); returns its index. It carries frames once the path picks it.
    pub fn add_link(&mut self, port: T, secy: Transmitter, mac: MacAddr) -> usize {
        self.links.push(TxLink {
            port,
            secy,
            counters: PumpCounters::default(),
            mac,
            queued: false,
        });
        self.links.len() - 1
    }

    /// Sets the links frames leave on (the selector's decision).
    pub fn set_path(&mut self, path: Path) {
        self.path = path;
    }

    /// The links frames leave on.
    pub fn path(&self) -> Path {
        self.path
    }

    /// The plain port.
    pub fn rx(&self) -> &R {
        &self.rx
    }

    /// The plain port, to replace or reconfigure it.
    pub fn rx_mut(&mut self) -> &mut R {
        &mut self.rx
    }

    /// Link `i`.
    pub fn link(&self, i: usize) -> Option<&TxLink<T>> {
        self.links.get(i)
    }

    /// Link `i`, to change its SecY or port.
    pub fn link_mut(&mut self, i: usize) -> Option<&mut TxLink<T>> {
        self.links.get_mut(i)
    }

    /// The links.
    pub fn links(&self) -> &[TxLink<T>] {
        &self.links
    }

    /// The plain-side counters.
    pub fn plain_counters(&self) -> &PumpCounters {
        &self.counters
    }

    /// The plain-side counters, for counts the owner adds (kernel drops, link down).
    pub fn plain_counters_mut(&mut self) -> &mut PumpCounters {
        &mut self.counters
    }

    /// Every counter of this direction, summed over the plain side and the links.
    pub fn counters(&self) -> PumpCounters {
        let mut c = self.counters;
        for l in &self.links {
            c.add(&l.counters);
        }
        c
    }

    /// Protects and sends a link-monitor probe with `payload` on link `i` (queued until
    /// the next flush). Returns whether it was queued.
    pub fn send_probe(&mut self, i: usize, payload: &[u8]) -> bool {
        let Some(link) = self.links.get_mut(i) else {
            return false;
        };
        if payload.len() > PROBE_MAX {
            return false;
        }
        let (mac, secy) = (link.mac, &mut link.secy);
        let mut ok = false;
        send(&mut link.port, &mut link.counters, |slot| {
            let n = HEADER_LEN + payload.len();
            let Some(f) = slot.get_mut(TX_HEADROOM..TX_HEADROOM + n) else {
                return (Filled::Taken, None);
            };
            f[..6].copy_from_slice(&PROBE_DA.0);
            f[6..12].copy_from_slice(&mac.0);
            f[12..14].copy_from_slice(&PROBE_ETHERTYPE.to_be_bytes());
            f[14..].copy_from_slice(payload);
            match protect(secy, slot, n) {
                Some(r) => {
                    ok = true;
                    (Filled::Frame, Some(r))
                }
                None => (Filled::Dropped, None),
            }
        });
        if ok {
            link.counters.probes += 1;
            // A probe is not a frame from the plain side.
            link.counters.frames_out -= 1;
            link.queued = true;
        }
        ok
    }

    /// Whether a link has frames queued that the kernel could not take yet (see
    /// [`TxPort::backlog`]): the owner should flush again soon.
    pub fn backlog(&self) -> bool {
        self.links.iter().any(|l| l.port.backlog())
    }

    /// Pushes every link's queued frames to the kernel (never waits).
    pub fn flush(&mut self) {
        for l in &mut self.links {
            if l.queued || l.port.backlog() {
                l.queued = false;
                if let Err(e) = l.port.flush() {
                    l.counters.tx_errors += 1;
                    tracing::debug!("secure port flush: {e}");
                }
            }
        }
    }

    /// Takes up to [`BATCH`] frames (waiting at most `timeout`), protects each with the
    /// SecY of the link the path picks and sends it there, and flushes. Returns the
    /// number of frames received.
    pub fn run_batch(&mut self, timeout: Duration) -> std::io::Result<usize> {
        let Self {
            rx,
            links,
            path,
            counters: c,
            plain_mtu,
            scratch,
        } = self;
        let mtu = *plain_mtu;
        let n = rx.recv_each(BATCH, timeout, |f: RxFrame<'_>| {
            c.frames_in += 1;
            if f.truncated {
                c.truncated += 1;
                return;
            }
            if f.vlan_tci.is_none() && is_probe_frame(f.data) {
                c.probe_like += 1;
                return;
            }
            let Some(link) = path.pick_frame(f.data).and_then(|i| links.get_mut(i)) else {
                c.no_link += 1;
                return;
            };
            link.queued = true;
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
                // Cut where it lies; only a frame whose tag the kernel stripped is put
                // together first (in a buffer allocated once, never cleared).
                let frame: &[u8] = if f.vlan_tci.is_none() {
                    f.data
                } else {
                    match place(&f, scratch, 0) {
                        Some(n) => &scratch[..n],
                        None => {
                            c.oversize += 1;
                            return;
                        }
                    }
                };
                let seg = match udp_seg {
                    Some(size) => UdpSegmenter::new(frame, size, mtu).map(Segmenter::Udp),
                    None => {
                        TcpSegmenter::new(frame, mtu).map(|t| Segmenter::Tcp(t.with_mss(tcp_mss)))
                    }
                };
                let Ok(seg) = seg else {
                    c.oversize += 1;
                    return;
                };
                send_segments(link, c, seg, frame);
                return;
            }
            // The frame's head: DA/SA with a stripped tag put back, and up to the
            // transport checksum if it was left for offload (completed here, from the
            // frame where it lies). The rest is protected from the receive slot.
            let mut csum_failed = false;
            let parts = if f.csum_not_ready {
                match crate::csum::completed(f.data) {
                    Ok((field, value, _)) => Parts::new(&f, field + 2).map(|mut p| {
                        let h = p.head_mut();
                        let at = h.len() - 2;
                        h[at..].copy_from_slice(&value);
                        p
                    }),
                    Err(_) => {
                        csum_failed = true;
                        Parts::new(&f, ADDRS_LEN)
                    }
                }
            } else {
                Parts::new(&f, ADDRS_LEN)
            };
            let secy = &mut link.secy;
            let sent = match &parts {
                Some(p) => send(&mut link.port, &mut link.counters, |slot| {
                    match secy.protect_into(p.head(), p.body, &mut slot[TX_HEADROOM..]) {
                        Ok(r) => (Filled::Frame, Some(in_slot(r))),
                        Err(_) => (Filled::Dropped, None),
                    }
                }),
                // A head longer than the stack buffer (long IPv6 extension chains) or a
                // frame shorter than DA/SA: the frame is copied into the slot and
                // protected there.
                None => send(&mut link.port, &mut link.counters, |slot| {
                    let Some(n) = place(&f, slot, TX_HEADROOM) else {
                        return (Filled::Dropped, None);
                    };
                    if f.csum_not_ready {
                        csum_failed =
                            crate::csum::complete(&mut slot[TX_HEADROOM..TX_HEADROOM + n]).is_err();
                    }
                    match protect(secy, slot, n) {
                        Some(r) => (Filled::Frame, Some(r)),
                        None => (Filled::Dropped, None),
                    }
                }),
            };
            if f.csum_not_ready && sent {
                c.csum_completed += 1;
                if csum_failed {
                    c.csum_failed += 1;
                }
            }
        })?;
        self.flush();
        Ok(n)
    }
}

/// Protects and sends every piece of a super-frame being cut (`frame`); a piece that
/// cannot be cut ends it and is counted as oversize. Each segment's headers are built
/// on the stack and its payload protected from where it lies in `frame`.
fn send_segments<T: TxPort>(
    link: &mut TxLink<T>,
    c: &mut PumpCounters,
    mut seg: Segmenter<'_>,
    frame: &[u8],
) {
    c.gso_frames += 1;
    let secy = &mut link.secy;
    let mut hdr = [0u8; HEAD_MAX];
    while !seg.is_done() {
        let (h, payload) = match seg.next_parts(&mut hdr) {
            Ok(Some(p)) => p,
            _ => {
                c.oversize += 1;
                break;
            }
        };
        let (head, body) = (&hdr[..h], &frame[payload]);
        let sent = send(&mut link.port, &mut link.counters, |slot| {
            match secy.protect_into(head, body, &mut slot[TX_HEADROOM..]) {
                Ok(r) => (Filled::Frame, Some(in_slot(r))),
                Err(_) => (Filled::Dropped, None),
            }
        });
        if !sent {
            break;
        }
        c.gso_segments += 1;
    }
}

fn protect(secy: &mut Transmitter, slot: &mut [u8], n: usize) -> Option<Range<usize>> {
    secy.protect(slot, TX_HEADROOM..TX_HEADROOM + n).ok()
}

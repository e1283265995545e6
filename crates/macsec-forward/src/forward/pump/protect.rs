//! The plain -> secure pump: protects every plain frame with the SecY of the link the
//! path picks, and sends the link monitor's probes.

use super::{
    is_probe_frame, l3_len, place, send, Filled, PumpCounters, Segmenter, BATCH, PROBE_DA,
    PROBE_ETHERTYPE, PROBE_MAX,
};
use crate::gso::{TcpSegmenter, UdpSegmenter};
use crate::io::{Gso, RxFrame, RxPort, TxPort, TX_HEADROOM};
use crate::monitor::select::Path;
use macsec::secy::Transmitter;
use macsec::wire::ethernet::{HEADER_LEN, VLAN_TAG_LEN};
use macsec::wire::MacAddr;
use std::ops::Range;
use std::time::Duration;

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
    /// Frame with a re-inserted VLAN tag, for the segmenter (reused).
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
            scratch: Vec::with_capacity(1 << 17),
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
        send(&mut link.port, &mut link.counters, &mut |slot| {
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

    /// Pushes every link's queued frames to the kernel.
    pub fn flush(&mut self) {
        for l in &mut self.links {
            if l.queued {
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
        let n = rx.recv_batch(BATCH, timeout, &mut |f: RxFrame<'_>| {
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
                send_segments(link, c, seg);
                return;
            }
            let csum = f.csum_not_ready;
            let mut csum_ok = true;
            let secy = &mut link.secy;
            let sent = send(&mut link.port, &mut link.counters, &mut |slot| {
                let Some(n) = place(&f, slot, TX_HEADROOM) else {
                    return (Filled::Dropped, None);
                };
                if csum {
                    csum_ok =
                        crate::csum::complete(&mut slot[TX_HEADROOM..TX_HEADROOM + n]).is_ok();
                }
                match protect(secy, slot, n) {
                    Some(r) => (Filled::Frame, Some(r)),
                    None => (Filled::Dropped, None),
                }
            });
            if csum && sent {
                c.csum_completed += 1;
                if !csum_ok {
                    c.csum_failed += 1;
                }
            }
        })?;
        self.flush();
        Ok(n)
    }
}

/// Protects and sends every piece of a super-frame being cut; a piece that cannot be cut
/// ends it and is counted as oversize.
fn send_segments<T: TxPort>(link: &mut TxLink<T>, c: &mut PumpCounters, mut seg: Segmenter<'_>) {
    c.gso_frames += 1;
    let secy = &mut link.secy;
    while !seg.is_done() {
        let mut failed = false;
        let sent = send(&mut link.port, &mut link.counters, &mut |slot| match seg
            .next_into(&mut slot[TX_HEADROOM..])
        {
            Ok(Some(n)) => match protect(secy, slot, n) {
                Some(r) => (Filled::Frame, Some(r)),
                None => (Filled::Dropped, None),
            },
            _ => {
                failed = true;
                (Filled::Taken, None)
            }
        });
        if failed {
            c.oversize += 1;
            break;
        }
        if !sent {
            break;
        }
        c.gso_segments += 1;
    }
}

fn protect(secy: &mut Transmitter, slot: &mut [u8], n: usize) -> Option<Range<usize>> {
    secy.protect(slot, TX_HEADROOM..TX_HEADROOM + n).ok()
}

//! The secure -> plain pump: validates the frames of every secure link with that link's
//! SecY and delivers them to the plain port; validated probes go to the link monitor.

use super::{in_slot, is_probe_frame, place, send, Filled, PumpCounters, BATCH, PROBE_MAX};
use crate::io::{RxFrame, RxPort, TxPort, TX_HEADROOM};
use macsec::secy::Receiver;
use macsec::wire::ethernet::{be16, skip_vlan_tags, HEADER_LEN, VLAN_TAG_LEN};
use std::time::{Duration, Instant};

/// A validated link-monitor probe, for the control thread.
#[derive(Clone, Copy)]
pub struct ProbeIn {
    /// The link it arrived on.
    pub link: usize,
    /// When it was validated.
    pub at: Instant,
    len: usize,
    payload: [u8; PROBE_MAX],
}

impl ProbeIn {
    /// The probe payload (after the EtherType).
    pub fn payload(&self) -> &[u8] {
        &self.payload[..self.len]
    }
}

impl std::fmt::Debug for ProbeIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeIn")
            .field("link", &self.link)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// One secure link's receive side: its port, its SecY's receive half, its counters.
pub struct RxLink<R: RxPort> {
    port: R,
    secy: Receiver,
    counters: PumpCounters,
}

impl<R: RxPort> RxLink<R> {
    /// The link's port.
    pub fn port(&self) -> &R {
        &self.port
    }

    /// The link's port, to replace or reconfigure it.
    pub fn port_mut(&mut self) -> &mut R {
        &mut self.port
    }

    /// The link's SecY receive half.
    pub fn secy(&self) -> &Receiver {
        &self.secy
    }

    /// The link's SecY receive half, for the KaY's changes.
    pub fn secy_mut(&mut self) -> &mut Receiver {
        &mut self.secy
    }

    /// Frames received on this link and what became of them.
    pub fn counters(&self) -> &PumpCounters {
        &self.counters
    }

    /// The counters, for counts the owner adds (kernel drops, link down).
    pub fn counters_mut(&mut self) -> &mut PumpCounters {
        &mut self.counters
    }
}

/// The secure -> plain pump.
pub struct ValidatePump<R: RxPort, T: TxPort> {
    links: Vec<RxLink<R>>,
    tx: T,
    /// Plain-side counters (frames delivered, ring full, oversize).
    counters: PumpCounters,
    /// Largest frame the plain port can send (MTU + Ethernet header + 2 tags).
    plain_max_frame: usize,
    /// EtherType of MKPDUs (0x888E unless configured otherwise).
    eapol_ethertype: u16,
    /// 802.1Q tags kept in clear before the SecTAG.
    vlan_in_clear: usize,
    /// Where validated probes go; `None` drops them (they never reach the plain port).
    probes: Option<crossbeam::channel::Sender<ProbeIn>>,
}

impl<R: RxPort, T: TxPort> ValidatePump<R, T> {
    /// A pump writing to the plain port `tx`, with no link yet (see
    /// [`add_link`](Self::add_link)).
    pub fn new(tx: T, plain_mtu: usize, vlan_in_clear: usize) -> Self {
        ValidatePump {
            links: Vec::new(),
            tx,
            counters: PumpCounters::default(),
            plain_max_frame: plain_mtu + HEADER_LEN + 2 * VLAN_TAG_LEN,
            eapol_ethertype: macsec::wire::ethernet::ethertype::EAPOL,
            vlan_in_clear,
            probes: None,
        }
    }

    /// A pump from one secure link `rx` to the plain port `tx`.
    pub fn single(rx: R, tx: T, secy: Receiver, plain_mtu: usize, vlan_in_clear: usize) -> Self {
        let mut v = ValidatePump::new(tx, plain_mtu, vlan_in_clear);
        v.add_link(rx, secy);
        v
    }

    /// Adds a secure link (its receive port and its SecY's receive half); returns its
    /// index.
    pub fn add_link(&mut self, port: R, secy: Receiver) -> usize {
        self.links.push(RxLink {
            port,
            secy,
            counters: PumpCounters::default(),
        });
        self.links.len() - 1
    }

    /// Sends validated probes to `to`.
    pub fn set_probe_sink(&mut self, to: crossbeam::channel::Sender<ProbeIn>) {
        self.probes = Some(to);
    }

    /// Sets the EtherType of MKPDUs, which are left to the KaY.
    pub fn set_eapol_ethertype(&mut self, t: u16) {
        self.eapol_ethertype = t;
    }

    /// Link `i`.
    pub fn link(&self, i: usize) -> Option<&RxLink<R>> {
        self.links.get(i)
    }

    /// Link `i`, to change its SecY or port.
    pub fn link_mut(&mut self, i: usize) -> Option<&mut RxLink<R>> {
        self.links.get_mut(i)
    }

    /// The links.
    pub fn links(&self) -> &[RxLink<R>] {
        &self.links
    }

    /// The plain port.
    pub fn tx(&self) -> &T {
        &self.tx
    }

    /// The plain port, to replace or reconfigure it.
    pub fn tx_mut(&mut self) -> &mut T {
        &mut self.tx
    }

    /// The plain-side counters.
    pub fn plain_counters(&self) -> &PumpCounters {
        &self.counters
    }

    /// Every counter of this direction, summed over the links and the plain side.
    pub fn counters(&self) -> PumpCounters {
        let mut c = self.counters;
        for l in &self.links {
            c.add(&l.counters);
        }
        c
    }

    /// Takes up to [`BATCH`] frames from link `i` (waiting at most `timeout`),
    /// validates them, sends the delivered ones to the plain port. Does not flush.
    /// Returns the number of frames received.
    pub fn run_link(&mut self, i: usize, timeout: Duration) -> std::io::Result<usize> {
        let Self {
            links,
            tx,
            counters: plain,
            plain_max_frame,
            eapol_ethertype,
            vlan_in_clear,
            probes,
        } = self;
        let Some(link) = links.get_mut(i) else {
            return Ok(0);
        };
        let (max, eapol, tags) = (*plain_max_frame, *eapol_ethertype, *vlan_in_clear);
        let RxLink {
            port,
            secy,
            counters: c,
        } = link;
        port.recv_each(BATCH, timeout, |f: RxFrame<'_>| {
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
            let mut probe = false;
            send(tx, plain, |slot| {
                // Validated straight from the receive slot into the transmit slot; a
                // frame whose tag the kernel stripped (a clear VLAN tag) is put back
                // together in the slot first and validated there.
                let (_, out) = if f.vlan_tci.is_none() {
                    let room = &mut slot[TX_HEADROOM..];
                    if f.data.len() > room.len() {
                        return (Filled::Dropped, None);
                    }
                    let (v, r) = secy.validate_into(f.data, room);
                    (v, r.map(in_slot))
                } else {
                    let Some(n) = place(&f, slot, TX_HEADROOM) else {
                        return (Filled::Dropped, None);
                    };
                    secy.validate(slot, TX_HEADROOM..TX_HEADROOM + n)
                };
                let Some(out) = out else {
                    return (Filled::Dropped, None);
                };
                let frame = &slot[out.clone()];
                if is_probe_frame(frame) {
                    // Ours or a look-alike that came through MACsec: never delivered.
                    probe = true;
                    if let Some(to) = probes.as_ref() {
                        let p = &frame[HEADER_LEN..];
                        let len = p.len().min(PROBE_MAX);
                        let mut payload = [0u8; PROBE_MAX];
                        payload[..len].copy_from_slice(&p[..len]);
                        let _ = to.try_send(ProbeIn {
                            link: i,
                            at: Instant::now(),
                            len,
                            payload,
                        });
                    }
                    return (Filled::Taken, None);
                }
                if out.len() > max {
                    too_big = true;
                    return (Filled::Taken, None);
                }
                (Filled::Frame, Some(out))
            });
            if too_big {
                c.oversize += 1;
            }
            if probe {
                c.probes += 1;
            }
        })
    }

    /// Whether the plain port has frames queued that the kernel could not take yet.
    pub fn backlog(&self) -> bool {
        self.tx.backlog()
    }

    /// Pushes the frames queued for the plain port to the kernel (never waits).
    pub fn flush(&mut self) {
        if let Err(e) = self.tx.flush() {
            self.counters.tx_errors += 1;
            tracing::debug!("plain port flush: {e}");
        }
    }

    /// Takes up to [`BATCH`] frames from each link (waiting at most `timeout` on the
    /// first one only), validates and delivers them, and flushes. Returns the number
    /// of frames received.
    pub fn run_batch(&mut self, timeout: Duration) -> std::io::Result<usize> {
        let mut n = 0;
        for i in 0..self.links.len() {
            n += self.run_link(i, if i == 0 { timeout } else { Duration::ZERO })?;
        }
        self.flush();
        Ok(n)
    }
}

//! In-memory ports: wires made of bounded queues, usable across threads, with a
//! deterministic fault injector. They let the forwarder pumps be tested without root,
//! sockets or interfaces.
//!
//! A [`wire`] joins one [`MemTx`] to one [`MemRx`]; a [`pair`] is two wires crossed, like
//! a cable between two ports. Like a TX ring, a wire has a fixed number of buffers
//! (`capacity`): [`TxPort::send_with`] returns `Ok(false)` when all are in use (queued
//! but not flushed, in flight, or lent to a receive callback), and frames become visible
//! to the receiver only at [`TxPort::flush`]. Buffers are allocated once, when the wire
//! is made; sending and receiving do not allocate.
//!
//! Faults ([`FaultConfig`]) are applied at flush time, frame by frame, from a seeded
//! generator: the same seed and the same sequence of sends and flushes give the same
//! drops, duplicates, reorderings and bit flips.

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};

use macsec_forward::io::{RxFrame, RxPort, TxPort, TX_SLOT_LEN};

/// Receive-side metadata carried with a frame over a wire (what an `AF_PACKET` ring would
/// report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// Reported as [`RxFrame::csum_not_ready`].
    pub csum_not_ready: bool,
    /// Reported as [`RxFrame::truncated`].
    pub truncated: bool,
    /// Reported as [`RxFrame::vlan_tci`].
    pub vlan_tci: Option<u16>,
    /// Reported as [`RxFrame::vlan_tpid`].
    pub vlan_tpid: u16,
    /// Reported as [`RxFrame::gso`].
    pub gso: Option<macsec_forward::io::Gso>,
}

impl Default for FrameMeta {
    fn default() -> Self {
        FrameMeta {
            csum_not_ready: false,
            truncated: false,
            vlan_tci: None,
            vlan_tpid: macsec::wire::ethernet::ethertype::VLAN,
            gso: None,
        }
    }
}

/// Fault probabilities (each in `0.0..=1.0`, applied independently per frame) and the
/// seed of the generator that draws them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability that a frame is lost.
    pub drop: f64,
    /// Probability that a frame is delivered twice (needs a free buffer; skipped if none).
    pub duplicate: f64,
    /// Probability that a frame is held back and delivered after the next one (or at the
    /// next flush if no other frame follows).
    pub reorder: f64,
    /// Probability that one random bit of a frame is inverted.
    pub bit_flip: f64,
    /// Generator seed.
    pub seed: u64,
}

impl FaultConfig {
    /// No faults.
    pub fn none() -> Self {
        FaultConfig::default()
    }
}

/// Parameters of a wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WireConfig {
    /// Number of frame buffers (the "ring size"). Default 256.
    pub capacity: usize,
    /// Longest frame `send_with` accepts; longer ones fail with `EMSGSIZE` like an
    /// interface MTU. Default [`TX_SLOT_LEN`].
    pub max_frame_len: usize,
    /// Faults to inject. Default none.
    pub faults: FaultConfig,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            capacity: 256,
            max_frame_len: TX_SLOT_LEN,
            faults: FaultConfig::none(),
        }
    }
}

/// A snapshot of a wire's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireCounters {
    /// Frames queued by the sender.
    pub queued: u64,
    /// Frames put on the wire (after drops, including duplicates).
    pub transmitted: u64,
    /// Frames passed to a receive callback.
    pub received: u64,
    /// `send_with` calls that found no free buffer.
    pub full: u64,
    /// Frames dropped by the fault injector.
    pub dropped: u64,
    /// Extra copies made by the fault injector.
    pub duplicated: u64,
    /// Frames held back and delivered after a later one (a held frame released by a
    /// flush with nothing behind it is not counted).
    pub reordered: u64,
    /// Frames with a flipped bit.
    pub bit_flips: u64,
    /// Frames lost because the receiving end was gone.
    pub lost: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    transmitted: AtomicU64,
    received: AtomicU64,
    full: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    bit_flips: AtomicU64,
    lost: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> WireCounters {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WireCounters {
            queued: r(&self.queued),
            transmitted: r(&self.transmitted),
            received: r(&self.received),
            full: r(&self.full),
            dropped: r(&self.dropped),
            duplicated: r(&self.duplicated),
            reordered: r(&self.reordered),
            bit_flips: r(&self.bit_flips),
            lost: r(&self.lost),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// A frame in flight: a pooled buffer, where the frame is in it, and its metadata.
struct Packet {
    buf: Box<[u8]>,
    range: Range<usize>,
    meta: FrameMeta,
}

/// SplitMix64: small, fast, and good enough to draw fault decisions.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let u = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        u < p
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The sending end of a wire.
pub struct MemTx {
    data: Sender<Packet>,
    pool_get: Receiver<Box<[u8]>>,
    pool_put: Sender<Box<[u8]>>,
    /// Frames queued since the last flush (capacity reserved up front).
    staged: Vec<Packet>,
    /// A buffer taken from the pool whose fill returned `None`; reused next time.
    spare: Option<Box<[u8]>>,
    max_frame_len: usize,
    faults: FaultConfig,
    rng: Rng,
    held: Option<Packet>,
    held_flushes: u32,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for MemTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemTx")
            .field("staged", &self.staged.len())
            .field("faults", &self.faults)
            .field("counters", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

/// The receiving end of a wire.
pub struct MemRx {
    data: Receiver<Packet>,
    pool_put: Sender<Box<[u8]>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for MemRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemRx")
            .field("queued", &self.data.len())
            .field("counters", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

/// One end of a [`pair`]: what it sends arrives at the other end's `rx`.
#[derive(Debug)]
pub struct MemPort {
    /// Sends to the peer.
    pub tx: MemTx,
    /// Receives from the peer.
    pub rx: MemRx,
}

/// Makes a wire: frames sent on the returned [`MemTx`] arrive at the [`MemRx`].
pub fn wire(cfg: &WireConfig) -> (MemTx, MemRx) {
    let cap = cfg.capacity.max(1);
    let (data_tx, data_rx) = channel::bounded(cap);
    let (pool_put, pool_get) = channel::bounded(cap);
    for _ in 0..cap {
        // The pool has room for exactly `cap` buffers, so this cannot fail.
        let _ = pool_put.try_send(vec![0u8; TX_SLOT_LEN].into_boxed_slice());
    }
    let counters = Arc::new(Counters::default());
    let tx = MemTx {
        data: data_tx,
        pool_get,
        pool_put: pool_put.clone(),
        staged: Vec::with_capacity(cap),
        spare: None,
        max_frame_len: cfg.max_frame_len.min(TX_SLOT_LEN),
        faults: cfg.faults,
        rng: Rng(cfg.faults.seed),
        held: None,
        held_flushes: 0,
        counters: counters.clone(),
    };
    let rx = MemRx {
        data: data_rx,
        pool_put,
        counters,
    };
    (tx, rx)
}

/// Makes two crossed wires with the same configuration (the second one's fault seed is
/// derived from the first's, so the directions do not mirror each other).
pub fn pair(cfg: &WireConfig) -> (MemPort, MemPort) {
    let (a_tx, b_rx) = wire(cfg);
    let mut cfg2 = *cfg;
    cfg2.faults.seed = cfg.faults.seed ^ 0x5DEE_CE66_D1CE_5EED;
    let (b_tx, a_rx) = wire(&cfg2);
    (
        MemPort { tx: a_tx, rx: a_rx },
        MemPort { tx: b_tx, rx: b_rx },
    )
}

impl MemTx {
    /// This wire's counters (shared with its [`MemRx`]).
    pub fn counters(&self) -> WireCounters {
        self.counters.snapshot()
    }

    /// Queues a copy of `frame` with receive metadata `meta` (for injecting frames in
    /// tests). Same results as [`TxPort::send_with`].
    pub fn send_frame_with_meta(&mut self, frame: &[u8], meta: FrameMeta) -> io::Result<bool> {
        if frame.len() > TX_SLOT_LEN {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        self.queue(
            &mut |slot: &mut [u8]| {
                slot[..frame.len()].copy_from_slice(frame);
                Some(0..frame.len())
            },
            meta,
        )
    }

    /// Queues a copy of `frame` with no metadata.
    pub fn send_frame(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.send_frame_with_meta(frame, FrameMeta::default())
    }

    fn queue(
        &mut self,
        fill: &mut dyn FnMut(&mut [u8]) -> Option<Range<usize>>,
        meta: FrameMeta,
    ) -> io::Result<bool> {
        let mut buf = match self.spare.take() {
            Some(b) => b,
            None => match self.pool_get.try_recv() {
                Ok(b) => b,
                Err(_) => {
                    bump(&self.counters.full);
                    return Ok(false);
                }
            },
        };
        let range = match fill(&mut buf) {
            None => {
                self.spare = Some(buf);
                return Ok(true);
            }
            Some(r) => r,
        };
        if range.start > range.end || range.end > buf.len() || range.len() < 14 {
            self.spare = Some(buf);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame range outside the slot or shorter than an Ethernet header",
            ));
        }
        if range.len() > self.max_frame_len {
            self.spare = Some(buf);
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        bump(&self.counters.queued);
        self.staged.push(Packet { buf, range, meta });
        Ok(true)
    }

    /// Puts one packet on the wire; if the receiver is gone the buffer is recycled.
    fn transmit(&mut self, p: Packet) {
        match self.data.try_send(p) {
            Ok(()) => bump(&self.counters.transmitted),
            Err(e) => {
                bump(&self.counters.lost);
                let _ = self.pool_put.try_send(e.into_inner().buf);
            }
        }
    }

    fn release_held(&mut self) {
        if let Some(h) = self.held.take() {
            self.transmit(h);
        }
    }
}

impl TxPort for MemTx {
    fn send_with(
        &mut self,
        fill: &mut dyn FnMut(&mut [u8]) -> Option<Range<usize>>,
    ) -> io::Result<bool> {
        self.queue(fill, FrameMeta::default())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut staged = std::mem::take(&mut self.staged);
        for mut p in staged.drain(..) {
            let f = self.faults;
            if self.rng.chance(f.drop) {
                bump(&self.counters.dropped);
                let _ = self.pool_put.try_send(p.buf);
                continue;
            }
            if self.rng.chance(f.bit_flip) {
                let bits = (p.range.len() as u64) * 8;
                let bit = self.rng.below(bits) as usize;
                p.buf[p.range.start + bit / 8] ^= 1 << (bit % 8);
                bump(&self.counters.bit_flips);
            }
            let dup = if self.rng.chance(f.duplicate) {
                match self.pool_get.try_recv() {
                    Ok(mut b) => {
                        b[p.range.clone()].copy_from_slice(&p.buf[p.range.clone()]);
                        bump(&self.counters.duplicated);
                        Some(Packet {
                            buf: b,
                            range: p.range.clone(),
                            meta: p.meta,
                        })
                    }
                    Err(_) => None,
                }
            } else {
                None
            };
            if self.held.is_none() && self.rng.chance(f.reorder) {
                self.held = Some(p);
                self.held_flushes = 0;
            } else {
                self.transmit(p);
                if let Some(h) = self.held.take() {
                    bump(&self.counters.reordered);
                    self.transmit(h);
                }
            }
            if let Some(d) = dup {
                self.transmit(d);
            }
        }
        self.staged = staged;
        if self.held.is_some() {
            if self.held_flushes >= 1 {
                self.release_held();
            } else {
                self.held_flushes += 1;
            }
        }
        Ok(())
    }
}

impl Drop for MemTx {
    fn drop(&mut self) {
        // Frames still queued are discarded like an unflushed ring; a frame held back for
        // reordering was already "sent", so deliver it.
        self.release_held();
    }
}

/// A received frame copied out of a wire (for tests; allocates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedFrame {
    /// The frame.
    pub data: Vec<u8>,
    /// Its metadata.
    pub meta: FrameMeta,
}

impl MemRx {
    /// This wire's counters (shared with its [`MemTx`]).
    pub fn counters(&self) -> WireCounters {
        self.counters.snapshot()
    }

    /// Receives one frame as an owned copy, waiting at most `timeout`. `Ok(None)` on
    /// timeout; `BrokenPipe` once the sender is gone and the wire is empty.
    pub fn recv_frame(&mut self, timeout: Duration) -> io::Result<Option<OwnedFrame>> {
        let mut out = None;
        self.recv_batch(1, timeout, &mut |f| {
            out = Some(OwnedFrame {
                data: f.data.to_vec(),
                meta: FrameMeta {
                    csum_not_ready: f.csum_not_ready,
                    truncated: f.truncated,
                    vlan_tci: f.vlan_tci,
                    vlan_tpid: f.vlan_tpid,
                    gso: f.gso,
                },
            })
        })?;
        Ok(out)
    }

    fn deliver(&self, p: Packet, f: &mut dyn FnMut(RxFrame<'_>)) {
        f(RxFrame {
            data: &p.buf[p.range.clone()],
            csum_not_ready: p.meta.csum_not_ready,
            truncated: p.meta.truncated,
            vlan_tci: p.meta.vlan_tci,
            vlan_tpid: p.meta.vlan_tpid,
            gso: p.meta.gso,
        });
        bump(&self.counters.received);
        let _ = self.pool_put.try_send(p.buf);
    }
}

impl RxPort for MemRx {
    fn recv_batch(
        &mut self,
        max: usize,
        timeout: Duration,
        f: &mut dyn FnMut(RxFrame<'_>),
    ) -> io::Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        let first = match self.data.recv_timeout(timeout) {
            Ok(p) => p,
            Err(RecvTimeoutError::Timeout) => return Ok(0),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the sending end of the wire is gone",
                ))
            }
        };
        self.deliver(first, f);
        let mut n = 1;
        while n < max {
            match self.data.try_recv() {
                Ok(p) => {
                    self.deliver(p, f);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u32, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&0x88B5u16.to_be_bytes());
        f[14..18].copy_from_slice(&seq.to_be_bytes());
        f
    }

    fn seq_of(f: &[u8]) -> u32 {
        u32::from_be_bytes([f[14], f[15], f[16], f[17]])
    }

    fn drain(rx: &mut MemRx) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while rx
            .recv_batch(64, Duration::ZERO, &mut |f| out.push(f.data.to_vec()))
            .unwrap()
            > 0
        {}
        out
    }

    #[test]
    fn delivers_in_order_after_flush() {
        let (mut tx, mut rx) = wire(&WireConfig::default());
        for i in 0..10 {
            assert!(tx.send_frame(&frame(i, 60)).unwrap());
        }
        assert!(drain(&mut rx).is_empty(), "nothing before flush");
        tx.flush().unwrap();
        let got = drain(&mut rx);
        assert_eq!(
            got.iter().map(|f| seq_of(f)).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
    }

    #[test]
    fn send_with_places_frame_anywhere_and_none_sends_nothing() {
        let (mut tx, mut rx) = wire(&WireConfig::default());
        let f = frame(7, 100);
        assert!(tx
            .send_with(&mut |slot| {
                slot[200..300].copy_from_slice(&f);
                Some(200..300)
            })
            .unwrap());
        assert!(tx.send_with(&mut |_| None).unwrap());
        tx.flush().unwrap();
        assert_eq!(drain(&mut rx), vec![f]);
    }

    #[test]
    fn ring_full_and_bad_ranges() {
        let cfg = WireConfig {
            capacity: 4,
            max_frame_len: 1514,
            ..WireConfig::default()
        };
        let (mut tx, mut rx) = wire(&cfg);
        let bad = tx.send_with(&mut |slot| Some(0..slot.len() + 1));
        assert_eq!(bad.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let long = tx.send_with(&mut |_| Some(0..1515));
        assert_eq!(long.unwrap_err().raw_os_error(), Some(libc::EMSGSIZE));
        for i in 0..4 {
            assert!(tx.send_frame(&frame(i, 60)).unwrap());
        }
        assert!(!tx.send_frame(&frame(9, 60)).unwrap(), "ring full");
        tx.flush().unwrap();
        assert_eq!(drain(&mut rx).len(), 4);
        assert!(tx.send_frame(&frame(10, 60)).unwrap(), "buffers came back");
        assert_eq!(tx.counters().full, 1);
    }

    #[test]
    fn metadata_travels() {
        let (mut tx, mut rx) = wire(&WireConfig::default());
        let meta = FrameMeta {
            csum_not_ready: true,
            truncated: false,
            vlan_tci: Some(0x2064),
            vlan_tpid: 0x88A8,
            gso: Some(macsec_forward::io::Gso::Udp { size: 1200 }),
        };
        tx.send_frame_with_meta(&frame(1, 64), meta).unwrap();
        tx.flush().unwrap();
        let got = rx.recv_frame(Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!(got.meta, meta);
    }

    #[test]
    fn works_across_threads_and_reports_disconnect() {
        let (mut a, b) = pair(&WireConfig::default());
        let MemPort {
            tx: b_tx,
            rx: mut b_rx,
        } = b;
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while seen.len() < 1000 {
                b_rx.recv_batch(64, Duration::from_secs(5), &mut |f| {
                    seen.push(seq_of(f.data))
                })
                .unwrap();
            }
            seen
        });
        let mut i = 0;
        while i < 1000 {
            while i < 1000 && a.tx.send_frame(&frame(i, 128)).unwrap() {
                i += 1;
            }
            a.tx.flush().unwrap();
            std::thread::yield_now();
        }
        assert_eq!(h.join().unwrap(), (0..1000).collect::<Vec<_>>());
        drop(b_tx);
        let mut rx = a.rx;
        let e = rx.recv_batch(1, Duration::from_millis(10), &mut |_| {});
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    fn run_faulty(seed: u64) -> (Vec<Vec<u8>>, WireCounters) {
        let cfg = WireConfig {
            capacity: 64,
            faults: FaultConfig {
                drop: 0.1,
                duplicate: 0.1,
                reorder: 0.1,
                bit_flip: 0.1,
                seed,
            },
            ..WireConfig::default()
        };
        let (mut tx, mut rx) = wire(&cfg);
        let mut out = Vec::new();
        for batch in 0..50 {
            for i in 0..16 {
                tx.send_frame(&frame(batch * 16 + i, 80)).unwrap();
            }
            tx.flush().unwrap();
            out.extend(drain(&mut rx));
        }
        tx.flush().unwrap();
        tx.flush().unwrap();
        out.extend(drain(&mut rx));
        (out, tx.counters())
    }

    #[test]
    fn faults_are_deterministic_and_happen() {
        let (a, ca) = run_faulty(42);
        let (b, cb) = run_faulty(42);
        assert_eq!(a, b);
        assert_eq!(ca, cb);
        let (c, _) = run_faulty(43);
        assert_ne!(a, c);
        assert!(
            ca.dropped > 30 && ca.duplicated > 30 && ca.reordered > 30 && ca.bit_flips > 30,
            "{ca:?}"
        );
        // Every frame is accounted for.
        assert_eq!(ca.queued - ca.dropped + ca.duplicated, ca.received);
        assert_eq!(a.len() as u64, ca.received);
        // Reordering happened: some frame arrives after a later one.
        let seqs: Vec<u32> = a.iter().map(|f| seq_of(f)).collect();
        assert!(seqs.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn no_faults_means_identity() {
        let cfg = WireConfig {
            faults: FaultConfig {
                seed: 1,
                ..FaultConfig::none()
            },
            ..WireConfig::default()
        };
        let (mut tx, mut rx) = wire(&cfg);
        let frames: Vec<Vec<u8>> = (0..100).map(|i| frame(i, 60 + i as usize)).collect();
        for f in &frames {
            tx.send_frame(f).unwrap();
        }
        tx.flush().unwrap();
        assert_eq!(drain(&mut rx), frames);
    }
}

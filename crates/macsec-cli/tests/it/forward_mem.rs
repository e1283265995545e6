//! The forwarder pumps end to end, without root: two forwarders and two hosts joined by
//! in-memory wires ([`macsec_testkit::mem`]).
//!
//! ```text
//! host A -> [F1 ProtectPump] => secure link (faults) => relay -> [F2 ValidatePump] -> host B
//! host B -> [F2 ProtectPump] => secure link (faults) => relay -> [F1 ValidatePump] -> host A
//! ```
//!
//! The relay is a fault-free hop owned by the test. It records every frame that came off
//! the secure link and, in the fault tests, hands the frames to the validating pump one
//! at a time, so that the fate of each one (delivered, or the single counter that took
//! it) is known and checked against a model of 802.1AE replay protection.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use macsec::crypto::{CipherSuite, Salt, SecretKey, Ssci};
use macsec::secy::{
    ConfidentialityOffset, FrameBuf, Protection, Receiver, ReplayMode, RxScCounters, SecY,
    SecYConfig, Transmitter, TxEvent, TxScCounters, XpnParams,
};
use macsec::wire::Sci;
use macsec_forward::csum;
use macsec_forward::forward::pump::{ProtectPump, PumpCounters, ValidatePump, BATCH};
use macsec_forward::io::{Gso, RxFrame, RxPort, TxPort, TX_SLOT_LEN};
use macsec_testkit::mem::{
    wire, FaultConfig, FrameMeta, MemRx, MemTx, OwnedFrame, WireConfig, WireCounters,
};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0A];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0B];
const SCI_F1: Sci = Sci([0x02, 0, 0, 0, 0x0F, 0x01, 0, 1]);
const SCI_F2: Sci = Sci([0x02, 0, 0, 0, 0x0F, 0x02, 0, 1]);
/// What MACsec adds to a frame with an explicit SCI: SecTAG 16 + ICV 16.
const OVERHEAD: usize = 32;
const Z: Duration = Duration::ZERO;
/// A local experimental EtherType for test payloads.
const ETHERTYPE_TEST: u16 = 0x88B5;

type Frame = (Vec<u8>, FrameMeta);

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn meta() -> FrameMeta {
    FrameMeta::default()
}

/// xorshift64*: deterministic test data.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Appends random octets to `v` until it is `len` long.
    fn fill(&mut self, v: &mut Vec<u8>, len: usize) {
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
    }
}

/// An Ethernet frame of `len` octets from `src` to `dst`, optionally with one VLAN tag
/// (TPID, TCI) in the data, carrying `seq` and random octets.
fn test_frame(
    src: [u8; 6],
    dst: [u8; 6],
    seq: u32,
    len: usize,
    tag: Option<(u16, u16)>,
    rng: &mut Prng,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some((tpid, tci)) = tag {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ETHERTYPE_TEST.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    assert!(f.len() <= len);
    rng.fill(&mut f, len);
    f
}

/// `f` with the tag (TPID, TCI) inserted after the source address.
fn with_tag(f: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&tpid.to_be_bytes());
    v.extend_from_slice(&tci.to_be_bytes());
    v.extend_from_slice(&f[12..]);
    v
}

// ---------------------------------------------------------------------------------
// Forwarders and the topology
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Setup {
    cipher: CipherSuite,
    protection: Protection,
    replay_window: u32,
    replay_mode: ReplayMode,
    vlan_in_clear: u8,
    plain_mtu: usize,
    /// Faults of the secure link A -> B (B -> A gets a different seed).
    faults: FaultConfig,
    /// First PN of both transmit SAs.
    first_pn: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            cipher: CipherSuite::GcmAes128,
            protection: Protection::default(),
            replay_window: 0,
            replay_mode: ReplayMode::LowerBound,
            vlan_in_clear: 0,
            plain_mtu: 1500,
            faults: FaultConfig::none(),
            first_pn: 1,
        }
    }
}

/// The SAK of the transmit SC whose SCI is `owner`.
fn key(cipher: CipherSuite, owner: Sci) -> SecretKey {
    let k: Vec<u8> = (0..cipher.key_len())
        .map(|i| owner.0[i % 8] ^ (i as u8).wrapping_mul(37))
        .collect();
    SecretKey::from_slice(&k).unwrap()
}

/// SSCI and salt of the transmit SC `owner`, for the XPN suites.
fn xpn(cipher: CipherSuite, owner: Sci) -> Option<XpnParams> {
    cipher.is_xpn().then(|| XpnParams {
        ssci: Ssci(u32::from(owner.0[5])),
        salt: Salt(std::array::from_fn(|i| {
            owner.0[i % 8].wrapping_add((i as u8).wrapping_mul(11))
        })),
    })
}

impl Setup {
    /// The SecY of forwarder `me`: transmit SA 0, and a receive SC with SA 0 for `peer`.
    fn forwarder(&self, me: Sci, peer: Sci) -> SecY {
        let mut y = SecY::new({
            let mut conf = SecYConfig::default();
            conf.cipher = self.cipher;
            conf.protection = self.protection;
            conf.replay_window = self.replay_window;
            conf.replay_mode = self.replay_mode;
            conf.vlan_in_clear = self.vlan_in_clear;
            conf.sci = me;
            conf
        })
        .unwrap();
        y.tx.install_sa(
            0,
            &key(self.cipher, me),
            self.first_pn,
            xpn(self.cipher, me),
        )
        .unwrap();
        y.rx.add_sc(peer).unwrap();
        y.rx.install_sa(peer, 0, &key(self.cipher, peer), 1, xpn(self.cipher, peer))
            .unwrap();
        y
    }

    /// Largest frame the plain ports carry: MTU + Ethernet header + two tags.
    fn plain_max(&self) -> usize {
        self.plain_mtu + 14 + 8
    }
}

type Queue = Arc<Mutex<VecDeque<Frame>>>;

/// A receive port fed from a queue. A mem wire's buffers hold [`TX_SLOT_LEN`] octets,
/// but a real receive ring also hands over TCP super-frames of up to 64 KiB; this port
/// stands in for it where a test needs those.
struct QueueRx(Queue);

impl RxPort for QueueRx {
    fn recv_batch(
        &mut self,
        max: usize,
        _timeout: Duration,
        f: &mut dyn FnMut(RxFrame<'_>),
    ) -> std::io::Result<usize> {
        let mut q = self.0.lock().unwrap();
        let mut n = 0;
        while n < max {
            let Some((data, m)) = q.pop_front() else {
                break;
            };
            f(RxFrame {
                data: &data,
                csum_not_ready: m.csum_not_ready,
                truncated: m.truncated,
                vlan_tci: m.vlan_tci,
                vlan_tpid: m.vlan_tpid,
                gso: m.gso,
            });
            n += 1;
        }
        Ok(n)
    }
}

/// The sending host's side of the plain port into a protecting forwarder.
enum Host {
    Wire(MemTx),
    Queue(Queue),
}

/// One direction: a host, a protecting pump, the secure link, the relay, a validating
/// pump and the receiving host.
struct Path {
    host: Host,
    protect: ProtectPump<Box<dyn RxPort>, MemTx>,
    /// The far end of the secure link (faults are injected on it).
    link_rx: MemRx,
    /// From the relay into the validating pump (no faults).
    relay_tx: MemTx,
    validate: ValidatePump<MemRx, MemTx>,
    /// The receiving host's port.
    host_rx: MemRx,
    /// SCI of the protecting forwarder: the receive SC at the validating one.
    sci: Sci,
    /// Every frame that came off the secure link, in order.
    on_link: Vec<Vec<u8>>,
    /// Every frame the receiving host got, in order.
    delivered: Vec<OwnedFrame>,
}

impl Path {
    fn new(s: &Setup, tx: Transmitter, rx: Receiver, big_frames: bool) -> Path {
        let sci = tx.sci();
        let (host, plain_rx): (Host, Box<dyn RxPort>) = if big_frames {
            let q = Queue::default();
            (Host::Queue(q.clone()), Box::new(QueueRx(q)))
        } else {
            let (t, r) = wire(&WireConfig {
                capacity: 2 * BATCH,
                ..WireConfig::default()
            });
            (Host::Wire(t), Box::new(r))
        };
        let (link_tx, link_rx) = wire(&WireConfig {
            capacity: 256,
            max_frame_len: s.plain_max() + OVERHEAD,
            faults: s.faults,
        });
        let (relay_tx, relay_rx) = wire(&WireConfig::default());
        let (out_tx, host_rx) = wire(&WireConfig {
            max_frame_len: s.plain_max(),
            ..WireConfig::default()
        });
        Path {
            host,
            protect: ProtectPump::single(plain_rx, link_tx, tx, s.plain_mtu),
            link_rx,
            relay_tx,
            validate: ValidatePump::single(
                relay_rx,
                out_tx,
                rx,
                s.plain_mtu,
                s.vlan_in_clear as usize,
            ),
            host_rx,
            sci,
            on_link: Vec::new(),
            delivered: Vec::new(),
        }
    }

    fn offer(&mut self, f: &Frame) {
        match &mut self.host {
            Host::Wire(t) => assert!(t.send_frame_with_meta(&f.0, f.1).unwrap(), "host wire full"),
            Host::Queue(q) => q.lock().unwrap().push_back(f.clone()),
        }
    }

    fn flush_host(&mut self) {
        if let Host::Wire(t) = &mut self.host {
            t.flush().unwrap();
        }
    }

    /// Moves whatever reached the receiving host into `delivered`.
    fn collect(&mut self) {
        while let Some(f) = self.host_rx.recv_frame(Z).unwrap() {
            self.delivered.push(f);
        }
    }

    /// Runs the validating pump over everything relayed so far.
    fn validate_all(&mut self) {
        self.relay_tx.flush().unwrap();
        for _ in 0..1000 {
            if self.validate.run_batch(Z).unwrap() == 0 {
                break;
            }
        }
        self.collect();
    }

    /// Puts `frames` on the secure link's far end directly (as if they came off the
    /// wire) and runs the validating pump.
    fn feed_link(&mut self, frames: &[Vec<u8>]) {
        for f in frames {
            assert!(self.relay_tx.send_frame(f).unwrap());
        }
        self.validate_all();
    }

    /// Offers `frames` from the host and runs only the protecting pump; returns what came
    /// off the secure link (also recorded in `on_link`), not yet relayed.
    fn protect_only(&mut self, frames: &[Frame]) -> Vec<Vec<u8>> {
        for f in frames {
            self.offer(f);
        }
        self.flush_host();
        let mut out = Vec::new();
        for _ in 0..100 {
            if self.protect.run_batch(Z).unwrap() == 0 {
                break;
            }
        }
        self.protect.run_batch(Z).unwrap(); // one more flush
        while let Some(f) = self.link_rx.recv_frame(Z).unwrap() {
            out.push(f.data);
        }
        self.on_link.extend(out.iter().cloned());
        out
    }

    /// One round: the protecting pump takes a batch; every frame off the secure link is
    /// recorded and relayed (with `oracle`, one at a time and judged); the validating
    /// pump runs. Returns whether anything moved.
    fn turn(&mut self, mut oracle: Option<&mut Oracle>) -> bool {
        let mut moved = self.protect.run_batch(Z).unwrap() > 0;
        let mut pending = 0;
        while let Some(f) = self.link_rx.recv_frame(Z).unwrap() {
            moved = true;
            assert!(self.relay_tx.send_frame_with_meta(&f.data, f.meta).unwrap());
            match oracle.as_deref_mut() {
                Some(o) => {
                    self.relay_tx.flush().unwrap();
                    let before = tally(self.validate.link(0).unwrap().secy(), self.sci);
                    assert_eq!(self.validate.run_batch(Z).unwrap(), 1);
                    let after = tally(self.validate.link(0).unwrap().secy(), self.sci);
                    let delta: [u64; 8] = std::array::from_fn(|k| after[k] - before[k]);
                    let first = self.delivered.len();
                    self.collect();
                    let out = &self.delivered[first..];
                    assert!(out.len() <= 1, "one frame in, {} out", out.len());
                    o.judge(&f.data, out.first(), delta);
                }
                None => {
                    pending += 1;
                    if pending == 128 {
                        self.validate_all();
                        pending = 0;
                    }
                }
            }
            self.on_link.push(f.data);
        }
        if oracle.is_none() {
            self.validate_all();
        }
        moved
    }

    /// Sends `frames` from the host in batches of at most [`BATCH`], running rounds
    /// until nothing moves any more (a frame held back for reordering is released by
    /// the second flush after it).
    fn send_all(&mut self, frames: &[Frame], mut oracle: Option<&mut Oracle>) {
        let mut next = 0;
        let mut idle = 0;
        for _ in 0..frames.len() + 100 {
            let end = (next + BATCH).min(frames.len());
            for f in &frames[next..end] {
                self.offer(f);
            }
            next = end;
            self.flush_host();
            if self.turn(oracle.as_deref_mut()) || next < frames.len() {
                idle = 0;
            } else {
                idle += 1;
                if idle == 3 {
                    return;
                }
            }
        }
        panic!("the pumps did not settle");
    }

    fn delivered_data(&self) -> Vec<Vec<u8>> {
        self.delivered.iter().map(|f| f.data.clone()).collect()
    }

    /// Transmit SC counters of the protecting forwarder.
    fn tx_sc(&self) -> TxScCounters {
        *self.protect.link(0).unwrap().secy().sc_counters()
    }

    /// Receive SC counters at the validating forwarder.
    fn rx_sc(&self) -> RxScCounters {
        *self
            .validate
            .link(0)
            .unwrap()
            .secy()
            .sc_counters(self.sci)
            .unwrap()
    }

    /// The secure link's counters.
    fn link(&self) -> WireCounters {
        self.protect.link(0).unwrap().port().counters()
    }
}

/// F1 and F2 with the paths A -> B and B -> A.
fn topology(s: &Setup) -> (Path, Path) {
    let (f1_tx, f1_rx) = s.forwarder(SCI_F1, SCI_F2).split();
    let (f2_tx, f2_rx) = s.forwarder(SCI_F2, SCI_F1).split();
    let mut back = *s;
    back.faults.seed ^= 0x9E37_79B9_7F4A_7C15;
    (
        Path::new(s, f1_tx, f2_rx, false),
        Path::new(&back, f2_tx, f1_rx, false),
    )
}

// ---------------------------------------------------------------------------------
// Receive counters
// ---------------------------------------------------------------------------------

/// The receive counters a frame can land in under validateFrames Strict with
/// replayProtect on: InPktsOK and every discard counter.
const COUNTERS: [&str; 8] = [
    "InPktsOK",
    "InPktsLate",
    "InPktsNotValid",
    "InPktsNotUsingSA",
    "InPktsBadTag",
    "InPktsNoTag",
    "InPktsNoSCI",
    "InPktsUncontrolled",
];
const OK: usize = 0;
const LATE: usize = 1;
const NOT_VALID: usize = 2;

fn tally(rx: &Receiver, sc: Sci) -> [u64; 8] {
    let c = rx.sc_counters(sc).unwrap();
    let y = rx.secy_counters();
    [
        c.in_pkts_ok,
        c.in_pkts_late,
        c.in_pkts_not_valid,
        c.in_pkts_not_using_sa,
        y.in_pkts_bad_tag,
        y.in_pkts_no_tag,
        y.in_pkts_no_sci,
        y.in_pkts_uncontrolled,
    ]
}

/// Sum of the discard counters of a tally.
fn dropped(t: &[u64; 8]) -> u64 {
    t[1..].iter().sum()
}

/// Counters of frames delivered without being valid; must stay 0 under Strict.
fn leaks(rx: &Receiver, sc: Sci) -> [u64; 6] {
    let c = rx.sc_counters(sc).unwrap();
    let y = rx.secy_counters();
    [
        c.in_pkts_delayed,
        c.in_pkts_unchecked,
        c.in_pkts_invalid,
        c.in_pkts_unused_sa,
        y.in_pkts_untagged,
        y.in_pkts_unknown_sci,
    ]
}

fn only(k: usize) -> [u64; 8] {
    let mut t = [0; 8];
    t[k] = 1;
    t
}

// ---------------------------------------------------------------------------------
// 1. A clean link: every cipher suite and protection
// ---------------------------------------------------------------------------------

/// 30 frames of 60..9018 octets, a third of them with an 802.1Q tag in the data.
fn varied_frames(src: [u8; 6], dst: [u8; 6], seed: u64) -> Vec<Frame> {
    const FIXED: [(usize, bool); 18] = [
        (60, false),
        (60, true),
        (61, false),
        (64, true),
        (77, false),
        (128, false),
        (255, true),
        (256, false),
        (511, false),
        (1000, true),
        (1500, false),
        (1514, false),
        (1518, true),
        (2000, false),
        (4096, true),
        (8000, false),
        (9014, false),
        (9018, true),
    ];
    let mut rng = Prng(seed);
    let mut out: Vec<Frame> = FIXED
        .iter()
        .enumerate()
        .map(|(i, &(len, tagged))| {
            let tag = tagged.then_some((macsec::wire::ethernet::ethertype::VLAN, 100 + i as u16));
            (test_frame(src, dst, i as u32, len, tag, &mut rng), meta())
        })
        .collect();
    for i in FIXED.len()..30 {
        let tagged = i % 3 == 0;
        let len = 60 + rng.below(9014 - 60 + 1) + if tagged { 4 } else { 0 };
        let tag = tagged.then_some((macsec::wire::ethernet::ethertype::VLAN, 7));
        out.push((test_frame(src, dst, i as u32, len, tag, &mut rng), meta()));
    }
    out
}

/// Checks a protected frame on the secure link against its plain frame: MAC addresses,
/// SecTAG (TCI, SL, PN, SCI), the octets left in clear by the protection, and that
/// the rest is not.
fn check_protected(s: &Setup, plain: &[u8], wire: &[u8], pn: u64, sci: Sci) {
    assert_eq!(wire.len(), plain.len() + OVERHEAD);
    assert_eq!(wire[..12], plain[..12]);
    assert_eq!(be16(wire, 12), 0x88E5);
    let user = plain.len() - 12;
    let (ec, clear) = match s.protection {
        Protection::IntegrityOnly => (0, user),
        Protection::Confidentiality(o) => (0x0C, o.octets().min(user)),
    };
    assert_eq!(
        wire[14],
        0x20 | ec,
        "TCI/AN: SC, E and C as configured, AN 0"
    );
    assert_eq!(wire[15], 0, "SL: user data of 48 octets or more");
    assert_eq!(be32(wire, 16), pn as u32, "PN");
    assert_eq!(wire[20..28], sci.0);
    assert_eq!(
        wire[28..28 + clear],
        plain[12..12 + clear],
        "octets in clear"
    );
    if user - clear >= 16 {
        assert_ne!(
            wire[28 + clear..28 + user],
            plain[12 + clear..],
            "encrypted"
        );
    }
}

#[test]
fn clean_link_every_suite_and_protection() {
    let protections = [
        Protection::IntegrityOnly,
        Protection::Confidentiality(ConfidentialityOffset::Zero),
        Protection::Confidentiality(ConfidentialityOffset::Thirty),
        Protection::Confidentiality(ConfidentialityOffset::Fifty),
    ];
    for cipher in CipherSuite::ALL {
        for protection in protections {
            let s = Setup {
                cipher,
                protection,
                plain_mtu: 9000,
                // XPN: cross the 2^32 boundary (PN recovery at the receiver).
                first_pn: if cipher.is_xpn() { 0xFFFF_FFF0 } else { 1 },
                ..Setup::default()
            };
            let what = format!("{cipher:?} {protection:?}");
            let (mut ab, mut ba) = topology(&s);
            let fa = varied_frames(MAC_A, MAC_B, 1);
            let fb = varied_frames(MAC_B, MAC_A, 2);
            ab.send_all(&fa, None);
            ba.send_all(&fb, None);
            for (p, frames) in [(&ab, &fa), (&ba, &fb)] {
                let n = frames.len() as u64;
                let sent: Vec<Vec<u8>> = frames.iter().map(|f| f.0.clone()).collect();
                assert_eq!(p.delivered_data(), sent, "{what}: in order, byte-identical");
                assert!(p.delivered.iter().all(|f| f.meta == meta()));
                assert_eq!(p.on_link.len(), frames.len(), "{what}");
                for (k, (plain, w)) in sent.iter().zip(&p.on_link).enumerate() {
                    check_protected(&s, plain, w, s.first_pn + k as u64, p.sci);
                }
                let tx = p.tx_sc();
                let (enc, prot) = match protection {
                    Protection::IntegrityOnly => (0, n),
                    Protection::Confidentiality(_) => (n, 0),
                };
                assert_eq!(
                    (tx.out_pkts_encrypted, tx.out_pkts_protected),
                    (enc, prot),
                    "{what}"
                );
                // Octet counters: the User Data, i.e. everything after the MAC addresses.
                let octets: u64 = sent.iter().map(|f| f.len() as u64 - 12).sum();
                let y = p.protect.link(0).unwrap().secy().secy_counters();
                let (enc_o, prot_o) = if enc > 0 { (octets, 0) } else { (0, octets) };
                assert_eq!(
                    (y.out_octets_encrypted, y.out_octets_protected),
                    (enc_o, prot_o),
                    "{what}"
                );
                assert_eq!(
                    (tx.out_octets_encrypted, tx.out_octets_protected),
                    (enc_o, prot_o)
                );
                let discards = y.out_pkts_untagged
                    + y.out_pkts_too_long
                    + y.out_pkts_no_sa
                    + y.out_pkts_pn_exhausted
                    + y.out_pkts_malformed
                    + y.out_pkts_source_mismatch;
                assert_eq!(discards, 0, "{what}: {y:?}");
                let rx = p.rx_sc();
                assert_eq!(
                    (rx.in_octets_decrypted, rx.in_octets_validated),
                    (enc_o, prot_o),
                    "{what}"
                );
                let mut expect = [0; 8];
                expect[OK] = n;
                assert_eq!(
                    tally(p.validate.link(0).unwrap().secy(), p.sci),
                    expect,
                    "{what}"
                );
                assert_eq!(p.rx_sc().in_pkts_ok, n);
                assert_eq!(leaks(p.validate.link(0).unwrap().secy(), p.sci), [0; 6]);
                let pc = p.protect.counters();
                assert_eq!((pc.frames_in, pc.frames_out), (n, n), "{what}: {pc:?}");
                assert_eq!(
                    pc.secy_dropped + pc.tx_errors + pc.tx_ring_full + pc.oversize,
                    0
                );
                let vc = p.validate.counters();
                assert_eq!((vc.frames_in, vc.frames_out), (n, n), "{what}: {vc:?}");
                assert_eq!(vc.secy_dropped + vc.tx_errors + vc.oversize, 0);
                let l = p.link();
                assert_eq!((l.queued, l.transmitted), (n, n));
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Two-way, one thread per pump
// ---------------------------------------------------------------------------------

fn spawn_protect(
    mut p: ProtectPump<MemRx, MemTx>,
    deadline: Instant,
) -> JoinHandle<(PumpCounters, TxScCounters)> {
    std::thread::spawn(move || {
        while Instant::now() < deadline {
            match p.run_batch(Duration::from_millis(5)) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::BrokenPipe => break,
                Err(e) => panic!("protect pump: {e}"),
            }
        }
        (p.counters(), *p.link(0).unwrap().secy().sc_counters())
    })
}

fn spawn_validate(
    mut v: ValidatePump<MemRx, MemTx>,
    peer: Sci,
    deadline: Instant,
) -> JoinHandle<(PumpCounters, RxScCounters)> {
    std::thread::spawn(move || {
        while Instant::now() < deadline {
            match v.run_batch(Duration::from_millis(5)) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::BrokenPipe => break,
                Err(e) => panic!("validate pump: {e}"),
            }
        }
        (
            v.counters(),
            *v.link(0).unwrap().secy().sc_counters(peer).unwrap(),
        )
    })
}

/// Both directions at once, each pump on its own thread. The hosts keep at most 64
/// frames in flight per direction, fewer than any wire holds, so nothing may be lost.
#[test]
fn two_way_one_thread_per_pump() {
    const N: usize = 1000;
    const IN_FLIGHT: usize = 64;
    let s = Setup {
        cipher: CipherSuite::GcmAesXpn256,
        first_pn: 0xFFFF_FE00,
        ..Setup::default()
    };
    let (f1_tx, f1_rx) = s.forwarder(SCI_F1, SCI_F2).split();
    let (f2_tx, f2_rx) = s.forwarder(SCI_F2, SCI_F1).split();
    let cfg = WireConfig::default();
    let (mut a_tx, f1_plain_rx) = wire(&cfg);
    let (f1_plain_tx, mut a_rx) = wire(&cfg);
    let (mut b_tx, f2_plain_rx) = wire(&cfg);
    let (f2_plain_tx, mut b_rx) = wire(&cfg);
    let (l12_tx, l12_rx) = wire(&cfg);
    let (l21_tx, l21_rx) = wire(&cfg);
    let deadline = Instant::now() + Duration::from_secs(20);
    let p1 = spawn_protect(
        ProtectPump::single(f1_plain_rx, l12_tx, f1_tx, 1500),
        deadline,
    );
    let v2 = spawn_validate(
        ValidatePump::single(l12_rx, f2_plain_tx, f2_rx, 1500, 0),
        SCI_F1,
        deadline,
    );
    let p2 = spawn_protect(
        ProtectPump::single(f2_plain_rx, l21_tx, f2_tx, 1500),
        deadline,
    );
    let v1 = spawn_validate(
        ValidatePump::single(l21_rx, f1_plain_tx, f1_rx, 1500, 0),
        SCI_F2,
        deadline,
    );

    let mut rng = Prng(77);
    let mut frames = |src, dst| -> Vec<Vec<u8>> {
        (0..N)
            .map(|i| test_frame(src, dst, i as u32, 60 + rng.below(1455), None, &mut rng))
            .collect()
    };
    let fa = frames(MAC_A, MAC_B);
    let fb = frames(MAC_B, MAC_A);
    let (mut sa, mut sb) = (0, 0);
    let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
    let until = Instant::now() + Duration::from_secs(15);
    while at_a.len() < N || at_b.len() < N {
        assert!(
            Instant::now() < until,
            "stalled: A sent {sa}, B got {}; B sent {sb}, A got {}",
            at_b.len(),
            at_a.len()
        );
        while sa < N && sa - at_b.len() < IN_FLIGHT {
            assert!(a_tx.send_frame(&fa[sa]).unwrap());
            sa += 1;
        }
        while sb < N && sb - at_a.len() < IN_FLIGHT {
            assert!(b_tx.send_frame(&fb[sb]).unwrap());
            sb += 1;
        }
        a_tx.flush().unwrap();
        b_tx.flush().unwrap();
        let t = Duration::from_millis(1);
        b_rx.recv_batch(BATCH, t, &mut |f| at_b.push(f.data.to_vec()))
            .unwrap();
        a_rx.recv_batch(BATCH, t, &mut |f| at_a.push(f.data.to_vec()))
            .unwrap();
    }
    assert!(at_b == fa, "A -> B: every frame, in order, byte-identical");
    assert!(at_a == fb, "B -> A: every frame, in order, byte-identical");

    // Closing the hosts' ports stops the pumps in turn (each sees its input wire gone).
    drop(a_tx);
    drop(b_tx);
    let n = N as u64;
    for (p, v) in [(p1, v2), (p2, v1)] {
        let (pc, tx) = p.join().unwrap();
        let (vc, rx) = v.join().unwrap();
        assert_eq!(
            (pc.frames_in, pc.frames_out, pc.tx_ring_full),
            (n, n, 0),
            "{pc:?}"
        );
        assert_eq!(
            (vc.frames_in, vc.frames_out, vc.tx_ring_full),
            (n, n, 0),
            "{vc:?}"
        );
        assert_eq!(tx.out_pkts_encrypted, n);
        assert_eq!(
            (rx.in_pkts_ok, rx.in_pkts_late, rx.in_pkts_not_valid),
            (n, 0, 0)
        );
    }
}

// ---------------------------------------------------------------------------------
// 2. Faults on the secure link
// ---------------------------------------------------------------------------------

/// What became of one frame that came off the secure link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// An unaltered copy of plain frame `i`, delivered.
    Delivered(usize),
    /// An unaltered copy of plain frame `i`, discarded by replay protection (the counter).
    Rejected(usize, usize),
    /// A copy of plain frame `i` with one bit flipped, discarded (the counter).
    Corrupted(usize, usize),
}

/// Knows the protected form of every frame (from a twin of the transmitting SecY) and
/// models the receiver's replay state, so it can say what must happen to each frame.
struct Oracle {
    plain: Vec<Vec<u8>>,
    protected: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, usize>,
    first_pn: u64,
    xpn: bool,
    window: u64,
    reject_duplicates: bool,
    /// One more than the highest PN accepted (starts at the SA's lowest PN, 1).
    next_pn: u64,
    accepted: HashSet<u64>,
    fates: Vec<Fate>,
}

impl Oracle {
    fn new(s: &Setup, plain: &[Vec<u8>]) -> Oracle {
        let (mut twin, _) = s.forwarder(SCI_F1, SCI_F2).split();
        let protected: Vec<Vec<u8>> = plain
            .iter()
            .map(|p| {
                let mut b = FrameBuf::new(p);
                twin.protect_buf(&mut b).unwrap();
                b.as_slice().to_vec()
            })
            .collect();
        let index = protected
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), i))
            .collect();
        Oracle {
            plain: plain.to_vec(),
            protected,
            index,
            first_pn: s.first_pn,
            xpn: s.cipher.is_xpn(),
            window: u64::from(s.replay_window),
            reject_duplicates: s.replay_mode == ReplayMode::RejectDuplicates,
            next_pn: 1,
            accepted: HashSet::new(),
            fates: Vec::new(),
        }
    }

    /// The PN the receiver reconstructs from the 32 bits on the wire (802.1AEbw 10.6.2):
    /// the high half of the lowest acceptable PN, plus one if that is in the upper half
    /// of its 2^32 block and the wire PN in the lower half.
    fn recovered(&self, pn: u64, lowest: u64) -> u64 {
        if !self.xpn {
            return pn;
        }
        let low = pn & 0xFFFF_FFFF;
        let mut hi = lowest >> 32;
        if lowest & 0x8000_0000 != 0 && low & 0x8000_0000 == 0 {
            hi += 1;
        }
        (hi << 32) | low
    }

    /// Checks what happened to one frame off the secure link: `out` is what the host
    /// got, `delta` how the receive counters moved.
    fn judge(&mut self, wire: &[u8], out: Option<&OwnedFrame>, delta: [u64; 8]) {
        let Some(&i) = self.index.get(wire) else {
            let i = self.origin(wire);
            assert!(out.is_none(), "a corrupted copy of frame {i} was delivered");
            assert_eq!(delta[OK], 0);
            assert_eq!(
                dropped(&delta),
                1,
                "corrupted frame {i}: counters moved {delta:?}"
            );
            let k = delta.iter().position(|&d| d == 1).unwrap();
            self.fates.push(Fate::Corrupted(i, k));
            return;
        };
        let pn = self.first_pn + i as u64;
        let lowest = self.next_pn.saturating_sub(self.window).max(1);
        let rec = self.recovered(pn, lowest);
        let verdict = if rec != pn {
            // XPN: a late frame from before a 2^32 boundary is taken for one far ahead;
            // it fails the ICV check under the wrong PN (or is late under it).
            if rec >= lowest {
                NOT_VALID
            } else {
                LATE
            }
        } else if pn < lowest || (self.reject_duplicates && self.accepted.contains(&pn)) {
            LATE
        } else {
            OK
        };
        if verdict == OK {
            let out = out.unwrap_or_else(|| {
                panic!("frame {i} (PN {pn:#x}) not delivered; counters moved {delta:?}")
            });
            assert_eq!(out.data, self.plain[i], "frame {i} delivered altered");
            assert_eq!(delta, only(OK), "frame {i} (PN {pn:#x})");
            self.next_pn = self.next_pn.max(pn + 1);
            self.accepted.insert(pn);
            self.fates.push(Fate::Delivered(i));
        } else {
            assert!(
                out.is_none(),
                "frame {i} (PN {pn:#x}) delivered again; lowest acceptable PN {lowest:#x}"
            );
            assert_eq!(
                delta,
                only(verdict),
                "frame {i} (PN {pn:#x}), lowest {lowest:#x}"
            );
            self.fates.push(Fate::Rejected(i, verdict));
        }
    }

    /// The frame a corrupted frame was copied from: the one protected frame it differs
    /// from in exactly one bit.
    fn origin(&self, wire: &[u8]) -> usize {
        let found: Vec<usize> = (0..self.protected.len())
            .filter(|&i| {
                let p = &self.protected[i];
                p.len() == wire.len()
                    && p.iter()
                        .zip(wire)
                        .map(|(a, b)| (a ^ b).count_ones())
                        .sum::<u32>()
                        == 1
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "a frame on the secure link is neither a protected frame nor one with one bit flipped"
        );
        found[0]
    }
}

/// The outcome of one run over a faulty link, after the checks every run must pass.
struct FaultRun {
    n: u64,
    link: WireCounters,
    tally: [u64; 8],
    fates: Vec<Fate>,
    /// Indices of the plain frames host B got, in order.
    delivered: Vec<usize>,
}

impl FaultRun {
    fn late(&self) -> u64 {
        self.tally[LATE]
    }

    /// Extra deliveries: frames host B got more than once, counted per extra copy.
    fn doubles(&self) -> usize {
        let distinct: HashSet<_> = self.delivered.iter().collect();
        self.delivered.len() - distinct.len()
    }

    fn increasing(&self) -> bool {
        self.delivered.windows(2).all(|w| w[0] < w[1])
    }

    /// Adjacent pairs delivered in the wrong order.
    fn inversions(&self) -> usize {
        self.delivered.windows(2).filter(|w| w[0] > w[1]).count()
    }

    fn is_all_once(&self) -> bool {
        let mut d = self.delivered.clone();
        d.sort_unstable();
        d == (0..self.n as usize).collect::<Vec<_>>()
    }
}

const MODES: [(u32, ReplayMode); 3] = [
    (0, ReplayMode::LowerBound),
    (32, ReplayMode::LowerBound),
    (32, ReplayMode::RejectDuplicates),
];

/// Sends 400 frames A -> B over a link with `faults`, judges every frame that comes off
/// it, and checks the accounting.
fn faulty_run(
    cipher: CipherSuite,
    first_pn: u64,
    faults: FaultConfig,
    (window, mode): (u32, ReplayMode),
) -> FaultRun {
    const N: usize = 400;
    let s = Setup {
        cipher,
        first_pn,
        faults,
        replay_window: window,
        replay_mode: mode,
        ..Setup::default()
    };
    let what = format!("{cipher:?} window {window} {mode:?} {faults:?}");
    let (mut ab, _) = topology(&s);
    let mut rng = Prng(faults.seed ^ 0xF00D);
    let frames: Vec<Frame> = (0..N)
        .map(|i| {
            let len = 60 + rng.below(1455);
            (
                test_frame(MAC_A, MAC_B, i as u32, len, None, &mut rng),
                meta(),
            )
        })
        .collect();
    let plain: Vec<Vec<u8>> = frames.iter().map(|f| f.0.clone()).collect();
    let mut o = Oracle::new(&s, &plain);
    ab.send_all(&frames, Some(&mut o));

    let n = N as u64;
    let l = ab.link();
    let t = tally(ab.validate.link(0).unwrap().secy(), ab.sci);
    let (pc, vc) = (ab.protect.counters(), ab.validate.counters());
    // Everything was protected and queued on the link; the link's own accounting.
    assert_eq!((pc.frames_in, pc.frames_out), (n, n), "{what}: {pc:?}");
    assert_eq!(ab.tx_sc().out_pkts_encrypted, n);
    assert_eq!(l.queued, n, "{what}: {l:?}");
    assert_eq!(l.transmitted, n - l.dropped + l.duplicated, "{what}: {l:?}");
    assert_eq!((l.full, l.lost), (0, 0), "{what}: {l:?}");
    assert_eq!(ab.on_link.len() as u64, l.transmitted);
    assert_eq!(o.fates.len() as u64, l.transmitted);
    // Frames put on the link = delivered + every discard counter.
    assert_eq!(vc.frames_in, l.transmitted, "{what}: {vc:?}");
    assert_eq!(t[OK] + dropped(&t), l.transmitted, "{what}: {t:?}");
    assert_eq!(ab.delivered.len() as u64, t[OK]);
    assert_eq!(
        (vc.frames_out, vc.secy_dropped),
        (t[OK], dropped(&t)),
        "{what}"
    );
    assert_eq!(
        leaks(ab.validate.link(0).unwrap().secy(), ab.sci),
        [0; 6],
        "{what}"
    );
    // Every original frame: lost on the wire, corrupted (all its copies), or intact.
    let mut seen = vec![false; N];
    let mut flipped = HashSet::new();
    let mut intact = HashSet::new();
    let (mut corrupted, mut rejected) = (0, 0);
    for f in &o.fates {
        match *f {
            Fate::Delivered(i) => {
                seen[i] = true;
                intact.insert(i);
            }
            Fate::Rejected(i, _) => {
                seen[i] = true;
                intact.insert(i);
                rejected += 1;
            }
            Fate::Corrupted(i, _) => {
                seen[i] = true;
                flipped.insert(i);
                corrupted += 1;
            }
        }
    }
    let never = seen.iter().filter(|s| !**s).count() as u64;
    assert_eq!(
        never, l.dropped,
        "{what}: frames missing from the link = frames dropped"
    );
    assert_eq!(
        flipped.len() as u64,
        l.bit_flips,
        "{what}: frames corrupted"
    );
    assert!(
        flipped.is_disjoint(&intact),
        "{what}: a flipped frame also arrived intact"
    );
    // The discard counters account exactly for the corrupted copies that were not
    // lost plus the intact copies replay protection rejected.
    assert_eq!(dropped(&t), corrupted + rejected, "{what}: {t:?}");
    let delivered: Vec<usize> = o
        .fates
        .iter()
        .filter_map(|f| match f {
            Fate::Delivered(i) => Some(*i),
            _ => None,
        })
        .collect();
    let run = FaultRun {
        n,
        link: l,
        tally: t,
        fates: o.fates,
        delivered,
    };
    // Replay semantics that hold whatever the faults.
    if window == 0 {
        assert!(
            run.increasing(),
            "{what}: window 0 delivers in strictly increasing order"
        );
    }
    if window == 0 || mode == ReplayMode::RejectDuplicates {
        assert_eq!(run.doubles(), 0, "{what}: no frame delivered twice");
    }
    run
}

fn fault(seed: u64, f: impl FnOnce(&mut FaultConfig)) -> FaultConfig {
    let mut c = FaultConfig {
        seed,
        ..FaultConfig::none()
    };
    f(&mut c);
    c
}

#[test]
fn faults_drop_frames_are_simply_missing() {
    for m in MODES {
        let r = faulty_run(CipherSuite::GcmAes128, 1, fault(11, |f| f.drop = 0.06), m);
        assert!(r.link.dropped > 5, "{:?}", r.link);
        assert_eq!(dropped(&r.tally), 0, "{m:?}: no discard counter moves");
        assert_eq!(r.delivered.len() as u64, r.n - r.link.dropped);
        assert!(r.increasing());
    }
}

#[test]
fn faults_duplicates_per_replay_mode() {
    for m in MODES {
        let r = faulty_run(
            CipherSuite::GcmAes128,
            1,
            fault(12, |f| f.duplicate = 0.06),
            m,
        );
        let d = r.link.duplicated;
        assert!(d > 5, "{:?}", r.link);
        match m {
            // A duplicate arrives right after its original: below the lowest
            // acceptable PN with window 0, already seen in duplicate mode.
            (0, ReplayMode::LowerBound) | (_, ReplayMode::RejectDuplicates) => {
                assert_eq!(r.late(), d, "{m:?}");
                assert_eq!(r.delivered, (0..r.n as usize).collect::<Vec<_>>());
            }
            // 802.1AE lower bound with a window: a duplicate inside the window is
            // valid and delivered again (InPktsOK).
            _ => {
                assert_eq!(r.late(), 0, "{m:?}");
                assert_eq!(r.tally[OK], r.n + d);
                assert_eq!(r.doubles() as u64, d);
                let mut distinct = r.delivered.clone();
                distinct.dedup();
                assert_eq!(distinct, (0..r.n as usize).collect::<Vec<_>>());
            }
        }
    }
}

#[test]
fn faults_reordering_per_replay_window() {
    for m in MODES {
        let r = faulty_run(
            CipherSuite::GcmAes128,
            1,
            fault(13, |f| f.reorder = 0.06),
            m,
        );
        let k = r.link.reordered;
        assert!(k > 5, "{:?}", r.link);
        if m.0 == 0 {
            // Each frame overtaken by its successor is late.
            assert_eq!(r.late(), k, "{m:?}");
            assert_eq!(r.delivered.len() as u64, r.n - k);
        } else {
            // One place out of order is inside a window of 32: all delivered, as they came.
            assert_eq!(r.late(), 0, "{m:?}");
            assert!(r.is_all_once(), "{m:?}");
            assert_eq!(r.inversions() as u64, k, "{m:?}");
        }
    }
}

#[test]
fn faults_bit_flips_are_never_delivered() {
    for m in MODES {
        let r = faulty_run(
            CipherSuite::GcmAes128,
            1,
            fault(14, |f| f.bit_flip = 0.06),
            m,
        );
        let b = r.link.bit_flips;
        assert!(b > 5, "{:?}", r.link);
        // The discard counters add up to exactly the corrupted frames.
        assert_eq!(dropped(&r.tally), b, "{m:?}: {:?}", r.tally);
        assert_eq!(r.delivered.len() as u64, r.n - b);
        assert!(r.increasing());
        assert!(
            r.tally[NOT_VALID] > 0,
            "most flips land in the ICV-covered part"
        );
        let by_counter: HashMap<&str, usize> = r
            .fates
            .iter()
            .filter_map(|f| match f {
                Fate::Corrupted(_, k) => Some(COUNTERS[*k]),
                _ => None,
            })
            .fold(HashMap::new(), |mut h, c| {
                *h.entry(c).or_default() += 1;
                h
            });
        assert_eq!(
            by_counter.values().sum::<usize>() as u64,
            b,
            "{by_counter:?}"
        );
    }
}

#[test]
fn faults_all_together() {
    let all = |seed| {
        fault(seed, |f| {
            f.drop = 0.05;
            f.duplicate = 0.05;
            f.reorder = 0.05;
            f.bit_flip = 0.05;
        })
    };
    // XPN-256 crosses the 2^32 PN boundary in the middle of the run.
    let suites = [
        (CipherSuite::GcmAes128, 1, 15),
        (CipherSuite::GcmAesXpn256, 0xFFFF_FF00, 16),
    ];
    for (cipher, first_pn, seed) in suites {
        for m in MODES {
            let r = faulty_run(cipher, first_pn, all(seed), m);
            let l = r.link;
            assert!(
                l.dropped > 0 && l.duplicated > 0 && l.reordered > 0 && l.bit_flips > 0,
                "{l:?}"
            );
            if m == (32, ReplayMode::LowerBound) {
                assert!(
                    r.doubles() > 0,
                    "lower bound: duplicates inside the window pass"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// 3. GSO and 4. checksum completion
// ---------------------------------------------------------------------------------

fn ip_header_sum(h: &[u8]) -> u16 {
    let mut s: u32 = h.chunks(2).map(|c| u32::from(be16(c, 0))).sum();
    while s >> 16 != 0 {
        s = (s & 0xFFFF) + (s >> 16);
    }
    s as u16
}

/// A frame from A's MAC to B's carrying an IPv4 or IPv6 packet of protocol `proto` whose
/// transport header and payload are `l4`; the IPv4 header checksum holds garbage.
fn ip_frame(v6: bool, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = [MAC_B, MAC_A].concat();
    if v6 {
        f.extend_from_slice(&[0x86, 0xDD, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        f.extend_from_slice(&[proto, 64]);
        f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    } else {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0x1C, 0x46, 0x40, 0, 64, proto, 0xBE, 0xEF]);
        f.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 2]);
    }
    f.extend_from_slice(l4);
    f
}

/// An IPv4 or IPv6 TCP frame (PSH|ACK, sequence number about to wrap) with `payload`;
/// the TCP checksum (and the IPv4 header checksum) hold garbage.
fn tcp_frame(v6: bool, payload: &[u8]) -> Vec<u8> {
    let mut l4 = vec![0x9C, 0x40, 0x14, 0x51]; // ports 40000 -> 5201
    l4.extend_from_slice(&0xFFFF_F000u32.to_be_bytes()); // seq
    l4.extend_from_slice(&[0, 0, 0, 1, 0x50, 0x18, 0xFF, 0xFF, 0xDE, 0xAD, 0, 0]);
    l4.extend_from_slice(payload);
    ip_frame(v6, 6, &l4)
}

/// Checks the segments host B got for the super-frame `orig` (as the protecting pump
/// saw it, tags included): MTU-sized, checksums right, headers advanced as the kernel's
/// GSO would, payloads concatenating to the original.
fn check_segments(orig: &[u8], segs: &[Vec<u8>], mtu: usize) {
    let l3 = if matches!(be16(orig, 12), 0x8100 | 0x88A8) {
        18
    } else {
        14
    };
    let v6 = be16(orig, l3 - 2) == 0x86DD;
    let l4 = l3 + if v6 { 40 } else { 20 };
    let hdr = l4 + 20;
    let payload = &orig[hdr..];
    let mss = mtu - (hdr - l3);
    assert_eq!(segs.len(), payload.len().div_ceil(mss), "segment count");
    let seq0 = be32(orig, l4 + 4);
    let mut joined = Vec::new();
    for (k, seg) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        assert_eq!(seg[..l3], orig[..l3], "segment {k}: addresses and tags");
        if last {
            assert!(seg.len() - l3 <= mtu);
        } else {
            assert_eq!(seg.len() - l3, mtu, "segment {k} is full-sized");
        }
        assert_eq!(csum::verify(seg), Ok(true), "segment {k}: TCP checksum");
        if v6 {
            assert_eq!(seg[l3..l3 + 4], orig[l3..l3 + 4]);
            assert_eq!(
                usize::from(be16(seg, l3 + 4)),
                seg.len() - l4,
                "payload length"
            );
            assert_eq!(seg[l3 + 6..l4], orig[l3 + 6..l4]);
        } else {
            assert_eq!(
                usize::from(be16(seg, l3 + 2)),
                seg.len() - l3,
                "total length"
            );
            assert_eq!(
                be16(seg, l3 + 4),
                be16(orig, l3 + 4).wrapping_add(k as u16),
                "IP ID"
            );
            assert_eq!(
                ip_header_sum(&seg[l3..l4]),
                0xFFFF,
                "segment {k}: IPv4 header checksum"
            );
            assert_eq!(seg[l3 + 6..l3 + 10], orig[l3 + 6..l3 + 10]);
            assert_eq!(seg[l3 + 12..l4], orig[l3 + 12..l4]);
        }
        assert_eq!(seg[l4..l4 + 4], orig[l4..l4 + 4], "ports");
        assert_eq!(
            be32(seg, l4 + 4),
            seq0.wrapping_add(joined.len() as u32),
            "seq"
        );
        assert_eq!(
            seg[l4 + 8..l4 + 13],
            orig[l4 + 8..l4 + 13],
            "ack, data offset"
        );
        let flags = if last {
            orig[l4 + 13]
        } else {
            orig[l4 + 13] & !0x09
        };
        assert_eq!(seg[l4 + 13], flags, "segment {k}: PSH/FIN only on the last");
        assert_eq!(seg[l4 + 14..l4 + 16], orig[l4 + 14..l4 + 16], "window");
        joined.extend_from_slice(&seg[hdr..]);
    }
    assert!(joined == payload, "payloads concatenate to the original");
}

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut v = Vec::new();
    Prng(seed).fill(&mut v, len);
    v
}

/// Checks the counters of a path that carried one super-frame cut into `segs` segments.
fn check_gso_counters(p: &Path, segs: u64) {
    let pc = p.protect.counters();
    assert_eq!(
        (pc.frames_in, pc.gso_frames, pc.gso_segments),
        (1, 1, segs),
        "{pc:?}"
    );
    assert_eq!(pc.frames_out, segs);
    assert_eq!(
        pc.oversize + pc.tx_errors + pc.secy_dropped + pc.tx_ring_full,
        0
    );
    assert_eq!(p.tx_sc().out_pkts_encrypted, segs);
    assert_eq!(p.rx_sc().in_pkts_ok, segs);
    assert_eq!(p.validate.counters().frames_out, segs);
}

#[test]
fn gso_super_frames_of_40000_octets_become_mtu_segments() {
    let s = Setup::default();
    for v6 in [false, true] {
        let (f1_tx, _) = s.forwarder(SCI_F1, SCI_F2).split();
        let (_, f2_rx) = s.forwarder(SCI_F2, SCI_F1).split();
        // 40,054 octets do not fit a mem wire's buffers: the host side is a queue.
        let mut p = Path::new(&s, f1_tx, f2_rx, true);
        let f = tcp_frame(v6, &payload(40_000, 3));
        assert!(f.len() > TX_SLOT_LEN);
        assert_eq!(
            csum::verify(&f),
            Ok(false),
            "starts with a garbage checksum"
        );
        let m = FrameMeta {
            csum_not_ready: true,
            ..meta()
        };
        p.send_all(&[(f.clone(), m)], None);
        let segs = p.delivered_data();
        check_segments(&f, &segs, s.plain_mtu);
        assert_eq!(
            segs.len(),
            28,
            "40000 / {} rounded up",
            if v6 { 1440 } else { 1460 }
        );
        check_gso_counters(&p, 28);
        for (w, seg) in p.on_link.iter().zip(&segs) {
            assert_eq!(w.len(), seg.len() + OVERHEAD);
            assert!(w.len() <= 14 + s.plain_mtu + OVERHEAD);
        }
    }
}

#[test]
fn gso_over_a_mem_wire_with_a_stripped_vlan_tag() {
    let s = Setup::default();
    let (mut ab, _) = topology(&s);
    let f = tcp_frame(false, &payload(8000, 4));
    let m = FrameMeta {
        csum_not_ready: true,
        vlan_tci: Some(0x0123),
        vlan_tpid: macsec::wire::ethernet::ethertype::VLAN,
        ..meta()
    };
    ab.send_all(&[(f.clone(), m)], None);
    let tagged = with_tag(&f, macsec::wire::ethernet::ethertype::VLAN, 0x0123);
    check_segments(&tagged, &ab.delivered_data(), s.plain_mtu);
    check_gso_counters(&ab, 6);
}

/// A 1,000-octet UDP or TCP frame over IPv4 or IPv6 whose transport checksum holds
/// garbage; returns it and the checksum field's offset.
fn l4_frame(v6: bool, tcp: bool) -> (Vec<u8>, usize) {
    const LEN: usize = 1000;
    let mut f = [MAC_B, MAC_A].concat();
    let l3 = 14;
    let l4 = l3 + if v6 { 40 } else { 20 };
    let l4_len = LEN - l4;
    let proto = if tcp { 6 } else { 17 };
    if v6 {
        f.extend_from_slice(&[0x86, 0xDD, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[proto, 64]);
        f.extend_from_slice(&[0xfd; 16]);
        f.extend_from_slice(&[0xfe; 16]);
    } else {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&((LEN - l3) as u16).to_be_bytes());
        f.extend_from_slice(&[
            0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        let c = !ip_header_sum(&f[l3..l4]);
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    let field = if tcp {
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18]);
        f.extend_from_slice(&[0xFA, 0xF0, 0xBA, 0xD1, 0, 0]);
        l4 + 16
    } else {
        f.extend_from_slice(&[0x13, 0x88, 0x00, 0x35]);
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[0xBA, 0xD1]);
        l4 + 6
    };
    Prng(l4_len as u64 + proto as u64).fill(&mut f, LEN);
    (f, field)
}

#[test]
fn checksums_left_for_offload_are_completed() {
    let s = Setup::default();
    let (mut ab, _) = topology(&s);
    let not_ready = FrameMeta {
        csum_not_ready: true,
        ..meta()
    };
    let mut frames = Vec::new();
    let mut expect = Vec::new(); // (frame as B must see it, checksum field)
    for (v6, tcp) in [(false, false), (false, true), (true, false), (true, true)] {
        let (f, at) = l4_frame(v6, tcp);
        assert_eq!(f.len(), 1000);
        assert_eq!(
            csum::verify(&f),
            Ok(false),
            "v6 {v6} tcp {tcp}: garbage to start with"
        );
        expect.push((f.clone(), Some(at)));
        frames.push((f, not_ready));
    }
    // The kernel stripped the tag: it is put back before the checksum is completed.
    let (f, at) = l4_frame(false, true);
    let m = FrameMeta {
        vlan_tci: Some(0x0042),
        ..not_ready
    };
    expect.push((
        with_tag(&f, macsec::wire::ethernet::ethertype::VLAN, 0x0042),
        Some(at + 4),
    ));
    frames.push((f, m));
    // Not IP: nothing to complete; sent as it was and counted as a failure.
    let other = test_frame(MAC_A, MAC_B, 9, 60, None, &mut Prng(5));
    expect.push((other.clone(), None));
    frames.push((other, not_ready));

    ab.send_all(&frames, None);
    let got = ab.delivered_data();
    assert_eq!(got.len(), expect.len());
    for (k, (g, (e, at))) in got.iter().zip(&expect).enumerate() {
        assert_eq!(g.len(), e.len(), "frame {k}");
        match at {
            Some(at) => {
                assert_eq!(csum::verify(g), Ok(true), "frame {k}: checksum completed");
                assert_eq!(g[..*at], e[..*at], "frame {k}");
                assert_eq!(
                    g[at + 2..],
                    e[at + 2..],
                    "frame {k}: only the checksum changed"
                );
            }
            None => assert_eq!(g, e, "frame {k}"),
        }
    }
    let pc = ab.protect.counters();
    assert_eq!((pc.csum_completed, pc.csum_failed), (6, 1), "{pc:?}");
    assert_eq!(ab.rx_sc().in_pkts_ok, 6);
}

// ---------------------------------------------------------------------------------
// 5. VLAN tags
// ---------------------------------------------------------------------------------

#[test]
fn stripped_vlan_tags_are_reinserted() {
    let s = Setup::default();
    let (mut ab, _) = topology(&s);
    let mut rng = Prng(6);
    let tags = [
        (macsec::wire::ethernet::ethertype::VLAN, 0x2064),
        (macsec::wire::ethernet::ethertype::QINQ, 0xE00A),
    ];
    let mut frames = Vec::new();
    let mut expect = Vec::new();
    for (k, (tpid, tci)) in tags.into_iter().enumerate() {
        let f = test_frame(MAC_A, MAC_B, k as u32, 200, None, &mut rng);
        expect.push(with_tag(&f, tpid, tci));
        let m = FrameMeta {
            vlan_tci: Some(tci),
            vlan_tpid: tpid,
            ..meta()
        };
        frames.push((f, m));
    }
    ab.send_all(&frames, None);
    assert_eq!(ab.delivered_data(), expect);
    for (w, e) in ab.on_link.iter().zip(&expect) {
        assert_eq!(w.len(), e.len() + OVERHEAD);
        assert_eq!(be16(w, 12), 0x88E5, "no tag in clear: it travels encrypted");
    }
}

/// The frame from the host, its metadata, the frame B must get, the tag in clear.
type VlanCase = (Vec<u8>, FrameMeta, Vec<u8>, Option<[u8; 4]>);

#[test]
fn vlan_in_clear_keeps_one_tag_in_clear_on_the_link() {
    let s = Setup {
        vlan_in_clear: 1,
        ..Setup::default()
    };
    let (ab, ba) = topology(&s);
    for (mut p, src, dst) in [(ab, MAC_A, MAC_B), (ba, MAC_B, MAC_A)] {
        let mut rng = Prng(7);
        let f = |seq, tag, rng: &mut Prng| test_frame(src, dst, seq, 300, tag, rng);
        let cases: Vec<VlanCase> = vec![
            {
                let d = f(
                    0,
                    Some((macsec::wire::ethernet::ethertype::VLAN, 0x0005)),
                    &mut rng,
                );
                (d.clone(), meta(), d, Some([0x81, 0x00, 0x00, 0x05]))
            },
            {
                let d = f(1, None, &mut rng);
                let m = FrameMeta {
                    vlan_tci: Some(0x0007),
                    vlan_tpid: macsec::wire::ethernet::ethertype::QINQ,
                    ..meta()
                };
                let e = with_tag(&d, macsec::wire::ethernet::ethertype::QINQ, 0x0007);
                (d, m, e, Some([0x88, 0xA8, 0x00, 0x07]))
            },
            {
                // QinQ: the outer tag in clear, the inner one encrypted.
                let inner = f(
                    2,
                    Some((macsec::wire::ethernet::ethertype::VLAN, 0x0020)),
                    &mut rng,
                );
                let d = with_tag(&inner, macsec::wire::ethernet::ethertype::QINQ, 0x0010);
                (d.clone(), meta(), d, Some([0x88, 0xA8, 0x00, 0x10]))
            },
            {
                let d = f(3, None, &mut rng);
                (d.clone(), meta(), d, None)
            },
        ];
        let frames: Vec<Frame> = cases.iter().map(|c| (c.0.clone(), c.1)).collect();
        p.send_all(&frames, None);
        let expect: Vec<Vec<u8>> = cases.iter().map(|c| c.2.clone()).collect();
        assert_eq!(p.delivered_data(), expect, "arrive intact, tags included");
        assert_eq!(p.on_link.len(), cases.len());
        for (k, (w, c)) in p.on_link.iter().zip(&cases).enumerate() {
            assert_eq!(w.len(), c.2.len() + OVERHEAD, "case {k}");
            assert_eq!(w[..12], c.2[..12]);
            match c.3 {
                Some(tag) => {
                    assert_eq!(w[12..16], tag, "case {k}: the tag right after the SA");
                    assert_eq!(be16(w, 16), 0x88E5, "case {k}: then the SecTAG");
                }
                None => assert_eq!(be16(w, 12), 0x88E5, "case {k}"),
            }
        }
        assert_eq!(p.rx_sc().in_pkts_ok, cases.len() as u64);
    }
}

// ---------------------------------------------------------------------------------
// 6. EAPOL on the secure port
// ---------------------------------------------------------------------------------

fn eapol(tag: Option<(u16, u16)>) -> Vec<u8> {
    // EAPOL-Start to the PAE group address.
    let mut f = vec![0x01, 0x80, 0xC2, 0x00, 0x00, 0x03];
    f.extend_from_slice(&MAC_A);
    if let Some((tpid, tci)) = tag {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&[0x88, 0x8E, 0x03, 0x01, 0x00, 0x00]);
    f.resize(60, 0);
    f
}

#[test]
fn eapol_on_the_secure_port_is_left_to_the_kay() {
    for vlan_in_clear in [0u8, 1] {
        let s = Setup {
            vlan_in_clear,
            ..Setup::default()
        };
        let (mut ab, _) = topology(&s);
        let mut rng = Prng(8);
        let frames: Vec<Frame> = (0..5)
            .map(|i| (test_frame(MAC_A, MAC_B, i, 100, None, &mut rng), meta()))
            .collect();
        let protected = ab.protect_only(&frames);
        assert_eq!(protected.len(), 5);
        let e = if vlan_in_clear == 1 {
            // With a tag kept in clear, MKPDUs carry it too.
            eapol(Some((macsec::wire::ethernet::ethertype::VLAN, 0x0005)))
        } else {
            eapol(None)
        };
        let mixed = vec![
            e.clone(),
            protected[0].clone(),
            protected[1].clone(),
            e.clone(),
            protected[2].clone(),
            protected[3].clone(),
            e.clone(),
            protected[4].clone(),
        ];
        ab.feed_link(&mixed);
        let sent: Vec<Vec<u8>> = frames.iter().map(|f| f.0.clone()).collect();
        assert_eq!(
            ab.delivered_data(),
            sent,
            "only the protected frames reach B"
        );
        let vc = ab.validate.counters();
        assert_eq!((vc.frames_in, vc.eapol, vc.frames_out), (8, 3, 5), "{vc:?}");
        assert_eq!(vc.secy_dropped, 0, "MKPDUs are not SecY discards");
        let mut expect = [0; 8];
        expect[OK] = 5;
        assert_eq!(
            tally(ab.validate.link(0).unwrap().secy(), ab.sci),
            expect,
            "no InPktsNoTag for MKPDUs"
        );
        assert_eq!(leaks(ab.validate.link(0).unwrap().secy(), ab.sci), [0; 6]);

        // As a real receive ring reports a tagged MKPDU: the tag stripped into the
        // metadata. Whatever counts it, it must not reach B, and it must be counted once.
        let stripped = FrameMeta {
            vlan_tci: Some(0x0005),
            ..meta()
        };
        assert!(ab
            .relay_tx
            .send_frame_with_meta(&eapol(None), stripped)
            .unwrap());
        ab.validate_all();
        assert_eq!(ab.delivered.len(), 5, "a tagged MKPDU is not forwarded");
        let vc = ab.validate.counters();
        assert_eq!(vc.frames_in, 9);
        assert_eq!(vc.eapol + vc.secy_dropped + vc.frames_out, 9, "{vc:?}");
    }
}

// ---------------------------------------------------------------------------------
// 7. PN exhaustion
// ---------------------------------------------------------------------------------

#[test]
fn pn_exhaustion_stops_the_link() {
    let s = Setup {
        first_pn: 0xFFFF_FFFE,
        ..Setup::default()
    };
    let (mut ab, _) = topology(&s);
    let mut rng = Prng(9);
    let frames: Vec<Frame> = (0..7)
        .map(|i| (test_frame(MAC_A, MAC_B, i, 80, None, &mut rng), meta()))
        .collect();
    ab.send_all(&frames[..4], None);
    ab.send_all(&frames[4..], None); // a later batch: still nothing
    let sent: Vec<Vec<u8>> = frames.iter().map(|f| f.0.clone()).collect();
    assert_eq!(ab.delivered_data(), sent[..2], "exactly two frames");
    let pns: Vec<u32> = ab.on_link.iter().map(|w| be32(w, 16)).collect();
    assert_eq!(pns, [0xFFFF_FFFE, 0xFFFF_FFFF]);
    assert_eq!(ab.link().queued, 2, "nothing more reached the secure link");
    let y = ab.protect.link(0).unwrap().secy().secy_counters();
    assert_eq!(y.out_pkts_pn_exhausted, 5);
    assert_eq!(ab.tx_sc().out_pkts_encrypted, 2);
    let pc = ab.protect.counters();
    assert_eq!(
        (pc.frames_in, pc.frames_out, pc.secy_dropped),
        (7, 2, 5),
        "{pc:?}"
    );
    assert_eq!(ab.protect.link(0).unwrap().secy().next_pn(0), Ok(None));
    let events: Vec<TxEvent> =
        std::iter::from_fn(|| ab.protect.link_mut(0).unwrap().secy_mut().poll_event()).collect();
    assert!(
        events.contains(&TxEvent::PnExhausted { an: 0 }),
        "{events:?}"
    );
    assert_eq!(ab.rx_sc().in_pkts_ok, 2);
}

/// A UDP GSO super-frame (`UDP_SEGMENT`) as a local sender hands it over: one UDP header
/// for the whole payload, its checksum left for offload.
fn udp_super_frame(v6: bool, payload: &[u8]) -> Vec<u8> {
    let mut l4 = vec![0x11, 0x51, 0x01, 0xBB]; // ports 4433 -> 443
    l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    l4.extend_from_slice(&[0xBA, 0xD1]);
    l4.extend_from_slice(payload);
    ip_frame(v6, 17, &l4)
}

#[test]
fn udp_gso_super_frames_become_the_senders_datagrams() {
    let s = Setup::default();
    for (v6, tag) in [(false, None), (true, None), (false, Some(0x0042u16))] {
        let (f1_tx, _) = s.forwarder(SCI_F1, SCI_F2).split();
        let (_, f2_rx) = s.forwarder(SCI_F2, SCI_F1).split();
        let mut p = Path::new(&s, f1_tx, f2_rx, true);
        let data = payload(5_300, 7);
        let f = udp_super_frame(v6, &data);
        let m = FrameMeta {
            csum_not_ready: true,
            vlan_tci: tag,
            gso: Some(Gso::Udp { size: 1200 }),
            ..meta()
        };
        p.send_all(&[(f, m)], None);
        let got = p.delivered_data();
        // 5,300 octets of 1,200: four full datagrams and one of 500.
        let l3 = if tag.is_some() { 18 } else { 14 };
        let l4 = l3 + if v6 { 40 } else { 20 };
        let sizes: Vec<usize> = got.iter().map(|d| d.len() - l4 - 8).collect();
        assert_eq!(sizes, [1200, 1200, 1200, 1200, 500], "v6={v6} tag={tag:?}");
        let mut joined = Vec::new();
        for d in &got {
            assert_eq!(csum::verify(d), Ok(true), "UDP checksum of every datagram");
            assert_eq!(be16(d, l4 + 4) as usize, d.len() - l4, "UDP length");
            if tag.is_some() {
                assert_eq!(be16(d, 12), 0x8100);
                assert_eq!(be16(d, 14), 0x0042, "the stripped tag is back");
            }
            joined.extend_from_slice(&d[l4 + 8..]);
        }
        assert_eq!(joined, data);
        check_gso_counters(&p, 5);
    }
}

#[test]
fn tso_super_frames_are_cut_at_the_senders_mss() {
    let s = Setup::default();
    let (f1_tx, _) = s.forwarder(SCI_F1, SCI_F2).split();
    let (_, f2_rx) = s.forwarder(SCI_F2, SCI_F1).split();
    let mut p = Path::new(&s, f1_tx, f2_rx, true);
    let f = tcp_frame(false, &payload(4_000, 8));
    let m = FrameMeta {
        csum_not_ready: true,
        gso: Some(Gso::Tcp { size: 536 }),
        ..meta()
    };
    p.send_all(&[(f.clone(), m)], None);
    let segs = p.delivered_data();
    // Checked as if the MTU were 576 (536 + IPv4 and TCP headers), although the plain
    // MTU would allow 1,460 octets per segment: 4,000 / 536 rounded up.
    check_segments(&f, &segs, 576);
    assert_eq!(segs.len(), 8);
    assert!(segs.iter().all(|d| d.len() - 14 - 40 <= 536));
    check_gso_counters(&p, 8);
}

//! Property tests: round trip, bit flips, and the replay window against a reference model.

use crate::util::framed;
use macsec::crypto::{Backend, CipherSuite, Salt, SecretKey, Ssci};
use macsec::secy::*;
use macsec::wire::Sci;
use proptest::prelude::*;
use std::collections::BTreeSet;

const A: &str = "5254001234010001";
const B: &str = "5254001234020001";

#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub(crate) cipher: CipherSuite,
    pub(crate) protection: Protection,
    pub(crate) send_sci: bool,
    pub(crate) end_station: bool,
    pub(crate) vlan_in_clear: u8,
    pub(crate) tags_in_frame: u8,
    pub(crate) backend: Backend,
    pub(crate) pn: u64,
}

pub(crate) fn params() -> impl Strategy<Value = Params> {
    (
        prop::sample::select(CipherSuite::ALL.to_vec()),
        prop::sample::select(vec![
            Protection::IntegrityOnly,
            Protection::Confidentiality(ConfidentialityOffset::Zero),
            Protection::Confidentiality(ConfidentialityOffset::Thirty),
            Protection::Confidentiality(ConfidentialityOffset::Fifty),
        ]),
        0u8..3,
        0u8..3,
        0u8..3,
        prop::sample::select(Backend::ALL.to_vec()),
        prop_oneof![
            Just(1u64),
            Just(0xFFFF_FFF0),
            1u64..u32::MAX as u64,
            Just(0x1_0000_0000)
        ],
    )
        .prop_map(
            |(cipher, protection, sci_mode, vlan, tags, backend, pn)| Params {
                cipher,
                protection,
                send_sci: sci_mode != 1,
                end_station: sci_mode == 1,
                vlan_in_clear: vlan,
                tags_in_frame: tags,
                backend,
                pn: if cipher.is_xpn() {
                    pn
                } else {
                    pn.min(u32::MAX as u64)
                },
            },
        )
}

pub(crate) fn key_for(c: CipherSuite) -> SecretKey {
    SecretKey::from_slice(&[0x5Au8; 32][..c.key_len()]).unwrap()
}

pub(crate) fn xpn_for(c: CipherSuite, ssci: u32) -> Option<XpnParams> {
    c.is_xpn().then_some(XpnParams {
        ssci: Ssci(ssci),
        salt: Salt([7; 12]),
    })
}

/// Transmitter on A, receiver on B with an RX SC for A.
pub(crate) fn pair(p: &Params, validate: ValidateFrames) -> (SecY, SecY) {
    let a: Sci = A.parse().unwrap();
    let b: Sci = B.parse().unwrap();
    let cfg = |sci| {
        let mut conf = SecYConfig::default();
        conf.cipher = p.cipher;
        conf.protection = p.protection;
        conf.send_sci = p.send_sci;
        conf.end_station = p.end_station;
        conf.vlan_in_clear = p.vlan_in_clear;
        conf.validate = validate;
        conf.sci = sci;
        conf.backend = p.backend;
        conf
    };
    let key = key_for(p.cipher);
    let mut tx = SecY::new(cfg(a)).unwrap();
    tx.tx
        .install_sa(2, &key, p.pn, xpn_for(p.cipher, 1))
        .unwrap();
    tx.tx.set_encoding_sa(2).unwrap();
    let mut rx = SecY::new(cfg(b)).unwrap();
    rx.rx.add_sc(a).unwrap();
    rx.rx
        .install_sa(a, 2, &key, p.pn, xpn_for(p.cipher, 1))
        .unwrap();
    (tx, rx)
}

/// DA, SA = A's MAC, `tags` VLAN tags, EtherType, payload.
pub(crate) fn ether(tags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x01, 0x80, 0xC2, 0, 0, 0x10];
    f.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x01]);
    for t in 0..tags {
        f.extend_from_slice(&[
            if t == 0 { 0x88 } else { 0x81 },
            if t == 0 { 0xA8 } else { 0x00 },
            0,
            10 + t,
        ]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(payload);
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// open(seal(f)) == f for any frame, suite, offset, mode, SCI mode, clear tags, backend.
    #[test]
    fn seal_then_open_restores_the_frame(p in params(), payload in prop::collection::vec(any::<u8>(), 0..1600)) {
        let (mut tx, mut rx) = pair(&p, ValidateFrames::Strict);
        let plain = ether(p.tags_in_frame, &payload);
        let (mut buf, r) = framed(&plain);
        let out = tx.tx.protect(&mut buf, r).expect("protect");
        prop_assert_eq!(out.len(), plain.len() + if p.send_sci { 32 } else { 24 });
        let (v, back) = rx.rx.validate(&mut buf, out);
        prop_assert_eq!(v, RxVerdict::Ok);
        prop_assert_eq!(&buf[back.unwrap()], &plain[..]);
    }

    /// Any single-bit flip in the protected part of a frame (everything but the VLAN tags
    /// kept in clear) is rejected under Strict, whatever counter it lands in.
    #[test]
    fn any_single_bit_flip_is_rejected(p in params(), payload in prop::collection::vec(any::<u8>(), 0..200), bit in any::<prop::sample::Index>()) {
        let (mut tx, mut rx) = pair(&p, ValidateFrames::Strict);
        let plain = ether(p.tags_in_frame, &payload);
        let (mut buf, r) = framed(&plain);
        let out = tx.tx.protect(&mut buf, r).unwrap();
        let clear = 4 * p.vlan_in_clear.min(p.tags_in_frame) as usize;
        let covered: Vec<usize> = (0..out.len() * 8)
            .filter(|b| !(12..12 + clear).contains(&(b / 8)))
            .collect();
        let b = covered[bit.index(covered.len())];
        buf[out.start + b / 8] ^= 1 << (b % 8);
        let (v, back) = rx.rx.validate(&mut buf, out);
        prop_assert!(!v.is_delivered(), "bit {} delivered as {:?}", b, v);
        prop_assert!(back.is_none());
    }

    /// Every prefix of a protected frame (and random junk) yields a verdict, never a
    /// panic, and is never delivered.
    #[test]
    fn truncated_frames_are_rejected(p in params(), payload in prop::collection::vec(any::<u8>(), 0..100), cut in any::<prop::sample::Index>()) {
        let (mut tx, mut rx) = pair(&p, ValidateFrames::Strict);
        let plain = ether(p.tags_in_frame, &payload);
        let (mut buf, r) = framed(&plain);
        let out = tx.tx.protect(&mut buf, r).unwrap();
        let n = cut.index(out.len());
        let (v, _) = rx.rx.validate(&mut buf, out.start..out.start + n);
        prop_assert!(!v.is_delivered() || n < 14 + 4 * p.vlan_in_clear as usize, "{:?}", v);
    }
}

/// The 802.1AE replay rule as a model: accepted PNs and the lower bound.
struct Model {
    next: u128,
    floor: u128,
    window: u128,
    seen: BTreeSet<u64>,
    reject_dups: bool,
}

impl Model {
    fn lowest(&self) -> u128 {
        self.next.saturating_sub(self.window).max(self.floor)
    }
    fn offer(&mut self, pn: u64) -> bool {
        let ok = (pn as u128) >= self.lowest() && !(self.reject_dups && self.seen.contains(&pn));
        if ok {
            self.seen.insert(pn);
            self.next = self.next.max(pn as u128 + 1);
        }
        ok
    }
}

fn pn_sequence() -> impl Strategy<Value = (u64, Vec<i64>)> {
    (
        prop_oneof![
            Just(1u64),
            Just(0xFFFF_FF00u64),
            Just(0x7FFF_FF00u64),
            Just(0x1_FFFF_FF00u64),
            Just(u64::MAX - 600)
        ],
        prop::collection::vec(-80i64..300, 1..120),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The receive path with real frames and XPN PN recovery (only the low 32 bits travel)
    /// matches the reference model, around 2^31, 2^32, 2^33 and the end of the PN space.
    #[test]
    fn replay_window_matches_model(
        (base, steps) in pn_sequence(),
        window in prop_oneof![Just(0u32), Just(1), Just(32), 0u32..200],
        reject_dups in any::<bool>(),
        xpn in any::<bool>(),
    ) {
        let cipher = if xpn { CipherSuite::GcmAesXpn128 } else { CipherSuite::GcmAes128 };
        let max = cipher.max_pn();
        if !xpn && base > u32::MAX as u64 - 400 { return Ok(()); }
        let a: Sci = A.parse().unwrap();
        let key = key_for(cipher);
        let mode = if reject_dups { ReplayMode::RejectDuplicates } else { ReplayMode::LowerBound };
        let cfg = { let mut conf = SecYConfig::default(); conf.cipher = cipher; conf.replay_window = window; conf.replay_mode = mode; conf.sci = a; conf };
        let mut rx = SecY::new(cfg.clone()).unwrap();
        rx.rx.add_sc(a).unwrap();
        rx.rx.install_sa(a, 0, &key, base, xpn_for(cipher, 9)).unwrap();
        let mut model = Model { next: base as u128, floor: base as u128, window: window as u128, seen: BTreeSet::new(), reject_dups };
        let mut tx = SecY::new(cfg).unwrap();
        let mut cur = base as i128;
        for s in steps {
            cur = (cur + s as i128).clamp(1, max as i128);
            let pn = cur as u64;
            // One transmit SA per PN: the sender's PN is whatever the network delivers.
            tx.tx.install_sa(0, &key, pn, xpn_for(cipher, 9)).unwrap();
            let (mut buf, r) = framed(&ether(0, &pn.to_be_bytes()));
            let out = tx.tx.protect(&mut buf, r).unwrap();
            let (v, _) = rx.rx.validate(&mut buf, out);
            // 802.1AEbw: the receiver sees only the low 32 bits and recovers the rest from
            // the lowest acceptable PN; a PN from before that 2^32 block comes out 2^32 too
            // high and fails the ICV (notes section 4.3, example A).
            let lowest = model.lowest().min(u64::MAX as u128) as u64;
            let recovered = if xpn {
                let mut hi = (lowest >> 32) as u128;
                if lowest & 0x8000_0000 != 0 && pn & 0x8000_0000 == 0 { hi += 1; }
                (hi << 32) | (pn & 0xFFFF_FFFF) as u128
            } else {
                pn as u128
            };
            let expect = if recovered != pn as u128 {
                if recovered > u64::MAX as u128 { RxVerdict::Late } else { RxVerdict::NotValid }
            } else if model.offer(pn) {
                RxVerdict::Ok
            } else {
                RxVerdict::Late
            };
            prop_assert_eq!(v, expect, "pn {:#x} lowest {:#x}", pn, lowest);
        }
    }

    /// The window type alone, with arbitrary 64-bit jumps (no recovery involved).
    #[test]
    fn replay_window_type_matches_model(
        start in 1u64..u64::MAX,
        pns in prop::collection::vec(any::<u64>(), 1..200),
        window in 0u32..5000,
        reject_dups in any::<bool>(),
    ) {
        let mode = if reject_dups { ReplayMode::RejectDuplicates } else { ReplayMode::LowerBound };
        let mut w = ReplayWindow::new(start, window, mode);
        let mut m = Model { next: start as u128, floor: start as u128, window: window as u128, seen: BTreeSet::new(), reject_dups };
        for pn in pns {
            let ok = w.check(pn);
            prop_assert_eq!(ok, m.offer(pn), "pn {}", pn);
            if ok { w.commit(pn); }
        }
    }
}

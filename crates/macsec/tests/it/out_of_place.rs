//! The out-of-place API (`Transmitter::protect_into`, `Receiver::validate_into`) against
//! the in-place one: every Annex C and DPDK frame through both backends with the frame
//! split into head ‖ body at many points, and property tests that the two give the same
//! octets, verdicts, PNs and counters for any frame, corrupted or not.

use crate::props::{ether, pair, params};
use crate::util::*;
use crate::vectors::{clear_tags, extra, secy_for, Setup};
use macsec::crypto::Backend;
use macsec::secy::*;
use proptest::prelude::*;

/// The points at which a frame of `len` octets is split into head ‖ body.
fn splits(len: usize) -> Vec<usize> {
    let mut v = vec![0, 6, 12, 13, 14, 16, 30, 47, 64, len.saturating_sub(1), len];
    v.retain(|&s| s <= len);
    v.sort_unstable();
    v.dedup();
    v
}

fn protect_in_place(secy: &mut SecY, frame: &[u8]) -> Result<Vec<u8>, TxDrop> {
    let (mut b, r) = framed(frame);
    let out = secy.tx.protect(&mut b, r)?;
    Ok(b[out].to_vec())
}

fn validate_in_place(secy: &mut SecY, frame: &[u8]) -> (RxVerdict, Option<Vec<u8>>) {
    let (mut b, r) = framed(frame);
    let (v, out) = secy.rx.validate(&mut b, r);
    (v, out.map(|r| b[r].to_vec()))
}

fn protect_into(secy: &mut SecY, frame: &[u8], split: usize) -> Result<Vec<u8>, TxDrop> {
    let mut out = vec![0x55u8; frame.len() + 64];
    let r = secy
        .tx
        .protect_into(&frame[..split], &frame[split..], &mut out)?;
    Ok(out[r].to_vec())
}

fn validate_into(secy: &mut SecY, frame: &[u8]) -> (RxVerdict, Option<Vec<u8>>) {
    let mut out = vec![0x55u8; frame.len()];
    let (v, r) = secy.rx.validate_into(frame, &mut out);
    (v, r.map(|r| out[r].to_vec()))
}

fn same_counters(a: &SecY, b: &SecY) -> bool {
    format!("{:?}", a.tx.stats()) == format!("{:?}", b.tx.stats())
        && format!("{:?}", a.rx.stats()) == format!("{:?}", b.rx.stats())
}

#[test]
fn every_vector_out_of_place_at_every_split_both_backends() {
    let mut vs = load_vectors("macsec_annexc_dpdk.json");
    assert_eq!(vs.len(), 32);
    for id in ["dpdk-cipher-0", "dpdk-vlan-1", "dpdk-vlan-2", "dpdk-vlan-3"] {
        vs.push(extra(id));
    }
    let mut n = 0;
    for &b in Backend::ALL {
        for v in &vs {
            let id = v["id"].as_str().unwrap();
            let mut s = Setup::new(b);
            s.vlan_in_clear = clear_tags(v);
            let plain = hexf(v, "plaintext_frame");
            let prot = hexf(v, "protected_frame");
            let mut reference = secy_for(v, &s);
            assert_eq!(protect_in_place(&mut reference, &plain).unwrap(), prot);
            assert_eq!(validate_in_place(&mut reference, &prot).0, RxVerdict::Ok);
            for split in splits(plain.len()) {
                let mut secy = secy_for(v, &s);
                let got = protect_into(&mut secy, &plain, split)
                    .unwrap_or_else(|e| panic!("{id} split {split}: {e:?}"));
                assert_eq!(
                    hex::encode_upper(&got),
                    hex::encode_upper(&prot),
                    "{id} seal, split {split}"
                );
                let (verdict, out) = validate_into(&mut secy, &prot);
                assert_eq!(verdict, RxVerdict::Ok, "{id} open");
                assert_eq!(out.unwrap(), plain, "{id} plaintext");
                assert!(same_counters(&secy, &reference), "{id} counters");
                n += 1;
            }
        }
    }
    assert!(n >= 36 * 8 * Backend::ALL.len(), "{n}");
}

/// Every protected frame of the DPDK extra set (bad tags, ICV failures, untagged,
/// rekeys, replays), fed in order to a SecY keyed for each vector in turn, under every
/// validateFrames mode: the same verdict, octets and counters both ways.
#[test]
fn every_dpdk_frame_validates_the_same_out_of_place() {
    let vs = load_vectors("macsec_dpdk_extra.json");
    let frames: Vec<Vec<u8>> = vs.iter().map(|v| hexf(v, "protected_frame")).collect();
    for &b in Backend::ALL {
        for mode in [
            ValidateFrames::Strict,
            ValidateFrames::Check,
            ValidateFrames::Disabled,
        ] {
            for v in &vs {
                let mut s = Setup::new(b);
                s.validate = mode;
                s.vlan_in_clear = clear_tags(v);
                let (mut a, mut c) = (secy_for(v, &s), secy_for(v, &s));
                for (i, f) in frames.iter().chain(frames.iter()).enumerate() {
                    let x = validate_in_place(&mut a, f);
                    let y = validate_into(&mut c, f);
                    assert_eq!(x, y, "{} frame {i} {mode:?}", v["id"]);
                }
                assert!(same_counters(&a, &c), "{}", v["id"]);
            }
        }
    }
}

/// An output shorter than the frame: counted as a bad tag, nothing written.
#[test]
fn validate_into_a_short_output_is_a_bad_tag() {
    let v = extra("dpdk-cipher-0");
    let mut secy = secy_for(&v, &Setup::new(Backend::default()));
    let prot = hexf(&v, "protected_frame");
    let mut out = vec![0u8; prot.len() - 1];
    let (verdict, r) = secy.rx.validate_into(&prot, &mut out);
    assert!(matches!(verdict, RxVerdict::BadTag(_)) && r.is_none());
    assert_eq!(secy.rx.secy_counters().in_pkts_bad_tag, 1);
    let mut out = vec![0u8; 8];
    let err = secy.tx.protect_into(&prot[..12], &prot[12..], &mut out);
    assert_eq!(err, Err(TxDrop::Malformed));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// For any settings, frames, head/body split, corruption, replay and validateFrames
    /// mode, `protect_into`/`validate_into` give what `protect`/`validate` give: the
    /// same octets, verdicts and PNs, and at the end the same counters.
    #[test]
    fn out_of_place_equals_in_place(
        p in params(),
        mode in prop::sample::select(vec![
            ValidateFrames::Strict,
            ValidateFrames::Check,
            ValidateFrames::Disabled,
        ]),
        frames in prop::collection::vec(
            (
                prop::collection::vec(any::<u8>(), 0..300),
                any::<prop::sample::Index>(),
                prop::option::of((any::<prop::sample::Index>(), 1u8..=255)),
                prop::option::of((any::<prop::sample::Index>(), 1u8..=255)),
                0u8..4,
            ),
            1..8,
        ),
    ) {
        let (mut tx1, mut rx1) = pair(&p, mode);
        let (mut tx2, mut rx2) = pair(&p, mode);
        let mut last: Option<Vec<u8>> = None;
        for (payload, split, plain_flip, flip, what) in frames {
            let mut plain = ether(p.tags_in_frame, &payload);
            // Now and then a frame with a source address that is not the SCI's.
            if let Some((i, x)) = plain_flip.filter(|_| what == 3) {
                let k = i.index(plain.len());
                plain[k] ^= x;
            }
            let s = split.index(plain.len() + 1);
            let a = protect_in_place(&mut tx1, &plain);
            let b = protect_into(&mut tx2, &plain, s);
            prop_assert_eq!(&a, &b);
            let Ok(mut prot) = a else { continue };
            let input = match what {
                // A replay of the previous frame.
                1 => last.clone().unwrap_or_else(|| prot.clone()),
                // The plain frame itself: untagged on the secure side.
                2 => plain.clone(),
                _ => {
                    if let Some((i, x)) = flip {
                        let k = i.index(prot.len());
                        prot[k] ^= x;
                    }
                    prot.clone()
                }
            };
            let x = validate_in_place(&mut rx1, &input);
            let y = validate_into(&mut rx2, &input);
            prop_assert_eq!(x, y);
            last = Some(prot);
        }
        prop_assert!(same_counters(&tx1, &tx2));
        prop_assert!(same_counters(&rx1, &rx2));
    }
}

//! SecY behaviour: every receive path and counter per validateFrames mode, transmit
//! events (threshold, exhaustion, ceiling), MTU, padding, headroom, implicit SCIs.

use crate::util::framed;
use macsec::crypto::{CipherSuite, SecretKey};
use macsec::secy::*;
use macsec::wire::{Sci, TagError};

fn sci(s: &str) -> Sci {
    s.parse().unwrap()
}
const A: &str = "5254001234010001";
const B: &str = "5254001234020001";

fn key() -> SecretKey {
    SecretKey::from_hex("AD7A2BD03EAC835A6F620FDCB506B345").unwrap()
}

fn cfg(s: &str) -> SecYConfig {
    {
        let mut conf = SecYConfig::default();
        conf.sci = sci(s);
        conf
    }
}

fn plain(len: usize) -> Vec<u8> {
    let mut f = vec![0x11u8; len];
    f[..6].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x02]);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x01]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

fn sender(c: SecYConfig) -> SecY {
    let mut s = SecY::new(c).unwrap();
    s.tx.install_sa(0, &key(), 1, None).unwrap();
    s
}

fn receiver(c: SecYConfig) -> SecY {
    let mut r = SecY::new({
        let mut conf = c;
        conf.sci = sci(B);
        conf
    })
    .unwrap();
    r.rx.add_sc(sci(A)).unwrap();
    r.rx.install_sa(sci(A), 0, &key(), 1, None).unwrap();
    r
}

fn seal(s: &mut SecY, f: &[u8]) -> Vec<u8> {
    let (mut b, r) = framed(f);
    let o = s.tx.protect(&mut b, r).unwrap();
    b[o].to_vec()
}

fn open(r: &mut SecY, f: &[u8]) -> (RxVerdict, Option<Vec<u8>>) {
    let (mut b, rg) = framed(f);
    let (v, o) = r.rx.validate(&mut b, rg);
    (v, o.map(|o| b[o].to_vec()))
}

fn sc(r: &SecY) -> RxScCounters {
    *r.rx.sc_counters(sci(A)).unwrap()
}

#[test]
fn validate_modes_on_a_corrupted_frame() {
    for (encrypt, mode, want) in [
        (false, ValidateFrames::Strict, RxVerdict::NotValid),
        (false, ValidateFrames::Check, RxVerdict::Invalid),
        (false, ValidateFrames::Disabled, RxVerdict::Unchecked),
        (true, ValidateFrames::Strict, RxVerdict::NotValid),
        (true, ValidateFrames::Check, RxVerdict::NotValid),
        (true, ValidateFrames::Disabled, RxVerdict::NotValid),
    ] {
        let p = if encrypt {
            Protection::default()
        } else {
            Protection::IntegrityOnly
        };
        let mut s = sender({
            let mut conf = cfg(A);
            conf.protection = p;
            conf
        });
        let mut r = receiver({
            let mut conf = cfg(B);
            conf.protection = p;
            conf.validate = mode;
            conf
        });
        let mut f = seal(&mut s, &plain(100));
        f[40] ^= 0x80;
        let (v, out) = open(&mut r, &f);
        assert_eq!(v, want, "encrypt {encrypt} {mode:?}");
        assert_eq!(v.is_delivered(), out.is_some());
        let c = sc(&r);
        let sa = r.rx.sa_state(sci(A), 0).unwrap().counters;
        match want {
            RxVerdict::NotValid => assert_eq!((c.in_pkts_not_valid, sa.in_pkts_not_valid), (1, 1)),
            RxVerdict::Invalid => assert_eq!((c.in_pkts_invalid, sa.in_pkts_invalid), (1, 1)),
            RxVerdict::Unchecked => assert_eq!(c.in_pkts_unchecked, 1),
            _ => unreachable!(),
        }
        assert_eq!(c.in_pkts_ok, 0);
        // A failed frame never moves the window: the good frame with the same PN is OK.
        f[40] ^= 0x80;
        if want != RxVerdict::Unchecked {
            assert_eq!(open(&mut r, &f).0, RxVerdict::Ok);
        }
    }
}

#[test]
fn disabled_mode_does_not_move_next_pn() {
    let p = Protection::IntegrityOnly;
    let mut s = sender({
        let mut conf = cfg(A);
        conf.protection = p;
        conf
    });
    let mut r = receiver({
        let mut conf = cfg(B);
        conf.protection = p;
        conf.validate = ValidateFrames::Disabled;
        conf
    });
    let f = seal(&mut s, &plain(80));
    assert_eq!(open(&mut r, &f).0, RxVerdict::Unchecked);
    assert_eq!(open(&mut r, &f).0, RxVerdict::Unchecked);
    assert_eq!(r.rx.sa_state(sci(A), 0).unwrap().next_pn, Some(1));
}

#[test]
fn unknown_sci_and_unused_sa_per_mode() {
    for (encrypt, mode) in [
        (false, ValidateFrames::Strict),
        (false, ValidateFrames::Check),
        (true, ValidateFrames::Check),
    ] {
        let p = if encrypt {
            Protection::default()
        } else {
            Protection::IntegrityOnly
        };
        let mut s = sender({
            let mut conf = cfg(A);
            conf.protection = p;
            conf
        });
        let f = seal(&mut s, &plain(100));
        // No SC for A.
        let mut r = SecY::new({
            let mut conf = cfg(B);
            conf.protection = p;
            conf.validate = mode;
            conf
        })
        .unwrap();
        r.rx.add_sc(sci("5254001234990001")).unwrap();
        let (v, out) = open(&mut r, &f);
        let sy = r.rx.secy_counters();
        if encrypt || mode == ValidateFrames::Strict {
            assert_eq!((v, out), (RxVerdict::NoSci, None));
            assert_eq!((sy.in_pkts_no_sci, sy.in_pkts_no_sa_error), (1, 1));
        } else {
            assert_eq!(v, RxVerdict::UnknownSci);
            assert_eq!(
                out.unwrap(),
                plain(100),
                "delivered with SecTAG and ICV stripped"
            );
            assert_eq!((sy.in_pkts_unknown_sci, sy.in_pkts_no_sa), (1, 1));
        }
        // SC for A, but its AN-0 SA is not in use; an active AN-1 SA exists.
        let mut r = receiver({
            let mut conf = cfg(B);
            conf.protection = p;
            conf.validate = mode;
            conf
        });
        r.rx.install_sa(sci(A), 1, &key(), 1, None).unwrap();
        r.rx.set_sa_active(sci(A), 0, false).unwrap();
        let (v, out) = open(&mut r, &f);
        let c = sc(&r);
        let sa1 = r.rx.sa_state(sci(A), 1).unwrap().counters;
        let sy = r.rx.secy_counters();
        if encrypt || mode == ValidateFrames::Strict {
            assert_eq!((v, out), (RxVerdict::NotUsingSa, None));
            assert_eq!(
                (
                    c.in_pkts_not_using_sa,
                    sa1.in_pkts_not_using_sa,
                    sy.in_pkts_no_sa_error
                ),
                (1, 1, 1)
            );
        } else {
            assert_eq!(v, RxVerdict::UnusedSa);
            assert_eq!(out.unwrap(), plain(100));
            assert_eq!(
                (c.in_pkts_unused_sa, sa1.in_pkts_unused_sa, sy.in_pkts_no_sa),
                (1, 1, 1)
            );
        }
    }
}

#[test]
fn replay_protect_off_counts_delayed() {
    let mut s = sender(cfg(A));
    let mut r = receiver({
        let mut conf = cfg(B);
        conf.replay_protect = false;
        conf
    });
    let f1 = seal(&mut s, &plain(100));
    let f2 = seal(&mut s, &plain(100));
    assert_eq!(open(&mut r, &f2).0, RxVerdict::Ok);
    let (v, out) = open(&mut r, &f1);
    assert_eq!(v, RxVerdict::Delayed);
    assert!(out.is_some());
    assert_eq!(sc(&r).in_pkts_delayed, 1);
}

#[test]
fn replay_window_lower_bound_and_duplicates() {
    for (mode, dup_ok) in [
        (ReplayMode::LowerBound, true),
        (ReplayMode::RejectDuplicates, false),
    ] {
        let mut s = sender(cfg(A));
        let mut r = receiver({
            let mut conf = cfg(B);
            conf.replay_window = 4;
            conf.replay_mode = mode;
            conf
        });
        let fs: Vec<_> = (0..8).map(|_| seal(&mut s, &plain(64))).collect();
        assert_eq!(open(&mut r, &fs[7]).0, RxVerdict::Ok); // next_pn 9, lowest 5
        assert_eq!(open(&mut r, &fs[5]).0, RxVerdict::Ok); // PN 6: in window
        assert_eq!(open(&mut r, &fs[3]).0, RxVerdict::Late); // PN 4: below
        assert_eq!(open(&mut r, &fs[5]).0 == RxVerdict::Ok, dup_ok, "{mode:?}");
        assert_eq!(open(&mut r, &fs[7]).0 == RxVerdict::Ok, dup_ok, "{mode:?}");
    }
}

#[test]
fn too_long_frames_are_counted() {
    let mut s = sender({
        let mut conf = cfg(A);
        conf.mtu = Some(1500);
        conf
    });
    let (mut b, r) = framed(&plain(1514 - 32));
    assert!(s.tx.protect(&mut b, r).is_ok(), "1500 + 14 fits exactly");
    let (mut b, r) = framed(&plain(1514 - 31));
    assert_eq!(s.tx.protect(&mut b, r), Err(TxDrop::TooLong));
    assert_eq!(s.tx.secy_counters().out_pkts_too_long, 1);
}

#[test]
fn pn_threshold_exhaustion_and_ceiling_events() {
    let mut s = SecY::new({
        let mut conf = cfg(A);
        conf.pn_threshold = 0.5;
        conf
    })
    .unwrap();
    s.tx.install_sa(0, &key(), 0x7FFF_FFFE, None).unwrap();
    seal(&mut s, &plain(64));
    assert_eq!(s.tx.poll_event(), None);
    seal(&mut s, &plain(64)); // PN 0x7FFFFFFF = threshold
    assert_eq!(
        s.tx.poll_event(),
        Some(TxEvent::PnThreshold {
            an: 0,
            next_pn: 0x8000_0000
        })
    );
    assert_eq!(s.tx.poll_event(), None, "raised once");
    s.tx.install_sa(1, &key(), u32::MAX as u64, None).unwrap();
    s.tx.set_encoding_sa(1).unwrap();
    seal(&mut s, &plain(64)); // the last PN is sent
    let events: Vec<_> = std::iter::from_fn(|| s.tx.poll_event()).collect();
    assert_eq!(
        events,
        vec![
            TxEvent::PnExhausted { an: 1 },
            TxEvent::PnThreshold {
                an: 1,
                next_pn: u32::MAX as u64
            }
        ]
    );
    let (mut b, r) = framed(&plain(64));
    assert_eq!(s.tx.protect(&mut b, r), Err(TxDrop::PnExhausted));
    assert_eq!(s.tx.next_pn(1).unwrap(), None);
    // Ceiling: a persisted high-water mark.
    s.tx.set_encoding_sa(0).unwrap();
    let next = s.tx.next_pn(0).unwrap().unwrap();
    s.tx.set_pn_ceiling(0, next).unwrap();
    seal(&mut s, &plain(64));
    let (mut b, r) = framed(&plain(64));
    assert_eq!(s.tx.protect(&mut b, r), Err(TxDrop::PnExhausted));
    assert_eq!(
        s.tx.poll_event(),
        Some(TxEvent::PnCeiling {
            an: 0,
            next_pn: next + 1
        })
    );
    s.tx.set_pn_ceiling(0, next + 10).unwrap();
    seal(&mut s, &plain(64));
}

#[test]
fn xpn_exhaustion_at_u64_max_never_wraps() {
    let c = CipherSuite::GcmAesXpn128;
    let x = Some(XpnParams {
        ssci: macsec::crypto::Ssci(1),
        salt: macsec::crypto::Salt([3; 12]),
    });
    let mut s = SecY::new({
        let mut conf = cfg(A);
        conf.cipher = c;
        conf
    })
    .unwrap();
    s.tx.install_sa(0, &key(), u64::MAX - 1, x).unwrap();
    let mut r = SecY::new({
        let mut conf = cfg(B);
        conf.cipher = c;
        conf
    })
    .unwrap();
    r.rx.add_sc(sci(A)).unwrap();
    r.rx.install_sa(sci(A), 0, &key(), u64::MAX - 1, x).unwrap();
    for _ in 0..2 {
        let f = seal(&mut s, &plain(64));
        assert_eq!(open(&mut r, &f).0, RxVerdict::Ok);
    }
    let (mut b, rg) = framed(&plain(64));
    assert_eq!(s.tx.protect(&mut b, rg), Err(TxDrop::PnExhausted));
    assert_eq!(
        r.rx.sa_state(sci(A), 0).unwrap().lowest_pn,
        None,
        "nothing acceptable any more"
    );
}

#[test]
fn short_frames_padding_and_sl() {
    let mut s = SecY::new({
        let mut conf = cfg(A);
        conf.send_sci = false;
        conf
    })
    .unwrap();
    s.tx.install_sa(0, &key(), 1, None).unwrap();
    let mut r = receiver(cfg(B));
    // 14 + 4 octets: Secure Data 6, SL 6, protected 12 + 8 + 6 + 16 = 42 < 60.
    let p = plain(18);
    let f = seal(&mut s, &p);
    assert_eq!((f.len(), f[15]), (42, 6));
    let mut padded = f.clone();
    padded.resize(60, 0);
    let (v, out) = open(&mut r, &padded);
    assert_eq!(
        v,
        RxVerdict::Ok,
        "Ethernet padding of a minimum frame is stripped"
    );
    assert_eq!(out.unwrap(), p);
    let mut too_long = f.clone();
    too_long.resize(61, 0);
    assert_eq!(
        open(&mut r, &too_long).0,
        RxVerdict::BadTag(TagError::ShortLenMismatch)
    );
    let mut short = f.clone();
    short.pop();
    assert_eq!(
        open(&mut r, &short).0,
        RxVerdict::BadTag(TagError::ShortLenMismatch)
    );
    assert_eq!(r.rx.secy_counters().in_pkts_bad_tag, 2);
}

#[test]
fn protect_without_headroom_uses_tailroom() {
    let mut s = sender(cfg(A));
    let mut r = receiver(cfg(B));
    let p = plain(200);
    let mut b = p.clone();
    b.resize(200 + 32, 0);
    let out = s.tx.protect(&mut b, 0..200).unwrap();
    assert_eq!(out, 0..232);
    let (v, back) = r.rx.validate(&mut b, out);
    assert_eq!(v, RxVerdict::Ok);
    assert_eq!(&b[back.unwrap()], &p[..]);
    // No room at all: dropped and counted, nothing written out of range.
    let mut b = p.clone();
    assert_eq!(s.tx.protect(&mut b, 0..200), Err(TxDrop::Malformed));
    assert_eq!(s.tx.secy_counters().out_pkts_malformed, 1);
}

#[test]
fn implicit_sci_point_to_point_and_multipoint() {
    // send_sci off: the receiver finds the SC from the source MAC ‖ port 1 ...
    let mut s = SecY::new({
        let mut conf = cfg(A);
        conf.send_sci = false;
        conf
    })
    .unwrap();
    s.tx.install_sa(0, &key(), 1, None).unwrap();
    let mut r = receiver(cfg(B));
    let f = seal(&mut s, &plain(100));
    assert_eq!(f[14] & 0x20, 0, "SC bit clear");
    assert_eq!(open(&mut r, &f).0, RxVerdict::Ok);
    // ... or as the single SC of a point-to-point CA when the SCI is not MAC ‖ 1.
    let other = sci("0A0B0C0D0E0F0007");
    let mut s = SecY::new({
        let mut conf = cfg(A);
        conf.send_sci = false;
        conf.sci = other;
        conf
    })
    .unwrap();
    s.tx.install_sa(0, &key(), 1, None).unwrap();
    let mut r = SecY::new(cfg(B)).unwrap();
    r.rx.add_sc(other).unwrap();
    r.rx.install_sa(other, 0, &key(), 1, None).unwrap();
    assert_eq!(open(&mut r, &seal(&mut s, &plain(100))).0, RxVerdict::Ok);
    // With two receive SCs the transmitter includes its SCI even without send_sci.
    s.tx.set_rx_sc_count(2);
    let f = seal(&mut s, &plain(100));
    assert_eq!(f[14] & 0x20, 0x20);
    assert_eq!(open(&mut r, &f).0, RxVerdict::Ok);
}

#[test]
fn protection_change_takes_effect_on_the_next_frame() {
    // What the KaY does when the key server distributes another confidentiality offset.
    let mut s = sender(cfg(A));
    let mut r = receiver(cfg(B));
    let p = plain(100);
    let f = seal(&mut s, &p);
    assert_eq!(f[14] & 0x0C, 0x0C, "E and C set");
    assert_ne!(&f[30..100], &p[16..86], "encrypted from octet 0");
    s.tx.set_protection(Protection::IntegrityOnly);
    let f = seal(&mut s, &p);
    assert_eq!(f[14] & 0x0C, 0, "E and C clear");
    assert_eq!(&f[28..114], &p[12..98], "User Data in clear");
    assert_eq!(open(&mut r, &f), (RxVerdict::Ok, Some(p.clone())));
    s.tx.set_protection(Protection::Confidentiality(ConfidentialityOffset::Thirty));
    r.rx.set_protection(Protection::Confidentiality(ConfidentialityOffset::Thirty));
    let f = seal(&mut s, &p);
    assert_eq!(f[14] & 0x0C, 0x0C);
    assert_eq!(&f[28..58], &p[12..42], "30 octets in clear");
    assert_ne!(&f[58..100], &p[42..84]);
    assert_eq!(open(&mut r, &f), (RxVerdict::Ok, Some(p)));
}

#[test]
fn end_station_requires_matching_source() {
    let mut s = SecY::new({
        let mut conf = cfg(A);
        conf.send_sci = false;
        conf.end_station = true;
        conf
    })
    .unwrap();
    s.tx.install_sa(0, &key(), 1, None).unwrap();
    let mut r = receiver(cfg(B));
    let f = seal(&mut s, &plain(100));
    assert_eq!(f[14] & 0x60, 0x40, "ES set, SC clear");
    assert_eq!(open(&mut r, &f).0, RxVerdict::Ok);
    let mut p = plain(100);
    p[11] = 0x77;
    let (mut b, rg) = framed(&p);
    assert_eq!(s.tx.protect(&mut b, rg), Err(TxDrop::SourceMismatch));
}

#[test]
fn protect_frames_off_and_no_sa() {
    let mut s = SecY::new({
        let mut conf = cfg(A);
        conf.protect_frames = false;
        conf
    })
    .unwrap();
    let (mut b, r) = framed(&plain(100));
    assert_eq!(s.tx.protect(&mut b, r.clone()), Ok(r));
    assert_eq!(s.tx.secy_counters().out_pkts_untagged, 1);
    let mut s = SecY::new(cfg(A)).unwrap();
    let (mut b, r) = framed(&plain(100));
    assert_eq!(s.tx.protect(&mut b, r), Err(TxDrop::NoActiveSa));
    assert_eq!(s.tx.secy_counters().out_pkts_no_sa, 1);
    let (mut b, _) = framed(&plain(100));
    assert_eq!(s.tx.protect(&mut b, 64..70), Err(TxDrop::Malformed));
}

#[test]
fn untagged_and_reserved_encoding() {
    let mut r = receiver(cfg(B));
    assert_eq!(open(&mut r, &plain(100)), (RxVerdict::NoTag, None));
    let mut r = receiver({
        let mut conf = cfg(B);
        conf.validate = ValidateFrames::Check;
        conf
    });
    assert_eq!(
        open(&mut r, &plain(100)),
        (RxVerdict::Untagged, Some(plain(100)))
    );
    let mut s = sender(cfg(A));
    let mut f = seal(&mut s, &plain(100));
    f[14] &= !0x04; // E=1, C=0
    assert_eq!(open(&mut r, &f), (RxVerdict::Uncontrolled, None));
    assert_eq!(r.rx.secy_counters().in_pkts_uncontrolled, 1);
    r.rx.count_overrun(3);
    assert_eq!(r.rx.secy_counters().in_pkts_overrun, 3);
}

#[test]
fn lowest_pn_set_by_kay() {
    let mut s = sender(cfg(A));
    let mut r = receiver({
        let mut conf = cfg(B);
        conf.replay_window = 100;
        conf
    });
    let f1 = seal(&mut s, &plain(64));
    let f2 = seal(&mut s, &plain(64));
    r.rx.set_lowest_pn(sci(A), 0, 2).unwrap();
    assert_eq!(open(&mut r, &f1).0, RxVerdict::Late);
    assert_eq!(open(&mut r, &f2).0, RxVerdict::Ok);
}

#[test]
fn kay_install_order_and_cipher_change() {
    let mut s = SecY::new(cfg(A)).unwrap();
    s.tx.set_transmit_enabled(false);
    s.tx.install_sa(0, &key(), 1, None).unwrap();
    let (mut b, r) = framed(&plain(100));
    assert_eq!(
        s.tx.protect(&mut b, r),
        Err(TxDrop::NoActiveSa),
        "installed, not yet enabled"
    );
    s.tx.enable_sa(0).unwrap();
    let mut rx = receiver(cfg(B));
    assert_eq!(open(&mut rx, &seal(&mut s, &plain(100))).0, RxVerdict::Ok);
    // A new SA waits while the old one keeps transmitting.
    s.tx.install_sa(1, &key(), 1, None).unwrap();
    assert_eq!(seal(&mut s, &plain(100))[14] & 3, 0);
    s.tx.enable_sa(1).unwrap();
    assert_eq!(seal(&mut s, &plain(100))[14] & 3, 1);
    assert_eq!(s.tx.enable_sa(3), Err(SecYError::NoSa(3)));
    // A suite change drops every SA (on both halves).
    s.tx.set_cipher(CipherSuite::GcmAes256);
    let (mut b, r) = framed(&plain(100));
    assert_eq!(s.tx.protect(&mut b, r), Err(TxDrop::NoActiveSa));
    rx.rx.set_cipher(CipherSuite::GcmAes256);
    assert!(rx.rx.sa_state(sci(A), 0).is_none() && rx.rx.sc_count() == 1);
}

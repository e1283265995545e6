//! The MKPDU codec: constructed MKPDUs through a participant, and property tests
//! (decode never panics; encode then decode is the identity).

use super::harness::{config, sci, CAK, CKN};
use macsec::crypto::{CipherSuite, SecretKey};
use macsec::mka::crypto::{derive_ick, verify_mkpdu_icv, WrappedKey};
use macsec::mka::pdu::{
    decode_frame, BasicParams, DecodeError, DistributedCak, DistributedKey, DistributedSak, Mkpdu,
    PeerEntry, PeerList, SakUse, SakUseKeys, XpnParams, ALGORITHM_AGILITY,
};
use macsec::mka::{Capability, Ckn, ConfidentialityOffset, Ki, Mi, Participant, RxError};
use macsec::wire::{MacAddr, Sci};
use proptest::prelude::*;
use std::time::Instant;

fn ick() -> SecretKey {
    derive_ick(
        &SecretKey::from_hex(CAK).unwrap(),
        &Ckn::from_hex(CKN).unwrap(),
    )
}

/// An MKPDU as another member of the CA would send it.
fn peer_pdu(sci: Sci, mi: Mi, mn: u32) -> Mkpdu {
    Mkpdu {
        dst: MacAddr::PAE_GROUP,
        src: sci.mac(),
        ethertype: macsec::wire::ethernet::ethertype::EAPOL,
        eapol_version: 3,
        basic: BasicParams {
            mka_version: 1,
            key_server_priority: 0xFF,
            key_server: true,
            macsec_desired: true,
            macsec_capability: Capability::Confidentiality,
            sci,
            mi,
            mn,
            algorithm_agility: ALGORITHM_AGILITY,
            ckn: Ckn::from_hex(CKN).unwrap(),
        },
        live_peers: None,
        potential_peers: None,
        sak_use: None,
        distributed_sak: None,
        distributed_cak: None,
        kmd: None,
        announcement: None,
        xpn: None,
        icv_indicator: false,
        skipped_sets: 0,
        icv: [0; 16],
    }
}

#[test]
fn constructed_mkpdus_are_checked_in_hostap_order() {
    let now = Instant::now();
    let mut p = Participant::new(config(1), now).unwrap();
    let own = decode_frame(&p.poll_transmit().unwrap()).unwrap().pdu;
    let ick = ick();
    let mi = Mi([0x42; 12]);
    let good = peer_pdu(sci(2), mi, 1);
    let f = good.encode(&ick).unwrap();
    assert!(verify_mkpdu_icv(
        &ick,
        decode_frame(&f).unwrap().icv_covered,
        &decode_frame(&f).unwrap().pdu.icv
    ));

    // Unicast DA.
    let mut x = good.clone();
    x.dst = MacAddr([2, 0, 0, 0, 0, 1]);
    assert_eq!(
        p.handle_mkpdu(now, &x.encode(&ick).unwrap()),
        Err(RxError::Destination)
    );
    // Other CKN (even with the right ICK).
    let mut x = good.clone();
    x.basic.ckn = Ckn::from_hex("AA").unwrap();
    assert_eq!(
        p.handle_mkpdu(now, &x.encode(&ick).unwrap()),
        Err(RxError::UnknownCkn)
    );
    // Other algorithm agility.
    let mut x = good.clone();
    x.basic.algorithm_agility = [0, 0x80, 0xC2, 2];
    assert_eq!(
        p.handle_mkpdu(now, &x.encode(&ick).unwrap()),
        Err(RxError::AlgorithmAgility)
    );
    // Wrong ICK.
    let other = SecretKey::from_slice(&[9; 16]).unwrap();
    assert_eq!(
        p.handle_mkpdu(now, &good.encode(&other).unwrap()),
        Err(RxError::Icv)
    );
    // Other EtherType / EAPOL type / version.
    let mut g = f.clone();
    g[13] = 0x8F;
    assert_eq!(p.handle_mkpdu(now, &g), Err(RxError::NotMka));
    let mut g = f.clone();
    g[15] = 0;
    assert_eq!(p.handle_mkpdu(now, &g), Err(RxError::NotMka));
    let mut g = f.clone();
    g[14] = 1;
    assert_eq!(p.handle_mkpdu(now, &g), Err(RxError::NotMka));
    // Truncated.
    assert!(matches!(
        p.handle_mkpdu(now, &f[..f.len() - 4]),
        Err(RxError::Malformed(DecodeError::Truncated))
    ));
    // The good one, then its replay.
    assert_eq!(p.handle_mkpdu(now, &f), Ok(()));
    assert_eq!(p.handle_mkpdu(now, &f), Err(RxError::StaleMn));
    // A higher EAPOL version and trailing padding are fine.
    let mut x = good.clone();
    x.basic.mn = 2;
    x.eapol_version = 4;
    let mut g = x.encode(&ick).unwrap();
    g.extend_from_slice(&[0; 20]);
    assert_eq!(p.handle_mkpdu(now, &g), Ok(()));
    // A new MI for the SCI of a potential peer (a restart) replaces that peer ...
    let mut x = peer_pdu(sci(2), Mi([0x43; 12]), 1);
    assert_eq!(p.handle_mkpdu(now, &x.encode(&ick).unwrap()), Ok(()));
    assert_eq!(p.counters().potential_replaced, 1);
    // ... which turns live when it lists us; a new MI for a live peer's SCI is then
    // held off (802.1X-2010 9.4.2; hostap).
    x.basic.mn = 2;
    x.live_peers = Some(PeerList {
        octet2: 0,
        peers: vec![PeerEntry {
            mi: own.basic.mi,
            mn: own.basic.mn,
        }],
    });
    assert_eq!(p.handle_mkpdu(now, &x.encode(&ick).unwrap()), Ok(()));
    assert_eq!(p.status().live_peers.len(), 1);
    let x = peer_pdu(sci(2), Mi([0x44; 12]), 1);
    assert_eq!(
        p.handle_mkpdu(now, &x.encode(&ick).unwrap()),
        Err(RxError::DuplicateSci)
    );
    // Someone using our MI makes us pick a new one.
    let x = peer_pdu(sci(3), own.basic.mi, 7);
    assert_eq!(p.handle_mkpdu(now, &x.encode(&ick).unwrap()), Ok(()));
    assert_ne!(p.mi(), own.basic.mi);
    let c = p.counters();
    assert_eq!(c.rx_ok, 5);
    assert_eq!(c.rx_dropped.total(), 10);
    assert_eq!(c.mi_resets, 1);
}

#[test]
fn our_mkpdus_use_pae_group_and_never_an_explicit_gcm_aes_128_id() {
    let now = Instant::now();
    let mut a = Participant::new(config(1), now).unwrap();
    let mut b = Participant::new(config(2), now).unwrap();
    let mut frames = Vec::new();
    for _ in 0..6 {
        while let Some(f) = a.poll_transmit() {
            let _ = b.handle_mkpdu(now, &f);
            frames.push(f);
        }
        while let Some(f) = b.poll_transmit() {
            let _ = a.handle_mkpdu(now, &f);
            frames.push(f);
        }
        while a.poll_action().is_some() {}
        while b.poll_action().is_some() {}
    }
    assert!(a.tx_an().is_some() && b.tx_an().is_some());
    let mut saw_dist = false;
    for f in &frames {
        let d = decode_frame(f).unwrap().pdu;
        assert_eq!(d.dst, MacAddr::PAE_GROUP);
        assert_eq!(d.ethertype, 0x888E);
        assert_eq!(d.eapol_version, 3);
        assert_eq!(d.basic.mka_version, 1);
        assert!(!d.icv_indicator);
        if let Some(ds) = d.distributed_sak {
            saw_dist = true;
            let k = ds.key.unwrap();
            assert_eq!(k.cipher_suite_id, None, "GCM-AES-128 in the 28-octet form");
            // A Distributed SAK always travels with a SAK Use set.
            assert!(d.sak_use.is_some());
        }
    }
    assert!(saw_dist);
}

#[test]
fn icv_indicator_option() {
    let mut c = config(1);
    c.send_icv_indicator = true;
    let mut p = Participant::new(c, Instant::now()).unwrap();
    let f = p.poll_transmit().unwrap();
    assert_eq!(&f[f.len() - 20..f.len() - 16], &[0xFF, 0, 0, 16]);
    assert!(decode_frame(&f).unwrap().pdu.icv_indicator);
}

// ----------------------------------------------------------------- properties

fn arb_ckn() -> impl Strategy<Value = Ckn> {
    prop::collection::vec(any::<u8>(), 1..=32).prop_map(|v| Ckn::new(&v).unwrap())
}

fn arb_ki() -> impl Strategy<Value = Ki> {
    (any::<[u8; 12]>(), any::<u32>()).prop_map(|(m, kn)| Ki { mi: Mi(m), kn })
}

fn arb_peers() -> impl Strategy<Value = Option<PeerList>> {
    prop::option::of(
        (
            any::<u8>(),
            prop::collection::vec((any::<[u8; 12]>(), any::<u32>()), 0..12),
        )
            .prop_map(|(octet2, v)| PeerList {
                octet2,
                peers: v
                    .into_iter()
                    .map(|(m, mn)| PeerEntry { mi: Mi(m), mn })
                    .collect(),
            }),
    )
}

fn arb_sak_use() -> impl Strategy<Value = SakUse> {
    (
        (
            0u8..4,
            any::<bool>(),
            any::<bool>(),
            0u8..4,
            any::<bool>(),
            any::<bool>(),
        ),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::option::of((arb_ki(), any::<u32>(), arb_ki(), any::<u32>())),
    )
        .prop_map(|((la, lt, lr, oa, ot, or), (pt, pr, dp), k)| SakUse {
            latest_an: la,
            latest_tx: lt,
            latest_rx: lr,
            old_an: oa,
            old_tx: ot,
            old_rx: or,
            plain_tx: pt,
            plain_rx: pr,
            delay_protect: dp,
            keys: k.map(|(latest_ki, latest_lpn, old_ki, old_lpn)| SakUseKeys {
                latest_ki,
                latest_lpn,
                old_ki,
                old_lpn,
            }),
        })
}

fn arb_dist_sak() -> impl Strategy<Value = DistributedSak> {
    let key = (
        any::<u32>(),
        prop::option::of(any::<[u8; 8]>()),
        any::<bool>(),
        any::<[u8; 40]>(),
    )
        .prop_map(|(kn, id, long, w)| {
            let len = if id.is_some() && long { 40 } else { 24 };
            DistributedKey {
                kn,
                cipher_suite_id: id,
                wrapped: WrappedKey::from_slice(&w[..len]).unwrap(),
            }
        });
    (0u8..4, 0u8..4, prop::option::of(key)).prop_map(|(an, c, key)| DistributedSak {
        an,
        confidentiality_offset: ConfidentialityOffset::from_code(c),
        key,
    })
}

prop_compose! {
    fn arb_mkpdu()(
        (dst, src, ethertype, eapol_version) in (any::<[u8; 6]>(), any::<[u8; 6]>(), any::<u16>(), 3u8..),
        (mka_version, key_server_priority, key_server, macsec_desired, cap) in
            (any::<u8>(), any::<u8>(), any::<bool>(), any::<bool>(), 0u8..4),
        (sci, mi, mn, algorithm_agility, ckn) in
            (any::<[u8; 8]>(), any::<[u8; 12]>(), any::<u32>(), any::<[u8; 4]>(), arb_ckn()),
        live_peers in arb_peers(),
        potential_peers in arb_peers(),
        sak_use in prop::option::of(arb_sak_use()),
        distributed_sak in prop::option::of(arb_dist_sak()),
        distributed_cak in prop::option::of((any::<[u8; 24]>(), arb_ckn())),
        kmd in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        announcement in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        xpn in prop::option::of((any::<u8>(), any::<u32>(), any::<u32>())),
        icv_indicator in any::<bool>(),
        icv in any::<[u8; 16]>(),
    ) -> Mkpdu {
        Mkpdu {
            dst: MacAddr(dst),
            src: MacAddr(src),
            ethertype,
            eapol_version,
            basic: BasicParams {
                mka_version,
                key_server_priority,
                key_server,
                macsec_desired,
                macsec_capability: Capability::from_code(cap),
                sci: Sci(sci),
                mi: Mi(mi),
                mn,
                algorithm_agility,
                ckn,
            },
            live_peers,
            potential_peers,
            sak_use,
            distributed_sak,
            distributed_cak: distributed_cak.map(|(w, ckn)| DistributedCak {
                wrapped: WrappedKey::from_slice(&w).unwrap(),
                ckn,
            }),
            kmd,
            announcement,
            xpn: xpn.map(|(s, l, o)| XpnParams { suspension_time: s, latest_lpn_high: l, old_lpn_high: o }),
            icv_indicator,
            skipped_sets: 0,
            icv,
        }
    }
}

/// Whatever decodes re-encodes (with its stored ICV) into a frame that decodes to the
/// same MKPDU, less the parameter sets the decoder skipped (unknown or repeated types).
fn decoded_frames_reencode(frame: &[u8]) {
    if let Ok(mut d) = decode_frame(frame) {
        d.pdu.skipped_sets = 0;
        let bytes = d
            .pdu
            .encode_with_stored_icv()
            .expect("a decoded MKPDU encodes");
        assert_eq!(decode_frame(&bytes).expect("re-decodes").pdu, d.pdu);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_is_identity(p in arb_mkpdu()) {
        let f = p.encode_with_stored_icv().unwrap();
        let d = decode_frame(&f).unwrap();
        prop_assert_eq!(&d.pdu, &p);
        prop_assert_eq!(d.icv_covered.len(), f.len() - 16);
        let body = u16::from_be_bytes([f[16], f[17]]) as usize;
        prop_assert_eq!(body + 18, f.len());
        prop_assert_eq!(body % 4, 0);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..400)) {
        decoded_frames_reencode(&data);
    }

    #[test]
    fn decode_never_panics_on_mutated_frames(
        p in arb_mkpdu(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = p.encode_with_stored_icv().unwrap();
        for (i, v) in flips {
            let i = i.index(f.len());
            f[i] = v;
        }
        decoded_frames_reencode(&f);
        let n = cut.index(f.len() + 1);
        decoded_frames_reencode(&f[..n]);
    }

    #[test]
    fn participant_never_panics_on_arbitrary_frames(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..8),
        signed in prop::collection::vec(arb_mkpdu(), 1..4),
    ) {
        let now = Instant::now();
        let mut p = Participant::new(config(1), now).unwrap();
        let ick = ick();
        for f in &frames {
            let mut g = f.clone();
            // Make a share of them look like EAPOL-MKA to the header checks.
            if g.len() >= 18 && g[0] & 1 == 1 {
                g[12] = 0x88; g[13] = 0x8E; g[14] = 3; g[15] = 5;
            }
            let _ = p.handle_mkpdu(now, &g);
        }
        // Validly signed MKPDUs of this CA with arbitrary contents.
        for mut m in signed {
            m.dst = MacAddr::PAE_GROUP;
            m.ethertype = macsec::wire::ethernet::ethertype::EAPOL;
            m.basic.ckn = Ckn::from_hex(CKN).unwrap();
            m.basic.algorithm_agility = ALGORITHM_AGILITY;
            let f = m.encode(&ick).unwrap();
            let _ = p.handle_mkpdu(now, &f);
        }
        p.handle_timeout(now + std::time::Duration::from_secs(7));
        while p.poll_action().is_some() {}
        while p.poll_transmit().is_some() {}
        let _ = CipherSuite::ALL;
    }
}

#[derive(Debug, Clone)]
struct Step {
    peer: u8,
    advance_ms: u16,
    pdu: Mkpdu,
    list_us: bool,
    sak_use_mode: u8,
    rewrap: bool,
    key_server: bool,
    priority: u8,
}

fn arb_step() -> impl Strategy<Value = Step> {
    (
        0u8..3,
        0u16..4000,
        arb_mkpdu(),
        any::<bool>(),
        0u8..5,
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0u8, 0x10, 0x20, 0xFF]),
    )
        .prop_map(
            |(peer, advance_ms, pdu, list_us, sak_use_mode, rewrap, key_server, priority)| Step {
                peer,
                advance_ms,
                pdu,
                list_us,
                sak_use_mode,
                rewrap,
                key_server,
                priority,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Up to three scripted peers with valid ICVs, increasing MNs and otherwise random
    /// contents: listing us or not, acknowledging our key or not, distributing SAKs
    /// (re-wrapped with the real KEK) or not. Every action the participant emits must be
    /// legal for the data-plane model (which asserts on every step).
    #[test]
    fn participant_survives_coherent_random_peers(steps in prop::collection::vec(arb_step(), 1..40)) {
        use super::harness::DataPlane;
        use macsec::mka::crypto::{derive_kek, wrap_sak};
        let cak = SecretKey::from_hex(CAK).unwrap();
        let ckn = Ckn::from_hex(CKN).unwrap();
        let ick = derive_ick(&cak, &ckn);
        let kek = derive_kek(&cak, &ckn);
        let t0 = Instant::now();
        let mut now = t0;
        let mut p = Participant::new(config(1), t0).unwrap();
        let mut dp = DataPlane::default();
        let mut mns = [0u32; 3];
        for s in steps {
            now += std::time::Duration::from_millis(s.advance_ms as u64);
            p.handle_timeout(now);
            while let Some(a) = p.poll_action() { dp.apply(a); }
            while p.poll_transmit().is_some() {}
            let i = s.peer as usize;
            mns[i] += 1;
            let mut m = s.pdu;
            m.dst = MacAddr::PAE_GROUP;
            m.ethertype = macsec::wire::ethernet::ethertype::EAPOL;
            m.basic.ckn = ckn;
            m.basic.algorithm_agility = ALGORITHM_AGILITY;
            m.basic.sci = sci(2 + s.peer);
            m.basic.mi = Mi([0xA0 + s.peer; 12]);
            m.basic.mn = mns[i];
            m.basic.key_server = s.key_server;
            m.basic.key_server_priority = s.priority;
            let st = p.status();
            if s.list_us {
                m.live_peers = Some(PeerList { octet2: 0, peers: vec![PeerEntry { mi: p.mi(), mn: st.mn }] });
            }
            let ours = st.latest_key.as_ref().map(|k| Ki {
                mi: Mi(hex::decode(&k.key_server_mi).unwrap().try_into().unwrap()),
                kn: k.kn,
            });
            match (s.sak_use_mode, ours) {
                (1, _) => m.sak_use = None,
                (2, Some(ki)) => m.sak_use = Some(SakUse { latest_rx: true, latest_tx: true,
                    keys: Some(SakUseKeys { latest_ki: ki, latest_lpn: 1, old_ki: Ki::NONE, old_lpn: 0 }), ..SakUse::default() }),
                (3, Some(ki)) => m.sak_use = Some(SakUse { old_rx: true, old_tx: true,
                    keys: Some(SakUseKeys { latest_ki: Ki::NONE, latest_lpn: 1, old_ki: ki, old_lpn: 0xFFFF_FFFF }), ..SakUse::default() }),
                _ => {}
            }
            if s.rewrap {
                if let Some(k) = m.distributed_sak.as_mut().and_then(|d| d.key.as_mut()) {
                    let len = match k.cipher_suite() {
                        Some(suite) => suite.key_len(),
                        None => k.wrapped.key_len(),
                    };
                    k.wrapped = wrap_sak(&kek, &SecretKey::random(len).unwrap());
                }
            }
            let f = m.encode(&ick).unwrap();
            let _ = p.handle_mkpdu(now, &f);
            while let Some(a) = p.poll_action() { dp.apply(a); }
            while let Some(f) = p.poll_transmit() {
                prop_assert!(decode_frame(&f).is_ok());
            }
            // The data plane and the participant agree on the transmit AN.
            prop_assert_eq!(dp.tx_an, p.tx_an());
            prop_assert!(dp.rx_scs.len() <= 3);
            prop_assert_eq!(dp.rx_scs.len(), p.live_peers().len());
        }
    }
}

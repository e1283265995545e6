//! Against a scripted peer that behaves like wpa_supplicant 2.10 on the wire (notes
//! 10.4/10.5): as key server it reports its in-use key only in the Old Key fields after
//! RETIRE; as a member it acknowledges in the Latest fields, then moves the key to Old.

use super::harness::{config, sci, CAK, CKN};
use macsec::crypto::CipherSuite;
use macsec::crypto::SecretKey;
use macsec::mka::crypto::{derive_ick, derive_kek, unwrap_sak, wrap_sak};
use macsec::mka::pdu::{
    decode_frame, BasicParams, DistributedKey, DistributedSak, Mkpdu, PeerEntry, PeerList, SakUse,
    SakUseKeys, ALGORITHM_AGILITY,
};
use macsec::mka::{Action, CaState, Capability, Ckn, ConfidentialityOffset, Ki, Mi, Participant};
use macsec::wire::{MacAddr, Sci};
use std::time::{Duration, Instant};

struct Fake {
    sci: Sci,
    mi: Mi,
    mn: u32,
    prio: u8,
    key_server: bool,
    ick: SecretKey,
    kek: SecretKey,
}

impl Fake {
    fn new(n: u8, prio: u8) -> Fake {
        let cak = SecretKey::from_hex(CAK).unwrap();
        let ckn = Ckn::from_hex(CKN).unwrap();
        Fake {
            sci: sci(n),
            mi: Mi([n; 12]),
            mn: 0,
            prio,
            key_server: true,
            ick: derive_ick(&cak, &ckn),
            kek: derive_kek(&cak, &ckn),
        }
    }

    fn frame(&mut self, edit: impl FnOnce(&mut Mkpdu)) -> Vec<u8> {
        self.mn += 1;
        let mut m = Mkpdu {
            dst: MacAddr::PAE_GROUP,
            src: self.sci.mac(),
            ethertype: macsec::wire::ethernet::ethertype::EAPOL,
            eapol_version: 3,
            basic: BasicParams {
                mka_version: 1,
                key_server_priority: self.prio,
                key_server: self.key_server,
                macsec_desired: true,
                macsec_capability: Capability::Confidentiality,
                sci: self.sci,
                mi: self.mi,
                mn: self.mn,
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
        };
        edit(&mut m);
        m.encode(&self.ick).unwrap()
    }
}

fn live(mi: Mi, mn: u32) -> Option<PeerList> {
    Some(PeerList {
        octet2: 0,
        peers: vec![PeerEntry { mi, mn }],
    })
}

/// hostap's SAK Use in steady state (after RETIRE): the in-use key in the Old fields.
fn hostap_retired(ki: Ki, an: u8) -> SakUse {
    SakUse {
        old_an: an,
        old_tx: true,
        old_rx: true,
        keys: Some(SakUseKeys {
            latest_ki: Ki::NONE,
            latest_lpn: 1,
            old_ki: ki,
            old_lpn: 1,
        }),
        ..SakUse::default()
    }
}

/// hostap's SAK Use right after installing a new key (CP RECEIVE/RECEIVING).
fn hostap_receiving(new: Ki, an: u8, old: Option<(Ki, u8)>) -> SakUse {
    SakUse {
        latest_an: an,
        latest_rx: true,
        old_an: old.map_or(0, |o| o.1),
        old_tx: old.is_some(),
        old_rx: old.is_some(),
        keys: Some(SakUseKeys {
            latest_ki: new,
            latest_lpn: 1,
            old_ki: old.map_or(Ki::NONE, |o| o.0),
            old_lpn: if old.is_some() { 1 } else { 0 },
        }),
        ..SakUse::default()
    }
}

struct Out {
    actions: Vec<Action>,
    pdus: Vec<Mkpdu>,
}

fn drain(p: &mut Participant) -> Out {
    let mut actions = Vec::new();
    while let Some(a) = p.poll_action() {
        actions.push(a);
    }
    let mut pdus = Vec::new();
    while let Some(f) = p.poll_transmit() {
        pdus.push(decode_frame(&f).unwrap().pdu);
    }
    Out { actions, pdus }
}

fn last_mn(o: &Out, p: &Participant) -> u32 {
    o.pdus
        .last()
        .map(|m| m.basic.mn)
        .unwrap_or_else(|| p.status().mn)
}

#[test]
fn member_of_a_hostap_key_server() {
    let t0 = Instant::now();
    let mut p = Participant::new(config(1), t0).unwrap();
    let mut h = Fake::new(9, 0x00);
    let o = drain(&mut p);
    assert_eq!(o.pdus.len(), 1);

    // H hears nothing yet, announces itself.
    p.handle_mkpdu(t0, &h.frame(|_| {})).unwrap();
    let o = drain(&mut p);
    let mn = last_mn(&o, &p);
    assert_eq!(
        o.pdus[0].potential_peers.as_ref().unwrap().peers[0].mi,
        h.mi
    );
    assert!(
        o.pdus[0].sak_use.is_none(),
        "no SAK Use before a SAK exists"
    );

    // H lists us: H becomes live, and (priority 0) key server.
    let our_mi = p.mi();
    p.handle_mkpdu(t0, &h.frame(|m| m.live_peers = live(our_mi, mn)))
        .unwrap();
    let o = drain(&mut p);
    assert_eq!(o.actions, vec![Action::InstallRxSc { sci: h.sci }]);
    assert_eq!(p.key_server(), Some(h.sci));
    let mn = last_mn(&o, &p);
    assert!(
        !o.pdus.last().unwrap().basic.key_server,
        "we gave up the KS bit"
    );

    // H distributes KN 1 / AN 0 in the 28-octet form, with its SAK Use.
    let sak = SecretKey::from_slice(&[0x5C; 16]).unwrap();
    let k1 = Ki { mi: h.mi, kn: 1 };
    let w = wrap_sak(&h.kek, &sak);
    p.handle_mkpdu(
        t0,
        &h.frame(|m| {
            m.live_peers = live(our_mi, mn);
            m.sak_use = Some(hostap_receiving(k1, 0, None));
            m.distributed_sak = Some(DistributedSak {
                an: 0,
                confidentiality_offset: ConfidentialityOffset::Offset0,
                key: Some(DistributedKey::new(1, CipherSuite::GcmAes128, w)),
            });
        }),
    )
    .unwrap();
    let o = drain(&mut p);
    assert!(matches!(
        &o.actions[..],
        [Action::InstallRxSa { an: 0, ki, key, .. }, Action::InstallTxSa { an: 0, .. }]
            if *ki == k1 && *key == sak
    ));
    let su = o.pdus.last().unwrap().sak_use.unwrap();
    assert!(su.latest_rx && !su.latest_tx);
    assert_eq!(su.keys.unwrap().latest_ki, k1);
    let mn = last_mn(&o, &p);

    // H switched and retired at once (no previous key): only Old fields are filled.
    p.handle_mkpdu(
        t0,
        &h.frame(|m| {
            m.live_peers = live(our_mi, mn);
            m.sak_use = Some(hostap_retired(k1, 0));
        }),
    )
    .unwrap();
    let o = drain(&mut p);
    assert_eq!(o.actions, vec![Action::EnableTx { an: 0 }, Action::Secured]);
    assert_eq!(p.state(), CaState::Secured);
    let su = o.pdus.last().unwrap().sak_use.unwrap();
    assert!(su.latest_tx && su.latest_rx);

    // Steady state for 30 s: H sends every 2 s; every MKPDU of ours has SAK Use.
    let mut t = t0;
    let mut mn = last_mn(&o, &p);
    for _ in 0..15 {
        t += Duration::from_secs(2);
        p.handle_timeout(t);
        p.handle_mkpdu(
            t,
            &h.frame(|m| {
                m.live_peers = live(our_mi, mn);
                m.sak_use = Some(hostap_retired(k1, 0));
            }),
        )
        .unwrap();
        let o = drain(&mut p);
        assert!(o.actions.is_empty(), "{:?}", o.actions);
        for m in &o.pdus {
            assert_eq!(m.sak_use.unwrap().keys.unwrap().latest_ki, k1);
            assert!(m.distributed_sak.is_none());
        }
        mn = last_mn(&o, &p);
    }
    assert_eq!(p.state(), CaState::Secured);

    // H rekeys: KN 2 / AN 1 (RECEIVE: Latest = new, Old = current).
    let sak2 = SecretKey::from_slice(&[0x6D; 16]).unwrap();
    let k2 = Ki { mi: h.mi, kn: 2 };
    let w2 = wrap_sak(&h.kek, &sak2);
    p.handle_mkpdu(
        t,
        &h.frame(|m| {
            m.live_peers = live(our_mi, mn);
            m.sak_use = Some(hostap_receiving(k2, 1, Some((k1, 0))));
            m.distributed_sak = Some(DistributedSak {
                an: 1,
                confidentiality_offset: ConfidentialityOffset::Offset0,
                key: Some(DistributedKey::new(2, CipherSuite::GcmAes128, w2)),
            });
        }),
    )
    .unwrap();
    let o = drain(&mut p);
    assert_eq!(o.actions.len(), 2, "RX SA then TX SA for AN 1");
    assert_eq!(p.tx_an(), Some(0), "not before the key server");
    let su = o.pdus.last().unwrap().sak_use.unwrap();
    assert_eq!(su.keys.unwrap().latest_ki, k2);
    assert_eq!(su.keys.unwrap().old_ki, k1);
    assert!(su.old_tx && su.old_rx && su.latest_rx && !su.latest_tx);
    let mn = last_mn(&o, &p);

    // H transmits with k2 and, 3 s later, retires k1: we only ever see the retired
    // report here (the TRANSMITTING one was "lost"). It is enough to switch.
    p.handle_mkpdu(
        t,
        &h.frame(|m| {
            m.live_peers = live(our_mi, mn);
            m.sak_use = Some(hostap_retired(k2, 1));
        }),
    )
    .unwrap();
    let o = drain(&mut p);
    assert_eq!(o.actions, vec![Action::EnableTx { an: 1 }]);
    p.handle_timeout(t + Duration::from_millis(2999));
    assert!(drain(&mut p)
        .actions
        .iter()
        .all(|a| !matches!(a, Action::DeleteRxSa { .. })));
    p.handle_timeout(t + Duration::from_secs(3));
    let o = drain(&mut p);
    assert!(o
        .actions
        .contains(&Action::DeleteRxSa { sci: h.sci, an: 0 }));
    assert!(o.actions.contains(&Action::DeleteTxSa { an: 0 }));
    assert_eq!(p.counters().sak_received, 2);
    assert_eq!(p.counters().rx_dropped.total(), 0);
}

#[test]
fn key_server_for_a_hostap_member() {
    let t0 = Instant::now();
    let mut p = Participant::new(config(1), t0).unwrap();
    let mut m = Fake::new(9, 0xFF);
    let kek = derive_kek(
        &SecretKey::from_hex(CAK).unwrap(),
        &Ckn::from_hex(CKN).unwrap(),
    );
    drain(&mut p);
    p.handle_mkpdu(t0, &m.frame(|_| {})).unwrap();
    let o = drain(&mut p);
    let mn = last_mn(&o, &p);
    let our_mi = p.mi();
    // The member lists us and, having elected us, clears its Key Server bit.
    m.key_server = false;
    p.handle_mkpdu(t0, &m.frame(|x| x.live_peers = live(our_mi, mn)))
        .unwrap();
    let o = drain(&mut p);
    assert!(p.is_key_server());
    let sak = match &o.actions[..] {
        [Action::InstallRxSc { .. }, Action::InstallRxSa { key, an: 0, .. }, Action::InstallTxSa { an: 0, .. }] => {
            key.duplicate()
        }
        other => panic!("{other:?}"),
    };
    let pdu = o.pdus.last().unwrap();
    assert!(pdu.basic.key_server);
    let ds = pdu.distributed_sak.unwrap();
    let dk = ds.key.unwrap();
    assert_eq!(dk.cipher_suite_id, None, "28-octet form for GCM-AES-128");
    assert_eq!(ds.confidentiality_offset, ConfidentialityOffset::Offset0);
    assert_eq!(unwrap_sak(&kek, dk.wrapped.as_bytes()).unwrap(), sak);
    let k1 = Ki {
        mi: our_mi,
        kn: dk.kn,
    };
    assert_eq!(k1.kn, 1);
    let su = pdu.sak_use.unwrap();
    assert!(
        su.latest_rx && !su.latest_tx,
        "SAK Use travels with the SAK"
    );
    let mn = last_mn(&o, &p);

    // The member installs and acknowledges in the Latest fields.
    p.handle_mkpdu(
        t0,
        &m.frame(|x| {
            x.live_peers = live(our_mi, mn);
            x.sak_use = Some(hostap_receiving(k1, 0, None));
        }),
    )
    .unwrap();
    let o = drain(&mut p);
    assert_eq!(o.actions, vec![Action::EnableTx { an: 0 }, Action::Secured]);
    let pdu = o.pdus.last().unwrap();
    assert!(
        pdu.sak_use.unwrap().latest_tx,
        "LTx tells the member to switch"
    );
    assert!(
        pdu.distributed_sak.is_none(),
        "acknowledged: no more Distributed SAK"
    );

    // The member retires into the Old fields; that is still "receiving k1".
    let mut t = t0;
    let mut mn = last_mn(&o, &p);
    for _ in 0..15 {
        t += Duration::from_secs(2);
        p.handle_timeout(t);
        p.handle_mkpdu(
            t,
            &m.frame(|x| {
                x.live_peers = live(our_mi, mn);
                x.sak_use = Some(hostap_retired(k1, 0));
            }),
        )
        .unwrap();
        let o = drain(&mut p);
        assert!(o.actions.is_empty(), "{:?}", o.actions);
        assert!(o.pdus.iter().all(|x| x.distributed_sak.is_none()));
        mn = last_mn(&o, &p);
    }
    assert_eq!(p.counters().sak_generated, 1);
    assert_eq!(p.live_peers(), vec![m.sci]);

    // The member's LPN passes 0xC0000000 (reported in Old, as hostap does): rekey.
    p.handle_mkpdu(
        t,
        &m.frame(|x| {
            x.live_peers = live(our_mi, mn);
            let mut su = hostap_retired(k1, 0);
            su.keys.as_mut().unwrap().old_lpn = 0xC000_0001;
            x.sak_use = Some(su);
        }),
    )
    .unwrap();
    let o = drain(&mut p);
    assert_eq!(p.counters().rekeys_pn, 1);
    let ds = o.pdus.last().unwrap().distributed_sak.unwrap();
    assert_eq!((ds.an, ds.key.unwrap().kn), (1, 2));
}

#[test]
fn key_server_switches_after_life_time_without_acknowledgement() {
    let t0 = Instant::now();
    let mut p = Participant::new(config(1), t0).unwrap();
    let mut m = Fake::new(9, 0xFF);
    drain(&mut p);
    p.handle_mkpdu(t0, &m.frame(|_| {})).unwrap();
    let mut mn = last_mn(&drain(&mut p), &p);
    let our_mi = p.mi();
    m.key_server = false;
    p.handle_mkpdu(t0, &m.frame(|x| x.live_peers = live(our_mi, mn)))
        .unwrap();
    let o = drain(&mut p);
    assert!(o.pdus.last().unwrap().distributed_sak.is_some());
    mn = last_mn(&o, &p);
    // The member stays live but never installs the SAK (no SAK Use at all).
    let mut t = t0;
    for _ in 0..2 {
        t += Duration::from_secs(2);
        p.handle_timeout(t);
        p.handle_mkpdu(t, &m.frame(|x| x.live_peers = live(our_mi, mn)))
            .unwrap();
        let o = drain(&mut p);
        assert!(o.actions.is_empty());
        mn = last_mn(&o, &p);
    }
    assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(6)));
    p.handle_timeout(t0 + Duration::from_millis(5999));
    assert!(drain(&mut p).actions.is_empty());
    p.handle_timeout(t0 + Duration::from_secs(6));
    let o = drain(&mut p);
    assert_eq!(o.actions, vec![Action::EnableTx { an: 0 }, Action::Secured]);
    // It keeps offering the SAK to the member that has not taken it.
    assert!(o.pdus.last().unwrap().distributed_sak.is_some());
}

#[test]
fn deprecated_gcm_aes_128_id_and_explicit_suites_are_accepted() {
    for (id, suite) in [
        ([0, 0x80, 0x02, 0, 1, 0, 0, 1], CipherSuite::GcmAes128),
        (CipherSuite::GcmAes256.id(), CipherSuite::GcmAes256),
        (CipherSuite::GcmAesXpn256.id(), CipherSuite::GcmAesXpn256),
    ] {
        let t0 = Instant::now();
        let mut p = Participant::new(config(1), t0).unwrap();
        let mut h = Fake::new(9, 0);
        drain(&mut p);
        p.handle_mkpdu(t0, &h.frame(|_| {})).unwrap();
        let mn = last_mn(&drain(&mut p), &p);
        let our_mi = p.mi();
        let sak = SecretKey::random(suite.key_len()).unwrap();
        let w = wrap_sak(&h.kek, &sak);
        p.handle_mkpdu(
            t0,
            &h.frame(|m| {
                m.live_peers = live(our_mi, mn);
                m.distributed_sak = Some(DistributedSak {
                    an: 2,
                    confidentiality_offset: ConfidentialityOffset::IntegrityOnly,
                    key: Some(DistributedKey {
                        kn: 7,
                        cipher_suite_id: Some(id),
                        wrapped: w,
                    }),
                });
            }),
        )
        .unwrap();
        let o = drain(&mut p);
        let got = o
            .actions
            .iter()
            .find_map(|a| match a {
                Action::InstallTxSa {
                    suite: s,
                    an,
                    confidentiality,
                    ..
                } => Some((*s, *an, *confidentiality)),
                _ => None,
            })
            .unwrap();
        assert_eq!(got, (suite, 2, ConfidentialityOffset::IntegrityOnly));
    }
}

#[test]
fn distributed_sak_from_a_non_key_server_or_with_a_bad_wrap_is_refused() {
    let t0 = Instant::now();
    let mut p = Participant::new(config(1), t0).unwrap();
    // Priority 0xFF: we (0x10) are key server, so its SAK is not taken.
    let mut h = Fake::new(9, 0xFF);
    drain(&mut p);
    p.handle_mkpdu(t0, &h.frame(|_| {})).unwrap();
    let mn = last_mn(&drain(&mut p), &p);
    let our_mi = p.mi();
    p.handle_mkpdu(t0, &h.frame(|m| m.live_peers = live(our_mi, mn)))
        .unwrap();
    let o = drain(&mut p);
    assert!(p.is_key_server());
    let mn = last_mn(&o, &p);
    let w = wrap_sak(&h.kek, &SecretKey::random(16).unwrap());
    p.handle_mkpdu(
        t0,
        &h.frame(|m| {
            m.live_peers = live(our_mi, mn);
            m.distributed_sak = Some(DistributedSak {
                an: 3,
                confidentiality_offset: ConfidentialityOffset::Offset0,
                key: Some(DistributedKey::new(1, CipherSuite::GcmAes128, w)),
            });
        }),
    )
    .unwrap();
    assert_eq!(p.counters().sak_rejected, 1);
    assert!(!drain(&mut p)
        .actions
        .iter()
        .any(|a| matches!(a, Action::InstallRxSa { an: 3, .. })));

    // As a member of a priority-0 key server: a wrap with the wrong KEK is refused.
    let mut p = Participant::new(config(1), t0).unwrap();
    let mut h = Fake::new(9, 0);
    drain(&mut p);
    p.handle_mkpdu(t0, &h.frame(|_| {})).unwrap();
    let mn = last_mn(&drain(&mut p), &p);
    let our_mi = p.mi();
    let bad = wrap_sak(
        &SecretKey::from_slice(&[1; 16]).unwrap(),
        &SecretKey::random(16).unwrap(),
    );
    p.handle_mkpdu(
        t0,
        &h.frame(|m| {
            m.live_peers = live(our_mi, mn);
            m.distributed_sak = Some(DistributedSak {
                an: 0,
                confidentiality_offset: ConfidentialityOffset::Offset0,
                key: Some(DistributedKey::new(1, CipherSuite::GcmAes128, bad)),
            });
        }),
    )
    .unwrap();
    assert_eq!(p.counters().sak_rejected, 1);
    assert!(drain(&mut p)
        .actions
        .iter()
        .all(|a| !matches!(a, Action::InstallRxSa { .. })));
    // A 256-bit key announced as GCM-AES-128 (length mismatch) is refused too.
    let _ = sci;
}

//! Simulated-clock scenarios with two and three participants.

use super::harness::{config, sci, Net};
use macsec::crypto::{CipherSuite, SecretKey, Ssci};
use macsec::mka::crypto::xpn_salt;
use macsec::mka::{CaState, Ckn, ConfidentialityOffset, RxError};
use std::time::Duration;

const HELLO: Duration = Duration::from_secs(2);
const SEC: Duration = Duration::from_secs(1);

fn two(prio_a: u8, prio_b: u8) -> Net {
    let mut a = config(1);
    a.key_server_priority = prio_a;
    let mut b = config(2);
    b.key_server_priority = prio_b;
    Net::new(vec![a, b])
}

#[test]
fn two_members_secure_within_one_hello_time() {
    let mut net = two(0x10, 0x20);
    net.run_for(HELLO - Duration::from_millis(1));
    assert!(net.all_secured_same_key(), "not secured within one hello");
    for n in &net.nodes {
        assert_eq!(n.p.state(), CaState::Secured);
        assert!(n.dp.secured);
        assert_eq!(n.dp.tx_an, Some(0));
        assert_eq!(n.p.key_server(), Some(sci(1)));
    }
    assert!(net.nodes[0].p.is_key_server());
    let ki = net.nodes[0].dp.tx_sa().unwrap().ki;
    assert_eq!(ki.kn, 1);
    assert_eq!(ki.mi, net.nodes[0].p.mi());
    // Each side has exactly the other's RX SC and one RX SA.
    assert_eq!(net.nodes[0].dp.rx_scs.len(), 1);
    assert!(net.nodes[1].dp.rx_sas.contains_key(&(sci(1), 0)));
    assert!(net.nodes[0].dp.rx_sas.contains_key(&(sci(2), 0)));
    // GCM-AES-128 defaults: no SSCI/salt, confidentiality offset 0.
    let tx = net.nodes[1].dp.tx_sa().unwrap();
    assert_eq!(tx.suite, CipherSuite::GcmAes128);
    assert_eq!(tx.ssci, Ssci(0));
    assert_eq!(tx.confidentiality, Some(ConfidentialityOffset::Offset0));

    // Steady state: nothing changes for a long time, MKPDUs every hello.
    net.strict = true;
    let tx_before = net.nodes[0].p.counters().tx;
    net.run_for(Duration::from_secs(60));
    assert!(net.all_secured_same_key());
    assert_eq!(net.nodes[0].dp.tx_sa().unwrap().ki, ki);
    let sent = net.nodes[0].p.counters().tx - tx_before;
    assert!((29..=32).contains(&sent), "{sent} MKPDUs in 60 s");
    assert_eq!(net.nodes[0].p.counters().rx_dropped.total(), 0);
    assert_eq!(net.nodes[1].p.counters().sak_received, 1);
}

#[test]
fn election_unequal_priorities_lowest_value_wins() {
    // Node 2 has the higher SCI but the better (lower) priority.
    let mut net = two(0x30, 0x05);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    assert!(net.nodes[1].p.is_key_server());
    assert!(!net.nodes[0].p.is_key_server());
    assert_eq!(net.nodes[0].p.key_server(), Some(sci(2)));
    assert_eq!(net.nodes[0].dp.tx_sa().unwrap().ki.mi, net.nodes[1].p.mi());
}

#[test]
fn election_equal_priorities_lower_sci_wins() {
    let mut net = two(0x10, 0x10);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    assert!(net.nodes[0].p.is_key_server());
    assert_eq!(net.nodes[1].p.key_server(), Some(sci(1)));
    // Same MAC, different port: the full SCI decides.
    let mut a = config(1);
    a.sci = macsec::wire::Sci([2, 0, 0, 0, 0, 1, 0, 2]);
    let b = config(1);
    let mut net = Net::new(vec![a, b]);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    assert!(net.nodes[1].p.is_key_server());
}

#[test]
fn election_respects_key_server_capable() {
    let mut a = config(1);
    a.key_server_capable = false;
    a.key_server_priority = 0;
    let mut net = Net::new(vec![a, config(2)]);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    assert!(net.nodes[1].p.is_key_server());
}

#[test]
fn nobody_capable_of_key_server_stays_pending() {
    let mut a = config(1);
    a.key_server_capable = false;
    let mut b = config(2);
    b.key_server_capable = false;
    let mut net = Net::new(vec![a, b]);
    net.run_for(Duration::from_secs(20));
    for n in &net.nodes {
        assert_eq!(n.p.state(), CaState::Pending);
        assert_eq!(n.p.live_peers().len(), 1, "they are still live peers");
        assert!(n.dp.tx_sas.is_empty());
    }
}

#[test]
fn three_members_secure_and_elect_one_key_server() {
    let mut cfgs = vec![config(3), config(1), config(2)];
    cfgs[2].key_server_priority = 0x01;
    let mut net = Net::new(cfgs);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    for (i, n) in net.nodes.iter().enumerate() {
        assert_eq!(n.p.key_server(), Some(sci(2)), "node {i}");
        assert_eq!(n.p.live_peers().len(), 2);
        assert_eq!(n.dp.rx_scs.len(), 2);
    }
    net.strict = true;
    net.run_for(Duration::from_secs(30));
    assert!(net.all_secured_same_key());
}

/// Runs a secured pair with the invariant on and returns the KI in use.
fn secured_pair(suite: CipherSuite) -> Net {
    let mut a = config(1);
    a.cipher_suite = suite;
    let mut net = Net::new(vec![a, config(2)]);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    net.strict = true;
    net
}

#[test]
fn rekey_at_pn_threshold_of_key_server_loses_nothing() {
    let mut net = secured_pair(CipherSuite::GcmAes128);
    net.run_for(Duration::from_secs(10));
    let k1 = net.nodes[0].dp.tx_sa().unwrap().ki;
    // Below the threshold: nothing happens.
    net.nodes[0].p.report_tx_pn(0, 0xC000_0000);
    net.run_for(SEC);
    assert_eq!(net.nodes[0].dp.tx_sa().unwrap().ki, k1);
    // Past 75 % of 2^32: the key server rekeys at once.
    net.nodes[0].p.report_tx_pn(0, 0xC000_0001);
    net.run_for(Duration::from_millis(1));
    assert!(net.all_secured_same_key());
    let k2 = net.nodes[0].dp.tx_sa().unwrap().ki;
    assert_eq!(k2.kn, k1.kn + 1);
    assert_eq!(net.nodes[0].dp.tx_an, Some(1));
    assert_eq!(net.nodes[0].p.counters().rekeys_pn, 1);
    // The old SAs live for the retire time, then go.
    assert!(net.nodes[1].dp.rx_sas.contains_key(&(sci(1), 0)));
    net.run_for(Duration::from_millis(2900));
    assert!(net.nodes[1].dp.rx_sas.contains_key(&(sci(1), 0)));
    net.run_for(Duration::from_millis(200));
    for n in &net.nodes {
        assert_eq!(n.dp.rx_sas.len(), 1, "old RX SA retired");
        assert_eq!(n.dp.tx_sas.len(), 1, "old TX SA retired");
    }
    // Reports for the retired key no longer trigger anything.
    net.nodes[0].p.report_tx_pn(0, 0xFFFF_FFF0);
    net.run_for(Duration::from_secs(10));
    assert_eq!(net.nodes[0].dp.tx_sa().unwrap().ki, k2);
}

#[test]
fn rekey_when_member_reports_high_pn_in_sak_use() {
    let mut net = secured_pair(CipherSuite::GcmAes128);
    let k1 = net.nodes[0].dp.tx_sa().unwrap().ki;
    // The member's own PN is only visible to the key server through its SAK Use LPN,
    // which lags one hello time (802.1X-2010 9.10), so the rekey follows within ~2 hellos.
    net.nodes[1].p.report_tx_pn(0, 0xD000_0000);
    assert!(net.run_until(Duration::from_secs(5), |n| n.nodes[0]
        .dp
        .tx_sa()
        .is_some_and(|s| s.ki.kn == k1.kn + 1)));
    net.run_for(Duration::from_millis(1));
    assert!(net.all_secured_same_key());
    assert_eq!(net.nodes[0].p.counters().rekeys_pn, 1);
    net.run_for(Duration::from_secs(10));
    assert_eq!(net.nodes[0].p.counters().rekeys_pn, 1, "only one rekey");
}

#[test]
fn rekey_when_key_server_receives_high_pn() {
    let mut net = secured_pair(CipherSuite::GcmAes256);
    net.nodes[0].p.report_rx_lowest_pn(sci(2), 0, 0xF000_0000);
    net.run_for(Duration::from_millis(1));
    assert!(net.all_secured_same_key());
    assert_eq!(net.nodes[1].dp.tx_sa().unwrap().ki.kn, 2);
    // A report for an SC the key has no SA on is ignored.
    net.nodes[0].p.report_rx_lowest_pn(sci(9), 1, 0xF000_0000);
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.nodes[1].dp.tx_sa().unwrap().ki.kn, 2);
}

#[test]
fn rekey_xpn_threshold_is_75_percent_of_2_pow_64() {
    let mut net = secured_pair(CipherSuite::GcmAesXpn128);
    net.nodes[0].p.report_tx_pn(0, 0xC000_0001);
    net.run_for(SEC);
    assert_eq!(
        net.nodes[0].dp.tx_sa().unwrap().ki.kn,
        1,
        "no rekey at 2^32 * 0.75"
    );
    net.nodes[0].p.report_tx_pn(0, 0xC000_0000_0000_0001);
    net.run_for(SEC);
    assert_eq!(net.nodes[0].dp.tx_sa().unwrap().ki.kn, 2);
    assert!(net.all_secured_same_key());
}

#[test]
fn rekey_on_interval_three_members_loses_nothing() {
    let mut cfgs = vec![config(1), config(2), config(3)];
    cfgs[0].rekey_interval = Some(Duration::from_secs(20));
    let mut net = Net::new(cfgs);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    let kn0 = net.nodes[0].dp.tx_sa().unwrap().ki.kn;
    let an0 = net.nodes[0].dp.tx_an.unwrap();
    net.strict = true;
    net.run_for(Duration::from_secs(101));
    assert!(net.all_secured_same_key());
    let kn = net.nodes[0].dp.tx_sa().unwrap().ki.kn;
    assert_eq!(kn, kn0 + 5, "one SAK per 20 s");
    assert_eq!(net.nodes[0].p.counters().rekeys_interval, 5);
    // ANs cycle 0, 1, 2, 3, 0, ...
    assert_eq!(net.nodes[2].dp.tx_an, Some((an0 + 5) % 4));
    for n in &net.nodes {
        assert!(n.dp.rx_sas.len() <= 4);
        assert_eq!(n.dp.tx_sas.len(), 1);
    }
}

#[test]
fn rekey_request_during_a_slow_rollout_waits_without_spinning() {
    let mut a = config(1);
    a.rekey_interval = Some(Duration::from_secs(30));
    let mut net = Net::new(vec![a, config(2)]);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    net.strict = true;
    // At 9.5 s a rekey starts a rollout whose acknowledgement is lost until the
    // member's hello at 12 s (its liveness, last refreshed at 8 s, survives).
    net.run_for(Duration::from_millis(7500));
    net.blocked.insert((1, 0));
    assert!(net.nodes[0].p.request_rekey());
    net.run_for(Duration::from_millis(500));
    // A second request has to wait for the first rollout; the harness asserts that
    // no deadline stays in the past meanwhile.
    assert!(net.nodes[0].p.request_rekey());
    net.run_for(Duration::from_millis(1500));
    assert_eq!(net.nodes[0].dp.tx_sa().unwrap().ki.kn, 1);
    assert_eq!(net.nodes[0].p.status().latest_key.unwrap().kn, 2);
    net.blocked.clear();
    net.run_for(Duration::from_millis(600));
    assert!(net.all_secured_same_key());
    assert_eq!(net.nodes[0].dp.tx_sa().unwrap().ki.kn, 2);
    // The next SAK waits until the previous one is retired (3 s after the switch),
    // so members that switch a little later never lose frames.
    net.run_for(Duration::from_millis(2800)); // 14.9 s: switched at 12 s
    assert_eq!(net.nodes[0].p.status().latest_key.unwrap().kn, 2);
    net.run_for(Duration::from_millis(200));
    assert!(net.all_secured_same_key());
    assert_eq!(net.nodes[0].dp.tx_sa().unwrap().ki.kn, 3);
    net.run_for(Duration::from_secs(10));
    assert!(net.all_secured_same_key());
}

#[test]
fn back_to_back_rekeys_lose_nothing() {
    let mut net = secured_pair(CipherSuite::GcmAes128);
    for _ in 0..5 {
        assert!(net.nodes[0].p.request_rekey());
        let an = net.nodes[0].dp.tx_an.unwrap();
        net.nodes[0].p.report_tx_pn(an, 0xF000_0000);
        net.run_for(Duration::from_millis(700));
    }
    net.run_for(Duration::from_secs(20));
    assert!(net.all_secured_same_key());
    let kn = net.nodes[0].dp.tx_sa().unwrap().ki.kn;
    assert!((3..=6).contains(&kn), "{kn}");
}

#[test]
fn manual_rekey_only_on_key_server() {
    let mut net = secured_pair(CipherSuite::GcmAes128);
    assert!(!net.nodes[1].p.request_rekey());
    assert!(net.nodes[0].p.request_rekey());
    net.run_for(Duration::from_millis(1));
    assert_eq!(net.nodes[1].dp.tx_sa().unwrap().ki.kn, 2);
    // The next one waits for the retire time of the previous key...
    net.cut(0, 1);
    assert!(net.nodes[0].p.request_rekey());
    net.run_for(Duration::from_millis(2990));
    assert_eq!(net.nodes[0].p.status().latest_key.unwrap().kn, 2);
    net.run_for(Duration::from_millis(20));
    assert_eq!(net.nodes[0].p.status().latest_key.unwrap().kn, 3);
    // ... and a further one for the rollout, which the cut link holds up.
    assert!(net.nodes[0].p.request_rekey());
    net.run_for(Duration::from_millis(1000));
    assert_eq!(net.nodes[0].p.status().latest_key.unwrap().kn, 3);
}

#[test]
fn key_server_waits_for_a_lost_acknowledgement() {
    let mut net = secured_pair(CipherSuite::GcmAes128);
    // The member's MKPDUs are lost for 3 s (less than the life time), so its
    // acknowledgement of the new SAK arrives late; the key server keeps the old key
    // for transmission until then. (No frame is lost: strict stays on.)
    net.blocked.insert((1, 0));
    net.nodes[0].p.request_rekey();
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.nodes[0].dp.tx_sa().unwrap().ki.kn, 1);
    net.blocked.clear();
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    assert_eq!(net.nodes[0].dp.tx_sa().unwrap().ki.kn, 2);
}

#[test]
fn peer_loss_after_life_time_and_recovery() {
    let mut net = secured_pair(CipherSuite::GcmAes128);
    net.strict = false;
    let k1 = net.nodes[0].dp.tx_sa().unwrap().ki;
    let b_mi = net.nodes[1].p.mi();
    net.cut(0, 1);
    // Still live 5.9 s after the last MKPDU went through.
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.nodes[0].p.live_peers(), vec![sci(2)]);
    assert!(net.run_until(Duration::from_secs(3), |n| n.nodes[0]
        .p
        .live_peers()
        .is_empty()));
    assert!(net.elapsed() <= Duration::from_secs(2 + 6 + 2 + 1));
    net.run_for(SEC);
    for n in &net.nodes {
        assert!(n.p.live_peers().is_empty());
        assert_eq!(n.p.state(), CaState::Pending);
        assert!(!n.dp.secured, "Unsecured was reported");
        assert!(n.dp.rx_scs.is_empty() && n.dp.rx_sas.is_empty() && n.dp.tx_sas.is_empty());
    }
    assert_eq!(net.nodes[0].p.counters().peers_expired, 1);
    // The member lost its key server: it picked a new MI.
    assert_ne!(net.nodes[1].p.mi(), b_mi);
    net.heal(0, 1);
    net.run_for(HELLO + Duration::from_millis(1));
    assert!(net.all_secured_same_key());
    let k2 = net.nodes[0].dp.tx_sa().unwrap().ki;
    assert_ne!(k2, k1);
}

#[test]
fn member_restart_with_new_mi_recovers() {
    let mut net = secured_pair(CipherSuite::GcmAes128);
    net.strict = false;
    let old_mi = net.nodes[1].p.mi();
    // The member restarts: new MI, same SCI, empty data plane.
    net.restart(1, config(2));
    assert_ne!(net.nodes[1].p.mi(), old_mi);
    net.run_for(Duration::from_millis(10));
    // The key server ignores the new MI while the old instance might still be alive,
    // but gives it only 1.5 hello times.
    assert!(net.nodes[0].p.counters().rx_dropped.duplicate_sci >= 1);
    assert!(net.run_until(Duration::from_secs(8), |n| n.all_secured_same_key()));
    assert!(net.elapsed() < Duration::from_secs(2 + 8));
    assert_eq!(net.nodes[1].dp.tx_sa().unwrap().ki.kn, 2);
}

#[test]
fn third_member_joins_and_leaves() {
    let mut net = Net::new(vec![config(1), config(2), config(3)]);
    net.isolate(2);
    net.run_for(HELLO);
    assert!(net.nodes[0].dp.secured && net.nodes[1].dp.secured);
    assert!(!net.nodes[2].dp.secured);
    net.heal_all();
    assert!(net.run_until(Duration::from_secs(4), |n| n.all_secured_same_key()));
    assert_eq!(
        net.nodes[2].dp.tx_sa().unwrap().ki.kn,
        2,
        "rekeyed for the joiner"
    );
    net.strict = true;
    net.run_for(Duration::from_secs(10));
    net.strict = false;
    net.isolate(2);
    net.run_for(Duration::from_secs(10));
    // The remaining two rekeyed without the departed member.
    let ki = net.nodes[0].dp.tx_sa().unwrap().ki;
    assert_eq!(ki.kn, 3);
    assert_eq!(net.nodes[1].dp.tx_sa().unwrap().ki, ki);
    assert_eq!(net.nodes[0].dp.rx_scs.len(), 1);
    assert!(!net.nodes[2].dp.secured);
}

#[test]
fn key_server_leaves_three_member_ca_and_another_takes_over() {
    let mut net = Net::new(vec![config(1), config(2), config(3)]);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    net.isolate(0);
    net.run_for(Duration::from_secs(20));
    assert_eq!(net.nodes[1].p.key_server(), Some(sci(2)));
    assert_eq!(net.nodes[2].p.key_server(), Some(sci(2)));
    let k = net.nodes[1].dp.tx_sa().unwrap().ki;
    assert_eq!(k.mi, net.nodes[1].p.mi());
    assert_eq!(net.nodes[2].dp.tx_sa().unwrap().ki, k);
}

#[test]
fn wrong_cak_never_becomes_live() {
    let mut b = config(2);
    b.cak = SecretKey::from_hex("00112233445566778899AABBCCDDEEFF").unwrap();
    let mut net = Net::new(vec![config(1), b]);
    net.run_for(Duration::from_secs(30));
    for n in &net.nodes {
        assert!(n.p.live_peers().is_empty());
        assert!(n.p.status().potential_peers.is_empty());
        assert_eq!(n.p.state(), CaState::Pending);
        assert!(n.dp.rx_scs.is_empty());
        assert!(n.p.counters().rx_dropped.icv >= 14);
        assert_eq!(n.p.counters().rx_ok, 0);
    }
}

#[test]
fn other_ckn_is_ignored() {
    let mut b = config(2);
    b.ckn = Ckn::from_hex("01").unwrap();
    let mut net = Net::new(vec![config(1), b]);
    net.run_for(Duration::from_secs(10));
    assert!(net.nodes[0].p.live_peers().is_empty());
    assert!(net.nodes[0].p.counters().rx_dropped.unknown_ckn >= 5);
}

#[test]
fn replayed_mkpdu_is_rejected() {
    let mut net = secured_pair(CipherSuite::GcmAes128);
    net.run_for(Duration::from_secs(4));
    let (_, frame) = net
        .captured
        .iter()
        .rev()
        .find(|(from, _)| *from == 0)
        .cloned()
        .unwrap();
    // Delivered once already by the harness: a second copy is stale.
    assert_eq!(net.inject(1, &frame), Err(RxError::StaleMn));
    // So is an older one.
    let (_, first) = net.captured.iter().find(|(f, _)| *f == 0).cloned().unwrap();
    assert_eq!(net.inject(1, &first), Err(RxError::StaleMn));
    assert_eq!(net.nodes[1].p.counters().rx_dropped.stale_mn, 2);
    // A modified copy fails the ICV.
    let mut bad = frame.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert_eq!(net.inject(1, &bad), Err(RxError::Icv));
    // Our own frame looped back.
    assert_eq!(net.inject(0, &frame), Err(RxError::OwnSci));
    // Still fine.
    net.run_for(Duration::from_secs(10));
    assert!(net.all_secured_same_key());
}

#[test]
fn all_four_cipher_suites_secure() {
    for suite in CipherSuite::ALL {
        let mut net = secured_pair(suite);
        net.run_for(Duration::from_secs(5));
        assert!(net.all_secured_same_key(), "{suite}");
        let tx_a = net.nodes[0].dp.tx_sa().unwrap().clone();
        let tx_b = net.nodes[1].dp.tx_sa().unwrap().clone();
        assert_eq!(tx_a.suite, suite);
        assert_eq!(tx_a.key.len(), suite.key_len());
        if suite.is_xpn() {
            // SSCI 1 for the numerically higher SCI, 2 for the lower.
            assert_eq!(tx_b.ssci, Ssci(1));
            assert_eq!(tx_a.ssci, Ssci(2));
            assert_eq!(tx_a.salt, xpn_salt(&tx_a.ki));
            assert_eq!(net.nodes[0].dp.rx_sas[&(sci(2), 0)].ssci, Ssci(1));
            assert_eq!(net.nodes[1].dp.rx_sas[&(sci(1), 0)].ssci, Ssci(2));
        } else {
            assert_eq!(tx_a.ssci, Ssci(0));
        }
    }
}

#[test]
fn confidentiality_offset_is_limited_by_capabilities() {
    use macsec::mka::Capability;
    let mut a = config(1);
    a.confidentiality_offset = ConfidentialityOffset::Offset30;
    a.macsec_capability = Capability::ConfidentialityWithOffsets;
    let mut net = Net::new(vec![a, config(2)]); // member: capability 2 (Linux)
    net.run_for(HELLO);
    assert_eq!(
        net.nodes[1].dp.tx_sa().unwrap().confidentiality,
        Some(ConfidentialityOffset::Offset0)
    );
    let mut a = config(1);
    a.confidentiality_offset = ConfidentialityOffset::Offset50;
    a.macsec_capability = Capability::ConfidentialityWithOffsets;
    let mut b = config(2);
    b.macsec_capability = Capability::ConfidentialityWithOffsets;
    let mut net = Net::new(vec![a, b]);
    net.run_for(HELLO);
    assert_eq!(
        net.nodes[1].dp.tx_sa().unwrap().confidentiality,
        Some(ConfidentialityOffset::Offset50)
    );
    let mut b = config(2);
    b.macsec_capability = Capability::IntegrityOnly;
    let mut net = Net::new(vec![config(1), b]);
    net.run_for(HELLO);
    assert_eq!(
        net.nodes[0].dp.tx_sa().unwrap().confidentiality,
        Some(ConfidentialityOffset::IntegrityOnly)
    );
}

#[test]
fn member_not_desiring_macsec_gives_authenticated_only() {
    let mut b = config(2);
    b.macsec_desired = false;
    let mut net = Net::new(vec![config(1), b]);
    net.run_for(Duration::from_secs(20));
    for n in &net.nodes {
        assert_eq!(n.p.live_peers().len(), 1, "still live peers");
        assert_eq!(n.p.state(), CaState::Authenticated);
        assert!(n.dp.tx_sas.is_empty());
    }
}

/// Runs where the `serde` feature is on (the workspace's `cargo test` turns it on).
#[cfg(feature = "serde")]
#[test]
fn status_and_counters_serialize_without_keys() {
    let net = {
        let mut n = secured_pair(CipherSuite::GcmAes256);
        n.run_for(Duration::from_secs(3));
        n
    };
    let st = net.nodes[1].p.status();
    let json = serde_json::to_string(&st).unwrap();
    assert!(json.contains("\"state\":\"secured\""), "{json}");
    assert!(json.contains(&sci(1).to_string()));
    assert!(json.contains("\"rx_ok\""));
    let key_hex = hex::encode(&net.nodes[1].dp.tx_sa().unwrap().key);
    assert!(!json.to_lowercase().contains(&key_hex));
    assert!(!json
        .to_lowercase()
        .contains(&super::harness::CAK.to_lowercase()));
    assert_eq!(st.live_peers.len(), 1);
    assert_eq!(st.latest_key.as_ref().unwrap().cipher_suite, "gcm-aes-256");
    let dbg = format!("{:?}", net.nodes[1].p);
    assert!(!dbg.to_lowercase().contains(&key_hex));
    let _ = super::harness::CKN;
}

#[test]
fn mkpdu_timing_and_hello_interval() {
    let mut net = secured_pair(CipherSuite::GcmAes128);
    net.captured.clear();
    let t = net.now;
    net.run_for(Duration::from_secs(20));
    let from_a = net.captured.iter().filter(|(f, _)| *f == 0).count();
    assert!((9..=11).contains(&from_a), "{from_a}");
    assert_eq!(net.now - t, Duration::from_secs(20));
}

#[test]
fn xpn_parameter_set_carries_the_upper_lpn_bits() {
    let mut a = config(1);
    a.cipher_suite = CipherSuite::GcmAesXpn256;
    a.send_xpn_parameter_set = true;
    let mut b = config(2);
    b.send_xpn_parameter_set = true;
    let mut net = Net::new(vec![a, b]);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    net.strict = true;
    // Without the XPN set the key server would only see the low 32 bits (0x10).
    net.nodes[1].p.report_tx_pn(0, 0xC000_0000_0000_0010);
    net.captured.clear();
    assert!(net.run_until(Duration::from_secs(6), |n| n.nodes[0]
        .dp
        .tx_sa()
        .is_some_and(|s| s.ki.kn == 2)));
    assert_eq!(net.nodes[0].p.counters().rekeys_pn, 1);
    let saw_high = net.captured.iter().any(|(from, f)| {
        let p = macsec::mka::pdu::decode_frame(f).unwrap().pdu;
        *from == 1 && p.xpn.is_some_and(|x| x.latest_lpn_high == 0xC000_0000)
    });
    assert!(
        saw_high,
        "member reported the upper LPN half in the XPN set"
    );
    net.run_for(Duration::from_secs(5));
    assert!(net.all_secured_same_key());
}

/// The key server restarts (new MI, same SCI). The member ignores the new MI while the
/// old instance may be alive (1.5 hello times), then loses its key server and takes a
/// new MI itself; the restarted key server, which meanwhile holds the member's old MI
/// as a potential peer, must take the new MI at once rather than wait out another
/// life time.
#[test]
fn key_server_restart_with_new_mi_recovers_within_two_hellos() {
    let mut net = secured_pair(CipherSuite::GcmAes128);
    net.strict = false;
    let t0 = net.elapsed();
    let old_mi = net.nodes[0].p.mi();
    net.restart(0, config(1));
    assert_ne!(net.nodes[0].p.mi(), old_mi);
    assert!(net.run_until(Duration::from_secs(12), |n| n.all_secured_same_key()));
    let took = net.elapsed() - t0;
    assert!(
        took <= HELLO.mul_f32(1.5) + Duration::from_millis(500),
        "secured again after {took:?}"
    );
    assert!(net.nodes[1].p.counters().rx_dropped.duplicate_sci >= 1);
    assert!(net.nodes[1].p.counters().mi_resets >= 1);
    assert!(net.nodes[0].p.counters().potential_replaced >= 1);
    assert_eq!(net.nodes[0].p.key_server(), Some(sci(1)));
}

/// A participant held beside a principal one (a key chain's second CA) takes part in
/// the CA but distributes no SAK; released, it secures the CA within a hello, on an AN
/// the other CA does not use.
#[test]
fn a_held_key_server_distributes_nothing_until_released() {
    let mut net = two(0x10, 0x20);
    net.nodes[0].p.set_sak_hold(true);
    net.nodes[1].p.set_sak_hold(true);
    // The harness asserts that no deadline stays in the past (no busy loop).
    net.run_for(Duration::from_secs(20));
    for n in &net.nodes {
        assert_eq!(n.p.live_peers().len(), 1, "liveness runs while held");
        assert_eq!(n.dp.tx_an, None);
        assert!(n.dp.rx_sas.is_empty() && n.dp.tx_sas.is_empty());
    }
    assert!(net.nodes[0].p.is_key_server());
    assert_eq!(net.nodes[0].p.counters().sak_generated, 0);
    // The other CA uses ANs 0 and 1 on this SecY.
    net.nodes[0].p.set_avoid_ans(0b0011);
    net.nodes[0].p.set_sak_hold(false);
    net.nodes[1].p.set_sak_hold(false);
    net.run_for(HELLO);
    assert!(net.all_secured_same_key());
    assert_eq!(net.nodes[0].dp.tx_an, Some(2));
    assert_eq!(net.nodes[1].dp.tx_an, Some(2));
    // Its next SAK avoids them too while they are in use.
    assert!(net.nodes[0].p.request_rekey());
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.nodes[0].dp.tx_an, Some(3));
    // Free again: the cycle goes on through 0.
    net.nodes[0].p.set_avoid_ans(0);
    assert!(net.nodes[0].p.request_rekey());
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.nodes[0].dp.tx_an, Some(0));
    assert!(net.all_secured_same_key());
}

/// `rekey_on_peer_loss`: on (the default) the key server replaces the SAK when a live
/// member departs; off, it keeps it.
#[test]
fn rekey_on_peer_loss_decides_whether_a_departure_rekeys() {
    for on in [true, false] {
        let mut cfgs = vec![config(1), config(2), config(3)];
        cfgs[0].rekey_on_peer_loss = on;
        let mut net = Net::new(cfgs);
        net.run_for(HELLO);
        assert!(net.all_secured_same_key());
        let k1 = net.nodes[0].dp.tx_sa().unwrap().ki;
        net.isolate(2);
        net.run_for(Duration::from_secs(10));
        assert_eq!(net.nodes[0].p.live_peers(), vec![sci(2)]);
        let k2 = net.nodes[0].dp.tx_sa().unwrap().ki;
        assert_eq!(k2 != k1, on, "rekey_on_peer_loss = {on}: {k1:?} -> {k2:?}");
        assert_eq!(net.nodes[1].dp.tx_sa().unwrap().ki, k2);
    }
}

use super::*;
use crate::mka::types::Ckn;
use std::time::Duration;

fn cfg(n: u8) -> Config {
    Config::new(
        SecretKey::from_slice(&[7; 16]).unwrap(),
        Ckn::new(&[8; 16]).unwrap(),
        Sci([2, 0, 0, 0, 0, n, 0, 1]),
    )
}

#[test]
fn first_mkpdu_at_once_then_every_hello() {
    let t0 = Instant::now();
    let mut p = Participant::new(cfg(1), t0).unwrap();
    let f = p.poll_transmit().unwrap();
    let d = decode_frame(&f).unwrap().pdu;
    assert_eq!(d.basic.mn, 1);
    assert!(d.basic.key_server, "could be key server until an election");
    assert!(d.live_peers.is_none() && d.sak_use.is_none());
    assert!(p.poll_transmit().is_none());
    assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    p.handle_timeout(t0 + Duration::from_secs(1));
    assert!(p.poll_transmit().is_none());
    p.handle_timeout(t0 + Duration::from_secs(2));
    let d = decode_frame(&p.poll_transmit().unwrap()).unwrap().pdu;
    assert_eq!(d.basic.mn, 2);
    assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(4)));
    assert_eq!(p.state(), CaState::Pending);
}

#[test]
fn acceptably_recent_means_sent_within_the_life_time() {
    let t0 = Instant::now();
    let mut p = Participant::new(cfg(1), t0).unwrap();
    p.poll_transmit().unwrap(); // MN 1 at t0
    for s in 1..=2u64 {
        p.handle_timeout(t0 + Duration::from_secs(2 * s));
        p.poll_transmit().unwrap(); // MN 2 and 3
    }
    p.advance(t0 + Duration::from_secs(6));
    assert!(p.mn_is_recent(1));
    assert!(!p.mn_is_recent(0));
    assert!(!p.mn_is_recent(4), "not sent yet");
    p.advance(t0 + Duration::from_millis(6001));
    assert!(!p.mn_is_recent(1));
    assert!(p.mn_is_recent(2) && p.mn_is_recent(3));
}

#[test]
fn mn_wrap_picks_a_new_mi() {
    let t0 = Instant::now();
    let mut p = Participant::new(cfg(1), t0).unwrap();
    let mi = p.mi();
    p.mn = u32::MAX;
    let d = decode_frame(&p.poll_transmit().unwrap()).unwrap().pdu;
    assert_ne!(d.basic.mi, mi);
    assert_eq!(d.basic.mn, 1);
    assert_eq!(p.counters().mi_resets, 1);
}

#[test]
fn time_never_goes_backwards() {
    let t0 = Instant::now();
    let mut p = Participant::new(cfg(1), t0).unwrap();
    p.handle_timeout(t0 + Duration::from_secs(5));
    p.handle_timeout(t0);
    assert_eq!(p.now, t0 + Duration::from_secs(5));
}

#[test]
fn config_is_validated() {
    let mut c = cfg(1);
    c.hello_time = Duration::ZERO;
    assert_eq!(
        Participant::new(c, Instant::now()).unwrap_err(),
        ConfigError::HelloTime
    );
    let mut c = cfg(1);
    c.max_peers = 81;
    assert_eq!(
        Participant::new(c, Instant::now()).unwrap_err(),
        ConfigError::MaxPeers
    );
}

#[test]
fn pick_an_cycles_and_skips_held_keys() {
    let t0 = Instant::now();
    let mut p = Participant::new(cfg(1), t0).unwrap();
    assert_eq!(p.pick_an(), 0);
    assert_eq!(p.pick_an(), 1);
    let key = |an| SaKey {
        ki: Ki::NONE,
        an,
        suite: CipherSuite::GcmAes128,
        confidentiality: ConfidentialityOffset::Offset0,
        key: SecretKey::from_slice(&[1; 16]).unwrap(),
        salt: Salt::default(),
        wrapped: None,
        recipients: Vec::new(),
        distributed_at: t0,
        rx_scs: Vec::new(),
        rx_installed: true,
        tx_installed: true,
        transmitting: false,
        tx_next_pn: 1,
        lpn_snapshot: 0,
        lpn_report: 1,
    };
    p.old = Some(key(2));
    p.latest = Some(key(3));
    assert_eq!(p.pick_an(), 0, "2 and 3 are held");
    p.old = None;
    assert_eq!(p.pick_an(), 1);
    assert_eq!(p.pick_an(), 2);
    assert_eq!(p.pick_an(), 0);
}

#[test]
fn two_participants_direct() {
    let t0 = Instant::now();
    let mut a = Participant::new(cfg(1), t0).unwrap();
    let mut b = Participant::new(cfg(2), t0).unwrap();
    for _ in 0..5 {
        while let Some(f) = a.poll_transmit() {
            b.handle_mkpdu(t0, &f).unwrap();
        }
        while b.poll_action().is_some() {}
        while let Some(f) = b.poll_transmit() {
            a.handle_mkpdu(t0, &f).unwrap();
        }
        while a.poll_action().is_some() {}
    }
    assert!(a.is_key_server() && !b.is_key_server());
    assert_eq!(a.tx_an(), Some(0));
    assert_eq!(b.tx_an(), Some(0));
    assert_eq!(a.tx_ki(), b.tx_ki());
    assert_eq!(b.key_server(), Some(a.sci()));
    assert_eq!(a.live_peers(), vec![b.sci()]);
    assert!(!format!("{a:?}").contains("0707"));
}

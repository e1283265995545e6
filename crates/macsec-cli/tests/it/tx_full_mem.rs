//! A full transmit ring costs the frames that find it full, counted as `tx_ring_full`,
//! and never a wait: the pumps go on reading their receive ports. Without root, over
//! in-memory wires whose far end nobody reads.

use std::time::{Duration, Instant};

use macsec::crypto::{CipherSuite, SecretKey};
use macsec::secy::{SecY, SecYConfig};
use macsec::wire::Sci;
use macsec_forward::forward::pump::{ProtectPump, ValidatePump};
use macsec_forward::io::TxPort;
use macsec_testkit::mem::{wire, WireConfig};

const SCI: Sci = Sci([0x02, 0, 0, 0, 0x0F, 0x01, 0, 1]);
/// Buffers of the wire that fills up.
const SLOTS: usize = 8;

fn secy() -> SecY {
    let mut cfg = SecYConfig::default();
    cfg.cipher = CipherSuite::GcmAes128;
    cfg.sci = SCI;
    let mut s = SecY::new(cfg).unwrap();
    let key = SecretKey::from_slice(&[7u8; 16]).unwrap();
    s.tx.install_sa(0, &key, 1, None).unwrap();
    s.tx.set_encoding_sa(0).unwrap();
    s.rx.add_sc(SCI).unwrap();
    s.rx.install_sa(SCI, 0, &key, 1, None).unwrap();
    s
}

fn frame(i: u32) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x0B, 0x02, 0, 0, 0, 0, 0x0A, 0x88, 0xB6];
    f.extend_from_slice(&i.to_be_bytes());
    f.resize(600, 0x5A);
    f
}

#[test]
fn a_full_transmit_ring_is_counted_and_receive_goes_on() {
    let wide = WireConfig::default();
    let narrow = WireConfig {
        capacity: SLOTS,
        ..WireConfig::default()
    };
    // Protect: host -> plain wire -> pump -> secure wire of 8 buffers, never read.
    let (mut host, plain_rx) = wire(&wide);
    let (secure_tx, _secure_rx) = wire(&narrow);
    let s = secy();
    let mut protect = ProtectPump::single(plain_rx, secure_tx, s.tx, 1500);
    // Validate: peer -> secure wire -> pump -> plain wire of 8 buffers, never read.
    let (mut peer, secure_rx) = wire(&wide);
    let (plain_tx, _plain_rx) = wire(&narrow);
    let mut validate = ValidatePump::single(secure_rx, plain_tx, s.rx, 1500, 0);
    let mut sealer = secy();

    let mut sent = 0u64;
    for round in 0..3u32 {
        for i in 0..40 {
            let f = frame(round * 100 + i);
            assert!(host.send_frame(&f).unwrap());
            let mut b = vec![0u8; f.len() + 64];
            b[16..16 + f.len()].copy_from_slice(&f);
            let r = sealer.tx.protect(&mut b, 16..16 + f.len()).unwrap();
            assert!(peer.send_frame(&b[r]).unwrap());
        }
        host.flush().unwrap();
        peer.flush().unwrap();
        sent += 40;
        for what in ["protect", "validate"] {
            let t0 = Instant::now();
            let t = Duration::from_millis(500);
            let n = if what == "protect" {
                protect.run_batch(t)
            } else {
                validate.run_batch(t)
            }
            .unwrap();
            assert_eq!(n, 40, "{what}: the whole batch is read, ring full or not");
            assert!(
                t0.elapsed() < Duration::from_millis(400),
                "{what}: a full ring must not be waited for ({:?})",
                t0.elapsed()
            );
        }
        for (what, c) in [
            ("protect", protect.counters()),
            ("validate", validate.counters()),
        ] {
            assert_eq!(c.frames_in, sent, "{what}: {c:?}");
            assert_eq!(c.frames_out, SLOTS as u64, "{what}: {c:?}");
            assert_eq!(c.tx_ring_full, sent - SLOTS as u64, "{what}: {c:?}");
            assert_eq!((c.secy_dropped, c.tx_errors), (0, 0), "{what}: {c:?}");
        }
    }
    assert_eq!(
        validate
            .link(0)
            .unwrap()
            .secy()
            .stats()
            .secy
            .in_pkts_bad_tag,
        0
    );
}

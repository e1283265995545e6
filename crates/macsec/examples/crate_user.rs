//! What a project that depends on `macsec` does with it, end to end and in memory:
//! two MKA participants with the same pre-shared CAK agree on a SAK (802.1X-2010
//! clause 9), each applies the participant's actions to its own SecY, and a frame is
//! then protected by one SecY and validated by the other (802.1AE clause 10).
//!
//! `cargo run -p macsec --example crate_user`

use macsec::crypto::{CipherSuite, SecretKey};
use macsec::mka::{Action, Ckn, Config, Participant};
use macsec::secy::{FrameBuf, RxVerdict, SecY, SecYConfig, XpnParams};
use macsec::wire::Sci;
use std::time::{Duration, Instant};

/// One station: an MKA participant and the SecY it controls.
struct Station {
    name: &'static str,
    kay: Participant,
    secy: SecY,
    secured: bool,
}

impl Station {
    fn new(name: &'static str, sci: Sci, cak: &SecretKey, ckn: Ckn, now: Instant) -> Station {
        let mut cfg = Config::new(cak.duplicate(), ckn, sci);
        cfg.cipher_suite = CipherSuite::GcmAes256;
        let mut secy = SecYConfig::new(sci);
        secy.cipher = CipherSuite::GcmAes256;
        Station {
            name,
            kay: Participant::new(cfg, now).expect("valid MKA configuration"),
            secy: SecY::new(secy).expect("valid SecY configuration"),
            secured: false,
        }
    }

    /// Applies the participant's instructions to the SecY, in order (drain them
    /// before sending MKPDUs: an MKPDU may announce an SA that must already exist).
    fn apply_actions(&mut self) {
        while let Some(a) = self.kay.poll_action() {
            let xpn =
                |suite: CipherSuite, ssci, salt| suite.is_xpn().then_some(XpnParams { ssci, salt });
            match a {
                Action::InstallRxSc { sci } => self.secy.rx.add_sc(sci).expect("new SC"),
                Action::InstallRxSa {
                    sci,
                    an,
                    key,
                    lowest_pn,
                    ssci,
                    salt,
                    suite,
                    ..
                } => {
                    self.secy.rx.set_cipher(suite);
                    let x = xpn(suite, ssci, salt);
                    self.secy
                        .rx
                        .install_sa(sci, an, &key, lowest_pn, x)
                        .expect("rx SA");
                }
                Action::InstallTxSa {
                    an,
                    key,
                    next_pn,
                    ssci,
                    salt,
                    suite,
                    ..
                } => {
                    self.secy.tx.set_cipher(suite);
                    let x = xpn(suite, ssci, salt);
                    self.secy
                        .tx
                        .install_sa(an, &key, next_pn, x)
                        .expect("tx SA");
                }
                Action::EnableTx { an } => self.secy.tx.set_encoding_sa(an).expect("tx SA"),
                Action::DeleteRxSa { sci, an } => self.secy.rx.remove_sa(sci, an).expect("rx SA"),
                Action::DeleteTxSa { an } => self.secy.tx.remove_sa(an).expect("tx SA"),
                Action::DeleteRxSc { sci } => self.secy.rx.remove_sc(sci).expect("SC"),
                Action::Secured => {
                    let ks = self.kay.key_server().map(|s| s.to_string());
                    println!(
                        "{}: secured, key server {}",
                        self.name,
                        ks.unwrap_or_default()
                    );
                    self.secured = true;
                }
                Action::Unsecured => self.secured = false,
                other => println!("{}: action {other:?} not used here", self.name),
            }
        }
    }
}

/// One step of `from`: its timers, its actions, and its MKPDUs delivered to `to`.
fn exchange(from: &mut Station, to: &mut Station, now: Instant) {
    from.kay.handle_timeout(now);
    from.apply_actions();
    while let Some(mkpdu) = from.kay.poll_transmit() {
        // A real KaY counts a rejected MKPDU; here every MKPDU is genuine.
        to.kay.handle_mkpdu(now, &mkpdu).expect("valid MKPDU");
        to.apply_actions();
    }
}

fn main() {
    // The pre-shared connectivity association key and its name, the same at both ends.
    let cak = SecretKey::random(32).expect("OS random number generator");
    let ckn = Ckn::new(&[0x4B; 16]).expect("1 to 32 octets");
    let t0 = Instant::now();
    let mut a = Station::new("A", "0200000000010001".parse().unwrap(), &cak, ckn, t0);
    let mut b = Station::new("B", "0200000000020001".parse().unwrap(), &cak, ckn, t0);

    // A simulated clock and a lossless wire: every MKPDU one station sends reaches the
    // other at once. Time advances in 100 ms steps; MKA sends one MKPDU per hello time.
    let mut now = t0;
    for _ in 0..100 {
        exchange(&mut a, &mut b, now);
        exchange(&mut b, &mut a, now);
        if a.secured && b.secured {
            break;
        }
        now += Duration::from_millis(100);
    }
    assert!(a.secured && b.secured, "both stations secured");
    assert_eq!(
        a.kay.tx_ki(),
        b.kay.tx_ki(),
        "both transmit with the same SAK"
    );
    let kn = a.kay.tx_ki().map(|k| k.kn).unwrap_or_default();
    println!(
        "after {:?} of simulated time both use the SAK with KN {kn}",
        now - t0
    );

    // A frame from A's side of the link: DA, SA, EtherType IPv4, payload.
    let plain = [
        &[0x02, 0, 0, 0, 0, 2][..],
        &[0x02, 0, 0, 0, 0, 1],
        &[0x08, 0x00],
        &[0x45; 46],
    ]
    .concat();
    let mut frame = FrameBuf::new(&plain);
    a.secy
        .tx
        .protect_buf(&mut frame)
        .expect("an encoding SA is installed");
    println!(
        "protected with the agreed SAK: {} -> {} octets",
        plain.len(),
        frame.len()
    );
    assert_eq!(b.secy.rx.validate_buf(&mut frame), RxVerdict::Ok);
    assert_eq!(frame.as_slice(), &plain[..]);
    println!("validated by B: the frame is restored");
}

//! Library quickstart: two SecYs with a static key, one frame protected and validated,
//! then the counters. Run with `cargo run --example quickstart`.

use macsec::crypto::{CipherSuite, SecretKey};
use macsec::secy::{FrameBuf, Protection, RxVerdict, SecY, SecYConfig};
use macsec::wire::Sci;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = SecretKey::random(32)?;
    let a: Sci = "0200000000010001".parse()?;
    let b: Sci = "0200000000020001".parse()?;
    let cfg = |sci| {
        let mut conf = SecYConfig::default();
        conf.sci = sci;
        conf.cipher = CipherSuite::GcmAes256;
        conf.protection = Protection::default();
        conf
    };

    // Side A transmits with SA 0 from PN 1; side B has a receive SC for A's SCI.
    let mut side_a = SecY::new(cfg(a))?;
    side_a.tx.install_sa(0, &key, 1, None)?;
    let mut side_b = SecY::new(cfg(b))?;
    side_b.rx.add_sc(a)?;
    side_b.rx.install_sa(a, 0, &key, 1, None)?;

    // DA, SA, EtherType IPv4, payload.
    let plain = [
        &[0x02, 0, 0, 0, 0, 2][..],
        &[0x02, 0, 0, 0, 0, 1],
        &[0x08, 0x00],
        &[0x45; 46],
    ]
    .concat();
    let mut frame = FrameBuf::new(&plain);
    side_a
        .tx
        .protect_buf(&mut frame)
        .map_err(|e| format!("{e:?}"))?;
    println!("protected: {} -> {} octets", plain.len(), frame.len());

    let verdict = side_b.rx.validate_buf(&mut frame);
    assert_eq!(verdict, RxVerdict::Ok);
    assert_eq!(frame.as_slice(), &plain[..]);
    println!("validated: {verdict:?}, restored {} octets", frame.len());

    // A replay of the same frame is late.
    let mut again = FrameBuf::new(&plain);
    side_a
        .tx
        .protect_buf(&mut again)
        .map_err(|e| format!("{e:?}"))?;
    let copy = again.clone();
    side_b.rx.validate_buf(&mut again);
    let mut replay = copy;
    println!("replayed:  {:?}", side_b.rx.validate_buf(&mut replay));

    let stats = side_b.stats();
    for (name, value) in stats.secy.rx.fields() {
        if value != 0 {
            println!("  SecY {name} = {value}");
        }
    }
    for sc in &stats.rx_sc {
        for (name, value) in sc.counters.fields() {
            if value != 0 {
                println!("  receive SC {} {name} = {value}", sc.sci);
            }
        }
    }
    Ok(())
}

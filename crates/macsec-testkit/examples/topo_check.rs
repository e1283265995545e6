//! Quick manual check of the namespace topology with kernel bridges (root only): a
//! ping, a jumbo ping and a checked TCP transfer from A to B, all in-process.
fn main() {
    use macsec_testkit::lab::{Lab, LabSpec, Side};
    use macsec_testkit::topology::Middle;
    use std::time::Duration;
    let spec = LabSpec {
        tag: "chk".into(),
        plain_mtu: 9000,
        secure_mtu: 9000,
        host_offloads_off: true,
        middle: Middle::Bridges,
        subnet: 77,
        ..LabSpec::default()
    };
    // With bridges in the middle no forwarder is started: the binary is never run.
    let lab = Lab::start(spec, std::path::Path::new("macsec")).expect("topology");
    let ms = Duration::from_millis;
    let p = lab.ping(Side::A, 56, 3, ms(200), false).expect("ping");
    println!(
        "ping: {}/{} replies, RTT avg {:.0} µs",
        p.received, p.sent, p.avg_us
    );
    let p = lab.ping(Side::A, 8972, 3, ms(200), true).expect("ping");
    println!("jumbo ping: {}/{} replies", p.received, p.sent);
    let (got, secs) = lab.tcp_transfer(200 << 20, 5201).expect("tcp");
    println!(
        "bridge MTU 9000: {:.2} Gbit/s ({got} octets, content checked)",
        got as f64 * 8.0 / secs / 1e9
    );
}

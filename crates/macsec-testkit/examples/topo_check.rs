//! Quick manual check of the namespace topology with kernel bridges (root only).
fn main() {
    use macsec_testkit::topology::*;
    let t = Topology::create(TopologySpec {
        tag: "chk".into(),
        plain_mtu: 9000,
        secure_mtu: 9000,
        host_offloads_off: true,
        middle: Middle::Bridges,
        subnet: 77,
    })
    .expect("topology");
    let out = t
        .run_in(
            &t.ns_a,
            &["ping", "-c", "3", "-i", "0.2", "-W", "1", &t.ip_b],
        )
        .expect("ping");
    println!("{}", out.lines().last().unwrap_or(""));
    let mut srv = std::process::Command::new("ip")
        .args([
            "netns", "exec", &t.ns_b, "iperf3", "-s", "-1", "-B", &t.ip_b,
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let out = t
        .run_in(&t.ns_a, &["iperf3", "-c", &t.ip_b, "-t", "5", "-J"])
        .expect("iperf");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    println!(
        "bridge MTU 9000: {:.2} Gbit/s",
        v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap()
            / 1e9
    );
    let _ = srv.wait();
}

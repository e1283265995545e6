//! Manual check: a forwarder pair keyed by MKA (root only).
fn main() {
    use macsec_testkit::lab::*;
    use std::time::Duration;
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("macsec");
    let spec = LabSpec {
        tag: "mkal".into(),
        mka: true,
        mka_extra: ["priority = 16".into(), "priority = 32".into()],
        ..LabSpec::default()
    };
    let mut lab = Lab::start(spec, &bin).expect("lab");
    let t = lab.wait_secured(Side::A, Duration::from_secs(20));
    println!("A secured: {t:?}");
    let t = lab.wait_secured(Side::B, Duration::from_secs(20));
    println!("B secured: {t:?}");
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "{:?}",
        lab.ping(Side::A, 56, 5, Duration::from_millis(200), false)
    );
    let s = lab.stats(Side::A).unwrap();
    println!(
        "{}",
        serde_json::to_string_pretty(&s["forwarder"]["mka"])
            .unwrap()
            .lines()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!("--- A log\n{}", lab.logs(Side::A));
    println!("--- B log\n{}", lab.logs(Side::B));
}

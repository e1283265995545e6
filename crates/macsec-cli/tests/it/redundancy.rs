//! Root tests of redundant secure links: host A — F1 == (2 or 4 links) == F2 — host B,
//! keyed by MKA, each link monitored by probes. Impaired links pass through a namespace
//! of their own where an in-process relay drops frames with the carriers up
//! (`macsec_testkit::impair`), which is how a gray or silent failure looks.

use macsec::crypto::CipherSuite;
use macsec_forward::monitor::link::State;
use macsec_forward::monitor::select::{LinkView, Mode, RedundancyConfig, Selector};
use macsec_testkit::lab::{Lab, LabSpec, Side, TcpFlow};
use macsec_testkit::netlab::link;
use macsec_testkit::netlab::ping::{PingOpts, Pinger};
use macsec_testkit::root::require as require_root;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_macsec");
static SUBNET: AtomicU16 = AtomicU16::new(180);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `links` links with MKA, the monitor at its defaults unless `monitor` says more.
fn spec(tag: &str, links: usize, impaired: &[usize], mode: &str, monitor: &str) -> LabSpec {
    LabSpec {
        tag: tag.into(),
        cipher: CipherSuite::GcmAes128,
        plain_mtu: 9000,
        secure_mtu: 9032,
        subnet: SUBNET.fetch_add(1, Ordering::Relaxed) as u8,
        mka: true,
        mka_extra: ["priority = 16".into(), "priority = 32".into()],
        // Frames of one flow stay on one link, but a failover may deliver a few late.
        replay_window: 64,
        links,
        impaired: impaired.to_vec(),
        extra: format!(
            "[redundancy]\nmode = \"{mode}\"\nhold_up_ms = 2000\n[monitor]\n{monitor}\n"
        ),
        ..LabSpec::default()
    }
}

/// The links of `side`'s JSON counters.
fn links(lab: &mut Lab, side: Side) -> Vec<Value> {
    lab.stats(side).unwrap()["links"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn state(l: &Value) -> &str {
    l["state"].as_str().unwrap_or("?")
}

/// Waits (at most `limit`) until `pred` holds for the links at both ends.
fn wait_links(lab: &mut Lab, limit: Duration, what: &str, pred: impl Fn(&[Value]) -> bool) {
    let t0 = Instant::now();
    loop {
        let a = links(lab, Side::A);
        let b = links(lab, Side::B);
        if pred(&a) && pred(&b) {
            return;
        }
        assert!(
            t0.elapsed() < limit,
            "{what}: not after {limit:?}\nA: {a:?}\nB: {b:?}\nA log:\n{}\nB log:\n{}",
            lab.logs(Side::A),
            lab.logs(Side::B)
        );
        std::thread::sleep(ms(200));
    }
}

/// Every link secured and up at both ends.
fn all_up(lab: &mut Lab) {
    wait_links(
        lab,
        Duration::from_secs(20),
        "every link secured and up",
        |ls| !ls.is_empty() && ls.iter().all(|l| l["secured"] == true && state(l) == "up"),
    );
}

/// Waits until link `name` alone carries traffic at both ends (a link that came up
/// after another waits out the hold-up before it takes the traffic).
fn wait_active(lab: &mut Lab, name: &str) {
    wait_all_active(lab, &[name]);
}

/// Waits until exactly `names` carry traffic at both ends.
fn wait_all_active(lab: &mut Lab, names: &[&str]) {
    let t0 = Instant::now();
    while active(lab, Side::A) != names || active(lab, Side::B) != names {
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "{names:?} not active\n{}",
            lab.logs(Side::A)
        );
        std::thread::sleep(ms(100));
    }
}

/// The names of the links carrying traffic at `side`.
fn active(lab: &mut Lab, side: Side) -> Vec<String> {
    lab.stats(side).unwrap()["redundancy"]["active"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Octets F1 protected on each link.
fn octets_out(lab: &mut Lab) -> Vec<u64> {
    links(lab, Side::A)
        .iter()
        .map(|l| {
            l["counters"]["secy"]["OutOctetsEncrypted"]
                .as_u64()
                .unwrap_or(0)
        })
        .collect()
}

fn pinger(lab: &Lab, interval: Duration) -> Pinger {
    let opts = PingOpts {
        size: 56,
        count: 100_000,
        interval,
        timeout: ms(300),
        dont_fragment: false,
    };
    Pinger::start(lab.host_ns(Side::A), lab.host_addr(Side::B), &opts).unwrap()
}

#[test]
fn root_redundant_links_carry_pings_jumbo_frames_and_tcp_in_both_modes() {
    require_root();
    for mode in ["active-backup", "balance"] {
        let mut lab = Lab::start(spec("rdm", 2, &[], mode, ""), Path::new(BIN)).expect("lab");
        all_up(&mut lab);
        for from in [Side::A, Side::B] {
            let p = lab.ping(from, 56, 5, ms(50), false).unwrap();
            assert_eq!(p.received, 5, "{mode}: ping from {from:?}");
            let p = lab.ping(from, 8972, 3, ms(50), true).unwrap();
            assert_eq!(p.received, 3, "{mode}: jumbo ping from {from:?}");
        }
        let bytes = 200u64 << 20;
        let (got, secs) = lab.tcp_transfer(bytes, 5201).unwrap();
        assert_eq!(got, bytes, "{mode}: TCP content");
        eprintln!("{mode}: 200 MiB in {secs:.2} s");
        let st = lab.stats(Side::A).unwrap();
        assert_eq!(st["redundancy"]["mode"], mode);
        assert_eq!(st["links"].as_array().unwrap().len(), 2);
        for l in st["links"].as_array().unwrap() {
            assert_eq!(l["monitor_active"], true, "{l}");
            assert!(l["probes"]["received"].as_u64().unwrap() > 0, "{l}");
            assert!(l["rtt_ms"]["mean"].as_f64().unwrap() > 0.0, "{l}");
        }
        // Probes never reach the hosts: F2 delivered only what A sent.
        let p = &st["pumps"]["plain_to_secure"];
        assert_eq!(p["probe_like"], 0);
    }
}

#[test]
fn root_hard_failure_moves_traffic_within_400_ms_across_four_links() {
    require_root();
    let mut lab =
        Lab::start(spec("rdh", 4, &[], "active-backup", ""), Path::new(BIN)).expect("lab");
    all_up(&mut lab);
    wait_active(&mut lab, "l0");
    let f2 = lab.fwd_ns(Side::B).to_owned();
    for (k, next) in [(0, "l1"), (1, "l2")] {
        let p = pinger(&lab, ms(10));
        let bytes = 100u64 << 20;
        let tcp = std::thread::scope(|sc| {
            let t = sc.spawn(|| lab.tcp_transfer_paced(bytes, 5210 + k as u16, Some(400e6)));
            std::thread::sleep(ms(700));
            // The far end of the active link goes down: F1 loses carrier.
            link::set_down(&f2, &lab.secure_if(Side::B, k)).unwrap();
            t.join().unwrap()
        });
        std::thread::sleep(ms(300));
        let r = p.stop().unwrap();
        let (got, _) = tcp.expect("transfer across a hard failure");
        assert_eq!(got, bytes, "TCP content across the failover");
        let gap = r.longest_gap().unwrap_or_default();
        eprintln!(
            "hard failure of link {k}: ping gap {gap:?}, {} of {} lost",
            r.lost(),
            r.sent
        );
        assert!(gap <= ms(400), "ping gap {gap:?} > 400 ms");
        wait_links(&mut lab, Duration::from_secs(5), "failed link down", |ls| {
            state(&ls[k]) == "down"
        });
        assert_eq!(active(&mut lab, Side::A), [next]);
        assert!(lab.logs(Side::A).contains("failover: traffic moves from"));
    }
}

#[test]
fn root_silent_failure_moves_traffic_within_the_probe_budget() {
    require_root();
    // probe_miss 3 at 100 ms: the gap may be (3 + 1) x 100 ms + 100 ms.
    let mut lab =
        Lab::start(spec("rds", 2, &[0], "active-backup", ""), Path::new(BIN)).expect("lab");
    all_up(&mut lab);
    wait_active(&mut lab, "l0");
    let p = pinger(&lab, ms(10));
    std::thread::sleep(ms(500));
    lab.impairment(0).unwrap().set_blackhole(true);
    std::thread::sleep(ms(1500));
    let r = p.stop().unwrap();
    let gap = r.longest_gap().unwrap_or_default();
    eprintln!(
        "silent failure: ping gap {gap:?}, {} of {} lost",
        r.lost(),
        r.sent
    );
    assert!(gap <= ms(500), "ping gap {gap:?} > 500 ms");
    wait_links(
        &mut lab,
        Duration::from_secs(3),
        "black-holed link down at both ends",
        |ls| state(&ls[0]) == "down" && ls[0]["carrier"] == true && state(&ls[1]) == "up",
    );
    assert_eq!(active(&mut lab, Side::A), ["l1"]);
    assert_eq!(active(&mut lab, Side::B), ["l1"]);
}

#[test]
fn root_gray_failure_degrades_the_link_and_traffic_returns_after_hold_up() {
    require_root();
    let mon = "loss_window_s = 30\nmax_loss = 0.02\n";
    let mut lab =
        Lab::start(spec("rdg", 2, &[0], "active-backup", mon), Path::new(BIN)).expect("lab");
    all_up(&mut lab);
    wait_active(&mut lab, "l0");
    lab.impairment(0).unwrap().set_loss(0.10);
    let t0 = Instant::now();
    wait_links(
        &mut lab,
        Duration::from_secs(35),
        "10 % loss: degraded",
        |ls| state(&ls[0]) == "degraded",
    );
    eprintln!(
        "degraded after {:.1} s of 10 % loss",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(active(&mut lab, Side::A), ["l1"]);
    // Let the window fill with the loss, then check the figures.
    std::thread::sleep(Duration::from_secs(
        30u64.saturating_sub(t0.elapsed().as_secs()),
    ));
    for side in [Side::A, Side::B] {
        let l = &links(&mut lab, side)[0];
        for dir in ["tx_dir", "rx_dir"] {
            let loss = l["loss"][dir].as_f64().unwrap();
            eprintln!(
                "{side:?} link l0 {dir}: measured loss {:.1} %",
                loss * 100.0
            );
            assert!(
                (loss - 0.10).abs() <= 0.04,
                "{side:?} {dir}: {loss} for 10 % loss"
            );
        }
    }
    lab.impairment(0).unwrap().set_loss(0.0);
    let healed = Instant::now();
    wait_links(
        &mut lab,
        Duration::from_secs(45),
        "loss removed: up again",
        |ls| state(&ls[0]) == "up",
    );
    let up_at = healed.elapsed();
    // Failback waits hold_up_ms (2 s) after the link is up again.
    assert_eq!(
        active(&mut lab, Side::A),
        ["l1"],
        "no failback before the hold-up"
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        active(&mut lab, Side::A),
        ["l0"],
        "failback after the hold-up"
    );
    eprintln!(
        "up again {:.1} s after the loss stopped",
        up_at.as_secs_f64()
    );
}

/// Host A's source ports for `n` flows per link of a two-link balance forwarder,
/// chosen with the forwarder's own flow hash, so the split is known.
fn ports_per_link(lab: &Lab, n: usize) -> [Vec<u16>; 2] {
    let now = Instant::now();
    let mut sel = Selector::new(
        RedundancyConfig {
            mode: Mode::Balance,
            hold_up_ms: 0,
        },
        &[1, 2],
    )
    .unwrap();
    for i in 0..2 {
        sel.set_link(
            i,
            LinkView {
                state: State::Up,
                up_since: Some(now),
                usable_since: Some(now),
                transport: true,
            },
        );
    }
    sel.update(now);
    let (a, b) = (
        lab.host_addr(Side::A).octets(),
        lab.host_addr(Side::B).octets(),
    );
    let mut out = [Vec::new(), Vec::new()];
    for port in 40000u16.. {
        if out.iter().all(|v| v.len() >= n) {
            break;
        }
        let mut f = vec![0u8; 54];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 6;
        f[26..30].copy_from_slice(&a);
        f[30..34].copy_from_slice(&b);
        f[34..36].copy_from_slice(&port.to_be_bytes());
        f[36..38].copy_from_slice(&6000u16.to_be_bytes());
        let k = sel.pick_frame(&f).unwrap();
        if out[k].len() < n {
            out[k].push(port);
        }
    }
    out
}

#[test]
fn root_balance_spreads_eight_flows_and_survives_a_link_loss() {
    require_root();
    let mut lab = Lab::start(spec("rdb", 2, &[], "balance", ""), Path::new(BIN)).expect("lab");
    all_up(&mut lab);
    wait_all_active(&mut lab, &["l0", "l1"]);
    let ports = ports_per_link(&lab, 4);
    let flows = |dst0: u16, bytes: u64| -> Vec<TcpFlow> {
        ports
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, p)| TcpFlow {
                src_port: Some(*p),
                dst_port: dst0 + i as u16,
                bytes,
                rate: None,
            })
            .collect()
    };
    let before = octets_out(&mut lab);
    let bytes = 32u64 << 20;
    for r in lab.tcp_flows(&flows(6000, bytes)) {
        assert_eq!(r.expect("flow").0, bytes);
    }
    let after = octets_out(&mut lab);
    let moved: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let total: u64 = moved.iter().sum();
    eprintln!("8 flows over 2 links: {moved:?} octets");
    for (k, m) in moved.iter().enumerate() {
        assert!(*m * 4 >= total, "link {k} carried {m} of {total} octets");
    }

    // Again, and link 1 goes down in the middle: every flow completes, content checked.
    let f2 = lab.fwd_ns(Side::B).to_owned();
    let s2b = lab.secure_if(Side::B, 1);
    let results = std::thread::scope(|sc| {
        let t = sc.spawn(|| {
            let fl: Vec<TcpFlow> = flows(6100, 64 << 20)
                .into_iter()
                .map(|f| TcpFlow {
                    rate: Some(150e6),
                    ..f
                })
                .collect();
            lab.tcp_flows(&fl)
        });
        std::thread::sleep(ms(1000));
        link::set_down(&f2, &s2b).unwrap();
        t.join().unwrap()
    });
    for r in results {
        assert_eq!(r.expect("flow across the link loss").0, 64 << 20);
    }
    assert_eq!(active(&mut lab, Side::A), ["l0"]);
}

#[test]
fn root_demo_with_two_links_shows_a_failover() {
    require_root();
    let out = std::process::Command::new(BIN)
        .args(["demo", "--links", "2"])
        .env_clear()
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains("failover: link l0 silently drops everything"))
        .unwrap_or_else(|| panic!("no failover check in:\n{text}"));
    assert!(line.contains("[ ok ]") && line.contains("outage"), "{line}");
    assert!(text.contains("F1 link l1 (up, active)"), "{text}");
    assert!(text.contains("All checks passed."), "{text}");
    // The totals are every link's: l1 carried the traffic after the failover.
    let sent = |prefix: &str| -> Vec<u64> {
        text.lines()
            .filter(|l| l.trim_start().starts_with(prefix))
            .filter_map(|l| l.split("sent ").nth(1)?.split(' ').next()?.parse().ok())
            .collect()
    };
    for f in ["F1", "F2"] {
        let per_link = sent(&format!("{f} link "));
        let total = sent(&format!("{f}: sent "));
        assert_eq!(per_link.len(), 2, "{text}");
        assert!(
            per_link[1] > 0,
            "{f}: nothing sent on l1 after the failover:\n{text}"
        );
        assert_eq!(total, [per_link.iter().sum::<u64>()], "{f} totals:\n{text}");
    }
}

//! Root tests of `macsec forward` in network namespaces (A — F1 == F2 — B).
//!
//! They need root and nothing else: the namespaces, links, pings and signals are
//! in-process (`macsec_testkit::netlab`); the only program started is `macsec` itself.
//! Each is named `root_*` and fails without root (`macsec_testkit::root`).

use macsec::crypto::CipherSuite;
use macsec_forward::io::afpacket::{AfPacketRx, RxConfig};
use macsec_forward::io::iface::Interface;
use macsec_forward::io::netns::run_in;
use macsec_forward::io::RxPort;
use macsec_testkit::lab::{Lab, LabSpec, Launcher, Side, SCI_F1};
use macsec_testkit::netlab::proc::{self, Signal};
use macsec_testkit::netlab::{ip, link, netns};
use macsec_testkit::root::require as require_root;
use macsec_testkit::topology::Middle;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_macsec");

/// Milliseconds, for ping intervals.
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

static SUBNET: AtomicU16 = AtomicU16::new(100);

fn spec(tag: &str, cipher: CipherSuite, encrypt: bool) -> LabSpec {
    LabSpec {
        tag: tag.into(),
        cipher,
        encrypt,
        plain_mtu: 9000,
        secure_mtu: 9032,
        subnet: SUBNET.fetch_add(1, Ordering::Relaxed) as u8,
        ..LabSpec::default()
    }
}

fn n(v: &serde_json::Value, path: &[&str]) -> u64 {
    let mut x = v;
    for p in path {
        x = match p.parse::<usize>() {
            Ok(i) => &x[i],
            Err(_) => &x[*p],
        };
    }
    x.as_u64()
        .unwrap_or_else(|| panic!("no counter {path:?} in {v}"))
}

fn check_suite(tag: &str, cipher: CipherSuite, encrypt: bool) {
    check_suite_threads(tag, cipher, encrypt, None);
}

/// [`check_suite`] with `[forward] threads` set (`None`: the built-in default), and the
/// mode checked in the counters' `forwarder.threads`.
fn check_suite_threads(tag: &str, cipher: CipherSuite, encrypt: bool, threads: Option<&str>) {
    let mut s = spec(tag, cipher, encrypt);
    if let Some(t) = threads {
        s.forward_extra = format!("threads = \"{t}\"\n");
    }
    let mut lab = Lab::start(s, Path::new(BIN)).expect("lab");
    if let Some(t) = threads {
        for side in [Side::A, Side::B] {
            let st = lab.stats(side).unwrap();
            assert_eq!(st["forwarder"]["threads"], t, "{tag} {side:?}: thread mode");
        }
    }
    for from in [Side::A, Side::B] {
        let p = lab.ping(from, 56, 5, ms(100), false).unwrap();
        assert_eq!(
            p.received,
            5,
            "{tag}: ping from {from:?}\n{}",
            lab.logs(Side::A)
        );
    }
    let p = lab.ping(Side::A, 8972, 3, ms(100), true).unwrap();
    assert_eq!(
        p.received, 3,
        "{tag}: jumbo ping (8972 + 28 = 9000-octet IP packets, DF)"
    );
    let p = lab.ping(Side::B, 8972, 3, ms(100), true).unwrap();
    assert_eq!(p.received, 3, "{tag}: jumbo ping B -> A");
    let bytes = 100u64 << 20;
    let (got, secs) = lab.tcp_transfer(bytes, 5201).unwrap();
    assert_eq!(got, bytes, "{tag}: TCP content");
    eprintln!(
        "{tag}: 100 MiB in {secs:.2} s ({:.2} Gbit/s)",
        bytes as f64 * 8.0 / secs / 1e9
    );
    for side in [Side::A, Side::B] {
        let s = lab.stats(side).unwrap();
        let c = &s["counters"];
        let key = if encrypt {
            "OutPktsEncrypted"
        } else {
            "OutPktsProtected"
        };
        assert!(n(c, &["tx_sc", key]) > 10, "{tag} {side:?}: {key}");
        assert!(n(c, &["rx_sc", "0", "InPktsOK"]) > 10);
        assert_eq!(n(c, &["rx_sc", "0", "InPktsNotValid"]), 0, "{tag} {side:?}");
        assert_eq!(n(c, &["rx_sc", "0", "InPktsLate"]), 0, "{tag} {side:?}");
        assert_eq!(n(c, &["secy", "InPktsBadTag"]), 0);
    }
    let (code, last) = lab.stop_forwarder(Side::A).unwrap();
    assert_eq!(code, Some(0), "clean exit on SIGTERM");
    assert_eq!(last["event"], "exit", "final counters printed at exit");
}

#[test]
fn root_forward_gcm_aes_128() {
    require_root();
    check_suite("g128", CipherSuite::GcmAes128, true);
}

#[test]
fn root_forward_gcm_aes_256() {
    require_root();
    check_suite("g256", CipherSuite::GcmAes256, true);
}

#[test]
fn root_forward_gcm_aes_xpn_128() {
    require_root();
    check_suite("x128", CipherSuite::GcmAesXpn128, true);
}

#[test]
fn root_forward_gcm_aes_xpn_256() {
    require_root();
    check_suite("x256", CipherSuite::GcmAesXpn256, true);
}

#[test]
fn root_forward_integrity_only() {
    require_root();
    check_suite("int", CipherSuite::GcmAes128, false);
}

#[test]
fn root_forward_gcm_aes_128_two_threads() {
    require_root();
    check_suite_threads("t128", CipherSuite::GcmAes128, true, Some("two"));
}

#[test]
fn root_forward_gcm_aes_xpn_256_one_thread() {
    require_root();
    check_suite_threads("ox256", CipherSuite::GcmAesXpn256, true, Some("one"));
}

#[test]
fn root_forward_integrity_only_two_threads() {
    require_root();
    check_suite_threads("tint", CipherSuite::GcmAes128, false, Some("two"));
}

#[test]
fn root_forward_gcm_aes_256_one_thread() {
    require_root();
    check_suite_threads("o256", CipherSuite::GcmAes256, true, Some("one"));
}

/// Captures frames arriving on `ifname` in namespace `ns` on a background thread until
/// `stop` is set; returns them.
fn capture(ns: &str, ifname: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    let ifname = ifname.to_string();
    let mut rx = run_in(ns, move || {
        let i = Interface::lookup(&ifname).expect("lookup");
        // A capture wants depth, not latency: the large V3 ring.
        let cfg = RxConfig {
            ring: macsec_forward::io::afpacket::RxRing::v3(),
            ..RxConfig::default()
        };
        AfPacketRx::open(&i, &cfg).expect("capture socket")
    })
    .expect("setns");
    std::thread::spawn(move || {
        let mut frames = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let _ = rx.recv_batch(64, Duration::from_millis(20), &mut |f| {
                frames.push(whole(&f))
            });
        }
        let _ = rx.recv_batch(1024, Duration::from_millis(50), &mut |f| {
            frames.push(whole(&f))
        });
        frames
    })
}

/// The frame as it was on the wire: with the outer VLAN tag the kernel took out into
/// the packet's metadata put back.
fn whole(f: &macsec_forward::io::RxFrame<'_>) -> Vec<u8> {
    let mut v = f.data.to_vec();
    if let (Some(tci), true) = (f.vlan_tci, v.len() >= 12) {
        let mut tag = f.vlan_tpid.to_be_bytes().to_vec();
        tag.extend_from_slice(&tci.to_be_bytes());
        v.splice(12..12, tag);
    }
    v
}

/// A UDP socket in `ns` bound to `ip:port`.
fn udp(ns: &str, ip: &str, port: u16) -> std::net::UdpSocket {
    let addr = format!("{ip}:{port}");
    let s = run_in(ns, move || std::net::UdpSocket::bind(addr))
        .unwrap()
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    s
}

#[test]
fn root_forward_rejects_injected_frames_with_the_right_counters() {
    require_root();
    let mut lab =
        Lab::start(spec("inj", CipherSuite::GcmAes128, true), Path::new(BIN)).expect("lab");
    assert_eq!(
        lab.ping(Side::A, 56, 2, ms(100), false).unwrap().received,
        2
    );
    let rx_b = udp(lab.host_ns(Side::B), lab.host_ip(Side::B), 7777);
    let tx_a = udp(lab.host_ns(Side::A), lab.host_ip(Side::A), 7778);
    // One datagram of a length nothing else has, captured on the secure link at F2.
    let stop = Arc::new(AtomicBool::new(false));
    let cap = capture(&lab.topo.ns_f2, "s2", stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    let marker = vec![0x5Au8; 777];
    tx_a.send_to(&marker, format!("{}:7777", lab.host_ip(Side::B)))
        .unwrap();
    let mut buf = [0u8; 2000];
    let (len, _) = rx_b
        .recv_from(&mut buf)
        .expect("the genuine datagram arrives");
    assert_eq!(&buf[..len], &marker[..]);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let frames = cap.join().unwrap();
    // 14 + 16 (SecTAG) + 20 + 8 + 777 + 16 (ICV).
    let orig = frames
        .into_iter()
        .find(|f| f.len() == 14 + 16 + 20 + 8 + 777 + 16 && f[12..14] == [0x88, 0xE5])
        .expect("captured the protected datagram");
    let before = lab.stats(Side::B).unwrap();
    let mut flipped = orig.clone();
    flipped[16] ^= 0x80; // PN high bit: a fresh-looking PN, but the ICV no longer matches
    let mut unknown = orig.clone();
    unknown[22] ^= 0x01; // SCI
    let mut bad_tag = orig.clone();
    bad_tag[14] |= 0x80; // V = 1
    inject(
        &lab.topo.ns_f1,
        "s1",
        &[orig.clone(), flipped, unknown, bad_tag],
    );
    assert!(
        rx_b.recv_from(&mut buf).is_err(),
        "no injected frame may reach B"
    );
    let after = lab.stats(Side::B).unwrap();
    let d = |p: &[&str]| n(&after["counters"], p) - n(&before["counters"], p);
    assert_eq!(d(&["rx_sc", "0", "InPktsLate"]), 1, "replay: {after}");
    assert_eq!(d(&["rx_sc", "0", "InPktsNotValid"]), 1, "flipped bit");
    assert_eq!(d(&["secy", "InPktsNoSCI"]), 1, "unknown SCI");
    assert_eq!(
        d(&["secy", "InPktsNoSAError"]),
        1,
        "unknown SCI (2018 name)"
    );
    assert_eq!(d(&["secy", "InPktsBadTag"]), 1, "V bit set");
    // (InPktsOK may move: the hosts' own IPv6 chatter crosses the link meanwhile. That
    // nothing injected was delivered is what the UDP receiver above checks.)
    // The link still works.
    assert_eq!(
        lab.ping(Side::A, 56, 2, ms(100), false).unwrap().received,
        2
    );
}

/// Parses (SCI, AN, PN) from a MACsec frame with an explicit SCI.
fn sa_pn(f: &[u8]) -> Option<(String, u8, u32)> {
    if f.len() < 28 || f[12..14] != [0x88, 0xE5] || f[14] & 0x20 == 0 {
        return None;
    }
    let sci: String = f[20..28].iter().map(|b| format!("{b:02x}")).collect();
    Some((
        sci,
        f[14] & 3,
        u32::from_be_bytes([f[16], f[17], f[18], f[19]]),
    ))
}

#[test]
fn root_forward_never_reuses_a_pn_after_sigkill() {
    require_root();
    let mut s = spec("kill", CipherSuite::GcmAes128, true);
    // Small PN blocks so the run crosses several reservations before and after the kill.
    s.forward_extra = "pn_reserve_block = 500\n".into();
    let mut lab = Lab::start(s, Path::new(BIN)).expect("lab");
    let stop = Arc::new(AtomicBool::new(false));
    let cap = capture(&lab.topo.ns_f2, "s2", stop.clone());
    let tx_a = udp(lab.host_ns(Side::A), lab.host_ip(Side::A), 7790);
    let dst = format!("{}:7791", lab.host_ip(Side::B));
    let blast = |n: usize| {
        for i in 0..n {
            let _ = tx_a.send_to(&[i as u8; 200], &dst);
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    };
    blast(3000);
    // Kill under traffic: a thread keeps sending while the forwarder dies.
    let killer = {
        let pid = lab.forwarder(Side::A).unwrap().child.id();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let _ = proc::signal(pid, Signal::SIGKILL);
        })
    };
    blast(2000);
    killer.join().unwrap();
    lab.signal(Side::A, Signal::SIGKILL)
        .expect("reap the killed forwarder");
    lab.start_forwarder(Side::A).expect("restart");
    blast(3000);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let frames = cap.join().unwrap();
    let sci = SCI_F1.to_lowercase();
    let mut seen = std::collections::HashSet::new();
    let mut pns = Vec::new();
    for f in &frames {
        if let Some((s, an, pn)) = sa_pn(f) {
            if s == sci {
                assert!(seen.insert((an, pn)), "PN {pn:#x} of AN {an} sent twice");
                pns.push(pn);
            }
        }
    }
    // The restarted forwarder logs where it resumed; everything below that was sent
    // before the kill, everything from it on after the restart.
    let log = lab.logs(Side::A);
    let resume = log
        .split("resuming at PN 0x")
        .nth(1)
        .and_then(|r| u64::from_str_radix(r.split_whitespace().next()?, 16).ok())
        .unwrap_or_else(|| panic!("restart did not resume above the mark:\n{log}"))
        as u32;
    let before: Vec<u32> = pns.iter().copied().filter(|&p| p < resume).collect();
    let after = pns.len() - before.len();
    assert!(
        before.len() > 1000 && after > 1000,
        "{} frames before the kill, {after} after",
        before.len()
    );
    let last_before = *before.iter().max().unwrap();
    assert!(
        resume - last_before <= 2 * 500,
        "at most two blocks skipped: {last_before} -> {resume}"
    );
    assert!(
        pns.windows(2).all(|w| w[0] < w[1]),
        "PNs strictly increase across the restart"
    );
    eprintln!("SIGKILL test: {} frames before the kill (last PN {last_before}), {after} after (from PN {resume}), none repeated", before.len());
    let st = lab.stats(Side::B).unwrap();
    assert_eq!(n(&st["counters"], &["rx_sc", "0", "InPktsNotValid"]), 0);
}

#[test]
fn root_forward_startup_refusals() {
    require_root();
    let mut s = spec("ref", CipherSuite::GcmAes128, true);
    s.secure_mtu = 9000; // too small for 9000 + 32
    s.middle = Middle::Bridges; // no forwarders yet; we start them by hand
    let lab = Lab::start(s, Path::new(BIN)).expect("lab");
    // Take the bridges apart so the ports are free.
    link::del(&lab.topo.ns_f1, "br0").unwrap();
    let cfg = lab.dir.join("ref.toml");
    let key = "AD7A2BD03EAC835A6F620FDCB506B345";
    let write = |plain: &str, extra: &str| {
        crate::pcap_cli::write_config(
            &cfg,
            format!("[ports]\nplain = \"{plain}\"\nsecure = \"s1\"\n[secy]\nsci = \"{SCI_F1}\"\n[[secy.tx.sa]]\nan = 0\nkey = \"{key}\"\n[[secy.rx]]\nsci = \"0200000000000001\"\n[[secy.rx.sa]]\nan = 0\nkey = \"{key}\"\n[forward]\nstate_file = \"{}\"\n{extra}", lab.dir.join("ref.pn").display()),
        );
    };
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["forward", "--config"])
            .arg(&cfg)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = netns::spawn_in(&lab.topo.ns_f1, &mut cmd).unwrap();
        let o = proc::output_within(child, Duration::from_secs(10)).unwrap();
        assert!(!o.timed_out, "the forwarder must refuse, not run");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    write("nosuchif", "");
    let (code, err) = run(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("nosuchif") && err.contains("does not exist"),
        "{err}"
    );
    write("p1", "");
    let (code, err) = run(&["--check-only"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("ethtool -K") || err.contains("mtu 9032"),
        "offloads or MTU named: {err}"
    );
    macsec_forward::io::netns::run_in(&lab.topo.ns_f1, || {
        macsec_forward::io::iface::Offloads::disable_all("p1").unwrap();
        macsec_forward::io::iface::Offloads::disable_all("s1").unwrap();
    })
    .unwrap();
    let (code, err) = run(&["--check-only"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("ip link set dev s1 mtu 9032"),
        "exact command to run: {err}"
    );
    write("p1", "bogus = 1\n");
    let (code, err) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("forward.bogus: unknown key"), "{err}");
}

fn mka_spec(tag: &str, cipher: CipherSuite) -> LabSpec {
    LabSpec {
        mka: true,
        mka_extra: ["priority = 16".into(), "priority = 32".into()],
        replay_window: 0,
        ..spec(tag, cipher, true)
    }
}

/// A forwarder pair keyed by MKA (GCM-AES-128), both ends secured.
fn secured_mka_lab(tag: &str) -> Lab {
    let lab = Lab::start(mka_spec(tag, CipherSuite::GcmAes128), Path::new(BIN)).expect("lab");
    lab.wait_secured(Side::A, Duration::from_secs(10)).unwrap();
    lab.wait_secured(Side::B, Duration::from_secs(10)).unwrap();
    lab
}

/// Pings A -> B once at a time until one is answered; fails after 20 s with both logs.
/// Returns how long it took.
fn wait_forwarding(lab: &Lab, what: &str) -> Duration {
    let t0 = Instant::now();
    loop {
        if lab.ping(Side::A, 56, 1, ms(200), false).unwrap().received == 1 {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{what}: not forwarding after 20 s\nA:\n{}\nB:\n{}",
            lab.logs(Side::A),
            lab.logs(Side::B)
        );
    }
}

#[test]
fn root_mka_secures_the_link_and_forwards() {
    require_root();
    for (tag, cipher) in [
        ("mk128", CipherSuite::GcmAes128),
        ("mkx256", CipherSuite::GcmAesXpn256),
    ] {
        let started = Instant::now();
        let lab = Lab::start(mka_spec(tag, cipher), Path::new(BIN)).expect("lab");
        lab.wait_secured(Side::A, Duration::from_secs(10)).unwrap();
        lab.wait_secured(Side::B, Duration::from_secs(10)).unwrap();
        let t = started.elapsed();
        eprintln!(
            "{tag}: secured {:.0} ms after starting both forwarders",
            t.as_secs_f64() * 1000.0
        );
        assert!(
            t < Duration::from_secs(2) + Duration::from_secs(3),
            "within one hello time of start-up"
        );
        assert_eq!(
            lab.ping(Side::A, 56, 3, ms(100), false).unwrap().received,
            3
        );
        assert_eq!(
            lab.ping(Side::B, 8972, 2, ms(100), true).unwrap().received,
            2,
            "jumbo"
        );
        let (got, _) = lab.tcp_transfer(20 << 20, 5202).unwrap();
        assert_eq!(got, 20 << 20);
        assert!(lab
            .logs(Side::A)
            .contains(&format!("distributes={}", cipher.name())));
    }
}

#[test]
fn root_mka_wrong_cak_never_secures() {
    require_root();
    let mut s = mka_spec("mkbad", CipherSuite::GcmAes128);
    s.mka_wrong_cak_on_b = true;
    let mut lab = Lab::start(s, Path::new(BIN)).expect("lab");
    assert!(
        lab.wait_secured(Side::A, Duration::from_secs(7)).is_err(),
        "A must not secure with a wrong-CAK peer"
    );
    assert_eq!(
        lab.ping(Side::A, 56, 2, ms(100), false).unwrap().received,
        0,
        "nothing crosses unsecured"
    );
    let st = lab.stats(Side::A).unwrap();
    let icv = n(&st["forwarder"]["mka"], &["counters", "rx_dropped", "icv"]);
    assert!(
        icv >= 2,
        "the peer's MKPDUs fail the ICV: {}",
        st["forwarder"]["mka"]
    );
    assert!(
        n(&st["counters"], &["secy", "OutPktsNoSA"]) > 0,
        "frames dropped, not sent in clear"
    );
}

#[test]
fn root_mka_hitless_rekey_under_ping_and_tcp() {
    require_root();
    let mut lab = secured_mka_lab("mkrk");
    std::thread::sleep(Duration::from_millis(300));
    let pid = lab.forwarder(Side::A).unwrap().child.id();
    let rekeys = std::thread::spawn(move || {
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(4000));
            let _ = proc::signal(pid, Signal::SIGHUP);
        }
    });
    // 15 s of pings every 10 ms both ways, and a TCP stream, across three rekeys.
    let (ping_a, ping_b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| lab.ping(Side::A, 56, 1400, ms(10), false).unwrap());
        let b = sc.spawn(|| lab.ping(Side::B, 1000, 1400, ms(10), false).unwrap());
        let mut total = 0u64;
        let start = Instant::now();
        let mut port = 5300;
        // Paced below line rate: congestion drops at a full receive ring would hide
        // what this measures, frames lost to the rekeys themselves.
        while start.elapsed() < Duration::from_secs(13) {
            let (got, _) = lab.tcp_transfer_paced(20 << 20, port, Some(100e6)).unwrap();
            assert_eq!(got, 20 << 20);
            total += got;
            port += 1;
        }
        eprintln!("rekey test: {} MiB over TCP, content checked", total >> 20);
        (a.join().unwrap(), b.join().unwrap())
    });
    rekeys.join().unwrap();
    eprintln!(
        "rekey test: pings A->B {}/{}, B->A {}/{}",
        ping_a.received, ping_a.sent, ping_b.received, ping_b.sent
    );
    for side in [Side::A, Side::B] {
        let st = lab.stats(side).unwrap();
        eprintln!("{side:?}: pumps {}", st["pumps"]);
        eprintln!("{side:?}: rx {}", st["counters"]["rx_sc"]);
    }
    assert_eq!(ping_a.received, ping_a.sent, "no ping lost across rekeys");
    assert_eq!(ping_b.received, ping_b.sent);
    for side in [Side::A, Side::B] {
        let st = lab.stats(side).unwrap();
        let mka = &st["forwarder"]["mka"];
        let kn = n(mka, &["latest_key", "kn"]);
        assert!(
            kn >= 4,
            "{side:?}: three rekeys after the first SAK: KN {kn}"
        );
        for c in [
            "InPktsNotUsingSA",
            "InPktsNotValid",
            "InPktsLate",
            "InPktsUnusedSA",
        ] {
            let total: u64 = st["counters"]["rx_sc"]
                .as_array()
                .unwrap()
                .iter()
                .map(|sc| sc[c].as_u64().unwrap())
                .sum();
            assert_eq!(total, 0, "{side:?} {c}: {}", st["counters"]);
        }
        assert_eq!(n(&st["counters"], &["secy", "InPktsNoSAError"]), 0);
    }
}

/// A hand-off port is often an 802.1Q trunk: the plain side carries tagged frames whose
/// payload is as large as the plain MTU, 4 octets longer than MTU + 14 (the slack an MTU
/// gives a tagged frame). With the secure MTU at plain + 36 they cross intact, tag and
/// all, both ways; at plain + 32 only the full-size ones are refused, and counted as
/// OutPktsTooLong rather than lost in the kernel. (Frames are injected and captured
/// with packet sockets: this host kernel has no 8021q module for VLAN devices.)
#[test]
fn root_forward_carries_full_size_802_1q_tagged_frames() {
    require_root();
    let mut s = spec("vlan", CipherSuite::GcmAes128, true);
    s.secure_mtu = 9036;
    let mut lab = Lab::start(s, Path::new(BIN)).expect("lab");
    // Tagged frames (VLAN 100, local experimental EtherType 0x88B5) whose payload is
    // 60, 1500 and 9000 octets (the plain MTU), each with its own content.
    let frame = |n: usize, seed: u8| {
        let mut f = vec![0x02, 0, 0, 0, 0, 0xBB, 0x02, 0, 0, 0, 0, 0xAA];
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x88, 0xB5]);
        f.extend((0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
        f
    };
    let cross = |lab: &Lab, from: Side, seed: u8| -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let frames: Vec<Vec<u8>> = [60usize, 1500, 9000]
            .iter()
            .map(|&n| frame(n, seed))
            .collect();
        let (src_if, to, dst_if) = match from {
            Side::A => ("a0", Side::B, "b0"),
            Side::B => ("b0", Side::A, "a0"),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let cap = capture(lab.host_ns(to), dst_if, stop.clone());
        std::thread::sleep(Duration::from_millis(200));
        inject(lab.host_ns(from), src_if, &frames);
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        (frames, cap.join().unwrap())
    };
    for (from, seed) in [(Side::A, 1u8), (Side::B, 2u8)] {
        let (sent, got) = cross(&lab, from, seed);
        for f in &sent {
            if got.contains(f) {
                continue;
            }
            let stats = [lab.stats(Side::A), lab.stats(Side::B)];
            panic!(
                "{}-octet tagged frame from {from:?} did not arrive intact (got lengths {:?})\n{}\n{stats:?}",
                f.len(),
                got.iter().map(|g| g.len()).collect::<Vec<_>>(),
                lab.logs(from)
            );
        }
    }
    for side in [Side::A, Side::B] {
        let st = lab.stats(side).unwrap();
        let c = &st["counters"];
        assert_eq!(n(c, &["secy", "OutPktsTooLong"]), 0, "{side:?}: {st}");
        assert!(n(c, &["rx_sc", "0", "InPktsOK"]) >= 3, "{side:?}: {st}");
    }

    // Secure MTU plain + 32: the full-size tagged frame is refused and counted.
    for side in [Side::A, Side::B] {
        lab.stop_forwarder(side).unwrap();
        let (ns, dev) = match side {
            Side::A => (lab.fwd_ns(side).to_string(), "s1"),
            Side::B => (lab.fwd_ns(side).to_string(), "s2"),
        };
        link::set_mtu(&ns, dev, 9032).unwrap();
    }
    for side in [Side::A, Side::B] {
        lab.start_forwarder(side).unwrap();
    }
    assert!(
        lab.logs(Side::A).contains("mtu 9036"),
        "start-up names the MTU trunks need: {}",
        lab.logs(Side::A)
    );
    let (sent, got) = cross(&lab, Side::A, 3);
    assert!(
        got.contains(&sent[0]) && got.contains(&sent[1]),
        "smaller tagged frames cross"
    );
    assert!(
        !got.contains(&sent[2]),
        "a 9050-octet protected frame cannot leave MTU 9032"
    );
    let st = lab.stats(Side::A).unwrap();
    assert_eq!(n(&st["counters"], &["secy", "OutPktsTooLong"]), 1, "{st}");
}

/// Links flap. With MKA (the default key source) the secure link goes down for longer
/// than the MKA life time, so both sides lose their peer and its SAs; when it comes back
/// they must find each other and secure the link again on their own, without a restart.
#[test]
fn root_mka_recovers_after_the_secure_link_flaps() {
    require_root();
    let mut lab = secured_mka_lab("flap");
    assert_eq!(
        lab.ping(Side::A, 56, 3, ms(100), false).unwrap().received,
        3
    );
    let ns = lab.fwd_ns(Side::A).to_string();
    link::set_down(&ns, "s1").unwrap();
    std::thread::sleep(Duration::from_secs(8));
    let p = lab.ping(Side::A, 56, 2, ms(200), false).unwrap();
    assert_eq!(p.received, 0, "nothing crosses a link that is down");
    link::set_up(&ns, "s1").unwrap();
    let t = wait_forwarding(&lab, "link back up");
    eprintln!("forwarding again {:.1} s after link up", t.as_secs_f64());
    assert_eq!(
        lab.ping(Side::B, 56, 5, ms(100), false).unwrap().received,
        5
    );
    let (got, _) = lab.tcp_transfer(10 << 20, 5203).unwrap();
    assert_eq!(got, 10 << 20);
    for side in [Side::A, Side::B] {
        let st = lab.stats(side).unwrap();
        assert!(st.to_string().contains("secured"), "{side:?}: {st}");
    }
    let st = lab.stats(Side::A).unwrap();
    assert!(
        st.to_string().contains("\"link_down\":1"),
        "the secure pump counted the link going down: {st}"
    );
    assert!(lab.logs(Side::A).contains("secure port s1 went down"));
}

/// QUIC stacks send with UDP GSO (`UDP_SEGMENT`): a local sender on a veth hands the
/// plain port one super-frame per send, which must leave as the sender's datagrams, not
/// be dropped as too long nor merged into one datagram when it would fit the MTU.
#[test]
fn root_forward_cuts_udp_gso_super_frames_at_the_senders_boundaries() {
    require_root();
    let mut s = spec("ugso", CipherSuite::GcmAes128, true);
    s.plain_mtu = 1500;
    s.secure_mtu = 1532;
    let mut lab = Lab::start(s, Path::new(BIN)).expect("lab");
    assert_eq!(
        lab.ping(Side::A, 56, 2, ms(100), false).unwrap().received,
        2
    );
    // Three sends of 10 x 1200 octets and one of 2 x 500 (1000 octets: fits the MTU),
    // each with UDP_SEGMENT set to its datagram size. Every datagram is one octet
    // repeated, so a merged or cut datagram shows up at B as (length, -1).
    const SENDS: [(usize, usize); 4] = [(1200, 10), (1200, 10), (1200, 10), (500, 2)];
    let rx = udp(lab.host_ns(Side::B), lab.host_ip(Side::B), 9999);
    let tx = udp(lab.host_ns(Side::A), lab.host_ip(Side::A), 9998);
    tx.connect((lab.host_addr(Side::B), 9999)).unwrap();
    for (i, (seg, n)) in SENDS.iter().enumerate() {
        let seg_size = i32::try_from(*seg).unwrap();
        nix::sys::socket::setsockopt(&tx, nix::sys::socket::sockopt::UdpGsoSegment, &seg_size)
            .unwrap();
        let buf: Vec<u8> = (0..*n)
            .flat_map(|j| std::iter::repeat_n((16 * i + j) as u8, *seg))
            .collect();
        assert_eq!(tx.send(&buf).unwrap(), buf.len(), "one send of {n} x {seg}");
        std::thread::sleep(ms(50));
    }
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got: Vec<(usize, i32)> = Vec::new();
    let mut buf = vec![0u8; 65535];
    // Bounded: 32 datagrams are expected; a few more would be an error shown below.
    while got.len() < 100 {
        let Ok(len) = rx.recv(&mut buf) else {
            break; // 2 s of silence: everything has arrived
        };
        let d = &buf[..len];
        let fill = if !d.is_empty() && d.iter().all(|&b| b == d[0]) {
            i32::from(d[0])
        } else {
            -1
        };
        got.push((len, fill));
    }
    got.sort();
    let mut want: Vec<(usize, i32)> = Vec::new();
    for (i, (seg, n)) in SENDS.iter().enumerate() {
        for j in 0..*n {
            want.push((*seg, (16 * i + j) as i32));
        }
    }
    want.sort();
    let st = lab.stats(Side::A).unwrap();
    assert_eq!(got, want, "datagrams at B\n{st}");
    let p = &st["pumps"]["plain_to_secure"];
    assert_eq!(p["gso_frames"], 4, "{st}");
    assert_eq!(p["gso_segments"], 32, "{st}");
    assert_eq!(p["oversize"], 0, "{st}");
}

/// A TSO super-frame must be cut at the sender's MSS, not at what the MTU would allow:
/// the MSS can be smaller (path MTU, MSS clamping further on), and larger segments would
/// be dropped there. Host B advertises MSS 1000 towards A; A's TCP with TSO on hands the
/// plain port super-frames, and no segment on B's link may carry more than A's MSS.
#[test]
fn root_forward_cuts_tso_super_frames_at_the_senders_mss() {
    require_root();
    let mut s = spec("mss", CipherSuite::GcmAes128, true);
    s.plain_mtu = 1500;
    s.secure_mtu = 1532;
    let mut lab = Lab::start(s, Path::new(BIN)).expect("lab");
    let a_octets = lab.host_addr(Side::A).octets();
    let to_a = ip::Route {
        dst: lab.host_addr(Side::A),
        prefix: 32,
        dev: Some("b0".into()),
        advmss: Some(1000),
        ..ip::Route::default()
    };
    ip::add_route(lab.host_ns(Side::B), &to_a).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let cap = capture(lab.host_ns(Side::B), "b0", stop.clone());
    let (got, _) = lab.tcp_transfer(4 << 20, 5204).unwrap();
    assert_eq!(got, 4 << 20);
    stop.store(true, Ordering::Relaxed);
    let frames = cap.join().unwrap();
    // IPv4 TCP payload lengths of the data segments A sent.
    let payloads: Vec<usize> = frames
        .iter()
        .filter(|f| f.len() > 54 && f[12..14] == [0x08, 0x00] && f[23] == 6)
        .filter(|f| f[26..30] == a_octets)
        .map(|f| {
            let ihl = (f[14] & 0x0F) as usize * 4;
            let total = u16::from_be_bytes([f[16], f[17]]) as usize;
            let doff = (f[14 + ihl + 12] >> 4) as usize * 4;
            total - ihl - doff
        })
        .filter(|&n| n > 0)
        .collect();
    let st = lab.stats(Side::A).unwrap();
    let p = &st["pumps"]["plain_to_secure"];
    assert!(
        p["gso_frames"].as_u64().unwrap() > 0,
        "A sent super-frames: {st}"
    );
    let max = payloads.iter().copied().max().unwrap_or(0);
    assert!(
        payloads.len() > 1000,
        "{} data segments seen",
        payloads.len()
    );
    assert!(
        max <= 1000,
        "a segment carried {max} octets, above the MSS of 1000"
    );
}

/// The README's run command as a user on a bare machine hits it: `macsec demo` with an
/// empty environment and a PATH where nothing can be found builds its topology, passes
/// every check (none left out), prints the counters and leaves no namespace and no
/// process behind.
#[test]
fn root_demo_passes_and_cleans_up_with_nothing_on_path() {
    require_root();
    let child = std::process::Command::new(BIN)
        .args(["demo", "--cipher", "gcm-aes-xpn-256"])
        .env_clear()
        .env("PATH", "/nonexistent")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = proc::output_within(child, Duration::from_secs(120)).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.timed_out,
        "demo still running after 120 s:\n{text}\n{err}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert!(text.contains("All checks passed"), "{text}");
    assert!(!text.contains("FAIL") && !text.contains("[skip]"), "{text}");
    for want in [
        "ping A -> B",
        "ping B -> A",
        "jumbo ping",
        "latency at idle",
        "TCP transfer",
        "InPktsOK",
        "Removed the namespaces",
    ] {
        assert!(text.contains(want), "summary names {want:?}:\n{text}");
    }
    let ours = format!("{}{pid}-", macsec_testkit::topology::PREFIX);
    let left: Vec<String> = netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&ours))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    // Its forwarders ran with configurations in its lab directory.
    let lab_dir = format!("macsec-lab-{pid}-demo");
    let procs: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&lab_dir))
        .collect();
    assert!(procs.is_empty(), "processes left behind: {procs:?}");
    assert!(!std::env::temp_dir().join(&lab_dir).exists());
}

/// The environment variable that makes this test binary a helper (see
/// [`helper_entry_point_not_a_test`]).
const HELPER: &str = "MACSEC_IT_HELPER";
/// The forwarder arguments the helper passes on, as a JSON array.
const HELPER_ARGS: &str = "MACSEC_IT_HELPER_ARGS";

/// The capabilities `examples/macsec-forward@.service` gives the forwarder
/// (`AmbientCapabilities=`), checked to be its bounding set too, and its user.
fn unit_capabilities() -> Vec<String> {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/macsec-forward@.service"
    ))
    .unwrap();
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("the unit sets {key}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let ambient = value("AmbientCapabilities=");
    assert_eq!(
        ambient,
        value("CapabilityBoundingSet="),
        "the unit keeps what it grants"
    );
    assert_eq!(value("NoNewPrivileges="), ["yes"]);
    let user = value("User=");
    assert!(
        user.len() == 1 && user[0] != "root",
        "the unit runs as an ordinary user: {user:?}"
    );
    ambient
}

/// Not a test: the entry point of this binary re-executed as a helper; in a normal run
/// it does nothing (and says so). With `MACSEC_IT_HELPER=unprivileged-forwarder` it does
/// what systemd does for `examples/macsec-forward@.service`: hands the lab directory
/// (configs, key material, PN state) to `nobody` (the unit's StateDirectory), drops to
/// that user with only the unit's capabilities (ambient and bounding, no_new_privs),
/// and execs `macsec` with the arguments in `MACSEC_IT_HELPER_ARGS`, so the forwarder
/// keeps this process's pid.
#[test]
fn helper_entry_point_not_a_test() {
    let Ok(role) = std::env::var(HELPER) else {
        eprintln!(
            "not a test: the entry point of this binary re-executed as a helper; nothing to do"
        );
        return;
    };
    assert_eq!(role, "unprivileged-forwarder");
    use macsec_testkit::netlab::privs;
    use std::os::unix::process::CommandExt;
    let args: Vec<String> = serde_json::from_str(&std::env::var(HELPER_ARGS).unwrap()).unwrap();
    // `forward --config DIR/f-A.toml`: the lab directory holds everything it needs.
    let config = std::path::PathBuf::from(args.last().unwrap());
    let dir = config.parent().unwrap();
    let nobody = privs::NOBODY;
    std::os::unix::fs::chown(dir, Some(nobody), Some(nobody)).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        std::os::unix::fs::chown(e.unwrap().path(), Some(nobody), Some(nobody)).unwrap();
    }
    let keep: Vec<privs::Capability> = unit_capabilities()
        .iter()
        .map(|c| c.parse().unwrap())
        .collect();
    // Root's own copy, as an installed binary would be (after the chown above).
    let bin = bin_for_other_users(dir);
    privs::drop_privileges(nobody, nobody, &keep).unwrap();
    let e = std::process::Command::new(&bin).args(&args).exec();
    panic!("exec {}: {e}", bin.display());
}

/// What `examples/macsec-forward@.service` runs: the forwarder as an ordinary user
/// (`nobody` here) holding only the unit's capabilities, CAP_NET_RAW and CAP_NET_ADMIN
/// (ambient), with the bounding set cut to those two; with static keys (PN state file)
/// and MKA. A helper (this binary re-executed, see [`helper_entry_point_not_a_test`])
/// drops the privileges and execs the forwarder, as systemd would.
#[test]
fn root_forward_runs_unprivileged_with_net_raw_and_net_admin_only() {
    require_root();
    assert_eq!(unit_capabilities(), ["CAP_NET_RAW", "CAP_NET_ADMIN"]);
    let launcher = || {
        Launcher::new(|args| {
            let args: Vec<String> = args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let mut c = std::process::Command::new(std::env::current_exe().unwrap());
            c.args([
                "--exact",
                "forward::helper_entry_point_not_a_test",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(HELPER, "unprivileged-forwarder")
            .env(HELPER_ARGS, serde_json::to_string(&args).unwrap());
            c
        })
    };
    for (tag, mka) in [("upst", false), ("upmk", true)] {
        let s = if mka {
            mka_spec(tag, CipherSuite::GcmAes256)
        } else {
            spec(tag, CipherSuite::GcmAes256, true)
        };
        let mut lab = Lab::start_with(s, launcher()).expect("lab");
        if mka {
            lab.wait_secured(Side::A, Duration::from_secs(10)).unwrap();
            lab.wait_secured(Side::B, Duration::from_secs(10)).unwrap();
        }
        for side in [Side::A, Side::B] {
            let pid = lab.forwarder(side).unwrap().child.id();
            // The helper exec'd into the forwarder: same pid.
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
            assert!(
                String::from_utf8_lossy(&cmdline)
                    .starts_with(&format!("{}\0forward\0", lab.dir.join("macsec").display())),
                "{tag}: pid {pid} is the forwarder"
            );
            let field = |k: &str| proc::status_field(&status, k);
            assert_eq!(field("Uid:"), "65534 65534 65534 65534", "{tag}: {status}");
            assert_eq!(field("Gid:"), "65534 65534 65534 65534", "{tag}: {status}");
            // CAP_NET_ADMIN (12) and CAP_NET_RAW (13) only.
            assert_eq!(field("CapEff:"), "0000000000003000", "{tag}");
            assert_eq!(field("CapBnd:"), "0000000000003000", "{tag}");
            assert_eq!(field("NoNewPrivs:"), "1", "{tag}");
        }
        assert_eq!(
            lab.ping(Side::A, 56, 3, ms(100), false).unwrap().received,
            3,
            "{tag}"
        );
        assert_eq!(
            lab.ping(Side::B, 8972, 2, ms(100), true).unwrap().received,
            2,
            "{tag}: jumbo"
        );
        if !mka {
            // The PN high-water mark was written by the unprivileged process.
            let pn = lab.dir.join("A.pn");
            let meta = std::fs::metadata(&pn).expect("state file");
            assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
        }
        let (code, last) = lab.stop_forwarder(Side::A).unwrap();
        assert_eq!(code, Some(0), "{tag}: clean exit on SIGTERM");
        assert!(
            n(&last["counters"], &["tx_sc", "OutPktsEncrypted"]) >= 5,
            "{tag}: {last}"
        );
    }
}

/// The pair is a wire to the routers on either side: link-local control frames that a
/// bridge would never forward (LACP, which bonds a redundant pair of links end to end;
/// LLDP; an EAPOL-Start of the routers' own 802.1X; an STP BPDU with an 802.3 length
/// instead of an EtherType) cross it protected, both ways, byte for byte, and never
/// appear in clear on the secure link. EAPOL from the plain side must not reach the
/// KaY of either forwarder: the link stays secured.
#[test]
fn root_forward_carries_link_local_control_frames_protected() {
    require_root();
    let mut lab = secured_mka_lab("l2cp");
    // 60-octet frames (no padding questions), each with a marker that must never be
    // seen in clear on the secure link.
    let frame = |dst_last: u8, type_or_len: [u8; 2], head: &[u8], seed: u8| {
        let mut f = vec![0x01, 0x80, 0xC2, 0, 0, dst_last, 0x02, 0, 0, 0, 0, seed];
        f.extend_from_slice(&type_or_len);
        f.extend_from_slice(head);
        f.extend_from_slice(b"MARKER-L2CP");
        f.push(seed);
        f.resize(60, seed);
        f
    };
    let frames = |seed: u8| {
        vec![
            frame(0x02, [0x88, 0x09], &[0x01, 0x01, 0x01, 0x14], seed), // LACPDU
            frame(0x0E, [0x88, 0xCC], &[0x02, 0x07, 0x04], seed),       // LLDP
            frame(0x03, [0x88, 0x8E], &[0x02, 0x01, 0x00, 0x00], seed), // EAPOL-Start
            frame(0x00, [0x00, 0x26], &[0x42, 0x42, 0x03, 0, 0], seed), // STP BPDU, LLC
        ]
    };
    for (from, seed) in [(Side::A, 0xA1u8), (Side::B, 0xB2u8)] {
        let sent = frames(seed);
        let (src_if, to, dst_if, secure_ns, secure_if) = match from {
            Side::A => ("a0", Side::B, "b0", lab.fwd_ns(Side::B), "s2"),
            Side::B => ("b0", Side::A, "a0", lab.fwd_ns(Side::A), "s1"),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let cap = capture(lab.host_ns(to), dst_if, stop.clone());
        let wire = capture(secure_ns, secure_if, stop.clone());
        std::thread::sleep(Duration::from_millis(200));
        inject(lab.host_ns(from), src_if, &sent);
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        let (got, wire) = (cap.join().unwrap(), wire.join().unwrap());
        for f in &sent {
            assert!(
                got.contains(f),
                "{from:?}: the frame to {:02x?} type {:02x?} did not arrive intact (got {} frames)",
                &f[..6],
                &f[12..14],
                got.len()
            );
        }
        let clear = wire
            .iter()
            .filter(|w| w.windows(11).any(|x| x == b"MARKER-L2CP"))
            .count();
        assert_eq!(
            clear, 0,
            "{from:?}: control frames in clear on the secure link"
        );
        let protected = wire
            .iter()
            .filter(|w| w.len() > 14 && w[12..14] == [0x88, 0xE5])
            .count();
        assert!(
            protected >= sent.len(),
            "{from:?}: {protected} MACsec frames"
        );
    }
    // The routers' EAPOL went through as data: both KaYs are still secured with their
    // one peer, on the first SAK, and traffic flows.
    for side in [Side::A, Side::B] {
        let st = lab.stats(side).unwrap();
        let c = &st["counters"];
        assert!(n(c, &["rx_sc", "0", "InPktsOK"]) >= 4, "{side:?}: {st}");
        assert_eq!(n(c, &["rx_sc", "0", "InPktsNotValid"]), 0, "{side:?}");
        let mka = &st["forwarder"]["mka"];
        assert_eq!(mka["state"], "secured", "{side:?}: {mka}");
        assert_eq!(mka["live_peers"].as_array().unwrap().len(), 1, "{mka}");
        assert_eq!(mka["potential_peers"].as_array().unwrap().len(), 0, "{mka}");
        assert_eq!(n(mka, &["latest_key", "kn"]), 1, "{side:?}: {mka}");
    }
    assert_eq!(
        lab.ping(Side::A, 56, 2, ms(100), false).unwrap().received,
        2
    );
}

/// A peer crashes and comes straight back (a new MKA participant, new MI, same SCI),
/// while this end keeps running: as when a router's wpa_supplicant restarts. Once for
/// the member (F2) and once for the key server (F1). The running side must drop the old
/// participant's SAs, accept the new one and get the link secured and forwarding again
/// on its own, within two hello times.
#[test]
fn root_mka_peer_crash_and_restart_is_secured_again() {
    require_root();
    let mut lab = secured_mka_lab("mkcr");
    assert_eq!(
        lab.ping(Side::A, 56, 2, ms(100), false).unwrap().received,
        2
    );
    for (who, other) in [(Side::B, Side::A), (Side::A, Side::B)] {
        lab.signal(who, Signal::SIGKILL).unwrap();
        lab.start_forwarder(who).unwrap();
        let t = wait_forwarding(&lab, &format!("{who:?} restarted"));
        eprintln!(
            "{who:?} crashed and restarted: forwarding again after {:.1} s",
            t.as_secs_f64()
        );
        // Protocol timers, not load, set this: the old instance is given 1.5 hello
        // times (3 s), then a hello. Before potential peers could be replaced by a new
        // MI, a key server restart took 8 s (a life time more).
        assert!(t < Duration::from_secs(7), "{who:?}: {t:?}");
        // Both directions, and a steady state: nothing dropped for want of an SA.
        assert_eq!(
            lab.ping(Side::B, 56, 5, ms(100), false).unwrap().received,
            5
        );
        let st = lab.stats(other).unwrap();
        let mka = &st["forwarder"]["mka"];
        assert_eq!(mka["state"], "secured", "{other:?}: {mka}");
        assert_eq!(
            mka["live_peers"].as_array().unwrap().len(),
            1,
            "{other:?}: only the new participant is live: {mka}"
        );
    }
}

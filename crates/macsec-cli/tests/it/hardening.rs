//! Root tests of what a first deployment trips over (issue 12): a second forwarder on
//! the same link, a port deleted and created again, `--check-only` as a dry run, exit
//! codes, a key or SCI mismatch, the host's own frames on the secure port, and logs
//! without Rust `Debug` output.

use macsec::crypto::CipherSuite;
use macsec_testkit::lab::{Lab, LabSpec, Side, SCI_F1};
use macsec_testkit::netlab::link::{self, Veth};
use macsec_testkit::netlab::proc;
use macsec_testkit::netlab::{ip, netns, sysctl};
use macsec_testkit::root::require as require_root;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_macsec");
static SUBNET: AtomicU16 = AtomicU16::new(200);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn spec(tag: &str) -> LabSpec {
    LabSpec {
        tag: tag.into(),
        cipher: CipherSuite::GcmAes128,
        subnet: SUBNET.fetch_add(1, Ordering::Relaxed) as u8,
        replay_window: 64,
        ..LabSpec::default()
    }
}

/// Runs `macsec forward --config cfg [args]` in `ns` for at most `limit`; returns the
/// exit code (None if it was still running and was stopped) and its stderr.
fn run_forward(ns: &str, cfg: &Path, args: &[&str], limit: Duration) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["forward", "--config"])
        .arg(cfg)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = netns::spawn_in(ns, &mut cmd).unwrap();
    let o = proc::output_within(child, limit).unwrap();
    (
        if o.timed_out { None } else { o.status.code() },
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The lab's configuration of `side` rewritten: `from` replaced by `to`.
fn rewrite(lab: &Lab, side: Side, from: &str, to: &str, dst: &Path) {
    let text = std::fs::read_to_string(lab.config_path(side)).unwrap();
    assert!(text.contains(from), "{from:?} not in {text}");
    crate::pcap_cli::write_config(dst, text.replacen(from, to, 1));
}

fn wait_log(lab: &Lab, side: Side, what: &str, limit: Duration) {
    let t0 = Instant::now();
    while !lab.logs(side).contains(what) {
        assert!(t0.elapsed() < limit, "no {what:?} in:\n{}", lab.logs(side));
        std::thread::sleep(ms(50));
    }
}

/// Issue 12.1: a copy of a static-key configuration under another name, and another
/// configuration with another SCI on the same ports, never start beside the original;
/// the copy started after it finds the original's PN marks (they are kept per SCI).
#[test]
fn root_a_copied_config_never_runs_beside_the_original_and_finds_its_marks() {
    require_root();
    let mut lab = Lab::start(spec("cpy"), Path::new(BIN)).expect("lab");
    // The original keeps its marks in the state directory, by SCI (no state_file).
    let state_line = format!("state_file = \"{}\"", lab.dir.join("A.pn").display());
    let original = lab.dir.join("orig.toml");
    let state_dir = format!("state_dir = \"{}\"", lab.dir.join("state").display());
    rewrite(&lab, Side::A, &state_line, &state_dir, &original);
    lab.stop_forwarder(Side::A).unwrap();
    std::fs::copy(&original, lab.config_path(Side::A)).unwrap();
    lab.start_forwarder(Side::A).unwrap();
    let p = lab.ping(Side::A, 56, 20, ms(20), false).unwrap();
    assert_eq!(
        p.received,
        20,
        "{}\n{}",
        lab.logs(Side::A),
        lab.logs(Side::B)
    );
    let pid = lab.forwarder(Side::A).unwrap().child.id();

    let copy = lab.dir.join("copy-of-orig.toml");
    std::fs::copy(&original, &copy).unwrap();
    let f1 = lab.fwd_ns(Side::A).to_owned();
    let (code, err) = run_forward(&f1, &copy, &[], Duration::from_secs(10));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("is in use by another `macsec forward`"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "pid {pid} config {}",
            lab.config_path(Side::A).display()
        )),
        "{err}"
    );

    // Another SCI on the same secure port.
    let other = lab.dir.join("other-sci.toml");
    rewrite(
        &lab,
        Side::A,
        &format!("sci = \"{SCI_F1}\""),
        "sci = \"02000000f1990001\"",
        &other,
    );
    let (code, err) = run_forward(&f1, &other, &[], Duration::from_secs(10));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("port s1 is in use") || err.contains("port p1 is in use"),
        "{err}"
    );

    // Stopped, the original leaves its marks; the copy resumes above them.
    let (_, last) = lab.stop_forwarder(Side::A).unwrap();
    let next = last["counters"]["tx_sc"]["sa"][0]["next_pn"]
        .as_u64()
        .unwrap();
    assert!(next > 20, "{last}");
    std::fs::copy(&copy, lab.config_path(Side::A)).unwrap();
    lab.start_forwarder(Side::A).unwrap();
    let log = lab.logs(Side::A);
    let resume = log
        .split("resuming at PN 0x")
        .nth(1)
        .and_then(|r| u64::from_str_radix(r.split_whitespace().next().unwrap_or(""), 16).ok())
        .unwrap_or_else(|| panic!("the copy did not resume from the marks:\n{log}"));
    assert!(
        resume >= next,
        "resumed at {resume:#x}, the original had reached {next:#x}"
    );
    assert_eq!(lab.ping(Side::A, 56, 5, ms(20), false).unwrap().received, 5);
}

/// Issue 12.4: a plain and a secure port deleted and created again are opened again
/// within a second of coming back, logged and counted; one that does not come back
/// makes the forwarder exit 1 after `port_timeout_s`.
#[test]
fn root_a_port_deleted_and_created_again_is_used_again() {
    require_root();
    let mut s = spec("del");
    s.forward_extra = "port_timeout_s = 30\n".into();
    let mut lab = Lab::start(s, Path::new(BIN)).expect("lab");
    assert_eq!(lab.ping(Side::A, 56, 3, ms(50), false).unwrap().received, 3);
    let (na, f1, f2) = (
        lab.host_ns(Side::A).to_owned(),
        lab.fwd_ns(Side::A).to_owned(),
        lab.fwd_ns(Side::B).to_owned(),
    );
    let veth = Veth {
        mtu: Some(1500),
        ..Veth::default()
    };
    // The plain port: a0 (host A) and p1 (F1) are one veth pair.
    link::del(&f1, "p1").unwrap();
    std::thread::sleep(ms(500));
    assert_eq!(
        lab.ping(Side::A, 56, 2, ms(50), false)
            .map(|p| p.received)
            .unwrap_or(0),
        0
    );
    link::add_veth(&na, "a0", &f1, "p1", &veth).unwrap();
    ip::add_addr(&na, "a0", lab.host_addr(Side::A), 24).unwrap();
    link::set_up(&na, "a0").unwrap();
    link::set_up(&f1, "p1").unwrap();
    link::wait_running(&na, "a0", Duration::from_secs(5)).unwrap();
    let back = Instant::now();
    wait_log(
        &lab,
        Side::A,
        "plain port p1 is up again",
        Duration::from_secs(3),
    );
    assert!(
        back.elapsed() < Duration::from_secs(1),
        "re-opened {:?} after it came back",
        back.elapsed()
    );
    assert!(lab.logs(Side::A).contains("plain port p1 is gone"));
    let t0 = Instant::now();
    while lab.ping(Side::A, 56, 1, ms(100), false).unwrap().received == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{}",
            lab.logs(Side::A)
        );
    }
    assert_eq!(lab.ping(Side::A, 56, 5, ms(20), false).unwrap().received, 5);

    // The secure link: s1 (F1) and s2 (F2) are one veth pair; both forwarders lose it.
    link::del(&f1, "s1").unwrap();
    std::thread::sleep(ms(300));
    let secure = Veth {
        mtu: Some(1532),
        ..Veth::default()
    };
    link::add_veth(&f1, "s1", &f2, "s2", &secure).unwrap();
    link::set_up(&f1, "s1").unwrap();
    link::set_up(&f2, "s2").unwrap();
    wait_log(
        &lab,
        Side::A,
        "secure port s1 is up again",
        Duration::from_secs(3),
    );
    wait_log(
        &lab,
        Side::B,
        "secure port s2 is up again",
        Duration::from_secs(3),
    );
    let t0 = Instant::now();
    while lab.ping(Side::A, 56, 1, ms(100), false).unwrap().received == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{}",
            lab.logs(Side::A)
        );
    }
    let st = lab.stats(Side::A).unwrap();
    assert_eq!(st["forwarder"]["port_reopens"], 2, "{st}");

    // Gone for good: exit 1 after the timeout, with the reason.
    let mut s = spec("gon");
    s.forward_extra = "port_timeout_s = 2\n".into();
    let mut lab = Lab::start(s, Path::new(BIN)).expect("lab");
    let f1 = lab.fwd_ns(Side::A).to_owned();
    link::del(&f1, "p1").unwrap();
    let t0 = Instant::now();
    let code = loop {
        let st = lab
            .forwarder_exit(Side::A)
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(c) = st {
            break c;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "still running:\n{}",
            lab.logs(Side::A)
        );
        std::thread::sleep(ms(100));
    };
    assert_eq!(code, Some(1), "{}", lab.logs(Side::A));
    assert!(
        lab.logs(Side::A)
            .contains("plain port p1 has been gone for 2 s; exiting"),
        "{}",
        lab.logs(Side::A)
    );
}

/// Issue 12.5 and 12.6: `--check-only` lists every problem with its fix in one run,
/// exits 2, and leaves no lock file; a plain MTU that the secure port cannot carry
/// says so; a state directory that cannot be written is a start-up failure (exit 2).
#[test]
fn root_check_only_lists_every_problem_and_changes_nothing() {
    require_root();
    let mut s = spec("chk");
    s.plain_mtu = 9000;
    s.secure_mtu = 9000; // needs 9032
    let mut lab = Lab::start(s, Path::new(BIN)).expect("lab");
    // F1's ports: offloads back on, and MTU 9000 again (F1 raised it at start).
    lab.stop_forwarder(Side::A).unwrap();
    let f1 = lab.fwd_ns(Side::A).to_owned();
    link::set_mtu(&f1, "s1", 9000).unwrap();
    for dev in ["p1", "s1"] {
        macsec_testkit::netlab::ethtool::set_features(&f1, dev, &[("rx-gro", true)]).unwrap();
    }
    let run_dir = lab.dir.join("run");
    let files = || std::fs::read_dir(&run_dir).map(|d| d.count()).unwrap_or(0);
    let before = files();
    let (code, err) = run_forward(
        &f1,
        &lab.config_path(Side::A),
        &["--check-only"],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(2), "{err}");
    let problems: Vec<&str> = err.lines().filter(|l| l.contains("problem:")).collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("ip link set dev s1 mtu 9032")),
        "{err}"
    );
    assert!(problems.iter().any(|p| p.contains("ethtool -K")), "{err}");
    assert!(problems.len() >= 2, "{err}");
    assert_eq!(files(), before, "--check-only left a lock file");
    // F2 still runs on its ports: its locks are found by a check of its own config.
    let f2 = lab.fwd_ns(Side::B).to_owned();
    let (code, err) = run_forward(
        &f2,
        &lab.config_path(Side::B),
        &["--check-only"],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("is in use by another `macsec forward`"),
        "{err}"
    );

    // A plain MTU the secure port can never carry: the maximum is named.
    link::set_mtu(&f1, "p1", 65535).unwrap();
    let (code, err) = run_forward(
        &f1,
        &lab.config_path(Side::A),
        &["--check-only"],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("allows at most 65535; lower the plain port's MTU"),
        "{err}"
    );
    let (code, err) = run_forward(&f1, &lab.config_path(Side::A), &[], Duration::from_secs(10));
    assert_eq!(code, Some(2), "start-up failure: {err}");
    assert!(err.contains("allows at most 65535"), "{err}");
    link::set_mtu(&f1, "p1", 9000).unwrap();

    // A state directory that cannot be made: exit 2, naming it.
    let bad = lab.dir.join("notadir");
    std::fs::write(&bad, b"").unwrap();
    let cfg = lab.dir.join("badstate.toml");
    let state_line = format!("state_file = \"{}\"", lab.dir.join("A.pn").display());
    rewrite(
        &lab,
        Side::A,
        &state_line,
        &format!("state_file = \"{}/x.pn\"", bad.display()),
        &cfg,
    );
    let (code, err) = run_forward(&f1, &cfg, &[], Duration::from_secs(10));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("notadir"), "{err}");
}

/// Issue 12.7: frames from the peer that keep failing are reported with the SCI, the
/// counter and the likely cause.
#[test]
fn root_a_key_or_sci_mismatch_is_reported() {
    require_root();
    let lab = Lab::start(spec("mis"), Path::new(BIN)).expect("lab");
    // F2 with a wrong receive key for F1's SC.
    let mut lab = lab;
    let text = std::fs::read_to_string(lab.config_path(Side::B)).unwrap();
    let rx_key = text
        .split("[[secy.rx.sa]]")
        .nth(1)
        .and_then(|t| t.split("key = \"").nth(1))
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_owned();
    let wrong: String = rx_key.chars().rev().collect();
    let cfg_b = lab.config_path(Side::B);
    lab.stop_forwarder(Side::B).unwrap();
    crate::pcap_cli::write_config(&cfg_b, text.replacen(&rx_key, &wrong, 1));
    lab.start_forwarder(Side::B).unwrap();
    let p = lab.ping(Side::A, 56, 60, ms(100), false).unwrap();
    assert_eq!(p.received, 0);
    let log = lab.logs(Side::B);
    assert!(
        log.contains(&format!(
            "frames from peer SCI {SCI_F1} keep failing validation (InPktsNotValid +"
        )),
        "{log}"
    );
    assert!(
        log.contains("different keys, cipher suites or confidentiality offsets"),
        "{log}"
    );
    // Warned once, not once a second.
    assert_eq!(log.matches("keep failing validation").count(), 1, "{log}");

    // F2 with another peer SCI: F1's frames have no receive SC.
    lab.stop_forwarder(Side::B).unwrap();
    crate::pcap_cli::write_config(
        &cfg_b,
        text.replacen(
            &format!("sci = \"{SCI_F1}\""),
            "sci = \"02000000f1990001\"",
            1,
        ),
    );
    lab.start_forwarder(Side::B).unwrap();
    let _ = lab.ping(Side::A, 56, 60, ms(100), false).unwrap();
    let log = lab.logs(Side::B);
    assert!(
        log.contains(&format!(
            "frames from SCI {SCI_F1}, which has no receive SC here"
        )),
        "{log}"
    );
}

/// Issue 12.8: the forwarder turns IPv6 off on its secure port, so the host sends
/// nothing of its own there, and logs it.
#[test]
fn root_the_secure_port_carries_only_what_the_forwarder_sends() {
    require_root();
    let mut lab = Lab::start(spec("v6q"), Path::new(BIN)).expect("lab");
    lab.stop_forwarder(Side::A).unwrap();
    let f1 = lab.fwd_ns(Side::A).to_owned();
    let key = "net.ipv6.conf.s1.disable_ipv6";
    sysctl::set(&f1, key, "0").unwrap();
    lab.start_forwarder(Side::A).unwrap();
    assert_eq!(sysctl::get(&f1, key).unwrap().trim(), "1");
    assert!(
        lab.logs(Side::A)
            .contains("secure port s1: IPv6 turned off"),
        "{}",
        lab.logs(Side::A)
    );
    // What the host sent in the moments before the forwarder turned IPv6 off (DAD, MLD)
    // may have reached F2 already; from now on nothing more may come.
    let no_tag = |lab: &mut Lab| {
        let st = lab.stats(Side::B).unwrap();
        (st["counters"]["secy"]["InPktsNoTag"].as_u64().unwrap(), st)
    };
    let (before, _) = no_tag(&mut lab);
    std::thread::sleep(ms(1500));
    let (after, st) = no_tag(&mut lab);
    assert_eq!(after, before, "{st}");
}

/// Issue 12.10: no Rust `Debug` forms in the logs, static keys or MKA.
#[test]
fn root_logs_show_settings_as_configured_and_scis_as_hex() {
    require_root();
    for mka in [false, true] {
        let mut s = spec(if mka { "lgm" } else { "lgs" });
        s.mka = mka;
        let lab = Lab::start(s, Path::new(BIN)).expect("lab");
        if mka {
            lab.wait_secured(Side::A, Duration::from_secs(10)).unwrap();
        }
        let _ = lab.ping(Side::A, 56, 3, ms(50), false);
        for side in [Side::A, Side::B] {
            let log = lab.logs(side);
            for debug in [
                "Some(",
                "Sci(",
                "Confidentiality(",
                "IntegrityOnly",
                "Zero)",
                "Strict",
                "{ ",
            ] {
                assert!(!log.contains(debug), "{debug:?} in the log:\n{log}");
            }
            assert!(
                log.contains("encrypt = true, confidentiality_offset = 0"),
                "{log}"
            );
        }
    }
}

/// CPU time (user + system) of process `pid` so far, from /proc/<pid>/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // In clock ticks of USER_HZ, which Linux fixes at 100 for /proc.
    Duration::from_millis(ticks * 10)
}

/// An idle forwarder sleeps: its threads wake for timers and frames only. (A channel
/// whose senders were gone, the link monitor's probes without a monitor, once made the
/// control loop spin a whole core.)
#[test]
fn root_an_idle_forwarder_uses_almost_no_cpu() {
    require_root();
    for mka in [false, true] {
        let lab = Lab::start(
            LabSpec {
                mka,
                replay_window: 0,
                ..spec(if mka { "cpum" } else { "cpus" })
            },
            Path::new(BIN),
        )
        .expect("lab");
        if mka {
            lab.wait_secured(Side::A, Duration::from_secs(10)).unwrap();
        }
        std::thread::sleep(ms(500));
        let pid = lab.forwarder(Side::A).unwrap().child.id();
        let before = cpu_time(pid);
        std::thread::sleep(Duration::from_secs(3));
        let used = cpu_time(pid) - before;
        eprintln!("idle forwarder (mka {mka}): {used:?} of CPU in 3 s");
        assert!(
            used < Duration::from_millis(300),
            "an idle forwarder (mka {mka}) used {used:?} of CPU in 3 s"
        );
    }
}

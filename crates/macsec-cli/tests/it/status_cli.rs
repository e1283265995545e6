//! `macsec status` through the real binary, against control servers in a temporary
//! directory whose control loop answers from fixed status documents (no root needed),
//! and `macsec forward --log-format`.

use crate::pcap_cli::{run, TempDir};
use crossbeam::channel::Sender;
use macsec_forward::control::{
    answer_ok, Command as Cmd, ControlServer, EventKind, EventLog, Request,
};
use serde_json::{json, Value};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Output;

const MKA_SECURED: &str =
    include_str!("../../../macsec-forward/src/control/testdata/mka_secured.json");
const STATIC: &str = include_str!("../../../macsec-forward/src/control/testdata/static.json");
const TWO_LINKS: &str = include_str!("../../../macsec-forward/src/control/testdata/two_links.json");

fn doc(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// A control loop answering `status` with `status` and `events` with a small log.
fn fake_loop(status: Value) -> Sender<Request> {
    let (tx, rx) = crossbeam::channel::bounded::<Request>(8);
    std::thread::spawn(move || {
        let mut log = EventLog::new();
        let t = macsec_forward::control::events::now_unix();
        log.push_at(
            t - 75.0,
            EventKind::LinkDown,
            Some("dx2"),
            "link dx2 down: carrier lost",
        );
        log.push_at(
            t - 74.5,
            EventKind::Failover,
            None,
            "traffic moves from dx2 to dx1 (link down)",
        );
        for r in rx {
            let a = match r.cmd {
                Cmd::Status => status.to_string(),
                Cmd::Events => log.to_json(),
                _ => answer_ok("done"),
            };
            let _ = r.reply.send(a);
        }
    });
    tx
}

fn serve(path: &Path, status: &str) -> ControlServer {
    ControlServer::start(path, fake_loop(doc(status))).unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `line` is one of the lines of `out`, spaces as they are.
fn has_line(out: &str, line: &str) {
    assert!(
        out.lines().any(|l| l == line),
        "missing line {line:?} in:\n{out}"
    );
}

#[test]
fn status_of_a_secured_mka_link() {
    let d = TempDir::new("st-mka");
    let p = d.path("link1.sock");
    let _s = serve(&p, MKA_SECURED);
    let o = run(&["status", "--socket", p.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(err.is_empty(), "{err}");
    print!("{out}");
    for l in [
        "forwarder: link1",
        "  pid:          4242, up 2 h 3 min",
        "  config:       /etc/macsec/link1.toml",
        "  plain:        eth1",
        "  keys:         mka, gcm-aes-128",
        "  link: dx1",
        "    status:       secured, up, active",
        "    interface:    eth2, carrier up, priority 1",
        "    sci:          020000000f010001",
        "    mka:          secured for 2 min 0 s (since 2025-12-06 05:46:40 UTC)",
        "    key server:   020000000f020001 (peer)",
        "    live peers:   020000000f020001",
        "    potential:    none",
        "    sak:          AN 1, KN 2, gcm-aes-128",
        "    next pn:      1234567891 (28.74 % of the PN space used)",
        "    last mkpdu:   1.2 s ago",
        "    rekeys:       3",
        "    rtt:          0.200 ms last, 0.250 ms mean, 0.900 ms p99, jitter 0.050 ms",
        "    loss:         0 % outbound, 1.00 % inbound (probes: 7300 sent, 7227 received)",
        "    transfer:     2.64 GiB received, 1.32 GiB sent",
        "    frames:       2097140 received, 1048570 sent",
        "    errors:       InPktsLate      2  frames below the lowest acceptable PN, discarded (replayProtect on)",
        "                  InPktsNotValid  3  frames that failed validation, discarded",
    ] {
        has_line(&out, l);
    }
    // The counters shown are the JSON's.
    let o = run(&["status", "--socket", p.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut expected = doc(MKA_SECURED);
    expected["socket"] = json!(p);
    assert_eq!(v, json!([expected]));
    // No key material: there is none in the status, and no PN labels a line but "next pn".
    assert!(!out.contains("2345678901"), "receive PNs are not shown");
}

#[test]
fn status_of_a_static_link() {
    let d = TempDir::new("st-static");
    let p = d.path("lab.sock");
    let _s = serve(&p, STATIC);
    let o = run(&["status", "--socket", p.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    print!("{out}");
    for l in [
        "forwarder: lab",
        "  keys:         static, gcm-aes-xpn-256",
        "  link: veth-s",
        "    status:       secured, up, active",
        "    keys:         static",
        "    next pn:      5000000001 (< 0.01 % of the PN space used), AN 0",
        "    peer:         5254001234020001, last valid frame 0.4 s ago",
        "    transfer:     615.23 KiB received, 618.16 KiB sent",
        "    errors:       none",
    ] {
        has_line(&out, l);
    }
    assert!(!out.contains("mka:") && !out.contains("rtt:"), "{out}");
}

#[test]
fn status_of_two_links_with_a_down_backup_exits_1() {
    let d = TempDir::new("st-two");
    let p = d.path("site-a.sock");
    let _s = serve(&p, TWO_LINKS);
    // By name, in --dir.
    let o = run(&["status", "site-a", "--dir", d.0.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a link is not secured\n{out}{err}"
    );
    assert!(err.is_empty(), "{err}");
    print!("{out}");
    for l in [
        "forwarder: site-a",
        "  pid:          31337, up 1 d 1 h",
        "  redundancy:   active-backup, carrying traffic: dx1, failovers: 1, monitor on",
        "  link: dx1",
        "    status:       secured, up, active",
        "    key server:   this end",
        "  link: dx2",
        "    status:       NOT SECURED, DOWN (carrier lost), backup",
        "    interface:    eth3, NO CARRIER, priority 2",
        "    mka:          PENDING (no live peer)",
        "    key server:   none elected",
        "    live peers:   none",
        "    potential:    020000000f020002",
        "    last mkpdu:   1 min 35 s ago",
        "    rtt:          no answer to probes",
        "    loss:         100.00 % outbound, 100.00 % inbound (probes: 900610 sent, 880000 received)",
        "    failovers:    1 (traffic moved away from this link)",
        "    errors:       InPktsNoSAError  12  frames received for an unknown SCI or an SA not in use, discarded",
    ] {
        has_line(&out, l);
    }
    // The blocks come in order: dx1's lines before dx2's.
    assert!(out.find("  link: dx1").unwrap() < out.find("  link: dx2").unwrap());
}

#[test]
fn every_socket_in_the_directory_and_a_stale_one() {
    let d = TempDir::new("st-dir");
    let _a = serve(&d.path("a.sock"), MKA_SECURED);
    let _b = serve(&d.path("b.sock"), STATIC);
    std::fs::write(d.path("notes.txt"), "not a socket").unwrap();
    std::fs::write(d.path("old.sock"), "a file, not a socket: not asked").unwrap();
    let dir = d.0.to_str().unwrap();
    let o = run(&["status", "--dir", dir]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "both secured\n{out}{err}");
    assert!(out.find("forwarder: link1").unwrap() < out.find("forwarder: lab").unwrap());

    // A forwarder that stopped without removing its socket.
    drop(UnixListener::bind(d.path("c.sock")).unwrap());
    let o = run(&["status", "--dir", dir]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("forwarder: link1") && out.contains("forwarder: lab"));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("macsec status: stale socket: no forwarder listening on ")
            && err.contains("c.sock"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    let o = run(&["status", "--dir", dir, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a[0]["forwarder"]["name"], "link1");
    assert_eq!(a[1]["forwarder"]["name"], "lab");
    assert_eq!(
        a[2],
        json!({"socket": d.path("c.sock"), "error": "stale socket: no forwarder listening"})
    );

    // No sockets at all.
    let empty = TempDir::new("st-empty");
    let o = run(&["status", "--dir", empty.0.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out.is_empty() && err.contains("no forwarder sockets in"),
        "{err}"
    );
    let o = run(&["status", "--dir", "/nonexistent/macsec", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    let o = run(&["status", "nosuch", "--dir", empty.0.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("no control socket at") && err.contains("nosuch.sock"),
        "{err}"
    );
}

#[test]
fn events_of_a_forwarder() {
    let d = TempDir::new("st-ev");
    let p = d.path("site-a.sock");
    let _s = serve(&p, TWO_LINKS);
    let o = run(&["status", "--socket", p.to_str().unwrap(), "--events"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    print!("{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("forwarder: site-a"), "{out}");
    assert!(
        lines[1].contains(
            " UTC  1 min 15 s ago  dx2  link_down               link dx2 down: carrier lost"
        ),
        "{out}"
    );
    assert!(
        lines[2].contains(
            " ago  -    failover                traffic moves from dx2 to dx1 (link down)"
        ),
        "{out}"
    );
    let o = run(&[
        "status",
        "--socket",
        p.to_str().unwrap(),
        "--events",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["events"][0]["kind"], "link_down");
    assert_eq!(v[0]["version"], 1);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["status", "--bogus"][..],
        &["status", "a", "--socket", "/tmp/x.sock"],
        &["status", "a", "b"],
        &["status", "../etc/x"],
        &["forward", "--config", "x.toml", "--log-format", "xml"],
    ] {
        let o = run(args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn forward_logs_json_lines_with_log_format_json() {
    let d = TempDir::new("logfmt");
    let cfg = d.path("f.toml");
    std::fs::write(&cfg, "[secy]\n").unwrap();
    let o = run(&[
        "forward",
        "--config",
        cfg.to_str().unwrap(),
        "--log-format",
        "json",
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let first = err.lines().next().unwrap();
    let v: Value = serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(v["level"], "INFO");
    assert!(
        v["message"].as_str().unwrap().contains("forward: config"),
        "{v}"
    );
    let o = run(&["forward", "--config", cfg.to_str().unwrap()]);
    let (_, err) = text(&o);
    let first = err.lines().next().unwrap();
    assert!(
        serde_json::from_str::<Value>(first).is_err(),
        "text by default: {first}"
    );
    assert!(
        first.contains("INFO") && first.contains("forward: config"),
        "{first}"
    );
}

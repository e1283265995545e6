//! `macsec demo`: the whole data plane on a machine with nothing set up.
//!
//! Builds `A — F1 == F2 — B` in fresh network namespaces, starts two forwarders with
//! fresh random keys, pings both ways (normal and jumbo), measures TCP throughput and
//! latency, prints both forwarders' counters, and removes everything again (on Ctrl-C
//! too). It starts no outside program: the namespaces, links and addresses are made over
//! netlink, the pings are ICMP from a raw socket inside a namespace, the throughput is a
//! TCP transfer between two sockets of this process (`macsec_testkit::netlab`).

use macsec::crypto::CipherSuite;
use macsec_testkit::lab::{Lab, LabError, LabSpec, Launcher, Side};
use macsec_testkit::netlab::ping::PingReport;
use macsec_testkit::topology::Middle;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Cipher suite.
    pub cipher: CipherSuite,
    /// Integrity only instead of encryption.
    pub integrity_only: bool,
    /// Secure links between the forwarders (1 to 4). With more than one the links are
    /// keyed by MKA and monitored, and the demo shows a failover.
    pub links: usize,
}

fn counter(v: &Value, path: &[&str]) -> u64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_u64().unwrap_or(0)
}

/// A transmit SC counter of one SecY's counters (`{"tx_sc": {..}, "rx_sc": [..]}`).
fn tx_count(c: &Value, key: &str) -> u64 {
    counter(&c["tx_sc"], &[key])
}

/// A receive SC counter of one SecY's counters, summed over its receive SCs.
fn rx_count(c: &Value, key: &str) -> u64 {
    c["rx_sc"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|sc| counter(sc, &[key]))
        .sum()
}

/// Each link's SecY counters (the top level's `tx_sc` is the first link's alone), so that
/// frame counts can be summed over every link's transmit SC and every receive SC.
fn sc_counters(v: &Value) -> Vec<&Value> {
    match v["links"].as_array() {
        Some(links) if !links.is_empty() => links.iter().map(|l| &l["counters"]).collect(),
        _ => vec![&v["counters"]],
    }
}

/// A transmit SC counter summed over the SecYs of [`sc_counters`].
fn tx_sum(scs: &[&Value], key: &str) -> u64 {
    scs.iter().map(|c| tx_count(c, key)).sum()
}

/// A receive SC counter summed over the SecYs of [`sc_counters`].
fn rx_sum(scs: &[&Value], key: &str) -> u64 {
    scs.iter().map(|c| rx_count(c, key)).sum()
}

/// Protected frames sent and frames received OK by one forwarder, over all its links.
fn frame_totals(v: &Value) -> (u64, u64) {
    let scs = sc_counters(v);
    (
        tx_sum(&scs, "OutPktsEncrypted") + tx_sum(&scs, "OutPktsProtected"),
        rx_sum(&scs, "InPktsOK"),
    )
}

fn print_counters(name: &str, v: &Value) {
    let links = v["links"].as_array().map(Vec::as_slice).unwrap_or_default();
    if links.len() > 1 {
        for l in links {
            let c = &l["counters"];
            println!(
                "  {name} link {} ({}, {}): sent {} protected frames, received InPktsOK {}  InPktsNotValid {}  InPktsLate {}; probes sent {} received {}",
                l["name"].as_str().unwrap_or("?"),
                l["state"].as_str().unwrap_or("?"),
                l["role"].as_str().unwrap_or("?"),
                tx_count(c, "OutPktsEncrypted") + tx_count(c, "OutPktsProtected"),
                rx_count(c, "InPktsOK"),
                rx_count(c, "InPktsNotValid"),
                rx_count(c, "InPktsLate"),
                counter(l, &["probes", "sent"]),
                counter(l, &["probes", "received"]),
            );
        }
    }
    let scs = sc_counters(v);
    let tx = |key: &str| tx_sum(&scs, key);
    let rx = |key: &str| rx_sum(&scs, key);
    let sy = &v["counters"]["secy"];
    println!("  {name}: sent {} protected frames ({} encrypted, {} integrity-only), {} octets of user data",
        tx("OutPktsEncrypted") + tx("OutPktsProtected"),
        tx("OutPktsEncrypted"), tx("OutPktsProtected"),
        counter(sy, &["OutOctetsEncrypted"]) + counter(sy, &["OutOctetsProtected"]));
    println!("  {name}: received InPktsOK {}  InPktsNotValid {}  InPktsLate {}  InPktsNoTag {}  InPktsBadTag {}  InPktsNoSAError {}",
        rx("InPktsOK"), rx("InPktsNotValid"), rx("InPktsLate"),
        counter(sy, &["InPktsNoTag"]), counter(sy, &["InPktsBadTag"]), counter(sy, &["InPktsNoSAError"]));
    let p = &v["pumps"]["plain_to_secure"];
    println!(
        "  {name}: GSO super-frames segmented {}, checksums completed {}, kernel ring drops {}",
        counter(p, &["gso_frames"]),
        counter(p, &["csum_completed"]),
        counter(p, &["kernel_drops"]) + counter(v, &["pumps", "secure_to_plain", "kernel_drops"])
    );
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It ran and passed.
    Pass,
    /// It ran and failed.
    Fail,
    /// It could not run (the reason is its detail).
    Skip,
}

/// The checks so far, printed as they come.
#[derive(Debug, Default)]
struct Checks {
    done: Vec<(Outcome, String, String)>,
}

impl Checks {
    /// Records and prints one check.
    fn report(&mut self, name: &str, outcome: Outcome, detail: String) {
        let tag = match outcome {
            Outcome::Pass => " ok ",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        };
        println!("  [{tag}] {name}: {detail}");
        self.done.push((outcome, name.to_owned(), detail));
    }

    /// A ping check: passes with every reply back; a ping that could not be sent at all
    /// is a check that did not run.
    fn ping(
        &mut self,
        name: &str,
        p: Result<PingReport, LabError>,
        detail: impl Fn(&PingReport) -> String,
    ) {
        match p {
            Ok(p) => {
                let pass = p.sent > 0 && p.received == p.sent && p.bad == 0;
                let mut d = detail(&p);
                if let Some(e) = p.echoes.iter().find_map(|e| e.send_error) {
                    d.push_str(&format!(
                        " (send error: {})",
                        std::io::Error::from_raw_os_error(e)
                    ));
                }
                self.report(name, if pass { Outcome::Pass } else { Outcome::Fail }, d);
            }
            Err(e) => self.report(name, Outcome::Skip, format!("cannot ping: {e}")),
        }
    }

    fn with(&self, outcome: Outcome) -> impl Iterator<Item = &(Outcome, String, String)> {
        self.done.iter().filter(move |c| c.0 == outcome)
    }

    /// No check failed (checks that could not run do not count as failed).
    fn passed(&self) -> bool {
        self.with(Outcome::Fail).next().is_none()
    }

    /// The closing sentence: all passed, or what failed, and what was not checked.
    fn summary(&self) -> String {
        let names = |o| {
            self.with(o)
                .map(|c| c.1.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let failed = names(Outcome::Fail);
        let not_run: Vec<String> = self
            .with(Outcome::Skip)
            .map(|c| format!("{} ({})", c.1, c.2))
            .collect();
        let mut s = if !failed.is_empty() {
            format!("Some checks FAILED: {failed}.")
        } else if not_run.is_empty() {
            "All checks passed.".to_owned()
        } else {
            format!(
                "The {} checks that ran passed.",
                self.with(Outcome::Pass).count()
            )
        };
        if !not_run.is_empty() {
            s.push_str(&format!(
                " NOT CHECKED (could not run): {}.",
                not_run.join("; ")
            ));
        }
        s
    }
}

/// Runs the demo. Returns whether no check failed (a check that could not run is
/// named in the summary, not counted as failed).
pub fn run(opts: &DemoOptions, bin: &Path) -> Result<bool, String> {
    if !macsec_testkit::root::is_root() {
        return Err("the demo creates network namespaces: run it as root (sudo)".into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    // Every step is bounded (a few seconds at most); a stop request is honoured between
    // steps, and returning drops the lab: forwarders stopped, namespaces deleted.
    let check = |what: &str| -> Result<(), String> {
        if stop.load(Ordering::Relaxed) {
            Err(format!("interrupted during {what}; everything was removed"))
        } else {
            Ok(())
        }
    };
    let links = opts.links.clamp(1, 4);
    println!("macsec demo: IEEE 802.1AE MACsec between two userspace forwarders\n");
    println!("Setting up (network namespaces, removed at exit):");
    if links == 1 {
        println!("  host A 10.77.0.1 --veth-- [forwarder F1] ==MACsec veth== [forwarder F2] --veth-- host B 10.77.0.2");
    } else {
        println!("  host A 10.77.0.1 --veth-- [forwarder F1] =={links} MACsec links== [forwarder F2] --veth-- host B 10.77.0.2");
        println!("  (link l0 passes a relay that can drop every frame with the carrier up; MKA keys every link)");
    }
    let spec = LabSpec {
        tag: "demo".into(),
        cipher: opts.cipher,
        encrypt: !opts.integrity_only,
        plain_mtu: 9000,
        secure_mtu: 9032,
        replay_window: 0,
        middle: Middle::Forwarders,
        subnet: 77,
        links,
        impaired: if links > 1 { vec![0] } else { Vec::new() },
        mka: links > 1,
        mka_extra: ["priority = 16".into(), "priority = 32".into()],
        extra: if links > 1 {
            "[redundancy]\nmode = \"active-backup\"\nhold_up_ms = 1000\n[monitor]\nprobe_interval_ms = 100\nprobe_miss = 3\n".into()
        } else {
            String::new()
        },
        ..LabSpec::default()
    };
    // The forwarders get a process group of their own: a Ctrl-C at the terminal reaches
    // only the demo, which then stops them and removes everything in order.
    let exe = bin.to_path_buf();
    let launcher = Launcher::new(move |args| {
        let mut c = Command::new(&exe);
        c.args(args).process_group(0);
        c
    });
    let mut lab = Lab::start_with(spec, launcher).map_err(|e| e.to_string())?;
    check("setup")?;
    println!(
        "  cipher {}, {}, fresh random keys, plain MTU 9000, secure MTU 9032, PN state in {}",
        opts.cipher,
        if opts.integrity_only {
            "integrity only"
        } else {
            "confidentiality"
        },
        lab.dir.display()
    );
    let mut checks = Checks::default();
    let ms = Duration::from_millis;
    if links > 1 {
        check("MKA")?;
        wait_links(&mut lab, &stop, |ls| {
            ls.iter()
                .all(|l| l["secured"] == true && l["state"] == "up")
        })
        .map_err(|e| format!("links not secured: {e}"))?;
        wait_links(&mut lab, &stop, |_| true)?;
    }
    println!("\nChecks:");
    for (from, label) in [(Side::A, "ping A -> B"), (Side::B, "ping B -> A")] {
        check("ping")?;
        checks.ping(label, lab.ping(from, 56, 5, ms(200), false), |p| {
            format!(
                "{}/{} replies, RTT avg {:.0} µs",
                p.received, p.sent, p.avg_us
            )
        });
    }
    check("jumbo ping")?;
    checks.ping(
        "jumbo ping A -> B (9000-byte IP packets, don't fragment)",
        lab.ping(Side::A, 8972, 3, ms(200), true),
        |p| {
            format!(
                "{}/{} replies, RTT avg {:.0} µs",
                p.received, p.sent, p.avg_us
            )
        },
    );
    check("latency")?;
    checks.ping(
        "latency at idle",
        lab.ping(Side::A, 56, 20, ms(50), false),
        |p| {
            format!(
                "RTT min {:.0} µs, avg {:.0} µs over {} pings",
                p.min_us, p.avg_us, p.sent
            )
        },
    );
    check("throughput")?;
    let bytes = 200u64 << 20;
    let name = "TCP transfer A -> B (200 MiB, content checked)";
    match lab.tcp_transfer(bytes, 5201) {
        Ok((got, secs)) => checks.report(
            name,
            if got == bytes {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            format!(
                "{:.2} Gbit/s ({got} octets in {secs:.2} s)",
                got as f64 * 8.0 / secs / 1e9
            ),
        ),
        Err(e @ LabError::CannotRun(_)) => checks.report(name, Outcome::Skip, e.to_string()),
        Err(e) => checks.report(name, Outcome::Fail, e.to_string()),
    }
    if links > 1 {
        check("failover")?;
        failover(&mut lab, &mut checks, &stop)?;
    }
    check("counters")?;
    println!("\nCounters (802.1AE names):");
    // The TCP transfer's last ACKs and FINs may still be crossing, and a forwarder answers
    // a counter request between two batches of frames: read both sides until two reads
    // agree (at most a second), so that one side's "sent" matches the other's "received".
    // Not with several links: their probes never stop counting, and the lines should show
    // the links as the failover left them, not after a failback a second later.
    let read = |lab: &mut Lab| [lab.stats(Side::A), lab.stats(Side::B)];
    let rereads = if links > 1 { 0 } else { 20 };
    let mut stats = read(&mut lab);
    for _ in 0..rereads {
        std::thread::sleep(Duration::from_millis(50));
        let again = read(&mut lab);
        let same = stats.iter().zip(&again).all(|(x, y)| match (x, y) {
            (Ok(x), Ok(y)) => frame_totals(x) == frame_totals(y),
            _ => false,
        });
        stats = again;
        if same {
            break;
        }
    }
    for (got, name) in stats.into_iter().zip(["F1", "F2"]) {
        match got {
            Ok(v) => print_counters(name, &v),
            Err(e) => checks.report(&format!("counters of {name}"), Outcome::Fail, e.to_string()),
        }
    }
    drop(lab);
    println!("\nRemoved the namespaces. {}", checks.summary());
    Ok(checks.passed())
}

/// Waits (at most 20 s) until `pred` holds for F1's and F2's links, and link l0 carries
/// the traffic at both ends.
fn wait_links(
    lab: &mut Lab,
    stop: &AtomicBool,
    pred: impl Fn(&[Value]) -> bool,
) -> Result<(), String> {
    let t0 = std::time::Instant::now();
    loop {
        let mut ok = true;
        for side in [Side::A, Side::B] {
            let v = lab.stats(side).map_err(|e| e.to_string())?;
            let ls = v["links"].as_array().cloned().unwrap_or_default();
            ok &= pred(&ls) && v["redundancy"]["active"] == serde_json::json!(["l0"]);
        }
        if ok {
            return Ok(());
        }
        if stop.load(Ordering::Relaxed) {
            return Err("interrupted; everything was removed".into());
        }
        if t0.elapsed() > Duration::from_secs(20) {
            return Err(format!("not after 20 s:\n{}", lab.logs(Side::A)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Black-holes the active link l0 (carrier up, every frame dropped) under a 10 ms ping
/// and reports the outage the failover to l1 cost, then heals it.
fn failover(lab: &mut Lab, checks: &mut Checks, stop: &AtomicBool) -> Result<(), String> {
    use macsec_testkit::netlab::ping::{PingOpts, Pinger};
    let opts = PingOpts {
        size: 56,
        count: 100_000,
        interval: Duration::from_millis(10),
        timeout: Duration::from_millis(300),
        dont_fragment: false,
    };
    let name = "failover: link l0 silently drops everything (carrier up)";
    let p = match Pinger::start(lab.host_ns(Side::A), lab.host_addr(Side::B), &opts) {
        Ok(p) => p,
        Err(e) => {
            checks.report(name, Outcome::Skip, format!("cannot ping: {e}"));
            return Ok(());
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    lab.impairment(0)
        .ok_or("link l0 has no relay")?
        .set_blackhole(true);
    std::thread::sleep(Duration::from_millis(1500));
    let r = p.stop().map_err(|e| e.to_string())?;
    let v = lab.stats(Side::A).map_err(|e| e.to_string())?;
    let moved = v["redundancy"]["active"] == serde_json::json!(["l1"]);
    let gap = r.longest_gap().unwrap_or_default();
    checks.report(
        name,
        if moved && gap <= Duration::from_millis(500) { Outcome::Pass } else { Outcome::Fail },
        format!(
            "traffic moved to l1; outage {:.0} ms ({} of {} pings lost; budget: 3 probes of 100 ms + 1)",
            gap.as_secs_f64() * 1000.0,
            r.lost(),
            r.sent
        ),
    );
    if let Some(r) = lab.impairment(0) {
        r.set_blackhole(false);
    }
    if stop.load(Ordering::Relaxed) {
        return Err("interrupted; everything was removed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_failures_and_what_could_not_run() {
        let mut c = Checks::default();
        c.report("ping A -> B", Outcome::Pass, "5/5".into());
        assert!(c.passed());
        assert_eq!(c.summary(), "All checks passed.");
        c.report("jumbo ping", Outcome::Skip, "cannot ping: EPERM".into());
        assert!(c.passed(), "a check that could not run is no failure");
        assert_eq!(
            c.summary(),
            "The 1 checks that ran passed. NOT CHECKED (could not run): jumbo ping (cannot ping: EPERM)."
        );
        c.report("TCP transfer", Outcome::Fail, "content differs".into());
        assert!(!c.passed());
        assert!(
            c.summary().starts_with("Some checks FAILED: TCP transfer."),
            "{}",
            c.summary()
        );
        assert!(c
            .summary()
            .contains("NOT CHECKED (could not run): jumbo ping"));
    }

    #[test]
    fn a_ping_that_cannot_be_sent_is_not_checked_and_a_lost_reply_fails() {
        let mut c = Checks::default();
        let err = LabError::CannotRun("no raw socket".into());
        c.ping("p", Err(err), |_| String::new());
        assert_eq!(c.done[0].0, Outcome::Skip);
        assert!(c.done[0].2.contains("no raw socket"), "{:?}", c.done);
        let lost = PingReport {
            sent: 2,
            received: 1,
            bad: 0,
            min_us: 1.0,
            avg_us: 1.0,
            max_us: 1.0,
            echoes: Vec::new(),
        };
        c.ping("q", Ok(lost), |p| format!("{}/{}", p.received, p.sent));
        assert_eq!(c.done[1], (Outcome::Fail, "q".into(), "1/2".into()));
    }
}

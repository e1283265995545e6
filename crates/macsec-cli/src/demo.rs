//! `macsec demo`: the whole data plane on a machine with nothing set up.
//!
//! Builds `A — F1 == F2 — B` in fresh network namespaces, starts two forwarders with
//! fresh random keys, pings both ways (normal and jumbo), measures TCP throughput and
//! latency, prints both forwarders' counters, and removes everything again (on Ctrl-C
//! too).

use macsec::crypto::CipherSuite;
use macsec_testkit::lab::{Lab, LabSpec, Side};
use macsec_testkit::topology::Middle;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Cipher suite.
    pub cipher: CipherSuite,
    /// Integrity only instead of encryption.
    pub integrity_only: bool,
}

fn counter(v: &Value, path: &[&str]) -> u64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_u64().unwrap_or(0)
}

fn print_counters(name: &str, v: &Value) {
    let c = &v["counters"];
    let tx = &c["tx_sc"];
    let rx = &c["rx_sc"][0];
    let sy = &c["secy"];
    println!("  {name}: sent {} protected frames ({} encrypted, {} integrity-only), {} octets of user data",
        counter(tx, &["OutPktsEncrypted"]) + counter(tx, &["OutPktsProtected"]),
        counter(tx, &["OutPktsEncrypted"]), counter(tx, &["OutPktsProtected"]),
        counter(sy, &["OutOctetsEncrypted"]) + counter(sy, &["OutOctetsProtected"]));
    println!("  {name}: received InPktsOK {}  InPktsNotValid {}  InPktsLate {}  InPktsNoTag {}  InPktsBadTag {}  InPktsNoSAError {}",
        counter(rx, &["InPktsOK"]), counter(rx, &["InPktsNotValid"]), counter(rx, &["InPktsLate"]),
        counter(sy, &["InPktsNoTag"]), counter(sy, &["InPktsBadTag"]), counter(sy, &["InPktsNoSAError"]));
    let p = &v["pumps"]["plain_to_secure"];
    println!(
        "  {name}: GSO super-frames segmented {}, checksums completed {}, kernel ring drops {}",
        counter(p, &["gso_frames"]),
        counter(p, &["csum_completed"]),
        counter(p, &["kernel_drops"]) + counter(v, &["pumps", "secure_to_plain", "kernel_drops"])
    );
}

/// Runs the demo. Returns whether every check passed.
pub fn run(opts: &DemoOptions, bin: &Path) -> Result<bool, String> {
    if !nix_is_root() {
        return Err("the demo creates network namespaces: run it as root (sudo)".into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    let check = |what: &str| -> Result<(), String> {
        if stop.load(Ordering::Relaxed) {
            Err(format!("interrupted during {what}; everything was removed"))
        } else {
            Ok(())
        }
    };
    println!("macsec demo: IEEE 802.1AE MACsec between two userspace forwarders\n");
    println!("Setting up (network namespaces, removed at exit):");
    println!("  host A 10.77.0.1 --veth-- [forwarder F1] ==MACsec veth== [forwarder F2] --veth-- host B 10.77.0.2");
    let spec = LabSpec {
        tag: "demo".into(),
        cipher: opts.cipher,
        encrypt: !opts.integrity_only,
        plain_mtu: 9000,
        secure_mtu: 9032,
        replay_window: 0,
        middle: Middle::Forwarders,
        subnet: 77,
        ..LabSpec::default()
    };
    let mut lab = Lab::start(spec, bin).map_err(|e| e.to_string())?;
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
    let mut ok = true;
    let mut report = |name: &str, pass: bool, detail: String| {
        println!(
            "  [{}] {name}: {detail}",
            if pass { " ok " } else { "FAIL" }
        );
        ok &= pass;
    };
    println!("\nChecks:");
    for (from, label) in [(Side::A, "ping A -> B"), (Side::B, "ping B -> A")] {
        check("ping")?;
        let p = lab
            .ping(from, 56, 5, "0.2", false)
            .map_err(|e| e.to_string())?;
        report(
            label,
            p.received == p.sent,
            format!(
                "{}/{} replies, RTT avg {:.0} µs",
                p.received, p.sent, p.avg_us
            ),
        );
    }
    check("jumbo ping")?;
    let p = lab
        .ping(Side::A, 8972, 3, "0.2", true)
        .map_err(|e| e.to_string())?;
    report(
        "jumbo ping A -> B (9000-byte IP packets, don't fragment)",
        p.received == p.sent,
        format!(
            "{}/{} replies, RTT avg {:.0} µs",
            p.received, p.sent, p.avg_us
        ),
    );
    check("latency")?;
    let idle = lab
        .ping(Side::A, 56, 20, "0.05", false)
        .map_err(|e| e.to_string())?;
    report(
        "latency at idle",
        idle.received == idle.sent,
        format!(
            "RTT min {:.0} µs, avg {:.0} µs over {} pings",
            idle.min_us, idle.avg_us, idle.sent
        ),
    );
    check("throughput")?;
    let bytes = 200u64 << 20;
    match lab.tcp_transfer(bytes, 5201) {
        Ok((got, secs)) => report(
            "TCP transfer A -> B (200 MiB, content checked)",
            got == bytes,
            format!(
                "{:.2} Gbit/s ({got} octets in {secs:.2} s)",
                got as f64 * 8.0 / secs / 1e9
            ),
        ),
        Err(e) => report("TCP transfer A -> B", false, e.to_string()),
    }
    check("counters")?;
    println!("\nCounters (802.1AE names):");
    for (side, name) in [(Side::A, "F1"), (Side::B, "F2")] {
        match lab.stats(side) {
            Ok(v) => print_counters(name, &v),
            Err(e) => report("counters", false, e.to_string()),
        }
    }
    drop(lab);
    println!(
        "\nRemoved the namespaces. {}",
        if ok {
            "All checks passed."
        } else {
            "Some checks FAILED."
        }
    );
    Ok(ok)
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

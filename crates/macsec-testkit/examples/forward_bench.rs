//! End-to-end forwarder benchmark (root; needs iperf3, the one outside program it runs).
//! Run through `benches/forward.sh`.
//!
//! In one run, in the same namespace topology with GRO/GSO/TSO off on the hosts, it
//! measures iperf3 TCP at MTU 9000 and 1500 through (a) two kernel bridges, (b) the
//! forwarder pair with GCM-AES-128, (c) with GCM-AES-256, (d) integrity-only GCM-AES-128,
//! and prints Gbit/s and the ratio of each to (a); the idle ping RTT added per
//! forwarder hop; and each forwarder's CPU time and peak RSS during the TCP run.

use macsec::crypto::CipherSuite;
use macsec_testkit::lab::{Lab, LabSpec, Side};
use macsec_testkit::topology::Middle;
use std::time::Duration;

fn proc_cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn proc_hwm_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// Machine-wide (busy, total) jiffies from the first line of /proc/stat.
fn machine_jiffies() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    // idle + iowait are not busy.
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// Per-packet RTTs in µs of `count` pings (every 50 ms) from `side`'s host to the other
/// host, sorted; lost ones are left out.
fn ping_rtts(lab: &Lab, side: Side, count: u32) -> Vec<f64> {
    let report = lab
        .ping(side, 56, count, Duration::from_millis(50), false)
        .expect("ping");
    let mut v: Vec<f64> = report
        .echoes
        .iter()
        .filter_map(|e| e.rtt)
        .map(|d| d.as_secs_f64() * 1e6)
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

struct Row {
    mtu: u32,
    name: &'static str,
    gbps: f64,
    rtt_us: f64,
    rtt_median_us: f64,
    busy: f64,
    cpu: [f64; 2],
    rss: [f64; 2],
}

fn main() {
    let secs: u32 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let bin = std::env::var("MACSEC_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::env::current_exe()
                .unwrap()
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("macsec")
        });
    let variants: [(&str, Middle, CipherSuite, bool); 4] = [
        (
            "(a) kernel bridges",
            Middle::Bridges,
            CipherSuite::GcmAes128,
            true,
        ),
        (
            "(b) forwarders GCM-AES-128",
            Middle::Forwarders,
            CipherSuite::GcmAes128,
            true,
        ),
        (
            "(c) forwarders GCM-AES-256",
            Middle::Forwarders,
            CipherSuite::GcmAes256,
            true,
        ),
        (
            "(d) forwarders integrity-only",
            Middle::Forwarders,
            CipherSuite::GcmAes128,
            false,
        ),
    ];
    let mut rows = Vec::new();
    for mtu in [9000u32, 1500] {
        for (i, (name, middle, cipher, encrypt)) in variants.iter().enumerate() {
            let spec = LabSpec {
                tag: format!("b{mtu}{i}"),
                cipher: *cipher,
                encrypt: *encrypt,
                plain_mtu: mtu,
                secure_mtu: mtu + 32,
                host_offloads_off: true,
                middle: *middle,
                subnet: 90 + i as u8,
                ..LabSpec::default()
            };
            let mut lab = Lab::start(spec, &bin).expect("lab");
            // Warm up ARP and the rings, then idle RTT.
            let _ = lab.ping(Side::A, 56, 3, Duration::from_millis(100), false);
            let rtts = ping_rtts(&lab, Side::A, 100);
            let rtt_avg = rtts.iter().sum::<f64>() / rtts.len().max(1) as f64;
            let pids: Vec<u32> = [Side::A, Side::B]
                .iter()
                .filter_map(|s| lab.forwarder(*s).map(|f| f.child.id()))
                .collect();
            let cpu0: Vec<f64> = pids.iter().map(|p| proc_cpu_secs(*p)).collect();
            let m0 = machine_jiffies();
            let bps = lab.iperf(secs, 5201).unwrap_or(f64::NAN);
            let m1 = machine_jiffies();
            let busy = (m1.0 - m0.0) / (m1.1 - m0.1).max(1.0);
            let cpu: Vec<f64> = pids
                .iter()
                .zip(&cpu0)
                .map(|(p, c)| proc_cpu_secs(*p) - c)
                .collect();
            let rss: Vec<f64> = pids.iter().map(|p| proc_hwm_mib(*p)).collect();
            let row = Row {
                mtu,
                name,
                gbps: bps / 1e9,
                rtt_us: rtt_avg,
                rtt_median_us: median(&rtts),
                busy,
                cpu: [
                    cpu.first().copied().unwrap_or(0.0),
                    cpu.get(1).copied().unwrap_or(0.0),
                ],
                rss: [
                    rss.first().copied().unwrap_or(0.0),
                    rss.get(1).copied().unwrap_or(0.0),
                ],
            };
            eprintln!(
                "{mtu} {name}: {:.2} Gbit/s, idle RTT {:.0} µs",
                row.gbps, row.rtt_us
            );
            if middle == &Middle::Forwarders {
                if let Ok(s) = lab.stats(Side::B) {
                    eprintln!("   F2 pumps: {}", s["pumps"]);
                }
            }
            rows.push(row);
            drop(lab);
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    println!("\nForwarder benchmark: iperf3 TCP {secs} s, A -> B, host offloads off, one run (ratios are to the kernel bridges of the same MTU in the same run)\n");
    println!("| MTU | path | Gbit/s | ratio to (a) | idle RTT µs mean / median | added RTT per hop µs mean / median | machine busy | CPU s F1 / F2 | peak RSS MiB F1 / F2 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let base = rows
            .iter()
            .find(|b| b.mtu == r.mtu && b.name.starts_with("(a)"))
            .unwrap();
        let fwd = !r.name.starts_with("(a)");
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.0} / {:.0} | {} | {:.0} % | {} | {} |",
            r.mtu,
            r.name,
            r.gbps,
            r.gbps / base.gbps,
            r.rtt_us,
            r.rtt_median_us,
            if fwd {
                format!(
                    "{:.0} / {:.0}",
                    (r.rtt_us - base.rtt_us) / 2.0,
                    (r.rtt_median_us - base.rtt_median_us) / 2.0
                )
            } else {
                "-".into()
            },
            r.busy * 100.0,
            if fwd {
                format!("{:.1} / {:.1}", r.cpu[0], r.cpu[1])
            } else {
                "-".into()
            },
            if fwd {
                format!("{:.1} / {:.1}", r.rss[0], r.rss[1])
            } else {
                "-".into()
            },
        );
    }
    println!("\nTargets on a 2-core machine: ratio >= 0.8 at MTU 9000, >= 0.5 at MTU 1500; added RTT <= 50 µs per hop; RSS <= 64 MiB.");
}

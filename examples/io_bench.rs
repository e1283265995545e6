//! Frames per second of a plain copy loop (no MACsec) between two veth pairs, through the
//! `AF_PACKET` rings versus a naive one-`recv`-one-`send`-per-frame loop.
//!
//! ```text
//! generator --g0==f0--> [copy loop: rx f0 -> tx f1] --f1==s0--> sink
//! ```
//!
//! Everything runs in a private network namespace created and deleted by the program.
//! Needs root and iproute2. Run with:
//!
//! ```text
//! cargo run --release --example io_bench [SECONDS_PER_RUN]
//! ```
//!
//! The generator, the copy loop and the sink are three busy threads; on a machine with
//! fewer than three free cores they compete, so read the two modes as a ratio measured
//! under the same conditions, not as absolute capacity. veth delivery work is charged to
//! the sending thread.

use std::error::Error;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use macsec::io::afpacket::{AfPacketRx, AfPacketTx, RxConfig, TxConfig};
use macsec::io::control::ControlSocket;
use macsec::io::iface::Interface;
use macsec::io::{netns, RxPort, TxPort, TX_HEADROOM};

const ETHERTYPE: u16 = 0x88B5;

struct Ns(String);

impl Ns {
    fn ip(&self, args: &[&str]) -> Result<(), Box<dyn Error>> {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.0)
            .args(args)
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(())
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// RX ring in, TX ring out.
    Rings,
    /// RX ring in, one `send` per frame out (isolates the TX ring's contribution).
    RxRing,
    /// One `recv` and one `send` per frame.
    Naive,
}

fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

fn lookup(n: &str) -> Interface {
    Interface::lookup(n).expect("interface")
}

struct Result1 {
    forwarded_per_s: f64,
    generated_per_s: f64,
    /// Frames the copy loop handled per second of its own CPU time.
    per_cpu_s: f64,
}

/// CPU time (user + system) of the calling thread, from /proc (10 ms resolution).
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of stat are utime and stime; after ')' field 3 is index 0.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Per-frame work of the copy loop, counted by the loop itself.
struct LoopCost {
    frames: u64,
    cpu: Duration,
}

fn run(ns: &Ns, mode: Mode, len: usize, secs: f64) -> Result<Result1, Box<dyn Error>> {
    let (mut gen_tx, mut sink_rx) = netns::run_in(&ns.0, || {
        (
            AfPacketTx::open(&lookup("g0"), &TxConfig::default()).expect("gen tx"),
            AfPacketRx::open(&lookup("s0"), &RxConfig::default()).expect("sink rx"),
        )
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let sunk = Arc::new(AtomicU64::new(0));
    let generated = Arc::new(AtomicU64::new(0));

    let sink = {
        let (stop, sunk) = (stop.clone(), sunk.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut n = 0u64;
                let _ = sink_rx.recv_batch(256, Duration::from_millis(10), &mut |f| {
                    n += u64::from(f.data.len() == len);
                });
                sunk.fetch_add(n, Ordering::Relaxed);
            }
        })
    };

    let fwd = {
        let stop = stop.clone();
        match mode {
            Mode::Rings => {
                let (mut rx, mut tx) = netns::run_in(&ns.0, || {
                    (
                        AfPacketRx::open(&lookup("f0"), &RxConfig::default()).expect("fwd rx"),
                        AfPacketTx::open(&lookup("f1"), &TxConfig::default()).expect("fwd tx"),
                    )
                })?;
                std::thread::spawn(move || {
                    let cpu0 = thread_cpu();
                    let mut frames = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let _ = rx.recv_batch(64, Duration::from_millis(10), &mut |f| {
                            if let Ok(true) = tx.send_with(&mut |slot| {
                                let end = TX_HEADROOM + f.data.len();
                                slot[TX_HEADROOM..end].copy_from_slice(f.data);
                                Some(TX_HEADROOM..end)
                            }) {
                                frames += 1;
                            }
                        });
                        let _ = tx.flush();
                    }
                    LoopCost {
                        frames,
                        cpu: thread_cpu() - cpu0,
                    }
                })
            }
            Mode::RxRing => {
                let (mut rx, tx) = netns::run_in(&ns.0, || {
                    (
                        AfPacketRx::open(&lookup("f0"), &RxConfig::default()).expect("fwd rx"),
                        ControlSocket::open(&lookup("f1"), ETHERTYPE).expect("fwd tx"),
                    )
                })?;
                std::thread::spawn(move || {
                    let cpu0 = thread_cpu();
                    let mut frames = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let _ = rx.recv_batch(64, Duration::from_millis(10), &mut |f| {
                            if tx.send(f.data).is_ok() {
                                frames += 1;
                            }
                        });
                    }
                    LoopCost {
                        frames,
                        cpu: thread_cpu() - cpu0,
                    }
                })
            }
            Mode::Naive => {
                let (rx, tx) = netns::run_in(&ns.0, || {
                    (
                        ControlSocket::open(&lookup("f0"), ETHERTYPE).expect("fwd rx"),
                        ControlSocket::open(&lookup("f1"), ETHERTYPE).expect("fwd tx"),
                    )
                })?;
                std::thread::spawn(move || {
                    let cpu0 = thread_cpu();
                    let mut frames = 0u64;
                    let mut buf = vec![0u8; 16384];
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(Some(f)) = rx.recv(&mut buf, Duration::from_millis(10)) {
                            if tx.send(&buf[..f.len]).is_ok() {
                                frames += 1;
                            }
                        }
                    }
                    LoopCost {
                        frames,
                        cpu: thread_cpu() - cpu0,
                    }
                })
            }
        }
    };

    let gen = {
        let (stop, generated) = (stop.clone(), generated.clone());
        let f = frame(len);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut n = 0u64;
                for _ in 0..128 {
                    match gen_tx.send_with(&mut |slot| {
                        slot[..f.len()].copy_from_slice(&f);
                        Some(0..f.len())
                    }) {
                        Ok(true) => n += 1,
                        _ => break,
                    }
                }
                let _ = gen_tx.flush();
                generated.fetch_add(n, Ordering::Relaxed);
            }
        })
    };

    std::thread::sleep(Duration::from_millis(300)); // warm up
    let (s0, g0, t0) = (
        sunk.load(Ordering::Relaxed),
        generated.load(Ordering::Relaxed),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (s1, g1, dt) = (
        sunk.load(Ordering::Relaxed),
        generated.load(Ordering::Relaxed),
        t0.elapsed(),
    );
    stop.store(true, Ordering::Relaxed);
    for h in [gen, sink] {
        h.join().map_err(|_| "thread panicked")?;
    }
    let cost = fwd.join().map_err(|_| "thread panicked")?;
    let dt = dt.as_secs_f64();
    Ok(Result1 {
        forwarded_per_s: (s1 - s0) as f64 / dt,
        generated_per_s: (g1 - g0) as f64 / dt,
        per_cpu_s: cost.frames as f64 / cost.cpu.as_secs_f64().max(0.01),
    })
}

/// Idle latency of the RX ring: one frame at a time from g0 to a ring on f0. With
/// TPACKET_V3 a lone frame waits for the block retire timeout.
fn idle_latency(ns: &Ns) -> Result<Vec<Duration>, Box<dyn Error>> {
    let (mut tx, mut rx) = netns::run_in(&ns.0, || {
        (
            AfPacketTx::open(&lookup("g0"), &TxConfig::default()).expect("tx"),
            AfPacketRx::open(&lookup("f0"), &RxConfig::default()).expect("rx"),
        )
    })?;
    let f = frame(100);
    let mut out = Vec::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(7));
        let t0 = Instant::now();
        tx.send_with(&mut |slot| {
            slot[..f.len()].copy_from_slice(&f);
            Some(0..f.len())
        })?;
        tx.flush()?;
        let mut got = false;
        while !got && t0.elapsed() < Duration::from_millis(200) {
            rx.recv_batch(64, Duration::from_millis(50), &mut |g| {
                got |= g.data.len() == 100
            })?;
        }
        if got {
            out.push(t0.elapsed());
        }
    }
    out.sort();
    Ok(out)
}

fn main() -> Result<(), Box<dyn Error>> {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let ns = Ns(format!("macsec-io-bench-{}", std::process::id()));
    let out = Command::new("ip").args(["netns", "add", &ns.0]).output()?;
    if !out.status.success() {
        return Err(format!(
            "ip netns add (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    ns.ip(&["link", "add", "g0", "type", "veth", "peer", "name", "f0"])?;
    ns.ip(&["link", "add", "f1", "type", "veth", "peer", "name", "s0"])?;
    for i in ["g0", "f0", "f1", "s0"] {
        ns.ip(&["link", "set", "dev", i, "mtu", "9000", "up"])?;
    }
    let lat = idle_latency(&ns)?;
    if !lat.is_empty() {
        println!(
            "idle RX latency over {} frames: min {:?}, median {:?}, max {:?}",
            lat.len(),
            lat[0],
            lat[lat.len() / 2],
            lat[lat.len() - 1]
        );
    }
    println!(
        "{:>6}  {:>7}  {:>12}  {:>12}  {:>8}  {:>14}",
        "frame", "mode", "forwarded/s", "generated/s", "Gbit/s", "frames/cpu-s"
    );
    for len in [60usize, 1514, 9014] {
        let mut rates = Vec::new();
        for mode in [Mode::Rings, Mode::RxRing, Mode::Naive] {
            let r = run(&ns, mode, len, secs)?;
            println!(
                "{:>6}  {:>7}  {:>12.0}  {:>12.0}  {:>8.2}  {:>14.0}",
                len,
                match mode {
                    Mode::Rings => "rings",
                    Mode::RxRing => "rx-ring",
                    Mode::Naive => "naive",
                },
                r.forwarded_per_s,
                r.generated_per_s,
                r.forwarded_per_s * len as f64 * 8.0 / 1e9,
                r.per_cpu_s
            );
            rates.push((r.forwarded_per_s, r.per_cpu_s));
        }
        println!(
            "{:>6}  rings/naive: {:.2}x forwarded/s, {:.2}x frames per CPU-second",
            len,
            rates[0].0 / rates[2].0.max(1.0),
            rates[0].1 / rates[2].1.max(1.0)
        );
    }
    Ok(())
}

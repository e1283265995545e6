//! Packet I/O measurements on veth pairs: the `TPACKET_V2` receive ring (the default)
//! against `TPACKET_V3`, the rings against a naive one-`recv`-one-`send`-per-frame loop,
//! and what a receive ring costs in memory.
//!
//! ```text
//! generator --g0==f0--> [copy loop: rx f0 -> tx f1] --f1==s0--> sink
//! ```
//!
//! 1. Idle latency: one frame at a time from g0 to a ring on f0 whose reader is blocked
//!    in `poll()` (100 ms timeout) in another thread; time from handing the frame to the
//!    kernel until `recv_batch` returned it. With V3 a lone frame waits for the block
//!    retire timeout.
//! 2. Saturation: the copy loop above with each ring kind (and the naive loop), frames
//!    of 60, 1514 and 9014 octets; forwarded frames per second, CPU time of the copy loop
//!    per frame, `poll()` calls per frame and frames the loop's RX ring dropped.
//! 3. Paced: 1514-octet frames at a fixed rate into a ring on f0 whose reader only counts
//!    them: CPU time of the reader per frame, where V2 wakes up far more often than V3.
//! 4. Memory: a fresh process opens one receive ring, receives 1514-octet frames,
//!    9014-octet frames or a TCP bulk transfer with GSO super-frames (TSO on the sending
//!    veth), and reports its `VmRSS` (from `/proc/self/status`) before opening, after
//!    opening and after the traffic, and how much `MemFree` dropped when it opened.
//!
//! Everything runs in private network namespaces created and deleted by the program
//! (in-process, with `macsec_testkit::netlab`; no outside program). Needs root. Run with:
//!
//! ```text
//! cargo run --release --example io_bench [SECONDS_PER_RUN]
//! ```
//!
//! The generator, the copy loop and the sink are three busy threads; on a machine with
//! fewer than three free cores they compete, so read the modes as ratios measured under
//! the same conditions, not as absolute capacity. veth delivery work is charged to the
//! sending thread.

use std::error::Error;
use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};

use macsec_testkit::netlab::link::{self, Veth};
use macsec_testkit::netlab::{ip, netns::Netns};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use macsec_forward::io::afpacket::{AfPacketRx, AfPacketTx, RxConfig, RxRing, TxConfig};
use macsec_forward::io::control::ControlSocket;
use macsec_forward::io::iface::Interface;
use macsec_forward::io::{netns, RxPort, TxPort, TX_HEADROOM};

const ETHERTYPE: u16 = 0x88B5;

type Res<T> = Result<T, Box<dyn Error>>;

/// A private namespace, deleted on drop.
struct Ns(Netns);

impl Ns {
    fn new(tag: &str) -> Res<Ns> {
        Netns::unique("macsec-io-bench-", tag)
            .map(Ns)
            .map_err(|e| format!("{e} (needs root)").into())
    }

    fn name(&self) -> &str {
        self.0.name()
    }

    /// A veth pair `a` (here) / `b` (in `peer`), both ends with `mtu`, up and running.
    fn veth(&self, a: &str, peer: &Ns, b: &str, mtu: u32) -> Res<()> {
        let opts = Veth {
            mtu: Some(mtu),
            ..Veth::default()
        };
        link::add_veth(self.name(), a, peer.name(), b, &opts)?;
        link::set_up(self.name(), a)?;
        link::set_up(peer.name(), b)?;
        link::wait_running(self.name(), a, Duration::from_secs(5))?;
        link::wait_running(peer.name(), b, Duration::from_secs(5))?;
        Ok(())
    }
}

fn rx_cfg(ring: RxRing) -> RxConfig {
    RxConfig {
        ring,
        ..RxConfig::default()
    }
}

fn ring_name(ring: RxRing) -> &'static str {
    match ring {
        RxRing::V2 { .. } => "v2",
        RxRing::V3 { .. } => "v3",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// RX ring in, TX ring out.
    Rings(RxRing),
    /// RX ring in, one `send` per frame out (isolates the TX ring's contribution).
    RxRing(RxRing),
    /// One `recv` and one `send` per frame.
    Naive,
}

impl Mode {
    fn name(&self) -> String {
        match self {
            Mode::Rings(r) => format!("rings-{}", ring_name(*r)),
            Mode::RxRing(r) => format!("rx-ring-{}", ring_name(*r)),
            Mode::Naive => "naive".into(),
        }
    }
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

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Per-frame work of the loop under test, counted by the loop itself.
#[derive(Default)]
struct LoopCost {
    frames: u64,
    /// `recv_batch` calls that returned frames.
    batches: u64,
    cpu: Duration,
    polls: u64,
    rx_drops: u64,
    rx_packets: u64,
}

impl LoopCost {
    fn of_rx(rx: &AfPacketRx, frames: u64, batches: u64, cpu0: Duration) -> LoopCost {
        let k = rx.kernel_stats().unwrap_or_default();
        LoopCost {
            frames,
            batches,
            cpu: thread_cpu() - cpu0,
            polls: rx.stats().polls,
            rx_drops: u64::from(k.drops),
            rx_packets: u64::from(k.packets),
        }
    }

    fn us_per_frame(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.frames.max(1) as f64
    }

    fn frames_per_batch(&self) -> f64 {
        self.frames as f64 / self.batches.max(1) as f64
    }

    fn polls_per_frame(&self) -> f64 {
        self.polls as f64 / self.frames.max(1) as f64
    }

    fn drop_pct(&self) -> f64 {
        100.0 * self.rx_drops as f64 / self.rx_packets.max(1) as f64
    }
}

struct Throughput {
    forwarded_per_s: f64,
    generated_per_s: f64,
    cost: LoopCost,
}

/// Opens a fresh RX ring and discards what it already holds (counters included).
fn fresh_rx(ns: &Ns, ifname: &'static str, ring: RxRing) -> Res<AfPacketRx> {
    let mut rx = netns::run_in(&ns.0, || AfPacketRx::open(&lookup(ifname), &rx_cfg(ring)))??;
    while rx.recv_batch(1024, Duration::ZERO, &mut |_| {})? > 0 {}
    rx.kernel_stats()?;
    Ok(rx)
}

fn run(ns: &Ns, mode: Mode, len: usize, secs: f64) -> Res<Throughput> {
    let mut gen_tx = netns::run_in(&ns.0, || {
        AfPacketTx::open(&lookup("g0"), &TxConfig::default())
    })??;
    // The sink uses the denser V3 ring so that it is not what limits the rate.
    let mut sink_rx = fresh_rx(ns, "s0", RxRing::v3())?;
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
            Mode::Rings(ring) => {
                let mut rx = fresh_rx(ns, "f0", ring)?;
                let mut tx = netns::run_in(&ns.0, || {
                    AfPacketTx::open(&lookup("f1"), &TxConfig::default())
                })??;
                std::thread::spawn(move || {
                    let cpu0 = thread_cpu();
                    let (mut frames, mut batches) = (0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) {
                        let n = rx.recv_batch(64, Duration::from_millis(10), &mut |f| {
                            if let Ok(true) = tx.send_with(&mut |slot| {
                                let end = TX_HEADROOM + f.data.len();
                                slot[TX_HEADROOM..end].copy_from_slice(f.data);
                                Some(TX_HEADROOM..end)
                            }) {
                                frames += 1;
                            }
                        });
                        batches += u64::from(matches!(n, Ok(1..)));
                        let _ = tx.flush();
                    }
                    LoopCost::of_rx(&rx, frames, batches, cpu0)
                })
            }
            Mode::RxRing(ring) => {
                let mut rx = fresh_rx(ns, "f0", ring)?;
                let tx = netns::run_in(&ns.0, || ControlSocket::open(&lookup("f1"), ETHERTYPE))??;
                std::thread::spawn(move || {
                    let cpu0 = thread_cpu();
                    let (mut frames, mut batches) = (0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) {
                        let n = rx.recv_batch(64, Duration::from_millis(10), &mut |f| {
                            if tx.send(f.data).is_ok() {
                                frames += 1;
                            }
                        });
                        batches += u64::from(matches!(n, Ok(1..)));
                    }
                    LoopCost::of_rx(&rx, frames, batches, cpu0)
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
                        batches: frames,
                        cpu: thread_cpu() - cpu0,
                        ..LoopCost::default()
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
    Ok(Throughput {
        forwarded_per_s: (s1 - s0) as f64 / dt,
        generated_per_s: (g1 - g0) as f64 / dt,
        cost,
    })
}

/// `rate` frames per second of `len` octets, sent one at a time from g0 with one `send`
/// each (spinning between frames) into a ring on f0 whose reader only counts them.
/// Returns frames sent per second, frames received per second and the reader's cost.
fn paced(ns: &Ns, ring: RxRing, len: usize, rate: f64, secs: f64) -> Res<(f64, f64, LoopCost)> {
    let tx = netns::run_in(&ns.0, || ControlSocket::open(&lookup("g0"), ETHERTYPE))??;
    let mut rx = fresh_rx(ns, "f0", ring)?;
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let cpu0 = thread_cpu();
            let (mut frames, mut batches) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let n = rx.recv_batch(64, Duration::from_millis(10), &mut |f| {
                    frames += u64::from(f.data.len() == len);
                });
                batches += u64::from(matches!(n, Ok(1..)));
            }
            LoopCost::of_rx(&rx, frames, batches, cpu0)
        })
    };
    let f = frame(len);
    let period = Duration::from_secs_f64(1.0 / rate);
    let t0 = Instant::now();
    let mut next = t0;
    let mut sent = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        next += period;
        let now = Instant::now();
        if now > next + Duration::from_millis(1) {
            next = now; // fell behind: do not catch up in a burst
        }
        // No spin_loop() hint: in a VM, PAUSE loops can make the hypervisor deschedule
        // the vCPU, which wrecks the pacing.
        while Instant::now() < next {}
        if tx.send(&f).is_ok() {
            sent += 1;
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let cost = reader.join().map_err(|_| "thread panicked")?;
    Ok((sent as f64 / dt, cost.frames as f64 / dt, cost))
}

/// Idle latency of a ring on f0: one frame at a time from g0, the reader blocked in
/// `poll()` in another thread. Sorted.
fn idle_latency(ns: &Ns, ring: RxRing, samples: usize) -> Res<Vec<Duration>> {
    let mut tx = netns::run_in(&ns.0, || {
        AfPacketTx::open(&lookup("g0"), &TxConfig::default())
    })??;
    let mut rx = fresh_rx(ns, "f0", ring)?;
    let (to_main, from_rx) = std::sync::mpsc::channel::<Instant>();
    let reader = std::thread::spawn(move || {
        let mut got = 0;
        while got < samples {
            let mut hit = false;
            match rx.recv_batch(64, Duration::from_millis(100), &mut |g| {
                hit |= g.data.len() == 100
            }) {
                Ok(_) if hit => {
                    got += 1;
                    if to_main.send(Instant::now()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let f = frame(100);
    let mut out = Vec::with_capacity(samples);
    let mut x = 0x9E37_79B9u32;
    for _ in 0..samples {
        // 1 to 4 ms apart, not in step with any timer.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        std::thread::sleep(Duration::from_micros(1000 + u64::from(x % 3000)));
        let t0 = Instant::now();
        tx.send_with(&mut |slot| {
            slot[..f.len()].copy_from_slice(&f);
            Some(0..f.len())
        })?;
        tx.flush()?;
        let t1 = from_rx.recv_timeout(Duration::from_secs(1))?;
        out.push(t1.saturating_duration_since(t0));
    }
    reader.join().map_err(|_| "thread panicked")?;
    out.sort();
    Ok(out)
}

// ---- memory ---------------------------------------------------------------------------

/// A `kB` field of a /proc file such as /proc/self/status or /proc/meminfo.
fn proc_kb(file: &str, field: &str) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .and_then(|r| r.strip_prefix(':'))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_ring(name: &str) -> Option<RxRing> {
    Some(match name {
        "v2" => RxRing::v2(),
        "v3" => RxRing::v3(),
        // A V3 ring whose blocks are not a power-of-two number of pages, to show what
        // the kernel really allocates for such a block.
        "v3-68k" => RxRing::V3 {
            block_size: 68 * 1024,
            block_count: 128,
            block_timeout: Duration::from_millis(1),
        },
        _ => return None,
    })
}

/// The child process of the memory measurement: opens one ring on `ifname` in `ns`,
/// receives in a thread, and answers each line on stdin with a report line.
fn rss_child(ring: &str, ns: &str, ifname: &str) -> Res<()> {
    let ring = rss_ring(ring).ok_or("unknown ring")?;
    let rss0 = proc_kb("/proc/self/status", "VmRSS");
    let free0 = proc_kb("/proc/meminfo", "MemFree");
    let name = ifname.to_owned();
    let mut rx = netns::run_in(ns, move || AfPacketRx::open(&lookup(&name), &rx_cfg(ring)))??;
    let free1 = proc_kb("/proc/meminfo", "MemFree");
    let ring_kb = rx.geometry().ring_size() / 1024;
    let frames = Arc::new(AtomicU64::new(0));
    let longest = Arc::new(AtomicU64::new(0));
    let truncated = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (frames, longest, truncated, stop) = (
            frames.clone(),
            longest.clone(),
            truncated.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = rx.recv_batch(64, Duration::from_millis(10), &mut |f| {
                    frames.fetch_add(1, Ordering::Relaxed);
                    longest.fetch_max(f.data.len() as u64, Ordering::Relaxed);
                    truncated.fetch_add(u64::from(f.truncated), Ordering::Relaxed);
                });
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let rss1 = proc_kb("/proc/self/status", "VmRSS");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{rss0} {rss1} {} {} {ring_kb}",
        proc_kb("/proc/self/status", "RssFile"),
        free0.saturating_sub(free1)
    )?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        line?;
        writeln!(
            out,
            "{} {} {} {} {}",
            proc_kb("/proc/self/status", "VmRSS"),
            proc_kb("/proc/self/status", "RssFile"),
            frames.load(Ordering::Relaxed),
            longest.load(Ordering::Relaxed),
            truncated.load(Ordering::Relaxed),
        )?;
        out.flush()?;
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().map_err(|_| "thread panicked")?;
    Ok(())
}

fn numbers(line: &str) -> Vec<u64> {
    line.split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect()
}

/// Runs one child with `ring` on r0 in `srv`, sends `traffic` from c0 in `cli`, and
/// prints one table row.
fn rss_row(cli: &Ns, srv: &Ns, ring: &str, traffic: &str) -> Res<()> {
    // Jumbo frames need MTU 9000; TCP makes the largest GSO frames (64 KiB) with 1500.
    let mtu = if traffic == "tcp-gso" { 1500 } else { 9000 };
    link::set_mtu(cli.name(), "c0", mtu)?;
    link::set_mtu(srv.name(), "r0", mtu)?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--rss-child", ring, srv.name(), "r0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut to_child = child.stdin.take().ok_or("child stdin")?;
    let mut from_child = std::io::BufReader::new(child.stdout.take().ok_or("child stdout")?);
    let mut line = String::new();
    from_child.read_line(&mut line)?;
    let opened = numbers(&line);
    if opened.len() < 5 {
        return Err(format!("child: {line:?}").into());
    }
    match traffic {
        "1514" | "9014" => {
            let len: usize = traffic.parse()?;
            let mut tx = netns::run_in(&cli.0, || {
                AfPacketTx::open(&lookup("c0"), &TxConfig::default())
            })??;
            let f = frame(len);
            // 2000 frames in bursts of 32: enough to cycle every slot many times.
            for _ in 0..2000 / 32 {
                for _ in 0..32 {
                    tx.send_with(&mut |slot| {
                        slot[..f.len()].copy_from_slice(&f);
                        Some(0..f.len())
                    })?;
                }
                tx.flush()?;
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        _ => {
            let listener = netns::run_in(&srv.0, || TcpListener::bind("192.0.2.2:0"))??;
            let addr = SocketAddr::from(([192, 0, 2, 2], listener.local_addr()?.port()));
            let server = std::thread::spawn(move || -> std::io::Result<usize> {
                use std::io::Read;
                let (mut c, _) = listener.accept()?;
                let mut buf = vec![0u8; 1 << 16];
                let mut n = 0;
                loop {
                    match c.read(&mut buf)? {
                        0 => return Ok(n),
                        k => n += k,
                    }
                }
            });
            let mut s = netns::run_in(&cli.0, move || TcpStream::connect(addr))??;
            let chunk = vec![0x5Au8; 1 << 16];
            for _ in 0..1024 {
                s.write_all(&chunk)?;
            }
            drop(s);
            server.join().map_err(|_| "thread panicked")??;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    writeln!(to_child, "report")?;
    line.clear();
    from_child.read_line(&mut line)?;
    let after = numbers(&line);
    drop(to_child);
    child.wait()?;
    if after.len() < 5 {
        return Err(format!("child: {line:?}").into());
    }
    let mib = |kb: u64| kb as f64 / 1024.0;
    println!(
        "{:>7}  {:>8}  {:>8.1}  {:>8.1}  {:>9.1}  {:>8.1}  {:>12.1}  {:>10.1}  {:>8}  {:>7}  {:>5}",
        ring,
        traffic,
        mib(opened[4]),
        mib(opened[0]),
        mib(opened[1]),
        mib(after[0]),
        mib(after[1]),
        mib(opened[3]),
        after[2],
        after[3],
        after[4],
    );
    Ok(())
}

fn memory_table() -> Res<()> {
    let cli = Ns::new("cli")?;
    let srv = Ns::new("srv")?;
    cli.veth("c0", &srv, "r0", 1500)?;
    ip::add_addr(cli.name(), "c0", std::net::Ipv4Addr::new(192, 0, 2, 1), 24)?;
    ip::add_addr(srv.name(), "r0", std::net::Ipv4Addr::new(192, 0, 2, 2), 24)?;
    println!();
    println!(
        "memory of a process with one RX ring (MiB; \"MemFree drop\" is system-wide, \
         so approximate)"
    );
    println!(
        "{:>7}  {:>8}  {:>8}  {:>8}  {:>9}  {:>8}  {:>12}  {:>10}  {:>8}  {:>7}  {:>5}",
        "ring",
        "traffic",
        "ring",
        "RSS pre",
        "RSS open",
        "RSS post",
        "RssFile post",
        "MemFree-",
        "frames",
        "longest",
        "trunc"
    );
    for ring in ["v2", "v3", "v3-68k"] {
        for traffic in ["1514", "9014", "tcp-gso"] {
            if ring == "v3-68k" && traffic != "1514" {
                continue;
            }
            rss_row(&cli, &srv, ring, traffic)?;
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--rss-child") && args.len() == 5 {
        return rss_child(&args[2], &args[3], &args[4]);
    }
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let loadavg = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{} CPUs, load average {} (other work on the machine skews every number below)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let ns = Ns::new("fwd")?;
    ns.veth("g0", &ns, "f0", 9000)?;
    ns.veth("f1", &ns, "s0", 9000)?;

    println!("idle RX latency: one 100-octet frame at a time, reader blocked in poll()");
    println!(
        "{:>5}  {:>7}  {:>10}  {:>10}  {:>10}  {:>10}",
        "ring", "samples", "min", "median", "p99", "max"
    );
    for ring in [RxRing::v2(), RxRing::v3()] {
        let lat = idle_latency(&ns, ring, 300)?;
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
        println!(
            "{:>5}  {:>7}  {:>10.1?}  {:>10.1?}  {:>10.1?}  {:>10.1?}",
            ring_name(ring),
            lat.len(),
            q(0.0),
            q(0.5),
            q(0.99),
            q(1.0)
        );
    }

    println!();
    println!("saturation: copy loop f0 -> f1, generator and sink busy");
    println!(
        "{:>6}  {:>10}  {:>12}  {:>12}  {:>7}  {:>9}  {:>12}  {:>11}  {:>8}",
        "frame",
        "mode",
        "forwarded/s",
        "generated/s",
        "Gbit/s",
        "us/frame",
        "frames/batch",
        "polls/frame",
        "drops%"
    );
    for len in [60usize, 1514, 9014] {
        let mut rates = Vec::new();
        for mode in [
            Mode::Rings(RxRing::v2()),
            Mode::Rings(RxRing::v3()),
            Mode::RxRing(RxRing::v2()),
            Mode::RxRing(RxRing::v3()),
            Mode::Naive,
        ] {
            let r = run(&ns, mode, len, secs)?;
            let ring_cols = if mode == Mode::Naive {
                format!("{:>12}  {:>11}  {:>8}", "-", "-", "-")
            } else {
                format!(
                    "{:>12.1}  {:>11.3}  {:>8.2}",
                    r.cost.frames_per_batch(),
                    r.cost.polls_per_frame(),
                    r.cost.drop_pct()
                )
            };
            println!(
                "{:>6}  {:>10}  {:>12.0}  {:>12.0}  {:>7.2}  {:>9.3}  {ring_cols}",
                len,
                mode.name(),
                r.forwarded_per_s,
                r.generated_per_s,
                r.forwarded_per_s * len as f64 * 8.0 / 1e9,
                r.cost.us_per_frame(),
            );
            rates.push((r.forwarded_per_s, r.cost.us_per_frame()));
        }
        println!(
            "{:>6}  rings v2/v3: {:.2}x forwarded/s, {:.2}x CPU per frame; \
             rings-v2/naive: {:.2}x forwarded/s",
            len,
            rates[0].0 / rates[1].0.max(1.0),
            rates[0].1 / rates[1].1.max(1e-9),
            rates[0].0 / rates[4].0.max(1.0),
        );
    }

    println!();
    println!(
        "paced: 1514-octet frames at a fixed rate (one send() each, the sender spins \
         between them), the reader only counts them"
    );
    println!(
        "{:>6}  {:>9}  {:>10}  {:>10}  {:>9}  {:>12}  {:>11}  {:>8}",
        "ring",
        "target/s",
        "sent/s",
        "recvd/s",
        "us/frame",
        "frames/batch",
        "polls/frame",
        "drops%"
    );
    let v2_512 = RxRing::V2 {
        frame_size: macsec_forward::io::afpacket::RX_V2_FRAME_SIZE,
        frame_count: 512,
    };
    for rate in [10_000.0, 100_000.0] {
        for (name, ring) in [
            ("v2", RxRing::v2()),
            ("v2-512", v2_512),
            ("v3", RxRing::v3()),
        ] {
            let (sent, received, cost) = paced(&ns, ring, 1514, rate, secs)?;
            println!(
                "{:>6}  {:>9.0}  {:>10.0}  {:>10.0}  {:>9.3}  {:>12.1}  {:>11.3}  {:>8.2}",
                name,
                rate,
                sent,
                received,
                cost.us_per_frame(),
                cost.frames_per_batch(),
                cost.polls_per_frame(),
                cost.drop_pct()
            );
        }
    }
    drop(ns);

    memory_table()?;
    println!(
        "\nload average at the end: {}",
        loadavg()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

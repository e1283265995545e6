//! End-to-end forwarder benchmark (root; needs iperf3). Run through `benches/forward.sh`.
//!
//! In one run, in the same namespace topology (A — F1 == F2 — B, GRO/GSO/TSO off on the
//! hosts), it measures iperf3 TCP A -> B at MTU 9000 and 1500 through:
//!
//! * two kernel bridges (the baseline every ratio is taken against);
//! * the forwarder pair with GCM-AES-128 in each thread mode (`[forward] threads = "two"`
//!   and `"one"`), GCM-AES-256 and integrity-only (in the built-in default mode);
//! * with `MACSEC_BIN_BASE` set, the pair built from another commit (say, main before a
//!   change), GCM-AES-128 in its default mode: before and after in the same run;
//! * the peers users would run instead, when installed (skipped with a note otherwise):
//!   wireguard-go (Debian `wireguard-go` + `wireguard-tools`), routed between two
//!   subnets, and OpenVPN 2.6 in tap mode with AES-128-GCM, bridged at both ends.
//!
//! Every variant runs `BENCH_ROUNDS` times (default 3), alternating (round 1 of every
//! variant, then round 2, ...), and the best run counts. For each it prints Gbit/s, the
//! ratio to the bridges and to our pair, the whole machine's CPU-seconds per GB moved
//! (busy time of every core during the transfer over the octets iperf3 received), the
//! idle ping RTT and what a hop adds to it, the forwarders' own CPU time and peak RSS.

use macsec::crypto::CipherSuite;
use macsec_testkit::lab::{Lab, LabSpec, Side};
use macsec_testkit::netlab::{ip, link, netns, ping, proc, sysctl};
use macsec_testkit::topology::{ifname, Middle, Topology, TopologySpec};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let f = d.join(program);
            f.is_file()
        })
    })
}

/// What sits between the hosts.
#[derive(Clone)]
enum Kind {
    Bridges,
    Pair {
        bin: PathBuf,
        cipher: CipherSuite,
        encrypt: bool,
        threads: Option<&'static str>,
        /// protect = false, validate = "disabled": the packet I/O without the cipher.
        unprotected: bool,
    },
    WireGuard,
    OpenVpn,
}

#[derive(Clone)]
struct Variant {
    name: String,
    kind: Kind,
    /// Our pair that peers are compared with.
    reference: bool,
}

/// One measurement.
#[derive(Clone, Default)]
struct Sample {
    gbps: f64,
    /// Busy CPU-seconds of the whole machine during the transfer.
    busy_s: f64,
    secs: f64,
    cpu: [f64; 2],
    rss: [f64; 2],
    rtts: Vec<f64>,
    note: String,
}

impl Sample {
    fn cpu_s_per_gb(&self) -> f64 {
        let gb = self.gbps * self.secs / 8.0;
        if gb > 0.0 {
            self.busy_s / gb
        } else {
            f64::NAN
        }
    }
    fn rtt_mean(&self) -> f64 {
        self.rtts.iter().sum::<f64>() / self.rtts.len().max(1) as f64
    }
}

/// A process started for a peer, stopped on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = proc::terminate(&mut self.0, Duration::from_secs(2));
    }
}

/// What a measured path needs kept alive, and where to send.
struct Path2 {
    ns_a: String,
    ns_b: String,
    dst: Ipv4Addr,
    bind_b: String,
    pids: Vec<u32>,
    _lab: Option<Lab>,
    _topo: Option<Topology>,
    _daemons: Vec<Daemon>,
    _dir: Option<TempDir>,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        // BENCH_KEEP=1 keeps the peers' logs for a look.
        if std::env::var_os("BENCH_KEEP").is_some() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Res<T> = Result<T, String>;

fn e<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |x| format!("{what}: {x}")
}

fn topology(tag: &str, mtu: u32, secure_mtu: u32, subnet: u8) -> Res<Topology> {
    Topology::create(TopologySpec {
        tag: tag.into(),
        plain_mtu: mtu,
        secure_mtu,
        host_offloads_off: true,
        middle: Middle::Forwarders,
        subnet,
        links: 1,
        impaired: Vec::new(),
    })
    .map_err(e("topology"))
}

/// Waits (up to 10 s) until the interface a peer creates exists.
fn wait_link(ns: &str, name: &str, who: &str) -> Res<()> {
    for _ in 0..200 {
        if link::get(ns, name).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{who} did not create {name} within 10 s"))
}

fn v4(s: u8, x: u8, y: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, s, x, y)
}

/// wireguard-go in F1 and F2, routed: A in 10.s.1.0/24, B in 10.s.2.0/24, the tunnel
/// over the F1-F2 link (10.s.3.0/24). The link MTU leaves room for WireGuard's 60 octets
/// so the tunnel carries packets of the hosts' MTU whole.
fn wireguard(tag: &str, mtu: u32, s: u8) -> Res<Path2> {
    let topo = topology(tag, mtu, mtu + 80, s)?;
    let dir = TempDir(std::env::temp_dir().join(format!("macsec-bench-wg-{}", std::process::id())));
    let _ = std::fs::create_dir_all(&dir.0);
    let gen = |args: &[&str], input: Option<&str>| -> Res<String> {
        use std::io::Write;
        let mut c = Command::new("wg")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(e("wg"))?;
        if let (Some(i), Some(mut si)) = (input, c.stdin.take()) {
            si.write_all(i.as_bytes()).map_err(e("wg stdin"))?;
        }
        let o = c.wait_with_output().map_err(e("wg"))?;
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let mut keys = Vec::new();
    for _ in 0..2 {
        let k = gen(&["genkey"], None)?;
        let p = gen(&["pubkey"], Some(&k))?;
        keys.push((k, p));
    }
    let mut daemons = Vec::new();
    let id = std::process::id() % 10000;
    let ends = [
        (&topo.ns_f1, ifname::P1, ifname::S1, 1u8, 2u8),
        (&topo.ns_f2, ifname::P2, ifname::S2, 2, 1),
    ];
    for (i, (ns, plain, secure, me, peer)) in ends.iter().enumerate() {
        let wgif = format!("wgb{id}{i}");
        ip::add_addr(ns, plain, v4(s, *me, 254), 24).map_err(e("addr"))?;
        ip::add_addr(ns, secure, v4(s, 3, *me), 24).map_err(e("addr"))?;
        sysctl::set(ns, "net.ipv4.ip_forward", "1").map_err(e("ip_forward"))?;
        let child = netns::spawn_in(
            ns,
            Command::new("wireguard-go")
                .arg("-f")
                .arg(&wgif)
                .env("WG_PROCESS_FOREGROUND", "1")
                // This kernel has WireGuard; the userspace implementation is the peer
                // measured here (what users without the module run).
                .env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(dir.0.join(format!("wg{i}.log")))
                        .map_or(Stdio::null(), Stdio::from),
                ),
        )
        .map_err(e("wireguard-go"))?;
        daemons.push(Daemon(child));
        wait_link(ns, &wgif, "wireguard-go")?;
        let keyfile = dir.0.join(format!("k{i}"));
        std::fs::write(&keyfile, &keys[i].0).map_err(e("key file"))?;
        let st = netns::spawn_in(
            ns,
            Command::new("wg").args([
                "set",
                &wgif,
                "private-key",
                keyfile.to_str().unwrap_or(""),
                "listen-port",
                "51820",
                "peer",
                &keys[1 - i].1,
                "allowed-ips",
                &format!("10.{s}.{peer}.0/24"),
                "endpoint",
                &format!("{}:51820", v4(s, 3, *peer)),
            ]),
        )
        .map_err(e("wg set"))?
        .wait()
        .map_err(e("wg set"))?;
        if !st.success() {
            return Err(format!("wg set failed: {st}"));
        }
        link::set_mtu(ns, &wgif, mtu).map_err(e("wg mtu"))?;
        link::set_up(ns, &wgif).map_err(e("wg up"))?;
        ip::add_addr(ns, &wgif, v4(s, 4, *me), 24).map_err(e("wg addr"))?;
        ip::add_route(
            ns,
            &ip::Route {
                dst: v4(s, *peer, 0),
                prefix: 24,
                dev: Some(wgif.clone()),
                ..ip::Route::default()
            },
        )
        .map_err(e("wg route"))?;
    }
    for (ns, dev, me, gw) in [
        (&topo.ns_a, ifname::A, v4(s, 1, 1), v4(s, 1, 254)),
        (&topo.ns_b, ifname::B, v4(s, 2, 1), v4(s, 2, 254)),
    ] {
        ip::add_addr(ns, dev, me, 24).map_err(e("host addr"))?;
        let other = if me.octets()[2] == 1 { 2 } else { 1 };
        ip::add_route(
            ns,
            &ip::Route {
                dst: v4(s, other, 0),
                prefix: 24,
                via: Some(gw),
                ..ip::Route::default()
            },
        )
        .map_err(e("host route"))?;
    }
    let pids = daemons.iter().map(|d| d.0.id()).collect();
    Ok(Path2 {
        ns_a: topo.ns_a.clone(),
        ns_b: topo.ns_b.clone(),
        dst: v4(s, 2, 1),
        bind_b: v4(s, 2, 1).to_string(),
        pids,
        _lab: None,
        _topo: Some(topo),
        _daemons: daemons,
        _dir: Some(dir),
    })
}

/// OpenVPN 2.6 in tap mode, AES-128-GCM, bridged with the plain port at both ends (an L2
/// pair like ours). TLS with the self-signed certificates in `benches/peers/` (pinned by
/// fingerprint), UDP over the F1-F2 link, whose MTU leaves room for OpenVPN's overhead
/// so a frame of the hosts' MTU travels in one datagram.
fn openvpn(tag: &str, mtu: u32, s: u8) -> Res<Path2> {
    let topo = topology(tag, mtu, mtu + 100, s)?;
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/peers");
    let dir =
        TempDir(std::env::temp_dir().join(format!("macsec-bench-ovpn-{}", std::process::id())));
    let _ = std::fs::create_dir_all(&dir.0);
    let fp = [
        "1C:56:A5:E6:97:EA:5F:31:21:68:98:55:18:77:14:73:DE:51:C7:56:69:8F:3D:2F:0E:06:44:C0:8A:30:26:EC",
        "15:70:B5:85:71:3D:E9:4C:01:0C:CB:99:75:20:88:71:5F:6B:D2:FB:A9:F1:82:D4:9C:14:7B:9F:33:49:6D:A1",
    ];
    let id = std::process::id() % 10000;
    let mut daemons = Vec::new();
    let ends = [
        (
            &topo.ns_f1,
            ifname::P1,
            ifname::S1,
            1u8,
            2u8,
            "a",
            "tls-server",
        ),
        (&topo.ns_f2, ifname::P2, ifname::S2, 2, 1, "b", "tls-client"),
    ];
    for (i, (ns, plain, secure, me, peer, name, role)) in ends.iter().enumerate() {
        let tap = format!("tapb{id}{i}");
        ip::add_addr(ns, secure, v4(s, 3, *me), 24).map_err(e("addr"))?;
        let log = dir.0.join(format!("ovpn-{name}.log"));
        let mut cmd = Command::new("openvpn");
        cmd.args(["--dev", &tap, "--dev-type", "tap", "--disable-dco"])
            .args(["--proto", "udp", "--local", &v4(s, 3, *me).to_string()])
            .args(["--lport", "1194", "--rport", "1194"])
            .args(["--remote", &v4(s, 3, *peer).to_string()])
            .arg(format!("--{role}"))
            .args([
                "--cert",
                &peers.join(format!("ovpn-{name}.crt")).to_string_lossy(),
            ])
            .args([
                "--key",
                &peers.join(format!("ovpn-{name}.key")).to_string_lossy(),
            ])
            .args(["--dh", "none", "--peer-fingerprint", fp[1 - i]])
            .args(["--data-ciphers", "AES-128-GCM", "--cipher", "AES-128-GCM"])
            .args(["--tun-mtu", &mtu.to_string(), "--mssfix", "0"])
            .args([
                "--sndbuf",
                "4194304",
                "--rcvbuf",
                "4194304",
                "--txqueuelen",
                "1000",
            ])
            .args(["--verb", "3", "--log", &log.to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = netns::spawn_in(ns, &mut cmd).map_err(e("openvpn"))?;
        daemons.push(Daemon(child));
        wait_link(ns, &tap, "openvpn")?;
        // Without --ifconfig OpenVPN leaves the device as created (MTU 1500): --tun-mtu
        // sizes only its own buffers, so the tap gets the hosts' MTU here.
        link::set_mtu(ns, &tap, mtu).map_err(e("tap mtu"))?;
        Topology::offloads_off(ns, plain).map_err(e("offloads"))?;
        link::add_bridge(ns, "br0").map_err(e("bridge"))?;
        link::enslave(ns, plain, "br0").map_err(e("enslave"))?;
        link::enslave(ns, &tap, "br0").map_err(e("enslave"))?;
        link::set_up(ns, &tap).map_err(e("tap up"))?;
        link::set_up(ns, "br0").map_err(e("br0 up"))?;
    }
    // Wait until the tunnel is up (both ends log it).
    for _ in 0..100 {
        let up = ["a", "b"].iter().all(|n| {
            std::fs::read_to_string(dir.0.join(format!("ovpn-{n}.log")))
                .is_ok_and(|l| l.contains("Initialization Sequence Completed"))
        });
        if up {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pids = daemons.iter().map(|d| d.0.id()).collect();
    Ok(Path2 {
        ns_a: topo.ns_a.clone(),
        ns_b: topo.ns_b.clone(),
        dst: topo.ip_b.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
        bind_b: topo.ip_b.clone(),
        pids,
        _lab: None,
        _topo: Some(topo),
        _daemons: daemons,
        _dir: Some(dir),
    })
}

fn lab_path(lab: Lab) -> Path2 {
    let pids = [Side::A, Side::B]
        .iter()
        .filter_map(|s| lab.forwarder(*s).map(|f| f.child.id()))
        .collect();
    Path2 {
        ns_a: lab.topo.ns_a.clone(),
        ns_b: lab.topo.ns_b.clone(),
        dst: lab.host_addr(Side::B),
        bind_b: lab.topo.ip_b.clone(),
        pids,
        _lab: Some(lab),
        _topo: None,
        _daemons: Vec::new(),
        _dir: None,
    }
}

fn build(v: &Variant, tag: &str, mtu: u32, subnet: u8) -> Res<Path2> {
    match &v.kind {
        Kind::Bridges | Kind::Pair { .. } => {
            let (bin, cipher, encrypt, threads, unprotected, middle) = match &v.kind {
                Kind::Pair {
                    bin,
                    cipher,
                    encrypt,
                    threads,
                    unprotected,
                } => (
                    bin.clone(),
                    *cipher,
                    *encrypt,
                    *threads,
                    *unprotected,
                    Middle::Forwarders,
                ),
                _ => (
                    PathBuf::new(),
                    CipherSuite::GcmAes128,
                    true,
                    None,
                    false,
                    Middle::Bridges,
                ),
            };
            let spec = LabSpec {
                tag: tag.into(),
                cipher,
                encrypt,
                plain_mtu: mtu,
                secure_mtu: mtu + 32,
                host_offloads_off: true,
                middle,
                subnet,
                forward_extra: threads.map_or(String::new(), |t| format!("threads = \"{t}\"\n")),
                unprotected,
                ..LabSpec::default()
            };
            Lab::start(spec, &bin).map(lab_path).map_err(e("lab"))
        }
        Kind::WireGuard => wireguard(tag, mtu, subnet),
        Kind::OpenVpn => openvpn(tag, mtu, subnet),
    }
}

/// iperf3 TCP from A's host to `p.dst` for `secs`; bits per second.
fn iperf(p: &Path2, secs: u32) -> Res<f64> {
    let port = "5201";
    let mut srv = netns::spawn_in(
        &p.ns_b,
        Command::new("iperf3")
            .args(["-s", "-1", "-p", port, "-B", &p.bind_b])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .map_err(e("iperf3 -s"))?;
    std::thread::sleep(Duration::from_millis(300));
    let client = netns::spawn_in(
        &p.ns_a,
        Command::new("iperf3")
            .args([
                "-c",
                &p.dst.to_string(),
                "-p",
                port,
                "-t",
                &secs.to_string(),
                "-J",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let out =
        client.and_then(|c| proc::output_within(c, Duration::from_secs(u64::from(secs) + 15)));
    let _ = proc::terminate(&mut srv, Duration::from_secs(1));
    let out = out.map_err(e("iperf3 -c"))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(e("iperf3 output"))?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or_else(|| format!("iperf3 failed: {}", v["error"]))
}

fn measure(v: &Variant, tag: &str, mtu: u32, subnet: u8, secs: u32, ping_too: bool) -> Res<Sample> {
    let p = build(v, tag, mtu, subnet)?;
    let opts = |count, interval| ping::PingOpts {
        size: 56,
        count,
        interval,
        timeout: Duration::from_secs(2),
        dont_fragment: false,
    };
    // Warm up ARP, the rings and the tunnels; the first packets may be lost.
    let _ = ping::ping(&p.ns_a, p.dst, &opts(5, Duration::from_millis(100)));
    // BENCH_PROBE_SIZES=1000,4000,8972: which packet sizes pass (setting up a peer).
    if let Ok(sizes) = std::env::var("BENCH_PROBE_SIZES") {
        for size in sizes.split(',').filter_map(|x| x.trim().parse().ok()) {
            let o = ping::PingOpts {
                size,
                ..opts(2, Duration::from_millis(100))
            };
            let got = ping::ping(&p.ns_a, p.dst, &o).map(|r| r.received);
            eprintln!("   {}: ping -s {size}: {got:?} of 2", v.name);
        }
    }
    let mut s = Sample::default();
    if ping_too {
        let r =
            ping::ping(&p.ns_a, p.dst, &opts(100, Duration::from_millis(20))).map_err(e("ping"))?;
        s.rtts = r
            .echoes
            .iter()
            .filter_map(|x| x.rtt)
            .map(|d| d.as_secs_f64() * 1e6)
            .collect();
        s.rtts.sort_by(|a, b| a.total_cmp(b));
    }
    let cpu0: Vec<f64> = p.pids.iter().map(|x| proc_cpu_secs(*x)).collect();
    let m0 = machine_jiffies();
    let bps = iperf(&p, secs)?;
    let m1 = machine_jiffies();
    s.gbps = bps / 1e9;
    s.secs = f64::from(secs);
    // Busy share of all cores over the run, times the cores and the run's length.
    s.busy_s = (m1.0 - m0.0) / (m1.1 - m0.1).max(1.0) * cores() * s.secs;
    for (i, (pid, c0)) in p.pids.iter().zip(&cpu0).take(2).enumerate() {
        s.cpu[i] = proc_cpu_secs(*pid) - c0;
        s.rss[i] = proc_hwm_mib(*pid);
    }
    Ok(s)
}

fn main() {
    let secs: u32 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mtus: Vec<u32> = std::env::var("BENCH_MTUS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![9000, 1500]);
    let bin = std::env::var("MACSEC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            std::env::current_exe()
                .unwrap()
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("macsec")
        });
    let base = std::env::var("MACSEC_BIN_BASE").ok().map(PathBuf::from);
    let pair = |name: &str, bin: &Path, cipher, encrypt, threads, reference| Variant {
        name: name.into(),
        kind: Kind::Pair {
            bin: bin.to_path_buf(),
            cipher,
            encrypt,
            threads,
            unprotected: false,
        },
        reference,
    };
    let mut variants = vec![Variant {
        name: "kernel bridges".into(),
        kind: Kind::Bridges,
        reference: false,
    }];
    if let Some(b) = &base {
        variants.push(pair(
            "pair GCM-AES-128, before (MACSEC_BIN_BASE)",
            b,
            CipherSuite::GcmAes128,
            true,
            None,
            false,
        ));
    }
    variants.push(pair(
        "pair GCM-AES-128, default threads",
        &bin,
        CipherSuite::GcmAes128,
        true,
        None,
        true,
    ));
    variants.push(pair(
        "pair GCM-AES-128, threads = two",
        &bin,
        CipherSuite::GcmAes128,
        true,
        Some("two"),
        false,
    ));
    variants.push(pair(
        "pair GCM-AES-128, threads = one",
        &bin,
        CipherSuite::GcmAes128,
        true,
        Some("one"),
        false,
    ));
    variants.push(pair(
        "pair GCM-AES-256",
        &bin,
        CipherSuite::GcmAes256,
        true,
        None,
        false,
    ));
    variants.push(pair(
        "pair integrity only",
        &bin,
        CipherSuite::GcmAes128,
        false,
        None,
        false,
    ));
    // The same pair with protectFrames off and validateFrames Disabled: the rings, the
    // copies, the checksum completion and the wake-ups without the cipher, i.e. the most
    // this packet I/O can carry on this machine whatever the cipher costs.
    variants.push(Variant {
        name: "pair unprotected (no cipher: packet I/O alone)".into(),
        kind: Kind::Pair {
            bin: bin.clone(),
            cipher: CipherSuite::GcmAes128,
            encrypt: true,
            threads: None,
            unprotected: true,
        },
        reference: false,
    });
    // MACSEC_BIN_ALT: a third build (say, this one with a fix from elsewhere), GCM-AES-128
    // in both thread modes, labelled MACSEC_BIN_ALT_LABEL.
    if let Ok(alt) = std::env::var("MACSEC_BIN_ALT") {
        let label = std::env::var("MACSEC_BIN_ALT_LABEL").unwrap_or_else(|_| "alt".into());
        let alt = PathBuf::from(alt);
        for t in ["two", "one"] {
            variants.push(pair(
                &format!("pair GCM-AES-128, {label}, threads = {t}"),
                &alt,
                CipherSuite::GcmAes128,
                true,
                Some(t),
                false,
            ));
        }
    }
    let mut notes = Vec::new();
    if have("wireguard-go") && have("wg") {
        variants.push(Variant {
            name: "wireguard-go (L3, routed)".into(),
            kind: Kind::WireGuard,
            reference: false,
        });
    } else {
        notes.push("wireguard-go skipped: `wireguard-go` and `wg` not installed (apt-get install wireguard-go wireguard-tools)".to_string());
    }
    if have("openvpn") {
        variants.push(Variant {
            name: "OpenVPN tap AES-128-GCM (L2, bridged)".into(),
            kind: Kind::OpenVpn,
            reference: false,
        });
    } else {
        notes
            .push("OpenVPN skipped: `openvpn` not installed (apt-get install openvpn)".to_string());
    }
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_lowercase()).collect());
    if let Some(o) = &only {
        variants.retain(|v| {
            v.name == "kernel bridges" || o.iter().any(|w| v.name.to_lowercase().contains(w))
        });
    }
    // results[mtu index][variant] = samples
    let mut results: Vec<Vec<Vec<Sample>>> = vec![vec![Vec::new(); variants.len()]; mtus.len()];
    let mut k = 0u32;
    for (mi, &mtu) in mtus.iter().enumerate() {
        for round in 0..rounds {
            for (vi, v) in variants.iter().enumerate() {
                k += 1;
                let tag = format!("b{}", k % 1000);
                let subnet = 100 + (k % 100) as u8;
                match measure(v, &tag, mtu, subnet, secs, round == 0) {
                    Ok(s) => {
                        eprintln!(
                            "MTU {mtu} round {} {}: {:.2} Gbit/s, {:.2} CPU-s/GB, F CPU {:.1}/{:.1} s",
                            round + 1,
                            v.name,
                            s.gbps,
                            s.cpu_s_per_gb(),
                            s.cpu[0],
                            s.cpu[1]
                        );
                        results[mi][vi].push(s);
                    }
                    Err(err) => {
                        eprintln!("MTU {mtu} round {} {}: failed: {err}", round + 1, v.name);
                        results[mi][vi].push(Sample {
                            note: err,
                            ..Sample::default()
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
    println!(
        "\nForwarder benchmark: iperf3 TCP {secs} s A -> B, host offloads off, {} cores; each variant {rounds} times, alternating, best run shown; ratios to the kernel bridges and to our pair (GCM-AES-128, default threads) of the same MTU in the same run\n",
        cores()
    );
    println!("| MTU | path | Gbit/s (best) | all runs | ratio to bridges | ratio to our pair | machine CPU-s per GB | idle RTT µs mean / median | added per hop µs mean / median | CPU s F1 / F2 | peak RSS MiB F1 / F2 |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (mi, &mtu) in mtus.iter().enumerate() {
        let best = |vi: usize| -> Option<&Sample> {
            results[mi][vi]
                .iter()
                .filter(|s| s.gbps > 0.0)
                .max_by(|a, b| a.gbps.total_cmp(&b.gbps))
        };
        let first_rtt =
            |vi: usize| -> Option<&Sample> { results[mi][vi].iter().find(|s| !s.rtts.is_empty()) };
        let bridges = best(0).map_or(f64::NAN, |s| s.gbps);
        let bridge_rtt = first_rtt(0);
        let ours = variants
            .iter()
            .position(|v| v.reference)
            .and_then(best)
            .map_or(f64::NAN, |s| s.gbps);
        for (vi, v) in variants.iter().enumerate() {
            let all: Vec<String> = results[mi][vi]
                .iter()
                .map(|s| format!("{:.2}", s.gbps))
                .collect();
            let Some(s) = best(vi) else {
                let why = results[mi][vi]
                    .first()
                    .map_or(String::new(), |s| s.note.clone());
                println!(
                    "| {mtu} | {} | failed: {} | | | | | | | | |",
                    v.name,
                    why.replace('|', "/")
                );
                continue;
            };
            let is_pair = matches!(v.kind, Kind::Pair { .. });
            let rtt = first_rtt(vi);
            let (rm, rmed) = rtt.map_or((f64::NAN, f64::NAN), |r| (r.rtt_mean(), median(&r.rtts)));
            let added = match (is_pair || !matches!(v.kind, Kind::Bridges), bridge_rtt) {
                (true, Some(b)) => format!(
                    "{:.0} / {:.0}",
                    (rm - b.rtt_mean()) / 2.0,
                    (rmed - median(&b.rtts)) / 2.0
                ),
                _ => "-".into(),
            };
            let daemon = !matches!(v.kind, Kind::Bridges);
            println!(
                "| {mtu} | {} | {:.2} | {} | {:.2} | {} | {:.2} | {:.0} / {:.0} | {} | {} | {} |",
                v.name,
                s.gbps,
                all.join(", "),
                s.gbps / bridges,
                if matches!(v.kind, Kind::Bridges) {
                    "-".to_string()
                } else {
                    format!("{:.2}", s.gbps / ours)
                },
                s.cpu_s_per_gb(),
                rm,
                rmed,
                added,
                if daemon {
                    format!("{:.1} / {:.1}", s.cpu[0], s.cpu[1])
                } else {
                    "-".into()
                },
                if daemon {
                    format!("{:.1} / {:.1}", s.rss[0], s.rss[1])
                } else {
                    "-".into()
                },
            );
        }
    }
    for n in notes {
        println!("\nNote: {n}");
    }
    println!("\nTargets on this 2-core machine (issue 16): the pair at >= 0.6 of the bridges at MTU 9000 and >= 0.75 at MTU 1500; machine CPU-s per GB through the pair a third below the figure before; peak RSS <= 64 MiB.");
}

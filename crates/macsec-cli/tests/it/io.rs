//! Packet I/O against the real kernel: AF_PACKET rings, interface helpers and the control
//! socket, on veth pairs inside private network namespaces.
//!
//! These tests need root and nothing else (namespaces, veths and addresses are made
//! in-process by `macsec_testkit::netlab`). Each is named `root_*` and fails without
//! root (`macsec_testkit::root`). They never touch the host's interfaces or addresses:
//! every interface and address lives in a namespace the test creates and deletes (also
//! on failure).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use macsec::wire::MacAddr;
use macsec_forward::csum;
use macsec_forward::io::afpacket::{
    AfPacketRx, AfPacketTx, Fanout, RxConfig, RxRing, RxRingStats, TxConfig,
};
use macsec_forward::io::control::ControlSocket;
use macsec_forward::io::iface::{Interface, Offload, Offloads};
use macsec_forward::io::{RxPort, SetupError, TxPort, TX_HEADROOM};
use macsec_testkit::netlab::link::{self, Veth};
use macsec_testkit::netlab::{ethtool, ip, netns};
use macsec_testkit::root::require as require_root;

// ---- namespace fixtures -------------------------------------------------------------

/// Two tests running `body(ring)`: `$v2` with the default `TPACKET_V2` ring and `$v3` with
/// the `TPACKET_V3` ring, so every receive test covers both ring kinds.
macro_rules! both_rings {
    ($body:ident: $v2:ident, $v3:ident) => {
        #[test]
        fn $v2() {
            require_root();
            $body(RxRing::v2());
        }

        #[test]
        fn $v3() {
            require_root();
            $body(RxRing::v3());
        }
    };
}

fn rx_cfg(ring: RxRing) -> RxConfig {
    RxConfig {
        ring,
        ..RxConfig::default()
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A network namespace deleted on drop (which also deletes the veths inside it).
struct Netns(netns::Netns);

impl Netns {
    fn new(tag: &str) -> Netns {
        Netns(netns::Netns::unique("macsec-io-", tag).expect("create namespace"))
    }

    fn name(&self) -> &str {
        self.0.name()
    }

    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        netns::run_in(self.name(), f).expect("enter namespace")
    }
}

/// Waits until `dev` in `ns` is operationally up (both ends of its veth up).
fn running(ns: &Netns, dev: &str) {
    link::wait_running(ns.name(), dev, Duration::from_secs(5)).unwrap();
}

/// Interface names unique in this process (at most 15 octets).
fn ifnames() -> (String, String) {
    let n = unique();
    let p = std::process::id();
    (format!("v{p:x}x{n}a"), format!("v{p:x}x{n}b"))
}

/// A namespace holding one veth pair, both ends up (and running) with `mtu`.
fn veth_ns(tag: &str, mtu: u32) -> (Netns, String, String) {
    let ns = Netns::new(tag);
    let (a, b) = ifnames();
    let opts = Veth {
        mtu: Some(mtu),
        ..Veth::default()
    };
    link::add_veth(ns.name(), &a, ns.name(), &b, &opts).unwrap();
    for i in [&a, &b] {
        link::set_up(ns.name(), i).unwrap();
    }
    for i in [&a, &b] {
        running(&ns, i);
    }
    (ns, a, b)
}

// ---- frames -------------------------------------------------------------------------

const TEST_ETHERTYPE: u16 = 0x88B5; // IEEE 802 local experimental

fn test_frame(magic: u32, seq: u32, len: usize) -> Vec<u8> {
    assert!(len >= 26);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&magic.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&(len as u32).to_be_bytes());
    let mut x = seq.wrapping_mul(2_654_435_761) | 1;
    while f.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        f.push(x as u8);
    }
    f
}

fn parse_test_frame(f: &[u8]) -> Option<(u32, u32)> {
    if f.len() < 26 || f[12..14] != TEST_ETHERTYPE.to_be_bytes() {
        return None;
    }
    let w = |i: usize| u32::from_be_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]);
    Some((w(14), w(18)))
}

fn send(tx: &mut AfPacketTx, frame: &[u8]) -> std::io::Result<bool> {
    tx.send_with(&mut |slot| {
        let end = TX_HEADROOM + frame.len();
        slot[TX_HEADROOM..end].copy_from_slice(frame);
        Some(TX_HEADROOM..end)
    })
}

/// Sends all frames, flushing every `batch` and whenever the ring is full.
fn send_all(tx: &mut AfPacketTx, frames: &[Vec<u8>], batch: usize) {
    for (i, f) in frames.iter().enumerate() {
        let mut tries = 0;
        while !send(tx, f).expect("send_with") {
            tx.flush().expect("flush");
            tries += 1;
            assert!(tries < 1000, "TX ring stays full");
            std::thread::sleep(Duration::from_micros(100));
        }
        if (i + 1) % batch == 0 {
            tx.flush().expect("flush");
        }
    }
    tx.flush().expect("flush");
}

#[derive(Debug, Clone)]
struct Got {
    data: Vec<u8>,
    csum_not_ready: bool,
    truncated: bool,
    vlan_tci: Option<u16>,
    vlan_tpid: u16,
}

/// Receives until `want` frames accepted by `keep` arrived or `limit` passed.
fn collect(
    rx: &mut dyn RxPort,
    want: usize,
    limit: Duration,
    keep: &dyn Fn(&[u8]) -> bool,
) -> Vec<Got> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    while out.len() < want && t0.elapsed() < limit {
        rx.recv_batch(64, Duration::from_millis(20), &mut |f| {
            if keep(f.data) {
                out.push(Got {
                    data: f.data.to_vec(),
                    csum_not_ready: f.csum_not_ready,
                    truncated: f.truncated,
                    vlan_tci: f.vlan_tci,
                    vlan_tpid: f.vlan_tpid,
                });
            }
        })
        .expect("recv_batch");
    }
    out
}

fn magic_is(m: u32) -> impl Fn(&[u8]) -> bool {
    move |f| parse_test_frame(f).is_some_and(|(mm, _)| mm == m)
}

fn open_pair(
    ns: &Netns,
    tx_if: &str,
    rx_if: &str,
    tx_cfg: TxConfig,
    ring: RxRing,
) -> (AfPacketTx, AfPacketRx) {
    let (t, r) = (tx_if.to_owned(), rx_if.to_owned());
    ns.run(move || {
        let ti = Interface::lookup(&t).expect("lookup tx interface");
        let ri = Interface::lookup(&r).expect("lookup rx interface");
        let rx = AfPacketRx::open(&ri, &rx_cfg(ring)).expect("open rx");
        assert_eq!(rx.ring(), ring);
        (AfPacketTx::open(&ti, &tx_cfg).expect("open tx"), rx)
    })
}

// ---- AF_PACKET rings ----------------------------------------------------------------

both_rings!(
    jumbo_frames_arrive_intact:
    root_afpacket_v2_jumbo_frames_arrive_intact,
    root_afpacket_v3_jumbo_frames_arrive_intact
);
fn jumbo_frames_arrive_intact(ring: RxRing) {
    let (ns, a, b) = veth_ns("jumbo", 1500);
    // Raise the MTU through our own helper (the MTU test checks it in detail).
    ns.run(|| {
        for n in [&a, &b] {
            let mut i = Interface::lookup(n).unwrap();
            i.set_mtu(9216).unwrap();
            assert_eq!(i.mtu, 9216);
        }
    });
    let (mut tx, mut rx) = open_pair(&ns, &a, &b, TxConfig::default(), ring);
    assert_eq!(tx.mtu(), 9216);
    let magic = 0x4A55_4D42;
    let sizes = [60usize, 1514, 9014, 9018, 9230];
    let frames: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| test_frame(magic, i as u32, n))
        .collect();
    send_all(&mut tx, &frames, 64);
    let got = collect(
        &mut rx,
        frames.len(),
        Duration::from_secs(5),
        &magic_is(magic),
    );
    assert_eq!(got.len(), frames.len(), "all frames arrive");
    for (g, f) in got.iter().zip(&frames) {
        assert_eq!(g.data.len(), f.len());
        assert!(g.data == *f, "frame of {} octets intact", f.len());
        assert!(!g.truncated && !g.csum_not_ready && g.vlan_tci.is_none());
    }
    // One octet more than MTU + Ethernet header is refused up front, and the port
    // stays usable.
    let too_long = test_frame(magic, 99, 9231);
    let e = send(&mut tx, &too_long).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE));
    send_all(&mut tx, &frames[..1], 1);
    assert_eq!(
        collect(&mut rx, 1, Duration::from_secs(5), &magic_is(magic)).len(),
        1
    );
    assert_eq!(tx.stats().rejected, 1);
}

/// The transmit ring with and without `TxConfig::linear` (a `virtio_net_hdr` in front of
/// each frame that makes the kernel copy it whole into the buffer's linear part): the
/// same octets arrive either way, for frames written anywhere in the slot, including at
/// its very start, where the header has no room until the frame is moved.
#[test]
fn root_afpacket_tx_linear_and_paged_frames_arrive_the_same() {
    require_root();
    let (ns, a, b) = veth_ns("linear", 1500);
    ns.run(|| {
        for n in [&a, &b] {
            let mut i = Interface::lookup(n).unwrap();
            i.set_mtu(9216).unwrap();
            // The forwarder picks the linear copy for veths (and taps), by driver name.
            assert_eq!(i.driver().as_deref(), Some("veth"));
            assert!(i.loops_back_into_the_stack());
        }
        let lo = Interface::lookup("lo").unwrap();
        assert!(!lo.loops_back_into_the_stack(), "lo: {:?}", lo.driver());
    });
    for linear in [false, true] {
        let cfg = TxConfig {
            linear,
            ..TxConfig::default()
        };
        let (mut tx, mut rx) = open_pair(&ns, &a, &b, cfg, RxRing::v2());
        assert_eq!(tx.is_linear(), linear);
        let magic = 0x4C49_4E00 | linear as u32;
        let mut frames = Vec::new();
        for (i, &(n, at)) in [
            (60usize, 0usize),
            (60, 4),
            (1514, 0),
            (1514, TX_HEADROOM),
            (9014, 9),
            (9230, 0),
            (9230, 10),
        ]
        .iter()
        .enumerate()
        {
            let f = test_frame(magic, i as u32, n);
            let sent = tx
                .send_with(&mut |slot| {
                    slot[at..at + f.len()].copy_from_slice(&f);
                    Some(at..at + f.len())
                })
                .expect("send_with");
            assert!(sent, "a free slot");
            frames.push(f);
        }
        tx.flush().expect("flush");
        let got = collect(
            &mut rx,
            frames.len(),
            Duration::from_secs(5),
            &magic_is(magic),
        );
        let seen: Vec<_> = got
            .iter()
            .map(|g| (g.data.len(), parse_test_frame(&g.data)))
            .collect();
        assert_eq!(
            got.len(),
            frames.len(),
            "linear = {linear}: every frame arrives: {seen:?} {:?}",
            tx.stats()
        );
        for (g, f) in got.iter().zip(&frames) {
            assert!(
                g.data == *f,
                "linear = {linear}: the frame of {} octets arrives as sent",
                f.len()
            );
        }
        assert_eq!(tx.stats().frames, frames.len() as u64);
        assert_eq!(tx.stats().rejected, 0);
    }
}

both_rings!(
    batch_of_1000_arrives_complete_and_in_order:
    root_afpacket_v2_batch_of_1000_arrives_complete_and_in_order,
    root_afpacket_v3_batch_of_1000_arrives_complete_and_in_order
);
fn batch_of_1000_arrives_complete_and_in_order(ring: RxRing) {
    let (ns, a, b) = veth_ns("batch", 1500);
    let (mut tx, mut rx) = open_pair(&ns, &a, &b, TxConfig::default(), ring);
    let magic = 0x4241_5443;
    let frames: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| test_frame(magic, i, 60 + (i as usize * 37) % 1455))
        .collect();
    // A V3 ring holds the whole burst, so the sender blasts. A V2 ring holds only its
    // slot count (135 by default: a burst beyond that is dropped, see
    // afpacket_v2_full_ring_drops_the_excess_and_counts_it), so the sender keeps at most
    // half of that in flight: the ring still wraps around several times.
    let window = match ring {
        RxRing::V2 { .. } => rx.geometry().frame_count() / 2,
        RxRing::V3 { .. } => usize::MAX,
    };
    let received = AtomicUsize::new(0);
    let got = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let t0 = Instant::now();
            let mut out = Vec::new();
            let keep = magic_is(magic);
            while out.len() < 1000 && t0.elapsed() < Duration::from_secs(20) {
                rx.recv_batch(64, Duration::from_millis(20), &mut |f| {
                    if keep(f.data) {
                        out.push(f.data.to_vec());
                    }
                })
                .expect("recv_batch");
                received.store(out.len(), Ordering::Release);
            }
            out
        });
        // Give the receiver a moment to start polling, then send.
        std::thread::sleep(Duration::from_millis(20));
        let t0 = Instant::now();
        let chunk = 32.min(window);
        for (i, part) in frames.chunks(chunk).enumerate() {
            let sent = i * chunk;
            while sent + part.len() - received.load(Ordering::Acquire) > window
                && t0.elapsed() < Duration::from_secs(20)
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            send_all(&mut tx, part, 64);
        }
        h.join().unwrap()
    });
    let seqs: Vec<u32> = got.iter().map(|g| parse_test_frame(g).unwrap().1).collect();
    assert_eq!(seqs.len(), 1000, "complete (got {})", seqs.len());
    assert_eq!(seqs, (0..1000).collect::<Vec<_>>(), "in order");
    for g in &got {
        let seq = parse_test_frame(g).unwrap().1;
        assert!(*g == frames[seq as usize], "frame {seq} intact");
    }
    assert_eq!(rx.kernel_stats().unwrap().drops, 0);
    assert_eq!(tx.stats().frames, 1000);
    if let RxRing::V2 { .. } = ring {
        assert!(rx.stats().frames >= 1000 && rx.stats().blocks == 0);
    }
}

both_rings!(
    own_transmissions_are_not_read_back:
    root_afpacket_v2_own_transmissions_are_not_read_back,
    root_afpacket_v3_own_transmissions_are_not_read_back
);
fn own_transmissions_are_not_read_back(ring: RxRing) {
    let (ns, a, b) = veth_ns("echo", 1500);
    for bypass in [false, true] {
        let (aa, bb) = (a.clone(), b.clone());
        let (mut tx, mut rx_same, mut rx_all, mut rx_peer) = ns.run(move || {
            let ia = Interface::lookup(&aa).unwrap();
            let ib = Interface::lookup(&bb).unwrap();
            let tx_cfg = TxConfig {
                qdisc_bypass: bypass,
                ..TxConfig::default()
            };
            let see_all = RxConfig {
                ignore_outgoing: false,
                ..rx_cfg(ring)
            };
            (
                AfPacketTx::open(&ia, &tx_cfg).unwrap(),
                AfPacketRx::open(&ia, &rx_cfg(ring)).unwrap(),
                AfPacketRx::open(&ia, &see_all).unwrap(),
                AfPacketRx::open(&ib, &rx_cfg(ring)).unwrap(),
            )
        });
        let magic = 0x4543_4800 | u32::from(bypass);
        let frames: Vec<Vec<u8>> = (0..50).map(|i| test_frame(magic, i, 100)).collect();
        send_all(&mut tx, &frames, 16);
        let peer = collect(&mut rx_peer, 50, Duration::from_secs(5), &magic_is(magic));
        assert_eq!(peer.len(), 50, "the peer receives them (bypass {bypass})");
        let same = collect(
            &mut rx_same,
            1,
            Duration::from_millis(300),
            &magic_is(magic),
        );
        assert!(
            same.is_empty(),
            "read back our own frames (bypass {bypass})"
        );
        let all = collect(
            &mut rx_all,
            50,
            Duration::from_millis(300),
            &magic_is(magic),
        );
        if bypass {
            // Frames that bypass the qdisc also bypass the taps; not asserted, the
            // kernel may change this.
            eprintln!(
                "with PACKET_QDISC_BYPASS a tap without IGNORE_OUTGOING saw {} of 50",
                all.len()
            );
        } else {
            // Control: without PACKET_IGNORE_OUTGOING the same socket would see them.
            assert_eq!(all.len(), 50, "control socket sees outgoing frames");
        }
    }
}

both_rings!(
    reports_stripped_vlan_tags:
    root_afpacket_v2_reports_stripped_vlan_tags,
    root_afpacket_v3_reports_stripped_vlan_tags
);
fn reports_stripped_vlan_tags(ring: RxRing) {
    let (ns, a, b) = veth_ns("vlan", 1500);
    let (mut tx, mut rx) = open_pair(&ns, &a, &b, TxConfig::default(), ring);
    let magic = 0x564C_414E;
    let inner = test_frame(magic, 1, 100);
    let tag = |tpid: u16, tci: u16, f: &[u8]| {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&tpid.to_be_bytes());
        t.extend_from_slice(&tci.to_be_bytes());
        t.extend_from_slice(&f[12..]);
        t
    };
    let ctag = tag(0x8100, 0x2064, &inner);
    let qinq = tag(0x88A8, 0x0005, &tag(0x8100, 0x0064, &inner));
    send_all(&mut tx, &[ctag, qinq], 8);
    let is_ours = |f: &[u8]| {
        // The payload follows zero or one remaining tag.
        parse_test_frame(f).is_some_and(|(m, _)| m == magic)
            || (f.len() > 30 && f[12..14] == [0x81, 0x00] && parse_test_frame(&f[4..]).is_some())
    };
    let got = collect(&mut rx, 2, Duration::from_secs(5), &is_ours);
    assert_eq!(got.len(), 2);
    // 802.1Q: stripped by the kernel, reported with its TPID.
    assert_eq!(got[0].vlan_tci, Some(0x2064));
    assert_eq!(got[0].vlan_tpid, 0x8100);
    assert_eq!(got[0].data, inner);
    // 802.1ad outer tag: stripped too; the inner 802.1Q tag stays in the frame.
    assert_eq!(got[1].vlan_tci, Some(0x0005));
    assert_eq!(got[1].vlan_tpid, 0x88A8);
    assert_eq!(got[1].data, tag(0x8100, 0x0064, &inner));
}

both_rings!(
    fanout_group_shares_frames:
    root_afpacket_v2_fanout_group_shares_frames,
    root_afpacket_v3_fanout_group_shares_frames
);
fn fanout_group_shares_frames(ring: RxRing) {
    let (ns, a, b) = veth_ns("fanout", 1500);
    let group = (std::process::id() as u16) ^ 0x5a5a;
    let (aa, bb) = (a.clone(), b.clone());
    let (mut tx, mut tx_local, mut r1, mut r2) = ns.run(move || {
        let ia = Interface::lookup(&aa).unwrap();
        let ib = Interface::lookup(&bb).unwrap();
        let cfg = RxConfig {
            fanout: Some(Fanout::hash(group)),
            ..rx_cfg(ring)
        };
        // Sends on the group's own interface through the qdisc, where taps see it.
        let local_cfg = TxConfig {
            qdisc_bypass: false,
            ..TxConfig::default()
        };
        (
            AfPacketTx::open(&ia, &TxConfig::default()).unwrap(),
            AfPacketTx::open(&ib, &local_cfg).unwrap(),
            AfPacketRx::open(&ib, &cfg).unwrap(),
            AfPacketRx::open(&ib, &cfg).unwrap(),
        )
    });
    let magic = 0x4641_4E4F;
    let frames: Vec<Vec<u8>> = (0..200).map(|i| test_frame(magic, i, 80)).collect();
    let mut seqs: Vec<u32> = Vec::new();
    let t0 = Instant::now();
    // One flow hashes to one socket: send in parts that fit a default V2 ring.
    for part in frames.chunks(20) {
        send_all(&mut tx, part, 32);
        let want = seqs.len() + part.len();
        while seqs.len() < want && t0.elapsed() < Duration::from_secs(5) {
            for r in [&mut r1, &mut r2] {
                for g in collect(r, 200, Duration::from_millis(30), &magic_is(magic)) {
                    seqs.push(parse_test_frame(&g.data).unwrap().1);
                }
            }
        }
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..200).collect::<Vec<_>>(),
        "each frame exactly once across the group"
    );
    // Outgoing frames on the group's interface are ignored by the group too.
    let echo: Vec<Vec<u8>> = (0..20).map(|i| test_frame(0x4543_484f, i, 80)).collect();
    send_all(&mut tx_local, &echo, 8);
    for r in [&mut r1, &mut r2] {
        let echoed = collect(r, 1, Duration::from_millis(100), &magic_is(0x4543_484f));
        assert!(
            echoed.is_empty(),
            "the fanout group read back outgoing frames"
        );
    }
}

// ---- checksum offload over veth -----------------------------------------------------

/// Independent check of an untagged IPv4/TCP frame's checksum (not using the library).
fn tcp_v4_checksum_ok(f: &[u8]) -> bool {
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let seg = &f[14 + ihl..14 + total];
    let mut words: Vec<u8> = Vec::new();
    words.extend_from_slice(&f[26..34]); // source and destination addresses
    words.extend_from_slice(&[0, 6]);
    words.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    words.extend_from_slice(seg);
    if words.len() % 2 == 1 {
        words.push(0);
    }
    let mut s: u32 = words
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s == 0xffff
}

both_rings!(
    tcp_over_veth_arrives_csum_not_ready_and_completion_fixes_it:
    root_tcp_over_veth_arrives_csum_not_ready_and_completion_fixes_it_v2,
    root_tcp_over_veth_arrives_csum_not_ready_and_completion_fixes_it_v3
);
/// A client namespace (192.0.2.1 on its veth end, default offloads) and a server
/// namespace (192.0.2.2): `(client, server, client_if, server_if)`.
fn tcp_namespaces() -> (Netns, Netns, String, String) {
    let client = Netns::new("cli");
    let server = Netns::new("srv");
    let (ca, sb) = ifnames();
    link::add_veth(client.name(), &ca, server.name(), &sb, &Veth::default()).unwrap();
    ip::add_addr(client.name(), &ca, Ipv4Addr::new(192, 0, 2, 1), 24).unwrap();
    ip::add_addr(server.name(), &sb, Ipv4Addr::new(192, 0, 2, 2), 24).unwrap();
    link::set_up(client.name(), &ca).unwrap();
    link::set_up(server.name(), &sb).unwrap();
    running(&client, &ca);
    running(&server, &sb);
    (client, server, ca, sb)
}

fn is_tcp_v4(f: &[u8]) -> bool {
    f.len() >= 54 && f[12..14] == [0x08, 0x00] && f[14 + 9] == 6
}

fn tcp_over_veth_arrives_csum_not_ready_and_completion_fixes_it(ring: RxRing) {
    let (client, server, _ca, sb) = tcp_namespaces();
    let sbn = sb.clone();
    let (mut rx, listener) = server.run(move || {
        let i = Interface::lookup(&sbn).unwrap();
        (
            AfPacketRx::open(&i, &rx_cfg(ring)).unwrap(),
            TcpListener::bind("192.0.2.2:0").unwrap(),
        )
    });
    let port = listener.local_addr().unwrap().port();
    let addr = SocketAddr::from(([192, 0, 2, 2], port));
    let got = std::thread::scope(|s| {
        let h = s.spawn(|| {
            // SYN, ACK, data (+ FIN, ACK): wait for at least three TCP frames.
            collect(&mut rx, 3, Duration::from_secs(10), &is_tcp_v4)
        });
        let mut stream = client
            .run(move || TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
            .expect("connect");
        use std::io::Write;
        stream.write_all(b"checksum left for offload").unwrap();
        let (_conn, _) = listener.accept().unwrap();
        h.join().unwrap()
    });
    let partial: Vec<&Got> = got.iter().filter(|g| g.csum_not_ready).collect();
    assert!(
        !partial.is_empty(),
        "expected TCP frames with TP_STATUS_CSUMNOTREADY over veth, got {} TCP frames without",
        got.len()
    );
    for g in partial {
        let mut f = g.data.clone();
        assert_eq!(csum::complete(&mut f), Ok(csum::Transport::Tcp));
        assert!(
            tcp_v4_checksum_ok(&f),
            "completed checksum verifies independently"
        );
        assert_eq!(csum::verify(&f), Ok(true));
        // Only the checksum field may change.
        let at = 14 + usize::from(f[14] & 0x0f) * 4 + 16;
        assert_eq!(f[..at], g.data[..at]);
        assert_eq!(f[at + 2..], g.data[at + 2..]);
    }
}

/// Byte `k` of the TCP stream sent by `tcp_gso_super_frames_arrive_whole`.
fn stream_byte(k: usize) -> u8 {
    (k % 251) as u8
}

both_rings!(
    tcp_gso_super_frames_arrive_whole:
    root_afpacket_v2_tcp_gso_super_frames_arrive_whole,
    root_afpacket_v3_tcp_gso_super_frames_arrive_whole
);
/// A bulk TCP transfer from a namespace whose veth has TSO on (the default) reaches the
/// packet socket on the peer as unsegmented GSO frames of up to 64 KiB; the ring must
/// deliver them whole.
fn tcp_gso_super_frames_arrive_whole(ring: RxRing) {
    tcp_gso_super_frames_arrive_whole_with(rx_cfg(ring));
}

/// The same through slots sized for MTU 1500 (1,600 octets): every super-frame takes the
/// `PACKET_COPY_THRESH` path and must still arrive whole and intact.
#[test]
fn root_afpacket_v2_small_slots_take_gso_super_frames_whole_through_the_copy_path() {
    require_root();
    let cfg = RxConfig {
        ring: RxRing::v2_sized(1514 + 8, 2 << 20),
        copy_oversized: true,
        ..RxConfig::default()
    };
    assert!(cfg.ring.max_frame_len() < 2000);
    let stats = tcp_gso_super_frames_arrive_whole_with(cfg);
    assert!(stats.copied > 0, "{stats:?}");
    assert_eq!(stats.copy_lost, 0, "{stats:?}");
}

/// Returns the port's counters.
fn tcp_gso_super_frames_arrive_whole_with(cfg: RxConfig) -> RxRingStats {
    let ring = cfg.ring;
    let (client, server, ca, sb) = tcp_namespaces();
    let can = ca.clone();
    let tso = client.run(move || Offloads::read(&can).unwrap().is_on(Offload::Tso));
    assert!(tso, "veth is expected to have TSO on by default");
    let sbn = sb.clone();
    let (mut rx, listener) = server.run(move || {
        let i = Interface::lookup(&sbn).unwrap();
        (
            AfPacketRx::open(&i, &cfg).unwrap(),
            TcpListener::bind("192.0.2.2:0").unwrap(),
        )
    });
    let addr = SocketAddr::from(([192, 0, 2, 2], listener.local_addr().unwrap().port()));
    const TOTAL: usize = 16 << 20;
    const BIG: usize = 65_000;

    #[derive(Default, Debug)]
    struct Seen {
        tcp: usize,
        truncated: usize,
        longest: usize,
        big: Option<Got>,
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let (seen, received) = std::thread::scope(|s| {
        let rx = &mut rx;
        let rx_thread = s.spawn(|| {
            let mut seen = Seen::default();
            let t0 = Instant::now();
            while seen.big.is_none()
                && !done.load(Ordering::Relaxed)
                && t0.elapsed() < Duration::from_secs(20)
            {
                rx.recv_batch(64, Duration::from_millis(20), &mut |f| {
                    if !is_tcp_v4(f.data) {
                        return;
                    }
                    seen.tcp += 1;
                    seen.truncated += usize::from(f.truncated);
                    seen.longest = seen.longest.max(f.data.len());
                    if seen.big.is_none() && f.data.len() >= BIG {
                        seen.big = Some(Got {
                            data: f.data.to_vec(),
                            csum_not_ready: f.csum_not_ready,
                            truncated: f.truncated,
                            vlan_tci: f.vlan_tci,
                            vlan_tpid: f.vlan_tpid,
                        });
                    }
                })
                .expect("recv_batch");
            }
            seen
        });
        let server_thread = s.spawn(|| {
            use std::io::Read;
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0;
            loop {
                match conn.read(&mut buf).unwrap() {
                    0 => break n,
                    k => n += k,
                }
            }
        });
        let mut stream = client
            .run(move || TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
            .expect("connect");
        use std::io::Write;
        const CHUNK: usize = 1 << 16;
        let pattern: Vec<u8> = (0..CHUNK + 251).map(stream_byte).collect();
        let mut sent = 0;
        while sent < TOTAL {
            // Stream octet `sent + j` is stream_byte(sent + j).
            let from = sent % 251;
            stream.write_all(&pattern[from..from + CHUNK]).unwrap();
            sent += CHUNK;
        }
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let received = server_thread.join().unwrap();
        done.store(true, Ordering::Relaxed);
        (rx_thread.join().unwrap(), received)
    });
    assert_eq!(received, TOTAL);
    eprintln!(
        "{ring:?}: {} TCP frames seen, longest {} octets, {} truncated",
        seen.tcp, seen.longest, seen.truncated
    );
    assert_eq!(seen.truncated, 0, "no TCP frame may be truncated");
    let big = seen.big.unwrap_or_else(|| {
        panic!(
            "no TCP frame of {BIG} octets or more seen (longest {}): TSO on the sender did not \
             produce GSO super-frames",
            seen.longest
        )
    });
    let f = &big.data;
    assert!(!big.truncated && big.vlan_tci.is_none());
    // The frame is exactly the IPv4 packet its header announces...
    let ip_len = usize::from(u16::from_be_bytes([f[16], f[17]]));
    assert_eq!(
        f.len(),
        ETH_HLEN + ip_len,
        "frame length vs IPv4 total length"
    );
    // ...and its payload is a continuous piece of the stream, to the last octet.
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let doff = usize::from(f[14 + ihl + 12] >> 4) * 4;
    let payload = &f[ETH_HLEN + ihl + doff..];
    assert!(payload.len() > 60_000);
    let first = usize::from(payload[0]);
    let bad = payload
        .iter()
        .enumerate()
        .position(|(j, &b)| b != stream_byte(first + j));
    assert_eq!(bad, None, "payload of the {}-octet frame intact", f.len());
    rx.stats()
}

const ETH_HLEN: usize = 14;

#[test]
fn root_afpacket_v2_frame_longer_than_its_slot_is_flagged_truncated() {
    require_root();
    let (ns, a, b) = veth_ns("trunc", 9000);
    let ring = RxRing::V2 {
        frame_size: 2048,
        frame_count: 16,
    };
    let fit = ring.max_frame_len();
    assert_eq!(fit, 2048 - 66);
    let (mut tx, mut rx) = open_pair(&ns, &a, &b, TxConfig::default(), ring);
    assert_eq!(rx.geometry().frame_size, 2048);
    let magic = 0x5452_554E;
    let sizes = [fit, fit + 1, 9014, 100];
    let frames: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| test_frame(magic, i as u32, n))
        .collect();
    send_all(&mut tx, &frames, 8);
    let got = collect(&mut rx, 4, Duration::from_secs(5), &magic_is(magic));
    assert_eq!(got.len(), 4);
    for (g, f) in got.iter().zip(&frames) {
        let whole = f.len() <= fit;
        assert_eq!(g.truncated, !whole, "{} octets", f.len());
        assert_eq!(g.data.len(), f.len().min(fit), "{} octets", f.len());
        assert!(
            f.starts_with(&g.data),
            "{} octets: a prefix of the frame",
            f.len()
        );
    }
    assert_eq!(rx.stats().truncated, 2);
}

/// With `copy_oversized`, frames longer than a slot come whole (through the socket
/// queue), in ring order among the others, with the VLAN tag the kernel stripped still
/// reported.
#[test]
fn root_afpacket_v2_copy_path_delivers_frames_longer_than_a_slot_whole_and_in_order() {
    require_root();
    let (ns, a, b) = veth_ns("copy", 9000);
    let cfg = RxConfig {
        ring: RxRing::V2 {
            frame_size: 2048,
            frame_count: 16,
        },
        copy_oversized: true,
        ..RxConfig::default()
    };
    let fit = cfg.ring.max_frame_len();
    let (ta, rb) = (a.clone(), b.clone());
    let (mut tx, mut rx) = ns.run(move || {
        let ti = Interface::lookup(&ta).unwrap();
        let ri = Interface::lookup(&rb).unwrap();
        (
            AfPacketTx::open(&ti, &TxConfig::default()).unwrap(),
            AfPacketRx::open(&ri, &cfg).unwrap(),
        )
    });
    let magic = 0x434F_5059;
    let sizes = [fit, fit + 1, 9014, 100, 5000, 60, 9014, fit];
    let mut frames: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| test_frame(magic, i as u32, n))
        .collect();
    // One long frame with an 802.1Q tag (the kernel strips it and reports its TCI).
    let mut tagged = test_frame(magic, sizes.len() as u32, 7000);
    tagged.splice(12..12, [0x81, 0x00, 0x20, 0x07]);
    frames.push(tagged);
    // More than the ring holds, in bursts the reader keeps up with.
    for round in 0..3 {
        send_all(&mut tx, &frames, 4);
        // The tagged frame is seen without its tag, so it passes the filter too.
        let got = collect(
            &mut rx,
            frames.len(),
            Duration::from_secs(5),
            &magic_is(magic),
        );
        assert_eq!(got.len(), frames.len(), "round {round}");
        for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
            assert!(!g.truncated, "round {round}, frame {i}: {} octets", f.len());
            if i < sizes.len() {
                assert!(g.data == *f, "round {round}, frame {i}: {} octets", f.len());
                assert_eq!(g.vlan_tci, None);
            } else {
                assert_eq!(g.vlan_tci, Some(0x2007));
                assert_eq!(g.data[..12], f[..12]);
                assert_eq!(g.data[12..], f[16..], "tagged frame intact");
            }
        }
    }
    let st = rx.stats();
    // fit + 1, 9014, 5000, 9014 and the tagged 7000 in each of 3 rounds.
    assert_eq!(st.copied, 15, "{st:?}");
    assert_eq!((st.truncated, st.copy_lost), (0, 0), "{st:?}");
}

#[test]
fn root_afpacket_v2_full_ring_drops_the_excess_and_counts_it() {
    require_root();
    let (ns, a, b) = veth_ns("full", 1500);
    let (mut tx, mut rx) = open_pair(&ns, &a, &b, TxConfig::default(), RxRing::v2());
    let cap = rx.geometry().frame_count();
    let _ = rx.kernel_stats().unwrap(); // start counting from here
    let magic = 0x4655_4C4C;
    let n = cap + 100;
    let frames: Vec<Vec<u8>> = (0..n as u32).map(|i| test_frame(magic, i, 200)).collect();
    // Nobody reads while the burst arrives.
    send_all(&mut tx, &frames, 64);
    std::thread::sleep(Duration::from_millis(100));
    let got = collect(&mut rx, n, Duration::from_millis(300), &magic_is(magic));
    let seqs: Vec<u32> = got
        .iter()
        .map(|g| parse_test_frame(&g.data).unwrap().1)
        .collect();
    // The first frames fill the ring (a few slots may hold the interfaces' own IPv6
    // chatter); the rest is dropped, in the kernel's counters.
    assert!(
        seqs.len() <= cap && seqs.len() + 10 >= cap,
        "{} of {n} frames through a ring of {cap} slots",
        seqs.len()
    );
    assert_eq!(seqs, (0..seqs.len() as u32).collect::<Vec<_>>());
    let k = rx.kernel_stats().unwrap();
    assert!(k.drops as usize >= n - cap, "{k:?}");
    assert_eq!(k.freezes, 0);
    // Once drained, the ring takes frames again.
    let more: Vec<Vec<u8>> = (0..20).map(|i| test_frame(magic + 1, i, 200)).collect();
    send_all(&mut tx, &more, 64);
    let got = collect(&mut rx, 20, Duration::from_secs(5), &magic_is(magic + 1));
    assert_eq!(got.len(), 20);
}

/// Times from handing one frame to the kernel until `recv_batch`, blocked in `poll()`
/// with a 100 ms timeout in another thread, returned it: `tries` frames, one at a time.
fn idle_latencies(ring: RxRing, tries: usize) -> Vec<Duration> {
    let (ns, a, b) = veth_ns("lat", 1500);
    let (mut tx, mut rx) = open_pair(&ns, &a, &b, TxConfig::default(), ring);
    let magic = 0x4C41_5400;
    let (to_main, from_rx) = std::sync::mpsc::channel::<Instant>();
    let mut out = std::thread::scope(|s| {
        s.spawn(move || {
            let keep = magic_is(magic);
            let t0 = Instant::now();
            let mut got = 0;
            while got < tries && t0.elapsed() < Duration::from_secs(30) {
                let mut hit = false;
                rx.recv_batch(64, Duration::from_millis(100), &mut |f| hit |= keep(f.data))
                    .expect("recv_batch");
                if hit {
                    got += 1;
                    if to_main.send(Instant::now()).is_err() {
                        break;
                    }
                }
            }
        });
        let mut out = Vec::new();
        for i in 0..tries {
            // Let the receiver get back into poll().
            std::thread::sleep(Duration::from_millis(3));
            let frame = test_frame(magic, i as u32, 100);
            let t0 = Instant::now();
            send_all(&mut tx, std::slice::from_ref(&frame), 1);
            let t1 = from_rx
                .recv_timeout(Duration::from_secs(1))
                .unwrap_or_else(|_| panic!("{ring:?}: frame {i} not received within 1 s"));
            out.push(t1.saturating_duration_since(t0));
        }
        out
    });
    out.sort();
    out
}

/// Not a benchmark: a V2 ring must not wait for anything like the V3 block timeout
/// (1 ms). A median over 20 frames shrugs off a few late wake-ups; a machine too loaded
/// to wake a thread within 500 us for most of 3 rounds of 20 fails it.
#[test]
fn root_afpacket_v2_idle_latency_is_far_below_the_v3_block_timeout() {
    require_root();
    const LIMIT: Duration = Duration::from_micros(500);
    let show = |v: &[Duration]| {
        format!(
            "min {:?}, median {:?}, max {:?}",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        )
    };
    let v3 = idle_latencies(RxRing::v3(), 20);
    eprintln!("V3 (1 ms block timeout) idle latency: {}", show(&v3));
    let mut best = Duration::MAX;
    for round in 1..=3 {
        let v2 = idle_latencies(RxRing::v2(), 20);
        eprintln!("V2 idle latency, round {round}: {}", show(&v2));
        best = best.min(v2[v2.len() / 2]);
        if best < LIMIT {
            break;
        }
    }
    assert!(
        best < LIMIT,
        "V2 idle latency median {best:?} (best of 3 rounds) is not below {LIMIT:?}"
    );
}

// ---- interface helpers ----------------------------------------------------------------

/// Checks that the forwarder's ioctl view of `dev`'s offloads (`ETHTOOL_GFEATURES`)
/// agrees with the kernel's ethtool netlink family (what `ethtool -k` reads) on every
/// offload the kernel knows; returns the ioctl view.
fn offloads_agree(ns: &Netns, dev: &str) -> Offloads {
    let d = dev.to_owned();
    let o = ns.run(move || Offloads::read(&d).unwrap());
    let f = ethtool::features(ns.name(), dev).unwrap();
    assert!(o.states.len() >= 10, "{o:?}");
    for s in &o.states {
        let name = s.offload.kernel_name();
        assert_eq!(s.active, f.is_on(name), "{name} active: {o:?}\n{f:?}");
        assert_eq!(
            s.requested,
            f.wanted.contains(name),
            "{name} requested: {f:?}"
        );
        let changeable = f.hw.contains(name) && !f.nochange.contains(name);
        assert_eq!(s.changeable, changeable, "{name} changeable: {f:?}");
    }
    o
}

/// The kernel feature names of a word of `ethtool -K` (ethtool's legacy short names;
/// any other word is a kernel name).
fn ethtool_word_features(word: &str) -> Vec<&str> {
    match word {
        "gro" => vec!["rx-gro"],
        "lro" => vec!["rx-lro"],
        "gso" => vec!["tx-generic-segmentation"],
        "tso" => vec![
            "tx-tcp-segmentation",
            "tx-tcp-ecn-segmentation",
            "tx-tcp-mangleid-segmentation",
            "tx-tcp6-segmentation",
        ],
        "rxvlan" => vec!["rx-vlan-hw-parse"],
        "txvlan" => vec!["tx-vlan-hw-insert"],
        other => vec![other],
    }
}

/// The forwarder's offload code (ioctls) against the kernel's ethtool netlink family: a
/// second, independent way in. Both must see the same states; what one turns off or on
/// the other must see; and the `ethtool -K` command the forwarder suggests, applied
/// word by word as ethtool would, must leave nothing on.
#[test]
fn root_offloads_read_and_clear_on_veth() {
    require_root();
    let (ns, a, _b) = veth_ns("offl", 1500);
    let before = offloads_agree(&ns, &a);
    eprintln!("veth offloads before: {:?}", before.enabled());
    // veth turns TSO on by default, so there is something to clear.
    assert!(before.is_on(Offload::Tso), "{before:?}");
    match before.require_off().err() {
        Some(SetupError::OffloadsOn {
            command, features, ..
        }) => {
            assert!(
                command.starts_with(&format!("ethtool -K {a} ")),
                "{command}"
            );
            assert!(command.contains("tso off"), "{command}");
            assert!(features.iter().any(|f| f == "tx-tcp-segmentation"));
        }
        other => panic!("expected OffloadsOn, got {other:?}"),
    }
    let an = a.clone();
    let after = ns.run(move || Offloads::disable_all(&an).unwrap());
    assert!(
        after.enabled().is_empty(),
        "still on: {:?}",
        after.enabled()
    );
    assert!(after.require_off().is_ok());
    let seen = offloads_agree(&ns, &a);
    assert!(seen.enabled().is_empty(), "{seen:?}");

    // On again through netlink; the ioctl view sees it.
    let on = [
        "rx-gro",
        "tx-generic-segmentation",
        "tx-tcp-segmentation",
        "rx-vlan-hw-parse",
        "tx-vlan-hw-insert",
    ];
    let changes: Vec<(&str, bool)> = on.iter().map(|n| (*n, true)).collect();
    ethtool::set_features(ns.name(), &a, &changes).unwrap();
    let o = offloads_agree(&ns, &a);
    for x in [
        Offload::Gro,
        Offload::Gso,
        Offload::Tso,
        Offload::RxVlan,
        Offload::TxVlan,
    ] {
        assert!(o.is_on(x), "{x} not on after FEATURES_SET: {o:?}");
    }

    // The suggested command, word by word, through netlink: nothing stays on.
    let cmd = o.ethtool_command().unwrap();
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(words[..3], ["ethtool", "-K", a.as_str()], "{cmd}");
    assert!(words.len() > 3 && words.len() % 2 == 1, "{cmd}");
    let mut off: Vec<(&str, bool)> = Vec::new();
    for pair in words[3..].chunks(2) {
        assert_eq!(pair[1], "off", "{cmd}");
        off.extend(
            ethtool_word_features(pair[0])
                .into_iter()
                .map(|n| (n, false)),
        );
    }
    ethtool::set_features(ns.name(), &a, &off).unwrap();
    let o = offloads_agree(&ns, &a);
    assert!(o.enabled().is_empty(), "`{cmd}` left on: {:?}", o.enabled());
}

#[test]
fn root_interface_lookup_up_and_mtu() {
    require_root();
    let ns = Netns::new("mtu");
    let (a, b) = ifnames();
    link::add_veth(ns.name(), &a, ns.name(), &b, &Veth::default()).unwrap();
    link::set_mac(ns.name(), &a, [0x02, 0x11, 0x22, 0x33, 0x44, 0x55]).unwrap();
    let (an, bn) = (a.clone(), b.clone());
    ns.run(move || {
        let mut i = Interface::lookup(&an).unwrap();
        assert!(i.index > 0);
        assert_eq!(i.mac, Some(MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55])));
        assert!(!i.is_up());
        assert!(matches!(i.require_up(), Err(SetupError::Down { .. })));
        i.set_up().unwrap();
        assert!(i.is_up());
        // The peer is still down, so there is no carrier.
        let e = i.require_up().unwrap_err();
        assert!(matches!(e, SetupError::NotRunning { .. }), "{e}");
        Interface::lookup(&bn).unwrap().set_up().unwrap();
        let t0 = Instant::now();
        while !i.is_running() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
            i.refresh().unwrap();
        }
        assert!(i.require_up().is_ok());

        assert_eq!(i.mtu, 1500);
        let e = i.require_mtu(1532).unwrap_err().to_string();
        assert!(e.contains(&format!("ip link set dev {an} mtu 1532")), "{e}");
        i.set_mtu(9000).unwrap();
        assert_eq!(i.mtu, 9000);
        assert_eq!(Interface::lookup(&an).unwrap().mtu, 9000);
        assert!(i.require_mtu(1532).is_ok());
        // Out of range for veth: the error names the interface and the operation.
        let e = i.set_mtu(70000).unwrap_err().to_string();
        assert!(e.contains(&an) && e.contains("SIOCSIFMTU"), "{e}");
        assert!(matches!(
            Interface::lookup("nonexistent0"),
            Err(SetupError::NoSuchInterface { .. })
        ));
    });
}

// ---- control socket -----------------------------------------------------------------

#[test]
fn root_control_socket_sends_and_receives_eapol_only() {
    require_root();
    let (ns, a, b) = veth_ns("eapol", 1500);
    let (an, bn) = (a.clone(), b.clone());
    let (sa, sb, mut tx) = ns.run(move || {
        let ia = Interface::lookup(&an).unwrap();
        let ib = Interface::lookup(&bn).unwrap();
        (
            ControlSocket::open_eapol(&ia).unwrap(),
            ControlSocket::open_eapol(&ib).unwrap(),
            AfPacketTx::open(&ia, &TxConfig::default()).unwrap(),
        )
    });
    assert_eq!(sb.ethertype(), macsec::wire::ethernet::ethertype::EAPOL);
    // Something else first: the control socket must not see it.
    send_all(&mut tx, &[test_frame(1, 1, 64)], 1);
    let mut mkpdu = MacAddr::PAE_GROUP.0.to_vec();
    mkpdu.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0a]);
    mkpdu.extend_from_slice(&macsec::wire::ethernet::ethertype::EAPOL.to_be_bytes());
    mkpdu.extend_from_slice(&[3, 5, 0, 4, 1, 2, 3, 4]); // version 3, type MKA, body
    sa.send(&mkpdu).unwrap();
    let mut buf = [0u8; 1600];
    let got = sb
        .recv(&mut buf, Duration::from_secs(5))
        .unwrap()
        .expect("an MKPDU");
    assert!(!got.truncated);
    assert_eq!(&buf[..got.len], &mkpdu[..]);
    // Nothing else arrives, and the sender does not read back its own frame.
    let t0 = Instant::now();
    assert_eq!(sb.recv(&mut buf, Duration::from_millis(100)).unwrap(), None);
    assert!(t0.elapsed() >= Duration::from_millis(90));
    assert_eq!(sa.recv(&mut buf, Duration::from_millis(100)).unwrap(), None);
    // A frame longer than the buffer is reported as truncated.
    let mut big = mkpdu.clone();
    big.resize(200, 0xAA);
    sa.send(&big).unwrap();
    let got = sb
        .recv(&mut buf[..64], Duration::from_secs(5))
        .unwrap()
        .unwrap();
    assert!(got.truncated && got.len == 64 && got.orig_len == 200);
}

/// `[mka] vlan`: the KaY's socket takes MKPDUs of its VLAN only (or untagged ones only),
/// reports the tag the kernel removed, and ignores other EtherTypes on that VLAN.
#[test]
fn root_kay_socket_takes_mkpdus_of_its_vlan_only() {
    require_root();
    let (ns, a, b) = veth_ns("kayvlan", 1500);
    let (an, bn) = (a.clone(), b.clone());
    let (sa, on100, untagged) = ns.run(move || {
        let ia = Interface::lookup(&an).unwrap();
        let ib = Interface::lookup(&bn).unwrap();
        (
            ControlSocket::open(&ia, 0x0003).unwrap(), // sends any frame as it is
            ControlSocket::open_for_kay(&ib, macsec::wire::ethernet::ethertype::EAPOL, Some(100))
                .unwrap(),
            ControlSocket::open_for_kay(&ib, macsec::wire::ethernet::ethertype::EAPOL, None)
                .unwrap(),
        )
    });
    let frame = |tag: Option<u16>, ethertype: u16, mark: u8| {
        let mut f = MacAddr::PAE_GROUP.0.to_vec();
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0a]);
        if let Some(t) = tag {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&t.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&[3, 5, 0, 4, mark, 2, 3, 4]);
        f.resize(f.len().max(60), 0);
        f
    };
    // VLAN 200, another EtherType on VLAN 100, then the two the sockets want.
    sa.send(&frame(
        Some(200),
        macsec::wire::ethernet::ethertype::EAPOL,
        1,
    ))
    .unwrap();
    sa.send(&frame(Some(100), 0x0800, 2)).unwrap();
    sa.send(&frame(
        Some(0x2064),
        macsec::wire::ethernet::ethertype::EAPOL,
        3,
    ))
    .unwrap(); // PCP 1, VID 100
    sa.send(&frame(None, macsec::wire::ethernet::ethertype::EAPOL, 4))
        .unwrap();
    let mut buf = [0u8; 1600];
    let mut got = |s: &ControlSocket| {
        let mut out = Vec::new();
        while let Some(f) = s.recv(&mut buf, Duration::from_millis(300)).unwrap() {
            out.push((buf[18], f.vlan_id(), buf[12..14].to_vec()));
        }
        out
    };
    // The kernel hands the frame over without its tag; the tag comes in vlan_tci.
    assert_eq!(got(&on100), vec![(3, Some(100), vec![0x88, 0x8E])]);
    assert_eq!(got(&untagged), vec![(4, None, vec![0x88, 0x8E])]);
}

//! Redundant links without root: two forwarders' pumps with two secure links each,
//! joined by in-memory wires through relays the test controls (drop everything, random
//! loss, reordering), with a link monitor per link and a selector per end driven on a
//! simulated clock. Probes travel protected, inside the links' SecYs, like frames.
//!
//! ```text
//! host A -> [F1 protect] =link0=> relay -> [F2 validate] -> host B
//!                        =link1=> relay ->
//! host A <- [F1 validate] <=link0= relay <- [F2 protect] <- host B
//!                         <=link1= relay <-
//! ```

use std::time::{Duration, Instant};

use macsec::crypto::SecretKey;
use macsec::secy::{SecY, SecYConfig};
use macsec::wire::{MacAddr, Sci};
use macsec_forward::forward::pump::{ProbeIn, ProtectPump, ValidatePump};
use macsec_forward::io::RxPort;
use macsec_forward::monitor::link::{Monitor, MonitorConfig, State};
use macsec_forward::monitor::select::{LinkView, Mode, RedundancyConfig, Selector};
use macsec_testkit::mem::{wire, MemRx, MemTx, WireConfig};

const LINKS: usize = 2;
const STEP: Duration = Duration::from_millis(1);
const Z: Duration = Duration::ZERO;

fn mac(end: u8, link: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, end, link]
}

fn sci(end: u8, link: u8) -> Sci {
    Sci::new(MacAddr(mac(end, link)), 1)
}

/// What a relay does to the frames of one direction of one link.
#[derive(Clone, Copy, Default)]
struct Impair {
    /// Drop every frame (the carrier stays up).
    blackhole: bool,
    /// Drop each frame with this probability.
    loss: f64,
    /// Hold each frame back behind the next one with this probability.
    reorder: f64,
}

/// One direction of one link between the two forwarders.
struct Relay {
    from: MemRx,
    to: MemTx,
    impair: Impair,
    rng: u64,
    held: Option<Vec<u8>>,
    passed: u64,
    dropped: u64,
}

impl Relay {
    fn chance(&mut self, p: f64) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }

    fn pump(&mut self) {
        let mut frames = Vec::new();
        let _ = self
            .from
            .recv_batch(256, Z, &mut |f| frames.push(f.data.to_vec()));
        for f in frames {
            let p = self.impair;
            if p.blackhole || self.chance(p.loss) {
                self.dropped += 1;
                continue;
            }
            if self.held.is_none() && self.chance(p.reorder) {
                self.held = Some(f);
                continue;
            }
            self.send(&f);
            if let Some(h) = self.held.take() {
                self.send(&h);
            }
        }
        let _ = macsec_forward::io::TxPort::flush(&mut self.to);
    }

    fn send(&mut self, f: &[u8]) {
        self.passed += 1;
        let _ = self.to.send_frame(f);
    }
}

/// One forwarder: its pumps, a monitor per link, its selector.
struct End {
    protect: ProtectPump<MemRx, MemTx>,
    validate: ValidatePump<MemRx, MemTx>,
    probes: crossbeam::channel::Receiver<ProbeIn>,
    monitors: Vec<Monitor>,
    selector: Selector,
    failovers: Vec<String>,
}

impl End {
    fn step(&mut self, now: Instant) {
        self.protect.run_batch(Z).unwrap();
        self.validate.run_batch(Z).unwrap();
        // The pumps stamp probes with the real clock; this test runs on a simulated one.
        while let Ok(p) = self.probes.try_recv() {
            let _ = self.monitors[p.link].on_probe(now, p.payload());
        }
        for (i, m) in self.monitors.iter_mut().enumerate() {
            m.handle_timeout(now);
            while let Some(p) = m.poll_transmit(now) {
                assert!(self.protect.send_probe(i, &p.encode()));
            }
            while m.poll_event().is_some() {}
            self.selector.set_link(i, LinkView::of(m));
        }
        self.protect.flush();
        if self.selector.update(now) {
            self.protect.set_path(self.selector.path());
        }
        while let Some(f) = self.selector.poll_event() {
            self.failovers.push(f.reason.to_string());
        }
    }

    fn state(&self, i: usize) -> State {
        self.monitors[i].state()
    }
}

struct Lab {
    a: End,
    b: End,
    /// Host A's frames into F1's plain port, and what F2 delivers to host B.
    host_a: MemTx,
    host_b: MemRx,
    /// `ab[i]`: link i from F1 to F2; `ba[i]`: back.
    ab: Vec<Relay>,
    ba: Vec<Relay>,
    now: Instant,
    /// Host B's sending end and host A's receiving end, kept so the wires stay open.
    _idle: (MemTx, MemRx),
    /// Sequence number of the next frame host A sends, and when each arrived at B.
    seq: u32,
    arrivals: Vec<(u32, Instant)>,
}

fn link_key(from: u8, link: u8) -> SecretKey {
    SecretKey::from_slice(&[from.wrapping_mul(16) ^ link ^ 0x5A; 16]).unwrap()
}

/// A forwarder `end` (1 or 2) whose peer is `peer`; returns it with the link wires'
/// ends the relays use: (frames it sends per link, frames it receives per link).
fn forwarder(
    end: u8,
    peer: u8,
    cfg: MonitorConfig,
    red: RedundancyConfig,
    host_in: MemRx,
    host_out: MemTx,
) -> (End, Vec<MemRx>, Vec<MemTx>) {
    let mut protect = ProtectPump::new(host_in, 1500);
    let mut validate = ValidatePump::new(host_out, 1500, 0);
    let (ptx, prx) = crossbeam::channel::bounded(1024);
    validate.set_probe_sink(ptx);
    let (mut outs, mut ins) = (Vec::new(), Vec::new());
    let now = Instant::now();
    let mut monitors = Vec::new();
    for l in 0..LINKS as u8 {
        let mut c = SecYConfig::new(sci(end, l));
        // Reordered frames must get past replay protection to be counted as received.
        c.replay_window = 64;
        let mut y = SecY::new(c).unwrap();
        y.tx.install_sa(0, &link_key(end, l), 1, None).unwrap();
        y.rx.add_sc(sci(peer, l)).unwrap();
        y.rx.install_sa(sci(peer, l), 0, &link_key(peer, l), 1, None)
            .unwrap();
        let (tx_half, rx_half) = y.split();
        let (out_tx, out_rx) = wire(&WireConfig::default());
        let (in_tx, in_rx) = wire(&WireConfig::default());
        protect.add_link(out_tx, tx_half, MacAddr(mac(end, l)));
        validate.add_link(in_rx, rx_half);
        outs.push(out_rx);
        ins.push(in_tx);
        let mut m = Monitor::new(cfg, u64::from(end) << 8 | u64::from(l), now).unwrap();
        m.set_carrier(now, true);
        m.set_secured(now, true);
        monitors.push(m);
    }
    let selector = Selector::new(red, &[1, 2]).unwrap();
    let e = End {
        protect,
        validate,
        probes: prx,
        monitors,
        selector,
        failovers: Vec::new(),
    };
    (e, outs, ins)
}

/// Host A's frame `seq` of flow `flow`: UDP/IPv4, so the flow hash sees its ports.
fn frame(flow: u16, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0xBB]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0xAA]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&(1000 + flow).to_be_bytes());
    f[36..38].copy_from_slice(&5201u16.to_be_bytes());
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    f
}

impl Lab {
    fn new(cfg: MonitorConfig, red: RedundancyConfig) -> Lab {
        let (host_a, a_in) = wire(&WireConfig::default());
        let (a_out, host_a_rx) = wire(&WireConfig::default());
        let (host_b_tx, b_in) = wire(&WireConfig::default());
        let (b_out, host_b) = wire(&WireConfig::default());
        let (a, a_links_out, a_links_in) = forwarder(1, 2, cfg, red, a_in, a_out);
        let (b, b_links_out, b_links_in) = forwarder(2, 1, cfg, red, b_in, b_out);
        let relay = |from, to, seed| Relay {
            from,
            to,
            impair: Impair::default(),
            rng: seed,
            held: None,
            passed: 0,
            dropped: 0,
        };
        let mut ab = Vec::new();
        let mut ba = Vec::new();
        for (i, (o, inp)) in a_links_out.into_iter().zip(b_links_in).enumerate() {
            ab.push(relay(o, inp, 0x1234_5678 + i as u64));
        }
        for (i, (o, inp)) in b_links_out.into_iter().zip(a_links_in).enumerate() {
            ba.push(relay(o, inp, 0x8765_4321 + i as u64));
        }
        let mut lab = Lab {
            a,
            b,
            host_a,
            host_b,
            ab,
            ba,
            now: Instant::now(),
            _idle: (host_b_tx, host_a_rx),
            seq: 0,
            arrivals: Vec::new(),
        };
        // The selector's first decision before any frame.
        lab.run(STEP, None, 1);
        lab
    }

    /// Host A sends a frame of flow `flow`.
    fn send_a(&mut self, flow: u16) {
        let f = frame(flow, self.seq);
        self.seq += 1;
        self.host_a.send_frame(&f).unwrap();
        macsec_forward::io::TxPort::flush(&mut self.host_a).unwrap();
    }
    /// Runs for `d` of simulated time; host A sends a frame of one of `flows` flows
    /// every `every`.
    fn run(&mut self, d: Duration, every: Option<Duration>, flows: u16) {
        let end = self.now + d;
        let mut next_send = self.now;
        while self.now < end {
            if let Some(e) = every {
                if self.now >= next_send {
                    self.send_a(self.seq as u16 % flows.max(1));
                    next_send += e;
                }
            }
            let now = self.now;
            self.a.step(now);
            self.ab.iter_mut().for_each(Relay::pump);
            self.ba.iter_mut().for_each(Relay::pump);
            self.b.step(now);
            self.ab.iter_mut().for_each(Relay::pump);
            self.ba.iter_mut().for_each(Relay::pump);
            self.a.step(now);
            let mut got = Vec::new();
            let _ = self.host_b.recv_batch(256, Z, &mut |f| {
                if f.data.len() >= 46 {
                    got.push(u32::from_be_bytes(f.data[42..46].try_into().unwrap()));
                }
            });
            self.arrivals.extend(got.into_iter().map(|s| (s, now)));
            self.now += STEP;
        }
    }

    /// The longest time between two consecutive arrivals at host B after `since`.
    fn longest_gap_since(&self, since: Instant) -> Duration {
        let t: Vec<Instant> = self
            .arrivals
            .iter()
            .map(|a| a.1)
            .filter(|t| *t >= since)
            .collect();
        t.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    }

    /// Frames F1 sent on link `i` (data frames, not probes).
    fn sent_on(&self, i: usize) -> u64 {
        self.a.protect.link(i).unwrap().counters().frames_out
    }
}

fn cfg(interval_ms: u64, window_s: u64) -> MonitorConfig {
    MonitorConfig {
        probe_interval_ms: interval_ms,
        probe_miss: 3,
        loss_window_s: window_s,
        max_loss: 0.05,
        max_rtt_ms: 0,
    }
}

fn active_backup(hold_up_ms: u64) -> RedundancyConfig {
    RedundancyConfig {
        mode: Mode::ActiveBackup,
        hold_up_ms,
    }
}

#[test]
fn silent_failure_moves_traffic_within_the_probe_budget_and_back_after_hold_up() {
    let mut lab = Lab::new(cfg(20, 2), active_backup(300));
    lab.run(Duration::from_secs(1), Some(Duration::from_millis(2)), 1);
    for e in [&lab.a, &lab.b] {
        assert_eq!((e.state(0), e.state(1)), (State::Up, State::Up));
        assert!(e.monitors.iter().all(Monitor::monitor_active));
    }
    assert!(
        lab.sent_on(0) > 400 && lab.sent_on(1) == 0,
        "{} {}",
        lab.sent_on(0),
        lab.sent_on(1)
    );
    let delivered = lab.arrivals.len();
    assert_eq!(delivered as u32, lab.seq, "nothing lost on clean links");

    // Link 0 drops everything in both directions; its carrier stays up.
    let t0 = lab.now;
    lab.ab[0].impair.blackhole = true;
    lab.ba[0].impair.blackhole = true;
    lab.run(Duration::from_secs(1), Some(Duration::from_millis(2)), 1);
    for e in [&lab.a, &lab.b] {
        assert_eq!((e.state(0), e.state(1)), (State::Down, State::Up));
    }
    let gap = lab.longest_gap_since(t0);
    // (probe_miss + 1) x probe_interval, plus one step of this simulation.
    assert!(gap <= Duration::from_millis(4 * 20 + 2), "gap {gap:?}");
    assert_eq!(
        lab.a.failovers,
        ["link up", "link down"],
        "{:?}",
        lab.a.failovers
    );
    let on1 = lab.sent_on(1);
    assert!(on1 > 400, "{on1}");

    // Healed: link 0 comes back up, and takes traffic back only after the hold-up.
    lab.ab[0].impair.blackhole = false;
    lab.ba[0].impair.blackhole = false;
    let healed = lab.now;
    lab.run(
        Duration::from_millis(250),
        Some(Duration::from_millis(2)),
        1,
    );
    assert_eq!(lab.a.state(0), State::Up);
    let before_hold = lab.sent_on(0);
    lab.run(
        Duration::from_millis(400),
        Some(Duration::from_millis(2)),
        1,
    );
    assert!(lab.sent_on(0) > before_hold, "failback after the hold-up");
    assert_eq!(lab.a.failovers.last().map(String::as_str), Some("failback"));
    assert!(
        lab.longest_gap_since(healed) <= Duration::from_millis(4),
        "failback loses nothing"
    );
    // No probe ever reached host B: every arrival is one of host A's frames.
    assert!(lab.arrivals.iter().all(|(s, _)| *s < lab.seq));
}

#[test]
fn probe_statistics_measure_loss_each_way_and_ignore_reordering() {
    let mut lab = Lab::new(cfg(10, 4), active_backup(0));
    // Link 1: 20 % loss from F1 to F2 only, and reordering both ways.
    lab.ab[1].impair.loss = 0.2;
    lab.ab[1].impair.reorder = 0.2;
    lab.ba[1].impair.reorder = 0.2;
    // Link 0: reordering only.
    lab.ab[0].impair.reorder = 0.3;
    lab.ba[0].impair.reorder = 0.3;
    lab.run(Duration::from_secs(6), None, 1);
    let f_a = lab.a.monitors[1].figures();
    let f_b = lab.b.monitors[1].figures();
    // F2 sees it as loss on its receive direction, F1 on its transmit direction.
    let (tx_a, rx_b) = (f_a.loss_tx.unwrap(), f_b.loss_rx.unwrap());
    eprintln!("F1 {f_a}\nF2 {f_b}");
    for l in [tx_a, rx_b] {
        assert!((l - 0.2).abs() < 0.08, "measured {l} for 20 % loss");
    }
    assert!(f_a.loss_rx.unwrap() < 0.01 && f_b.loss_tx.unwrap() < 0.01);
    assert_eq!(
        (lab.a.state(1), lab.b.state(1)),
        (State::Degraded, State::Degraded)
    );
    // Reordering alone is not loss.
    for e in [&lab.a, &lab.b] {
        let f = e.monitors[0].figures();
        assert!(
            f.loss_rx.unwrap() < 0.01 && f.loss_tx.unwrap() < 0.01,
            "{f}"
        );
        assert_eq!(e.state(0), State::Up);
    }
    assert!(lab.ab[0].passed > 500 && lab.ab[1].dropped > 50);
}

#[test]
fn balance_spreads_flows_and_moves_only_the_failed_links_flows() {
    let red = RedundancyConfig {
        mode: Mode::Balance,
        hold_up_ms: 200,
    };
    let mut lab = Lab::new(cfg(20, 2), red);
    lab.run(Duration::from_secs(1), None, 1);
    lab.run(Duration::from_secs(2), Some(Duration::from_millis(1)), 64);
    let (l0, l1) = (lab.sent_on(0), lab.sent_on(1));
    assert!(l0 > 400 && l1 > 400, "both links carry flows: {l0} {l1}");
    // The link of each flow while both links carry traffic.
    let link_of: Vec<usize> = (0..64)
        .map(|flow| lab.a.selector.pick_frame(&frame(flow, 0)).unwrap())
        .collect();
    assert!(link_of.contains(&0) && link_of.contains(&1));
    let before = (l0, l1);
    lab.ab[1].impair.blackhole = true;
    lab.ba[1].impair.blackhole = true;
    let t0 = lab.now;
    lab.run(Duration::from_secs(1), Some(Duration::from_millis(1)), 64);
    assert_eq!(lab.a.state(1), State::Down);
    let gained0 = lab.sent_on(0) - before.0;
    assert!(gained0 > 900, "link 0 carries every flow now: {gained0}");
    // Frames lost only during detection, and only of link 1's flows.
    let arrived: std::collections::HashSet<u32> = lab.arrivals.iter().map(|a| a.0).collect();
    let lost: Vec<u32> = (0..lab.seq).filter(|s| !arrived.contains(s)).collect();
    assert!(!lost.is_empty() && lost.len() < 90, "lost {}", lost.len());
    for s in &lost {
        assert_eq!(
            link_of[(*s % 64) as usize],
            1,
            "frame {s} of a link-0 flow was lost"
        );
    }
    let _ = t0;
}

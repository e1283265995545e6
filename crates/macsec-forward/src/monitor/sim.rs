//! Scenario tests: two monitors joined by in-memory wires, driven by a simulated clock.

use super::link::{Event, Monitor, MonitorConfig, Reason, State};
use super::probe::LEN;
use super::select::{FailoverReason, LinkView, RedundancyConfig, Selector};
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// splitmix64: a small deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    fn upto(&mut self, d: Duration) -> Duration {
        d.mul_f64(self.unit())
    }
}

/// One direction of a link.
struct Wire {
    loss: f64,
    /// Drop every n-th frame (0: off).
    drop_every: u64,
    delay: Duration,
    /// Extra uniform delay per frame; above the probe interval it reorders.
    jitter: Duration,
    duplicate: f64,
    blackhole: bool,
    rng: Rng,
    sent: u64,
    last_sent: Option<[u8; LEN]>,
    queue: Vec<(Instant, [u8; LEN])>,
}

impl Wire {
    fn new(seed: u64) -> Wire {
        Wire {
            loss: 0.0,
            drop_every: 0,
            delay: ms(1),
            jitter: Duration::ZERO,
            duplicate: 0.0,
            blackhole: false,
            rng: Rng(seed),
            sent: 0,
            last_sent: None,
            queue: Vec::new(),
        }
    }

    fn send(&mut self, now: Instant, f: [u8; LEN]) {
        self.sent += 1;
        self.last_sent = Some(f);
        let lost = self.rng.chance(self.loss);
        if self.blackhole
            || lost
            || (self.drop_every > 0 && self.sent.is_multiple_of(self.drop_every))
        {
            return;
        }
        let copies = if self.rng.chance(self.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = now + self.delay + self.rng.upto(self.jitter);
            self.queue.push((at, f));
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.queue.iter().map(|(t, _)| *t).min()
    }

    fn pop_due(&mut self, now: Instant) -> Option<[u8; LEN]> {
        let (i, _) = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| *t <= now)
            .min_by_key(|(_, (t, _))| *t)?;
        Some(self.queue.remove(i).1)
    }
}

/// One end: a monitor, and whether it sends probes at all.
struct End {
    mon: Monitor,
    mute: bool,
    events: Vec<Event>,
}

impl End {
    fn new(cfg: MonitorConfig, session: u64, now: Instant) -> End {
        let mut mon = Monitor::new(cfg, session, now).unwrap();
        mon.set_carrier(now, true);
        mon.set_secured(now, true);
        End {
            mon,
            mute: false,
            events: Vec::new(),
        }
    }

    fn step(&mut self, now: Instant, out: &mut Wire) {
        self.mon.handle_timeout(now);
        while let Some(p) = self.mon.poll_transmit(now) {
            if !self.mute {
                out.send(now, p.encode());
            }
        }
        self.events
            .extend(std::iter::from_fn(|| self.mon.poll_event()));
    }

    /// The first event into `state` at or after `t`.
    fn first(&self, state: State, t: Instant) -> Option<&Event> {
        self.events.iter().find(|e| e.new == state && e.at >= t)
    }

    fn changes_between(&self, from: Instant, to: Instant) -> usize {
        self.events
            .iter()
            .filter(|e| e.at >= from && e.at < to)
            .count()
    }
}

struct Sim {
    t0: Instant,
    now: Instant,
    cfg: MonitorConfig,
    a: End,
    b: End,
    ab: Wire,
    ba: Wire,
}

impl Sim {
    fn new(cfg: MonitorConfig, seed: u64) -> Sim {
        let t0 = Instant::now();
        Sim {
            t0,
            now: t0,
            cfg,
            a: End::new(cfg, 0xA000 + seed, t0),
            b: End::new(cfg, 0xB000 + seed, t0),
            ab: Wire::new(seed * 2 + 1),
            ba: Wire::new(seed * 2 + 2),
        }
    }

    fn at(&self, s: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(s)
    }

    fn step(&mut self) {
        let now = self.now;
        while let Some(f) = self.ab.pop_due(now) {
            let _ = self.b.mon.on_probe(now, &f);
        }
        while let Some(f) = self.ba.pop_due(now) {
            let _ = self.a.mon.on_probe(now, &f);
        }
        self.a.step(now, &mut self.ab);
        self.b.step(now, &mut self.ba);
    }

    /// Runs every event up to `t`, then sets the clock to `t`.
    fn run_until(&mut self, t: Instant) {
        loop {
            self.step();
            let next = [
                self.a.mon.poll_timeout(),
                self.b.mon.poll_timeout(),
                self.ab.next_at(),
                self.ba.next_at(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(n) if n <= t => self.now = n.max(self.now + Duration::from_micros(1)),
                _ => break,
            }
        }
        self.now = t;
        self.step();
    }

    fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    fn restart_b(&mut self, session: u64) {
        self.b.mon = Monitor::new(self.cfg, session, self.now).unwrap();
        self.b.mon.set_carrier(self.now, true);
        self.b.mon.set_secured(self.now, true);
    }
}

fn both_ways(s: &mut Sim, f: impl Fn(&mut Wire)) {
    f(&mut s.ab);
    f(&mut s.ba);
}

const BOUND_MS: u64 = 400; // (probe_miss + 1) × probe_interval with the defaults

#[test]
fn silent_failure_is_down_at_both_ends_within_bound() {
    let mut worst = [Duration::ZERO; 3];
    for (dir, name) in ["a->b", "b->a", "both"].iter().enumerate() {
        for delay in [1, 5, 10] {
            for phase in 0..10u64 {
                let mut s = Sim::new(MonitorConfig::default(), phase + 100 * delay);
                both_ways(&mut s, |w| w.delay = ms(delay));
                s.run_until(s.at(5.0) + ms(phase * 10 + 3));
                let tf = s.now;
                match dir {
                    0 => s.ab.blackhole = true,
                    1 => s.ba.blackhole = true,
                    _ => both_ways(&mut s, |w| w.blackhole = true),
                }
                s.run_for(ms(1000));
                let da = s.a.first(State::Down, tf).expect("a down");
                let db = s.b.first(State::Down, tf).expect("b down");
                for d in [da.at - tf, db.at - tf] {
                    assert!(
                        d <= ms(BOUND_MS),
                        "{name} delay {delay} phase {phase}: {d:?}"
                    );
                    worst[dir] = worst[dir].max(d);
                }
                let (ra, rb) = match dir {
                    0 => (Reason::PeerNotReceiving, Reason::ProbesLost),
                    1 => (Reason::ProbesLost, Reason::PeerNotReceiving),
                    _ => (Reason::ProbesLost, Reason::ProbesLost),
                };
                assert_eq!((da.reason, db.reason), (ra, rb), "{name}");
                assert_eq!(s.a.mon.state(), State::Down);
                // Heal: both up again, and the outage is not counted as loss.
                both_ways(&mut s, |w| w.blackhole = false);
                let th = s.now;
                s.run_for(ms(2000));
                for e in [&s.a, &s.b] {
                    let up = e.first(State::Up, th).expect("up again");
                    assert!(up.at - th <= ms(300), "{name}: {:?}", up.at - th);
                    let f = e.mon.figures();
                    assert!(f.loss_rx.unwrap_or(0.0) < 0.01, "{name} {f:?}");
                    assert!(f.loss_tx.unwrap_or(0.0) < 0.01, "{name} {f:?}");
                    assert_eq!(e.mon.state(), State::Up);
                }
            }
        }
    }
    println!("worst detection (a->b, b->a, both): {worst:?} (bound {BOUND_MS} ms)");
}

#[test]
fn carrier_loss_and_not_secured_are_down_at_once() {
    let mut s = Sim::new(MonitorConfig::default(), 1);
    s.run_until(s.at(3.0));
    let t = s.now;
    s.a.mon.set_carrier(t, false);
    s.ab.blackhole = true;
    s.ba.blackhole = true;
    s.step();
    let e = s.a.first(State::Down, t).unwrap();
    assert_eq!((e.at, e.reason), (t, Reason::CarrierLost));
    // The far end (its carrier stays up, e.g. behind a switch) sees silence.
    s.run_for(ms(1000));
    let e = s.b.first(State::Down, t).unwrap();
    assert!(e.at - t <= ms(BOUND_MS) && e.reason == Reason::ProbesLost);
    // Carrier back: up at once, probes resume, no loss counted for the outage.
    let t2 = s.now;
    s.a.mon.set_carrier(t2, true);
    both_ways(&mut s, |w| w.blackhole = false);
    s.step();
    assert_eq!(s.a.first(State::Up, t2).unwrap().at, t2);
    s.run_for(ms(3000));
    assert!(s.b.first(State::Up, t2).unwrap().at - t2 <= ms(100));
    assert_eq!((s.a.mon.state(), s.b.mon.state()), (State::Up, State::Up));
    // Not secured.
    let t3 = s.now;
    s.b.mon.set_secured(t3, false);
    s.step();
    assert_eq!(
        (
            s.b.mon.state(),
            s.b.mon.reason(),
            s.b.events.last().unwrap().at
        ),
        (State::Down, Reason::NotSecured, t3)
    );
}

/// Runs one gray failure (10 % loss each way, 30 s window); returns the loss estimate
/// errors at both ends and the number of brief down periods.
fn gray_failure(seed: u64) -> (Vec<f64>, usize, Duration) {
    let cfg = MonitorConfig {
        loss_window_s: 30,
        ..MonitorConfig::default()
    };
    let mut s = Sim::new(cfg, seed);
    s.run_until(s.at(5.0));
    both_ways(&mut s, |w| w.loss = 0.10);
    s.run_until(s.at(95.0));
    let mut errors = Vec::new();
    for e in [&s.a, &s.b] {
        let f = e.mon.figures();
        for l in [f.loss_rx.unwrap(), f.loss_tx.unwrap()] {
            assert!((0.06..=0.14).contains(&l), "seed {seed}: {f:?}");
            errors.push(l - 0.10);
        }
        let deg = e.first(State::Degraded, s.at(5.0)).unwrap();
        assert!(
            deg.at < s.at(20.0),
            "seed {seed}: degraded late {:?}",
            deg.at - s.t0
        );
        assert_eq!(deg.reason, Reason::Loss);
        assert_ne!(e.mon.state(), State::Up);
        assert!(
            !e.events
                .iter()
                .any(|x| x.at >= deg.at && x.new == State::Up),
            "seed {seed}: up during the gray failure"
        );
    }
    let blips =
        s.a.events
            .iter()
            .filter(|e| e.at >= s.at(5.0) && e.new == State::Down)
            .count();
    // Loss removed: up again once the window's loss is at most max_loss / 2.
    let tr = s.now;
    both_ways(&mut s, |w| w.loss = 0.0);
    s.run_for(ms(40_000));
    let up = s.a.first(State::Up, tr).expect("recovers").at - tr;
    assert!(up >= ms(20_000) && up <= ms(31_000), "seed {seed}: {up:?}");
    assert_eq!((s.a.mon.state(), s.b.mon.state()), (State::Up, State::Up));
    (errors, blips, up)
}

#[test]
fn gray_failure_is_measured_and_degraded_then_recovers() {
    let mut all = Vec::new();
    for seed in 1..=8 {
        let (errors, blips, up) = gray_failure(seed);
        println!(
            "seed {seed}: loss errors (a rx, a tx, b rx, b tx) {:?}, down blips {blips}, up {up:?} after loss removed",
            errors.iter().map(|e| format!("{:+.2}%", e * 100.0)).collect::<Vec<_>>()
        );
        all.extend(errors);
    }
    let max = all.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    println!(
        "loss estimate error over 8 seeds: mean {:+.2}%, max |{:.2}|%",
        mean * 100.0,
        max * 100.0
    );
}

#[test]
fn asymmetric_loss_degrades_both_ends() {
    let cfg = MonitorConfig {
        loss_window_s: 30,
        ..MonitorConfig::default()
    };
    let mut s = Sim::new(cfg, 3);
    s.ab.loss = 0.10;
    s.run_until(s.at(60.0));
    let (fa, fb) = (s.a.mon.figures(), s.b.mon.figures());
    assert!((0.06..=0.14).contains(&fa.loss_tx.unwrap()), "{fa:?}");
    assert!((0.06..=0.14).contains(&fb.loss_rx.unwrap()), "{fb:?}");
    assert!(fa.loss_rx.unwrap() < 0.001 && fb.loss_tx.unwrap() < 0.001);
    assert_eq!(
        (s.a.mon.state(), s.b.mon.state()),
        (State::Degraded, State::Degraded)
    );
}

#[test]
fn hysteresis_holds_between_the_thresholds() {
    let cfg = MonitorConfig {
        loss_window_s: 30,
        ..MonitorConfig::default()
    };
    let mut s = Sim::new(cfg, 4);
    let every = |s: &mut Sim, n| both_ways(s, |w| w.drop_every = n);
    every(&mut s, 200); // 0.5 %
    s.run_until(s.at(40.0));
    every(&mut s, 67); // 1.5 %: between max_loss / 2 and max_loss
    s.run_until(s.at(100.0));
    assert_eq!(s.a.changes_between(s.at(0.1), s.at(100.0)), 0);
    every(&mut s, 25); // 4 %
    s.run_until(s.at(140.0));
    assert_eq!(s.a.mon.state(), State::Degraded);
    every(&mut s, 67);
    s.run_until(s.at(200.0));
    assert_eq!(
        s.a.mon.state(),
        State::Degraded,
        "no recovery above max_loss / 2"
    );
    every(&mut s, 200);
    s.run_until(s.at(260.0));
    for e in [&s.a, &s.b] {
        let seq: Vec<_> = e.events.iter().map(|e| (e.old, e.new)).collect();
        assert_eq!(
            seq,
            [
                (State::Down, State::Up),
                (State::Up, State::Degraded),
                (State::Degraded, State::Up)
            ]
        );
    }
}

#[test]
fn random_loss_at_the_threshold_flaps_less_than_the_raw_figure() {
    let cfg = MonitorConfig {
        loss_window_s: 30,
        ..MonitorConfig::default()
    };
    for seed in 1..=4 {
        let mut s = Sim::new(cfg, seed);
        both_ways(&mut s, |w| w.loss = 0.02);
        let (mut crossings, mut over) = (0, false);
        for i in 0..6000 {
            s.run_until(s.at(i as f64 * 0.1));
            let f = s.a.mon.figures();
            let raw = f.loss_rx.unwrap_or(0.0).max(f.loss_tx.unwrap_or(0.0));
            if (raw > 0.02) != over {
                over = !over;
                crossings += 1;
            }
        }
        let degraded =
            s.a.events
                .iter()
                .filter(|e| e.new == State::Degraded && e.old == State::Up)
                .count();
        let changes = s.a.events.len();
        println!(
            "seed {seed}: 2% random loss, 10 min: raw figure crossed 2% {crossings} times; \
             up->degraded {degraded}, state changes {changes}"
        );
        assert!(degraded * 2 <= crossings.max(2), "seed {seed}");
    }
}

#[test]
fn rtt_from_injected_delays() {
    let mut s = Sim::new(MonitorConfig::default(), 5);
    s.ab.delay = ms(3);
    s.ba.delay = ms(7);
    s.run_until(s.at(20.0));
    for e in [&s.a, &s.b] {
        let f = e.mon.figures();
        for v in [f.rtt_last_ms, f.rtt_mean_ms, f.rtt_p99_ms] {
            assert!((v.unwrap() - 10.0).abs() < 0.01, "{f:?}");
        }
        assert!(f.jitter_ms.unwrap() < 0.01);
    }
    both_ways(&mut s, |w| w.jitter = ms(2));
    s.run_until(s.at(40.0));
    for e in [&s.a, &s.b] {
        let f = e.mon.figures();
        let (mean, p99) = (f.rtt_mean_ms.unwrap(), f.rtt_p99_ms.unwrap());
        println!("rtt 3+7 ms + U(0,2) each way: {f}");
        assert!((mean - 12.0).abs() < 0.3, "{f:?}");
        assert!((13.0..=14.01).contains(&p99), "{f:?}");
        assert!((0.5..=1.2).contains(&f.jitter_ms.unwrap()), "{f:?}");
    }
}

#[test]
fn rtt_limit_degrades_and_recovers() {
    let cfg = MonitorConfig {
        max_rtt_ms: 20,
        ..MonitorConfig::default()
    };
    let mut s = Sim::new(cfg, 6);
    both_ways(&mut s, |w| w.delay = ms(5));
    s.run_until(s.at(15.0));
    assert_eq!(s.a.mon.state(), State::Up);
    both_ways(&mut s, |w| w.delay = ms(15));
    s.run_until(s.at(30.0));
    let e = s.a.first(State::Degraded, s.at(15.0)).unwrap();
    assert_eq!(e.reason, Reason::Rtt);
    // The mean passes 20 ms once half the window is at 30 ms.
    assert!(e.at - s.at(15.0) < ms(6000), "{:?}", e.at - s.at(15.0));
    both_ways(&mut s, |w| w.delay = ms(5));
    s.run_until(s.at(50.0));
    let up = s.a.first(State::Up, s.at(30.0)).unwrap();
    assert!(up.figures.rtt_mean_ms.unwrap() <= 18.0);
    assert_eq!(s.b.mon.state(), State::Up);
}

#[test]
fn reordering_and_duplicates_are_not_loss() {
    let mut s = Sim::new(MonitorConfig::default(), 7);
    both_ways(&mut s, |w| {
        w.jitter = ms(150);
        w.duplicate = 0.2;
    });
    s.run_until(s.at(30.0));
    for e in [&s.a, &s.b] {
        let f = e.mon.figures();
        assert_eq!((f.loss_rx, f.loss_tx), (Some(0.0), Some(0.0)), "{f:?}");
        let snap = e.mon.snapshot();
        assert!(snap.probes_ignored > 20, "duplicates seen: {snap:?}");
        assert_eq!(e.events.len(), 1, "{:?}", e.events);
    }
    assert_eq!(s.a.mon.snapshot().probes_received, s.ba.sent - 1);
}

#[test]
fn quick_peer_restart_is_not_loss() {
    let mut s = Sim::new(MonitorConfig::default(), 8);
    both_ways(&mut s, |w| w.delay = ms(5));
    s.run_until(s.at(20.0));
    let stale = s.ba.last_sent.unwrap();
    s.restart_b(0xB2);
    s.run_for(ms(50));
    // A late probe of the old instance arrives after the new one's.
    s.a.mon.on_probe(s.now, &stale).unwrap();
    s.run_until(s.at(40.0));
    let snap = s.a.mon.snapshot();
    assert_eq!((snap.peer_restarts, snap.probes_ignored), (1, 1));
    assert_eq!(s.a.events.len(), 1, "never left up: {:?}", s.a.events);
    let f = snap.figures;
    assert_eq!((f.loss_rx, f.loss_tx), (Some(0.0), Some(0.0)), "{f:?}");
    assert_eq!(
        (s.b.mon.state(), s.b.mon.reason()),
        (State::Up, Reason::Healthy)
    );
}

#[test]
fn slow_peer_restart_is_one_down_period_without_loss() {
    let mut s = Sim::new(MonitorConfig::default(), 9);
    s.run_until(s.at(10.0));
    s.b.mute = true;
    s.ab.blackhole = true;
    s.run_until(s.at(13.0));
    assert_eq!(
        (s.a.mon.state(), s.a.mon.reason()),
        (State::Down, Reason::ProbesLost)
    );
    s.b.mute = false;
    s.ab.blackhole = false;
    s.restart_b(0xB3);
    s.run_until(s.at(30.0));
    let seq: Vec<_> = s.a.events.iter().map(|e| e.new).collect();
    assert_eq!(seq, [State::Up, State::Down, State::Up]);
    let f = s.a.mon.figures();
    assert_eq!((f.loss_rx, f.loss_tx), (Some(0.0), Some(0.0)), "{f:?}");
}

#[test]
fn peer_without_monitor_never_brings_the_link_down() {
    let mut s = Sim::new(MonitorConfig::default(), 10);
    s.b.mute = true;
    s.run_until(s.at(60.0));
    let snap = s.a.mon.snapshot();
    assert_eq!(
        (snap.state, snap.reason, snap.monitor_active),
        (State::Up, Reason::MonitorInactive, false)
    );
    assert_eq!(snap.state_changes, 1);
    assert!(snap.probes_sent >= 600);
    assert_eq!(snap.figures.loss_tx, None);
    // Carrier still counts.
    let t = s.now;
    s.a.mon.set_carrier(t, false);
    assert_eq!(s.a.mon.state(), State::Down);
}

#[test]
fn gray_failure_fails_over_and_back_after_hold_up() {
    let cfg = MonitorConfig {
        loss_window_s: 30,
        ..MonitorConfig::default()
    };
    let mut links = [Sim::new(cfg, 11), Sim::new(cfg, 12)];
    let t0 = links[0].t0;
    let mut sel = Selector::new(RedundancyConfig::default(), &[1, 2]).unwrap();
    let mut active = Vec::new(); // (time, active link) at every change
    let mut tick = |links: &mut [Sim; 2], sel: &mut Selector, until: f64| {
        let mut t = links[0].now;
        while t < t0 + Duration::from_secs_f64(until) {
            t += ms(10);
            for (i, l) in links.iter_mut().enumerate() {
                l.run_until(t);
                sel.set_link(i, LinkView::of(&l.a.mon));
            }
            if sel.update(t) {
                active.push((t - t0, sel.active()));
            }
        }
    };
    tick(&mut links, &mut sel, 5.0);
    both_ways(&mut links[0], |w| w.loss = 0.10);
    tick(&mut links, &mut sel, 65.0);
    both_ways(&mut links[0], |w| w.loss = 0.0);
    tick(&mut links, &mut sel, 110.0);
    let a0 = &links[0].a;
    let degraded = a0.first(State::Degraded, links[0].at(5.0)).unwrap().at - t0;
    let up = a0.first(State::Up, links[0].at(65.0)).unwrap().at - t0;
    println!(
        "gray failure on link 0: degraded at {degraded:?}, up at {up:?}; selector: {active:?}"
    );
    assert_eq!(active.len(), 3, "{active:?}");
    assert_eq!(active[0].1, Some(0));
    assert_eq!(active[1].1, Some(1));
    assert!(
        active[1].0 >= degraded && active[1].0 <= degraded + ms(10),
        "{active:?}"
    );
    let back = active[2].0;
    assert_eq!(active[2].1, Some(0));
    assert!(
        back >= up + ms(2000) && back <= up + ms(2010),
        "{back:?} {up:?}"
    );
    let reasons: Vec<_> = std::iter::from_fn(|| sel.poll_event())
        .map(|e| e.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            FailoverReason::LinkUp,
            FailoverReason::LinkDegraded,
            FailoverReason::Failback
        ]
    );
}

//! The per-link monitor: probes, figures and the link state machine; see [`Monitor`].

use super::probe::{Probe, ProbeError, Report};
use super::stats::{window_capacity, LossWindow, RttWindow, SeqTracker, SeqVerdict};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};
use thiserror::Error;

/// A degraded link is up again once its loss is at most this fraction of `max_loss`.
pub const RECOVER_LOSS_FACTOR: f64 = 0.5;
/// A degraded link is up again once its mean RTT is at most this fraction of `max_rtt_ms`.
pub const RECOVER_RTT_FACTOR: f64 = 0.9;
/// Events held for [`Monitor::poll_event`]; older ones are dropped (and counted) past it.
pub const EVENT_QUEUE: usize = 32;

/// The `[monitor]` settings (names as in the configuration file).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorConfig {
    /// Probe interval per link and direction, ms.
    pub probe_interval_ms: u64,
    /// Consecutive probes lost (in either direction) that bring a link down.
    pub probe_miss: u32,
    /// The window of the loss and RTT figures, s.
    pub loss_window_s: u64,
    /// Loss (fraction, either direction) over the window above which the link is degraded.
    pub max_loss: f64,
    /// Mean RTT over the window above which the link is degraded; 0 for no limit.
    pub max_rtt_ms: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            probe_interval_ms: 100,
            probe_miss: 3,
            loss_window_s: 10,
            max_loss: 0.02,
            max_rtt_ms: 0,
        }
    }
}

/// A `[monitor]` setting out of range.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
pub enum ConfigError {
    /// `probe_interval_ms` must be 1..=60000.
    #[error("probe_interval_ms must be 1..=60000, not {0}")]
    ProbeInterval(u64),
    /// `probe_miss` must be 1..=255.
    #[error("probe_miss must be 1..=255, not {0}")]
    ProbeMiss(u32),
    /// `loss_window_s` must be 1..=3600.
    #[error("loss_window_s must be 1..=3600, not {0}")]
    LossWindow(u64),
    /// The window would hold more than 1,000,000 probes.
    #[error("loss_window_s / probe_interval_ms is {0} probes, more than 1000000")]
    WindowTooLong(u64),
    /// `max_loss` must be a number in 0..=1.
    #[error("max_loss must be in 0..=1, not {0}")]
    MaxLoss(f64),
    /// `max_rtt_ms` must be at most 60000.
    #[error("max_rtt_ms must be at most 60000, not {0}")]
    MaxRtt(u64),
}

impl MonitorConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=60_000).contains(&self.probe_interval_ms) {
            return Err(ConfigError::ProbeInterval(self.probe_interval_ms));
        }
        if !(1..=255).contains(&self.probe_miss) {
            return Err(ConfigError::ProbeMiss(self.probe_miss));
        }
        if !(1..=3600).contains(&self.loss_window_s) {
            return Err(ConfigError::LossWindow(self.loss_window_s));
        }
        let samples = self.loss_window_s * 1000 / self.probe_interval_ms;
        if samples > 1_000_000 {
            return Err(ConfigError::WindowTooLong(samples));
        }
        if !(0.0..=1.0).contains(&self.max_loss) {
            return Err(ConfigError::MaxLoss(self.max_loss));
        }
        if self.max_rtt_ms > 60_000 {
            return Err(ConfigError::MaxRtt(self.max_rtt_ms));
        }
        Ok(())
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms)
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.loss_window_s)
    }
}

/// A link's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Secured, carrier, probes answered and within the limits (or the peer does not
    /// run the monitor).
    Up,
    /// Secured and probes answered, but loss or RTT over the limits.
    Degraded,
    /// Carrier lost, not secured, or probes lost in a row in either direction.
    Down,
}

impl State {
    /// Lower-case name for logs and status.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Up => "up",
            State::Degraded => "degraded",
            State::Down => "down",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a link is in its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Down: the port has no carrier.
    CarrierLost,
    /// Down: the SecY is not secured (no SAK in use).
    NotSecured,
    /// Down: `probe_miss` of the peer's probes missed in a row.
    ProbesLost,
    /// Down: the peer reports it misses our probes.
    PeerNotReceiving,
    /// Degraded: loss over `max_loss` in either direction.
    Loss,
    /// Degraded: mean RTT over `max_rtt_ms`.
    Rtt,
    /// Degraded: the peer's own figures are over its limits.
    PeerDegraded,
    /// Up: all checks pass.
    Healthy,
    /// Up: secured with carrier; no probe ever received from the peer, so the peer
    /// presumably does not run the monitor and probes are not checked.
    MonitorInactive,
}

impl Reason {
    /// Short name for logs and status.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::CarrierLost => "carrier lost",
            Reason::NotSecured => "not secured",
            Reason::ProbesLost => "peer probes lost",
            Reason::PeerNotReceiving => "peer does not receive our probes",
            Reason::Loss => "loss over limit",
            Reason::Rtt => "rtt over limit",
            Reason::PeerDegraded => "peer reports degraded",
            Reason::Healthy => "healthy",
            Reason::MonitorInactive => "peer does not answer probes",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The measured figures over the window (`None`: nothing measured yet).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Figures {
    /// Loss of the peer's probes towards us (fraction), from sequence gaps.
    pub loss_rx: Option<f64>,
    /// Loss of our probes towards the peer (fraction), from the peer's reports: its
    /// received count against the highest of our sequence numbers it has seen, so
    /// probes still in flight are not counted as lost.
    pub loss_tx: Option<f64>,
    /// Latest RTT, ms.
    pub rtt_last_ms: Option<f64>,
    /// Mean RTT, ms.
    pub rtt_mean_ms: Option<f64>,
    /// 99th percentile RTT, ms.
    pub rtt_p99_ms: Option<f64>,
    /// Mean absolute difference of consecutive RTT samples, ms.
    pub jitter_ms: Option<f64>,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// An optional figure: a percentage (fractions ×100) or ms, "-" when unknown.
        struct Opt(Option<f64>, bool);
        impl fmt::Display for Opt {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Opt(None, _) => f.write_str("-"),
                    Opt(Some(v), true) => write!(f, "{:.1}%", v * 100.0),
                    Opt(Some(v), false) => write!(f, "{v:.2}"),
                }
            }
        }
        write!(
            f,
            "loss rx {} tx {}, rtt last/mean/p99 {}/{}/{} ms, jitter {} ms",
            Opt(self.loss_rx, true),
            Opt(self.loss_tx, true),
            Opt(self.rtt_last_ms, false),
            Opt(self.rtt_mean_ms, false),
            Opt(self.rtt_p99_ms, false),
            Opt(self.jitter_ms, false)
        )
    }
}

/// A state change, reported once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// When it happened.
    pub at: Instant,
    /// The state before.
    pub old: State,
    /// The state after.
    pub new: State,
    /// Why the link is in the new state.
    pub reason: Reason,
    /// The figures at the change.
    pub figures: Figures,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} ({}): {}",
            self.old, self.new, self.reason, self.figures
        )
    }
}

/// Status of one link for a stats export.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Current state.
    pub state: State,
    /// Why.
    pub reason: Reason,
    /// When the link entered its state.
    pub since: Instant,
    /// When the link last became up, while it is up.
    pub up_since: Option<Instant>,
    /// The figures over the window.
    pub figures: Figures,
    /// Probes sent.
    pub probes_sent: u64,
    /// Peer probes received and counted (late ones included, duplicates not).
    pub probes_received: u64,
    /// Peer probes ignored: duplicates, too late, or from the peer's previous session.
    pub probes_ignored: u64,
    /// Payloads that were not probes.
    pub probes_invalid: u64,
    /// Whether a peer probe was ever received (otherwise probe checks are off).
    pub monitor_active: bool,
    /// State changes since construction.
    pub state_changes: u64,
    /// Peer restarts seen (new peer session ids after the first).
    pub peer_restarts: u64,
    /// Events dropped because the queue was full.
    pub events_dropped: u64,
    /// RTT samples taken since construction (cumulative, for a summary or histogram).
    pub rtt_samples_total: u64,
    /// Their sum, in seconds.
    pub rtt_sum_s: f64,
}

/// The latest probe received from the peer, for the echo.
#[derive(Debug, Clone, Copy)]
struct Echo {
    seq: u64,
    timestamp_us: u64,
    at: Instant,
}

/// The per-link monitor: sends probes, reads the peer's, keeps the figures and the
/// link state. Sans-IO like the MKA participant: the caller passes time in and polls.
///
/// ```text
///  loop {
///      carrier / SecY changes:  m.set_carrier(now, up) / m.set_secured(now, secured)
///      on a probe payload:      m.on_probe(now, payload)
///      on m.poll_timeout():     m.handle_timeout(now)
///      while let Some(p) = m.poll_transmit(now) { send p.encode() on the link }
///      while let Some(e) = m.poll_event()       { log and count e }
///  }
/// ```
///
/// # Rules
/// - Down at once without carrier or when not secured (no probes are sent then).
/// - Probes are checked only once one was received from the peer ([`Reason::MonitorInactive`]
///   until then: the state follows carrier and secured). From then on it stays active.
/// - Down when no peer probe arrived for `probe_miss` peer intervals plus half an
///   interval (the peer's interval is taken from its probes, clamped to 1 ms..60 s;
///   ours until the first), or when the peer's probes
///   say it misses ours. Whenever that verdict or the degraded verdict changes, a probe
///   goes out at once, so the other end follows within a one-way delay. The miss timer
///   restarts when carrier or secured come back.
/// - Degraded when, over the window, loss in either direction exceeds `max_loss` or the
///   mean RTT exceeds `max_rtt_ms`, or when the peer says its own figures are over its
///   limits; up again only once the loss is at most `max_loss` × [`RECOVER_LOSS_FACTOR`]
///   and the mean RTT at most `max_rtt_ms` × [`RECOVER_RTT_FACTOR`] (hysteresis). Until
///   the window has filled, its unseen part counts as loss-free.
/// - Probes lost around a down period are not counted as loss: the gap in sequence
///   numbers that a peer probe received after the link was down reveals is left out of
///   the loss figures, so an outage is reported once, as down. The count goes to the
///   peer in the reports, which leaves it out of its transmit-direction loss too.
/// - A new peer session id (peer restart) restarts the loss figures and sequence
///   tracking; late probes of the previous session are ignored. RTT samples are kept.
#[derive(Debug)]
pub struct Monitor {
    cfg: MonitorConfig,
    interval: Duration,
    window: Duration,
    max_rtt: Option<Duration>,
    epoch: Instant,
    session: u64,

    carrier: bool,
    secured: bool,
    state: State,
    reason: Reason,
    since: Instant,
    up_since: Option<Instant>,
    usable_since: Option<Instant>,

    next_tx: Option<Instant>,
    tx_seq: u64,

    active: bool,
    peer_session: Option<u64>,
    prev_peer_session: Option<u64>,
    peer_interval: Duration,
    /// Last peer probe counted, or when the miss timer restarted.
    silence_ref: Instant,
    rx: SeqTracker,
    echo: Option<Echo>,
    peer_rx_silent: bool,
    peer_degraded: bool,
    /// The peer's latest report on our session: (received, highest seq).
    peer_report: Option<(u64, u64)>,
    last_rtt_seq: u64,
    /// Probes lost while down, left out of the loss, per direction.
    rx_excused: u64,
    tx_excused: u64,
    /// The link was down since the latest new peer probe.
    down_since_rx: bool,

    rx_loss: LossWindow,
    tx_loss: LossWindow,
    rtt: RttWindow,
    rx_silent: bool,
    local_degraded: bool,
    degraded_reason: Reason,
    figures: Figures,

    events: VecDeque<Event>,
    probes_sent: u64,
    probes_received: u64,
    probes_ignored: u64,
    probes_invalid: u64,
    state_changes: u64,
    peer_restarts: u64,
    events_dropped: u64,
    rtt_samples_total: u64,
    rtt_sum_s: f64,
}

impl Monitor {
    /// A monitor for one link, down, without carrier and not secured. `session` must be
    /// random and differ from the previous instance's (e.g. 64 bits from the OS).
    pub fn new(cfg: MonitorConfig, session: u64, now: Instant) -> Result<Monitor, ConfigError> {
        cfg.validate()?;
        let interval = cfg.interval();
        let window = cfg.window();
        let cap = window_capacity(window, interval);
        Ok(Monitor {
            cfg,
            interval,
            window,
            max_rtt: (cfg.max_rtt_ms > 0).then(|| Duration::from_millis(cfg.max_rtt_ms)),
            epoch: now,
            session,
            carrier: false,
            secured: false,
            state: State::Down,
            reason: Reason::CarrierLost,
            since: now,
            up_since: None,
            usable_since: None,
            next_tx: None,
            tx_seq: 0,
            active: false,
            peer_session: None,
            prev_peer_session: None,
            peer_interval: interval,
            silence_ref: now,
            rx: SeqTracker::new(),
            echo: None,
            peer_rx_silent: false,
            peer_degraded: false,
            peer_report: None,
            last_rtt_seq: 0,
            rx_excused: 0,
            tx_excused: 0,
            down_since_rx: true,
            rx_loss: LossWindow::new(window, cap),
            tx_loss: LossWindow::new(window, cap),
            rtt: RttWindow::new(window, cap),
            rx_silent: false,
            local_degraded: false,
            degraded_reason: Reason::Loss,
            figures: Figures::default(),
            events: VecDeque::with_capacity(EVENT_QUEUE),
            probes_sent: 0,
            probes_received: 0,
            probes_ignored: 0,
            probes_invalid: 0,
            state_changes: 0,
            peer_restarts: 0,
            events_dropped: 0,
            rtt_samples_total: 0,
            rtt_sum_s: 0.0,
        })
    }

    // ----------------------------------------------------------------- inputs

    /// The port's carrier went up or down.
    pub fn set_carrier(&mut self, now: Instant, up: bool) {
        self.set_transport(now, up, self.secured);
    }

    /// The SecY became secured (a SAK in use both ways) or stopped being so.
    pub fn set_secured(&mut self, now: Instant, secured: bool) {
        self.set_transport(now, self.carrier, secured);
    }

    fn set_transport(&mut self, now: Instant, carrier: bool, secured: bool) {
        let was = self.transport();
        self.carrier = carrier;
        self.secured = secured;
        if self.transport() && !was {
            self.silence_ref = now;
            self.next_tx = Some(now);
        } else if !self.transport() {
            self.next_tx = None;
        }
        self.evaluate(now);
    }

    /// Handles a probe payload received on this link (the bytes after the EtherType).
    /// A payload that is not a probe is counted and its error returned.
    pub fn on_probe(&mut self, now: Instant, payload: &[u8]) -> Result<(), ProbeError> {
        let p = match Probe::decode(payload) {
            Ok(p) => p,
            Err(e) => {
                self.probes_invalid += 1;
                return Err(e);
            }
        };
        // A deadline that passed before this probe arrived is reported first.
        self.evaluate(now);
        if self.peer_session != Some(p.session) {
            if self.prev_peer_session == Some(p.session) {
                self.probes_ignored += 1;
                return Ok(());
            }
            self.new_peer_session(p.session);
        }
        let prev_highest = self.rx.highest();
        let verdict = self.rx.accept(p.seq);
        if matches!(verdict, SeqVerdict::Duplicate | SeqVerdict::TooOld) {
            self.probes_ignored += 1;
            return Ok(());
        }
        if let (SeqVerdict::New, Some(h), true) = (verdict, prev_highest, self.down_since_rx) {
            let gap = p.seq.saturating_sub(h).saturating_sub(1);
            self.rx_excused = self.rx_excused.saturating_add(gap);
        }
        if verdict == SeqVerdict::New {
            self.down_since_rx = false;
        }
        self.active = true;
        self.probes_received += 1;
        self.silence_ref = now;
        if verdict == SeqVerdict::New {
            self.echo = Some(Echo {
                seq: p.seq,
                timestamp_us: p.timestamp_us,
                at: now,
            });
            self.peer_interval = match p.interval_us {
                0 => self.interval,
                us => Duration::from_micros(u64::from(us))
                    .clamp(Duration::from_millis(1), Duration::from_secs(60)),
            };
            self.peer_rx_silent = p.rx_silent;
            self.peer_degraded = p.degraded;
            match p.report {
                Some(r) if r.session == self.session => self.take_report(now, &r),
                _ => {
                    self.peer_report = None;
                    self.tx_loss.reset();
                    self.tx_excused = 0;
                }
            }
        }
        self.evaluate(now);
        Ok(())
    }

    /// Runs the timers due at `now` (the miss deadline, the loss window sliding).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.evaluate(now);
    }

    // ---------------------------------------------------------------- outputs

    /// The next probe to send, if one is due at `now` (call until `None`). None is sent
    /// without carrier or while not secured.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Probe> {
        self.evaluate(now);
        let due = self.next_tx?;
        if now < due {
            return None;
        }
        let next = due + self.interval;
        self.next_tx = Some(if next <= now {
            now + self.interval
        } else {
            next
        });
        self.tx_seq += 1;
        self.probes_sent += 1;
        if let Some(h) = self.rx.highest() {
            self.rx_loss
                .record(now, self.rx.received(), h.saturating_sub(self.rx_excused));
        }
        if let Some((r, h)) = self.peer_report {
            self.tx_loss
                .record(now, r, h.saturating_sub(self.tx_excused));
        }
        let report = match (self.peer_session, self.echo) {
            (Some(session), Some(e)) => Some(Report {
                session,
                echo_seq: e.seq,
                echo_timestamp_us: e.timestamp_us,
                hold_us: u32::try_from(now.saturating_duration_since(e.at).as_micros())
                    .unwrap_or(u32::MAX),
                received: self.rx.received(),
                highest_seq: self.rx.highest().unwrap_or(0),
                excused: self.rx_excused,
            }),
            _ => None,
        };
        Some(Probe {
            session: self.session,
            seq: self.tx_seq,
            timestamp_us: self.micros(now),
            interval_us: u32::try_from(self.interval.as_micros()).unwrap_or(u32::MAX),
            rx_silent: self.rx_silent,
            degraded: self.local_degraded && self.state != State::Down,
            report,
        })
    }

    /// When [`handle_timeout`](Self::handle_timeout) or
    /// [`poll_transmit`](Self::poll_transmit) should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tx = self.next_tx?;
        if self.active && !self.rx_silent {
            Some(tx.min(self.silence_deadline()))
        } else {
            Some(tx)
        }
    }

    /// The next state change event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Why the link is in its state.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// When the link entered its current state.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// When the link last became up, while it is up.
    pub fn up_since(&self) -> Option<Instant> {
        self.up_since
    }

    /// When the link last left down, while it is not down.
    pub fn usable_since(&self) -> Option<Instant> {
        self.usable_since
    }

    /// Carrier and secured: frames can be sent, whatever the probes say.
    pub fn transport(&self) -> bool {
        self.carrier && self.secured
    }

    /// Whether a peer probe was ever received.
    pub fn monitor_active(&self) -> bool {
        self.active
    }

    /// This instance's session id.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The settings.
    pub fn config(&self) -> &MonitorConfig {
        &self.cfg
    }

    /// The figures as of the latest input.
    pub fn figures(&self) -> Figures {
        self.figures
    }

    /// Status for a stats export.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state,
            reason: self.reason,
            since: self.since,
            up_since: self.up_since,
            figures: self.figures,
            probes_sent: self.probes_sent,
            probes_received: self.probes_received,
            probes_ignored: self.probes_ignored,
            probes_invalid: self.probes_invalid,
            monitor_active: self.active,
            state_changes: self.state_changes,
            peer_restarts: self.peer_restarts,
            events_dropped: self.events_dropped,
            rtt_samples_total: self.rtt_samples_total,
            rtt_sum_s: self.rtt_sum_s,
        }
    }

    // -------------------------------------------------------------- internals

    fn micros(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    fn silence_deadline(&self) -> Instant {
        self.silence_ref + self.peer_interval * self.cfg.probe_miss + self.peer_interval / 2
    }

    fn new_peer_session(&mut self, session: u64) {
        if let Some(old) = self.peer_session {
            self.peer_restarts += 1;
            self.prev_peer_session = Some(old);
        }
        self.peer_session = Some(session);
        self.rx.reset();
        self.echo = None;
        self.peer_rx_silent = false;
        self.peer_degraded = false;
        self.peer_report = None;
        self.rx_loss.reset();
        self.tx_loss.reset();
        self.rx_excused = 0;
        self.tx_excused = 0;
    }

    fn take_report(&mut self, now: Instant, r: &Report) {
        let highest = r.highest_seq.min(self.tx_seq);
        if let Some((received, h)) = self.peer_report {
            if r.received < received || highest < h {
                self.tx_loss.reset();
                self.tx_excused = 0;
            }
        }
        self.tx_excused = r.excused.min(highest);
        self.peer_report = Some((r.received, highest));
        if r.echo_seq > self.last_rtt_seq && r.echo_seq <= self.tx_seq {
            let elapsed = self.micros(now).checked_sub(r.echo_timestamp_us);
            if let Some(rtt) = elapsed.and_then(|e| e.checked_sub(u64::from(r.hold_us))) {
                self.rtt.push(now, Duration::from_micros(rtt));
                self.rtt_samples_total += 1;
                self.rtt_sum_s += rtt as f64 / 1e6;
                self.last_rtt_seq = r.echo_seq;
            }
        }
    }

    fn refresh_figures(&mut self, now: Instant) {
        let rx = self
            .rx
            .highest()
            .map(|h| {
                let h = h.saturating_sub(self.rx_excused);
                self.rx_loss.loss(now, self.rx.received(), h)
            })
            .unwrap_or_default();
        let tx = self
            .peer_report
            .map(|(r, h)| {
                let h = h.saturating_sub(self.tx_excused);
                self.tx_loss.loss(now, r, h)
            })
            .unwrap_or_default();
        let rtt = self.rtt.summary(now);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.figures = Figures {
            loss_rx: rx.ratio(),
            loss_tx: tx.ratio(),
            rtt_last_ms: rtt.map(|s| ms(s.last)),
            rtt_mean_ms: rtt.map(|s| ms(s.mean)),
            rtt_p99_ms: rtt.map(|s| ms(s.p99)),
            jitter_ms: rtt.map(|s| ms(s.jitter)),
        };
        if !self.active {
            return;
        }
        let nominal = |iv: Duration| (self.window.as_micros() / iv.as_micros().max(1)) as u64;
        let loss = rx
            .ratio_over(nominal(self.peer_interval))
            .max(tx.ratio_over(nominal(self.interval)));
        let mean = self.rtt.mean();
        let rtt_over = matches!((mean, self.max_rtt), (Some(m), Some(max)) if m > max);
        let rtt_ok = match (mean, self.max_rtt) {
            (Some(m), Some(max)) => m.as_secs_f64() <= max.as_secs_f64() * RECOVER_RTT_FACTOR,
            _ => true,
        };
        if !self.local_degraded {
            if loss > self.cfg.max_loss {
                self.local_degraded = true;
                self.degraded_reason = Reason::Loss;
            } else if rtt_over {
                self.local_degraded = true;
                self.degraded_reason = Reason::Rtt;
            }
        } else if loss <= self.cfg.max_loss * RECOVER_LOSS_FACTOR && rtt_ok {
            self.local_degraded = false;
        }
    }

    /// Re-derives the verdicts and the state at `now`; queues an event on a change and
    /// an immediate probe when what we tell the peer changes.
    fn evaluate(&mut self, now: Instant) {
        let silent = self.active && self.transport() && now >= self.silence_deadline();
        let hard_down = !self.transport() || silent || (self.active && self.peer_rx_silent);
        let told = (self.rx_silent, self.local_degraded && !hard_down);
        self.rx_silent = silent;
        self.refresh_figures(now);
        if told != (self.rx_silent, self.local_degraded && !hard_down) && self.transport() {
            self.next_tx = Some(now);
        }
        let (state, reason) = if !self.carrier {
            (State::Down, Reason::CarrierLost)
        } else if !self.secured {
            (State::Down, Reason::NotSecured)
        } else if silent {
            (State::Down, Reason::ProbesLost)
        } else if self.active && self.peer_rx_silent {
            (State::Down, Reason::PeerNotReceiving)
        } else if self.local_degraded {
            (State::Degraded, self.degraded_reason)
        } else if self.active && self.peer_degraded {
            (State::Degraded, Reason::PeerDegraded)
        } else if self.active {
            (State::Up, Reason::Healthy)
        } else {
            (State::Up, Reason::MonitorInactive)
        };
        self.reason = reason;
        if state == State::Down {
            self.down_since_rx = true;
        }
        if state == self.state {
            return;
        }
        let old = self.state;
        self.state = state;
        self.since = now;
        self.up_since = (state == State::Up).then_some(now);
        if state == State::Down {
            self.usable_since = None;
        } else if old == State::Down {
            self.usable_since = Some(now);
        }
        self.state_changes += 1;
        if self.events.len() == EVENT_QUEUE {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(Event {
            at: now,
            old,
            new: state,
            reason,
            figures: self.figures,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secured(now: Instant) -> Monitor {
        let mut m = Monitor::new(MonitorConfig::default(), 7, now).unwrap();
        m.set_carrier(now, true);
        m.set_secured(now, true);
        m
    }

    #[test]
    fn config_validation() {
        assert_eq!(MonitorConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut MonitorConfig)| {
            let mut c = MonitorConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(
            bad(|c| c.probe_interval_ms = 0),
            ConfigError::ProbeInterval(0)
        );
        assert_eq!(bad(|c| c.probe_miss = 0), ConfigError::ProbeMiss(0));
        assert_eq!(bad(|c| c.loss_window_s = 0), ConfigError::LossWindow(0));
        assert!(matches!(
            bad(|c| c.max_loss = f64::NAN),
            ConfigError::MaxLoss(_)
        ));
        assert_eq!(bad(|c| c.max_rtt_ms = 60_001), ConfigError::MaxRtt(60_001));
        assert_eq!(
            bad(|c| {
                c.probe_interval_ms = 1;
                c.loss_window_s = 3600
            }),
            ConfigError::WindowTooLong(3_600_000)
        );
    }

    #[test]
    fn starts_down_and_follows_carrier_and_secured_without_peer_probes() {
        let t0 = Instant::now();
        let mut m = Monitor::new(MonitorConfig::default(), 7, t0).unwrap();
        assert_eq!((m.state(), m.poll_transmit(t0)), (State::Down, None));
        assert_eq!(m.poll_timeout(), None);
        m.set_carrier(t0, true);
        assert_eq!((m.state(), m.reason()), (State::Down, Reason::NotSecured));
        m.set_secured(t0 + ms(5), true);
        assert_eq!(
            (m.state(), m.reason()),
            (State::Up, Reason::MonitorInactive)
        );
        assert_eq!(m.up_since(), Some(t0 + ms(5)));
        let p = m.poll_transmit(t0 + ms(5)).unwrap();
        assert_eq!((p.seq, p.report, p.rx_silent), (1, None, false));
        assert!(m.poll_transmit(t0 + ms(5)).is_none());
        assert_eq!(m.poll_timeout(), Some(t0 + ms(105)));
        let e = m.poll_event().unwrap();
        assert_eq!(
            (e.old, e.new, e.reason),
            (State::Down, State::Up, Reason::MonitorInactive)
        );
        assert!(m.poll_event().is_none());
        m.set_carrier(t0 + ms(10), false);
        assert_eq!((m.state(), m.reason()), (State::Down, Reason::CarrierLost));
        assert_eq!(m.snapshot().state_changes, 2);
    }

    #[test]
    fn invalid_and_stale_payloads_are_counted() {
        let t0 = Instant::now();
        let mut m = secured(t0);
        assert!(m.on_probe(t0, b"junk").is_err());
        let mut p = Probe {
            session: 1,
            seq: 5,
            interval_us: 100_000,
            ..Probe::default()
        };
        m.on_probe(t0, &p.encode()).unwrap();
        m.on_probe(t0, &p.encode()).unwrap(); // duplicate
        p.session = 2; // restart
        p.seq = 1;
        m.on_probe(t0, &p.encode()).unwrap();
        p.session = 1; // a late probe of the old session
        p.seq = 6;
        m.on_probe(t0, &p.encode()).unwrap();
        let s = m.snapshot();
        assert_eq!(
            (
                s.probes_invalid,
                s.probes_received,
                s.probes_ignored,
                s.peer_restarts
            ),
            (1, 2, 2, 1)
        );
        assert!(s.monitor_active);
    }

    #[test]
    fn rtt_from_echo_minus_hold() {
        let t0 = Instant::now();
        let mut m = secured(t0);
        let sent = m.poll_transmit(t0).unwrap();
        let reply = Probe {
            session: 9,
            seq: 1,
            interval_us: 100_000,
            report: Some(Report {
                session: m.session(),
                echo_seq: sent.seq,
                echo_timestamp_us: sent.timestamp_us,
                hold_us: 30_000,
                received: 1,
                highest_seq: 1,
                excused: 0,
            }),
            ..Probe::default()
        };
        m.on_probe(t0 + ms(42), &reply.encode()).unwrap();
        let f = m.figures();
        assert_eq!(f.rtt_last_ms, Some(12.0));
        // The same echo again (a later probe from a peer that heard nothing new) adds
        // no sample; an echo of a probe never sent is ignored.
        let again = Probe { seq: 2, ..reply };
        m.on_probe(t0 + ms(142), &again.encode()).unwrap();
        let mut bogus = Probe { seq: 3, ..reply };
        bogus.report.as_mut().unwrap().echo_seq = 99;
        m.on_probe(t0 + ms(150), &bogus.encode()).unwrap();
        assert_eq!(m.figures().rtt_mean_ms, Some(12.0));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Wait(u32),
        Carrier(bool),
        Secured(bool),
        Probe(Probe),
        Bytes(Vec<u8>),
    }

    fn report() -> impl Strategy<Value = Option<Report>> {
        proptest::option::of(
            (
                prop_oneof![Just(7u64), any::<u64>()],
                0u64..40,
                any::<u64>(),
                any::<u32>(),
                prop_oneof![0u64..40, any::<u64>()],
                prop_oneof![0u64..40, any::<u64>()],
                prop_oneof![0u64..5, any::<u64>()],
            )
                .prop_map(
                    |(session, echo_seq, ts, hold_us, received, highest_seq, excused)| Report {
                        session,
                        echo_seq,
                        echo_timestamp_us: ts % 10_000_000,
                        hold_us: hold_us % 200_000,
                        received,
                        highest_seq,
                        excused,
                    },
                ),
        )
    }

    fn op() -> impl Strategy<Value = Op> {
        let probe = (
            0u64..3,
            prop_oneof![0u64..60, any::<u64>()],
            any::<u64>(),
            prop_oneof![Just(100_000u32), any::<u32>()],
            any::<bool>(),
            any::<bool>(),
            report(),
        )
            .prop_map(
                |(session, seq, timestamp_us, interval_us, rx_silent, degraded, report)| Probe {
                    session,
                    seq,
                    timestamp_us,
                    interval_us,
                    rx_silent,
                    degraded,
                    report,
                },
            );
        prop_oneof![
            4 => (0u32..500_000).prop_map(Op::Wait),
            1 => any::<bool>().prop_map(Op::Carrier),
            1 => any::<bool>().prop_map(Op::Secured),
            6 => probe.prop_map(Op::Probe),
            1 => proptest::collection::vec(any::<u8>(), 0..100).prop_map(Op::Bytes),
        ]
    }

    proptest! {
        /// Any sequence of inputs: no panic, and the outputs stay consistent.
        #[test]
        fn any_input_sequence(ops in proptest::collection::vec(op(), 1..120)) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut m = Monitor::new(MonitorConfig::default(), 7, t0).unwrap();
            m.set_carrier(now, true);
            m.set_secured(now, true);
            for op in ops {
                match op {
                    Op::Wait(us) => now += Duration::from_micros(u64::from(us)),
                    Op::Carrier(c) => m.set_carrier(now, c),
                    Op::Secured(s) => m.set_secured(now, s),
                    Op::Probe(p) => m.on_probe(now, &p.encode()).unwrap(),
                    Op::Bytes(b) => { let _ = m.on_probe(now, &b); }
                }
                m.handle_timeout(now);
                while let Some(p) = m.poll_transmit(now) {
                    prop_assert_eq!(Probe::decode(&p.encode()), Ok(p));
                }
                if let Some(t) = m.poll_timeout() {
                    prop_assert!(t > now);
                }
                while m.poll_event().is_some() {}
                let s = m.snapshot();
                prop_assert_eq!(s.state == State::Down, !m.transport() || matches!(s.reason, Reason::ProbesLost | Reason::PeerNotReceiving));
                for l in [s.figures.loss_rx, s.figures.loss_tx].into_iter().flatten() {
                    prop_assert!((0.0..=1.0).contains(&l));
                }
            }
        }
    }
}

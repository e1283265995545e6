//! Windowed probe statistics: sequence tracking, loss and RTT over a sliding window.
//!
//! Every structure here is allocated once, at construction, with a capacity derived
//! from the window and the probe interval ([`window_capacity`]); recording a probe or
//! computing a figure never allocates.

use std::time::{Duration, Instant};

/// How many sequence numbers below the highest a late probe may be and still count.
pub const REORDER_WINDOW: u64 = 64;

/// Ring entries needed for one sample per `interval` over `window`, plus slack.
pub fn window_capacity(window: Duration, interval: Duration) -> usize {
    let n = window.as_micros() / interval.as_micros().max(1);
    usize::try_from(n).unwrap_or(usize::MAX).saturating_add(2)
}

/// A fixed-capacity ring of `Copy` values, oldest first; a push into a full ring
/// replaces the oldest.
#[derive(Debug, Clone)]
struct Ring<T> {
    buf: Vec<Option<T>>,
    head: usize,
    len: usize,
}

impl<T: Copy> Ring<T> {
    fn new(capacity: usize) -> Self {
        Ring {
            buf: vec![None; capacity.max(1)],
            head: 0,
            len: 0,
        }
    }

    fn cap(&self) -> usize {
        self.buf.len()
    }

    /// Appends `v`; returns the value it replaced when the ring was full.
    fn push(&mut self, v: T) -> Option<T> {
        let cap = self.cap();
        if self.len == cap {
            let old = self.buf[self.head].replace(v);
            self.head = (self.head + 1) % cap;
            old
        } else {
            self.buf[(self.head + self.len) % cap] = Some(v);
            self.len += 1;
            None
        }
    }

    fn front(&self) -> Option<T> {
        self.get(0)
    }

    fn pop_front(&mut self) -> Option<T> {
        let v = self.front()?;
        self.buf[self.head] = None;
        self.head = (self.head + 1) % self.cap();
        self.len -= 1;
        Some(v)
    }

    fn get(&self, i: usize) -> Option<T> {
        if i < self.len {
            self.buf[(self.head + i) % self.cap()]
        } else {
            None
        }
    }

    fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len).filter_map(move |i| self.get(i))
    }

    fn clear(&mut self) {
        while self.pop_front().is_some() {}
    }
}

/// What a received sequence number is, relative to those seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// Above every one seen so far (the first one is `New` too).
    New,
    /// Below the highest, not seen before, within [`REORDER_WINDOW`]: counts as received.
    Late,
    /// Seen before: ignore.
    Duplicate,
    /// More than [`REORDER_WINDOW`] below the highest: already counted as lost.
    TooOld,
}

/// Received sequence numbers of one sender session: the highest, a bitmap of the
/// [`REORDER_WINDOW`] below it, and the count of distinct ones received.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    highest: Option<u64>,
    /// Bit `i`: `highest - i` was received.
    seen: u64,
    received: u64,
}

impl SeqTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `seq` and says what it was; only `New` and `Late` are counted.
    pub fn accept(&mut self, seq: u64) -> SeqVerdict {
        let Some(h) = self.highest else {
            self.highest = Some(seq);
            self.seen = 1;
            self.received = 1;
            return SeqVerdict::New;
        };
        if seq > h {
            let shift = seq - h;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = Some(seq);
            self.received += 1;
            return SeqVerdict::New;
        }
        let back = h - seq;
        if back >= REORDER_WINDOW {
            return SeqVerdict::TooOld;
        }
        let bit = 1u64 << back;
        if self.seen & bit != 0 {
            return SeqVerdict::Duplicate;
        }
        self.seen |= bit;
        self.received += 1;
        SeqVerdict::Late
    }

    /// The highest sequence number received, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Distinct sequence numbers received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Forgets everything (a new sender session).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Loss over a window: how many probes were expected and how many of them were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loss {
    /// Probes sent in the window (growth of the highest sequence number).
    pub expected: u64,
    /// Of those, how many did not arrive.
    pub lost: u64,
}

impl Loss {
    /// `lost / expected`, or `None` when nothing was expected.
    pub fn ratio(&self) -> Option<f64> {
        (self.expected > 0).then(|| self.lost as f64 / self.expected as f64)
    }

    /// `lost / max(expected, nominal)`: the ratio with a window that is not yet full
    /// taken as loss-free for the part not yet seen, so that a few early losses do not
    /// read as a high loss rate. `nominal` is the count a full window holds.
    pub fn ratio_over(&self, nominal: u64) -> f64 {
        self.lost as f64 / self.expected.max(nominal).max(1) as f64
    }
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    received: u64,
    highest: u64,
}

/// One direction's loss over a sliding window, from cumulative counters (probes
/// received, highest sequence number) sampled once per probe interval.
///
/// The loss over the window is the growth of the counters since the oldest sample in
/// the window: `expected = Δhighest`, `lost = expected - Δreceived`. Late probes count
/// as received when they arrive; duplicates never reach the counters. Probes after the
/// highest received are not yet counted as lost (silence is detected elsewhere). A
/// caller that excuses some sequence numbers (not to be counted as lost) passes
/// `highest` minus their count.
#[derive(Debug, Clone)]
pub struct LossWindow {
    marks: Ring<Mark>,
    window: Duration,
}

impl LossWindow {
    /// A window of length `window` holding up to `capacity` samples.
    pub fn new(window: Duration, capacity: usize) -> Self {
        LossWindow {
            marks: Ring::new(capacity),
            window,
        }
    }

    /// Samples the cumulative counters at `now`. The first sample after construction or
    /// [`reset`](Self::reset) is the baseline.
    pub fn record(&mut self, now: Instant, received: u64, highest: u64) {
        while self.marks.len > 1 && self.marks.get(1).is_some_and(|m| self.expired(m, now)) {
            self.marks.pop_front();
        }
        self.marks.push(Mark {
            at: now,
            received,
            highest,
        });
    }

    fn expired(&self, m: Mark, now: Instant) -> bool {
        m.at + self.window < now
    }

    /// The loss over the window ending at `now`, given the current counters.
    pub fn loss(&self, now: Instant, received: u64, highest: u64) -> Loss {
        let Some(base) = self
            .marks
            .iter()
            .find(|m| !self.expired(*m, now))
            .or_else(|| self.marks.get(self.marks.len.saturating_sub(1)))
        else {
            return Loss::default();
        };
        let expected = highest.saturating_sub(base.highest);
        let got = received.saturating_sub(base.received);
        Loss {
            expected,
            lost: expected.saturating_sub(got),
        }
    }

    /// Forgets all samples; the next [`record`](Self::record) is a new baseline.
    pub fn reset(&mut self) {
        self.marks.clear();
    }

    /// Whether there is no baseline yet.
    pub fn is_empty(&self) -> bool {
        self.marks.len == 0
    }
}

/// RTT figures over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttSummary {
    /// Samples in the window.
    pub samples: usize,
    /// The latest sample.
    pub last: Duration,
    /// The mean.
    pub mean: Duration,
    /// The 99th percentile (nearest rank).
    pub p99: Duration,
    /// Mean absolute difference between consecutive samples (zero with one sample).
    pub jitter: Duration,
}

/// RTT samples over a sliding window, with a running sum for the mean.
#[derive(Debug, Clone)]
pub struct RttWindow {
    samples: Ring<(Instant, u32)>,
    scratch: Vec<u32>,
    sum_us: u64,
    window: Duration,
}

impl RttWindow {
    /// A window of length `window` holding up to `capacity` samples (one per own probe
    /// at most, so [`window_capacity`] of the own probe interval is enough).
    pub fn new(window: Duration, capacity: usize) -> Self {
        let ring = Ring::new(capacity);
        RttWindow {
            scratch: Vec::with_capacity(ring.cap()),
            samples: ring,
            sum_us: 0,
            window,
        }
    }

    /// Adds a sample taken at `now` (saturating at about 71 minutes).
    pub fn push(&mut self, now: Instant, rtt: Duration) {
        self.expire(now);
        let us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
        if let Some((_, old)) = self.samples.push((now, us)) {
            self.sum_us -= u64::from(old);
        }
        self.sum_us += u64::from(us);
    }

    /// Drops the samples older than the window.
    pub fn expire(&mut self, now: Instant) {
        while let Some((at, us)) = self.samples.front() {
            if at + self.window >= now {
                break;
            }
            self.samples.pop_front();
            self.sum_us -= u64::from(us);
        }
    }

    /// The mean of the samples held (call [`expire`](Self::expire) first).
    pub fn mean(&self) -> Option<Duration> {
        let n = self.samples.len as u64;
        (n > 0).then(|| Duration::from_micros(self.sum_us / n))
    }

    /// The figures over the window ending at `now`, or `None` without samples.
    pub fn summary(&mut self, now: Instant) -> Option<RttSummary> {
        self.expire(now);
        let n = self.samples.len;
        let mean = self.mean()?;
        let (_, last) = self.samples.get(n - 1)?;
        let mut diffs = 0u64;
        let mut prev = None;
        self.scratch.clear();
        for (_, us) in self.samples.iter() {
            if let Some(p) = prev {
                diffs += u64::from(us.abs_diff(p));
            }
            prev = Some(us);
            self.scratch.push(us);
        }
        let rank = (n * 99).div_ceil(100).max(1) - 1;
        let (_, p99, _) = self.scratch.select_nth_unstable(rank);
        let jitter = if n > 1 { diffs / (n as u64 - 1) } else { 0 };
        Some(RttSummary {
            samples: n,
            last: Duration::from_micros(u64::from(last)),
            mean,
            p99: Duration::from_micros(u64::from(*p99)),
            jitter: Duration::from_micros(jitter),
        })
    }

    /// Forgets all samples.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.sum_us = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ring_wraps_and_replaces_oldest() {
        let mut r = Ring::new(3);
        assert_eq!(r.push(1), None);
        r.push(2);
        r.push(3);
        assert_eq!(r.push(4), Some(1));
        assert_eq!(r.iter().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(r.pop_front(), Some(2));
        r.push(5);
        assert_eq!(r.iter().collect::<Vec<_>>(), [3, 4, 5]);
        r.clear();
        assert_eq!(r.front(), None);
        assert_eq!(r.buf.capacity(), 3, "never grows");
    }

    #[test]
    fn seq_tracker_counts_reordered_once_and_ignores_duplicates() {
        let mut t = SeqTracker::new();
        assert_eq!(t.accept(10), SeqVerdict::New);
        assert_eq!(t.accept(12), SeqVerdict::New);
        assert_eq!(t.accept(12), SeqVerdict::Duplicate);
        assert_eq!(t.accept(11), SeqVerdict::Late);
        assert_eq!(t.accept(11), SeqVerdict::Duplicate);
        assert_eq!(t.accept(10), SeqVerdict::Duplicate);
        assert_eq!((t.received(), t.highest()), (3, Some(12)));
        assert_eq!(t.accept(12 + 100), SeqVerdict::New);
        assert_eq!(t.accept(12 + 100 - 63), SeqVerdict::Late);
        assert_eq!(t.accept(12 + 100 - 64), SeqVerdict::TooOld);
        assert_eq!(t.accept(u64::MAX), SeqVerdict::New);
        assert_eq!(t.accept(0), SeqVerdict::TooOld);
        assert_eq!(t.received(), 6);
    }

    #[test]
    fn loss_window_diffs_over_the_window() {
        let t0 = Instant::now();
        let mut w = LossWindow::new(ms(1000), window_capacity(ms(1000), ms(100)));
        assert_eq!(w.loss(t0, 5, 5), Loss::default());
        // One probe per 100 ms; every 4th lost.
        let (mut rx, mut hi) = (0, 0);
        for i in 1..=40u64 {
            let now = t0 + ms(100 * i);
            hi = i;
            if i % 4 != 0 {
                rx += 1;
            }
            w.record(now, rx, hi);
        }
        let l = w.loss(t0 + ms(4000), rx, hi);
        assert_eq!(l.expected, 10);
        assert!((2..=3).contains(&l.lost), "{l:?}");
        // A late arrival counts as received once it arrives.
        let l2 = w.loss(t0 + ms(4000), rx + 1, hi);
        assert_eq!(l2.lost, l.lost - 1);
        w.reset();
        assert!(w.is_empty());
        assert_eq!(w.loss(t0 + ms(4000), rx, hi), Loss::default());
    }

    #[test]
    fn loss_ratio_over_nominal() {
        let l = Loss {
            expected: 10,
            lost: 2,
        };
        assert_eq!(l.ratio(), Some(0.2));
        assert_eq!(l.ratio_over(100), 0.02);
        assert_eq!(l.ratio_over(5), 0.2);
        assert_eq!(Loss::default().ratio(), None);
        assert_eq!(Loss::default().ratio_over(0), 0.0);
    }

    #[test]
    fn rtt_summary() {
        let t0 = Instant::now();
        let mut w = RttWindow::new(ms(1000), 12);
        assert_eq!(w.summary(t0), None);
        for i in 1..=10u64 {
            w.push(t0 + ms(100 * i), ms(i));
        }
        let s = w.summary(t0 + ms(1000)).unwrap();
        assert_eq!(s.samples, 10);
        assert_eq!(s.last, ms(10));
        assert_eq!(s.mean, Duration::from_micros(5500));
        assert_eq!(s.p99, ms(10));
        assert_eq!(s.jitter, ms(1));
        // The first half expires.
        let s = w.summary(t0 + ms(1550)).unwrap();
        assert_eq!(s.samples, 5);
        assert_eq!(s.mean, ms(8));
        // Capacity bounds the samples and keeps the running sum right.
        for i in 0..30u64 {
            w.push(t0 + ms(1600 + i), ms(2));
        }
        let s = w.summary(t0 + ms(1630)).unwrap();
        assert_eq!((s.samples, s.mean, s.jitter), (12, ms(2), Duration::ZERO));
        w.clear();
        assert_eq!(w.mean(), None);
    }
}

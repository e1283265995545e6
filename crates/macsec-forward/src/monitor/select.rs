//! Link selection over the redundant links ([`Selector`]) and the per-frame flow hash
//! ([`flow_hash`]).

use super::link::{Monitor, State};
use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Most links a selector handles (a [`LinkSet`] is a 64-bit mask).
pub const MAX_LINKS: usize = 64;
/// Failover events held for [`Selector::poll_event`]; older ones are dropped past it.
pub const EVENT_QUEUE: usize = 32;

/// How traffic uses the links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every frame leaves on one link, the best one.
    #[default]
    ActiveBackup,
    /// Frames spread over the usable links by flow.
    Balance,
}

impl Mode {
    /// The config spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::ActiveBackup => "active-backup",
            Mode::Balance => "balance",
        }
    }
}

impl FromStr for Mode {
    type Err = SelectError;
    fn from_str(s: &str) -> Result<Mode, SelectError> {
        match s {
            "active-backup" => Ok(Mode::ActiveBackup),
            "balance" => Ok(Mode::Balance),
            _ => Err(SelectError::Mode),
        }
    }
}

/// The `[redundancy]` settings (names as in the configuration file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedundancyConfig {
    /// Active-backup or balance.
    pub mode: Mode,
    /// How long a link that became up (or left down) waits before it takes traffic,
    /// unless nothing better is usable, ms.
    pub hold_up_ms: u64,
}

impl Default for RedundancyConfig {
    fn default() -> Self {
        RedundancyConfig {
            mode: Mode::ActiveBackup,
            hold_up_ms: 2000,
        }
    }
}

/// A selector setting out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SelectError {
    /// No links, or more than [`MAX_LINKS`].
    #[error("need 1..={MAX_LINKS} links, not {0}")]
    LinkCount(usize),
    /// `mode` is neither `active-backup` nor `balance`.
    #[error("redundancy mode must be \"active-backup\" or \"balance\"")]
    Mode,
}

/// A set of link indices (below [`MAX_LINKS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LinkSet(pub u64);

impl LinkSet {
    /// The empty set.
    pub const EMPTY: LinkSet = LinkSet(0);

    /// The set of one link (empty if `i` is out of range).
    pub fn single(i: usize) -> LinkSet {
        LinkSet(if i < MAX_LINKS { 1 << i } else { 0 })
    }

    /// Whether `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        i < MAX_LINKS && self.0 & (1 << i) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// How many links.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// The lowest index in the set.
    pub fn first(&self) -> Option<usize> {
        (!self.is_empty()).then(|| self.0.trailing_zeros() as usize)
    }

    /// The links in `self` and not in `other`.
    pub fn minus(&self, other: LinkSet) -> LinkSet {
        LinkSet(self.0 & !other.0)
    }

    /// The indices, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = usize> {
        let mut m = self.0;
        std::iter::from_fn(move || {
            let i = (m != 0).then(|| m.trailing_zeros() as usize)?;
            m &= m - 1;
            Some(i)
        })
    }
}

impl fmt::Display for LinkSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (n, i) in self.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{i}")?;
        }
        f.write_str("}")
    }
}

/// What the selector needs to know of one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkView {
    /// The monitor's state.
    pub state: State,
    /// When it last became up (while up).
    pub up_since: Option<Instant>,
    /// When it last left down (while not down).
    pub usable_since: Option<Instant>,
    /// Carrier and secured, whatever the probes say (for the fallback).
    pub transport: bool,
}

impl LinkView {
    /// A link that is down and cannot send.
    pub const DOWN: LinkView = LinkView {
        state: State::Down,
        up_since: None,
        usable_since: None,
        transport: false,
    };

    /// The view of a monitored link.
    pub fn of(m: &Monitor) -> LinkView {
        LinkView {
            state: m.state(),
            up_since: m.up_since(),
            usable_since: m.usable_since(),
            transport: m.transport(),
        }
    }
}

/// How good a link is for carrying traffic, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Up, and up for at least the hold-up time (or already carrying traffic).
    Up,
    /// Degraded, out of down for at least the hold-up time (or already carrying traffic).
    Degraded,
    /// Up, within the hold-up time.
    UpHeld,
    /// Degraded, within the hold-up time since it left down.
    DegradedHeld,
    /// Down for probes only: carrier and secured, so frames may still get through.
    Fallback,
}

/// Why traffic moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailoverReason {
    /// Traffic starts: there was no usable link before.
    LinkUp,
    /// A link that carried traffic went down.
    LinkDown,
    /// A link that carried traffic is degraded and a better one is usable.
    LinkDegraded,
    /// A better link finished its hold-up (failback, or a link back into balance).
    Failback,
    /// No link is up or degraded: traffic uses links that are down for probes only.
    Fallback,
    /// No link can send: frames are dropped.
    NoLink,
}

impl FailoverReason {
    /// Short name for logs and counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailoverReason::LinkUp => "link up",
            FailoverReason::LinkDown => "link down",
            FailoverReason::LinkDegraded => "link degraded",
            FailoverReason::Failback => "failback",
            FailoverReason::Fallback => "fallback to unmonitored links",
            FailoverReason::NoLink => "no usable link",
        }
    }
}

impl fmt::Display for FailoverReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Traffic moved from one set of links to another (single links in active-backup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    /// When.
    pub at: Instant,
    /// The links that carried traffic before.
    pub from: LinkSet,
    /// The links that carry it now.
    pub to: LinkSet,
    /// Why.
    pub reason: FailoverReason,
}

impl fmt::Display for Failover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "links {} -> {} ({})", self.from, self.to, self.reason)
    }
}

/// Chooses the links that carry traffic.
///
/// The caller feeds link changes with [`set_link`](Self::set_link), then calls
/// [`update`](Self::update) (also at [`poll_timeout`](Self::poll_timeout), when a
/// hold-up ends); per frame it calls [`pick`](Self::pick) or
/// [`pick_frame`](Self::pick_frame), which only hash and choose among the links
/// precomputed by `update`.
///
/// # Rules
/// Each link is ranked by [`Tier`]; a hold-up delays moving traffic *onto* a link, never
/// moves it off one: a link already carrying traffic ranks as if its hold-up were over.
/// - Active-backup: the link with the best (tier, priority, index). So a degraded
///   active link hands over to an up one, a recovered link takes traffic back only
///   after `hold_up_ms` (unless nothing else is usable), and a link that flaps between
///   up and degraded or down stays out of use while another one is fine.
/// - Balance: every link of the best tier present; priorities are not used. A flow goes
///   to the link with the highest rendezvous weight `mix(flow hash, link)`, so removing
///   a link moves only its flows, and they return when it comes back.
/// - Fallback: with no link up or degraded, links that are down for probes only (carrier
///   and secured) carry traffic; with none of those either, [`pick`](Self::pick) returns
///   `None` and the caller drops the frame and counts it.
#[derive(Debug)]
pub struct Selector {
    mode: Mode,
    hold_up: Duration,
    priorities: Vec<u32>,
    views: Vec<LinkView>,
    current: LinkSet,
    tier: Option<Tier>,
    next_timeout: Option<Instant>,
    events: VecDeque<Failover>,
    events_dropped: u64,
}

impl Selector {
    /// A selector over links `0..priorities.len()` (lower priority value preferred), all
    /// down until [`set_link`](Self::set_link).
    pub fn new(cfg: RedundancyConfig, priorities: &[u32]) -> Result<Selector, SelectError> {
        let n = priorities.len();
        if !(1..=MAX_LINKS).contains(&n) {
            return Err(SelectError::LinkCount(n));
        }
        Ok(Selector {
            mode: cfg.mode,
            hold_up: Duration::from_millis(cfg.hold_up_ms),
            priorities: priorities.to_vec(),
            views: vec![LinkView::DOWN; n],
            current: LinkSet::EMPTY,
            tier: None,
            next_timeout: None,
            events: VecDeque::with_capacity(EVENT_QUEUE),
            events_dropped: 0,
        })
    }

    /// Records link `index`'s view (ignored if out of range); takes effect at the next
    /// [`update`](Self::update).
    pub fn set_link(&mut self, index: usize, view: LinkView) {
        if let Some(v) = self.views.get_mut(index) {
            *v = view;
        }
    }

    /// Recomputes the links that carry traffic at `now`; queues a [`Failover`] and
    /// returns true if they changed.
    pub fn update(&mut self, now: Instant) -> bool {
        let mut best: Option<(Tier, u32, usize)> = None;
        let mut next: Option<Instant> = None;
        for i in 0..self.views.len() {
            let prio = self.priorities[i];
            if let Some((tier, ends)) = self.tier_of(i, now) {
                if best.is_none_or(|b| (tier, prio, i) < b) {
                    best = Some((tier, prio, i));
                }
                if let Some(t) = ends {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
        }
        self.next_timeout = next;
        let tier = best.map(|b| b.0);
        let set = match (self.mode, best) {
            (_, None) => LinkSet::EMPTY,
            (Mode::ActiveBackup, Some((_, _, i))) => LinkSet::single(i),
            (Mode::Balance, Some((t, _, _))) => {
                let mut s = LinkSet::EMPTY;
                for i in 0..self.views.len() {
                    if self.tier_of(i, now).is_some_and(|(ti, _)| ti == t) {
                        s.0 |= 1 << i;
                    }
                }
                s
            }
        };
        // Links carrying traffic rank as if their hold-up were over.
        self.tier = tier.map(|t| match t {
            Tier::UpHeld => Tier::Up,
            Tier::DegradedHeld => Tier::Degraded,
            t => t,
        });
        if set == self.current {
            return false;
        }
        let reason = self.reason(set, tier);
        if self.events.len() == EVENT_QUEUE {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(Failover {
            at: now,
            from: self.current,
            to: set,
            reason,
        });
        self.current = set;
        true
    }

    /// A link's tier at `now`, and when its hold-up ends if that would improve it.
    fn tier_of(&self, i: usize, now: Instant) -> Option<(Tier, Option<Instant>)> {
        let v = self.views.get(i)?;
        let carrying = self.current.contains(i);
        let held = |since: Option<Instant>| {
            let end = since.map(|s| s + self.hold_up).filter(|e| *e > now);
            if carrying {
                None
            } else {
                end
            }
        };
        match v.state {
            State::Up => match held(v.up_since) {
                Some(end) => Some((Tier::UpHeld, Some(end))),
                None => Some((Tier::Up, None)),
            },
            State::Degraded => match held(v.usable_since) {
                Some(end) => Some((Tier::DegradedHeld, Some(end))),
                None => Some((Tier::Degraded, None)),
            },
            State::Down => v.transport.then_some((Tier::Fallback, None)),
        }
    }

    fn reason(&self, to: LinkSet, tier: Option<Tier>) -> FailoverReason {
        let removed = self.current.minus(to);
        let state = |s: State| removed.iter().any(|i| self.views[i].state == s);
        if to.is_empty() {
            FailoverReason::NoLink
        } else if tier == Some(Tier::Fallback) {
            FailoverReason::Fallback
        } else if self.current.is_empty() {
            FailoverReason::LinkUp
        } else if state(State::Down) {
            FailoverReason::LinkDown
        } else if state(State::Degraded) {
            FailoverReason::LinkDegraded
        } else {
            FailoverReason::Failback
        }
    }

    /// When [`update`](Self::update) should run next: the end of the earliest hold-up
    /// in progress.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout
    }

    /// The next failover event.
    pub fn poll_event(&mut self) -> Option<Failover> {
        self.events.pop_front()
    }

    /// Failover events dropped because the queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    /// The links carrying traffic.
    pub fn links(&self) -> LinkSet {
        self.current
    }

    /// The tier of the links carrying traffic.
    pub fn tier(&self) -> Option<Tier> {
        self.tier
    }

    /// Active-backup: the active link. Balance: the lowest-index link in use.
    pub fn active(&self) -> Option<usize> {
        self.current.first()
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The link for a frame of the flow with this [`flow_hash`], or `None` (drop).
    /// Allocation-free; in active-backup the hash is not used.
    pub fn pick(&self, flow_hash: u64) -> Option<usize> {
        self.path().pick(flow_hash)
    }

    /// [`pick`](Self::pick) for a raw Ethernet frame, hashing it only when that matters.
    pub fn pick_frame(&self, frame: &[u8]) -> Option<usize> {
        self.path().pick_frame(frame)
    }

    /// The current decision as a [`Path`], for a data plane that picks per frame.
    pub fn path(&self) -> Path {
        Path {
            mode: self.mode,
            links: self.current,
        }
    }
}

/// The links that carry traffic and how frames are spread over them: a copy of a
/// [`Selector`]'s decision that a data plane keeps and picks from per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    mode: Mode,
    links: LinkSet,
}

impl Path {
    /// No link: every frame is dropped.
    pub const NONE: Path = Path {
        mode: Mode::ActiveBackup,
        links: LinkSet::EMPTY,
    };

    /// Every frame on link `i` (a forwarder with one link).
    pub fn single(i: usize) -> Path {
        Path {
            mode: Mode::ActiveBackup,
            links: LinkSet::single(i),
        }
    }

    /// The links in use.
    pub fn links(&self) -> LinkSet {
        self.links
    }

    /// The link for a frame of the flow with this [`flow_hash`], or `None` (drop):
    /// highest random weight over the links in use, so a flow moves only when its own
    /// link goes. Allocation-free; in active-backup the hash is not used.
    #[inline]
    pub fn pick(&self, flow_hash: u64) -> Option<usize> {
        if self.mode == Mode::ActiveBackup || self.links.len() <= 1 {
            return self.links.first();
        }
        let mut best: Option<(u64, usize)> = None;
        for i in self.links.iter() {
            let w = mix(flow_hash ^ SALTS[i % MAX_LINKS]);
            if best.is_none_or(|(bw, _)| w > bw) {
                best = Some((w, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// [`pick`](Self::pick) for a raw Ethernet frame, hashing it only when that matters.
    #[inline]
    pub fn pick_frame(&self, frame: &[u8]) -> Option<usize> {
        if self.mode == Mode::ActiveBackup || self.links.len() <= 1 {
            return self.links.first();
        }
        self.pick(flow_hash(frame))
    }
}

/// A per-link salt for the rendezvous hash, fixed so that both builds of a forwarder
/// and every restart spread flows the same way.
const SALTS: [u64; MAX_LINKS] = {
    let mut t = [0u64; MAX_LINKS];
    let mut i = 0;
    while i < MAX_LINKS {
        t[i] = mix(0x6c69_6e6b ^ i as u64);
        i += 1;
    }
    t
};

/// A 64-bit finalizer (splitmix64): every input bit affects every output bit.
const fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Accumulates fields into a 64-bit hash.
struct FlowHasher(u64);

impl FlowHasher {
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }

    fn bytes(&mut self, b: &[u8]) {
        for c in b.chunks(8) {
            let mut a = [0u8; 8];
            a[..c.len()].copy_from_slice(c);
            self.word(u64::from_le_bytes(a));
        }
        self.word(b.len() as u64);
    }

    fn finish(&self) -> u64 {
        mix(self.0)
    }
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86DD;
const VLAN_TAGS: [u16; 3] = [0x8100, 0x88A8, 0x9100];
const IP_TCP: u8 = 6;
const IP_UDP: u8 = 17;
const IP_SCTP: u8 = 132;

fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, IP_TCP | IP_UDP | IP_SCTP)
}

/// The flow hash of a raw Ethernet frame (destination MAC first, no FCS), for
/// [`Selector::pick`]. Frames of one flow hash alike:
/// - IPv4 / IPv6: protocol and addresses, plus the ports for TCP, UDP and SCTP (not for
///   fragments, so all fragments of a datagram stay together). IPv6 extension headers
///   (hop-by-hop, routing, destination options, fragment, AH) are skipped, at most 8.
/// - Anything else, or an IP header that does not parse: the two MAC addresses.
///
/// Up to two 802.1Q / 802.1ad tags (0x8100, 0x88A8, 0x9100) are skipped and not hashed.
/// Any byte slice is accepted; this never panics and never allocates.
pub fn flow_hash(frame: &[u8]) -> u64 {
    let mut h = FlowHasher(0);
    let Some(macs) = frame.get(..12) else {
        h.bytes(frame);
        return h.finish();
    };
    let mut off = 12;
    let mut ethertype = be16(frame, off);
    for _ in 0..2 {
        match ethertype {
            Some(t) if VLAN_TAGS.contains(&t) => {
                off += 4;
                ethertype = be16(frame, off);
            }
            _ => break,
        }
    }
    let l3 = frame.get(off + 2..).unwrap_or_default();
    let done = match ethertype {
        Some(ETH_IPV4) => hash_ipv4(&mut h, l3),
        Some(ETH_IPV6) => hash_ipv6(&mut h, l3),
        _ => false,
    };
    if !done {
        h = FlowHasher(0);
        h.bytes(macs);
    }
    h.finish()
}

fn hash_ipv4(h: &mut FlowHasher, ip: &[u8]) -> bool {
    let Some(hdr) = ip.get(..20) else {
        return false;
    };
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    if hdr[0] >> 4 != 4 || ihl < 20 {
        return false;
    }
    let proto = hdr[9];
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff; // MF + offset
    h.word(4);
    h.word(u64::from(proto));
    h.bytes(&hdr[12..20]);
    if frag == 0 && has_ports(proto) {
        if let Some(p) = ip.get(ihl..ihl + 4) {
            h.bytes(p);
        }
    }
    true
}

fn hash_ipv6(h: &mut FlowHasher, ip: &[u8]) -> bool {
    let Some(hdr) = ip.get(..40) else {
        return false;
    };
    if hdr[0] >> 4 != 6 {
        return false;
    }
    let mut next = hdr[6];
    let mut off = 40;
    let mut fragment = false;
    for _ in 0..8 {
        let ext = match next {
            0 | 43 | 60 => ip.get(off + 1).map(|l| (usize::from(*l) + 1) * 8),
            44 => {
                let f = be16(ip, off + 2).unwrap_or(0);
                fragment |= f & 0xfff9 != 0; // offset or M flag
                Some(8)
            }
            51 => ip.get(off + 1).map(|l| (usize::from(*l) + 2) * 4),
            _ => break,
        };
        match (ext, ip.get(off)) {
            (Some(len), Some(n)) => {
                next = *n;
                off += len;
            }
            // Truncated inside an extension header: no ports.
            _ => {
                fragment = true;
                break;
            }
        }
    }
    h.word(6);
    h.word(u64::from(next));
    h.bytes(&hdr[8..40]);
    if !fragment && has_ports(next) {
        if let Some(p) = ip.get(off..off + 4) {
            h.bytes(p);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn up(since: Instant) -> LinkView {
        LinkView {
            state: State::Up,
            up_since: Some(since),
            usable_since: Some(since),
            transport: true,
        }
    }

    fn degraded(usable_since: Instant) -> LinkView {
        LinkView {
            state: State::Degraded,
            up_since: None,
            usable_since: Some(usable_since),
            transport: true,
        }
    }

    fn down(transport: bool) -> LinkView {
        LinkView {
            transport,
            ..LinkView::DOWN
        }
    }

    fn ab(priorities: &[u32]) -> Selector {
        Selector::new(RedundancyConfig::default(), priorities).unwrap()
    }

    fn reasons(s: &mut Selector) -> Vec<(LinkSet, LinkSet, FailoverReason)> {
        std::iter::from_fn(|| s.poll_event())
            .map(|e| (e.from, e.to, e.reason))
            .collect()
    }

    #[test]
    fn link_set() {
        let s = LinkSet(0b1010_0101);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 2, 5, 7]);
        assert_eq!(
            (s.len(), s.first(), s.contains(5), s.contains(64)),
            (4, Some(0), true, false)
        );
        assert_eq!(s.minus(LinkSet::single(2)).to_string(), "{0,5,7}");
        assert_eq!(LinkSet::single(64), LinkSet::EMPTY);
        assert_eq!("balance".parse(), Ok(Mode::Balance));
        assert!("lacp".parse::<Mode>().is_err());
        assert_eq!(
            Selector::new(RedundancyConfig::default(), &[]).unwrap_err(),
            SelectError::LinkCount(0)
        );
    }

    #[test]
    fn active_backup_order_up_then_priority_then_index() {
        let t0 = Instant::now();
        let now = t0 + ms(10_000);
        let mut s = ab(&[2, 1, 1, 0]);
        s.set_link(0, up(t0));
        s.set_link(1, up(t0));
        s.set_link(2, up(t0));
        s.set_link(3, degraded(t0));
        assert!(s.update(now));
        assert_eq!(s.pick(123), Some(1));
        assert_eq!(
            reasons(&mut s),
            [(LinkSet::EMPTY, LinkSet::single(1), FailoverReason::LinkUp)]
        );
        s.set_link(1, down(true));
        s.update(now);
        assert_eq!(s.active(), Some(2));
        assert_eq!(
            reasons(&mut s),
            [(
                LinkSet::single(1),
                LinkSet::single(2),
                FailoverReason::LinkDown
            )]
        );
        assert!(!s.update(now), "no change, no event");
        assert!(s.poll_event().is_none());
    }

    #[test]
    fn degraded_active_hands_over_and_failback_waits_for_hold_up() {
        let t0 = Instant::now();
        let mut s = ab(&[1, 2]);
        s.set_link(0, up(t0));
        s.set_link(1, up(t0));
        let t = t0 + ms(5000);
        s.update(t);
        assert_eq!(s.active(), Some(0));
        // Gray failure on link 0: it hands over to the up backup.
        s.set_link(0, degraded(t0));
        s.update(t + ms(1));
        assert_eq!(s.active(), Some(1));
        // Link 0 recovers at t2: traffic stays on 1 until the hold-up ends.
        let t2 = t + ms(30_000);
        s.set_link(0, up(t2));
        s.update(t2);
        assert_eq!(s.active(), Some(1));
        assert_eq!(s.poll_timeout(), Some(t2 + ms(2000)));
        s.update(t2 + ms(1999));
        assert_eq!(s.active(), Some(1));
        s.update(t2 + ms(2000));
        assert_eq!(s.active(), Some(0));
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(
            reasons(&mut s)[1..],
            [
                (
                    LinkSet::single(0),
                    LinkSet::single(1),
                    FailoverReason::LinkDegraded
                ),
                (
                    LinkSet::single(1),
                    LinkSet::single(0),
                    FailoverReason::Failback
                ),
            ]
        );
    }

    #[test]
    fn held_link_is_used_when_nothing_else_is_and_kept_when_it_improves() {
        let t0 = Instant::now();
        let mut s = ab(&[1, 2]);
        s.set_link(0, up(t0));
        s.update(t0);
        assert_eq!(s.active(), Some(0), "only link: no hold-up");
        // Flapping up -> degraded -> up while carrying traffic: it keeps it.
        s.set_link(1, degraded(t0));
        s.set_link(0, degraded(t0));
        s.update(t0 + ms(100));
        s.set_link(0, up(t0 + ms(200)));
        s.update(t0 + ms(200));
        assert_eq!(s.active(), Some(0));
        assert_eq!(reasons(&mut s).len(), 1);
        // Link 1 comes up: held, and link 0 is up, so nothing moves even after hold-up
        // (priority 1 beats 2).
        s.set_link(1, up(t0 + ms(300)));
        s.update(t0 + ms(5000));
        assert_eq!(s.active(), Some(0));
    }

    #[test]
    fn flapping_link_stays_out_of_use() {
        let t0 = Instant::now();
        let mut s = ab(&[1, 2]);
        s.set_link(0, up(t0));
        s.set_link(1, up(t0));
        s.update(t0 + ms(3000));
        let mut t = t0 + ms(3000);
        for _ in 0..20 {
            t += ms(500);
            s.set_link(0, down(false));
            s.update(t);
            t += ms(500);
            s.set_link(0, up(t));
            s.update(t);
            assert_eq!(s.active(), Some(1));
        }
        assert_eq!(reasons(&mut s).len(), 2, "one failover, no flapping");
    }

    #[test]
    fn fallback_then_nothing() {
        let t0 = Instant::now();
        let mut s = ab(&[1, 2]);
        s.set_link(0, down(false));
        s.set_link(1, down(true));
        s.update(t0);
        assert_eq!((s.active(), s.tier()), (Some(1), Some(Tier::Fallback)));
        // A link that just came up beats the fallback at once.
        s.set_link(0, up(t0));
        s.update(t0);
        assert_eq!((s.active(), s.tier()), (Some(0), Some(Tier::Up)));
        s.set_link(0, down(false));
        s.set_link(1, down(false));
        s.update(t0);
        assert_eq!(
            (s.active(), s.pick(1), s.pick_frame(&[0; 60])),
            (None, None, None)
        );
        assert_eq!(
            reasons(&mut s),
            [
                (LinkSet::EMPTY, LinkSet::single(1), FailoverReason::Fallback),
                (
                    LinkSet::single(1),
                    LinkSet::single(0),
                    FailoverReason::LinkDown
                ),
                (LinkSet::single(0), LinkSet::EMPTY, FailoverReason::NoLink),
            ]
        );
    }

    fn flow(i: u32) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&ETH_IPV4.to_be_bytes());
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[9] = IP_UDP;
        ip[12..16].copy_from_slice(&[10, 0, (i >> 8) as u8, i as u8]);
        ip[16..20].copy_from_slice(&[10, 1, 0, 1]);
        ip[20..22].copy_from_slice(&(1024 + (i % 50_000) as u16).to_be_bytes());
        ip[22..24].copy_from_slice(&53u16.to_be_bytes());
        f
    }

    #[test]
    fn balance_spreads_evenly_moves_only_failed_flows_and_brings_them_back() {
        let t0 = Instant::now();
        let cfg = RedundancyConfig {
            mode: Mode::Balance,
            hold_up_ms: 2000,
        };
        let mut s = Selector::new(cfg, &[1, 1, 1, 1]).unwrap();
        for i in 0..4 {
            s.set_link(i, up(t0));
        }
        s.update(t0 + ms(5000));
        assert_eq!(s.links(), LinkSet(0b1111));
        let flows: Vec<u64> = (0..10_000).map(|i| flow_hash(&flow(i))).collect();
        let before: Vec<usize> = flows.iter().map(|h| s.pick(*h).unwrap()).collect();
        let mut count = [0usize; 4];
        for l in &before {
            count[*l] += 1;
        }
        assert!(count.iter().all(|c| (2250..=2750).contains(c)), "{count:?}");
        // Same frames, same links (stable and allocation-free per frame).
        for (i, l) in before.iter().enumerate().take(500) {
            assert_eq!(s.pick_frame(&flow(i as u32)), Some(*l));
        }
        // Link 2 fails: only its flows move, evenly over the others.
        let t1 = t0 + ms(10_000);
        s.set_link(2, down(false));
        s.update(t1);
        let mut moved = [0usize; 4];
        for (h, l) in flows.iter().zip(&before) {
            let now = s.pick(*h).unwrap();
            assert_ne!(now, 2);
            if *l != 2 {
                assert_eq!(now, *l, "a flow of a healthy link moved");
            } else {
                moved[now] += 1;
            }
        }
        assert!(
            moved
                .iter()
                .enumerate()
                .all(|(i, m)| i == 2 || (600..=1050).contains(m)),
            "{moved:?}"
        );
        // It comes back: held for hold_up_ms, then every flow returns.
        let t2 = t1 + ms(1000);
        s.set_link(2, up(t2));
        s.update(t2);
        assert!(!s.links().contains(2));
        assert_eq!(s.poll_timeout(), Some(t2 + ms(2000)));
        s.update(t2 + ms(2000));
        let after: Vec<usize> = flows.iter().map(|h| s.pick(*h).unwrap()).collect();
        assert_eq!(after, before);
        let r = reasons(&mut s);
        assert_eq!(
            r[1],
            (LinkSet(0b1111), LinkSet(0b1011), FailoverReason::LinkDown)
        );
        assert_eq!(
            r[2],
            (LinkSet(0b1011), LinkSet(0b1111), FailoverReason::Failback)
        );
    }

    #[test]
    fn balance_uses_only_the_best_tier() {
        let t0 = Instant::now();
        let cfg = RedundancyConfig {
            mode: Mode::Balance,
            hold_up_ms: 2000,
        };
        let mut s = Selector::new(cfg, &[1, 1, 1]).unwrap();
        s.set_link(0, up(t0));
        s.set_link(1, degraded(t0));
        s.set_link(2, up(t0));
        s.update(t0 + ms(5000));
        assert_eq!(s.links(), LinkSet(0b101));
        s.set_link(0, down(false));
        s.set_link(2, degraded(t0));
        s.update(t0 + ms(6000));
        assert_eq!(s.links(), LinkSet(0b110));
        assert_eq!(s.poll_event().unwrap().reason, FailoverReason::LinkUp);
        assert_eq!(s.poll_event().unwrap().reason, FailoverReason::LinkDown);
    }

    fn frame(vlans: &[u16], ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let mut f = vec![0xAA; 6];
        f.extend_from_slice(&[0xBB; 6]);
        for t in vlans {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0x00, 0x64]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    fn ipv4(proto: u8, frag: u16, sport: u16, payload: u8) -> Vec<u8> {
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[9] = proto;
        ip[12..20].copy_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
        ip.extend_from_slice(&sport.to_be_bytes());
        ip.extend_from_slice(&443u16.to_be_bytes());
        ip.extend_from_slice(&[payload; 16]);
        ip
    }

    fn ipv6(ext: &[u8], next: u8, sport: u16) -> Vec<u8> {
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        ip[6] = next;
        ip[8..40].copy_from_slice(&[0x20; 32]);
        ip.extend_from_slice(ext);
        ip.extend_from_slice(&sport.to_be_bytes());
        ip.extend_from_slice(&80u16.to_be_bytes());
        ip.extend_from_slice(&[0u8; 12]);
        ip
    }

    #[test]
    fn flow_hash_fields() {
        let tcp = |p| frame(&[], ETH_IPV4, &ipv4(IP_TCP, 0, p, 0));
        let h = flow_hash(&tcp(1000));
        assert_ne!(h, flow_hash(&tcp(1001)), "ports count");
        // Payload, MACs and VLAN tags do not.
        assert_eq!(
            h,
            flow_hash(&frame(&[], ETH_IPV4, &ipv4(IP_TCP, 0, 1000, 9)))
        );
        let mut other_macs = tcp(1000);
        other_macs[0] = 1;
        assert_eq!(h, flow_hash(&other_macs));
        assert_eq!(
            h,
            flow_hash(&frame(
                &[0x88A8, 0x8100],
                ETH_IPV4,
                &ipv4(IP_TCP, 0, 1000, 0)
            ))
        );
        // Fragments hash without ports; non-port protocols too.
        let frag = |f, p| flow_hash(&frame(&[], ETH_IPV4, &ipv4(IP_UDP, f, p, 0)));
        assert_eq!(frag(0x2000, 1), frag(0x0010, 2));
        assert_ne!(frag(0, 1), frag(0, 2));
        let icmp = |p| flow_hash(&frame(&[], ETH_IPV4, &ipv4(1, 0, p, 0)));
        assert_eq!(icmp(1), icmp(2));
        // IPv6, through a hop-by-hop header; a fragment header drops the ports.
        let v6 = |ext: &[u8], next, p| flow_hash(&frame(&[0x8100], ETH_IPV6, &ipv6(ext, next, p)));
        let hbh = [IP_UDP, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(v6(&hbh, 0, 5), v6(&[], IP_UDP, 5));
        assert_ne!(v6(&hbh, 0, 5), v6(&hbh, 0, 6));
        let fragment = [IP_UDP, 0, 0, 1, 0, 0, 0, 1]; // M flag
        assert_eq!(v6(&fragment, 44, 5), v6(&fragment, 44, 6));
        // Non-IP: the MACs.
        let arp = frame(&[], 0x0806, &[1; 28]);
        assert_eq!(
            flow_hash(&arp),
            flow_hash(&frame(&[0x8100], 0x0806, &[2; 28]))
        );
    }

    #[test]
    fn flow_hash_every_truncation() {
        let frames = [
            frame(&[0x88A8, 0x8100], ETH_IPV4, &ipv4(IP_TCP, 0, 1, 0)),
            frame(
                &[0x8100],
                ETH_IPV6,
                &ipv6(&[IP_UDP, 0, 0, 0, 0, 0, 0, 0], 0, 7),
            ),
            frame(&[], ETH_IPV6, &ipv6(&[51, 255, 0, 0, 0, 0, 0, 0], 60, 7)),
            frame(&[0x8100, 0x8100, 0x8100], ETH_IPV4, &ipv4(IP_UDP, 0, 1, 0)),
        ];
        for f in &frames {
            for n in 0..=f.len() {
                flow_hash(&f[..n]);
                let mut g = f[..n].to_vec();
                for b in g.iter_mut().skip(14) {
                    *b = 0xFF;
                }
                flow_hash(&g);
            }
        }
    }

    proptest! {
        #[test]
        fn flow_hash_never_panics(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            flow_hash(&v);
        }

        #[test]
        fn flow_hash_never_panics_on_ip_like(
            tags in 0usize..3, v6 in any::<bool>(),
            rest in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let mut l3 = rest;
            if let Some(b) = l3.first_mut() {
                *b = if v6 { 0x60 | (*b & 0x0f) } else { 0x40 | (*b & 0x0f) };
            }
            let et = if v6 { ETH_IPV6 } else { ETH_IPV4 };
            flow_hash(&frame(&[0x8100; 2][..tags], et, &l3));
        }
    }
}

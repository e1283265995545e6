//! A simulated network of MKA participants: in-memory delivery of MKPDUs, a simulated
//! clock, and a minimal data-plane model that records the SAs each side installed and
//! checks the actions are legal and keep traffic flowing.

use macsec::crypto::{CipherSuite, Salt, SecretKey, Ssci};
use macsec::mka::{Action, Ckn, ConfidentialityOffset, Config, Ki, Participant};
use macsec::wire::Sci;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

pub const CAK: &str = "135BD758B0EE5C11C55FF6AB19FDB199";
pub const CKN: &str = "96437A93CCF10D9D0011223344556677";

/// SCI 02:00:00:00:00:nn port 1.
pub fn sci(n: u8) -> Sci {
    Sci([0x02, 0, 0, 0, 0, n, 0, 1])
}

/// A default configuration for node `n` with the shared CAK/CKN.
pub fn config(n: u8) -> Config {
    Config::new(
        SecretKey::from_hex(CAK).unwrap(),
        Ckn::from_hex(CKN).unwrap(),
        sci(n),
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sa {
    pub ki: Ki,
    pub suite: CipherSuite,
    pub ssci: Ssci,
    pub salt: Salt,
    pub key: Vec<u8>,
    pub confidentiality: Option<ConfidentialityOffset>,
}

/// The data-plane model: what a SecY would hold after applying the actions.
#[derive(Debug, Default)]
pub struct DataPlane {
    pub rx_scs: BTreeSet<Sci>,
    pub rx_sas: BTreeMap<(Sci, u8), Sa>,
    pub tx_sas: BTreeMap<u8, Sa>,
    pub tx_an: Option<u8>,
    pub secured: bool,
    pub enable_count: usize,
}

impl DataPlane {
    /// Applies one action, asserting it is legal in the current state.
    pub fn apply(&mut self, a: Action) {
        match a {
            Action::InstallRxSc { sci } => assert!(self.rx_scs.insert(sci), "RX SC twice"),
            Action::InstallRxSa {
                sci,
                an,
                key,
                ki,
                lowest_pn,
                ssci,
                salt,
                suite,
            } => {
                assert!(self.rx_scs.contains(&sci), "RX SA without its SC");
                assert!(an < 4 && lowest_pn >= 1);
                assert_eq!(key.len(), suite.key_len());
                let sa = Sa {
                    ki,
                    suite,
                    ssci,
                    salt,
                    key: key.expose_secret().to_vec(),
                    confidentiality: None,
                };
                assert!(
                    self.rx_sas.insert((sci, an), sa).is_none(),
                    "RX SA {sci} AN {an} installed over an existing one"
                );
            }
            Action::InstallTxSa {
                an,
                key,
                ki,
                next_pn,
                ssci,
                salt,
                suite,
                confidentiality,
            } => {
                assert_eq!(next_pn, 1);
                assert_eq!(key.len(), suite.key_len());
                assert_ne!(self.tx_an, Some(an), "TX SA installed over the one in use");
                let sa = Sa {
                    ki,
                    suite,
                    ssci,
                    salt,
                    key: key.expose_secret().to_vec(),
                    confidentiality: Some(confidentiality),
                };
                assert!(self.tx_sas.insert(an, sa).is_none(), "TX SA twice");
            }
            Action::EnableTx { an } => {
                assert!(self.tx_sas.contains_key(&an), "EnableTx without TX SA");
                self.tx_an = Some(an);
                self.enable_count += 1;
            }
            Action::DeleteRxSa { sci, an } => {
                assert!(
                    self.rx_sas.remove(&(sci, an)).is_some(),
                    "delete missing RX SA"
                )
            }
            Action::DeleteTxSa { an } => {
                assert!(self.tx_sas.remove(&an).is_some(), "delete missing TX SA");
                if self.tx_an == Some(an) {
                    self.tx_an = None;
                }
            }
            Action::DeleteRxSc { sci } => {
                assert!(
                    !self.rx_sas.keys().any(|(s, _)| *s == sci),
                    "RX SC deleted with SAs left"
                );
                assert!(self.rx_scs.remove(&sci), "delete missing RX SC");
            }
            Action::Secured => {
                assert!(!self.secured, "Secured twice");
                assert!(self.tx_an.is_some());
                self.secured = true;
            }
            Action::Unsecured => {
                assert!(self.secured, "Unsecured while not secured");
                assert!(self.tx_sas.is_empty() && self.tx_an.is_none());
                self.secured = false;
            }
            other => panic!("unexpected action {other:?}"),
        }
    }

    pub fn tx_sa(&self) -> Option<&Sa> {
        self.tx_an.and_then(|an| self.tx_sas.get(&an))
    }
}

pub struct Node {
    pub p: Participant,
    pub dp: DataPlane,
}

pub struct Net {
    pub t0: Instant,
    pub now: Instant,
    pub nodes: Vec<Node>,
    /// Directed links (from, to) that drop everything.
    pub blocked: BTreeSet<(usize, usize)>,
    /// Check the no-loss invariant: whatever AN a node transmits with is installed
    /// as an RX SA (same key) at every peer that holds it live.
    pub strict: bool,
    /// Every frame sent, with its sender index.
    pub captured: Vec<(usize, Vec<u8>)>,
    pub max_actions: usize,
}

impl Net {
    pub fn new(cfgs: Vec<Config>) -> Net {
        let t0 = Instant::now();
        let nodes = cfgs
            .into_iter()
            .map(|c| Node {
                p: Participant::new(c, t0).unwrap(),
                dp: DataPlane::default(),
            })
            .collect();
        Net {
            t0,
            now: t0,
            nodes,
            blocked: BTreeSet::new(),
            strict: false,
            captured: Vec::new(),
            max_actions: 0,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Restarts node `i` with a new participant (new MI) and an empty data plane.
    pub fn restart(&mut self, i: usize, cfg: Config) {
        self.nodes[i] = Node {
            p: Participant::new(cfg, self.now).unwrap(),
            dp: DataPlane::default(),
        };
    }

    pub fn cut(&mut self, a: usize, b: usize) {
        self.blocked.insert((a, b));
        self.blocked.insert((b, a));
    }

    pub fn heal(&mut self, a: usize, b: usize) {
        self.blocked.remove(&(a, b));
        self.blocked.remove(&(b, a));
    }

    pub fn isolate(&mut self, i: usize) {
        for j in 0..self.nodes.len() {
            if j != i {
                self.cut(i, j);
            }
        }
    }

    pub fn heal_all(&mut self) {
        self.blocked.clear();
    }

    fn drain(&mut self, i: usize) {
        let mut n = 0;
        while let Some(a) = self.nodes[i].p.poll_action() {
            self.nodes[i].dp.apply(a);
            n += 1;
        }
        self.max_actions = self.max_actions.max(n);
    }

    /// Delivers every pending MKPDU (and the ones they trigger) at the current time.
    pub fn pump(&mut self) {
        let n = self.nodes.len();
        let mut queue: VecDeque<(usize, Vec<u8>)> = VecDeque::new();
        let mut guard = 0;
        loop {
            for i in 0..n {
                self.drain(i);
                while let Some(f) = self.nodes[i].p.poll_transmit() {
                    queue.push_back((i, f));
                }
            }
            self.check();
            let Some((from, f)) = queue.pop_front() else {
                break;
            };
            guard += 1;
            assert!(guard < 10_000, "MKPDU storm");
            for to in 0..n {
                if to == from || self.blocked.contains(&(from, to)) {
                    continue;
                }
                let _ = self.nodes[to].p.handle_mkpdu(self.now, &f);
                self.drain(to);
                self.check();
            }
            self.captured.push((from, f));
        }
    }

    /// Delivers one frame to node `to` now, as if it came from the wire.
    pub fn inject(&mut self, to: usize, frame: &[u8]) -> Result<(), macsec::mka::RxError> {
        let r = self.nodes[to].p.handle_mkpdu(self.now, frame);
        self.drain(to);
        r
    }

    /// Fires the timers that are due now. A deadline that stays in the past after
    /// `handle_timeout` would make a real event loop spin: assert it moved on.
    fn fire_timers(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i]
                .p
                .poll_timeout()
                .is_some_and(|t| t <= self.now)
            {
                self.nodes[i].p.handle_timeout(self.now);
                let t = self.nodes[i].p.poll_timeout().unwrap();
                assert!(
                    t > self.now,
                    "node {i}: poll_timeout stuck in the past at {:?}",
                    self.elapsed()
                );
            }
        }
    }

    /// Runs the simulation for `d`, firing timers in order.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        let mut guard = 0u64;
        loop {
            self.pump();
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.p.poll_timeout())
                .min()
                .expect("a participant always has a hello timer");
            if next > end {
                self.now = end;
                break;
            }
            if next > self.now {
                self.now = next;
            }
            guard += 1;
            assert!(guard < 1_000_000, "timer livelock");
            self.fire_timers();
        }
    }

    /// Runs until `cond` holds (checked after every timer step), at most `limit`.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            self.pump();
            if cond(self) {
                return true;
            }
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.p.poll_timeout())
                .min()
                .unwrap()
                .min(end);
            if next > self.now {
                self.now = next;
            }
            self.fire_timers();
        }
        self.pump();
        cond(self)
    }

    /// Every node transmits, and all transmit with the same KI.
    pub fn all_secured_same_key(&self) -> bool {
        let first = self.nodes[0].dp.tx_sa().map(|s| s.ki);
        first.is_some()
            && self
                .nodes
                .iter()
                .all(|n| n.dp.tx_sa().map(|s| s.ki) == first)
    }

    fn check(&self) {
        for (xi, x) in self.nodes.iter().enumerate() {
            let xs = x.p.sci();
            // Key material consistency: an RX SA for X's SC with the KI of one of X's TX
            // SAs must hold the same key, salt, suite and X's SSCI.
            for (an, tx) in &x.dp.tx_sas {
                for (yi, y) in self.nodes.iter().enumerate() {
                    if yi == xi {
                        continue;
                    }
                    if let Some(rx) = y.dp.rx_sas.get(&(xs, *an)) {
                        if rx.ki == tx.ki {
                            assert_eq!(rx.key, tx.key, "key mismatch for {:?}", tx.ki);
                            assert_eq!(rx.salt, tx.salt);
                            assert_eq!(rx.suite, tx.suite);
                            assert_eq!(rx.ssci, tx.ssci, "SSCI of {xs} differs at node {yi}");
                        }
                    }
                }
            }
            if !self.strict {
                continue;
            }
            let Some(an) = x.dp.tx_an else { continue };
            let ki = x.dp.tx_sas[&an].ki;
            for (yi, y) in self.nodes.iter().enumerate() {
                if yi == xi || !y.p.live_peers().contains(&xs) {
                    continue;
                }
                let got = y.dp.rx_sas.get(&(xs, an)).map(|s| s.ki);
                assert_eq!(
                    got,
                    Some(ki),
                    "at {:?}: node {xi} transmits AN {an} ({ki:?}) but live peer {yi} has {got:?}",
                    self.elapsed()
                );
            }
        }
    }
}

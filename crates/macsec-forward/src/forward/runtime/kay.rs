//! A link's KaY: one MKA participant per key of the chain that may be used now (one CA
//! each; the *principal* one drives the SecY, 802.1X-2010 12.2), the socket their
//! MKPDUs travel on, a reader thread that turns received MKPDUs into channel messages,
//! and the application of the principal's actions to the link's SecY halves.
//!
//! Rollover (issue 15): a newer key's participant starts beside the principal one with
//! its key server role held ([`Participant::set_sak_hold`]): it takes part in its CA
//! but distributes nothing. Once it has a live peer, [`choose_principal`] makes it the
//! principal: its key server distributes a SAK on an AN the old CA's SAs do not use
//! ([`Participant::set_avoid_ans`]), every member installs it for receive before the key
//! server transmits with it (the usual MKA order), and the old CA's SAs keep receiving
//! until they are retired, a MKA Life Time after the new CA carries traffic, or at the
//! old key's end. A participant that is not principal but is handed a SAK by its key
//! server becomes principal first (the key server decided), so no SA a peer transmits
//! with is ever missing.

use crate::config::mka::{protection_of, MkaSettings};
use crate::config::Setting;
use crate::forward::worker::{RxOp, TxOp, Workers};
use crate::io::control::ControlSocket;
use crate::keychain::{choose_principal, reason, Candidate, ChainKey, KeyChain, KeyState};
use crossbeam::channel::Sender;
use macsec::crypto::{CipherSuite, Ssci};
use macsec::mka::{Action, Ckn, Participant};
use macsec::secy::{Protection, RxStats, TxStats, XpnParams};
use macsec::wire::Sci;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A received MKPDU: the link it came in on, and the frame.
pub(super) type Mkpdu = (usize, Vec<u8>);

/// What applying the participants' actions changed that the control thread must know.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Changes {
    /// The link became secured (`Some(true)`) or not (`Some(false)`).
    pub(super) secured: Option<bool>,
    /// A new SAK was installed for transmission: its AN and KN.
    pub(super) new_key: Option<(u8, u32)>,
    /// Traffic moved to another key's CA: the event's message.
    pub(super) key_switch: Option<String>,
}

impl Changes {
    fn merge(&mut self, o: Changes) {
        if o.secured.is_some() {
            self.secured = o.secured;
        }
        if o.new_key.is_some() {
            self.new_key = o.new_key;
        }
        if o.key_switch.is_some() {
            self.key_switch = o.key_switch;
        }
    }
}

/// What every participant of a link's KaY is built from.
pub(super) struct KaySetup {
    /// `[mka]` (its keys are not read here: the chain is passed in).
    pub(super) mka: Arc<MkaSettings>,
    /// The link's SCI.
    pub(super) sci: Sci,
    /// The SecY's transmit protection (the offset the key server distributes).
    pub(super) protection: Protection,
}

/// One key's participant.
struct Member {
    key: ChainKey,
    participant: Participant,
    /// Receive SAs (peer SCI, AN) and transmit SAs (AN) it installed that are still there.
    rx: Vec<(Sci, u8)>,
    tx: Vec<u8>,
    /// What happens to it once the principal carries traffic (it was principal before).
    after_carried: Option<Demoted>,
    /// When that happens.
    retire_at: Option<Instant>,
}

/// What becomes of a participant that was the principal once the new principal carries
/// traffic (plus a MKA Life Time, so the peer has moved too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Demoted {
    /// A newer primary key took over: stopped, and not used again while valid.
    Retire,
    /// A fallback took over, or the fallback handed back: its SAs go and it starts
    /// afresh beside the principal (a clean CA to come back to).
    Restart,
}

impl Member {
    fn live(&self) -> bool {
        !self.participant.live_peers().is_empty()
    }

    fn ans(&self) -> u8 {
        self.rx
            .iter()
            .map(|(_, a)| *a)
            .chain(self.tx.iter().copied())
            .fold(0u8, |m, a| m | 1 << a)
    }
}

/// One link's KaY.
pub(super) struct Kay {
    setup: KaySetup,
    members: Vec<Member>,
    /// The CKN of the member that drives the SecY.
    principal: Option<Ckn>,
    /// Keys a newer key took over from while they were still valid: not used again.
    retired: Vec<Ckn>,
    link: usize,
    name: String,
    sock: Arc<ControlSocket>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    pub(super) cipher: CipherSuite,
    /// The last MKPDU send error, logged once until sending works again (a link that is
    /// down would otherwise log every hello).
    send_error: Option<std::io::ErrorKind>,
    /// `[mka] vlan`: the VLAN ID our MKPDUs carry and the only one we accept them on.
    vlan: Option<u16>,
    /// The link is secured (the principal's CA, or during a switch the previous one).
    secured: bool,
    /// When the link was last secured, while it is (and as Unix time, for status).
    pub(super) secured_since: Option<Instant>,
    pub(super) secured_since_unix: Option<f64>,
    /// When the last MKPDU arrived.
    pub(super) last_mkpdu: Option<Instant>,
    /// Transmit SAs installed (the first SAK and every rekey or key switch after it).
    pub(super) keys_installed: u64,
    /// Times traffic moved from one key's CA to another's.
    pub(super) key_switches: u64,
    /// The transmit SA in use (the encoding SA).
    tx_an: Option<u8>,
    /// Receive SCs created.
    rx_scs: Vec<Sci>,
}

/// `frame` (DA ‖ SA ‖ EtherType ‖ body) with an 802.1Q tag for `vid` (priority 0)
/// inserted after the addresses.
fn with_vlan_tag(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(&frame[..12.min(frame.len())]);
    out.extend_from_slice(&macsec::wire::ethernet::ethertype::VLAN.to_be_bytes());
    out.extend_from_slice(&(vid & 0x0FFF).to_be_bytes());
    out.extend_from_slice(frame.get(12..).unwrap_or(&[]));
    out
}

/// The thread that reads link `link`'s MKPDUs from `sock` until `stop`.
fn spawn_reader(
    link: usize,
    sock: Arc<ControlSocket>,
    stop: Arc<AtomicBool>,
    to: Sender<Mkpdu>,
) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("mka-rx-{link}"))
        .spawn(move || {
            let mut buf = vec![0u8; 2048];
            let mut failing = false;
            // The socket's filter lets through only MKPDUs of our VLAN (`[mka] vlan`).
            while !stop.load(Ordering::Relaxed) {
                match sock.recv(&mut buf, Duration::from_millis(200)) {
                    Ok(Some(f)) if !f.truncated => {
                        failing = false;
                        // A full queue means a flood: drop, the KaY counts nothing lost.
                        let _ = to.try_send((link, buf[..f.len].to_vec()));
                    }
                    Ok(_) => failing = false,
                    Err(e) => {
                        if !failing {
                            tracing::warn!("MKA socket of link {link}: {e}");
                            failing = true;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        })
        .ok()
}

impl Kay {
    /// Starts the reader thread of link `link`'s KaY socket; MKPDUs go to `to`. The
    /// participants start with the first [`Kay::update_chain`].
    pub(super) fn start(
        link: usize,
        name: &str,
        setup: KaySetup,
        sock: ControlSocket,
        cipher: CipherSuite,
        to: Sender<Mkpdu>,
    ) -> Kay {
        let sock = Arc::new(sock);
        let stop = Arc::new(AtomicBool::new(false));
        let reader = spawn_reader(link, sock.clone(), stop.clone(), to);
        let vlan = setup.mka.vlan;
        Kay {
            setup,
            members: Vec::new(),
            principal: None,
            retired: Vec::new(),
            link,
            name: name.to_owned(),
            sock,
            stop,
            reader,
            cipher,
            send_error: None,
            vlan,
            secured: false,
            secured_since: None,
            secured_since_unix: None,
            last_mkpdu: None,
            keys_installed: 0,
            key_switches: 0,
            tx_an: None,
            rx_scs: Vec::new(),
        }
    }

    /// Moves the KaY to a new socket (its port was made anew).
    pub(super) fn reopen(&mut self, sock: ControlSocket, to: Sender<Mkpdu>) {
        self.stop_reader();
        let sock = Arc::new(sock);
        self.stop = Arc::new(AtomicBool::new(false));
        self.reader = spawn_reader(self.link, sock.clone(), self.stop.clone(), to);
        self.sock = sock;
        self.send_error = None;
    }

    fn stop_reader(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// Stops the reader thread.
    pub(super) fn stop(mut self) {
        self.stop_reader();
    }

    fn index(&self, ckn: &Ckn) -> Option<usize> {
        self.members.iter().position(|m| m.key.ckn == *ckn)
    }

    fn principal_index(&self) -> Option<usize> {
        self.principal.as_ref().and_then(|c| self.index(c))
    }

    /// The principal participant (or, with none, the first one): the one `macsec
    /// status` describes.
    pub(super) fn participant(&self) -> Option<&Participant> {
        self.principal_index()
            .or((!self.members.is_empty()).then_some(0))
            .map(|i| &self.members[i].participant)
    }

    /// The CKN (hex) of the CA carrying traffic.
    pub(super) fn ckn_hex(&self) -> Option<String> {
        self.principal_index()
            .map(|i| self.members[i].key.ckn_hex())
    }

    /// Starts and stops participants as `chain` says at chain time `t`, and chooses the
    /// principal. Call it at start, at every key start or end, and after a reload.
    pub(super) fn update_chain(
        &mut self,
        chain: &KeyChain,
        t: SystemTime,
        now: Instant,
        w: &Workers,
    ) -> Changes {
        let mut ch = Changes::default();
        // Keys gone from the chain (a reload), changed CAKs, and expired keys: their
        // participants stop and their SAs go at once (an expired key is never used).
        let mut i = 0;
        while i < self.members.len() {
            let m = &self.members[i];
            let why = match chain.find(&m.key.ckn) {
                None => Some("removed from the key chain"),
                Some((_, k)) if !k.same_ca(&m.key) => Some("its CAK changed"),
                Some((_, k)) if !k.valid_at(t) => Some("expired"),
                Some(_) => None,
            };
            match why {
                Some(why) => ch.merge(self.remove_member(i, why, false, w)),
                None => i += 1,
            }
        }
        // Start-and-end changes of keys still there.
        for m in &mut self.members {
            if let Some((_, k)) = chain.find(&m.key.ckn) {
                m.key.start = k.start;
                m.key.end = k.end;
                m.key.fallback = k.fallback;
                m.key.origin = k.origin.clone();
            }
        }
        self.retired.retain(|c| chain.find(c).is_some());
        // Retirements and restarts that are due.
        let mut i = 0;
        while i < self.members.len() {
            let m = &self.members[i];
            let due = m.retire_at.is_some_and(|r| r <= now)
                && Some(&m.key.ckn) != self.principal.as_ref();
            match (due, m.after_carried) {
                (true, Some(Demoted::Retire)) => {
                    ch.merge(self.remove_member(i, "a newer key carries the traffic", true, w))
                }
                (true, _) => ch.merge(self.remove_member(
                    i,
                    "no longer carries traffic; restarted beside the key in use",
                    false,
                    w,
                )),
                (false, _) => i += 1,
            }
        }
        // New valid keys: a participant each, held until chosen.
        for k in chain.keys() {
            if !k.valid_at(t) || self.retired.contains(&k.ckn) || self.index(&k.ckn).is_some() {
                continue;
            }
            let cfg = self
                .setup
                .mka
                .participant_config(k, self.setup.sci, self.setup.protection);
            match Participant::new(cfg, now) {
                Ok(mut p) => {
                    p.set_sak_hold(true);
                    tracing::info!(
                        "link {}: MKA: participant for key {} ({}{}) started",
                        self.name,
                        k.ckn_hex(),
                        k.origin,
                        if k.fallback { ", fallback" } else { "" }
                    );
                    self.members.push(Member {
                        key: k.duplicate(),
                        participant: p,
                        rx: Vec::new(),
                        tx: Vec::new(),
                        after_carried: None,
                        retire_at: None,
                    });
                }
                Err(e) => tracing::error!(
                    "link {}: MKA: key {} ({}): {e}",
                    self.name,
                    k.ckn_hex(),
                    k.origin
                ),
            }
        }
        ch.merge(self.choose(chain, t, now));
        ch
    }

    /// Lets [`choose_principal`] pick the principal and promotes it if it changed.
    fn choose(&mut self, chain: &KeyChain, t: SystemTime, now: Instant) -> Changes {
        let (cands, cur) = self.candidates(chain);
        let Some(next) = choose_principal(chain, t, &cands, cur) else {
            return Changes::default();
        };
        if Some(next) == cur {
            return Changes::default();
        }
        let ckn = chain.keys()[next].ckn;
        match self.index(&ckn) {
            Some(i) => {
                let why = reason(chain, t, &cands, next);
                self.promote(i, &why, chain, now)
            }
            None => Changes::default(),
        }
    }

    /// The members as candidates (key index in `chain`), and the principal's key index.
    fn candidates(&self, chain: &KeyChain) -> (Vec<Candidate>, Option<usize>) {
        let cands = self
            .members
            .iter()
            .filter_map(|m| {
                chain.find(&m.key.ckn).map(|(key, _)| Candidate {
                    key,
                    live: m.live(),
                })
            })
            .collect();
        let cur = self
            .principal
            .as_ref()
            .and_then(|c| chain.find(c))
            .map(|(k, _)| k);
        (cands, cur)
    }

    /// Makes member `i` the principal: its key server may distribute (on ANs the other
    /// CAs' SAs do not use); the previous principal is held, and retired once the new
    /// one carries traffic if the new key is a newer primary.
    fn promote(&mut self, i: usize, why: &str, chain: &KeyChain, now: Instant) -> Changes {
        let mut ch = Changes::default();
        let new = self.members[i].key.ckn;
        let old = self.principal.replace(new);
        let new_hex = self.members[i].key.ckn_hex();
        if let Some(o) = old.as_ref().and_then(|c| self.index(c)) {
            let newer = match (chain.find(&new), chain.find(&self.members[o].key.ckn)) {
                (Some((a, ka)), Some((b, kb))) => {
                    !ka.fallback && !kb.fallback && chain.prefers(a, b)
                }
                _ => false,
            };
            let m = &mut self.members[o];
            m.participant.set_sak_hold(true);
            m.after_carried = Some(if newer {
                Demoted::Retire
            } else {
                Demoted::Restart
            });
            let msg = format!(
                "traffic moves from key {} to key {new_hex} ({why})",
                m.key.ckn_hex()
            );
            tracing::info!("link {}: MKA: {msg}", self.name);
            self.key_switches += 1;
            ch.key_switch = Some(msg);
        } else if self.members.len() > 1 {
            tracing::info!(
                "link {}: MKA: key {new_hex} is the principal ({why})",
                self.name
            );
        }
        // A member that was to go because of the previous principal stays.
        let m = &mut self.members[i];
        m.after_carried = None;
        m.retire_at = None;
        self.refresh_avoid();
        let m = &mut self.members[i];
        m.participant.set_sak_hold(false);
        if old.is_some() {
            // A fresh SAK from this CA's key server (a no-op elsewhere), so the switch
            // happens now and not at the next membership change.
            m.participant.request_rekey();
            m.participant.handle_timeout(now);
        }
        ch
    }

    /// Tells the principal which ANs the other members' SAs use.
    fn refresh_avoid(&mut self) {
        let Some(p) = self.principal_index() else {
            return;
        };
        let others = self
            .members
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != p)
            .fold(0u8, |m, (_, x)| m | x.ans());
        self.members[p].participant.set_avoid_ans(others);
    }

    /// Stops member `i`'s participant and deletes its SAs. `retired`: a newer key took
    /// over (the key is not used again while valid).
    fn remove_member(&mut self, i: usize, why: &str, retired: bool, w: &Workers) -> Changes {
        let mut ch = Changes::default();
        let m = self.members.remove(i);
        let was_principal = self.principal.as_ref() == Some(&m.key.ckn);
        tracing::info!(
            "link {}: MKA: key {} ({}) {}: its participant stops{}",
            self.name,
            m.key.ckn_hex(),
            m.key.origin,
            if retired { "retired" } else { why },
            if retired {
                format!(" ({why})")
            } else {
                String::new()
            }
        );
        for (sci, an) in &m.rx {
            w.rx(self.link, RxOp::RemoveSa { sci: *sci, an: *an });
        }
        for an in &m.tx {
            if Some(*an) == self.tx_an {
                self.tx_an = None;
            }
            w.tx(self.link, TxOp::RemoveSa(*an));
        }
        if retired {
            self.retired.push(m.key.ckn);
        }
        if was_principal {
            self.principal = None;
            if self.secured {
                tracing::warn!(
                    "link {}: MKA: not secured: the key carrying traffic {why}",
                    self.name
                );
                self.set_secured(false, &mut ch);
            }
        }
        self.refresh_avoid();
        ch
    }

    fn set_secured(&mut self, on: bool, ch: &mut Changes) {
        if self.secured == on {
            return;
        }
        self.secured = on;
        if on {
            self.secured_since = Some(Instant::now());
            self.secured_since_unix = Some(crate::control::events::now_unix());
        } else {
            self.secured_since = None;
            self.secured_since_unix = None;
        }
        ch.secured = Some(on);
    }

    /// Hands a received MKPDU to the participant of its CKN (or, for an unknown CKN,
    /// to the principal, which counts it).
    pub(super) fn receive(&mut self, now: Instant, frame: &[u8]) {
        self.last_mkpdu = Some(now);
        let ckn = macsec::mka::pdu::decode_frame(frame)
            .ok()
            .map(|d| d.pdu.basic.ckn);
        let i = ckn
            .and_then(|c| self.index(&c))
            .or_else(|| self.principal_index())
            .or((!self.members.is_empty()).then_some(0));
        if let Some(i) = i {
            if let Err(e) = self.members[i].participant.handle_mkpdu(now, frame) {
                tracing::debug!("link {}: MKPDU dropped: {e}", self.name);
            }
        }
    }

    /// Runs every participant's timers.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        for m in &mut self.members {
            m.participant.handle_timeout(now);
        }
    }

    /// When [`Kay::handle_timeout`] (or, for a retirement, [`Kay::update_chain`]) is due.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.members
            .iter()
            .flat_map(|m| [m.participant.poll_timeout(), m.retire_at])
            .flatten()
            .min()
    }

    /// Asks the principal's key server for a fresh SAK; whether this end is it.
    pub(super) fn request_rekey(&mut self) -> bool {
        match self.principal_index() {
            Some(i) => self.members[i].participant.request_rekey(),
            None => false,
        }
    }

    /// Applies the principal's pending actions to the data plane (802.1X 12.x, the SecY
    /// interface), then sends every participant's pending MKPDUs: actions first, because
    /// an MKPDU may announce an SA that must already exist. The other participants'
    /// actions are dropped, except that one handed a SAK by its key server becomes the
    /// principal first, and receive SCs are always created. Then re-chooses the
    /// principal (liveness may have changed).
    pub(super) fn drain(
        &mut self,
        w: &Workers,
        chain: &KeyChain,
        t: SystemTime,
        now: Instant,
    ) -> Changes {
        let mut ch = Changes::default();
        // The current principal's actions first (a lost peer's deletions), then the
        // choice (liveness may have changed), then the new principal's.
        let mut applied = self.apply_pending(w, chain, t, now, &mut ch);
        ch.merge(self.choose(chain, t, now));
        applied |= self.apply_pending(w, chain, t, now, &mut ch);
        if applied {
            self.refresh_avoid();
            // The MKPDUs below may tell peers that our receive SAs exist (SAK Use) or
            // that we transmit with a new AN: those must be true in the data plane first.
            w.sync();
        }
        for i in 0..self.members.len() {
            while let Some(f) = self.members[i].participant.poll_transmit() {
                self.send(f);
            }
        }
        ch
    }

    /// Applies the principal's pending actions (promoting a participant handed a SAK
    /// first); returns whether anything was applied.
    fn apply_pending(
        &mut self,
        w: &Workers,
        chain: &KeyChain,
        t: SystemTime,
        now: Instant,
        ch: &mut Changes,
    ) -> bool {
        let mut applied = false;
        // Until no participant has actions left (a promotion may add some).
        for _round in 0..4 {
            // The principal first, then the others (which may take over).
            let mut order: Vec<usize> = (0..self.members.len()).collect();
            if let Some(p) = self.principal_index() {
                order.retain(|i| *i != p);
                order.insert(0, p);
            }
            let mut any = false;
            for i in order {
                let actions: Vec<Action> =
                    std::iter::from_fn(|| self.members[i].participant.poll_action()).collect();
                if actions.is_empty() {
                    continue;
                }
                any = true;
                let takes_sak = actions
                    .iter()
                    .any(|a| matches!(a, Action::InstallRxSa { .. } | Action::InstallTxSa { .. }));
                if Some(i) != self.principal_index() && takes_sak && self.members[i].key.valid_at(t)
                {
                    ch.merge(self.promote(i, "its key server distributed a SAK", chain, now));
                }
                let is_principal = Some(i) == self.principal_index();
                for a in actions {
                    if is_principal {
                        self.apply(i, a, w, ch, now);
                        applied = true;
                    } else if let Action::InstallRxSc { sci } = a {
                        self.add_rx_sc(sci, w);
                        applied = true;
                    } else {
                        tracing::debug!(
                            "link {}: MKA: key {} is not the principal: {a:?} not applied",
                            self.name,
                            self.members[i].key.ckn_hex()
                        );
                    }
                }
            }
            if !any {
                break;
            }
        }
        applied
    }

    fn send(&mut self, f: Vec<u8>) {
        let f = match self.vlan {
            Some(vid) => with_vlan_tag(&f, vid),
            None => f,
        };
        match self.sock.send(&f) {
            Ok(()) => {
                if self.send_error.take().is_some() {
                    tracing::info!("link {}: MKPDUs are going out again", self.name);
                }
            }
            Err(e) => {
                if self.send_error != Some(e.kind()) {
                    tracing::warn!(
                        "link {}: sending an MKPDU: {e} (logged once until it works again)",
                        self.name
                    );
                    self.send_error = Some(e.kind());
                }
            }
        }
    }

    fn ensure_cipher(&mut self, suite: CipherSuite, w: &Workers) {
        if suite != self.cipher {
            tracing::info!(
                "link {}: MKA: cipher suite {} distributed; switching from {}",
                self.name,
                suite,
                self.cipher
            );
            self.cipher = suite;
            w.tx(self.link, TxOp::SetCipher(suite));
            w.rx(self.link, RxOp::SetCipher(suite));
            // Every SA is gone with the old suite.
            for m in &mut self.members {
                m.rx.clear();
                m.tx.clear();
            }
            self.tx_an = None;
        }
    }

    fn add_rx_sc(&mut self, sci: Sci, w: &Workers) {
        if !self.rx_scs.contains(&sci) {
            tracing::info!(
                "link {}: MKA: peer {sci} is live; receive SC created",
                self.name
            );
            self.rx_scs.push(sci);
            w.rx(self.link, RxOp::AddSc(sci));
        }
    }

    /// Applies an action of member `i` (the principal) and notes the SAs it owns.
    fn apply(&mut self, i: usize, a: Action, w: &Workers, ch: &mut Changes, now: Instant) {
        let xpn = |suite: CipherSuite, ssci: Ssci, salt| {
            suite.is_xpn().then_some(XpnParams { ssci, salt })
        };
        let (link, name) = (self.link, self.name.clone());
        match a {
            Action::InstallRxSc { sci } => self.add_rx_sc(sci, w),
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
                self.ensure_cipher(suite, w);
                tracing::info!(
                    "link {name}: MKA: receive SA {sci} AN {an} installed (KN {}, lowest PN {lowest_pn})",
                    ki.kn
                );
                for m in &mut self.members {
                    m.rx.retain(|x| *x != (sci, an));
                }
                self.members[i].rx.push((sci, an));
                let xpn = xpn(suite, ssci, salt);
                w.rx(
                    link,
                    RxOp::InstallSa {
                        sci,
                        an,
                        key,
                        lowest_pn,
                        xpn,
                    },
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
                self.ensure_cipher(suite, w);
                let p = protection_of(confidentiality);
                tracing::info!(
                    "link {name}: MKA: transmit SA AN {an} installed (KN {}, {suite}, {})",
                    ki.kn,
                    Setting(p)
                );
                self.keys_installed += 1;
                ch.new_key = Some((an, ki.kn));
                for m in &mut self.members {
                    m.tx.retain(|x| *x != an);
                }
                self.members[i].tx.push(an);
                w.tx(link, TxOp::SetProtection(p));
                w.rx(link, RxOp::SetProtection(p));
                let xpn = xpn(suite, ssci, salt);
                w.tx(
                    link,
                    TxOp::InstallSa {
                        an,
                        key,
                        next_pn,
                        xpn,
                    },
                );
            }
            Action::EnableTx { an } => {
                tracing::info!("link {name}: MKA: transmitting with AN {an}");
                self.tx_an = Some(an);
                w.tx(link, TxOp::EnableSa(an));
                // The previous principal's CA goes a life time after this one carries
                // traffic: by then the peer has moved its transmission too.
                let life = self.setup.mka.life_time;
                for m in self
                    .members
                    .iter_mut()
                    .filter(|m| m.after_carried.is_some())
                {
                    m.retire_at.get_or_insert(now + life);
                }
            }
            Action::DeleteRxSa { sci, an } => {
                let m = &mut self.members[i];
                if let Some(pos) = m.rx.iter().position(|x| *x == (sci, an)) {
                    m.rx.swap_remove(pos);
                    w.rx(link, RxOp::RemoveSa { sci, an });
                }
            }
            Action::DeleteTxSa { an } => {
                let m = &mut self.members[i];
                if let Some(pos) = m.tx.iter().position(|x| *x == an) {
                    m.tx.swap_remove(pos);
                    w.tx(link, TxOp::RemoveSa(an));
                }
            }
            Action::DeleteRxSc { sci } => {
                self.members[i].rx.retain(|(s, _)| *s != sci);
                // Another CA may still receive from that peer on the same SC.
                if !self
                    .members
                    .iter()
                    .any(|m| m.rx.iter().any(|(s, _)| *s == sci))
                {
                    tracing::warn!("link {name}: MKA: peer {sci} is gone; receive SC removed");
                    self.rx_scs.retain(|s| *s != sci);
                    w.rx(link, RxOp::RemoveSc(sci));
                }
            }
            Action::Secured => {
                let p = &self.members[i].participant;
                let ks = p
                    .key_server()
                    .map_or_else(|| "none".into(), |s| s.to_string());
                let me = if p.is_key_server() { " (this end)" } else { "" };
                let key = if self.members.len() > 1 {
                    format!(", key {}", self.members[i].key.ckn_hex())
                } else {
                    String::new()
                };
                tracing::info!("link {name}: MKA: secured (key server {ks}{me}{key})");
                self.set_secured(true, ch);
            }
            Action::Unsecured => {
                tracing::warn!("link {name}: MKA: not secured; frames are dropped");
                self.set_secured(false, ch);
            }
            other => {
                tracing::debug!("link {name}: MKA: action {other:?} not used by the forwarder")
            }
        }
    }

    /// Feeds the data plane's PNs to the participants (SAK Use LPNs, PN-exhaustion
    /// rekeys). Each ignores the ANs it has no SAK on.
    pub(super) fn report_pns(&mut self, t: &TxStats, r: &RxStats) {
        for m in &mut self.members {
            for sa in &t.sc.sa {
                if let Some(next) = sa.next_pn {
                    m.participant.report_tx_pn(sa.an, next);
                }
            }
            for sc in &r.rx_sc {
                let Ok(sci) = sc.sci.parse::<Sci>() else {
                    continue;
                };
                for sa in &sc.sa {
                    if let Some(l) = sa.lowest_pn {
                        m.participant.report_rx_lowest_pn(sci, sa.an, l);
                    }
                }
            }
        }
    }

    /// A transmit SA passed the rekey threshold: tell the principal now.
    pub(super) fn report_tx_pn(&mut self, an: u8, next_pn: u64) {
        if let Some(i) = self.principal_index() {
            self.members[i].participant.report_tx_pn(an, next_pn);
        }
    }

    /// The `mka` object of the status, without the PN figures (the report adds them).
    pub(super) fn status(&self, chain: &KeyChain, t: SystemTime) -> Value {
        let p = self.participant();
        let st = p
            .map(|p| serde_json::to_value(p.status()).unwrap_or_default())
            .unwrap_or_default();
        let peers = |key: &str| -> Value {
            Value::Array(
                st[key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| json!({"sci": x["sci"], "mi": x["mi"], "mn": x["mn"]}))
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        };
        let (cands, cur) = self.candidates(chain);
        let keys: Vec<Value> = chain
            .keys()
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut state = chain.state(i, t, self.retired.contains(&k.ckn));
                if state == KeyState::Active && self.index(&k.ckn).is_none() {
                    // Valid but without a participant (it failed to start).
                    state = KeyState::Pending;
                }
                json!({
                    "ckn": k.ckn_hex(),
                    "state": state.as_str(),
                    "fallback": k.fallback,
                    "in_use": Some(i) == cur,
                    "start": k.start.map(crate::keychain::rfc3339),
                    "end": k.end.map(crate::keychain::rfc3339),
                })
            })
            .collect();
        let in_use = cur.map(|c| {
            let k = &chain.keys()[c];
            json!({
                "ckn": k.ckn_hex(),
                "fallback": k.fallback,
                "reason": reason(chain, t, &cands, c),
            })
        });
        json!({
            "state": if p.is_some() { st["state"].clone() } else { json!("no valid key") },
            "key_server": p.and_then(|p| p.key_server()).map(|s| s.to_string()),
            "is_key_server": p.is_some_and(|p| p.is_key_server()),
            "ckn": self.ckn_hex(),
            "keys": keys,
            "key_in_use": in_use,
            "live_peers": peers("live_peers"),
            "potential_peers": peers("potential_peers"),
            "cipher": self.cipher.name(),
            "an": p.and_then(|p| p.tx_an()),
            "kn": p.and_then(|p| p.tx_ki()).map(|k| k.kn),
            "key_switches": self.key_switches,
        })
    }

    /// The principal participant's status for the counters line (SIGUSR1).
    pub(super) fn participant_status(&self) -> Value {
        self.participant()
            .map(|p| serde_json::to_value(p.status()).unwrap_or_default())
            .unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::with_vlan_tag;

    #[test]
    fn mkpdu_vlan_tag_goes_after_the_addresses() {
        let f: Vec<u8> = (0u8..12).chain([0x88, 0x8E, 3, 5, 0, 0]).collect();
        let t = with_vlan_tag(&f, 100);
        assert_eq!(&t[..12], &f[..12]);
        assert_eq!(&t[12..16], &[0x81, 0x00, 0x00, 0x64]);
        assert_eq!(&t[16..], &f[12..]);
        // Only the 12-bit VID goes into the TCI (priority 0, DEI 0).
        assert_eq!(&with_vlan_tag(&f, 0xF0FF)[14..16], &[0x00, 0xFF]);
    }
}

//! One MKA participant (actor) for one CA with a pre-shared CAK (802.1X-2010 clause 9,
//! with the SAK life cycle as wpa_supplicant 2.10 runs it; notes sections 10.4, 10.5).
//!
//! Shaped like `quinn-proto`: the caller passes time in and polls output.
//!
//! ```text
//!  loop {
//!      on frame from the wire:  p.handle_mkpdu(now, &frame)
//!      on p.poll_timeout():     p.handle_timeout(now)
//!      data plane PN reports:   p.report_tx_pn(an, next_pn) / p.report_rx_lowest_pn(sci, an, pn)
//!      while let Some(a) = p.poll_action()   { apply a to the SecY }     // first!
//!      while let Some(f) = p.poll_transmit() { send f on the port }
//!  }
//! ```
//!
//! # Behaviour in brief
//! - MI: 96 random bits; MN starts at 1 and increments per MKPDU (9.4.2). A new MI is
//!   chosen when a peer uses ours, when a peer list shows our MI with an MN we have not
//!   sent yet, when the MN would wrap, and when the elected key server is lost (as
//!   wpa_supplicant 2.11 does, so the key server sees a new member and rekeys).
//! - A peer is first *potential*; it becomes *live* when it lists our MI with an MN
//!   we sent within the last MKA Life Time ("acceptably recent", 9.4.3), in either of
//!   its peer lists. That also keeps it live; a live peer that stops doing so is
//!   dropped after the life time. From a known MI, the MN must increase (replays are
//!   dropped and counted).
//! - Key server election (9.5): among live peers with the Key Server bit set and
//!   ourselves (if `key_server_capable`), the lowest priority value wins, then the
//!   lower SCI. (hostap compares only the MAC part of the SCI; that gives the same
//!   result unless two ports share a MAC.)
//! - SAK life cycle (9.8, hostap's CP machine): the key server generates a SAK when it
//!   is elected, whenever the live peer list changes, when a PN passes the threshold,
//!   and on the optional rekey interval. Every member installs receive SAs for a new
//!   SAK at once and its transmit SA unused. The key server switches transmission
//!   when every live peer reports the new key in its SAK Use set (or after the MKA Life
//!   Time); the others switch when the key server reports it transmits with it. The
//!   previous key's SAs are deleted the SAK Retire Time after the local switch.
//! - Every MKPDU carries a MACsec SAK Use set once a SAK exists (wpa_supplicant only
//!   refreshes a peer's liveness from MKPDUs that carry one). The in-use key of a
//!   peer is read from its Latest *or* Old key fields (hostap reports it in Old).

use super::action::Action;
use super::config::{Config, ConfigError};
use super::crypto::{
    generate_sak, unwrap_sak, verify_mkpdu_icv, wrap_sak, xpn_salt, CaKeys, WrappedKey,
};
use super::pdu::{
    decode_frame, BasicParams, DecodeError, DistributedKey, DistributedSak, Mkpdu, PeerEntry,
    PeerList, SakUse, SakUseKeys, XpnParams, ALGORITHM_AGILITY, EAPOL_VERSION,
};
use super::stats::{CaState, Counters, KeyStatus, PeerStatus, RxError, Status};
use super::types::{Capability, ConfidentialityOffset, Ki, Mi};
use crate::crypto::keys::{Salt, SecretKey, Ssci};
use crate::crypto::suite::CipherSuite;
use crate::wire::sci::Sci;
use std::collections::VecDeque;
use std::time::Instant;

/// Most MNs remembered for the "acceptably recent" check.
const MAX_SENT_MNS: usize = 256;

/// Who the elected key server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyServer {
    Me,
    Peer(Sci),
}

/// Why the key server wants a new SAK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RekeyReason {
    Elected,
    LiveListChanged,
    PnThreshold,
    Interval,
    Requested,
}

#[derive(Debug)]
struct Peer {
    mi: Mi,
    mn: u32,
    sci: Sci,
    live: bool,
    expires: Instant,
    key_server: bool,
    priority: u8,
    desired: bool,
    capability: Capability,
    sak_use: Option<SakUse>,
    xpn: Option<XpnParams>,
}

impl Peer {
    /// Whether its latest SAK Use says it receives with `ki`.
    fn receives(&self, ki: &Ki) -> bool {
        match self.sak_use.as_ref().and_then(|s| s.keys.map(|k| (s, k))) {
            Some((s, k)) => (k.latest_ki == *ki && s.latest_rx) || (k.old_ki == *ki && s.old_rx),
            None => false,
        }
    }

    /// Whether its latest SAK Use says it transmits with `ki`. wpa_supplicant reports
    /// its in-use key in the Old fields once it has retired the previous one.
    fn transmits(&self, ki: &Ki) -> bool {
        match self.sak_use.as_ref().and_then(|s| s.keys.map(|k| (s, k))) {
            Some((s, k)) => (k.latest_ki == *ki && s.latest_tx) || (k.old_ki == *ki && s.old_tx),
            None => false,
        }
    }

    /// The lowest acceptable PN it reports for `ki`, with the XPN upper half if sent.
    fn lpn(&self, ki: &Ki) -> Option<u64> {
        let s = self.sak_use.as_ref()?;
        let k = s.keys.as_ref()?;
        let x = self.xpn.unwrap_or_default();
        if k.latest_ki == *ki {
            Some((x.latest_lpn_high as u64) << 32 | k.latest_lpn as u64)
        } else if k.old_ki == *ki {
            Some((x.old_lpn_high as u64) << 32 | k.old_lpn as u64)
        } else {
            None
        }
    }

    fn status(&self) -> PeerStatus {
        PeerStatus {
            sci: self.sci.to_string(),
            mi: self.mi.to_string(),
            mn: self.mn,
            key_server: self.key_server,
            key_server_priority: self.priority,
        }
    }
}

/// One SAK and the SAs installed for it.
struct SaKey {
    ki: Ki,
    an: u8,
    suite: CipherSuite,
    confidentiality: ConfidentialityOffset,
    key: SecretKey,
    salt: Salt,
    /// Generated by us as key server; then also the wrapped form we distribute.
    wrapped: Option<WrappedKey>,
    /// As key server: the live peers' MIs when we generated it.
    recipients: Vec<Mi>,
    distributed_at: Instant,
    /// Receive SCs that have an SA for this key.
    rx_scs: Vec<Sci>,
    rx_installed: bool,
    tx_installed: bool,
    transmitting: bool,
    /// Latest transmit next PN reported by the data plane.
    tx_next_pn: u64,
    /// Transmit next PN at the previous hello, and the LPN derived from it.
    lpn_snapshot: u64,
    lpn_report: u64,
}

impl SaKey {
    fn status(&self) -> KeyStatus {
        KeyStatus {
            key_server_mi: self.ki.mi.to_string(),
            kn: self.ki.kn,
            an: self.an,
            cipher_suite: self.suite.name(),
            rx: self.rx_installed,
            tx: self.transmitting,
            tx_next_pn: self.tx_next_pn,
        }
    }
}

/// One MKA participant. See the [module documentation](self) for the calling pattern.
pub struct Participant {
    cfg: Config,
    keys: CaKeys,
    now: Instant,
    mi: Mi,
    mn: u32,
    /// MNs sent, with when, for the "acceptably recent" check.
    sent: VecDeque<(u32, Instant)>,
    peers: Vec<Peer>,
    elected: Option<KeyServer>,
    /// The key server decided not to use MACsec.
    authenticated_only: bool,
    latest: Option<SaKey>,
    old: Option<SaKey>,
    next_kn: u32,
    next_an: u8,
    rekey: Option<RekeyReason>,
    last_sak_at: Option<Instant>,
    next_hello: Instant,
    retire_at: Option<Instant>,
    transmit_pending: bool,
    tx_an: Option<u8>,
    secured_reported: bool,
    actions: VecDeque<Action>,
    counters: Counters,
}

impl core::fmt::Debug for Participant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Participant")
            .field("sci", &self.cfg.sci)
            .field("mi", &self.mi)
            .field("mn", &self.mn)
            .field("elected", &self.elected)
            .field("tx_an", &self.tx_an)
            .finish_non_exhaustive()
    }
}

impl Participant {
    /// Creates a participant. It sends its first MKPDU at once (the first
    /// `poll_transmit`), then one every hello time.
    ///
    /// # Panics
    /// Only if the operating system's random number generator fails.
    pub fn new(cfg: Config, now: Instant) -> Result<Participant, ConfigError> {
        cfg.validate()?;
        let keys = CaKeys::derive(&cfg.cak, &cfg.ckn);
        let next_hello = now + cfg.hello_time;
        Ok(Participant {
            cfg,
            keys,
            now,
            mi: Mi::random(),
            mn: 0,
            sent: VecDeque::new(),
            peers: Vec::new(),
            elected: None,
            authenticated_only: false,
            latest: None,
            old: None,
            next_kn: 1,
            next_an: 0,
            rekey: None,
            last_sak_at: None,
            next_hello,
            retire_at: None,
            transmit_pending: true,
            tx_an: None,
            secured_reported: false,
            actions: VecDeque::new(),
            counters: Counters::default(),
        })
    }

    // ----------------------------------------------------------------- inputs

    /// Handles a received frame: the whole Ethernet frame, DA to the end of the EAPOL
    /// body (trailing Ethernet padding is fine). A dropped MKPDU is counted and its
    /// reason returned; that is never fatal.
    pub fn handle_mkpdu(&mut self, now: Instant, frame: &[u8]) -> Result<(), RxError> {
        self.advance(now);
        let r = self.receive(frame);
        match r {
            Ok(()) => self.counters.rx_ok += 1,
            Err(e) => self.counters.rx_dropped.count(e),
        }
        self.step();
        r
    }

    /// Runs the timers due at `now`: hello transmissions, peer expiry, the key
    /// server's transmit fallback and rekey interval, and SAK retirement.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.expire_peers();
        if self.retire_at.is_some_and(|t| t <= self.now) {
            self.retire_old();
        }
        if self.next_hello <= self.now {
            self.transmit_pending = true;
            self.next_hello = self.now + self.cfg.hello_time;
            // 802.1X-2010 9.10 (as hostap quotes it): report "the lowest PN used for
            // transmission with the SAK within the last two seconds", i.e. the next PN
            // read one hello ago, minus one.
            for k in self.latest.iter_mut().chain(self.old.iter_mut()) {
                k.lpn_report = k.lpn_snapshot.saturating_sub(1).max(1);
                k.lpn_snapshot = k.tx_next_pn;
            }
        }
        self.step();
    }

    /// The data plane reports the next PN of the transmit SA with this AN. The key
    /// server rekeys when the current SAK passes the PN threshold; every member reports
    /// it in its SAK Use set (lagging one hello time, as 802.1X-2010 9.10 describes).
    pub fn report_tx_pn(&mut self, an: u8, next_pn: u64) {
        let threshold_hit = match self.latest.as_mut() {
            Some(k) if k.an == an && k.tx_installed => {
                k.tx_next_pn = k.tx_next_pn.max(next_pn);
                next_pn > self.cfg.pn_rekey_threshold(k.suite)
            }
            _ => {
                if let Some(k) = self.old.as_mut().filter(|k| k.an == an && k.tx_installed) {
                    k.tx_next_pn = k.tx_next_pn.max(next_pn);
                }
                false
            }
        };
        if threshold_hit {
            self.request_pn_rekey();
        }
    }

    /// The data plane reports the lowest acceptable PN (or highest PN seen) of the
    /// receive SA for a peer's SC. The key server uses it to notice a peer approaching
    /// PN exhaustion before that peer's own (lagging) SAK Use report does.
    pub fn report_rx_lowest_pn(&mut self, sci: Sci, an: u8, pn: u64) {
        let hit = self.latest.as_ref().is_some_and(|k| {
            k.an == an && k.rx_scs.contains(&sci) && pn > self.cfg.pn_rekey_threshold(k.suite)
        });
        if hit {
            self.request_pn_rekey();
        }
    }

    /// Asks for a fresh SAK. Only the elected key server acts on it (after any rollout
    /// in progress); returns whether this participant is the key server.
    pub fn request_rekey(&mut self) -> bool {
        if self.elected == Some(KeyServer::Me) {
            self.rekey.get_or_insert(RekeyReason::Requested);
            true
        } else {
            false
        }
    }

    fn request_pn_rekey(&mut self) {
        if self.elected == Some(KeyServer::Me) && self.rekey.is_none() {
            self.rekey = Some(RekeyReason::PnThreshold);
        }
    }

    // ---------------------------------------------------------------- outputs

    /// The next instruction for the data plane. Drain these before `poll_transmit`.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next MKPDU to send, as a whole Ethernet frame (no FCS).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if !self.transmit_pending {
            return None;
        }
        self.transmit_pending = false;
        self.build_mkpdu()
    }

    /// When `handle_timeout` should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_hello;
        let mut at = |x: Instant| {
            if x < t {
                t = x
            }
        };
        for p in &self.peers {
            at(p.expires);
        }
        if let Some(r) = self.retire_at {
            at(r);
        }
        if self.elected == Some(KeyServer::Me) && self.live_count() > 0 {
            if let Some(k) = self.latest.as_ref() {
                if k.wrapped.is_some() && !k.transmitting {
                    at(k.distributed_at + self.cfg.life_time);
                }
            }
            match self.rekey {
                // A pending request is due now, unless it waits for the rollout in
                // progress, whose end is an MKPDU, the transmit deadline above or the
                // retire timer.
                Some(_) => {
                    if !self.rekey_blocked() {
                        at(self.now);
                    }
                }
                None => {
                    if let (Some(iv), Some(last)) = (self.cfg.rekey_interval, self.last_sak_at) {
                        at(last + iv);
                    }
                }
            }
        }
        Some(t)
    }

    /// Counters for a stats export.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A status snapshot for a stats export. Contains no key material.
    pub fn status(&self) -> Status {
        Status {
            state: self.state(),
            sci: self.cfg.sci.to_string(),
            mi: self.mi.to_string(),
            mn: self.mn,
            is_key_server: self.elected == Some(KeyServer::Me),
            key_server: match self.elected {
                Some(KeyServer::Me) => Some(self.cfg.sci.to_string()),
                Some(KeyServer::Peer(s)) => Some(s.to_string()),
                None => None,
            },
            live_peers: self
                .peers
                .iter()
                .filter(|p| p.live)
                .map(Peer::status)
                .collect(),
            potential_peers: self
                .peers
                .iter()
                .filter(|p| !p.live)
                .map(Peer::status)
                .collect(),
            latest_key: self.latest.as_ref().map(SaKey::status),
            old_key: self.old.as_ref().map(SaKey::status),
            tx_an: self.tx_an,
            counters: self.counters,
        }
    }

    /// The CA state.
    pub fn state(&self) -> CaState {
        if self.tx_an.is_some() {
            CaState::Secured
        } else if self.authenticated_only {
            CaState::Authenticated
        } else {
            CaState::Pending
        }
    }

    /// This participant's SCI.
    pub fn sci(&self) -> Sci {
        self.cfg.sci
    }

    /// The current Member Identifier.
    pub fn mi(&self) -> Mi {
        self.mi
    }

    /// Whether this participant is the elected key server.
    pub fn is_key_server(&self) -> bool {
        self.elected == Some(KeyServer::Me)
    }

    /// The SCI of the elected key server, if any.
    pub fn key_server(&self) -> Option<Sci> {
        match self.elected? {
            KeyServer::Me => Some(self.cfg.sci),
            KeyServer::Peer(s) => Some(s),
        }
    }

    /// SCIs of the live peers.
    pub fn live_peers(&self) -> Vec<Sci> {
        self.peers
            .iter()
            .filter(|p| p.live)
            .map(|p| p.sci)
            .collect()
    }

    /// The AN this participant transmits with, once secured.
    pub fn tx_an(&self) -> Option<u8> {
        self.tx_an
    }

    /// The Key Identifier of the SAK in use for transmission.
    pub fn tx_ki(&self) -> Option<Ki> {
        [self.latest.as_ref(), self.old.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.transmitting)
            .map(|k| k.ki)
    }

    // ---------------------------------------------------------------- receive

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn receive(&mut self, frame: &[u8]) -> Result<(), RxError> {
        if frame.len() >= 14 && u16::from_be_bytes([frame[12], frame[13]]) != self.cfg.ethertype {
            return Err(RxError::NotMka);
        }
        let d = decode_frame(frame).map_err(|e| match e {
            DecodeError::NotMka | DecodeError::EapolVersion => RxError::NotMka,
            e => RxError::Malformed(e),
        })?;
        let p = &d.pdu;
        // 802.1X-2010 11.11.2 validation, in hostap's order.
        if !p.dst.is_multicast() {
            return Err(RxError::Destination);
        }
        if p.basic.ckn != self.cfg.ckn {
            return Err(RxError::UnknownCkn);
        }
        if p.basic.algorithm_agility != ALGORITHM_AGILITY {
            return Err(RxError::AlgorithmAgility);
        }
        if !verify_mkpdu_icv(&self.keys.ick, d.icv_covered, &p.icv) {
            return Err(RxError::Icv);
        }
        let p = d.pdu;
        let b = p.basic;
        if b.sci == self.cfg.sci {
            return Err(RxError::OwnSci);
        }
        if b.mi == self.mi {
            // Another participant uses our MI (802.1X-2010 9.4.2): pick a new one.
            self.reset_mi();
        }

        let idx = self.peer_for(&b)?;
        let was_live = self.peers[idx].live;
        let changed_role = {
            let peer = &mut self.peers[idx];
            let changed = peer.key_server != b.key_server || peer.priority != b.key_server_priority;
            peer.mn = b.mn;
            peer.key_server = b.key_server;
            peer.priority = b.key_server_priority;
            peer.desired = b.macsec_desired;
            peer.capability = b.macsec_capability;
            if !peer.live {
                peer.expires = self.now + self.cfg.life_time;
            }
            changed
        };

        // Does the peer list our MI with a recent MN (9.4.3)? Does it show our MI with
        // an MN we have not used yet (someone else has our MI)?
        let mut lists_me = false;
        let mut mi_clash = false;
        for list in [&p.live_peers, &p.potential_peers].into_iter().flatten() {
            for e in list.peers.iter().filter(|e| e.mi == self.mi) {
                if e.mn > self.mn {
                    mi_clash = true;
                } else if self.mn_is_recent(e.mn) {
                    lists_me = true;
                }
            }
        }
        if lists_me {
            self.peers[idx].expires = self.now + self.cfg.life_time;
            if !was_live {
                self.make_live(idx);
            }
        }
        if mi_clash {
            self.reset_mi();
        }

        if !was_live && self.peers[idx].live {
            self.live_list_changed();
        } else if was_live && changed_role {
            self.elect();
        }

        if self.peers[idx].live {
            self.peers[idx].xpn = p.xpn;
            // SAK Use first: it may tell us the key server already transmits with the
            // SAK we hold as latest, which must then become our transmit key before a
            // newer SAK in the same MKPDU replaces it.
            if let Some(su) = p.sak_use {
                self.handle_sak_use(idx, su);
            }
            if let Some(ds) = p.distributed_sak {
                self.handle_distributed_sak(idx, ds);
                // ... and the key server may already transmit with the SAK it just
                // distributed (after its life-time fallback).
                self.follow_key_server(idx);
            }
        }
        Ok(())
    }

    /// Finds or creates the peer entry for a validated MKPDU; enforces the MN rule.
    fn peer_for(&mut self, b: &BasicParams) -> Result<usize, RxError> {
        if let Some(i) = self.peers.iter().position(|p| p.mi == b.mi) {
            if b.mn <= self.peers[i].mn {
                return Err(RxError::StaleMn);
            }
            return Ok(i);
        }
        if let Some(p) = self.peers.iter_mut().find(|p| p.sci == b.sci) {
            // A known SCI under a new MI: the peer restarted, or an attacker with the
            // CAK. Wait for the old instance to time out, but give it only 1.5 hello
            // times to prove it is still there (hostap).
            let cut = self.now + self.cfg.hello_time.mul_f32(1.5);
            if p.expires > cut {
                p.expires = cut;
            }
            return Err(RxError::DuplicateSci);
        }
        if self.peers.len() >= self.cfg.max_peers {
            return Err(RxError::TooManyPeers);
        }
        self.peers.push(Peer {
            mi: b.mi,
            mn: b.mn,
            sci: b.sci,
            live: false,
            expires: self.now + self.cfg.life_time,
            key_server: b.key_server,
            priority: b.key_server_priority,
            desired: b.macsec_desired,
            capability: b.macsec_capability,
            sak_use: None,
            xpn: None,
        });
        // Answer at once, so the new peer sees itself listed without waiting a hello.
        self.transmit_pending = true;
        Ok(self.peers.len() - 1)
    }

    fn mn_is_recent(&self, mn: u32) -> bool {
        mn != 0
            && self
                .sent
                .iter()
                .any(|&(m, t)| m == mn && t + self.cfg.life_time >= self.now)
    }

    fn make_live(&mut self, idx: usize) {
        let sci = self.peers[idx].sci;
        self.peers[idx].live = true;
        self.peers[idx].expires = self.now + self.cfg.life_time;
        self.counters.peers_live += 1;
        self.actions.push_back(Action::InstallRxSc { sci });
        // A member that turns live while we hold SAKs gets receive SAs for them, so
        // it can be heard as soon as it has the key too (a key server rekeys anyway).
        let members = self.members();
        let ssci_fn = self.cfg.ssci_fn;
        for k in [self.old.as_mut(), self.latest.as_mut()]
            .into_iter()
            .flatten()
        {
            if k.rx_installed && !k.rx_scs.contains(&sci) {
                let ssci = if k.suite.is_xpn() {
                    ssci_fn(sci, &members)
                } else {
                    Ssci(0)
                };
                self.actions.push_back(Action::InstallRxSa {
                    sci,
                    an: k.an,
                    key: k.key.duplicate(),
                    ki: k.ki,
                    lowest_pn: 1,
                    ssci,
                    salt: k.salt,
                    suite: k.suite,
                });
                k.rx_scs.push(sci);
            }
        }
        self.transmit_pending = true;
    }

    /// Own SCI and every live peer's SCI.
    fn members(&self) -> Vec<Sci> {
        let mut m: Vec<Sci> = self
            .peers
            .iter()
            .filter(|p| p.live)
            .map(|p| p.sci)
            .collect();
        m.push(self.cfg.sci);
        m
    }

    fn live_count(&self) -> usize {
        self.peers.iter().filter(|p| p.live).count()
    }

    fn live_list_changed(&mut self) {
        if self.live_count() == 0 {
            self.drop_all_keys();
            self.elected = None;
            self.authenticated_only = false;
            self.rekey = None;
            self.transmit_pending = true;
            return;
        }
        self.elect();
        if self.elected == Some(KeyServer::Me) {
            // New members need the SAK, departed ones must lose it (9.8).
            self.rekey.get_or_insert(RekeyReason::LiveListChanged);
        }
    }

    /// Key server election (802.1X-2010 9.5.1).
    fn elect(&mut self) {
        let best = self
            .peers
            .iter()
            .filter(|p| p.live && p.key_server)
            .min_by_key(|p| (p.priority, p.sci));
        let mine = (self.cfg.key_server_priority, self.cfg.sci);
        let new = match (self.cfg.key_server_capable, best) {
            (true, Some(b)) if mine < (b.priority, b.sci) => Some(KeyServer::Me),
            (true, Some(b)) if mine > (b.priority, b.sci) => Some(KeyServer::Peer(b.sci)),
            (true, Some(_)) => None,
            (true, None) => Some(KeyServer::Me),
            (false, Some(b)) => Some(KeyServer::Peer(b.sci)),
            (false, None) => None,
        };
        if new != self.elected {
            if new == Some(KeyServer::Me) {
                self.rekey = Some(RekeyReason::Elected);
            } else {
                self.rekey = None;
            }
            self.elected = new;
            self.transmit_pending = true;
        }
    }

    fn handle_distributed_sak(&mut self, idx: usize, ds: DistributedSak) {
        let peer = &self.peers[idx];
        if self.elected != Some(KeyServer::Peer(peer.sci)) {
            // hostap: "The key server is not elected". Transient during an election.
            self.counters.sak_rejected += 1;
            return;
        }
        let Some(dk) = ds.key else {
            // Empty body: the key server decided against MACsec (9.8, "authenticated").
            if !self.authenticated_only {
                self.drop_all_keys();
                self.authenticated_only = true;
                self.transmit_pending = true;
            }
            return;
        };
        if !self.cfg.macsec_desired || self.cfg.macsec_capability == Capability::NotImplemented {
            // hostap: "I am not MACsec-desired or without MACsec capable".
            self.counters.sak_rejected += 1;
            return;
        }
        let ki = Ki {
            mi: peer.mi,
            kn: dk.kn,
        };
        let known = [self.latest.as_ref(), self.old.as_ref()]
            .into_iter()
            .flatten()
            .any(|k| k.ki == ki);
        if known {
            return;
        }
        if let Some(l) = self.latest.as_ref() {
            if l.ki.mi == ki.mi && ki.kn < l.ki.kn {
                return; // an older SAK from the same key server instance
            }
        }
        let Some(suite) = dk
            .cipher_suite()
            .filter(|s| self.cfg.accepted_cipher_suites.contains(s))
        else {
            self.counters.sak_rejected += 1;
            return;
        };
        if dk.wrapped.key_len() != suite.key_len() {
            self.counters.sak_rejected += 1;
            return;
        }
        let Ok(key) = unwrap_sak(&self.keys.kek, dk.wrapped.as_bytes()) else {
            self.counters.sak_rejected += 1;
            return;
        };
        self.authenticated_only = false;
        self.counters.sak_received += 1;
        self.add_key(SaKey {
            ki,
            an: ds.an & 3,
            suite,
            confidentiality: ds.confidentiality_offset,
            salt: if suite.is_xpn() {
                xpn_salt(&ki)
            } else {
                Salt::default()
            },
            key,
            wrapped: None,
            recipients: Vec::new(),
            distributed_at: self.now,
            rx_scs: Vec::new(),
            rx_installed: false,
            tx_installed: false,
            transmitting: false,
            tx_next_pn: 1,
            lpn_snapshot: 0,
            lpn_report: 1,
        });
    }

    fn handle_sak_use(&mut self, idx: usize, su: SakUse) {
        self.peers[idx].sak_use = Some(su);
        match self.elected {
            Some(KeyServer::Peer(_)) => self.follow_key_server(idx),
            Some(KeyServer::Me) => {
                let over = self.latest.as_ref().is_some_and(|l| {
                    self.peers[idx]
                        .lpn(&l.ki)
                        .is_some_and(|lpn| lpn > self.cfg.pn_rekey_threshold(l.suite))
                });
                if over {
                    self.request_pn_rekey();
                }
            }
            _ => {}
        }
    }

    /// A member switches transmission when the key server reports it transmits with
    /// our latest SAK (hostap CP `server_transmitting`), in either key slot.
    fn follow_key_server(&mut self, idx: usize) {
        if self.elected != Some(KeyServer::Peer(self.peers[idx].sci)) {
            return;
        }
        let go = self
            .latest
            .as_ref()
            .is_some_and(|l| !l.transmitting && l.tx_installed && self.peers[idx].transmits(&l.ki));
        if go {
            self.enable_tx();
        }
    }

    // ------------------------------------------------------------ key server

    /// Whether a new SAK must wait: our latest SAK is still rolling out (not yet used
    /// for transmission), or the previous one is within its retire time, so members may
    /// still transmit with it. Replacing keys faster would delete SAs in use. (hostap
    /// simply refuses a new SAK within MKA Life Time of the previous one.)
    fn rekey_blocked(&self) -> bool {
        self.latest
            .as_ref()
            .is_some_and(|l| l.wrapped.is_some() && !l.transmitting)
            || (self.old.is_some() && self.retire_at.is_some())
    }

    fn all_live_peers_receive(&self, ki: &Ki) -> bool {
        let mut any = false;
        for p in self.peers.iter().filter(|p| p.live) {
            any = true;
            if !p.receives(ki) {
                return false;
            }
        }
        any
    }

    /// Everything that may follow from any input: the key server's transmit switch,
    /// rekey interval and SAK generation.
    fn step(&mut self) {
        if self.elected != Some(KeyServer::Me) || self.live_count() == 0 {
            return;
        }
        if let Some(l) = self.latest.as_ref() {
            if l.wrapped.is_some() && !l.transmitting && l.tx_installed {
                // Switch when every live peer receives with the new SAK, or after the
                // MKA Life Time at the latest (hostap `transmit_delay`).
                if self.all_live_peers_receive(&l.ki)
                    || l.distributed_at + self.cfg.life_time <= self.now
                {
                    self.enable_tx();
                }
            }
        }
        if let (Some(iv), Some(last)) = (self.cfg.rekey_interval, self.last_sak_at) {
            if last + iv <= self.now && self.rekey.is_none() {
                self.rekey = Some(RekeyReason::Interval);
            }
        }
        if let Some(reason) = self.rekey {
            if self.rekey_blocked() {
                return;
            }
            self.rekey = None;
            self.distribute_new_sak(reason);
        }
    }

    /// The key server decides MACsec use (802.1X-2010 9.5.2; hostap
    /// `ieee802_1x_kay_decide_macsec_use`) and generates and installs a new SAK.
    fn distribute_new_sak(&mut self, reason: RekeyReason) {
        let mut min_cap = self.cfg.macsec_capability;
        let mut any = false;
        for p in self.peers.iter().filter(|p| p.live) {
            if p.desired && p.capability != Capability::NotImplemented {
                any = true;
                min_cap = min_cap.min(p.capability);
            }
        }
        let use_macsec = self.cfg.macsec_desired
            && self.cfg.macsec_capability != Capability::NotImplemented
            && any;
        if !use_macsec {
            if !self.authenticated_only {
                self.drop_all_keys();
                self.authenticated_only = true;
            }
            self.transmit_pending = true;
            return;
        }
        let suite = self.cfg.cipher_suite;
        let confidentiality = min_cap.limit(self.cfg.confidentiality_offset);
        let kn = self.next_kn;
        self.next_kn = self.next_kn.checked_add(1).unwrap_or(1);
        let an = self.pick_an();
        let mut mis: Vec<Mi> = self.peers.iter().filter(|p| p.live).map(|p| p.mi).collect();
        mis.push(self.mi);
        let Ok(key) = generate_sak(
            self.cfg.sak_generation,
            &self.cfg.cak,
            &mis,
            kn,
            suite.key_len(),
        ) else {
            return;
        };
        let ki = Ki { mi: self.mi, kn };
        let wrapped = wrap_sak(&self.keys.kek, &key);
        let recipients = mis[..mis.len() - 1].to_vec();
        self.authenticated_only = false;
        self.counters.sak_generated += 1;
        match reason {
            RekeyReason::PnThreshold => self.counters.rekeys_pn += 1,
            RekeyReason::Interval => self.counters.rekeys_interval += 1,
            _ => {}
        }
        self.last_sak_at = Some(self.now);
        self.add_key(SaKey {
            ki,
            an,
            suite,
            confidentiality,
            salt: if suite.is_xpn() {
                xpn_salt(&ki)
            } else {
                Salt::default()
            },
            key,
            wrapped: Some(wrapped),
            recipients,
            distributed_at: self.now,
            rx_scs: Vec::new(),
            rx_installed: false,
            tx_installed: false,
            transmitting: false,
            tx_next_pn: 1,
            lpn_snapshot: 0,
            lpn_report: 1,
        });
    }

    /// The next AN in 0, 1, 2, 3, 0, … that no held SAK uses. At most two SAKs are
    /// held, so one of the next three always qualifies.
    fn pick_an(&mut self) -> u8 {
        let used: Vec<u8> = [self.latest.as_ref(), self.old.as_ref()]
            .into_iter()
            .flatten()
            .map(|k| k.an)
            .collect();
        let mut a = self.next_an;
        for _ in 0..4 {
            if !used.contains(&a) {
                break;
            }
            a = (a + 1) & 3;
        }
        self.next_an = (a + 1) & 3;
        a
    }

    // -------------------------------------------------------------- SA life cycle

    /// Makes `new` the latest SAK and installs it: receive SAs on every live peer's SC
    /// first, then the (unused) transmit SA (802.1X-2010 9.8; hostap CP RECEIVE).
    fn add_key(&mut self, mut new: SaKey) {
        if let Some(lat) = self.latest.take() {
            if lat.transmitting {
                // The in-use key becomes the old one; a still older key goes now.
                if let Some(old) = self.old.take() {
                    self.delete_sas(old);
                }
                self.retire_at = None;
                self.old = Some(lat);
            } else {
                // Never used for transmission: the new SAK replaces it.
                self.delete_sas(lat);
            }
        }
        if self.old.as_ref().is_some_and(|o| o.an == new.an) {
            // The key server reused the AN of a key we still hold: delete it first.
            if let Some(old) = self.old.take() {
                self.delete_sas(old);
            }
        }
        let members = self.members();
        let ssci_fn = self.cfg.ssci_fn;
        let xpn = new.suite.is_xpn();
        for sci in self.peers.iter().filter(|p| p.live).map(|p| p.sci) {
            self.actions.push_back(Action::InstallRxSa {
                sci,
                an: new.an,
                key: new.key.duplicate(),
                ki: new.ki,
                lowest_pn: 1,
                ssci: if xpn { ssci_fn(sci, &members) } else { Ssci(0) },
                salt: new.salt,
                suite: new.suite,
            });
            new.rx_scs.push(sci);
        }
        new.rx_installed = true;
        self.actions.push_back(Action::InstallTxSa {
            an: new.an,
            key: new.key.duplicate(),
            ki: new.ki,
            next_pn: 1,
            ssci: if xpn {
                ssci_fn(self.cfg.sci, &members)
            } else {
                Ssci(0)
            },
            salt: new.salt,
            suite: new.suite,
            confidentiality: new.confidentiality,
        });
        new.tx_installed = true;
        self.latest = Some(new);
        self.transmit_pending = true;
    }

    /// Switches transmission to the latest SAK (hostap CP TRANSMIT) and starts the
    /// retire timer for the previous one.
    fn enable_tx(&mut self) {
        let Some(l) = self.latest.as_mut() else {
            return;
        };
        l.transmitting = true;
        let an = l.an;
        // A membership rekey that waited for this rollout is moot if every member the
        // SAK went to is still live (joiners took the SAK from the Distributed SAK).
        let recipients_live = l.wrapped.is_some()
            && l.recipients
                .iter()
                .all(|mi| self.peers.iter().any(|p| p.live && p.mi == *mi));
        if recipients_live && self.rekey == Some(RekeyReason::LiveListChanged) {
            self.rekey = None;
        }
        self.actions.push_back(Action::EnableTx { an });
        self.tx_an = Some(an);
        if let Some(o) = self.old.as_mut() {
            o.transmitting = false;
            self.retire_at = Some(self.now + self.cfg.sak_retire_time);
        }
        if !self.secured_reported {
            self.secured_reported = true;
            self.actions.push_back(Action::Secured);
        }
        self.transmit_pending = true;
    }

    fn retire_old(&mut self) {
        self.retire_at = None;
        if let Some(o) = self.old.take() {
            self.delete_sas(o);
            self.transmit_pending = true;
        }
    }

    fn delete_sas(&mut self, k: SaKey) {
        for sci in &k.rx_scs {
            self.actions.push_back(Action::DeleteRxSa {
                sci: *sci,
                an: k.an,
            });
        }
        if k.tx_installed {
            self.actions.push_back(Action::DeleteTxSa { an: k.an });
        }
        if k.transmitting {
            self.tx_an = None;
        }
    }

    fn drop_all_keys(&mut self) {
        for k in [self.old.take(), self.latest.take()].into_iter().flatten() {
            self.delete_sas(k);
        }
        self.tx_an = None;
        self.retire_at = None;
        if self.secured_reported {
            self.secured_reported = false;
            self.actions.push_back(Action::Unsecured);
        }
    }

    // ------------------------------------------------------------------ timers

    fn expire_peers(&mut self) {
        let now = self.now;
        let mut lost_live = false;
        let mut lost_key_server = false;
        let mut i = 0;
        while i < self.peers.len() {
            if self.peers[i].expires > now {
                i += 1;
                continue;
            }
            let p = self.peers.swap_remove(i);
            if p.live {
                lost_live = true;
                self.counters.peers_expired += 1;
                lost_key_server |= self.elected == Some(KeyServer::Peer(p.sci));
                for k in [self.latest.as_mut(), self.old.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    if let Some(pos) = k.rx_scs.iter().position(|s| *s == p.sci) {
                        k.rx_scs.swap_remove(pos);
                        self.actions.push_back(Action::DeleteRxSa {
                            sci: p.sci,
                            an: k.an,
                        });
                    }
                }
                self.actions.push_back(Action::DeleteRxSc { sci: p.sci });
            }
        }
        if lost_key_server {
            // wpa_supplicant 2.11 (commit 750403f3a): a new MI makes the key server,
            // which may still list us, treat us as a new member and rekey.
            self.reset_mi();
        }
        if lost_live {
            self.live_list_changed();
        }
    }

    fn reset_mi(&mut self) {
        let old = self.mi;
        while self.mi == old {
            self.mi = Mi::random();
        }
        self.mn = 0;
        self.sent.clear();
        self.counters.mi_resets += 1;
        self.transmit_pending = true;
    }

    // --------------------------------------------------------------- transmit

    fn build_mkpdu(&mut self) -> Option<Vec<u8>> {
        if self.mn == u32::MAX {
            self.reset_mi();
        }
        self.mn += 1;
        let life = self.cfg.life_time;
        let now = self.now;
        while self
            .sent
            .front()
            .is_some_and(|&(_, t)| t + life < now || self.sent.len() >= MAX_SENT_MNS)
        {
            self.sent.pop_front();
        }
        self.sent.push_back((self.mn, now));

        let key_server = match self.elected {
            Some(KeyServer::Me) => true,
            Some(KeyServer::Peer(_)) => false,
            None => self.cfg.key_server_capable,
        };
        let list = |live: bool| {
            let peers: Vec<PeerEntry> = self
                .peers
                .iter()
                .filter(|p| p.live == live)
                .map(|p| PeerEntry { mi: p.mi, mn: p.mn })
                .collect();
            (!peers.is_empty()).then_some(PeerList { octet2: 0, peers })
        };
        let live_peers = list(true);
        let potential_peers = list(false);

        let sak_use = match (&self.latest, self.authenticated_only) {
            (Some(l), _) => {
                let o = self.old.as_ref();
                Some(SakUse {
                    latest_an: l.an,
                    latest_tx: l.transmitting,
                    latest_rx: l.rx_installed,
                    old_an: o.map_or(0, |o| o.an),
                    old_tx: o.is_some_and(|o| o.transmitting),
                    old_rx: o.is_some_and(|o| o.rx_installed),
                    plain_tx: false,
                    plain_rx: false,
                    delay_protect: false,
                    keys: Some(SakUseKeys {
                        latest_ki: l.ki,
                        latest_lpn: l.lpn_report as u32,
                        old_ki: o.map_or(Ki::NONE, |o| o.ki),
                        old_lpn: o.map_or(0, |o| o.lpn_report as u32),
                    }),
                })
            }
            // MACsec not used: an empty body with Plain Tx/Rx, as hostap sends it.
            (None, true) => Some(SakUse {
                plain_tx: true,
                plain_rx: true,
                ..SakUse::default()
            }),
            (None, false) => None,
        };

        let distributed_sak = if self.elected == Some(KeyServer::Me) {
            if self.authenticated_only {
                Some(DistributedSak {
                    an: 0,
                    confidentiality_offset: ConfidentialityOffset::IntegrityOnly,
                    key: None,
                })
            } else {
                self.latest.as_ref().and_then(|l| {
                    let w = l.wrapped?;
                    (!self.all_live_peers_receive(&l.ki)).then(|| DistributedSak {
                        an: l.an,
                        confidentiality_offset: l.confidentiality,
                        key: Some(DistributedKey::new(l.ki.kn, l.suite, w)),
                    })
                })
            }
        } else {
            None
        };

        let xpn = match &self.latest {
            Some(l) if self.cfg.send_xpn_parameter_set && l.suite.is_xpn() => Some(XpnParams {
                suspension_time: 0,
                latest_lpn_high: (l.lpn_report >> 32) as u32,
                old_lpn_high: self.old.as_ref().map_or(0, |o| (o.lpn_report >> 32) as u32),
            }),
            _ => None,
        };

        let pdu = Mkpdu {
            dst: self.cfg.destination,
            src: self.cfg.sci.mac(),
            ethertype: self.cfg.ethertype,
            eapol_version: EAPOL_VERSION,
            basic: BasicParams {
                mka_version: self.cfg.mka_version,
                key_server_priority: self.cfg.key_server_priority,
                key_server,
                macsec_desired: self.cfg.macsec_desired,
                macsec_capability: self.cfg.macsec_capability,
                sci: self.cfg.sci,
                mi: self.mi,
                mn: self.mn,
                algorithm_agility: ALGORITHM_AGILITY,
                ckn: self.cfg.ckn,
            },
            live_peers,
            potential_peers,
            sak_use,
            distributed_sak,
            distributed_cak: None,
            kmd: None,
            announcement: None,
            xpn,
            icv_indicator: self.cfg.send_icv_indicator,
            skipped_sets: 0,
            icv: [0; 16],
        };
        // Cannot fail: peer lists are capped at 255 entries by `max_peers`.
        let frame = pdu.encode(&self.keys.ick).ok()?;
        self.counters.tx += 1;
        Some(frame)
    }
}

/// Fuzzing entry point: drives one participant with MKPDUs built from `data`.
///
/// `data` is a series of chunks, each a 2-octet big-endian length and that many octets.
/// The first octet of a chunk advances the clock (by 50 ms steps). A chunk that decodes
/// as an MKPDU is made to belong to a fixed test CA (destination, EtherType, CKN,
/// algorithm agility), any Distributed SAK in it is re-wrapped with that CA's KEK, the
/// MI EE-EE-…-EE in a peer list or SAK Use Key Identifier is replaced by the
/// participant's own MI (and current MN) or latest KI, and the frame is re-signed with
/// the ICK, so a fuzzer reaches the state machine behind the ICV check. Other chunks go
/// in as they are. Must never panic.
#[doc(hidden)]
pub fn fuzz_participant(data: &[u8]) {
    use super::crypto::CaKeys;
    use super::pdu::ETHERTYPE_EAPOL;
    use crate::wire::sci::MacAddr;
    use std::time::Duration;

    let Ok(cak) = SecretKey::from_slice(&[0x11; 16]) else {
        return;
    };
    let Ok(ckn) = super::types::Ckn::new(&[0x22; 8]) else {
        return;
    };
    let ca = CaKeys::derive(&cak, &ckn);
    let t0 = Instant::now();
    let Ok(mut p) = Participant::new(Config::new(cak, ckn, Sci([2, 0, 0, 0, 0, 1, 0, 1])), t0)
    else {
        return;
    };
    let mut now = t0;
    let mut rest = data;
    while rest.len() >= 2 {
        let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        rest = &rest[2..];
        let chunk = &rest[..n.min(rest.len())];
        rest = &rest[chunk.len()..];
        if let Some(&b) = chunk.first() {
            now += Duration::from_millis(b as u64 * 50);
            p.handle_timeout(now);
        }
        let frame = match decode_frame(chunk) {
            Ok(d) => {
                let mut m = d.pdu;
                m.dst = MacAddr::PAE_GROUP;
                m.ethertype = ETHERTYPE_EAPOL;
                m.basic.ckn = ckn;
                m.basic.algorithm_agility = ALGORITHM_AGILITY;
                // The MI 0xEE…EE stands for ours (with our current MN), so a fuzzer can
                // make peers list us and acknowledge our SAKs.
                const MARK: Mi = Mi([0xEE; 12]);
                for l in [m.live_peers.as_mut(), m.potential_peers.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    for e in l.peers.iter_mut().filter(|e| e.mi == MARK) {
                        e.mi = p.mi;
                        e.mn = p.mn;
                    }
                }
                let ours = p.latest.as_ref().map(|k| k.ki);
                if let (Some(k), Some(ki)) =
                    (m.sak_use.as_mut().and_then(|s| s.keys.as_mut()), ours)
                {
                    for x in [&mut k.latest_ki, &mut k.old_ki] {
                        if x.mi == MARK {
                            *x = ki;
                        }
                    }
                }
                if let Some(k) = m.distributed_sak.as_mut().and_then(|d| d.key.as_mut()) {
                    if let Ok(sak) = SecretKey::from_slice(&[0x33; 32][..k.wrapped.key_len()]) {
                        k.wrapped = wrap_sak(&ca.kek, &sak);
                    }
                }
                m.encode(&ca.ick).unwrap_or_default()
            }
            Err(_) => chunk.to_vec(),
        };
        let _ = p.handle_mkpdu(now, &frame);
        while p.poll_action().is_some() {}
        while let Some(f) = p.poll_transmit() {
            debug_assert!(decode_frame(&f).is_ok());
        }
        let _ = p.poll_timeout();
        let _ = p.status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mka::types::Ckn;
    use std::time::Duration;

    fn cfg(n: u8) -> Config {
        Config::new(
            SecretKey::from_slice(&[7; 16]).unwrap(),
            Ckn::new(&[8; 16]).unwrap(),
            Sci([2, 0, 0, 0, 0, n, 0, 1]),
        )
    }

    #[test]
    fn first_mkpdu_at_once_then_every_hello() {
        let t0 = Instant::now();
        let mut p = Participant::new(cfg(1), t0).unwrap();
        let f = p.poll_transmit().unwrap();
        let d = decode_frame(&f).unwrap().pdu;
        assert_eq!(d.basic.mn, 1);
        assert!(d.basic.key_server, "could be key server until an election");
        assert!(d.live_peers.is_none() && d.sak_use.is_none());
        assert!(p.poll_transmit().is_none());
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        p.handle_timeout(t0 + Duration::from_secs(1));
        assert!(p.poll_transmit().is_none());
        p.handle_timeout(t0 + Duration::from_secs(2));
        let d = decode_frame(&p.poll_transmit().unwrap()).unwrap().pdu;
        assert_eq!(d.basic.mn, 2);
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(4)));
        assert_eq!(p.state(), CaState::Pending);
    }

    #[test]
    fn acceptably_recent_means_sent_within_the_life_time() {
        let t0 = Instant::now();
        let mut p = Participant::new(cfg(1), t0).unwrap();
        p.poll_transmit().unwrap(); // MN 1 at t0
        for s in 1..=2u64 {
            p.handle_timeout(t0 + Duration::from_secs(2 * s));
            p.poll_transmit().unwrap(); // MN 2 and 3
        }
        p.advance(t0 + Duration::from_secs(6));
        assert!(p.mn_is_recent(1));
        assert!(!p.mn_is_recent(0));
        assert!(!p.mn_is_recent(4), "not sent yet");
        p.advance(t0 + Duration::from_millis(6001));
        assert!(!p.mn_is_recent(1));
        assert!(p.mn_is_recent(2) && p.mn_is_recent(3));
    }

    #[test]
    fn mn_wrap_picks_a_new_mi() {
        let t0 = Instant::now();
        let mut p = Participant::new(cfg(1), t0).unwrap();
        let mi = p.mi();
        p.mn = u32::MAX;
        let d = decode_frame(&p.poll_transmit().unwrap()).unwrap().pdu;
        assert_ne!(d.basic.mi, mi);
        assert_eq!(d.basic.mn, 1);
        assert_eq!(p.counters().mi_resets, 1);
    }

    #[test]
    fn time_never_goes_backwards() {
        let t0 = Instant::now();
        let mut p = Participant::new(cfg(1), t0).unwrap();
        p.handle_timeout(t0 + Duration::from_secs(5));
        p.handle_timeout(t0);
        assert_eq!(p.now, t0 + Duration::from_secs(5));
    }

    #[test]
    fn config_is_validated() {
        let mut c = cfg(1);
        c.hello_time = Duration::ZERO;
        assert_eq!(
            Participant::new(c, Instant::now()).unwrap_err(),
            ConfigError::HelloTime
        );
        let mut c = cfg(1);
        c.max_peers = 81;
        assert_eq!(
            Participant::new(c, Instant::now()).unwrap_err(),
            ConfigError::MaxPeers
        );
    }

    #[test]
    fn pick_an_cycles_and_skips_held_keys() {
        let t0 = Instant::now();
        let mut p = Participant::new(cfg(1), t0).unwrap();
        assert_eq!(p.pick_an(), 0);
        assert_eq!(p.pick_an(), 1);
        let key = |an| SaKey {
            ki: Ki::NONE,
            an,
            suite: CipherSuite::GcmAes128,
            confidentiality: ConfidentialityOffset::Offset0,
            key: SecretKey::from_slice(&[1; 16]).unwrap(),
            salt: Salt::default(),
            wrapped: None,
            recipients: Vec::new(),
            distributed_at: t0,
            rx_scs: Vec::new(),
            rx_installed: true,
            tx_installed: true,
            transmitting: false,
            tx_next_pn: 1,
            lpn_snapshot: 0,
            lpn_report: 1,
        };
        p.old = Some(key(2));
        p.latest = Some(key(3));
        assert_eq!(p.pick_an(), 0, "2 and 3 are held");
        p.old = None;
        assert_eq!(p.pick_an(), 1);
        assert_eq!(p.pick_an(), 2);
        assert_eq!(p.pick_an(), 0);
    }

    #[test]
    fn two_participants_direct() {
        let t0 = Instant::now();
        let mut a = Participant::new(cfg(1), t0).unwrap();
        let mut b = Participant::new(cfg(2), t0).unwrap();
        for _ in 0..5 {
            while let Some(f) = a.poll_transmit() {
                b.handle_mkpdu(t0, &f).unwrap();
            }
            while b.poll_action().is_some() {}
            while let Some(f) = b.poll_transmit() {
                a.handle_mkpdu(t0, &f).unwrap();
            }
            while a.poll_action().is_some() {}
        }
        assert!(a.is_key_server() && !b.is_key_server());
        assert_eq!(a.tx_an(), Some(0));
        assert_eq!(b.tx_an(), Some(0));
        assert_eq!(a.tx_ki(), b.tx_ki());
        assert_eq!(b.key_server(), Some(a.sci()));
        assert_eq!(a.live_peers(), vec![b.sci()]);
        assert!(!format!("{a:?}").contains("0707"));
    }

    #[test]
    fn fuzz_participant_smoke() {
        fuzz_participant(&[]);
        fuzz_participant(&[0, 3, 1, 2, 3, 0xFF, 0xFF]);
        // A valid frame of another participant as one chunk.
        let mut other = Participant::new(cfg(2), Instant::now()).unwrap();
        let f = other.poll_transmit().unwrap();
        let mut data = (f.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&f);
        data.extend_from_slice(&data.clone());
        fuzz_participant(&data);
    }
}

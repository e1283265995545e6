//! Liveness (802.1X-2010 9.4): receiving MKPDUs, potential and live peers, MN
//! freshness, peer expiry and MI resets.

use super::*;

impl Participant {
    // ---------------------------------------------------------------- receive

    pub(super) fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    pub(super) fn receive(&mut self, frame: &[u8]) -> Result<(), RxError> {
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
            self.live_list_changed(false);
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
    pub(super) fn peer_for(&mut self, b: &BasicParams) -> Result<usize, RxError> {
        if let Some(i) = self.peers.iter().position(|p| p.mi == b.mi) {
            if b.mn <= self.peers[i].mn {
                return Err(RxError::StaleMn);
            }
            return Ok(i);
        }
        if let Some(i) = self.peers.iter().position(|p| p.sci == b.sci) {
            let p = &mut self.peers[i];
            if p.live {
                // A live SCI under a new MI: the peer restarted, or an attacker with the
                // CAK. Wait for the old instance to time out, but give it only 1.5 hello
                // times to prove it is still there (hostap).
                let cut = self.now + self.cfg.hello_time.mul_f32(1.5);
                if p.expires > cut {
                    p.expires = cut;
                }
                return Err(RxError::DuplicateSci);
            }
            // Only a potential peer (it never listed us, no SA was installed for it):
            // the new MI supersedes it at once. Waiting here, as hostap does, costs a
            // restarting CA up to a life time: a member that lost its key server takes a
            // new MI (see expire_peers) while the restarted key server still holds the
            // old one as potential.
            self.peers.swap_remove(i);
            self.counters.potential_replaced += 1;
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

    pub(super) fn mn_is_recent(&self, mn: u32) -> bool {
        mn != 0
            && self
                .sent
                .iter()
                .any(|&(m, t)| m == mn && t + self.cfg.life_time >= self.now)
    }

    pub(super) fn make_live(&mut self, idx: usize) {
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
    pub(super) fn members(&self) -> Vec<Sci> {
        let mut m: Vec<Sci> = self
            .peers
            .iter()
            .filter(|p| p.live)
            .map(|p| p.sci)
            .collect();
        m.push(self.cfg.sci);
        m
    }

    pub(super) fn live_count(&self) -> usize {
        self.peers.iter().filter(|p| p.live).count()
    }

    /// The live peer list changed: `lost` when a live peer left (expired).
    pub(super) fn live_list_changed(&mut self, lost: bool) {
        if self.live_count() == 0 {
            self.drop_all_keys();
            self.elected = None;
            self.authenticated_only = false;
            self.rekey = None;
            self.transmit_pending = true;
            return;
        }
        self.elect();
        if self.elected == Some(KeyServer::Me) && (!lost || self.cfg.rekey_on_peer_loss) {
            // New members need the SAK, departed ones must lose it (9.8).
            self.rekey.get_or_insert(RekeyReason::LiveListChanged);
        }
    }

    /// Key server election (802.1X-2010 9.5.1).
    pub(super) fn elect(&mut self) {
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

    // ------------------------------------------------------------------ timers

    pub(super) fn expire_peers(&mut self) {
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
            self.live_list_changed(true);
        }
    }

    pub(super) fn reset_mi(&mut self) {
        let old = self.mi;
        while self.mi == old {
            self.mi = Mi::random();
        }
        self.mn = 0;
        self.sent.clear();
        self.counters.mi_resets += 1;
        self.transmit_pending = true;
    }
}

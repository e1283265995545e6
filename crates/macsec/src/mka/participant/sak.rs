//! The SAK life cycle (802.1X-2010 9.8, 12.5): installing, enabling for transmit,
//! retiring and deleting SAs.

use super::*;

impl Participant {
    // -------------------------------------------------------------- SA life cycle

    /// Makes `new` the latest SAK and installs it: receive SAs on every live peer's SC
    /// first, then the (unused) transmit SA (802.1X-2010 9.8; hostap CP RECEIVE).
    pub(super) fn add_key(&mut self, mut new: SaKey) {
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
    pub(super) fn enable_tx(&mut self) {
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

    pub(super) fn retire_old(&mut self) {
        self.retire_at = None;
        if let Some(o) = self.old.take() {
            self.delete_sas(o);
            self.transmit_pending = true;
        }
    }

    pub(super) fn delete_sas(&mut self, k: SaKey) {
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

    pub(super) fn drop_all_keys(&mut self) {
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

    pub(super) fn handle_distributed_sak(&mut self, idx: usize, ds: DistributedSak) {
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
        self.add_key(SaKey::new(
            ki,
            ds.an & 3,
            suite,
            ds.confidentiality_offset,
            key,
            None,
            Vec::new(),
            self.now,
        ));
    }

    pub(super) fn handle_sak_use(&mut self, idx: usize, su: SakUse) {
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
}

//! Key server election and SAK distribution (802.1X-2010 9.5, 9.8).

use super::*;

impl Participant {
    // ------------------------------------------------------------ key server

    /// Whether a new SAK must wait: our latest SAK is still rolling out (not yet used
    /// for transmission), or the previous one is within its retire time, so members may
    /// still transmit with it. Replacing keys faster would delete SAs in use. (hostap
    /// simply refuses a new SAK within MKA Life Time of the previous one.)
    pub(super) fn rekey_blocked(&self) -> bool {
        self.latest
            .as_ref()
            .is_some_and(|l| l.wrapped.is_some() && !l.transmitting)
            || (self.old.is_some() && self.retire_at.is_some())
    }

    pub(super) fn all_live_peers_receive(&self, ki: &Ki) -> bool {
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
    pub(super) fn step(&mut self) {
        if self.elected != Some(KeyServer::Me) || self.live_count() == 0 || self.sak_hold {
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
    pub(super) fn distribute_new_sak(&mut self, reason: RekeyReason) {
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
        self.add_key(SaKey::new(
            ki,
            an,
            suite,
            confidentiality,
            key,
            Some(wrapped),
            recipients,
            self.now,
        ));
    }

    /// The next AN in 0, 1, 2, 3, 0, … that no held SAK uses, nor (while another one
    /// is free) another CA on the SecY ([`Participant::set_avoid_ans`]). At most two
    /// SAKs are held, so one of the next three always qualifies.
    pub(super) fn pick_an(&mut self) -> u8 {
        let own = [self.latest.as_ref(), self.old.as_ref()]
            .into_iter()
            .flatten()
            .fold(0u8, |m, k| m | 1 << k.an);
        let free = |used: u8, from: u8| {
            (0..4)
                .map(|i| (from + i) & 3)
                .find(|a| used & (1 << a) == 0)
        };
        let a = free(own | self.avoid_ans, self.next_an)
            .or_else(|| free(own, self.next_an))
            .unwrap_or(self.next_an);
        self.next_an = (a + 1) & 3;
        a
    }

    /// A member switches transmission when the key server reports it transmits with
    /// our latest SAK (hostap CP `server_transmitting`), in either key slot.
    pub(super) fn follow_key_server(&mut self, idx: usize) {
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
}

//! Building MKPDUs (802.1X-2010 11.11).

use super::*;

impl Participant {
    // --------------------------------------------------------------- transmit

    pub(super) fn build_mkpdu(&mut self) -> Option<Vec<u8>> {
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

//! A link's KaY: its MKA participant, the socket its MKPDUs travel on, a reader thread
//! that turns received MKPDUs into channel messages, and the application of the
//! participant's actions to the link's SecY halves in the data plane.

use crate::config::mka::protection_of;
use crate::config::Setting;
use crate::forward::worker::{RxOp, TxOp, Workers};
use crate::io::control::ControlSocket;
use crossbeam::channel::Sender;
use macsec::crypto::{CipherSuite, Ssci};
use macsec::mka::{Action, Participant};
use macsec::secy::{RxStats, TxStats, XpnParams};
use macsec::wire::Sci;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A received MKPDU: the link it came in on, and the frame.
pub(super) type Mkpdu = (usize, Vec<u8>);

/// What applying a participant's actions changed that the control thread must know.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Changes {
    /// The CA became secured (`Some(true)`) or not (`Some(false)`).
    pub(super) secured: Option<bool>,
    /// A new SAK was installed for transmission: its AN and KN.
    pub(super) new_key: Option<(u8, u32)>,
}

/// One link's KaY.
pub(super) struct Kay {
    pub(super) participant: Participant,
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
    /// When the CA was last secured, while it is (and as Unix time, for status).
    pub(super) secured_since: Option<Instant>,
    pub(super) secured_since_unix: Option<f64>,
    /// When the last MKPDU arrived.
    pub(super) last_mkpdu: Option<Instant>,
    /// Transmit SAs installed (the first SAK and every rekey after it).
    pub(super) keys_installed: u64,
    /// The CKN, hex (not secret: it is in every MKPDU).
    pub(super) ckn_hex: String,
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
    /// Starts the reader thread of link `link`'s KaY socket; MKPDUs go to `to`.
    pub(super) fn start(
        link: usize,
        name: &str,
        participant: Participant,
        sock: ControlSocket,
        cipher: CipherSuite,
        vlan: Option<u16>,
        to: Sender<Mkpdu>,
    ) -> Kay {
        let sock = Arc::new(sock);
        let stop = Arc::new(AtomicBool::new(false));
        let reader = spawn_reader(link, sock.clone(), stop.clone(), to);
        Kay {
            participant,
            link,
            name: name.to_owned(),
            sock,
            stop,
            reader,
            cipher,
            send_error: None,
            vlan,
            secured_since: None,
            secured_since_unix: None,
            last_mkpdu: None,
            keys_installed: 0,
            ckn_hex: String::new(),
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

    /// Hands a received MKPDU to the participant.
    pub(super) fn receive(&mut self, now: Instant, frame: &[u8]) {
        self.last_mkpdu = Some(now);
        if let Err(e) = self.participant.handle_mkpdu(now, frame) {
            tracing::debug!("link {}: MKPDU dropped: {e}", self.name);
        }
    }

    /// Applies every pending action to the data plane (802.1X 12.x, the SecY
    /// interface), then sends every pending MKPDU: actions first, because an MKPDU may
    /// announce an SA that must already exist.
    pub(super) fn drain(&mut self, w: &Workers) -> Changes {
        let mut changes = Changes::default();
        let mut applied = false;
        while let Some(a) = self.participant.poll_action() {
            self.apply(a, w, &mut changes);
            applied = true;
        }
        if applied {
            // The MKPDUs below may tell peers that our receive SAs exist (SAK Use) or
            // that we transmit with a new AN: those must be true in the data plane first.
            w.sync();
        }
        while let Some(f) = self.participant.poll_transmit() {
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
        changes
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
        }
    }

    fn apply(&mut self, a: Action, w: &Workers, changes: &mut Changes) {
        let xpn = |suite: CipherSuite, ssci: Ssci, salt| {
            suite.is_xpn().then_some(XpnParams { ssci, salt })
        };
        let (link, name) = (self.link, self.name.clone());
        match a {
            Action::InstallRxSc { sci } => {
                tracing::info!("link {name}: MKA: peer {sci} is live; receive SC created");
                w.rx(link, RxOp::AddSc(sci));
            }
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
                changes.new_key = Some((an, ki.kn));
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
                w.tx(link, TxOp::EnableSa(an));
            }
            Action::DeleteRxSa { sci, an } => w.rx(link, RxOp::RemoveSa { sci, an }),
            Action::DeleteTxSa { an } => w.tx(link, TxOp::RemoveSa(an)),
            Action::DeleteRxSc { sci } => {
                tracing::warn!("link {name}: MKA: peer {sci} is gone; receive SC removed");
                w.rx(link, RxOp::RemoveSc(sci));
            }
            Action::Secured => {
                let ks = self
                    .participant
                    .key_server()
                    .map_or_else(|| "none".into(), |s| s.to_string());
                let me = if self.participant.is_key_server() {
                    " (this end)"
                } else {
                    ""
                };
                tracing::info!("link {name}: MKA: secured (key server {ks}{me})");
                self.secured_since = Some(Instant::now());
                self.secured_since_unix = Some(crate::control::events::now_unix());
                changes.secured = Some(true);
            }
            Action::Unsecured => {
                tracing::warn!("link {name}: MKA: not secured; frames are dropped");
                self.secured_since = None;
                self.secured_since_unix = None;
                changes.secured = Some(false);
            }
            other => {
                tracing::debug!("link {name}: MKA: action {other:?} not used by the forwarder")
            }
        }
    }

    /// Feeds the data plane's PNs to the KaY (SAK Use LPNs, PN-exhaustion rekeys).
    pub(super) fn report_pns(&mut self, t: &TxStats, r: &RxStats) {
        for sa in &t.sc.sa {
            if let Some(next) = sa.next_pn {
                self.participant.report_tx_pn(sa.an, next);
            }
        }
        for sc in &r.rx_sc {
            let Ok(sci) = sc.sci.parse::<Sci>() else {
                continue;
            };
            for sa in &sc.sa {
                if let Some(l) = sa.lowest_pn {
                    self.participant.report_rx_lowest_pn(sci, sa.an, l);
                }
            }
        }
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

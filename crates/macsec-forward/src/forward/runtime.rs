//! The `macsec forward` process: start-up checks, PN reservation, the two pump threads,
//! signals, counters.
//!
//! Threads: one per direction, each owning its half of the SecY and its ports
//! (run-to-completion, no locks on the data path), plus this control thread, which owns
//! the PN store (and, with MKA, the KaY). They talk over crossbeam channels that the
//! pumps check once per batch.

use super::pnstore::{PnStore, SaId};
use super::pump::{ProtectPump, PumpCounters, ValidatePump};
use crate::config::mka::protection_of;
use crate::config::{Config, ConfigError, KeyFilePolicy, MkaSettings, Setting};
use crate::io::afpacket::{AfPacketRx, AfPacketTx, RxConfig, RxRing, TxConfig};
use crate::io::control::ControlSocket;
use crate::io::iface::{Interface, Offloads};
use crate::io::SetupError;
use crossbeam::channel::{self, Receiver, Sender};
use macsec::crypto::{CipherSuite, SecretKey, Ssci, ICV_LEN};
use macsec::mka::{Action, Participant};
use macsec::secy::{Protection, RxStats, SecYStats, TxEvent, TxStats, XpnParams};
use macsec::wire::sectag::SECTAG_SCI_LEN;
use macsec::wire::Sci;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a pump waits for frames before it looks at its control channel.
const IDLE: Duration = Duration::from_millis(20);
/// Memory of each receive ring (kernel memory, all of it in the RSS once mapped): 8 MiB
/// hold more than a default TCP window of frames at MTU 1500 or 9000, so a burst that
/// arrives while the pump is busy is queued, not dropped (docs/design-notes.md).
const RX_RING_BYTES: usize = 8 << 20;

/// The receive ring of a port with this MTU: `TPACKET_V2` (a frame is handed over as soon
/// as it is in, for low latency) with slots for the largest frame the MTU allows (two
/// VLAN tags of slack) and as many of them as [`RX_RING_BYTES`] holds, so that a burst of
/// a TCP window fits; longer frames (GSO super-frames from a host with TSO) come whole
/// through the socket queue (`PACKET_COPY_THRESH`).
///
/// The plain port also asks for the kernel's GSO metadata (`vnet_hdr`): local senders
/// hand it UDP GSO super-frames, which must be cut at the sender's datagram size, and
/// only that metadata tells the size.
fn rx_config(mtu: u32, vnet_hdr: bool) -> RxConfig {
    use crate::io::VNET_HDR_LEN;
    use macsec::wire::ethernet::{HEADER_LEN, VLAN_TAG_LEN};
    let vnet = if vnet_hdr { VNET_HDR_LEN } else { 0 };
    RxConfig {
        ring: RxRing::v2_sized(
            mtu as usize + HEADER_LEN + 2 * VLAN_TAG_LEN + vnet,
            RX_RING_BYTES,
        ),
        copy_oversized: true,
        vnet_hdr,
        ..RxConfig::default()
    }
}

/// What `forward` can fail with, and the exit status for each.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Bad configuration (exit 2).
    #[error("config error: {0}")]
    Config(#[from] ConfigError),
    /// An interface check failed and could not be fixed (exit 2).
    #[error("{0}")]
    Setup(#[from] SetupError),
    /// The PN store failed (exit 1: no frame may be sent without it).
    #[error("{0}")]
    PnStore(#[from] super::pnstore::PnStoreError),
    /// Something failed while running (exit 1).
    #[error("{0}")]
    Runtime(String),
}

impl ForwardError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ForwardError::Config(_) | ForwardError::Setup(_) => 2,
            _ => 1,
        }
    }
}

/// Command-line options of `forward`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Configuration file.
    pub config: PathBuf,
    /// Accept key files others can read.
    pub key_policy: KeyFilePolicy,
    /// Only check the interfaces; refuse instead of fixing MTU, state or offloads.
    pub check_only: bool,
}

/// Messages to the transmit (plain -> secure) thread.
pub enum TxCtl {
    /// Finish the current batch and return.
    Stop,
    /// Send a counter snapshot.
    Report(Sender<TxReport>),
    /// The PN store now covers PNs up to `ceiling` for SA `an`.
    RaiseCeiling {
        /// Association Number.
        an: u8,
        /// New ceiling.
        ceiling: u64,
    },
    /// Install a transmit SA (MKA).
    InstallSa {
        /// Association Number.
        an: u8,
        /// SAK.
        key: SecretKey,
        /// First PN.
        next_pn: u64,
        /// XPN parameters.
        xpn: Option<XpnParams>,
    },
    /// Switch the encoding SA and allow transmission.
    EnableSa(u8),
    /// Remove a transmit SA.
    RemoveSa(u8),
    /// Change how frames are protected.
    SetProtection(Protection),
    /// Change the cipher suite (drops every SA).
    SetCipher(CipherSuite),
    /// Reply once every earlier message is applied.
    Sync(Sender<()>),
}

/// Messages to the receive (secure -> plain) thread.
pub enum RxCtl {
    /// Finish the current batch and return.
    Stop,
    /// Send a counter snapshot.
    Report(Sender<RxReport>),
    /// Add a receive SC.
    AddSc(Sci),
    /// Remove a receive SC.
    RemoveSc(Sci),
    /// Install a receive SA.
    InstallSa {
        /// Peer SCI.
        sci: Sci,
        /// Association Number.
        an: u8,
        /// SAK.
        key: SecretKey,
        /// Lowest acceptable PN.
        lowest_pn: u64,
        /// XPN parameters.
        xpn: Option<XpnParams>,
    },
    /// Remove a receive SA.
    RemoveSa {
        /// Peer SCI.
        sci: Sci,
        /// Association Number.
        an: u8,
    },
    /// Change the confidentiality offset assumed for received frames.
    SetProtection(Protection),
    /// Change the cipher suite (drops every SA).
    SetCipher(CipherSuite),
    /// Reply once every earlier message is applied.
    Sync(Sender<()>),
}

/// Messages from the pump threads to the control thread.
pub enum Up {
    /// The transmit thread wants PNs up to `ceiling` reserved for SA `an`.
    PnReserve {
        /// Association Number.
        an: u8,
        /// Wanted ceiling.
        ceiling: u64,
    },
    /// An event of the transmit SecY.
    Event(TxEvent),
    /// A pump thread stopped on an error.
    Failed(&'static str, String),
}

/// Counters of the transmit thread.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TxReport {
    /// SecY transmit counters.
    pub stats: TxStats,
    /// Pump counters.
    pub pump: PumpCounters,
}

/// Counters of the receive thread.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RxReport {
    /// SecY receive counters.
    pub stats: RxStats,
    /// Pump counters.
    pub pump: PumpCounters,
}

fn tx_thread(
    mut pump: ProtectPump<AfPacketRx, AfPacketTx>,
    ctl: Receiver<TxCtl>,
    up: Sender<Up>,
    mut ceilings: [Option<u64>; 4],
    pn_block: u64,
) -> TxReport {
    let mut asked = [0u64; 4];
    let mut last_kstats = Instant::now();
    loop {
        if let Err(e) = pump.run_batch(IDLE) {
            let _ = up.send(Up::Failed("plain->secure", e.to_string()));
            break;
        }
        while let Some(ev) = pump.secy.poll_event() {
            let _ = up.send(Up::Event(ev));
        }
        // Ask for the next PN block while half of the current one is left.
        let an = pump.secy.encoding_sa();
        if let (Some(ceil), Ok(Some(next))) = (ceilings[an as usize], pump.secy.next_pn(an)) {
            if ceil.saturating_sub(next) < pn_block / 2 + 1 && asked[an as usize] <= ceil {
                let want = ceil.saturating_add(pn_block);
                asked[an as usize] = want;
                let _ = up.send(Up::PnReserve { an, ceiling: want });
            }
        }
        if last_kstats.elapsed() > Duration::from_secs(1) {
            last_kstats = Instant::now();
            if let Ok(k) = pump.rx.kernel_stats() {
                pump.counters.kernel_drops += k.drops as u64;
            }
            note_link_down(&mut pump.counters, pump.rx.stats().link_down, "plain");
        }
        let mut stop = false;
        while let Ok(m) = ctl.try_recv() {
            match m {
                TxCtl::Stop => stop = true,
                TxCtl::Report(r) => {
                    let _ = r.send(TxReport {
                        stats: pump.secy.stats(),
                        pump: pump.counters,
                    });
                }
                TxCtl::RaiseCeiling { an, ceiling } => {
                    ceilings[an as usize] = Some(ceiling);
                    let _ = pump.secy.set_pn_ceiling(an, ceiling);
                }
                TxCtl::InstallSa {
                    an,
                    key,
                    next_pn,
                    xpn,
                } => {
                    ceilings[an as usize] = None;
                    if let Err(e) = pump.secy.install_sa(an, &key, next_pn, xpn) {
                        tracing::error!("install transmit SA {an}: {e}");
                    }
                }
                TxCtl::EnableSa(an) => {
                    if let Err(e) = pump.secy.enable_sa(an) {
                        tracing::error!("enable transmit SA {an}: {e}");
                    }
                }
                TxCtl::SetCipher(c) => {
                    ceilings = [None; 4];
                    pump.secy.set_cipher(c);
                }
                TxCtl::Sync(r) => {
                    let _ = r.send(());
                }
                TxCtl::RemoveSa(an) => {
                    let _ = pump.secy.remove_sa(an);
                }
                TxCtl::SetProtection(p) => pump.secy.set_protection(p),
            }
        }
        if stop {
            break;
        }
    }
    if let Ok(k) = pump.rx.kernel_stats() {
        pump.counters.kernel_drops += k.drops as u64;
    }
    TxReport {
        stats: pump.secy.stats(),
        pump: pump.counters,
    }
}

/// Logs a receive port that went down since the last look, and counts it.
fn note_link_down(c: &mut PumpCounters, seen: u64, port: &str) {
    if seen > c.link_down {
        tracing::warn!(
            "{port} port went down; its frames are dropped until it is up again, then forwarding resumes"
        );
        c.link_down = seen;
    }
}

fn rx_thread(
    mut pump: ValidatePump<AfPacketRx, AfPacketTx>,
    ctl: Receiver<RxCtl>,
    up: Sender<Up>,
) -> RxReport {
    let mut last_kstats = Instant::now();
    loop {
        if let Err(e) = pump.run_batch(IDLE) {
            let _ = up.send(Up::Failed("secure->plain", e.to_string()));
            break;
        }
        if last_kstats.elapsed() > Duration::from_secs(1) {
            last_kstats = Instant::now();
            if let Ok(k) = pump.rx.kernel_stats() {
                // Frames the ring could not take: 802.1AE's InPktsOverrun.
                pump.counters.kernel_drops += k.drops as u64;
                pump.secy.count_overrun(k.drops as u64);
            }
            note_link_down(&mut pump.counters, pump.rx.stats().link_down, "secure");
        }
        let mut stop = false;
        while let Ok(m) = ctl.try_recv() {
            match m {
                RxCtl::Stop => stop = true,
                RxCtl::Report(r) => {
                    let _ = r.send(RxReport {
                        stats: pump.secy.stats(),
                        pump: pump.counters,
                    });
                }
                RxCtl::AddSc(sci) => {
                    let _ = pump.secy.add_sc(sci);
                }
                RxCtl::RemoveSc(sci) => {
                    let _ = pump.secy.remove_sc(sci);
                }
                RxCtl::InstallSa {
                    sci,
                    an,
                    key,
                    lowest_pn,
                    xpn,
                } => {
                    if let Err(e) = pump.secy.install_sa(sci, an, &key, lowest_pn, xpn) {
                        tracing::error!("install receive SA {sci} {an}: {e}");
                    }
                }
                RxCtl::RemoveSa { sci, an } => {
                    let _ = pump.secy.remove_sa(sci, an);
                }
                RxCtl::SetProtection(p) => pump.secy.set_protection(p),
                RxCtl::SetCipher(c) => pump.secy.set_cipher(c),
                RxCtl::Sync(r) => {
                    let _ = r.send(());
                }
            }
        }
        if stop {
            break;
        }
    }
    if let Ok(k) = pump.rx.kernel_stats() {
        pump.counters.kernel_drops += k.drops as u64;
        pump.secy.count_overrun(k.drops as u64);
    }
    RxReport {
        stats: pump.secy.stats(),
        pump: pump.counters,
    }
}

/// Checks an interface, fixing what can be fixed unless `check_only`.
fn prepare_port(name: &str, role: &str, check_only: bool) -> Result<Interface, ForwardError> {
    let mut i = Interface::lookup(name)?;
    if !i.is_up() {
        if check_only {
            i.require_up()?;
        }
        tracing::warn!("{role} port {name} was down; setting it up");
        i.set_up()?;
    }
    let off = Offloads::read(name)?;
    if !off.enabled().is_empty() {
        if check_only {
            off.require_off()?;
        }
        tracing::info!(
            "{role} port {name}: turning offloads off ({})",
            off.ethtool_command().unwrap_or_default()
        );
        Offloads::disable_all(name)?;
    }
    Ok(i)
}

/// A running forwarder's control side.
struct Control {
    tx_ctl: Sender<TxCtl>,
    rx_ctl: Sender<RxCtl>,
}

impl Control {
    /// Waits until both pump threads have applied every message sent so far.
    fn sync(&self) {
        let (ts, tr) = channel::bounded(1);
        let (rs, rr) = channel::bounded(1);
        if self.tx_ctl.send(TxCtl::Sync(ts)).is_ok() {
            let _ = tr.recv_timeout(Duration::from_secs(2));
        }
        if self.rx_ctl.send(RxCtl::Sync(rs)).is_ok() {
            let _ = rr.recv_timeout(Duration::from_secs(2));
        }
    }

    fn snapshot(&self) -> Option<(TxReport, RxReport)> {
        let (ts, tr) = channel::bounded(1);
        let (rs, rr) = channel::bounded(1);
        self.tx_ctl.send(TxCtl::Report(ts)).ok()?;
        self.rx_ctl.send(RxCtl::Report(rs)).ok()?;
        let t = tr.recv_timeout(Duration::from_secs(2)).ok()?;
        let r = rr.recv_timeout(Duration::from_secs(2)).ok()?;
        Some((t, r))
    }
}

/// The JSON object printed on SIGUSR1, periodically and at exit.
pub fn stats_json(event: &str, t: &TxReport, r: &RxReport, extra: serde_json::Value) -> String {
    let counters = SecYStats::new(t.stats.clone(), r.stats.clone());
    serde_json::json!({
        "event": event,
        "counters": counters,
        "pumps": { "plain_to_secure": t.pump, "secure_to_plain": r.pump },
        "forwarder": extra,
    })
    .to_string()
}

/// Runs the forwarder until SIGINT/SIGTERM. Returns the exit status.
pub fn run(opts: &Options) -> Result<(), ForwardError> {
    let mut cfg = Config::load(&opts.config, opts.key_policy)?;
    cfg.reject_unknown_sections(&["forward", "mka"])?;
    let fwd = cfg.forward.clone();
    let ports = cfg.ports.clone().ok_or_else(|| ConfigError::Field {
        field: "ports".into(),
        problem: "missing: forward needs [ports] plain = \"IFNAME\" and secure = \"IFNAME\"".into(),
    })?;
    // Key source: MKA with a pre-shared CAK ([mka]), or static SAKs, but only when the
    // configuration lists them itself; never both, never neither.
    let has_static = !cfg.secy.tx.sas.is_empty() || cfg.secy.rx.iter().any(|r| !r.sas.is_empty());
    let mka: Option<MkaSettings> = match (cfg.mka.take(), has_static) {
        (Some(_), true) => {
            return Err(ForwardError::Config(ConfigError::Field {
                field: "mka".into(),
                problem: "both [mka] and static SAs ([[secy.tx.sa]]/[[secy.rx.sa]]) are configured: keep one key source".into(),
            }))
        }
        (Some(m), false) => Some(m),
        (None, false) => {
            return Err(ForwardError::Config(ConfigError::Field {
                field: "mka".into(),
                problem: "missing: no keys are configured. Add an [mka] section with a pre-shared key (run `macsec keygen`), or static SAs in [[secy.tx.sa]] and [[secy.rx]]".into(),
            }))
        }
        (None, true) => {
            if cfg.secy.tx.sas.is_empty() || cfg.secy.rx.is_empty() {
                return Err(ForwardError::Config(ConfigError::Field {
                    field: if cfg.secy.tx.sas.is_empty() { "secy.tx.sa" } else { "secy.rx" }.into(),
                    problem: "missing: static keys need a transmit SA ([[secy.tx.sa]]) and at least one receive SC ([[secy.rx]] with [[secy.rx.sa]])".into(),
                }));
            }
            None
        }
    };

    // The PN store first: it also makes sure no other forwarder uses this state (and so,
    // probably, these keys and this SCI) before anything is touched.
    let mut store = PnStore::open(&fwd.state_file)?;

    // Interfaces: exist, up, offloads off, MTUs that fit (802.1AE overhead: SecTAG with
    // SCI + ICV = 32 octets, + 4 per VLAN tag kept in clear).
    let plain = prepare_port(&ports.plain, "plain", opts.check_only)?;
    let mut secure = prepare_port(&ports.secure, "secure", opts.check_only)?;
    let overhead = (SECTAG_SCI_LEN + ICV_LEN) as u32 + 4 * cfg.secy.cfg.vlan_in_clear as u32;
    let need = plain.mtu + overhead;
    if secure.mtu < need {
        if opts.check_only {
            secure.require_mtu(need)?;
        }
        tracing::warn!(
            "secure port {} MTU {} < plain MTU {} + {overhead}; raising it to {need}",
            secure.name,
            secure.mtu,
            plain.mtu
        );
        secure.set_mtu(need).map_err(|e| {
            ForwardError::Runtime(format!(
                "{e}; the secure port needs MTU {need} (plain MTU {} + {overhead}): run `ip link set dev {} mtu {need}`, or lower the plain port's MTU to {}",
                plain.mtu,
                secure.name,
                secure.mtu.saturating_sub(overhead)
            ))
        })?;
        secure.refresh()?;
    }
    if secure.mtu < need + 4 {
        // A packet socket sends an untagged frame of at most MTU + 14 octets, and a
        // protected frame carries the plain frame's 802.1Q tag inside: on a trunk,
        // full-size tagged frames need 4 more (they are counted as OutPktsTooLong).
        tracing::info!(
            "secure port {} MTU {} carries untagged plain frames up to MTU {}; for full-size 802.1Q-tagged frames from the plain port, set it to {}: `ip link set dev {} mtu {}`",
            secure.name,
            secure.mtu,
            plain.mtu,
            need + 4,
            secure.name,
            need + 4
        );
    }

    // The SecY, with the SCI defaulting to the secure port's MAC and port 1.
    let mut settings = cfg.secy;
    if !settings.sci_set {
        let mac = secure.mac.ok_or_else(|| ConfigError::Field {
            field: "secy.sci".into(),
            problem: format!(
                "missing, and the secure port {} has no MAC address to derive it from",
                secure.name
            ),
        })?;
        settings.cfg.sci = Sci::new(mac, 1);
    }
    settings.cfg.mtu = Some(secure.mtu as usize);
    if let Some(m) = &mka {
        settings.cfg.cipher = m.cipher;
        if m.cipher.is_xpn() && settings.cfg.replay_window > macsec::secy::replay::MAX_XPN_WINDOW {
            return Err(ForwardError::Config(ConfigError::Field {
                field: "secy.replay_window".into(),
                problem: format!(
                    "at most {} with an XPN cipher suite",
                    macsec::secy::replay::MAX_XPN_WINDOW
                ),
            }));
        }
    }
    let sci = settings.cfg.sci;
    let cipher = settings.cfg.cipher;
    let mut secy = settings.build()?;
    if mka.is_some() {
        // 802.1X 12.x: nothing is sent until the KaY enables a transmit SA.
        secy.tx.set_transmit_enabled(false);
    }

    // Never reuse a PN: start every transmit SA above its durable high-water mark.
    let mut ceilings = [None; 4];
    let mut ids = [None; 4];
    for sa in &settings.tx.sas {
        let id = SaId::new(sci, sa.an, &sa.key);
        let (start, ceiling) = store.start(id, sa.pn, fwd.pn_block, cipher.max_pn())?;
        secy.tx
            .install_sa(sa.an, &sa.key, start, sa.xpn)
            .map_err(|e| ForwardError::Runtime(e.to_string()))?;
        secy.tx
            .set_pn_ceiling(sa.an, ceiling)
            .map_err(|e| ForwardError::Runtime(e.to_string()))?;
        ceilings[sa.an as usize] = Some(ceiling);
        ids[sa.an as usize] = Some(id);
        if start != sa.pn {
            tracing::info!(
                "transmit SA {}: resuming at PN {start:#x} (configured {:#x}) from {}",
                sa.an,
                sa.pn,
                fwd.state_file.display()
            );
        }
    }

    let kay = match &mka {
        None => None,
        Some(m) => {
            let pcfg = m.participant_config(sci, settings.cfg.protection);
            let p = Participant::new(pcfg, Instant::now()).map_err(|e| ConfigError::Field {
                field: "mka".into(),
                problem: e.to_string(),
            })?;
            let sock = ControlSocket::open_for_kay(&secure, m.ethertype, m.vlan)?;
            sock.join_multicast(m.destination)?;
            Some((p, sock, m.vlan))
        }
    };

    // Transmit rings: the default 408 slots (4 MiB), headroom for NICs with slow
    // transmit completions (docs/design-notes.md).
    let plain_rx = AfPacketRx::open(&plain, &rx_config(plain.mtu, true))?;
    let tx_cfg = TxConfig {
        qdisc_bypass: fwd.qdisc_bypass,
        ..TxConfig::default()
    };
    let plain_tx = AfPacketTx::open(&plain, &tx_cfg)?;
    let secure_rx = AfPacketRx::open(&secure, &rx_config(secure.mtu, false))?;
    let secure_tx = AfPacketTx::open(&secure, &tx_cfg)?;

    let key_source = if mka.is_some() { "mka" } else { "static" };
    tracing::info!(
        plain = %plain.name, plain_mtu = plain.mtu, secure = %secure.name, secure_mtu = secure.mtu,
        cipher = %cipher, sci = %sci, encoding_sa = settings.tx.encoding_sa,
        replay_window = settings.cfg.replay_window, rx_scs = settings.rx.len(),
        state_file = %fwd.state_file.display(), offloads = "off",
        "macsec forward: {key_source} keys; protecting {} -> {} ({}), validating {} -> {} ({})",
        plain.name, secure.name, Setting(settings.cfg.protection), secure.name, plain.name,
        Setting(settings.cfg.validate)
    );
    if let Some(m) = &mka {
        tracing::info!(
            ckn = %hex::encode(m.ckn.as_bytes()),
            priority = m.priority, distributes = %m.cipher, hello_ms = m.hello_time.as_millis() as u64,
            life_ms = m.life_time.as_millis() as u64, destination = %m.destination,
            ethertype = format_args!("{:#06x}", m.ethertype),
            vlan = m.vlan.map_or("untagged".to_string(), |v| v.to_string()),
            "MKA participant started; frames are dropped until the CA is secured"
        );
    }

    let (tx_half, rx_half) = secy.split();
    let vlan = settings.cfg.vlan_in_clear as usize;
    let eapol_type = mka
        .as_ref()
        .map_or(macsec::wire::ethernet::ethertype::EAPOL, |m| m.ethertype);
    let protect = ProtectPump::new(plain_rx, secure_tx, tx_half, plain.mtu as usize);
    let mut validate = ValidatePump::new(secure_rx, plain_tx, rx_half, plain.mtu as usize, vlan);
    validate.eapol_ethertype = eapol_type;
    let (tx_ctl, tx_ctl_rx) = channel::unbounded();
    let (rx_ctl, rx_ctl_rx) = channel::unbounded();
    let (up_tx, up_rx) = channel::unbounded();
    let up2 = up_tx.clone();
    let block = fwd.pn_block;
    let tx_join = std::thread::Builder::new()
        .name("plain->secure".into())
        .spawn(move || tx_thread(protect, tx_ctl_rx, up2, ceilings, block))
        .map_err(|e| ForwardError::Runtime(e.to_string()))?;
    let up3 = up_tx.clone();
    let rx_join = std::thread::Builder::new()
        .name("secure->plain".into())
        .spawn(move || rx_thread(validate, rx_ctl_rx, up3))
        .map_err(|e| ForwardError::Runtime(e.to_string()))?;
    drop(up_tx);
    let control = Control { tx_ctl, rx_ctl };

    let signals = signal_channel()?;
    let ticker = match fwd.stats_interval {
        Some(i) => channel::tick(i),
        None => channel::never(),
    };
    let started = Instant::now();
    let mut kay = kay.map(|(p, sock, vlan)| Kay::start(p, sock, cipher, vlan));
    let extra = |started: Instant, kay: &Option<Kay>| {
        serde_json::json!({
            "plain": ports.plain, "secure": ports.secure, "cipher": kay.as_ref().map_or(cipher, |k| k.cipher).name(),
            "sci": sci.to_string(), "key_source": key_source, "uptime_s": started.elapsed().as_secs_f64(),
            "mka": kay.as_ref().map(|k| serde_json::to_value(k.participant.status()).unwrap_or_default()),
        })
    };
    if let Some(k) = kay.as_mut() {
        k.drain(&control);
    }
    let pn_tick = if kay.is_some() {
        channel::tick(Duration::from_secs(1))
    } else {
        channel::never()
    };
    let never_frames = channel::never();
    let mut failure: Option<String> = None;
    loop {
        let kay_timer = kay
            .as_ref()
            .and_then(|k| k.participant.poll_timeout())
            .map(channel::at)
            .unwrap_or_else(channel::never);
        let mkpdus = kay.as_ref().map_or(&never_frames, |k| &k.frames);
        channel::select! {
            recv(mkpdus) -> f => if let (Ok(f), Some(k)) = (f, kay.as_mut()) {
                if let Err(e) = k.participant.handle_mkpdu(Instant::now(), &f) {
                    tracing::debug!("MKPDU dropped: {e:?}");
                }
                k.drain(&control);
            },
            recv(kay_timer) -> _ => if let Some(k) = kay.as_mut() {
                k.participant.handle_timeout(Instant::now());
                k.drain(&control);
            },
            recv(pn_tick) -> _ => if let Some(k) = kay.as_mut() {
                if let Some((t, r)) = control.snapshot() {
                    k.report_pns(&t, &r);
                    k.drain(&control);
                }
            },
            recv(signals) -> s => match s {
                Ok(signal_hook::consts::SIGHUP) => match kay.as_mut() {
                    Some(k) => {
                        let ok = k.participant.request_rekey();
                        tracing::info!("SIGHUP: {}", if ok { "distributing a new SAK" } else { "rekey refused (not the key server, or a rekey is in progress)" });
                        k.drain(&control);
                    }
                    None => tracing::info!("SIGHUP ignored: static keys do not rekey"),
                },
                Ok(signal_hook::consts::SIGUSR1) => {
                    if let Some((t, r)) = control.snapshot() {
                        println!("{}", stats_json("stats", &t, &r, extra(started, &kay)));
                    }
                }
                Ok(_) | Err(_) => break,
            },
            recv(up_rx) -> m => match m {
                Ok(Up::PnReserve { an, ceiling }) => {
                    let Some(id) = ids[an as usize] else { continue };
                    let ceiling = ceiling.min(cipher.max_pn());
                    match store.set(id, ceiling) {
                        Ok(()) => { let _ = control.tx_ctl.send(TxCtl::RaiseCeiling { an, ceiling }); }
                        Err(e) => {
                            // The SA stops at its current ceiling, so no PN is ever unrecorded.
                            failure = Some(e.to_string());
                            break;
                        }
                    }
                }
                Ok(Up::Event(TxEvent::PnThreshold { an, next_pn })) => match kay.as_mut() {
                    Some(k) => {
                        // Tell the KaY now rather than at the next report.
                        k.participant.report_tx_pn(an, next_pn);
                        k.drain(&control);
                    }
                    None => tracing::warn!("transmit SA {an} passed the rekey threshold (next PN {next_pn:#x}); configure a new key (static keys do not rekey)"),
                },
                Ok(Up::Event(TxEvent::PnExhausted { an })) => {
                    tracing::error!("transmit SA {an} used its last PN and stopped; configure a new key");
                }
                Ok(Up::Event(TxEvent::PnCeiling { an, next_pn })) => {
                    tracing::warn!("transmit SA {an} waits for its PN reservation (next PN {next_pn:#x}); frames are being dropped");
                }
                Ok(Up::Event(other)) => tracing::debug!("transmit event {other:?}"),
                Ok(Up::Failed(which, e)) => { failure = Some(format!("{which} thread: {e}")); break; }
                Err(_) => { failure = Some("a pump thread exited".into()); break; }
            },
            recv(ticker) -> _ => {
                if let Some((t, r)) = control.snapshot() {
                    println!("{}", stats_json("stats", &t, &r, extra(started, &kay)));
                }
            }
        }
    }
    let _ = control.tx_ctl.send(TxCtl::Stop);
    let _ = control.rx_ctl.send(RxCtl::Stop);
    let t = tx_join.join();
    let r = rx_join.join();
    if let (Ok(t), Ok(r)) = (&t, &r) {
        println!("{}", stats_json("exit", t, r, extra(started, &kay)));
    }
    if let Some(k) = kay.take() {
        k.stop();
    }
    match failure {
        Some(f) => Err(ForwardError::Runtime(f)),
        None if t.is_err() || r.is_err() => {
            Err(ForwardError::Runtime("a pump thread panicked".into()))
        }
        None => Ok(()),
    }
}

/// The KaY side of the control thread: the participant, its socket, and a reader
/// thread that turns received MKPDUs into channel messages.
struct Kay {
    participant: Participant,
    sock: std::sync::Arc<ControlSocket>,
    frames: Receiver<Vec<u8>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    cipher: CipherSuite,
    /// The last MKPDU send error, logged once until sending works again (a link that is
    /// down would otherwise log every hello).
    send_error: Option<std::io::ErrorKind>,
    /// `[mka] vlan`: the VLAN ID our MKPDUs carry and the only one we accept them on.
    vlan: Option<u16>,
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

impl Kay {
    fn start(
        participant: Participant,
        sock: ControlSocket,
        cipher: CipherSuite,
        vlan: Option<u16>,
    ) -> Kay {
        use std::sync::atomic::{AtomicBool, Ordering};
        let sock = std::sync::Arc::new(sock);
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel::bounded(256);
        let (s2, stop2) = (sock.clone(), stop.clone());
        let reader = std::thread::Builder::new()
            .name("mka-rx".into())
            .spawn(move || {
                let mut buf = vec![0u8; 2048];
                // The socket's filter lets through only MKPDUs of our VLAN (`[mka] vlan`).
                while !stop2.load(Ordering::Relaxed) {
                    match s2.recv(&mut buf, Duration::from_millis(200)) {
                        Ok(Some(f)) if !f.truncated => {
                            // A full queue means a flood: drop, the KaY counts nothing lost.
                            let _ = tx.try_send(buf[..f.len].to_vec());
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!("MKA socket: {e}");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            })
            .ok();
        Kay {
            participant,
            sock,
            frames: rx,
            stop,
            reader,
            cipher,
            send_error: None,
            vlan,
        }
    }

    fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// Applies every pending action to the data plane (802.1X 12.x, the SecY
    /// interface), then sends every pending MKPDU: actions first, because an MKPDU may
    /// announce an SA that must already exist.
    fn drain(&mut self, c: &Control) {
        let mut applied = false;
        while let Some(a) = self.participant.poll_action() {
            self.apply(a, c);
            applied = true;
        }
        if applied {
            // The MKPDUs below may tell peers that our receive SAs exist (SAK Use) or
            // that we transmit with a new AN: those must be true in the data plane first.
            c.sync();
        }
        while let Some(f) = self.participant.poll_transmit() {
            let f = match self.vlan {
                Some(vid) => with_vlan_tag(&f, vid),
                None => f,
            };
            match self.sock.send(&f) {
                Ok(()) => {
                    if self.send_error.take().is_some() {
                        tracing::info!("MKPDUs are going out again");
                    }
                }
                Err(e) => {
                    if self.send_error != Some(e.kind()) {
                        tracing::warn!("sending an MKPDU: {e} (logged once until it works again)");
                        self.send_error = Some(e.kind());
                    }
                }
            }
        }
    }

    fn ensure_cipher(&mut self, suite: CipherSuite, c: &Control) {
        if suite != self.cipher {
            tracing::info!(
                "MKA: cipher suite {} distributed; switching from {}",
                suite,
                self.cipher
            );
            self.cipher = suite;
            let _ = c.tx_ctl.send(TxCtl::SetCipher(suite));
            let _ = c.rx_ctl.send(RxCtl::SetCipher(suite));
        }
    }

    fn apply(&mut self, a: Action, c: &Control) {
        let xpn = |suite: CipherSuite, ssci: Ssci, salt| {
            suite.is_xpn().then_some(XpnParams { ssci, salt })
        };
        match a {
            Action::InstallRxSc { sci } => {
                tracing::info!("MKA: peer {sci} is live; receive SC created");
                let _ = c.rx_ctl.send(RxCtl::AddSc(sci));
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
                self.ensure_cipher(suite, c);
                tracing::info!(
                    "MKA: receive SA {sci} AN {an} installed (KN {}, lowest PN {lowest_pn})",
                    ki.kn
                );
                let _ = c.rx_ctl.send(RxCtl::InstallSa {
                    sci,
                    an,
                    key,
                    lowest_pn,
                    xpn: xpn(suite, ssci, salt),
                });
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
                self.ensure_cipher(suite, c);
                let p = protection_of(confidentiality);
                tracing::info!(
                    "MKA: transmit SA AN {an} installed (KN {}, {suite}, {})",
                    ki.kn,
                    Setting(p)
                );
                let _ = c.tx_ctl.send(TxCtl::SetProtection(p));
                let _ = c.rx_ctl.send(RxCtl::SetProtection(p));
                let _ = c.tx_ctl.send(TxCtl::InstallSa {
                    an,
                    key,
                    next_pn,
                    xpn: xpn(suite, ssci, salt),
                });
            }
            Action::EnableTx { an } => {
                tracing::info!("MKA: transmitting with AN {an}");
                let _ = c.tx_ctl.send(TxCtl::EnableSa(an));
            }
            Action::DeleteRxSa { sci, an } => {
                let _ = c.rx_ctl.send(RxCtl::RemoveSa { sci, an });
            }
            Action::DeleteTxSa { an } => {
                let _ = c.tx_ctl.send(TxCtl::RemoveSa(an));
            }
            Action::DeleteRxSc { sci } => {
                tracing::warn!("MKA: peer {sci} is gone; receive SC removed");
                let _ = c.rx_ctl.send(RxCtl::RemoveSc(sci));
            }
            Action::Secured => tracing::info!(
                "MKA: secured (key server {:?})",
                self.participant.key_server()
            ),
            Action::Unsecured => tracing::warn!("MKA: not secured; frames are dropped"),
            other => tracing::debug!("MKA: action {other:?} not used by the forwarder"),
        }
    }

    /// Feeds the data plane's PNs to the KaY (SAK Use LPNs, PN-exhaustion rekeys).
    fn report_pns(&mut self, t: &TxReport, r: &RxReport) {
        for sa in &t.stats.sc.sa {
            if let Some(next) = sa.next_pn {
                self.participant.report_tx_pn(sa.an, next);
            }
        }
        for sc in &r.stats.rx_sc {
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

/// SIGINT, SIGTERM, SIGHUP and SIGUSR1 as a channel.
fn signal_channel() -> Result<Receiver<i32>, ForwardError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let mut s = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])
        .map_err(|e| ForwardError::Runtime(format!("cannot install signal handlers: {e}")))?;
    let (tx, rx) = channel::unbounded();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in s.forever() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| ForwardError::Runtime(e.to_string()))?;
    Ok(rx)
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

//! Start-up: the configuration's rules for the forwarder, the interfaces (up, offloads
//! off, MTUs that fit), one SecY per link with its SCI, static keys above their PN
//! high-water marks, the KaYs, the rings and the data-plane threads.

use super::control::{LinkCtl, Started};
use super::kay::Kay;
use super::ForwardError;
use crate::config::mka::MkaSettings;
use crate::config::{Config, ConfigError, ForwardSettings, LinksSettings, SecYSettings, Setting};
use crate::forward::pnstore::{PnStore, SaId};
use crate::forward::pump::{ProtectPump, ValidatePump};
use crate::forward::worker::{ProtectSide, ThreadMode, ValidateSide, Workers};
use crate::io::afpacket::{AfPacketRx, AfPacketTx, RxConfig, RxRing, TxConfig};
use crate::io::control::ControlSocket;
use crate::io::iface::{Interface, Offloads};
use crate::monitor::link::Monitor;
use crate::monitor::select::{Path, Selector};
use macsec::crypto::ICV_LEN;
use macsec::mka::Participant;
use macsec::wire::sectag::SECTAG_SCI_LEN;
use macsec::wire::Sci;
use std::time::Instant;

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

/// A configuration the forwarder can run.
pub(super) struct Plan {
    plain: String,
    links: LinksSettings,
    secy: SecYSettings,
    mka: Option<MkaSettings>,
    fwd: ForwardSettings,
}

fn field(f: &str, p: impl Into<String>) -> ForwardError {
    ForwardError::Config(ConfigError::Field {
        field: f.into(),
        problem: p.into(),
    })
}

impl Plan {
    /// Checks the rules that only the forwarder has: one key source, and what several
    /// links and the link monitor need.
    pub(super) fn new(mut cfg: Config) -> Result<Plan, ForwardError> {
        let plain = cfg
            .ports
            .as_ref()
            .map(|p| p.plain.clone())
            .ok_or_else(|| {
                field(
                    "ports",
                    "missing: forward needs [ports] plain = \"IFNAME\" and secure = \"IFNAME\" (or [[links]])",
                )
            })?;
        let links = cfg.links.take().ok_or_else(|| {
            field(
                "ports.secure",
                "missing: interface name towards the MACsec link (or several, as [[links]])",
            )
        })?;
        // Key source: MKA with a pre-shared CAK ([mka]), or static SAKs, but only when the
        // configuration lists them itself; never both, never neither.
        let has_static =
            !cfg.secy.tx.sas.is_empty() || cfg.secy.rx.iter().any(|r| !r.sas.is_empty());
        let mka = match (cfg.mka.take(), has_static) {
            (Some(_), true) => {
                return Err(field(
                    "mka",
                    "both [mka] and static SAs ([[secy.tx.sa]]/[[secy.rx.sa]]) are configured: keep one key source",
                ))
            }
            (Some(m), false) => Some(m),
            (None, false) => {
                return Err(field(
                    "mka",
                    "missing: no keys are configured. Add an [mka] section with a pre-shared key (run `macsec keygen`), or static SAs in [[secy.tx.sa]] and [[secy.rx]]",
                ))
            }
            (None, true) => {
                if cfg.secy.tx.sas.is_empty() || cfg.secy.rx.is_empty() {
                    return Err(field(
                        if cfg.secy.tx.sas.is_empty() { "secy.tx.sa" } else { "secy.rx" },
                        "missing: static keys need a transmit SA ([[secy.tx.sa]]) and at least one receive SC ([[secy.rx]] with [[secy.rx.sa]])",
                    ));
                }
                None
            }
        };
        if links.links.len() > 1 {
            if mka.is_none() {
                return Err(field(
                    "links",
                    "several links need [mka]: each link has its own SCI and its own SAKs, which static keys cannot give (a static key on two links would reuse its PNs)",
                ));
            }
            if cfg.secy.sci_set {
                return Err(field(
                    "secy.sci",
                    "not with several links: each link's SCI is its secure port's MAC address and port 1",
                ));
            }
        }
        if links.monitor.is_some() && cfg.secy.cfg.vlan_in_clear > 0 {
            return Err(field(
                "monitor",
                "the link monitor's probes cannot travel with secy.vlan_in_clear > 0; remove [monitor] (one link) or the clear tags",
            ));
        }
        if let Some(m) = &mka {
            cfg.secy.cfg.cipher = m.cipher;
            if m.cipher.is_xpn()
                && cfg.secy.cfg.replay_window > macsec::secy::replay::MAX_XPN_WINDOW
            {
                return Err(field(
                    "secy.replay_window",
                    format!(
                        "at most {} with an XPN cipher suite",
                        macsec::secy::replay::MAX_XPN_WINDOW
                    ),
                ));
            }
        }
        Ok(Plan {
            plain,
            links,
            secy: cfg.secy,
            mka,
            fwd: cfg.forward,
        })
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

/// Makes a secure port's MTU fit the plain port's frames with MACsec's overhead.
fn fit_mtu(
    secure: &mut Interface,
    plain: &Interface,
    overhead: u32,
    check_only: bool,
) -> Result<(), ForwardError> {
    let need = plain.mtu + overhead;
    if secure.mtu < need {
        if check_only {
            secure.require_mtu(need)?;
        }
        tracing::warn!(
            "secure port {} MTU {} < plain MTU {} + {overhead}; raising it to {need}",
            secure.name,
            secure.mtu,
            plain.mtu
        );
        secure.set_mtu(need).map_err(|e| {
            ForwardError::Startup(format!(
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
    Ok(())
}

/// Prepares everything and starts the data plane.
pub(super) fn start(plan: Plan, opts: &super::Options) -> Result<Started, ForwardError> {
    let Plan {
        plain: plain_name,
        links: links_cfg,
        secy: mut settings,
        mka,
        fwd,
    } = plan;
    let startup = |e: super::super::pnstore::PnStoreError| ForwardError::Startup(e.to_string());
    // The PN store first: it also makes sure no other forwarder uses this state (and so,
    // probably, these keys and this SCI) before anything is touched.
    let mut store = PnStore::open(&fwd.state_file).map_err(startup)?;

    // Interfaces: exist, up, offloads off, MTUs that fit (802.1AE overhead: SecTAG with
    // SCI + ICV = 32 octets, + 4 per VLAN tag kept in clear).
    let plain = prepare_port(&plain_name, "plain", opts.check_only)?;
    let overhead = (SECTAG_SCI_LEN + ICV_LEN) as u32 + 4 * settings.cfg.vlan_in_clear as u32;
    let mut secures = Vec::new();
    for l in &links_cfg.links {
        let mut s = prepare_port(&l.secure, "secure", opts.check_only)?;
        fit_mtu(&mut s, &plain, overhead, opts.check_only)?;
        secures.push(s);
    }

    let cipher = settings.cfg.cipher;
    let tx_cfg = TxConfig {
        qdisc_bypass: fwd.qdisc_bypass,
        ..TxConfig::default()
    };
    let plain_rx = AfPacketRx::open(&plain, &rx_config(plain.mtu, true))?;
    let plain_tx = AfPacketTx::open(&plain, &tx_cfg)?;
    let vlan = settings.cfg.vlan_in_clear as usize;
    let eapol_type = mka
        .as_ref()
        .map_or(macsec::wire::ethernet::ethertype::EAPOL, |m| m.ethertype);
    let mut protect = ProtectPump::new(plain_rx, plain.mtu as usize);
    let mut validate = ValidatePump::new(plain_tx, plain.mtu as usize, vlan);
    validate.set_eapol_ethertype(eapol_type);
    let (probe_tx, probe_rx) = crossbeam::channel::bounded(1024);
    if links_cfg.monitor.is_some() {
        validate.set_probe_sink(probe_tx);
    }

    let now = Instant::now();
    let mut links = Vec::new();
    let mut ceilings0 = [None; 4];
    let (mkpdu_tx, mkpdu_rx) = crossbeam::channel::bounded(1024);
    for (i, (l, secure)) in links_cfg.links.iter().zip(&secures).enumerate() {
        // The SecY, with the SCI defaulting to the secure port's MAC and port 1. Static
        // SAs (one link only, see Plan::new) are built into the first link's SecY.
        let mut cfg = settings.cfg.clone();
        if !settings.sci_set {
            let mac = secure.mac.ok_or_else(|| {
                field(
                    "secy.sci",
                    format!(
                        "missing, and the secure port {} has no MAC address to derive it from",
                        secure.name
                    ),
                )
            })?;
            cfg.sci = Sci::new(mac, 1);
        }
        cfg.mtu = Some(secure.mtu as usize);
        let sci = cfg.sci;
        let mut secy = if i == 0 {
            settings.cfg = cfg.clone();
            settings.build()?
        } else {
            macsec::secy::SecY::new(cfg.clone()).map_err(|e| field("secy", e.to_string()))?
        };
        let mut ids = [None; 4];
        if mka.is_some() {
            // 802.1X 12.x: nothing is sent until the KaY enables a transmit SA.
            secy.tx.set_transmit_enabled(false);
        } else if i == 0 {
            // Never reuse a PN: start every transmit SA above its durable high-water mark.
            for sa in &settings.tx.sas {
                let id = SaId::new(sci, sa.an, &sa.key);
                let (first, ceiling) = store
                    .start(id, sa.pn, fwd.pn_block, cipher.max_pn())
                    .map_err(startup)?;
                secy.tx
                    .install_sa(sa.an, &sa.key, first, sa.xpn)
                    .map_err(|e| ForwardError::Startup(e.to_string()))?;
                secy.tx
                    .set_pn_ceiling(sa.an, ceiling)
                    .map_err(|e| ForwardError::Startup(e.to_string()))?;
                ceilings0[sa.an as usize] = Some(ceiling);
                ids[sa.an as usize] = Some(id);
                if first != sa.pn {
                    tracing::info!(
                        "transmit SA {}: resuming at PN {first:#x} (configured {:#x}) from {}",
                        sa.an,
                        sa.pn,
                        fwd.state_file.display()
                    );
                }
            }
        }
        let kay = match &mka {
            None => None,
            Some(m) => {
                let pcfg = m.participant_config(sci, cfg.protection);
                let p = Participant::new(pcfg, now).map_err(|e| field("mka", e.to_string()))?;
                let sock = ControlSocket::open_for_kay(secure, m.ethertype, m.vlan)?;
                sock.join_multicast(m.destination)?;
                Some(Kay::start(
                    i,
                    &l.name,
                    p,
                    sock,
                    cipher,
                    m.vlan,
                    mkpdu_tx.clone(),
                ))
            }
        };
        let monitor = match &links_cfg.monitor {
            None => None,
            Some(mc) => {
                let mut session = [0u8; 8];
                getrandom::fill(&mut session)
                    .map_err(|e| ForwardError::Startup(format!("random session id: {e}")))?;
                let mut m = Monitor::new(*mc, u64::from_ne_bytes(session), now)
                    .map_err(|e| field("monitor", e.to_string()))?;
                m.set_carrier(now, secure.is_running());
                m.set_secured(now, mka.is_none());
                Some(m)
            }
        };
        let secure_rx = AfPacketRx::open(secure, &rx_config(secure.mtu, false))?;
        let secure_tx = AfPacketTx::open(secure, &tx_cfg)?;
        let (tx_half, rx_half) = secy.split();
        let mac = secure.mac.unwrap_or_default();
        protect.add_link(secure_tx, tx_half, mac);
        validate.add_link(secure_rx, rx_half);
        links.push(LinkCtl::new(
            l.clone(),
            secure.name.clone(),
            sci,
            kay,
            monitor,
            mka.is_none(),
            secure.is_running(),
            ids,
        ));
    }
    let selector = Selector::new(
        links_cfg.redundancy,
        &links_cfg
            .links
            .iter()
            .map(|l| l.priority)
            .collect::<Vec<_>>(),
    )
    .map_err(|e| field("links", e.to_string()))?;
    // Without a monitor (one link) every frame goes to that link; its SecY decides.
    let path = if links_cfg.monitor.is_some() {
        Path::NONE
    } else {
        Path::single(0)
    };
    protect.set_path(path);

    let key_source = if mka.is_some() { "mka" } else { "static" };
    let secure_names: Vec<&str> = secures.iter().map(|s| s.name.as_str()).collect();
    tracing::info!(
        plain = %plain.name, plain_mtu = plain.mtu,
        secure = %secure_names.join(","),
        secure_mtu = secures.iter().map(|s| s.mtu).min().unwrap_or(0),
        cipher = %cipher, sci = %links.first().map(|l| l.sci).unwrap_or_default(),
        encoding_sa = settings.tx.encoding_sa,
        replay_window = settings.cfg.replay_window, rx_scs = settings.rx.len(),
        state_file = %fwd.state_file.display(), offloads = "off",
        "macsec forward: {key_source} keys; protecting {} -> {} ({}), validating {} -> {} ({})",
        plain.name, secure_names.join(","), Setting(settings.cfg.protection),
        secure_names.join(","), plain.name, Setting(settings.cfg.validate)
    );
    if links.len() > 1 {
        for (l, s) in links.iter().zip(&secures) {
            tracing::info!(
                "link {}: secure port {} (MTU {}), priority {}, SCI {}",
                l.name(),
                s.name,
                s.mtu,
                l.priority(),
                l.sci
            );
        }
    }
    if let Some(mc) = &links_cfg.monitor {
        tracing::info!(
            "link monitor: a probe every {} ms per link, down after {} lost in a row, degraded above {:.1} % loss{} over {} s; {} with hold-up {} ms",
            mc.probe_interval_ms,
            mc.probe_miss,
            mc.max_loss * 100.0,
            if mc.max_rtt_ms > 0 { format!(" or {} ms RTT", mc.max_rtt_ms) } else { String::new() },
            mc.loss_window_s,
            links_cfg.redundancy.mode.as_str(),
            links_cfg.redundancy.hold_up_ms
        );
    }
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

    let mut protect = ProtectSide::new(protect, fwd.pn_block);
    protect.ceilings[0] = ceilings0;
    let (up_tx, up_rx) = crossbeam::channel::unbounded();
    let workers = Workers::spawn(
        protect,
        ValidateSide { pump: validate },
        fwd.threads.unwrap_or(ThreadMode::TwoThreads),
        up_tx,
    )
    .map_err(|e| ForwardError::Startup(format!("cannot start the data-plane threads: {e}")))?;
    Ok(Started {
        plain: plain.name,
        links,
        workers,
        up: up_rx,
        probes: probe_rx,
        mkpdus: mkpdu_rx,
        store,
        selector,
        monitored: links_cfg.monitor.is_some(),
        cipher,
        key_source,
        fwd,
    })
}

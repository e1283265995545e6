//! Start-up: the configuration's rules for the forwarder, the interfaces (up, offloads
//! off, MTUs that fit), one SecY per link with its SCI, static keys above their PN
//! high-water marks, the KaYs, the rings and the data-plane threads.

use super::chain::ChainState;
use super::control::{LinkCtl, Started};
use super::kay::{Kay, KaySetup};
use super::ForwardError;
use crate::config::mka::MkaSettings;
use crate::config::{Config, ConfigError, ForwardSettings, LinksSettings, SecYSettings, Setting};
use crate::forward::locks::{netns_inode, LockKey, Locks};
use crate::forward::pnstore::{PnStore, SaId};
use crate::forward::pump::{ProtectPump, ValidatePump};
use crate::forward::worker::{ProtectSide, ThreadMode, ValidateSide, Workers};
use crate::io::afpacket::{AfPacketRx, AfPacketTx, RxConfig, RxRing, TxConfig};
use crate::io::control::ControlSocket;
use crate::io::iface::{Interface, Offloads};
use crate::monitor::link::Monitor;
use crate::monitor::select::{Path as LinkPath, Selector};
use macsec::crypto::ICV_LEN;
use macsec::wire::sectag::SECTAG_SCI_LEN;
use macsec::wire::Sci;
use std::path::{Path, PathBuf};
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
pub(super) fn rx_config(mtu: u32, vnet_hdr: bool) -> RxConfig {
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

/// The transmit ring of a port: zero-copy towards a NIC, a linear copy towards a veth or
/// a tap device, where the kernel would copy the ring's pages again anyway
/// ([`TxConfig::linear`]).
pub(super) fn tx_config(i: &Interface, qdisc_bypass: bool) -> TxConfig {
    TxConfig {
        qdisc_bypass,
        linear: i.loops_back_into_the_stack(),
        ..TxConfig::default()
    }
}

/// For the start-up log: the port and how its transmit ring hands frames to the kernel.
fn transmit_mode(tx: &AfPacketTx) -> String {
    let how = if tx.is_linear() {
        "copied (veth/tap)"
    } else {
        "zero-copy"
    };
    format!("{} {how}", tx.ifname())
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

/// Sets an interface up and turns its offloads off, logging what it changes.
pub(super) fn fix_port(i: &mut Interface, role: &str) -> Result<(), ForwardError> {
    let name = i.name.clone();
    if !i.is_up() {
        tracing::warn!("{role} port {name} was down; setting it up");
        i.set_up()?;
    }
    let off = Offloads::read(&name)?;
    if !off.enabled().is_empty() {
        tracing::info!(
            "{role} port {name}: turning offloads off ({})",
            off.ethtool_command().unwrap_or_default()
        );
        Offloads::disable_all(&name)?;
    }
    Ok(())
}

/// What the secure port's MTU must be and why, or how to fix it when it cannot be.
fn mtu_problem(secure: &Interface, plain: &Interface, overhead: u32) -> Option<String> {
    let need = plain.mtu + overhead;
    if secure.mtu >= need {
        return None;
    }
    Some(match crate::io::linkwatch::max_mtu(&secure.name) {
        Some(max) if max < need => format!(
            "secure port {}: MTU {need} needed (plain port {} MTU {} + {overhead} for the SecTAG and ICV), but {} allows at most {max}; lower the plain port's MTU: `ip link set dev {} mtu {}`",
            secure.name,
            plain.name,
            plain.mtu,
            secure.name,
            plain.name,
            max.saturating_sub(overhead)
        ),
        _ => format!(
            "secure port {}: MTU {} is below the plain port's {} + {overhead}; run `ip link set dev {} mtu {need}`",
            secure.name, secure.mtu, plain.mtu, secure.name
        ),
    })
}

/// Makes a secure port's MTU fit the plain port's frames with MACsec's overhead.
pub(super) fn fit_mtu(
    secure: &mut Interface,
    plain: &Interface,
    overhead: u32,
) -> Result<(), ForwardError> {
    let need = plain.mtu + overhead;
    if let Some(problem) = mtu_problem(secure, plain, overhead) {
        if problem.contains("allows at most") {
            return Err(ForwardError::Startup(problem));
        }
        tracing::warn!(
            "secure port {} MTU {} < plain MTU {} + {overhead}; raising it to {need}",
            secure.name,
            secure.mtu,
            plain.mtu
        );
        secure
            .set_mtu(need)
            .map_err(|e| ForwardError::Startup(format!("{e}; {problem}")))?;
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

/// Turns IPv6 off on a secure port, so the host's own neighbour discovery does not
/// leave on it (the far end would count those frames as InPktsNoTag).
fn quiet_secure_port(name: &str) {
    let p = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    match std::fs::read_to_string(&p) {
        Ok(v) if v.trim() == "1" => {}
        Ok(_) => match std::fs::write(&p, "1") {
            Ok(()) => tracing::info!(
                "secure port {name}: IPv6 turned off ({p} = 1), so the host sends nothing of its own on it"
            ),
            Err(e) => tracing::warn!(
                "secure port {name}: cannot turn IPv6 off ({p}: {e}); the host's own IPv6 frames on it reach the far end as untagged frames (InPktsNoTag). Run `sysctl -w net.ipv6.conf.{name}.disable_ipv6=1`"
            ),
        },
        // No IPv6 on this host or port.
        Err(_) => {}
    }
}

/// Whether this process can create files in `dir` (creating it if it is missing); the
/// probe file is removed at once.
fn writable(dir: &Path) -> Result<(), std::io::Error> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".macsec-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// The PN state file of the transmit SCI `sci`.
fn state_path(fwd: &ForwardSettings, sci: Sci) -> PathBuf {
    fwd.state_file
        .clone()
        .unwrap_or_else(|| fwd.state_dir.join(format!("pn-{sci}.state")))
}

/// The locks of this plan: every port, and the static transmit keys of the first link.
fn lock_keys(plain: &str, links: &[(String, Sci)], secy: &SecYSettings) -> Vec<LockKey> {
    let netns = netns_inode();
    let mut k = vec![LockKey::Port {
        ifname: plain.to_owned(),
        netns,
        role: "plain",
    }];
    for (ifname, _) in links {
        k.push(LockKey::Port {
            ifname: ifname.clone(),
            netns,
            role: "secure",
        });
    }
    if let Some((_, sci)) = links.first() {
        for sa in &secy.tx.sas {
            k.push(LockKey::Key {
                sci: *sci,
                check: SaId::new(*sci, sa.an, &sa.key).check,
            });
        }
    }
    k
}

/// The SCI of a link's SecY: configured, or the port's MAC and port 1.
fn link_sci(secy: &SecYSettings, port: &Interface) -> Result<Sci, ForwardError> {
    if secy.sci_set {
        return Ok(secy.cfg.sci);
    }
    let mac = port.mac.ok_or_else(|| {
        field(
            "secy.sci",
            format!(
                "missing, and the secure port {} has no MAC address to derive it from",
                port.name
            ),
        )
    })?;
    Ok(Sci::new(mac, 1))
}

/// `--check-only`: every problem start-up would meet or fix, each with the command
/// that fixes it; nothing is changed and no lock is taken.
pub(super) fn check(plan: Plan, opts: &super::Options) -> Result<(), ForwardError> {
    let Plan {
        plain: plain_name,
        links: links_cfg,
        secy: settings,
        fwd,
        mka,
    } = plan;
    let mut problems: Vec<String> = Vec::new();
    if let Some(m) = &mka {
        problems.extend(chain_problems(m));
    }
    let overhead = (SECTAG_SCI_LEN + ICV_LEN) as u32 + 4 * settings.cfg.vlan_in_clear as u32;
    let look = |name: &str, role: &str, problems: &mut Vec<String>| -> Option<Interface> {
        match Interface::lookup(name) {
            Ok(i) => {
                if !i.is_up() {
                    problems.push(format!(
                        "{role} port {name} is down; run `ip link set dev {name} up`"
                    ));
                }
                match Offloads::read(name) {
                    Ok(off) => {
                        if let Err(e) = off.require_off() {
                            problems.push(format!("{role} port {e}"));
                        }
                    }
                    Err(e) => problems.push(format!("{role} port {name}: {e}")),
                }
                Some(i)
            }
            Err(e) => {
                problems.push(format!("{role} port: {e}"));
                None
            }
        }
    };
    let plain = look(&plain_name, "plain", &mut problems);
    let mut secures = Vec::new();
    for l in &links_cfg.links {
        let s = look(&l.secure, "secure", &mut problems);
        if let (Some(s), Some(p)) = (&s, &plain) {
            if let Some(m) = mtu_problem(s, p, overhead) {
                problems.push(m);
            }
        }
        secures.push(s);
    }
    let scis: Vec<(String, Sci)> = links_cfg
        .links
        .iter()
        .zip(&secures)
        .filter_map(|(l, s)| Some((l.secure.clone(), link_sci(&settings, s.as_ref()?).ok()?)))
        .collect();
    for e in Locks::check(&fwd.run_dir, &lock_keys(&plain_name, &scis, &settings)) {
        problems.push(e.to_string());
    }
    if let Err(e) = writable(&fwd.run_dir) {
        problems.push(format!(
            "lock directory {}: {e}; create it writable for this user (systemd: RuntimeDirectory=macsec), or set [forward] run_dir",
            fwd.run_dir.display()
        ));
    }
    if !settings.tx.sas.is_empty() {
        if let Some((_, sci)) = scis.first() {
            let path = state_path(&fwd, *sci);
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            if let Err(e) = writable(&dir) {
                problems.push(format!(
                    "PN state directory {}: {e}; create it writable for this user (systemd: StateDirectory=macsec), or set [forward] state_dir",
                    dir.display()
                ));
            } else if let Err(e) = PnStore::check(&path) {
                problems.push(e.to_string());
            }
        }
    }
    let _ = opts;
    if problems.is_empty() {
        eprintln!("macsec forward --check-only: no problem found; the ports, MTUs, offloads, keys, state and locks are ready");
        return Ok(());
    }
    for p in &problems {
        eprintln!("macsec forward --check-only: problem: {p}");
    }
    Err(ForwardError::Startup(format!(
        "--check-only found {} problem(s) (listed above)",
        problems.len()
    )))
}

/// What would keep a key chain from securing the links now.
fn chain_problems(m: &MkaSettings) -> Vec<String> {
    use crate::keychain::{rfc3339, ChainClock, ChainEnd};
    let clock = match ChainClock::from_env() {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let t = clock.now();
    let chain = &m.keys;
    let mut out = Vec::new();
    if chain.end(t) == ChainEnd::Over {
        out.push(format!(
            "mka.keys: every primary key has ended (now {}); add a key with a later end, or none",
            rfc3339(t)
        ));
    } else if !chain.keys().iter().any(|k| !k.fallback && k.valid_at(t)) {
        let next = chain
            .keys()
            .iter()
            .filter(|k| !k.fallback)
            .filter_map(|k| k.start.filter(|s| *s > t))
            .min();
        out.push(format!(
            "mka.keys: no primary key is valid now ({}){}; the links stay unsecured until then",
            rfc3339(t),
            next.map_or(String::new(), |n| format!(
                ", the next starts at {}",
                rfc3339(n)
            ))
        ));
    }
    out
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
    // Look every port up first (changing nothing), then lock what the nonces depend on,
    // and only then touch the interfaces.
    let mut plain = Interface::lookup(&plain_name)?;
    let mut secures = Vec::new();
    for l in &links_cfg.links {
        secures.push(Interface::lookup(&l.secure)?);
    }
    let scis = links_cfg
        .links
        .iter()
        .zip(&secures)
        .map(|(l, s)| Ok((l.secure.clone(), link_sci(&settings, s)?)))
        .collect::<Result<Vec<_>, ForwardError>>()?;
    let locks = Locks::acquire(
        &fwd.run_dir,
        &lock_keys(&plain_name, &scis, &settings),
        &opts.config,
    )
    .map_err(|e| ForwardError::Startup(e.to_string()))?;
    // Static keys: the PN high-water marks of the first link's SCI.
    let mut store = match (settings.tx.sas.is_empty(), scis.first()) {
        (false, Some((_, sci))) => {
            let path = state_path(&fwd, *sci);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| {
                        ForwardError::Startup(format!(
                            "PN state directory {}: {e}; create it writable for this user (systemd: StateDirectory=macsec), or set [forward] state_dir",
                            dir.display()
                        ))
                    })?;
            }
            let mut st = PnStore::open(&path).map_err(startup)?;
            if fwd.state_file.is_none() {
                let n = st.import(&fwd.legacy_state_file).map_err(startup)?;
                if n > 0 {
                    tracing::info!(
                        "PN marks of {} taken over into {}",
                        fwd.legacy_state_file.display(),
                        path.display()
                    );
                }
            }
            Some(st)
        }
        _ => None,
    };

    // Interfaces: up, offloads off, MTUs that fit (802.1AE overhead: SecTAG with
    // SCI + ICV = 32 octets, + 4 per VLAN tag kept in clear), no IPv6 of the host's own
    // on the secure ports.
    fix_port(&mut plain, "plain")?;
    let overhead = (SECTAG_SCI_LEN + ICV_LEN) as u32 + 4 * settings.cfg.vlan_in_clear as u32;
    for s in &mut secures {
        fix_port(s, "secure")?;
        fit_mtu(s, &plain, overhead)?;
        quiet_secure_port(&s.name);
    }

    let cipher = settings.cfg.cipher;
    let plain_rx = AfPacketRx::open(&plain, &rx_config(plain.mtu, true))?;
    let plain_tx = AfPacketTx::open(&plain, &tx_config(&plain, fwd.qdisc_bypass))?;
    // How each port's transmit ring hands frames to the kernel, as the kernel took it.
    let mut transmit = vec![transmit_mode(&plain_tx)];
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
    let clock = crate::keychain::ChainClock::from_env().map_err(ForwardError::Startup)?;
    let kay_sock = mka.as_ref().map(|m| (m.ethertype, m.vlan, m.destination));
    let chain = mka.map(|m| ChainState::new(m, clock, opts.key_policy));
    let mka = chain.as_ref().map(|c| c.mka.clone());
    let mut links = Vec::new();
    let mut ceilings0 = [None; 4];
    let (mkpdu_tx, mkpdu_rx) = crossbeam::channel::bounded(1024);
    for (i, (l, secure)) in links_cfg.links.iter().zip(&secures).enumerate() {
        // The SecY, with the SCI defaulting to the secure port's MAC and port 1. Static
        // SAs (one link only, see Plan::new) are built into the first link's SecY.
        let mut cfg = settings.cfg.clone();
        cfg.sci = scis[i].1;
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
                let st = store
                    .as_mut()
                    .ok_or_else(|| ForwardError::Startup("no PN store for static keys".into()))?;
                let (first, ceiling) = st
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
                        st.path().display()
                    );
                }
            }
        }
        let kay = match &mka {
            None => None,
            Some(m) => {
                // The participants start with the key chain (control loop); their
                // settings are checked here, once per key.
                for k in chain.iter().flat_map(|c| c.chain.keys()) {
                    m.participant_config(k, sci, cfg.protection)
                        .validate()
                        .map_err(|e| field("mka", e.to_string()))?;
                }
                let sock = ControlSocket::open_for_kay(secure, m.ethertype, m.vlan)?;
                sock.join_multicast(m.destination)?;
                let setup = KaySetup {
                    mka: m.clone(),
                    sci,
                    protection: cfg.protection,
                };
                Some(Kay::start(
                    i,
                    &l.name,
                    setup,
                    sock,
                    cipher,
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
        let secure_tx = AfPacketTx::open(secure, &tx_config(secure, fwd.qdisc_bypass))?;
        transmit.push(transmit_mode(&secure_tx));
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
        LinkPath::NONE
    } else {
        LinkPath::single(0)
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
        state = %store.as_ref().map_or("none (MKA)".into(), |s| s.path().display().to_string()),
        offloads = "off", transmit = %transmit.join(", "),
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
    if let (Some(m), Some(c)) = (&mka, &chain) {
        let keys: Vec<String> = c
            .chain
            .keys()
            .iter()
            .map(|k| {
                let mut s = k.ckn_hex();
                if let Some(t) = k.start {
                    s += &format!(" from {}", crate::keychain::rfc3339(t));
                }
                if let Some(t) = k.end {
                    s += &format!(" until {}", crate::keychain::rfc3339(t));
                }
                if k.fallback {
                    s += " (fallback)";
                }
                s
            })
            .collect();
        tracing::info!(
            keys = %keys.join(", "),
            policy = m.policy.as_str(),
            priority = m.priority, distributes = %m.cipher, hello_ms = m.hello_time.as_millis() as u64,
            life_ms = m.life_time.as_millis() as u64, destination = %m.destination,
            ethertype = format_args!("{:#06x}", m.ethertype),
            vlan = m.vlan.map_or("untagged".to_string(), |v| v.to_string()),
            "MKA: {}",
            match m.policy {
                crate::config::mka::Policy::MustSecure => "frames are dropped until a CA is secured (policy must-secure)",
                crate::config::mka::Policy::ShouldSecure => "frames pass unprotected until a CA is secured (policy should-secure)",
            }
        );
    }

    let mut protect = ProtectSide::new(protect, fwd.pn_block);
    protect.ceilings[0] = ceilings0;
    let (up_tx, up_rx) = crossbeam::channel::unbounded();
    let workers = Workers::spawn(
        protect,
        ValidateSide::new(validate),
        fwd.threads.unwrap_or_else(ThreadMode::auto),
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
        locks,
        selector,
        monitored: links_cfg.monitor.is_some(),
        cipher,
        key_source,
        fwd,
        overhead,
        kay_sock,
        mkpdu_tx,
        chain,
        validate: settings.cfg.validate,
    })
}

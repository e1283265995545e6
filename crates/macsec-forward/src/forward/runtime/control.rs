//! The control loop: MKA per link, the link monitors and the selector, interface events,
//! PN reservations, signals and counters. Everything here is event-driven; the data
//! plane is told what changed through [`Workers`].

use super::chain::ChainState;
use super::kay::{Changes, Kay, Mkpdu};
use super::report;
use super::ForwardError;
use crate::config::mka::Policy;
use crate::config::{ForwardSettings, LinkSettings};
use crate::control::{Command, EventKind, EventLog, Request};
use crate::forward::locks::Locks;
use crate::forward::pnstore::{PnStore, SaId};
use crate::forward::pump::ProbeIn;
use crate::forward::worker::{Report, RxOp, TxOp, Up, Workers};
use crate::io::linkwatch::{LinkEvent, LinkWatch};
use crate::monitor::link::{Monitor, State};
use crate::monitor::select::{LinkView, Selector};
use crossbeam::channel::{self, Receiver};
use macsec::crypto::CipherSuite;
use macsec::secy::{TxEvent, ValidateFrames};
use macsec::wire::Sci;
use std::time::{Duration, Instant};

/// One link as the control thread sees it.
pub(super) struct LinkCtl {
    cfg: LinkSettings,
    ifname: String,
    pub(super) sci: Sci,
    pub(super) kay: Option<Kay>,
    pub(super) monitor: Option<Monitor>,
    /// Secured: MKA secured the CA, or static keys are installed.
    pub(super) secured: bool,
    /// Frames pass unprotected (policy should-secure while not secured).
    pub(super) unprotected: bool,
    pub(super) carrier: bool,
    /// PN store identities of the static transmit SAs, per AN.
    ids: [Option<SaId>; 4],
    /// Times traffic moved away from this link.
    pub(super) failovers: u64,
    /// Warns when the peer's frames keep failing (key or SCI mismatch).
    mismatch: super::mismatch::MismatchWatch,
}

impl LinkCtl {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        cfg: LinkSettings,
        ifname: String,
        sci: Sci,
        kay: Option<Kay>,
        monitor: Option<Monitor>,
        secured: bool,
        carrier: bool,
        ids: [Option<SaId>; 4],
    ) -> LinkCtl {
        LinkCtl {
            cfg,
            ifname,
            sci,
            kay,
            monitor,
            secured,
            unprotected: false,
            carrier,
            ids,
            failovers: 0,
            mismatch: Default::default(),
        }
    }

    /// The link's name.
    pub(super) fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The link's secure interface.
    pub(super) fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Its active-backup priority.
    pub(super) fn priority(&self) -> u32 {
        self.cfg.priority
    }
}

/// Everything start-up made, handed to the control loop.
pub(super) struct Started {
    pub(super) plain: String,
    pub(super) links: Vec<LinkCtl>,
    pub(super) workers: Workers,
    pub(super) up: Receiver<Up>,
    pub(super) probes: Receiver<ProbeIn>,
    pub(super) mkpdus: Receiver<Mkpdu>,
    pub(super) store: Option<PnStore>,
    /// The locks on the ports and keys, held until the forwarder exits.
    pub(super) locks: Locks,
    pub(super) selector: Selector,
    /// Whether the link monitor runs (it then decides which links carry traffic).
    pub(super) monitored: bool,
    pub(super) cipher: CipherSuite,
    pub(super) key_source: &'static str,
    pub(super) fwd: ForwardSettings,
    /// What re-opening a port needs: the MACsec overhead on the secure MTU, the KaY
    /// socket's settings (EtherType, VLAN, destination) and where MKPDUs go.
    pub(super) overhead: u32,
    pub(super) kay_sock: Option<(u16, Option<u16>, macsec::wire::MacAddr)>,
    pub(super) mkpdu_tx: channel::Sender<Mkpdu>,
    /// MKA's key chain, clock and policy.
    pub(super) chain: Option<ChainState>,
    /// The configured validateFrames (restored once a should-secure link is secured).
    pub(super) validate: ValidateFrames,
}

/// The control thread's state.
struct Control {
    s: Started,
    started_at: Instant,
    /// The forwarder's name (its configuration file's stem) and configuration.
    name: String,
    config: std::path::PathBuf,
    /// The last 50 events, each also one log line.
    events: EventLog,
    /// The latest counter snapshot, reused for queries within [`REPORT_REUSE`].
    report: Option<(Instant, Report)>,
    /// Per link, per peer SCI: InPktsOK and when it last grew.
    last_valid: Vec<std::collections::HashMap<String, (u64, Instant)>>,
    failovers: u64,
    /// Ports whose interface is gone (`None`: plain, `Some(k)`: link k), and since when.
    gone: Vec<(Option<usize>, Instant)>,
    /// Ports opened again after their interface came back.
    port_reopens: u64,
}

/// How old a counter snapshot may be to answer a query (scrapes at 10 Hz cost the
/// data plane one snapshot each at most).
const REPORT_REUSE: Duration = Duration::from_millis(100);

/// SIGINT, SIGTERM, SIGHUP and SIGUSR1 as a channel.
fn signal_channel() -> Result<Receiver<i32>, ForwardError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let mut s = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])
        .map_err(|e| ForwardError::Startup(format!("cannot install signal handlers: {e}")))?;
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
        .map_err(|e| ForwardError::Startup(e.to_string()))?;
    Ok(rx)
}

/// Runs the control loop until SIGINT/SIGTERM or a data-plane failure, answering the
/// control socket's and the metrics endpoint's `requests`.
pub(super) fn run(
    s: Started,
    mut requests: Receiver<Request>,
    name: String,
    config: std::path::PathBuf,
) -> Result<(), ForwardError> {
    let signals = signal_channel()?;
    let (lw_tx, mut lw_rx) = channel::bounded(256);
    let _watch = match LinkWatch::start(lw_tx) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("interface events unavailable ({e}); carrier changes are seen by the link monitor's probes only");
            None
        }
    };
    let ticker = match s.fwd.stats_interval {
        Some(i) => channel::tick(i),
        None => channel::never(),
    };
    // Once a second: PNs for the KaYs, and a look at the receive counters.
    let pn_tick = channel::tick(Duration::from_secs(1));
    let reopen_tick = channel::tick(Duration::from_millis(200));
    let n = s.links.len();
    let mut c = Control {
        s,
        started_at: Instant::now(),
        name,
        config,
        events: EventLog::new(),
        report: None,
        last_valid: vec![Default::default(); n],
        failovers: 0,
        gone: Vec::new(),
        port_reopens: 0,
    };
    if let Some(ch) = c.s.chain.as_mut() {
        if ch.clock.is_test() {
            tracing::warn!(
                "{}: the key chain runs on a test clock (now {})",
                crate::keychain::TEST_CLOCK_ENV,
                crate::keychain::rfc3339(ch.now())
            );
        }
        ch.check_expiry();
    }
    c.chain_tick(Instant::now());
    for i in 0..c.s.links.len() {
        c.apply_policy(i);
    }
    c.service(Instant::now());
    let mut failure: Option<String> = None;
    let mut mkpdus = c.s.mkpdus.clone();
    let mut probes = c.s.probes.clone();
    loop {
        let deadline = c.deadline();
        let timer = deadline.map(channel::at).unwrap_or_else(channel::never);
        channel::select! {
            recv(mkpdus) -> m => match m {
                Ok((i, f)) => {
                    if let Some(k) = c.s.links.get_mut(i).and_then(|l| l.kay.as_mut()) {
                        k.receive(Instant::now(), &f);
                    }
                    c.drain_kay(i);
                }
                // A channel whose senders are all gone is always ready: never select
                // it again (else the loop would spin).
                Err(_) => mkpdus = channel::never(),
            },
            recv(timer) -> _ => {
                let now = Instant::now();
                c.chain_tick(now);
                for i in 0..c.s.links.len() {
                    if let Some(k) = c.s.links[i].kay.as_mut() {
                        k.handle_timeout(now);
                    }
                    c.drain_kay(i);
                    if let Some(m) = c.s.links[i].monitor.as_mut() {
                        m.handle_timeout(now);
                    }
                }
            },
            recv(probes) -> p => match p {
                Ok(p) => {
                    if let Some(m) = c.s.links.get_mut(p.link).and_then(|l| l.monitor.as_mut()) {
                        // Malformed probes are counted by the monitor.
                        let _ = m.on_probe(p.at, p.payload());
                    }
                }
                // No monitor: nobody sends probes.
                Err(_) => probes = channel::never(),
            },
            recv(lw_rx) -> ev => match ev {
                Ok(ev) => c.link_event(ev),
                Err(_) => lw_rx = channel::never(),
            },
            recv(requests) -> q => match q {
                Ok(q) => {
                    let answer = c.answer(q.cmd);
                    // The asker waits at most a while; never block the loop on it.
                    let _ = q.reply.try_send(answer);
                }
                // No control socket and no metrics endpoint.
                Err(_) => requests = channel::never(),
            },
            recv(pn_tick) -> _ => {
                if let Some(r) = c.fresh_report(Duration::ZERO) {
                    c.track_valid(&r);
                    let now = Instant::now();
                    for i in 0..c.s.links.len() {
                        if let (Some(k), Some((t, _)), Some((x, _))) =
                            (c.s.links[i].kay.as_mut(), r.tx.get(i), r.rx.get(i))
                        {
                            k.report_pns(t, x);
                        }
                        c.drain_kay(i);
                        if let Some((x, _)) = r.rx.get(i) {
                            let l = &mut c.s.links[i];
                            for w in l.mismatch.observe(now, x) {
                                c.events.push(EventKind::KeyMismatchSuspected, Some(&l.cfg.name), w);
                            }
                        }
                    }
                }
            },
            recv(signals) -> sig => match sig {
                Ok(signal_hook::consts::SIGHUP) => {
                    if let Err(e) = c.reload("SIGHUP") {
                        tracing::error!("SIGHUP: {e}; the key chain stays as it was");
                    }
                    c.rekey("SIGHUP");
                }
                Ok(signal_hook::consts::SIGUSR1) => c.print_stats("stats"),
                Ok(_) | Err(_) => break,
            },
            recv(c.s.up) -> m => match m {
                Ok(up) => {
                    if let Err(e) = c.up(up) {
                        failure = Some(e);
                        break;
                    }
                }
                Err(_) => {
                    failure = Some("a data-plane thread exited".into());
                    break;
                }
            },
            recv(ticker) -> _ => c.print_stats("stats"),
            recv(reopen_tick) -> _ => {
                if let Err(e) = c.reopen_ports() {
                    failure = Some(e);
                    break;
                }
            },
        }
        c.service(Instant::now());
    }
    let Control {
        s,
        started_at,
        failovers,
        port_reopens,
        ..
    } = c;
    let Started {
        plain,
        mut links,
        workers,
        selector,
        cipher,
        key_source,
        locks,
        ..
    } = s;
    let r = workers.stop();
    let info = report::Context {
        plain: &plain,
        links: &links,
        selector: &selector,
        cipher,
        key_source,
        uptime: started_at.elapsed(),
        failovers,
        port_reopens,
        threads: None,
        chain: s.chain.as_ref(),
    };
    println!("{}", report::json("exit", &r, &info));
    for l in &mut links {
        if let Some(k) = l.kay.take() {
            k.stop();
        }
    }
    // The ports and keys are free for another forwarder only now.
    drop(locks);
    match failure {
        Some(f) => Err(ForwardError::Runtime(f)),
        None => Ok(()),
    }
}

impl Control {
    /// The earliest time something must be looked at again.
    fn deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = self.s.selector.poll_timeout();
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                d = Some(d.map_or(t, |x| x.min(t)));
            }
        };
        if let Some(ch) = self.s.chain.as_ref() {
            take(ch.deadline(Instant::now()));
        }
        for l in &self.s.links {
            take(l.kay.as_ref().and_then(|k| k.poll_timeout()));
            take(l.monitor.as_ref().and_then(|m| m.poll_timeout()));
        }
        d
    }

    /// Applies link `i`'s KaY actions and passes on what changed.
    fn drain_kay(&mut self, i: usize) {
        let (Some(l), Some(ch)) = (self.s.links.get_mut(i), self.s.chain.as_ref()) else {
            return;
        };
        let Some(k) = l.kay.as_mut() else {
            return;
        };
        let changes = k.drain(&self.s.workers, &ch.chain, ch.now(), Instant::now());
        self.kay_changed(i, changes);
    }

    /// Starts and stops each link's participants as the key chain says now.
    fn chain_tick(&mut self, now: Instant) {
        let Some(ch) = self.s.chain.as_mut() else {
            return;
        };
        ch.check_expiry();
        let t = ch.now();
        for i in 0..self.s.links.len() {
            let (Some(ch), Some(k)) = (self.s.chain.as_ref(), self.s.links[i].kay.as_mut()) else {
                continue;
            };
            let changes = k.update_chain(&ch.chain, t, now, &self.s.workers);
            self.kay_changed(i, changes);
            self.drain_kay(i);
        }
    }

    /// Re-reads the key chain (SIGHUP, the control socket's `reload`).
    fn reload(&mut self, why: &str) -> Result<String, String> {
        let Some(ch) = self.s.chain.as_mut() else {
            return Err("static keys: change them with a restart".into());
        };
        let msg = ch.reload(&self.config)?;
        tracing::info!("{why}: {msg}");
        self.chain_tick(Instant::now());
        for i in 0..self.s.links.len() {
            self.apply_policy(i);
        }
        Ok(msg)
    }

    /// Passes on what a link's KaY changed: secured state, rekeys, key switches.
    fn kay_changed(&mut self, i: usize, c: Changes) {
        let Changes {
            secured,
            new_key,
            key_switch,
        } = c;
        let Some(l) = self.s.links.get_mut(i) else {
            return;
        };
        if let Some(s) = secured {
            l.secured = s;
            if let Some(m) = l.monitor.as_mut() {
                m.set_secured(Instant::now(), s || l.unprotected);
            }
            let (kind, msg) = if s {
                (EventKind::Secured, "MKA secured the link")
            } else {
                (
                    EventKind::Unsecured,
                    "MKA lost the link's keys; its frames are dropped",
                )
            };
            self.events.push(kind, Some(&l.cfg.name), msg);
        }
        if let Some(msg) = key_switch {
            self.events
                .push(EventKind::KeySwitch, Some(&l.cfg.name), msg);
        }
        if let Some((an, kn)) = new_key {
            if l.kay.as_ref().is_some_and(|k| k.keys_installed > 1) {
                self.events.push(
                    EventKind::Rekey,
                    Some(&l.cfg.name),
                    format!("new SAK installed for transmission: AN {an}, KN {kn}"),
                );
            }
        }
        if secured.is_some() {
            self.apply_policy(i);
        }
    }

    /// `[mka] policy = "should-secure"`: while link `i` is not secured its frames pass
    /// unprotected both ways (802.1AE protectFrames off, validateFrames Check: counted
    /// as OutPktsUntagged and InPktsUntagged); once secured, only protected frames.
    fn apply_policy(&mut self, i: usize) {
        let should = self
            .s
            .chain
            .as_ref()
            .is_some_and(|c| c.policy == Policy::ShouldSecure);
        let validate = self.s.validate;
        let Some(l) = self.s.links.get_mut(i) else {
            return;
        };
        let bypass = should && l.kay.is_some() && !l.secured;
        if bypass == l.unprotected {
            return;
        }
        l.unprotected = bypass;
        let w = &self.s.workers;
        w.tx(i, TxOp::SetProtectFrames(!bypass));
        let v = match (bypass, validate) {
            (true, ValidateFrames::Disabled) => ValidateFrames::Disabled,
            (true, _) => ValidateFrames::Check,
            (false, v) => v,
        };
        w.rx(i, RxOp::SetValidateFrames(v));
        w.sync();
        if let Some(m) = l.monitor.as_mut() {
            m.set_secured(Instant::now(), l.secured || bypass);
        }
        let name = l.cfg.name.clone();
        if bypass {
            self.events.push(
                EventKind::Unprotected,
                Some(&name),
                "not secured: frames pass unprotected both ways (policy should-secure; counted as OutPktsUntagged and InPktsUntagged)",
            );
        } else {
            self.events.push(
                EventKind::Protected,
                Some(&name),
                "secured: only protected frames pass again (policy should-secure)",
            );
        }
    }

    /// Probes due, monitor events, and the selector's decision.
    fn service(&mut self, now: Instant) {
        if !self.s.monitored {
            return;
        }
        for (i, l) in self.s.links.iter_mut().enumerate() {
            let Some(m) = l.monitor.as_mut() else {
                continue;
            };
            while let Some(p) = m.poll_transmit(now) {
                self.s.workers.probe(i, p.encode());
            }
            while let Some(ev) = m.poll_event() {
                let kind = match ev.new {
                    State::Up => EventKind::LinkUp,
                    State::Degraded => EventKind::LinkDegraded,
                    State::Down => EventKind::LinkDown,
                };
                self.events.push(kind, Some(&l.cfg.name), ev.to_string());
            }
            self.s.selector.set_link(i, LinkView::of(m));
        }
        if self.s.selector.update(now) {
            self.s.workers.set_path(self.s.selector.path());
        }
        while let Some(f) = self.s.selector.poll_event() {
            self.failovers += 1;
            for i in f.from.minus(f.to).iter() {
                if let Some(l) = self.s.links.get_mut(i) {
                    l.failovers += 1;
                }
            }
            let names = |set: crate::monitor::select::LinkSet| {
                let v: Vec<&str> = set
                    .iter()
                    .filter_map(|i| self.s.links.get(i).map(|l| l.cfg.name.as_str()))
                    .collect();
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(",")
                }
            };
            let msg = format!(
                "traffic moves from {} to {} ({})",
                names(f.from),
                names(f.to),
                f.reason
            );
            let msg = if f.to.is_empty() {
                format!("failover: {msg}: no link can carry traffic; frames are dropped")
            } else {
                format!("failover: {msg}")
            };
            self.events.push(EventKind::Failover, None, msg);
        }
    }

    /// The name and role of a port (`None`: plain).
    fn port_name(&self, link: Option<usize>) -> (String, &'static str) {
        match link {
            None => (self.s.plain.clone(), "plain"),
            Some(k) => (
                self.s
                    .links
                    .get(k)
                    .map_or_else(String::new, |l| l.ifname.clone()),
                "secure",
            ),
        }
    }

    /// A port's interface is gone: wait for it to come back.
    fn port_gone(&mut self, link: Option<usize>) {
        if self.gone.iter().any(|(l, _)| *l == link) {
            return;
        }
        let (name, role) = self.port_name(link);
        tracing::warn!(
            "{role} port {name} is gone (interface deleted); nothing is forwarded through it until it is back (waiting up to {} s, then exit 1)",
            self.s.fwd.port_timeout.as_secs()
        );
        self.gone.push((link, Instant::now()));
        if let Some(l) = link.and_then(|k| self.s.links.get_mut(k)) {
            l.carrier = false;
            if let Some(m) = l.monitor.as_mut() {
                m.set_carrier(Instant::now(), false);
            }
        }
    }

    /// Opens gone ports whose interface is back, with the start-up checks; fails once
    /// one has been gone longer than `port_timeout`.
    fn reopen_ports(&mut self) -> Result<(), String> {
        let gone = std::mem::take(&mut self.gone);
        for (link, since) in gone {
            match self.reopen(link) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::debug!("re-opening a port: {e}"),
            }
            if since.elapsed() > self.s.fwd.port_timeout {
                let (name, role) = self.port_name(link);
                return Err(format!(
                    "{role} port {name} has been gone for {} s; exiting so that a supervisor can restart the forwarder",
                    since.elapsed().as_secs()
                ));
            }
            self.gone.push((link, since));
        }
        Ok(())
    }

    /// Opens one port again if its interface exists. Returns whether it did.
    fn reopen(&mut self, link: Option<usize>) -> Result<bool, String> {
        use crate::io::afpacket::{AfPacketRx, AfPacketTx};
        use crate::io::iface::Interface;
        let (name, role) = self.port_name(link);
        let Ok(mut i) = Interface::lookup(&name) else {
            return Ok(false);
        };
        let e = |e: &dyn std::fmt::Display| format!("{role} port {name}: {e}");
        super::startup::fix_port(&mut i, role).map_err(|x| e(&x))?;
        let plain = Interface::lookup(&self.s.plain).map_err(|x| e(&x))?;
        let rx = match link {
            None => AfPacketRx::open(&i, &super::startup::rx_config(i.mtu, true)),
            Some(_) => {
                super::startup::fit_mtu(&mut i, &plain, self.s.overhead).map_err(|x| e(&x))?;
                AfPacketRx::open(&i, &super::startup::rx_config(i.mtu, false))
            }
        }
        .map_err(|x| e(&x))?;
        let tx = AfPacketTx::open(&i, &super::startup::tx_config(&i, self.s.fwd.qdisc_bypass))
            .map_err(|x| e(&x))?;
        if let Some(k) = link {
            if let (Some(l), Some((ethertype, vlan, dest))) =
                (self.s.links.get_mut(k), self.s.kay_sock)
            {
                if let Some(kay) = l.kay.as_mut() {
                    let sock = crate::io::control::ControlSocket::open_for_kay(&i, ethertype, vlan)
                        .map_err(|x| e(&x))?;
                    sock.join_multicast(dest).map_err(|x| e(&x))?;
                    kay.reopen(sock, self.s.mkpdu_tx.clone());
                }
                l.carrier = i.is_running();
                if let Some(m) = l.monitor.as_mut() {
                    m.set_carrier(Instant::now(), l.carrier);
                }
            }
        }
        self.s.workers.replace_port(link, rx, tx);
        self.port_reopens += 1;
        tracing::info!(
            "{role} port {name} is up again (interface index {}); forwarding through it again",
            i.index
        );
        Ok(true)
    }

    /// An interface event: carrier of a secure port, or a port's interface deleted.
    fn link_event(&mut self, ev: LinkEvent) {
        let now = Instant::now();
        if let LinkEvent::Deleted { ifname, .. } = &ev {
            if *ifname == self.s.plain {
                self.port_gone(None);
            }
            if let Some(k) = self.s.links.iter().position(|l| l.ifname == *ifname) {
                self.port_gone(Some(k));
            }
            return;
        }
        for l in &mut self.s.links {
            if l.ifname != ev.ifname() {
                continue;
            }
            let carrier = matches!(ev, LinkEvent::Changed { carrier: true, .. });
            if carrier != l.carrier {
                l.carrier = carrier;
                if carrier {
                    tracing::info!(
                        "link {}: secure port {} has carrier again",
                        l.cfg.name,
                        l.ifname
                    );
                } else {
                    tracing::warn!("link {}: secure port {} lost carrier", l.cfg.name, l.ifname);
                }
                if let Some(m) = l.monitor.as_mut() {
                    m.set_carrier(now, carrier);
                }
            }
        }
    }

    /// A message from the data plane. An error stops the forwarder.
    fn up(&mut self, up: Up) -> Result<(), String> {
        match up {
            Up::PnReserve { link, an, ceiling } => {
                let Some(id) = self.s.links.get(link).and_then(|l| l.ids[an as usize & 3]) else {
                    return Ok(());
                };
                let ceiling = ceiling.min(self.s.cipher.max_pn());
                // If this fails the SA stops at its current ceiling, so no PN is ever
                // unrecorded.
                if let Some(st) = self.s.store.as_mut() {
                    st.set(id, ceiling).map_err(|e| e.to_string())?;
                }
                self.s.workers.tx(link, TxOp::RaiseCeiling { an, ceiling });
            }
            Up::Event(link, ev) => {
                let name = self
                    .s
                    .links
                    .get(link)
                    .map_or("?", |l| l.cfg.name.as_str())
                    .to_owned();
                match ev {
                    TxEvent::PnThreshold { an, next_pn } => {
                        match self.s.links.get_mut(link).and_then(|l| l.kay.as_mut()) {
                            Some(k) => {
                                // Tell the KaY now rather than at the next report.
                                k.report_tx_pn(an, next_pn);
                                self.drain_kay(link);
                            }
                            None => tracing::warn!("link {name}: transmit SA {an} passed the rekey threshold (next PN {next_pn:#x}); configure a new key (static keys do not rekey)"),
                        }
                    }
                    TxEvent::PnExhausted { an } => tracing::error!(
                        "link {name}: transmit SA {an} used its last PN and stopped; configure a new key"
                    ),
                    TxEvent::PnCeiling { an, next_pn } => tracing::warn!(
                        "link {name}: transmit SA {an} waits for its PN reservation (next PN {next_pn:#x}); frames are being dropped"
                    ),
                    other => tracing::debug!("link {name}: transmit event {other:?}"),
                }
            }
            Up::PortGone(link) => self.port_gone(link),
            Up::Failed(which, e) => return Err(format!("{which} thread: {e}")),
        }
        Ok(())
    }

    /// Asks every link's key server for a fresh SAK.
    fn rekey(&mut self, why: &str) {
        let mut any = false;
        for i in 0..self.s.links.len() {
            let l = &mut self.s.links[i];
            if let Some(k) = l.kay.as_mut() {
                any = true;
                let ok = k.request_rekey();
                tracing::info!(
                    "{why}: link {}: {}",
                    l.cfg.name,
                    if ok {
                        "distributing a new SAK"
                    } else {
                        "rekey refused (not the key server, or a rekey is in progress)"
                    }
                );
                self.drain_kay(i);
            }
        }
        if !any {
            tracing::info!("{why} ignored: static keys do not rekey");
        }
    }

    fn print_stats(&mut self, event: &str) {
        if let Some(r) = self.fresh_report(Duration::ZERO) {
            println!("{}", report::json(event, &r, &self.context()));
        }
    }

    /// A counter snapshot no older than `age` (a new one from the data plane otherwise).
    fn fresh_report(&mut self, age: Duration) -> Option<Report> {
        if let Some((t, r)) = &self.report {
            if t.elapsed() <= age {
                return Some(r.clone());
            }
        }
        let r = self.s.workers.report()?;
        self.report = Some((Instant::now(), r.clone()));
        Some(r)
    }

    /// Remembers when each peer's InPktsOK last grew (the status's static peers).
    fn track_valid(&mut self, r: &Report) {
        let now = Instant::now();
        for (i, (x, _)) in r.rx.iter().enumerate() {
            let Some(m) = self.last_valid.get_mut(i) else {
                continue;
            };
            for sc in &x.rx_sc {
                let ok = sc.counters.in_pkts_ok;
                let e = m.entry(sc.sci.clone()).or_insert((ok, now));
                if ok > e.0 || (ok > 0 && e.0 == 0) {
                    *e = (ok, now);
                }
            }
        }
    }

    /// The answer to a control-socket or metrics request.
    fn answer(&mut self, cmd: Command) -> String {
        match cmd {
            Command::Status => match self.fresh_report(REPORT_REUSE) {
                Some(r) => {
                    self.track_valid(&r);
                    let last_valid: Vec<Vec<(String, f64)>> = self
                        .last_valid
                        .iter()
                        .map(|m| {
                            m.iter()
                                .filter(|(_, (ok, _))| *ok > 0)
                                .map(|(sci, (_, t))| (sci.clone(), t.elapsed().as_secs_f64()))
                                .collect()
                        })
                        .collect();
                    let sc = report::StatusContext {
                        name: &self.name,
                        config: &self.config,
                        last_valid: &last_valid,
                    };
                    report::status(&r, &self.context(), &sc)
                }
                None => crate::control::answer_error("the data plane did not answer"),
            },
            Command::Counters => match self.fresh_report(Duration::ZERO) {
                Some(r) => report::json("stats", &r, &self.context()),
                None => crate::control::answer_error("the data plane did not answer"),
            },
            Command::Events => self.events.to_json(),
            Command::Rekey => {
                self.rekey("control socket");
                crate::control::answer_ok("rekey requested (see the log for each link)")
            }
            Command::Reload => match self.reload("control socket") {
                Ok(msg) => {
                    self.rekey("control socket");
                    crate::control::answer_ok(&msg)
                }
                Err(e) => crate::control::answer_error(&format!(
                    "reload: {e}; the key chain stays as it was"
                )),
            },
        }
    }

    fn context(&self) -> report::Context<'_> {
        report::Context {
            plain: &self.s.plain,
            links: &self.s.links,
            selector: &self.s.selector,
            cipher: self.s.cipher,
            key_source: self.s.key_source,
            uptime: self.started_at.elapsed(),
            failovers: self.failovers,
            port_reopens: self.port_reopens,
            threads: Some(self.s.workers.mode()),
            chain: self.s.chain.as_ref(),
        }
    }
}

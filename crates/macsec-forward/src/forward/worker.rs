//! The data-plane threads: the protect and validate pumps of every link, run either on
//! a thread each (two-thread mode) or together on one thread that polls every ring
//! (one-thread mode, fewer wake-ups where cores are few). The control thread talks to
//! them only through messages ([`Ctl`]) and a [`Waker`]; they answer with [`Up`]
//! messages and counter snapshots. No lock is shared with the pumps.

use super::pump::{ProtectPump, PumpCounters, ValidatePump};
use crate::io::afpacket::{AfPacketRx, AfPacketTx};
use crate::io::{wait_readable_raw, Waker, POLLERR};
use crate::monitor::select::Path;
use crossbeam::channel::{self, Receiver, Sender};
use macsec::crypto::{CipherSuite, SecretKey};
use macsec::secy::{Protection, RxStats, TxEvent, TxStats, ValidateFrames, XpnParams};
use macsec::wire::Sci;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a data-plane thread sleeps when no ring has frames (it is woken at once for
/// control messages, so this only paces its housekeeping).
const IDLE: Duration = Duration::from_millis(100);
/// How soon a data-plane thread with nothing to receive looks again when a transmit ring
/// still holds frames the kernel could not take (its send buffer was full): flushes
/// never wait, so the thread comes back for them.
const BACKLOG_RETRY: Duration = Duration::from_millis(1);
/// How often the kernel's ring drop counters and port state are read.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// A change to a link's transmit SecY.
pub(crate) enum TxOp {
    /// The PN store now covers PNs up to `ceiling` for SA `an`.
    RaiseCeiling { an: u8, ceiling: u64 },
    /// Install a transmit SA (MKA).
    InstallSa {
        an: u8,
        key: SecretKey,
        next_pn: u64,
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
    /// protectFrames: off sends frames unprotected (should-secure, no CA secured).
    SetProtectFrames(bool),
}

/// A change to a link's receive SecY.
pub(crate) enum RxOp {
    /// Add a receive SC.
    AddSc(Sci),
    /// Remove a receive SC.
    RemoveSc(Sci),
    /// Install a receive SA.
    InstallSa {
        sci: Sci,
        an: u8,
        key: SecretKey,
        lowest_pn: u64,
        xpn: Option<XpnParams>,
    },
    /// Remove a receive SA.
    RemoveSa { sci: Sci, an: u8 },
    /// Change the confidentiality offset assumed for received frames.
    SetProtection(Protection),
    /// Change the cipher suite (drops every SA).
    SetCipher(CipherSuite),
    /// validateFrames (Check while should-secure lets unprotected frames pass).
    SetValidateFrames(ValidateFrames),
}

/// Messages to a data-plane thread.
pub(crate) enum Ctl {
    /// Finish the current batch and return.
    Stop,
    /// Change link `.0`'s transmit SecY.
    Tx(usize, TxOp),
    /// Change link `.0`'s receive SecY.
    Rx(usize, RxOp),
    /// The links frames leave on.
    SetPath(Path),
    /// Send a probe with this payload on a link.
    Probe {
        link: usize,
        payload: [u8; crate::monitor::probe::LEN],
    },
    /// The plain port was made anew: its new receive ring (protect side) or transmit
    /// ring (validate side).
    ReplacePlain(Option<AfPacketRx>, Option<AfPacketTx>),
    /// Link `.0`'s secure port was made anew: its new receive ring (validate side) or
    /// transmit ring (protect side).
    ReplaceSecure(usize, Option<AfPacketRx>, Option<AfPacketTx>),
    /// Send a counter snapshot.
    Report(Sender<Part>),
    /// Reply once every earlier message is applied.
    Sync(Sender<()>),
}

/// Messages from the data-plane threads to the control thread.
pub(crate) enum Up {
    /// Link `link` wants PNs up to `ceiling` reserved for SA `an`.
    PnReserve { link: usize, an: u8, ceiling: u64 },
    /// An event of link `.0`'s transmit SecY.
    Event(usize, TxEvent),
    /// A port's interface is gone (deleted, or moved to another namespace): `None` is
    /// the plain port, `Some(k)` link k's secure port. It is no longer read.
    PortGone(Option<usize>),
    /// A data-plane thread stopped on an error.
    Failed(&'static str, String),
}

/// Whether a port's socket error means its interface is gone for good.
fn is_gone(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENODEV) | Some(libc::ENXIO))
}

/// What one side reports.
pub(crate) enum Part {
    Protect(PumpCounters, Vec<(TxStats, PumpCounters)>),
    Validate(PumpCounters, Vec<(RxStats, PumpCounters)>),
}

/// A counter snapshot of the whole data plane.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Plain -> secure, plain side (frames in, segmentation, no link, ...).
    pub protect_plain: PumpCounters,
    /// Secure -> plain, plain side (frames delivered, ring full, ...).
    pub validate_plain: PumpCounters,
    /// Per link: transmit SecY counters and the protect pump's link counters.
    pub tx: Vec<(TxStats, PumpCounters)>,
    /// Per link: receive SecY counters and the validate pump's link counters.
    pub rx: Vec<(RxStats, PumpCounters)>,
}

impl Report {
    fn merge(&mut self, p: Part) {
        match p {
            Part::Protect(plain, links) => {
                self.protect_plain = plain;
                self.tx = links;
            }
            Part::Validate(plain, links) => {
                self.validate_plain = plain;
                self.rx = links;
            }
        }
    }

    /// Every counter of the plain -> secure direction, summed.
    pub fn protect_total(&self) -> PumpCounters {
        let mut c = self.protect_plain;
        self.tx.iter().for_each(|(_, p)| c.add(p));
        c
    }

    /// Every counter of the secure -> plain direction, summed.
    pub fn validate_total(&self) -> PumpCounters {
        let mut c = self.validate_plain;
        self.rx.iter().for_each(|(_, p)| c.add(p));
        c
    }
}

/// The plain -> secure side with its PN reservation state (static keys).
pub(crate) struct ProtectSide {
    pub(crate) pump: ProtectPump<AfPacketRx, AfPacketTx>,
    /// The plain port's interface is gone: its ring is not read until replaced.
    plain_gone: bool,
    /// Per link and AN: the PN the store covers (static keys; `None` for MKA SAs).
    pub(crate) ceilings: Vec<[Option<u64>; 4]>,
    asked: Vec<[u64; 4]>,
    pn_block: u64,
}

impl ProtectSide {
    /// The protect side of `pump`, reserving PNs in blocks of `pn_block`.
    pub(crate) fn new(pump: ProtectPump<AfPacketRx, AfPacketTx>, pn_block: u64) -> ProtectSide {
        let n = pump.links().len();
        ProtectSide {
            pump,
            plain_gone: false,
            ceilings: vec![[None; 4]; n],
            asked: vec![[0; 4]; n],
            pn_block,
        }
    }

    /// SecY events, and a PN reservation request while half of the current block is left.
    fn after_batch(&mut self, up: &Sender<Up>) {
        for i in 0..self.pump.links().len() {
            let Some(l) = self.pump.link_mut(i) else {
                continue;
            };
            let secy = l.secy_mut();
            while let Some(ev) = secy.poll_event() {
                let _ = up.send(Up::Event(i, ev));
            }
            let an = secy.encoding_sa() as usize;
            if let (Some(ceil), Ok(Some(next))) = (self.ceilings[i][an], secy.next_pn(an as u8)) {
                let half = self.pn_block / 2 + 1;
                if ceil.saturating_sub(next) < half && self.asked[i][an] <= ceil {
                    let want = ceil.saturating_add(self.pn_block);
                    self.asked[i][an] = want;
                    let _ = up.send(Up::PnReserve {
                        link: i,
                        an: an as u8,
                        ceiling: want,
                    });
                }
            }
        }
    }

    fn housekeeping(&mut self) {
        let rx = self.pump.rx_mut();
        let drops = rx.kernel_stats().map(|k| k.drops as u64).unwrap_or(0);
        let down = rx.stats().link_down;
        let name = rx.ifname().to_owned();
        let c = self.pump.plain_counters_mut();
        c.kernel_drops += drops;
        note_link_down(c, down, "plain", &name);
    }

    fn apply(&mut self, link: usize, op: TxOp) {
        let Some(l) = self.pump.link_mut(link) else {
            return;
        };
        let secy = l.secy_mut();
        match op {
            TxOp::RaiseCeiling { an, ceiling } => {
                self.ceilings[link][an as usize & 3] = Some(ceiling);
                let _ = secy.set_pn_ceiling(an, ceiling);
            }
            TxOp::InstallSa {
                an,
                key,
                next_pn,
                xpn,
            } => {
                self.ceilings[link][an as usize & 3] = None;
                if let Err(e) = secy.install_sa(an, &key, next_pn, xpn) {
                    tracing::error!("link {link}: install transmit SA {an}: {e}");
                }
            }
            TxOp::EnableSa(an) => {
                if let Err(e) = secy.enable_sa(an) {
                    tracing::error!("link {link}: enable transmit SA {an}: {e}");
                }
            }
            TxOp::RemoveSa(an) => {
                let _ = secy.remove_sa(an);
            }
            TxOp::SetProtection(p) => secy.set_protection(p),
            TxOp::SetCipher(c) => {
                self.ceilings[link] = [None; 4];
                secy.set_cipher(c);
            }
            TxOp::SetProtectFrames(on) => secy.set_protect_frames(on),
        }
    }

    fn report(&self) -> Part {
        Part::Protect(
            *self.pump.plain_counters(),
            self.pump
                .links()
                .iter()
                .map(|l| (l.secy().stats(), *l.counters()))
                .collect(),
        )
    }
}

/// The secure -> plain side.
pub(crate) struct ValidateSide {
    pub(crate) pump: ValidatePump<AfPacketRx, AfPacketTx>,
    /// Per link: its secure port's interface is gone, its ring is not read.
    gone: Vec<bool>,
}

impl ValidateSide {
    /// The validate side of `pump`.
    pub(crate) fn new(pump: ValidatePump<AfPacketRx, AfPacketTx>) -> ValidateSide {
        let n = pump.links().len();
        ValidateSide {
            pump,
            gone: vec![false; n],
        }
    }

    /// Validates what every readable link has, delivers it, and flushes.
    fn step(&mut self) -> std::io::Result<usize> {
        let mut n = 0;
        for i in 0..self.pump.links().len() {
            if !self.gone[i] {
                n += self.pump.run_link(i, Duration::ZERO)?;
            }
        }
        self.pump.flush();
        Ok(n)
    }
}

impl ValidateSide {
    fn housekeeping(&mut self) {
        for i in 0..self.pump.links().len() {
            let Some(l) = self.pump.link_mut(i) else {
                continue;
            };
            let drops = l
                .port_mut()
                .kernel_stats()
                .map(|k| k.drops as u64)
                .unwrap_or(0);
            let down = l.port().stats().link_down;
            let name = l.port().ifname().to_owned();
            // Frames the ring could not take: 802.1AE's InPktsOverrun.
            l.secy_mut().count_overrun(drops);
            let c = l.counters_mut();
            c.kernel_drops += drops;
            note_link_down(c, down, "secure", &name);
        }
    }

    fn apply(&mut self, link: usize, op: RxOp) {
        let Some(l) = self.pump.link_mut(link) else {
            return;
        };
        let secy = l.secy_mut();
        match op {
            RxOp::AddSc(sci) => {
                let _ = secy.add_sc(sci);
            }
            RxOp::RemoveSc(sci) => {
                let _ = secy.remove_sc(sci);
            }
            RxOp::InstallSa {
                sci,
                an,
                key,
                lowest_pn,
                xpn,
            } => {
                if let Err(e) = secy.install_sa(sci, an, &key, lowest_pn, xpn) {
                    tracing::error!("link {link}: install receive SA {sci} AN {an}: {e}");
                }
            }
            RxOp::RemoveSa { sci, an } => {
                let _ = secy.remove_sa(sci, an);
            }
            RxOp::SetProtection(p) => secy.set_protection(p),
            RxOp::SetCipher(c) => secy.set_cipher(c),
            RxOp::SetValidateFrames(v) => secy.set_validate_frames(v),
        }
    }

    fn report(&self) -> Part {
        Part::Validate(
            *self.pump.plain_counters(),
            self.pump
                .links()
                .iter()
                .map(|l| (l.secy().stats(), *l.counters()))
                .collect(),
        )
    }
}

/// Logs a receive port that went down since the last look, and counts it.
fn note_link_down(c: &mut PumpCounters, seen: u64, role: &str, ifname: &str) {
    if seen > c.link_down {
        tracing::warn!(
            "{role} port {ifname} went down; its frames are dropped until it is up again, then forwarding resumes"
        );
        c.link_down = seen;
    }
}

/// How the data plane is spread over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThreadMode {
    /// One thread per direction.
    #[default]
    TwoThreads,
    /// One thread serves both directions, polling every ring.
    OneThread,
}

impl ThreadMode {
    /// The mode for `auto`: one thread where the machine has fewer than 4 cores, where
    /// two busy threads compete with the traffic's own senders and receivers.
    pub fn auto() -> ThreadMode {
        match std::thread::available_parallelism() {
            Ok(n) if n.get() >= 4 => ThreadMode::TwoThreads,
            _ => ThreadMode::OneThread,
        }
    }

    /// The config spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            ThreadMode::TwoThreads => "two",
            ThreadMode::OneThread => "one",
        }
    }
}

/// One data-plane thread's inbox.
struct Inbox {
    ctl: Sender<Ctl>,
    waker: Arc<Waker>,
}

impl Inbox {
    fn send(&self, m: Ctl) -> bool {
        let ok = self.ctl.send(m).is_ok();
        self.waker.wake();
        ok
    }
}

/// The control thread's handle on the data-plane threads.
pub(crate) struct Workers {
    /// Where transmit-side messages go, and where receive-side ones go (the same
    /// thread in one-thread mode).
    protect: Inbox,
    validate: Option<Inbox>,
    joins: Vec<std::thread::JoinHandle<Vec<Part>>>,
    mode: ThreadMode,
}

impl Workers {
    /// Starts the data plane in `mode`. `up` receives events and failures.
    pub(crate) fn spawn(
        protect: ProtectSide,
        validate: ValidateSide,
        mode: ThreadMode,
        up: Sender<Up>,
    ) -> std::io::Result<Workers> {
        let mut joins = Vec::new();
        let (pc, pr) = channel::unbounded();
        let pw = Arc::new(Waker::new()?);
        let validate_inbox = match mode {
            ThreadMode::OneThread => {
                let (w, u) = (pw.clone(), up);
                joins.push(
                    std::thread::Builder::new()
                        .name("dataplane".into())
                        .spawn(move || run(Some(protect), Some(validate), pr, w, u))?,
                );
                None
            }
            ThreadMode::TwoThreads => {
                let (w, u) = (pw.clone(), up.clone());
                joins.push(
                    std::thread::Builder::new()
                        .name("plain->secure".into())
                        .spawn(move || run(Some(protect), None, pr, w, u))?,
                );
                let (vc, vr) = channel::unbounded();
                let vw = Arc::new(Waker::new()?);
                let w = vw.clone();
                joins.push(
                    std::thread::Builder::new()
                        .name("secure->plain".into())
                        .spawn(move || run(None, Some(validate), vr, w, up))?,
                );
                Some(Inbox { ctl: vc, waker: vw })
            }
        };
        Ok(Workers {
            protect: Inbox { ctl: pc, waker: pw },
            validate: validate_inbox,
            joins,
            mode,
        })
    }

    /// The thread mode.
    pub(crate) fn mode(&self) -> ThreadMode {
        self.mode
    }

    fn validate_inbox(&self) -> &Inbox {
        self.validate.as_ref().unwrap_or(&self.protect)
    }

    fn inboxes(&self) -> impl Iterator<Item = &Inbox> {
        std::iter::once(&self.protect).chain(self.validate.as_ref())
    }

    /// Changes link `link`'s transmit SecY.
    pub(crate) fn tx(&self, link: usize, op: TxOp) {
        self.protect.send(Ctl::Tx(link, op));
    }

    /// Changes link `link`'s receive SecY.
    pub(crate) fn rx(&self, link: usize, op: RxOp) {
        self.validate_inbox().send(Ctl::Rx(link, op));
    }

    /// Sets the links frames leave on.
    pub(crate) fn set_path(&self, path: Path) {
        self.protect.send(Ctl::SetPath(path));
    }

    /// Hands the data plane the rings of a port made anew (`link` `None`: the plain
    /// port).
    pub(crate) fn replace_port(&self, link: Option<usize>, rx: AfPacketRx, tx: AfPacketTx) {
        match (link, &self.validate) {
            (None, Some(v)) => {
                self.protect.send(Ctl::ReplacePlain(Some(rx), None));
                v.send(Ctl::ReplacePlain(None, Some(tx)));
            }
            (None, None) => {
                self.protect.send(Ctl::ReplacePlain(Some(rx), Some(tx)));
            }
            (Some(k), Some(v)) => {
                self.protect.send(Ctl::ReplaceSecure(k, None, Some(tx)));
                v.send(Ctl::ReplaceSecure(k, Some(rx), None));
            }
            (Some(k), None) => {
                self.protect.send(Ctl::ReplaceSecure(k, Some(rx), Some(tx)));
            }
        }
    }

    /// Sends a probe on link `link`.
    pub(crate) fn probe(&self, link: usize, payload: [u8; crate::monitor::probe::LEN]) {
        self.protect.send(Ctl::Probe { link, payload });
    }

    /// Waits until every thread has applied every message sent so far.
    pub(crate) fn sync(&self) {
        let waits: Vec<_> = self
            .inboxes()
            .filter_map(|i| {
                let (s, r) = channel::bounded(1);
                i.send(Ctl::Sync(s)).then_some(r)
            })
            .collect();
        for r in waits {
            let _ = r.recv_timeout(Duration::from_secs(2));
        }
    }

    /// A counter snapshot of every link, or `None` if a thread does not answer.
    pub(crate) fn report(&self) -> Option<Report> {
        let (s, r) = channel::bounded(2);
        let mut want = 0;
        for i in self.inboxes() {
            if i.send(Ctl::Report(s.clone())) {
                want += 1;
            }
        }
        let mut rep = Report::default();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut got = 0;
        while got < want * if self.validate.is_none() { 2 } else { 1 } {
            let p = r.recv_deadline(deadline).ok()?;
            rep.merge(p);
            got += 1;
        }
        Some(rep)
    }

    /// Stops the threads and returns their final counters.
    pub(crate) fn stop(self) -> Report {
        for i in self.inboxes() {
            i.send(Ctl::Stop);
        }
        let mut rep = Report::default();
        for j in self.joins {
            if let Ok(parts) = j.join() {
                parts.into_iter().for_each(|p| rep.merge(p));
            }
        }
        rep
    }
}

/// One data-plane thread: runs the sides it owns until `Stop` or a port error, and
/// returns their final counters.
fn run(
    mut protect: Option<ProtectSide>,
    mut validate: Option<ValidateSide>,
    ctl: Receiver<Ctl>,
    waker: Arc<Waker>,
    up: Sender<Up>,
) -> Vec<Part> {
    let mut last_housekeeping = Instant::now();
    // The fds to wait on, rebuilt before each wait in a buffer kept across waits.
    let mut fds: Vec<RawFd> = Vec::with_capacity(72);
    'outer: loop {
        let mut busy = 0;
        if let Some(p) = protect.as_mut().filter(|p| !p.plain_gone) {
            match p.pump.run_batch(Duration::ZERO) {
                Ok(n) => busy += n,
                Err(e) => {
                    let _ = up.send(Up::Failed("plain->secure", e.to_string()));
                    break;
                }
            }
            p.after_batch(&up);
        }
        if let Some(v) = validate.as_mut() {
            match v.step() {
                Ok(n) => busy += n,
                Err(e) => {
                    let _ = up.send(Up::Failed("secure->plain", e.to_string()));
                    break;
                }
            }
        }
        if last_housekeeping.elapsed() >= HOUSEKEEPING {
            last_housekeeping = Instant::now();
            protect.iter_mut().for_each(ProtectSide::housekeeping);
            validate.iter_mut().for_each(ValidateSide::housekeeping);
        }
        if busy == 0 {
            // Reset before looking at the inbox: a message sent after the look wakes
            // the poll below.
            waker.reset();
        }
        let mut probes = false;
        while let Ok(m) = ctl.try_recv() {
            match m {
                Ctl::Stop => break 'outer,
                Ctl::Tx(link, op) => {
                    if let Some(p) = protect.as_mut() {
                        p.apply(link, op);
                    }
                }
                Ctl::Rx(link, op) => {
                    if let Some(v) = validate.as_mut() {
                        v.apply(link, op);
                    }
                }
                Ctl::SetPath(path) => {
                    if let Some(p) = protect.as_mut() {
                        p.pump.set_path(path);
                    }
                }
                Ctl::Probe { link, payload } => {
                    if let Some(p) = protect.as_mut() {
                        probes |= p.pump.send_probe(link, &payload);
                    }
                }
                Ctl::ReplacePlain(rx, tx) => {
                    if let (Some(p), Some(rx)) = (protect.as_mut(), rx) {
                        *p.pump.rx_mut() = rx;
                        p.plain_gone = false;
                    }
                    if let (Some(v), Some(tx)) = (validate.as_mut(), tx) {
                        *v.pump.tx_mut() = tx;
                    }
                }
                Ctl::ReplaceSecure(link, rx, tx) => {
                    if let (Some(p), Some(tx)) = (protect.as_mut(), tx) {
                        if let Some(l) = p.pump.link_mut(link) {
                            *l.port_mut() = tx;
                        }
                    }
                    if let (Some(v), Some(rx)) = (validate.as_mut(), rx) {
                        if let Some(l) = v.pump.link_mut(link) {
                            *l.port_mut() = rx;
                            v.gone[link] = false;
                        }
                    }
                }
                Ctl::Report(to) => {
                    if let Some(p) = protect.as_ref() {
                        let _ = to.send(p.report());
                    }
                    if let Some(v) = validate.as_ref() {
                        let _ = to.send(v.report());
                    }
                }
                Ctl::Sync(to) => {
                    let _ = to.send(());
                }
            }
            busy += 1;
        }
        if probes {
            if let Some(p) = protect.as_mut() {
                p.pump.flush();
            }
        }
        if busy == 0 {
            let backlog = protect.as_ref().is_some_and(|p| p.pump.backlog())
                || validate.as_ref().is_some_and(|v| v.pump.backlog());
            let timeout = if backlog { BACKLOG_RETRY } else { IDLE };
            let mut revents = [0i16; 72];
            fds.clear();
            fds.push(waker.as_fd().as_raw_fd());
            // A gone port stays in the set (its index in `revents` matters): once its
            // error is taken it reports nothing more.
            if let Some(p) = protect.as_ref() {
                fds.push(p.pump.rx().as_fd().as_raw_fd());
            }
            if let Some(v) = validate.as_ref() {
                fds.extend(v.pump.links().iter().map(|l| l.port().as_fd().as_raw_fd()));
            }
            if let Err(e) = wait_readable_raw(&fds, timeout, &mut revents) {
                let _ = up.send(Up::Failed("poll", e.to_string()));
                break;
            }
            // A port with a pending error (it went down) would wake every poll until
            // the error is taken.
            let mut k = 1;
            if let Some(p) = protect.as_mut() {
                if revents[k] & POLLERR != 0 && !p.plain_gone {
                    match p.pump.rx_mut().take_error() {
                        Ok(()) => {}
                        Err(e) if is_gone(&e) => {
                            p.plain_gone = true;
                            let _ = up.send(Up::PortGone(None));
                        }
                        Err(e) => {
                            let _ = up.send(Up::Failed("plain->secure", e.to_string()));
                            break;
                        }
                    }
                }
                k += 1;
            }
            if let Some(v) = validate.as_mut() {
                for i in 0..v.pump.links().len() {
                    if v.gone[i] || revents.get(k + i).is_none_or(|r| r & POLLERR == 0) {
                        continue;
                    }
                    if let Some(l) = v.pump.link_mut(i) {
                        match l.port_mut().take_error() {
                            Ok(()) => {}
                            Err(e) if is_gone(&e) => {
                                v.gone[i] = true;
                                let _ = up.send(Up::PortGone(Some(i)));
                            }
                            Err(e) => {
                                let _ = up.send(Up::Failed("secure->plain", e.to_string()));
                                break 'outer;
                            }
                        }
                    }
                }
            }
        }
    }
    let mut parts = Vec::new();
    if let Some(mut p) = protect {
        p.housekeeping();
        parts.push(p.report());
    }
    if let Some(mut v) = validate {
        v.housekeeping();
        parts.push(v.report());
    }
    parts
}

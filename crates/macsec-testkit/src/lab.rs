//! A lab: the namespace topology of [`crate::topology`] with a `macsec forward` process
//! in each middle namespace, fresh random keys, and the measurements the demo, the root
//! tests and the benchmark need (in-process ping, a TCP transfer with its content
//! checked, counters, signals, kill and restart). The only programs it starts are the
//! forwarders, and iperf3 in [`Lab::iperf`], which only the benchmark uses.

use crate::netlab::netns;
use crate::netlab::ping::{self, PingOpts, PingReport};
use crate::netlab::proc::{self, Signal};
use crate::topology::{ifname, Middle, NetnsError, Topology, TopologySpec};
use macsec::crypto::{CipherSuite, SecretKey};
use serde_json::Value;
use std::ffi::OsString;
use std::io::{BufRead, Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a ping waits for each reply (`ping -W 2`).
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a forwarder may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Errors of the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Building the topology failed.
    #[error("{0}")]
    Netns(#[from] NetnsError),
    /// A namespace operation, ping or signal failed.
    #[error("{0}")]
    Netlab(#[from] crate::netlab::Error),
    /// I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A forwarder did not come up or misbehaved.
    #[error("{0}")]
    Forwarder(String),
    /// A measurement could not be started (its sockets could not be made): it says
    /// nothing about the forwarders.
    #[error("cannot run: {0}")]
    CannotRun(String),
}

/// One end of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Host A, forwarder F1.
    A,
    /// Host B, forwarder F2.
    B,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Short tag for names.
    pub tag: String,
    /// Cipher suite.
    pub cipher: CipherSuite,
    /// Encrypt (else integrity only).
    pub encrypt: bool,
    /// Confidentiality offset (0, 30, 50).
    pub offset: u32,
    /// Include the SCI.
    pub send_sci: bool,
    /// Replay window.
    pub replay_window: u32,
    /// Host link MTU.
    pub plain_mtu: u32,
    /// Secure link MTU.
    pub secure_mtu: u32,
    /// GRO/GSO/TSO off on the hosts too (benchmarks).
    pub host_offloads_off: bool,
    /// Forwarders or kernel bridges in the middle.
    pub middle: Middle,
    /// Subnet 10.x.0.0/24.
    pub subnet: u8,
    /// Extra lines for the `[forward]` section.
    pub forward_extra: String,
    /// Key with MKA (a fresh activation key for both ends) instead of static SAKs.
    pub mka: bool,
    /// Extra lines for the `[mka]` section of F1 and of F2 (e.g. priorities).
    pub mka_extra: [String; 2],
    /// Give F2 a different CAK (same CKN): it must never join the CA.
    pub mka_wrong_cak_on_b: bool,
    /// Secure links between the forwarders (1 to 4; more than one needs `mka`). Link
    /// k is named `l<k>` with priority k + 1.
    pub links: usize,
    /// Links that pass through an impairment relay ([`Lab::impairment`]).
    pub impaired: Vec<usize>,
    /// Extra sections for both configurations (`[redundancy]`, `[monitor]`, ...).
    pub extra: String,
    /// The whole `[mka]` section (header, `[[mka.keys]]` tables and all) of F1 and of F2,
    /// used instead of the generated one when set (key chains, policies). The lab then
    /// writes neither static SAKs nor an activation key of its own (`mka`, `mka_extra`
    /// and `mka_wrong_cak_on_b` are unused); `@DIR@` in the text stands for the lab's
    /// working directory (where [`LabSpec::key_files`] are).
    pub mka_section: Option<[String; 2]>,
    /// Files written into the lab's working directory with mode 0600 before the
    /// forwarders start: (name relative to the directory, contents), e.g. key files.
    pub key_files: Vec<(String, String)>,
    /// Extra environment variables for both forwarders (set last: `MACSEC_LOG` may be
    /// overridden too).
    pub forwarder_env: Vec<(String, String)>,
    /// The test-only key-chain clock, `(origin, scale)`: every forwarder is started with
    /// [`KEYCHAIN_CLOCK_ENV`] set so that its key-chain clock reads origin + (time since
    /// the lab started its first forwarder) × scale, the same at both ends whenever each
    /// was (re)started. See [`Lab::keychain_now`].
    pub keychain_clock: Option<(f64, f64)>,
    /// Both forwarders with protectFrames off and validateFrames Disabled (802.1AE
    /// 10.5, 10.6): frames cross the secure link as they are, through the same rings,
    /// copies and checksum completion but no cipher. Benchmarks use it to measure what
    /// the packet I/O alone costs.
    pub unprotected: bool,
}

/// The test-only clock of the forwarder's key chain: `"<origin unix seconds>:<scale>"`
/// makes it read origin + (time since the forwarder started) × scale (key start and end
/// decisions only; MKA timers run in real time).
pub const KEYCHAIN_CLOCK_ENV: &str = "MACSEC_TEST_KEYCHAIN_CLOCK";

/// Writes `contents` to `path` with mode 0600 (owner only, as key material must be):
/// into a temporary file next to it first, then renamed over it, so that a forwarder
/// re-reading the file (SIGHUP) never sees half of it.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
            0o600,
        )
        .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            tag: "lab".into(),
            cipher: CipherSuite::GcmAes128,
            encrypt: true,
            offset: 0,
            send_sci: true,
            replay_window: 0,
            plain_mtu: 1500,
            secure_mtu: 1532,
            host_offloads_off: false,
            middle: Middle::Forwarders,
            subnet: 66,
            forward_extra: String::new(),
            mka: false,
            mka_extra: [String::new(), String::new()],
            mka_wrong_cak_on_b: false,
            links: 1,
            impaired: Vec::new(),
            extra: String::new(),
            mka_section: None,
            key_files: Vec::new(),
            forwarder_env: Vec::new(),
            keychain_clock: None,
            unprotected: false,
        }
    }
}

/// How the lab starts a forwarder: the command for `macsec` with the given arguments
/// (`forward --config FILE`). [`Launcher::binary`] runs the binary itself; a launcher
/// may also set the process group, or run a helper that drops privileges and execs the
/// binary (the child's pid must end up the forwarder's: signals go to it).
pub struct Launcher(Box<MakeCommand>);

/// What a [`Launcher`] holds: arguments in, command out.
type MakeCommand = dyn Fn(&[OsString]) -> Command + Send + Sync;

impl Launcher {
    /// Runs `bin` with the arguments.
    pub fn binary(bin: &Path) -> Launcher {
        let bin = bin.to_path_buf();
        Launcher::new(move |args| {
            let mut c = Command::new(&bin);
            c.args(args);
            c
        })
    }

    /// A launcher of its own.
    pub fn new(f: impl Fn(&[OsString]) -> Command + Send + Sync + 'static) -> Launcher {
        Launcher(Box::new(f))
    }
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Launcher")
    }
}

/// A running `macsec forward` process.
#[derive(Debug)]
pub struct Forwarder {
    /// The process (started inside its namespace, so this is the forwarder's pid).
    pub child: Child,
    /// Its standard output (JSON counters), as a file.
    pub stdout: PathBuf,
    /// Its logs.
    pub stderr: PathBuf,
}

/// A lab.
#[derive(Debug)]
pub struct Lab {
    /// The namespaces.
    pub topo: Topology,
    /// The spec.
    pub spec: LabSpec,
    /// Working directory (configs, outputs, PN state); removed on drop.
    pub dir: PathBuf,
    launcher: Launcher,
    f1: Option<Forwarder>,
    f2: Option<Forwarder>,
    runs: u32,
    /// Per link: its impairment relay, if it has one.
    relays: Vec<Option<crate::impair::Impairment>>,
    /// When the first forwarder was started: time zero of the key-chain clock.
    clock_epoch: Option<Instant>,
}

/// SCIs of the two forwarders.
pub const SCI_F1: &str = "02000000f1010001";
/// SCI of F2.
pub const SCI_F2: &str = "02000000f2020001";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

impl Lab {
    /// Builds the topology and, with [`Middle::Forwarders`], starts a forwarder pair
    /// with fresh random keys. `bin` is the `macsec` executable.
    pub fn start(spec: LabSpec, bin: &Path) -> Result<Lab, LabError> {
        Lab::start_with(spec, Launcher::binary(bin))
    }

    /// [`Lab::start`], starting the forwarders with `launcher`.
    pub fn start_with(spec: LabSpec, launcher: Launcher) -> Result<Lab, LabError> {
        let topo = Topology::create(TopologySpec {
            tag: spec.tag.clone(),
            plain_mtu: spec.plain_mtu,
            secure_mtu: spec.secure_mtu,
            host_offloads_off: spec.host_offloads_off,
            middle: spec.middle,
            subnet: spec.subnet,
            links: spec.links.max(1),
            impaired: spec.impaired.clone(),
        })?;
        let relays = topo
            .ns_w
            .iter()
            .map(|w| {
                w.as_ref()
                    .map(|w| crate::impair::Impairment::start(w, "wa", "wb"))
                    .transpose()
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| LabError::CannotRun(format!("impairment relay: {e}")))?;
        let dir =
            std::env::temp_dir().join(format!("macsec-lab-{}-{}", std::process::id(), spec.tag));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut lab = Lab {
            topo,
            spec,
            dir,
            launcher,
            f1: None,
            f2: None,
            runs: 0,
            relays,
            clock_epoch: None,
        };
        for (name, contents) in &lab.spec.key_files {
            let p = lab.dir.join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            write_private(&p, contents.as_bytes())?;
        }
        if lab.spec.middle == Middle::Forwarders {
            lab.write_configs(None)?;
            lab.start_forwarder(Side::A)?;
            lab.start_forwarder(Side::B)?;
        }
        Ok(lab)
    }

    /// Writes the configuration of both forwarders, or of `only` one.
    fn write_configs(&self, only: Option<Side>) -> Result<(), LabError> {
        let n = self.spec.cipher.key_len();
        let k1 = SecretKey::random(n).expect("16 or 32");
        let k2 = SecretKey::random(n).expect("16 or 32");
        let xpn = self.spec.cipher.is_xpn();
        let mut salt = [0u8; 12];
        getrandom::fill(&mut salt).expect("random");
        let salt = hex(&salt);
        let ak = macsec::mka::ActivationKey::generate(16).expect("random");
        let activation = ak.encode();
        let wrong = macsec::mka::ActivationKey {
            ckn: ak.ckn,
            cak: SecretKey::random(16).expect("random"),
        }
        .encode();
        for (side, sci, peer, tx, rx, ssci, peer_ssci, plain, secure) in [
            (
                Side::A,
                SCI_F1,
                SCI_F2,
                &k1,
                &k2,
                1,
                2,
                ifname::P1,
                ifname::S1,
            ),
            (
                Side::B,
                SCI_F2,
                SCI_F1,
                &k2,
                &k1,
                2,
                1,
                ifname::P2,
                ifname::S2,
            ),
        ] {
            if only.is_some_and(|o| o != side) {
                continue;
            }
            let x = |s: u32| {
                if xpn {
                    format!("ssci = \"{s:08X}\"\nsalt = \"{salt}\"\n")
                } else {
                    String::new()
                }
            };
            let keys = if let Some(sections) = &self.spec.mka_section {
                let text = &sections[if side == Side::A { 0 } else { 1 }];
                format!(
                    "{}\n",
                    text.replace("@DIR@", &self.dir.display().to_string())
                )
            } else if self.spec.mka {
                format!(
                    "[mka]\nactivation_key = \"{}\"\ncipher = \"{}\"\n{}\n",
                    if side == Side::B && self.spec.mka_wrong_cak_on_b {
                        wrong.as_str()
                    } else {
                        activation.as_str()
                    },
                    self.spec.cipher.name(),
                    self.spec.mka_extra[if side == Side::A { 0 } else { 1 }]
                )
            } else {
                format!(
                    "[secy.tx]\nencoding_sa = 0\n[[secy.tx.sa]]\nan = 0\nkey = \"{}\"\npn = 1\n{}\n[[secy.rx]]\nsci = \"{peer}\"\n[[secy.rx.sa]]\nan = 0\nkey = \"{}\"\npn = 1\n{}",
                    hex(tx.expose_secret()),
                    x(ssci),
                    hex(rx.expose_secret()),
                    x(peer_ssci)
                )
            };
            let end = if side == Side::A { 1 } else { 2 };
            let (ports, sci_line) = if self.spec.links > 1 {
                let mut p = format!("[ports]\nplain = \"{plain}\"\n");
                for k in 0..self.spec.links {
                    p += &format!(
                        "[[links]]\nsecure = \"{}\"\nname = \"l{k}\"\npriority = {}\n",
                        crate::topology::secure_if(end, k),
                        k + 1
                    );
                }
                // Several links: each link's SCI is its port's MAC and port 1.
                (p, String::new())
            } else {
                let _ = secure;
                (
                    format!("[ports]\nplain = \"{plain}\"\nsecure = \"{secure}\"\n"),
                    format!("sci = \"{sci}\"\n"),
                )
            };
            let cfg = format!(
                "# lab forwarder {side:?}\n{ports}\n[secy]\ncipher = \"{}\"\nencrypt = {}\nconfidentiality_offset = {}\nsend_sci = {}\n{}replay_protect = true\nreplay_window = {}\n{sci_line}\n{keys}\n{}\n[forward]\nstate_file = \"{}\"\nrun_dir = \"{}\"\n{}",
                self.spec.cipher.name(),
                self.spec.encrypt,
                if self.spec.encrypt { self.spec.offset } else { 0 },
                self.spec.send_sci,
                if self.spec.unprotected {
                    "protect = false\nvalidate = \"disabled\"\n"
                } else {
                    "validate = \"strict\"\n"
                },
                self.spec.replay_window,
                self.spec.extra,
                self.dir.join(format!("{side:?}.pn")).display(),
                self.dir.join("run").display(),
                self.spec.forward_extra,
            );
            // The file holds keys: owner-only, like any key material.
            write_private(&self.config_path(side), cfg.as_bytes())?;
        }
        Ok(())
    }

    /// Replaces `side`'s `[mka]` section ([`LabSpec::mka_section`], which must be set)
    /// and rewrites that side's configuration file (atomically, mode 0600). The running
    /// forwarder reads it on SIGHUP or a `reload` on its control socket, a restarted one
    /// at start.
    pub fn set_mka_section(&mut self, side: Side, text: &str) -> Result<(), LabError> {
        let Some(sections) = self.spec.mka_section.as_mut() else {
            return Err(LabError::Forwarder(
                "set_mka_section needs LabSpec::mka_section".into(),
            ));
        };
        sections[if side == Side::A { 0 } else { 1 }] = text.to_owned();
        self.write_configs(Some(side))
    }

    /// Writes a file (a key file, say) into the lab's working directory with mode 0600,
    /// atomically; returns its path.
    pub fn write_key_file(&self, name: &str, contents: &str) -> Result<PathBuf, LabError> {
        let p = self.dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        write_private(&p, contents.as_bytes())?;
        Ok(p)
    }

    /// The key-chain clock's reading now ([`LabSpec::keychain_clock`]): origin + (time
    /// since the first forwarder was started) × scale; `None` without that clock.
    pub fn keychain_now(&self) -> Option<f64> {
        let (origin, scale) = self.spec.keychain_clock?;
        let since = self.clock_epoch.map_or(0.0, |e| e.elapsed().as_secs_f64());
        Some(origin + since * scale)
    }

    /// The impairment relay of link `k`, if the link has one.
    pub fn impairment(&self, k: usize) -> Option<&crate::impair::Impairment> {
        self.relays.get(k).and_then(Option::as_ref)
    }

    /// The secure interface of link `k` at `side`'s forwarder.
    pub fn secure_if(&self, side: Side, k: usize) -> String {
        crate::topology::secure_if(if side == Side::A { 1 } else { 2 }, k)
    }

    /// The forwarder configuration file of `side`.
    pub fn config_path(&self, side: Side) -> PathBuf {
        self.dir.join(format!("f-{side:?}.toml"))
    }

    /// The namespace of `side`'s forwarder.
    pub fn fwd_ns(&self, side: Side) -> &str {
        match side {
            Side::A => &self.topo.ns_f1,
            Side::B => &self.topo.ns_f2,
        }
    }

    /// The namespace of `side`'s host.
    pub fn host_ns(&self, side: Side) -> &str {
        match side {
            Side::A => &self.topo.ns_a,
            Side::B => &self.topo.ns_b,
        }
    }

    /// The IPv4 address of `side`'s host.
    pub fn host_ip(&self, side: Side) -> &str {
        match side {
            Side::A => &self.topo.ip_a,
            Side::B => &self.topo.ip_b,
        }
    }

    /// The IPv4 address of `side`'s host.
    pub fn host_addr(&self, side: Side) -> Ipv4Addr {
        self.host_ip(side).parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    fn slot(&mut self, side: Side) -> &mut Option<Forwarder> {
        match side {
            Side::A => &mut self.f1,
            Side::B => &mut self.f2,
        }
    }

    /// The forwarder of `side`, if running.
    pub fn forwarder(&self, side: Side) -> Option<&Forwarder> {
        match side {
            Side::A => self.f1.as_ref(),
            Side::B => self.f2.as_ref(),
        }
    }

    /// Starts `side`'s forwarder and waits (up to 15 s) until it forwards.
    pub fn start_forwarder(&mut self, side: Side) -> Result<(), LabError> {
        self.runs += 1;
        let out = self.dir.join(format!("f-{side:?}-{}.out", self.runs));
        let err = self.dir.join(format!("f-{side:?}-{}.err", self.runs));
        let args: Vec<OsString> = vec![
            "forward".into(),
            "--config".into(),
            self.config_path(side).into(),
        ];
        let mut cmd = (self.launcher.0)(&args);
        if let Some((origin, scale)) = self.spec.keychain_clock {
            let epoch = *self.clock_epoch.get_or_insert_with(Instant::now);
            let now = origin + epoch.elapsed().as_secs_f64() * scale;
            cmd.env(KEYCHAIN_CLOCK_ENV, format!("{now:.3}:{scale}"));
        }
        cmd.env("MACSEC_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&err)?);
        // Last, so that a test may override MACSEC_LOG too.
        for (k, v) in &self.spec.forwarder_env {
            cmd.env(k, v);
        }
        let child = netns::spawn_in(self.fwd_ns(side), &mut cmd)?;
        *self.slot(side) = Some(Forwarder {
            child,
            stdout: out,
            stderr: err.clone(),
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = std::fs::read_to_string(&err).unwrap_or_default();
            if log.contains(" keys; protecting ") {
                return Ok(());
            }
            if let Some(f) = self.slot(side).as_mut() {
                if let Ok(Some(st)) = f.child.try_wait() {
                    return Err(LabError::Forwarder(format!(
                        "forwarder {side:?} exited ({st}) at start-up:\n{log}"
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(LabError::Forwarder(format!(
                    "forwarder {side:?} did not start within 15 s:\n{log}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `side`'s KaY reports the CA secured (MKA labs). Returns the time it
    /// took from now.
    pub fn wait_secured(&self, side: Side, timeout: Duration) -> Result<Duration, LabError> {
        let start = Instant::now();
        loop {
            if self.logs(side).contains("MKA: secured") {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                return Err(LabError::Forwarder(format!(
                    "forwarder {side:?} not secured after {timeout:?}:\n{}",
                    self.logs(side)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to `side`'s forwarder and, for SIGTERM, SIGINT and SIGKILL, waits
    /// (up to 10 s) for it to exit. Returns its exit code if it exited.
    pub fn signal(&mut self, side: Side, signal: Signal) -> Result<Option<i32>, LabError> {
        let Some(f) = self.slot(side).as_mut() else {
            return Ok(None);
        };
        proc::signal(f.child.id(), signal)?;
        if matches!(signal, Signal::SIGTERM | Signal::SIGINT | Signal::SIGKILL) {
            return match proc::wait_timeout(&mut f.child, Duration::from_secs(10))? {
                Some(st) => Ok(st.code()),
                None => {
                    let _ = f.child.kill();
                    let _ = f.child.wait();
                    Err(LabError::Forwarder(format!(
                        "forwarder {side:?} ignored {signal} for 10 s"
                    )))
                }
            };
        }
        Ok(None)
    }

    fn json_lines(path: &Path) -> Vec<Value> {
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(_) => return vec![],
        };
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }

    /// The counters of `side`'s forwarder now (SIGUSR1, then its JSON line).
    pub fn stats(&mut self, side: Side) -> Result<Value, LabError> {
        let out = self
            .forwarder(side)
            .ok_or_else(|| LabError::Forwarder(format!("forwarder {side:?} not running")))?
            .stdout
            .clone();
        let before = Self::json_lines(&out).len();
        self.signal(side, Signal::SIGUSR1)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = Self::json_lines(&out);
            if lines.len() > before {
                return Ok(lines.into_iter().last().unwrap_or(Value::Null));
            }
            if Instant::now() > deadline {
                return Err(LabError::Forwarder(format!(
                    "forwarder {side:?} printed no counters after SIGUSR1"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops `side`'s forwarder with SIGTERM; returns its exit code and final counters.
    pub fn stop_forwarder(&mut self, side: Side) -> Result<(Option<i32>, Value), LabError> {
        let code = self.signal(side, Signal::SIGTERM)?;
        let out = self.slot(side).take().map(|f| f.stdout);
        let last = out
            .map(|p| {
                Self::json_lines(&p)
                    .into_iter()
                    .last()
                    .unwrap_or(Value::Null)
            })
            .unwrap_or(Value::Null);
        Ok((code, last))
    }

    /// Whether `side`'s forwarder has exited, and with which code (`Some(None)`: by a
    /// signal).
    pub fn forwarder_exit(&mut self, side: Side) -> Result<Option<Option<i32>>, LabError> {
        match self.slot(side).as_mut() {
            None => Ok(None),
            Some(f) => Ok(f.child.try_wait()?.map(|s| s.code())),
        }
    }

    /// The logs of `side`'s forwarder so far.
    pub fn logs(&self, side: Side) -> String {
        self.forwarder(side)
            .map(|f| std::fs::read_to_string(&f.stderr).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Pings from `from`'s host to the other host: `count` ICMP echo requests of `size`
    /// payload octets every `interval`, each given 2 s for its reply, with don't-fragment
    /// set if asked (`ping -c COUNT -i INTERVAL -s SIZE -W 2 [-M do]`). In-process, over a
    /// raw ICMP socket in the host's namespace.
    pub fn ping(
        &self,
        from: Side,
        size: usize,
        count: u32,
        interval: Duration,
        dont_fragment: bool,
    ) -> Result<PingReport, LabError> {
        let to = self.host_addr(match from {
            Side::A => Side::B,
            Side::B => Side::A,
        });
        let opts = PingOpts {
            size,
            count,
            interval,
            timeout: PING_TIMEOUT,
            dont_fragment,
        };
        Ok(ping::ping(self.host_ns(from), to, &opts)?)
    }

    /// Sends `bytes` of a deterministic pseudo-random stream over TCP from A's host to B's
    /// and checks every octet on arrival. Returns (octets received intact, seconds).
    pub fn tcp_transfer(&self, bytes: u64, port: u16) -> Result<(u64, f64), LabError> {
        self.tcp_transfer_paced(bytes, port, None)
    }

    /// [`Lab::tcp_transfer`], sending at most `rate` bits per second if given.
    pub fn tcp_transfer_paced(
        &self,
        bytes: u64,
        port: u16,
        rate: Option<f64>,
    ) -> Result<(u64, f64), LabError> {
        self.tcp_flow(&TcpFlow {
            src_port: None,
            dst_port: port,
            bytes,
            rate,
        })
    }

    /// Several TCP transfers from A's host to B's at once, each on its own thread, each
    /// content-checked like [`Lab::tcp_transfer`]. Returns each one's result.
    pub fn tcp_flows(&self, flows: &[TcpFlow]) -> Vec<Result<(u64, f64), LabError>> {
        std::thread::scope(|sc| {
            let hs: Vec<_> = flows
                .iter()
                .map(|f| sc.spawn(move || self.tcp_flow(f)))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(LabError::Forwarder("flow panicked".into())))
                })
                .collect()
        })
    }

    /// One content-checked TCP transfer from A's host to B's.
    pub fn tcp_flow(&self, flow: &TcpFlow) -> Result<(u64, f64), LabError> {
        use macsec_forward::io::netns::run_in;
        use std::net::{SocketAddr, TcpListener};
        let (bytes, port, rate) = (flow.bytes, flow.dst_port, flow.rate);
        let addr = SocketAddr::from((self.host_addr(Side::B), port));
        let listener = run_in(&self.topo.ns_b, || TcpListener::bind(addr))
            .and_then(|r| r)
            .map_err(|e| LabError::CannotRun(format!("listen on {addr} in host B: {e}")))?;
        let recv = std::thread::spawn(move || -> std::io::Result<u64> {
            // Bounded: a sender that never connects leaves no thread behind.
            listener.set_nonblocking(true)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut s = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "no connection within 10 s",
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => return Err(e),
                }
            };
            s.set_nonblocking(false)?;
            s.set_read_timeout(Some(Duration::from_secs(20)))?;
            let mut gen = Stream::new(7);
            let mut buf = vec![0u8; 1 << 16];
            let mut want = vec![0u8; 1 << 16];
            let mut got = 0u64;
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    return Ok(got);
                }
                gen.fill(&mut want[..n]);
                if buf[..n] != want[..n] {
                    return Err(std::io::Error::other(format!(
                        "content differs at offset {got}"
                    )));
                }
                got += n as u64;
            }
        });
        let start = Instant::now();
        let src = flow.src_port;
        let a = self.host_addr(Side::A);
        let mut s = run_in(
            &self.topo.ns_a,
            || -> std::io::Result<std::net::TcpStream> {
                use socket2::{Domain, Socket, Type};
                let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
                if let Some(p) = src {
                    sock.set_reuse_address(true)?;
                    sock.bind(&SocketAddr::from((a, p)).into())?;
                }
                sock.connect_timeout(&addr.into(), Duration::from_secs(5))?;
                Ok(sock.into())
            },
        )??;
        s.set_write_timeout(Some(Duration::from_secs(20)))?;
        let mut gen = Stream::new(7);
        let mut buf = vec![0u8; 1 << 16];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            gen.fill(&mut buf[..n]);
            s.write_all(&buf[..n])?;
            left -= n as u64;
            if let Some(r) = rate {
                let due = Duration::from_secs_f64((bytes - left) as f64 * 8.0 / r);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        s.shutdown(std::net::Shutdown::Write)?;
        let got = recv
            .join()
            .map_err(|_| LabError::Forwarder("receiver thread panicked".into()))??;
        Ok((got, start.elapsed().as_secs_f64()))
    }

    /// iperf3 TCP from A's host to B's for `secs` seconds; returns bits per second.
    ///
    /// Benchmark only (`benches/forward.sh`): it runs the outside program iperf3, which
    /// no test and not the demo may need; they use [`Lab::tcp_transfer`].
    pub fn iperf(&self, secs: u32, port: u16) -> Result<f64, LabError> {
        let p = port.to_string();
        let mut srv = netns::spawn_in(
            self.host_ns(Side::B),
            Command::new("iperf3")
                .args(["-s", "-1", "-p", &p, "-B", self.host_ip(Side::B)])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        std::thread::sleep(Duration::from_millis(300));
        let client = netns::spawn_in(
            self.host_ns(Side::A),
            Command::new("iperf3")
                .args([
                    "-c",
                    self.host_ip(Side::B),
                    "-p",
                    &p,
                    "-t",
                    &secs.to_string(),
                ])
                .arg("-J")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let out =
            client.and_then(|c| proc::output_within(c, Duration::from_secs(u64::from(secs) + 15)));
        let _ = proc::terminate(&mut srv, Duration::from_secs(1));
        let out = out?;
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            LabError::Forwarder(format!(
                "iperf3 output: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        })?;
        v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .ok_or_else(|| LabError::Forwarder(format!("iperf3 failed: {}", v["error"])))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for f in [self.f1.take(), self.f2.take()].into_iter().flatten() {
            let mut c = f.child;
            let _ = proc::terminate(&mut c, STOP_GRACE);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One TCP transfer of [`Lab::tcp_flows`].
#[derive(Debug, Clone, Copy)]
pub struct TcpFlow {
    /// Host A's source port (`None`: the kernel picks one).
    pub src_port: Option<u16>,
    /// Host B's listening port.
    pub dst_port: u16,
    /// Octets to send.
    pub bytes: u64,
    /// At most this many bits per second, if given.
    pub rate: Option<f64>,
}

/// A deterministic pseudo-random byte stream (xorshift64*), for content checks.
pub struct Stream(u64, [u8; 8], usize);

impl Stream {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Stream {
        Stream(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, [0; 8], 8)
    }
    /// Fills `out` with the next octets.
    pub fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.2 == 8 {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                self.1 = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
                self.2 = 0;
            }
            *b = self.1[self.2];
            self.2 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_deterministic_across_chunkings() {
        let (mut a, mut b) = (Stream::new(7), Stream::new(7));
        let mut x = vec![0u8; 100];
        a.fill(&mut x);
        let mut y = vec![0u8; 100];
        b.fill(&mut y[..33]);
        b.fill(&mut y[33..]);
        assert_eq!(x, y);
    }
}

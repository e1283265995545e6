//! The `macsec forward` process: start-up checks, the data-plane threads, and the
//! control thread that runs everything that is not per frame.
//!
//! Threads: the data plane (one thread per direction, or one for both; see
//! [`super::worker`]) owns the ports and the SecYs of every link; the control thread
//! owns the PN store, one KaY per link (MKA), one link monitor per link, the link
//! selector, signals and counters. They talk over channels; the control thread wakes
//! the data plane with an eventfd, and nothing on the data path waits on a lock.
//!
//! - [`startup`]: configuration rules, interfaces, SecYs, static keys and the PN store.
//! - [`kay`]: a link's MKA participants (one per key of the chain), its socket and the
//!   actions it applies.
//! - [`chain`]: the key chain at run time (clock, policy, expiry warnings, reload).
//! - [`control`]: the control loop.
//! - [`report`]: the JSON counters.

mod chain;
mod control;
mod kay;
mod mismatch;
mod report;
mod startup;

use crate::config::{Config, ConfigError, KeyFilePolicy};
use crate::io::SetupError;
use std::path::PathBuf;

/// What `forward` can fail with, and the exit status for each.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// Bad configuration (exit 2).
    #[error("config error: {0}")]
    Config(#[from] ConfigError),
    /// An interface check failed and could not be fixed (exit 2).
    #[error("{0}")]
    Setup(#[from] SetupError),
    /// Start-up failed before forwarding began: the PN state, a lock, an MTU that
    /// could not be set (exit 2).
    #[error("{0}")]
    Startup(String),
    /// Something failed after forwarding began (exit 1).
    #[error("{0}")]
    Runtime(String),
}

impl ForwardError {
    /// The process exit status for this error: 2 for anything before forwarding began,
    /// 1 after.
    pub fn exit_code(&self) -> u8 {
        match self {
            ForwardError::Runtime(_) => 1,
            _ => 2,
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
    /// Dry run: report every problem (ports, MTUs, offloads, keys, state, locks) with
    /// the command that fixes it, and start nothing.
    pub check_only: bool,
}

/// Runs the forwarder until SIGINT/SIGTERM.
pub fn run(opts: &Options) -> Result<(), ForwardError> {
    let cfg = Config::load(&opts.config, opts.key_policy)?;
    cfg.reject_unknown_sections(&[
        "forward",
        "mka",
        "links",
        "redundancy",
        "monitor",
        "control",
        "metrics",
    ])?;
    let ctl = cfg.control.clone();
    let run_dir = cfg.forward.run_dir.clone();
    let plan = startup::Plan::new(cfg)?;
    if opts.check_only {
        return startup::check(plan, opts);
    }
    let (req_tx, req_rx) = crossbeam::channel::bounded(16);
    let started = startup::start(plan, opts)?;
    // The operator surface. The default socket lives in the run directory (/run/macsec
    // unless `[forward] run_dir` says otherwise), which a service
    // without RuntimeDirectory may not be able to write: then warn and go on; a socket
    // set in the configuration must work.
    let socket = ctl
        .socket
        .clone()
        .unwrap_or_else(|| crate::control::default_socket_in(&run_dir, &opts.config));
    let _server = match crate::control::ControlServer::start(&socket, req_tx.clone()) {
        Ok(s) => Some(s),
        Err(e) if ctl.socket.is_none() => {
            tracing::warn!("no control socket ({e}); `macsec status` will not find this forwarder");
            None
        }
        Err(e) => return Err(ForwardError::Startup(e.to_string())),
    };
    let _metrics = match ctl.metrics {
        None => None,
        Some(a) => Some(
            crate::control::MetricsServer::start(a, req_tx.clone())
                .map_err(|e| ForwardError::Startup(format!("[metrics] listen = \"{a}\": {e}")))?,
        ),
    };
    drop(req_tx);
    let name = opts
        .config
        .file_stem()
        .map_or_else(|| "macsec".into(), |s| s.to_string_lossy().into_owned());
    control::run(started, req_rx, name, opts.config.clone())
}

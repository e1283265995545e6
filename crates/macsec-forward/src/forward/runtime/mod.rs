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
//! - [`kay`]: a link's MKA participant, its socket and the actions it applies.
//! - [`control`]: the control loop.
//! - [`report`]: the JSON counters.

mod control;
mod kay;
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
    /// Only check the interfaces; refuse instead of fixing MTU, state or offloads.
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
    let plan = startup::Plan::new(cfg)?;
    let started = startup::start(plan, opts)?;
    control::run(started)
}

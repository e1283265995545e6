//! The forwarder's `[forward]` section: PN persistence and operations.
//!
//! ```toml
//! [forward]
//! state_dir = "/var/lib/macsec"            # PN high-water marks, one file per transmit SCI
//! run_dir = "/run/macsec"                   # locks shared by every forwarder on the host
//! # state_file = "/var/lib/macsec/link1.pn" # instead of <state_dir>/pn-<SCI>.state
//! pn_reserve_block = 1048576                # PNs reserved on disk at a time
//! stats_interval = 60                       # seconds; 0 = only on SIGUSR1 and at exit
//! qdisc_bypass = true
//! port_timeout_s = 60                      # a deleted port is waited for this long, then exit 1
//! threads = "auto"                          # "one": one thread serves both directions;
//!                                           # "two": one per direction; "auto": one below 4 cores
//! ```

use super::value::{field_err, uint};
use super::{ConfigError, Ctx};
use crate::forward::worker::ThreadMode;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Default directory of the PN high-water marks (systemd's `StateDirectory=macsec`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/macsec";
/// Default directory of the locks (systemd's `RuntimeDirectory=macsec`).
pub const DEFAULT_RUN_DIR: &str = "/run/macsec";

/// Default PN block reserved on disk at a time.
pub const DEFAULT_PN_BLOCK: u64 = 1 << 20;

/// `[forward]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawForward {
    state_file: Option<String>,
    state_dir: Option<String>,
    run_dir: Option<String>,
    pn_reserve_block: Option<i128>,
    stats_interval: Option<i128>,
    qdisc_bypass: Option<bool>,
    threads: Option<String>,
    port_timeout_s: Option<i128>,
}

/// The `[forward]` section.
#[derive(Debug, Clone)]
pub struct ForwardSettings {
    /// PN high-water mark file, if given: else `<state_dir>/pn-<SCI>.state`, so that a
    /// copied or renamed configuration finds the marks of its SCI and keys.
    pub state_file: Option<PathBuf>,
    /// Directory of the PN high-water marks.
    pub state_dir: PathBuf,
    /// Directory of the locks every forwarder on the host shares (ports, SCIs and keys
    /// in use).
    pub run_dir: PathBuf,
    /// Where releases before 0.2 kept the marks of this configuration by default
    /// (`<config file>.pn-state`): read, if it exists, so an upgrade never reuses a PN.
    pub legacy_state_file: PathBuf,
    /// PNs reserved on disk at a time.
    pub pn_block: u64,
    /// Print the counters every so often (`None`: only on SIGUSR1 and at exit).
    pub stats_interval: Option<Duration>,
    /// Hand transmitted frames straight to the driver (`PACKET_QDISC_BYPASS`). Faster;
    /// off makes them visible to tcpdump on the port and subject to traffic control.
    pub qdisc_bypass: bool,
    /// How the data plane is spread over threads; `None`: as `auto` ([`ThreadMode::auto`]).
    pub threads: Option<ThreadMode>,
    /// How long a port whose interface is gone (deleted) is waited for before the
    /// forwarder exits with status 1, for a supervisor to restart it.
    pub port_timeout: Duration,
}

/// Validates `[forward]` (an absent section is all defaults).
pub(crate) fn validate(raw: RawForward, ctx: &Ctx<'_>) -> Result<ForwardSettings, ConfigError> {
    let pn_block = match uint("forward.pn_reserve_block", raw.pn_reserve_block, 1 << 40)? {
        Some(0) => return Err(field_err("forward.pn_reserve_block", "must be at least 1")),
        Some(b) => b,
        None => DEFAULT_PN_BLOCK,
    };
    let stats_interval = uint("forward.stats_interval", raw.stats_interval, 86_400)?
        .filter(|i| *i > 0)
        .map(Duration::from_secs);
    let threads = match raw.threads.as_deref() {
        None => None,
        Some("auto") => Some(ThreadMode::auto()),
        Some("one") => Some(ThreadMode::OneThread),
        Some("two") => Some(ThreadMode::TwoThreads),
        Some(other) => {
            return Err(field_err(
                "forward.threads",
                format!("{other:?}: use \"auto\", \"one\" or \"two\""),
            ))
        }
    };
    Ok(ForwardSettings {
        state_file: raw.state_file.map(|p| ctx.base_dir.join(p)),
        state_dir: raw.state_dir.map_or_else(
            || PathBuf::from(DEFAULT_STATE_DIR),
            |p| ctx.base_dir.join(p),
        ),
        run_dir: raw
            .run_dir
            .map_or_else(|| PathBuf::from(DEFAULT_RUN_DIR), |p| ctx.base_dir.join(p)),
        legacy_state_file: ctx.default_state_file.clone(),
        pn_block,
        stats_interval,
        qdisc_bypass: raw.qdisc_bypass.unwrap_or(true),
        threads,
        port_timeout: Duration::from_secs(
            uint("forward.port_timeout_s", raw.port_timeout_s, 86_400)?.unwrap_or(60),
        ),
    })
}

//! The forwarder's operator surface: `[control]` (the status socket) and `[metrics]`
//! (the Prometheus endpoint). See [`crate::control`] for what they serve.
//!
//! ```toml
//! [control]
//! socket = "/run/macsec/link1.sock"   # default: <[forward] run_dir>/<config file stem>.sock
//!
//! [metrics]                           # off unless this section is present
//! listen = "127.0.0.1:9876"           # address:port; GET /metrics
//! ```
//!
//! The socket is created with mode 0660: its owner and group may ask for the status
//! and send operator commands (rekey). Nothing on it reveals key material.
//!
//! `metrics.listen` takes an IP address and a port (no host names). A loopback address
//! is what it is meant for; any other address is accepted, but the forwarder logs a
//! warning at start: the endpoint has no authentication, so put it behind a firewall or
//! a reverse proxy.

use super::value::field_err;
use super::{ConfigError, Ctx};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Longest Unix socket path the kernel takes (`sun_path` is 108 octets with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// `[control]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawControl {
    socket: Option<String>,
}

/// `[metrics]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    listen: Option<String>,
}

/// `[control]` and `[metrics]`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlSettings {
    /// The control socket; `None`: [`crate::control::default_socket`] of the config file.
    pub socket: Option<PathBuf>,
    /// Where the Prometheus endpoint listens; `None`: no endpoint (the default).
    pub metrics: Option<SocketAddr>,
}

/// Validates `[control]` and `[metrics]` (both optional).
pub(crate) fn validate(
    control: Option<RawControl>,
    metrics: Option<RawMetrics>,
    ctx: &Ctx<'_>,
) -> Result<ControlSettings, ConfigError> {
    let socket = match control.and_then(|c| c.socket) {
        None => None,
        Some(s) if s.is_empty() => {
            return Err(field_err(
                "control.socket",
                "empty: give a path such as \"/run/macsec/link1.sock\", or leave the key out for the default",
            ))
        }
        Some(s) => {
            let p = ctx.base_dir.join(&s);
            let len = p.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(field_err(
                    "control.socket",
                    format!(
                        "{} is {len} octets long; a Unix socket path has at most {MAX_SOCKET_PATH}: choose a shorter path",
                        p.display()
                    ),
                ));
            }
            Some(p)
        }
    };
    let metrics = match metrics {
        None => None,
        Some(RawMetrics { listen: None }) => {
            return Err(field_err(
                "metrics.listen",
                "missing: the address and port to serve /metrics on, e.g. \"127.0.0.1:9876\" (remove [metrics] to turn the endpoint off)",
            ))
        }
        Some(RawMetrics { listen: Some(l) }) => Some(l.parse::<SocketAddr>().map_err(|_| {
            field_err(
                "metrics.listen",
                format!("{l:?}: expected an IP address and a port, e.g. \"127.0.0.1:9876\" or \"[::1]:9876\" (no host names)"),
            )
        })?),
    };
    Ok(ControlSettings { socket, metrics })
}

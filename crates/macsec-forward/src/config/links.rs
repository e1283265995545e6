//! Redundant secure links: `[[links]]`, `[redundancy]` and `[monitor]`.
//!
//! ```toml
//! [ports]
//! plain = "eth1"
//!
//! [[links]]                 # one per secure interface
//! secure = "eth2"
//! name = "dx1"              # default: the interface name
//! priority = 1              # active-backup: the healthy link with the lowest priority carries traffic
//! [[links]]
//! secure = "eth3"
//! name = "dx2"
//! priority = 2
//!
//! [redundancy]
//! mode = "active-backup"    # or "balance"
//! hold_up_ms = 2000         # a recovered link stays healthy this long before it takes traffic back
//!
//! [monitor]
//! probe_interval_ms = 100   # per link, both directions
//! probe_miss = 3            # this many consecutive probes lost: link down
//! loss_window_s = 10        # loss and RTT statistics cover this window
//! max_loss = 0.02           # loss above this over the window: link degraded
//! max_rtt_ms = 0            # 0 = no RTT limit
//! ```
//!
//! The single `[ports] secure = "eth2"` form is one link named after its interface.

use super::value::{field_err, uint};
use super::ConfigError;
use crate::monitor::link::MonitorConfig;
use crate::monitor::select::{Mode, RedundancyConfig};
use serde::Deserialize;

/// Most secure links per forwarder.
pub const MAX_LINKS: usize = 16;

/// One `[[links]]` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLink {
    secure: Option<String>,
    name: Option<String>,
    priority: Option<i128>,
}

/// `[redundancy]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedundancy {
    mode: Option<String>,
    hold_up_ms: Option<i128>,
}

/// `[monitor]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMonitor {
    probe_interval_ms: Option<i128>,
    probe_miss: Option<i128>,
    loss_window_s: Option<i128>,
    max_loss: Option<f64>,
    max_rtt_ms: Option<i128>,
}

/// One secure link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    /// The secure interface.
    pub secure: String,
    /// Name in logs, counters, status and metrics.
    pub name: String,
    /// Active-backup preference: lower carries traffic first.
    pub priority: u32,
}

/// The links and how they are used.
#[derive(Debug, Clone, PartialEq)]
pub struct LinksSettings {
    /// Every secure link, in configuration order.
    pub links: Vec<LinkSettings>,
    /// `[redundancy]`.
    pub redundancy: RedundancyConfig,
    /// `[monitor]`: probes and statistics per link; `None` when off (one link without a
    /// `[monitor]` section, so that a peer that is not this forwarder sees no probes).
    pub monitor: Option<MonitorConfig>,
}

/// Validates `[[links]]` (or the single `[ports] secure`), `[redundancy]` and
/// `[monitor]`. `plain` is the plain interface, which no link may use.
pub(crate) fn validate(
    raw: Option<Vec<RawLink>>,
    single_secure: Option<&str>,
    plain: Option<&str>,
    redundancy: Option<RawRedundancy>,
    monitor: Option<RawMonitor>,
) -> Result<Option<LinksSettings>, ConfigError> {
    let links = match (raw, single_secure) {
        (Some(_), Some(_)) => {
            return Err(field_err(
                "ports.secure",
                "give the secure interfaces either as [ports] secure or as [[links]], not both",
            ))
        }
        (None, None) => None,
        (None, Some(s)) => Some(vec![LinkSettings {
            secure: s.to_owned(),
            name: s.to_owned(),
            priority: 1,
        }]),
        (Some(raw), None) => Some(validate_links(raw)?),
    };
    let Some(links) = links else {
        if redundancy.is_some() || monitor.is_some() {
            let s = if redundancy.is_some() {
                "redundancy"
            } else {
                "monitor"
            };
            return Err(field_err(
                s,
                "needs secure links: [[links]] or [ports] secure",
            ));
        }
        return Ok(None);
    };
    if let Some((i, l)) = links
        .iter()
        .enumerate()
        .find(|(_, l)| Some(l.secure.as_str()) == plain)
    {
        let f = if single_secure.is_some() {
            "ports.secure".into()
        } else {
            format!("links[{i}].secure")
        };
        return Err(field_err(
            &f,
            format!(
                "{} is the plain port; a secure link needs its own interface",
                l.secure
            ),
        ));
    }
    let multi = links.len() > 1;
    let redundancy = validate_redundancy(redundancy.unwrap_or_default())?;
    let monitor = match monitor {
        Some(m) => Some(validate_monitor(m)?),
        None if multi => Some(MonitorConfig::default()),
        None => None,
    };
    Ok(Some(LinksSettings {
        links,
        redundancy,
        monitor,
    }))
}

fn validate_links(raw: Vec<RawLink>) -> Result<Vec<LinkSettings>, ConfigError> {
    if raw.is_empty() {
        return Err(field_err(
            "links",
            "empty: give at least one [[links]] with secure = \"IFNAME\"",
        ));
    }
    if raw.len() > MAX_LINKS {
        return Err(field_err(
            "links",
            format!("{} links; at most {MAX_LINKS}", raw.len()),
        ));
    }
    let mut out: Vec<LinkSettings> = Vec::with_capacity(raw.len());
    for (i, l) in raw.into_iter().enumerate() {
        let secure = l.secure.ok_or_else(|| {
            field_err(
                &format!("links[{i}].secure"),
                "missing: the link's secure interface name",
            )
        })?;
        let name = l.name.unwrap_or_else(|| secure.clone());
        if name.is_empty()
            || name.len() > 32
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(field_err(
                &format!("links[{i}].name"),
                format!("{name:?}: use 1 to 32 letters, digits, '-', '_' or '.' (it becomes a metric label)"),
            ));
        }
        let priority = uint(&format!("links[{i}].priority"), l.priority, u32::MAX as u64)?
            .map_or(i as u32 + 1, |p| p as u32);
        if let Some(j) = out.iter().position(|o| o.secure == secure) {
            return Err(field_err(
                &format!("links[{i}].secure"),
                format!("{secure} is already links[{j}]"),
            ));
        }
        if let Some(j) = out.iter().position(|o| o.name == name) {
            return Err(field_err(
                &format!("links[{i}].name"),
                format!("{name:?} is already the name of links[{j}]"),
            ));
        }
        out.push(LinkSettings {
            secure,
            name,
            priority,
        });
    }
    Ok(out)
}

fn validate_redundancy(raw: RawRedundancy) -> Result<RedundancyConfig, ConfigError> {
    let mut r = RedundancyConfig::default();
    if let Some(m) = raw.mode {
        r.mode = m.parse::<Mode>().map_err(|_| {
            field_err(
                "redundancy.mode",
                format!("{m:?}: use \"active-backup\" or \"balance\""),
            )
        })?;
    }
    if let Some(h) = uint("redundancy.hold_up_ms", raw.hold_up_ms, 3_600_000)? {
        r.hold_up_ms = h;
    }
    Ok(r)
}

fn validate_monitor(raw: RawMonitor) -> Result<MonitorConfig, ConfigError> {
    let mut m = MonitorConfig::default();
    if let Some(v) = uint("monitor.probe_interval_ms", raw.probe_interval_ms, 60_000)? {
        m.probe_interval_ms = v;
    }
    if let Some(v) = uint("monitor.probe_miss", raw.probe_miss, 255)? {
        m.probe_miss = v as u32;
    }
    if let Some(v) = uint("monitor.loss_window_s", raw.loss_window_s, 3600)? {
        m.loss_window_s = v;
    }
    if let Some(v) = raw.max_loss {
        m.max_loss = v;
    }
    if let Some(v) = uint("monitor.max_rtt_ms", raw.max_rtt_ms, 3_600_000)? {
        m.max_rtt_ms = v;
    }
    m.validate().map_err(|e| {
        let s = e.to_string();
        let key = s.split_whitespace().next().unwrap_or("monitor");
        field_err(&format!("monitor.{key}"), s)
    })?;
    Ok(m)
}

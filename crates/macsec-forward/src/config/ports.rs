//! The forwarder's `[ports]` section.
//!
//! ```toml
//! [ports]
//! plain = "eth1"    # towards the local network
//! secure = "eth2"   # towards the other site (or several: see [[links]])
//! ```

use super::value::field_err;
use super::ConfigError;
use serde::Deserialize;

/// `[ports]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPorts {
    plain: Option<String>,
    secure: Option<String>,
}

/// The `[ports]` section of the forwarder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSettings {
    /// Interface towards the local network (plain frames).
    pub plain: String,
}

impl RawPorts {
    /// The single secure interface, if given here.
    pub(crate) fn secure(&self) -> Option<&str> {
        self.secure.as_deref()
    }
}

/// Validates `[ports]`; `has_links` says whether `[[links]]` names the secure ports.
pub(crate) fn validate(raw: &RawPorts, has_links: bool) -> Result<PortSettings, ConfigError> {
    let plain = raw.plain.clone().ok_or_else(|| {
        field_err(
            "ports.plain",
            "missing: interface name towards the local network",
        )
    })?;
    if raw.secure.is_none() && !has_links {
        return Err(field_err(
            "ports.secure",
            "missing: interface name towards the MACsec link (or several, as [[links]])",
        ));
    }
    if raw.secure.as_deref() == Some(plain.as_str()) {
        return Err(field_err("ports.secure", "must differ from ports.plain"));
    }
    Ok(PortSettings { plain })
}

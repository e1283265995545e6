//! The forwarder's `[ports]` section.
//!
//! ```toml
//! [ports]
//! plain = "eth1"    # towards the local network
//! secure = "eth2"   # towards the other site
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
    /// Interface towards the other site (MACsec frames).
    pub secure: String,
}

/// Validates `[ports]`.
pub(crate) fn validate(raw: RawPorts) -> Result<PortSettings, ConfigError> {
    let plain = raw.plain.ok_or_else(|| {
        field_err(
            "ports.plain",
            "missing: interface name towards the local network",
        )
    })?;
    let secure = raw.secure.ok_or_else(|| {
        field_err(
            "ports.secure",
            "missing: interface name towards the MACsec link",
        )
    })?;
    if plain == secure {
        return Err(field_err("ports.secure", "must differ from ports.plain"));
    }
    Ok(PortSettings { plain, secure })
}

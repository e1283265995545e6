//! The forwarder's `[mka]` section: a pre-shared CAK (802.1X-2010 clause 9) and the
//! participant's policy.
//!
//! ```toml
//! [mka]
//! activation_key_file = "/etc/macsec/link1.key"  # from `macsec keygen`; or:
//! # activation_key = "mka1.<ckn>.<cak>.<check>"
//! # ckn = "<2..64 hex>" and cak = "<32|64 hex>" or cak_file = "path"
//! priority = 16            # key server priority, lower wins (802.1X 9.5)
//! cipher = "gcm-aes-128"   # distributed when this end is key server
//! rekey_interval = 3600    # seconds; optional
//! hello_time = 2.0         # seconds (802.1X-2010 Table 9-3)
//! life_time = 6.0
//! destination = "01:80:C2:00:00:03"
//! ethertype = 0x888E
//! vlan = 100               # optional: MKPDUs carry this 802.1Q VLAN ID (WAN MACsec over a
//!                          # provider VLAN); without it they are untagged
//! policy = "must-secure"   # or "should-secure": unprotected frames pass while no CA is secured
//! rekey_on_peer_loss = true
//! expiry_warning = 86400   # seconds before the last key's end: warn
//! ```
//!
//! A key chain instead of the one key ([`crate::keychain`]): several `[[mka.keys]]`, each
//! one of the three key forms above plus `start`/`end` (TOML datetimes or RFC 3339 text
//! with a UTC offset) and `fallback`.

use super::value::{field_err, u64_value, uint, IntOrText, SecretText};
use super::{read_key_file, read_secret_file, ConfigError, Ctx};
use crate::keychain::{ChainKey, KeyChain};
use macsec::crypto::{CipherSuite, SecretKey};
use macsec::mka::{ActivationKey, Capability, Ckn, ConfidentialityOffset};
use macsec::secy::{ConfidentialityOffset as Offset, Protection};
use macsec::wire::{MacAddr, Sci};
use serde::Deserialize;
use std::time::Duration;

/// `[mka]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMka {
    activation_key: Option<SecretText>,
    activation_key_file: Option<String>,
    ckn: Option<String>,
    cak: Option<SecretText>,
    cak_file: Option<String>,
    priority: Option<i128>,
    key_server: Option<bool>,
    cipher: Option<String>,
    rekey_interval: Option<i128>,
    hello_time: Option<f64>,
    life_time: Option<f64>,
    destination: Option<String>,
    ethertype: Option<IntOrText>,
    send_icv_indicator: Option<bool>,
    vlan: Option<i128>,
    keys: Option<Vec<RawKey>>,
    policy: Option<String>,
    rekey_on_peer_loss: Option<bool>,
    expiry_warning: Option<i128>,
}

/// One `[[mka.keys]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKey {
    activation_key: Option<SecretText>,
    activation_key_file: Option<String>,
    ckn: Option<String>,
    cak: Option<SecretText>,
    cak_file: Option<String>,
    start: Option<toml::Value>,
    end: Option<toml::Value>,
    fallback: Option<bool>,
}

/// The key fields of `[mka]` or of one `[[mka.keys]]`.
struct KeyFields<'a> {
    activation_key: Option<SecretText>,
    activation_key_file: Option<&'a str>,
    ckn: Option<&'a str>,
    cak: Option<SecretText>,
    cak_file: Option<&'a str>,
}

impl RawMka {
    /// The path of the first key written inline.
    pub(crate) fn inline_secret(&self) -> Option<String> {
        if self.activation_key.is_some() {
            return Some("mka.activation_key".into());
        } else if self.cak.is_some() {
            return Some("mka.cak".into());
        }
        for (i, k) in self.keys.iter().flatten().enumerate() {
            if k.activation_key.is_some() {
                return Some(format!("mka.keys[{i}].activation_key"));
            } else if k.cak.is_some() {
                return Some(format!("mka.keys[{i}].cak"));
            }
        }
        None
    }
}

/// What `[mka] policy` allows while no CA is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Nothing passes unless secured (the default).
    #[default]
    MustSecure,
    /// Frames pass unprotected, both ways, while no CA is secured; once one is, only
    /// protected frames are accepted.
    ShouldSecure,
}

impl Policy {
    /// The configuration's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::MustSecure => "must-secure",
            Policy::ShouldSecure => "should-secure",
        }
    }
}

/// Validated `[mka]` section.
#[derive(Debug)]
pub struct MkaSettings {
    /// The keys: one (the single-key form, or one `[[mka.keys]]`) or a chain.
    pub keys: KeyChain,
    /// What passes while no CA is secured.
    pub policy: Policy,
    /// As key server, rekey when a live peer is lost.
    pub rekey_on_peer_loss: bool,
    /// Warn this long before the last primary key ends.
    pub expiry_warning: Duration,
    /// Key server priority.
    pub priority: u8,
    /// Whether this end may be key server.
    pub key_server: bool,
    /// Suite distributed as key server.
    pub cipher: CipherSuite,
    /// Rekey interval.
    pub rekey_interval: Option<Duration>,
    /// MKA Hello Time.
    pub hello_time: Duration,
    /// MKA Life Time.
    pub life_time: Duration,
    /// MKPDU destination address.
    pub destination: MacAddr,
    /// MKPDU EtherType.
    pub ethertype: u16,
    /// Send the ICV Indicator parameter set.
    pub send_icv_indicator: bool,
    /// 802.1Q VLAN ID of the MKPDUs, sent and accepted; `None`: untagged. A peer whose
    /// SecY sits on a VLAN device (the kernel's macsec over `eth0.100`, a router's
    /// sub-interface) runs its KaY on that VLAN too.
    pub vlan: Option<u16>,
}

fn seconds(field: &str, v: Option<f64>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(field_err(
            field,
            format!("{s} seconds is out of range (0, 86400]"),
        )),
    }
}

/// The CKN and CAK from exactly one of the three ways to give them; `at` is where
/// they are (`mka` or `mka.keys[i]`).
fn ckn_and_cak(f: KeyFields<'_>, at: &str, ctx: &Ctx<'_>) -> Result<(Ckn, SecretKey), ConfigError> {
    match (
        f.activation_key,
        f.activation_key_file,
        f.ckn,
        f.cak,
        f.cak_file,
    ) {
        (Some(a), None, None, None, None) => {
            let k = ActivationKey::parse(&a.0)
                .map_err(|e| field_err(&format!("{at}.activation_key"), e.to_string()))?;
            Ok((k.ckn, k.cak))
        }
        (None, Some(p), None, None, None) => {
            let field = format!("{at}.activation_key_file");
            let path = ctx.base_dir.join(p);
            let text = read_secret_file(&field, &path, ctx.policy)?;
            let k = ActivationKey::parse(&text)
                .map_err(|e| field_err(&field, format!("{}: {e}", path.display())))?;
            Ok((k.ckn, k.cak))
        }
        (None, None, Some(n), c, cf) => {
            let ckn =
                Ckn::from_hex(n).map_err(|e| field_err(&format!("{at}.ckn"), e.to_string()))?;
            let cak = match (c, cf) {
                (Some(c), None) => SecretKey::from_hex(&c.0).map_err(|e| {
                    field_err(
                        &format!("{at}.cak"),
                        format!("{e}; a CAK is 128 or 256 bits"),
                    )
                })?,
                (None, Some(p)) => {
                    read_key_file(&format!("{at}.cak_file"), &ctx.base_dir.join(p), ctx.policy)?
                }
                _ => {
                    return Err(field_err(
                        &format!("{at}.cak"),
                        "give exactly one of cak or cak_file with ckn",
                    ))
                }
            };
            Ok((ckn, cak))
        }
        _ => Err(field_err(
            &format!("{at}.activation_key"),
            "give exactly one of: activation_key, activation_key_file, or ckn with cak/cak_file \
             (see `macsec keygen`)",
        )),
    }
}

/// A `start`/`end` value: a TOML datetime or an RFC 3339 string.
fn time_value(field: &str, v: &toml::Value) -> Result<std::time::SystemTime, ConfigError> {
    let r = match v {
        toml::Value::Datetime(d) => crate::keychain::from_toml_datetime(d),
        toml::Value::String(s) => crate::keychain::parse_time(s),
        other => Err(format!(
            "expected a date and time such as 2026-12-07T23:55:00Z, found a {}",
            other.type_str()
        )),
    };
    r.map_err(|e| field_err(field, e))
}

/// The key chain: the single-key form in `[mka]`, or `[[mka.keys]]`.
fn key_chain(raw: &mut RawMka, ctx: &Ctx<'_>) -> Result<KeyChain, ConfigError> {
    let single = raw.activation_key.is_some()
        || raw.activation_key_file.is_some()
        || raw.ckn.is_some()
        || raw.cak.is_some()
        || raw.cak_file.is_some();
    let Some(list) = raw.keys.take() else {
        let f = KeyFields {
            activation_key: raw.activation_key.take(),
            activation_key_file: raw.activation_key_file.as_deref(),
            ckn: raw.ckn.as_deref(),
            cak: raw.cak.take(),
            cak_file: raw.cak_file.as_deref(),
        };
        let (ckn, cak) = ckn_and_cak(f, "mka", ctx)?;
        return Ok(KeyChain::new(vec![ChainKey {
            ckn,
            cak,
            start: None,
            end: None,
            fallback: false,
            origin: "mka".into(),
        }]));
    };
    if single {
        return Err(field_err(
            "mka.keys",
            "give the key either in [mka] (one key) or as [[mka.keys]] (a key chain), not both",
        ));
    }
    if list.is_empty() {
        return Err(field_err(
            "mka.keys",
            "empty: give at least one [[mka.keys]] with a key",
        ));
    }
    let mut keys: Vec<ChainKey> = Vec::with_capacity(list.len());
    for (i, mut k) in list.into_iter().enumerate() {
        let at = format!("mka.keys[{i}]");
        let f = KeyFields {
            activation_key: k.activation_key.take(),
            activation_key_file: k.activation_key_file.as_deref(),
            ckn: k.ckn.as_deref(),
            cak: k.cak.take(),
            cak_file: k.cak_file.as_deref(),
        };
        let (ckn, cak) = ckn_and_cak(f, &at, ctx)?;
        let start = k
            .start
            .as_ref()
            .map(|v| time_value(&format!("{at}.start"), v))
            .transpose()?;
        let end = k
            .end
            .as_ref()
            .map(|v| time_value(&format!("{at}.end"), v))
            .transpose()?;
        if let (Some(s), Some(e)) = (start, end) {
            if e <= s {
                return Err(field_err(
                    &format!("{at}.end"),
                    format!(
                        "{} is not after start {}",
                        crate::keychain::rfc3339(e),
                        crate::keychain::rfc3339(s)
                    ),
                ));
            }
        }
        if let Some(j) = keys.iter().position(|o| o.ckn == ckn) {
            return Err(field_err(
                &format!("{at}.ckn"),
                format!(
                    "the same CKN as mka.keys[{j}]; each key of a chain is its own CA and needs its own CKN (`macsec keygen` makes one)"
                ),
            ));
        }
        keys.push(ChainKey {
            ckn,
            cak,
            start,
            end,
            fallback: k.fallback.unwrap_or(false),
            origin: at,
        });
    }
    if keys.iter().all(|k| k.fallback) {
        return Err(field_err(
            "mka.keys",
            "every key is a fallback key; a fallback is used only when no primary key works: add a key without fallback = true",
        ));
    }
    Ok(KeyChain::new(keys))
}

/// Validates `[mka]`.
pub(crate) fn validate(mut raw: RawMka, ctx: &Ctx<'_>) -> Result<MkaSettings, ConfigError> {
    let keys = key_chain(&mut raw, ctx)?;
    let policy = match raw.policy.as_deref() {
        None | Some("must-secure") => Policy::MustSecure,
        Some("should-secure") => Policy::ShouldSecure,
        Some(p) => {
            return Err(field_err(
                "mka.policy",
                format!("{p:?}: expected \"must-secure\" (nothing passes unless secured) or \"should-secure\" (unprotected frames pass while no CA is secured)"),
            ))
        }
    };
    let rekey_on_peer_loss = raw.rekey_on_peer_loss.unwrap_or(true);
    let expiry_warning = Duration::from_secs(
        uint("mka.expiry_warning", raw.expiry_warning, 86_400 * 365)?.unwrap_or(86_400),
    );
    let priority = uint("mka.priority", raw.priority, 255)?.unwrap_or(16) as u8;
    let key_server = raw.key_server.unwrap_or(true);
    let cipher = match &raw.cipher {
        None => CipherSuite::GcmAes128,
        Some(c) => c
            .parse()
            .map_err(|e: macsec::crypto::suite::UnknownCipherSuite| {
                field_err("mka.cipher", format!("{c:?}: {e}"))
            })?,
    };
    let rekey_interval = match uint("mka.rekey_interval", raw.rekey_interval, 86_400 * 365)? {
        None | Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
    };
    let hello_time = seconds("mka.hello_time", raw.hello_time, macsec::mka::HELLO_TIME)?;
    let life_time = seconds("mka.life_time", raw.life_time, macsec::mka::LIFE_TIME)?;
    let destination = match &raw.destination {
        None => MacAddr::PAE_GROUP,
        Some(d) => {
            let m: MacAddr = d
                .parse()
                .map_err(|e| field_err("mka.destination", format!("{d:?}: {e}")))?;
            if !m.is_multicast() {
                return Err(field_err(
                    "mka.destination",
                    "must be a group (multicast) address",
                ));
            }
            m
        }
    };
    let ethertype = match raw
        .ethertype
        .as_ref()
        .map(|e| u64_value("mka.ethertype", e))
        .transpose()?
    {
        None => macsec::wire::ethernet::ethertype::EAPOL,
        Some(e)
            if (0x0600..=0xFFFF).contains(&e)
                && e != u64::from(macsec::wire::ethernet::ethertype::MACSEC) =>
        {
            e as u16
        }
        Some(e) => {
            return Err(field_err(
                "mka.ethertype",
                format!("{e:#x} is not a usable EtherType (0x0600..=0xFFFF, not 0x88E5)"),
            ))
        }
    };
    let send_icv_indicator = raw.send_icv_indicator.unwrap_or(false);
    let vlan = match uint("mka.vlan", raw.vlan, 4094)? {
        None => None,
        Some(0) => {
            return Err(field_err(
                "mka.vlan",
                "0 is no VLAN: leave vlan out for untagged MKPDUs (VLAN IDs are 1..=4094)",
            ))
        }
        Some(v) => Some(v as u16),
    };
    if life_time <= hello_time {
        return Err(field_err("mka.life_time", "must be longer than hello_time"));
    }
    Ok(MkaSettings {
        keys,
        policy,
        rekey_on_peer_loss,
        expiry_warning,
        priority,
        key_server,
        cipher,
        rekey_interval,
        hello_time,
        life_time,
        destination,
        ethertype,
        send_icv_indicator,
        vlan,
    })
}

impl MkaSettings {
    /// The participant configuration for `key`'s CA on a SecY with SCI `sci` and
    /// transmit policy `protection` (integrity only or an offset, 802.1X 9.7.x
    /// Confidentiality Offset).
    pub fn participant_config(
        &self,
        key: &ChainKey,
        sci: Sci,
        protection: Protection,
    ) -> macsec::mka::Config {
        let mut c = macsec::mka::Config::new(key.cak.duplicate(), key.ckn, sci);
        c.rekey_on_peer_loss = self.rekey_on_peer_loss;
        c.key_server_priority = self.priority;
        c.key_server_capable = self.key_server;
        c.cipher_suite = self.cipher;
        c.confidentiality_offset = match protection {
            Protection::IntegrityOnly => ConfidentialityOffset::IntegrityOnly,
            Protection::Confidentiality(Offset::Zero) => ConfidentialityOffset::Offset0,
            Protection::Confidentiality(Offset::Thirty) => ConfidentialityOffset::Offset30,
            Protection::Confidentiality(Offset::Fifty) => ConfidentialityOffset::Offset50,
        };
        c.macsec_capability = Capability::ConfidentialityWithOffsets;
        c.hello_time = self.hello_time;
        c.life_time = self.life_time;
        c.rekey_interval = self.rekey_interval;
        c.destination = self.destination;
        c.ethertype = self.ethertype;
        c.send_icv_indicator = self.send_icv_indicator;
        c
    }
}

/// Maps a distributed confidentiality offset to the SecY's transmit protection.
pub fn protection_of(o: ConfidentialityOffset) -> Protection {
    match o {
        ConfidentialityOffset::IntegrityOnly => Protection::IntegrityOnly,
        ConfidentialityOffset::Offset0 => Protection::Confidentiality(Offset::Zero),
        ConfidentialityOffset::Offset30 => Protection::Confidentiality(Offset::Thirty),
        ConfidentialityOffset::Offset50 => Protection::Confidentiality(Offset::Fifty),
    }
}

//! The `[secy]` section: SecY parameters, `[secy.tx]` with `[[secy.tx.sa]]`, and
//! `[[secy.rx]]` with `[[secy.rx.sa]]` (static keys).

use super::value::{field_err, u64_value, uint, IntOrText, SecretText};
use super::{read_key_file, ConfigError, Ctx, Setting};
use macsec::crypto::{Backend, CipherSuite, Salt, SecretKey, Ssci};
use macsec::secy::{
    ConfidentialityOffset, Protection, ReplayMode, SecY, SecYConfig, SecYError, ValidateFrames,
    XpnParams,
};
use macsec::wire::Sci;
use serde::Deserialize;
use std::fmt;

/// `[secy]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecY {
    cipher: Option<String>,
    encrypt: Option<bool>,
    confidentiality_offset: Option<i128>,
    protect: Option<bool>,
    send_sci: Option<bool>,
    end_station: Option<bool>,
    scb: Option<bool>,
    validate: Option<String>,
    replay_protect: Option<bool>,
    replay_window: Option<i128>,
    replay_mode: Option<String>,
    vlan_in_clear: Option<i128>,
    sci: Option<String>,
    mtu: Option<i128>,
    pn_threshold: Option<f64>,
    backend: Option<String>,
    tx: Option<RawTx>,
    #[serde(default)]
    rx: Vec<RawRxSc>,
}

/// `[secy.tx]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTx {
    encoding_sa: Option<i128>,
    #[serde(default)]
    sa: Vec<RawSa>,
}

/// One `[[secy.rx]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRxSc {
    sci: Option<String>,
    #[serde(default)]
    sa: Vec<RawSa>,
}

/// One `[[secy.tx.sa]]` or `[[secy.rx.sa]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSa {
    an: Option<i128>,
    key: Option<SecretText>,
    key_file: Option<String>,
    pn: Option<IntOrText>,
    ssci: Option<IntOrText>,
    salt: Option<String>,
}

impl RawSecY {
    /// The path of the first SAK written inline.
    pub(crate) fn inline_secret(&self) -> Option<String> {
        let tx = self.tx.as_ref();
        if let Some(i) = tx.and_then(|t| t.sa.iter().position(|sa| sa.key.is_some())) {
            return Some(format!("secy.tx.sa[{i}].key"));
        }
        self.rx.iter().enumerate().find_map(|(i, sc)| {
            let j = sc.sa.iter().position(|sa| sa.key.is_some())?;
            Some(format!("secy.rx[{i}].sa[{j}].key"))
        })
    }
}

/// One SA from the configuration.
#[derive(Debug)]
pub struct SaSettings {
    /// Association Number.
    pub an: u8,
    /// The SAK.
    pub key: SecretKey,
    /// TX: next PN to send. RX: lowest acceptable PN.
    pub pn: u64,
    /// SSCI and salt (XPN only).
    pub xpn: Option<XpnParams>,
}

/// The transmit SC from `[secy.tx]`.
#[derive(Debug, Default)]
pub struct TxSettings {
    /// encodingSA.
    pub encoding_sa: u8,
    /// SAs.
    pub sas: Vec<SaSettings>,
}

/// One receive SC from `[[secy.rx]]`.
#[derive(Debug)]
pub struct RxScSettings {
    /// The peer's SCI.
    pub sci: Sci,
    /// SAs.
    pub sas: Vec<SaSettings>,
}

/// The `[secy]` section.
#[derive(Debug)]
pub struct SecYSettings {
    /// SecY parameters. `sci` is the configured one or, if absent, all zero (see `sci_set`).
    pub cfg: SecYConfig,
    /// Whether `secy.sci` was given (the forwarder can derive it from the port MAC).
    pub sci_set: bool,
    /// Transmit SC.
    pub tx: TxSettings,
    /// Receive SCs.
    pub rx: Vec<RxScSettings>,
}

/// `validate` values as the file spells them.
const VALIDATE: [(&str, ValidateFrames); 3] = [
    ("disabled", ValidateFrames::Disabled),
    ("check", ValidateFrames::Check),
    ("strict", ValidateFrames::Strict),
];

/// `replay_mode` values as the file spells them.
const REPLAY_MODE: [(&str, ReplayMode); 2] = [
    ("lower-bound", ReplayMode::LowerBound),
    ("reject-duplicates", ReplayMode::RejectDuplicates),
];

fn spelling<T: PartialEq + Copy>(table: &[(&'static str, T)], v: T) -> &'static str {
    table.iter().find(|(_, x)| *x == v).map_or("?", |(n, _)| n)
}

impl fmt::Display for Setting<CipherSuite> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cipher = \"{}\"", self.0.name())
    }
}

impl fmt::Display for Setting<ValidateFrames> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "validate = \"{}\"", spelling(&VALIDATE, self.0))
    }
}

impl fmt::Display for Setting<ReplayMode> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replay_mode = \"{}\"", spelling(&REPLAY_MODE, self.0))
    }
}

impl fmt::Display for Setting<ConfidentialityOffset> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "confidentiality_offset = {}", self.0.octets())
    }
}

impl fmt::Display for Setting<Protection> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Protection::IntegrityOnly => f.write_str("encrypt = false"),
            Protection::Confidentiality(o) => write!(f, "encrypt = true, {}", Setting(o)),
        }
    }
}

impl fmt::Display for Setting<Backend> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend = \"{}\"", self.0.name())
    }
}

/// The SA's key: inline or from its key file, and of the cipher suite's length.
fn sa_key(
    raw: &mut RawSa,
    path: &str,
    ctx: &Ctx<'_>,
    cipher: CipherSuite,
) -> Result<SecretKey, ConfigError> {
    let key = match (raw.key.take(), raw.key_file.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(field_err(
                &format!("{path}.key"),
                "give either key or key_file, not both",
            ))
        }
        (Some(k), None) => SecretKey::from_hex(&k.0)
            .map_err(|e| field_err(&format!("{path}.key"), e.to_string()))?,
        (None, Some(p)) => read_key_file(
            &format!("{path}.key_file"),
            &ctx.base_dir.join(p),
            ctx.policy,
        )?,
        (None, None) => {
            return Err(field_err(
                &format!("{path}.key"),
                "missing (hex SAK, or key_file = \"path\")",
            ))
        }
    };
    let want = cipher.key_len();
    if key.len() != want {
        return Err(field_err(
            &format!("{path}.key"),
            format!(
                "{cipher} needs a {want}-octet key ({} hex digits), got {} octets",
                want * 2,
                key.len()
            ),
        ));
    }
    Ok(key)
}

/// An SSCI: an integer, or up to 8 hex digits (`0x` optional).
fn ssci(field: &str, v: &IntOrText) -> Result<Ssci, ConfigError> {
    let bad = || field_err(field, "expected 8 hex digits, e.g. \"7A30C118\"");
    match v {
        IntOrText::Int(i) => u32::try_from(*i).map(Ssci).map_err(|_| bad()),
        IntOrText::Text(s) => {
            let t = s.trim();
            let t = t.strip_prefix("0x").unwrap_or(t);
            if t.is_empty() || t.len() > 8 {
                return Err(bad());
            }
            let mut b = [0u8; 4];
            hex::decode_to_slice(format!("{t:0>8}"), &mut b).map_err(|_| bad())?;
            Ok(Ssci(u32::from_be_bytes(b)))
        }
    }
}

fn sa(
    mut raw: RawSa,
    path: &str,
    ctx: &Ctx<'_>,
    cipher: CipherSuite,
    tx: bool,
) -> Result<SaSettings, ConfigError> {
    let an = uint(&format!("{path}.an"), raw.an, 3)?
        .ok_or_else(|| field_err(&format!("{path}.an"), "missing (association number 0..3)"))?
        as u8;
    let key = sa_key(&mut raw, path, ctx, cipher)?;
    let max = cipher.max_pn();
    let pn_field = format!("{path}.pn");
    let pn = raw
        .pn
        .as_ref()
        .map(|p| u64_value(&pn_field, p))
        .transpose()?
        .unwrap_or(1);
    if pn == 0 || pn > max {
        return Err(field_err(
            &pn_field,
            format!(
                "{pn} is out of range for {cipher}: {} must be 1..={max}",
                if tx {
                    "the next PN to send"
                } else {
                    "the lowest acceptable PN"
                }
            ),
        ));
    }
    let ssci = raw
        .ssci
        .as_ref()
        .map(|v| ssci(&format!("{path}.ssci"), v))
        .transpose()?;
    let salt = raw
        .salt
        .as_deref()
        .map(|s| {
            s.parse::<Salt>()
                .map_err(|_| field_err(&format!("{path}.salt"), "expected 24 hex digits (96 bits)"))
        })
        .transpose()?;
    let xpn = match (cipher.is_xpn(), ssci, salt) {
        (true, Some(ssci), Some(salt)) => Some(XpnParams { ssci, salt }),
        (true, None, _) => {
            return Err(field_err(
                &format!("{path}.ssci"),
                format!("missing: {cipher} needs ssci and salt"),
            ))
        }
        (true, _, None) => {
            return Err(field_err(
                &format!("{path}.salt"),
                format!("missing: {cipher} needs ssci and salt"),
            ))
        }
        (false, None, None) => None,
        (false, _, _) => {
            return Err(field_err(
                &format!("{path}.{}", if ssci.is_some() { "ssci" } else { "salt" }),
                format!(
                    "only the XPN cipher suites use ssci and salt, this SecY has {}",
                    Setting(cipher)
                ),
            ))
        }
    };
    Ok(SaSettings { an, key, pn, xpn })
}

fn sas(
    list: Vec<RawSa>,
    path: &str,
    ctx: &Ctx<'_>,
    cipher: CipherSuite,
    tx: bool,
) -> Result<Vec<SaSettings>, ConfigError> {
    let mut out: Vec<SaSettings> = Vec::new();
    for (i, raw) in list.into_iter().enumerate() {
        let s = sa(raw, &format!("{path}[{i}]"), ctx, cipher, tx)?;
        if out.iter().any(|o| o.an == s.an) {
            return Err(field_err(
                &format!("{path}[{i}].an"),
                format!("AN {} is used twice", s.an),
            ));
        }
        out.push(s);
    }
    Ok(out)
}

fn sci(field: &str, s: Option<&str>) -> Result<Option<Sci>, ConfigError> {
    let what = "an SCI is 16 hex digits, MAC address then port, e.g. \"5254001234560001\"";
    s.map(|s| {
        s.parse::<Sci>()
            .map_err(|e| field_err(field, format!("{e}: {what}")))
    })
    .transpose()
}

/// Validates `[secy]`.
pub(crate) fn validate(raw: RawSecY, ctx: &Ctx<'_>) -> Result<SecYSettings, ConfigError> {
    let mut cfg = SecYConfig::default();
    if let Some(c) = &raw.cipher {
        cfg.cipher = c
            .parse()
            .map_err(|e: macsec::crypto::suite::UnknownCipherSuite| {
                field_err("secy.cipher", format!("{c:?}: {e}"))
            })?;
    }
    let encrypt = raw.encrypt.unwrap_or(true);
    let offset = raw.confidentiality_offset.unwrap_or(0);
    let offset = u64::try_from(offset)
        .ok()
        .and_then(ConfidentialityOffset::from_octets)
        .ok_or_else(|| {
            field_err(
                "secy.confidentiality_offset",
                format!("{offset} is not supported: use 0, 30 or 50"),
            )
        })?;
    if !encrypt && offset != ConfidentialityOffset::Zero {
        return Err(field_err(
            "secy.confidentiality_offset",
            "an offset only applies with encrypt = true",
        ));
    }
    cfg.protection = if encrypt {
        Protection::Confidentiality(offset)
    } else {
        Protection::IntegrityOnly
    };
    if let Some(p) = raw.protect {
        cfg.protect_frames = p;
    }
    if let Some(v) = raw.send_sci {
        cfg.send_sci = v;
    }
    cfg.end_station = raw.end_station.unwrap_or(false);
    cfg.scb = raw.scb.unwrap_or(false);
    if (cfg.end_station || cfg.scb) && raw.send_sci.is_none() {
        // The SCI is implicit with ES or SCB; do not make the operator say so twice.
        cfg.send_sci = false;
    }
    if let Some(v) = &raw.validate {
        let l = v.to_ascii_lowercase();
        cfg.validate = VALIDATE
            .iter()
            .find(|(n, _)| *n == l)
            .map(|(_, x)| *x)
            .ok_or_else(|| {
                field_err(
                    "secy.validate",
                    format!("{v:?}: expected disabled, check or strict"),
                )
            })?;
    }
    if let Some(v) = raw.replay_protect {
        cfg.replay_protect = v;
    }
    cfg.replay_window =
        uint("secy.replay_window", raw.replay_window, u32::MAX as u64)?.unwrap_or(0) as u32;
    if let Some(m) = &raw.replay_mode {
        cfg.replay_mode = REPLAY_MODE
            .iter()
            .find(|(n, _)| n == m)
            .map(|(_, x)| *x)
            .ok_or_else(|| {
                field_err(
                    "secy.replay_mode",
                    format!("{m:?}: expected \"lower-bound\" (802.1AE) or \"reject-duplicates\""),
                )
            })?;
    }
    cfg.vlan_in_clear = uint("secy.vlan_in_clear", raw.vlan_in_clear, 2)?.unwrap_or(0) as u8;
    let own_sci = sci("secy.sci", raw.sci.as_deref())?;
    cfg.sci = own_sci.unwrap_or_default();
    cfg.mtu = uint("secy.mtu", raw.mtu, 65535)?.map(|m| m as usize);
    if let Some(p) = raw.pn_threshold {
        cfg.pn_threshold = p;
    }
    if let Some(b) = &raw.backend {
        cfg.backend = Backend::ALL
            .iter()
            .copied()
            .find(|x| x.name() == b)
            .ok_or_else(|| {
                let names: Vec<_> = Backend::ALL.iter().map(|b| b.name()).collect();
                field_err(
                    "secy.backend",
                    format!("{b:?}: this build has {}", names.join(", ")),
                )
            })?;
    }
    if let Err(e) = cfg.check() {
        let field = match &e {
            SecYError::ReplayWindow { .. } => "secy.replay_window",
            SecYError::PnThreshold(_) => "secy.pn_threshold",
            SecYError::VlanInClear(_) => "secy.vlan_in_clear",
            SecYError::EndStationPort(_) => "secy.sci",
            _ => "secy.send_sci",
        };
        return Err(field_err(field, e.to_string()));
    }
    let cipher = cfg.cipher;
    let tx = match raw.tx {
        None => TxSettings::default(),
        Some(t) => {
            let encoding_sa = uint("secy.tx.encoding_sa", t.encoding_sa, 3)?.unwrap_or(0) as u8;
            let sas = sas(t.sa, "secy.tx.sa", ctx, cipher, true)?;
            if !sas.is_empty() && !sas.iter().any(|s| s.an == encoding_sa) {
                return Err(field_err(
                    "secy.tx.encoding_sa",
                    format!("no [[secy.tx.sa]] has an = {encoding_sa}"),
                ));
            }
            TxSettings { encoding_sa, sas }
        }
    };
    let mut rx: Vec<RxScSettings> = Vec::new();
    for (i, r) in raw.rx.into_iter().enumerate() {
        let path = format!("secy.rx[{i}]");
        let peer = sci(&format!("{path}.sci"), r.sci.as_deref())?.ok_or_else(|| {
            field_err(
                &format!("{path}.sci"),
                "missing: the peer's SCI (16 hex digits)",
            )
        })?;
        let sas = sas(r.sa, &format!("{path}.sa"), ctx, cipher, false)?;
        if rx.iter().any(|r| r.sci == peer) {
            return Err(field_err(
                &format!("{path}.sci"),
                format!("SCI {peer} appears twice"),
            ));
        }
        rx.push(RxScSettings { sci: peer, sas });
    }
    Ok(SecYSettings {
        cfg,
        sci_set: own_sci.is_some(),
        tx,
        rx,
    })
}

impl SecYSettings {
    /// Builds the SecY with every configured SA installed and the encoding SA selected.
    pub fn build(&self) -> Result<SecY, ConfigError> {
        let mut secy = SecY::new(self.cfg.clone()).map_err(|e| field_err("secy", e.to_string()))?;
        for (i, sa) in self.tx.sas.iter().enumerate() {
            secy.tx
                .install_sa(sa.an, &sa.key, sa.pn, sa.xpn)
                .map_err(|e| field_err(&format!("secy.tx.sa[{i}]"), e.to_string()))?;
        }
        secy.tx
            .set_encoding_sa(self.tx.encoding_sa)
            .map_err(|e| field_err("secy.tx.encoding_sa", e.to_string()))?;
        for (i, sc) in self.rx.iter().enumerate() {
            secy.rx
                .add_sc(sc.sci)
                .map_err(|e| field_err(&format!("secy.rx[{i}].sci"), e.to_string()))?;
            for (j, sa) in sc.sas.iter().enumerate() {
                secy.rx
                    .install_sa(sc.sci, sa.an, &sa.key, sa.pn, sa.xpn)
                    .map_err(|e| field_err(&format!("secy.rx[{i}].sa[{j}]"), e.to_string()))?;
            }
        }
        secy.tx.set_rx_sc_count(self.rx.len());
        Ok(secy)
    }
}

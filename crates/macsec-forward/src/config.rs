//! The TOML configuration shared by `macsec pcap` and `macsec forward`.
//!
//! Keys follow `ip macsec` names. Every error names the field (`secy.tx.sa[0].key`)
//! and what is wrong with it, and never contains key material. The file is walked by
//! hand rather than derived with serde so unknown keys are caught with their path and
//! the messages stay precise.
//!
//! ```toml
//! [secy]
//! cipher = "gcm-aes-128"          # gcm-aes-256 | gcm-aes-xpn-128 | gcm-aes-xpn-256
//! encrypt = true                  # false = integrity only
//! confidentiality_offset = 0      # 0 | 30 | 50
//! send_sci = true
//! validate = "strict"             # disabled | check | strict
//! replay_protect = true
//! replay_window = 0
//! sci = "5254001234020001"
//! [secy.tx]
//! encoding_sa = 0
//! [[secy.tx.sa]]
//! an = 0
//! key = "AD7A2BD03EAC835A6F620FDCB506B345"
//! pn = 1
//! [[secy.rx]]
//! sci = "5254001234010001"
//! [[secy.rx.sa]]
//! an = 0
//! key = "AD7A2BD03EAC835A6F620FDCB506B345"
//! pn = 1
//! ```

use macsec::crypto::{Backend, CipherSuite, Salt, SecretKey, Ssci};
use macsec::secy::{
    ConfidentialityOffset, Protection, ReplayMode, SecY, SecYConfig, ValidateFrames, XpnParams,
};
use macsec::wire::Sci;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// A configuration error: which field, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not TOML. Only the position and the parser's message are shown,
    /// never the line itself (it might hold a key).
    #[error("{path}: not valid TOML at line {line}, column {column}: {message}")]
    Syntax {
        /// File.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Parser message.
        message: String,
    },
    /// A field is missing, of the wrong type, or has a bad value.
    #[error("{field}: {problem}")]
    Field {
        /// Dotted path, e.g. `secy.tx.sa[0].key`.
        field: String,
        /// What is wrong and what is expected.
        problem: String,
    },
}

fn field_err(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// Whether key files readable by group or others are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyFilePolicy {
    /// Refuse key files with any group/other permission bit (like ssh does).
    #[default]
    Strict,
    /// Accept them (the operator passed the explicitly unsafe override).
    AllowUnsafePermissions,
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

/// The `[ports]` section of the forwarder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSettings {
    /// Interface towards the local network (plain frames).
    pub plain: String,
    /// Interface towards the other site (MACsec frames).
    pub secure: String,
}

/// A whole configuration file.
#[derive(Debug)]
pub struct Config {
    /// `[secy]`.
    pub secy: SecYSettings,
    /// `[ports]`, if present.
    pub ports: Option<PortSettings>,
    /// Other top-level tables (e.g. `[mka]`, `[forward]`) for the front end to read,
    /// with their names. Unknown names are an error there.
    pub extra: Table,
    /// Directory relative paths (key files) are resolved against.
    pub base_dir: PathBuf,
}

/// Reads a TOML table field by field, tracking the path and unknown keys.
pub struct Fields<'a> {
    path: String,
    table: &'a Table,
    used: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    /// Wraps `table` found at `path` (e.g. `secy.tx`).
    pub fn new(path: impl Into<String>, table: &'a Table) -> Fields<'a> {
        Fields {
            path: path.into(),
            table,
            used: Vec::new(),
        }
    }

    /// The dotted name of `key` in this table.
    pub fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.push(key);
        self.table.get(key)
    }

    /// An optional boolean.
    pub fn bool(&mut self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(field_err(
                &self.name(key),
                format!("expected true or false, got {}", type_name(v)),
            )),
        }
    }

    /// An optional non-negative integer no larger than `max`.
    pub fn uint(&mut self, key: &'static str, max: u64) -> Result<Option<u64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) if *i >= 0 && (*i as u64) <= max => Ok(Some(*i as u64)),
            Some(Value::Integer(i)) => Err(field_err(
                &self.name(key),
                format!("{i} is out of range 0..={max}"),
            )),
            Some(v) => Err(field_err(
                &self.name(key),
                format!("expected an integer, got {}", type_name(v)),
            )),
        }
    }

    /// An optional float.
    pub fn float(&mut self, key: &'static str) -> Result<Option<f64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Float(f)) => Ok(Some(*f)),
            Some(Value::Integer(i)) => Ok(Some(*i as f64)),
            Some(v) => Err(field_err(
                &self.name(key),
                format!("expected a number, got {}", type_name(v)),
            )),
        }
    }

    /// An optional string.
    pub fn str(&mut self, key: &'static str) -> Result<Option<&'a str>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(field_err(
                &self.name(key),
                format!("expected a string, got {}", type_name(v)),
            )),
        }
    }

    /// An optional 64-bit unsigned number given as an integer, or as a string in
    /// decimal or `0x` hex (TOML integers stop at 2^63 - 1; XPN PNs do not).
    pub fn u64_or_string(&mut self, key: &'static str) -> Result<Option<u64>, ConfigError> {
        let name = self.name(key);
        match self.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(Value::Integer(i)) => Err(field_err(&name, format!("{i} is negative"))),
            Some(Value::String(s)) => parse_u64_text(s).map(Some).ok_or_else(|| {
                field_err(
                    &name,
                    format!("{s:?} is not a decimal or 0x-hex 64-bit number"),
                )
            }),
            Some(v) => Err(field_err(
                &name,
                format!("expected an integer or a string, got {}", type_name(v)),
            )),
        }
    }

    /// An optional sub-table.
    pub fn table(&mut self, key: &'static str) -> Result<Option<&'a Table>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t)),
            Some(v) => Err(field_err(
                &self.name(key),
                format!("expected a table, got {}", type_name(v)),
            )),
        }
    }

    /// An optional array of tables (`[[key]]`).
    pub fn tables(&mut self, key: &'static str) -> Result<Vec<&'a Table>, ConfigError> {
        let name = self.name(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Table(t) => Ok(t),
                    v => Err(field_err(
                        &format!("{name}[{i}]"),
                        format!("expected a table, got {}", type_name(v)),
                    )),
                })
                .collect(),
            Some(v) => Err(field_err(
                &name,
                format!(
                    "expected an array of tables ([[{key}]]), got {}",
                    type_name(v)
                ),
            )),
        }
    }

    /// Fails on any key that was not asked for.
    pub fn finish(self) -> Result<(), ConfigError> {
        for k in self.table.keys() {
            if !self.used.contains(&k.as_str()) {
                let mut known = self.used.clone();
                known.sort_unstable();
                known.dedup();
                return Err(field_err(
                    &self.name(k),
                    format!("unknown key; known keys here: {}", known.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Parses a decimal or `0x`-hex u64 (underscores allowed).
pub fn parse_u64_text(s: &str) -> Option<u64> {
    let t: String = s.trim().chars().filter(|c| *c != '_').collect();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        t.parse().ok()
    }
}

/// Reads a secret file whole, refusing files that group or others can read unless
/// `policy` allows it (as ssh does for private keys). Errors name `field` and the file.
pub fn read_secret_file(
    field: &str,
    path: &Path,
    policy: KeyFilePolicy,
) -> Result<zeroize::Zeroizing<String>, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| field_err(field, format!("cannot read {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 && policy == KeyFilePolicy::Strict {
        return Err(field_err(
            field,
            format!(
                "key file {} is accessible by group or others (mode {mode:03o}); run `chmod 600 {}` (or pass --unsafe-key-permissions to accept it)",
                path.display(),
                path.display()
            ),
        ));
    }
    std::fs::read_to_string(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| field_err(field, format!("cannot read {}: {e}", path.display())))
}

/// Reads a key from a file (hex text, whitespace ignored), refusing files others can
/// read unless `policy` allows it.
pub fn read_key_file(
    field: &str,
    path: &Path,
    policy: KeyFilePolicy,
) -> Result<SecretKey, ConfigError> {
    let text = read_secret_file(field, path, policy)?;
    let hex: zeroize::Zeroizing<String> =
        zeroize::Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
    SecretKey::from_hex(&hex)
        .map_err(|e| field_err(field, format!("key file {}: {e}", path.display())))
}

struct Ctx<'a> {
    base_dir: &'a Path,
    policy: KeyFilePolicy,
    cipher: CipherSuite,
}

fn parse_sa(f: &mut Fields<'_>, ctx: &Ctx<'_>, tx: bool) -> Result<SaSettings, ConfigError> {
    let an = f
        .uint("an", 3)?
        .ok_or_else(|| field_err(&f.name("an"), "missing (association number 0..3)"))?
        as u8;
    let key = match (f.str("key")?, f.str("key_file")?) {
        (Some(_), Some(_)) => {
            return Err(field_err(
                &f.name("key"),
                "give either key or key_file, not both",
            ))
        }
        (Some(k), None) => {
            SecretKey::from_hex(k).map_err(|e| field_err(&f.name("key"), e.to_string()))?
        }
        (None, Some(p)) => read_key_file(&f.name("key_file"), &ctx.base_dir.join(p), ctx.policy)?,
        (None, None) => {
            return Err(field_err(
                &f.name("key"),
                "missing (hex SAK, or key_file = \"path\")",
            ))
        }
    };
    let want = ctx.cipher.key_len();
    if key.len() != want {
        return Err(field_err(
            &f.name("key"),
            format!(
                "{} needs a {want}-octet key ({} hex digits), got {} octets",
                ctx.cipher,
                want * 2,
                key.len()
            ),
        ));
    }
    let max = ctx.cipher.max_pn();
    let pn = f.u64_or_string("pn")?.unwrap_or(1);
    if pn == 0 || pn > max {
        return Err(field_err(
            &f.name("pn"),
            format!(
                "{pn} is out of range for {}: {} must be 1..={max}",
                ctx.cipher,
                if tx {
                    "the next PN to send"
                } else {
                    "the lowest acceptable PN"
                }
            ),
        ));
    }
    let ssci = match f.get("ssci") {
        None => None,
        Some(Value::Integer(i)) if *i >= 0 && *i <= u32::MAX as i64 => Some(Ssci(*i as u32)),
        Some(Value::String(s)) => {
            let t = s.trim().trim_start_matches("0x");
            match u32::from_str_radix(t, 16) {
                Ok(v) if t.len() <= 8 => Some(Ssci(v)),
                _ => {
                    return Err(field_err(
                        &f.name("ssci"),
                        "expected 8 hex digits, e.g. \"7A30C118\"",
                    ))
                }
            }
        }
        Some(_) => {
            return Err(field_err(
                &f.name("ssci"),
                "expected 8 hex digits, e.g. \"7A30C118\"",
            ))
        }
    };
    let salt = match f.str("salt")? {
        None => None,
        Some(s) => Some(
            s.parse::<Salt>()
                .map_err(|_| field_err(&f.name("salt"), "expected 24 hex digits (96 bits)"))?,
        ),
    };
    let xpn = match (ctx.cipher.is_xpn(), ssci, salt) {
        (true, Some(ssci), Some(salt)) => Some(XpnParams { ssci, salt }),
        (true, None, _) => {
            return Err(field_err(
                &f.name("ssci"),
                format!("missing: {} needs ssci and salt", ctx.cipher),
            ))
        }
        (true, _, None) => {
            return Err(field_err(
                &f.name("salt"),
                format!("missing: {} needs ssci and salt", ctx.cipher),
            ))
        }
        (false, None, None) => None,
        (false, _, _) => {
            return Err(field_err(
                &f.name(if ssci.is_some() { "ssci" } else { "salt" }),
                format!(
                    "only the XPN cipher suites use ssci and salt, this SecY is {}",
                    ctx.cipher
                ),
            ))
        }
    };
    Ok(SaSettings { an, key, pn, xpn })
}

fn parse_sas(
    list: Vec<&Table>,
    path: &str,
    ctx: &Ctx<'_>,
    tx: bool,
) -> Result<Vec<SaSettings>, ConfigError> {
    let mut out: Vec<SaSettings> = Vec::new();
    for (i, t) in list.into_iter().enumerate() {
        let mut f = Fields::new(format!("{path}[{i}]"), t);
        let sa = parse_sa(&mut f, ctx, tx)?;
        f.finish()?;
        if out.iter().any(|s| s.an == sa.an) {
            return Err(field_err(
                &format!("{path}[{i}].an"),
                format!("AN {} is used twice", sa.an),
            ));
        }
        out.push(sa);
    }
    Ok(out)
}

fn parse_sci(f: &mut Fields<'_>, key: &'static str) -> Result<Option<Sci>, ConfigError> {
    let name = f.name(key);
    f.str(key)?
        .map(|s| {
            s.parse::<Sci>().map_err(|e| {
                field_err(&name, format!("{e}: an SCI is 16 hex digits, MAC address then port, e.g. \"5254001234560001\""))
            })
        })
        .transpose()
}

fn parse_secy(
    t: &Table,
    base_dir: &Path,
    policy: KeyFilePolicy,
) -> Result<SecYSettings, ConfigError> {
    let mut f = Fields::new("secy", t);
    let mut cfg = SecYConfig::default();
    if let Some(c) = f.str("cipher")? {
        cfg.cipher = c
            .parse()
            .map_err(|e: macsec::crypto::suite::UnknownCipherSuite| {
                field_err("secy.cipher", format!("{c:?}: {e}"))
            })?;
    }
    let encrypt = f.bool("encrypt")?.unwrap_or(true);
    let offset = f.uint("confidentiality_offset", u64::MAX)?.unwrap_or(0);
    let offset = ConfidentialityOffset::from_octets(offset).ok_or_else(|| {
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
    if let Some(p) = f.bool("protect")? {
        cfg.protect_frames = p;
    }
    if let Some(v) = f.bool("send_sci")? {
        cfg.send_sci = v;
    }
    cfg.end_station = f.bool("end_station")?.unwrap_or(false);
    cfg.scb = f.bool("scb")?.unwrap_or(false);
    if (cfg.end_station || cfg.scb) && !t.contains_key("send_sci") {
        // The SCI is implicit with ES or SCB; do not make the operator say so twice.
        cfg.send_sci = false;
    }
    if let Some(v) = f.str("validate")? {
        cfg.validate = match v.to_ascii_lowercase().as_str() {
            "disabled" => ValidateFrames::Disabled,
            "check" => ValidateFrames::Check,
            "strict" => ValidateFrames::Strict,
            _ => {
                return Err(field_err(
                    "secy.validate",
                    format!("{v:?}: expected disabled, check or strict"),
                ))
            }
        };
    }
    if let Some(v) = f.bool("replay_protect")? {
        cfg.replay_protect = v;
    }
    cfg.replay_window = f.uint("replay_window", u32::MAX as u64)?.unwrap_or(0) as u32;
    if let Some(m) = f.str("replay_mode")? {
        cfg.replay_mode = match m {
            "lower-bound" => ReplayMode::LowerBound,
            "reject-duplicates" => ReplayMode::RejectDuplicates,
            _ => {
                return Err(field_err(
                    "secy.replay_mode",
                    format!("{m:?}: expected \"lower-bound\" (802.1AE) or \"reject-duplicates\""),
                ))
            }
        };
    }
    cfg.vlan_in_clear = f.uint("vlan_in_clear", 2)?.unwrap_or(0) as u8;
    let sci = parse_sci(&mut f, "sci")?;
    cfg.sci = sci.unwrap_or_default();
    cfg.mtu = f.uint("mtu", 65535)?.map(|m| m as usize);
    if let Some(p) = f.float("pn_threshold")? {
        cfg.pn_threshold = p;
    }
    if let Some(b) = f.str("backend")? {
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
            macsec::secy::SecYError::ReplayWindow { .. } => "secy.replay_window",
            macsec::secy::SecYError::PnThreshold(_) => "secy.pn_threshold",
            macsec::secy::SecYError::VlanInClear(_) => "secy.vlan_in_clear",
            macsec::secy::SecYError::EndStationPort(_) => "secy.sci",
            _ => "secy.send_sci",
        };
        return Err(field_err(field, e.to_string()));
    }
    let ctx = Ctx {
        base_dir,
        policy,
        cipher: cfg.cipher,
    };
    let tx = match f.table("tx")? {
        None => TxSettings::default(),
        Some(tt) => {
            let mut tf = Fields::new("secy.tx", tt);
            let encoding_sa = tf.uint("encoding_sa", 3)?.unwrap_or(0) as u8;
            let sas = parse_sas(tf.tables("sa")?, "secy.tx.sa", &ctx, true)?;
            tf.finish()?;
            if !sas.is_empty() && !sas.iter().any(|s| s.an == encoding_sa) {
                return Err(field_err(
                    "secy.tx.encoding_sa",
                    format!("no [[secy.tx.sa]] has an = {encoding_sa}"),
                ));
            }
            TxSettings { encoding_sa, sas }
        }
    };
    let mut rx = Vec::new();
    for (i, rt) in f.tables("rx")?.into_iter().enumerate() {
        let path = format!("secy.rx[{i}]");
        let mut rf = Fields::new(path.clone(), rt);
        let sci = parse_sci(&mut rf, "sci")?.ok_or_else(|| {
            field_err(
                &format!("{path}.sci"),
                "missing: the peer's SCI (16 hex digits)",
            )
        })?;
        let sas = parse_sas(rf.tables("sa")?, &format!("{path}.sa"), &ctx, false)?;
        rf.finish()?;
        if rx.iter().any(|r: &RxScSettings| r.sci == sci) {
            return Err(field_err(
                &format!("{path}.sci"),
                format!("SCI {sci} appears twice"),
            ));
        }
        rx.push(RxScSettings { sci, sas });
    }
    f.finish()?;
    Ok(SecYSettings {
        cfg,
        sci_set: sci.is_some(),
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

impl Config {
    /// Parses a configuration text; `base_dir` resolves relative key file paths and
    /// `origin` names the file in messages.
    pub fn parse(
        text: &str,
        origin: &str,
        base_dir: &Path,
        policy: KeyFilePolicy,
    ) -> Result<Config, ConfigError> {
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            let (line, column) = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    (line, column)
                })
                .unwrap_or((0, 0));
            let mut message = e.message().to_string();
            if message.contains("too large") {
                message.push_str(
                    " (TOML integers stop at 2^63-1: write larger PNs as a string, e.g. pn = \"0xFFFFFFFFFFFFFFF0\")",
                );
            }
            ConfigError::Syntax {
                path: origin.to_string(),
                line,
                column,
                message,
            }
        })?;
        let mut top = Fields::new("", &table);
        let secy_t = top
            .table("secy")?
            .ok_or_else(|| field_err("secy", "missing: the [secy] section is required"))?;
        let secy = parse_secy(secy_t, base_dir, policy)?;
        let ports = match top.table("ports")? {
            None => None,
            Some(pt) => {
                let mut pf = Fields::new("ports", pt);
                let plain = pf.str("plain")?.ok_or_else(|| {
                    field_err(
                        "ports.plain",
                        "missing: interface name towards the local network",
                    )
                })?;
                let secure = pf.str("secure")?.ok_or_else(|| {
                    field_err(
                        "ports.secure",
                        "missing: interface name towards the MACsec link",
                    )
                })?;
                pf.finish()?;
                if plain == secure {
                    return Err(field_err("ports.secure", "must differ from ports.plain"));
                }
                Some(PortSettings {
                    plain: plain.to_string(),
                    secure: secure.to_string(),
                })
            }
        };
        let mut extra = Table::new();
        for (k, v) in table.iter() {
            if k != "secy" && k != "ports" {
                extra.insert(k.clone(), v.clone());
            }
        }
        Ok(Config {
            secy,
            ports,
            extra,
            base_dir: base_dir.to_path_buf(),
        })
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path, policy: KeyFilePolicy) -> Result<Config, ConfigError> {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?);
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &path.display().to_string(), &base, policy)
    }

    /// Fails if a top-level table other than `known` is present.
    pub fn reject_unknown_sections(&self, known: &[&str]) -> Result<(), ConfigError> {
        for k in self.extra.keys() {
            if !known.contains(&k.as_str()) {
                let mut all = vec!["secy", "ports"];
                all.extend_from_slice(known);
                return Err(field_err(
                    k,
                    format!("unknown section; known sections: {}", all.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[secy]
cipher = "gcm-aes-xpn-128"
encrypt = true
confidentiality_offset = 30
sci = "5254001234020001"
replay_window = 64
[secy.tx]
encoding_sa = 1
[[secy.tx.sa]]
an = 1
key = "AD7A2BD03EAC835A6F620FDCB506B345"
pn = "0xFFFFFFFFFFFFFFF0"
ssci = "7A30C119"
salt = "E630E81A48DE86A21C66FA6D"
[[secy.rx]]
sci = "5254001234010001"
[[secy.rx.sa]]
an = 1
key = "AD7A2BD03EAC835A6F620FDCB506B345"
pn = "18446744073709551600"
ssci = "7A30C118"
salt = "E630E81A48DE86A21C66FA6D"
"#;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, "test.toml", Path::new("."), KeyFilePolicy::Strict)
    }

    fn err(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[test]
    fn good_config() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.secy.cfg.cipher, CipherSuite::GcmAesXpn128);
        assert_eq!(
            c.secy.cfg.protection,
            Protection::Confidentiality(ConfidentialityOffset::Thirty)
        );
        assert_eq!(c.secy.tx.sas[0].pn, 0xFFFF_FFFF_FFFF_FFF0);
        assert_eq!(c.secy.rx[0].sas[0].pn, 0xFFFF_FFFF_FFFF_FFF0);
        let secy = c.secy.build().unwrap();
        assert_eq!(secy.tx.encoding_sa(), 1);
    }

    #[test]
    fn errors_name_the_field() {
        let e = err(&GOOD.replace("gcm-aes-xpn-128", "aes-ccm"));
        assert!(e.starts_with("secy.cipher:"), "{e}");
        let e = err(&GOOD.replace("confidentiality_offset = 30", "confidentiality_offset = 20"));
        assert!(e.starts_with("secy.confidentiality_offset:"), "{e}");
        let e = err(&GOOD.replace("pn = \"0xFFFFFFFFFFFFFFF0\"", "pn = 0"));
        assert!(e.starts_with("secy.tx.sa[0].pn:"), "{e}");
        let e = err(&GOOD.replace("ssci = \"7A30C118\"\n", ""));
        assert!(e.starts_with("secy.rx[0].sa[0].ssci: missing"), "{e}");
        let e = err(&GOOD.replace("replay_window = 64", "replay_window = 1073741824"));
        assert!(e.starts_with("secy.replay_window:"), "{e}");
        let e = err(&GOOD.replace("encoding_sa = 1", "encoding_sa = 2"));
        assert!(e.starts_with("secy.tx.encoding_sa:"), "{e}");
        let e = err(&GOOD.replace("replay_window", "replay_windw"));
        assert!(e.starts_with("secy.replay_windw: unknown key"), "{e}");
        let e = err(&GOOD.replace("sci = \"5254001234010001\"", "sci = \"52540012340100\""));
        assert!(e.starts_with("secy.rx[0].sci:"), "{e}");
        let e = err(&GOOD.replace("pn = \"18446744073709551600\"", "pn = 18446744073709551600"));
        assert!(e.contains("line 21") && e.contains("as a string"), "{e}");
        let e = err("[secy]\ncipher = 5\n");
        assert!(e.starts_with("secy.cipher: expected a string"), "{e}");
        let e = err("[ports]\nplain = \"a\"\n");
        assert!(e.starts_with("secy: missing"), "{e}");
    }

    #[test]
    fn key_errors_never_show_the_key() {
        let bad = GOOD.replacen(
            "AD7A2BD03EAC835A6F620FDCB506B345",
            "AD7A2BD03EAC835A6F620FDCB506B345AD7A2BD03EAC835A6F620FDCB506B345",
            1,
        );
        let e = err(&bad);
        assert!(
            e.starts_with("secy.tx.sa[0].key: gcm-aes-xpn-128 needs a 16-octet key"),
            "{e}"
        );
        assert!(!e.contains("AD7A"));
        let e = err(&GOOD.replacen(
            "AD7A2BD03EAC835A6F620FDCB506B345",
            "AD7A2BD03EAC835A6F620FDCB506B34G",
            1,
        ));
        assert!(
            e.starts_with("secy.tx.sa[0].key:") && !e.contains("AD7A"),
            "{e}"
        );
        // A syntax error on the key's line reports the position only.
        let e = err(&GOOD.replacen(
            "key = \"AD7A2BD03EAC835A6F620FDCB506B345\"",
            "key = \"AD7A2BD03EAC835A6F620FDCB506B345",
            1,
        ));
        assert!(e.contains("line 12") && !e.contains("AD7A"), "{e}");
    }

    #[test]
    fn key_file_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("macsec-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("sak.hex");
        std::fs::write(&p, "AD7A2BD03EAC835A6F620FDCB506B345\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_key_file("f", &p, KeyFilePolicy::Strict)
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 600") && e.contains("644"), "{e}");
        assert!(read_key_file("f", &p, KeyFilePolicy::AllowUnsafePermissions).is_ok());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_key_file("f", &p, KeyFilePolicy::Strict).unwrap().len(),
            16
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

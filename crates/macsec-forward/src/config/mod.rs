//! The TOML configuration shared by `macsec pcap` and `macsec forward`.
//!
//! Keys follow `ip macsec` names. Every error names the field (`secy.tx.sa[0].key`)
//! and what is wrong with it, and never contains key material.
//!
//! Two layers, one module per section ([`secy`], [`ports`], [`mka`], [`forward`],
//! [`links`], [`control`]):
//! - raw: `#[derive(Deserialize)]` structs with `deny_unknown_fields` that mirror the file.
//!   `serde_path_to_error` gives the path of type errors and unknown keys. Every field is
//!   optional there, so that what is missing is reported by the validation layer.
//! - validation: each section's `validate` turns its raw struct into the settings the
//!   forwarder uses ([`SecYSettings`], [`MkaSettings`], ...), checking ranges and rules.
//!
//! A new section (`[[links]]`, `[monitor]`, ...) is a new module with its raw struct, its
//! settings and its `validate`, plus one field in `RawConfig` (and its name in
//! `RawConfig::sections`) and one in [`Config`]. Key material written inline (as
//! `[[mka.keys]]` is) is a `SecretText`, reported by `RawConfig::inline_secret`.
//! Which sections a command reads is checked by the command with
//! [`Config::reject_unknown_sections`] (`macsec pcap` in the CLI, `forward::runtime::run`).
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

pub mod control;
pub mod forward;
pub mod links;
pub mod mka;
pub mod ports;
pub mod secy;
mod value;

pub use control::ControlSettings;
pub use forward::{ForwardSettings, DEFAULT_PN_BLOCK};
pub use links::{LinkSettings, LinksSettings};
pub use mka::MkaSettings;
pub use ports::PortSettings;
pub use secy::{RxScSettings, SaSettings, SecYSettings, TxSettings};
pub use value::parse_u64_text;

use macsec::crypto::SecretKey;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use value::field_err;
use zeroize::Zeroizing;

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
    /// A field is missing, unknown, of the wrong type, or has a bad value.
    #[error("{field}: {problem}")]
    Field {
        /// Dotted path, e.g. `secy.tx.sa[0].key`.
        field: String,
        /// What is wrong and what is expected.
        problem: String,
    },
}

/// Whether key files, and config files holding keys inline, may be readable by group or
/// others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyFilePolicy {
    /// Refuse them (like ssh does for private keys).
    #[default]
    Strict,
    /// Accept them (the operator passed the explicitly unsafe override).
    AllowUnsafePermissions,
}

/// A setting as the file spells it, for messages and logs: `Setting(ValidateFrames::Strict)`
/// shows `validate = "strict"`, `Setting(protection)` shows `encrypt = true,
/// confidentiality_offset = 30`, never a Rust `Debug` form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting<T>(pub T);

/// The raw file: one field per section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    secy: Option<secy::RawSecY>,
    ports: Option<ports::RawPorts>,
    mka: Option<mka::RawMka>,
    forward: Option<forward::RawForward>,
    links: Option<Vec<links::RawLink>>,
    redundancy: Option<links::RawRedundancy>,
    monitor: Option<links::RawMonitor>,
    control: Option<control::RawControl>,
    metrics: Option<control::RawMetrics>,
}

impl RawConfig {
    /// The names of the sections present.
    fn sections(&self) -> Vec<&'static str> {
        [
            ("secy", self.secy.is_some()),
            ("ports", self.ports.is_some()),
            ("mka", self.mka.is_some()),
            ("forward", self.forward.is_some()),
            ("links", self.links.is_some()),
            ("redundancy", self.redundancy.is_some()),
            ("monitor", self.monitor.is_some()),
            ("control", self.control.is_some()),
            ("metrics", self.metrics.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }

    /// The path of the first key written inline, if any.
    fn inline_secret(&self) -> Option<String> {
        self.secy
            .as_ref()
            .and_then(secy::RawSecY::inline_secret)
            .or_else(|| self.mka.as_ref().and_then(mka::RawMka::inline_secret))
    }
}

/// What validation needs besides the raw values.
pub(crate) struct Ctx<'a> {
    /// Relative paths (key files, state file) are resolved against this.
    pub base_dir: &'a Path,
    /// Key file permission policy.
    pub policy: KeyFilePolicy,
    /// `[forward] state_file` when not given: next to the config file.
    pub default_state_file: PathBuf,
}

/// A whole configuration file, validated.
#[derive(Debug)]
pub struct Config {
    /// `[secy]`.
    pub secy: SecYSettings,
    /// `[ports]`, if present.
    pub ports: Option<PortSettings>,
    /// `[mka]`, if present.
    pub mka: Option<MkaSettings>,
    /// `[forward]`, with its defaults when absent.
    pub forward: ForwardSettings,
    /// The secure links (`[[links]]`, or `[ports] secure` as one link) with
    /// `[redundancy]` and `[monitor]`; `None` when the file names no secure port.
    pub links: Option<LinksSettings>,
    /// `[control]` and `[metrics]`: the status socket and the Prometheus endpoint.
    pub control: ControlSettings,
    /// Directory relative paths (key files) are resolved against.
    pub base_dir: PathBuf,
    /// Sections present in the file.
    sections: Vec<&'static str>,
}

fn syntax_error(e: &toml::de::Error, text: &str, origin: &str) -> ConfigError {
    let (line, column) = e
        .span()
        .map(|s| value::line_column(text, s.start))
        .unwrap_or((0, 0));
    ConfigError::Syntax {
        path: origin.to_string(),
        line,
        column,
        message: e.message().to_string(),
    }
}

fn parse_raw(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| syntax_error(&e, text, origin))?;
    serde_path_to_error::deserialize(de)
        .map_err(|e| value::serde_error(e.path(), e.inner(), text, origin))
}

fn validate(raw: RawConfig, ctx: &Ctx<'_>) -> Result<Config, ConfigError> {
    let sections = raw.sections();
    let secy = raw
        .secy
        .ok_or_else(|| field_err("secy", "missing: the [secy] section is required"))?;
    let secy = secy::validate(secy, ctx)?;
    let has_links = raw.links.is_some();
    let ports = raw
        .ports
        .as_ref()
        .map(|p| ports::validate(p, has_links))
        .transpose()?;
    let links = links::validate(
        raw.links,
        raw.ports.as_ref().and_then(ports::RawPorts::secure),
        ports.as_ref().map(|p| p.plain.as_str()),
        raw.redundancy,
        raw.monitor,
    )?;
    let mka = raw.mka.map(|m| mka::validate(m, ctx)).transpose()?;
    let forward = forward::validate(raw.forward.unwrap_or_default(), ctx)?;
    let control = control::validate(raw.control, raw.metrics, ctx)?;
    Ok(Config {
        secy,
        ports,
        mka,
        forward,
        links,
        control,
        base_dir: ctx.base_dir.to_path_buf(),
        sections,
    })
}

impl Config {
    /// Parses a configuration text; `base_dir` resolves relative paths and `origin`
    /// names the file in messages (and, in `base_dir`, the default PN state file
    /// `<origin>.pn-state`). No file permission is checked here: see [`Config::load`].
    pub fn parse(
        text: &str,
        origin: &str,
        base_dir: &Path,
        policy: KeyFilePolicy,
    ) -> Result<Config, ConfigError> {
        let raw = parse_raw(text, origin)?;
        validate(raw, &Ctx::new(origin, base_dir, policy))
    }

    /// Reads and parses a configuration file. A file holding key material inline is
    /// refused, as key files are, if group or others can read it and `policy` is strict.
    pub fn load(path: &Path, policy: KeyFilePolicy) -> Result<Config, ConfigError> {
        let (text, mode) = read_with_mode(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let origin = path.display().to_string();
        let raw = parse_raw(&text, &origin)?;
        if let Some(field) = raw.inline_secret() {
            let holds = "holds key material inline and ";
            check_mode("config file", holds, path, mode, policy).map_err(|p| {
                let instead = "key_file, cak_file or activation_key_file";
                field_err(
                    &field,
                    format!("{p}; or move the key to its own file ({instead})"),
                )
            })?;
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        validate(raw, &Ctx::new(&origin, &base, policy))
    }

    /// Fails if the file has a section other than `[secy]`, `[ports]` and `known`: the
    /// per-command check of the sections a command reads.
    pub fn reject_unknown_sections(&self, known: &[&str]) -> Result<(), ConfigError> {
        let mut all = vec!["secy", "ports"];
        all.extend_from_slice(known);
        match self.sections.iter().find(|s| !all.contains(s)) {
            None => Ok(()),
            Some(s) => Err(field_err(
                s,
                format!(
                    "unknown section for this command; known sections: {}",
                    all.join(", ")
                ),
            )),
        }
    }

    /// The names of the sections present in the file.
    pub fn sections(&self) -> &[&'static str] {
        &self.sections
    }
}

impl Ctx<'_> {
    fn new<'a>(origin: &str, base_dir: &'a Path, policy: KeyFilePolicy) -> Ctx<'a> {
        let name = Path::new(origin)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "macsec".into());
        Ctx {
            base_dir,
            policy,
            default_state_file: base_dir.join(format!("{name}.pn-state")),
        }
    }
}

/// The whole file and its permission bits, from one open file (no race between them).
fn read_with_mode(path: &Path) -> std::io::Result<(Zeroizing<String>, u32)> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut f = std::fs::File::open(path)?;
    let mode = f.metadata()?.permissions().mode() & 0o777;
    let mut text = Zeroizing::new(String::new());
    f.read_to_string(&mut text)?;
    Ok((text, mode))
}

/// The key-file rule: nothing holding keys may be readable by group or others unless
/// `policy` allows it. `what` and `holds` describe the file in the message.
fn check_mode(
    what: &str,
    holds: &str,
    path: &Path,
    mode: u32,
    policy: KeyFilePolicy,
) -> Result<(), String> {
    if mode & 0o077 != 0 && policy == KeyFilePolicy::Strict {
        let p = path.display();
        return Err(format!(
            "{what} {p} {holds}is accessible by group or others (mode {mode:03o}); run `chmod 600 {p}` (or pass --unsafe-key-permissions to accept it)"
        ));
    }
    Ok(())
}

/// Reads a secret file whole, refusing files that group or others can read unless
/// `policy` allows it (as ssh does for private keys). Errors name `field` and the file.
pub fn read_secret_file(
    field: &str,
    path: &Path,
    policy: KeyFilePolicy,
) -> Result<Zeroizing<String>, ConfigError> {
    let (text, mode) = read_with_mode(path)
        .map_err(|e| field_err(field, format!("cannot read {}: {e}", path.display())))?;
    check_mode("key file", "", path, mode, policy).map_err(|p| field_err(field, p))?;
    Ok(text)
}

/// Reads a key from a file (hex text, whitespace ignored), refusing files others can
/// read unless `policy` allows it.
pub fn read_key_file(
    field: &str,
    path: &Path,
    policy: KeyFilePolicy,
) -> Result<SecretKey, ConfigError> {
    let text = read_secret_file(field, path, policy)?;
    let hex: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
    SecretKey::from_hex(&hex)
        .map_err(|e| field_err(field, format!("key file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests;

//! Leaf types shared by the raw sections, and serde's errors put in this module's words.

use super::ConfigError;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_path_to_error::{Path as FieldPath, Segment};
use std::fmt;
use zeroize::Zeroizing;

/// Key material written inline (a hex SAK or CAK, an activation key). Its `Debug` and its
/// type errors never show the value. A section holding one reports its path from its
/// `inline_secret`, so that the config file's permissions are checked (issue 12.9).
pub(crate) struct SecretText(pub(crate) Zeroizing<String>);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

/// Every non-string value is refused by kind only: serde's own message would print it.
struct SecretVisitor;

fn not_a_string<E: de::Error>(kind: &str) -> E {
    E::custom(format!(
        "expected a string, got {kind}; key material, so the value is not shown"
    ))
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = SecretText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretText, E> {
        Ok(SecretText(Zeroizing::new(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<SecretText, E> {
        Ok(SecretText(Zeroizing::new(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretText, E> {
        Err(not_a_string("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretText, E> {
        Err(not_a_string("an integer"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretText, E> {
        Err(not_a_string("an integer"))
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<SecretText, E> {
        Err(not_a_string("an integer"))
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<SecretText, E> {
        Err(not_a_string("an integer"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretText, E> {
        Err(not_a_string("a float"))
    }
    fn visit_char<E: de::Error>(self, _: char) -> Result<SecretText, E> {
        Err(not_a_string("a character"))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SecretText, E> {
        Err(not_a_string("bytes"))
    }
    fn visit_none<E: de::Error>(self) -> Result<SecretText, E> {
        Err(not_a_string("nothing"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<SecretText, E> {
        Err(not_a_string("nothing"))
    }
    fn visit_some<D: Deserializer<'de>>(self, _: D) -> Result<SecretText, D::Error> {
        Err(not_a_string("an option"))
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, _: D) -> Result<SecretText, D::Error> {
        Err(not_a_string("a structure"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<SecretText, A::Error> {
        Err(not_a_string("an array"))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<SecretText, A::Error> {
        Err(not_a_string("a table or a date"))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<SecretText, A::Error> {
        Err(not_a_string("an enum"))
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_string(SecretVisitor)
    }
}

/// An integer, or a string for what TOML integers cannot hold (PNs above 2^63 - 1, hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IntOrText {
    /// Written as an integer.
    Int(i64),
    /// Written as a string.
    Text(String),
}

struct IntOrTextVisitor;

impl<'de> Visitor<'de> for IntOrTextVisitor {
    type Value = IntOrText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a string")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrText, E> {
        Ok(IntOrText::Int(v))
    }
    // toml 0.9 reads integers up to 2^64 - 1, but TOML itself (and other writers) stop
    // at 2^63 - 1: keep files portable and say how to write larger numbers.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrText, E> {
        i64::try_from(v).map(IntOrText::Int).map_err(|_| {
            E::custom(format!(
                "{v} is too large for a TOML integer (they stop at 2^63-1): write larger PNs as a string, e.g. pn = \"0xFFFFFFFFFFFFFFF0\""
            ))
        })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrText, E> {
        Ok(IntOrText::Text(v.to_owned()))
    }
}

impl<'de> Deserialize<'de> for IntOrText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrTextVisitor)
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

/// `field: problem`.
pub(crate) fn field_err(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// An optional non-negative integer no larger than `max`. Raw integer fields are `i128`
/// so that any integer TOML (or toml's u64 extension) can hold reaches this range check.
pub(crate) fn uint(field: &str, v: Option<i128>, max: u64) -> Result<Option<u64>, ConfigError> {
    match v {
        None => Ok(None),
        Some(i) if i >= 0 && i <= max as i128 => Ok(Some(i as u64)),
        Some(i) => Err(field_err(field, format!("{i} is out of range 0..={max}"))),
    }
}

/// A 64-bit unsigned number given as an integer or as a decimal or `0x`-hex string.
pub(crate) fn u64_value(field: &str, v: &IntOrText) -> Result<u64, ConfigError> {
    match v {
        IntOrText::Int(i) if *i >= 0 => Ok(*i as u64),
        IntOrText::Int(i) => Err(field_err(field, format!("{i} is negative"))),
        IntOrText::Text(s) => parse_u64_text(s).ok_or_else(|| {
            field_err(
                field,
                format!("{s:?} is not a decimal or 0x-hex 64-bit number"),
            )
        }),
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A type error or unknown key found while deserializing the raw layer, with its path.
/// Values are never repeated (only their kind), so no key can leak through here.
pub(crate) fn serde_error(
    path: &FieldPath,
    err: &toml::de::Error,
    text: &str,
    origin: &str,
) -> ConfigError {
    let segments: Vec<&Segment> = path.iter().collect();
    let field = if segments.is_empty() {
        origin.to_string()
    } else {
        path.to_string()
    };
    let last_key = match segments.last() {
        Some(Segment::Map { key }) => Some(key.as_str()),
        _ => None,
    };
    let mut problem = problem_of(err.message(), last_key, segments.len() == 1, &field);
    if let Some(span) = err.span() {
        let (line, _) = line_column(text, span.start);
        problem.push_str(&format!(" (line {line})"));
    }
    ConfigError::Field { field, problem }
}

/// serde's wording (`unknown field`, `invalid type`) turned into this module's; anything
/// else is kept as it is.
fn problem_of(message: &str, key: Option<&str>, top_level: bool, field: &str) -> String {
    if let Some(rest) = key.and_then(|k| message.strip_prefix(&format!("unknown field `{k}`, "))) {
        let mut known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        known.sort_unstable();
        return match (top_level, known.is_empty()) {
            (true, _) => format!("unknown section; known sections: {}", known.join(", ")),
            (false, true) => "unknown key; this table has no keys".to_string(),
            (false, false) => format!("unknown key; known keys here: {}", known.join(", ")),
        };
    }
    if let Some((unexpected, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|m| m.rsplit_once(", expected "))
    {
        return format!(
            "expected {}, got {}",
            expected_kind(expected, field),
            unexpected_kind(unexpected)
        );
    }
    message.to_string()
}

/// serde's `Unexpected` without the value.
fn unexpected_kind(u: &str) -> &'static str {
    let first = u.split([' ', '`']).next().unwrap_or(u);
    match first {
        "boolean" => "a boolean",
        "integer" => "an integer",
        "floating" => "a float",
        "string" => "a string",
        "character" => "a character",
        "sequence" => "an array",
        "map" => "a table (or a date)",
        _ => "a value of another type",
    }
}

/// What a Rust type expects, in TOML words.
fn expected_kind(e: &str, field: &str) -> String {
    match e {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" => {
            "an integer".into()
        }
        "f32" | "f64" => "a number".into(),
        "a sequence" => format!("an array of tables ([[{field}]])"),
        e if e.starts_with("struct ") || e == "a map" => "a table".into(),
        e => e.to_string(),
    }
}

//! `macsec status`: asks each forwarder's control socket and shows the answer, as text
//! for people (one block per forwarder, one per link, like `wg show`) or as JSON.
//!
//! Exit status: 0 when every forwarder answered and every one of its links is secured,
//! 1 otherwise (a link not secured, a stale or unreachable socket, no socket at all),
//! 2 for usage errors.

use macsec_forward::control::counters::{describe, error_counters};
use macsec_forward::control::{query, Command, QueryError};
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// How long one forwarder may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Width of the labels in the text form.
const LABEL: usize = 13;

/// What to ask and where.
pub struct Args {
    /// A forwarder name (its config file's stem): `<dir>/<name>.sock`.
    pub name: Option<String>,
    /// A socket path instead.
    pub socket: Option<PathBuf>,
    /// Where the sockets are.
    pub dir: PathBuf,
    /// JSON instead of text.
    pub json: bool,
    /// The event log instead of the status.
    pub events: bool,
}

/// The sockets to ask, or a usage or lookup problem (message, exit status).
fn sockets(a: &Args) -> Result<Vec<PathBuf>, (String, u8)> {
    if let Some(s) = &a.socket {
        return Ok(vec![s.clone()]);
    }
    if let Some(n) = &a.name {
        if n.is_empty() || n.contains('/') || n.starts_with('.') {
            return Err((
                format!("{n:?} is not a forwarder name (the config file's name without .toml); use --socket PATH for a socket path"),
                2,
            ));
        }
        return Ok(vec![a.dir.join(format!("{n}.sock"))]);
    }
    let dir = &a.dir;
    let none = || {
        format!(
            "no forwarder sockets in {} (is a forwarder running? one with [control] socket elsewhere: --socket PATH)",
            dir.display()
        )
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err((none(), 1)),
        Err(e) => return Err((format!("cannot list {}: {e}", dir.display()), 1)),
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .filter(|p| {
            use std::os::unix::fs::FileTypeExt;
            std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
        })
        .collect();
    out.sort();
    if out.is_empty() {
        return Err((none(), 1));
    }
    Ok(out)
}

/// Runs `macsec reload` / `macsec rekey`: sends `cmd` to each forwarder and prints its
/// answer, one line each. Exit status 0 when every one accepted it.
pub fn send(a: &Args, cmd: Command) -> ExitCode {
    let paths = match sockets(a) {
        Ok(p) => p,
        Err((msg, code)) => {
            eprintln!("macsec {}: {msg}", cmd.as_str());
            return ExitCode::from(code);
        }
    };
    let mut ok = true;
    for p in paths {
        match query(&p, cmd, TIMEOUT) {
            Ok(v) if v["ok"] == true => {
                println!(
                    "{}: {}",
                    p.display(),
                    v["message"].as_str().unwrap_or("done")
                );
            }
            Ok(v) => {
                ok = false;
                eprintln!(
                    "macsec {}: {}: {}",
                    cmd.as_str(),
                    p.display(),
                    v["error"].as_str().unwrap_or("refused")
                );
            }
            Err(e) => {
                ok = false;
                eprintln!("macsec {}: {e}", cmd.as_str());
            }
        }
    }
    ExitCode::from(if ok { 0 } else { 1 })
}

/// Runs `macsec status`.
pub fn run(a: &Args) -> ExitCode {
    let paths = match sockets(a) {
        Ok(p) => p,
        Err((msg, code)) => {
            eprintln!("macsec status: {msg}");
            if a.json && code == 1 {
                println!("[]");
            }
            return ExitCode::from(code);
        }
    };
    let cmd = if a.events {
        Command::Events
    } else {
        Command::Status
    };
    let answers: Vec<(PathBuf, Result<Value, QueryError>)> = paths
        .into_iter()
        .map(|p| {
            let r = query(&p, cmd, TIMEOUT);
            (p, r)
        })
        .collect();
    let mut ok = true;
    for (_, r) in &answers {
        match r {
            Err(_) => ok = false,
            Ok(v) if !a.events => ok &= all_secured(v),
            Ok(_) => {}
        }
    }
    let now = macsec_forward::control::events::now_unix();
    if a.json {
        let doc: Vec<Value> = answers
            .iter()
            .map(|(p, r)| match r {
                Ok(v) => {
                    let mut v = v.clone();
                    if let Value::Object(m) = &mut v {
                        m.insert("socket".into(), json!(p));
                    }
                    v
                }
                Err(e) => json!({ "socket": p, "error": e.short() }),
            })
            .collect();
        println!("{}", Value::Array(doc));
        for (_, r) in &answers {
            if let Err(e) = r {
                eprintln!("macsec status: {e}");
            }
        }
    } else {
        let mut first = true;
        for (p, r) in &answers {
            match r {
                Ok(v) => {
                    if !first {
                        println!();
                    }
                    first = false;
                    let text = if a.events {
                        render_events(v, p, now)
                    } else {
                        render(v, p)
                    };
                    print!("{text}");
                }
                Err(e) => eprintln!("macsec status: {e}"),
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Whether a status says every link is secured (and there is at least one).
pub fn all_secured(v: &Value) -> bool {
    match v["links"].as_array() {
        Some(links) if !links.is_empty() => links.iter().all(|l| l["secured"] == true),
        _ => false,
    }
}

/// `label:` padded, then the value, as one line.
fn line(out: &mut String, indent: usize, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "{:indent$}{:<width$}{value}",
        "",
        if label.is_empty() {
            String::new()
        } else {
            format!("{label}:")
        },
        width = LABEL + 1
    );
}

/// A duration for people: `1.2 s`, `45 s`, `2 min 5 s`, `3 h 4 min`, `2 d 1 h`.
pub fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    if s < 10.0 {
        return format!("{s:.1} s");
    }
    // Whole seconds, cut as `wg show` cuts them.
    let t = s as u64;
    match t {
        0..=59 => format!("{t} s"),
        60..=3599 => format!("{} min {} s", t / 60, t % 60),
        3600..=86_399 => format!("{} h {} min", t / 3600, t % 3600 / 60),
        _ => format!("{} d {} h", t / 86_400, t % 86_400 / 3600),
    }
}

/// Octets for people, in binary units as `wg show` has them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", UNITS[u])
}

/// A share as a percentage: `0 %`, `< 0.01 %`, `28.74 %`.
pub fn percent(r: f64) -> String {
    let p = r * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if p < 0.01 {
        "< 0.01 %".into()
    } else {
        format!("{p:.2} %")
    }
}

/// Milliseconds with three decimals.
fn ms(v: &Value) -> Option<String> {
    v.as_f64().map(|x| format!("{x:.3} ms"))
}

/// Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(t: f64) -> String {
    if !t.is_finite() || t < 0.0 {
        return "?".into();
    }
    let secs = t as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = macsec_forward::keychain::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn sci_list(peers: &Value) -> String {
    let v: Vec<&str> = peers
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["sci"].as_str())
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The status of one forwarder as text.
pub fn render(v: &Value, socket: &Path) -> String {
    let mut out = String::new();
    let fw = &v["forwarder"];
    let stem = socket
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(out, "forwarder: {}", fw["name"].as_str().unwrap_or(&stem));
    let pid = match (fw["pid"].as_u64(), fw["uptime_s"].as_f64()) {
        (Some(p), Some(u)) => format!("{p}, up {}", duration(u)),
        (Some(p), None) => p.to_string(),
        (None, Some(u)) => format!("up {}", duration(u)),
        (None, None) => "?".into(),
    };
    line(&mut out, 2, "pid", pid);
    if let Some(c) = fw["config"].as_str() {
        line(&mut out, 2, "config", c);
    }
    line(&mut out, 2, "socket", socket.display());
    line(&mut out, 2, "plain", s(&fw["plain"]));
    line(
        &mut out,
        2,
        "keys",
        format!("{}, {}", s(&fw["key_source"]), s(&fw["cipher"])),
    );
    let red = &v["redundancy"];
    let links = v["links"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if links.len() > 1 || red["failovers"].as_u64().unwrap_or(0) > 0 {
        let active: Vec<&str> = red["active"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        line(
            &mut out,
            2,
            "redundancy",
            format!(
                "{}, carrying traffic: {}, failovers: {}, monitor {}",
                s(&red["mode"]),
                if active.is_empty() {
                    "NONE".to_string()
                } else {
                    active.join(", ")
                },
                red["failovers"].as_u64().unwrap_or(0),
                if red["monitor"] == true { "on" } else { "off" }
            ),
        );
    }
    if links.is_empty() {
        line(&mut out, 2, "links", "none");
    }
    let cipher = fw["cipher"].as_str().unwrap_or("");
    for l in links {
        out.push('\n');
        render_link(&mut out, l, cipher);
    }
    out
}

/// The key in use and, for a chain of several keys, each key's state.
fn render_keys(out: &mut String, mka: &Value) {
    let keys = mka["keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let in_use = &mka["key_in_use"];
    if let Some(ckn) = in_use["ckn"].as_str() {
        let why = in_use["reason"].as_str().unwrap_or("");
        let kind = if in_use["fallback"] == true {
            "FALLBACK key"
        } else {
            "key"
        };
        if keys.len() > 1 || in_use["fallback"] == true {
            line(out, 4, "ckn", format!("{ckn} ({kind}; {why})"));
        } else {
            line(out, 4, "ckn", ckn);
        }
    }
    if keys.len() > 1 {
        let mut first = true;
        for k in keys {
            let mut t = format!("{} {}", s(&k["ckn"]), s(&k["state"]));
            if k["fallback"] == true {
                t += ", fallback";
            }
            if k["in_use"] == true {
                t += ", in use";
            }
            if let Some(st) = k["start"].as_str() {
                let _ = write!(t, ", from {st}");
            }
            if let Some(e) = k["end"].as_str() {
                let _ = write!(t, ", until {e}");
            }
            line(out, 4, if first { "key chain" } else { "" }, t);
            first = false;
        }
    }
}

fn render_link(out: &mut String, l: &Value, cipher: &str) {
    let _ = writeln!(out, "  link: {}", s(&l["name"]));
    let secured = if l["secured"] == true {
        "secured"
    } else {
        "NOT SECURED"
    };
    let state = match (l["state"].as_str(), l["reason"].as_str()) {
        (Some("down"), Some(r)) => format!("DOWN ({r})"),
        (Some("down"), None) => "DOWN".into(),
        (Some(st), Some(r)) if r != "healthy" => format!("{st} ({r})"),
        (Some(st), _) => st.to_owned(),
        (None, _) => "?".into(),
    };
    line(
        out,
        4,
        "status",
        format!("{secured}, {state}, {}", s(&l["role"])),
    );
    let carrier = match l["carrier"].as_bool() {
        Some(true) => "carrier up",
        Some(false) => "NO CARRIER",
        None => "carrier ?",
    };
    let mut iface = format!("{}, {carrier}", s(&l["secure"]));
    if let Some(p) = l["priority"].as_u64() {
        let _ = write!(iface, ", priority {p}");
    }
    line(out, 4, "interface", iface);
    line(out, 4, "sci", s(&l["sci"]));
    match (l["policy"].as_str(), l["unprotected"].as_bool()) {
        (Some(p), Some(true)) => line(
            out,
            4,
            "policy",
            format!("{p}: NOT SECURED, frames pass UNPROTECTED both ways"),
        ),
        (Some("should-secure"), _) => line(out, 4, "policy", "should-secure"),
        _ => {}
    }

    let mka = &l["mka"];
    if mka.is_object() {
        let st = s(&mka["state"]);
        let what = match (st, mka["secured_for_s"].as_f64()) {
            ("secured", Some(d)) => {
                let mut t = format!("secured for {}", duration(d));
                if let Some(since) = mka["secured_since_unix"].as_f64() {
                    let _ = write!(t, " (since {})", utc(since));
                }
                t
            }
            ("pending", _) if mka["live_peers"].as_array().is_some_and(Vec::is_empty) => {
                "PENDING (no live peer)".into()
            }
            ("pending", _) => "PENDING (no SAK in use yet)".into(),
            (other, _) => other.to_owned(),
        };
        line(out, 4, "mka", what);
        render_keys(out, mka);
        let ks = match (mka["key_server"].as_str(), mka["is_key_server"].as_bool()) {
            (_, Some(true)) => "this end".to_owned(),
            (Some(k), _) => format!("{k} (peer)"),
            (None, _) => "none elected".to_owned(),
        };
        line(out, 4, "key server", ks);
        line(out, 4, "live peers", sci_list(&mka["live_peers"]));
        line(out, 4, "potential", sci_list(&mka["potential_peers"]));
        if let (Some(an), Some(kn)) = (mka["an"].as_u64(), mka["kn"].as_u64()) {
            line(
                out,
                4,
                "sak",
                format!(
                    "AN {an}, KN {kn}, {}",
                    mka["cipher"].as_str().unwrap_or(cipher)
                ),
            );
        }
        if let Some(pn) = mka["tx_next_pn"].as_u64() {
            let used = mka["pn_used_ratio"]
                .as_f64()
                .map(|r| format!(" ({} of the PN space used)", percent(r)))
                .unwrap_or_default();
            line(out, 4, "next pn", format!("{pn}{used}"));
        }
        let last = mka["last_mkpdu_s"]
            .as_f64()
            .map_or("never".to_string(), |t| format!("{} ago", duration(t)));
        line(out, 4, "last mkpdu", last);
        if let Some(r) = mka["rekeys"].as_u64() {
            line(out, 4, "rekeys", r);
        }
    } else if l["static"].is_object() {
        line(out, 4, "keys", "static");
        let tx = &l["counters"]["tx_sc"];
        let enc = tx["encoding_sa"].as_u64();
        let sa = tx["sa"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|sa| sa["an"].as_u64() == enc);
        if let (Some(an), Some(sa)) = (enc, sa) {
            let pn = sa["next_pn"]
                .as_u64()
                .map_or("EXHAUSTED".to_string(), |p| p.to_string());
            let used = macsec_forward::control::pn_used_ratio(l, cipher)
                .map(|r| format!(" ({} of the PN space used)", percent(r)))
                .unwrap_or_default();
            line(out, 4, "next pn", format!("{pn}{used}, AN {an}"));
        }
        let peers = l["static"]["peers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if peers.is_empty() {
            line(out, 4, "peer", "none configured");
        }
        for p in peers {
            let seen = p["last_valid_frame_s"]
                .as_f64()
                .map_or("no valid frame yet".to_string(), |t| {
                    format!("last valid frame {} ago", duration(t))
                });
            line(out, 4, "peer", format!("{}, {seen}", s(&p["sci"])));
        }
    }

    let m = &l["monitor"];
    if m.is_object() {
        let rtt = &m["rtt_ms"];
        let parts: Vec<String> = [("last", "last"), ("mean", "mean"), ("p99", "p99")]
            .iter()
            .filter_map(|(k, n)| ms(&rtt[*k]).map(|v| format!("{v} {n}")))
            .chain(ms(&m["jitter_ms"]).map(|j| format!("jitter {j}")))
            .collect();
        let rtt_text = if parts.is_empty() {
            "no answer to probes".to_string()
        } else {
            parts.join(", ")
        };
        line(out, 4, "rtt", rtt_text);
        let loss = |k: &str| m["loss"][k].as_f64().map_or("?".to_string(), percent);
        line(
            out,
            4,
            "loss",
            format!(
                "{} outbound, {} inbound (probes: {} sent, {} received)",
                loss("tx_dir"),
                loss("rx_dir"),
                m["probes"]["sent"].as_u64().unwrap_or(0),
                m["probes"]["received"].as_u64().unwrap_or(0)
            ),
        );
    }
    let t = &l["traffic"];
    let n = |k: &str| t[k].as_u64().unwrap_or(0);
    if t.is_object() {
        line(
            out,
            4,
            "transfer",
            format!(
                "{} received, {} sent",
                bytes(n("octets_in")),
                bytes(n("octets_out"))
            ),
        );
        line(
            out,
            4,
            "frames",
            format!("{} received, {} sent", n("frames_in"), n("frames_out")),
        );
    }
    if let Some(f) = l["failovers"].as_u64().filter(|f| *f > 0) {
        line(
            out,
            4,
            "failovers",
            format!("{f} (traffic moved away from this link)"),
        );
    }
    // The forwarder's own errors, or computed from the counters when absent.
    let errors: Vec<(String, u64)> = match l["errors"].as_object() {
        Some(m) => m
            .iter()
            .filter_map(|(k, v)| v.as_u64().filter(|n| *n > 0).map(|n| (k.clone(), n)))
            .collect(),
        None => error_counters(&l["counters"])
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    };
    if errors.is_empty() {
        line(out, 4, "errors", "none");
    }
    // One counter a line, in columns: name, count, what it counts.
    let nw = errors.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let cw = errors
        .iter()
        .map(|(_, n)| n.to_string().len())
        .max()
        .unwrap_or(0);
    for (i, (name, n)) in errors.iter().enumerate() {
        let what = describe(name).map(lower_first).unwrap_or_default();
        let row = format!("{name:<nw$}  {n:>cw$}  {what}");
        let row = row.trim_end();
        if i == 0 {
            line(out, 4, "errors", row);
        } else {
            let _ = writeln!(out, "{:w$}{row}", "", w = 4 + LABEL + 1);
        }
    }
}

/// "Frames that ..." as "frames that ...", leaving "PN ..." as it is.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match (c.next(), c.next()) {
        (Some(a), Some(b)) if a.is_ascii_uppercase() && b.is_ascii_lowercase() => {
            format!("{}{}", a.to_ascii_lowercase(), &s[1..])
        }
        _ => s.to_owned(),
    }
}

/// The event log of one forwarder as text, oldest first.
pub fn render_events(v: &Value, socket: &Path, now: f64) -> String {
    let mut out = String::new();
    let stem = socket
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(out, "forwarder: {stem} ({})", socket.display());
    let events = v["events"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if events.is_empty() {
        let _ = writeln!(out, "  no events");
        return out;
    }
    let width = events
        .iter()
        .map(|e| e["link"].as_str().unwrap_or("-").len())
        .max()
        .unwrap_or(1);
    let ages: Vec<String> = events
        .iter()
        .map(|e| {
            let at = e["at_unix"].as_f64().unwrap_or(f64::NAN);
            format!("{} ago", duration(now - at))
        })
        .collect();
    let aw = ages.iter().map(String::len).max().unwrap_or(0);
    for (e, age) in events.iter().zip(&ages) {
        let at = e["at_unix"].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "  {}  {age:>aw$}  {:<width$}  {:<22}  {}",
            utc(at),
            e["link"].as_str().unwrap_or("-"),
            s(&e["kind"]),
            s(&e["message"]),
        );
    }
    if let Some(total) = v["total"].as_u64().filter(|t| *t > events.len() as u64) {
        let _ = writeln!(
            out,
            "  ({} earlier events not kept)",
            total - events.len() as u64
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_for_people() {
        assert_eq!(duration(1.23), "1.2 s");
        assert_eq!(duration(45.2), "45 s");
        assert_eq!(duration(125.0), "2 min 5 s");
        assert_eq!(duration(7384.25), "2 h 3 min");
        assert_eq!(duration(90061.0), "1 d 1 h");
        assert_eq!(duration(-1.0), "?");
        assert_eq!(bytes(1000), "1000 B");
        assert_eq!(bytes(1200), "1.17 KiB");
        assert_eq!(bytes(2_863_311_530), "2.67 GiB");
        assert_eq!(percent(0.0), "0 %");
        assert_eq!(percent(0.000_000_3), "< 0.01 %");
        assert_eq!(percent(0.28744), "28.74 %");
        assert_eq!(percent(1.0), "100.00 %");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_765_000_000.0), "2025-12-06 05:46:40 UTC");
        assert_eq!(utc(4_107_542_399.0), "2100-02-28 23:59:59 UTC");
        assert_eq!(utc(f64::NAN), "?");
    }

    #[test]
    fn secured_means_every_link_and_at_least_one() {
        assert!(all_secured(
            &json!({"links": [{"secured": true}, {"secured": true}]})
        ));
        assert!(!all_secured(
            &json!({"links": [{"secured": true}, {"secured": false}]})
        ));
        assert!(!all_secured(&json!({"links": []})));
        assert!(!all_secured(&json!({})));
    }
}

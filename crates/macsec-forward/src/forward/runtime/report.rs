//! The JSON counters printed on SIGUSR1, every `stats_interval` and at exit.
//!
//! ```text
//! { "event": "stats" | "exit",
//!   "counters": { "secy": {sums over links}, "tx_sc": {first link's}, "rx_sc": [every link's] },
//!   "pumps": { "plain_to_secure": {...}, "secure_to_plain": {...} },
//!   "links": [ { "name", "secure", "sci", "state", "reason", "role", "carrier", "secured",
//!                "rtt_ms": {"last","mean","p99"}, "jitter_ms", "loss": {"tx_dir","rx_dir"},
//!                "probes": {...}, "failovers", "counters": {SecY}, "pumps": {...}, "mka": {...} } ],
//!   "redundancy": { "mode", "active", "failovers" },
//!   "forwarder": { "plain", "secure", "cipher", "sci", "key_source", "uptime_s", "mka", "threads" } }
//! ```
//!
//! Counter keys are the 802.1AE names (`InPktsOK`, `OutPktsEncrypted`, ...). With one
//! link, `counters` is exactly that link's SecY.

use super::control::LinkCtl;
use crate::forward::pump::PumpCounters;
use crate::forward::worker::{Report, ThreadMode};
use crate::monitor::link::State;
use crate::monitor::select::{Mode, Selector};
use macsec::crypto::CipherSuite;
use macsec::secy::SecYStats;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// What the report needs besides the data plane's counters.
pub(super) struct Context<'a> {
    pub(super) plain: &'a str,
    pub(super) links: &'a [LinkCtl],
    pub(super) selector: &'a Selector,
    pub(super) cipher: CipherSuite,
    pub(super) key_source: &'static str,
    pub(super) uptime: Duration,
    pub(super) failovers: u64,
    pub(super) port_reopens: u64,
    pub(super) threads: Option<ThreadMode>,
    /// The key chain (MKA): its state at this chain time.
    pub(super) chain: Option<&'a super::chain::ChainState>,
}

/// Adds every number of `from` to the same key of `into` (objects of counters).
fn add_numbers(into: &mut Map<String, Value>, from: &Value) {
    if let Value::Object(m) = from {
        for (k, v) in m {
            if let Some(n) = v.as_u64() {
                let e = into.entry(k.clone()).or_insert(json!(0));
                *e = json!(e.as_u64().unwrap_or(0) + n);
            }
        }
    }
}

fn ms(d: Option<f64>) -> Value {
    d.map_or(Value::Null, |v| json!((v * 1000.0).round() / 1000.0))
}

/// A link's role: whether it carries traffic now.
fn role(c: &Context<'_>, i: usize) -> &'static str {
    let carrying = c.selector.path().links().contains(i) || c.links.len() == 1;
    match (carrying, c.selector.mode()) {
        (true, _) => "active",
        (false, Mode::ActiveBackup) => "backup",
        (false, Mode::Balance) => "standby",
    }
}

/// The JSON line for `event`.
pub(super) fn json(event: &str, r: &Report, c: &Context<'_>) -> String {
    let mut secy_sum = Map::new();
    let mut rx_sc = Vec::new();
    let mut tx_sc = Value::Null;
    let mut links = Vec::new();
    for (i, l) in c.links.iter().enumerate() {
        let (Some((t, tp)), Some((x, xp))) = (r.tx.get(i), r.rx.get(i)) else {
            continue;
        };
        let stats = serde_json::to_value(SecYStats::new(t.clone(), x.clone())).unwrap_or_default();
        add_numbers(&mut secy_sum, &stats["secy"]);
        if let Value::Array(a) = &stats["rx_sc"] {
            rx_sc.extend(a.iter().cloned());
        }
        if i == 0 {
            tx_sc = stats["tx_sc"].clone();
        }
        let mon = l.monitor.as_ref().map(|m| {
            let s = m.snapshot();
            let f = s.figures;
            json!({
                "state": s.state.as_str(),
                "reason": s.reason.as_str(),
                "monitor_active": s.monitor_active,
                "rtt_ms": { "last": ms(f.rtt_last_ms), "mean": ms(f.rtt_mean_ms), "p99": ms(f.rtt_p99_ms) },
                "jitter_ms": ms(f.jitter_ms),
                "loss": { "tx_dir": f.loss_tx, "rx_dir": f.loss_rx },
                "probes": { "sent": s.probes_sent, "received": s.probes_received,
                            "ignored": s.probes_ignored, "invalid": s.probes_invalid },
                "state_changes": s.state_changes,
                "peer_restarts": s.peer_restarts,
            })
        });
        // Without a monitor a link is up when it has carrier and is secured.
        let state = match &mon {
            Some(m) => m["state"].as_str().unwrap_or("down").to_owned(),
            None if l.carrier && l.secured => State::Up.as_str().to_owned(),
            None => State::Down.as_str().to_owned(),
        };
        let mut link = json!({
            "name": l.name(),
            "secure": l.ifname(),
            "sci": l.sci.to_string(),
            "priority": l.priority(),
            "state": state,
            "role": role(c, i),
            "carrier": l.carrier,
            "secured": l.secured,
            "failovers": l.failovers,
            "counters": stats,
            "pumps": { "plain_to_secure": tp, "secure_to_plain": xp },
            "mka": l.kay.as_ref().map(|k| counters_mka(k, c)),
        });
        if let (Some(Value::Object(m)), Value::Object(o)) = (mon, &mut link) {
            for (k, v) in m {
                if k != "state" {
                    o.insert(k, v);
                }
            }
        }
        links.push(link);
    }
    let first = c.links.first();
    let active = c
        .selector
        .path()
        .links()
        .iter()
        .filter_map(|i| c.links.get(i).map(|l| l.name().to_owned()))
        .collect::<Vec<_>>();
    let protect: PumpCounters = r.protect_total();
    let validate: PumpCounters = r.validate_total();
    json!({
        "event": event,
        "counters": { "secy": secy_sum, "tx_sc": tx_sc, "rx_sc": rx_sc },
        "pumps": { "plain_to_secure": protect, "secure_to_plain": validate },
        "links": links,
        "redundancy": {
            "mode": c.selector.mode().as_str(),
            "active": active,
            "failovers": c.failovers,
        },
        "forwarder": {
            "plain": c.plain,
            "secure": c.links.iter().map(|l| l.ifname()).collect::<Vec<_>>().join(","),
            "cipher": first.and_then(|l| l.kay.as_ref()).map_or(c.cipher, |k| k.cipher).name(),
            "sci": first.map(|l| l.sci.to_string()),
            "key_source": c.key_source,
            "uptime_s": c.uptime.as_secs_f64(),
            "mka": first.and_then(|l| l.kay.as_ref()).map(|k| counters_mka(k, c)),
            "threads": c.threads.map(|t| t.as_str()),
            "port_reopens": c.port_reopens,
        },
    })
    .to_string()
}

/// The `mka` object of the counters line: the principal participant's status, plus
/// which key carries traffic and the key chain (`ckn`, `key_in_use`, `keys`).
fn counters_mka(k: &super::kay::Kay, c: &Context<'_>) -> Value {
    let mut v = k.participant_status();
    if let (Value::Object(o), Some(ch)) = (&mut v, c.chain) {
        let st = k.status(&ch.chain, ch.now());
        for key in ["ckn", "key_in_use", "keys", "key_switches"] {
            o.insert(key.into(), st[key].clone());
        }
    }
    v
}

/// What the status document needs besides [`Context`]: who this forwarder is, and per
/// link what the control loop tracks.
pub(super) struct StatusContext<'a> {
    pub(super) name: &'a str,
    pub(super) config: &'a std::path::Path,
    /// Per link, per peer SCI: seconds since its `InPktsOK` last grew (static keys).
    pub(super) last_valid: &'a [Vec<(String, f64)>],
}

fn secs_since(t: Option<std::time::Instant>) -> Value {
    t.map_or(Value::Null, |t| {
        json!((t.elapsed().as_secs_f64() * 10.0).round() / 10.0)
    })
}

/// The status document (version 1, the control socket's `status` answer; schema in the
/// README and in `crate::control`).
pub(super) fn status(r: &Report, c: &Context<'_>, sc: &StatusContext<'_>) -> String {
    use crate::control::counters::{errors_json, traffic_json};
    let mut links = Vec::new();
    for (i, l) in c.links.iter().enumerate() {
        let (Some((t, tp)), Some((x, xp))) = (r.tx.get(i), r.rx.get(i)) else {
            continue;
        };
        let counters =
            serde_json::to_value(SecYStats::new(t.clone(), x.clone())).unwrap_or_default();
        let encoding = t.sc.sa.iter().find(|s| s.an == t.sc.encoding_sa);
        let next_pn = encoding.and_then(|s| s.next_pn);
        let mka = match (l.kay.as_ref(), c.chain) {
            (Some(k), Some(ch)) => {
                let mut v = k.status(&ch.chain, ch.now());
                let max = k.cipher.max_pn() as f64;
                if let Value::Object(o) = &mut v {
                    o.insert("secured_for_s".into(), secs_since(k.secured_since));
                    o.insert("secured_since_unix".into(), json!(k.secured_since_unix));
                    o.insert("tx_next_pn".into(), json!(next_pn));
                    o.insert(
                        "pn_used_ratio".into(),
                        json!(next_pn.map(|n| n.saturating_sub(1) as f64 / max)),
                    );
                    o.insert("last_mkpdu_s".into(), secs_since(k.last_mkpdu));
                    o.insert("rekeys".into(), json!(k.keys_installed.saturating_sub(1)));
                }
                Some(v)
            }
            _ => None,
        };
        let stat = l.kay.is_none().then(|| {
            let peers: Vec<Value> = sc
                .last_valid
                .get(i)
                .map(|v| {
                    v.iter()
                        .map(|(sci, s)| json!({"sci": sci, "last_valid_frame_s": (s * 10.0).round() / 10.0}))
                        .collect()
                })
                .unwrap_or_default();
            json!({ "peers": peers })
        });
        let monitor = l.monitor.as_ref().map(|m| {
            let s = m.snapshot();
            let f = s.figures;
            json!({
                "active": s.monitor_active,
                "rtt_ms": { "last": ms(f.rtt_last_ms), "mean": ms(f.rtt_mean_ms), "p99": ms(f.rtt_p99_ms) },
                "jitter_ms": ms(f.jitter_ms),
                "loss": { "tx_dir": f.loss_tx, "rx_dir": f.loss_rx },
                "probes": { "sent": s.probes_sent, "received": s.probes_received },
                "rtt_samples_total": s.rtt_samples_total,
                "rtt_sum_s": s.rtt_sum_s,
            })
        });
        let (state, reason) = match &l.monitor {
            Some(m) => (m.state().as_str(), m.reason().as_str()),
            None if l.carrier && l.secured => ("up", "healthy"),
            None if !l.carrier => ("down", "carrier lost"),
            None => ("down", "not secured"),
        };
        links.push(json!({
            "name": l.name(),
            "secure": l.ifname(),
            "sci": l.sci.to_string(),
            "priority": l.priority(),
            "carrier": l.carrier,
            "state": state,
            "reason": reason,
            "role": role(c, i),
            "secured": l.secured,
            "policy": c.chain.map(|ch| ch.policy.as_str()),
            "unprotected": l.unprotected,
            "mka": mka,
            "static": stat,
            "monitor": monitor,
            "traffic": traffic_json(&counters),
            "errors": errors_json(&counters),
            "counters": counters,
            "pumps": { "plain_to_secure": tp, "secure_to_plain": xp },
            "failovers": l.failovers,
        }));
    }
    let active: Vec<String> = c
        .selector
        .path()
        .links()
        .iter()
        .filter_map(|i| c.links.get(i).map(|l| l.name().to_owned()))
        .collect();
    let cipher = c
        .links
        .first()
        .and_then(|l| l.kay.as_ref())
        .map_or(c.cipher, |k| k.cipher);
    json!({
        "version": 1,
        "forwarder": {
            "name": sc.name,
            "pid": std::process::id(),
            "config": sc.config.display().to_string(),
            "uptime_s": c.uptime.as_secs_f64(),
            "plain": c.plain,
            "key_source": c.key_source,
            "cipher": cipher.name(),
            "threads": c.threads.map(|t| t.as_str()),
            "port_reopens": c.port_reopens,
        },
        "redundancy": {
            "mode": c.selector.mode().as_str(),
            "active": active,
            "failovers": c.failovers,
            "monitor": c.links.iter().any(|l| l.monitor.is_some()),
        },
        "links": links,
        "pumps": { "plain_to_secure": r.protect_total(), "secure_to_plain": r.validate_total() },
    })
    .to_string()
}

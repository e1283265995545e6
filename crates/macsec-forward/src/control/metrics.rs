//! The Prometheus text exposition (format 0.0.4) of a status document.
//!
//! The status is a snapshot, so the metrics are built from it at each scrape: the
//! families are collected here and written by `prometheus-client`'s text encoder through
//! a custom collector (it writes `# HELP`/`# TYPE`, the `_total` and `_info` suffixes and
//! escapes label values). Series whose value the status does not know (`null`) are left
//! out rather than exported as zero.
//!
//! Labels: `link` (the link's name), `sci` (the own SCI for the transmit SC, the peer's
//! for receive SCs and MKA peers), `an`, `direction`, `state`, `role`, and the `_info`
//! families' metadata. Never a PN, a key, a CKN or a member identifier.

use super::counters::{lookup, Scope, PUMP_COUNTERS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::Value;
use std::collections::HashMap;

/// The content type of what [`render_metrics`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Link states, one `macsec_link_state` series each.
const LINK_STATES: [&str; 3] = ["up", "degraded", "down"];
/// Link roles, one `macsec_link_role` series each.
const LINK_ROLES: [&str; 3] = ["active", "backup", "standby"];
/// MKA CA states, one `macsec_mka_state` series each.
const MKA_STATES: [&str; 3] = ["pending", "authenticated", "secured"];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Info,
    Histogram,
}

#[derive(Debug, Clone, Copy)]
enum Val {
    Int(u64),
    Float(f64),
    /// An info sample (value 1).
    One,
    /// A histogram without finite buckets: sum and count.
    Hist(f64, u64),
}

#[derive(Debug)]
struct Family {
    /// Without `_total` / `_info`: the encoder adds them.
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<(Labels, Val)>,
}

/// The families of one status, in the order they are first seen.
#[derive(Debug, Default)]
struct Families(Vec<Family>, HashMap<String, usize>);

impl Families {
    fn add(&mut self, name: &str, help: &str, kind: Kind, labels: Labels, v: Val) {
        let i = match self.1.get(name) {
            Some(i) => *i,
            None => {
                self.0.push(Family {
                    name: name.to_owned(),
                    help: help.to_owned(),
                    kind,
                    samples: Vec::new(),
                });
                self.1.insert(name.to_owned(), self.0.len() - 1);
                self.0.len() - 1
            }
        };
        debug_assert_eq!(self.0[i].kind, kind, "{name}");
        self.0[i].samples.push((labels, v));
    }

    fn counter(&mut self, name: &str, help: &str, labels: Labels, v: &Value) {
        if let Some(v) = int_or_float(v) {
            self.add(name, help, Kind::Counter, labels, v);
        }
    }

    fn gauge(&mut self, name: &str, help: &str, labels: Labels, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.add(name, help, Kind::Gauge, labels, Val::Float(v));
        }
    }

    /// A gauge straight from a JSON number (integers stay integers).
    fn gauge_of(&mut self, name: &str, help: &str, labels: Labels, v: &Value) {
        if let Some(v) = int_or_float(v) {
            self.add(name, help, Kind::Gauge, labels, v);
        }
    }

    fn count(&mut self, name: &str, help: &str, labels: Labels, n: Option<usize>) {
        if let Some(n) = n {
            self.add(name, help, Kind::Gauge, labels, Val::Int(n as u64));
        }
    }

    fn flag(&mut self, name: &str, help: &str, labels: Labels, v: &Value) {
        if let Some(b) = v.as_bool() {
            self.add(name, help, Kind::Gauge, labels, Val::Int(b as u64));
        }
    }

    fn info(&mut self, name: &str, help: &str, labels: Labels) {
        self.add(name, help, Kind::Info, labels, Val::One);
    }

    /// One series per possible value of `label`, 1 for `current` and 0 for the others.
    fn stateset(
        &mut self,
        name: &str,
        help: &str,
        base: &Labels,
        label: &'static str,
        all: &[&str],
        current: Option<&str>,
    ) {
        let Some(current) = current else {
            return;
        };
        for s in all {
            let mut l = base.clone();
            l.push((label, (*s).to_owned()));
            let v = (*s == current) as u64;
            self.add(name, help, Kind::Gauge, l, Val::Int(v));
        }
    }
}

/// The states of a key chain's keys (`crate::keychain::KeyState`).
const KEY_STATES: [&str; 4] = ["pending", "active", "retired", "expired"];

fn int_or_float(v: &Value) -> Option<Val> {
    match v.as_u64() {
        Some(n) => Some(Val::Int(n)),
        None => v.as_f64().filter(|f| f.is_finite()).map(Val::Float),
    }
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn ms_to_s(v: &Value) -> Option<f64> {
    v.as_f64().map(|ms| ms / 1000.0)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The share of the transmit PN space used: the MKA status's `pn_used_ratio`, or for
/// static keys the encoding SA's next PN against the cipher's last PN. `None` when
/// unknown.
pub fn pn_used_ratio(link: &Value, cipher: &str) -> Option<f64> {
    if let Some(r) = link["mka"]["pn_used_ratio"].as_f64() {
        return Some(r);
    }
    let tx = &link["counters"]["tx_sc"];
    let an = tx["encoding_sa"].as_u64()?;
    let sa = tx["sa"]
        .as_array()?
        .iter()
        .find(|s| s["an"].as_u64() == Some(an))?;
    let max = if cipher.contains("xpn") {
        u64::MAX as f64
    } else {
        u32::MAX as f64
    };
    match &sa["next_pn"] {
        // Exhausted.
        Value::Null => Some(1.0),
        v => v
            .as_u64()
            .map(|pn| (pn.saturating_sub(1) as f64 / max).min(1.0)),
    }
}

/// The 802.1AE counters of one object of `scope` (keys not in the table are skipped).
fn secy_counters(fam: &mut Families, scope: Scope, obj: &Value, labels: &Labels) {
    let Some(m) = obj.as_object() else {
        return;
    };
    for (k, v) in m {
        if let Some(c) = lookup(scope, k) {
            let help = format!("{} (802.1AE {})", c.help, c.name);
            fam.counter(c.metric, &help, labels.clone(), v);
        }
    }
}

/// Pump counters of one direction object.
fn pumps(fam: &mut Families, prefix: &str, what: &str, obj: &Value, labels: &Labels) {
    for dir in ["plain_to_secure", "secure_to_plain"] {
        let o = &obj[dir];
        for (field, help) in PUMP_COUNTERS {
            let mut l = labels.clone();
            l.push(("direction", dir.to_owned()));
            fam.counter(
                &format!("{prefix}_{field}"),
                &format!("{help} ({what}, pump counter {field})"),
                l,
                &o[*field],
            );
        }
    }
}

fn link_families(fam: &mut Families, l: &Value, cipher: &str) {
    let name = text(&l["name"]);
    let link: Labels = vec![("link", name)];
    let with = |k: &'static str, v: String| {
        let mut x = link.clone();
        x.push((k, v));
        x
    };
    fam.info(
        "macsec_link",
        "A secure link: its interface and its own SCI",
        vec![
            ("link", text(&l["name"])),
            ("interface", text(&l["secure"])),
            ("sci", text(&l["sci"])),
        ],
    );
    let state = l["state"].as_str();
    fam.count(
        "macsec_link_up",
        "1 when the link can carry traffic (state up or degraded), 0 when it is down",
        link.clone(),
        state.map(|s| (s != "down") as usize),
    );
    fam.flag(
        "macsec_link_secured",
        "1 when the link's SecY is secured (MKA: a SAK in use; static keys: installed)",
        link.clone(),
        &l["secured"],
    );
    fam.flag(
        "macsec_link_unprotected",
        "1 while frames pass unprotected (policy should-secure and not secured)",
        link.clone(),
        &l["unprotected"],
    );
    fam.flag(
        "macsec_link_carrier",
        "1 when the secure interface has carrier",
        link.clone(),
        &l["carrier"],
    );
    fam.stateset(
        "macsec_link_state",
        "The link's state: 1 for the current one of up, degraded, down",
        &link,
        "state",
        &LINK_STATES,
        state,
    );
    fam.stateset(
        "macsec_link_role",
        "The link's role: 1 for the current one of active (carries traffic), backup, standby",
        &link,
        "role",
        &LINK_ROLES,
        l["role"].as_str(),
    );
    fam.gauge_of(
        "macsec_link_priority",
        "The link's active-backup priority (lower is preferred)",
        link.clone(),
        &l["priority"],
    );
    fam.counter(
        "macsec_link_failovers",
        "Times traffic moved away from this link",
        link.clone(),
        &l["failovers"],
    );
    let t = &l["traffic"];
    for (key, metric, help) in [
        (
            "frames_out",
            "macsec_link_tx_packets",
            "Frames protected and sent on the link (802.1AE OutPktsProtected + OutPktsEncrypted)",
        ),
        (
            "octets_out",
            "macsec_link_tx_bytes",
            "User data octets protected and sent on the link (802.1AE OutOctetsProtected + OutOctetsEncrypted)",
        ),
        (
            "frames_in",
            "macsec_link_rx_packets",
            "Valid frames received on the link (802.1AE InPktsOK over the receive SCs)",
        ),
        (
            "octets_in",
            "macsec_link_rx_bytes",
            "User data octets of valid frames received on the link (802.1AE InOctetsValidated + InOctetsDecrypted)",
        ),
    ] {
        fam.counter(metric, help, link.clone(), &t[key]);
    }
    fam.gauge(
        "macsec_tx_pn_used_ratio",
        "Share of the transmit SA's packet number space used (MKA rekeys at 0.75; static keys stop at 1)",
        link.clone(),
        pn_used_ratio(l, cipher),
    );

    let mka = &l["mka"];
    if mka.is_object() {
        fam.stateset(
            "macsec_mka_state",
            "The MKA CA state: 1 for the current one of pending, authenticated, secured",
            &link,
            "state",
            &MKA_STATES,
            mka["state"].as_str(),
        );
        fam.gauge(
            "macsec_mka_secured_since_seconds",
            "Unix time at which the CA was last secured (absent while not secured)",
            link.clone(),
            f(&mka["secured_since_unix"]),
        );
        fam.flag(
            "macsec_mka_is_key_server",
            "1 when this end is the elected key server",
            link.clone(),
            &mka["is_key_server"],
        );
        for (key, metric, help) in [
            ("live_peers", "macsec_mka_live_peers", "Live MKA peers"),
            (
                "potential_peers",
                "macsec_mka_potential_peers",
                "Potential MKA peers (heard, not yet live)",
            ),
        ] {
            let peers = mka[key].as_array();
            fam.count(metric, help, link.clone(), peers.map(Vec::len));
            for p in peers.into_iter().flatten() {
                let mut lab = with("sci", text(&p["sci"]));
                lab.push(("status", key.trim_end_matches("_peers").to_owned()));
                fam.info(
                    "macsec_mka_peer",
                    "An MKA peer by SCI, live or potential",
                    lab,
                );
            }
        }
        fam.gauge_of(
            "macsec_mka_encoding_an",
            "Association number of the SAK this end transmits with",
            link.clone(),
            &mka["an"],
        );
        fam.gauge_of(
            "macsec_mka_key_number",
            "Key number of the latest SAK",
            link.clone(),
            &mka["kn"],
        );
        fam.gauge(
            "macsec_mka_last_mkpdu_age_seconds",
            "Seconds since the last valid MKPDU was received",
            link.clone(),
            f(&mka["last_mkpdu_s"]),
        );
        fam.counter(
            "macsec_mka_rekeys",
            "SAKs installed after the first (rekeys)",
            link.clone(),
            &mka["rekeys"],
        );
        fam.counter(
            "macsec_mka_key_switches",
            "Times traffic moved from one key's CA to another's (key chain rollover, fallback)",
            link.clone(),
            &mka["key_switches"],
        );
        fam.flag(
            "macsec_mka_fallback_in_use",
            "1 while the fallback key carries traffic (no primary key has a live peer)",
            link.clone(),
            &mka["key_in_use"]["fallback"],
        );
        if let Some(keys) = mka["keys"].as_array() {
            for st in KEY_STATES {
                let mut lab = link.clone();
                lab.push(("state", st.to_owned()));
                let n = keys.iter().filter(|k| k["state"] == st).count();
                fam.count(
                    "macsec_mka_keys",
                    "Keys of the key chain by state (pending, active, retired, expired)",
                    lab,
                    Some(n),
                );
            }
        }
    }
    for p in l["static"]["peers"].as_array().into_iter().flatten() {
        fam.gauge(
            "macsec_static_peer_last_valid_frame_age_seconds",
            "Seconds since the last valid frame from a statically keyed peer",
            with("sci", text(&p["sci"])),
            f(&p["last_valid_frame_s"]),
        );
    }

    let m = &l["monitor"];
    if m.is_object() {
        fam.flag(
            "macsec_monitor_active",
            "1 when the peer answers the link monitor's probes",
            link.clone(),
            &m["active"],
        );
        if let (Some(sum), Some(count)) = (f(&m["rtt_sum_s"]), m["rtt_samples_total"].as_u64()) {
            fam.add(
                "macsec_monitor_rtt_seconds",
                "Round-trip times of the link monitor's probes (sum and count; quantiles in macsec_monitor_rtt_p99_seconds)",
                Kind::Histogram,
                link.clone(),
                Val::Hist(sum, count),
            );
        }
        let rtt = &m["rtt_ms"];
        for (key, metric, help) in [
            (
                "last",
                "macsec_monitor_rtt_last_seconds",
                "Round-trip time of the latest probe",
            ),
            (
                "mean",
                "macsec_monitor_rtt_mean_seconds",
                "Mean probe round-trip time over the monitor's window",
            ),
            (
                "p99",
                "macsec_monitor_rtt_p99_seconds",
                "99th percentile of the probe round-trip time over the monitor's window",
            ),
        ] {
            fam.gauge(metric, help, link.clone(), ms_to_s(&rtt[key]));
        }
        fam.gauge(
            "macsec_monitor_jitter_seconds",
            "Probe round-trip jitter over the monitor's window",
            link.clone(),
            ms_to_s(&m["jitter_ms"]),
        );
        for (key, dir) in [("tx_dir", "tx"), ("rx_dir", "rx")] {
            fam.gauge(
                "macsec_monitor_loss_ratio",
                "Share of probes lost over the monitor's window, per direction (tx: ours to the peer)",
                with("direction", dir.to_owned()),
                f(&m["loss"][key]),
            );
        }
        fam.counter(
            "macsec_monitor_probes_sent",
            "Link monitor probes sent",
            link.clone(),
            &m["probes"]["sent"],
        );
        fam.counter(
            "macsec_monitor_probes_received",
            "Link monitor probes received from the peer",
            link.clone(),
            &m["probes"]["received"],
        );
    }

    let c = &l["counters"];
    secy_counters(fam, Scope::SecY, &c["secy"], &link);
    let tx = &c["tx_sc"];
    if tx.is_object() {
        let sc = with("sci", text(&tx["sci"]));
        secy_counters(fam, Scope::TxSc, tx, &sc);
        for sa in tx["sa"].as_array().into_iter().flatten() {
            let mut lab = sc.clone();
            lab.push(("an", text(&sa["an"])));
            secy_counters(fam, Scope::TxSa, sa, &lab);
        }
    }
    for rx in c["rx_sc"].as_array().into_iter().flatten() {
        let sc = with("sci", text(&rx["sci"]));
        secy_counters(fam, Scope::RxSc, rx, &sc);
        for sa in rx["sa"].as_array().into_iter().flatten() {
            let mut lab = sc.clone();
            lab.push(("an", text(&sa["an"])));
            fam.flag(
                "macsec_rx_sa_active",
                "1 when the receive SA is in use",
                lab.clone(),
                &sa["active"],
            );
            secy_counters(fam, Scope::RxSa, sa, &lab);
        }
    }
    pumps(fam, "macsec_link_pump", "this link", &l["pumps"], &link);
}

fn families(status: &Value) -> Families {
    let mut fam = Families::default();
    let fw = &status["forwarder"];
    let red = &status["redundancy"];
    fam.info(
        "macsec_forwarder",
        "The forwarder: its name, plain interface, key source, cipher suite, redundancy mode and version",
        vec![
            ("name", text(&fw["name"])),
            ("plain", text(&fw["plain"])),
            ("key_source", text(&fw["key_source"])),
            ("cipher", text(&fw["cipher"])),
            ("redundancy", text(&red["mode"])),
            ("threads", text(&fw["threads"])),
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ],
    );
    fam.gauge(
        "macsec_forwarder_uptime_seconds",
        "Seconds since the forwarder started",
        vec![],
        f(&fw["uptime_s"]),
    );
    fam.counter(
        "macsec_failovers",
        "Times traffic moved between links",
        vec![],
        &red["failovers"],
    );
    fam.count(
        "macsec_active_links",
        "Links carrying traffic now",
        vec![],
        red["active"].as_array().map(Vec::len),
    );
    let cipher = fw["cipher"].as_str().unwrap_or("");
    for l in status["links"].as_array().into_iter().flatten() {
        link_families(&mut fam, l, cipher);
    }
    pumps(
        &mut fam,
        "macsec_pump",
        "all links",
        &status["pumps"],
        &vec![],
    );
    fam
}

impl Collector for Families {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for fam in &self.0 {
            let t = match fam.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Info => MetricType::Info,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut me = enc.encode_descriptor(&fam.name, &fam.help, None, t)?;
            for (labels, v) in &fam.samples {
                let mut se = me.encode_family(labels)?;
                match *v {
                    Val::Int(n) if fam.kind == Kind::Counter => ConstCounter::new(n).encode(se)?,
                    Val::Int(n) => ConstGauge::new(n).encode(se)?,
                    Val::Float(x) if fam.kind == Kind::Counter => {
                        ConstCounter::new(x).encode(se)?
                    }
                    Val::Float(x) => ConstGauge::new(x).encode(se)?,
                    Val::One => Info::new(Vec::<(String, String)>::new()).encode(se)?,
                    Val::Hist(sum, count) => {
                        se.encode_histogram::<NoLabelSet>(sum, count, &[], None)?
                    }
                }
            }
        }
        Ok(())
    }
}

/// The Prometheus text exposition (format 0.0.4, [`CONTENT_TYPE`]) of a status document
/// (schema version 1). Unknown or missing fields are skipped; nothing fails.
pub fn render_metrics(status: &Value) -> String {
    let mut reg = Registry::default();
    reg.register_collector(Box::new(families(status)));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &reg);
    out
}

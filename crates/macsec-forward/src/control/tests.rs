//! The control socket and the metrics endpoint over real sockets in a temporary
//! directory, with a fake control loop answering from fixed documents; the metrics text
//! read back by a Prometheus text-format parser.

use super::counters::{lookup, Scope, COUNTERS, PUMP_COUNTERS};
use super::*;
use crossbeam::channel::Receiver;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(super) const MKA_SECURED: &str = include_str!("testdata/mka_secured.json");
pub(super) const STATIC: &str = include_str!("testdata/static.json");
pub(super) const TWO_LINKS: &str = include_str!("testdata/two_links.json");
const DASHBOARD: &str = include_str!("../../../../examples/grafana/macsec.json");

fn doc(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "macsec-ctl-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A control loop that answers every command from fixed texts (status without
/// `"version"`, so that the server's versioning is checked too), and never answers
/// when `mute`.
fn fake_loop(status: Value, mute: bool) -> (Sender<Request>, JoinHandle<Vec<Command>>) {
    let (tx, rx): (Sender<Request>, Receiver<Request>) = crossbeam::channel::bounded(8);
    let t = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut held = Vec::new();
        let mut events = EventLog::new();
        events.push_at(1.0, EventKind::Secured, Some("dx1"), "secured: AN 1, KN 2");
        for r in rx {
            seen.push(r.cmd);
            if mute {
                held.push(r.reply);
                continue;
            }
            let mut s = status.clone();
            s.as_object_mut().unwrap().remove("version");
            let answer = match r.cmd {
                Command::Status => s.to_string(),
                Command::Counters => {
                    json!({"event": "stats", "counters": s["links"][0]["counters"]}).to_string()
                }
                Command::Events => events.to_json(),
                Command::Rekey => answer_ok("link dx1: distributing a new SAK"),
                Command::Reload => {
                    answer_error("reload is not supported yet; restart the forwarder")
                }
            };
            let _ = r.reply.send(answer);
        }
        seen
    });
    (tx, t)
}

const T: Duration = Duration::from_secs(5);

/// Sends raw bytes on the control socket and returns the answer line, parsed.
fn raw(path: &Path, bytes: &[u8], half_close: bool) -> Value {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(bytes).unwrap();
    if half_close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.ends_with('\n') && out.matches('\n').count() == 1,
        "{out:?}"
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn default_socket_is_named_after_the_config_file() {
    assert_eq!(
        default_socket(Path::new("/etc/macsec/link1.toml")),
        Path::new("/run/macsec/link1.sock")
    );
    assert_eq!(
        default_socket(Path::new("site-a.conf")),
        Path::new("/run/macsec/site-a.sock")
    );
    assert_eq!(
        default_socket(Path::new("/")),
        Path::new("/run/macsec/macsec.sock")
    );
}

#[test]
fn round_trip_over_a_real_socket_with_every_command() {
    let d = TempDir::new("rt");
    // The directory does not exist yet: the server creates it with mode 0755.
    let path = d.path("run/macsec/link1.sock");
    let (to, lp) = fake_loop(doc(MKA_SECURED), false);
    let server = ControlServer::start(&path, to).unwrap();
    assert_eq!(server.path(), path);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&path), 0o660, "socket mode");
    assert_eq!(mode(&d.path("run/macsec")), 0o755, "directory mode");

    let status = query(&path, Command::Status, T).unwrap();
    let mut expected = doc(MKA_SECURED);
    expected["version"] = json!(1);
    assert_eq!(status, expected);
    let counters = query(&path, Command::Counters, T).unwrap();
    assert_eq!(counters["version"], 1);
    assert_eq!(counters["counters"]["rx_sc"][0]["InPktsOK"], 2097140);
    let events = query(&path, Command::Events, T).unwrap();
    assert_eq!(events["events"][0]["kind"], "secured");
    let rekey = query(&path, Command::Rekey, T).unwrap();
    assert_eq!(rekey["ok"], true);
    match query(&path, Command::Reload, T) {
        Err(QueryError::Refused { message, .. }) => {
            assert!(message.contains("not supported"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    // The wire form, by hand: a line ended by a newline without a half-close works too.
    let v = raw(&path, b"{\"cmd\":\"status\"}\n", false);
    assert_eq!(v["links"][0]["name"], "dx1");
    let v = raw(&path, b"{\"cmd\":\"bogus\"}", true);
    assert_eq!(v["version"], 1);
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("unknown command \"bogus\"")
            && e.contains("status, counters, events, rekey, reload"),
        "{e}"
    );
    let v = raw(&path, b"status please\n", false);
    assert!(
        v["error"].as_str().unwrap().contains("not a JSON request"),
        "{v}"
    );
    let v = raw(&path, b"{\"command\":\"status\"}\n", false);
    assert!(v["error"].as_str().unwrap().contains("no \"cmd\""), "{v}");

    drop(server);
    assert!(!path.exists(), "the socket file goes with the server");
    let seen = lp.join().unwrap();
    assert_eq!(
        seen,
        [
            Command::Status,
            Command::Counters,
            Command::Events,
            Command::Rekey,
            Command::Reload,
            Command::Status
        ],
        "invalid requests never reach the control loop"
    );
}

#[test]
fn a_stale_socket_is_reported_and_replaced() {
    let d = TempDir::new("stale");
    let path = d.path("link1.sock");
    // A forwarder that died: its socket file stays, nobody listens.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    match query(&path, Command::Status, T) {
        Err(e @ QueryError::Stale(_)) => {
            assert_eq!(e.short(), "stale socket: no forwarder listening");
            assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let (to, _lp) = fake_loop(doc(STATIC), false);
    let _server = ControlServer::start(&path, to).unwrap();
    assert_eq!(
        query(&path, Command::Status, T).unwrap()["forwarder"]["name"],
        "lab"
    );
    // No file at all.
    match query(&d.path("none.sock"), Command::Status, T) {
        Err(QueryError::Missing(p)) => assert_eq!(p, d.path("none.sock")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_live_socket_is_never_taken_over() {
    let d = TempDir::new("live");
    let path = d.path("link1.sock");
    let (to, _lp) = fake_loop(doc(MKA_SECURED), false);
    let first = ControlServer::start(&path, to.clone()).unwrap();
    let e = ControlServer::start(&path, to).unwrap_err();
    assert!(matches!(e, ControlError::InUse { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(path.to_str().unwrap()) && msg.contains("[control] socket"),
        "{msg}"
    );
    // The first one still serves.
    assert!(query(&path, Command::Status, T).is_ok());
    drop(first);

    // Something that is not a socket is left alone.
    let file = d.path("file.sock");
    std::fs::write(&file, "keep me").unwrap();
    let (to, _lp) = fake_loop(doc(MKA_SECURED), false);
    let e = ControlServer::start(&file, to).unwrap_err();
    assert!(matches!(e, ControlError::NotASocket { .. }), "{e:?}");
    assert!(e.to_string().contains("file.sock"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn silent_connections_are_dropped_and_bounded() {
    let d = TempDir::new("idle");
    let path = d.path("link1.sock");
    let (to, _lp) = fake_loop(doc(MKA_SECURED), false);
    let _server = ControlServer::start(&path, to).unwrap();
    let t0 = Instant::now();
    let mut idle: Vec<UnixStream> = (0..MAX_CONNECTIONS)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // Every slot is taken by a silent client: the next one is told so at once.
    match query(&path, Command::Status, T) {
        Err(QueryError::Refused { message, .. }) => assert!(message.contains("busy"), "{message}"),
        other => panic!("{other:?}"),
    }
    // The silent ones are closed after about 2 s, without an answer.
    for s in &mut idle {
        s.set_read_timeout(Some(T)).unwrap();
        let mut buf = Vec::new();
        assert_eq!(s.read_to_end(&mut buf).unwrap(), 0);
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_millis(4000),
        "{waited:?}"
    );
    // And the slots are free again.
    std::thread::sleep(Duration::from_millis(100));
    assert!(query(&path, Command::Status, T).is_ok());
}

#[test]
fn a_control_loop_that_does_not_answer_gives_an_error_in_time() {
    let d = TempDir::new("mute");
    let path = d.path("link1.sock");
    let (to, _lp) = fake_loop(doc(MKA_SECURED), true);
    let _server = ControlServer::start(&path, to).unwrap();
    let t0 = Instant::now();
    match query(&path, Command::Status, T) {
        Err(QueryError::Refused { message, .. }) => {
            assert!(
                message.contains("did not answer status within 2 s"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        t0.elapsed() < Duration::from_millis(3500),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn a_client_of_another_protocol_version_is_told_so() {
    let d = TempDir::new("ver");
    let path = d.path("v2.sock");
    let l = UnixListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut line = [0u8; 64];
        let _ = c.read(&mut line);
        c.write_all(b"{\"version\":2,\"links\":[]}\n").unwrap();
    });
    match query(&path, Command::Status, T) {
        Err(QueryError::BadAnswer { problem, .. }) => {
            assert!(problem.contains("version 2"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
    t.join().unwrap();
}

// --- metrics ---

type Series = BTreeMap<String, String>;

/// Parses a scrape with a real parser of the text format; returns each sample by name
/// and labels, each family's type, and each family's HELP.
fn parse_scrape(
    text: &str,
) -> (
    HashMap<(String, Series), f64>,
    HashMap<String, prom_text_format_parser::Type>,
) {
    use prom_text_format_parser::{Scrape, Type, ValueType};
    let scrape = Scrape::parse(text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let mut samples = HashMap::new();
    let mut types = HashMap::new();
    for m in &scrape.metrics {
        assert!(
            types.insert(m.name.clone(), m.kind).is_none(),
            "family {} twice",
            m.name
        );
        assert!(
            m.help_desc.as_deref().is_some_and(|h| !h.is_empty()),
            "{} has no HELP",
            m.name
        );
        for s in &m.samples {
            let suffix = match (m.kind, s.value.value_type) {
                (Type::Histogram, ValueType::Sample) => "_bucket",
                (_, ValueType::Sum) => "_sum",
                (_, ValueType::Count) => "_count",
                _ => "",
            };
            let labels: Series = s
                .labels
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect();
            let key = (format!("{}{suffix}", m.name), labels);
            let v = s.value.value.as_f64();
            assert!(samples.insert(key.clone(), v).is_none(), "{key:?} twice");
        }
    }
    (samples, types)
}

fn series(pairs: &[(&str, &str)]) -> Series {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// What the metrics must say about a status: every 802.1AE counter and pump counter
/// with its labels, plus the link figures.
fn expected_values(status: &Value) -> Vec<((String, Series), f64)> {
    let mut out = Vec::new();
    let mut table = |scope: Scope, obj: &Value, labels: &Series| {
        for (k, v) in obj.as_object().into_iter().flatten() {
            let not_counters = [
                "sci",
                "sa",
                "an",
                "encoding_sa",
                "next_pn",
                "lowest_pn",
                "active",
            ];
            if not_counters.contains(&k.as_str()) {
                continue;
            }
            // A misspelt key in a sample would otherwise go unchecked.
            let c = lookup(scope, k).unwrap_or_else(|| panic!("{k} not in the table"));
            let n = v.as_u64().unwrap_or_else(|| panic!("{k}: {v}"));
            out.push(((format!("{}_total", c.metric), labels.clone()), n as f64));
        }
    };
    for l in status["links"].as_array().unwrap() {
        let name = l["name"].as_str().unwrap();
        let link = series(&[("link", name)]);
        let c = &l["counters"];
        table(Scope::SecY, &c["secy"], &link);
        let tx_sci = c["tx_sc"]["sci"].as_str().unwrap();
        table(
            Scope::TxSc,
            &c["tx_sc"],
            &series(&[("link", name), ("sci", tx_sci)]),
        );
        for sa in c["tx_sc"]["sa"].as_array().unwrap() {
            let an = sa["an"].to_string();
            table(
                Scope::TxSa,
                sa,
                &series(&[("link", name), ("sci", tx_sci), ("an", &an)]),
            );
        }
        for sc in c["rx_sc"].as_array().unwrap() {
            let sci = sc["sci"].as_str().unwrap();
            table(Scope::RxSc, sc, &series(&[("link", name), ("sci", sci)]));
            for sa in sc["sa"].as_array().unwrap() {
                let an = sa["an"].to_string();
                table(
                    Scope::RxSa,
                    sa,
                    &series(&[("link", name), ("sci", sci), ("an", &an)]),
                );
            }
        }
    }
    for l in status["links"].as_array().unwrap() {
        let name = l["name"].as_str().unwrap();
        for dir in ["plain_to_secure", "secure_to_plain"] {
            for (f, _) in PUMP_COUNTERS {
                if let Some(n) = l["pumps"][dir][f].as_u64() {
                    out.push((
                        (
                            format!("macsec_link_pump_{f}_total"),
                            series(&[("link", name), ("direction", dir)]),
                        ),
                        n as f64,
                    ));
                }
            }
        }
        let link = series(&[("link", name)]);
        for (k, m) in [
            ("frames_out", "macsec_link_tx_packets_total"),
            ("octets_out", "macsec_link_tx_bytes_total"),
            ("frames_in", "macsec_link_rx_packets_total"),
            ("octets_in", "macsec_link_rx_bytes_total"),
        ] {
            out.push(((m.into(), link.clone()), l["traffic"][k].as_f64().unwrap()));
        }
        let flag = |v: &Value| if v.as_bool().unwrap() { 1.0 } else { 0.0 };
        out.push((
            ("macsec_link_secured".into(), link.clone()),
            flag(&l["secured"]),
        ));
        out.push((
            ("macsec_link_carrier".into(), link.clone()),
            flag(&l["carrier"]),
        ));
        out.push((
            ("macsec_link_failovers_total".into(), link.clone()),
            l["failovers"].as_f64().unwrap(),
        ));
        let state = l["state"].as_str().unwrap();
        out.push((
            ("macsec_link_up".into(), link.clone()),
            if state == "down" { 0.0 } else { 1.0 },
        ));
        for s in ["up", "degraded", "down"] {
            out.push((
                (
                    "macsec_link_state".into(),
                    series(&[("link", name), ("state", s)]),
                ),
                if s == state { 1.0 } else { 0.0 },
            ));
        }
        if l["mka"].is_object() {
            let m = &l["mka"];
            out.push((
                ("macsec_mka_rekeys_total".into(), link.clone()),
                m["rekeys"].as_f64().unwrap(),
            ));
            out.push((
                ("macsec_mka_live_peers".into(), link.clone()),
                m["live_peers"].as_array().unwrap().len() as f64,
            ));
            if let Some(t) = m["secured_since_unix"].as_f64() {
                out.push((("macsec_mka_secured_since_seconds".into(), link.clone()), t));
            }
        }
        if l["monitor"].is_object() {
            let m = &l["monitor"];
            for (k, d) in [("tx_dir", "tx"), ("rx_dir", "rx")] {
                out.push((
                    (
                        "macsec_monitor_loss_ratio".into(),
                        series(&[("link", name), ("direction", d)]),
                    ),
                    m["loss"][k].as_f64().unwrap(),
                ));
            }
            if let Some(p99) = m["rtt_ms"]["p99"].as_f64() {
                out.push((
                    ("macsec_monitor_rtt_p99_seconds".into(), link.clone()),
                    p99 / 1000.0,
                ));
            }
            out.push((
                ("macsec_monitor_rtt_seconds_count".into(), link.clone()),
                m["rtt_samples_total"].as_f64().unwrap(),
            ));
            out.push((
                ("macsec_monitor_rtt_seconds_sum".into(), link.clone()),
                m["rtt_sum_s"].as_f64().unwrap(),
            ));
            out.push((
                (
                    "macsec_monitor_rtt_seconds_bucket".into(),
                    series(&[("link", name), ("le", "+Inf")]),
                ),
                m["rtt_samples_total"].as_f64().unwrap(),
            ));
        }
    }
    for dir in ["plain_to_secure", "secure_to_plain"] {
        for (f, _) in PUMP_COUNTERS {
            if let Some(n) = status["pumps"][dir][f].as_u64() {
                out.push((
                    (
                        format!("macsec_pump_{f}_total"),
                        series(&[("direction", dir)]),
                    ),
                    n as f64,
                ));
            }
        }
    }
    out.push((
        ("macsec_failovers_total".into(), Series::new()),
        status["redundancy"]["failovers"].as_f64().unwrap(),
    ));
    out
}

fn check_rendering(status: &Value) -> String {
    let text = render_metrics(status);
    let (samples, types) = parse_scrape(&text);
    // Every expected value is there, equal to the JSON's.
    let expected = expected_values(status);
    for (key, v) in &expected {
        let got = samples
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} missing from\n{text}"));
        assert!((got - v).abs() <= v.abs() * 1e-12, "{key:?}: {got} != {v}");
    }
    // Every counter sample of the 802.1AE families is one the JSON has (nothing made up).
    let expected_keys: HashSet<_> = expected.iter().map(|(k, _)| k.clone()).collect();
    for (key, _) in samples.keys().zip(0..) {
        if COUNTERS
            .iter()
            .any(|c| key.0 == format!("{}_total", c.metric))
        {
            assert!(expected_keys.contains(key), "{key:?} not in the status");
        }
    }
    // Types and names.
    use prom_text_format_parser::Type;
    for (name, kind) in &types {
        assert!(name.starts_with("macsec_"), "{name}");
        assert_ne!(*kind, Type::Untyped, "{name} has no TYPE");
        assert_eq!(
            name.ends_with("_total"),
            *kind == Type::Counter,
            "{name}: counters, and only counters, end in _total"
        );
        if name.ends_with("_info") {
            assert_eq!(*kind, Type::Gauge, "{name}");
        }
    }
    for ((name, _), v) in &samples {
        if name.ends_with("_info") {
            assert_eq!(*v, 1.0, "{name}");
        }
    }
    // No PN, key, key name or member identifier anywhere.
    let mut secret = Vec::new();
    collect_secrets(status, &mut secret);
    assert!(!secret.is_empty());
    let tokens: HashSet<&str> = text.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    for s in &secret {
        assert!(!tokens.contains(s.as_str()), "{s} appears in\n{text}");
    }
    for bad in ["pn=", "ckn", "mi=", "key=", "cak"] {
        assert!(!text.contains(bad), "{bad} in\n{text}");
    }
    text
}

/// Values of PNs, CKNs, MIs and MNs in a status.
fn collect_secrets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if ["next_pn", "lowest_pn", "tx_next_pn", "ckn", "mi", "mn"].contains(&k.as_str()) {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        Value::Number(n) => out.push(n.to_string()),
                        _ => {}
                    }
                } else {
                    collect_secrets(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_secrets(v, out)),
        _ => {}
    }
}

#[test]
fn the_samples_are_consistent_with_the_helpers() {
    // `traffic` and `errors` as the control loop is meant to make them.
    for s in [MKA_SECURED, STATIC, TWO_LINKS] {
        for l in doc(s)["links"].as_array().unwrap() {
            assert_eq!(
                l["traffic"],
                counters::traffic_json(&l["counters"]),
                "{}",
                l["name"]
            );
            assert_eq!(
                l["errors"],
                counters::errors_json(&l["counters"]),
                "{}",
                l["name"]
            );
        }
    }
}

#[test]
fn the_parser_used_here_rejects_what_prometheus_rejects() {
    // So that the checks below can fail: a bad escape, a value that is not a number.
    use prom_text_format_parser::Scrape;
    assert!(Scrape::parse("x{a=\"b\"c\"} 1\n").is_err());
    assert!(Scrape::parse("x{a=\"b\"} one\n").is_err());
    assert!(Scrape::parse("# TYPE x counter\nx{a=\"b\\\"c\"} 1\n").is_ok());
}

#[test]
fn metrics_of_a_secured_mka_link_match_the_status() {
    let status = doc(MKA_SECURED);
    let text = check_rendering(&status);
    // A few lines as they must read.
    for line in [
        "# TYPE macsec_rx_sc_in_pkts_ok_total counter",
        "macsec_rx_sc_in_pkts_ok_total{link=\"dx1\",sci=\"020000000f020001\"} 2097140",
        "macsec_rx_sa_in_pkts_not_valid_total{link=\"dx1\",sci=\"020000000f020001\",an=\"1\"} 2",
        "macsec_rx_sc_in_decrypted_bytes_total{link=\"dx1\",sci=\"020000000f020001\"} 2831000001",
        "macsec_link_state{link=\"dx1\",state=\"up\"} 1",
        "macsec_link_state{link=\"dx1\",state=\"down\"} 0",
        "macsec_link_role{link=\"dx1\",role=\"active\"} 1",
        "macsec_mka_state{link=\"dx1\",state=\"secured\"} 1",
        "macsec_mka_secured_since_seconds{link=\"dx1\"} 1765000000.0",
        "macsec_mka_peer_info{link=\"dx1\",sci=\"020000000f020001\",status=\"live\"} 1",
        "macsec_tx_pn_used_ratio{link=\"dx1\"} 0.28744",
        "macsec_mka_is_key_server{link=\"dx1\"} 0",
        "macsec_monitor_rtt_seconds_bucket{link=\"dx1\",le=\"+Inf\"} 7227",
        "macsec_monitor_rtt_mean_seconds{link=\"dx1\"} 0.00025",
        "macsec_rx_sa_active{link=\"dx1\",sci=\"020000000f020001\",an=\"0\"} 0",
        "# TYPE macsec_forwarder_info gauge",
        "macsec_pump_eapol_total{direction=\"secure_to_plain\"} 123",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\nnot in\n{text}");
    }
    assert!(text
        .contains("# HELP macsec_rx_sc_in_pkts_ok_total Valid frames received (802.1AE InPktsOK)"));
}

#[test]
fn metrics_of_static_keys_and_of_a_down_backup() {
    let text = check_rendering(&doc(STATIC));
    // No MKA or monitor families without MKA or a monitor; static peers instead.
    assert!(!text.contains("macsec_mka_"), "{text}");
    assert!(!text.contains("macsec_monitor_"), "{text}");
    assert!(text.contains(
        "macsec_static_peer_last_valid_frame_age_seconds{link=\"veth-s\",sci=\"5254001234020001\"} 0.4"
    ));
    // The PN ratio from the encoding SA under an XPN suite: (5e9 - 0) / 2^64.
    let line = text
        .lines()
        .find(|l| l.starts_with("macsec_tx_pn_used_ratio{"))
        .unwrap();
    let r: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (r - 5_000_000_000f64 / u64::MAX as f64).abs() < 1e-15,
        "{r}"
    );

    let status = doc(TWO_LINKS);
    let text = check_rendering(&status);
    for line in [
        "macsec_link_up{link=\"dx2\"} 0",
        "macsec_link_secured{link=\"dx2\"} 0",
        "macsec_link_state{link=\"dx2\",state=\"down\"} 1",
        "macsec_link_role{link=\"dx2\",role=\"backup\"} 1",
        "macsec_mka_state{link=\"dx2\",state=\"pending\"} 1",
        "macsec_mka_potential_peers{link=\"dx2\"} 1",
        "macsec_mka_live_peers{link=\"dx2\"} 0",
        "macsec_failovers_total 1",
        "macsec_link_failovers_total{link=\"dx2\"} 1",
        "macsec_active_links 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\nnot in\n{text}");
    }
    // Unknown values are left out, not exported as 0.
    assert!(!text.contains("macsec_mka_secured_since_seconds{link=\"dx2\"}"));
    assert!(!text.contains("macsec_monitor_rtt_p99_seconds{link=\"dx2\"}"));
    assert!(!text.contains("macsec_tx_pn_used_ratio{link=\"dx2\"}"));
    // An empty or foreign document renders without failing.
    let (s, _) = parse_scrape(&render_metrics(&json!({})));
    assert!(s.keys().any(|(n, _)| n == "macsec_forwarder_info"));
    let _ =
        render_metrics(&json!({"links": [{"name": 3, "counters": {"secy": {"InPktsOK": "x"}}}]}));
}

#[test]
fn label_values_are_escaped() {
    let mut status = doc(MKA_SECURED);
    status["forwarder"]["name"] = json!("we\"ird\\name\nline2");
    status["forwarder"]["plain"] = json!("eth\\1");
    let text = check_rendering(&status);
    let line = text
        .lines()
        .find(|l| l.starts_with("macsec_forwarder_info{"))
        .unwrap();
    assert!(
        line.contains(r#"name="we\"ird\\name\nline2""#) && line.contains(r#"plain="eth\\1""#),
        "{line}"
    );
}

#[test]
fn promtool_accepts_the_scrape_when_installed() {
    // Debian's `prometheus` package has promtool; CI may point PROMTOOL at it.
    let tool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    for s in [MKA_SECURED, STATIC, TWO_LINKS] {
        let Ok(mut child) = std::process::Command::new(&tool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        else {
            eprintln!("skipped: {tool} not found (apt-get install prometheus, or set PROMTOOL)");
            return;
        };
        let text = render_metrics(&doc(s));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let msg = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && msg.trim().is_empty(), "{msg}");
    }
}

// --- HTTP ---

fn http(addr: std::net::SocketAddr, request: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_owned(), headers.to_owned(), body.to_owned())
}

#[test]
fn the_http_endpoint_serves_metrics_and_nothing_else() {
    let status = doc(TWO_LINKS);
    let (to, lp) = fake_loop(status.clone(), false);
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), to).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let (st, headers, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(st, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{headers}"
    );
    assert!(headers.contains(&format!("Content-Length: {}", body.len())));
    let mut versioned = status.clone();
    versioned["version"] = json!(1);
    assert_eq!(body, render_metrics(&versioned));
    check_rendering(&versioned);
    // A query string is fine; HEAD has the head only.
    let (st, _, _) = http(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
    assert_eq!(st, "HTTP/1.1 200 OK");
    let (st, h, b) = http(addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(st, "HTTP/1.1 200 OK");
    assert!(b.is_empty() && !h.contains("Content-Length: 0"), "{h}");

    let (st, _, body) = http(addr, "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(st, "HTTP/1.1 404 Not Found");
    assert!(body.contains("/metrics"));
    let (st, h, _) = http(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(st, "HTTP/1.1 405 Method Not Allowed");
    assert!(h.contains("Allow: GET, HEAD"));
    let (st, _, _) = http(addr, "NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(st, "HTTP/1.1 400 Bad Request");

    // A silent client is closed after about 2 s.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(T)).unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    assert_eq!(idle.read_to_end(&mut buf).unwrap(), 0);
    assert!(
        t0.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t0.elapsed()
    );

    drop(server);
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "stopped on drop"
    );
    // Only the /metrics requests reached the control loop.
    assert_eq!(lp.join().unwrap(), [Command::Status; 3]);
}

#[test]
fn a_scrape_without_an_answer_is_503_in_time() {
    let (to, _lp) = fake_loop(doc(STATIC), true);
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), to).unwrap();
    let t0 = Instant::now();
    let (st, _, body) = http(server.local_addr(), "GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(st, "HTTP/1.1 503 Service Unavailable");
    assert!(body.contains("did not answer"), "{body}");
    assert!(t0.elapsed() < Duration::from_millis(3500));
    // A port in use is an error naming the address and the setting.
    let (to2, _lp2) = fake_loop(doc(STATIC), false);
    let e = MetricsServer::start(server.local_addr(), to2).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&server.local_addr().to_string()) && msg.contains("[metrics] listen"),
        "{msg}"
    );
}

// --- the dashboard ---

/// Every `macsec_*` name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(off) = expr[i..].find("macsec_") {
        let start = i + off;
        let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
        if start > 0 && ident(b[start - 1]) {
            i = start + 1;
            continue;
        }
        let mut end = start;
        while end < b.len() && ident(b[end]) {
            end += 1;
        }
        out.push(expr[start..end].to_owned());
        i = end;
    }
    out
}

fn panels(v: &Value, out: &mut Vec<Value>) {
    for p in v["panels"].as_array().into_iter().flatten() {
        out.push(p.clone());
        panels(p, out);
    }
}

#[test]
fn the_dashboard_uses_only_metrics_the_renderer_produces() {
    let dash: Value = serde_json::from_str(DASHBOARD).expect("valid JSON");
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dash["__inputs"][0]["pluginId"], "prometheus");
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    // Every name a scrape can have: samples of the three documents.
    let mut known = HashSet::new();
    for s in [MKA_SECURED, STATIC, TWO_LINKS] {
        let (samples, _) = parse_scrape(&render_metrics(&doc(s)));
        known.extend(samples.into_keys().map(|(n, _)| n));
    }
    let mut all = Vec::new();
    panels(&dash, &mut all);
    let mut used = HashSet::new();
    let mut titles = Vec::new();
    for p in &all {
        if p["type"] == "row" {
            continue;
        }
        titles.push(p["title"].as_str().unwrap().to_owned());
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr}");
            for n in names {
                assert!(
                    known.contains(&n),
                    "{}: {n} is not a metric the forwarder exports",
                    p["title"]
                );
                used.insert(n);
            }
        }
    }
    for needed in [
        "macsec_link_state",
        "macsec_link_secured",
        "macsec_link_tx_bytes_total",
        "macsec_link_rx_packets_total",
        "macsec_monitor_rtt_p99_seconds",
        "macsec_monitor_loss_ratio",
        "macsec_failovers_total",
        "macsec_tx_pn_used_ratio",
    ] {
        assert!(used.contains(needed), "no panel shows {needed}");
    }
    assert!(titles.len() >= 9, "{titles:?}");
    promql_is_valid(&all);
    // The self-check of the name scanner.
    assert_eq!(
        metric_names("sum by (link) (rate(macsec_rx_sc_in_pkts_not_valid_total{link=~\"$link\"}[5m])) + xmacsec_no"),
        ["macsec_rx_sc_in_pkts_not_valid_total"]
    );
}

/// Every expression parses as PromQL (Grafana's variables replaced by values), checked
/// by promtool as recording rules when it is installed.
fn promql_is_valid(panels: &[Value]) {
    let tool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for t in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
    {
        let expr = t["expr"]
            .as_str()
            .unwrap()
            .replace("$__rate_interval", "1m")
            .replace("$__range", "1h")
            .replace("$instance", ".*")
            .replace("$link", ".*");
        assert!(!expr.contains('$'), "unknown variable in {expr}");
        rules.push_str(&format!(
            "      - record: dashboard:expr_{n}\n        expr: {}\n",
            json!(expr)
        ));
        n += 1;
    }
    let d = TempDir::new("promql");
    let file = d.path("rules.yml");
    std::fs::write(&file, rules).unwrap();
    let out = match std::process::Command::new(&tool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            eprintln!("skipped: PromQL check, {tool} not found (apt-get install prometheus, or set PROMTOOL)");
            return;
        }
    };
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains(&format!("SUCCESS: {n} rules found")), "{msg}");
}

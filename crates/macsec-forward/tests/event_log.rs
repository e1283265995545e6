//! Each event is one structured log line: with the JSON formatter (`macsec forward
//! --log-format json`), one JSON object with `event` and `link` fields. A test binary of
//! its own: tracing caches per call site whether anyone listens, and the unit tests of
//! the library log from the same call sites on other threads.

use macsec_forward::control::{EventKind, EventLog};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A writer the JSON log formatter writes into.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_event_is_one_json_log_line_with_its_fields() {
    let cap = Capture::default();
    let w = cap.clone();
    let sub = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(move || w.clone())
        .finish();
    let mut log = EventLog::new();
    tracing::subscriber::with_default(sub, || {
        log.push_at(
            1.5,
            EventKind::LinkDown,
            Some("dx1"),
            "link dx1 down: peer probes lost",
        );
        log.push_at(2.5, EventKind::Rekey, None, "new SAK: AN 1, KN 2");
    });
    let text = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(lines[0]["event"], "link_down");
    assert_eq!(lines[0]["link"], "dx1");
    assert_eq!(lines[0]["message"], "link dx1 down: peer probes lost");
    assert_eq!(lines[1]["level"], "INFO");
    assert_eq!(lines[1]["event"], "rekey");
    assert!(lines[1].get("link").is_none(), "{text}");
    assert_eq!(log.events().len(), 2);
}

//! The event log: link up/down/degraded, secured/unsecured, rekey, failover and key
//! mismatch suspected. Each event is one structured log line (fields `event` and `link`,
//! so `--log-format json` gives one JSON object per event) and stays in a ring of the
//! last [`EVENT_LOG_LEN`] for `macsec status --events`.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

/// Events kept for `macsec status --events`.
pub const EVENT_LOG_LEN: usize = 50;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A link became up (usable and healthy).
    LinkUp,
    /// A link went down.
    LinkDown,
    /// A link is degraded (loss or RTT over its limits).
    LinkDegraded,
    /// The link's SecY is secured (MKA: a SAK is in use; static keys: installed).
    Secured,
    /// The link's SecY lost its keys.
    Unsecured,
    /// A new SAK was distributed or installed.
    Rekey,
    /// Traffic moved between links.
    Failover,
    /// A peer's frames or MKPDUs fail validation as a different key would make them.
    KeyMismatchSuspected,
    /// Traffic moved from one key's CA to another's (key chain rollover or fallback).
    KeySwitch,
    /// Frames pass unprotected (policy should-secure, not secured).
    Unprotected,
    /// A should-secure link is secured again: only protected frames pass.
    Protected,
}

impl EventKind {
    /// The snake-case name (as in JSON and the `event` log field).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LinkUp => "link_up",
            EventKind::LinkDown => "link_down",
            EventKind::LinkDegraded => "link_degraded",
            EventKind::Secured => "secured",
            EventKind::Unsecured => "unsecured",
            EventKind::Rekey => "rekey",
            EventKind::Failover => "failover",
            EventKind::KeyMismatchSuspected => "key_mismatch_suspected",
            EventKind::KeySwitch => "key_switch",
            EventKind::Unprotected => "unprotected",
            EventKind::Protected => "protected",
        }
    }

    /// Whether the event is logged as a warning (something got worse) or as info.
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            EventKind::LinkDown
                | EventKind::LinkDegraded
                | EventKind::Unsecured
                | EventKind::Failover
                | EventKind::KeyMismatchSuspected
                | EventKind::Unprotected
        )
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When, in seconds since the Unix epoch.
    pub at_unix: f64,
    /// The link it concerns (`None`: the forwarder as a whole).
    pub link: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// In words, for people; never key material.
    pub message: String,
}

/// The last [`EVENT_LOG_LEN`] events, oldest first.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    ring: VecDeque<Event>,
    total: u64,
}

/// Now, in seconds since the Unix epoch.
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl EventLog {
    /// An empty log.
    pub fn new() -> EventLog {
        EventLog::default()
    }

    /// Records an event now and logs it as one line.
    pub fn push(&mut self, kind: EventKind, link: Option<&str>, message: impl Into<String>) {
        self.push_at(now_unix(), kind, link, message);
    }

    /// Records an event that happened at `at_unix` and logs it as one line.
    pub fn push_at(
        &mut self,
        at_unix: f64,
        kind: EventKind,
        link: Option<&str>,
        message: impl Into<String>,
    ) {
        let e = Event {
            at_unix,
            link: link.map(str::to_owned),
            kind,
            message: message.into(),
        };
        log(&e);
        if self.ring.len() == EVENT_LOG_LEN {
            self.ring.pop_front();
        }
        self.ring.push_back(e);
        self.total += 1;
    }

    /// The events kept, oldest first.
    pub fn events(&self) -> impl ExactSizeIterator<Item = &Event> {
        self.ring.iter()
    }

    /// Events recorded since the start, including those no longer kept.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The answer to the `events` command:
    /// `{"version":1,"total":N,"events":[{"at_unix","link","kind","message"}...]}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "version": super::PROTOCOL_VERSION,
            "total": self.total,
            "events": self.ring,
        })
        .to_string()
    }
}

/// One log line: the message, with `event` and (when there is one) `link` as fields.
fn log(e: &Event) {
    let kind = e.kind.as_str();
    let link = e.link.as_deref();
    let msg = &e.message;
    if e.kind.is_warning() {
        tracing::warn!(event = kind, link, "{msg}");
    } else {
        tracing::info!(event = kind, link, "{msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The log line itself: tests/event_log.rs (its own process, as tracing's callsite
    // cache is shared by the tests of one binary).

    #[test]
    fn the_ring_keeps_the_last_fifty_oldest_first() {
        let mut log = EventLog::new();
        for i in 0..(EVENT_LOG_LEN + 7) {
            log.push_at(i as f64, EventKind::Failover, Some("dx1"), format!("#{i}"));
        }
        assert_eq!(log.events().len(), EVENT_LOG_LEN);
        assert_eq!(log.total(), EVENT_LOG_LEN as u64 + 7);
        let v: serde_json::Value = serde_json::from_str(&log.to_json()).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["total"], 57);
        let ev = v["events"].as_array().unwrap();
        assert_eq!(ev.len(), 50);
        assert_eq!(ev[0]["message"], "#7");
        assert_eq!(ev[49]["message"], "#56");
        assert_eq!(ev[49]["kind"], "failover");
        assert_eq!(ev[49]["link"], "dx1");
        assert_eq!(ev[49]["at_unix"], 56.0);
        // The wire form reads back.
        let back: Event = serde_json::from_value(ev[0].clone()).unwrap();
        assert_eq!(back.kind, EventKind::Failover);
    }

    #[test]
    fn kinds_are_snake_case_on_the_wire() {
        for (k, s) in [
            (EventKind::LinkUp, "link_up"),
            (EventKind::LinkDown, "link_down"),
            (EventKind::LinkDegraded, "link_degraded"),
            (EventKind::Secured, "secured"),
            (EventKind::Unsecured, "unsecured"),
            (EventKind::Rekey, "rekey"),
            (EventKind::Failover, "failover"),
            (EventKind::KeyMismatchSuspected, "key_mismatch_suspected"),
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), s);
            assert_eq!(k.as_str(), s);
        }
    }
}

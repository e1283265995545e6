//! Telling the operator when a peer's frames keep failing: a receive SC whose
//! InPktsNotValid or InPktsNotUsingSA rises for a few seconds with no InPktsOK, or
//! frames from an SCI with no receive SC (InPktsNoSCI), most likely mean the two ends
//! differ in key, SCI, cipher suite or confidentiality offset. One warning per cause,
//! at most once a minute.

use macsec::secy::RxStats;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a counter must rise with no valid frame before it is reported.
const PERSIST: Duration = Duration::from_secs(3);
/// The least time between two warnings about the same thing.
const QUIET: Duration = Duration::from_secs(60);

/// One link's watch over its receive counters.
#[derive(Debug, Default)]
pub(super) struct MismatchWatch {
    /// Per SCI (and "" for the SecY): recent (time, InPktsOK, InPktsNotValid,
    /// InPktsNotUsingSA, InPktsNoSCI) samples.
    history: HashMap<String, VecDeque<(Instant, [u64; 4])>>,
    warned: HashMap<(String, &'static str), Instant>,
}

impl MismatchWatch {
    /// Looks at a new snapshot of the link's receive counters; returns the warnings
    /// that are due.
    pub(super) fn observe(&mut self, now: Instant, r: &RxStats) -> Vec<String> {
        let total_ok: u64 = r.rx_sc.iter().map(|s| s.counters.in_pkts_ok).sum();
        let mut samples: Vec<(String, [u64; 4])> = r
            .rx_sc
            .iter()
            .map(|s| {
                let c = &s.counters;
                (
                    s.sci.clone(),
                    [c.in_pkts_ok, c.in_pkts_not_valid, c.in_pkts_not_using_sa, 0],
                )
            })
            .collect();
        samples.push((String::new(), [total_ok, 0, 0, r.secy.in_pkts_no_sci]));
        let mut out = Vec::new();
        for (key, v) in samples {
            let h = self.history.entry(key.clone()).or_default();
            h.push_back((now, v));
            while h.len() > 2 && now.duration_since(h[1].0) >= PERSIST {
                h.pop_front();
            }
            let (t0, old) = h[0];
            if now.duration_since(t0) < PERSIST || v[0] > old[0] {
                continue;
            }
            let d = |i: usize| v[i].saturating_sub(old[i]);
            let secs = now.duration_since(t0).as_secs();
            let mut due = |what: &'static str, msg: String| {
                let k = (key.clone(), what);
                if self
                    .warned
                    .get(&k)
                    .is_none_or(|t| now.duration_since(*t) >= QUIET)
                {
                    self.warned.insert(k, now);
                    out.push(msg);
                }
            };
            if d(1) > 0 {
                due("InPktsNotValid", format!(
                    "frames from peer SCI {key} keep failing validation (InPktsNotValid +{} in {secs} s, no InPktsOK): the two ends most likely use different keys, cipher suites or confidentiality offsets",
                    d(1)
                ));
            }
            if d(2) > 0 {
                due("InPktsNotUsingSA", format!(
                    "frames from peer SCI {key} use an association number with no SA here (InPktsNotUsingSA +{} in {secs} s, no InPktsOK): the two ends disagree on the key in use (encoding_sa, or an SA missing)",
                    d(2)
                ));
            }
            if d(3) > 0 {
                let sci = r
                    .last_unknown_sci
                    .map_or_else(|| "unknown".to_owned(), |s| s.to_string());
                due("InPktsNoSCI", format!(
                    "frames from SCI {sci}, which has no receive SC here, are dropped (InPktsNoSCI +{} in {secs} s, no InPktsOK): the peer's SCI differs from [[secy.rx]] sci, or the peer uses another SCI than configured",
                    d(3)
                ));
            }
        }
        out
    }
}

//! The one table from the 802.1AE counter names (as the core's `fields()` name them, the
//! keys of the counters JSON) to Prometheus metric names. The metrics renderer, the
//! status's `errors` and `macsec status` all read it, so a counter has one name per
//! surface and the surfaces agree.
//!
//! | scope | labels | metric | from |
//! |---|---|---|---|
//! | SecY (per link) | `link` | `macsec_secy_<name>_total` | `counters.secy` |
//! | transmit SC | `link`, `sci` (own) | `macsec_tx_sc_<name>_total` | `counters.tx_sc` |
//! | transmit SA | `link`, `sci`, `an` | `macsec_tx_sa_<name>_total` | `counters.tx_sc.sa[]` |
//! | receive SC | `link`, `sci` (the peer's) | `macsec_rx_sc_<name>_total` | `counters.rx_sc[]` |
//! | receive SA | `link`, `sci`, `an` | `macsec_rx_sa_<name>_total` | `counters.rx_sc[].sa[]` |
//!
//! `<name>` is the 802.1AE name in snake case, with octet counters in bytes:
//! `InPktsOK` is `in_pkts_ok`, `InOctetsDecrypted` is `in_decrypted_bytes`. A new SA
//! (MKA rekeys cycle the AN) starts its counters at zero, which Prometheus reads as a
//! counter reset of that `an` series.
//!
//! The pump counters are not 802.1AE counters: `macsec_pump_<field>_total{direction}`
//! (forwarder totals) and `macsec_link_pump_<field>_total{link,direction}` (per link),
//! described by [`PUMP_COUNTERS`].

use serde_json::Value;

/// Where a counter lives, which decides its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Per SecY (one per link): both directions.
    SecY,
    /// The transmit SC.
    TxSc,
    /// A transmit SA.
    TxSa,
    /// A receive SC (one per peer).
    RxSc,
    /// A receive SA.
    RxSa,
}

impl Scope {
    /// The labels of its series.
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Scope::SecY => &["link"],
            Scope::TxSc | Scope::RxSc => &["link", "sci"],
            Scope::TxSa | Scope::RxSa => &["link", "sci", "an"],
        }
    }
}

/// One 802.1AE counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterName {
    /// Where it lives.
    pub scope: Scope,
    /// The 802.1AE / IEEE8021-SECY-MIB name (or the core's extension name).
    pub name: &'static str,
    /// The metric name without `_total` (the exposition adds it).
    pub metric: &'static str,
    /// Counts frames that were dropped, delivered unvalidated, or sent unprotected: shown
    /// by `macsec status` and in the status's `errors` when not zero.
    pub error: bool,
    /// What it counts.
    pub help: &'static str,
}

const fn c(
    scope: Scope,
    name: &'static str,
    metric: &'static str,
    error: bool,
    help: &'static str,
) -> CounterName {
    CounterName {
        scope,
        name,
        metric,
        error,
        help,
    }
}

use Scope::{RxSa, RxSc, SecY, TxSa, TxSc};

/// Every counter the core exports, in the order of its `fields()`.
#[rustfmt::skip]
pub const COUNTERS: &[CounterName] = &[
    // Per-SecY receive (802.1AE 10.7.9).
    c(SecY, "InPktsUntagged", "macsec_secy_in_pkts_untagged", true, "Untagged frames received and delivered (validateFrames not Strict)"),
    c(SecY, "InPktsNoTag", "macsec_secy_in_pkts_no_tag", true, "Untagged frames received and discarded (validateFrames Strict)"),
    c(SecY, "InPktsBadTag", "macsec_secy_in_pkts_bad_tag", true, "Frames received with an invalid SecTAG or length, discarded"),
    c(SecY, "InPktsNoSA", "macsec_secy_in_pkts_no_sa", true, "Frames received for an unknown SCI or an SA not in use, delivered unvalidated"),
    c(SecY, "InPktsNoSAError", "macsec_secy_in_pkts_no_sa_error", true, "Frames received for an unknown SCI or an SA not in use, discarded"),
    c(SecY, "InPktsUnknownSCI", "macsec_secy_in_pkts_unknown_sci", true, "Frames received with an unknown SCI, delivered unvalidated (2006 layout)"),
    c(SecY, "InPktsNoSCI", "macsec_secy_in_pkts_no_sci", true, "Frames received with an unknown SCI, discarded (2006 layout)"),
    c(SecY, "InPktsOverrun", "macsec_secy_in_pkts_overrun", true, "Frames discarded because the receiver could not keep up"),
    c(SecY, "InOctetsValidated", "macsec_secy_in_validated_bytes", false, "User data octets of valid integrity-only frames received"),
    c(SecY, "InOctetsDecrypted", "macsec_secy_in_decrypted_bytes", false, "User data octets of valid encrypted frames received"),
    c(SecY, "InPktsUncontrolled", "macsec_secy_in_pkts_uncontrolled", true, "Frames with E=1, C=0, for the uncontrolled port only (not 802.1AE)"),
    // Per-SecY transmit (802.1AE 10.7.8).
    c(SecY, "OutPktsUntagged", "macsec_secy_out_pkts_untagged", true, "Frames sent unprotected (protectFrames false)"),
    c(SecY, "OutPktsTooLong", "macsec_secy_out_pkts_too_long", true, "Frames discarded because the protected frame would exceed the MTU"),
    c(SecY, "OutOctetsProtected", "macsec_secy_out_protected_bytes", false, "User data octets of integrity-only frames sent"),
    c(SecY, "OutOctetsEncrypted", "macsec_secy_out_encrypted_bytes", false, "User data octets of encrypted frames sent"),
    c(SecY, "OutPktsNoSA", "macsec_secy_out_pkts_no_sa", true, "Frames discarded because no encoding SA is in use (not 802.1AE)"),
    c(SecY, "OutPktsPnExhausted", "macsec_secy_out_pkts_pn_exhausted", true, "Frames discarded because the encoding SA used its last or reserved PN (not 802.1AE)"),
    c(SecY, "OutPktsMalformed", "macsec_secy_out_pkts_malformed", true, "Frames discarded as not valid Ethernet frames (not 802.1AE)"),
    c(SecY, "OutPktsSourceMismatch", "macsec_secy_out_pkts_source_mismatch", true, "Frames discarded because their source is not the end station's SCI address (not 802.1AE)"),
    // Transmit SC and SAs.
    c(TxSc, "OutPktsProtected", "macsec_tx_sc_out_pkts_protected", false, "Integrity-only frames sent"),
    c(TxSc, "OutPktsEncrypted", "macsec_tx_sc_out_pkts_encrypted", false, "Encrypted frames sent"),
    c(TxSc, "OutOctetsProtected", "macsec_tx_sc_out_protected_bytes", false, "User data octets of integrity-only frames sent"),
    c(TxSc, "OutOctetsEncrypted", "macsec_tx_sc_out_encrypted_bytes", false, "User data octets of encrypted frames sent"),
    c(TxSa, "OutPktsProtected", "macsec_tx_sa_out_pkts_protected", false, "Integrity-only frames sent with this SA"),
    c(TxSa, "OutPktsEncrypted", "macsec_tx_sa_out_pkts_encrypted", false, "Encrypted frames sent with this SA"),
    // Receive SCs and SAs.
    c(RxSc, "InPktsOK", "macsec_rx_sc_in_pkts_ok", false, "Valid frames received"),
    c(RxSc, "InPktsUnchecked", "macsec_rx_sc_in_pkts_unchecked", true, "Frames delivered without validation (validateFrames Disabled)"),
    c(RxSc, "InPktsDelayed", "macsec_rx_sc_in_pkts_delayed", true, "Frames below the lowest acceptable PN, delivered (replayProtect off)"),
    c(RxSc, "InPktsLate", "macsec_rx_sc_in_pkts_late", true, "Frames below the lowest acceptable PN, discarded (replayProtect on)"),
    c(RxSc, "InPktsInvalid", "macsec_rx_sc_in_pkts_invalid", true, "Frames that failed validation, delivered (validateFrames Check, integrity only)"),
    c(RxSc, "InPktsNotValid", "macsec_rx_sc_in_pkts_not_valid", true, "Frames that failed validation, discarded"),
    c(RxSc, "InPktsNotUsingSA", "macsec_rx_sc_in_pkts_not_using_sa", true, "Frames for an SA not in use, discarded"),
    c(RxSc, "InPktsUnusedSA", "macsec_rx_sc_in_pkts_unused_sa", true, "Frames for an SA not in use, delivered unvalidated"),
    c(RxSc, "InOctetsValidated", "macsec_rx_sc_in_validated_bytes", false, "User data octets of valid integrity-only frames received"),
    c(RxSc, "InOctetsDecrypted", "macsec_rx_sc_in_decrypted_bytes", false, "User data octets of valid encrypted frames received"),
    c(RxSa, "InPktsOK", "macsec_rx_sa_in_pkts_ok", false, "Valid frames received with this SA"),
    c(RxSa, "InPktsInvalid", "macsec_rx_sa_in_pkts_invalid", true, "Frames that failed validation with this SA, delivered"),
    c(RxSa, "InPktsNotValid", "macsec_rx_sa_in_pkts_not_valid", true, "Frames that failed validation with this SA, discarded"),
    c(RxSa, "InPktsNotUsingSA", "macsec_rx_sa_in_pkts_not_using_sa", true, "Frames for an SA of this SC not in use, discarded"),
    c(RxSa, "InPktsUnusedSA", "macsec_rx_sa_in_pkts_unused_sa", true, "Frames for an SA of this SC not in use, delivered unvalidated"),
];

/// The pump counters (`PumpCounters` field names) and what they count. Exported as
/// `macsec_pump_<field>_total{direction}` and `macsec_link_pump_<field>_total{link,direction}`.
#[rustfmt::skip]
pub const PUMP_COUNTERS: &[(&str, &str)] = &[
    ("frames_in", "Frames taken from the receive port"),
    ("frames_out", "Frames handed to the transmit port"),
    ("secy_dropped", "Frames the SecY did not pass (its counters say why)"),
    ("tx_ring_full", "Frames lost because the transmit ring stayed full"),
    ("tx_errors", "Transmit errors reported by the kernel"),
    ("truncated", "Frames the receive ring captured only in part"),
    ("oversize", "Frames too large for the outgoing port that could not be segmented"),
    ("csum_completed", "Frames whose offloaded transport checksum was completed"),
    ("csum_failed", "Frames whose offloaded checksum could not be completed"),
    ("gso_frames", "Super-frames (GSO) received and segmented"),
    ("gso_segments", "Segments produced from super-frames"),
    ("eapol", "EAPOL frames seen on the secure port (left to the KaY)"),
    ("kernel_drops", "Frames the kernel dropped before the pump read them"),
    ("link_down", "Times the receive port went down"),
    ("no_link", "Plain frames dropped because no secure link could carry them"),
    ("probes", "Link monitor probes sent or received"),
    ("probe_like", "Plain frames dropped because they look like link monitor probes"),
];

/// The counter called `name` in `scope`.
pub fn lookup(scope: Scope, name: &str) -> Option<&'static CounterName> {
    COUNTERS.iter().find(|c| c.scope == scope && c.name == name)
}

/// What an error counter counts, by its 802.1AE name (SecY or receive SC level).
pub fn describe(name: &str) -> Option<&'static str> {
    COUNTERS
        .iter()
        .find(|c| c.name == name && matches!(c.scope, SecY | RxSc))
        .map(|c| c.help)
}

/// The non-zero error counters of a link's `counters` object (`{"secy":{...},
/// "tx_sc":{...},"rx_sc":[...]}`), by 802.1AE name, in table order: SecY counters as
/// they are, receive SC counters summed over the SCs. SA counters are a breakdown of
/// the SC's and are not added again.
pub fn error_counters(counters: &Value) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    for c in COUNTERS.iter().filter(|c| c.error) {
        let n = match c.scope {
            SecY => counters["secy"][c.name].as_u64().unwrap_or(0),
            RxSc => counters["rx_sc"]
                .as_array()
                .map(|scs| scs.iter().filter_map(|s| s[c.name].as_u64()).sum())
                .unwrap_or(0),
            _ => 0,
        };
        if n > 0 {
            out.push((c.name, n));
        }
    }
    out
}

/// [`error_counters`] as the status's `errors` object.
pub fn errors_json(counters: &Value) -> Value {
    Value::Object(
        error_counters(counters)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect(),
    )
}

/// A link's `traffic` object for the status, from its `counters`: frames and user data
/// octets protected and sent (the transmit SC's `OutPkts*`/`OutOctets*`, probes
/// included), and valid frames and their user data octets received (`InPktsOK` and
/// `InOctets*` summed over the receive SCs). What `macsec_link_{tx,rx}_*_total` export.
pub fn traffic_json(counters: &Value) -> Value {
    let tx = &counters["tx_sc"];
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let rx_sum = |k: &str| -> u64 {
        counters["rx_sc"]
            .as_array()
            .map(|scs| scs.iter().map(|sc| n(sc, k)).sum())
            .unwrap_or(0)
    };
    serde_json::json!({
        "frames_out": n(tx, "OutPktsProtected") + n(tx, "OutPktsEncrypted"),
        "octets_out": n(tx, "OutOctetsProtected") + n(tx, "OutOctetsEncrypted"),
        "frames_in": rx_sum("InPktsOK"),
        "octets_in": rx_sum("InOctetsValidated") + rx_sum("InOctetsDecrypted"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use macsec::secy::{
        RxSaCounters, RxScCounters, RxSecYCounters, TxSaCounters, TxScCounters, TxSecYCounters,
    };

    fn names<const N: usize>(f: [(&'static str, u64); N]) -> Vec<&'static str> {
        f.iter().map(|(n, _)| *n).collect()
    }

    /// Every counter the core exports has exactly one entry, in its scope: a counter
    /// added to the core fails here until it has a metric name.
    #[test]
    fn the_table_covers_every_core_counter_once() {
        let secy: Vec<_> = names(RxSecYCounters::default().fields())
            .into_iter()
            .chain(names(TxSecYCounters::default().fields()))
            .collect();
        for (scope, expected) in [
            (SecY, secy),
            (TxSc, names(TxScCounters::default().fields())),
            (TxSa, names(TxSaCounters::default().fields())),
            (RxSc, names(RxScCounters::default().fields())),
            (RxSa, names(RxSaCounters::default().fields())),
        ] {
            let table: Vec<_> = COUNTERS
                .iter()
                .filter(|c| c.scope == scope)
                .map(|c| c.name)
                .collect();
            assert_eq!(table, expected, "{scope:?}");
        }
    }

    #[test]
    fn metric_names_follow_the_naming_rules() {
        let mut seen = std::collections::HashSet::new();
        for c in COUNTERS {
            assert!(seen.insert(c.metric), "duplicate {}", c.metric);
            assert!(c.metric.starts_with("macsec_"), "{}", c.metric);
            assert!(!c.metric.ends_with("_total"), "{}", c.metric);
            assert!(
                c.metric
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                "{}",
                c.metric
            );
            // Octets are bytes, in the name's last word.
            assert_eq!(
                c.name.contains("Octets"),
                c.metric.ends_with("_bytes"),
                "{}",
                c.metric
            );
            assert!(!c.help.is_empty() && !c.help.ends_with('.'));
        }
    }

    #[test]
    fn the_pump_table_covers_every_pump_counter() {
        let v = serde_json::to_value(crate::forward::pump::PumpCounters::default()).unwrap();
        let fields: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut table: Vec<&str> = PUMP_COUNTERS.iter().map(|(f, _)| *f).collect();
        let mut fields = fields;
        fields.sort_unstable();
        table.sort_unstable();
        assert_eq!(fields, table);
    }

    #[test]
    fn errors_sum_receive_scs_and_skip_zeros_and_sas() {
        let counters = serde_json::json!({
            "secy": {"InPktsBadTag": 2, "InPktsNoTag": 0, "InOctetsDecrypted": 999, "OutPktsTooLong": 1},
            "tx_sc": {"OutPktsEncrypted": 5},
            "rx_sc": [
                {"sci": "a", "InPktsOK": 10, "InPktsNotValid": 3, "sa": [{"an": 0, "InPktsNotValid": 3}]},
                {"sci": "b", "InPktsNotValid": 4, "InPktsLate": 1},
            ],
        });
        assert_eq!(
            error_counters(&counters),
            vec![
                ("InPktsBadTag", 2),
                ("OutPktsTooLong", 1),
                ("InPktsLate", 1),
                ("InPktsNotValid", 7)
            ]
        );
        assert_eq!(
            errors_json(&counters),
            serde_json::json!({"InPktsBadTag": 2, "OutPktsTooLong": 1, "InPktsLate": 1, "InPktsNotValid": 7})
        );
        assert!(error_counters(&serde_json::json!({})).is_empty());
        assert_eq!(
            traffic_json(&counters),
            serde_json::json!({"frames_out": 5, "octets_out": 0, "frames_in": 10, "octets_in": 0})
        );
        assert_eq!(
            describe("InPktsNotValid"),
            Some("Frames that failed validation, discarded")
        );
    }
}

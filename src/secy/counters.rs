//! Management counters, named as 802.1AE clause 10.7 and the IEEE8021-SECY-MIB name them.
//!
//! Placement follows both layouts in use (notes section 7): the 2006/Linux layout
//! (per-SC InPktsNotUsingSA/InPktsUnusedSA and octet counters, per-SecY
//! InPktsUnknownSCI/InPktsNoSCI) and the 802.1AE-2018 layout (per-SecY InPktsNoSA,
//! InPktsNoSAError and octet totals). Counters that are not in 802.1AE are kept in a
//! separate `extension` group so the standard names keep their exact meaning.
//!
//! Each direction's counters are owned by the thread that runs it: plain `u64`s, no
//! atomics; a snapshot is a copy.

use serde::Serialize;

/// Per-SecY receive counters (802.1AE 10.7.9, Figure 10-4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RxSecYCounters {
    /// Untagged frames delivered (validateFrames not Strict).
    #[serde(rename = "InPktsUntagged")]
    pub in_pkts_untagged: u64,
    /// Untagged frames discarded (validateFrames Strict).
    #[serde(rename = "InPktsNoTag")]
    pub in_pkts_no_tag: u64,
    /// Frames with an invalid SecTAG or MPDU length (802.1AE 9.12).
    #[serde(rename = "InPktsBadTag")]
    pub in_pkts_bad_tag: u64,
    /// Frames with an unknown SCI or for an SA not in use, delivered unvalidated (2018).
    #[serde(rename = "InPktsNoSA")]
    pub in_pkts_no_sa: u64,
    /// Frames with an unknown SCI or for an SA not in use, discarded (2018).
    #[serde(rename = "InPktsNoSAError")]
    pub in_pkts_no_sa_error: u64,
    /// Frames with an unknown SCI, delivered unvalidated (2006 layout; part of InPktsNoSA).
    #[serde(rename = "InPktsUnknownSCI")]
    pub in_pkts_unknown_sci: u64,
    /// Frames with an unknown SCI, discarded (2006 layout; part of InPktsNoSAError).
    #[serde(rename = "InPktsNoSCI")]
    pub in_pkts_no_sci: u64,
    /// Frames discarded because the receiver could not keep up (for the forwarder:
    /// frames the kernel dropped from the receive ring).
    #[serde(rename = "InPktsOverrun")]
    pub in_pkts_overrun: u64,
    /// User-data octets of valid integrity-only frames (sum over SCs).
    #[serde(rename = "InOctetsValidated")]
    pub in_octets_validated: u64,
    /// User-data octets of valid encrypted frames (sum over SCs).
    #[serde(rename = "InOctetsDecrypted")]
    pub in_octets_decrypted: u64,
    /// Not 802.1AE: E=1,C=0 frames, which go to the Uncontrolled Port only (10.6).
    #[serde(rename = "InPktsUncontrolled")]
    pub in_pkts_uncontrolled: u64,
}

/// Per receive SC counters (802.1AE 10.7.9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RxScCounters {
    /// Valid frames.
    #[serde(rename = "InPktsOK")]
    pub in_pkts_ok: u64,
    /// Frames delivered without validation (validateFrames Disabled).
    #[serde(rename = "InPktsUnchecked")]
    pub in_pkts_unchecked: u64,
    /// Frames with PN below the lowest acceptable PN, delivered (replayProtect off).
    #[serde(rename = "InPktsDelayed")]
    pub in_pkts_delayed: u64,
    /// Frames with PN below the lowest acceptable PN, discarded (replayProtect on).
    #[serde(rename = "InPktsLate")]
    pub in_pkts_late: u64,
    /// Frames that failed validation but were delivered (Check, integrity only).
    #[serde(rename = "InPktsInvalid")]
    pub in_pkts_invalid: u64,
    /// Frames that failed validation and were discarded.
    #[serde(rename = "InPktsNotValid")]
    pub in_pkts_not_valid: u64,
    /// Frames for an SA not in use, discarded.
    #[serde(rename = "InPktsNotUsingSA")]
    pub in_pkts_not_using_sa: u64,
    /// Frames for an SA not in use, delivered unvalidated.
    #[serde(rename = "InPktsUnusedSA")]
    pub in_pkts_unused_sa: u64,
    /// User-data octets of valid integrity-only frames.
    #[serde(rename = "InOctetsValidated")]
    pub in_octets_validated: u64,
    /// User-data octets of valid encrypted frames.
    #[serde(rename = "InOctetsDecrypted")]
    pub in_octets_decrypted: u64,
}

/// Per receive SA counters (802.1AE 10.7.9; the 2006 MIB's secyRxSAStatsTable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RxSaCounters {
    /// Valid frames.
    #[serde(rename = "InPktsOK")]
    pub in_pkts_ok: u64,
    /// Frames that failed validation but were delivered.
    #[serde(rename = "InPktsInvalid")]
    pub in_pkts_invalid: u64,
    /// Frames that failed validation and were discarded.
    #[serde(rename = "InPktsNotValid")]
    pub in_pkts_not_valid: u64,
    /// Frames for this SC whose SA was not in use, discarded (counted, as Linux does,
    /// on the first active SA of the SC).
    #[serde(rename = "InPktsNotUsingSA")]
    pub in_pkts_not_using_sa: u64,
    /// Same, delivered unvalidated.
    #[serde(rename = "InPktsUnusedSA")]
    pub in_pkts_unused_sa: u64,
}

/// Per-SecY transmit counters (802.1AE 10.7.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TxSecYCounters {
    /// Frames sent unprotected (protectFrames false).
    #[serde(rename = "OutPktsUntagged")]
    pub out_pkts_untagged: u64,
    /// Frames discarded because the protected frame would exceed the port's MTU.
    #[serde(rename = "OutPktsTooLong")]
    pub out_pkts_too_long: u64,
    /// User-data octets of integrity-only frames sent.
    #[serde(rename = "OutOctetsProtected")]
    pub out_octets_protected: u64,
    /// User-data octets of encrypted frames sent.
    #[serde(rename = "OutOctetsEncrypted")]
    pub out_octets_encrypted: u64,
    /// Not 802.1AE: frames discarded because no encoding SA is installed and active
    /// (Linux counts these only as the netdev's tx_dropped).
    #[serde(rename = "OutPktsNoSA")]
    pub out_pkts_no_sa: u64,
    /// Not 802.1AE: frames discarded because the encoding SA has used its last PN
    /// (or its reserved PN block, see `TxSa::set_pn_ceiling`).
    #[serde(rename = "OutPktsPnExhausted")]
    pub out_pkts_pn_exhausted: u64,
    /// Not 802.1AE: frames discarded because they are not valid Ethernet frames
    /// (shorter than 14 octets) or their buffer has no room for the SecTAG and ICV.
    #[serde(rename = "OutPktsMalformed")]
    pub out_pkts_malformed: u64,
    /// Not 802.1AE: with end_station set, frames whose source address is not the
    /// SCI's MAC address (a receiver would derive a different SCI and reject them).
    #[serde(rename = "OutPktsSourceMismatch")]
    pub out_pkts_source_mismatch: u64,
}

/// Transmit SC counters (802.1AE 10.7.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TxScCounters {
    /// Integrity-only frames sent.
    #[serde(rename = "OutPktsProtected")]
    pub out_pkts_protected: u64,
    /// Encrypted frames sent.
    #[serde(rename = "OutPktsEncrypted")]
    pub out_pkts_encrypted: u64,
    /// User-data octets of integrity-only frames sent.
    #[serde(rename = "OutOctetsProtected")]
    pub out_octets_protected: u64,
    /// User-data octets of encrypted frames sent.
    #[serde(rename = "OutOctetsEncrypted")]
    pub out_octets_encrypted: u64,
}

/// Transmit SA counters (802.1AE 10.7.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TxSaCounters {
    /// Integrity-only frames sent with this SA.
    #[serde(rename = "OutPktsProtected")]
    pub out_pkts_protected: u64,
    /// Encrypted frames sent with this SA.
    #[serde(rename = "OutPktsEncrypted")]
    pub out_pkts_encrypted: u64,
}

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

/// Defines a counter struct of `u64` fields, each with its 802.1AE name, plus
/// [`fields`](RxSecYCounters::fields) (name, value) pairs for exporters and, with the
/// `serde` feature, a map serialization keyed by those names.
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident => $key:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: u64, )*
        }

        impl $name {
            /// The number of counters.
            pub const LEN: usize = [$($key),*].len();

            /// Each counter with its name (the 802.1AE / IEEE8021-SECY-MIB name, or the
            /// extension name), in declaration order.
            pub fn fields(&self) -> [(&'static str, u64); Self::LEN] {
                [$( ($key, self.$field) ),*]
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(Self::LEN))?;
                for (k, v) in self.fields() {
                    m.serialize_entry(k, &v)?;
                }
                m.end()
            }
        }
    };
}

counters! {
    /// Per-SecY receive counters (802.1AE 10.7.9, Figure 10-4).
    pub struct RxSecYCounters {
        /// Untagged frames delivered (validateFrames not Strict).
        in_pkts_untagged => "InPktsUntagged",
        /// Untagged frames discarded (validateFrames Strict).
        in_pkts_no_tag => "InPktsNoTag",
        /// Frames with an invalid SecTAG or MPDU length (802.1AE 9.12).
        in_pkts_bad_tag => "InPktsBadTag",
        /// Frames with an unknown SCI or for an SA not in use, delivered unvalidated (2018).
        in_pkts_no_sa => "InPktsNoSA",
        /// Frames with an unknown SCI or for an SA not in use, discarded (2018).
        in_pkts_no_sa_error => "InPktsNoSAError",
        /// Frames with an unknown SCI, delivered unvalidated (2006 layout; part of InPktsNoSA).
        in_pkts_unknown_sci => "InPktsUnknownSCI",
        /// Frames with an unknown SCI, discarded (2006 layout; part of InPktsNoSAError).
        in_pkts_no_sci => "InPktsNoSCI",
        /// Frames discarded because the receiver could not keep up (for the forwarder:
        /// frames the kernel dropped from the receive ring).
        in_pkts_overrun => "InPktsOverrun",
        /// User-data octets of valid integrity-only frames (sum over SCs).
        in_octets_validated => "InOctetsValidated",
        /// User-data octets of valid encrypted frames (sum over SCs).
        in_octets_decrypted => "InOctetsDecrypted",
        /// Not 802.1AE: E=1,C=0 frames, which go to the Uncontrolled Port only (10.6).
        in_pkts_uncontrolled => "InPktsUncontrolled",
    }
}

counters! {
    /// Per receive SC counters (802.1AE 10.7.9).
    pub struct RxScCounters {
        /// Valid frames.
        in_pkts_ok => "InPktsOK",
        /// Frames delivered without validation (validateFrames Disabled).
        in_pkts_unchecked => "InPktsUnchecked",
        /// Frames with PN below the lowest acceptable PN, delivered (replayProtect off).
        in_pkts_delayed => "InPktsDelayed",
        /// Frames with PN below the lowest acceptable PN, discarded (replayProtect on).
        in_pkts_late => "InPktsLate",
        /// Frames that failed validation but were delivered (Check, integrity only).
        in_pkts_invalid => "InPktsInvalid",
        /// Frames that failed validation and were discarded.
        in_pkts_not_valid => "InPktsNotValid",
        /// Frames for an SA not in use, discarded.
        in_pkts_not_using_sa => "InPktsNotUsingSA",
        /// Frames for an SA not in use, delivered unvalidated.
        in_pkts_unused_sa => "InPktsUnusedSA",
        /// User-data octets of valid integrity-only frames.
        in_octets_validated => "InOctetsValidated",
        /// User-data octets of valid encrypted frames.
        in_octets_decrypted => "InOctetsDecrypted",
    }
}

counters! {
    /// Per receive SA counters (802.1AE 10.7.9; the 2006 MIB's secyRxSAStatsTable).
    pub struct RxSaCounters {
        /// Valid frames.
        in_pkts_ok => "InPktsOK",
        /// Frames that failed validation but were delivered.
        in_pkts_invalid => "InPktsInvalid",
        /// Frames that failed validation and were discarded.
        in_pkts_not_valid => "InPktsNotValid",
        /// Frames for this SC whose SA was not in use, discarded (counted, as Linux does,
        /// on the first active SA of the SC).
        in_pkts_not_using_sa => "InPktsNotUsingSA",
        /// Same, delivered unvalidated.
        in_pkts_unused_sa => "InPktsUnusedSA",
    }
}

counters! {
    /// Per-SecY transmit counters (802.1AE 10.7.8).
    pub struct TxSecYCounters {
        /// Frames sent unprotected (protectFrames false).
        out_pkts_untagged => "OutPktsUntagged",
        /// Frames discarded because the protected frame would exceed the port's MTU.
        out_pkts_too_long => "OutPktsTooLong",
        /// User-data octets of integrity-only frames sent.
        out_octets_protected => "OutOctetsProtected",
        /// User-data octets of encrypted frames sent.
        out_octets_encrypted => "OutOctetsEncrypted",
        /// Not 802.1AE: frames discarded because no encoding SA is installed and active
        /// (Linux counts these only as the netdev's tx_dropped).
        out_pkts_no_sa => "OutPktsNoSA",
        /// Not 802.1AE: frames discarded because the encoding SA has used its last PN
        /// (or its reserved PN block, see `TxSa::set_pn_ceiling`).
        out_pkts_pn_exhausted => "OutPktsPnExhausted",
        /// Not 802.1AE: frames discarded because they are not valid Ethernet frames
        /// (shorter than 14 octets) or their buffer has no room for the SecTAG and ICV.
        out_pkts_malformed => "OutPktsMalformed",
        /// Not 802.1AE: with end_station set, frames whose source address is not the
        /// SCI's MAC address (a receiver would derive a different SCI and reject them).
        out_pkts_source_mismatch => "OutPktsSourceMismatch",
    }
}

counters! {
    /// Transmit SC counters (802.1AE 10.7.8).
    pub struct TxScCounters {
        /// Integrity-only frames sent.
        out_pkts_protected => "OutPktsProtected",
        /// Encrypted frames sent.
        out_pkts_encrypted => "OutPktsEncrypted",
        /// User-data octets of integrity-only frames sent.
        out_octets_protected => "OutOctetsProtected",
        /// User-data octets of encrypted frames sent.
        out_octets_encrypted => "OutOctetsEncrypted",
    }
}

counters! {
    /// Transmit SA counters (802.1AE 10.7.8).
    pub struct TxSaCounters {
        /// Integrity-only frames sent with this SA.
        out_pkts_protected => "OutPktsProtected",
        /// Encrypted frames sent with this SA.
        out_pkts_encrypted => "OutPktsEncrypted",
    }
}

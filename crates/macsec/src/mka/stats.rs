//! Counters, receive verdicts and the status snapshot of a participant, ready for a
//! JSON stats export (`serde::Serialize`).

use super::pdu::DecodeError;

/// Why a received MKPDU was dropped. Small and `Copy`; never carries frame contents.
///
/// Checked in hostap's order (notes 10.1): frame structure, EtherType and EAPOL type,
/// destination, CKN, Algorithm Agility, ICV; only then MI/MN handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RxError {
    /// Not an MKPDU for us: another EtherType, EAPOL type or an EAPOL version below 3.
    #[error("not an MKPDU (EtherType, EAPOL type or version)")]
    NotMka,
    /// A structurally malformed MKPDU.
    #[error("malformed MKPDU: {0}")]
    Malformed(DecodeError),
    /// Sent to an individual (unicast) address (802.1X-2010 11.11.2).
    #[error("destination is not a group address")]
    Destination,
    /// A CKN that is not ours: another CA.
    #[error("CKN of another CA")]
    UnknownCkn,
    /// An Algorithm Agility other than 00-80-C2-01.
    #[error("unsupported algorithm agility")]
    AlgorithmAgility,
    /// The ICV did not verify: wrong CAK, or a modified MKPDU.
    #[error("ICV check failed")]
    Icv,
    /// Our own SCI in the Basic Parameter Set: our own MKPDU looped back, or another
    /// port configured with our SCI.
    #[error("MKPDU carries our own SCI")]
    OwnSci,
    /// The MN of a known MI did not increase: a replayed, duplicated or reordered
    /// MKPDU (802.1X-2010 9.4.2).
    #[error("message number did not increase (replay)")]
    StaleMn,
    /// A new MI with the SCI of a known peer: the old instance must time out first
    /// (hostap's rule; its timeout is cut to 1.5 hello times).
    #[error("new MI for the SCI of a known peer")]
    DuplicateSci,
    /// A new MI while the peer table is full.
    #[error("too many peers")]
    TooManyPeers,
}

/// Dropped received MKPDUs, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RxDropCounters {
    /// [`RxError::NotMka`].
    pub not_mka: u64,
    /// [`RxError::Malformed`].
    pub malformed: u64,
    /// [`RxError::Destination`].
    pub destination: u64,
    /// [`RxError::UnknownCkn`].
    pub unknown_ckn: u64,
    /// [`RxError::AlgorithmAgility`].
    pub algorithm_agility: u64,
    /// [`RxError::Icv`].
    pub icv: u64,
    /// [`RxError::OwnSci`].
    pub own_sci: u64,
    /// [`RxError::StaleMn`].
    pub stale_mn: u64,
    /// [`RxError::DuplicateSci`].
    pub duplicate_sci: u64,
    /// [`RxError::TooManyPeers`].
    pub too_many_peers: u64,
}

impl RxDropCounters {
    /// Counts one drop.
    pub fn count(&mut self, e: RxError) {
        let c = match e {
            RxError::NotMka => &mut self.not_mka,
            RxError::Malformed(_) => &mut self.malformed,
            RxError::Destination => &mut self.destination,
            RxError::UnknownCkn => &mut self.unknown_ckn,
            RxError::AlgorithmAgility => &mut self.algorithm_agility,
            RxError::Icv => &mut self.icv,
            RxError::OwnSci => &mut self.own_sci,
            RxError::StaleMn => &mut self.stale_mn,
            RxError::DuplicateSci => &mut self.duplicate_sci,
            RxError::TooManyPeers => &mut self.too_many_peers,
        };
        *c += 1;
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.not_mka
            + self.malformed
            + self.destination
            + self.unknown_ckn
            + self.algorithm_agility
            + self.icv
            + self.own_sci
            + self.stale_mn
            + self.duplicate_sci
            + self.too_many_peers
    }
}

/// Participant counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Counters {
    /// MKPDUs accepted (ICV and MN checks passed).
    pub rx_ok: u64,
    /// MKPDUs dropped, by reason.
    pub rx_dropped: RxDropCounters,
    /// MKPDUs sent.
    pub tx: u64,
    /// SAKs generated as key server.
    pub sak_generated: u64,
    /// SAKs received from a key server and installed.
    pub sak_received: u64,
    /// Distributed SAKs refused: unwrap failure, unsupported cipher suite, wrong key
    /// length, or not from the elected key server.
    pub sak_rejected: u64,
    /// Rekeys started because a PN passed the threshold.
    pub rekeys_pn: u64,
    /// Rekeys started by the rekey interval.
    pub rekeys_interval: u64,
    /// Peers that became live.
    pub peers_live: u64,
    /// Live peers dropped after the life time.
    pub peers_expired: u64,
    /// Times this participant chose a new MI.
    pub mi_resets: u64,
    /// Potential peers replaced by a new MI from the same SCI (a restarted peer).
    pub potential_replaced: u64,
}

/// Where the CA stands, from this participant's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum CaState {
    /// No live peer, or no SAK in use yet.
    Pending,
    /// The key server decided not to use MACsec ("authenticated only").
    Authenticated,
    /// Transmitting with a distributed SAK.
    Secured,
}

/// One peer in a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PeerStatus {
    /// SCI, hex.
    pub sci: String,
    /// Member Identifier, hex.
    pub mi: String,
    /// Latest Message Number received.
    pub mn: u32,
    /// Key Server bit of its latest MKPDU.
    pub key_server: bool,
    /// Its Key Server Priority.
    pub key_server_priority: u8,
}

/// One SAK in a [`Status`]. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct KeyStatus {
    /// Key server MI, hex.
    pub key_server_mi: String,
    /// Key Number.
    pub kn: u32,
    /// Association Number.
    pub an: u8,
    /// Cipher suite name.
    pub cipher_suite: &'static str,
    /// Receive SAs installed.
    pub rx: bool,
    /// Transmitting with it.
    pub tx: bool,
    /// Latest transmit next PN reported by the data plane.
    pub tx_next_pn: u64,
}

/// A snapshot of a participant for a stats export.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Status {
    /// CA state.
    pub state: CaState,
    /// Own SCI, hex.
    pub sci: String,
    /// Own MI, hex.
    pub mi: String,
    /// Own latest MN.
    pub mn: u32,
    /// Whether this participant is the elected key server.
    pub is_key_server: bool,
    /// SCI of the elected key server, hex.
    pub key_server: Option<String>,
    /// Live peers.
    pub live_peers: Vec<PeerStatus>,
    /// Potential peers.
    pub potential_peers: Vec<PeerStatus>,
    /// The latest SAK.
    pub latest_key: Option<KeyStatus>,
    /// The previous SAK, until retired.
    pub old_key: Option<KeyStatus>,
    /// AN this participant transmits with.
    pub tx_an: Option<u8>,
    /// Counters.
    pub counters: Counters,
}

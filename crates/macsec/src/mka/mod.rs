//! MKA: the MACsec Key Agreement protocol (IEEE 802.1X-2010/2020 clauses 9 and 11)
//! for a pre-shared CAK.
//!
//! Pure, like the rest of the core: no sockets, no clocks. Time is passed in
//! ([`Participant::handle_timeout`]), received MKPDUs are handed in as whole Ethernet
//! frames ([`Participant::handle_mkpdu`]), and output is polled: instructions for the
//! data plane ([`Participant::poll_action`], drain first), MKPDUs to send
//! ([`Participant::poll_transmit`]) and the next deadline
//! ([`Participant::poll_timeout`]).
//!
//! - [`crypto`]: AES-CMAC, the 802.1X KDF, ICK/KEK, the MKPDU ICV, SAK generation and
//!   AES Key Wrap, the XPN salt and SSCI assignment.
//! - [`pdu`]: the MKPDU codec.
//! - [`Participant`]: one participant (actor) in one CA, with its [`Config`],
//!   [`Action`]s, [`Counters`] and [`Status`].

mod action;
pub mod activation;
mod config;
pub mod crypto;
mod participant;
pub mod pdu;
mod stats;
pub mod types;

pub use action::Action;
pub use activation::{ActivationKey, ActivationKeyError};
pub use config::{
    Config, ConfigError, HELLO_TIME, LIFE_TIME, MAX_PEERS, MAX_TIMER, SAK_RETIRE_TIME,
};
pub use crypto::{SakGeneration, SsciFn};
pub use participant::Participant;
pub use stats::{CaState, Counters, KeyStatus, PeerStatus, RxDropCounters, RxError, Status};
pub use types::{Capability, Ckn, CknError, ConfidentialityOffset, Ki, Mi};

//! What the MKA participant asks the data plane (the SecY) to do.

use super::types::{ConfidentialityOffset, Ki};
use crate::crypto::keys::{Salt, SecretKey, Ssci};
use crate::crypto::suite::CipherSuite;
use crate::wire::sci::Sci;

/// An instruction for the data plane, from [`Participant::poll_action`].
///
/// Apply actions in the order they come, and drain them **before** sending the MKPDUs
/// from `poll_transmit`: an MKPDU may announce that an SA exists (a SAK Use set saying
/// "I receive with this key"), and the peer may start using it as soon as it reads it.
///
/// The order already guarantees the safe install sequence of 802.1X-2010 9.8 / 12.x:
/// receive SAs for a new SAK come before its transmit SA, the transmit SA is switched
/// on (`EnableTx`) only when every live peer receives with the key (or the MKA Life
/// Time has passed, as hostap does), and the previous key's SAs are deleted only after
/// the SAK Retire Time.
///
/// [`Participant::poll_action`]: super::Participant::poll_action
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Create a receive SC for a peer that became live.
    InstallRxSc {
        /// The peer's SCI.
        sci: Sci,
    },
    /// Create (and enable) a receive SA. Replaces nothing: an older SA with this AN
    /// was deleted by an earlier action.
    InstallRxSa {
        /// The peer's SCI (its receive SC exists).
        sci: Sci,
        /// Association Number.
        an: u8,
        /// The SAK.
        key: SecretKey,
        /// Key Identifier of the SAK (for logs and key ids; not secret).
        ki: Ki,
        /// Lowest acceptable PN (1 for a new SAK).
        lowest_pn: u64,
        /// The peer's SSCI (XPN suites; 0 otherwise).
        ssci: Ssci,
        /// The SAK's salt (XPN suites; zero otherwise).
        salt: Salt,
        /// Cipher suite.
        suite: CipherSuite,
    },
    /// Create a transmit SA, **not** yet used for transmission.
    InstallTxSa {
        /// Association Number.
        an: u8,
        /// The SAK.
        key: SecretKey,
        /// Key Identifier of the SAK.
        ki: Ki,
        /// First PN to use.
        next_pn: u64,
        /// Own SSCI (XPN suites; 0 otherwise).
        ssci: Ssci,
        /// The SAK's salt (XPN suites; zero otherwise).
        salt: Salt,
        /// Cipher suite.
        suite: CipherSuite,
        /// Confidentiality offset distributed by the key server.
        confidentiality: ConfidentialityOffset,
    },
    /// Switch transmission to the transmit SA with this AN (Linux: make it active and
    /// set the SecY's encoding SA).
    EnableTx {
        /// Association Number.
        an: u8,
    },
    /// Delete a receive SA.
    DeleteRxSa {
        /// The peer's SCI.
        sci: Sci,
        /// Association Number.
        an: u8,
    },
    /// Delete a transmit SA (it is not the one in use).
    DeleteTxSa {
        /// Association Number.
        an: u8,
    },
    /// Delete a receive SC (its SAs were deleted by earlier actions).
    DeleteRxSc {
        /// The peer's SCI.
        sci: Sci,
    },
    /// MACsec is in use: the controlled port now transmits with a distributed SAK.
    Secured,
    /// MACsec is no longer in use: every SA was deleted (no live peer left, or the key
    /// server decided not to use MACsec).
    Unsecured,
}

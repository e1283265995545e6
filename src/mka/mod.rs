//! MKA: the MACsec Key Agreement protocol (IEEE 802.1X-2010/2020 clauses 9 and 11)
//! for a pre-shared CAK.
//!
//! Pure, like the rest of the core: no sockets, no clocks. Time is passed in
//! (`handle_timeout(now)`), received MKPDUs are handed in as whole Ethernet frames, and
//! output is polled: MKPDUs to send (`poll_transmit`), instructions for the data plane
//! (`poll_action`) and the next deadline (`poll_timeout`).
//!
//! - [`crypto`]: AES-CMAC, the 802.1X KDF, ICK/KEK, the MKPDU ICV, SAK generation and
//!   AES Key Wrap, the XPN salt and SSCI assignment.
//! - [`pdu`]: the MKPDU codec.

pub mod crypto;
pub mod pdu;
pub mod types;

pub use types::{Capability, Ckn, CknError, ConfidentialityOffset, Ki, Mi};

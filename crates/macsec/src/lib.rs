//! MACsec (IEEE 802.1AE-2018 with 802.1AEbw XPN) data plane and MKA (IEEE 802.1X)
//! key agreement, as a sans-IO library.
//!
//! - [`wire`]: zero-copy SecTAG view and validated repr (802.1AE clause 9), SCI, Ethernet.
//! - [`crypto`]: the four cipher suites (clause 14), zeroizing keys, the AES-GCM backend
//!   seam (AWS-LC by default, RustCrypto `aes-gcm` as the portable backend).
//! - [`secy`]: the SecY (clause 10): transmit and receive SCs and SAs, protection and
//!   validation in place, replay protection, XPN PN recovery, the clause 10.7 counters.
//!
//! Nothing in the per-frame path allocates or panics: every frame from the wire ends in a
//! [`secy::RxVerdict`] and a counter.
//!
//! # Seal and open
//!
//! ```
//! use macsec::crypto::{CipherSuite, SecretKey};
//! use macsec::secy::{FrameBuf, Protection, RxVerdict, SecY, SecYConfig};
//! use macsec::wire::Sci;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sak = SecretKey::from_hex("E3C08A8F06C6E3AD95A70557B23F75483CE33021A9C72B7025666204C69C0B72")?;
//! let alice: Sci = "5254001234010001".parse()?;
//! let bob: Sci = "5254001234020001".parse()?;
//! let cfg = |sci| {
//!     let mut c = SecYConfig::new(sci);
//!     c.cipher = CipherSuite::GcmAes256;
//!     c
//! };
//!
//! let mut a = SecY::new(cfg(alice))?;
//! a.tx.install_sa(0, &sak, 1, None)?; // AN 0, first PN 1
//! let mut b = SecY::new(cfg(bob))?;
//! b.rx.add_sc(alice)?;
//! b.rx.install_sa(alice, 0, &sak, 1, None)?; // lowest acceptable PN 1
//!
//! let frame = [&[0xff; 6][..], &[0x52, 0x54, 0, 0x12, 0x34, 0x01], &[0x08, 0x06], &[0; 28]].concat();
//! let mut buf = FrameBuf::new(&frame);
//! a.tx.protect_buf(&mut buf).expect("protect");
//! assert_eq!(&buf.as_slice()[12..14], &[0x88, 0xE5]); // SecTAG follows DA and SA
//! assert_eq!(buf.len(), frame.len() + 16 + 16); // SecTAG with SCI, ICV
//!
//! let protected = buf.clone();
//! assert_eq!(b.rx.validate_buf(&mut buf), RxVerdict::Ok);
//! assert_eq!(buf.as_slice(), &frame[..]);
//!
//! // The same frame again is a replay: InPktsLate, not delivered.
//! let mut replay = protected;
//! assert_eq!(b.rx.validate_buf(&mut replay), RxVerdict::Late);
//! assert_eq!(b.rx.sc_counters(alice).unwrap().in_pkts_late, 1);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
pub mod mka;
pub mod secy;
pub mod wire;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

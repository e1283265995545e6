//! The probe payload: the bytes after the EtherType of a link-monitor probe frame.
//!
//! The caller chooses the EtherType (e.g. [`SUGGESTED_ETHERTYPE`]) and the addresses,
//! and protects the frame with MACsec; this module only encodes and decodes the
//! payload. Version 1 layout, all integers big-endian:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4 | magic `"LMON"` |
//! | 4  | 1 | version (1) |
//! | 5  | 1 | flags: bit 0 `RX_SILENT`, bit 1 `DEGRADED`, bit 2 `REPORT`; others reserved (sent 0, ignored) |
//! | 6  | 2 | length: bytes of probe data from offset 0 (at least [`LEN`]) |
//! | 8  | 8 | sender session id (random per sender instance) |
//! | 16 | 8 | sender sequence number (1, 2, ... per session) |
//! | 24 | 8 | sender timestamp, µs on the sender's monotonic clock |
//! | 32 | 4 | sender probe interval, µs |
//! | 36 | 4 | report: hold time, µs from receiving the echoed probe to sending this one |
//! | 40 | 8 | report: session id of the peer instance reported on |
//! | 48 | 8 | report: echoed sequence number (the highest received) |
//! | 56 | 8 | report: echoed timestamp |
//! | 64 | 8 | report: cumulative count of that peer session's probes received |
//! | 72 | 8 | report: highest sequence number received from it |
//! | 80 | 8 | report: cumulative count of that session's probes missed while the link was down (left out of the loss) |
//!
//! The report fields are meaningful only with `REPORT` set (the sender has received a
//! probe from its peer). A later version may append fields and raise the length;
//! decoders ignore bytes past the fields they know, and past the length (Ethernet
//! padding). A change that old decoders cannot ignore takes a new version number.

use thiserror::Error;

/// An EtherType the caller may use for probe frames (IEEE 802 local experimental 1).
pub const SUGGESTED_ETHERTYPE: u16 = 0x88B5;
/// The magic at the start of every probe.
pub const MAGIC: [u8; 4] = *b"LMON";
/// The version this module writes and reads.
pub const VERSION: u8 = 1;
/// Length of a version 1 probe, and the least length a probe may declare.
pub const LEN: usize = 88;

const FLAG_RX_SILENT: u8 = 0x01;
const FLAG_DEGRADED: u8 = 0x02;
const FLAG_REPORT: u8 = 0x04;

/// One probe, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Probe {
    /// The sender's session id; a new one means the sender restarted.
    pub session: u64,
    /// The sender's sequence number in this session.
    pub seq: u64,
    /// The sender's clock when sending, µs since an epoch of its own.
    pub timestamp_us: u64,
    /// The sender's probe interval, µs.
    pub interval_us: u32,
    /// The sender is not receiving the receiver's probes (it missed too many in a row).
    pub rx_silent: bool,
    /// The sender's own figures put the link over its loss or RTT limits.
    pub degraded: bool,
    /// What the sender sees of the receiver's probes, once it has received one.
    pub report: Option<Report>,
}

/// The sender's view of its peer's probes: an echo of the latest one and the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// The session id of the peer instance these figures are about.
    pub session: u64,
    /// Sequence number of the latest (highest) probe received from that session.
    pub echo_seq: u64,
    /// Its timestamp, as the peer sent it.
    pub echo_timestamp_us: u64,
    /// µs between receiving that probe and sending this one.
    pub hold_us: u32,
    /// Probes received from that session so far (duplicates not counted).
    pub received: u64,
    /// Highest sequence number received from that session.
    pub highest_seq: u64,
    /// Of the sequence numbers up to the highest, how many were missed while the link
    /// was down; the sender does not count them as loss, and neither should the peer.
    pub excused: u64,
}

/// Why a payload is not a probe this module can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProbeError {
    /// Fewer bytes than the header or the declared length needs.
    #[error("probe truncated: {len} bytes, need {need}")]
    Short {
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The magic does not match.
    #[error("not a link-monitor probe (bad magic)")]
    BadMagic,
    /// A version this module does not read.
    #[error("unsupported probe version {0}")]
    BadVersion(u8),
    /// The length field is less than a version 1 probe.
    #[error("probe length field {0} is less than {LEN}")]
    BadLength(u16),
}

impl Probe {
    /// Encodes the probe. The array is the whole payload; append nothing but padding.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        let r = self.report.unwrap_or_default();
        let mut flags = 0;
        if self.rx_silent {
            flags |= FLAG_RX_SILENT;
        }
        if self.degraded {
            flags |= FLAG_DEGRADED;
        }
        if self.report.is_some() {
            flags |= FLAG_REPORT;
        }
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[5] = flags;
        b[6..8].copy_from_slice(&(LEN as u16).to_be_bytes());
        b[8..16].copy_from_slice(&self.session.to_be_bytes());
        b[16..24].copy_from_slice(&self.seq.to_be_bytes());
        b[24..32].copy_from_slice(&self.timestamp_us.to_be_bytes());
        b[32..36].copy_from_slice(&self.interval_us.to_be_bytes());
        b[36..40].copy_from_slice(&r.hold_us.to_be_bytes());
        b[40..48].copy_from_slice(&r.session.to_be_bytes());
        b[48..56].copy_from_slice(&r.echo_seq.to_be_bytes());
        b[56..64].copy_from_slice(&r.echo_timestamp_us.to_be_bytes());
        b[64..72].copy_from_slice(&r.received.to_be_bytes());
        b[72..80].copy_from_slice(&r.highest_seq.to_be_bytes());
        b[80..88].copy_from_slice(&r.excused.to_be_bytes());
        b
    }

    /// Decodes a payload (any bytes; never panics, never allocates).
    pub fn decode(buf: &[u8]) -> Result<Probe, ProbeError> {
        let head = buf.get(..8).ok_or(ProbeError::Short {
            len: buf.len(),
            need: 8,
        })?;
        if head[..4] != MAGIC {
            return Err(ProbeError::BadMagic);
        }
        if head[4] != VERSION {
            return Err(ProbeError::BadVersion(head[4]));
        }
        let flags = head[5];
        let declared = u16::from_be_bytes([head[6], head[7]]);
        if usize::from(declared) < LEN {
            return Err(ProbeError::BadLength(declared));
        }
        let b = buf.get(..usize::from(declared)).ok_or(ProbeError::Short {
            len: buf.len(),
            need: usize::from(declared),
        })?;
        let report = (flags & FLAG_REPORT != 0).then(|| Report {
            hold_us: be32(b, 36),
            session: be64(b, 40),
            echo_seq: be64(b, 48),
            echo_timestamp_us: be64(b, 56),
            received: be64(b, 64),
            highest_seq: be64(b, 72),
            excused: be64(b, 80),
        });
        Ok(Probe {
            session: be64(b, 8),
            seq: be64(b, 16),
            timestamp_us: be64(b, 24),
            interval_us: be32(b, 32),
            rx_silent: flags & FLAG_RX_SILENT != 0,
            degraded: flags & FLAG_DEGRADED != 0,
            report,
        })
    }
}

/// The big-endian u64 at `off`, or 0 past the end.
fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off.saturating_add(8)) {
        a.copy_from_slice(s);
    }
    u64::from_be_bytes(a)
}

/// The big-endian u32 at `off`, or 0 past the end.
fn be32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off.saturating_add(4)) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Probe {
        Probe {
            session: 0x0102_0304_0506_0708,
            seq: 42,
            timestamp_us: 1_234_567,
            interval_us: 100_000,
            rx_silent: true,
            degraded: false,
            report: Some(Report {
                session: 0xAABB_CCDD_EEFF_0011,
                echo_seq: 41,
                echo_timestamp_us: 7_654_321,
                hold_us: 12_345,
                received: 40,
                highest_seq: 41,
                excused: 1,
            }),
        }
    }

    #[test]
    fn round_trip() {
        let p = sample();
        assert_eq!(Probe::decode(&p.encode()), Ok(p));
        let q = Probe {
            report: None,
            degraded: true,
            rx_silent: false,
            ..p
        };
        assert_eq!(Probe::decode(&q.encode()), Ok(q));
    }

    #[test]
    fn layout_is_as_documented() {
        let b = sample().encode();
        assert_eq!(&b[0..8], b"LMON\x01\x05\x00\x58");
        assert_eq!(&b[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(u64::from_be_bytes(b[16..24].try_into().unwrap()), 42);
        assert_eq!(u32::from_be_bytes(b[32..36].try_into().unwrap()), 100_000);
        assert_eq!(u32::from_be_bytes(b[36..40].try_into().unwrap()), 12_345);
        assert_eq!(u64::from_be_bytes(b[72..80].try_into().unwrap()), 41);
        assert_eq!(u64::from_be_bytes(b[80..88].try_into().unwrap()), 1);
    }

    #[test]
    fn errors() {
        let b = sample().encode();
        assert_eq!(
            Probe::decode(&b[..5]),
            Err(ProbeError::Short { len: 5, need: 8 })
        );
        assert_eq!(
            Probe::decode(&b[..87]),
            Err(ProbeError::Short { len: 87, need: 88 })
        );
        let mut x = b;
        x[0] = b'X';
        assert_eq!(Probe::decode(&x), Err(ProbeError::BadMagic));
        let mut x = b;
        x[4] = 2;
        assert_eq!(Probe::decode(&x), Err(ProbeError::BadVersion(2)));
        let mut x = b;
        x[6..8].copy_from_slice(&79u16.to_be_bytes());
        assert_eq!(Probe::decode(&x), Err(ProbeError::BadLength(79)));
    }

    #[test]
    fn padding_and_longer_future_probes_are_accepted() {
        let p = sample();
        let mut v = p.encode().to_vec();
        v.extend_from_slice(&[0xEE; 20]); // padding past the length
        assert_eq!(Probe::decode(&v), Ok(p));
        v[6..8].copy_from_slice(&104u16.to_be_bytes()); // 16 bytes of future fields
        v[5] |= 0x80; // and a future flag
        assert_eq!(Probe::decode(&v), Ok(p));
        v.truncate(100);
        assert_eq!(
            Probe::decode(&v),
            Err(ProbeError::Short {
                len: 100,
                need: 104
            })
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Probe::decode(&v);
        }

        #[test]
        fn decode_with_valid_head_never_panics(
            len in any::<u16>(), flags in any::<u8>(),
            rest in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut v = b"LMON\x01".to_vec();
            v.push(flags);
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(&rest);
            if let Ok(p) = Probe::decode(&v) {
                prop_assert_eq!(p.report.is_some(), flags & FLAG_REPORT != 0);
            }
        }
    }
}

//! A reader of classic pcap files (libpcap's format).
//!
//! The `pcap-file` crate refuses every record whose original length is above the snap
//! length of the file header (`PcapPacket::try_from_raw_packet` in its
//! `src/pcap/packet.rs`: "PacketHeader orig_len > snap_len"), which is every cut frame of
//! a `tcpdump -s 96` capture, and fails on a record cut by the end of the file, which is
//! how the last record of a killed tcpdump looks. The format is small, so it is read here: a 24-octet file header (magic,
//! version, two unused words, snap length, link type) in the writer's byte order, and per
//! record a 16-octet header (seconds, micro- or nanoseconds, captured length, original
//! length) and the captured octets.

use std::io::{self, ErrorKind, Read};
use std::time::Duration;

/// Largest captured length a record may have: tcpdump's largest snap length (262144).
pub const MAX_RECORD: usize = 256 * 1024;

/// Whether `magic` (the first four octets of a file) is a classic pcap magic number.
pub fn is_magic(magic: [u8; 4]) -> bool {
    matches!(
        u32::from_le_bytes(magic),
        0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1
    )
}

/// The file header.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Numbers are big-endian.
    pub big_endian: bool,
    /// Timestamps have nanoseconds (magic 0xA1B23C4D), not microseconds.
    pub nanos: bool,
    /// Largest captured length of a record; 0 if the writer did not say.
    pub snaplen: u32,
    /// Link type, with the FCS bits.
    pub linktype: u32,
}

/// What ended a read.
#[derive(Debug)]
pub enum ReadError {
    /// The file ends inside its 24-octet header (octets present).
    HeaderCut(usize),
    /// A record that cannot be right: `record` (from 1) at file offset `offset`.
    Malformed {
        /// Record number, from 1.
        record: u64,
        /// Offset of its record header in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Reading failed.
    Io(io::Error),
}

/// One record; its captured octets are in the buffer given to [`Reader::next`].
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// Timestamp.
    pub ts: Duration,
    /// Length of the frame on the wire.
    pub orig_len: u32,
    /// Captured octets (at most [`MAX_RECORD`]).
    pub len: usize,
}

/// What [`Reader::next`] found.
#[derive(Debug)]
pub enum Next {
    /// A whole record.
    Record(Record),
    /// The end of the file, after a whole record (or the header).
    End,
    /// The file ends inside a record header or its data: the writer was stopped while
    /// writing it. Nothing follows.
    Cut,
}

/// Reads records one by one into a caller's buffer.
pub struct Reader<R> {
    r: R,
    header: Header,
    offset: u64,
    records: u64,
}

/// Fills `buf` from `r` as far as the file goes; returns how many octets it got.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl<R: Read> Reader<R> {
    /// Reads the file header; `magic` holds the first four octets, already read from
    /// `r` (see [`is_magic`]).
    pub fn new(magic: [u8; 4], mut r: R) -> Result<Reader<R>, ReadError> {
        let mut h = [0u8; 24];
        h[..4].copy_from_slice(&magic);
        let n = read_full(&mut r, &mut h[4..]).map_err(ReadError::Io)?;
        if n < 20 {
            return Err(ReadError::HeaderCut(4 + n));
        }
        let le = u32::from_le_bytes(magic);
        let big_endian = matches!(le, 0xD4C3_B2A1 | 0x4D3C_B2A1);
        let nanos = matches!(le, 0x4D3C_B2A1 | 0xA1B2_3C4D);
        let word = |i: usize| {
            let b: [u8; 4] = h[i..i + 4].try_into().expect("4 octets");
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        Ok(Reader {
            r,
            header: Header {
                big_endian,
                nanos,
                snaplen: word(16),
                linktype: word(20),
            },
            offset: 24,
            records: 0,
        })
    }

    /// The file header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Reads the next record into `buf` (at least [`MAX_RECORD`] octets long).
    pub fn next(&mut self, buf: &mut [u8]) -> Result<Next, ReadError> {
        let mut h = [0u8; 16];
        let n = read_full(&mut self.r, &mut h).map_err(ReadError::Io)?;
        if n == 0 {
            return Ok(Next::End);
        }
        if n < h.len() {
            return Ok(Next::Cut);
        }
        let word = |i: usize| {
            let b: [u8; 4] = h[i..i + 4].try_into().expect("4 octets");
            if self.header.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (secs, frac, incl, orig) = (word(0), word(4), word(8), word(12));
        let malformed = |reason: String| ReadError::Malformed {
            record: self.records + 1,
            offset: self.offset,
            reason,
        };
        let snaplen = self.header.snaplen;
        if incl as usize > MAX_RECORD {
            return Err(malformed(format!(
                "captured length {incl} is above {MAX_RECORD} octets"
            )));
        }
        // A snap length of 0 says nothing (some writers leave it out).
        if snaplen != 0 && incl > snaplen {
            return Err(malformed(format!(
                "captured length {incl} is above the snap length {snaplen} of the file header"
            )));
        }
        if incl > orig {
            return Err(malformed(format!(
                "captured length {incl} is above the original length {orig}"
            )));
        }
        let (units, per_sec) = if self.header.nanos {
            ("nanoseconds", 1_000_000_000)
        } else {
            ("microseconds", 1_000_000)
        };
        if frac >= per_sec {
            return Err(malformed(format!(
                "timestamp {units} {frac} are not below {per_sec}"
            )));
        }
        let nanos = if self.header.nanos { frac } else { frac * 1000 };
        let len = incl as usize;
        let got = read_full(&mut self.r, &mut buf[..len]).map_err(ReadError::Io)?;
        if got < len {
            return Ok(Next::Cut);
        }
        self.offset += 16 + len as u64;
        self.records += 1;
        Ok(Next::Record(Record {
            ts: Duration::new(u64::from(secs), nanos),
            orig_len: orig,
            len,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(big: bool, nanos: bool, snaplen: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut b = Vec::new();
        b.extend_from_slice(&w(if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }));
        b.extend_from_slice(&w(0x0004_0002)[..]);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&w(snaplen));
        b.extend_from_slice(&w(1));
        for (i, &(incl, orig, data)) in records.iter().enumerate() {
            b.extend_from_slice(&w(100 + i as u32));
            b.extend_from_slice(&w(999));
            b.extend_from_slice(&w(incl));
            b.extend_from_slice(&w(orig));
            b.extend_from_slice(data);
        }
        b
    }

    type Records = Vec<(Record, Vec<u8>)>;

    fn read_all(b: &[u8]) -> (Header, Records, Result<Next, ReadError>) {
        let mut r = Reader::new(b[..4].try_into().unwrap(), &b[4..]).unwrap();
        let mut buf = vec![0u8; MAX_RECORD];
        let mut out = Vec::new();
        loop {
            match r.next(&mut buf) {
                Ok(Next::Record(rec)) => out.push((rec, buf[..rec.len].to_vec())),
                other => return (r.header(), out, other),
            }
        }
    }

    #[test]
    fn both_byte_orders_and_resolutions() {
        for big in [false, true] {
            for nanos in [false, true] {
                let b = file(big, nanos, 96, &[(3, 3, b"abc"), (2, 1500, b"de")]);
                let (h, recs, end) = read_all(&b);
                assert_eq!(
                    (h.big_endian, h.nanos, h.snaplen, h.linktype),
                    (big, nanos, 96, 1)
                );
                assert!(matches!(end, Ok(Next::End)));
                assert_eq!(recs.len(), 2);
                assert_eq!(recs[0].1, b"abc");
                assert_eq!((recs[1].0.len, recs[1].0.orig_len), (2, 1500));
                let ns = if nanos { 999 } else { 999_000 };
                assert_eq!(recs[1].0.ts, Duration::new(101, ns));
            }
        }
    }

    #[test]
    fn cut_records_and_malformed_ones() {
        let b = file(false, false, 96, &[(3, 3, b"abc"), (3, 3, b"xyz")]);
        // The end of the file anywhere inside the second record is a cut.
        for cut in 1..19 {
            let (_, recs, end) = read_all(&b[..b.len() - cut]);
            assert_eq!(recs.len(), 1, "{cut}");
            assert!(matches!(end, Ok(Next::Cut)), "{cut}: {end:?}");
        }
        let bad = |records: &[(u32, u32, &[u8])], snaplen: u32, want: &str| {
            let (_, recs, end) = read_all(&file(false, false, snaplen, records));
            assert_eq!(recs.len(), 1);
            match end {
                Err(ReadError::Malformed {
                    record: 2,
                    offset: 43,
                    reason,
                }) => assert!(reason.contains(want), "{reason}"),
                other => panic!("{other:?}"),
            }
        };
        bad(&[(3, 3, b"abc"), (97, 97, &[0; 97])], 96, "snap length 96");
        bad(&[(3, 3, b"abc"), (300_000, 300_000, b"")], 0, "262144");
        bad(&[(3, 3, b"abc"), (3, 2, b"xyz")], 96, "original length 2");
        // A snap length of 0 limits nothing below the absurd.
        let (_, recs, _) = read_all(&file(false, false, 0, &[(3, 9, b"abc")]));
        assert_eq!(recs.len(), 1);
        assert!(matches!(
            Reader::new(b[..4].try_into().unwrap(), &b[4..20]),
            Err(ReadError::HeaderCut(20))
        ));
    }
}

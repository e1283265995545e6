//! Capture files in and out: `macsec pcap encrypt|decrypt`.
//!
//! Reads classic pcap (either byte order, micro- or nanosecond timestamps) with a reader
//! of its own, or pcapng with the `pcap-file` crate, protects or validates every Ethernet
//! frame with a [`SecY`], and writes a classic pcap with the same timestamps. Frames that
//! validation drops are not written; every outcome is in the SecY counters.
//!
//! Real captures are read as they are: records that hold only part of their frame (a
//! snap length, `tcpdump -s 96`) are counted as truncated and skipped, and a capture
//! whose writer was stopped inside its last record or block (tcpdump killed) is read up
//! to that record, which [`FrameTotals::last_record_cut`] reports. A malformed record
//! before the end is an error that names it.
//!
//! The output is never the input (same device and inode, however it is named), and is
//! replaced only by a whole, synced capture: it is written to a temporary file beside it
//! and renamed into place only when the run succeeded.
//!
//! Captures that keep the Ethernet FCS (a pcap link-type field with the FCS-length bits
//! set, or a pcapng interface with `if_fcslen`; taps and NICs with `rx-fcs` on make
//! them) are accepted: each frame's FCS is checked and removed before the SecY sees the
//! frame, as a MAC does (802.1AE 10.1: the SecY works on frames without FCS), and a
//! frame with a bad FCS is skipped and counted. The output never carries an FCS.

mod classic;
mod output;

use macsec::secy::{FrameBuf, RxVerdict, SecY};
use macsec::wire::ethernet::{be16, ethertype, skip_vlan_tags};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, Endianness, TsResolution};
use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// Which way frames go through the SecY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Protect every frame with the encoding transmit SA.
    Encrypt,
    /// Validate every frame with the receive SCs/SAs; write the delivered ones.
    Decrypt,
}

/// Frame totals of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FrameTotals {
    /// Frames read from the input.
    pub read: u64,
    /// Frames written to the output.
    pub written: u64,
    /// Frames not written because the SecY dropped them (see its counters for why).
    pub dropped: u64,
    /// Frames skipped because the capture holds only part of them (snap length).
    pub truncated: u64,
    /// Records skipped because their link type is not Ethernet.
    pub not_ethernet: u64,
    /// Frames skipped because the capture keeps the FCS and it is wrong (the frame was
    /// damaged on the wire; a MAC would have discarded it).
    pub bad_fcs: u64,
    /// Frames not validated because their SecTAG sits behind more VLAN tags than
    /// `secy.vlan_in_clear` keeps in clear (they count as InPktsNoTag or Untagged).
    pub macsec_behind_vlan_tags: u64,
    /// The most VLAN tags seen in front of such a SecTAG: the `vlan_in_clear` the
    /// capture needs.
    pub vlan_tags_needed: u8,
    /// The file ends inside a record or block (its writer was stopped while writing
    /// it): that record was skipped, and the frames before it were read.
    pub last_record_cut: bool,
}

/// Errors of the pcap tool: files that cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// Input or output could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a pcap or pcapng file.
    #[error("{path} is not a pcap or pcapng capture file")]
    NotPcap {
        /// File.
        path: PathBuf,
    },
    /// Output and input are the same file (the run would destroy the input).
    #[error(
        "{output} and {input} are the same file: refusing to overwrite the input \
         capture; name another output file"
    )]
    SameFile {
        /// Input as given.
        input: PathBuf,
        /// Output as given.
        output: PathBuf,
    },
    /// Reading the input failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file header is not whole.
    #[error("{path}: the capture file header is cut short ({octets} of {needed} octets)")]
    HeaderCut {
        /// File.
        path: PathBuf,
        /// Octets present.
        octets: usize,
        /// Octets the header needs.
        needed: usize,
    },
    /// A malformed classic pcap record.
    #[error("{path}: record {record} (at offset {offset}) is malformed: {reason}")]
    Malformed {
        /// File.
        path: PathBuf,
        /// Record number, from 1 (the records before it were read).
        record: u64,
        /// Offset of its record header in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A malformed pcapng block.
    #[error("{path}: block {block} is malformed: {reason}")]
    MalformedBlock {
        /// File.
        path: PathBuf,
        /// Block number, from 1 (the section header is block 1).
        block: u64,
        /// Parser message.
        reason: String,
    },
    /// The classic pcap's link type is not Ethernet.
    #[error(
        "{path}: link type {linktype:?} is not Ethernet; MACsec needs Ethernet frames (DLT_EN10MB){}",
        link_hint(*.linktype)
    )]
    LinkType {
        /// File.
        path: PathBuf,
        /// Link type found.
        linktype: DataLink,
    },
    /// Writing the output failed.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
    /// The output's temporary file cannot be created in its directory.
    #[error(
        "cannot create a temporary output file in directory {dir} (the output is written \
         there and renamed into place): {source}"
    )]
    TempFile {
        /// The output's directory.
        dir: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

impl PcapError {
    /// Whether the command line is at fault (not a file's content or the system): the
    /// CLI exits with its usage status then.
    pub fn is_usage(&self) -> bool {
        matches!(self, PcapError::SameFile { .. })
    }
}

/// Largest frame the tool handles (well above 9216-octet jumbo frames).
pub const MAX_FRAME: usize = 65_535 + 64;

/// The output capture being written (to its temporary file).
struct Sink {
    w: PcapWriter<BufWriter<File>>,
    pending: output::Pending,
    path: PathBuf,
}

impl Sink {
    fn open(plan: &output::Plan, header: PcapHeader, path: &Path) -> Result<Sink, PcapError> {
        let (f, pending) = plan.open()?;
        let w =
            PcapWriter::with_header(BufWriter::new(f), header).map_err(|e| PcapError::Write {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(Sink {
            w,
            pending,
            path: path.to_path_buf(),
        })
    }

    fn write(&mut self, ts: Duration, data: &[u8]) -> Result<(), PcapError> {
        self.w
            .write_packet(&PcapPacket::new(ts, data.len() as u32, data))
            .map(|_| ())
            .map_err(|e| PcapError::Write {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }

    /// Flushes, syncs and puts the output in place.
    fn finish(self) -> Result<(), PcapError> {
        let f = self
            .w
            .into_writer()
            .into_inner()
            .map_err(|e| PcapError::Write {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        self.pending.commit(f)
    }
}

/// Marks when the reader under the pcapng parser has reached the end of the file, which
/// tells a block cut by the end of the file from one too long for the parser's buffer.
struct EofWatch<R> {
    inner: R,
    eof: Rc<Cell<bool>>,
}

impl<R: Read> Read for EofWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof.set(true);
        }
        Ok(n)
    }
}

/// The Ethernet FCS (IEEE 802.3 CRC-32, reflected, as it appears on the wire) of
/// `data`, as the little-endian number the last four octets of the frame hold.
fn fcs(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

fn process(
    secy: &mut SecY,
    dir: Direction,
    buf: &mut FrameBuf,
    totals: &mut FrameTotals,
    data: &[u8],
    orig_len: u32,
    fcs_len: usize,
) -> bool {
    totals.read += 1;
    if (data.len() as u64) < orig_len as u64 || data.len() > MAX_FRAME {
        totals.truncated += 1;
        return false;
    }
    let data = if fcs_len == 0 {
        data
    } else {
        // Only the 4-octet Ethernet FCS is checked; other lengths are cut off unchecked.
        let Some(cut) = data.len().checked_sub(fcs_len) else {
            totals.bad_fcs += 1;
            return false;
        };
        let (frame, trailer) = data.split_at(cut);
        if fcs_len == 4 && u32::from_le_bytes(trailer.try_into().expect("4 octets")) != fcs(frame) {
            totals.bad_fcs += 1;
            return false;
        }
        frame
    };
    buf.set(data);
    let ok = match dir {
        Direction::Encrypt => secy.tx.protect_buf(buf).is_ok(),
        Direction::Decrypt => {
            let v = secy.rx.validate_buf(buf);
            if matches!(v, RxVerdict::NoTag | RxVerdict::Untagged) {
                // Not MACsec at the configured tag count: is it MACsec behind more tags?
                if let Some((n, off)) = skip_vlan_tags(data, 2) {
                    if n > 0 && be16(data, off) == Some(ethertype::MACSEC) {
                        totals.macsec_behind_vlan_tags += 1;
                        totals.vlan_tags_needed = totals.vlan_tags_needed.max(n as u8);
                    }
                }
            }
            v.is_delivered()
        }
    };
    if ok {
        totals.written += 1;
    } else {
        totals.dropped += 1;
    }
    ok
}

/// Runs every frame of `input` through `secy` in direction `dir` and writes the
/// results to `output` (classic pcap, Ethernet). `output` must not be the input file
/// ([`PcapError::SameFile`]); it is replaced only when the run succeeds, and an existing
/// one is left as it was otherwise.
pub fn run(
    secy: &mut SecY,
    dir: Direction,
    input: &Path,
    output: &Path,
) -> Result<FrameTotals, PcapError> {
    let f = File::open(input).map_err(|source| PcapError::Open {
        path: input.to_path_buf(),
        source,
    })?;
    let read_err = |source| PcapError::Read {
        path: input.to_path_buf(),
        source,
    };
    let meta = f.metadata().map_err(read_err)?;
    let plan = output::plan(input, &meta, output)?;
    let mut r = BufReader::new(f);
    let mut magic = [0u8; 4];
    let n = classic::read_full(&mut r, &mut magic).map_err(read_err)?;
    let mut totals = FrameTotals::default();
    let mut buf = FrameBuf::with_capacity(MAX_FRAME);
    let mut io = Io {
        secy,
        dir,
        input,
        output,
        plan: &plan,
        totals: &mut totals,
        buf: &mut buf,
    };
    if n == 4 && classic::is_magic(magic) {
        io.classic(magic, r)?;
    } else if n == 4 && magic == [0x0A, 0x0D, 0x0D, 0x0A] {
        io.pcapng(magic, r)?;
    } else {
        return Err(PcapError::NotPcap {
            path: input.to_path_buf(),
        });
    }
    Ok(totals)
}

/// One run's files, SecY and totals.
struct Io<'a> {
    secy: &'a mut SecY,
    dir: Direction,
    input: &'a Path,
    output: &'a Path,
    plan: &'a output::Plan,
    totals: &'a mut FrameTotals,
    buf: &'a mut FrameBuf,
}

impl Io<'_> {
    /// Processes one frame and writes it if it goes out.
    fn frame(
        &mut self,
        sink: &mut Sink,
        ts: Duration,
        data: &[u8],
        orig_len: u32,
        fcs_len: usize,
    ) -> Result<(), PcapError> {
        if process(
            self.secy,
            self.dir,
            self.buf,
            self.totals,
            data,
            orig_len,
            fcs_len,
        ) {
            sink.write(ts, self.buf.as_slice())?;
        }
        Ok(())
    }

    fn classic(&mut self, magic: [u8; 4], r: impl Read) -> Result<(), PcapError> {
        let input = self.input;
        let err = |e: classic::ReadError| match e {
            classic::ReadError::HeaderCut(octets) => PcapError::HeaderCut {
                path: input.to_path_buf(),
                octets,
                needed: 24,
            },
            classic::ReadError::Malformed {
                record,
                offset,
                reason,
            } => PcapError::Malformed {
                path: input.to_path_buf(),
                record,
                offset,
                reason,
            },
            classic::ReadError::Io(source) => PcapError::Read {
                path: input.to_path_buf(),
                source,
            },
        };
        let mut rd = classic::Reader::new(magic, r).map_err(err)?;
        let h = rd.header();
        let datalink = DataLink::from(h.linktype);
        let Some(fcs_len) = classic_fcs_len(datalink) else {
            return Err(PcapError::LinkType {
                path: input.to_path_buf(),
                linktype: datalink,
            });
        };
        let header = PcapHeader {
            snaplen: MAX_FRAME as u32,
            datalink: DataLink::ETHERNET,
            ts_resolution: if h.nanos {
                TsResolution::NanoSecond
            } else {
                TsResolution::MicroSecond
            },
            endianness: if h.big_endian {
                Endianness::Big
            } else {
                Endianness::Little
            },
            ..PcapHeader::default()
        };
        let mut sink = Sink::open(self.plan, header, self.output)?;
        let mut record = vec![0u8; classic::MAX_RECORD];
        loop {
            match rd.next(&mut record).map_err(err)? {
                classic::Next::Record(rec) => {
                    self.frame(&mut sink, rec.ts, &record[..rec.len], rec.orig_len, fcs_len)?;
                }
                classic::Next::End => break,
                classic::Next::Cut => {
                    self.totals.last_record_cut = true;
                    break;
                }
            }
        }
        sink.finish()
    }

    fn pcapng(&mut self, magic: [u8; 4], r: impl Read) -> Result<(), PcapError> {
        let input = self.input;
        let eof = Rc::new(Cell::new(false));
        let watched = EofWatch {
            inner: (&magic[..]).chain(r),
            eof: eof.clone(),
        };
        // Block numbers count from 1, the section header.
        let err = |block: u64, e: pcap_file::PcapError| match e {
            pcap_file::PcapError::IoError(e) if e.kind() != ErrorKind::UnexpectedEof => {
                PcapError::Read {
                    path: input.to_path_buf(),
                    source: e,
                }
            }
            pcap_file::PcapError::IoError(_) => PcapError::MalformedBlock {
                path: input.to_path_buf(),
                block,
                reason: if eof.get() {
                    "the file ends inside it".into()
                } else {
                    "it is longer than the reader's buffer".into()
                },
            },
            e => PcapError::MalformedBlock {
                path: input.to_path_buf(),
                block,
                reason: e.to_string(),
            },
        };
        let mut r = PcapNgReader::new(watched).map_err(|e| err(1, e))?;
        let header = PcapHeader {
            snaplen: MAX_FRAME as u32,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let mut sink = Sink::open(self.plan, header, self.output)?;
        // Per interface: its link type and how many FCS octets end each frame.
        let mut links: Vec<(DataLink, usize)> = Vec::new();
        let mut blocks = 1;
        while let Some(b) = r.next_block() {
            let b = match b {
                Ok(b) => b,
                // The writer was stopped inside the last block.
                Err(pcap_file::PcapError::IoError(e))
                    if e.kind() == ErrorKind::UnexpectedEof && eof.get() =>
                {
                    self.totals.last_record_cut = true;
                    break;
                }
                Err(e) => return Err(err(blocks + 1, e)),
            };
            blocks += 1;
            let (iface, ts, orig, data) = match &b {
                Block::SectionHeader(_) => {
                    links.clear();
                    continue;
                }
                Block::InterfaceDescription(idb) => {
                    let fcs_len = idb.options.iter().find_map(|o| match o {
                        InterfaceDescriptionOption::IfFcsLen(n) => Some(*n as usize),
                        _ => None,
                    });
                    links.push((idb.linktype, fcs_len.unwrap_or(0)));
                    continue;
                }
                Block::EnhancedPacket(p) => (
                    p.interface_id as usize,
                    p.timestamp,
                    p.original_len,
                    &p.data[..],
                ),
                Block::SimplePacket(p) => (0, Duration::ZERO, p.original_len, &p.data[..]),
                // Obsolete block; timestamps in the default microsecond units.
                Block::Packet(p) => (
                    p.interface_id as usize,
                    Duration::from_micros(p.timestamp),
                    p.original_len,
                    &p.data[..],
                ),
                _ => continue,
            };
            let fcs_len = match links.get(iface) {
                Some(&(DataLink::ETHERNET, fcs_len)) => fcs_len,
                _ => {
                    self.totals.not_ethernet += 1;
                    continue;
                }
            };
            self.frame(&mut sink, ts, data, orig, fcs_len)?;
        }
        sink.finish()
    }
}

/// What to do instead, for link types people capture MACsec with by mistake.
fn link_hint(linktype: DataLink) -> &'static str {
    match linktype {
        DataLink::LINUX_SLL | DataLink::LINUX_SLL2 => {
            ". This is a Linux cooked capture (`tcpdump -i any`): it keeps no destination \
             MAC, which the ICV covers (802.1AE 14.1), so its frames can be neither \
             validated nor protected. Capture on the interface itself (`tcpdump -i IFACE`)"
        }
        _ => "",
    }
}

/// For a classic pcap's link-type field: `Some(FCS octets per frame)` if it is Ethernet.
/// The field's upper bits may say the frames end with an FCS: bit 26 set, and bits
/// 28-31 its length in 16-bit units (pcap file format, "LinkType and additional
/// information"); bits 16-25 are reserved and must be zero.
fn classic_fcs_len(linktype: DataLink) -> Option<usize> {
    let v = u32::from(linktype);
    if v & 0xFFFF != u32::from(DataLink::ETHERNET) || v & 0x03FF_0000 != 0 {
        return None;
    }
    Some(if v & 0x0400_0000 != 0 {
        (v >> 28) as usize * 2
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcs_check_value_and_link_type_bits() {
        // The CRC-32 check value (IEEE 802.3 polynomial, reflected).
        assert_eq!(fcs(b"123456789"), 0xCBF4_3926);
        assert_eq!(fcs(b""), 0);
        assert_eq!(classic_fcs_len(DataLink::ETHERNET), Some(0));
        assert_eq!(classic_fcs_len(DataLink::from(0x2400_0001)), Some(4));
        assert_eq!(classic_fcs_len(DataLink::from(0x0400_0001)), Some(0));
        assert_eq!(classic_fcs_len(DataLink::from(0x2000_0001)), Some(0));
        assert_eq!(classic_fcs_len(DataLink::from(0x0001_0001)), None);
        assert_eq!(classic_fcs_len(DataLink::from(0x2400_0071)), None);
        assert_eq!(classic_fcs_len(DataLink::RAW), None);
    }
}

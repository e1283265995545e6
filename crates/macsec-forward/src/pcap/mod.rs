//! Capture files in and out: `macsec pcap encrypt|decrypt`.
//!
//! Reads classic pcap (either byte order, micro- or nanosecond timestamps) or pcapng
//! with the `pcap-file` crate, protects or validates every Ethernet frame with a
//! [`SecY`], and writes a classic pcap with the same timestamps. Frames that
//! validation drops are not written; every outcome is in the SecY counters.
//!
//! Captures that keep the Ethernet FCS (a pcap link-type field with the FCS-length bits
//! set, or a pcapng interface with `if_fcslen`; taps and NICs with `rx-fcs` on make
//! them) are accepted: each frame's FCS is checked and removed before the SecY sees the
//! frame, as a MAC does (802.1AE 10.1: the SecY works on frames without FCS), and a
//! frame with a bad FCS is skipped and counted. The output never carries an FCS.

use macsec::secy::{FrameBuf, RxVerdict, SecY};
use macsec::wire::ethernet::{be16, ethertype, skip_vlan_tags};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, Endianness, TsResolution};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
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
    /// A malformed record.
    #[error("{path}: malformed record after {frames} frames: {reason}")]
    Malformed {
        /// File.
        path: PathBuf,
        /// Frames read before it.
        frames: u64,
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
}

/// Largest frame the tool handles (well above 9216-octet jumbo frames).
pub const MAX_FRAME: usize = 65_535 + 64;

struct Sink<W: Write> {
    w: PcapWriter<W>,
    path: PathBuf,
}

impl<W: Write> Sink<W> {
    fn write(&mut self, ts: Duration, data: &[u8]) -> Result<(), PcapError> {
        self.w
            .write_packet(&PcapPacket::new(ts, data.len() as u32, data))
            .map(|_| ())
            .map_err(|e| PcapError::Write {
                path: self.path.clone(),
                reason: e.to_string(),
            })
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
/// results to `output` (classic pcap, Ethernet).
pub fn run(
    secy: &mut SecY,
    dir: Direction,
    input: &Path,
    output: &Path,
) -> Result<FrameTotals, PcapError> {
    let mut f = File::open(input).map_err(|source| PcapError::Open {
        path: input.to_path_buf(),
        source,
    })?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(|source| PcapError::Open {
        path: input.to_path_buf(),
        source,
    })?;
    f.rewind().map_err(|source| PcapError::Open {
        path: input.to_path_buf(),
        source,
    })?;
    let is_ng = n == 4 && magic == [0x0A, 0x0D, 0x0D, 0x0A];
    let is_pcap = n == 4
        && matches!(
            u32::from_le_bytes(magic),
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1
        );
    if !is_ng && !is_pcap {
        return Err(PcapError::NotPcap {
            path: input.to_path_buf(),
        });
    }
    let malformed = |frames: u64, e: pcap_file::PcapError| PcapError::Malformed {
        path: input.to_path_buf(),
        frames,
        reason: e.to_string(),
    };
    let out_file = File::create(output).map_err(|source| PcapError::Open {
        path: output.to_path_buf(),
        source,
    })?;
    let mut header = PcapHeader {
        snaplen: MAX_FRAME as u32,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::native(),
        ..PcapHeader::default()
    };
    let mut totals = FrameTotals::default();
    let mut buf = FrameBuf::with_capacity(MAX_FRAME);
    let reader = BufReader::new(f);
    if is_pcap {
        let mut r = PcapReader::new(reader).map_err(|_| PcapError::NotPcap {
            path: input.to_path_buf(),
        })?;
        let h = r.header();
        let Some(fcs_len) = classic_fcs_len(h.datalink) else {
            return Err(PcapError::LinkType {
                path: input.to_path_buf(),
                linktype: h.datalink,
            });
        };
        header.ts_resolution = h.ts_resolution;
        header.endianness = h.endianness;
        let mut sink = sink(out_file, header, output)?;
        while let Some(p) = r.next_packet() {
            let p = p.map_err(|e| malformed(totals.read, e))?;
            if process(
                secy,
                dir,
                &mut buf,
                &mut totals,
                &p.data,
                p.orig_len,
                fcs_len,
            ) {
                sink.write(p.timestamp, buf.as_slice())?;
            }
        }
        finish(sink)?;
    } else {
        let mut r = PcapNgReader::new(reader).map_err(|e| malformed(0, e))?;
        let mut sink = sink(out_file, header, output)?;
        // Per interface: its link type and how many FCS octets end each frame.
        let mut links: Vec<(DataLink, usize)> = Vec::new();
        while let Some(b) = r.next_block() {
            let b = b.map_err(|e| malformed(totals.read, e))?;
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
                    totals.not_ethernet += 1;
                    continue;
                }
            };
            if process(secy, dir, &mut buf, &mut totals, data, orig, fcs_len) {
                sink.write(ts, buf.as_slice())?;
            }
        }
        finish(sink)?;
    }
    Ok(totals)
}

/// For a classic pcap's link-type field: `Some(FCS octets per frame)` if it is Ethernet.
/// The field's upper bits may say the frames end with an FCS: bit 26 set, and bits
/// 28-31 its length in 16-bit units (pcap file format, "LinkType and additional
/// information"); bits 16-25 are reserved and must be zero.
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

fn sink(f: File, header: PcapHeader, path: &Path) -> Result<Sink<BufWriter<File>>, PcapError> {
    let w = PcapWriter::with_header(BufWriter::new(f), header).map_err(|e| PcapError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Sink {
        w,
        path: path.to_path_buf(),
    })
}

fn finish(s: Sink<BufWriter<File>>) -> Result<(), PcapError> {
    let path = s.path;
    s.w.into_writer()
        .into_inner()
        .map_err(|e| PcapError::Write {
            path: path.clone(),
            reason: e.to_string(),
        })?
        .sync_all()
        .map_err(|e| PcapError::Write {
            path,
            reason: e.to_string(),
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

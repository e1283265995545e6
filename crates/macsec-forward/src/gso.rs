//! Software TCP and UDP segmentation for frames larger than the MTU.
//!
//! A sender on a veth or tap device with TSO/GSO on (the default) hands the kernel
//! TCP "super-frames" of up to 64 KiB, and a packet socket on the other end of the
//! veth sees them unsegmented: the kernel would only have cut them on the way out of a
//! real device. A MACsec forwarder must put real, MTU-sized frames on the secure link,
//! so it segments such frames itself, exactly as the kernel's GSO would: every segment
//! gets the original headers, its own share of the payload, the IPv4 total length and
//! an incremented IP ID (or the IPv6 payload length), the advanced sequence number,
//! FIN/PSH only on the last segment and CWR only on the first, and fresh IP and TCP
//! checksums.
//!
//! Only TCP over IPv4 (no fragments) or IPv6 (TCP directly after the fixed header) is
//! segmented; anything else that does not fit is reported so the caller can drop and
//! count it.
//!
//! UDP super-frames (UDP GSO, `UDP_SEGMENT`, how QUIC stacks send) are cut by
//! [`UdpSegmenter`] into datagrams of the sender's segment size, which only the kernel's
//! GSO metadata tells (a packet socket reports it with `PACKET_VNET_HDR`): unlike a TCP
//! stream, the datagram boundaries are the application's and must be kept.

use crate::csum::{fold, sum};
use macsec::wire::ethernet::{be16, ethertype, skip_vlan_tags};

/// Why a frame cannot be segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoError {
    /// Not IPv4/IPv6 TCP (or an IPv4 fragment, or IPv6 with extension headers).
    NotTcp,
    /// Headers cut short or inconsistent lengths.
    Malformed,
    /// The MTU leaves no room for payload after the headers.
    MtuTooSmall,
    /// The output buffer is too small for a segment.
    NoRoom,
}

/// Where the IP and transport headers of an IPv4 or IPv6 frame carrying `proto` are.
struct Layout {
    l3: usize,
    l4: usize,
    ipv4: bool,
    /// End of the IP packet by its length field (the frame's end for an IPv6 payload
    /// length of 0, as GSO packets larger than 64 KiB carry); not yet checked.
    end: usize,
}

fn ip_layout(frame: &[u8], proto: u8) -> Result<Layout, GsoError> {
    let (_, et_off) = skip_vlan_tags(frame, 2).ok_or(GsoError::Malformed)?;
    let l3 = et_off + 2;
    match be16(frame, et_off) {
        Some(ethertype::IPV4) => {
            let vihl = *frame.get(l3).ok_or(GsoError::Malformed)?;
            let ihl = ((vihl & 0x0F) as usize) * 4;
            if vihl >> 4 != 4 || ihl < 20 || frame.len() < l3 + ihl {
                return Err(GsoError::Malformed);
            }
            if frame[l3 + 9] != proto {
                return Err(GsoError::NotTcp);
            }
            let frag = u16::from_be_bytes([frame[l3 + 6], frame[l3 + 7]]);
            if frag & 0x3FFF != 0 {
                return Err(GsoError::NotTcp);
            }
            let total = u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]) as usize;
            Ok(Layout {
                l3,
                l4: l3 + ihl,
                ipv4: true,
                end: l3 + total,
            })
        }
        Some(ethertype::IPV6) => {
            if frame.len() < l3 + 40 || frame[l3] >> 4 != 6 {
                return Err(GsoError::Malformed);
            }
            if frame[l3 + 6] != proto {
                return Err(GsoError::NotTcp);
            }
            let plen = u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]) as usize;
            Ok(Layout {
                l3,
                l4: l3 + 40,
                ipv4: false,
                end: if plen == 0 {
                    frame.len()
                } else {
                    l3 + 40 + plen
                },
            })
        }
        _ => Err(GsoError::NotTcp),
    }
}

/// Sets the per-segment IP fields of `out[..len]`, a segment that starts with a copy of
/// the original headers: the IPv4 total length, the ID advanced by `index` and a fresh
/// header checksum, or the IPv6 payload length. Returns the pseudo-header sum of the
/// segment's `proto` checksum.
fn fix_ip(
    out: &mut [u8],
    l3: usize,
    l4: usize,
    len: usize,
    ipv4: bool,
    index: u16,
    proto: u8,
) -> u64 {
    let l4_len = len - l4;
    if ipv4 {
        out[l3 + 2..l3 + 4].copy_from_slice(&((len - l3) as u16).to_be_bytes());
        let id = u16::from_be_bytes([out[l3 + 4], out[l3 + 5]]).wrapping_add(index);
        out[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
        out[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
        let c = !fold(sum(&out[l3..l4]));
        out[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        sum(&out[l3 + 12..l3 + 20]) + proto as u64 + l4_len as u64
    } else {
        out[l3 + 4..l3 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        sum(&out[l3 + 8..l3 + 40]) + proto as u64 + l4_len as u64
    }
}

/// Walks the payload `start..end` of a frame whose headers are `frame[..start]` in
/// pieces of at most `size` octets (a frame without payload is one empty piece), and
/// writes each as headers plus piece: what both segmenters share.
#[derive(Debug)]
struct Pieces {
    start: usize,
    end: usize,
    size: usize,
    next: usize,
    index: u16,
}

/// One piece taken by [`Pieces::next_piece`].
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// Offset of the piece in the payload.
    off: usize,
    /// 0 for the first piece, then counting up (wrapping).
    index: u16,
    /// Whether it is the last piece.
    last: bool,
    /// Length of the segment written: headers and piece.
    len: usize,
}

impl Pieces {
    fn new(start: usize, end: usize, size: usize) -> Pieces {
        Pieces {
            start,
            end,
            size,
            next: start,
            index: 0,
        }
    }

    fn count(&self) -> usize {
        (self.end - self.start).div_ceil(self.size).max(1)
    }

    fn is_done(&self) -> bool {
        self.next >= self.end && !(self.index == 0 && self.end == self.start)
    }

    /// Length of the next segment (headers and piece).
    fn next_len(&self) -> usize {
        self.start + (self.end.saturating_sub(self.next)).min(self.size)
    }

    /// Takes the next piece and moves on: returns it and where its payload lies in the
    /// frame, or `None` when done. A piece whose headers do not fit `out` (where the
    /// caller writes them) is not taken.
    fn next_piece(
        &mut self,
        out: &mut [u8],
    ) -> Result<Option<(Piece, std::ops::Range<usize>)>, GsoError> {
        if self.is_done() {
            return Ok(None);
        }
        let chunk = (self.end - self.next).min(self.size);
        let len = self.start + chunk;
        if out.len() < self.start {
            return Err(GsoError::NoRoom);
        }
        let piece = Piece {
            off: self.next - self.start,
            index: self.index,
            last: self.next + chunk >= self.end,
            len,
        };
        let payload = self.next..self.next + chunk;
        self.next += chunk;
        self.index = self.index.wrapping_add(1);
        if chunk == 0 {
            // A header-only frame: one segment, then done.
            self.next = self.end + 1;
        }
        Ok(Some((piece, payload)))
    }
}

/// Iterates over the segments of one oversized TCP frame.
#[derive(Debug)]
pub struct TcpSegmenter<'a> {
    frame: &'a [u8],
    l3: usize,
    l4: usize,
    ipv4: bool,
    pieces: Pieces,
}

impl<'a> TcpSegmenter<'a> {
    /// Prepares to cut `frame` into segments whose IP packets are at most `mtu` octets.
    pub fn new(frame: &'a [u8], mtu: usize) -> Result<TcpSegmenter<'a>, GsoError> {
        let Layout {
            l3,
            l4,
            ipv4,
            end: ip_end,
        } = ip_layout(frame, 6)?;
        if frame.len() < l4 + 20 {
            return Err(GsoError::Malformed);
        }
        let thl = ((frame[l4 + 12] >> 4) as usize) * 4;
        let hdr_len = l4 + thl;
        // IPv4 total length 0 also appears on BIG TCP packets; trust the frame then.
        let payload_end = if ip_end <= l3 || ip_end > frame.len() {
            if ipv4 && u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]) == 0 {
                frame.len()
            } else {
                return Err(GsoError::Malformed);
            }
        } else {
            ip_end
        };
        if thl < 20 || hdr_len > payload_end {
            return Err(GsoError::Malformed);
        }
        let ip_hdrs = hdr_len - l3;
        if mtu <= ip_hdrs {
            return Err(GsoError::MtuTooSmall);
        }
        Ok(TcpSegmenter {
            frame,
            l3,
            l4,
            ipv4,
            pieces: Pieces::new(hdr_len, payload_end, mtu - ip_hdrs),
        })
    }

    /// Caps the payload per segment at the sender's MSS (the kernel's `gso_size`), which
    /// may be smaller than the MTU allows (path MTU, MSS clamping): larger segments could
    /// be dropped further on. 0 leaves the MTU's limit.
    pub fn with_mss(mut self, mss: usize) -> Self {
        if mss > 0 {
            self.pieces.size = self.pieces.size.min(mss);
        }
        self
    }

    /// The number of segments this frame becomes.
    pub fn count(&self) -> usize {
        self.pieces.count()
    }

    /// Whether all segments were produced.
    pub fn is_done(&self) -> bool {
        self.pieces.is_done()
    }

    /// Writes the next segment to `out` and returns its length, or `None` when done.
    pub fn next_into(&mut self, out: &mut [u8]) -> Result<Option<usize>, GsoError> {
        if !self.is_done() && out.len() < self.pieces.next_len() {
            return Err(GsoError::NoRoom);
        }
        let frame = self.frame;
        next_into(out, |o| self.next_parts(o), frame)
    }

    /// Writes the headers of the next segment to `out` and returns their length and
    /// where the segment's payload lies in the frame, or `None` when done: the segment
    /// is `out[..len] ‖ frame[payload]`, for a caller that sends it without copying the
    /// payload. The checksum covers the payload where it lies.
    pub fn next_parts(
        &mut self,
        out: &mut [u8],
    ) -> Result<Option<(usize, std::ops::Range<usize>)>, GsoError> {
        let Some((p, payload)) = self.pieces.next_piece(out)? else {
            return Ok(None);
        };
        let (f, l4, hdr) = (self.frame, self.l4, self.pieces.start);
        out[..hdr].copy_from_slice(&f[..hdr]);
        let pseudo = fix_ip(out, self.l3, l4, p.len, self.ipv4, p.index, 6);
        let seq = u32::from_be_bytes([f[l4 + 4], f[l4 + 5], f[l4 + 6], f[l4 + 7]])
            .wrapping_add(p.off as u32);
        out[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = f[l4 + 13];
        if !p.last {
            flags &= !(0x01 | 0x08); // FIN, PSH
        }
        if p.index != 0 {
            flags &= !0x80; // CWR
        }
        out[l4 + 13] = flags;
        // TCP checksum over the pseudo-header and the segment (the TCP header is a
        // multiple of 4 octets long, so the two sums add up).
        out[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        let c = !fold(pseudo + sum(&out[l4..hdr]) + sum(&f[payload.clone()]));
        out[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        Ok(Some((hdr, payload)))
    }
}

/// A segment as headers in `out` and payload in `frame`, put together in `out`.
fn next_into(
    out: &mut [u8],
    parts: impl FnOnce(&mut [u8]) -> Result<Option<(usize, std::ops::Range<usize>)>, GsoError>,
    frame: &[u8],
) -> Result<Option<usize>, GsoError> {
    let Some((hdr, payload)) = parts(out)? else {
        return Ok(None);
    };
    let len = hdr + payload.len();
    let Some(dst) = out.get_mut(hdr..len) else {
        return Err(GsoError::NoRoom);
    };
    dst.copy_from_slice(&frame[payload]);
    Ok(Some(len))
}

/// Iterates over the datagrams of one UDP super-frame (UDP GSO): each gets the original
/// headers, `seg_size` octets of the payload (the last one the rest), its own UDP
/// length and checksum, and the IPv4 total length, an incremented IP ID and a fresh
/// header checksum (or the IPv6 payload length), as the kernel's UDP GSO would make them.
#[derive(Debug)]
pub struct UdpSegmenter<'a> {
    frame: &'a [u8],
    l3: usize,
    l4: usize,
    ipv4: bool,
    pieces: Pieces,
}

impl<'a> UdpSegmenter<'a> {
    /// Prepares to cut `frame` (IPv4 or IPv6 UDP, up to two VLAN tags) into datagrams of
    /// `seg_size` payload octets, none of whose IP packets may exceed `mtu`.
    pub fn new(frame: &'a [u8], seg_size: usize, mtu: usize) -> Result<UdpSegmenter<'a>, GsoError> {
        let Layout { l3, l4, ipv4, end } = ip_layout(frame, 17)?;
        if end < l4 + 8 || end > frame.len() {
            return Err(GsoError::Malformed);
        }
        if seg_size == 0 {
            return Err(GsoError::Malformed);
        }
        if l4 + 8 - l3 + seg_size > mtu {
            return Err(GsoError::MtuTooSmall);
        }
        Ok(UdpSegmenter {
            frame,
            l3,
            l4,
            ipv4,
            pieces: Pieces::new(l4 + 8, end, seg_size),
        })
    }

    /// The number of datagrams this frame becomes.
    pub fn count(&self) -> usize {
        self.pieces.count()
    }

    /// Whether all datagrams were produced.
    pub fn is_done(&self) -> bool {
        self.pieces.is_done()
    }

    /// Writes the next datagram's frame to `out` and returns its length, or `None` when
    /// done.
    pub fn next_into(&mut self, out: &mut [u8]) -> Result<Option<usize>, GsoError> {
        if !self.is_done() && out.len() < self.pieces.next_len() {
            return Err(GsoError::NoRoom);
        }
        let frame = self.frame;
        next_into(out, |o| self.next_parts(o), frame)
    }

    /// Writes the headers of the next datagram to `out` and returns their length and
    /// where its payload lies in the frame (see [`TcpSegmenter::next_parts`]).
    pub fn next_parts(
        &mut self,
        out: &mut [u8],
    ) -> Result<Option<(usize, std::ops::Range<usize>)>, GsoError> {
        let Some((p, payload)) = self.pieces.next_piece(out)? else {
            return Ok(None);
        };
        let (l4, len, hdr) = (self.l4, p.len, self.pieces.start);
        out[..hdr].copy_from_slice(&self.frame[..hdr]);
        let pseudo = fix_ip(out, self.l3, l4, len, self.ipv4, p.index, 17);
        out[l4 + 4..l4 + 6].copy_from_slice(&((len - l4) as u16).to_be_bytes());
        out[l4 + 6..l4 + 8].copy_from_slice(&[0, 0]);
        // RFC 768: a computed checksum of zero is sent as all ones.
        let c = match !fold(pseudo + sum(&out[l4..hdr]) + sum(&self.frame[payload.clone()])) {
            0 => 0xFFFF,
            c => c,
        };
        out[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
        Ok(Some((hdr, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An Ethernet frame (optionally with a VLAN tag) carrying an IPv4 or IPv6 packet of
    /// protocol `proto` (IPv4 ID `id`) whose transport header and payload are `l4`.
    fn ip_frame(v6: bool, vlan: bool, proto: u8, id: [u8; 2], l4: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        }
        if v6 {
            f.extend_from_slice(&[0x86, 0xDD, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&[0xfd; 16]);
            f.extend_from_slice(&[0xfe; 16]);
        } else {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            f.extend_from_slice(&[id[0], id[1], 0x40, 0, 64, proto, 0, 0]);
            f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        }
        f.extend_from_slice(l4);
        f
    }

    fn tcp_frame(v6: bool, vlan: bool, payload: &[u8], flags: u8) -> Vec<u8> {
        // ports, seq 0xFFFFFF00 (wraps), ack, doff 8 (12 octets of options), flags
        let mut l4 = vec![
            0x9c, 0x40, 0x14, 0x51, 0xFF, 0xFF, 0xFF, 0x00, 0, 0, 0, 1, 0x80, flags, 0xFF, 0xFF, 0,
            0, 0, 0,
        ];
        l4.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        l4.extend_from_slice(payload);
        ip_frame(v6, vlan, 6, [0x12, 0x34], &l4)
    }

    fn l3_start(f: &[u8]) -> usize {
        if f[12] == 0x81 {
            18
        } else {
            14
        }
    }

    fn check_segment(seg: &[u8]) -> (u32, u8, Vec<u8>, usize) {
        let l3 = l3_start(seg);
        let v6 = seg[l3] >> 4 == 6;
        let l4 = if v6 { l3 + 40 } else { l3 + 20 };
        let l4len = seg.len() - l4;
        if v6 {
            assert_eq!(
                u16::from_be_bytes([seg[l3 + 4], seg[l3 + 5]]) as usize,
                l4len
            );
        } else {
            assert_eq!(
                u16::from_be_bytes([seg[l3 + 2], seg[l3 + 3]]) as usize,
                seg.len() - l3
            );
            assert_eq!(fold(sum(&seg[l3..l4])), 0xFFFF, "IPv4 header checksum");
        }
        let ph = if v6 {
            sum(&seg[l3 + 8..l3 + 40])
        } else {
            sum(&seg[l3 + 12..l3 + 20])
        };
        let total = ph + 6 + l4len as u64 + sum(&seg[l4..]);
        assert_eq!(fold(total), 0xFFFF, "TCP checksum");
        let seq = u32::from_be_bytes(seg[l4 + 4..l4 + 8].try_into().unwrap());
        (seq, seg[l4 + 13], seg[l4 + 32..].to_vec(), seg.len() - l3)
    }

    proptest! {
        #[test]
        fn segments_reassemble_with_valid_headers(
            v6 in any::<bool>(), vlan in any::<bool>(),
            payload in prop::collection::vec(any::<u8>(), 0..20000),
            mtu in 200usize..9001, flags in prop::sample::select(vec![0x18u8, 0x19, 0x98, 0x10]),
            mss in prop::sample::select(vec![0usize, 1, 536, 1200, 1448, 8948, 65535]),
        ) {
            let f = tcp_frame(v6, vlan, &payload, flags);
            let mut s = TcpSegmenter::new(&f, mtu).unwrap().with_mss(mss);
            let max_payload = if mss == 0 { usize::MAX } else { mss };
            let n = s.count();
            let mut out = vec![0u8; 10000];
            let mut got = Vec::new();
            let mut segs = 0;
            let mut expect_seq = 0xFFFF_FF00u32;
            while let Some(len) = s.next_into(&mut out).unwrap() {
                let (seq, fl, data, ip_len) = check_segment(&out[..len]);
                prop_assert!(ip_len <= mtu);
                prop_assert!(data.len() <= max_payload);
                if got.len() + data.len() < payload.len() {
                    // Every segment but the last is full.
                    let hdrs = ip_len - data.len();
                    prop_assert_eq!(data.len(), max_payload.min(mtu - hdrs));
                }
                prop_assert_eq!(seq, expect_seq);
                expect_seq = expect_seq.wrapping_add(data.len() as u32);
                let last = got.len() + data.len() == payload.len();
                prop_assert_eq!(fl & 0x09 != 0, last && flags & 0x09 != 0);
                prop_assert_eq!(fl & 0x80 != 0, segs == 0 && flags & 0x80 != 0);
                got.extend_from_slice(&data);
                segs += 1;
            }
            prop_assert_eq!(segs, n);
            prop_assert_eq!(got, payload);
        }

        #[test]
        fn never_panics(data in prop::collection::vec(any::<u8>(), 0..200), mtu in 0usize..2000) {
            if let Ok(mut s) = TcpSegmenter::new(&data, mtu) {
                let mut out = vec![0u8; 4096];
                for _ in 0..300 {
                    match s.next_into(&mut out) { Ok(Some(_)) => {}, _ => break }
                }
            }
        }
    }

    #[test]
    fn rejects_non_tcp_and_fragments() {
        let mut f = tcp_frame(false, false, &[0; 100], 0x10);
        f[23] = 17;
        assert_eq!(TcpSegmenter::new(&f, 1500).unwrap_err(), GsoError::NotTcp);
        let mut f = tcp_frame(false, false, &[0; 100], 0x10);
        f[20] = 0x20; // MF
        assert_eq!(TcpSegmenter::new(&f, 1500).unwrap_err(), GsoError::NotTcp);
        let f = tcp_frame(false, false, &[0; 100], 0x10);
        assert_eq!(
            TcpSegmenter::new(&f, 52).unwrap_err(),
            GsoError::MtuTooSmall
        );
        assert_eq!(
            TcpSegmenter::new(&f[..40], 1500).unwrap_err(),
            GsoError::Malformed
        );
    }

    fn udp_frame(v6: bool, vlan: bool, payload: &[u8]) -> Vec<u8> {
        // ports, length (of the whole super-datagram), checksum left partial
        let mut l4 = vec![0x9c, 0x40, 0x11, 0x51];
        l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0x12, 0x34]);
        l4.extend_from_slice(payload);
        ip_frame(v6, vlan, 17, [0xFF, 0xFE], &l4)
    }

    proptest! {
        #[test]
        fn udp_datagrams_keep_the_senders_boundaries(
            v6 in any::<bool>(), vlan in any::<bool>(),
            payload in prop::collection::vec(any::<u8>(), 0..20000),
            seg in 1usize..1453,
        ) {
            let f = udp_frame(v6, vlan, &payload);
            let mut s = UdpSegmenter::new(&f, seg, 1500).unwrap();
            let n = s.count();
            let mut out = vec![0u8; 2000];
            let mut got = Vec::new();
            let mut i = 0usize;
            while let Some(len) = s.next_into(&mut out).unwrap() {
                let d = &out[..len];
                let l3 = l3_start(d);
                let l4 = if v6 { l3 + 40 } else { l3 + 20 };
                let data = &d[l4 + 8..];
                prop_assert_eq!(data.len(), seg.min(payload.len() - got.len()));
                prop_assert!(len - l3 <= 1500);
                let udp_len = u16::from_be_bytes([d[l4 + 4], d[l4 + 5]]) as usize;
                prop_assert_eq!(udp_len, len - l4);
                if v6 {
                    prop_assert_eq!(u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]) as usize, udp_len);
                } else {
                    prop_assert_eq!(u16::from_be_bytes([d[l3 + 2], d[l3 + 3]]) as usize, len - l3);
                    prop_assert_eq!(fold(sum(&d[l3..l4])), 0xFFFF);
                    let id = u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]);
                    prop_assert_eq!(id, 0xFFFEu16.wrapping_add(i as u16));
                }
                prop_assert!(crate::csum::verify(d).unwrap(), "UDP checksum");
                got.extend_from_slice(data);
                i += 1;
            }
            prop_assert_eq!(i, n);
            prop_assert_eq!(got, payload);
        }

        #[test]
        fn udp_never_panics(data in prop::collection::vec(any::<u8>(), 0..200), seg in 0usize..2000, mtu in 0usize..2000) {
            if let Ok(mut s) = UdpSegmenter::new(&data, seg, mtu) {
                let mut out = vec![0u8; 4096];
                for _ in 0..300 {
                    match s.next_into(&mut out) { Ok(Some(_)) => {}, _ => break }
                }
            }
        }
    }

    #[test]
    fn udp_rejects_what_it_cannot_cut() {
        let f = udp_frame(false, false, &[0; 3000]);
        assert_eq!(
            UdpSegmenter::new(&f, 1473, 1500).unwrap_err(),
            GsoError::MtuTooSmall
        );
        assert!(UdpSegmenter::new(&f, 1472, 1500).is_ok());
        assert_eq!(
            UdpSegmenter::new(&f, 0, 1500).unwrap_err(),
            GsoError::Malformed
        );
        let t = tcp_frame(false, false, &[0; 100], 0x10);
        assert_eq!(
            UdpSegmenter::new(&t, 1000, 1500).unwrap_err(),
            GsoError::NotTcp
        );
        assert_eq!(
            UdpSegmenter::new(&f[..30], 1000, 1500).unwrap_err(),
            GsoError::Malformed
        );
    }
}

//! Completing TCP and UDP checksums that were left for offload.
//!
//! A frame generated on this host (or passed through a veth) can reach a packet socket in
//! `CHECKSUM_PARTIAL` state (`TP_STATUS_CSUMNOTREADY`): its transport checksum field
//! holds only the pseudo-header sum, because a NIC was expected to finish the job. Once
//! the frame is encrypted nobody can, so the forwarder computes the whole checksum first:
//! [`complete`] finds the TCP or UDP header behind 0, 1 or 2 VLAN tags (0x8100/0x88A8)
//! and IPv4 or IPv6 (walking IPv6 extension headers), and writes the correct checksum,
//! ignoring whatever the field held. [`verify`] checks a frame's checksum.
//!
//! Pure: no allocation, no state, and no panics on any input; malformed frames give a
//! [`CsumError`].

/// The transport protocol whose checksum was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

/// Why a frame's transport checksum could not be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CsumError {
    /// The frame ends before its headers do.
    #[error("frame too short for its headers")]
    Truncated,
    /// The (inner) EtherType is neither IPv4 nor IPv6.
    #[error("EtherType {0:#06x} is not IPv4 or IPv6")]
    NotIp(u16),
    /// More than two VLAN tags.
    #[error("more than two VLAN tags")]
    TooManyTags,
    /// The IP header is malformed (version, header length, total length).
    #[error("malformed IP header")]
    BadIpHeader,
    /// An IP fragment: its transport checksum covers data in other fragments.
    #[error("IP fragment; its transport checksum covers other fragments")]
    Fragment,
    /// The transport protocol (IP protocol number) is not TCP or UDP.
    #[error("IP protocol {0} is not TCP or UDP")]
    Unsupported(u8),
    /// The IPv6 extension header chain is too long or has a routing header we cannot
    /// resolve the final destination of.
    #[error("IPv6 extension headers too long or not understood")]
    Extension,
    /// The transport header or length does not fit the IP payload.
    #[error("transport length inconsistent with the IP payload")]
    BadLength,
}

use macsec::wire::ethernet::{ethertype, HEADER_LEN as ETH_HLEN};

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
/// Most IPv6 extension headers walked before giving up.
const MAX_EXT_HEADERS: usize = 8;

/// Where the transport segment is and what its pseudo-header contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    transport: Transport,
    /// Offset of the transport header in the frame.
    start: usize,
    /// Length of the segment the checksum covers.
    len: usize,
    /// Unfolded one's-complement sum of the pseudo-header.
    pseudo: u64,
    /// IPv4 (UDP checksum 0 means "none") or IPv6 (0 is never valid).
    v4: bool,
}

impl Segment {
    /// Offset of the checksum field in the frame.
    fn field(&self) -> usize {
        self.start
            + match self.transport {
                Transport::Tcp => 16,
                Transport::Udp => 6,
            }
    }
}

fn be16(b: &[u8], at: usize) -> Result<u16, CsumError> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(CsumError::Truncated),
    }
}

fn byte(b: &[u8], at: usize) -> Result<u8, CsumError> {
    b.get(at).copied().ok_or(CsumError::Truncated)
}

/// Unfolded one's-complement sum of `data` as big-endian 16-bit words (an odd last octet
/// is padded with zero), folding to the same 16-bit result as the plain word sum.
///
/// Per frame on the forwarder's hot path (every frame whose checksum a local sender left
/// to offload, every GSO segment), so it adds whole 64-bit words, in the host's byte
/// order, into four independent 128-bit accumulators (no carry is lost, and the adds of
/// one word do not wait for the previous one), then folds and swaps the 16-bit result to
/// network order: a one's-complement sum does not depend on byte order except for that
/// final swap (RFC 1071, 2.(B)).
pub(crate) fn sum(data: &[u8]) -> u64 {
    let word = |c: &[u8]| u128::from(u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])));
    let mut acc = [0u128; 4];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        acc[0] += word(&b[0..8]);
        acc[1] += word(&b[8..16]);
        acc[2] += word(&b[16..24]);
        acc[3] += word(&b[24..32]);
    }
    let mut words = blocks.remainder().chunks_exact(8);
    let mut total = acc[0] + acc[1] + acc[2] + acc[3];
    for w in &mut words {
        total += word(w);
    }
    // Fold to 16 bits in the host's order, then to network order.
    while total > 0xFFFF {
        total = (total & 0xFFFF) + (total >> 16);
    }
    let mut s = total as u16;
    if cfg!(target_endian = "little") {
        s = s.swap_bytes();
    }
    let mut out = u64::from(s);
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        out += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        out += u64::from(*last) << 8;
    }
    out
}

/// Folds an unfolded sum to 16 bits with end-around carry.
pub(crate) fn fold(mut s: u64) -> u16 {
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    s as u16
}

/// Skips the Ethernet header and up to two VLAN tags; returns (EtherType, L3 offset).
fn l3(frame: &[u8]) -> Result<(u16, usize), CsumError> {
    let mut off = ETH_HLEN;
    let mut ethertype = be16(frame, 12)?;
    let mut tags = 0;
    while ethertype == ethertype::VLAN || ethertype == ethertype::QINQ {
        tags += 1;
        if tags > 2 {
            return Err(CsumError::TooManyTags);
        }
        ethertype = be16(frame, off + 2)?;
        off += 4;
    }
    Ok((ethertype, off))
}

/// Checks the transport header fits and returns the segment length it covers.
fn transport_len(
    frame: &[u8],
    t: Transport,
    start: usize,
    avail: usize,
) -> Result<usize, CsumError> {
    match t {
        Transport::Tcp => {
            if avail < 20 {
                return Err(CsumError::BadLength);
            }
            Ok(avail)
        }
        Transport::Udp => {
            if avail < 8 {
                return Err(CsumError::BadLength);
            }
            let ulen = usize::from(be16(frame, start + 4)?);
            if ulen < 8 || ulen > avail {
                return Err(CsumError::BadLength);
            }
            Ok(ulen)
        }
    }
}

fn transport_of(proto: u8) -> Result<Transport, CsumError> {
    match proto {
        PROTO_TCP => Ok(Transport::Tcp),
        PROTO_UDP => Ok(Transport::Udp),
        p => Err(CsumError::Unsupported(p)),
    }
}

fn locate_v4(frame: &[u8], ip: usize) -> Result<Segment, CsumError> {
    let vihl = byte(frame, ip)?;
    if vihl >> 4 != 4 {
        return Err(CsumError::BadIpHeader);
    }
    let ihl = usize::from(vihl & 0x0F) * 4;
    if ihl < 20 {
        return Err(CsumError::BadIpHeader);
    }
    let total = usize::from(be16(frame, ip + 2)?);
    if total < ihl {
        return Err(CsumError::BadIpHeader);
    }
    if ip + total > frame.len() {
        return Err(CsumError::Truncated);
    }
    let frag = be16(frame, ip + 6)?;
    if frag & 0x3FFF != 0 {
        return Err(CsumError::Fragment);
    }
    let transport = transport_of(frame[ip + 9])?;
    let start = ip + ihl;
    let len = transport_len(frame, transport, start, total - ihl)?;
    let proto = u64::from(frame[ip + 9]);
    let pseudo = sum(&frame[ip + 12..ip + 20]) + proto + len as u64;
    Ok(Segment {
        transport,
        start,
        len,
        pseudo,
        v4: true,
    })
}

fn locate_v6(frame: &[u8], ip: usize) -> Result<Segment, CsumError> {
    if byte(frame, ip)? >> 4 != 6 {
        return Err(CsumError::BadIpHeader);
    }
    let payload = usize::from(be16(frame, ip + 4)?);
    let end = ip + 40 + payload;
    if payload == 0 {
        // Zero means a jumbogram (or a GSO super-packet): not a frame we can handle.
        return Err(CsumError::BadIpHeader);
    }
    if end > frame.len() {
        return Err(CsumError::Truncated);
    }
    let src = ip + 8;
    // The pseudo-header uses the final destination, which a routing header with
    // segments left can name.
    let mut dst = ip + 24;
    let mut next = frame[ip + 6];
    let mut off = ip + 40;
    for _ in 0..=MAX_EXT_HEADERS {
        match next {
            PROTO_TCP | PROTO_UDP => {
                let transport = transport_of(next)?;
                let len = transport_len(frame, transport, off, end - off)?;
                let pseudo = sum(&frame[src..src + 16])
                    + sum(&frame[dst..dst + 16])
                    + len as u64
                    + u64::from(next);
                return Ok(Segment {
                    transport,
                    start: off,
                    len,
                    pseudo,
                    v4: false,
                });
            }
            // Hop-by-hop, destination options, routing: (len + 1) * 8 octets.
            0 | 60 | 43 => {
                if off + 8 > end {
                    return Err(CsumError::BadLength);
                }
                let hlen = (usize::from(frame[off + 1]) + 1) * 8;
                if off + hlen > end {
                    return Err(CsumError::BadLength);
                }
                if next == 43 && frame[off + 3] != 0 {
                    let addrs = usize::from(frame[off + 1]) / 2;
                    dst = match frame[off + 2] {
                        // Type 0 (deprecated) and 2 (mobility): address list, final last.
                        0 | 2 if addrs >= 1 => off + 8 + 16 * (addrs - 1),
                        // Type 4 (segment routing): Segment List[0] is the final one.
                        4 if addrs >= 1 => off + 8,
                        _ => return Err(CsumError::Extension),
                    };
                }
                next = frame[off];
                off += hlen;
            }
            // Fragment header: only an atomic fragment (offset 0, no more) is whole.
            44 => {
                if off + 8 > end {
                    return Err(CsumError::BadLength);
                }
                if be16(frame, off + 2)? & 0xFFF9 != 0 {
                    return Err(CsumError::Fragment);
                }
                next = frame[off];
                off += 8;
            }
            // Authentication header: (len + 2) * 4 octets.
            51 => {
                if off + 8 > end {
                    return Err(CsumError::BadLength);
                }
                let hlen = (usize::from(frame[off + 1]) + 2) * 4;
                if off + hlen > end {
                    return Err(CsumError::BadLength);
                }
                next = frame[off];
                off += hlen;
            }
            other => return Err(CsumError::Unsupported(other)),
        }
    }
    Err(CsumError::Extension)
}

fn locate(frame: &[u8]) -> Result<Segment, CsumError> {
    let (ethertype, ip) = l3(frame)?;
    match ethertype {
        ethertype::IPV4 => locate_v4(frame, ip),
        ethertype::IPV6 => locate_v6(frame, ip),
        other => Err(CsumError::NotIp(other)),
    }
}

/// Computes and writes the TCP or UDP checksum of `frame` (a whole Ethernet frame, no
/// FCS), whatever its checksum field held. A UDP checksum that computes to 0 is written
/// as 0xFFFF (0 would mean "no checksum").
pub fn complete(frame: &mut [u8]) -> Result<Transport, CsumError> {
    let (field, c, transport) = completed(frame)?;
    frame[field..field + 2].copy_from_slice(&c);
    Ok(transport)
}

/// What [`complete`] would write, without writing it: the offset of the checksum field
/// in `frame` and its value (big-endian), and the transport. For a caller that sends a
/// modified copy of the frame's first octets and the rest from where it lies.
pub fn completed(frame: &[u8]) -> Result<(usize, [u8; 2], Transport), CsumError> {
    let seg = locate(frame)?;
    let field = seg.field();
    // The sum with the field taken as zero: the octets before it (an even count from
    // the segment start, so the two sums add up) and after it.
    let total =
        seg.pseudo + sum(&frame[seg.start..field]) + sum(&frame[field + 2..seg.start + seg.len]);
    let mut c = !fold(total);
    if c == 0 && seg.transport == Transport::Udp {
        c = 0xFFFF;
    }
    Ok((field, c.to_be_bytes(), seg.transport))
}

/// Whether the TCP or UDP checksum of `frame` is correct. A UDP-over-IPv4 checksum of 0
/// ("none") counts as correct; over IPv6 it does not.
pub fn verify(frame: &[u8]) -> Result<bool, CsumError> {
    let seg = locate(frame)?;
    let field = seg.field();
    if seg.transport == Transport::Udp && frame[field] == 0 && frame[field + 1] == 0 {
        return Ok(seg.v4);
    }
    Ok(fold(seg.pseudo + sum(&frame[seg.start..seg.start + seg.len])) == 0xFFFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---- a from-scratch reference: build the pseudo-header, add 16-bit words one by one

    fn ref_checksum(pseudo: &[u8], segment: &[u8], csum_at: usize) -> u16 {
        let mut bytes = pseudo.to_vec();
        let mut seg = segment.to_vec();
        seg[csum_at] = 0;
        seg[csum_at + 1] = 0;
        bytes.extend_from_slice(&seg);
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        let mut s: u32 = 0;
        for w in bytes.chunks(2) {
            s += u32::from(w[0]) << 8 | u32::from(w[1]);
            if s > 0xFFFF {
                s = (s & 0xFFFF) + 1;
            }
        }
        !(s as u16)
    }

    fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.push(0);
        p.push(proto);
        p.extend_from_slice(&(len as u16).to_be_bytes());
        p
    }

    fn pseudo_v6(src: [u8; 16], dst: [u8; 16], proto: u8, len: usize) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&(len as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, proto]);
        p
    }

    fn eth(tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        for (tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn tcp_segment(payload: &[u8]) -> Vec<u8> {
        let mut t = vec![
            0x30, 0x39, 0x00, 0x50, // ports 12345 -> 80
            0x00, 0x00, 0x00, 0x01, // seq
            0x00, 0x00, 0x00, 0x00, // ack
            0x50, 0x02, 0xFA, 0xF0, // data offset 5, SYN, window
            0xAB, 0xCD, 0x00, 0x00, // checksum (garbage), urgent
        ];
        t.extend_from_slice(payload);
        t
    }

    fn udp_segment(payload: &[u8]) -> Vec<u8> {
        let len = (8 + payload.len()) as u16;
        let mut u = vec![0x13, 0x88, 0x00, 0x35];
        u.extend_from_slice(&len.to_be_bytes());
        u.extend_from_slice(&[0x12, 0x34]);
        u.extend_from_slice(payload);
        u
    }

    fn ipv4(proto: u8, seg: &[u8], frag: u16) -> Vec<u8> {
        let total = (20 + seg.len()) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
        h.extend_from_slice(seg);
        h
    }

    const S6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const D6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const F6: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xef,
    ];

    fn ipv6(next: u8, rest: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        h.push(next);
        h.push(64);
        h.extend_from_slice(&S6);
        h.extend_from_slice(&D6);
        h.extend_from_slice(rest);
        h
    }

    fn field(frame: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([frame[at], frame[at + 1]])
    }

    /// The word-at-a-time sum folds to what the plain sum of big-endian 16-bit words
    /// folds to, for every length and content (and so to every checksum before it).
    #[test]
    fn fast_sum_folds_like_the_plain_word_sum() {
        fn plain(d: &[u8]) -> u64 {
            let mut acc = 0u64;
            for c in d.chunks(2) {
                acc += u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0));
            }
            acc
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..300usize {
            for fill in [0x00u8, 0xFF, 0x5A, 0] {
                let d: Vec<u8> = (0..len)
                    .map(|i| {
                        if fill != 0 || len % 3 == 0 {
                            fill
                        } else {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x as u8 ^ i as u8
                        }
                    })
                    .collect();
                assert_eq!(fold(sum(&d)), fold(plain(&d)), "len {len} fill {fill:#x}");
                assert_eq!(fold(sum(&d) + 0x1234), fold(plain(&d) + 0x1234));
            }
        }
        let big: Vec<u8> = (0..65_535u32).map(|i| (i * 7 + i / 251) as u8).collect();
        assert_eq!(fold(sum(&big)), fold(plain(&big)));
        assert_eq!(fold(sum(&[0xFF; 9001])), fold(plain(&[0xFF; 9001])));
    }

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d)), 0xddf2);
        assert_eq!(
            fold(sum(&d[..7])),
            fold(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0x00]))
        );
    }

    #[test]
    fn ipv4_tcp_against_reference_and_fixed_value() {
        for (tags, payload) in [
            (vec![], &b""[..]),
            (vec![(0x8100, 0x0064)], &b"hello, world"[..]),
            (
                vec![(0x88A8, 0x0005), (0x8100, 0x0064)],
                &b"odd length!"[..],
            ),
        ] {
            let seg = tcp_segment(payload);
            let mut f = eth(&tags, 0x0800);
            let l3 = f.len();
            f.extend_from_slice(&ipv4(6, &seg, 0x4000));
            f.extend_from_slice(&[0xEE; 6]); // Ethernet padding after the IP datagram
            assert!(!verify(&f).unwrap());
            assert_eq!(complete(&mut f), Ok(Transport::Tcp));
            let want = ref_checksum(
                &pseudo_v4([192, 0, 2, 1], [198, 51, 100, 7], 6, seg.len()),
                &seg,
                16,
            );
            assert_eq!(field(&f, l3 + 20 + 16), want);
            assert!(verify(&f).unwrap());
        }
        // Independently computed (by hand-written Python) for the untagged, empty SYN.
        let mut f = eth(&[], 0x0800);
        f.extend_from_slice(&ipv4(6, &tcp_segment(b""), 0x4000));
        complete(&mut f).unwrap();
        assert_eq!(field(&f, 14 + 20 + 16), FIXED_SYN_CSUM);
    }

    /// See `ipv4_tcp_against_reference_and_fixed_value`.
    const FIXED_SYN_CSUM: u16 = 0x982B;

    #[test]
    fn partial_checksum_is_replaced() {
        // What the kernel leaves for offload: the folded pseudo-header sum.
        let seg = tcp_segment(b"data data data");
        let mut f = eth(&[], 0x0800);
        f.extend_from_slice(&ipv4(6, &seg, 0));
        let ps = fold(sum(&pseudo_v4(
            [192, 0, 2, 1],
            [198, 51, 100, 7],
            6,
            seg.len(),
        )));
        f[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&ps.to_be_bytes());
        let mut g = f.clone();
        complete(&mut f).unwrap();
        g[14 + 20 + 16] = 0x55;
        complete(&mut g).unwrap();
        assert_eq!(f, g, "result independent of the old field");
        assert!(verify(&f).unwrap());
    }

    #[test]
    fn ipv4_udp_and_zero_becomes_ffff() {
        let seg = udp_segment(b"\x00\x00abc");
        let mut f = eth(&[], 0x0800);
        f.extend_from_slice(&ipv4(17, &seg, 0));
        complete(&mut f).unwrap();
        let c = field(&f, 14 + 20 + 6);
        assert_eq!(
            c,
            ref_checksum(
                &pseudo_v4([192, 0, 2, 1], [198, 51, 100, 7], 17, seg.len()),
                &seg,
                6
            )
        );
        // Put the checksum's value into the first two payload octets: the sum becomes
        // 0xFFFF, so the computed checksum is 0 and must be sent as 0xFFFF.
        let p = 14 + 20 + 8;
        f[p..p + 2].copy_from_slice(&c.to_be_bytes());
        complete(&mut f).unwrap();
        assert_eq!(field(&f, 14 + 20 + 6), 0xFFFF);
        assert!(verify(&f).unwrap());
        // Checksum "none" is acceptable over IPv4.
        f[14 + 20 + 6] = 0;
        f[14 + 20 + 7] = 0;
        assert!(verify(&f).unwrap());
    }

    #[test]
    fn ipv6_tcp_udp_with_extension_headers() {
        // Hop-by-hop (8 octets) + destination options (16 octets) + TCP.
        let seg = tcp_segment(b"ipv6 payload");
        let mut rest = vec![60, 0, 1, 4, 0, 0, 0, 0]; // HBH: next=DstOpts, PadN
        rest.extend_from_slice(&[6, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // DstOpts
        rest.extend_from_slice(&seg);
        let mut f = eth(&[(0x8100, 7)], 0x86DD);
        f.extend_from_slice(&ipv6(0, &rest));
        assert_eq!(complete(&mut f), Ok(Transport::Tcp));
        let at = 18 + 40 + 24 + 16;
        assert_eq!(
            field(&f, at),
            ref_checksum(&pseudo_v6(S6, D6, 6, seg.len()), &seg, 16)
        );
        assert!(verify(&f).unwrap());

        // Atomic fragment header + UDP.
        let seg = udp_segment(b"x");
        let mut rest = vec![17, 0, 0, 0, 0, 0, 0, 1];
        rest.extend_from_slice(&seg);
        let mut f = eth(&[], 0x86DD);
        f.extend_from_slice(&ipv6(44, &rest));
        assert_eq!(complete(&mut f), Ok(Transport::Udp));
        assert_eq!(
            field(&f, 14 + 40 + 8 + 6),
            ref_checksum(&pseudo_v6(S6, D6, 17, seg.len()), &seg, 6)
        );
        // UDP checksum 0 is never valid over IPv6.
        let at = 14 + 40 + 8 + 6;
        f[at] = 0;
        f[at + 1] = 0;
        assert!(!verify(&f).unwrap());
    }

    #[test]
    fn ipv6_routing_header_uses_final_destination() {
        let seg = udp_segment(b"to the final hop");
        // Type 2 routing header, segments left 1, one address.
        let mut rest = vec![17, 2, 2, 1, 0, 0, 0, 0];
        rest.extend_from_slice(&F6);
        rest.extend_from_slice(&seg);
        let mut f = eth(&[], 0x86DD);
        f.extend_from_slice(&ipv6(43, &rest));
        complete(&mut f).unwrap();
        let at = 14 + 40 + 24 + 6;
        assert_eq!(
            field(&f, at),
            ref_checksum(&pseudo_v6(S6, F6, 17, seg.len()), &seg, 6)
        );
        // Segments left 0: the IPv6 destination is final.
        let mut g = f.clone();
        g[14 + 40 + 3] = 0;
        complete(&mut g).unwrap();
        assert_eq!(
            field(&g, at),
            ref_checksum(&pseudo_v6(S6, D6, 17, seg.len()), &seg, 6)
        );
        // Segment routing header: Segment List[0] is the final destination.
        let mut h = f.clone();
        h[14 + 40 + 2] = 4;
        complete(&mut h).unwrap();
        assert_eq!(
            field(&h, at),
            ref_checksum(&pseudo_v6(S6, F6, 17, seg.len()), &seg, 6)
        );
        // Unknown routing type with segments left: refuse rather than guess.
        let mut u = f.clone();
        u[14 + 40 + 2] = 3;
        assert_eq!(complete(&mut u), Err(CsumError::Extension));
    }

    #[test]
    fn errors() {
        let seg = tcp_segment(b"");
        let mut ok = eth(&[], 0x0800);
        ok.extend_from_slice(&ipv4(6, &seg, 0));

        assert_eq!(complete(&mut ok[..13].to_vec()), Err(CsumError::Truncated));
        assert_eq!(complete(&mut ok[..40].to_vec()), Err(CsumError::Truncated));
        let mut arp = eth(&[], 0x0806);
        arp.extend_from_slice(&[0; 28]);
        assert_eq!(complete(&mut arp), Err(CsumError::NotIp(0x0806)));
        let mut tags3 = eth(&[(0x88A8, 1), (0x8100, 2), (0x8100, 3)], 0x0800);
        tags3.extend_from_slice(&ipv4(6, &seg, 0));
        assert_eq!(complete(&mut tags3), Err(CsumError::TooManyTags));
        let mut frag = eth(&[], 0x0800);
        frag.extend_from_slice(&ipv4(6, &seg, 0x2000)); // MF
        assert_eq!(complete(&mut frag), Err(CsumError::Fragment));
        let mut frag2 = eth(&[], 0x0800);
        frag2.extend_from_slice(&ipv4(6, &seg, 0x0010)); // offset
        assert_eq!(complete(&mut frag2), Err(CsumError::Fragment));
        let mut icmp = eth(&[], 0x0800);
        icmp.extend_from_slice(&ipv4(1, &[8, 0, 0, 0, 0, 0, 0, 0], 0));
        assert_eq!(complete(&mut icmp), Err(CsumError::Unsupported(1)));
        let mut badver = ok.clone();
        badver[14] = 0x55;
        assert_eq!(complete(&mut badver), Err(CsumError::BadIpHeader));
        let mut short_tcp = eth(&[], 0x0800);
        short_tcp.extend_from_slice(&ipv4(6, &seg[..12], 0));
        assert_eq!(complete(&mut short_tcp), Err(CsumError::BadLength));
        let mut long_udp = eth(&[], 0x0800);
        let mut useg = udp_segment(b"abc");
        useg[4..6].copy_from_slice(&100u16.to_be_bytes());
        long_udp.extend_from_slice(&ipv4(17, &useg, 0));
        assert_eq!(complete(&mut long_udp), Err(CsumError::BadLength));
        let mut esp = eth(&[], 0x86DD);
        esp.extend_from_slice(&ipv6(50, &[0; 16]));
        assert_eq!(complete(&mut esp), Err(CsumError::Unsupported(50)));
        let mut v6frag = eth(&[], 0x86DD);
        let mut rest = vec![6, 0, 0, 1, 0, 0, 0, 1]; // M flag
        rest.extend_from_slice(&seg);
        v6frag.extend_from_slice(&ipv6(44, &rest));
        assert_eq!(complete(&mut v6frag), Err(CsumError::Fragment));
        // A loop of destination-options headers is cut off.
        let mut chain = Vec::new();
        for _ in 0..20 {
            chain.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        let mut long_chain = eth(&[], 0x86DD);
        long_chain.extend_from_slice(&ipv6(60, &chain));
        assert_eq!(complete(&mut long_chain), Err(CsumError::Extension));
    }

    fn any_frame() -> impl Strategy<Value = Vec<u8>> {
        // Mostly plausible prefixes with random tails, so parsing gets deep.
        let prefix = prop_oneof![
            Just(eth(&[], 0x0800)),
            Just(eth(&[], 0x86DD)),
            Just(eth(&[(0x8100, 1)], 0x0800)),
            Just(eth(&[(0x88A8, 1), (0x8100, 2)], 0x86DD)),
            Just(Vec::new()),
        ];
        (prefix, proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(mut p, t)| {
            p.extend_from_slice(&t);
            p
        })
    }

    proptest! {
        #[test]
        fn never_panics(mut f in any_frame()) {
            let v = verify(&f);
            let c = complete(&mut f);
            prop_assert_eq!(v.is_ok(), c.is_ok());
            if c.is_ok() {
                prop_assert_eq!(verify(&f), Ok(true));
            }
        }

        #[test]
        fn matches_reference(payload in proptest::collection::vec(any::<u8>(), 0..1600),
                             udp in any::<bool>(), tagged in any::<bool>()) {
            let (proto, seg, at) = if udp {
                (17, udp_segment(&payload), 6)
            } else {
                (6, tcp_segment(&payload), 16)
            };
            let tags: &[(u16, u16)] = if tagged { &[(0x8100, 3)] } else { &[] };
            let mut f = eth(tags, 0x0800);
            let l4 = f.len() + 20;
            f.extend_from_slice(&ipv4(proto, &seg, 0));
            complete(&mut f).unwrap();
            let mut want = ref_checksum(
                &pseudo_v4([192, 0, 2, 1], [198, 51, 100, 7], proto, seg.len()), &seg, at);
            if udp && want == 0 {
                want = 0xFFFF;
            }
            prop_assert_eq!(field(&f, l4 + at), want);

            let mut g = eth(tags, 0x86DD);
            let l4 = g.len() + 40;
            g.extend_from_slice(&ipv6(proto, &seg));
            complete(&mut g).unwrap();
            let mut want = ref_checksum(&pseudo_v6(S6, D6, proto, seg.len()), &seg, at);
            if udp && want == 0 {
                want = 0xFFFF;
            }
            prop_assert_eq!(field(&g, l4 + at), want);
        }
    }
}

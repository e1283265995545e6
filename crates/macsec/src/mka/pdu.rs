//! The MKPDU codec (802.1X-2010 clause 11.11; layout in the notes, section 10.2).
//!
//! ```text
//! off  len  field
//!   0    6  DA (01-80-C2-00-00-03 by default)
//!   6    6  SA
//!  12    2  EtherType 88-8E
//!  14    1  EAPOL Protocol Version (3)
//!  15    1  EAPOL Packet Type (5 = EAPOL-MKA)
//!  16    2  EAPOL Packet Body Length (from offset 18 to the end of the ICV)
//!  18    4  Basic Parameter Set header: MKA Version | Key Server Priority |
//!           KS(1) MD(1) Capability(2) Length[11:8] | Length[7:0]   (Length = 28 + CKN)
//!  22    8  Actor SCI
//!  30   12  Actor MI
//!  42    4  Actor MN
//!  46    4  Algorithm Agility 00-80-C2-01
//!  50    n  CAK Name (1..32), zero padding to a multiple of 4
//!   …       further parameter sets: Type | octet 2 | 4 bits + Length[11:8] | Length[7:0],
//!           body, zero padding to a multiple of 4
//!  end-16 16 ICV = AES-CMAC(ICK, octets 0 .. end-17), optionally preceded by FF 00 00 10
//! ```
//!
//! Decoding is bounded by the EAPOL Packet Body Length, never by the frame length, so
//! Ethernet padding after the body is ignored (as hostap `kay_l2_receive` does). Every
//! malformed MKPDU gives a [`DecodeError`]; nothing here panics on any input.
//!
//! Duplicated parameter sets: the first one counts, later ones of the same type are
//! skipped, as in hostap `ieee802_1x_kay_decode_mkpdu`. Unknown set types are skipped.
//! Parsing stops at an ICV Indicator.

use super::crypto::{mkpdu_icv, WrappedKey};
use super::types::{Capability, Ckn, ConfidentialityOffset, Ki, Mi};
use crate::crypto::keys::SecretKey;
use crate::crypto::suite::CipherSuite;
use crate::wire::sci::{MacAddr, Sci};
use bytes::{Buf, BufMut};

/// The EAPOL Protocol Version MKA needs and sends (802.1X-2010 11.3.1). hostap ignores
/// MKPDUs with a lower version; higher versions are accepted.
pub const EAPOL_VERSION: u8 = 3;
/// EAPOL Packet Type of an MKPDU (802.1X-2010 Table 11-3).
pub const EAPOL_TYPE_MKA: u8 = 5;
/// The MKA Version Identifier this implementation sends (802.1X-2010: 1). Higher
/// values are accepted on receive.
pub const MKA_VERSION: u8 = 1;
/// The only MKA Algorithm Agility value defined (802.1X-2010 Table 9-1).
pub const ALGORITHM_AGILITY: [u8; 4] = [0x00, 0x80, 0xC2, 0x01];
/// The MKPDU ICV length for the defined algorithm agility (802.1X-2010 9.4.1).
pub const ICV_LEN: usize = 16;
/// Ethernet header (DA, SA, EtherType) plus EAPOL header.
pub const HEADER_LEN: usize = 14 + 4;
/// The smallest EAPOL body of an MKPDU (802.1X-2010 11.11.2).
pub const MIN_BODY_LEN: usize = 32;
/// The Basic Parameter Set body length without the CAK Name.
const BASIC_FIXED: usize = 28;
/// The largest body length the 12-bit Parameter Set Body Length can express.
const MAX_SET_BODY: usize = 0x0FFF;

/// Parameter set types (802.1X-2010 Table 11-7; 802.1X-2020 adds XPN).
pub mod set_type {
    /// Live Peer List.
    pub const LIVE_PEER_LIST: u8 = 1;
    /// Potential Peer List.
    pub const POTENTIAL_PEER_LIST: u8 = 2;
    /// MACsec SAK Use.
    pub const SAK_USE: u8 = 3;
    /// Distributed SAK.
    pub const DISTRIBUTED_SAK: u8 = 4;
    /// Distributed CAK.
    pub const DISTRIBUTED_CAK: u8 = 5;
    /// Key Management Domain.
    pub const KMD: u8 = 6;
    /// Announcement.
    pub const ANNOUNCEMENT: u8 = 7;
    /// XPN (802.1X-2020).
    pub const XPN: u8 = 8;
    /// ICV Indicator.
    pub const ICV_INDICATOR: u8 = 255;
}

/// Why an MKPDU could not be decoded. Small and `Copy`; carries nothing from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the Ethernet and EAPOL headers (18 octets).
    #[error("frame shorter than the Ethernet and EAPOL headers")]
    FrameTooShort,
    /// EAPOL Protocol Version below 3.
    #[error("EAPOL protocol version below 3 cannot carry MKA")]
    EapolVersion,
    /// EAPOL Packet Type is not 5 (EAPOL-MKA).
    #[error("EAPOL packet type is not EAPOL-MKA")]
    NotMka,
    /// The frame ends before the EAPOL Packet Body Length says.
    #[error("frame shorter than the EAPOL packet body length")]
    Truncated,
    /// The EAPOL body is shorter than 32 octets or not a multiple of 4.
    #[error("MKPDU body must be at least 32 octets and a multiple of 4")]
    BodyLength,
    /// The Basic Parameter Set length is below 28, its CKN is not 1..32 octets, or it
    /// does not fit before the ICV.
    #[error("bad Basic Parameter Set length")]
    BasicLength,
    /// A parameter set runs past the ICV.
    #[error("parameter set runs past the ICV")]
    SetOverrun,
    /// A peer list whose body is not a multiple of 16 octets.
    #[error("peer list length is not a multiple of 16")]
    PeerListLength,
    /// A MACsec SAK Use body that is neither 0 nor at least 40 octets.
    #[error("SAK Use body must be 0 or at least 40 octets")]
    SakUseLength,
    /// A Distributed SAK body that is not 0, 28, 36 or 52 octets.
    #[error("Distributed SAK body must be 0, 28, 36 or 52 octets")]
    DistributedSakLength,
    /// A Distributed CAK body that is not 24 octets of wrapped key and a 1..32-octet CKN.
    #[error("Distributed CAK body must be a 24-octet wrapped key and a 1..32 octet CKN")]
    DistributedCakLength,
    /// An XPN parameter set shorter than 8 octets.
    #[error("XPN parameter set body must be at least 8 octets")]
    XpnLength,
    /// An ICV Indicator announcing an ICV length other than 16, or not placed just
    /// before the last 16 octets.
    #[error("ICV indicator must announce a 16-octet ICV that ends the body")]
    IcvIndicator,
}

/// The Basic Parameter Set (802.1X-2010 11.11.1, Figure 11-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicParams {
    /// MKA Version Identifier (1 = 802.1X-2010, 2 = 802.1Xbx-2014, 3 = 802.1X-2020).
    pub mka_version: u8,
    /// Key Server Priority (lower wins; hostap's default is 255).
    pub key_server_priority: u8,
    /// Key Server flag: set unless the sender has decided someone else is key server.
    pub key_server: bool,
    /// MACsec Desired.
    pub macsec_desired: bool,
    /// MACsec Capability.
    pub macsec_capability: Capability,
    /// Actor SCI.
    pub sci: Sci,
    /// Actor Member Identifier.
    pub mi: Mi,
    /// Actor Message Number.
    pub mn: u32,
    /// Algorithm Agility (00-80-C2-01).
    pub algorithm_agility: [u8; 4],
    /// CAK Name.
    pub ckn: Ckn,
}

/// One (MI, MN) entry of a peer list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerEntry {
    /// The peer's Member Identifier.
    pub mi: Mi,
    /// The latest Message Number the sender has seen from that peer.
    pub mn: u32,
}

/// A Live or Potential Peer List parameter set (802.1X-2010 11.11.1, Figure 11-9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerList {
    /// Octet 2 of the set header. 0 in MKA versions 1 and 2; in version 3 a key server
    /// that distributes an XPN SAK puts its SSCI here (notes 10.2).
    pub octet2: u8,
    /// The peers.
    pub peers: Vec<PeerEntry>,
}

/// The key fields of a MACsec SAK Use parameter set (present when its body is 40+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SakUseKeys {
    /// Latest Key: key server MI and KN.
    pub latest_ki: Ki,
    /// Latest Key Lowest Acceptable PN (low 32 bits with XPN).
    pub latest_lpn: u32,
    /// Old Key: key server MI and KN.
    pub old_ki: Ki,
    /// Old Key Lowest Acceptable PN (low 32 bits with XPN).
    pub old_lpn: u32,
}

/// The MACsec SAK Use parameter set (802.1X-2010 11.11.1, Figure 11-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SakUse {
    /// Latest Key AN.
    pub latest_an: u8,
    /// Latest Key tx: the sender transmits with the latest key.
    pub latest_tx: bool,
    /// Latest Key rx: the sender receives with the latest key.
    pub latest_rx: bool,
    /// Old Key AN.
    pub old_an: u8,
    /// Old Key tx.
    pub old_tx: bool,
    /// Old Key rx.
    pub old_rx: bool,
    /// Plain Tx: the sender transmits unprotected frames.
    pub plain_tx: bool,
    /// Plain Rx: the sender accepts unprotected frames.
    pub plain_rx: bool,
    /// Delay Protect.
    pub delay_protect: bool,
    /// The key fields; `None` for an empty (0-octet) body, which means MACsec is not
    /// in use.
    pub keys: Option<SakUseKeys>,
}

/// The key part of a non-empty Distributed SAK parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistributedKey {
    /// Key Number.
    pub kn: u32,
    /// MACsec Cipher Suite identifier, absent in the 28-octet form (GCM-AES-128).
    pub cipher_suite_id: Option<[u8; 8]>,
    /// The SAK wrapped with the KEK.
    pub wrapped: WrappedKey,
}

impl DistributedKey {
    /// Builds the key part for `suite`, using the 28-octet form (no identifier) for
    /// GCM-AES-128. That form is the only one wpa_supplicant accepts for GCM-AES-128:
    /// its table knows only the deprecated identifier 00-80-02-00-01-00-00-01 (notes
    /// 10.2), so an explicit correct identifier would make it discard the MKPDU.
    pub fn new(kn: u32, suite: CipherSuite, wrapped: WrappedKey) -> DistributedKey {
        DistributedKey {
            kn,
            cipher_suite_id: match suite {
                CipherSuite::GcmAes128 => None,
                s => Some(s.id()),
            },
            wrapped,
        }
    }

    /// The cipher suite: GCM-AES-128 in the 28-octet form, else looked up by
    /// identifier (both GCM-AES-128 identifiers are accepted).
    pub fn cipher_suite(&self) -> Option<CipherSuite> {
        match self.cipher_suite_id {
            None => Some(CipherSuite::GcmAes128),
            Some(id) => CipherSuite::from_id(&id),
        }
    }
}

/// The Distributed SAK parameter set (802.1X-2010 11.11.1, Figures 11-11 and 11-12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistributedSak {
    /// Distributed AN.
    pub an: u8,
    /// Confidentiality Offset code.
    pub confidentiality_offset: ConfidentialityOffset,
    /// The key; `None` for the empty body, which tells members not to use MACsec.
    pub key: Option<DistributedKey>,
}

/// The Distributed CAK parameter set (802.1X-2010 11.11.1, Figure 11-13). Decoded
/// only; a pre-shared-CAK participant ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistributedCak {
    /// The CAK wrapped with the KEK.
    pub wrapped: WrappedKey,
    /// The new CAK's name.
    pub ckn: Ckn,
}

/// The XPN parameter set (802.1X-2020, type 8): the upper halves of the SAK Use LPNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XpnParams {
    /// MKA Suspension Time (octet 2).
    pub suspension_time: u8,
    /// Latest Key Lowest Acceptable PN, upper 32 bits.
    pub latest_lpn_high: u32,
    /// Old Key Lowest Acceptable PN, upper 32 bits.
    pub old_lpn_high: u32,
}

/// A decoded (or to-be-encoded) MKPDU frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mkpdu {
    /// Destination MAC address.
    pub dst: MacAddr,
    /// Source MAC address.
    pub src: MacAddr,
    /// EtherType (0x888E unless configured otherwise).
    pub ethertype: u16,
    /// EAPOL Protocol Version (3 when sending).
    pub eapol_version: u8,
    /// Basic Parameter Set.
    pub basic: BasicParams,
    /// Live Peer List (absent when empty, as hostap sends it).
    pub live_peers: Option<PeerList>,
    /// Potential Peer List.
    pub potential_peers: Option<PeerList>,
    /// MACsec SAK Use.
    pub sak_use: Option<SakUse>,
    /// Distributed SAK.
    pub distributed_sak: Option<DistributedSak>,
    /// Distributed CAK.
    pub distributed_cak: Option<DistributedCak>,
    /// Key Management Domain (raw body).
    pub kmd: Option<Vec<u8>>,
    /// Announcement (raw body: TLVs, see [`AnnouncementTlvs`]).
    pub announcement: Option<Vec<u8>>,
    /// XPN parameter set.
    pub xpn: Option<XpnParams>,
    /// Whether an ICV Indicator precedes the ICV.
    pub icv_indicator: bool,
    /// Unknown or duplicated parameter sets skipped while decoding (not encoded).
    pub skipped_sets: u16,
    /// The ICV as received (ignored by [`Mkpdu::encode`], which computes it).
    pub icv: [u8; ICV_LEN],
}

/// A decoded MKPDU and the octets its ICV covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The decoded MKPDU.
    pub pdu: Mkpdu,
    /// The frame from the DA up to (not including) the ICV: the ICV input.
    pub icv_covered: &'a [u8],
}

/// Error from encoding an MKPDU whose contents do not fit the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A parameter set body longer than 4095 octets, or an EAPOL body longer than
    /// 65535 octets.
    #[error("parameter set or MKPDU too long")]
    TooLong,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The 12-bit Parameter Set Body Length of a set header (802.1X-2010 Figure 11-8).
fn set_len(hdr: &[u8; 4]) -> usize {
    (((hdr[2] & 0x0F) as usize) << 8) | hdr[3] as usize
}

/// Non-panicking reads from the front of a slice: a read past the end is `e`, the error
/// of the parameter set being read (so the reads need no length reasoning to be safe).
fn u8_(b: &mut &[u8], e: DecodeError) -> Result<u8, DecodeError> {
    b.try_get_u8().map_err(|_| e)
}

fn u16_(b: &mut &[u8], e: DecodeError) -> Result<u16, DecodeError> {
    b.try_get_u16().map_err(|_| e)
}

fn u32_(b: &mut &[u8], e: DecodeError) -> Result<u32, DecodeError> {
    b.try_get_u32().map_err(|_| e)
}

fn array<const N: usize>(b: &mut &[u8], e: DecodeError) -> Result<[u8; N], DecodeError> {
    let mut out = [0u8; N];
    b.try_copy_to_slice(&mut out).map_err(|_| e)?;
    Ok(out)
}

fn get_ki(b: &mut &[u8], e: DecodeError) -> Result<Ki, DecodeError> {
    Ok(Ki {
        mi: Mi(array(b, e)?),
        kn: u32_(b, e)?,
    })
}

/// Decodes an MKPDU from a whole Ethernet frame (DA, SA, EtherType, EAPOL header,
/// body; Ethernet padding after the body allowed). Does not check the DA, EtherType,
/// CKN, Algorithm Agility or the ICV: the participant does, in hostap's order.
pub fn decode_frame(frame: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    if frame.len() < HEADER_LEN {
        return Err(DecodeError::FrameTooShort);
    }
    let h = &mut &frame[..HEADER_LEN];
    let short = DecodeError::FrameTooShort;
    let dst: [u8; 6] = array(h, short)?;
    let src: [u8; 6] = array(h, short)?;
    let ethertype = u16_(h, short)?;
    let eapol_version = u8_(h, short)?;
    let eapol_type = u8_(h, short)?;
    let body_len = u16_(h, short)? as usize;
    if eapol_version < EAPOL_VERSION {
        return Err(DecodeError::EapolVersion);
    }
    if eapol_type != EAPOL_TYPE_MKA {
        return Err(DecodeError::NotMka);
    }
    if frame.len() < HEADER_LEN + body_len {
        return Err(DecodeError::Truncated);
    }
    if body_len < MIN_BODY_LEN || !body_len.is_multiple_of(4) {
        return Err(DecodeError::BodyLength);
    }
    let body = frame
        .get(HEADER_LEN..HEADER_LEN + body_len)
        .ok_or(DecodeError::Truncated)?;
    let (sets, icv_bytes) = body
        .split_at_checked(body_len - ICV_LEN)
        .ok_or(DecodeError::BodyLength)?;
    let icv: [u8; ICV_LEN] = array(&mut &icv_bytes[..], DecodeError::BodyLength)?;

    // Basic Parameter Set: always first, no type octet (802.1X-2010 11.11.1).
    let basic_len = set_len(sets.first_chunk().ok_or(DecodeError::BasicLength)?);
    if basic_len < BASIC_FIXED
        || basic_len - BASIC_FIXED > Ckn::MAX_LEN
        || basic_len == BASIC_FIXED
        || 4 + align4(basic_len) > sets.len()
    {
        return Err(DecodeError::BasicLength);
    }
    let b = &mut sets.get(..4 + basic_len).ok_or(DecodeError::BasicLength)?;
    let bad = DecodeError::BasicLength;
    let mka_version = u8_(b, bad)?;
    let key_server_priority = u8_(b, bad)?;
    let flags = u8_(b, bad)?;
    let _length_octet = u8_(b, bad)?;
    let sci: [u8; 8] = array(b, bad)?;
    let mi = Mi(array(b, bad)?);
    let mn = u32_(b, bad)?;
    let algorithm_agility: [u8; 4] = array(b, bad)?;
    let ckn = Ckn::new(b).map_err(|_| bad)?;
    let basic = BasicParams {
        mka_version,
        key_server_priority,
        key_server: flags & 0x80 != 0,
        macsec_desired: flags & 0x40 != 0,
        macsec_capability: Capability::from_code(flags >> 4),
        sci: Sci(sci),
        mi,
        mn,
        algorithm_agility,
        ckn,
    };

    let mut pdu = Mkpdu {
        dst: MacAddr(dst),
        src: MacAddr(src),
        ethertype,
        eapol_version,
        basic,
        live_peers: None,
        potential_peers: None,
        sak_use: None,
        distributed_sak: None,
        distributed_cak: None,
        kmd: None,
        announcement: None,
        xpn: None,
        icv_indicator: false,
        skipped_sets: 0,
        icv,
    };

    let mut rest = sets
        .get(4 + align4(basic_len)..)
        .ok_or(DecodeError::BasicLength)?;
    let mut seen = [false; 256];
    while !rest.is_empty() {
        let (&hdr, after) = rest
            .split_first_chunk::<4>()
            .ok_or(DecodeError::SetOverrun)?;
        let ty = hdr[0];
        let len = set_len(&hdr);
        if ty == set_type::ICV_INDICATOR {
            // The ICV follows the indicator and ends the body (802.1X-2010 11.11.1);
            // hostap stops parsing here.
            if len != ICV_LEN || !after.is_empty() {
                return Err(DecodeError::IcvIndicator);
            }
            pdu.icv_indicator = true;
            break;
        }
        let set_body = after.get(..len).ok_or(DecodeError::SetOverrun)?;
        rest = after.get(align4(len)..).ok_or(DecodeError::SetOverrun)?;
        if seen[ty as usize] {
            pdu.skipped_sets = pdu.skipped_sets.saturating_add(1);
            continue;
        }
        seen[ty as usize] = true;
        match ty {
            set_type::LIVE_PEER_LIST => pdu.live_peers = Some(decode_peers(hdr, set_body)?),
            set_type::POTENTIAL_PEER_LIST => {
                pdu.potential_peers = Some(decode_peers(hdr, set_body)?)
            }
            set_type::SAK_USE => pdu.sak_use = Some(decode_sak_use(hdr, set_body)?),
            set_type::DISTRIBUTED_SAK => {
                pdu.distributed_sak = Some(decode_dist_sak(hdr, set_body)?)
            }
            set_type::DISTRIBUTED_CAK => {
                if set_body.len() < 25 || set_body.len() > 24 + Ckn::MAX_LEN {
                    return Err(DecodeError::DistributedCakLength);
                }
                pdu.distributed_cak = Some(DistributedCak {
                    wrapped: WrappedKey::from_slice(&set_body[..24])
                        .ok_or(DecodeError::DistributedCakLength)?,
                    ckn: Ckn::new(set_body.get(24..).unwrap_or_default())
                        .map_err(|_| DecodeError::DistributedCakLength)?,
                });
            }
            set_type::KMD => pdu.kmd = Some(set_body.to_vec()),
            set_type::ANNOUNCEMENT => pdu.announcement = Some(set_body.to_vec()),
            set_type::XPN => {
                if set_body.len() < 8 {
                    return Err(DecodeError::XpnLength);
                }
                let x = &mut &set_body[..];
                pdu.xpn = Some(XpnParams {
                    suspension_time: hdr[1],
                    latest_lpn_high: u32_(x, DecodeError::XpnLength)?,
                    old_lpn_high: u32_(x, DecodeError::XpnLength)?,
                });
            }
            _ => pdu.skipped_sets = pdu.skipped_sets.saturating_add(1),
        }
    }

    Ok(Decoded {
        pdu,
        icv_covered: &frame[..HEADER_LEN + body_len - ICV_LEN],
    })
}

fn decode_peers(hdr: [u8; 4], mut body: &[u8]) -> Result<PeerList, DecodeError> {
    if !body.len().is_multiple_of(16) {
        return Err(DecodeError::PeerListLength);
    }
    let mut peers = Vec::with_capacity(body.len() / 16);
    while body.has_remaining() {
        let bad = DecodeError::PeerListLength;
        peers.push(PeerEntry {
            mi: Mi(array(&mut body, bad)?),
            mn: u32_(&mut body, bad)?,
        });
    }
    Ok(PeerList {
        octet2: hdr[1],
        peers,
    })
}

fn decode_sak_use(hdr: [u8; 4], mut body: &[u8]) -> Result<SakUse, DecodeError> {
    // 0 or at least 40; octets after the first 40 are ignored (hostap).
    if !body.is_empty() && body.len() < 40 {
        return Err(DecodeError::SakUseLength);
    }
    let (a, b) = (hdr[1], hdr[2]);
    let keys = if body.is_empty() {
        None
    } else {
        let bad = DecodeError::SakUseLength;
        let latest_ki = get_ki(&mut body, bad)?;
        let latest_lpn = u32_(&mut body, bad)?;
        let old_ki = get_ki(&mut body, bad)?;
        let old_lpn = u32_(&mut body, bad)?;
        Some(SakUseKeys {
            latest_ki,
            latest_lpn,
            old_ki,
            old_lpn,
        })
    };
    Ok(SakUse {
        latest_an: a >> 6,
        latest_tx: a & 0x20 != 0,
        latest_rx: a & 0x10 != 0,
        old_an: (a >> 2) & 3,
        old_tx: a & 0x02 != 0,
        old_rx: a & 0x01 != 0,
        plain_tx: b & 0x80 != 0,
        plain_rx: b & 0x40 != 0,
        delay_protect: b & 0x10 != 0,
        keys,
    })
}

fn decode_dist_sak(hdr: [u8; 4], mut body: &[u8]) -> Result<DistributedSak, DecodeError> {
    let an = hdr[1] >> 6;
    let confidentiality_offset = ConfidentialityOffset::from_code(hdr[1] >> 4);
    let key = match body.len() {
        0 => None,
        28 => {
            let kn = u32_(&mut body, DecodeError::DistributedSakLength)?;
            Some(DistributedKey {
                kn,
                cipher_suite_id: None,
                wrapped: WrappedKey::from_slice(body).ok_or(DecodeError::DistributedSakLength)?,
            })
        }
        36 | 52 => {
            let kn = u32_(&mut body, DecodeError::DistributedSakLength)?;
            let id: [u8; 8] = array(&mut body, DecodeError::DistributedSakLength)?;
            Some(DistributedKey {
                kn,
                cipher_suite_id: Some(id),
                wrapped: WrappedKey::from_slice(body).ok_or(DecodeError::DistributedSakLength)?,
            })
        }
        _ => return Err(DecodeError::DistributedSakLength),
    };
    Ok(DistributedSak {
        an,
        confidentiality_offset,
        key,
    })
}

/// Writes one parameter set: header, body, zero padding to a multiple of 4.
fn put_set(
    out: &mut Vec<u8>,
    ty: u8,
    octet2: u8,
    high4: u8,
    body: &[u8],
) -> Result<(), EncodeError> {
    if body.len() > MAX_SET_BODY {
        return Err(EncodeError::TooLong);
    }
    out.put_u8(ty);
    out.put_u8(octet2);
    out.put_u8((high4 << 4) | ((body.len() >> 8) as u8 & 0x0F));
    out.put_u8(body.len() as u8);
    out.put_slice(body);
    out.put_bytes(0, align4(body.len()) - body.len());
    Ok(())
}

fn peers_body(list: &PeerList) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 * list.peers.len());
    for p in &list.peers {
        b.put_slice(&p.mi.0);
        b.put_u32(p.mn);
    }
    b
}

impl Mkpdu {
    /// Encodes the frame and appends the ICV computed with `ick` (802.1X-2010 11.11.3).
    /// Sets go out in hostap's order, which puts SAK Use before Distributed SAK as
    /// 802.1X-2010 11.11.3 requires: Basic, Live Peer List, Potential Peer List,
    /// SAK Use, Distributed SAK, Distributed CAK, KMD, Announcement, XPN, ICV
    /// Indicator, ICV.
    pub fn encode(&self, ick: &SecretKey) -> Result<Vec<u8>, EncodeError> {
        let mut out = self.encode_without_icv()?;
        let icv = mkpdu_icv(ick, &out);
        out.put_slice(&icv);
        Ok(out)
    }

    /// Encodes the frame with the stored [`Mkpdu::icv`] instead of computing one (for
    /// tests and round trips).
    pub fn encode_with_stored_icv(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = self.encode_without_icv()?;
        out.put_slice(&self.icv);
        Ok(out)
    }

    fn encode_without_icv(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(128);
        out.put_slice(&self.dst.0);
        out.put_slice(&self.src.0);
        out.put_u16(self.ethertype);
        out.put_u8(self.eapol_version);
        out.put_u8(EAPOL_TYPE_MKA);
        out.put_u16(0); // body length, patched below

        let bp = &self.basic;
        let mut basic = Vec::with_capacity(BASIC_FIXED + Ckn::MAX_LEN);
        basic.put_slice(&bp.sci.0);
        basic.put_slice(&bp.mi.0);
        basic.put_u32(bp.mn);
        basic.put_slice(&bp.algorithm_agility);
        basic.put_slice(bp.ckn.as_bytes());
        let flags = (u8::from(bp.key_server) << 3)
            | (u8::from(bp.macsec_desired) << 2)
            | bp.macsec_capability.code();
        put_set(
            &mut out,
            bp.mka_version,
            bp.key_server_priority,
            flags,
            &basic,
        )?;

        if let Some(l) = &self.live_peers {
            put_set(
                &mut out,
                set_type::LIVE_PEER_LIST,
                l.octet2,
                0,
                &peers_body(l),
            )?;
        }
        if let Some(l) = &self.potential_peers {
            put_set(
                &mut out,
                set_type::POTENTIAL_PEER_LIST,
                l.octet2,
                0,
                &peers_body(l),
            )?;
        }
        if let Some(s) = &self.sak_use {
            let o2 = (s.latest_an & 3) << 6
                | u8::from(s.latest_tx) << 5
                | u8::from(s.latest_rx) << 4
                | (s.old_an & 3) << 2
                | u8::from(s.old_tx) << 1
                | u8::from(s.old_rx);
            let hi =
                u8::from(s.plain_tx) << 3 | u8::from(s.plain_rx) << 2 | u8::from(s.delay_protect);
            let mut body = Vec::with_capacity(40);
            if let Some(k) = &s.keys {
                body.put_slice(&k.latest_ki.mi.0);
                body.put_u32(k.latest_ki.kn);
                body.put_u32(k.latest_lpn);
                body.put_slice(&k.old_ki.mi.0);
                body.put_u32(k.old_ki.kn);
                body.put_u32(k.old_lpn);
            }
            put_set(&mut out, set_type::SAK_USE, o2, hi, &body)?;
        }
        if let Some(d) = &self.distributed_sak {
            let o2 = (d.an & 3) << 6 | d.confidentiality_offset.code() << 4;
            let mut body = Vec::with_capacity(52);
            if let Some(k) = &d.key {
                body.put_u32(k.kn);
                if let Some(id) = &k.cipher_suite_id {
                    body.put_slice(id);
                }
                body.put_slice(k.wrapped.as_bytes());
            }
            put_set(&mut out, set_type::DISTRIBUTED_SAK, o2, 0, &body)?;
        }
        if let Some(c) = &self.distributed_cak {
            let mut body = Vec::with_capacity(56);
            body.put_slice(c.wrapped.as_bytes());
            body.put_slice(c.ckn.as_bytes());
            put_set(&mut out, set_type::DISTRIBUTED_CAK, 0, 0, &body)?;
        }
        if let Some(k) = &self.kmd {
            put_set(&mut out, set_type::KMD, 0, 0, k)?;
        }
        if let Some(a) = &self.announcement {
            put_set(&mut out, set_type::ANNOUNCEMENT, 0, 0, a)?;
        }
        if let Some(x) = &self.xpn {
            let mut body = Vec::with_capacity(8);
            body.put_u32(x.latest_lpn_high);
            body.put_u32(x.old_lpn_high);
            put_set(&mut out, set_type::XPN, x.suspension_time, 0, &body)?;
        }
        if self.icv_indicator {
            out.put_slice(&[set_type::ICV_INDICATOR, 0, 0, ICV_LEN as u8]);
        }

        let body_len = out.len() - HEADER_LEN + ICV_LEN;
        if body_len > u16::MAX as usize {
            return Err(EncodeError::TooLong);
        }
        out[16..18].copy_from_slice(&(body_len as u16).to_be_bytes());
        Ok(out)
    }
}

/// Iterator over the TLVs of an Announcement parameter set body (802.1X-2010 11.12):
/// each TLV has a 7-bit type and a 9-bit length. Yields `(type, value)`; stops at the
/// first TLV that runs past the end.
#[derive(Debug, Clone)]
pub struct AnnouncementTlvs<'a> {
    rest: &'a [u8],
}

impl<'a> AnnouncementTlvs<'a> {
    /// Iterates over `body`, the raw Announcement parameter set body.
    pub fn new(body: &'a [u8]) -> Self {
        AnnouncementTlvs { rest: body }
    }
}

impl<'a> Iterator for AnnouncementTlvs<'a> {
    type Item = (u8, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let (&[t, l], after) = self.rest.split_first_chunk::<2>()?;
        let len = (((t & 1) as usize) << 8) | l as usize;
        let Some((v, rest)) = after.split_at_checked(len) else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        Some((t >> 1, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // A frame built here (not copied from any capture): Basic with an 8-octet CKN, a
    // Live Peer List, SAK Use, a 28-octet Distributed SAK, ICV indicator and ICV.
    fn sample() -> Mkpdu {
        Mkpdu {
            dst: MacAddr::PAE_GROUP,
            src: MacAddr([2, 0, 0, 0, 0, 1]),
            ethertype: crate::wire::ethernet::ethertype::EAPOL,
            eapol_version: EAPOL_VERSION,
            basic: BasicParams {
                mka_version: 1,
                key_server_priority: 0x10,
                key_server: true,
                macsec_desired: true,
                macsec_capability: Capability::Confidentiality,
                sci: Sci([2, 0, 0, 0, 0, 1, 0, 1]),
                mi: Mi([7; 12]),
                mn: 5,
                algorithm_agility: ALGORITHM_AGILITY,
                ckn: Ckn::new(&[0xAB; 8]).unwrap(),
            },
            live_peers: Some(PeerList {
                octet2: 0,
                peers: vec![PeerEntry {
                    mi: Mi([9; 12]),
                    mn: 3,
                }],
            }),
            potential_peers: None,
            sak_use: Some(SakUse {
                latest_an: 1,
                latest_tx: true,
                latest_rx: true,
                old_an: 0,
                old_tx: false,
                old_rx: true,
                keys: Some(SakUseKeys {
                    latest_ki: Ki {
                        mi: Mi([7; 12]),
                        kn: 2,
                    },
                    latest_lpn: 1,
                    old_ki: Ki {
                        mi: Mi([7; 12]),
                        kn: 1,
                    },
                    old_lpn: 77,
                }),
                ..SakUse::default()
            }),
            distributed_sak: Some(DistributedSak {
                an: 1,
                confidentiality_offset: ConfidentialityOffset::Offset0,
                key: Some(DistributedKey::new(
                    2,
                    CipherSuite::GcmAes128,
                    WrappedKey::from_slice(&[0x5A; 24]).unwrap(),
                )),
            }),
            distributed_cak: None,
            kmd: None,
            announcement: None,
            xpn: None,
            icv_indicator: true,
            skipped_sets: 0,
            icv: [0; 16],
        }
    }

    #[test]
    fn layout_offsets() {
        let ick = SecretKey::from_slice(&[0x11; 16]).unwrap();
        let f = sample().encode(&ick).unwrap();
        assert_eq!(&f[..6], &MacAddr::PAE_GROUP.0);
        assert_eq!(&f[12..16], &[0x88, 0x8E, 3, 5]);
        let body_len = u16::from_be_bytes([f[16], f[17]]) as usize;
        assert_eq!(f.len(), 18 + body_len);
        // Basic header: version, priority, KS|MD|cap=2, length 36.
        assert_eq!(&f[18..22], &[1, 0x10, 0xE0, 36]);
        assert_eq!(&f[46..50], &ALGORITHM_AGILITY);
        // Live peer list right after the 8-octet CKN (no padding needed).
        assert_eq!(&f[58..62], &[1, 0, 0, 16]);
        // SAK Use: LAN 1, LTx, LRx, OAN 0, ORx.
        assert_eq!(&f[78..82], &[3, 0x40 | 0x20 | 0x10 | 0x01, 0, 40]);
        // Distributed SAK: AN 1, offset code 1, 28-octet form.
        assert_eq!(&f[122..126], &[4, 0x50, 0, 28]);
        assert_eq!(&f[f.len() - 20..f.len() - 16], &[0xFF, 0, 0, 16]);
        let d = decode_frame(&f).unwrap();
        assert!(crate::mka::crypto::verify_mkpdu_icv(
            &ick,
            d.icv_covered,
            &d.pdu.icv
        ));
        let mut want = sample();
        want.icv = d.pdu.icv;
        assert_eq!(d.pdu, want);
    }

    #[test]
    fn padding_after_body_is_ignored_and_icv_still_covers_only_the_body() {
        let ick = SecretKey::from_slice(&[0x22; 32]).unwrap();
        let mut f = sample().encode(&ick).unwrap();
        let n = f.len();
        f.extend_from_slice(&[0xEE; 40]);
        let d = decode_frame(&f).unwrap();
        assert_eq!(d.icv_covered.len(), n - 16);
        assert!(crate::mka::crypto::verify_mkpdu_icv(
            &ick,
            d.icv_covered,
            &d.pdu.icv
        ));
    }

    #[test]
    fn header_errors() {
        let ick = SecretKey::from_slice(&[0x11; 16]).unwrap();
        let f = sample().encode(&ick).unwrap();
        assert_eq!(decode_frame(&f[..17]), Err(DecodeError::FrameTooShort));
        let mut g = f.clone();
        g[14] = 2;
        assert_eq!(decode_frame(&g), Err(DecodeError::EapolVersion));
        g[14] = 4; // higher versions are fine
        assert!(decode_frame(&g).is_ok());
        g[15] = 6;
        assert_eq!(decode_frame(&g), Err(DecodeError::NotMka));
        assert_eq!(decode_frame(&f[..f.len() - 1]), Err(DecodeError::Truncated));
        let mut g = f.clone();
        g[17] -= 2;
        assert_eq!(decode_frame(&g), Err(DecodeError::BodyLength));
        // Basic set with no CKN.
        let mut g = f.clone();
        g[21] = 28;
        assert_eq!(decode_frame(&g), Err(DecodeError::BasicLength));
        // Basic set claiming a 33-octet CKN.
        g[21] = 61;
        assert_eq!(decode_frame(&g), Err(DecodeError::BasicLength));
    }

    #[test]
    fn set_errors() {
        let ick = SecretKey::from_slice(&[0x11; 16]).unwrap();
        let f = sample().encode(&ick).unwrap();
        // Peer list body of 12.
        let mut g = f.clone();
        g[61] = 12;
        assert!(matches!(
            decode_frame(&g),
            Err(DecodeError::PeerListLength) | Err(DecodeError::SetOverrun)
        ));
        // SAK Use body 20.
        let mut g = f.clone();
        g[81] = 20;
        assert_eq!(decode_frame(&g), Err(DecodeError::SakUseLength));
        // Distributed SAK body 32.
        let mut g = f.clone();
        g[125] = 32;
        assert_eq!(decode_frame(&g), Err(DecodeError::DistributedSakLength));
        // Set running past the ICV.
        let mut g = f.clone();
        g[124] = 0x0F;
        assert_eq!(decode_frame(&g), Err(DecodeError::SetOverrun));
        // ICV indicator with a wrong length.
        let mut g = f.clone();
        let n = g.len();
        g[n - 17] = 32;
        assert_eq!(decode_frame(&g), Err(DecodeError::IcvIndicator));
    }

    #[test]
    fn duplicates_and_unknown_sets_are_skipped() {
        let ick = SecretKey::from_slice(&[0x11; 16]).unwrap();
        let mut p = sample();
        p.icv_indicator = false;
        p.sak_use = None;
        p.distributed_sak = None;
        let f = p.encode(&ick).unwrap();
        // Insert a second live peer list (different MI), an unknown type 0x42 and a
        // type-8 XPN set before the ICV.
        let mut g = f[..f.len() - 16].to_vec();
        g.extend_from_slice(&[1, 0, 0, 16]);
        g.extend_from_slice(&[0xCC; 12]);
        g.extend_from_slice(&[0, 0, 0, 1]);
        g.extend_from_slice(&[0x42, 0, 0, 3, 1, 2, 3, 0]);
        g.extend_from_slice(&[8, 9, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2]);
        g.extend_from_slice(&[0; 16]);
        let bl = (g.len() - 18) as u16;
        g[16..18].copy_from_slice(&bl.to_be_bytes());
        let d = decode_frame(&g).unwrap();
        assert_eq!(d.pdu.skipped_sets, 2);
        assert_eq!(d.pdu.live_peers.as_ref().unwrap().peers[0].mi, Mi([9; 12]));
        assert_eq!(
            d.pdu.xpn,
            Some(XpnParams {
                suspension_time: 9,
                latest_lpn_high: 1,
                old_lpn_high: 2
            })
        );
    }

    #[test]
    fn distributed_sak_forms() {
        let w24 = WrappedKey::from_slice(&[1; 24]).unwrap();
        let w40 = WrappedKey::from_slice(&[2; 40]).unwrap();
        assert_eq!(
            DistributedKey::new(1, CipherSuite::GcmAes128, w24).cipher_suite_id,
            None
        );
        for (suite, w, len) in [
            (CipherSuite::GcmAesXpn128, w24, 36),
            (CipherSuite::GcmAes256, w40, 52),
            (CipherSuite::GcmAesXpn256, w40, 52),
        ] {
            let mut p = sample();
            p.distributed_sak = Some(DistributedSak {
                an: 3,
                confidentiality_offset: ConfidentialityOffset::IntegrityOnly,
                key: Some(DistributedKey::new(9, suite, w)),
            });
            let f = p.encode_with_stored_icv().unwrap();
            assert_eq!(f[125], len);
            let d = decode_frame(&f).unwrap().pdu.distributed_sak.unwrap();
            assert_eq!(d.key.unwrap().cipher_suite(), Some(suite));
            assert_eq!(d.an, 3);
        }
        // The deprecated GCM-AES-128 identifier is understood on receive.
        let k = DistributedKey {
            kn: 1,
            cipher_suite_id: Some([0, 0x80, 0x02, 0, 1, 0, 0, 1]),
            wrapped: w24,
        };
        assert_eq!(k.cipher_suite(), Some(CipherSuite::GcmAes128));
        // Empty body: MACsec not used.
        let mut p = sample();
        p.distributed_sak = Some(DistributedSak {
            an: 0,
            confidentiality_offset: ConfidentialityOffset::IntegrityOnly,
            key: None,
        });
        let f = p.encode_with_stored_icv().unwrap();
        assert_eq!(
            decode_frame(&f).unwrap().pdu.distributed_sak.unwrap().key,
            None
        );
    }

    #[test]
    fn largest_mkpdu_fits_a_1500_octet_mtu() {
        let mut p = sample();
        p.basic.ckn = Ckn::new(&[1; 32]).unwrap();
        let n = crate::mka::config::MAX_PEERS;
        let entry = PeerEntry {
            mi: Mi([1; 12]),
            mn: 1,
        };
        p.live_peers = Some(PeerList {
            octet2: 0,
            peers: vec![entry; n / 2],
        });
        p.potential_peers = Some(PeerList {
            octet2: 0,
            peers: vec![entry; n - n / 2],
        });
        p.distributed_sak = Some(DistributedSak {
            an: 0,
            confidentiality_offset: ConfidentialityOffset::Offset0,
            key: Some(DistributedKey::new(
                1,
                CipherSuite::GcmAesXpn256,
                WrappedKey::from_slice(&[0; 40]).unwrap(),
            )),
        });
        p.xpn = Some(XpnParams::default());
        let f = p.encode_with_stored_icv().unwrap();
        assert_eq!(f.len() - 14, 208 + 16 * n);
        assert!(f.len() - 14 <= 1500);
    }

    #[test]
    fn announcement_tlvs() {
        let body = h("E0 0A 0001 0080C20001000001".replace(' ', "").as_str());
        let v: Vec<_> = AnnouncementTlvs::new(&body).collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, 112);
        assert_eq!(v[0].1.len(), 10);
        assert_eq!(AnnouncementTlvs::new(&[0xE0, 0x20, 1]).count(), 0);
    }

    #[test]
    fn truncated_and_garbage_frames_are_errors() {
        assert!(decode_frame(&[]).is_err());
        assert!(decode_frame(&[0xFF; 300]).is_err());
        let f = sample().encode_with_stored_icv().unwrap();
        for i in 0..f.len() {
            assert!(decode_frame(&f[..i]).is_err(), "{i} of {} octets", f.len());
        }
    }
}

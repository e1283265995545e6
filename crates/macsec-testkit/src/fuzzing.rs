//! Fuzz target bodies, shared by the cargo-fuzz targets in `fuzz/` and by the
//! stable-Rust test that replays the committed corpus (`tests/it/fuzz_corpus.rs`).
//!
//! Not a public API: hidden from the docs, may change at any time. Each function takes
//! arbitrary bytes and panics only when the library breaks one of the invariants
//! checked here, with a message that names the invariant. The checks compare the
//! library against small reference models written from 802.1AE (SecTAG rules 9.12,
//! MPDU length 9.7/9.12, the receive order of 10.6 up to the SA lookup, the replay
//! lower bound), against the other AES-GCM backend, and against itself with the
//! frame placed elsewhere in the buffer.

use core::cell::RefCell;
use core::ops::Range;
use macsec::crypto::{Backend, CipherSuite, Salt, SecretKey, Ssci, ICV_LEN};
use macsec::secy::{
    ConfidentialityOffset, Protection, ReplayMode, RxVerdict, SecY, SecYConfig, TxDrop,
    ValidateFrames, XpnParams,
};
use macsec::wire::sectag::{check_mpdu_len, tci, SecTag, SecTagRepr, TagError};
use macsec::wire::{MacAddr, Sci};
use std::sync::OnceLock;

const ADDRS: usize = 12;
const MIN_FRAME: usize = 60;

// ---------------------------------------------------------------------------------
// Reference models (deliberately independent of the library's own helpers).
// ---------------------------------------------------------------------------------

fn be16_at(b: &[u8], off: usize) -> Option<u16> {
    (off + 2 <= b.len()).then(|| u16::from_be_bytes([b[off], b[off + 1]]))
}

/// Clear VLAN tags in front of the EtherType: (count, EtherType offset), or `None`
/// when the frame ends before an EtherType.
fn model_tags(frame: &[u8], max: usize) -> Option<(usize, usize)> {
    let mut off = ADDRS;
    let mut n = 0;
    loop {
        let t = be16_at(frame, off)?;
        if n < max && matches!(t, 0x8100 | 0x88A8 | 0x9100) {
            off += 4;
            n += 1;
        } else {
            return Some((n, off));
        }
    }
}

/// 802.1AE 9.12 c-e plus the PN rule, in the documented order.
fn model_tag(t: &[u8], xpn: bool) -> Result<(), TagError> {
    if t.len() < 8 {
        return Err(TagError::Truncated);
    }
    let tci_an = t[2];
    let sc = tci_an & 0x20 != 0;
    if sc && t.len() < 16 {
        return Err(TagError::Truncated);
    }
    if t[0] != 0x88 || t[1] != 0xE5 {
        return Err(TagError::NotMacsec);
    }
    if tci_an & 0x80 != 0 {
        return Err(TagError::Version);
    }
    if sc && tci_an & 0x40 != 0 {
        return Err(TagError::EndStationWithSci);
    }
    if sc && tci_an & 0x10 != 0 {
        return Err(TagError::ScbWithSci);
    }
    match (tci_an & 0x08 != 0, tci_an & 0x04 != 0) {
        (true, false) => return Err(TagError::ReservedEncoding),
        (false, true) => return Err(TagError::ChangedWithoutEncryption),
        _ => {}
    }
    if t[3] & 0xC0 != 0 {
        return Err(TagError::ReservedShortLenBits);
    }
    if t[3] >= 48 {
        return Err(TagError::ShortLenTooLarge);
    }
    if !xpn && t[4..8] == [0, 0, 0, 0] {
        return Err(TagError::ZeroPn);
    }
    Ok(())
}

/// 802.1AE 9.7/9.12 f-i: Secure Data length from SL, or the error.
fn model_mpdu(
    sl: usize,
    after_tag: usize,
    frame_len: usize,
    min_len: usize,
) -> Result<usize, TagError> {
    if sl == 0 {
        if after_tag < 48 + ICV_LEN {
            Err(TagError::TooShortForZeroShortLen)
        } else {
            Ok(after_tag - ICV_LEN)
        }
    } else if after_tag == sl + ICV_LEN || (after_tag > sl + ICV_LEN && frame_len <= min_len) {
        Ok(sl)
    } else {
        Err(TagError::ShortLenMismatch)
    }
}

/// 802.1AEbw PN recovery as this crate specifies it: the high half of the reference,
/// plus one when the reference is in the upper half of its 2^32 block and the wire PN
/// in the lower half.
fn model_recover(pn32: u32, reference: u128) -> Option<u64> {
    let reference = reference.min(u64::MAX as u128) as u64;
    let mut hi = (reference >> 32) as u128;
    if reference as u32 >= 0x8000_0000 && pn32 < 0x8000_0000 {
        hi += 1;
    }
    u64::try_from((hi << 32) | pn32 as u128).ok()
}

// ---------------------------------------------------------------------------------
// sectag_parse
// ---------------------------------------------------------------------------------

/// SecTAG view and repr: `new_checked` accepts exactly the buffers long enough for the
/// tag, no accessor panics afterwards, `parse` agrees with the 9.12 model for both PN
/// widths, and `emit` writes back exactly the parsed octets. Also checks
/// [`check_mpdu_len`] against its model with lengths taken from the input.
pub fn sectag_parse(data: &[u8]) {
    let need = if data.len() >= 3 && data[2] & tci::SC != 0 {
        16
    } else {
        8
    };
    let tag = match SecTag::new_checked(data) {
        Ok(t) => {
            assert!(data.len() >= need, "new_checked accepted a truncated tag");
            t
        }
        Err(e) => {
            assert_eq!(e, TagError::Truncated, "new_checked error");
            assert!(
                data.len() < need,
                "new_checked rejected a long enough buffer"
            );
            for xpn in [false, true] {
                assert_eq!(model_tag(data, xpn), Err(TagError::Truncated));
            }
            return;
        }
    };
    // Every accessor is panic-free after new_checked.
    let _ = (
        tag.ethertype(),
        tag.an(),
        tag.short_len(),
        tag.pn(),
        tag.sci(),
    );
    assert_eq!(tag.header_len(), need);
    for xpn in [false, true] {
        let got = SecTagRepr::parse(&tag, xpn);
        assert_eq!(
            got.map(|_| ()),
            model_tag(data, xpn),
            "parse vs 9.12 model, xpn={xpn}"
        );
        let Ok(r) = got else { continue };
        assert_eq!(r.buffer_len(), need);
        assert_eq!(r.an, data[2] & 3);
        assert_eq!(
            r.pn,
            u32::from_be_bytes([data[4], data[5], data[6], data[7]])
        );
        assert_eq!(r.sci.is_some(), need == 16);
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut SecTag::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], &data[..r.buffer_len()], "emit(parse(x)) != x");
        let again = SecTagRepr::parse(&SecTag::new_checked(&out[..]).unwrap(), xpn);
        assert_eq!(again, Ok(r), "parse(emit(r)) != r");
    }
    // The MPDU length rule on this tag, as if DA ‖ SA and 0..2 clear tags preceded it.
    let after = data.len() - need;
    for ntags in 0..=2usize {
        let frame_len = ADDRS + 4 * ntags + data.len();
        let min_len = MIN_FRAME + 4 * ntags;
        let sl = tag.short_len();
        let got = check_mpdu_len(sl, after, ICV_LEN, frame_len, min_len);
        assert_eq!(
            got,
            model_mpdu(sl as usize, after, frame_len, min_len),
            "check_mpdu_len"
        );
        if let Ok(n) = got {
            assert!(n + ICV_LEN <= after);
        }
    }
}

// ---------------------------------------------------------------------------------
// Shared key material: the SCIs, ANs and keys of the test vectors, so that the seed
// frames reach the ICV check and pass it.
// ---------------------------------------------------------------------------------

struct PeerSa {
    sci: &'static str,
    an: u8,
    key128: &'static str,
    key256: &'static str,
}

const PEER_SAS: &[PeerSa] = &[
    PeerSa {
        sci: "F0761E8DCD3D0001",
        an: 0,
        key128: "071B113B0CA743FECCCF3D051F737382",
        key256: "691D3EE909D7F54167FD1CA0B5D769081F2BDE1AEE655FDBAB80BD5295AE6BE7",
    },
    PeerSa {
        sci: "F0761E8DCD3D0001",
        an: 1,
        key128: "AD7A2BD03EAC835A6F620FDCB506B345",
        key256: "E3C08A8F06C6E3AD95A70557B23F75483CE33021A9C72B7025666204C69C0B72",
    },
    PeerSa {
        sci: "12153524C0895E81",
        an: 2,
        key128: "AD7A2BD03EAC835A6F620FDCB506B345",
        key256: "E3C08A8F06C6E3AD95A70557B23F75483CE33021A9C72B7025666204C69C0B72",
    },
    PeerSa {
        sci: "7CFDE9F9E33724C6",
        an: 3,
        key128: "013FE00B5F11BE7F866D0CBBC55A7A90",
        key256: "83C093B58DE7FFE1C0DA926AC43FB3609AC1C80FEE1B624497EF942E2F79A823",
    },
    PeerSa {
        sci: "7AE8E2CA4EC50001",
        an: 1,
        key128: "88EE087FD95DA9FBF6725AA9D757B0CD",
        key256: "4C973DBC7364621674F8B5B89E5C15511FCED9216490FB1C1A2CAA0FFE0407E5",
    },
    PeerSa {
        sci: "FE2FCD14241B882C",
        an: 0,
        key128: "071B113B0CA743FECCCF3D051F737382",
        key256: "691D3EE909D7F54167FD1CA0B5D769081F2BDE1AEE655FDBAB80BD5295AE6BE7",
    },
    PeerSa {
        sci: "FE2FCD14241B882C",
        an: 1,
        key128: "AD7A2BD03EAC835A6F620FDCB506B345",
        key256: "E3C08A8F06C6E3AD95A70557B23F75483CE33021A9C72B7025666204C69C0B72",
    },
    PeerSa {
        sci: "CACBCD2122230001",
        an: 0,
        key128: "11111111111111111111111111111111",
        key256: "2222222222222222222222222222222222222222222222222222222222222222",
    },
];

/// The SSCI and salt of every XPN vector.
pub const VECTOR_XPN: XpnParams = XpnParams {
    ssci: Ssci(0x7A30_C118),
    salt: Salt([
        0xE6, 0x30, 0xE8, 0x1A, 0x48, 0xDE, 0x86, 0xA2, 0x1C, 0x66, 0xFA, 0x6D,
    ]),
};

struct Keys {
    /// Per PEER_SAS entry: (SCI, 128-bit key, 256-bit key).
    peers: Vec<(Sci, SecretKey, SecretKey)>,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys {
        peers: PEER_SAS
            .iter()
            .map(|p| {
                (
                    p.sci.parse().expect("sci"),
                    SecretKey::from_hex(p.key128).expect("key"),
                    SecretKey::from_hex(p.key256).expect("key"),
                )
            })
            .collect(),
    })
}

fn key_for(
    suite: CipherSuite,
    k128: &'static SecretKey,
    k256: &'static SecretKey,
) -> &'static SecretKey {
    if suite.key_len() == 16 {
        k128
    } else {
        k256
    }
}

fn xpn_params(suite: CipherSuite) -> Option<XpnParams> {
    suite.is_xpn().then_some(VECTOR_XPN)
}

/// The backend to compare `b` against: the other one when two are compiled in.
fn other_backend(b: Backend) -> Backend {
    *Backend::ALL.iter().find(|&&x| x != b).unwrap_or(&b)
}

// ---------------------------------------------------------------------------------
// Receive-side counters: exactly one per-frame counter moves per frame.
// ---------------------------------------------------------------------------------

const N_COUNTS: usize = 14;

fn frame_counts(rx: &macsec::secy::Receiver) -> [u64; N_COUNTS] {
    let s = rx.secy_counters();
    let mut c = [0u64; N_COUNTS];
    c[0] = s.in_pkts_untagged;
    c[1] = s.in_pkts_no_tag;
    c[2] = s.in_pkts_bad_tag;
    c[3] = s.in_pkts_unknown_sci;
    c[4] = s.in_pkts_no_sci;
    c[5] = s.in_pkts_uncontrolled;
    for sci in rx.scis() {
        let k = rx.sc_counters(sci).expect("listed SC");
        c[6] += k.in_pkts_ok;
        c[7] += k.in_pkts_unchecked;
        c[8] += k.in_pkts_delayed;
        c[9] += k.in_pkts_late;
        c[10] += k.in_pkts_invalid;
        c[11] += k.in_pkts_not_valid;
        c[12] += k.in_pkts_not_using_sa;
        c[13] += k.in_pkts_unused_sa;
    }
    c
}

fn verdict_counter(v: RxVerdict) -> usize {
    match v {
        RxVerdict::Untagged => 0,
        RxVerdict::NoTag => 1,
        RxVerdict::BadTag(_) => 2,
        RxVerdict::UnknownSci => 3,
        RxVerdict::NoSci => 4,
        RxVerdict::Uncontrolled => 5,
        RxVerdict::Ok => 6,
        RxVerdict::Unchecked => 7,
        RxVerdict::Delayed => 8,
        RxVerdict::Late => 9,
        RxVerdict::Invalid => 10,
        RxVerdict::NotValid => 11,
        RxVerdict::NotUsingSa => 12,
        RxVerdict::UnusedSa => 13,
        other => panic!("verdict {other:?} is new: give it a counter in this model"),
    }
}

/// Validates `frame` placed at `head` in a buffer with `tail` octets after it (both
/// filled with a pattern), checks the range, the untouched surroundings and the
/// counters, and returns the verdict and the delivered octets.
fn validate_checked(
    rx: &mut macsec::secy::Receiver,
    frame: &[u8],
    head: usize,
    tail: usize,
) -> (RxVerdict, Option<Vec<u8>>) {
    let mut buf = vec![0xA5u8; head + frame.len() + tail];
    buf[head..head + frame.len()].copy_from_slice(frame);
    let region = head..head + frame.len();
    let before = frame_counts(rx);
    let (v, out) = rx.validate(&mut buf, region.clone());
    assert!(
        buf[..head].iter().all(|&b| b == 0xA5),
        "validate wrote before the frame"
    );
    assert!(
        buf[region.end..].iter().all(|&b| b == 0xA5),
        "validate wrote after the frame"
    );
    assert_eq!(out.is_some(), v.is_delivered(), "delivery vs verdict {v:?}");
    let after = frame_counts(rx);
    let mut want = before;
    want[verdict_counter(v)] += 1;
    assert_eq!(after, want, "exactly one per-frame counter for {v:?}");
    let out = out.map(|r: Range<usize>| {
        assert!(r.start <= r.end, "inverted range");
        assert!(
            r.start >= region.start && r.end <= region.end,
            "delivered range {r:?} outside the frame {region:?}"
        );
        assert!(r.len() <= frame.len());
        buf[r].to_vec()
    });
    (v, out)
}

// ---------------------------------------------------------------------------------
// secy_open
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Scs {
    /// Every SC of the table.
    All,
    /// Only the SC of this SCI (so that the single-SC fallback applies).
    Single(&'static str),
    /// Every SC, with the SA of F0761E8DCD3D0001 AN 0 not in use.
    AllOneInactive,
}

#[derive(Clone, Copy)]
struct OpenCfg {
    suite: CipherSuite,
    validate: ValidateFrames,
    vlan: u8,
    replay_protect: bool,
    window: u32,
    mode: ReplayMode,
    lowest: u64,
    scs: Scs,
    offset: ConfidentialityOffset,
}

#[allow(clippy::too_many_arguments)]
const fn oc(
    suite: CipherSuite,
    validate: ValidateFrames,
    vlan: u8,
    replay_protect: bool,
    window: u32,
    mode: ReplayMode,
    lowest: u64,
    scs: Scs,
    offset: ConfidentialityOffset,
) -> OpenCfg {
    OpenCfg {
        suite,
        validate,
        vlan,
        replay_protect,
        window,
        mode,
        lowest,
        scs,
        offset,
    }
}

use CipherSuite::{
    GcmAes128 as A128, GcmAes256 as A256, GcmAesXpn128 as X128, GcmAesXpn256 as X256,
};
use ConfidentialityOffset::{Fifty, Thirty, Zero};
use ReplayMode::{LowerBound as Lb, RejectDuplicates as Dup};
use ValidateFrames::{Check, Disabled, Strict};

/// The receivers every `secy_open` input goes through: every suite, every
/// validateFrames value, 0..2 clear tags, both replay modes, lowest PNs that accept the
/// vectors or sit at PN-space edges, one or many SCs.
#[rustfmt::skip]
const OPEN_CFGS: &[OpenCfg] = &[
    //  suite validate vlan replay window  mode  lowest PN  receive SCs  conf. offset
    oc(A128, Strict,   0, true,  0,       Lb,  1, Scs::All, Zero),
    oc(A256, Check,    0, true,  32,      Lb,  1, Scs::All, Zero),
    oc(X128, Strict,   0, true,  0,       Lb,  0xB0DF_459C_0000_0001, Scs::All, Zero),
    oc(X256, Disabled, 0, false, 1000,    Lb,  0xB0DF_459C_0000_0001, Scs::All, Zero),
    oc(A128, Check,    1, true,  64,      Dup, 1, Scs::All, Zero),
    oc(A128, Strict,   2, true,  0,       Lb,  1, Scs::Single("CACBCD2122230001"), Zero),
    oc(X128, Check,    0, true,  32,      Dup, 0xFFFF_FFF0, Scs::Single("F0761E8DCD3D0001"), Zero),
    oc(A128, Disabled, 2, false, 0,       Lb,  0x8000_0000, Scs::AllOneInactive, Thirty),
    oc(A256, Strict,   1, true,  1 << 16, Dup, 1, Scs::AllOneInactive, Fifty),
    oc(X256, Check,    2, true,  (1 << 30) - 1, Lb, u64::MAX - 4, Scs::All, Zero),
    oc(X128, Disabled, 1, true,  0,       Lb,  1, Scs::Single("F0761E8DCD3D0001"), Zero),
    oc(A128, Check,    0, false, 0,       Lb,  0xFFFF_FFFF, Scs::Single("FE2FCD14241B882C"), Zero),
];

/// Number of receive configurations [`secy_open`] runs each input through.
pub const OPEN_CONFIGS: usize = OPEN_CFGS.len();

fn open_secy(c: &OpenCfg, backend: Backend) -> OpenSecY {
    let cfg = {
        let mut conf = SecYConfig::default();
        conf.cipher = c.suite;
        conf.protection = Protection::Confidentiality(c.offset);
        conf.validate = c.validate;
        conf.replay_protect = c.replay_protect;
        conf.replay_window = c.window;
        conf.replay_mode = c.mode;
        conf.vlan_in_clear = c.vlan;
        conf.sci = "0200000000990001".parse().expect("sci");
        conf.backend = backend;
        conf
    };
    let mut secy = SecY::new(cfg).expect("valid fuzz config");
    let lowest = c.lowest.clamp(1, c.suite.max_pn());
    let mut sas = Vec::new();
    for (p, (sci, k128, k256)) in PEER_SAS.iter().zip(&keys().peers) {
        match c.scs {
            Scs::Single(s) if s != p.sci => continue,
            _ => {}
        }
        if !secy.rx.scis().any(|x| x == *sci) {
            secy.rx.add_sc(*sci).expect("new SC");
        }
        secy.rx
            .install_sa(
                *sci,
                p.an,
                key_for(c.suite, k128, k256),
                lowest,
                xpn_params(c.suite),
            )
            .expect("valid SA");
        let active =
            !(matches!(c.scs, Scs::AllOneInactive) && p.sci == "F0761E8DCD3D0001" && p.an == 0);
        if !active {
            secy.rx.set_sa_active(*sci, p.an, false).expect("SA");
        }
        sas.push((*sci, p.an, active));
    }
    (secy, sas)
}

/// A receiver of [`OPEN_CFGS`] (with its SAs: SCI, AN, in use).
type OpenSecY = (SecY, Vec<(Sci, u8, bool)>);

thread_local! {
    /// Receivers whose replay state is still the initial one, per configuration and backend.
    static OPEN_CACHE: RefCell<Vec<Option<OpenSecY>>> = const { RefCell::new(Vec::new()) };
}

/// What the reference model can say about a frame before any cryptography.
enum Expect {
    /// The verdict is fully determined.
    Exactly(RxVerdict),
    /// The frame reaches the replay check and (maybe) the ICV check.
    Crypto {
        et_off: usize,
        secure_len: usize,
        changed: bool,
        /// The recovered PN, or `None` when recovery fails (XPN at the end of the space).
        pn: Option<u64>,
    },
}

fn model_open(c: &OpenCfg, sas: &[(Sci, u8, bool)], f: &[u8]) -> (Expect, usize) {
    use RxVerdict as V;
    let strict = c.validate == Strict;
    if f.len() < 14 {
        return (Expect::Exactly(V::BadTag(TagError::Truncated)), 0);
    }
    let Some((ntags, et_off)) = model_tags(f, c.vlan as usize) else {
        return (Expect::Exactly(V::BadTag(TagError::Truncated)), 0);
    };
    if be16_at(f, et_off) != Some(0x88E5) {
        return (
            Expect::Exactly(if strict { V::NoTag } else { V::Untagged }),
            ntags,
        );
    }
    let t = &f[et_off..];
    match model_tag(t, c.suite.is_xpn()) {
        Ok(()) => {}
        Err(TagError::ReservedEncoding) => return (Expect::Exactly(V::Uncontrolled), ntags),
        Err(e) => return (Expect::Exactly(V::BadTag(e)), ntags),
    }
    let tag_len = if t[2] & 0x20 != 0 { 16 } else { 8 };
    let after = f.len() - et_off - tag_len;
    let secure_len = match model_mpdu(
        (t[3] & 0x3F) as usize,
        after,
        f.len(),
        MIN_FRAME + 4 * ntags,
    ) {
        Ok(n) => n,
        Err(e) => return (Expect::Exactly(V::BadTag(e)), ntags),
    };
    let changed = t[2] & 0x0C == 0x0C;
    let sci = if tag_len == 16 {
        Sci(t[8..16].try_into().expect("8 octets"))
    } else {
        let mut m = [0u8; 6];
        m.copy_from_slice(&f[6..12]);
        let implicit = Sci::new(MacAddr(m), 1);
        let mut scis: Vec<Sci> = sas.iter().map(|s| s.0).collect();
        scis.dedup();
        if scis.contains(&implicit) || scis.len() != 1 {
            implicit
        } else {
            scis[0]
        }
    };
    if !sas.iter().any(|s| s.0 == sci) {
        let v = if changed || strict {
            V::NoSci
        } else {
            V::UnknownSci
        };
        return (Expect::Exactly(v), ntags);
    }
    let an = t[2] & 3;
    if !sas.iter().any(|s| s.0 == sci && s.1 == an && s.2) {
        let v = if changed || strict {
            V::NotUsingSa
        } else {
            V::UnusedSa
        };
        return (Expect::Exactly(v), ntags);
    }
    let pn32 = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    let lowest = c.lowest.clamp(1, c.suite.max_pn());
    let pn = if c.suite.is_xpn() {
        model_recover(pn32, lowest as u128)
    } else {
        Some(pn32 as u64)
    };
    let pn_ok = pn.is_some_and(|p| p >= lowest);
    if pn.is_none() || (c.replay_protect && !pn_ok) {
        return (Expect::Exactly(V::Late), ntags);
    }
    if c.validate == Disabled && !changed {
        return (
            Expect::Exactly(if pn_ok { V::Unchecked } else { V::Delayed }),
            ntags,
        );
    }
    (
        Expect::Crypto {
            et_off,
            secure_len,
            changed,
            pn,
        },
        ntags,
    )
}

/// Arbitrary bytes as a received frame, through every receive configuration of
/// [`OPEN_CONFIGS`] and both backends (the second with the frame at another position
/// in a larger buffer). Checks: no panic; the delivered range lies inside the frame and
/// is not longer than it; nothing outside the frame is written; exactly one per-frame
/// counter moves; the verdict agrees with the reference model up to the ICV check; the
/// delivered octets are DA ‖ SA ‖ clear tags ‖ Secure Data (unchanged unless decrypted);
/// both backends agree; and the same frame a second time gives what the replay rules
/// say. Returns how many (configuration, backend) runs verified an ICV.
pub fn secy_open(data: &[u8]) -> usize {
    use RxVerdict as V;
    let mut verified = 0;
    for (ci, c) in OPEN_CFGS.iter().enumerate() {
        let mut results = Vec::new();
        for (i, &backend) in [Backend::default(), other_backend(Backend::default())]
            .iter()
            .enumerate()
        {
            let slot = ci * 2 + i;
            let (mut secy, sas) = OPEN_CACHE
                .with(|cache| cache.borrow_mut().get_mut(slot).and_then(Option::take))
                .unwrap_or_else(|| open_secy(c, backend));
            let (head, tail) = if i == 0 { (0, 0) } else { (7, 9) };
            let (v, out) = validate_checked(&mut secy.rx, data, head, tail);
            let (expect, ntags) = model_open(c, &sas, data);
            match expect {
                Expect::Exactly(want) => {
                    assert_eq!(v, want, "verdict vs model");
                    if v == V::Untagged {
                        assert_eq!(out.as_deref(), Some(data), "untagged frames pass unchanged");
                    }
                    if let (Some(o), true) = (
                        &out,
                        matches!(v, V::UnknownSci | V::UnusedSa | V::Unchecked | V::Delayed),
                    ) {
                        // Delivered unvalidated: DA ‖ SA ‖ tags ‖ Secure Data, as received.
                        check_stripped(data, o, ntags, true);
                    }
                }
                Expect::Crypto {
                    et_off,
                    secure_len,
                    changed,
                    pn,
                } => {
                    let lowest = c.lowest.clamp(1, c.suite.max_pn());
                    let below = pn.is_some_and(|p| p < lowest);
                    let allowed: &[V] = match (changed || c.validate == Strict, below) {
                        (true, false) => &[V::Ok, V::NotValid],
                        (true, true) => &[V::Delayed, V::NotValid],
                        (false, false) => &[V::Ok, V::Invalid],
                        (false, true) => &[V::Delayed, V::Invalid],
                    };
                    assert!(allowed.contains(&v), "verdict {v:?} not in {allowed:?}");
                    if let Some(o) = &out {
                        assert_eq!(o.len(), et_off + secure_len, "delivered length");
                        check_stripped(data, o, ntags, !changed);
                    }
                    if matches!(v, V::Ok | V::Delayed) {
                        verified += 1;
                        let s = secy.rx.secy_counters();
                        let octets = if changed {
                            s.in_octets_decrypted
                        } else {
                            s.in_octets_validated
                        };
                        assert_eq!(octets, secure_len as u64, "octet counter");
                    }
                }
            }
            // The same frame again, on the same receiver.
            let (v2, out2) = validate_checked(&mut secy.rx, data, head, tail);
            if v == V::Ok {
                let w = c.window as u128;
                let p = pn_of(c, data).expect("an Ok frame has a PN") as u128;
                let lowest2 =
                    (c.lowest.clamp(1, c.suite.max_pn()) as u128).max((p + 1).saturating_sub(w));
                let expect2 = replay_expectation(
                    c.suite,
                    c.replay_protect,
                    c.mode,
                    c.window,
                    p,
                    lowest2,
                    data,
                    c.validate,
                    c.vlan,
                );
                assert!(
                    expect2.contains(&v2),
                    "replayed Ok frame gave {v2:?}, expected one of {expect2:?}"
                );
                if v2 == V::Ok {
                    assert_eq!(out2, out, "same frame, same plaintext");
                }
            } else if v == V::Delayed {
                assert!(matches!(v2, V::Delayed), "Delayed then {v2:?}");
                assert_eq!(out2, out);
            } else {
                assert_eq!(
                    (v2, &out2),
                    (v, &out),
                    "a rejected or unchecked frame changes no state"
                );
            }
            // Only a frame whose ICV verified changes a receiver's state (beyond its
            // counters, which are compared as differences): keep the others for the
            // next input, as building 24 receivers per input would dominate the run.
            if ![v, v2].iter().any(|v| matches!(v, V::Ok | V::Delayed)) {
                OPEN_CACHE.with(|cache| {
                    let mut cache = cache.borrow_mut();
                    if cache.len() < 2 * OPEN_CFGS.len() {
                        cache.resize_with(2 * OPEN_CFGS.len(), || None);
                    }
                    cache[slot] = Some((secy, sas));
                });
            }
            results.push((v, out));
        }
        if results.len() == 2 {
            assert_eq!(results[0], results[1], "backends disagree");
        }
    }
    verified
}

/// The PN the receiver recovered for an accepted frame (after one verified frame the
/// model PN is the wire PN, recovered against the configured lowest PN).
fn pn_of(c: &OpenCfg, f: &[u8]) -> Option<u64> {
    let (_, et_off) = model_tags(f, c.vlan as usize)?;
    let t = f.get(et_off..et_off + 8)?;
    let pn32 = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    if c.suite.is_xpn() {
        model_recover(pn32, c.lowest.clamp(1, c.suite.max_pn()) as u128)
    } else {
        Some(pn32 as u64)
    }
}

/// The verdicts a frame whose PN `p` was just accepted may get a second time, given the
/// lowest acceptable PN `lowest2` after the first acceptance.
#[allow(clippy::too_many_arguments)]
fn replay_expectation(
    suite: CipherSuite,
    replay_protect: bool,
    mode: ReplayMode,
    window: u32,
    p: u128,
    lowest2: u128,
    f: &[u8],
    validate: ValidateFrames,
    vlan: u8,
) -> Vec<RxVerdict> {
    use RxVerdict as V;
    let changed = model_tags(f, vlan as usize)
        .and_then(|(_, o)| f.get(o + 2))
        .is_some_and(|t| t & 0x0C == 0x0C);
    let unchecked = validate == Disabled && !changed;
    // XPN: the PN is recovered again, against the raised lowest PN.
    let p2 = if suite.is_xpn() {
        model_recover(p as u32, lowest2).map(|x| x as u128)
    } else {
        Some(p)
    };
    let Some(p2) = p2 else { return vec![V::Late] };
    let late = p2 < lowest2 || (mode == Dup && window > 0 && p2 == p);
    if replay_protect && late {
        return vec![V::Late];
    }
    if p2 != p {
        // Recovered into another 2^32 block (a replay just below a half boundary with
        // window 0): the IV differs, so the ICV fails, unless not checked at all.
        return if unchecked {
            vec![V::Unchecked]
        } else {
            vec![V::NotValid, V::Invalid]
        };
    }
    if unchecked {
        return vec![if p2 < lowest2 {
            V::Delayed
        } else {
            V::Unchecked
        }];
    }
    vec![if p2 < lowest2 { V::Delayed } else { V::Ok }]
}

/// A delivered frame is DA ‖ SA ‖ clear tags ‖ Secure Data; with `same_data` the Secure
/// Data is the received one (not decrypted).
fn check_stripped(frame: &[u8], out: &[u8], ntags: usize, same_data: bool) {
    let et_off = ADDRS + 4 * ntags;
    assert_eq!(
        &out[..et_off],
        &frame[..et_off],
        "DA, SA and clear tags kept"
    );
    if same_data {
        let tag_len = if frame[et_off + 2] & 0x20 != 0 { 16 } else { 8 };
        let n = out.len() - et_off;
        assert_eq!(
            &out[et_off..],
            &frame[et_off + tag_len..et_off + tag_len + n],
            "unvalidated Secure Data delivered as received"
        );
    }
}

// ---------------------------------------------------------------------------------
// seal_open
// ---------------------------------------------------------------------------------

/// Length of the parameter header of a [`seal_open`] input; the frame follows it.
pub const SEAL_OPEN_HEADER: usize = 11;

const EDGE_PNS: &[u64] = &[
    1,
    2,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFE,
    0xFFFF_FFFF,
    0x1_0000_0000,
    0x1_7FFF_FFFF,
    0xB0DF_459C_B2C2_8465,
    u64::MAX - 1,
    u64::MAX,
    0x2E58_495C,
];

const WINDOWS: &[u32] = &[0, 1, 2, 32, 64, 1000, 1 << 16];

/// The parameters of a [`seal_open`] input, for building seeds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SealOpenParams {
    /// Index into the cipher suites (0..4).
    pub suite: u8,
    /// 0 integrity only, 1/2/3 confidentiality with offset 0/30/50.
    pub protection: u8,
    /// 0 send_sci, 1 end station, 2 SCB, 3 implicit SCI (point to point).
    pub sci_mode: u8,
    /// Clear VLAN tags (0..=2).
    pub vlan_in_clear: u8,
    /// Encoding AN.
    pub an: u8,
    /// Protect with the non-default backend.
    pub portable_tx: bool,
    /// 0 none, 1 pad to 60 octets, 2 pad to 60 + 4 per clear tag.
    pub pad: u8,
    /// Turn replay protection off.
    pub no_replay_protect: bool,
    /// Duplicate-rejecting replay mode.
    pub reject_duplicates: bool,
    /// Index into the edge PNs.
    pub pn: u8,
    /// Receiver's lowest PN is this much below the PN.
    pub lowest_delta: u8,
    /// Index into the replay windows.
    pub window: u8,
    /// Headroom before the frame (mod 40).
    pub headroom: u8,
    /// Tailroom after the frame (mod 48).
    pub tailroom: u8,
    /// Bit to flip in the protected frame.
    pub flip: u16,
    /// MTU: bit 7 set enables it; the low 6 bits are subtracted from the exact fit.
    pub mtu: u8,
    /// 0 Strict, 1 Check, 2 Disabled.
    pub validate: u8,
    /// End station: use the frame's source address in the SCI (else a fixed one).
    pub es_match: bool,
    /// Add other receive SCs (only where the SCI can still be found).
    pub decoys: bool,
}

impl SealOpenParams {
    /// The input bytes: the header followed by `frame`.
    pub fn encode(&self, frame: &[u8]) -> Vec<u8> {
        let mut v = vec![
            (self.suite & 3)
                | (self.protection & 3) << 2
                | (self.sci_mode & 3) << 4
                | (self.vlan_in_clear % 3) << 6,
            (self.an & 3)
                | (self.portable_tx as u8) << 2
                | (self.pad & 3) << 3
                | (self.no_replay_protect as u8) << 5
                | (self.reject_duplicates as u8) << 6,
            self.pn,
            self.lowest_delta,
            self.window,
            self.headroom,
            self.tailroom,
            (self.flip >> 8) as u8,
            self.flip as u8,
            self.mtu,
            (self.validate % 3) | (self.es_match as u8) << 2 | (self.decoys as u8) << 3,
        ];
        v.extend_from_slice(frame);
        v
    }

    fn decode(d: &[u8]) -> Option<(SealOpenParams, &[u8])> {
        let h = d.get(..SEAL_OPEN_HEADER)?;
        Some((
            SealOpenParams {
                suite: h[0] & 3,
                protection: (h[0] >> 2) & 3,
                sci_mode: (h[0] >> 4) & 3,
                vlan_in_clear: (h[0] >> 6) % 3,
                an: h[1] & 3,
                portable_tx: h[1] & 4 != 0,
                pad: (h[1] >> 3) & 3,
                no_replay_protect: h[1] & 0x20 != 0,
                reject_duplicates: h[1] & 0x40 != 0,
                pn: h[2],
                lowest_delta: h[3],
                window: h[4],
                headroom: h[5],
                tailroom: h[6],
                flip: u16::from_be_bytes([h[7], h[8]]),
                mtu: h[9],
                validate: h[10] % 4 % 3,
                es_match: h[10] & 4 != 0,
                decoys: h[10] & 8 != 0,
            },
            &d[SEAL_OPEN_HEADER..],
        ))
    }
}

const SEAL_KEY128: &str = "AD7A2BD03EAC835A6F620FDCB506B345";
const SEAL_KEY256: &str = "E3C08A8F06C6E3AD95A70557B23F75483CE33021A9C72B7025666204C69C0B72";
const FIXED_SCI: &str = "0200000000010002";
const FIXED_ES_SCI: &str = "0200000000010001";

fn seal_keys() -> &'static (SecretKey, SecretKey) {
    static K: OnceLock<(SecretKey, SecretKey)> = OnceLock::new();
    K.get_or_init(|| {
        (
            SecretKey::from_hex(SEAL_KEY128).expect("key"),
            SecretKey::from_hex(SEAL_KEY256).expect("key"),
        )
    })
}

/// One transmission: the buffer after `protect` and the result.
struct Sealed {
    buf: Vec<u8>,
    res: Result<Range<usize>, TxDrop>,
}

/// A frame and parameters from the input: protect (with both backends, which must
/// produce the same octets), check the result against a model of `protect`'s
/// preconditions and the SecTAG it must write, pad as the MAC would, validate on a peer
/// with the same key (must give back the original frame with `Ok`, or `Unchecked` for
/// integrity-only frames under validateFrames Disabled), replay it (must follow the
/// replay rules), and flip one bit outside the clear tags and the padding (must never be
/// delivered under Strict). Returns whether the round trip ran.
pub fn seal_open(data: &[u8]) -> bool {
    use RxVerdict as V;
    let Some((p, frame)) = SealOpenParams::decode(data) else {
        return false;
    };
    let suite = CipherSuite::ALL[p.suite as usize];
    let protection = match p.protection {
        0 => Protection::IntegrityOnly,
        1 => Protection::Confidentiality(Zero),
        2 => Protection::Confidentiality(Thirty),
        _ => Protection::Confidentiality(Fifty),
    };
    let (send_sci, es, scb) = match p.sci_mode {
        0 => (true, false, false),
        1 => (false, true, false),
        2 => (false, false, true),
        _ => (false, false, false),
    };
    let vlan = p.vlan_in_clear as usize;
    let sci: Sci = if es {
        if p.es_match && frame.len() >= ADDRS {
            let mut m = [0u8; 6];
            m.copy_from_slice(&frame[6..12]);
            Sci::new(MacAddr(m), 1)
        } else {
            FIXED_ES_SCI.parse().expect("sci")
        }
    } else {
        FIXED_SCI.parse().expect("sci")
    };
    let pn = EDGE_PNS[p.pn as usize % EDGE_PNS.len()].min(suite.max_pn());
    let lowest = pn.saturating_sub(p.lowest_delta as u64).max(1);
    let window = WINDOWS[p.window as usize % WINDOWS.len()];
    let mode = if p.reject_duplicates { Dup } else { Lb };
    let validate = [Strict, Check, Disabled][p.validate as usize];
    let tag_len = if send_sci { 16 } else { 8 };
    let mtu =
        (p.mtu & 0x80 != 0).then(|| (frame.len() + 34).saturating_sub((p.mtu & 0x3F) as usize));
    let (k128, k256) = seal_keys();
    let key = key_for(suite, k128, k256);
    let tx_backend = if p.portable_tx {
        other_backend(Backend::default())
    } else {
        Backend::default()
    };
    let rx_backend = other_backend(tx_backend);
    let cfg = |backend: Backend, validate: ValidateFrames| {
        let mut conf = SecYConfig::default();
        conf.cipher = suite;
        conf.protection = protection;
        conf.validate = validate;
        conf.replay_protect = !p.no_replay_protect;
        conf.replay_window = window;
        conf.replay_mode = mode;
        conf.send_sci = send_sci;
        conf.end_station = es;
        conf.scb = scb;
        conf.vlan_in_clear = p.vlan_in_clear;
        conf.sci = sci;
        conf.mtu = mtu;
        conf.backend = backend;
        conf
    };
    if mode == Dup && window > macsec::secy::replay::MAX_DUPLICATE_WINDOW {
        return false;
    }

    // Transmit, with both backends.
    let head = p.headroom as usize % 40;
    let tail = p.tailroom as usize % 48;
    let seal = |backend: Backend| -> Sealed {
        let mut tx = SecY::new(cfg(backend, Strict)).expect("valid config").tx;
        tx.install_sa(p.an, key, pn, xpn_params(suite))
            .expect("valid SA");
        tx.set_encoding_sa(p.an).expect("AN");
        let mut buf = vec![0xC3u8; head + frame.len() + tail];
        buf[head..head + frame.len()].copy_from_slice(frame);
        let res = tx.protect(&mut buf, head..head + frame.len());
        if res.is_ok() {
            // The SA's next PN moved on; a second frame with the same PN is impossible.
            let next = tx.next_pn(p.an).expect("SA");
            assert_eq!(
                next,
                (pn < suite.max_pn()).then(|| pn + 1),
                "next PN after protect"
            );
        }
        Sealed { buf, res }
    };
    let a = seal(tx_backend);
    let b = seal(rx_backend);
    assert_eq!(a.res, b.res, "backends disagree on protect");
    if a.res.is_ok() {
        assert_eq!(a.buf, b.buf, "backends produce different protected frames");
    }

    // The model of protect's outcome.
    let buf_len = head + frame.len() + tail;
    let model: Result<(Range<usize>, usize, usize), TxDrop> = (|| {
        if frame.len() < 14 {
            return Err(TxDrop::Malformed);
        }
        let (ntags, et_off) = model_tags(frame, vlan).ok_or(TxDrop::Malformed)?;
        if es && frame[6..12] != sci.0[..6] {
            return Err(TxDrop::SourceMismatch);
        }
        let out_len = frame.len() + tag_len + ICV_LEN;
        if mtu.is_some_and(|m| out_len - 14 - 4 * ntags > m) {
            return Err(TxDrop::TooLong);
        }
        let end = head + frame.len();
        let ns = if head >= tag_len && end + ICV_LEN <= buf_len {
            head - tag_len
        } else if head + out_len <= buf_len {
            head
        } else {
            return Err(TxDrop::Malformed);
        };
        Ok((ns..ns + out_len, ntags, et_off))
    })();
    assert_eq!(
        a.res,
        model.clone().map(|m| m.0),
        "protect result vs model (len {}, head {head}, tail {tail})",
        frame.len()
    );
    let Ok((out, ntags, et_off)) = model else {
        assert!(
            a.buf[..head].iter().all(|&x| x == 0xC3),
            "failed protect wrote to the buffer"
        );
        assert_eq!(
            &a.buf[head..head + frame.len()],
            frame,
            "failed protect changed the frame"
        );
        return false;
    };
    assert!(
        a.buf[..out.start].iter().all(|&x| x == 0xC3),
        "protect wrote before its output"
    );
    assert!(
        a.buf[out.end..].iter().all(|&x| x == 0xC3),
        "protect wrote after its output"
    );
    let prot = a.buf[out.clone()].to_vec();

    // The SecTAG and the layout.
    let secure_len = frame.len() - et_off;
    let encrypted = protection != Protection::IntegrityOnly;
    assert_eq!(
        &prot[..et_off],
        &frame[..et_off],
        "DA, SA and clear tags in front"
    );
    let tag = SecTag::new_checked(&prot[et_off..]).expect("tag fits");
    let repr = SecTagRepr::parse(&tag, suite.is_xpn()).expect("protect writes a valid SecTAG");
    let want = SecTagRepr {
        end_station: es,
        scb,
        encrypted,
        an: p.an,
        short_len: if secure_len < 48 { secure_len as u8 } else { 0 },
        pn: pn as u32,
        sci: send_sci.then_some(sci),
    };
    assert_eq!(repr, want, "SecTAG fields");
    let clear = match protection {
        Protection::IntegrityOnly => secure_len,
        Protection::Confidentiality(o) => o.octets().min(secure_len),
    };
    assert_eq!(
        &prot[et_off + tag_len..et_off + tag_len + clear],
        &frame[et_off..et_off + clear],
        "the octets before the confidentiality offset are sent in clear"
    );

    // On the wire: the MAC pads a short frame.
    let mut wire = prot.clone();
    let pad_to = match p.pad {
        1 => MIN_FRAME,
        2 => MIN_FRAME + 4 * ntags,
        _ => 0,
    };
    if wire.len() < pad_to {
        wire.resize(pad_to, 0);
    }

    // The peer.
    let rx_secy = |validate: ValidateFrames| {
        let mut rx = SecY::new(cfg(rx_backend, validate))
            .expect("valid config")
            .rx;
        rx.add_sc(sci).expect("SC");
        if p.decoys && (send_sci || es) {
            for d in ["0200000000010003", "FE2FCD14241B882C", "0000000000000001"] {
                let d: Sci = d.parse().expect("sci");
                if d != sci {
                    rx.add_sc(d).expect("SC");
                    rx.install_sa(d, p.an, key, 1, xpn_params(suite))
                        .expect("SA");
                }
            }
        }
        rx.install_sa(sci, p.an, key, lowest, xpn_params(suite))
            .expect("SA");
        rx
    };
    let mut rx = rx_secy(validate);
    let unchecked = validate == Disabled && !encrypted;
    let (v, got) = validate_checked(&mut rx, &wire, 3, 5);
    let want_v = if unchecked { V::Unchecked } else { V::Ok };
    assert_eq!(v, want_v, "round trip verdict");
    assert_eq!(
        got.as_deref(),
        Some(frame),
        "round trip gives back the frame"
    );
    if !unchecked {
        let s = rx.secy_counters();
        let octets = if encrypted {
            s.in_octets_decrypted
        } else {
            s.in_octets_validated
        };
        assert_eq!(octets, secure_len as u64, "octet counter");
    }

    // The same frame again.
    let p128 = pn as u128;
    let lowest2 = (lowest as u128).max(if unchecked {
        lowest as u128 // unchecked frames commit nothing
    } else {
        (p128 + 1).saturating_sub(window as u128)
    });
    let (v2, got2) = validate_checked(&mut rx, &wire, 0, 0);
    if unchecked {
        // Nothing was committed: the same again (or Late if replay-protected and below).
        assert_eq!(v2, V::Unchecked, "unchecked frame replayed");
    } else {
        let expect2 = replay_expectation(
            suite,
            !p.no_replay_protect,
            mode,
            window,
            p128,
            lowest2,
            &wire,
            validate,
            p.vlan_in_clear,
        );
        assert!(
            expect2.contains(&v2),
            "replay gave {v2:?}, expected one of {expect2:?}"
        );
        if matches!(v2, V::Ok | V::Delayed) {
            assert_eq!(got2.as_deref(), Some(frame));
        }
    }

    // One bit flipped anywhere the ICV covers (not the clear tags, not the padding).
    let covered: Vec<usize> = (0..prot.len())
        .filter(|&i| !(ADDRS..ADDRS + 4 * ntags).contains(&i))
        .collect();
    let bit = p.flip as usize % (covered.len() * 8);
    let mut flipped = wire.clone();
    flipped[covered[bit / 8]] ^= 1 << (bit % 8);
    let mut rx = rx_secy(Strict);
    let (v3, got3) = validate_checked(&mut rx, &flipped, 0, 0);
    assert!(
        v3 != V::Ok && got3.is_none(),
        "frame with bit {bit} flipped accepted: {v3:?}"
    );
    true
}

/// Fuzzing entry point: decodes arbitrary bytes as an MKPDU frame and, when that
/// works, re-encodes and decodes the result. Must never panic.
#[doc(hidden)]
pub fn mkpdu_decode(data: &[u8]) {
    if let Ok(d) = macsec::mka::pdu::decode_frame(data) {
        let _ = d.icv_covered.len();
        for (_t, _v) in
            macsec::mka::pdu::AnnouncementTlvs::new(d.pdu.announcement.as_deref().unwrap_or(&[]))
        {
        }
        if let Ok(bytes) = d.pdu.encode_with_stored_icv() {
            let again = macsec::mka::pdu::decode_frame(&bytes);
            debug_assert!(again.is_ok());
        }
    }
}

/// Fuzzing entry point: drives one participant with MKPDUs built from `data`.
///
/// `data` is a series of chunks, each a 2-octet big-endian length and that many octets.
/// The first octet of a chunk advances the clock (by 50 ms steps). A chunk that decodes
/// as an MKPDU is made to belong to a fixed test CA (destination, EtherType, CKN,
/// algorithm agility), any Distributed SAK in it is re-wrapped with that CA's KEK, the
/// MI EE-EE-…-EE in a peer list or SAK Use Key Identifier is replaced by the
/// participant's own MI (and current MN) or latest KI, and the frame is re-signed with
/// the ICK, so a fuzzer reaches the state machine behind the ICV check. Other chunks go
/// in as they are. Must never panic.
#[doc(hidden)]
pub fn mka_participant(data: &[u8]) {
    use macsec::crypto::SecretKey;
    use macsec::mka::crypto::{wrap_sak, CaKeys};
    use macsec::mka::pdu::{decode_frame, ALGORITHM_AGILITY};
    use macsec::mka::{Ckn, Config, Mi, Participant};
    use macsec::wire::{MacAddr, Sci};
    use std::time::{Duration, Instant};

    let Ok(cak) = SecretKey::from_slice(&[0x11; 16]) else {
        return;
    };
    let Ok(ckn) = Ckn::new(&[0x22; 8]) else {
        return;
    };
    let ca = CaKeys::derive(&cak, &ckn);
    let t0 = Instant::now();
    let Ok(mut p) = Participant::new(Config::new(cak, ckn, Sci([2, 0, 0, 0, 0, 1, 0, 1])), t0)
    else {
        return;
    };
    let mut now = t0;
    let mut rest = data;
    while rest.len() >= 2 {
        let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        rest = &rest[2..];
        let chunk = &rest[..n.min(rest.len())];
        rest = &rest[chunk.len()..];
        if let Some(&b) = chunk.first() {
            now += Duration::from_millis(b as u64 * 50);
            p.handle_timeout(now);
        }
        let frame = match decode_frame(chunk) {
            Ok(d) => {
                let mut m = d.pdu;
                m.dst = MacAddr::PAE_GROUP;
                m.ethertype = macsec::wire::ethernet::ethertype::EAPOL;
                m.basic.ckn = ckn;
                m.basic.algorithm_agility = ALGORITHM_AGILITY;
                // The MI 0xEE…EE stands for ours (with our current MN), so a fuzzer can
                // make peers list us and acknowledge our SAKs.
                const MARK: Mi = Mi([0xEE; 12]);
                for l in [m.live_peers.as_mut(), m.potential_peers.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    for e in l.peers.iter_mut().filter(|e| e.mi == MARK) {
                        e.mi = p.mi();
                        e.mn = p.message_number();
                    }
                }
                let ours = p.latest_ki();
                if let (Some(k), Some(ki)) =
                    (m.sak_use.as_mut().and_then(|s| s.keys.as_mut()), ours)
                {
                    for x in [&mut k.latest_ki, &mut k.old_ki] {
                        if x.mi == MARK {
                            *x = ki;
                        }
                    }
                }
                if let Some(k) = m.distributed_sak.as_mut().and_then(|d| d.key.as_mut()) {
                    if let Ok(sak) = SecretKey::from_slice(&[0x33; 32][..k.wrapped.key_len()]) {
                        k.wrapped = wrap_sak(&ca.kek, &sak);
                    }
                }
                m.encode(&ca.ick).unwrap_or_default()
            }
            Err(_) => chunk.to_vec(),
        };
        let _ = p.handle_mkpdu(now, &frame);
        while p.poll_action().is_some() {}
        while let Some(f) = p.poll_transmit() {
            debug_assert!(decode_frame(&f).is_ok());
        }
        let _ = p.poll_timeout();
        let _ = p.status();
    }
}

/// Arbitrary bytes as a capture file through `macsec pcap encrypt` and `decrypt`: the
/// classic pcap and pcapng readers, FCS handling, the SecY and the output writer. Every
/// input ends in totals or an error, never a panic. Returns the frames the two runs
/// wrote (the replay test checks that seeds reach the frame path). The pcap code reads
/// and writes paths, so the bytes go through a file in the temporary directory.
#[cfg(feature = "pcap")]
pub fn pcap_read(data: &[u8]) -> u64 {
    use macsec::secy::SecYConfig;
    use macsec_forward::pcap::{run, Direction};
    let dir = std::env::temp_dir().join(format!(
        "macsec-fuzz-pcap-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let input = dir.join("in.pcap");
    let output = dir.join("out.pcap");
    std::fs::write(&input, data).expect("write the input");
    let key = &seal_keys().0;
    let sci = Sci::from_u64(0x0200_0000_0001_0001);
    let mut written = 0;
    let mut tx = SecY::new(SecYConfig::new(sci)).expect("SecY");
    tx.tx.install_sa(0, key, 1, None).expect("SA");
    if let Ok(t) = run(&mut tx, Direction::Encrypt, &input, &output) {
        written += t.written;
    }
    let mut rx = SecY::new(SecYConfig::new(Sci::from_u64(0x0200_0000_0002_0001))).expect("SecY");
    rx.rx.add_sc(sci).expect("SC");
    rx.rx.install_sa(sci, 0, key, 1, None).expect("SA");
    if let Ok(t) = run(&mut rx, Direction::Decrypt, &input, &output) {
        written += t.written;
    }
    let _ = std::fs::remove_dir_all(&dir);
    written
}

//! The seal and open cases shared by `benches/secy.rs` (criterion) and
//! `benches/interleaved.rs` (interleaved minimum): the same frames, keys, SecY and the
//! same raw AEAD call on the same split of the same octets.
//!
//! The raw call uses the very expanded key (AWS-LC key context) that the MACsec SA uses,
//! borrowed from the SecY, so the two sides differ only in MACsec's own work. With a key
//! of its own the baseline also compared heap placement: allocating two or three extra
//! keys before a case moved one side's time at 1514 octets from 226 to 254-261 ns.
//!
//! The timed loop is one function, never inlined, that both benches call (criterion
//! through `iter_custom`): each side's per-frame work is inlined into it, as in a pump,
//! and criterion and the interleaved bench time the same machine code. When each bench
//! had its own loop, loop layout alone moved the MACsec open time by 5-9 ns between two
//! builds that differed only in code that never ran.
//!
//! The raw call gets the split MACsec makes: confidentiality: AAD = DA ‖ SA ‖ SecTAG
//! (12 + 16 octets), data = the User Data (frame - 12); integrity only: AAD = the whole
//! frame with its SecTAG, data empty. Every call first copies the input into the reused
//! buffer, for raw and MACsec alike (the plain frame for seal, the protected one for
//! open, which decrypts in place), so the copy cancels out in the comparison. Keys are
//! expanded once, outside the timed code. The open receiver keeps replay protection on
//! with a window of 64: in the standard lower-bound mode the same frame then passes
//! every time, the replay check included.

#![allow(dead_code)] // each bench uses its own part

use macsec::crypto::{AeadKey, AuthError, Backend, CipherSuite, Salt, SecretKey, Ssci};
use macsec::secy::{
    Protection, Receiver, RxVerdict, SecY, SecYConfig, Transmitter, XpnParams, HEADROOM, TAILROOM,
};
use macsec::wire::Sci;
use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

/// Frame sizes (DA ‖ SA ‖ User Data, no FCS) for the default backend.
pub const SIZES: [usize; 3] = [64, 1514, 9014];
/// Frame sizes for the other compiled backend.
pub const PORTABLE_SIZES: [usize; 1] = [1514];
/// SecTAG with SCI.
const TAG: usize = 16;
const ICV: usize = 16;
const ADDRS: usize = 12;
const PN: u64 = 1;

const XPN: XpnParams = XpnParams {
    ssci: Ssci(0x7A30_C118),
    salt: Salt([
        0xE6, 0x30, 0xE8, 0x1A, 0x48, 0xDE, 0x86, 0xA2, 0x1C, 0x66, 0xFA, 0x6D,
    ]),
};

/// Every (backend, suite, integrity-only, sizes) combination the benches run. The
/// portable backend's cost does not depend on the PN width, so it skips XPN.
pub fn combinations() -> Vec<(Backend, CipherSuite, bool, &'static [usize])> {
    let mut out = Vec::new();
    for &backend in Backend::ALL {
        let sizes: &'static [usize] = if backend == Backend::default() {
            &SIZES
        } else {
            &PORTABLE_SIZES
        };
        for suite in CipherSuite::ALL {
            if backend != Backend::default() && suite.is_xpn() {
                continue;
            }
            for integrity in [false, true] {
                out.push((backend, suite, integrity, sizes));
            }
        }
    }
    out
}

/// `{op}_{suite}_{conf|integ}_{backend}`, the group name ratio.py parses.
pub fn group_name(op: &str, suite: CipherSuite, integrity: bool, backend: Backend) -> String {
    let mode = if integrity { "integ" } else { "conf" };
    format!("{op}_{suite}_{mode}_{}", backend.name())
}

fn sci() -> Sci {
    "0200000000010001".parse().unwrap()
}

fn key(suite: CipherSuite) -> SecretKey {
    SecretKey::from_slice(&vec![0x5Au8; suite.key_len()]).unwrap()
}

fn protection(integrity: bool) -> Protection {
    if integrity {
        Protection::IntegrityOnly
    } else {
        Protection::default()
    }
}

/// DA ‖ SA ‖ 0x0800 ‖ payload, `len` octets.
fn plain_frame(len: usize) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    f.extend((0..len - f.len()).map(|i| i as u8));
    f
}

fn secy(suite: CipherSuite, backend: Backend, integrity: bool) -> (Transmitter, Receiver) {
    let mut s = SecY::new({
        let mut conf = SecYConfig::default();
        conf.cipher = suite;
        conf.protection = protection(integrity);
        conf.backend = backend;
        conf.sci = sci();
        conf.send_sci = true;
        conf.replay_protect = true;
        conf.replay_window = 64;
        conf
    })
    .unwrap();
    let xpn = suite.is_xpn().then_some(XPN);
    s.tx.install_sa(0, &key(suite), PN, xpn).unwrap();
    s.rx.add_sc(sci()).unwrap();
    s.rx.install_sa(sci(), 0, &key(suite), PN, xpn).unwrap();
    s.split()
}

/// The IV of the first frame, as 802.1AE 14.5/14.7 builds it.
fn iv(suite: CipherSuite) -> [u8; 12] {
    let mut iv = [0u8; 12];
    if suite.is_xpn() {
        iv[..4].copy_from_slice(&XPN.ssci.0.to_be_bytes());
        iv[4..].copy_from_slice(&PN.to_be_bytes());
        for (o, s) in iv.iter_mut().zip(XPN.salt.0) {
            *o ^= s;
        }
    } else {
        iv[..8].copy_from_slice(&sci().0);
        iv[8..].copy_from_slice(&(PN as u32).to_be_bytes());
    }
    iv
}

/// The split MACsec makes of a protected `len`-octet frame at the start of `buf`:
/// (AAD, data to encrypt or decrypt).
#[inline(always)]
fn raw_split(buf: &mut [u8], len: usize, integrity: bool) -> (&mut [u8], &mut [u8]) {
    if integrity {
        let (aad, rest) = buf.split_at_mut(len + TAG);
        (aad, &mut rest[..0])
    } else {
        let (aad, rest) = buf.split_at_mut(ADDRS + TAG);
        (aad, &mut rest[..len - ADDRS])
    }
}

/// Seal one `len`-octet frame: MACsec `Transmitter::protect`, or the raw AEAD call.
pub struct SealCase {
    len: usize,
    integrity: bool,
    plain: Vec<u8>,
    buf: Vec<u8>,
    iv: [u8; 12],
    tx: Transmitter,
}

/// The raw AEAD call of a case, with the MACsec SA's own key: `input` (the plain frame
/// for [`RawAead::seal`], the protected one for [`RawAead::open`]) is copied to where
/// MACsec has it, then split as MACsec splits it.
pub struct RawAead<'a> {
    len: usize,
    integrity: bool,
    input: &'a [u8],
    buf: &'a mut [u8],
    iv: [u8; 12],
    key: &'a AeadKey,
}

impl RawAead<'_> {
    /// Seal: the AAD is the 12 address octets plus a 16-octet SecTAG in front of the
    /// User Data.
    #[inline(always)]
    pub fn seal(&mut self) -> [u8; 16] {
        let len = self.len;
        self.buf[HEADROOM..HEADROOM + len].copy_from_slice(self.input);
        let (aad, data) = raw_split(self.buf, len, self.integrity);
        self.key.seal_in_place(&self.iv, aad, data).unwrap()
    }

    /// Open: the same protected octets, the same split, the ICV from the frame.
    #[inline(always)]
    pub fn open(&mut self) -> Result<(), AuthError> {
        let len = self.len;
        self.buf.copy_from_slice(self.input);
        let mut tag = [0u8; ICV];
        tag.copy_from_slice(&self.buf[len + TAG..]);
        let (aad, data) = raw_split(self.buf, len, self.integrity);
        self.key.open_in_place(&self.iv, aad, data, &tag)
    }
}

/// Times `n` calls of `f`. Never inlined, and the only timed loop of both benches, so
/// criterion (through `iter_custom`) and the interleaved bench time the same machine
/// code, each side with the per-frame call inlined into its own loop as in a pump.
#[inline(never)]
fn timed<R>(n: u64, mut f: impl FnMut() -> R) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    t.elapsed()
}

impl RawAead<'_> {
    /// `n` raw seals.
    pub fn seal_batch(&mut self, n: u64) -> Duration {
        timed(n, || self.seal())
    }

    /// `n` raw opens.
    pub fn open_batch(&mut self, n: u64) -> Duration {
        timed(n, || self.open().unwrap())
    }
}

impl SealCase {
    /// A fresh transmit SA (PN 1) and the raw key of the same suite and backend.
    pub fn new(suite: CipherSuite, integrity: bool, backend: Backend, len: usize) -> SealCase {
        SealCase {
            len,
            integrity,
            plain: plain_frame(len),
            buf: vec![0u8; HEADROOM + len + TAILROOM],
            iv: iv(suite),
            tx: secy(suite, backend, integrity).0,
        }
    }

    /// The raw AEAD call on this case's buffer, with the transmit SA's key.
    pub fn raw(&mut self) -> RawAead<'_> {
        RawAead {
            len: self.len,
            integrity: self.integrity,
            input: &self.plain,
            buf: &mut self.buf,
            iv: self.iv,
            key: self.tx.sa_aead_key(0).expect("SA 0 installed"),
        }
    }

    /// `n` MACsec seals.
    pub fn macsec_batch(&mut self, n: u64) -> Duration {
        timed(n, || self.macsec())
    }

    /// MACsec protection of the same frame (the PN counts up).
    #[inline(always)]
    pub fn macsec(&mut self) -> Range<usize> {
        let len = self.len;
        self.buf[HEADROOM..HEADROOM + len].copy_from_slice(&self.plain);
        self.tx
            .protect(&mut self.buf, HEADROOM..HEADROOM + len)
            .unwrap()
    }
}

/// Open one protected frame: MACsec `Receiver::validate`, or the raw AEAD call.
pub struct OpenCase {
    len: usize,
    integrity: bool,
    prot: Vec<u8>,
    buf: Vec<u8>,
    iv: [u8; 12],
    rx: Receiver,
}

impl OpenCase {
    /// A frame protected with PN 1 and a receiver that accepts it again and again; both
    /// paths are checked to open it before any timing.
    pub fn new(suite: CipherSuite, integrity: bool, backend: Backend, len: usize) -> OpenCase {
        let (mut tx, rx) = secy(suite, backend, integrity);
        let mut buf = vec![0u8; HEADROOM + len + TAILROOM];
        buf[HEADROOM..HEADROOM + len].copy_from_slice(&plain_frame(len));
        let r = tx.protect(&mut buf, HEADROOM..HEADROOM + len).unwrap();
        let prot = buf[r].to_vec();
        assert_eq!(prot.len(), len + TAG + ICV);
        let mut case = OpenCase {
            len,
            integrity,
            buf: vec![0u8; prot.len()],
            prot,
            iv: iv(suite),
            rx,
        };
        case.raw().open().expect("raw open of the protected frame");
        for _ in 0..2 {
            case.buf.copy_from_slice(&case.prot);
            let n = case.buf.len();
            assert_eq!(case.rx.validate(&mut case.buf, 0..n).0, RxVerdict::Ok);
        }
        case
    }

    /// The raw AEAD call on this case's buffer, with the receive SA's key.
    pub fn raw(&mut self) -> RawAead<'_> {
        RawAead {
            len: self.len,
            integrity: self.integrity,
            input: &self.prot,
            buf: &mut self.buf,
            iv: self.iv,
            key: self.rx.sa_aead_key(sci(), 0).expect("SA 0 installed"),
        }
    }

    /// `n` MACsec opens.
    pub fn macsec_batch(&mut self, n: u64) -> Duration {
        timed(n, || self.macsec().unwrap())
    }

    /// MACsec validation of the same frame.
    #[inline(always)]
    pub fn macsec(&mut self) -> Option<Range<usize>> {
        self.buf.copy_from_slice(&self.prot);
        let n = self.buf.len();
        let (v, r) = self.rx.validate(&mut self.buf, 0..n);
        debug_assert_eq!(v, RxVerdict::Ok);
        r
    }
}

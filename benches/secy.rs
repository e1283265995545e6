//! MACsec seal (`Transmitter::protect`) and open (`Receiver::validate`) against the raw
//! AES-GCM call of the same backend on the same octets, in the same criterion group, so
//! the SecY's overhead reads as a ratio (see benches/ratio.py).
//!
//! ```text
//! nice cargo bench --bench secy -- --warm-up-time 1 --measurement-time 3
//! python3 benches/ratio.py
//! ```
//!
//! Groups are named `{seal|open}_{suite}_{conf|integ}_{backend}`, with the functions
//! `raw` and `macsec` and the frame size (DA ‖ SA ‖ User Data, no FCS) as parameter.
//! The raw call gets the split MACsec makes: confidentiality: AAD = DA ‖ SA ‖ SecTAG
//! (12 + 16 octets), data = the User Data (frame - 12); integrity only: AAD = the whole
//! frame with its SecTAG, data empty. Every iteration first copies the input into the
//! reused buffer, for raw and MACsec alike (the plain frame for seal, the protected one
//! for open, which decrypts in place), so the copy cancels out in the comparison. Keys
//! are expanded outside the timed loop. The open receiver keeps replay protection on
//! with a window of 64: in the standard lower-bound mode the same frame then passes
//! every time, the replay check included.
//!
//! The default backend (aws-lc) runs at 64, 1514 and 9014 octets; the other compiled
//! backend (portable) at 1514.
//!
//! On a shared machine the wall-clock ratios move by +-20% between runs; for an exact,
//! repeatable measure of what MACsec adds, `python3 benches/icount.py` counts the
//! instructions per frame of the same benchmarks under callgrind.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use macsec::crypto::{AeadKey, Backend, CipherSuite, Salt, SecretKey, Ssci};
use macsec::secy::{
    Protection, Receiver, RxVerdict, SecY, SecYConfig, Transmitter, XpnParams, HEADROOM, TAILROOM,
};
use macsec::wire::Sci;
use std::hint::black_box;

const SIZES: [usize; 3] = [64, 1514, 9014];
const PORTABLE_SIZES: [usize; 1] = [1514];
const SUITES: [CipherSuite; 4] = CipherSuite::ALL;
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

fn sci() -> Sci {
    "0200000000010001".parse().unwrap()
}

fn key(suite: CipherSuite) -> SecretKey {
    SecretKey::from_slice(&vec![0x5Au8; suite.key_len()]).unwrap()
}

/// DA ‖ SA ‖ 0x0800 ‖ payload, `len` octets.
fn plain_frame(len: usize) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    f.extend((0..len - f.len()).map(|i| i as u8));
    f
}

fn secy(suite: CipherSuite, backend: Backend, protection: Protection) -> (Transmitter, Receiver) {
    let mut s = SecY::new(SecYConfig {
        cipher: suite,
        protection,
        backend,
        sci: sci(),
        send_sci: true,
        replay_protect: true,
        replay_window: 64,
        ..SecYConfig::default()
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

fn bench_one(
    c: &mut Criterion,
    suite: CipherSuite,
    integrity: bool,
    backend: Backend,
    sizes: &[usize],
) {
    let protection = if integrity {
        Protection::IntegrityOnly
    } else {
        Protection::default()
    };
    let mode = if integrity { "integ" } else { "conf" };
    let aead = AeadKey::new(backend, &key(suite));
    let iv = iv(suite);

    // Seal.
    let mut g = c.benchmark_group(format!("seal_{suite}_{mode}_{}", backend.name()));
    for &len in sizes {
        g.throughput(Throughput::Bytes(len as u64));
        let plain = plain_frame(len);
        let mut buf = vec![0u8; HEADROOM + len + TAILROOM];
        // Raw: the frame is copied to where MACsec would put it; the AAD is the 12 address
        // octets plus a 16-octet SecTAG in front of the User Data.
        g.bench_function(BenchmarkId::new("raw", len), |b| {
            b.iter(|| {
                buf[HEADROOM..HEADROOM + len].copy_from_slice(&plain);
                let (aad, rest) = if integrity {
                    buf.split_at_mut(len + TAG)
                } else {
                    buf.split_at_mut(ADDRS + TAG)
                };
                let data = if integrity {
                    &mut rest[..0]
                } else {
                    &mut rest[..len - ADDRS]
                };
                black_box(aead.seal_in_place(&iv, aad, data).unwrap())
            })
        });
        let (mut tx, _) = secy(suite, backend, protection);
        g.bench_function(BenchmarkId::new("macsec", len), |b| {
            b.iter(|| {
                buf[HEADROOM..HEADROOM + len].copy_from_slice(&plain);
                black_box(tx.protect(&mut buf, HEADROOM..HEADROOM + len).unwrap())
            })
        });
    }
    g.finish();

    // Open.
    let mut g = c.benchmark_group(format!("open_{suite}_{mode}_{}", backend.name()));
    for &len in sizes {
        g.throughput(Throughput::Bytes(len as u64));
        let (mut tx, mut rx) = secy(suite, backend, protection);
        let plain = plain_frame(len);
        let mut buf = vec![0u8; HEADROOM + len + TAILROOM];
        buf[HEADROOM..HEADROOM + len].copy_from_slice(&plain);
        let r = tx.protect(&mut buf, HEADROOM..HEADROOM + len).unwrap();
        let prot = buf[r].to_vec();
        assert_eq!(prot.len(), len + TAG + ICV);
        let mut buf = vec![0u8; prot.len()];
        // Raw: the same protected octets, the same split, the ICV from the frame.
        let open_raw = |buf: &mut [u8]| {
            let mut tag = [0u8; ICV];
            tag.copy_from_slice(&buf[len + TAG..]);
            let (aad, rest) = if integrity {
                buf.split_at_mut(len + TAG)
            } else {
                buf.split_at_mut(ADDRS + TAG)
            };
            let data = if integrity {
                &mut rest[..0]
            } else {
                &mut rest[..len - ADDRS]
            };
            aead.open_in_place(&iv, aad, data, &tag)
        };
        buf.copy_from_slice(&prot);
        open_raw(&mut buf).expect("raw open of the protected frame");
        g.bench_function(BenchmarkId::new("raw", len), |b| {
            b.iter(|| {
                buf.copy_from_slice(&prot);
                black_box(open_raw(&mut buf)).unwrap()
            })
        });
        for _ in 0..2 {
            buf.copy_from_slice(&prot);
            let n = buf.len();
            assert_eq!(rx.validate(&mut buf, 0..n).0, RxVerdict::Ok);
        }
        g.bench_function(BenchmarkId::new("macsec", len), |b| {
            b.iter(|| {
                buf.copy_from_slice(&prot);
                let n = buf.len();
                let (v, r) = rx.validate(&mut buf, 0..n);
                debug_assert_eq!(v, RxVerdict::Ok);
                black_box(r)
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    for &backend in Backend::ALL {
        let sizes: &[usize] = if backend == Backend::default() {
            &SIZES
        } else {
            &PORTABLE_SIZES
        };
        for suite in SUITES {
            if backend != Backend::default() && suite.is_xpn() {
                // The portable backend's cost does not depend on the PN width.
                continue;
            }
            for integrity in [false, true] {
                bench_one(c, suite, integrity, backend, sizes);
            }
        }
    }
}

criterion_group!(secy_benches, benches);
criterion_main!(secy_benches);

//! The per-frame paths allocate nothing: after setup, `protect` and `validate` (valid
//! frames and every kind of rejected one) make no heap allocation, for every suite,
//! protection mode, backend, SCI mode and clear-tag count.
//!
//! A counting `#[global_allocator]` wraps the system allocator for this whole test
//! binary. The counter is thread-local, so tests running in parallel on other threads
//! do not disturb the count; it is a const-initialised `Cell` with no destructor, so
//! reading it never allocates and works during thread teardown.

use macsec::crypto::{Backend, CipherSuite, Salt, SecretKey, Ssci};
use macsec::secy::{
    ConfidentialityOffset, Protection, ReplayMode, RxVerdict, SecY, SecYConfig, TxDrop,
    ValidateFrames, XpnParams,
};
use macsec::wire::Sci;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // try_with: the counter may already be gone while a thread is being torn down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

/// Allocations made by this thread so far.
fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// the `GlobalAlloc` contract holds exactly as it does for `System`; counting touches
// only a thread-local `Cell` and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through this
        // wrapper) with `layout`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`, as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations this thread made meanwhile.
fn count(f: impl FnOnce()) -> u64 {
    let before = allocs();
    f();
    allocs() - before
}

#[test]
fn the_counter_sees_allocations() {
    assert_eq!(count(|| {}), 0);
    let n = count(|| {
        std::hint::black_box(vec![1u8; 100]);
    });
    assert_eq!(n, 1);
    let n = count(|| {
        let mut v: Vec<u8> = Vec::with_capacity(1);
        v.extend_from_slice(&[0; 64]);
        std::hint::black_box(v);
    });
    assert_eq!(n, 2, "alloc + realloc");
}

const XPN: XpnParams = XpnParams {
    ssci: Ssci(7),
    salt: Salt([9; 12]),
};

fn frame(len: usize, vlan_tags: usize) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    for i in 0..vlan_tags {
        f.extend_from_slice(&[0x81, 0x00, 0, i as u8 + 1]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(len.max(f.len()), 0x33);
    f
}

struct Case {
    suite: CipherSuite,
    protection: Protection,
    backend: Backend,
    /// 0: send_sci, 1: end station, 2: implicit SCI.
    sci_mode: u8,
    vlan: u8,
    mode: ReplayMode,
}

fn check_case(c: &Case) {
    let sci: Sci = "0200000000010001".parse().unwrap();
    let cfg = {
        let mut conf = SecYConfig::default();
        conf.cipher = c.suite;
        conf.protection = c.protection;
        conf.backend = c.backend;
        conf.sci = sci;
        conf.send_sci = c.sci_mode == 0;
        conf.end_station = c.sci_mode == 1;
        conf.vlan_in_clear = c.vlan;
        conf.replay_window = 32;
        conf.replay_mode = c.mode;
        conf.// 9014-octet frames with a 16-octet SecTAG and ICV fit exactly.
        mtu = Some(9032);
        conf
    };
    let key = SecretKey::from_slice(&vec![0x42; c.suite.key_len()]).unwrap();
    let xpn = c.suite.is_xpn().then_some(XPN);
    let mut a = SecY::new(cfg.clone()).unwrap();
    a.tx.install_sa(1, &key, 1, xpn).unwrap();
    a.tx.set_encoding_sa(1).unwrap();
    let mut b = SecY::new({
        let mut conf = cfg.clone();
        conf.sci = "0200000000020001".parse().unwrap();
        conf
    })
    .unwrap();
    b.rx.add_sc(sci).unwrap();
    b.rx.install_sa(sci, 1, &key, 1, xpn).unwrap();
    let mut check = SecY::new({
        let mut conf = cfg;
        conf.validate = ValidateFrames::Check;
        conf.replay_protect = false;
        conf.sci = "0200000000020001".parse().unwrap();
        conf
    })
    .unwrap();
    check.rx.add_sc(sci).unwrap();
    check.rx.install_sa(sci, 1, &key, 1, xpn).unwrap();

    let mut too_long = vec![0u8; 16 + 9100 + 16];
    too_long[16..16 + 14].copy_from_slice(&frame(14, 0));
    for len in [14usize, 60, 64, 1514, 9014] {
        let plain = frame(len, c.vlan as usize);
        let mut buf = vec![0u8; 16 + plain.len() + 16];
        let mut saved = vec![0u8; buf.len()];
        let mut tampered = vec![0u8; buf.len()];
        let n = count(|| {
            for _ in 0..3 {
                buf[16..16 + plain.len()].copy_from_slice(&plain);
                let r = a.tx.protect(&mut buf, 16..16 + plain.len()).unwrap();
                saved.copy_from_slice(&buf);
                let (v, out) = b.rx.validate(&mut buf, r.clone());
                assert_eq!(v, RxVerdict::Ok);
                assert_eq!(&buf[out.unwrap()], &plain[..]);
                // Replayed (duplicates pass the lower bound only in LowerBound mode).
                buf.copy_from_slice(&saved);
                let (v, _) = b.rx.validate(&mut buf, r.clone());
                assert!(matches!(v, RxVerdict::Ok | RxVerdict::Late));
                // Tampered: NotValid (Strict) and, integrity only under Check, Invalid.
                tampered.copy_from_slice(&saved);
                tampered[r.end - 1] ^= 1;
                buf.copy_from_slice(&tampered);
                let (v, _) = b.rx.validate(&mut buf, r.clone());
                assert!(matches!(v, RxVerdict::NotValid | RxVerdict::Late));
                buf.copy_from_slice(&tampered);
                let (v, _) = check.rx.validate(&mut buf, r.clone());
                assert!(matches!(v, RxVerdict::NotValid | RxVerdict::Invalid));
                // Malformed SecTAG, untagged frame, runt.
                buf.copy_from_slice(&saved);
                buf[r.start + 12 + 4 * c.vlan as usize + 2] |= 0x80;
                let (v, _) = b.rx.validate(&mut buf, r.clone());
                assert!(matches!(v, RxVerdict::BadTag(_)));
                let (v, _) = b.rx.validate(&mut buf, 0..r.start + 14);
                assert!(!v.is_delivered());
                let (v, _) = b.rx.validate(&mut buf, 0..5);
                assert!(matches!(v, RxVerdict::BadTag(_)));
            }
            // Transmit refusals.
            assert_eq!(a.tx.protect(&mut buf, 0..5), Err(TxDrop::Malformed));
            let n = too_long.len() - 32;
            assert_eq!(
                a.tx.protect(&mut too_long, 16..16 + n),
                Err(TxDrop::TooLong)
            );
        });
        assert_eq!(
            n,
            0,
            "{} {:?} {} sci_mode {} vlan {} {:?}, {len} octets: {n} allocations",
            c.suite,
            c.protection,
            c.backend.name(),
            c.sci_mode,
            c.vlan,
            c.mode
        );
    }
}

#[test]
fn protect_and_validate_do_not_allocate() {
    let mut cases = 0;
    for suite in CipherSuite::ALL {
        for protection in [
            Protection::IntegrityOnly,
            Protection::Confidentiality(ConfidentialityOffset::Zero),
            Protection::Confidentiality(ConfidentialityOffset::Thirty),
            Protection::Confidentiality(ConfidentialityOffset::Fifty),
        ] {
            for &backend in Backend::ALL {
                for (sci_mode, vlan, mode) in [
                    (0u8, 0u8, ReplayMode::LowerBound),
                    (1, 1, ReplayMode::RejectDuplicates),
                    (2, 2, ReplayMode::LowerBound),
                ] {
                    check_case(&Case {
                        suite,
                        protection,
                        backend,
                        sci_mode,
                        vlan,
                        mode,
                    });
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 4 * 4 * 3 * Backend::ALL.len());
}

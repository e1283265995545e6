//! MACsec seal (`Transmitter::protect`) and open (`Receiver::validate`) against the raw
//! AES-GCM call of the same backend on the same octets, in the same criterion group, so
//! the SecY's overhead reads as a ratio (see benches/ratio.py).
//!
//! ```text
//! nice cargo bench -p macsec --features bench-internals --bench secy -- --warm-up-time 1 --measurement-time 3
//! python3 benches/ratio.py
//! ```
//!
//! Groups are named `{seal|open}_{suite}_{conf|integ}_{backend}`, with the functions
//! `raw` and `macsec` and the frame size (DA ‖ SA ‖ User Data, no FCS) as parameter.
//! The cases (frames, keys, the raw call's split) are in `benches/common/mod.rs`, shared
//! with `benches/interleaved.rs`.
//!
//! The default backend (aws-lc) runs at 64, 1514 and 9014 octets; the other compiled
//! backend (portable) at 1514.
//!
//! Criterion times `raw` and then `macsec`, seconds apart; on a shared machine a burst
//! of other work in either moves a ratio by several percent. `cargo bench --bench
//! interleaved` times the same cases alternately, round after round, and is the steadier
//! ratio. For an exact, repeatable measure of what MACsec adds, `python3
//! benches/icount.py` counts the instructions per frame under callgrind.

mod common;

use common::{combinations, group_name, OpenCase, SealCase};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use macsec::crypto::{Backend, CipherSuite};

fn bench_one(
    c: &mut Criterion,
    suite: CipherSuite,
    integrity: bool,
    backend: Backend,
    sizes: &[usize],
) {
    let mut g = c.benchmark_group(group_name("seal", suite, integrity, backend));
    for &len in sizes {
        g.throughput(Throughput::Bytes(len as u64));
        let mut case = SealCase::new(suite, integrity, backend, len);
        g.bench_function(BenchmarkId::new("raw", len), |b| {
            let mut raw = case.raw();
            b.iter_custom(|n| raw.seal_batch(n))
        });
        g.bench_function(BenchmarkId::new("macsec", len), |b| {
            b.iter_custom(|n| case.macsec_batch(n))
        });
    }
    g.finish();

    let mut g = c.benchmark_group(group_name("open", suite, integrity, backend));
    for &len in sizes {
        g.throughput(Throughput::Bytes(len as u64));
        let mut case = OpenCase::new(suite, integrity, backend, len);
        g.bench_function(BenchmarkId::new("raw", len), |b| {
            let mut raw = case.raw();
            b.iter_custom(|n| raw.open_batch(n))
        });
        g.bench_function(BenchmarkId::new("macsec", len), |b| {
            b.iter_custom(|n| case.macsec_batch(n))
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    for (backend, suite, integrity, sizes) in combinations() {
        bench_one(c, suite, integrity, backend, sizes);
    }
}

criterion_group!(secy_benches, benches);
criterion_main!(secy_benches);

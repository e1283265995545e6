//! Cost of completing a TCP checksum left for offload (`wire::csum::complete`), per frame
//! size, next to a memcpy of the same frame as a baseline, so
//! the result reads as a ratio.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use macsec_forward::csum;
use std::hint::black_box;

/// An untagged IPv4/TCP frame of `len` octets.
fn tcp_frame(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..20].copy_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
    let tcp = &mut f[34..];
    tcp[12] = 0x50;
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    f
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("csum_complete");
    for len in [64usize, 1514, 9014] {
        let frame = tcp_frame(len);
        g.throughput(Throughput::Bytes(len as u64));
        let mut buf = frame.clone();
        g.bench_with_input(BenchmarkId::new("complete", len), &len, |b, _| {
            b.iter(|| csum::complete(black_box(&mut buf)).unwrap())
        });
        let mut dst = vec![0u8; len];
        g.bench_with_input(BenchmarkId::new("memcpy_baseline", len), &len, |b, _| {
            b.iter(|| dst.copy_from_slice(black_box(&frame)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! An impairment relay: joins two interfaces of one namespace in-process, passing every
//! frame from one to the other, and drops what the test asks for while both carriers
//! stay up (a gray or silent failure, which neither `ip link set down` nor a bridge can
//! make, and this kernel has no netem).
//!
//! Two threads (one per direction), each reading one interface's ring with the
//! forwarder's own `AF_PACKET` port and writing the other's.

use macsec_forward::io::afpacket::{AfPacketRx, AfPacketTx, RxConfig, RxRing, TxConfig};
use macsec_forward::io::iface::Interface;
use macsec_forward::io::{RxPort, TxPort, TX_HEADROOM};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Shared state of one direction.
#[derive(Debug, Default)]
struct Dir {
    /// Drop probability in parts per million.
    loss_ppm: AtomicU32,
    blackhole: AtomicBool,
    passed: AtomicU64,
    dropped: AtomicU64,
}

/// A running relay; stops when dropped.
#[derive(Debug)]
pub struct Impairment {
    dirs: [Arc<Dir>; 2],
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Impairment {
    /// Relays between `a` and `b` in namespace `ns` until dropped.
    pub fn start(ns: &str, a: &str, b: &str) -> std::io::Result<Impairment> {
        let stop = Arc::new(AtomicBool::new(false));
        let dirs = [Arc::new(Dir::default()), Arc::new(Dir::default())];
        let mut threads = Vec::new();
        for (k, (from, to)) in [(a, b), (b, a)].into_iter().enumerate() {
            let (rx, tx) = macsec_forward::io::netns::run_in(ns, || -> std::io::Result<_> {
                let fi = Interface::lookup(from).map_err(std::io::Error::other)?;
                let ti = Interface::lookup(to).map_err(std::io::Error::other)?;
                let cfg = RxConfig {
                    ring: RxRing::v2_sized(fi.mtu as usize + 64, 8 << 20),
                    copy_oversized: true,
                    ..RxConfig::default()
                };
                let rx = AfPacketRx::open(&fi, &cfg).map_err(std::io::Error::other)?;
                let tx =
                    AfPacketTx::open(&ti, &TxConfig::default()).map_err(std::io::Error::other)?;
                Ok((rx, tx))
            })??;
            let (d, s) = (dirs[k].clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("impair-{k}"))
                    .spawn(move || relay(rx, tx, &d, &s, 0x9E37_79B9_7F4A_7C15 ^ k as u64))?,
            );
        }
        Ok(Impairment {
            dirs,
            stop,
            threads,
        })
    }

    /// Drops every frame (both directions) while `on`; carriers stay up.
    pub fn set_blackhole(&self, on: bool) {
        for d in &self.dirs {
            d.blackhole.store(on, Ordering::Relaxed);
        }
    }

    /// Drops each frame with probability `p` (each direction independently).
    pub fn set_loss(&self, p: f64) {
        let ppm = (p.clamp(0.0, 1.0) * 1e6) as u32;
        for d in &self.dirs {
            d.loss_ppm.store(ppm, Ordering::Relaxed);
        }
    }

    /// (passed, dropped) frames of direction `k` (0: a to b, 1: b to a).
    pub fn counts(&self, k: usize) -> (u64, u64) {
        let d = &self.dirs[k & 1];
        (
            d.passed.load(Ordering::Relaxed),
            d.dropped.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Impairment {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn relay(mut rx: AfPacketRx, mut tx: AfPacketTx, d: &Dir, stop: &AtomicBool, seed: u64) {
    let mut rng = seed | 1;
    while !stop.load(Ordering::Relaxed) {
        let r = rx.recv_batch(64, Duration::from_millis(20), &mut |f| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let ppm = d.loss_ppm.load(Ordering::Relaxed);
            if d.blackhole.load(Ordering::Relaxed) || (rng % 1_000_000) < u64::from(ppm) {
                d.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if f.truncated {
                return;
            }
            let data = f.data;
            let _ = tx.send_with(&mut |slot| {
                let out = slot.get_mut(TX_HEADROOM..TX_HEADROOM + data.len())?;
                out.copy_from_slice(data);
                Some(TX_HEADROOM..TX_HEADROOM + data.len())
            });
            d.passed.fetch_add(1, Ordering::Relaxed);
        });
        if r.is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = tx.flush();
    }
}

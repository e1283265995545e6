//! Running setup code inside a network namespace.
//!
//! A packet socket, like any socket, belongs to the network namespace of the thread that
//! created it and keeps using it wherever it is used afterwards. So ports for interfaces
//! in another namespace can be opened by running the opening code on a short-lived thread
//! that has joined that namespace, then used from any thread:
//!
//! ```no_run
//! use macsec_forward::io::afpacket::{AfPacketRx, RxConfig};
//! use macsec_forward::io::iface::Interface;
//! use macsec_forward::io::netns;
//!
//! let rx = netns::run_in("red", || -> Result<AfPacketRx, macsec_forward::io::SetupError> {
//!     let ifc = Interface::lookup("veth0")?;
//!     AfPacketRx::open(&ifc, &RxConfig::default())
//! })??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Needs `CAP_SYS_ADMIN` (root). The calling thread itself never changes namespace.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use super::sys;

/// The path of a named namespace: `name` as is if it contains a `/`, else
/// `/run/netns/NAME` (where `ip netns add NAME` puts it).
pub fn path_of(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        PathBuf::from("/run/netns").join(name)
    }
}

/// Runs `f` on a new thread inside the network namespace `ns` (see [`path_of`]) and
/// returns its result. Sockets `f` creates stay in that namespace.
///
/// Fails if the namespace cannot be opened or entered; a panic in `f` is propagated.
pub fn run_in<T, F>(ns: &str, f: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let path = path_of(ns);
    let file = File::open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
    std::thread::scope(|s| {
        let h = s.spawn(move || -> io::Result<T> {
            sys::setns_net(&file)
                .map_err(|e| io::Error::new(e.kind(), format!("setns {}: {e}", path.display())))?;
            Ok(f())
        });
        match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

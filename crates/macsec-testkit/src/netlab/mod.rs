//! In-process replacements for the programs a network-namespace lab used to run:
//! `ip netns` ([`netns`]), `ip link` / `ip addr` / `ip route` ([`link`], [`ip`]),
//! `sysctl` ([`sysctl`]), `ping` ([`ping`]), `kill` / `timeout` ([`proc`]), `setpriv`
//! ([`privs`]) and `ethtool -k` / `-K` ([`ethtool`], over the kernel's ethtool netlink
//! family; the forwarder's own ioctl code in `macsec_forward::io::iface` is the other
//! way).
//!
//! Everything is synchronous and starts no outside program. Operations on a namespace
//! take its name (as `ip netns add` gives it) and run on a short-lived thread that has
//! joined it (`macsec_forward::io::netns::run_in`); the calling thread never changes
//! namespace. Nearly everything needs root (`CAP_SYS_ADMIN` and `CAP_NET_ADMIN`;
//! `CAP_NET_RAW` for [`ping`]).

mod error;
mod nl;

pub mod ethtool;
pub mod ip;
pub mod link;
pub mod netns;
pub mod ping;
pub mod privs;
pub mod proc;
pub mod sysctl;

pub use error::{Error, Result};

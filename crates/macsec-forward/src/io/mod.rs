//! Packet I/O: the batch-shaped port seam and its implementations.
//!
//! The forwarder moves frames between a *plain* and a *secure* interface with one thread
//! per direction. Each thread owns the receive half of one interface and the transmit half
//! of the other, so the seam is two independent traits:
//!
//! * [`RxPort`]: hands received frames, in batches, to a callback that borrows them in
//!   place (no copy, no allocation).
//! * [`TxPort`]: offers a transmit buffer (a TX ring slot) to a callback that builds the
//!   outgoing frame in it; [`TxPort::flush`] pushes the batch to the kernel.
//!
//! The hot loop of one direction is then:
//!
//! ```ignore
//! rx.recv_each(64, timeout, |f| {
//!     let _queued = tx.send_slot(|slot| {
//!         // protect or validate out of place: read f.data (the receive slot), write
//!         // the transmit slot, in the cipher's one pass
//!         let r = secy.protect_into(&f.data[..12], &f.data[12..], &mut slot[TX_HEADROOM..]);
//!         r.ok().map(|r| r.start + TX_HEADROOM..r.end + TX_HEADROOM)
//!     });
//! })?;
//! tx.flush()?;
//! ```
//!
//! `recv_each` and `send_slot` take the callbacks by type, so the frame loop has no
//! call through a pointer; `recv_batch` and `send_with` are the same with `dyn`
//! callbacks, for ports used as trait objects.
//!
//! Implementations:
//!
//! * [`afpacket`]: Linux `AF_PACKET` with a memory-mapped RX ring and a `TPACKET_V2` TX
//!   ring (needs `CAP_NET_RAW`; interface changes need `CAP_NET_ADMIN`). The RX ring is
//!   `TPACKET_V2` by default: the kernel wakes the reader per frame, so an idle port
//!   adds tens of microseconds, not the millisecond or more that a `TPACKET_V3` block
//!   timeout costs ([`afpacket::RxRing`] chooses; V3 is denser for small frames and holds
//!   far longer bursts for the same memory).
//! * [`mem`]: in-memory wires with a deterministic fault injector, for root-free tests.
//!
//! Around them: [`iface`] (interface lookup, MTU, offload checks and fixes),
//! [`control`] (a low-rate socket for EAPOL/MKPDUs) and [`netns`] (run setup code inside
//! a network namespace).
//!
//! # Scaling out
//!
//! One thread per direction is the default. When one core per direction is not enough,
//! open one [`afpacket::AfPacketRx`] per worker thread on the same interface with the same
//! [`afpacket::Fanout`] group (hash mode keeps each flow on one socket) and give each
//! worker its own [`afpacket::AfPacketTx`] (each ring is allocated in full when it is
//! opened: 9 MiB per default V2 RX ring, 4 MiB per default TX ring). The SecY state then
//! has to be shared: the TX packet number becomes an atomic `fetch_add`, the RX replay
//! window is checked before decryption and committed after, and the peer's replay window
//! must cover the reordering that parallel transmit queues cause (frames of different
//! flows can overtake each other).

pub mod afpacket;
pub mod control;
pub mod iface;
pub mod linkwatch;
pub mod netns;
mod sys;

use std::ops::Range;
use std::time::Duration;

/// Length of every transmit buffer offered by [`TxPort::send_with`] (at least; a port may
/// offer more).
///
/// Sized so that a frame of up to 9216 octets (jumbo MTU plus Ethernet and VLAN headers),
/// placed at [`TX_HEADROOM`] and grown by MACsec (a 16-octet SecTAG in front, a 16-octet
/// ICV behind) and by the re-insertion of up to two VLAN tags still fits, with room to
/// spare: 128 + 9216 + 32 + 8 = 9384 <= 10240.
pub const TX_SLOT_LEN: usize = 10240;

/// Recommended offset at which to place a received frame in a transmit slot, so that the
/// SecTAG and VLAN tags can be inserted in place by moving only the 12 MAC address octets.
pub const TX_HEADROOM: usize = 128;

/// One received Ethernet frame, borrowed from the receive ring for the duration of the
/// callback.
#[derive(Debug, Clone, Copy)]
pub struct RxFrame<'a> {
    /// The whole Ethernet frame as received (destination address to the end of the
    /// payload, no FCS). If the kernel stripped an outer VLAN tag (see
    /// [`vlan_tci`](Self::vlan_tci)) it is not in here.
    pub data: &'a [u8],
    /// `TP_STATUS_CSUMNOTREADY`: the frame was generated on this host (or crossed a veth)
    /// with its TCP/UDP checksum left for offload; the checksum field holds only the
    /// pseudo-header sum. Complete it with [`crate::csum`] before protecting the
    /// frame, or the far end will drop it.
    pub csum_not_ready: bool,
    /// The frame was longer than the port can capture, so `data` is only its beginning.
    /// The caller must drop and count it; it must never be forwarded.
    pub truncated: bool,
    /// `TP_STATUS_VLAN_VALID`: the kernel removed the outer VLAN tag and reports its TCI
    /// here. The caller re-inserts the tag (with [`vlan_tpid`](Self::vlan_tpid)) after
    /// the source MAC address. Linux strips the outer 802.1Q *and* 802.1ad tag of every
    /// received frame before packet sockets see it, whether or not the NIC offloads it.
    pub vlan_tci: Option<u16>,
    /// TPID of the stripped tag (0x8100 or 0x88A8); meaningful only when `vlan_tci` is
    /// `Some`. 0x8100 when the kernel did not report it.
    pub vlan_tpid: u16,
    /// The kernel's GSO metadata, when the port asked for it (`PACKET_VNET_HDR`) and the
    /// frame is a super-frame that a local sender left for segmentation offload.
    pub gso: Option<Gso>,
}

/// What a GSO super-frame is, as the kernel's metadata (`struct virtio_net_hdr`) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gso {
    /// TCP over IPv4 or IPv6, to be cut into segments of at most `size` payload octets.
    Tcp {
        /// The sender's MSS.
        size: u16,
    },
    /// UDP GSO (`UDP_SEGMENT`): datagrams of `size` payload octets each, the last one
    /// possibly shorter. The boundaries are the application's and must be kept.
    Udp {
        /// Payload octets per datagram.
        size: u16,
    },
    /// A kind the forwarder cannot segment (UFO, tunnels).
    Other,
}

impl Gso {
    /// Decodes the `gso_type` and `gso_size` fields of a `virtio_net_hdr` (in the
    /// host's byte order, as packet sockets write them); `None` for a plain frame.
    pub fn from_vnet_hdr(h: &[u8; VNET_HDR_LEN]) -> Option<Gso> {
        let size = u16::from_ne_bytes([h[4], h[5]]);
        // VIRTIO_NET_HDR_GSO_ECN (0x80) is a flag on top of the type.
        match h[1] & !0x80 {
            0 => None,
            1 | 4 => Some(Gso::Tcp { size }),
            5 => Some(Gso::Udp { size }),
            _ => Some(Gso::Other),
        }
    }
}

/// Length of `struct virtio_net_hdr`, which `PACKET_VNET_HDR` puts before each frame.
pub const VNET_HDR_LEN: usize = 10;

impl<'a> RxFrame<'a> {
    /// A frame with no metadata: checksum ready, complete, no stripped tag.
    pub fn plain(data: &'a [u8]) -> Self {
        RxFrame {
            data,
            csum_not_ready: false,
            truncated: false,
            vlan_tci: None,
            vlan_tpid: macsec::wire::ethernet::ethertype::VLAN,
            gso: None,
        }
    }
}

/// The receive half of a port.
pub trait RxPort: Send {
    /// Waits at most `timeout` for frames, passes each received frame (at most `max`) to
    /// `f` and returns how many were passed.
    ///
    /// Returns as soon as at least one frame was passed and no more are immediately
    /// available, or `Ok(0)` when `timeout` passes with nothing received. Must not
    /// allocate per frame.
    fn recv_batch(
        &mut self,
        max: usize,
        timeout: Duration,
        f: &mut dyn FnMut(RxFrame<'_>),
    ) -> std::io::Result<usize>;

    /// [`recv_batch`](Self::recv_batch) with the callback's type known: a port whose
    /// hot path matters (the `AF_PACKET` ring) implements this one, so the callback is
    /// inlined into its frame loop instead of called through a pointer per frame. The
    /// default goes through `recv_batch`.
    #[inline]
    fn recv_each<F: FnMut(RxFrame<'_>)>(
        &mut self,
        max: usize,
        timeout: Duration,
        mut f: F,
    ) -> std::io::Result<usize>
    where
        Self: Sized,
    {
        self.recv_batch(max, timeout, &mut f)
    }
}

/// The transmit half of a port.
pub trait TxPort: Send {
    /// Offers one transmit buffer (`slot`, at least [`TX_SLOT_LEN`] octets) to `fill`,
    /// which writes a frame anywhere inside it and returns the frame's range, or `None`
    /// to send nothing (the slot is then reused).
    ///
    /// Returns `Ok(true)` if a slot was offered, `Ok(false)` if no slot is free (ring
    /// full; `fill` is not called) so the caller can flush or drop and count. A frame the
    /// port cannot send (range outside the slot, shorter than an Ethernet header, longer
    /// than the interface allows) is rejected with an error and nothing is queued; the
    /// port stays usable. Queued frames leave only at [`flush`](Self::flush).
    fn send_with(
        &mut self,
        fill: &mut dyn FnMut(&mut [u8]) -> Option<Range<usize>>,
    ) -> std::io::Result<bool>;

    /// [`send_with`](Self::send_with) with the callback's type known, so that it is
    /// inlined (see [`RxPort::recv_each`]). The default goes through `send_with`.
    #[inline]
    fn send_slot<F: FnMut(&mut [u8]) -> Option<Range<usize>>>(
        &mut self,
        mut fill: F,
    ) -> std::io::Result<bool>
    where
        Self: Sized,
    {
        self.send_with(&mut fill)
    }

    /// Pushes queued frames to the kernel (one system call per batch in the common
    /// case). Never blocks: frames the kernel could not take at once (its send buffer
    /// full) stay queued and go out at the next flush; [`backlog`](Self::backlog) says so.
    ///
    /// An error is not fatal: frames the kernel has not taken stay queued and go out at
    /// the next flush.
    fn flush(&mut self) -> std::io::Result<()>;

    /// Whether frames are queued that the last [`flush`](Self::flush) could not hand
    /// over: the owner should flush again soon even if nothing new arrives.
    fn backlog(&self) -> bool {
        false
    }
}

impl<T: RxPort + ?Sized> RxPort for Box<T> {
    fn recv_batch(
        &mut self,
        max: usize,
        timeout: Duration,
        f: &mut dyn FnMut(RxFrame<'_>),
    ) -> std::io::Result<usize> {
        (**self).recv_batch(max, timeout, f)
    }
}

impl<T: TxPort + ?Sized> TxPort for Box<T> {
    fn send_with(
        &mut self,
        fill: &mut dyn FnMut(&mut [u8]) -> Option<Range<usize>>,
    ) -> std::io::Result<bool> {
        (**self).send_with(fill)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (**self).flush()
    }

    fn backlog(&self) -> bool {
        (**self).backlog()
    }
}

/// Wakes a thread that waits in [`wait_readable`]: an `eventfd` that the thread polls
/// beside its rings, so control messages are acted on at once instead of at the next
/// poll timeout.
#[derive(Debug)]
pub struct Waker(std::os::fd::OwnedFd);

impl Waker {
    /// A new waker.
    pub fn new() -> std::io::Result<Waker> {
        Ok(Waker(sys::eventfd()?))
    }

    /// Makes the waker readable, ending the owner's wait.
    pub fn wake(&self) {
        sys::eventfd_signal(std::os::fd::AsFd::as_fd(&self.0));
    }

    /// Makes the waker unreadable again (the owner, before it looks at its messages).
    pub fn reset(&self) {
        sys::eventfd_clear(std::os::fd::AsFd::as_fd(&self.0));
    }
}

impl std::os::fd::AsFd for Waker {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }
}

/// Waits until any of `fds` is readable or has an error, or `timeout` has passed (at
/// most 70 fds); `revents` receives each fd's poll events (`POLLIN`, [`POLLERR`], ...).
pub fn wait_readable(
    fds: &[std::os::fd::BorrowedFd<'_>],
    timeout: Duration,
    revents: &mut [i16],
) -> std::io::Result<()> {
    sys::poll_readable(fds, timeout, revents)
}

/// [`wait_readable`] on raw fds, for a caller that keeps its list in a buffer it reuses
/// (no allocation per wait). The fds must stay open for the call; one that is not open
/// reports `POLLNVAL` in `revents`.
pub fn wait_readable_raw(
    fds: &[std::os::fd::RawFd],
    timeout: Duration,
    revents: &mut [i16],
) -> std::io::Result<()> {
    sys::poll_readable_raw(fds, timeout, revents)
}

/// `POLLERR`: the fd has a pending socket error.
pub const POLLERR: i16 = libc::POLLERR;

/// Setting up ports or interfaces failed. Every variant names the interface and, where
/// there is one, the command that fixes the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// No interface of that name exists in this network namespace.
    #[error("interface {ifname:?} does not exist (list interfaces with `ip link show`)")]
    NoSuchInterface {
        /// The interface name asked for.
        ifname: String,
    },
    /// The name cannot be an interface name.
    #[error("{ifname:?} is not a valid interface name: {reason}")]
    BadName {
        /// The name given.
        ifname: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The interface is administratively down.
    #[error("interface {ifname} is down; run `ip link set dev {ifname} up`")]
    Down {
        /// The interface.
        ifname: String,
    },
    /// The interface is up but has no carrier.
    #[error("interface {ifname} is up but not running (no carrier): check the link or its peer")]
    NotRunning {
        /// The interface.
        ifname: String,
    },
    /// The MTU is too small for what the forwarder has to send on it.
    #[error(
        "interface {ifname}: MTU {mtu} is below the required {required}; \
         run `ip link set dev {ifname} mtu {required}`"
    )]
    MtuTooSmall {
        /// The interface.
        ifname: String,
        /// Its current MTU.
        mtu: u32,
        /// The smallest MTU that works.
        required: u32,
    },
    /// Offloads that change what a packet socket sees are on.
    #[error(
        "interface {ifname}: offloads that merge, split or re-tag frames are on ({}); \
         run `{command}`", .features.join(", ")
    )]
    OffloadsOn {
        /// The interface.
        ifname: String,
        /// Kernel names of the features that are on (e.g. `rx-gro`).
        features: Vec<String>,
        /// The `ethtool -K` command that turns them off.
        command: String,
    },
    /// Offloads that should be off are on and the driver does not let them change.
    #[error(
        "interface {ifname}: offloads {} are on and fixed by the driver; \
         this interface cannot be used", .features.join(", ")
    )]
    OffloadsFixed {
        /// The interface.
        ifname: String,
        /// Kernel names of the fixed features.
        features: Vec<String>,
    },
    /// A ring or socket parameter is out of range.
    #[error("invalid {what}: {reason}")]
    Config {
        /// Which parameter.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A system call failed.
    #[error("interface {ifname}: {op} failed: {source}{}", hint(source))]
    Os {
        /// The interface.
        ifname: String,
        /// What was being done, e.g. "set MTU (SIOCSIFMTU)".
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => " (needs root or CAP_NET_RAW/CAP_NET_ADMIN)",
        Some(libc::ENOPROTOOPT) => " (kernel too old? Linux 4.20 or later is required)",
        _ => "",
    }
}

impl SetupError {
    pub(crate) fn os(ifname: &str, op: &'static str, source: std::io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENODEV) {
            return SetupError::NoSuchInterface {
                ifname: ifname.to_owned(),
            };
        }
        SetupError::Os {
            ifname: ifname.to_owned(),
            op,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gso_metadata_decodes() {
        let hdr = |t: u8, size: u16| {
            let mut h = [0u8; VNET_HDR_LEN];
            h[0] = 1; // NEEDS_CSUM
            h[1] = t;
            h[4..6].copy_from_slice(&size.to_ne_bytes());
            h
        };
        assert_eq!(Gso::from_vnet_hdr(&hdr(0, 0)), None);
        assert_eq!(
            Gso::from_vnet_hdr(&hdr(1, 1448)),
            Some(Gso::Tcp { size: 1448 })
        );
        assert_eq!(
            Gso::from_vnet_hdr(&hdr(4 | 0x80, 1428)),
            Some(Gso::Tcp { size: 1428 })
        );
        assert_eq!(
            Gso::from_vnet_hdr(&hdr(5, 1200)),
            Some(Gso::Udp { size: 1200 })
        );
        assert_eq!(Gso::from_vnet_hdr(&hdr(3, 1200)), Some(Gso::Other));
    }
}

//! Linux `AF_PACKET` ports with memory-mapped rings.
//!
//! * [`AfPacketRx`]: a receive ring, `TPACKET_V2` by default or `TPACKET_V3` (see
//!   [`RxRing`]).
//!   * V2: one fixed-size slot per frame. The kernel marks each slot ready and wakes
//!     `poll()` as soon as its frame is in, so a lone frame at idle is delivered after
//!     only a wake-up (tens of microseconds). The default slot (68 KiB) holds a TCP GSO
//!     super-frame whole, so the ring is large for its slot count (135 slots, 9 MiB).
//!     With [`RxConfig::copy_oversized`] (`PACKET_COPY_THRESH`) the slots can instead be
//!     sized for the link's MTU ([`RxRing::v2_sized`]: 5,000 slots of 1,600 octets in
//!     8 MiB at MTU 1500), and the rare longer frame is read whole from the socket queue.
//!   * V3: the kernel fills blocks (1 MiB) with many frames and hands a block over when
//!     it is full or when the block timeout (at least 1 ms) expires, so a lone frame
//!     waits for the timeout. Denser (16 MiB hold some 10,000 full-size frames, where
//!     the V2 ring holds 135 frames of any size), and cheaper per frame under load
//!     because the batches are larger.
//!
//!   Either way we read frames in place and give each slot or block back as soon as its
//!   last frame was passed on; `poll()` is called only when nothing is ready, so under
//!   load a batch costs no system call at all.
//! * [`AfPacketTx`]: a `TPACKET_V2` transmit ring with `PACKET_TX_HAS_OFF`, so a frame
//!   can start anywhere in its slot (the caller keeps headroom for the SecTAG), and
//!   `PACKET_QDISC_BYPASS`. [`TxPort::flush`] is one `sendto(NULL)` for the whole batch.
//!   Towards a NIC the kernel sends the ring's pages without a copy; towards a veth or
//!   tap device, which would copy them again, [`TxConfig::linear`] has it copy each
//!   frame once into a linear buffer instead.
//!
//! Receive and transmit use separate sockets, so the two halves of one interface can be
//! owned by different threads.
//!
//! ```no_run
//! use macsec_forward::io::afpacket::{AfPacketRx, AfPacketTx, RxConfig, TxConfig};
//! use macsec_forward::io::iface::Interface;
//!
//! let plain = Interface::lookup("eth0")?;
//! let rx = AfPacketRx::open(&plain, &RxConfig::default())?;
//! let tx = AfPacketTx::open(&plain, &TxConfig::default())?;
//! # Ok::<(), macsec_forward::io::SetupError>(())
//! ```
//!
//! Kernel requirements: Linux 4.20 or later (`PACKET_IGNORE_OUTGOING`); rings of
//! `TPACKET_V2` (2.6.27) and `TPACKET_V3` (3.2), `PACKET_QDISC_BYPASS` (3.14) and
//! `PACKET_TX_HAS_OFF` (3.8); `PACKET_VNET_HDR` on transmit rings (4.6) for
//! [`TxConfig::linear`].
//! Fanout groups that ignore outgoing frames need Linux 6.2.
//!
//! Behaviour worth knowing:
//!
//! * With `PACKET_QDISC_BYPASS` (the default) frames skip the queueing discipline and
//!   every packet tap: `tcpdump` on the interface does not see what we send, and when the
//!   device queue is full the frame is dropped instead of queued.
//! * The whole receive ring is allocated when the port is opened and mapped into the
//!   process at once, so it counts toward the RSS in full from the start (as `RssFile`),
//!   however small the frames; see [`RxGeometry::ring_size`].
//! * A frame longer than the ring can hold ([`RxRing::max_frame_len`]) is delivered
//!   truncated and flagged so, unless [`RxConfig::copy_oversized`] is on (V2 only). Over
//!   a veth, and from the host's own stack, TCP can hand the packet socket unsegmented
//!   GSO frames of up to 64 KiB; the default V2 slot takes them whole, and so does the
//!   copy path.
//! * The kernel strips the outer VLAN tag (802.1Q or 802.1ad) of every received frame
//!   before packet sockets see it; it is reported in [`RxFrame::vlan_tci`].
//! * The kernel refuses to send frames longer than MTU + 14 octets, or MTU + 18 if the
//!   frame carries an 802.1Q (0x8100, not 0x88A8) tag. [`AfPacketTx::send_with`] checks
//!   this up front and rejects such frames with `EMSGSIZE`.
#![allow(unsafe_code)]

use std::io;
use std::mem::{offset_of, size_of};
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use libc::c_int;

use super::iface::Interface;
use super::sys::{self, Mmap};
use super::{Gso, RxFrame, RxPort, SetupError, TxPort, TX_SLOT_LEN, VNET_HDR_LEN};

mod geometry;
mod rx;
#[cfg(test)]
mod tests;
mod tx;

pub use geometry::{
    RxConfig, RxGeometry, RxRing, TxConfig, COPY_RCVBUF, RX_V2_FRAME_COUNT, RX_V2_FRAME_SIZE,
};
pub use rx::{AfPacketRx, KernelRxStats, RxRingStats};
pub use tx::{AfPacketTx, TxRingStats};

/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// Ethernet header length (destination, source, EtherType).
const ETH_HLEN: usize = 14;

/// How [`Fanout`] spreads frames over the sockets of a group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FanoutMode {
    /// By flow hash: all frames of one flow go to one socket, so per-flow order is kept.
    #[default]
    Hash,
    /// By the CPU that received the frame (follows the NIC's RSS spreading).
    Cpu,
    /// By the NIC receive queue the frame came in on.
    QueueMapping,
    /// Round robin. Reorders frames of a flow; only for tests.
    RoundRobin,
}

/// `PACKET_FANOUT`: several receive sockets on one interface share its frames.
///
/// Every socket of a group must use the same `group_id` (unique per network namespace:
/// give each interface and direction its own) and the same mode and flags (including
/// [`RxConfig::ignore_outgoing`], which for a group becomes
/// `PACKET_FANOUT_FLAG_IGNORE_OUTGOING` and needs Linux 6.2). Each worker thread opens
/// its own [`AfPacketRx`] with the same `Fanout`. See the module documentation of
/// [`crate::io`] for what scaling out means for the SecY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fanout {
    /// Group identifier.
    pub group_id: u16,
    /// Spreading mode.
    pub mode: FanoutMode,
    /// `PACKET_FANOUT_FLAG_ROLLOVER`: if the chosen socket's ring is full, use another
    /// one instead of dropping (this reorders the flow).
    pub rollover: bool,
}

impl Fanout {
    /// Hash fanout, no rollover.
    pub fn hash(group_id: u16) -> Self {
        Fanout {
            group_id,
            mode: FanoutMode::Hash,
            rollover: false,
        }
    }

    /// The `PACKET_FANOUT` option value. A fanout group receives through its own hook,
    /// so the per-socket `PACKET_IGNORE_OUTGOING` does not apply to it: the group needs
    /// `PACKET_FANOUT_FLAG_IGNORE_OUTGOING` (Linux 6.2) instead.
    fn sockopt_value(&self, ignore_outgoing: bool) -> c_int {
        let mode = match self.mode {
            FanoutMode::Hash => libc::PACKET_FANOUT_HASH,
            FanoutMode::Cpu => libc::PACKET_FANOUT_CPU,
            FanoutMode::QueueMapping => libc::PACKET_FANOUT_QM,
            FanoutMode::RoundRobin => libc::PACKET_FANOUT_LB,
        };
        let mut flags = 0;
        if self.rollover {
            flags |= libc::PACKET_FANOUT_FLAG_ROLLOVER;
        }
        if ignore_outgoing {
            flags |= libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
        }
        (u32::from(self.group_id) | ((mode | flags) << 16)) as c_int
    }
}

/// Reads a native-endian `u32` at `p`.
///
/// # Safety
/// `p..p+4` must be readable ring memory owned by user space at the time of the call.
unsafe fn rd32(p: *const u8) -> u32 {
    // SAFETY: guaranteed by the caller; unaligned read tolerates any offset.
    unsafe { p.cast::<u32>().read_unaligned() }
}

/// Reads a native-endian `u16` at `p`.
///
/// # Safety
/// As for [`rd32`], for two bytes.
unsafe fn rd16(p: *const u8) -> u16 {
    // SAFETY: guaranteed by the caller.
    unsafe { p.cast::<u16>().read_unaligned() }
}

/// The status word at `p`, shared with the kernel.
///
/// # Safety
/// `p` must be 4-byte aligned and point into a live ring mapping; the returned reference
/// must not outlive the mapping.
unsafe fn status_word<'a>(p: *mut u8) -> &'a AtomicU32 {
    // SAFETY: guaranteed by the caller. The word is only ever accessed atomically by us;
    // the kernel side uses its own barriers (smp_wmb/smp_rmb) around plain accesses,
    // which pair with our Acquire/Release.
    unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }
}

fn config_err(what: &'static str, reason: impl Into<String>) -> SetupError {
    SetupError::Config {
        what,
        reason: reason.into(),
    }
}

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
//!
//! Receive and transmit use separate sockets, so the two halves of one interface can be
//! owned by different threads.
//!
//! ```no_run
//! use macsec::io::afpacket::{AfPacketRx, AfPacketTx, RxConfig, TxConfig};
//! use macsec::io::iface::Interface;
//!
//! let plain = Interface::lookup("eth0")?;
//! let rx = AfPacketRx::open(&plain, &RxConfig::default())?;
//! let tx = AfPacketTx::open(&plain, &TxConfig::default())?;
//! # Ok::<(), macsec::io::SetupError>(())
//! ```
//!
//! Kernel requirements: Linux 4.20 or later (`PACKET_IGNORE_OUTGOING`); rings of
//! `TPACKET_V2` (2.6.27) and `TPACKET_V3` (3.2), `PACKET_QDISC_BYPASS` (3.14) and
//! `PACKET_TX_HAS_OFF` (3.8).
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
use super::{Gso, RxFrame, RxPort, SetupError, TxPort, TX_SLOT_LEN, VLAN_TPID_8021Q, VNET_HDR_LEN};

/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// Ethernet header length (destination, source, EtherType).
const ETH_HLEN: usize = 14;

// ---- TPACKET_V3 layout (receive) -----------------------------------------------------

/// Offset of `block_status` in `struct tpacket_block_desc`.
const BLK_STATUS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, block_status);
/// Offset of `num_pkts`.
const BLK_NUM_PKTS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, num_pkts);
/// Offset of `offset_to_first_pkt`.
const BLK_FIRST: usize = offset_of!(libc::tpacket_block_desc, hdr)
    + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
/// Size of the block descriptor, rounded as the kernel does (`BLK_HDR_LEN`).
const BLK_HDR_LEN: usize = size_of::<libc::tpacket_block_desc>().next_multiple_of(8);

const H3_NEXT: usize = offset_of!(libc::tpacket3_hdr, tp_next_offset);
const H3_SNAPLEN: usize = offset_of!(libc::tpacket3_hdr, tp_snaplen);
const H3_LEN: usize = offset_of!(libc::tpacket3_hdr, tp_len);
const H3_STATUS: usize = offset_of!(libc::tpacket3_hdr, tp_status);
const H3_MAC: usize = offset_of!(libc::tpacket3_hdr, tp_mac);
const H3_VLAN_TCI: usize =
    offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci);
const H3_VLAN_TPID: usize =
    offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid);
const H3_SIZE: usize = size_of::<libc::tpacket3_hdr>();

// ---- TPACKET_V2 layout (receive and transmit) ----------------------------------------

const H2_STATUS: usize = offset_of!(libc::tpacket2_hdr, tp_status);
const H2_LEN: usize = offset_of!(libc::tpacket2_hdr, tp_len);
const H2_SNAPLEN: usize = offset_of!(libc::tpacket2_hdr, tp_snaplen);
const H2_MAC: usize = offset_of!(libc::tpacket2_hdr, tp_mac);
const H2_NET: usize = offset_of!(libc::tpacket2_hdr, tp_net);
const H2_VLAN_TCI: usize = offset_of!(libc::tpacket2_hdr, tp_vlan_tci);
const H2_VLAN_TPID: usize = offset_of!(libc::tpacket2_hdr, tp_vlan_tpid);
const H2_SIZE: usize = size_of::<libc::tpacket2_hdr>();
/// Where frame data may start in a TX slot: the kernel's `tp_hdrlen - sizeof(sockaddr_ll)`.
const TX_DATA_OFF: usize = libc::TPACKET2_HDRLEN - size_of::<libc::sockaddr_ll>();
/// Size of one TX ring frame: header plus a [`TX_SLOT_LEN`] data area.
const TX_FRAME_SIZE: usize = (TX_DATA_OFF + TX_SLOT_LEN).next_multiple_of(libc::TPACKET_ALIGNMENT);

const _: () = {
    assert!(BLK_STATUS == 8 && BLK_NUM_PKTS == 12 && BLK_FIRST == 16 && BLK_HDR_LEN == 48);
    assert!(H3_SIZE == 48 && H3_MAC == 24 && H3_VLAN_TCI == 32 && H3_VLAN_TPID == 36);
    assert!(H2_STATUS == 0 && H2_MAC == 12 && TX_DATA_OFF == 32);
    assert!(H2_VLAN_TCI == 24 && H2_VLAN_TPID == 26 && H2_SIZE == 32);
    // Where current kernels put an Ethernet frame in an RX slot or block.
    assert!(V2_MAC_OFF == 66 && V3_MAC_OFF == 82);
    assert!(
        H2_SIZE <= V2_MIN_FRAME_SIZE && V2_MIN_FRAME_SIZE.is_multiple_of(libc::TPACKET_ALIGNMENT)
    );
    assert!(RX_V2_FRAME_SIZE - V2_MAC_OFF >= ETH_HLEN + 4 + 65535);
    assert!(TX_FRAME_SIZE - TX_DATA_OFF >= TX_SLOT_LEN);
    // tp_mac is a u16: every data offset in a slot must fit.
    assert!(TX_FRAME_SIZE <= u16::MAX as usize);
};

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

/// Default size of one [`RxRing::V2`] slot: 68 KiB, enough for a whole TCP GSO
/// super-frame (an IP packet of up to 65,535 octets behind a 14-octet Ethernet header,
/// plus an inner VLAN tag) after the kernel's 66-octet slot header.
pub const RX_V2_FRAME_SIZE: usize = 68 * 1024;

/// Default number of [`RxRing::V2`] slots requested (rounded up to whole blocks: 135
/// slots, 9 MiB, with the default slot size).
pub const RX_V2_FRAME_COUNT: usize = 128;

/// Where frame data starts in a V2 slot: the kernel puts the network header at
/// `TPACKET_ALIGN(tp_hdrlen + 16)` and the 14-octet Ethernet header in front of it.
const V2_MAC_OFF: usize =
    (libc::TPACKET2_HDRLEN + 16).next_multiple_of(libc::TPACKET_ALIGNMENT) - ETH_HLEN;
/// The same for V3 (`tp_hdrlen` is `TPACKET3_HDRLEN`: the 48-octet header plus a
/// `sockaddr_ll`).
const V3_MAC_OFF: usize = (H3_SIZE + size_of::<libc::sockaddr_ll>() + 16)
    .next_multiple_of(libc::TPACKET_ALIGNMENT)
    - ETH_HLEN;
/// Smallest V2 slot accepted: the slot header plus a minimum-size frame.
const V2_MIN_FRAME_SIZE: usize = 128;
/// Largest block a V2 ring is given (unless one slot needs more): the kernel's largest
/// physically contiguous allocation with 4 KiB pages (`MAX_PAGE_ORDER` 10).
const V2_MAX_BLOCK: usize = 4 << 20;

/// The kind and geometry of a receive ring.
///
/// * [`V2`](Self::V2) (the default): fixed-size slots, one frame each. The kernel marks
///   each slot ready and wakes `poll()` as soon as the frame is in, so an idle port adds
///   only the wake-up latency (tens of microseconds). Under load batching still happens:
///   each wake-up drains every ready slot (up to `max`) with no further system call.
///   Every slot must hold the largest frame the port may see, so the ring is large
///   (9 MiB by default) for its slot count.
/// * [`V3`](Self::V3): variable-sized frames packed into large blocks. Memory-efficient
///   for small frames and the cheapest under load, but the kernel hands a block over only
///   when it is full or `block_timeout` (at least 1 ms, counted in jiffies) expired, so
///   at low rates a lone frame waits about a millisecond or more: too slow for a
///   forwarder that must add at most tens of microseconds per hop.
///
/// The kernel allocates the whole ring when the port is opened and maps all of it into
/// the process, so all of it counts toward the process's RSS (as `RssFile`) whatever the
/// traffic; it is kernel memory that is never swapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxRing {
    /// `TPACKET_V2`: `frame_count` slots of `frame_size` octets.
    V2 {
        /// Size of one slot in octets, including the kernel's 66-octet header: a multiple
        /// of 16, at least 128. A frame longer than `frame_size - 66` octets is delivered
        /// [`truncated`](RxFrame::truncated). Default [`RX_V2_FRAME_SIZE`] (68 KiB), which
        /// holds TCP GSO super-frames whole.
        frame_size: usize,
        /// Number of slots: how many frames the ring can hold while the reader is busy.
        /// Rounded up so that the slots fill whole blocks (see [`RxRing::geometry`]).
        /// At least 2. Default [`RX_V2_FRAME_COUNT`].
        frame_count: usize,
    },
    /// `TPACKET_V3`: `block_count` blocks of `block_size` octets.
    V3 {
        /// Size of one ring block in octets: a multiple of the page size, at least 64 KiB
        /// (so that any jumbo frame fits in one block; the largest frame that can be
        /// captured whole is a little under this). 1 MiB in [`RxRing::v3`].
        block_size: usize,
        /// Number of blocks, at least 2. 16 in [`RxRing::v3`] (16 MiB per port).
        block_count: usize,
        /// How long the kernel may keep a partly filled block before handing it over: the
        /// worst-case added latency at low rates. Whole milliseconds, at least 1. 1 ms in
        /// [`RxRing::v3`].
        block_timeout: Duration,
    },
}

impl Default for RxRing {
    fn default() -> Self {
        RxRing::v2()
    }
}

/// How a receive ring is laid out in memory, as passed to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxGeometry {
    /// Octets per block (a power-of-two number of pages for V2).
    pub block_size: usize,
    /// Number of blocks.
    pub block_count: usize,
    /// Slot size (V2), or the nominal frame size passed to the kernel (V3).
    pub frame_size: usize,
    /// Slots per block (V2); for V3 only a nominal value the kernel checks.
    pub frames_per_block: usize,
}

impl RxGeometry {
    /// Size of the whole ring in octets: the kernel memory the port takes when it is
    /// opened (never swapped), and what its mapping adds to the process's RSS.
    pub fn ring_size(&self) -> usize {
        self.block_size * self.block_count
    }

    /// Number of V2 slots (the requested count rounded up to whole blocks).
    pub fn frame_count(&self) -> usize {
        self.frames_per_block * self.block_count
    }
}

impl RxRing {
    /// The default `TPACKET_V2` ring: [`RX_V2_FRAME_COUNT`] slots of [`RX_V2_FRAME_SIZE`].
    pub fn v2() -> Self {
        RxRing::V2 {
            frame_size: RX_V2_FRAME_SIZE,
            frame_count: RX_V2_FRAME_COUNT,
        }
    }

    /// The `TPACKET_V3` ring that was the default before V2: 16 blocks of 1 MiB, 1 ms
    /// block timeout.
    pub fn v3() -> Self {
        RxRing::V3 {
            block_size: 1 << 20,
            block_count: 16,
            block_timeout: Duration::from_millis(1),
        }
    }

    /// A `TPACKET_V2` ring whose slots hold frames of up to `max_frame_len` octets (as
    /// the packet socket sees them: Ethernet header to the end of the payload, without
    /// the outer VLAN tag the kernel strips), with as many slots as fit in `ring_bytes`
    /// (at least 2 slots, whole blocks).
    ///
    /// Meant for [`RxConfig::copy_oversized`]: sized for the link's MTU, with longer
    /// frames (TCP GSO super-frames) taking the copy path. For MTU 1500 a 1,600-octet
    /// slot, so 16 MiB hold some 10,000 frames where the default ring's 68 KiB slots hold
    /// 240.
    pub fn v2_sized(max_frame_len: usize, ring_bytes: usize) -> Self {
        let frame_size = (V2_MAC_OFF + max_frame_len)
            .max(V2_MIN_FRAME_SIZE)
            .next_multiple_of(libc::TPACKET_ALIGNMENT);
        let mut ring = RxRing::V2 {
            frame_size,
            frame_count: 2,
        };
        if let Ok(g) = ring.geometry() {
            let blocks = (ring_bytes / g.block_size).max(1);
            ring = RxRing::V2 {
                frame_size,
                frame_count: (blocks * g.frames_per_block).max(2),
            };
        }
        ring
    }

    /// Longest Ethernet frame (as seen by the packet socket, after VLAN tag stripping)
    /// that this ring delivers whole, as laid out by current kernels.
    pub fn max_frame_len(&self) -> usize {
        match *self {
            RxRing::V2 { frame_size, .. } => frame_size.saturating_sub(V2_MAC_OFF),
            RxRing::V3 { block_size, .. } => block_size.saturating_sub(BLK_HDR_LEN + V3_MAC_OFF),
        }
    }

    /// Checks the parameters and works out the layout handed to the kernel.
    ///
    /// A V2 ring's blocks are a power-of-two number of pages, because the kernel
    /// allocates each block as `2^order` pages and would waste the rest of a block of any
    /// other size (a block of one 68 KiB slot would take 128 KiB). The smallest such block
    /// that wastes at most 1/16 of itself after its last slot is used (1 MiB, 15 slots,
    /// for the default 68 KiB slot), and the slot count is rounded up to whole blocks.
    pub fn geometry(&self) -> Result<RxGeometry, SetupError> {
        let page = sys::page_size();
        let geo = match *self {
            RxRing::V2 {
                frame_size,
                frame_count,
            } => {
                if frame_size < V2_MIN_FRAME_SIZE
                    || frame_size % libc::TPACKET_ALIGNMENT != 0
                    || frame_size > u32::MAX as usize / 2
                {
                    return Err(config_err(
                        "rx frame_size",
                        format!(
                            "{frame_size} must be a multiple of {} and at least {V2_MIN_FRAME_SIZE}",
                            libc::TPACKET_ALIGNMENT
                        ),
                    ));
                }
                if frame_count < 2 {
                    return Err(config_err(
                        "rx frame_count",
                        format!("{frame_count} (at least 2)"),
                    ));
                }
                let mut block_size = frame_size.next_multiple_of(page).next_power_of_two();
                let limit = block_size.max(V2_MAX_BLOCK);
                while (block_size % frame_size) * 16 > block_size && block_size < limit {
                    block_size *= 2;
                }
                let frames_per_block = block_size / frame_size;
                RxGeometry {
                    block_size,
                    block_count: frame_count.div_ceil(frames_per_block),
                    frame_size,
                    frames_per_block,
                }
            }
            RxRing::V3 {
                block_size,
                block_count,
                block_timeout,
            } => {
                if block_timeout.as_millis() >= u128::from(u32::MAX) {
                    return Err(config_err("rx block_timeout", "too long"));
                }
                if block_size < 64 * 1024 || block_size % page != 0 {
                    return Err(config_err(
                        "rx block_size",
                        format!(
                            "{block_size} must be a multiple of the page size ({page}) and at least 65536"
                        ),
                    ));
                }
                if block_size > u32::MAX as usize / 2 || block_count < 2 {
                    return Err(config_err(
                        "rx block_count",
                        format!("{block_count} blocks of {block_size} octets"),
                    ));
                }
                // tp_frame_size only has to be consistent for V3 (frames are
                // variable-sized); the largest capturable frame is bounded by the block.
                let frame_size = 2048;
                RxGeometry {
                    block_size,
                    block_count,
                    frame_size,
                    frames_per_block: block_size / frame_size,
                }
            }
        };
        geo.block_size
            .checked_mul(geo.block_count)
            .filter(|t| *t <= u32::MAX as usize)
            .ok_or_else(|| config_err("rx ring size", "the ring would exceed 4 GiB"))?;
        Ok(geo)
    }
}

/// Receive port parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxConfig {
    /// Ring kind and geometry. Default [`RxRing::v2`]: 128 slots of 68 KiB (rounded up
    /// to 135 slots, 9 MiB of kernel memory per port).
    pub ring: RxRing,
    /// Put the interface in promiscuous mode while the port is open (`PACKET_MR_PROMISC`,
    /// reference-counted by the kernel). A forwarder must see every frame. Default on.
    pub promiscuous: bool,
    /// `PACKET_IGNORE_OUTGOING`: do not receive frames this host sends on the interface
    /// (our own transmissions, or the host's own traffic). Default on.
    pub ignore_outgoing: bool,
    /// Join a fanout group. Default none.
    pub fanout: Option<Fanout>,
    /// `PACKET_COPY_THRESH` (V2 rings only; ignored for V3): a frame longer than a slot
    /// is not delivered truncated but whole. The kernel puts a truncated copy in the
    /// slot, flagged `TP_STATUS_COPY`, and queues the whole frame on the socket, where
    /// [`RxPort::recv_batch`] reads it with `recv()` into a buffer the port owns (64 KiB
    /// and a little, allocated once when the port is opened) and passes that on instead,
    /// in ring order.
    ///
    /// This lets the slots be sized for the largest frame the link's MTU allows (see
    /// [`RxRing::v2_sized`]) instead of for a 64 KiB TCP GSO super-frame, so that the same
    /// memory holds many more frames; the occasional super-frame costs one more copy and
    /// a system call. The queue is bounded by the socket's receive buffer, raised to
    /// [`COPY_RCVBUF`] (with `SO_RCVBUFFORCE`, which needs `CAP_NET_ADMIN`; without it
    /// the system's `rmem_max` caps it): a frame that finds the buffer full is delivered
    /// truncated. Default off.
    pub copy_oversized: bool,
    /// `PACKET_VNET_HDR` (V2 rings only): the kernel puts its GSO metadata (a
    /// `struct virtio_net_hdr`) before each frame, reported as [`RxFrame::gso`]. A port
    /// that receives super-frames from local senders needs it to cut UDP GSO datagrams
    /// at the sender's boundaries. Slots need [`VNET_HDR_LEN`] more octets. Default off.
    pub vnet_hdr: bool,
}

/// Receive buffer asked for when [`RxConfig::copy_oversized`] is on: room for some 60
/// queued 64 KiB super-frames. Kernel memory, used only while such frames wait, and not
/// part of the process's RSS.
pub const COPY_RCVBUF: usize = 8 << 20;

/// Size of the buffer that receives frames longer than a V2 slot (with
/// [`RxConfig::copy_oversized`]): a GSO super-frame (an IP packet of up to 65,535
/// octets, its Ethernet header and two VLAN tags), rounded up.
const COPY_BUF_LEN: usize = 65_536 + 512;

impl Default for RxConfig {
    fn default() -> Self {
        RxConfig {
            ring: RxRing::default(),
            promiscuous: true,
            ignore_outgoing: true,
            fanout: None,
            copy_oversized: false,
            vnet_hdr: false,
        }
    }
}

/// Transmit ring parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxConfig {
    /// Size of one ring block: a multiple of the page size holding at least one
    /// [`TX_SLOT_LEN`] slot. Default 1 MiB (102 slots).
    pub block_size: usize,
    /// Number of blocks. Default 4 (408 slots).
    pub block_count: usize,
    /// `PACKET_QDISC_BYPASS`: hand frames straight to the driver. Faster, but frames skip
    /// traffic control and taps (`tcpdump` does not see them) and are dropped when the
    /// device queue is full. Default on.
    pub qdisc_bypass: bool,
    /// How long one flush may block waiting for socket buffer space or transmit
    /// completions (`SO_SNDTIMEO`) when the kernel could not take the whole batch at
    /// once. Default 100 ms.
    pub flush_timeout: Duration,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig {
            block_size: 1 << 20,
            block_count: 4,
            qdisc_bypass: true,
            flush_timeout: Duration::from_millis(100),
        }
    }
}

/// Counters kept by [`AfPacketRx`] (never reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxRingStats {
    /// Frames passed to callbacks.
    pub frames: u64,
    /// Of those, frames marked truncated.
    pub truncated: u64,
    /// V3 blocks consumed and returned to the kernel (0 for a V2 ring).
    pub blocks: u64,
    /// `poll()` calls made while waiting for a block (V3) or slot (V2).
    pub polls: u64,
    /// V3 blocks or V2 slots abandoned because their layout did not make sense (never
    /// expected).
    pub bad_blocks: u64,
    /// Frames longer than a V2 slot that were read whole from the socket queue
    /// ([`RxConfig::copy_oversized`]).
    pub copied: u64,
    /// Slots flagged `TP_STATUS_COPY` whose whole frame could not be read from the socket
    /// (never expected); they were passed on truncated.
    pub copy_lost: u64,
    /// Times the port went down (the kernel reported `ENETDOWN` on the socket). The
    /// socket stays bound and receives again as soon as the port is back up.
    pub link_down: u64,
}

/// Counters the kernel keeps for a receive socket (`PACKET_STATISTICS`); each read
/// returns the counts since the previous read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelRxStats {
    /// Frames the socket accepted.
    pub packets: u32,
    /// Frames dropped because the ring was full.
    pub drops: u32,
    /// Times the ring was found full (frozen) because we were not keeping up (V3 only;
    /// always 0 for a V2 ring, whose full ring shows up as `drops` alone).
    pub freezes: u32,
}

/// Counters kept by [`AfPacketTx`] (never reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxRingStats {
    /// Frames queued into the ring.
    pub frames: u64,
    /// `send_with` calls that found no free slot.
    pub ring_full: u64,
    /// Frames rejected by `send_with` (bad range or length).
    pub rejected: u64,
    /// `sendto` kicks.
    pub kicks: u64,
    /// Flushes that had to block because the kernel could not take the batch at once.
    pub blocking_kicks: u64,
    /// Kicks that returned an error (e.g. `ENOBUFS` when the driver dropped a frame).
    pub kick_errors: u64,
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

/// Where we are inside a V3 block that the kernel has handed to user space.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    /// Frames not yet passed on.
    left: u32,
    /// Offset of the next frame header from the start of the block.
    offset: usize,
}

/// Ring-kind specific state of an [`AfPacketRx`].
#[derive(Debug)]
enum RxState {
    /// Index of the next slot to read.
    V2 { head: usize },
    /// The current block and, once it was found ready, where we are in it.
    V3 {
        block: usize,
        cursor: Option<Cursor>,
    },
}

/// What one step of reading the ring found.
enum Step {
    /// One frame was passed to the callback.
    Passed,
    /// Nothing is ready: wait for the kernel.
    Empty,
    /// Ring bookkeeping (a block opened or released, a bad slot skipped): look again.
    Again,
}

/// The receive half of an interface: a `TPACKET_V2` or `TPACKET_V3` ring (see [`RxRing`])
/// bound with `ETH_P_ALL`.
pub struct AfPacketRx {
    fd: OwnedFd,
    ring: Mmap,
    kind: RxRing,
    geo: RxGeometry,
    state: RxState,
    ifname: String,
    stats: RxRingStats,
    /// Receives frames longer than a V2 slot ([`RxConfig::copy_oversized`]); empty when
    /// that is off.
    copy_buf: Vec<u8>,
    /// [`RxConfig::vnet_hdr`] is on.
    vnet: bool,
}

impl std::fmt::Debug for AfPacketRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacketRx")
            .field("ifname", &self.ifname)
            .field("ring", &self.kind)
            .field("geometry", &self.geo)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn config_err(what: &'static str, reason: impl Into<String>) -> SetupError {
    SetupError::Config {
        what,
        reason: reason.into(),
    }
}

/// Builds the frame passed to the callback from the fields of a ring header.
fn rx_frame(
    data: &[u8],
    len: usize,
    status: u32,
    tci: u16,
    tpid: u16,
    gso: Option<Gso>,
) -> RxFrame<'_> {
    let vlan_valid = status & libc::TP_STATUS_VLAN_VALID != 0;
    RxFrame {
        data,
        csum_not_ready: status & libc::TP_STATUS_CSUMNOTREADY != 0,
        truncated: data.len() < len,
        vlan_tci: vlan_valid.then_some(tci),
        vlan_tpid: if vlan_valid && status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
            tpid
        } else {
            VLAN_TPID_8021Q
        },
        gso,
    }
}

impl AfPacketRx {
    /// Opens a receive ring on `iface` (the name and index are used; look the interface
    /// up in the namespace the port should live in).
    pub fn open(iface: &Interface, cfg: &RxConfig) -> Result<Self, SetupError> {
        let geo = cfg.ring.geometry()?;

        let name = iface.name.as_str();
        let os = |op: &'static str| move |e: io::Error| SetupError::os(name, op, e);
        let fd = sys::packet_socket().map_err(os("open packet socket"))?;
        let b = fd.as_fd();

        let version = match cfg.ring {
            RxRing::V2 { .. } => libc::tpacket_versions::TPACKET_V2,
            RxRing::V3 { .. } => libc::tpacket_versions::TPACKET_V3,
        };
        sys::setsockopt(
            b,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &(version as c_int),
        )
        .map_err(os("set PACKET_VERSION"))?;
        if cfg.ignore_outgoing {
            sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1)
                .map_err(os("set PACKET_IGNORE_OUTGOING"))?;
        }
        if cfg.vnet_hdr {
            if !matches!(cfg.ring, RxRing::V2 { .. }) {
                return Err(config_err("vnet_hdr", "needs a TPACKET_V2 ring"));
            }
            // Before the ring is set up: the kernel refuses it afterwards.
            sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &1)
                .map_err(os("set PACKET_VNET_HDR"))?;
        }
        let copy = cfg.copy_oversized && matches!(cfg.ring, RxRing::V2 { .. });
        if copy {
            // Any non-zero value turns the copy path on (the kernel only tests it).
            sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_COPY_THRESH, &1)
                .map_err(os("set PACKET_COPY_THRESH"))?;
            // Queued copies are charged to the receive buffer; FORCE needs
            // CAP_NET_ADMIN, plain SO_RCVBUF is capped by rmem_max.
            let want = c_int::try_from(COPY_RCVBUF).unwrap_or(c_int::MAX);
            if sys::setsockopt(b, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &want).is_err() {
                let _ = sys::setsockopt(b, libc::SOL_SOCKET, libc::SO_RCVBUF, &want);
            }
        }
        let (block_size, block_nr) = (geo.block_size as u32, geo.block_count as u32);
        let (frame_size, frame_nr) = (geo.frame_size as u32, geo.frame_count() as u32);
        let state = match cfg.ring {
            RxRing::V2 { .. } => {
                let req = libc::tpacket_req {
                    tp_block_size: block_size,
                    tp_block_nr: block_nr,
                    tp_frame_size: frame_size,
                    tp_frame_nr: frame_nr,
                };
                sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
                    .map_err(os("set up PACKET_RX_RING (TPACKET_V2)"))?;
                RxState::V2 { head: 0 }
            }
            RxRing::V3 { block_timeout, .. } => {
                // Whole milliseconds, rounded up (checked to fit by geometry()).
                let tov_ms = block_timeout.as_micros().div_ceil(1000).max(1);
                let req = libc::tpacket_req3 {
                    tp_block_size: block_size,
                    tp_block_nr: block_nr,
                    tp_frame_size: frame_size,
                    tp_frame_nr: frame_nr,
                    tp_retire_blk_tov: u32::try_from(tov_ms).unwrap_or(u32::MAX),
                    tp_sizeof_priv: 0,
                    tp_feature_req_word: 0,
                };
                sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
                    .map_err(os("set up PACKET_RX_RING (TPACKET_V3)"))?;
                RxState::V3 {
                    block: 0,
                    cursor: None,
                }
            }
        };
        let ring = Mmap::map_shared(b, geo.ring_size()).map_err(os("mmap the RX ring"))?;
        if cfg.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: iface.index as c_int,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(os("enable promiscuous mode (PACKET_MR_PROMISC)"))?;
        }
        sys::bind_packet(b, iface.index, ETH_P_ALL).map_err(os("bind the RX socket"))?;
        if let Some(fanout) = cfg.fanout {
            sys::setsockopt(
                b,
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                &fanout.sockopt_value(cfg.ignore_outgoing),
            )
            .map_err(os("join the PACKET_FANOUT group"))?;
        }
        Ok(AfPacketRx {
            fd,
            ring,
            kind: cfg.ring,
            geo,
            state,
            ifname: iface.name.clone(),
            stats: RxRingStats::default(),
            copy_buf: if copy {
                vec![0; COPY_BUF_LEN + if cfg.vnet_hdr { VNET_HDR_LEN } else { 0 }]
            } else {
                Vec::new()
            },
            vnet: cfg.vnet_hdr,
        })
    }

    /// The interface this port receives from.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The ring kind and parameters the port was opened with.
    pub fn ring(&self) -> RxRing {
        self.kind
    }

    /// The ring's layout (block and slot counts after rounding, total size).
    pub fn geometry(&self) -> RxGeometry {
        self.geo
    }

    /// Our own counters.
    pub fn stats(&self) -> RxRingStats {
        self.stats
    }

    /// The kernel's counters since the previous call (ring-full drops in particular).
    pub fn kernel_stats(&self) -> io::Result<KernelRxStats> {
        let fd = self.fd.as_fd();
        Ok(match self.state {
            // The kernel answers with the structure of the socket's ring version and
            // fails a request longer than that.
            RxState::V2 { .. } => {
                let s: libc::tpacket_stats =
                    sys::getsockopt(fd, libc::SOL_PACKET, libc::PACKET_STATISTICS)?;
                KernelRxStats {
                    packets: s.tp_packets,
                    drops: s.tp_drops,
                    freezes: 0,
                }
            }
            RxState::V3 { .. } => {
                let s: libc::tpacket_stats_v3 =
                    sys::getsockopt(fd, libc::SOL_PACKET, libc::PACKET_STATISTICS)?;
                KernelRxStats {
                    packets: s.tp_packets,
                    drops: s.tp_drops,
                    freezes: s.tp_freeze_q_cnt,
                }
            }
        })
    }

    /// Start of V3 block `i`, or of V2 slot `i`.
    fn block_ptr(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.geo.block_count);
        // i < block_count, so the offset stays inside the mapping of
        // block_size * block_count bytes.
        self.ring.as_ptr().wrapping_add(i * self.geo.block_size)
    }

    // ---- V2 ---------------------------------------------------------------------------

    /// Start of V2 slot `i`.
    fn slot_ptr(&self, i: usize) -> *mut u8 {
        let g = &self.geo;
        debug_assert!(i < g.frame_count());
        // The slot lies inside its block: (i % fpb + 1) * frame_size <= block_size.
        self.block_ptr(i / g.frames_per_block)
            .wrapping_add((i % g.frames_per_block) * g.frame_size)
    }

    /// Passes the frame in the slot at `head` on, if the kernel has filled it.
    fn step_v2(&mut self, head: usize, f: &mut dyn FnMut(RxFrame<'_>)) -> Step {
        let slot = self.slot_ptr(head);
        // SAFETY: slots start at multiples of frame_size (a multiple of 16) inside
        // page-aligned blocks of the live mapping, so tp_status at offset 0 is aligned.
        let status = unsafe { status_word(slot.wrapping_add(H2_STATUS)) };
        let st = status.load(Ordering::Acquire);
        if st & libc::TP_STATUS_USER == 0 {
            return Step::Empty;
        }
        let fs = self.geo.frame_size;
        // SAFETY: the slot belongs to user space (TP_STATUS_USER seen with Acquire), so
        // the kernel does not write its header; H2_SIZE <= V2_MIN_FRAME_SIZE <= frame_size,
        // so every field read is inside the slot.
        let (len, snaplen, mac, tci, tpid) = unsafe {
            (
                rd32(slot.add(H2_LEN)) as usize,
                rd32(slot.add(H2_SNAPLEN)) as usize,
                rd16(slot.add(H2_MAC)) as usize,
                rd16(slot.add(H2_VLAN_TCI)),
                rd16(slot.add(H2_VLAN_TPID)),
            )
        };
        let copied = st & libc::TP_STATUS_COPY != 0;
        let vnet_len = if self.vnet { VNET_HDR_LEN } else { 0 };
        let step = if mac < H2_SIZE + vnet_len || mac.checked_add(snaplen).is_none_or(|e| e > fs) {
            self.stats.bad_blocks += 1;
            if copied {
                // Keep the socket queue in step with the ring.
                let mut buf = std::mem::take(&mut self.copy_buf);
                let _ = self.recv_copy(&mut buf);
                self.copy_buf = buf;
            }
            Step::Again
        } else if copied {
            // The slot holds only the beginning; the whole frame is the next one queued
            // on the socket (the kernel queues it under the same lock that hands out the
            // slot, so queue order is ring order).
            let mut buf = std::mem::take(&mut self.copy_buf);
            match self.recv_copy(&mut buf) {
                // With PACKET_VNET_HDR, recv() returns the header first, then the frame.
                Ok(n) if n >= vnet_len => {
                    let gso = self.vnet_gso(&buf[..vnet_len]);
                    let data = &buf[vnet_len..n.min(buf.len())];
                    let frame = rx_frame(data, (n - vnet_len).max(len), st, tci, tpid, gso);
                    self.stats.frames += 1;
                    self.stats.copied += 1;
                    self.stats.truncated += u64::from(frame.truncated);
                    f(frame);
                }
                Ok(_) | Err(_) => {
                    self.stats.copy_lost += 1;
                    // SAFETY: as in the branch below: mac..mac+snaplen lies inside the
                    // user-owned slot, and the slice dies before the slot is handed back.
                    let data = unsafe { std::slice::from_raw_parts(slot.add(mac), snaplen) };
                    let frame = rx_frame(data, len.max(snaplen + 1), st, tci, tpid, None);
                    self.stats.frames += 1;
                    self.stats.truncated += 1;
                    f(frame);
                }
            }
            self.copy_buf = buf;
            Step::Passed
        } else {
            // SAFETY: mac..mac+snaplen lies inside the slot (checked above), which
            // belongs to user space until the status store below; the kernel does not
            // write to it meanwhile. The slice is only lent to `f` (a higher-ranked
            // borrow it cannot keep) and dies before the slot is handed back.
            let data = unsafe { std::slice::from_raw_parts(slot.add(mac), snaplen) };
            let gso = if self.vnet {
                // SAFETY: mac >= H2_SIZE + VNET_HDR_LEN (checked above), so the header the
                // kernel wrote just before the frame lies inside the same user-owned slot.
                let h = unsafe {
                    std::slice::from_raw_parts(slot.add(mac - VNET_HDR_LEN), VNET_HDR_LEN)
                };
                self.vnet_gso(h)
            } else {
                None
            };
            let frame = rx_frame(data, len, st, tci, tpid, gso);
            self.stats.frames += 1;
            self.stats.truncated += u64::from(frame.truncated);
            f(frame);
            Step::Passed
        };
        // Hand the slot back right away so the kernel can refill it.
        status.store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.state = RxState::V2 {
            head: (head + 1) % self.geo.frame_count(),
        };
        step
    }

    /// The GSO metadata in the `virtio_net_hdr` octets `h` (empty when the port did not
    /// ask for them).
    fn vnet_gso(&self, h: &[u8]) -> Option<Gso> {
        h.first_chunk::<VNET_HDR_LEN>().and_then(Gso::from_vnet_hdr)
    }

    /// Reads the frame queued on the socket for a `TP_STATUS_COPY` slot into `buf`.
    /// Returns its real length, which exceeds `buf.len()` if it did not fit.
    fn recv_copy(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match sys::recv(self.fd.as_fd(), buf, libc::MSG_DONTWAIT | libc::MSG_TRUNC) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    // ---- V3 ---------------------------------------------------------------------------

    /// Whether V3 block `block` belongs to user space.
    fn block_ready(&self, block: usize) -> bool {
        let p = self.block_ptr(block);
        // SAFETY: block headers are page aligned inside the live mapping; the status word
        // is at offset 8, so it is 4-byte aligned.
        let st = unsafe { status_word(p.wrapping_add(BLK_STATUS)) }.load(Ordering::Acquire);
        st & libc::TP_STATUS_USER != 0
    }

    /// Starts walking V3 block `block` (ready).
    fn open_block(&mut self, block: usize) -> Cursor {
        let p = self.block_ptr(block);
        // SAFETY: the block is owned by user space (status USER was observed with Acquire
        // ordering), so its header is stable and readable.
        let (num, first) = unsafe { (rd32(p.add(BLK_NUM_PKTS)), rd32(p.add(BLK_FIRST))) };
        let first = first as usize;
        if first < BLK_HDR_LEN || first >= self.geo.block_size {
            self.stats.bad_blocks += 1;
            return Cursor { left: 0, offset: 0 };
        }
        Cursor {
            left: num,
            offset: first,
        }
    }

    /// Gives V3 block `block` back to the kernel and moves to the next one.
    fn release_block(&mut self, block: usize) {
        let p = self.block_ptr(block);
        // SAFETY: as in block_ready. After this store we create no more references into
        // the block until it is handed back to us.
        unsafe { status_word(p.wrapping_add(BLK_STATUS)) }
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.state = RxState::V3 {
            block: (block + 1) % self.geo.block_count,
            cursor: None,
        };
        self.stats.blocks += 1;
    }

    /// Passes the next frame of the current V3 block on, opening or releasing blocks.
    fn step_v3(
        &mut self,
        block: usize,
        cursor: Option<Cursor>,
        f: &mut dyn FnMut(RxFrame<'_>),
    ) -> Step {
        let cur = match cursor {
            Some(c) => c,
            None if self.block_ready(block) => {
                let c = self.open_block(block);
                self.state = RxState::V3 {
                    block,
                    cursor: Some(c),
                };
                return Step::Again;
            }
            None => return Step::Empty,
        };
        if cur.left == 0 {
            self.release_block(block);
            return Step::Again;
        }
        let base = self.block_ptr(block);
        let bs = self.geo.block_size;
        let off = cur.offset;
        if off.checked_add(H3_SIZE).is_none_or(|e| e > bs) {
            self.stats.bad_blocks += 1;
            self.release_block(block);
            return Step::Again;
        }
        // SAFETY: the block is user-owned; off + H3_SIZE <= block_size was checked, so
        // every header field read is inside the block.
        let (next, snaplen, len, status, mac, tci, tpid) = unsafe {
            let h = base.add(off);
            (
                rd32(h.add(H3_NEXT)) as usize,
                rd32(h.add(H3_SNAPLEN)) as usize,
                rd32(h.add(H3_LEN)) as usize,
                rd32(h.add(H3_STATUS)),
                rd16(h.add(H3_MAC)) as usize,
                rd32(h.add(H3_VLAN_TCI)),
                rd16(h.add(H3_VLAN_TPID)),
            )
        };
        let start = off + mac;
        if start.checked_add(snaplen).is_none_or(|e| e > bs) {
            self.stats.bad_blocks += 1;
            self.release_block(block);
            return Step::Again;
        }
        // SAFETY: start..start+snaplen lies inside the block (checked above), which
        // belongs to user space until release_block; the kernel does not write to it
        // meanwhile. The slice is only lent to `f` (a higher-ranked borrow it cannot
        // keep) and dies before the block is released.
        let data = unsafe { std::slice::from_raw_parts(base.add(start), snaplen) };
        let frame = rx_frame(data, len, status, tci as u16, tpid, None);
        self.stats.frames += 1;
        self.stats.truncated += u64::from(frame.truncated);
        f(frame);
        let left = cur.left - 1;
        if left == 0 {
            // Hand the block back right away so the kernel can refill it.
            self.release_block(block);
        } else if next == 0 || off + next >= bs {
            self.stats.bad_blocks += 1;
            self.release_block(block);
        } else {
            self.state = RxState::V3 {
                block,
                cursor: Some(Cursor {
                    left,
                    offset: off + next,
                }),
            };
        }
        Step::Passed
    }

    /// Waits in `poll()` for the ring until `timeout` after `started` (set on the first
    /// call). Returns false once the time is up.
    fn wait(&mut self, started: &mut Option<Instant>, timeout: Duration) -> io::Result<bool> {
        let t0 = *started.get_or_insert_with(Instant::now);
        let elapsed = t0.elapsed();
        if elapsed >= timeout {
            return Ok(false);
        }
        self.stats.polls += 1;
        let rev = sys::poll_one(self.fd.as_fd(), libc::POLLIN, Some(timeout - elapsed))?;
        if rev & libc::POLLNVAL != 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        if rev & libc::POLLERR != 0 {
            match sys::take_socket_error(self.fd.as_fd())? {
                // The link went down: an event, not a failure. The kernel unhooks the
                // socket until the port is up again and then hooks it back in.
                Some(e) if e.raw_os_error() == Some(libc::ENETDOWN) => self.stats.link_down += 1,
                Some(e) => return Err(e),
                None => {}
            }
        }
        Ok(true)
    }
}

impl AsFd for AfPacketRx {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl RxPort for AfPacketRx {
    fn recv_batch(
        &mut self,
        max: usize,
        timeout: Duration,
        f: &mut dyn FnMut(RxFrame<'_>),
    ) -> io::Result<usize> {
        let mut n = 0usize;
        let mut started: Option<Instant> = None;
        while n < max {
            let step = match self.state {
                RxState::V2 { head } => self.step_v2(head, f),
                RxState::V3 { block, cursor } => self.step_v3(block, cursor, f),
            };
            match step {
                Step::Passed => n += 1,
                Step::Again => {}
                // A wake-up is not a promise that the slot we wait for is ready: with
                // V2 the kernel fills slots on several CPUs at once and poll() reports
                // the ring readable when any slot is. Looking again is then a short spin.
                //
                // No busy-polling before poll(): measured in the forwarder benchmark, a
                // bounded spin of 10-30 us on the next slot (with or without
                // sched_yield) found a frame in only 5-30 % of the spins and made no
                // difference to throughput or CPU per byte beyond the noise. Under load
                // the data direction drains some 300 frames per wake-up anyway, and
                // on two cores the spinning thread mostly delays the very thread (or
                // softirq) that would produce its next frame. At idle a spin cannot
                // bridge the gap between frames.
                Step::Empty => {
                    if n > 0 || !self.wait(&mut started, timeout)? {
                        break;
                    }
                }
            }
        }
        Ok(n)
    }
}

/// The transmit half of an interface: a `TPACKET_V2` ring.
///
/// When the frames are delivered locally (a veth peer, as in the namespace benchmark),
/// the kernel cannot keep pointing into the ring and copies each one into fresh pages
/// (`skb_copy_ubufs`), so the ring saves no copy there. Sending the same slots from
/// ordinary memory with one `sendmmsg()` per batch instead (one copy into a packet of
/// its own, no page allocation below a page) was measured in the forwarder benchmark
/// and was no cheaper in CPU per byte at MTU 1500 or 9000; the ring stays, for its
/// zero-copy transmit to real NICs.
pub struct AfPacketTx {
    fd: OwnedFd,
    ring: Mmap,
    block_size: usize,
    frames_per_block: usize,
    frame_count: usize,
    head: usize,
    /// Frames marked for sending since the last successful flush.
    pending: usize,
    /// Index of the last frame marked for sending.
    last_queued: usize,
    mtu: u32,
    ifname: String,
    stats: TxRingStats,
}

impl std::fmt::Debug for AfPacketTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacketTx")
            .field("ifname", &self.ifname)
            .field("frame_count", &self.frame_count)
            .field("mtu", &self.mtu)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl AfPacketTx {
    /// Opens a transmit ring on `iface`. The socket is bound with protocol 0, so it never
    /// receives anything.
    pub fn open(iface: &Interface, cfg: &TxConfig) -> Result<Self, SetupError> {
        let page = sys::page_size();
        if cfg.block_size < TX_FRAME_SIZE || !cfg.block_size.is_multiple_of(page) {
            return Err(config_err(
                "tx block_size",
                format!(
                    "{} must be a multiple of the page size ({page}) and at least {TX_FRAME_SIZE}",
                    cfg.block_size
                ),
            ));
        }
        let frames_per_block = cfg.block_size / TX_FRAME_SIZE;
        let frame_count = frames_per_block
            .checked_mul(cfg.block_count)
            .filter(|n| *n > 0 && *n <= u32::MAX as usize)
            .ok_or_else(|| config_err("tx block_count", format!("{}", cfg.block_count)))?;
        let total = cfg
            .block_size
            .checked_mul(cfg.block_count)
            .filter(|t| *t <= u32::MAX as usize)
            .ok_or_else(|| config_err("tx ring size", "block_size * block_count too large"))?;

        let name = iface.name.as_str();
        let os = |op: &'static str| move |e: io::Error| SetupError::os(name, op, e);
        let fd = sys::packet_socket().map_err(os("open packet socket"))?;
        let b = fd.as_fd();

        let v2 = libc::tpacket_versions::TPACKET_V2 as c_int;
        sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_VERSION, &v2)
            .map_err(os("set PACKET_VERSION TPACKET_V2"))?;
        // A malformed frame must not wedge the ring: with PACKET_LOSS the kernel skips it
        // (marking the slot available) instead of stopping at TP_STATUS_WRONG_FORMAT.
        sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_LOSS, &1)
            .map_err(os("set PACKET_LOSS"))?;
        sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_TX_HAS_OFF, &1)
            .map_err(os("set PACKET_TX_HAS_OFF"))?;
        if cfg.qdisc_bypass {
            sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1)
                .map_err(os("set PACKET_QDISC_BYPASS"))?;
        }
        // Frames in flight are charged to the send buffer: make room for a full ring so
        // a batch rarely has to wait. SNDBUFFORCE needs CAP_NET_ADMIN; fall back.
        let want = c_int::try_from(total.saturating_mul(2)).unwrap_or(c_int::MAX);
        if sys::setsockopt(b, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &want).is_err() {
            let _ = sys::setsockopt(b, libc::SOL_SOCKET, libc::SO_SNDBUF, &want);
        }
        let tv = libc::timeval {
            tv_sec: cfg.flush_timeout.as_secs() as libc::time_t,
            tv_usec: cfg.flush_timeout.subsec_micros() as libc::suseconds_t,
        };
        sys::setsockopt(b, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &tv)
            .map_err(os("set SO_SNDTIMEO"))?;
        let req = libc::tpacket_req {
            tp_block_size: cfg.block_size as u32,
            tp_block_nr: cfg.block_count as u32,
            tp_frame_size: TX_FRAME_SIZE as u32,
            tp_frame_nr: frame_count as u32,
        };
        sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_TX_RING, &req)
            .map_err(os("set up PACKET_TX_RING"))?;
        let ring = Mmap::map_shared(b, total).map_err(os("mmap the TX ring"))?;
        debug_assert_eq!(ring.len(), total);
        sys::bind_packet(b, iface.index, 0).map_err(os("bind the TX socket"))?;
        Ok(AfPacketTx {
            fd,
            ring,
            block_size: cfg.block_size,
            frames_per_block,
            frame_count,
            head: 0,
            pending: 0,
            last_queued: 0,
            mtu: iface.mtu,
            ifname: iface.name.clone(),
            stats: TxRingStats::default(),
        })
    }

    /// The interface this port sends on.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Number of slots in the ring.
    pub fn capacity(&self) -> usize {
        self.frame_count
    }

    /// Our counters.
    pub fn stats(&self) -> TxRingStats {
        self.stats
    }

    /// The MTU that frame lengths are checked against.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// Sets the MTU that frame lengths are checked against (after the interface's MTU was
    /// changed; the kernel enforces the real one anyway).
    pub fn set_mtu(&mut self, mtu: u32) {
        self.mtu = mtu;
    }

    /// Longest frame the kernel accepts for this first EtherType.
    fn max_len(&self, ethertype: u16) -> usize {
        let base = self.mtu as usize + ETH_HLEN;
        if ethertype == VLAN_TPID_8021Q {
            base + 4
        } else {
            base
        }
    }

    fn frame_ptr(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.frame_count);
        let off = (i / self.frames_per_block) * self.block_size
            + (i % self.frames_per_block) * TX_FRAME_SIZE;
        // Inside the mapping: block index < block_count and the frame fits in its block.
        self.ring.as_ptr().wrapping_add(off)
    }

    fn frame_status(&self, i: usize) -> u32 {
        // SAFETY: frame headers are 16-byte aligned (TX_FRAME_SIZE and block_size are
        // multiples of 16) inside the live mapping; tp_status is at offset 0.
        unsafe { status_word(self.frame_ptr(i).wrapping_add(H2_STATUS)) }.load(Ordering::Acquire)
    }

    fn still_pending(&self) -> bool {
        self.pending > 0 && self.frame_status(self.last_queued) == libc::TP_STATUS_SEND_REQUEST
    }

    fn kick(&mut self, flags: c_int) -> io::Result<()> {
        self.stats.kicks += 1;
        loop {
            match sys::kick_tx_ring(self.fd.as_fd(), flags) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.stats.kick_errors += 1;
                    return Err(e);
                }
            }
        }
    }
}

impl AsFd for AfPacketTx {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Errors after which the kernel may simply need another kick: it dropped one frame
/// (`ENOBUFS`) or could not get buffer space without blocking.
fn is_transient(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}

impl TxPort for AfPacketTx {
    fn send_with(
        &mut self,
        fill: &mut dyn FnMut(&mut [u8]) -> Option<Range<usize>>,
    ) -> io::Result<bool> {
        let i = self.head;
        let hdr = self.frame_ptr(i);
        let st = self.frame_status(i);
        if st & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING) != 0 {
            self.stats.ring_full += 1;
            return Ok(false);
        }
        // AVAILABLE (possibly with timestamp bits) or WRONG_FORMAT (not expected with
        // PACKET_LOSS): the slot is ours.
        let slot_len = TX_FRAME_SIZE - TX_DATA_OFF;
        let range = {
            // SAFETY: the slot's data area hdr+TX_DATA_OFF .. hdr+TX_FRAME_SIZE lies in the
            // mapping; the kernel does not touch a frame whose status is not SEND_REQUEST
            // or SENDING, so we have exclusive access while `slot` lives (it ends with
            // this block, before the status is published).
            let slot = unsafe { std::slice::from_raw_parts_mut(hdr.add(TX_DATA_OFF), slot_len) };
            match fill(slot) {
                None => return Ok(true),
                Some(r) => {
                    if r.start > r.end || r.end > slot.len() || r.len() < ETH_HLEN {
                        self.stats.rejected += 1;
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "frame range outside the slot or shorter than an Ethernet header",
                        ));
                    }
                    let ethertype = u16::from_be_bytes([slot[r.start + 12], slot[r.start + 13]]);
                    if r.len() > self.max_len(ethertype) {
                        self.stats.rejected += 1;
                        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
                    }
                    r
                }
            }
        };
        let off = (TX_DATA_OFF + range.start) as u16;
        let len = range.len() as u32;
        // SAFETY: the header fields are inside the frame, which we still own (status not
        // yet published). The status store below, with Release ordering, publishes the
        // header and data to the kernel.
        unsafe {
            hdr.add(H2_LEN).cast::<u32>().write_unaligned(len);
            hdr.add(H2_SNAPLEN).cast::<u32>().write_unaligned(len);
            hdr.add(H2_MAC).cast::<u16>().write_unaligned(off);
            hdr.add(H2_NET).cast::<u16>().write_unaligned(off);
            status_word(hdr.add(H2_STATUS)).store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        }
        self.last_queued = i;
        self.pending += 1;
        self.head = (i + 1) % self.frame_count;
        self.stats.frames += 1;
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        // Fast path: hand everything over without waiting for transmit completions.
        let mut result = match self.kick(libc::MSG_DONTWAIT) {
            Err(e) if !is_transient(&e) => Err(e),
            _ => Ok(()),
        };
        if result.is_ok() && self.still_pending() {
            // The kernel stopped early (send buffer full, or it dropped a frame). Block
            // (bounded by SO_SNDTIMEO) until it has taken the rest.
            self.stats.blocking_kicks += 1;
            for _ in 0..4 {
                match self.kick(0) {
                    Ok(()) => {}
                    Err(e) if is_transient(&e) => {}
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                if !self.still_pending() {
                    break;
                }
            }
            if result.is_ok() && self.still_pending() {
                result = Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "transmit ring not drained within the flush timeout",
                ));
            }
        }
        if !self.still_pending() {
            self.pending = 0;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_value_layout() {
        let v = Fanout::hash(0x1234).sockopt_value(false) as u32;
        assert_eq!(v & 0xffff, 0x1234);
        assert_eq!(v >> 16, libc::PACKET_FANOUT_HASH);
        let r = Fanout {
            group_id: 7,
            mode: FanoutMode::Cpu,
            rollover: true,
        }
        .sockopt_value(true) as u32;
        assert_eq!(
            r >> 16,
            libc::PACKET_FANOUT_CPU
                | libc::PACKET_FANOUT_FLAG_ROLLOVER
                | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING
        );
    }

    #[test]
    fn rx_v2_default_geometry() {
        assert_eq!(RxConfig::default().ring, RxRing::v2());
        let g = RxRing::v2().geometry().unwrap();
        // 68 KiB slots in 1 MiB blocks (a power of two pages: no allocation waste),
        // 15 per block; 128 slots rounded up to 9 blocks.
        assert_eq!(g.frame_size, 68 * 1024);
        assert_eq!(g.block_size, 1 << 20);
        assert_eq!(g.frames_per_block, 15);
        assert_eq!(g.block_count, 9);
        assert_eq!(g.frame_count(), 135);
        assert_eq!(g.ring_size(), 9 << 20);
        // A GSO super-frame fits: 65,535 octets of IP packet, Ethernet header, one tag.
        assert!(RxRing::v2().max_frame_len() >= 65_535 + 14 + 4);
        assert_eq!(RxRing::v2().max_frame_len(), 68 * 1024 - 66);
    }

    #[test]
    fn rx_v2_geometry_rounding_and_limits() {
        let v2 = |frame_size, frame_count| RxRing::V2 {
            frame_size,
            frame_count,
        };
        let page = sys::page_size();
        let g = v2(2048, 16).geometry().unwrap();
        assert_eq!(g.block_size, page);
        assert_eq!(
            g.frame_count(),
            16.max(page / 2048).next_multiple_of(page / 2048)
        );
        // Blocks are always a power of two pages, and waste at most 1/16 after the slots.
        for fs in [
            128,
            1536,
            2048,
            9216 + 128,
            10240,
            65536 + 80,
            68 * 1024,
            200_000,
        ] {
            let g = v2(fs, 3).geometry().unwrap();
            assert!(
                g.block_size.is_power_of_two() && g.block_size % page == 0,
                "{fs}"
            );
            assert!(
                (g.block_size - g.frames_per_block * fs) * 16 <= g.block_size,
                "{fs}"
            );
            assert!(g.frame_count() >= 3 && g.frames_per_block >= 1, "{fs}");
        }
        for bad in [
            v2(64, 16),
            v2(2050, 16),
            v2(2048, 1),
            v2(1 << 31, 2),
            v2(1 << 20, 5000),
        ] {
            assert!(
                matches!(bad.geometry(), Err(SetupError::Config { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rx_v2_sized_for_an_mtu_within_a_budget() {
        for (mtu, budget) in [
            (1500usize, 16usize << 20),
            (9000, 16 << 20),
            (1500, 1 << 20),
        ] {
            let ring = RxRing::v2_sized(mtu + 14 + 8, budget);
            let g = ring.geometry().unwrap();
            // Frames of the MTU fit a slot, and the slot is not much larger.
            assert!(ring.max_frame_len() >= mtu + 22, "{mtu}");
            assert!(g.frame_size < mtu + 22 + 66 + 16, "{mtu}");
            // As many slots as fit in the budget, never more memory than it.
            assert!(g.ring_size() <= budget, "{mtu}: {g:?}");
            assert!(g.ring_size() + g.block_size > budget, "{mtu}: {g:?}");
        }
        let g = RxRing::v2_sized(1522, 16 << 20).geometry().unwrap();
        assert!(g.frame_count() > 10_000, "{g:?}");
        let g = RxRing::v2_sized(9022, 16 << 20).geometry().unwrap();
        assert!(g.frame_count() > 1_700, "{g:?}");
        // A budget smaller than a block still gives a working ring.
        let g = RxRing::v2_sized(9022, 1000).geometry().unwrap();
        assert!(g.frame_count() >= 2);
    }

    #[test]
    fn rx_v3_geometry_as_before() {
        let g = RxRing::v3().geometry().unwrap();
        assert_eq!((g.block_size, g.block_count), (1 << 20, 16));
        assert_eq!(g.frame_count(), 16 * 512);
        assert_eq!(RxRing::v3().max_frame_len(), (1 << 20) - 48 - 82);
        let bad = RxRing::V3 {
            block_size: 32 * 1024,
            block_count: 4,
            block_timeout: Duration::from_millis(1),
        };
        assert!(bad.geometry().is_err());
    }

    #[test]
    fn tx_geometry() {
        let cfg = TxConfig::default();
        assert_eq!(cfg.block_size / TX_FRAME_SIZE, 102);
        assert_eq!(TX_FRAME_SIZE % libc::TPACKET_ALIGNMENT, 0);
    }
}

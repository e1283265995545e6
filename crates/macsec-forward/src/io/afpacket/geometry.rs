//! Ring geometry: the kernel's TPACKET_V2/V3 header layouts, receive ring kinds and
//! sizes, and the receive and transmit ring parameters.

use super::*;

// ---- TPACKET_V3 layout (receive) -----------------------------------------------------

/// Offset of `block_status` in `struct tpacket_block_desc`.
pub(super) const BLK_STATUS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, block_status);
/// Offset of `num_pkts`.
pub(super) const BLK_NUM_PKTS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, num_pkts);
/// Offset of `offset_to_first_pkt`.
pub(super) const BLK_FIRST: usize = offset_of!(libc::tpacket_block_desc, hdr)
    + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
/// Size of the block descriptor, rounded as the kernel does (`BLK_HDR_LEN`).
pub(super) const BLK_HDR_LEN: usize = size_of::<libc::tpacket_block_desc>().next_multiple_of(8);

pub(super) const H3_NEXT: usize = offset_of!(libc::tpacket3_hdr, tp_next_offset);
pub(super) const H3_SNAPLEN: usize = offset_of!(libc::tpacket3_hdr, tp_snaplen);
pub(super) const H3_LEN: usize = offset_of!(libc::tpacket3_hdr, tp_len);
pub(super) const H3_STATUS: usize = offset_of!(libc::tpacket3_hdr, tp_status);
pub(super) const H3_MAC: usize = offset_of!(libc::tpacket3_hdr, tp_mac);
pub(super) const H3_VLAN_TCI: usize =
    offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci);
pub(super) const H3_VLAN_TPID: usize =
    offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid);
pub(super) const H3_SIZE: usize = size_of::<libc::tpacket3_hdr>();

// ---- TPACKET_V2 layout (receive and transmit) ----------------------------------------

pub(super) const H2_STATUS: usize = offset_of!(libc::tpacket2_hdr, tp_status);
pub(super) const H2_LEN: usize = offset_of!(libc::tpacket2_hdr, tp_len);
pub(super) const H2_SNAPLEN: usize = offset_of!(libc::tpacket2_hdr, tp_snaplen);
pub(super) const H2_MAC: usize = offset_of!(libc::tpacket2_hdr, tp_mac);
pub(super) const H2_NET: usize = offset_of!(libc::tpacket2_hdr, tp_net);
pub(super) const H2_VLAN_TCI: usize = offset_of!(libc::tpacket2_hdr, tp_vlan_tci);
pub(super) const H2_VLAN_TPID: usize = offset_of!(libc::tpacket2_hdr, tp_vlan_tpid);
pub(super) const H2_SIZE: usize = size_of::<libc::tpacket2_hdr>();
/// Where frame data may start in a TX slot: the kernel's `tp_hdrlen - sizeof(sockaddr_ll)`.
pub(super) const TX_DATA_OFF: usize = libc::TPACKET2_HDRLEN - size_of::<libc::sockaddr_ll>();
/// Size of one TX ring frame: header plus a [`TX_SLOT_LEN`] data area.
pub(super) const TX_FRAME_SIZE: usize =
    (TX_DATA_OFF + TX_SLOT_LEN).next_multiple_of(libc::TPACKET_ALIGNMENT);

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

/// Default size of one [`RxRing::V2`] slot: 68 KiB, enough for a whole TCP GSO
/// super-frame (an IP packet of up to 65,535 octets behind a 14-octet Ethernet header,
/// plus an inner VLAN tag) after the kernel's 66-octet slot header.
pub const RX_V2_FRAME_SIZE: usize = 68 * 1024;

/// Default number of [`RxRing::V2`] slots requested (rounded up to whole blocks: 135
/// slots, 9 MiB, with the default slot size).
pub const RX_V2_FRAME_COUNT: usize = 128;

/// Where frame data starts in a V2 slot: the kernel puts the network header at
/// `TPACKET_ALIGN(tp_hdrlen + 16)` and the 14-octet Ethernet header in front of it.
pub(super) const V2_MAC_OFF: usize =
    (libc::TPACKET2_HDRLEN + 16).next_multiple_of(libc::TPACKET_ALIGNMENT) - ETH_HLEN;
/// The same for V3 (`tp_hdrlen` is `TPACKET3_HDRLEN`: the 48-octet header plus a
/// `sockaddr_ll`).
pub(super) const V3_MAC_OFF: usize = (H3_SIZE + size_of::<libc::sockaddr_ll>() + 16)
    .next_multiple_of(libc::TPACKET_ALIGNMENT)
    - ETH_HLEN;
/// Smallest V2 slot accepted: the slot header plus a minimum-size frame.
pub(super) const V2_MIN_FRAME_SIZE: usize = 128;
/// Largest block a V2 ring is given (unless one slot needs more): the kernel's largest
/// physically contiguous allocation with 4 KiB pages (`MAX_PAGE_ORDER` 10).
pub(super) const V2_MAX_BLOCK: usize = 4 << 20;

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
pub(super) const COPY_BUF_LEN: usize = 65_536 + 512;

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
    /// `PACKET_VNET_HDR` with a header that asks for the whole frame as the copied
    /// "header" (`hdr_len` = frame length): the kernel copies each frame into the linear
    /// part of its buffer when it takes it from the ring, instead of attaching the ring's
    /// pages to the buffer as zero-copy fragments. A NIC sends those fragments without a
    /// copy, so off (the default) is right for real hardware; a veth or a tap device,
    /// which hand the frame back to a local stack, must copy the fragments again anyway,
    /// page by page (`skb_copy_ubufs`), and one straight copy is cheaper there
    /// ([`super::super::iface::Interface::loops_back_into_the_stack`]). Measured on
    /// veths: 6-17 % more forwarder throughput (`benches/forward.sh`).
    pub linear: bool,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig {
            block_size: 1 << 20,
            block_count: 4,
            qdisc_bypass: true,
            linear: false,
        }
    }
}

//! The transmit half of an interface: a `TPACKET_V2` ring with
//! `PACKET_TX_HAS_OFF` and `PACKET_QDISC_BYPASS`, and optionally `PACKET_VNET_HDR`
//! ([`TxConfig::linear`]).

use super::geometry::*;
use super::*;

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
    /// Kicks after which the kernel had not taken every queued frame (its send buffer
    /// was full): the rest stay queued for the next flush, which never waits for them.
    pub partial_kicks: u64,
    /// Kicks that returned an error (e.g. `ENOBUFS` when the driver dropped a frame).
    pub kick_errors: u64,
}

/// The transmit half of an interface: a `TPACKET_V2` ring, for its zero-copy transmit
/// to real NICs (`sendmmsg()` measured no cheaper on veth; see `docs/design-notes.md`).
pub struct AfPacketTx {
    fd: OwnedFd,
    ring: Mmap,
    block_size: usize,
    frames_per_block: usize,
    frame_count: usize,
    /// The next slot to fill: its index, its offset in the ring, and its index in its
    /// block (kept as they advance, so no slot address needs a division).
    head: usize,
    head_off: usize,
    head_in_block: usize,
    /// Frames marked for sending since the last successful flush.
    pending: usize,
    /// Ring offset of the last frame marked for sending.
    last_queued_off: usize,
    mtu: u32,
    ifname: String,
    stats: TxRingStats,
    /// [`TxConfig::linear`]: every frame is preceded by a `virtio_net_hdr`.
    vnet: bool,
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
        // A kernel without virtio_net_hdr on transmit rings (before 4.6) refuses the option:
        // the ring then stays zero-copy, which is only slower on a veth, never wrong.
        let vnet =
            cfg.linear && sys::setsockopt(b, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &1).is_ok();
        // Frames in flight are charged to the send buffer: make room for a full ring so
        // a batch rarely has to wait. SNDBUFFORCE needs CAP_NET_ADMIN; fall back.
        let want = c_int::try_from(total.saturating_mul(2)).unwrap_or(c_int::MAX);
        if sys::setsockopt(b, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &want).is_err() {
            let _ = sys::setsockopt(b, libc::SOL_SOCKET, libc::SO_SNDBUF, &want);
        }
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
            head_off: 0,
            head_in_block: 0,
            pending: 0,
            last_queued_off: 0,
            mtu: iface.mtu,
            ifname: iface.name.clone(),
            stats: TxRingStats::default(),
            vnet,
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

    /// Whether frames go to the kernel with a `virtio_net_hdr` that has it copy them
    /// into linear buffers ([`TxConfig::linear`] asked for, and the kernel took it).
    pub fn is_linear(&self) -> bool {
        self.vnet
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
        if ethertype == macsec::wire::ethernet::ethertype::VLAN {
            base + 4
        } else {
            base
        }
    }

    /// The frame header at ring offset `off` (a slot start).
    fn frame_ptr(&self, off: usize) -> *mut u8 {
        debug_assert!(off + TX_FRAME_SIZE <= self.ring.len());
        // Inside the mapping: `off` is the start of a slot, which fits in its block.
        self.ring.as_ptr().wrapping_add(off)
    }

    fn frame_status(&self, off: usize) -> u32 {
        // SAFETY: frame headers are 16-byte aligned (TX_FRAME_SIZE and block_size are
        // multiples of 16) inside the live mapping; tp_status is at offset 0.
        unsafe { status_word(self.frame_ptr(off).wrapping_add(H2_STATUS)) }.load(Ordering::Acquire)
    }

    fn still_pending(&self) -> bool {
        self.pending > 0 && self.frame_status(self.last_queued_off) == libc::TP_STATUS_SEND_REQUEST
    }

    /// Moves the head to the next slot: the next one in the block, the first of the
    /// next block, or back to the first.
    #[inline(always)]
    fn advance(&mut self) {
        self.head += 1;
        self.head_in_block += 1;
        if self.head == self.frame_count {
            self.head = 0;
            self.head_in_block = 0;
            self.head_off = 0;
        } else if self.head_in_block == self.frames_per_block {
            self.head_in_block = 0;
            self.head_off =
                self.head_off - (self.frames_per_block - 1) * TX_FRAME_SIZE + self.block_size;
        } else {
            self.head_off += TX_FRAME_SIZE;
        }
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

/// Writes the `virtio_net_hdr` of [`TxConfig::linear`] in front of the frame at `r` in
/// `slot`, first moving a frame that starts too close to the slot's start (no pump writes
/// one there); the frame's range afterwards, or `None` if the slot has no room for both.
#[inline(always)]
fn put_vnet_hdr(slot: &mut [u8], r: Range<usize>) -> Option<Range<usize>> {
    let r = if r.start >= VNET_HDR_LEN {
        r
    } else if r.len() + VNET_HDR_LEN <= slot.len() {
        let len = r.len();
        slot.copy_within(r, VNET_HDR_LEN);
        VNET_HDR_LEN..VNET_HDR_LEN + len
    } else {
        return None;
    };
    // struct virtio_net_hdr, little-endian (virtio 1.0): no checksum to complete, no
    // segmentation, and hdr_len = the whole frame, so that the kernel copies all of it
    // into the buffer's linear part. The frame is at most TX_SLOT_LEN octets, so its
    // length fits in 16 bits.
    let h = &mut slot[r.start - VNET_HDR_LEN..r.start];
    h.fill(0);
    h[2..4].copy_from_slice(&(r.len() as u16).to_le_bytes());
    Some(r)
}

impl AfPacketTx {
    /// [`TxPort::send_slot`]: the slot at the head, offered to `fill`.
    #[inline(always)]
    fn offer<F: FnMut(&mut [u8]) -> Option<Range<usize>>>(
        &mut self,
        mut fill: F,
    ) -> io::Result<bool> {
        let off = self.head_off;
        let hdr = self.frame_ptr(off);
        let st = self.frame_status(off);
        if st & (libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING) != 0 {
            self.stats.ring_full += 1;
            return Ok(false);
        }
        // AVAILABLE (possibly with timestamp bits) or WRONG_FORMAT (not expected with
        // PACKET_LOSS): the slot is ours.
        let slot_len = TX_FRAME_SIZE - TX_DATA_OFF;
        let (range, pre) = {
            // SAFETY: the slot's data area hdr+TX_DATA_OFF .. hdr+TX_FRAME_SIZE lies in the
            // mapping; the kernel does not touch a frame whose status is not SEND_REQUEST
            // or SENDING, so we have exclusive access while `slot` lives (it ends with
            // this block, before the status is published).
            let slot = unsafe { std::slice::from_raw_parts_mut(hdr.add(TX_DATA_OFF), slot_len) };
            let r = match fill(slot) {
                None => return Ok(true),
                Some(r) => r,
            };
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
            if !self.vnet {
                (r, 0)
            } else if let Some(r) = put_vnet_hdr(slot, r) {
                (r, VNET_HDR_LEN)
            } else {
                self.stats.rejected += 1;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no room for the virtio_net_hdr in front of the frame",
                ));
            }
        };
        let data_off = (TX_DATA_OFF + range.start - pre) as u16;
        let len = (range.len() + pre) as u32;
        // SAFETY: the header fields are inside the frame, which we still own (status not
        // yet published). The status store below, with Release ordering, publishes the
        // header and data to the kernel.
        unsafe {
            hdr.add(H2_LEN).cast::<u32>().write_unaligned(len);
            hdr.add(H2_SNAPLEN).cast::<u32>().write_unaligned(len);
            hdr.add(H2_MAC).cast::<u16>().write_unaligned(data_off);
            hdr.add(H2_NET).cast::<u16>().write_unaligned(data_off);
            status_word(hdr.add(H2_STATUS)).store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        }
        self.last_queued_off = off;
        self.pending += 1;
        self.advance();
        self.stats.frames += 1;
        Ok(true)
    }
}

impl TxPort for AfPacketTx {
    fn send_with(
        &mut self,
        fill: &mut dyn FnMut(&mut [u8]) -> Option<Range<usize>>,
    ) -> io::Result<bool> {
        self.offer(fill)
    }

    #[inline(always)]
    fn send_slot<F: FnMut(&mut [u8]) -> Option<Range<usize>>>(
        &mut self,
        fill: F,
    ) -> io::Result<bool> {
        self.offer(fill)
    }

    /// One `sendto(MSG_DONTWAIT)` for everything queued. If the kernel stops early (its
    /// send buffer is full, or the driver dropped a frame) the rest stays queued for the
    /// next flush: a flush never waits, so a full transmit ring never holds up the
    /// receive ring that feeds it (the frames that find it full are counted instead).
    fn flush(&mut self) -> io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let result = match self.kick(libc::MSG_DONTWAIT) {
            Err(e) if !is_transient(&e) => Err(e),
            _ => Ok(()),
        };
        if result.is_err() || !self.still_pending() {
            // Sent, or the port cannot send (it is down): nothing to come back for. Frames
            // the kernel did not take go with the next kick that succeeds.
            self.pending = 0;
        } else {
            self.stats.partial_kicks += 1;
        }
        result
    }

    fn backlog(&self) -> bool {
        self.pending > 0
    }
}

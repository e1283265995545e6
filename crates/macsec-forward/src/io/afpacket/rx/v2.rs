//! Reading a `TPACKET_V2` receive ring: one slot per frame, and the copy path for
//! frames longer than a slot.

use super::*;

impl AfPacketRx {
    // ---- V2 ---------------------------------------------------------------------------

    /// Start of the V2 slot at ring offset `off`.
    pub(super) fn slot_ptr(&self, off: usize) -> *mut u8 {
        debug_assert!(off + self.geo.frame_size <= self.geo.ring_size());
        // `off` is a slot start (kept by `step_v2`), so the slot lies inside its block.
        self.ring.as_ptr().wrapping_add(off)
    }

    /// Passes the frame in the slot at `head` (ring offset `off`, `in_block`-th of its
    /// block) on, if the kernel has filled it.
    #[inline(always)]
    pub(super) fn step_v2<F: FnMut(RxFrame<'_>)>(
        &mut self,
        head: usize,
        off: usize,
        in_block: usize,
        f: &mut F,
    ) -> Step {
        let slot = self.slot_ptr(off);
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
        let g = &self.geo;
        self.state = if head + 1 == g.frame_count() {
            RxState::V2 {
                head: 0,
                off: 0,
                in_block: 0,
            }
        } else if in_block + 1 == g.frames_per_block {
            RxState::V2 {
                head: head + 1,
                off: off - in_block * g.frame_size + g.block_size,
                in_block: 0,
            }
        } else {
            RxState::V2 {
                head: head + 1,
                off: off + g.frame_size,
                in_block: in_block + 1,
            }
        };
        step
    }

    /// The GSO metadata in the `virtio_net_hdr` octets `h` (empty when the port did not
    /// ask for them).
    pub(super) fn vnet_gso(&self, h: &[u8]) -> Option<Gso> {
        h.first_chunk::<VNET_HDR_LEN>().and_then(Gso::from_vnet_hdr)
    }

    /// Reads the frame queued on the socket for a `TP_STATUS_COPY` slot into `buf`.
    /// Returns its real length, which exceeds `buf.len()` if it did not fit.
    pub(super) fn recv_copy(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match sys::recv(self.fd.as_fd(), buf, libc::MSG_DONTWAIT | libc::MSG_TRUNC) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

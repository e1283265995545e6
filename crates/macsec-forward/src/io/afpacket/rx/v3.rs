//! Reading a `TPACKET_V3` receive ring: blocks of frames handed over whole.

use super::*;

impl AfPacketRx {
    // ---- V3 ---------------------------------------------------------------------------

    /// Whether V3 block `block` belongs to user space.
    pub(super) fn block_ready(&self, block: usize) -> bool {
        let p = self.block_ptr(block);
        // SAFETY: block headers are page aligned inside the live mapping; the status word
        // is at offset 8, so it is 4-byte aligned.
        let st = unsafe { status_word(p.wrapping_add(BLK_STATUS)) }.load(Ordering::Acquire);
        st & libc::TP_STATUS_USER != 0
    }

    /// Starts walking V3 block `block` (ready).
    pub(super) fn open_block(&mut self, block: usize) -> Cursor {
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
    pub(super) fn release_block(&mut self, block: usize) {
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
    pub(super) fn step_v3<F: FnMut(RxFrame<'_>)>(
        &mut self,
        block: usize,
        cursor: Option<Cursor>,
        f: &mut F,
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
}

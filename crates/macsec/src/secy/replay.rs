//! Replay protection and XPN packet-number recovery (802.1AE 10.6.2, 10.6.5;
//! 802.1AEbw 10.6.2 for the 64-bit PN).
//!
//! The standard rule is a lower bound only: a frame is late when its PN is below the
//! lowest acceptable PN, `lowestPN = max(floor, nextPN - replayWindow)`, where `nextPN`
//! is one more than the highest PN that passed the ICV check and `floor` is the lowest
//! acceptable PN set by the operator or the KaY. Duplicates of PNs still inside the
//! window pass, as in Linux. [`ReplayMode::RejectDuplicates`] adds a bitmap over the
//! window that also rejects a PN already accepted (a stricter, non-standard option).
//!
//! Arithmetic is done in `u128` so that the state after accepting PN 2^64 - 1 (XPN)
//! is exact instead of wrapping: nothing is acceptable after it.

/// Whether duplicates inside the replay window are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum ReplayMode {
    /// 802.1AE and Linux: reject only PNs below the lowest acceptable PN.
    #[default]
    LowerBound,
    /// Also reject a PN inside the window that was already accepted (counted as
    /// InPktsLate). Needs a bitmap of `replayWindow` bits per SA, so the window is
    /// limited to [`MAX_DUPLICATE_WINDOW`].
    RejectDuplicates,
}

/// Largest replay window the duplicate-rejecting mode supports.
pub const MAX_DUPLICATE_WINDOW: u32 = 1 << 16;

/// Largest replay window an XPN SecY accepts (802.1AEbw 10.7.8; Linux
/// `MACSEC_XPN_MAX_REPLAY_WINDOW`): the window must stay well below 2^31 for
/// [`recover_xpn_pn`] to be unambiguous.
pub const MAX_XPN_WINDOW: u32 = (1 << 30) - 1;

/// Recovers the full 64-bit PN of an XPN frame from the 32 bits in its SecTAG
/// (802.1AEbw 10.6.2): the high half is that of `lowest`, plus one if `lowest` is in
/// the upper half of its 2^32 block and the wire PN in the lower half. Returns `None`
/// when the result would not fit in 64 bits (only possible at the very end of the PN
/// space).
#[inline]
pub fn recover_xpn_pn(pn32: u32, lowest: u64) -> Option<u64> {
    let mut hi = lowest >> 32;
    if (lowest as u32) & 0x8000_0000 != 0 && pn32 & 0x8000_0000 == 0 {
        hi += 1;
        if hi > u32::MAX as u64 {
            return None;
        }
    }
    Some((hi << 32) | pn32 as u64)
}

/// The replay state of one receive SA.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// One more than the highest PN accepted (or the initial lowest acceptable PN).
    next_pn: u128,
    /// Lowest acceptable PN set from outside (configuration, KaY).
    floor: u128,
    window: u32,
    /// `max(floor, next_pn - window) - 1`, the highest late PN, kept up to date so the
    /// per-frame check is one 64-bit comparison. The lowest acceptable PN is at least 1
    /// and at most 2^64, so this always fits.
    max_late: u64,
    /// Ring bitmap of accepted PNs in `[next_pn - bits, next_pn)`, indexed by
    /// `pn % bits`; present only in [`ReplayMode::RejectDuplicates`] with a window > 0.
    bitmap: Option<Box<[u64]>>,
}

impl ReplayWindow {
    /// A window whose lowest acceptable PN is `lowest` (at least 1).
    pub fn new(lowest: u64, window: u32, mode: ReplayMode) -> ReplayWindow {
        let lowest = lowest.max(1) as u128;
        let bitmap = match mode {
            ReplayMode::RejectDuplicates if window > 0 => {
                let bits = (window as usize + 1).next_power_of_two().max(64);
                Some(vec![0u64; bits / 64].into_boxed_slice())
            }
            _ => None,
        };
        ReplayWindow {
            next_pn: lowest,
            floor: lowest,
            window,
            max_late: (lowest - 1) as u64,
            bitmap,
        }
    }

    /// The lowest acceptable PN (saturated to `u64::MAX + 1` as `None` when no PN
    /// is acceptable any more).
    #[inline]
    pub fn lowest_pn(&self) -> Option<u64> {
        u64::try_from(self.lowest()).ok()
    }

    fn lowest(&self) -> u128 {
        let lowest = self.max_late as u128 + 1;
        debug_assert_eq!(
            lowest,
            self.next_pn
                .saturating_sub(self.window as u128)
                .max(self.floor)
        );
        lowest
    }

    #[inline(always)]
    fn update_lowest(&mut self) {
        let lowest = self
            .next_pn
            .saturating_sub(self.window as u128)
            .max(self.floor);
        // floor >= 1 and next_pn <= 2^64, so 1 <= lowest <= 2^64.
        self.max_late = (lowest - 1) as u64;
    }

    /// The lowest acceptable PN clamped to 64 bits, the reference for XPN recovery.
    #[inline(always)]
    pub fn recovery_reference(&self) -> u64 {
        self.max_late.saturating_add(1)
    }

    /// One more than the highest PN accepted so far (`None` after PN 2^64 - 1).
    pub fn next_pn(&self) -> Option<u64> {
        u64::try_from(self.next_pn).ok()
    }

    /// Whether `pn` is below the lowest acceptable PN (InPktsLate with replayProtect,
    /// InPktsDelayed without).
    #[inline(always)]
    pub fn is_below_lowest(&self, pn: u64) -> bool {
        debug_assert_eq!(pn <= self.max_late, (pn as u128) < self.lowest());
        pn <= self.max_late
    }

    /// The replay check before decryption: late, or (duplicate mode) already seen.
    #[inline(always)]
    pub fn check(&self, pn: u64) -> bool {
        if self.is_below_lowest(pn) {
            return false;
        }
        match &self.bitmap {
            Some(bm) if (pn as u128) < self.next_pn => {
                let (w, b) = Self::pos(bm.len(), pn);
                bm[w] & (1 << b) == 0
            }
            _ => true,
        }
    }

    #[inline]
    fn pos(words: usize, pn: u64) -> (usize, u32) {
        let bits = (words * 64) as u64;
        let i = pn % bits;
        ((i / 64) as usize, (i % 64) as u32)
    }

    /// Records `pn` as accepted after its ICV verified: raises nextPN to `pn + 1`
    /// if that is higher (802.1AE 10.6.5).
    #[inline(always)]
    pub fn commit(&mut self, pn: u64) {
        let p = pn as u128;
        if let Some(bm) = &mut self.bitmap {
            let bits = (bm.len() * 64) as u128;
            if p >= self.next_pn {
                let gap = p - self.next_pn;
                if gap >= bits {
                    bm.iter_mut().for_each(|w| *w = 0);
                } else {
                    for q in self.next_pn..p {
                        let (w, b) = Self::pos(bm.len(), q as u64);
                        bm[w] &= !(1 << b);
                    }
                }
            }
            let (w, b) = Self::pos(bm.len(), pn);
            bm[w] |= 1 << b;
        }
        if p + 1 > self.next_pn {
            self.next_pn = p + 1;
            self.update_lowest();
        }
    }

    /// Raises the lowest acceptable PN (never lowers it), e.g. for the KaY.
    pub fn raise_floor(&mut self, lowest: u64) {
        let l = lowest as u128;
        if l > self.floor {
            self.floor = l;
        }
        if self.next_pn < self.floor {
            self.next_pn = self.floor;
        }
        self.update_lowest();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xpn_recovery_matches_the_notes() {
        // DPDK XPN anti-replay group crossing 2^32 (notes section 4.3).
        assert_eq!(recover_xpn_pn(0xFFFF_FFFE, 0xFFFF_FFFE), Some(0xFFFF_FFFE));
        assert_eq!(recover_xpn_pn(0x62, 0xFFFF_FFFF), Some(0x1_0000_0062));
        assert_eq!(recover_xpn_pn(0x0, 0x1_0000_0000), Some(0x1_0000_0000));
        assert_eq!(
            recover_xpn_pn(0xFFFF_FFFF, 0x1_0000_0000),
            Some(0x1_FFFF_FFFF)
        );
        assert_eq!(
            recover_xpn_pn(0xFFFF_FFFF, 0x0_FFFF_FFE2),
            Some(0x0_FFFF_FFFF)
        );
        assert_eq!(recover_xpn_pn(5, u64::MAX - 3), None);
        assert_eq!(recover_xpn_pn(0xFFFF_FFFF, u64::MAX - 3), Some(u64::MAX));
    }

    #[test]
    fn lower_bound_semantics() {
        let mut w = ReplayWindow::new(1, 0, ReplayMode::LowerBound);
        assert!(w.check(2));
        w.commit(2);
        assert!(!w.check(2), "window 0: in order only");
        assert!(!w.check(1));
        let mut w = ReplayWindow::new(1, 32, ReplayMode::LowerBound);
        w.commit(75);
        assert!(w.check(50), "inside window");
        assert!(w.check(75), "duplicates pass in lower-bound mode");
        assert!(!w.check(3));
        assert_eq!(w.lowest_pn(), Some(44));
    }

    #[test]
    fn duplicate_mode_rejects_repeats() {
        let mut w = ReplayWindow::new(1, 32, ReplayMode::RejectDuplicates);
        w.commit(75);
        assert!(!w.check(75));
        assert!(w.check(50));
        w.commit(50);
        assert!(!w.check(50));
        w.commit(1000);
        assert!(w.check(999) && !w.check(1000) && !w.check(50));
    }

    #[test]
    fn end_of_pn_space() {
        let mut w = ReplayWindow::new(u64::MAX - 1, 0, ReplayMode::LowerBound);
        assert!(w.check(u64::MAX));
        w.commit(u64::MAX);
        assert!(!w.check(u64::MAX));
        assert_eq!(w.next_pn(), None);
        assert_eq!(w.lowest_pn(), None);
        assert_eq!(w.recovery_reference(), u64::MAX);
    }

    #[test]
    fn floor_is_respected() {
        let mut w = ReplayWindow::new(100, 64, ReplayMode::LowerBound);
        assert!(!w.check(99));
        w.commit(120);
        assert!(!w.check(99), "window must not reach below the floor");
        w.raise_floor(130);
        assert!(!w.check(125) && w.check(130));
    }
}

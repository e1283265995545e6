use super::geometry::*;
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

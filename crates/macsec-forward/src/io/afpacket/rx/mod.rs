//! The receive half of an interface: an `AF_PACKET` socket with a `TPACKET_V2` or
//! `TPACKET_V3` ring.

use super::geometry::*;
use super::*;

mod v2;
mod v3;

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
    /// The next slot to read: its index, its offset in the ring and its index in its
    /// block (kept as they advance, so no slot address needs a division).
    V2 {
        head: usize,
        off: usize,
        in_block: usize,
    },
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
            macsec::wire::ethernet::ethertype::VLAN
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
                RxState::V2 {
                    head: 0,
                    off: 0,
                    in_block: 0,
                }
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
            self.take_error()?;
        }
        Ok(true)
    }

    /// Takes the socket's pending error after a poll reported `POLLERR`: the port going
    /// down is counted ([`RxRingStats::link_down`]), anything else is returned (and
    /// `ENODEV`, the interface deleted, means this port is gone for good).
    pub fn take_error(&mut self) -> io::Result<()> {
        match sys::take_socket_error(self.fd.as_fd())? {
            // The link went down: an event, not a failure. The kernel unhooks the
            // socket until the port is up again and then hooks it back in.
            Some(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                self.stats.link_down += 1;
                Ok(())
            }
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl AsFd for AfPacketRx {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AfPacketRx {
    /// [`RxPort::recv_each`]: the frame loop, with the callback inlined.
    #[inline(always)]
    fn recv_frames<F: FnMut(RxFrame<'_>)>(
        &mut self,
        max: usize,
        timeout: Duration,
        f: &mut F,
    ) -> io::Result<usize> {
        let mut n = 0usize;
        let mut started: Option<Instant> = None;
        while n < max {
            let step = match self.state {
                RxState::V2 {
                    head,
                    off,
                    in_block,
                } => self.step_v2(head, off, in_block, f),
                RxState::V3 { block, cursor } => self.step_v3(block, cursor, f),
            };
            match step {
                Step::Passed => n += 1,
                Step::Again => {}
                // A wake-up is not a promise that the slot we wait for is ready: with
                // V2 the kernel fills slots on several CPUs at once and poll() reports
                // the ring readable when any slot is. Looking again is then a short spin.
                // No busy-polling before poll(): it gained nothing and delays the
                // producer on few cores (docs/design-notes.md).
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

impl RxPort for AfPacketRx {
    fn recv_batch(
        &mut self,
        max: usize,
        timeout: Duration,
        f: &mut dyn FnMut(RxFrame<'_>),
    ) -> io::Result<usize> {
        self.recv_frames(max, timeout, &mut |fr: RxFrame<'_>| f(fr))
    }

    #[inline(always)]
    fn recv_each<F: FnMut(RxFrame<'_>)>(
        &mut self,
        max: usize,
        timeout: Duration,
        mut f: F,
    ) -> io::Result<usize> {
        self.recv_frames(max, timeout, &mut f)
    }
}

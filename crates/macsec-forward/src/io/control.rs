//! A low-rate control socket for EAPOL frames (MKPDUs): an `AF_PACKET` socket bound to one
//! EtherType on one interface, with a blocking receive bounded by a timeout and a send of
//! a whole frame.
//!
//! It is also a plain "one system call per frame" packet socket, which the benchmarks use
//! as the naive baseline for the rings in [`super::afpacket`].
//!
//! Note that the data-plane receive port (bound to every EtherType) sees EAPOL frames
//! too: the forwarder must not forward them.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use libc::c_int;

use macsec::wire::MacAddr;

use super::iface::Interface;
use super::sys;
use super::SetupError;

/// A received control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlFrame {
    /// Octets stored in the caller's buffer.
    pub len: usize,
    /// The frame was longer than the buffer (its real length is `orig_len`).
    pub truncated: bool,
    /// The frame's real length.
    pub orig_len: usize,
    /// The 802.1Q tag (TCI) the frame arrived with, which the kernel has removed from
    /// the octets in the buffer; `None` for an untagged frame.
    pub vlan_tci: Option<u16>,
}

impl ControlFrame {
    /// The VLAN ID of the frame's tag; `None` when untagged or priority-tagged (VID 0).
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci.map(|t| t & 0x0FFF).filter(|&v| v != 0)
    }
}

/// An `AF_PACKET` socket bound to one EtherType on one interface.
///
/// All methods take `&self`; the socket can be shared between a receiving and a sending
/// thread.
#[derive(Debug)]
pub struct ControlSocket {
    fd: OwnedFd,
    ifname: String,
    ifindex: u32,
    ethertype: u16,
}

impl ControlSocket {
    /// Opens a socket for EAPOL (0x888E) on `iface` and joins the PAE group address
    /// 01:80:C2:00:00:03, so MKPDUs reach it without promiscuous mode.
    pub fn open_eapol(iface: &Interface) -> Result<Self, SetupError> {
        let s = ControlSocket::open(iface, macsec::wire::ethernet::ethertype::EAPOL)?;
        s.join_multicast(MacAddr::PAE_GROUP)?;
        Ok(s)
    }

    /// Opens a socket receiving only frames of `ethertype` on `iface`. Our own
    /// transmissions are not read back (`PACKET_IGNORE_OUTGOING`).
    pub fn open(iface: &Interface, ethertype: u16) -> Result<Self, SetupError> {
        ControlSocket::bound(iface, ethertype, ethertype, None)
    }

    /// A packet socket with `PACKET_IGNORE_OUTGOING` and `PACKET_AUXDATA`, `filter`
    /// attached (before the bind, so no other frame is ever queued), bound to `protocol`.
    fn bound(
        iface: &Interface,
        ethertype: u16,
        protocol: u16,
        filter: Option<&[libc::sock_filter]>,
    ) -> Result<Self, SetupError> {
        let name = iface.name.as_str();
        let os = |op: &'static str| move |e: io::Error| SetupError::os(name, op, e);
        let fd = sys::packet_socket().map_err(os("open packet socket"))?;
        sys::setsockopt(
            fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &1,
        )
        .map_err(os("set PACKET_IGNORE_OUTGOING"))?;
        // Report the VLAN tag the kernel strips from a tagged frame.
        sys::setsockopt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_AUXDATA, &1)
            .map_err(os("set PACKET_AUXDATA"))?;
        if let Some(prog) = filter {
            sys::attach_filter(fd.as_fd(), prog).map_err(os("attach the MKPDU filter"))?;
        }
        sys::bind_packet(fd.as_fd(), iface.index, protocol)
            .map_err(os("bind the control socket"))?;
        Ok(ControlSocket {
            fd,
            ifname: iface.name.clone(),
            ifindex: iface.index,
            ethertype,
        })
    }

    /// Opens a socket for the KaY: frames of `ethertype` on `iface` that carry 802.1Q
    /// VLAN ID `vlan`, or no VLAN tag with `None` (a priority tag, VID 0, counts as
    /// none). Our own transmissions are not read back.
    ///
    /// A socket bound to one EtherType cannot tell: when no VLAN device claims a tagged
    /// frame, the kernel removes its tag and clears it from the packet's metadata before
    /// it delivers to such sockets. So this one is bound to every EtherType, where the
    /// tag is still known, and a classic BPF filter keeps only the wanted frames; the
    /// tag then also comes with each frame ([`ControlFrame::vlan_tci`]).
    pub fn open_for_kay(
        iface: &Interface,
        ethertype: u16,
        vlan: Option<u16>,
    ) -> Result<Self, SetupError> {
        let prog = kay_filter(ethertype, vlan);
        ControlSocket::bound(iface, ethertype, libc::ETH_P_ALL as u16, Some(&prog))
    }

    /// The EtherType this socket receives.
    pub fn ethertype(&self) -> u16 {
        self.ethertype
    }

    /// The interface.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Asks the interface to accept frames sent to the multicast address `group`
    /// (`PACKET_MR_MULTICAST`; dropped when the socket closes).
    pub fn join_multicast(&self, group: MacAddr) -> Result<(), SetupError> {
        let mut addr = [0u8; 8];
        addr[..6].copy_from_slice(&group.0);
        let mreq = libc::packet_mreq {
            mr_ifindex: self.ifindex as c_int,
            mr_type: libc::PACKET_MR_MULTICAST as u16,
            mr_alen: 6,
            mr_address: addr,
        };
        sys::setsockopt(
            self.fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
        )
        .map_err(|e| SetupError::os(&self.ifname, "join a multicast group", e))
    }

    /// Waits at most `timeout` for one frame and copies it into `buf`. Returns `None` on
    /// timeout. A frame longer than `buf` is cut and reported as truncated. An 802.1Q tag
    /// is not in `buf` (the kernel removes it) but in [`ControlFrame::vlan_tci`].
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<ControlFrame>> {
        let t0 = Instant::now();
        loop {
            match sys::recv_with_vlan(self.fd.as_fd(), buf, libc::MSG_DONTWAIT | libc::MSG_TRUNC) {
                Ok(r) => {
                    return Ok(Some(ControlFrame {
                        len: r.len.min(buf.len()),
                        truncated: r.len > buf.len(),
                        orig_len: r.len,
                        vlan_tci: r.vlan_tci,
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let elapsed = t0.elapsed();
            if elapsed >= timeout {
                return Ok(None);
            }
            let rev = sys::poll_one(self.fd.as_fd(), libc::POLLIN, Some(timeout - elapsed))?;
            if rev & libc::POLLERR != 0 {
                if let Some(e) = sys::take_socket_error(self.fd.as_fd())? {
                    return Err(e);
                }
            }
        }
    }

    /// Sends one whole Ethernet frame (destination MAC first, no FCS) on the interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        loop {
            match sys::send(self.fd.as_fd(), frame, 0) {
                Ok(n) if n == frame.len() => return Ok(()),
                Ok(_) => return Err(io::Error::new(io::ErrorKind::WriteZero, "short send")),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for ControlSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The classic BPF program of [`ControlSocket::open_for_kay`]: accept a frame whose
/// EtherType (after the kernel took an outer VLAN tag off) is `ethertype` and whose VLAN
/// ID is `vlan` (`None`: untagged or VID 0).
fn kay_filter(ethertype: u16, vlan: Option<u16>) -> Vec<libc::sock_filter> {
    // Linux's ancillary loads (linux/filter.h): SKF_AD_OFF + ...
    const AD: u32 = (-0x1000i32) as u32;
    const AD_PROTOCOL: u32 = AD;
    const AD_VLAN_TAG: u32 = AD + 44;
    const AD_VLAN_TAG_PRESENT: u32 = AD + 48;
    const LD_ABS_W: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    // Jump offsets count from the next instruction; the last two are accept, drop.
    let vid = vlan.map_or(0, u32::from);
    vec![
        op(LD_ABS_W, 0, 0, AD_PROTOCOL),         // 0: A = EtherType
        op(JEQ_K, 0, 7, u32::from(ethertype)),   // 1: ours -> 2, else -> 9
        op(LD_ABS_W, 0, 0, AD_VLAN_TAG_PRESENT), // 2: A = 1 if tagged, else 0
        op(JEQ_K, 0, 3, 1),                      // 3: tagged -> 4, else -> 7 with A = 0
        op(LD_ABS_W, 0, 0, AD_VLAN_TAG),         // 4: A = TCI
        op(AND_K, 0, 0, 0x0FFF),                 // 5: A = VID
        op(JEQ_K, 1, 2, vid),                    // 6: VID == vid -> 8, else -> 9
        op(JEQ_K, 0, 1, vid),                    // 7: untagged (A = 0): vid == 0 -> 8, else -> 9
        op(RET_K, 0, 0, u32::MAX),               // 8: accept the whole frame
        op(RET_K, 0, 0, 0),                      // 9: drop
    ]
}

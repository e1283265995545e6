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

use crate::wire::MacAddr;

use super::iface::Interface;
use super::sys;
use super::SetupError;

/// EtherType of EAPOL (IEEE 802.1X port access entity), which carries MKPDUs.
pub const ETHERTYPE_EAPOL: u16 = 0x888E;

/// A received control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlFrame {
    /// Octets stored in the caller's buffer.
    pub len: usize,
    /// The frame was longer than the buffer (its real length is `orig_len`).
    pub truncated: bool,
    /// The frame's real length.
    pub orig_len: usize,
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
        let s = ControlSocket::open(iface, ETHERTYPE_EAPOL)?;
        s.join_multicast(MacAddr::PAE_GROUP)?;
        Ok(s)
    }

    /// Opens a socket receiving only frames of `ethertype` on `iface`. Our own
    /// transmissions are not read back (`PACKET_IGNORE_OUTGOING`).
    pub fn open(iface: &Interface, ethertype: u16) -> Result<Self, SetupError> {
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
        sys::bind_packet(fd.as_fd(), iface.index, ethertype)
            .map_err(os("bind the control socket"))?;
        Ok(ControlSocket {
            fd,
            ifname: iface.name.clone(),
            ifindex: iface.index,
            ethertype,
        })
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
    /// timeout. A frame longer than `buf` is cut and reported as truncated.
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<ControlFrame>> {
        let t0 = Instant::now();
        loop {
            match sys::recv(self.fd.as_fd(), buf, libc::MSG_DONTWAIT | libc::MSG_TRUNC) {
                Ok(orig_len) => {
                    let len = orig_len.min(buf.len());
                    return Ok(Some(ControlFrame {
                        len,
                        truncated: orig_len > buf.len(),
                        orig_len,
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

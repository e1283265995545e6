//! Thin, safe wrappers over the Linux system calls the I/O layer needs: packet sockets,
//! socket options, `poll`, shared mappings, interface ioctls (flags, MTU, ethtool
//! features) and `setns`.
//!
//! This module and [`super::afpacket`] are the only places in the crate allowed to use
//! `unsafe`. Every function here validates its inputs so that its safe signature cannot
//! be used to make the kernel read or write outside Rust-owned memory.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::time::Duration;

use libc::{c_int, c_void};

/// Turns a `-1` return into the thread's `errno`.
fn cvt(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Same as [`cvt`] for `ssize_t` results.
fn cvt_size(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Opens an `AF_PACKET`/`SOCK_RAW` socket with protocol 0, so that it receives nothing
/// until it is bound with a protocol (rings and options can be set up first).
pub(crate) fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; on success it returns a new descriptor that we
    // own exclusively, so wrapping it in OwnedFd (which closes it once) is sound.
    unsafe {
        let fd = cvt(libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            0,
        ))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Opens an `AF_INET`/`SOCK_DGRAM` socket used only as a handle for interface ioctls.
pub(crate) fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: as in packet_socket: no pointers, and the new descriptor is owned once.
    unsafe {
        let fd = cvt(libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Plain-old-data types that may be passed by pointer to `setsockopt`/`getsockopt`:
/// every bit pattern is a valid value and they contain no pointers.
///
/// # Safety
/// Implementors must be `repr(C)` (or primitive) integers/arrays/structs of integers with
/// no padding-dependent invariants, for which every bit pattern is valid.
pub(crate) unsafe trait Pod: Copy {}
// SAFETY: a C int has no invalid bit patterns.
unsafe impl Pod for c_int {}
// SAFETY: struct of C integers only.
unsafe impl Pod for libc::tpacket_req {}
// SAFETY: struct of C integers only.
unsafe impl Pod for libc::tpacket_req3 {}
// SAFETY: struct of C integers and a byte array only.
unsafe impl Pod for libc::packet_mreq {}
// SAFETY: struct of C integers only.
unsafe impl Pod for libc::tpacket_stats {}
// SAFETY: struct of C integers only.
unsafe impl Pod for libc::tpacket_stats_v3 {}
// SAFETY: struct of C integers only (time_t and suseconds_t).
unsafe impl Pod for libc::timeval {}

/// `setsockopt(fd, level, name, &val, sizeof val)`.
pub(crate) fn setsockopt<T: Pod>(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    val: &T,
) -> io::Result<()> {
    // SAFETY: `val` is a valid reference to size_of::<T>() initialised bytes for the
    // duration of the call; the kernel only reads them.
    unsafe {
        cvt(libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast::<c_void>(),
            size_of::<T>() as libc::socklen_t,
        ))?;
    }
    Ok(())
}

/// `getsockopt(fd, level, name, &out, &len)`; fails if the kernel returned fewer bytes
/// than `T` has.
pub(crate) fn getsockopt<T: Pod>(fd: BorrowedFd<'_>, level: c_int, name: c_int) -> io::Result<T> {
    let mut out = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `out` is writable for size_of::<T>() bytes and `len` tells the kernel so;
    // the kernel never writes more than `len` bytes.
    unsafe {
        cvt(libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            out.as_mut_ptr().cast::<c_void>(),
            &mut len,
        ))?;
    }
    if (len as usize) < size_of::<T>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "getsockopt returned a short value",
        ));
    }
    // SAFETY: `out` started zeroed and T is Pod, so any contents are a valid T.
    Ok(unsafe { out.assume_init() })
}

/// Binds a packet socket to `ifindex` and `protocol` (host byte order; 0 = receive nothing).
pub(crate) fn bind_packet(fd: BorrowedFd<'_>, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain integers; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    // SAFETY: `sll` is a valid sockaddr_ll and its exact size is passed.
    unsafe {
        cvt(libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        ))?;
    }
    Ok(())
}

/// Attaches a classic BPF program (`SO_ATTACH_FILTER`) to a socket: frames it returns 0
/// for are never queued to the socket.
pub(crate) fn attach_filter(fd: BorrowedFd<'_>, prog: &[libc::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(prog.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `prog`, `len` instructions that stay borrowed for the
    // duration of the call; the kernel copies (and verifies) the program before returning.
    unsafe {
        cvt(libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast::<c_void>(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        ))?;
    }
    Ok(())
}

/// Polls one descriptor for `events`. `None` waits forever. Returns the `revents`
/// (0 on timeout). EINTR is reported as a timeout-like 0 so callers re-check their clock.
pub(crate) fn poll_one(
    fd: BorrowedFd<'_>,
    events: i16,
    timeout: Option<Duration>,
) -> io::Result<i16> {
    let ms: c_int = match timeout {
        None => -1,
        // Round up so that a 100 us timeout does not become a busy 0 ms poll.
        Some(t) => {
            let ms = t.as_micros().div_ceil(1000);
            c_int::try_from(ms).unwrap_or(c_int::MAX)
        }
    };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd and nfds is 1.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(if r == 0 { 0 } else { pfd.revents })
}

/// Waits until any of `fds` is readable (or has an error), at most `timeout`, and puts
/// each fd's `revents` into `revents` (as far as it reaches). Interrupted waits return
/// as if the time had passed.
pub(crate) fn poll_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Duration,
    revents: &mut [i16],
) -> io::Result<()> {
    let mut raw = [-1; POLL_MAX];
    for (r, fd) in raw.iter_mut().zip(fds) {
        *r = fd.as_raw_fd();
    }
    poll_readable_raw(&raw[..fds.len().min(POLL_MAX)], timeout, revents)
}

/// The most fds [`poll_readable`] and [`poll_readable_raw`] look at.
pub(crate) const POLL_MAX: usize = 70;

/// [`poll_readable`] on raw fds (an fd that is not open reports `POLLNVAL`).
pub(crate) fn poll_readable_raw(
    fds: &[RawFd],
    timeout: Duration,
    revents: &mut [i16],
) -> io::Result<()> {
    const MAX: usize = POLL_MAX;
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX];
    let n = fds.len().min(MAX);
    for (p, fd) in pfds.iter_mut().zip(fds) {
        p.fd = *fd;
        p.events = libc::POLLIN;
    }
    let ms = c_int::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX);
    // SAFETY: `pfds[..n]` are valid pollfds; n <= MAX fits nfds_t.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    for (out, p) in revents.iter_mut().zip(&pfds[..n]) {
        *out = if r > 0 { p.revents } else { 0 };
    }
    Ok(())
}

/// A non-blocking `eventfd`, to wake a thread waiting in [`poll_readable`].
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with constant flags; the returned fd is checked.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: `fd` is a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd's counter (making it readable).
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer to a valid fd. A full counter
    // (EAGAIN) means it is readable already.
    let _ = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
}

/// Resets an eventfd's counter (making it unreadable until the next signal).
pub(crate) fn eventfd_clear(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a live buffer from a valid non-blocking fd.
    let _ = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
}

/// Reads and clears the socket's pending error (`SO_ERROR`).
pub(crate) fn take_socket_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let e: c_int = getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok(if e == 0 {
        None
    } else {
        Some(io::Error::from_raw_os_error(e))
    })
}

/// `sendto(fd, NULL, 0, flags, NULL, 0)`: asks the kernel to transmit every frame marked
/// `TP_STATUS_SEND_REQUEST` in the socket's TX ring.
pub(crate) fn kick_tx_ring(fd: BorrowedFd<'_>, flags: c_int) -> io::Result<usize> {
    // SAFETY: a null buffer of length 0 and a null address are valid arguments; the
    // kernel reads the frames from the ring, which we set up with PACKET_TX_RING.
    unsafe {
        cvt_size(libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            flags,
            std::ptr::null(),
            0,
        ))
    }
}

/// `send(fd, buf, flags)` on a bound socket.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of buf.len() bytes.
    unsafe {
        cvt_size(libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast::<c_void>(),
            buf.len(),
            flags,
        ))
    }
}

/// `recv(fd, buf, flags)`. With `MSG_TRUNC` in `flags` a packet socket returns the real
/// frame length even if it exceeded `buf.len()`.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of buf.len() bytes; the kernel writes at most that.
    unsafe {
        cvt_size(libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast::<c_void>(),
            buf.len(),
            flags,
        ))
    }
}

/// One datagram read by [`recv_with_vlan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecvInfo {
    /// The datagram's real length (it was cut if this exceeds the buffer).
    pub len: usize,
    /// The 802.1Q TCI the kernel took off the frame, if any (`TP_STATUS_VLAN_VALID`).
    pub vlan_tci: Option<u16>,
}

/// `recvmsg(fd, buf, flags)` on a packet socket with `PACKET_AUXDATA` enabled: the frame
/// as [`recv`] gives it (the kernel has already removed an outer VLAN tag) and that tag
/// from the `tpacket_auxdata` control message. With `MSG_TRUNC` in `flags` the real length
/// is returned even if it exceeded `buf.len()`.
pub(crate) fn recv_with_vlan(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: c_int,
) -> io::Result<RecvInfo> {
    // Room for one cmsghdr + tpacket_auxdata, as u64 words so that it is aligned for
    // cmsghdr (CMSG_SPACE(20) is 40 on 64-bit Linux).
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast::<c_void>(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast::<c_void>();
    msg.msg_controllen = size_of::<[u64; 8]>();
    // SAFETY: `msg` points at one iovec describing `buf` (valid for writes of buf.len()
    // bytes) and at `control` (valid for writes of msg_controllen bytes); the kernel
    // writes within those and updates msg_controllen and msg_flags.
    let len = unsafe { cvt_size(libc::recvmsg(fd.as_raw_fd(), &mut msg, flags))? };
    let mut vlan_tci = None;
    // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR walk the control buffer the kernel just filled,
    // bounded by msg_controllen (which the kernel set to at most the buffer's size);
    // CMSG_DATA of a PACKET_AUXDATA message points at a tpacket_auxdata, which is
    // read unaligned because cmsg data carries no alignment promise for it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::SOL_PACKET
                && h.cmsg_type == libc::PACKET_AUXDATA
                && h.cmsg_len as usize
                    >= libc::CMSG_LEN(size_of::<libc::tpacket_auxdata>() as u32) as usize
            {
                let aux =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::tpacket_auxdata>());
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                    vlan_tci = Some(aux.tp_vlan_tci);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(RecvInfo { len, vlan_tci })
}

/// A shared, read-write memory mapping of a descriptor (a packet ring), unmapped on drop.
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmap {
    /// Maps `len` bytes of `fd` at offset 0, `PROT_READ|PROT_WRITE`, `MAP_SHARED`,
    /// pre-faulted with `MAP_POPULATE`.
    pub(crate) fn map_shared(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh mapping at an address the kernel chooses cannot alias any Rust
        // object; failure is reported as MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Mmap { ptr, len })
    }

    /// Base address of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe exactly the mapping created in map_shared, and no
        // reference into it outlives `self` (borrows of ring memory are tied to &self).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast::<c_void>(), self.len);
        }
    }
}

// SAFETY: the mapping is plain shared memory; moving the owner to another thread is fine.
// It is not Sync: ring owners hand out slices only through &mut self.
unsafe impl Send for Mmap {}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf takes no pointers.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p <= 0 {
        4096
    } else {
        p as usize
    }
}

/// Builds an `ifreq` for `name`, rejecting names the kernel would truncate or misread.
fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name must be 1 to 15 bytes without NUL",
        ));
    }
    // SAFETY: ifreq is integers, byte arrays, sockaddrs and a raw pointer; all-zero
    // (null pointer included) is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(ifr)
}

/// Issues an interface ioctl whose argument is an `ifreq` without pointers.
fn ifreq_ioctl(fd: BorrowedFd<'_>, req: libc::c_ulong, ifr: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: `ifr` is a valid, writable ifreq; the requests used with this helper
    // (SIOCGIF*/SIOCSIF* for index, flags, MTU) read and write only inside it.
    unsafe {
        cvt(libc::ioctl(
            fd.as_raw_fd(),
            req as _,
            ifr as *mut libc::ifreq,
        ))?;
    }
    Ok(())
}

/// `SIOCGIFINDEX`.
pub(crate) fn if_index(fd: BorrowedFd<'_>, name: &str) -> io::Result<u32> {
    let mut ifr = ifreq_for(name)?;
    ifreq_ioctl(fd, libc::SIOCGIFINDEX, &mut ifr)?;
    // SAFETY: SIOCGIFINDEX filled the ifru_ifindex member of the union.
    let idx = unsafe { ifr.ifr_ifru.ifru_ifindex };
    u32::try_from(idx).map_err(|_| io::Error::other("negative ifindex"))
}

/// `SIOCGIFFLAGS`.
pub(crate) fn if_flags(fd: BorrowedFd<'_>, name: &str) -> io::Result<u32> {
    let mut ifr = ifreq_for(name)?;
    ifreq_ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr)?;
    // SAFETY: SIOCGIFFLAGS filled the ifru_flags member (a short) of the union.
    let f = unsafe { ifr.ifr_ifru.ifru_flags };
    Ok(u32::from(f as u16))
}

/// `SIOCGIFHWADDR`: the hardware address of an Ethernet-like interface (`None` for
/// other link types, such as loopback or a tun device).
pub(crate) fn if_hwaddr(fd: BorrowedFd<'_>, name: &str) -> io::Result<Option<[u8; 6]>> {
    let mut ifr = ifreq_for(name)?;
    ifreq_ioctl(fd, libc::SIOCGIFHWADDR, &mut ifr)?;
    // SAFETY: SIOCGIFHWADDR filled the ifru_hwaddr member (a sockaddr) of the union.
    let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
    if sa.sa_family != libc::ARPHRD_ETHER {
        return Ok(None);
    }
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    Ok(Some(mac))
}

/// `SIOCSIFFLAGS` (only the low 16 bits are settable through this ioctl).
pub(crate) fn if_set_flags(fd: BorrowedFd<'_>, name: &str, flags: u32) -> io::Result<()> {
    let mut ifr = ifreq_for(name)?;
    ifr.ifr_ifru.ifru_flags = flags as u16 as libc::c_short;
    ifreq_ioctl(fd, libc::SIOCSIFFLAGS, &mut ifr)
}

/// `SIOCGIFMTU`.
pub(crate) fn if_mtu(fd: BorrowedFd<'_>, name: &str) -> io::Result<u32> {
    let mut ifr = ifreq_for(name)?;
    ifreq_ioctl(fd, libc::SIOCGIFMTU, &mut ifr)?;
    // SAFETY: SIOCGIFMTU filled the ifru_mtu member of the union.
    let mtu = unsafe { ifr.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| io::Error::other("negative MTU"))
}

/// `SIOCSIFMTU`.
pub(crate) fn if_set_mtu(fd: BorrowedFd<'_>, name: &str, mtu: u32) -> io::Result<()> {
    let mut ifr = ifreq_for(name)?;
    ifr.ifr_ifru.ifru_mtu = c_int::try_from(mtu)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "MTU out of range"))?;
    ifreq_ioctl(fd, libc::SIOCSIFMTU, &mut ifr)
}

// ---- ethtool (SIOCETHTOOL) ----------------------------------------------------------

const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETHTOOL_SFEATURES: u32 = 0x3b;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;
/// Upper bound on the number of feature names we accept (the kernel has about 70).
const MAX_FEATURES: usize = 4096;

/// Issues `SIOCETHTOOL` with `ifr_data` pointing at `buf`.
///
/// The caller (this module only) guarantees that `buf` is at least as large as anything
/// the kernel writes back for the command in its first word.
fn ethtool(fd: BorrowedFd<'_>, name: &str, buf: &mut [u32]) -> io::Result<c_int> {
    let mut ifr = ifreq_for(name)?;
    ifr.ifr_ifru.ifru_data = buf.as_mut_ptr().cast::<libc::c_char>();
    // SAFETY: ifr_data points at `buf`, which lives across the call. Each caller below
    // sizes `buf` for the command: GSSET_INFO writes a 16-byte header plus one u32 per
    // requested set (we request one); GFEATURES writes at most `size` blocks (we pass
    // the buffer's capacity); SFEATURES writes only its 8-byte header; GDRVINFO writes a
    // 196-byte struct ethtool_drvinfo (its caller passes 256 bytes); GSTRINGS writes
    // count*32 bytes where count is the feature-set size, a constant of the running
    // kernel that we read with GSSET_INFO just before and sized `buf` for.
    unsafe {
        cvt(libc::ioctl(
            fd.as_raw_fd(),
            libc::SIOCETHTOOL as _,
            &mut ifr,
        ))
    }
}

/// The name of the interface's driver (`ETHTOOL_GDRVINFO`, what `ethtool -i` shows as
/// `driver`), e.g. `veth`, `tun`, `ixgbe`.
pub(crate) fn ethtool_driver(fd: BorrowedFd<'_>, name: &str) -> io::Result<String> {
    // struct ethtool_drvinfo { u32 cmd; char driver[32]; char version[32];
    // char fw_version[32]; char bus_info[32]; char erom_version[32]; char reserved2[12];
    // u32 n_priv_flags, n_stats, testinfo_len, eedump_len, regdump_len; }: 196 octets.
    let mut info = [0u32; 64];
    info[0] = ETHTOOL_GDRVINFO;
    ethtool(fd, name, &mut info)?;
    let bytes: Vec<u8> = info[1..9].iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(c_name(&bytes))
}

/// A name from a fixed-size, NUL-padded kernel field (all of it if it has no NUL).
fn c_name(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Reads the names of the kernel's netdev features (`ETH_SS_FEATURES` string set), in
/// bit order: name `i` describes bit `i % 32` of feature block `i / 32`.
pub(crate) fn ethtool_feature_names(fd: BorrowedFd<'_>, name: &str) -> io::Result<Vec<String>> {
    // struct ethtool_sset_info { u32 cmd; u32 reserved; u64 sset_mask; u32 data[]; }
    let mut info = [0u32; 5];
    info[0] = ETHTOOL_GSSET_INFO;
    let mask: u64 = 1 << ETH_SS_FEATURES;
    let mb = mask.to_ne_bytes();
    info[2] = u32::from_ne_bytes([mb[0], mb[1], mb[2], mb[3]]);
    info[3] = u32::from_ne_bytes([mb[4], mb[5], mb[6], mb[7]]);
    ethtool(fd, name, &mut info)?;
    let mut got = [0u8; 8];
    got[..4].copy_from_slice(&info[2].to_ne_bytes());
    got[4..].copy_from_slice(&info[3].to_ne_bytes());
    if u64::from_ne_bytes(got) & mask == 0 {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "driver does not report the ethtool feature string set",
        ));
    }
    let count = info[4] as usize;
    if count == 0 || count > MAX_FEATURES {
        return Err(io::Error::other("implausible ethtool feature count"));
    }
    // struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[]; }
    let words = 3 + count * ETH_GSTRING_LEN / 4;
    let mut buf = vec![0u32; words];
    buf[0] = ETHTOOL_GSTRINGS;
    buf[1] = ETH_SS_FEATURES;
    buf[2] = count as u32;
    ethtool(fd, name, &mut buf)?;
    let n = (buf[2] as usize).min(count);
    let bytes: Vec<u8> = buf[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(bytes
        .chunks_exact(ETH_GSTRING_LEN)
        .take(n)
        .map(c_name)
        .collect())
}

/// One 32-feature block of `ETHTOOL_GFEATURES`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FeatureBlock {
    /// Features the driver lets user space change.
    pub available: u32,
    /// Features user space asked for.
    pub requested: u32,
    /// Features currently on.
    pub active: u32,
    /// Features that can never change (fixed).
    pub never_changed: u32,
}

/// `ETHTOOL_GFEATURES` for `blocks` 32-bit blocks.
pub(crate) fn ethtool_get_features(
    fd: BorrowedFd<'_>,
    name: &str,
    blocks: usize,
) -> io::Result<Vec<FeatureBlock>> {
    if blocks == 0 || blocks > MAX_FEATURES / 32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad block count",
        ));
    }
    // struct ethtool_gfeatures { u32 cmd; u32 size; struct { u32 available, requested,
    // active, never_changed; } features[]; }
    let mut buf = vec![0u32; 2 + 4 * blocks];
    buf[0] = ETHTOOL_GFEATURES;
    buf[1] = blocks as u32;
    ethtool(fd, name, &mut buf)?;
    Ok(buf[2..]
        .chunks_exact(4)
        .map(|b| FeatureBlock {
            available: b[0],
            requested: b[1],
            active: b[2],
            never_changed: b[3],
        })
        .collect())
}

/// `ETHTOOL_SFEATURES`: for each block, `(valid, requested)` masks. Returns the kernel's
/// flags (`ETHTOOL_F_UNSUPPORTED` = 1, `ETHTOOL_F_WISH` = 2, `ETHTOOL_F_COMPAT` = 4).
pub(crate) fn ethtool_set_features(
    fd: BorrowedFd<'_>,
    name: &str,
    blocks: &[(u32, u32)],
) -> io::Result<u32> {
    if blocks.is_empty() || blocks.len() > MAX_FEATURES / 32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad block count",
        ));
    }
    // struct ethtool_sfeatures { u32 cmd; u32 size; struct { u32 valid, requested; }
    // features[]; }
    let mut buf = vec![0u32; 2 + 2 * blocks.len()];
    buf[0] = ETHTOOL_SFEATURES;
    buf[1] = blocks.len() as u32;
    for (i, (valid, req)) in blocks.iter().enumerate() {
        buf[2 + 2 * i] = *valid;
        buf[3 + 2 * i] = *req;
    }
    let r = ethtool(fd, name, &mut buf)?;
    Ok(r as u32)
}

/// Moves the calling thread into the network namespace `ns` (a file such as
/// `/run/netns/NAME` or `/proc/PID/ns/net`).
pub(crate) fn setns_net(ns: &File) -> io::Result<()> {
    // SAFETY: setns takes a descriptor we hold open for the call and a flag; it affects
    // only the calling thread's network namespace.
    unsafe {
        cvt(libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET))?;
    }
    Ok(())
}

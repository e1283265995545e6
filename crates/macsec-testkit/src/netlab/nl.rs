//! A minimal synchronous netlink client, used on a thread inside a namespace: the
//! request/answer exchange ([`Netlink`]) and on top of it rtnetlink ([`Rtnl`]); the
//! ethtool family (generic netlink) uses the exchange directly.

use netlink_packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkSerializable, NlasIterator,
    NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
use nix::sys::time::TimeVal;
use std::io;

/// How long one reply may take before a request fails with `TimedOut`.
const REPLY_TIMEOUT_SECS: i64 = 5;
/// Upper bound on datagrams read for one request.
const MAX_DATAGRAMS: usize = 100_000;
/// `nlmsghdr` length.
const HEADER_LEN: usize = 16;
/// `NLMSG_ERROR`: an error or, with code 0, the acknowledgement.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
const NLMSG_DONE: u16 = 3;

/// A netlink error with the kernel's extended-ack explanation, e.g. `Invalid argument
/// (os error 22): mtu less than device minimum`.
#[derive(Debug)]
pub(crate) struct KernelError {
    pub(crate) errno: i32,
    msg: String,
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            io::Error::from_raw_os_error(self.errno),
            self.msg
        )
    }
}

impl std::error::Error for KernelError {}

/// The error of a NACK with `errno`; `payload` follows the error code.
fn nack(errno: i32, flags: u16, payload: &[u8]) -> io::Error {
    let base = io::Error::from_raw_os_error(errno);
    // With NETLINK_CAP_ACK the request is not echoed: its header, then the TLVs.
    let msg = (flags & NLM_F_ACK_TLVS != 0)
        .then(|| payload.get(HEADER_LEN..))
        .flatten()
        .and_then(|tlvs| {
            NlasIterator::new(tlvs)
                .map_while(|n| n.ok())
                .find(|n| n.kind() == 1) // NLMSGERR_ATTR_MSG
                .map(|n| {
                    String::from_utf8_lossy(n.value())
                        .trim_end_matches('\0')
                        .to_owned()
                })
        });
    match msg {
        Some(msg) if !msg.is_empty() => io::Error::new(base.kind(), KernelError { errno, msg }),
        _ => base,
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// A netlink socket of one protocol in the namespace of the thread that opened it.
pub(crate) struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    /// Opens a socket of `protocol` in the calling thread's network namespace.
    pub(crate) fn open(protocol: isize) -> io::Result<Netlink> {
        let mut sock = Socket::new(protocol)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Best effort: short acknowledgements with the kernel's error messages.
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        setsockopt(&sock, ReceiveTimeout, &TimeVal::new(REPLY_TIMEOUT_SECS, 0))
            .map_err(super::error::errno)?;
        Ok(Netlink { sock, seq: 0 })
    }

    /// Sends a request of `msg_type` with `payload` and `NLM_F_REQUEST | flags`; returns
    /// every answer (message type, payload) before the acknowledgement or the end of the
    /// dump. A NACK is the error.
    pub(crate) fn exchange(
        &mut self,
        msg_type: u16,
        flags: u16,
        payload: &[u8],
    ) -> io::Result<Vec<(u16, Vec<u8>)>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = HEADER_LEN + payload.len();
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(&u32::try_from(len).map_err(invalid)?.to_ne_bytes());
        buf.extend_from_slice(&msg_type.to_ne_bytes());
        buf.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(payload);
        self.sock.send(&buf, 0)?;

        let mut out = Vec::new();
        for _ in 0..MAX_DATAGRAMS {
            let (data, _) = self.sock.recv_from_full().map_err(|e| {
                if e.kind() == io::ErrorKind::WouldBlock {
                    io::Error::new(io::ErrorKind::TimedOut, "no netlink reply")
                } else {
                    e
                }
            })?;
            let mut off = 0;
            while off < data.len() {
                let m = NetlinkBuffer::new_checked(&data[off..]).map_err(invalid)?;
                let (len, t, flags) = (m.length() as usize, m.message_type(), m.flags());
                if len < HEADER_LEN || off + len > data.len() {
                    return Err(invalid("bad netlink length"));
                }
                let body = &data[off + HEADER_LEN..off + len];
                off += (len + 3) & !3;
                if m.sequence_number() != seq {
                    continue;
                }
                match t {
                    NLMSG_ERROR => {
                        let code = body
                            .get(..4)
                            .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                            .ok_or_else(|| invalid("short NLMSG_ERROR"))?;
                        return match code {
                            0 => Ok(out),
                            c => Err(nack(-c, flags, &body[4..])),
                        };
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => out.push((t, body.to_vec())),
                }
            }
        }
        Err(invalid("endless netlink answer"))
    }
}

/// A route netlink socket in the namespace of the thread that opened it.
pub(crate) struct Rtnl(Netlink);

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub(crate) fn open() -> io::Result<Rtnl> {
        Netlink::open(NETLINK_ROUTE).map(Rtnl)
    }

    /// Sends `msg` and waits for the acknowledgement.
    pub(crate) fn ack(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.request(msg, flags | NLM_F_ACK).map(drop)
    }

    /// Sends a dump request and returns every message of the answer.
    pub(crate) fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.request(msg, NLM_F_DUMP)
    }

    /// Sends a `NLM_F_ACK` get request and returns the answer before the acknowledgement.
    pub(crate) fn get(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.request(msg, NLM_F_ACK)
    }

    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut payload = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut payload);
        let mut out = Vec::new();
        for (t, body) in self.0.exchange(msg.message_type(), flags, &payload)? {
            let mut header = NetlinkHeader::default();
            header.message_type = t;
            out.push(RouteNetlinkMessage::deserialize(&header, &body).map_err(invalid)?);
        }
        Ok(out)
    }
}

//! Interface events from the kernel (rtnetlink `RTNLGRP_LINK`): carrier changes, an
//! interface set down, deleted or created again, as they happen.
//!
//! A packet socket learns nothing when the far end of a link loses carrier and only an
//! error when its interface goes away; this watcher tells the forwarder at once, so a
//! link that loses carrier stops carrying traffic immediately and a port that is
//! deleted and created again is opened again on its new interface index.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::Sender;
use netlink_packet_core::{NetlinkBuffer, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// `RTMGRP_LINK`: the link notification group.
const RTMGRP_LINK: u32 = 1;

/// What happened to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The interface exists (new or changed): whether it is up and has carrier.
    Changed {
        /// Interface name.
        ifname: String,
        /// Interface index.
        ifindex: u32,
        /// Administratively up (`IFF_UP`).
        up: bool,
        /// Up with carrier (`IFF_LOWER_UP` and `IFF_RUNNING`).
        carrier: bool,
    },
    /// The interface was deleted (or moved to another namespace).
    Deleted {
        /// Interface name.
        ifname: String,
        /// Its former index.
        ifindex: u32,
    },
}

impl LinkEvent {
    /// The interface's name.
    pub fn ifname(&self) -> &str {
        match self {
            LinkEvent::Changed { ifname, .. } | LinkEvent::Deleted { ifname, .. } => ifname,
        }
    }
}

/// A thread that forwards interface events of this network namespace to a channel.
#[derive(Debug)]
pub struct LinkWatch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LinkWatch {
    /// Subscribes to interface events (in the calling thread's network namespace) and
    /// sends each to `to` until dropped.
    pub fn start(to: Sender<LinkEvent>) -> io::Result<LinkWatch> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("linkwatch".into())
            .spawn(move || watch(sock, to, s2))?;
        Ok(LinkWatch {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for LinkWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch(sock: Socket, to: Sender<LinkEvent>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if super::wait_readable(&[sock.as_fd()], Duration::from_millis(200), &mut []).is_err() {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let n = match sock.recv(&mut &mut buf[..], libc::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                // ENOBUFS: events were lost; the owner re-reads the state it needs.
                tracing::debug!("interface events: {e}");
                continue;
            }
        };
        for ev in parse(&buf[..n]) {
            if to.send(ev).is_err() {
                return;
            }
        }
    }
}

/// The link events in one netlink datagram (anything else is skipped).
pub fn parse(data: &[u8]) -> Vec<LinkEvent> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < data.len() {
        let Ok(b) = NetlinkBuffer::new_checked(&data[off..]) else {
            break;
        };
        let len = b.length() as usize;
        if len == 0 || off + len > data.len() {
            break;
        }
        if let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..off + len]) {
            match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    out.extend(event(&l, false))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                    out.extend(event(&l, true))
                }
                _ => {}
            }
        }
        off += (len + 3) & !3;
    }
    out
}

fn event(l: &LinkMessage, deleted: bool) -> Option<LinkEvent> {
    let ifname = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })?;
    let ifindex = l.header.index;
    if deleted {
        return Some(LinkEvent::Deleted { ifname, ifindex });
    }
    let f = l.header.flags;
    Some(LinkEvent::Changed {
        ifname,
        ifindex,
        up: f.contains(LinkFlags::Up),
        carrier: f.contains(LinkFlags::LowerUp) && f.contains(LinkFlags::Running),
    })
}

/// The largest MTU the kernel allows for `ifname` (`IFLA_MAX_MTU`), if it says.
pub fn max_mtu(ifname: &str) -> Option<u32> {
    use netlink_packet_core::{NetlinkHeader, NLM_F_REQUEST};
    let mut sock = Socket::new(NETLINK_ROUTE).ok()?;
    sock.bind_auto().ok()?;
    sock.connect(&SocketAddr::new(0, 0)).ok()?;
    let mut msg = LinkMessage::default();
    msg.attributes
        .push(LinkAttribute::IfName(ifname.to_owned()));
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetLink(msg)),
    );
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    sock.send(&buf, 0).ok()?;
    if super::wait_readable(&[sock.as_fd()], Duration::from_secs(1), &mut []).is_err() {
        return None;
    }
    let mut rbuf = vec![0u8; 64 * 1024];
    let n = sock.recv(&mut &mut rbuf[..], libc::MSG_DONTWAIT).ok()?;
    let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rbuf.get(..n)?).ok()?;
    match m.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::MaxMtu(v) => Some(*v),
                _ => None,
            })
        }
        _ => None,
    }
}

//! Network interfaces over rtnetlink (`ip link`): veth pairs across namespaces,
//! bridges, up/down, MTU, deletion and state queries.
//!
//! Every function takes the namespace the interface lives in and runs its netlink socket
//! on a thread inside that namespace.

use super::error::{Error, Result};
use super::netns;
use super::nl::Rtnl;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    BridgeStpState, InfoBridge, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage, State,
};
use netlink_packet_route::RouteNetlinkMessage;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Operational state (`IFLA_OPERSTATE`, RFC 2863).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperState {
    /// Up and able to pass packets.
    Up,
    /// Administratively down.
    Down,
    /// Down because the lower layer is (for a veth: the peer is down).
    LowerLayerDown,
    /// Waiting for an external event.
    Dormant,
    /// In a test mode.
    Testing,
    /// A component is missing.
    NotPresent,
    /// Not determined (e.g. `lo`).
    Unknown,
}

impl From<&State> for OperState {
    fn from(s: &State) -> Self {
        match s {
            State::Up => OperState::Up,
            State::Down => OperState::Down,
            State::LowerLayerDown => OperState::LowerLayerDown,
            State::Dormant => OperState::Dormant,
            State::Testing => OperState::Testing,
            State::NotPresent => OperState::NotPresent,
            _ => OperState::Unknown,
        }
    }
}

/// The state of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index (unique within its namespace).
    pub index: u32,
    /// Name.
    pub name: String,
    /// Kind (`veth`, `bridge`, ...), if it has one.
    pub kind: Option<String>,
    /// MTU.
    pub mtu: u32,
    /// Hardware address, if it has a 6-octet one.
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Lower layer up (`IFF_LOWER_UP`).
    pub lower_up: bool,
    /// Carrier (`IFLA_CARRIER`).
    pub carrier: bool,
    /// Operational state.
    pub operstate: OperState,
    /// Index of the bridge (or other master) it is a port of.
    pub master: Option<u32>,
}

impl Link {
    fn from_message(m: &LinkMessage) -> Link {
        let mut l = Link {
            index: m.header.index,
            name: String::new(),
            kind: None,
            mtu: 0,
            mac: None,
            up: m.header.flags.contains(LinkFlags::Up),
            lower_up: m.header.flags.contains(LinkFlags::LowerUp),
            carrier: false,
            operstate: OperState::Unknown,
            master: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n.clone(),
                LinkAttribute::Mtu(v) => l.mtu = *v,
                LinkAttribute::Address(a) => l.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
                LinkAttribute::Carrier(c) => l.carrier = *c != 0,
                LinkAttribute::OperState(s) => l.operstate = s.into(),
                LinkAttribute::Controller(i) => l.master = Some(*i),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            l.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        l
    }
}

/// How the two ends of a veth pair get their interface indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfIndexes {
    /// Indexes free in both namespaces and different from each other (the default).
    /// When both ends of a pair in two namespaces share an index, the kernel has been
    /// seen to deliver carrier changes to the other end up to 1 s late.
    #[default]
    Distinct,
    /// Whatever the kernel picks: in two fresh namespaces usually the same index.
    Kernel,
    /// These indexes (first end, peer); each must be free in its namespace.
    Explicit(u32, u32),
}

/// Options of [`add_veth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Veth {
    /// MTU of both ends (the kernel's default, 1500, if `None`).
    pub mtu: Option<u32>,
    /// Interface indexes of the two ends.
    pub ifindexes: IfIndexes,
}

fn link_by_name(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_owned()));
    m
}

fn get_with(nl: &mut Rtnl, name: &str) -> io::Result<Link> {
    let answer = nl.get(RouteNetlinkMessage::GetLink(link_by_name(name)))?;
    answer
        .iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
            _ => None,
        })
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no RTM_NEWLINK in answer"))
}

fn list_with(nl: &mut Rtnl) -> io::Result<Vec<Link>> {
    Ok(nl
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
            _ => None,
        })
        .collect())
}

/// The state of interface `name` in `ns`.
pub fn get(ns: &str, name: &str) -> Result<Link> {
    netns::run_io(ns, &format!("link {name}: RTM_GETLINK"), || {
        get_with(&mut Rtnl::open()?, name)
    })
}

/// Every interface in `ns`, by index.
pub fn list(ns: &str) -> Result<Vec<Link>> {
    netns::run_io(ns, "RTM_GETLINK dump", || {
        let mut v = list_with(&mut Rtnl::open()?)?;
        v.sort_by_key(|l| l.index);
        Ok(v)
    })
}

/// Polls interface `name` in `ns` (every millisecond, one socket) until `pred` holds,
/// and returns the state that satisfied it; fails with `TimedOut` after `timeout`.
pub fn wait(
    ns: &str,
    name: &str,
    timeout: Duration,
    pred: impl Fn(&Link) -> bool + Send,
) -> Result<Link> {
    netns::run_io(ns, &format!("link {name}: wait"), move || {
        let mut nl = Rtnl::open()?;
        let deadline = Instant::now() + timeout;
        loop {
            let l = get_with(&mut nl, name)?;
            if pred(&l) {
                return Ok(l);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("condition not met within {timeout:?}; last state {l:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Waits up to `timeout` until interface `name` in `ns` is operationally up (carrier,
/// qdisc attached): until then the kernel drops what is sent, ARP requests included.
pub fn wait_running(ns: &str, name: &str, timeout: Duration) -> Result<Link> {
    wait(ns, name, timeout, |l| l.operstate == OperState::Up)
}

fn max_index(ns: &str) -> Result<u32> {
    Ok(list(ns)?.iter().map(|l| l.index).max().unwrap_or(1))
}

/// Creates a veth pair: `name` in `ns` and its peer `peer_name` in `peer_ns` (which may
/// be `ns`), both down. Returns the interface indexes of the two ends.
///
/// With [`IfIndexes::Distinct`], do not create interfaces in `ns` or `peer_ns`
/// concurrently from elsewhere: both could pick the same free index (`EEXIST`).
pub fn add_veth(
    ns: &str,
    name: &str,
    peer_ns: &str,
    peer_name: &str,
    opts: &Veth,
) -> Result<(u32, u32)> {
    let what = format!("veth {name}/{peer_name}: RTM_NEWLINK");
    let (index, peer_index) = match opts.ifindexes {
        IfIndexes::Kernel => (0, 0),
        IfIndexes::Explicit(a, b) => (a, b),
        IfIndexes::Distinct => {
            let top = max_index(ns)?.max(max_index(peer_ns)?);
            (top + 1, top + 2)
        }
    };
    let peer_file = File::open(netns::path_of(peer_ns))
        .map_err(|e| Error::ns(peer_ns, format!("{what}: open peer namespace"), e))?;
    let mut peer = link_by_name(peer_name);
    peer.header.index = peer_index;
    peer.attributes
        .push(LinkAttribute::NetNsFd(peer_file.as_raw_fd()));
    let mut msg = link_by_name(name);
    msg.header.index = index;
    if let Some(mtu) = opts.mtu {
        peer.attributes.push(LinkAttribute::Mtu(mtu));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    netns::run_io(ns, &what, || {
        Rtnl::open()?.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    })?;
    drop(peer_file);
    Ok((get(ns, name)?.index, get(peer_ns, peer_name)?.index))
}

/// Creates bridge `name` in `ns` with STP off and forward delay 0, down. Returns its
/// index.
pub fn add_bridge(ns: &str, name: &str) -> Result<u32> {
    let mut msg = link_by_name(name);
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Bridge),
        LinkInfo::Data(InfoData::Bridge(vec![
            InfoBridge::StpState(BridgeStpState::Disabled),
            InfoBridge::ForwardDelay(0),
        ])),
    ]));
    netns::run_io(ns, &format!("bridge {name}: RTM_NEWLINK"), || {
        let mut nl = Rtnl::open()?;
        nl.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)?;
        Ok(get_with(&mut nl, name)?.index)
    })
}

/// Sends an `RTM_SETLINK` for `name` with `attrs` and header flags `flags` within `mask`.
fn set(
    ns: &str,
    name: &str,
    op: &str,
    attrs: Vec<LinkAttribute>,
    flags: LinkFlags,
    mask: LinkFlags,
) -> Result<()> {
    let mut msg = link_by_name(name);
    msg.attributes.extend(attrs);
    msg.header.flags = flags;
    msg.header.change_mask = mask;
    netns::run_io(ns, &format!("link {name}: RTM_SETLINK {op}"), || {
        Rtnl::open()?.ack(RouteNetlinkMessage::SetLink(msg), 0)
    })
}

/// Sets interface `name` in `ns` administratively up. Carrier and operational state
/// follow asynchronously (and a bridge port forwards only once its carrier is seen):
/// before sending, [`wait`] for `operstate == OperState::Up` on both ends.
pub fn set_up(ns: &str, name: &str) -> Result<()> {
    set(ns, name, "up", vec![], LinkFlags::Up, LinkFlags::Up)
}

/// Sets interface `name` in `ns` administratively down.
pub fn set_down(ns: &str, name: &str) -> Result<()> {
    set(ns, name, "down", vec![], LinkFlags::empty(), LinkFlags::Up)
}

/// Sends an `RTM_SETLINK` for `name` that changes attribute `attr` only.
fn set_attr(ns: &str, name: &str, op: &str, attr: LinkAttribute) -> Result<()> {
    let none = LinkFlags::empty();
    set(ns, name, op, vec![attr], none, none)
}

/// Sets the MTU of interface `name` in `ns`.
pub fn set_mtu(ns: &str, name: &str, mtu: u32) -> Result<()> {
    set_attr(ns, name, &format!("mtu {mtu}"), LinkAttribute::Mtu(mtu))
}

/// Sets the hardware address of interface `name` in `ns`.
pub fn set_mac(ns: &str, name: &str, mac: [u8; 6]) -> Result<()> {
    let op = format!("address {}", mac.map(|b| format!("{b:02x}")).join(":"));
    set_attr(ns, name, &op, LinkAttribute::Address(mac.to_vec()))
}

/// Makes interface `port` in `ns` a port of bridge `bridge` (in the same namespace).
pub fn enslave(ns: &str, port: &str, bridge: &str) -> Result<()> {
    let master = get(ns, bridge)?.index;
    let op = format!("master {bridge}");
    set_attr(ns, port, &op, LinkAttribute::Controller(master))
}

/// Deletes interface `name` in `ns` (for a veth, both ends go).
pub fn del(ns: &str, name: &str) -> Result<()> {
    netns::run_io(ns, &format!("link {name}: RTM_DELLINK"), || {
        Rtnl::open()?.ack(RouteNetlinkMessage::DelLink(link_by_name(name)), 0)
    })
}

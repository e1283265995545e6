//! IPv4 addresses and routes over rtnetlink (`ip addr`, `ip route`).

use super::error::Result;
use super::netns;
use super::nl::Rtnl;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteProtocol,
    RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::io;
use std::net::{IpAddr, Ipv4Addr};

/// Adds `addr/prefix` to interface `dev` in `ns` (`ip addr add ADDR/PREFIX dev DEV`).
pub fn add_addr(ns: &str, dev: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
    netns::run_io(
        ns,
        &format!("addr {addr}/{prefix} dev {dev}: RTM_NEWADDR"),
        || {
            if prefix > 32 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "prefix over 32",
                ));
            }
            let index = ifindex(dev)?;
            let mut m = AddressMessage::default();
            m.header.family = AddressFamily::Inet;
            m.header.prefix_len = prefix;
            m.header.index = index;
            m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
            m.attributes
                .push(AddressAttribute::Address(IpAddr::V4(addr)));
            Rtnl::open()?.ack(
                RouteNetlinkMessage::NewAddress(m),
                NLM_F_CREATE | NLM_F_EXCL,
            )
        },
    )
}

/// The IPv4 addresses (with prefix length) on interface `dev` in `ns`.
pub fn addrs(ns: &str, dev: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
    netns::run_io(ns, &format!("addr dev {dev}: RTM_GETADDR dump"), || {
        let index = ifindex(dev)?;
        let mut q = AddressMessage::default();
        q.header.family = AddressFamily::Inet;
        let mut out = Vec::new();
        for m in Rtnl::open()?.dump(RouteNetlinkMessage::GetAddress(q))? {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            if a.header.index != index {
                continue;
            }
            for attr in &a.attributes {
                if let AddressAttribute::Local(IpAddr::V4(v4)) = attr {
                    out.push((*v4, a.header.prefix_len));
                }
            }
        }
        Ok(out)
    })
}

/// An IPv4 route for [`add_route`]; `Route::default()` is a default route with neither
/// gateway nor device set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub dst: Ipv4Addr,
    /// Its prefix length (0 with [`Ipv4Addr::UNSPECIFIED`]: the default route).
    pub prefix: u8,
    /// Gateway, if any.
    pub via: Option<Ipv4Addr>,
    /// Output interface, if given.
    pub dev: Option<String>,
    /// Advertised TCP MSS (`advmss`), if given.
    pub advmss: Option<u32>,
}

impl Default for Route {
    fn default() -> Self {
        Route {
            dst: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
            via: None,
            dev: None,
            advmss: None,
        }
    }
}

impl Route {
    /// A default route via `gw`.
    pub fn default_via(gw: Ipv4Addr) -> Route {
        Route {
            via: Some(gw),
            ..Route::default()
        }
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix == 0 {
            write!(f, "default")?;
        } else {
            write!(f, "{}/{}", self.dst, self.prefix)?;
        }
        if let Some(gw) = self.via {
            write!(f, " via {gw}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        Ok(())
    }
}

/// Adds `route` to the main table of `ns` (`ip route add ...`).
pub fn add_route(ns: &str, route: &Route) -> Result<()> {
    netns::run_io(ns, &format!("route {route}: RTM_NEWROUTE"), || {
        if route.prefix > 32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "prefix over 32",
            ));
        }
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = route.prefix;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = if route.via.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        m.header.kind = RouteType::Unicast;
        if route.prefix > 0 {
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(route.dst)));
        }
        if let Some(gw) = route.via {
            m.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        }
        if let Some(dev) = &route.dev {
            m.attributes.push(RouteAttribute::Oif(ifindex(dev)?));
        }
        if let Some(mss) = route.advmss {
            m.attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Advmss(mss)]));
        }
        Rtnl::open()?.ack(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
    })
}

/// The index of `dev` in the calling thread's namespace.
fn ifindex(dev: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(dev).map_err(super::error::errno)
}

//! Throw-away network-namespace topologies for the demo, the benchmark and the tests:
//!
//! ```text
//!  ns A            ns F1                      ns F2            ns B
//!  [a0] ------- [p1]  forwarder 1  [s1] ==== [s2] forwarder 2 [p2] ------- [b0]
//!  10.x.0.1/24      plain          secure    secure        plain      10.x.0.2/24
//! ```
//!
//! With several secure links, link k joins `s1`+suffix and `s2`+suffix (see
//! [`secure_if`]); an impaired link passes through a namespace W of its own, where an
//! [`crate::impair::Impairment`] relays between its interfaces `wa` and `wb`:
//! `[s1b] --- [wa] W [wb] --- [s2b]`.
//!
//! Every name carries the creating process id, so parallel runs never collide and a
//! later run can remove what a killed one left behind ([`sweep_stale`]). Everything is
//! made in-process ([`crate::netlab`]: netlink, `/proc/sys`, the forwarder's own
//! offload ioctls), starts no outside program, and is removed on drop. Only addresses
//! inside these namespaces are used.

use crate::netlab::link::{self, Veth};
use crate::netlab::netns::{self, Netns};
use crate::netlab::{ip, sysctl};
use macsec_forward::io::iface::{Offload, Offloads};
use macsec_forward::io::SetupError;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Errors from building a topology.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// A namespace, interface, address or setting could not be made.
    #[error("{0}")]
    Netlab(#[from] crate::netlab::Error),
    /// Offloads could not be turned off.
    #[error("netns {ns}: {source}")]
    Offloads {
        /// The namespace.
        ns: String,
        /// Cause.
        source: SetupError,
    },
}

/// The prefix of every namespace this module creates.
pub const PREFIX: &str = "msx";

/// How long an interface may take to become operationally up.
const UP_TIMEOUT: Duration = Duration::from_secs(5);

/// The offloads [`Topology::offloads_off`] turns off: those of `ethtool -K DEV gro off
/// gso off tso off` (GRO, GSO and every TSO variant).
pub fn host_offloads() -> Vec<Offload> {
    Offload::ALL
        .iter()
        .copied()
        .filter(|o| matches!(o.ethtool_word(), "gro" | "gso" | "tso"))
        .collect()
}

/// Removes namespaces left by earlier runs whose process no longer exists (with the
/// processes still inside them).
pub fn sweep_stale() {
    let _ = netns::sweep_stale(PREFIX);
}

/// How the two middle namespaces connect the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Middle {
    /// Nothing: the caller starts forwarders in F1 and F2.
    Forwarders,
    /// A kernel bridge in F1 and in F2 (the baseline).
    Bridges,
}

/// Settings of a topology.
#[derive(Debug, Clone)]
pub struct TopologySpec {
    /// A short tag for the names (at most 4 characters).
    pub tag: String,
    /// MTU of the host links (a0-p1, p2-b0).
    pub plain_mtu: u32,
    /// MTU of the secure link (s1-s2).
    pub secure_mtu: u32,
    /// Turn GRO/GSO/TSO off on the hosts' interfaces too (benchmarks: same setting for
    /// every variant). The forwarder turns them off on its own ports anyway.
    pub host_offloads_off: bool,
    /// Forwarders or bridges in the middle.
    pub middle: Middle,
    /// Third octet-pair of the 10.x.0.0/24 subnet.
    pub subnet: u8,
    /// Secure links between F1 and F2 (1 to 4).
    pub links: usize,
    /// Links that pass through an impairment namespace.
    pub impaired: Vec<usize>,
}

/// The secure interface of link `k` at forwarder `end` (1 or 2): `s1`, `s1b`, `s1c`, ...
pub fn secure_if(end: u8, k: usize) -> String {
    match k {
        0 => format!("s{end}"),
        _ => format!("s{end}{}", (b'a' + k as u8) as char),
    }
}

/// A live topology; removed on drop.
#[derive(Debug)]
pub struct Topology {
    /// Namespace of host A.
    pub ns_a: String,
    /// Namespace of forwarder 1.
    pub ns_f1: String,
    /// Namespace of forwarder 2.
    pub ns_f2: String,
    /// Namespace of host B.
    pub ns_b: String,
    /// IPv4 address of A.
    pub ip_a: String,
    /// IPv4 address of B.
    pub ip_b: String,
    /// The spec it was built from.
    pub spec: TopologySpec,
    /// Per link: the namespace of its impairment relay, if it has one.
    pub ns_w: Vec<Option<String>>,
    /// The namespaces: dropping them deletes them, kills the processes inside and
    /// destroys their veth ends and the peers of those.
    owned: Vec<Netns>,
}

/// Interface names (fixed: each lives in its own namespace).
pub mod ifname {
    /// Host A's interface.
    pub const A: &str = "a0";
    /// Forwarder 1's plain port.
    pub const P1: &str = "p1";
    /// Forwarder 1's secure port.
    pub const S1: &str = "s1";
    /// Forwarder 2's secure port.
    pub const S2: &str = "s2";
    /// Forwarder 2's plain port.
    pub const P2: &str = "p2";
    /// Host B's interface.
    pub const B: &str = "b0";
}

impl Topology {
    /// Builds the topology, with every interface operationally up when it returns. On
    /// any error, what was built is removed again.
    pub fn create(spec: TopologySpec) -> Result<Topology, NetnsError> {
        sweep_stale();
        let id = format!("{PREFIX}{}-{}", std::process::id(), spec.tag);
        let mut t = Topology {
            ns_a: format!("{id}-a"),
            ns_f1: format!("{id}-f1"),
            ns_f2: format!("{id}-f2"),
            ns_b: format!("{id}-b"),
            ip_a: format!("10.{}.0.1", spec.subnet),
            ip_b: format!("10.{}.0.2", spec.subnet),
            ns_w: (0..spec.links.max(1))
                .map(|k| spec.impaired.contains(&k).then(|| format!("{id}-w{k}")))
                .collect(),
            spec,
            owned: Vec::new(),
        };
        t.build()?;
        Ok(t)
    }

    fn namespaces(&self) -> [&str; 4] {
        [&self.ns_a, &self.ns_f1, &self.ns_f2, &self.ns_b]
    }

    fn build(&mut self) -> Result<(), NetnsError> {
        use ifname::*;
        let mut names: Vec<String> = self.namespaces().map(str::to_owned).to_vec();
        names.extend(self.ns_w.iter().flatten().cloned());
        for ns in &names {
            self.owned.push(Netns::add(ns)?);
            link::set_up(ns, "lo")?;
        }
        // The forwarders' own ports should send nothing of their own (IPv6 router and
        // multicast listener solicitations would show up as untagged frames): IPv6 off
        // before their interfaces exist. Also in the relays' namespaces, whose frames
        // would cross a link.
        let mut quiet: Vec<String> = vec![self.ns_f1.clone(), self.ns_f2.clone()];
        quiet.extend(self.ns_w.iter().flatten().cloned());
        for ns in &quiet {
            for key in [
                "net.ipv6.conf.all.disable_ipv6",
                "net.ipv6.conf.default.disable_ipv6",
            ] {
                sysctl::set(ns, key, "1")?;
            }
        }
        let s = &self.spec;
        let mut pairs: Vec<(String, String, String, String, u32)> = vec![
            (
                self.ns_a.clone(),
                A.into(),
                self.ns_f1.clone(),
                P1.into(),
                s.plain_mtu,
            ),
            (
                self.ns_f2.clone(),
                P2.into(),
                self.ns_b.clone(),
                B.into(),
                s.plain_mtu,
            ),
        ];
        for k in 0..s.links.max(1) {
            let (x, y) = (secure_if(1, k), secure_if(2, k));
            match &self.ns_w[k] {
                None => pairs.push((self.ns_f1.clone(), x, self.ns_f2.clone(), y, s.secure_mtu)),
                Some(w) => {
                    pairs.push((self.ns_f1.clone(), x, w.clone(), "wa".into(), s.secure_mtu));
                    pairs.push((w.clone(), "wb".into(), self.ns_f2.clone(), y, s.secure_mtu));
                }
            }
        }
        for (ns1, if1, ns2, if2, mtu) in &pairs {
            let (ns1, if1, ns2, if2, mtu) =
                (ns1.as_str(), if1.as_str(), ns2.as_str(), if2.as_str(), *mtu);
            let opts = Veth {
                mtu: Some(mtu),
                ..Veth::default()
            };
            link::add_veth(ns1, if1, ns2, if2, &opts)?;
        }
        let prefix = 24;
        let host = |n| Ipv4Addr::new(10, s.subnet, 0, n);
        ip::add_addr(&self.ns_a, A, host(1), prefix)?;
        ip::add_addr(&self.ns_b, B, host(2), prefix)?;
        if s.host_offloads_off {
            for (ns, dev) in [(&self.ns_a, A), (&self.ns_b, B)] {
                Self::offloads_off(ns, dev)?;
            }
        }
        if s.middle == Middle::Bridges {
            for (ns, a, b) in [(&self.ns_f1, P1, S1), (&self.ns_f2, S2, P2)] {
                link::add_bridge(ns, "br0")?;
                for dev in [a, b] {
                    Self::offloads_off(ns, dev)?;
                    link::enslave(ns, dev, "br0")?;
                }
                link::set_up(ns, "br0")?;
            }
        }
        for w in self.ns_w.iter().flatten() {
            for dev in ["wa", "wb"] {
                Self::offloads_off(w, dev)?;
            }
        }
        for (ns1, if1, ns2, if2, _) in &pairs {
            link::set_up(ns1, if1)?;
            link::set_up(ns2, if2)?;
        }
        // Until both ends (and bridge ports) are operationally up, the kernel drops what
        // is sent, the first ARP request included.
        for (ns1, if1, ns2, if2, _) in &pairs {
            link::wait_running(ns1, if1, UP_TIMEOUT)?;
            link::wait_running(ns2, if2, UP_TIMEOUT)?;
        }
        Ok(())
    }

    /// Turns GRO, GSO and TSO ([`host_offloads`]) off on `dev` in `ns`, with the
    /// forwarder's own `ETHTOOL_SFEATURES` code.
    pub fn offloads_off(ns: &str, dev: &str) -> Result<(), NetnsError> {
        let fail = |source| NetnsError::Offloads {
            ns: ns.to_owned(),
            source,
        };
        netns::run_in(ns, || Offloads::disable(dev, &host_offloads()))?.map_err(fail)?;
        Ok(())
    }
}

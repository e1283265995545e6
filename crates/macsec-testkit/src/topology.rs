//! Throw-away network-namespace topologies for the demo, the benchmark and the tests:
//!
//! ```text
//!  ns A            ns F1                      ns F2            ns B
//!  [a0] ------- [p1]  forwarder 1  [s1] ==== [s2] forwarder 2 [p2] ------- [b0]
//!  10.x.0.1/24      plain          secure    secure        plain      10.x.0.2/24
//! ```
//!
//! Every name carries the creating process id, so parallel runs never collide and a
//! later run can remove what a killed one left behind ([`sweep_stale`]). Everything is
//! created with `ip` from iproute2 and removed on drop. Only addresses inside these
//! namespaces are used.

use std::process::{Command, Stdio};

/// Errors from building a topology.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// A command failed.
    #[error("`{cmd}` failed: {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its error output.
        stderr: String,
    },
    /// A command could not be started.
    #[error("cannot run `{cmd}`: {source} (is iproute2 installed, and are we root?)")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Runs a command, returning its standard output.
pub fn run(args: &[&str]) -> Result<String, NetnsError> {
    let cmd = args.join(" ");
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetnsError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(NetnsError::Command {
            cmd,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The prefix of every namespace this module creates.
pub const PREFIX: &str = "msx";

/// Removes namespaces left by earlier runs whose process no longer exists.
pub fn sweep_stale() {
    let Ok(list) = run(&["ip", "netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = run(&["ip", "netns", "del", name]);
            }
        }
    }
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
    /// Builds the topology. On any error, what was built is removed again.
    pub fn create(spec: TopologySpec) -> Result<Topology, NetnsError> {
        sweep_stale();
        let id = format!("{PREFIX}{}-{}", std::process::id(), spec.tag);
        let t = Topology {
            ns_a: format!("{id}-a"),
            ns_f1: format!("{id}-f1"),
            ns_f2: format!("{id}-f2"),
            ns_b: format!("{id}-b"),
            ip_a: format!("10.{}.0.1", spec.subnet),
            ip_b: format!("10.{}.0.2", spec.subnet),
            spec,
        };
        t.build()?;
        Ok(t)
    }

    fn namespaces(&self) -> [&str; 4] {
        [&self.ns_a, &self.ns_f1, &self.ns_f2, &self.ns_b]
    }

    fn build(&self) -> Result<(), NetnsError> {
        use ifname::*;
        for ns in self.namespaces() {
            run(&["ip", "netns", "add", ns])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        // The forwarders' own ports should send nothing of their own (IPv6 router and
        // multicast listener solicitations would show up as untagged frames).
        for ns in [&self.ns_f1, &self.ns_f2] {
            run(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ])?;
        }
        let link =
            |ns1: &str, if1: &str, ns2: &str, if2: &str, mtu: u32| -> Result<(), NetnsError> {
                let m = mtu.to_string();
                run(&[
                    "ip", "-n", ns1, "link", "add", if1, "mtu", &m, "type", "veth", "peer", "name",
                    if2, "netns", ns2, "mtu", &m,
                ])?;
                run(&["ip", "-n", ns1, "link", "set", if1, "up"])?;
                run(&["ip", "-n", ns2, "link", "set", if2, "up"])?;
                Ok(())
            };
        let s = &self.spec;
        link(&self.ns_a, A, &self.ns_f1, P1, s.plain_mtu)?;
        link(&self.ns_f1, S1, &self.ns_f2, S2, s.secure_mtu)?;
        link(&self.ns_f2, P2, &self.ns_b, B, s.plain_mtu)?;
        run(&[
            "ip",
            "-n",
            &self.ns_a,
            "addr",
            "add",
            &format!("{}/24", self.ip_a),
            "dev",
            A,
        ])?;
        run(&[
            "ip",
            "-n",
            &self.ns_b,
            "addr",
            "add",
            &format!("{}/24", self.ip_b),
            "dev",
            B,
        ])?;
        if s.host_offloads_off {
            for (ns, dev) in [(&self.ns_a, A), (&self.ns_b, B)] {
                self.offloads_off(ns, dev)?;
            }
        }
        if s.middle == Middle::Bridges {
            for (ns, a, b) in [(&self.ns_f1, P1, S1), (&self.ns_f2, S2, P2)] {
                run(&[
                    "ip",
                    "-n",
                    ns,
                    "link",
                    "add",
                    "br0",
                    "type",
                    "bridge",
                    "stp_state",
                    "0",
                    "forward_delay",
                    "0",
                ])?;
                for dev in [a, b] {
                    self.offloads_off(ns, dev)?;
                    run(&["ip", "-n", ns, "link", "set", dev, "master", "br0"])?;
                }
                run(&["ip", "-n", ns, "link", "set", "br0", "up"])?;
            }
        }
        Ok(())
    }

    /// Turns GRO, GSO, TSO and LRO off on `dev` in `ns` (needs ethtool).
    pub fn offloads_off(&self, ns: &str, dev: &str) -> Result<(), NetnsError> {
        run(&[
            "ip", "netns", "exec", ns, "ethtool", "-K", dev, "gro", "off", "gso", "off", "tso",
            "off",
        ])?;
        Ok(())
    }

    /// A command prefix that runs in namespace `ns`.
    pub fn exec<'a>(ns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        v
    }

    /// Runs a command in namespace `ns`.
    pub fn run_in(&self, ns: &str, args: &[&str]) -> Result<String, NetnsError> {
        run(&Self::exec(ns, args))
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.namespaces() {
            // Deleting a namespace destroys its veth ends and their peers.
            let _ = run(&["ip", "netns", "pids", ns]).map(|pids| {
                for p in pids.split_whitespace() {
                    let _ = run(&["kill", "-9", p]);
                }
            });
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

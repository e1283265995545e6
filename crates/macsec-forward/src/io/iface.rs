//! Interface checks and fixes: existence, index, MAC, MTU, up/running flags, and the
//! offloads that change what a packet socket sees.
//!
//! Why offloads matter: GRO/LRO merge received segments into frames far larger than the
//! MTU, GSO/TSO let the local stack hand over such super-frames for the device to split,
//! and VLAN acceleration moves tags out of the frame. A forwarder that copies frames
//! between interfaces must see the frames that are on the wire, so these have to be off
//! on both of its interfaces. [`Offloads::read`] says exactly which are on,
//! [`Offloads::disable`] turns them off, and [`Offloads::require_off`] refuses with the
//! `ethtool -K` command to run.
//!
//! What is checked: GRO (and its hardware and fraglist variants), LRO, GSO, every TSO
//! variant, and 802.1Q/802.1ad tag stripping and insertion. Other segmentation offloads
//! (UDP, GRE, UDP tunnels, SCTP) only shape frames this host originates, which the receive
//! ports ignore. When the forwarder sits on a veth, the frames it receives are shaped by
//! the *peer's* transmit offloads: a peer with TSO/GSO/USO on hands over 64 KiB
//! super-frames. Turn those off on the peer as well.
//!
//! Everything here works in the calling thread's network namespace (see
//! [`super::netns`]).

use std::fmt;
use std::os::fd::AsFd;

use macsec::wire::MacAddr;

use super::sys;
use super::SetupError;

/// An interface as looked up by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// Hardware address, if the interface has one.
    pub mac: Option<MacAddr>,
    /// MTU (largest IP packet; an Ethernet frame adds 14 octets, plus 4 per VLAN tag).
    pub mtu: u32,
    /// `IFF_*` flags.
    pub flags: u32,
}

fn check_name(name: &str) -> Result<(), SetupError> {
    let bad = |reason| {
        Err(SetupError::BadName {
            ifname: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() >= libc::IFNAMSIZ {
        return bad("longer than 15 octets");
    }
    if name
        .bytes()
        .any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace())
    {
        return bad("contains NUL, '/' or white space");
    }
    Ok(())
}

impl Interface {
    /// Looks up `name` in the current network namespace (index, MAC, flags and MTU
    /// through ioctls on a socket of that namespace).
    pub fn lookup(name: &str) -> Result<Interface, SetupError> {
        check_name(name)?;
        let sock = sys::ioctl_socket().map_err(|e| SetupError::os(name, "open ioctl socket", e))?;
        let index = sys::if_index(sock.as_fd(), name)
            .map_err(|e| SetupError::os(name, "look up the interface index", e))?;
        let flags = sys::if_flags(sock.as_fd(), name)
            .map_err(|e| SetupError::os(name, "read flags (SIOCGIFFLAGS)", e))?;
        let mac = sys::if_hwaddr(sock.as_fd(), name)
            .map_err(|e| SetupError::os(name, "read the MAC address (SIOCGIFHWADDR)", e))?
            .map(MacAddr);
        let mtu = sys::if_mtu(sock.as_fd(), name)
            .map_err(|e| SetupError::os(name, "read MTU (SIOCGIFMTU)", e))?;
        Ok(Interface {
            name: name.to_owned(),
            index,
            mac,
            mtu,
            flags,
        })
    }

    /// The interface's driver as ethtool names it (`veth`, `tun`, `ixgbe`, ...); `None`
    /// when the driver does not say.
    pub fn driver(&self) -> Option<String> {
        let sock = sys::ioctl_socket().ok()?;
        sys::ethtool_driver(sock.as_fd(), &self.name)
            .ok()
            .filter(|d| !d.is_empty())
    }

    /// Whether frames sent on this interface come straight back into a local network
    /// stack (a veth's peer, a tap device's reader) rather than going out through a NIC:
    /// the kernel then copies the transmit ring's pages again anyway, so one straight
    /// copy is cheaper than zero-copy (see [`super::afpacket::TxConfig::linear`]).
    pub fn loops_back_into_the_stack(&self) -> bool {
        matches!(self.driver().as_deref(), Some("veth" | "tun"))
    }

    /// Re-reads MTU and flags.
    pub fn refresh(&mut self) -> Result<(), SetupError> {
        let name = self.name.as_str();
        let sock = sys::ioctl_socket().map_err(|e| SetupError::os(name, "open ioctl socket", e))?;
        self.mtu = sys::if_mtu(sock.as_fd(), name)
            .map_err(|e| SetupError::os(name, "read MTU (SIOCGIFMTU)", e))?;
        self.flags = sys::if_flags(sock.as_fd(), name)
            .map_err(|e| SetupError::os(name, "read flags (SIOCGIFFLAGS)", e))?;
        Ok(())
    }

    /// `IFF_UP`: administratively up.
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }

    /// `IFF_RUNNING`: up with carrier.
    pub fn is_running(&self) -> bool {
        self.flags & libc::IFF_RUNNING as u32 != 0
    }

    /// `IFF_PROMISC` as set by `ip link set promisc on` (packet-socket promiscuity is
    /// counted separately and not shown here).
    pub fn is_promiscuous(&self) -> bool {
        self.flags & libc::IFF_PROMISC as u32 != 0
    }

    /// Fails unless the interface is up and running.
    pub fn require_up(&self) -> Result<(), SetupError> {
        if !self.is_up() {
            return Err(SetupError::Down {
                ifname: self.name.clone(),
            });
        }
        if !self.is_running() {
            return Err(SetupError::NotRunning {
                ifname: self.name.clone(),
            });
        }
        Ok(())
    }

    /// Fails unless the MTU is at least `required`, naming the command that fixes it.
    pub fn require_mtu(&self, required: u32) -> Result<(), SetupError> {
        if self.mtu < required {
            return Err(SetupError::MtuTooSmall {
                ifname: self.name.clone(),
                mtu: self.mtu,
                required,
            });
        }
        Ok(())
    }

    /// Sets the interface administratively up (`SIOCSIFFLAGS`), then refreshes.
    pub fn set_up(&mut self) -> Result<(), SetupError> {
        let name = self.name.as_str();
        let sock = sys::ioctl_socket().map_err(|e| SetupError::os(name, "open ioctl socket", e))?;
        let flags = sys::if_flags(sock.as_fd(), name)
            .map_err(|e| SetupError::os(name, "read flags (SIOCGIFFLAGS)", e))?;
        if flags & libc::IFF_UP as u32 == 0 {
            sys::if_set_flags(sock.as_fd(), name, flags | libc::IFF_UP as u32)
                .map_err(|e| SetupError::os(name, "set the interface up (SIOCSIFFLAGS)", e))?;
        }
        self.refresh()
    }

    /// Sets the MTU (`SIOCSIFMTU`), then refreshes.
    pub fn set_mtu(&mut self, mtu: u32) -> Result<(), SetupError> {
        let name = self.name.as_str();
        let sock = sys::ioctl_socket().map_err(|e| SetupError::os(name, "open ioctl socket", e))?;
        sys::if_set_mtu(sock.as_fd(), name, mtu)
            .map_err(|e| SetupError::os(name, "set MTU (SIOCSIFMTU)", e))?;
        self.refresh()
    }
}

/// An offload that must be off on a forwarder's interfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Offload {
    /// Generic receive offload (`rx-gro`).
    Gro,
    /// Hardware GRO (`rx-gro-hw`).
    GroHw,
    /// GRO of fraglists (`rx-gro-list`).
    GroList,
    /// Large receive offload (`rx-lro`).
    Lro,
    /// Generic segmentation offload (`tx-generic-segmentation`).
    Gso,
    /// TCP segmentation offload (`tx-tcp-segmentation`).
    Tso,
    /// TSO with ECN (`tx-tcp-ecn-segmentation`).
    TsoEcn,
    /// TSO that may mangle IP IDs (`tx-tcp-mangleid-segmentation`).
    TsoMangleId,
    /// TSO for IPv6 (`tx-tcp6-segmentation`).
    Tso6,
    /// TSO with accurate ECN (`tx-tcp-accecn-segmentation`, newer kernels).
    TsoAccEcn,
    /// 802.1Q tag stripping on receive (`rx-vlan-hw-parse`, ethtool `rxvlan`).
    RxVlan,
    /// 802.1Q tag insertion on transmit (`tx-vlan-hw-insert`, ethtool `txvlan`).
    TxVlan,
    /// 802.1ad tag stripping on receive (`rx-vlan-stag-hw-parse`).
    RxVlanStag,
    /// 802.1ad tag insertion on transmit (`tx-vlan-stag-hw-insert`).
    TxVlanStag,
}

impl Offload {
    /// Every offload this module checks.
    pub const ALL: &'static [Offload] = &[
        Offload::Gro,
        Offload::GroHw,
        Offload::GroList,
        Offload::Lro,
        Offload::Gso,
        Offload::Tso,
        Offload::TsoEcn,
        Offload::TsoMangleId,
        Offload::Tso6,
        Offload::TsoAccEcn,
        Offload::RxVlan,
        Offload::TxVlan,
        Offload::RxVlanStag,
        Offload::TxVlanStag,
    ];

    /// The kernel's feature name (as listed by `ethtool -k`).
    pub fn kernel_name(self) -> &'static str {
        match self {
            Offload::Gro => "rx-gro",
            Offload::GroHw => "rx-gro-hw",
            Offload::GroList => "rx-gro-list",
            Offload::Lro => "rx-lro",
            Offload::Gso => "tx-generic-segmentation",
            Offload::Tso => "tx-tcp-segmentation",
            Offload::TsoEcn => "tx-tcp-ecn-segmentation",
            Offload::TsoMangleId => "tx-tcp-mangleid-segmentation",
            Offload::Tso6 => "tx-tcp6-segmentation",
            Offload::TsoAccEcn => "tx-tcp-accecn-segmentation",
            Offload::RxVlan => "rx-vlan-hw-parse",
            Offload::TxVlan => "tx-vlan-hw-insert",
            Offload::RxVlanStag => "rx-vlan-stag-hw-parse",
            Offload::TxVlanStag => "tx-vlan-stag-hw-insert",
        }
    }

    /// The word `ethtool -K` takes for it: the short legacy name where there is one
    /// (`tso` covers every `tx-tcp*-segmentation`), else the kernel name.
    pub fn ethtool_word(self) -> &'static str {
        match self {
            Offload::Gro => "gro",
            Offload::Lro => "lro",
            Offload::Gso => "gso",
            Offload::Tso | Offload::TsoEcn | Offload::TsoMangleId | Offload::Tso6 => "tso",
            Offload::TsoAccEcn => "tx-tcp-accecn-segmentation",
            Offload::RxVlan => "rxvlan",
            Offload::TxVlan => "txvlan",
            other => other.kernel_name(),
        }
    }
}

impl fmt::Display for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kernel_name())
    }
}

/// The state of one offload on one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffloadState {
    /// Which offload.
    pub offload: Offload,
    /// Currently on.
    pub active: bool,
    /// Requested on by user space (may differ from `active` when a dependency is off).
    pub requested: bool,
    /// The driver lets it change (`ethtool -k` shows `[fixed]` otherwise).
    pub changeable: bool,
}

/// The offload states of one interface (only offloads the kernel knows are listed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offloads {
    /// The interface.
    pub ifname: String,
    /// One entry per offload the kernel knows.
    pub states: Vec<OffloadState>,
}

/// Where a feature lives in the ethtool feature blocks.
#[derive(Clone, Copy)]
struct Bit {
    block: usize,
    mask: u32,
}

/// Maps the offloads to feature bits for the running kernel.
fn feature_bits(
    ifname: &str,
    fd: std::os::fd::BorrowedFd<'_>,
) -> Result<(Vec<(Offload, Bit)>, usize), SetupError> {
    let names = sys::ethtool_feature_names(fd, ifname)
        .map_err(|e| SetupError::os(ifname, "read feature names (ETHTOOL_GSTRINGS)", e))?;
    let blocks = names.len().div_ceil(32);
    let bits = Offload::ALL
        .iter()
        .filter_map(|&o| {
            names.iter().position(|n| n == o.kernel_name()).map(|i| {
                (
                    o,
                    Bit {
                        block: i / 32,
                        mask: 1 << (i % 32),
                    },
                )
            })
        })
        .collect();
    Ok((bits, blocks))
}

impl Offloads {
    /// Reads the offload states of `ifname` (`ETHTOOL_GFEATURES`).
    pub fn read(ifname: &str) -> Result<Offloads, SetupError> {
        check_name(ifname)?;
        let sock =
            sys::ioctl_socket().map_err(|e| SetupError::os(ifname, "open ioctl socket", e))?;
        let (bits, nblocks) = feature_bits(ifname, sock.as_fd())?;
        let blocks = sys::ethtool_get_features(sock.as_fd(), ifname, nblocks)
            .map_err(|e| SetupError::os(ifname, "read features (ETHTOOL_GFEATURES)", e))?;
        let states = bits
            .into_iter()
            .filter_map(|(offload, b)| {
                let blk = blocks.get(b.block)?;
                Some(OffloadState {
                    offload,
                    active: blk.active & b.mask != 0,
                    requested: blk.requested & b.mask != 0,
                    changeable: blk.available & b.mask != 0 && blk.never_changed & b.mask == 0,
                })
            })
            .collect();
        Ok(Offloads {
            ifname: ifname.to_owned(),
            states,
        })
    }

    /// The offloads that are on.
    pub fn enabled(&self) -> Vec<Offload> {
        self.states
            .iter()
            .filter(|s| s.active)
            .map(|s| s.offload)
            .collect()
    }

    /// Whether `o` is on (false if the kernel does not know it).
    pub fn is_on(&self, o: Offload) -> bool {
        self.states.iter().any(|s| s.offload == o && s.active)
    }

    /// The command that turns off every offload that is on, e.g.
    /// `ethtool -K eth0 gro off tso off`; `None` if all are off.
    pub fn ethtool_command(&self) -> Option<String> {
        let mut words: Vec<&str> = Vec::new();
        for s in self.states.iter().filter(|s| s.active || s.requested) {
            let w = s.offload.ethtool_word();
            if !words.contains(&w) {
                words.push(w);
            }
        }
        if words.is_empty() {
            return None;
        }
        let mut cmd = format!("ethtool -K {}", self.ifname);
        for w in words {
            cmd.push(' ');
            cmd.push_str(w);
            cmd.push_str(" off");
        }
        Some(cmd)
    }

    /// Fails with [`SetupError::OffloadsOn`] (naming the command to run) or
    /// [`SetupError::OffloadsFixed`] unless every checked offload is off.
    pub fn require_off(&self) -> Result<(), SetupError> {
        let fixed: Vec<String> = self
            .states
            .iter()
            .filter(|s| s.active && !s.changeable)
            .map(|s| s.offload.kernel_name().to_owned())
            .collect();
        if !fixed.is_empty() {
            return Err(SetupError::OffloadsFixed {
                ifname: self.ifname.clone(),
                features: fixed,
            });
        }
        let on: Vec<String> = self
            .states
            .iter()
            .filter(|s| s.active)
            .map(|s| s.offload.kernel_name().to_owned())
            .collect();
        if on.is_empty() {
            return Ok(());
        }
        Err(SetupError::OffloadsOn {
            ifname: self.ifname.clone(),
            features: on,
            command: self.ethtool_command().unwrap_or_default(),
        })
    }

    /// Turns off `which` on `ifname` (`ETHTOOL_SFEATURES`) and returns the states read
    /// back afterwards. Offloads the kernel does not know are ignored; check the result
    /// with [`require_off`](Self::require_off) (a fixed feature stays on).
    pub fn disable(ifname: &str, which: &[Offload]) -> Result<Offloads, SetupError> {
        check_name(ifname)?;
        let sock =
            sys::ioctl_socket().map_err(|e| SetupError::os(ifname, "open ioctl socket", e))?;
        let (bits, nblocks) = feature_bits(ifname, sock.as_fd())?;
        let mut req = vec![(0u32, 0u32); nblocks];
        for (o, b) in bits {
            if which.contains(&o) {
                if let Some(slot) = req.get_mut(b.block) {
                    slot.0 |= b.mask; // valid: change it; requested bit stays 0 = off
                }
            }
        }
        if req.iter().any(|(valid, _)| *valid != 0) {
            sys::ethtool_set_features(sock.as_fd(), ifname, &req)
                .map_err(|e| SetupError::os(ifname, "change features (ETHTOOL_SFEATURES)", e))?;
        }
        Offloads::read(ifname)
    }

    /// Turns off every offload in [`Offload::ALL`] that is on, then requires them off.
    pub fn disable_all(ifname: &str) -> Result<Offloads, SetupError> {
        let now = Offloads::read(ifname)?;
        let on = now.enabled();
        let after = if on.is_empty() {
            now
        } else {
            Offloads::disable(ifname, &on)?
        };
        after.require_off()?;
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(offload: Offload, active: bool, changeable: bool) -> OffloadState {
        OffloadState {
            offload,
            active,
            requested: active,
            changeable,
        }
    }

    #[test]
    fn command_lists_each_word_once() {
        let o = Offloads {
            ifname: "eth9".into(),
            states: vec![
                st(Offload::Gro, true, true),
                st(Offload::Lro, false, false),
                st(Offload::Tso, true, true),
                st(Offload::Tso6, true, true),
                st(Offload::RxVlan, true, true),
            ],
        };
        assert_eq!(
            o.ethtool_command().as_deref(),
            Some("ethtool -K eth9 gro off tso off rxvlan off")
        );
        let e = o.require_off().unwrap_err().to_string();
        assert!(
            e.contains("rx-gro, tx-tcp-segmentation, tx-tcp6-segmentation"),
            "{e}"
        );
        assert!(
            e.contains("ethtool -K eth9 gro off tso off rxvlan off"),
            "{e}"
        );
    }

    #[test]
    fn fixed_features_refuse() {
        let o = Offloads {
            ifname: "eth9".into(),
            states: vec![st(Offload::Lro, true, false)],
        };
        assert!(matches!(
            o.require_off(),
            Err(SetupError::OffloadsFixed { .. })
        ));
    }

    #[test]
    fn all_off_is_ok() {
        let o = Offloads {
            ifname: "eth9".into(),
            states: vec![st(Offload::Gro, false, true)],
        };
        assert!(o.require_off().is_ok());
        assert_eq!(o.ethtool_command(), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(matches!(
            Interface::lookup("this-name-is-too-long"),
            Err(SetupError::BadName { .. })
        ));
        assert!(matches!(
            Interface::lookup(""),
            Err(SetupError::BadName { .. })
        ));
    }

    #[test]
    fn mtu_message_names_the_command() {
        let i = Interface {
            name: "sec0".into(),
            index: 3,
            mac: None,
            mtu: 1500,
            flags: 0,
        };
        let e = i.require_mtu(1532).unwrap_err().to_string();
        assert!(e.contains("ip link set dev sec0 mtu 1532"), "{e}");
        assert!(matches!(i.require_up(), Err(SetupError::Down { .. })));
    }
}

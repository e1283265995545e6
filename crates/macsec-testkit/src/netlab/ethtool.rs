//! Device features (offloads) over the kernel's `ethtool` generic netlink family, as
//! `ethtool -k` / `ethtool -K` (version 5.6 and later) read and change them.
//!
//! This is a second way in, independent of the `ETHTOOL_GFEATURES` / `SFEATURES` ioctls
//! the forwarder uses (`macsec_forward::io::iface::Offloads`), so tests can check one
//! against the other. Features go by the kernel's names (`rx-gro`,
//! `tx-tcp-segmentation`, ...), never by index.

use super::error::Result;
use super::netns;
use super::nl::Netlink;
use netlink_packet_core::{NlasIterator, NLA_F_NESTED, NLM_F_ACK};
use netlink_sys::protocols::NETLINK_GENERIC;
use std::collections::BTreeSet;
use std::io;

/// The generic netlink controller (`GENL_ID_CTRL`, `CTRL_CMD_GETFAMILY`, `CTRL_ATTR_*`).
mod ctrl {
    pub const ID: u16 = 0x10;
    pub const GET_FAMILY: u8 = 3;
    pub const FAMILY_ID: u16 = 1;
    pub const FAMILY_NAME: u16 = 2;
}

/// `ETHTOOL_MSG_FEATURES_GET` and `_SET`.
const FEATURES_GET: u8 = 11;
const FEATURES_SET: u8 = 12;

/// The attributes of both (`ETHTOOL_A_FEATURES_*`).
mod features {
    pub const HEADER: u16 = 1;
    pub const HW: u16 = 2;
    pub const WANTED: u16 = 3;
    pub const ACTIVE: u16 = 4;
    pub const NOCHANGE: u16 = 5;
}

/// The request header (`ETHTOOL_A_HEADER_*`, `ETHTOOL_FLAG_OMIT_REPLY`).
mod hdr {
    pub const DEV_NAME: u16 = 2;
    pub const FLAGS: u16 = 3;
    pub const OMIT_REPLY: u32 = 1 << 1;
}

/// Bitsets (`ETHTOOL_A_BITSET_*`).
mod bitset {
    pub const NOMASK: u16 = 1;
    pub const BITS: u16 = 3;
}

/// The bits of a bitset (`ETHTOOL_A_BITSET_BITS_BIT`, `ETHTOOL_A_BITSET_BIT_*`).
mod bit {
    pub const ITSELF: u16 = 1;
    pub const NAME: u16 = 2;
    pub const VALUE: u16 = 3;
}

/// The feature sets of one interface (`ethtool -k`), by kernel name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// What the driver lets user space change (the others show as `[fixed]`).
    pub hw: BTreeSet<String>,
    /// What user space asked for.
    pub wanted: BTreeSet<String>,
    /// What is on.
    pub active: BTreeSet<String>,
    /// What can never change.
    pub nochange: BTreeSet<String>,
}

impl Features {
    /// Whether feature `name` is on.
    pub fn is_on(&self, name: &str) -> bool {
        self.active.contains(name)
    }
}

/// One netlink attribute, padded to 4 octets.
fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut v = Vec::with_capacity(len + 3);
    v.extend_from_slice(&(len as u16).to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(value);
    v.resize((len + 3) & !3, 0);
    v
}

fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
    attr(kind | NLA_F_NESTED, &parts.concat())
}

fn strz(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A generic netlink message: command, version 1, then the attributes.
fn genl(cmd: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![cmd, 1, 0, 0];
    v.extend(attrs.concat());
    v
}

/// The attributes of a generic netlink answer (after its 4-octet header).
fn answer_attrs(body: &[u8]) -> io::Result<&[u8]> {
    body.get(4..)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short genetlink message"))
}

fn family_id(nl: &mut Netlink) -> io::Result<u16> {
    let req = genl(
        ctrl::GET_FAMILY,
        &[attr(ctrl::FAMILY_NAME, &strz("ethtool"))],
    );
    for (_, body) in nl.exchange(ctrl::ID, NLM_F_ACK, &req)? {
        for a in NlasIterator::new(answer_attrs(&body)?).map_while(|a| a.ok()) {
            if let (ctrl::FAMILY_ID, [a, b, ..]) = (a.kind(), a.value()) {
                return Ok(u16::from_ne_bytes([*a, *b]));
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "no ethtool netlink family (kernel older than 5.6?)",
    ))
}

/// The names of the bits set in a verbose bitset: a list (`NOMASK`) names just those;
/// a value/mask pair names every bit of the mask and flags those set.
fn bit_names(bitset: &[u8]) -> BTreeSet<String> {
    let only_flagged = !NlasIterator::new(bitset)
        .map_while(|a| a.ok())
        .any(|a| a.kind() == bitset::NOMASK);
    let mut out = BTreeSet::new();
    let bits = NlasIterator::new(bitset)
        .map_while(|a| a.ok())
        .filter(|a| a.kind() == bitset::BITS);
    for list in bits {
        for bit in NlasIterator::new(list.value()).map_while(|a| a.ok()) {
            if bit.kind() != bit::ITSELF {
                continue;
            }
            let (mut name, mut set) = (None, false);
            for f in NlasIterator::new(bit.value()).map_while(|a| a.ok()) {
                match f.kind() {
                    bit::NAME => {
                        name = Some(
                            String::from_utf8_lossy(f.value())
                                .trim_end_matches('\0')
                                .to_owned(),
                        )
                    }
                    bit::VALUE => set = true,
                    _ => {}
                }
            }
            if let Some(n) = name.filter(|_| set || !only_flagged) {
                out.insert(n);
            }
        }
    }
    out
}

fn header(dev: &str, flags: u32) -> Vec<u8> {
    let mut parts = vec![attr(hdr::DEV_NAME, &strz(dev))];
    if flags != 0 {
        parts.push(attr(hdr::FLAGS, &flags.to_ne_bytes()));
    }
    nested(features::HEADER, &parts)
}

/// The features of interface `dev` in `ns` (`ethtool -k DEV`).
pub fn features(ns: &str, dev: &str) -> Result<Features> {
    netns::run_io(ns, &format!("ethtool {dev}: FEATURES_GET"), || {
        let mut nl = Netlink::open(NETLINK_GENERIC)?;
        let family = family_id(&mut nl)?;
        let req = genl(FEATURES_GET, &[header(dev, 0)]);
        let mut f = Features::default();
        for (_, body) in nl.exchange(family, NLM_F_ACK, &req)? {
            for a in NlasIterator::new(answer_attrs(&body)?).map_while(|a| a.ok()) {
                // HW comes as value and mask (all features), the others as lists.
                let set = match a.kind() {
                    features::HW => &mut f.hw,
                    features::WANTED => &mut f.wanted,
                    features::ACTIVE => &mut f.active,
                    features::NOCHANGE => &mut f.nochange,
                    _ => continue,
                };
                *set = bit_names(a.value());
            }
        }
        Ok(f)
    })
}

/// Turns the named features of `dev` in `ns` on (`true`) or off (`ethtool -K DEV NAME
/// on|off ...`, by kernel name). The kernel refuses names it does not know; a feature
/// whose dependency is off may stay off: read back with [`features`].
pub fn set_features(ns: &str, dev: &str, changes: &[(&str, bool)]) -> Result<()> {
    let list: Vec<String> = changes
        .iter()
        .map(|(n, on)| format!("{n} {}", if *on { "on" } else { "off" }))
        .collect();
    netns::run_io(
        ns,
        &format!("ethtool {dev} {}: FEATURES_SET", list.join(" ")),
        || {
            let mut nl = Netlink::open(NETLINK_GENERIC)?;
            let family = family_id(&mut nl)?;
            // A verbose bitset with a mask: the bits named change, to 1 where the value
            // flag is given.
            let bits: Vec<Vec<u8>> = changes
                .iter()
                .map(|(name, on)| {
                    let mut b = vec![attr(bit::NAME, &strz(name))];
                    if *on {
                        b.push(attr(bit::VALUE, &[]));
                    }
                    nested(bit::ITSELF, &b)
                })
                .collect();
            let wanted = nested(features::WANTED, &[nested(bitset::BITS, &bits)]);
            let req = genl(FEATURES_SET, &[header(dev, hdr::OMIT_REPLY), wanted]);
            nl.exchange(family, NLM_F_ACK, &req).map(drop)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested() {
        assert_eq!(attr(2, &strz("lo")), vec![7, 0, 2, 0, b'l', b'o', 0, 0]);
        let n = nested(1, &[attr(3, &[])]);
        assert_eq!(n, vec![8, 0, 1, 0x80, 4, 0, 3, 0]);
        let bits = nested(
            bitset::BITS,
            &[
                nested(
                    bit::ITSELF,
                    &[attr(bit::NAME, &strz("rx-gro")), attr(bit::VALUE, &[])],
                ),
                nested(bit::ITSELF, &[attr(bit::NAME, &strz("rx-lro"))]),
            ],
        );
        // Value and mask (as the kernel sends HW): the flagged bits are the set ones.
        assert_eq!(bit_names(&bits).into_iter().collect::<Vec<_>>(), ["rx-gro"]);
        // A list: every bit named is set.
        let list = [attr(bitset::NOMASK, &[]), bits].concat();
        assert_eq!(
            bit_names(&list).into_iter().collect::<Vec<_>>(),
            ["rx-gro", "rx-lro"]
        );
    }
}

//! Ethernet and 802.1Q constants and helpers.

/// Length of DA ‖ SA.
pub const ADDRS_LEN: usize = 12;
/// Length of an Ethernet header without tags (DA ‖ SA ‖ EtherType).
pub const HEADER_LEN: usize = 14;
/// Length of one 802.1Q / 802.1ad tag (TPID ‖ TCI).
pub const VLAN_TAG_LEN: usize = 4;
/// Smallest Ethernet frame without FCS (64 octets on the wire less the 4-octet FCS).
pub const MIN_FRAME_LEN: usize = 60;

/// EtherType values used here.
pub mod ethertype {
    /// IEEE 802.1AE MACsec.
    pub const MACSEC: u16 = 0x88E5;
    /// IEEE 802.1X EAPOL (carries MKPDUs).
    pub const EAPOL: u16 = 0x888E;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag.
    pub const QINQ: u16 = 0x88A8;
    /// Pre-standard QinQ tag some switches still use.
    pub const QINQ_OLD: u16 = 0x9100;
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
    /// ARP.
    pub const ARP: u16 = 0x0806;
}

/// Whether `t` is a VLAN tag protocol identifier (802.1Q, 802.1ad or 0x9100).
#[inline]
pub fn is_vlan_tpid(t: u16) -> bool {
    matches!(t, ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD)
}

/// Reads the big-endian u16 at `off`, if present.
#[inline]
pub fn be16(frame: &[u8], off: usize) -> Option<u16> {
    let b = frame.get(off..off + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Counts the VLAN tags directly after DA ‖ SA, at most `max`, and returns the
/// offset of the EtherType that follows them, or `None` if the frame is too short.
#[inline]
pub fn skip_vlan_tags(frame: &[u8], max: usize) -> Option<(usize, usize)> {
    let mut off = ADDRS_LEN;
    let mut n = 0;
    loop {
        let t = be16(frame, off)?;
        if n < max && is_vlan_tpid(t) {
            off += VLAN_TAG_LEN;
            n += 1;
        } else {
            return Some((n, off));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_tags() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xA8, 0, 4, 0x81, 0, 0, 2, 0x88, 0xE5]);
        assert_eq!(skip_vlan_tags(&f, 2), Some((2, 20)));
        assert_eq!(skip_vlan_tags(&f, 1), Some((1, 16)));
        assert_eq!(skip_vlan_tags(&f, 0), Some((0, 12)));
        assert_eq!(skip_vlan_tags(&f[..13], 2), None);
        assert_eq!(skip_vlan_tags(&f[..18], 2), None);
    }
}

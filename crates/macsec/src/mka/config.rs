//! Configuration of one MKA participant (one CA with a pre-shared CAK).

use super::crypto::{ssci_by_descending_sci, SakGeneration, SsciFn};
use super::pdu::MKA_VERSION;
use super::types::{Capability, Ckn, ConfidentialityOffset};
use crate::crypto::keys::SecretKey;
use crate::crypto::suite::CipherSuite;
use crate::wire::sci::{MacAddr, Sci};
use core::fmt;
use core::time::Duration;

/// MKA Hello Time (802.1X-2010 Table 9-3): 2 s.
pub const HELLO_TIME: Duration = Duration::from_secs(2);
/// MKA Life Time (802.1X-2010 Table 9-3): 6 s.
pub const LIFE_TIME: Duration = Duration::from_secs(6);
/// MKA SAK Retire Time (802.1X-2010 Table 9-3): 3 s.
pub const SAK_RETIRE_TIME: Duration = Duration::from_secs(3);
/// The largest `max_peers`. The biggest MKPDU a participant sends (32-octet CKN, both
/// peer lists, SAK Use, a 52-octet Distributed SAK, XPN set, ICV Indicator and ICV)
/// carries 208 + 16 × (number of peers) octets after the Ethernet header: 1488 for 80
/// peers, within a 1500-octet MTU.
pub const MAX_PEERS: usize = 80;
/// The longest timer value accepted in a [`Config`] (one day).
pub const MAX_TIMER: Duration = Duration::from_secs(86_400);

/// Configuration of one MKA participant.
///
/// Build it with [`Config::new`] and change the public fields. The CAK lives in a
/// [`SecretKey`], so `Config` is neither `Clone` nor printable with the key.
#[non_exhaustive]
pub struct Config {
    /// The pre-shared Connectivity Association Key, 16 or 32 octets.
    pub cak: SecretKey,
    /// The CAK Name, 1 to 32 octets.
    pub ckn: Ckn,
    /// This port's SCI: its MAC address (also the MKPDU source address) and port
    /// number (1 for an end station, as wpa_supplicant's default `macsec_port`).
    pub sci: Sci,
    /// Key Server Priority: lower is preferred (802.1X-2010 9.5.1). Default 0x10.
    /// wpa_supplicant's default is 255; give this side a lower value to make it the
    /// key server deterministically.
    pub key_server_priority: u8,
    /// Whether this participant may become key server (sets the Key Server bit until
    /// an election decides otherwise). Default true.
    pub key_server_capable: bool,
    /// The cipher suite a key server distributes. Default GCM-AES-128.
    pub cipher_suite: CipherSuite,
    /// Cipher suites accepted in a Distributed SAK from another key server.
    /// Default: all four.
    pub accepted_cipher_suites: Vec<CipherSuite>,
    /// The Confidentiality Offset a key server distributes (reduced to what every
    /// member's MACsec Capability allows). Default: offset 0 (code 1), as
    /// wpa_supplicant's default `macsec_integ_only=0`. Do not use offsets 30/50 with
    /// Linux peers: their driver ignores the offset.
    pub confidentiality_offset: ConfidentialityOffset,
    /// MACsec Desired (Basic Parameter Set). Default true.
    pub macsec_desired: bool,
    /// MACsec Capability (Basic Parameter Set). Default 2 (integrity and
    /// confidentiality with offset 0), what wpa_supplicant reports on Linux.
    pub macsec_capability: Capability,
    /// MKA Hello Time. Default 2 s.
    pub hello_time: Duration,
    /// MKA Life Time: a peer that shows no liveness for this long is dropped, and a
    /// key server switches to a new SAK at the latest this long after distributing
    /// it. Default 6 s.
    pub life_time: Duration,
    /// MKA SAK Retire Time: how long the previous SAK stays installed after the
    /// transmit switch. Default 3 s.
    pub sak_retire_time: Duration,
    /// As key server, distribute a fresh SAK this often. Default: off.
    pub rekey_interval: Option<Duration>,
    /// As key server, rekey when a PN of the current SAK passes this percentage of
    /// the PN space (2^32, or 2^64 with XPN). Default 75, which is hostap's
    /// `PENDING_PN_EXHAUSTION` (0xC0000000) for the non-XPN suites.
    pub pn_rekey_percent: u8,
    /// How the key server makes SAKs. Default: the 802.1X KDF.
    pub sak_generation: SakGeneration,
    /// SSCI assignment for the XPN suites. Default [`ssci_by_descending_sci`].
    pub ssci_fn: SsciFn,
    /// Destination address of MKPDUs. Default 01-80-C2-00-00-03: wpa_supplicant 2.10
    /// and 2.11 accept no other. Received MKPDUs are accepted for any group address.
    pub destination: MacAddr,
    /// EtherType of MKPDUs (sent and accepted). Default 0x888E.
    pub ethertype: u16,
    /// MKA Version Identifier to send. Default 1, as wpa_supplicant.
    pub mka_version: u8,
    /// Send an ICV Indicator before the ICV. Default off (wpa_supplicant 2.10/2.11
    /// never send it; some old switches require it).
    pub send_icv_indicator: bool,
    /// Send the XPN parameter set (type 8) while an XPN SAK is in use. Default off:
    /// upstream hostap skips it, and the SONiC fork is said to reject it in MKA
    /// version 1.
    pub send_xpn_parameter_set: bool,
    /// The most peers (live and potential) kept; MKPDUs from further new MIs are
    /// dropped. Default 64, at most [`MAX_PEERS`] so that every MKPDU fits a
    /// 1500-octet MTU.
    pub max_peers: usize,
    /// As key server, distribute a fresh SAK when a live peer is lost too (not only
    /// when one joins), so a departed member's SAK is not kept (802.1X-2010 9.8).
    /// Default on.
    pub rekey_on_peer_loss: bool,
}

/// A [`Config`] value that cannot work. Names the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `hello_time` is zero or above one day.
    #[error("hello_time must be between 1 ms and 1 day")]
    HelloTime,
    /// `life_time` is not longer than `hello_time`, or above one day.
    #[error("life_time must be longer than hello_time and at most 1 day")]
    LifeTime,
    /// `sak_retire_time` is above one day.
    #[error("sak_retire_time must be at most 1 day")]
    RetireTime,
    /// `rekey_interval` is shorter than `life_time` or above one day.
    #[error("rekey_interval must be at least life_time and at most 1 day")]
    RekeyInterval,
    /// `pn_rekey_percent` is not 1..=99.
    #[error("pn_rekey_percent must be 1..=99")]
    PnRekeyPercent,
    /// The configured `cipher_suite` is not among `accepted_cipher_suites`.
    #[error("cipher_suite must be one of accepted_cipher_suites")]
    CipherSuite,
    /// `destination` is not a group (multicast) address.
    #[error("destination must be a group (multicast) MAC address such as 01:80:c2:00:00:03")]
    Destination,
    /// `sci` has a group MAC address.
    #[error("sci must contain the port's individual (unicast) MAC address")]
    Sci,
    /// `max_peers` is zero or above [`MAX_PEERS`].
    #[error("max_peers must be 1..=80 (an MKPDU must fit a 1500-octet MTU)")]
    MaxPeers,
}

impl Config {
    /// A configuration with the defaults documented on each field.
    pub fn new(cak: SecretKey, ckn: Ckn, sci: Sci) -> Config {
        Config {
            cak,
            ckn,
            sci,
            key_server_priority: 0x10,
            key_server_capable: true,
            cipher_suite: CipherSuite::GcmAes128,
            accepted_cipher_suites: CipherSuite::ALL.to_vec(),
            confidentiality_offset: ConfidentialityOffset::Offset0,
            macsec_desired: true,
            macsec_capability: Capability::Confidentiality,
            hello_time: HELLO_TIME,
            life_time: LIFE_TIME,
            sak_retire_time: SAK_RETIRE_TIME,
            rekey_interval: None,
            pn_rekey_percent: 75,
            sak_generation: SakGeneration::Kdf,
            ssci_fn: ssci_by_descending_sci,
            destination: MacAddr::PAE_GROUP,
            ethertype: crate::wire::ethernet::ethertype::EAPOL,
            mka_version: MKA_VERSION,
            send_icv_indicator: false,
            send_xpn_parameter_set: false,
            max_peers: 64,
            rekey_on_peer_loss: true,
        }
    }

    /// Checks the values against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.hello_time.is_zero() || self.hello_time > MAX_TIMER {
            return Err(ConfigError::HelloTime);
        }
        if self.life_time <= self.hello_time || self.life_time > MAX_TIMER {
            return Err(ConfigError::LifeTime);
        }
        if self.sak_retire_time > MAX_TIMER {
            return Err(ConfigError::RetireTime);
        }
        if let Some(i) = self.rekey_interval {
            if i < self.life_time || i > MAX_TIMER {
                return Err(ConfigError::RekeyInterval);
            }
        }
        if !(1..=99).contains(&self.pn_rekey_percent) {
            return Err(ConfigError::PnRekeyPercent);
        }
        if !self.accepted_cipher_suites.contains(&self.cipher_suite) {
            return Err(ConfigError::CipherSuite);
        }
        if !self.destination.is_multicast() {
            return Err(ConfigError::Destination);
        }
        if self.sci.mac().is_multicast() {
            return Err(ConfigError::Sci);
        }
        if self.max_peers == 0 || self.max_peers > MAX_PEERS {
            return Err(ConfigError::MaxPeers);
        }
        Ok(())
    }

    /// The PN above which the key server rekeys for `suite`.
    pub fn pn_rekey_threshold(&self, suite: CipherSuite) -> u64 {
        let space = suite.max_pn() as u128 + 1;
        (space * self.pn_rekey_percent.min(99) as u128 / 100) as u64
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("cak", &self.cak)
            .field("ckn", &self.ckn)
            .field("sci", &self.sci)
            .field("key_server_priority", &self.key_server_priority)
            .field("key_server_capable", &self.key_server_capable)
            .field("cipher_suite", &self.cipher_suite)
            .field("confidentiality_offset", &self.confidentiality_offset)
            .field("macsec_desired", &self.macsec_desired)
            .field("macsec_capability", &self.macsec_capability)
            .field("hello_time", &self.hello_time)
            .field("life_time", &self.life_time)
            .field("sak_retire_time", &self.sak_retire_time)
            .field("rekey_interval", &self.rekey_interval)
            .field("pn_rekey_percent", &self.pn_rekey_percent)
            .field("destination", &self.destination)
            .field("ethertype", &format_args!("{:#06x}", self.ethertype))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::new(
            SecretKey::from_slice(&[1; 16]).unwrap(),
            Ckn::new(&[2; 16]).unwrap(),
            Sci([2, 0, 0, 0, 0, 1, 0, 1]),
        )
    }

    #[test]
    fn defaults_validate_and_debug_hides_the_cak() {
        let c = cfg();
        assert_eq!(c.validate(), Ok(()));
        let s = format!("{c:?}");
        assert!(s.contains("redacted"), "{s}");
        assert!(!s.contains("[1, 1"), "{s}");
        assert_eq!(c.pn_rekey_threshold(CipherSuite::GcmAes128), 0xC000_0000);
        assert_eq!(
            c.pn_rekey_threshold(CipherSuite::GcmAesXpn256),
            0xC000_0000_0000_0000
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut c = cfg();
        c.life_time = c.hello_time;
        assert_eq!(c.validate(), Err(ConfigError::LifeTime));
        let mut c = cfg();
        c.destination = MacAddr([2, 0, 0, 0, 0, 9]);
        assert_eq!(c.validate(), Err(ConfigError::Destination));
        let mut c = cfg();
        c.accepted_cipher_suites = vec![CipherSuite::GcmAes256];
        assert_eq!(c.validate(), Err(ConfigError::CipherSuite));
        let mut c = cfg();
        c.rekey_interval = Some(Duration::from_secs(1));
        assert_eq!(c.validate(), Err(ConfigError::RekeyInterval));
        assert!(ConfigError::PnRekeyPercent
            .to_string()
            .contains("pn_rekey_percent"));
    }
}

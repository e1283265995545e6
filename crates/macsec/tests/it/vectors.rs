//! Every IEEE 802.1AE Annex C frame and every DPDK extra case, byte-exact, in both
//! directions, through both AES-GCM backends.

use crate::util::*;
use macsec::crypto::{Backend, CipherSuite, Salt, SecretKey, Ssci};
use macsec::secy::*;
use macsec::wire::{Sci, TagError};
use serde_json::Value;

pub(crate) struct Setup {
    backend: Backend,
    pub(crate) vlan_in_clear: u8,
    window: u32,
    pub(crate) validate: ValidateFrames,
    /// The receive SA's lowest acceptable PN; `None`: the vector's own PN, as a receiver
    /// that has been following the sender would have (XPN recovery needs it nearby).
    lowest_pn: Option<u64>,
}

impl Setup {
    pub(crate) fn new(backend: Backend) -> Setup {
        Setup {
            backend,
            vlan_in_clear: 0,
            window: 0,
            validate: ValidateFrames::Strict,
            lowest_pn: None,
        }
    }
}

fn cipher(v: &Value) -> CipherSuite {
    v["cipher_suite"].as_str().unwrap().parse().unwrap()
}

fn xpn(v: &Value) -> Option<XpnParams> {
    if !cipher(v).is_xpn() {
        return None;
    }
    let ssci = u32::from_str_radix(v["ssci"].as_str().unwrap(), 16).unwrap();
    let salt: [u8; 12] = hexf(v, "salt").try_into().unwrap();
    Some(XpnParams {
        ssci: Ssci(ssci),
        salt: Salt(salt),
    })
}

/// A SecY configured as the vector's transmitter and receiver.
pub(crate) fn secy_for(v: &Value, s: &Setup) -> SecY {
    let f = &v["tci_flags"];
    let bit = |k: &str| f[k].as_u64() == Some(1);
    let sci: Sci = v["sci"].as_str().unwrap().parse().unwrap();
    // Bad-tag vectors carry flag combinations no SecY may be configured with.
    let flags_ok = !(bit("SC") && (bit("ES") || bit("SCB")));
    let cfg = {
        let mut conf = SecYConfig::default();
        conf.cipher = cipher(v);
        conf.protection = if v["protection"] == "integrity_only" {
            Protection::IntegrityOnly
        } else {
            Protection::Confidentiality(ConfidentialityOffset::Zero)
        };
        conf.validate = s.validate;
        conf.replay_protect = true;
        conf.replay_window = s.window;
        conf.send_sci = bit("SC") || !flags_ok;
        conf.end_station = bit("ES") && flags_ok;
        conf.scb = bit("SCB") && flags_ok;
        conf.vlan_in_clear = s.vlan_in_clear;
        conf.sci = sci;
        conf.backend = s.backend;
        conf
    };
    let mut secy = SecY::new(cfg).unwrap();
    let key = SecretKey::from_slice(&hexf(v, "key_sak")).unwrap();
    let an = v["an"].as_u64().unwrap() as u8;
    // PN 0 appears only in the bad-tag vector that tests it; no SA can start there.
    let pn = v["pn"].as_u64().unwrap().max(1);
    secy.tx.install_sa(an, &key, pn, xpn(v)).unwrap();
    secy.tx.set_encoding_sa(an).unwrap();
    secy.rx.add_sc(sci).unwrap();
    secy.rx
        .install_sa(sci, an, &key, s.lowest_pn.unwrap_or(pn), xpn(v))
        .unwrap();
    secy
}

fn protect(secy: &mut SecY, frame: &[u8]) -> Result<Vec<u8>, TxDrop> {
    let (mut b, r) = framed(frame);
    let out = secy.tx.protect(&mut b, r)?;
    Ok(b[out].to_vec())
}

fn validate(secy: &mut SecY, frame: &[u8]) -> (RxVerdict, Option<Vec<u8>>) {
    let (mut b, r) = framed(frame);
    let (v, out) = secy.rx.validate(&mut b, r);
    (v, out.map(|r| b[r].to_vec()))
}

pub(crate) fn clear_tags(v: &Value) -> u8 {
    (v["clear_tags_before_sectag"].as_str().unwrap_or("").len() / 8) as u8
}

fn check_valid(v: &Value, backend: Backend) {
    let id = v["id"].as_str().unwrap();
    let mut s = Setup::new(backend);
    s.vlan_in_clear = clear_tags(v);
    let plain = hexf(v, "plaintext_frame");
    let prot = hexf(v, "protected_frame");
    let mut secy = secy_for(v, &s);
    let got = protect(&mut secy, &plain).unwrap_or_else(|e| panic!("{id}: {e:?}"));
    assert_eq!(
        hex::encode_upper(&got),
        hex::encode_upper(&prot),
        "{id} seal"
    );
    let (verdict, out) = validate(&mut secy, &prot);
    assert_eq!(verdict, RxVerdict::Ok, "{id} open");
    assert_eq!(out.unwrap(), plain, "{id} plaintext");
    let c = secy.tx.sc_counters();
    let rc = secy.rx.secy_counters();
    let secure_len = (plain.len() - 12 - 4 * s.vlan_in_clear as usize) as u64;
    if v["protection"] == "integrity_only" {
        assert_eq!(
            (c.out_pkts_protected, c.out_octets_protected),
            (1, secure_len)
        );
        assert_eq!(rc.in_octets_validated, secure_len);
    } else {
        assert_eq!(
            (c.out_pkts_encrypted, c.out_octets_encrypted),
            (1, secure_len)
        );
        assert_eq!(rc.in_octets_decrypted, secure_len);
    }
}

#[test]
fn annex_c_all_32_both_directions_both_backends() {
    let vs = load_vectors("macsec_annexc_dpdk.json");
    assert_eq!(vs.len(), 32);
    let mut n = 0;
    for &b in Backend::ALL {
        for v in &vs {
            assert_eq!(v["expect"], "valid");
            check_valid(v, b);
            n += 1;
        }
    }
    assert_eq!(n, 32 * Backend::ALL.len());
    assert!(Backend::ALL.len() >= 2 || cfg!(not(feature = "aws-lc")));
}

pub(crate) fn extra(id: &str) -> Value {
    load_vectors("macsec_dpdk_extra.json")
        .into_iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no vector {id}"))
}

#[test]
fn dpdk_valid_frames_incl_vlan() {
    for &b in Backend::ALL {
        for id in ["dpdk-cipher-0", "dpdk-vlan-1", "dpdk-vlan-2", "dpdk-vlan-3"] {
            check_valid(&extra(id), b);
        }
    }
}

#[test]
fn clear_vlan_tags_are_not_covered_by_the_icv() {
    // Changing a clear tag must not break the ICV; changing the tag's count does.
    let v = extra("dpdk-vlan-2");
    let mut s = Setup::new(Backend::default());
    s.vlan_in_clear = 1;
    let mut prot = hexf(&v, "protected_frame");
    prot[15] ^= 0x07; // VLAN ID of the clear tag
    let mut secy = secy_for(&v, &s);
    let (verdict, out) = validate(&mut secy, &prot);
    assert_eq!(verdict, RxVerdict::Ok);
    let mut plain = hexf(&v, "plaintext_frame");
    plain[15] ^= 0x07;
    assert_eq!(out.unwrap(), plain);
    // Configured for no clear tags, the same frame is untagged.
    let mut secy = secy_for(&v, &Setup::new(Backend::default()));
    assert_eq!(validate(&mut secy, &prot).0, RxVerdict::NoTag);
}

#[test]
fn dpdk_icv_failure_is_not_valid() {
    for &b in Backend::ALL {
        let v = extra("dpdk-err_cipher-0");
        let mut secy = secy_for(&v, &Setup::new(b));
        let (verdict, out) = validate(&mut secy, &hexf(&v, "protected_frame"));
        assert_eq!((verdict, out), (RxVerdict::NotValid, None));
        let sci: Sci = v["sci"].as_str().unwrap().parse().unwrap();
        assert_eq!(secy.rx.sc_counters(sci).unwrap().in_pkts_not_valid, 1);
        assert_eq!(
            secy.rx.sa_state(sci, 0).unwrap().counters.in_pkts_not_valid,
            1
        );
        assert_eq!(secy.rx.sc_counters(sci).unwrap().in_pkts_ok, 0);
    }
}

#[test]
fn dpdk_untagged_frame() {
    let v = extra("dpdk-untagged_cipher-0");
    let f = hexf(&v, "protected_frame");
    let mut secy = secy_for(&v, &Setup::new(Backend::default()));
    assert_eq!(validate(&mut secy, &f), (RxVerdict::NoTag, None));
    assert_eq!(secy.rx.secy_counters().in_pkts_no_tag, 1);
    let mut s = Setup::new(Backend::default());
    s.validate = ValidateFrames::Check;
    let mut secy = secy_for(&v, &s);
    assert_eq!(
        validate(&mut secy, &f),
        (RxVerdict::Untagged, Some(f.clone()))
    );
    assert_eq!(secy.rx.secy_counters().in_pkts_untagged, 1);
}

#[test]
fn dpdk_bad_tags_each_with_its_reason() {
    let cases = [
        ("dpdk-bad_tag-0", TagError::Version),
        ("dpdk-bad_tag-1", TagError::ChangedWithoutEncryption),
        ("dpdk-bad_tag-2", TagError::EndStationWithSci),
        ("dpdk-bad_tag-3", TagError::ScbWithSci),
        ("dpdk-bad_tag-4", TagError::ZeroPn),
        ("dpdk-bad_tag-5", TagError::ReservedShortLenBits),
        ("dpdk-intr_test-0", TagError::Version),
        ("dpdk-intr_test-1", TagError::ChangedWithoutEncryption),
        ("dpdk-intr_test-2", TagError::ShortLenTooLarge),
        ("dpdk-intr_test-3", TagError::EndStationWithSci),
        ("dpdk-intr_test-4", TagError::ScbWithSci),
    ];
    for validate_mode in [
        ValidateFrames::Strict,
        ValidateFrames::Check,
        ValidateFrames::Disabled,
    ] {
        for (id, why) in cases {
            let v = extra(id);
            let mut s = Setup::new(Backend::default());
            s.validate = validate_mode;
            let mut secy = secy_for(&v, &s);
            let got = validate(&mut secy, &hexf(&v, "protected_frame"));
            assert_eq!(got, (RxVerdict::BadTag(why), None), "{id}");
            assert_eq!(secy.rx.secy_counters().in_pkts_bad_tag, 1, "{id}");
        }
    }
}

#[test]
fn dpdk_rekey_an_switch() {
    for (a, b) in [
        ("dpdk-rekey-0", "dpdk-rekey-1"),
        ("dpdk-rekey-2", "dpdk-rekey-3"),
    ] {
        let (va, vb) = (extra(a), extra(b));
        let mut secy = secy_for(&va, &Setup::new(Backend::default()));
        let sci: Sci = va["sci"].as_str().unwrap().parse().unwrap();
        let key_b = SecretKey::from_slice(&hexf(&vb, "key_sak")).unwrap();
        let an_b = vb["an"].as_u64().unwrap() as u8;
        let pn_b = vb["pn"].as_u64().unwrap();
        assert_eq!(
            protect(&mut secy, &hexf(&va, "plaintext_frame")).unwrap(),
            hexf(&va, "protected_frame")
        );
        // Receive SA for the new key first, then switch transmission (802.1X 12.x order).
        secy.rx.install_sa(sci, an_b, &key_b, 1, xpn(&vb)).unwrap();
        secy.tx.install_sa(an_b, &key_b, pn_b, xpn(&vb)).unwrap();
        secy.tx.set_encoding_sa(an_b).unwrap();
        assert_eq!(
            protect(&mut secy, &hexf(&vb, "plaintext_frame")).unwrap(),
            hexf(&vb, "protected_frame"),
            "{b}"
        );
        for v in [&va, &vb] {
            let (verdict, out) = validate(&mut secy, &hexf(v, "protected_frame"));
            assert_eq!(verdict, RxVerdict::Ok);
            assert_eq!(out.unwrap(), hexf(v, "plaintext_frame"));
        }
        assert_eq!(secy.rx.sc_counters(sci).unwrap().in_pkts_ok, 2);
        // The old SA retired: its frames are now NotUsingSA.
        secy.rx.remove_sa(sci, 0).unwrap();
        assert_eq!(
            validate(&mut secy, &hexf(&va, "protected_frame")).0,
            RxVerdict::NotUsingSa
        );
    }
}

#[test]
fn dpdk_anti_replay_groups() {
    for group in [0..4, 4..8] {
        for (window, late) in [(0u32, 2u64), (32, 1)] {
            let vs: Vec<Value> = group
                .clone()
                .map(|i| extra(&format!("dpdk-anti_replay-{i}")))
                .collect();
            let mut s = Setup::new(Backend::default());
            s.window = window;
            s.lowest_pn = Some(1);
            let mut secy = secy_for(&vs[0], &s);
            let sci: Sci = vs[0]["sci"].as_str().unwrap().parse().unwrap();
            let mut verdicts = vec![];
            for v in &vs {
                verdicts.push(validate(&mut secy, &hexf(v, "protected_frame")).0);
            }
            let c = secy.rx.sc_counters(sci).unwrap();
            assert_eq!(c.in_pkts_late, late, "window {window}: {verdicts:?}");
            assert_eq!(c.in_pkts_ok, 4 - late);
            assert_eq!(c.in_pkts_not_valid, 0, "XPN recovery must not misrecover");
        }
    }
}

/// scapy's MACsec test frames are GPL-2.0 test data, so they stay outside the project:
/// when the team's shared vector folder is present, check them from there.
#[test]
fn outside_check_scapy_vectors() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/vectors/macsec_scapy.json");
    let Ok(s) = std::fs::read_to_string(&p) else {
        eprintln!("skipped: {} not present (outside check only)", p.display());
        return;
    };
    let vs: Value = serde_json::from_str(&s).unwrap();
    let mut n = 0;
    for v in vs["vectors"].as_array().unwrap() {
        let prot = hexf(v, "protected_frame");
        let mut secy = secy_for(v, &Setup::new(Backend::default()));
        let (verdict, out) = validate(&mut secy, &prot);
        match v["expect"].as_str().unwrap() {
            "valid" => {
                assert_eq!(verdict, RxVerdict::Ok, "{}", v["id"]);
                assert_eq!(out.unwrap(), hexf(v, "plaintext_frame"));
                n += 1;
            }
            "icv_fail" => {
                assert_eq!(verdict, RxVerdict::NotValid, "{}", v["id"]);
                n += 1;
            }
            other => panic!("unexpected expect {other}"),
        }
    }
    assert!(n >= 14, "checked {n}");
}

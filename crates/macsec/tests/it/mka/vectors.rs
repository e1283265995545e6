//! Published crypto vectors (tests/data/mka) and, when present, the real MKPDUs of the
//! shared vector set (GPL test data, read in place, never copied into the project).

use super::harness::sci;
use macsec::crypto::SecretKey;
use macsec::mka::crypto::{
    aes_cmac, aes_key_unwrap, aes_key_wrap, cak_from_msk, ckn_from_msk, derive_ick, derive_kek,
    derive_sak, unwrap_sak, verify_mkpdu_icv,
};
use macsec::mka::pdu::{decode_frame, set_type, ALGORITHM_AGILITY};
use macsec::mka::{Capability, Ckn, ConfidentialityOffset, Config, Mi, Participant};
use macsec::wire::{MacAddr, Sci};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn load(name: &str) -> Vec<Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mka")
        .join(name);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k}"))
}

#[test]
fn aes_cmac_rfc4493_and_sp800_38b() {
    let vs = load("aes_cmac.json");
    assert_eq!(vs.len(), 8);
    for v in &vs {
        let k = SecretKey::from_hex(s(v, "key")).unwrap();
        let m = h(s(v, "message"));
        assert_eq!(
            aes_cmac(&k, &[&m]).to_vec(),
            h(s(v, "tag")),
            "{}",
            s(v, "id")
        );
    }
}

#[test]
fn aes_key_wrap_rfc3394() {
    let vs = load("aes_key_wrap.json");
    assert_eq!(vs.len(), 6);
    for v in &vs {
        let (kek, data, wrapped) = (h(s(v, "kek")), h(s(v, "key_data")), h(s(v, "wrapped")));
        assert_eq!(
            aes_key_wrap(&kek, &data).unwrap(),
            wrapped,
            "{}",
            s(v, "id")
        );
        assert_eq!(&aes_key_unwrap(&kek, &wrapped).unwrap()[..], &data[..]);
        let mut bad = wrapped.clone();
        bad[3] ^= 0x80;
        assert!(aes_key_unwrap(&kek, &bad).is_err());
    }
}

#[test]
fn kdf_vectors_802_1x() {
    let vs = load("kdf.json");
    assert_eq!(vs.len(), 4);
    for v in &vs {
        let e = &v["expected"];
        let (cak, ckn) = if let Some(msk) = v["msk_first_bytes"].as_str() {
            let msk = h(msk);
            let len = v["cak_length_bits"].as_u64().unwrap() as usize / 8;
            let own: MacAddr = MacAddr(h(s(v, "mac_own")).try_into().unwrap());
            let peer: MacAddr = MacAddr(h(s(v, "mac_peer")).try_into().unwrap());
            let cak = cak_from_msk(&msk, own, peer, len).unwrap();
            let ckn = ckn_from_msk(&msk, &h(s(v, "eap_session_id")), own, peer, len).unwrap();
            assert_eq!(cak.expose_secret(), &h(s(e, "cak"))[..]);
            assert_eq!(ckn.as_bytes(), &h(s(e, "ckn"))[..]);
            // SAK context: nonce (SAK length) ‖ two MIs ‖ KN (big-endian).
            let ctx = h(s(v, "sak_context"));
            let n = len;
            let mis: Vec<Mi> = ctx[n..ctx.len() - 4]
                .chunks(12)
                .map(|c| Mi(c.try_into().unwrap()))
                .collect();
            let kn = u32::from_be_bytes(ctx[ctx.len() - 4..].try_into().unwrap());
            let sak = derive_sak(&cak, &ctx[..n], &mis, kn, len).unwrap();
            assert_eq!(sak.expose_secret(), &h(s(v, "expected_sak"))[..]);
            (cak, ckn)
        } else {
            (
                SecretKey::from_hex(s(v, "cak")).unwrap(),
                Ckn::from_hex(s(v, "ckn")).unwrap(),
            )
        };
        assert_eq!(derive_ick(&cak, &ckn).expose_secret(), &h(s(e, "ick"))[..]);
        assert_eq!(derive_kek(&cak, &ckn).expose_secret(), &h(s(e, "kek"))[..]);
    }
}

/// Where the shared vector set lives: `../shared/vectors` from the crate root (main
/// checkout), or one level further up from a worktree under `wt/`.
fn shared_vectors() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        "../shared/vectors/mka_crypto.json",
        "../../shared/vectors/mka_crypto.json",
    ]
    .iter()
    .map(|p| root.join(p))
    .find(|p| p.is_file())
}

#[test]
fn shared_scapy_mkpdus() {
    let Some(path) = shared_vectors() else {
        println!("skipped: ../shared/vectors not present");
        return;
    };
    let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let caps = d["mkpdu_captures"].as_array().unwrap();
    assert_eq!(
        caps.len(),
        5,
        "expected the 5 scapy MKPDUs in {}",
        path.display()
    );
    let mut unwrapped = 0;
    for v in caps {
        let id = s(v, "id");
        let frame = h(s(v, "frame_for_icv"));
        let cak = SecretKey::from_hex(s(v, "cak")).unwrap();
        let ckn = Ckn::from_hex(s(v, "ckn")).unwrap();
        let ick = derive_ick(&cak, &ckn);
        let kek = derive_kek(&cak, &ckn);
        assert_eq!(ick.expose_secret(), &h(s(v, "ick"))[..], "{id}");
        assert_eq!(kek.expose_secret(), &h(s(v, "kek"))[..], "{id}");

        let dec = decode_frame(&frame).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(
            verify_mkpdu_icv(&ick, dec.icv_covered, &dec.pdu.icv),
            "{id}"
        );
        let p = &dec.pdu;
        let want = &v["decoded"];
        let bp = &want["basic_parameter_set"];
        assert_eq!(p.dst, MacAddr::PAE_GROUP);
        assert_eq!(p.eapol_version, 3);
        assert_eq!(
            p.basic.mka_version as u64,
            bp["mka_version"].as_u64().unwrap()
        );
        assert_eq!(
            p.basic.key_server_priority as u64,
            bp["key_server_priority"].as_u64().unwrap()
        );
        assert_eq!(
            p.basic.key_server as u64,
            bp["key_server"].as_u64().unwrap()
        );
        assert_eq!(
            p.basic.macsec_desired as u64,
            bp["macsec_desired"].as_u64().unwrap()
        );
        assert_eq!(
            p.basic.macsec_capability,
            Capability::from_code(bp["macsec_capability"].as_u64().unwrap() as u8)
        );
        assert_eq!(p.basic.sci, s(bp, "sci").parse::<Sci>().unwrap());
        assert_eq!(p.basic.mi.0.to_vec(), h(s(bp, "actor_mi")));
        assert_eq!(p.basic.mn as u64, bp["actor_mn"].as_u64().unwrap());
        assert_eq!(p.basic.algorithm_agility, ALGORITHM_AGILITY);
        assert_eq!(p.basic.ckn, ckn);
        assert_eq!(p.icv.to_vec(), h(s(want, "icv")));

        for set in want["parameter_sets"].as_array().unwrap() {
            let ty = set["type"].as_u64().unwrap() as u8;
            match ty {
                set_type::LIVE_PEER_LIST | set_type::POTENTIAL_PEER_LIST => {
                    let l = if ty == set_type::LIVE_PEER_LIST {
                        p.live_peers.as_ref()
                    } else {
                        p.potential_peers.as_ref()
                    }
                    .unwrap();
                    let peers = set["peers"].as_array().unwrap();
                    assert_eq!(l.peers.len(), peers.len());
                    for (got, w) in l.peers.iter().zip(peers) {
                        assert_eq!(got.mi.0.to_vec(), h(s(w, "mi")));
                        assert_eq!(got.mn as u64, w["mn"].as_u64().unwrap());
                    }
                }
                set_type::SAK_USE => {
                    let su = p.sak_use.unwrap();
                    let k = su.keys.unwrap();
                    let b = |f: &str| set[f].as_u64().unwrap();
                    assert_eq!(su.latest_an as u64, b("latest_an"));
                    assert_eq!(su.latest_tx as u64, b("latest_tx"));
                    assert_eq!(su.latest_rx as u64, b("latest_rx"));
                    assert_eq!(su.old_an as u64, b("old_an"));
                    assert_eq!(su.old_tx as u64, b("old_tx"));
                    assert_eq!(su.old_rx as u64, b("old_rx"));
                    assert_eq!(su.plain_tx as u64, b("plain_tx"));
                    assert_eq!(su.plain_rx as u64, b("plain_rx"));
                    assert_eq!(su.delay_protect as u64, b("delay_protect"));
                    assert_eq!(k.latest_ki.mi.0.to_vec(), h(s(set, "latest_key_server_mi")));
                    assert_eq!(k.latest_ki.kn as u64, b("latest_kn"));
                    assert_eq!(k.latest_lpn as u64, b("latest_lowest_acceptable_pn"));
                    assert_eq!(k.old_ki.mi.0.to_vec(), h(s(set, "old_key_server_mi")));
                    assert_eq!(k.old_ki.kn as u64, b("old_kn"));
                    assert_eq!(k.old_lpn as u64, b("old_lowest_acceptable_pn"));
                }
                set_type::DISTRIBUTED_SAK => {
                    let ds = p.distributed_sak.unwrap();
                    let k = ds.key.unwrap();
                    assert_eq!(ds.an as u64, set["distributed_an"].as_u64().unwrap());
                    assert_eq!(
                        ds.confidentiality_offset,
                        ConfidentialityOffset::from_code(
                            set["confidentiality_offset_code"].as_u64().unwrap() as u8
                        )
                    );
                    assert_eq!(k.kn as u64, set["key_number"].as_u64().unwrap());
                    assert_eq!(k.cipher_suite_id, None, "28-octet form");
                    assert_eq!(k.wrapped.as_bytes(), &h(s(set, "aes_key_wrap_of_sak"))[..]);
                    let sak = unwrap_sak(&kek, k.wrapped.as_bytes()).unwrap();
                    assert_eq!(sak.expose_secret(), &h(s(v, "unwrapped_sak"))[..]);
                    unwrapped += 1;
                }
                set_type::ICV_INDICATOR => assert!(p.icv_indicator),
                other => panic!("{id}: unexpected set type {other} in the vector"),
            }
        }

        // Re-encoding gives the same MKPDU; when the capture has its sets in the
        // order we send them, the very same octets, ICV included.
        let again = p.encode(&ick).unwrap();
        let re = decode_frame(&again).unwrap();
        assert_eq!(&re.pdu.basic, &p.basic);
        assert_eq!(re.pdu.live_peers, p.live_peers);
        assert_eq!(re.pdu.sak_use, p.sak_use);
        assert_eq!(re.pdu.distributed_sak, p.distributed_sak);
        let types: Vec<u64> = want["parameter_sets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["type"].as_u64().unwrap())
            .collect();
        if types.windows(2).all(|w| w[0] < w[1]) {
            assert_eq!(again, frame, "{id}: re-encode");
        }

        // A participant of this CA accepts it (ICV, CKN, agility, DA all check out).
        let mut cfg = Config::new(cak.duplicate(), ckn, sci(0x77));
        cfg.key_server_priority = 0x80;
        let mut part = Participant::new(cfg, Instant::now()).unwrap();
        assert_eq!(part.handle_mkpdu(Instant::now(), &frame), Ok(()), "{id}");
        assert_eq!(part.status().potential_peers.len(), 1);
        // Ethernet padding after the EAPOL body is ignored.
        let mut padded = frame.clone();
        padded.extend_from_slice(&[0; 30]);
        let dec2 = decode_frame(&padded).unwrap();
        assert_eq!(dec2.icv_covered.len(), frame.len() - 16);
    }
    assert_eq!(unwrapped, 1);
}

//! End-to-end tests of `macsec pcap` on files.

use macsec_testkit::vectors::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_macsec");

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("macsec-it-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a classic little-endian microsecond pcap of Ethernet frames.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&262_144u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        b.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        b.extend_from_slice(&(i as u32 * 10).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(f);
    }
    std::fs::write(path, b).unwrap();
}

/// Reads the frames of a classic pcap (either resolution, little-endian).
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
    assert!(
        magic == 0xA1B2_C3D4 || magic == 0xA1B2_3C4D,
        "magic {magic:x}"
    );
    assert_eq!(
        u32::from_le_bytes(b[20..24].try_into().unwrap()),
        1,
        "linktype"
    );
    let mut off = 24;
    let mut out = Vec::new();
    while off < b.len() {
        let incl = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
        out.push(b[off + 16..off + 16 + incl].to_vec());
        off += 16 + incl;
    }
    out
}

/// Writes a configuration owner-only, as one holding keys inline must be.
pub fn write_config(path: &Path, text: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run macsec")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x02]);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x01]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    f
}

fn config(cipher: &str, encrypt: bool, offset: u32, extra_sa: &str) -> String {
    let (k, xpn_tx, xpn_rx) = if cipher.contains("256") {
        (
            "E3C08A8F06C6E3AD95A70557B23F75483CE33021A9C72B7025666204C69C0B72",
            "",
            "",
        )
    } else {
        ("AD7A2BD03EAC835A6F620FDCB506B345", "", "")
    };
    let (xpn_tx, xpn_rx) = if cipher.contains("xpn") {
        (
            "ssci = \"7A30C118\"\nsalt = \"E630E81A48DE86A21C66FA6D\"\n",
            "ssci = \"7A30C118\"\nsalt = \"E630E81A48DE86A21C66FA6D\"\n",
        )
    } else {
        (xpn_tx, xpn_rx)
    };
    format!(
        r#"[secy]
cipher = "{cipher}"
encrypt = {encrypt}
confidentiality_offset = {offset}
sci = "5254001234010001"
replay_window = 0
[secy.tx]
encoding_sa = 0
[[secy.tx.sa]]
an = 0
key = "{k}"
pn = 1
{xpn_tx}{extra_sa}
[[secy.rx]]
sci = "5254001234010001"
[[secy.rx.sa]]
an = 0
key = "{k}"
pn = 1
{xpn_rx}"#
    )
}

#[test]
fn round_trip_every_suite_and_mode_with_jumbo_frames() {
    let d = TempDir::new("rt");
    let frames: Vec<Vec<u8>> = [60usize, 61, 100, 1514, 9014, 9216]
        .iter()
        .enumerate()
        .map(|(i, &n)| frame(n, i as u8))
        .collect();
    write_pcap(&d.path("in.pcap"), &frames);
    for cipher in [
        "gcm-aes-128",
        "gcm-aes-256",
        "gcm-aes-xpn-128",
        "gcm-aes-xpn-256",
    ] {
        for (encrypt, offset) in [(true, 0), (true, 30), (true, 50), (false, 0)] {
            write_config(&d.path("c.toml"), config(cipher, encrypt, offset, ""));
            let c = d.path("c.toml");
            let o = run(&[
                "pcap",
                "encrypt",
                "--config",
                c.to_str().unwrap(),
                d.path("in.pcap").to_str().unwrap(),
                d.path("enc.pcap").to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let j = json(&o);
            let key = if encrypt {
                "OutPktsEncrypted"
            } else {
                "OutPktsProtected"
            };
            assert_eq!(
                j["counters"]["tx_sc"][key],
                frames.len() as u64,
                "{cipher} {encrypt}"
            );
            let enc = read_pcap(&d.path("enc.pcap"));
            assert_eq!(enc.len(), frames.len());
            for (p, e) in frames.iter().zip(&enc) {
                assert_eq!(e.len(), p.len() + 32);
                assert_eq!(&e[12..14], &[0x88, 0xE5]);
                if encrypt && (offset as usize) < p.len() - 12 && offset == 0 {
                    assert_ne!(&e[28..e.len() - 16], &p[12..], "payload must be encrypted");
                } else {
                    // Integrity only, or the offset's octets, stay in clear.
                    let clear = if encrypt {
                        (offset as usize).min(p.len() - 12)
                    } else {
                        p.len() - 12
                    };
                    assert_eq!(&e[28..28 + clear], &p[12..12 + clear]);
                }
            }
            let o = run(&[
                "pcap",
                "decrypt",
                "--config",
                c.to_str().unwrap(),
                d.path("enc.pcap").to_str().unwrap(),
                d.path("dec.pcap").to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let j = json(&o);
            assert_eq!(j["counters"]["rx_sc"][0]["InPktsOK"], frames.len() as u64);
            assert_eq!(
                read_pcap(&d.path("dec.pcap")),
                frames,
                "{cipher} {encrypt} {offset}"
            );
        }
    }
}

#[test]
fn encrypt_reproduces_annex_c_frames_and_decrypt_counts_failures() {
    let d = TempDir::new("annexc");
    for v in load_vectors("macsec_annexc_dpdk.json") {
        let cipher = v["cipher_suite"].as_str().unwrap().to_lowercase();
        let f = &v["tci_flags"];
        let es = f["ES"] == 1;
        let xpn = if cipher.contains("xpn") {
            format!(
                "ssci = \"{}\"\nsalt = \"{}\"\n",
                v["ssci"].as_str().unwrap(),
                v["salt"].as_str().unwrap()
            )
        } else {
            String::new()
        };
        let pn = v["pn"].as_u64().unwrap();
        let cfg = format!(
            "[secy]\ncipher = \"{cipher}\"\nencrypt = {}\nsend_sci = {}\nend_station = {es}\nsci = \"{}\"\n\
             [[secy.tx.sa]]\nan = {}\nkey = \"{}\"\npn = \"{pn}\"\n{xpn}\
             [[secy.rx]]\nsci = \"{}\"\n[[secy.rx.sa]]\nan = {}\nkey = \"{}\"\npn = \"{pn}\"\n{xpn}\
             [secy.tx]\nencoding_sa = {}\n",
            v["protection"] == "confidentiality",
            f["SC"] == 1,
            v["sci"].as_str().unwrap(),
            v["an"],
            v["key_sak"].as_str().unwrap(),
            v["sci"].as_str().unwrap(),
            v["an"],
            v["key_sak"].as_str().unwrap(),
            v["an"],
        );
        write_config(&d.path("c.toml"), cfg);
        let c = d.path("c.toml");
        write_pcap(&d.path("p.pcap"), &[hexf(&v, "plaintext_frame")]);
        let o = run(&[
            "pcap",
            "encrypt",
            "--config",
            c.to_str().unwrap(),
            d.path("p.pcap").to_str().unwrap(),
            d.path("e.pcap").to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "{}: {}",
            v["id"],
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            read_pcap(&d.path("e.pcap")),
            vec![hexf(&v, "protected_frame")],
            "{}",
            v["id"]
        );
        // A corrupted copy and a replay after the good frame: one OK, one NotValid, one Late.
        let good = hexf(&v, "protected_frame");
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 20] ^= 0x01;
        write_pcap(&d.path("e.pcap"), &[bad, good.clone(), good]);
        let o = run(&[
            "pcap",
            "decrypt",
            "--config",
            c.to_str().unwrap(),
            d.path("e.pcap").to_str().unwrap(),
            d.path("d.pcap").to_str().unwrap(),
        ]);
        assert!(o.status.success());
        let j = json(&o);
        let sc = &j["counters"]["rx_sc"][0];
        assert_eq!(
            (
                sc["InPktsOK"].as_u64(),
                sc["InPktsNotValid"].as_u64(),
                sc["InPktsLate"].as_u64()
            ),
            (Some(1), Some(1), Some(1)),
            "{}",
            v["id"]
        );
        assert_eq!(
            read_pcap(&d.path("d.pcap")),
            vec![hexf(&v, "plaintext_frame")]
        );
    }
}

#[test]
fn counters_json_has_every_802_1ae_name() {
    let d = TempDir::new("names");
    write_config(&d.path("c.toml"), config("gcm-aes-128", true, 0, ""));
    write_pcap(&d.path("in.pcap"), &[frame(100, 1)]);
    let o = run(&[
        "pcap",
        "encrypt",
        "--config",
        d.path("c.toml").to_str().unwrap(),
        d.path("in.pcap").to_str().unwrap(),
        d.path("o.pcap").to_str().unwrap(),
    ]);
    let text = String::from_utf8(o.stdout).unwrap();
    for name in [
        "InPktsOK",
        "InPktsInvalid",
        "InPktsNotValid",
        "InPktsLate",
        "InPktsDelayed",
        "InPktsUnchecked",
        "InPktsNoSA",
        "InPktsNoSAError",
        "InPktsUntagged",
        "InPktsNoTag",
        "InPktsBadTag",
        "InPktsUnknownSCI",
        "InPktsOverrun",
        "InPktsNotUsingSA",
        "InPktsUnusedSA",
        "OutPktsProtected",
        "OutPktsEncrypted",
        "OutPktsUntagged",
        "OutPktsTooLong",
        "InOctetsValidated",
        "InOctetsDecrypted",
        "OutOctetsProtected",
        "OutOctetsEncrypted",
    ] {
        assert!(text.contains(&format!("\"{name}\":")), "missing {name}");
    }
}

fn expect_config_error(d: &TempDir, cfg: &str, field: &str) {
    write_config(&d.path("c.toml"), cfg);
    write_pcap(&d.path("in.pcap"), &[frame(100, 1)]);
    let o = run(&[
        "pcap",
        "encrypt",
        "--config",
        d.path("c.toml").to_str().unwrap(),
        d.path("in.pcap").to_str().unwrap(),
        d.path("o.pcap").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{field}: {err}");
    assert!(err.contains(field), "expected {field} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("AD7A2BD0"), "key leaked: {err}");
}

#[test]
fn bad_configs_exit_2_naming_the_field() {
    let d = TempDir::new("badcfg");
    let good = config("gcm-aes-128", true, 0, "");
    expect_config_error(
        &d,
        &good.replace("gcm-aes-128", "gcm-aes-512"),
        "secy.cipher",
    );
    expect_config_error(
        &d,
        &good.replace("confidentiality_offset = 0", "confidentiality_offset = 7"),
        "secy.confidentiality_offset",
    );
    expect_config_error(
        &d,
        &good.replace("pn = 1\n\n[[secy.rx]]", "pn = 4294967296\n\n[[secy.rx]]"),
        "secy.tx.sa[0].pn",
    );
    expect_config_error(
        &d,
        &good.replacen(
            "AD7A2BD03EAC835A6F620FDCB506B345",
            "AD7A2BD03EAC835A6F620FDCB506B3",
            1,
        ),
        "secy.tx.sa[0].key",
    );
    expect_config_error(
        &d,
        &good.replace(
            "sci = \"5254001234010001\"\nreplay",
            "sci = \"xyz\"\nreplay",
        ),
        "secy.sci",
    );
    expect_config_error(
        &d,
        &good
            .replace("validate", "x")
            .replace("replay_window = 0", "replay_window = -1"),
        "secy.replay_window",
    );
    expect_config_error(
        &d,
        &good.replace("[[secy.rx]]", "[[secy.rx]]\nfoo = 1"),
        "secy.rx[0].foo",
    );
    expect_config_error(&d, &format!("{good}\n[mystery]\n"), "mystery");
    expect_config_error(&d, "[secy\n", "line 1");
    let o = run(&[
        "pcap",
        "encrypt",
        "--config",
        "/nonexistent/c.toml",
        "a",
        "b",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/c.toml"));
}

#[test]
fn bad_configs_name_unknown_keys_and_wrong_types() {
    let d = TempDir::new("badcfg2");
    let good = config("gcm-aes-128", true, 0, "");
    let ports = "[ports]\nplian = \"eth1\"\nsecure = \"eth2\"\n";
    expect_config_error(
        &d,
        &format!("{ports}{good}"),
        "ports.plian: unknown key; known keys here: plain, secure",
    );
    expect_config_error(
        &d,
        &good.replace("encoding_sa = 0", "encoding_sa = 0\nsa_count = 1"),
        "secy.tx.sa_count: unknown key; known keys here: encoding_sa, sa",
    );
    expect_config_error(
        &d,
        &good.replace("replay_window = 0", "replay_window = \"0\""),
        "secy.replay_window: expected an integer, got a string",
    );
    // A key of the wrong type: the kind is named, the value (here as an integer) is not.
    expect_config_error(
        &d,
        &good.replacen(
            "key = \"AD7A2BD03EAC835A6F620FDCB506B345\"",
            "key = 0x7A2BD03EAC835A6F",
            1,
        ),
        "secy.tx.sa[0].key: expected a string, got an integer",
    );
    let err = String::from_utf8_lossy(
        &run(&[
            "pcap",
            "encrypt",
            "--config",
            d.path("c.toml").to_str().unwrap(),
            d.path("in.pcap").to_str().unwrap(),
            d.path("o.pcap").to_str().unwrap(),
        ])
        .stderr,
    )
    .into_owned();
    let decimal = 0x7A2B_D03E_AC83_5A6Fu64.to_string();
    assert!(
        !err.contains(&decimal) && !err.to_lowercase().contains("7a2bd03e"),
        "{err}"
    );
}

#[test]
fn readable_configs_with_inline_keys_are_refused_like_key_files() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("cfgmode");
    let c = d.path("c.toml");
    write_config(&c, config("gcm-aes-128", true, 0, ""));
    std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_pcap(&d.path("in.pcap"), &[frame(100, 1)]);
    let encrypt = |extra: &[&str]| {
        let mut args = vec!["pcap", "encrypt", "--config", c.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (i, o) = (d.path("in.pcap"), d.path("o.pcap"));
        args.extend_from_slice(&[i.to_str().unwrap(), o.to_str().unwrap()]);
        run(&args)
    };
    let o = encrypt(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("secy.tx.sa[0].key: config file")
            && err.contains("(mode 644)")
            && err.contains(&format!("chmod 600 {}", c.display()))
            && err.contains("--unsafe-key-permissions"),
        "{err}"
    );
    assert!(!err.contains("AD7A2BD0"), "key leaked: {err}");
    let o = encrypt(&["--unsafe-key-permissions"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(encrypt(&[]).status.success());
}

#[test]
fn bad_capture_files_give_clear_errors() {
    let d = TempDir::new("badpcap");
    write_config(&d.path("c.toml"), config("gcm-aes-128", true, 0, ""));
    let c = d.path("c.toml");
    std::fs::write(d.path("junk.pcap"), b"this is not a capture file").unwrap();
    let o = run(&[
        "pcap",
        "encrypt",
        "--config",
        c.to_str().unwrap(),
        d.path("junk.pcap").to_str().unwrap(),
        d.path("o.pcap").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a pcap or pcapng"));
    // A record in the middle longer than the snap length of the file header. (A record
    // cut by the end of the file is a warning: see `a_cut_last_record_is_a_warning`.)
    write_pcap(
        &d.path("long.pcap"),
        &[frame(100, 1), frame(200, 2), frame(60, 3)],
    );
    let mut b = std::fs::read(d.path("long.pcap")).unwrap();
    b[16..20].copy_from_slice(&150u32.to_le_bytes());
    std::fs::write(d.path("long.pcap"), b).unwrap();
    let o = run(&[
        "pcap",
        "encrypt",
        "--config",
        c.to_str().unwrap(),
        d.path("long.pcap").to_str().unwrap(),
        d.path("o.pcap").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "long.pcap: record 2 (at offset 140) is malformed: captured length 200 is above \
             the snap length 150 of the file header"
        ),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    let o = run(&[
        "pcap",
        "decrypt",
        "--config",
        c.to_str().unwrap(),
        "/nonexistent.pcap",
        d.path("o.pcap").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.pcap"));
    // A `tcpdump -i any` capture (LINUX_SLL, 113): no destination MAC, and the tool says
    // where to capture instead.
    write_pcap(&d.path("any.pcap"), &[frame(100, 1)]);
    let mut b = std::fs::read(d.path("any.pcap")).unwrap();
    b[20..24].copy_from_slice(&113u32.to_le_bytes());
    std::fs::write(d.path("any.pcap"), b).unwrap();
    let o = pcap_in(&d, "decrypt", &c, "any.pcap", "o.pcap");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("LINUX_SLL is not Ethernet"), "{err}");
    assert!(err.contains("tcpdump -i IFACE"), "{err}");
}

#[test]
fn pn_exhaustion_stops_transmission() {
    let d = TempDir::new("exhaust");
    let cfg = config("gcm-aes-128", true, 0, "")
        .replace("pn = 1\n\n[[secy.rx]]", "pn = 4294967294\n\n[[secy.rx]]");
    write_config(&d.path("c.toml"), cfg);
    write_pcap(
        &d.path("in.pcap"),
        &(0..5).map(|i| frame(80, i)).collect::<Vec<_>>(),
    );
    let o = run(&[
        "pcap",
        "encrypt",
        "--config",
        d.path("c.toml").to_str().unwrap(),
        d.path("in.pcap").to_str().unwrap(),
        d.path("o.pcap").to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let j = json(&o);
    assert_eq!(
        j["frames"]["written"], 2,
        "PNs 0xFFFFFFFE and 0xFFFFFFFF only"
    );
    assert_eq!(j["counters"]["secy"]["OutPktsPnExhausted"], 3);
    let out = read_pcap(&d.path("o.pcap"));
    assert_eq!(&out[1][16..20], &[0xFF, 0xFF, 0xFF, 0xFF]);
}

#[test]
fn sample_capture_in_the_readme_works() {
    let d = TempDir::new("sample");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let cfg = format!("{root}/examples/sample.toml");
    // The sample holds published example keys inline and is checked out world-readable,
    // so it needs the override (as the README's commands must show).
    let o = run(&[
        "pcap",
        "encrypt",
        "--config",
        &cfg,
        "--unsafe-key-permissions",
        &format!("{root}/examples/sample.pcap"),
        d.path("e.pcap").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&[
        "pcap",
        "decrypt",
        "--config",
        &cfg,
        "--unsafe-key-permissions",
        d.path("e.pcap").to_str().unwrap(),
        d.path("d.pcap").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        read_pcap(&d.path("d.pcap")),
        read_pcap(Path::new(&format!("{root}/examples/sample.pcap")))
    );
}

/// Runs `macsec pcap OP --config CFG` from `d/input` to `d/output`.
fn pcap_in(d: &TempDir, op: &str, cfg: &Path, input: &str, output: &str) -> Output {
    run(&[
        "pcap",
        op,
        "--config",
        cfg.to_str().unwrap(),
        d.path(input).to_str().unwrap(),
        d.path(output).to_str().unwrap(),
    ])
}

/// The Ethernet FCS of `f`, bit by bit (CRC-32, reflected polynomial 0xEDB88320): an
/// implementation independent of the tool's table-driven one.
fn fcs_bitwise(f: &[u8]) -> [u8; 4] {
    let mut c = !0u32;
    for &b in f {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    (!c).to_le_bytes()
}

/// A little-endian pcapng: one interface (Ethernet, `if_fcslen` = `fcs_len` when given)
/// and one enhanced packet block per frame.
fn write_pcapng(path: &Path, fcs_len: Option<u8>, frames: &[Vec<u8>]) {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (4 - body.len() % 4) % 4, 0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    let mut b = Vec::new();
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut b, 0x0A0D_0D0A, &shb);
    let mut idb = vec![1, 0, 0, 0];
    idb.extend_from_slice(&262_144u32.to_le_bytes());
    if let Some(n) = fcs_len {
        idb.extend_from_slice(&[13, 0, 1, 0, n, 0, 0, 0]); // if_fcslen, padded
        idb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
    }
    block(&mut b, 1, &idb);
    for (i, f) in frames.iter().enumerate() {
        let mut epb = vec![0u8; 4];
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&(i as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(f);
        block(&mut b, 6, &epb);
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn captures_that_keep_the_fcs_are_checked_and_stripped() {
    let d = TempDir::new("fcs");
    let c = d.path("c.toml");
    write_config(&c, config("gcm-aes-128", true, 0, ""));
    let pcap = |op: &str, input: &str, output: &str| {
        let o = pcap_in(&d, op, &c, input, output);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (json(&o), read_pcap(&d.path(output)))
    };
    let plain = vec![frame(60, 1), frame(1514, 2), frame(9014, 3)];
    let with_fcs = |frames: &[Vec<u8>]| -> Vec<Vec<u8>> {
        frames
            .iter()
            .map(|f| [f.as_slice(), &fcs_bitwise(f)].concat())
            .collect()
    };
    let mut damaged = with_fcs(&plain)[1].clone();
    damaged[700] ^= 0x10;
    let mut input = with_fcs(&plain);
    input.insert(1, damaged);

    write_pcap(&d.path("plain.pcap"), &plain);
    let (_, want) = pcap("encrypt", "plain.pcap", "want.pcap");

    // Classic pcap: link type Ethernet with the FCS bits (F = 1, 2 x 16-bit words).
    write_pcap(&d.path("fcs.pcap"), &input);
    let mut b = std::fs::read(d.path("fcs.pcap")).unwrap();
    b[20..24].copy_from_slice(&0x2400_0001u32.to_le_bytes());
    std::fs::write(d.path("fcs.pcap"), b).unwrap();
    // pcapng with if_fcslen = 4.
    write_pcapng(&d.path("fcs.pcapng"), Some(4), &input);
    for (name, out) in [("fcs.pcap", "o1.pcap"), ("fcs.pcapng", "o2.pcap")] {
        let (j, got) = pcap("encrypt", name, out);
        assert_eq!(got, want, "{name}: the FCS must be gone before protection");
        assert_eq!(j["frames"]["bad_fcs"], 1, "{name}: {j}");
        assert_eq!(j["frames"]["written"], 3, "{name}: {j}");
    }

    // The protected frames with an FCS decrypt to the plain frames.
    write_pcapng(&d.path("prot.pcapng"), Some(4), &with_fcs(&want));
    assert_eq!(pcap("decrypt", "prot.pcapng", "back.pcap").1, plain);
    // Without if_fcslen the same octets are taken as frames: the ICV is not where the
    // SecY looks, and nothing is delivered.
    write_pcapng(&d.path("nofcs.pcapng"), None, &with_fcs(&want));
    let (j, _) = pcap("decrypt", "nofcs.pcapng", "none.pcap");
    assert_eq!(j["frames"]["written"], 0);
}

/// A capture of MACsec frames behind a VLAN tag (WAN MACsec, or the kernel's macsec on a
/// VLAN device, captured on the parent) with a config that keeps no tags in clear: the
/// frames are not MACsec to that SecY, and the tool says which setting would read them.
#[test]
fn macsec_behind_vlan_tags_gets_a_hint() {
    let d = TempDir::new("vlanhint");
    let tagged = |f: Vec<u8>| [&f[..12], &[0x81, 0x00, 0x00, 0x64][..], &f[12..]].concat();
    let plain: Vec<Vec<u8>> = (0..3)
        .map(|i| tagged(frame(200 + i * 100, i as u8)))
        .collect();
    write_pcap(&d.path("plain.pcap"), &plain);
    let cfg = |tags: u8| {
        let p = d.path(&format!("c{tags}.toml"));
        let c = config("gcm-aes-128", true, 0, "")
            .replace("[secy]\n", &format!("[secy]\nvlan_in_clear = {tags}\n"));
        write_config(&p, c);
        p
    };
    let pcap = |op: &str, c: &Path, input: &str, output: &str| pcap_in(&d, op, c, input, output);
    let o = pcap("encrypt", &cfg(1), "plain.pcap", "prot.pcap");
    assert!(o.status.success());
    let prot = read_pcap(&d.path("prot.pcap"));
    assert!(prot
        .iter()
        .all(|f| f[12..14] == [0x81, 0x00] && f[16..18] == [0x88, 0xE5]));

    let o = pcap("decrypt", &cfg(0), "prot.pcap", "none.pcap");
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("secy.vlan_in_clear = 1"), "{err}");
    let j = json(&o);
    assert_eq!(j["frames"]["macsec_behind_vlan_tags"], 3, "{j}");
    assert_eq!(j["frames"]["written"], 0);
    assert_eq!(j["counters"]["secy"]["InPktsNoTag"], 3, "{j}");

    let o = pcap("decrypt", &cfg(1), "prot.pcap", "back.pcap");
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(read_pcap(&d.path("back.pcap")), plain);
}

/// One record of a classic pcap: the captured octets and the frame's length on the wire.
type Rec = (Vec<u8>, u32);

/// A classic pcap in either byte order, with micro- or nanosecond timestamps, and any
/// snap length; record `i` is stamped 1_700_000_000 + i seconds and 1000 * i + 7
/// micro- or nanoseconds.
fn classic_pcap(big_endian: bool, nanos: bool, snaplen: u32, records: &[Rec]) -> Vec<u8> {
    let w = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut b = Vec::new();
    b.extend_from_slice(&w(if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }));
    for version in [2u16, 4] {
        b.extend_from_slice(&if big_endian {
            version.to_be_bytes()
        } else {
            version.to_le_bytes()
        });
    }
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&w(snaplen));
    b.extend_from_slice(&w(1));
    for (i, (data, orig)) in records.iter().enumerate() {
        b.extend_from_slice(&w(1_700_000_000 + i as u32));
        b.extend_from_slice(&w(1000 * i as u32 + 7));
        b.extend_from_slice(&w(data.len() as u32));
        b.extend_from_slice(&w(*orig));
        b.extend_from_slice(data);
    }
    b
}

/// A record read back: seconds, fraction, octets.
type Stamped = (u32, u32, Vec<u8>);

/// A classic pcap's byte order, resolution and records.
fn read_classic(path: &Path) -> (bool, bool, Vec<Stamped>) {
    let b = std::fs::read(path).unwrap();
    let (big, nanos) = match b[0..4] {
        [0xD4, 0xC3, 0xB2, 0xA1] => (false, false),
        [0x4D, 0x3C, 0xB2, 0xA1] => (false, true),
        [0xA1, 0xB2, 0xC3, 0xD4] => (true, false),
        [0xA1, 0xB2, 0x3C, 0x4D] => (true, true),
        _ => panic!("{}: not a classic pcap", path.display()),
    };
    let word = |off: usize| {
        let x: [u8; 4] = b[off..off + 4].try_into().unwrap();
        if big {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }
    };
    assert_eq!(word(20), 1, "linktype");
    let mut off = 24;
    let mut out = Vec::new();
    while off < b.len() {
        let incl = word(off + 8) as usize;
        assert_eq!(word(off + 12) as usize, incl, "orig_len");
        out.push((
            word(off),
            word(off + 4),
            b[off + 16..off + 16 + incl].to_vec(),
        ));
        off += 16 + incl;
    }
    (big, nanos, out)
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `macsec pcap encrypt --config c.toml` of `frames` (a little-endian microsecond pcap)
/// in `d`: the protected frames the tool makes of them, PNs counting from 1.
fn protected(d: &TempDir, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    write_pcap(&d.path("want-in.pcap"), frames);
    let o = pcap_in(
        d,
        "encrypt",
        &d.path("c.toml"),
        "want-in.pcap",
        "want-out.pcap",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = read_pcap(&d.path("want-out.pcap"));
    std::fs::remove_file(d.path("want-in.pcap")).unwrap();
    std::fs::remove_file(d.path("want-out.pcap")).unwrap();
    want
}

/// `macsec pcap encrypt a b` with the input the output, however it is named, would
/// truncate the input before reading it: it is refused as a usage error and the input
/// stays as it was.
#[test]
fn the_input_is_never_the_output() {
    use std::os::unix::fs::symlink;
    let d = TempDir::new("same");
    write_config(&d.path("c.toml"), config("gcm-aes-128", true, 0, ""));
    write_pcap(&d.path("in.pcap"), &[frame(100, 1), frame(200, 2)]);
    let before = std::fs::read(d.path("in.pcap")).unwrap();
    symlink("in.pcap", d.path("link.pcap")).unwrap();
    std::fs::hard_link(d.path("in.pcap"), d.path("hard.pcap")).unwrap();
    let names = listing(&d.0);
    let abs = d.path("in.pcap");
    let abs = abs.to_str().unwrap();
    let parent = format!("../{}/in.pcap", d.0.file_name().unwrap().to_str().unwrap());
    for op in ["encrypt", "decrypt"] {
        for (input, output) in [
            ("in.pcap", "in.pcap"),
            ("in.pcap", "./in.pcap"),
            ("./in.pcap", abs),
            (abs, "in.pcap"),
            ("in.pcap", parent.as_str()),
            ("in.pcap", "link.pcap"),
            ("link.pcap", "in.pcap"),
            ("in.pcap", "hard.pcap"),
            ("hard.pcap", "link.pcap"),
        ] {
            let o = Command::new(BIN)
                .current_dir(&d.0)
                .args(["pcap", op, "--config", "c.toml", input, output])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{op} {input} {output}: {err}");
            assert!(
                err.contains(&format!("{output} and {input} are the same file")),
                "{op} {input} {output}: {err}"
            );
            assert_eq!(
                std::fs::read(d.path("in.pcap")).unwrap(),
                before,
                "{op} {input} {output}: the input changed"
            );
            assert_eq!(listing(&d.0), names, "{op} {input} {output}");
        }
    }
}

/// A run that fails after the output would have been opened (a malformed record in the
/// middle, a link type that is not Ethernet, a malformed pcapng block) leaves an
/// existing output as it was and no temporary file behind.
#[test]
fn a_failed_run_leaves_the_existing_output_alone() {
    let d = TempDir::new("failrun");
    write_config(&d.path("c.toml"), config("gcm-aes-128", true, 0, ""));
    let c = d.path("c.toml");
    let previous = b"the output of an earlier run".to_vec();
    std::fs::write(d.path("out.pcap"), &previous).unwrap();

    // Record 2 says it holds 300000 octets: more than any snap length.
    let mut b = classic_pcap(
        false,
        false,
        262_144,
        &[
            (frame(100, 1), 100),
            (frame(100, 2), 100),
            (frame(100, 3), 100),
        ],
    );
    b[24 + 116 + 8..24 + 116 + 12].copy_from_slice(&300_000u32.to_le_bytes());
    std::fs::write(d.path("bad-record.pcap"), b).unwrap();
    // A `tcpdump -i any` capture.
    write_pcap(&d.path("any.pcap"), &[frame(100, 1)]);
    let mut b = std::fs::read(d.path("any.pcap")).unwrap();
    b[20..24].copy_from_slice(&113u32.to_le_bytes());
    std::fs::write(d.path("any.pcap"), b).unwrap();
    // A pcapng whose third block (second packet) claims more data than it holds.
    write_pcapng(
        &d.path("bad-block.pcapng"),
        None,
        &[frame(100, 1), frame(100, 2), frame(100, 3)],
    );
    let mut b = std::fs::read(d.path("bad-block.pcapng")).unwrap();
    let (shb, idb, epb) = (28, 20, 132);
    let at = shb + idb + epb + 20;
    b[at..at + 4].copy_from_slice(&200u32.to_le_bytes());
    std::fs::write(d.path("bad-block.pcapng"), b).unwrap();

    let names = listing(&d.0);
    for (input, want) in [
        ("bad-record.pcap", "record 2 (at offset 140) is malformed"),
        ("any.pcap", "is not Ethernet"),
        ("bad-block.pcapng", "block 4 is malformed"),
    ] {
        for op in ["encrypt", "decrypt"] {
            let o = pcap_in(&d, op, &c, input, "out.pcap");
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(
                std::fs::read(d.path("out.pcap")).unwrap(),
                previous,
                "{op} {input}: the existing output changed ({err})"
            );
            assert_eq!(listing(&d.0), names, "{op} {input}: files left behind");
            assert_eq!(o.status.code(), Some(1), "{input}: {err}");
            assert!(err.contains(want), "{input}: {err}");
        }
    }
    // And a run that succeeds replaces it, keeping its mode.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path("out.pcap"), std::fs::Permissions::from_mode(0o640)).unwrap();
    write_pcap(&d.path("good.pcap"), &[frame(100, 1)]);
    let names = listing(&d.0);
    let o = pcap_in(&d, "encrypt", &c, "good.pcap", "out.pcap");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read_pcap(&d.path("out.pcap")).len(), 1);
    let meta = std::fs::metadata(d.path("out.pcap")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(listing(&d.0), names);
    // A new output gets the mode of a new file (the test runs under umask 022 or
    // stricter: never more than 0644, never less than 0600).
    let o = pcap_in(&d, "encrypt", &c, "good.pcap", "new.pcap");
    assert!(o.status.success());
    let mode = std::fs::metadata(d.path("new.pcap"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode & 0o600, 0o600, "{mode:o}");
    assert_eq!(mode & !0o644, 0, "{mode:o}");
}

/// The output is written to a temporary file in its directory: a directory the user
/// cannot write is named, and an existing output in it is left alone.
#[test]
fn an_output_directory_that_is_not_writable_is_named() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    let d = TempDir::new("rodir");
    // Readable by nobody too, so the key-file rule is waived for this test.
    std::fs::write(d.path("c.toml"), config("gcm-aes-128", true, 0, "")).unwrap();
    write_pcap(&d.path("in.pcap"), &[frame(100, 1)]);
    let ro = d.path("ro");
    std::fs::create_dir(&ro).unwrap();
    let previous = b"the output of an earlier run".to_vec();
    std::fs::write(ro.join("out.pcap"), &previous).unwrap();
    std::fs::set_permissions(ro.join("out.pcap"), std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root writes anywhere: run the tool as nobody then.
    let root = std::fs::metadata(&d.0).unwrap().uid() == 0;
    let bin = if root {
        crate::common::bin_for_other_users(&d.0)
    } else {
        BIN.into()
    };
    for out in ["out.pcap", "new.pcap"] {
        let mut cmd = Command::new(&bin);
        cmd.args([
            "pcap",
            "encrypt",
            "--unsafe-key-permissions",
            "--config",
            d.path("c.toml").to_str().unwrap(),
            d.path("in.pcap").to_str().unwrap(),
            ro.join(out).to_str().unwrap(),
        ]);
        if root {
            cmd.uid(65534).gid(65534);
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            std::fs::read(ro.join("out.pcap")).unwrap(),
            previous,
            "{out}: {err}"
        );
        assert_eq!(o.status.code(), Some(1), "{out}: {err}");
        assert!(
            err.contains(&format!(
                "cannot create a temporary output file in directory {}",
                ro.display()
            )),
            "{out}: {err}"
        );
        assert!(err.contains("ermission denied"), "{out}: {err}");
    }
    assert!(!ro.join("new.pcap").exists());
    assert_eq!(std::fs::read(ro.join("out.pcap")).unwrap(), previous);
    assert_eq!(listing(&ro), ["out.pcap"]);
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `tcpdump -s 96` keeps 96 octets of each frame and says so in the file header: the
/// frames it cut are counted as truncated and skipped, the others are protected, in
/// either byte order and timestamp resolution, and the output keeps both.
#[test]
fn a_snap_length_capture_counts_its_cut_frames() {
    let d = TempDir::new("snap96");
    write_config(&d.path("c.toml"), config("gcm-aes-128", true, 0, ""));
    let (a, b, c, e) = (frame(60, 1), frame(200, 2), frame(90, 3), frame(1514, 4));
    let records = vec![
        (a.clone(), 60),
        (b[..96].to_vec(), 200),
        (c.clone(), 90),
        (e[..96].to_vec(), 1514),
    ];
    let want = protected(&d, &[a, c]);
    for big in [false, true] {
        for nanos in [false, true] {
            std::fs::write(d.path("s96.pcap"), classic_pcap(big, nanos, 96, &records)).unwrap();
            let o = pcap_in(&d, "encrypt", &d.path("c.toml"), "s96.pcap", "o.pcap");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "big {big} nanos {nanos}: {err}");
            assert!(o.stderr.is_empty(), "{err}");
            let j = json(&o);
            let f = &j["frames"];
            assert_eq!(
                (&f["read"], &f["truncated"], &f["written"], &f["dropped"]),
                (&4.into(), &2.into(), &2.into(), &0.into()),
                "big {big} nanos {nanos}: {j}"
            );
            let (obig, onanos, recs) = read_classic(&d.path("o.pcap"));
            assert_eq!((obig, onanos), (big, nanos));
            assert_eq!(
                recs.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
                want,
                "big {big} nanos {nanos}"
            );
            // Records 0 and 2 of the input, with their timestamps.
            assert_eq!((recs[0].0, recs[0].1), (1_700_000_000, 7));
            assert_eq!((recs[1].0, recs[1].1), (1_700_000_002, 2007));
        }
    }
}

/// A capture whose writer was killed ends inside its last record (or block): the frames
/// before it are processed and written, and the tool warns instead of failing.
#[test]
fn a_cut_last_record_is_a_warning() {
    let d = TempDir::new("cutlast");
    write_config(&d.path("c.toml"), config("gcm-aes-128", true, 0, ""));
    let frames = vec![frame(100, 1), frame(200, 2), frame(300, 3)];
    let want = protected(&d, &frames[..2]);
    let records: Vec<Rec> = frames.iter().map(|f| (f.clone(), f.len() as u32)).collect();
    let mut inputs = Vec::new();
    for big in [false, true] {
        for nanos in [false, true] {
            let b = classic_pcap(big, nanos, 262_144, &records);
            // Inside the data of the third record, and inside its record header.
            for cut in [50, 300 + 16 - 7] {
                let name = format!("cut-{big}-{nanos}-{cut}.pcap");
                std::fs::write(d.path(&name), &b[..b.len() - cut]).unwrap();
                inputs.push(name);
            }
        }
    }
    write_pcapng(&d.path("cut.pcapng"), None, &frames);
    let b = std::fs::read(d.path("cut.pcapng")).unwrap();
    std::fs::write(d.path("cut.pcapng"), &b[..b.len() - 10]).unwrap();
    inputs.push("cut.pcapng".into());
    for input in &inputs {
        let o = pcap_in(&d, "encrypt", &d.path("c.toml"), input, "o.pcap");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{input}: {err}");
        assert!(
            err.contains(&format!(
                "warning: {}: the file ends inside its last record",
                d.path(input).display()
            )),
            "{input}: {err}"
        );
        assert!(
            err.contains("the 2 frame(s) before it were read"),
            "{input}: {err}"
        );
        let j = json(&o);
        assert_eq!(j["frames"]["read"], 2, "{input}: {j}");
        assert_eq!(j["frames"]["written"], 2, "{input}: {j}");
        assert_eq!(j["frames"]["last_record_cut"], true, "{input}: {j}");
        let (_, _, recs) = read_classic(&d.path("o.pcap"));
        assert_eq!(
            recs.into_iter().map(|r| r.2).collect::<Vec<_>>(),
            want,
            "{input}"
        );
    }
}

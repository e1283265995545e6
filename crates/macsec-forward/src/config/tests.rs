//! Unit tests of the configuration: the rules of each section, the messages, and that no
//! key material reaches a message.

use super::*;
use macsec::crypto::CipherSuite;
use macsec::secy::{ConfidentialityOffset, Protection};

const GOOD: &str = r#"
[secy]
cipher = "gcm-aes-xpn-128"
encrypt = true
confidentiality_offset = 30
sci = "5254001234020001"
replay_window = 64
[secy.tx]
encoding_sa = 1
[[secy.tx.sa]]
an = 1
key = "AD7A2BD03EAC835A6F620FDCB506B345"
pn = "0xFFFFFFFFFFFFFFF0"
ssci = "7A30C119"
salt = "E630E81A48DE86A21C66FA6D"
[[secy.rx]]
sci = "5254001234010001"
[[secy.rx.sa]]
an = 1
key = "AD7A2BD03EAC835A6F620FDCB506B345"
pn = "18446744073709551600"
ssci = "7A30C118"
salt = "E630E81A48DE86A21C66FA6D"
"#;

fn parse(s: &str) -> Result<Config, ConfigError> {
    Config::parse(s, "test.toml", Path::new("."), KeyFilePolicy::Strict)
}

fn err(s: &str) -> String {
    parse(s).unwrap_err().to_string()
}

#[test]
fn good_config() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.secy.cfg.cipher, CipherSuite::GcmAesXpn128);
    assert_eq!(
        c.secy.cfg.protection,
        Protection::Confidentiality(ConfidentialityOffset::Thirty)
    );
    assert_eq!(c.secy.tx.sas[0].pn, 0xFFFF_FFFF_FFFF_FFF0);
    assert_eq!(c.secy.rx[0].sas[0].pn, 0xFFFF_FFFF_FFFF_FFF0);
    let secy = c.secy.build().unwrap();
    assert_eq!(secy.tx.encoding_sa(), 1);
}

#[test]
fn errors_name_the_field() {
    let e = err(&GOOD.replace("gcm-aes-xpn-128", "aes-ccm"));
    assert!(e.starts_with("secy.cipher:"), "{e}");
    let e = err(&GOOD.replace("confidentiality_offset = 30", "confidentiality_offset = 20"));
    assert!(e.starts_with("secy.confidentiality_offset:"), "{e}");
    let e = err(&GOOD.replace("pn = \"0xFFFFFFFFFFFFFFF0\"", "pn = 0"));
    assert!(e.starts_with("secy.tx.sa[0].pn:"), "{e}");
    let e = err(&GOOD.replace("ssci = \"7A30C118\"\n", ""));
    assert!(e.starts_with("secy.rx[0].sa[0].ssci: missing"), "{e}");
    let e = err(&GOOD.replace("replay_window = 64", "replay_window = 1073741824"));
    assert!(e.starts_with("secy.replay_window:"), "{e}");
    let e = err(&GOOD.replace("encoding_sa = 1", "encoding_sa = 2"));
    assert!(e.starts_with("secy.tx.encoding_sa:"), "{e}");
    let e = err(&GOOD.replace("replay_window", "replay_windw"));
    assert!(e.starts_with("secy.replay_windw: unknown key"), "{e}");
    let e = err(&GOOD.replace("sci = \"5254001234010001\"", "sci = \"52540012340100\""));
    assert!(e.starts_with("secy.rx[0].sci:"), "{e}");
    let e = err(&GOOD.replace("pn = \"18446744073709551600\"", "pn = 18446744073709551600"));
    assert!(e.contains("line 21") && e.contains("as a string"), "{e}");
    let e = err("[secy]\ncipher = 5\n");
    assert!(e.starts_with("secy.cipher: expected a string"), "{e}");
    let e = err("[ports]\nplain = \"a\"\n");
    assert!(e.starts_with("secy: missing"), "{e}");
}

#[test]
fn key_errors_never_show_the_key() {
    let bad = GOOD.replacen(
        "AD7A2BD03EAC835A6F620FDCB506B345",
        "AD7A2BD03EAC835A6F620FDCB506B345AD7A2BD03EAC835A6F620FDCB506B345",
        1,
    );
    let e = err(&bad);
    assert!(
        e.starts_with("secy.tx.sa[0].key: gcm-aes-xpn-128 needs a 16-octet key"),
        "{e}"
    );
    assert!(!e.contains("AD7A"));
    let e = err(&GOOD.replacen(
        "AD7A2BD03EAC835A6F620FDCB506B345",
        "AD7A2BD03EAC835A6F620FDCB506B34G",
        1,
    ));
    assert!(
        e.starts_with("secy.tx.sa[0].key:") && !e.contains("AD7A"),
        "{e}"
    );
    // A syntax error on the key's line reports the position only.
    let e = err(&GOOD.replacen(
        "key = \"AD7A2BD03EAC835A6F620FDCB506B345\"",
        "key = \"AD7A2BD03EAC835A6F620FDCB506B345",
        1,
    ));
    assert!(e.contains("line 12") && !e.contains("AD7A"), "{e}");
}

#[test]
fn key_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("macsec-keyfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("sak.hex");
    std::fs::write(&p, "AD7A2BD03EAC835A6F620FDCB506B345\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = read_key_file("f", &p, KeyFilePolicy::Strict)
        .unwrap_err()
        .to_string();
    assert!(e.contains("chmod 600") && e.contains("644"), "{e}");
    assert!(read_key_file("f", &p, KeyFilePolicy::AllowUnsafePermissions).is_ok());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        read_key_file("f", &p, KeyFilePolicy::Strict).unwrap().len(),
        16
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A config with every section and one static SA each way (valid apart from the mix of
/// MKA and static keys, which only the forwarder refuses).
fn every_section() -> String {
    let ak = macsec::mka::ActivationKey::generate(16).unwrap().encode();
    let text = r#"
[ports]
plain = "a"
secure = "b"
[secy]
sci = "5254001234020001"
[secy.tx]
[[secy.tx.sa]]
an = 0
key = "AD7A2BD03EAC835A6F620FDCB506B345"
[[secy.rx]]
sci = "5254001234010001"
[[secy.rx.sa]]
an = 0
key = "AD7A2BD03EAC835A6F620FDCB506B345"
[mka]
activation_key = "AK"
[forward]
qdisc_bypass = false
"#;
    text.replace("AK", ak.as_str())
}

#[test]
fn unknown_keys_are_named_in_every_section() {
    let good = every_section();
    parse(&good).unwrap();
    for (after, path, known) in [
        ("[ports]\n", "ports", "plain, secure"),
        ("[secy]\n", "secy", "backend, cipher"),
        ("[secy.tx]\n", "secy.tx", "encoding_sa, sa"),
        (
            "[[secy.tx.sa]]\n",
            "secy.tx.sa[0]",
            "an, key, key_file, pn, salt, ssci",
        ),
        ("[[secy.rx]]\n", "secy.rx[0]", "sa, sci"),
        (
            "[[secy.rx.sa]]\n",
            "secy.rx[0].sa[0]",
            "an, key, key_file, pn, salt, ssci",
        ),
        ("[mka]\n", "mka", "activation_key, activation_key_file, cak"),
        (
            "[forward]\n",
            "forward",
            "port_timeout_s, qdisc_bypass, run_dir",
        ),
    ] {
        let e = err(&good.replacen(after, &format!("{after}bogus = 1\n"), 1));
        assert!(
            e.starts_with(&format!("{path}.bogus: unknown key; known keys here: ")),
            "{e}"
        );
        assert!(e.contains(known), "{e}");
    }
    let e = err(&format!("{good}[mystery]\n"));
    assert!(
        e.starts_with("mystery: unknown section; known sections: control, forward, links, metrics, mka, monitor, ports, redundancy, secy"),
        "{e}"
    );
}

#[test]
fn a_misspelt_port_key_is_named_before_the_missing_one() {
    // The walker used to report `ports.plain: missing` here and never name the typo.
    let e = err("[ports]\nplian = \"eth1\"\nsecure = \"eth2\"\n[secy]\n");
    assert_eq!(
        e,
        "ports.plian: unknown key; known keys here: plain, secure (line 2)"
    );
    let e = err("[ports]\nsecure = \"eth2\"\n[secy]\n");
    assert!(e.starts_with("ports.plain: missing"), "{e}");
    let e = err("[ports]\nplain = \"eth1\"\nsecure = \"eth1\"\n[secy]\n");
    assert!(e.starts_with("ports.secure: must differ"), "{e}");
}

#[test]
fn wrong_types_name_the_path_and_both_types() {
    for (text, want) in [
        (
            "[secy]\nreplay_window = \"64\"\n",
            "secy.replay_window: expected an integer, got a string (line 2)",
        ),
        (
            "secy = 5\n",
            "secy: expected a table, got an integer (line 1)",
        ),
        (
            "[secy]\nrx = 5\n",
            "secy.rx: expected an array of tables ([[secy.rx]]), got an integer (line 2)",
        ),
        (
            "[secy]\nrx = [5]\n",
            "secy.rx[0]: expected a table, got an integer (line 2)",
        ),
        (
            "[secy]\nencrypt = \"yes\"\n",
            "secy.encrypt: expected a boolean, got a string (line 2)",
        ),
        (
            "[secy]\npn_threshold = true\n",
            "secy.pn_threshold: expected a number, got a boolean (line 2)",
        ),
        (
            "[secy]\n[[secy.tx.sa]]\nan = 1.5\n",
            "secy.tx.sa[0].an: expected an integer, got a float (line 3)",
        ),
        (
            "[secy]\n[[secy.tx.sa]]\npn = 1.5\n",
            "secy.tx.sa[0].pn: expected an integer or a string, got a float (line 3)",
        ),
        (
            "[ports]\nplain = 1\n[secy]\n",
            "ports.plain: expected a string, got an integer (line 2)",
        ),
        (
            "[secy]\n[mka]\nhello_time = \"2\"\n",
            "mka.hello_time: expected a number, got a string (line 3)",
        ),
        (
            "[secy]\n[forward]\nqdisc_bypass = 1\n",
            "forward.qdisc_bypass: expected a boolean, got an integer (line 3)",
        ),
    ] {
        assert_eq!(err(text), want);
    }
    // Ranges are checked on any integer, also beyond i64.
    assert_eq!(
        err("[secy]\nreplay_window = 18446744073709551615\n"),
        "secy.replay_window: 18446744073709551615 is out of range 0..=4294967295"
    );
}

#[test]
fn key_fields_of_the_wrong_type_never_show_the_value() {
    let good = every_section();
    let hex = "0x7A2BD03EAC835A6F";
    let decimal = 0x7A2B_D03E_AC83_5A6Fu64.to_string();
    for (from, field) in [
        (
            "key = \"AD7A2BD03EAC835A6F620FDCB506B345\"\n[[secy.rx]]",
            "secy.tx.sa[0].key",
        ),
        (
            "key = \"AD7A2BD03EAC835A6F620FDCB506B345\"\n[mka]",
            "secy.rx[0].sa[0].key",
        ),
    ] {
        let tail = from.split_once('\n').unwrap().1;
        for value in [
            hex.to_string(),
            format!("[{hex}]"),
            format!("{{ k = {hex} }}"),
            "1979-05-27T07:32:00Z".into(),
            "7.5".into(),
        ] {
            let e = err(&good.replacen(from, &format!("key = {value}\n{tail}"), 1));
            assert!(
                e.starts_with(&format!("{field}: expected a string, got ")),
                "{e}"
            );
            assert!(e.contains("the value is not shown"), "{e}");
            for secret in [&hex[2..], &decimal, "1979", "7.5"] {
                assert!(!e.to_lowercase().contains(&secret.to_lowercase()), "{e}");
            }
        }
    }
    let e = err(&format!("[secy]\n[mka]\nactivation_key = {hex}\n"));
    assert!(
        e.starts_with("mka.activation_key: expected a string") && !e.contains(&decimal),
        "{e}"
    );
    let e = err(&format!("[secy]\n[mka]\nckn = \"00\"\ncak = {hex}\n"));
    assert!(
        e.starts_with("mka.cak: expected a string") && !e.contains(&decimal),
        "{e}"
    );
    // The validated settings print no key either.
    let c = parse(&good).unwrap();
    let debug = format!("{c:?}").to_lowercase();
    assert!(!debug.contains("ad7a2bd0"), "{debug}");
    let raw = value::SecretText(zeroize::Zeroizing::new("AD7A2BD0".into()));
    assert!(!format!("{raw:?}").contains("AD7A"));
}

#[test]
fn numbers_as_integers_or_strings() {
    let one = |sa: &str| {
        parse(&format!(
            "[secy]\ncipher = \"gcm-aes-xpn-128\"\n[[secy.tx.sa]]\nan = 0\nkey = \"AD7A2BD03EAC835A6F620FDCB506B345\"\nsalt = \"E630E81A48DE86A21C66FA6D\"\n{sa}"
        ))
    };
    let c = one("ssci = \"1A\"\npn = \"0x1_0000_0000\"\n").unwrap();
    let sa = &c.secy.tx.sas[0];
    assert_eq!((sa.xpn.unwrap().ssci.0, sa.pn), (0x1A, 1 << 32));
    let c = one("ssci = 0x7A30C118\npn = 9223372036854775807\n").unwrap();
    let sa = &c.secy.tx.sas[0];
    assert_eq!(
        (sa.xpn.unwrap().ssci.0, sa.pn),
        (0x7A30_C118, i64::MAX as u64)
    );
    let e = one("ssci = \"7A30C1180\"\n").unwrap_err().to_string();
    assert!(
        e.starts_with("secy.tx.sa[0].ssci: expected 8 hex digits"),
        "{e}"
    );
    let e = one("ssci = 1\npn = -3\n").unwrap_err().to_string();
    assert_eq!(e, "secy.tx.sa[0].pn: -3 is negative");
    let e = one("ssci = 1\npn = \"twelve\"\n").unwrap_err().to_string();
    assert!(
        e.starts_with("secy.tx.sa[0].pn: \"twelve\" is not a decimal"),
        "{e}"
    );
}

#[test]
fn forward_section_defaults_and_paths() {
    let c = Config::parse(
        "[secy]\n",
        "dir/f.toml",
        Path::new("dir"),
        KeyFilePolicy::Strict,
    )
    .unwrap();
    assert_eq!(c.forward.state_file, None);
    assert_eq!(
        c.forward.legacy_state_file,
        Path::new("dir/f.toml.pn-state")
    );
    assert_eq!(c.forward.state_dir, Path::new("/var/lib/macsec"));
    assert_eq!(c.forward.run_dir, Path::new("/run/macsec"));
    assert_eq!(c.forward.pn_block, DEFAULT_PN_BLOCK);
    assert_eq!(
        (c.forward.stats_interval, c.forward.qdisc_bypass),
        (None, true)
    );
    let c = Config::parse(
        "[secy]\n[forward]\nstate_file = \"s.pn\"\nstats_interval = 10\npn_reserve_block = 7\n",
        "f.toml",
        Path::new("/etc/macsec"),
        KeyFilePolicy::Strict,
    )
    .unwrap();
    assert_eq!(
        c.forward.state_file.as_deref(),
        Some(Path::new("/etc/macsec/s.pn"))
    );
    assert_eq!(
        c.forward.stats_interval,
        Some(std::time::Duration::from_secs(10))
    );
    assert_eq!(c.forward.pn_block, 7);
    let e = err("[secy]\n[forward]\npn_reserve_block = 0\n");
    assert_eq!(e, "forward.pn_reserve_block: must be at least 1");
}

#[test]
fn commands_refuse_sections_they_do_not_read() {
    let c = parse("[secy]\n[forward]\n").unwrap();
    assert_eq!(c.sections(), ["secy", "forward"]);
    c.reject_unknown_sections(&["mka", "forward"]).unwrap();
    let e = c.reject_unknown_sections(&["mka"]).unwrap_err().to_string();
    assert_eq!(
        e,
        "forward: unknown section for this command; known sections: secy, ports, mka"
    );
}

#[test]
fn settings_print_as_the_file_spells_them() {
    use macsec::secy::{ReplayMode, ValidateFrames};
    assert_eq!(
        Setting(ValidateFrames::Strict).to_string(),
        "validate = \"strict\""
    );
    assert_eq!(
        Setting(ReplayMode::RejectDuplicates).to_string(),
        "replay_mode = \"reject-duplicates\""
    );
    assert_eq!(
        Setting(CipherSuite::GcmAesXpn256).to_string(),
        "cipher = \"gcm-aes-xpn-256\""
    );
    assert_eq!(
        Setting(ConfidentialityOffset::Thirty).to_string(),
        "confidentiality_offset = 30"
    );
    assert_eq!(
        Setting(Protection::IntegrityOnly).to_string(),
        "encrypt = false"
    );
    assert_eq!(
        Setting(Protection::Confidentiality(ConfidentialityOffset::Fifty)).to_string(),
        "encrypt = true, confidentiality_offset = 50"
    );
    let e = err(&GOOD
        .replace("gcm-aes-xpn-128", "gcm-aes-128")
        .replace("pn = \"0xFFFFFFFFFFFFFFF0\"\n", ""));
    assert!(
        e.ends_with("use ssci and salt, this SecY has cipher = \"gcm-aes-128\""),
        "{e}"
    );
    // What is printed reads back as the same setting.
    for v in ["disabled", "check", "strict"] {
        let c = parse(&format!("[secy]\nvalidate = \"{v}\"\n")).unwrap();
        assert_eq!(
            Setting(c.secy.cfg.validate).to_string(),
            format!("validate = \"{v}\"")
        );
    }
    for (encrypt, offset) in [(true, 0), (true, 30), (true, 50), (false, 0)] {
        let c = parse(&format!(
            "[secy]\nencrypt = {encrypt}\nconfidentiality_offset = {offset}\n"
        ))
        .unwrap();
        let shown = Setting(c.secy.cfg.protection).to_string();
        let again = parse(&format!("[secy]\n{}\n", shown.replace(", ", "\n"))).unwrap();
        assert_eq!(again.secy.cfg.protection, c.secy.cfg.protection, "{shown}");
    }
}

/// Writes `text` to a fresh file with `mode` in its own directory.
fn file_with_mode(tag: &str, text: &str, mode: u32) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("macsec-cfg-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("c.toml");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, p)
}

#[test]
fn config_files_with_inline_keys_follow_the_key_file_rule() {
    let ak = macsec::mka::ActivationKey::generate(16).unwrap().encode();
    let cak = ak.split('.').nth(2).unwrap().to_string();
    let tx_only = "[secy]\nsci = \"5254001234020001\"\n[[secy.tx.sa]]\nan = 0\nkey = \"AD7A2BD03EAC835A6F620FDCB506B345\"\n";
    let rx_only = "[secy]\n[[secy.rx]]\nsci = \"5254001234010001\"\n[[secy.rx.sa]]\nan = 0\nkey = \"AD7A2BD03EAC835A6F620FDCB506B345\"\n";
    let mka = format!("[secy]\n[mka]\nactivation_key = \"{}\"\n", ak.as_str());
    let cak_inline = format!("[secy]\n[mka]\nckn = \"00112233\"\ncak = \"{cak}\"\n");
    for (tag, text, field) in [
        ("tx", tx_only.to_string(), "secy.tx.sa[0].key"),
        ("rx", rx_only.to_string(), "secy.rx[0].sa[0].key"),
        ("ak", mka, "mka.activation_key"),
        ("cak", cak_inline, "mka.cak"),
    ] {
        for mode in [0o644, 0o640, 0o604] {
            let (dir, p) = file_with_mode(tag, &text, mode);
            let e = Config::load(&p, KeyFilePolicy::Strict)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("{field}: config file {} holds key material inline and is accessible by group or others (mode {mode:03o}); run `chmod 600 {}` (or pass --unsafe-key-permissions to accept it)", p.display(), p.display())),
                "{e}"
            );
            assert!(!e.contains("AD7A") && !e.contains(&cak), "{e}");
            Config::load(&p, KeyFilePolicy::AllowUnsafePermissions).unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let (dir, p) = file_with_mode(tag, &text, 0o600);
        Config::load(&p, KeyFilePolicy::Strict).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // No key inline: the config may be world-readable (its key file may not).
    let (dir, p) = file_with_mode(
        "nokey",
        "[secy]\n[[secy.tx.sa]]\nan = 0\nkey_file = \"sak.hex\"\n",
        0o644,
    );
    let key = dir.join("sak.hex");
    std::fs::write(&key, "AD7A2BD03EAC835A6F620FDCB506B345\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    Config::load(&p, KeyFilePolicy::Strict).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Config::load(&p, KeyFilePolicy::Strict)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("secy.tx.sa[0].key_file: key file") && e.contains("chmod 600"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

const LINKS: &str = r#"
[secy]
[ports]
plain = "eth1"
[[links]]
secure = "eth2"
name = "dx1"
priority = 1
[[links]]
secure = "eth3"
[redundancy]
mode = "balance"
hold_up_ms = 500
[monitor]
probe_interval_ms = 50
probe_miss = 4
loss_window_s = 30
max_loss = 0.05
max_rtt_ms = 20
"#;

#[test]
fn links_redundancy_and_monitor() {
    use crate::monitor::select::Mode;
    let c = parse(LINKS).unwrap();
    let l = c.links.unwrap();
    assert_eq!(l.links.len(), 2);
    assert_eq!((l.links[0].name.as_str(), l.links[0].priority), ("dx1", 1));
    // An unnamed link is named after its interface; priorities default to the order.
    assert_eq!((l.links[1].name.as_str(), l.links[1].priority), ("eth3", 2));
    assert_eq!(l.redundancy.mode, Mode::Balance);
    assert_eq!(l.redundancy.hold_up_ms, 500);
    let m = l.monitor.unwrap();
    assert_eq!(
        (m.probe_interval_ms, m.probe_miss, m.loss_window_s),
        (50, 4, 30)
    );
    assert_eq!((m.max_loss, m.max_rtt_ms), (0.05, 20));

    // The single form is one link, monitor off unless asked for.
    let one = parse("[secy]\n[ports]\nplain = \"a\"\nsecure = \"b\"\n").unwrap();
    let l = one.links.unwrap();
    assert_eq!(l.links[0].name, "b");
    assert!(l.monitor.is_none());
    // Several links: the monitor runs with its defaults.
    let two = parse(
        "[secy]\n[ports]\nplain = \"a\"\n[[links]]\nsecure = \"b\"\n[[links]]\nsecure = \"c\"\n",
    )
    .unwrap();
    assert!(two.links.unwrap().monitor.is_some());
}

#[test]
fn link_errors_name_the_field() {
    for (edit, want) in [
        (
            ("secure = \"eth3\"", "secure = \"eth2\""),
            "links[1].secure: eth2 is already links[0]",
        ),
        (
            ("secure = \"eth3\"", "secure = \"eth1\""),
            "links[1].secure: eth1 is the plain port",
        ),
        (
            ("name = \"dx1\"", "name = \"dx 1\""),
            "links[0].name: \"dx 1\": use 1 to 32 letters",
        ),
        (
            ("mode = \"balance\"", "mode = \"roundrobin\""),
            "redundancy.mode: \"roundrobin\": use \"active-backup\" or \"balance\"",
        ),
        (("max_loss = 0.05", "max_loss = 1.5"), "monitor.max_loss"),
        (
            ("probe_interval_ms = 50", "probe_interval_ms = 0"),
            "monitor.probe_interval_ms",
        ),
        (("priority = 1", "priority = -1"), "links[0].priority"),
        (
            (
                "[[links]]\nsecure = \"eth3\"\n",
                "[[links]]\nsecure = \"eth3\"\nspeed = 10\n",
            ),
            "links[1].speed: unknown key",
        ),
    ] {
        let e = err(&LINKS.replacen(edit.0, edit.1, 1));
        assert!(e.starts_with(want), "{edit:?}: {e}");
    }
    let both = LINKS.replacen("plain = \"eth1\"", "plain = \"eth1\"\nsecure = \"eth9\"", 1);
    assert!(err(&both).starts_with("ports.secure: give the secure interfaces either as [ports] secure or as [[links]], not both"));
    let none = "[secy]\n[ports]\nplain = \"a\"\n";
    assert!(
        err(none).starts_with("ports.secure: missing"),
        "{}",
        err(none)
    );
    let stray = "[secy]\n[monitor]\nprobe_miss = 3\n";
    assert!(
        err(stray).starts_with("monitor: needs secure links"),
        "{}",
        err(stray)
    );
}

#[test]
fn forward_threads_setting() {
    use crate::forward::worker::ThreadMode;
    let base = "[secy]\n[forward]\n";
    let t = |v: &str| parse(&format!("{base}threads = \"{v}\"\n")).map(|c| c.forward.threads);
    assert_eq!(t("one").unwrap(), Some(ThreadMode::OneThread));
    assert_eq!(t("two").unwrap(), Some(ThreadMode::TwoThreads));
    assert!(t("auto").unwrap().is_some());
    assert_eq!(parse(base).unwrap().forward.threads, None);
    assert!(err(&format!("{base}threads = \"three\"\n"))
        .starts_with("forward.threads: \"three\": use \"auto\", \"one\" or \"two\""));
}

#[test]
fn control_and_metrics_sections() {
    use std::net::SocketAddr;
    // Absent: the default socket, no metrics endpoint.
    let c = parse("[secy]\n").unwrap();
    assert_eq!(c.control, ControlSettings::default());
    let c = parse(
        "[secy]\n[control]\nsocket = \"/run/macsec/a.sock\"\n[metrics]\nlisten = \"127.0.0.1:9876\"\n",
    )
    .unwrap();
    assert_eq!(
        c.control.socket.as_deref(),
        Some(Path::new("/run/macsec/a.sock"))
    );
    assert_eq!(
        c.control.metrics,
        Some("127.0.0.1:9876".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(c.sections(), ["secy", "control", "metrics"]);
    // IPv6 and any address are accepted (a non-loopback one is warned about at start).
    let c = parse("[secy]\n[metrics]\nlisten = \"[::]:9876\"\n").unwrap();
    assert_eq!(c.control.metrics.unwrap().port(), 9876);
    // A relative socket path is relative to the config file, as other paths are.
    let c = parse("[secy]\n[control]\nsocket = \"ctl.sock\"\n").unwrap();
    assert_eq!(c.control.socket.as_deref(), Some(Path::new("./ctl.sock")));
    for (text, msg) in [
        ("[control]\nsocket = \"\"\n", "control.socket: empty"),
        ("[control]\nsocket = 3\n", "control.socket:"),
        (
            "[control]\nsokcet = \"/x\"\n",
            "control.sokcet: unknown key; known keys here: socket",
        ),
        ("[metrics]\n", "metrics.listen: missing"),
        (
            "[metrics]\nlisten = \"localhost:9876\"\n",
            "metrics.listen: \"localhost:9876\": expected an IP address and a port",
        ),
        (
            "[metrics]\nlisten = \"127.0.0.1\"\n",
            "metrics.listen: \"127.0.0.1\": expected",
        ),
        (
            "[metrics]\nport = 9876\n",
            "metrics.port: unknown key; known keys here: listen",
        ),
    ] {
        let e = err(&format!("[secy]\n{text}"));
        assert!(e.starts_with(msg), "{e}");
    }
    let long = format!("/run/{}/x.sock", "d".repeat(100));
    let e = err(&format!("[secy]\n[control]\nsocket = \"{long}\"\n"));
    assert!(
        e.starts_with("control.socket: ") && e.contains("at most 107") && e.contains(&long),
        "{e}"
    );
    // `macsec pcap` does not read them.
    let c = parse("[secy]\n[metrics]\nlisten = \"127.0.0.1:1\"\n").unwrap();
    assert!(c.reject_unknown_sections(&["mka", "forward"]).is_err());
}

fn ak() -> String {
    macsec::mka::ActivationKey::generate(16)
        .unwrap()
        .encode()
        .as_str()
        .to_string()
}

#[test]
fn a_key_chain_with_times_and_a_fallback() {
    use crate::keychain::{parse_time, rfc3339};
    let (a, b, f) = (ak(), ak(), ak());
    let c = parse(&format!(
        "[secy]\n[mka]\npolicy = \"should-secure\"\nrekey_on_peer_loss = false\nexpiry_warning = 3600\n\
         [[mka.keys]]\nactivation_key = \"{a}\"\nend = 2026-12-08T00:00:00Z\n\
         [[mka.keys]]\nactivation_key = \"{b}\"\nstart = \"2026-12-07T23:55:00Z\"\n\
         [[mka.keys]]\nactivation_key = \"{f}\"\nfallback = true\n"
    ))
    .unwrap();
    let m = c.mka.unwrap();
    assert_eq!(m.policy, mka::Policy::ShouldSecure);
    assert!(!m.rekey_on_peer_loss);
    assert_eq!(m.expiry_warning, std::time::Duration::from_secs(3600));
    let k = m.keys.keys();
    assert_eq!(k.len(), 3);
    assert_eq!(k[0].end, Some(parse_time("2026-12-08T00:00:00Z").unwrap()));
    assert_eq!(k[0].start, None);
    assert_eq!(rfc3339(k[1].start.unwrap()), "2026-12-07T23:55:00Z");
    assert!(!k[0].fallback && !k[1].fallback && k[2].fallback);
    assert_eq!(k[1].origin, "mka.keys[1]");
    assert_eq!(
        k[0].ckn_hex(),
        a.split('.').nth(1).unwrap().to_ascii_lowercase()
    );
    // No CAK in the Debug form.
    let dbg = format!("{m:?}");
    let cak = a.split('.').nth(2).unwrap();
    assert!(
        !dbg.to_ascii_lowercase().contains(&cak.to_ascii_lowercase()),
        "{dbg}"
    );

    // The single-key form is a chain of one, must-secure, rekey on peer loss.
    let c = parse(&format!("[secy]\n[mka]\nactivation_key = \"{a}\"\n")).unwrap();
    let m = c.mka.unwrap();
    assert_eq!(m.keys.keys().len(), 1);
    assert_eq!(m.keys.keys()[0].origin, "mka");
    assert_eq!(m.policy, mka::Policy::MustSecure);
    assert!(m.rekey_on_peer_loss);
    assert_eq!(m.expiry_warning, std::time::Duration::from_secs(86_400));
}

#[test]
fn key_chain_mistakes_are_named() {
    let (a, b) = (ak(), ak());
    let one = |extra: &str| format!("[[mka.keys]]\nactivation_key = \"{a}\"\n{extra}");
    for (text, want) in [
        (
            format!("[secy]\n[mka]\nactivation_key = \"{a}\"\n{}", one("")),
            "mka.keys: give the key either in [mka] (one key) or as [[mka.keys]] (a key chain), not both",
        ),
        (
            format!("[secy]\n[mka]\n{}{}", one(""), one("")),
            "mka.keys[1].ckn: the same CKN as mka.keys[0]",
        ),
        (
            format!("[secy]\n[mka]\n{}", one("start = 2026-12-08T00:00:00Z\nend = 2026-12-07T00:00:00Z\n")),
            "mka.keys[0].end: 2026-12-07T00:00:00Z is not after start 2026-12-08T00:00:00Z",
        ),
        (
            format!("[secy]\n[mka]\n{}", one("start = 2026-12-08T00:00:00\n")),
            "mka.keys[0].start: 2026-12-08T00:00:00 has no UTC offset",
        ),
        (
            format!("[secy]\n[mka]\n{}", one("end = \"next tuesday\"\n")),
            "mka.keys[0].end: \"next tuesday\" is not an RFC 3339 time",
        ),
        (
            format!("[secy]\n[mka]\n{}", one("end = 5\n")),
            "mka.keys[0].end: expected a date and time such as 2026-12-07T23:55:00Z, found a integer",
        ),
        (
            format!("[secy]\n[mka]\n{}", one("fallback = true\n")),
            "mka.keys: every key is a fallback key",
        ),
        (
            "[secy]\n[mka]\n[[mka.keys]]\nfallback = false\n".to_string(),
            "mka.keys[0].activation_key: give exactly one of",
        ),
        (
            format!("[secy]\n[mka]\n[[mka.keys]]\nactivation_key = \"{b}\"\nckn = \"0011\"\n"),
            "mka.keys[0].activation_key: give exactly one of",
        ),
        (
            format!("[secy]\n[mka]\npolicy = \"may-secure\"\n{}", one("")),
            "mka.policy: \"may-secure\": expected \"must-secure\"",
        ),
        (
            format!("[secy]\n[mka]\n{}", one("lifetime = 5\n")),
            "mka.keys[0].lifetime: unknown key; known keys here: activation_key, activation_key_file, cak, cak_file, ckn, end, fallback, start",
        ),
        (
            "[secy]\n[mka]\nkeys = []\n".to_string(),
            "mka.keys: empty",
        ),
    ] {
        let e = err(&text);
        assert!(e.starts_with(want), "want {want:?}\n got {e}");
        for k in [&a, &b] {
            assert!(!e.contains(k.split('.').nth(2).unwrap()), "{e}");
        }
    }
}

#[test]
fn an_inline_key_in_a_chain_needs_a_private_config_file() {
    use std::os::unix::fs::PermissionsExt;
    let a = ak();
    let text = format!("[secy]\n[mka]\n[[mka.keys]]\nactivation_key_file = \"k.key\"\n[[mka.keys]]\nactivation_key = \"{a}\"\n");
    let (dir, p) = file_with_mode("chain", &text, 0o644);
    let key = dir.join("k.key");
    std::fs::write(&key, format!("{}\n", ak())).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = Config::load(&p, KeyFilePolicy::Strict)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("mka.keys[1].activation_key: config file"),
        "{e}"
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    Config::load(&p, KeyFilePolicy::Strict).unwrap();
    // A key file others can read is refused, naming the chain entry.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Config::load(&p, KeyFilePolicy::Strict)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("mka.keys[0].activation_key_file: "), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

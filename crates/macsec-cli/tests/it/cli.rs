//! `macsec keygen` and the configuration errors of `macsec forward` (no root needed:
//! the configuration is checked before any interface is touched).

use crate::pcap_cli::{run, TempDir};
use std::os::unix::fs::PermissionsExt;

fn forward(cfg: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["forward", "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn activation_key() -> String {
    let o = run(&["keygen", "--bits", "128"]);
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix("activation key: "))
        .expect("activation key line")
        .to_string()
}

#[test]
fn keygen_prints_a_parseable_activation_key_and_snippets() {
    let o = run(&["keygen"]);
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("activation key: "))
        .unwrap();
    let k = macsec::mka::ActivationKey::parse(key).unwrap();
    assert_eq!(k.cak.len(), 32, "256-bit CAK by default");
    assert!(out.contains("[mka]") && out.contains("mka_ckn=") && out.contains("mka_cak="));
    assert!(out.contains("cipher = \"gcm-aes-256\""), "{out}");
    // A 128-bit CAK suggests the 128-bit suite (issue 12.10).
    let o = run(&["keygen", "--bits", "128"]);
    let out128 = String::from_utf8(o.stdout).unwrap();
    assert!(out128.contains("cipher = \"gcm-aes-128\""), "{out128}");
    assert!(!out128.contains("gcm-aes-256\""), "{out128}");
    assert_ne!(activation_key(), activation_key(), "fresh every time");
    // --out writes an owner-only file and refuses to overwrite.
    let d = TempDir::new("keygen");
    let p = d.path("link.key");
    assert!(run(&["keygen", "--out", p.to_str().unwrap()])
        .status
        .success());
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    macsec::mka::ActivationKey::parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert!(!run(&["keygen", "--out", p.to_str().unwrap()])
        .status
        .success());
}

/// The key with its last check character changed to a different one (a random
/// key may already end in any given character, so never substitute a fixed one).
fn mistyped(ak: &str) -> String {
    let (head, last) = ak.split_at(ak.len() - 1);
    let other = if last == "0" { "1" } else { "0" };
    format!("{head}{other}")
}

#[test]
fn forward_config_errors_exit_2_naming_the_field() {
    let d = TempDir::new("fwdcfg");
    let c = d.path("f.toml");
    let ak = activation_key();
    let ports = "[ports]\nplain = \"nosuchplain0\"\nsecure = \"nosuchsec0\"\n";
    let cases: Vec<(String, &str)> = vec![
        ("[secy]\n".into(), "ports: missing"),
        (format!("{ports}[secy]\n"), "mka: missing: no keys are configured"),
        (
            format!("{ports}[secy]\n[[secy.tx.sa]]\nan = 0\nkey = \"AD7A2BD03EAC835A6F620FDCB506B345\"\n[mka]\nactivation_key = \"{ak}\"\n"),
            "both [mka] and static SAs",
        ),
        (format!("{ports}[secy]\n[mka]\nactivation_key = \"{}\"\n", mistyped(&ak)), "mka.activation_key: the check digits"),
        (format!("{ports}[secy]\n[mka]\nactivation_key = \"{ak}\"\npriority = 300\n"), "mka.priority: 300 is out of range"),
        (format!("{ports}[secy]\n[mka]\nactivation_key = \"{ak}\"\ncipher = \"aes\"\n"), "mka.cipher:"),
        (format!("{ports}[secy]\n[mka]\nactivation_key = \"{ak}\"\ndestination = \"02:00:00:00:00:01\"\n"), "mka.destination: must be a group"),
        (format!("{ports}[secy]\n[mka]\nactivation_key = \"{ak}\"\nhello_time = 7.0\n"), "mka.life_time: must be longer"),
        (format!("{ports}[secy]\n[mka]\nckn = \"0011\"\n"), "mka.cak: give exactly one"),
        (format!("{ports}[secy]\n[mka]\nactivation_key = \"{ak}\"\nethertype = \"0x88E5\"\n"), "mka.ethertype:"),
        (format!("{ports}[secy]\n[mka]\nactivation_key = \"{ak}\"\nvlan = 4095\n"), "mka.vlan: 4095 is out of range"),
        (format!("{ports}[secy]\n[mka]\nactivation_key = \"{ak}\"\nvlan = 0\n"), "mka.vlan: 0 is no VLAN"),
        (format!("{ports}[secy]\n[mka]\nactivation_key = \"{ak}\"\n[forward]\npn_reserve_block = 0\n"), "forward.pn_reserve_block"),
        // Several links: MKA only (each link needs its own SCI and SAKs), no fixed SCI,
        // and the monitor's probes cannot travel with clear VLAN tags.
        (
            "[ports]\nplain = \"p0\"\n[[links]]\nsecure = \"s0\"\n[[links]]\nsecure = \"s1\"\n[secy]\n[[secy.tx.sa]]\nan = 0\nkey = \"AD7A2BD03EAC835A6F620FDCB506B345\"\n[[secy.rx]]\nsci = \"5254001234010001\"\n[[secy.rx.sa]]\nan = 0\nkey = \"AD7A2BD03EAC835A6F620FDCB506B345\"\n".to_string(),
            "links: several links need [mka]",
        ),
        (
            format!("[ports]\nplain = \"p0\"\n[[links]]\nsecure = \"s0\"\n[[links]]\nsecure = \"s1\"\n[secy]\nsci = \"5254001234010001\"\n[mka]\nactivation_key = \"{ak}\"\n"),
            "secy.sci: not with several links",
        ),
        (
            format!("{ports}[secy]\nvlan_in_clear = 1\n[monitor]\n[mka]\nactivation_key = \"{ak}\"\n"),
            "monitor: the link monitor's probes cannot travel with secy.vlan_in_clear > 0",
        ),
    ];
    for (cfg, want) in cases {
        crate::pcap_cli::write_config(&c, &cfg);
        let (code, err) = forward(&c, &[]);
        assert_eq!(code, Some(2), "{want}: {err}");
        assert!(err.contains(want), "expected {want:?} in {err:?}");
        let cak = ak.split('.').nth(2).unwrap();
        assert!(!err.contains(cak), "the CAK leaked into: {err}");
    }
}

#[test]
fn forward_refuses_readable_key_files() {
    let d = TempDir::new("fwdkey");
    let key = d.path("link.key");
    std::fs::write(&key, format!("{}\n", activation_key())).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = d.path("f.toml");
    std::fs::write(
        &c,
        "[ports]\nplain = \"nosuchplain0\"\nsecure = \"nosuchsec0\"\n[secy]\n[mka]\nactivation_key_file = \"link.key\"\n",
    )
    .unwrap();
    let (code, err) = forward(&c, &[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("mka.activation_key_file") && err.contains("chmod 600"),
        "{err}"
    );
    // With the explicit override the key is accepted; start-up then stops at the ports.
    let (code, err) = forward(&c, &["--unsafe-key-permissions"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("nosuchplain0") && err.contains("does not exist"),
        "{err}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, err) = forward(&c, &[]);
    assert!(err.contains("nosuchplain0"), "{err}");
}

#[test]
fn forward_refuses_readable_configs_with_inline_keys() {
    let d = TempDir::new("fwdcfgmode");
    let c = d.path("f.toml");
    let ak = activation_key();
    let ports = "[ports]\nplain = \"nosuchplain0\"\nsecure = \"nosuchsec0\"\n";
    crate::pcap_cli::write_config(
        &c,
        format!("{ports}[secy]\n[mka]\nactivation_key = \"{ak}\"\n"),
    );
    std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, err) = forward(&c, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("mka.activation_key: config file")
            && err.contains("(mode 640)")
            && err.contains("chmod 600"),
        "{err}"
    );
    assert!(
        !err.contains(ak.split('.').nth(2).unwrap()),
        "the CAK leaked: {err}"
    );
    // The same override as for key files; start-up then stops at the ports.
    let (code, err) = forward(&c, &["--unsafe-key-permissions"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("nosuchplain0"), "{err}");
    // Without a key inline the config may be world-readable (the key file may not).
    let key = d.path("link.key");
    crate::pcap_cli::write_config(&key, format!("{ak}\n"));
    std::fs::write(
        &c,
        format!("{ports}[secy]\n[mka]\nactivation_key_file = \"link.key\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = forward(&c, &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("nosuchplain0"), "{err}");
}

#[test]
fn forward_names_unknown_keys_in_ports() {
    let d = TempDir::new("fwdports");
    let c = d.path("f.toml");
    std::fs::write(
        &c,
        "[ports]\nplain = \"nosuchplain0\"\nscure = \"nosuchsec0\"\n[secy]\n",
    )
    .unwrap();
    let (code, err) = forward(&c, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("ports.scure: unknown key; known keys here: plain, secure"),
        "{err}"
    );
}

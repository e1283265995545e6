//! Helpers shared by the test modules: the control socket and `macsec status` of a lab's
//! forwarder, and raw frames injected into a namespace's interface.

use macsec_forward::io::afpacket::{AfPacketTx, TxConfig};
use macsec_forward::io::iface::Interface;
use macsec_forward::io::netns::run_in;
use macsec_forward::io::TxPort;
use macsec_testkit::lab::{Lab, Side};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_macsec");

/// The control socket of `side`: the default, `<run_dir>/<config stem>.sock`.
pub(crate) fn socket(lab: &Lab, side: Side) -> PathBuf {
    let stem = lab.config_path(side);
    let stem = stem.file_stem().unwrap().to_str().unwrap();
    lab.dir.join("run").join(format!("{stem}.sock"))
}

/// `macsec status ARGS` (no colour).
pub(crate) fn status(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("status")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// `macsec status --socket S --json`: (exit code, this forwarder's document).
pub(crate) fn status_json(sock: &Path) -> (Option<i32>, Value) {
    let o = status(&["--socket", sock.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    // Always an array, one element per forwarder asked.
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v:#}");
    (o.status.code(), v[0].clone())
}

/// Sends raw frames out of `ifname` in namespace `ns`.
pub(crate) fn inject(ns: &str, ifname: &str, frames: &[Vec<u8>]) {
    let ifname = ifname.to_string();
    let mut tx = run_in(ns, move || {
        let i = Interface::lookup(&ifname).expect("lookup");
        AfPacketTx::open(&i, &TxConfig::default()).expect("inject socket")
    })
    .expect("setns");
    for f in frames {
        let ok = tx
            .send_with(&mut |slot| {
                slot[..f.len()].copy_from_slice(f);
                Some(0..f.len())
            })
            .expect("send");
        assert!(ok);
    }
    tx.flush().expect("flush");
}

/// The `macsec` binary in `dir` (a hard link or a copy, mode 0755), for a test
/// that runs it as another user: the build directory may sit under a directory that
/// only root can enter (a clone in `/root` or in a `mktemp -d` directory), as an
/// installed binary would not.
pub(crate) fn bin_for_other_users(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let to = dir.join("macsec");
    // A hard link where the file system allows it (instant), else a copy; renamed into
    // place, as a copy that another process runs cannot be written to.
    let tmp = dir.join(format!(".macsec.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(BIN, &tmp).is_err() {
        std::fs::copy(BIN, &tmp).expect("copy the macsec binary");
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &to).expect("rename the copy of the macsec binary");
    to
}

//! Locks on what a nonce depends on, shared by every forwarder on the host: each port
//! (by network namespace and interface name) and each static transmit key (by SCI and
//! key check value). A second forwarder on the same port, or with the same SCI and key
//! under another configuration file, refuses to start and names the one running.
//!
//! A lock is `<run_dir>/<name>.lock`, held with `flock` while the forwarder runs (the
//! kernel releases it when the process dies, SIGKILL included) and holding the owner's
//! pid and configuration path. It is removed at a clean exit; a lock file whose path no
//! longer names the locked file (removed and made anew meanwhile) is locked again.

use macsec::wire::Sci;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a lock protects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockKey {
    /// A port: the interface `ifname` of the network namespace with inode `netns`.
    Port {
        /// Interface name.
        ifname: String,
        /// Inode of the network namespace (names repeat across namespaces).
        netns: u64,
        /// "plain" or "secure", for messages.
        role: &'static str,
    },
    /// A static transmit key: its SCI and key check value.
    Key {
        /// Transmit SCI.
        sci: Sci,
        /// Key check value (see `PnStore`).
        check: [u8; 8],
    },
}

impl LockKey {
    fn file_name(&self) -> String {
        match self {
            LockKey::Port { ifname, netns, .. } => format!("port-{netns}-{ifname}.lock"),
            LockKey::Key { sci, check } => format!("key-{sci}-{}.lock", hex::encode(check)),
        }
    }

    fn what(&self) -> String {
        match self {
            LockKey::Port { ifname, role, .. } => format!("{role} port {ifname}"),
            LockKey::Key { sci, check } => format!(
                "the static key with check value {} on SCI {sci}",
                hex::encode(check)
            ),
        }
    }
}

/// The inode of this process's network namespace.
pub fn netns_inode() -> u64 {
    std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino())
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another forwarder holds it.
    #[error("{what} is in use by another `macsec forward` ({owner}); two forwarders on one port, or with one SCI and key, would send the same packet numbers. Stop the other one first")]
    InUse {
        /// What the lock protects.
        what: String,
        /// Who holds it: pid and configuration, as it wrote them.
        owner: String,
    },
    /// The run directory or a lock file could not be made.
    #[error("lock directory {dir}: {source}; create it writable for this user (systemd: RuntimeDirectory=macsec), or set [forward] run_dir")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Locks held for the life of a forwarder.
#[derive(Debug)]
pub struct Locks {
    held: Vec<(PathBuf, File)>,
}

impl Locks {
    /// Takes every lock of `keys` in `dir` for the forwarder of `config`, or none.
    pub fn acquire(dir: &Path, keys: &[LockKey], config: &Path) -> Result<Locks, LockError> {
        let derr = |source| LockError::Dir {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(derr)?;
        let mut held = Vec::new();
        for k in keys {
            let path = dir.join(k.file_name());
            let f = lock_one(&path, k).map_err(|e| match e {
                Taken::InUse(owner) => LockError::InUse {
                    what: k.what(),
                    owner,
                },
                Taken::Io(source) => LockError::Dir {
                    dir: dir.to_path_buf(),
                    source,
                },
            })?;
            let mut f = f;
            let _ = f.set_len(0);
            let _ = writeln!(f, "pid {} config {}", std::process::id(), config.display());
            held.push((path, f));
        }
        Ok(Locks { held })
    }

    /// The problem taking `keys` would meet, without creating anything (`--check-only`).
    pub fn check(dir: &Path, keys: &[LockKey]) -> Vec<LockError> {
        keys.iter()
            .filter_map(|k| {
                let path = dir.join(k.file_name());
                let f = File::open(&path).ok()?;
                match f.try_lock() {
                    Ok(()) => None,
                    Err(TryLockError::WouldBlock) => Some(LockError::InUse {
                        what: k.what(),
                        owner: owner_of(&path),
                    }),
                    Err(TryLockError::Error(_)) => None,
                }
            })
            .collect()
    }
}

impl Drop for Locks {
    fn drop(&mut self) {
        for (path, _f) in self.held.drain(..) {
            // Still locked by us while it is removed: a forwarder that opened the old
            // file sees the path changed and locks anew.
            let _ = std::fs::remove_file(&path);
        }
    }
}

enum Taken {
    InUse(String),
    Io(std::io::Error),
}

fn owner_of(path: &Path) -> String {
    let mut s = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut s));
    match s.trim() {
        "" => "pid unknown".into(),
        t => t.to_owned(),
    }
}

fn lock_one(path: &Path, _k: &LockKey) -> Result<File, Taken> {
    for _ in 0..16 {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(Taken::Io)?;
        match f.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(Taken::InUse(owner_of(path))),
            Err(TryLockError::Error(e)) => return Err(Taken::Io(e)),
        }
        // The file we locked must still be the one at the path.
        let same = match (f.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            return Ok(f);
        }
    }
    Err(Taken::Io(std::io::Error::other(
        "the lock file keeps being replaced",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("macsec-locks-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_second_holder_is_refused_and_named() {
        let d = dir("second");
        let k = [LockKey::Port {
            ifname: "eth2".into(),
            netns: 42,
            role: "secure",
        }];
        let a = Locks::acquire(&d, &k, Path::new("/etc/macsec/a.toml")).unwrap();
        let e = Locks::acquire(&d, &k, Path::new("/etc/macsec/copy.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("secure port eth2 is in use by another `macsec forward` (pid "),
            "{msg}"
        );
        assert!(msg.contains("config /etc/macsec/a.toml"), "{msg}");
        assert_eq!(Locks::check(&d, &k).len(), 1);
        drop(a);
        // Released and removed: the next one gets it, and a check finds nothing.
        assert!(Locks::check(&d, &k).is_empty());
        let b = Locks::acquire(&d, &k, Path::new("/etc/macsec/copy.toml")).unwrap();
        drop(b);
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            0,
            "no lock file left behind"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn keys_and_ports_are_separate_locks() {
        let d = dir("keys");
        let sci: Sci = "02000000f1010001".parse().unwrap();
        let k1 = LockKey::Key { sci, check: [1; 8] };
        let k2 = LockKey::Key { sci, check: [2; 8] };
        let _a = Locks::acquire(&d, std::slice::from_ref(&k1), Path::new("a")).unwrap();
        let _b = Locks::acquire(&d, std::slice::from_ref(&k2), Path::new("b")).unwrap();
        let e = Locks::acquire(&d, &[k2, k1], Path::new("c")).unwrap_err();
        assert!(
            e.to_string()
                .contains("check value 0202020202020202 on SCI 02000000f1010001"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}

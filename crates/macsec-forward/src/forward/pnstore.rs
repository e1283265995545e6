//! Persistent PN high-water marks, so a static-key transmit SA never reuses a PN across
//! restarts, crashes or power loss (802.1AE 10.5.2: a PN is used once per SAK).
//!
//! The store reserves PNs in blocks. Before a transmit SA may use a PN, a ceiling at or
//! above it is on disk (written to a temporary file, fsynced, renamed over the store,
//! and the directory fsynced). After any restart the SA starts above the stored ceiling,
//! so at most one block of PNs is skipped per restart and none is ever repeated.
//!
//! Entries are keyed by (SCI, AN, key check value). The check value is the first 8
//! octets of AES(SAK, constant) for a constant that can never be a GCM counter block of
//! a frame, so it identifies the key without revealing anything an attacker can use.
//! Entries of keys no longer configured are kept: switching back to an old key resumes
//! above its old mark.
//!
//! File format (text, one entry per line):
//! `v1 <sci hex> <an> <check hex> <highest reserved PN>`.

use macsec::crypto::SecretKey;
use macsec::wire::Sci;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Identity of one transmit SA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaId {
    /// Transmit SCI.
    pub sci: Sci,
    /// Association Number.
    pub an: u8,
    /// Key check value (see the module docs).
    pub check: [u8; 8],
}

impl SaId {
    /// The identity of the SA `an` of `sci` with `key`.
    pub fn new(sci: Sci, an: u8, key: &SecretKey) -> SaId {
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        // Counter field 0x7465FFFF: far beyond any frame's GCM counter (< 2^13).
        let mut block = aes::Block::from(*b"macsec-pnstate\xff\xff");
        match key.len() {
            16 => aes::Aes128::new_from_slice(key.expose_secret())
                .expect("16-octet key")
                .encrypt_block(&mut block),
            _ => aes::Aes256::new_from_slice(key.expose_secret())
                .expect("32-octet key")
                .encrypt_block(&mut block),
        }
        let mut check = [0u8; 8];
        check.copy_from_slice(&block[..8]);
        SaId { sci, an, check }
    }
}

/// Errors of the PN store. Any of them stops the forwarder: sending without a durable
/// high-water mark could reuse a nonce after the next crash.
#[derive(Debug, thiserror::Error)]
pub enum PnStoreError {
    /// The file could not be read or written.
    #[error("PN state file {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file exists but cannot be parsed.
    #[error("PN state file {path} line {line} is corrupt; refusing to start, since the PNs already used are unknown. Restore the file, or change every SAK before removing it")]
    Corrupt {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// Another process holds the store: two forwarders with the same keys and SCI
    /// would send the same PNs.
    #[error("PN state file {path} is in use by another running `macsec forward` (it holds {lock}); two forwarders with the same keys and SCI would send the same PNs. Stop the other one, or give this one its own [forward] state_file, SCI and keys")]
    InUse {
        /// Store.
        path: PathBuf,
        /// Lock file.
        lock: PathBuf,
    },
    /// No PN left for this SA.
    #[error("transmit SA AN {an} has used its last PN (stored high-water mark {mark:#x}); configure a new key")]
    Exhausted {
        /// Association Number.
        an: u8,
        /// Stored mark.
        mark: u64,
    },
}

/// The entries of a state file's text.
fn parse(path: &Path, text: &str) -> Result<Vec<Entry>, PnStoreError> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let corrupt = || PnStoreError::Corrupt {
            path: path.to_path_buf(),
            line: i + 1,
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 5 || f[0] != "v1" {
            return Err(corrupt());
        }
        let sci: Sci = f[1].parse().map_err(|_| corrupt())?;
        let an: u8 = f[2].parse().ok().filter(|a| *a < 4).ok_or_else(corrupt)?;
        let mut check = [0u8; 8];
        hex::decode_to_slice(f[3], &mut check).map_err(|_| corrupt())?;
        let ceiling: u64 = f[4].parse().map_err(|_| corrupt())?;
        entries.push(Entry {
            id: SaId { sci, an, check },
            ceiling,
        });
    }
    Ok(entries)
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: SaId,
    ceiling: u64,
}

/// The PN high-water mark store of one forwarder.
#[derive(Debug)]
pub struct PnStore {
    path: PathBuf,
    entries: Vec<Entry>,
    /// `<store>.lock`, exclusively locked while this value lives (released by the
    /// kernel when the process dies, SIGKILL included).
    _lock: std::fs::File,
}

impl PnStore {
    /// Opens (or, if it does not exist, starts) the store at `path`.
    pub fn open(path: &Path) -> Result<PnStore, PnStoreError> {
        let io = |source| PnStoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut lock_name = path.as_os_str().to_owned();
        lock_name.push(".lock");
        let lock_path = PathBuf::from(lock_name);
        let lock = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&lock_path)
                .map_err(|source| PnStoreError::Io {
                    path: lock_path.clone(),
                    source,
                })?
        };
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(PnStoreError::InUse {
                    path: path.to_path_buf(),
                    lock: lock_path,
                })
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(PnStoreError::Io {
                    path: lock_path,
                    source,
                })
            }
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let entries = parse(path, &text)?;
        Ok(PnStore {
            path: path.to_path_buf(),
            entries,
            _lock: lock,
        })
    }

    /// Takes the marks of another state file (an older location of this state) as
    /// marks of this one where they are higher, so no PN below them is used again.
    /// A missing file adds nothing; a corrupt one is an error, as for the store itself.
    pub fn import(&mut self, other: &Path) -> Result<usize, PnStoreError> {
        if !other.exists() || other == self.path {
            return Ok(0);
        }
        let text = std::fs::read_to_string(other).map_err(|source| PnStoreError::Io {
            path: other.to_path_buf(),
            source,
        })?;
        let entries = parse(other, &text)?;
        let n = entries.len();
        for e in entries {
            match self.entries.iter_mut().find(|x| x.id == e.id) {
                Some(x) => x.ceiling = x.ceiling.max(e.ceiling),
                None => self.entries.push(e),
            }
        }
        if n > 0 {
            self.persist()?;
        }
        Ok(n)
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that the state file at `path`, if it exists, can be read and is not
    /// corrupt; takes no lock and changes nothing (`--check-only`).
    pub fn check(path: &Path) -> Result<(), PnStoreError> {
        match std::fs::read_to_string(path) {
            Ok(t) => parse(path, &t).map(drop),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PnStoreError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The highest PN that may already have been used for `id`, if any is recorded.
    pub fn mark(&self, id: &SaId) -> Option<u64> {
        self.entries.iter().find(|e| e.id == *id).map(|e| e.ceiling)
    }

    /// Where SA `id` may start: `configured`, or above its stored mark. Reserves a block
    /// of `block` PNs from there (up to `max`) on disk and returns `(start, ceiling)`.
    pub fn start(
        &mut self,
        id: SaId,
        configured: u64,
        block: u64,
        max: u64,
    ) -> Result<(u64, u64), PnStoreError> {
        let start = match self.mark(&id) {
            Some(m) if m >= max => return Err(PnStoreError::Exhausted { an: id.an, mark: m }),
            Some(m) => configured.max(m + 1),
            None => configured,
        };
        let ceiling = start.saturating_add(block.max(1) - 1).min(max);
        self.set(id, ceiling)?;
        Ok((start, ceiling))
    }

    /// Records that PNs up to `ceiling` may be used for `id`, durably, before returning.
    pub fn set(&mut self, id: SaId, ceiling: u64) -> Result<(), PnStoreError> {
        match self.entries.iter_mut().find(|e| e.id == id) {
            Some(e) => e.ceiling = e.ceiling.max(ceiling),
            None => self.entries.push(Entry { id, ceiling }),
        }
        self.persist()
    }

    fn persist(&self) -> Result<(), PnStoreError> {
        let io = |source| PnStoreError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            let mut s = String::from(
                "# macsec transmit PN high-water marks (do not edit; see the README)\n",
            );
            for e in &self.entries {
                s.push_str(&format!(
                    "v1 {} {} {} {}\n",
                    e.id.sci,
                    e.id.an,
                    hex::encode(e.id.check),
                    e.ceiling
                ));
            }
            f.write_all(s.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("macsec-pnstore-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.join("pn.state")
    }

    #[test]
    fn restarts_continue_above_the_mark() {
        let p = tmp("restart");
        let key = SecretKey::from_hex("AD7A2BD03EAC835A6F620FDCB506B345").unwrap();
        let id = SaId::new("5254001234010001".parse().unwrap(), 0, &key);
        let mut s = PnStore::open(&p).unwrap();
        assert_eq!(s.start(id, 1, 1000, u32::MAX as u64).unwrap(), (1, 1000));
        s.set(id, 2000).unwrap();
        // A second forwarder on the same store is refused while the first one runs.
        assert!(matches!(PnStore::open(&p), Err(PnStoreError::InUse { .. })));
        // "Crash": reopen from disk.
        drop(s);
        let mut s = PnStore::open(&p).unwrap();
        assert_eq!(s.mark(&id), Some(2000));
        assert_eq!(s.start(id, 1, 1000, u32::MAX as u64).unwrap(), (2001, 3000));
        // A different key on the same SA starts where its configuration says.
        let other = SaId::new(
            id.sci,
            0,
            &SecretKey::from_hex("00112233445566778899AABBCCDDEEFF").unwrap(),
        );
        assert_ne!(other.check, id.check);
        assert_eq!(s.start(other, 5, 10, u32::MAX as u64).unwrap(), (5, 14));
        // Near the end of the space the block is cut; at the end the SA refuses.
        s.set(id, u32::MAX as u64 - 3).unwrap();
        assert_eq!(
            s.start(id, 1, 1000, u32::MAX as u64).unwrap(),
            (u32::MAX as u64 - 2, u32::MAX as u64)
        );
        assert!(matches!(
            s.start(id, 1, 1000, u32::MAX as u64),
            Err(PnStoreError::Exhausted { .. })
        ));
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }

    #[test]
    fn corrupt_file_refuses() {
        let p = tmp("corrupt");
        std::fs::write(
            &p,
            "v1 5254001234010001 0 0011223344556677 12\nv1 garbage\n",
        )
        .unwrap();
        let e = PnStore::open(&p).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }

    #[test]
    fn check_value_is_not_the_ghash_key() {
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let key = SecretKey::from_hex("AD7A2BD03EAC835A6F620FDCB506B345").unwrap();
        let id = SaId::new(Sci::default(), 0, &key);
        let mut h = aes::Block::default();
        aes::Aes128::new_from_slice(key.expose_secret())
            .unwrap()
            .encrypt_block(&mut h);
        assert_ne!(&h[..8], &id.check[..]);
    }
}

//! The output file: never the input, and replaced only by a whole, synced capture.
//!
//! A regular output is written to a temporary file in its own directory (created
//! `O_EXCL` with mode 0600 under a name with the pid and a random number) and renamed
//! over the output only when the run succeeded, so that a failed run leaves any existing
//! output as it was and no temporary file behind. On success the temporary file gets the
//! mode of the output it replaces (or that of a new file under the umask), is synced, and
//! then renamed. An output that is a symlink is followed: its target is replaced. An
//! existing output that is not a regular file (`/dev/null`, a FIFO) is written directly.

use super::PcapError;
use std::fs::{self, File, Metadata, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where and how the output gets written; decided before anything is opened for writing.
#[derive(Debug)]
pub struct Plan {
    /// The output as the user named it (for messages).
    shown: PathBuf,
    /// The file to replace (the symlink's target if the output is a symlink).
    target: PathBuf,
    /// Mode of the finished file.
    mode: u32,
    /// The output exists and is not a regular file: write it in place.
    direct: bool,
}

/// An output being written; the temporary file goes away on drop unless committed.
#[derive(Debug)]
pub struct Pending {
    temp: Option<PathBuf>,
    target: PathBuf,
    shown: PathBuf,
    mode: u32,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(t) = self.temp.take() {
            let _ = fs::remove_file(t);
        }
    }
}

/// The umask of this process, from `/proc/self/status` (0o022 where it cannot be read).
fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// Refuses `output` if it is the same file as the open input (`input_meta`), by device
/// and inode, so `x`, `./x`, `/abs/x`, a symlink and a hard link are all caught; then
/// says how the output will be written. Opens nothing.
pub fn plan(input: &Path, input_meta: &Metadata, output: &Path) -> Result<Plan, PcapError> {
    let existing = fs::metadata(output).ok();
    if let Some(m) = &existing {
        if m.dev() == input_meta.dev() && m.ino() == input_meta.ino() {
            return Err(PcapError::SameFile {
                input: input.to_path_buf(),
                output: output.to_path_buf(),
            });
        }
        if m.is_dir() {
            return Err(PcapError::Open {
                path: output.to_path_buf(),
                source: std::io::Error::from(ErrorKind::IsADirectory),
            });
        }
    }
    let is_link = fs::symlink_metadata(output).is_ok_and(|m| m.file_type().is_symlink());
    let target = if is_link {
        // A dangling link is replaced itself.
        fs::canonicalize(output).unwrap_or_else(|_| output.to_path_buf())
    } else {
        output.to_path_buf()
    };
    let (mode, direct) = match &existing {
        Some(m) if m.is_file() => (m.mode() & 0o777, false),
        Some(_) => (0, true),
        None => (0o666 & !umask(), false),
    };
    Ok(Plan {
        shown: output.to_path_buf(),
        target,
        mode,
        direct,
    })
}

impl Plan {
    /// Opens the file to write: a new temporary file beside the target, or the target
    /// itself if it is not a regular file.
    pub fn open(&self) -> Result<(File, Pending), PcapError> {
        let mut pending = Pending {
            temp: None,
            target: self.target.clone(),
            shown: self.shown.clone(),
            mode: self.mode,
        };
        if self.direct {
            let f = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&self.target)
                .map_err(|source| PcapError::Open {
                    path: self.shown.clone(),
                    source,
                })?;
            return Ok((f, pending));
        }
        let dir = match self.target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| PcapError::Open {
                path: self.shown.clone(),
                source: std::io::Error::new(ErrorKind::InvalidInput, "not a file name"),
            })?;
        let pid = std::process::id();
        let mut tries = 0;
        loop {
            let nonce = getrandom::u64().unwrap_or_else(|_| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
                    .wrapping_add(tries)
            });
            let temp = dir.join(format!(".{name}.{pid}.{nonce:016x}.tmp"));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
            {
                Ok(f) => {
                    pending.temp = Some(temp);
                    return Ok((f, pending));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists && tries < 8 => tries += 1,
                Err(source) => return Err(PcapError::TempFile { dir, source }),
            }
        }
    }
}

impl Pending {
    /// Gives the finished file its mode, syncs it and renames it over the target.
    pub fn commit(mut self, f: File) -> Result<(), PcapError> {
        let shown = self.shown.clone();
        let err = |reason: std::io::Error| PcapError::Write {
            path: shown.clone(),
            reason: reason.to_string(),
        };
        let Some(temp) = self.temp.clone() else {
            return f.sync_all().or_else(|e| {
                // Devices and FIFOs need no sync and may refuse one.
                if e.kind() == ErrorKind::InvalidInput {
                    Ok(())
                } else {
                    Err(err(e))
                }
            });
        };
        f.set_permissions(Permissions::from_mode(self.mode))
            .map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        fs::rename(&temp, &self.target).map_err(err)?;
        self.temp = None;
        // The rename is durable once the directory is synced; it is done either way.
        if let Some(dir) = self.target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

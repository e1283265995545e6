//! The control socket: a Unix stream socket, one request and one answer per connection.

use super::{answer_error, answer_line, read_request, ControlError, Request};
use super::{ANSWER_TIMEOUT, MAX_CONNECTIONS};
use crossbeam::channel::Sender;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Mode of the socket: owner and group may connect.
pub const SOCKET_MODE: u32 = 0o660;
/// Mode of a directory the server creates.
pub const DIR_MODE: u32 = 0o755;

/// A listening control socket. Dropping it stops the accept thread and removes the
/// socket file (if it is still the one this server made).
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    /// Device and inode of the socket file this server bound.
    id: (u64, u64),
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Counts a connection being served; the count drops with it.
pub(super) struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot if fewer than [`MAX_CONNECTIONS`] are taken.
    pub(super) fn take(n: &Arc<AtomicUsize>) -> Option<Slot> {
        let prev = n.fetch_add(1, Ordering::AcqRel);
        if prev >= MAX_CONNECTIONS {
            n.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(n.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Makes room for the socket at `path`: creates its directory, removes a stale socket,
/// refuses a live one or anything that is not a socket.
fn prepare(path: &Path) -> Result<(), ControlError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(|source| ControlError::Directory {
                    dir: dir.to_path_buf(),
                    source,
                })?;
        }
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ControlError::Stale {
                path: path.to_path_buf(),
                what: "cannot inspect it",
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ControlError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(ControlError::InUse {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(
                "control socket {}: removing a stale socket (no forwarder listens on it)",
                path.display()
            );
            std::fs::remove_file(path).map_err(|source| ControlError::Stale {
                path: path.to_path_buf(),
                what: "cannot remove the stale socket",
                source,
            })
        }
        Err(source) => Err(ControlError::Stale {
            path: path.to_path_buf(),
            what: "cannot check whether another forwarder listens on it",
            source,
        }),
    }
}

impl ControlServer {
    /// Listens on `path` (mode 0660) and passes every valid request to `to`. See the
    /// module documentation for the rules on an existing socket.
    pub fn start(path: &Path, to: Sender<Request>) -> Result<ControlServer, ControlError> {
        prepare(path)?;
        let sock_err = |what, source| ControlError::Socket {
            path: path.to_path_buf(),
            what,
            source,
        };
        let listener = UnixListener::bind(path).map_err(|e| match e.kind() {
            // Another forwarder bound it between our check and our bind.
            std::io::ErrorKind::AddrInUse => ControlError::InUse {
                path: path.to_path_buf(),
            },
            _ => sock_err("bind", e),
        })?;
        let id = file_id(path).unwrap_or_default();
        let cleanup = |e| {
            let _ = std::fs::remove_file(path);
            e
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(|e| cleanup(sock_err("set the mode of", e)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || accept_loop(listener, to, stop2))
            .map_err(|source| {
                cleanup(ControlError::Thread {
                    what: "control socket",
                    source,
                })
            })?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            id,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let ours = file_id(&self.path) == Some(self.id);
        // Wake the accept thread with a connection of our own; join it only if that
        // reached our listener (a replaced or removed file would leave it blocked).
        let woke = ours && UnixStream::connect(&self.path).is_ok();
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
        if let (true, Some(t)) = (woke, self.thread.take()) {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: UnixListener, to: Sender<Request>, stop: Arc<AtomicBool>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let Ok(mut conn) = conn else {
            // Out of descriptors or memory: wait instead of spinning.
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        };
        let Some(slot) = Slot::take(&busy) else {
            // Never block the accept thread on a client: a short answer fits in the
            // socket buffer.
            let _ = conn.set_nonblocking(true);
            let _ = conn.write_all(
                format!(
                    "{}\n",
                    answer_error("busy: too many control connections; try again")
                )
                .as_bytes(),
            );
            continue;
        };
        let to = to.clone();
        let spawned = std::thread::Builder::new()
            .name("control-conn".into())
            .spawn(move || {
                let _slot = slot;
                serve(conn, &to);
            });
        if let Err(e) = spawned {
            tracing::warn!("control socket: cannot serve a connection: {e}");
        }
    }
}

/// One connection: read the request line (2 s at most), ask the control loop, answer.
fn serve(mut conn: UnixStream, to: &Sender<Request>) {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let reader = match conn.try_clone() {
        Ok(r) => r,
        Err(_) => return,
    };
    let set_timeout = |d| reader.set_read_timeout(Some(d));
    let Some(line) = read_request(&mut &reader, &set_timeout, deadline) else {
        return;
    };
    let answer = answer_line(&line, to);
    let _ = conn.set_write_timeout(Some(ANSWER_TIMEOUT));
    let _ = conn.write_all(answer.as_bytes());
    let _ = conn.write_all(b"\n");
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

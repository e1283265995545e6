//! Named network namespaces, compatible with iproute2's `ip netns`.
//!
//! A named namespace is an nsfs file bind-mounted on `/run/netns/NAME`, with
//! `/run/netns` itself a shared mount, exactly as `ip netns add` leaves it, so `ip netns`
//! (where installed) and this module see the same namespaces. Entering one is the
//! forwarder's own [`macsec_forward::io::netns::run_in`]; [`Netns`] owns one and deletes
//! it on drop.

use super::error::{errno, Error, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where named namespaces live.
pub const RUN_DIR: &str = "/run/netns";

/// Serializes the set-up of the [`RUN_DIR`] mount within this process.
static RUN_DIR_LOCK: Mutex<()> = Mutex::new(());

pub use macsec_forward::io::netns::path_of;

fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "invalid namespace name",
        ));
    }
    Ok(())
}

/// Makes [`RUN_DIR`] exist and be a shared mount point (bind-mounting it on itself
/// first if it is not a mount point yet), as iproute2 does.
fn prepare_run_dir() -> io::Result<()> {
    let _guard = RUN_DIR_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(RUN_DIR)?;
    let share = || {
        mount(
            None::<&str>,
            RUN_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match share() {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            mount(
                Some(RUN_DIR),
                RUN_DIR,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(errno)?;
            share().map_err(errno)
        }
        Err(e) => Err(errno(e)),
    }
}

/// Creates the named namespace `name` (`ip netns add NAME`). Fails with `EEXIST` if it
/// exists. The new namespace has only `lo`, down.
pub fn add(name: &str) -> Result<()> {
    let fail = |what: &str, e: io::Error| Error::ns(name, format!("add: {what}"), e);
    check_name(name).map_err(|e| fail("name", e))?;
    prepare_run_dir().map_err(|e| fail(&format!("prepare {RUN_DIR}"), e))?;
    let path = path_of(name);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&path)
        .map_err(|e| fail(&format!("create {}", path.display()), e))?;
    let made = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(errno)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(errno)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    });
    made.map_err(|e| {
        let _ = fs::remove_file(&path);
        fail("unshare and bind-mount", e)
    })
}

/// True if `name` is a mounted namespace file.
pub fn exists(name: &str) -> bool {
    nix::sys::statfs::statfs(&path_of(name))
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}

/// The names in [`RUN_DIR`], sorted (`ip netns list`).
pub fn list() -> Result<Vec<String>> {
    let dir = match fs::read_dir(RUN_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::op(format!("list {RUN_DIR}"), e)),
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The (device, inode) pair identifying a namespace.
fn ns_id(path: &Path) -> io::Result<(u64, u64)> {
    let m = fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// The processes, other than this one, with a thread inside namespace `name`
/// (`ip netns pids NAME`, which looks at main threads only).
pub fn pids(name: &str) -> Result<Vec<u32>> {
    let id = ns_id(&path_of(name)).map_err(|e| Error::ns(name, "pids: stat", e))?;
    Ok(pids_in(id))
}

fn pids_in(id: (u64, u64)) -> Vec<u32> {
    let me = std::process::id();
    let Ok(proc) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in proc.filter_map(|e| e.ok()) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let inside = |p: PathBuf| ns_id(&p).map(|x| x == id).unwrap_or(false);
        let hit = inside(e.path().join("ns/net"))
            || fs::read_dir(e.path().join("task"))
                .map(|tasks| {
                    tasks
                        .filter_map(|t| t.ok())
                        .any(|t| inside(t.path().join("ns/net")))
                })
                .unwrap_or(false);
        if hit {
            out.push(pid);
        }
    }
    out
}

/// Deletes namespace `name` (`ip netns del NAME`): SIGKILLs every other process that has
/// a thread inside it (waiting up to 2 s for them to go), then unmounts and removes the
/// file. The kernel destroys the namespace, and with it its interfaces and their veth
/// peers elsewhere, once the last reference (a socket, say) is gone, asynchronously.
pub fn del(name: &str) -> Result<()> {
    check_name(name).map_err(|e| Error::ns(name, "del: name", e))?;
    let path = path_of(name);
    let id = ns_id(&path).map_err(|e| Error::ns(name, "del: stat", e))?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = pids_in(id);
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    umount2(&path, MntFlags::MNT_DETACH).map_err(|e| Error::ns(name, "del: umount", errno(e)))?;
    fs::remove_file(&path).map_err(|e| Error::ns(name, "del: remove", e))
}

/// Deletes every namespace named `PREFIX<pid>...` whose `<pid>` (the digits right after
/// `prefix`) is no longer a running process: what killed runs left behind. Returns the
/// names deleted.
pub fn sweep_stale(prefix: &str) -> Vec<String> {
    let mut gone = Vec::new();
    for name in list().unwrap_or_default() {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let Ok(pid) = digits.parse::<u32>() else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() && del(&name).is_ok() {
            gone.push(name);
        }
    }
    gone
}

/// Runs `f` on a new thread that has joined namespace `ns` and returns its result
/// (the forwarder's [`macsec_forward::io::netns::run_in`], with this module's error).
/// Sockets `f` creates stay in that namespace wherever they are used later. A panic in
/// `f` is propagated.
pub fn run_in<T, F>(ns: &str, f: F) -> Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    macsec_forward::io::netns::run_in(ns, f).map_err(|e| Error::ns(ns, "enter", e))
}

/// [`run_in`] for a closure returning an [`io::Result`]: its error becomes an [`Error`]
/// naming `ns` and `what`.
pub(crate) fn run_io<T, F>(ns: &str, what: &str, f: F) -> Result<T>
where
    F: FnOnce() -> io::Result<T> + Send,
    T: Send,
{
    run_in(ns, f)?.map_err(|e| Error::ns(ns, what, e))
}

/// Starts `cmd` inside namespace `ns` (`ip netns exec NS ...`, without its remount of
/// `/sys` and `/etc/netns` bind mounts): the child is forked from a thread that has
/// joined the namespace and so starts in it.
pub fn spawn_in(ns: &str, cmd: &mut Command) -> Result<Child> {
    let what = format!("spawn {:?}", cmd.get_program());
    run_io(ns, &what, || cmd.spawn())
}

/// Numbers the namespaces [`Netns::unique`] names within this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A named namespace owned by this process: deleted on drop (with the processes and
/// interfaces inside it; see [`del`]).
#[derive(Debug)]
pub struct Netns(String);

impl Netns {
    /// Creates namespace `name` (see [`add`]).
    pub fn add(name: &str) -> Result<Netns> {
        add(name)?;
        Ok(Netns(name.to_owned()))
    }

    /// Creates a namespace named `PREFIX<pid>-<n>-<tag>`, unique in this process; with
    /// the pid right after the prefix, [`sweep_stale`] can remove it once this process
    /// is gone.
    pub fn unique(prefix: &str, tag: &str) -> Result<Netns> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Netns::add(&format!("{prefix}{}-{n}-{tag}", std::process::id()))
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Netns {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = del(&self.0) {
            eprintln!("cleanup: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(path_of("x"), Path::new(RUN_DIR).join("x"));
        assert_eq!(path_of("/proc/1/ns/net"), Path::new("/proc/1/ns/net"));
        for bad in ["", ".", "..", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("nlt1-a").is_ok());
    }
}

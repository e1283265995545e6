//! Starting a program as an unprivileged user that keeps a few capabilities, the way
//! systemd's `User=` with `AmbientCapabilities=` (or `setpriv`) does.
//!
//! [`drop_privileges`] (and so [`spawn_unprivileged`]) changes the credentials of the
//! calling process for good, so it is meant for a dedicated helper process (for instance
//! the test binary re-executed), which then execs or spawns the program.

use super::error::{Error, Result};
use caps::{CapSet, CapsHashSet};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use std::process::{Child, Command};

pub use caps::Capability;

/// The `nobody` user and group id.
pub const NOBODY: u32 = 65534;

fn fail(what: &str, e: impl std::fmt::Display) -> Error {
    Error::op(
        format!("drop privileges: {what}"),
        std::io::Error::other(e.to_string()),
    )
}

/// Irreversibly turns the calling process (its calling thread, for the capability sets)
/// into `uid`/`gid` with no supplementary groups, holding only `keep` as permitted,
/// effective, inheritable, ambient and bounding capabilities, with `no_new_privs` set
/// (systemd's `NoNewPrivileges=yes`). A program it then execs (from a non-setuid file)
/// runs with the same user and gets `keep` as its effective capabilities through the
/// ambient set.
///
/// Must run as root (`CAP_SETUID`, `CAP_SETGID`, `CAP_SETPCAP`), on the thread that
/// later execs or spawns; other threads of the process lose their privileges too (the C
/// library changes the ids of every thread).
pub fn drop_privileges(uid: u32, gid: u32, keep: &[Capability]) -> Result<()> {
    let keep: CapsHashSet = keep.iter().copied().collect();
    // The bounding set can only shrink while CAP_SETPCAP is effective: first.
    for c in caps::all().difference(&keep) {
        caps::drop(None, CapSet::Bounding, *c).map_err(|e| fail(&format!("bounding -{c}"), e))?;
    }
    nix::sys::prctl::set_keepcaps(true).map_err(|e| fail("PR_SET_KEEPCAPS", e))?;
    setgroups(&[]).map_err(|e| fail("setgroups", e))?;
    let (g, u) = (Gid::from_raw(gid), Uid::from_raw(uid));
    setresgid(g, g, g).map_err(|e| fail(&format!("setresgid {gid}"), e))?;
    setresuid(u, u, u).map_err(|e| fail(&format!("setresuid {uid}"), e))?;
    // Keep-caps left the permitted set; the effective set is empty now.
    for set in [CapSet::Permitted, CapSet::Effective, CapSet::Inheritable] {
        caps::set(None, set, &keep).map_err(|e| fail(&format!("set {set:?}"), e))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| fail("clear ambient", e))?;
    for c in &keep {
        caps::raise(None, CapSet::Ambient, *c).map_err(|e| fail(&format!("ambient +{c}"), e))?;
    }
    nix::sys::prctl::set_keepcaps(false).map_err(|e| fail("PR_SET_KEEPCAPS off", e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| fail("PR_SET_NO_NEW_PRIVS", e))
}

/// [`drop_privileges`], then starts `cmd` (as that user, with `keep` effective).
pub fn spawn_unprivileged(
    cmd: &mut Command,
    uid: u32,
    gid: u32,
    keep: &[Capability],
) -> Result<Child> {
    drop_privileges(uid, gid, keep)?;
    cmd.spawn()
        .map_err(|e| Error::op(format!("spawn {:?} as {uid}:{gid}", cmd.get_program()), e))
}

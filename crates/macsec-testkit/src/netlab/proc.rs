//! Signals and bounded waits for processes (`kill`, `timeout`).

use super::error::{errno, Error, Result};
use nix::unistd::Pid;
use std::process::{Child, ExitStatus};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;

/// Sends `sig` to process `pid` (`kill -SIG PID`).
pub fn signal(pid: u32, sig: Signal) -> Result<()> {
    let raw = i32::try_from(pid).ok().filter(|p| *p > 0).ok_or_else(|| {
        Error::op(
            format!("pid {pid}: kill {sig}"),
            std::io::ErrorKind::InvalidInput.into(),
        )
    })?;
    nix::sys::signal::kill(Pid::from_raw(raw), sig)
        .map_err(|e| Error::op(format!("pid {pid}: kill {sig}"), errno(e)))
}

/// Waits up to `timeout` for `child` to exit; `None` if it is still running then.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let what = format!("pid {}: wait", child.id());
    loop {
        if let Some(st) = child.try_wait().map_err(|e| Error::op(what.clone(), e))? {
            return Ok(Some(st));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
}

/// Sends `child` SIGTERM, waits up to `grace` for it to exit, then SIGKILLs it and reaps
/// it. Returns its exit status.
pub fn terminate(child: &mut Child, grace: Duration) -> Result<ExitStatus> {
    if let Some(st) = child
        .try_wait()
        .map_err(|e| Error::op(format!("pid {}: wait", child.id()), e))?
    {
        return Ok(st);
    }
    // It may exit between the check and the signal: ESRCH is not an error then.
    let _ = signal(child.id(), Signal::SIGTERM);
    if let Some(st) = wait_timeout(child, grace)? {
        return Ok(st);
    }
    child
        .kill()
        .map_err(|e| Error::op(format!("pid {}: kill SIGKILL", child.id()), e))?;
    child
        .wait()
        .map_err(|e| Error::op(format!("pid {}: wait", child.id()), e))
}

/// What [`output_within`] collected.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything it wrote to its standard output (if piped).
    pub stdout: Vec<u8>,
    /// Everything it wrote to its standard error (if piped).
    pub stderr: Vec<u8>,
    /// It was still running after the timeout and was terminated.
    pub timed_out: bool,
}

/// Waits up to `timeout` for `child` to exit while reading its piped standard output
/// and error on threads (`timeout DURATION CMD`); a child still running then is
/// [`terminate`]d with a 1 s grace and `timed_out` is set.
pub fn output_within(mut child: Child, timeout: Duration) -> Result<Output> {
    fn drain(r: Option<impl std::io::Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let (status, timed_out) = match wait_timeout(&mut child, timeout)? {
        Some(st) => (st, false),
        None => (terminate(&mut child, Duration::from_secs(1))?, true),
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
    })
}

/// The value of `key` (`Uid:`, `CapEff:`, ...) in the text of a `/proc/PID/status` file,
/// its white space folded (`65534 65534 65534 65534`); empty if there is none.
pub fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

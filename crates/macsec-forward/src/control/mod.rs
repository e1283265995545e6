//! The operator surface of a forwarder: a control socket, a Prometheus endpoint and an
//! event log. None of it runs on the data path, and none of it can read key material.
//!
//! - [`ControlServer`]: a Unix socket (default `/run/macsec/<config stem>.sock`, mode
//!   0660) that answers status queries and takes the operator commands that are also
//!   signals (rekey, counters). `macsec status` is its client ([`query`]).
//! - [`MetricsServer`]: `GET /metrics` over HTTP in the Prometheus text format
//!   ([`render_metrics`] of the status), off unless `[metrics] listen` is set.
//! - [`EventLog`]: the last 50 link, MKA and failover events, each also one log line.
//! - [`counters`]: the one table from 802.1AE counter names to metric names, shared by
//!   the metrics, `macsec status` and the status's `errors`.
//!
//! Both servers hand every question to the control loop as a [`Request`] on a crossbeam
//! channel and wait at most [`ANSWER_TIMEOUT`] for its answer: the loop reads its own
//! published snapshots, so a query never holds anything a pump waits on.
//!
//! # Protocol (version 1)
//!
//! The client connects, writes one JSON line and half-closes (or just ends the line):
//!
//! ```text
//! > {"cmd":"status"}
//! < {"version":1,"forwarder":{...},"links":[...],...}
//! ```
//!
//! The server answers one JSON object on one line and closes. Every answer has
//! `"version": 1`; a failure is `{"version":1,"error":"..."}`. Commands ([`Command`]):
//! `status` (the status document, schema in the README), `counters` (the counters line
//! SIGUSR1 prints), `events` (`{"version":1,"total":N,"events":[...]}`), `rekey` (as
//! SIGHUP) and `reload`. A connection that sends nothing within 2 s is closed; at most
//! [`MAX_CONNECTIONS`] are served at once (more are answered `busy`).

pub mod counters;
pub mod events;
mod http;
mod metrics;
mod server;

pub use events::{Event, EventKind, EventLog};
pub use http::MetricsServer;
pub use metrics::{pn_used_ratio, render_metrics, CONTENT_TYPE};
pub use server::ControlServer;

use crossbeam::channel::{self, Sender};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The protocol version in every answer.
pub const PROTOCOL_VERSION: u64 = 1;

/// Where control sockets live by default (and where `macsec status` looks).
pub const DEFAULT_DIR: &str = "/run/macsec";

/// How long the servers wait for the control loop, and for a client to send its line.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections served at once, per server.
pub const MAX_CONNECTIONS: usize = 4;

/// Longest request line a server reads.
const MAX_REQUEST: usize = 4096;

/// An operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// The status document (forwarder, links, MKA, monitor, counters).
    Status,
    /// The counters JSON line, as SIGUSR1 prints it.
    Counters,
    /// The event log.
    Events,
    /// Ask each link's key server for a fresh SAK (as SIGHUP).
    Rekey,
    /// Re-read the configuration.
    Reload,
}

impl Command {
    /// Every command, for messages.
    pub const ALL: [Command; 5] = [
        Command::Status,
        Command::Counters,
        Command::Events,
        Command::Rekey,
        Command::Reload,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::Counters => "counters",
            Command::Events => "events",
            Command::Rekey => "rekey",
            Command::Reload => "reload",
        }
    }

    /// The request line a client sends.
    pub fn request_line(self) -> String {
        format!("{}\n", json!({ "cmd": self.as_str() }))
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A question for the control loop. It answers by sending the JSON text of its answer
/// (one object) on `reply`; a missing `"version"` is added by the server.
#[derive(Debug)]
pub struct Request {
    /// What is asked.
    pub cmd: Command,
    /// Where the answer goes (bounded, capacity 1: `try_send` never blocks the loop).
    pub reply: Sender<String>,
}

/// The answer to a command that only succeeds or fails: `{"version":1,"ok":true,
/// "message":...}`.
pub fn answer_ok(message: &str) -> String {
    json!({ "version": PROTOCOL_VERSION, "ok": true, "message": message }).to_string()
}

/// A failed command: `{"version":1,"error":...}`.
pub fn answer_error(message: &str) -> String {
    json!({ "version": PROTOCOL_VERSION, "error": message }).to_string()
}

/// Why a server could not start. Each message names the path or address and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The socket's directory is missing and could not be created.
    #[error("cannot create the control socket directory {dir}: {source}; create it (mode 0755, writable by the forwarder's user, e.g. systemd's RuntimeDirectory=macsec) or set [control] socket to a writable place")]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Another forwarder answers on the socket.
    #[error("control socket {path} is in use: another forwarder is listening on it; stop that forwarder, or give this one its own socket with [control] socket = \"...\"")]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// Something other than a socket is in the way.
    #[error(
        "{path} exists and is not a socket; remove it, or set [control] socket to another path"
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The path exists and could not be checked or removed.
    #[error("control socket {path}: {what}: {source}; remove it by hand, or set [control] socket to another path")]
    Stale {
        /// The socket.
        path: PathBuf,
        /// What failed.
        what: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// Binding or setting the mode failed.
    #[error("cannot {what} control socket {path}: {source}; check the directory's permissions, or set [control] socket to another path")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// What failed.
        what: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// The metrics address could not be bound.
    #[error("cannot listen on {addr} for metrics: {source}; choose a free address and port in [metrics] listen")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which.
        what: &'static str,
        /// Cause.
        source: std::io::Error,
    },
}

/// `/run/macsec/<config file stem>.sock`: `/etc/macsec/link1.toml` has
/// `/run/macsec/link1.sock`.
pub fn default_socket(config_path: &Path) -> PathBuf {
    default_socket_in(Path::new(DEFAULT_DIR), config_path)
}

/// `<run_dir>/<config file stem>.sock`: the socket of a forwarder whose `[forward]
/// run_dir` is `run_dir` (by default [`DEFAULT_DIR`], where `macsec status` looks).
pub fn default_socket_in(run_dir: &Path, config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "macsec".into());
    run_dir.join(format!("{stem}.sock"))
}

/// Asks the control loop and waits for its answer, at most `timeout` in all. The
/// answer is a JSON object with `"version"`; failures are `{"version":1,"error":...}`.
pub(crate) fn ask(to: &Sender<Request>, cmd: Command, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let (reply, answer) = channel::bounded(1);
    if let Err(e) = to.send_timeout(Request { cmd, reply }, timeout) {
        return answer_error(if e.is_timeout() {
            "the forwarder's control loop is busy; try again"
        } else {
            "the forwarder is stopping"
        });
    }
    let left = deadline.saturating_duration_since(Instant::now());
    match answer.recv_timeout(left) {
        Ok(text) => versioned(&text),
        Err(channel::RecvTimeoutError::Timeout) => answer_error(&format!(
            "the forwarder's control loop did not answer {cmd} within {} s",
            timeout.as_secs_f64()
        )),
        Err(channel::RecvTimeoutError::Disconnected) => answer_error(&format!(
            "the forwarder's control loop dropped the {cmd} request"
        )),
    }
}

/// `text` as one JSON line with `"version"`; an answer that is not a JSON object
/// becomes an error (the control loop must answer objects).
fn versioned(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut m)) => {
            m.entry("version").or_insert(json!(PROTOCOL_VERSION));
            Value::Object(m).to_string()
        }
        _ => answer_error("the forwarder's control loop gave an answer that is not a JSON object"),
    }
}

/// The answer to one request line (the server's side of the protocol).
pub(crate) fn answer_line(line: &[u8], to: &Sender<Request>) -> String {
    let v: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return answer_error(&format!(
                "not a JSON request ({e}); send one line such as {{\"cmd\":\"status\"}}"
            ))
        }
    };
    let Some(name) = v.get("cmd").and_then(Value::as_str) else {
        return answer_error("no \"cmd\": send one line such as {\"cmd\":\"status\"}");
    };
    match serde_json::from_value::<Command>(json!(name)) {
        Ok(cmd) => ask(to, cmd, ANSWER_TIMEOUT),
        Err(_) => {
            let known: Vec<&str> = Command::ALL.iter().map(|c| c.as_str()).collect();
            answer_error(&format!(
                "unknown command {name:?}; known: {}",
                known.join(", ")
            ))
        }
    }
}

/// Reads a request: up to a newline, the client's half-close, [`MAX_REQUEST`] octets
/// or `deadline`, whichever comes first. `None`: nothing usable arrived in time.
pub(crate) fn read_request<R: Read>(
    r: &mut R,
    set_timeout: &dyn Fn(Duration) -> std::io::Result<()>,
    deadline: Instant,
) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || set_timeout(left).is_err() {
            return None;
        }
        match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    buf.truncate(i);
                    break;
                }
                if buf.len() > MAX_REQUEST {
                    return None;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    (!buf.iter().all(u8::is_ascii_whitespace)).then_some(buf)
}

/// Why `macsec status` got no answer from a socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No such file.
    #[error("no control socket at {0} (is the forwarder running? its socket is [control] socket, default <[forward] run_dir>/<config name>.sock, run_dir default /run/macsec)")]
    Missing(PathBuf),
    /// The file is there, nobody listens.
    #[error("stale socket: no forwarder listening on {0} (the forwarder stopped without removing it; start it again, or remove the file)")]
    Stale(PathBuf),
    /// Not allowed to connect.
    #[error("permission denied on {0}: run as root or as a member of the socket's group")]
    Permission(PathBuf),
    /// No answer in time.
    #[error("no answer from {0} in time: the forwarder is busy or hung")]
    Timeout(PathBuf),
    /// The forwarder answered with an error.
    #[error("{path}: the forwarder answered: {message}")]
    Refused {
        /// The socket.
        path: PathBuf,
        /// Its message.
        message: String,
    },
    /// An answer this client cannot read.
    #[error("{path}: {problem}")]
    BadAnswer {
        /// The socket.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Any other failure.
    #[error("{path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

impl QueryError {
    /// The short form for JSON output (`"stale socket: no forwarder listening"`, ...).
    pub fn short(&self) -> String {
        match self {
            QueryError::Missing(_) => "no such socket".into(),
            QueryError::Stale(_) => "stale socket: no forwarder listening".into(),
            QueryError::Permission(_) => "permission denied".into(),
            QueryError::Timeout(_) => "no answer in time".into(),
            QueryError::Refused { message, .. } => message.clone(),
            QueryError::BadAnswer { problem, .. } => problem.clone(),
            QueryError::Io { source, .. } => source.to_string(),
        }
    }
}

/// Sends `cmd` to the control socket at `path` and returns its answer (a JSON object
/// of protocol version 1 without `"error"`). `timeout` bounds the whole exchange.
pub fn query(path: &Path, cmd: Command, timeout: Duration) -> Result<Value, QueryError> {
    use std::io::ErrorKind;
    let p = || path.to_path_buf();
    let io = |source: std::io::Error| match source.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => QueryError::Timeout(p()),
        _ => QueryError::Io { path: p(), source },
    };
    let mut s = UnixStream::connect(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => QueryError::Missing(p()),
        ErrorKind::ConnectionRefused => QueryError::Stale(p()),
        ErrorKind::PermissionDenied => QueryError::Permission(p()),
        _ => QueryError::Io {
            path: p(),
            source: e,
        },
    })?;
    let deadline = Instant::now() + timeout;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    // A server that answers at once (busy) may have closed already: read its answer.
    let closed = |e: &std::io::Error| {
        matches!(
            e.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::NotConnected
        )
    };
    match s.write_all(cmd.request_line().as_bytes()) {
        Err(e) if !closed(&e) => return Err(io(e)),
        _ => {}
    }
    match s.shutdown(std::net::Shutdown::Write) {
        Err(e) if !closed(&e) => return Err(io(e)),
        _ => {}
    }
    let mut text = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(QueryError::Timeout(p()));
        }
        s.set_read_timeout(Some(left)).map_err(io)?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A server that answered before reading our line resets after its answer.
            Err(e) if e.kind() == ErrorKind::ConnectionReset && !text.is_empty() => break,
            Err(e) => return Err(io(e)),
        }
    }
    let bad = |problem: String| QueryError::BadAnswer { path: p(), problem };
    if text.is_empty() {
        return Err(bad(
            "the forwarder closed the connection without answering".into()
        ));
    }
    let v: Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("answer is not JSON: {e}")))?;
    match v.get("version").and_then(Value::as_u64) {
        Some(PROTOCOL_VERSION) => {}
        other => {
            return Err(bad(format!(
                "the forwarder speaks control protocol version {}, this macsec speaks {PROTOCOL_VERSION}: use the macsec binary that came with the forwarder",
                other.map_or("(none)".to_string(), |n| n.to_string())
            )))
        }
    }
    if let Some(message) = v.get("error") {
        return Err(QueryError::Refused {
            path: p(),
            message: message
                .as_str()
                .map_or_else(|| message.to_string(), str::to_owned),
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests;

//! The Prometheus endpoint: `GET /metrics` over HTTP/1.1, one request per connection.
//!
//! A deliberately small server over std's `TcpListener`, with `httparse` (the HTTP/1
//! parser of the hyper project) for the request. It is bounded the way the forwarder
//! needs: at most [`MAX_CONNECTIONS`] requests served at once (more are closed at once),
//! a request must arrive within 2 s and be at most 8 KiB, answers are written with a 2 s
//! timeout, and nothing is kept between connections. (`tiny_http` was the other
//! candidate; it has no read timeout and starts a thread per idle connection without a
//! bound, which an exposed endpoint must not allow in the forwarder's process.)

use super::server::Slot;
use super::{ask, metrics, Command, ControlError, Request, ANSWER_TIMEOUT};
use crossbeam::channel::Sender;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Longest request head read.
const MAX_HEAD: usize = 8192;

/// The HTTP endpoint. Dropping it stops it.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `listen` and serves `GET /metrics` from the status the control loop
    /// answers on `to`. A non-loopback address is logged as a warning (the endpoint has
    /// no authentication).
    pub fn start(listen: SocketAddr, to: Sender<Request>) -> Result<MetricsServer, ControlError> {
        let listener = TcpListener::bind(listen).map_err(|source| ControlError::Listen {
            addr: listen,
            source,
        })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ControlError::Listen {
                addr: listen,
                source,
            })?;
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "metrics: serving http://{addr}/metrics on a non-loopback address without authentication; restrict it with a firewall, or set [metrics] listen = \"127.0.0.1:{}\"",
                addr.port()
            );
        } else {
            tracing::info!("metrics: serving http://{addr}/metrics");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || accept_loop(listener, to, stop2))
            .map_err(|source| ControlError::Thread {
                what: "metrics",
                source,
            })?;
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the port chosen when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept thread with a connection of our own.
        let ip = match self.addr.ip() {
            IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let woke =
            TcpStream::connect_timeout(&SocketAddr::new(ip, self.addr.port()), ANSWER_TIMEOUT)
                .is_ok();
        if let (true, Some(t)) = (woke, self.thread.take()) {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, to: Sender<Request>, stop: Arc<AtomicBool>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let Ok(conn) = conn else {
            // Out of descriptors or memory: wait instead of spinning.
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        };
        // Over the limit the connection is simply closed; Prometheus retries at the
        // next scrape.
        let Some(slot) = Slot::take(&busy) else {
            continue;
        };
        let to = to.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-conn".into())
            .spawn(move || {
                let _slot = slot;
                serve(conn, &to);
            });
        if let Err(e) = spawned {
            tracing::warn!("metrics: cannot serve a connection: {e}");
        }
    }
}

/// The request's method and path, or `None` if it did not arrive whole in time.
fn read_head(conn: &mut TcpStream, deadline: Instant) -> Option<Result<(String, String), ()>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return None;
        }
        match conn.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let method = req.method.unwrap_or("").to_owned();
                let path = req.path.unwrap_or("").to_owned();
                return Some(Ok((method, path)));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => return Some(Err(())),
        }
    }
}

fn respond(conn: &mut TcpStream, status: &str, ctype: &str, body: &str, head_only: bool) {
    let _ = conn.set_write_timeout(Some(ANSWER_TIMEOUT));
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if status.starts_with("405") {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        }
    );
    let _ = conn.write_all(head.as_bytes());
    if !head_only {
        let _ = conn.write_all(body.as_bytes());
    }
    let _ = conn.flush();
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

fn serve(mut conn: TcpStream, to: &Sender<Request>) {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let text = "text/plain; charset=utf-8";
    let (method, path) = match read_head(&mut conn, deadline) {
        None => return,
        Some(Err(())) => {
            respond(&mut conn, "400 Bad Request", text, "bad request\n", false);
            return;
        }
        Some(Ok(r)) => r,
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        let body = "only GET and HEAD\n";
        respond(&mut conn, "405 Method Not Allowed", text, body, false);
        return;
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path != "/metrics" {
        let body = "not found: the metrics are at /metrics\n";
        respond(&mut conn, "404 Not Found", text, body, head_only);
        return;
    }
    let answer = ask(to, Command::Status, ANSWER_TIMEOUT);
    let status: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
    if let Some(e) = status.get("error") {
        let body = format!(
            "no status from the forwarder: {}\n",
            e.as_str().unwrap_or("")
        );
        respond(&mut conn, "503 Service Unavailable", text, &body, head_only);
        return;
    }
    let body = metrics::render_metrics(&status);
    respond(&mut conn, "200 OK", metrics::CONTENT_TYPE, &body, head_only);
}

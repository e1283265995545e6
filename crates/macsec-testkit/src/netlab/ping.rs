//! ICMP echo (`ping`) from inside a namespace, over a raw IPv4 socket (needs
//! `CAP_NET_RAW`, no `ping_group_range`).
//!
//! Replies are matched by identifier, sequence number and source address; other ICMP
//! traffic is ignored, and a reply whose payload or checksum differs from what was sent
//! counts as [`PingReport::bad`], not as received. Loss is `sent - received`: an echo
//! is lost if no good reply came within [`PingOpts::timeout`] of sending it.
//!
//! With [`PingOpts::dont_fragment`] (like `ping -M do`) the socket writes its own IPv4
//! header (`IP_HDRINCL`) with DF set: the kernel then never fragments, and refuses a
//! packet larger than the outgoing interface's MTU with `EMSGSIZE`, which is recorded
//! as a send error of that echo. Without it, the socket's default path-MTU mode
//! applies (DF set on packets that fit, local fragmentation of larger ones).

use super::error::{errno, Error, Result};
use super::netns;
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest payload: an IPv4 packet of 65535 octets.
pub const MAX_PAYLOAD: usize = 65535 - 20 - 8;

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingOpts {
    /// ICMP payload octets (`ping -s`); 56 by default. 8972 fills a 9000-octet packet.
    pub size: usize,
    /// Echo requests to send (`ping -c`); 1 by default.
    pub count: u32,
    /// Time between requests (`ping -i`); 100 ms by default.
    pub interval: Duration,
    /// How long to wait for each reply (`ping -W`); 1 s by default.
    pub timeout: Duration,
    /// Set DF and never fragment (`ping -M do`).
    pub dont_fragment: bool,
}

impl Default for PingOpts {
    fn default() -> Self {
        PingOpts {
            size: 56,
            count: 1,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            dont_fragment: false,
        }
    }
}

/// One echo request and its fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    /// ICMP sequence number (the request's position, modulo 2^16).
    pub seq: u16,
    /// When it was sent, from the start of the run.
    pub sent_at: Duration,
    /// Round-trip time of its good reply, if one came in time.
    pub rtt: Option<Duration>,
    /// The OS error number if sending failed (e.g. `EMSGSIZE`, `ENETUNREACH`).
    pub send_error: Option<i32>,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PingReport {
    /// Echo requests attempted (including those whose sending failed).
    pub sent: u32,
    /// Good replies received in time.
    pub received: u32,
    /// Replies with our identifier and a known sequence number but a wrong payload,
    /// length or checksum.
    pub bad: u32,
    /// Smallest round-trip time in microseconds (NaN if nothing was received).
    pub min_us: f64,
    /// Mean round-trip time in microseconds (NaN if nothing was received).
    pub avg_us: f64,
    /// Largest round-trip time in microseconds (NaN if nothing was received).
    pub max_us: f64,
    /// Every request, in sending order.
    pub echoes: Vec<Echo>,
}

impl PingReport {
    /// Requests without a good reply.
    pub fn lost(&self) -> u32 {
        self.sent - self.received
    }

    /// The longest run of consecutive requests without a good reply.
    pub fn longest_loss_streak(&self) -> u32 {
        let (mut best, mut run) = (0, 0);
        for e in &self.echoes {
            run = if e.rtt.is_some() { 0 } else { run + 1 };
            best = best.max(run);
        }
        best
    }

    /// The longest time between the sending of two answered requests with only
    /// unanswered ones in between: roughly the longest outage plus one interval. `None`
    /// with fewer than two answered requests. A request held back during an outage (in
    /// a neighbour queue, say) whose reply still comes within the timeout counts as
    /// answered: choose the timeout accordingly.
    pub fn longest_gap(&self) -> Option<Duration> {
        let answered: Vec<Duration> = self
            .echoes
            .iter()
            .filter(|e| e.rtt.is_some())
            .map(|e| e.sent_at)
            .collect();
        answered.windows(2).map(|w| w[1] - w[0]).max()
    }

    fn from_echoes(echoes: Vec<Echo>, bad: u32) -> PingReport {
        let rtts: Vec<f64> = echoes
            .iter()
            .filter_map(|e| e.rtt)
            .map(|d| d.as_secs_f64() * 1e6)
            .collect();
        let n = rtts.len();
        let (min_us, avg_us, max_us) = if n == 0 {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            (
                rtts.iter().copied().fold(f64::INFINITY, f64::min),
                rtts.iter().sum::<f64>() / n as f64,
                rtts.iter().copied().fold(0.0, f64::max),
            )
        };
        PingReport {
            sent: echoes.len() as u32,
            received: n as u32,
            bad,
            min_us,
            avg_us,
            max_us,
            echoes,
        }
    }
}

/// Sends `opts.count` echo requests from namespace `ns` to `dst` and waits for the
/// replies (at most `count * interval + timeout`).
pub fn ping(ns: &str, dst: Ipv4Addr, opts: &PingOpts) -> Result<PingReport> {
    let sock = open(ns, dst, opts)?;
    run(&sock, dst, opts, None).map_err(|e| Error::ns(ns, format!("ping {dst}"), e))
}

/// A ping running on a background thread until [`Pinger::stop`] or `opts.count`
/// requests, whichever comes first: for failover tests (e.g. interval 10 ms, thousands
/// of requests). Dropping it stops it too.
#[derive(Debug)]
pub struct Pinger {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<PingReport>>>,
    what: (String, String),
}

impl Pinger {
    /// Opens the socket in `ns` (errors show here) and starts sending.
    pub fn start(ns: &str, dst: Ipv4Addr, opts: &PingOpts) -> Result<Pinger> {
        let sock = open(ns, dst, opts)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, o) = (stop.clone(), *opts);
        let thread = std::thread::Builder::new()
            .name(format!("ping {dst}"))
            .spawn(move || run(&sock, dst, &o, Some(&flag)))
            .map_err(|e| Error::ns(ns, format!("ping {dst}: spawn thread"), e))?;
        Ok(Pinger {
            stop,
            thread: Some(thread),
            what: (ns.to_owned(), format!("ping {dst}")),
        })
    }

    /// True once all requests are sent and answered or timed out.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops sending, waits for the outstanding replies (at most `timeout`) and returns
    /// the report.
    pub fn stop(mut self) -> Result<PingReport> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().expect("joined only here");
        match t.join() {
            Ok(r) => r.map_err(|e| Error::ns(&self.what.0, self.what.1.clone(), e)),
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open(ns: &str, dst: Ipv4Addr, opts: &PingOpts) -> Result<Socket> {
    let what = format!("ping {dst}: open raw ICMP socket");
    if opts.size > MAX_PAYLOAD || opts.timeout.is_zero() {
        return Err(Error::ns(
            ns,
            what,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "size over 65507 or zero timeout",
            ),
        ));
    }
    let df = opts.dont_fragment;
    netns::run_io(ns, &what, || {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        if df {
            s.set_header_included_v4(true)?;
        }
        s.set_nonblocking(true)?;
        let _ = s.set_recv_buffer_size(1 << 20);
        Ok(s)
    })
}

/// Identifiers for concurrent runs in this process.
static NEXT_ID: AtomicU16 = AtomicU16::new(0);

fn new_id() -> u16 {
    (std::process::id() as u16).wrapping_add(NEXT_ID.fetch_add(0x9e37, Ordering::Relaxed))
}

/// The Internet checksum of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The payload of request `seq` of run `id`.
fn payload(id: u16, seq: u16, size: usize) -> Vec<u8> {
    let k = (id ^ seq.rotate_left(8)) as u8;
    (0..size).map(|i| (i as u8).wrapping_mul(7) ^ k).collect()
}

/// An ICMP echo request, preceded by an IPv4 header with DF set if `dst` is given.
fn request(id: u16, seq: u16, size: usize, ip_header_to: Option<Ipv4Addr>) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(&payload(id, seq, size));
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let Some(dst) = ip_header_to else {
        return icmp;
    };
    // Total length, identification, checksum and source: the kernel fills them in.
    let total = (20 + icmp.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 1, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&icmp);
    p
}

/// A received echo reply: (source, identifier, sequence, ICMP message).
fn parse_reply(pkt: &[u8]) -> Option<(Ipv4Addr, u16, u16, &[u8])> {
    let ihl = usize::from(pkt.first()? & 0x0f) * 4;
    if pkt[0] >> 4 != 4 || ihl < 20 || pkt.len() < ihl + 8 || pkt[9] != 1 {
        return None;
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let icmp = &pkt[ihl..];
    if icmp[0] != 0 || icmp[1] != 0 {
        return None;
    }
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    Some((src, id, seq, icmp))
}

/// Waits until `sock` is readable or `d` has passed.
fn wait_readable(sock: &Socket, d: Duration) -> io::Result<()> {
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
    match ppoll(&mut fds, Some(TimeSpec::from_duration(d)), None) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(errno(e)),
    }
}

fn run(
    sock: &Socket,
    dst: Ipv4Addr,
    opts: &PingOpts,
    stop: Option<&AtomicBool>,
) -> io::Result<PingReport> {
    let id = new_id();
    let to = SockAddr::from(SocketAddrV4::new(dst, 0));
    let start = Instant::now();
    let mut echoes: Vec<Echo> = Vec::new();
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut bad = 0;
    // Every request before `open` is answered, failed or past its timeout.
    let mut open = 0;
    let mut buf = vec![0u8; 65536];
    let mut next = start;
    loop {
        let now = Instant::now();
        let stopped = stop.is_some_and(|s| s.load(Ordering::Relaxed));
        let sending = !stopped && (echoes.len() as u64) < u64::from(opts.count);
        if sending && now >= next {
            let seq = echoes.len() as u16;
            let pkt = request(id, seq, opts.size, opts.dont_fragment.then_some(dst));
            let t = Instant::now();
            let send_error = sock
                .send_to(&pkt, &to)
                .err()
                .map(|e| e.raw_os_error().unwrap_or(-1));
            echoes.push(Echo {
                seq,
                sent_at: t - start,
                rtt: None,
                send_error,
            });
            sent_at.push(t);
            next = start + opts.interval * echoes.len() as u32;
            continue;
        }
        while open < echoes.len()
            && (echoes[open].rtt.is_some()
                || echoes[open].send_error.is_some()
                || now >= sent_at[open] + opts.timeout)
        {
            open += 1;
        }
        if !sending && open == echoes.len() {
            break;
        }
        let mut wake = if open < echoes.len() {
            sent_at[open] + opts.timeout
        } else {
            next
        };
        if sending {
            wake = wake.min(next);
        }
        wait_readable(sock, wake.saturating_duration_since(now))?;
        // Drain what has arrived.
        loop {
            let n = match (&*sock).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let arrived = Instant::now();
            let Some((src, rid, rseq, icmp)) = parse_reply(&buf[..n]) else {
                continue;
            };
            if rid != id || src != dst {
                continue;
            }
            let Some(i) = (open..echoes.len()).find(|&i| {
                echoes[i].seq == rseq
                    && echoes[i].rtt.is_none()
                    && arrived - sent_at[i] <= opts.timeout
            }) else {
                continue;
            };
            if checksum(icmp) != 0 || icmp[8..] != payload(id, rseq, opts.size)[..] {
                bad += 1;
                continue;
            }
            echoes[i].rtt = Some(arrived - sent_at[i]);
        }
    }
    Ok(PingReport::from_echoes(echoes, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksums_and_parses_back() {
        let r = request(0x1234, 7, 56, None);
        assert_eq!(r.len(), 64);
        assert_eq!(checksum(&r), 0);
        // As a reply: type 0, fix the checksum, and an IPv4 header in front.
        let mut icmp = r.clone();
        icmp[0] = 0;
        icmp[2..4].copy_from_slice(&[0, 0]);
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut pkt = vec![
            0x45, 0, 0, 84, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        pkt.extend_from_slice(&icmp);
        let (src, id, seq, m) = parse_reply(&pkt).unwrap();
        assert_eq!((src, id, seq), (Ipv4Addr::new(10, 0, 0, 2), 0x1234, 7));
        assert_eq!(checksum(m), 0);
        assert_eq!(&m[8..], &payload(0x1234, 7, 56)[..]);
        // A request is not a reply.
        pkt[20] = 8;
        assert!(parse_reply(&pkt).is_none());
    }

    #[test]
    fn df_header() {
        let p = request(1, 2, 8972, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(p.len(), 9000);
        assert_eq!(&p[0..4], &[0x45, 0, 0x23, 0x28]);
        assert_eq!(p[6] & 0x40, 0x40, "DF");
        assert_eq!(&p[16..20], &[10, 0, 0, 2]);
        assert_eq!(checksum(&p[20..]), 0);
    }

    #[test]
    fn odd_length_checksum() {
        // RFC 1071 example bytes, padded with a zero octet.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2]), !(0x0001u16 + 0xf200));
    }

    #[test]
    fn report_statistics_and_gaps() {
        let ms = Duration::from_millis;
        let e = |i: u16, rtt: Option<u64>| Echo {
            seq: i,
            sent_at: ms(10 * u64::from(i)),
            rtt: rtt.map(Duration::from_micros),
            send_error: None,
        };
        let r = PingReport::from_echoes(
            vec![
                e(0, Some(100)),
                e(1, None),
                e(2, None),
                e(3, Some(300)),
                e(4, None),
            ],
            1,
        );
        assert_eq!((r.sent, r.received, r.lost(), r.bad), (5, 2, 3, 1));
        assert_eq!((r.min_us, r.avg_us, r.max_us), (100.0, 200.0, 300.0));
        assert_eq!(r.longest_loss_streak(), 2);
        assert_eq!(r.longest_gap(), Some(ms(30)));
        let none = PingReport::from_echoes(vec![e(0, None)], 0);
        assert!(none.avg_us.is_nan() && none.longest_gap().is_none());
    }
}

//! A deliberately small HTTP/1.1 server on `std::net`: one request per connection
//! (`Connection: close`), `Content-Length` bodies only, bounded sizes and time.
//!
//! The control API sees a handful of requests a minute from SDKs on loopback, so a thread
//! per connection is enough, and it keeps the daemon's dependency tree unchanged (see
//! README, Dependencies). What one client can hold is bounded ([`Limits`]):
//!
//! - a whole request (head and body) must arrive within [`Limits::request_deadline`] of the
//!   accept, whatever its pace: the socket's read timeout is set to the time left before
//!   every read, so a client that trickles one byte every few seconds is cut at the
//!   deadline (408) instead of holding its thread for ever;
//! - at most [`Limits::max_connections`] connections at once, and at most
//!   [`Limits::max_per_ip`] from one source address; more are answered 503 and closed on
//!   the accept thread without ever blocking it.
//!
//! Every refusal and every cut is counted in [`Stats`].

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

/// Largest request head (request line + headers) we read.
const MAX_HEAD: usize = 16 * 1024;
/// Largest body we read.
const MAX_BODY: usize = 64 * 1024;
/// Connections served at the same time; more are refused with 503.
pub const MAX_CONNECTIONS: usize = 32;
/// Connections from one source address at the same time; more are refused with 503.
pub const MAX_CONNECTIONS_PER_IP: usize = 8;
/// Time a client has to send its whole request (head and body), counted from the accept.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Time the answer may take to leave.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one server lets its clients hold (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub request_deadline: Duration,
}

impl Default for Limits {
    /// [`MAX_CONNECTIONS`], [`MAX_CONNECTIONS_PER_IP`], [`REQUEST_DEADLINE`].
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            max_per_ip: MAX_CONNECTIONS_PER_IP,
            request_deadline: REQUEST_DEADLINE,
        }
    }
}

/// Counters of what the server refused or cut since it started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Refused because [`Limits::max_connections`] were open.
    pub refused_total: AtomicU64,
    /// Refused because [`Limits::max_per_ip`] were open from the same address.
    pub refused_per_ip: AtomicU64,
    /// Cut (408) because the request was not complete at the deadline.
    pub timed_out: AtomicU64,
}

/// Adds one to `counter`; logs on the 1st, 2nd, 4th, 8th, … time (a flood logs a few lines).
fn count(counter: &AtomicU64, what: &str, peer: SocketAddr) {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        warn!(%peer, total = n, "control API: {what}");
    } else {
        debug!(%peer, total = n, "control API: {what}");
    }
}

/// A parsed request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The path without the query, still percent-encoded.
    pub path: String,
    /// The raw query string (after `?`), still percent-encoded.
    pub query: String,
    /// Header names lowercased, values trimmed, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// All values of a header, in arrival order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }
}

/// A response to write.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// What answers a request.
pub type Handler = Arc<dyn Fn(&Request, SocketAddr) -> Response + Send + Sync>;

/// Serves `handler` on `listener` with the default [`Limits`] until `stop` is set.
pub fn serve(listener: TcpListener, stop: Arc<AtomicBool>, handler: Handler) {
    serve_with(
        listener,
        stop,
        handler,
        Limits::default(),
        Arc::new(Stats::default()),
    );
}

/// Serves `handler` on `listener` until `stop` is set (checked every 50 ms).
pub fn serve_with(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    handler: Handler,
    limits: Limits,
    stats: Arc<Stats>,
) {
    let slots = Arc::new(Slots::default());
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::error!("API listener: {e}");
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => {
                debug!("API accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let accepted = Instant::now();
        let slot = match slots.take(peer.ip(), &limits) {
            Ok(slot) => slot,
            Err(refusal) => {
                let (counter, text) = match refusal {
                    Refusal::Total => (&stats.refused_total, "too many connections"),
                    Refusal::PerIp => (
                        &stats.refused_per_ip,
                        "too many connections from this address",
                    ),
                };
                count(counter, text, peer);
                refuse(stream, text);
                continue;
            }
        };
        let handler = handler.clone();
        let stats = stats.clone();
        let deadline = accepted + limits.request_deadline;
        // On failure the closure, and with it the slot, is dropped: the slot is released.
        let _ = std::thread::Builder::new()
            .name("api-conn".into())
            .spawn(move || {
                connection(stream, peer, deadline, &*handler, &stats);
                drop(slot);
            });
    }
}

/// Answers 503 without ever blocking the accept thread: a non-blocking best-effort write
/// of a short answer into the fresh socket's empty send buffer, then close.
fn refuse(stream: TcpStream, text: &str) {
    let mut s = stream;
    if s.set_nonblocking(true).is_ok() {
        let _ = write_response(&mut s, &plain(503, text));
    }
}

/// Why a connection gets no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Total,
    PerIp,
}

/// The open connections, in total and per source address. The map has at most
/// `max_connections` entries: an address is removed when its last connection ends.
#[derive(Default)]
struct Slots {
    inner: Mutex<SlotCounts>,
}

#[derive(Default)]
struct SlotCounts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One open connection; dropping it frees the slot.
struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotCounts> {
        // Every mutation is complete before any call that could panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Result<Slot, Refusal> {
        let mut c = self.lock();
        if c.total >= limits.max_connections {
            return Err(Refusal::Total);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= limits.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.slots.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Reads from a socket until a fixed instant: each read may wait only for the time left.
struct UntilDeadline<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for UntilDeadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self
            .deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(std::io::ErrorKind::TimedOut)?;
        self.stream.set_read_timeout(Some(left))?;
        let mut s = self.stream;
        s.read(buf)
    }
}

fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    handler: &(dyn Fn(&Request, SocketAddr) -> Response + Send + Sync),
    stats: &Stats,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let read = read_request(UntilDeadline {
        stream: &stream,
        deadline,
    });
    let resp = match read {
        Ok(req) => handler(&req, peer),
        Err(resp) => {
            if resp.status == 408 {
                count(
                    &stats.timed_out,
                    "request not complete at the deadline",
                    peer,
                );
            }
            resp
        }
    };
    let mut out = &stream;
    if let Err(e) = write_response(&mut out, &resp) {
        debug!(%peer, "API write: {e}");
    }
}

/// Reads one request; an error is the response to send instead.
pub fn read_request(stream: impl Read) -> Result<Request, Response> {
    let mut r = BufReader::new(stream.take((MAX_HEAD + MAX_BODY) as u64));
    let mut head_len = 0;
    let mut line = String::new();
    let mut next_line = |r: &mut BufReader<_>, line: &mut String| -> Result<(), Response> {
        line.clear();
        let n = r
            .read_line(line)
            .map_err(|e| read_error(&e, "bad request head"))?;
        head_len += n;
        if n == 0 || head_len > MAX_HEAD {
            return Err(plain(400, "request head missing or too long"));
        }
        Ok(())
    };
    next_line(&mut r, &mut line)?;
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(plain(400, "bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(plain(505, "HTTP/1.x only"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        ..Request::default()
    };
    loop {
        next_line(&mut r, &mut line)?;
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(plain(400, "bad header line"));
        };
        req.headers
            .push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    if req.header("transfer-encoding").is_some() {
        return Err(plain(
            411,
            "chunked bodies are not supported; send Content-Length",
        ));
    }
    let len = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| plain(400, "bad Content-Length"))?,
    };
    if len > MAX_BODY {
        return Err(plain(413, "body too large"));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)
        .map_err(|e| read_error(&e, "body shorter than Content-Length"))?;
    req.body = body;
    Ok(req)
}

/// 408 when the deadline passed (a socket read timeout surfaces as `WouldBlock` or
/// `TimedOut`), else 400 with `text`.
fn read_error(e: &std::io::Error, text: &str) -> Response {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            plain(408, "the request was not complete in time")
        }
        _ => plain(400, text),
    }
}

pub fn write_response(w: &mut impl Write, resp: &Response) -> std::io::Result<()> {
    let reason = match resp.status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        resp.content_type,
        resp.body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(&resp.body)?;
    w.flush()
}

fn plain(status: u16, text: &str) -> Response {
    Response {
        status,
        content_type: "text/plain",
        body: text.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_form_post() {
        let raw = b"POST /?Action=X&a=b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-Acs-Date: d\r\n\r\nk=v";
        let req = read_request(&raw[..]).unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/");
        assert_eq!(req.query, "Action=X&a=b");
        assert_eq!(req.header("x-acs-date"), Some("d"));
        assert_eq!(req.body, b"k=v");
    }

    #[test]
    fn rejects_garbage_and_oversized() {
        assert_eq!(
            read_request(&b"GARBAGE\r\n\r\n"[..]).unwrap_err().status,
            400
        );
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(read_request(big.as_bytes()).unwrap_err().status, 413);
        assert_eq!(read_request(&b""[..]).unwrap_err().status, 400);
    }

    /// A TCP connection to `to` from the loopback address `from` (127.0.0.2 is a second
    /// source address on any Linux loopback).
    #[allow(unsafe_code)]
    fn connect_from(from: std::net::Ipv4Addr, to: SocketAddr) -> TcpStream {
        use std::os::fd::FromRawFd;
        let SocketAddr::V4(to) = to else {
            panic!("IPv4 only")
        };
        let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: socket(2) takes integers; the fd is owned by the TcpStream right away;
        // bind(2) and connect(2) get a sockaddr_in of `len` bytes that outlives the call.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let stream = TcpStream::from_raw_fd(fd);
            let a = sin(from, 0);
            let rc = libc::bind(fd, (&a as *const libc::sockaddr_in).cast(), len);
            assert_eq!(rc, 0, "bind {from}: {}", std::io::Error::last_os_error());
            let b = sin(*to.ip(), to.port());
            let rc = libc::connect(fd, (&b as *const libc::sockaddr_in).cast(), len);
            assert_eq!(rc, 0, "connect {to}: {}", std::io::Error::last_os_error());
            stream
        }
    }

    const GOOD: &[u8] = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok";

    /// Sends `GOOD` and returns the status line, or "" if closed without an answer.
    fn answer(mut s: TcpStream) -> String {
        let _ = s.write_all(GOOD);
        refusal(s)
    }

    /// The status line of a connection's answer, read without sending anything (a refused
    /// connection is closed unread: what the client sent could turn the close into a RST).
    fn refusal(mut s: TcpStream) -> String {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.lines().next().unwrap_or("").to_owned()
    }

    /// A client that sends the start of a request, then one byte every `every` (at most
    /// `bytes` of them), and returns what it finally read and when.
    fn slow_client(
        s: TcpStream,
        every: Duration,
        bytes: usize,
    ) -> std::thread::JoinHandle<(String, Duration)> {
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut s = s;
            s.set_read_timeout(Some(every)).unwrap();
            let _ = s.write_all(b"POST / HTTP/1.1\r\nX-Slow: ");
            let mut out = Vec::new();
            for _ in 0..bytes {
                let mut buf = [0u8; 512];
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        if s.write_all(b"a").is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            let text = String::from_utf8_lossy(&out);
            (text.lines().next().unwrap_or("").to_owned(), t0.elapsed())
        })
    }

    /// Slow clients are cut at the request deadline, however often they send a byte; while
    /// they hang, another address is served at once; one address gets at most `max_per_ip`
    /// connections and all of them at most `max_connections`.
    #[test]
    fn slow_clients_are_cut_and_bounded_per_address_and_in_total() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let limits = Limits {
            max_connections: 3,
            max_per_ip: 2,
            request_deadline: Duration::from_millis(2000),
        };
        let handler: Handler = Arc::new(|req: &Request, _| Response {
            status: 200,
            content_type: "text/plain",
            body: req.body.clone(),
        });
        let server = {
            let (stop, stats) = (stop.clone(), stats.clone());
            std::thread::spawn(move || serve_with(listener, stop, handler, limits, stats))
        };
        let a = std::net::Ipv4Addr::new(127, 0, 0, 1);
        let b = std::net::Ipv4Addr::new(127, 0, 0, 2);
        let c = std::net::Ipv4Addr::new(127, 0, 0, 3);
        let t0 = Instant::now();
        let slow_a1 = slow_client(connect_from(a, addr), FAST_TRICKLE, 40);
        let slow_a2 = slow_client(connect_from(a, addr), FAST_TRICKLE, 40);
        std::thread::sleep(Duration::from_millis(200));
        // A third from the same address: refused at once.
        assert_eq!(
            refusal(connect_from(a, addr)),
            "HTTP/1.1 503 Service Unavailable"
        );
        assert_eq!(stats.refused_per_ip.load(Ordering::Relaxed), 1);
        // Another address is served at once while both slow ones hang.
        let t = Instant::now();
        assert_eq!(answer(connect_from(b, addr)), "HTTP/1.1 200 OK");
        assert!(
            t.elapsed() < Duration::from_millis(1000),
            "{:?}",
            t.elapsed()
        );
        // A third slow one fills the server: now every address is refused.
        let slow_c = slow_client(connect_from(c, addr), FAST_TRICKLE, 40);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            refusal(connect_from(b, addr)),
            "HTTP/1.1 503 Service Unavailable"
        );
        assert_eq!(stats.refused_total.load(Ordering::Relaxed), 1);
        assert!(
            t0.elapsed() < limits.request_deadline,
            "the test itself was too slow"
        );
        // Each slow client is cut at its deadline (2 s after its accept), not before.
        for h in [slow_a1, slow_a2, slow_c] {
            let (status, took) = h.join().unwrap();
            assert_eq!(status, "HTTP/1.1 408 Request Timeout");
            assert!(took >= Duration::from_millis(1900), "cut early: {took:?}");
            assert!(took < Duration::from_millis(4000), "cut late: {took:?}");
        }
        assert_eq!(stats.timed_out.load(Ordering::Relaxed), 3);
        // Their slots are free again.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(answer(connect_from(a, addr)), "HTTP/1.1 200 OK");
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
    }

    const FAST_TRICKLE: Duration = Duration::from_millis(300);

    /// The attack of issue 12 against the daemon's own limits: 32 connections from one
    /// address, each sending a byte every 3 s. Only `MAX_CONNECTIONS_PER_IP` get a slot,
    /// another address is answered at once meanwhile, and the slow ones are cut at
    /// `REQUEST_DEADLINE` (before: each read reset a 10 s timeout, so they held all 32
    /// slots for as long as they liked).
    #[test]
    fn one_address_trickling_bytes_cannot_starve_the_api() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let handler: Handler = Arc::new(|_: &Request, _| plain(200, "ok"));
        let server = {
            let (stop, stats) = (stop.clone(), stats.clone());
            std::thread::spawn(move || {
                serve_with(listener, stop, handler, Limits::default(), stats)
            })
        };
        let a = std::net::Ipv4Addr::new(127, 0, 0, 1);
        let slow: Vec<_> = (0..MAX_CONNECTIONS)
            .map(|_| slow_client(connect_from(a, addr), Duration::from_secs(3), 8))
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        let b = std::net::Ipv4Addr::new(127, 0, 0, 2);
        assert_eq!(answer(connect_from(b, addr)), "HTTP/1.1 200 OK");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        let mut cut = 0;
        for h in slow {
            let (status, took) = h.join().unwrap();
            if status == "HTTP/1.1 408 Request Timeout" {
                assert!(
                    took >= REQUEST_DEADLINE - Duration::from_millis(200),
                    "{took:?}"
                );
                assert!(took < REQUEST_DEADLINE + Duration::from_secs(3), "{took:?}");
                cut += 1;
            } else {
                // Refused at once (it had sent its first bytes: the close may be a reset
                // that overtakes the 503; the counters below hold the count either way).
                assert!(
                    status.is_empty() || status == "HTTP/1.1 503 Service Unavailable",
                    "{status}"
                );
                assert!(took < Duration::from_secs(4), "{took:?}");
            }
        }
        assert_eq!(cut, MAX_CONNECTIONS_PER_IP);
        assert_eq!(
            stats.timed_out.load(Ordering::Relaxed),
            MAX_CONNECTIONS_PER_IP as u64
        );
        assert_eq!(
            stats.refused_per_ip.load(Ordering::Relaxed),
            (MAX_CONNECTIONS - MAX_CONNECTIONS_PER_IP) as u64
        );
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
    }

    #[test]
    fn a_deadline_in_the_past_is_a_408() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        client.write_all(GOOD).unwrap();
        let e = read_request(UntilDeadline {
            stream: &server_side,
            deadline: Instant::now(),
        })
        .unwrap_err();
        assert_eq!(e.status, 408);
    }
}

//! Traffic generators and receivers running on threads of the test process that have joined a
//! namespace (`setns(CLONE_NEWNET)` is per thread): no helper processes, exact byte counts and
//! checksums, bounded by socket timeouts and join deadlines.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A closure running on a thread inside a network namespace.
pub struct NsTask<T> {
    what: String,
    handle: JoinHandle<T>,
}

/// Runs `f` on a new thread that first enters the network namespace `ns` (by name).
pub fn in_ns<T, F>(ns: &str, what: &str, f: F) -> NsTask<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = format!("/run/netns/{ns}");
    let what = format!("{what} in {ns}");
    let w = what.clone();
    let handle = std::thread::Builder::new()
        .name(what.clone())
        .spawn(move || {
            enter_netns(&path).unwrap_or_else(|e| panic!("{w}: setns {path}: {e}"));
            f()
        })
        .expect("spawn thread");
    NsTask { what, handle }
}

impl<T> NsTask<T> {
    /// True once the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits at most `timeout` for the thread; re-raises its panic, panics on timeout.
    pub fn join(self, timeout: Duration) -> T {
        let deadline = Instant::now() + timeout;
        while !self.handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "{}: not finished after {timeout:?}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        match self.handle.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

#[allow(unsafe_code)] // setns(2): std does not wrap it
fn enter_netns(path: &str) -> std::io::Result<()> {
    let f = File::open(path)?;
    // SAFETY: setns(2) on an fd we own; CLONE_NEWNET only changes this thread's network
    // namespace (allowed in a multi-threaded process), no memory is involved.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// One datagram a [`UdpServer`] received: who sent it and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub from: SocketAddr,
    pub payload: Vec<u8>,
}

/// A UDP listener in a namespace that records every datagram and, if `echo`, answers each
/// with `"{source ip}:{source port} {payload}"` so the sender learns what the far side saw.
pub struct UdpServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<Datagram>>>,
    task: Option<NsTask<()>>,
}

impl UdpServer {
    pub fn start(ns: &str, bind: SocketAddr, echo: bool) -> UdpServer {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let (st, rec) = (stop.clone(), received.clone());
        let task = in_ns(ns, &format!("udp server {bind}"), move || {
            let sock = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind udp {bind}: {e}"));
            sock.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                rec.lock().unwrap().push(Datagram {
                    from,
                    payload: buf[..n].to_vec(),
                });
                if echo {
                    let mut reply = format!("{} {} ", from.ip(), from.port()).into_bytes();
                    reply.extend_from_slice(&buf[..n]);
                    let _ = sock.send_to(&reply, from);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("udp server did not start");
        UdpServer {
            addr: bind,
            stop,
            received,
            task: Some(task),
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Datagram> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            if !std::thread::panicking() {
                t.join(Duration::from_secs(5));
            }
        }
    }
}

/// Sends `payload` from `bind` (in `ns`) to `dst` and waits for one reply, resending every
/// 500 ms until `timeout`. Returns the reply and who sent it, or `None`.
pub fn udp_request(
    ns: &str,
    bind: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Option<Datagram> {
    let payload = payload.to_vec();
    in_ns(ns, "udp request", move || {
        let sock = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind udp {bind}: {e}"));
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let _ = sock.send_to(&payload, dst);
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                return Some(Datagram {
                    from,
                    payload: buf[..n].to_vec(),
                });
            }
        }
        None
    })
    .join(timeout + Duration::from_secs(5))
}

/// Sends each of `payloads` once from `bind` (in `ns`) to `dst`, no replies expected.
pub fn udp_send(ns: &str, bind: SocketAddr, dst: SocketAddr, payloads: Vec<Vec<u8>>) {
    in_ns(ns, "udp send", move || {
        let sock = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind udp {bind}: {e}"));
        for p in payloads {
            sock.send_to(&p, dst)
                .unwrap_or_else(|e| panic!("send udp to {dst}: {e}"));
        }
    })
    .join(Duration::from_secs(10));
}

/// Outcome of [`tcp_transfer`].
#[derive(Debug, Clone)]
pub struct TransferReport {
    pub sent_bytes: u64,
    pub sent_sha256: String,
    pub received_bytes: u64,
    pub received_sha256: String,
    /// Offset of the first received byte that differs from the sent stream, if any.
    pub first_mismatch: Option<u64>,
    /// The connection's source address as the receiver saw it.
    pub peer: SocketAddr,
    pub elapsed: Duration,
}

impl TransferReport {
    pub fn mbit_per_s(&self) -> f64 {
        self.received_bytes as f64 * 8.0 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Streams `nbytes` of a deterministic pattern over TCP from namespace `from_ns` to a receiver
/// listening on `dst` in `to_ns`. Each end pipes what it saw through `sha256sum` (the debug
/// build's own SHA-256 runs at ~13 MB/s and would dominate the test), and the receiver also
/// compares every byte with the pattern to report the first corrupted offset.
pub fn tcp_transfer(
    from_ns: &str,
    to_ns: &str,
    dst: SocketAddrV4,
    nbytes: u64,
    timeout: Duration,
) -> TransferReport {
    let (tx, rx) = mpsc::channel();
    let sink = in_ns(to_ns, &format!("tcp sink {dst}"), move || {
        let listener = TcpListener::bind(dst).unwrap_or_else(|e| panic!("bind tcp {dst}: {e}"));
        listener.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        let deadline = Instant::now() + timeout;
        let (mut conn, peer) = loop {
            match listener.accept() {
                Ok(c) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "tcp sink {dst}: no connection within {timeout:?}"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let pattern = Pattern::new();
        let mut hash = Sha256Sum::start();
        let (mut buf, mut want) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
        let (mut total, mut filled, mut chunk, mut mismatch) = (0u64, 0usize, 0u64, None);
        let mut check = |buf: &[u8], chunk: u64, mismatch: &mut Option<u64>| {
            hash.write(buf);
            if mismatch.is_none() {
                pattern.fill(chunk, &mut want);
                // memcmp first: a byte loop is slow in a debug build.
                if buf != &want[..buf.len()] {
                    let i = buf.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
                    *mismatch = Some(chunk * CHUNK as u64 + i as u64);
                }
            }
        };
        loop {
            assert!(
                Instant::now() < deadline,
                "tcp sink {dst}: stream not finished within {timeout:?}"
            );
            match conn.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    total += n as u64;
                    filled += n;
                    if filled == CHUNK {
                        check(&buf, chunk, &mut mismatch);
                        chunk += 1;
                        filled = 0;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("tcp sink {dst}: read after {total} bytes: {e}"),
            }
        }
        check(&buf[..filled], chunk, &mut mismatch);
        (total, hash.finish(), mismatch, peer)
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("tcp sink did not start");

    let start = Instant::now();
    let source = in_ns(from_ns, &format!("tcp source → {dst}"), move || {
        let mut conn = TcpStream::connect_timeout(&dst.into(), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect {dst}: {e}"));
        conn.set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let pattern = Pattern::new();
        let mut hash = Sha256Sum::start();
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        for chunk in 0.. {
            if sent == nbytes {
                break;
            }
            let n = (nbytes - sent).min(CHUNK as u64) as usize;
            pattern.fill(chunk, &mut buf);
            hash.write(&buf[..n]);
            conn.write_all(&buf[..n])
                .unwrap_or_else(|e| panic!("send to {dst} after {sent} bytes: {e}"));
            sent += n as u64;
        }
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        hash.finish()
    });
    let sent_sha256 = source.join(timeout + Duration::from_secs(5));
    let (received_bytes, received_sha256, first_mismatch, peer) =
        sink.join(timeout + Duration::from_secs(5));
    TransferReport {
        sent_bytes: nbytes,
        sent_sha256,
        received_bytes,
        received_sha256,
        first_mismatch,
        peer,
        elapsed: start.elapsed(),
    }
}

const CHUNK: usize = 256 * 1024;
const PAGE: usize = 4096;
const BLOCK_PAGES: usize = 251; // prime: page contents repeat only every 251 pages

/// The stream: page `i` (4 KiB) is `i` as u64 LE followed by 4088 pseudo-random bytes taken
/// from a fixed block at page `i % 251`, so every page is distinct and cheap to produce.
struct Pattern {
    block: Vec<u8>,
}

impl Pattern {
    fn new() -> Pattern {
        let mut block = vec![0u8; BLOCK_PAGES * (PAGE - 8)];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15; // xorshift64
        for c in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        Pattern { block }
    }

    /// Fills `buf` (CHUNK bytes) with chunk number `chunk` of the stream.
    fn fill(&self, chunk: u64, buf: &mut [u8]) {
        let first_page = chunk * (CHUNK / PAGE) as u64;
        for (i, page) in buf.chunks_mut(PAGE).enumerate() {
            let n = first_page + i as u64;
            let body = (n % BLOCK_PAGES as u64) as usize * (PAGE - 8);
            page[..8].copy_from_slice(&n.to_le_bytes());
            page[8..].copy_from_slice(&self.block[body..body + PAGE - 8]);
        }
    }
}

/// SHA-256 of a byte stream, computed by a `sha256sum` child fed through a pipe.
struct Sha256Sum {
    child: std::process::Child,
}

impl Sha256Sum {
    fn start() -> Sha256Sum {
        let child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sha256sum");
        Sha256Sum { child }
    }

    fn write(&mut self, data: &[u8]) {
        self.child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(data)
            .expect("write to sha256sum");
    }

    fn finish(mut self) -> String {
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output().expect("sha256sum");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// `ip:port` helper.
pub fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

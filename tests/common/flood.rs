//! An IKE_SA_INIT flood from a namespace of the test: the unauthenticated load a responder
//! must survive (RFC 7296 §2.6, RFC 8019).
//!
//! Two request templates are built once with the crate's own codec ([`ipsec_server::wire`]):
//! one whose KE value is all zeros (invalid, RFC 6989) and one well-formed request for the
//! configured suite (SA proposal, KE of the group's length and in range, a 32-byte nonce).
//! The sender threads alternate between them and only patch the 8 SPIi bytes per datagram,
//! with a fresh pseudo-random SPIi each time. Cookies are never answered: whatever comes back
//! stays in the sockets' buffers and is dropped by the kernel.
//!
//! Bounded: every thread stops at its deadline or when told to. The sockets are connected to
//! the target (one route lookup per socket, not per datagram); each system call sends a batch
//! of 32 datagrams on one of them (UDP GSO, or `sendmmsg(2)` without it), the next batch on
//! the next socket. The gateway receives ordinary separate datagrams either way.
// System calls std does not wrap: sendmmsg(2) and UDP GSO on raw socket descriptors.
#![allow(unsafe_code)]

use super::charon::Suite;
use super::net::{in_ns, NsTask};
use ipsec_server::wire::{
    dh, encr, integ, prf, ExchangeType, Header, KePayload, Message, Payload, PayloadType, Proposal,
    ProtocolId, Transform, TransformType, IKEV2_VERSION,
};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to send.
#[derive(Debug, Clone)]
pub struct FloodConfig {
    /// The responder's IKE port (UDP 500).
    pub target: SocketAddrV4,
    /// The flooder's own address (ports are ephemeral, one per socket).
    pub source: Ipv4Addr,
    /// Sockets (source ports) per thread; datagrams go round-robin over them.
    pub sockets_per_thread: usize,
    pub threads: usize,
    /// Target datagrams per second over all threads (paced); the achieved rate is reported.
    pub rate: u64,
    pub duration: Duration,
    /// The suite the well-formed requests propose (must be the responder's).
    pub suite: Suite,
}

/// The outcome of a flood.
#[derive(Debug, Clone, Copy)]
pub struct FloodReport {
    /// Datagrams the kernel accepted for sending.
    pub sent: u64,
    /// Sends that failed (e.g. ENOBUFS); not counted in `sent`.
    pub send_errors: u64,
    /// Whether the batches went out with UDP GSO (else with `sendmmsg`).
    pub gso: bool,
    pub elapsed: Duration,
}

impl FloodReport {
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A running flood; [`Flood::stop`] ends it (dropping it does too).
pub struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    gso: bool,
    tasks: Vec<NsTask<(Instant, Instant)>>,
}

impl Flood {
    /// Starts `cfg.threads` sender threads in namespace `ns`; returns once every thread has
    /// bound and connected its sockets (≤ 5 s).
    pub fn start(ns: &str, cfg: &FloodConfig) -> Flood {
        let templates = Arc::new(sa_init_templates(cfg.suite));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let gso = Arc::new(AtomicBool::new(true));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<Instant>();
        let go_rx = Arc::new(std::sync::Mutex::new(go_rx));
        let per_thread_rate = (cfg.rate as f64 / cfg.threads as f64).max(1.0);
        let tasks = (0..cfg.threads)
            .map(|t| {
                let (templates, stop, sent, errors, ready_tx, go_rx, gso) = (
                    templates.clone(),
                    stop.clone(),
                    sent.clone(),
                    errors.clone(),
                    ready_tx.clone(),
                    go_rx.clone(),
                    gso.clone(),
                );
                let cfg = cfg.clone();
                in_ns(ns, &format!("flood sender {t}"), move || {
                    let socks: Vec<UdpSocket> = (0..cfg.sockets_per_thread)
                        .map(|_| {
                            let s = UdpSocket::bind(SocketAddrV4::new(cfg.source, 0))
                                .unwrap_or_else(|e| panic!("flood: bind {}: {e}", cfg.source));
                            s.connect(SocketAddr::V4(cfg.target))
                                .unwrap_or_else(|e| panic!("flood: connect {}: {e}", cfg.target));
                            s
                        })
                        .collect();
                    let batch = Batch::new(&socks, &templates);
                    gso.fetch_and(batch.is_gso(), Ordering::Relaxed);
                    let _ = ready_tx.send(());
                    // All threads start together, once every socket is ready.
                    let Ok(deadline) = go_rx.lock().unwrap().recv() else {
                        let now = Instant::now();
                        return (now, now);
                    };
                    send_loop(
                        &socks,
                        batch,
                        per_thread_rate,
                        deadline,
                        &stop,
                        &sent,
                        &errors,
                    )
                })
            })
            .collect();
        for _ in 0..cfg.threads {
            ready_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("flood sender did not start");
        }
        let deadline = Instant::now() + cfg.duration;
        for _ in 0..cfg.threads {
            let _ = go_tx.send(deadline);
        }
        Flood {
            stop,
            sent,
            errors,
            gso: gso.load(Ordering::Relaxed),
            tasks,
        }
    }

    /// Datagrams sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// True once every sender has reached its deadline (or was stopped).
    pub fn finished(&self) -> bool {
        self.tasks.iter().all(NsTask::is_finished)
    }

    /// Stops the senders (if still running) and reports; the elapsed time is from the first
    /// thread's start to the last one's end of sending.
    pub fn stop(mut self) -> FloodReport {
        self.stop.store(true, Ordering::Relaxed);
        let spans: Vec<(Instant, Instant)> = self
            .tasks
            .drain(..)
            .map(|t| t.join(Duration::from_secs(10)))
            .collect();
        let first = spans.iter().map(|s| s.0).min();
        let last = spans.iter().map(|s| s.1).max();
        FloodReport {
            sent: self.sent.load(Ordering::Relaxed),
            send_errors: self.errors.load(Ordering::Relaxed),
            gso: self.gso,
            elapsed: match (first, last) {
                (Some(a), Some(b)) => b.saturating_duration_since(a),
                _ => Duration::ZERO,
            },
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        // On a panic elsewhere: stop the senders; they end within a few milliseconds.
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Datagrams per system call (all on one socket; the next call uses the next socket).
const BATCH: usize = 32;
/// `setsockopt(SOL_UDP, UDP_SEGMENT)` (Linux ≥ 4.18, `include/uapi/linux/udp.h`).
const UDP_SEGMENT: libc::c_int = 103;

/// How a batch leaves: one `send(2)` of a buffer the kernel cuts into equal datagrams (UDP
/// GSO: the datagrams stay one buffer through the veth and bridge and are split only when
/// they are queued to the gateway's socket, so the flood costs the sender far less CPU), or
/// `sendmmsg(2)` of separate buffers where GSO is unavailable.
enum Batch {
    Gso { buf: Vec<u8>, len: usize },
    Mmsg { bufs: Vec<Vec<u8>> },
}

impl Batch {
    /// Even datagrams carry the all-zero KE, odd ones the well-formed request.
    fn new(socks: &[UdpSocket], templates: &[Vec<u8>; 2]) -> Batch {
        let len = templates[0].len();
        let gso = templates[1].len() == len
            && socks.iter().all(|s| {
                let size = len as libc::c_int;
                // SAFETY: setsockopt(2) reads `size_of::<c_int>()` bytes from a live c_int.
                unsafe {
                    libc::setsockopt(
                        s.as_raw_fd(),
                        libc::SOL_UDP,
                        UDP_SEGMENT,
                        (&size as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    ) == 0
                }
            });
        if gso {
            Batch::Gso {
                buf: (0..BATCH).flat_map(|i| templates[i % 2].clone()).collect(),
                len,
            }
        } else {
            for s in socks {
                let zero: libc::c_int = 0;
                // SAFETY: as above; turning GSO off again on the sockets that took it.
                unsafe {
                    libc::setsockopt(
                        s.as_raw_fd(),
                        libc::SOL_UDP,
                        UDP_SEGMENT,
                        (&zero as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    );
                }
            }
            Batch::Mmsg {
                bufs: (0..BATCH).map(|i| templates[i % 2].clone()).collect(),
            }
        }
    }

    fn is_gso(&self) -> bool {
        matches!(self, Batch::Gso { .. })
    }

    /// Writes a fresh SPIi into each datagram of the batch.
    fn patch_spis(&mut self, mut next_spi: impl FnMut() -> u64) {
        match self {
            Batch::Gso { buf, len } => {
                for d in buf.chunks_mut(*len) {
                    d[..8].copy_from_slice(&next_spi().to_be_bytes());
                }
            }
            Batch::Mmsg { bufs } => {
                for d in bufs {
                    d[..8].copy_from_slice(&next_spi().to_be_bytes());
                }
            }
        }
    }

    /// Sends the batch on the connected `sock`; returns how many datagrams left.
    fn send(&self, sock: &UdpSocket) -> usize {
        match self {
            Batch::Gso { buf, .. } => sock.send(buf).map_or(0, |_| BATCH),
            Batch::Mmsg { bufs } => sendmmsg(sock, bufs),
        }
    }
}

/// Sends round-robin over `socks`, alternating the templates, paced to `rate` per second
/// (this thread's share). Returns when it started and stopped sending.
fn send_loop(
    socks: &[UdpSocket],
    mut batch: Batch,
    rate: f64,
    deadline: Instant,
    stop: &AtomicBool,
    sent: &AtomicU64,
    errors: &AtomicU64,
) -> (Instant, Instant) {
    let mut spi = rand::random::<u64>() | 1; // xorshift64 state: never zero
    let start = Instant::now();
    let (mut tried, mut next_sock) = (0u64, 0usize);
    loop {
        let now = Instant::now();
        if now >= deadline || stop.load(Ordering::Relaxed) {
            return (start, now);
        }
        let due = (now.duration_since(start).as_secs_f64() * rate) as u64;
        if tried + BATCH as u64 > due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        batch.patch_spis(|| {
            spi ^= spi << 13;
            spi ^= spi >> 7;
            spi ^= spi << 17;
            spi
        });
        let ok = batch.send(&socks[next_sock]);
        next_sock = (next_sock + 1) % socks.len();
        tried += BATCH as u64;
        sent.fetch_add(ok as u64, Ordering::Relaxed);
        errors.fetch_add((BATCH - ok) as u64, Ordering::Relaxed);
    }
}

/// One `sendmmsg(2)` of `bufs` on the connected socket `sock`; returns how many were sent.
fn sendmmsg(sock: &UdpSocket, bufs: &[Vec<u8>]) -> usize {
    let mut iov: Vec<libc::iovec> = bufs
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is plain data; all-zero is a valid value (no name, no control).
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: `msgs` holds `msgs.len()` initialised headers whose iovecs point into `bufs`
    // and `iov`, both alive and unmoved for the duration of the call; the kernel only reads
    // them (and writes msg_len). The socket is connected, so no destination is needed.
    let n = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            0,
        )
    };
    usize::try_from(n).unwrap_or(0)
}

/// The two IKE_SA_INIT requests: `[all-zero KE, well-formed]`, SPIi = 0 (patched per send).
pub fn sa_init_templates(suite: Suite) -> [Vec<u8>; 2] {
    let (encr_id, key_bits) = match suite.enc {
        "aes" => (encr::AES_CBC, Some(128)),
        "aes192" => (encr::AES_CBC, Some(192)),
        "aes256" => (encr::AES_CBC, Some(256)),
        "3des" => (encr::TRIPLE_DES, None),
        "des" => (encr::DES, None),
        other => panic!("flood: unknown enc {other:?}"),
    };
    let (prf_id, integ_id) = match suite.auth {
        "md5" => (prf::HMAC_MD5, integ::HMAC_MD5_96),
        "sha1" => (prf::HMAC_SHA1, integ::HMAC_SHA1_96),
        "sha256" => (prf::HMAC_SHA2_256, integ::HMAC_SHA2_256_128),
        "sha384" => (prf::HMAC_SHA2_384, integ::HMAC_SHA2_384_192),
        "sha512" => (prf::HMAC_SHA2_512, integ::HMAC_SHA2_512_256),
        other => panic!("flood: unknown auth {other:?}"),
    };
    // Public value length = the prime's length (RFC 7296 §3.4).
    let (group, ke_len) = match suite.pfs {
        "group1" => (dh::MODP_768, 96),
        "group2" => (dh::MODP_1024, 128),
        "group5" => (dh::MODP_1536, 192),
        "group14" => (dh::MODP_2048, 256),
        "group24" => (dh::MODP_2048_256, 256),
        other => panic!("flood: unknown pfs {other:?}"),
    };
    let mut enc = Transform::new(TransformType::ENCR, encr_id);
    if let Some(bits) = key_bits {
        enc = enc.with_key_length(bits);
    }
    let proposal = Proposal {
        number: 1,
        protocol: ProtocolId::IKE,
        spi: Vec::new(),
        transforms: vec![
            enc,
            Transform::new(TransformType::PRF, prf_id),
            Transform::new(TransformType::INTEG, integ_id),
            Transform::new(TransformType::DH, group),
        ],
    };
    // In range for every MODP prime (their top octet is 0xff, group 24's is 0x87): top octet
    // below 0x80 and nonzero, so 1 < y < p - 1 (RFC 6989 §2.1). For group 24 such a value
    // is still not in the prime-order subgroup (RFC 6989 §2.2); the tests use group 2.
    let mut ke = vec![0u8; ke_len];
    rand::Rng::fill(&mut rand::thread_rng(), &mut ke[..]);
    ke[0] = (ke[0] & 0x7f) | 0x01;
    let mut nonce = vec![0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut nonce[..]);
    let build = |ke_data: Vec<u8>| {
        Message {
            header: Header {
                spi_i: 0,
                spi_r: 0,
                next_payload: PayloadType::SA,
                version: IKEV2_VERSION,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: ipsec_server::wire::FLAG_INITIATOR,
                message_id: 0,
                length: 0,
            },
            payloads: vec![
                Payload::Sa(vec![proposal.clone()]),
                Payload::Ke(KePayload {
                    group,
                    data: ke_data,
                }),
                Payload::Nonce(nonce.clone()),
            ],
        }
        .emit()
        .expect("a small IKE_SA_INIT fits its length fields")
    };
    [build(vec![0u8; ke_len]), build(ke)]
}

//! UDP sockets for IKE (500) and ESP-in-UDP/NAT-T (4500), read and written in batches.
//!
//! docs/BENCH-ANCHORS.md: system calls and wake-ups, not crypto, bound a userspace tunnel, so the
//! data plane moves datagrams with one `recvmmsg(2)`/`sendmmsg(2)` per batch and large
//! socket buffers. `IP_PKTINFO`/`IPV6_RECVPKTINFO` report the address each datagram reached,
//! and replies carry it back as their source, so a gateway with several addresses (or bound to
//! the wildcard) answers from the address the client used (RFC 7296 §2.11, RFC 3948).
//!
//! Invariants:
//! - [`bind`] returns a non-blocking, close-on-exec socket with packet info enabled; an IPv6
//!   socket is `IPV6_V6ONLY`, so `0.0.0.0:p` and `[::]:p` can both be bound.
//! - [`RecvBatch`] and [`SendBatch`] allocate all their storage (payload slots, addresses,
//!   iovecs, control messages, `mmsghdr`s) in `new`; `recv`/`push`/`flush` never allocate.
//!   The raw pointers inside the `mmsghdr`s point only into the batch's own heap buffers,
//!   which are never reallocated and do not move when the batch does: `RecvBatch` sets them
//!   once in `new` (the kernel never writes them), `SendBatch` before each system call.
//! - Only the first `len()` entries of a batch are meaningful; `recv` and `flush` reset it.
//! - A datagram is never split across slots: one longer than the slot is flagged
//!   [`RecvMeta::truncated`] on receive, refused by [`SendBatch::push`] on send.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::time::{Duration, Instant};

use super::{context, last_os_error, poll};

/// How long [`SendBatch::flush`] waits in total for a full socket buffer to drain before it
/// drops what is left of the batch.
pub const FLUSH_WAIT: Duration = Duration::from_millis(10);

/// The most datagrams one `recvmmsg`/`sendmmsg` call handles (`UIO_MAXIOV`); batch sizes
/// are capped to it.
pub const MAX_BATCH: usize = 1024;

/// Creates a UDP socket bound to `addr`: non-blocking, close-on-exec, `SO_REUSEPORT` when
/// `reuse_port` (several sockets, e.g. one per worker, share the port and the kernel spreads
/// the flows over them), receive and send buffers of `buf_bytes` when non-zero
/// (`SO_RCVBUFFORCE`/`SO_SNDBUFFORCE`, falling back to the `rmem_max`/`wmem_max`-capped
/// `SO_RCVBUF`/`SO_SNDBUF` without `CAP_NET_ADMIN`), and packet info enabled.
pub fn bind(addr: SocketAddr, reuse_port: bool, buf_bytes: usize) -> io::Result<UdpSocket> {
    let (domain, family) = match addr {
        SocketAddr::V4(_) => (libc::AF_INET, "IPv4"),
        SocketAddr::V6(_) => (libc::AF_INET6, "IPv6"),
    };
    // SAFETY: socket(2) takes only integer arguments.
    let raw = unsafe {
        libc::socket(
            domain,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::IPPROTO_UDP,
        )
    };
    if raw < 0 {
        return Err(last_os_error(format_args!("udp {addr}: socket({family})")));
    }
    // SAFETY: `raw` is a descriptor socket(2) just returned and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let fd_raw = fd.as_raw_fd();

    if addr.is_ipv6() {
        setsockopt_int(fd_raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)
            .map_err(|e| context(format_args!("udp {addr}: IPV6_V6ONLY"), e))?;
        setsockopt_int(fd_raw, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
            .map_err(|e| context(format_args!("udp {addr}: IPV6_RECVPKTINFO"), e))?;
    } else {
        setsockopt_int(fd_raw, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
            .map_err(|e| context(format_args!("udp {addr}: IP_PKTINFO"), e))?;
    }
    if reuse_port {
        setsockopt_int(fd_raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)
            .map_err(|e| context(format_args!("udp {addr}: SO_REUSEPORT"), e))?;
    }
    if buf_bytes > 0 {
        set_buffer(fd_raw, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, buf_bytes)
            .map_err(|e| context(format_args!("udp {addr}: receive buffer {buf_bytes}"), e))?;
        set_buffer(fd_raw, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, buf_bytes)
            .map_err(|e| context(format_args!("udp {addr}: send buffer {buf_bytes}"), e))?;
    }

    let mut storage = zeroed_storage();
    let len = write_sockaddr(addr, &mut storage);
    // SAFETY: `storage` holds a sockaddr_in/sockaddr_in6 of `len` bytes for the bind call.
    let rc = unsafe {
        libc::bind(
            fd_raw,
            (&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr>(),
            len,
        )
    };
    if rc != 0 {
        return Err(last_os_error(format_args!("udp: bind({addr})")));
    }
    Ok(UdpSocket::from(fd))
}

/// The kernel's receive and send buffer sizes of `sock` (`SO_RCVBUF`, `SO_SNDBUF`; the kernel
/// reports twice what was asked, the other half being its bookkeeping allowance).
pub fn buffer_sizes(sock: &UdpSocket) -> io::Result<(usize, usize)> {
    let fd = sock.as_raw_fd();
    let rcv = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)
        .map_err(|e| context("getsockopt(SO_RCVBUF)", e))?;
    let snd = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)
        .map_err(|e| context("getsockopt(SO_SNDBUF)", e))?;
    Ok((
        usize::try_from(rcv).unwrap_or(0),
        usize::try_from(snd).unwrap_or(0),
    ))
}

/// What `recvmmsg` reported about one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes of the datagram that are in the slot (at most the slot size).
    pub len: usize,
    /// The sender.
    pub src: SocketAddr,
    /// The address the datagram was sent to (`IP_PKTINFO`/`IPV6_PKTINFO`), when reported.
    pub dst_ip: Option<IpAddr>,
    /// The datagram was longer than the slot and its tail was discarded (`MSG_TRUNC`).
    pub truncated: bool,
    /// With UDP GRO ([`enable_gro`]): the kernel coalesced datagrams of this size (the last
    /// may be shorter) into this slot; split it into `segment`-byte chunks.
    pub segment: Option<usize>,
}

/// Turns on UDP GRO (`UDP_GRO`, Linux ≥ 5.0) for `sock`: the kernel may hand over several
/// same-size datagrams of one flow as one, with their size in a control message
/// ([`RecvMeta::segment`]). Receive into slots of at least 65535 bytes then, or coalesced
/// datagrams are truncated.
pub fn enable_gro(sock: &UdpSocket) -> io::Result<()> {
    setsockopt_int(sock.as_raw_fd(), libc::SOL_UDP, UDP_GRO, 1)
        .map_err(|e| context("setsockopt(UDP_GRO)", e))
}

/// The datagrams in `data` as received with `meta`: one, or the chunks of a GRO datagram.
pub fn segments<'a>(meta: &RecvMeta, data: &'a [u8]) -> std::slice::Chunks<'a, u8> {
    let seg = meta.segment.filter(|s| *s > 0).unwrap_or(data.len()).max(1);
    data.chunks(seg)
}

/// Buffers for receiving up to `n` datagrams with one `recvmmsg`.
pub struct RecvBatch {
    buf_size: usize,
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    cmsgs: Vec<CmsgSpace>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    metas: Vec<RecvMeta>,
    count: usize,
}

// SAFETY: the raw pointers in `iovs`/`hdrs` point only into this value's own heap buffers
// (`bufs`, `addrs`, `cmsgs`, `iovs`, never reallocated after `new`) and are never
// dereferenced outside the system call, so moving the batch to another thread is sound.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// Room for `n` datagrams (1..=[`MAX_BATCH`]) of up to `buf_size` bytes (at least 1).
    pub fn new(n: usize, buf_size: usize) -> Self {
        let n = n.clamp(1, MAX_BATCH);
        let buf_size = buf_size.max(1);
        let mut batch = RecvBatch {
            buf_size,
            bufs: vec![0; n * buf_size],
            addrs: vec![zeroed_storage(); n],
            cmsgs: vec![CmsgSpace::default(); n],
            iovs: vec![empty_iovec(); n],
            hdrs: vec![zeroed_mmsghdr(); n],
            metas: vec![EMPTY_META; n],
            count: 0,
        };
        let slots = batch.bufs.chunks_exact_mut(buf_size);
        let parts = batch
            .hdrs
            .iter_mut()
            .zip(batch.iovs.iter_mut())
            .zip(batch.addrs.iter_mut())
            .zip(batch.cmsgs.iter_mut())
            .zip(slots);
        for ((((hdr, iov), addr), cmsg), slot) in parts {
            iov.iov_base = slot.as_mut_ptr().cast();
            iov.iov_len = slot.len();
            let h = &mut hdr.msg_hdr;
            h.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            h.msg_iov = iov;
            h.msg_iovlen = 1;
            h.msg_control = cmsg.0.as_mut_ptr().cast();
        }
        batch.reset_lengths(n);
        batch
    }

    /// Gives the first `n` `mmsghdr`s back their full name and control lengths and clears
    /// what the kernel reports in them: it overwrites exactly these fields of the messages it
    /// fills, never the pointers.
    fn reset_lengths(&mut self, n: usize) {
        for hdr in self.hdrs.iter_mut().take(n) {
            hdr.msg_hdr.msg_namelen = STORAGE_LEN;
            hdr.msg_hdr.msg_controllen = CMSG_CAP as _;
            hdr.msg_hdr.msg_flags = 0;
            hdr.msg_len = 0;
        }
    }

    /// Receives as many datagrams as are queued, up to the batch size, without blocking.
    /// Returns how many (`Ok(0)` when none are queued); they are then read with
    /// [`RecvBatch::get`] until the next `recv`.
    ///
    /// Only the messages the last call filled are reset before the call (one more, to be
    /// safe), not the whole batch: a wake-up that finds one datagram costs one message's
    /// set-up, not 64.
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.reset_lengths(self.count + 1);
        self.count = 0;

        let fd = sock.as_raw_fd();
        let mut interrupts = 0;
        let got = loop {
            // SAFETY: `hdrs` holds `hdrs.len()` mmsghdrs whose pointers (set in `new`) point
            // to live buffers of `self`, exclusively borrowed here, of the lengths given
            // beside them (reset above for every message the kernel may have shortened).
            let rc = unsafe {
                libc::recvmmsg(
                    fd,
                    self.hdrs.as_mut_ptr(),
                    self.hdrs.len() as libc::c_uint,
                    libc::MSG_DONTWAIT as _,
                    ptr::null_mut(),
                )
            };
            if let Ok(n) = usize::try_from(rc) {
                break n;
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => return Ok(0),
                io::ErrorKind::Interrupted if interrupts < 8 => interrupts += 1,
                _ => return Err(context(format_args!("recvmmsg(fd {fd})"), err)),
            }
        };

        let got = got.min(self.hdrs.len());
        for i in 0..got {
            let hdr = &self.hdrs[i];
            let h = &hdr.msg_hdr;
            self.metas[i] = RecvMeta {
                len: (hdr.msg_len as usize).min(self.buf_size),
                src: read_sockaddr(&self.addrs[i], h.msg_namelen).unwrap_or(UNSPECIFIED),
                dst_ip: read_pktinfo(h),
                truncated: h.msg_flags & libc::MSG_TRUNC != 0,
                segment: read_gro_segment(h),
            };
        }
        self.count = got;
        Ok(got)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`]. An index at or past [`RecvBatch::len`]
    /// gives an empty datagram from `0.0.0.0:0` rather than a panic.
    pub fn get(&self, i: usize) -> (&RecvMeta, &[u8]) {
        if i >= self.count {
            return (&EMPTY_META, &[]);
        }
        let meta = &self.metas[i];
        let start = i * self.buf_size;
        (meta, &self.bufs[start..start + meta.len])
    }

    /// The datagrams of the last [`RecvBatch::recv`], in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&RecvMeta, &[u8])> + '_ {
        (0..self.count).map(|i| self.get(i))
    }

    /// How many datagrams the last [`RecvBatch::recv`] returned.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the last [`RecvBatch::recv`] returned nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The most datagrams one `recv` returns.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// The slot size: longer datagrams are truncated.
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.capacity())
            .field("buf_size", &self.buf_size)
            .field("len", &self.count)
            .finish()
    }
}

/// Up to `n` outgoing datagrams, sent with `sendmmsg` by [`SendBatch::flush`].
pub struct SendBatch {
    buf_size: usize,
    bufs: Vec<u8>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    cmsgs: Vec<CmsgSpace>,
    cmsg_lens: Vec<usize>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// Destination and source of each queued datagram, to find GSO runs.
    dsts: Vec<SocketAddr>,
    srcs: Vec<Option<IpAddr>>,
    /// Datagrams carried by each `mmsghdr` of the last flush (1, or a GSO run).
    groups: Vec<usize>,
    gso: bool,
    count: usize,
    dropped: u64,
}

// SAFETY: as for `RecvBatch`: the raw pointers point only into this value's own heap
// buffers, are rewritten before every system call and are never dereferenced otherwise.
unsafe impl Send for SendBatch {}

impl SendBatch {
    /// Room for `n` datagrams (1..=[`MAX_BATCH`]) of up to `buf_size` bytes (at least 1).
    pub fn new(n: usize, buf_size: usize) -> Self {
        let n = n.clamp(1, MAX_BATCH);
        let buf_size = buf_size.max(1);
        SendBatch {
            buf_size,
            bufs: vec![0; n * buf_size],
            lens: vec![0; n],
            addrs: vec![zeroed_storage(); n],
            addr_lens: vec![0; n],
            cmsgs: vec![CmsgSpace::default(); n],
            cmsg_lens: vec![0; n],
            iovs: vec![empty_iovec(); n],
            hdrs: vec![zeroed_mmsghdr(); n],
            dsts: vec![UNSPECIFIED; n],
            srcs: vec![None; n],
            groups: vec![0; n],
            gso: false,
            count: 0,
            dropped: 0,
        }
    }

    /// Turns UDP GSO on or off (off by default). With it, [`SendBatch::flush`] sends each run
    /// of consecutive datagrams to the same destination from the same source, all of one
    /// length but the last (which may be shorter), as one message with a `UDP_SEGMENT`
    /// control message: the kernel builds the datagrams, one pass through the stack instead
    /// of one per datagram (docs/BENCH-ANCHORS.md). The datagrams on the wire are the same. If the
    /// kernel refuses a GSO message (no checksum offload on the route, an old kernel), GSO
    /// turns itself off for the batch's lifetime.
    pub fn set_gso(&mut self, on: bool) {
        self.gso = on;
    }

    /// Whether UDP GSO is in use (see [`SendBatch::set_gso`]).
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// The next free slot (`buf_size` bytes) to build a datagram in place, or `None` when the
    /// batch is full. Nothing is queued until [`SendBatch::commit`].
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        if self.is_full() {
            return None;
        }
        let start = self.count * self.buf_size;
        Some(&mut self.bufs[start..start + self.buf_size])
    }

    /// Queues the first `len` bytes of the slot last returned by [`SendBatch::slot`] for
    /// `dst`, leaving from `src_ip` when given (and of `dst`'s family). When the batch is full
    /// or `len` exceeds the slot, nothing is queued and the datagram counts as dropped.
    pub fn commit(&mut self, len: usize, dst: SocketAddr, src_ip: Option<IpAddr>) {
        if self.is_full() || len > self.buf_size {
            self.dropped += 1;
            return;
        }
        let i = self.count;
        self.lens[i] = len;
        self.addr_lens[i] = write_sockaddr(dst, &mut self.addrs[i]);
        self.cmsg_lens[i] = write_pktinfo(&mut self.cmsgs[i], dst, src_ip);
        self.dsts[i] = dst;
        self.srcs[i] = src_ip;
        self.count += 1;
    }

    /// The queued datagrams from index `from` on, each as long as it was committed, to
    /// finish in place before [`SendBatch::flush`] (e.g. encrypt a group of them together).
    pub fn queued_mut(&mut self, from: usize) -> impl Iterator<Item = &mut [u8]> + '_ {
        let count = self.count;
        self.bufs
            .chunks_exact_mut(self.buf_size)
            .zip(&self.lens)
            .take(count)
            .skip(from)
            .map(|(buf, &len)| &mut buf[..len])
    }

    /// Unqueues the datagrams from index `len` on (they are not sent).
    pub fn truncate(&mut self, len: usize) {
        self.count = self.count.min(len);
    }

    /// Copies `data` into the next slot and queues it; `false` (nothing queued) when the
    /// batch is full or `data` is longer than a slot.
    pub fn push(&mut self, data: &[u8], dst: SocketAddr, src_ip: Option<IpAddr>) -> bool {
        let Some(slot) = self.slot() else {
            return false;
        };
        let Some(dst_bytes) = slot.get_mut(..data.len()) else {
            return false;
        };
        dst_bytes.copy_from_slice(data);
        self.commit(data.len(), dst, src_ip);
        true
    }

    /// Sends the queued datagrams with as few `sendmmsg` calls as the kernel allows and
    /// empties the batch. Returns how many the kernel accepted.
    ///
    /// A datagram the kernel refuses (unreachable network, a source address that is not
    /// local, wrong family, …) is dropped and the rest still go; when the socket buffer is
    /// full, it waits up to [`FLUSH_WAIT`] in all for room, then drops the remainder. Drops
    /// are counted in [`SendBatch::dropped`]. An error is returned only when nothing was
    /// sent and some datagram failed for a reason other than a full buffer.
    pub fn flush(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        let total = self.count;
        self.count = 0;
        if total == 0 {
            return Ok(0);
        }
        let msgs = self.build_messages(total);
        let fd = sock.as_raw_fd();
        let mut off = 0;
        let mut sent = 0;
        let mut first_err: Option<io::Error> = None;
        let mut deadline: Option<Instant> = None;
        // Each round either sends, drops one datagram, or waits; this bounds the loop even
        // against a kernel that keeps answering EINTR.
        let mut rounds_left = 2 * total + 64;
        while off < msgs && rounds_left > 0 {
            rounds_left -= 1;
            let rest = &mut self.hdrs[off..msgs];
            // SAFETY: `rest` holds mmsghdrs whose pointers were just set to live buffers of
            // the lengths given beside them; the kernel only reads them and writes msg_len.
            let rc = unsafe {
                libc::sendmmsg(
                    fd,
                    rest.as_mut_ptr(),
                    rest.len() as libc::c_uint,
                    libc::MSG_DONTWAIT as _,
                )
            };
            let err = match usize::try_from(rc) {
                Ok(0) => io::Error::from(io::ErrorKind::WouldBlock),
                Ok(n) => {
                    sent += self.groups[off..off + n].iter().sum::<usize>();
                    off += n;
                    continue;
                }
                Err(_) => io::Error::last_os_error(),
            };
            match err.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    let now = Instant::now();
                    let until = *deadline.get_or_insert(now + FLUSH_WAIT);
                    if now >= until {
                        break;
                    }
                    // An error here only ends the wait early; the next round finds out.
                    let _ = poll::wait_writable(fd, until - now);
                }
                _ => {
                    let run = self.groups[off];
                    if run > 1 {
                        // A GSO message refused (EIO without checksum offload, EINVAL on an
                        // old kernel): send one datagram per message from now on.
                        self.gso = false;
                    }
                    if first_err.is_none() {
                        let dst =
                            read_sockaddr(&self.hdr_addr(off), self.hdrs[off].msg_hdr.msg_namelen);
                        first_err =
                            Some(context(format_args!("sendmmsg(fd {fd}) to {dst:?}"), err));
                    }
                    off += 1;
                    self.dropped += run as u64;
                }
            }
        }
        self.dropped += self.groups[off..msgs].iter().sum::<usize>() as u64;
        match first_err {
            Some(e) if sent == 0 => Err(e),
            _ => Ok(sent),
        }
    }

    /// How many datagrams are queued.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Points the first `mmsghdr`s at the `total` queued datagrams, one message per datagram
    /// or, with GSO, per run (see [`SendBatch::set_gso`]); returns how many messages.
    fn build_messages(&mut self, total: usize) -> usize {
        let bs = self.buf_size;
        let mut msgs = 0;
        let mut i = 0;
        while i < total {
            let seg = self.lens[i];
            let mut j = i + 1;
            if self.gso {
                let mut bytes = seg;
                while j < total
                    && j - i < GSO_MAX_SEGMENTS
                    && self.lens[j - 1] == seg
                    && self.lens[j] <= seg
                    && bytes + self.lens[j] <= GSO_MAX_BYTES
                    && self.dsts[j] == self.dsts[i]
                    && self.srcs[j] == self.srcs[i]
                {
                    bytes += self.lens[j];
                    j += 1;
                }
            }
            for k in i..j {
                self.iovs[k].iov_base = self.bufs[k * bs..].as_mut_ptr().cast();
                self.iovs[k].iov_len = self.lens[k];
            }
            let mut clen = self.cmsg_lens[i];
            if j - i > 1 {
                // seg ≤ buf_size and a datagram ≤ 64 KiB: fits u16 (checked in commit).
                let gso_size = u16::try_from(seg).unwrap_or(u16::MAX);
                clen += write_cmsg_at(
                    &mut self.cmsgs[i],
                    clen,
                    libc::SOL_UDP,
                    UDP_SEGMENT,
                    gso_size,
                );
            }
            let hdr = &mut self.hdrs[msgs];
            let h = &mut hdr.msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = self.addr_lens[i];
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = j - i;
            if clen > 0 {
                h.msg_control = self.cmsgs[i].0.as_mut_ptr().cast();
                h.msg_controllen = clen as _;
            } else {
                h.msg_control = ptr::null_mut();
                h.msg_controllen = 0;
            }
            h.msg_flags = 0;
            hdr.msg_len = 0;
            self.groups[msgs] = j - i;
            msgs += 1;
            i = j;
        }
        msgs
    }

    /// The destination of message `m` of the last flush (for error messages).
    fn hdr_addr(&self, m: usize) -> libc::sockaddr_storage {
        let name = self.hdrs[m]
            .msg_hdr
            .msg_name
            .cast::<libc::sockaddr_storage>();
        self.addrs
            .iter()
            .find(|a| ptr::eq(*a, name))
            .copied()
            .unwrap_or_else(zeroed_storage)
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether every slot is taken.
    pub fn is_full(&self) -> bool {
        self.count >= self.hdrs.len()
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// The slot size.
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// Datagrams dropped since the batch was made (refused by the kernel, left over after
    /// [`FLUSH_WAIT`], or committed into a full batch / with an oversize length).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("capacity", &self.capacity())
            .field("buf_size", &self.buf_size)
            .field("len", &self.count)
            .field("dropped", &self.dropped)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// helpers

/// Control-message room per datagram: one `in6_pktinfo` needs `CMSG_SPACE(20)` = 40 bytes
/// on 64-bit Linux; the rest leaves space for a `UDP_GRO`/`UDP_SEGMENT` message later.
const CMSG_CAP: usize = 64;

/// Control-message storage aligned for `cmsghdr` (whose first field is a `size_t`).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgSpace([u8; CMSG_CAP]);

impl Default for CmsgSpace {
    fn default() -> Self {
        CmsgSpace([0; CMSG_CAP])
    }
}

const STORAGE_LEN: libc::socklen_t = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

const UNSPECIFIED: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

static EMPTY_META: RecvMeta = RecvMeta {
    len: 0,
    src: UNSPECIFIED,
    dst_ip: None,
    truncated: false,
    segment: None,
};

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain integers and padding; all-zero is a valid value.
    unsafe { mem::zeroed() }
}

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is integers and raw pointers; all-zero (null pointers) is valid.
    unsafe { mem::zeroed() }
}

fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: ptr::null_mut(),
        iov_len: 0,
    }
}

/// Writes `addr` as a `sockaddr_in`/`sockaddr_in6` into `out`; returns its length.
fn write_sockaddr(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    *out = zeroed_storage();
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and at least as aligned as sockaddr_in.
            unsafe { ptr::write((out as *mut libc::sockaddr_storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and at least as aligned as sockaddr_in6.
            unsafe { ptr::write((out as *mut libc::sockaddr_storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads the address the kernel wrote into `ss` (`len` bytes); `None` for another family.
fn read_sockaddr(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in; storage is larger and
            // at least as aligned.
            let sin: libc::sockaddr_in =
                unsafe { ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The segment size of a datagram the kernel coalesced (`UDP_GRO` control message).
fn read_gro_segment(h: &libc::msghdr) -> Option<usize> {
    // SAFETY: as in `read_pktinfo`: `h` was just filled by the kernel, the walk stays inside
    // msg_controllen, and the int payload is read unaligned after a length check.
    unsafe {
        let mut cm = libc::CMSG_FIRSTHDR(h);
        while !cm.is_null() {
            let c = &*cm;
            let data_len = (c.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            if c.cmsg_level == libc::SOL_UDP
                && c.cmsg_type == UDP_GRO
                && data_len >= mem::size_of::<libc::c_int>()
            {
                let v: libc::c_int = ptr::read_unaligned(libc::CMSG_DATA(cm).cast());
                return usize::try_from(v).ok().filter(|v| *v > 0);
            }
            cm = libc::CMSG_NXTHDR(h, cm);
        }
    }
    None
}

/// Finds the destination address in the `IP_PKTINFO`/`IPV6_PKTINFO` control message of a
/// received datagram.
fn read_pktinfo(h: &libc::msghdr) -> Option<IpAddr> {
    // SAFETY: `h` is a msghdr the kernel just filled: msg_control points to our CMSG_CAP-byte
    // buffer and msg_controllen (≤ CMSG_CAP) is how much of it holds control messages, which
    // is what CMSG_FIRSTHDR/CMSG_NXTHDR walk. The payloads are read unaligned, by value, and
    // only after checking that the message is long enough for them.
    unsafe {
        let mut cm = libc::CMSG_FIRSTHDR(h);
        while !cm.is_null() {
            let c = &*cm;
            let data = libc::CMSG_DATA(cm);
            let data_len = (c.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            if c.cmsg_level == libc::IPPROTO_IP
                && c.cmsg_type == libc::IP_PKTINFO
                && data_len >= mem::size_of::<libc::in_pktinfo>()
            {
                let info: libc::in_pktinfo = ptr::read_unaligned(data.cast());
                return Some(IpAddr::V4(Ipv4Addr::from(
                    info.ipi_addr.s_addr.to_ne_bytes(),
                )));
            }
            if c.cmsg_level == libc::IPPROTO_IPV6
                && c.cmsg_type == libc::IPV6_PKTINFO
                && data_len >= mem::size_of::<libc::in6_pktinfo>()
            {
                let info: libc::in6_pktinfo = ptr::read_unaligned(data.cast());
                return Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            }
            cm = libc::CMSG_NXTHDR(h, cm);
        }
    }
    None
}

/// Writes a source-address control message for a datagram to `dst` into `space`; returns
/// its length (0 when there is none: no `src`, or `src` of another family than `dst`).
fn write_pktinfo(space: &mut CmsgSpace, dst: SocketAddr, src: Option<IpAddr>) -> usize {
    match (dst, src) {
        (SocketAddr::V4(_), Some(IpAddr::V4(ip))) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(ip.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            write_cmsg(space, libc::IPPROTO_IP, libc::IP_PKTINFO, info)
        }
        (SocketAddr::V6(_), Some(IpAddr::V6(ip))) => {
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: ip.octets(),
                },
                ipi6_ifindex: 0,
            };
            write_cmsg(space, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, info)
        }
        _ => 0,
    }
}

/// `UDP_GRO` (linux/udp.h): the socket option, and the control message with the segment size
/// (an `int`) of a coalesced datagram.
const UDP_GRO: libc::c_int = 104;

/// `UDP_SEGMENT` (linux/udp.h): the GSO segment size of a send, a `u16`.
const UDP_SEGMENT: libc::c_int = 103;
/// The kernel's limit on segments per GSO send (`UDP_MAX_SEGMENTS`, 64 before Linux 6.9).
const GSO_MAX_SEGMENTS: usize = 64;
/// Payload bytes of one GSO send: an IPv4 datagram's 65535 bytes less IP and UDP headers,
/// with room for IPv6's longer header.
const GSO_MAX_BYTES: usize = 65535 - 40 - 8;

/// Appends one control message carrying `value` at byte `at` (a `CMSG_SPACE` multiple, so
/// aligned) of `space`; returns its `CMSG_SPACE`, or 0 (nothing written) without room.
fn write_cmsg_at<T: Copy>(
    space: &mut CmsgSpace,
    at: usize,
    level: libc::c_int,
    ty: libc::c_int,
    value: T,
) -> usize {
    let size = mem::size_of::<T>() as libc::c_uint;
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
    let (cmsg_space, cmsg_len) = unsafe { (libc::CMSG_SPACE(size), libc::CMSG_LEN(size)) };
    let cmsg_space = cmsg_space as usize;
    if at % mem::align_of::<libc::cmsghdr>() != 0 || at + cmsg_space > CMSG_CAP {
        return 0;
    }
    space.0[at..at + cmsg_space].fill(0);
    // SAFETY: `space` is 8-aligned and `at` a multiple of cmsghdr's alignment, so the header
    // is aligned; `at + cmsg_space` ≤ CMSG_CAP bytes covers the header and the payload of
    // size_of::<T>() bytes; the header is written field by field, the payload unaligned.
    unsafe {
        let hdr = space.0.as_mut_ptr().add(at).cast::<libc::cmsghdr>();
        (*hdr).cmsg_len = cmsg_len as _;
        (*hdr).cmsg_level = level;
        (*hdr).cmsg_type = ty;
        ptr::write_unaligned(libc::CMSG_DATA(hdr).cast::<T>(), value);
    }
    cmsg_space
}

/// Writes one control message carrying `value` at the start of `space`; returns
/// `CMSG_SPACE(size_of::<T>())`, the `msg_controllen` to send it with.
fn write_cmsg<T: Copy>(
    space: &mut CmsgSpace,
    level: libc::c_int,
    ty: libc::c_int,
    value: T,
) -> usize {
    space.0 = [0; CMSG_CAP];
    let size = mem::size_of::<T>() as libc::c_uint;
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
    let (cmsg_space, cmsg_len) = unsafe { (libc::CMSG_SPACE(size), libc::CMSG_LEN(size)) };
    let cmsg_space = cmsg_space as usize;
    if cmsg_space > CMSG_CAP {
        return 0;
    }
    let hdr = space.0.as_mut_ptr().cast::<libc::cmsghdr>();
    // SAFETY: `space` is 8-aligned (as cmsghdr needs) and `cmsg_space` ≤ CMSG_CAP bytes long,
    // which covers the header and the CMSG_DATA payload of size_of::<T>() bytes; the header
    // is written field by field over zeroed bytes and the payload unaligned.
    unsafe {
        (*hdr).cmsg_len = cmsg_len as _;
        (*hdr).cmsg_level = level;
        (*hdr).cmsg_type = ty;
        ptr::write_unaligned(libc::CMSG_DATA(hdr).cast::<T>(), value);
    }
    cmsg_space
}

/// Sets a buffer size with the privileged option, falling back to the capped one on EPERM.
fn set_buffer(fd: RawFd, force: libc::c_int, plain: libc::c_int, bytes: usize) -> io::Result<()> {
    // The kernel doubles the value; keep the doubled value within an int.
    let v = libc::c_int::try_from(bytes)
        .unwrap_or(libc::c_int::MAX)
        .min(libc::c_int::MAX / 2);
    match setsockopt_int(fd, libc::SOL_SOCKET, force, v) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            setsockopt_int(fd, libc::SOL_SOCKET, plain, v)
        }
        Err(e) => Err(e),
    }
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` lives across the call and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` live across the call; `len` says how big `value` is.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[path = "udp_tests.rs"]
mod tests;

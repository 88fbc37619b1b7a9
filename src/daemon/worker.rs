//! A data-plane worker: one TUN queue and one UDP 4500 socket (SO_REUSEPORT) per listen
//! address, batched receive and send, lock-free SA lookups. ESP to a client leaves through
//! the socket of the address its Child SA was negotiated on (`super::sockets`), so a client
//! sees the address and port it talks to.
//!
//! Packets of one flow stay on one worker: the kernel hashes a client's UDP 4-tuple to one
//! reuse-port socket and a TUN flow to one queue, so TCP is not reordered.
//!
//! With TUN offload (docs/BENCH-ANCHORS.md) the packets decrypted from one `recvmmsg` batch are
//! written with one [`TunQueue::send_batch`]: consecutive TCP segments of a flow are coalesced
//! into one super-packet (GRO), so the kernel forwards one skb instead of dozens. In the other
//! direction one TUN read may bring a TSO super-packet, split into MTU-sized packets before
//! sealing. ESP is sealed and opened in runs of up to [`PAR_BLOCKS`] packets of one SA: CBC
//! chains interleaved on the way out, HMAC-SHA1 lanes for the ICVs both ways (sealing signs a
//! run at once, opening checks a run's ICVs at once, `InboundSa::open_many`). All buffers are
//! allocated once per worker; the per-packet path does not allocate.
//!
//! A worker runs until its stop flag is set. It returns an error — which ends the process
//! (`super::supervise`) — when its TUN queue is gone (the device was deleted: reads and writes
//! fail with `EBADFD`, see [`tun_gone`]) or its poll fails; errors of one packet (a link that
//! is down, `EIO`; a malformed super-packet) are not the worker's end.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tracing::{debug, warn};

use crate::crypto::PAR_BLOCKS;
use crate::io::tun::{GROTable, TunQueue, IDEAL_BATCH_SIZE, MAX_SUPER_PACKET, VIRTIO_NET_HDR_LEN};
use crate::io::udp::{segments, RecvBatch, SendBatch};
use crate::ipsec::{
    DropReason, EspDrops, EspError, InboundSa, Opened, OutboundSa, Sad, SadSnapshot,
};
use crate::wire::{classify_4500, Ipv4Header, Udp4500};

use super::inbox::{Datagram, Postbox};
use super::sockets::BoundSockets;

/// Datagrams per recvmmsg/sendmmsg call.
const BATCH: usize = 64;
/// Buffer per datagram: an Ethernet-MTU packet plus ESP/UDP overhead fits.
const SLOT: usize = 2048;
/// TUN reads per wake-up (each may bring a super-packet of many segments).
const TUN_BURST: usize = BATCH;
/// Receive slot with UDP GRO: a coalesced datagram is up to 64 KiB.
const GRO_SLOT: usize = 65535;
/// Where packets start in TUN buffers: room for the virtio-net header in front.
const HDR: usize = VIRTIO_NET_HDR_LEN;

/// A worker's buffers, allocated once.
struct Buffers {
    rx: RecvBatch,
    tx: SendBatch,
    /// Decrypted packets of one receive batch, each `HDR + packet`; capacity for GRO growth.
    to_tun: Vec<Vec<u8>>,
    gro: GROTable,
    /// One raw TUN read (virtio-net header + super-packet).
    tun_raw: Vec<u8>,
    /// The packets one TUN read splits into, at `HDR..HDR + sizes[i]`.
    from_tun: Vec<Vec<u8>>,
    sizes: Vec<usize>,
}

impl Buffers {
    fn new(offload: bool, gro_rx: bool) -> Self {
        // Only the first buffer of a flow grows during GRO; without offload nothing grows.
        let cap = if offload {
            HDR + MAX_SUPER_PACKET
        } else {
            HDR + SLOT
        };
        let mut tx = SendBatch::new(BATCH, SLOT);
        // Runs of same-size ESP packets to one client (a split TSO super-packet) go out as
        // one UDP GSO send.
        tx.set_gso(true);
        Buffers {
            rx: RecvBatch::new(BATCH, if gro_rx { GRO_SLOT } else { SLOT }),
            tx,
            to_tun: (0..BATCH).map(|_| Vec::with_capacity(cap)).collect(),
            gro: GROTable::new(),
            tun_raw: vec![0; HDR + MAX_SUPER_PACKET],
            from_tun: (0..IDEAL_BATCH_SIZE).map(|_| vec![0; HDR + SLOT]).collect(),
            sizes: vec![0; IDEAL_BATCH_SIZE],
        }
    }
}

pub(crate) struct Worker {
    pub id: usize,
    pub tun: TunQueue,
    /// UDP 4500 on every listen address.
    pub udp: BoundSockets,
    pub sad: Arc<Sad>,
    /// The IKE thread's queue, for IKE arriving on UDP 4500.
    pub ike: Postbox,
    pub stop: Arc<AtomicBool>,
    /// Held still during an upgrade's capture (`super::pause`).
    pub pause: Arc<super::pause::Pause>,
    pub nat_t_port: u16,
}

impl Worker {
    /// Serves until the stop flag is set; `Err` says why the worker cannot go on.
    pub fn run(self) -> Result<(), String> {
        let mut rng = StdRng::from_entropy();
        // UDP GRO: the kernel hands over runs of ESP datagrams from one peer as one. Where it
        // is on, receive slots must hold a coalesced run.
        let mut gro_rx = false;
        for (addr, sock) in self.udp.iter() {
            match crate::io::udp::enable_gro(sock) {
                Ok(()) => gro_rx = true,
                Err(e) => debug!(worker = self.id, %addr, "no UDP GRO: {e}"),
            }
        }
        let mut b = Buffers::new(self.tun.offload(), gro_rx);
        // One poll set for the worker's life: no allocation per wake-up. The UDP sockets
        // first (in `self.udp`'s order), the TUN queue last.
        let mut fds: Vec<std::os::fd::RawFd> = self.udp.iter().map(|(_, s)| fd(s)).collect();
        fds.push(self.tun.fd());
        let mut poller = crate::io::poll::Poller::new(&fds).map_err(|e| {
            format!(
                "epoll on UDP {} and TUN {}: {e}",
                self.nat_t_port,
                self.tun.name()
            )
        })?;
        let n_udp = self.udp.len();
        let tun = self.tun.name().to_owned();
        let gone = |e: io::Error| format!("TUN {tun} is gone: {e}");
        while !self.stop.load(Ordering::Relaxed) {
            if !self.pause.hold(&self.stop) {
                break;
            }
            // EINTR reports nothing ready; any other failure means a descriptor is not usable.
            poller
                .wait(super::pause::PACKET_WAIT)
                .map_err(|e| format!("poll on UDP {} and TUN {tun}: {e}", self.nat_t_port))?;
            for i in 0..n_udp {
                if poller.ready().get(i).copied().unwrap_or(false) {
                    if let Some((addr, sock)) = self.udp.get(i) {
                        self.network_in(&mut b, *addr, sock).map_err(gone)?;
                    }
                }
            }
            if poller.ready().get(n_udp).copied().unwrap_or(false) {
                self.tun_in(&mut b, &mut rng).map_err(gone)?;
            }
        }
        debug!(worker = self.id, "worker stopped");
        Ok(())
    }

    /// UDP 4500 on listen address `bound`: ESP to decrypt into the TUN, IKE to hand to the
    /// control plane, keepalives. `Err`: the TUN device is gone.
    fn network_in(&self, b: &mut Buffers, bound: IpAddr, udp: &UdpSocket) -> io::Result<()> {
        let Buffers {
            rx, to_tun, gro, ..
        } = b;
        // Bounded: a few batches per wake-up, then give the TUN side its turn.
        for _ in 0..4 {
            let n = match rx.recv(udp) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) => {
                    debug!(worker = self.id, "recvmmsg: {e}");
                    return Ok(());
                }
            };
            let sad = self.sad.snapshot();
            // The datagrams of a batch mostly come from one client on one SA: the SA is looked
            // up once per run of them, not per packet, and up to PAR_BLOCKS packets of a run
            // are opened together (their ICVs checked at once).
            let mut last: Option<(u32, &Arc<InboundSa>)> = None;
            let mut run = Run::default();
            let mut to = TunSlots {
                bufs: &mut to_tun[..],
                k: 0,
                checked: None,
                drops: self.sad.drops(),
            };
            for i in 0..n {
                let (meta, datagram) = rx.get(i);
                for data in segments(meta, datagram) {
                    match classify_4500(data) {
                        Ok(Udp4500::Esp(esp)) => {
                            let spi = u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]);
                            let sa = match last {
                                Some((s, sa)) if s == spi => sa,
                                _ => {
                                    if let Some((s, sa)) = last {
                                        to.open(&sad, s, sa, &mut run);
                                    }
                                    let Some(sa) = sad.inbound(spi) else {
                                        self.sad.drops().count(DropReason::UnknownSpi);
                                        debug!(
                                            spi = format_args!("{spi:08x}"),
                                            "ESP dropped: unknown SPI"
                                        );
                                        continue;
                                    };
                                    last = Some((spi, sa));
                                    sa
                                }
                            };
                            if to.k + run.len == to.bufs.len() {
                                to.open(&sad, spi, sa, &mut run);
                                if to.k == to.bufs.len() {
                                    self.write_tun(gro, to.bufs)?;
                                    to.k = 0;
                                }
                            }
                            run.push(esp, meta.src);
                            if run.len == PAR_BLOCKS {
                                to.open(&sad, spi, sa, &mut run);
                            }
                        }
                        Ok(Udp4500::Ike(ike)) => {
                            let local =
                                SocketAddr::new(meta.dst_ip.unwrap_or(bound), self.nat_t_port);
                            // A full queue drops it (counted); after the IKE thread has
                            // ended (the stack stops) there is no one left to tell.
                            let _ = self.ike.datagram(Datagram {
                                bytes: ike.to_vec(),
                                local,
                                remote: meta.src,
                            });
                        }
                        Ok(Udp4500::Keepalive) => {}
                        Err(_) => {}
                    }
                }
            }
            if let Some((s, sa)) = last {
                to.open(&sad, s, sa, &mut run);
            }
            let k = to.k;
            self.write_tun(gro, &mut to_tun[..k])?;
            if n < BATCH {
                return Ok(());
            }
        }
        Ok(())
    }

    /// TUN: packets for clients, sealed into ESP-in-UDP and sent in batches.
    ///
    /// Sealing is split in two: each packet is framed (header, IV, padding) straight into its
    /// send slot, and a run of consecutive packets to the same SA (typically the segments of
    /// one TSO super-packet) is then encrypted together with interleaved CBC chains and
    /// signed ([`OutboundSa::seal_finish`]) before the batch is flushed. `Err`: the TUN
    /// device is gone.
    fn tun_in(&self, b: &mut Buffers, rng: &mut StdRng) -> io::Result<()> {
        let Buffers {
            tx,
            tun_raw,
            from_tun,
            sizes,
            ..
        } = b;
        let sad = self.sad.snapshot();
        // The SA of the queued packets from index `.1` on that still need `seal_finish`.
        let mut open: Option<(&OutboundSa, usize)> = None;
        // The UDP socket (index in `self.udp`) the queued packets leave through.
        let mut via = 0;
        for _ in 0..TUN_BURST {
            let n = match self.tun.recv_batch(tun_raw, from_tun, sizes, HDR) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if tun_gone(&e) => return Err(e),
                Err(e) => {
                    debug!("TUN read: {e}");
                    break;
                }
            };
            if n == 0 {
                break;
            }
            for (buf, &len) in from_tun.iter().zip(sizes.iter()).take(n) {
                let pkt = &buf[HDR..HDR + len];
                let Some(ip) = Ipv4Header::parse(pkt) else {
                    continue;
                };
                let Some(sa) = sad.outbound(ip.dst()) else {
                    self.sad.drops().count(DropReason::NoSa);
                    continue;
                };
                // From the address the Child SA was negotiated on (validation leaves exactly
                // one socket for it; none only if the SA names an address we do not serve).
                let Some(sock) = self.udp.index_for(sa.local.ip()) else {
                    sa.counters.drop_one();
                    self.sad.drops().count(DropReason::Other);
                    continue;
                };
                if tx.is_full() || (sock != via && !tx.is_empty()) {
                    finish(tx, open.take());
                    self.flush(tx, via);
                }
                via = sock;
                if open.is_some_and(|(o, _)| !std::ptr::eq(o, &**sa)) {
                    finish(tx, open.take());
                }
                let first = tx.len();
                let Some(slot) = tx.slot() else { break };
                match sa.seal_prepare(pkt, slot, rng) {
                    Ok(n) => {
                        tx.commit(n, sa.remote(), Some(sa.local.ip()));
                        open.get_or_insert((sa, first));
                    }
                    // Counted by `seal_prepare` (a source outside the selectors, sequence
                    // numbers used up).
                    Err(e) => {
                        self.sad.drops().count(DropReason::of(&e));
                        debug!(spi = format_args!("{:08x}", sa.spi), "ESP not sealed: {e}");
                    }
                }
            }
        }
        finish(tx, open.take());
        self.flush(tx, via);
        Ok(())
    }

    /// Writes decrypted packets (`HDR..` of each buffer) into the TUN, GRO-coalesced.
    /// `Err`: the TUN device is gone; other failures lose these packets only.
    fn write_tun(&self, gro: &mut GROTable, bufs: &mut [Vec<u8>]) -> io::Result<()> {
        if bufs.is_empty() {
            return Ok(());
        }
        match self.tun.send_batch(gro, bufs, HDR) {
            Err(e) if tun_gone(&e) => Err(e),
            Err(e) => {
                debug!(worker = self.id, "TUN write: {e}");
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    /// Sends the queued packets through UDP socket `via` (an index in `self.udp`).
    fn flush(&self, tx: &mut SendBatch, via: usize) {
        if tx.is_empty() {
            return;
        }
        let Some((_, sock)) = self.udp.get(via) else {
            tx.truncate(0);
            return;
        };
        if let Err(e) = tx.flush(sock) {
            debug!(worker = self.id, "sendmmsg: {e}");
        }
    }
}

/// ESP packets of one SA waiting to be opened together (`..len`), with the addresses they
/// came from.
struct Run<'a> {
    packets: [&'a [u8]; PAR_BLOCKS],
    srcs: [SocketAddr; PAR_BLOCKS],
    len: usize,
}

impl Default for Run<'_> {
    fn default() -> Self {
        Self {
            packets: [&[]; PAR_BLOCKS],
            srcs: [SocketAddr::from(([0, 0, 0, 0], 0)); PAR_BLOCKS],
            len: 0,
        }
    }
}

impl<'a> Run<'a> {
    fn push(&mut self, esp: &'a [u8], src: SocketAddr) {
        (self.packets[self.len], self.srcs[self.len]) = (esp, src);
        self.len += 1;
    }
}

/// The decrypted packets of one receive batch: `bufs[..k]` are ready for the TUN device.
struct TunSlots<'b> {
    bufs: &'b mut [Vec<u8>],
    k: usize,
    /// The SA and outer address last checked against the SA's outbound side (a client's
    /// address changes rarely: checked once per run of its packets, not per packet).
    checked: Option<(u32, SocketAddr)>,
    drops: &'b EspDrops,
}

impl TunSlots<'_> {
    /// Opens `run` (packets of SA `spi`) into the slots after `k`; those that opened stay
    /// there in order and `k` moves past them, the others are counted as drops. Empties
    /// `run`. The caller leaves room: `k + run.len <= bufs.len()`.
    fn open(&mut self, sad: &SadSnapshot, spi: u32, sa: &InboundSa, run: &mut Run<'_>) {
        let n = std::mem::take(&mut run.len);
        if n == 0 {
            return;
        }
        let slots = &mut self.bufs[self.k..self.k + n];
        let mut outs: [&mut [u8]; PAR_BLOCKS] = Default::default();
        for ((out, buf), esp) in outs.iter_mut().zip(slots.iter_mut()).zip(&run.packets[..n]) {
            // Room for the plaintext, which is shorter than the ESP packet. Within capacity:
            // no allocation; and as the buffer held an earlier packet, only the few bytes
            // beyond it are zeroed.
            buf.resize(HDR + esp.len().min(SLOT), 0);
            *out = &mut buf[HDR..];
        }
        let mut results = [Err(EspError::Truncated); PAR_BLOCKS];
        sa.open_many(&run.packets[..n], &mut outs[..n], &mut results[..n]);
        let mut kept = 0;
        for (j, (result, &src)) in results[..n].iter().zip(&run.srcs[..n]).enumerate() {
            match result {
                Ok(Opened::Packet { len, .. }) => {
                    slots[j].truncate(HDR + len);
                    slots.swap(kept, j);
                    kept += 1;
                    if self.checked != Some((spi, src)) {
                        if let Some(out) = sad.outbound(sa.client_vip) {
                            if out.remote() != src {
                                debug!(old = %out.remote(), new = %src, "peer's outer address changed");
                                out.set_remote(src);
                            }
                        }
                        self.checked = Some((spi, src));
                    }
                }
                // Counted by `open_many`; nothing to deliver.
                Ok(Opened::Dummy { .. }) => {}
                Err(e) => {
                    self.drops.count(DropReason::of(e));
                    debug!(spi = format_args!("{spi:08x}"), "ESP dropped: {e}")
                }
            }
        }
        self.k += kept;
    }
}

fn fd(sock: &UdpSocket) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    sock.as_raw_fd()
}

/// Whether a TUN read or write error means the queue will never work again. The kernel
/// answers `EBADFD` on every queue of a device that was deleted (`ip link del`; its poll then
/// reports `POLLERR` at once, so a worker that only logged the error would spin);
/// `ENODEV`, `ENXIO` and `EBADF` leave nothing to retry either. Not fatal: `EIO` (the link is
/// down, which an administrator may undo), `EINVAL` and non-OS errors (one malformed packet).
pub(crate) fn tun_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADFD | libc::ENODEV | libc::ENXIO | libc::EBADF)
    )
}

/// Encrypts and signs the queued packets of `open` (an SA and the index of its first
/// packet); if that fails they are unqueued, never sent in the clear.
fn finish(tx: &mut SendBatch, open: Option<(&OutboundSa, usize)>) {
    let Some((sa, first)) = open else { return };
    if let Err(e) = sa.seal_finish(tx.queued_mut(first)) {
        let dropped = tx.len() - first;
        tx.truncate(first);
        for _ in 0..dropped {
            sa.counters.drop_one();
        }
        warn!(spi = format_args!("{:08x}", sa.spi), "ESP seal failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_vanished_device_is_fatal() {
        let os = io::Error::from_raw_os_error;
        for errno in [libc::EBADFD, libc::ENODEV, libc::ENXIO, libc::EBADF] {
            assert!(tun_gone(&os(errno)), "errno {errno}");
        }
        for errno in [
            libc::EIO,
            libc::EINVAL,
            libc::EAGAIN,
            libc::ENOBUFS,
            libc::EINTR,
        ] {
            assert!(!tun_gone(&os(errno)), "errno {errno}");
        }
        assert!(!tun_gone(&io::Error::other(
            "length of packet (3) <= VIRTIO_NET_HDR_LEN"
        )));
    }
}

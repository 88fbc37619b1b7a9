//! A data-plane worker: one TUN queue and one UDP 4500 socket (SO_REUSEPORT), batched
//! receive and send, lock-free SA lookups.
//!
//! Packets of one flow stay on one worker: the kernel hashes a client's UDP 4-tuple to one
//! reuse-port socket and a TUN flow to one queue, so TCP is not reordered.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tracing::{debug, warn};

use crate::io::tun::TunQueue;
use crate::io::udp::{RecvBatch, SendBatch};
use crate::ipsec::{EspError, Sad};
use crate::wire::{classify_4500, Udp4500};

use super::ControlMsg;

/// Datagrams per recvmmsg/sendmmsg call.
const BATCH: usize = 64;
/// Buffer per datagram: an Ethernet-MTU packet plus ESP/UDP overhead fits.
const SLOT: usize = 2048;
/// TUN packets read per wake-up before the batch is sent.
const TUN_BURST: usize = BATCH;

pub(crate) struct Worker {
    pub id: usize,
    pub tun: TunQueue,
    pub udp: UdpSocket,
    pub sad: Arc<Sad>,
    pub control: Sender<ControlMsg>,
    pub stop: Arc<AtomicBool>,
    pub nat_t_port: u16,
}

impl Worker {
    pub fn run(self) {
        let mut rng = StdRng::from_entropy();
        let mut rx = RecvBatch::new(BATCH, SLOT);
        let mut tx = SendBatch::new(BATCH, SLOT);
        let mut inner = vec![0u8; SLOT];
        let fds = [self.udp_fd(), self.tun.fd()];
        while !self.stop.load(Ordering::Relaxed) {
            let ready = match crate::io::poll::wait_readable(&fds, Duration::from_millis(200)) {
                Ok(r) => r,
                Err(e) => {
                    warn!(worker = self.id, "poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            if ready.first().copied().unwrap_or(false) {
                self.network_in(&mut rx, &mut inner);
            }
            if ready.get(1).copied().unwrap_or(false) {
                self.tun_in(&mut tx, &mut inner, &mut rng);
            }
        }
        debug!(worker = self.id, "worker stopped");
    }

    fn udp_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.udp.as_raw_fd()
    }

    /// UDP 4500: ESP to decrypt into the TUN, IKE to hand to the control plane, keepalives.
    fn network_in(&self, rx: &mut RecvBatch, inner: &mut [u8]) {
        // Bounded: a few batches per wake-up, then give the TUN side its turn.
        for _ in 0..4 {
            let n = match rx.recv(&self.udp) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    debug!(worker = self.id, "recvmmsg: {e}");
                    return;
                }
            };
            let sad = self.sad.snapshot();
            for i in 0..n {
                let (meta, data) = rx.get(i);
                match classify_4500(data) {
                    Ok(Udp4500::Esp(esp)) => {
                        let spi = u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]);
                        let Some(sa) = sad.inbound(spi) else { continue };
                        match sa.open(esp, inner) {
                            Ok(o) => {
                                if let Some(out) = sad.outbound(sa.client_vip) {
                                    if out.remote() != meta.src {
                                        debug!(old = %out.remote(), new = %meta.src, "client's outer address changed");
                                        out.set_remote(meta.src);
                                    }
                                }
                                if let Err(e) = self.tun.send(&inner[..o.len]) {
                                    debug!("TUN write: {e}");
                                }
                            }
                            Err(EspError::Dummy) => {}
                            Err(e) => debug!(spi = format_args!("{spi:08x}"), "ESP dropped: {e}"),
                        }
                    }
                    Ok(Udp4500::Ike(ike)) => {
                        let local = SocketAddr::new(
                            meta.dst_ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                            self.nat_t_port,
                        );
                        let _ = self.control.send(ControlMsg::Ike {
                            bytes: ike.to_vec(),
                            local,
                            remote: meta.src,
                        });
                    }
                    Ok(Udp4500::Keepalive) => {}
                    Err(_) => {}
                }
            }
            if n < BATCH {
                return;
            }
        }
    }

    /// TUN: packets for clients, sealed into ESP-in-UDP and sent as one batch.
    fn tun_in(&self, tx: &mut SendBatch, inner: &mut [u8], rng: &mut StdRng) {
        let sad = self.sad.snapshot();
        for _ in 0..TUN_BURST {
            let len = match self.tun.recv(inner) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    debug!("TUN read: {e}");
                    break;
                }
            };
            let pkt = &inner[..len];
            if len < 20 || pkt[0] >> 4 != 4 {
                continue;
            }
            let dst = std::net::Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
            let Some(sa) = sad.outbound(dst) else {
                continue;
            };
            let Some(slot) = tx.slot() else { break };
            match sa.seal(pkt, slot, rng) {
                Ok(n) => tx.commit(n, sa.remote(), Some(sa.local.ip())),
                Err(e) => {
                    sa.counters.drop_one();
                    debug!(spi = format_args!("{:08x}", sa.spi), "ESP seal failed: {e}");
                }
            }
            if tx.is_full() {
                self.flush(tx);
            }
        }
        self.flush(tx);
    }

    fn flush(&self, tx: &mut SendBatch) {
        if !tx.is_empty() {
            if let Err(e) = tx.flush(&self.udp) {
                debug!(worker = self.id, "sendmmsg: {e}");
            }
        }
    }
}

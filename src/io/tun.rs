//! The TUN device the data plane reads clear packets from and writes decrypted packets to.
//!
//! [`create`] opens a layer-3 TUN device (`IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE`) with one
//! file descriptor per queue, sets its MTU and brings the link up. The kernel spreads the
//! flows it sends into the device over the queues by flow hash, so a worker per queue keeps
//! each flow on one worker (docs/BENCH-ANCHORS.md: reordering halves TCP throughput).
//!
//! Invariants:
//! - Each [`TunQueue`] owns exactly one queue descriptor, non-blocking and close-on-exec, and
//!   closes it on drop. The device is not persistent: it disappears when its last queue is
//!   closed (unless someone else made it persistent before we attached).
//! - Without offload ([`create`]) every read returns exactly one IP packet with no
//!   packet-information header (`IFF_NO_PI`) and no virtio-net header, so `recv`/`send` see
//!   bare IPv4/IPv6 packets.
//! - With offload ([`create_offload`]: `IFF_VNET_HDR`, TSO4/6 + checksum, USO where the kernel
//!   has it) the device exchanges super-packets of up to 64 KiB behind a virtio-net header;
//!   only [`TunQueue::recv_batch`] (splits them into MTU-sized packets, completes partial
//!   checksums) and [`TunQueue::send_batch`] (coalesces consecutive TCP/UDP segments of a
//!   flow into one super-packet, GRO) may be used then. Both also work without offload, one
//!   packet per system call, so callers need one code path.
//!
//! Built on the `tun-rs` crate (docs/DESIGN.md §4), without its default `address-management`
//! feature: `DeviceBuilder::multi_queue(true)` + `SyncDevice::try_clone` give the queues,
//! `set_nonblocking` and `AsRawFd` give non-blocking raw descriptors, so no hand-written ioctl
//! is needed, and its `offload(true)` (IFF_VNET_HDR, TSO/GRO super-packets with
//! `recv_multiple`/`send_multiple`) is there for the batching work docs/BENCH-ANCHORS.md calls for.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use super::{context, invalid_input};

pub use tun_rs::{ExpandBuffer, GROTable, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

/// The largest packet the device hands over or takes with offload (IPv4 total length).
pub const MAX_SUPER_PACKET: usize = 65535;

/// The kernel's limit on queues per TUN device (`MAX_TAP_QUEUES` in drivers/net/tun.c).
pub const MAX_QUEUES: usize = 256;

/// The smallest MTU IPv4 allows (RFC 791: every host must accept 68-octet datagrams).
pub const MIN_MTU: u16 = 68;

/// One queue of a multi-queue TUN device.
pub struct TunQueue {
    dev: tun_rs::SyncDevice,
    name: String,
    offload: bool,
}

impl TunQueue {
    /// Whether the queue exchanges virtio-net-framed super-packets ([`create_offload`]).
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Reads what the kernel queued (with offload possibly one TSO/USO super-packet, split
    /// here) into `bufs[i][offset..offset + sizes[i]]`; returns how many packets. `scratch`
    /// holds the raw read: give it `VIRTIO_NET_HDR_LEN + MAX_SUPER_PACKET` bytes. `WouldBlock`
    /// when the queue is empty. Allocation-free.
    pub fn recv_batch<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        scratch: &mut [u8],
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> io::Result<usize> {
        self.dev.recv_multiple(scratch, bufs, sizes, offset)
    }

    /// Writes the packets `bufs[i][offset..]` (`offset >= VIRTIO_NET_HDR_LEN`), with offload
    /// coalescing consecutive segments of a flow into super-packets (GRO; the first buffer of
    /// a flow grows, so give each buffer `offset + MAX_SUPER_PACKET` of capacity to keep this
    /// allocation-free). Returns the bytes written; a failed write is reported after the others
    /// were tried.
    pub fn send_batch<B: ExpandBuffer>(
        &self,
        gro: &mut GROTable,
        bufs: &mut [B],
        offset: usize,
    ) -> io::Result<usize> {
        self.dev.send_multiple(gro, bufs, offset)
    }

    /// Reads one packet into `buf` (non-blocking). Returns `WouldBlock` when the queue is
    /// empty. A packet longer than `buf` is truncated, so give a buffer of at least the MTU.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev.recv(buf)
    }

    /// Writes one IP packet into the device, to be routed by the kernel as if it had arrived
    /// on the interface.
    pub fn send(&self, pkt: &[u8]) -> io::Result<usize> {
        self.dev.send(pkt)
    }

    /// The queue's descriptor, for `poll`/`epoll` registration; it stays owned by `self`.
    pub fn fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for TunQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunQueue")
            .field("name", &self.name)
            .field("fd", &self.fd())
            .finish()
    }
}

/// Creates the TUN device `name` (or attaches to it if it exists with the same flags) with
/// `queues` queues, sets its MTU and brings the link up.
///
/// Errors: `InvalidInput` for a bad name, MTU or queue count; otherwise the failing step
/// (`open /dev/net/tun`/`TUNSETIFF`, `SIOCSIFMTU`, `SIOCSIFFLAGS`, attaching queue i) is named.
pub fn create(name: &str, mtu: u16, queues: usize) -> io::Result<Vec<TunQueue>> {
    create_with(name, mtu, queues, false)
}

/// [`create`] with `IFF_VNET_HDR` and TSO/USO offload (see the module docs): the data plane
/// then moves super-packets through [`TunQueue::recv_batch`]/[`TunQueue::send_batch`].
pub fn create_offload(name: &str, mtu: u16, queues: usize) -> io::Result<Vec<TunQueue>> {
    create_with(name, mtu, queues, true)
}

fn create_with(name: &str, mtu: u16, queues: usize, offload: bool) -> io::Result<Vec<TunQueue>> {
    validate_ifname(name)?;
    if mtu < MIN_MTU {
        return Err(invalid_input(format!(
            "tun {name}: MTU {mtu} is below the IPv4 minimum {MIN_MTU}"
        )));
    }
    if queues == 0 || queues > MAX_QUEUES {
        return Err(invalid_input(format!(
            "tun {name}: queue count {queues} not in 1..={MAX_QUEUES}"
        )));
    }

    // The builder only opens the queue here; MTU and link state are set below so that an
    // error says which step failed.
    let first = tun_rs::DeviceBuilder::new()
        .name(name)
        .multi_queue(true)
        .packet_information(false)
        .offload(offload)
        .inherit_enable_state()
        .build_sync()
        .map_err(|e| {
            context(
                format_args!(
                    "tun {name}: open /dev/net/tun + TUNSETIFF(IFF_TUN|IFF_NO_PI|IFF_MULTI_QUEUE)"
                ),
                e,
            )
        })?;
    first
        .set_mtu(mtu)
        .map_err(|e| context(format_args!("tun {name}: SIOCSIFMTU {mtu}"), e))?;
    first
        .enabled(true)
        .map_err(|e| context(format_args!("tun {name}: SIOCSIFFLAGS up"), e))?;
    let mut devs = Vec::with_capacity(queues);
    for i in 1..queues {
        let dev = first
            .try_clone()
            .map_err(|e| context(format_args!("tun {name}: attach queue {i} (TUNSETIFF)"), e))?;
        devs.push(dev);
    }
    devs.insert(0, first);

    let mut out = Vec::with_capacity(queues);
    for (i, dev) in devs.into_iter().enumerate() {
        dev.set_nonblocking(true)
            .map_err(|e| context(format_args!("tun {name}: queue {i}: set O_NONBLOCK"), e))?;
        let offload = dev.tcp_gso();
        out.push(TunQueue {
            dev,
            name: name.to_owned(),
            offload,
        });
    }
    Ok(out)
}

/// Checks an interface name: 1..=15 bytes (IFNAMSIZ - 1) of `[A-Za-z0-9_.-]`. The character
/// set is narrower than the kernel's so that names can be spliced into `ip`/`nft` arguments
/// and nft scripts without quoting problems.
pub fn validate_ifname(name: &str) -> io::Result<()> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || !ok_chars || name == "." || name == ".." {
        return Err(invalid_input(format!(
            "invalid interface name {name:?}: want 1..={} characters of [A-Za-z0-9_.-]",
            libc::IFNAMSIZ - 1
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::net;
    use crate::io::poll::wait_readable;
    use crate::io::testns::{sh, NetNs};
    use crate::wire::{write_ipv4_header, Ipv4Header, IPPROTO_UDP};
    use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
    use std::time::{Duration, Instant};

    const TUN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
    const PEER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

    #[test]
    fn rejects_bad_arguments() {
        let e = |r: io::Result<Vec<TunQueue>>| r.err().map(|e| e.kind());
        assert_eq!(e(create("", 1400, 1)), Some(io::ErrorKind::InvalidInput));
        assert_eq!(
            e(create("a-name-that-is-too-long", 1400, 1)),
            Some(io::ErrorKind::InvalidInput)
        );
        assert_eq!(
            e(create("bad name", 1400, 1)),
            Some(io::ErrorKind::InvalidInput)
        );
        assert_eq!(e(create("x;y", 1400, 1)), Some(io::ErrorKind::InvalidInput));
        assert_eq!(e(create("ok0", 20, 1)), Some(io::ErrorKind::InvalidInput));
        assert_eq!(e(create("ok0", 1400, 0)), Some(io::ErrorKind::InvalidInput));
        assert_eq!(
            e(create("ok0", 1400, 257)),
            Some(io::ErrorKind::InvalidInput)
        );
    }

    #[test]
    #[ignore = "needs root: network namespace, TUN"]
    fn two_queues_carry_packets_both_ways() {
        let ns = NetNs::new("tun-both-ways").expect("netns");
        ns.run(|| {
            let queues = create("iot0", 1400, 2).expect("create tun");
            assert_eq!(queues.len(), 2);
            assert_ne!(queues[0].fd(), queues[1].fd());
            let link = sh("ip -d -j link show dev iot0").expect("ip link");
            for want in [
                "\"mtu\":1400",
                "\"UP\"",
                "\"type\":\"tun\"",
                "\"pi\":false",
                "\"vnet_hdr\":false",
                "\"multi_queue\":true",
                "\"numqueues\":2",
                "\"persist\":false",
            ] {
                assert!(link.contains(want), "{want} not in {link}");
            }
            net::add_address(ipnet::Ipv4Net::new(TUN_ADDR, 24).expect("net"), "iot0")
                .expect("addr");

            // Out of the namespace's stack, into a queue.
            let sock = UdpSocket::bind((TUN_ADDR, 0)).expect("bind");
            let sport = sock.local_addr().expect("local addr").port();
            sock.send_to(b"to-the-tunnel", (PEER_ADDR, 4321))
                .expect("send");
            let pkt = read_udp_from_queues(&queues, PEER_ADDR, 4321);
            assert_eq!(
                Ipv4Header::parse(&pkt).map(|h| h.src()),
                Some(TUN_ADDR),
                "source address"
            );
            assert_eq!(u16::from_be_bytes([pkt[20], pkt[21]]), sport);
            assert_eq!(&pkt[28..], b"to-the-tunnel");

            // From a queue into the stack: both queues can inject.
            sock.set_read_timeout(Some(Duration::from_secs(3)))
                .expect("timeout");
            for (i, q) in queues.iter().enumerate() {
                let payload = format!("from-queue-{i}");
                let reply = ipv4_udp(PEER_ADDR, 4321, TUN_ADDR, sport, payload.as_bytes());
                assert_eq!(q.send(&reply).expect("tun write"), reply.len());
                let mut buf = [0u8; 256];
                let (n, from) = sock.recv_from(&mut buf).expect("recv from tun");
                assert_eq!(&buf[..n], payload.as_bytes());
                assert_eq!(from, SocketAddr::from((PEER_ADDR, 4321)));
            }
        });
    }

    #[test]
    #[ignore = "needs root: network namespace, TUN"]
    fn offload_queues_carry_packets_through_the_batch_calls() {
        let ns = NetNs::new("tun-offload").expect("netns");
        ns.run(|| {
            let queues = create_offload("iot2", 1400, 2).expect("create tun");
            assert!(queues.iter().all(TunQueue::offload));
            let link = sh("ip -d -j link show dev iot2").expect("ip link");
            assert!(link.contains("\"vnet_hdr\":true"), "{link}");
            net::add_address(ipnet::Ipv4Net::new(TUN_ADDR, 24).expect("net"), "iot2")
                .expect("addr");

            // Out of the stack: recv_batch strips the virtio-net header.
            let sock = UdpSocket::bind((TUN_ADDR, 0)).expect("bind");
            let sport = sock.local_addr().expect("local addr").port();
            sock.send_to(b"offloaded", (PEER_ADDR, 4321)).expect("send");
            let fds: Vec<RawFd> = queues.iter().map(TunQueue::fd).collect();
            let mut raw = vec![0u8; VIRTIO_NET_HDR_LEN + MAX_SUPER_PACKET];
            let mut bufs = vec![vec![0u8; VIRTIO_NET_HDR_LEN + 2048]; IDEAL_BATCH_SIZE];
            let mut sizes = vec![0usize; IDEAL_BATCH_SIZE];
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut found = false;
            while !found && Instant::now() < deadline {
                let ready = wait_readable(&fds, Duration::from_millis(200)).expect("poll");
                for (q, _) in queues.iter().zip(ready).filter(|(_, r)| *r) {
                    let Ok(n) = q.recv_batch(&mut raw, &mut bufs, &mut sizes, VIRTIO_NET_HDR_LEN)
                    else {
                        continue;
                    };
                    for (b, &len) in bufs.iter().zip(&sizes).take(n) {
                        let p = &b[VIRTIO_NET_HDR_LEN..VIRTIO_NET_HDR_LEN + len];
                        if len >= 28 && is_udp_to(p, PEER_ADDR) {
                            assert_eq!(&p[28..], b"offloaded");
                            found = true;
                        }
                    }
                }
            }
            assert!(found, "no UDP packet from the stack on any queue");

            // Into the stack: send_batch writes the header in front of each packet.
            sock.set_read_timeout(Some(Duration::from_secs(3)))
                .expect("timeout");
            let mut gro = GROTable::new();
            let mut out: Vec<Vec<u8>> = (0..3)
                .map(|i| {
                    let mut b = vec![0u8; VIRTIO_NET_HDR_LEN];
                    let payload = format!("batch-{i}");
                    b.extend_from_slice(&ipv4_udp(
                        PEER_ADDR,
                        4321 + i,
                        TUN_ADDR,
                        sport,
                        payload.as_bytes(),
                    ));
                    b
                })
                .collect();
            queues[0]
                .send_batch(&mut gro, &mut out, VIRTIO_NET_HDR_LEN)
                .expect("tun write");
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            for _ in 0..3 {
                let (n, _) = sock.recv_from(&mut buf).expect("recv from tun");
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            got.sort();
            assert_eq!(got, ["batch-0", "batch-1", "batch-2"]);
        });
    }

    #[test]
    #[ignore = "needs root: network namespace, TUN"]
    fn empty_queue_would_block_and_device_goes_away_on_drop() {
        let ns = NetNs::new("tun-lifecycle").expect("netns");
        ns.run(|| {
            // Without this the kernel may queue an IPv6 router solicitation on link-up.
            sh("echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6").expect("no ipv6");
            let mut queues = create("iot1", 1280, 1).expect("create tun");
            // A second create attaches one more queue to the same device.
            queues.extend(create("iot1", 1280, 1).expect("attach"));
            assert_eq!(queues.len(), 2);
            let mut buf = [0u8; 1500];
            for q in &queues {
                let err = q.recv(&mut buf).expect_err("nothing queued");
                assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            }
            assert!(sh("ip link show dev iot1").is_ok());
            drop(queues);
            assert!(sh("ip link show dev iot1").is_err(), "device persisted");

            // A name taken by another kind of link: the error names the ioctl.
            sh("ip link add iotv0 type veth peer name iotv1").expect("veth");
            let err = create("iotv0", 1280, 1).expect_err("not a tun");
            assert!(err.to_string().contains("TUNSETIFF"), "{err}");
        });
    }

    /// Reads from either queue until an IPv4/UDP packet to `dst:dport` shows up (other
    /// traffic the kernel may emit on a new link is skipped), bounded in time.
    fn read_udp_from_queues(queues: &[TunQueue], dst: Ipv4Addr, dport: u16) -> Vec<u8> {
        let fds: Vec<RawFd> = queues.iter().map(TunQueue::fd).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 2048];
        while Instant::now() < deadline {
            let ready = wait_readable(&fds, Duration::from_millis(200)).expect("poll");
            for (q, _) in queues.iter().zip(ready).filter(|(_, r)| *r) {
                let Ok(n) = q.recv(&mut buf) else { continue };
                let p = &buf[..n];
                if n >= 28 && is_udp_to(p, dst) && u16::from_be_bytes([p[22], p[23]]) == dport {
                    return p.to_vec();
                }
            }
        }
        panic!("no UDP packet to {dst}:{dport} on any queue");
    }

    /// Whether `p` is an IPv4/UDP packet to `dst`.
    fn is_udp_to(p: &[u8], dst: Ipv4Addr) -> bool {
        Ipv4Header::parse(p).is_some_and(|h| h.protocol() == IPPROTO_UDP && h.dst() == dst)
    }

    /// An IPv4/UDP packet (RFC 791, RFC 768) with a valid header checksum and UDP checksum 0
    /// ("not computed", allowed for IPv4).
    fn ipv4_udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
        let total = 28 + payload.len();
        let mut p = vec![0u8; total];
        write_ipv4_header(&mut p, total as u16, IPPROTO_UDP, src, dst).expect("room");
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p[28..].copy_from_slice(payload);
        p
    }
}

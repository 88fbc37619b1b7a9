//! Tests of `io::udp`: batches on loopback inside a namespace of the test's own.

use super::*;
use crate::io::poll::Poller;
use crate::io::testns::NetNs;
use std::collections::BTreeMap;

const BUF: usize = 1 << 20;

/// Receives into `batch` until `want` datagrams arrived or 5 s passed; returns
/// (meta, payload) pairs.
fn recv_all(sock: &UdpSocket, batch: &mut RecvBatch, want: usize) -> Vec<(RecvMeta, Vec<u8>)> {
    let mut poller = Poller::new(&[sock.as_raw_fd()]).expect("epoll");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        poller.wait(Duration::from_millis(100)).expect("poll");
        let n = batch.recv(sock).expect("recvmmsg");
        assert!(n <= batch.capacity());
        assert_eq!(n, batch.len());
        out.extend(batch.iter().map(|(m, d)| (*m, d.to_vec())));
    }
    out
}

fn local(sock: &UdpSocket) -> SocketAddr {
    sock.local_addr().expect("local_addr")
}

#[test]
#[ignore = "needs root: network namespace"]
fn hundred_datagrams_v4_with_pktinfo_both_ways() {
    let ns = NetNs::new("udp-batch-v4").expect("netns");
    ns.run(|| {
        let rx = bind("0.0.0.0:0".parse().expect("addr"), false, BUF).expect("bind rx");
        let tx = bind("0.0.0.0:0".parse().expect("addr"), false, BUF).expect("bind tx");
        let dst = SocketAddr::from(([127, 0, 0, 3], local(&rx).port()));
        let from: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();

        let mut send = SendBatch::new(64, 1500);
        let mut sent = 0;
        for i in 0..100 {
            let payload = format!("dgram-{i}");
            if i % 2 == 0 {
                assert!(send.push(payload.as_bytes(), dst, Some(from)));
            } else {
                let slot = send.slot().expect("free slot");
                slot[..payload.len()].copy_from_slice(payload.as_bytes());
                send.commit(payload.len(), dst, None);
            }
            if send.is_full() {
                sent += send.flush(&tx).expect("sendmmsg");
                assert_eq!(send.len(), 0);
            }
        }
        sent += send.flush(&tx).expect("sendmmsg");
        assert_eq!(sent, 100);
        assert_eq!(send.dropped(), 0);

        let mut batch = RecvBatch::new(32, 2048);
        let got = recv_all(&rx, &mut batch, 100);
        assert_eq!(got.len(), 100);
        let mut seen = BTreeMap::new();
        for (meta, data) in &got {
            let text = String::from_utf8(data.clone()).expect("utf8");
            let i: usize = text
                .strip_prefix("dgram-")
                .and_then(|n| n.parse().ok())
                .expect("payload");
            assert_eq!(meta.len, data.len());
            assert!(!meta.truncated);
            assert_eq!(meta.src.port(), local(&tx).port());
            assert_eq!(meta.dst_ip, Some(dst.ip()), "IP_PKTINFO destination");
            if i % 2 == 0 {
                assert_eq!(meta.src.ip(), from, "IP_PKTINFO source of datagram {i}");
            } else {
                assert!(meta.src.ip().is_loopback());
            }
            assert!(seen.insert(i, ()).is_none(), "datagram {i} twice");
        }
        assert_eq!(seen.len(), 100);
        // Nothing more queued.
        assert_eq!(batch.recv(&rx).expect("recvmmsg"), 0);
        assert!(batch.is_empty());
    });
}

#[test]
#[ignore = "needs root: network namespace"]
fn batch_v6_with_pktinfo() {
    let ns = NetNs::new("udp-batch-v6").expect("netns");
    ns.run(|| {
        let rx = bind("[::]:0".parse().expect("addr"), false, BUF).expect("bind rx");
        let tx = bind("[::]:0".parse().expect("addr"), false, BUF).expect("bind tx");
        let dst = SocketAddr::from((Ipv6Addr::LOCALHOST, local(&rx).port()));
        let mut send = SendBatch::new(8, 256);
        for i in 0..8u8 {
            assert!(send.push(&[i; 10], dst, Some(Ipv6Addr::LOCALHOST.into())));
        }
        assert!(!send.push(b"one too many", dst, None));
        assert_eq!(send.flush(&tx).expect("sendmmsg"), 8);
        let got = recv_all(&rx, &mut RecvBatch::new(4, 256), 8);
        assert_eq!(got.len(), 8);
        for (meta, data) in &got {
            assert_eq!(data.len(), 10);
            assert_eq!(
                meta.src,
                SocketAddr::from((Ipv6Addr::LOCALHOST, local(&tx).port()))
            );
            assert_eq!(meta.dst_ip, Some(Ipv6Addr::LOCALHOST.into()));
        }
    });
}

#[test]
#[ignore = "needs root: network namespace"]
fn long_datagram_is_flagged_truncated() {
    let ns = NetNs::new("udp-trunc").expect("netns");
    ns.run(|| {
        let rx = bind("127.0.0.1:0".parse().expect("addr"), false, 0).expect("bind rx");
        let tx = bind("127.0.0.1:0".parse().expect("addr"), false, 0).expect("bind tx");
        tx.send_to(&[7u8; 100], local(&rx)).expect("send");
        let mut batch = RecvBatch::new(4, 16);
        let got = recv_all(&rx, &mut batch, 1);
        assert_eq!(got.len(), 1);
        assert!(got[0].0.truncated);
        assert_eq!(got[0].0.len, 16);
        assert_eq!(got[0].1, vec![7u8; 16]);
        // Past the end: empty, no panic.
        let (meta, data) = batch.get(99);
        assert_eq!((meta.len, data.len()), (0, 0));
    });
}

/// `recv` resets only the messages the previous call filled: what one call reported
/// (a truncation, a sender, a length) must not leak into the next, whether the next brings
/// fewer or more datagrams.
#[test]
#[ignore = "needs root: network namespace"]
fn a_reused_batch_reports_each_call_afresh() {
    let ns = NetNs::new("udp-reuse").expect("netns");
    ns.run(|| {
        let rx = bind("127.0.0.1:0".parse().expect("addr"), false, 0).expect("bind rx");
        let a = bind("127.0.0.1:0".parse().expect("addr"), false, 0).expect("bind a");
        let b = bind("127.0.0.1:0".parse().expect("addr"), false, 0).expect("bind b");
        let mut batch = RecvBatch::new(4, 16);
        // Round 1: two datagrams, the first truncated.
        a.send_to(&[1u8; 40], local(&rx)).expect("send");
        a.send_to(&[2u8; 3], local(&rx)).expect("send");
        let got = recv_all(&rx, &mut batch, 2);
        let seen: Vec<_> = got
            .iter()
            .map(|(m, d)| (m.truncated, m.len, d[0]))
            .collect();
        assert_eq!(seen, [(true, 16, 1), (false, 3, 2)]);
        // Round 2: four short ones from another sender fill the batch, past round 1's.
        for i in 0..4u8 {
            b.send_to(&[10 + i; 5], local(&rx)).expect("send");
        }
        let got = recv_all(&rx, &mut batch, 4);
        assert_eq!(got.len(), 4);
        for (i, (m, d)) in got.iter().enumerate() {
            assert_eq!(
                (m.truncated, m.len, d[0]),
                (false, 5, 10 + i as u8),
                "datagram {i}"
            );
            assert_eq!(m.src, local(&b));
            assert_eq!(m.dst_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        }
        // Round 3: one long one again, then one short one alone.
        a.send_to(&[3u8; 30], local(&rx)).expect("send");
        let got = recv_all(&rx, &mut batch, 1);
        assert_eq!((got[0].0.truncated, got[0].0.src), (true, local(&a)));
        a.send_to(&[4u8; 2], local(&rx)).expect("send");
        let got = recv_all(&rx, &mut batch, 1);
        assert_eq!((got[0].0.truncated, got[0].0.len), (false, 2));
        assert_eq!(got[0].0.dst_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    });
}

#[test]
#[ignore = "needs root: network namespace"]
fn refused_datagram_is_dropped_and_the_rest_sent() {
    let ns = NetNs::new("udp-refused").expect("netns");
    ns.run(|| {
        let rx = bind("127.0.0.1:0".parse().expect("addr"), false, 0).expect("bind rx");
        let tx = bind("0.0.0.0:0".parse().expect("addr"), false, 0).expect("bind tx");
        // 192.0.2.1 (TEST-NET-1, RFC 5737) is not an address of this namespace, so the kernel
        // refuses it as a source (EINVAL) before anything is routed.
        let foreign: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
        let mut send = SendBatch::new(4, 64);
        assert!(send.push(b"bad", local(&rx), Some(foreign)));
        assert!(send.push(b"good-1", local(&rx), None));
        assert!(send.push(b"good-2", local(&rx), None));
        assert_eq!(send.flush(&tx).expect("partial success is Ok"), 2);
        assert_eq!(send.dropped(), 1);
        let got = recv_all(&rx, &mut RecvBatch::new(4, 64), 2);
        let payloads: Vec<&[u8]> = got.iter().map(|(_, d)| d.as_slice()).collect();
        assert_eq!(payloads, vec![&b"good-1"[..], &b"good-2"[..]]);

        assert!(send.push(b"bad", local(&rx), Some(foreign)));
        let err = send.flush(&tx).expect_err("nothing sent");
        assert!(err.to_string().contains("sendmmsg"), "{err}");
        assert_eq!(send.dropped(), 2);
        assert!(send.is_empty());
    });
}

#[test]
#[ignore = "needs root: network namespace"]
fn reuse_port_shares_a_port_and_plain_bind_does_not() {
    let ns = NetNs::new("udp-reuseport").expect("netns");
    ns.run(|| {
        let a = bind("127.0.0.1:0".parse().expect("addr"), true, 0).expect("bind a");
        let b = bind(local(&a), true, 0).expect("second SO_REUSEPORT bind");
        assert_eq!(local(&a), local(&b));
        let err = bind(local(&a), false, 0).expect_err("port in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("bind"), "{err}");
    });
}

#[test]
#[ignore = "needs root: network namespace"]
fn bind_sets_buffers_nonblocking_and_v6only() {
    let ns = NetNs::new("udp-opts").expect("netns");
    ns.run(|| {
        let want = 4 << 20;
        let s = bind("127.0.0.1:0".parse().expect("addr"), false, want).expect("bind");
        let (rcv, snd) = buffer_sizes(&s).expect("sizes");
        // As root SO_*BUFFORCE bypasses rmem_max; the kernel reports the doubled value.
        assert!(rcv >= want && snd >= want, "rcv {rcv} snd {snd}");
        let mut buf = [0u8; 8];
        let err = s.recv_from(&mut buf).expect_err("non-blocking");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let mut batch = RecvBatch::new(2, 8);
        assert_eq!(batch.recv(&s).expect("recvmmsg"), 0);

        // V6ONLY: the same port on both families.
        let v4 = bind("0.0.0.0:0".parse().expect("addr"), false, 0).expect("v4");
        let v6 = bind(
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, local(&v4).port())),
            false,
            0,
        );
        assert!(v6.is_ok(), "{v6:?}");
    });
}

#[test]
fn send_batch_accounting() {
    let dst = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut b = SendBatch::new(2, 4);
    assert_eq!((b.capacity(), b.buf_size(), b.len()), (2, 4, 0));
    assert!(!b.push(b"toolong", dst, None));
    assert_eq!(b.len(), 0);
    b.commit(5, dst, None); // longer than a slot: dropped, not queued
    assert_eq!((b.len(), b.dropped()), (0, 1));
    assert!(b.push(b"abcd", dst, None));
    assert_eq!(b.slot().map(|s| s.len()), Some(4));
    b.commit(2, dst, Some(Ipv4Addr::LOCALHOST.into()));
    assert!(b.is_full());
    assert!(b.slot().is_none());
    assert!(!b.push(b"x", dst, None));
    b.commit(1, dst, None);
    assert_eq!((b.len(), b.dropped()), (2, 2));

    // Degenerate sizes are clamped, not panics.
    let z = SendBatch::new(0, 0);
    assert_eq!((z.capacity(), z.buf_size()), (1, 1));
    let r = RecvBatch::new(100_000, 0);
    assert_eq!((r.capacity(), r.buf_size()), (MAX_BATCH, 1));
}

#[test]
fn sockaddr_and_pktinfo_encoding() {
    for addr in [
        "10.1.2.3:500".parse::<SocketAddr>().expect("v4"),
        "[2001:db8::1]:4500".parse::<SocketAddr>().expect("v6"),
    ] {
        let mut ss = zeroed_storage();
        let len = write_sockaddr(addr, &mut ss);
        assert_eq!(read_sockaddr(&ss, len), Some(addr));
        assert_eq!(read_sockaddr(&ss, 2), None, "short length");
    }
    let mut space = CmsgSpace::default();
    let v4 = SocketAddr::from(([10, 0, 0, 1], 1));
    let v6: SocketAddr = "[::1]:1".parse().expect("v6");
    assert_eq!(write_pktinfo(&mut space, v4, None), 0);
    assert_eq!(
        write_pktinfo(&mut space, v4, Some(Ipv6Addr::LOCALHOST.into())),
        0
    );
    assert_eq!(
        write_pktinfo(&mut space, v4, Some(Ipv4Addr::LOCALHOST.into())),
        32
    );
    assert_eq!(
        write_pktinfo(&mut space, v6, Some(Ipv6Addr::LOCALHOST.into())),
        40
    );
}

#[test]
#[ignore = "needs root: network namespace"]
fn gso_runs_arrive_as_the_same_datagrams_in_order() {
    let ns = NetNs::new("udp-gso").expect("netns");
    ns.run(|| {
        let rx = bind("0.0.0.0:0".parse().expect("addr"), false, BUF).expect("bind rx");
        let rx2 = bind("0.0.0.0:0".parse().expect("addr"), false, BUF).expect("bind rx2");
        let tx = bind("0.0.0.0:0".parse().expect("addr"), false, BUF).expect("bind tx");
        let dst = SocketAddr::from(([127, 0, 0, 1], local(&rx).port()));
        let dst2 = SocketAddr::from(([127, 0, 0, 1], local(&rx2).port()));
        let from: IpAddr = Ipv4Addr::new(127, 0, 0, 1).into();

        let mut send = SendBatch::new(64, 1500);
        send.set_gso(true);
        // A run of 1400-byte datagrams with a short tail, a datagram to another socket, then
        // a second run: three GSO messages at most.
        let mut want = Vec::new();
        for i in 0..20u8 {
            let len = if i == 19 { 300 } else { 1400 };
            let d = vec![i; len];
            assert!(send.push(&d, dst, Some(from)));
            want.push(d);
        }
        assert!(send.push(b"other", dst2, Some(from)));
        for i in 20..30u8 {
            let d = vec![i; 1000];
            assert!(send.push(&d, dst, Some(from)));
            want.push(d);
        }
        assert_eq!(send.flush(&tx).expect("sendmmsg"), 31);
        assert_eq!(send.dropped(), 0);
        assert!(send.gso(), "loopback takes UDP GSO");

        let mut batch = RecvBatch::new(64, 2048);
        let got = recv_all(&rx, &mut batch, want.len());
        let got: Vec<Vec<u8>> = got.into_iter().map(|(_, d)| d).collect();
        assert_eq!(got, want);
        let other = recv_all(&rx2, &mut batch, 1);
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].1, b"other");
    });
}

#[test]
#[ignore = "needs root: network namespace"]
fn gro_coalesced_datagrams_split_back_into_the_originals() {
    let ns = NetNs::new("udp-gro").expect("netns");
    ns.run(|| {
        let rx = bind("0.0.0.0:0".parse().expect("addr"), false, BUF).expect("bind rx");
        enable_gro(&rx).expect("UDP_GRO");
        let tx = bind("0.0.0.0:0".parse().expect("addr"), false, BUF).expect("bind tx");
        let dst = SocketAddr::from(([127, 0, 0, 1], local(&rx).port()));
        let mut send = SendBatch::new(64, 1500);
        send.set_gso(true);
        let mut want = Vec::new();
        for i in 0..12u8 {
            let d = vec![i; if i == 11 { 77 } else { 1200 }];
            assert!(send.push(&d, dst, None));
            want.push(d);
        }
        assert_eq!(send.flush(&tx).expect("sendmmsg"), 12);
        let mut batch = RecvBatch::new(8, 65535);
        let got = recv_all_segments(&rx, &mut batch, want.len());
        assert_eq!(got, want);
    });
}

/// Like `recv_all`, counting and returning the segments of coalesced datagrams.
fn recv_all_segments(sock: &UdpSocket, batch: &mut RecvBatch, want: usize) -> Vec<Vec<u8>> {
    let mut poller = Poller::new(&[sock.as_raw_fd()]).expect("epoll");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        poller.wait(Duration::from_millis(100)).expect("poll");
        batch.recv(sock).expect("recvmmsg");
        for (m, d) in batch.iter() {
            assert!(!m.truncated);
            out.extend(segments(m, d).map(<[u8]>::to_vec));
        }
    }
    out
}

//! The hand-over channel of `ipsec-server upgrade`: the old process passes the new one its
//! file descriptors (UDP sockets, TUN queues, listeners) by `SCM_RIGHTS`, then the snapshot
//! bytes, over a Unix stream socket (one end of a socketpair the new process inherits).
//!
//! Why nix: `sendmsg`/`recvmsg` with ancillary data need `cmsg` buffers; nix's `socket`
//! feature builds and parses them. Its `ScmRights` still yields raw descriptors, so this
//! module allows `unsafe` for one line: taking ownership of each descriptor the kernel just
//! installed ([`owned`]).
//!
//! Wire: a 12-byte header (u32 descriptor count, u64 payload length, big-endian), then one
//! byte per group of at most [`FDS_PER_MESSAGE`] descriptors carrying them, then the payload.
//! Everything read is bounded: the descriptor count ([`MAX_FDS`]), the payload length (the
//! caller's limit) and the time (the caller's deadline, as the socket's read timeout; a peer
//! that stops sending is an error, never a hang). Received descriptors are close-on-exec and
//! owned ([`OwnedFd`]): whatever happens, none leaks.

#![allow(unsafe_code)]

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::io::FromRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// At most this many descriptors in one hand-over: a UDP 500 socket per listen address and,
/// per worker, a TUN queue and a UDP 4500 socket per address, with room to spare.
pub const MAX_FDS: usize = 4096;

/// Descriptors per message (the kernel's SCM_MAX_FD is 253).
pub const FDS_PER_MESSAGE: usize = 200;

/// Takes ownership of a descriptor received by `SCM_RIGHTS`.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in this process for this message just now; nothing
    // else knows or closes it, so it is owned exactly once, here.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("hand-over: {what}"))
}

/// Sends `fds` and then `payload` on `sock`.
pub fn send(sock: &UnixStream, fds: &[BorrowedFd<'_>], payload: &[u8]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(invalid("too many descriptors"));
    }
    let mut w = sock;
    let mut header = [0u8; 12];
    header[..4].copy_from_slice(&(fds.len() as u32).to_be_bytes());
    header[4..].copy_from_slice(&(payload.len() as u64).to_be_bytes());
    w.write_all(&header)?;
    for group in fds.chunks(FDS_PER_MESSAGE) {
        let raw: Vec<RawFd> = group.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let iov = [IoSlice::new(&[0u8])];
        let sent = sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
            .map_err(io::Error::from)?;
        if sent != 1 {
            return Err(invalid("short descriptor message"));
        }
    }
    w.write_all(payload)?;
    w.flush()
}

/// Receives what [`send`] sent: the descriptors (in order) and the payload, refusing more
/// than `max_payload` octets and anything not complete within `deadline`.
pub fn recv(
    sock: &UnixStream,
    max_payload: usize,
    deadline: Duration,
) -> io::Result<(Vec<OwnedFd>, Vec<u8>)> {
    let end = Instant::now() + deadline;
    let arm = || -> io::Result<()> {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "hand-over: deadline",
            ));
        }
        sock.set_read_timeout(Some(left))
    };
    let mut r = sock;
    let mut header = [0u8; 12];
    arm()?;
    r.read_exact(&mut header)?;
    let count = u32::from_be_bytes(header[..4].try_into().unwrap_or_default()) as usize;
    let len = u64::from_be_bytes(header[4..].try_into().unwrap_or_default());
    if count > MAX_FDS {
        return Err(invalid("too many descriptors"));
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= max_payload)
        .ok_or_else(|| invalid("payload too large"))?;
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(count);
    while fds.len() < count {
        arm()?;
        let mut byte = [0u8; 1];
        let mut iov = [IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([RawFd; FDS_PER_MESSAGE]);
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        if msg.bytes != 1 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "hand-over: closed before the descriptors",
            ));
        }
        let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                fds.extend(raw.into_iter().map(owned));
            }
        }
        if truncated || fds.len() > count {
            return Err(invalid("descriptor messages do not match the header"));
        }
    }
    let mut payload = vec![0u8; len];
    let mut got = 0;
    while got < len {
        arm()?;
        match r.read(&mut payload[got..])? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "hand-over: closed before the end of the snapshot",
                ))
            }
            n => got += n,
        }
    }
    sock.set_read_timeout(None)?;
    Ok((fds, payload))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn descriptors_and_payload_arrive_in_order() {
        let (a, b) = UnixStream::pair().unwrap();
        // 450 descriptors: three messages' worth. Each is one end of a socketpair whose
        // other end we keep, so we can tell them apart after the trip.
        let pairs: Vec<(UnixStream, UnixStream)> =
            (0..450).map(|_| UnixStream::pair().unwrap()).collect();
        let payload: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let expect = payload.clone();
        let sender = std::thread::spawn(move || {
            let fds: Vec<BorrowedFd<'_>> = pairs.iter().map(|(x, _)| x.as_fd()).collect();
            send(&a, &fds, &payload).unwrap();
            pairs
        });
        let (fds, got) = recv(&b, 1 << 20, Duration::from_secs(10)).unwrap();
        let pairs = sender.join().unwrap();
        assert_eq!(got, expect);
        assert_eq!(fds.len(), 450);
        for (i, fd) in [0usize, 199, 200, 449].into_iter().map(|i| (i, &fds[i])) {
            let mut s = UnixStream::from(fd.try_clone().unwrap());
            s.write_all(&[i as u8, (i >> 8) as u8]).unwrap();
            let mut back = [0u8; 2];
            (&pairs[i].1).read_exact(&mut back).unwrap();
            assert_eq!(back, [i as u8, (i >> 8) as u8], "descriptor {i}");
        }
    }

    #[test]
    fn oversized_silent_or_short_senders_are_refused_in_time() {
        // A payload above the limit.
        let (a, b) = UnixStream::pair().unwrap();
        send(&a, &[], &[7u8; 100]).unwrap();
        let e = recv(&b, 99, Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // A header announcing too many descriptors.
        let (a, b) = UnixStream::pair().unwrap();
        let mut header = [0u8; 12];
        header[..4].copy_from_slice(&(MAX_FDS as u32 + 1).to_be_bytes());
        (&a).write_all(&header).unwrap();
        assert!(recv(&b, 1 << 20, Duration::from_secs(5)).is_err());
        // A peer that sends half a snapshot and then nothing: the deadline ends it.
        let (a, b) = UnixStream::pair().unwrap();
        let mut header = [0u8; 12];
        header[4..].copy_from_slice(&1000u64.to_be_bytes());
        (&a).write_all(&header).unwrap();
        (&a).write_all(&[1u8; 10]).unwrap();
        let t = Instant::now();
        assert!(recv(&b, 1 << 20, Duration::from_millis(300)).is_err());
        assert!(t.elapsed() < Duration::from_secs(5));
        // A peer that closes early.
        drop(a);
        assert!(recv(&b, 1 << 20, Duration::from_secs(5)).is_err());
    }
}

//! The hand-over channel of `ipsec-server upgrade`: the old process passes the new one its
//! file descriptors (UDP sockets, TUN queues, listeners) by `SCM_RIGHTS`, then the snapshot
//! bytes, over a Unix stream socket (one end of a socketpair the new process inherits).
//!
//! Why nix: `sendmsg`/`recvmsg` with ancillary data need `cmsg` buffers; nix's `socket`
//! feature builds and parses them. Its `ScmRights` still yields raw descriptors, so this
//! module allows `unsafe` for one line: taking ownership of each descriptor the kernel just
//! installed ([`owned`]).
//!
//! Before and after that, the two processes exchange short notes ([`send_note`],
//! [`recv_note`]: a tag byte, a 2-byte length, at most [`MAX_NOTE`] octets of UTF-8): the new
//! process says it is ready to take over, then that it took over or why it could not.
//!
//! The channel itself: [`pair_for_child`] makes it (the child's end is the only descriptor
//! of ours a started process inherits), [`inherit`] adopts it in the new process
//! (`--takeover-fd`), checking that the number names a Unix stream socket.
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

/// The longest note ([`send_note`]).
pub const MAX_NOTE: usize = 4096;

/// A socketpair for a process about to be started: ours (close-on-exec) and the child's,
/// whose close-on-exec flag is cleared so that it survives `exec` (drop it once the child
/// is started: the child has its own copy).
pub fn pair_for_child() -> io::Result<(UnixStream, OwnedFd)> {
    let (ours, theirs) = UnixStream::pair()?;
    // SAFETY: fcntl on a descriptor we own; F_SETFD changes only its close-on-exec flag.
    if unsafe { libc::fcntl(theirs.as_raw_fd(), libc::F_SETFD, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((ours, theirs.into()))
}

/// Adopts descriptor `fd`, inherited from the process that started this one, as the
/// hand-over channel. Refused (and left alone) unless it is an open Unix stream socket other
/// than standard input, output or error; from here on it is close-on-exec.
pub fn inherit(fd: RawFd) -> io::Result<UnixStream> {
    if fd <= 2 {
        return Err(invalid("the descriptor is standard input, output or error"));
    }
    let int_opt = |level, name| -> io::Result<libc::c_int> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`; an invalid `fd` fails.
        let r = unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &mut len) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(v)
    };
    let is_unix_stream = int_opt(libc::SOL_SOCKET, libc::SO_DOMAIN)? == libc::AF_UNIX
        && int_opt(libc::SOL_SOCKET, libc::SO_TYPE)? == libc::SOCK_STREAM;
    if !is_unix_stream {
        return Err(invalid("the descriptor is not a Unix stream socket"));
    }
    // SAFETY: `fd` is an open socket this process inherited for this purpose and nothing
    // else in it refers to; it is owned from here on, once.
    let sock = unsafe { UnixStream::from_raw_fd(fd) };
    // SAFETY: fcntl on the descriptor just adopted; F_SETFD sets only close-on-exec.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}

/// Sends a note: `tag`, then `text` (cut to [`MAX_NOTE`] octets at a character boundary).
pub fn send_note(sock: &UnixStream, tag: u8, text: &str) -> io::Result<()> {
    let mut end = text.len().min(MAX_NOTE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut msg = vec![tag];
    msg.extend_from_slice(&(end as u16).to_be_bytes());
    msg.extend_from_slice(&text.as_bytes()[..end]);
    let mut w = sock;
    w.write_all(&msg)?;
    w.flush()
}

/// Receives a note, waiting at most `deadline`: its tag and text (invalid UTF-8 replaced).
pub fn recv_note(sock: &UnixStream, deadline: Duration) -> io::Result<(u8, String)> {
    sock.set_read_timeout(Some(deadline.max(Duration::from_millis(1))))?;
    let mut r = sock;
    let mut head = [0u8; 3];
    r.read_exact(&mut head)?;
    let len = u16::from_be_bytes([head[1], head[2]]) as usize;
    if len > MAX_NOTE {
        return Err(invalid("note too long"));
    }
    let mut text = vec![0u8; len];
    r.read_exact(&mut text)?;
    sock.set_read_timeout(None)?;
    Ok((head[0], String::from_utf8_lossy(&text).into_owned()))
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
    fn notes_arrive_whole_and_bounded() {
        let (a, b) = UnixStream::pair().unwrap();
        send_note(&a, b'R', "ready").unwrap();
        assert_eq!(
            recv_note(&b, Duration::from_secs(5)).unwrap(),
            (b'R', "ready".into())
        );
        // Longer than MAX_NOTE: cut at a character boundary.
        let long = "é".repeat(MAX_NOTE);
        send_note(&a, b'F', &long).unwrap();
        let (tag, text) = recv_note(&b, Duration::from_secs(5)).unwrap();
        assert_eq!(tag, b'F');
        assert!(text.len() <= MAX_NOTE && text.len() >= MAX_NOTE - 1);
        assert!(long.starts_with(&text));
        // A length above the bound is refused; silence ends at the deadline.
        (&a).write_all(&[b'F', 0xff, 0xff]).unwrap();
        assert!(recv_note(&b, Duration::from_secs(5)).is_err());
        let t = Instant::now();
        assert!(recv_note(&b, Duration::from_millis(200)).is_err());
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn only_a_unix_stream_socket_is_inherited() {
        let (ours, theirs) = pair_for_child().unwrap();
        let raw = theirs.as_raw_fd();
        // SAFETY (test): F_GETFD only reads the descriptor's flags.
        assert_eq!(
            unsafe { libc::fcntl(raw, libc::F_GETFD) } & libc::FD_CLOEXEC,
            0
        );
        std::mem::forget(theirs);
        let adopted = inherit(raw).unwrap();
        // SAFETY (test): as above.
        assert_ne!(
            unsafe { libc::fcntl(raw, libc::F_GETFD) } & libc::FD_CLOEXEC,
            0
        );
        send_note(&adopted, b'H', "hello").unwrap();
        assert_eq!(recv_note(&ours, Duration::from_secs(5)).unwrap().1, "hello");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(inherit(udp.as_raw_fd()).is_err());
        assert!(inherit(1).is_err());
        assert!(inherit(1_000_000).is_err());
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

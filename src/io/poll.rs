//! Waiting for readability on a few descriptors: once with `poll(2)` ([`wait_readable`]), or
//! again and again on the same set with `epoll(7)` ([`Poller`]).
//!
//! The data-plane workers are plain threads that block here between batches (one UDP socket
//! and one TUN queue each), rather than tokio tasks: a wake-up per batch, not per packet.
//!
//! Invariants: a wait never blocks longer than its timeout (rounded up to whole milliseconds,
//! capped at `i32::MAX` ms); an interrupted wait (`EINTR`) reports nothing ready instead of an
//! error; a descriptor in error or hung up counts as readable, so the following read reports
//! the condition; a descriptor that is not open (`POLLNVAL`, `EBADF` when a [`Poller`] is
//! made) is an error.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{context, last_os_error};

/// Waits until at least one of `fds` is readable or `timeout` passes (one `poll(2)`); returns
/// one flag per descriptor, in order. For a hot loop, keep a [`Poller`] instead (no
/// allocation or registration per wait).
pub fn wait_readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let reported = poll_once(&mut pfds, timeout, || format!("{} fds", fds.len()))?;
    Ok(pfds
        .iter()
        .map(|p| reported && p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0)
        .collect())
}

/// Waits until `fd` can be written to (or is in error) or `timeout` passes; `Ok(false)` on
/// timeout or `EINTR`. Used to ride out a full socket send buffer.
pub fn wait_writable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = [libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    }];
    let reported = poll_once(&mut pfd, timeout, || format!("fd {fd}, POLLOUT"))?;
    Ok(reported && pfd[0].revents & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0)
}

/// One `poll(2)` on `pfds`: `Ok(false)` when interrupted (`EINTR`: nothing reported),
/// `Ok(true)` when the `revents` are the kernel's answer; a descriptor that is not open
/// (`POLLNVAL`) is an error. `what` names the set in an error.
fn poll_once(
    pfds: &mut [libc::pollfd],
    timeout: Duration,
    what: impl FnOnce() -> String,
) -> io::Result<bool> {
    let ms = timeout_ms(timeout);
    // SAFETY: `pfds` is a live, exclusively borrowed array of `pfds.len()` pollfd structs;
    // the kernel writes only their `revents` fields.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(context(format_args!("poll({}, {ms} ms)", what()), err));
    }
    match pfds.iter().find(|p| p.revents & libc::POLLNVAL != 0) {
        Some(p) => Err(not_open(p.fd)),
        None => Ok(true),
    }
}

/// A reusable set of descriptors to wait on for readability: an `epoll(7)` instance, so a
/// wait costs no registration on the descriptors' wait queues (`poll(2)` adds and removes one
/// entry per descriptor on every call; a data-plane worker waits once per batch, which for a
/// client that sends one datagram at a time is once per packet). Level-triggered, like
/// `poll`. A descriptor closed while in the set silently leaves it (epoll's rule), so keep
/// the descriptors open as long as the set.
pub struct Poller {
    ep: OwnedFd,
    events: Vec<libc::epoll_event>,
    ready: Vec<bool>,
}

impl Poller {
    /// A set watching `fds` (distinct, pollable descriptors such as sockets and TUN queues)
    /// for readability. Errors: `epoll_create1` failed, or a descriptor is not open or cannot
    /// be watched.
    pub fn new(fds: &[RawFd]) -> io::Result<Self> {
        // SAFETY: epoll_create1(2) takes only an integer flag.
        let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if raw < 0 {
            return Err(last_os_error("epoll_create1"));
        }
        // SAFETY: `raw` is a descriptor epoll_create1 just returned and nothing else owns it.
        let ep = unsafe { OwnedFd::from_raw_fd(raw) };
        for (i, &fd) in fds.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: `ev` is a live epoll_event the kernel only reads.
            let rc = unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
            if rc != 0 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EBADF) {
                    return Err(not_open(fd));
                }
                return Err(context(format_args!("epoll_ctl(ADD, fd {fd})"), err));
            }
        }
        Ok(Poller {
            ep,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; fds.len().max(1)],
            ready: vec![false; fds.len()],
        })
    }

    /// Waits until a descriptor is readable or `timeout` passes; returns how many are ready
    /// (0 on timeout or `EINTR`). The flags are in [`Poller::ready`].
    pub fn wait(&mut self, timeout: Duration) -> io::Result<usize> {
        self.ready.iter_mut().for_each(|r| *r = false);
        let ms = timeout_ms(timeout);
        let cap = libc::c_int::try_from(self.events.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `events` is a live, exclusively borrowed array of at least `cap`
        // epoll_events for the kernel to fill.
        let rc =
            unsafe { libc::epoll_wait(self.ep.as_raw_fd(), self.events.as_mut_ptr(), cap, ms) };
        let Ok(got) = usize::try_from(rc) else {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(context(
                format_args!("epoll_wait({} fds, {ms} ms)", self.ready.len()),
                err,
            ));
        };
        let mut n = 0;
        for ev in self.events.iter().take(got) {
            // By value: the struct is packed on x86-64.
            let (events, index) = (ev.events, ev.u64);
            let readable = events & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
            let slot = usize::try_from(index)
                .ok()
                .and_then(|i| self.ready.get_mut(i));
            if let (true, Some(r)) = (readable, slot) {
                n += usize::from(!*r);
                *r = true;
            }
        }
        Ok(n)
    }

    /// The readiness flags of the last [`Poller::wait`], one per descriptor, in order.
    pub fn ready(&self) -> &[bool] {
        &self.ready
    }
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("epoll", &self.ep)
            .field("ready", &self.ready)
            .finish()
    }
}

fn not_open(fd: RawFd) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("poll: descriptor {fd} is not open (POLLNVAL)"),
    )
}

/// `timeout` in milliseconds for poll(2): rounded up so a sub-millisecond timeout still
/// sleeps, and capped (a larger value would read as "forever" when negative).
fn timeout_ms(timeout: Duration) -> libc::c_int {
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    #[test]
    fn reports_the_readable_socket_only() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind a");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
        let fds = [a.as_raw_fd(), b.as_raw_fd()];
        assert_eq!(
            wait_readable(&fds, Duration::from_millis(20)).expect("poll"),
            vec![false, false]
        );
        a.send_to(b"x", b.local_addr().expect("addr"))
            .expect("send");
        let mut poller = Poller::new(&fds).expect("epoll");
        assert_eq!(poller.wait(Duration::from_secs(5)).expect("poll"), 1);
        assert_eq!(poller.ready(), &[false, true]);
        // Level-triggered: still readable until read, and the flags follow the reads.
        assert_eq!(poller.wait(Duration::from_secs(5)).expect("poll"), 1);
        assert_eq!(poller.ready(), &[false, true]);
        b.send_to(b"y", a.local_addr().expect("addr"))
            .expect("send");
        let mut buf = [0u8; 4];
        b.recv_from(&mut buf).expect("recv");
        assert_eq!(poller.wait(Duration::from_secs(5)).expect("poll"), 1);
        assert_eq!(poller.ready(), &[true, false]);
        a.recv_from(&mut buf).expect("recv");
        assert_eq!(poller.wait(Duration::from_millis(20)).expect("poll"), 0);
        assert_eq!(poller.ready(), &[false, false]);
    }

    #[test]
    fn times_out_within_bounds() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let start = Instant::now();
        let ready = wait_readable(&[a.as_raw_fd()], Duration::from_millis(50)).expect("poll");
        let took = start.elapsed();
        assert_eq!(ready, vec![false]);
        assert!(took >= Duration::from_millis(45), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn closed_descriptor_is_an_error() {
        // Far above any descriptor this process opens.
        let e = wait_readable(&[999_999], Duration::from_millis(1)).expect_err("POLLNVAL");
        assert!(e.to_string().contains("not open"), "{e}");
        let e = Poller::new(&[999_999]).expect_err("EBADF");
        assert!(e.to_string().contains("not open"), "{e}");
    }

    #[test]
    fn poller_times_out_within_bounds() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut poller = Poller::new(&[a.as_raw_fd()]).expect("epoll");
        let start = Instant::now();
        assert_eq!(poller.wait(Duration::from_millis(50)).expect("poll"), 0);
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(45), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn timeout_rounding() {
        assert_eq!(timeout_ms(Duration::ZERO), 0);
        assert_eq!(timeout_ms(Duration::from_micros(1)), 1);
        assert_eq!(timeout_ms(Duration::from_millis(7)), 7);
        assert_eq!(timeout_ms(Duration::from_secs(u64::MAX)), libc::c_int::MAX);
    }
}

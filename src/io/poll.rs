//! Waiting for readability on a few descriptors with `poll(2)`.
//!
//! The data-plane workers are plain threads that block here between batches (one UDP socket
//! and one TUN queue each), rather than tokio tasks: a wake-up per batch, not per packet.
//!
//! Invariants: a wait never blocks longer than its timeout (rounded up to whole milliseconds,
//! capped at `i32::MAX` ms); an interrupted wait (`EINTR`) reports nothing ready instead of an
//! error; a descriptor in error or hung up counts as readable, so the following read reports
//! the condition; a descriptor that is not open (`POLLNVAL`) is an error.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::context;

/// Waits until at least one of `fds` is readable or `timeout` passes; returns one flag per
/// descriptor, in order. For a hot loop, keep a [`Poller`] instead (no allocation per wait).
pub fn wait_readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut poller = Poller::new(fds);
    poller.wait(timeout)?;
    Ok(poller.ready().to_vec())
}

/// Waits until `fd` can be written to (or is in error) or `timeout` passes; `Ok(false)` on
/// timeout or `EINTR`. Used to ride out a full socket send buffer.
pub fn wait_writable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = timeout_ms(timeout);
    // SAFETY: `pfd` is one live pollfd the kernel may write `revents` into.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(context(
            format_args!("poll(fd {fd}, POLLOUT, {ms} ms)"),
            err,
        ));
    }
    if pfd.revents & libc::POLLNVAL != 0 {
        return Err(not_open(fd));
    }
    Ok(pfd.revents & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0)
}

/// A reusable `poll(2)` set for readability.
#[derive(Debug, Clone)]
pub struct Poller {
    pfds: Vec<libc::pollfd>,
    ready: Vec<bool>,
}

impl Poller {
    /// A set watching `fds` for readability.
    pub fn new(fds: &[RawFd]) -> Self {
        Poller {
            pfds: fds
                .iter()
                .map(|&fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect(),
            ready: vec![false; fds.len()],
        }
    }

    /// Waits until a descriptor is readable or `timeout` passes; returns how many are ready
    /// (0 on timeout or `EINTR`). The flags are in [`Poller::ready`].
    pub fn wait(&mut self, timeout: Duration) -> io::Result<usize> {
        self.ready.iter_mut().for_each(|r| *r = false);
        let ms = timeout_ms(timeout);
        // SAFETY: `pfds` is a live, exclusively borrowed array of `pfds.len()` pollfd structs;
        // the kernel writes only their `revents` fields.
        let rc = unsafe { libc::poll(self.pfds.as_mut_ptr(), self.pfds.len() as libc::nfds_t, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(context(
                format_args!("poll({} fds, {ms} ms)", self.pfds.len()),
                err,
            ));
        }
        let mut n = 0;
        for (p, r) in self.pfds.iter().zip(self.ready.iter_mut()) {
            if p.revents & libc::POLLNVAL != 0 {
                return Err(not_open(p.fd));
            }
            *r = p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
            n += usize::from(*r);
        }
        Ok(n)
    }

    /// The readiness flags of the last [`Poller::wait`], one per descriptor, in order.
    pub fn ready(&self) -> &[bool] {
        &self.ready
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
        let mut poller = Poller::new(&fds);
        assert_eq!(poller.wait(Duration::from_secs(5)).expect("poll"), 1);
        assert_eq!(poller.ready(), &[false, true]);
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
    }

    #[test]
    fn timeout_rounding() {
        assert_eq!(timeout_ms(Duration::ZERO), 0);
        assert_eq!(timeout_ms(Duration::from_micros(1)), 1);
        assert_eq!(timeout_ms(Duration::from_millis(7)), 7);
        assert_eq!(timeout_ms(Duration::from_secs(u64::MAX)), libc::c_int::MAX);
    }
}

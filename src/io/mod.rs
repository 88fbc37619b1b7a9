//! The OS I/O layer (ARCHITECTURE.md §1): TUN queues, batched UDP sockets, `poll(2)` and
//! the gateway's network configuration (routes, forwarding, nftables), what the host's
//! network looks like (its connected networks) and the daemon's private directories
//! (`fs.rs`).
//!
//! Invariants of this layer:
//! - It is the only place besides the daemon that talks to the kernel. It knows nothing of
//!   IKE, ESP or the configuration model: it moves bytes and configures links.
//! - Every descriptor it hands out is non-blocking and close-on-exec, and is owned by a Rust
//!   value that closes it on drop.
//! - No function panics on an OS result: failures come back as `io::Error`s whose message
//!   names the system call or command that failed.
//! - The hot-path types ([`udp::RecvBatch`], [`udp::SendBatch`]) allocate once, in `new`, and
//!   never afterwards.
//! - Everything acts in the network namespace of the *calling thread* (sockets, ioctls and the
//!   `ip`/`nft` commands it spawns), which is what lets the tests run each case in a namespace
//!   of its own.

pub mod fs;
pub mod handover;
pub mod host;
pub mod net;
pub mod poll;
pub mod tun;
pub mod udp;

#[cfg(test)]
mod testns;

use std::io;

/// Wraps `err` so that its message says what was being done, keeping its [`io::ErrorKind`]
/// (and so its raw OS meaning for callers that match on the kind).
pub(crate) fn context(what: impl std::fmt::Display, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// The last OS error (`errno`) with context; call it right after a failing libc call.
pub(crate) fn last_os_error(what: impl std::fmt::Display) -> io::Error {
    context(what, io::Error::last_os_error())
}

/// An `InvalidInput` error for a bad argument.
pub(crate) fn invalid_input(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

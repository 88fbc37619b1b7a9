//! `ipsec-server status`: a Unix socket at `gateway.control_socket` (default
//! `/run/ipsec-server/control.sock`); a client connects and reads one text report of the
//! online clients, like `swanctl --list-sas`.
//!
//! The report names every client, so only the daemon's user (root) may read it: [`listen`]
//! checks the socket's directory ([`crate::io::fs::private_dir`]: created 0700 if missing;
//! ours, not writable by others, never a symbolic link — readable by others is only warned
//! about) and makes the socket mode 0600. A stale socket
//! of an earlier run is removed, but only if it is a socket nobody listens on: whatever else
//! sits at the path (a symbolic link, a file, a running daemon's socket) is left alone and
//! the stack does not start.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::control_plane::ControlMsg;
use super::inbox::Postbox;
use crate::ike::Responder;
use crate::io::fs::{private_dir, PrivateDir};
use crate::ipsec::Sad;

/// Binds the control socket at `path` (see the module docs): non-blocking, mode 0600, in a
/// private directory.
pub(crate) fn listen(path: &Path) -> std::io::Result<UnixListener> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| std::io::Error::other("the socket path names no directory"))?;
    if let PrivateDir::Readable(mode) = private_dir(dir)? {
        warn!(
            "{} (the control socket's directory) has mode {mode:o}; 0700 is advised",
            dir.display()
        );
    }
    // The directory is ours and private: nobody else can change what sits at `path`
    // between this check and bind(2), which itself never follows a link.
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            // Stale only if nobody listens: never take the socket of a running daemon.
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another daemon is listening on it",
                ));
            }
            std::fs::remove_file(path)?
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "something other than a socket is in the way (not removed)",
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Answers `status` clients until `stop`. Ends early only when the IKE thread has ended.
pub(crate) fn serve(
    listener: UnixListener,
    ike: Postbox,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let (rtx, rrx) = mpsc::channel();
                if ike.control(ControlMsg::Status(rtx)).is_err() {
                    // The IKE thread ends first when the stack stops.
                    return if stop.load(Ordering::Relaxed) {
                        Ok(())
                    } else {
                        Err("the IKE thread has ended".into())
                    };
                }
                let report = rrx
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_else(|_| "busy\n".into());
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                if let Err(e) = stream.write_all(report.as_bytes()) {
                    debug!("status client: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => {
                debug!("control socket accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

/// Connects to a running daemon and returns its status report.
pub fn query_status(path: &Path) -> std::io::Result<String> {
    let s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = String::new();
    s.take(16 << 20).read_to_string(&mut out)?;
    Ok(out)
}

/// The IKE thread's queue, for the status report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueStatus {
    pub capacity: usize,
    /// Datagrams dropped since the start because the queue was full.
    pub dropped: u64,
}

pub(crate) fn render_status(responder: &Responder, sad: &Sad, queue: QueueStatus) -> String {
    let now = Instant::now();
    let snap = sad.snapshot();
    let mut sas = responder.sas(now);
    sas.sort_by_key(|s| s.vip);
    let mut out = String::new();
    let _ = writeln!(out, "online clients: {}", responder.online_clients());
    let _ = writeln!(
        out,
        "ike queue: {} dropped (queue full), capacity {} datagrams",
        queue.dropped, queue.capacity
    );
    let refusals: Vec<String> = responder
        .refusals()
        .iter()
        .map(|(why, n)| format!("{why} {n}"))
        .collect();
    if !refusals.is_empty() {
        let _ = writeln!(out, "refused ike messages: {}", refusals.join(", "));
    }
    for sa in sas {
        let state = if sa.established {
            "ESTABLISHED"
        } else {
            "CONNECTING"
        };
        let reauth = sa
            .reauth_in_secs
            .map(|s| format!(" re-authenticate within {s}s"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{state} {}s: identity {} remote {} vip {} ike-spis {:016x}_i {:016x}_r{reauth}",
            sa.age_secs,
            if sa.identity.is_empty() {
                "-"
            } else {
                &sa.identity
            },
            sa.remote,
            sa.vip.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            sa.spi_i,
            sa.spi_r,
        );
        for (spi_in, spi_out) in sa.children {
            let ((pin, bin, din), dummies, sin) = snap
                .inbound(spi_in)
                .map(|s| {
                    let c = &s.counters;
                    (c.read(), c.dummies(), c.outside_selectors())
                })
                .unwrap_or_default();
            // The client's current outbound SA, shown with the pair it belongs to.
            let ((pout, bout, dout), sout, seq) = sa
                .vip
                .and_then(|v| snap.outbound(v))
                .filter(|o| o.inbound_spi == spi_in)
                .map(|o| {
                    let c = &o.counters;
                    (c.read(), c.outside_selectors(), o.seq())
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  child INSTALLED spi-in {spi_in:08x} spi-out {spi_out:08x}: in {bin} bytes {pin} packets ({din} dropped, {sin} outside selectors, {dummies} dummy), out {bout} bytes {pout} packets ({dout} dropped, {sout} outside selectors), out seq {seq}"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn socket_is_private_and_never_replaces_a_link_or_a_file() {
        let base = std::env::temp_dir().join(format!("control-sock-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("run");
        let path = dir.join("control.sock");
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;

        let l = listen(&path).unwrap();
        assert_eq!(mode(&dir), 0o700, "the directory is created private");
        assert_eq!(mode(&path) & 0o777, 0o600, "the socket is owner-only");
        // A stale socket of an earlier run (its listener gone) is replaced.
        drop(l);
        let l = listen(&path).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        // A socket somebody listens on is not taken over.
        let e = listen(&path).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
        assert!(
            UnixStream::connect(&path).is_ok(),
            "the running one still answers"
        );
        drop(l);

        // A symbolic link at the path is neither followed nor removed.
        std::fs::remove_file(&path).unwrap();
        let target = base.join("target");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = listen(&path).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");

        // Nor is a regular file.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"x").unwrap();
        assert!(listen(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"x");

        // A socket directory that is a link, or writable by others, is refused; one only
        // readable by others is used as it is (the socket itself is 0600).
        std::fs::remove_file(&path).unwrap();
        let link_dir = base.join("linkdir");
        std::os::unix::fs::symlink(&dir, &link_dir).unwrap();
        assert!(listen(&link_dir.join("control.sock")).is_err());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(listen(&path).is_err());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(listen(&path).unwrap());
        assert_eq!(mode(&path) & 0o777, 0o600);
        assert_eq!(mode(&dir), 0o755);
        std::fs::remove_dir_all(&base).unwrap();
    }
}

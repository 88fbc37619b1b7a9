//! `ipsec-server status`: a Unix socket in the state directory; a client connects and reads
//! one text report of the online clients, like `swanctl --list-sas`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use super::control_plane::ControlMsg;
use super::inbox::Postbox;
use crate::ike::Responder;
use crate::ipsec::Sad;

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("control.sock")
}

pub(crate) fn listen(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A stale socket of a previous run would make bind fail.
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
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

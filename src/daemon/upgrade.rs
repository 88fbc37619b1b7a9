//! `ipsec-server upgrade`: a new process (a new binary, a changed configuration) takes over
//! the running one without dropping a tunnel (README, "Upgrading in place").
//!
//! The old process ([`Upgrader::upgrade`], on the control thread):
//! 1. starts `upgrade_binary` with its own arguments and `--takeover-fd N`, N being its end
//!    of a socketpair (`io::handover`), and waits (at most [`HELLO_WAIT`]) until the new
//!    process has read its configuration and says `H` (hello) — a binary that does not
//!    start, exits or says nothing changes nothing;
//! 2. with the stack manager locked (no API change meanwhile) parks the stack's packet
//!    threads and has the IKE thread capture its state (`Stack::capture`): from here on
//!    neither process handles a packet; what arrives waits in the kernel's socket buffers;
//! 3. sends the UDP sockets, the daemon's listeners (control socket, `[api]`, `[metrics]`)
//!    and the snapshot (`handover.rs`: every IKE and Child SA, outbound sequence numbers
//!    raised by a margin, replay windows, the pool, the cluster lease);
//! 4. waits (at most [`READY_WAIT`]) for `R` (the new process serves: it attached new queues
//!    to the TUN device, restored the SAs, started its threads and told systemd
//!    `MAINPID=` itself). Then the old stack ends without DELETE and without undoing its
//!    routes or nftables tables, the control thread answers the `upgrade` request, and the
//!    process exits with status 0, its cluster lease not revoked.
//!    Anything else (`F` with a reason, silence, the process gone) kills the new process
//!    (by its PID, a child of ours) and only then resumes the stack: never two processes
//!    serving, and the answer says why.
//!
//! The new process ([`receive`], from `run --takeover-fd N`) says hello, takes the
//! descriptors and the snapshot, and [`TakeOver::confirm`]s once it serves, or
//! [`TakeOver::refuse`]s with the reason (its error), then exits.
//!
//! Why not the TUN queues' descriptors: the queues use `IFF_VNET_HDR` (offload), whose
//! framing `tun-rs` will not adopt from a bare descriptor (it cannot read the state back),
//! so the new process attaches queues of its own to the same device instead; the device
//! never goes away (the old queues stay open until the old process exits), so its routes
//! and tables stay. Packets the kernel steers to the old queues between the pause and the
//! exit are lost: at most the switch time's worth.
//!
//! The switch time reported is from the moment the old packet threads are asked to park
//! (each handles no packet after it has parked, within `pause::PACKET_WAIT`) to the new
//! process's `R` (its threads run): an upper bound of the time a packet may wait.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::cluster::Cluster;
use super::handover::{self, Listener, Snapshot};
use super::manager::StackManager;
use super::stack::Handed;
use super::DaemonError;
use crate::io;

/// How long the new process may take to start and read its configuration.
pub(crate) const HELLO_WAIT: Duration = Duration::from_secs(10);
/// How long it may take from the snapshot to serving (restore, TUN queues, threads).
pub(crate) const READY_WAIT: Duration = Duration::from_secs(10);
/// How long the new process waits for the snapshot after its hello.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(20);

/// The argument that makes `run` a take-over.
pub const TAKEOVER_ARG: &str = "--takeover-fd";

/// How long a new process that cannot read the snapshot waits for the old one to stop.
const RESTART_WAIT: Duration = Duration::from_secs(60);

const HELLO: u8 = b'H';
const READY: u8 = b'R';
const FAILED: u8 = b'F';
/// The snapshot's version is unknown to the new process: restart instead.
const RESTART: u8 = b'V';

/// The test hook's environment variable: `IPSEC_SERVER_TEST_SNAPSHOT_VERSION=N` makes this
/// binary read snapshots up to version N only, as an older binary would (so a test sees the
/// fallback to a restart without an older binary at hand). Only root sets a daemon's
/// environment; its use is logged at WARN.
pub(crate) const SNAPSHOT_VERSION_ENV: &str = "IPSEC_SERVER_TEST_SNAPSHOT_VERSION";

/// The newest snapshot version this process reads ([`SNAPSHOT_VERSION_ENV`]).
fn newest_readable() -> u16 {
    match std::env::var(SNAPSHOT_VERSION_ENV).map(|v| v.trim().parse::<u16>()) {
        Ok(Ok(n)) if n <= handover::VERSION => {
            warn!("{SNAPSHOT_VERSION_ENV}={n}: reading snapshots up to version {n} only (a test hook)");
            n
        }
        Ok(_) => {
            warn!(
                "{SNAPSHOT_VERSION_ENV} is not a version 0..={}: ignored",
                handover::VERSION
            );
            handover::VERSION
        }
        Err(_) => handover::VERSION,
    }
}

/// The answer to a successful `upgrade`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upgraded {
    pub old_pid: u32,
    pub new_pid: u32,
    /// Milliseconds in which neither process handled a packet (see the module docs).
    pub switch_ms: u64,
    pub ike_sas: usize,
    /// The new binary cannot read this snapshot's version: this process stops as on
    /// SIGTERM (DELETE to every client) and the new one starts afresh.
    pub restarted: bool,
}

/// The daemon's listening sockets: each is taken from the previous process when it handed
/// one over, else bound; a duplicate of each is kept for the next hand-over.
#[derive(Default)]
pub(crate) struct Listeners {
    inherited: Mutex<Vec<(Listener, OwnedFd)>>,
    kept: Mutex<Vec<(Listener, OwnedFd)>>,
}

impl Listeners {
    /// The listener of `kind` the previous process handed over, if it did.
    pub(crate) fn inherited(&self, kind: Listener) -> Option<OwnedFd> {
        let mut v = self.inherited.lock().unwrap_or_else(|p| p.into_inner());
        let i = v.iter().position(|(k, _)| *k == kind)?;
        Some(v.swap_remove(i).1)
    }

    /// Keeps a duplicate of `fd` for a hand-over.
    pub(crate) fn keep(&self, kind: Listener, fd: BorrowedFd<'_>) -> std::io::Result<()> {
        let dup = fd.try_clone_to_owned()?;
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((kind, dup));
        Ok(())
    }
}

/// What the old process needs to hand over.
pub(crate) struct Upgrader {
    /// `gateway.upgrade_binary`, else this process's executable as it was at start (a
    /// package upgrade replaces the file at that path).
    pub binary: Option<PathBuf>,
    /// This process's arguments (without the program and any `--takeover-fd`).
    pub args: Vec<OsString>,
    pub manager: Arc<StackManager>,
    pub cluster: Option<Arc<Cluster>>,
    pub listeners: Arc<Listeners>,
    /// After a fallback to a restart: the hand-over socket, open until this process exits
    /// (the new process waits for its end).
    pub restarting: Mutex<Option<UnixStream>>,
}

/// This process's arguments for the process that takes over: without the program name and
/// without a `--takeover-fd N` of its own start.
pub(crate) fn own_args() -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == TAKEOVER_ARG {
            args.next();
        } else if !a.to_string_lossy().starts_with(&format!("{TAKEOVER_ARG}=")) {
            out.push(a);
        }
    }
    out
}

impl Upgrader {
    /// Hands the running server over to a new process (see the module docs). `Ok`: the new
    /// process serves and this one must exit now; `Err`: this one serves on, and says why.
    pub(crate) fn upgrade(&self) -> Result<Upgraded, String> {
        let binary = self
            .binary
            .as_ref()
            .ok_or("no gateway.upgrade_binary, and this process's executable is unknown")?;
        let (sock, theirs) =
            io::handover::pair_for_child().map_err(|e| format!("hand-over socket: {e}"))?;
        let mut child = Command::new(binary)
            .args(&self.args)
            .arg(TAKEOVER_ARG)
            .arg(theirs.as_raw_fd().to_string())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        drop(theirs);
        let new_pid = child.id();
        info!(binary = %binary.display(), pid = new_pid, "upgrade: new process started");
        let result = self.hand_to(&sock, &mut child);
        if let Err(e) = &result {
            // Never two processes serving: the new one is gone before we go on.
            let _ = child.kill();
            let _ = child.wait();
            warn!("upgrade failed, serving on: {e}");
        }
        result
    }

    fn hand_to(&self, sock: &UnixStream, child: &mut Child) -> Result<Upgraded, String> {
        let gone = |child: &mut Child, what: &str| match exit_status(child) {
            Some(status) => format!("the new process exited ({status}) {what}"),
            None => format!("the new process did not answer {what}"),
        };
        match io::handover::recv_note(sock, HELLO_WAIT) {
            Ok((HELLO, _)) => {}
            Ok((FAILED, why)) => return Err(format!("the new process refused: {why}")),
            Ok(_) => return Err("the new process said something unexpected".into()),
            Err(_) => return Err(gone(child, &format!("within {HELLO_WAIT:?} of its start"))),
        }
        let kept = self
            .listeners
            .kept
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (kinds, listener_fds): (Vec<Listener>, Vec<BorrowedFd<'_>>) =
            kept.iter().map(|(k, fd)| (*k, fd.as_fd())).unzip();
        self.manager.hand_over(|stack| {
            let parked = Instant::now();
            let captured = stack.capture()?;
            let ike_sas = captured.responder.sas.len();
            let snapshot = Snapshot {
                responder: captured.responder,
                sad: captured.sad,
                stack: stack.record().clone(),
                cluster: self.cluster.as_ref().and_then(|c| c.handover_lease()),
                listeners: kinds.clone(),
            };
            let sent = handover::encode(&snapshot)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    let mut fds: Vec<BorrowedFd<'_>> =
                        stack.handover_sockets().iter().map(|s| s.as_fd()).collect();
                    fds.extend(listener_fds.iter().copied());
                    io::handover::send(sock, &fds, &bytes)
                        .map_err(|e| format!("sending the snapshot: {e}"))
                });
            let answer = sent.and_then(|()| match io::handover::recv_note(sock, READY_WAIT) {
                Ok((READY, _)) => Ok(true),
                Ok((RESTART, why)) => {
                    warn!("upgrade: {why}; restarting with DELETEs instead");
                    Ok(false)
                }
                Ok((FAILED, why)) => Err(format!("the new process refused: {why}")),
                Ok(_) => Err("the new process said something unexpected".into()),
                Err(_) => Err(gone(
                    child,
                    &format!("within {READY_WAIT:?} of the snapshot"),
                )),
            });
            let handed = match answer {
                Ok(handed) => handed,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    // Systemd may have been told the new process is the main one.
                    super::notify::main_pid();
                    stack.resume();
                    return Err(e);
                }
            };
            if !handed {
                // Serve until the orderly stop (`Upgrader::stop_for_restart`).
                stack.resume();
                if let Ok(keep) = sock.try_clone() {
                    *self.restarting.lock().unwrap_or_else(|p| p.into_inner()) = Some(keep);
                }
            }
            let upgraded = Upgraded {
                old_pid: std::process::id(),
                new_pid: child.id(),
                switch_ms: u64::try_from(parked.elapsed().as_millis()).unwrap_or(u64::MAX),
                ike_sas,
                restarted: !handed,
            };
            Ok((upgraded, handed))
        })
    }

    /// After an upgrade that fell back to a restart: the orderly stop of SIGTERM (DELETE to
    /// every client, host changes undone, the cluster lease revoked, the control socket
    /// removed), then the exit that lets the new process start afresh. Systemd already
    /// knows the new process as the main one: no `STOPPING=1`.
    pub(crate) fn stop_for_restart(&self, control_socket: &std::path::Path) -> ! {
        self.manager.shutdown();
        if let Some(c) = &self.cluster {
            c.stop(true);
        }
        let _ = std::fs::remove_file(control_socket);
        info!("stopped for the new process's restart; exiting");
        std::process::exit(0)
    }
}

/// The new process's exit status, if it has exited or does within a moment (its end of the
/// socket closes as it exits, just before it can be waited for).
fn exit_status(child: &mut Child) -> Option<std::process::ExitStatus> {
    for _ in 0..50 {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// The new process's side, between the hand-over socket and serving.
pub(crate) struct TakeOver {
    sock: UnixStream,
    snapshot: Option<Snapshot>,
    udp: Vec<OwnedFd>,
    listeners: Arc<Listeners>,
}

/// Adopts the hand-over socket `fd`, says hello and receives what the old process hands
/// over. Errors are reported to the old process (which serves on) and returned. A snapshot
/// of a version this binary does not read: the old process is asked to stop as on SIGTERM
/// (DELETE to every client), and once it is gone `Ok(None)`: start afresh.
pub(crate) fn receive(fd: RawFd) -> Result<Option<TakeOver>, DaemonError> {
    let fail = |what: String| DaemonError::HandOver(what);
    let sock = io::handover::inherit(fd).map_err(|e| fail(format!("{TAKEOVER_ARG} {fd}: {e}")))?;
    let refused = |sock: &UnixStream, why: String| {
        let _ = io::handover::send_note(sock, FAILED, &why);
        fail(why)
    };
    io::handover::send_note(&sock, HELLO, &handover::VERSION.to_string())
        .map_err(|e| fail(format!("hello: {e}")))?;
    let (mut fds, bytes) = io::handover::recv(&sock, handover::MAX_SNAPSHOT, SNAPSHOT_WAIT)
        .map_err(|e| refused(&sock, format!("receiving the snapshot: {e}")))?;
    let snapshot = match handover::decode_up_to(&bytes, newest_readable()) {
        Ok(s) => s,
        Err(e @ handover::HandoverError::UnknownVersion { .. }) => {
            restart_instead(&sock, &format!("the new process: {e}"));
            return Ok(None);
        }
        Err(e) => return Err(refused(&sock, e.to_string())),
    };
    let n_udp = snapshot.stack.listen.len() * (1 + snapshot.stack.workers as usize);
    if fds.len() != n_udp + snapshot.listeners.len() {
        let why = format!(
            "{} descriptors handed over, {} expected",
            fds.len(),
            n_udp + snapshot.listeners.len()
        );
        return Err(refused(&sock, why));
    }
    let listener_fds = fds.split_off(n_udp);
    let listeners = Listeners {
        inherited: Mutex::new(
            snapshot
                .listeners
                .iter()
                .copied()
                .zip(listener_fds)
                .collect(),
        ),
        kept: Mutex::new(Vec::new()),
    };
    info!(
        ike_sas = snapshot.responder.sas.len(),
        version = u16::from_be_bytes([bytes[0], bytes[1]]),
        "upgrade: snapshot received"
    );
    Ok(Some(TakeOver {
        sock,
        snapshot: Some(snapshot),
        udp: fds,
        listeners: Arc::new(listeners),
    }))
}

/// The snapshot cannot be read: this process becomes systemd's main one, asks the old one
/// to stop and waits (at most [`RESTART_WAIT`]) until it is gone, so that its sockets,
/// listeners and TUN device are free.
fn restart_instead(sock: &UnixStream, why: &str) {
    warn!(
        "upgrade: {why}: the old process stops (DELETE to every client) and this one starts afresh"
    );
    super::notify::main_pid();
    if io::handover::send_note(sock, RESTART, why).is_err() {
        return;
    }
    // The old process's end closes when it exits.
    let _ = sock.set_read_timeout(Some(RESTART_WAIT));
    let mut byte = [0u8; 1];
    let _ = std::io::Read::read(&mut &*sock, &mut byte);
}

impl TakeOver {
    /// The daemon's listeners: the handed-over ones first.
    pub(crate) fn listeners(&self) -> Arc<Listeners> {
        self.listeners.clone()
    }

    /// The node's etcd lease, to keep.
    pub(crate) fn cluster_lease(&self) -> Option<&handover::ClusterLease> {
        self.snapshot.as_ref().and_then(|s| s.cluster.as_ref())
    }

    /// The stack's part, once (for `Stack::adopt`).
    pub(crate) fn stack(&mut self) -> Option<Handed> {
        let s = self.snapshot.take()?;
        Some(Handed {
            udp: std::mem::take(&mut self.udp),
            responder: s.responder,
            sad: s.sad,
            stack: s.stack,
        })
    }

    /// This process serves: systemd learns it is the main process, then the old one that
    /// it may go.
    pub(crate) fn confirm(self, status: &str) {
        super::notify::ready_as_main(status);
        if let Err(e) = io::handover::send_note(&self.sock, READY, "") {
            // The old process is gone or gave up (it then kills this one).
            warn!("upgrade: telling the old process: {e}");
        }
        info!("upgrade: took over");
    }

    /// This process cannot take over: the old one serves on.
    pub(crate) fn refuse(self, why: &str) {
        let _ = io::handover::send_note(&self.sock, FAILED, why);
    }
}

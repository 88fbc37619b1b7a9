//! systemd's readiness protocol (sd_notify(3)) for the `Type=notify` unit
//! (`packaging/ipsec-server.service`): `READY=1` once the listeners the configuration needs
//! are up (the stack of `[ipsec_server]`: UDP 500/4500 on every listen address and the TUN
//! device; with `[api]`, its listener and the server it serves at start, if any),
//! `RELOADING=1` … `READY=1` around a SIGHUP, `STOPPING=1` on SIGINT/SIGTERM, and a `STATUS=`
//! line for `systemctl status`.
//!
//! Without `NOTIFY_SOCKET` in the environment (not started by systemd) every call does
//! nothing. A failure to notify is logged, never fatal: the daemon serves either way.

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("notifying the service manager (NOTIFY_SOCKET): {e}");
    }
}

/// `READY=1` with a status line.
pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `RELOADING=1` with the time of the reload (`MONOTONIC_USEC`, which systemd wants with it).
pub(crate) fn reloading() {
    let mut states = vec![NotifyState::Reloading, NotifyState::Status("reloading")];
    match NotifyState::monotonic_usec_now() {
        Ok(now) => states.push(now),
        Err(e) => tracing::debug!("CLOCK_MONOTONIC for MONOTONIC_USEC: {e}"),
    }
    send(&states);
}

/// `MAINPID=` this process, `READY=1` and a status line: the process that took over in an
/// upgrade (`upgrade.rs`; the unit has `NotifyAccess=all`, so systemd takes it from a
/// process other than the main one).
pub(crate) fn ready_as_main(status: &str) {
    send(&[
        NotifyState::MainPid(std::process::id()),
        NotifyState::Ready,
        NotifyState::Status(status),
    ]);
}

/// `MAINPID=` this process (an upgrade that failed late, or one that falls back to a
/// restart).
pub(crate) fn main_pid() {
    send(&[NotifyState::MainPid(std::process::id())]);
}

/// `STOPPING=1`.
pub(crate) fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

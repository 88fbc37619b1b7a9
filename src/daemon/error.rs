//! Why the daemon (or the client) could not start or keep running: one variant per thing
//! that failed, with the OS error underneath when there is one, so `main` logs one line that
//! says what failed and why.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("no IPsec server to serve (no [ipsec_server] and no [api])")]
    NoServer,
    /// `ipsec-server upgrade`: what the previous process handed over cannot be taken over
    /// (that process serves on).
    #[error("taking over: {0}")]
    HandOver(String),
    /// The control API's saved state could not be loaded.
    #[error("control API state: {0}")]
    ApiState(String),
    /// The configured IPsec server could not be applied (its stack did not start).
    #[error("{0}")]
    Apply(String),
    /// A socket could not be bound (`what`: which one, e.g. `UDP 0.0.0.0:500`).
    #[error("binding {what}: {source}")]
    Bind { what: String, source: io::Error },
    /// Any other socket operation: cloning, connecting, sending, polling.
    #[error("{what}: {source}")]
    Socket { what: String, source: io::Error },
    #[error("creating TUN {name}: {source}")]
    Tun { name: String, source: io::Error },
    /// Routes, addresses, IPv4 forwarding or nftables rules.
    #[error("{what}: {source}")]
    Network {
        what: &'static str,
        source: io::Error,
    },
    /// The Unix socket `status` connects to.
    #[error("control socket {}: {source}", path.display())]
    ControlSocket { path: PathBuf, source: io::Error },
    #[error("spawning thread {name}: {source}")]
    Spawn { name: String, source: io::Error },
    /// The runtime that waits for SIGINT, SIGTERM and SIGHUP.
    #[error("the signal runtime: {0}")]
    Signals(#[source] io::Error),
    /// No data-plane worker bound a UDP 4500 socket for IKE to share.
    #[error("no UDP 4500 socket")]
    NoUdp4500Socket,
    /// A command-line argument of `client` (the text names the flag).
    #[error("{0}: invalid input")]
    Argument(String),
    #[error("reading the PSK from {}: {source}", path.display())]
    Psk { path: PathBuf, source: io::Error },
    /// The generated PSK kept in `state_dir` (`kept_psk.rs`).
    #[error("the generated PSK kept in {}: {source}", path.display())]
    KeptPsk { path: PathBuf, source: io::Error },
    /// The client's IKE_SA_INIT / IKE_AUTH with the gateway failed.
    #[error("{0}")]
    Handshake(String),
    #[error("installing the Child SA: {0}")]
    ChildSa(#[source] crate::ipsec::EspError),
    /// `[cluster]` in a build without the `cluster` feature.
    #[error(
        "[cluster] is configured but this ipsec-server was built without cluster mode \
         (cargo build --features cluster)"
    )]
    ClusterNotBuilt,
    /// Cluster mode could not start (the text says why).
    #[error("cluster: {0}")]
    Cluster(String),
    /// The gateway deleted the client's IKE SA or Child SA.
    #[error("the gateway deleted the tunnel")]
    TunnelDeleted,
}

impl DaemonError {
    /// For `map_err` on a bind: `what` names the socket.
    pub(crate) fn bind(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Bind { what, source }
    }

    /// For `map_err` on another socket operation: `what` says which.
    pub(crate) fn socket(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Socket { what, source }
    }

    /// For `map_err` on a change of the host's network state.
    pub(crate) fn network(what: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Network { what, source }
    }

    /// For `map_err` on creating the TUN device `name`.
    pub(crate) fn tun(name: &str) -> impl FnOnce(io::Error) -> Self {
        let name = name.to_string();
        move |source| Self::Tun { name, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages `main` logs are those of the `what: source` errors before the variants.
    #[test]
    fn messages_say_what_failed_and_why() {
        let denied = || io::Error::from_raw_os_error(13);
        let cases = [
            (
                DaemonError::bind("UDP 0.0.0.0:500")(denied()),
                "binding UDP 0.0.0.0:500: Permission denied (os error 13)",
            ),
            (
                DaemonError::tun("ipsec0")(denied()),
                "creating TUN ipsec0: Permission denied (os error 13)",
            ),
            (
                DaemonError::network("masquerade")(denied()),
                "masquerade: Permission denied (os error 13)",
            ),
            (
                DaemonError::ControlSocket {
                    path: "/run/x/control.sock".into(),
                    source: denied(),
                },
                "control socket /run/x/control.sock: Permission denied (os error 13)",
            ),
            (
                DaemonError::Argument("--enc rot13".into()),
                "--enc rot13: invalid input",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }
}

//! The daemon: wires the UDP sockets, the responder, the SA database and the TUN workers,
//! and owns the gateway's OS state (TUN device, routes, forwarding, nftables).
//!
//! Threads: one control-plane thread owns the [`Responder`](crate::ike::Responder) (all IKE
//! goes through its [`inbox`] — a bounded queue of `limits.ike_queue` datagrams, full means
//! dropped and counted — so the responder needs no lock; `control_plane.rs`); one thread reads
//! UDP 500 per listen address; one data-plane worker per core owns a TUN queue and a
//! reuse-port UDP 4500 socket per listen address (`worker.rs`; replies leave through the
//! socket of their local address, `sockets.rs`); one thread answers `status`, `terminate`
//! and `reload` on a Unix socket for as long as the daemon runs (`control.rs`; the status
//! model and its text in `status.rs`, the reload SIGHUP shares in `reload.rs`); with
//! `[metrics]`, one serves `GET /metrics` (`metrics.rs`), reading the running stack through
//! the IKE thread like `status`. The main thread waits for SIGINT/SIGTERM (`signals.rs`), then
//! shuts everything down: DELETE to every peer, SAs cleared, routes and nftables rules
//! removed, the TUN device closed.
//!
//! No thread may die alone ([`supervise`]): a panic anywhere, or a thread that ends while its
//! stack is not stopping (a worker whose TUN device was deleted), ends the process with status
//! [`EXIT_THREAD_DIED`] and one log line, for a supervisor to restart it.
//!
//! All of that per server is one [`Stack`] (`stack.rs`: [`Stack::start`] / [`Stack::stop`];
//! its changes to the host in `os_state.rs`). Without `[api]`, [`run`] starts the stack of
//! `[ipsec_server]`, applies the file again on SIGHUP and stops the stack on SIGINT/SIGTERM.
//! With `[api]`, [`run`] serves the control API ([`crate::api`]) on threads of its own and a
//! `StackManager` (`manager.rs`) applies the API's changes: start the stack on Create,
//! reconfigure the running responder on Update (a new pool or TUN MTU restarts the stack
//! instead), stop it on Delete. `client.rs` is the other command: the in-crate initiator as
//! a road-warrior client on the same data plane.
//!
//! `ipsec-server upgrade` hands the whole daemon (stack, SAs, listeners, cluster lease) to a
//! new process without dropping a tunnel (`upgrade.rs`; the snapshot in [`handover`], the
//! packet threads held still by `pause.rs`); [`run`] with a `takeover_fd` is that new process.
//!
//! Under systemd (`Type=notify`) [`run`] reports readiness, reloads and the shutdown
//! (`notify.rs`). A PSK the configuration generated (no `psk`, no `psk_file`) is replaced by
//! the one kept in `state_dir` ([`kept_psk`]), at start and on every SIGHUP, so clients keep
//! their PSK across reloads and restarts.

mod client;
mod cluster;
mod control;
mod control_plane;
mod error;
pub mod handover;
pub mod host_check;
mod inbox;
pub mod kept_psk;
mod manager;
mod metrics;
mod mtu;
mod notify;
mod os_state;
mod pause;
mod reload;
mod responder_config;
mod signals;
mod sockets;
mod stack;
mod status;
mod supervise;
mod upgrade;
mod worker;

use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing::{info, warn};

use crate::api::Backend;
use crate::config::Config;

pub use client::{run_client, ClientArgs};
pub use control::{codes as control_codes, request, socket_path, Answer, ClientConfig, Request};
pub use error::DaemonError;
pub use mtu::tun_mtu;
pub use reload::ReloadOutcome;
pub use responder_config::responder_config;
pub use stack::Stack;
pub use status::{SaStatus, Selector, Status};
pub use supervise::{install_panic_hook, EXIT_THREAD_DIED};
pub use upgrade::{Upgraded, TAKEOVER_ARG};

use manager::StackManager;
use signals::{Signal, Signals};

/// How long `READY=1` waits for the server an API gateway serves at start (systemd's default
/// start timeout is 90 s).
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the gateway until SIGINT or SIGTERM. Without `[api]` it serves `[ipsec_server]`;
/// with `[api]` it serves the control API and whatever server the API's state (or, before
/// the API's first change, `[ipsec_server]`) defines — possibly none (a bare gateway). The
/// control socket is served throughout. `takeover_fd`: this process takes over from the one
/// that started it (`ipsec-server upgrade`, `upgrade.rs`).
pub fn run(config: Config, path: &Path, takeover_fd: Option<RawFd>) -> Result<(), DaemonError> {
    let mut takeover = match takeover_fd {
        Some(fd) => upgrade::receive(fd)?,
        None => None,
    };
    let served = run_taking_over(config, path, &mut takeover);
    if let (Some(t), Err(e)) = (takeover, &served) {
        // Not confirmed: the old process serves on.
        t.refuse(&e.to_string());
    }
    served
}

fn run_taking_over(
    config: Config,
    path: &Path,
    takeover: &mut Option<upgrade::TakeOver>,
) -> Result<(), DaemonError> {
    let mut signals = Signals::new()?;
    let config = kept_psk::keep_generated_psk(config)?;
    let lease = takeover.as_ref().and_then(|t| t.cluster_lease().cloned());
    let cluster = cluster::Cluster::start(&config, lease.as_ref())?;
    let manager = Arc::new(StackManager::new(config.clone(), cluster.clone()));
    let listeners = takeover.as_ref().map(|t| t.listeners()).unwrap_or_default();
    let api = match config.api() {
        Some(_) => {
            let backend: Arc<dyn Backend> = manager.clone();
            Some(crate::api::Api::open(&config, backend).map_err(DaemonError::ApiState)?)
        }
        None => None,
    };
    if let Some(handed) = takeover.as_mut().and_then(|t| t.stack()) {
        let server = match &api {
            Some(api) => api.server_at_start().map_err(DaemonError::ApiState)?,
            None => None,
        };
        let server = server
            .or_else(|| config.ipsec_server().cloned())
            .ok_or(DaemonError::NoServer)?;
        manager.adopt(&server, handed)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reload_from = config.api().is_none().then(|| path.to_path_buf());
    let upgrader = upgrade::Upgrader {
        binary: config
            .gateway()
            .upgrade_binary()
            .map(Path::to_path_buf)
            .or_else(|| std::env::current_exe().ok()),
        args: upgrade::own_args(),
        manager: manager.clone(),
        cluster: cluster.clone(),
        listeners: listeners.clone(),
        restarting: Default::default(),
    };
    let control = control::start(&config, manager.clone(), reload_from, &stop, upgrader)?;
    let ctx = Serving {
        config: &config,
        manager: &manager,
        stop: &stop,
        cluster: &cluster,
        listeners: &listeners,
    };
    let served = match (config.api().cloned(), api) {
        (Some(api_cfg), Some(api)) => run_api(&ctx, &api_cfg, api, &mut signals, takeover),
        _ => run_from_file(&ctx, path, &mut signals, takeover),
    };
    stop.store(true, Ordering::Relaxed);
    let _ = control.join();
    manager.shutdown();
    if let Some(c) = cluster {
        c.stop(true);
    }
    served
}

/// What the serving loops share.
struct Serving<'a> {
    config: &'a Config,
    manager: &'a Arc<StackManager>,
    stop: &'a Arc<AtomicBool>,
    cluster: &'a Option<Arc<cluster::Cluster>>,
    listeners: &'a Arc<upgrade::Listeners>,
}

/// `READY=1` for systemd; after a take-over, this process becomes the main one and the old
/// process may go (`upgrade.rs`).
fn ready(status: &str, takeover: &mut Option<upgrade::TakeOver>) {
    match takeover.take() {
        Some(t) => t.confirm(status),
        None => notify::ready(status),
    }
}

/// A TCP listener of the daemon: the one the previous process handed over, else bound at
/// `addr`; a duplicate is kept for the next hand-over.
fn tcp_listener(
    listeners: &upgrade::Listeners,
    kind: handover::Listener,
    addr: std::net::SocketAddr,
    what: &str,
) -> Result<std::net::TcpListener, DaemonError> {
    let listener = match listeners.inherited(kind) {
        Some(fd) => std::net::TcpListener::from(fd),
        None => std::net::TcpListener::bind(addr)
            .map_err(DaemonError::bind(format!("{what} on {addr}")))?,
    };
    listeners
        .keep(kind, std::os::fd::AsFd::as_fd(&listener))
        .map_err(DaemonError::socket(format!(
            "duplicating the {what} listener"
        )))?;
    Ok(listener)
}

/// Serves the control API until SIGINT or SIGTERM.
fn run_api(
    ctx: &Serving<'_>,
    api_cfg: &crate::config::ApiConfig,
    api: Arc<crate::api::Api>,
    signals: &mut Signals,
    takeover: &mut Option<upgrade::TakeOver>,
) -> Result<(), DaemonError> {
    let listener = tcp_listener(
        ctx.listeners,
        handover::Listener::Api,
        api_cfg.listen(),
        "the control API",
    )?;
    info!(listen = %api_cfg.listen(), "control API listening");
    let metrics = start_metrics(ctx, Some(api.clone()))?;
    let handler: crate::api::http::Handler = {
        let api = api.clone();
        Arc::new(move |req, peer| api.handle(req, peer))
    };
    let http = {
        let stop2 = ctx.stop.clone();
        supervise::spawn("api-http".into(), ctx.stop, move || {
            crate::api::http::serve(listener, stop2, handler);
            Ok(())
        })?
    };
    // Cluster mode: the server definition is etcd's (src/api/shared.rs), followed by the
    // `api-follow` thread.
    let (started, follower) = match ctx.cluster {
        Some(c) => {
            api.share(c.clone());
            let (seq, first) = c.first_definition();
            let started = api.start_shared(first.as_ref());
            (
                started,
                Some(c.follow(api.clone(), ctx.manager.clone(), ctx.stop, seq)?),
            )
        }
        None => (api.start(), None),
    };
    match started {
        Ok(true) => {
            if !ctx.manager.wait_applied(READY_TIMEOUT) {
                warn!("the IPsec server is not up after {READY_TIMEOUT:?}; ready anyway");
            }
        }
        Ok(false) => {}
        Err(e) => warn!("{e}; serving the API only"),
    }
    let status = format!("control API on {}", api_cfg.listen());
    ready(&status, takeover);
    while signals.wait() == Signal::Reload {
        notify::reloading();
        info!("SIGHUP ignored: with [api] the server is changed through the API");
        notify::ready(&status);
    }
    notify::stopping();
    info!("shutting down");
    ctx.stop.store(true, Ordering::Relaxed);
    let _ = http.join();
    if let Some(f) = follower {
        let _ = f.join();
    }
    if let Some(m) = metrics {
        let _ = m.join();
    }
    Ok(())
}

/// Starts the `[metrics]` listener, if configured: it reads the running stack of `manager`
/// and the API's request counts at each scrape. Bound before anything is served, so a port
/// in use stops the start cleanly.
fn start_metrics(
    ctx: &Serving<'_>,
    api: Option<Arc<crate::api::Api>>,
) -> Result<Option<std::thread::JoinHandle<()>>, DaemonError> {
    let Some(cfg) = ctx.config.metrics() else {
        return Ok(None);
    };
    let listener = tcp_listener(
        ctx.listeners,
        handover::Listener::Metrics,
        cfg.listen(),
        "metrics",
    )?;
    let manager = ctx.manager.clone();
    let cluster = ctx.cluster.clone();
    metrics::start(cfg, listener, ctx.stop, move |per_client| metrics::Scrape {
        stack: manager.metrics(per_client),
        api_requests: api.as_ref().map(|a| a.request_counts()),
        http_refused: 0,
        cluster: cluster.as_ref().map(|c| (c.lease_valid(), c.refused())),
    })
    .map(Some)
}

/// Serves the file's `[ipsec_server]`; SIGHUP reads the file again and applies it
/// (`reload.rs`, as `ipsec-server reload` does). A file that no longer validates is logged
/// and ignored.
fn run_from_file(
    ctx: &Serving<'_>,
    path: &Path,
    signals: &mut Signals,
    takeover: &mut Option<upgrade::TakeOver>,
) -> Result<(), DaemonError> {
    let metrics = start_metrics(ctx, None)?;
    if let Err(e) = ctx.manager.apply(ctx.config.ipsec_server(), false) {
        ctx.stop.store(true, Ordering::Relaxed);
        return Err(DaemonError::Apply(e));
    }
    let status = format!("serving on {:?}", ctx.config.gateway().listen_addrs());
    ready(&status, takeover);
    while signals.wait() == Signal::Reload {
        // Logged and reported to systemd either way; the outcome is for `ipsec-server reload`.
        let _ = reload::reload(ctx.manager, path);
    }
    notify::stopping();
    info!("shutting down");
    ctx.stop.store(true, Ordering::Relaxed);
    if let Some(m) = metrics {
        let _ = m.join();
    }
    Ok(())
}

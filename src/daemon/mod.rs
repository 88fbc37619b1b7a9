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
mod reload;
mod responder_config;
mod signals;
mod sockets;
mod stack;
mod status;
mod supervise;
mod worker;

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

use manager::StackManager;
use signals::{Signal, Signals};

/// How long `READY=1` waits for the server an API gateway serves at start (systemd's default
/// start timeout is 90 s).
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the gateway until SIGINT or SIGTERM. Without `[api]` it serves `[ipsec_server]`;
/// with `[api]` it serves the control API and whatever server the API's state (or, before
/// the API's first change, `[ipsec_server]`) defines — possibly none (a bare gateway). The
/// control socket is served throughout.
pub fn run(config: Config, path: &Path) -> Result<(), DaemonError> {
    let mut signals = Signals::new()?;
    let config = kept_psk::keep_generated_psk(config)?;
    let cluster = cluster::Cluster::start(&config, None)?;
    let manager = Arc::new(StackManager::new(config.clone(), cluster.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let reload_from = config.api().is_none().then(|| path.to_path_buf());
    let control = control::start(&config, manager.clone(), reload_from, &stop)?;
    let served = match config.api().cloned() {
        None => run_from_file(&config, path, &manager, &stop, &mut signals, &cluster),
        Some(api_cfg) => run_api(&config, &api_cfg, &manager, &stop, &mut signals, &cluster),
    };
    stop.store(true, Ordering::Relaxed);
    let _ = control.join();
    manager.shutdown();
    if let Some(c) = cluster {
        c.stop(true);
    }
    served
}

/// Serves the control API until SIGINT or SIGTERM.
fn run_api(
    config: &Config,
    api_cfg: &crate::config::ApiConfig,
    manager: &Arc<StackManager>,
    stop: &Arc<AtomicBool>,
    signals: &mut Signals,
    cluster: &Option<Arc<cluster::Cluster>>,
) -> Result<(), DaemonError> {
    let backend: Arc<dyn Backend> = manager.clone();
    let api = crate::api::Api::open(config, backend).map_err(DaemonError::ApiState)?;
    let listener = std::net::TcpListener::bind(api_cfg.listen()).map_err(DaemonError::bind(
        format!("the control API on {}", api_cfg.listen()),
    ))?;
    info!(listen = %api_cfg.listen(), "control API listening");
    let metrics = start_metrics(config, manager, Some(api.clone()), stop, cluster)?;
    let handler: crate::api::http::Handler = {
        let api = api.clone();
        Arc::new(move |req, peer| api.handle(req, peer))
    };
    let http = {
        let stop2 = stop.clone();
        supervise::spawn("api-http".into(), stop, move || {
            crate::api::http::serve(listener, stop2, handler);
            Ok(())
        })?
    };
    // Cluster mode: the server definition is etcd's (src/api/shared.rs), followed by the
    // `api-follow` thread.
    let (started, follower) = match cluster {
        Some(c) => {
            api.share(c.clone());
            let (seq, first) = c.first_definition();
            let started = api.start_shared(first.as_ref());
            (
                started,
                Some(c.follow(api.clone(), manager.clone(), stop, seq)?),
            )
        }
        None => (api.start(), None),
    };
    match started {
        Ok(true) => {
            if !manager.wait_applied(READY_TIMEOUT) {
                warn!("the IPsec server is not up after {READY_TIMEOUT:?}; ready anyway");
            }
        }
        Ok(false) => {}
        Err(e) => warn!("{e}; serving the API only"),
    }
    let status = format!("control API on {}", api_cfg.listen());
    notify::ready(&status);
    while signals.wait() == Signal::Reload {
        notify::reloading();
        info!("SIGHUP ignored: with [api] the server is changed through the API");
        notify::ready(&status);
    }
    notify::stopping();
    info!("shutting down");
    stop.store(true, Ordering::Relaxed);
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
    config: &Config,
    manager: &Arc<StackManager>,
    api: Option<Arc<crate::api::Api>>,
    stop: &Arc<AtomicBool>,
    cluster: &Option<Arc<cluster::Cluster>>,
) -> Result<Option<std::thread::JoinHandle<()>>, DaemonError> {
    let Some(cfg) = config.metrics() else {
        return Ok(None);
    };
    let manager = manager.clone();
    let cluster = cluster.clone();
    metrics::start(cfg, stop, move |per_client| metrics::Scrape {
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
    config: &Config,
    path: &Path,
    manager: &Arc<StackManager>,
    stop: &Arc<AtomicBool>,
    signals: &mut Signals,
    cluster: &Option<Arc<cluster::Cluster>>,
) -> Result<(), DaemonError> {
    let metrics = start_metrics(config, manager, None, stop, cluster)?;
    if let Err(e) = manager.apply(config.ipsec_server(), false) {
        stop.store(true, Ordering::Relaxed);
        return Err(DaemonError::Apply(e));
    }
    let status = format!("serving on {:?}", config.gateway().listen_addrs());
    notify::ready(&status);
    while signals.wait() == Signal::Reload {
        // Logged and reported to systemd either way; the outcome is for `ipsec-server reload`.
        let _ = reload::reload(manager, path);
    }
    notify::stopping();
    info!("shutting down");
    stop.store(true, Ordering::Relaxed);
    if let Some(m) = metrics {
        let _ = m.join();
    }
    Ok(())
}

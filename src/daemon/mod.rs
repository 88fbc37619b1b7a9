//! The daemon: wires the UDP sockets, the responder, the SA database and the TUN workers,
//! and owns the gateway's OS state (TUN device, routes, forwarding, nftables).
//!
//! Threads: one control-plane thread owns the [`Responder`](crate::ike::Responder) (all IKE
//! goes through its [`inbox`] — a bounded queue of `limits.ike_queue` datagrams, full means
//! dropped and counted — so the responder needs no lock; `control_plane.rs`); one thread reads
//! UDP 500 per listen address; one data-plane worker per core owns a TUN queue and a
//! reuse-port UDP 4500 socket per listen address (`worker.rs`; replies leave through the
//! socket of their local address, `sockets.rs`); one thread answers `status` on a Unix
//! socket (`control.rs`). The main thread waits for SIGINT/SIGTERM (`signals.rs`), then
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
mod control;
mod control_plane;
mod error;
pub mod host_check;
mod inbox;
pub mod kept_psk;
mod manager;
mod mtu;
mod notify;
mod os_state;
mod responder_config;
mod signals;
mod sockets;
mod stack;
mod supervise;
mod worker;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing::{info, warn};

use crate::api::Backend;
use crate::config::Config;

pub use client::{run_client, ClientArgs};
pub use control::query_status;
pub use error::DaemonError;
pub use mtu::tun_mtu;
pub use responder_config::responder_config;
pub use stack::Stack;
pub use supervise::{install_panic_hook, EXIT_THREAD_DIED};

use manager::StackManager;
use signals::{Signal, Signals};

/// How long `READY=1` waits for the server an API gateway serves at start (systemd's default
/// start timeout is 90 s).
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the gateway until SIGINT or SIGTERM. Without `[api]` it serves `[ipsec_server]`;
/// with `[api]` it serves the control API and whatever server the API's state (or, before
/// the API's first change, `[ipsec_server]`) defines — possibly none (a bare gateway).
pub fn run(config: Config, path: &Path) -> Result<(), DaemonError> {
    let mut signals = Signals::new()?;
    let config = kept_psk::keep_generated_psk(config)?;
    let Some(api_cfg) = config.api().cloned() else {
        return run_from_file(config, path, &mut signals);
    };
    let manager = Arc::new(StackManager::new(config.clone()));
    let backend: Arc<dyn Backend> = manager.clone();
    let api = crate::api::Api::open(&config, backend).map_err(DaemonError::ApiState)?;
    let listener = std::net::TcpListener::bind(api_cfg.listen()).map_err(DaemonError::bind(
        format!("the control API on {}", api_cfg.listen()),
    ))?;
    info!(listen = %api_cfg.listen(), "control API listening");
    let stop = Arc::new(AtomicBool::new(false));
    let handler: crate::api::http::Handler = {
        let api = api.clone();
        Arc::new(move |req, peer| api.handle(req, peer))
    };
    let http = {
        let stop2 = stop.clone();
        supervise::spawn("api-http".into(), &stop, move || {
            crate::api::http::serve(listener, stop2, handler);
            Ok(())
        })?
    };
    match api.start() {
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
    manager.shutdown();
    Ok(())
}

/// Serves the file's `[ipsec_server]`; SIGHUP reads the file again and applies it like an
/// UpdateIpsecServer: `effect_immediately = true` deletes every IKE SA so clients reconnect
/// with the new settings, `false` keeps them until they authenticate again (after a PSK
/// change within `psk_change_reauth`, `ike::reauth`). A file that no longer validates is
/// logged and ignored.
fn run_from_file(config: Config, path: &Path, signals: &mut Signals) -> Result<(), DaemonError> {
    let manager = StackManager::new(config.clone());
    manager
        .apply(config.ipsec_server(), false)
        .map_err(DaemonError::Apply)?;
    let status = format!("serving on {:?}", config.gateway().listen_addrs());
    notify::ready(&status);
    while signals.wait() == Signal::Reload {
        notify::reloading();
        let loaded = crate::config::load(
            path,
            &crate::io::host::host_networks_excluding,
            &mut rand::thread_rng(),
        )
        .map_err(|report| report.to_string())
        .and_then(|new| kept_psk::keep_generated_psk(new).map_err(|e| e.to_string()));
        match loaded {
            Ok(new) => {
                let effect = new.ipsec_server().is_some_and(|s| s.effect_immediately());
                info!(
                    effect_immediately = effect,
                    "SIGHUP: applying {}",
                    path.display()
                );
                if let Err(e) = manager.apply(new.ipsec_server(), effect) {
                    warn!("applying the reloaded configuration failed: {e}");
                }
            }
            Err(report) => {
                warn!("SIGHUP: {} not applied:\n{report}", path.display());
                notify::ready(&format!(
                    "{status}; the last reload was not applied (see the log)"
                ));
                continue;
            }
        }
        notify::ready(&status);
    }
    notify::stopping();
    info!("shutting down");
    manager.shutdown();
    Ok(())
}

//! The daemon: wires the UDP sockets, the responder, the SA database and the TUN workers,
//! and owns the gateway's OS state (TUN device, routes, forwarding, nftables).
//!
//! Threads: one control-plane thread owns the [`Responder`] (all IKE goes through its
//! [`inbox`] — a bounded queue of `limits.ike_queue` datagrams, full means dropped and
//! counted — so the responder needs no lock); one thread reads UDP 500; one data-plane worker
//! per core owns a TUN queue and a reuse-port UDP 4500 socket; one thread answers `status` on
//! a Unix socket. The main thread waits for SIGINT/SIGTERM, then shuts everything down: DELETE
//! to every peer, SAs cleared, routes and nftables rules removed, the TUN device closed.
//!
//! No thread may die alone ([`supervise`]): a panic anywhere, or a thread that ends while its
//! stack is not stopping (a worker whose TUN device was deleted), ends the process with status
//! [`EXIT_THREAD_DIED`] and one log line, for a supervisor to restart it.
//!
//! All of that per server is one [`Stack`] ([`Stack::start`] / [`Stack::stop`]). Without
//! `[api]`, `run` starts the stack of `[ipsec_server]` and stops it on a signal. With `[api]`,
//! `run` serves the control API ([`crate::api`]) on threads of its own and a `StackManager`
//! applies the API's changes: start the stack on Create, reconfigure the running responder on
//! Update (`ControlMsg::Reconfigure`; a new pool or TUN MTU restarts the stack instead), stop
//! it on Delete.

mod client;
mod control;
mod inbox;
mod supervise;
mod worker;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::ike::{Action, Responder, ResponderConfig};
use crate::io;
use crate::io::udp::{RecvBatch, SendBatch};
use crate::ipsec::Sad;
use crate::wire::NON_ESP_MARKER;

pub use client::{run_client, ClientArgs};
pub use control::{query_status, socket_path};
pub use supervise::{install_panic_hook, EXIT_THREAD_DIED};

use inbox::{Datagram, DropReport, Inbox, Postbox, Received};

/// Control messages to the control-plane thread (IKE datagrams go through the bounded queue
/// of its [`Inbox`] instead). Never dropped.
#[derive(Debug)]
pub(crate) enum ControlMsg {
    Status(Sender<String>),
    /// Clients with an established IKE SA (ListIpsecServers' OnlineClientCount).
    OnlineClients(Sender<usize>),
    /// New settings for new IKE SAs (UpdateIpsecServer); `delete_all`: EffectImmediately,
    /// existing IKE SAs are deleted so clients renegotiate with the new settings.
    Reconfigure {
        config: Arc<ResponderConfig>,
        delete_all: bool,
    },
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("no IPsec server to serve (no [ipsec_server] and no [api])")]
    NoServer,
    #[error("{what}: {source}")]
    Os {
        what: String,
        source: std::io::Error,
    },
}

fn os(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Os { what, source }
}

/// UDP socket buffers: large, so bursts are not dropped (BENCH-ANCHORS.md).
const SOCKET_BUFFER: usize = 8 << 20;

/// Runs the gateway until SIGINT or SIGTERM. Without `[api]` it serves `[ipsec_server]`;
/// with `[api]` it serves the control API and whatever server the API's state (or, before
/// the API's first change, `[ipsec_server]`) defines — possibly none (a bare gateway).
pub fn run(config: Config, path: &std::path::Path) -> Result<(), DaemonError> {
    let mut signals = Signals::new()?;
    let Some(api_cfg) = config.api().cloned() else {
        return run_from_file(config, path, &mut signals);
    };
    let manager = Arc::new(StackManager::new(config.clone()));
    let backend: Arc<dyn crate::api::Backend> = manager.clone();
    let api = crate::api::Api::open(&config, backend).map_err(|e| DaemonError::Os {
        what: format!("control API state: {e}"),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })?;
    let listener = std::net::TcpListener::bind(api_cfg.listen()).map_err(os(format!(
        "binding the control API on {}",
        api_cfg.listen()
    )))?;
    info!(listen = %api_cfg.listen(), "control API listening");
    let stop = Arc::new(AtomicBool::new(false));
    let handler: crate::api::http::Handler = {
        let api = api.clone();
        Arc::new(move |req, peer| api.handle(req, peer))
    };
    let http = {
        let stop2 = stop.clone();
        spawn("api-http".into(), &stop, move || {
            crate::api::http::serve(listener, stop2, handler);
            Ok(())
        })?
    };
    if let Err(e) = api.start() {
        warn!("{e}; serving the API only");
    }
    while signals.wait() == Signal::Reload {
        info!("SIGHUP ignored: with [api] the server is changed through the API");
    }
    info!("shutting down");
    stop.store(true, Ordering::Relaxed);
    let _ = http.join();
    manager.shutdown();
    Ok(())
}

/// Serves the file's `[ipsec_server]`; SIGHUP reads the file again and applies it like an
/// UpdateIpsecServer: `effect_immediately = true` deletes every IKE SA so clients reconnect
/// with the new settings, `false` keeps them until they rekey or reconnect. A file that no
/// longer validates is logged and ignored.
fn run_from_file(
    config: Config,
    path: &std::path::Path,
    signals: &mut Signals,
) -> Result<(), DaemonError> {
    let manager = StackManager::new(config.clone());
    crate::api::Backend::apply(&manager, config.ipsec_server(), false).map_err(|e| {
        DaemonError::Os {
            what: e,
            source: std::io::Error::from(std::io::ErrorKind::Other),
        }
    })?;
    while signals.wait() == Signal::Reload {
        match crate::config::load(path, &mut rand::thread_rng()) {
            Ok(new) => {
                let effect = new.ipsec_server().is_some_and(|s| s.effect_immediately());
                info!(
                    effect_immediately = effect,
                    "SIGHUP: applying {}",
                    path.display()
                );
                if let Err(e) = crate::api::Backend::apply(&manager, new.ipsec_server(), effect) {
                    warn!("applying the reloaded configuration failed: {e}");
                }
            }
            Err(e) => warn!(
                "SIGHUP: {} not applied: {}: {}",
                path.display(),
                e.code,
                e.message
            ),
        }
    }
    info!("shutting down");
    manager.shutdown();
    Ok(())
}

/// The serving stack as the API's [`crate::api::Backend`]: starts, reconfigures and stops
/// one [`Stack`].
struct StackManager {
    base: Config,
    stack: std::sync::Mutex<ManagerState>,
}

#[derive(Default)]
struct ManagerState {
    running: Option<(Stack, Arc<ResponderConfig>)>,
    shut_down: bool,
}

impl StackManager {
    fn new(base: Config) -> Self {
        Self {
            base,
            stack: std::sync::Mutex::new(ManagerState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManagerState> {
        self.stack.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the stack for good (daemon shutdown); later applies do nothing.
    fn shutdown(&self) {
        let mut st = self.lock();
        st.shut_down = true;
        if let Some((stack, _)) = st.running.take() {
            stack.stop();
        }
    }
}

impl crate::api::Backend for StackManager {
    fn apply(
        &self,
        server: Option<&crate::config::IpsecServerConfig>,
        effect_immediately: bool,
    ) -> Result<(), String> {
        let mut st = self.lock();
        if st.shut_down {
            return Ok(());
        }
        let Some(server) = server else {
            if let Some((stack, _)) = st.running.take() {
                stack.stop();
            }
            return Ok(());
        };
        let config = self.base.with_ipsec_server(Some(server.clone()));
        let rcfg = Arc::new(
            ResponderConfig::from_config(&config)
                .ok_or("the server's algorithms have no transform")?,
        );
        if let Some((stack, old)) = &mut st.running {
            // Same pool and TUN MTU: the stack stays; new IKE SAs use the new settings.
            if old.pool == rcfg.pool && tun_mtu(old) == tun_mtu(&rcfg) {
                stack
                    .postbox
                    .control(ControlMsg::Reconfigure {
                        config: rcfg.clone(),
                        delete_all: effect_immediately,
                    })
                    .map_err(|_| "the IKE thread has ended".to_string())?;
                *old = rcfg;
                return Ok(());
            }
        }
        // Pool or TUN-level change (or nothing running): restart the stack.
        if let Some((stack, _)) = st.running.take() {
            stack.stop();
        }
        let stack = Stack::start(&config).map_err(|e| e.to_string())?;
        st.running = Some((stack, rcfg));
        Ok(())
    }

    fn online_clients(&self) -> usize {
        let st = self.lock();
        let Some((stack, _)) = &st.running else {
            return 0;
        };
        let (tx, rx) = mpsc::channel();
        if stack
            .postbox
            .control(ControlMsg::OnlineClients(tx))
            .is_err()
        {
            return 0;
        }
        rx.recv_timeout(Duration::from_secs(2)).unwrap_or(0)
    }
}

/// The serving stack of one IPsec server: TUN device, routes and nftables rules, UDP
/// sockets, data-plane workers, the IKE thread and the status socket. Started by
/// [`Stack::start`], torn down (DELETE to every peer first) by [`Stack::stop`].
pub struct Stack {
    postbox: Postbox,
    ctl_thread: Option<JoinHandle<()>>,
    threads: Vec<JoinHandle<()>>,
    /// Set when the stack stops: its threads end, and their ends are expected.
    stop: Arc<AtomicBool>,
    sad: Arc<Sad>,
    sock_path: PathBuf,
    os_state: OsState,
}

impl Stack {
    /// Brings up the stack for `config`'s `[ipsec_server]`.
    pub fn start(config: &Config) -> Result<Stack, DaemonError> {
        let rcfg = Arc::new(ResponderConfig::from_config(config).ok_or(DaemonError::NoServer)?);
        let gw = config.gateway();
        let workers = match gw.workers() {
            Some(n) => n.get() as usize,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };
        let mtu = tun_mtu(&rcfg);
        let queues = io::tun::create_offload(gw.tun_name(), mtu, workers)
            .map_err(os(format!("creating TUN {}", gw.tun_name())))?;
        info!(tun = %gw.tun_name(), mtu, workers, "TUN device up");
        let mut os_state = OsState::default();
        if let Err(e) = os_state.setup(config, &rcfg) {
            os_state.teardown();
            return Err(e);
        }
        match serve(config, rcfg, queues, workers, os_state) {
            Ok(stack) => Ok(stack),
            Err(failed) => {
                let (e, mut os_state) = *failed;
                os_state.teardown();
                Err(e)
            }
        }
    }

    /// DELETE to every peer, then threads joined, SAs cleared, OS state undone.
    pub fn stop(mut self) {
        // First: from here on the threads' ends are expected (the watchdog stays quiet). The
        // data plane stops; the IKE thread still sends its DELETEs on sockets of its own.
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.postbox.control(ControlMsg::Shutdown);
        if let Some(t) = self.ctl_thread.take() {
            let _ = t.join();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.sock_path);
        self.sad.clear();
        self.os_state.teardown();
        info!("IPsec server stopped");
    }
}

/// The TUN MTU so that a full inner packet still fits a 1500-byte path after ESP-in-UDP:
/// IPv4(20) + UDP(8) + ESP header(8) + IV + pad to block incl. 2 trailer bytes + ICV.
pub fn tun_mtu(cfg: &ResponderConfig) -> u16 {
    let iv = cfg.esp.encr.iv_len();
    let block = cfg.esp.encr.block_len();
    let icv = cfg.esp.integ.icv_len();
    let room = 1500 - 20 - 8 - 8 - iv - icv;
    let padded = room / block * block;
    // Lower bound keeps any configured suite usable; the values here are all small.
    (padded - 2).max(576) as u16
}

/// Routes, forwarding and nftables rules, undone on shutdown.
#[derive(Default)]
struct OsState {
    routes: Vec<(ipnet::Ipv4Net, String)>,
    previous_forward: Option<bool>,
    masquerade: Option<io::net::Masquerade>,
    clamp: Option<io::net::MssClamp>,
}

impl OsState {
    fn setup(&mut self, config: &Config, rcfg: &ResponderConfig) -> Result<(), DaemonError> {
        let gw = config.gateway();
        io::net::add_route(rcfg.pool, gw.tun_name())
            .map_err(os("routing the client pool into the TUN"))?;
        self.routes.push((rcfg.pool, gw.tun_name().to_string()));
        if gw.ip_forward() {
            self.previous_forward =
                Some(io::net::set_ip_forward(true).map_err(os("enabling IPv4 forwarding"))?);
        }
        self.clamp =
            Some(io::net::clamp_mss(gw.tun_name(), gw.tun_name()).map_err(os("TCP MSS clamping"))?);
        if gw.masquerade() {
            self.masquerade = Some(
                io::net::masquerade(gw.tun_name(), rcfg.pool, gw.tun_name())
                    .map_err(os("masquerade"))?,
            );
        }
        Ok(())
    }

    fn teardown(&mut self) {
        self.masquerade = None;
        self.clamp = None;
        for (net, dev) in self.routes.drain(..) {
            if let Err(e) = io::net::del_route(net, &dev) {
                debug!("removing route {net}: {e}");
            }
        }
        if self.previous_forward == Some(false) {
            if let Err(e) = io::net::set_ip_forward(false) {
                warn!("restoring ip_forward: {e}");
            }
        }
    }
}

/// Starts the threads of a stack; on failure the threads started so far are stopped and
/// the OS state is handed back for teardown.
fn serve(
    config: &Config,
    rcfg: Arc<ResponderConfig>,
    queues: Vec<io::tun::TunQueue>,
    workers: usize,
    os_state: OsState,
) -> Result<Stack, Box<(DaemonError, OsState)>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    match serve_inner(config, rcfg, queues, workers, &stop, &mut threads) {
        Ok((postbox, ctl_thread, sad, sock_path)) => Ok(Stack {
            postbox,
            ctl_thread: Some(ctl_thread),
            threads,
            stop,
            sad,
            sock_path,
            os_state,
        }),
        Err(e) => {
            stop.store(true, Ordering::SeqCst);
            for t in threads {
                let _ = t.join();
            }
            Err(Box::new((e, os_state)))
        }
    }
}

type Started = (Postbox, JoinHandle<()>, Arc<Sad>, PathBuf);

fn serve_inner(
    config: &Config,
    rcfg: Arc<ResponderConfig>,
    queues: Vec<io::tun::TunQueue>,
    workers: usize,
    stop: &Arc<AtomicBool>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<Started, DaemonError> {
    let gw = config.gateway();
    let sad = Arc::new(Sad::new());
    let (postbox, inbox) = inbox::with_capacity(config.limits().ike_queue().get() as usize);

    let mut ike_sockets = Vec::new();
    let mut natt_for_ike = None;
    for addr in gw.listen_addrs() {
        let s500 = io::udp::bind(SocketAddr::new(*addr, gw.ike_port().get()), false, 1 << 20)
            .map_err(os(format!("binding UDP {addr}:{}", gw.ike_port().get())))?;
        ike_sockets.push(s500);
    }
    // The workers serve UDP 4500 on the first listen address (normally the wildcard); config
    // validation rejects an empty `listen_addrs` (InvalidConfig.ListenAddrs), so [0] exists.
    let natt_addr = SocketAddr::new(gw.listen_addrs()[0], gw.nat_t_port().get());
    for (id, tun) in queues.into_iter().enumerate().take(workers) {
        let udp = io::udp::bind(natt_addr, true, SOCKET_BUFFER)
            .map_err(os(format!("binding UDP {natt_addr}")))?;
        if natt_for_ike.is_none() {
            natt_for_ike = Some(udp.try_clone().map_err(os("cloning the UDP 4500 socket"))?);
        }
        let w = worker::Worker {
            id,
            tun,
            udp,
            sad: sad.clone(),
            ike: postbox.clone(),
            stop: stop.clone(),
            nat_t_port: gw.nat_t_port().get(),
        };
        threads.push(spawn(format!("dp-{id}"), stop, move || w.run())?);
    }
    let natt = natt_for_ike.ok_or_else(|| DaemonError::Os {
        what: "no listen address".into(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    info!(
        ike_port = gw.ike_port().get(),
        nat_t_port = gw.nat_t_port().get(),
        "listening"
    );

    for (i, s500) in ike_sockets.iter().enumerate() {
        let s = s500.try_clone().map_err(os("cloning the UDP 500 socket"))?;
        let post = postbox.clone();
        let stop2 = stop.clone();
        let port = gw.ike_port().get();
        threads.push(spawn(format!("ike-rx-{i}"), stop, move || {
            receive_ike(s, port, post, stop2)
        })?);
    }

    let sock_path = socket_path(gw.state_dir());
    let control_listener = control::listen(&sock_path)
        .map_err(os(format!("control socket {}", sock_path.display())))?;
    {
        let post = postbox.clone();
        let stop2 = stop.clone();
        threads.push(spawn("control".into(), stop, move || {
            control::serve(control_listener, post, stop2)
        })?);
    }

    let plane = ControlPlane {
        responder: Responder::new(rcfg),
        sad: sad.clone(),
        s500: ike_sockets.into_iter().next(),
        s4500: natt,
        ike_port: gw.ike_port().get(),
        nat_t_port: gw.nat_t_port().get(),
        send: SendBatch::new(4, 65536),
        drops: DropReport::new(DROP_REPORT_PERIOD),
    };
    let ctl_thread = spawn("ike".into(), stop, move || plane.run(inbox))?;
    Ok((postbox, ctl_thread, sad, sock_path))
}

/// Starts a supervised thread ([`supervise::spawn`]): it runs until `stop` is set; an error,
/// or an end before that, ends the process.
fn spawn(
    name: String,
    stop: &Arc<AtomicBool>,
    body: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<JoinHandle<()>, DaemonError> {
    supervise::spawn(name.clone(), stop.clone(), body)
        .map_err(os(format!("spawning thread {name}")))
}

/// At most one log line per this period about IKE datagrams dropped at a full queue.
const DROP_REPORT_PERIOD: Duration = Duration::from_secs(10);

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGINT, SIGTERM.
    Stop,
    /// SIGHUP: read the config file again.
    Reload,
}

/// Blocks until SIGINT, SIGTERM or SIGHUP. Handlers are installed once, before the first
/// wait, so a signal between two waits is not lost.
struct Signals {
    rt: tokio::runtime::Runtime,
    streams: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Signals {
    fn new() -> Result<Self, DaemonError> {
        use tokio::signal::unix::{signal, SignalKind};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(os("the signal runtime"))?;
        let streams = rt.block_on(async {
            Ok::<_, std::io::Error>([
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
                signal(SignalKind::hangup())?,
            ])
        });
        let streams = match streams {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("cannot install signal handlers ({e}); running until killed");
                None
            }
        };
        Ok(Self { rt, streams })
    }

    fn wait(&mut self) -> Signal {
        loop {
            if let Some(s) = self.wait_timeout(Duration::from_secs(3600)) {
                return s;
            }
        }
    }

    /// The next signal, or `None` after `timeout` without one.
    fn wait_timeout(&mut self, timeout: Duration) -> Option<Signal> {
        let Some([term, int, hup]) = &mut self.streams else {
            std::thread::sleep(timeout);
            return None;
        };
        self.rt.block_on(async {
            tokio::select! {
                _ = term.recv() => Some(Signal::Stop),
                _ = int.recv() => Some(Signal::Stop),
                _ = hup.recv() => Some(Signal::Reload),
                _ = tokio::time::sleep(timeout) => None,
            }
        })
    }
}

/// UDP 500: every datagram is IKE, queued for the IKE thread (dropped when its queue is
/// full). Runs until `stop`; a failing poll (the socket is gone) is an error.
fn receive_ike(
    sock: UdpSocket,
    port: u16,
    ike: Postbox,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let mut rx = RecvBatch::new(16, 65536);
    let mut poller = io::poll::Poller::new(&[sock.as_raw_fd()]);
    while !stop.load(Ordering::Relaxed) {
        if poller
            .wait(Duration::from_millis(200))
            .map_err(|e| format!("UDP {port}: {e}"))?
            == 0
        {
            continue;
        }
        let n = rx.recv(&sock).unwrap_or(0);
        for i in 0..n {
            let (meta, data) = rx.get(i);
            let local = SocketAddr::new(meta.dst_ip.unwrap_or(IpAddr::from([0, 0, 0, 0])), port);
            let posted = ike.datagram(Datagram {
                bytes: data.to_vec(),
                local,
                remote: meta.src,
            });
            if posted.is_err() {
                // The IKE thread ends first when the stack stops.
                return if stop.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err("the IKE thread has ended".into())
                };
            }
        }
    }
    Ok(())
}

/// The control-plane thread: the responder and the effects of its actions.
struct ControlPlane {
    responder: Responder,
    sad: Arc<Sad>,
    s500: Option<UdpSocket>,
    s4500: UdpSocket,
    ike_port: u16,
    nat_t_port: u16,
    send: SendBatch,
    drops: DropReport,
}

impl ControlPlane {
    /// Until `Shutdown` (or until every [`Postbox`] is gone): IKE datagrams through the
    /// responder, control messages, and once a second the responder's timers.
    fn run(mut self, inbox: Inbox) -> Result<(), String> {
        let mut rng = StdRng::from_entropy();
        let mut next_tick = Instant::now() + Duration::from_secs(1);
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match inbox.recv(wait) {
                Received::Datagram(Datagram {
                    bytes,
                    local,
                    remote,
                }) => {
                    let actions =
                        self.responder
                            .handle(Instant::now(), &mut rng, &bytes, local, remote);
                    self.apply(actions);
                }
                Received::Control(ControlMsg::Status(reply)) => {
                    let queue = control::QueueStatus {
                        capacity: inbox.capacity(),
                        dropped: inbox.dropped(),
                    };
                    let _ = reply.send(control::render_status(&self.responder, &self.sad, queue));
                }
                Received::Control(ControlMsg::OnlineClients(reply)) => {
                    let _ = reply.send(self.responder.online_clients());
                }
                Received::Control(ControlMsg::Reconfigure { config, delete_all }) => {
                    // Existing IKE SAs keep what they negotiated; new ones use `config`.
                    self.responder.cfg = config;
                    if delete_all {
                        let actions = self.responder.delete_all(&mut rng);
                        self.apply(actions);
                    }
                    info!(delete_all, "responder reconfigured");
                }
                Received::Control(ControlMsg::Shutdown) | Received::Closed => {
                    let actions = self.responder.delete_all(&mut rng);
                    self.apply(actions);
                    return Ok(());
                }
                Received::Timeout => {}
            }
            if Instant::now() >= next_tick {
                if let Some(n) = self.drops.due(Instant::now(), inbox.dropped()) {
                    warn!(
                        "IKE queue full: {n} IKE datagrams dropped since the last report \
                         (total {}); the IKE thread cannot keep up (limits.ike_queue = {})",
                        inbox.dropped(),
                        inbox.capacity()
                    );
                }
                let snapshot = self.sad.snapshot();
                self.responder.refresh_activity(Instant::now(), &|spi| {
                    snapshot
                        .inbound(spi)
                        .map(|sa| sa.counters.read().0)
                        .unwrap_or(0)
                });
                let actions = self.responder.tick(Instant::now(), &mut rng);
                self.apply(actions);
                next_tick = Instant::now() + Duration::from_secs(1);
            }
        }
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send {
                    local,
                    remote,
                    bytes,
                } => self.send_ike(local, remote, &bytes),
                Action::InstallChild(spec) => {
                    if let Err(e) = self.sad.install(&spec) {
                        warn!(vip = %spec.client_vip, "installing Child SA failed: {e}");
                    }
                }
                Action::DeleteChild { inbound_spi } => self.sad.remove(inbound_spi),
                Action::UpdateChildRemote {
                    inbound_spi,
                    remote,
                } => self.sad.set_remote(inbound_spi, remote),
            }
        }
    }

    fn send_ike(&mut self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let src = Some(local.ip()).filter(|ip| !ip.is_unspecified());
        let sock = if local.port() == self.nat_t_port {
            // RFC 3948 §2.2: IKE on the NAT-T port carries the non-ESP marker.
            let mut framed = Vec::with_capacity(bytes.len() + 4);
            framed.extend_from_slice(&NON_ESP_MARKER);
            framed.extend_from_slice(bytes);
            self.send.push(&framed, remote, src);
            &self.s4500
        } else {
            debug_assert_eq!(local.port(), self.ike_port);
            self.send.push(bytes, remote, src);
            match &self.s500 {
                Some(s) => s,
                None => return,
            }
        };
        if let Err(e) = self.send.flush(sock) {
            debug!(%remote, "sending IKE: {e}");
        }
    }
}

/// Where `status` finds the daemon.
pub fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/ipsec-server")
}

//! The daemon: wires the UDP sockets, the responder, the SA database and the TUN workers,
//! and owns the gateway's OS state (TUN device, routes, forwarding, nftables).
//!
//! Threads: one control-plane thread owns the [`Responder`] (all IKE goes through a channel
//! to it, so the responder needs no lock); one thread reads UDP 500; one data-plane worker per
//! core owns a TUN queue and a reuse-port UDP 4500 socket; one thread answers `status` on a
//! Unix socket. The main thread waits for SIGINT/SIGTERM, then shuts everything down: DELETE
//! to every peer, SAs cleared, routes and nftables rules removed, the TUN device closed.

mod client;
mod control;
mod worker;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
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

/// Messages to the control-plane thread.
pub(crate) enum ControlMsg {
    Ike {
        bytes: Vec<u8>,
        local: SocketAddr,
        remote: SocketAddr,
    },
    Status(Sender<String>),
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("no [ipsec_server] configured (the control API is not available yet)")]
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

/// Runs the gateway until SIGINT or SIGTERM.
pub fn run(config: Config) -> Result<(), DaemonError> {
    let rcfg = Arc::new(ResponderConfig::from_config(&config).ok_or(DaemonError::NoServer)?);
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
    let result = (|| {
        os_state.setup(&config, &rcfg)?;
        serve(&config, rcfg.clone(), queues, workers)
    })();
    os_state.teardown();
    result
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

fn serve(
    config: &Config,
    rcfg: Arc<ResponderConfig>,
    queues: Vec<io::tun::TunQueue>,
    workers: usize,
) -> Result<(), DaemonError> {
    let gw = config.gateway();
    let sad = Arc::new(Sad::new());
    let stop = Arc::new(AtomicBool::new(false));
    let (ctl_tx, ctl_rx) = mpsc::channel::<ControlMsg>();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();

    let mut ike_sockets = Vec::new();
    let mut natt_for_ike = None;
    for addr in gw.listen_addrs() {
        let s500 = io::udp::bind(SocketAddr::new(*addr, gw.ike_port().get()), false, 1 << 20)
            .map_err(os(format!("binding UDP {addr}:{}", gw.ike_port().get())))?;
        ike_sockets.push(s500);
    }
    // The workers serve UDP 4500 on the first listen address (normally the wildcard).
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
            control: ctl_tx.clone(),
            stop: stop.clone(),
            nat_t_port: gw.nat_t_port().get(),
        };
        threads.push(spawn(format!("dp-{id}"), move || w.run())?);
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
        let tx = ctl_tx.clone();
        let stop = stop.clone();
        let port = gw.ike_port().get();
        threads.push(spawn(format!("ike-rx-{i}"), move || {
            receive_ike(s, port, tx, stop)
        })?);
    }

    let sock_path = socket_path(gw.state_dir());
    let control_listener = control::listen(&sock_path)
        .map_err(os(format!("control socket {}", sock_path.display())))?;
    {
        let tx = ctl_tx.clone();
        let stop = stop.clone();
        threads.push(spawn("control".into(), move || {
            control::serve(control_listener, tx, stop)
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
    };
    let ctl_thread = spawn("ike".into(), move || plane.run(ctl_rx))?;

    wait_for_signal();
    info!("shutting down");
    let _ = ctl_tx.send(ControlMsg::Shutdown);
    let _ = ctl_thread.join();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let _ = std::fs::remove_file(&sock_path);
    sad.clear();
    Ok(())
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, DaemonError> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .map_err(os(format!("spawning thread {name}")))
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_signal() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            warn!("no signal handling ({e}); running until killed");
            loop {
                std::thread::park();
            }
        }
    };
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            warn!("cannot install signal handlers; running until killed");
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    });
}

/// UDP 500: every datagram is IKE.
fn receive_ike(sock: UdpSocket, port: u16, tx: Sender<ControlMsg>, stop: Arc<AtomicBool>) {
    use std::os::fd::AsRawFd;
    let mut rx = RecvBatch::new(16, 65536);
    let fd = sock.as_raw_fd();
    while !stop.load(Ordering::Relaxed) {
        match io::poll::wait_readable(&[fd], Duration::from_millis(200)) {
            Ok(r) if r.first().copied().unwrap_or(false) => {}
            Ok(_) => continue,
            Err(_) => continue,
        }
        let n = rx.recv(&sock).unwrap_or(0);
        for i in 0..n {
            let (meta, data) = rx.get(i);
            let local = SocketAddr::new(meta.dst_ip.unwrap_or(IpAddr::from([0, 0, 0, 0])), port);
            if tx
                .send(ControlMsg::Ike {
                    bytes: data.to_vec(),
                    local,
                    remote: meta.src,
                })
                .is_err()
            {
                return;
            }
        }
    }
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
}

impl ControlPlane {
    fn run(mut self, rx: Receiver<ControlMsg>) {
        let mut rng = StdRng::from_entropy();
        let mut next_tick = Instant::now() + Duration::from_secs(1);
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(ControlMsg::Ike {
                    bytes,
                    local,
                    remote,
                }) => {
                    let actions =
                        self.responder
                            .handle(Instant::now(), &mut rng, &bytes, local, remote);
                    self.apply(actions);
                }
                Ok(ControlMsg::Status(reply)) => {
                    let _ = reply.send(control::render_status(&self.responder, &self.sad));
                }
                Ok(ControlMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    let actions = self.responder.delete_all(&mut rng);
                    self.apply(actions);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= next_tick {
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

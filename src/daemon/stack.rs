//! The serving stack of one IPsec server, started and stopped as a whole: the TUN device with
//! one queue per data-plane worker, the host's routes and nftables rules ([`OsState`]), the
//! UDP sockets (ports 500 and 4500 on every listen address), the workers, the UDP 500
//! receivers and the IKE thread ([`ControlPlane`]). (The control socket outlives stacks:
//! `control.rs`.) Every thread is
//! supervised ([`supervise::spawn`]): it runs until the stack's `stop` flag is set, and one
//! that ends before that ends the process.
//!
//! A start that fails half-way undoes what it did (threads stopped, OS state torn down);
//! [`Stack::stop`] sends DELETE to every peer first, then undoes everything.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tracing::info;

use super::control_plane::{
    receive_ike, ControlMsg, ControlPlane, EspDropSummary, DROP_REPORT_PERIOD,
};
use super::inbox::{self, DropReport, Postbox};
use super::os_state::OsState;
use super::sockets::BoundSockets;
use super::{responder_config, supervise, tun_mtu, worker, DaemonError};
use crate::config::Config;
use crate::ike::{Responder, ResponderConfig};
use crate::io;
use crate::io::udp::SendBatch;
use crate::ipsec::Sad;

/// UDP socket buffers: large, so bursts are not dropped (docs/BENCH-ANCHORS.md).
pub(crate) const SOCKET_BUFFER: usize = 8 << 20;

/// The serving stack of one IPsec server: TUN device, routes and nftables rules, UDP
/// sockets, data-plane workers and the IKE thread. Started by
/// [`Stack::start`], torn down (DELETE to every peer first) by [`Stack::stop`].
pub struct Stack {
    postbox: Postbox,
    ctl_thread: Option<JoinHandle<()>>,
    threads: Vec<JoinHandle<()>>,
    /// Set when the stack stops: its threads end, and their ends are expected.
    stop: Arc<AtomicBool>,
    sad: Arc<Sad>,
    os_state: OsState,
}

impl Stack {
    /// Brings up the stack for `config`'s `[ipsec_server]`.
    /// `cluster`: the pool is the cluster's, and the IKE thread fences itself by its lease.
    pub(crate) fn start(
        config: &Config,
        cluster: Option<&super::cluster::Cluster>,
    ) -> Result<Stack, DaemonError> {
        let rcfg = Arc::new(responder_config(config).ok_or(DaemonError::NoServer)?);
        let gw = config.gateway();
        let workers = match gw.workers() {
            Some(n) => n.get() as usize,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };
        let mtu = tun_mtu(&rcfg.esp);
        let queues = io::tun::create_offload(gw.tun_name(), mtu, workers)
            .map_err(DaemonError::tun(gw.tun_name()))?;
        info!(tun = %gw.tun_name(), mtu, workers, "TUN device up");
        let mut os_state = OsState::default();
        if let Err(e) = os_state.setup(config, &rcfg) {
            os_state.teardown();
            return Err(e);
        }
        match serve(config, rcfg.clone(), queues, workers, os_state, cluster) {
            Ok(stack) => {
                log_started(config, &rcfg);
                Ok(stack)
            }
            Err(failed) => {
                let (e, mut os_state) = *failed;
                os_state.teardown();
                Err(e)
            }
        }
    }

    /// The IKE thread's postbox: control messages for the running responder.
    pub(crate) fn postbox(&self) -> &Postbox {
        &self.postbox
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
        self.sad.clear();
        self.os_state.teardown();
        info!("IPsec server stopped");
    }
}

/// The one line that says what the stack serves: the server's name, pool, local subnets,
/// suites in strongSwan's notation, lifetimes, listen addresses and where the PSK comes from
/// (never the PSK).
fn log_started(config: &Config, rcfg: &ResponderConfig) {
    let Some(server) = config.ipsec_server() else {
        return;
    };
    let gw = config.gateway();
    let psk: String = match server.psk_file() {
        Some(path) => format!("psk_file {}", path.display()),
        None if server.psk_generated() => format!(
            "generated (no psk or psk_file set), kept in {} (ipsec-server show-psk)",
            super::kept_psk::path(gw.state_dir()).display()
        ),
        None if config.api().is_some() => "the API (or the config file's psk)".into(),
        None => "the config file's psk".into(),
    };
    let lifetime = |d: std::time::Duration| match d.as_secs() {
        0 => "unlimited".to_string(),
        s => format!("{s}s"),
    };
    let listen: Vec<String> = gw
        .listen_addrs()
        .iter()
        .map(|a| format!("{a}:{},{}", gw.ike_port(), gw.nat_t_port()))
        .collect();
    let subnets: Vec<String> = rcfg.local_subnets.iter().map(|n| n.to_string()).collect();
    info!(
        name = server.name().unwrap_or("(unnamed)"),
        pool = %rcfg.pool,
        local_subnets = %subnets.join(","),
        ike = %rcfg.ike.notation(),
        esp = %rcfg.esp.notation(rcfg.esp_pfs),
        ike_lifetime = %lifetime(rcfg.ike_lifetime),
        ipsec_lifetime = %lifetime(rcfg.ipsec_lifetime),
        listen = %listen.join(" "),
        psk_from = %psk,
        "IPsec server up"
    );
}

/// Starts the threads of a stack; on failure the threads started so far are stopped and
/// the OS state is handed back for teardown.
fn serve(
    config: &Config,
    rcfg: Arc<ResponderConfig>,
    queues: Vec<io::tun::TunQueue>,
    workers: usize,
    os_state: OsState,
    cluster: Option<&super::cluster::Cluster>,
) -> Result<Stack, Box<(DaemonError, OsState)>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    match serve_inner(config, rcfg, queues, workers, &stop, &mut threads, cluster) {
        Ok((postbox, ctl_thread, sad)) => Ok(Stack {
            postbox,
            ctl_thread: Some(ctl_thread),
            threads,
            stop,
            sad,
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

type Started = (Postbox, JoinHandle<()>, Arc<Sad>);

fn serve_inner(
    config: &Config,
    rcfg: Arc<ResponderConfig>,
    queues: Vec<io::tun::TunQueue>,
    workers: usize,
    stop: &Arc<AtomicBool>,
    threads: &mut Vec<JoinHandle<()>>,
    cluster: Option<&super::cluster::Cluster>,
) -> Result<Started, DaemonError> {
    let gw = config.gateway();
    let sad = Arc::new(Sad::new());
    let (postbox, inbox) = inbox::with_capacity(config.limits().ike_queue().get() as usize);

    // Every listen address is a full gateway: UDP 500 (one receiver thread each) and UDP
    // 4500 (one reuse-port socket per worker each) on every one of them; replies leave
    // through the socket of the address their request came to (`sockets.rs`).
    let (ike_port, nat_t_port) = (gw.ike_port().get(), gw.nat_t_port().get());
    let mut ike_sockets = Vec::new();
    for addr in gw.listen_addrs() {
        let s500 = io::udp::bind(SocketAddr::new(*addr, ike_port), false, 1 << 20)
            .map_err(DaemonError::bind(format!("UDP {addr}:{ike_port}")))?;
        ike_sockets.push((*addr, s500));
    }
    let ike_sockets = BoundSockets::new(ike_sockets);
    let mut natt_for_ike = None;
    for (id, tun) in queues.into_iter().enumerate().take(workers) {
        let mut udp = Vec::new();
        for addr in gw.listen_addrs() {
            let natt_addr = SocketAddr::new(*addr, nat_t_port);
            let s = io::udp::bind(natt_addr, true, SOCKET_BUFFER)
                .map_err(DaemonError::bind(format!("UDP {natt_addr}")))?;
            udp.push((*addr, s));
        }
        let udp = BoundSockets::new(udp);
        if natt_for_ike.is_none() {
            natt_for_ike = Some(
                udp.try_clone()
                    .map_err(DaemonError::socket("cloning the UDP 4500 sockets"))?,
            );
        }
        let w = worker::Worker {
            id,
            tun,
            udp,
            sad: sad.clone(),
            ike: postbox.clone(),
            stop: stop.clone(),
            nat_t_port,
        };
        threads.push(supervise::spawn(format!("dp-{id}"), stop, move || w.run())?);
    }
    let natt = natt_for_ike.ok_or(DaemonError::NoUdp4500Socket)?;
    info!(
        addrs = ?gw.listen_addrs(),
        ike_port,
        nat_t_port,
        "listening"
    );

    for (i, (addr, s500)) in ike_sockets.iter().enumerate() {
        let s = s500
            .try_clone()
            .map_err(DaemonError::socket("cloning the UDP 500 socket"))?;
        let post = postbox.clone();
        let stop2 = stop.clone();
        let bound = SocketAddr::new(*addr, ike_port);
        threads.push(supervise::spawn(format!("ike-rx-{i}"), stop, move || {
            receive_ike(s, bound, post, stop2)
        })?);
    }

    let mut responder = Responder::new(rcfg.clone());
    if let Some(c) = cluster {
        responder.share_pool(c.leases(rcfg.pool));
    }
    let plane = ControlPlane {
        responder,
        fence: cluster.map(|c| c.fence()),
        sad: sad.clone(),
        s500: ike_sockets,
        s4500: natt,
        nat_t_port,
        send: SendBatch::new(4, 65536),
        drops: DropReport::new(DROP_REPORT_PERIOD),
        esp_drops: EspDropSummary::new(),
        first_seq: super::control_plane::first_seq_from_env(),
    };
    let ctl_thread = supervise::spawn("ike".into(), stop, move || plane.run(inbox))?;
    Ok((postbox, ctl_thread, sad))
}

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

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::info;

use super::control_plane::{
    receive_ike, Captured, ControlMsg, ControlPlane, EspDropSummary, DROP_REPORT_PERIOD,
};
use super::handover::StackState;
use super::inbox::{self, DropReport, Postbox};
use super::os_state::OsState;
use super::pause::Pause;
use super::sockets::BoundSockets;
use super::{responder_config, supervise, tun_mtu, worker, DaemonError};
use crate::config::Config;
use crate::ike::snapshot::ResponderState;
use crate::ike::{Responder, ResponderConfig};
use crate::io;
use crate::io::udp::SendBatch;
use crate::ipsec::handover::SadState;
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
    /// Parks the packet threads (every thread but the IKE thread) for a hand-over.
    pause: Arc<Pause>,
    /// Duplicates of the UDP sockets, in hand-over order ([`Sockets::handover_order`]).
    handover: Vec<UdpSocket>,
    /// What the stack is made of, for the snapshot.
    record: StackState,
    /// A capture's pending verdict for the IKE thread ([`Stack::capture`]).
    verdict: Mutex<Option<Sender<bool>>>,
}

/// The longest a hand-over waits for the packet threads to park (a thread looks at least
/// every `pause::PACKET_WAIT`) and then for the IKE thread's capture.
const PARK_WAIT: Duration = Duration::from_secs(2);
const CAPTURE_WAIT: Duration = Duration::from_secs(5);

/// A stack's UDP sockets: UDP 500 on every listen address; per worker, UDP 4500 (reuse-port)
/// on every listen address.
struct Sockets {
    s500: Vec<(IpAddr, UdpSocket)>,
    s4500: Vec<Vec<(IpAddr, UdpSocket)>>,
}

impl Sockets {
    fn bind(config: &Config, workers: usize) -> Result<Sockets, DaemonError> {
        let gw = config.gateway();
        let (ike_port, nat_t_port) = (gw.ike_port().get(), gw.nat_t_port().get());
        let mut s500 = Vec::new();
        for addr in gw.listen_addrs() {
            let s = io::udp::bind(SocketAddr::new(*addr, ike_port), false, 1 << 20)
                .map_err(DaemonError::bind(format!("UDP {addr}:{ike_port}")))?;
            s500.push((*addr, s));
        }
        let mut s4500 = Vec::new();
        for _ in 0..workers {
            let mut udp = Vec::new();
            for addr in gw.listen_addrs() {
                let natt_addr = SocketAddr::new(*addr, nat_t_port);
                let s = io::udp::bind(natt_addr, true, SOCKET_BUFFER)
                    .map_err(DaemonError::bind(format!("UDP {natt_addr}")))?;
                udp.push((*addr, s));
            }
            s4500.push(udp);
        }
        Ok(Sockets { s500, s4500 })
    }

    /// The sockets a previous process handed over, in [`Sockets::handover_order`]: each
    /// must be bound where this configuration would bind it.
    fn handed(fds: Vec<OwnedFd>, config: &Config, workers: usize) -> Result<Sockets, String> {
        let gw = config.gateway();
        let addrs = gw.listen_addrs();
        let want = addrs.len() * (1 + workers);
        if fds.len() != want {
            return Err(format!(
                "{} UDP sockets handed over, {want} expected ({} listen addresses, {workers} workers)",
                fds.len(),
                addrs.len()
            ));
        }
        let mut fds = fds.into_iter();
        let mut take = |addr: IpAddr, port: u16| -> Result<(IpAddr, UdpSocket), String> {
            let want = SocketAddr::new(addr, port);
            let sock = UdpSocket::from(fds.next().ok_or("too few sockets")?);
            match sock.local_addr() {
                Ok(at) if at == want => Ok((addr, sock)),
                Ok(at) => Err(format!("a handed-over socket is bound to {at}, not {want}")),
                Err(e) => Err(format!("a handed-over descriptor for {want}: {e}")),
            }
        };
        let (ike_port, nat_t_port) = (gw.ike_port().get(), gw.nat_t_port().get());
        let s500 = addrs
            .iter()
            .map(|a| take(*a, ike_port))
            .collect::<Result<_, _>>()?;
        let s4500 = (0..workers)
            .map(|_| addrs.iter().map(|a| take(*a, nat_t_port)).collect())
            .collect::<Result<_, _>>()?;
        Ok(Sockets { s500, s4500 })
    }

    /// Duplicates of every socket: the UDP 500 ones, then each worker's UDP 4500 ones.
    fn handover_order(&self) -> std::io::Result<Vec<UdpSocket>> {
        self.s500
            .iter()
            .chain(self.s4500.iter().flatten())
            .map(|(_, s)| s.try_clone())
            .collect()
    }
}

/// The worker count `config` asks for (default: one per core).
fn worker_count(config: &Config) -> usize {
    match config.gateway().workers() {
        Some(n) => n.get() as usize,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    }
}

/// What a previous process handed over for the stack (`upgrade.rs`).
pub(crate) struct Handed {
    pub udp: Vec<OwnedFd>,
    pub responder: ResponderState,
    pub sad: SadState,
    pub stack: StackState,
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
        let workers = worker_count(config);
        let mtu = tun_mtu(&rcfg.esp);
        let queues = io::tun::create_offload(gw.tun_name(), mtu, workers)
            .map_err(DaemonError::tun(gw.tun_name()))?;
        info!(tun = %gw.tun_name(), mtu, workers, "TUN device up");
        let mut os_state = OsState::default();
        let sockets = os_state
            .setup(config, &rcfg)
            .and_then(|()| Sockets::bind(config, workers));
        let started = match sockets {
            Ok(sockets) => serve(
                config,
                rcfg.clone(),
                queues,
                sockets,
                None,
                os_state,
                cluster,
            ),
            Err(e) => Err(Box::new((e, os_state))),
        };
        match started {
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

    /// The stack a previous process handed over (`upgrade.rs`): its UDP sockets, SAs and
    /// host changes, for `config`'s `[ipsec_server]`. New queues are attached to the running
    /// TUN device; nothing else on the host is created. A stack this configuration would
    /// build differently (TUN name, workers, listen addresses, pool, masquerade) is refused,
    /// and a failure leaves the host as it was: the previous process serves on.
    pub(crate) fn adopt(
        config: &Config,
        cluster: Option<&super::cluster::Cluster>,
        handed: Handed,
    ) -> Result<Stack, DaemonError> {
        let refuse = |why: String| DaemonError::HandOver(why);
        let rcfg = Arc::new(responder_config(config).ok_or(DaemonError::NoServer)?);
        let gw = config.gateway();
        let workers = worker_count(config);
        let os_state = OsState::adopt(config, &rcfg, handed.stack.previous_forward)
            .map_err(|e| refuse(format!("the nftables tables: {e}")))?;
        let want = Stack::describe(config, workers, &os_state);
        let had = &handed.stack;
        if (
            &had.tun_name,
            had.workers,
            &had.listen,
            &had.routes,
            had.masquerade,
            had.clamp,
        ) != (
            &want.tun_name,
            want.workers,
            &want.listen,
            &want.routes,
            want.masquerade,
            want.clamp,
        ) {
            os_state.keep();
            return Err(refuse(format!(
                "the running stack (TUN {}, {} workers, listen {:?}, routes {:?}, masquerade {}) \
                 is not what this configuration builds (TUN {}, {} workers, listen {:?}, \
                 routes {:?}, masquerade {}): restart instead",
                had.tun_name,
                had.workers,
                had.listen,
                had.routes,
                had.masquerade,
                want.tun_name,
                want.workers,
                want.listen,
                want.routes,
                want.masquerade
            )));
        }
        let sockets = match Sockets::handed(handed.udp, config, workers) {
            Ok(s) => s,
            Err(e) => {
                os_state.keep();
                return Err(refuse(e));
            }
        };
        // Attaching queues to the running device: same name, flags, MTU.
        let mtu = tun_mtu(&rcfg.esp);
        let queues = match io::tun::create_offload(gw.tun_name(), mtu, workers) {
            Ok(q) => q,
            Err(e) => {
                os_state.keep();
                return Err(DaemonError::tun(gw.tun_name())(e));
            }
        };
        let restored = Some((handed.responder, handed.sad));
        match serve(config, rcfg, queues, sockets, restored, os_state, cluster) {
            Ok(stack) => Ok(stack),
            Err(failed) => {
                let (e, os_state) = *failed;
                os_state.keep();
                Err(e)
            }
        }
    }

    /// The [`StackState`] of a stack of `config` with `workers` and `os_state`.
    fn describe(config: &Config, workers: usize, os_state: &OsState) -> StackState {
        let gw = config.gateway();
        let (routes, previous_forward, masquerade, clamp) = os_state.record();
        StackState {
            tun_name: gw.tun_name().to_string(),
            workers: workers as u32,
            listen: gw.listen_addrs().to_vec(),
            routes,
            previous_forward,
            masquerade,
            clamp,
        }
    }

    /// What the stack is made of, for a hand-over's snapshot.
    pub(crate) fn record(&self) -> &StackState {
        &self.record
    }

    /// Duplicates of the stack's UDP sockets, in the order a hand-over passes them.
    pub(crate) fn handover_sockets(&self) -> &[UdpSocket] {
        &self.handover
    }

    /// Parks the packet threads and has the IKE thread capture the state for a hand-over;
    /// the stack then handles nothing until [`Stack::resume`] or [`Stack::handed_over`].
    /// On `Err` it serves on.
    pub(crate) fn capture(&self) -> Result<Captured, String> {
        if !self.pause.engage(self.threads.len(), PARK_WAIT) {
            return Err(format!(
                "the packet threads did not stop within {PARK_WAIT:?}; serving on"
            ));
        }
        let (reply, captured) = mpsc::channel();
        let (verdict_tx, verdict) = mpsc::channel();
        let asked = self
            .postbox
            .control(ControlMsg::HandOver { reply, verdict });
        match asked
            .ok()
            .and_then(|()| captured.recv_timeout(CAPTURE_WAIT).ok())
        {
            Some(c) => {
                *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict_tx);
                Ok(c)
            }
            None => {
                self.pause.release();
                Err(format!(
                    "the IKE thread did not capture its state within {CAPTURE_WAIT:?}; serving on"
                ))
            }
        }
    }

    /// After a [`Stack::capture`] whose hand-over failed: serve on.
    pub(crate) fn resume(&self) {
        if let Some(v) = self
            .verdict
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = v.send(false);
        }
        self.pause.release();
    }

    /// After a [`Stack::capture`] whose hand-over succeeded: the threads end without a
    /// DELETE to anyone, and the TUN device's routes and nftables tables stay for the
    /// process that took over.
    pub(crate) fn handed_over(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(v) = self
            .verdict
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = v.send(true);
        }
        if let Some(t) = self.ctl_thread.take() {
            let _ = t.join();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        std::mem::take(&mut self.os_state).keep();
        info!("IPsec server handed over");
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
/// the OS state is handed back for teardown. `restored`: the SAs a previous process handed
/// over.
fn serve(
    config: &Config,
    rcfg: Arc<ResponderConfig>,
    queues: Vec<io::tun::TunQueue>,
    sockets: Sockets,
    restored: Option<(ResponderState, SadState)>,
    os_state: OsState,
    cluster: Option<&super::cluster::Cluster>,
) -> Result<Stack, Box<(DaemonError, OsState)>> {
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(Pause::default());
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let record = Stack::describe(config, queues.len(), &os_state);
    let handover = match sockets.handover_order() {
        Ok(h) => h,
        Err(e) => {
            let e = DaemonError::socket("duplicating the UDP sockets")(e);
            return Err(Box::new((e, os_state)));
        }
    };
    let ctx = Threads {
        stop: &stop,
        pause: &pause,
        threads: &mut threads,
    };
    match serve_inner(config, rcfg, queues, sockets, restored, ctx, cluster) {
        Ok((postbox, ctl_thread, sad)) => Ok(Stack {
            postbox,
            ctl_thread: Some(ctl_thread),
            threads,
            stop,
            sad,
            os_state,
            pause,
            handover,
            record,
            verdict: Mutex::new(None),
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

/// The flags a stack's threads share and where their handles go.
struct Threads<'a> {
    stop: &'a Arc<AtomicBool>,
    pause: &'a Arc<Pause>,
    threads: &'a mut Vec<JoinHandle<()>>,
}

fn serve_inner(
    config: &Config,
    rcfg: Arc<ResponderConfig>,
    queues: Vec<io::tun::TunQueue>,
    sockets: Sockets,
    restored: Option<(ResponderState, SadState)>,
    ctx: Threads<'_>,
    cluster: Option<&super::cluster::Cluster>,
) -> Result<Started, DaemonError> {
    let Threads {
        stop,
        pause,
        threads,
    } = ctx;
    let gw = config.gateway();
    let sad = Arc::new(Sad::new());
    // The SAs first: the workers look them up from their first packet on.
    let mut responder = match restored {
        None => Responder::new(rcfg.clone()),
        Some((state, sad_state)) => {
            let max_sas = rcfg
                .max_connections
                .saturating_mul(rcfg.limits.child_sas_per_ike_sa)
                .saturating_mul(2)
                .max(16);
            sad.import(&sad_state, max_sas)
                .map_err(|e| DaemonError::HandOver(format!("the SA database: {e}")))?;
            Responder::restore(rcfg.clone(), &state, Instant::now())
                .map_err(|e| DaemonError::HandOver(format!("the IKE SAs: {e}")))?
        }
    };
    if let Some(c) = cluster {
        responder.share_pool(c.leases(rcfg.pool));
    }
    let (postbox, inbox) = inbox::with_capacity(config.limits().ike_queue().get() as usize);

    // Every listen address is a full gateway: UDP 500 (one receiver thread each) and UDP
    // 4500 (one reuse-port socket per worker each) on every one of them; replies leave
    // through the socket of the address their request came to (`sockets.rs`).
    let (ike_port, nat_t_port) = (gw.ike_port().get(), gw.nat_t_port().get());
    let Sockets { s500, s4500 } = sockets;
    let ike_sockets = BoundSockets::new(s500);
    let mut natt_for_ike = None;
    for (id, (tun, udp)) in queues.into_iter().zip(s4500).enumerate() {
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
            pause: pause.clone(),
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
        let (stop2, pause2) = (stop.clone(), pause.clone());
        let bound = SocketAddr::new(*addr, ike_port);
        threads.push(supervise::spawn(format!("ike-rx-{i}"), stop, move || {
            receive_ike(s, bound, post, stop2, pause2)
        })?);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A gateway on 127.0.0.1 with `workers` workers and these ports.
    fn config(workers: u32, ike: u16, natt: u16) -> Config {
        let text = format!(
            r#"
[gateway]
vpn_gateway_id = "vpn-test0001"
region_id = "local"
listen_addrs = ["127.0.0.1"]
ike_port = {ike}
nat_t_port = {natt}
workers = {workers}

[ipsec_server]
local_subnet = ["192.168.0.0/24"]
client_ip_pool = "10.0.0.0/24"
psk = "Sup3r-Secret-Psk"
"#
        );
        Config::from_toml_str(&text, &[], &mut rand::thread_rng()).expect("valid config")
    }

    fn fds(socks: &[UdpSocket]) -> Vec<OwnedFd> {
        socks
            .iter()
            .map(|s| OwnedFd::from(s.try_clone().unwrap()))
            .collect()
    }

    #[test]
    fn handed_over_sockets_must_be_where_this_configuration_binds() {
        let (ike, natt) = (47_921, 47_922);
        let cfg = config(2, ike, natt);
        let sockets = Sockets::bind(&cfg, 2).unwrap();
        let order = sockets.handover_order().unwrap();
        assert_eq!(order.len(), 3, "UDP 500, then one UDP 4500 per worker");
        let ports: Vec<u16> = order
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        assert_eq!(ports, [ike, natt, natt]);

        let back = Sockets::handed(fds(&order), &cfg, 2).unwrap();
        assert_eq!(back.s500.len(), 1);
        assert_eq!(back.s4500.len(), 2);
        // Another worker count, other ports, or sockets in another order: refused.
        let e = Sockets::handed(fds(&order), &cfg, 3).err().unwrap();
        assert!(e.contains("4 expected"), "{e}");
        let e = Sockets::handed(fds(&order), &config(2, ike + 10, natt), 2)
            .err()
            .unwrap();
        assert!(e.contains("not 127.0.0.1:47931"), "{e}");
        let mut swapped = fds(&order);
        swapped.swap(0, 1);
        assert!(Sockets::handed(swapped, &cfg, 2).is_err());
        // A descriptor that is no socket at all.
        let mut junk = fds(&order);
        junk[2] = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        assert!(Sockets::handed(junk, &cfg, 2).is_err());
    }
}

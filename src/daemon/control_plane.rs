//! The control plane of a stack: one thread owns the [`Responder`], so the responder needs no
//! lock. All IKE reaches it through its [`Inbox`] — a bounded queue of `limits.ike_queue`
//! datagrams (full means dropped and counted) filled by one receiver thread per UDP 500
//! socket ([`receive_ike`]) and by the data-plane workers (IKE on UDP 4500) — beside the
//! [`ControlMsg`]s of the status socket and the stack manager. The thread carries out the
//! responder's [`Action`]s: IKE datagrams sent, Child SAs installed in and removed from the
//! [`Sad`]. Once a second it also reads the SAD's counters for the responder: inbound
//! packets (liveness, instead of DPD) and the pairs whose sequence numbers reached
//! `ipsec::REKEY_AT_SEQ` (`SadSnapshot::rekey_due` → `Responder::rekey_soon`), so the data
//! plane never has to signal anything per packet.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tracing::{debug, info, warn};

use crate::ike::snapshot::ResponderState;
use crate::ike::{Action, Responder, ResponderConfig};
use crate::io;
use crate::io::udp::{RecvBatch, SendBatch};
use crate::ipsec::handover::SadState;
use crate::ipsec::{drops_since, DropReason, Sad};
use crate::wire::with_non_esp_marker;

use super::inbox::{Datagram, DropReport, Inbox, Postbox, Received};
use super::sockets::BoundSockets;
use super::status::{self, IkeQueue, SaStatus, Selector, ServerStatus};

/// Control messages to the control-plane thread (IKE datagrams go through the bounded queue
/// of its [`Inbox`] instead). Never dropped.
#[derive(Debug)]
pub(crate) enum ControlMsg {
    Status(Sender<ServerStatus>),
    /// Deletes the IKE SAs `select` matches (`ipsec-server terminate`): DELETE to each
    /// client, Child SAs removed; answers what they were.
    Terminate {
        select: Selector,
        reply: Sender<Vec<SaStatus>>,
    },
    /// Clients with an established IKE SA (ListIpsecServers' OnlineClientCount).
    OnlineClients(Sender<usize>),
    /// The values of a metrics scrape; `per_client`: with the per-client series.
    Metrics {
        per_client: bool,
        reply: Sender<Box<super::metrics::StackMetrics>>,
    },
    /// New settings for new IKE SAs (UpdateIpsecServer); `delete_all`: EffectImmediately,
    /// existing IKE SAs are deleted so clients renegotiate with the new settings.
    Reconfigure {
        config: Arc<ResponderConfig>,
        delete_all: bool,
    },
    /// `ipsec-server upgrade` (`upgrade.rs`), once the stack's packet threads are parked:
    /// the IKE thread handles the datagrams already queued, answers its state on `reply`,
    /// then handles nothing until `verdict` says whether the new process took over (`true`:
    /// the thread ends without a DELETE) or not (`false`, or no verdict within
    /// [`VERDICT_WAIT`]: it serves on).
    HandOver {
        reply: Sender<Captured>,
        verdict: Receiver<bool>,
    },
    Shutdown,
}

/// What the IKE thread captures for a hand-over.
pub(crate) struct Captured {
    pub responder: ResponderState,
    pub sad: SadState,
}

impl std::fmt::Debug for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys inside: say only how much.
        write!(f, "Captured({} IKE SAs)", self.responder.sas.len())
    }
}

/// The longest the IKE thread waits for a hand-over's verdict before it serves on: far
/// above the upgrade's own bounds (`upgrade.rs`), so it only matters if those fail.
pub(crate) const VERDICT_WAIT: Duration = Duration::from_secs(60);

/// At most one log line per this period about IKE datagrams dropped at a full queue.
pub(crate) const DROP_REPORT_PERIOD: Duration = Duration::from_secs(10);

/// At most one summary line per this period about dropped ESP packets.
pub(crate) const ESP_DROP_SUMMARY_PERIOD: Duration = Duration::from_secs(60);

/// The periodic info line of ESP drops by reason ([`crate::ipsec::EspDrops`]): when there
/// are new drops, at most one per [`ESP_DROP_SUMMARY_PERIOD`], each with the drops since the
/// previous line; the per-packet lines stay at debug.
pub(crate) struct EspDropSummary {
    report: DropReport,
    reported: [u64; DropReason::ALL.len()],
}

impl EspDropSummary {
    pub fn new() -> Self {
        Self {
            report: DropReport::new(ESP_DROP_SUMMARY_PERIOD),
            reported: [0; DropReason::ALL.len()],
        }
    }

    /// Logs the drops since the last line, if a line is due.
    fn maybe_log(&mut self, now: Instant, sad: &Sad) {
        let counts = sad.drops().read();
        if self.report.due(now, counts.iter().sum()).is_none() {
            return;
        }
        if let Some(text) = drops_since(&self.reported, &counts) {
            info!("ESP packets dropped since the last summary: {text}");
        }
        self.reported = counts;
    }
}

/// UDP 500 on one listen address (`bound`): every datagram is IKE, queued for the IKE thread
/// (dropped when its queue is full). Runs until `stop`; a failing poll (the socket is gone)
/// is an error.
pub(crate) fn receive_ike(
    sock: UdpSocket,
    bound: SocketAddr,
    ike: Postbox,
    stop: Arc<AtomicBool>,
    pause: Arc<super::pause::Pause>,
) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let mut rx = RecvBatch::new(16, 65536);
    let mut poller =
        io::poll::Poller::new(&[sock.as_raw_fd()]).map_err(|e| format!("UDP {bound}: {e}"))?;
    while !stop.load(Ordering::Relaxed) {
        if !pause.hold(&stop) {
            break;
        }
        if poller
            .wait(super::pause::PACKET_WAIT)
            .map_err(|e| format!("UDP {bound}: {e}"))?
            == 0
        {
            continue;
        }
        let n = rx.recv(&sock).unwrap_or(0);
        for i in 0..n {
            let (meta, data) = rx.get(i);
            // The address the datagram came to (IP_PKTINFO): where the answer leaves from.
            let local = SocketAddr::new(meta.dst_ip.unwrap_or(bound.ip()), bound.port());
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
pub(crate) struct ControlPlane {
    pub responder: Responder,
    pub sad: Arc<Sad>,
    /// UDP 500 and (duplicates of the workers') UDP 4500 on every listen address.
    pub s500: BoundSockets,
    pub s4500: BoundSockets,
    pub nat_t_port: u16,
    pub send: SendBatch,
    pub drops: DropReport,
    pub esp_drops: EspDropSummary,
    /// Cluster mode: this node's etcd lease, checked before each datagram and at each tick
    /// (`cluster/mod.rs`, "Fencing").
    pub fence: Option<super::cluster::Fence>,
    /// Test hook ([`first_seq_from_env`]): the next sequence number of the first Child SA
    /// installed; taken by that install.
    pub first_seq: Option<u32>,
}

/// The environment variable of the test hook: `IPSEC_SERVER_TEST_FIRST_SEQ=N` makes the first
/// Child SA the daemon installs (one only, per start of the stack) seal its first packet with
/// sequence number N, so that a test sees the rekey at `ipsec::REKEY_AT_SEQ` without sending
/// 2^31 packets. Harmless if set by mistake: only the environment of the daemon (root) sets
/// it, it can only skip sequence numbers of that one SA, never reuse one
/// (`OutboundSa::set_next_seq_for_test`), so at worst that SA is rekeyed early; its use is
/// logged at WARN.
pub(crate) const FIRST_SEQ_ENV: &str = "IPSEC_SERVER_TEST_FIRST_SEQ";

/// Reads [`FIRST_SEQ_ENV`]; an unparseable value is logged and ignored.
pub(crate) fn first_seq_from_env() -> Option<u32> {
    let v = std::env::var(FIRST_SEQ_ENV).ok()?;
    match v.trim().parse::<u32>() {
        Ok(n) if n > 0 => {
            warn!("{FIRST_SEQ_ENV}={n}: the first Child SA starts at this sequence number (a test hook)");
            Some(n)
        }
        _ => {
            warn!("{FIRST_SEQ_ENV}={v:?} is not a sequence number 1..=4294967295: ignored");
            None
        }
    }
}

impl ControlPlane {
    /// Until `Shutdown` (or until every [`Postbox`] is gone): IKE datagrams through the
    /// responder, control messages, and once a second the responder's timers.
    pub(crate) fn run(mut self, inbox: Inbox) -> Result<(), String> {
        let mut rng = StdRng::from_entropy();
        let mut next_tick = Instant::now() + Duration::from_secs(1);
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let received = inbox.recv(wait);
            self.check_fence(&mut rng);
            match received {
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
                    let queue = IkeQueue {
                        capacity: inbox.capacity(),
                        dropped: inbox.dropped(),
                    };
                    let _ = reply.send(status::collect(
                        &self.responder,
                        &self.sad,
                        queue,
                        Instant::now(),
                    ));
                }
                Received::Control(ControlMsg::Terminate { select, reply }) => {
                    let chosen: Vec<_> = self
                        .responder
                        .sas(Instant::now())
                        .into_iter()
                        .filter(|sa| sa.established && select.matches(&sa.identity, sa.vip))
                        .collect();
                    let spis: Vec<u64> = chosen.iter().map(|sa| sa.spi_r).collect();
                    let gone = chosen
                        .into_iter()
                        .map(|sa| status::sa_status(sa, &self.sad))
                        .collect();
                    let actions = self.responder.delete(&spis, &mut rng);
                    self.apply(actions);
                    let _ = reply.send(gone);
                }
                Received::Control(ControlMsg::OnlineClients(reply)) => {
                    let _ = reply.send(self.responder.online_clients());
                }
                Received::Control(ControlMsg::Metrics { per_client, reply }) => {
                    let _ = reply.send(Box::new(super::metrics::collect(
                        &self.responder,
                        &self.sad,
                        inbox.dropped(),
                        per_client,
                    )));
                }
                Received::Control(ControlMsg::Reconfigure { config, delete_all }) => {
                    // Existing IKE SAs keep what they negotiated (clients of an older PSK
                    // must authenticate again soon); new ones use `config`.
                    let (ike, esp) = (config.ike.notation(), config.esp.notation(config.esp_pfs));
                    let actions =
                        self.responder
                            .reconfigure(Instant::now(), &mut rng, config, delete_all);
                    self.apply(actions);
                    info!(delete_all, %ike, %esp, "responder reconfigured");
                }
                Received::Control(ControlMsg::HandOver { reply, verdict }) => {
                    while let Some(d) = inbox.try_datagram() {
                        let actions = self.responder.handle(
                            Instant::now(),
                            &mut rng,
                            &d.bytes,
                            d.local,
                            d.remote,
                        );
                        self.apply(actions);
                    }
                    let captured = Captured {
                        responder: self.responder.snapshot(Instant::now()),
                        sad: self.sad.export(),
                    };
                    if reply.send(captured).is_ok()
                        && verdict.recv_timeout(VERDICT_WAIT) == Ok(true)
                    {
                        info!("handed over: this process's IKE thread ends without DELETE");
                        return Ok(());
                    }
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
                         (total {}); the IKE thread cannot keep up or one source address \
                         sent more than its eighth of the queue (limits.ike_queue = {})",
                        inbox.dropped(),
                        inbox.capacity()
                    );
                }
                self.esp_drops.maybe_log(Instant::now(), &self.sad);
                let snapshot = self.sad.snapshot();
                self.responder.refresh_activity(Instant::now(), &|spi| {
                    snapshot
                        .inbound(spi)
                        .map(|sa| sa.counters.read().0)
                        .unwrap_or(0)
                });
                // Child SAs running out of sequence numbers are rekeyed by this tick.
                for spi in snapshot.rekey_due() {
                    self.responder.rekey_soon(Instant::now(), spi);
                }
                let actions = self.responder.tick(Instant::now(), &mut rng);
                self.apply(actions);
                next_tick = Instant::now() + Duration::from_secs(1);
            }
        }
    }

    /// Cluster mode: once this node's lease is no longer surely valid (or was replaced),
    /// every IKE SA goes (DELETE to each client, Child SAs out of the SAD), so no address
    /// etcd may hand to another node is still forwarded here.
    fn check_fence(&mut self, rng: &mut StdRng) {
        let Some(fence) = self.fence.as_mut() else {
            return;
        };
        let Some(why) = fence.check(Instant::now()) else {
            return;
        };
        let sas = self.responder.usage().ike_sas;
        let actions = self.responder.delete_all(rng);
        self.apply(actions);
        if sas > 0 {
            warn!(
                ike_sas = sas,
                "cluster: fenced ({why}): this node's etcd lease is not surely valid any \
                 more, so every IKE SA was deleted and its addresses forgotten"
            );
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
                    if !spec.udp_encap {
                        // The data plane receives ESP only in UDP on the NAT-T port: this
                        // client (no NAT-T, or no NAT with `force_udp_encap = false`) sends
                        // raw ESP, which never arrives.
                        warn!(vip = %spec.client_vip, remote = %spec.remote,
                            "Child SA without UDP encapsulation: the client will send raw ESP \
                             (IP protocol 50), which this gateway does not receive");
                    }
                    if let Err(e) = self.sad.install(&spec) {
                        warn!(vip = %spec.client_vip, "installing Child SA failed: {e}");
                    } else if let Some(seq) = self.first_seq.take() {
                        if let Some(out) = self.sad.snapshot().outbound(spec.client_vip) {
                            warn!(
                                spi = format_args!("{:08x}", out.spi),
                                "test hook: next outbound sequence number {seq}"
                            );
                            out.set_next_seq_for_test(seq);
                        }
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

    /// Sends an IKE message from the address and port it is to leave from: the socket of
    /// `local` (the address the peer talks to), with the non-ESP marker on the NAT-T port.
    fn send_ike(&mut self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let src = Some(local.ip()).filter(|ip| !ip.is_unspecified());
        let natt = local.port() == self.nat_t_port;
        let sockets = if natt { &self.s4500 } else { &self.s500 };
        let Some(sock) = sockets.for_local(local.ip()) else {
            debug!(%local, %remote, "sending IKE: no socket on this local address");
            return;
        };
        if natt {
            // RFC 3948 §2.2: IKE on the NAT-T port carries the non-ESP marker.
            self.send.push(&with_non_esp_marker(bytes), remote, src);
        } else {
            self.send.push(bytes, remote, src);
        }
        if let Err(e) = self.send.flush(sock) {
            debug!(%remote, "sending IKE: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_test::traced_test;

    #[traced_test]
    #[test]
    fn esp_drops_are_summarised_at_most_once_a_period() {
        let sad = Sad::new();
        let mut summary = EspDropSummary::new();
        let t0 = Instant::now();
        summary.maybe_log(t0, &sad);
        assert!(!logs_contain("ESP packets dropped"), "nothing dropped yet");
        sad.drops().count(DropReason::Replay);
        sad.drops().count(DropReason::UnknownSpi);
        summary.maybe_log(t0, &sad);
        assert!(logs_contain(
            "ESP packets dropped since the last summary: replay 1, unknown SPI 1"
        ));
        sad.drops().count(DropReason::Icv);
        summary.maybe_log(t0 + Duration::from_secs(30), &sad);
        assert!(!logs_contain("summary: ICV 1"), "within the period");
        summary.maybe_log(t0 + ESP_DROP_SUMMARY_PERIOD, &sad);
        assert!(logs_contain(
            "ESP packets dropped since the last summary: ICV 1"
        ));
    }
}

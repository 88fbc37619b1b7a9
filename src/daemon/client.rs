//! Client mode: `ipsec-server client …` — the in-crate IKEv2 initiator as a road-warrior
//! client on the gateway's own data plane (one worker per core, each with a TUN queue and a
//! reuse-port UDP 4500 socket).
//!
//! Sequence: IKE_SA_INIT and IKE_AUTH on UDP 4500 from the start (RFC 7296 §2.23 allows it;
//! every IKE message carries the non-ESP marker, RFC 3948 §2.2), asking for a virtual IP by
//! CP; then the TUN device gets the virtual IP, the remote subnets are routed into it, the
//! Child SA is installed mirrored ([`Role::Client`]) and the workers start. On SIGINT/SIGTERM
//! the IKE SA is deleted (INFORMATIONAL DELETE), routes removed, the TUN closed.
//!
//! The gateway's own requests are answered: liveness checks (DPD) keep the tunnel up, a
//! DELETE of the IKE SA or the Child SA ends the client with an error.
//!
//! Limits: no rekeying — the client neither rekeys nor accepts the gateway's Child SA rekey
//! (refused with NO_ADDITIONAL_SAS), so a tunnel lasts until the gateway's `ipsec_lifetime` /
//! `ike_lifetime` (default 24 h) and the client then exits; run it again to reconnect.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tracing::{debug, info, warn};

use crate::config::{AuthAlg, DhGroup as CfgDhGroup, EncAlg, Identity};
use crate::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use crate::ike::initiator::{Initiator, InitiatorConfig, PeerRequest};
use crate::ike::{EspSuite, IkeSuite};
use crate::io;
use crate::ipsec::{Role, Sad};
use crate::secret::SecretBytes;
use crate::wire::{classify_4500, with_non_esp_marker, Udp4500, NON_ESP_MARKER};

use super::inbox::{self, Inbox, Received};
use super::signals::{Signal, Signals};
use super::sockets::BoundSockets;
use super::stack::SOCKET_BUFFER;
use super::{supervise, tun_mtu, worker, DaemonError};

/// `ipsec-server client` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The gateway's IPv4 address (IKE and ESP-in-UDP go to its UDP 4500).
    #[arg(long)]
    pub remote: Ipv4Addr,
    /// Our identity (IDi), e.g. `client1.example` or `@name`.
    #[arg(long)]
    pub id: String,
    /// The gateway's identity (IDr) to ask for; not checked beyond the PSK's AUTH.
    #[arg(long)]
    pub remote_id: Option<String>,
    /// File holding the pre-shared key (trailing newline ignored).
    #[arg(long)]
    pub psk_file: PathBuf,
    /// Remote subnets to ask for (TSr) and route into the TUN; repeatable.
    #[arg(long = "remote-ts", required = true)]
    pub remote_ts: Vec<Ipv4Net>,
    /// TUN device name.
    #[arg(long, default_value = "ipsec0")]
    pub tun: String,
    /// Encryption (API names: aes, aes192, aes256, des, 3des), for IKE and ESP.
    #[arg(long, default_value = "aes")]
    pub enc: String,
    /// Integrity (md5, sha1, sha256, sha384, sha512), for IKE and ESP.
    #[arg(long, default_value = "sha1")]
    pub auth: String,
    /// The IKE SA's DH group (group1, group2, group5, group14, group24).
    #[arg(long, default_value = "group2")]
    pub pfs: String,
    /// Data-plane workers (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// How long to wait for each IKE answer, and how often to ask.
const IKE_RETRANSMIT: Duration = Duration::from_secs(1);
const IKE_TRIES: u32 = 10;
/// IKE datagrams from the gateway waiting for the IKE thread (its requests are rare).
const IKE_QUEUE: usize = 64;

/// Connects to the gateway and runs the tunnel until SIGINT or SIGTERM.
pub fn run_client(args: ClientArgs) -> Result<(), DaemonError> {
    let mut signals = Signals::new()?;
    let bad = DaemonError::Argument;
    let enc = EncAlg::from_api_name(&args.enc).ok_or_else(|| bad(format!("--enc {}", args.enc)))?;
    let auth =
        AuthAlg::from_api_name(&args.auth).ok_or_else(|| bad(format!("--auth {}", args.auth)))?;
    let group =
        CfgDhGroup::from_api_name(&args.pfs).ok_or_else(|| bad(format!("--pfs {}", args.pfs)))?;
    let encr = EncrAlg::from_ike(enc.iana_id(), enc.key_length_attr())
        .ok_or_else(|| bad(format!("--enc {}", args.enc)))?;
    let integ =
        IntegAlg::from_ike(auth.integ_id()).ok_or_else(|| bad(format!("--auth {}", args.auth)))?;
    let prf =
        PrfAlg::from_ike(auth.prf_id()).ok_or_else(|| bad(format!("--auth {}", args.auth)))?;
    let dh = DhGroup::from_id(group.iana_id()).ok_or_else(|| bad(format!("--pfs {}", args.pfs)))?;
    let id = Identity::parse(&args.id).map_err(|e| bad(format!("--id: {e}")))?;
    let psk = std::fs::read(&args.psk_file).map_err(|source| DaemonError::Psk {
        path: args.psk_file.clone(),
        source,
    })?;
    let psk_len = psk
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r'))
        .map_or(0, |i| i + 1);
    let workers = args.workers.filter(|n| *n > 0).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });

    let remote = SocketAddr::new(IpAddr::V4(args.remote), 4500);
    let local_ip = {
        let probe =
            UdpSocket::bind("0.0.0.0:0").map_err(DaemonError::socket("UDP probe socket"))?;
        probe
            .connect(remote)
            .map_err(DaemonError::socket(format!("no route to {remote}")))?;
        probe
            .local_addr()
            .map_err(DaemonError::socket("UDP probe address"))?
            .ip()
    };
    let local = SocketAddr::new(local_ip, 4500);
    let esp = EspSuite { encr, integ };
    let cfg = InitiatorConfig {
        ike: IkeSuite {
            encr,
            integ,
            prf,
            dh,
        },
        esp,
        psk: SecretBytes::from_slice(&psk[..psk_len]),
        id,
        local,
        remote,
        remote_ts: args.remote_ts.clone(),
        request_vip: true,
    };
    let mut rng = StdRng::from_entropy();
    let bind_any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 4500);
    let (ini, child) = {
        let sock = io::udp::bind(bind_any, true, 0).map_err(DaemonError::bind("UDP 4500"))?;
        handshake(&sock, cfg, &mut rng)?
    };
    let vip = child.client_vip;
    info!(%vip, %remote, spi_in = format_args!("{:08x}", child.inbound_spi),
        spi_out = format_args!("{:08x}", child.outbound_spi), "IKE SA and Child SA established");

    let mtu = tun_mtu(&esp);
    let queues =
        io::tun::create_offload(&args.tun, mtu, workers).map_err(DaemonError::tun(&args.tun))?;
    io::net::add_address(Ipv4Net::from(vip), &args.tun)
        .map_err(DaemonError::network("addressing the TUN"))?;
    let mut routes = Vec::new();
    for net in &args.remote_ts {
        match io::net::add_route(*net, &args.tun) {
            Ok(()) => routes.push(*net),
            Err(e) => warn!("routing {net} into {}: {e}", args.tun),
        }
    }
    let sad = Arc::new(Sad::new());
    sad.install_as(&child, Role::Client)
        .map_err(DaemonError::ChildSa)?;
    info!(tun = %args.tun, mtu, workers, routes = ?routes, "tunnel up");

    let stop = Arc::new(AtomicBool::new(false));
    let (postbox, ike_inbox) = inbox::with_capacity(IKE_QUEUE);
    let mut threads = Vec::new();
    let mut ike_sock = None;
    for (i, tun) in queues.into_iter().enumerate() {
        let udp = io::udp::bind(bind_any, true, SOCKET_BUFFER)
            .map_err(DaemonError::bind(format!("UDP {bind_any}")))?;
        if ike_sock.is_none() {
            ike_sock = Some(
                udp.try_clone()
                    .map_err(DaemonError::socket("cloning the UDP 4500 socket"))?,
            );
        }
        let w = worker::Worker {
            id: i,
            tun,
            udp: BoundSockets::new(vec![(bind_any.ip(), udp)]),
            sad: sad.clone(),
            ike: postbox.clone(),
            stop: stop.clone(),
            pause: Default::default(),
            nat_t_port: 4500,
        };
        threads.push(supervise::spawn(format!("dp-{i}"), &stop, move || w.run())?);
    }
    // IKE that reaches the workers now is the gateway's own requests: answered by the
    // initiator (liveness checks, DELETEs; Child SA rekeys refused).
    let ended = Arc::new(AtomicBool::new(false));
    let ike = IkeAnswerer {
        ini,
        rng,
        sock: ike_sock.ok_or(DaemonError::NoUdp4500Socket)?,
        remote,
        stop: stop.clone(),
        ended: ended.clone(),
    };
    threads.push(supervise::spawn("ike".into(), &stop, move || {
        ike.run(ike_inbox);
        Ok(())
    })?);

    let outcome = loop {
        match signals.wait_timeout(Duration::from_millis(200)) {
            Some(Signal::Stop) => break Ok(()),
            Some(Signal::Reload) => {}
            None if ended.load(Ordering::Relaxed) => {
                break Err(DaemonError::TunnelDeleted);
            }
            None => {}
        }
    };
    info!("shutting down");
    // The IKE thread sends our DELETE (if the IKE SA is still up) as it stops.
    stop.store(true, Ordering::SeqCst);
    drop(postbox);
    for t in threads {
        let _ = t.join();
    }
    for net in routes {
        if let Err(e) = io::net::del_route(net, &args.tun) {
            debug!("removing route {net}: {e}");
        }
    }
    sad.clear();
    outcome
}

/// The client's IKE thread after the handshake: answers the gateway's requests, and sends
/// our DELETE when the client stops.
struct IkeAnswerer {
    ini: Initiator,
    rng: StdRng,
    sock: UdpSocket,
    remote: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Set when the gateway deleted the IKE SA or the Child SA: the tunnel is over.
    ended: Arc<AtomicBool>,
}

impl IkeAnswerer {
    fn run(mut self, requests: Inbox) {
        while !self.stop.load(Ordering::Relaxed) {
            match requests.recv(Duration::from_millis(200)) {
                Received::Datagram(d) => self.answer(&d.bytes, d.remote),
                Received::Control(_) | Received::Timeout => {}
                Received::Closed => break,
            }
        }
        match self.ini.delete_request(&mut self.rng) {
            Ok(Some(del)) => {
                let _ = self.sock.send_to(&with_non_esp_marker(&del), self.remote);
            }
            Ok(None) => {}
            Err(e) => warn!("cannot encode the IKE SA's DELETE: {e}"),
        }
    }

    fn answer(&mut self, bytes: &[u8], from: SocketAddr) {
        if from != self.remote {
            debug!(%from, "IKE from another address ignored");
            return;
        }
        match self.ini.answer(&mut self.rng, bytes) {
            Ok((response, asked)) => {
                if let Err(e) = self
                    .sock
                    .send_to(&with_non_esp_marker(&response), self.remote)
                {
                    warn!("answering the gateway: {e}");
                }
                match asked {
                    PeerRequest::DeleteIke | PeerRequest::DeleteChild => {
                        warn!(?asked, "the gateway deleted the tunnel");
                        self.ended.store(true, Ordering::Relaxed);
                    }
                    PeerRequest::Refused => {
                        info!("refused the gateway's Child SA rekey: client mode does not rekey; the Child SA lasts until its lifetime")
                    }
                    PeerRequest::Liveness | PeerRequest::Retransmit => {
                        debug!(?asked, "answered the gateway")
                    }
                }
            }
            Err(e) => debug!("IKE message from the gateway dropped: {e}"),
        }
    }
}

/// IKE_SA_INIT + IKE_AUTH on `sock`, retransmitting each request until answered.
fn handshake(
    sock: &UdpSocket,
    cfg: InitiatorConfig,
    rng: &mut StdRng,
) -> Result<(Initiator, crate::ike::ChildSaSpec), DaemonError> {
    use std::os::fd::AsRawFd;
    let remote = cfg.remote;
    let fail = DaemonError::Handshake;
    let (mut ini, mut request) =
        Initiator::start(cfg, rng).map_err(|e| fail(format!("IKE_SA_INIT to {remote}: {e}")))?;
    let mut buf = vec![0u8; 65536];
    loop {
        let mut answered = None;
        'tries: for _ in 0..IKE_TRIES {
            sock.send_to(&with_non_esp_marker(&request), remote)
                .map_err(DaemonError::socket(format!("sending IKE to {remote}")))?;
            let deadline = Instant::now() + IKE_RETRANSMIT;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                let ready = io::poll::wait_readable(&[sock.as_raw_fd()], left)
                    .map_err(DaemonError::socket("poll on UDP 4500"))?;
                if !ready.first().copied().unwrap_or(false) {
                    continue;
                }
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                // IKE on 4500 starts with the non-ESP marker; anything else is not for us yet.
                if from != remote || !matches!(classify_4500(&buf[..n]), Ok(Udp4500::Ike(_))) {
                    continue;
                }
                answered = Some(n);
                break 'tries;
            }
        }
        let Some(n) = answered else {
            return Err(fail(format!("no IKE answer from {remote}")));
        };
        match ini.handle(rng, &buf[NON_ESP_MARKER.len()..n]) {
            Ok(Some(next)) => request = next,
            Ok(None) if ini.is_established() => break,
            Ok(None) => return Err(fail("IKE exchange ended without an IKE SA".into())),
            Err(e) => return Err(fail(format!("IKE with {remote}: {e}"))),
        }
    }
    let child = ini
        .child()
        .cloned()
        .ok_or_else(|| fail("the gateway built no Child SA (no virtual IP?)".into()))?;
    Ok((ini, child))
}

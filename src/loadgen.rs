//! Handshake load generator: many IKEv2 clients (the in-crate [`Initiator`]) against a
//! responder over real UDP, the way strongSwan's kernel-libipsec clients talk: IKE_SA_INIT to
//! port 500, then IKE_AUTH to the NAT-T port with the RFC 3948 non-ESP marker.
//!
//! Every client has its own identity (`{id_prefix}{i}`) and IKE SA; all share two UDP
//! sockets (one towards port 500, one towards 4500) and are told apart by their IKE SPI.
//! Bounded: `count` handshakes, at most `rate` starts per second, at most `window` in flight
//! (the responder asks one address for cookies above its `limits.cookie_threshold_ip`, 3 by
//! default: raise its `[limits]` for a load test),
//! `timeout` per message with `retries` retransmissions. Established IKE SAs are kept (no
//! DELETE is sent) until the hold time ends or the process is told to stop; meanwhile the
//! responder's requests (DPD liveness checks) are answered, so held SAs stay up.
//!
//! With `data` ([`DataConfig`], `--data-to`), once the handshakes are done every client
//! carries traffic for a bounded time: UDP packets from its virtual IP to a LAN host, sealed
//! with the crate's [`OutboundSa`] (the client end of its Child SA), a batch per client at a
//! time, sent with `sendmmsg` and UDP GSO ([`SendBatch`]). Each client sends its ESP from a
//! UDP socket of its own, as every real client has its own address and port: the gateway
//! spreads clients over its workers by the UDP 4-tuple (SO_REUSEPORT), and one shared source
//! port would put every tunnel on one worker. The gateway follows each Child SA to its new
//! port on the first authenticated packet (NAT rebinding, RFC 3948 §3.5). What a client sent
//! is printed per client and in total (inner IP bytes, what the LAN host's IP layer counts),
//! so a benchmark can set it beside what arrived.
//!
//! A module of the binary (`ipsec-server loadgen`), not of the library: it is the only tokio
//! client code and a user of the library like any other client.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::net::UdpSocket;

use ipsec_server::config::Identity;
use ipsec_server::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use ipsec_server::ike::initiator::{Initiator, InitiatorConfig};
use ipsec_server::ike::{EspSuite, IkeSuite};
use ipsec_server::io::udp::{self, SendBatch};
use ipsec_server::ipsec::{OutboundSa, Role};
use ipsec_server::secret::SecretBytes;
use ipsec_server::wire::{
    classify_4500, with_non_esp_marker, write_ipv4_header, ExchangeType, Header, Udp4500,
    IPPROTO_UDP, IPV4_MIN_HEADER_LEN,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadgenConfig {
    /// The responder's address; port 500 unless given.
    pub target: SocketAddr,
    /// The responder's NAT-T port.
    pub nat_t_port: u16,
    pub count: u64,
    /// Handshake starts per second.
    pub rate: f64,
    /// Handshakes in flight at most.
    pub window: usize,
    pub psk: SecretBytes,
    pub id_prefix: String,
    pub ike: IkeSuite,
    pub esp: EspSuite,
    /// Per-message answer timeout and retransmissions before a handshake counts as failed.
    pub timeout: Duration,
    pub retries: u32,
    /// How long to keep the SAs after the last handshake (and the data phase); `None` =
    /// until SIGINT/SIGTERM.
    pub hold: Option<Duration>,
    /// Traffic every established client sends after the handshakes, if any.
    pub data: Option<DataConfig>,
}

/// The data phase: UDP through every client's tunnel to one LAN address.
#[derive(Debug, Clone)]
pub struct DataConfig {
    /// Where the inner UDP packets go (a host behind the gateway).
    pub to: SocketAddrV4,
    /// How long to send at most.
    pub duration: Duration,
    /// Packets per client at most (`None`: until `duration` ends).
    pub packets: Option<u64>,
    /// Offered rate of all clients together, Mbit/s of inner IP bytes; 0 = as fast as this
    /// thread can seal and send.
    pub mbps: f64,
    /// Inner IP packet length (IPv4 + UDP headers + payload), [`MIN_DATA_LEN`]..=[`MAX_DATA_LEN`].
    pub len: usize,
}

/// The shortest inner packet: IPv4 and UDP headers.
pub const MIN_DATA_LEN: usize = IPV4_MIN_HEADER_LEN + UDP_HEADER_LEN;
/// The longest inner packet: with ESP, UDP and IP around it, a 1500-byte outer MTU still holds
/// it with AES-CBC and HMAC-SHA1-96 (1400 + 74 ≤ 1500).
pub const MAX_DATA_LEN: usize = 1400;
const UDP_HEADER_LEN: usize = 8;
/// Packets sealed and sent per client at a time (one `sendmmsg`, one GSO run).
const DATA_BATCH: usize = 32;
/// The inner UDP source port.
const DATA_SRC_PORT: u16 = 9000;

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct LoadgenReport {
    pub established: u64,
    pub failed: u64,
    /// From the first IKE_SA_INIT sent to the last handshake finished.
    pub elapsed: Duration,
}

impl LoadgenReport {
    pub fn handshakes_per_second(&self) -> f64 {
        self.established as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Parses a strongSwan-style IKE proposal `ENCR-INTEG-DH` (e.g. `aes128-sha1-modp1024`);
/// the PRF follows the integrity algorithm's hash. Returns the IKE and the ESP suite (same
/// ENCR and INTEG).
pub fn parse_proposal(s: &str) -> anyhow::Result<(IkeSuite, EspSuite)> {
    let parts: Vec<&str> = s.split('-').collect();
    let [encr, integ, dh] = parts.as_slice() else {
        bail!("proposal {s:?}: expected ENCR-INTEG-DH, e.g. aes128-sha1-modp1024");
    };
    let encr = match *encr {
        "aes128" => EncrAlg::AesCbc128,
        "aes192" => EncrAlg::AesCbc192,
        "aes256" => EncrAlg::AesCbc256,
        "3des" => EncrAlg::TripleDesCbc,
        "des" => EncrAlg::DesCbc,
        e => bail!("unknown encryption algorithm {e:?}"),
    };
    let (integ, prf) = match *integ {
        "sha1" => (IntegAlg::HmacSha1_96, PrfAlg::HmacSha1),
        "sha256" => (IntegAlg::HmacSha256_128, PrfAlg::HmacSha256),
        "sha384" => (IntegAlg::HmacSha384_192, PrfAlg::HmacSha384),
        "sha512" => (IntegAlg::HmacSha512_256, PrfAlg::HmacSha512),
        "md5" => (IntegAlg::HmacMd5_96, PrfAlg::HmacMd5),
        i => bail!("unknown integrity algorithm {i:?}"),
    };
    let dh = match *dh {
        "modp768" => DhGroup::Modp768,
        "modp1024" => DhGroup::Modp1024,
        "modp1536" => DhGroup::Modp1536,
        "modp2048" => DhGroup::Modp2048,
        "modp2048s256" => DhGroup::Modp2048_256,
        d => bail!("unknown DH group {d:?}"),
    };
    Ok((
        IkeSuite {
            encr,
            integ,
            prf,
            dh,
        },
        EspSuite { encr, integ },
    ))
}

/// One client's handshake in progress.
struct Pending {
    ini: Initiator,
    /// The last request, for retransmission, and whether it goes to the NAT-T port.
    request: Vec<u8>,
    nat_t: bool,
    deadline: Instant,
    tries: u32,
}

/// Runs the load, prints progress to stderr and the report to stdout.
pub fn run(cfg: LoadgenConfig) -> anyhow::Result<LoadgenReport> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(cfg))
}

async fn run_async(cfg: LoadgenConfig) -> anyhow::Result<LoadgenReport> {
    if cfg.count == 0 || cfg.rate <= 0.0 || cfg.window == 0 {
        bail!("count, rate and window must be positive");
    }
    if let Some(data) = &cfg.data {
        if !(MIN_DATA_LEN..=MAX_DATA_LEN).contains(&data.len) {
            bail!("data packet length must be in {MIN_DATA_LEN}..={MAX_DATA_LEN}");
        }
    }
    let bind: SocketAddr = match cfg.target {
        SocketAddr::V4(_) => "0.0.0.0:0".parse()?,
        SocketAddr::V6(_) => "[::]:0".parse()?,
    };
    let s500 = UdpSocket::bind(bind).await?;
    s500.connect(cfg.target)
        .await
        .context("connect to port 500")?;
    let mut nat_t = cfg.target;
    nat_t.set_port(cfg.nat_t_port);
    let s4500 = UdpSocket::bind(bind).await?;
    s4500
        .connect(nat_t)
        .await
        .context("connect to NAT-T port")?;
    let local = s500.local_addr()?;

    let mut rng = StdRng::from_entropy();
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    // Established initiators are kept so their IKE SAs stay alive on both ends.
    let mut established: HashMap<u64, Initiator> =
        HashMap::with_capacity(cfg.count.min(1 << 20) as usize);
    let mut report = LoadgenReport::default();
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / cfg.rate);
    let mut next_start = start;
    let mut started = 0u64;
    let mut last_progress = start;
    let (mut buf500, mut buf4500) = (vec![0u8; 65536], vec![0u8; 65536]);

    while report.established + report.failed < cfg.count {
        let now = Instant::now();
        // Start new handshakes, paced.
        while started < cfg.count && pending.len() < cfg.window && next_start <= now {
            let icfg = InitiatorConfig {
                ike: cfg.ike,
                esp: cfg.esp,
                psk: cfg.psk.clone(),
                id: Identity::Fqdn(format!("{}{}", cfg.id_prefix, started)),
                local,
                remote: cfg.target,
                remote_ts: vec![],
                request_vip: true,
            };
            let (ini, request) = Initiator::start(icfg, &mut rng)?;
            let _ = s500.send(&request).await;
            pending.insert(
                ini.spi_i(),
                Pending {
                    ini,
                    request,
                    nat_t: false,
                    deadline: now + cfg.timeout,
                    tries: 0,
                },
            );
            started += 1;
            next_start += interval;
            if next_start + interval * 4 < now {
                // Too far behind (the window was full): do not burst to catch up.
                next_start = now;
            }
        }
        // Retransmit or give up on timed-out handshakes.
        let mut gave_up = Vec::new();
        for (spi, p) in pending.iter_mut() {
            if p.deadline <= now {
                if p.tries >= cfg.retries {
                    gave_up.push(*spi);
                    continue;
                }
                p.tries += 1;
                p.deadline = now + cfg.timeout;
                send(&s500, &s4500, &p.request, p.nat_t).await;
            }
        }
        for spi in gave_up {
            pending.remove(&spi);
            report.failed += 1;
        }
        // Wait for an answer, the next start or the next deadline.
        let mut wake = pending
            .values()
            .map(|p| p.deadline)
            .min()
            .unwrap_or(now + Duration::from_millis(100));
        if started < cfg.count && pending.len() < cfg.window {
            wake = wake.min(next_start);
        }
        let answer: Option<&[u8]> = tokio::select! {
            r = s500.recv(&mut buf500) => match r {
                Ok(n) => Some(&buf500[..n]),
                Err(_) => None,
            },
            r = s4500.recv(&mut buf4500) => match r.map(|n| classify_4500(&buf4500[..n])) {
                Ok(Ok(Udp4500::Ike(ike))) => Some(ike),
                _ => None,
            },
            _ = tokio::time::sleep_until(wake.into()) => None,
        };
        if let Some(bytes) = answer {
            let Ok(header) = Header::parse(bytes) else {
                continue;
            };
            let Some(mut p) = pending.remove(&header.spi_i) else {
                continue;
            };
            match p.ini.handle(&mut rng, bytes) {
                Ok(Some(next)) => {
                    let h = Header::parse(&next)?;
                    p.nat_t = h.exchange != ExchangeType::IKE_SA_INIT;
                    send(&s500, &s4500, &next, p.nat_t).await;
                    p.request = next;
                    p.tries = 0;
                    p.deadline = Instant::now() + cfg.timeout;
                    pending.insert(header.spi_i, p);
                }
                Ok(None) if p.ini.is_established() => {
                    report.established += 1;
                    report.elapsed = start.elapsed();
                    established.insert(header.spi_i, p.ini);
                }
                Ok(None) => report.failed += 1,
                Err(e) => {
                    if report.failed < 5 {
                        eprintln!("loadgen: handshake failed: {e}");
                    }
                    report.failed += 1;
                }
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            eprintln!(
                "loadgen: {} established, {} failed, {} in flight, {:.1} s",
                report.established,
                report.failed,
                pending.len(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "loadgen: established={} failed={} elapsed_s={:.3} handshakes_per_s={:.1}",
        report.established,
        report.failed,
        report.elapsed.as_secs_f64(),
        report.handshakes_per_second()
    );
    if let Some(data) = &cfg.data {
        let gateway = SocketAddr::new(cfg.target.ip(), cfg.nat_t_port);
        let clients: Vec<&Initiator> = established.values().collect();
        let sent = send_data(data, &clients, local.ip(), gateway, &mut rng)?;
        print_data_report(&sent);
    }
    println!("loadgen: holding {} IKE SAs", established.len());
    let hold_until = cfg.hold.map(|d| Instant::now() + d);
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        let wake = hold_until.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = s4500.recv(&mut buf4500) => {
                let Ok(n) = r else { continue };
                let Ok(Udp4500::Ike(bytes)) = classify_4500(&buf4500[..n]) else { continue };
                let Ok(header) = Header::parse(bytes) else { continue };
                let Some(ini) = established.get_mut(&header.spi_i) else { continue };
                if let Ok((response, _)) = ini.answer(&mut rng, bytes) {
                    send(&s500, &s4500, &response, true).await;
                }
                if !ini.is_established() {
                    // The responder deleted this IKE SA.
                    established.remove(&header.spi_i);
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => break,
            _ = &mut stop => break,
        }
    }
    drop(established);
    Ok(report)
}

/// What one client sent in the data phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSent {
    pub vip: Option<std::net::Ipv4Addr>,
    /// Packets and inner IP bytes the kernel took (sealed ones it refused are not counted).
    pub packets: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// One client of the data phase: its Child SA's outbound half, its own socket and the inner
/// packet it repeats.
struct DataClient {
    sa: OutboundSa,
    sock: std::net::UdpSocket,
    inner: Vec<u8>,
    sent: DataSent,
}

/// The data phase (see the module docs): round-robin over the clients, a batch each, until
/// the time is up or every client sent its packets. Blocking: nothing else runs meanwhile.
fn send_data(
    cfg: &DataConfig,
    clients: &[&Initiator],
    local_ip: IpAddr,
    gateway: SocketAddr,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<DataSent>> {
    let mut senders = Vec::with_capacity(clients.len());
    for ini in clients {
        let Some(child) = ini.child() else {
            eprintln!("loadgen: an IKE SA without a Child SA sends no data");
            continue;
        };
        let sa = OutboundSa::with_role(child, Role::Client)
            .map_err(|e| anyhow::anyhow!("Child SA: {e}"))?;
        let sock = udp::bind(SocketAddr::new(local_ip, 0), false, 1 << 20)
            .context("binding a client's data socket")?;
        senders.push(DataClient {
            sa,
            sock,
            inner: inner_packet(child.client_vip, cfg.to, cfg.len)?,
            sent: DataSent {
                vip: Some(child.client_vip),
                ..DataSent::default()
            },
        });
    }
    let mut batch = SendBatch::new(DATA_BATCH, 2048);
    batch.set_gso(true);
    let start = Instant::now();
    let end = start + cfg.duration;
    let bytes_per_s = cfg.mbps * 1e6 / 8.0;
    let mut total_bytes = 0u64;
    let limit = cfg.packets.unwrap_or(u64::MAX);
    let mut done = senders.is_empty();
    while !done && Instant::now() < end {
        done = true;
        for c in senders.iter_mut() {
            let left = limit - c.sent.packets;
            if left == 0 {
                continue;
            }
            done = false;
            let n = DATA_BATCH.min(usize::try_from(left).unwrap_or(DATA_BATCH));
            for _ in 0..n {
                let Some(slot) = batch.slot() else { break };
                let len =
                    c.sa.seal_prepare(&c.inner, slot, rng)
                        .map_err(|e| anyhow::anyhow!("seal: {e}"))?;
                batch.commit(len, gateway, None);
            }
            c.sa.seal_finish(batch.queued_mut(0))
                .map_err(|e| anyhow::anyhow!("seal: {e}"))?;
            let accepted = batch.flush(&c.sock).unwrap_or(0) as u64;
            c.sent.packets += accepted;
            c.sent.bytes += accepted * c.inner.len() as u64;
            total_bytes += accepted * c.inner.len() as u64;
            if bytes_per_s > 0.0 {
                // Paced: wait until the rate allows what was sent so far.
                let due = Duration::from_secs_f64(total_bytes as f64 / bytes_per_s);
                let now = start.elapsed();
                if due > now {
                    std::thread::sleep(
                        (due - now).min(end.saturating_duration_since(Instant::now())),
                    );
                }
            }
            if Instant::now() >= end {
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    Ok(senders
        .into_iter()
        .map(|c| DataSent { elapsed, ..c.sent })
        .collect())
}

/// An IPv4/UDP packet of `len` bytes from `vip` to `to`, payload zero (no UDP checksum,
/// allowed over IPv4: RFC 768).
fn inner_packet(vip: std::net::Ipv4Addr, to: SocketAddrV4, len: usize) -> anyhow::Result<Vec<u8>> {
    let mut p = vec![0u8; len];
    let total = u16::try_from(len)?;
    write_ipv4_header(&mut p, total, IPPROTO_UDP, vip, *to.ip())
        .map_err(|e| anyhow::anyhow!("inner header: {e}"))?;
    let udp = &mut p[IPV4_MIN_HEADER_LEN..];
    udp[0..2].copy_from_slice(&DATA_SRC_PORT.to_be_bytes());
    udp[2..4].copy_from_slice(&to.port().to_be_bytes());
    udp[4..6].copy_from_slice(&(total - IPV4_MIN_HEADER_LEN as u16).to_be_bytes());
    Ok(p)
}

/// One line per client, then the total (stdout: what benchmarks and tests parse).
fn print_data_report(sent: &[DataSent]) {
    for (i, s) in sent.iter().enumerate() {
        let vip = s.vip.map(|v| v.to_string()).unwrap_or_default();
        println!(
            "loadgen: data client={i} vip={vip} packets={} bytes={}",
            s.packets, s.bytes
        );
    }
    let packets: u64 = sent.iter().map(|s| s.packets).sum();
    let bytes: u64 = sent.iter().map(|s| s.bytes).sum();
    let secs = sent.first().map_or(0.0, |s| s.elapsed.as_secs_f64());
    println!(
        "loadgen: data total clients={} packets={packets} bytes={bytes} secs={secs:.3} mbit_s={:.1}",
        sent.len(),
        bytes as f64 * 8.0 / 1e6 / secs.max(1e-9)
    );
}

async fn send(s500: &UdpSocket, s4500: &UdpSocket, bytes: &[u8], nat_t: bool) {
    let _ = if nat_t {
        s4500.send(&with_non_esp_marker(bytes)).await
    } else {
        s500.send(bytes).await
    };
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_parse() {
        let (ike, esp) = parse_proposal("aes128-sha1-modp1024").unwrap();
        assert_eq!(ike.dh, DhGroup::Modp1024);
        assert_eq!(ike.prf, PrfAlg::HmacSha1);
        assert_eq!(esp.encr, EncrAlg::AesCbc128);
        assert!(parse_proposal("aes128-sha1").is_err());
        assert!(parse_proposal("aes128-sha1-modp4096").is_err());
    }

    #[test]
    fn inner_packets_are_udp_from_the_virtual_ip() {
        use ipsec_server::wire::Ipv4Header;
        let vip = std::net::Ipv4Addr::new(10, 0, 0, 7);
        let to: SocketAddrV4 = "192.168.0.10:5599".parse().unwrap();
        let p = inner_packet(vip, to, 300).unwrap();
        let ip = Ipv4Header::parse(&p).unwrap();
        assert_eq!((ip.src(), ip.dst(), ip.total_len()), (vip, *to.ip(), 300));
        assert_eq!(ip.protocol(), IPPROTO_UDP);
        let udp = &p[IPV4_MIN_HEADER_LEN..];
        assert_eq!(u16::from_be_bytes([udp[0], udp[1]]), DATA_SRC_PORT);
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 5599);
        assert_eq!(usize::from(u16::from_be_bytes([udp[4], udp[5]])), 280);
        // The header checksum sums to 0xffff (RFC 791).
        let sum: u32 = p[..IPV4_MIN_HEADER_LEN]
            .chunks_exact(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        let sum = (sum & 0xffff) + (sum >> 16);
        assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff);
        assert!(inner_packet(vip, to, 70000).is_err());
    }
}

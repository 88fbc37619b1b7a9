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
//! A module of the binary (`ipsec-server loadgen`), not of the library: it is the only tokio
//! client code and a user of the library like any other client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::net::UdpSocket;

use ipsec_server::config::Identity;
use ipsec_server::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use ipsec_server::ike::initiator::{Initiator, InitiatorConfig};
use ipsec_server::ike::{EspSuite, IkeSuite};
use ipsec_server::secret::SecretBytes;
use ipsec_server::wire::{classify_4500, with_non_esp_marker, ExchangeType, Header, Udp4500};

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
    /// How long to keep the SAs after the last handshake; `None` = until SIGINT/SIGTERM.
    pub hold: Option<Duration>,
}

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
}

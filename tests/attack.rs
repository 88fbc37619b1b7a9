//! Black-box attacks on the gateway from a second address on its public segment, with a real
//! strongSwan 5.9 client as the victim. Root; namespaces per test (see `tests/common/mod.rs`;
//! the attacker is the topology's second client namespace, 172.29.1.4). Both tests default to
//! the ipsec-server gateway; `INTEROP_GATEWAY=strongswan` runs them against a strongSwan
//! responder as the baseline.
//!
//! - [`unauthenticated_header_does_not_hijack_the_sa`]: a bare IKE header that names a live
//!   IKE SA (its SPIs are in clear on the wire) must not be taken as authenticated: no answer
//!   to the attacker, no move of the SA's peer address or ESP destination, rekeys still work.
//! - [`ike_sa_init_flood`]: ≥ 50,000 IKE_SA_INIT requests per second for 30 s from 64 source
//!   ports, never answering cookies; a client from another address must still connect
//!   within 10 s, and the gateway's RSS may grow by at most 32 MiB.
//!
//! Run: `cargo test --test attack -- --include-ignored --test-threads=1 --nocapture`.
// Test code: deadlines and timings over real sockets and processes read the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use common::charon::{CLIENT_CHILD, CLIENT_CONN};
use common::flood::{Flood, FloodConfig};
use common::flows::{assert_ping, connect, ping};
use common::gateway::Daemon;
use common::net::{in_ns, sa, udp_send};
use common::topo::addr;
use common::*;
use ipsec_server::wire::{
    classify_4500, with_non_esp_marker, ExchangeType, Header, PayloadType, Udp4500, FLAG_INITIATOR,
    IKEV2_VERSION, IKE_HEADER_LEN,
};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The attacker: the topology's second client namespace, on the gateway's outside link.
const ATTACKER: Role = Role::Client2;
const ATTACKER_ADDR: Ipv4Addr = addr::CLIENT2;
/// UDP port of the victim's listener for LAN → victim traffic.
const LISTEN_PORT: u16 = 7002;

/// The flood takes both cores of a CI machine: the two root tests here never overlap.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn unauthenticated_header_does_not_hijack_the_sa() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new(
        "atk1",
        TopoOpts {
            second_client: true,
            ..TopoOpts::default()
        },
    );
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let (client, vip) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    assert_ping(&topo, Role::Client, vip);

    let sas = client.list_sas();
    let (spi_i, spi_r) =
        ike_spis(&sas).unwrap_or_else(|| panic!("no IKE SPIs in --list-sas:\n{sas}"));
    let child_before = child_in_spis(&sas);
    assert!(!child_before.is_empty(), "no Child SA SPIs:\n{sas}");
    let status_before = gateway_status(&topo, &gw);
    if let Some(s) = &status_before {
        assert!(
            s.contains(&format!("{spi_i:016x}_i {spi_r:016x}_r")),
            "the gateway's status does not show the client's IKE SA {spi_i:016x}_i {spi_r:016x}_r:\n{s}"
        );
    }
    eprintln!("[atk1] victim IKE SA {spi_i:016x}_i {spi_r:016x}_r, Child SA in {child_before:?}");

    // The attack: a bare 28-byte INFORMATIONAL request header (I flag, no payloads) for each
    // message ID 0..=100, three times each, to UDP 500 and (behind the non-ESP marker) to
    // UDP 4500, from the attacker's own ports 500 and 4500.
    let attacker = Attacker::bind(topo.ns(ATTACKER));
    let mut sent = 0;
    for message_id in 0..=100u32 {
        let bare = bare_informational(spi_i, spi_r, message_id);
        assert_eq!(bare.len(), IKE_HEADER_LEN);
        for _ in 0..3 {
            attacker.send_500(&bare);
            attacker.send_4500(&with_non_esp_marker(&bare));
            sent += 2;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_secs(1));
    let after_attack = attacker.received();
    let status_after = gateway_status(&topo, &gw);
    eprintln!(
        "[atk1] attacker sent {sent} bare headers; received so far: {}",
        after_attack.summary()
    );

    // Traffic from the LAN to the victim (before the victim sends any ESP of its own, which
    // would show the gateway its real address again) must reach the victim, not the attacker.
    let mut failures = Vec::new();
    let listener = UdpServer::start(
        topo.ns(Role::Client),
        sa(Ipv4Addr::UNSPECIFIED, LISTEN_PORT),
        false,
    );
    let msgs: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("to the victim #{i}").into_bytes())
        .collect();
    udp_send(
        topo.ns(Role::Lan),
        sa(addr::LAN_HOST, 0),
        sa(vip, LISTEN_PORT),
        msgs.clone(),
    );
    let delivered = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        (listener.received().len() >= msgs.len()).then_some(())
    });
    let esp_to_attacker = attacker.received().esp;
    eprintln!(
        "[atk1] LAN -> victim: {} of {} datagrams arrived at the victim; the attacker has {} ESP packets",
        listener.received().len(),
        msgs.len(),
        esp_to_attacker
    );
    if delivered.is_none() {
        failures.push(format!(
            "only {} of {} datagrams from the LAN host reached the victim after the attack \
             (the attacker got {esp_to_attacker} ESP packets)",
            listener.received().len(),
            msgs.len()
        ));
    }
    drop(listener);

    // The victim rekeys its Child SA, then its IKE SA, then pings.
    let out = client.swanctl(&["--rekey", "--child", CLIENT_CHILD]);
    if !out.success() {
        failures.push(format!("swanctl --rekey --child failed:\n{out}"));
    }
    let child_rekeyed = poll_until(Duration::from_secs(15), Duration::from_millis(250), || {
        let sas = client.list_sas();
        let now = child_in_spis(&sas);
        (sas.contains("INSTALLED")
            && !now.is_empty()
            && now.iter().all(|s| !child_before.contains(s)))
        .then_some(now)
    });
    match &child_rekeyed {
        Some(now) => eprintln!("[atk1] Child SA rekeyed: in {child_before:?} -> {now:?}"),
        None => failures.push(format!(
            "the Child SA rekey did not complete within 15 s (in SPIs still {:?}):\n{}",
            child_in_spis(&client.list_sas()),
            client.list_sas()
        )),
    }
    let out = client.swanctl(&["--rekey", "--ike", CLIENT_CONN]);
    if !out.success() {
        failures.push(format!("swanctl --rekey --ike failed:\n{out}"));
    }
    let ike_rekeyed = poll_until(Duration::from_secs(15), Duration::from_millis(250), || {
        ike_spis(&client.list_sas()).filter(|spis| *spis != (spi_i, spi_r))
    });
    match ike_rekeyed {
        Some((i, r)) => eprintln!("[atk1] IKE SA rekeyed: now {i:016x}_i {r:016x}_r"),
        None => failures.push(format!(
            "the IKE SA rekey did not complete within 15 s:\n{}",
            client.list_sas()
        )),
    }
    let ping = ping(&topo, Role::Client, vip);
    if !ping.0 {
        failures.push(format!(
            "ping through the tunnel after the attack:\n{}",
            ping.1
        ));
    }
    std::thread::sleep(Duration::from_millis(500)); // late ESP or IKE towards the attacker
    let received = attacker.received();
    eprintln!("[atk1] attacker received in total: {}", received.summary());
    if received.datagrams != 0 {
        failures.push(format!(
            "the attacker received {} (0 allowed)",
            received.summary()
        ));
    }
    if let (Some(before), Some(after)) = (&status_before, &status_after) {
        let (b, a) = (remote_of(before), remote_of(after));
        eprintln!(
            "[atk1] the gateway's peer address of the SA: {b:?} before, {a:?} after the attack"
        );
        if a.as_deref()
            .is_some_and(|a| a.starts_with(&format!("{ATTACKER_ADDR}:")))
        {
            failures.push(format!(
                "the gateway moved the IKE SA's peer to the attacker:\n{after}"
            ));
        }
    }
    gw.assert_running(&topo);
    assert!(
        failures.is_empty(),
        "{} failure(s) after the unauthenticated-header attack:\n- {}",
        failures.len(),
        failures.join("\n- ")
    );
}

/// Requests per second the flood must reach (see the test's output for the achieved rate).
const FLOOD_MIN_RATE: f64 = 50_000.0;
const FLOOD_SECS: u64 = 30;
const FLOOD_SOCKETS: usize = 64;
/// Sender threads, 32 sockets each. With UDP GSO one would do; without it (sendmmsg) one
/// thread reached only ~50,000/s on the loaded 2-core test machine.
const FLOOD_THREADS: usize = 2;
/// The paced rate the senders aim for; the achieved rate is printed and must reach
/// [`FLOOD_MIN_RATE`]. Measured on the 2-core machine (commit message): at 60,000/s the
/// daemon of 2026-12 answered nearly all of it, so its unbounded queue grew only ~37 MiB;
/// at 80,000/s it grew 230–560 MiB, while a prototype with a bounded queue stayed within
/// 1 MiB and let the victim in.
const FLOOD_TARGET_RATE: u64 = 80_000;
/// When the victim initiates: well into the flood, when every queue it fills is full.
const VICTIM_AFTER: Duration = Duration::from_secs(10);
/// RSS growth of the gateway over the flood that is still acceptable.
const RSS_GROWTH_MAX_KIB: u64 = 32 * 1024;
/// The flood is cut short above this growth so that a leaking gateway cannot hurt the host.
const RSS_GROWTH_ABORT_KIB: u64 = 1024 * 1024;

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn ike_sa_init_flood() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new(
        "atk2",
        TopoOpts {
            second_client: true,
            ..TopoOpts::default()
        },
    );
    let cfg = GatewayConfig::default();
    // Production log level: a debug line per dropped request would measure the log, not us.
    let gw = Gateway::start_log(&topo, &cfg, "info");
    let pid = gw.pid();
    let client = Charon::start_client(&topo, Role::Client, &ClientConfig::new("client1.example"));
    let gw_snmp_before = udp_snmp(&topo, Role::Gateway);
    let atk_snmp_before = udp_snmp(&topo, ATTACKER);
    let rss_before = rss_kib(pid).expect("gateway RSS");

    let flood = Flood::start(
        topo.ns(ATTACKER),
        &FloodConfig {
            target: std::net::SocketAddrV4::new(addr::GW_OUTSIDE, 500),
            source: ATTACKER_ADDR,
            sockets_per_thread: FLOOD_SOCKETS / FLOOD_THREADS,
            threads: FLOOD_THREADS,
            rate: FLOOD_TARGET_RATE,
            duration: Duration::from_secs(FLOOD_SECS),
            suite: cfg.suite,
        },
    );
    let flood_start = Instant::now();
    let mut rss_peak = rss_before;
    let mut aborted = None;
    // Sample the RSS until the flood is in its steady state, then connect the victim.
    let mut sample = |aborted: &mut Option<String>| {
        if let Some(kib) = rss_kib(pid) {
            rss_peak = rss_peak.max(kib);
            if kib > rss_before + RSS_GROWTH_ABORT_KIB && aborted.is_none() {
                *aborted = Some(format!(
                    "flood cut short after {:?}: RSS {kib} KiB",
                    flood_start.elapsed()
                ));
            }
        }
    };
    while flood_start.elapsed() < VICTIM_AFTER {
        sample(&mut aborted);
        std::thread::sleep(Duration::from_millis(250));
    }
    let sent_before_connect = flood.sent();
    let t = Instant::now();
    let initiate = client.initiate(CLIENT_CHILD);
    let connect_time = t.elapsed();
    let sas = client.list_sas();
    let vip = client.virtual_ip();
    let connected = initiate.success() && sas.contains("INSTALLED") && vip.is_some();
    let rate_while_connecting =
        (flood.sent() - sent_before_connect) as f64 / t.elapsed().as_secs_f64();
    eprintln!(
        "[atk2] victim initiate {} after {connect_time:?} (flood at ~{rate_while_connecting:.0}/s meanwhile)",
        if connected { "succeeded" } else { "FAILED" }
    );
    let ping_during = vip.map(|vip| ping(&topo, Role::Client, vip));

    // Let the flood run its course (or cut it short if the gateway balloons).
    while !flood.finished() && aborted.is_none() {
        sample(&mut aborted);
        if topo.exited(pid).is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let rss_end = rss_kib(pid);
    let report = flood.stop();
    if let Some(kib) = rss_end {
        rss_peak = rss_peak.max(kib);
    }
    let gw_snmp = udp_snmp(&topo, Role::Gateway);
    let atk_snmp = udp_snmp(&topo, ATTACKER);
    let gw_alive = topo.exited(pid).is_none();
    // After the flood: the tunnel still carries traffic.
    std::thread::sleep(Duration::from_secs(1));
    let ping_after = vip.map(|vip| ping(&topo, Role::Client, vip));

    let diff = |a: &Option<UdpSnmp>, b: &Option<UdpSnmp>, f: fn(&UdpSnmp) -> u64| match (a, b) {
        (Some(a), Some(b)) => format!("{}", f(b).saturating_sub(f(a))),
        _ => "?".into(),
    };
    let growth = rss_end.map(|e| e as i64 - rss_before as i64);
    eprintln!(
        "[atk2] ===== flood results ({:?} gateway)\n\
         [atk2] flood: {} IKE_SA_INIT requests in {:.1} s = {:.0}/s ({} send errors), {} sockets, {}, half with an all-zero KE\n\
         [atk2] gateway UDP: {} datagrams read, {} dropped for a full receive buffer; answers arriving at the flooder's (unread) sockets: {}\n\
         [atk2] victim: connect {} in {:.2} s; ping during flood {}; ping after {}\n\
         [atk2] gateway RSS: before {} KiB, at end of flood {}, peak {} KiB, growth {} KiB (limit {} KiB){}",
        gw.kind(),
        report.sent,
        report.elapsed.as_secs_f64(),
        report.rate(),
        report.send_errors,
        FLOOD_SOCKETS,
        if report.gso { "UDP GSO" } else { "sendmmsg" },
        diff(&gw_snmp_before, &gw_snmp, |s| s.in_datagrams),
        diff(&gw_snmp_before, &gw_snmp, |s| s.rcvbuf_errors),
        diff(&atk_snmp_before, &atk_snmp, |s| s.in_datagrams + s.rcvbuf_errors),
        if connected { "ok" } else { "FAILED" },
        connect_time.as_secs_f64(),
        ping_during.as_ref().map_or("n/a (no VIP)", |p| if p.0 { "ok" } else { "FAILED" }),
        ping_after.as_ref().map_or("n/a (no VIP)", |p| if p.0 { "ok" } else { "FAILED" }),
        rss_before,
        rss_end.map_or("? (gateway gone)".into(), |k| format!("{k} KiB")),
        rss_peak,
        growth.map_or("?".into(), |g| g.to_string()),
        RSS_GROWTH_MAX_KIB,
        aborted.as_ref().map_or(String::new(), |a| format!("; {a}")),
    );

    let mut failures = Vec::new();
    if !gw_alive {
        failures.push(format!(
            "the gateway (pid {pid}) ended during the flood ({})",
            topo.exited(pid).unwrap_or_default()
        ));
    }
    if let Some(a) = &aborted {
        failures.push(a.clone());
    }
    if aborted.is_none() && report.elapsed < Duration::from_secs(FLOOD_SECS) {
        failures.push(format!("the flood ran only {:?}", report.elapsed));
    }
    if report.rate() < FLOOD_MIN_RATE {
        failures.push(format!(
            "the flood reached only {:.0} requests/s (≥ {FLOOD_MIN_RATE:.0} required)",
            report.rate()
        ));
    }
    if !connected {
        failures.push(format!(
            "the victim could not connect during the flood:\n{initiate}\n{sas}"
        ));
    } else if connect_time > Duration::from_secs(10) {
        failures.push(format!(
            "the victim needed {connect_time:?} to connect during the flood (≤ 10 s required)"
        ));
    }
    if let Some((false, out)) = &ping_during {
        failures.push(format!("ping during the flood:\n{out}"));
    }
    if let Some((false, out)) = &ping_after {
        failures.push(format!("ping after the flood:\n{out}"));
    }
    match growth {
        Some(g) if g > RSS_GROWTH_MAX_KIB as i64 => failures.push(format!(
            "the gateway's RSS grew by {g} KiB during the flood (≤ {RSS_GROWTH_MAX_KIB} KiB allowed)"
        )),
        None => failures.push("no RSS at the end of the flood".into()),
        _ => {}
    }
    assert!(
        failures.is_empty(),
        "{} failure(s) under the IKE_SA_INIT flood:\n- {}",
        failures.len(),
        failures.join("\n- ")
    );
}

/// A bare IKE header: INFORMATIONAL request from the original initiator, no payloads.
fn bare_informational(spi_i: u64, spi_r: u64, message_id: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(IKE_HEADER_LEN);
    Header {
        spi_i,
        spi_r,
        next_payload: PayloadType::NONE,
        version: IKEV2_VERSION,
        exchange: ExchangeType::INFORMATIONAL,
        flags: FLAG_INITIATOR,
        message_id,
        length: IKE_HEADER_LEN as u32,
    }
    .emit(&mut out);
    out
}

/// The attacker's UDP 500 and 4500 sockets (bound in its namespace), each with a thread that
/// counts whatever arrives until the attacker is dropped.
struct Attacker {
    sock500: UdpSocket,
    sock4500: UdpSocket,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Received>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Clone, Default)]
struct Received {
    datagrams: u64,
    bytes: u64,
    /// IKE messages (from port 500, or behind the non-ESP marker from 4500).
    ike: u64,
    /// ESP packets (from port 4500 without the marker, RFC 3948 §2.2).
    esp: u64,
    /// (our port, sender, length, first 8 octets) of the first few datagrams.
    first: Vec<(u16, SocketAddr, usize, String)>,
}

impl Received {
    fn summary(&self) -> String {
        format!(
            "{} datagrams ({} IKE, {} ESP), {} bytes; first: {:?}",
            self.datagrams, self.ike, self.esp, self.bytes, self.first
        )
    }
}

impl Attacker {
    fn bind(ns: &str) -> Attacker {
        // A socket stays in the namespace it was created in, whichever thread uses it.
        let (sock500, sock4500) = in_ns(ns, "attacker sockets", || {
            let bind = |port| {
                UdpSocket::bind(sa(ATTACKER_ADDR, port))
                    .unwrap_or_else(|e| panic!("bind {ATTACKER_ADDR}:{port}: {e}"))
            };
            (bind(500), bind(4500))
        })
        .join(Duration::from_secs(5));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Received::default()));
        let threads = [&sock500, &sock4500]
            .into_iter()
            .map(|s| {
                let sock = s.try_clone().expect("clone socket");
                sock.set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                let port = sock.local_addr().unwrap().port();
                let (stop, seen) = (stop.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while !stop.load(Ordering::Relaxed) {
                        let Ok((n, from)) = sock.recv_from(&mut buf) else {
                            continue;
                        };
                        let mut r = seen.lock().unwrap();
                        r.datagrams += 1;
                        r.bytes += n as u64;
                        // What the gateway sends from its NAT-T port is ESP unless it
                        // carries the non-ESP marker, wherever it is sent to.
                        match classify_4500(&buf[..n]) {
                            Ok(Udp4500::Esp(_)) if from.port() == 4500 => r.esp += 1,
                            _ => r.ike += 1,
                        }
                        if r.first.len() < 5 {
                            let head = hex::encode(&buf[..n.min(8)]);
                            r.first.push((port, from, n, head));
                        }
                    }
                })
            })
            .collect();
        Attacker {
            sock500,
            sock4500,
            stop,
            seen,
            threads,
        }
    }

    fn send_500(&self, bytes: &[u8]) {
        self.sock500
            .send_to(bytes, sa(addr::GW_OUTSIDE, 500))
            .expect("send to the gateway's port 500");
    }

    fn send_4500(&self, bytes: &[u8]) {
        self.sock4500
            .send_to(bytes, sa(addr::GW_OUTSIDE, 4500))
            .expect("send to the gateway's port 4500");
    }

    fn received(&self) -> Received {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join(); // each ends within its 50 ms read timeout
        }
    }
}

/// The IKE SPIs of the first established IKE SA in `swanctl --list-sas`
/// (`gw: #1, ESTABLISHED, IKEv2, fa09a4ad3947f959_i* 5dfa9af0e839605f_r`).
fn ike_spis(list_sas: &str) -> Option<(u64, u64)> {
    let line = list_sas
        .lines()
        .find(|l| l.contains("ESTABLISHED, IKEv2,"))?;
    let spi = |suffix: &str| {
        line.split_whitespace().find_map(|w| {
            let w = w.trim_end_matches('*');
            u64::from_str_radix(w.strip_suffix(suffix)?, 16).ok()
        })
    };
    Some((spi("_i")?, spi("_r")?))
}

/// Inbound SPIs of the client's Child SAs (`in  c1234567, …`).
fn child_in_spis(list_sas: &str) -> Vec<String> {
    list_sas
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("in  "))
        .filter_map(|l| l.get(..8).map(str::to_string))
        .collect()
}

/// `ipsec-server status` in the gateway namespace; `None` for a strongSwan gateway.
fn gateway_status(topo: &Topology, gw: &Gateway) -> Option<String> {
    let Gateway::IpsecServer(d) = gw else {
        return None;
    };
    let cfg = d.config.to_str().unwrap();
    let out = topo.exec(Role::Gateway, Daemon::BIN, &["status", "--config", cfg]);
    Some(out.expect_ok("ipsec-server status").stdout)
}

/// The `remote ADDR:PORT` of the first IKE SA in `ipsec-server status`.
fn remote_of(status: &str) -> Option<String> {
    status.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        words.find(|w| *w == "remote")?;
        words.next().map(str::to_string)
    })
}

/// VmRSS of `pid` in KiB (/proc/PID/status).
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The UDP counters of a namespace (`Udp:` lines of /proc/net/snmp).
#[derive(Debug, Clone, Copy)]
struct UdpSnmp {
    in_datagrams: u64,
    rcvbuf_errors: u64,
}

fn udp_snmp(topo: &Topology, role: Role) -> Option<UdpSnmp> {
    let out = topo.exec(role, "cat", &["/proc/net/snmp"]);
    let mut udp = out.stdout.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next()?, udp.next()?);
    let get = |key: &str| -> Option<u64> {
        let i = names.split_whitespace().position(|n| n == key)?;
        values.split_whitespace().nth(i)?.parse().ok()
    };
    Some(UdpSnmp {
        in_datagrams: get("InDatagrams")?,
        rcvbuf_errors: get("RcvbufErrors")?,
    })
}

#[test]
fn parses_ike_spis_and_remote() {
    let sas = "gw: #1, ESTABLISHED, IKEv2, fa09a4ad3947f959_i* 5dfa9af0e839605f_r
  local  'client1.example' @ 172.29.1.2[4500] [10.0.0.1]
  net: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA1_96
    in  f5bdc933,    252 bytes,     3 packets,     0s ago
";
    assert_eq!(
        ike_spis(sas),
        Some((0xfa09_a4ad_3947_f959, 0x5dfa_9af0_e839_605f))
    );
    assert_eq!(child_in_spis(sas), vec!["f5bdc933".to_string()]);
    let status = "online clients: 1\nclient1.example: ESTABLISHED 3s ago, ike-spis 00_i 01_r\n  remote 172.29.1.2:4500 local 172.29.1.1:4500, NAT: no\n  vip 10.0.0.1\n";
    assert_eq!(remote_of(status).as_deref(), Some("172.29.1.2:4500"));
    let bare = bare_informational(1, 2, 3);
    assert_eq!(bare.len(), 28);
    assert_eq!(&bare[16..20], &[0x00, 0x20, 0x25, 0x08]);
    assert_eq!(&bare[24..28], &[0, 0, 0, 28]);
}

//! strongSwan 5.9 clients against the gateway (ipsec-server by default,
//! `INTEROP_GATEWAY=strongswan` for a strongSwan responder), in network namespaces built per
//! test. Needs root; `scripts/interop.sh` runs just this suite. See `tests/common/mod.rs`.
// Test code: deadlines and timings over real sockets and processes read the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use common::charon::CLIENT_CHILD;
use common::flows::{assert_ping, connect};
use common::gateway::Daemon;
use common::net::{sa, udp_send, Datagram};
use common::topo::addr;
use common::*;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

const ECHO_PORT: u16 = 7001;
const LISTEN_PORT: u16 = 7002;
const TCP_PORT: u16 = 5201;

/// A UDP request from `vip` to the LAN host's echo server, whose reply names the source it saw.
fn assert_lan_sees(topo: &Topology, role: Role, vip: Ipv4Addr) {
    assert_lan_sees_source(topo, role, vip, vip);
}

/// Like [`assert_lan_sees`], but the LAN host must see `seen` as the source.
fn assert_lan_sees_source(topo: &Topology, role: Role, vip: Ipv4Addr, seen: Ipv4Addr) {
    let reply = udp_request(
        topo.ns(role),
        sa(vip, 0),
        sa(addr::LAN_HOST, ECHO_PORT),
        b"who am i",
        Duration::from_secs(5),
    )
    .unwrap_or_else(|| panic!("{role:?}: no UDP echo from the LAN host"));
    assert_eq!(
        reply.from,
        sa(addr::LAN_HOST, ECHO_PORT),
        "echo came from elsewhere"
    );
    let text = String::from_utf8_lossy(&reply.payload);
    assert!(
        text.starts_with(&format!("{seen} ")),
        "{role:?}: the LAN host saw source {text:?}, expected {seen}"
    );
}

/// Streams `nbytes` to the LAN host through the tunnel and compares SHA-256 of both ends.
fn assert_tcp(topo: &Topology, role: Role, vip: Ipv4Addr, nbytes: u64, timeout: Duration) {
    let dst = std::net::SocketAddrV4::new(addr::LAN_HOST, TCP_PORT);
    let r = tcp_transfer(topo.ns(role), topo.ns(Role::Lan), dst, nbytes, timeout);
    eprintln!(
        "[{}] TCP {} bytes in {:?} ({:.0} Mbit/s), sha256 {}",
        topo.tag,
        r.received_bytes,
        r.elapsed,
        r.mbit_per_s(),
        r.received_sha256
    );
    assert_eq!(
        r.first_mismatch, None,
        "corrupted stream at the LAN host ({} of {nbytes} bytes)",
        r.received_bytes
    );
    assert_eq!(r.received_bytes, nbytes, "byte count at the LAN host");
    assert_eq!(
        r.sent_sha256.len(),
        64,
        "sha256sum of the sent stream: {:?}",
        r.sent_sha256
    );
    assert_eq!(
        r.received_sha256, r.sent_sha256,
        "SHA-256 at the LAN host differs from the sent stream"
    );
    assert_eq!(
        r.peer.ip(),
        std::net::IpAddr::V4(vip),
        "the LAN host saw the TCP connection from {}",
        r.peer
    );
}

fn echo_server(topo: &Topology) -> UdpServer {
    UdpServer::start(
        topo.ns(Role::Lan),
        sa(Ipv4Addr::UNSPECIFIED, ECHO_PORT),
        true,
    )
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn tunnel_up_and_ping() {
    let topo = Topology::new("up", TopoOpts::default());
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let _echo = echo_server(&topo);
    let (client, vip) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    assert_ping(&topo, Role::Client, vip);
    assert_lan_sees(&topo, Role::Client, vip);
    let c = client.child_counters().expect("Child SA counters");
    assert!(
        c.packets_out >= 4 && c.packets_in >= 4,
        "client Child SA counters too low: {c:?}"
    );
    gw.assert_running(&topo);
}

/// `masquerade = true`: the LAN sees the gateway's LAN address, not the client pool.
#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn masquerade_hides_the_pool() {
    let topo = Topology::new("msq", TopoOpts::default());
    let gw_cfg = GatewayConfig {
        gateway_extra: vec!["masquerade = true".into()],
        ..GatewayConfig::default()
    };
    let gw = Gateway::start(&topo, &gw_cfg);
    let _echo = echo_server(&topo);
    let (_client, vip) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    assert_ping(&topo, Role::Client, vip);
    assert_lan_sees_source(&topo, Role::Client, vip, addr::GW_LAN);
    gw.assert_running(&topo);
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn tcp_50mb_checksum() {
    let topo = Topology::new("tcp", TopoOpts::default());
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let (_client, vip) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    assert_tcp(
        &topo,
        Role::Client,
        vip,
        50 * 1024 * 1024,
        Duration::from_secs(90),
    );
    gw.assert_running(&topo);
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn nat_traversal() {
    let topo = Topology::new(
        "nat",
        TopoOpts {
            nat: true,
            ..TopoOpts::default()
        },
    );
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let _echo = echo_server(&topo);
    let (_client, vip) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    assert_ping(&topo, Role::Client, vip);
    assert_lan_sees(&topo, Role::Client, vip);
    assert_tcp(
        &topo,
        Role::Client,
        vip,
        4 * 1024 * 1024,
        Duration::from_secs(30),
    );

    // The NAT really rewrote the ports: IKE (500) and IKE/ESP (4500) left it from other ports.
    // /proc/net/nf_conntrack needs CONFIG_NF_CONNTRACK_PROCFS; `conntrack -L` (package
    // conntrack) prints the same fields.
    let mut ct = topo.exec(Role::Nat, "cat", &["/proc/net/nf_conntrack"]);
    if !ct.success() {
        ct = topo.exec(Role::Nat, "conntrack", &["-L", "-p", "udp"]);
    }
    let ct =
        ct.expect_ok("list the NAT's conntrack table (/proc/net/nf_conntrack or conntrack -L)");
    let flows = udp_flows(&ct.stdout);
    for port in [500, 4500] {
        let f = flows
            .iter()
            .find(|f| f.orig_sport == port && f.orig_dport == port)
            .unwrap_or_else(|| panic!("no UDP {port}→{port} flow through the NAT:\n{}", ct.stdout));
        assert_ne!(
            f.reply_dport, port,
            "NAT kept source port {port}; the test needs port rewriting"
        );
    }
    let mapped_4500 = flows
        .iter()
        .find(|f| f.orig_sport == 4500)
        .unwrap()
        .reply_dport;
    if let Some(gw_charon) = gw.charon() {
        let eps = gw_charon.remote_endpoints();
        let want = format!("{}[{mapped_4500}]", addr::NAT_OUTSIDE);
        assert!(
            eps.contains(&want),
            "strongSwan gateway sees the client at {eps:?}, expected {want}"
        );
    }
    gw.assert_running(&topo);
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn two_clients() {
    let topo = Topology::new(
        "two",
        TopoOpts {
            second_client: true,
            ..TopoOpts::default()
        },
    );
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let echo = echo_server(&topo);
    let (c1, vip1) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    let (c2, vip2) = connect(&topo, Role::Client2, &ClientConfig::new("client2.example"));
    assert_ne!(vip1, vip2, "both clients got the same virtual IP");
    for (role, vip) in [(Role::Client, vip1), (Role::Client2, vip2)] {
        assert_ping(&topo, role, vip);
        assert_lan_sees(&topo, role, vip);
    }
    let sources: Vec<SocketAddr> = echo.received().iter().map(|d| d.from).collect();
    assert!(
        sources.iter().all(|s| s.ip() == vip1 || s.ip() == vip2),
        "the LAN host saw sources other than the VIPs: {sources:?}"
    );

    // Traffic for one client reaches only that client: its listener gets it, the other's
    // listener and the other's inbound Child SA counters see nothing.
    let l1 = UdpServer::start(
        topo.ns(Role::Client),
        sa(Ipv4Addr::UNSPECIFIED, LISTEN_PORT),
        false,
    );
    let l2 = UdpServer::start(
        topo.ns(Role::Client2),
        sa(Ipv4Addr::UNSPECIFIED, LISTEN_PORT),
        false,
    );
    for (to, to_vip, to_l, other, other_l) in
        [(&c1, vip1, &l1, &c2, &l2), (&c2, vip2, &l2, &c1, &l1)]
    {
        let other_before = other.child_counters().expect("counters");
        let to_before = to.child_counters().expect("counters");
        let tag = format!("for {to_vip} #");
        let msgs: Vec<Vec<u8>> = (0..5).map(|i| format!("{tag}{i}").into_bytes()).collect();
        udp_send(
            topo.ns(Role::Lan),
            sa(addr::LAN_HOST, 0),
            sa(to_vip, LISTEN_PORT),
            msgs.clone(),
        );
        let mine = |l: &UdpServer| -> Vec<Datagram> {
            l.received()
                .into_iter()
                .filter(|d| d.payload.starts_with(tag.as_bytes()))
                .collect()
        };
        let got = poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
            let m = mine(to_l);
            (m.len() == msgs.len()).then_some(m)
        })
        .unwrap_or_else(|| {
            panic!(
                "{}: got {:?} of 5 datagrams sent to {to_vip}",
                to.name,
                mine(to_l)
            )
        });
        assert!(
            got.iter()
                .all(|d| d.from == sa(addr::LAN_HOST, d.from.port())),
            "wrong source: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(300)); // give a misrouted copy time to arrive
        assert!(
            mine(other_l).is_empty(),
            "{} received traffic meant for {to_vip}",
            other.name
        );
        let other_after = other.child_counters().expect("counters");
        assert_eq!(
            other_after.packets_in, other_before.packets_in,
            "{}'s Child SA received packets while the LAN host sent to {to_vip}",
            other.name
        );
        let to_after = to.child_counters().expect("counters");
        assert!(
            to_after.packets_in >= to_before.packets_in + 5,
            "{}: {to_before:?} → {to_after:?}",
            to.name
        );
    }
    gw.assert_running(&topo);
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn wrong_psk_refused() {
    let topo = Topology::new(
        "psk",
        TopoOpts {
            second_client: true,
            ..TopoOpts::default()
        },
    );
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let _echo = echo_server(&topo);
    let (_good, vip) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));

    let bad = Charon::start_client(
        &topo,
        Role::Client2,
        &ClientConfig::new("client2.example").psk("not-the-psk"),
    );
    let t = Instant::now();
    let out = bad.initiate(CLIENT_CHILD);
    eprintln!(
        "[{}] bad initiate returned after {:?}",
        topo.tag,
        t.elapsed()
    );
    assert!(
        !out.success(),
        "initiate with a wrong PSK succeeded:\n{out}"
    );
    let sas = bad.list_sas();
    assert!(
        !sas.contains("INSTALLED"),
        "a Child SA was installed with a wrong PSK:\n{sas}"
    );
    assert!(
        bad.virtual_ip().is_none(),
        "the bad client got a virtual IP:\n{sas}"
    );
    // RFC 7296 §2.21.2: the responder answers a bad AUTH with AUTHENTICATION_FAILED.
    assert!(
        bad.log_text()
            .contains("received AUTHENTICATION_FAILED notify error"),
        "the bad client was not told AUTHENTICATION_FAILED (see its log)"
    );
    bad.stop();

    // The good client's tunnel is unaffected.
    assert_ping(&topo, Role::Client, vip);
    assert_lan_sees(&topo, Role::Client, vip);
    gw.assert_running(&topo);
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn second_suite() {
    let suite = Suite::AES256_SHA256_MODP2048;
    let topo = Topology::new("s2", TopoOpts::default());
    let gw = Gateway::start(&topo, &GatewayConfig::default().suite(suite));
    let (client, vip) = connect(
        &topo,
        Role::Client,
        &ClientConfig::new("client1.example").suite(suite),
    );
    let sas = client.list_sas();
    assert!(
        sas.contains("AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"),
        "IKE suite:\n{sas}"
    );
    assert!(
        sas.contains("ESP:AES_CBC-256/HMAC_SHA2_256_128"),
        "ESP suite:\n{sas}"
    );
    assert_ping(&topo, Role::Client, vip);
    gw.assert_running(&topo);
}

/// A UDP conntrack entry: original and reply direction ports.
#[derive(Debug)]
struct Flow {
    orig_sport: u16,
    orig_dport: u16,
    reply_dport: u16,
}

/// Parses `/proc/net/nf_conntrack` (or `conntrack -L`) lines such as `ipv4 2 udp 17 170 src=… dst=… sport=4500
/// dport=4500 … src=… dst=… sport=4500 dport=61234 …`.
fn udp_flows(conntrack: &str) -> Vec<Flow> {
    conntrack
        .lines()
        .filter(|l| l.split_whitespace().take(3).any(|t| t == "udp"))
        .filter_map(|l| {
            let vals = |key: &str| -> Vec<u16> {
                l.split_whitespace()
                    .filter_map(|t| t.strip_prefix(key)?.parse().ok())
                    .collect()
            };
            let (sports, dports) = (vals("sport="), vals("dport="));
            Some(Flow {
                orig_sport: *sports.first()?,
                orig_dport: *dports.first()?,
                reply_dport: *dports.get(1)?,
            })
        })
        .collect()
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn failed_logins_are_explained_in_the_log() {
    let topo = Topology::new(
        "why",
        TopoOpts {
            second_client: true,
            ..TopoOpts::default()
        },
    );
    // ipsec-server only (its log is what this is about), with remote_id set.
    let state = topo.dir().join("ipsec-server/state");
    std::fs::create_dir_all(&state).expect("create state dir");
    let toml = GatewayConfig::default()
        .to_toml(state.to_str().unwrap())
        .replace("remote_id = \"\"", "remote_id = \"client1.example\"");
    let gw = Daemon::start(&topo, &toml);
    let attempts = [
        // The right identity with a wrong PSK.
        (
            Role::Client,
            ClientConfig::new("client1.example").psk("not-the-psk"),
        ),
        // The right PSK with another identity (from another address: one detailed line per
        // source and reason per 10 s).
        (Role::Client2, ClientConfig::new("intruder.example")),
        // Another IKE suite.
        (
            Role::Client,
            ClientConfig::new("client1.example").suite(Suite::AES256_SHA256_MODP2048),
        ),
    ];
    for (role, cfg) in &attempts {
        let client = Charon::start_client(&topo, *role, cfg);
        let out = client.initiate(CLIENT_CHILD);
        assert!(!out.success(), "a failed login succeeded:\n{out}");
        client.stop();
    }
    let wanted = [
        "IPsec server up name=\"interop\" pool=10.0.0.0/24 local_subnets=192.168.0.0/24 \
         ike=aes128-sha1-modp1024 esp=aes128-sha1-modp1024-noesn",
        "psk_from=the config file's psk",
        "IKE_AUTH of identity client1.example failed: PSK mismatch",
        "identity mismatch: the client sent IDi FQDN intruder.example, remote_id expects FQDN client1.example",
        "no acceptable IKE proposal in IKE_SA_INIT: the client offered aes256-sha256-modp2048; this server accepts aes128-sha1-modp1024",
    ];
    let log = common::poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
        let log = std::fs::read_to_string(&gw.log).unwrap_or_default();
        wanted.iter().all(|w| log.contains(w)).then_some(log)
    })
    .unwrap_or_else(|| {
        let log = std::fs::read_to_string(&gw.log).unwrap_or_default();
        let missing: Vec<_> = wanted.iter().filter(|w| !log.contains(*w)).collect();
        panic!("missing in the daemon's log: {missing:?}")
    });
    for line in log.lines().filter(|l| {
        l.contains("IPsec server up") || l.contains("refused:") || l.contains("refused IKE")
    }) {
        eprintln!("[{}] {line}", topo.tag);
    }
    assert!(
        !log.contains(common::PSK) && !log.contains("not-the-psk"),
        "a PSK in the daemon's log"
    );
}

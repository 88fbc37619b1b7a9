//! `ipsec-server loadgen --data-to`: after their handshakes the load generator's clients send
//! UDP through their tunnels (ESP sealed in the load generator, one source port per client),
//! and the LAN host behind a real `ipsec-server run` receives exactly what the load generator
//! says it sent: per client (by virtual IP) the same number of datagrams, decrypted, of the
//! length asked for. Root; namespaces per test (`tests/common/mod.rs`).
// Test code: waits are bounded by the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::gateway::Daemon;
use common::net::sa;
use common::topo::addr;
use common::*;

const CLIENTS: usize = 3;
const PACKETS: u64 = 25;
/// Inner IP packet length: IPv4 (20) + UDP (8) + 272 bytes of payload.
const LEN: usize = 300;
const PORT: u16 = 5599;

/// `loadgen: data client=I vip=V packets=P bytes=B` lines: virtual IP → (packets, bytes).
fn data_lines(stdout: &str) -> HashMap<Ipv4Addr, (u64, u64)> {
    let field = |line: &str, key: &str| -> String {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
            .to_string()
    };
    stdout
        .lines()
        .filter(|l| l.starts_with("loadgen: data client="))
        .map(|l| {
            (
                field(l, "vip=").parse().unwrap(),
                (
                    field(l, "packets=").parse().unwrap(),
                    field(l, "bytes=").parse().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs root: network namespaces, TUN"]
fn loadgen_data_arrives_decrypted_and_counted() {
    let topo = Topology::new("lgd", TopoOpts::default());
    let cfg = GatewayConfig {
        gateway_extra: vec!["dpd_interval = 0".into()],
        ..GatewayConfig::default()
    };
    let _gw = Gateway::start_kind(GatewayKind::IpsecServer, &topo, &cfg);
    let lan = UdpServer::start(topo.ns(Role::Lan), sa(addr::LAN_HOST, PORT), false);

    let count = CLIENTS.to_string();
    let packets = PACKETS.to_string();
    let len = LEN.to_string();
    let to = format!("{}:{PORT}", addr::LAN_HOST);
    let target = addr::GW_OUTSIDE.to_string();
    // Window 1: the gateway's default [limits] ask one address for cookies above 3 half-open.
    let out = topo.exec_timeout(
        Role::Client,
        Daemon::BIN,
        &[
            "loadgen",
            "--target",
            &target,
            "--count",
            &count,
            "--window",
            "1",
            "--psk",
            PSK,
            "--id-prefix",
            "lgd",
            "--hold",
            "0",
            "--data-to",
            &to,
            "--data-packets",
            &packets,
            "--data-len",
            &len,
            "--data-mbps",
            "2",
            "--data-secs",
            "30",
        ],
        Duration::from_secs(60),
    );
    assert!(out.success(), "{out}");
    assert!(
        out.stdout
            .contains(&format!("established={CLIENTS} failed=0")),
        "{out}"
    );
    let sent = data_lines(&out.stdout);
    assert_eq!(sent.len(), CLIENTS, "one data line per client:\n{out}");
    for (vip, (p, b)) in &sent {
        assert_eq!(
            (*p, *b),
            (PACKETS, PACKETS * LEN as u64),
            "client {vip}:\n{out}"
        );
    }
    assert!(
        out.stdout.contains(&format!(
            "data total clients={CLIENTS} packets={} bytes={}",
            CLIENTS as u64 * PACKETS,
            CLIENTS as u64 * PACKETS * LEN as u64
        )),
        "{out}"
    );

    // Everything sent arrives (the veths lose nothing at 2 Mbit/s), decrypted: plain UDP
    // from each client's virtual IP with the payload the load generator put in.
    let want = CLIENTS * PACKETS as usize;
    let got = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let r = lan.received();
        (r.len() >= want).then_some(r)
    })
    .unwrap_or_else(|| panic!("{} of {want} datagrams arrived", lan.received().len()));
    std::thread::sleep(Duration::from_millis(300));
    let got_now = lan.received();
    assert_eq!(got_now.len(), got.len(), "more than was sent arrived");
    let mut per_vip: HashMap<Ipv4Addr, u64> = HashMap::new();
    for d in &got_now {
        let IpAddr::V4(src) = d.from.ip() else {
            panic!("IPv6 source {}", d.from)
        };
        assert_eq!(
            d.from.port(),
            9000,
            "the load generator's inner source port"
        );
        assert_eq!(d.payload.len(), LEN - 28, "payload length from {src}");
        assert!(d.payload.iter().all(|&b| b == 0), "payload from {src}");
        *per_vip.entry(src).or_default() += 1;
    }
    let sent_per_vip: HashMap<Ipv4Addr, u64> = sent.iter().map(|(v, (p, _))| (*v, *p)).collect();
    assert_eq!(per_vip, sent_per_vip, "per client: arrived vs sent");
}

//! What a gateway address gives a client (`gateway.listen_addrs`, `gateway.force_udp_encap`):
//! every listen address is a full gateway (IKE on 500 and 4500, ESP, replies from the address
//! the client talks to), and a client that is not behind a NAT is still made to encapsulate
//! ESP in UDP, the only ESP the data plane receives. Needs root; uses the interop harness
//! (`tests/common`), with ipsec-server as the gateway.
// Test code: deadlines over real processes read the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use common::flows::{assert_ping, connect};
use common::gateway::Daemon;
use common::topo::addr;
use common::*;

/// The test gateway's config with `listen_addrs` and extra `[gateway]` lines.
fn daemon_toml(topo: &Topology, listen: &[std::net::Ipv4Addr], extra: &[&str]) -> String {
    let state = topo.dir().join("ipsec-server/state");
    std::fs::create_dir_all(&state).expect("create state dir");
    let cfg = GatewayConfig {
        gateway_extra: extra.iter().map(|l| l.to_string()).collect(),
        ..GatewayConfig::default()
    };
    let toml = cfg.to_toml(state.to_str().unwrap());
    let listed: Vec<String> = listen.iter().map(|a| format!("\"{a}\"")).collect();
    let line = format!("listen_addrs = [{}]", listed.join(", "));
    assert!(toml.contains("listen_addrs = [\"0.0.0.0\"]"), "{toml}");
    toml.replace("listen_addrs = [\"0.0.0.0\"]", &line)
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn each_listen_address_is_a_full_gateway() {
    let topo = Topology::new(
        "two",
        TopoOpts {
            second_client: true,
            second_gateway_addr: true,
            ..TopoOpts::default()
        },
    );
    let toml = daemon_toml(&topo, &[addr::GW_OUTSIDE, addr::GW_OUTSIDE2], &[]);
    let gw = Daemon::start(&topo, &toml);
    // UDP 500 and 4500 on both addresses, nothing on the wildcard.
    let ss = topo.exec(Role::Gateway, "ss", &["-Hlun"]).stdout;
    for a in [addr::GW_OUTSIDE, addr::GW_OUTSIDE2] {
        for port in [500, 4500] {
            let want = format!("{a}:{port}");
            assert!(
                ss.lines()
                    .any(|l| l.split_whitespace().nth(3) == Some(want.as_str())),
                "UDP {want} not bound:\n{ss}"
            );
        }
    }
    // One client on each address.
    let mut clients = Vec::new();
    for (role, gw_addr, id) in [
        (Role::Client, addr::GW_OUTSIDE, "client1.example"),
        (Role::Client2, addr::GW_OUTSIDE2, "client2.example"),
    ] {
        let cfg = ClientConfig {
            remote_addr: gw_addr,
            ..ClientConfig::new(id)
        };
        let (charon, vip) = connect(&topo, role, &cfg);
        // IKE answers (and, after the float, ESP) came from the address dialled, on 4500.
        let eps = charon.remote_endpoints();
        assert_eq!(
            eps,
            vec![format!("{gw_addr}[4500]")],
            "{role:?}: the gateway is seen at {eps:?}"
        );
        clients.push((role, vip, charon));
    }
    for (role, vip, charon) in &clients {
        assert_ping(&topo, *role, *vip);
        let c = charon.child_counters().expect("Child SA counters");
        assert!(
            c.packets_in >= 3 && c.packets_out >= 3,
            "{role:?}: Child SA counters {c:?}"
        );
    }
    assert!(
        topo.exited(gw.pid).is_none(),
        "ipsec-server has ended; see its log"
    );
}

/// Connects a client on the gateway's link (no NAT anywhere; strongSwan's `encap = no`, its
/// default) and returns whether it concluded that the gateway is behind a NAT, after
/// checking that traffic flows.
fn client_sees_gateway_behind_nat(tag: &str, gateway_extra: &[&str]) -> bool {
    let topo = Topology::new(tag, TopoOpts::default());
    let toml = daemon_toml(&topo, &[std::net::Ipv4Addr::UNSPECIFIED], gateway_extra);
    let gw = Daemon::start(&topo, &toml);
    let cfg = ClientConfig::new("client1.example").conn("encap = no");
    let (charon, vip) = connect(&topo, Role::Client, &cfg);
    assert_ping(&topo, Role::Client, vip);
    // kernel-libipsec encapsulates anyway (it fakes its own NAT-D, docs/STRONGSWAN.md); what the
    // client concluded about the gateway is in its log: strongSwan's ike_natd logs this line
    // when our NAT_DETECTION_SOURCE_IP does not match the address it sent to.
    let log = charon.log_text();
    assert!(
        charon.remote_endpoints() == vec![format!("{}[4500]", addr::GW_OUTSIDE)],
        "the client did not float to 4500: {:?}",
        charon.remote_endpoints()
    );
    assert!(
        topo.exited(gw.pid).is_none(),
        "ipsec-server has ended; see its log"
    );
    log.contains("remote host is behind NAT")
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn a_client_without_nat_is_told_of_one_by_default() {
    assert!(
        client_sees_gateway_behind_nat("enc", &[]),
        "force_udp_encap (default true): the client should believe the gateway is behind NAT"
    );
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn honest_nat_detection_with_force_udp_encap_false() {
    assert!(
        !client_sees_gateway_behind_nat("hon", &["force_udp_encap = false"]),
        "force_udp_encap = false: the client should see the gateway's real address"
    );
}

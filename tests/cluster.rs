//! Cluster mode on etcd, in network namespaces (root; feature `cluster`): a real etcd
//! started by each test (its own data dir in the test's temp dir, killed by PID at the end)
//! on the LAN host, two `ipsec-server` nodes sharing one pool, strongSwan clients and the
//! load generator. README, "Running several gateways"; ARCHITECTURE.md §6.
//!
//! ```text
//!  client, client2 ── bridge (gw ns) 172.29.1.1 node1 │ 192.168.0.1 ─┐
//!                         └── 172.29.1.5 node2 (gw2 ns) │ 192.168.0.2 ─┴─ LAN bridge: 192.168.0.10
//!  the service address 172.29.1.100 (floating) is on node1, moved to node2 on failover   etcd :2379
//! ```
#![cfg(feature = "cluster")]
// Test code: deadlines and timings read the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::charon::{CLIENT_CHILD, CLIENT_CONN};
use common::flows::ping;
use common::gateway::Daemon;
use common::topo::addr;
use common::{poll_until, Charon, ClientConfig, GatewayConfig, Role, TopoOpts, Topology};

/// The address clients dial: a floating IP, on node 1 first.
const SERVICE: Ipv4Addr = Ipv4Addr::new(172, 29, 1, 100);
const ETCD: &str = "http://192.168.0.10:2379";
/// The nodes' lease TTL (the smallest allowed): a dead node's addresses return after it.
const TTL: u64 = 8;
const PREFIX: &str = "/ipsec-server";

fn cluster_topology(tag: &str) -> Topology {
    Topology::new(
        tag,
        TopoOpts {
            second_client: true,
            cluster: true,
            ..TopoOpts::default()
        },
    )
}

/// etcd on the LAN host, its data in the test's temp dir; returns its PID.
fn start_etcd(topo: &Topology) -> u32 {
    let data = topo.dir().join("etcd-data");
    let peer = "http://127.0.0.1:2380";
    let pid = topo.spawn(
        Role::Lan,
        "etcd",
        "etcd",
        &[
            "--name",
            "t",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen-client-urls",
            ETCD,
            "--advertise-client-urls",
            ETCD,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            &format!("t={peer}"),
        ],
        &[],
    );
    topo.add_log("etcd", &topo.dir().join("etcd.log"));
    assert!(
        topo.wait_listening(Role::Lan, "tcp", 2379, Duration::from_secs(20)),
        "etcd did not listen on 2379"
    );
    pid
}

/// The keys (and values) under `prefix` in etcd, read through its JSON gateway.
fn etcd_keys(topo: &Topology, prefix: &str) -> Vec<(String, String)> {
    let script = r#"
import base64, json, sys, urllib.request
p = sys.argv[2].encode()
end = p[:-1] + bytes([p[-1] + 1])
req = json.dumps({"key": base64.b64encode(p).decode(), "range_end": base64.b64encode(end).decode()})
r = urllib.request.urlopen(sys.argv[1] + "/v3/kv/range", req.encode(), timeout=5)
for kv in json.load(r).get("kvs", []):
    print(base64.b64decode(kv["key"]).decode(), base64.b64decode(kv.get("value", "")).decode())
"#;
    let out = topo
        .exec(Role::Lan, "python3", &["-c", script, ETCD, prefix])
        .expect_ok("reading etcd");
    out.stdout
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The addresses held in etcd, by node.
fn held(topo: &Topology) -> Vec<(Ipv4Addr, String)> {
    let prefix = format!("{PREFIX}/pool/10.0.0.0-24/held/");
    etcd_keys(topo, &prefix)
        .into_iter()
        .map(|(k, node)| {
            let ip = k.rsplit('/').next().unwrap().parse().expect("held/IP");
            (ip, node)
        })
        .collect()
}

/// How a node is set up.
#[derive(Clone, Copy, Default)]
struct NodeOpts {
    /// `[limits]` raised for the load generator.
    load: bool,
    /// Routed mode: no masquerade, a `route_hook` that routes each client's /32 on the LAN
    /// host via the node holding it.
    routed: bool,
}

/// The route hook of the routed test: the LAN host's route to ADDR via the node's LAN
/// address (`down` removes only this node's route).
fn route_hook(topo: &Topology) -> String {
    let path = topo.dir().join("route-hook");
    let lan = topo.ns(Role::Lan);
    let script = format!(
        "#!/bin/sh\ncase \"$3\" in node1) via={};; node2) via={};; *) exit 2;; esac\n\
         case \"$1\" in\n up) exec ip netns exec {lan} ip route replace \"$2/32\" via $via;;\n \
         down) exec ip netns exec {lan} ip route del \"$2/32\" via $via;;\nesac\nexit 2\n",
        addr::GW_LAN,
        addr::GW2_LAN
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

/// A node's config: the interop gateway with `[cluster]` and `[metrics]`.
fn node_toml(topo: &Topology, node: &str, opts: NodeOpts) -> String {
    let state = topo.dir().join(format!("{node}-state"));
    let mut cfg = GatewayConfig::default();
    cfg.gateway_extra
        .push(format!("masquerade = {}", !opts.routed));
    cfg.gateway_extra.push("dpd_interval = 2".into());
    let mut toml = cfg.to_toml(state.to_str().unwrap());
    if opts.load {
        toml.push_str(
            "\n[limits]\ncookie_threshold = 10000\ncookie_threshold_ip = 10000\n\
             block_threshold_ip = 10000\nhalf_open_max = 20000\ndh_per_second_cookie = 100000\n",
        );
    }
    toml.push_str(&format!(
        "\n[metrics]\nlisten = \"127.0.0.1:9571\"\n\n[cluster]\nendpoints = [\"{ETCD}\"]\n\
         node_id = \"{node}\"\nlease_ttl = {TTL}\nprefix = \"{PREFIX}\"\n"
    ));
    if opts.routed {
        toml.push_str(&format!("route_hook = \"{}\"\n", route_hook(topo)));
    }
    toml
}

/// Starts node `name` in `role` and waits (≤ 15 s) until it joined the cluster.
fn start_node(topo: &Topology, role: Role, name: &str, opts: NodeOpts) -> Daemon {
    let toml = node_toml(topo, name, opts);
    let d = Daemon::start_in(topo, role, name, &toml, "info", &[]);
    let joined = poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
        log(&d).contains("cluster: joined").then_some(())
    });
    assert!(joined.is_some(), "{name} did not join the cluster");
    d
}

/// A cluster topology with its etcd and both nodes started with `opts`.
fn two_nodes(tag: &str, opts: NodeOpts) -> (Topology, Daemon, Daemon) {
    let topo = cluster_topology(tag);
    start_etcd(&topo);
    let n1 = start_node(&topo, Role::Gateway, "node1", opts);
    let n2 = start_node(&topo, Role::Gateway2, "node2", opts);
    (topo, n1, n2)
}

fn log(d: &Daemon) -> String {
    std::fs::read_to_string(&d.log).unwrap_or_default()
}

/// The virtual IPs of a node's established IKE SAs (`ipsec-server status --json`).
fn node_vips(topo: &Topology, role: Role, d: &Daemon) -> Vec<Ipv4Addr> {
    let out = topo
        .exec(
            role,
            Daemon::BIN,
            &["status", "--json", "--config", d.config.to_str().unwrap()],
        )
        .expect_ok("ipsec-server status --json");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("status JSON");
    v["server"]["sas"]
        .as_array()
        .map(|sas| {
            sas.iter()
                .filter_map(|sa| sa["vip"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A metric of a node's `/metrics`.
fn metric(topo: &Topology, role: Role, name: &str) -> Option<f64> {
    let get = "import urllib.request as u; \
               print(u.urlopen('http://127.0.0.1:9571/metrics', timeout=5).read().decode())";
    let out = topo.exec(role, "python3", &["-c", get]);
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Puts the service address on node 1's outside bridge; returns the bridge.
fn service_on_node1(topo: &Topology) -> String {
    let br = iface_with(topo, Role::Gateway, addr::GW_OUTSIDE);
    topo.exec(
        Role::Gateway,
        "ip",
        &["addr", "add", &format!("{SERVICE}/24"), "dev", &br],
    )
    .expect_ok("service address on node1");
    br
}

/// The interface of namespace `role` that holds `addr`.
fn iface_with(topo: &Topology, role: Role, addr: Ipv4Addr) -> String {
    let out = topo.exec(role, "ip", &["-o", "-4", "addr", "show"]);
    out.stdout
        .lines()
        .find(|l| l.contains(&format!(" {addr}/")))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no interface with {addr} in {role:?}:\n{out}"))
        .to_string()
}

/// A client dialing the service address, that notices a dead gateway within seconds
/// (DPD every second, short retransmissions) and connects again (`dpd_action = restart`).
fn client(topo: &Topology, role: Role, id: &str) -> (Charon, Ipv4Addr) {
    common::flows::connect(topo, role, &client_config(id))
}

/// [`client`]'s configuration, dialing the service address.
fn client_config(id: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new(id)
        .conn("dpd_delay = 1s")
        .conn("keyingtries = 0")
        .child("dpd_action = restart")
        .charon("retransmit_timeout = 0.5")
        .charon("retransmit_base = 1.2")
        .charon("retransmit_tries = 2");
    cfg.remote_addr = SERVICE;
    cfg
}

/// Polls until `role` pings the LAN host through its tunnel (its VIP may have changed);
/// returns the new VIP.
fn wait_ping(topo: &Topology, role: Role, charon: &Charon, within: Duration) -> Option<Ipv4Addr> {
    poll_until(within, Duration::from_millis(200), || {
        let vip = charon.virtual_ip()?;
        ping_once(topo, role, vip).success().then_some(vip)
    })
}

/// One ping from `vip` to the LAN host, 1 s to answer.
fn ping_once(topo: &Topology, role: Role, vip: Ipv4Addr) -> common::CmdOutput {
    let (vip, lan) = (vip.to_string(), addr::LAN_HOST.to_string());
    topo.exec(role, "ping", &["-c", "1", "-W", "1", "-I", &vip, &lan])
}

#[test]
#[ignore = "needs root: network namespaces, etcd, strongSwan"]
fn two_nodes_starting_at_once_never_lease_the_same_address() {
    let load = NodeOpts {
        load: true,
        ..NodeOpts::default()
    };
    let (topo, n1, n2) = two_nodes("cl1", load);
    // 2 × 60 clients into a pool of 254 at once: the nodes race for the same fresh
    // addresses (each scan starts at a random one, the transactions decide).
    let per_node = 60u64;
    let loadgen = |role: Role, target: Ipv4Addr, prefix: &str| {
        let c = per_node.to_string();
        let t = target.to_string();
        let p = prefix.to_string();
        let ns = topo.ns(role).to_string();
        std::thread::spawn(move || {
            let mut cmd = std::process::Command::new("ip");
            cmd.args(["netns", "exec", &ns, Daemon::BIN, "loadgen", "--target", &t])
                .args(["--count", &c, "--rate", "200", "--window", "16"])
                .args(["--psk", common::PSK, "--id-prefix", &p, "--hold", "20"]);
            common::proc::run(cmd, Duration::from_secs(60))
        })
    };
    let a = loadgen(Role::Client, addr::GW_OUTSIDE, "a-");
    let b = loadgen(Role::Client2, addr::GW2_OUTSIDE, "b-");
    // Both runs hold their SAs for 20 s: read while they do.
    let all = poll_until(Duration::from_secs(40), Duration::from_millis(500), || {
        let (v1, v2) = (
            node_vips(&topo, Role::Gateway, &n1),
            node_vips(&topo, Role::Gateway2, &n2),
        );
        (v1.len() + v2.len() == 2 * per_node as usize).then_some((v1, v2))
    });
    let (v1, v2) = all.unwrap_or_else(|| {
        panic!(
            "not every client connected: node1 {} node2 {}",
            node_vips(&topo, Role::Gateway, &n1).len(),
            node_vips(&topo, Role::Gateway2, &n2).len()
        )
    });
    let mut seen = HashSet::new();
    for vip in v1.iter().chain(&v2) {
        assert!(
            seen.insert(*vip),
            "{vip} is leased twice (node1 {v1:?}, node2 {v2:?})"
        );
    }
    // etcd agrees: every address held once, by the node that serves it.
    let held = held(&topo);
    assert_eq!(held.len(), 2 * per_node as usize, "{held:?}");
    for (ip, node) in &held {
        let on = if v1.contains(ip) { "node1" } else { "node2" };
        assert_eq!(node, on, "{ip} held by {node} in etcd, served by {on}");
    }
    eprintln!(
        "[cl1] {} clients on node1, {} on node2, {} distinct addresses",
        v1.len(),
        v2.len(),
        seen.len()
    );
    let _ = a.join();
    let _ = b.join();
}

#[test]
#[ignore = "needs root: network namespaces, etcd, strongSwan"]
fn kill_9_of_a_node_moves_its_clients_to_the_other() {
    let (topo, n1, n2) = two_nodes("cl2", NodeOpts::default());
    let br = service_on_node1(&topo);
    let (c1, vip1) = client(&topo, Role::Client, "client1.example");
    let (c2, vip2) = client(&topo, Role::Client2, "client2.example");
    assert_ne!(vip1, vip2);
    for (role, vip) in [(Role::Client, vip1), (Role::Client2, vip2)] {
        let (ok, out) = ping(&topo, role, vip);
        assert!(ok, "{role:?} through node1:\n{out}");
    }
    let before: HashSet<_> = node_vips(&topo, Role::Gateway, &n1).into_iter().collect();
    assert_eq!(before, HashSet::from([vip1, vip2]));

    // kill -9 node1; the floating address moves to node2 (what keepalived would do, with
    // its gratuitous ARP: the clients' neighbour entries are flushed).
    let killed = Instant::now();
    topo.exec(Role::Gateway, "kill", &["-9", &n1.pid.to_string()])
        .expect_ok("kill -9 node1");
    topo.exec(
        Role::Gateway,
        "ip",
        &["addr", "del", &format!("{SERVICE}/24"), "dev", &br],
    )
    .expect_ok("service address off node1");
    let eth2 = iface_with(&topo, Role::Gateway2, addr::GW2_OUTSIDE);
    topo.exec(
        Role::Gateway2,
        "ip",
        &["addr", "add", &format!("{SERVICE}/24"), "dev", &eth2],
    )
    .expect_ok("service address on node2");
    for role in [Role::Client, Role::Client2] {
        topo.exec(role, "ip", &["neigh", "flush", "all"]);
    }
    let mut timings = Vec::new();
    for (role, charon) in [(Role::Client, &c1), (Role::Client2, &c2)] {
        let vip = wait_ping(&topo, role, charon, Duration::from_secs(45))
            .unwrap_or_else(|| panic!("{role:?} does not ping through node2 within 45 s"));
        timings.push((role, vip, killed.elapsed()));
    }
    for (role, vip, t) in &timings {
        eprintln!("[cl2] failover: {role:?} pings again as {vip} {t:.1?} after kill -9");
    }
    let on2: HashSet<_> = node_vips(&topo, Role::Gateway2, &n2).into_iter().collect();
    assert_eq!(on2.len(), 2, "both clients on node2: {on2:?}");
    // node1's addresses were still held by its lease when the clients came back (within
    // the TTL they got others); after the TTL etcd has forgotten them.
    let gone = poll_until(
        Duration::from_secs(TTL + 5),
        Duration::from_millis(200),
        || {
            held(&topo)
                .iter()
                .all(|(_, node)| node == "node2")
                .then_some(killed.elapsed())
        },
    );
    let gone = gone.expect("node1's addresses return to the pool after the TTL");
    eprintln!(
        "[cl2] node1's addresses back in the pool {gone:.1?} after kill -9 (lease_ttl {TTL} s)"
    );
    assert_eq!(held(&topo).len(), 2);
}

#[test]
#[ignore = "needs root: network namespaces, etcd, strongSwan"]
fn a_node_cut_off_from_etcd_fences_itself_and_resumes() {
    let topo = cluster_topology("cl3");
    start_etcd(&topo);
    let n1 = start_node(&topo, Role::Gateway, "node1", NodeOpts::default());
    service_on_node1(&topo);
    let (c1, vip) = client(&topo, Role::Client, "client1.example");
    assert_eq!(held(&topo), vec![(vip, "node1".to_string())]);
    assert_eq!(
        metric(&topo, Role::Gateway, "ipsec_server_cluster_lease_valid"),
        Some(1.0)
    );

    // Partition node1 from etcd (ESP and the LAN still flow).
    let rules = "table inet cl3_partition {\n chain out {\n  type filter hook output priority 0; policy accept;\n  ip daddr 192.168.0.10 tcp dport 2379 drop\n }\n}\n";
    let path = topo.dir().join("partition.nft");
    std::fs::write(&path, rules).unwrap();
    let cut = Instant::now();
    topo.exec(Role::Gateway, "nft", &["-f", path.to_str().unwrap()])
        .expect_ok("partition");
    // While the lease is surely valid the tunnel works...
    let once = ping_once(&topo, Role::Client, vip);
    assert!(
        once.success(),
        "the tunnel works while the lease is valid:\n{once}"
    );
    // ...then node1 fences: every SA deleted, before etcd frees the address.
    let fenced = poll_until(
        Duration::from_secs(TTL + 5),
        Duration::from_millis(100),
        || {
            let sas = node_vips(&topo, Role::Gateway, &n1).len();
            let held_now = held(&topo);
            if !held_now.iter().any(|(a, _)| *a == vip) {
                assert_eq!(
                    sas, 0,
                    "etcd freed {vip} while node1 still had an SA for it"
                );
            }
            (sas == 0).then(|| cut.elapsed())
        },
    )
    .expect("node1 fences itself within the TTL");
    assert!(log(&n1).contains("cluster: fenced"), "the fence is logged");
    assert!(
        log(&n1).contains("cluster: etcd unreachable"),
        "the cause is logged"
    );
    assert_eq!(
        metric(&topo, Role::Gateway, "ipsec_server_cluster_lease_valid"),
        Some(0.0)
    );
    eprintln!("[cl3] node1 fenced {fenced:.1?} after the partition (lease_ttl {TTL} s)");
    let (ok, _) = ping(&topo, Role::Client, vip);
    assert!(!ok, "no forwarding for {vip} once fenced");

    // A new client is refused while fenced: logged and counted.
    let c2 = Charon::start_client(&topo, Role::Client2, &client_config("client2.example"));
    let refused = c2.initiate(CLIENT_CHILD);
    assert!(
        !refused.success(),
        "a client is refused while fenced:\n{refused}"
    );
    let counted = metric(
        &topo,
        Role::Gateway,
        "ipsec_server_cluster_address_refusals_total",
    );
    assert!(
        counted.is_some_and(|n| n >= 1.0),
        "refusals counted: {counted:?}"
    );
    assert!(
        log(&n1).contains("refused a virtual IP"),
        "the refusal is logged"
    );

    // etcd back: the lease is valid again (renewed, or a new one), new clients are served.
    topo.exec(
        Role::Gateway,
        "nft",
        &["delete", "table", "inet", "cl3_partition"],
    )
    .expect_ok("heal");
    let healed = Instant::now();
    let valid = poll_until(Duration::from_secs(15), Duration::from_millis(200), || {
        (metric(&topo, Role::Gateway, "ipsec_server_cluster_lease_valid") == Some(1.0))
            .then(|| healed.elapsed())
    })
    .expect("the lease is valid again once etcd is back");
    for (role, charon) in [(Role::Client, &c1), (Role::Client2, &c2)] {
        charon.swanctl(&[
            "--terminate",
            "--ike",
            CLIENT_CONN,
            "--force",
            "--timeout",
            "5",
        ]);
        charon.connect();
        let vip = charon.virtual_ip().expect("a virtual IP");
        let (ok, out) = ping(&topo, role, vip);
        assert!(ok, "{role:?} served again:\n{out}");
        assert!(held(&topo).iter().any(|(a, n)| *a == vip && n == "node1"));
    }
    eprintln!("[cl3] lease valid again {valid:.1?} after etcd came back; both clients served");
}

#[test]
#[ignore = "needs root: network namespaces, etcd, strongSwan"]
fn routed_mode_reaches_each_client_through_the_node_holding_it() {
    let routed = NodeOpts {
        routed: true,
        ..NodeOpts::default()
    };
    let (topo, _n1, _n2) = two_nodes("cl4", routed);
    // Each client on its own node (no floating address here).
    let mut cfg1 = ClientConfig::new("client1.example");
    cfg1.remote_addr = addr::GW_OUTSIDE;
    let mut cfg2 = ClientConfig::new("client2.example");
    cfg2.remote_addr = addr::GW2_OUTSIDE;
    let (_c1, vip1) = common::flows::connect(&topo, Role::Client, &cfg1);
    let (c2, vip2) = common::flows::connect(&topo, Role::Client2, &cfg2);
    // The LAN host (default route via node1) has a /32 per client via its node, set by
    // the hook; no masquerade: it sees the clients' own addresses.
    let want = [
        format!("{vip1} via {}", addr::GW_LAN),
        format!("{vip2} via {}", addr::GW2_LAN),
    ];
    let routed = poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
        let routes = topo.exec(Role::Lan, "ip", &["route"]).stdout;
        want.iter()
            .all(|w| routes.contains(w.as_str()))
            .then_some(())
    });
    assert!(
        routed.is_some(),
        "the hook routes each client via its node: {want:?}\n{}",
        topo.exec(Role::Lan, "ip", &["route"]).stdout
    );
    for (role, vip) in [(Role::Client, vip1), (Role::Client2, vip2)] {
        let (ok, out) = ping(&topo, role, vip);
        assert!(
            ok,
            "{role:?} ({vip}) through its node in routed mode:\n{out}"
        );
    }
    // Without its route, client2's answers take the default route to node1, which does not
    // hold it: the route is what makes it work.
    topo.exec(Role::Lan, "ip", &["route", "del", &format!("{vip2}/32")])
        .expect_ok("removing client2's route");
    let (ok, _) = ping(&topo, Role::Client2, vip2);
    assert!(!ok, "client2 is reached only through node2");
    // Disconnecting runs the hook's "down" on node2: no route is left for the address.
    topo.exec(
        Role::Lan,
        "ip",
        &[
            "route",
            "replace",
            &format!("{vip2}/32"),
            "via",
            &addr::GW2_LAN.to_string(),
        ],
    )
    .expect_ok("route back");
    c2.swanctl(&["--terminate", "--ike", CLIENT_CONN, "--timeout", "10"]);
    let gone = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let routes = topo.exec(Role::Lan, "ip", &["route"]).stdout;
        (!routes.contains(&format!("{vip2} "))).then_some(())
    });
    assert!(
        gone.is_some(),
        "the hook's down removes node2's route for {vip2}"
    );
}

/// The control API of the `[api]` nodes (each in its own namespace).
const API: &str = "127.0.0.1:18081";
const API_AK: &str = "capi-key";
const API_SECRET: &str = "capi-secret-0123456789";
const GW_ID: &str = "vpn-interop01";

/// An `[api]` node's config: [`node_toml`] without `[ipsec_server]` (the API defines it),
/// with `[api]`.
fn api_node_toml(topo: &Topology, node: &str) -> String {
    let full = node_toml(topo, node, NodeOpts::default());
    let (gateway, rest) = full.split_once("[ipsec_server]").expect("[ipsec_server]");
    let cluster = &rest[rest.find("\n[metrics]").expect("[metrics]")..];
    format!(
        "{gateway}{cluster}\n[api]\nlisten = \"{API}\"\n[[api.access_keys]]\n\
         access_key_id = \"{API_AK}\"\naccess_key_secret = \"{API_SECRET}\"\n"
    )
}

/// Starts `[api]` node `name` in `role` with no server yet (nothing on UDP 500): waits
/// (≤ 15 s) until it joined the cluster and its API listens.
fn start_api_node(topo: &Topology, role: Role, name: &str) -> Daemon {
    let dir = topo.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, api_node_toml(topo, name)).unwrap();
    let cfg = config.to_str().unwrap();
    let rust_log = [("RUST_LOG", "info")];
    let pid = topo.spawn(
        role,
        name,
        Daemon::BIN,
        &["run", "--config", cfg],
        &rust_log,
    );
    let d = Daemon::started(pid, config.clone(), topo.dir().join(format!("{name}.log")));
    topo.add_log(&format!("{name} config"), &config);
    let port: u16 = API.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        topo.wait_listening(role, "tcp", port, Duration::from_secs(15)),
        "{name}'s API does not listen"
    );
    let joined = poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
        log(&d).contains("cluster: joined").then_some(())
    });
    assert!(joined.is_some(), "{name} did not join the cluster");
    d
}

/// One API call on the node in `role`, signed with RPC signature v1 as
/// `aliyun-python-sdk-core` signs it: the HTTP status and the JSON answer.
fn api(topo: &Topology, role: Role, params: &[(&str, &str)]) -> (u16, serde_json::Value) {
    use hmac::Mac;
    use ipsec_server::api::sign::{base64, format_utc, percent_encode};
    static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nonce = format!(
        "capi-{}-{}",
        std::process::id(),
        NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ts = format_utc(now);
    let fixed = [
        ("AccessKeyId", API_AK),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce.as_str()),
        ("Timestamp", ts.as_str()),
        ("Version", "2016-04-28"),
        ("Format", "JSON"),
        ("RegionId", "local"),
    ];
    let mut enc: Vec<(String, String)> = params
        .iter()
        .chain(&fixed)
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    enc.sort();
    let canon: Vec<String> = enc.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let canon = canon.join("&");
    let to_sign = format!("GET&%2F&{}", percent_encode(&canon));
    let mut mac =
        hmac::Hmac::<sha1::Sha1>::new_from_slice(format!("{API_SECRET}&").as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = base64(&mac.finalize().into_bytes());
    let url = format!("http://{API}/?{canon}&Signature={}", percent_encode(&sig));
    let script = "import sys, urllib.request as u, urllib.error as e\n\
                  try:\n r = u.urlopen(sys.argv[1], timeout=10); print(r.status); print(r.read().decode())\n\
                  except e.HTTPError as x:\n print(x.code); print(x.read().decode())\n";
    let out = topo
        .exec(role, "python3", &["-c", script, &url])
        .expect_ok("an API call");
    let (status, body) = out.stdout.split_once('\n').expect("status and body");
    let body = serde_json::from_str(body.trim()).unwrap_or(serde_json::Value::Null);
    (status.trim().parse().expect("an HTTP status"), body)
}

/// `action` of the gateway on the node in `role`, which must succeed: its answer.
fn gateway_query(topo: &Topology, role: Role, action: &str) -> serde_json::Value {
    let (code, v) = api(topo, role, &[("Action", action), ("VpnGatewayId", GW_ID)]);
    assert_eq!(code, 200, "{action}: {v}");
    v
}

/// DescribeVpnGateway's Status on the node in `role`.
fn gateway_status(topo: &Topology, role: Role) -> String {
    let v = gateway_query(topo, role, "DescribeVpnGateway");
    v["Status"].as_str().expect("Status").to_string()
}

/// Waits (≤ 20 s) until DescribeVpnGateway says `active` on both nodes.
fn wait_active(topo: &Topology) {
    let both = poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
        [Role::Gateway, Role::Gateway2]
            .iter()
            .all(|r| gateway_status(topo, *r) == "active")
            .then_some(())
    });
    assert!(both.is_some(), "the nodes did not both become active");
}

/// ListIpsecServers on the node in `role`: its servers.
fn servers(topo: &Topology, role: Role) -> Vec<serde_json::Value> {
    let v = gateway_query(topo, role, "ListIpsecServers");
    v["IpsecServers"].as_array().expect("IpsecServers").clone()
}

/// What every node must answer alike (not InternetIp: each node's own address).
fn definition(server: &serde_json::Value) -> serde_json::Value {
    let keys = [
        "IpsecServerId",
        "IpsecServerName",
        "CreationTime",
        "LocalSubnet",
        "ClientIpPool",
        "Psk",
        "IkeConfig",
        "IpsecConfig",
        "EffectImmediately",
    ];
    keys.iter()
        .map(|k| (k.to_string(), server[*k].clone()))
        .collect()
}

/// UpdateIpsecServer of `id` on the node in `role` with LocalSubnet `subnets`.
fn update_subnets(
    topo: &Topology,
    role: Role,
    id: &str,
    subnets: &str,
) -> (u16, serde_json::Value) {
    api(
        topo,
        role,
        &[
            ("Action", "UpdateIpsecServer"),
            ("IpsecServerId", id),
            ("LocalSubnet", subnets),
        ],
    )
}

/// A client of the node at `gateway`.
fn client_of(topo: &Topology, role: Role, id: &str, gateway: Ipv4Addr) -> (Charon, Ipv4Addr) {
    let mut cfg = ClientConfig::new(id);
    cfg.remote_addr = gateway;
    common::flows::connect(topo, role, &cfg)
}

#[test]
#[ignore = "needs root: network namespaces, etcd, strongSwan"]
fn an_ipsec_server_made_through_the_api_of_one_node_is_served_by_both() {
    let topo = cluster_topology("capi");
    start_etcd(&topo);
    let n1 = start_api_node(&topo, Role::Gateway, "node1");
    let n2 = start_api_node(&topo, Role::Gateway2, "node2");
    let (a, b) = (Role::Gateway, Role::Gateway2);
    assert!(servers(&topo, a).is_empty() && servers(&topo, b).is_empty());

    // CreateIpsecServer on node1: node2 applies it; `updating` until both have.
    let ike = serde_json::json!({"IkeVersion": "ikev2", "IkeMode": "main", "IkeEncAlg": "aes",
        "IkeAuthAlg": "sha1", "IkePfs": "group2", "IkeLifetime": 86400,
        "LocalId": common::GATEWAY_ID, "RemoteId": ""})
    .to_string();
    let ipsec = serde_json::json!({"IpsecEncAlg": "aes", "IpsecAuthAlg": "sha1",
        "IpsecPfs": "group2", "IpsecLifetime": 86400})
    .to_string();
    let t0 = Instant::now();
    let (code, v) = api(
        &topo,
        a,
        &[
            ("Action", "CreateIpsecServer"),
            ("VpnGatewayId", GW_ID),
            ("LocalSubnet", addr::LOCAL_SUBNET),
            ("ClientIpPool", addr::CLIENT_IP_POOL),
            ("IpSecServerName", "capi"),
            ("PskEnabled", "true"),
            ("Psk", common::PSK),
            ("IkeConfig", &ike),
            ("IpsecConfig", &ipsec),
        ],
    );
    assert_eq!(code, 200, "{v}");
    let id = v["IpsecServerId"]
        .as_str()
        .expect("IpsecServerId")
        .to_string();
    assert_eq!(
        gateway_status(&topo, b),
        "updating",
        "node2 has not applied it yet"
    );
    wait_active(&topo);
    eprintln!(
        "[capi] created on node1, active on both after {:.1?}",
        t0.elapsed()
    );
    let (on_a, on_b) = (servers(&topo, a), servers(&topo, b));
    assert_eq!(on_a.len(), 1);
    assert_eq!(on_a[0]["IpsecServerId"], id.as_str());
    assert_eq!(
        definition(&on_a[0]),
        definition(&on_b[0]),
        "the same answer on both"
    );

    // A client on each node: both serve it, and both count 2 online.
    let (_c1, vip1) = client_of(&topo, Role::Client, "client1.example", addr::GW2_OUTSIDE);
    let (_c2, vip2) = client_of(&topo, Role::Client2, "client2.example", addr::GW_OUTSIDE);
    assert_ne!(vip1, vip2, "one pool across the nodes");
    for (role, vip) in [(Role::Client, vip1), (Role::Client2, vip2)] {
        let (ok, out) = ping(&topo, role, vip);
        assert!(ok, "{role:?}:\n{out}");
    }
    assert_eq!(node_vips(&topo, b, &n2), vec![vip1]);
    assert_eq!(node_vips(&topo, a, &n1), vec![vip2]);
    let counted = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        [a, b]
            .iter()
            .all(|r| servers(&topo, *r)[0]["OnlineClientCount"] == 2)
            .then_some(())
    });
    assert!(
        counted.is_some(),
        "OnlineClientCount is not 2 on both: {:?} {:?}",
        servers(&topo, a)[0]["OnlineClientCount"],
        servers(&topo, b)[0]["OnlineClientCount"]
    );

    // UpdateIpsecServer on node2: node1 applies it (clients stay: no EffectImmediately).
    let subnets = "192.168.0.0/24,192.168.50.0/24";
    let (code, v) = update_subnets(&topo, b, &id, subnets);
    let updated = Instant::now();
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        gateway_status(&topo, a),
        "updating",
        "node1 has not applied it yet"
    );
    wait_active(&topo);
    let (on_a, on_b) = (servers(&topo, a), servers(&topo, b));
    assert_eq!(on_a[0]["LocalSubnet"], subnets);
    assert_eq!(definition(&on_a[0]), definition(&on_b[0]));
    assert_eq!(node_vips(&topo, a, &n1), vec![vip2], "node1's client stays");

    // Two nodes changing at once: etcd's transaction lets one through, the other gets
    // VpnGateway.Configuring (past each node's own CHANGE_INTERVAL of 3 s).
    if let Some(rest) = Duration::from_secs(4).checked_sub(updated.elapsed()) {
        std::thread::sleep(rest);
    }
    let (x, y) = (
        "192.168.0.0/24,192.168.51.0/24",
        "192.168.0.0/24,192.168.52.0/24",
    );
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| update_subnets(&topo, a, &id, x));
        let tb = s.spawn(|| update_subnets(&topo, b, &id, y));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    let codes = [ra.0, rb.0];
    assert_eq!(
        codes.iter().filter(|c| **c == 200).count(),
        1,
        "exactly one wins: {ra:?} {rb:?}"
    );
    let (winner, loser) = if ra.0 == 200 { (x, &rb) } else { (y, &ra) };
    assert_eq!(loser.1["Code"], "VpnGateway.Configuring", "{loser:?}");
    wait_active(&topo);
    for role in [a, b] {
        assert_eq!(servers(&topo, role)[0]["LocalSubnet"], winner, "{role:?}");
    }
    eprintln!(
        "[capi] concurrent updates: {winner} won, the other {}",
        loser.1["Code"]
    );
    let keys = etcd_keys(&topo, &format!("{PREFIX}/api/"));
    for (k, v) in &keys {
        let v = if k.ends_with("/server") {
            format!("({} bytes)", v.len())
        } else {
            v.clone()
        };
        eprintln!("[capi] etcd {k} {v}");
    }
    assert_eq!(
        keys.len(),
        3,
        "the server and one report per node: {keys:?}"
    );

    // DeleteIpsecServer on node1 (after its own CHANGE_INTERVAL): both stop serving.
    let deleted = poll_until(Duration::from_secs(10), Duration::from_millis(500), || {
        let (code, v) = api(
            &topo,
            a,
            &[("Action", "DeleteIpsecServer"), ("IpsecServerId", &id)],
        );
        (code != 409).then_some((code, v))
    });
    let (code, v) = deleted.expect("DeleteIpsecServer kept answering OperationConflict");
    assert_eq!(code, 200, "{v}");
    wait_active(&topo);
    for (role, d) in [(a, &n1), (b, &n2)] {
        assert!(servers(&topo, role).is_empty(), "{role:?} still lists it");
        assert!(
            node_vips(&topo, role, d).is_empty(),
            "{role:?} still serves a client"
        );
    }
    for (role, vip) in [(Role::Client, vip1), (Role::Client2, vip2)] {
        assert!(
            !ping_once(&topo, role, vip).success(),
            "{role:?} still pings"
        );
    }
}

/// The lease (decimal id) etcd binds `key` to, if the key exists and has one.
fn etcd_lease(topo: &Topology, key: &str) -> Option<String> {
    let script = r#"
import base64, json, sys, urllib.request
req = json.dumps({"key": base64.b64encode(sys.argv[2].encode()).decode()})
r = urllib.request.urlopen(sys.argv[1] + "/v3/kv/range", req.encode(), timeout=5)
for kv in json.load(r).get("kvs", []):
    print(kv.get("lease", ""))
"#;
    let out = topo
        .exec(Role::Lan, "python3", &["-c", script, ETCD, key])
        .expect_ok("reading etcd");
    Some(out.stdout.trim().to_string()).filter(|l| !l.is_empty())
}

#[test]
#[ignore = "needs root: network namespaces, etcd, strongSwan"]
fn an_upgraded_node_keeps_its_etcd_lease_and_its_clients() {
    let topo = cluster_topology("cupg");
    start_etcd(&topo);
    let mut n1 = start_node(&topo, Role::Gateway, "node1", NodeOpts::default());
    service_on_node1(&topo);
    let (c1, vip) = client(&topo, Role::Client, "c1");
    assert!(ping_once(&topo, Role::Client, vip).success());
    let node_key = format!("{PREFIX}/nodes/node1");
    let held_key = format!("{PREFIX}/pool/10.0.0.0-24/held/{vip}");
    let lease = etcd_lease(&topo, &node_key).expect("node1's key is bound to its lease");
    assert_eq!(etcd_lease(&topo, &held_key).as_ref(), Some(&lease));

    let up = n1.upgrade(&topo, Role::Gateway);
    assert_eq!(up.ike_sas_kept, Some(1));
    // Longer than the lease TTL: only the new process can have kept the same lease alive,
    // and it still holds the client's address.
    std::thread::sleep(Duration::from_secs(TTL + 2));
    assert_eq!(etcd_lease(&topo, &node_key).as_ref(), Some(&lease));
    assert_eq!(etcd_lease(&topo, &held_key).as_ref(), Some(&lease));
    assert!(held(&topo).contains(&(vip, "node1".to_string())));
    assert!(
        log(&n1).contains("cluster: adopted lease kept alive"),
        "the new process did not adopt the lease"
    );
    assert!(
        !log(&n1).contains("cluster: fenced"),
        "the restored SAs were fenced (deleted) across the upgrade"
    );
    assert_eq!(c1.virtual_ip(), Some(vip), "the client kept its address");
    assert!(ping_once(&topo, Role::Client, vip).success());
    eprintln!(
        "[cupg] lease {lease} kept across the upgrade (switch {} ms)",
        up.switch_ms
    );
    c1.stop();
}

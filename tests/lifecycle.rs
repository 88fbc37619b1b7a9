//! Long-lived tunnels against real strongSwan 5.9 clients: rekeys with PFS while traffic
//! flows, the gateway rekeying for a client that does not, DPD, IKE fragmentation, MOBIKE and
//! a clean terminate; and `ipsec-server client` answering the gateway's DPD. Root; namespaces
//! per test (see `tests/common/mod.rs`). Re-authentication: within `ike_lifetime` though the
//! client rekeys, and within `psk_change_reauth` of a PSK change.
// Test code: the re-authentication deadlines are checked against the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::charon::CLIENT_CONN;
use common::flows::{assert_ping, connect, ping_series};
use common::gateway::Daemon;
use common::topo::addr;
use common::*;

/// The daemon behind `gw` (these tests are about ipsec-server itself).
fn daemon(gw: &Gateway) -> &Daemon {
    match gw {
        Gateway::IpsecServer(d) => d,
        _ => panic!("the lifecycle tests need the ipsec-server gateway"),
    }
}

/// `ipsec-server status` in the gateway namespace.
fn status(topo: &Topology, gw: &Gateway) -> String {
    let cfg = daemon(gw).config.to_str().unwrap().to_string();
    let out = topo.exec(Role::Gateway, Daemon::BIN, &["status", "--config", &cfg]);
    assert!(out.success(), "ipsec-server status:\n{out}");
    out.stdout
}

/// `ipsec-server status --json` in the gateway namespace.
fn status_json(topo: &Topology, gw: &Gateway) -> serde_json::Value {
    let cfg = daemon(gw).config.to_str().unwrap().to_string();
    let out = topo.exec(
        Role::Gateway,
        Daemon::BIN,
        &["status", "--json", "--config", &cfg],
    );
    assert!(out.success(), "ipsec-server status --json:\n{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{out}"))
}

/// `field` of every Child SA of `status --json`, summed.
fn child_sum(s: &serde_json::Value, field: &str) -> u64 {
    children(s).iter().filter_map(|c| c[field].as_u64()).sum()
}

/// Every Child SA of `status --json`.
fn children(s: &serde_json::Value) -> Vec<serde_json::Value> {
    s["server"]["sas"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|sa| sa["children"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn online(topo: &Topology, gw: &Gateway) -> usize {
    let s = status(topo, gw);
    s.lines()
        .find_map(|l| l.strip_prefix("online clients: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no client count in status:\n{s}"))
}

/// Our inbound SPIs as the client lists them (`in  c1234567`), i.e. the client's view.
fn client_spis(charon: &Charon) -> Vec<String> {
    charon
        .list_sas()
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("in  "))
        .filter_map(|l| l.get(..8).map(str::to_string))
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let found = poll_until(timeout, Duration::from_millis(250), || ok().then_some(()));
    assert!(
        found.is_some(),
        "timed out after {timeout:?} waiting for {what}"
    );
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn rekeys_with_pfs_under_traffic() {
    let topo = Topology::new("rky", TopoOpts::default());
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let cfg = ClientConfig::new("client1.example")
        .child("rekey_time = 7s")
        .child("life_time = 30s")
        .child("rand_time = 1s")
        .conn("rekey_time = 13s")
        .conn("rand_time = 1s");
    let (client, vip) = connect(&topo, Role::Client, &cfg);
    let before = client_spis(&client);
    let (sent, received) = ping_series(&topo, Role::Client, vip, 80, 200);
    assert!(
        sent - received <= 2,
        "lost {} of {sent} pings across the rekeys",
        sent - received
    );
    let after = client_spis(&client);
    assert!(
        !after.is_empty() && after != before,
        "Child SA SPIs did not change: {before:?} -> {after:?}"
    );
    let log = gw.log_text();
    assert!(
        log.contains("rekey=true"),
        "no client Child SA rekey in the daemon log"
    );
    assert!(
        log.contains("pfs=true"),
        "the Child SA rekey did not use PFS"
    );
    assert!(
        log.contains("IKE SA rekeyed by the client"),
        "no IKE SA rekey in the daemon log"
    );
    let sas = client.list_sas();
    assert!(
        sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
        "{sas}"
    );
    assert_eq!(
        online(&topo, &gw),
        1,
        "the rekeyed IKE SA replaced the old one"
    );
    assert_ping(&topo, Role::Client, vip);
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn gateway_rekeys_for_a_client_that_does_not() {
    let topo = Topology::new("grk", TopoOpts::default());
    let gw_cfg = GatewayConfig {
        ipsec_lifetime: 12,
        ..GatewayConfig::default()
    };
    let gw = Gateway::start(&topo, &gw_cfg);
    let cfg = ClientConfig::new("client1.example")
        .child("rekey_time = 0")
        .conn("rekey_time = 0");
    let (client, vip) = connect(&topo, Role::Client, &cfg);
    let before = client_spis(&client);
    let (sent, received) = ping_series(&topo, Role::Client, vip, 40, 400);
    assert!(
        sent - received <= 2,
        "lost {} of {sent} pings across the gateway's rekey",
        sent - received
    );
    assert!(
        gw.log_text().contains("Child SA rekeyed by us"),
        "the gateway did not rekey"
    );
    let after = client_spis(&client);
    assert!(
        !after.is_empty() && after != before,
        "Child SA SPIs did not change: {before:?} -> {after:?}"
    );
    assert_ping(&topo, Role::Client, vip);
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn gateway_rekeys_a_child_sa_before_its_sequence_numbers_run_out() {
    // Unlimited lifetime, and a client that never rekeys: only the sequence numbers can
    // trigger this rekey. The test hook starts the first Child SA 30 packets below the
    // threshold (2^31), so the gateway's echo replies cross it within seconds.
    let topo = Topology::new("seq", TopoOpts::default());
    let gw_cfg = GatewayConfig {
        ipsec_lifetime: 0,
        ..GatewayConfig::default()
    };
    let first_seq = ((1u64 << 31) - 30).to_string();
    let gw = Gateway::start_daemon_env(
        &topo,
        &gw_cfg,
        &[("IPSEC_SERVER_TEST_FIRST_SEQ", first_seq.as_str())],
    );
    let cfg = ClientConfig::new("client1.example")
        .child("rekey_time = 0")
        .conn("rekey_time = 0");
    let (client, vip) = connect(&topo, Role::Client, &cfg);
    let before = client_spis(&client);
    let (sent, received) = ping_series(&topo, Role::Client, vip, 50, 200);
    assert!(
        sent - received <= 2,
        "lost {} of {sent} pings across the gateway's rekey",
        sent - received
    );
    let log = gw.log_text();
    assert!(
        log.contains("test hook: next outbound sequence number"),
        "the test hook was not applied"
    );
    assert!(
        log.contains("runs out of sequence numbers: rekeying it"),
        "no rekey for the sequence numbers in the daemon log"
    );
    assert!(
        log.contains("Child SA rekeyed by us"),
        "the gateway's rekey did not complete"
    );
    let after = client_spis(&client);
    assert!(
        !after.is_empty() && after != before,
        "Child SA SPIs did not change: {before:?} -> {after:?}"
    );
    // The new SA counts from the start again: traffic goes on, and no second rekey.
    assert_ping(&topo, Role::Client, vip);
    let s = status_json(&topo, &gw);
    let seqs: Vec<u64> = children(&s)
        .iter()
        .filter_map(|c| c["seq_out"].as_u64())
        .collect();
    assert!(
        seqs.iter().any(|&n| n > 0 && n < 1000),
        "no fresh outbound SA in status:\n{s}"
    );
    assert_eq!(
        gw.log_text()
            .matches("runs out of sequence numbers: rekeying it")
            .count(),
        1,
        "the new Child SA was rekeyed again"
    );
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn packets_from_outside_local_subnet_do_not_enter_the_tunnel() {
    let topo = Topology::new("sel", TopoOpts::default());
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let (_client, vip) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    // A second address on the LAN host, outside LocalSubnet (192.168.0.0/24); the gateway
    // forwards its packets to the pool into the TUN, where the Child SA must refuse them.
    let outside = "192.168.7.10";
    let add = topo.sh(
        Role::Lan,
        &format!(
            "ip addr add {outside}/32 dev $(ip -o -4 addr show | awk '/{}\\//{{print $2}}')",
            addr::LAN_HOST
        ),
    );
    assert!(add.success(), "{add}");
    let vip_s = vip.to_string();
    let from_inside = topo.exec(Role::Lan, "ping", &["-c", "2", "-W", "2", &vip_s]);
    assert!(
        from_inside.success(),
        "LAN host -> client from inside LocalSubnet:\n{from_inside}"
    );
    let sealed = |s: &serde_json::Value| child_sum(s, "packets_out");
    let sealed_before = sealed(&status_json(&topo, &gw));
    assert!(sealed_before >= 2, "the echo replies were sealed");
    let from_outside = topo.exec(
        Role::Lan,
        "ping",
        &["-c", "3", "-W", "1", "-I", outside, &vip_s],
    );
    assert!(
        !from_outside.stdout.contains(" 0% packet loss") && !from_outside.success(),
        "a packet from outside the selectors got through:\n{from_outside}"
    );
    let s = status_json(&topo, &gw);
    let refused = child_sum(&s, "outside_selectors_out");
    assert!(
        refused >= 3,
        "the refused packets are not counted in status:\n{s}"
    );
    assert_eq!(sealed(&s), sealed_before, "nothing more was sealed:\n{s}");
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn dpd_frees_a_dead_client() {
    let topo = Topology::new("dpd", TopoOpts::default());
    let gw_cfg = GatewayConfig {
        gateway_extra: vec!["dpd_interval = 2".into()],
        ..GatewayConfig::default()
    };
    let gw = Gateway::start(&topo, &gw_cfg);
    let (client, _vip) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    assert_eq!(online(&topo, &gw), 1);
    // SIGKILL: charon must not get the chance to send its DELETE.
    let killed = Command::new("kill")
        .args(["-9", &client.pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // 2 s of silence, then 4 tries over 15 s.
    wait_for(
        "the gateway to drop the dead client",
        Duration::from_secs(40),
        || online(&topo, &gw) == 0,
    );
    let s = status(&topo, &gw);
    assert!(!s.contains("vip 10."), "the lease is still shown:\n{s}");
    assert!(gw.log_text().contains("peer does not answer"));
    // The control socket (gateway.control_socket, here in the state directory) is root's
    // and 0600, and `status --socket` reads it as `--config` does.
    use std::os::unix::fs::MetadataExt;
    let state = topo.dir().join("ipsec-server/state");
    let sock = state.join("control.sock");
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, 0));
    let out = topo.exec(
        Role::Gateway,
        Daemon::BIN,
        &["status", "--socket", sock.to_str().unwrap()],
    );
    assert!(out.success(), "ipsec-server status --socket:\n{out}");
    assert!(out.stdout.contains("online clients: 0"), "{out}");
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn fragmented_ike_auth() {
    let topo = Topology::new("frg", TopoOpts::default());
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let cfg = ClientConfig::new("client1.example").charon("fragment_size = 200");
    let (client, vip) = connect(&topo, Role::Client, &cfg);
    assert!(
        client.log_text().contains("splitting IKE message"),
        "strongSwan did not fragment IKE_AUTH"
    );
    assert_ping(&topo, Role::Client, vip);
    gw.assert_running(&topo);
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn mobike_follows_the_client() {
    let topo = Topology::new("mob", TopoOpts::default());
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let (client, vip) = connect(
        &topo,
        Role::Client,
        &ClientConfig::new("client1.example").conn("mobike = yes"),
    );
    assert!(
        client.log_text().contains("MOBIKE"),
        "MOBIKE was not negotiated"
    );
    // Move the client to a new outer address on its link.
    let old = addr::CLIENT.to_string();
    let new = "172.29.1.5";
    let iface = topo
        .exec(Role::Client, "ip", &["-o", "-4", "addr", "show"])
        .stdout
        .lines()
        .find(|l| l.contains(&format!("{old}/")))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("client interface")
        .to_string();
    topo.sh(
        Role::Client,
        &format!("sysctl -qw net.ipv4.conf.{iface}.promote_secondaries=1"),
    );
    assert!(topo
        .exec(
            Role::Client,
            "ip",
            &["addr", "add", &format!("{new}/24"), "dev", &iface]
        )
        .success());
    assert!(topo
        .exec(
            Role::Client,
            "ip",
            &["addr", "del", &format!("{old}/24"), "dev", &iface]
        )
        .success());
    wait_for(
        "the IKE SA to move to the new address",
        Duration::from_secs(30),
        || client.list_sas().contains(&format!("{new}[4500]")),
    );
    assert_ping(&topo, Role::Client, vip);
    let s = status(&topo, &gw);
    assert!(
        s.contains(&format!("remote {new}:")),
        "the gateway did not follow:\n{s}"
    );
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn terminate_deletes_on_both_sides_and_returns_the_lease() {
    let topo = Topology::new("trm", TopoOpts::default());
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let cfg = ClientConfig::new("client1.example");
    let (client, vip) = connect(&topo, Role::Client, &cfg);
    assert_eq!(online(&topo, &gw), 1);
    client
        .swanctl(&["--terminate", "--ike", CLIENT_CONN, "--timeout", "10"])
        .expect_ok("swanctl --terminate");
    wait_for(
        "the gateway to delete the IKE SA",
        Duration::from_secs(10),
        || online(&topo, &gw) == 0,
    );
    assert!(!client.list_sas().contains("ESTABLISHED"));
    assert!(gw.log_text().contains("peer deleted the IKE SA"));
    // The address went back to the pool: the same client gets it again.
    client.connect();
    assert_eq!(client.virtual_ip(), Some(vip));
    assert_ping(&topo, Role::Client, vip);
}

/// Rewrites the daemon's config file and sends it SIGHUP.
fn reload(gw: &Gateway, edit: impl Fn(String) -> String) {
    let d = daemon(gw);
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, edit(text)).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &d.pid.to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn sighup_reload_honours_effect_immediately() {
    let topo = Topology::new(
        "hup",
        TopoOpts {
            second_client: true,
            ..TopoOpts::default()
        },
    );
    let gw = Gateway::start(&topo, &GatewayConfig::default());
    let (_c1, vip) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    // effect_immediately = false: a new PSK for new clients, the connected one stays.
    reload(&gw, |t| {
        t.replace(
            &format!("psk = \"{PSK}\""),
            "psk = \"second-psk-0123456789\"",
        )
    });
    wait_for("the reload", Duration::from_secs(10), || {
        gw.log_text().contains("reload: applying")
    });
    assert_ping(&topo, Role::Client, vip);
    let (_c2, vip2) = connect(
        &topo,
        Role::Client2,
        &ClientConfig::new("client2.example").psk("second-psk-0123456789"),
    );
    assert_eq!(online(&topo, &gw), 2);
    // effect_immediately = true: every tunnel is torn down at once.
    reload(&gw, |t| {
        t.replace("effect_immediately = false", "effect_immediately = true")
    });
    wait_for(
        "both IKE SAs to be deleted",
        Duration::from_secs(10),
        || online(&topo, &gw) == 0,
    );
    assert_ne!(vip, vip2);
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn ipsec_server_client_answers_dpd_and_ends_with_the_gateway() {
    let topo = Topology::new("cdp", TopoOpts::default());
    let gw_cfg = GatewayConfig {
        gateway_extra: vec!["dpd_interval = 2".into()],
        ..GatewayConfig::default()
    };
    let gw = Gateway::start(&topo, &gw_cfg);
    let psk = topo.dir().join("client.psk");
    std::fs::write(&psk, PSK).unwrap();
    let client = topo.spawn(
        Role::Client,
        "ipsec-server-client",
        Daemon::BIN,
        &[
            "client",
            "--remote",
            &addr::GW_OUTSIDE.to_string(),
            "--id",
            "client1.example",
            "--remote-id",
            GATEWAY_ID,
            "--psk-file",
            psk.to_str().unwrap(),
            "--remote-ts",
            addr::LOCAL_SUBNET,
            "--tun",
            "ipsec0",
        ],
        &[("RUST_LOG", "debug")],
    );
    let log = topo.dir().join("ipsec-server-client.log");
    let mut vip = None;
    wait_for("the client's virtual IP", Duration::from_secs(20), || {
        assert!(topo.exited(client).is_none(), "the client ended early");
        let out = topo.exec(
            Role::Client,
            "ip",
            &["-4", "-o", "addr", "show", "dev", "ipsec0"],
        );
        vip = out
            .stdout
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|a| a.split('/').next()?.parse::<Ipv4Addr>().ok());
        vip.is_some()
    });
    let vip = vip.unwrap();
    assert_eq!(ping_series(&topo, Role::Client, vip, 3, 200).1, 3);
    // Idle for several DPD intervals: the gateway probes, the client answers, nothing ends.
    wait_for("answered liveness checks", Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.matches("answered the gateway").count() >= 3
    });
    assert!(topo.exited(client).is_none(), "the client ended");
    assert_eq!(online(&topo, &gw), 1);
    // Each answer was accepted at once: the gateway never had to retransmit a probe.
    let gw_log = gw.log_text();
    assert!(gw_log.contains("checking liveness"), "no DPD probes sent");
    assert!(
        !gw_log.contains("retransmitting our request"),
        "a probe went unanswered"
    );
    assert_eq!(
        ping_series(&topo, Role::Client, vip, 3, 200).1,
        3,
        "tunnel down after DPD"
    );
    // The gateway shuts down and deletes the IKE SA: the client follows and exits 1.
    topo.kill(daemon(&gw).pid);
    wait_for("the client to end", Duration::from_secs(10), || {
        topo.exited(client).is_some()
    });
    let how = topo.exited(client).unwrap();
    assert!(how.contains("exit code 1"), "client ended with {how}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("the gateway deleted the tunnel"), "{text}");
}

/// How often the gateway log says `what`.
fn log_count(gw: &Gateway, what: &str) -> usize {
    gw.log_text().matches(what).count()
}

/// What the gateway logs for each IKE_AUTH that established an IKE SA.
const IKE_AUTH_DONE: &str = "IKE SA established";

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn clients_authenticate_again_within_ike_lifetime_though_they_rekey() {
    let topo = Topology::new("rau", TopoOpts::default());
    let gw_cfg = GatewayConfig {
        ike_lifetime: 20,
        ..GatewayConfig::default()
    };
    let gw = Gateway::start(&topo, &gw_cfg);
    // The client rekeys its IKE SA every 6-7 s, which must not postpone the re-authentication.
    let cfg = ClientConfig::new("client1.example")
        .conn("rekey_time = 7s")
        .conn("rand_time = 1s")
        .conn("over_time = 3s");
    let start = Instant::now();
    let (client, vip) = connect(&topo, Role::Client, &cfg);
    assert!(
        client.log_text().contains("received AUTH_LIFETIME of 18s"),
        "AUTH_LIFETIME is 20 s less the 2 s margin:\n{}",
        client.log_text()
    );
    assert_eq!(log_count(&gw, IKE_AUTH_DONE), 1);
    let s = status(&topo, &gw);
    assert!(
        s.contains("re-authenticate within 1"),
        "status shows the deadline:\n{s}"
    );
    assert_eq!(ping_series(&topo, Role::Client, vip, 10, 500).1, 10);
    wait_for("a second IKE_AUTH", Duration::from_secs(25), || {
        log_count(&gw, IKE_AUTH_DONE) >= 2
    });
    let took = start.elapsed();
    let log = gw.log_text();
    assert!(
        log.contains("IKE SA rekeyed by the client"),
        "the client did not rekey its IKE SA before re-authenticating"
    );
    assert!(
        took < Duration::from_secs(20),
        "re-authenticated {took:?} after connecting, beyond ike_lifetime"
    );
    assert!(
        !log.contains("did not authenticate again in time"),
        "the gateway had to delete the IKE SA"
    );
    wait_for("the new Child SA", Duration::from_secs(10), || {
        client.list_sas().contains("INSTALLED")
    });
    let vip = client
        .virtual_ip()
        .expect("a virtual IP after re-authenticating");
    assert_ping(&topo, Role::Client, vip);
    assert_eq!(online(&topo, &gw), 1);
}

/// Gives a running client charon `cfg`'s PSK instead of the one it has.
fn load_psk(topo: &Topology, client: &Charon, cfg: &ClientConfig) {
    let file = topo.dir().join(format!("{}-new-psk.conf", client.name));
    std::fs::write(&file, cfg.swanctl_conf()).unwrap();
    client
        .swanctl(&[
            "--load-creds",
            "--clear",
            "--noprompt",
            "--file",
            file.to_str().unwrap(),
        ])
        .expect_ok("swanctl --load-creds");
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn a_psk_change_reaches_connected_clients_within_the_bound() {
    const NEW_PSK: &str = "changed-psk-0123456789";
    let topo = Topology::new(
        "rpk",
        TopoOpts {
            second_client: true,
            ..TopoOpts::default()
        },
    );
    // Unlimited IKE lifetime: only the PSK change asks for a new IKE_AUTH, within 10 s.
    let gw_cfg = GatewayConfig {
        ike_lifetime: 0,
        gateway_extra: vec!["psk_change_reauth = 10".into()],
        ..GatewayConfig::default()
    };
    let gw = Gateway::start(&topo, &gw_cfg);
    let one = ClientConfig::new("client1.example");
    let two = ClientConfig::new("client2.example");
    let (c1, _) = connect(&topo, Role::Client, &one);
    let (c2, _) = connect(&topo, Role::Client2, &two);
    assert!(
        !c1.log_text().contains("received AUTH_LIFETIME"),
        "no deadline with ike_lifetime = 0"
    );
    // Client 1 is given the new PSK first (its IKE SA does not notice); client 2 is not.
    load_psk(&topo, &c1, &one.clone().psk(NEW_PSK));
    reload(&gw, |t| {
        t.replace(&format!("psk = \"{PSK}\""), &format!("psk = \"{NEW_PSK}\""))
    });
    wait_for("the PSK change", Duration::from_secs(10), || {
        gw.log_text().contains("PSK changed")
    });
    let changed = Instant::now();
    // Told by AUTH_LIFETIME, client 1 authenticates again with the new PSK; client 2 tries
    // with the old one, is refused and stays out.
    wait_for(
        "client 1 to authenticate again",
        Duration::from_secs(15),
        || log_count(&gw, IKE_AUTH_DONE) >= 3,
    );
    wait_for(
        "client 2 to lose its IKE SA",
        Duration::from_secs(15),
        || !c2.list_sas().contains("ESTABLISHED"),
    );
    let took = changed.elapsed();
    assert!(
        took <= Duration::from_secs(12),
        "the old PSK's IKE SAs outlived the bound: {took:?}"
    );
    assert!(
        c1.log_text().contains("received AUTH_LIFETIME of 9s"),
        "AUTH_LIFETIME is the 10 s bound less its margin:\n{}",
        c1.log_text()
    );
    wait_for("client 1's new Child SA", Duration::from_secs(10), || {
        c1.list_sas().contains("INSTALLED")
    });
    assert_eq!(online(&topo, &gw), 1, "only the client with the new PSK");
    assert_ping(
        &topo,
        Role::Client,
        c1.virtual_ip().expect("client 1's VIP"),
    );
    // Given the new PSK, client 2 connects again.
    load_psk(&topo, &c2, &two.clone().psk(NEW_PSK));
    c2.connect();
    assert_ping(
        &topo,
        Role::Client2,
        c2.virtual_ip().expect("client 2's VIP"),
    );
    assert_eq!(online(&topo, &gw), 2);
}

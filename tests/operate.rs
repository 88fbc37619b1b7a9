//! `ipsec-server status`, `terminate` and `reload` against a running daemon with two real
//! strongSwan 5.9 clients: what status shows (text and JSON, filters), one client
//! disconnected while the other stays, reloads refused and applied. One gateway for every
//! assertion, to keep the run short. Root; namespaces per test (`tests/common/mod.rs`).
// Test code: waits are bounded by the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::flows::{assert_ping, connect};
use common::gateway::Daemon;
use common::topo::addr;
use common::*;

/// `ipsec-server ARGS…` in the gateway namespace.
fn cli(topo: &Topology, args: &[&str]) -> CmdOutput {
    topo.exec(Role::Gateway, Daemon::BIN, args)
}

fn json(out: &CmdOutput) -> serde_json::Value {
    assert!(out.success(), "{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{out}"))
}

/// The identities of `status --json`, in its order.
fn identities(s: &serde_json::Value) -> Vec<String> {
    s["server"]["sas"]
        .as_array()
        .unwrap_or_else(|| panic!("no sas in {s:#}"))
        .iter()
        .map(|sa| sa["identity"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let found = poll_until(Duration::from_secs(15), Duration::from_millis(250), || {
        ok().then_some(())
    });
    assert!(found.is_some(), "timed out waiting for {what}");
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn status_terminate_and_reload_on_the_control_socket() {
    let topo = Topology::new(
        "opr",
        TopoOpts {
            second_client: true,
            ..TopoOpts::default()
        },
    );
    let gw = Gateway::start_kind(GatewayKind::IpsecServer, &topo, &GatewayConfig::default());
    let Gateway::IpsecServer(d) = &gw else {
        unreachable!()
    };
    let cfg = d.config.to_str().unwrap().to_string();
    let sock = topo.dir().join("ipsec-server/state/control.sock");
    let sock = sock.to_str().unwrap().to_string();
    let (c1, vip1) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    let (c2, vip2) = connect(&topo, Role::Client2, &ClientConfig::new("client2.example"));
    assert_ping(&topo, Role::Client, vip1);
    assert_ping(&topo, Role::Client2, vip2);
    // Inbound activity is sampled once a second.
    std::thread::sleep(Duration::from_millis(1200));

    // The text: header and both clients, as swanctl --list-sas shows them.
    let text = cli(&topo, &["status", "--config", &cfg]).expect_ok("status");
    let text = text.stdout;
    eprintln!("----- status\n{text}");
    for want in [
        format!("ipsec-server {}, up ", env!("CARGO_PKG_VERSION")),
        "listening on 0.0.0.0, UDP 500 and 4500".into(),
        "pool 10.0.0.0/24: 2/254 in use".into(),
        "online clients: 2".into(),
        "client1.example: ESTABLISHED".into(),
        "client2.example: ESTABLISHED".into(),
        format!(
            "  remote {}:4500 local {}:4500, NAT: yes",
            addr::CLIENT,
            addr::GW_OUTSIDE
        ),
        format!("  remote {}:4500 local", addr::CLIENT2),
        format!("  vip {vip1}"),
        format!("  vip {vip2}"),
        "  IKE AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024, ".into(),
        "  child INSTALLED ESP AES_CBC-128/HMAC_SHA1_96, installed ".into(),
        format!("    local {} === remote {vip1}/32", addr::LOCAL_SUBNET),
        format!("    local {} === remote {vip2}/32", addr::LOCAL_SUBNET),
    ] {
        assert!(text.contains(&want), "{want:?} missing in status:\n{text}");
    }
    assert!(
        text.contains(" B, ") || text.contains(" KiB, "),
        "human units:\n{text}"
    );

    // The JSON: the same, numbers raw.
    let raw = cli(&topo, &["status", "--json", "--socket", &sock]);
    eprintln!("----- status --json\n{}", raw.stdout);
    let s = json(&raw);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["server"]["online_clients"], 2);
    assert_eq!(s["server"]["pool"]["used"], 2);
    assert_eq!(identities(&s), ["client1.example", "client2.example"]);
    for (sa, vip) in s["server"]["sas"]
        .as_array()
        .unwrap()
        .iter()
        .zip([vip1, vip2])
    {
        assert_eq!(sa["vip"], vip.to_string());
        assert_eq!(sa["state"], "ESTABLISHED");
        assert_eq!(
            sa["ike_proposal"],
            "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024"
        );
        assert_eq!(sa["nat_faked"], true);
        let c = &sa["children"][0];
        assert_eq!(c["esp_proposal"], "AES_CBC-128/HMAC_SHA1_96");
        for f in ["bytes_in", "packets_in", "bytes_out", "packets_out"] {
            assert!(
                c[f].as_u64().is_some_and(|n| n > 0),
                "{f} after a ping: {sa:#}"
            );
        }
        assert!(c["last_inbound_secs"].as_u64().is_some(), "{sa:#}");
        assert_eq!(c["remote_ts"][0], format!("{vip}/32"));
    }

    // Filters.
    let one = json(&cli(
        &topo,
        &[
            "status",
            "--json",
            "--socket",
            &sock,
            "--vip",
            &vip2.to_string(),
        ],
    ));
    assert_eq!(identities(&one), ["client2.example"]);
    let by_id = cli(
        &topo,
        &["status", "--socket", &sock, "--id", "client1.example"],
    );
    let by_id = by_id.expect_ok("status --id").stdout;
    assert!(
        by_id.contains("client1.example: ") && !by_id.contains("client2.example"),
        "{by_id}"
    );

    // Terminate client 2: it gets the DELETE, client 1 stays up.
    let t = cli(
        &topo,
        &["terminate", "--vip", &vip2.to_string(), "--socket", &sock],
    );
    let t = t.expect_ok("terminate --vip");
    assert!(
        t.stdout
            .contains(&format!("terminated client2.example (vip {vip2}")),
        "{t}"
    );
    wait_for("client 2 to see the DELETE", || {
        c2.log_text().contains("received DELETE for IKE_SA")
    });
    wait_for("client 2's IKE SA to go", || {
        !c2.list_sas().contains("ESTABLISHED")
    });
    let s = json(&cli(&topo, &["status", "--json", "--socket", &sock]));
    assert_eq!(identities(&s), ["client1.example"]);
    assert_eq!(s["server"]["online_clients"], 1);
    assert_eq!(s["server"]["pool"]["used"], 1);
    assert!(c1.list_sas().contains("ESTABLISHED"));
    assert_ping(&topo, Role::Client, vip1);
    // Nothing matches any more: a clear error, non-zero.
    let again = cli(
        &topo,
        &["terminate", "--vip", &vip2.to_string(), "--socket", &sock],
    );
    assert!(
        !again.success() && again.stderr.contains("Control.NotFound"),
        "{again}"
    );
    let nobody = cli(
        &topo,
        &["terminate", "--id", "nobody.example", "--socket", &sock],
    );
    assert!(
        !nobody.success() && nobody.stderr.contains("Control.NotFound"),
        "{nobody}"
    );

    // Reload a file that does not validate: refused with its code, nothing changes, and
    // `status --config` still finds the socket in it.
    let good = std::fs::read_to_string(&d.config).unwrap();
    let pool = format!("client_ip_pool = \"{}\"", addr::CLIENT_IP_POOL);
    std::fs::write(
        &d.config,
        good.replace(&pool, "client_ip_pool = \"10.0.0.0/8\""),
    )
    .unwrap();
    let r = cli(&topo, &["reload", "--config", &cfg]);
    assert!(
        !r.success() && r.stderr.contains("ClientIpPool.NetmaskInvalid"),
        "{r}"
    );
    std::fs::write(&d.config, "this is [not toml").unwrap();
    let r = cli(&topo, &["reload", "--socket", &sock]);
    assert!(
        !r.success() && r.stderr.contains("InvalidConfig.Syntax"),
        "{r}"
    );
    gw.assert_running(&topo);
    let s = json(&cli(&topo, &["status", "--json", "--socket", &sock]));
    assert_eq!(s["server"]["online_clients"], 1);

    // A valid change: applied, said so, the client stays.
    let dns = "effect_immediately = false\ndns = [\"192.168.0.53\"]";
    std::fs::write(&d.config, good.replace("effect_immediately = false", dns)).unwrap();
    let r = cli(&topo, &["reload", "--config", &cfg]).expect_ok("reload");
    assert!(
        r.stdout.contains("reconfigured") && r.stdout.contains("changed: dns"),
        "{r}"
    );
    assert_eq!(
        json(&cli(&topo, &["status", "--json", "--config", &cfg]))["server"]["online_clients"],
        1
    );
    assert_ping(&topo, Role::Client, vip1);
    assert_ne!(vip1, Ipv4Addr::UNSPECIFIED);
    gw.assert_running(&topo);
}

//! `[metrics]` against the running daemon and real strongSwan clients: every scrape passes
//! `promtool check metrics` (Debian's `prometheus` package); a client with a wrong PSK moves
//! `auth_failed`; a login and pings through the tunnel move `established` and the ESP
//! packets and bytes each way, by exactly what the client counted; hostile scrapers (garbage,
//! a megabyte of header, dozens of connections at once) are refused without the daemon
//! growing. Root; namespaces per test (see `tests/common/mod.rs`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::charon::CLIENT_CHILD;
use common::flows::{assert_ping, connect};
use common::gateway::Daemon;
use common::metrics::value;
use common::*;

/// Not the default (9571): another daemon of the host may use that; the namespace is ours
/// anyway.
const PORT: u16 = 9572;

fn scrape(topo: &Topology) -> String {
    common::metrics::scrape(topo, PORT)
}

/// `script` run by bash (for its /dev/tcp) in the gateway namespace.
fn bash(topo: &Topology, script: &str) -> CmdOutput {
    topo.exec(Role::Gateway, "bash", &["-c", script])
}

fn get(text: &str, series: &str) -> u64 {
    value(text, series).unwrap_or_else(|| panic!("no {series} in the scrape:\n{text}"))
}

fn handshakes(text: &str, outcome: &str) -> u64 {
    get(
        text,
        &format!("ipsec_server_ike_handshakes_total{{outcome=\"{outcome}\"}}"),
    )
}

fn esp(text: &str, what: &str, direction: &str) -> u64 {
    get(
        text,
        &format!("ipsec_server_esp_{what}_total{{direction=\"{direction}\"}}"),
    )
}

/// `promtool check metrics` on `text` (saved in the test's directory for the diagnostics).
fn promtool(dir: &Path, name: &str, text: &str) {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write scrape");
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).expect("open scrape"))
        .output()
        .expect("promtool (Debian package prometheus) is installed");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The daemon's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("daemon's /proc status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan, promtool"]
fn a_transfer_and_a_failed_login_move_the_right_counters() {
    let topo = Topology::new(
        "mtr",
        TopoOpts {
            second_client: true,
            ..TopoOpts::default()
        },
    );
    let state = topo.dir().join("ipsec-server/state");
    std::fs::create_dir_all(&state).expect("state dir");
    let toml = GatewayConfig::default().to_toml(state.to_str().unwrap())
        + &format!("\n[metrics]\nlisten = \"127.0.0.1:{PORT}\"\nper_client = true\n");
    let daemon = Daemon::start(&topo, &toml);
    assert!(
        topo.wait_listening(Role::Gateway, "tcp", PORT, Duration::from_secs(5)),
        "metrics listener on {PORT}"
    );
    let first = scrape(&topo);
    promtool(topo.dir(), "scrape-0.txt", &first);
    assert_eq!(get(&first, "ipsec_server_serving"), 1);
    assert_eq!(handshakes(&first, "established"), 0);
    assert_eq!(handshakes(&first, "auth_failed"), 0);
    assert_eq!(get(&first, "ipsec_server_pool_addresses_in_use"), 0);
    assert!(get(&first, "ipsec_server_pool_addresses") > 0);

    // A client with the wrong PSK: one failed login, nothing established.
    let bad = Charon::start_client(
        &topo,
        Role::Client2,
        &ClientConfig::new("client2.example").psk("not-the-psk"),
    );
    let out = bad.initiate(CLIENT_CHILD);
    assert!(!out.success(), "a wrong PSK connected:\n{out}");
    bad.stop();
    let failed = scrape(&topo);
    assert_eq!(handshakes(&failed, "auth_failed"), 1, "{failed}");
    assert_eq!(handshakes(&failed, "established"), 0);
    assert_eq!(
        get(
            &failed,
            "ipsec_server_ike_refused_messages_total{reason=\"authentication_failed\"}"
        ),
        1
    );

    // A good client and pings through the tunnel.
    let (client, vip) = connect(&topo, Role::Client, &ClientConfig::new("client1.example"));
    assert_ping(&topo, Role::Client, vip);
    let counted = client.child_counters().expect("the client's counters");
    let after = scrape(&topo);
    promtool(topo.dir(), "scrape-1.txt", &after);
    assert_eq!(handshakes(&after, "established"), 1);
    assert_eq!(handshakes(&after, "auth_failed"), 1, "not counted again");
    assert_eq!(
        get(&after, "ipsec_server_ike_sas{state=\"established\"}"),
        1
    );
    assert_eq!(get(&after, "ipsec_server_pool_addresses_in_use"), 1);
    // What the client sent is what the gateway received, and the other way round.
    assert!(
        counted.packets_out >= 3 && counted.packets_in >= 3,
        "{counted:?}"
    );
    assert_eq!(esp(&after, "packets", "in"), counted.packets_out, "{after}");
    assert_eq!(esp(&after, "packets", "out"), counted.packets_in, "{after}");
    assert_eq!(esp(&after, "bytes", "in"), counted.bytes_out, "{after}");
    assert_eq!(esp(&after, "bytes", "out"), counted.bytes_in, "{after}");
    let id = format!("identity=\"client1.example\",vip=\"{vip}\"");
    assert_eq!(
        get(
            &after,
            &format!("ipsec_server_client_esp_packets_total{{{id},direction=\"in\"}}")
        ),
        counted.packets_out
    );

    // The client leaves: its SAs go, the totals stay.
    client.stop();
    let gone = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let s = scrape(&topo);
        (get(&s, "ipsec_server_ike_sas{state=\"established\"}") == 0).then_some(s)
    })
    .expect("the client's IKE SA deleted");
    assert_eq!(esp(&gone, "packets", "in"), counted.packets_out, "{gone}");
    assert_eq!(esp(&gone, "bytes", "out"), counted.bytes_in, "{gone}");
    assert!(!gone.contains("ipsec_server_client_"), "{gone}");

    // Hostile scrapers: garbage, a megabyte of header, 40 connections held at once. Each
    // is refused; the daemon neither dies nor grows.
    let rss_before = rss_kib(daemon.pid);
    let hostile = bash(
        &topo,
        &format!(
            "t=/dev/tcp/127.0.0.1/{PORT}
             for i in 1 2 3; do
               exec 3<>$t; printf '\\x00\\xff garbage\\r\\n\\r\\n' >&3
               echo G:$(timeout 5 head -c 12 <&3); exec 3<&-
               exec 3<>$t
               {{ printf 'GET /metrics HTTP/1.1\\r\\nX: '; head -c 1000000 /dev/zero | tr '\\0' a; }} >&3 2>/dev/null
               echo H:$(timeout 5 head -c 12 <&3 2>/dev/null); exec 3<&-
             done
             for i in $(seq 40); do exec {{fd}}<>$t; done
             exec 3<>$t; printf 'GET /metrics HTTP/1.1\\r\\n\\r\\n' >&3
             echo L:$(timeout 5 head -c 12 <&3)"
        ),
    );
    let answers: Vec<&str> = hostile.stdout.lines().collect();
    assert_eq!(
        answers.iter().filter(|l| **l == "G:HTTP/1.1 400").count(),
        3,
        "garbage gets 400:\n{hostile}"
    );
    // A head beyond 16 KiB gets 400, or a reset when the unread rest arrives first.
    assert_eq!(
        answers
            .iter()
            .filter(|l| **l == "H:HTTP/1.1 400" || **l == "H:")
            .count(),
        3,
        "huge heads are cut:\n{hostile}"
    );
    assert_eq!(
        answers.last().copied(),
        Some("L:HTTP/1.1 503"),
        "a scrape beyond the connection cap is refused at once:\n{hostile}"
    );
    let recovered = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let out = bash(
            &topo,
            &format!(
                "exec 3<>/dev/tcp/127.0.0.1/{PORT}; printf 'GET /metrics HTTP/1.1\\r\\n\\r\\n' >&3; timeout 5 cat <&3"
            ),
        );
        let (head, body) = out.stdout.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_string())
    })
    .expect("scrapes are answered again once the hostile connections closed");
    assert!(
        get(&recovered, "ipsec_server_metrics_http_refused_total") >= 33,
        "{recovered}"
    );
    promtool(topo.dir(), "scrape-2.txt", &recovered);
    let grown = rss_kib(daemon.pid).saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "the daemon grew by {grown} KiB");
    eprintln!("[{}] scrape with client1 online:\n{after}", topo.tag);
}

//! The control API driven by the official Alibaba Cloud Python SDKs, unchanged
//! (`alibabacloud-vpc20160428`, V3 signatures; `aliyun-python-sdk-vpc` + `-core`, RPC
//! signature v1), against a running daemon in the gateway namespace of an interop topology,
//! and a strongSwan client served by the server the SDK created.
//!
//! Needs root and the SDKs: `scripts/test-all` installs them into `target/sdk-venv` (or set
//! `API_SDK_PYTHON` to a Python that has them). The Python side is `tests/api/sdk_drive.py`.

mod common;

use common::flows::assert_ping;

use common::*;
use std::path::PathBuf;
use std::time::Duration;

const AK: &str = "sdk-test-key";
const SECRET: &str = "sdk-test-secret-0123456789";
const GW_ID: &str = "vpn-apitest01";
const REGION: &str = "local";
const ENDPOINT: &str = "127.0.0.1:8080";

fn python() -> PathBuf {
    let p = std::env::var_os("API_SDK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv/bin/python")
        });
    assert!(
        p.exists(),
        "{} not found: run scripts/test-all (it installs the SDKs into target/sdk-venv) or set \
         API_SDK_PYTHON",
        p.display()
    );
    p
}

fn daemon_toml(state_dir: &str) -> String {
    format!(
        r#"[gateway]
vpn_gateway_id = "{GW_ID}"
region_id = "{REGION}"
listen_addrs = ["0.0.0.0"]
tun_name = "ipsec0"
state_dir = "{state_dir}"
control_socket = "{state_dir}/control.sock"

[api]
listen = "{ENDPOINT}"
[[api.access_keys]]
access_key_id = "{AK}"
access_key_secret = "{SECRET}"
"#
    )
}

struct Api<'a> {
    topo: &'a Topology,
    server_id: String,
}

impl Api<'_> {
    /// Runs one phase of sdk_drive.py in the gateway namespace; panics with its output on
    /// failure. Returns the `RESULT` lines.
    fn phase(&self, args: &[&str]) -> Vec<String> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/sdk_drive.py");
        let py = python();
        let mut env_args = vec![
            format!("API_ENDPOINT={ENDPOINT}"),
            format!("API_AK={AK}"),
            format!("API_SECRET={SECRET}"),
            format!("API_GW={GW_ID}"),
            format!("API_REGION={REGION}"),
            format!("API_PSK={PSK}"),
            format!("API_LOCAL_ID={GATEWAY_ID}"),
            format!("API_SERVER_ID={}", self.server_id),
            py.display().to_string(),
            script.display().to_string(),
        ];
        env_args.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = env_args.iter().map(String::as_str).collect();
        let out = self
            .topo
            .exec_timeout(Role::Gateway, "env", &refs, Duration::from_secs(120));
        assert!(out.success(), "sdk_drive.py {args:?} failed:\n{out}");
        eprintln!("[api] sdk_drive.py {args:?}:\n{}", out.stdout);
        out.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("RESULT ").map(str::to_owned))
            .collect()
    }
}

/// Starts the daemon; its log is `{dir}/{name}.log`.
fn start_daemon(topo: &Topology, name: &str, config: &std::path::Path) -> u32 {
    topo.add_log(name, &topo.dir().join(format!("{name}.log")));
    let pid = topo.spawn(
        Role::Gateway,
        name,
        common::gateway::Daemon::BIN,
        &["run", "--config", config.to_str().unwrap()],
        &[("RUST_LOG", "debug")],
    );
    assert!(
        topo.wait_listening(Role::Gateway, "tcp", 8080, Duration::from_secs(15)),
        "the control API did not come up"
    );
    pid
}

/// The PSK UpdateIpsecServer sets in sdk_drive.py's `update-keep`.
const PSK2: &str = "second-psk-0123";

fn udp_bound(topo: &Topology, port: u16) -> bool {
    let out = topo.exec(Role::Gateway, "ss", &["-Hlun"]);
    out.stdout.lines().any(|l| {
        l.split_whitespace()
            .nth(3)
            .is_some_and(|a| a.ends_with(&format!(":{port}")))
    })
}

#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn sdk_lifecycle_serves_strongswan_and_survives_restart() {
    let topo = Topology::new(
        "api",
        TopoOpts {
            second_client: true,
            ..TopoOpts::default()
        },
    );
    let dir = topo.dir().join("ipsec-server");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, daemon_toml(state.to_str().unwrap())).unwrap();
    let pid = start_daemon(&topo, "ipsec-server", &config);
    assert!(!udp_bound(&topo, 500), "a bare gateway serves no IKE");
    // The control socket answers without a server; reload is the API's business here.
    let sock = state.join("control.sock");
    let sock = sock.to_str().unwrap();
    let bin = common::gateway::Daemon::BIN;
    let status = topo.exec(Role::Gateway, bin, &["status", "--json", "--socket", sock]);
    let status: serde_json::Value =
        serde_json::from_str(&status.expect_ok("status").stdout).expect("status --json is JSON");
    assert_eq!(status["server"], serde_json::Value::Null, "{status:#}");
    let reload = topo.exec(Role::Gateway, bin, &["reload", "--socket", sock]);
    assert!(
        !reload.success() && reload.stderr.contains("OperationUnsupported.Reload"),
        "{reload}"
    );

    let mut api = Api {
        topo: &topo,
        server_id: String::new(),
    };
    // Create through the V3 SDK, poll until active, list: fields match.
    let res = api.phase(&["create"]);
    api.server_id = res
        .iter()
        .find_map(|l| l.strip_prefix("server_id="))
        .expect("server id")
        .to_owned();
    assert!(
        poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            (udp_bound(&topo, 500) && udp_bound(&topo, 4500)).then_some(())
        })
        .is_some(),
        "the created server does not listen on UDP 500/4500"
    );

    // End to end: a strongSwan client served by the SDK-made server.
    let client = Charon::start_client(&topo, Role::Client, &ClientConfig::new("client1"));
    client.connect();
    let sas = client.list_sas();
    assert!(
        sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
        "{sas}"
    );
    let vip = client.virtual_ip().expect("virtual IP");
    assert_ping(&topo, Role::Client, vip);
    api.phase(&["online", "1"]);
    client.stop();

    // Restart: the server made through the API is back, and serves IKE again.
    topo.kill(pid);
    assert!(!udp_bound(&topo, 500), "stopped daemon still bound");
    let pid = start_daemon(&topo, "ipsec-server-2", &config);
    api.phase(&["listed"]);
    assert!(
        poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            udp_bound(&topo, 500).then_some(())
        })
        .is_some(),
        "after a restart the persisted server does not serve"
    );

    // EffectImmediately=false: a new PSK for new clients; the connected client stays.
    let client = Charon::start_client(&topo, Role::Client, &ClientConfig::new("client1"));
    client.connect();
    let vip = client.virtual_ip().expect("virtual IP after restart");
    api.phase(&["update-keep"]);
    assert_ping(&topo, Role::Client, vip);
    assert!(client.list_sas().contains("ESTABLISHED"));
    let client2 = Charon::start_client(
        &topo,
        Role::Client2,
        &ClientConfig::new("client2").psk(PSK2),
    );
    client2.connect();
    let vip2 = client2.virtual_ip().expect("client2 virtual IP");
    assert_ping(&topo, Role::Client2, vip2);
    api.phase(&["online", "2"]);
    // EffectImmediately=true: every IKE SA is deleted, the clients must reconnect.
    api.phase(&["update-now"]);
    for (c, role) in [(&client, Role::Client), (&client2, Role::Client2)] {
        assert!(
            poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
                (!c.list_sas().contains("ESTABLISHED")).then_some(())
            })
            .is_some(),
            "{role:?}: IKE SA not deleted by EffectImmediately=true:\n{}",
            c.list_sas()
        );
    }
    client.stop();
    client2.stop();

    api.phase(&["errors"]);
    api.phase(&["update-delete"]);
    assert!(
        poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            (!udp_bound(&topo, 500)).then_some(())
        })
        .is_some(),
        "after DeleteIpsecServer UDP 500 is still bound"
    );
    api.phase(&["generated-psk"]);
    topo.kill(pid);

    // No secret reached the logs (RUST_LOG=debug), in either run.
    for name in ["ipsec-server", "ipsec-server-2"] {
        let log = std::fs::read_to_string(topo.dir().join(format!("{name}.log"))).unwrap();
        assert!(
            log.contains("API request"),
            "{name}.log has no API requests"
        );
        for secret in [SECRET, PSK, PSK2, "updated-psk-1"] {
            assert!(!log.contains(secret), "{name}.log contains a secret");
        }
    }
}

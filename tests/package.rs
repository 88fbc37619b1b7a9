//! The Debian package and the systemd integration (issue 13, "Package and service"; "A safe
//! first run"): `scripts/build-deb` builds a `.deb` that `dpkg -i` installs with the binary,
//! a 0600 conffile without secrets and a unit `systemd-analyze verify` accepts; the daemon
//! speaks sd_notify (READY=1 only once UDP 500/4500 and the TUN device are up, RELOADING=1
//! then READY=1 around SIGHUP, STOPPING=1); and a PSK it generated is kept 0600 in
//! `state_dir`, shown by `show-psk`, never logged, and served across a reload and a restart.
//! Root (dpkg, namespaces, strongSwan).
// Test code: deadlines read the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::flows::{assert_ping, connect};
use common::gateway::parse_upgraded;
use common::proc::{self, Adopted, CmdOutput};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_ipsec-server");

fn root_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(prog: &str, args: &[&str], timeout: Duration) -> CmdOutput {
    let mut cmd = Command::new(prog);
    cmd.args(args).current_dir(root_dir());
    proc::run(cmd, timeout)
}

/// `dpkg -i`, retried (≤ 60 s) while another dpkg or apt holds the lock.
fn dpkg(args: &[&str]) -> CmdOutput {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run("dpkg", args, Duration::from_secs(120));
        let locked = out.stderr.contains("lock");
        if out.success() || !locked || Instant::now() >= deadline {
            return out;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Purges the package when dropped, also when the test fails half-way.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = dpkg(&["--purge", "ipsec-server"]);
    }
}

fn mode(p: &str) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .mode()
        & 0o7777
}

#[test]
#[ignore = "needs root: dpkg -i installs the package on this host, then purges it"]
fn the_deb_installs_a_safe_config_and_a_unit_systemd_accepts() {
    let installed = run(
        "dpkg-query",
        &["-W", "-f=${Status}", "ipsec-server"],
        Duration::from_secs(10),
    );
    assert!(
        !installed.stdout.contains("installed"),
        "ipsec-server is already installed on this host; this test would replace it \
         (dpkg --purge ipsec-server first)"
    );
    assert!(
        !Path::new("/var/lib/ipsec-server").exists(),
        "/var/lib/ipsec-server exists on this host; the purge at the end would remove it"
    );
    // The test build's binary: no release build inside the test suite.
    let build = run(
        "scripts/build-deb",
        &["--binary", BIN],
        Duration::from_secs(180),
    )
    .expect_ok("scripts/build-deb");
    let deb = build.stdout.lines().last().expect("the .deb path").trim();
    assert!(
        deb.starts_with("target/debian/ipsec-server_") && deb.ends_with(".deb"),
        "{deb}"
    );

    let _purge = Installed;
    let install = dpkg(&["-i", deb]).expect_ok("dpkg -i");
    eprintln!("$ dpkg -i {deb}\n{}", install.stdout);

    // The files, their modes, the conffile.
    assert_eq!(mode("/usr/sbin/ipsec-server"), 0o755);
    let cfg = "/etc/ipsec-server/ipsec-server.toml";
    assert_eq!(mode(cfg), 0o600, "the config holds secrets once edited");
    assert_eq!(std::fs::metadata(cfg).unwrap().uid(), 0);
    let text = std::fs::read_to_string(cfg).unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(root_dir().join("configs/ipsec-server.toml")).unwrap()
    );
    // No published secret: no psk (generated on the first start) and no [api] keys.
    let parsed: toml::Table = text.parse().expect("TOML");
    assert!(parsed["ipsec_server"].get("psk").is_none(), "{text}");
    assert!(parsed.get("api").is_none(), "{text}");
    let conffiles = std::fs::read_to_string("/var/lib/dpkg/info/ipsec-server.conffiles")
        .expect("dpkg lists the conffiles");
    assert_eq!(conffiles.trim(), cfg);
    let unit = "/lib/systemd/system/ipsec-server.service";
    assert_eq!(mode(unit), 0o644);
    for doc in [
        "/usr/share/doc/ipsec-server/README.md",
        "/usr/share/man/man8/ipsec-server.8.gz",
        "/usr/share/man/man8/ipsec-server-run.8.gz",
        "/usr/share/bash-completion/completions/ipsec-server",
        "/usr/share/zsh/vendor-completions/_ipsec-server",
        "/usr/share/fish/vendor_completions.d/ipsec-server.fish",
    ] {
        assert_eq!(mode(doc), 0o644, "{doc}");
    }
    let depends = run(
        "dpkg-query",
        &["-W", "-f=${Depends}", "ipsec-server"],
        Duration::from_secs(10),
    )
    .expect_ok("dpkg-query");
    for dep in ["libc6", "iproute2", "nftables"] {
        assert!(depends.stdout.contains(dep), "Depends: {}", depends.stdout);
    }
    let files = run("dpkg", &["-L", "ipsec-server"], Duration::from_secs(10));
    eprintln!("$ dpkg -L ipsec-server\n{}", files.stdout);

    // systemd accepts the installed unit, without a single complaint.
    let verify = run(
        "systemd-analyze",
        &["verify", unit],
        Duration::from_secs(60),
    );
    eprintln!("$ systemd-analyze verify {unit}\n{verify}");
    assert!(verify.success(), "systemd-analyze verify:\n{verify}");
    assert!(
        !verify.stdout.contains("ipsec-server") && !verify.stderr.contains("ipsec-server"),
        "systemd-analyze verify has remarks on the unit:\n{verify}"
    );

    // Safe out of the box: the installed binary accepts the installed config as it is (its
    // default path) on a host with nothing on the example pool (a fresh namespace), and there
    // is no PSK to show before the first start.
    let topo = Topology::new("pkgi", TopoOpts::default());
    let check = topo.exec(Role::Lan, "/usr/sbin/ipsec-server", &["check"]);
    assert!(check.success(), "ipsec-server check of {cfg}:\n{check}");
    let show = topo.exec(Role::Lan, "/usr/sbin/ipsec-server", &["show-psk"]);
    assert!(
        !show.success() && show.stderr.contains("start the daemon"),
        "{show}"
    );
    drop(topo);

    drop(_purge);
    for gone in [cfg, unit, "/usr/sbin/ipsec-server"] {
        assert!(!Path::new(gone).exists(), "{gone} left after the purge");
    }
}

/// A datagram socket standing in for systemd's `NOTIFY_SOCKET`.
struct Notifications {
    sock: UnixDatagram,
    path: PathBuf,
}

impl Notifications {
    fn bind(path: PathBuf) -> Notifications {
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Notifications { sock, path }
    }

    /// The messages received until one has the line `line` (inclusive), ≤ `timeout`; panics
    /// when the daemon `pid` of `topo` ends first or the time runs out.
    fn until(&self, topo: &Topology, pid: u32, line: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let done = msg.lines().any(|l| l == line);
                    got.push(msg);
                    if done {
                        return got;
                    }
                }
                Err(_) => {
                    if let Some(how) = topo.exited(pid) {
                        panic!("the daemon ended ({how}) before {line}; got {got:?}");
                    }
                }
            }
        }
        panic!("no {line} within {timeout:?}; got {got:?}")
    }
}

/// UDP 500 and 4500 bound and the TUN device up in the gateway namespace, now.
fn listeners_up(topo: &Topology) -> Result<(), String> {
    let udp = topo.exec(Role::Gateway, "ss", &["-Hlun"]);
    for port in [":500", ":4500"] {
        let bound = udp.stdout.lines().any(|l| {
            l.split_whitespace()
                .nth(3)
                .is_some_and(|a| a.ends_with(port))
        });
        if !bound {
            return Err(format!("UDP {port} not bound:\n{udp}"));
        }
    }
    let tun = topo.exec(Role::Gateway, "ip", &["link", "show", "ipsec0"]);
    if !tun.success() {
        return Err(format!("no TUN ipsec0:\n{tun}"));
    }
    Ok(())
}

/// `{topo}/gw`, mode 0700 (the daemon wants its state and socket directories private).
fn private_gateway_dir(topo: &Topology) -> PathBuf {
    let dir = topo.dir().join("gw");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn show_psk(topo: &Topology, config: &Path) -> String {
    let out = topo.exec(
        Role::Gateway,
        BIN,
        &["show-psk", "--config", config.to_str().unwrap()],
    );
    assert!(out.success(), "show-psk:\n{out}");
    out.stdout.trim_end().to_string()
}

#[test]
#[ignore = "needs root: network namespaces, TUN, strongSwan"]
fn notify_ready_after_the_listeners_and_a_generated_psk_kept_across_reload_and_restart() {
    let topo = Topology::new(
        "ntfy",
        TopoOpts {
            second_client: true,
            ..Default::default()
        },
    );
    let dir = private_gateway_dir(&topo);
    let state = dir.join("state");
    // The test config without a psk line: the daemon generates one.
    let toml: String = GatewayConfig::default()
        .to_toml(state.to_str().unwrap())
        .lines()
        .filter(|l| !l.starts_with("psk ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let config = dir.join("config.toml");
    std::fs::write(&config, &toml).unwrap();
    topo.add_log("config", &config);
    let notify = Notifications::bind(topo.dir().join("notify.sock"));
    let env = [
        ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
        ("RUST_LOG", "debug"),
    ];
    let cfg = config.to_str().unwrap();

    let pid = topo.spawn(
        Role::Gateway,
        "ipsec-server",
        BIN,
        &["run", "--config", cfg],
        &env,
    );
    let ready = notify.until(&topo, pid, "READY=1", Duration::from_secs(20));
    // At the moment READY=1 arrives, the listeners are already there.
    listeners_up(&topo).unwrap_or_else(|e| panic!("READY=1 before the listeners: {e}"));
    assert!(
        ready.last().unwrap().contains("STATUS=serving"),
        "{ready:?}"
    );

    // The generated PSK: kept 0600, shown by show-psk, good for a client.
    let kept = state.join("generated-psk");
    assert_eq!(std::fs::metadata(&kept).unwrap().mode() & 0o777, 0o600);
    let psk = show_psk(&topo, &config);
    assert_eq!(psk.len(), 16, "a generated PSK has 16 characters");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), format!("{psk}\n"));
    let (client, _) = connect(&topo, Role::Client, &ClientConfig::new("c1").psk(&psk));

    // SIGHUP: RELOADING=1 (with MONOTONIC_USEC) then READY=1, the same PSK afterwards.
    let hup = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let reload = notify.until(&topo, pid, "READY=1", Duration::from_secs(10));
    let reloading = reload
        .iter()
        .position(|m| m.lines().any(|l| l == "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1 before READY=1: {reload:?}"));
    assert!(reload[reloading].contains("MONOTONIC_USEC="), "{reload:?}");
    assert_eq!(show_psk(&topo, &config), psk, "a reload keeps the PSK");
    connect(&topo, Role::Client2, &ClientConfig::new("c2").psk(&psk));

    // SIGTERM: STOPPING=1, then the process ends.
    topo.kill(pid);
    notify.until(&topo, pid, "STOPPING=1", Duration::from_secs(5));
    client.stop();

    // A restart serves the same PSK.
    let pid = topo.spawn(
        Role::Gateway,
        "ipsec-server-restarted",
        BIN,
        &["run", "--config", cfg],
        &env,
    );
    notify.until(&topo, pid, "READY=1", Duration::from_secs(20));
    listeners_up(&topo).unwrap();
    assert_eq!(show_psk(&topo, &config), psk, "a restart keeps the PSK");
    connect(&topo, Role::Client, &ClientConfig::new("c1").psk(&psk));
    topo.kill(pid);

    // Never in the logs, never in the config file.
    for log in ["ipsec-server.log", "ipsec-server-restarted.log"] {
        let text = std::fs::read_to_string(topo.dir().join(log)).unwrap();
        assert!(
            text.contains("generated"),
            "{log}: the log says where the PSK comes from"
        );
        assert!(!text.contains(&psk), "{log} shows the PSK");
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), toml);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn notify_ready_for_a_bare_api_gateway_once_the_api_listens() {
    let topo = Topology::new("ntfa", TopoOpts::default());
    let state = topo.dir().join("state");
    let state = state.to_str().unwrap();
    // No [ipsec_server]: a gateway waiting for CreateIpsecServer.
    let config = topo.dir().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[gateway]
vpn_gateway_id = "vpn-notify01"
region_id = "local"
state_dir = "{state}"
control_socket = "{state}/control.sock"

[api]
listen = "127.0.0.1:8097"
[[api.access_keys]]
access_key_id = "notify-test"
access_key_secret = "Notify-Test-Secret-1"
"#
        ),
    )
    .unwrap();
    let notify = Notifications::bind(topo.dir().join("notify.sock"));
    let pid = topo.spawn(
        Role::Gateway,
        "ipsec-server",
        BIN,
        &["run", "--config", config.to_str().unwrap()],
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
    );
    let ready = notify.until(&topo, pid, "READY=1", Duration::from_secs(20));
    let tcp = topo.exec(Role::Gateway, "ss", &["-Hltn"]);
    assert!(
        tcp.stdout.contains("127.0.0.1:8097"),
        "READY=1 before the API listens:\n{tcp}"
    );
    assert!(
        ready
            .last()
            .unwrap()
            .contains("STATUS=control API on 127.0.0.1:8097"),
        "{ready:?}"
    );
    let hup = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let reload = notify.until(&topo, pid, "READY=1", Duration::from_secs(10));
    assert!(reload[0].lines().any(|l| l == "RELOADING=1"), "{reload:?}");
    topo.kill(pid);
    notify.until(&topo, pid, "STOPPING=1", Duration::from_secs(5));
}

#[test]
#[ignore = "needs root: network namespaces, TUN, strongSwan"]
fn an_upgrade_tells_systemd_the_new_main_pid_and_a_failed_one_says_nothing() {
    let topo = Topology::new(
        "ntfu",
        TopoOpts {
            second_client: true,
            ..Default::default()
        },
    );
    let dir = private_gateway_dir(&topo);
    let state = dir.join("state");
    let upbin = dir.join("upgrade-binary");
    let toml = GatewayConfig {
        gateway_extra: vec![format!("upgrade_binary = \"{}\"", upbin.display())],
        ..Default::default()
    }
    .to_toml(state.to_str().unwrap())
        + "\n[metrics]\nlisten = \"127.0.0.1:9578\"\n";
    let config = dir.join("config.toml");
    std::fs::write(&config, &toml).unwrap();
    let notify = Notifications::bind(topo.dir().join("notify.sock"));
    let pid = topo.spawn(
        Role::Gateway,
        "ipsec-server",
        BIN,
        &["run", "--config", config.to_str().unwrap()],
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
    );
    notify.until(&topo, pid, "READY=1", Duration::from_secs(20));
    let (client, vip) = connect(&topo, Role::Client, &ClientConfig::new("c1"));
    let socket = state.join("control.sock");
    let upgrade = || {
        topo.exec_timeout(
            Role::Gateway,
            BIN,
            &["upgrade", "--socket", socket.to_str().unwrap()],
            Duration::from_secs(60),
        )
    };

    // A binary that exits at once: refused, the old process serves on and tells systemd
    // nothing.
    std::fs::write(&upbin, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&upbin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let failed = upgrade();
    assert!(!failed.success(), "{failed}");
    assert!(
        failed.stderr.contains("OperationFailed.Upgrade")
            && failed.stderr.contains("exit status: 3"),
        "{failed}"
    );
    assert_eq!(topo.exited(pid), None, "the old process serves on");
    std::thread::sleep(Duration::from_millis(300));
    let mut buf = [0u8; 4096];
    if let Ok(n) = notify.sock.recv(&mut buf) {
        panic!(
            "a failed upgrade notified systemd: {}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    assert_ping(&topo, Role::Client, vip);

    // The real binary: the new process says MAINPID=itself with READY=1; the old one exits
    // 0 without STOPPING=1; the tunnel, the control socket and the metrics listener go on.
    std::fs::remove_file(&upbin).unwrap();
    std::os::unix::fs::symlink(BIN, &upbin).unwrap();
    let done = upgrade();
    assert!(done.success(), "{done}");
    let new_pid = parse_upgraded(&done.stdout)
        .unwrap_or_else(|| panic!("no `upgraded: pid OLD -> NEW, …` in {done}"))
        .new_pid;
    // Not this test's child: held by a pidfd, stopped when dropped (also on a failure).
    let second = Adopted::new("ipsec-server (upgraded)", new_pid).expect("the new process runs");
    let took_over = notify.until(&topo, pid, "READY=1", Duration::from_secs(10));
    assert!(
        took_over
            .last()
            .unwrap()
            .lines()
            .any(|l| l == format!("MAINPID={new_pid}")),
        "{took_over:?}"
    );
    assert!(
        !took_over.iter().any(|m| m.contains("STOPPING=1")),
        "{took_over:?}"
    );
    let ended = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        topo.exited(pid)
    });
    assert_eq!(
        ended.as_deref(),
        Some("exit code 0"),
        "the old process leaves cleanly"
    );
    assert_ping(&topo, Role::Client, vip);
    let status = topo.exec(
        Role::Gateway,
        BIN,
        &["status", "--socket", socket.to_str().unwrap()],
    );
    assert!(status.success() && status.stdout.contains("c1"), "{status}");
    let metrics = topo.exec(
        Role::Gateway,
        "curl",
        &["-sf", "http://127.0.0.1:9578/metrics"],
    );
    assert!(
        metrics.stdout.contains("ipsec_server_serving 1"),
        "metrics after the upgrade:\n{metrics}"
    );

    // A binary that reads only older snapshots (the test hook plays an older binary): the
    // fallback is a restart — the serving process sends DELETE and stops, the new one says
    // MAINPID= itself first, then starts afresh and is READY; the client must reconnect.
    std::fs::remove_file(&upbin).unwrap();
    std::fs::write(
        &upbin,
        format!("#!/bin/sh\nIPSEC_SERVER_TEST_SNAPSHOT_VERSION=1 exec {BIN} \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&upbin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let restarted = upgrade();
    assert!(restarted.success(), "{restarted}");
    assert!(
        restarted.stdout.starts_with("restarted: pid"),
        "{restarted}"
    );
    let third_pid: u32 = restarted
        .stdout
        .split("-> ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no new pid in {restarted}"));
    let third = Adopted::new("ipsec-server (restarted)", third_pid).expect("the new process runs");
    // (`pid` exited at the first upgrade: `until` watches only processes this test started.)
    let fresh = notify.until(&topo, third_pid, "READY=1", Duration::from_secs(30));
    let main_at = fresh
        .iter()
        .position(|m| m.lines().any(|l| l == format!("MAINPID={third_pid}")))
        .unwrap_or_else(|| panic!("no MAINPID={third_pid}: {fresh:?}"));
    assert!(
        !fresh[..main_at].iter().any(|m| m.contains("STOPPING=1")),
        "{fresh:?}"
    );
    let deleted = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        client
            .log_text()
            .contains("received DELETE for IKE_SA")
            .then_some(())
    });
    assert!(deleted.is_some(), "the client was not sent DELETE");
    assert!(
        second.has_exited(Duration::ZERO),
        "the process that stopped for the restart is gone"
    );
    let (client2, vip2) = connect(&topo, Role::Client2, &ClientConfig::new("c2"));
    assert_ping(&topo, Role::Client2, vip2);
    drop(third);
    notify.until(&topo, third_pid, "STOPPING=1", Duration::from_secs(5));
    client.stop();
    client2.stop();
}

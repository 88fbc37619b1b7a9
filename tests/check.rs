//! `ipsec-server check`: every error of a file at once, each with its line, TOML key path
//! and code; syntax errors with line and column; host conditions (ports in use, an existing
//! interface, a running daemon) marked as such and skipped by `--no-host`; and `check` and
//! `run` (`config::load`) accepting the same files, the shipped ones included.
//!
//! Host probes here use only 127.0.0.1 and ports the kernel hands out, never 500/4500.
// Test code: generated PSKs come from the thread's CSPRNG here, as in the daemon.
#![allow(clippy::disallowed_methods)]

use std::net::UdpSocket;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ipsec_server::config::{
    self, codes, Config, ConfigError, Finding, FindingKind, Report, DEFAULT_CONFIG,
};
use ipsec_server::daemon::host_check;

/// A directory of this test process, removed and made again per call site name.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ipsec-check-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// `check_file` without host conditions (as `check --no-host`).
fn check_no_host(path: &Path) -> (Option<Config>, Report) {
    config::check_file(
        path,
        &|_| Vec::new(),
        &|_| Vec::new(),
        &mut rand::thread_rng(),
    )
}

fn check_bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipsec-server"))
        .arg("check")
        .args(args)
        .output()
        .expect("run ipsec-server check")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// (line, key, code) of every error and host condition.
fn errors(report: &Report) -> Vec<(Option<usize>, &str, &str)> {
    report
        .findings
        .iter()
        .filter_map(|f| f.error().map(|e| (f.line, f.key.as_str(), e.code)))
        .collect()
}

const THREE_ERRORS: &str = r#"# three independent errors, one a default-free key in a sub-table
[gateway]
vpn_gateway_id = "vpn-check01"
region_id = "local"
tun_name = "vpn-0"

[ipsec_server]
local_subnet = ["192.168.0.0/24"]
client_ip_pool = "10.199.0.0/24"
psk = "Sup3r-Secret-Psk"

[ipsec_server.ike_config]
ike_lifetime = 90000

[limits]
half_open_max = 0
"#;

#[test]
fn every_error_is_reported_with_its_line_key_and_code() {
    let dir = temp_dir("three");
    let path = write(&dir, THREE_ERRORS);
    let (cfg, report) = check_no_host(&path);
    assert!(cfg.is_none() && report.is_refused());
    assert_eq!(
        errors(&report),
        [
            (Some(5), "gateway.tun_name", codes::TUN_NAME),
            (
                Some(13),
                "ipsec_server.ike_config.ike_lifetime",
                codes::ILLEGAL_IKE_LIFETIME
            ),
            (Some(16), "limits.half_open_max", codes::HALF_OPEN_MAX),
        ]
    );
    // `run` validates through `load`: refused with the same report.
    let run = config::load(&path, &|_| Vec::new(), &mut rand::thread_rng())
        .expect_err("run refuses it too");
    assert_eq!(run, report);
    // The API path (`from_raw`) still answers with the first error.
    let first =
        Config::from_toml_str(THREE_ERRORS, &[], &mut rand::thread_rng()).expect_err("refused");
    assert_eq!(first.code, codes::TUN_NAME);

    // The command: every line on stderr, nothing on stdout, a failure status.
    let out = check_bin(&["--no-host", "--config", path.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let f = path.display();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "{f}:5: gateway.tun_name: InvalidConfig.TunName: gateway.tun_name \"vpn-0\""
        )),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        format!(
            "{f}:13: ipsec_server.ike_config.ike_lifetime: IllegalParam.IkeLifetime: \
             IkeLifetime 90000 is outside 0..=86400"
        )
    );
    assert!(
        lines[2].starts_with(&format!(
            "{f}:16: limits.half_open_max: InvalidConfig.HalfOpenMax: "
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn warnings_and_defaults_get_lines_and_a_valid_file_says_ok() {
    let dir = temp_dir("warn");
    // The example PSK on loopback only is a warning: the file is valid, `check` prints the
    // warning on stderr and OK on stdout.
    let path = write(
        &dir,
        "[gateway]\nvpn_gateway_id = \"vpn-check02\"\nregion_id = \"local\"\n\
         listen_addrs = [\"127.0.0.1\"]\n\n[ipsec_server]\nlocal_subnet = [\"192.168.0.0/24\"]\nclient_ip_pool = \"10.199.1.0/24\"\n\
         psk = \"change-me-please\"\n",
    );
    let out = check_bin(&["--no-host", "-c", path.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("OK: {} is valid\n", path.display())
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}:9: ipsec_server.psk: warning: Psk is the example value of the shipped \
             configuration; change it\n",
            path.display()
        )
    );
    // An error on a key the file does not write (nat_t_port defaults to 4500) is placed at
    // its table.
    let path = write(
        &dir,
        "[gateway]\nvpn_gateway_id = \"vpn-check02\"\nregion_id = \"local\"\nike_port = 4500\n\n\
         [api]\n[[api.access_keys]]\naccess_key_id = \"k1\"\n\n[[api.access_keys]]\n\
         access_key_id = \"k1\"\naccess_key_secret = \"s2\"\n",
    );
    let (_, report) = check_no_host(&path);
    assert_eq!(
        errors(&report),
        [
            (Some(1), "gateway.nat_t_port", codes::NAT_T_PORT),
            (
                Some(7),
                "api.access_keys[0].access_key_secret",
                codes::ACCESS_KEY_SECRET
            ),
            (
                Some(11),
                "api.access_keys[1].access_key_id",
                codes::ACCESS_KEY_ID
            ),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_syntax_error_keeps_its_line_and_column() {
    let dir = temp_dir("syntax");
    let path = write(
        &dir,
        "[gateway]\nvpn_gateway_id = \"v\"\nregion_id = \n[ipsec_server]\n",
    );
    let out = check_bin(&["--no-host", "-c", path.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:3:13: InvalidConfig.Syntax: ", path.display())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // A type error or an unknown key (serde) is placed the same way, and named.
    let path = write(
        &dir,
        "[gateway]\nvpn_gateway_id = \"v\"\nregion_id = \"x\"\n\nike_port = \"500\"\n",
    );
    let (_, report) = check_no_host(&path);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(
        (report.findings[0].line, report.findings[0].key.as_str()),
        (Some(5), "gateway.ike_port")
    );
    assert_eq!(
        report.findings[0].error().map(|e| e.code),
        Some(codes::SYNTAX)
    );
    let path = write(
        &dir,
        "[gateway]\nvpn_gateway_id = \"v\"\nregion_id = \"x\"\n\n[ipsec_server]\n\
         local_subnet = [\"192.168.0.0/24\"]\nclient_ip_pool = \"10.199.4.0/24\"\n\
         [ipsec_server.ike_config]\nike_lifetim = 5\n",
    );
    let out = check_bin(&["--no-host", "-c", path.to_str().expect("utf-8")]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "{}:9:1: ipsec_server.ike_config.ike_lifetim: InvalidConfig.Syntax: unknown field \
             `ike_lifetim`",
            path.display()
        )),
        "{stderr}"
    );
    // An unreadable file: no line.
    let out = check_bin(&["-c", "/nonexistent/ipsec-server.toml"]);
    assert!(text(&out.stderr).starts_with("/nonexistent/ipsec-server.toml: InvalidConfig.Io: "));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `check` accepts exactly the TUN names `run` can use: an interface name (`io::tun`) that is
/// also the suffix of the daemon's nftables tables (`io::net`).
#[test]
fn tun_names_check_accepts_are_the_ones_run_accepts() {
    let base = "[gateway]\nvpn_gateway_id = \"v\"\nregion_id = \"x\"\n\
                [ipsec_server]\nlocal_subnet = [\"192.168.0.0/24\"]\n\
                client_ip_pool = \"10.199.2.0/24\"\npsk = \"Sup3r-Secret-Psk\"\n";
    let mut names: Vec<String> = [
        "ipsec0",
        "vpn-0",
        "vpn.0",
        "vpn_0",
        "VPN9",
        "a",
        "",
        ".",
        "..",
        "tun:0",
        "a b",
        "é",
        "abcdefghijklmno",
        "abcdefghijklmnop",
        "tun/0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    names.extend((0x21u8..0x7f).map(|b| format!("t{}", b as char)));
    for name in names {
        let text = base.replace(
            "region_id = \"x\"\n",
            &format!(
                "region_id = \"x\"\ntun_name = {}\n",
                toml::Value::from(name.as_str())
            ),
        );
        let check = Config::from_toml_str(&text, &[], &mut rand::thread_rng());
        let run = ipsec_server::io::tun::validate_ifname(&name).is_ok()
            && ipsec_server::io::net::table_name(&name, "mss").is_ok();
        assert_eq!(check.is_ok(), run, "tun_name {name:?}: {check:?}");
        if let Err(e) = check {
            assert_eq!(e.code, codes::TUN_NAME, "{name:?}");
        }
    }
}

/// A free UDP port on 127.0.0.1 (bound, then released).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("ephemeral port")
        .port()
}

fn host_config(dir: &Path, ike_port: u16, nat_t_port: u16, tun: &str) -> PathBuf {
    write(
        dir,
        &format!(
            "[gateway]\nvpn_gateway_id = \"vpn-check03\"\nregion_id = \"local\"\n\
             listen_addrs = [\"127.0.0.1\"]\nike_port = {ike_port}\nnat_t_port = {nat_t_port}\n\
             tun_name = \"{tun}\"\ncontrol_socket = \"{}\"\n\n\
             [ipsec_server]\nlocal_subnet = [\"192.168.0.0/24\"]\n\
             client_ip_pool = \"10.199.3.0/24\"\npsk = \"Sup3r-Secret-Psk\"\n",
            dir.join("run/control.sock").display()
        ),
    )
}

fn host_conditions(report: &Report) -> Vec<(&str, &str)> {
    report
        .findings
        .iter()
        .filter_map(|f| match &f.kind {
            FindingKind::Host(e) => Some((f.key.as_str(), e.code)),
            _ => None,
        })
        .collect()
}

#[test]
fn host_conditions_are_reported_and_skipped_with_no_host() {
    let dir = temp_dir("host");
    let tun = format!("chk{}", std::process::id() % 100_000);
    // Ports in use: hold the IKE port on 127.0.0.1.
    let held = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let ike_port = held.local_addr().expect("addr").port();
    let nat_t_port = free_udp_port();
    let path = host_config(&dir, ike_port, nat_t_port, &tun);
    let check = |path: &Path| {
        config::check_file(
            path,
            &|_| Vec::new(),
            &host_check::conditions,
            &mut rand::thread_rng(),
        )
    };
    let (cfg, report) = check(&path);
    assert!(cfg.is_none());
    assert_eq!(
        host_conditions(&report),
        [("gateway.ike_port", codes::HOST_PORT_IN_USE)]
    );
    assert_eq!(report.findings[0].line, Some(5), "{report}");

    let out = check_bin(&["-c", path.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}:5: gateway.ike_port: host: Host.PortInUse: UDP 127.0.0.1:{ike_port} is in use\n",
            path.display()
        )
    );
    let out = check_bin(&["--no-host", "-c", path.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    drop(held);

    // Released: nothing to report.
    let (cfg, report) = check(&path);
    assert!(cfg.is_some(), "{report}");

    // An interface of that name (`lo` always exists) and a daemon on the control socket.
    let path = host_config(&dir, ike_port, nat_t_port, "lo");
    std::fs::create_dir_all(dir.join("run")).expect("mkdir");
    let daemon = UnixListener::bind(dir.join("run/control.sock")).expect("listen");
    let (_, report) = check(&path);
    assert_eq!(
        host_conditions(&report),
        [
            ("gateway.tun_name", codes::HOST_INTERFACE_EXISTS),
            ("gateway.control_socket", codes::HOST_DAEMON_RUNNING),
        ]
    );

    // A file where the socket goes: `run` leaves it alone and does not start.
    drop(daemon);
    std::fs::remove_file(dir.join("run/control.sock")).expect("rm socket");
    std::fs::write(dir.join("run/control.sock"), "not a socket").expect("file");
    let (_, report) = check(&path);
    assert_eq!(
        host_conditions(&report)[1],
        ("gateway.control_socket", codes::HOST_CONTROL_SOCKET)
    );

    // ClientIpPool on a host network: the validation error, marked as a host condition.
    let (_, report) = config::check_file(
        &path,
        &|_| vec!["10.199.0.0/16".parse().expect("net")],
        &|_| Vec::new(),
        &mut rand::thread_rng(),
    );
    assert_eq!(
        host_conditions(&report),
        [(
            "ipsec_server.client_ip_pool",
            codes::CLIENT_IP_POOL_CONFLICT
        )]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Points secret-file keys of a shipped file at real files, as an installation would.
fn installed_copy(src: &Path, dir: &Path) -> PathBuf {
    let mut doc: toml::Table = std::fs::read_to_string(src)
        .expect("readable")
        .parse()
        .expect("TOML");
    let secret = dir.join("secret");
    std::fs::write(&secret, "Example-Secret-42\n").expect("secret");
    let secret = toml::Value::from(secret.to_str().expect("utf-8"));
    if let Some(s) = doc.get_mut("ipsec_server").and_then(|v| v.as_table_mut()) {
        if s.contains_key("psk_file") {
            s.insert("psk_file".into(), secret.clone());
        }
    }
    let keys = doc
        .get_mut("api")
        .and_then(|v| v.get_mut("access_keys"))
        .and_then(|v| v.as_array_mut());
    for key in keys.into_iter().flatten() {
        let key = key.as_table_mut().expect("table");
        if key.contains_key("access_key_secret_file") {
            key.insert("access_key_secret_file".into(), secret.clone());
        }
    }
    let name = src.file_name().expect("file name");
    let path = dir.join(name);
    std::fs::write(&path, toml::to_string(&doc).expect("TOML")).expect("write");
    path
}

/// Every shipped file passes `check` (without host conditions: they are written for other
/// machines) and the validation `run` performs (`config::load`), with the same verdict.
#[test]
fn shipped_files_pass_check_and_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("configs/ipsec-server.toml")];
    for entry in std::fs::read_dir(root.join("configs/examples")).expect("configs/examples") {
        files.push(entry.expect("entry").path());
    }
    let dir = temp_dir("shipped");
    for file in &files {
        let path = installed_copy(file, &dir);
        let (cfg, report) = check_no_host(&path);
        assert!(cfg.is_some(), "{report}");
        let loaded = config::load(&path, &|_| Vec::new(), &mut rand::thread_rng())
            .unwrap_or_else(|r| panic!("run refuses {}:\n{r}", file.display()));
        assert_eq!(loaded.gateway(), cfg.as_ref().expect("checked").gateway());
        let out = check_bin(&["--no-host", "-c", path.to_str().expect("utf-8")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        // Warnings only (the shipped placeholders), each on a line of its own key.
        for f in &report.findings {
            assert!(matches!(f.kind, FindingKind::Warning(_)), "{report}");
            assert!(f.line.is_some() && !f.key.is_empty(), "{report}");
        }
    }
    assert!(files.len() >= 3);
    assert_eq!(DEFAULT_CONFIG, "/etc/ipsec-server/ipsec-server.toml");
    let _ = std::fs::remove_dir_all(&dir);
}

// The report's types are plain data: a finding built by hand prints as `check` prints.
#[test]
fn report_lines_follow_the_documented_format() {
    let mut host = Finding::new(
        "gateway.ike_port",
        FindingKind::Host(ConfigError::new(
            codes::HOST_PORT_IN_USE,
            "UDP 0.0.0.0:500 is in use",
        )),
    );
    host.line = Some(7);
    let whole = Finding::new(
        "",
        FindingKind::Error(ConfigError::new(codes::NOTHING_TO_SERVE, "nothing")),
    );
    let report = Report {
        file: PathBuf::from("/etc/gw.toml"),
        findings: vec![host, whole],
    };
    assert_eq!(
        report.to_string(),
        "/etc/gw.toml:7: gateway.ike_port: host: Host.PortInUse: UDP 0.0.0.0:500 is in use\n\
         /etc/gw.toml: InvalidConfig.NothingToServe: nothing"
    );
    assert_eq!(
        report.first_error().map(|e| e.code),
        Some(codes::HOST_PORT_IN_USE)
    );
}

/// Both published example secrets beside a public listener: each refused at its own key.
#[test]
fn every_exposed_example_secret_is_reported() {
    let dir = temp_dir("example");
    let path = write(
        &dir,
        "[gateway]\nvpn_gateway_id = \"v\"\nregion_id = \"x\"\n\n[ipsec_server]\n\
         local_subnet = [\"192.168.0.0/24\"]\nclient_ip_pool = \"10.199.5.0/24\"\n\
         psk = \"change-me-please\"\n\n[api]\n[[api.access_keys]]\naccess_key_id = \"k\"\n\
         access_key_secret = \"change-me\"\n",
    );
    let (cfg, report) = check_no_host(&path);
    assert!(cfg.is_none());
    assert_eq!(
        errors(&report),
        [
            (Some(8), "ipsec_server.psk", codes::EXAMPLE_SECRET),
            (Some(11), "api.access_keys[0]", codes::EXAMPLE_SECRET),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

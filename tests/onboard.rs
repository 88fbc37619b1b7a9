//! `ipsec-server client-config` against the daemon: the rendered files connect real
//! strongSwan clients. The swanctl.conf is loaded unchanged; the Apple profile and the
//! NetworkManager keyfile are parsed by Python (`plistlib`, `configparser`), every value is
//! checked against the gateway's configuration, and their algorithms and identities,
//! translated back to strongSwan notation, connect too. One gateway serves the clients of a
//! suite; the namespaces are built once. Needs root, like tests/interop.rs.
// Test code: deadlines over real processes read the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use common::charon::parse_virtual_ip;
use common::flows::assert_ping;
use common::gateway::Daemon;
use common::topo::addr;
use common::*;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;

/// The connection and child names of the rendered swanctl.conf.
const CHILD: &str = "lan";

/// `client-config ARGS…` in the gateway namespace (where the daemon's config is valid):
/// stdout, stderr, success.
fn client_config(topo: &Topology, daemon: &Daemon, args: &[&str]) -> CmdOutput {
    let cfg = daemon.config.to_str().unwrap();
    let mut all = vec!["client-config", "--config", cfg, "--server"];
    let gw = addr::GW_OUTSIDE.to_string();
    all.push(&gw);
    all.extend_from_slice(args);
    topo.exec(Role::Gateway, Daemon::BIN, &all)
}

/// Starts charon in `role` with `swanctl_conf`, initiates `child`, and returns its virtual IP
/// after checking the SAs.
fn connect_with(
    topo: &Topology,
    role: Role,
    swanctl_conf: &str,
    child: &str,
) -> (Charon, Ipv4Addr) {
    let charon = Charon::start(topo, role, swanctl_conf);
    charon
        .initiate(child)
        .expect_ok(&format!("{role:?}: swanctl --initiate --child {child}"));
    let sas = charon.list_sas();
    assert!(
        sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
        "{sas}"
    );
    assert!(sas.contains(addr::LOCAL_SUBNET), "remote TS: {sas}");
    let vip = parse_virtual_ip(&sas).unwrap_or_else(|| panic!("no virtual IP:\n{sas}"));
    (charon, vip)
}

/// Parses `text` with Python (`prog` reads stdin, prints JSON).
fn python_json(topo: &Topology, name: &str, text: &str, prog: &str) -> serde_json::Value {
    let path = topo.dir().join(name);
    std::fs::write(&path, text).unwrap();
    let script = format!("import sys, json\nf = open(sys.argv[1], 'rb')\n{prog}");
    let out = topo
        .exec(
            Role::Gateway,
            "python3",
            &["-c", &script, path.to_str().unwrap()],
        )
        .expect_ok("python3");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

fn s<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a serde_json::Value {
    path.iter().fold(v, |v, k| &v[*k])
}

/// Apple's spelling back to strongSwan's (the inverse of what the gateway's suites need).
fn apple_to_strongswan(sa: &serde_json::Value, with_dh: bool) -> String {
    let enc = match sa["EncryptionAlgorithm"].as_str().unwrap() {
        "AES-128" => "aes128",
        "AES-256" => "aes256",
        "3DES" => "3des",
        "DES" => "des",
        other => panic!("unexpected EncryptionAlgorithm {other}"),
    };
    let integ = match sa["IntegrityAlgorithm"].as_str().unwrap() {
        "SHA1-96" => "sha1",
        "SHA2-256" => "sha256",
        "SHA2-384" => "sha384",
        "SHA2-512" => "sha512",
        other => panic!("unexpected IntegrityAlgorithm {other}"),
    };
    let dh = match sa["DiffieHellmanGroup"].as_u64().unwrap() {
        2 => "modp1024",
        5 => "modp1536",
        14 => "modp2048",
        other => panic!("unexpected DiffieHellmanGroup {other}"),
    };
    if with_dh {
        format!("{enc}-{integ}-{dh}")
    } else {
        format!("{enc}-{integ}")
    }
}

/// A swanctl.conf written by the test (not by the command) from translated values.
fn translated(
    ike: &str,
    esp: &str,
    id: &str,
    idr: &str,
    server: &str,
    psk: &str,
    ts: &str,
) -> String {
    format!(
        "connections {{\n gw {{\n  version = 2\n  remote_addrs = {server}\n  vips = 0.0.0.0\n  encap = yes\n  proposals = {ike}\n  local {{\n   auth = psk\n   id = {id}\n  }}\n  remote {{\n   auth = psk\n   id = {idr}\n  }}\n  children {{\n   net {{\n    remote_ts = {ts}\n    esp_proposals = {esp}\n    start_action = none\n   }}\n  }}\n }}\n}}\nsecrets {{\n ike-gw {{\n  id-a = {id}\n  id-b = {idr}\n  secret = \"{psk}\"\n }}\n}}\n"
    )
}

/// The Apple profile: values checked against the gateway config, then a client built from them.
fn apple_client(topo: &Topology, daemon: &Daemon, gw: &GatewayConfig) -> String {
    let out = client_config(
        topo,
        daemon,
        &[
            "--format",
            "apple",
            "--with-secret",
            "--id",
            "client-apple.example",
        ],
    )
    .expect_ok("client-config --format apple");
    let plist = python_json(
        topo,
        "profile.mobileconfig",
        &out.stdout,
        "import plistlib\nprint(json.dumps(plistlib.load(f)))",
    );
    assert_eq!(plist["PayloadType"], "Configuration");
    let vpn = &plist["PayloadContent"][0];
    assert_eq!(vpn["PayloadType"], "com.apple.vpn.managed");
    assert_eq!(vpn["VPNType"], "IKEv2");
    let ike = &vpn["IKEv2"];
    assert_eq!(ike["AuthenticationMethod"], "SharedSecret");
    assert_eq!(ike["SharedSecret"], gw.psk.as_str());
    assert_eq!(ike["RemoteAddress"], addr::GW_OUTSIDE.to_string());
    assert_eq!(ike["RemoteIdentifier"], gw.local_id.as_str());
    assert_eq!(ike["LocalIdentifier"], "client-apple.example");
    assert_eq!(ike["EnablePFS"], 1, "ipsec_pfs is set");
    assert!(
        ["None", "Low", "Medium", "High"].contains(&ike["DeadPeerDetectionRate"].as_str().unwrap())
    );
    let (enc, integ, group) = match gw.suite.enc {
        "aes" => ("AES-128", "SHA1-96", 2),
        "aes256" => ("AES-256", "SHA2-256", 14),
        other => panic!("suite {other} not in this test"),
    };
    for (sa, lifetime) in [
        ("IKESecurityAssociationParameters", gw.ike_lifetime),
        ("ChildSecurityAssociationParameters", gw.ipsec_lifetime),
    ] {
        let d = &ike[sa];
        assert_eq!(d["EncryptionAlgorithm"], enc, "{sa}");
        assert_eq!(d["IntegrityAlgorithm"], integ, "{sa}");
        assert_eq!(d["DiffieHellmanGroup"], group, "{sa}");
        let minutes = d["LifeTimeInMinutes"].as_u64().unwrap();
        assert!((10..=1440).contains(&minutes), "{sa}: {minutes}");
        assert_eq!(
            minutes,
            u64::from(lifetime) * 9 / 10 / 60,
            "{sa}: 90 % in minutes"
        );
    }
    assert_eq!(vpn["PayloadUUID"].as_str().unwrap().len(), 36);
    let ike_p = apple_to_strongswan(&ike["IKESecurityAssociationParameters"], true);
    let esp_p = apple_to_strongswan(&ike["ChildSecurityAssociationParameters"], true);
    assert_eq!(ike_p, gw.suite.proposal);
    translated(
        &ike_p,
        &esp_p,
        ike["LocalIdentifier"].as_str().unwrap(),
        ike["RemoteIdentifier"].as_str().unwrap(),
        ike["RemoteAddress"].as_str().unwrap(),
        ike["SharedSecret"].as_str().unwrap(),
        addr::LOCAL_SUBNET,
    )
}

/// The NetworkManager keyfile: the plugin's key names, then a client built from them.
fn nm_client(topo: &Topology, daemon: &Daemon, gw: &GatewayConfig) -> String {
    let out = client_config(
        topo,
        daemon,
        &[
            "--format",
            "networkmanager",
            "--with-secret",
            "--id",
            "client-nm.example",
        ],
    )
    .expect_ok("client-config --format networkmanager");
    let ini = python_json(
        topo,
        "vpn.nmconnection",
        &out.stdout,
        "import configparser\nc = configparser.ConfigParser(interpolation=None)\n\
         c.read_string(f.read().decode())\nprint(json.dumps({s: dict(c[s]) for s in c.sections()}))",
    );
    assert_eq!(s(&ini, &["connection", "type"]), "vpn");
    let vpn = &ini["vpn"];
    assert_eq!(
        vpn["service-type"],
        "org.freedesktop.NetworkManager.strongswan"
    );
    assert_eq!(vpn["method"], "psk");
    assert_eq!(vpn["address"], addr::GW_OUTSIDE.to_string());
    assert_eq!(vpn["local-identity"], "client-nm.example");
    assert_eq!(vpn["remote-identity"], gw.local_id.as_str());
    assert_eq!(vpn["virtual"], "yes");
    assert_eq!(vpn["encap"], "yes");
    assert_eq!(vpn["proposal"], "yes");
    assert_eq!(vpn["ike"], gw.suite.proposal);
    assert_eq!(vpn["esp"], gw.suite.proposal);
    assert_eq!(vpn["remote-ts"], addr::LOCAL_SUBNET);
    assert_eq!(vpn["password-flags"], "0");
    assert_eq!(s(&ini, &["vpn-secrets", "password"]), gw.psk.as_str());
    assert_eq!(s(&ini, &["ipv4", "method"]), "auto");
    translated(
        vpn["ike"].as_str().unwrap(),
        vpn["esp"].as_str().unwrap(),
        vpn["local-identity"].as_str().unwrap(),
        vpn["remote-identity"].as_str().unwrap(),
        vpn["address"].as_str().unwrap(),
        ini["vpn-secrets"]["password"].as_str().unwrap(),
        &vpn["remote-ts"].as_str().unwrap().replace(';', ","),
    )
}

/// One gateway per suite, each rendered client connected in turn and pinging the LAN host.
#[test]
#[ignore = "needs root: network namespaces, strongSwan"]
fn rendered_configs_connect_and_ping() {
    let topo = Topology::new("onb", TopoOpts::default());
    for suite in [Suite::DEFAULT, Suite::AES256_SHA256_MODP2048] {
        let gw = GatewayConfig {
            ike_lifetime: 7200,
            ipsec_lifetime: 3600,
            ..GatewayConfig::default().suite(suite)
        };
        let Gateway::IpsecServer(daemon) =
            Gateway::start_kind(GatewayKind::IpsecServer, &topo, &gw)
        else {
            unreachable!()
        };

        // swanctl: the output unchanged.
        let out = client_config(
            &topo,
            &daemon,
            &[
                "--format",
                "swanctl",
                "--with-secret",
                "--id",
                "client-swanctl.example",
            ],
        )
        .expect_ok("client-config --format swanctl");
        assert!(out.stderr.contains("swanctl: compatible"), "{}", out.stderr);
        assert!(out
            .stdout
            .contains(&format!("proposals = {}\n", suite.proposal)));
        // The running daemon renders the same file on its control socket (for tooling).
        let sock = topo.dir().join("ipsec-server/state/control.sock");
        let gw_addr = addr::GW_OUTSIDE.to_string();
        let from_daemon = topo
            .exec(
                Role::Gateway,
                Daemon::BIN,
                &[
                    "client-config",
                    "--socket",
                    sock.to_str().unwrap(),
                    "--server",
                    &gw_addr,
                    "--format",
                    "swanctl",
                    "--with-secret",
                    "--id",
                    "client-swanctl.example",
                ],
            )
            .expect_ok("client-config --socket");
        // Only the header line naming the source differs ("# from the running daemon.").
        let body = |t: &str| t.lines().skip(2).collect::<Vec<_>>().join("\n");
        assert!(from_daemon.stdout.contains("# from the running daemon."));
        assert_eq!(
            body(&from_daemon.stdout),
            body(&out.stdout),
            "the daemon's rendering differs from the file's"
        );
        let (charon, vip) = connect_with(&topo, Role::Client, &out.stdout, CHILD);
        assert_ping(&topo, Role::Client, vip);
        eprintln!(
            "[onb] {} swanctl output: connected as {vip}, ping ok",
            suite.proposal
        );
        charon.stop();

        // --out with the PSK: mode 0600, also over an existing file others could read.
        let file = topo.dir().join("client-swanctl.conf");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        client_config(
            &topo,
            &daemon,
            &[
                "--format",
                "swanctl",
                "--with-secret",
                "--out",
                file.to_str().unwrap(),
            ],
        )
        .expect_ok("client-config --out");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a file with the PSK is 0600");
        assert!(std::fs::read_to_string(&file).unwrap().contains(&gw.psk));

        // The Apple profile and the NetworkManager keyfile, translated back.
        for (what, conf) in [
            ("apple", apple_client(&topo, &daemon, &gw)),
            ("networkmanager", nm_client(&topo, &daemon, &gw)),
        ] {
            let (charon, vip) = connect_with(&topo, Role::Client, &conf, "net");
            assert_ping(&topo, Role::Client, vip);
            eprintln!(
                "[onb] {} {what} translated back: connected as {vip}, ping ok",
                suite.proposal
            );
            charon.stop();
        }

        // Windows is refused, with status 1 and no output.
        let win = client_config(&topo, &daemon, &["--format", "windows"]);
        assert_eq!(win.status.and_then(|s| s.code()), Some(1), "{win}");
        assert!(
            win.stdout.is_empty() && win.stderr.contains("REFUSED"),
            "{win}"
        );
        // Android: the default suite (SHA-1, MODP-1024) is refused naming the settings; the
        // second is still refused for its PFS (ipsec_pfs set), which it names.
        let android = client_config(&topo, &daemon, &["--format", "android"]);
        assert_eq!(android.status.and_then(|s| s.code()), Some(1), "{android}");
        assert!(
            android.stderr.contains("set ipsec_pfs = disabled"),
            "{android}"
        );

        topo.kill(daemon.pid);
    }
}

//! Integration tests of the configuration layer through its public API: every error code,
//! the defaults, secret hygiene, the API (JSON/CamelCase) path, and the shipped files.
// Test code: generated PSKs come from the thread's CSPRNG here, as in the daemon.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use ipsec_server::config::{
    codes, load, split_local_subnet, AuthAlg, Config, ConfigError, ConfigRaw, DhGroup, EncAlg,
    Identity, IkeConfigRaw, IpsecConfigRaw, IpsecServerSpec, UniquePolicy,
};
use ipsec_server::daemon::responder_config;
use ipsec_server::ike::Limits;
use ipsec_server::io::host::{host_networks, host_networks_excluding};
use ipsec_server::secret::SecretBytes;
use toml::{Table, Value};

const PSK: &str = "Sup3r-Secret-Psk";
const AK_SECRET: &str = "Ak-Secret-Value-42";

const MINIMAL: &str = r#"
[gateway]
vpn_gateway_id = "vpn-test0001"
region_id = "local"

[ipsec_server]
local_subnet = ["192.168.0.0/24"]
client_ip_pool = "10.0.0.0/24"
psk = "Sup3r-Secret-Psk"
"#;

// --- helpers ------------------------------------------------------------------------------

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("test literal")
}

fn minimal() -> Table {
    MINIMAL.parse().expect("MINIMAL is valid TOML")
}

/// Sets `path` (dotted) in `doc`, creating tables on the way.
fn set(doc: &mut Table, path: &str, v: impl Into<Value>) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("non-empty path");
    let mut t = doc;
    for k in keys {
        t = t
            .entry(k)
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .expect("path goes through tables");
    }
    t.insert(last.to_owned(), v.into());
}

fn remove(doc: &mut Table, path: &str) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("non-empty path");
    let mut t = doc;
    for k in keys {
        t = t.get_mut(k).and_then(Value::as_table_mut).expect("table");
    }
    t.remove(last);
}

fn strs(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(*s)).collect())
}

/// The generator a generated PSK comes from: the thread's CSPRNG, as the daemon passes it.
fn rng() -> rand::rngs::ThreadRng {
    rand::thread_rng()
}

fn validate(doc: &Table, host: &[Ipv4Net]) -> Result<Config, ConfigError> {
    Config::from_toml_str(
        &toml::to_string(doc).expect("serializable"),
        host,
        &mut rng(),
    )
}

/// The error of `minimal()` after `edit`.
fn err_with(edit: impl FnOnce(&mut Table)) -> ConfigError {
    let mut doc = minimal();
    edit(&mut doc);
    validate(&doc, &[]).expect_err("edited config must be rejected")
}

fn ok_with(edit: impl FnOnce(&mut Table)) -> Config {
    let mut doc = minimal();
    edit(&mut doc);
    validate(&doc, &[]).unwrap_or_else(|e| panic!("rejected: {e}"))
}

/// A file in a fresh temp dir with the given mode.
fn temp_file(name: &str, contents: &[u8], mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("ipsec-server-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_owned()
}

// --- every error code ---------------------------------------------------------------------

/// One or more failing inputs per code; `every_error_code_is_exercised` checks the table
/// covers `codes::ALL`.
fn cases() -> Vec<(&'static str, ConfigError)> {
    let long = "x".repeat(101);
    let missing = temp_file("unused", b"", 0o600).with_file_name("does-not-exist");
    let mut v: Vec<(&'static str, ConfigError)> = Vec::new();
    let mut case = |code: &'static str, e: ConfigError| v.push((code, e));

    // LocalSubnet
    for bad in [
        strs(&["192.168.0.1/24"]),
        strs(&["banana"]),
        strs(&[]),
        strs(&["192.168.0.0/24", "192.168.0.0/24"]),
        strs(&["127.0.0.0/24"]),
        strs(&["192.168.0.0/24 "]),
        strs(&["192.168.0.0/33"]),
        Value::from("192.168.0.0/24,"),
        Value::from("192.168.0.0/24,,192.168.1.0/24"),
    ] {
        case(
            codes::ILLEGAL_LOCAL_SUBNET,
            err_with(|d| set(d, "ipsec_server.local_subnet", bad)),
        );
    }
    // ClientIpPool
    for bad in ["10.0.0.0/8", "10.0.0.0/15", "10.0.0.0/30", "10.0.0.0/32"] {
        case(
            codes::CLIENT_IP_POOL_NETMASK_INVALID,
            err_with(|d| set(d, "ipsec_server.client_ip_pool", bad)),
        );
    }
    for bad in [
        "10.0.0.1/24",
        "10.0.0.0",
        "",
        "010.0.0.0/24",
        "10.0.0.0/024",
        "224.0.0.0/24",
        "169.254.0.0/16",
        "fd00::/64",
    ] {
        case(
            codes::CLIENT_IP_POOL_SUBNET_INVALID,
            err_with(|d| set(d, "ipsec_server.client_ip_pool", bad)),
        );
    }
    case(
        codes::CLIENT_IP_POOL_CONFLICT,
        err_with(|d| set(d, "ipsec_server.client_ip_pool", "192.168.0.0/25")),
    );
    case(
        codes::CLIENT_IP_POOL_CONFLICT,
        err_with(|d| set(d, "ipsec_server.client_ip_pool", "192.168.0.0/16")),
    );
    case(
        codes::CLIENT_IP_POOL_CONFLICT,
        validate(&minimal(), &[net("10.0.0.0/16")]).expect_err("pool inside host net"),
    );
    case(
        codes::CLIENT_IP_POOL_CONFLICT,
        validate(&minimal(), &[net("10.0.0.77/32")]).expect_err("host route inside pool"),
    );
    // PskEnabled / Psk
    case(
        codes::ILLEGAL_AUTH_METHOD,
        err_with(|d| set(d, "ipsec_server.psk_enabled", false)),
    );
    for bad in [
        String::new(),
        long.clone(),
        "tab\there".into(),
        "café".into(),
    ] {
        case(
            codes::ILLEGAL_PSK,
            err_with(|d| set(d, "ipsec_server.psk", bad)),
        );
    }
    case(
        codes::ILLEGAL_PSK,
        err_with(|d| {
            remove(d, "ipsec_server.psk");
            let f = temp_file("psk-bad", b"bad\x01psk\n", 0o600);
            set(d, "ipsec_server.psk_file", path_str(&f));
        }),
    );
    case(
        codes::PSK_FILE,
        err_with(|d| {
            let f = temp_file("psk-both", b"x", 0o600);
            set(d, "ipsec_server.psk_file", path_str(&f));
        }),
    );
    case(
        codes::PSK_FILE,
        err_with(|d| {
            remove(d, "ipsec_server.psk");
            set(d, "ipsec_server.psk_file", "relative/psk");
        }),
    );
    case(
        codes::PSK_FILE,
        err_with(|d| {
            remove(d, "ipsec_server.psk");
            set(d, "ipsec_server.psk_file", path_str(&missing));
        }),
    );
    // IpSecServerName
    for bad in [
        String::new(),
        long.clone(),
        "http://evil".into(),
        "https://evil".into(),
        "a\nb".into(),
    ] {
        case(
            codes::ILLEGAL_NAME,
            err_with(|d| set(d, "ipsec_server.ipsec_server_name", bad)),
        );
    }
    // IkeConfig
    let ike = |key: &str, v: Value| {
        let path = format!("ipsec_server.ike_config.{key}");
        err_with(|d| set(d, &path, v))
    };
    case(
        codes::ILLEGAL_IKE_VERSION,
        ike("ike_version", "ikev3".into()),
    );
    case(
        codes::ILLEGAL_IKE_VERSION,
        ike("ike_version", "IKEv2".into()),
    );
    case(
        codes::UNSUPPORTED_IKE_VERSION,
        ike("ike_version", "ikev1".into()),
    );
    case(codes::ILLEGAL_IKE_MODE, ike("ike_mode", "quick".into()));
    case(
        codes::UNSUPPORTED_IKE_MODE,
        ike("ike_mode", "aggressive".into()),
    );
    case(
        codes::ILLEGAL_IKE_ENC_ALG,
        ike("ike_enc_alg", "aes512".into()),
    );
    case(codes::ILLEGAL_IKE_ENC_ALG, ike("ike_enc_alg", "AES".into()));
    case(
        codes::ILLEGAL_IKE_AUTH_ALG,
        ike("ike_auth_alg", "sha3".into()),
    );
    case(codes::ILLEGAL_IKE_PFS, ike("ike_pfs", "disabled".into()));
    case(codes::ILLEGAL_IKE_PFS, ike("ike_pfs", "group15".into()));
    case(
        codes::ILLEGAL_IKE_LIFETIME,
        ike("ike_lifetime", (-1).into()),
    );
    case(
        codes::ILLEGAL_IKE_LIFETIME,
        ike("ike_lifetime", 86_401.into()),
    );
    case(
        codes::ILLEGAL_LOCAL_ID,
        ike("local_id", long.as_str().into()),
    );
    case(
        codes::ILLEGAL_LOCAL_ID,
        ike("local_id", "gw example".into()),
    );
    case(codes::ILLEGAL_LOCAL_ID, ike("local_id", "@#abc".into()));
    case(codes::ILLEGAL_REMOTE_ID, ike("remote_id", "@".into()));
    case(
        codes::ILLEGAL_REMOTE_ID,
        ike("remote_id", long.as_str().into()),
    );
    // IpsecConfig
    let ipsec = |key: &str, v: Value| {
        let path = format!("ipsec_server.ipsec_config.{key}");
        err_with(|d| set(d, &path, v))
    };
    case(
        codes::ILLEGAL_IPSEC_ENC_ALG,
        ipsec("ipsec_enc_alg", "blowfish".into()),
    );
    case(
        codes::ILLEGAL_IPSEC_AUTH_ALG,
        ipsec("ipsec_auth_alg", "sha224".into()),
    );
    case(
        codes::UNSUPPORTED_IPSEC_PFS,
        ipsec("ipsec_pfs", "group15".into()),
    );
    case(codes::UNSUPPORTED_IPSEC_PFS, ipsec("ipsec_pfs", "".into()));
    case(
        codes::ILLEGAL_IPSEC_LIFETIME,
        ipsec("ipsec_lifetime", (-5).into()),
    );
    case(
        codes::ILLEGAL_IPSEC_LIFETIME,
        ipsec("ipsec_lifetime", 100_000.into()),
    );
    // The API's JSON parameters.
    for bad in [
        "{not json",
        "[]",
        r#"{"ike_enc_alg":"aes"}"#,
        r#"{"IkeColour":"red"}"#,
    ] {
        case(
            codes::ILLEGAL_IKE_CONFIG,
            IkeConfigRaw::from_api_json(bad).expect_err("bad IkeConfig JSON"),
        );
    }
    case(
        codes::ILLEGAL_IKE_LIFETIME,
        IkeConfigRaw::from_api_json(r#"{"IkeLifetime":"soon"}"#).expect_err("lifetime"),
    );
    case(
        codes::ILLEGAL_IKE_LIFETIME,
        IkeConfigRaw::from_api_json(r#"{"IkeLifetime":1.5}"#).expect_err("lifetime"),
    );
    for bad in ["{", r#"{"IpsecEncAlg":1}"#, r#"{"IkeEncAlg":"aes"}"#] {
        case(
            codes::ILLEGAL_IPSEC_CONFIG,
            IpsecConfigRaw::from_api_json(bad).expect_err("bad IpsecConfig JSON"),
        );
    }
    case(
        codes::ILLEGAL_IPSEC_LIFETIME,
        IpsecConfigRaw::from_api_json(r#"{"IpsecLifetime":[1]}"#).expect_err("lifetime"),
    );
    // File-level
    case(
        codes::IO,
        load(
            Path::new("/nonexistent/ipsec-server.toml"),
            &|_| Vec::new(),
            &mut rng(),
        )
        .expect_err("no file")
        .first_error()
        .expect("an error")
        .clone(),
    );
    for bad in [
        "[gateway",
        "[gateway]\nvpn_gateway_id = 1\nregion_id = \"x\"",
        "[gateway]\nregion_id = \"x\"",
        "[gateway]\nvpn_gateway_id = \"v\"\nregion_id = \"x\"\ncolour = \"blue\"",
        "[gateway]\nvpn_gateway_id = \"v\"\nregion_id = \"x\"\n[ipsec_server]\nlocal_subnet = [\"192.168.0.0/24\"]",
        "[gateway]\nvpn_gateway_id = \"v\"\nregion_id = \"x\"\nike_port = \"500\"",
        "[gateway]\nvpn_gateway_id = \"v\"\nregion_id = \"x\"\nforce_udp_encap = \"no\"",
    ] {
        case(
            codes::SYNTAX,
            Config::from_toml_str(bad, &[], &mut rng()).expect_err("syntax"),
        );
    }
    case(
        codes::NOTHING_TO_SERVE,
        err_with(|d| remove(d, "ipsec_server")),
    );
    // [gateway]
    for bad in ["", "vpn id", &"v".repeat(65)] {
        case(
            codes::VPN_GATEWAY_ID,
            err_with(|d| set(d, "gateway.vpn_gateway_id", bad)),
        );
    }
    case(
        codes::REGION_ID,
        err_with(|d| set(d, "gateway.region_id", "cn/hangzhou")),
    );
    for bad in [
        strs(&[]),
        strs(&["nope"]),
        strs(&["0.0.0.0", "192.0.2.1"]),
        strs(&["192.0.2.1", "192.0.2.1"]),
        strs(&["224.0.0.1"]),
        strs(&["::", "2001:db8::1"]),
        // IPv6 outer addresses are refused, alone or beside IPv4.
        strs(&["::"]),
        strs(&["2001:db8::1"]),
        strs(&["0.0.0.0", "::"]),
        // A wildcard beside a specific address, in either order.
        strs(&["192.0.2.1", "0.0.0.0"]),
    ] {
        case(
            codes::LISTEN_ADDRS,
            err_with(|d| set(d, "gateway.listen_addrs", bad)),
        );
    }
    for bad in [0, -1, 65_536] {
        case(
            codes::IKE_PORT,
            err_with(|d| set(d, "gateway.ike_port", bad)),
        );
        case(
            codes::NAT_T_PORT,
            err_with(|d| set(d, "gateway.nat_t_port", bad)),
        );
    }
    case(
        codes::NAT_T_PORT,
        err_with(|d| set(d, "gateway.nat_t_port", 500)),
    );
    for bad in [
        "",
        "ipsec0123456789x",
        "ipsec 0",
        ".",
        "..",
        "a/b",
        "tun:0",
        "vpn-0",
        "a.b",
    ] {
        case(
            codes::TUN_NAME,
            err_with(|d| set(d, "gateway.tun_name", bad)),
        );
    }
    case(
        codes::STATE_DIR,
        err_with(|d| set(d, "gateway.state_dir", "var/lib/x")),
    );
    let too_long = format!("/run/{}.sock", "s".repeat(100));
    for bad in [
        "run/x.sock",
        "/run/ipsec-server/",
        "/",
        "/run/../tmp/x.sock",
        too_long.as_str(),
    ] {
        case(
            codes::CONTROL_SOCKET,
            err_with(|d| set(d, "gateway.control_socket", bad)),
        );
    }
    let longest = format!(
        "/run/{}",
        "s".repeat(ipsec_server::config::MAX_SOCKET_PATH - 5)
    );
    let ok = ok_with(|d| set(d, "gateway.control_socket", longest.as_str()));
    assert_eq!(ok.gateway().control_socket(), Path::new(&longest));
    for bad in ["usr/sbin/ipsec-server", "", "./ipsec-server"] {
        case(
            codes::UPGRADE_BINARY,
            err_with(|d| set(d, "gateway.upgrade_binary", bad)),
        );
    }
    let ok = ok_with(|d| {
        set(
            d,
            "gateway.upgrade_binary",
            "/opt/ipsec-server/bin/ipsec-server",
        )
    });
    assert_eq!(
        ok.gateway().upgrade_binary(),
        Some(Path::new("/opt/ipsec-server/bin/ipsec-server"))
    );
    for bad in [0, -1, 100_001] {
        case(
            codes::MAX_CONNECTIONS,
            err_with(|d| set(d, "gateway.max_connections", bad)),
        );
    }
    for bad in [-1, 3601] {
        case(
            codes::DPD_INTERVAL,
            err_with(|d| set(d, "gateway.dpd_interval", bad)),
        );
    }
    for bad in [0, -1, 86_401] {
        case(
            codes::PSK_CHANGE_REAUTH,
            err_with(|d| set(d, "gateway.psk_change_reauth", bad)),
        );
    }
    for bad in [-1, 1025] {
        case(codes::WORKERS, err_with(|d| set(d, "gateway.workers", bad)));
    }
    case(codes::UNIQUE, err_with(|d| set(d, "gateway.unique", "yes")));
    // [limits]: counts are at least 1 and bounded; durations in seconds.
    for (code, key, bad) in [
        (codes::COOKIE_THRESHOLD, "cookie_threshold", 0),
        (codes::COOKIE_THRESHOLD, "cookie_threshold", 1_000_001),
        (codes::COOKIE_THRESHOLD_IP, "cookie_threshold_ip", 0),
        (codes::COOKIE_THRESHOLD_IP, "cookie_threshold_ip", -3),
        (codes::BLOCK_THRESHOLD_IP, "block_threshold_ip", 0),
        (codes::BLOCK_THRESHOLD_IP, "block_threshold_ip", i64::MAX),
        (codes::HALF_OPEN_MAX, "half_open_max", 0),
        (codes::HALF_OPEN_MAX, "half_open_max", 1_000_001),
        (codes::HALF_OPEN_TIMEOUT, "half_open_timeout", 0),
        (codes::HALF_OPEN_TIMEOUT, "half_open_timeout", 3601),
        (codes::DH_PER_SECOND_COOKIE, "dh_per_second_cookie", 0),
        (
            codes::AUTH_FAILURES_BEFORE_BACKOFF,
            "auth_failures_before_backoff",
            0,
        ),
        (codes::AUTH_BACKOFF_MAX, "auth_backoff_max", 0),
        (codes::AUTH_BACKOFF_MAX, "auth_backoff_max", 86_401),
        (codes::CHILD_SAS_PER_IKE_SA, "child_sas_per_ike_sa", 0),
        (codes::CHILD_SAS_PER_IKE_SA, "child_sas_per_ike_sa", 1025),
        (codes::MAX_IKE_MESSAGE, "max_ike_message", 1279),
        (codes::MAX_IKE_MESSAGE, "max_ike_message", 65_536),
        (codes::MAX_IKE_MESSAGE, "max_ike_message", 0),
        (codes::IKE_QUEUE, "ike_queue", 0),
        (codes::IKE_QUEUE, "ike_queue", 65_537),
    ] {
        let e = err_with(|d| set(d, &format!("limits.{key}"), bad));
        assert!(
            e.message.contains(&format!("limits.{key} {bad}")),
            "names the key and the value: {e}"
        );
        case(code, e);
    }
    // dns
    for bad in [
        "8.8.8",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "2001:db8::1",
    ] {
        case(
            codes::DNS,
            err_with(|d| set(d, "ipsec_server.dns", strs(&[bad]))),
        );
    }
    // [api]
    let with_api = |d: &mut Table, listen: &str, keys: Value| {
        set(d, "api.listen", listen);
        set(d, "api.access_keys", keys);
    };
    let key = |id: &str, secret: Option<&str>, file: Option<&str>| {
        let mut t = Table::new();
        t.insert("access_key_id".into(), id.into());
        if let Some(s) = secret {
            t.insert("access_key_secret".into(), s.into());
        }
        if let Some(f) = file {
            t.insert("access_key_secret_file".into(), f.into());
        }
        Value::Table(t)
    };
    let good = || Value::Array(vec![key("k1", Some(AK_SECRET), None)]);
    for bad in ["localhost:8080", "127.0.0.1:0", "127.0.0.1", "::1:8080"] {
        case(codes::API_LISTEN, err_with(|d| with_api(d, bad, good())));
    }
    case(
        codes::ACCESS_KEYS,
        err_with(|d| with_api(d, "127.0.0.1:8080", Value::Array(vec![]))),
    );
    for keys in [
        vec![key("", Some(AK_SECRET), None)],
        vec![key("has space", Some(AK_SECRET), None)],
        vec![
            key("k1", Some(AK_SECRET), None),
            key("k1", Some("other"), None),
        ],
    ] {
        case(
            codes::ACCESS_KEY_ID,
            err_with(|d| with_api(d, "127.0.0.1:8080", Value::Array(keys))),
        );
    }
    let ak_file = path_str(&temp_file("ak-secret", b"file-secret\n", 0o600));
    for keys in [
        key("k1", None, None),
        key("k1", Some(AK_SECRET), Some(&ak_file)),
        key("k1", Some(""), None),
        key("k1", Some("with space"), None),
        key("k1", None, Some(&path_str(&missing))),
        key("k1", None, Some("relative")),
    ] {
        case(
            codes::ACCESS_KEY_SECRET,
            err_with(|d| with_api(d, "127.0.0.1:8080", Value::Array(vec![keys]))),
        );
    }
    // [metrics]
    for bad in ["localhost:9571", "127.0.0.1:0", "127.0.0.1", "::1:9571", ""] {
        case(
            codes::METRICS_LISTEN,
            err_with(|d| set(d, "metrics.listen", bad)),
        );
    }
    // The control API's own listener (or the same port on a wildcard) is refused.
    for (api, metrics) in [
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("0.0.0.0:8080", "127.0.0.1:8080"),
    ] {
        case(
            codes::METRICS_LISTEN,
            err_with(|d| {
                with_api(d, api, good());
                set(d, "metrics.listen", metrics);
            }),
        );
    }
    case(
        codes::EXAMPLE_SECRET,
        err_with(|d| set(d, "ipsec_server.psk", "change-me-please")),
    );
    // [cluster]
    let etcd = |d: &mut Table| set(d, "cluster.endpoints", strs(&["http://10.1.0.1:2379"]));
    for bad in [
        strs(&[]),
        strs(&["10.1.0.1:2379"]),
        strs(&["http://10.1.0.1"]),
        strs(&["http://10.1.0.1:0"]),
        strs(&["unix:///run/etcd.sock"]),
        strs(&["http://a:2379", "http://a:2379"]),
        strs(&["http://a:2379", "https://b:2379"]),
        strs(&["http://a b:2379"]),
    ] {
        case(
            codes::CLUSTER_ENDPOINTS,
            err_with(|d| set(d, "cluster.endpoints", bad)),
        );
    }
    case(
        codes::CLUSTER_ENDPOINTS,
        err_with(|d| set(d, "cluster.lease_ttl", 10i64)),
    );
    case(
        codes::CLUSTER_TLS,
        err_with(|d| {
            etcd(d);
            set(d, "cluster.ca_file", "/etc/etcd/ca.pem");
        }),
    );
    for (key, value) in [
        ("ca_file", "ca.pem"),
        ("cert_file", "/etc/etcd/client.pem"),
        ("prefix", "/no-ca-file"),
    ] {
        case(
            codes::CLUSTER_TLS,
            err_with(|d| {
                set(d, "cluster.endpoints", strs(&["https://etcd1:2379"]));
                if key != "ca_file" && key != "prefix" {
                    set(d, "cluster.ca_file", "/etc/etcd/ca.pem");
                }
                set(d, &format!("cluster.{key}"), value);
            }),
        );
    }
    let pw_file = path_str(&temp_file("etcd-password", b"etcd-Secret-Pw\n", 0o600));
    for (user, password, password_file) in [
        (Some("ipsec"), None, None),
        (None, Some("etcd-Secret-Pw"), None),
        (
            Some("ipsec"),
            Some("etcd-Secret-Pw"),
            Some(pw_file.as_str()),
        ),
        (Some("ipsec"), None, Some(path_str(&missing).as_str())),
        (Some("ipsec"), None, Some("relative")),
        (Some("with space"), None, Some(pw_file.as_str())),
    ] {
        case(
            codes::CLUSTER_AUTH,
            err_with(|d| {
                etcd(d);
                if let Some(u) = user {
                    set(d, "cluster.user", u);
                }
                if let Some(p) = password {
                    set(d, "cluster.password", p);
                }
                if let Some(p) = password_file {
                    set(d, "cluster.password_file", p);
                }
            }),
        );
    }
    for bad in ["", "gw 1", "gw/1", "n".repeat(64).as_str()] {
        case(
            codes::CLUSTER_NODE_ID,
            err_with(|d| {
                etcd(d);
                set(d, "cluster.node_id", bad);
            }),
        );
    }
    for bad in [0i64, 4, 601, -1] {
        case(
            codes::CLUSTER_LEASE_TTL,
            err_with(|d| {
                etcd(d);
                set(d, "cluster.lease_ttl", bad);
            }),
        );
    }
    case(
        codes::CLUSTER_ROUTE_HOOK,
        err_with(|d| {
            etcd(d);
            set(d, "cluster.route_hook", "route-hook.sh");
        }),
    );
    for bad in ["", "/", "ipsec", "/ipsec/", "/a//b", "/a b"] {
        case(
            codes::CLUSTER_PREFIX,
            err_with(|d| {
                etcd(d);
                set(d, "cluster.prefix", bad);
            }),
        );
    }
    v
}

#[test]
fn every_error_code_is_exercised_and_asserted() {
    let cases = cases();
    for (code, err) in &cases {
        assert_eq!(err.code, *code, "expected {code}, got {err}");
        assert!(!err.message.is_empty());
        assert_eq!(err.to_string(), format!("{}: {}", err.code, err.message));
    }
    let covered: BTreeSet<&str> = cases.iter().map(|(c, _)| *c).collect();
    let all: BTreeSet<&str> = codes::ALL.iter().copied().collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(missing.is_empty(), "codes without a test case: {missing:?}");
    assert_eq!(all.len(), codes::ALL.len(), "duplicate code in codes::ALL");
}

#[test]
fn no_error_message_shows_a_secret() {
    for (_, err) in cases() {
        let text = err.to_string();
        assert!(!text.contains(PSK), "{text}");
        assert!(!text.contains(AK_SECRET), "{text}");
        assert!(!text.contains("file-secret"), "{text}");
    }
    // Secrets of the wrong type, or in a syntax error, are not echoed either.
    for (toml, secret) in [
        ("psk = 98765432", "98765432"),
        ("psk = true", "true"),
        ("psk = [\"Hidden-In-A-List\"]", "Hidden-In-A-List"),
        ("psk = \"Unterminated-Secret", "Unterminated-Secret"),
        (
            "psk = 'Literal-Secret'\npsk = 'Literal-Secret'",
            "Literal-Secret",
        ),
    ] {
        let text = format!(
            "[gateway]\nvpn_gateway_id = \"v\"\nregion_id = \"r\"\n[ipsec_server]\n\
             local_subnet = [\"192.168.0.0/24\"]\nclient_ip_pool = \"10.0.0.0/24\"\n{toml}\n"
        );
        let err = Config::from_toml_str(&text, &[], &mut rng()).expect_err("bad psk");
        assert_eq!(err.code, codes::SYNTAX);
        assert!(!err.message.contains(secret), "{err}");
        assert!(err.message.contains("line "), "position given: {err}");
    }
    let psk_err = err_with(|d| set(d, "ipsec_server.psk", format!("{PSK}\u{7}")));
    assert_eq!(psk_err.code, codes::ILLEGAL_PSK);
    assert!(!psk_err.to_string().contains(PSK));
}

#[test]
fn messages_name_the_field_and_the_value() {
    let e = err_with(|d| set(d, "ipsec_server.local_subnet", strs(&["192.168.0.1/24"])));
    assert!(e.message.contains("LocalSubnet"), "{e}");
    assert!(e.message.contains("192.168.0.1/24"), "{e}");
    assert!(
        e.message.contains("192.168.0.0/24"),
        "suggests the network: {e}"
    );

    let e = err_with(|d| set(d, "ipsec_server.client_ip_pool", "10.0.0.0/8"));
    assert!(
        e.message.contains("ClientIpPool") && e.message.contains("10.0.0.0/8"),
        "{e}"
    );

    let e = err_with(|d| set(d, "ipsec_server.ike_config.ike_enc_alg", "aes512"));
    assert!(
        e.message.contains("IkeEncAlg") && e.message.contains("aes512"),
        "{e}"
    );

    let e = err_with(|d| set(d, "ipsec_server.ike_config.ike_version", "ikev1"));
    assert!(e.message.contains("not supported"), "{e}");

    let e = err_with(|d| set(d, "gateway.tun_name", "ipsec 0"));
    assert!(
        e.message.contains("gateway.tun_name") && e.message.contains("ipsec 0"),
        "{e}"
    );

    // Long and control-character values are escaped and truncated.
    let e = err_with(|d| {
        set(
            d,
            "ipsec_server.ipsec_server_name",
            format!("a\u{1b}[31m{}", "z".repeat(500)),
        )
    });
    assert!(!e.message.contains('\u{1b}'), "{e}");
    assert!(e.message.len() < 300, "{e}");
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    for (section, key) in [
        ("gateway", "colour"),
        ("ipsec_server", "pks"),
        ("ipsec_server.ike_config", "ike_encalg"),
        ("ipsec_server.ipsec_config", "IpsecEncAlg"),
        ("limits", "cookie_treshold"),
        ("metrics", "per_clients"),
        ("cluster", "endpoint"),
        ("extra", "x"),
    ] {
        let e = err_with(|d| set(d, &format!("{section}.{key}"), "value"));
        assert_eq!(e.code, codes::SYNTAX, "{e}");
        let named = if section == "extra" { "extra" } else { key };
        assert!(e.message.contains(&format!("`{named}`")), "{e}");
    }
}

// --- defaults and values ------------------------------------------------------------------

#[test]
fn defaults() {
    let cfg = Config::from_toml_str(MINIMAL, &[], &mut rng()).expect("minimal config is valid");
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    assert!(cfg.api().is_none());

    let g = cfg.gateway();
    assert_eq!(g.vpn_gateway_id(), "vpn-test0001");
    assert_eq!(g.region_id(), "local");
    assert_eq!(g.listen_addrs(), &[IpAddr::V4(Ipv4Addr::UNSPECIFIED)]);
    assert_eq!(g.ike_port().get(), 500);
    assert_eq!(g.nat_t_port().get(), 4500);
    assert_eq!(g.tun_name(), "ipsec0");
    assert_eq!(g.state_dir(), Path::new("/var/lib/ipsec-server"));
    assert_eq!(
        g.control_socket(),
        Path::new("/run/ipsec-server/control.sock")
    );
    assert_eq!(
        ipsec_server::config::DEFAULT_CONTROL_SOCKET,
        "/run/ipsec-server/control.sock"
    );
    assert!(g.ip_forward());
    assert!(!g.masquerade());
    assert!(g.force_udp_encap());
    assert!(responder_config(&cfg).expect("server").force_udp_encap);
    // Default: the binary the daemon runs (resolved by the daemon at its start).
    assert_eq!(g.upgrade_binary(), None);
    assert_eq!(g.max_connections().get(), 1000);
    assert_eq!(g.dpd_interval(), Some(Duration::from_secs(30)));
    assert_eq!(g.psk_change_reauth(), Duration::from_secs(3600));
    assert_eq!(g.workers(), None);
    assert_eq!(g.unique(), UniquePolicy::SameAddress);

    // [limits]: strongSwan's defaults, and exactly what the responder uses by default.
    let l = cfg.limits();
    assert_eq!(l.cookie_threshold().get(), 10);
    assert_eq!(l.cookie_threshold_ip().get(), 3);
    assert_eq!(l.block_threshold_ip().get(), 5);
    assert_eq!(l.half_open_max().get(), 1000);
    assert_eq!(l.half_open_timeout(), Duration::from_secs(30));
    assert_eq!(l.dh_per_second_cookie().get(), 100);
    assert_eq!(l.auth_failures_before_backoff().get(), 5);
    assert_eq!(l.auth_backoff_max(), Duration::from_secs(300));
    assert_eq!(l.child_sas_per_ike_sa().get(), 16);
    assert_eq!(l.max_ike_message(), 16 * 1024);
    assert_eq!(l.ike_queue().get(), 4096);
    let rcfg = responder_config(&cfg).expect("responder config");
    assert_eq!(rcfg.limits, Limits::default());

    let s = cfg.ipsec_server().expect("server configured");
    assert_eq!(s.name(), None);
    assert_eq!(s.local_subnets(), &[net("192.168.0.0/24")]);
    assert_eq!(s.client_ip_pool(), net("10.0.0.0/24"));
    assert!(!s.effect_immediately());
    assert!(s.psk().ct_eq(PSK.as_bytes()));
    assert!(!s.psk_generated());
    assert!(s.dns().is_empty());

    let ike = s.ike();
    assert_eq!(ike.enc(), EncAlg::Aes128);
    assert_eq!(ike.auth(), AuthAlg::Sha1);
    assert_eq!(ike.dh_group(), DhGroup::Group2);
    assert_eq!(ike.lifetime(), Duration::from_secs(86_400));
    assert_eq!(ike.local_id(), None);
    assert_eq!(ike.remote_id(), None);

    let ipsec = s.ipsec();
    assert_eq!(ipsec.enc(), EncAlg::Aes128);
    assert_eq!(ipsec.auth(), AuthAlg::Sha1);
    assert_eq!(ipsec.pfs(), Some(DhGroup::Group2));
    assert_eq!(ipsec.lifetime(), Duration::from_secs(86_400));
}

#[test]
fn explicit_values_are_kept() {
    let cfg = ok_with(|d| {
        set(d, "gateway.listen_addrs", strs(&["192.0.2.1", "192.0.2.9"]));
        set(d, "gateway.force_udp_encap", false);
        set(d, "gateway.dpd_interval", 0);
        set(d, "gateway.psk_change_reauth", 20);
        set(d, "gateway.workers", 4);
        set(d, "gateway.unique", "never");
        set(d, "gateway.masquerade", true);
        set(
            d,
            "ipsec_server.local_subnet",
            "192.168.1.0/24, 192.168.2.0/24",
        );
        set(d, "ipsec_server.client_ip_pool", "172.16.0.0/16");
        set(d, "ipsec_server.effect_immediately", true);
        set(d, "ipsec_server.ipsec_server_name", "测试服务器");
        set(d, "ipsec_server.dns", strs(&["192.168.1.53"]));
        set(d, "ipsec_server.ike_config.ike_enc_alg", "aes256");
        set(d, "ipsec_server.ike_config.ike_auth_alg", "sha512");
        set(d, "ipsec_server.ike_config.ike_pfs", "group24");
        set(d, "ipsec_server.ike_config.ike_lifetime", 0);
        set(d, "ipsec_server.ike_config.local_id", "192.0.2.1");
        set(d, "ipsec_server.ike_config.remote_id", "alice@example.com");
        set(d, "ipsec_server.ipsec_config.ipsec_enc_alg", "aes192");
        set(d, "ipsec_server.ipsec_config.ipsec_auth_alg", "sha384");
        set(d, "ipsec_server.ipsec_config.ipsec_pfs", "disabled");
        set(d, "ipsec_server.ipsec_config.ipsec_lifetime", 3600);
        // What a load generator needs: many half-open IKE SAs from one address.
        set(d, "limits.cookie_threshold", 100_000);
        set(d, "limits.cookie_threshold_ip", 100_000);
        set(d, "limits.block_threshold_ip", 200_000);
        set(d, "limits.half_open_max", 500_000);
        set(d, "limits.half_open_timeout", 5);
        set(d, "limits.dh_per_second_cookie", 20_000);
        set(d, "limits.auth_failures_before_backoff", 1);
        set(d, "limits.auth_backoff_max", 60);
        set(d, "limits.child_sas_per_ike_sa", 4);
        set(d, "limits.max_ike_message", 1280);
        set(d, "limits.ike_queue", 65_536);
    });
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    let l = responder_config(&cfg).expect("responder config").limits;
    assert_eq!(
        l,
        Limits {
            cookie_threshold: 100_000,
            cookie_threshold_ip: 100_000,
            block_threshold_ip: 200_000,
            half_open_max: 500_000,
            half_open_timeout: Duration::from_secs(5),
            dh_per_second_cookie: 20_000,
            auth_failures_before_backoff: 1,
            auth_backoff_max: Duration::from_secs(60),
            child_sas_per_ike_sa: 4,
            max_ike_message: 1280,
        }
    );
    assert_eq!(cfg.limits().ike_queue().get(), 65_536);
    let g = cfg.gateway();
    assert_eq!(
        g.listen_addrs(),
        &[
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))
        ]
    );
    assert!(!g.force_udp_encap());
    assert_eq!(g.dpd_interval(), None);
    assert_eq!(g.psk_change_reauth(), Duration::from_secs(20));
    assert_eq!(g.workers().map(|w| w.get()), Some(4));
    assert_eq!(g.unique(), UniquePolicy::Never);
    assert!(g.masquerade());
    let s = cfg.ipsec_server().expect("server");
    assert_eq!(
        s.local_subnets(),
        &[net("192.168.1.0/24"), net("192.168.2.0/24")]
    );
    assert_eq!(s.client_ip_pool(), net("172.16.0.0/16"));
    assert!(s.effect_immediately());
    assert_eq!(s.name(), Some("测试服务器"));
    assert_eq!(s.dns(), &[Ipv4Addr::new(192, 168, 1, 53)]);
    assert_eq!(s.ike().enc(), EncAlg::Aes256);
    assert_eq!(s.ike().auth(), AuthAlg::Sha512);
    assert_eq!(s.ike().dh_group().iana_id(), 24);
    assert_eq!(s.ike().lifetime(), Duration::ZERO);
    assert_eq!(
        s.ike().local_id(),
        Some(&Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
    );
    assert_eq!(
        s.ike().remote_id(),
        Some(&Identity::Rfc822("alice@example.com".into()))
    );
    assert_eq!(s.ipsec().enc(), EncAlg::Aes192);
    assert_eq!(s.ipsec().auth(), AuthAlg::Sha384);
    assert_eq!(s.ipsec().pfs(), None);
    assert_eq!(s.ipsec().lifetime(), Duration::from_secs(3600));
}

#[test]
fn boundaries_are_inclusive() {
    for (path, v) in [
        ("ipsec_server.client_ip_pool", Value::from("10.0.0.0/16")),
        ("ipsec_server.client_ip_pool", Value::from("10.0.0.0/29")),
        ("ipsec_server.ike_config.ike_lifetime", Value::from(86_400)),
        ("ipsec_server.ipsec_config.ipsec_lifetime", Value::from(0)),
        (
            "ipsec_server.ipsec_server_name",
            Value::from("n".repeat(100)),
        ),
        ("ipsec_server.psk", Value::from("p".repeat(100))),
        ("ipsec_server.psk", Value::from(" ~")),
        (
            "ipsec_server.ike_config.local_id",
            Value::from("i".repeat(100)),
        ),
        ("gateway.tun_name", Value::from("abcdefghijklmno")),
        ("gateway.max_connections", Value::from(100_000)),
        ("gateway.max_connections", Value::from(1)),
        ("gateway.dpd_interval", Value::from(3600)),
        ("gateway.psk_change_reauth", Value::from(1)),
        ("gateway.psk_change_reauth", Value::from(86_400)),
        ("gateway.workers", Value::from(1024)),
        ("gateway.ike_port", Value::from(65_535)),
        ("limits.cookie_threshold", Value::from(1_000_000)),
        ("limits.block_threshold_ip", Value::from(1_000_000)),
        ("limits.half_open_max", Value::from(1_000_000)),
        ("limits.half_open_timeout", Value::from(1)),
        ("limits.half_open_timeout", Value::from(3600)),
        ("limits.auth_backoff_max", Value::from(86_400)),
        ("limits.child_sas_per_ike_sa", Value::from(1)),
        ("limits.child_sas_per_ike_sa", Value::from(1024)),
        ("limits.max_ike_message", Value::from(65_535)),
        ("limits.ike_queue", Value::from(1)),
    ] {
        ok_with(|d| set(d, path, v));
    }
    // Adjacent but disjoint networks do not conflict.
    let cfg = validate(&minimal(), &[net("10.0.1.0/24"), net("9.255.255.0/24")]);
    assert!(cfg.is_ok(), "{cfg:?}");
}

#[test]
fn limits_that_shadow_each_other_warn() {
    let cfg = ok_with(|d| {
        set(d, "limits.cookie_threshold_ip", 8);
        set(d, "limits.block_threshold_ip", 8);
    });
    assert_eq!(cfg.warnings().len(), 1, "{:?}", cfg.warnings());
    assert!(cfg.warnings()[0].contains("limits.block_threshold_ip 8"));
    let cfg = ok_with(|d| {
        set(d, "limits.cookie_threshold", 50);
        set(d, "limits.half_open_max", 20);
    });
    assert_eq!(cfg.warnings().len(), 1, "{:?}", cfg.warnings());
    assert!(cfg.warnings()[0].contains("limits.half_open_max 20"));
}

#[test]
fn legacy_algorithms_are_accepted_with_warnings() {
    let cfg = ok_with(|d| {
        set(d, "ipsec_server.ike_config.ike_enc_alg", "des");
        set(d, "ipsec_server.ike_config.ike_auth_alg", "md5");
        set(d, "ipsec_server.ike_config.ike_pfs", "group1");
        set(d, "ipsec_server.ipsec_config.ipsec_enc_alg", "3des");
        set(d, "ipsec_server.ipsec_config.ipsec_pfs", "group1");
    });
    let s = cfg.ipsec_server().expect("server");
    assert_eq!(s.ike().enc(), EncAlg::Des);
    assert_eq!(s.ipsec().enc(), EncAlg::TripleDes);
    let w = cfg.warnings().join("\n");
    for needle in [
        "IkeEncAlg des",
        "IkeAuthAlg md5",
        "IkePfs group1",
        "IpsecEncAlg 3des",
        "IpsecPfs group1",
    ] {
        assert!(w.contains(needle), "missing {needle:?} in {w}");
    }
    assert_eq!(cfg.warnings().len(), 5);
}

// --- secrets ------------------------------------------------------------------------------

#[test]
fn debug_output_contains_no_secret() {
    let cfg = ok_with(|d| {
        set(d, "api.listen", "127.0.0.1:8080");
        set(
            d,
            "api.access_keys",
            Value::Array(vec![Value::Table(
                [
                    ("access_key_id".to_owned(), Value::from("k1")),
                    ("access_key_secret".to_owned(), Value::from(AK_SECRET)),
                ]
                .into_iter()
                .collect(),
            )]),
        );
    });
    let debug = format!("{cfg:?} {:#?}", cfg);
    assert!(!debug.contains(PSK), "{debug}");
    assert!(!debug.contains(AK_SECRET), "{debug}");
    let raw = ConfigRaw::from_toml_str(MINIMAL).expect("raw");
    assert!(!format!("{raw:?}").contains(PSK));
    let api = cfg.api().expect("api");
    assert!(api
        .access_key("k1")
        .expect("key")
        .secret()
        .ct_eq(AK_SECRET.as_bytes()));
    assert!(api.access_key("k2").is_none());
}

#[test]
fn generated_psk_is_16_alphanumerics() {
    let a = ok_with(|d| remove(d, "ipsec_server.psk"));
    let b = ok_with(|d| {
        remove(d, "ipsec_server.psk");
        set(d, "ipsec_server.psk_enabled", true);
    });
    let (a, b) = (a.ipsec_server().expect("a"), b.ipsec_server().expect("b"));
    for s in [a, b] {
        assert!(s.psk_generated());
        assert_eq!(s.psk().len(), 16);
        assert!(s.psk().expose().iter().all(u8::is_ascii_alphanumeric));
    }
    assert_ne!(a.psk(), b.psk(), "fresh randomness each time");
}

#[test]
fn secret_files_drop_one_trailing_newline_and_warn_when_readable() {
    let f = temp_file("psk-crlf", b"file-secret\r\n", 0o600);
    let cfg = ok_with(|d| {
        remove(d, "ipsec_server.psk");
        set(d, "ipsec_server.psk_file", path_str(&f));
    });
    let s = cfg.ipsec_server().expect("server");
    assert!(s.psk().ct_eq(b"file-secret"));
    assert!(!s.psk_generated());
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());

    let f = temp_file("psk-0644", b"file-secret\n", 0o644);
    let cfg = ok_with(|d| {
        remove(d, "ipsec_server.psk");
        set(d, "ipsec_server.psk_file", path_str(&f));
    });
    assert!(cfg
        .ipsec_server()
        .expect("server")
        .psk()
        .ct_eq(b"file-secret"));
    assert_eq!(cfg.warnings().len(), 1, "{:?}", cfg.warnings());
    assert!(cfg.warnings()[0].contains("psk_file"));
    assert!(!cfg.warnings()[0].contains("file-secret"));

    // Only one newline is dropped: the rest is content and fails the printable rule.
    let f = temp_file("psk-2nl", b"file-secret\n\n", 0o600);
    let e = err_with(|d| {
        remove(d, "ipsec_server.psk");
        set(d, "ipsec_server.psk_file", path_str(&f));
    });
    assert_eq!(e.code, codes::ILLEGAL_PSK);

    let f = temp_file("ak", b"ak-from-file\n", 0o600);
    let cfg = ok_with(|d| {
        set(d, "api.listen", "127.0.0.1:8080");
        let mut key = Table::new();
        key.insert("access_key_id".into(), "k1".into());
        key.insert("access_key_secret_file".into(), path_str(&f).into());
        set(d, "api.access_keys", Value::Array(vec![Value::Table(key)]));
    });
    let key = cfg.api().expect("api").access_key("k1").expect("k1");
    assert!(key.secret().ct_eq(b"ak-from-file"));
}

fn access_key(d: &mut Table, id: &str, secret_key: &str, secret: &str) {
    let mut key = Table::new();
    key.insert("access_key_id".into(), id.into());
    key.insert(secret_key.into(), secret.into());
    set(d, "api.access_keys", Value::Array(vec![Value::Table(key)]));
}

#[test]
fn cluster_section_defaults_and_keeps_its_password_out_of_debug() {
    let cfg = Config::from_toml_str(MINIMAL, &[], &mut rng()).expect("minimal");
    assert!(cfg.cluster().is_none(), "no section, no cluster");
    let cfg = ok_with(|d| set(d, "cluster.endpoints", strs(&["http://10.1.0.1:2379"])));
    let c = cfg.cluster().expect("cluster");
    assert_eq!(c.endpoints(), ["http://10.1.0.1:2379"]);
    assert_eq!(c.lease_ttl(), Duration::from_secs(10));
    assert_eq!(c.prefix(), "/ipsec-server");
    assert_eq!(c.node_id(), None, "the daemon fills in the host name");
    assert_eq!(c.route_hook(), None);
    assert!(c.tls().is_none() && c.auth().is_none());
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());

    let pw_file = path_str(&temp_file("etcd-pw-ok", b"etcd-Secret-Pw\n", 0o600));
    let cfg = ok_with(|d| {
        set(
            d,
            "cluster.endpoints",
            strs(&["https://etcd1:2379", "https://[fd00::1]:2379"]),
        );
        set(d, "cluster.ca_file", "/etc/etcd/ca.pem");
        set(d, "cluster.cert_file", "/etc/etcd/client.pem");
        set(d, "cluster.key_file", "/etc/etcd/client.key");
        set(d, "cluster.user", "ipsec");
        set(d, "cluster.password_file", pw_file.as_str());
        set(d, "cluster.node_id", "gw-1.example");
        set(d, "cluster.lease_ttl", 5i64);
        set(d, "cluster.prefix", "/vpn/prod");
        set(d, "cluster.route_hook", "/usr/local/sbin/ipsec-route");
    });
    let c = cfg.cluster().expect("cluster");
    let tls = c.tls().expect("https has TLS");
    assert_eq!(tls.ca_file(), Path::new("/etc/etcd/ca.pem"));
    assert_eq!(
        tls.identity(),
        Some((
            Path::new("/etc/etcd/client.pem"),
            Path::new("/etc/etcd/client.key")
        ))
    );
    let (user, password) = c.auth().expect("auth");
    assert_eq!((user, password.expose()), ("ipsec", &b"etcd-Secret-Pw"[..]));
    assert_eq!(c.node_id(), Some("gw-1.example"));
    assert_eq!(c.lease_ttl(), Duration::from_secs(5));
    assert_eq!(c.prefix(), "/vpn/prod");
    assert_eq!(
        c.route_hook(),
        Some(Path::new("/usr/local/sbin/ipsec-route"))
    );
    assert!(!format!("{cfg:?}").contains("etcd-Secret-Pw"));

    // An inline password works, with a warning, and never shows in it.
    let cfg = ok_with(|d| {
        set(d, "cluster.endpoints", strs(&["http://10.1.0.1:2379"]));
        set(d, "cluster.user", "ipsec");
        set(d, "cluster.password", "etcd-Secret-Pw");
    });
    let w = cfg.warnings().join("\n");
    assert!(w.contains("cluster.password_file"), "{w}");
    assert!(!w.contains("etcd-Secret-Pw") && !format!("{cfg:?}").contains("etcd-Secret-Pw"));
    // A refused one is not in the error either.
    let e = err_with(|d| {
        set(d, "cluster.endpoints", strs(&["http://10.1.0.1:2379"]));
        set(d, "cluster.password", "etcd-Secret-Pw");
    });
    assert_eq!(e.code, codes::CLUSTER_AUTH);
    assert!(!e.to_string().contains("etcd-Secret-Pw"), "{e}");
}

#[test]
fn metrics_section_defaults_to_loopback_and_warns_beyond_it() {
    let cfg = Config::from_toml_str(MINIMAL, &[], &mut rng()).expect("minimal");
    assert!(cfg.metrics().is_none(), "no section, no listener");
    let cfg = ok_with(|d| {
        d.insert("metrics".into(), Value::Table(Table::new()));
    });
    let m = cfg.metrics().expect("an empty [metrics] enables it");
    assert_eq!(m.listen(), "127.0.0.1:9571".parse().unwrap());
    assert!(!m.per_client());
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    let cfg = ok_with(|d| {
        set(d, "metrics.listen", "[::1]:9100");
        set(d, "metrics.per_client", true);
    });
    let m = cfg.metrics().expect("metrics");
    assert_eq!(m.listen(), "[::1]:9100".parse().unwrap());
    assert!(m.per_client());
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    let cfg = ok_with(|d| {
        set(d, "metrics.listen", "0.0.0.0:9571");
        set(d, "metrics.per_client", true);
    });
    let w = cfg.warnings().join("\n");
    assert!(
        w.contains("metrics.listen 0.0.0.0:9571 is not a loopback") && w.contains("per_client"),
        "{w}"
    );
    // Another port than the API's is fine, on any address.
    let cfg = ok_with(|d| {
        set(d, "api.listen", "127.0.0.1:8080");
        let mut key = Table::new();
        key.insert("access_key_id".into(), "k1".into());
        key.insert("access_key_secret".into(), AK_SECRET.into());
        set(d, "api.access_keys", Value::Array(vec![Value::Table(key)]));
        set(d, "metrics.listen", "127.0.0.2:8080");
    });
    assert!(cfg.metrics().is_some());
}

#[test]
fn example_secrets_on_loopback_only_warn() {
    let cfg = ok_with(|d| {
        set(d, "gateway.listen_addrs", strs(&["127.0.0.1"]));
        set(d, "ipsec_server.psk", "change-me-please");
        set(d, "api.listen", "127.0.0.1:8080");
        access_key(d, "k1", "access_key_secret", "change-me");
    });
    let w = cfg.warnings().join("\n");
    assert!(w.contains("Psk is the example value"), "{w}");
    assert!(w.contains("k1") && w.contains("example value"), "{w}");
    assert!(!w.contains("change-me"), "never the secret itself: {w}");
}

#[test]
fn example_secrets_are_refused_beside_a_non_loopback_listener() {
    // The PSK, with the default listen_addrs 0.0.0.0.
    let e = err_with(|d| set(d, "ipsec_server.psk", "change-me-please"));
    assert_eq!(e.code, codes::EXAMPLE_SECRET, "{e}");
    assert!(
        e.message.contains("ipsec_server.psk ") && e.message.contains("0.0.0.0"),
        "names the key and the listener: {e}"
    );
    // The same PSK through psk_file, on a specific public address.
    let f = temp_file("example-psk-file", b"change-me-please\n", 0o600);
    let e = err_with(|d| {
        set(d, "gateway.listen_addrs", strs(&["192.0.2.1"]));
        remove(d, "ipsec_server.psk");
        set(d, "ipsec_server.psk_file", path_str(&f));
    });
    assert_eq!(e.code, codes::EXAMPLE_SECRET, "{e}");
    assert!(e.message.contains("ipsec_server.psk_file") && e.message.contains("192.0.2.1"));
    // An example AccessKey secret: the gateway on loopback, the API not.
    let e = err_with(|d| {
        set(d, "gateway.listen_addrs", strs(&["127.0.0.1"]));
        set(d, "api.listen", "0.0.0.0:8080");
        access_key(d, "k1", "access_key_secret", "change-me");
    });
    assert_eq!(e.code, codes::EXAMPLE_SECRET, "{e}");
    assert!(
        e.message.contains("api.access_keys[0]")
            && e.message.contains("k1")
            && e.message.contains("api.listen is 0.0.0.0:8080"),
        "{e}"
    );
    // …and on the gateway's public address, with the API on loopback.
    let e = err_with(|d| {
        set(d, "api.listen", "127.0.0.1:8080");
        access_key(d, "k1", "access_key_secret", "change-me");
    });
    assert_eq!(e.code, codes::EXAMPLE_SECRET, "{e}");
    assert!(!e.message.contains("change-me"), "never the secret: {e}");
    // Own secrets (or a generated PSK) on public addresses are fine.
    ok_with(|d| {
        set(d, "api.listen", "0.0.0.0:8080");
        access_key(d, "k1", "access_key_secret", AK_SECRET);
    });
    let cfg = ok_with(|d| remove(d, "ipsec_server.psk"));
    assert!(cfg.ipsec_server().is_some_and(|s| s.psk_generated()));
}

// --- the API path -------------------------------------------------------------------------

#[test]
fn api_parameters_validate_through_the_same_spec() {
    // The request example of seed/CreateIpsecServer.zh.txt.
    let ike = r#"{"IkeVersion":"ikev2","IkeMode":"main","IkeEncAlg":"aes","IkeAuthAlg":"sha1","IkePfs":"group2","IkeLifetime":86400}"#;
    let ipsec =
        r#"{"IpsecEncAlg":"aes","IpsecAuthAlg":"sha1","IpsecPfs":"group2","IpsecLifetime":86400}"#;
    let spec = IpsecServerSpec {
        ipsec_server_name: Some("test".into()),
        local_subnet: split_local_subnet("192.168.0.0/24"),
        client_ip_pool: "10.0.0.0/24".into(),
        effect_immediately: true,
        psk_enabled: Some(true),
        psk: Some(SecretBytes::from_slice(b"Cfd123abcd")),
        ike_config: IkeConfigRaw::from_api_json(ike).expect("seed IkeConfig"),
        ipsec_config: IpsecConfigRaw::from_api_json(ipsec).expect("seed IpsecConfig"),
        ..Default::default()
    };
    let (server, warnings) = spec
        .validate(&[net("192.0.2.0/24")], &mut rng())
        .expect("seed example is valid");
    assert!(warnings.is_empty());
    assert_eq!(server.name(), Some("test"));
    assert!(server.effect_immediately());

    // The API's JSON round-trips through the validated form.
    let back = IkeConfigRaw::from_api_json(&server.ike().to_api_json().to_string()).expect("json");
    let back_ipsec =
        IpsecConfigRaw::from_api_json(&server.ipsec().to_api_json().to_string()).expect("json");
    let spec2 = IpsecServerSpec {
        ike_config: back,
        ipsec_config: back_ipsec,
        ..spec.clone()
    };
    let (server2, _) = spec2.validate(&[], &mut rng()).expect("round trip");
    assert_eq!(server, server2);

    // Quoted numbers and blank parameters are accepted; the defaults apply.
    let quoted = IkeConfigRaw::from_api_json(r#"{"IkeLifetime":"3600"}"#).expect("quoted");
    assert_eq!(quoted.ike_lifetime, Some(3600));
    assert_eq!(
        IkeConfigRaw::from_api_json("  ").expect("blank"),
        IkeConfigRaw::default()
    );
    assert_eq!(
        IpsecConfigRaw::from_api_json("").expect("blank"),
        IpsecConfigRaw::default()
    );
    let disabled = IpsecConfigRaw::from_api_json(r#"{"IpsecPfs":"disabled"}"#).expect("json");
    let (s, _) = IpsecServerSpec {
        ipsec_config: disabled,
        ..spec.clone()
    }
    .validate(&[], &mut rng())
    .expect("pfs disabled");
    assert_eq!(s.ipsec().pfs(), None);
    assert_eq!(s.ipsec().to_api_json()["IpsecPfs"], "disabled");

    // An API error is the same code as from the file.
    let bad = IpsecServerSpec {
        client_ip_pool: "10.0.0.0/30".into(),
        ..spec
    };
    assert_eq!(
        bad.validate(&[], &mut rng()).expect_err("netmask").code,
        codes::CLIENT_IP_POOL_NETMASK_INVALID
    );
}

#[test]
fn comma_separated_local_subnet() {
    assert_eq!(
        ipsec_server::config::parse_local_subnet("192.168.1.0/24,192.168.2.0/24").expect("valid"),
        vec![net("192.168.1.0/24"), net("192.168.2.0/24")]
    );
    for bad in [
        "",
        ",",
        "192.168.1.0/24,",
        "192.168.1.1/24",
        "192.168.1.0/24;192.168.2.0/24",
    ] {
        let e = ipsec_server::config::parse_local_subnet(bad).expect_err(bad);
        assert_eq!(e.code, codes::ILLEGAL_LOCAL_SUBNET);
    }
}

// --- shipped files ------------------------------------------------------------------------

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/ipsec-server.toml")
}

#[test]
fn shipped_config_is_valid() {
    let text = std::fs::read_to_string(shipped()).expect("configs/ipsec-server.toml");
    // Typical host networks: a LAN, docker, libvirt.
    let host = [
        net("192.0.2.0/24"),
        net("172.17.0.0/16"),
        net("192.168.122.0/24"),
    ];
    let cfg = Config::from_toml_str(&text, &host, &mut rng()).unwrap_or_else(|e| panic!("{e}"));
    let s = cfg.ipsec_server().expect("server");
    assert_eq!(s.client_ip_pool(), net("10.0.0.0/24"));
    assert_eq!(s.local_subnets(), &[net("192.168.0.0/24")]);
    // No PSK and no [api]: nothing published, the PSK is generated (the daemon keeps it in
    // state_dir), and the file is accepted on 0.0.0.0.
    assert!(s.psk_generated());
    assert_eq!(cfg.gateway().listen_addrs(), &[IpAddr::from([0, 0, 0, 0])]);
    assert_eq!(
        s.ike().local_id(),
        Some(&Identity::Fqdn("gw.example.com".into()))
    );
    assert_eq!(s.ike().remote_id(), None);
    assert_eq!(s.dns(), &[Ipv4Addr::new(192, 168, 0, 53)]);
    assert!(cfg.api().is_none(), "[api] is commented out");
    assert_eq!(cfg.warnings(), &[] as &[String]);
    let metrics = cfg.metrics().expect("metrics");
    assert_eq!(metrics.listen(), "127.0.0.1:9571".parse().unwrap());
    assert!(!metrics.per_client());
    // Every [limits] key is spelled out at its default.
    let text_limits: Table = text.parse::<Table>().expect("TOML")["limits"]
        .as_table()
        .expect("[limits] is documented")
        .clone();
    assert_eq!(text_limits.len(), 11, "one line per [limits] key");
    let defaults = Config::from_toml_str(MINIMAL, &[], &mut rng()).expect("minimal");
    assert_eq!(cfg.limits(), defaults.limits());

    // Through `load`, against this host's real networks: valid unless the host itself sits
    // on the example pool.
    let host = host_networks();
    let pool = net("10.0.0.0/24");
    let conflict = host.iter().any(|n| n.contains(&pool) || pool.contains(n));
    match load(&shipped(), &host_networks_excluding, &mut rng()) {
        Ok(loaded) => {
            assert!(!conflict);
            assert_eq!(loaded.gateway(), cfg.gateway());
        }
        Err(e) => assert!(
            conflict && e.first_error().map(|e| e.code) == Some(codes::CLIENT_IP_POOL_CONFLICT),
            "{e}"
        ),
    }
}

#[test]
fn example_configs_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("configs/examples") {
        let path = entry.expect("dir entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut raw = ConfigRaw::from_toml_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        // Point secret files at real ones.
        if let Some(s) = raw.ipsec_server.as_mut().filter(|s| s.psk_file.is_some()) {
            s.psk_file = Some(temp_file("example-psk", b"example-psk\n", 0o600));
        }
        for key in raw.api.iter_mut().flat_map(|a| a.access_keys.iter_mut()) {
            if key.access_key_secret_file.is_some() {
                key.access_key_secret_file = Some(temp_file("example-ak", b"example-ak\n", 0o600));
            }
        }
        Config::from_raw(&raw, &[], &mut rng()).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        n += 1;
    }
    assert!(n >= 2);
}

//! The raw model: what serde reads from the TOML file (docs/DESIGN.md §1b), or what the HTTP API
//! assembles from `CreateIpsecServer` parameters (docs/DESIGN.md §1).
//!
//! Values are kept as written (strings, `i64`, options) so that validation, not serde,
//! reports a bad value with the API's error code. Every struct denies unknown keys, and
//! the resulting error names the key. Secrets are deserialized straight into
//! [`SecretBytes`] by a visitor whose errors never include the value.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::{codes, ConfigError};
use crate::secret::SecretBytes;

/// A whole config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRaw {
    pub gateway: GatewayRaw,
    /// `[limits]`; every key optional.
    #[serde(default)]
    pub limits: LimitsRaw,
    /// `CreateIpsecServer`; optional when servers are made through the API.
    #[serde(default)]
    pub ipsec_server: Option<IpsecServerSpec>,
    /// The control API; absent = disabled.
    #[serde(default)]
    pub api: Option<ApiRaw>,
    /// The Prometheus metrics listener; absent = no listener.
    #[serde(default)]
    pub metrics: Option<MetricsRaw>,
    /// Cluster mode on etcd; absent = a single node (no etcd).
    #[serde(default)]
    pub cluster: Option<ClusterRaw>,
}

impl ConfigRaw {
    /// Parses TOML text. Errors carry `InvalidConfig.Syntax` and a line/column position but
    /// never a snippet of the source, which could contain a secret.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text).map_err(|(e, at)| match at.and_then(|at| line_col(text, at)) {
            Some((line, col)) => {
                ConfigError::new(e.code, format!("line {line}, column {col}: {}", e.message))
            }
            None => e,
        })
    }

    /// As [`ConfigRaw::from_toml_str`], with the byte offset of the error apart.
    pub(super) fn parse(text: &str) -> Result<Self, (ConfigError, Option<usize>)> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map(|span| span.start);
            // toml's messages may span lines ("invalid table header\nexpected `.`, `]`").
            let message = e.message().trim_end().replace('\n', "; ");
            (ConfigError::new(codes::SYNTAX, message), at)
        })
    }
}

/// `[gateway]`: the VPN gateway this daemon is.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRaw {
    pub vpn_gateway_id: String,
    pub region_id: String,
    #[serde(default = "defaults::listen_addrs")]
    pub listen_addrs: Vec<String>,
    #[serde(default = "defaults::ike_port")]
    pub ike_port: i64,
    #[serde(default = "defaults::nat_t_port")]
    pub nat_t_port: i64,
    #[serde(default = "defaults::tun_name")]
    pub tun_name: String,
    #[serde(default = "defaults::state_dir")]
    pub state_dir: PathBuf,
    /// The Unix socket `ipsec-server status` reads.
    #[serde(default = "defaults::control_socket")]
    pub control_socket: PathBuf,
    /// Enable `net.ipv4.ip_forward`.
    #[serde(default = "defaults::yes")]
    pub ip_forward: bool,
    /// SNAT client-pool traffic to the LAN.
    #[serde(default)]
    pub masquerade: bool,
    #[serde(default = "defaults::max_connections")]
    pub max_connections: i64,
    /// Seconds between our liveness checks; 0 disables them.
    #[serde(default = "defaults::dpd_interval")]
    pub dpd_interval: i64,
    /// Seconds after a PSK change within which clients authenticated with the old PSK must
    /// authenticate again.
    #[serde(default = "defaults::psk_change_reauth")]
    pub psk_change_reauth: i64,
    /// Data-plane threads; 0 = one per core.
    #[serde(default)]
    pub workers: i64,
    /// `same-address`, `never` or `replace` (see [`super::UniquePolicy`]).
    #[serde(default = "defaults::unique")]
    pub unique: String,
    /// Claim a NAT in NAT detection so that every client encapsulates ESP in UDP.
    #[serde(default = "defaults::yes")]
    pub force_udp_encap: bool,
    /// The binary `ipsec-server upgrade` starts; default: the one the daemon runs.
    #[serde(default)]
    pub upgrade_binary: Option<PathBuf>,
}

/// `[limits]`: what outside traffic may make the daemon keep or compute (the responder's DoS
/// budget, modelled on strongSwan's `charon.cookie_threshold`, `cookie_threshold_ip`,
/// `block_threshold`, `init_limit_half_open`), plus the IKE thread's queue. Durations are in
/// seconds. File-only: the API never sets these.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsRaw {
    #[serde(default = "defaults::cookie_threshold")]
    pub cookie_threshold: i64,
    #[serde(default = "defaults::cookie_threshold_ip")]
    pub cookie_threshold_ip: i64,
    #[serde(default = "defaults::block_threshold_ip")]
    pub block_threshold_ip: i64,
    #[serde(default = "defaults::half_open_max")]
    pub half_open_max: i64,
    #[serde(default = "defaults::half_open_timeout")]
    pub half_open_timeout: i64,
    #[serde(default = "defaults::dh_per_second_cookie")]
    pub dh_per_second_cookie: i64,
    #[serde(default = "defaults::auth_failures_before_backoff")]
    pub auth_failures_before_backoff: i64,
    #[serde(default = "defaults::auth_backoff_max")]
    pub auth_backoff_max: i64,
    #[serde(default = "defaults::child_sas_per_ike_sa")]
    pub child_sas_per_ike_sa: i64,
    #[serde(default = "defaults::max_ike_message")]
    pub max_ike_message: i64,
    /// IKE datagrams waiting for the IKE thread; more are dropped (and counted).
    #[serde(default = "defaults::ike_queue")]
    pub ike_queue: i64,
}

impl Default for LimitsRaw {
    /// Every key at its default, as for an absent `[limits]` section.
    fn default() -> Self {
        use defaults::limits as d;
        Self {
            cookie_threshold: d::COOKIE_THRESHOLD.into(),
            cookie_threshold_ip: d::COOKIE_THRESHOLD_IP.into(),
            block_threshold_ip: d::BLOCK_THRESHOLD_IP.into(),
            half_open_max: d::HALF_OPEN_MAX.into(),
            half_open_timeout: d::HALF_OPEN_TIMEOUT_SECS.into(),
            dh_per_second_cookie: d::DH_PER_SECOND_COOKIE.into(),
            auth_failures_before_backoff: d::AUTH_FAILURES_BEFORE_BACKOFF.into(),
            auth_backoff_max: d::AUTH_BACKOFF_MAX_SECS.into(),
            child_sas_per_ike_sa: d::CHILD_SAS_PER_IKE_SA.into(),
            max_ike_message: d::MAX_IKE_MESSAGE.into(),
            ike_queue: d::IKE_QUEUE.into(),
        }
    }
}

/// `[ipsec_server]`, or the parameters of a `CreateIpsecServer` call. The single input of
/// [`IpsecServerSpec::validate`], shared by the file and the HTTP API.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecServerSpec {
    /// IpSecServerName.
    #[serde(default)]
    pub ipsec_server_name: Option<String>,
    /// LocalSubnet, one CIDR per item. In TOML either a list or the API's comma-separated
    /// string; the API layer can use [`super::split_local_subnet`].
    #[serde(deserialize_with = "string_or_list")]
    pub local_subnet: Vec<String>,
    /// ClientIpPool.
    pub client_ip_pool: String,
    /// EffectImmediately.
    #[serde(default)]
    pub effect_immediately: bool,
    /// PskEnabled; `None` means `true` (PSK is the only method we implement).
    #[serde(default)]
    pub psk_enabled: Option<bool>,
    /// Psk; `None` (and no `psk_file`) generates one.
    #[serde(default, deserialize_with = "secret")]
    pub psk: Option<SecretBytes>,
    /// File-only alternative to `psk`: an absolute path; one trailing newline is dropped.
    #[serde(default)]
    pub psk_file: Option<PathBuf>,
    /// File-only: DNS servers pushed as INTERNAL_IP4_DNS (RFC 7296 §3.15.1).
    #[serde(default)]
    pub dns: Vec<String>,
    /// IkeConfig.
    #[serde(default)]
    pub ike_config: IkeConfigRaw,
    /// IpsecConfig.
    #[serde(default)]
    pub ipsec_config: IpsecConfigRaw,
}

/// IkeConfig. TOML uses these snake_case keys; the API's JSON uses `IkeVersion` etc.,
/// read by [`IkeConfigRaw::from_api_json`]. `None` = the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IkeConfigRaw {
    pub ike_version: Option<String>,
    pub ike_mode: Option<String>,
    pub ike_enc_alg: Option<String>,
    pub ike_auth_alg: Option<String>,
    pub ike_pfs: Option<String>,
    pub ike_lifetime: Option<i64>,
    pub local_id: Option<String>,
    pub remote_id: Option<String>,
}

/// IpsecConfig; see [`IkeConfigRaw`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecConfigRaw {
    pub ipsec_enc_alg: Option<String>,
    pub ipsec_auth_alg: Option<String>,
    pub ipsec_pfs: Option<String>,
    pub ipsec_lifetime: Option<i64>,
}

/// `[api]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiRaw {
    /// `IP:PORT` of the HTTP listener.
    #[serde(default = "defaults::api_listen")]
    pub listen: String,
    #[serde(default)]
    pub access_keys: Vec<AccessKeyRaw>,
}

/// `[metrics]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsRaw {
    /// `IP:PORT` of the HTTP listener serving `GET /metrics`.
    #[serde(default = "defaults::metrics_listen")]
    pub listen: String,
    /// Series per client (identity and virtual IP labels).
    #[serde(default)]
    pub per_client: bool,
}

/// `[cluster]`: this node's etcd and its place in the cluster.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRaw {
    /// `http://HOST:PORT` or `https://HOST:PORT`, all of one scheme.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// PEM CA bundle that signs etcd's server certificate (https only).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and its key, both or neither (https only).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// etcd user; its password from `password_file` (or `password`).
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    pub password: Option<SecretBytes>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// This node's name in etcd; absent = the host name (the daemon reads it).
    #[serde(default)]
    pub node_id: Option<String>,
    /// Seconds of the node's etcd lease.
    #[serde(default = "defaults::cluster_lease_ttl")]
    pub lease_ttl: i64,
    /// Every key lives under it.
    #[serde(default = "defaults::cluster_prefix")]
    pub prefix: String,
    /// Run as `HOOK up|down ADDR NODE_ID` when this node takes or gives back a virtual IP
    /// (routed mode: tell the LAN's routing which node holds it).
    #[serde(default)]
    pub route_hook: Option<PathBuf>,
}

/// `[[api.access_keys]]`: an AccessKey pair the SDKs sign requests with.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyRaw {
    pub access_key_id: String,
    #[serde(default, deserialize_with = "secret")]
    pub access_key_secret: Option<SecretBytes>,
    /// Absolute path; one trailing newline is dropped.
    #[serde(default)]
    pub access_key_secret_file: Option<PathBuf>,
}

impl IkeConfigRaw {
    /// Reads the API's `IkeConfig` parameter, a JSON object with CamelCase keys, e.g.
    /// `{"IkeVersion":"ikev2","IkeMode":"main","IkeEncAlg":"aes","IkeAuthAlg":"sha1",
    /// "IkePfs":"group2","IkeLifetime":86400}`. Blank input means "all defaults";
    /// IkeLifetime may be a number or a decimal string. Errors: `IllegalParam.IkeConfig`,
    /// or `IllegalParam.IkeLifetime` for a lifetime that is not an integer.
    pub fn from_api_json(json: &str) -> Result<Self, ConfigError> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        let api: IkeConfigApi = api_object(json, codes::ILLEGAL_IKE_CONFIG, "IkeConfig")?;
        Ok(Self {
            ike_version: api.ike_version,
            ike_mode: api.ike_mode,
            ike_enc_alg: api.ike_enc_alg,
            ike_auth_alg: api.ike_auth_alg,
            ike_pfs: api.ike_pfs,
            ike_lifetime: json_int(api.ike_lifetime, codes::ILLEGAL_IKE_LIFETIME, "IkeLifetime")?,
            local_id: api.local_id,
            remote_id: api.remote_id,
        })
    }
}

impl IpsecConfigRaw {
    /// Reads the API's `IpsecConfig` parameter, e.g. `{"IpsecEncAlg":"aes",
    /// "IpsecAuthAlg":"sha1","IpsecPfs":"group2","IpsecLifetime":86400}`; as
    /// [`IkeConfigRaw::from_api_json`], with `IllegalParam.IpsecConfig`.
    pub fn from_api_json(json: &str) -> Result<Self, ConfigError> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        let api: IpsecConfigApi = api_object(json, codes::ILLEGAL_IPSEC_CONFIG, "IpsecConfig")?;
        Ok(Self {
            ipsec_enc_alg: api.ipsec_enc_alg,
            ipsec_auth_alg: api.ipsec_auth_alg,
            ipsec_pfs: api.ipsec_pfs,
            ipsec_lifetime: json_int(
                api.ipsec_lifetime,
                codes::ILLEGAL_IPSEC_LIFETIME,
                "IpsecLifetime",
            )?,
        })
    }
}

/// Default values of the optional keys (docs/DESIGN.md §1b and the brief of this module).
pub(super) mod defaults {
    use std::path::PathBuf;

    pub const IKE_PORT: u16 = 500; // RFC 7296 §2
    pub const NAT_T_PORT: u16 = 4500; // RFC 3948 §1, RFC 7296 §2.23
    pub const TUN_NAME: &str = "ipsec0";
    pub const STATE_DIR: &str = "/var/lib/ipsec-server";
    pub const CONTROL_SOCKET: &str = "/run/ipsec-server/control.sock";
    pub const MAX_CONNECTIONS: u32 = 1000;
    pub const DPD_INTERVAL_SECS: u32 = 30;
    pub const PSK_CHANGE_REAUTH_SECS: u32 = 3600;
    pub const API_LISTEN: &str = "127.0.0.1:8080";
    pub const METRICS_LISTEN: &str = "127.0.0.1:9571";
    pub const LIFETIME_SECS: u32 = 86400;

    pub fn listen_addrs() -> Vec<String> {
        vec!["0.0.0.0".to_owned()]
    }
    pub fn ike_port() -> i64 {
        IKE_PORT.into()
    }
    pub fn nat_t_port() -> i64 {
        NAT_T_PORT.into()
    }
    pub fn tun_name() -> String {
        TUN_NAME.to_owned()
    }
    pub fn state_dir() -> PathBuf {
        PathBuf::from(STATE_DIR)
    }
    pub fn control_socket() -> PathBuf {
        PathBuf::from(CONTROL_SOCKET)
    }
    pub fn yes() -> bool {
        true
    }
    pub fn max_connections() -> i64 {
        MAX_CONNECTIONS.into()
    }
    pub fn dpd_interval() -> i64 {
        DPD_INTERVAL_SECS.into()
    }
    pub fn psk_change_reauth() -> i64 {
        PSK_CHANGE_REAUTH_SECS.into()
    }
    pub fn unique() -> String {
        "same-address".to_owned()
    }
    pub fn api_listen() -> String {
        API_LISTEN.to_owned()
    }
    pub fn metrics_listen() -> String {
        METRICS_LISTEN.to_owned()
    }
    pub const CLUSTER_LEASE_TTL_SECS: u32 = 10;
    pub const CLUSTER_PREFIX: &str = "/ipsec-server";
    pub fn cluster_lease_ttl() -> i64 {
        CLUSTER_LEASE_TTL_SECS.into()
    }
    pub fn cluster_prefix() -> String {
        CLUSTER_PREFIX.to_owned()
    }

    /// `[limits]`: strongSwan's defaults where it has the knob (`charon.cookie_threshold` 10,
    /// `cookie_threshold_ip` 3, `block_threshold` 5, `half_open_timeout` 30 s), the same as
    /// `ike::Limits::default()` (a test in `tests/config.rs` holds them equal).
    pub mod limits {
        pub const COOKIE_THRESHOLD: u32 = 10;
        pub const COOKIE_THRESHOLD_IP: u32 = 3;
        pub const BLOCK_THRESHOLD_IP: u32 = 5;
        pub const HALF_OPEN_MAX: u32 = 1000;
        pub const HALF_OPEN_TIMEOUT_SECS: u32 = 30;
        pub const DH_PER_SECOND_COOKIE: u32 = 100;
        pub const AUTH_FAILURES_BEFORE_BACKOFF: u32 = 5;
        pub const AUTH_BACKOFF_MAX_SECS: u32 = 300;
        pub const CHILD_SAS_PER_IKE_SA: u32 = 16;
        pub const MAX_IKE_MESSAGE: u32 = 16 * 1024;
        pub const IKE_QUEUE: u32 = 4096;
    }
    pub fn cookie_threshold() -> i64 {
        limits::COOKIE_THRESHOLD.into()
    }
    pub fn cookie_threshold_ip() -> i64 {
        limits::COOKIE_THRESHOLD_IP.into()
    }
    pub fn block_threshold_ip() -> i64 {
        limits::BLOCK_THRESHOLD_IP.into()
    }
    pub fn half_open_max() -> i64 {
        limits::HALF_OPEN_MAX.into()
    }
    pub fn half_open_timeout() -> i64 {
        limits::HALF_OPEN_TIMEOUT_SECS.into()
    }
    pub fn dh_per_second_cookie() -> i64 {
        limits::DH_PER_SECOND_COOKIE.into()
    }
    pub fn auth_failures_before_backoff() -> i64 {
        limits::AUTH_FAILURES_BEFORE_BACKOFF.into()
    }
    pub fn auth_backoff_max() -> i64 {
        limits::AUTH_BACKOFF_MAX_SECS.into()
    }
    pub fn child_sas_per_ike_sa() -> i64 {
        limits::CHILD_SAS_PER_IKE_SA.into()
    }
    pub fn max_ike_message() -> i64 {
        limits::MAX_IKE_MESSAGE.into()
    }
    pub fn ike_queue() -> i64 {
        limits::IKE_QUEUE.into()
    }
}

/// The API's JSON spelling of [`IkeConfigRaw`].
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct IkeConfigApi {
    ike_version: Option<String>,
    ike_mode: Option<String>,
    ike_enc_alg: Option<String>,
    ike_auth_alg: Option<String>,
    ike_pfs: Option<String>,
    ike_lifetime: Option<serde_json::Value>,
    local_id: Option<String>,
    remote_id: Option<String>,
}

/// The API's JSON spelling of [`IpsecConfigRaw`].
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct IpsecConfigApi {
    ipsec_enc_alg: Option<String>,
    ipsec_auth_alg: Option<String>,
    ipsec_pfs: Option<String>,
    ipsec_lifetime: Option<serde_json::Value>,
}

/// Parses an API JSON parameter that must be an object.
fn api_object<T: serde::de::DeserializeOwned>(
    json: &str,
    code: &'static str,
    param: &str,
) -> Result<T, ConfigError> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| ConfigError::new(code, format!("{param} is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ConfigError::new(
            code,
            format!("{param} must be a JSON object"),
        ));
    }
    serde_json::from_value(value).map_err(|e| ConfigError::new(code, format!("{param}: {e}")))
}

/// A JSON integer, or a string holding one (SDK users often quote numbers).
pub(super) fn json_int(
    v: Option<serde_json::Value>,
    code: &'static str,
    field: &str,
) -> Result<Option<i64>, ConfigError> {
    let bad = |shown: String| ConfigError::new(code, format!("{field} {shown} is not an integer"));
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| bad(n.to_string()))
        }
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(super::validate::shown(&s))),
        Some(other) => Err(bad(super::validate::shown(&other.to_string()))),
    }
}

/// 1-based line and column (in characters) of a byte offset, if it is inside `text`.
pub(super) fn line_col(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

/// Deserializes a secret string; errors say what was wrong but never show the value.
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretBytes>, D::Error> {
    d.deserialize_any(SecretVisitor).map(Some)
}

struct SecretVisitor;

const NOT_A_STRING: &str = "a secret must be a string (value not shown)";

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = SecretBytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretBytes, E> {
        Ok(SecretBytes::from_slice(v.as_bytes()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<SecretBytes, E> {
        // Moves the buffer: no unzeroized copy is left behind.
        Ok(SecretBytes::new(v.into_bytes()))
    }
    // The default implementations would echo the value in the error message.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretBytes, E> {
        Err(E::custom(NOT_A_STRING))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretBytes, E> {
        Err(E::custom(NOT_A_STRING))
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<SecretBytes, E> {
        Err(E::custom(NOT_A_STRING))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretBytes, E> {
        Err(E::custom(NOT_A_STRING))
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<SecretBytes, E> {
        Err(E::custom(NOT_A_STRING))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretBytes, E> {
        Err(E::custom(NOT_A_STRING))
    }
    fn visit_char<E: de::Error>(self, _: char) -> Result<SecretBytes, E> {
        Err(E::custom(NOT_A_STRING))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SecretBytes, E> {
        Err(E::custom(NOT_A_STRING))
    }
    fn visit_unit<E: de::Error>(self) -> Result<SecretBytes, E> {
        Err(E::custom(NOT_A_STRING))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<SecretBytes, A::Error> {
        Err(de::Error::custom(NOT_A_STRING))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<SecretBytes, A::Error> {
        Err(de::Error::custom(NOT_A_STRING))
    }
}

/// LocalSubnet as a TOML list of strings or as the API's comma-separated string.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of CIDR strings or one comma-separated string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(super::split_local_subnet(v))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

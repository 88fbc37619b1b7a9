//! The validated configuration. Fields are private to the `config` module: the only way to
//! obtain these values is validation, so holding one is proof that its rules held.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::{NonZeroU16, NonZeroU32};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;

use super::types::{AuthAlg, DhGroup, EncAlg};
use crate::ike::{Identity, UniquePolicy};
use crate::secret::SecretBytes;

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// `[gateway]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    pub(super) vpn_gateway_id: String,
    pub(super) region_id: String,
    pub(super) listen_addrs: Vec<IpAddr>,
    pub(super) ike_port: NonZeroU16,
    pub(super) nat_t_port: NonZeroU16,
    pub(super) tun_name: String,
    pub(super) state_dir: PathBuf,
    pub(super) control_socket: PathBuf,
    pub(super) ip_forward: bool,
    pub(super) masquerade: bool,
    pub(super) max_connections: NonZeroU32,
    pub(super) dpd_interval: Option<Duration>,
    pub(super) psk_change_reauth: Duration,
    pub(super) workers: Option<NonZeroU32>,
    pub(super) unique: UniquePolicy,
    pub(super) force_udp_encap: bool,
    pub(super) upgrade_binary: Option<PathBuf>,
}

impl GatewayConfig {
    /// 1..=64 characters of `[A-Za-z0-9_-]`.
    pub fn vpn_gateway_id(&self) -> &str {
        &self.vpn_gateway_id
    }
    /// 1..=64 characters of `[A-Za-z0-9_-]`.
    pub fn region_id(&self) -> &str {
        &self.region_id
    }
    /// Non-empty, no duplicates, no multicast, never a wildcard together with a specific
    /// address of the same family.
    pub fn listen_addrs(&self) -> &[IpAddr] {
        &self.listen_addrs
    }
    /// Differs from [`Self::nat_t_port`].
    pub fn ike_port(&self) -> NonZeroU16 {
        self.ike_port
    }
    pub fn nat_t_port(&self) -> NonZeroU16 {
        self.nat_t_port
    }
    /// A valid Linux interface name: 1..=15 characters of `[A-Za-z0-9_.-]`, not `.`/`..`.
    pub fn tun_name(&self) -> &str {
        &self.tun_name
    }
    /// Absolute.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
    /// The `status` socket: absolute, names a file, at most [`MAX_SOCKET_PATH`] bytes.
    pub fn control_socket(&self) -> &Path {
        &self.control_socket
    }
    pub fn ip_forward(&self) -> bool {
        self.ip_forward
    }
    pub fn masquerade(&self) -> bool {
        self.masquerade
    }
    /// 1..=100000.
    pub fn max_connections(&self) -> NonZeroU32 {
        self.max_connections
    }
    /// `None`: our own liveness checks are disabled. At most one hour.
    pub fn dpd_interval(&self) -> Option<Duration> {
        self.dpd_interval
    }
    /// After a PSK change, the time within which clients authenticated with the old PSK must
    /// authenticate again (or are deleted). 1 s ..= 1 day.
    pub fn psk_change_reauth(&self) -> Duration {
        self.psk_change_reauth
    }
    /// `None`: one data-plane worker per core. At most 1024.
    pub fn workers(&self) -> Option<NonZeroU32> {
        self.workers
    }
    pub fn unique(&self) -> UniquePolicy {
        self.unique
    }
    /// Our NAT detection claims a NAT, so every client sends ESP in UDP (the data plane
    /// receives no raw ESP); `false`: honest NAT detection, and a client that is not behind
    /// a NAT gets no data plane.
    pub fn force_udp_encap(&self) -> bool {
        self.force_udp_encap
    }
    /// The binary `ipsec-server upgrade` starts (absolute); `None`: the one the daemon was
    /// started from.
    pub fn upgrade_binary(&self) -> Option<&Path> {
        self.upgrade_binary.as_deref()
    }
}

/// `[limits]`, validated: the responder's DoS budget and the IKE thread's queue. Every count
/// is at least 1 and bounded (see each accessor), so no limit can be switched off by
/// accident and none can make a table or queue grow without bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsConfig {
    pub(super) cookie_threshold: NonZeroU32,
    pub(super) cookie_threshold_ip: NonZeroU32,
    pub(super) block_threshold_ip: NonZeroU32,
    pub(super) half_open_max: NonZeroU32,
    pub(super) half_open_timeout: Duration,
    pub(super) dh_per_second_cookie: NonZeroU32,
    pub(super) auth_failures_before_backoff: NonZeroU32,
    pub(super) auth_backoff_max: Duration,
    pub(super) child_sas_per_ike_sa: NonZeroU32,
    pub(super) max_ike_message: u16,
    pub(super) ike_queue: NonZeroU32,
}

impl LimitsConfig {
    /// Half-open IKE SAs in total from which every IKE_SA_INIT must carry a cookie
    /// (RFC 7296 §2.6). 1..=1000000.
    pub fn cookie_threshold(&self) -> NonZeroU32 {
        self.cookie_threshold
    }
    /// Half-open IKE SAs from one IP address from which that address must carry a cookie.
    /// 1..=1000000.
    pub fn cookie_threshold_ip(&self) -> NonZeroU32 {
        self.cookie_threshold_ip
    }
    /// Half-open IKE SAs one IP address may hold, cookie or not. 1..=1000000.
    pub fn block_threshold_ip(&self) -> NonZeroU32 {
        self.block_threshold_ip
    }
    /// Half-open IKE SAs in total, cookie or not. 1..=1000000.
    pub fn half_open_max(&self) -> NonZeroU32 {
        self.half_open_max
    }
    /// How long an IKE SA may wait for its IKE_AUTH: 1..=3600 s.
    pub fn half_open_timeout(&self) -> Duration {
        self.half_open_timeout
    }
    /// IKE_SA_INIT Diffie-Hellman computations per second from which every IKE_SA_INIT must
    /// carry a cookie. 1..=1000000.
    pub fn dh_per_second_cookie(&self) -> NonZeroU32 {
        self.dh_per_second_cookie
    }
    /// Failed authentications (per IP address or identity) before the back-off starts.
    /// 1..=1000000.
    pub fn auth_failures_before_backoff(&self) -> NonZeroU32 {
        self.auth_failures_before_backoff
    }
    /// Upper bound of the authentication back-off: 1..=86400 s.
    pub fn auth_backoff_max(&self) -> Duration {
        self.auth_backoff_max
    }
    /// Child SAs one IKE SA may hold. 1..=1024.
    pub fn child_sas_per_ike_sa(&self) -> NonZeroU32 {
        self.child_sas_per_ike_sa
    }
    /// Largest IKE message accepted, reassembled fragments included: 1280..=65535 bytes
    /// (RFC 7296 §2: every implementation must accept at least 1280).
    pub fn max_ike_message(&self) -> u16 {
        self.max_ike_message
    }
    /// IKE datagrams that may wait for the IKE thread; more are dropped and counted.
    /// 1..=65536.
    pub fn ike_queue(&self) -> NonZeroU32 {
        self.ike_queue
    }
}

/// One IPsec server (`[ipsec_server]` or a `CreateIpsecServer` call), validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpsecServerConfig {
    pub(super) name: Option<String>,
    pub(super) local_subnets: Vec<Ipv4Net>,
    pub(super) client_ip_pool: Ipv4Net,
    pub(super) effect_immediately: bool,
    pub(super) psk: SecretBytes,
    pub(super) psk_generated: bool,
    pub(super) psk_file: Option<PathBuf>,
    pub(super) dns: Vec<Ipv4Addr>,
    pub(super) ike: IkeConfig,
    pub(super) ipsec: IpsecConfig,
}

impl IpsecServerConfig {
    /// IpSecServerName: 1..=100 characters, no control characters, no `http(s)://` prefix.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// LocalSubnet: non-empty, canonical (no host bits), no duplicates. The TSr we offer.
    pub fn local_subnets(&self) -> &[Ipv4Net] {
        &self.local_subnets
    }
    /// ClientIpPool: canonical, prefix 16..=29, disjoint from every local subnet and from
    /// the host networks validation was given.
    pub fn client_ip_pool(&self) -> Ipv4Net {
        self.client_ip_pool
    }
    pub fn effect_immediately(&self) -> bool {
        self.effect_immediately
    }
    /// 1..=100 bytes of printable ASCII (0x20..=0x7e).
    pub fn psk(&self) -> &SecretBytes {
        &self.psk
    }
    /// True when no PSK was configured and validation generated one (16 alphanumerics).
    /// A generated PSK changes on every validation: the daemon replaces it with the one it
    /// keeps in `state_dir` ([`Self::with_kept_psk`]).
    pub fn psk_generated(&self) -> bool {
        self.psk_generated
    }
    /// The same server with `psk` (kept from an earlier run) in place of the generated one;
    /// `None` when the PSK was configured (`psk`, `psk_file`: the file wins) or `psk` is not
    /// 1..=100 printable ASCII characters.
    pub fn with_kept_psk(&self, psk: SecretBytes) -> Option<Self> {
        (self.psk_generated && super::validate::check_psk(&psk).is_ok()).then(|| Self {
            psk,
            ..self.clone()
        })
    }
    /// The `psk_file` the PSK was read from, if it was (for the startup line: where the PSK
    /// comes from, never what it is).
    pub fn psk_file(&self) -> Option<&Path> {
        self.psk_file.as_deref()
    }
    /// INTERNAL_IP4_DNS servers (RFC 7296 §3.15.1), possibly empty.
    pub fn dns(&self) -> &[Ipv4Addr] {
        &self.dns
    }
    pub fn ike(&self) -> &IkeConfig {
        &self.ike
    }
    pub fn ipsec(&self) -> &IpsecConfig {
        &self.ipsec
    }
}

/// IkeConfig, validated. IkeVersion is always `ikev2` and IkeMode `main` (the only values
/// accepted), so they are not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeConfig {
    pub(super) enc: EncAlg,
    pub(super) auth: AuthAlg,
    pub(super) dh_group: DhGroup,
    pub(super) lifetime: Duration,
    pub(super) local_id: Option<Identity>,
    pub(super) remote_id: Option<Identity>,
}

impl IkeConfig {
    pub fn enc(&self) -> EncAlg {
        self.enc
    }
    /// PRF and integrity algorithm of the IKE SA.
    pub fn auth(&self) -> AuthAlg {
        self.auth
    }
    /// IkePfs: the IKE SA's DH group.
    pub fn dh_group(&self) -> DhGroup {
        self.dh_group
    }
    /// IkeLifetime, 0..=86400 s. Zero means the responder never rekeys or expires the IKE SA
    /// itself and leaves that to the initiator.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
    /// IDr we send; `None`: the address the client reached.
    pub fn local_id(&self) -> Option<&Identity> {
        self.local_id.as_ref()
    }
    /// IDi we require; `None` accepts any.
    pub fn remote_id(&self) -> Option<&Identity> {
        self.remote_id.as_ref()
    }
    /// The API's JSON form (for ListIpsecServers).
    pub fn to_api_json(&self) -> serde_json::Value {
        serde_json::json!({
            "IkeVersion": "ikev2",
            "IkeMode": "main",
            "IkeEncAlg": self.enc.api_name(),
            "IkeAuthAlg": self.auth.api_name(),
            "IkePfs": self.dh_group.api_name(),
            "IkeLifetime": self.lifetime.as_secs(),
            "LocalId": self.local_id.as_ref().map(ToString::to_string).unwrap_or_default(),
            "RemoteId": self.remote_id.as_ref().map(ToString::to_string).unwrap_or_default(),
        })
    }
}

/// IpsecConfig, validated: the Child SAs' transforms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpsecConfig {
    pub(super) enc: EncAlg,
    pub(super) auth: AuthAlg,
    pub(super) pfs: Option<DhGroup>,
    pub(super) lifetime: Duration,
}

impl IpsecConfig {
    pub fn enc(&self) -> EncAlg {
        self.enc
    }
    pub fn auth(&self) -> AuthAlg {
        self.auth
    }
    /// IpsecPfs: DH group of CREATE_CHILD_SA rekeys (RFC 7296 §1.3.1); `None` = `disabled`.
    /// The first Child SA is keyed from the IKE SA without its own DH (RFC 7296 §1.2).
    pub fn pfs(&self) -> Option<DhGroup> {
        self.pfs
    }
    /// IpsecLifetime, 0..=86400 s; zero as for [`IkeConfig::lifetime`].
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
    /// The API's JSON form (for ListIpsecServers).
    pub fn to_api_json(&self) -> serde_json::Value {
        serde_json::json!({
            "IpsecEncAlg": self.enc.api_name(),
            "IpsecAuthAlg": self.auth.api_name(),
            "IpsecPfs": self.pfs.map_or("disabled", DhGroup::api_name),
            "IpsecLifetime": self.lifetime.as_secs(),
        })
    }
}

/// `[api]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    pub(super) listen: SocketAddr,
    pub(super) access_keys: Vec<AccessKey>,
}

impl ApiConfig {
    /// Nonzero port.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }
    /// Non-empty; ids are unique.
    pub fn access_keys(&self) -> &[AccessKey] {
        &self.access_keys
    }
    /// The key with this AccessKeyId.
    pub fn access_key(&self, id: &str) -> Option<&AccessKey> {
        self.access_keys.iter().find(|k| k.id == id)
    }
}

/// `[metrics]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    pub(super) listen: SocketAddr,
    pub(super) per_client: bool,
}

impl MetricsConfig {
    /// Nonzero port; not the API's listener.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }
    /// Series per client (identity and virtual IP labels).
    pub fn per_client(&self) -> bool {
        self.per_client
    }
}

/// An AccessKey pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKey {
    pub(super) id: String,
    pub(super) secret: SecretBytes,
}

impl AccessKey {
    /// 1..=128 characters of printable ASCII without spaces.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// 1..=256 bytes of printable ASCII without spaces.
    pub fn secret(&self) -> &SecretBytes {
        &self.secret
    }
}

/// `[cluster]`, validated: how this node reaches etcd and what it is called there
/// (README, "Running several gateways"; ARCHITECTURE.md §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    pub(super) endpoints: Vec<String>,
    pub(super) tls: Option<ClusterTls>,
    pub(super) auth: Option<(String, SecretBytes)>,
    pub(super) node_id: Option<String>,
    pub(super) lease_ttl: Duration,
    pub(super) prefix: String,
    pub(super) route_hook: Option<PathBuf>,
}

/// TLS to etcd (`https://` endpoints): the CA to trust and an optional client certificate
/// with its key, all absolute paths to PEM files (read when the daemon connects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTls {
    pub(super) ca_file: PathBuf,
    pub(super) identity: Option<(PathBuf, PathBuf)>,
}

impl ClusterTls {
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
    /// The client certificate and its key.
    pub fn identity(&self) -> Option<(&Path, &Path)> {
        self.identity
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()))
    }
}

impl ClusterConfig {
    /// 1..=16 `http://HOST:PORT` or `https://HOST:PORT`, all of one scheme, distinct.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }
    /// `Some` exactly when the endpoints are `https://`.
    pub fn tls(&self) -> Option<&ClusterTls> {
        self.tls.as_ref()
    }
    /// The etcd user and its password (never logged).
    pub fn auth(&self) -> Option<(&str, &SecretBytes)> {
        self.auth.as_ref().map(|(u, p)| (u.as_str(), p))
    }
    /// 1..=63 characters of A-Z a-z 0-9 . _ -; `None`: the host name (the daemon reads it).
    pub fn node_id(&self) -> Option<&str> {
        self.node_id.as_deref()
    }
    /// 5..=600 s: how long etcd keeps this node's leases (virtual IPs) after it went silent.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }
    /// Starts with `/`, no trailing `/`, 2..=128 characters of A-Z a-z 0-9 / . _ -.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// An absolute path, run as `HOOK up|down ADDR NODE_ID` when this node takes or gives
    /// back a virtual IP (README, "Running several gateways": routed mode).
    pub fn route_hook(&self) -> Option<&Path> {
        self.route_hook.as_deref()
    }
}

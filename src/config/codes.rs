//! Error codes of configuration validation.
//!
//! Codes that the `CreateIpsecServer` API documents (`seed/CreateIpsecServer.zh.txt`, table
//! 错误码) are used verbatim. The seed documents no code for many parameter rules; for those
//! we follow the seed's own pattern (`IllegalParam.<Parameter>`,
//! `OperationUnsupported.<Parameter>`) with the API parameter's exact name. Keys that exist
//! only in the daemon's TOML file (docs/DESIGN.md §1b) and never arrive through the API get an
//! `InvalidConfig.<Key>` code, so an API client can never see them.
//!
//! | code | origin | raised for |
//! |---|---|---|
//! | `IllegalParam.LocalSubnet` | seed | LocalSubnet not a list of canonical IPv4 CIDRs |
//! | `ClientIpPool.NetmaskInvalid` | seed | ClientIpPool prefix length outside 16..=29 |
//! | `ClientIpPool.SubnetInvalid` | seed | ClientIpPool not a canonical IPv4 CIDR, or a reserved range |
//! | `InvalidClientIpPool.Conflict` | seed | ClientIpPool overlaps LocalSubnet or a host network |
//! | `IllegalParam.AuthMethod` | seed | PskEnabled = false (no authentication method left) |
//! | `OperationUnsupported.IpsecPfs` | seed | IpsecPfs not a group we implement nor `disabled` |
//! | `IllegalParam.IpSecServerName` | invented | name length, `http(s)://` prefix, control characters |
//! | `IllegalParam.Psk` | invented | Psk not 1..=100 printable ASCII characters |
//! | `IllegalParam.IkeConfig` | invented | IkeConfig API JSON malformed or with an unknown key |
//! | `IllegalParam.IkeVersion` | invented | IkeVersion neither `ikev1` nor `ikev2` |
//! | `OperationUnsupported.IkeVersion` | invented | IkeVersion `ikev1` (valid in the API, not implemented) |
//! | `IllegalParam.IkeMode` | invented | IkeMode neither `main` nor `aggressive` |
//! | `OperationUnsupported.IkeMode` | invented | IkeMode `aggressive` (IKEv1 only; IKEv2 has no modes) |
//! | `IllegalParam.IkeEncAlg` | invented | unknown IkeEncAlg |
//! | `IllegalParam.IkeAuthAlg` | invented | unknown IkeAuthAlg |
//! | `IllegalParam.IkePfs` | invented | unknown IkePfs (`disabled` included: an IKE SA always needs DH) |
//! | `IllegalParam.IkeLifetime` | invented | IkeLifetime outside 0..=86400 |
//! | `IllegalParam.LocalId` | invented | LocalId longer than 100 characters or malformed |
//! | `IllegalParam.RemoteId` | invented | RemoteId longer than 100 characters or malformed |
//! | `IllegalParam.IpsecConfig` | invented | IpsecConfig API JSON malformed or with an unknown key |
//! | `IllegalParam.IpsecEncAlg` | invented | unknown IpsecEncAlg |
//! | `IllegalParam.IpsecAuthAlg` | invented | unknown IpsecAuthAlg |
//! | `IllegalParam.IpsecLifetime` | invented | IpsecLifetime outside 0..=86400 |
//! | `InvalidConfig.Io` | file only | the config file cannot be read |
//! | `InvalidConfig.Syntax` | file only | TOML syntax, wrong value type, missing or unknown key |
//! | `InvalidConfig.NothingToServe` | file only | neither `[ipsec_server]` nor `[api]` present |
//! | `InvalidConfig.VpnGatewayId` | file only | `gateway.vpn_gateway_id` empty, too long, bad characters |
//! | `InvalidConfig.RegionId` | file only | `gateway.region_id` empty, too long, bad characters |
//! | `InvalidConfig.ListenAddrs` | file only | `gateway.listen_addrs` empty, not IPs, duplicated, multicast, IPv6, a wildcard beside a specific address |
//! | `InvalidConfig.IkePort` | file only | `gateway.ike_port` outside 1..=65535 |
//! | `InvalidConfig.NatTPort` | file only | `gateway.nat_t_port` outside 1..=65535 or equal to `ike_port` |
//! | `InvalidConfig.TunName` | file only | `gateway.tun_name` not 1..=15 of `[A-Za-z0-9_]` (an interface name that is also the nft table suffix) |
//! | `InvalidConfig.StateDir` | file only | `gateway.state_dir` not an absolute path |
//! | `InvalidConfig.ControlSocket` | file only | `gateway.control_socket` not an absolute path to a file, or longer than a Unix socket address holds (107 bytes) |
//! | `InvalidConfig.MaxConnections` | file only | `gateway.max_connections` outside 1..=100000 |
//! | `InvalidConfig.DpdInterval` | file only | `gateway.dpd_interval` outside 0..=3600 |
//! | `InvalidConfig.PskChangeReauth` | file only | `gateway.psk_change_reauth` outside 1..=86400 |
//! | `InvalidConfig.Workers` | file only | `gateway.workers` outside 0..=1024 |
//! | `InvalidConfig.Unique` | file only | `gateway.unique` not `same-address`, `never`, `replace` |
//! | `InvalidConfig.UpgradeBinary` | file only | `gateway.upgrade_binary` not an absolute path |
//! | `InvalidConfig.CookieThreshold` | file only | `limits.cookie_threshold` outside 1..=1000000 |
//! | `InvalidConfig.CookieThresholdIp` | file only | `limits.cookie_threshold_ip` outside 1..=1000000 |
//! | `InvalidConfig.BlockThresholdIp` | file only | `limits.block_threshold_ip` outside 1..=1000000 |
//! | `InvalidConfig.HalfOpenMax` | file only | `limits.half_open_max` outside 1..=1000000 |
//! | `InvalidConfig.HalfOpenTimeout` | file only | `limits.half_open_timeout` outside 1..=3600 |
//! | `InvalidConfig.DhPerSecondCookie` | file only | `limits.dh_per_second_cookie` outside 1..=1000000 |
//! | `InvalidConfig.AuthFailuresBeforeBackoff` | file only | `limits.auth_failures_before_backoff` outside 1..=1000000 |
//! | `InvalidConfig.AuthBackoffMax` | file only | `limits.auth_backoff_max` outside 1..=86400 |
//! | `InvalidConfig.ChildSasPerIkeSa` | file only | `limits.child_sas_per_ike_sa` outside 1..=1024 |
//! | `InvalidConfig.MaxIkeMessage` | file only | `limits.max_ike_message` outside 1280..=65535 |
//! | `InvalidConfig.IkeQueue` | file only | `limits.ike_queue` outside 1..=65536 |
//! | `InvalidConfig.PskFile` | file only | `psk_file` together with `psk`, relative, or unreadable |
//! | `InvalidConfig.Dns` | file only | `ipsec_server.dns` entry not a usable IPv4 address |
//! | `InvalidConfig.ApiListen` | file only | `api.listen` not `IP:PORT` with a nonzero port |
//! | `InvalidConfig.AccessKeys` | file only | `[api]` without any `[[api.access_keys]]` |
//! | `InvalidConfig.AccessKeyId` | file only | access_key_id empty, too long, bad characters, duplicated |
//! | `InvalidConfig.AccessKeySecret` | file only | secret missing, given twice, unreadable, or malformed |
//! | `Host.PortInUse` | host | UDP `ike_port`/`nat_t_port` (or the TCP `api.listen`) already bound on a listen address |
//! | `Host.Bind` | host | binding that port fails otherwise (address not on this host, permission) |
//! | `Host.InterfaceExists` | host | an interface named `tun_name` already exists |
//! | `Host.DaemonRunning` | host | a daemon already answers on `gateway.control_socket` |
//! | `Host.ControlSocket` | host | something other than a socket (a file, a link) is at `gateway.control_socket` |
//! | `Host.PrivateDir` | host | `state_dir` or the control socket's directory exists but is not one `run` accepts (a link, not ours, writable by others) |
//! | `InvalidConfig.ExampleSecret` | file only | the shipped example PSK or AccessKey secret while a listen address (`gateway.listen_addrs`, `api.listen`) is not loopback |
//!
//! Seed codes not raised here (they belong to the API/daemon layers): `VpnRouteEntry.Conflict`,
//! `OperationFailed.IPsecServerExist`, `VpnGateway.Configuring`, `MissingParam.IDaaSInstanceId`.

// Seed codes (seed/CreateIpsecServer.zh.txt, 错误码).
pub const ILLEGAL_LOCAL_SUBNET: &str = "IllegalParam.LocalSubnet";
pub const CLIENT_IP_POOL_NETMASK_INVALID: &str = "ClientIpPool.NetmaskInvalid";
pub const CLIENT_IP_POOL_SUBNET_INVALID: &str = "ClientIpPool.SubnetInvalid";
pub const CLIENT_IP_POOL_CONFLICT: &str = "InvalidClientIpPool.Conflict";
pub const ILLEGAL_AUTH_METHOD: &str = "IllegalParam.AuthMethod";
pub const UNSUPPORTED_IPSEC_PFS: &str = "OperationUnsupported.IpsecPfs";

// Invented API codes, following the seed's `IllegalParam.<Parameter>` pattern.
pub const ILLEGAL_NAME: &str = "IllegalParam.IpSecServerName";
pub const ILLEGAL_PSK: &str = "IllegalParam.Psk";
pub const ILLEGAL_IKE_CONFIG: &str = "IllegalParam.IkeConfig";
pub const ILLEGAL_IKE_VERSION: &str = "IllegalParam.IkeVersion";
pub const UNSUPPORTED_IKE_VERSION: &str = "OperationUnsupported.IkeVersion";
pub const ILLEGAL_IKE_MODE: &str = "IllegalParam.IkeMode";
pub const UNSUPPORTED_IKE_MODE: &str = "OperationUnsupported.IkeMode";
pub const ILLEGAL_IKE_ENC_ALG: &str = "IllegalParam.IkeEncAlg";
pub const ILLEGAL_IKE_AUTH_ALG: &str = "IllegalParam.IkeAuthAlg";
pub const ILLEGAL_IKE_PFS: &str = "IllegalParam.IkePfs";
pub const ILLEGAL_IKE_LIFETIME: &str = "IllegalParam.IkeLifetime";
pub const ILLEGAL_LOCAL_ID: &str = "IllegalParam.LocalId";
pub const ILLEGAL_REMOTE_ID: &str = "IllegalParam.RemoteId";
pub const ILLEGAL_IPSEC_CONFIG: &str = "IllegalParam.IpsecConfig";
pub const ILLEGAL_IPSEC_ENC_ALG: &str = "IllegalParam.IpsecEncAlg";
pub const ILLEGAL_IPSEC_AUTH_ALG: &str = "IllegalParam.IpsecAuthAlg";
pub const ILLEGAL_IPSEC_LIFETIME: &str = "IllegalParam.IpsecLifetime";

// Invented codes for keys that exist only in the TOML file.
pub const IO: &str = "InvalidConfig.Io";
pub const SYNTAX: &str = "InvalidConfig.Syntax";
pub const NOTHING_TO_SERVE: &str = "InvalidConfig.NothingToServe";
pub const VPN_GATEWAY_ID: &str = "InvalidConfig.VpnGatewayId";
pub const REGION_ID: &str = "InvalidConfig.RegionId";
pub const LISTEN_ADDRS: &str = "InvalidConfig.ListenAddrs";
pub const IKE_PORT: &str = "InvalidConfig.IkePort";
pub const NAT_T_PORT: &str = "InvalidConfig.NatTPort";
pub const TUN_NAME: &str = "InvalidConfig.TunName";
pub const STATE_DIR: &str = "InvalidConfig.StateDir";
pub const CONTROL_SOCKET: &str = "InvalidConfig.ControlSocket";
pub const UPGRADE_BINARY: &str = "InvalidConfig.UpgradeBinary";
pub const MAX_CONNECTIONS: &str = "InvalidConfig.MaxConnections";
pub const DPD_INTERVAL: &str = "InvalidConfig.DpdInterval";
pub const PSK_CHANGE_REAUTH: &str = "InvalidConfig.PskChangeReauth";
pub const WORKERS: &str = "InvalidConfig.Workers";
pub const UNIQUE: &str = "InvalidConfig.Unique";
pub const COOKIE_THRESHOLD: &str = "InvalidConfig.CookieThreshold";
pub const COOKIE_THRESHOLD_IP: &str = "InvalidConfig.CookieThresholdIp";
pub const BLOCK_THRESHOLD_IP: &str = "InvalidConfig.BlockThresholdIp";
pub const HALF_OPEN_MAX: &str = "InvalidConfig.HalfOpenMax";
pub const HALF_OPEN_TIMEOUT: &str = "InvalidConfig.HalfOpenTimeout";
pub const DH_PER_SECOND_COOKIE: &str = "InvalidConfig.DhPerSecondCookie";
pub const AUTH_FAILURES_BEFORE_BACKOFF: &str = "InvalidConfig.AuthFailuresBeforeBackoff";
pub const AUTH_BACKOFF_MAX: &str = "InvalidConfig.AuthBackoffMax";
pub const CHILD_SAS_PER_IKE_SA: &str = "InvalidConfig.ChildSasPerIkeSa";
pub const MAX_IKE_MESSAGE: &str = "InvalidConfig.MaxIkeMessage";
pub const IKE_QUEUE: &str = "InvalidConfig.IkeQueue";
pub const PSK_FILE: &str = "InvalidConfig.PskFile";
pub const DNS: &str = "InvalidConfig.Dns";
pub const API_LISTEN: &str = "InvalidConfig.ApiListen";
pub const ACCESS_KEYS: &str = "InvalidConfig.AccessKeys";
pub const ACCESS_KEY_ID: &str = "InvalidConfig.AccessKeyId";
pub const ACCESS_KEY_SECRET: &str = "InvalidConfig.AccessKeySecret";
pub const METRICS_LISTEN: &str = "InvalidConfig.MetricsListen";
pub const EXAMPLE_SECRET: &str = "InvalidConfig.ExampleSecret";
pub const CLUSTER_ENDPOINTS: &str = "InvalidConfig.ClusterEndpoints";
pub const CLUSTER_TLS: &str = "InvalidConfig.ClusterTls";
pub const CLUSTER_AUTH: &str = "InvalidConfig.ClusterAuth";
pub const CLUSTER_NODE_ID: &str = "InvalidConfig.ClusterNodeId";
pub const CLUSTER_LEASE_TTL: &str = "InvalidConfig.ClusterLeaseTtl";
pub const CLUSTER_PREFIX: &str = "InvalidConfig.ClusterPrefix";
pub const CLUSTER_ROUTE_HOOK: &str = "InvalidConfig.ClusterRouteHook";

// Host conditions: what `ipsec-server check` finds on this host, not in the file (checked by
// `daemon::host_check`, skipped by `check --no-host`). ClientIpPool overlapping a host
// network keeps its API code, `InvalidClientIpPool.Conflict`, marked as a host condition.
pub const HOST_PORT_IN_USE: &str = "Host.PortInUse";
pub const HOST_BIND: &str = "Host.Bind";
pub const HOST_INTERFACE_EXISTS: &str = "Host.InterfaceExists";
pub const HOST_DAEMON_RUNNING: &str = "Host.DaemonRunning";
pub const HOST_CONTROL_SOCKET: &str = "Host.ControlSocket";
pub const HOST_PRIVATE_DIR: &str = "Host.PrivateDir";

/// The host-condition codes (not part of [`ALL`], which the file alone can raise).
pub const HOST: &[&str] = &[
    HOST_PORT_IN_USE,
    HOST_BIND,
    HOST_INTERFACE_EXISTS,
    HOST_DAEMON_RUNNING,
    HOST_CONTROL_SOCKET,
    HOST_PRIVATE_DIR,
];

/// Every code above, for exhaustiveness tests and documentation generators.
pub const ALL: &[&str] = &[
    ILLEGAL_LOCAL_SUBNET,
    CLIENT_IP_POOL_NETMASK_INVALID,
    CLIENT_IP_POOL_SUBNET_INVALID,
    CLIENT_IP_POOL_CONFLICT,
    ILLEGAL_AUTH_METHOD,
    UNSUPPORTED_IPSEC_PFS,
    ILLEGAL_NAME,
    ILLEGAL_PSK,
    ILLEGAL_IKE_CONFIG,
    ILLEGAL_IKE_VERSION,
    UNSUPPORTED_IKE_VERSION,
    ILLEGAL_IKE_MODE,
    UNSUPPORTED_IKE_MODE,
    ILLEGAL_IKE_ENC_ALG,
    ILLEGAL_IKE_AUTH_ALG,
    ILLEGAL_IKE_PFS,
    ILLEGAL_IKE_LIFETIME,
    ILLEGAL_LOCAL_ID,
    ILLEGAL_REMOTE_ID,
    ILLEGAL_IPSEC_CONFIG,
    ILLEGAL_IPSEC_ENC_ALG,
    ILLEGAL_IPSEC_AUTH_ALG,
    ILLEGAL_IPSEC_LIFETIME,
    IO,
    SYNTAX,
    NOTHING_TO_SERVE,
    VPN_GATEWAY_ID,
    REGION_ID,
    LISTEN_ADDRS,
    IKE_PORT,
    NAT_T_PORT,
    TUN_NAME,
    STATE_DIR,
    CONTROL_SOCKET,
    UPGRADE_BINARY,
    MAX_CONNECTIONS,
    DPD_INTERVAL,
    PSK_CHANGE_REAUTH,
    WORKERS,
    UNIQUE,
    COOKIE_THRESHOLD,
    COOKIE_THRESHOLD_IP,
    BLOCK_THRESHOLD_IP,
    HALF_OPEN_MAX,
    HALF_OPEN_TIMEOUT,
    DH_PER_SECOND_COOKIE,
    AUTH_FAILURES_BEFORE_BACKOFF,
    AUTH_BACKOFF_MAX,
    CHILD_SAS_PER_IKE_SA,
    MAX_IKE_MESSAGE,
    IKE_QUEUE,
    PSK_FILE,
    DNS,
    API_LISTEN,
    ACCESS_KEYS,
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    METRICS_LISTEN,
    EXAMPLE_SECRET,
    CLUSTER_ENDPOINTS,
    CLUSTER_TLS,
    CLUSTER_AUTH,
    CLUSTER_NODE_ID,
    CLUSTER_LEASE_TTL,
    CLUSTER_PREFIX,
    CLUSTER_ROUTE_HOOK,
];

//! Validation: raw model → validated model, with the API's error codes ([`codes`]).
//!
//! Every check reports the first violation of its field as a [`ConfigError`] naming the
//! field (the API parameter name, or the TOML key for file-only keys) and the offending
//! value, shown escaped and truncated by [`shown`]. [`Findings`] records each failed check
//! under the TOML key it concerns and validation goes on, so a file's errors are all
//! reported at once (`ipsec-server check`); the API answers with the first. Secret values are never shown: PSK and AccessKey
//! errors state only lengths and which rule failed.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::{NonZeroU16, NonZeroU32};
use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;
use rand::distributions::Alphanumeric;
use rand::{Rng, RngCore};

mod cluster;
pub(super) use cluster::cluster;
pub(crate) use cluster::node_id as cluster_node_id;

use super::model::{
    AccessKey, ApiConfig, GatewayConfig, IkeConfig, IpsecConfig, IpsecServerConfig, LimitsConfig,
    MetricsConfig,
};
use super::raw::{
    AccessKeyRaw, ApiRaw, GatewayRaw, IkeConfigRaw, IpsecConfigRaw, IpsecServerSpec, LimitsRaw,
    MetricsRaw,
};
use super::types::{AuthAlg, DhGroup, EncAlg};
use super::{codes, ConfigError, Finding, FindingKind};
use crate::ike::{Identity, UniquePolicy};
use crate::secret::SecretBytes;

/// Length of a generated PSK (seed: "随机生成一个16位的字符串").
pub const GENERATED_PSK_LEN: usize = 16;

/// What validation found: each check records its error under the TOML key it concerns and
/// validation goes on, so that `check` reports every error of a file at once; the API and
/// [`Config::from_raw`](super::Config::from_raw) take the first (the checks run in the order
/// the API documents its parameters). Each builder returns `None` exactly when one of its
/// checks recorded an error.
#[derive(Default)]
pub(super) struct Findings {
    /// Put before every key: `ipsec_server.` while a file's server spec is checked, empty
    /// for the API (whose parameters have no enclosing table).
    pub(super) prefix: &'static str,
    pub(super) errors: Vec<Finding>,
    pub(super) warnings: Vec<Finding>,
}

impl Findings {
    /// The value `check` gives for `key`, or `None` once its error is recorded; the
    /// warnings it pushes are filed under `key`.
    fn field<T>(
        &mut self,
        key: &str,
        check: impl FnOnce(&mut Vec<String>) -> Result<T, ConfigError>,
    ) -> Option<T> {
        self.record(key, false, check)
    }

    /// As [`Findings::field`]; with `host`, the rule depends on the host (its networks),
    /// not on the file alone, and the error is marked as a host condition.
    fn record<T>(
        &mut self,
        key: &str,
        host: bool,
        check: impl FnOnce(&mut Vec<String>) -> Result<T, ConfigError>,
    ) -> Option<T> {
        let mut warnings = Vec::new();
        let result = check(&mut warnings);
        let key = format!("{}{key}", self.prefix);
        for message in warnings {
            self.warnings
                .push(Finding::new(key.clone(), FindingKind::Warning(message)));
        }
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let kind = if host {
                    FindingKind::Host(e)
                } else {
                    FindingKind::Error(e)
                };
                self.errors.push(Finding::new(key, kind));
                None
            }
        }
    }

    fn warn(&mut self, key: &str, message: String) {
        let key = format!("{}{key}", self.prefix);
        self.warnings
            .push(Finding::new(key, FindingKind::Warning(message)));
    }

    /// The first error recorded, as the API reports it.
    pub(super) fn first_error(self) -> ConfigError {
        self.errors
            .into_iter()
            .find_map(Finding::into_error)
            .unwrap_or_else(|| {
                // Unreachable by construction (a builder returns `None` only after recording
                // an error); answer with a clear message rather than panic.
                ConfigError::new(codes::SYNTAX, "validation failed without naming an error")
            })
    }
}

/// All of `items` checked (each recorded), or `None` if any failed.
fn all<T>(items: Vec<Option<T>>) -> Option<Vec<T>> {
    items.into_iter().collect()
}

impl IpsecServerSpec {
    /// Validates a server spec from the file or the API. `host_networks` are the host's
    /// directly connected networks (see [`super::host_networks`]), which ClientIpPool must
    /// not overlap. Returns the server and the warnings to log (legacy algorithms, example
    /// secrets, loose file permissions), or the first error. A missing PSK is generated from
    /// `rng` (a CSPRNG in production).
    pub fn validate(
        &self,
        host_networks: &[Ipv4Net],
        rng: &mut dyn RngCore,
    ) -> Result<(IpsecServerConfig, Vec<String>), ConfigError> {
        let mut f = Findings::default();
        match self.check(&mut f, host_networks, rng) {
            Some(server) if f.errors.is_empty() => {
                let warnings = f.warnings.into_iter().map(Finding::into_message).collect();
                Ok((server, warnings))
            }
            _ => Err(f.first_error()),
        }
    }

    /// Checks every field, in the order the API documents its parameters, recording each
    /// failure under its key (relative to `f.prefix`).
    pub(super) fn check(
        &self,
        f: &mut Findings,
        host_networks: &[Ipv4Net],
        rng: &mut dyn RngCore,
    ) -> Option<IpsecServerConfig> {
        let local_subnets = f.field("local_subnet", |_| local_subnets(&self.local_subnet));
        let local = local_subnets.as_deref().unwrap_or_default();
        let client_ip_pool = f
            .field("client_ip_pool", |_| {
                client_ip_pool(&self.client_ip_pool, local)
            })
            .and_then(|pool| {
                f.record("client_ip_pool", true, |_| {
                    pool_off_host(pool, host_networks)
                })
            });
        let name = f.field("ipsec_server_name", |_| {
            self.ipsec_server_name
                .as_deref()
                .map(server_name)
                .transpose()
        });
        let ike = ike_config(&self.ike_config, f);
        let ipsec = ipsec_config(&self.ipsec_config, f);
        let psk = self.psk(f, rng);
        let dns = all(self
            .dns
            .iter()
            .enumerate()
            .map(|(i, s)| f.field(&format!("dns[{i}]"), |_| dns_server(s)))
            .collect());
        // Every check has run and recorded its error: now stop at the first that failed.
        let (psk, psk_generated) = psk?;
        Some(IpsecServerConfig {
            name: name?,
            local_subnets: local_subnets?,
            client_ip_pool: client_ip_pool?,
            effect_immediately: self.effect_immediately,
            psk,
            psk_generated,
            psk_file: self.psk_file.clone(),
            dns: dns?,
            ike: ike?,
            ipsec: ipsec?,
        })
    }

    /// PskEnabled / Psk / psk_file → the PSK and whether it was generated.
    fn psk(&self, f: &mut Findings, rng: &mut dyn RngCore) -> Option<(SecretBytes, bool)> {
        if self.psk_enabled == Some(false) {
            return f.field("psk_enabled", |_| {
                Err(ConfigError::new(
                    codes::ILLEGAL_AUTH_METHOD,
                    "PskEnabled is false, which leaves no authentication method \
                     (PSK is the only one supported); set PskEnabled to true",
                ))
            });
        }
        let key = if self.psk_file.is_some() {
            "psk_file"
        } else {
            "psk"
        };
        f.field(key, |warnings| {
            let psk = match (&self.psk, &self.psk_file) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        codes::PSK_FILE,
                        "psk and psk_file are both set; set only one",
                    ))
                }
                (Some(psk), None) => psk.clone(),
                (None, Some(path)) => {
                    read_secret_file(path, codes::PSK_FILE, "psk_file", warnings)?
                }
                (None, None) => return Ok((generate_psk(rng), true)),
            };
            check_psk(&psk)?;
            if is_example_secret(&psk) {
                warnings.push(
                    "Psk is the example value of the shipped configuration; change it".into(),
                );
            }
            Ok((psk, false))
        })
    }
}

/// Splits the API's comma-separated LocalSubnet ("192.168.1.0/24,192.168.2.0/24") into
/// items, trimming spaces around each. Empty items are kept so that validation rejects them.
pub fn split_local_subnet(api_value: &str) -> Vec<String> {
    api_value.split(',').map(|s| s.trim().to_owned()).collect()
}

/// Parses and validates the API's comma-separated LocalSubnet.
/// Error: `IllegalParam.LocalSubnet`.
pub fn parse_local_subnet(api_value: &str) -> Result<Vec<Ipv4Net>, ConfigError> {
    local_subnets(&split_local_subnet(api_value))
}

/// A value for an error message: escaped (no control characters reach a log) and cut to
/// 64 characters. Never call it on a secret.
pub(super) fn shown(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}… ({} characters)", s.chars().count())
    }
}

pub(super) fn gateway(raw: &GatewayRaw, f: &mut Findings) -> Option<GatewayConfig> {
    let vpn_gateway_id = f.field("gateway.vpn_gateway_id", |_| {
        resource_id(&raw.vpn_gateway_id, codes::VPN_GATEWAY_ID, "vpn_gateway_id")
    });
    let region_id = f.field("gateway.region_id", |_| {
        resource_id(&raw.region_id, codes::REGION_ID, "region_id")
    });
    let listen_addrs = f.field("gateway.listen_addrs", |_| listen_addrs(&raw.listen_addrs));
    let ike_port = f.field("gateway.ike_port", |_| {
        port(raw.ike_port, codes::IKE_PORT, "ike_port")
    });
    let nat_t_port = f.field("gateway.nat_t_port", |_| {
        let nat_t_port = port(raw.nat_t_port, codes::NAT_T_PORT, "nat_t_port")?;
        if ike_port == Some(nat_t_port) {
            return Err(ConfigError::new(
                codes::NAT_T_PORT,
                format!(
                    "gateway.nat_t_port {nat_t_port} equals gateway.ike_port; they must differ"
                ),
            ));
        }
        Ok(nat_t_port)
    });
    let tun_name = f.field("gateway.tun_name", |_| tun_name(&raw.tun_name));
    let state_dir = f.field("gateway.state_dir", |_| {
        if raw.state_dir.is_absolute() {
            Ok(raw.state_dir.clone())
        } else {
            Err(ConfigError::new(
                codes::STATE_DIR,
                format!(
                    "gateway.state_dir {} is not an absolute path",
                    shown(&raw.state_dir.to_string_lossy())
                ),
            ))
        }
    });
    let control_socket = f.field("gateway.control_socket", |_| {
        control_socket(&raw.control_socket)
    });
    let max_connections = f.field("gateway.max_connections", |_| {
        in_range(
            raw.max_connections,
            1,
            100_000,
            codes::MAX_CONNECTIONS,
            "gateway.max_connections",
        )
        // `in_range` returned at least 1, so the value is nonzero.
        .map(|n| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
    });
    let dpd = f.field("gateway.dpd_interval", |_| {
        in_range(
            raw.dpd_interval,
            0,
            3600,
            codes::DPD_INTERVAL,
            "gateway.dpd_interval",
        )
    });
    let psk_change_reauth = f.field("gateway.psk_change_reauth", |_| {
        in_range(
            raw.psk_change_reauth,
            1,
            86400,
            codes::PSK_CHANGE_REAUTH,
            "gateway.psk_change_reauth",
        )
    });
    let workers = f.field("gateway.workers", |_| {
        in_range(raw.workers, 0, 1024, codes::WORKERS, "gateway.workers")
    });
    let unique = f.field("gateway.unique", |_| {
        UniquePolicy::from_name(&raw.unique).ok_or_else(|| {
            ConfigError::new(
                codes::UNIQUE,
                format!(
                    "gateway.unique {} is not one of same-address, never, replace",
                    shown(&raw.unique)
                ),
            )
        })
    });
    let upgrade_binary = f.field("gateway.upgrade_binary", |_| match &raw.upgrade_binary {
        Some(p) if !p.is_absolute() || p.as_os_str().is_empty() => Err(ConfigError::new(
            codes::UPGRADE_BINARY,
            format!(
                "gateway.upgrade_binary {} is not an absolute path",
                shown(&p.to_string_lossy())
            ),
        )),
        other => Ok(other.clone()),
    });
    let (dpd, psk_change_reauth, workers) = (dpd?, psk_change_reauth?, workers?);
    Some(GatewayConfig {
        vpn_gateway_id: vpn_gateway_id?,
        region_id: region_id?,
        listen_addrs: listen_addrs?,
        ike_port: ike_port?,
        nat_t_port: nat_t_port?,
        tun_name: tun_name?,
        state_dir: state_dir?,
        control_socket: control_socket?,
        ip_forward: raw.ip_forward,
        masquerade: raw.masquerade,
        max_connections: max_connections?,
        dpd_interval: (dpd > 0).then(|| Duration::from_secs(dpd.into())),
        psk_change_reauth: Duration::from_secs(psk_change_reauth.into()),
        workers: NonZeroU32::new(workers),
        unique: unique?,
        force_udp_encap: raw.force_udp_encap,
        upgrade_binary: upgrade_binary?,
    })
}

/// The largest count a `[limits]` key takes: far above any real gateway, low enough that no
/// table sized by it can exhaust memory by configuration alone.
const LIMIT_COUNT_MAX: u32 = 1_000_000;

/// `[limits]`: every count at least 1 (a limit cannot be switched off by setting it to 0),
/// each with an upper bound; durations in seconds. Warns about combinations that make one
/// limit shadow another.
pub(super) fn limits(raw: &LimitsRaw, f: &mut Findings) -> Option<LimitsConfig> {
    fn count(
        f: &mut Findings,
        v: i64,
        hi: u32,
        code: &'static str,
        key: &str,
    ) -> Option<NonZeroU32> {
        let key = format!("limits.{key}");
        // `in_range` returned at least 1, so the value is nonzero.
        f.field(&key, |_| {
            in_range(v, 1, hi, code, &key).map(|n| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
        })
    }
    fn secs(f: &mut Findings, v: i64, hi: u32, code: &'static str, key: &str) -> Option<Duration> {
        let key = format!("limits.{key}");
        f.field(&key, |_| {
            in_range(v, 1, hi, code, &key).map(|n| Duration::from_secs(n.into()))
        })
    }
    let max = LIMIT_COUNT_MAX;
    let cookie_threshold = count(
        f,
        raw.cookie_threshold,
        max,
        codes::COOKIE_THRESHOLD,
        "cookie_threshold",
    );
    let cookie_threshold_ip = count(
        f,
        raw.cookie_threshold_ip,
        max,
        codes::COOKIE_THRESHOLD_IP,
        "cookie_threshold_ip",
    );
    let block_threshold_ip = count(
        f,
        raw.block_threshold_ip,
        max,
        codes::BLOCK_THRESHOLD_IP,
        "block_threshold_ip",
    );
    let half_open_max = count(
        f,
        raw.half_open_max,
        max,
        codes::HALF_OPEN_MAX,
        "half_open_max",
    );
    let half_open_timeout = secs(
        f,
        raw.half_open_timeout,
        3600,
        codes::HALF_OPEN_TIMEOUT,
        "half_open_timeout",
    );
    let dh_per_second_cookie = count(
        f,
        raw.dh_per_second_cookie,
        max,
        codes::DH_PER_SECOND_COOKIE,
        "dh_per_second_cookie",
    );
    let auth_failures_before_backoff = count(
        f,
        raw.auth_failures_before_backoff,
        max,
        codes::AUTH_FAILURES_BEFORE_BACKOFF,
        "auth_failures_before_backoff",
    );
    let auth_backoff_max = secs(
        f,
        raw.auth_backoff_max,
        86_400,
        codes::AUTH_BACKOFF_MAX,
        "auth_backoff_max",
    );
    let child_sas_per_ike_sa = count(
        f,
        raw.child_sas_per_ike_sa,
        1024,
        codes::CHILD_SAS_PER_IKE_SA,
        "child_sas_per_ike_sa",
    );
    // RFC 7296 §2: every implementation must accept IKE messages of 1280 bytes.
    let max_ike_message = f.field("limits.max_ike_message", |_| {
        in_range(
            raw.max_ike_message,
            1280,
            u16::MAX.into(),
            codes::MAX_IKE_MESSAGE,
            "limits.max_ike_message",
        )
        .map(|n| u16::try_from(n).unwrap_or(u16::MAX))
    });
    let ike_queue = count(f, raw.ike_queue, 65_536, codes::IKE_QUEUE, "ike_queue");
    let cfg = LimitsConfig {
        cookie_threshold: cookie_threshold?,
        cookie_threshold_ip: cookie_threshold_ip?,
        block_threshold_ip: block_threshold_ip?,
        half_open_max: half_open_max?,
        half_open_timeout: half_open_timeout?,
        dh_per_second_cookie: dh_per_second_cookie?,
        auth_failures_before_backoff: auth_failures_before_backoff?,
        auth_backoff_max: auth_backoff_max?,
        child_sas_per_ike_sa: child_sas_per_ike_sa?,
        max_ike_message: max_ike_message?,
        ike_queue: ike_queue?,
    };
    if cfg.block_threshold_ip <= cfg.cookie_threshold_ip {
        f.warn(
            "limits.block_threshold_ip",
            format!(
                "limits.block_threshold_ip {} is not above limits.cookie_threshold_ip {}: an \
                 address is blocked before it is ever asked for a cookie",
                cfg.block_threshold_ip, cfg.cookie_threshold_ip
            ),
        );
    }
    if cfg.half_open_max <= cfg.cookie_threshold {
        f.warn(
            "limits.half_open_max",
            format!(
                "limits.half_open_max {} is not above limits.cookie_threshold {}: new IKE SAs \
                 are dropped before cookies are ever asked for",
                cfg.half_open_max, cfg.cookie_threshold
            ),
        );
    }
    Some(cfg)
}

/// A TCP listener's `IP:PORT` (nonzero port; IPv6 as `[addr]:port`), or `code` naming `key`.
fn listen_addr(value: &str, code: &'static str, key: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse()
        .ok()
        .filter(|a: &SocketAddr| a.port() != 0)
        .ok_or_else(|| {
            ConfigError::new(
                code,
                format!(
                    "{key} {} is not IP:PORT with a nonzero port (IPv6: [addr]:port)",
                    shown(value)
                ),
            )
        })
}

/// `[metrics]`: `listen` is IP:PORT with a nonzero port, not the API's; a non-loopback
/// address is warned about (plain HTTP without authentication; with `per_client` the
/// series name every client).
pub(super) fn metrics(
    raw: &MetricsRaw,
    api: Option<&ApiConfig>,
    f: &mut Findings,
) -> Option<MetricsConfig> {
    f.field("metrics.listen", |warnings| {
        metrics_listen(raw, api, warnings)
    })
}

fn metrics_listen(
    raw: &MetricsRaw,
    api: Option<&ApiConfig>,
    warnings: &mut Vec<String>,
) -> Result<MetricsConfig, ConfigError> {
    let listen = listen_addr(&raw.listen, codes::METRICS_LISTEN, "metrics.listen")?;
    if api.is_some_and(|a| {
        a.listen().port() == listen.port()
            && (a.listen().ip() == listen.ip()
                || a.listen().ip().is_unspecified()
                || listen.ip().is_unspecified())
    }) {
        return Err(ConfigError::new(
            codes::METRICS_LISTEN,
            format!("metrics.listen {listen} is the control API's listener (api.listen)"),
        ));
    }
    if !listen.ip().is_loopback() {
        warnings.push(format!(
            "metrics.listen {listen} is not a loopback address: the metrics are plain HTTP \
             without authentication{}; put them behind a firewall",
            if raw.per_client {
                " and, with per_client, name every client"
            } else {
                ""
            }
        ));
    }
    Ok(MetricsConfig {
        listen,
        per_client: raw.per_client,
    })
}

pub(super) fn api(raw: &ApiRaw, f: &mut Findings) -> Option<ApiConfig> {
    let listen = f.field("api.listen", |warnings| {
        let listen = listen_addr(&raw.listen, codes::API_LISTEN, "api.listen")?;
        if !listen.ip().is_loopback() {
            warnings.push(format!(
                "api.listen {listen} is not a loopback address: the API is plain HTTP, \
                 put it behind TLS or a firewall"
            ));
        }
        Ok(listen)
    });
    let some_keys = f.field("api.access_keys", |_| {
        if raw.access_keys.is_empty() {
            return Err(ConfigError::new(
                codes::ACCESS_KEYS,
                "[api] needs at least one [[api.access_keys]]: every request must be signed",
            ));
        }
        Ok(())
    });
    let mut seen = HashSet::new();
    let mut access_keys = Vec::with_capacity(raw.access_keys.len());
    for (i, key) in raw.access_keys.iter().enumerate() {
        let id = &key.access_key_id;
        let id_ok = f.field(&format!("api.access_keys[{i}].access_key_id"), |_| {
            let ok = (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(ConfigError::new(
                    codes::ACCESS_KEY_ID,
                    format!(
                        "access_key_id {} must be 1..=128 printable ASCII characters without \
                         spaces",
                        shown(id)
                    ),
                ));
            }
            if !seen.insert(id.as_str()) {
                return Err(ConfigError::new(
                    codes::ACCESS_KEY_ID,
                    format!("access_key_id {} appears more than once", shown(id)),
                ));
            }
            Ok(())
        });
        let secret_key = if key.access_key_secret_file.is_some() {
            "access_key_secret_file"
        } else {
            "access_key_secret"
        };
        let secret = f.field(&format!("api.access_keys[{i}].{secret_key}"), |warnings| {
            access_key_secret(key, warnings)
        });
        access_keys.push(id_ok.and(secret).map(|secret| AccessKey {
            id: id.clone(),
            secret,
        }));
    }
    some_keys?;
    Some(ApiConfig {
        listen: listen?,
        access_keys: all(access_keys)?,
    })
}

/// The secret of one `[[api.access_keys]]`, from the file or from the file it names.
fn access_key_secret(
    key: &AccessKeyRaw,
    warnings: &mut Vec<String>,
) -> Result<SecretBytes, ConfigError> {
    let id = &key.access_key_id;
    let secret = match (&key.access_key_secret, &key.access_key_secret_file) {
        (Some(s), None) => s.clone(),
        (None, Some(path)) => read_secret_file(
            path,
            codes::ACCESS_KEY_SECRET,
            "access_key_secret_file",
            warnings,
        )?,
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                codes::ACCESS_KEY_SECRET,
                format!(
                    "access key {}: access_key_secret and access_key_secret_file are both \
                     set; set only one",
                    shown(id)
                ),
            ))
        }
        (None, None) => {
            return Err(ConfigError::new(
                codes::ACCESS_KEY_SECRET,
                format!(
                    "access key {}: set access_key_secret or access_key_secret_file",
                    shown(id)
                ),
            ))
        }
    };
    let secret_ok =
        (1..=256).contains(&secret.len()) && secret.expose().iter().all(|b| b.is_ascii_graphic());
    if !secret_ok {
        return Err(ConfigError::new(
            codes::ACCESS_KEY_SECRET,
            format!(
                "access key {}: the secret ({} bytes, value not shown) must be 1..=256 \
                 printable ASCII characters without spaces",
                shown(id),
                secret.len()
            ),
        ));
    }
    if is_example_secret(&secret) {
        warnings.push(format!(
            "access key {}: the secret is the example value of the shipped configuration; \
             change it",
            shown(id)
        ));
    }
    Ok(secret)
}

/// Placeholder secrets of docs/DESIGN.md §1b and of earlier `configs/ipsec-server.toml`s.
const EXAMPLE_SECRETS: [&[u8]; 2] = [b"change-me-please", b"change-me"];

fn is_example_secret(secret: &SecretBytes) -> bool {
    EXAMPLE_SECRETS.iter().any(|ex| secret.ct_eq(ex))
}

/// A published example secret is a warning only while everything listens on loopback (a
/// local trial); once any listen address (`gateway.listen_addrs`, `api.listen`) is not
/// loopback it is an open door with a published key, refused with
/// [`codes::EXAMPLE_SECRET`] naming the key. `psk_key` is how the file names the PSK
/// (`ipsec_server.psk` or `ipsec_server.psk_file`).
pub(super) fn refuse_exposed_example_secrets(
    f: &mut Findings,
    gateway: &GatewayConfig,
    server: Option<(&IpsecServerConfig, &str)>,
    api: Option<&ApiConfig>,
) {
    let exposed = gateway
        .listen_addrs
        .iter()
        .find(|a| !a.is_loopback())
        .map(|a| format!("gateway.listen_addrs has {a}"))
        .or_else(|| {
            api.filter(|a| !a.listen.ip().is_loopback())
                .map(|a| format!("api.listen is {}", a.listen))
        });
    let Some(exposed) = exposed else {
        return;
    };
    let mut refuse = |key: &str, what: String| {
        f.field(key, |_| -> Result<(), _> {
            Err(ConfigError::new(
                codes::EXAMPLE_SECRET,
                format!(
                    "{what} is the published example value and {exposed}, which is not \
                     loopback: anyone could use it; set a secret of your own"
                ),
            ))
        });
    };
    if let Some((server, psk_key)) = server {
        if !server.psk_generated && is_example_secret(&server.psk) {
            refuse(
                psk_key,
                format!("{psk_key} (omit psk to have one generated and kept in state_dir)"),
            );
        }
    }
    for (i, key) in api.map_or(&[][..], |a| &a.access_keys).iter().enumerate() {
        if is_example_secret(&key.secret) {
            refuse(
                &format!("api.access_keys[{i}]"),
                format!(
                    "api.access_keys[{i}] (access_key_id {}): the secret",
                    shown(&key.id)
                ),
            );
        }
    }
}

/// LocalSubnet: one or more canonical IPv4 CIDRs, no duplicates, none inside a reserved
/// range. A CIDR with host bits set (`192.168.0.1/24`) is rejected as the API does, with
/// the canonical form suggested.
fn local_subnets(items: &[String]) -> Result<Vec<Ipv4Net>, ConfigError> {
    let bad = |msg: String| ConfigError::new(codes::ILLEGAL_LOCAL_SUBNET, msg);
    if items.is_empty() {
        return Err(bad(
            "LocalSubnet is empty; give at least one IPv4 CIDR".into()
        ));
    }
    let mut nets: Vec<Ipv4Net> = Vec::with_capacity(items.len());
    for item in items {
        let net = parse_cidr(item).map_err(|e| bad(format!("LocalSubnet {}: {e}", shown(item))))?;
        if let Some(range) = reserved(net) {
            return Err(bad(format!("LocalSubnet {net} lies in the {range}")));
        }
        if nets.contains(&net) {
            return Err(bad(format!("LocalSubnet {net} is listed twice")));
        }
        nets.push(net);
    }
    Ok(nets)
}

/// ClientIpPool: canonical CIDR, prefix 16..=29, not reserved, disjoint from LocalSubnet
/// (and, checked apart as it depends on the host, [`pool_off_host`]).
fn client_ip_pool(text: &str, local: &[Ipv4Net]) -> Result<Ipv4Net, ConfigError> {
    let pool = parse_cidr(text).map_err(|e| {
        ConfigError::new(
            codes::CLIENT_IP_POOL_SUBNET_INVALID,
            format!("ClientIpPool {}: {e}", shown(text)),
        )
    })?;
    if !(16..=29).contains(&pool.prefix_len()) {
        return Err(ConfigError::new(
            codes::CLIENT_IP_POOL_NETMASK_INVALID,
            format!(
                "ClientIpPool {pool}: the prefix length must be between 16 and 29, not {}",
                pool.prefix_len()
            ),
        ));
    }
    // Link-local addresses (RFC 3927) are not routed, so clients could not use them.
    let range = reserved(pool).or_else(|| {
        within(
            pool,
            [169, 254, 0, 0],
            16,
            "link-local range 169.254.0.0/16",
        )
    });
    if let Some(range) = range {
        return Err(ConfigError::new(
            codes::CLIENT_IP_POOL_SUBNET_INVALID,
            format!("ClientIpPool {pool} lies in the {range}"),
        ));
    }
    if let Some(net) = local.iter().find(|n| overlaps(**n, pool)) {
        return Err(ConfigError::new(
            codes::CLIENT_IP_POOL_CONFLICT,
            format!("ClientIpPool {pool} overlaps LocalSubnet {net}"),
        ));
    }
    Ok(pool)
}

/// ClientIpPool is disjoint from the host's directly connected networks.
fn pool_off_host(pool: Ipv4Net, host_networks: &[Ipv4Net]) -> Result<Ipv4Net, ConfigError> {
    if let Some(net) = host_networks.iter().find(|n| overlaps(n.trunc(), pool)) {
        return Err(ConfigError::new(
            codes::CLIENT_IP_POOL_CONFLICT,
            format!(
                "ClientIpPool {pool} overlaps {}, a network directly connected to this host",
                net.trunc()
            ),
        ));
    }
    Ok(pool)
}

fn server_name(name: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| {
        ConfigError::new(
            codes::ILLEGAL_NAME,
            format!("IpSecServerName {} {why}", shown(name)),
        )
    };
    let len = name.chars().count();
    if !(1..=100).contains(&len) {
        return Err(bad("must be 1 to 100 characters long"));
    }
    if name.starts_with("http://") || name.starts_with("https://") {
        return Err(bad("must not start with http:// or https://"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    Ok(name.to_owned())
}

fn ike_config(raw: &IkeConfigRaw, f: &mut Findings) -> Option<IkeConfig> {
    let version = f.field("ike_config.ike_version", |_| {
        match raw.ike_version.as_deref() {
            None | Some("ikev2") => Ok(()),
            Some("ikev1") => Err(ConfigError::new(
                codes::UNSUPPORTED_IKE_VERSION,
                "IkeVersion \"ikev1\" is not supported: this server implements IKEv2 only \
                 (RFC 7296); use \"ikev2\"",
            )),
            Some(v) => Err(ConfigError::new(
                codes::ILLEGAL_IKE_VERSION,
                format!("IkeVersion {} is not one of ikev1, ikev2", shown(v)),
            )),
        }
    });
    let mode = f.field("ike_config.ike_mode", |_| match raw.ike_mode.as_deref() {
        None | Some("main") => Ok(()),
        Some("aggressive") => Err(ConfigError::new(
            codes::UNSUPPORTED_IKE_MODE,
            "IkeMode \"aggressive\" is not supported: aggressive mode exists only in IKEv1; \
             IKEv2 has a single exchange sequence (RFC 7296 §1.2), use \"main\"",
        )),
        Some(v) => Err(ConfigError::new(
            codes::ILLEGAL_IKE_MODE,
            format!("IkeMode {} is not one of main, aggressive", shown(v)),
        )),
    });
    let (enc, auth) = algorithms(
        f,
        Sa::Ike,
        raw.ike_enc_alg.as_deref(),
        raw.ike_auth_alg.as_deref(),
    );
    let dh_group = f.field("ike_config.ike_pfs", |w| {
        let group = match raw.ike_pfs.as_deref() {
            None => DhGroup::Group2,
            Some(v) => DhGroup::from_api_name(v).ok_or_else(|| {
                ConfigError::new(
                    codes::ILLEGAL_IKE_PFS,
                    format!(
                        "IkePfs {} is not one of {} (the IKE SA always uses DH)",
                        shown(v),
                        names(DhGroup::ALL.map(DhGroup::api_name))
                    ),
                )
            })?,
        };
        legacy(w, "IkePfs", group.api_name(), group.legacy_reason());
        Ok(group)
    });
    let lifetime = f.field("ike_config.ike_lifetime", |_| {
        lifetime(raw.ike_lifetime, codes::ILLEGAL_IKE_LIFETIME, "IkeLifetime")
    });
    let local_id = f.field("ike_config.local_id", |_| {
        identity(raw.local_id.as_deref(), codes::ILLEGAL_LOCAL_ID, "LocalId")
    });
    let remote_id = f.field("ike_config.remote_id", |_| {
        identity(
            raw.remote_id.as_deref(),
            codes::ILLEGAL_REMOTE_ID,
            "RemoteId",
        )
    });
    version?;
    mode?;
    Some(IkeConfig {
        enc: enc?,
        auth: auth?,
        dh_group: dh_group?,
        lifetime: lifetime?,
        local_id: local_id?,
        remote_id: remote_id?,
    })
}

fn ipsec_config(raw: &IpsecConfigRaw, f: &mut Findings) -> Option<IpsecConfig> {
    let (enc, auth) = algorithms(
        f,
        Sa::Ipsec,
        raw.ipsec_enc_alg.as_deref(),
        raw.ipsec_auth_alg.as_deref(),
    );
    let pfs = f.field("ipsec_config.ipsec_pfs", |w| {
        let pfs = match raw.ipsec_pfs.as_deref() {
            None => Some(DhGroup::Group2),
            Some("disabled") => None,
            Some(v) => Some(DhGroup::from_api_name(v).ok_or_else(|| {
                ConfigError::new(
                    codes::UNSUPPORTED_IPSEC_PFS,
                    format!(
                        "IpsecPfs {} is not one of {}, disabled",
                        shown(v),
                        names(DhGroup::ALL.map(DhGroup::api_name))
                    ),
                )
            })?),
        };
        if let Some(g) = pfs {
            legacy(w, "IpsecPfs", g.api_name(), g.legacy_reason());
        }
        Ok(pfs)
    });
    let lifetime = f.field("ipsec_config.ipsec_lifetime", |_| {
        lifetime(
            raw.ipsec_lifetime,
            codes::ILLEGAL_IPSEC_LIFETIME,
            "IpsecLifetime",
        )
    });
    Some(IpsecConfig {
        enc: enc?,
        auth: auth?,
        pfs: pfs?,
        lifetime: lifetime?,
    })
}

/// IkeConfig or IpsecConfig, whose algorithm keys differ only in prefix and error code.
#[derive(Clone, Copy)]
enum Sa {
    Ike,
    Ipsec,
}

/// The encryption and integrity algorithms of IkeConfig or IpsecConfig, each checked and
/// recorded under its key.
fn algorithms(
    f: &mut Findings,
    sa: Sa,
    enc: Option<&str>,
    auth: Option<&str>,
) -> (Option<EncAlg>, Option<AuthAlg>) {
    let (key, param, enc_code, auth_code) = match sa {
        Sa::Ike => (
            "ike",
            "Ike",
            codes::ILLEGAL_IKE_ENC_ALG,
            codes::ILLEGAL_IKE_AUTH_ALG,
        ),
        Sa::Ipsec => (
            "ipsec",
            "Ipsec",
            codes::ILLEGAL_IPSEC_ENC_ALG,
            codes::ILLEGAL_IPSEC_AUTH_ALG,
        ),
    };
    let enc = f.field(&format!("{key}_config.{key}_enc_alg"), |w| {
        enc_alg(enc, enc_code, &format!("{param}EncAlg"), w)
    });
    let auth = f.field(&format!("{key}_config.{key}_auth_alg"), |w| {
        auth_alg(auth, auth_code, &format!("{param}AuthAlg"), w)
    });
    (enc, auth)
}

fn enc_alg(
    v: Option<&str>,
    code: &'static str,
    field: &str,
    warnings: &mut Vec<String>,
) -> Result<EncAlg, ConfigError> {
    let alg = match v {
        None => EncAlg::Aes128,
        Some(v) => EncAlg::from_api_name(v).ok_or_else(|| {
            ConfigError::new(
                code,
                format!(
                    "{field} {} is not one of {}",
                    shown(v),
                    names(EncAlg::ALL.map(EncAlg::api_name))
                ),
            )
        })?,
    };
    legacy(warnings, field, alg.api_name(), alg.legacy_reason());
    Ok(alg)
}

fn auth_alg(
    v: Option<&str>,
    code: &'static str,
    field: &str,
    warnings: &mut Vec<String>,
) -> Result<AuthAlg, ConfigError> {
    let alg = match v {
        None => AuthAlg::Sha1,
        Some(v) => AuthAlg::from_api_name(v).ok_or_else(|| {
            ConfigError::new(
                code,
                format!(
                    "{field} {} is not one of {}",
                    shown(v),
                    names(AuthAlg::ALL.map(AuthAlg::api_name))
                ),
            )
        })?,
    };
    legacy(warnings, field, alg.api_name(), alg.legacy_reason());
    Ok(alg)
}

fn legacy(warnings: &mut Vec<String>, field: &str, value: &str, reason: Option<&str>) {
    if let Some(reason) = reason {
        warnings.push(format!("{field} {value} is a legacy algorithm: {reason}"));
    }
}

fn names<const N: usize>(names: [&str; N]) -> String {
    names.join(", ")
}

/// IkeLifetime / IpsecLifetime: 0..=86400 seconds, default 86400.
fn lifetime(v: Option<i64>, code: &'static str, field: &str) -> Result<Duration, ConfigError> {
    let secs = match v {
        None => super::raw::defaults::LIFETIME_SECS,
        Some(v) => in_range(v, 0, 86_400, code, field)?,
    };
    Ok(Duration::from_secs(secs.into()))
}

/// LocalId / RemoteId: absent or empty = none; at most 100 characters.
fn identity(
    v: Option<&str>,
    code: &'static str,
    field: &str,
) -> Result<Option<Identity>, ConfigError> {
    let Some(text) = v.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > 100 {
        return Err(ConfigError::new(
            code,
            format!("{field} {} is longer than 100 characters", shown(text)),
        ));
    }
    Identity::parse(text)
        .map(Some)
        .map_err(|why| ConfigError::new(code, format!("{field} {}: {why}", shown(text))))
}

fn dns_server(text: &str) -> Result<Ipv4Addr, ConfigError> {
    let addr: Ipv4Addr = text.parse().map_err(|_| {
        ConfigError::new(
            codes::DNS,
            format!("dns {} is not an IPv4 address", shown(text)),
        )
    })?;
    if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
        return Err(ConfigError::new(
            codes::DNS,
            format!("dns {addr} is not a unicast address"),
        ));
    }
    Ok(addr)
}

/// PSK: 1..=100 bytes of printable ASCII (0x20..=0x7e). The message never shows the value.
pub(super) fn check_psk(psk: &SecretBytes) -> Result<(), ConfigError> {
    if !(1..=100).contains(&psk.len()) {
        return Err(ConfigError::new(
            codes::ILLEGAL_PSK,
            format!(
                "Psk must be 1 to 100 characters long, not {} (value not shown)",
                psk.len()
            ),
        ));
    }
    if !psk.expose().iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(ConfigError::new(
            codes::ILLEGAL_PSK,
            "Psk must contain only printable ASCII characters (value not shown)",
        ));
    }
    Ok(())
}

/// 16 random alphanumerics, as the API generates when Psk is omitted.
pub(super) fn generate_psk(rng: &mut dyn RngCore) -> SecretBytes {
    let bytes: Vec<u8> = (0..GENERATED_PSK_LEN)
        .map(|_| rng.sample(Alphanumeric))
        .collect();
    SecretBytes::new(bytes)
}

/// Reads a secret from an absolute path, dropping one trailing newline (`\n` or `\r\n`).
/// Warns when the file is accessible to group or others.
fn read_secret_file(
    path: &Path,
    code: &'static str,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<SecretBytes, ConfigError> {
    let where_ = shown(&path.to_string_lossy());
    if !path.is_absolute() {
        return Err(ConfigError::new(
            code,
            format!("{key} {where_} is not an absolute path"),
        ));
    }
    let mut bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(code, format!("{key} {where_}: cannot read: {e}")))?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    let secret = SecretBytes::new(bytes);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.mode() & 0o077 != 0 {
                warnings.push(format!(
                    "{key} {where_} is accessible to group or others (mode {:o}); chmod 600 it",
                    meta.mode() & 0o7777
                ));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = warnings;
    Ok(secret)
}

/// Why a CIDR string is not a canonical IPv4 network.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum CidrError {
    Syntax,
    HostBits(Ipv4Net),
}

impl std::fmt::Display for CidrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CidrError::Syntax => f.write_str("not an IPv4 CIDR such as 192.168.0.0/24"),
            CidrError::HostBits(n) => write!(f, "host bits are set (the network is {n})"),
        }
    }
}

/// Strict `a.b.c.d/len`: dotted quad without leading zeros (std's parser), decimal prefix
/// 0..=32 without leading zeros, no host bits. Stricter than `Ipv4Net::from_str`, which
/// accepts `010.0.0.0/08` and host bits.
pub(super) fn parse_cidr(text: &str) -> Result<Ipv4Net, CidrError> {
    let (addr, len) = text.split_once('/').ok_or(CidrError::Syntax)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| CidrError::Syntax)?;
    let digits_ok = matches!(len.len(), 1 | 2)
        && len.bytes().all(|b| b.is_ascii_digit())
        && !(len.len() == 2 && len.starts_with('0'));
    if !digits_ok {
        return Err(CidrError::Syntax);
    }
    let len: u8 = len.parse().map_err(|_| CidrError::Syntax)?;
    let net = Ipv4Net::new(addr, len).map_err(|_| CidrError::Syntax)?;
    if net.trunc() != net {
        return Err(CidrError::HostBits(net.trunc()));
    }
    Ok(net)
}

/// The special-purpose range (RFC 6890) `net` lies in, if it cannot be a unicast subnet.
pub(super) fn reserved(net: Ipv4Net) -> Option<&'static str> {
    const RANGES: [([u8; 4], u8, &str); 4] = [
        ([0, 0, 0, 0], 8, "\"this network\" range 0.0.0.0/8"),
        ([127, 0, 0, 0], 8, "loopback range 127.0.0.0/8"),
        ([224, 0, 0, 0], 4, "multicast range 224.0.0.0/4"),
        ([240, 0, 0, 0], 4, "reserved range 240.0.0.0/4"),
    ];
    RANGES
        .iter()
        .find_map(|&(addr, len, name)| within(net, addr, len, name))
}

/// `Some(name)` if `net` lies inside `addr/len`.
fn within(net: Ipv4Net, addr: [u8; 4], len: u8, name: &'static str) -> Option<&'static str> {
    let range = Ipv4Net::new(Ipv4Addr::from(addr), len).ok()?;
    range.contains(&net).then_some(name)
}

pub(super) fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// `vpn_gateway_id`, `region_id`: 1..=64 characters of `[A-Za-z0-9_-]`.
fn resource_id(v: &str, code: &'static str, key: &str) -> Result<String, ConfigError> {
    let ok = (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(ConfigError::new(
            code,
            format!(
                "gateway.{key} {} must be 1 to 64 characters of A-Z a-z 0-9 - _",
                shown(v)
            ),
        ));
    }
    Ok(v.to_owned())
}

/// `gateway.control_socket`: an absolute path naming a file (no `..`, not a directory
/// path ending in `/`) that fits in a Unix socket address.
fn control_socket(path: &std::path::Path) -> Result<std::path::PathBuf, ConfigError> {
    use std::os::unix::ffi::OsStrExt;
    use std::path::Component;
    let text = path.as_os_str();
    let bad = |why: &str| {
        ConfigError::new(
            codes::CONTROL_SOCKET,
            format!(
                "gateway.control_socket {} {why}",
                shown(&text.to_string_lossy())
            ),
        )
    };
    if !path.is_absolute() {
        return Err(bad("is not an absolute path"));
    }
    let bytes = text.as_bytes();
    if bytes.ends_with(b"/") || path.components().any(|c| c == Component::ParentDir) {
        return Err(bad("does not name a file (no trailing `/`, no `..`)"));
    }
    if !matches!(path.components().next_back(), Some(Component::Normal(_))) {
        return Err(bad("does not name a file"));
    }
    if bytes.len() > super::model::MAX_SOCKET_PATH || bytes.contains(&0) {
        return Err(bad(&format!(
            "is longer than a Unix socket path may be ({} bytes at most) or holds a NUL",
            super::model::MAX_SOCKET_PATH
        )));
    }
    Ok(path.to_path_buf())
}

fn listen_addrs(items: &[String]) -> Result<Vec<IpAddr>, ConfigError> {
    let bad = |msg: String| ConfigError::new(codes::LISTEN_ADDRS, msg);
    if items.is_empty() {
        return Err(bad(
            "gateway.listen_addrs is empty; use [\"0.0.0.0\"] for all IPv4 addresses".into(),
        ));
    }
    let mut addrs: Vec<IpAddr> = Vec::with_capacity(items.len());
    for item in items {
        let addr: IpAddr = item.parse().map_err(|_| {
            bad(format!(
                "gateway.listen_addrs {} is not an IP address",
                shown(item)
            ))
        })?;
        if addr.is_multicast() {
            return Err(bad(format!(
                "gateway.listen_addrs {addr} is a multicast address"
            )));
        }
        // Outer IPv6 is refused rather than half-served: the gateway is built and tested
        // end to end over IPv4 only (README, Configuration).
        if addr.is_ipv6() {
            return Err(bad(format!(
                "gateway.listen_addrs {addr} is an IPv6 address; only IPv4 addresses are \
                 supported (use \"0.0.0.0\" or IPv4 addresses of this host)"
            )));
        }
        if addrs.contains(&addr) {
            return Err(bad(format!("gateway.listen_addrs lists {addr} twice")));
        }
        addrs.push(addr);
    }
    // A wildcard already binds every address of its family; a specific one beside it would
    // fail to bind (EADDRINUSE).
    for wild in addrs.iter().filter(|a| a.is_unspecified()) {
        if let Some(other) = addrs
            .iter()
            .find(|a| !a.is_unspecified() && a.is_ipv4() == wild.is_ipv4())
        {
            return Err(bad(format!(
                "gateway.listen_addrs has both {wild} and {other}; {wild} already covers {other}"
            )));
        }
    }
    Ok(addrs)
}

fn port(v: i64, code: &'static str, key: &str) -> Result<NonZeroU16, ConfigError> {
    u16::try_from(v)
        .ok()
        .and_then(NonZeroU16::new)
        .ok_or_else(|| ConfigError::new(code, format!("gateway.{key} {v} is outside 1..=65535")))
}

fn tun_name(v: &str) -> Result<String, ConfigError> {
    // What `run` needs: a Linux interface name (IFNAMSIZ is 16 including the NUL) that is
    // also the suffix of the daemon's nftables tables (`io::net`, [A-Za-z0-9_]).
    let ok =
        (1..=15).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        return Err(ConfigError::new(
            codes::TUN_NAME,
            format!(
                "gateway.tun_name {} must be 1 to 15 characters of A-Z a-z 0-9 _ (it names \
                 the interface and the daemon's nftables tables)",
                shown(v)
            ),
        ));
    }
    Ok(v.to_owned())
}

/// `v` in `lo..=hi` (both within u32), as u32.
fn in_range(v: i64, lo: u32, hi: u32, code: &'static str, field: &str) -> Result<u32, ConfigError> {
    u32::try_from(v)
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| ConfigError::new(code, format!("{field} {v} is outside {lo}..={hi}")))
}

//! Configuration: the TOML file (docs/DESIGN.md §1b) and the `CreateIpsecServer` API parameters
//! (docs/DESIGN.md §1, `docs/seed/CreateIpsecServer.zh.txt`), validated into a [`Config`].
//!
//! "Parse, don't validate": serde reads the raw model ([`ConfigRaw`], [`IpsecServerSpec`],
//! ...; strings and options exactly as written). Validation turns it into the validated
//! model ([`Config`], [`IpsecServerConfig`], ...), whose fields are private and whose types
//! make invalid states unrepresentable: [`Ipv4Net`] for subnets, enums for algorithms,
//! [`Duration`](std::time::Duration) for lifetimes, [`SecretBytes`](crate::secret::SecretBytes)
//! for secrets. After this
//! module no code re-checks a CIDR or an algorithm name. [`IpsecServerSpec::validate`] is
//! the one validation of a server, shared by the file and the HTTP API.
//!
//! Invariants of a validated [`Config`] (each accessor documents its own):
//! - LocalSubnet is non-empty, canonical (host bits are *rejected*, as the API does, not
//!   silently masked), duplicate-free; ClientIpPool is canonical, has a prefix length in
//!   16..=29, and overlaps neither LocalSubnet nor any host network given to validation.
//! - IkeVersion is IKEv2 and IkeMode `main` (the only values we accept), so they are implied.
//! - Every `[limits]` count is at least 1 and bounded; `max_ike_message` is 1280..=65535.
//! - Lifetimes are 0..=86400 s; ports are nonzero and distinct; `tun_name` is a valid Linux
//!   interface name; file paths are absolute.
//! - At least one of `[ipsec_server]` and `[api]` is present.
//! - Secrets (PSK, AccessKey secrets) live only in `SecretBytes`: no [`ConfigError`],
//!   warning or `Debug` output contains one, and TOML syntax errors carry a position but no
//!   source snippet.
//! - No input makes validation panic.
//! - A published example secret (`change-me-please`, `change-me`) is accepted, with a warning,
//!   only while every listen address (`gateway.listen_addrs`, `api.listen`) is loopback;
//!   otherwise it is refused (`InvalidConfig.ExampleSecret`, naming the key).
//!
//! Legacy algorithms (des, 3des, md5, group1) are accepted, with a warning in
//! [`Config::warnings`]. Error codes, seed-documented or invented, are listed in [`codes`].

pub mod codes;
mod model;
mod raw;
mod types;
mod validate;

use std::path::Path;

use ipnet::Ipv4Net;
use rand::RngCore;
use zeroize::Zeroizing;

pub use crate::ike::{Identity, UniquePolicy};
pub use model::{
    AccessKey, ApiConfig, GatewayConfig, IkeConfig, IpsecConfig, IpsecServerConfig, LimitsConfig,
    MetricsConfig, MAX_SOCKET_PATH,
};
/// Where the control socket is when the config file does not say.
pub use raw::defaults::CONTROL_SOCKET as DEFAULT_CONTROL_SOCKET;

/// Where `run`, `check` and the other commands look for the configuration without `--config`
/// (the package installs it there).
pub const DEFAULT_CONFIG: &str = "/etc/ipsec-server/ipsec-server.toml";
pub use raw::{
    AccessKeyRaw, ApiRaw, ConfigRaw, GatewayRaw, IkeConfigRaw, IpsecConfigRaw, IpsecServerSpec,
    LimitsRaw, MetricsRaw,
};
pub use types::{AuthAlg, DhGroup, EncAlg};
pub use validate::{parse_local_subnet, split_local_subnet, GENERATED_PSK_LEN};

/// A validation failure: an API-style error code (see [`codes`]) and a message naming the
/// field and the bad value (never a secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ConfigError {
    pub code: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The daemon's validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    gateway: GatewayConfig,
    limits: LimitsConfig,
    ipsec_server: Option<IpsecServerConfig>,
    api: Option<ApiConfig>,
    metrics: Option<MetricsConfig>,
    warnings: Vec<String>,
}

/// Reads and validates a config file, checking ClientIpPool against the host's networks
/// except those of the configured TUN device: `host_networks(tun_name)` gives them (the
/// daemon passes `io::host::host_networks_excluding`, tests a fixed list). Errors:
/// `InvalidConfig.Io` when the file cannot be read, `InvalidConfig.Syntax` for TOML errors,
/// then any validation code. A missing PSK is generated from `rng` (the caller's CSPRNG).
pub fn load(
    path: &Path,
    host_networks: &dyn Fn(&str) -> Vec<Ipv4Net>,
    rng: &mut dyn RngCore,
) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(codes::IO, format!("cannot read {}: {e}", path.display())))?;
    // The text may hold secrets: wipe it once parsed.
    let text = Zeroizing::new(text);
    let raw = ConfigRaw::from_toml_str(&text)?;
    let host = host_networks(&raw.gateway.tun_name);
    Config::from_raw(&raw, &host, rng)
}

impl Config {
    /// Parses and validates TOML text against the given host networks (tests pass explicit
    /// lists; the daemon uses [`load`]).
    pub fn from_toml_str(
        text: &str,
        host_networks: &[Ipv4Net],
        rng: &mut dyn RngCore,
    ) -> Result<Self, ConfigError> {
        Self::from_raw(&ConfigRaw::from_toml_str(text)?, host_networks, rng)
    }

    /// Validates a raw model; a missing PSK is generated from `rng` (the caller's CSPRNG, or
    /// a seeded generator in tests: this layer reads no OS randomness itself).
    pub fn from_raw(
        raw: &ConfigRaw,
        host_networks: &[Ipv4Net],
        rng: &mut dyn RngCore,
    ) -> Result<Self, ConfigError> {
        let gateway = validate::gateway(&raw.gateway)?;
        let mut warnings = Vec::new();
        let limits = validate::limits(&raw.limits, &mut warnings)?;
        let ipsec_server = match &raw.ipsec_server {
            Some(spec) => {
                let (server, w) = spec.validate(host_networks, rng)?;
                warnings.extend(w);
                Some(server)
            }
            None => None,
        };
        let api = raw
            .api
            .as_ref()
            .map(|a| validate::api(a, &mut warnings))
            .transpose()?;
        let metrics = raw
            .metrics
            .as_ref()
            .map(|m| validate::metrics(m, api.as_ref(), &mut warnings))
            .transpose()?;
        let psk_key = match raw.ipsec_server.as_ref().and_then(|s| s.psk_file.as_ref()) {
            Some(_) => "ipsec_server.psk_file",
            None => "ipsec_server.psk",
        };
        validate::refuse_exposed_example_secrets(
            &gateway,
            ipsec_server.as_ref().map(|s| (s, psk_key)),
            api.as_ref(),
        )?;
        if ipsec_server.is_none() && api.is_none() {
            return Err(ConfigError::new(
                codes::NOTHING_TO_SERVE,
                "neither [ipsec_server] nor [api] is configured: the daemon would have nothing \
                 to do",
            ));
        }
        Ok(Self {
            gateway,
            limits,
            ipsec_server,
            api,
            metrics,
            warnings,
        })
    }

    /// The same gateway serving `server` instead (the control API swaps servers this way).
    pub fn with_ipsec_server(&self, server: Option<IpsecServerConfig>) -> Self {
        Self {
            ipsec_server: server,
            ..self.clone()
        }
    }

    pub fn gateway(&self) -> &GatewayConfig {
        &self.gateway
    }

    /// `[limits]` (all defaults when the section is absent).
    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    /// The server of `[ipsec_server]`; `None` when servers are created through the API.
    pub fn ipsec_server(&self) -> Option<&IpsecServerConfig> {
        self.ipsec_server.as_ref()
    }

    /// `None`: the control API is disabled.
    pub fn api(&self) -> Option<&ApiConfig> {
        self.api.as_ref()
    }

    /// `None`: no metrics listener.
    pub fn metrics(&self) -> Option<&MetricsConfig> {
        self.metrics.as_ref()
    }

    /// Things the daemon should log at WARN: legacy algorithms, example secrets, secret
    /// files readable by others, a non-loopback API listener. Never contains a secret.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests;

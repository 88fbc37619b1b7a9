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
//! Validation does not stop at the first error: each check records its failure under the
//! TOML key it concerns ([`Finding`]) and the next runs, so that `ipsec-server check` shows
//! every error of a file at once, each at its line ([`Report`], lines from `locate.rs`). The
//! API, which answers with one code, takes the first. `run` and `check` go through the same
//! [`check_file`], so they accept the same files; `check` adds the host conditions the
//! daemon finds (`daemon::host_check`: ports in use...), which this layer, doing no I/O
//! but reading the file, cannot see.
//!
//! Invariants of a validated [`Config`] (each accessor documents its own):
//! - LocalSubnet is non-empty, canonical (host bits are *rejected*, as the API does, not
//!   silently masked), duplicate-free; ClientIpPool is canonical, has a prefix length in
//!   16..=29, and overlaps neither LocalSubnet nor any host network given to validation.
//! - IkeVersion is IKEv2 and IkeMode `main` (the only values we accept), so they are implied.
//! - Every `[limits]` count is at least 1 and bounded; `max_ike_message` is 1280..=65535.
//! - Lifetimes are 0..=86400 s; ports are nonzero and distinct; `tun_name` is a valid Linux
//!   interface name that also fits the daemon's nftables table names; file paths are absolute.
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
mod locate;
mod model;
mod raw;
mod types;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use rand::RngCore;
use zeroize::Zeroizing;

pub use crate::ike::{Identity, UniquePolicy};
pub use model::{
    AccessKey, ApiConfig, ClusterConfig, ClusterTls, GatewayConfig, IkeConfig, IpsecConfig,
    IpsecServerConfig, LimitsConfig, MetricsConfig, MAX_SOCKET_PATH,
};
/// Where the control socket is when the config file does not say.
pub use raw::defaults::CONTROL_SOCKET as DEFAULT_CONTROL_SOCKET;

/// Where `run`, `check` and the other commands look for the configuration without `--config`
/// (the package installs it there).
pub const DEFAULT_CONFIG: &str = "/etc/ipsec-server/ipsec-server.toml";
pub use raw::{
    AccessKeyRaw, ApiRaw, ClusterRaw, ConfigRaw, GatewayRaw, IkeConfigRaw, IpsecConfigRaw,
    IpsecServerSpec, LimitsRaw, MetricsRaw,
};
pub use types::{AuthAlg, DhGroup, EncAlg};
pub(crate) use validate::cluster_node_id;
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
    cluster: Option<ClusterConfig>,
    warnings: Vec<String>,
}

/// One thing validation found in a config file, under the TOML key it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The key path as written in the file (`ipsec_server.ike_config.ike_lifetime`,
    /// `api.access_keys[1].access_key_id`); empty for the whole file (unreadable, a syntax
    /// error, nothing to serve).
    pub key: String,
    pub kind: FindingKind,
    /// 1-based line in the file: of the key, or of its nearest written ancestor when the
    /// key is a default; `None` when neither is written.
    pub line: Option<usize>,
    /// 1-based column, for syntax errors only.
    pub column: Option<usize>,
}

/// What a [`Finding`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FindingKind {
    /// The file is refused.
    Error(ConfigError),
    /// The file is refused on this host (ports in use, host networks, an interface of that
    /// name...); `check --no-host` skips these.
    Host(ConfigError),
    /// Accepted, but logged at WARN.
    Warning(String),
}

impl Finding {
    pub fn new(key: impl Into<String>, kind: FindingKind) -> Self {
        Self {
            key: key.into(),
            kind,
            line: None,
            column: None,
        }
    }

    /// The error, unless this is a warning.
    pub fn error(&self) -> Option<&ConfigError> {
        match &self.kind {
            FindingKind::Error(e) | FindingKind::Host(e) => Some(e),
            FindingKind::Warning(_) => None,
        }
    }

    fn into_error(self) -> Option<ConfigError> {
        match self.kind {
            FindingKind::Error(e) | FindingKind::Host(e) => Some(e),
            FindingKind::Warning(_) => None,
        }
    }

    fn into_message(self) -> String {
        match self.kind {
            FindingKind::Error(e) | FindingKind::Host(e) => e.to_string(),
            FindingKind::Warning(w) => w,
        }
    }
}

/// Everything found in one config file, printed one finding a line (`check` and a refused
/// `run` print the same):
///
/// ```text
/// FILE:LINE: key.path: CODE: message                 an error
/// FILE:LINE:COLUMN: [key.path: ]InvalidConfig.Syntax: message
///                                                    a syntax, type or unknown-key error
/// FILE:LINE: key.path: host: CODE: message           a host condition
/// FILE:LINE: key.path: warning: message              a warning
/// ```
///
/// `:LINE` is left out when no part of the key is written in the file, `key.path: ` for
/// whole-file findings. Findings are sorted by line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub file: PathBuf,
    pub findings: Vec<Finding>,
}

impl std::error::Error for Report {}

impl Report {
    /// Whether the file is refused (an error or a host condition).
    pub fn is_refused(&self) -> bool {
        self.findings.iter().any(|f| f.error().is_some())
    }

    /// The first error (by line), as the API and logs name one.
    pub fn first_error(&self) -> Option<&ConfigError> {
        self.findings.iter().find_map(Finding::error)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, f) in self.findings.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            write!(out, "{}", self.file.display())?;
            if let Some(line) = f.line {
                write!(out, ":{line}")?;
            }
            if let Some(column) = f.column {
                write!(out, ":{column}")?;
            }
            write!(out, ": ")?;
            if !f.key.is_empty() {
                write!(out, "{}: ", f.key)?;
            }
            match &f.kind {
                FindingKind::Error(e) => write!(out, "{}: {}", e.code, e.message)?,
                FindingKind::Host(e) => write!(out, "host: {}: {}", e.code, e.message)?,
                FindingKind::Warning(w) => write!(out, "warning: {w}")?,
            }
        }
        Ok(())
    }
}

/// Reads and validates a config file (what `run` and a SIGHUP reload do): the config, or
/// the [`Report`] of a refused file. ClientIpPool is checked against the host's networks
/// except those of the configured TUN device: `host_networks(tun_name)` gives them (the
/// daemon passes `io::host::host_networks_excluding`, tests a fixed list). Errors:
/// `InvalidConfig.Io` when the file cannot be read, `InvalidConfig.Syntax` for TOML errors,
/// then every validation error. A missing PSK is generated from `rng` (the caller's CSPRNG).
pub fn load(
    path: &Path,
    host_networks: &dyn Fn(&str) -> Vec<Ipv4Net>,
    rng: &mut dyn RngCore,
) -> Result<Config, Report> {
    match check_file(path, host_networks, &|_| Vec::new(), rng) {
        (Some(config), _) => Ok(config),
        (None, report) => Err(report),
    }
}

/// The host's part in [`check_file`]: its networks (by TUN name to leave out) and its
/// conditions on a valid config.
pub type HostChecks<'a> = (
    &'a dyn Fn(&str) -> Vec<Ipv4Net>,
    &'a dyn Fn(&Config) -> Vec<Finding>,
);

/// What `ipsec-server check` does: [`load`], then `host_conditions` on a valid config (the
/// binary passes `daemon::host_check::conditions`, which binds ports and looks at
/// interfaces: this layer does no I/O but reading the file). Returns the config when
/// nothing refuses it, and the report of every finding (errors, host conditions, warnings),
/// each with its line.
pub fn check_file(
    path: &Path,
    host_networks: &dyn Fn(&str) -> Vec<Ipv4Net>,
    host_conditions: &dyn Fn(&Config) -> Vec<Finding>,
    rng: &mut dyn RngCore,
) -> (Option<Config>, Report) {
    let mut report = Report {
        file: path.to_path_buf(),
        findings: Vec::new(),
    };
    let text = match std::fs::read_to_string(path) {
        // The text may hold secrets: wipe it once parsed.
        Ok(text) => Zeroizing::new(text),
        Err(e) => {
            let e = ConfigError::new(codes::IO, format!("cannot read {}: {e}", path.display()));
            report
                .findings
                .push(Finding::new("", FindingKind::Error(e)));
            return (None, report);
        }
    };
    let raw = match ConfigRaw::parse(&text) {
        Ok(raw) => raw,
        Err((e, offset)) => {
            // A wrong type or an unknown key (serde) is in a document that parses: name it.
            let key = offset.and_then(|at| locate::key_at(&text, at));
            let at = offset.and_then(|at| raw::line_col(&text, at));
            let mut finding = Finding::new(key.unwrap_or_default(), FindingKind::Error(e));
            finding.line = at.map(|(line, _)| line);
            finding.column = at.map(|(_, column)| column);
            report.findings.push(finding);
            return (None, report);
        }
    };
    let host = host_networks(&raw.gateway.tun_name);
    let mut found = validate::Findings::default();
    let mut config = Config::check(&raw, &host, rng, &mut found);
    if let Some(c) = &config {
        found.errors.extend(host_conditions(c));
    }
    if !found.errors.is_empty() {
        config = None;
    }
    report.findings = found.errors;
    report.findings.append(&mut found.warnings);
    locate::locate(&text, &mut report.findings);
    report.findings.sort_by_key(|f| f.line);
    (config, report)
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

    /// Validates a raw model; the first error if it is refused. A missing PSK is generated
    /// from `rng` (the caller's CSPRNG, or a seeded generator in tests: this layer reads no
    /// OS randomness itself).
    pub fn from_raw(
        raw: &ConfigRaw,
        host_networks: &[Ipv4Net],
        rng: &mut dyn RngCore,
    ) -> Result<Self, ConfigError> {
        let mut found = validate::Findings::default();
        match Self::check(raw, host_networks, rng, &mut found) {
            Some(config) => Ok(config),
            None => Err(found.first_error()),
        }
    }

    /// Runs every check, recording each error and warning in `found`; the config when no
    /// check failed.
    fn check(
        raw: &ConfigRaw,
        host_networks: &[Ipv4Net],
        rng: &mut dyn RngCore,
        found: &mut validate::Findings,
    ) -> Option<Self> {
        let gateway = validate::gateway(&raw.gateway, found);
        let limits = validate::limits(&raw.limits, found);
        let ipsec_server = raw.ipsec_server.as_ref().map(|spec| {
            found.prefix = "ipsec_server.";
            let server = spec.check(found, host_networks, rng);
            found.prefix = "";
            server
        });
        let api = raw.api.as_ref().map(|a| validate::api(a, found));
        let metrics = raw
            .metrics
            .as_ref()
            .map(|m| validate::metrics(m, api.as_ref().and_then(Option::as_ref), found));
        let cluster = raw.cluster.as_ref().map(|c| validate::cluster(c, found));
        if let Some(gateway) = &gateway {
            let psk_key = match raw.ipsec_server.as_ref().and_then(|s| s.psk_file.as_ref()) {
                Some(_) => "ipsec_server.psk_file",
                None => "ipsec_server.psk",
            };
            validate::refuse_exposed_example_secrets(
                found,
                gateway,
                ipsec_server
                    .as_ref()
                    .and_then(Option::as_ref)
                    .map(|s| (s, psk_key)),
                api.as_ref().and_then(Option::as_ref),
            );
        }
        if ipsec_server.is_none() && api.is_none() {
            found.errors.push(Finding::new(
                "",
                FindingKind::Error(ConfigError::new(
                    codes::NOTHING_TO_SERVE,
                    "neither [ipsec_server] nor [api] is configured: the daemon would have \
                     nothing to do",
                )),
            ));
        }
        if !found.errors.is_empty() {
            return None;
        }
        Some(Self {
            gateway: gateway?,
            limits: limits?,
            ipsec_server: ipsec_server.map(|s| s.ok_or(())).transpose().ok()?,
            api: api.map(|a| a.ok_or(())).transpose().ok()?,
            metrics: metrics.map(|m| m.ok_or(())).transpose().ok()?,
            cluster: cluster.map(|c| c.ok_or(())).transpose().ok()?,
            warnings: found
                .warnings
                .iter()
                .cloned()
                .map(Finding::into_message)
                .collect(),
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

    /// `None`: a single node, no etcd (README, "Running several gateways").
    pub fn cluster(&self) -> Option<&ClusterConfig> {
        self.cluster.as_ref()
    }

    /// Things the daemon should log at WARN: legacy algorithms, example secrets, secret
    /// files readable by others, a non-loopback API listener. Never contains a secret.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests;

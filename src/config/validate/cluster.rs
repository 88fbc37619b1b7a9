//! `[cluster]`: etcd endpoints, TLS, user and password, node id, lease TTL, key prefix.
//!
//! Only the file is checked here (no connection: this layer does no I/O but reading files);
//! the daemon reports an unreachable etcd when it starts. The password is read like every
//! other secret (`password_file` preferred, a warning for an inline one) and never appears in
//! an error, a warning or `Debug` output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::model::{ClusterConfig, ClusterTls};
use super::super::raw::ClusterRaw;
use super::super::{codes, ConfigError};
use super::{in_range, read_secret_file, shown, Findings};

/// At most this many endpoints (etcd clusters have 3, 5 or 7 members).
const MAX_ENDPOINTS: usize = 16;
/// Lease TTL bounds, seconds: below 5 the keepalives (every third of it) and the fencing
/// margin (2 s) leave no room; above 10 minutes a dead node's addresses stay taken too long.
const LEASE_TTL_MIN: u32 = 5;
const LEASE_TTL_MAX: u32 = 600;

pub(in crate::config) fn cluster(raw: &ClusterRaw, f: &mut Findings) -> Option<ClusterConfig> {
    let endpoints = f.field("cluster.endpoints", |_| endpoints(&raw.endpoints));
    let https = endpoints
        .as_ref()
        .is_some_and(|e| e.iter().any(|e| e.starts_with("https://")));
    let tls = f.field("cluster.ca_file", |_| tls(raw, https));
    let auth = f.field("cluster.user", |warnings| auth(raw, warnings));
    let node_id = f.field("cluster.node_id", |_| {
        raw.node_id.as_deref().map(node_id).transpose()
    });
    let lease_ttl = f.field("cluster.lease_ttl", |_| {
        in_range(
            raw.lease_ttl,
            LEASE_TTL_MIN,
            LEASE_TTL_MAX,
            codes::CLUSTER_LEASE_TTL,
            "cluster.lease_ttl",
        )
        .map(|s| Duration::from_secs(s.into()))
    });
    let prefix = f.field("cluster.prefix", |_| prefix(&raw.prefix));
    let route_hook = f.field("cluster.route_hook", |_| match &raw.route_hook {
        Some(p) if !p.is_absolute() => Err(ConfigError::new(
            codes::CLUSTER_ROUTE_HOOK,
            format!(
                "cluster.route_hook {} is not an absolute path",
                shown(&p.to_string_lossy())
            ),
        )),
        other => Ok(other.clone()),
    });
    Some(ClusterConfig {
        endpoints: endpoints?,
        tls: tls?,
        auth: auth?,
        node_id: node_id?,
        lease_ttl: lease_ttl?,
        prefix: prefix?,
        route_hook: route_hook?,
    })
}

fn endpoints(raw: &[String]) -> Result<Vec<String>, ConfigError> {
    let err = |m: String| ConfigError::new(codes::CLUSTER_ENDPOINTS, m);
    if raw.is_empty() || raw.len() > MAX_ENDPOINTS {
        return Err(err(format!(
            "cluster.endpoints has {} entries: list 1..={MAX_ENDPOINTS} etcd endpoints \
             (http://HOST:PORT or https://HOST:PORT)",
            raw.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for e in raw {
        let rest = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"));
        let well_formed = rest.is_some_and(|hp| {
            hp.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c))
                    && port.parse::<u16>().is_ok_and(|p| p != 0)
            })
        });
        if !well_formed {
            return Err(err(format!(
                "cluster.endpoints entry {} is not http://HOST:PORT or https://HOST:PORT",
                shown(e)
            )));
        }
        if out.contains(e) {
            return Err(err(format!("cluster.endpoints lists {} twice", shown(e))));
        }
        out.push(e.clone());
    }
    if out.iter().any(|e| e.starts_with("https://")) && out.iter().any(|e| e.starts_with("http://"))
    {
        return Err(err(
            "cluster.endpoints mixes http:// and https://: use one scheme for all".into(),
        ));
    }
    Ok(out)
}

fn tls(raw: &ClusterRaw, https: bool) -> Result<Option<ClusterTls>, ConfigError> {
    let err = |m: String| ConfigError::new(codes::CLUSTER_TLS, m);
    let given = raw.ca_file.is_some() || raw.cert_file.is_some() || raw.key_file.is_some();
    if given && !https {
        return Err(err(
            "cluster.ca_file, cert_file and key_file need https:// endpoints".into(),
        ));
    }
    if !https {
        return Ok(None);
    }
    let absolute = |key: &str, p: &Option<PathBuf>| match p {
        Some(p) if !Path::is_absolute(p) => Err(err(format!(
            "cluster.{key} {} is not an absolute path",
            shown(&p.to_string_lossy())
        ))),
        _ => Ok(p.clone()),
    };
    let Some(ca_file) = absolute("ca_file", &raw.ca_file)? else {
        return Err(err(
            "https:// endpoints need cluster.ca_file, the CA of etcd's certificate".into(),
        ));
    };
    let identity = match (
        absolute("cert_file", &raw.cert_file)?,
        absolute("key_file", &raw.key_file)?,
    ) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(err(
                "cluster.cert_file and cluster.key_file go together: set both or neither".into(),
            ))
        }
    };
    Ok(Some(ClusterTls { ca_file, identity }))
}

fn auth(
    raw: &ClusterRaw,
    warnings: &mut Vec<String>,
) -> Result<Option<(String, crate::secret::SecretBytes)>, ConfigError> {
    let err = |m: String| ConfigError::new(codes::CLUSTER_AUTH, m);
    let password = match (&raw.password, &raw.password_file) {
        (Some(_), Some(_)) => {
            return Err(err(
                "cluster.password and cluster.password_file are both set: keep one".into(),
            ))
        }
        (Some(p), None) => {
            warnings.push(
                "cluster.password is written in the config file: prefer cluster.password_file \
                 (mode 0600)"
                    .into(),
            );
            Some(p.clone())
        }
        (None, Some(path)) => Some(read_secret_file(
            path,
            codes::CLUSTER_AUTH,
            "cluster.password_file",
            warnings,
        )?),
        (None, None) => None,
    };
    match (&raw.user, password) {
        (None, None) => Ok(None),
        (Some(user), Some(password)) => {
            let ok = (1..=128).contains(&user.len()) && user.chars().all(|c| c.is_ascii_graphic());
            if !ok {
                return Err(err(format!(
                    "cluster.user {} is not 1..=128 printable ASCII characters without spaces",
                    shown(user)
                )));
            }
            if password.expose().is_empty() {
                return Err(err("cluster.password is empty".into()));
            }
            Ok(Some((user.clone(), password)))
        }
        (Some(_), None) => Err(err(
            "cluster.user needs cluster.password_file (or cluster.password)".into(),
        )),
        (None, Some(_)) => Err(err("a cluster password needs cluster.user".into())),
    }
}

/// `cluster.node_id`, or the host name the daemon would use instead.
pub(crate) fn node_id(id: &str) -> Result<String, ConfigError> {
    let ok = (1..=63).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(id.to_owned())
    } else {
        Err(ConfigError::new(
            codes::CLUSTER_NODE_ID,
            format!(
                "cluster.node_id {} is not 1..=63 characters of A-Z a-z 0-9 . _ -",
                shown(id)
            ),
        ))
    }
}

fn prefix(p: &str) -> Result<String, ConfigError> {
    let ok = (2..=128).contains(&p.len())
        && p.starts_with('/')
        && !p.ends_with('/')
        && !p.contains("//")
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if ok {
        Ok(p.to_owned())
    } else {
        Err(ConfigError::new(
            codes::CLUSTER_PREFIX,
            format!(
                "cluster.prefix {} is not /NAME[/NAME…]: 2..=128 characters of A-Z a-z 0-9 \
                 / . _ -, starting with / and not ending with it",
                shown(p)
            ),
        ))
    }
}

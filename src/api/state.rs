//! What the control API persists: the IPsec server created through it (with its PSK, also
//! a generated one) and the answers of ClientToken requests, as JSON in
//! `state_dir/api-state.json`, mode 0600, in a directory of mode 0700 ([`private_state_dir`]).
//!
//! Writes are atomic: the new state goes to a temporary file in the same directory, is
//! fsynced, renamed over the old file, and the directory is fsynced. A crash at any point
//! leaves either the previous or the new state, never a torn file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{
    split_local_subnet, IkeConfigRaw, IpsecConfigRaw, IpsecServerConfig, IpsecServerSpec,
};
use crate::io::fs::{private_dir, PrivateDir};
use crate::secret::SecretBytes;

pub const FILE_NAME: &str = "api-state.json";

/// The persisted state.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Persisted {
    pub version: u32,
    pub server: Option<ServerRecord>,
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
}

/// One IPsec server as its API parameters (re-validated on load). No `Debug`: holds the PSK.
#[derive(Clone, Serialize, Deserialize)]
pub struct ServerRecord {
    pub id: String,
    pub creation_time: String,
    pub name: Option<String>,
    pub local_subnet: Vec<String>,
    pub client_ip_pool: String,
    pub effect_immediately: bool,
    pub psk: String,
    pub ike_config: Value,
    pub ipsec_config: Value,
    /// File-only `dns`, kept when a file server is adopted.
    #[serde(default)]
    pub dns: Vec<String>,
}

/// The answer to a request that carried a ClientToken.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenEntry {
    pub action: String,
    pub token: String,
    /// Fingerprint of the request's parameters (SHA-256 hex; no secret in clear).
    pub fingerprint: String,
    pub response: Value,
}

/// Tokens kept; the oldest are forgotten first.
pub const MAX_TOKENS: usize = 1000;

impl ServerRecord {
    /// The record of a validated server (its PSK included).
    pub fn from_config(id: String, creation_time: String, s: &IpsecServerConfig) -> Self {
        Self {
            id,
            creation_time,
            name: s.name().map(str::to_owned),
            local_subnet: s.local_subnets().iter().map(ToString::to_string).collect(),
            client_ip_pool: s.client_ip_pool().to_string(),
            effect_immediately: s.effect_immediately(),
            psk: String::from_utf8_lossy(s.psk().expose()).into_owned(),
            ike_config: s.ike().to_api_json(),
            ipsec_config: s.ipsec().to_api_json(),
            dns: s.dns().iter().map(ToString::to_string).collect(),
        }
    }

    /// The spec to validate.
    pub fn spec(&self) -> Result<IpsecServerSpec, crate::config::ConfigError> {
        Ok(IpsecServerSpec {
            ipsec_server_name: self.name.clone(),
            local_subnet: self.local_subnet.clone(),
            client_ip_pool: self.client_ip_pool.clone(),
            effect_immediately: self.effect_immediately,
            psk_enabled: Some(true),
            psk: Some(SecretBytes::from_slice(self.psk.as_bytes())),
            psk_file: None,
            dns: self.dns.clone(),
            ike_config: IkeConfigRaw::from_api_json(&self.ike_config.to_string())?,
            ipsec_config: IpsecConfigRaw::from_api_json(&self.ipsec_config.to_string())?,
        })
    }

    /// LocalSubnet as the API shows it.
    pub fn local_subnet_api(&self) -> String {
        self.local_subnet.join(",")
    }
}

/// Splits LocalSubnet as the API sends it.
pub fn local_subnet_items(api: &str) -> Vec<String> {
    split_local_subnet(api)
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Reads the state; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> std::io::Result<Option<Persisted>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks `state_dir` ([`crate::io::fs::private_dir`]): created with mode 0700 if missing;
/// a symbolic link, a directory owned by another user or writable by group or others is
/// refused; one readable by others is used with a warning (the state file itself is 0600),
/// never chmod-ed behind the administrator's back.
pub fn private_state_dir(state_dir: &Path) -> std::io::Result<()> {
    if let PrivateDir::Readable(mode) = private_dir(state_dir)? {
        tracing::warn!(
            "state_dir {} has mode {mode:o}; 0700 is advised (it holds PSKs in a 0600 file)",
            state_dir.display()
        );
    }
    Ok(())
}

/// Replaces the state atomically (see the module docs).
pub fn store(path: &Path, state: &Persisted) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_state_dir(dir)?;
    let tmp = dir.join(format!(".{FILE_NAME}.tmp-{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_replaces_atomically_and_ignores_stale_temp_files() {
        let dir = std::env::temp_dir().join(format!("api-state-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = path(&dir);
        assert!(load(&p).unwrap().is_none());
        let mut st = Persisted {
            version: 1,
            ..Persisted::default()
        };
        store(&p, &st).unwrap();
        // A crash mid-write leaves a temp file behind; the state itself is intact.
        std::fs::write(dir.join(format!(".{FILE_NAME}.tmp-999")), b"{\"torn").unwrap();
        assert_eq!(load(&p).unwrap().unwrap().version, 1);
        st.version = 2;
        store(&p, &st).unwrap();
        assert_eq!(load(&p).unwrap().unwrap().version, 2);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "state holds a PSK: owner-only");
        let dir_mode = |d: &Path| std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode(&dir), 0o700, "state_dir is created 0700");
        // An existing state_dir readable by others is used (with a warning), one writable
        // by others refused.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        store(&p, &st).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            store(&p, &st).is_err(),
            "a state_dir others may write to is refused"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

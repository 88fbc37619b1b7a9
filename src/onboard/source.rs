//! Which server `client-config` renders: as the daemon decides it (README "Which wins"). With
//! `[api]`, the server of `state_dir/api-state.json` once that file exists (the API's state
//! wins, also over `[ipsec_server]`), else the file's `[ipsec_server]` (which the API adopts);
//! without `[api]`, the file's `[ipsec_server]`.

use std::path::Path;

use ipnet::Ipv4Net;
use rand::RngCore;
use zeroize::Zeroizing;

use super::{PskSource, ServerView};
use crate::api::state;
use crate::config::{self, ConfigRaw};

/// Why no server could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The configuration is invalid (its error code and message).
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    /// The configuration file is refused (every finding, as `check` prints them).
    #[error("{0}")]
    Report(#[from] config::Report),
    /// There is no server to render, or its state cannot be read.
    #[error("{0}")]
    NoServer(String),
}

/// Loads `path` and finds the server the daemon serves (see the module docs).
/// `host_networks` and `rng` as for [`config::load`].
pub fn load(
    path: &Path,
    host_networks: &dyn Fn(&str) -> Vec<Ipv4Net>,
    rng: &mut dyn RngCore,
) -> Result<ServerView, LoadError> {
    let cfg = config::load(path, host_networks, rng)?;
    // The raw file again, for where the PSK lives (the validated model keeps only its value).
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| LoadError::NoServer(format!("cannot read {}: {e}", path.display())))?,
    );
    let raw = ConfigRaw::from_toml_str(&text)?;
    let shown = path.display();
    let gateway = cfg.gateway();
    if cfg.api().is_some() {
        let state_path = state::path(gateway.state_dir());
        let persisted = state::load(&state_path).map_err(|e| {
            LoadError::NoServer(format!(
                "cannot read the API state {}: {e} (it is root's: run as root)",
                state_path.display()
            ))
        })?;
        if let Some(p) = persisted {
            let Some(rec) = p.server else {
                return Err(LoadError::NoServer(format!(
                    "there is no IPsec server: the API state {} holds none (it was deleted \
                     through the API, or never created); create one with CreateIpsecServer",
                    state_path.display()
                )));
            };
            let spec = rec.spec()?;
            let host = host_networks(gateway.tun_name());
            let (server, _) = spec.validate(&host, rng)?;
            return Ok(ServerView::new(
                gateway,
                &server,
                format!(
                    "the IPsec server {} created through the API ({})",
                    rec.id,
                    state_path.display()
                ),
                PskSource::Known {
                    hint: format!(
                        "the API state {} (ListIpsecServers returns it as Psk)",
                        state_path.display()
                    ),
                },
            ));
        }
    }
    let Some(server) = cfg.ipsec_server() else {
        return Err(LoadError::NoServer(format!(
            "there is no IPsec server: {shown} has no [ipsec_server] and the API has created \
             none yet (no {}); create one with CreateIpsecServer",
            state::path(gateway.state_dir()).display()
        )));
    };
    let spec = raw.ipsec_server.as_ref();
    let psk = match (
        spec.and_then(|s| s.psk_file.as_ref()),
        spec.and_then(|s| s.psk.as_ref()),
    ) {
        (Some(file), _) => PskSource::Known {
            hint: format!("psk_file {}", file.display()),
        },
        (None, Some(_)) => PskSource::Known {
            hint: format!("`psk` in [ipsec_server] of {shown}"),
        },
        (None, None) => PskSource::GeneratedAtStart,
    };
    Ok(ServerView::new(
        gateway,
        server,
        format!("[ipsec_server] of {shown}"),
        psk,
    ))
}

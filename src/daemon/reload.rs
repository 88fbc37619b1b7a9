//! Applying the config file again, the one way SIGHUP and `ipsec-server reload` share: the
//! file is read and validated as at start, and its `[ipsec_server]` applied like an
//! UpdateIpsecServer (`manager.rs`, [`super::manager::plan_update`]): `effect_immediately =
//! true` deletes every IKE SA so clients reconnect with the new settings, `false` keeps them
//! until they authenticate again (after a PSK change within `psk_change_reauth`,
//! `ike::reauth`); a new pool or TUN MTU restarts the stack. A file that does not validate
//! changes nothing and is refused with its configuration error code. `[gateway]`,
//! `[limits]` and `[api]` are read at start only.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::control::{codes, ControlError};
use super::kept_psk::keep_generated_psk;
use super::manager::{changed_settings, StackManager};
use super::notify;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadOutcome {
    /// What happened to the serving stack, in words.
    pub applied: String,
    /// The `[ipsec_server]` settings that changed (names only).
    pub changed: Vec<String>,
}

/// Reads `path` and applies it (see the module docs); every outcome is logged.
/// Under systemd it is framed by `RELOADING=1` … `READY=1` (`notify.rs`).
pub(crate) fn reload(manager: &StackManager, path: &Path) -> Result<ReloadOutcome, ControlError> {
    notify::reloading();
    let outcome = apply_file(manager, path);
    notify::ready(&match &outcome {
        Ok(o) => format!("serving; last reload: {}", o.applied),
        Err(e) => format!("serving; the last reload was not applied: {}", e.code),
    });
    outcome
}

fn apply_file(manager: &StackManager, path: &Path) -> Result<ReloadOutcome, ControlError> {
    let new = crate::config::load(
        path,
        &crate::io::host::host_networks_excluding,
        &mut rand::thread_rng(),
    )
    .map_err(|e| {
        warn!("{} not applied:\n{e}", path.display());
        // The first error's code; the message lists every finding, as `check` prints them.
        let code = e
            .first_error()
            .map_or(crate::config::codes::SYNTAX, |first| first.code);
        ControlError::new(code, e.to_string().trim_end())
    })?;
    // A generated PSK stays the one kept in state_dir (`kept_psk.rs`).
    let new = keep_generated_psk(new).map_err(|e| {
        warn!("{} not applied: {e}", path.display());
        ControlError::new(codes::APPLY_FAILED, e.to_string())
    })?;
    let effect = new.ipsec_server().is_some_and(|s| s.effect_immediately());
    info!(
        effect_immediately = effect,
        "reload: applying {}",
        path.display()
    );
    let old = manager.running_config();
    let applied = manager
        .apply_server(new.ipsec_server(), effect)
        .map_err(|e| {
            warn!("applying the reloaded configuration failed: {e}");
            ControlError::new(codes::APPLY_FAILED, e)
        })?;
    let changed = match (old, manager.running_config()) {
        (Some(old), Some(now)) => changed_settings(&old, &now)
            .into_iter()
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    info!(changed = ?changed, "{applied}");
    Ok(ReloadOutcome {
        applied: applied.to_string(),
        changed,
    })
}

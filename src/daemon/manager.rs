//! The serving stack as the control API's [`Backend`]: a [`StackManager`] starts one
//! [`Stack`] on Create, applies an Update, stops the stack on Delete. Without `[api]` it
//! applies the config file's `[ipsec_server]`, at start and on SIGHUP, the same way.
//!
//! An Update is applied as [`plan_update`] decides: a new pool or TUN MTU restarts the stack
//! (the routes, nftables rules and TUN device depend on them); anything else reconfigures the
//! running responder (`ControlMsg::Reconfigure`, `Responder::reconfigure`), so established
//! clients stay connected unless EffectImmediately asks for every IKE SA to be deleted (after
//! a PSK change, clients of the old PSK must authenticate again within `psk_change_reauth`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::control_plane::ControlMsg;
use super::stack::Stack;
use super::{responder_config, tun_mtu, DaemonError};
use crate::api::Backend;
use crate::config::{Config, IpsecServerConfig};
use crate::ike::ResponderConfig;

/// What an update does to a running stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdatePlan {
    /// The stack stays; new IKE SAs use the new settings. `delete_all` (EffectImmediately):
    /// every IKE SA is deleted so clients renegotiate with them.
    Reconfigure { delete_all: bool },
    /// The pool or the TUN MTU changed: the stack is stopped (DELETE to every peer) and
    /// started again.
    Restart,
}

/// How the running stack of `old` takes `new`.
pub(crate) fn plan_update(
    old: &ResponderConfig,
    new: &ResponderConfig,
    effect_immediately: bool,
) -> UpdatePlan {
    if old.pool == new.pool && tun_mtu(&old.esp) == tun_mtu(&new.esp) {
        UpdatePlan::Reconfigure {
            delete_all: effect_immediately,
        }
    } else {
        UpdatePlan::Restart
    }
}

/// What an apply did to the serving stack (`ipsec-server reload` prints it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// No server before, none now.
    Nothing,
    Started,
    Stopped,
    Restarted,
    Reconfigured {
        delete_all: bool,
    },
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Applied::Nothing => "no IPsec server configured",
            Applied::Started => "IPsec server started",
            Applied::Stopped => "IPsec server stopped",
            Applied::Restarted => {
                "IPsec server restarted (new pool or TUN MTU): every client reconnects"
            }
            Applied::Reconfigured { delete_all: false } => {
                "reconfigured: new IKE SAs use the new settings, connected clients keep theirs"
            }
            Applied::Reconfigured { delete_all: true } => {
                "reconfigured with effect_immediately: every IKE SA deleted, clients reconnect"
            }
        })
    }
}

/// The `[ipsec_server]` settings that differ between `old` and `new` (names only: never a
/// PSK).
pub(crate) fn changed_settings(old: &ResponderConfig, new: &ResponderConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |differs: bool, name: &'static str| {
        if differs {
            out.push(name);
        }
    };
    check(old.ike != new.ike, "ike algorithms");
    check(old.ike_lifetime != new.ike_lifetime, "ike_lifetime");
    check(old.esp != new.esp, "ipsec algorithms");
    check(old.esp_pfs != new.esp_pfs, "ipsec_pfs");
    check(old.ipsec_lifetime != new.ipsec_lifetime, "ipsec_lifetime");
    check(old.psk != new.psk, "psk");
    check(old.local_id != new.local_id, "local_id");
    check(old.remote_id != new.remote_id, "remote_id");
    check(old.local_subnets != new.local_subnets, "local_subnet");
    check(old.pool != new.pool, "client_ip_pool");
    check(old.dns != new.dns, "dns");
    out
}

/// Starts, reconfigures and stops one [`Stack`].
pub(crate) struct StackManager {
    base: Config,
    /// Cluster mode: the stacks' pools are the cluster's.
    cluster: Option<Arc<super::cluster::Cluster>>,
    stack: Mutex<ManagerState>,
    /// Applies finished, successful or not ([`StackManager::wait_applied`]).
    applied: AtomicU64,
}

#[derive(Default)]
struct ManagerState {
    running: Option<(Stack, Arc<ResponderConfig>)>,
    /// The server `running` serves, as configured (for `client-config` on the control socket).
    served: Option<IpsecServerConfig>,
    shut_down: bool,
}

impl StackManager {
    pub(crate) fn new(base: Config, cluster: Option<Arc<super::cluster::Cluster>>) -> Self {
        Self {
            base,
            cluster,
            stack: Mutex::new(ManagerState::default()),
            applied: AtomicU64::new(0),
        }
    }

    /// Waits (at most `timeout`) until an apply has finished, whatever its outcome: the
    /// daemon is ready when the server it serves at start is up (or has failed, logged).
    pub(crate) fn wait_applied(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.applied.load(Ordering::SeqCst) == 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, ManagerState> {
        self.stack.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running stack's IKE thread, if a server runs.
    pub(crate) fn postbox(&self) -> Option<super::inbox::Postbox> {
        self.lock()
            .running
            .as_ref()
            .map(|(s, _)| s.postbox().clone())
    }

    /// The responder configuration of the running server.
    pub(crate) fn running_config(&self) -> Option<Arc<ResponderConfig>> {
        self.lock().running.as_ref().map(|(_, c)| c.clone())
    }

    /// Applies `server` as [`Backend::apply`] does and says what that did.
    pub(crate) fn apply_server(
        &self,
        server: Option<&IpsecServerConfig>,
        effect_immediately: bool,
    ) -> Result<Applied, String> {
        // Counted when this returns, whichever way ([`StackManager::wait_applied`]).
        let _applied = CountOnDrop(&self.applied);
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.shut_down {
            return Ok(Applied::Nothing);
        }
        let Some(server) = server else {
            st.served = None;
            return Ok(match st.running.take() {
                Some((stack, _)) => {
                    stack.stop();
                    Applied::Stopped
                }
                None => Applied::Nothing,
            });
        };
        let config = self.base.with_ipsec_server(Some(server.clone()));
        let rcfg =
            Arc::new(responder_config(&config).ok_or("the server's algorithms have no transform")?);
        if let Some((stack, old)) = &mut st.running {
            if let UpdatePlan::Reconfigure { delete_all } =
                plan_update(old, &rcfg, effect_immediately)
            {
                stack
                    .postbox()
                    .control(ControlMsg::Reconfigure {
                        config: rcfg.clone(),
                        delete_all,
                    })
                    .map_err(|_| "the IKE thread has ended".to_string())?;
                *old = rcfg;
                st.served = Some(server.clone());
                return Ok(Applied::Reconfigured { delete_all });
            }
        }
        // A restart, or nothing running yet: (re)start the stack.
        let applied = match st.running.take() {
            Some((stack, _)) => {
                stack.stop();
                Applied::Restarted
            }
            None => Applied::Started,
        };
        st.served = None;
        let stack = Stack::start(&config, self.cluster.as_deref()).map_err(|e| e.to_string())?;
        st.running = Some((stack, rcfg));
        st.served = Some(server.clone());
        Ok(applied)
    }

    /// Takes over the stack a previous process handed over (`upgrade.rs`), serving `server`.
    pub(crate) fn adopt(
        &self,
        server: &IpsecServerConfig,
        handed: super::stack::Handed,
    ) -> Result<(), DaemonError> {
        let _applied = CountOnDrop(&self.applied);
        let config = self.base.with_ipsec_server(Some(server.clone()));
        let rcfg = Arc::new(responder_config(&config).ok_or(DaemonError::NoServer)?);
        let stack = Stack::adopt(&config, self.cluster.as_deref(), handed)?;
        let mut st = self.lock();
        st.running = Some((stack, rcfg));
        st.served = Some(server.clone());
        Ok(())
    }

    /// `ipsec-server upgrade`'s hand-over (`upgrade.rs`) with the manager locked throughout,
    /// so no change is applied meanwhile: `hand` gets the running stack; `Ok((_, true))`
    /// means the new process took over, so the stack ends without DELETE or teardown and
    /// nothing is applied after; otherwise the stack serves on (`hand` resumed it).
    pub(crate) fn hand_over<T>(
        &self,
        hand: impl FnOnce(&Stack) -> Result<(T, bool), String>,
    ) -> Result<T, String> {
        let mut st = self.lock();
        let Some((stack, _)) = &st.running else {
            return Err("no IPsec server is being served: nothing to hand over \
                        (restart the daemon instead)"
                .into());
        };
        let (out, handed) = hand(stack)?;
        if handed {
            st.shut_down = true;
            if let Some((stack, _)) = st.running.take() {
                stack.handed_over();
            }
        }
        Ok(out)
    }

    /// The server the running stack serves, as configured (its PSK included).
    pub(crate) fn served(&self) -> Option<IpsecServerConfig> {
        self.lock().served.clone()
    }

    /// The running stack's values for a metrics scrape; `None` when no stack runs (or its
    /// IKE thread does not answer in time). The IKE thread is asked without holding the lock.
    pub(crate) fn metrics(&self, per_client: bool) -> Option<super::metrics::StackMetrics> {
        let postbox = self.postbox()?;
        super::metrics::query(&postbox, per_client)
    }

    /// Stops the stack for good (daemon shutdown); later applies do nothing.
    pub(crate) fn shutdown(&self) {
        let mut st = self.lock();
        st.shut_down = true;
        if let Some((stack, _)) = st.running.take() {
            stack.stop();
        }
    }
}

/// Adds one to its counter when dropped.
struct CountOnDrop<'a>(&'a AtomicU64);

impl Drop for CountOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Backend for StackManager {
    fn apply(
        &self,
        server: Option<&IpsecServerConfig>,
        effect_immediately: bool,
    ) -> Result<(), String> {
        self.apply_server(server, effect_immediately).map(|_| ())
    }

    fn online_clients(&self) -> usize {
        // The answer is awaited without the manager's lock: a busy IKE thread must not hold
        // up reconfiguration or the other API calls for the 2 s.
        let Some(postbox) = self.postbox() else {
            return 0;
        };
        let (tx, rx) = mpsc::channel();
        if postbox.control(ControlMsg::OnlineClients(tx)).is_err() {
            return 0;
        }
        rx.recv_timeout(Duration::from_secs(2)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The responder configuration of a server with these `[ipsec_server]` lines on top of a
    /// minimal one (pool 10.0.0.0/24, AES-128/SHA-1 for ESP).
    fn server(extra: &str) -> ResponderConfig {
        let text = format!(
            r#"
[gateway]
vpn_gateway_id = "vpn-test0001"
region_id = "local"

[ipsec_server]
local_subnet = ["192.168.0.0/24"]
psk = "Sup3r-Secret-Psk"
{extra}
"#
        );
        let config =
            Config::from_toml_str(&text, &[], &mut rand::thread_rng()).expect("valid config");
        responder_config(&config).expect("an IPsec server")
    }

    const POOL: &str = r#"client_ip_pool = "10.0.0.0/24""#;

    fn with_esp(enc: &str, auth: &str) -> ResponderConfig {
        server(&format!(
            "{POOL}\n[ipsec_server.ipsec_config]\nipsec_enc_alg = \"{enc}\"\n\
             ipsec_auth_alg = \"{auth}\""
        ))
    }

    #[test]
    fn the_same_pool_and_mtu_reconfigure_the_running_responder() {
        let old = server(POOL);
        let new = server(&format!(
            "{POOL}\n[ipsec_server.ike_config]\nike_lifetime = 3600"
        ));
        assert_eq!(
            plan_update(&old, &new, false),
            UpdatePlan::Reconfigure { delete_all: false }
        );
        // Nothing changed at all: still only a reconfiguration.
        assert_eq!(
            plan_update(&old, &old, false),
            UpdatePlan::Reconfigure { delete_all: false }
        );
    }

    #[test]
    fn a_reload_names_what_changed_never_the_psk_itself() {
        let old = server(POOL);
        assert!(changed_settings(&old, &old).is_empty());
        let new = server(&format!(
            "{POOL}\ndns = [\"192.168.0.53\"]\n[ipsec_server.ike_config]\nike_lifetime = 3600"
        ));
        assert_eq!(changed_settings(&old, &new), ["ike_lifetime", "dns"]);
        let mut other_psk = old.clone();
        other_psk.psk = crate::secret::SecretBytes::from_slice(b"An0ther-Secret-Psk");
        let named = changed_settings(&old, &other_psk);
        assert_eq!(named, ["psk"]);
        assert!(!format!("{named:?}").contains("An0ther"));
        assert_eq!(
            changed_settings(&old, &with_esp("aes256", "sha256")),
            ["ipsec algorithms"]
        );
    }

    #[test]
    fn effect_immediately_deletes_every_ike_sa() {
        let old = server(POOL);
        let new = server(&format!("{POOL}\ndns = [\"192.168.0.53\"]"));
        assert_eq!(
            plan_update(&old, &new, true),
            UpdatePlan::Reconfigure { delete_all: true }
        );
    }

    #[test]
    fn a_new_pool_restarts_the_stack() {
        let old = server(POOL);
        let new = server(r#"client_ip_pool = "10.1.0.0/24""#);
        assert_eq!(plan_update(&old, &new, false), UpdatePlan::Restart);
        assert_eq!(plan_update(&old, &new, true), UpdatePlan::Restart);
    }

    #[test]
    fn a_new_tun_mtu_restarts_the_stack() {
        let old = with_esp("aes", "sha1");
        // A bigger ICV shrinks the inner MTU (1422 → 1406).
        let new = with_esp("aes", "sha512");
        assert_ne!(tun_mtu(&old.esp), tun_mtu(&new.esp));
        assert_eq!(plan_update(&old, &new, false), UpdatePlan::Restart);
        // A smaller block grows it (1422 → 1438).
        assert_eq!(
            plan_update(&old, &with_esp("des", "sha1"), true),
            UpdatePlan::Restart
        );
    }

    #[test]
    fn a_new_esp_suite_with_the_same_mtu_reconfigures() {
        let old = with_esp("aes", "sha1");
        let new = with_esp("aes256", "sha256");
        assert_eq!(tun_mtu(&old.esp), tun_mtu(&new.esp));
        assert_eq!(
            plan_update(&old, &new, false),
            UpdatePlan::Reconfigure { delete_all: false }
        );
    }
}

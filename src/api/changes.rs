//! The actions that change the IPsec server: CreateIpsecServer, UpdateIpsecServer and
//! DeleteIpsecServer. Each validates fully, then checks the gateway may change now
//! ([`Api::check_change`]: not `updating`, not a dry run, not too soon after the last
//! change), persists the new state ([`Api::commit`]: the state file, or etcd in cluster
//! mode) and only then applies it in the
//! background. A ClientToken replays the stored answer ([`super::idempotency`]).

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tracing::{error, info};

use super::errors::ApiError;
use super::idempotency::{remember, replay};
use super::ids::server_id;
use super::params::Params;
use super::shared::{encode, Document, StoreError};
use super::state::{self, ServerRecord};
use super::{now_unix, sign, Api, Inner, Status, CHANGE_INTERVAL};
use crate::config::{codes, ConfigError, IkeConfigRaw, IpsecConfigRaw, IpsecServerSpec};
use crate::secret::SecretBytes;

impl Api {
    pub(super) fn create(self: &Arc<Self>, p: &Params) -> Result<Value, ApiError> {
        const ACTION: &str = "CreateIpsecServer";
        self.check_gateway(p.required("VpnGatewayId")?)?;
        let mut inner = self.lock();
        if let Some(answer) = replay(&inner.persisted, ACTION, p)? {
            return Ok(answer);
        }
        let local_subnet = p.required("LocalSubnet")?;
        let client_ip_pool = p.required("ClientIpPool")?;
        let dry_run = p.bool("DryRun")?.unwrap_or(false);
        let spec = IpsecServerSpec {
            ipsec_server_name: p.get("IpSecServerName").map(str::to_owned),
            local_subnet: state::local_subnet_items(local_subnet),
            client_ip_pool: client_ip_pool.to_owned(),
            effect_immediately: p.bool("EffectImmediately")?.unwrap_or(false),
            psk_enabled: p.bool("PskEnabled")?,
            psk: p.get("Psk").map(|s| SecretBytes::from_slice(s.as_bytes())),
            psk_file: None,
            dns: Vec::new(),
            ike_config: IkeConfigRaw::from_api_json(p.get("IkeConfig").unwrap_or(""))
                .map_err(ApiError::config)?,
            ipsec_config: IpsecConfigRaw::from_api_json(p.get("IpsecConfig").unwrap_or(""))
                .map_err(ApiError::config)?,
        };
        let server = self.validate_spec(&spec)?;
        if inner.status == Status::Updating {
            return Err(ApiError::configuring());
        }
        if inner.persisted.server.is_some() {
            return Err(ApiError::server_exists());
        }
        Self::check_change(&inner, dry_run)?;
        let rec = ServerRecord::from_config(server_id(), sign::format_utc(now_unix()), &server);
        let answer = json!({
            "IpsecServerId": rec.id,
            "IpsecServerName": rec.name.clone().unwrap_or_default(),
            "CreationTime": rec.creation_time,
            "RegionId": self.gateway.region_id(),
            "VpnGatewayId": self.gateway.vpn_gateway_id(),
        });
        let ei = server.effect_immediately();
        self.commit(&mut inner, (ACTION, p), Some(rec.clone()), &answer, ei)?;
        info!(
            id = rec.id,
            pool = rec.client_ip_pool,
            "IPsec server created"
        );
        self.spawn_apply(&mut inner, Some(server), ei, true);
        Ok(answer)
    }

    pub(super) fn update(self: &Arc<Self>, p: &Params) -> Result<Value, ApiError> {
        const ACTION: &str = "UpdateIpsecServer";
        let id = p.required("IpsecServerId")?;
        let mut inner = self.lock();
        if let Some(answer) = replay(&inner.persisted, ACTION, p)? {
            return Ok(answer);
        }
        let Some(old) = inner.persisted.server.clone().filter(|s| s.id == id) else {
            return Err(ApiError::server_not_found());
        };
        let dry_run = p.bool("DryRun")?.unwrap_or(false);
        let mut rec = old.clone();
        if let Some(n) = p
            .get("IpsecServerName")
            .or_else(|| p.get("IpSecServerName"))
        {
            rec.name = Some(n.to_owned());
        }
        if let Some(v) = p.get("LocalSubnet") {
            rec.local_subnet = state::local_subnet_items(v);
        }
        if let Some(v) = p.get("ClientIpPool") {
            rec.client_ip_pool = v.to_owned();
        }
        let effect_immediately = p.bool("EffectImmediately")?;
        if let Some(ei) = effect_immediately {
            rec.effect_immediately = ei;
        }
        if p.bool("PskEnabled")? == Some(false) {
            return Err(ApiError::config(ConfigError::new(
                codes::ILLEGAL_AUTH_METHOD,
                "PskEnabled is false, which leaves no authentication method (PSK is the only one supported)",
            )));
        }
        if let Some(v) = p.get("Psk") {
            rec.psk = v.to_owned();
        }
        rec.ike_config = merge_json(
            &rec.ike_config,
            p.get("IkeConfig"),
            codes::ILLEGAL_IKE_CONFIG,
            "IkeConfig",
        )?;
        rec.ipsec_config = merge_json(
            &rec.ipsec_config,
            p.get("IpsecConfig"),
            codes::ILLEGAL_IPSEC_CONFIG,
            "IpsecConfig",
        )?;
        let server = self.validate_record(&rec)?;
        Self::check_change(&inner, dry_run)?;
        // Normalized (canonical CIDRs, full IKE/IPsec JSON) for List.
        let rec = ServerRecord::from_config(rec.id.clone(), rec.creation_time.clone(), &server);
        let answer = json!({
            "IpsecServerId": rec.id,
            "IpsecServerName": rec.name.clone().unwrap_or_default(),
            "CreationTime": rec.creation_time,
            "RegionId": self.gateway.region_id(),
            "VpnGatewayId": self.gateway.vpn_gateway_id(),
            "LocalSubnet": rec.local_subnet_api(),
            "ClientIpPool": rec.client_ip_pool,
            "EffectImmediately": rec.effect_immediately,
            "PskEnabled": true,
            "IkeConfig": rec.ike_config.to_string(),
            "IpsecConfig": rec.ipsec_config.to_string(),
        });
        let ei = effect_immediately.unwrap_or(false);
        self.commit(&mut inner, (ACTION, p), Some(rec), &answer, ei)?;
        info!(id, "IPsec server updated");
        self.spawn_apply(&mut inner, Some(server), ei, true);
        Ok(answer)
    }

    pub(super) fn delete(self: &Arc<Self>, p: &Params) -> Result<Value, ApiError> {
        const ACTION: &str = "DeleteIpsecServer";
        let id = p.required("IpsecServerId")?;
        let mut inner = self.lock();
        if let Some(answer) = replay(&inner.persisted, ACTION, p)? {
            return Ok(answer);
        }
        if inner.persisted.server.as_ref().is_none_or(|s| s.id != id) {
            return Err(ApiError::server_not_found());
        }
        let dry_run = p.bool("DryRun")?.unwrap_or(false);
        Self::check_change(&inner, dry_run)?;
        let answer = json!({});
        self.commit(&mut inner, (ACTION, p), None, &answer, true)?;
        info!(id, "IPsec server deleted");
        self.spawn_apply(&mut inner, None, true, true);
        Ok(answer)
    }

    /// The checks every change makes after validation, in the seed's order of concerns.
    fn check_change(inner: &Inner, dry_run: bool) -> Result<(), ApiError> {
        if inner.status == Status::Updating {
            return Err(ApiError::configuring());
        }
        if dry_run {
            return Err(ApiError::dry_run());
        }
        if inner
            .last_change
            .is_some_and(|t| t.elapsed() < CHANGE_INTERVAL)
        {
            return Err(ApiError::conflict());
        }
        Ok(())
    }

    /// Persists the server record `server` and the answer to this request (for a ClientToken
    /// replay), then (only if that worked) commits both in memory. In cluster mode the
    /// store is etcd ([`super::shared`]): a transaction on the generation this node last
    /// saw, lost to another node's change with `VpnGateway.Configuring`; the state file
    /// then keeps this node's copy. `effect_immediately`: what the change asks of every node.
    fn commit(
        &self,
        inner: &mut Inner,
        (action, p): (&str, &Params),
        server: Option<ServerRecord>,
        answer: &Value,
        effect_immediately: bool,
    ) -> Result<(), ApiError> {
        let mut next = inner.persisted.clone();
        next.server = server;
        remember(&mut next, action, p, answer);
        let Some(shared) = self.shared.get() else {
            state::store(&self.state_path, &next).map_err(|e| {
                error!("writing {}: {e}", self.state_path.display());
                ApiError::not_saved()
            })?;
            inner.persisted = next;
            return Ok(());
        };
        let mut doc = Document {
            state: next,
            effect_immediately,
        };
        let bytes = encode(&mut doc).map_err(|e| {
            error!("cluster: encoding the IPsec server definition: {e}");
            ApiError::not_saved()
        })?;
        let generation = match shared.store(inner.seen, bytes) {
            Ok(g) => g,
            Err(StoreError::Conflict) => {
                info!(
                    base = inner.seen,
                    "cluster: another node changed the IPsec server first; this change is refused"
                );
                return Err(ApiError::configuring());
            }
            Err(StoreError::Unavailable(e)) => {
                error!("cluster: storing the IPsec server definition in etcd: {e}");
                return Err(ApiError::not_saved());
            }
        };
        self.keep_shared(inner, doc.state, generation);
        Ok(())
    }
}

/// Update: the keys given in `patch` (a JSON object) replace those of `base`.
fn merge_json(
    base: &Value,
    patch: Option<&str>,
    code: &'static str,
    name: &str,
) -> Result<Value, ApiError> {
    let Some(patch) = patch.filter(|p| !p.trim().is_empty()) else {
        return Ok(base.clone());
    };
    let patch: Map<String, Value> = serde_json::from_str(patch)
        .map_err(|_| ApiError::new(400, code, format!("{name} is not a JSON object")))?;
    let mut out = base.as_object().cloned().unwrap_or_default();
    out.extend(patch);
    Ok(Value::Object(out))
}

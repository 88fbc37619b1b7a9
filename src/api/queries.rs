//! The actions that only read: ListIpsecServers (with the cloud API's paging and filters)
//! and DescribeVpnGateway (the gateway's status, `updating` while a change is applied).
//! In cluster mode both answer for the cluster ([`super::shared::ClusterView`]): `updating`
//! until every live node applied the newest generation, the online count summed over the
//! live nodes; when etcd cannot tell, this node's own.

use serde_json::{json, Value};

use super::errors::ApiError;
use super::params::Params;
use super::shared::ClusterView;
use super::state::ServerRecord;
use super::{Api, Status};

/// ListIpsecServers: MaxResults bounds and default.
const MAX_RESULTS: usize = 20;
const DEFAULT_MAX_RESULTS: usize = 10;

impl Api {
    pub(super) fn list(&self, p: &Params) -> Result<Value, ApiError> {
        if let Some(gw) = p.get("VpnGatewayId").filter(|g| !g.is_empty()) {
            self.check_gateway(gw)?;
        }
        let max = match p.get("MaxResults").filter(|v| !v.is_empty()) {
            None => DEFAULT_MAX_RESULTS,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_RESULTS).contains(n))
                .ok_or_else(|| {
                    ApiError::illegal(
                        "MaxResults",
                        format!("MaxResults must be 1..={MAX_RESULTS}"),
                    )
                })?,
        };
        let start = match p.get("NextToken").filter(|v| !v.is_empty()) {
            None => 0,
            Some(v) => v.parse::<usize>().map_err(|_| {
                ApiError::illegal("NextToken", "NextToken is not one this endpoint issued")
            })?,
        };
        let ids = p.list("IpsecServerId");
        let name = p.get("IpsecServerName").filter(|n| !n.is_empty());
        let rec = self.lock().persisted.server.clone();
        let online = match self.cluster_view() {
            Some(v) => v.online,
            None => self.backend.online_clients() as u64,
        };
        let all: Vec<ServerRecord> = rec
            .into_iter()
            .filter(|r| ids.is_empty() || ids.contains(&r.id.as_str()))
            .filter(|r| name.is_none_or(|n| r.name.as_deref() == Some(n)))
            .collect();
        let total = all.len();
        let page: Vec<Value> = all
            .iter()
            .skip(start)
            .take(max)
            .map(|r| self.server_json(r, online))
            .collect();
        let next = if start + max < total {
            (start + max).to_string()
        } else {
            String::new()
        };
        Ok(json!({
            "IpsecServers": page,
            "TotalCount": total,
            "MaxResults": max,
            "NextToken": next,
        }))
    }

    fn server_json(&self, r: &ServerRecord, online: u64) -> Value {
        json!({
            "IpsecServerId": r.id,
            "IpsecServerName": r.name.clone().unwrap_or_default(),
            "CreationTime": r.creation_time,
            "RegionId": self.gateway.region_id(),
            "VpnGatewayId": self.gateway.vpn_gateway_id(),
            "LocalSubnet": r.local_subnet_api(),
            "ClientIpPool": r.client_ip_pool,
            "EffectImmediately": r.effect_immediately,
            "PskEnabled": true,
            "Psk": r.psk,
            "IkeConfig": r.ike_config,
            "IpsecConfig": r.ipsec_config,
            "OnlineClientCount": online,
            "MaxConnections": self.gateway.max_connections().get(),
            "InternetIp": self.internet_ip(),
            "MultiFactorAuthEnabled": false,
            "IDaaSInstanceId": "",
        })
    }

    pub(super) fn describe(&self, p: &Params) -> Result<Value, ApiError> {
        self.check_gateway(p.required("VpnGatewayId")?)?;
        let local = self.lock().status;
        let updating =
            local == Status::Updating || self.cluster_view().is_some_and(|v| !v.behind.is_empty());
        let status = if updating { "updating" } else { "active" };
        Ok(json!({
            "VpnGatewayId": self.gateway.vpn_gateway_id(),
            "RegionId": self.gateway.region_id(),
            "Name": self.gateway.vpn_gateway_id(),
            "Status": status,
            "BusinessStatus": "Normal",
            "InternetIp": self.internet_ip(),
            "CreateTime": self.created_ms,
            "IpsecVpn": "enable",
            "SslVpn": "enable",
            "SslMaxConnections": self.gateway.max_connections().get(),
            "Spec": "self-hosted",
            "ChargeType": "PostPay",
            "Description": "ipsec-server",
        }))
    }

    /// Cluster mode: what the live nodes report (`None` outside cluster mode, or when etcd
    /// does not answer).
    fn cluster_view(&self) -> Option<ClusterView> {
        self.shared.get()?.view()
    }

    /// The first specific listen address, else empty.
    fn internet_ip(&self) -> String {
        self.gateway
            .listen_addrs()
            .iter()
            .find(|a| !a.is_unspecified())
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

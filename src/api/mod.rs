//! The control API (DESIGN.md §1): the RPC style of the VPC API, version 2016-04-28, so the
//! official SDKs (`alibabacloud-vpc20160428` with V3 signatures, `aliyun-python-sdk-vpc`
//! with RPC signature v1) drive the daemon unchanged.
//!
//! Actions: CreateIpsecServer, UpdateIpsecServer, DeleteIpsecServer, ListIpsecServers,
//! DescribeVpnGateway. Parameters come from the query and a form body; `Action` is a
//! parameter (v1) or the `x-acs-action` header (V3). Responses are JSON, or XML with
//! `Format=XML`; errors carry `RequestId, HostId, Code, Message, Recommend` and the HTTP
//! status of the seed's table.
//!
//! Invariants:
//! - every request is authenticated ([`sign`]) before any parameter is looked at;
//! - at most one change (create/update/delete) is applied at a time: while one is being
//!   applied the gateway is `updating` and further changes get `VpnGateway.Configuring`;
//! - the persisted state ([`state`]) is written before a change is applied, so an accepted
//!   change survives a crash; the [`Backend`] then converges the data plane to it;
//! - secrets (PSK, AccessKey secrets) are never logged; the PSK is only returned by
//!   ListIpsecServers, as the cloud API does.

pub mod http;
pub mod sign;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use crate::config::{
    codes, host_networks_excluding, ApiConfig, Config, ConfigError, GatewayConfig, IkeConfigRaw,
    IpsecConfigRaw, IpsecServerConfig, IpsecServerSpec,
};
use crate::secret::SecretBytes;
use http::{Request, Response};
use state::{Persisted, ServerRecord, TokenEntry};

/// The API version we speak.
pub const VERSION: &str = "2016-04-28";
/// A change keeps the gateway `updating` at least this long (see README: the window in
/// which a second change gets `VpnGateway.Configuring`).
pub const MIN_APPLY: Duration = Duration::from_secs(1);
/// A change accepted less than this ago makes the next one `OperationConflict`.
pub const CHANGE_INTERVAL: Duration = Duration::from_secs(3);
/// ListIpsecServers: MaxResults bounds and default.
const MAX_RESULTS: usize = 20;
const DEFAULT_MAX_RESULTS: usize = 10;

/// What applies a server to the data plane (the daemon's serving stack; a fake in tests).
pub trait Backend: Send + Sync {
    /// Makes the data plane serve `server` (`None`: stop serving). `effect_immediately`:
    /// existing tunnels are torn down so clients renegotiate with the new settings.
    /// Blocks until done.
    fn apply(
        &self,
        server: Option<&IpsecServerConfig>,
        effect_immediately: bool,
    ) -> Result<(), String>;
    /// Clients with an established IKE SA now.
    fn online_clients(&self) -> usize;
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }
    pub fn forbidden(why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("User not authorized to operate on the specified resource: {why}."),
        )
    }
    pub fn access_key_not_found() -> Self {
        Self::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )
    }
    pub fn signature_mismatch() -> Self {
        Self::new(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        )
    }
    pub fn nonce_used() -> Self {
        Self::new(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        )
    }
    pub fn internal() -> Self {
        Self::new(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error.",
        )
    }
    fn missing(name: &str) -> Self {
        Self::new(
            400,
            &format!("MissingParam.{name}"),
            format!("The input parameter {name} is mandatory."),
        )
    }
    fn illegal(name: &str, why: impl Into<String>) -> Self {
        Self::new(400, &format!("IllegalParam.{name}"), why)
    }
    fn config(e: ConfigError) -> Self {
        Self::new(400, e.code, e.message)
    }
    fn configuring() -> Self {
        Self::new(
            400,
            "VpnGateway.Configuring",
            "The specified service is configuring.",
        )
    }
    fn conflict() -> Self {
        Self::new(
            409,
            "OperationConflict",
            "The operation against this instance is too frequent, please try again later.",
        )
    }
    fn dry_run() -> Self {
        Self::new(
            400,
            "DryRunOperation",
            "Request validation has been passed with DryRun flag set.",
        )
    }
}

/// The gateway's status as DescribeVpnGateway reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Updating,
    Active,
}

struct Inner {
    persisted: Persisted,
    status: Status,
    last_change: Option<Instant>,
    nonces: sign::NonceCache,
}

/// The control API service: authentication, actions, persisted state.
pub struct Api {
    gateway: GatewayConfig,
    api: ApiConfig,
    backend: Arc<dyn Backend>,
    state_path: PathBuf,
    inner: Mutex<Inner>,
    created_ms: i64,
}

/// Request parameters, decoded, query first.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing(name))
    }
    fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::illegal(
                name,
                format!("{name} must be true or false, not {:?}", truncate(v)),
            )),
        }
    }
    /// SHA-256 over the parameters that define the request (not the signature fields).
    fn fingerprint(&self) -> String {
        const SKIP: &[&str] = &[
            "Signature",
            "SignatureNonce",
            "Timestamp",
            "AccessKeyId",
            "SignatureMethod",
            "SignatureVersion",
            "SignatureType",
            "Format",
            "Version",
            "Action",
        ];
        let mut v: Vec<&(String, String)> = self
            .0
            .iter()
            .filter(|(k, _)| !SKIP.contains(&k.as_str()))
            .collect();
        v.sort();
        let mut h = Sha256::new();
        for (k, val) in v {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(val.as_bytes());
            h.update([0]);
        }
        sign::hex(&h.finalize())
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn request_id() -> String {
    let mut r = rand::thread_rng();
    let hex: String = (0..32)
        .map(|_| char::from_digit(r.gen_range(0..16), 16).unwrap_or('0'))
        .collect::<String>()
        .to_ascii_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn server_id() -> String {
    let s: String = rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(21)
        .map(|c| (c as char).to_ascii_lowercase())
        .collect();
    format!("iss-{s}")
}

impl Api {
    /// Opens the API over `config`: loads `state_dir/api-state.json` if present (it wins over
    /// `[ipsec_server]`), else adopts the file's `[ipsec_server]`. Returns the service and
    /// the server to serve at start (apply it with [`Api::start`]).
    pub fn open(config: &Config, backend: Arc<dyn Backend>) -> Result<Arc<Self>, String> {
        let api = config
            .api()
            .ok_or("the control API is not configured ([api])")?
            .clone();
        let gateway = config.gateway().clone();
        let state_path = state::path(gateway.state_dir());
        let persisted = match state::load(&state_path).map_err(|e| e.to_string())? {
            Some(p) => {
                if config.ipsec_server().is_some() {
                    warn!(
                        "{} exists: the API's state wins over [ipsec_server] in the config file",
                        state_path.display()
                    );
                }
                p
            }
            None => Persisted {
                version: 1,
                server: config.ipsec_server().map(|s| {
                    ServerRecord::from_config(server_id(), sign::format_utc(now_unix()), s)
                }),
                tokens: Vec::new(),
            },
        };
        let created_ms = now_unix() * 1000;
        Ok(Arc::new(Self {
            gateway,
            api,
            backend,
            state_path,
            inner: Mutex::new(Inner {
                persisted,
                status: Status::Active,
                last_change: None,
                nonces: sign::NonceCache::default(),
            }),
            created_ms,
        }))
    }

    /// Applies the persisted server (if any) in the background; the gateway is `updating`
    /// until it serves.
    pub fn start(self: &Arc<Self>) -> Result<(), String> {
        let mut inner = self.lock();
        let Some(rec) = inner.persisted.server.clone() else {
            return Ok(());
        };
        let server = self
            .validate_record(&rec)
            .map_err(|e| format!("the persisted IPsec server is invalid: {}", e.message))?;
        self.spawn_apply(&mut inner, Some(server), false, false);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every mutation is a
        // single assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn validate_record(&self, rec: &ServerRecord) -> Result<IpsecServerConfig, ApiError> {
        let spec = rec.spec().map_err(ApiError::config)?;
        self.validate_spec(&spec)
    }

    fn validate_spec(&self, spec: &IpsecServerSpec) -> Result<IpsecServerConfig, ApiError> {
        let host = host_networks_excluding(self.gateway.tun_name());
        let (server, warnings) = spec
            .validate(&host, &mut rand::thread_rng())
            .map_err(ApiError::config)?;
        for w in warnings {
            warn!("{w}");
        }
        Ok(server)
    }

    /// Marks the gateway `updating` and applies `server` on a thread.
    fn spawn_apply(
        self: &Arc<Self>,
        inner: &mut Inner,
        server: Option<IpsecServerConfig>,
        effect_immediately: bool,
        is_change: bool,
    ) {
        inner.status = Status::Updating;
        if is_change {
            inner.last_change = Some(Instant::now());
        }
        let me = self.clone();
        let run = move || {
            let t0 = Instant::now();
            match me.backend.apply(server.as_ref(), effect_immediately) {
                Ok(()) => info!("IPsec server configuration applied"),
                Err(e) => error!("applying the IPsec server configuration failed: {e}"),
            }
            if let Some(rest) = MIN_APPLY.checked_sub(t0.elapsed()) {
                std::thread::sleep(rest);
            }
            me.lock().status = Status::Active;
        };
        if let Err(e) = std::thread::Builder::new()
            .name("api-apply".into())
            .spawn(run)
        {
            error!("cannot spawn the apply thread: {e}");
            inner.status = Status::Active;
        }
    }

    /// Handles one HTTP request.
    pub fn handle(self: &Arc<Self>, req: &Request, peer: SocketAddr) -> Response {
        let mut params = sign::form_decode(&req.query);
        let query_len = params.len();
        let is_form = req
            .header("content-type")
            .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form && !req.body.is_empty() {
            params.extend(sign::form_decode(&String::from_utf8_lossy(&req.body)));
        }
        let params = Params(params);
        let xml = params
            .get("Format")
            .is_some_and(|f| f.eq_ignore_ascii_case("XML"));
        let request_id = request_id();
        let action = params
            .get("Action")
            .or_else(|| req.header("x-acs-action"))
            .unwrap_or("")
            .to_owned();
        let result = self.authenticated(req, &params, query_len, &action);
        let (status, body) = match result {
            Ok(mut v) => {
                if let Value::Object(m) = &mut v {
                    m.insert("RequestId".into(), Value::String(request_id.clone()));
                }
                info!(%peer, action, request_id, "API request done");
                (200, v)
            }
            Err(e) => {
                info!(%peer, action, request_id, code = e.code, status = e.status, "API request refused");
                let host = req.header("host").unwrap_or("ipsec-server").to_owned();
                (
                    e.status,
                    json!({
                        "RequestId": request_id,
                        "HostId": host,
                        "Code": e.code,
                        "Message": e.message,
                        "Recommend": format!("https://github.com/ipsec-server/ipsec-server#control-api-error-codes ({})", e.code),
                    }),
                )
            }
        };
        if xml {
            let root = if status == 200 {
                format!("{action}Response")
            } else {
                "Error".to_owned()
            };
            Response {
                status,
                content_type: "application/xml",
                body: render_xml(&root, &body).into_bytes(),
            }
        } else {
            Response {
                status,
                content_type: "application/json",
                body: body.to_string().into_bytes(),
            }
        }
    }

    fn authenticated(
        self: &Arc<Self>,
        req: &Request,
        params: &Params,
        query_len: usize,
        action: &str,
    ) -> Result<Value, ApiError> {
        {
            let mut inner = self.lock();
            let signed = sign::Signed {
                method: &req.method,
                path: &req.path,
                query: &params.0[..query_len],
                form: &params.0[query_len..],
                headers: &req.headers,
                body: &req.body,
            };
            sign::verify(
                &self.api,
                &signed,
                now_unix(),
                Instant::now(),
                &mut inner.nonces,
            )?;
        }
        let version = params
            .get("Version")
            .or_else(|| req.header("x-acs-version"));
        if let Some(v) = version.filter(|v| *v != VERSION) {
            return Err(ApiError::new(
                400,
                "InvalidVersion",
                format!("Specified parameter Version {:?} is not valid; this endpoint speaks {VERSION}.", truncate(v)),
            ));
        }
        if let Some(r) = params.get("RegionId").filter(|r| !r.is_empty()) {
            if r != self.gateway.region_id() {
                return Err(ApiError::new(
                    404,
                    "InvalidRegionId.NotFound",
                    format!("The specified region {:?} does not exist.", truncate(r)),
                ));
            }
        }
        match action {
            "CreateIpsecServer" => self.create(params),
            "UpdateIpsecServer" => self.update(params),
            "DeleteIpsecServer" => self.delete(params),
            "ListIpsecServers" => self.list(params),
            "DescribeVpnGateway" => self.describe(params),
            "" => Err(ApiError::new(400, "MissingParameter", "The input parameter Action is mandatory.")),
            other => Err(ApiError::new(
                404,
                "InvalidAction.NotFound",
                format!("Specified api {:?} is not found; this endpoint implements CreateIpsecServer, UpdateIpsecServer, DeleteIpsecServer, ListIpsecServers and DescribeVpnGateway.", truncate(other)),
            )),
        }
    }

    fn check_gateway(&self, id: &str) -> Result<(), ApiError> {
        if id != self.gateway.vpn_gateway_id() {
            return Err(ApiError::new(
                404,
                "InvalidVpnGatewayInstanceId.NotFound",
                "The specified vpn gateway instance id does not exist.",
            ));
        }
        Ok(())
    }

    /// ClientToken: the stored answer of an earlier identical request.
    fn replay(inner: &Inner, action: &str, params: &Params) -> Result<Option<Value>, ApiError> {
        let Some(token) = params.get("ClientToken").filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if !token.is_ascii() || token.len() > 64 {
            return Err(ApiError::illegal(
                "ClientToken",
                "ClientToken must be at most 64 ASCII characters",
            ));
        }
        let fp = params.fingerprint();
        match inner
            .persisted
            .tokens
            .iter()
            .find(|t| t.action == action && t.token == token)
        {
            Some(t) if t.fingerprint == fp => Ok(Some(t.response.clone())),
            Some(_) => Err(ApiError::new(
                400,
                "IdempotentParameterMismatch",
                "The request uses the same ClientToken as a previous, but non-identical request.",
            )),
            None => Ok(None),
        }
    }

    fn remember(persisted: &mut Persisted, action: &str, params: &Params, response: &Value) {
        let Some(token) = params.get("ClientToken").filter(|t| !t.is_empty()) else {
            return;
        };
        let tokens = &mut persisted.tokens;
        tokens.push(TokenEntry {
            action: action.to_owned(),
            token: token.to_owned(),
            fingerprint: params.fingerprint(),
            response: response.clone(),
        });
        if tokens.len() > state::MAX_TOKENS {
            let excess = tokens.len() - state::MAX_TOKENS;
            tokens.drain(..excess);
        }
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

    /// Persists `next`, then (only if that worked) commits it in memory.
    fn commit(&self, inner: &mut Inner, next: Persisted) -> Result<(), ApiError> {
        state::store(&self.state_path, &next).map_err(|e| {
            error!("writing {}: {e}", self.state_path.display());
            ApiError::new(
                500,
                "InternalError",
                "The state could not be saved; nothing was changed.",
            )
        })?;
        inner.persisted = next;
        Ok(())
    }

    fn create(self: &Arc<Self>, p: &Params) -> Result<Value, ApiError> {
        const ACTION: &str = "CreateIpsecServer";
        self.check_gateway(p.required("VpnGatewayId")?)?;
        let mut inner = self.lock();
        if let Some(answer) = Self::replay(&inner, ACTION, p)? {
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
            return Err(ApiError::new(
                400,
                "OperationFailed.IPsecServerExist",
                "An IPsec server already exists in the VPN gateway.",
            ));
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
        let mut staged = inner.persisted.clone();
        staged.server = Some(rec.clone());
        Self::remember(&mut staged, ACTION, p, &answer);
        self.commit(&mut inner, staged)?;
        info!(
            id = rec.id,
            pool = rec.client_ip_pool,
            "IPsec server created"
        );
        let ei = server.effect_immediately();
        self.spawn_apply(&mut inner, Some(server), ei, true);
        Ok(answer)
    }

    fn update(self: &Arc<Self>, p: &Params) -> Result<Value, ApiError> {
        const ACTION: &str = "UpdateIpsecServer";
        let id = p.required("IpsecServerId")?;
        let mut inner = self.lock();
        if let Some(answer) = Self::replay(&inner, ACTION, p)? {
            return Ok(answer);
        }
        let Some(old) = inner.persisted.server.clone().filter(|s| s.id == id) else {
            return Err(not_found_server());
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
        let mut staged = inner.persisted.clone();
        staged.server = Some(rec);
        Self::remember(&mut staged, ACTION, p, &answer);
        self.commit(&mut inner, staged)?;
        info!(id, "IPsec server updated");
        self.spawn_apply(
            &mut inner,
            Some(server),
            effect_immediately.unwrap_or(false),
            true,
        );
        Ok(answer)
    }

    fn delete(self: &Arc<Self>, p: &Params) -> Result<Value, ApiError> {
        const ACTION: &str = "DeleteIpsecServer";
        let id = p.required("IpsecServerId")?;
        let mut inner = self.lock();
        if let Some(answer) = Self::replay(&inner, ACTION, p)? {
            return Ok(answer);
        }
        if inner.persisted.server.as_ref().is_none_or(|s| s.id != id) {
            return Err(not_found_server());
        }
        let dry_run = p.bool("DryRun")?.unwrap_or(false);
        Self::check_change(&inner, dry_run)?;
        let answer = json!({});
        let mut staged = inner.persisted.clone();
        staged.server = None;
        Self::remember(&mut staged, ACTION, p, &answer);
        self.commit(&mut inner, staged)?;
        info!(id, "IPsec server deleted");
        self.spawn_apply(&mut inner, None, true, true);
        Ok(answer)
    }

    fn list(&self, p: &Params) -> Result<Value, ApiError> {
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
        // IpsecServerId is a list: `IpsecServerId.1=..` (flattened) or a single value.
        let ids: Vec<&str> =
            p.0.iter()
                .filter(|(k, _)| k == "IpsecServerId" || k.starts_with("IpsecServerId."))
                .map(|(_, v)| v.as_str())
                .collect();
        let name = p.get("IpsecServerName").filter(|n| !n.is_empty());
        let rec = self.lock().persisted.server.clone();
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
            .map(|r| self.server_json(r))
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

    fn server_json(&self, r: &ServerRecord) -> Value {
        let internet_ip = self
            .gateway
            .listen_addrs()
            .iter()
            .find(|a| !a.is_unspecified())
            .map(ToString::to_string)
            .unwrap_or_default();
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
            "OnlineClientCount": self.backend.online_clients(),
            "MaxConnections": self.gateway.max_connections().get(),
            "InternetIp": internet_ip,
            "MultiFactorAuthEnabled": false,
            "IDaaSInstanceId": "",
        })
    }

    fn describe(&self, p: &Params) -> Result<Value, ApiError> {
        self.check_gateway(p.required("VpnGatewayId")?)?;
        let inner = self.lock();
        let status = match inner.status {
            Status::Updating => "updating",
            Status::Active => "active",
        };
        let internet_ip = self
            .gateway
            .listen_addrs()
            .iter()
            .find(|a| !a.is_unspecified())
            .map(ToString::to_string)
            .unwrap_or_default();
        Ok(json!({
            "VpnGatewayId": self.gateway.vpn_gateway_id(),
            "RegionId": self.gateway.region_id(),
            "Name": self.gateway.vpn_gateway_id(),
            "Status": status,
            "BusinessStatus": "Normal",
            "InternetIp": internet_ip,
            "CreateTime": self.created_ms,
            "IpsecVpn": "enable",
            "SslVpn": "enable",
            "SslMaxConnections": self.gateway.max_connections().get(),
            "Spec": "self-hosted",
            "ChargeType": "PostPay",
            "Description": "ipsec-server",
        }))
    }
}

fn not_found_server() -> ApiError {
    ApiError::new(
        404,
        "InvalidIpsecServerId.NotFound",
        "The specified IPsec server does not exist.",
    )
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

/// JSON → the XML the RPC API returns: objects become elements, arrays repeat their key.
pub fn render_xml(root: &str, v: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    xml_element(&mut out, root, v);
    out
}

fn xml_element(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Array(items) => {
            for item in items {
                xml_element(out, name, item);
            }
        }
        Value::Object(m) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in m {
                xml_element(out, k, v);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", xml_escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests;

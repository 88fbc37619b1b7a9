//! The control API (docs/DESIGN.md §1): the RPC style of the VPC API, version 2016-04-28, so the
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
//!
//! Layout: this file holds the service ([`Api`]: state, locking, applying a change in the
//! background) and the dispatch of one request; [`params`] decodes the parameters,
//! [`changes`] and [`queries`] are the actions, [`idempotency`] the ClientToken replay,
//! [`errors`] the error codes, [`render`] the JSON/XML answers, [`ids`] the generated ids,
//! [`shared`] cluster mode's store (the state in etcd instead of `state_dir`, one definition
//! for every node: [`Api::share`], [`Api::adopt`]).

pub mod http;
pub mod requests;
pub mod shared;
pub mod sign;
pub mod state;

mod changes;
mod errors;
mod idempotency;
mod ids;
mod params;
mod queries;
mod render;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tracing::{error, info, warn};

use crate::config::{ApiConfig, Config, GatewayConfig, IpsecServerConfig, IpsecServerSpec};
use crate::io::host::host_networks_excluding;
pub use errors::ApiError;
use http::{Request, Response};
use params::Params;
use shared::{SharedDefinition, Stored};
use state::{Persisted, ServerRecord};

/// The API version we speak.
pub const VERSION: &str = "2016-04-28";
/// A change keeps the gateway `updating` at least this long (see README: the window in
/// which a second change gets `VpnGateway.Configuring`).
pub const MIN_APPLY: Duration = Duration::from_secs(1);
/// A change accepted less than this ago makes the next one `OperationConflict`.
pub const CHANGE_INTERVAL: Duration = Duration::from_secs(3);

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
    /// Cluster mode: the generation `persisted` is (0: this node's own copy; always 0
    /// outside cluster mode).
    generation: u64,
    /// Cluster mode: the newest generation seen in the store, also one that was refused
    /// (the base of the next change's transaction).
    seen: u64,
    /// Cluster mode: the generation whose apply succeeded last.
    applied: u64,
}

/// What [`Api::adopt`] did with a document read from the cluster's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// It is being applied.
    Applying,
    /// Nothing to do (this node has it, or there is none).
    Unchanged,
    /// A change is being applied here: try again shortly.
    Busy,
    /// Malformed or invalid: logged and ignored, this node keeps serving what it has.
    Refused,
}

/// The control API service: authentication, actions, persisted state.
pub struct Api {
    gateway: GatewayConfig,
    api: ApiConfig,
    backend: Arc<dyn Backend>,
    state_path: PathBuf,
    /// Cluster mode: where the server definition is shared ([`Api::share`]).
    shared: OnceLock<Arc<dyn SharedDefinition>>,
    inner: Mutex<Inner>,
    created_ms: i64,
    /// Requests by action and code (metrics).
    requests: requests::RequestCounts,
}

/// The wall clock in Unix seconds (signature timestamps, creation times).
fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
        state::private_state_dir(gateway.state_dir()).map_err(|e| format!("state_dir: {e}"))?;
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
                    ServerRecord::from_config(ids::server_id(), sign::format_utc(now_unix()), s)
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
            shared: OnceLock::new(),
            inner: Mutex::new(Inner {
                persisted,
                status: Status::Active,
                last_change: None,
                nonces: sign::NonceCache::default(),
                generation: 0,
                seen: 0,
                applied: 0,
            }),
            created_ms,
            requests: requests::RequestCounts::default(),
        }))
    }

    /// Applies the persisted server (if any) in the background; the gateway is `updating`
    /// until it serves. True when there is a server to apply (the backend's first apply).
    pub fn start(self: &Arc<Self>) -> Result<bool, String> {
        let Some(server) = self.server_at_start()? else {
            return Ok(false);
        };
        let mut inner = self.lock();
        self.spawn_apply(&mut inner, Some(server), false, false);
        Ok(true)
    }

    /// The server [`Api::start`] applies, if any (validated).
    pub fn server_at_start(&self) -> Result<Option<IpsecServerConfig>, String> {
        let Some(rec) = self.lock().persisted.server.clone() else {
            return Ok(None);
        };
        self.validate_record(&rec)
            .map(Some)
            .map_err(|e| format!("the persisted IPsec server is invalid: {}", e.message))
    }

    /// Cluster mode: changes are stored in `shared` (the local state file stays as this
    /// node's copy); call before [`Api::start_shared`].
    pub fn share(&self, shared: Arc<dyn SharedDefinition>) {
        if self.shared.set(shared).is_err() {
            warn!("the API's shared store was set twice; the first is kept");
        }
    }

    /// Cluster mode's [`Api::start`]: `first` is what the store held at start (`None`: it
    /// did not answer in time). A stored document is applied; with none yet, this node's
    /// server (its state file or `[ipsec_server]`) is stored for every node and served;
    /// without an answer this node serves its own copy until the store answers.
    pub fn start_shared(self: &Arc<Self>, first: Option<&Stored>) -> Result<bool, String> {
        match first {
            None => {
                warn!("cluster: etcd did not answer in time: serving this node's own copy of the IPsec server until it does");
            }
            Some(Stored { document: None, .. }) => self.publish(),
            Some(stored) => {
                if self.adopt(stored) == Adopted::Applying {
                    return Ok(true);
                }
            }
        }
        self.start()
    }

    /// Stores this node's server as the cluster's first definition (when etcd holds none).
    fn publish(&self) {
        let Some(shared) = self.shared.get() else {
            return;
        };
        let mut inner = self.lock();
        if inner.persisted.server.is_none() {
            return;
        }
        let mut doc = shared::Document {
            state: inner.persisted.clone(),
            effect_immediately: false,
        };
        let stored = shared::encode(&mut doc)
            .map_err(shared::StoreError::Unavailable)
            .and_then(|bytes| shared.store(0, bytes));
        match stored {
            Ok(g) => {
                inner.generation = g;
                inner.seen = g;
                info!(
                    generation = g,
                    "cluster: this node's IPsec server stored in etcd as the cluster's"
                );
            }
            Err(shared::StoreError::Conflict) => {
                info!(
                    "cluster: another node stored the IPsec server first; it is applied when read"
                )
            }
            Err(shared::StoreError::Unavailable(e)) => {
                warn!("cluster: storing this node's IPsec server in etcd failed ({e})")
            }
        }
    }

    /// Cluster mode: applies `stored` (a document read from etcd) unless this node has it.
    /// A malformed or invalid document is logged and ignored: the node keeps serving what
    /// it has (and never reports that generation applied).
    pub fn adopt(self: &Arc<Self>, stored: &Stored) -> Adopted {
        let mut inner = self.lock();
        if inner.status == Status::Updating {
            return Adopted::Busy;
        }
        let Some(bytes) = &stored.document else {
            if inner.seen != 0 {
                warn!("cluster: the IPsec server definition was deleted from etcd; this node keeps serving its own, the next change through the API stores it again");
                inner.seen = 0;
            }
            return Adopted::Unchanged;
        };
        let g = stored.generation;
        if g <= inner.seen {
            return Adopted::Unchanged;
        }
        inner.seen = g;
        let doc = match shared::decode(bytes) {
            Ok(d) => d,
            Err(e) => {
                error!(generation = g, "cluster: the IPsec server definition in etcd is malformed ({e}); ignored, this node keeps serving what it has");
                return Adopted::Refused;
            }
        };
        let server = match doc.state.server.as_ref().map(|r| self.validate_record(r)) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                error!(generation = g, "cluster: the IPsec server definition in etcd is invalid here ({}); ignored, this node keeps serving what it has", e.message);
                return Adopted::Refused;
            }
        };
        self.keep_shared(&mut inner, doc.state, g);
        info!(
            generation = g,
            "cluster: applying the IPsec server definition from etcd"
        );
        self.spawn_apply(&mut inner, server, doc.effect_immediately, false);
        Adopted::Applying
    }

    /// Cluster mode: `state` of `generation` (stored in etcd) becomes this node's, and its
    /// copy in `state_dir` (a failure to write the copy is only logged: etcd has it).
    fn keep_shared(&self, inner: &mut Inner, state: Persisted, generation: u64) {
        if let Err(e) = state::store(&self.state_path, &state) {
            warn!(
                "cluster: writing this node's copy {}: {e}",
                self.state_path.display()
            );
        }
        inner.persisted = state;
        inner.generation = generation;
        inner.seen = generation;
    }

    /// Cluster mode: the generation this node applied last (0: none).
    pub fn applied_generation(&self) -> u64 {
        self.lock().applied
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
        let generation = inner.generation;
        let me = self.clone();
        let run = move || {
            let t0 = Instant::now();
            let done = me.backend.apply(server.as_ref(), effect_immediately);
            match &done {
                Ok(()) => info!("IPsec server configuration applied"),
                Err(e) => error!("applying the IPsec server configuration failed: {e}"),
            }
            if let Some(rest) = MIN_APPLY.checked_sub(t0.elapsed()) {
                std::thread::sleep(rest);
            }
            let mut inner = me.lock();
            inner.status = Status::Active;
            if done.is_ok() {
                inner.applied = generation;
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("api-apply".into())
            .spawn(run)
        {
            error!("cannot spawn the apply thread: {e}");
            inner.status = Status::Active;
        }
    }

    /// Requests since the start by (action, code), for metrics.
    pub fn request_counts(&self) -> Vec<(&'static str, String, u64)> {
        self.requests.snapshot()
    }

    /// Handles one HTTP request.
    pub fn handle(self: &Arc<Self>, req: &Request, peer: SocketAddr) -> Response {
        let params = Params::from_request(req);
        let xml = params
            .get("Format")
            .is_some_and(|f| f.eq_ignore_ascii_case("XML"));
        let request_id = ids::request_id();
        let action = params
            .get("Action")
            .or_else(|| req.header("x-acs-action"))
            .unwrap_or("")
            .to_owned();
        let result = self.authenticated(req, &params, &action);
        let code = match &result {
            Ok(_) => requests::SUCCESS,
            Err(e) => e.code.as_str(),
        };
        self.requests.record(&action, code);
        let (status, body) = match result {
            Ok(v) => {
                let v = render::success_body(v, &request_id);
                info!(%peer, action, request_id, "API request done");
                (200, v)
            }
            Err(e) => {
                info!(%peer, action, request_id, code = e.code, status = e.status, "API request refused");
                let host = req.header("host").unwrap_or("ipsec-server");
                (e.status, render::error_body(&e, &request_id, host))
            }
        };
        render::response(status, &action, &body, xml)
    }

    /// Authenticates the request, checks version and region, and runs the action.
    fn authenticated(
        self: &Arc<Self>,
        req: &Request,
        params: &Params,
        action: &str,
    ) -> Result<Value, ApiError> {
        {
            let mut inner = self.lock();
            let signed = sign::Signed {
                method: &req.method,
                path: &req.path,
                query: params.query(),
                form: params.form(),
                headers: &req.headers,
                body: &req.body,
            };
            sign::verify(&self.api, &signed, now_unix(), &mut inner.nonces)?;
        }
        let version = params
            .get("Version")
            .or_else(|| req.header("x-acs-version"));
        if let Some(v) = version.filter(|v| *v != VERSION) {
            return Err(ApiError::invalid_version(v));
        }
        if let Some(r) = params.get("RegionId").filter(|r| !r.is_empty()) {
            if r != self.gateway.region_id() {
                return Err(ApiError::region_not_found(r));
            }
        }
        match action {
            "CreateIpsecServer" => self.create(params),
            "UpdateIpsecServer" => self.update(params),
            "DeleteIpsecServer" => self.delete(params),
            "ListIpsecServers" => self.list(params),
            "DescribeVpnGateway" => self.describe(params),
            "" => Err(ApiError::missing_action()),
            other => Err(ApiError::action_not_found(other)),
        }
    }

    fn check_gateway(&self, id: &str) -> Result<(), ApiError> {
        if id != self.gateway.vpn_gateway_id() {
            return Err(ApiError::gateway_not_found());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! The `cluster` thread: the etcd client, this node's lease and its keepalives, address
//! claims and releases (the key layout is `keys.rs`; the why of it all is the parent
//! module's doc). Built with the `cluster` feature only: the etcd client's build runs protoc.
//!
//! Every etcd call is bounded ([`ETCD_CALL`]); a failed one drops the connection, made again
//! at the next use. Everything etcd answers is parsed defensively: a key or value this
//! daemon did not write is skipped, never trusted.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    KeyValue, LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions, WatchResponse, WatchStream,
};
use ipnet::Ipv4Net;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{info, warn};

use super::super::inbox::DropReport;
use super::super::DaemonError;
use super::{Keys, Request, Shared, CLAIM_WAIT, ETCD_CALL, REPORT_PERIOD};
use crate::api::shared::{ClusterView, StoreError, Stored};
use crate::config::ClusterConfig;

/// The longest a `route_hook` may run; then it is killed.
const HOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Transactions one claim may try before it gives up (each loses only to another node's
/// claim of the same address, so this bounds contention, not progress).
const CLAIM_ATTEMPTS: usize = 8;

/// The most nodes (and their reports) one view reads: the cluster's size bound.
const MAX_NODES: i64 = 1000;
/// The largest `P/api/applied/NODE_ID` value accepted (this daemon writes about 40 bytes).
const MAX_REPORT: usize = 256;

pub(super) fn spawn(
    cfg: ClusterConfig,
    shared: Arc<Shared>,
    requests: UnboundedReceiver<Request>,
    adopt: Option<i64>,
) -> Result<JoinHandle<()>, DaemonError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DaemonError::Cluster(format!("the etcd client's runtime: {e}")))?;
    info!(
        node_id = %shared.node_id,
        endpoints = %cfg.endpoints().join(","),
        lease_ttl = cfg.lease_ttl().as_secs(),
        prefix = cfg.prefix(),
        "cluster mode: connecting to etcd"
    );
    std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || {
            let mut node = Node {
                cfg,
                shared,
                client: None,
                keeper: None,
                lease: adopt,
                adopted: adopt.is_some(),
                unreachable_report: DropReport::new(REPORT_PERIOD),
                failures: 0,
                unreleased: HashSet::new(),
                watch: None,
                report: None,
                reported: None,
            };
            runtime.block_on(node.run(requests));
        })
        .map_err(|source| DaemonError::Spawn {
            name: "cluster".into(),
            source,
        })
}

struct Node {
    cfg: ClusterConfig,
    shared: Arc<Shared>,
    client: Option<Client>,
    keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    lease: Option<i64>,
    /// `lease` came from the process this one replaced and was not checked yet.
    adopted: bool,
    unreachable_report: DropReport,
    failures: u64,
    /// Releases that failed, retried at each keepalive (at most the addresses held).
    unreleased: HashSet<(Ipv4Net, Ipv4Addr)>,
    /// The watch of `P/api/server`; made again (after a fresh read) at a keepalive.
    watch: Option<WatchStream>,
    /// (generation applied, online clients) as the `api-follow` thread last reported them.
    report: Option<(u64, u64)>,
    /// (lease, generation, online) as last written to `P/api/applied/NODE_ID`.
    reported: Option<(i64, u64, u64)>,
}

/// `P/api/applied/NODE_ID`'s value.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Report {
    generation: u64,
    online: u64,
}

/// The next message of the definition's watch (never, without one).
async fn next_event(
    watch: &mut Option<WatchStream>,
) -> Result<Option<WatchResponse>, etcd_client::Error> {
    match watch {
        Some(w) => w.message().await,
        None => std::future::pending().await,
    }
}

/// A reading of `P/api/server` (`None`: no such key).
fn stored_of(kv: Option<&KeyValue>) -> Stored {
    match kv {
        Some(kv) => Stored {
            generation: u64::try_from(kv.mod_revision()).unwrap_or(0),
            document: Some(kv.value().to_vec()),
        },
        None => Stored {
            generation: 0,
            document: None,
        },
    }
}

type Fallible<T> = Result<T, String>;

/// `call` bounded by [`ETCD_CALL`], its error as text.
async fn bounded<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Fallible<T> {
    match tokio::time::timeout(ETCD_CALL, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {ETCD_CALL:?}")),
    }
}

impl Node {
    async fn run(&mut self, mut requests: UnboundedReceiver<Request>) {
        let period = self.cfg.lease_ttl() / 3;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let alive = match self.keep_alive().await {
                        Ok(()) if self.watch.is_none() => self.watch_definition().await,
                        done => done,
                    };
                    match alive {
                        Ok(()) => self.put_report().await,
                        Err(e) => self.unreachable(&e),
                    }
                    self.retry_releases().await;
                }
                event = next_event(&mut self.watch) => self.on_watch(event),
                request = requests.recv() => match request {
                    Some(Request::Claim { pool, identity, reply }) => {
                        // Bounded as a whole (the keepalives wait behind it), and a little
                        // shorter than the IKE thread's wait, so the answer still finds it.
                        let bound = CLAIM_WAIT - Duration::from_millis(200);
                        let claimed = tokio::time::timeout(bound, self.claim(pool, &identity))
                            .await
                            .unwrap_or_else(|_| Err(format!("etcd did not answer within {bound:?}")));
                        if let Err(e) = &claimed {
                            if e.contains("no answer") || e.contains("connect") {
                                self.client = None;
                            }
                        }
                        let addr = claimed.as_ref().ok().copied();
                        match reply.try_send(claimed) {
                            Err(std::sync::mpsc::TrySendError::Disconnected(Ok(addr))) => {
                                // Too late: the IKE thread refused the client already.
                                self.release(pool, addr).await;
                            }
                            _ => {
                                if let Some(addr) = addr {
                                    self.hook("up", addr).await;
                                }
                            }
                        }
                    }
                    Some(Request::Release { pool, addr }) => self.release(pool, addr).await,
                    Some(Request::Store { base, document, reply }) => {
                        let stored = self.store(base, document).await;
                        if let Err(StoreError::Unavailable(_)) = &stored {
                            self.client = None;
                        }
                        let _ = reply.try_send(stored);
                    }
                    Some(Request::View { reply }) => {
                        let view = self.view().await;
                        if view.is_err() {
                            self.client = None;
                        }
                        let _ = reply.try_send(view);
                    }
                    Some(Request::Report) => {
                        self.report = self.shared.take_report();
                        self.put_report().await;
                    }
                    Some(Request::Stop { revoke }) => {
                        self.stop(revoke).await;
                        return;
                    }
                    None => {
                        self.stop(true).await;
                        return;
                    }
                },
            }
        }
    }

    fn unreachable(&mut self, why: &str) {
        self.client = None;
        self.keeper = None;
        self.watch = None;
        self.failures += 1;
        if let Some(n) = self.unreachable_report.due(Instant::now(), self.failures) {
            let left = match self.shared.valid_for(Instant::now()) {
                Some(d) => format!(
                    "established tunnels keep working for {:.0?} more (the lease), new \
                     clients are refused",
                    d
                ),
                None => "this node is fenced: no tunnels, new clients are refused".into(),
            };
            warn!(failures = n, "cluster: etcd unreachable ({why}); {left}");
        }
    }

    async fn client(&mut self) -> Fallible<Client> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(ETCD_CALL)
            .with_timeout(ETCD_CALL)
            .with_keep_alive(Duration::from_secs(2), ETCD_CALL);
        if let Some((user, password)) = self.cfg.auth() {
            let password = String::from_utf8_lossy(password.expose()).into_owned();
            options = options.with_user(user, password);
        }
        if let Some(tls) = self.cfg.tls() {
            let ca = std::fs::read(tls.ca_file())
                .map_err(|e| format!("reading cluster.ca_file {}: {e}", tls.ca_file().display()))?;
            let mut t = TlsOptions::new().ca_certificate(Certificate::from_pem(ca));
            if let Some((cert, key)) = tls.identity() {
                let read = |p: &std::path::Path| {
                    std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))
                };
                t = t.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            options = options.with_tls(t);
        }
        let client = bounded(
            "connecting",
            Client::connect(self.cfg.endpoints(), Some(options)),
        )
        .await?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Renews the lease (or takes one): the fence's deadline moves on.
    async fn keep_alive(&mut self) -> Fallible<()> {
        let mut client = self.client().await?;
        let ttl = self.cfg.lease_ttl();
        let Some(id) = self.lease else {
            return self.grant(&mut client).await;
        };
        let sent = Instant::now();
        let left = match self.renew(&mut client, id).await {
            Ok(left) => left,
            // etcd answers an expired lease so (3.4), or with a TTL of 0.
            Err(e) if e.contains("lease not found") => None,
            Err(e) => return Err(e),
        };
        match left {
            Some(left) if left > 0 => {
                if self.adopted {
                    self.adopted = false;
                    info!(
                        lease = format_args!("{id:x}"),
                        "cluster: adopted lease kept alive"
                    );
                    // `Cluster::start` made it this node's lease already (no new epoch:
                    // the SAs restored under it are not fenced).
                    self.register(&mut client, id).await?;
                }
                self.shared
                    .renewed(sent, Duration::from_secs(left.unsigned_abs()).min(ttl));
                if self.failures > 0 {
                    info!("cluster: etcd reachable again, lease renewed");
                    self.failures = 0;
                    self.unreachable_report = DropReport::new(REPORT_PERIOD);
                }
                Ok(())
            }
            _ => {
                warn!(
                    lease = format_args!("{id:x}"),
                    "cluster: this node's etcd lease has expired (its addresses were fenced \
                     and may be leased by other nodes); taking a new one"
                );
                self.shared.lost_lease();
                self.lease = None;
                self.keeper = None;
                self.adopted = false;
                self.grant(&mut client).await
            }
        }
    }

    /// One keepalive of lease `id`: the TTL etcd gives it now (`None` or ≤ 0: it is gone).
    async fn renew(&mut self, client: &mut Client, id: i64) -> Fallible<Option<i64>> {
        if self.keeper.is_none() {
            self.keeper = Some(bounded("lease keepalive", client.lease_keep_alive(id)).await?);
        }
        let (keeper, stream) = self.keeper.as_mut().ok_or("no keeper")?;
        bounded("lease keepalive", keeper.keep_alive()).await?;
        let answer = bounded("lease keepalive", stream.message()).await?;
        Ok(answer.map(|a| a.ttl()))
    }

    async fn grant(&mut self, client: &mut Client) -> Fallible<()> {
        let ttl = self.cfg.lease_ttl();
        let sent = Instant::now();
        let granted = bounded(
            "lease grant",
            client.lease_grant(i64::try_from(ttl.as_secs()).unwrap_or(600), None),
        )
        .await?;
        let id = granted.id();
        self.lease = Some(id);
        self.keeper = None;
        self.register(client, id).await?;
        self.shared.new_lease(
            id,
            sent,
            Duration::from_secs(granted.ttl().unsigned_abs()).min(ttl),
        );
        info!(lease = format_args!("{id:x}"), node_id = %self.shared.node_id, "cluster: joined (lease granted)");
        if self.failures > 0 {
            self.failures = 0;
            self.unreachable_report = DropReport::new(REPORT_PERIOD);
        }
        Ok(())
    }

    /// `P/nodes/NODE_ID` under the lease: the node is alive.
    async fn register(&mut self, client: &mut Client, id: i64) -> Fallible<()> {
        let key = Keys::node(self.cfg.prefix(), &self.shared.node_id);
        let value = format!("{{\"lease\":\"{id:x}\",\"pid\":{}}}", std::process::id());
        bounded(
            "registering the node",
            client.put(key, value, Some(PutOptions::new().with_lease(id))),
        )
        .await
        .map(|_| ())
    }

    /// Reads `P/api/server` (catching up on anything a broken watch missed) and watches it
    /// from there.
    async fn watch_definition(&mut self) -> Fallible<()> {
        let mut client = self.client().await?;
        let key = Keys::definition(self.cfg.prefix());
        let got = bounded(
            "reading the server definition",
            client.get(key.clone(), None),
        )
        .await?;
        let at = got.header().map_or(0, |h| h.revision());
        self.shared.observe(at, stored_of(got.kvs().first()));
        let from = WatchOptions::new().with_start_revision(at + 1);
        let watch = bounded(
            "watching the server definition",
            client.watch(key, Some(from)),
        )
        .await?;
        self.watch = Some(watch);
        Ok(())
    }

    /// A message of the definition's watch: each change is observed; an error or the end
    /// of the watch drops it (made again, after a fresh read, at the next keepalive). The
    /// gRPC layer bounds each message (4 MiB); the document's own bound is the API's.
    fn on_watch(&mut self, event: Result<Option<WatchResponse>, etcd_client::Error>) {
        let resp = match event {
            Ok(Some(resp)) if !resp.canceled() => resp,
            Ok(Some(_)) | Ok(None) => {
                info!("cluster: the watch of the server definition ended; read again at the next keepalive");
                self.watch = None;
                return;
            }
            Err(e) => {
                warn!("cluster: the watch of the server definition failed ({e}); read again at the next keepalive");
                self.watch = None;
                return;
            }
        };
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let stored = match event.event_type() {
                EventType::Put => stored_of(Some(kv)),
                EventType::Delete => stored_of(None),
            };
            self.shared.observe(kv.mod_revision(), stored);
        }
    }

    /// Stores the server definition if its generation (`P/api/server`'s mod_revision) is
    /// still `base`: the new one, observed at once.
    async fn store(&mut self, base: u64, document: Vec<u8>) -> Result<u64, StoreError> {
        let mut client = self.client().await.map_err(StoreError::Unavailable)?;
        let key = Keys::definition(self.cfg.prefix());
        let base = i64::try_from(base).unwrap_or(i64::MAX);
        let txn = Txn::new()
            .when(vec![Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                base,
            )])
            .and_then(vec![TxnOp::put(key, document.clone(), None)]);
        let done = bounded("storing the server definition", client.txn(txn))
            .await
            .map_err(StoreError::Unavailable)?;
        if !done.succeeded() {
            return Err(StoreError::Conflict);
        }
        let at = done.header().map_or(0, |h| h.revision());
        let generation = u64::try_from(at)
            .ok()
            .filter(|g| *g > 0)
            .ok_or_else(|| StoreError::Unavailable("etcd answered no revision".into()))?;
        let document = Some(document);
        self.shared.observe(
            at,
            Stored {
                generation,
                document,
            },
        );
        Ok(generation)
    }

    /// The live nodes, their reports and the stored generation, in one transaction (one
    /// consistent snapshot).
    async fn view(&mut self) -> Fallible<ClusterView> {
        let mut client = self.client().await?;
        let prefix = self.cfg.prefix();
        let nodes = GetOptions::new()
            .with_prefix()
            .with_keys_only()
            .with_limit(MAX_NODES);
        let txn = Txn::new().and_then(vec![
            TxnOp::get(Keys::nodes_prefix(prefix), Some(nodes)),
            TxnOp::get(
                Keys::applied_prefix(prefix),
                Some(GetOptions::new().with_prefix().with_limit(MAX_NODES)),
            ),
            TxnOp::get(
                Keys::definition(prefix),
                Some(GetOptions::new().with_keys_only()),
            ),
        ]);
        let done = bounded("reading the nodes' reports", client.txn(txn)).await?;
        let gets: Vec<_> = done
            .op_responses()
            .into_iter()
            .filter_map(|op| match op {
                TxnOpResponse::Get(g) => Some(g),
                _ => None,
            })
            .collect();
        let [nodes, applied, definition] = &gets[..] else {
            return Err("etcd's answer lacks a part".into());
        };
        let live: Vec<&[u8]> = nodes.kvs().iter().map(KeyValue::key).collect();
        let reports: Vec<(&[u8], &[u8])> = applied
            .kvs()
            .iter()
            .map(|kv| (kv.key(), kv.value()))
            .collect();
        let generation = definition.kvs().first().map_or(0, KeyValue::mod_revision);
        Ok(view_of(prefix, &live, &reports, generation))
    }

    /// Writes `P/api/applied/NODE_ID` under the lease when the report changed (or the
    /// lease did). Only on a connection the keepalives made: a report never waits for etcd.
    async fn put_report(&mut self) {
        let (Some(lease), Some((generation, online)), Some(mut client)) =
            (self.lease, self.report, self.client.clone())
        else {
            return;
        };
        if self.reported == Some((lease, generation, online)) {
            return;
        }
        let key = Keys::applied(self.cfg.prefix(), &self.shared.node_id);
        let value = serde_json::json!(Report { generation, online }).to_string();
        let put = client.put(key, value, Some(PutOptions::new().with_lease(lease)));
        match bounded("reporting the applied generation", put).await {
            Ok(_) => self.reported = Some((lease, generation, online)),
            Err(e) => warn!("cluster: {e}; reported again later"),
        }
    }

    /// An address of `pool` for `identity`: its sticky one when free, else a fresh one,
    /// else any free one; each taken by a transaction that fails if another node took it
    /// first.
    async fn claim(&mut self, pool: Ipv4Net, identity: &str) -> Fallible<Ipv4Addr> {
        let lease = self.lease.ok_or("this node has no etcd lease yet")?;
        let mut client = self.client().await?;
        let keys = Keys::new(self.cfg.prefix(), pool);
        let node = self.shared.node_id.clone();
        let held_put = |addr| {
            TxnOp::put(
                keys.held(addr),
                node.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )
        };
        for _ in 0..CLAIM_ATTEMPTS {
            let sticky = bounded(
                "reading the sticky address",
                client.get(keys.sticky(identity), None),
            )
            .await?;
            let sticky = sticky.kvs().first().map(|kv| {
                let addr = std::str::from_utf8(kv.value())
                    .ok()
                    .and_then(|v| v.parse::<Ipv4Addr>().ok());
                (addr, kv.mod_revision())
            });
            let sticky_rev = sticky.map_or(0, |(_, rev)| rev);
            let sticky_addr = sticky.and_then(|(a, _)| a).filter(|a| is_host(pool, *a));
            if let Some(addr) = sticky_addr {
                let txn = Txn::new()
                    .when(vec![
                        Compare::create_revision(keys.held(addr), CompareOp::Equal, 0),
                        Compare::mod_revision(keys.sticky(identity), CompareOp::Equal, sticky_rev),
                    ])
                    .and_then(vec![held_put(addr)]);
                if bounded("claiming the sticky address", client.txn(txn))
                    .await?
                    .succeeded()
                {
                    return Ok(addr);
                }
            }
            let held: HashSet<Ipv4Addr> = bounded(
                "reading the held addresses",
                client.get(
                    keys.held_prefix(),
                    Some(GetOptions::new().with_prefix().with_keys_only()),
                ),
            )
            .await?
            .kvs()
            .iter()
            .filter_map(|kv| Keys::addr_of(kv.key()))
            .collect();
            let last: HashMap<Ipv4Addr, (String, i64)> = bounded(
                "reading the sticky memory",
                client.get(keys.last_prefix(), Some(GetOptions::new().with_prefix())),
            )
            .await?
            .kvs()
            .iter()
            .filter_map(|kv| {
                let owner = std::str::from_utf8(kv.value()).ok()?.to_owned();
                Some((Keys::addr_of(kv.key())?, (owner, kv.mod_revision())))
            })
            .collect();
            let addr = pick(pool, &held, &last).ok_or_else(|| {
                format!("client address pool {pool} is exhausted across the cluster")
            })?;
            let last_rev = last.get(&addr).map_or(0, |(_, rev)| *rev);
            let mut when = vec![
                Compare::create_revision(keys.held(addr), CompareOp::Equal, 0),
                Compare::mod_revision(keys.last(addr), CompareOp::Equal, last_rev),
                Compare::mod_revision(keys.sticky(identity), CompareOp::Equal, sticky_rev),
            ];
            let mut then = vec![
                held_put(addr),
                TxnOp::put(keys.last(addr), identity, None),
                TxnOp::put(keys.sticky(identity), addr.to_string(), None),
            ];
            // The address moves to this identity: its former owner forgets it...
            if let Some((owner, _)) = last.get(&addr).filter(|(o, _)| o != identity) {
                then.push(TxnOp::delete(keys.sticky(owner), None));
            }
            // ...and this identity's former address forgets this identity.
            if let Some(prev) = sticky_addr.filter(|p| *p != addr) {
                if let Some((_, rev)) = last.get(&prev).filter(|(o, _)| o == identity) {
                    when.push(Compare::mod_revision(
                        keys.last(prev),
                        CompareOp::Equal,
                        *rev,
                    ));
                    then.push(TxnOp::delete(keys.last(prev), None));
                }
            }
            let txn = Txn::new().when(when).and_then(then);
            if bounded("claiming an address", client.txn(txn))
                .await?
                .succeeded()
            {
                return Ok(addr);
            }
        }
        Err(format!(
            "no address of {pool} could be claimed in {CLAIM_ATTEMPTS} attempts (other nodes \
             claimed each first)"
        ))
    }

    /// Deletes `P/pool/N/held/IP` if this node's lease holds it; a failure is retried.
    async fn release(&mut self, pool: Ipv4Net, addr: Ipv4Addr) {
        self.hook("down", addr).await;
        if let Err(e) = self.try_release(pool, addr).await {
            warn!(%addr, "cluster: releasing a virtual IP failed ({e}); retried later");
            self.unreleased.insert((pool, addr));
        }
    }

    /// Runs `route_hook ACTION ADDR NODE_ID`, if configured, for at most [`HOOK_TIMEOUT`];
    /// a failure is logged (the address stays this node's either way).
    async fn hook(&self, action: &str, addr: Ipv4Addr) {
        let Some(path) = self.cfg.route_hook() else {
            return;
        };
        let spawned = std::process::Command::new(path)
            .args([action, &addr.to_string(), &self.shared.node_id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                warn!(hook = %path.display(), %addr, "cluster: route_hook {action}: {e}");
                return;
            }
        };
        let deadline = Instant::now() + HOOK_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return,
                Ok(Some(status)) => {
                    warn!(hook = %path.display(), %addr, "cluster: route_hook {action}: {status}");
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    warn!(hook = %path.display(), %addr,
                        "cluster: route_hook {action} did not end within {HOOK_TIMEOUT:?}: killed");
                    return;
                }
            }
        }
    }

    async fn try_release(&mut self, pool: Ipv4Net, addr: Ipv4Addr) -> Fallible<()> {
        let Some(lease) = self.lease else {
            return Ok(()); // No lease, nothing held.
        };
        let mut client = self.client().await?;
        let keys = Keys::new(self.cfg.prefix(), pool);
        let txn = Txn::new()
            .when(vec![Compare::lease(
                keys.held(addr),
                CompareOp::Equal,
                lease,
            )])
            .and_then(vec![TxnOp::delete(keys.held(addr), None)]);
        bounded("releasing an address", client.txn(txn))
            .await
            .map(|_| ())
    }

    async fn retry_releases(&mut self) {
        let pending: Vec<_> = self.unreleased.drain().collect();
        for (pool, addr) in pending {
            if self.try_release(pool, addr).await.is_err() {
                self.unreleased.insert((pool, addr));
            }
        }
    }

    async fn stop(&mut self, revoke: bool) {
        self.retry_releases().await;
        let Some(id) = self.lease else {
            return;
        };
        if !revoke {
            info!(
                lease = format_args!("{id:x}"),
                "cluster: leaving the lease to its adopter"
            );
            return;
        }
        if let Ok(mut client) = self.client().await {
            match bounded("revoking the lease", client.lease_revoke(id)).await {
                Ok(_) => info!(
                    lease = format_args!("{id:x}"),
                    "cluster: left (lease revoked)"
                ),
                Err(e) => warn!("cluster: {e}; the lease expires by itself"),
            }
        }
    }
}

/// The cluster's state from etcd's keys: `live` are `P/nodes/NODE_ID` keys, `reports`
/// `P/api/applied/NODE_ID` keys and values, `generation` the stored definition's. A node
/// without a readable report has applied nothing; a report of a node that is not live
/// (its lease is gone) does not count; a report too big or not this daemon's is ignored.
fn view_of(
    prefix: &str,
    live: &[&[u8]],
    reports: &[(&[u8], &[u8])],
    generation: i64,
) -> ClusterView {
    let node_of = |key: &[u8], under: &str| {
        std::str::from_utf8(key)
            .ok()?
            .strip_prefix(under)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
    };
    let nodes_prefix = Keys::nodes_prefix(prefix);
    let applied_prefix = Keys::applied_prefix(prefix);
    let reports: HashMap<String, Report> = reports
        .iter()
        .filter_map(|(k, v)| {
            let node = node_of(k, &applied_prefix)?;
            let report = (v.len() <= MAX_REPORT)
                .then(|| serde_json::from_slice::<Report>(v).ok())
                .flatten();
            if report.is_none() {
                warn!(node, "cluster: a malformed report in etcd is ignored");
            }
            Some((node, report?))
        })
        .collect();
    let generation = u64::try_from(generation).unwrap_or(0);
    let mut view = ClusterView {
        generation,
        live: 0,
        behind: Vec::new(),
        online: 0,
    };
    for node in live.iter().filter_map(|k| node_of(k, &nodes_prefix)) {
        view.live += 1;
        match reports.get(&node) {
            Some(r) => {
                view.online = view.online.saturating_add(r.online);
                if r.generation < generation {
                    view.behind.push(node);
                }
            }
            None if generation > 0 => view.behind.push(node),
            None => {}
        }
    }
    view
}

/// Whether `addr` is a host address of `pool` (not its network or broadcast address).
fn is_host(pool: Ipv4Net, addr: Ipv4Addr) -> bool {
    pool.contains(&addr) && addr != pool.network() && addr != pool.broadcast()
}

/// A free address of `pool` from a random start (so nodes claiming at once rarely pick
/// the same one): first one nobody ever had, else any free one.
fn pick(
    pool: Ipv4Net,
    held: &HashSet<Ipv4Addr>,
    last: &HashMap<Ipv4Addr, (String, i64)>,
) -> Option<Ipv4Addr> {
    let base = u32::from(pool.network()) + 1;
    let hosts = u32::try_from(pool.hosts().count()).unwrap_or(0);
    if hosts == 0 {
        return None;
    }
    let start = rand::thread_rng().gen_range(0..hosts);
    let at = |i: u32| Ipv4Addr::from(base + (start + i) % hosts);
    (0..hosts)
        .map(at)
        .find(|a| !held.contains(a) && !last.contains_key(a))
        .or_else(|| (0..hosts).map(at).find(|a| !held.contains(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_counts_live_nodes_and_bounds_what_it_reads() {
        let p = "/p";
        let live: Vec<&[u8]> = vec![b"/p/nodes/a", b"/p/nodes/b", b"/p/nodes/c", b"/p/nodes/"];
        let big = format!(
            "{{\"generation\":9,\"online\":1,\"x\":\"{}\"}}",
            "y".repeat(300)
        );
        let reports: Vec<(&[u8], &[u8])> = vec![
            (b"/p/api/applied/a", br#"{"generation":9,"online":2}"#),
            (b"/p/api/applied/b", br#"{"generation":8,"online":3}"#),
            (b"/p/api/applied/c", big.as_bytes()),
            // A dead node's report (its lease is gone, its key not yet): not counted.
            (b"/p/api/applied/d", br#"{"generation":9,"online":50}"#),
            (b"/p/api/applied/e", b"\xff garbage"),
        ];
        let v = view_of(p, &live, &reports, 9);
        assert_eq!(v.generation, 9);
        assert_eq!(v.live, 3, "the bare prefix is no node");
        assert_eq!(v.online, 5);
        assert_eq!(
            v.behind,
            ["b", "c"],
            "c's report is too big: applied nothing"
        );
        let v = view_of(p, &live, &reports, 8);
        assert_eq!(v.behind, ["c"]);
        // Nothing stored yet: nobody is behind.
        let v = view_of(p, &live, &[], 0);
        assert!(v.behind.is_empty());
        assert_eq!(v.online, 0);
        let online = format!("{{\"generation\":1,\"online\":{}}}", u64::MAX);
        let two: Vec<(&[u8], &[u8])> = vec![
            (b"/p/api/applied/a", online.as_bytes()),
            (b"/p/api/applied/b", online.as_bytes()),
        ];
        assert_eq!(view_of(p, &live, &two, 1).online, u64::MAX, "saturates");
    }

    #[test]
    fn pick_prefers_never_used_addresses_then_any_free_one() {
        let pool: Ipv4Net = "10.0.0.0/29".parse().unwrap();
        let a = |n| Ipv4Addr::new(10, 0, 0, n);
        let mut held: HashSet<_> = (1..=4).map(a).collect();
        let mut last = HashMap::new();
        last.insert(a(5), ("x".to_string(), 3));
        assert_eq!(pick(pool, &held, &last), Some(a(6)));
        held.insert(a(6));
        assert_eq!(
            pick(pool, &held, &last),
            Some(a(5)),
            "reused when nothing is fresh"
        );
        held.insert(a(5));
        assert_eq!(
            pick(pool, &held, &last),
            None,
            "network and broadcast never"
        );
        assert!(is_host(pool, a(1)) && !is_host(pool, a(0)) && !is_host(pool, a(7)));
    }
}

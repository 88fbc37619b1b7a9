//! Cluster mode on etcd (`[cluster]`; README, "Running several gateways"; ARCHITECTURE.md
//! §6): several gateways share one address pool. This module is the part every build has —
//! the handle the rest of the daemon holds ([`Cluster`]), the pool's seam
//! ([`ClusterLeases`], a [`SharedLeases`] for the `ike` thread) and the fence
//! ([`Fence`]) — while `etcd.rs` (feature `cluster`, whose client needs protoc to build) is
//! the thread that talks to etcd.
//!
//! **Threads.** One `cluster` thread owns the etcd client (a current-thread tokio runtime:
//! the client is async) and this node's lease. The `ike` thread asks it for an address with
//! a blocking call bounded by [`CLAIM_WAIT`]; a late answer is given back by the `cluster`
//! thread itself (nobody waits for it any more), so a timeout never leaks an address.
//! Releases are posted without waiting; their number is bounded by the addresses this node
//! holds (at most `max_connections`), and one that fails is retried at each keepalive.
//!
//! **Fencing.** This node's addresses live in etcd under its lease: when the node goes
//! silent, etcd frees them after `lease_ttl`. So the node must stop forwarding for them
//! before that. The `cluster` thread notes, at each keepalive that succeeds, a local
//! deadline: the time the keepalive was *sent* + the TTL etcd granted − [`FENCE_MARGIN`]
//! (etcd counts from when it *received* it, later). Past the deadline (etcd unreachable, the
//! node partitioned) the `ike` thread deletes every IKE SA (DELETE to each client, Child SAs
//! out of the SAD: no more forwarding, the addresses forgotten) and refuses new clients
//! (INTERNAL_ADDRESS_FAILURE) until a keepalive succeeds again. A lease that expired all the
//! same is replaced by a new one (a new *epoch*): SAs of an older epoch are deleted too.
//!
//! **One server definition** (with `[api]`; `src/api/shared.rs`). The `cluster` thread
//! watches `P/api/server` and keeps the newest document it read in [`Shared`] (a read at
//! each (re)connection catches up on what a broken watch missed); the `api-follow` thread
//! ([`Cluster::follow`]) hands each new one to the API, which applies it through the same
//! path as a local change, and reports, at most once per [`REPORT_EVERY`], the generation
//! applied and the online clients under `P/api/applied/NODE_ID` (bound to the lease: a
//! dead node stops counting after the TTL). The API's changes and its `updating` and online
//! count questions are requests to the `cluster` thread ([`SharedDefinition`] on
//! [`Cluster`]), each bounded by [`CLAIM_WAIT`].

// Without the `cluster` feature the handle is never built (`start` refuses a `[cluster]`
// config), so its parts look unused to the compiler.
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

#[cfg(feature = "cluster")]
mod etcd;
mod keys;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};
use tracing::warn;

use super::inbox::DropReport;
use super::DaemonError;
use crate::api::shared::{ClusterView, SharedDefinition, StoreError, Stored};
use crate::api::{Adopted, Api, Backend};
use crate::config::Config;
use crate::pool::{PoolError, SharedLeases};

#[cfg(feature = "cluster")]
use keys::Keys;

/// The longest the `ike` thread waits for an address from etcd; then the client gets
/// INTERNAL_ADDRESS_FAILURE. The `cluster` thread gives up on its own etcd calls a little
/// earlier ([`ETCD_CALL`]).
pub(crate) const CLAIM_WAIT: Duration = Duration::from_millis(1500);
/// The bound of one etcd call (a claim's transactions, a keepalive, a release).
pub(crate) const ETCD_CALL: Duration = Duration::from_millis(1000);
/// How much earlier than etcd this node considers its lease gone: covers the `ike`
/// thread's once-a-second check, one [`CLAIM_WAIT`] it may be blocked in, and clock-rate
/// differences.
pub(crate) const FENCE_MARGIN: Duration = Duration::from_secs(3);
/// At most one log line per this period about refused clients or an unreachable etcd.
pub(crate) const REPORT_PERIOD: Duration = Duration::from_secs(10);
/// How often a node with `[api]` reports its applied generation and online clients (etcd is
/// written only when they changed).
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How long a starting node with `[api]` waits for etcd's server definition before it
/// serves its own copy.
pub(crate) const START_WAIT: Duration = Duration::from_secs(5);

/// The server definition as the `cluster` thread last read it.
#[derive(Default)]
struct Observed {
    /// Counted up with each new reading.
    seq: u64,
    /// The etcd revision of the reading (a later reading never loses to an earlier one).
    at: i64,
    stored: Option<Stored>,
}

/// What the `ike` thread, the metrics and the `cluster` thread share.
pub(crate) struct Shared {
    base: Instant,
    /// Milliseconds after `base` until which this node's lease is surely valid; 0: none yet.
    valid_until_ms: AtomicU64,
    /// Counted up with each new lease: SAs of an older one are fenced.
    epoch: AtomicU64,
    /// The current lease id (0: none).
    lease: AtomicI64,
    /// Clients refused an address (etcd unreachable or slow, fenced, pool exhausted).
    refused: AtomicU64,
    /// Log lines about refusals: at most one per [`REPORT_PERIOD`].
    refusal_report: Mutex<DropReport>,
    pub(crate) node_id: String,
    /// `P/api/server` as last read ([`Shared::observe`], [`Shared::definition_after`]).
    definition: Mutex<Observed>,
    definition_changed: Condvar,
    /// The `api-follow` thread's newest (generation applied, online clients), and whether
    /// a [`Request::Report`] that will pick it up is queued: at most one is.
    report: Mutex<(Option<(u64, u64)>, bool)>,
}

impl Shared {
    fn new(node_id: String) -> Self {
        Self {
            base: Instant::now(),
            valid_until_ms: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            lease: AtomicI64::new(0),
            refused: AtomicU64::new(0),
            refusal_report: Mutex::new(DropReport::new(REPORT_PERIOD)),
            node_id,
            definition: Mutex::new(Observed::default()),
            definition_changed: Condvar::new(),
            report: Mutex::new((None, false)),
        }
    }

    /// Notes a report; true when a [`Request::Report`] must be queued to pick it up.
    fn set_report(&self, generation: u64, online: u64) -> bool {
        let mut r = self.report.lock().unwrap_or_else(|p| p.into_inner());
        r.0 = Some((generation, online));
        !std::mem::replace(&mut r.1, true)
    }

    /// The `cluster` thread takes the newest report (its [`Request::Report`] is handled).
    pub(crate) fn take_report(&self) -> Option<(u64, u64)> {
        let mut r = self.report.lock().unwrap_or_else(|p| p.into_inner());
        r.1 = false;
        r.0
    }

    /// The `cluster` thread read `stored` at etcd revision `at`.
    pub(crate) fn observe(&self, at: i64, stored: Stored) {
        let mut d = self.definition.lock().unwrap_or_else(|p| p.into_inner());
        if at >= d.at {
            d.at = at;
            d.stored = Some(stored);
            d.seq += 1;
            self.definition_changed.notify_all();
        }
    }

    /// The newest reading when it is newer than reading `seq` (waits at most `wait`).
    fn definition_after(&self, seq: u64, wait: Duration) -> Option<(u64, Stored)> {
        let d = self.definition.lock().unwrap_or_else(|p| p.into_inner());
        let (d, _) = self
            .definition_changed
            .wait_timeout_while(d, wait, |d| d.seq == seq)
            .unwrap_or_else(|p| p.into_inner());
        let stored = d.stored.clone().filter(|_| d.seq != seq)?;
        Some((d.seq, stored))
    }

    /// A keepalive sent at `sent` was answered with `ttl`: the lease is valid until
    /// `sent + ttl - FENCE_MARGIN`.
    pub(crate) fn renewed(&self, sent: Instant, ttl: Duration) {
        let until = (sent + ttl.saturating_sub(FENCE_MARGIN)).saturating_duration_since(self.base);
        let ms = u64::try_from(until.as_millis()).unwrap_or(u64::MAX).max(1);
        self.valid_until_ms.fetch_max(ms, Ordering::SeqCst);
    }

    /// A new lease (granted or adopted) replaces any older one.
    pub(crate) fn new_lease(&self, id: i64, sent: Instant, ttl: Duration) {
        self.valid_until_ms.store(0, Ordering::SeqCst);
        self.lease.store(id, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.renewed(sent, ttl);
    }

    /// The lease a replaced process handed over (the in-place upgrade), surely valid for
    /// the `ttl_left_ms` that process still counted on at the capture, from `now`.
    pub(crate) fn adopt_lease(&self, lease: &super::handover::ClusterLease, now: Instant) {
        let left = Duration::from_millis(lease.ttl_left_ms);
        // `new_lease` takes the margin off again.
        self.new_lease(lease.lease_id, now, left + FENCE_MARGIN);
    }

    /// The lease is gone (expired, revoked): fenced from now on.
    pub(crate) fn lost_lease(&self) {
        self.valid_until_ms.store(0, Ordering::SeqCst);
        self.lease.store(0, Ordering::SeqCst);
    }

    /// Whether this node may serve addresses at `now`.
    pub(crate) fn valid(&self, now: Instant) -> bool {
        let ms = self.valid_until_ms.load(Ordering::SeqCst);
        ms != 0 && now.saturating_duration_since(self.base) < Duration::from_millis(ms)
    }

    /// The time left on the lease at `now`, if it is valid.
    pub(crate) fn valid_for(&self, now: Instant) -> Option<Duration> {
        let ms = self.valid_until_ms.load(Ordering::SeqCst);
        (ms != 0)
            .then(|| {
                Duration::from_millis(ms).checked_sub(now.saturating_duration_since(self.base))
            })
            .flatten()
    }

    pub(crate) fn lease_id(&self) -> Option<i64> {
        Some(self.lease.load(Ordering::SeqCst)).filter(|&id| id != 0)
    }

    fn refuse(&self, now: Instant, why: String) -> PoolError {
        let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let due = self
            .refusal_report
            .lock()
            .map(|mut r| r.due(now, total))
            .unwrap_or(None);
        if let Some(n) = due {
            warn!(
                refused_total = total,
                "cluster: {n} new client(s) refused a virtual IP since the last report \
                 (INTERNAL_ADDRESS_FAILURE): {why}"
            );
        }
        PoolError::Cluster(why)
    }
}

/// A request to the `cluster` thread.
pub(crate) enum Request {
    /// An address of `pool` for the identity whose SHA-256 is `identity` (hex).
    Claim {
        pool: Ipv4Net,
        identity: String,
        reply: SyncSender<Result<Ipv4Addr, String>>,
    },
    Release {
        pool: Ipv4Net,
        addr: Ipv4Addr,
    },
    /// Store the server definition if its generation is still `base`.
    Store {
        base: u64,
        document: Vec<u8>,
        reply: SyncSender<Result<u64, StoreError>>,
    },
    /// What the live nodes report.
    View {
        reply: SyncSender<Result<ClusterView, String>>,
    },
    /// A report of the `api-follow` thread is waiting ([`Shared::take_report`]; at most one
    /// such request is queued, so reports never pile up while etcd is slow).
    Report,
    /// End the thread; `revoke`: give the lease up (every address this node held returns
    /// at once), else keep it for the process that adopts it.
    Stop {
        revoke: bool,
    },
}

/// This node's membership in the cluster, for the daemon's whole life (stacks come and go).
pub(crate) struct Cluster {
    shared: Arc<Shared>,
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Cluster {
    /// Starts the `cluster` thread when `config` has `[cluster]` (`None` without). It
    /// connects and takes a lease in the background: until it has one, new clients are
    /// refused. `adopt`: the lease of a process this one replaces (the in-place upgrade),
    /// kept alive instead of a new one while etcd still knows it.
    pub(crate) fn start(
        config: &Config,
        adopt: Option<&super::handover::ClusterLease>,
    ) -> Result<Option<Arc<Cluster>>, DaemonError> {
        let Some(cfg) = config.cluster() else {
            return Ok(None);
        };
        #[cfg(not(feature = "cluster"))]
        {
            let _ = (cfg, adopt);
            Err(DaemonError::ClusterNotBuilt)
        }
        #[cfg(feature = "cluster")]
        {
            let node_id = match cfg.node_id() {
                Some(id) => id.to_owned(),
                None => host_name()?,
            };
            let shared = Arc::new(Shared::new(node_id));
            if let Some(lease) = adopt {
                // Valid for as long as the old process knew it to be: the restored SAs are
                // not fenced before the first keepalive of this process is answered.
                shared.adopt_lease(lease, Instant::now());
            }
            let (requests, rx) = tokio::sync::mpsc::unbounded_channel();
            let thread = etcd::spawn(cfg.clone(), shared.clone(), rx, adopt.map(|l| l.lease_id))?;
            Ok(Some(Arc::new(Cluster {
                shared,
                requests,
                thread: Mutex::new(Some(thread)),
            })))
        }
    }

    /// The pool's seam for a stack serving `pool`.
    pub(crate) fn leases(&self, pool: Ipv4Net) -> Box<dyn SharedLeases> {
        Box::new(ClusterLeases {
            shared: self.shared.clone(),
            requests: self.requests.clone(),
            pool,
        })
    }

    /// The `ike` thread's view of the lease, to fence itself.
    pub(crate) fn fence(&self) -> Fence {
        Fence {
            shared: self.shared.clone(),
            epoch: None,
            fenced: false,
        }
    }

    /// This node's lease now (id, time it is surely valid): what the in-place upgrade hands
    /// to the process that replaces this one, which passes it to [`Cluster::start`] as
    /// `adopt`.
    pub(crate) fn handover_lease(&self) -> Option<super::handover::ClusterLease> {
        let lease_id = self.shared.lease_id()?;
        let left = self.shared.valid_for(Instant::now()).unwrap_or_default();
        Some(super::handover::ClusterLease {
            lease_id,
            ttl_left_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Clients refused an address so far (metrics).
    pub(crate) fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Whether this node's lease is valid now (metrics).
    pub(crate) fn lease_valid(&self) -> bool {
        self.shared.valid(Instant::now())
    }

    /// Ends the `cluster` thread (after the stacks stopped: their releases go first).
    /// `revoke`: give the lease up, else leave it to expire or to be adopted.
    pub(crate) fn stop(&self, revoke: bool) {
        let _ = self.requests.send(Request::Stop { revoke });
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Cluster {
    /// Sends `request` (built around its reply channel) and waits at most [`CLAIM_WAIT`].
    fn ask<T>(&self, request: impl FnOnce(SyncSender<T>) -> Request) -> Result<T, String> {
        let (reply, answer) = sync_channel(1);
        self.requests
            .send(request(reply))
            .map_err(|_| "the cluster thread has ended".to_string())?;
        answer
            .recv_timeout(CLAIM_WAIT)
            .map_err(|_| format!("etcd did not answer within {CLAIM_WAIT:?}"))
    }

    /// What etcd holds at start, read by the `cluster` thread (`None` when it has not
    /// within [`START_WAIT`]), and the reading's number for [`Cluster::follow`].
    pub(crate) fn first_definition(&self) -> (u64, Option<Stored>) {
        match self.shared.definition_after(0, START_WAIT) {
            Some((seq, stored)) => (seq, Some(stored)),
            None => (0, None),
        }
    }

    /// Starts the `api-follow` thread: each definition the `cluster` thread reads after
    /// reading `seq` goes to `api` ([`Api::adopt`]; one refused is not retried, a busy API
    /// is asked again shortly), and the applied generation and online clients of `backend`
    /// are reported every [`REPORT_EVERY`], until `stop`.
    pub(crate) fn follow(
        self: &Arc<Self>,
        api: Arc<Api>,
        backend: Arc<dyn Backend>,
        stop: &Arc<AtomicBool>,
        mut seq: u64,
    ) -> Result<JoinHandle<()>, DaemonError> {
        let me = self.clone();
        let stopping = stop.clone();
        super::supervise::spawn("api-follow".into(), stop, move || {
            let mut reported = Instant::now();
            let mut report = true;
            while !stopping.load(Ordering::SeqCst) {
                if let Some((next, stored)) = me.shared.definition_after(seq, REPORT_EVERY / 4) {
                    match api.adopt(&stored) {
                        Adopted::Busy => std::thread::sleep(REPORT_EVERY / 10),
                        _ => seq = next,
                    }
                }
                if report || reported.elapsed() >= REPORT_EVERY {
                    let online = u64::try_from(backend.online_clients()).unwrap_or(u64::MAX);
                    let generation = api.applied_generation();
                    if me.shared.set_report(generation, online) {
                        let _ = me.requests.send(Request::Report);
                    }
                    reported = Instant::now();
                    report = false;
                }
            }
            Ok(())
        })
    }
}

impl SharedDefinition for Cluster {
    fn store(&self, base: u64, document: Vec<u8>) -> Result<u64, StoreError> {
        self.ask(|reply| Request::Store {
            base,
            document,
            reply,
        })
        .map_err(StoreError::Unavailable)?
    }

    fn view(&self) -> Option<ClusterView> {
        match self.ask(|reply| Request::View { reply }).and_then(|v| v) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::debug!(
                    "cluster: the nodes' reports could not be read ({e}); answering for this node"
                );
                None
            }
        }
    }
}

/// The host name, the default `node_id`.
fn host_name() -> Result<String, DaemonError> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| DaemonError::Cluster(format!("reading the host name for node_id: {e}")))?;
    crate::config::cluster_node_id(name.trim()).map_err(|e| {
        DaemonError::Cluster(format!(
            "the host name is no valid node id ({e}): set cluster.node_id"
        ))
    })
}

/// The pool's [`SharedLeases`] in cluster mode: claims go to the `cluster` thread.
pub(crate) struct ClusterLeases {
    shared: Arc<Shared>,
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
    pool: Ipv4Net,
}

/// The key an identity is remembered under: SHA-256 of the IDi payload body, in hex (a
/// fixed length whatever the identity, and no identity in etcd's keys).
pub(crate) fn identity_key(identity: &[u8]) -> String {
    Sha256::digest(identity)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl SharedLeases for ClusterLeases {
    fn claim(&mut self, identity: &[u8]) -> Result<Ipv4Addr, PoolError> {
        let now = Instant::now();
        if !self.shared.valid(now) {
            return Err(self.shared.refuse(
                now,
                "this node holds no valid etcd lease (etcd unreachable?)".into(),
            ));
        }
        let (reply, answer) = sync_channel(1);
        let request = Request::Claim {
            pool: self.pool,
            identity: identity_key(identity),
            reply,
        };
        if self.requests.send(request).is_err() {
            return Err(self
                .shared
                .refuse(now, "the cluster thread has ended".into()));
        }
        match answer.recv_timeout(CLAIM_WAIT) {
            Ok(Ok(addr)) => Ok(addr),
            Ok(Err(why)) => Err(self.shared.refuse(Instant::now(), why)),
            Err(RecvTimeoutError::Timeout) => Err(self.shared.refuse(
                Instant::now(),
                format!("etcd did not answer within {CLAIM_WAIT:?}"),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(self
                .shared
                .refuse(Instant::now(), "the cluster thread has ended".into())),
        }
    }

    fn release(&mut self, addr: Ipv4Addr) {
        let _ = self.requests.send(Request::Release {
            pool: self.pool,
            addr,
        });
    }
}

/// The `ike` thread's check of this node's lease ([`Fence::check`], at each tick and before
/// each datagram).
pub(crate) struct Fence {
    shared: Arc<Shared>,
    /// The lease epoch the SAs were made under.
    epoch: Option<u64>,
    fenced: bool,
}

/// Why the `ike` thread must drop every SA now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fenced {
    /// The lease was not renewed in time: etcd may hand the addresses out again soon.
    Expired,
    /// A new lease replaced the one the SAs' addresses were held under.
    NewLease,
}

impl std::fmt::Display for Fenced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fenced::Expired => "the lease was not renewed in time",
            Fenced::NewLease => "a new lease replaced the one the addresses were held under",
        })
    }
}

impl Fence {
    /// `Some` when the SAs must go now: on the change to fenced, and on a new lease.
    pub(crate) fn check(&mut self, now: Instant) -> Option<Fenced> {
        let valid = self.shared.valid(now);
        let epoch = self.shared.epoch.load(Ordering::SeqCst);
        if !valid {
            let first = !self.fenced;
            self.fenced = true;
            return first.then_some(Fenced::Expired);
        }
        self.fenced = false;
        match self.epoch.replace(epoch) {
            Some(old) if old != epoch => Some(Fenced::NewLease),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_is_valid_until_the_keepalive_plus_ttl_minus_the_margin() {
        let s = Shared::new("n1".into());
        let t0 = s.base;
        assert!(!s.valid(t0), "no lease yet");
        s.new_lease(7, t0, Duration::from_secs(10));
        assert_eq!(s.lease_id(), Some(7));
        assert!(s.valid(t0 + Duration::from_secs(6)));
        assert!(!s.valid(t0 + Duration::from_secs(7)), "10 s - 3 s margin");
        s.renewed(t0 + Duration::from_secs(5), Duration::from_secs(10));
        assert!(s.valid(t0 + Duration::from_secs(11)));
        // An older keepalive's answer arriving late never shortens it.
        s.renewed(t0 + Duration::from_secs(1), Duration::from_secs(10));
        assert!(s.valid(t0 + Duration::from_secs(11)));
        s.lost_lease();
        assert!(!s.valid(t0 + Duration::from_secs(1)));
        assert_eq!(s.lease_id(), None);
    }

    #[test]
    fn an_adopted_lease_is_valid_for_what_the_old_process_had_left() {
        let s = Shared::new("n1".into());
        let t0 = s.base;
        let lease = crate::daemon::handover::ClusterLease {
            lease_id: 9,
            ttl_left_ms: 4000,
        };
        s.adopt_lease(&lease, t0);
        assert_eq!(s.lease_id(), Some(9));
        assert!(s.valid(t0 + Duration::from_millis(3900)));
        assert!(!s.valid(t0 + Duration::from_millis(4000)));
        // The restored SAs' fence sees a valid lease of the first epoch: nothing fires
        // until it expires; a keepalive of the same lease extends it without a new epoch.
        let mut fence = Fence {
            shared: Arc::new(s),
            epoch: None,
            fenced: false,
        };
        assert_eq!(fence.check(t0), None);
        fence
            .shared
            .renewed(t0 + Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(fence.check(t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn the_fence_fires_once_on_expiry_and_on_a_new_lease() {
        let s = Arc::new(Shared::new("n1".into()));
        let t0 = s.base;
        let mut f = Fence {
            shared: s.clone(),
            epoch: None,
            fenced: false,
        };
        assert_eq!(f.check(t0), Some(Fenced::Expired), "no lease: fenced");
        assert_eq!(f.check(t0), None, "once");
        s.new_lease(1, t0, Duration::from_secs(10));
        assert_eq!(f.check(t0), None, "first lease: nothing to drop");
        assert!(!f.fenced);
        let late = t0 + Duration::from_secs(8);
        assert_eq!(f.check(late), Some(Fenced::Expired));
        assert!(f.fenced);
        s.new_lease(2, late, Duration::from_secs(10));
        assert_eq!(f.check(late), Some(Fenced::NewLease));
        assert_eq!(f.check(late), None);
    }

    #[test]
    fn a_fenced_node_refuses_without_waiting_and_counts_it() {
        let s = Arc::new(Shared::new("n1".into()));
        let (requests, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut leases = ClusterLeases {
            shared: s.clone(),
            requests,
            pool: "10.0.0.0/24".parse().unwrap(),
        };
        let err = leases.claim(b"alice").unwrap_err();
        assert!(matches!(err, PoolError::Cluster(ref w) if w.contains("no valid etcd lease")));
        assert!(rx.try_recv().is_err(), "etcd was not asked");
        assert_eq!(s.refused.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn at_most_one_report_request_is_queued() {
        let s = Shared::new("n1".into());
        assert!(s.set_report(1, 0), "the first is queued");
        assert!(!s.set_report(1, 1), "the next waits for the queued one");
        assert!(!s.set_report(2, 5));
        assert_eq!(s.take_report(), Some((2, 5)), "the newest is taken");
        assert!(s.set_report(2, 6), "queued again once taken");
    }

    #[test]
    fn identities_are_keyed_by_their_sha256() {
        let k = identity_key(b"alice");
        assert_eq!(k.len(), 64);
        assert_eq!(
            k,
            "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"
        );
    }
}

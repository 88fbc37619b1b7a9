//! The responder: IKE SA table, message-ID window and retransmission cache (RFC 7296 §2.1–2.3),
//! dispatch of each exchange to its own module.
//!
//! Invariants:
//! - no field of an IKE SA changes before a request's ICV verified ([`SkCrypto::open`] and
//!   the fragment reassembly yield authentic payloads or a drop);
//! - a cached response is resent only for a byte-identical request (by its SHA-256), to the
//!   address it came from, at most once per [`RETRANSMIT_EVERY`];
//! - an IKE SA's state is a type ([`SaState`]): IKE_AUTH takes a [`HalfOpen`] SA by value,
//!   the other exchanges an [`Established`] one;
//! - the half-open index is keyed by (SPIi, address) and each half-open SA knows its key, so
//!   removing one is O(1).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use rand::RngCore;
use rand_core::CryptoRngCore;
use tracing::{debug, info};

use crate::crypto::IkeKeys;
use crate::pool::{Pool, SharedLeases};
use crate::wire::{
    ExchangeType, Header, IdPayload, Message, Payload, PayloadType, FLAG_RESPONSE, IKEV2_VERSION,
};

use super::budget::{AuthBackoff, DhRate, Refusal, Refusals};
use super::cookie::CookieJar;
use super::error::encode_response;
use super::fragment::Reassembly;
use super::nat::Nat;
use super::proposal::EspSuite;
use super::reauth::Authenticated;
use super::requests::{Pending, Request, SEQ_REKEY_RETRY};
use super::sk::SkCrypto;
use super::Ipv4Range;
use super::{id_to_string, Action, IkeError, IkeSuite, ResponderConfig, UniquePolicy};

/// One IKE message as received: its bytes, its parsed header, and the addresses it travelled
/// between (ours, the peer's). What [`Responder::handle`] hands to each kind of message.
#[derive(Clone, Copy)]
pub(crate) struct Received<'a> {
    pub bytes: &'a [u8],
    pub header: &'a Header,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// One IKE SA as the responder keeps it: what every state has, and the state.
pub(crate) struct IkeSa {
    pub core: SaCore,
    pub state: SaState,
}

/// What an IKE SA has in every state.
pub(crate) struct SaCore {
    pub spi_i: u64,
    pub spi_r: u64,
    pub suite: IkeSuite,
    pub keys: IkeKeys,
    pub sk: SkCrypto,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub created: Instant,
    /// NAT between us (or a peer faking it, as kernel-libipsec does): ESP goes in UDP.
    pub udp_encap: bool,
    /// What NAT detection found in IKE_SA_INIT (status only).
    pub nat: Nat,
    /// The peer announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3).
    pub peer_fragmentation: bool,
    /// Last time the peer showed life: an authenticated IKE message or inbound ESP.
    pub last_activity: Instant,
    /// The peer's requests: message-ID window, cached response, reassembly.
    pub window: Window,
}

/// The state of an IKE SA: each exchange handler takes the state it is valid in, so that,
/// for example, IKE_AUTH on an established SA cannot be written.
// Most IKE SAs are established; half-open ones are bounded by `limits.half_open_max`, so the
// unboxed, larger `Established` costs less than an allocation per SA would.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SaState {
    /// IKE_SA_INIT answered, waiting for IKE_AUTH.
    HalfOpen(HalfOpen),
    /// Authenticated: an identity, usually a lease and Child SAs.
    Established(Established),
}

/// A half-open IKE SA: what IKE_AUTH needs.
pub(crate) struct HalfOpen {
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// IKE_SA_INIT request and response as sent: signed by AUTH (§2.15), and the request
    /// identifies a retransmission.
    pub init_request: Vec<u8>,
    pub init_response: Vec<u8>,
    /// Where the IKE_SA_INIT came from: with SPIi, the key of the half-open index.
    pub init_from: SocketAddr,
}

/// An established IKE SA.
pub(crate) struct Established {
    pub since: Instant,
    pub identity: IdPayload,
    pub vip: Option<Ipv4Addr>,
    pub children: Vec<Child>,
    /// The peer announced MOBIKE_SUPPORTED (RFC 4555 §4.2.1).
    pub peer_mobike: bool,
    /// Hard IKE lifetime: the SA is deleted then unless the client rekeyed it.
    pub expires: Option<Instant>,
    /// The client's last IKE_AUTH and its deadline for the next, across rekeys (`reauth`).
    pub auth: Authenticated,
    /// The client rekeyed this IKE SA (§2.18): it only waits for its DELETE, creates nothing
    /// more and is no longer counted as a connection.
    pub rekeyed: bool,
    /// The IKE SA this one replaced, while it waits for its DELETE.
    pub predecessor: Option<u64>,
    /// Our own requests (§2.1 window of one): the next message ID, the request in flight,
    /// the ones waiting for it.
    pub our_next_id: u32,
    pub pending: Option<Pending>,
    pub outbox: VecDeque<Request>,
}

impl Established {
    /// Child SAs that were not rekeyed: what counts against `child_sas_per_ike_sa`.
    pub fn live_children(&self) -> usize {
        self.children.iter().filter(|c| !c.rekeyed).count()
    }
}

/// The peer's side of the message-ID window (§2.1–2.3).
pub(crate) struct Window {
    /// Message ID the next request from the initiator must carry.
    pub next_request_id: u32,
    /// The response to request `next_request_id - 1`, resent on retransmission.
    pub cached: Option<Cached>,
    /// A fragmented request being reassembled (RFC 7383 §2.6).
    pub fragments: Option<Reassembly>,
}

impl Window {
    /// The window of a new IKE SA whose next request carries `next_request_id`.
    pub fn new(next_request_id: u32) -> Self {
        Self {
            next_request_id,
            cached: None,
            fragments: None,
        }
    }
}

/// A response as sent (several datagrams when fragmented) and the request it answers.
pub(crate) struct Cached {
    /// SHA-256 of the request datagram (its first fragment when fragmented): only a
    /// byte-identical retransmission is answered.
    pub(super) request: [u8; 32],
    pub(super) datagrams: Vec<Vec<u8>>,
    pub(super) last_sent: Instant,
}

/// A retransmitted request is answered at most this often per IKE SA.
pub(crate) const RETRANSMIT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The SHA-256 of a request datagram.
pub(crate) fn request_hash(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// A Child SA pair of an IKE SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Child {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    /// Narrowed local selectors, reused when we rekey it.
    pub local_ts: Vec<Ipv4Range>,
    /// When we rekey it ourselves unless the client did first (soft lifetime, jittered).
    pub rekey_at: Option<Instant>,
    /// Hard lifetime.
    pub expires_at: Option<Instant>,
    /// A newer Child SA replaced this one; it only waits for its DELETE.
    pub rekeyed: bool,
    /// Inbound ESP packets seen at the last activity check.
    pub inbound_packets: u64,
    /// When we last queued a rekey because its sequence numbers run low
    /// ([`Responder::rekey_soon`]); asked again only [`SEQ_REKEY_RETRY`] later.
    pub seq_rekey_asked: Option<Instant>,
    /// The algorithms it was created with (a reconfiguration changes only new ones).
    pub esp: EspSuite,
    pub installed: Instant,
    /// When its inbound packet counter last moved ([`Responder::refresh_activity`]).
    pub last_inbound: Option<Instant>,
}

/// A snapshot of one IKE SA for `ipsec-server status` (times in seconds relative to the
/// `now` given to [`Responder::sas`]).
#[derive(Debug, Clone)]
pub struct SaInfo {
    pub spi_i: u64,
    pub spi_r: u64,
    /// Empty while half open.
    pub identity: String,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub nat: Nat,
    pub vip: Option<Ipv4Addr>,
    pub established: bool,
    /// The client rekeyed this IKE SA; it waits for its DELETE.
    pub rekeyed: bool,
    pub suite: IkeSuite,
    /// Since IKE_SA_INIT (half open) or since it was established (or rekeyed).
    pub age_secs: u64,
    /// Until its hard lifetime ends (`ike_lifetime`); `None` = unlimited. The gateway
    /// leaves IKE SA rekeys to the client.
    pub expires_in_secs: Option<u64>,
    /// Seconds left for the client to authenticate again (`reauth`); `None` = no deadline.
    pub reauth_in_secs: Option<u64>,
    pub children: Vec<ChildInfo>,
}

/// A Child SA pair of an [`SaInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    pub spi_in: u32,
    pub spi_out: u32,
    pub suite: EspSuite,
    /// Narrowed local selectors; the remote one is the client's virtual IP.
    pub local_ts: Vec<Ipv4Range>,
    pub installed_secs: u64,
    /// Until we rekey it unless the client does first; `None` = never by time.
    pub rekey_in_secs: Option<u64>,
    pub expires_in_secs: Option<u64>,
    /// Since its inbound packet counter last moved (about a second's resolution); `None` =
    /// no packet yet.
    pub last_inbound_secs: Option<u64>,
    /// A newer Child SA replaced it; it waits for its DELETE.
    pub rekeyed: bool,
}

/// Sizes of the responder's tables ([`Responder::usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// IKE SAs of every state, rekeyed ones waiting for their DELETE included.
    pub ike_sas: usize,
    /// IKE SAs waiting for IKE_AUTH.
    pub half_open: usize,
    /// Established IKE SAs that were not rekeyed (what `max_connections` counts).
    pub connections: usize,
    /// Child SAs of all IKE SAs.
    pub child_sas: usize,
    /// Inbound ESP SPIs taken: one per Child SA, plus one per Child SA rekey of ours in
    /// flight.
    pub inbound_spis: usize,
    /// Virtual IP addresses leased from the pool.
    pub leases: usize,
}

pub struct Responder {
    pub(crate) cfg: Arc<ResponderConfig>,
    pub(crate) sas: HashMap<u64, IkeSa>,
    /// (SPIi, initiator address) → SPIr of SAs still waiting for IKE_AUTH.
    pub(crate) half_open: HashMap<(u64, SocketAddr), u64>,
    half_open_per_ip: HashMap<IpAddr, usize>,
    /// Established IKE SAs that were not rekeyed: the connections, counted against
    /// `max_connections`.
    established: usize,
    pub(crate) pool: Pool,
    pub(crate) cookies: CookieJar,
    pub(crate) inbound_spis: HashSet<u32>,
    /// IDi → SPIr of IKE SAs with that identity (may hold stale SPIs; checked on use), so
    /// INITIAL_CONTACT does not scan every SA.
    by_identity: HashMap<IdPayload, Vec<u64>>,
    pub(crate) dh_rate: DhRate,
    pub(crate) auth_backoff: AuthBackoff,
    pub(crate) refusals: Refusals,
    /// Handshake outcomes, rekeys, unanswered peers (for metrics).
    pub(crate) counters: super::Counters,
    /// Counted up by each PSK change: which PSK an IKE SA's client used (`reauth`).
    pub(crate) psk_generation: u64,
}

impl Responder {
    pub fn new(cfg: Arc<ResponderConfig>) -> Self {
        let pool = Pool::new(cfg.pool, cfg.max_connections);
        Self {
            cfg,
            sas: HashMap::new(),
            half_open: HashMap::new(),
            half_open_per_ip: HashMap::new(),
            established: 0,
            pool,
            cookies: CookieJar::new(),
            inbound_spis: HashSet::new(),
            by_identity: HashMap::new(),
            dh_rate: DhRate::default(),
            auth_backoff: AuthBackoff::default(),
            refusals: Refusals::default(),
            counters: Default::default(),
            psk_generation: 0,
        }
    }

    pub fn config(&self) -> &ResponderConfig {
        &self.cfg
    }

    /// Handles one IKE message (non-ESP marker stripped) that arrived at `local` from `remote`.
    pub fn handle(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        bytes: &[u8],
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Vec<Action> {
        self.cookies.maybe_rotate(now, rng.as_rngcore());
        if bytes.len() > self.cfg.limits.max_ike_message {
            self.refusals
                .record(now, remote.ip(), Refusal::TooLarge, || {
                    format!("{} octets", bytes.len())
                });
            return Vec::new();
        }
        let header = match Header::parse(bytes) {
            Ok(h) => h,
            Err(e) => {
                debug!(%remote, "dropping unparseable IKE header: {e}");
                return Vec::new();
            }
        };
        if header.version >> 4 != IKEV2_VERSION >> 4 {
            debug!(%remote, version = header.version, "dropping message of another IKE major version");
            return Vec::new();
        }
        if !header.is_initiator() {
            // We are the original responder of every IKE SA: all we receive comes from an
            // original initiator (§3.1, I flag).
            debug!(%remote, "dropping message without the Initiator flag");
            return Vec::new();
        }
        let rx = Received {
            bytes,
            header: &header,
            local,
            remote,
        };
        if header.is_response() {
            return self.our_response(now, rng, rx);
        }
        if header.exchange == ExchangeType::IKE_SA_INIT {
            return self.ike_sa_init(now, rng, rx);
        }
        self.protected_request(now, rng, rx)
    }

    /// Timers, about once a second: half-open SAs expire, the cookie secret rotates, our own
    /// requests are retransmitted, lifetimes end, Child SAs the client did not rekey (or that
    /// [`Self::rekey_soon`] named) are rekeyed, silent peers are checked (DPD), the refusal
    /// summary is logged.
    pub fn tick(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) -> Vec<Action> {
        self.cookies.maybe_rotate(now, rng.as_rngcore());
        self.refusals.maybe_summarize(now);
        let timeout = self.cfg.limits.half_open_timeout;
        let expired: Vec<u64> = self
            .half_open
            .values()
            .filter_map(|spi| self.sas.get(spi))
            .filter(|sa| now.saturating_duration_since(sa.core.created) >= timeout)
            .map(|sa| sa.core.spi_r)
            .collect();
        let mut actions = Vec::new();
        self.counters.timed_out += expired.len() as u64;
        for spi in expired {
            debug!(
                spi_r = format_args!("{spi:016x}"),
                "half-open IKE SA timed out"
            );
            actions.extend(self.remove_sa(spi));
        }
        let established: Vec<u64> = self
            .sas
            .values()
            .filter(|sa| matches!(sa.state, SaState::Established(_)))
            .map(|sa| sa.core.spi_r)
            .collect();
        for spi in established {
            actions.extend(self.maintain(spi, now, rng));
        }
        actions
    }

    /// The data plane reports that the Child SA with our SPI `inbound_spi` runs out of
    /// sequence numbers (`ipsec::REKEY_AT_SEQ`): we rekey it now (CREATE_CHILD_SA as the
    /// initiator, as at the end of a lifetime), whatever its lifetime, unless a rekey of it
    /// is already queued or in flight, it was rekeyed already, or we asked less than
    /// [`SEQ_REKEY_RETRY`] ago (a client that refuses is not asked every second). The
    /// request goes out with the next [`Self::tick`]. Costs a scan of the IKE SAs; called
    /// only for the few SAs over the threshold.
    pub fn rekey_soon(&mut self, now: Instant, inbound_spi: u32) {
        for sa in self.sas.values_mut() {
            let SaState::Established(e) = &mut sa.state else {
                continue;
            };
            let Some(c) = e.children.iter_mut().find(|c| c.inbound_spi == inbound_spi) else {
                continue;
            };
            let asked_lately = c
                .seq_rekey_asked
                .is_some_and(|t| now.saturating_duration_since(t) < SEQ_REKEY_RETRY);
            if c.rekeyed || asked_lately {
                return;
            }
            c.seq_rekey_asked = Some(now);
            if !super::requests::rekey_requested(e, inbound_spi) {
                info!(
                    remote = %sa.core.remote,
                    spi_in = format_args!("{inbound_spi:08x}"),
                    "Child SA runs out of sequence numbers: rekeying it"
                );
                e.outbox.push_back(Request::RekeyChild {
                    old_inbound: inbound_spi,
                });
            }
            return;
        }
    }

    /// Records data-plane liveness: `inbound_packets(spi)` is the inbound packet counter of
    /// the Child SA with our SPI `spi`. A peer whose counters move is alive (no DPD needed).
    pub fn refresh_activity(&mut self, now: Instant, inbound_packets: &dyn Fn(u32) -> u64) {
        for sa in self.sas.values_mut() {
            let SaState::Established(e) = &mut sa.state else {
                continue;
            };
            for c in &mut e.children {
                let n = inbound_packets(c.inbound_spi);
                if n != c.inbound_packets {
                    c.inbound_packets = n;
                    c.last_inbound = Some(now);
                    sa.core.last_activity = now;
                }
            }
        }
    }

    /// Status snapshot of every IKE SA.
    pub fn sas(&self, now: Instant) -> Vec<SaInfo> {
        let secs_until = |t: Instant| t.saturating_duration_since(now).as_secs();
        let secs_since = |t: Instant| now.saturating_duration_since(t).as_secs();
        self.sas
            .values()
            .map(|sa| {
                let c = &sa.core;
                let mut info = SaInfo {
                    spi_i: c.spi_i,
                    spi_r: c.spi_r,
                    identity: String::new(),
                    local: c.local,
                    remote: c.remote,
                    nat: c.nat,
                    vip: None,
                    established: false,
                    rekeyed: false,
                    suite: c.suite,
                    age_secs: secs_since(c.created),
                    expires_in_secs: None,
                    reauth_in_secs: None,
                    children: Vec::new(),
                };
                if let SaState::Established(e) = &sa.state {
                    info.identity = id_to_string(&e.identity);
                    info.vip = e.vip;
                    info.established = true;
                    info.rekeyed = e.rekeyed;
                    info.age_secs = secs_since(e.since);
                    info.expires_in_secs = e.expires.map(secs_until);
                    info.reauth_in_secs = e.auth.reauth_by.map(secs_until);
                    info.children = e
                        .children
                        .iter()
                        .map(|ch| ChildInfo {
                            spi_in: ch.inbound_spi,
                            spi_out: ch.outbound_spi,
                            suite: ch.esp,
                            local_ts: ch.local_ts.clone(),
                            installed_secs: secs_since(ch.installed),
                            rekey_in_secs: ch.rekey_at.map(secs_until),
                            expires_in_secs: ch.expires_at.map(secs_until),
                            last_inbound_secs: ch.last_inbound.map(secs_since),
                            rekeyed: ch.rekeyed,
                        })
                        .collect();
                }
                info
            })
            .collect()
    }

    /// The client address pool: network, addresses leased, addresses it can lease.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Cluster mode: virtual IPs come from the cluster's `shared` leases (`Pool::share`).
    pub fn share_pool(&mut self, shared: Box<dyn SharedLeases>) {
        self.pool.share(shared);
    }

    /// Number of established IKE SAs (OnlineClientCount).
    pub fn online_clients(&self) -> usize {
        self.established
    }

    /// How much of each table the responder holds now: what the DoS bounds limit, for
    /// status and metrics, and for tests and fuzzing to check those bounds.
    pub fn usage(&self) -> Usage {
        let children = self
            .sas
            .values()
            .map(|sa| match &sa.state {
                SaState::HalfOpen(_) => 0,
                SaState::Established(e) => e.children.len(),
            })
            .sum();
        Usage {
            ike_sas: self.sas.len(),
            half_open: self.half_open.len(),
            connections: self.established,
            child_sas: children,
            inbound_spis: self.inbound_spis.len(),
            leases: self.pool.in_use(),
        }
    }

    /// Refused or dropped IKE messages since start, by reason.
    pub fn refusals(&self) -> Vec<(Refusal, u64)> {
        self.refusals.totals()
    }

    /// What the responder did since it started (handshake outcomes, rekeys, DPD timeouts).
    pub fn counters(&self) -> super::Counters {
        self.counters
    }

    /// The number of addresses the pool can lease (within `max_connections`).
    pub fn pool_size(&self) -> usize {
        self.pool.capacity()
    }

    /// Deletes every IKE SA, sending INFORMATIONAL DELETE to each established peer (shutdown
    /// or EffectImmediately), without waiting for the answers.
    pub fn delete_all(&mut self, rng: &mut dyn CryptoRngCore) -> Vec<Action> {
        let spis: Vec<u64> = self.sas.keys().copied().collect();
        self.delete(&spis, rng)
    }

    /// Deletes the IKE SAs with these SPIr (and the one each replaced, still waiting for the
    /// client's DELETE) as [`Self::delete_all`] does: an INFORMATIONAL DELETE to each
    /// established peer, without waiting for the answer, and their Child SAs and leases
    /// released (`ipsec-server terminate`). Unknown SPIs are skipped.
    pub fn delete(&mut self, spis: &[u64], rng: &mut dyn CryptoRngCore) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut todo = spis.to_vec();
        while let Some(spi) = todo.pop() {
            let Some(sa) = self.sas.remove(&spi) else {
                continue;
            };
            if let SaState::Established(e) = &sa.state {
                debug!(remote = %sa.core.remote, "sending DELETE for the IKE SA");
                actions.extend(self.delete_ike_message(&sa.core, e, rng));
                todo.extend(e.predecessor);
            }
            actions.extend(self.cleanup(sa));
        }
        actions
    }

    /// Everything an IKE message could change, as text (tests compare it before and after).
    #[cfg(test)]
    pub(crate) fn digest(&self) -> String {
        let mut spis: Vec<&u64> = self.sas.keys().collect();
        spis.sort();
        let mut out = format!(
            "half_open={:?} per_ip={:?} established={} leases={} inbound={:?}\n",
            self.half_open,
            self.half_open_per_ip,
            self.established,
            self.pool.in_use(),
            {
                let mut v: Vec<_> = self.inbound_spis.iter().collect();
                v.sort();
                v
            }
        );
        for spi in spis {
            let sa = &self.sas[spi];
            let c = &sa.core;
            let w = &c.window;
            out += &format!(
                "{:016x}/{:016x} local={} remote={} encap={} activity={:?} next={} cached={:?} fragments={}\n",
                c.spi_i,
                c.spi_r,
                c.local,
                c.remote,
                c.udp_encap,
                c.last_activity,
                w.next_request_id,
                w.cached.as_ref().map(|x| (x.request, x.datagrams.clone(), x.last_sent)),
                w.fragments.is_some(),
            );
            out += &match &sa.state {
                SaState::HalfOpen(h) => format!("  half-open from {}\n", h.init_from),
                SaState::Established(e) => format!(
                    "  established {:?} vip={:?} children={:?} rekeyed={} ours={} pending={:?} outbox={:?} expires={:?} auth={:?}\n",
                    e.identity,
                    e.vip,
                    e.children,
                    e.rekeyed,
                    e.our_next_id,
                    e.pending.as_ref().map(|p| p.message_id),
                    e.outbox,
                    e.expires,
                    e.auth
                ),
            };
        }
        out
    }

    // ---- helpers shared by the exchange modules ----

    pub(crate) fn insert_half_open(&mut self, sa: SaCore, half: HalfOpen) {
        self.half_open.insert((sa.spi_i, half.init_from), sa.spi_r);
        *self
            .half_open_per_ip
            .entry(half.init_from.ip())
            .or_default() += 1;
        self.sas.insert(
            sa.spi_r,
            IkeSa {
                core: sa,
                state: SaState::HalfOpen(half),
            },
        );
    }

    pub(crate) fn half_open_count(&self) -> usize {
        self.half_open.len()
    }

    pub(crate) fn half_open_from(&self, ip: IpAddr) -> usize {
        self.half_open_per_ip.get(&ip).copied().unwrap_or(0)
    }

    pub(crate) fn established_count(&self) -> usize {
        self.established
    }

    /// Forgets the half-open bookkeeping of an IKE SA (it authenticated or went away): O(1).
    fn leave_half_open(&mut self, spi_i: u64, init_from: SocketAddr) {
        if self.half_open.remove(&(spi_i, init_from)).is_some() {
            if let Some(n) = self.half_open_per_ip.get_mut(&init_from.ip()) {
                *n -= 1;
                if *n == 0 {
                    self.half_open_per_ip.remove(&init_from.ip());
                }
            }
        }
    }

    /// Removes an IKE SA with its Child SAs and lease.
    pub(crate) fn remove_sa(&mut self, spi_r: u64) -> Vec<Action> {
        let Some(sa) = self.sas.remove(&spi_r) else {
            return Vec::new();
        };
        self.cleanup(sa)
    }

    /// Releases everything `sa` (already out of the table) held; returns the data-plane
    /// deletions.
    pub(crate) fn cleanup(&mut self, sa: IkeSa) -> Vec<Action> {
        match sa.state {
            SaState::HalfOpen(h) => {
                self.leave_half_open(sa.core.spi_i, h.init_from);
                Vec::new()
            }
            SaState::Established(e) => self.cleanup_established(sa.core.spi_r, e),
        }
    }

    /// Releases the lease, identity entry and Child SAs of an established IKE SA.
    pub(crate) fn cleanup_established(&mut self, spi_r: u64, e: Established) -> Vec<Action> {
        if !e.rekeyed {
            self.established = self.established.saturating_sub(1);
        }
        if let Some(vip) = e.vip {
            self.pool.release(vip);
        }
        if let Some(spis) = self.by_identity.get_mut(&e.identity) {
            spis.retain(|&s| s != spi_r);
            if spis.is_empty() {
                self.by_identity.remove(&e.identity);
            }
        }
        for spi in super::requests::requested_spis(&e) {
            self.inbound_spis.remove(&spi);
        }
        e.children
            .iter()
            .map(|c| {
                self.inbound_spis.remove(&c.inbound_spi);
                Action::DeleteChild {
                    inbound_spi: c.inbound_spi,
                }
            })
            .collect()
    }

    /// Puts an established IKE SA into the table, counted and indexed by its identity (for
    /// the `unique` policy).
    pub(crate) fn insert_established(&mut self, core: SaCore, e: Established) {
        let spis = self.by_identity.entry(e.identity.clone()).or_default();
        if !spis.contains(&core.spi_r) {
            spis.push(core.spi_r);
        }
        // Only a restored SA (`super::snapshot`) can arrive rekeyed.
        if !e.rekeyed {
            self.established += 1;
        }
        self.sas.insert(
            core.spi_r,
            IkeSa {
                core,
                state: SaState::Established(e),
            },
        );
    }

    /// The client rekeyed this IKE SA: it is no longer a connection.
    pub(crate) fn mark_rekeyed(&mut self, e: &mut Established) {
        if !e.rekeyed {
            e.rekeyed = true;
            self.established = self.established.saturating_sub(1);
        }
    }

    /// Puts back an IKE SA that was taken out of the table to be worked on, uncounted.
    pub(crate) fn put_back(&mut self, sa: IkeSa) {
        self.sas.insert(sa.core.spi_r, sa);
    }

    /// A fresh SPI for an inbound Child SA: ≥ 256 (RFC 4303 §2.1 reserves 1..=255), unique.
    pub(crate) fn new_inbound_spi(&mut self, rng: &mut dyn RngCore) -> u32 {
        loop {
            let spi = rng.next_u32();
            if spi >= 0x100 && self.inbound_spis.insert(spi) {
                return spi;
            }
        }
    }

    /// A fresh, unused, nonzero IKE SPI.
    pub(crate) fn new_ike_spi(&self, rng: &mut dyn RngCore) -> u64 {
        loop {
            let spi = rng.next_u64();
            if spi != 0 && !self.sas.contains_key(&spi) {
                return spi;
            }
        }
    }

    /// IKE_AUTH succeeded for `spi_r`: apply the `unique` policy to older SAs of the same
    /// identity (§2.4 INITIAL_CONTACT; the `unique` key, README Configuration).
    pub(crate) fn replace_older(
        &mut self,
        spi_r: u64,
        identity: &IdPayload,
        remote: IpAddr,
    ) -> Vec<Action> {
        let policy = self.cfg.unique;
        let older: Vec<u64> = self
            .by_identity
            .get(identity)
            .into_iter()
            .flatten()
            .filter_map(|spi| self.sas.get(spi))
            .filter(|sa| {
                sa.core.spi_r != spi_r
                    && matches!(&sa.state, SaState::Established(e) if &e.identity == identity)
            })
            .filter(|sa| match policy {
                UniquePolicy::Never => false,
                UniquePolicy::Replace => true,
                UniquePolicy::SameAddress => sa.core.remote.ip() == remote,
            })
            .map(|sa| sa.core.spi_r)
            .collect();
        let mut actions = Vec::new();
        for spi in older {
            info!(identity = %id_to_string(identity), "replacing older IKE SA {spi:016x} of the same identity");
            actions.extend(self.remove_sa(spi));
        }
        actions
    }

    /// A request on an existing IKE SA. Until its ICV verified, nothing of the SA changes:
    /// a retransmission is answered from the cache (byte-identical requests only, rate
    /// limited, to where it came from) and anything else that does not authenticate is
    /// dropped silently.
    fn protected_request(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        rx: Received<'_>,
    ) -> Vec<Action> {
        let Received {
            bytes,
            header,
            local,
            remote,
        } = rx;
        let Some(sa) = self.sas.get_mut(&header.spi_r) else {
            debug!(%remote, "request for unknown IKE SA {:016x}", header.spi_r);
            return Vec::new();
        };
        if sa.core.spi_i != header.spi_i {
            return Vec::new();
        }
        let window = &mut sa.core.window;
        // §2.2: a retransmitted request gets the cached response; anything else outside the
        // window is dropped. A fragmented request is retransmitted fragment by fragment:
        // only its first fragment is answered (RFC 7383 §2.6.1).
        if header.message_id.wrapping_add(1) == window.next_request_id {
            if !super::fragment::is_first_or_whole(bytes) {
                return Vec::new();
            }
            let cached = window
                .cached
                .as_mut()
                .filter(|c| c.request == request_hash(bytes));
            let Some(cached) = cached else {
                self.refusals
                    .record(now, remote.ip(), Refusal::OutsideWindow, || {
                        format!(
                            "message ID {} not byte-identical to the cached request",
                            header.message_id
                        )
                    });
                return Vec::new();
            };
            if now.saturating_duration_since(cached.last_sent) < RETRANSMIT_EVERY {
                self.refusals
                    .record(now, remote.ip(), Refusal::RetransmitLimited, || {
                        format!("message ID {}", header.message_id)
                    });
                return Vec::new();
            }
            cached.last_sent = now;
            debug!(%remote, message_id = header.message_id, "retransmitting cached response");
            // §2.11: to where the retransmission came from; no other state changes.
            return cached
                .datagrams
                .iter()
                .map(|b| Action::Send {
                    local,
                    remote,
                    bytes: b.clone(),
                })
                .collect();
        }
        if header.message_id != window.next_request_id {
            self.refusals
                .record(now, remote.ip(), Refusal::OutsideWindow, || {
                    format!("message ID {}", header.message_id)
                });
            return Vec::new();
        }
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                debug!(%remote, "dropping malformed protected request: {e}");
                self.refusals
                    .record(now, remote.ip(), Refusal::Unauthenticated, || {
                        format!("unparseable protected request: {e}")
                    });
                return Vec::new();
            }
        };
        let opened = if let Some(Payload::Skf(_)) = msg.payloads.last() {
            super::fragment::add(&mut sa.core, &self.cfg.limits, bytes, &msg)
        } else {
            sa.core
                .sk
                .open(bytes, &msg)
                .map(|inner| Some((request_hash(bytes), inner)))
        };
        let (request, inner) = match opened {
            Ok(Some(done)) => done,
            // An authentic fragment, kept; the message is not complete yet.
            Ok(None) => return Vec::new(),
            Err(why) => {
                self.refusals
                    .record(now, remote.ip(), Refusal::Unauthenticated, || {
                        format!("{why:?}")
                    });
                return Vec::new();
            }
        };
        // Authenticated from here on. Take the SA out of the table while it is worked on.
        let Some(IkeSa { mut core, state }) = self.sas.remove(&header.spi_r) else {
            return Vec::new();
        };
        core.last_activity = now;
        // §2.23: follow the peer's address of authenticated requests (the float to 4500, NAT
        // rebinding, MOBIKE); the Child SAs follow it too.
        let mut actions: Vec<Action> = Vec::new();
        if core.remote != remote {
            if let SaState::Established(e) = &state {
                actions.extend(e.children.iter().map(|c| Action::UpdateChildRemote {
                    inbound_spi: c.inbound_spi,
                    remote,
                }));
            }
        }
        core.local = local;
        core.remote = remote;
        if local.port() != 500 || remote.port() != 500 {
            core.udp_encap = true;
        }
        let not_valid = || IkeError::InvalidSyntax("exchange not valid in this state");
        // The SA after the exchange (`None`: gone) and whether IKE_AUTH just established it.
        let (next, handled, authenticated) = match state {
            SaState::HalfOpen(h) => {
                // Whatever happens now, the SA is no longer half open: it is established by
                // this IKE_AUTH or it ends.
                self.leave_half_open(core.spi_i, h.init_from);
                let result = match (header.exchange, inner) {
                    (ExchangeType::IKE_AUTH, Ok(inner)) => {
                        self.ike_auth(now, rng, &mut core, h, &inner)
                    }
                    (ExchangeType::IKE_AUTH, Err(e)) => Err(e),
                    _ => Err(not_valid()),
                };
                match result {
                    Ok((e, handled)) => {
                        self.counters.established += 1;
                        (Some(e), handled, true)
                    }
                    Err(e) => {
                        if e.notify() == Some(crate::wire::NotifyType::AUTHENTICATION_FAILED) {
                            self.counters.auth_failed += 1;
                        } else {
                            self.counters.failed += 1;
                        }
                        (None, Handled::closing(error_notify(&e), Vec::new()), false)
                    }
                }
            }
            SaState::Established(mut e) => {
                let handled = match (header.exchange, inner) {
                    (_, Err(err)) => Handled::error(&err),
                    (ExchangeType::INFORMATIONAL, Ok(inner)) => {
                        self.informational(&mut core, &mut e, &inner)
                    }
                    (ExchangeType::CREATE_CHILD_SA, Ok(inner)) => {
                        self.create_child_sa(now, rng, &mut core, &mut e, &inner)
                    }
                    _ => Handled::error(&not_valid()),
                };
                (Some(e), handled, false)
            }
        };
        let resp_header = Header {
            spi_i: core.spi_i,
            spi_r: core.spi_r,
            next_payload: PayloadType::SK,
            version: IKEV2_VERSION,
            exchange: header.exchange,
            flags: FLAG_RESPONSE,
            message_id: header.message_id,
            length: 0,
        };
        let resp = encode_response(remote, &handled.response, |inner| {
            let header = resp_header.clone();
            if core.peer_fragmentation {
                core.sk
                    .seal_fragments(header, inner, FRAGMENT_SIZE, rng.as_rngcore())
            } else {
                core.sk
                    .seal(header, inner, rng.as_rngcore())
                    .map(|b| vec![b])
            }
        })
        .unwrap_or_default();
        // Data-plane changes first: the client may send ESP as soon as it has the answer.
        actions.extend(handled.actions);
        actions.extend(resp.iter().map(|b| Action::Send {
            local,
            remote,
            bytes: b.clone(),
        }));
        core.window.next_request_id = header.message_id.wrapping_add(1);
        core.window.cached = Some(Cached {
            request,
            datagrams: resp,
            last_sent: now,
        });
        if let Some((new_core, new_e)) = handled.new_sa {
            self.counters.ike_rekeys += 1;
            self.insert_established(*new_core, *new_e);
        }
        match next {
            Some(mut e) if authenticated => {
                actions.extend(self.send_next(&core, &mut e, now, rng));
                self.insert_established(core, e);
            }
            Some(mut e) if handled.keep => {
                actions.extend(self.send_next(&core, &mut e, now, rng));
                self.put_back(IkeSa {
                    core,
                    state: SaState::Established(e),
                });
            }
            Some(e) => actions.extend(self.cleanup_established(core.spi_r, e)),
            None => {}
        }
        actions
    }
}

/// The result of handling one protected request.
pub(crate) struct Handled {
    pub response: Vec<Payload>,
    pub actions: Vec<Action>,
    /// False when the exchange ended the IKE SA (DELETE).
    pub keep: bool,
    /// The IKE SA that replaces this one (IKE rekey, §2.18).
    pub new_sa: Option<(Box<SaCore>, Box<Established>)>,
}

impl Handled {
    pub fn reply(response: Vec<Payload>, actions: Vec<Action>) -> Self {
        Self {
            response,
            actions,
            keep: true,
            new_sa: None,
        }
    }

    pub fn error(e: &IkeError) -> Self {
        Self::reply(error_notify(e), Vec::new())
    }

    /// An answer after which the IKE SA is gone.
    pub fn closing(response: Vec<Payload>, actions: Vec<Action>) -> Self {
        Self {
            response,
            actions,
            keep: false,
            new_sa: None,
        }
    }
}

/// Largest IKE message we send unfragmented to a peer that supports fragmentation, and the
/// size of each fragment (RFC 7383 §2.5.1: 1280 fits any IPv6 path, and IPv4 paths too).
pub(crate) const FRAGMENT_SIZE: usize = 1280;

/// The inner payloads of an error response: one notify.
pub(crate) fn error_notify(e: &IkeError) -> Vec<Payload> {
    e.notify()
        .map(|ty| vec![Payload::notify(ty, e.notify_data())])
        .unwrap_or_default()
}

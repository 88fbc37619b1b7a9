//! The responder's state as plain data, for the hand-over snapshot of `ipsec-server upgrade`:
//! every established IKE SA (SPIs, algorithms, keys, addresses, NAT and MOBIKE state, the
//! message-ID windows both ways with the cached response and our request in flight, the
//! identity, the lease, the Child SAs and their timers), the pool's leases and sticky memory,
//! and the outcome counters.
//!
//! Why relative times: an `Instant` means nothing in another process. Every instant is
//! stored as milliseconds relative to the capture instant ([`Responder::snapshot`]'s `now`;
//! negative = in the past) and put back relative to the restoring process's `now`, so timers
//! (DPD, rekeys, lifetimes, retransmissions) go on where they were, shifted by the switch.
//!
//! Not carried, by design: half-open IKE SAs (the client retransmits IKE_SA_INIT after its
//! IKE_AUTH goes unanswered, or starts again), a fragmented request being reassembled (the
//! client retransmits it), the cookie secret (a cookie in flight is refused and the client
//! asks again), the DH rate, the authentication back-off and the refusal counts (they start
//! again, as after a restart).
//!
//! [`Responder::restore`] checks what it is given (bounds from the configuration, unique
//! SPIs, known algorithms, key lengths, leases inside the pool) and builds nothing on a
//! failure. The types derive serde but not `Debug`: they hold keys (serialized only through
//! `crate::secret::handover`, into the hand-over socket).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::nat::Nat;
use super::proposal::EspSuite;
use super::reauth::Authenticated;
use super::requests::{InFlight, OurRekey, Pending, Request};
use super::responder::{Cached, Child, Established, SaCore, SaState, Window};
use super::sk::SkCrypto;
use super::{IkeSuite, Ipv4Range, Responder, ResponderConfig};
use crate::crypto::{DhGroup, DhPrivate, EncrAlg, IkeKeys, IntegAlg, PrfAlg};
use crate::pool::{Pool, PoolState};
use crate::secret::SecretBytes;
use crate::wire::IdPayload;

/// An instant relative to the capture instant, in milliseconds (negative: before it).
type Rel = i64;

/// Converts instants to [`Rel`] and back around one `now`.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn rel(self, t: Instant) -> Rel {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if t >= self.0 {
            ms(t - self.0)
        } else {
            -ms(self.0 - t)
        }
    }

    /// Instants before the process's clock can express are clamped to `now`.
    fn at(self, r: Rel) -> Instant {
        let d = Duration::from_millis(r.unsigned_abs());
        if r >= 0 {
            self.0.checked_add(d).unwrap_or(self.0)
        } else {
            self.0.checked_sub(d).unwrap_or(self.0)
        }
    }
}

/// Why [`Responder::restore`] refused a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} IKE SAs, more than this configuration allows ({1})")]
    TooMany(usize, usize),
    #[error("IKE SA {0:016x}: {1}")]
    Sa(u64, &'static str),
    #[error("the leases do not fit this configuration's pool")]
    Pool,
}

/// The responder's state.
#[derive(Serialize, Deserialize)]
pub struct ResponderState {
    pub sas: Vec<IkeSaState>,
    pub pool: PoolState,
    /// [`super::Counters`] in field order (a newer binary with more counters pads with 0).
    pub counters: Vec<u64>,
    pub psk_generation: u64,
}

#[derive(Serialize, Deserialize)]
pub struct SuiteState {
    #[serde(with = "crate::crypto::handover::encr")]
    pub encr: EncrAlg,
    #[serde(with = "crate::crypto::handover::integ")]
    pub integ: IntegAlg,
    #[serde(with = "crate::crypto::handover::prf")]
    pub prf: PrfAlg,
    #[serde(with = "crate::crypto::handover::dh")]
    pub dh: DhGroup,
}

/// A key of the snapshot.
#[derive(Serialize, Deserialize)]
pub struct Key(#[serde(with = "crate::secret::handover")] pub SecretBytes);

/// An established IKE SA.
#[derive(Serialize, Deserialize)]
pub struct IkeSaState {
    pub spi_i: u64,
    pub spi_r: u64,
    pub suite: SuiteState,
    /// SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi, SK_pr.
    pub keys: [Key; 7],
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub created: Rel,
    pub udp_encap: bool,
    /// NAT detection: remote, local, faked.
    pub nat: [bool; 3],
    pub peer_fragmentation: bool,
    pub last_activity: Rel,
    pub next_request_id: u32,
    pub cached: Option<CachedState>,
    pub since: Rel,
    pub identity: (u8, Vec<u8>),
    pub vip: Option<Ipv4Addr>,
    pub children: Vec<ChildState>,
    pub peer_mobike: bool,
    pub expires: Option<Rel>,
    pub auth_at: Rel,
    pub auth_psk_generation: u64,
    pub reauth_by: Option<Rel>,
    pub rekeyed: bool,
    pub predecessor: Option<u64>,
    pub our_next_id: u32,
    pub pending: Option<PendingState>,
    pub outbox: Vec<RequestState>,
}

#[derive(Serialize, Deserialize)]
pub struct CachedState {
    pub request: [u8; 32],
    pub datagrams: Vec<Vec<u8>>,
    pub last_sent: Rel,
}

#[derive(Serialize, Deserialize)]
pub struct ChildState {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub local_ts: Vec<Ipv4Range>,
    pub rekey_at: Option<Rel>,
    pub expires_at: Option<Rel>,
    pub rekeyed: bool,
    pub inbound_packets: u64,
    pub seq_rekey_asked: Option<Rel>,
    #[serde(with = "crate::crypto::handover::encr")]
    pub encr: EncrAlg,
    #[serde(with = "crate::crypto::handover::integ")]
    pub integ: IntegAlg,
    pub installed: Rel,
    pub last_inbound: Option<Rel>,
}

/// Our request in flight: retransmitted byte for byte by the new process, and its answer
/// handled there (a Child SA rekey of ours with its DH key and nonce).
#[derive(Serialize, Deserialize)]
pub struct PendingState {
    pub message_id: u32,
    pub bytes: Vec<u8>,
    pub next_retry: Rel,
    pub tries: u32,
    pub kind: InFlightState,
}

#[derive(Serialize, Deserialize)]
pub enum InFlightState {
    Liveness,
    AuthLifetime,
    DeleteChild(u32),
    RekeyChild {
        old_inbound: u32,
        new_inbound: u32,
        dh: Option<DhState>,
        ni: Vec<u8>,
        local_ts: Vec<Ipv4Range>,
    },
}

#[derive(Serialize, Deserialize)]
pub struct DhState {
    #[serde(with = "crate::crypto::handover::dh")]
    pub group: DhGroup,
    #[serde(with = "crate::secret::handover")]
    pub exponent: SecretBytes,
    pub bits: u32,
}

/// A request queued behind the one in flight.
#[derive(Serialize, Deserialize)]
pub enum RequestState {
    Liveness,
    DeleteChild(u32),
    RekeyChild(u32),
    AuthLifetime,
}

fn counters_list(c: &super::Counters) -> Vec<u64> {
    vec![
        c.established,
        c.auth_failed,
        c.no_proposal,
        c.cookie_sent,
        c.dropped,
        c.failed,
        c.timed_out,
        c.ike_rekeys,
        c.child_rekeys,
        c.dpd_timeouts,
    ]
}

fn counters_from(v: &[u64]) -> super::Counters {
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    super::Counters {
        established: at(0),
        auth_failed: at(1),
        no_proposal: at(2),
        cookie_sent: at(3),
        dropped: at(4),
        failed: at(5),
        timed_out: at(6),
        ike_rekeys: at(7),
        child_rekeys: at(8),
        dpd_timeouts: at(9),
    }
}

impl Responder {
    /// Every established IKE SA and what goes with it, times relative to `now`.
    pub fn snapshot(&self, now: Instant) -> ResponderState {
        let clock = Clock(now);
        let mut sas: Vec<IkeSaState> = self
            .sas
            .values()
            .filter_map(|sa| match &sa.state {
                SaState::Established(e) => Some(sa_state(clock, &sa.core, e)),
                SaState::HalfOpen(_) => None,
            })
            .collect();
        sas.sort_by_key(|s| s.spi_r);
        ResponderState {
            sas,
            pool: self.pool.export(),
            counters: counters_list(&self.counters),
            psk_generation: self.psk_generation,
        }
    }

    /// A responder for `cfg` holding `state`, its times relative to `now`.
    pub fn restore(
        cfg: Arc<ResponderConfig>,
        state: &ResponderState,
        now: Instant,
    ) -> Result<Self, RestoreError> {
        let clock = Clock(now);
        // Rekeyed IKE SAs wait for their DELETE beside their successors: twice the
        // connections at most, and a little room for a tiny `max_connections`.
        let max_sas = cfg.max_connections.saturating_mul(2).max(16);
        if state.sas.len() > max_sas {
            return Err(RestoreError::TooMany(state.sas.len(), max_sas));
        }
        let max_children = cfg.limits.child_sas_per_ike_sa.saturating_mul(2).max(4);
        let pool = Pool::new(cfg.pool, cfg.max_connections)
            .import(&state.pool)
            .ok_or(RestoreError::Pool)?;
        let mut r = Responder::new(cfg);
        r.pool = pool;
        r.counters = counters_from(&state.counters);
        r.psk_generation = state.psk_generation;
        let mut vips = HashSet::new();
        for s in &state.sas {
            let bad = |why| RestoreError::Sa(s.spi_r, why);
            if s.spi_r == 0 || r.sas.contains_key(&s.spi_r) {
                return Err(bad("SPI zero or twice"));
            }
            if s.children.len() > max_children || s.outbox.len() > 2 * max_children + 4 {
                return Err(bad("too many Child SAs or requests"));
            }
            if let Some(vip) = s.vip {
                if !r.pool.is_leased(vip) || !vips.insert(vip) {
                    return Err(bad("virtual IP not leased or leased twice"));
                }
            }
            let (core, e) = restore_sa(clock, s).ok_or_else(|| bad("invalid keys or DH state"))?;
            let spis = e
                .children
                .iter()
                .map(|c| c.inbound_spi)
                .chain(super::requests::requested_spis(&e));
            for spi in spis.collect::<Vec<_>>() {
                if !r.inbound_spis.insert(spi) {
                    return Err(bad("inbound Child SA SPI twice"));
                }
            }
            r.insert_established(core, e);
        }
        if r.pool.in_use() != vips.len() {
            return Err(RestoreError::Pool);
        }
        Ok(r)
    }
}

fn sa_state(clock: Clock, c: &SaCore, e: &Established) -> IkeSaState {
    let k = &c.keys;
    let key = |s: &SecretBytes| Key(s.clone());
    IkeSaState {
        spi_i: c.spi_i,
        spi_r: c.spi_r,
        suite: SuiteState {
            encr: c.suite.encr,
            integ: c.suite.integ,
            prf: c.suite.prf,
            dh: c.suite.dh,
        },
        keys: [
            key(&k.sk_d),
            key(&k.sk_ai),
            key(&k.sk_ar),
            key(&k.sk_ei),
            key(&k.sk_er),
            key(&k.sk_pi),
            key(&k.sk_pr),
        ],
        local: c.local,
        remote: c.remote,
        created: clock.rel(c.created),
        udp_encap: c.udp_encap,
        nat: [c.nat.remote, c.nat.local, c.nat.faked],
        peer_fragmentation: c.peer_fragmentation,
        last_activity: clock.rel(c.last_activity),
        next_request_id: c.window.next_request_id,
        cached: c.window.cached.as_ref().map(|x| CachedState {
            request: x.request,
            datagrams: x.datagrams.clone(),
            last_sent: clock.rel(x.last_sent),
        }),
        since: clock.rel(e.since),
        identity: (e.identity.id_type, e.identity.data.clone()),
        vip: e.vip,
        children: e.children.iter().map(|ch| child_state(clock, ch)).collect(),
        peer_mobike: e.peer_mobike,
        expires: e.expires.map(|t| clock.rel(t)),
        auth_at: clock.rel(e.auth.at),
        auth_psk_generation: e.auth.psk_generation,
        reauth_by: e.auth.reauth_by.map(|t| clock.rel(t)),
        rekeyed: e.rekeyed,
        predecessor: e.predecessor,
        our_next_id: e.our_next_id,
        pending: e.pending.as_ref().map(|p| PendingState {
            message_id: p.message_id,
            bytes: p.bytes.clone(),
            next_retry: clock.rel(p.next_retry),
            tries: p.tries,
            kind: match &p.state {
                InFlight::Liveness => InFlightState::Liveness,
                InFlight::AuthLifetime => InFlightState::AuthLifetime,
                InFlight::DeleteChild { inbound_spi } => InFlightState::DeleteChild(*inbound_spi),
                InFlight::RekeyChild(o) => InFlightState::RekeyChild {
                    old_inbound: o.old_inbound,
                    new_inbound: o.new_inbound,
                    dh: o.dh.as_ref().map(|d| {
                        let (exponent, bits) = d.export();
                        DhState {
                            group: d.group(),
                            exponent,
                            bits: bits as u32,
                        }
                    }),
                    ni: o.ni.clone(),
                    local_ts: o.local_ts.clone(),
                },
            },
        }),
        outbox: e
            .outbox
            .iter()
            .map(|r| match r {
                Request::Liveness => RequestState::Liveness,
                Request::DeleteChild { inbound_spi } => RequestState::DeleteChild(*inbound_spi),
                Request::RekeyChild { old_inbound } => RequestState::RekeyChild(*old_inbound),
                Request::AuthLifetime => RequestState::AuthLifetime,
            })
            .collect(),
    }
}

fn child_state(clock: Clock, c: &Child) -> ChildState {
    ChildState {
        inbound_spi: c.inbound_spi,
        outbound_spi: c.outbound_spi,
        local_ts: c.local_ts.clone(),
        rekey_at: c.rekey_at.map(|t| clock.rel(t)),
        expires_at: c.expires_at.map(|t| clock.rel(t)),
        rekeyed: c.rekeyed,
        inbound_packets: c.inbound_packets,
        seq_rekey_asked: c.seq_rekey_asked.map(|t| clock.rel(t)),
        encr: c.esp.encr,
        integ: c.esp.integ,
        installed: clock.rel(c.installed),
        last_inbound: c.last_inbound.map(|t| clock.rel(t)),
    }
}

/// The SA `s` describes; `None` for keys that do not fit its algorithms or a DH key that
/// cannot be rebuilt.
fn restore_sa(clock: Clock, s: &IkeSaState) -> Option<(SaCore, Established)> {
    let [sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr] = &s.keys;
    let keys = IkeKeys {
        sk_d: sk_d.0.clone(),
        sk_ai: sk_ai.0.clone(),
        sk_ar: sk_ar.0.clone(),
        sk_ei: sk_ei.0.clone(),
        sk_er: sk_er.0.clone(),
        sk_pi: sk_pi.0.clone(),
        sk_pr: sk_pr.0.clone(),
    };
    let suite = IkeSuite {
        encr: s.suite.encr,
        integ: s.suite.integ,
        prf: s.suite.prf,
        dh: s.suite.dh,
    };
    let sk = SkCrypto::responder(suite.encr, suite.integ, &keys).ok()?;
    let [remote, local, faked] = s.nat;
    let core = SaCore {
        spi_i: s.spi_i,
        spi_r: s.spi_r,
        suite,
        keys,
        sk,
        local: s.local,
        remote: s.remote,
        created: clock.at(s.created),
        udp_encap: s.udp_encap,
        nat: Nat {
            remote,
            local,
            faked,
        },
        peer_fragmentation: s.peer_fragmentation,
        last_activity: clock.at(s.last_activity),
        window: Window {
            cached: s.cached.as_ref().map(|x| Cached {
                request: x.request,
                datagrams: x.datagrams.clone(),
                last_sent: clock.at(x.last_sent),
            }),
            ..Window::new(s.next_request_id)
        },
    };
    let pending = match &s.pending {
        None => None,
        Some(p) => Some(Pending {
            message_id: p.message_id,
            bytes: p.bytes.clone(),
            next_retry: clock.at(p.next_retry),
            tries: p.tries,
            state: match &p.kind {
                InFlightState::Liveness => InFlight::Liveness,
                InFlightState::AuthLifetime => InFlight::AuthLifetime,
                InFlightState::DeleteChild(spi) => InFlight::DeleteChild { inbound_spi: *spi },
                InFlightState::RekeyChild {
                    old_inbound,
                    new_inbound,
                    dh,
                    ni,
                    local_ts,
                } => InFlight::RekeyChild(OurRekey {
                    old_inbound: *old_inbound,
                    new_inbound: *new_inbound,
                    dh: match dh {
                        None => None,
                        Some(d) => Some(DhPrivate::import(
                            d.group,
                            d.exponent.expose(),
                            d.bits as usize,
                        )?),
                    },
                    ni: ni.clone(),
                    local_ts: local_ts.clone(),
                }),
            },
        }),
    };
    let e = Established {
        since: clock.at(s.since),
        identity: IdPayload {
            id_type: s.identity.0,
            data: s.identity.1.clone(),
        },
        vip: s.vip,
        children: s.children.iter().map(|c| restore_child(clock, c)).collect(),
        peer_mobike: s.peer_mobike,
        expires: s.expires.map(|r| clock.at(r)),
        auth: Authenticated {
            at: clock.at(s.auth_at),
            psk_generation: s.auth_psk_generation,
            reauth_by: s.reauth_by.map(|r| clock.at(r)),
        },
        rekeyed: s.rekeyed,
        predecessor: s.predecessor,
        our_next_id: s.our_next_id,
        pending,
        outbox: s
            .outbox
            .iter()
            .map(|r| match r {
                RequestState::Liveness => Request::Liveness,
                RequestState::DeleteChild(spi) => Request::DeleteChild { inbound_spi: *spi },
                RequestState::RekeyChild(spi) => Request::RekeyChild { old_inbound: *spi },
                RequestState::AuthLifetime => Request::AuthLifetime,
            })
            .collect(),
    };
    Some((core, e))
}

fn restore_child(clock: Clock, c: &ChildState) -> Child {
    Child {
        inbound_spi: c.inbound_spi,
        outbound_spi: c.outbound_spi,
        local_ts: c.local_ts.clone(),
        rekey_at: c.rekey_at.map(|r| clock.at(r)),
        expires_at: c.expires_at.map(|r| clock.at(r)),
        rekeyed: c.rekeyed,
        inbound_packets: c.inbound_packets,
        seq_rekey_asked: c.seq_rekey_asked.map(|r| clock.at(r)),
        esp: EspSuite {
            encr: c.encr,
            integ: c.integ,
        },
        installed: clock.at(c.installed),
        last_inbound: c.last_inbound.map(|r| clock.at(r)),
    }
}

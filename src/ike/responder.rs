//! The responder: IKE SA table, message-ID window and retransmission cache (RFC 7296 §2.1–2.3),
//! dispatch of each exchange to its own module.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use rand::RngCore;
use rand_core::CryptoRngCore;
use tracing::{debug, info};

use crate::crypto::IkeKeys;
use crate::pool::Pool;
use crate::wire::{
    ExchangeType, Header, IdPayload, Message, Payload, PayloadType, FLAG_RESPONSE, IKEV2_VERSION,
};

use super::cookie::CookieJar;
use super::error::encode_response;
use super::fragment::Reassembly;
use super::requests::{Pending, Request};
use super::sk::SkCrypto;
use super::Ipv4Range;
use super::{id_to_string, Action, IkeError, IkeSuite, ResponderConfig, UniquePolicy};

/// One IKE SA as the responder keeps it.
pub(crate) struct IkeSa {
    pub spi_i: u64,
    pub spi_r: u64,
    pub suite: IkeSuite,
    pub keys: IkeKeys,
    pub sk: SkCrypto,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// IKE_SA_INIT request and response as sent: signed by AUTH (§2.15), and the request
    /// identifies a retransmission.
    pub init_request: Vec<u8>,
    pub init_response: Vec<u8>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub established: Option<Instant>,
    pub created: Instant,
    /// Message ID the next request from the initiator must carry.
    pub next_request_id: u32,
    /// The response to request `next_request_id - 1` as sent (several datagrams when
    /// fragmented), resent on retransmission.
    pub cached_response: Option<Vec<Vec<u8>>>,
    pub identity: Option<IdPayload>,
    pub vip: Option<Ipv4Addr>,
    pub children: Vec<Child>,
    /// NAT between us (or a peer faking it, as kernel-libipsec does): ESP goes in UDP.
    pub udp_encap: bool,
    /// The peer announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3) / MOBIKE_SUPPORTED
    /// (RFC 4555 §4.2.1).
    pub peer_fragmentation: bool,
    pub peer_mobike: bool,
    /// Last time the peer showed life: an authenticated IKE message or inbound ESP.
    pub last_activity: Instant,
    /// Hard IKE lifetime: the SA is deleted then unless the client rekeyed it.
    pub expires: Option<Instant>,
    /// Our own requests (§2.1 window of one): the next message ID, the request in flight,
    /// the ones waiting for it.
    pub our_next_id: u32,
    pub pending: Option<Pending>,
    pub outbox: VecDeque<Request>,
    /// A fragmented request being reassembled (RFC 7383 §2.6).
    pub fragments: Option<Reassembly>,
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
}

/// A snapshot of one IKE SA for `ipsec-server status`.
#[derive(Debug, Clone)]
pub struct SaInfo {
    pub spi_i: u64,
    pub spi_r: u64,
    pub identity: String,
    pub remote: SocketAddr,
    pub vip: Option<Ipv4Addr>,
    pub established: bool,
    pub age_secs: u64,
    /// (inbound, outbound) SPIs.
    pub children: Vec<(u32, u32)>,
}

/// The result of handling one protected request.
pub(crate) struct Handled {
    pub response: Vec<Payload>,
    pub actions: Vec<Action>,
    /// False when the exchange ended the IKE SA (DELETE, failed authentication).
    pub keep: bool,
    /// The IKE SA that replaces this one (IKE rekey, §2.18).
    pub new_sa: Option<Box<IkeSa>>,
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

pub struct Responder {
    pub(crate) cfg: Arc<ResponderConfig>,
    pub(crate) sas: HashMap<u64, IkeSa>,
    /// (SPIi, initiator address) → SPIr of SAs still waiting for IKE_AUTH.
    pub(crate) half_open: HashMap<(u64, SocketAddr), u64>,
    half_open_per_ip: HashMap<IpAddr, usize>,
    pub(crate) pool: Pool,
    pub(crate) cookies: CookieJar,
    pub(crate) inbound_spis: HashSet<u32>,
    /// IDi → SPIr of IKE SAs with that identity (may hold stale SPIs; checked on use), so
    /// INITIAL_CONTACT does not scan every SA.
    by_identity: HashMap<IdPayload, Vec<u64>>,
}

impl Responder {
    pub fn new(cfg: Arc<ResponderConfig>) -> Self {
        let pool = Pool::new(cfg.pool, cfg.max_connections);
        Self {
            cfg,
            sas: HashMap::new(),
            half_open: HashMap::new(),
            half_open_per_ip: HashMap::new(),
            pool,
            cookies: CookieJar::new(),
            inbound_spis: HashSet::new(),
            by_identity: HashMap::new(),
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
        if header.is_response() {
            return self.our_response(now, rng, bytes, &header, local, remote);
        }
        if header.exchange == ExchangeType::IKE_SA_INIT {
            return self.ike_sa_init(now, rng, bytes, &header, local, remote);
        }
        self.protected_request(now, rng, bytes, &header, local, remote)
    }

    /// Timers, about once a second: half-open SAs expire, the cookie secret rotates, our own
    /// requests are retransmitted, lifetimes end, Child SAs the client did not rekey are
    /// rekeyed, silent peers are checked (DPD).
    pub fn tick(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) -> Vec<Action> {
        self.cookies.maybe_rotate(now, rng.as_rngcore());
        let timeout = self.cfg.limits.half_open_timeout;
        let expired: Vec<u64> = self
            .sas
            .values()
            .filter(|sa| {
                sa.established.is_none() && now.saturating_duration_since(sa.created) >= timeout
            })
            .map(|sa| sa.spi_r)
            .collect();
        let mut actions = Vec::new();
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
            .filter(|sa| sa.established.is_some())
            .map(|sa| sa.spi_r)
            .collect();
        for spi in established {
            actions.extend(self.maintain(spi, now, rng));
        }
        actions
    }

    /// Records data-plane liveness: `inbound_packets(spi)` is the inbound packet counter of
    /// the Child SA with our SPI `spi`. A peer whose counters move is alive (no DPD needed).
    pub fn refresh_activity(&mut self, now: Instant, inbound_packets: &dyn Fn(u32) -> u64) {
        for sa in self.sas.values_mut() {
            for c in &mut sa.children {
                let n = inbound_packets(c.inbound_spi);
                if n != c.inbound_packets {
                    c.inbound_packets = n;
                    sa.last_activity = now;
                }
            }
        }
    }

    /// Status snapshot of every IKE SA.
    pub fn sas(&self, now: Instant) -> Vec<SaInfo> {
        self.sas
            .values()
            .map(|sa| SaInfo {
                spi_i: sa.spi_i,
                spi_r: sa.spi_r,
                identity: sa.identity.as_ref().map(id_to_string).unwrap_or_default(),
                remote: sa.remote,
                vip: sa.vip,
                established: sa.established.is_some(),
                age_secs: now
                    .saturating_duration_since(sa.established.unwrap_or(sa.created))
                    .as_secs(),
                children: sa
                    .children
                    .iter()
                    .map(|c| (c.inbound_spi, c.outbound_spi))
                    .collect(),
            })
            .collect()
    }

    /// Number of established IKE SAs (OnlineClientCount).
    pub fn online_clients(&self) -> usize {
        self.sas
            .values()
            .filter(|sa| sa.established.is_some())
            .count()
    }

    /// Deletes every IKE SA, sending INFORMATIONAL DELETE to each established peer (shutdown
    /// or EffectImmediately), without waiting for the answers.
    pub fn delete_all(&mut self, rng: &mut dyn CryptoRngCore) -> Vec<Action> {
        let spis: Vec<u64> = self.sas.keys().copied().collect();
        let mut actions = Vec::new();
        for spi in spis {
            let Some(sa) = self.sas.remove(&spi) else {
                continue;
            };
            if sa.established.is_some() {
                debug!(remote = %sa.remote, "sending DELETE for the IKE SA");
                actions.extend(self.delete_ike_message(&sa, rng));
            }
            actions.extend(self.cleanup(sa));
        }
        actions
    }

    // ---- helpers shared by the exchange modules ----

    pub(crate) fn insert_half_open(&mut self, sa: IkeSa) {
        self.half_open.insert((sa.spi_i, sa.remote), sa.spi_r);
        *self.half_open_per_ip.entry(sa.remote.ip()).or_default() += 1;
        self.sas.insert(sa.spi_r, sa);
    }

    pub(crate) fn half_open_count(&self) -> usize {
        self.half_open.len()
    }

    pub(crate) fn half_open_from(&self, ip: IpAddr) -> usize {
        self.half_open_per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Forgets the half-open bookkeeping of `sa` (it authenticated or went away).
    fn leave_half_open(&mut self, spi_i: u64, remote_at_init: SocketAddr) {
        if self.half_open.remove(&(spi_i, remote_at_init)).is_some() {
            if let Some(n) = self.half_open_per_ip.get_mut(&remote_at_init.ip()) {
                *n -= 1;
                if *n == 0 {
                    self.half_open_per_ip.remove(&remote_at_init.ip());
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

    /// Releases everything `sa` held; returns the data-plane deletions.
    pub(crate) fn cleanup(&mut self, sa: IkeSa) -> Vec<Action> {
        if let Some(key) = self
            .half_open
            .iter()
            .find(|(_, &v)| v == sa.spi_r)
            .map(|(k, _)| *k)
        {
            self.leave_half_open(key.0, key.1);
        }
        if let Some(vip) = sa.vip {
            self.pool.release(vip);
        }
        if let Some(id) = &sa.identity {
            if let Some(spis) = self.by_identity.get_mut(id) {
                spis.retain(|&s| s != sa.spi_r);
                if spis.is_empty() {
                    self.by_identity.remove(id);
                }
            }
        }
        sa.children
            .iter()
            .map(|c| {
                self.inbound_spis.remove(&c.inbound_spi);
                Action::DeleteChild {
                    inbound_spi: c.inbound_spi,
                }
            })
            .collect()
    }

    /// Records `sa` under its identity (for the `unique` policy) once it has one.
    fn index_identity(&mut self, sa: &IkeSa) {
        if let Some(id) = &sa.identity {
            let spis = self.by_identity.entry(id.clone()).or_default();
            if !spis.contains(&sa.spi_r) {
                spis.push(sa.spi_r);
            }
        }
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
    /// identity (§2.4 INITIAL_CONTACT; DESIGN.md `unique`).
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
            .filter(|sa| sa.spi_r != spi_r && sa.identity.as_ref() == Some(identity))
            .filter(|sa| match policy {
                UniquePolicy::Never => false,
                UniquePolicy::Replace => true,
                UniquePolicy::SameAddress => sa.remote.ip() == remote,
            })
            .map(|sa| sa.spi_r)
            .collect();
        let mut actions = Vec::new();
        for spi in older {
            info!(identity = %id_to_string(identity), "replacing older IKE SA {spi:016x} of the same identity");
            actions.extend(self.remove_sa(spi));
        }
        actions
    }

    fn protected_request(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        bytes: &[u8],
        header: &Header,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Vec<Action> {
        let Some(sa) = self.sas.get(&header.spi_r) else {
            debug!(%remote, "request for unknown IKE SA {:016x}", header.spi_r);
            return Vec::new();
        };
        if sa.spi_i != header.spi_i {
            return Vec::new();
        }
        // §2.2: a retransmitted request gets the cached response; anything else outside the
        // window is dropped. A fragmented request is retransmitted fragment by fragment:
        // only its first fragment is answered (RFC 7383 §2.6.1).
        if header.message_id.wrapping_add(1) == sa.next_request_id {
            if !super::fragment::is_first_or_whole(bytes) {
                return Vec::new();
            }
            return match &sa.cached_response {
                Some(resp) => {
                    debug!(%remote, message_id = header.message_id, "retransmitting cached response");
                    resp.iter()
                        .map(|b| Action::Send {
                            local,
                            remote,
                            bytes: b.clone(),
                        })
                        .collect()
                }
                None => Vec::new(),
            };
        }
        if header.message_id != sa.next_request_id {
            debug!(%remote, message_id = header.message_id, "dropping request outside the window");
            return Vec::new();
        }
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                debug!(%remote, "dropping malformed protected request: {e}");
                return Vec::new();
            }
        };
        let opened = if let Some(Payload::Skf(_)) = msg.payloads.last() {
            let Some(sa) = self.sas.get_mut(&header.spi_r) else {
                return Vec::new();
            };
            match super::fragment::add(sa, bytes, &msg) {
                Ok(Some(payloads)) => Ok(payloads),
                Ok(None) => return Vec::new(),
                Err(e) => Err(e),
            }
        } else {
            sa.sk.open(bytes, &msg)
        };
        let inner = match opened {
            Ok(p) => Ok(p),
            Err(IkeError::IntegrityCheckFailed) => {
                debug!(%remote, "dropping request whose ICV does not verify");
                return Vec::new();
            }
            Err(IkeError::InvalidSyntax(what)) if what != "no SK payload" => {
                debug!(%remote, "dropping undecryptable request: {what}");
                return Vec::new();
            }
            Err(e) => Err(e),
        };
        // Authenticated from here on. Take the SA out of the table while it is worked on.
        let Some(mut sa) = self.sas.remove(&header.spi_r) else {
            return Vec::new();
        };
        let remote_at_init = sa.remote;
        sa.last_activity = now;
        // §2.23: follow the peer's address of authenticated requests (the float to 4500, NAT
        // rebinding, MOBIKE); the Child SAs follow it too.
        let mut actions: Vec<Action> = Vec::new();
        if sa.remote != remote {
            actions.extend(sa.children.iter().map(|c| Action::UpdateChildRemote {
                inbound_spi: c.inbound_spi,
                remote,
            }));
        }
        sa.local = local;
        sa.remote = remote;
        if local.port() != 500 || remote.port() != 500 {
            sa.udp_encap = true;
        }
        let handled = match inner {
            Err(e) => Handled::error(&e),
            Ok(inner) => match (header.exchange, sa.established.is_some()) {
                (ExchangeType::IKE_AUTH, false) => {
                    self.leave_half_open(sa.spi_i, remote_at_init);
                    self.ike_auth(now, rng, &mut sa, &inner)
                }
                (ExchangeType::INFORMATIONAL, true) => self.informational(&mut sa, &inner),
                (ExchangeType::CREATE_CHILD_SA, true) => {
                    self.create_child_sa(now, rng, &mut sa, &inner)
                }
                _ => Handled::error(&IkeError::InvalidSyntax("exchange not valid in this state")),
            },
        };
        let resp_header = Header {
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            next_payload: PayloadType::SK,
            version: IKEV2_VERSION,
            exchange: header.exchange,
            flags: FLAG_RESPONSE,
            message_id: header.message_id,
            length: 0,
        };
        let resp = encode_response(remote, &handled.response, |inner| {
            let header = resp_header.clone();
            if sa.peer_fragmentation {
                sa.sk
                    .seal_fragments(header, inner, FRAGMENT_SIZE, rng.as_rngcore())
            } else {
                sa.sk.seal(header, inner, rng.as_rngcore()).map(|b| vec![b])
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
        sa.next_request_id = header.message_id.wrapping_add(1);
        sa.cached_response = Some(resp);
        if let Some(new_sa) = handled.new_sa {
            self.index_identity(&new_sa);
            self.sas.insert(new_sa.spi_r, *new_sa);
        }
        if handled.keep {
            actions.extend(self.send_next(&mut sa, now, rng));
            self.index_identity(&sa);
            self.sas.insert(sa.spi_r, sa);
        } else {
            actions.extend(self.cleanup(sa));
        }
        actions
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

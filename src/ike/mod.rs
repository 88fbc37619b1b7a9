//! The IKEv2 responder (RFC 7296) as a deterministic, sans-IO state machine.
//!
//! [`Responder::handle`] is given the time, a random source and one IKE message (the UDP
//! payload with any RFC 3948 non-ESP marker already stripped) with the addresses it travelled
//! between; it returns [`Action`]s: datagrams to send, Child SAs to install or delete. It never
//! reads a clock, a socket or the OS RNG, so every exchange is testable in memory.
//!
//! Invariants:
//! - a request is processed at most once: a retransmitted request is answered from the cached
//!   response byte for byte (§2.1, §2.2);
//! - nothing from the network is trusted before the SK payload's ICV verified (§3.14);
//! - every lease taken from the pool is released when its IKE SA goes away;
//! - a client proves the PSK again (a new IKE_AUTH) within `ike_lifetime` of its last one, and
//!   within `psk_change_reauth` of a PSK change; IKE SA rekeys do not extend either bound
//!   (`reauth`, RFC 4478).

mod auth;
mod budget;
mod cookie;
mod counters;
mod create_child;
mod error;
#[doc(hidden)]
pub mod fixtures;
mod fragment;
mod identity;
mod informational;
pub mod initiator;
mod nat;
mod notation;
mod proposal;
mod reauth;
mod requests;
mod responder;
mod sa_init;
mod sk;
pub mod snapshot;
mod ts;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_attack;
#[cfg(test)]
mod tests_explain;
#[cfg(test)]
mod tests_lifecycle;
#[cfg(test)]
mod tests_nat;
#[cfg(test)]
mod tests_protect;
#[cfg(test)]
mod tests_reauth;
#[cfg(test)]
mod tests_snapshot;

use std::net::{Ipv4Addr, SocketAddr};

use std::time::Duration;

use ipnet::Ipv4Net;

pub use crate::ipsec::{ChildSaSpec, Ipv4Range};
pub use auth::AuthFailure;
pub use budget::Refusal;
pub use counters::Counters;
pub use error::IkeError;
pub use nat::Nat;
pub use proposal::{EspSuite, IkeSuite};
pub use responder::{ChildInfo, Responder, SaInfo, Usage};

use crate::crypto::{DhGroup, PrfAlg};
use crate::secret::SecretBytes;
use crate::wire::IdPayload;
pub use identity::{Identity, UniquePolicy};

/// What the responder needs to know, in protocol terms (the daemon builds it from the
/// configuration: `daemon::responder_config`).
#[derive(Debug, Clone)]
pub struct ResponderConfig {
    pub ike: IkeSuite,
    pub esp: EspSuite,
    /// DH group for CREATE_CHILD_SA rekeys (IpsecPfs); `None` = disabled.
    pub esp_pfs: Option<DhGroup>,
    /// Hard lifetime of an IKE SA between rekeys, and the longest a client may go without
    /// authenticating again (a new IKE_AUTH; rekeys do not count); 0 = unlimited.
    pub ike_lifetime: Duration,
    pub ipsec_lifetime: Duration,
    pub psk: SecretBytes,
    /// IDr; `None` answers with the address the client reached (ID_IPV4_ADDR).
    pub local_id: Option<Identity>,
    /// Required IDi (type and data must match); `None` accepts any.
    pub remote_id: Option<Identity>,
    pub local_subnets: Vec<Ipv4Net>,
    pub pool: Ipv4Net,
    pub dns: Vec<Ipv4Addr>,
    pub max_connections: usize,
    pub unique: UniquePolicy,
    /// What outside traffic may make the responder keep or compute (the DoS budget).
    pub limits: Limits,
    /// Silence after which we check a peer's liveness (DPD); `None` never checks.
    pub dpd_interval: Option<Duration>,
    /// Claim a NAT in our NAT detection (IKE_SA_INIT, MOBIKE), so that every client that
    /// supports NAT-T encapsulates ESP in UDP, the only ESP the data plane receives (`nat`).
    pub force_udp_encap: bool,
    /// After a PSK change, how long a client authenticated with an older PSK keeps its IKE
    /// SA before it must authenticate again (`reauth`).
    pub psk_change_reauth: Duration,
}

/// An effect the responder asks its caller to carry out.
#[derive(Debug)]
pub enum Action {
    /// Send one IKE message from `local` to `remote` (the caller adds the non-ESP marker
    /// when `local` is the NAT-T port).
    Send {
        local: SocketAddr,
        remote: SocketAddr,
        bytes: Vec<u8>,
    },
    /// Install a Child SA pair in the data plane.
    InstallChild(Box<ChildSaSpec>),
    /// Remove the Child SA pair whose inbound SPI (ours) is this.
    DeleteChild { inbound_spi: u32 },
    /// Send the Child SA pair's ESP to this address from now on (NAT rebinding, MOBIKE).
    UpdateChildRemote {
        inbound_spi: u32,
        remote: SocketAddr,
    },
}

/// The DoS budget of the responder: what unauthenticated senders may make it keep and
/// compute, and what an authenticated peer may make it keep. Modelled on strongSwan's
/// `charon.cookie_threshold`, `cookie_threshold_ip`, `block_threshold`,
/// `init_limit_half_open`; every field is a `[limits]` key of the config file with the
/// default given here (`configs/ipsec-server.toml` documents them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Half-open IKE SAs in total from which every IKE_SA_INIT must carry a cookie (§2.6).
    pub cookie_threshold: usize,
    /// Half-open IKE SAs from one IP address from which that address must carry a cookie.
    pub cookie_threshold_ip: usize,
    /// Half-open IKE SAs one IP address may hold, cookie or not; more are dropped.
    pub block_threshold_ip: usize,
    /// Half-open IKE SAs in total, cookie or not; more are dropped.
    pub half_open_max: usize,
    /// How long an IKE SA may wait for its IKE_AUTH.
    pub half_open_timeout: Duration,
    /// Diffie-Hellman computations for IKE_SA_INIT in the last second from which every
    /// IKE_SA_INIT must carry a cookie: the cost of a flood counts, not only the state.
    pub dh_per_second_cookie: usize,
    /// Failed authentications from one IP address, or for one identity, after which further
    /// attempts are refused for a back-off time that doubles with each failure.
    pub auth_failures_before_backoff: u32,
    /// Upper bound of that back-off.
    pub auth_backoff_max: Duration,
    /// Child SAs one IKE SA may hold, not counting the old one of each rekey while it waits
    /// for its DELETE (so at most twice this in all).
    pub child_sas_per_ike_sa: usize,
    /// Largest IKE message accepted, reassembled fragmented messages included.
    pub max_ike_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cookie_threshold: 10,
            cookie_threshold_ip: 3,
            block_threshold_ip: 5,
            half_open_max: 1000,
            half_open_timeout: Duration::from_secs(30),
            dh_per_second_cookie: 100,
            auth_failures_before_backoff: 5,
            auth_backoff_max: Duration::from_secs(300),
            child_sas_per_ike_sa: 16,
            max_ike_message: 16 * 1024,
        }
    }
}

/// When a lifetime that starts `now` ends; 0 means never (IkeLifetime/IpsecLifetime 0: the
/// SA is not limited by time, docs/DESIGN.md §1).
pub(crate) fn lifetime_end(
    now: std::time::Instant,
    lifetime: Duration,
) -> Option<std::time::Instant> {
    (!lifetime.is_zero()).then(|| now + lifetime)
}

/// Our nonces: 32 octets, at least half the key size of every PRF we support (§2.10).
pub(crate) const OUR_NONCE_LEN: usize = 32;

/// A fresh nonce of [`OUR_NONCE_LEN`] octets.
pub(crate) fn our_nonce(rng: &mut dyn rand_core::CryptoRngCore) -> Vec<u8> {
    let mut n = vec![0u8; OUR_NONCE_LEN];
    rng.fill_bytes(&mut n);
    n
}

/// §2.10: a peer's nonce is 16..=256 octets and at least half the PRF's key size.
pub(crate) fn check_nonce(prf: PrfAlg, nonce: &[u8]) -> Result<(), IkeError> {
    let min = 16.max(prf.key_len().div_ceil(2));
    if (min..=256).contains(&nonce.len()) {
        Ok(())
    } else {
        Err(IkeError::InvalidSyntax("nonce length"))
    }
}

/// An ID payload for a configured identity.
pub(crate) fn id_payload(id: &Identity) -> IdPayload {
    IdPayload {
        id_type: id.id_type(),
        data: id.data(),
    }
}

/// A printable form of an identity, for logs, status and RemoteId comparison.
pub fn id_to_string(id: &IdPayload) -> String {
    match id.id_type {
        IdPayload::ID_IPV4_ADDR if id.data.len() == 4 => {
            Ipv4Addr::new(id.data[0], id.data[1], id.data[2], id.data[3]).to_string()
        }
        IdPayload::ID_FQDN | IdPayload::ID_RFC822_ADDR | IdPayload::ID_KEY_ID => {
            String::from_utf8_lossy(&id.data)
                .chars()
                .filter(|c| !c.is_control())
                .collect()
        }
        t => format!(
            "id-type-{t}:{}",
            id.data
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    }
}

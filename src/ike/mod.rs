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
//! - every lease taken from the pool is released when its IKE SA goes away.

mod auth;
mod cookie;
mod error;
mod informational;
pub mod initiator;
mod nat;
mod proposal;
mod responder;
mod sa_init;
mod sk;
mod ts;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::Ipv4Net;

pub use error::IkeError;
pub use proposal::{EspSuite, IkeSuite};
pub use responder::{Responder, SaInfo};
pub use ts::Ipv4Range;

use crate::crypto::{DhGroup, EncrAlg, IntegAlg};
use crate::secret::SecretBytes;
use crate::wire::IdPayload;

/// What the responder needs to know, in protocol terms (built from `config::Config`).
#[derive(Debug, Clone)]
pub struct ResponderConfig {
    pub ike: IkeSuite,
    pub esp: EspSuite,
    /// DH group for CREATE_CHILD_SA rekeys (IpsecPfs); `None` = disabled.
    pub esp_pfs: Option<DhGroup>,
    pub ike_lifetime: Duration,
    pub ipsec_lifetime: Duration,
    pub psk: SecretBytes,
    /// IDr; `None` answers with the address the client reached (ID_IPV4_ADDR).
    pub local_id: Option<String>,
    /// Required IDi; `None` accepts any.
    pub remote_id: Option<String>,
    pub local_subnets: Vec<Ipv4Net>,
    pub pool: Ipv4Net,
    pub dns: Vec<Ipv4Addr>,
    pub max_connections: usize,
    pub unique: UniquePolicy,
    /// Half-open IKE SAs above which every IKE_SA_INIT must carry a cookie (§2.6).
    pub cookie_threshold: usize,
    /// Half-open IKE SAs from one IP address above which that address must carry a cookie.
    pub cookie_per_source: usize,
    /// How long an IKE SA may wait for its IKE_AUTH.
    pub half_open_timeout: Duration,
}

/// What to do with older IKE SAs of an identity that authenticates again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniquePolicy {
    /// Replace an older IKE SA of the same identity only when it comes from the same IP
    /// address (a client reconnecting); clients sharing one identity from different addresses
    /// coexist. The default.
    SameAddress,
    /// Never replace: every IKE SA stays until it is deleted or times out.
    Never,
    /// Replace any older IKE SA of the same identity.
    Replace,
}

/// An effect the responder asks its caller to carry out.
#[derive(Debug)]
pub enum Action {
    /// Send one IKE message from `local` to `remote` (the caller adds the non-ESP marker
    /// when `local` is the NAT-T port).
    Send { local: SocketAddr, remote: SocketAddr, bytes: Vec<u8> },
    /// Install a Child SA pair in the data plane.
    InstallChild(Box<ChildSaSpec>),
    /// Remove the Child SA pair whose inbound SPI (ours) is this.
    DeleteChild { inbound_spi: u32 },
}

/// Everything the data plane needs for one Child SA pair (tunnel mode, ESP-in-UDP).
#[derive(Debug, Clone)]
pub struct ChildSaSpec {
    /// Our SPI: ESP from the client carries it.
    pub inbound_spi: u32,
    /// The client's SPI: ESP to the client carries it.
    pub outbound_spi: u32,
    pub encr: EncrAlg,
    pub integ: IntegAlg,
    /// Keys for client → gateway.
    pub inbound_encr_key: SecretBytes,
    pub inbound_integ_key: SecretBytes,
    /// Keys for gateway → client.
    pub outbound_encr_key: SecretBytes,
    pub outbound_integ_key: SecretBytes,
    /// The client's virtual IP: the only allowed inner source address of inbound packets.
    pub client_vip: Ipv4Addr,
    /// Narrowed TSr: allowed inner destinations of inbound packets.
    pub local_ts: Vec<Ipv4Range>,
    /// Our address the client talks to, and the client's observed address (UDP 4500 side).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Whether UDP encapsulation is in use (NAT detected, or the client floated to 4500).
    pub udp_encap: bool,
    pub lifetime: Duration,
}

/// IDr as we send it: an IPv4 literal becomes ID_IPV4_ADDR, `user@host` ID_RFC822_ADDR,
/// anything else ID_FQDN (RFC 7296 §3.5).
pub(crate) fn id_payload_for(id: &str) -> IdPayload {
    if let Ok(addr) = id.parse::<Ipv4Addr>() {
        IdPayload { id_type: IdPayload::ID_IPV4_ADDR, data: addr.octets().to_vec() }
    } else if id.contains('@') {
        IdPayload { id_type: IdPayload::ID_RFC822_ADDR, data: id.as_bytes().to_vec() }
    } else {
        IdPayload { id_type: IdPayload::ID_FQDN, data: id.as_bytes().to_vec() }
    }
}

/// A printable form of an identity, for logs, status and RemoteId comparison.
pub fn id_to_string(id: &IdPayload) -> String {
    match id.id_type {
        IdPayload::ID_IPV4_ADDR if id.data.len() == 4 => {
            Ipv4Addr::new(id.data[0], id.data[1], id.data[2], id.data[3]).to_string()
        }
        IdPayload::ID_FQDN | IdPayload::ID_RFC822_ADDR | IdPayload::ID_KEY_ID => {
            String::from_utf8_lossy(&id.data).chars().filter(|c| !c.is_control()).collect()
        }
        t => format!("id-type-{t}:{}", id.data.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}

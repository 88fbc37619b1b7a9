//! The data plane: the SA database and ESP (RFC 4303, tunnel mode) in caller-owned buffers,
//! with the anti-replay window. Knows nothing of IKE: an SA pair arrives as a
//! [`ChildSaSpec`] with its keys and selectors.
//!
//! Invariants: no allocation and no lock per packet ([`Sad`] lookups read an `ArcSwap`
//! snapshot; counters are atomics); an inbound packet is authenticated (constant-time ICV
//! check) before it is decrypted, and its inner addresses must match the SA's selectors
//! before it is delivered; an outbound packet leaves only if its source is inside the SA's
//! local selectors (RFC 4301 §5.1). The data plane tells the control plane which SAs run out
//! of sequence numbers without any per-packet work: the control plane reads the counters
//! once a tick ([`SadSnapshot::rekey_due`], [`REKEY_AT_SEQ`]).

mod drops;
mod esp;
#[doc(hidden)]
pub mod fixtures;
pub mod handover;
mod replay;
mod sad;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use drops::{drops_since, DropReason, EspDrops};
pub use esp::{DirectionTotals, EspError, EspTotals, InboundSa, Opened, OutboundSa, SaCounters};
pub use replay::{ReplayError, ReplayWindow, WINDOW as REPLAY_WINDOW};
pub use sad::{Sad, SadSnapshot};

/// From this sequence number on (2^31, half of the 32-bit space; there is no ESN) a Child SA
/// is due for a rekey: [`SadSnapshot::rekey_due`] names it when either direction's counter
/// got there — ours ([`OutboundSa::seq`]) or the peer's, as far as we have seen it
/// ([`InboundSa::highest_seq`]) — and the control plane rekeys it, whatever the lifetimes
/// say (also with lifetimes of 0). The other half is the margin: at 1 Gbit/s of full-size
/// packets 2^31 more take about 7 hours, far longer than a rekey, so the counter never
/// reaches 2^32-1, where [`OutboundSa::seal`] refuses to go on rather than wrap.
pub const REKEY_AT_SEQ: u64 = 1 << 31;

/// Which end of the tunnel this data plane is. A [`ChildSaSpec`] is written from the
/// gateway's point of view (`client_vip`, `local_ts` = the gateway's subnets); the client
/// installs the same spec mirrored: inbound packets come *from* `local_ts` *to* its
/// `client_vip`, and every outbound packet (whatever its destination inside the routed
/// remote subnets) takes the one Child SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Gateway,
    Client,
}

use crate::crypto::{EncrAlg, IntegAlg};
use crate::secret::SecretBytes;

/// An inclusive IPv4 address range (a traffic selector's addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ipv4Range {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

impl Ipv4Range {
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.start <= a && a <= self.end
    }

    pub fn intersect(&self, other: &Ipv4Range) -> Option<Ipv4Range> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start <= end).then_some(Ipv4Range { start, end })
    }

    pub fn single(a: Ipv4Addr) -> Self {
        Ipv4Range { start: a, end: a }
    }
}

impl From<ipnet::Ipv4Net> for Ipv4Range {
    fn from(n: ipnet::Ipv4Net) -> Self {
        Ipv4Range {
            start: n.network(),
            end: n.broadcast(),
        }
    }
}

/// Everything the data plane needs for one Child SA pair (tunnel mode, ESP-in-UDP), from the
/// gateway's point of view: "inbound" comes from the client.
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
    /// The client's virtual IP: the only allowed inner source of inbound packets and the
    /// destination that selects this SA for outbound ones.
    pub client_vip: Ipv4Addr,
    /// Narrowed TSr: allowed inner destinations of inbound packets.
    pub local_ts: Vec<Ipv4Range>,
    /// Our address the client talks to, and the client's observed address (UDP 4500 side).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Whether UDP encapsulation is in use (a NAT detected, or claimed by the responder's
    /// `force_udp_encap`, or the client floated to 4500). The data plane speaks only
    /// ESP-in-UDP: the daemon warns when it installs a pair without it.
    pub udp_encap: bool,
    pub lifetime: Duration,
}

impl ChildSaSpec {
    /// The same pair seen from the other end of the tunnel: SPIs, keys and outer addresses
    /// swapped (what the client installs with [`Role::Client`]; tests and benches build
    /// one end from the other with it).
    pub fn mirrored(&self) -> ChildSaSpec {
        ChildSaSpec {
            inbound_spi: self.outbound_spi,
            outbound_spi: self.inbound_spi,
            inbound_encr_key: self.outbound_encr_key.clone(),
            inbound_integ_key: self.outbound_integ_key.clone(),
            outbound_encr_key: self.inbound_encr_key.clone(),
            outbound_integ_key: self.inbound_integ_key.clone(),
            local: self.remote,
            remote: self.local,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests;

//! NAT detection (RFC 7296 §2.23): the hashes SHA-1(SPIi | SPIr | IP | port), and what the
//! responder answers with them.
//!
//! The data plane receives ESP only inside UDP on the NAT-T port (RFC 3948), never as raw IP
//! protocol 50. A client that sees no NAT between us would send raw ESP, which is lost; so by
//! default ([`super::ResponderConfig::force_udp_encap`]) our NAT_DETECTION_SOURCE_IP does not
//! hash our real address but the unspecified address of its family and port 0 (no packet
//! comes from there), and every client concludes that we are behind a NAT: it floats to the
//! NAT-T port and encapsulates ESP in UDP. §2.23 allows this ("an implementation MAY ...
//! pretend to be behind a NAT"); strongSwan does the same with `encap = yes`. Our
//! NAT_DETECTION_DESTINATION_IP stays honest, so a client behind a real NAT still learns it
//! and sends keepalives.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sha1::{Digest, Sha1};

use crate::wire::{NotifyType, Payload};

/// What NAT detection found in IKE_SA_INIT, for status (strongSwan's "remote host is behind
/// NAT", "local host is behind NAT", "faking NAT situation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nat {
    /// The client's NAT_DETECTION_SOURCE_IP did not match the address it came from.
    pub remote: bool,
    /// Its NAT_DETECTION_DESTINATION_IP did not match the address it reached.
    pub local: bool,
    /// We claimed a NAT ourselves (`force_udp_encap`) so that it encapsulates ESP in UDP.
    pub faked: bool,
}

pub(crate) fn nat_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(spi_i.to_be_bytes());
    h.update(spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => h.update(a.octets()),
        IpAddr::V6(a) => h.update(a.octets()),
    }
    h.update(addr.port().to_be_bytes());
    h.finalize().to_vec()
}

/// The address our NAT_DETECTION_SOURCE_IP hashes: `local`, or, when UDP encapsulation is
/// forced, the unspecified address of its family with port 0, which matches no real sender.
fn claimed_source(local: SocketAddr, force_udp_encap: bool) -> SocketAddr {
    if !force_udp_encap {
        return local;
    }
    let ip = match local.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// Our two NAT detection notifies for an IKE SA between `local` (us) and `remote` (the peer
/// as we see it): in the IKE_SA_INIT response (`spi_r` is ours) and in the answer to a
/// MOBIKE UPDATE_SA_ADDRESSES (RFC 4555 §3.5).
pub(crate) fn nat_detection(
    (spi_i, spi_r): (u64, u64),
    local: SocketAddr,
    remote: SocketAddr,
    force_udp_encap: bool,
) -> [Payload; 2] {
    [
        Payload::notify(
            NotifyType::NAT_DETECTION_SOURCE_IP,
            nat_hash(spi_i, spi_r, claimed_source(local, force_udp_encap)),
        ),
        Payload::notify(
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            nat_hash(spi_i, spi_r, remote),
        ),
    ]
}

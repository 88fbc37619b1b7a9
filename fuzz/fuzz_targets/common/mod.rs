//! The responder and initiator setups the IKE fuzz targets share (each target includes this
//! module with `mod common;`; it is not a target itself): the library's fixtures
//! (`ipsec_server::ike::fixtures`) with low cookie and half-open limits, so that inputs reach
//! them.

use std::net::SocketAddr;

use ipsec_server::ike::initiator::InitiatorConfig;
use ipsec_server::ike::{fixtures, Identity, Limits, ResponderConfig};

/// The fixture responder (no PFS, no DPD) with low cookie thresholds.
pub fn responder_config() -> ResponderConfig {
    ResponderConfig {
        limits: Limits {
            cookie_threshold: 4,
            cookie_threshold_ip: 4,
            block_threshold_ip: 8,
            half_open_max: 8,
            ..Limits::default()
        },
        ..fixtures::responder_config()
    }
}

/// The fixture initiator, asking for a virtual IP, with the identity the authenticated
/// harness signs for (`authenticated::payloads::our_id`).
pub fn initiator_config(local: SocketAddr, remote: SocketAddr) -> InitiatorConfig {
    InitiatorConfig { id: Identity::Fqdn("fuzz".into()), ..fixtures::initiator_config(local, remote) }
}

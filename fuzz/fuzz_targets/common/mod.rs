//! The responder and initiator setups the IKE fuzz targets share (each target includes this
//! module with `mod common;`; it is not a target itself).

use std::net::SocketAddr;
use std::time::Duration;

use ipsec_server::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use ipsec_server::ike::initiator::InitiatorConfig;
use ipsec_server::ike::{EspSuite, Identity, IkeSuite, Limits, ResponderConfig, UniquePolicy};
use ipsec_server::secret::SecretBytes;

pub const PSK: &[u8] = b"fuzz-psk";

pub fn suite() -> IkeSuite {
    IkeSuite { encr: EncrAlg::AesCbc128, integ: IntegAlg::HmacSha1_96, prf: PrfAlg::HmacSha1, dh: DhGroup::Modp1024 }
}

pub fn esp() -> EspSuite {
    EspSuite { encr: EncrAlg::AesCbc128, integ: IntegAlg::HmacSha1_96 }
}

/// A responder for the shared suite and PSK: low cookie thresholds, no DPD.
pub fn responder_config() -> ResponderConfig {
    ResponderConfig {
        ike: suite(),
        esp: esp(),
        esp_pfs: None,
        ike_lifetime: Duration::from_secs(3600),
        ipsec_lifetime: Duration::from_secs(3600),
        psk: SecretBytes::from_slice(PSK),
        local_id: None,
        remote_id: None,
        local_subnets: vec!["192.168.0.0/24".parse().unwrap()],
        pool: "10.0.0.0/24".parse().unwrap(),
        dns: vec![],
        max_connections: 100,
        unique: UniquePolicy::SameAddress,
        limits: Limits {
            cookie_threshold: 4,
            cookie_threshold_ip: 4,
            block_threshold_ip: 8,
            half_open_max: 8,
            ..Limits::default()
        },
        dpd_interval: None,
    }
}

/// An initiator that `responder_config` accepts, asking for a virtual IP.
pub fn initiator_config(local: SocketAddr, remote: SocketAddr) -> InitiatorConfig {
    InitiatorConfig {
        ike: suite(),
        esp: esp(),
        psk: SecretBytes::from_slice(PSK),
        id: Identity::Fqdn("fuzz".into()),
        local,
        remote,
        remote_ts: vec![],
        request_vip: true,
    }
}

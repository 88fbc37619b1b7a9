//! The responder and initiator configurations that the in-memory tests, the integration
//! tests, the benches and the fuzz targets share, so that a new `ResponderConfig` field is
//! added in one place. Compiled always (hidden from the docs): integration tests, benches and
//! the fuzz crate cannot see `#[cfg(test)]` items. Nothing in the daemon uses it.
//!
//! Callers change what their case is about with struct-update syntax
//! (`ResponderConfig { limits, ..responder_config() }`).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::initiator::InitiatorConfig;
use super::{EspSuite, Identity, IkeSuite, Limits, ResponderConfig, UniquePolicy};
use crate::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use crate::secret::SecretBytes;

/// The PSK both sides of the fixtures share.
pub const PSK: &[u8] = b"test-psk-0123456789";

/// The cheapest suite: AES-CBC-128, HMAC-SHA1-96, PRF-HMAC-SHA1, MODP group 2.
pub fn ike_suite() -> IkeSuite {
    IkeSuite {
        encr: EncrAlg::AesCbc128,
        integ: IntegAlg::HmacSha1_96,
        prf: PrfAlg::HmacSha1,
        dh: DhGroup::Modp1024,
    }
}

/// ESP with AES-CBC-128 and HMAC-SHA1-96.
pub fn esp_suite() -> EspSuite {
    EspSuite {
        encr: EncrAlg::AesCbc128,
        integ: IntegAlg::HmacSha1_96,
    }
}

/// A responder for [`ike_suite`], [`esp_suite`] and [`PSK`]: IDr `gw.example.com`, the LAN
/// 192.168.0.0/24 with its DNS server, the pool 10.0.0.0/24, day-long lifetimes, no PFS and
/// no DPD, re-authentication within an hour of a PSK change, cookie thresholds above what a
/// handful of clients from one address reach, UDP encapsulation forced (the default).
pub fn responder_config() -> ResponderConfig {
    ResponderConfig {
        ike: ike_suite(),
        esp: esp_suite(),
        esp_pfs: None,
        ike_lifetime: Duration::from_secs(86400),
        ipsec_lifetime: Duration::from_secs(86400),
        psk: SecretBytes::from_slice(PSK),
        local_id: Some(Identity::Fqdn("gw.example.com".into())),
        remote_id: None,
        local_subnets: vec!["192.168.0.0/24".parse().expect("literal")],
        pool: "10.0.0.0/24".parse().expect("literal"),
        dns: vec![Ipv4Addr::new(192, 168, 0, 53)],
        max_connections: 1000,
        unique: UniquePolicy::SameAddress,
        limits: Limits {
            cookie_threshold: 100,
            cookie_threshold_ip: 50,
            block_threshold_ip: 100,
            ..Limits::default()
        },
        dpd_interval: None,
        force_udp_encap: true,
        psk_change_reauth: Duration::from_secs(3600),
    }
}

/// An initiator from `local` to `remote` that [`responder_config`] accepts: the same suites
/// and PSK, IDi `client1.example`, asking for a virtual IP and every destination.
pub fn initiator_config(local: SocketAddr, remote: SocketAddr) -> InitiatorConfig {
    InitiatorConfig {
        ike: ike_suite(),
        esp: esp_suite(),
        psk: SecretBytes::from_slice(PSK),
        id: Identity::Fqdn("client1.example".into()),
        local,
        remote,
        remote_ts: vec![],
        request_vip: true,
    }
}

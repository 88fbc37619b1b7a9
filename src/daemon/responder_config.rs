//! The translation from the validated configuration to the responder's protocol terms: `ike`
//! knows nothing of config files, and the daemon hands it a [`ResponderConfig`].

use crate::config::{Config, LimitsConfig};
use crate::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use crate::ike::{EspSuite, IkeSuite, Limits, ResponderConfig};

/// The responder's view of a validated configuration; `None` without `[ipsec_server]`.
pub fn responder_config(config: &Config) -> Option<ResponderConfig> {
    let server = config.ipsec_server()?;
    let gw = config.gateway();
    let (ike, ipsec) = (server.ike(), server.ipsec());
    // The config's algorithm enums carry the IANA numbers; the crypto layer maps them
    // back, so the set of algorithms is defined once. Every config value has a transform.
    let encr = |e: crate::config::EncAlg| EncrAlg::from_ike(e.iana_id(), e.key_length_attr());
    let dh = |g: crate::config::DhGroup| DhGroup::from_id(g.iana_id());
    Some(ResponderConfig {
        ike: IkeSuite {
            encr: encr(ike.enc())?,
            integ: IntegAlg::from_ike(ike.auth().integ_id())?,
            prf: PrfAlg::from_ike(ike.auth().prf_id())?,
            dh: dh(ike.dh_group())?,
        },
        esp: EspSuite {
            encr: encr(ipsec.enc())?,
            integ: IntegAlg::from_ike(ipsec.auth().integ_id())?,
        },
        esp_pfs: ipsec.pfs().and_then(dh),
        ike_lifetime: ike.lifetime(),
        ipsec_lifetime: ipsec.lifetime(),
        psk: server.psk().clone(),
        local_id: ike.local_id().cloned(),
        remote_id: ike.remote_id().cloned(),
        local_subnets: server.local_subnets().to_vec(),
        pool: server.client_ip_pool(),
        dns: server.dns().to_vec(),
        max_connections: gw.max_connections().get() as usize,
        unique: gw.unique(),
        limits: limits(config.limits()),
        dpd_interval: gw.dpd_interval(),
        force_udp_encap: gw.force_udp_encap(),
        psk_change_reauth: gw.psk_change_reauth(),
    })
}

/// The validated `[limits]` section in the responder's terms.
fn limits(l: &LimitsConfig) -> Limits {
    // u32 → usize is lossless on the 32- and 64-bit targets the daemon runs on.
    let n = |v: std::num::NonZeroU32| v.get() as usize;
    Limits {
        cookie_threshold: n(l.cookie_threshold()),
        cookie_threshold_ip: n(l.cookie_threshold_ip()),
        block_threshold_ip: n(l.block_threshold_ip()),
        half_open_max: n(l.half_open_max()),
        half_open_timeout: l.half_open_timeout(),
        dh_per_second_cookie: n(l.dh_per_second_cookie()),
        auth_failures_before_backoff: l.auth_failures_before_backoff().get(),
        auth_backoff_max: l.auth_backoff_max(),
        child_sas_per_ike_sa: n(l.child_sas_per_ike_sa()),
        max_ike_message: l.max_ike_message().into(),
    }
}

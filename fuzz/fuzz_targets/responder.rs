//! Arbitrary datagrams to a responder with a deterministic RNG: as a fresh message, and as a
//! follow-up on an IKE SA that a real IKE_SA_INIT opened (its SPIs patched in, so the bytes
//! reach the SK decryption path). Nothing may panic, and no state may grow without bound.
#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipsec_server::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use ipsec_server::ike::initiator::{Initiator, InitiatorConfig};
use ipsec_server::ike::{
    Action, EspSuite, Identity, IkeSuite, Responder, ResponderConfig, UniquePolicy,
};
use ipsec_server::secret::SecretBytes;
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn suite() -> IkeSuite {
    IkeSuite { encr: EncrAlg::AesCbc128, integ: IntegAlg::HmacSha1_96, prf: PrfAlg::HmacSha1, dh: DhGroup::Modp1024 }
}

fn config() -> ResponderConfig {
    ResponderConfig {
        ike: suite(),
        esp: EspSuite { encr: EncrAlg::AesCbc128, integ: IntegAlg::HmacSha1_96 },
        esp_pfs: None,
        ike_lifetime: Duration::from_secs(3600),
        ipsec_lifetime: Duration::from_secs(3600),
        psk: SecretBytes::from_slice(b"fuzz-psk"),
        local_id: None,
        remote_id: None,
        local_subnets: vec!["192.168.0.0/24".parse().unwrap()],
        pool: "10.0.0.0/24".parse().unwrap(),
        dns: vec![],
        max_connections: 100,
        unique: UniquePolicy::SameAddress,
        cookie_threshold: 4,
        cookie_per_source: 4,
        half_open_timeout: Duration::from_secs(30),
        dpd_interval: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rng = StdRng::seed_from_u64(1);
    let now = Instant::now();
    let local: SocketAddr = "192.0.2.1:500".parse().unwrap();
    let remote: SocketAddr = "198.51.100.7:500".parse().unwrap();
    let mut responder = Responder::new(Arc::new(config()));
    let _ = responder.handle(now, &mut rng, data, local, remote);

    // Open an IKE SA, then send the fuzz bytes as if they belonged to it.
    let (_ini, init) = Initiator::start(
        InitiatorConfig {
            ike: suite(),
            esp: EspSuite { encr: EncrAlg::AesCbc128, integ: IntegAlg::HmacSha1_96 },
            psk: SecretBytes::from_slice(b"fuzz-psk"),
            id: Identity::Fqdn("fuzz".into()),
            local: remote,
            remote: local,
            remote_ts: vec![],
            request_vip: true,
        },
        &mut rng,
    );
    let actions = responder.handle(now, &mut rng, &init, local, remote);
    let Some(Action::Send { bytes, .. }) = actions.first() else { return };
    if data.len() >= 16 && bytes.len() >= 16 {
        let mut msg = data.to_vec();
        msg[..16].copy_from_slice(&bytes[..16]);
        let _ = responder.handle(now, &mut rng, &msg, "192.0.2.1:4500".parse().unwrap(), remote);
    }
    let _ = responder.tick(now + Duration::from_secs(60), &mut rng);
    assert!(responder.sas(now).is_empty(), "half-open SAs must time out");
});

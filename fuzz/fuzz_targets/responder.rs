//! Arbitrary datagrams to a responder with a deterministic RNG: as a fresh message, and as a
//! follow-up on an IKE SA that a real IKE_SA_INIT opened (its SPIs patched in, so the bytes
//! reach the SK decryption path). Nothing may panic, and no state may grow without bound.
#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{initiator_config, responder_config};
use ipsec_server::ike::initiator::Initiator;
use ipsec_server::ike::{Action, Responder};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let mut rng = StdRng::seed_from_u64(1);
    let now = Instant::now();
    let local: SocketAddr = "192.0.2.1:500".parse().unwrap();
    let remote: SocketAddr = "198.51.100.7:500".parse().unwrap();
    let mut responder = Responder::new(Arc::new(responder_config()));
    let _ = responder.handle(now, &mut rng, data, local, remote);

    // Open an IKE SA, then send the fuzz bytes as if they belonged to it.
    let (_ini, init) = Initiator::start(initiator_config(remote, local), &mut rng).unwrap();
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

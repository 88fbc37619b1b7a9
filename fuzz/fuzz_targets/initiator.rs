//! Arbitrary datagrams to the initiator (client mode and the load generator take them from
//! the network): as its IKE_SA_INIT response, and — once a real responder established the IKE
//! SA in memory — as a response or as a request from the responder ([`Initiator::answer`]).
//! The first byte picks the case; the rest is either a whole message (SPIs patched in so it
//! reaches past the SPI checks) or an XOR overlay on a real message (zeros leave it valid, so
//! the paths after the ICV are reached too). Nothing may panic.
#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{initiator_config, responder_config};
use ipsec_server::ike::initiator::Initiator;
use ipsec_server::ike::{Action, Limits, Responder, ResponderConfig};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

const GW500: &str = "192.0.2.1:500";
const GW4500: &str = "192.0.2.1:4500";
const CLIENT: &str = "198.51.100.7:4500";

fn responder() -> Responder {
    // The liveness check the request cases answer needs DPD; the handshake no cookie.
    Responder::new(Arc::new(ResponderConfig {
        limits: Limits {
            cookie_threshold: 100,
            cookie_threshold_ip: 100,
            block_threshold_ip: 100,
            ..Limits::default()
        },
        dpd_interval: Some(Duration::from_secs(10)),
        ..responder_config()
    }))
}

fn initiator(rng: &mut StdRng) -> (Initiator, Vec<u8>) {
    Initiator::start(initiator_config(CLIENT.parse().unwrap(), GW4500.parse().unwrap()), rng)
        .unwrap()
}

fn first_sent(actions: &[Action]) -> Option<Vec<u8>> {
    actions.iter().find_map(|a| match a {
        Action::Send { bytes, .. } => Some(bytes.clone()),
        _ => None,
    })
}

/// `base` with `overlay` XORed onto its start (length unchanged).
fn overlaid(base: &[u8], overlay: &[u8]) -> Vec<u8> {
    let mut m = base.to_vec();
    for (b, o) in m.iter_mut().zip(overlay) {
        *b ^= o;
    }
    m
}

/// `data` with the first 16 octets (both SPIs) taken from `real`.
fn patched(real: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = data.to_vec();
    let n = m.len().min(16).min(real.len());
    m[..n].copy_from_slice(&real[..n]);
    m
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else { return };
    let mut rng = StdRng::seed_from_u64(3);
    let now = Instant::now();
    let (gw500, gw4500, client) = (
        GW500.parse::<SocketAddr>().unwrap(),
        GW4500.parse::<SocketAddr>().unwrap(),
        CLIENT.parse::<SocketAddr>().unwrap(),
    );
    let mut resp = responder();
    let (mut ini, init) = initiator(&mut rng);
    let Some(init_resp) = first_sent(&resp.handle(now, &mut rng, &init, gw500, client)) else {
        return;
    };
    match mode % 4 {
        0 => {
            let _ = ini.handle(&mut rng, &patched(&init_resp, data));
            return;
        }
        1 => {
            let _ = ini.handle(&mut rng, &overlaid(&init_resp, data));
            return;
        }
        _ => {}
    }
    // A real handshake to the end.
    let Ok(Some(auth)) = ini.handle(&mut rng, &init_resp) else { return };
    let Some(auth_resp) = first_sent(&resp.handle(now, &mut rng, &auth, gw4500, client)) else {
        return;
    };
    assert!(matches!(ini.handle(&mut rng, &auth_resp), Ok(None)));
    assert!(ini.is_established());
    // The responder's liveness check, real or fuzzed, to be answered; then any response.
    let Some(probe) = first_sent(&resp.tick(now + Duration::from_secs(11), &mut rng)) else {
        return;
    };
    let request = if mode % 4 == 2 { patched(&probe, data) } else { overlaid(&probe, data) };
    if let Ok((answer, _)) = ini.answer(&mut rng, &request) {
        let _ = resp.handle(now, &mut rng, &answer, gw4500, client);
    }
    let _ = ini.handle(&mut rng, &request);
});

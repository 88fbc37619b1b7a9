//! The hand-over snapshot (`snapshot.rs`): a responder with established SAs, snapshotted,
//! serialized and restored in "another process", answers and goes on as the old one would.

use std::sync::Arc;
use std::time::Duration;

use super::initiator::Initiator;
use super::snapshot::{ResponderState, RestoreError};
use super::tests::{initiator_config, installed, sent, Harness, CLIENT_REKEY_SPI};
use super::*;
use crate::wire::{ExchangeType, Header};

const CLIENT: &str = "198.51.100.7:500";

/// The state through its wire form, as the hand-over socket carries it.
fn through_the_wire(s: &ResponderState) -> ResponderState {
    postcard::from_bytes(&postcard::to_stdvec(s).unwrap()).unwrap()
}

/// The harness's responder replaced by one restored from its snapshot. The restoring
/// process's clock is another one: times are relative to the capture, so the switch itself
/// does not count (a second later in the new process is a second later for every timer).
fn hand_over(h: &mut Harness) {
    let state = through_the_wire(&h.responder.snapshot(h.now));
    h.now += Duration::from_secs(3600);
    let cfg = Arc::new(h.responder.config().clone());
    h.responder = Responder::restore(cfg, &state, h.now).unwrap();
}

#[test]
fn a_restored_responder_answers_from_its_cache_takes_the_next_request_and_rekeys() {
    let mut cfg = tests::responder_config();
    cfg.esp_pfs = None;
    cfg.dpd_interval = None;
    let mut h = Harness::new(cfg);
    // A second client, so the table holds more than one SA.
    h.connect(initiator_config("198.51.100.9:500")).2.unwrap();
    let (mut ini, init) = Initiator::start(initiator_config(CLIENT), &mut h.rng).unwrap();
    let r1 = sent(&h.send(CLIENT, &init));
    let auth = ini.handle(&mut h.rng, &r1[0]).unwrap().unwrap();
    let a1 = h.send(CLIENT, &auth);
    let child = installed(&a1)[0].clone();
    assert!(ini.handle(&mut h.rng, &sent(&a1)[0]).unwrap().is_none());
    let before = h.responder.sas(h.now);
    let usage = h.responder.usage();

    hand_over(&mut h);

    // Same SAs, same leases, same counts.
    let mut after = h.responder.sas(h.now);
    let mut before = before;
    before.sort_by_key(|s| s.spi_r);
    after.sort_by_key(|s| s.spi_r);
    let key = |s: &SaInfo| {
        (
            s.spi_i,
            s.spi_r,
            s.identity.clone(),
            s.vip,
            s.remote,
            s.children.clone(),
        )
    };
    assert_eq!(
        before.iter().map(key).collect::<Vec<_>>(),
        after.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(h.responder.usage(), usage);
    assert_eq!(h.responder.online_clients(), 2);

    // A retransmitted IKE_AUTH is answered from the cache, byte for byte, and not processed
    // (rate-limited as before: once per RETRANSMIT_EVERY since the last answer).
    assert!(sent(&h.send(CLIENT, &auth)).is_empty());
    h.now += responder::RETRANSMIT_EVERY;
    let again = h.send(CLIENT, &auth);
    assert_eq!(sent(&again), sent(&a1), "the cached response");
    assert!(installed(&again).is_empty(), "IKE_AUTH processed twice");

    // The next message ID is taken: a liveness check from the client is answered.
    let probe = ini.liveness_request(&mut h.rng).unwrap().unwrap();
    let resp = sent(&h.send(CLIENT, &probe));
    assert_eq!(resp.len(), 1);
    assert!(ini.handle(&mut h.rng, &resp[0]).unwrap().is_none());

    // We rekey the Child SA (its sequence numbers ran low): our first request on this IKE
    // SA after the switch, accepted by the client.
    h.responder.rekey_soon(h.now, child.inbound_spi);
    let req = sent(&h.responder.tick(h.now, &mut h.rng));
    assert_eq!(req.len(), 1);
    let new_spi = answer_rekey(&mut h, &ini, &req[0]);
    assert_ne!(new_spi, child.inbound_spi);
    assert_eq!(h.responder.counters().child_rekeys, 1);
}

/// Accepts the responder's CREATE_CHILD_SA `req` as the client; returns the new inbound SPI
/// the responder installed.
fn answer_rekey(h: &mut Harness, ini: &Initiator, req: &[u8]) -> u32 {
    let (_, actions) = h.accept_child_rekey(CLIENT, ini, req);
    let new = installed(&actions);
    assert_eq!(new.len(), 1, "the new Child SA is installed");
    assert_eq!(new[0].outbound_spi, CLIENT_REKEY_SPI);
    new[0].inbound_spi
}

#[test]
fn our_request_in_flight_is_retransmitted_and_completed_after_the_switch() {
    let mut cfg = tests::responder_config();
    cfg.esp_pfs = None;
    cfg.dpd_interval = None;
    let mut h = Harness::new(cfg);
    let (ini, actions, r) = h.connect(initiator_config(CLIENT));
    r.unwrap();
    let child = installed(&actions)[0].clone();
    h.responder.rekey_soon(h.now, child.inbound_spi);
    let req = sent(&h.responder.tick(h.now, &mut h.rng));
    assert_eq!(req.len(), 1);

    hand_over(&mut h);

    // Unanswered, it is retransmitted byte for byte on its schedule (1 s after the send).
    h.now += Duration::from_secs(1);
    assert_eq!(sent(&h.responder.tick(h.now, &mut h.rng)), req);
    // The client's answer completes the rekey in the new process.
    answer_rekey(&mut h, &ini, &req[0]);
    let spis = h.responder.usage().inbound_spis;
    assert_eq!(spis, 2, "old and new Child SA until the old one's DELETE");
}

#[test]
fn a_state_that_does_not_fit_is_refused() {
    let mut h = Harness::new(tests::responder_config());
    h.connect(initiator_config(CLIENT)).2.unwrap();
    h.connect(initiator_config("198.51.100.9:500")).2.unwrap();
    let state = h.responder.snapshot(h.now);
    // Another pool: the leases do not fit.
    let mut other = h.responder.config().clone();
    other.pool = "10.77.0.0/24".parse().unwrap();
    assert!(matches!(
        Responder::restore(Arc::new(other), &state, h.now),
        Err(RestoreError::Pool)
    ));
    // Fewer connections than SAs allowed.
    let mut small = h.responder.config().clone();
    small.max_connections = 1;
    assert!(Responder::restore(Arc::new(small), &state, h.now).is_err());
    // A key of the wrong length.
    let mut bad = through_the_wire(&state);
    bad.sas[0].keys[3] = snapshot::Key(crate::secret::SecretBytes::from_slice(b"short"));
    let cfg = Arc::new(h.responder.config().clone());
    assert!(matches!(
        Responder::restore(cfg.clone(), &bad, h.now),
        Err(RestoreError::Sa(..))
    ));
    // The same SA twice.
    let mut twice = through_the_wire(&state);
    let copy = through_the_wire(&state).sas.remove(0);
    twice.sas.push(copy);
    assert!(Responder::restore(cfg, &twice, h.now).is_err());
}

#[test]
fn timers_go_on_where_they_were() {
    let mut cfg = tests::responder_config();
    cfg.ipsec_lifetime = Duration::from_secs(100);
    cfg.dpd_interval = None;
    let mut h = Harness::new(cfg);
    h.connect(initiator_config(CLIENT)).2.unwrap();
    h.now += Duration::from_secs(60);
    let before = h.responder.sas(h.now)[0].children[0].clone();
    hand_over(&mut h);
    let after = h.responder.sas(h.now)[0].children[0].clone();
    assert_eq!(
        before, after,
        "installed, rekey and expiry times relative to now"
    );
    assert_eq!(after.installed_secs, 60);
    // The soft lifetime (90 s less up to 5 s of jitter) still fires after the switch.
    h.now += Duration::from_secs(31);
    let req = sent(&h.responder.tick(h.now, &mut h.rng));
    assert_eq!(req.len(), 1);
    assert_eq!(
        Header::parse(&req[0]).unwrap().exchange,
        ExchangeType::CREATE_CHILD_SA
    );
}

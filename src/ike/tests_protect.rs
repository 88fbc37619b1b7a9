//! The initiator's hand-driven requests ([`Initiator::psk_auth`], [`Initiator::protect`] and
//! its fragment variants, [`Initiator::protect_response`]) against the responder, and
//! [`Responder::usage`]: what the structure-aware fuzz targets build on.

use super::initiator::Initiator;
use super::tests::{initiator_config, installed, responder_config, sent, Harness};
use super::*;
use crate::wire::{emit_payloads, ExchangeType, Message, Payload, PayloadType};

pub(crate) const CLIENT: &str = "198.51.100.7:500";

/// The initiator after IKE_SA_INIT, and the inner payloads of the IKE_AUTH it would send.
pub(crate) fn half_open(h: &mut Harness) -> (Initiator, Vec<Payload>) {
    let (mut ini, init) = Initiator::start(initiator_config(CLIENT), &mut h.rng).unwrap();
    let resp = sent(&h.send(CLIENT, &init));
    let auth = ini.handle(&mut h.rng, &resp[0]).unwrap().unwrap();
    let sa = h.responder.sas.values().next().unwrap();
    let inner = sa
        .core
        .sk
        .open(&auth, &Message::parse(&auth).unwrap())
        .unwrap()
        .unwrap();
    (ini, inner)
}

#[test]
fn a_hand_built_ike_auth_authenticates_whole_or_in_fragments() {
    for fragmented in [false, true] {
        let mut h = Harness::new(responder_config());
        let (ini, mut inner) = half_open(&mut h);
        // Another identity, signed by psk_auth: still authentic.
        let idi = crate::wire::IdPayload {
            id_type: crate::wire::IdPayload::ID_KEY_ID,
            data: b"hand-built".to_vec(),
        };
        for p in &mut inner {
            match p {
                Payload::IdI(id) => *id = idi.clone(),
                Payload::Auth(a) => *a = ini.psk_auth(&idi).unwrap(),
                _ => {}
            }
        }
        let datagrams = if fragmented {
            let frags = ini
                .protect_fragments(ExchangeType::IKE_AUTH, 1, &inner, 200, &mut h.rng)
                .unwrap();
            assert!(frags.len() > 1 && frags.iter().all(|f| f.len() <= 200));
            frags
        } else {
            vec![ini
                .protect(ExchangeType::IKE_AUTH, 1, &inner, &mut h.rng)
                .unwrap()]
        };
        let mut actions = Vec::new();
        for d in &datagrams {
            actions.extend(h.send(CLIENT, d));
        }
        assert_eq!(installed(&actions).len(), 1, "fragmented: {fragmented}");
        assert_eq!(h.responder.sas(h.now)[0].identity, "hand-built");
        let usage = h.responder.usage();
        assert_eq!(
            usage,
            Usage {
                ike_sas: 1,
                half_open: 0,
                connections: 1,
                child_sas: 1,
                inbound_spis: 1,
                leases: 1,
            }
        );
        h.responder.delete_all(&mut h.rng);
        assert_eq!(h.responder.usage(), Usage::default());
    }
}

#[test]
fn fragments_numbered_by_hand_reassemble_in_any_order() {
    let mut h = Harness::new(responder_config());
    let (ini, inner) = half_open(&mut h);
    let mut plain = Vec::new();
    let first = emit_payloads(&inner, &mut plain).unwrap();
    let (a, b) = plain.split_at(plain.len() / 2);
    let second = ini
        .protect_fragment(
            ExchangeType::IKE_AUTH,
            1,
            (2, 2),
            PayloadType::NONE,
            b,
            &mut h.rng,
        )
        .unwrap();
    let one = ini
        .protect_fragment(ExchangeType::IKE_AUTH, 1, (1, 2), first, a, &mut h.rng)
        .unwrap();
    assert!(h.send(CLIENT, &second).is_empty(), "waits for fragment 1");
    let actions = h.send(CLIENT, &one);
    assert_eq!(installed(&actions).len(), 1);
}

#[test]
fn protect_needs_the_ike_sa_keys() {
    let mut h = Harness::new(responder_config());
    let (ini, _) = Initiator::start(initiator_config(CLIENT), &mut h.rng).unwrap();
    let id = crate::wire::IdPayload {
        id_type: 2,
        data: vec![],
    };
    assert!(ini.psk_auth(&id).is_err());
    assert!(ini
        .protect(ExchangeType::INFORMATIONAL, 2, &[], &mut h.rng)
        .is_err());
    assert!(ini
        .protect_response(ExchangeType::INFORMATIONAL, 0, &[], &mut h.rng)
        .is_err());
}

#[test]
fn a_response_built_by_hand_answers_the_responders_liveness_check() {
    let mut h = Harness::new(responder_config());
    let (ini, _, result) = h.connect(initiator_config(CLIENT));
    result.unwrap();
    let dpd = h.responder.config().dpd_interval.unwrap();
    h.now += dpd;
    let now = h.now;
    let probe = sent(&h.responder.tick(now, &mut h.rng));
    assert_eq!(probe.len(), 1);
    let pending = |h: &Harness| {
        h.responder.sas.values().any(
            |sa| matches!(&sa.state, responder::SaState::Established(e) if e.pending.is_some()),
        )
    };
    assert!(pending(&h));
    let request = Message::parse(&probe[0]).unwrap();
    let answer = ini
        .protect_response(
            request.header.exchange,
            request.header.message_id,
            &[],
            &mut h.rng,
        )
        .unwrap();
    assert!(sent(&h.send(CLIENT, &answer)).is_empty());
    assert!(!pending(&h), "the liveness check is answered");
}

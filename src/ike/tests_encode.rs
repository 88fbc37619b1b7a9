//! Responses our own values make too long for their fields: the responder answers
//! N(INVALID_SYNTAX) instead of panicking (`error::encode_response`).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::tests::{initiator_config, responder_config, sent, Harness};
use super::*;
use crate::wire::{Message, NotifyType, Payload, PayloadList};

const CLIENT: &str = "198.51.100.7:500";

/// A gateway with `n` local subnets of one address each: narrowing the client's
/// "everything" TSr yields `n` selectors (RFC 7296 §2.9).
fn harness_with_local_subnets(n: u32) -> Harness {
    let mut cfg = responder_config();
    cfg.local_subnets = (0..n)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0xc0a8_0000 + i), 32).unwrap())
        .collect();
    Harness::new(cfg)
}

#[test]
fn ike_auth_narrowed_to_256_selectors_is_answered_invalid_syntax() {
    let mut h = harness_with_local_subnets(256);
    let (mut ini, init) =
        initiator::Initiator::start(initiator_config(CLIENT), &mut h.rng).unwrap();
    let resp = sent(&h.send(CLIENT, &init));
    let auth = ini.handle(&mut h.rng, &resp[0]).unwrap().unwrap();
    let answer = sent(&h.send(CLIENT, &auth));
    assert_eq!(
        answer.len(),
        1,
        "one small message, not 256 selectors' fragments"
    );
    let msg = Message::parse(&answer[0]).unwrap();
    let inner = ini.auth_sk().unwrap().open(&answer[0], &msg).unwrap();
    assert_eq!(
        inner,
        [Payload::notify(NotifyType::INVALID_SYNTAX, Vec::new())]
    );
    // The answer is cached like any other: a retransmission gets it again.
    assert_eq!(sent(&h.send(CLIENT, &auth)), answer);
    assert!(ini.handle(&mut h.rng, &answer[0]).is_err());
}

#[test]
fn ike_auth_narrowed_to_255_selectors_is_answered_with_them() {
    let mut h = harness_with_local_subnets(255);
    let (mut ini, init) =
        initiator::Initiator::start(initiator_config(CLIENT), &mut h.rng).unwrap();
    let resp = sent(&h.send(CLIENT, &init));
    let auth = ini.handle(&mut h.rng, &resp[0]).unwrap().unwrap();
    let answer = sent(&h.send(CLIENT, &auth));
    assert!(answer.len() > 1, "4 KiB of selectors are sent as fragments");
    let msg = Message::parse(&answer[0]).unwrap();
    assert!(msg.skf().is_some());
}

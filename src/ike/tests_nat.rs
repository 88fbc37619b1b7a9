//! NAT detection as the responder answers it (`nat.rs`): by default it claims a NAT, so that
//! every client encapsulates ESP in UDP (the only ESP the data plane receives), in the
//! IKE_SA_INIT response and in the answer to a MOBIKE address update; with
//! `force_udp_encap = false` it is honest.

use std::net::SocketAddr;

use super::initiator::Initiator;
use super::nat::nat_hash;
use super::tests::{initiator_config, installed, responder_config, sent, Harness};
use super::*;
use crate::wire::{ExchangeType, Message, NotifyType, Payload, PayloadList};

const CLIENT: &str = "198.51.100.7:500";
const GW500: &str = "192.0.2.1:500";
const GW4500: &str = "192.0.2.1:4500";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The (source, destination) NAT detection hashes among `payloads`.
fn natd(payloads: &[Payload]) -> (Vec<u8>, Vec<u8>) {
    let data = |t| {
        payloads
            .notify(t)
            .expect("NAT detection notify")
            .data
            .clone()
    };
    (
        data(NotifyType::NAT_DETECTION_SOURCE_IP),
        data(NotifyType::NAT_DETECTION_DESTINATION_IP),
    )
}

fn harness(force_udp_encap: bool) -> Harness {
    Harness::new(ResponderConfig {
        force_udp_encap,
        ..responder_config()
    })
}

#[test]
fn ike_sa_init_claims_a_nat_unless_told_otherwise() {
    for force in [true, false] {
        let mut h = harness(force);
        let (_, init) = Initiator::start(initiator_config(CLIENT), &mut h.rng).unwrap();
        let resp = sent(&h.send(CLIENT, &init));
        let msg = Message::parse(&resp[0]).unwrap();
        let (spi_i, spi_r) = (msg.header.spi_i, msg.header.spi_r);
        let (src, dst) = natd(&msg.payloads);
        // What a client computes for the gateway it reached (§2.23).
        let honest = nat_hash(spi_i, spi_r, addr(GW500));
        assert_eq!(src == honest, !force, "force_udp_encap = {force}");
        // The client's own address is reported as we see it either way.
        assert_eq!(dst, nat_hash(spi_i, spi_r, addr(CLIENT)));
    }
}

#[test]
fn a_forced_nat_marks_the_child_sa_encapsulated() {
    // The client stays on port 500 throughout (it believes the NAT we claim only if it
    // floats; the SA is encapsulated because we claimed it).
    // Honest (`false`) and no NAT on the way: ESP would travel raw, and the spec says so.
    for force in [true, false] {
        let mut h = harness(force);
        let (mut ini, init) = Initiator::start(initiator_config(CLIENT), &mut h.rng).unwrap();
        let resp = sent(
            &h.responder
                .handle(h.now, &mut h.rng, &init, addr(GW500), addr(CLIENT)),
        );
        let auth = ini.handle(&mut h.rng, &resp[0]).unwrap().unwrap();
        let actions = h
            .responder
            .handle(h.now, &mut h.rng, &auth, addr(GW500), addr(CLIENT));
        assert_eq!(installed(&actions)[0].udp_encap, force);
    }
}

#[test]
fn mobike_answer_claims_a_nat_unless_told_otherwise() {
    for force in [true, false] {
        let mut h = harness(force);
        // IKE_AUTH announcing MOBIKE (RFC 4555 §4.2.1), built by hand.
        let (mut ini, init) = Initiator::start(initiator_config(CLIENT), &mut h.rng).unwrap();
        let resp = sent(&h.send(CLIENT, &init));
        let spi_r = Message::parse(&resp[0]).unwrap().header.spi_r;
        let auth = ini.handle(&mut h.rng, &resp[0]).unwrap().unwrap();
        let sa = &h.responder.sas[&spi_r];
        let mut inner = sa
            .core
            .sk
            .open(&auth, &Message::parse(&auth).unwrap())
            .unwrap()
            .unwrap();
        inner.push(Payload::notify(NotifyType::MOBIKE_SUPPORTED, Vec::new()));
        let auth = ini
            .protect(ExchangeType::IKE_AUTH, 1, &inner, &mut h.rng)
            .unwrap();
        assert_eq!(installed(&h.send(CLIENT, &auth)).len(), 1);

        // The client moves and says so, asking for NAT detection.
        let moved = addr("203.0.113.50:4500");
        let update = [
            Payload::notify(NotifyType::UPDATE_SA_ADDRESSES, Vec::new()),
            Payload::notify(NotifyType::NAT_DETECTION_SOURCE_IP, vec![1; 20]),
            Payload::notify(NotifyType::NAT_DETECTION_DESTINATION_IP, vec![2; 20]),
        ];
        let req = ini
            .protect(ExchangeType::INFORMATIONAL, 2, &update, &mut h.rng)
            .unwrap();
        let actions = h
            .responder
            .handle(h.now, &mut h.rng, &req, addr(GW4500), moved);
        let answer = sent(&actions);
        assert_eq!(answer.len(), 1, "force_udp_encap = {force}");
        let sk = ini.sk().expect("IKE SA keys");
        let payloads = sk
            .open(&answer[0], &Message::parse(&answer[0]).unwrap())
            .unwrap()
            .unwrap();
        let (src, dst) = natd(&payloads);
        let spi_i = ini.spi_i();
        let honest = nat_hash(spi_i, spi_r, addr(GW4500));
        assert_eq!(src == honest, !force, "force_udp_encap = {force}");
        assert_eq!(dst, nat_hash(spi_i, spi_r, moved));
    }
}

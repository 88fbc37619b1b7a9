//! In-memory lifecycle: DPD, our own Child SA rekey and lifetime end, fragmented IKE_AUTH.

use std::time::Duration;

use super::responder::SaState;
use super::tests::{initiator_config, installed, sent, Harness, CLIENT_REKEY_SPI};
use super::*;
use crate::wire::{
    ExchangeType, Header, Message, Payload, PayloadList, PayloadType, FLAG_INITIATOR,
};

const CLIENT: &str = "198.51.100.7:500";

#[test]
fn silent_peer_is_checked_then_declared_dead() {
    let mut cfg = tests::responder_config();
    cfg.dpd_interval = Some(Duration::from_secs(5));
    let mut h = Harness::new(cfg);
    let (_ini, _, r) = h.connect(initiator_config(CLIENT));
    r.unwrap();
    assert_eq!(h.responder.pool.in_use(), 1);
    h.now += Duration::from_secs(6);
    let probe = sent(&h.responder.tick(h.now, &mut h.rng));
    assert_eq!(probe.len(), 1, "one liveness check");
    let hdr = Header::parse(&probe[0]).unwrap();
    assert_eq!(hdr.exchange, ExchangeType::INFORMATIONAL);
    assert_eq!(
        hdr.flags & FLAG_INITIATOR,
        0,
        "we are the original responder"
    );
    let mut resent = 0;
    let mut deleted = false;
    for _ in 0..40 {
        h.now += Duration::from_secs(1);
        let actions = h.responder.tick(h.now, &mut h.rng);
        resent += sent(&actions).len();
        if actions
            .iter()
            .any(|a| matches!(a, Action::DeleteChild { .. }))
        {
            deleted = true;
            break;
        }
    }
    assert!(deleted, "the dead peer's SAs were not removed");
    assert_eq!(resent, 3, "retransmitted until the give-up");
    assert_eq!(h.responder.counters().dpd_timeouts, 1);
    assert!(h.responder.sas.is_empty());
    assert_eq!(h.responder.pool.in_use(), 0);
}

#[test]
fn data_plane_activity_postpones_dpd() {
    let mut cfg = tests::responder_config();
    cfg.dpd_interval = Some(Duration::from_secs(5));
    let mut h = Harness::new(cfg);
    h.connect(initiator_config(CLIENT)).2.unwrap();
    for i in 1..=4u64 {
        h.now += Duration::from_secs(3);
        h.responder.refresh_activity(h.now, &|_| i * 10);
        assert!(
            sent(&h.responder.tick(h.now, &mut h.rng)).is_empty(),
            "no probe while ESP arrives"
        );
    }
}

#[test]
fn we_rekey_a_child_the_client_did_not_rekey_and_end_it_at_its_lifetime() {
    let mut cfg = tests::responder_config();
    cfg.ipsec_lifetime = Duration::from_secs(100);
    cfg.dpd_interval = None;
    let mut h = Harness::new(cfg);
    let (_ini, actions, r) = h.connect(initiator_config(CLIENT));
    r.unwrap();
    let first = installed(&actions)[0].inbound_spi;
    // Soft lifetime: 90 s less up to 5 s of jitter.
    h.now += Duration::from_secs(84);
    assert!(sent(&h.responder.tick(h.now, &mut h.rng)).is_empty());
    h.now += Duration::from_secs(7);
    let req = sent(&h.responder.tick(h.now, &mut h.rng));
    assert_eq!(req.len(), 1);
    let hdr = Header::parse(&req[0]).unwrap();
    assert_eq!(hdr.exchange, ExchangeType::CREATE_CHILD_SA);
    // The client never answers; at the hard lifetime the Child SA goes.
    let mut gone = false;
    for _ in 0..12 {
        h.now += Duration::from_secs(1);
        let actions = h.responder.tick(h.now, &mut h.rng);
        if actions
            .iter()
            .any(|a| matches!(a, Action::DeleteChild { inbound_spi } if *inbound_spi == first))
        {
            gone = true;
            break;
        }
    }
    assert!(gone, "the Child SA outlived its hard lifetime");
}

#[test]
fn initiator_answers_liveness_checks_and_the_ike_sa_stays() {
    let mut cfg = tests::responder_config();
    cfg.dpd_interval = Some(Duration::from_secs(5));
    let mut h = Harness::new(cfg);
    let (mut ini, _, r) = h.connect(initiator_config(CLIENT));
    r.unwrap();
    let mut answered = 0;
    for _ in 0..40 {
        h.now += Duration::from_secs(1);
        for probe in sent(&h.responder.tick(h.now, &mut h.rng)) {
            // A tampered copy (ICV broken) is refused and does not use up the message ID.
            let mut forged = probe.clone();
            *forged.last_mut().unwrap() ^= 1;
            assert!(ini.answer(&mut h.rng, &forged).is_err());
            let (resp, asked) = ini.answer(&mut h.rng, &probe).expect("answered");
            assert_eq!(asked, initiator::PeerRequest::Liveness);
            let again = ini.answer(&mut h.rng, &probe).expect("retransmission");
            assert_eq!(again, (resp.clone(), initiator::PeerRequest::Retransmit));
            let back = h.send(CLIENT, &resp);
            assert!(sent(&back).is_empty(), "a response is not answered");
            answered += 1;
        }
    }
    assert!(answered >= 3, "only {answered} liveness checks in 40 s");
    assert_eq!(
        h.responder.sas.len(),
        1,
        "an answering client stays connected"
    );
    assert!(ini.is_established());
}

#[test]
fn initiator_refuses_child_rekeys_and_follows_deletes() {
    let mut cfg = tests::responder_config();
    cfg.ipsec_lifetime = Duration::from_secs(100);
    cfg.dpd_interval = None;
    let mut h = Harness::new(cfg);
    let (mut ini, actions, r) = h.connect(initiator_config(CLIENT));
    r.unwrap();
    let child = installed(&actions)[0].clone();
    h.now += Duration::from_secs(91);
    let rekey = sent(&h.responder.tick(h.now, &mut h.rng));
    assert_eq!(
        Header::parse(&rekey[0]).unwrap().exchange,
        ExchangeType::CREATE_CHILD_SA
    );
    let (resp, asked) = ini.answer(&mut h.rng, &rekey[0]).unwrap();
    assert_eq!(asked, initiator::PeerRequest::Refused);
    let back = h.send(CLIENT, &resp);
    assert!(
        installed(&back).is_empty(),
        "no new Child SA after a refusal"
    );
    assert!(ini.child().is_some(), "the current Child SA stays");

    // At the hard lifetime the gateway deletes the Child SA; we answer with our SPI.
    let mut delete = None;
    for _ in 0..12 {
        h.now += Duration::from_secs(1);
        if let Some(d) = sent(&h.responder.tick(h.now, &mut h.rng)).pop() {
            delete = Some(d);
            break;
        }
    }
    let delete = delete.expect("a DELETE for the expired Child SA");
    let (resp, asked) = ini.answer(&mut h.rng, &delete).unwrap();
    assert_eq!(asked, initiator::PeerRequest::DeleteChild);
    assert!(ini.child().is_none() && ini.is_established());
    let msg = Message::parse(&resp).unwrap();
    let sa = h.responder.sas.values().next().expect("IKE SA");
    let inner = sa
        .core
        .sk
        .open(&resp, &msg)
        .expect("our response verifies with the IKE SA's keys")
        .unwrap();
    let spis: Vec<&Vec<u8>> = inner.deletes().flat_map(|d| &d.spis).collect();
    assert_eq!(spis, vec![&child.outbound_spi.to_be_bytes().to_vec()]);
    h.send(CLIENT, &resp);

    // Then the gateway ends the IKE SA (as on shutdown).
    let bye = sent(&h.responder.delete_all(&mut h.rng));
    let (_, asked) = ini.answer(&mut h.rng, &bye[0]).unwrap();
    assert_eq!(asked, initiator::PeerRequest::DeleteIke);
    assert!(!ini.is_established());
    assert!(
        ini.delete_request(&mut h.rng).unwrap().is_none(),
        "nothing left to delete"
    );
}

#[test]
fn fragmented_ike_auth_is_reassembled() {
    let mut h = Harness::new(tests::responder_config());
    let (mut ini, init) =
        initiator::Initiator::start(initiator_config(CLIENT), &mut h.rng).unwrap();
    let resp = sent(&h.send(CLIENT, &init));
    let auth = ini.handle(&mut h.rng, &resp[0]).unwrap().unwrap();
    // Re-seal the IKE_AUTH as small fragments, as Windows does.
    let spi_r = Header::parse(&auth).unwrap().spi_r;
    let inner = {
        let sa = h.responder.sas.get(&spi_r).unwrap();
        sa.core
            .sk
            .open(&auth, &Message::parse(&auth).unwrap())
            .unwrap()
            .unwrap()
    };
    let mut header = Header::parse(&auth).unwrap();
    header.next_payload = PayloadType::SKF;
    let frags = ini
        .sk()
        .unwrap()
        .seal_fragments(header, &inner, 120, &mut h.rng)
        .unwrap();
    assert!(frags.len() >= 3, "{} fragments", frags.len());
    let mut actions = Vec::new();
    // Out of order, with a duplicate.
    let mut order: Vec<usize> = (0..frags.len()).rev().collect();
    order.insert(1, order[0]);
    for i in order {
        actions.extend(h.send(CLIENT, &frags[i]));
    }
    assert_eq!(installed(&actions).len(), 1);
    let answer = sent(&actions);
    assert_eq!(answer.len(), 1);
    assert_eq!(ini.handle(&mut h.rng, &answer[0]).unwrap(), None);
    assert!(ini.child().is_some());
    // A retransmitted first fragment gets the cached answer; later ones are ignored.
    h.now += super::responder::RETRANSMIT_EVERY;
    assert_eq!(sent(&h.send(CLIENT, &frags[0])), answer);
    assert!(sent(&h.send(CLIENT, &frags[1])).is_empty());
}

#[test]
fn forged_fragments_are_dropped() {
    let mut h = Harness::new(tests::responder_config());
    let (mut ini, init) =
        initiator::Initiator::start(initiator_config(CLIENT), &mut h.rng).unwrap();
    let resp = sent(&h.send(CLIENT, &init));
    let auth = ini.handle(&mut h.rng, &resp[0]).unwrap().unwrap();
    let spi_r = Header::parse(&auth).unwrap().spi_r;
    let mut header = Header::parse(&auth).unwrap();
    header.next_payload = PayloadType::SKF;
    let inner = vec![Payload::Nonce(vec![7; 400])];
    let mut frags = ini
        .sk()
        .unwrap()
        .seal_fragments(header, &inner, 120, &mut h.rng)
        .unwrap();
    let last = frags[0].len() - 1;
    frags[0][last] ^= 1;
    for f in &frags {
        assert!(sent(&h.send(CLIENT, f)).is_empty());
    }
    assert!(matches!(
        h.responder.sas.get(&spi_r).unwrap().state,
        SaState::HalfOpen(_)
    ));
}

/// What the control plane does with the responder's data-plane actions.
fn apply(sad: &crate::ipsec::Sad, actions: &[Action]) {
    for a in actions {
        match a {
            Action::InstallChild(spec) => sad.install(spec).unwrap(),
            Action::DeleteChild { inbound_spi } => sad.remove(*inbound_spi),
            _ => {}
        }
    }
}

/// One control-plane tick as the daemon runs it: the SAD's counters name the pairs due for
/// a rekey, the responder's timers run.
fn control_tick(h: &mut Harness, sad: &crate::ipsec::Sad) -> Vec<Action> {
    for spi in sad.snapshot().rekey_due() {
        h.responder.rekey_soon(h.now, spi);
    }
    let actions = h.responder.tick(h.now, &mut h.rng);
    apply(sad, &actions);
    actions
}

#[test]
fn a_child_sa_running_out_of_sequence_numbers_is_rekeyed_even_without_a_lifetime() {
    use crate::ipsec::{EspError, REKEY_AT_SEQ};
    use crate::wire::{write_ipv4_header, IPPROTO_UDP};
    let mut cfg = tests::responder_config();
    // Unlimited lifetimes: no rekey by time would ever come.
    cfg.ipsec_lifetime = Duration::ZERO;
    cfg.ike_lifetime = Duration::ZERO;
    cfg.dpd_interval = None;
    cfg.esp_pfs = None;
    let mut h = Harness::new(cfg);
    let sad = crate::ipsec::Sad::new();
    let (mut ini, actions, r) = h.connect(initiator_config(CLIENT));
    r.unwrap();
    apply(&sad, &actions);
    let first = installed(&actions)[0].clone();
    let vip = first.client_vip;
    let mut packet = vec![0u8; 60];
    let lan = first.local_ts[0].start;
    write_ipv4_header(&mut packet, 60, IPPROTO_UDP, lan, vip).unwrap();
    let mut wire = vec![0u8; 2048];
    let seal = |sad: &crate::ipsec::Sad, wire: &mut [u8], rng: &mut rand::rngs::StdRng| {
        let out = sad.snapshot().outbound(vip).unwrap().clone();
        out.seal(&packet, wire, rng).map(|_| out.spi)
    };

    // One packet below the threshold: nothing to do.
    let old_out = sad.snapshot().outbound(vip).unwrap().clone();
    old_out.set_next_seq_for_test(REKEY_AT_SEQ as u32 - 1);
    seal(&sad, &mut wire, &mut h.rng).unwrap();
    h.now += Duration::from_secs(1);
    assert!(sent(&control_tick(&mut h, &sad)).is_empty());

    // At the threshold: the gateway rekeys, once, though every tick sees the SA due.
    seal(&sad, &mut wire, &mut h.rng).unwrap();
    h.now += Duration::from_secs(1);
    let req = sent(&control_tick(&mut h, &sad));
    assert_eq!(req.len(), 1, "one CREATE_CHILD_SA");
    assert_eq!(
        Header::parse(&req[0]).unwrap().exchange,
        ExchangeType::CREATE_CHILD_SA
    );
    // This client refuses; the gateway asks again only after SEQ_REKEY_RETRY, not every tick.
    let (resp, asked) = ini.answer(&mut h.rng, &req[0]).unwrap();
    assert_eq!(asked, initiator::PeerRequest::Refused);
    assert!(installed(&h.send(CLIENT, &resp)).is_empty());
    for _ in 0..10 {
        h.now += Duration::from_secs(1);
        assert!(
            sent(&control_tick(&mut h, &sad)).is_empty(),
            "asked again too soon"
        );
    }
    h.now += super::requests::SEQ_REKEY_RETRY;
    let req = sent(&control_tick(&mut h, &sad));
    assert_eq!(req.len(), 1, "asked again after the retry interval");

    // Accepted this time: the client answers with its SPI and nonce (no PFS configured).
    let (rekeyed, actions) = h.accept_child_rekey(CLIENT, &ini, &req[0]);
    assert_eq!(
        rekeyed,
        first.inbound_spi.to_be_bytes().to_vec(),
        "the rekey names the exhausted SA"
    );
    apply(&sad, &actions);
    let new = installed(&actions);
    assert_eq!(new.len(), 1, "the new Child SA is installed");
    assert_eq!(new[0].outbound_spi, CLIENT_REKEY_SPI);
    assert_eq!(
        h.responder.counters().child_rekeys,
        1,
        "the refused try is no rekey"
    );
    let delete = sent(&actions);
    assert_eq!(delete.len(), 1, "then the old Child SA's DELETE");
    assert_eq!(
        Header::parse(&delete[0]).unwrap().exchange,
        ExchangeType::INFORMATIONAL
    );

    // Traffic goes on through the new SA from sequence number 1; the old one is no longer
    // due (it was rekeyed) and would refuse to seal at the end of its numbers, never wrap.
    assert_eq!(seal(&sad, &mut wire, &mut h.rng), Ok(CLIENT_REKEY_SPI));
    assert_eq!(&wire[4..8], &1u32.to_be_bytes());
    // Later ticks: the old SA is no longer due (rekeyed), so no further CREATE_CHILD_SA; the
    // unanswered DELETE is retransmitted.
    for _ in 0..3 {
        h.now += Duration::from_secs(1);
        for b in sent(&control_tick(&mut h, &sad)) {
            assert_eq!(
                Header::parse(&b).unwrap().exchange,
                ExchangeType::INFORMATIONAL,
                "no further rekey"
            );
        }
    }
    old_out.set_next_seq_for_test(u32::MAX);
    assert!(old_out.seal(&packet, &mut wire, &mut h.rng).is_ok());
    assert_eq!(
        old_out.seal(&packet, &mut wire, &mut h.rng),
        Err(EspError::SeqExhausted)
    );
}

#[test]
fn one_client_is_deleted_and_the_other_stays() {
    let mut h = Harness::new(tests::responder_config());
    let (_one, _, r) = h.connect(initiator_config(CLIENT));
    r.unwrap();
    let mut cfg = initiator_config("198.51.100.8:500");
    cfg.id = Identity::Fqdn("client2.example".into());
    let (mut two, _, r) = h.connect(cfg);
    r.unwrap();
    h.now += Duration::from_secs(3);
    h.responder.refresh_activity(h.now, &|_| 5);
    let sas = h.responder.sas(h.now);
    assert_eq!(sas.len(), 2);
    let sa2 = sas
        .iter()
        .find(|s| s.identity == "client2.example")
        .unwrap();
    assert!(sa2.established && !sa2.rekeyed);
    assert_eq!(sa2.remote, "198.51.100.8:501".parse().unwrap());
    assert_eq!(sa2.suite, h.responder.config().ike);
    assert!(sa2.nat.faked, "force_udp_encap claims a NAT");
    assert_eq!(sa2.age_secs, 3);
    let c = &sa2.children[0];
    assert_eq!(c.suite, h.responder.config().esp);
    assert_eq!((c.installed_secs, c.last_inbound_secs), (3, Some(0)));
    assert!(c.expires_in_secs.is_some() && c.rekey_in_secs < c.expires_in_secs);

    let actions = h.responder.delete(&[sa2.spi_r], &mut h.rng);
    let bye = sent(&actions);
    assert_eq!(bye.len(), 1, "one DELETE, to that client only");
    let (_, asked) = two.answer(&mut h.rng, &bye[0]).unwrap();
    assert_eq!(asked, initiator::PeerRequest::DeleteIke);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::DeleteChild { inbound_spi } if *inbound_spi == c.spi_in)));
    let left = h.responder.sas(h.now);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].identity, "client1.example");
    assert_eq!(h.responder.online_clients(), 1);
    assert_eq!(h.responder.pool().in_use(), 1);
    assert!(
        h.responder.delete(&[sa2.spi_r], &mut h.rng).is_empty(),
        "gone already"
    );
}

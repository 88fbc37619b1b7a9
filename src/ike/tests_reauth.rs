//! In-memory re-authentication (`reauth`): the deadline for the next IKE_AUTH survives IKE
//! SA rekeys, AUTH_LIFETIME announces it, the IKE SA is deleted when it passes, and a PSK
//! change gives exactly the clients of the old PSK one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::initiator::{Initiator, InitiatorConfig};
use super::reauth::announced;
use super::responder::{Established, SaState};
use super::tests::{initiator_config, opened, sent, Harness};
use super::*;
use crate::crypto::DhPrivate;
use crate::wire::{ExchangeType, Header, KePayload, NotifyType, Payload, PayloadList};

const CLIENT: &str = "198.51.100.7:500";
const OTHER: &str = "198.51.100.8:500";
const NEW_PSK: &[u8] = b"the-new-psk-after-the-change";

/// The fixture responder with this IKE lifetime and PSK-change bound, no DPD and no Child SA
/// lifetime (so that only the IKE SA's timers act).
fn config(ike_lifetime: u64, psk_change_reauth: u64) -> ResponderConfig {
    ResponderConfig {
        ike_lifetime: Duration::from_secs(ike_lifetime),
        ipsec_lifetime: Duration::ZERO,
        psk_change_reauth: Duration::from_secs(psk_change_reauth),
        dpd_interval: None,
        ..tests::responder_config()
    }
}

/// The seconds of the AUTH_LIFETIME notify among `payloads`, if there is one.
fn auth_lifetime(payloads: &[Payload]) -> Option<u32> {
    let n = payloads.notifies_of(NotifyType::AUTH_LIFETIME).next()?;
    Some(u32::from_be_bytes(n.data.as_slice().try_into().unwrap()))
}

/// Connects the fixture client from `from` with `psk`; returns it and the opened IKE_AUTH
/// response.
fn connect(h: &mut Harness, from: &str, psk: &[u8]) -> (Initiator, Vec<Payload>) {
    let cfg = InitiatorConfig {
        psk: crate::secret::SecretBytes::from_slice(psk),
        ..initiator_config(from)
    };
    let (ini, actions, r) = h.connect(cfg);
    r.unwrap();
    let auth = sent(&actions)
        .into_iter()
        .find(|b| Header::parse(b).unwrap().exchange == ExchangeType::IKE_AUTH)
        .expect("an IKE_AUTH response");
    let payloads = opened(&ini, &auth);
    (ini, payloads)
}

/// The established IKE SA whose SPIi is `spi_i` and that was not rekeyed.
fn current(h: &Harness, spi_i: u64) -> Option<&Established> {
    h.responder.sas.values().find_map(|sa| match &sa.state {
        SaState::Established(e) if sa.core.spi_i == spi_i && !e.rekeyed => Some(e),
        _ => None,
    })
}

/// The client rekeys its IKE SA (§1.3.2) with message ID `mid`; returns the new SPIi.
fn rekey_ike(h: &mut Harness, ini: &Initiator, mid: u32, new_spi_i: u64) -> u64 {
    let ike = h.responder.config().ike;
    let dh = DhPrivate::generate(ike.dh, &mut h.rng);
    let payloads = vec![
        Payload::Sa(vec![ike.proposal(1, new_spi_i.to_be_bytes().to_vec())]),
        Payload::Nonce(vec![8; 32]),
        Payload::Ke(KePayload {
            group: ike.dh.id(),
            data: dh.public_value().to_vec(),
        }),
    ];
    let req = ini
        .protect(ExchangeType::CREATE_CHILD_SA, mid, &payloads, &mut h.rng)
        .unwrap();
    let answer = opened(ini, &sent(&h.send(CLIENT, &req))[0]);
    assert!(answer.sa().is_some(), "IKE rekey accepted: {answer:?}");
    new_spi_i
}

fn deadline(h: &Harness, spi_i: u64) -> Option<Instant> {
    current(h, spi_i).expect("the IKE SA").auth.reauth_by
}

#[test]
fn ike_auth_announces_the_time_left_less_the_margin() {
    for (lifetime, want) in [(86400, Some(86340)), (1000, Some(940)), (20, Some(18))] {
        let mut h = Harness::new(config(lifetime, 3600));
        let (_, payloads) = connect(&mut h, CLIENT, fixtures::PSK);
        assert_eq!(auth_lifetime(&payloads), want, "ike_lifetime {lifetime}");
        h.now += Duration::from_secs(5);
        assert_eq!(
            h.responder.sas(h.now)[0].reauth_in_secs,
            Some(lifetime - 5),
            "status shows the time left"
        );
    }
    let mut h = Harness::new(config(0, 3600));
    let (ini, payloads) = connect(&mut h, CLIENT, fixtures::PSK);
    assert_eq!(
        auth_lifetime(&payloads),
        None,
        "no deadline, no AUTH_LIFETIME"
    );
    assert_eq!(deadline(&h, ini.spi_i()), None);
    assert_eq!(h.responder.sas(h.now)[0].reauth_in_secs, None);
    assert_eq!(
        announced(Duration::from_millis(300)),
        Duration::from_secs(1)
    );
}

#[test]
fn rekeying_the_ike_sa_does_not_extend_the_deadline_which_deletes_it() {
    let mut h = Harness::new(config(100, 3600));
    let t0 = h.now;
    let (ini, _) = connect(&mut h, CLIENT, fixtures::PSK);
    assert_eq!(
        deadline(&h, ini.spi_i()),
        Some(t0 + Duration::from_secs(100))
    );
    h.now += Duration::from_secs(60);
    let new = rekey_ike(&mut h, &ini, 2, 0x5151_5151_5151_5151);
    assert_eq!(
        (
            h.responder.counters().ike_rekeys,
            h.responder.counters().established
        ),
        (1, 1),
        "a rekey, not a login"
    );
    let e = current(&h, new).expect("the new IKE SA");
    assert_eq!(
        e.auth.at, t0,
        "authenticated at the IKE_AUTH, not at the rekey"
    );
    assert_eq!(
        e.auth.reauth_by,
        Some(t0 + Duration::from_secs(100)),
        "the rekey carried the deadline of the IKE_AUTH"
    );
    assert_eq!(
        e.expires,
        Some(h.now + Duration::from_secs(100)),
        "the lifetime between rekeys starts again"
    );
    h.now = t0 + Duration::from_secs(99);
    assert!(h.responder.tick(h.now, &mut h.rng).is_empty());
    assert!(current(&h, new).is_some(), "not before the deadline");
    h.now = t0 + Duration::from_secs(100);
    let actions = h.responder.tick(h.now, &mut h.rng);
    let deletes: Vec<Header> = sent(&actions)
        .iter()
        .map(|b| Header::parse(b).unwrap())
        .collect();
    assert!(
        deletes
            .iter()
            .any(|d| d.spi_i == new && d.exchange == ExchangeType::INFORMATIONAL),
        "INFORMATIONAL DELETE on the new IKE SA: {deletes:?}"
    );
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::DeleteChild { .. })));
    assert!(h.responder.sas.is_empty(), "both IKE SAs are gone");
    assert_eq!(h.responder.pool.in_use(), 0);
}

#[test]
fn a_psk_change_gives_only_the_clients_of_the_old_psk_a_deadline() {
    let mut h = Harness::new(config(0, 600));
    let t0 = h.now;
    let (old, _) = connect(&mut h, CLIENT, fixtures::PSK);
    assert_eq!(deadline(&h, old.spi_i()), None);

    // The same PSK again (another setting changed) asks nothing of anyone.
    let same = ResponderConfig {
        dns: vec![],
        ..config(0, 600)
    };
    let actions = h
        .responder
        .reconfigure(h.now, &mut h.rng, Arc::new(same), false);
    assert!(actions.is_empty());
    assert_eq!(deadline(&h, old.spi_i()), None);

    h.now += Duration::from_secs(10);
    let changed = ResponderConfig {
        psk: crate::secret::SecretBytes::from_slice(NEW_PSK),
        ..config(0, 600)
    };
    let actions = h
        .responder
        .reconfigure(h.now, &mut h.rng, Arc::new(changed), false);
    let told = sent(&actions);
    assert_eq!(told.len(), 1, "one AUTH_LIFETIME request");
    assert_eq!(
        Header::parse(&told[0]).unwrap().exchange,
        ExchangeType::INFORMATIONAL
    );
    assert_eq!(auth_lifetime(&opened(&old, &told[0])), Some(540));
    let by = t0 + Duration::from_secs(610);
    assert_eq!(deadline(&h, old.spi_i()), Some(by));

    // A client with the new PSK has no deadline and is told none; the old PSK is refused.
    let (new, payloads) = connect(&mut h, OTHER, NEW_PSK);
    assert_eq!(auth_lifetime(&payloads), None);
    assert_eq!(deadline(&h, new.spi_i()), None);
    let (_, _, refused) = h.connect(initiator_config("198.51.100.9:500"));
    assert!(refused.is_err(), "the old PSK no longer authenticates");

    h.now = by - Duration::from_secs(1);
    h.responder.tick(h.now, &mut h.rng);
    assert!(current(&h, old.spi_i()).is_some(), "not before the bound");
    h.now = by;
    h.responder.tick(h.now, &mut h.rng);
    assert!(
        current(&h, old.spi_i()).is_none(),
        "the old PSK's IKE SA is gone"
    );
    assert!(current(&h, new.spi_i()).is_some(), "the new PSK's stays");
    assert_eq!(h.responder.online_clients(), 1);
}

#[test]
fn a_psk_change_keeps_an_earlier_deadline_and_reaches_rekeyed_sas() {
    let mut h = Harness::new(config(100, 600));
    let t0 = h.now;
    let (ini, _) = connect(&mut h, CLIENT, fixtures::PSK);
    let new = rekey_ike(&mut h, &ini, 2, 0x5252_5252_5252_5252);
    let changed = ResponderConfig {
        psk: crate::secret::SecretBytes::from_slice(NEW_PSK),
        ..config(100, 600)
    };
    h.responder
        .reconfigure(h.now, &mut h.rng, Arc::new(changed), false);
    assert_eq!(deadline(&h, new), Some(t0 + Duration::from_secs(100)));

    // With a bound shorter than the time left, the bound wins.
    let changed_again = ResponderConfig {
        psk_change_reauth: Duration::from_secs(30),
        ..config(100, 600)
    };
    h.now += Duration::from_secs(5);
    h.responder
        .reconfigure(h.now, &mut h.rng, Arc::new(changed_again), false);
    assert_eq!(deadline(&h, new), Some(h.now + Duration::from_secs(30)));
}

#[test]
fn effect_immediately_deletes_every_ike_sa_at_once() {
    let mut h = Harness::new(config(0, 600));
    connect(&mut h, CLIENT, fixtures::PSK);
    let changed = ResponderConfig {
        psk: crate::secret::SecretBytes::from_slice(NEW_PSK),
        ..config(0, 600)
    };
    let actions = h
        .responder
        .reconfigure(h.now, &mut h.rng, Arc::new(changed), true);
    assert_eq!(sent(&actions).len(), 1, "a DELETE to the client");
    assert!(h.responder.sas.is_empty());
}

//! In-memory handshakes that fail, and the log lines that explain them (captured with
//! `tracing-test`): a proposal mismatch names the client's proposals and ours, once per
//! source and reason per summary interval; each authentication failure has its reason; the
//! PSK never appears in any line.

use tracing_test::traced_test;

use super::budget::SUMMARY_EVERY;
use super::initiator::Initiator;
use super::tests::{
    initiator_config, installed, notifies, opened, responder_config, sent, Harness,
};
use super::tests_protect::{half_open, CLIENT};
use super::*;
use crate::crypto::EncrAlg;
use crate::secret::SecretBytes;
use crate::wire::{AuthPayload, ExchangeType, NotifyType, Payload};

/// How many captured lines of this test contain `needle` (a macro: `#[traced_test]` defines
/// `logs_assert` inside each test).
macro_rules! lines_with {
    ($needle:expr) => {{
        let n = std::cell::Cell::new(0);
        logs_assert(|lines: &[&str]| {
            n.set(lines.iter().filter(|l| l.contains($needle)).count());
            Ok(())
        });
        n.get()
    }};
}

/// Sends one IKE_SA_INIT offering AES-256 (the responder wants AES-128) from `client`;
/// asserts the NO_PROPOSAL_CHOSEN answer.
fn offer_aes256(h: &mut Harness, client: &str) {
    let mut cfg = initiator_config(client);
    cfg.ike.encr = EncrAlg::AesCbc256;
    let (_, init) = Initiator::start(cfg, &mut h.rng).unwrap();
    let resp = sent(&h.send(client, &init));
    assert_eq!(notifies(&resp[0]), vec![NotifyType::NO_PROPOSAL_CHOSEN]);
}

#[traced_test]
#[test]
fn ike_proposal_mismatch_names_both_sides_once_per_source_and_interval() {
    let mut h = Harness::new(responder_config());
    offer_aes256(&mut h, CLIENT);
    assert!(logs_contain(
        "no acceptable IKE proposal in IKE_SA_INIT: the client offered aes256-sha1-modp1024; \
         this server accepts aes128-sha1-modp1024"
    ));
    // Again from the same source: counted, not logged.
    offer_aes256(&mut h, CLIENT);
    offer_aes256(&mut h, CLIENT);
    assert_eq!(lines_with!("no acceptable IKE proposal"), 1);
    // Another source gets its own line.
    offer_aes256(&mut h, "198.51.100.8:500");
    assert_eq!(lines_with!("no acceptable IKE proposal"), 2);
    assert_eq!(h.responder.refusals.count(Refusal::NoProposal), 4);
    // The summary counts them; the next interval explains again.
    h.now += SUMMARY_EVERY;
    h.responder.tick(h.now, &mut h.rng);
    assert!(logs_contain("refused IKE messages: no proposal chosen: 4"));
    offer_aes256(&mut h, CLIENT);
    assert_eq!(lines_with!("no acceptable IKE proposal"), 3);
}

#[traced_test]
#[test]
fn a_cookie_challenge_does_not_hide_the_mismatch_after_it() {
    let mut cfg = responder_config();
    cfg.limits.cookie_threshold = 1;
    cfg.limits.cookie_threshold_ip = 1;
    let mut h = Harness::new(cfg);
    // One half-open SA makes every further IKE_SA_INIT need a cookie.
    let (_, init) = Initiator::start(initiator_config("203.0.113.1:500"), &mut h.rng).unwrap();
    h.send("203.0.113.1:500", &init);
    let mut icfg = initiator_config(CLIENT);
    icfg.ike.encr = EncrAlg::AesCbc256;
    let (mut ini, init) = Initiator::start(icfg, &mut h.rng).unwrap();
    let cookie = sent(&h.send(CLIENT, &init));
    assert_eq!(notifies(&cookie[0]), vec![NotifyType::COOKIE]);
    let again = ini.handle(&mut h.rng, &cookie[0]).unwrap().unwrap();
    let resp = sent(&h.send(CLIENT, &again));
    assert_eq!(notifies(&resp[0]), vec![NotifyType::NO_PROPOSAL_CHOSEN]);
    assert!(logs_contain("asked for a cookie"));
    assert!(logs_contain("the client offered aes256-sha1-modp1024"));
}

#[traced_test]
#[test]
fn child_proposal_mismatch_in_ike_auth_names_both_sides() {
    let mut h = Harness::new(responder_config());
    let mut cfg = initiator_config(CLIENT);
    cfg.esp.encr = EncrAlg::AesCbc256;
    let (_, actions, _) = h.connect(cfg);
    // The IKE SA stands without a Child SA (RFC 7296 §1.2).
    assert!(installed(&actions).is_empty());
    assert_eq!(h.responder.sas.len(), 1);
    assert!(logs_contain(
        "no acceptable ESP proposal in IKE_AUTH: the client offered aes256-sha1-noesn; \
         this server accepts aes128-sha1-noesn"
    ));
    assert_eq!(h.responder.refusals.count(Refusal::ChildNoProposal), 1);
}

/// The reason logged for a failed IKE_AUTH, and the notify the client got.
fn failed_auth(h: &mut Harness, cfg: initiator::InitiatorConfig) {
    let (_, _, result) = h.connect(cfg);
    assert_eq!(result, Err(IkeError::AuthenticationFailed));
}

#[traced_test]
#[test]
fn identity_mismatch_names_the_expected_and_the_received_identity() {
    let mut cfg = responder_config();
    cfg.remote_id = Some(Identity::Fqdn("someone.else".into()));
    let mut h = Harness::new(cfg);
    failed_auth(&mut h, initiator_config(CLIENT));
    assert!(logs_contain(
        "identity mismatch: the client sent IDi FQDN client1.example, \
         remote_id expects FQDN someone.else"
    ));
    assert_eq!(lines_with!("PSK mismatch"), 0);
    assert_eq!(h.responder.refusals.count(Refusal::AuthFailed), 1);
}

#[traced_test]
#[test]
fn psk_mismatch_is_named_and_no_line_shows_either_key() {
    let mut h = Harness::new(responder_config());
    let mut cfg = initiator_config(CLIENT);
    let guess = b"a-wrong-guess-42";
    cfg.psk = SecretBytes::from_slice(guess);
    failed_auth(&mut h, cfg);
    assert!(logs_contain(
        "IKE_AUTH of identity client1.example failed: PSK mismatch"
    ));
    assert_eq!(lines_with!("identity mismatch"), 0);
    let secrets = [fixtures::PSK, guess.as_slice()].map(|s| {
        (
            String::from_utf8(s.to_vec()).unwrap(),
            s.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        )
    });
    logs_assert(|lines: &[&str]| {
        if lines.is_empty() {
            return Err("nothing captured".into());
        }
        for l in lines {
            for (text, hex) in &secrets {
                if l.contains(text.as_str()) || l.contains(hex.as_str()) {
                    return Err(format!("a key in the log: {l}"));
                }
            }
        }
        Ok(())
    });
}

/// Sends the fixture client's IKE_AUTH with its AUTH payload replaced (or removed); returns
/// the notifies of the answer.
fn ike_auth_with(auth: Option<AuthPayload>) -> (Harness, Vec<NotifyType>) {
    let mut h = Harness::new(responder_config());
    let (ini, mut inner) = half_open(&mut h);
    inner.retain(|p| !matches!(p, Payload::Auth(_)));
    inner.extend(auth.map(Payload::Auth));
    let req = ini
        .protect(ExchangeType::IKE_AUTH, 1, &inner, &mut h.rng)
        .unwrap();
    let resp = sent(&h.send(CLIENT, &req));
    let notified = opened(&ini, &resp[0])
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) => Some(n.notify_type),
            _ => None,
        })
        .collect();
    (h, notified)
}

#[traced_test]
#[test]
fn certificate_and_eap_clients_are_told_apart() {
    // An RSA signature (a certificate client), then an ECDSA one, then no AUTH at all (EAP).
    let cases = [
        (
            Some(1),
            "the client uses an RSA signature (certificate, AUTH method 1)",
        ),
        (
            Some(9),
            "the client uses an ECDSA signature (certificate, AUTH method 9)",
        ),
        (
            None,
            "the client uses EAP (IKE_AUTH without an AUTH payload)",
        ),
    ];
    for (method, reason) in cases {
        let auth = method.map(|method| AuthPayload {
            method,
            data: vec![0; 64],
        });
        let (h, notified) = ike_auth_with(auth);
        assert_eq!(
            notified,
            vec![NotifyType::AUTHENTICATION_FAILED],
            "{reason}"
        );
        assert!(logs_contain(reason), "{reason}");
        assert!(h.responder.sas.is_empty());
        assert_eq!(h.responder.refusals.count(Refusal::AuthFailed), 1);
    }
    assert_eq!(
        lines_with!("this server accepts only a pre-shared key (AUTH method 2"),
        3
    );
    assert_eq!(lines_with!("PSK mismatch"), 0);
}

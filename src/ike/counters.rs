//! What the responder did since it started, counted for the metrics scrape: handshake
//! outcomes, rekeys, peers that stopped answering. Plain integers, because one thread owns
//! the [`Responder`](super::Responder); the daemon reads a copy ([`Responder::counters`]
//! (super::Responder::counters)) through the IKE thread's control messages, like `status`.
//! The refusals by reason (`budget::Refusals`) are counted apart; these are the outcomes an
//! operator asks about ("how many logins failed?"), one per IKE_SA_INIT or IKE_AUTH.

/// Counters since the responder started. Every field only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// IKE SAs established by IKE_AUTH (IKE rekeys not included).
    pub established: u64,
    /// IKE_AUTH answered AUTHENTICATION_FAILED (wrong PSK or identity, back-off, method).
    pub auth_failed: u64,
    /// IKE_SA_INIT answered NO_PROPOSAL_CHOSEN.
    pub no_proposal: u64,
    /// IKE_SA_INIT answered with a COOKIE challenge (RFC 7296 §2.6).
    pub cookie_sent: u64,
    /// IKE_SA_INIT dropped without an answer: half-open and connection limits, a source in
    /// authentication back-off, an invalid KE value.
    pub dropped: u64,
    /// IKE_SA_INIT or IKE_AUTH refused for another reason (syntax, INVALID_KE_PAYLOAD, TS).
    pub failed: u64,
    /// Half-open IKE SAs that got no IKE_AUTH within `half_open_timeout`.
    pub timed_out: u64,
    /// IKE SAs rekeyed (CREATE_CHILD_SA, always by the client).
    pub ike_rekeys: u64,
    /// Child SAs rekeyed, by either end.
    pub child_rekeys: u64,
    /// IKE SAs deleted because the peer answered none of our retransmitted requests (DPD,
    /// rekey, DELETE).
    pub dpd_timeouts: u64,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Counters;
    use crate::crypto::EncrAlg;
    use crate::ike::initiator::Initiator;
    use crate::ike::tests::{initiator_config, responder_config, Harness};
    use crate::secret::SecretBytes;

    #[test]
    fn each_handshake_outcome_is_counted_once_under_its_name() {
        let mut h = Harness::new(responder_config());
        h.connect(initiator_config("198.51.100.7:500"))
            .2
            .expect("a good client");
        let mut wrong_psk = initiator_config("198.51.100.8:500");
        wrong_psk.psk = SecretBytes::from_slice(b"not-the-psk");
        assert!(h.connect(wrong_psk).2.is_err());
        let mut aes256 = initiator_config("198.51.100.9:500");
        aes256.ike.encr = EncrAlg::AesCbc256;
        let (_, init) = Initiator::start(aes256, &mut h.rng).unwrap();
        h.send("198.51.100.9:500", &init);
        // A half-open SA that never authenticates.
        let (_, init) =
            Initiator::start(initiator_config("198.51.100.10:500"), &mut h.rng).unwrap();
        h.send("198.51.100.10:500", &init);
        h.now += Duration::from_secs(31);
        h.responder.tick(h.now, &mut h.rng);
        assert_eq!(
            h.responder.counters(),
            Counters {
                established: 1,
                auth_failed: 1,
                no_proposal: 1,
                timed_out: 1,
                ..Counters::default()
            }
        );

        let mut cfg = responder_config();
        cfg.limits.cookie_threshold = 0;
        let mut h = Harness::new(cfg);
        let (_, init) = Initiator::start(initiator_config("198.51.100.7:500"), &mut h.rng).unwrap();
        h.send("198.51.100.7:500", &init);
        assert_eq!(
            h.responder.counters(),
            Counters {
                cookie_sent: 1,
                ..Counters::default()
            }
        );
    }
}

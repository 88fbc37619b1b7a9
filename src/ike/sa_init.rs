//! IKE_SA_INIT (RFC 7296 §1.2): proposal, KE, nonces, NAT detection (§2.23), cookies (§2.6),
//! INVALID_KE_PAYLOAD (§1.3). Answers are unprotected; errors create no state.
//!
//! Invariants: within the DoS budget ([`super::Limits`]) — hard limits on half-open SAs (in
//! total, per source address), on established IKE SAs and for sources in authentication
//! back-off drop the request before it is parsed; cookies engage before those limits are
//! reached and when the DH work of the last second reached its budget; a KE value is
//! checked (RFC 6989) before any DH work.

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::CryptoRngCore;
use tracing::debug;

use crate::crypto::keys::SkeyseedFrom;
use crate::crypto::{self, DhPrivate};
use crate::wire::{
    ExchangeType, Header, KePayload, Message, NotifyType, Payload, PayloadList, FLAG_RESPONSE,
    IKEV2_VERSION,
};

use super::budget::Refusal;
use super::error::encode_response;
use super::nat::{nat_detection, nat_hash, Nat};
use super::notation::no_ike_proposal;
use super::proposal::offers_group;
use super::responder::{HalfOpen, IkeSa, Received, Responder, SaCore, SaState, Window};
use super::sk::SkCrypto;
use super::{check_nonce, our_nonce, Action, IkeError};

impl Responder {
    pub(crate) fn ike_sa_init(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        rx: Received<'_>,
    ) -> Vec<Action> {
        let Received {
            bytes,
            header,
            local,
            remote,
        } = rx;
        if header.spi_r != 0 || header.message_id != 0 || header.spi_i == 0 {
            return Vec::new();
        }
        // §2.1: a retransmitted IKE_SA_INIT gets the same answer, not a second SA.
        if let Some(spi_r) = self.half_open.get(&(header.spi_i, remote)) {
            return match self.sas.get(spi_r) {
                Some(IkeSa {
                    state: SaState::HalfOpen(h),
                    ..
                }) if h.init_request == bytes => {
                    debug!(%remote, "retransmitting IKE_SA_INIT response");
                    vec![Action::Send {
                        local,
                        remote,
                        bytes: h.init_response.clone(),
                    }]
                }
                _ => Vec::new(),
            };
        }
        match self.init_new_sa(now, rng, rx) {
            Ok(actions) => actions,
            Err(InitReject::Drop(why, detail)) => {
                self.counters.dropped += 1;
                self.refusals.record(now, remote.ip(), why, || detail);
                Vec::new()
            }
            Err(InitReject::NoProposal) => {
                self.counters.no_proposal += 1;
                self.init_error(header, local, remote, &IkeError::NoProposalChosen)
            }
            Err(InitReject::Error(e)) => {
                if e.notify() == Some(NotifyType::NO_PROPOSAL_CHOSEN) {
                    self.counters.no_proposal += 1;
                } else {
                    self.counters.failed += 1;
                }
                self.refusals
                    .record(now, remote.ip(), Refusal::InitRefused, || e.to_string());
                self.init_error(header, local, remote, &e)
            }
            Err(InitReject::Cookie(cookie)) => {
                self.counters.cookie_sent += 1;
                self.refusals
                    .record(now, remote.ip(), Refusal::CookieChallenge, || {
                        "asked for a cookie".into()
                    });
                self.init_notify(header, local, remote, NotifyType::COOKIE, cookie)
            }
        }
    }

    /// A new half-open IKE SA within the DoS budget: hard limits first (dropped), then the
    /// cookie (a stateless challenge), then the offer; no DH work before the KE value passed
    /// its checks.
    fn init_new_sa(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        rx: Received<'_>,
    ) -> Result<Vec<Action>, InitReject> {
        let Received {
            bytes,
            header,
            local,
            remote,
        } = rx;
        let limits = &self.cfg.limits;
        if self.half_open_count() >= limits.half_open_max {
            return Err(InitReject::drop(
                Refusal::HalfOpenFull,
                "half-open IKE SAs at the limit",
            ));
        }
        if self.half_open_from(remote.ip()) >= limits.block_threshold_ip {
            return Err(InitReject::drop(
                Refusal::BlockedSource,
                "half-open IKE SAs from this address at the limit",
            ));
        }
        if self.established_count() >= self.cfg.max_connections {
            return Err(InitReject::drop(
                Refusal::ConnectionsFull,
                "max_connections IKE SAs established",
            ));
        }
        if self.auth_backoff.source_blocked(now, remote.ip()) {
            return Err(InitReject::drop(
                Refusal::AuthBackoff,
                "failed authentications from this address",
            ));
        }
        let msg = Message::parse(bytes).map_err(IkeError::Wire)?;
        let payloads = &msg.payloads;
        let (Some(proposals), Some(ke), Some(ni)) =
            (payloads.sa(), payloads.ke(), payloads.nonce())
        else {
            return Err(IkeError::InvalidSyntax("IKE_SA_INIT needs SA, KE and Nonce").into());
        };
        let suite = self.cfg.ike;
        check_nonce(suite.prf, ni)?;
        // §2.6: cookies when too many SAs are half open, overall or from this address, or
        // when the DH work of the last second reached its budget.
        let limits = &self.cfg.limits;
        if self.half_open_count() >= limits.cookie_threshold
            || self.half_open_from(remote.ip()) >= limits.cookie_threshold_ip
            || self.dh_rate.per_second(now) >= limits.dh_per_second_cookie
        {
            // §2.6: the cookie is returned as the first payload.
            let offered = payloads.leading_notify(NotifyType::COOKIE).map(|n| &n.data);
            if !offered.is_some_and(|c| self.cookies.verify(c, ni, remote.ip(), header.spi_i)) {
                return Err(InitReject::Cookie(self.cookies.make(
                    ni,
                    remote.ip(),
                    header.spi_i,
                )));
            }
        }
        let Ok(chosen) = suite.choose(proposals) else {
            self.refusals
                .record(now, remote.ip(), Refusal::NoProposal, || {
                    no_ike_proposal("IKE_SA_INIT", proposals, &suite)
                });
            return Err(InitReject::NoProposal);
        };
        if ke.group != suite.dh.id() {
            // The chosen proposal offers our group (else choose() failed), so ask for it.
            debug_assert!(offers_group(proposals, suite.dh));
            return Err(IkeError::InvalidKe {
                got: ke.group,
                want: suite.dh.id(),
            }
            .into());
        }
        // RFC 6989: length and range before any DH work; an invalid value gets no answer.
        if let Err(e) = suite.dh.check_public(&ke.data) {
            return Err(InitReject::Drop(Refusal::InvalidKe, e.to_string()));
        }
        self.dh_rate.add(now);
        let dh = DhPrivate::generate(suite.dh, rng);
        let g_ir = dh
            .shared_secret(&ke.data)
            .map_err(|e| InitReject::Drop(Refusal::InvalidKe, e.to_string()))?;
        let spi_r = self.new_ike_spi(rng.as_rngcore());
        let nr = our_nonce(rng);
        let keys = crypto::keys::derive_ike_sa(
            suite.prf,
            suite.encr,
            suite.integ,
            SkeyseedFrom::Init {
                g_ir: g_ir.expose(),
            },
            (ni, &nr),
            (header.spi_i, spi_r),
        );
        let sk = SkCrypto::responder(suite.encr, suite.integ, &keys)?;

        // §2.23: the initiator hashed with SPIr = 0.
        let hashes =
            |t: NotifyType| -> Vec<&Vec<u8>> { payloads.notifies_of(t).map(|n| &n.data).collect() };
        let (nat_src, nat_dst) = (
            hashes(NotifyType::NAT_DETECTION_SOURCE_IP),
            hashes(NotifyType::NAT_DETECTION_DESTINATION_IP),
        );
        let peer_behind_nat = !nat_src.is_empty()
            && !nat_src
                .iter()
                .any(|h| h.as_slice() == nat_hash(header.spi_i, 0, remote));
        let we_behind_nat = !nat_dst.is_empty()
            && !nat_dst
                .iter()
                .any(|h| h.as_slice() == nat_hash(header.spi_i, 0, local));
        let mut answer = vec![
            Payload::Sa(vec![suite.proposal(chosen.number, Vec::new())]),
            Payload::Ke(KePayload {
                group: suite.dh.id(),
                data: dh.public_value().to_vec(),
            }),
            Payload::Nonce(nr.clone()),
        ];
        // A peer that sent NAT detection supports NAT-T: we answer it, claiming a NAT when
        // UDP encapsulation is forced (`super::nat`), so that its ESP comes in UDP.
        let nat_t = !nat_src.is_empty() || !nat_dst.is_empty();
        let force_udp_encap = self.cfg.force_udp_encap;
        if nat_t {
            answer.extend(nat_detection(
                (header.spi_i, spi_r),
                local,
                remote,
                force_udp_encap,
            ));
        }
        answer.push(Payload::notify(
            NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
            Vec::new(),
        ));
        let response = Message {
            header: Header {
                spi_i: header.spi_i,
                spi_r,
                next_payload: answer[0].payload_type(),
                version: IKEV2_VERSION,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: FLAG_RESPONSE,
                message_id: 0,
                length: 0,
            },
            payloads: answer,
        }
        .emit()
        .map_err(IkeError::from)?;
        debug!(%remote, spi_r = format_args!("{spi_r:016x}"), peer_behind_nat, we_behind_nat, "IKE_SA_INIT answered");
        self.insert_half_open(
            SaCore {
                spi_i: header.spi_i,
                spi_r,
                suite,
                keys,
                sk,
                local,
                remote,
                created: now,
                udp_encap: (nat_t && force_udp_encap) || peer_behind_nat || we_behind_nat,
                nat: Nat {
                    remote: peer_behind_nat,
                    local: we_behind_nat,
                    faked: nat_t && force_udp_encap,
                },
                peer_fragmentation: payloads.has_notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED),
                last_activity: now,
                window: Window::new(1),
            },
            HalfOpen {
                ni: ni.to_vec(),
                nr,
                init_request: bytes.to_vec(),
                init_response: response.clone(),
                init_from: remote,
            },
        );
        Ok(vec![Action::Send {
            local,
            remote,
            bytes: response,
        }])
    }

    fn init_error(
        &self,
        header: &Header,
        local: SocketAddr,
        remote: SocketAddr,
        e: &IkeError,
    ) -> Vec<Action> {
        match e.notify() {
            Some(ty) => self.init_notify(header, local, remote, ty, e.notify_data()),
            None => Vec::new(),
        }
    }

    /// An unprotected IKE_SA_INIT answer carrying one notify, SPIr = 0 (§2.6, §1.3).
    fn init_notify(
        &self,
        header: &Header,
        local: SocketAddr,
        remote: SocketAddr,
        ty: NotifyType,
        data: Vec<u8>,
    ) -> Vec<Action> {
        let payloads = vec![Payload::notify(ty, data)];
        let message = Message {
            header: Header {
                spi_i: header.spi_i,
                spi_r: 0,
                next_payload: payloads[0].payload_type(),
                version: IKEV2_VERSION,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: FLAG_RESPONSE,
                message_id: 0,
                length: 0,
            },
            payloads,
        };
        let bytes = encode_response(remote, &message.payloads, |payloads| {
            let header = message.header.clone();
            let payloads = payloads.to_vec();
            Ok(Message { header, payloads }.emit()?)
        });
        bytes
            .map(|bytes| Action::Send {
                local,
                remote,
                bytes,
            })
            .into_iter()
            .collect()
    }
}

/// Why an IKE_SA_INIT made no SA.
enum InitReject {
    /// Dropped without an answer, counted under this reason.
    Drop(Refusal, String),
    /// Answered with this error's notify.
    Error(IkeError),
    /// Answered NO_PROPOSAL_CHOSEN (counted, and explained in the log, where it was found).
    NoProposal,
    /// Send N(COOKIE) with this value.
    Cookie(Vec<u8>),
}

impl InitReject {
    fn drop(why: Refusal, detail: &str) -> Self {
        InitReject::Drop(why, detail.to_string())
    }
}

impl From<IkeError> for InitReject {
    fn from(e: IkeError) -> Self {
        InitReject::Error(e)
    }
}

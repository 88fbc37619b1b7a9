//! IKE_AUTH (RFC 7296 §1.2, §2.15): PSK authentication, CP virtual IP (§3.15), the first
//! Child SA with narrowed traffic selectors (§2.9) keyed per §2.17 without its own DH.
//!
//! A failed Child SA (no proposal, selectors, address) does not fail the IKE SA (§1.2): the
//! response carries the error notify instead of SA/TSi/TSr.

use std::net::Ipv4Addr;
use std::time::Instant;

use rand_core::CryptoRngCore;
use tracing::{info, warn};

use crate::crypto;
use crate::wire::{
    AuthPayload, CpAttribute, CpPayload, IdPayload, NotifyType, Payload, PayloadList,
};

use super::budget::Refusal;
use super::create_child::NewChild;
use super::reauth::Authenticated;
use super::responder::{error_notify, Established, HalfOpen, Handled, Responder, SaCore};
use super::ts::{narrow_tsi, narrow_tsr};
use super::{id_payload, id_to_string, Action, ChildSaSpec, IkeError};

/// AUTH method 2: Shared Key Message Integrity Code (§3.8).
pub(crate) const AUTH_SHARED_KEY_MIC: u8 = 2;

/// Why an IKE_AUTH did not authenticate: the reason in the log line (the client gets
/// AUTHENTICATION_FAILED for every one, and each counts as one failed authentication for the
/// back-off and as [`Refusal::AuthFailed`]). Identities are not secrets and are named; the
/// PSK and the AUTH data never appear.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// IDi is not the configured `remote_id` (both as "type value").
    #[error("identity mismatch: the client sent IDi {received}, remote_id expects {expected}")]
    IdMismatch { expected: String, received: String },
    /// The AUTH payload does not verify with our PSK: the client holds another key.
    #[error("PSK mismatch: the client's AUTH does not verify with this server's pre-shared key")]
    PskMismatch,
    /// The client authenticates otherwise than with a shared key: its AUTH method
    /// (certificates: RSA, ECDSA, RFC 7427 signatures), or `None` when its IKE_AUTH has no
    /// AUTH payload (EAP, §2.16).
    #[error(
        "unsupported authentication method: the client uses {}; this server accepts only \
         a pre-shared key (AUTH method 2, shared key MIC)",
        method_name(*.method)
    )]
    UnsupportedMethod { method: Option<u8> },
}

/// What an AUTH method number (IANA "IKEv2 Authentication Method") means to an operator.
fn method_name(method: Option<u8>) -> String {
    match method {
        None => "EAP (IKE_AUTH without an AUTH payload)".into(),
        Some(1) => "an RSA signature (certificate, AUTH method 1)".into(),
        Some(3) => "a DSS signature (certificate, AUTH method 3)".into(),
        Some(m @ 9..=11) => format!("an ECDSA signature (certificate, AUTH method {m})"),
        Some(13) => "NULL authentication (AUTH method 13)".into(),
        Some(14) => "a digital signature (RFC 7427, certificate, AUTH method 14)".into(),
        Some(m) => format!("AUTH method {m}"),
    }
}

/// An identity with its type, for the ID-mismatch reason: `FQDN vpn.example.com` (a type
/// mismatch with the same text is then visible); at most [`MAX_ID_TEXT`] characters.
fn described_id(id: &IdPayload) -> String {
    let kind = match id.id_type {
        IdPayload::ID_IPV4_ADDR => "IPv4".to_string(),
        IdPayload::ID_IPV6_ADDR => "IPv6".to_string(),
        IdPayload::ID_FQDN => "FQDN".to_string(),
        IdPayload::ID_RFC822_ADDR => "email".to_string(),
        IdPayload::ID_KEY_ID => "key-id".to_string(),
        t => format!("type-{t}"),
    };
    let text: String = id_to_string(id).chars().take(MAX_ID_TEXT).collect();
    format!("{kind} {text}")
}

/// Characters of an identity written into a log line.
const MAX_ID_TEXT: usize = 256;

impl Responder {
    /// IKE_AUTH on a half-open SA, which it consumes: the established SA and the answer, or
    /// the error that ends the SA (answered with its notify).
    pub(crate) fn ike_auth(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        core: &mut SaCore,
        half: HalfOpen,
        inner: &[Payload],
    ) -> Result<(Established, Handled), IkeError> {
        let Some(idi) = inner.id_i() else {
            return Err(IkeError::InvalidSyntax("IKE_AUTH needs IDi"));
        };
        let who = id_to_string(idi);
        let source = core.remote.ip();
        if self.auth_backoff.identity_blocked(now, &idi.body()) {
            self.refusals.record(now, source, Refusal::AuthBackoff, || {
                format!("identity {who} in authentication back-off")
            });
            return Err(IkeError::AuthenticationFailed);
        }
        if let Err(why) = self.authenticate(core, &half, idi, inner.auth()) {
            // Logged through the refusal summary: one line per source per interval, with
            // the reason; the client gets AUTHENTICATION_FAILED whatever the reason.
            self.auth_backoff
                .failed(&self.cfg.limits, now, source, &idi.body());
            self.refusals.record(now, source, Refusal::AuthFailed, || {
                format!("IKE_AUTH of identity {who} failed: {why}")
            });
            return Err(IkeError::AuthenticationFailed);
        }
        self.auth_backoff.succeeded(source, &idi.body());
        let idr = match &self.cfg.local_id {
            Some(id) => id_payload(id),
            None => match core.local.ip() {
                std::net::IpAddr::V4(a) => IdPayload {
                    id_type: IdPayload::ID_IPV4_ADDR,
                    data: a.octets().to_vec(),
                },
                std::net::IpAddr::V6(a) => IdPayload {
                    id_type: IdPayload::ID_IPV6_ADDR,
                    data: a.octets().to_vec(),
                },
            },
        };
        let our_auth = crypto::psk_auth(
            core.suite.prf,
            self.cfg.psk.expose(),
            &half.init_response,
            &half.ni,
            core.keys.sk_pr.expose(),
            &idr.body(),
        );
        let mut response = vec![
            Payload::IdR(idr),
            Payload::Auth(AuthPayload {
                method: AUTH_SHARED_KEY_MIC,
                data: our_auth.expose().to_vec(),
            }),
        ];
        // RFC 4555 §4.2.1: both ends announce MOBIKE in IKE_AUTH.
        let peer_mobike = inner.has_notify(NotifyType::MOBIKE_SUPPORTED);
        if peer_mobike {
            response.push(Payload::notify(NotifyType::MOBIKE_SUPPORTED, Vec::new()));
        }
        let auth = Authenticated::new(now, self.cfg.ike_lifetime, self.psk_generation);
        // RFC 4478: when the client must authenticate again, if ever.
        response.extend(auth.notify(now));
        let mut e = Established {
            since: now,
            identity: idi.clone(),
            vip: None,
            children: Vec::new(),
            peer_mobike,
            expires: super::lifetime_end(now, self.cfg.ike_lifetime),
            auth,
            rekeyed: false,
            predecessor: None,
            our_next_id: 0,
            pending: None,
            outbox: Default::default(),
        };
        let mut actions = if inner.has_notify(NotifyType::INITIAL_CONTACT)
            || self.cfg.unique == super::UniquePolicy::Replace
        {
            self.replace_older(core.spi_r, idi, core.remote.ip())
        } else {
            Vec::new()
        };
        match self.first_child(now, rng, core, &mut e, &half, inner) {
            Ok((payloads, spec)) => {
                info!(
                    remote = %core.remote, identity = %who, vip = %spec.client_vip,
                    spi_in = format_args!("{:08x}", spec.inbound_spi),
                    spi_out = format_args!("{:08x}", spec.outbound_spi),
                    "IKE SA established, Child SA installed"
                );
                response.extend(payloads);
                actions.push(Action::InstallChild(Box::new(spec)));
            }
            Err(err) => {
                warn!(remote = %core.remote, identity = %who, "IKE SA established without Child SA: {err}");
                response.extend(error_notify(&err));
            }
        }
        Ok((e, Handled::reply(response, actions)))
    }

    /// The method, RemoteId and the PSK AUTH value of the initiator (§2.15, compared in
    /// constant time), in that order: the first that fails is the reason.
    fn authenticate(
        &self,
        core: &SaCore,
        half: &HalfOpen,
        idi: &IdPayload,
        auth: Option<&AuthPayload>,
    ) -> Result<(), AuthFailure> {
        // §2.16: an initiator that leaves AUTH out of its first IKE_AUTH wants EAP.
        let auth = auth.ok_or(AuthFailure::UnsupportedMethod { method: None })?;
        if auth.method != AUTH_SHARED_KEY_MIC {
            return Err(AuthFailure::UnsupportedMethod {
                method: Some(auth.method),
            });
        }
        if let Some(want) = &self.cfg.remote_id {
            if idi.id_type != want.id_type() || idi.data != want.data() {
                return Err(AuthFailure::IdMismatch {
                    expected: described_id(&id_payload(want)),
                    received: described_id(idi),
                });
            }
        }
        let expected = crypto::psk_auth(
            core.suite.prf,
            self.cfg.psk.expose(),
            &half.init_request,
            &half.nr,
            core.keys.sk_pi.expose(),
            &idi.body(),
        );
        if expected.ct_eq(&auth.data) {
            Ok(())
        } else {
            Err(AuthFailure::PskMismatch)
        }
    }

    /// The Child SA of IKE_AUTH: address from the pool, proposal, selectors, keys.
    fn first_child(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        core: &SaCore,
        e: &mut Established,
        half: &HalfOpen,
        inner: &[Payload],
    ) -> Result<(Vec<Payload>, ChildSaSpec), IkeError> {
        let cp = inner.cp().filter(|c| c.cfg_type == CpPayload::CFG_REQUEST);
        let proposals = inner.sa().ok_or(IkeError::NoProposalChosen)?;
        let (Some(tsi), Some(tsr)) = (inner.ts_i(), inner.ts_r()) else {
            return Err(IkeError::TsUnacceptable);
        };
        let cp = cp.ok_or(IkeError::FailedCpRequired)?;
        let chosen =
            self.cfg.esp.choose(proposals, None).inspect_err(|_| {
                self.refuse_esp_proposals(now, core, "IKE_AUTH", proposals, None)
            })?;
        let (tsr_sel, local_ts) = narrow_tsr(tsr, &self.cfg.local_subnets)?;
        let vip = self
            .pool
            .acquire(&e.identity.body())
            .map_err(|err| IkeError::InternalAddressFailure(err.to_string()))?;
        let tsi_sel = match narrow_tsi(tsi, vip) {
            Ok(t) => t,
            Err(err) => {
                self.pool.release(vip);
                return Err(err);
            }
        };
        e.vip = Some(vip);
        let inbound_spi = self.new_inbound_spi(rng.as_rngcore());
        let spec = self.new_child(
            now,
            rng,
            core,
            e,
            NewChild {
                inbound_spi,
                outbound_spi: chosen.peer_spi,
                local_ts,
                g_ir: None,
                nonces: (&half.ni, &half.nr),
                we_initiated: false,
            },
        );
        let payloads = vec![
            Payload::Cp(self.cp_reply(cp, vip)),
            Payload::Sa(vec![self.cfg.esp.proposal(
                chosen.number,
                inbound_spi,
                None,
                chosen.esn,
            )]),
            Payload::TsI(tsi_sel),
            Payload::TsR(tsr_sel),
        ];
        Ok((payloads, spec))
    }

    /// CFG_REPLY: the address, the pool's netmask, DNS servers when configured (§3.15.1).
    fn cp_reply(&self, _request: &CpPayload, vip: Ipv4Addr) -> CpPayload {
        let mut attributes = vec![
            CpAttribute {
                attr_type: CpAttribute::INTERNAL_IP4_ADDRESS,
                value: vip.octets().to_vec(),
            },
            CpAttribute {
                attr_type: CpAttribute::INTERNAL_IP4_NETMASK,
                value: self.cfg.pool.netmask().octets().to_vec(),
            },
        ];
        for dns in &self.cfg.dns {
            attributes.push(CpAttribute {
                attr_type: CpAttribute::INTERNAL_IP4_DNS,
                value: dns.octets().to_vec(),
            });
        }
        CpPayload {
            cfg_type: CpPayload::CFG_REPLY,
            attributes,
        }
    }
}

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
use crate::wire::{AuthPayload, CpAttribute, CpPayload, IdPayload, NotifyType, Payload};

use super::responder::{error_notify, Handled, IkeSa, Responder};
use super::ts::{narrow_tsi, narrow_tsr};
use super::{id_payload, id_to_string, Action, ChildSaSpec, IkeError};

/// AUTH method 2: Shared Key Message Integrity Code (§3.8).
pub(crate) const AUTH_SHARED_KEY_MIC: u8 = 2;

impl Responder {
    pub(crate) fn ike_auth(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        sa: &mut IkeSa,
        inner: &[Payload],
    ) -> Handled {
        let fail = |e: IkeError| Handled::closing(error_notify(&e), Vec::new());
        let mut idi = None;
        let mut auth = None;
        let mut initial_contact = false;
        for p in inner {
            match p {
                Payload::IdI(id) => idi = Some(id),
                Payload::Auth(a) => auth = Some(a),
                Payload::Notify(n) if n.notify_type == NotifyType::INITIAL_CONTACT => {
                    initial_contact = true
                }
                _ => {}
            }
        }
        let (Some(idi), Some(auth)) = (idi, auth) else {
            return fail(IkeError::InvalidSyntax("IKE_AUTH needs IDi and AUTH"));
        };
        let who = id_to_string(idi);
        if let Err(e) = self.authenticate(sa, idi, auth) {
            warn!(remote = %sa.remote, identity = %who, "IKE_AUTH failed: {e}");
            return fail(e);
        }
        let idr = match &self.cfg.local_id {
            Some(id) => id_payload(id),
            None => match sa.local.ip() {
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
            sa.suite.prf,
            self.cfg.psk.expose(),
            &sa.init_response,
            &sa.ni,
            sa.keys.sk_pr.expose(),
            &idr.body(),
        );
        let mut response = vec![
            Payload::IdR(idr),
            Payload::Auth(AuthPayload {
                method: AUTH_SHARED_KEY_MIC,
                data: our_auth.expose().to_vec(),
            }),
        ];
        sa.established = Some(now);
        sa.expires = super::lifetime_end(now, self.cfg.ike_lifetime);
        sa.identity = Some(idi.clone());
        // AUTH's signed octets are no longer needed.
        sa.init_request = Vec::new();
        sa.init_response = Vec::new();
        if inner.iter().any(
            |p| matches!(p, Payload::Notify(n) if n.notify_type == NotifyType::MOBIKE_SUPPORTED),
        ) {
            // RFC 4555 §4.2.1: both ends announce MOBIKE in IKE_AUTH.
            sa.peer_mobike = true;
            response.push(Payload::notify(NotifyType::MOBIKE_SUPPORTED, Vec::new()));
        }
        let mut actions = if initial_contact || self.cfg.unique == super::UniquePolicy::Replace {
            self.replace_older(sa.spi_r, idi, sa.remote.ip())
        } else {
            Vec::new()
        };
        match self.first_child(now, rng, sa, inner) {
            Ok((payloads, spec)) => {
                info!(
                    remote = %sa.remote, identity = %who, vip = %spec.client_vip,
                    spi_in = format_args!("{:08x}", spec.inbound_spi),
                    spi_out = format_args!("{:08x}", spec.outbound_spi),
                    "IKE SA established, Child SA installed"
                );
                response.extend(payloads);
                actions.push(Action::InstallChild(Box::new(spec)));
            }
            Err(e) => {
                warn!(remote = %sa.remote, identity = %who, "IKE SA established without Child SA: {e}");
                response.extend(error_notify(&e));
            }
        }
        Handled::reply(response, actions)
    }

    /// RemoteId and the PSK AUTH value of the initiator (§2.15), compared in constant time.
    fn authenticate(
        &self,
        sa: &IkeSa,
        idi: &IdPayload,
        auth: &AuthPayload,
    ) -> Result<(), IkeError> {
        if auth.method != AUTH_SHARED_KEY_MIC {
            return Err(IkeError::AuthenticationFailed);
        }
        if let Some(want) = &self.cfg.remote_id {
            if idi.id_type != want.id_type() || idi.data != want.data() {
                return Err(IkeError::AuthenticationFailed);
            }
        }
        let expected = crypto::psk_auth(
            sa.suite.prf,
            self.cfg.psk.expose(),
            &sa.init_request,
            &sa.nr,
            sa.keys.sk_pi.expose(),
            &idi.body(),
        );
        if expected.ct_eq(&auth.data) {
            Ok(())
        } else {
            Err(IkeError::AuthenticationFailed)
        }
    }

    /// The Child SA of IKE_AUTH: address from the pool, proposal, selectors, keys.
    fn first_child(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        sa: &mut IkeSa,
        inner: &[Payload],
    ) -> Result<(Vec<Payload>, ChildSaSpec), IkeError> {
        let mut cp = None;
        let mut proposals = None;
        let mut tsi = None;
        let mut tsr = None;
        for p in inner {
            match p {
                Payload::Cp(c) if c.cfg_type == CpPayload::CFG_REQUEST => cp = Some(c),
                Payload::Sa(s) => proposals = Some(s),
                Payload::TsI(t) => tsi = Some(t),
                Payload::TsR(t) => tsr = Some(t),
                _ => {}
            }
        }
        let proposals = proposals.ok_or(IkeError::NoProposalChosen)?;
        let (Some(tsi), Some(tsr)) = (tsi, tsr) else {
            return Err(IkeError::TsUnacceptable);
        };
        let cp = cp.ok_or(IkeError::FailedCpRequired)?;
        let chosen = self.cfg.esp.choose(proposals, None)?;
        let (tsr_sel, local_ts) = narrow_tsr(tsr, &self.cfg.local_subnets)?;
        let identity = sa.identity.as_ref().map(|i| i.body()).unwrap_or_default();
        let vip = self
            .pool
            .acquire(&identity)
            .map_err(|e| IkeError::InternalAddressFailure(e.to_string()))?;
        let tsi_sel = match narrow_tsi(tsi, vip) {
            Ok(t) => t,
            Err(e) => {
                self.pool.release(vip);
                return Err(e);
            }
        };
        sa.vip = Some(vip);
        let inbound_spi = self.new_inbound_spi(rng.as_rngcore());
        let (ni, nr) = (sa.ni.clone(), sa.nr.clone());
        let spec = self.new_child(
            now,
            rng,
            sa,
            (inbound_spi, chosen.peer_spi),
            vip,
            local_ts,
            None,
            (&ni, &nr),
            false,
        );
        let payloads = vec![
            Payload::Cp(self.cp_reply(cp, vip)),
            Payload::Sa(vec![self.cfg.esp.proposal(
                chosen.number,
                inbound_spi,
                None,
                chosen.esn_offered,
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

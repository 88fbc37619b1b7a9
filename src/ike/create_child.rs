//! CREATE_CHILD_SA from the initiator (RFC 7296 §1.3): a new or rekeyed Child SA (§1.3.1,
//! §1.3.3, KEYMAT per §2.17 with PFS per IpsecPfs) and the IKE SA rekey (§1.3.2, §2.18), which
//! moves every Child SA and the lease to the new IKE SA.
//!
//! A rekeyed Child SA stays installed (make before break) until the initiator deletes it.
//!
//! Invariants (what an authenticated peer may make us keep): at most
//! `limits.child_sas_per_ike_sa` Child SAs per IKE SA that were not rekeyed, a Child SA is
//! rekeyed once (by either end), and no rekey when the rekeyed ones waiting for their DELETE
//! would make it more than twice that in all; an IKE SA
//! that was rekeyed creates nothing more; of a chain of IKE rekeys only the newest two IKE
//! SAs exist (the one before the predecessor is deleted when the predecessor is rekeyed), so
//! IKE SAs stay within twice the connections.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand_core::CryptoRngCore;
use tracing::{info, warn};

use crate::crypto::keys::SkeyseedFrom;
use crate::crypto::{self, ChildKeys, DhGroup, DhPrivate};
use crate::secret::SecretBytes;
use crate::wire::{KePayload, NotifyType, Payload, PayloadList, Proposal, ProtocolId};

use super::budget::Refusal;
use super::notation::{no_esp_proposal, no_ike_proposal};
use super::responder::{Child, Established, Handled, Responder, SaCore, Window};
use super::sk::SkCrypto;
use super::ts::{narrow_tsi, narrow_tsr};
use super::{
    check_nonce, id_to_string, lifetime_end, our_nonce, Action, ChildSaSpec, IkeError, Ipv4Range,
};

/// How long an IKE SA that the initiator rekeyed may wait for its DELETE.
const REKEYED_GRACE: Duration = Duration::from_secs(60);

/// What keys a new Child SA and how it is named.
pub(crate) struct NewChild<'a> {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    /// Narrowed local selectors.
    pub local_ts: Vec<Ipv4Range>,
    /// The PFS shared secret, if the exchange had one.
    pub g_ir: Option<&'a [u8]>,
    /// (Ni, Nr) of the exchange: Ni from its initiator.
    pub nonces: (&'a [u8], &'a [u8]),
    /// Whether we initiated the exchange: the first keys of KEYMAT protect traffic from the
    /// exchange's initiator (§2.17).
    pub we_initiated: bool,
}

/// What a CREATE_CHILD_SA request that rekeys the IKE SA offers (§1.3.2): its SA payload,
/// its nonce (already checked) and its KE payload, if any.
struct IkeRekey<'a> {
    proposals: &'a [Proposal],
    ni: &'a [u8],
    ke: Option<&'a KePayload>,
}

impl Responder {
    pub(crate) fn create_child_sa(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        core: &mut SaCore,
        e: &mut Established,
        inner: &[Payload],
    ) -> Handled {
        match self.try_create_child(now, rng, core, e, inner) {
            Ok(h) => h,
            Err(err) => {
                let who = id_to_string(&e.identity);
                warn!(remote = %core.remote, identity = %who, "CREATE_CHILD_SA refused: {err}");
                if matches!(err, IkeError::NoAdditionalSas) {
                    self.refusals
                        .record(now, core.remote.ip(), Refusal::ChildRefused, || {
                            format!("identity {who}: {err}")
                        });
                }
                Handled::error(&err)
            }
        }
    }

    /// Counts a Child SA's proposal mismatch in `exchange` and logs (rate-limited, with
    /// the refusals) the client's ESP proposals and ours.
    pub(crate) fn refuse_esp_proposals(
        &mut self,
        now: Instant,
        core: &SaCore,
        exchange: &str,
        theirs: &[Proposal],
        pfs: Option<DhGroup>,
    ) {
        let ours = self.cfg.esp;
        self.refusals
            .record(now, core.remote.ip(), Refusal::ChildNoProposal, || {
                no_esp_proposal(exchange, theirs, &ours, pfs)
            });
    }

    fn try_create_child(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        core: &mut SaCore,
        e: &mut Established,
        inner: &[Payload],
    ) -> Result<Handled, IkeError> {
        if e.rekeyed {
            // §2.18: a rekeyed IKE SA only waits for its DELETE.
            return Err(IkeError::NoAdditionalSas);
        }
        let (Some(proposals), Some(ni)) = (inner.sa(), inner.nonce()) else {
            return Err(IkeError::InvalidSyntax(
                "CREATE_CHILD_SA needs SA and Nonce",
            ));
        };
        check_nonce(core.suite.prf, ni)?;
        if proposals.iter().any(|p| p.protocol == ProtocolId::IKE) {
            let offer = IkeRekey {
                proposals,
                ni,
                ke: inner.ke(),
            };
            return self.rekey_ike(now, rng, core, e, offer);
        }
        // §1.3.3: REKEY_SA names the SA by the SPI the initiator receives on (our outbound).
        let rekey_of = inner
            .notifies_of(NotifyType::REKEY_SA)
            .find(|n| n.protocol == ProtocolId::ESP)
            .and_then(|n| <[u8; 4]>::try_from(n.spi.as_slice()).ok())
            .map(u32::from_be_bytes);
        // A new Child SA counts against the cap; a rekey replaces one (once, below), and the
        // rekeyed ones waiting for their DELETE may not pile up beyond as many again.
        let cap = self.cfg.limits.child_sas_per_ike_sa;
        if (rekey_of.is_none() && e.live_children() >= cap) || e.children.len() >= 2 * cap {
            return Err(IkeError::NoAdditionalSas);
        }
        let old = match rekey_of {
            Some(spi) => Some(
                e.children
                    .iter()
                    .position(|c| c.outbound_spi == spi && !c.rekeyed)
                    .ok_or(IkeError::ChildSaNotFound(spi))?,
            ),
            None => None,
        };
        let vip = e.vip.ok_or(IkeError::TsUnacceptable)?;
        let pfs = self.cfg.esp_pfs;
        let chosen = self.cfg.esp.choose(proposals, Some(pfs)).inspect_err(|_| {
            self.refuse_esp_proposals(now, core, "CREATE_CHILD_SA", proposals, pfs)
        })?;
        let dh = match self.cfg.esp_pfs {
            Some(group) => Some(key_exchange(group, inner.ke(), rng)?),
            None => None,
        };
        let (Some(tsi), Some(tsr)) = (inner.ts_i(), inner.ts_r()) else {
            return Err(IkeError::TsUnacceptable);
        };
        let tsi_sel = narrow_tsi(tsi, vip)?;
        let (tsr_sel, local_ts) = narrow_tsr(tsr, &self.cfg.local_subnets)?;
        let nr = our_nonce(rng);
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
                g_ir: dh.as_ref().map(|(_, g)| g.expose()),
                nonces: (ni, &nr),
                we_initiated: false,
            },
        );
        if let Some(i) = old {
            e.children[i].rekeyed = true;
            self.counters.child_rekeys += 1;
        }
        info!(
            remote = %core.remote, identity = %id_to_string(&e.identity),
            spi_in = format_args!("{inbound_spi:08x}"), spi_out = format_args!("{:08x}", chosen.peer_spi),
            rekey = old.is_some(), pfs = dh.is_some(),
            "Child SA created by the client"
        );
        let mut response = vec![
            Payload::Sa(vec![self.cfg.esp.proposal(
                chosen.number,
                inbound_spi,
                self.cfg.esp_pfs,
                chosen.esn,
            )]),
            Payload::Nonce(nr),
        ];
        if let Some((dh, _)) = &dh {
            response.push(Payload::Ke(KePayload {
                group: dh.group().id(),
                data: dh.public_value().to_vec(),
            }));
        }
        response.push(Payload::TsI(tsi_sel));
        response.push(Payload::TsR(tsr_sel));
        Ok(Handled::reply(
            response,
            vec![Action::InstallChild(Box::new(spec))],
        ))
    }

    /// §2.18: a new IKE SA with fresh keys from SK_d; Child SAs and lease move to it.
    fn rekey_ike(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        core: &mut SaCore,
        e: &mut Established,
        offer: IkeRekey<'_>,
    ) -> Result<Handled, IkeError> {
        let suite = self.cfg.ike;
        let chosen = suite.choose(offer.proposals).inspect_err(|_| {
            self.refusals
                .record(now, core.remote.ip(), Refusal::NoProposal, || {
                    no_ike_proposal("an IKE SA rekey", offer.proposals, &suite)
                })
        })?;
        let spi_i = <[u8; 8]>::try_from(chosen.peer_spi.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| IkeError::InvalidSyntax("IKE rekey needs an 8-octet SPI"))?;
        let (dh, g_ir) = key_exchange(suite.dh, offer.ke, rng)?;
        // Only the newest two of a chain of rekeys exist: our predecessor goes now.
        let mut actions = Vec::new();
        if let Some(before) = e.predecessor.take() {
            actions.extend(self.remove_sa(before));
        }
        let spi_r = self.new_ike_spi(rng.as_rngcore());
        let nr = our_nonce(rng);
        let keys = crypto::keys::derive_ike_sa(
            suite.prf,
            suite.encr,
            suite.integ,
            SkeyseedFrom::Rekey {
                old_sk_d: core.keys.sk_d.expose(),
                g_ir: g_ir.expose(),
            },
            (offer.ni, &nr),
            (spi_i, spi_r),
        );
        let sk = SkCrypto::responder(suite.encr, suite.integ, &keys)?;
        info!(remote = %core.remote, identity = %id_to_string(&e.identity), "IKE SA rekeyed by the client: {:016x} -> {spi_r:016x}", core.spi_r);
        let new_core = SaCore {
            spi_i,
            spi_r,
            suite,
            keys,
            sk,
            local: core.local,
            remote: core.remote,
            created: now,
            udp_encap: core.udp_encap,
            nat: core.nat,
            peer_fragmentation: core.peer_fragmentation,
            last_activity: now,
            window: Window::new(0),
        };
        let new_e = Established {
            since: now,
            identity: e.identity.clone(),
            vip: e.vip.take(),
            children: std::mem::take(&mut e.children),
            peer_mobike: e.peer_mobike,
            expires: lifetime_end(now, self.cfg.ike_lifetime),
            // A rekey is no authentication: the deadline for the next IKE_AUTH stays.
            auth: e.auth,
            rekeyed: false,
            predecessor: Some(core.spi_r),
            our_next_id: 0,
            pending: None,
            outbox: Default::default(),
        };
        // The old IKE SA only waits for the initiator's DELETE now.
        self.mark_rekeyed(e);
        e.expires = Some(now + REKEYED_GRACE);
        let response = vec![
            Payload::Sa(vec![
                suite.proposal(chosen.number, spi_r.to_be_bytes().to_vec())
            ]),
            Payload::Nonce(nr),
            Payload::Ke(KePayload {
                group: suite.dh.id(),
                data: dh.public_value().to_vec(),
            }),
        ];
        let mut h = Handled::reply(response, actions);
        h.new_sa = Some((Box::new(new_core), Box::new(new_e)));
        Ok(h)
    }

    /// Records a new Child SA on `e`, keyed per §2.17 from SK_d, the optional PFS secret and
    /// the exchange's nonces, and returns the data plane's view of it. `e` has a virtual IP
    /// (every caller checked).
    pub(crate) fn new_child(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        core: &SaCore,
        e: &mut Established,
        c: NewChild<'_>,
    ) -> ChildSaSpec {
        let (ni, nr) = c.nonces;
        let keys = crypto::derive_child_keys(
            core.suite.prf,
            core.keys.sk_d.expose(),
            c.g_ir,
            ni,
            nr,
            self.cfg.esp.encr,
            self.cfg.esp.integ,
        );
        let ChildKeys {
            encr_i,
            integ_i,
            encr_r,
            integ_r,
        } = keys;
        let ((in_e, in_a), (out_e, out_a)) = if c.we_initiated {
            ((encr_r, integ_r), (encr_i, integ_i))
        } else {
            ((encr_i, integ_i), (encr_r, integ_r))
        };
        let lifetime = self.cfg.ipsec_lifetime;
        // Soft lifetime: 90 % less up to 5 % jitter, so we rekey only if the client did not,
        // and many clients do not rekey at the same moment.
        let rekey_at = (!lifetime.is_zero()).then(|| {
            let jitter = rng.gen_range(0..=lifetime.as_millis().max(1) as u64 / 20);
            now + lifetime.mul_f64(0.9) - Duration::from_millis(jitter)
        });
        e.children.push(Child {
            inbound_spi: c.inbound_spi,
            outbound_spi: c.outbound_spi,
            local_ts: c.local_ts.clone(),
            rekey_at,
            expires_at: lifetime_end(now, lifetime),
            rekeyed: false,
            inbound_packets: 0,
            seq_rekey_asked: None,
            esp: self.cfg.esp,
            installed: now,
            last_inbound: None,
        });
        ChildSaSpec {
            inbound_spi: c.inbound_spi,
            outbound_spi: c.outbound_spi,
            encr: self.cfg.esp.encr,
            integ: self.cfg.esp.integ,
            inbound_encr_key: in_e,
            inbound_integ_key: in_a,
            outbound_encr_key: out_e,
            outbound_integ_key: out_a,
            client_vip: e.vip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            local_ts: c.local_ts,
            local: core.local,
            remote: core.remote,
            udp_encap: core.udp_encap,
            lifetime,
        }
    }
}

/// The responder's half of a DH exchange in CREATE_CHILD_SA: the peer's KE must be of
/// `group` (else INVALID_KE_PAYLOAD naming it, §1.3) and pass RFC 6989 before our key pair is
/// made.
fn key_exchange(
    group: DhGroup,
    ke: Option<&KePayload>,
    rng: &mut dyn CryptoRngCore,
) -> Result<(DhPrivate, SecretBytes), IkeError> {
    let want = group.id();
    let ke = ke.ok_or(IkeError::InvalidKe { got: 0, want })?;
    if ke.group != want {
        return Err(IkeError::InvalidKe {
            got: ke.group,
            want,
        });
    }
    let invalid = |_| IkeError::InvalidSyntax("invalid KE public value");
    group.check_public(&ke.data).map_err(invalid)?;
    let dh = DhPrivate::generate(group, rng);
    let g_ir = dh.shared_secret(&ke.data).map_err(invalid)?;
    Ok((dh, g_ir))
}

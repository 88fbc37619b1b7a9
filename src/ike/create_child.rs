//! CREATE_CHILD_SA from the initiator (RFC 7296 §1.3): a new or rekeyed Child SA (§1.3.1,
//! §1.3.3, KEYMAT per §2.17 with PFS per IpsecPfs) and the IKE SA rekey (§1.3.2, §2.18), which
//! moves every Child SA and the lease to the new IKE SA.
//!
//! A rekeyed Child SA stays installed (make before break) until the initiator deletes it.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand_core::CryptoRngCore;
use tracing::{info, warn};

use crate::crypto::{self, ChildKeys, DhPrivate};
use crate::wire::{KePayload, NotifyType, Payload, Proposal, ProtocolId};

use super::responder::{Child, Handled, IkeSa, Responder};
use super::sk::SkCrypto;
use super::ts::{narrow_tsi, narrow_tsr};
use super::{id_to_string, lifetime_end, Action, ChildSaSpec, IkeError, Ipv4Range};

/// Nonce length bounds (§2.10).
const NONCE_MIN: usize = 16;
const NONCE_MAX: usize = 256;
/// Our nonces: 32 octets.
pub(crate) const OUR_NONCE_LEN: usize = 32;
/// How long an IKE SA that the initiator rekeyed may wait for its DELETE.
const REKEYED_GRACE: Duration = Duration::from_secs(60);

impl Responder {
    pub(crate) fn create_child_sa(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        sa: &mut IkeSa,
        inner: &[Payload],
    ) -> Handled {
        match self.try_create_child(now, rng, sa, inner) {
            Ok(h) => h,
            Err(e) => {
                let who = sa.identity.as_ref().map(id_to_string).unwrap_or_default();
                warn!(remote = %sa.remote, identity = %who, "CREATE_CHILD_SA refused: {e}");
                Handled::error(&e)
            }
        }
    }

    fn try_create_child(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        sa: &mut IkeSa,
        inner: &[Payload],
    ) -> Result<Handled, IkeError> {
        let mut proposals = None;
        let mut ni = None;
        let mut ke = None;
        let mut tsi = None;
        let mut tsr = None;
        let mut rekey_of = None;
        for p in inner {
            match p {
                Payload::Sa(s) => proposals = Some(s),
                Payload::Nonce(n) => ni = Some(n),
                Payload::Ke(k) => ke = Some(k),
                Payload::TsI(t) => tsi = Some(t),
                Payload::TsR(t) => tsr = Some(t),
                Payload::Notify(n)
                    if n.notify_type == NotifyType::REKEY_SA && n.protocol == ProtocolId::ESP =>
                {
                    rekey_of = <[u8; 4]>::try_from(n.spi.as_slice())
                        .ok()
                        .map(u32::from_be_bytes);
                }
                _ => {}
            }
        }
        let (Some(proposals), Some(ni)) = (proposals, ni) else {
            return Err(IkeError::InvalidSyntax(
                "CREATE_CHILD_SA needs SA and Nonce",
            ));
        };
        if !(NONCE_MIN..=NONCE_MAX).contains(&ni.len()) {
            return Err(IkeError::InvalidSyntax("nonce length"));
        }
        if proposals.iter().any(|p| p.protocol == ProtocolId::IKE) {
            return self.rekey_ike(now, rng, sa, proposals, ni, ke);
        }
        // §1.3.3: REKEY_SA names the SA by the SPI the initiator receives on (our outbound).
        let old = match rekey_of {
            Some(spi) => Some(
                sa.children
                    .iter()
                    .position(|c| c.outbound_spi == spi)
                    .ok_or(IkeError::ChildSaNotFound(spi))?,
            ),
            None => None,
        };
        let vip = sa.vip.ok_or(IkeError::TsUnacceptable)?;
        let chosen = self.cfg.esp.choose(proposals, Some(self.cfg.esp_pfs))?;
        let dh = match self.cfg.esp_pfs {
            Some(group) => {
                let ke = ke.ok_or(IkeError::InvalidKe {
                    got: 0,
                    want: group.id(),
                })?;
                if ke.group != group.id() {
                    return Err(IkeError::InvalidKe {
                        got: ke.group,
                        want: group.id(),
                    });
                }
                let dh = DhPrivate::generate(group, rng);
                let g_ir = dh
                    .shared_secret(&ke.data)
                    .map_err(|_| IkeError::InvalidSyntax("invalid KE public value"))?;
                Some((dh, g_ir))
            }
            None => None,
        };
        let (Some(tsi), Some(tsr)) = (tsi, tsr) else {
            return Err(IkeError::TsUnacceptable);
        };
        let tsi_sel = narrow_tsi(tsi, vip)?;
        let (tsr_sel, local_ts) = narrow_tsr(tsr, &self.cfg.local_subnets)?;
        let mut nr = vec![0u8; OUR_NONCE_LEN];
        rng.fill_bytes(&mut nr);
        let inbound_spi = self.new_inbound_spi(rng.as_rngcore());
        let g_ir = dh.as_ref().map(|(_, g)| g.expose());
        let spec = self.new_child(
            now,
            rng,
            sa,
            (inbound_spi, chosen.peer_spi),
            vip,
            local_ts,
            g_ir,
            (ni, &nr),
            false,
        );
        if let Some(i) = old {
            sa.children[i].rekeyed = true;
        }
        let who = sa.identity.as_ref().map(id_to_string).unwrap_or_default();
        info!(
            remote = %sa.remote, identity = %who,
            spi_in = format_args!("{inbound_spi:08x}"), spi_out = format_args!("{:08x}", chosen.peer_spi),
            rekey = old.is_some(), pfs = dh.is_some(),
            "Child SA created by the client"
        );
        let mut response = vec![
            Payload::Sa(vec![self.cfg.esp.proposal(
                chosen.number,
                inbound_spi,
                self.cfg.esp_pfs,
                chosen.esn_offered,
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
        sa: &mut IkeSa,
        proposals: &[Proposal],
        ni: &[u8],
        ke: Option<&KePayload>,
    ) -> Result<Handled, IkeError> {
        let suite = self.cfg.ike;
        let chosen = suite.choose(proposals)?;
        let spi_i = <[u8; 8]>::try_from(chosen.peer_spi.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| IkeError::InvalidSyntax("IKE rekey needs an 8-octet SPI"))?;
        let ke = ke.ok_or(IkeError::InvalidKe {
            got: 0,
            want: suite.dh.id(),
        })?;
        if ke.group != suite.dh.id() {
            return Err(IkeError::InvalidKe {
                got: ke.group,
                want: suite.dh.id(),
            });
        }
        let dh = DhPrivate::generate(suite.dh, rng);
        let g_ir = dh
            .shared_secret(&ke.data)
            .map_err(|_| IkeError::InvalidSyntax("invalid KE public value"))?;
        let spi_r = self.new_ike_spi(rng.as_rngcore());
        let mut nr = vec![0u8; OUR_NONCE_LEN];
        rng.fill_bytes(&mut nr);
        let skeyseed =
            crypto::rekey_skeyseed(suite.prf, sa.keys.sk_d.expose(), g_ir.expose(), ni, &nr);
        let keys = crypto::derive_ike_keys(
            suite.prf,
            suite.encr,
            suite.integ,
            skeyseed.expose(),
            ni,
            &nr,
            spi_i,
            spi_r,
        );
        let sk = SkCrypto::responder(suite.encr, suite.integ, &keys)?;
        let who = sa.identity.as_ref().map(id_to_string).unwrap_or_default();
        info!(remote = %sa.remote, identity = %who, "IKE SA rekeyed by the client: {:016x} -> {spi_r:016x}", sa.spi_r);
        let new = IkeSa {
            spi_i,
            spi_r,
            suite,
            keys,
            sk,
            ni: ni.to_vec(),
            nr: nr.clone(),
            init_request: Vec::new(),
            init_response: Vec::new(),
            local: sa.local,
            remote: sa.remote,
            established: Some(now),
            created: now,
            next_request_id: 0,
            cached_response: None,
            identity: sa.identity.clone(),
            vip: sa.vip.take(),
            children: std::mem::take(&mut sa.children),
            udp_encap: sa.udp_encap,
            peer_fragmentation: sa.peer_fragmentation,
            peer_mobike: sa.peer_mobike,
            last_activity: now,
            expires: lifetime_end(now, self.cfg.ike_lifetime),
            our_next_id: 0,
            pending: None,
            outbox: Default::default(),
            fragments: None,
        };
        // The old IKE SA only waits for the initiator's DELETE now.
        sa.outbox.clear();
        sa.expires = Some(now + REKEYED_GRACE);
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
        let mut h = Handled::reply(response, Vec::new());
        h.new_sa = Some(Box::new(new));
        Ok(h)
    }

    /// Records a new Child SA on `sa`, keyed per §2.17 from SK_d, the optional PFS secret and
    /// the exchange's nonces (`ni` from its initiator), and returns the data plane's view of it.
    /// `we_initiated` says who sent Ni: the first keys of KEYMAT protect traffic from the
    /// exchange's initiator.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_child(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        sa: &mut IkeSa,
        (inbound_spi, outbound_spi): (u32, u32),
        vip: Ipv4Addr,
        local_ts: Vec<Ipv4Range>,
        g_ir: Option<&[u8]>,
        (ni, nr): (&[u8], &[u8]),
        we_initiated: bool,
    ) -> ChildSaSpec {
        let keys = crypto::derive_child_keys(
            sa.suite.prf,
            sa.keys.sk_d.expose(),
            g_ir,
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
        let ((in_e, in_a), (out_e, out_a)) = if we_initiated {
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
        sa.children.push(Child {
            inbound_spi,
            outbound_spi,
            local_ts: local_ts.clone(),
            rekey_at,
            expires_at: lifetime_end(now, lifetime),
            rekeyed: false,
            inbound_packets: 0,
        });
        ChildSaSpec {
            inbound_spi,
            outbound_spi,
            encr: self.cfg.esp.encr,
            integ: self.cfg.esp.integ,
            inbound_encr_key: in_e,
            inbound_integ_key: in_a,
            outbound_encr_key: out_e,
            outbound_integ_key: out_a,
            client_vip: vip,
            local_ts,
            local: sa.local,
            remote: sa.remote,
            udp_encap: sa.udp_encap,
            lifetime,
        }
    }
}

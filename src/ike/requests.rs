//! Requests we initiate on an established IKE SA (RFC 7296 §2.1–2.4): liveness checks (DPD),
//! Child SA rekeys when the client did not rekey in time (§1.3.3, §2.8) or when the SA's
//! sequence numbers run low ([`Responder::rekey_soon`]; 32-bit, no ESN), Child SA deletes at
//! the end of a lifetime, AUTH_LIFETIME after a PSK change (RFC 4478, `reauth`), with
//! retransmission and a give-up that declares the peer dead. An IKE SA is deleted at the end
//! of its lifetime or of its client's time to authenticate again.
//!
//! One request is in flight at a time (window size 1); others wait in the SA's outbox.

use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;
use tracing::{debug, info, warn};

use crate::crypto::DhPrivate;
use crate::wire::{
    DeletePayload, ExchangeType, Header, KePayload, Message, NotifyPayload, NotifyType, Payload,
    PayloadList, PayloadType, ProtocolId, IKEV2_VERSION,
};

use super::budget::Refusal;
use super::create_child::NewChild;
use super::proposal::EsnTransform;
use super::responder::{Established, IkeSa, Received, Responder, SaCore, SaState};
use super::ts::selector;
use super::{check_nonce, id_to_string, our_nonce, Action, Ipv4Range};

/// First retransmission after this, doubling each time (§2.1 leaves the schedule to us).
const RETRY_BASE: Duration = Duration::from_secs(1);
/// Sends of one request before the peer is declared dead: 1 + 2 + 4 + 8 s = 15 s of silence.
const MAX_TRIES: u32 = 4;

/// A Child SA rekey asked because of its sequence numbers ([`Responder::rekey_soon`]) is
/// asked again after this if the SA is still there and not rekeyed (the client refused,
/// or the exchange failed): often enough to rekey long before the 2^31 packets of margin
/// run out, rarely enough not to flood a client that keeps refusing.
pub(crate) const SEQ_REKEY_RETRY: Duration = Duration::from_secs(30);

/// A request waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Liveness,
    /// Tell the peer our inbound SA `inbound_spi` is gone (lifetime end or after a rekey).
    DeleteChild {
        inbound_spi: u32,
    },
    /// Rekey the Child SA whose inbound SPI is this.
    RekeyChild {
        old_inbound: u32,
    },
    /// Tell the client when it must authenticate again (RFC 4478 AUTH_LIFETIME).
    AuthLifetime,
}

/// The request in flight.
pub(crate) struct Pending {
    pub message_id: u32,
    pub(super) bytes: Vec<u8>,
    pub(super) next_retry: Instant,
    pub(super) tries: u32,
    pub(super) state: InFlight,
}

pub(super) enum InFlight {
    Liveness,
    AuthLifetime,
    DeleteChild { inbound_spi: u32 },
    RekeyChild(OurRekey),
}

/// The inbound SPIs our requests hold (in flight or queued): the one reserved for the Child
/// SA a rekey would create, the ones a DELETE names (possibly never installed). Released with
/// their IKE SA, whatever became of the requests.
pub(crate) fn requested_spis(e: &Established) -> impl Iterator<Item = u32> + '_ {
    let pending = e.pending.as_ref().and_then(|p| match &p.state {
        InFlight::RekeyChild(r) => Some(r.new_inbound),
        InFlight::DeleteChild { inbound_spi } => Some(*inbound_spi),
        InFlight::Liveness | InFlight::AuthLifetime => None,
    });
    let queued = e.outbox.iter().filter_map(|r| match r {
        Request::DeleteChild { inbound_spi } => Some(*inbound_spi),
        Request::Liveness | Request::RekeyChild { .. } | Request::AuthLifetime => None,
    });
    pending.into_iter().chain(queued)
}

/// Whether a rekey of the Child SA `old_inbound` is in flight or queued.
pub(crate) fn rekey_requested(e: &Established, old_inbound: u32) -> bool {
    let pending = e.pending.as_ref().is_some_and(
        |p| matches!(&p.state, InFlight::RekeyChild(r) if r.old_inbound == old_inbound),
    );
    pending || e.outbox.contains(&Request::RekeyChild { old_inbound })
}

/// Our CREATE_CHILD_SA rekey of a Child SA, in flight.
pub(super) struct OurRekey {
    pub old_inbound: u32,
    pub new_inbound: u32,
    pub dh: Option<DhPrivate>,
    pub ni: Vec<u8>,
    pub local_ts: Vec<Ipv4Range>,
}

impl Responder {
    /// Lifetimes, rekeys, DPD and retransmissions of one established IKE SA.
    pub(crate) fn maintain(
        &mut self,
        spi_r: u64,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Vec<Action> {
        let Some(IkeSa {
            core,
            state: SaState::Established(mut e),
        }) = self.sas.remove(&spi_r)
        else {
            return Vec::new();
        };
        let who = id_to_string(&e.identity);
        let mut actions = Vec::new();
        if let Some(p) = &mut e.pending {
            if now >= p.next_retry {
                if p.tries >= MAX_TRIES {
                    self.counters.dpd_timeouts += 1;
                    info!(remote = %core.remote, identity = %who, "peer does not answer: deleting its IKE SA");
                    return self.cleanup_established(core.spi_r, e);
                }
                debug!(remote = %core.remote, message_id = p.message_id, "retransmitting our request");
                actions.push(Action::Send {
                    local: core.local,
                    remote: core.remote,
                    bytes: p.bytes.clone(),
                });
                p.next_retry = now + RETRY_BASE * 2u32.pow(p.tries);
                p.tries += 1;
            }
        }
        let over = if e.expires.is_some_and(|t| now >= t) {
            Some("IKE SA lifetime over: deleting it")
        } else if e.auth.overdue(now) {
            Some("the client did not authenticate again in time: deleting its IKE SA")
        } else {
            None
        };
        if let Some(why) = over {
            info!(remote = %core.remote, identity = %who, "{why}");
            actions.extend(self.delete_ike_message(&core, &e, rng));
            actions.extend(self.cleanup_established(core.spi_r, e));
            return actions;
        }
        let mut i = 0;
        while i < e.children.len() {
            let c = &mut e.children[i];
            if c.expires_at.is_some_and(|t| now >= t) {
                info!(remote = %core.remote, identity = %who, spi_in = format_args!("{:08x}", c.inbound_spi), "Child SA lifetime over");
                let spi = c.inbound_spi;
                e.children.remove(i);
                self.inbound_spis.remove(&spi);
                actions.push(Action::DeleteChild { inbound_spi: spi });
                e.outbox
                    .push_back(Request::DeleteChild { inbound_spi: spi });
                continue;
            }
            if !c.rekeyed && c.rekey_at.is_some_and(|t| now >= t) {
                c.rekey_at = None;
                e.outbox.push_back(Request::RekeyChild {
                    old_inbound: c.inbound_spi,
                });
            }
            i += 1;
        }
        if let Some(dpd) = self.cfg.dpd_interval {
            if e.pending.is_none()
                && e.outbox.is_empty()
                && now.saturating_duration_since(core.last_activity) >= dpd
            {
                debug!(remote = %core.remote, identity = %who, "checking liveness");
                e.outbox.push_back(Request::Liveness);
            }
        }
        actions.extend(self.send_next(&core, &mut e, now, rng));
        self.put_back(IkeSa {
            core,
            state: SaState::Established(e),
        });
        actions
    }

    /// Sends the next queued request if none is in flight.
    pub(crate) fn send_next(
        &mut self,
        core: &SaCore,
        e: &mut Established,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Vec<Action> {
        while e.pending.is_none() {
            let Some(req) = e.outbox.pop_front() else {
                break;
            };
            let Some((exchange, payloads, state)) = self.build_request(core, e, req, now, rng)
            else {
                continue;
            };
            let header = Header {
                spi_i: core.spi_i,
                spi_r: core.spi_r,
                next_payload: PayloadType::SK,
                version: IKEV2_VERSION,
                exchange,
                flags: 0,
                message_id: e.our_next_id,
                length: 0,
            };
            let bytes = match core.sk.seal(header, &payloads, rng.as_rngcore()) {
                Ok(bytes) => bytes,
                Err(err) => {
                    // Our own payloads too long for their fields: give this request up
                    // rather than the thread.
                    warn!(remote = %core.remote, "cannot encode our request, dropping it: {err}");
                    if let InFlight::RekeyChild(OurRekey { new_inbound, .. }) = state {
                        self.inbound_spis.remove(&new_inbound);
                    }
                    continue;
                }
            };
            e.pending = Some(Pending {
                message_id: e.our_next_id,
                bytes: bytes.clone(),
                next_retry: now + RETRY_BASE,
                tries: 1,
                state,
            });
            e.our_next_id = e.our_next_id.wrapping_add(1);
            return vec![Action::Send {
                local: core.local,
                remote: core.remote,
                bytes,
            }];
        }
        Vec::new()
    }

    fn build_request(
        &mut self,
        core: &SaCore,
        e: &Established,
        req: Request,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Option<(ExchangeType, Vec<Payload>, InFlight)> {
        Some(match req {
            Request::Liveness => (ExchangeType::INFORMATIONAL, Vec::new(), InFlight::Liveness),
            Request::AuthLifetime => (
                ExchangeType::INFORMATIONAL,
                vec![e.auth.notify(now)?],
                InFlight::AuthLifetime,
            ),
            Request::DeleteChild { inbound_spi } => (
                ExchangeType::INFORMATIONAL,
                vec![Payload::Delete(DeletePayload {
                    protocol: ProtocolId::ESP,
                    spi_size: 4,
                    spis: vec![inbound_spi.to_be_bytes().to_vec()],
                })],
                InFlight::DeleteChild { inbound_spi },
            ),
            Request::RekeyChild { old_inbound } => {
                let old = e
                    .children
                    .iter()
                    .find(|c| c.inbound_spi == old_inbound && !c.rekeyed)?;
                let vip = e.vip?;
                let new_inbound = self.new_inbound_spi(rng.as_rngcore());
                let ni = our_nonce(rng);
                let dh = self.cfg.esp_pfs.map(|g| DhPrivate::generate(g, rng));
                let mut payloads = vec![
                    Payload::Notify(NotifyPayload {
                        protocol: ProtocolId::ESP,
                        spi: old_inbound.to_be_bytes().to_vec(),
                        notify_type: NotifyType::REKEY_SA,
                        data: Vec::new(),
                    }),
                    Payload::Sa(vec![self.cfg.esp.proposal(
                        1,
                        new_inbound,
                        self.cfg.esp_pfs,
                        EsnTransform::NoEsn,
                    )]),
                    Payload::Nonce(ni.clone()),
                ];
                if let Some(dh) = &dh {
                    payloads.push(Payload::Ke(KePayload {
                        group: dh.group().id(),
                        data: dh.public_value().to_vec(),
                    }));
                }
                // We initiate this exchange: TSi is our side, TSr the client (§2.9).
                payloads.push(Payload::TsI(
                    old.local_ts.iter().map(|r| selector(*r)).collect(),
                ));
                payloads.push(Payload::TsR(vec![selector(Ipv4Range::single(vip))]));
                debug!(remote = %core.remote, spi_in = format_args!("{old_inbound:08x}"), "rekeying a Child SA the client did not rekey");
                (
                    ExchangeType::CREATE_CHILD_SA,
                    payloads,
                    InFlight::RekeyChild(OurRekey {
                        old_inbound,
                        new_inbound,
                        dh,
                        ni,
                        local_ts: old.local_ts.clone(),
                    }),
                )
            }
        })
    }

    /// A response to one of our requests: nothing changes unless it authenticates.
    pub(crate) fn our_response(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        rx: Received<'_>,
    ) -> Vec<Action> {
        let Received {
            bytes,
            header,
            remote,
            ..
        } = rx;
        let Some(IkeSa {
            core,
            state: SaState::Established(e),
        }) = self.sas.get(&header.spi_r)
        else {
            return Vec::new();
        };
        if core.spi_i != header.spi_i
            || e.pending.as_ref().map(|p| p.message_id) != Some(header.message_id)
        {
            debug!(%remote, "dropping a response we are not waiting for");
            return Vec::new();
        }
        let Ok(msg) = Message::parse(bytes) else {
            return Vec::new();
        };
        let inner = match core.sk.open(bytes, &msg) {
            Ok(Ok(inner)) => inner,
            Ok(Err(err)) => {
                // Authentic but undecodable: the exchange is over, with nothing to apply.
                debug!(%remote, "our request's answer does not parse: {err}");
                Vec::new()
            }
            Err(why) => {
                self.refusals
                    .record(now, remote.ip(), Refusal::Unauthenticated, || {
                        format!("response: {why:?}")
                    });
                return Vec::new();
            }
        };
        let Some(IkeSa {
            mut core,
            state: SaState::Established(mut e),
        }) = self.sas.remove(&header.spi_r)
        else {
            return Vec::new();
        };
        core.last_activity = now;
        let mut actions = Vec::new();
        if let Some(p) = e.pending.take() {
            match p.state {
                InFlight::Liveness | InFlight::AuthLifetime => {}
                InFlight::DeleteChild { inbound_spi } => {
                    // The SPI is free now, whether its Child SA was installed or not (a
                    // redundant rekey of ours, §2.8.1).
                    self.inbound_spis.remove(&inbound_spi);
                    if let Some(i) = e.children.iter().position(|c| c.inbound_spi == inbound_spi) {
                        e.children.remove(i);
                        actions.push(Action::DeleteChild { inbound_spi });
                    }
                }
                InFlight::RekeyChild(rekey) => {
                    actions.extend(self.finish_rekey(now, rng, &core, &mut e, &inner, rekey));
                }
            }
        }
        actions.extend(self.send_next(&core, &mut e, now, rng));
        self.put_back(IkeSa {
            core,
            state: SaState::Established(e),
        });
        actions
    }

    fn finish_rekey(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        core: &SaCore,
        e: &mut Established,
        inner: &[Payload],
        rekey: OurRekey,
    ) -> Vec<Action> {
        let OurRekey {
            old_inbound,
            new_inbound,
            dh,
            ni,
            local_ts,
        } = rekey;
        let fail = |this: &mut Self, why: &str| {
            warn!(remote = %core.remote, "our Child SA rekey failed: {why}");
            this.inbound_spis.remove(&new_inbound);
            Vec::new()
        };
        if let Some(n) = inner.error_notify() {
            return fail(self, &format!("{:?}", n.notify_type));
        }
        let (Some(proposals), Some(nr), Some(vip)) = (inner.sa(), inner.nonce(), e.vip) else {
            return fail(self, "response without SA or Nonce");
        };
        if check_nonce(core.suite.prf, nr).is_err() {
            return fail(self, "nonce length");
        }
        let Ok(chosen) = self.cfg.esp.choose(proposals, Some(self.cfg.esp_pfs)) else {
            return fail(self, "the client chose another proposal");
        };
        let g_ir = match (&dh, inner.ke()) {
            (Some(dh), Some(ke)) if ke.group == dh.group().id() => match dh.shared_secret(&ke.data)
            {
                Ok(g) => Some(g),
                Err(_) => return fail(self, "invalid KE"),
            },
            (None, _) => None,
            _ => return fail(self, "KE missing or of another group"),
        };
        let Some(old) = e.children.iter().position(|c| c.inbound_spi == old_inbound) else {
            return fail(self, "the old Child SA went away meanwhile");
        };
        if e.children.len() >= 2 * self.cfg.limits.child_sas_per_ike_sa {
            return fail(self, "Child SA limit of the IKE SA reached");
        }
        if e.children[old].rekeyed {
            // §2.8.1 simplified: the client rekeyed the same SA meanwhile; ours is redundant.
            e.outbox.push_back(Request::DeleteChild {
                inbound_spi: new_inbound,
            });
            return Vec::new();
        }
        let spec = self.new_child(
            now,
            rng,
            core,
            e,
            NewChild {
                inbound_spi: new_inbound,
                outbound_spi: chosen.peer_spi,
                local_ts,
                g_ir: g_ir.as_ref().map(|g| g.expose()),
                nonces: (&ni, nr),
                we_initiated: true,
            },
        );
        debug_assert_eq!(spec.client_vip, vip);
        e.children[old].rekeyed = true;
        self.counters.child_rekeys += 1;
        e.outbox.push_back(Request::DeleteChild {
            inbound_spi: old_inbound,
        });
        info!(
            remote = %core.remote, spi_in = format_args!("{new_inbound:08x}"),
            spi_out = format_args!("{:08x}", chosen.peer_spi), "Child SA rekeyed by us"
        );
        vec![Action::InstallChild(Box::new(spec))]
    }

    /// An INFORMATIONAL DELETE of the IKE SA, sent without waiting for the answer; `None`
    /// (logged) if it cannot be sealed.
    pub(crate) fn delete_ike_message(
        &self,
        core: &SaCore,
        e: &Established,
        rng: &mut dyn CryptoRngCore,
    ) -> Option<Action> {
        let header = Header {
            spi_i: core.spi_i,
            spi_r: core.spi_r,
            next_payload: PayloadType::SK,
            version: IKEV2_VERSION,
            exchange: ExchangeType::INFORMATIONAL,
            flags: 0,
            message_id: e.our_next_id,
            length: 0,
        };
        let delete = Payload::Delete(DeletePayload {
            protocol: ProtocolId::IKE,
            spi_size: 0,
            spis: vec![],
        });
        let bytes = core
            .sk
            .seal(header, &[delete], rng.as_rngcore())
            .map_err(|err| warn!(remote = %core.remote, "cannot encode the IKE SA's DELETE: {err}"))
            .ok()?;
        Some(Action::Send {
            local: core.local,
            remote: core.remote,
            bytes,
        })
    }
}

//! INFORMATIONAL requests from the initiator (RFC 7296 §1.4): liveness checks (empty),
//! DELETE of the IKE SA or of Child SAs (answered with our SPIs of the same pairs, §1.4.1),
//! MOBIKE address updates (RFC 4555).
//!
//! Invariant: the answer is bounded whatever the request holds: one Delete payload with at
//! most the SAs we have, NAT detection once, and at most one COOKIE2 of at most
//! [`COOKIE2_MAX`] octets echoed.

use tracing::info;

use crate::wire::{DeletePayload, NotifyType, Payload, PayloadList, ProtocolId};

use super::id_to_string;
use super::nat::nat_detection;
use super::responder::{Established, Handled, Responder, SaCore};
use super::Action;

/// RFC 4555 §3.5: COOKIE2 is 8 to 64 octets.
const COOKIE2_MAX: usize = 64;

impl Responder {
    pub(crate) fn informational(
        &mut self,
        core: &mut SaCore,
        e: &mut Established,
        inner: &[Payload],
    ) -> Handled {
        let who = id_to_string(&e.identity);
        if inner.deletes().any(|d| d.protocol == ProtocolId::IKE) {
            info!(remote = %core.remote, identity = %who, "peer deleted the IKE SA");
            return Handled::closing(Vec::new(), Vec::new());
        }
        let mut ours = Vec::new();
        let mut actions = Vec::new();
        let spis = inner
            .deletes()
            .filter(|d| d.protocol == ProtocolId::ESP)
            .flat_map(|d| &d.spis)
            .filter_map(|spi| <[u8; 4]>::try_from(spi.as_slice()).ok())
            .map(u32::from_be_bytes);
        for spi in spis {
            if let Some(i) = e.children.iter().position(|c| c.outbound_spi == spi) {
                let child = e.children.remove(i);
                self.inbound_spis.remove(&child.inbound_spi);
                info!(remote = %core.remote, identity = %who, spi_in = format_args!("{:08x}", child.inbound_spi), "peer deleted a Child SA");
                ours.push(child.inbound_spi.to_be_bytes().to_vec());
                actions.push(Action::DeleteChild {
                    inbound_spi: child.inbound_spi,
                });
            }
        }
        let mut response = mobike_answer(core, e, inner, self.cfg.force_udp_encap);
        if !ours.is_empty() {
            response.push(Payload::Delete(DeletePayload {
                protocol: ProtocolId::ESP,
                spi_size: 4,
                spis: ours,
            }));
        }
        Handled::reply(response, actions)
    }
}

/// MOBIKE (RFC 4555 §3.5): the request's addresses were adopted when it authenticated; the
/// answer carries NAT detection for them when asked (claiming a NAT when
/// `force_udp_encap`, as in IKE_SA_INIT: `super::nat`), and echoes COOKIE2 (§3.6).
fn mobike_answer(
    core: &SaCore,
    e: &Established,
    inner: &[Payload],
    force_udp_encap: bool,
) -> Vec<Payload> {
    let mut out = Vec::new();
    if e.peer_mobike && inner.has_notify(NotifyType::UPDATE_SA_ADDRESSES) {
        info!(remote = %core.remote, "client moved (MOBIKE)");
        if inner.has_notify(NotifyType::NAT_DETECTION_SOURCE_IP) {
            out.extend(nat_detection(
                (core.spi_i, core.spi_r),
                core.local,
                core.remote,
                force_udp_encap,
            ));
        }
    }
    if let Some(c) = inner
        .notify(NotifyType::COOKIE2)
        .filter(|c| c.data.len() <= COOKIE2_MAX)
    {
        out.push(Payload::notify(NotifyType::COOKIE2, c.data.clone()));
    }
    out
}

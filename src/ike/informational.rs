//! INFORMATIONAL requests from the initiator (RFC 7296 §1.4): liveness checks (empty),
//! DELETE of the IKE SA or of Child SAs (answered with our SPIs of the same pairs, §1.4.1).

use tracing::info;

use crate::wire::{DeletePayload, NotifyType, Payload, ProtocolId};

use super::nat::nat_hash;

use super::id_to_string;
use super::responder::{Handled, IkeSa, Responder};
use super::Action;

impl Responder {
    pub(crate) fn informational(&mut self, sa: &mut IkeSa, inner: &[Payload]) -> Handled {
        let who = sa.identity.as_ref().map(id_to_string).unwrap_or_default();
        let mut ours = Vec::new();
        let mut actions = Vec::new();
        for p in inner {
            let Payload::Delete(d) = p else { continue };
            if d.protocol == ProtocolId::IKE {
                info!(remote = %sa.remote, identity = %who, "peer deleted the IKE SA");
                return Handled::closing(Vec::new(), actions);
            }
            if d.protocol != ProtocolId::ESP {
                continue;
            }
            for spi in &d.spis {
                let Ok(spi) = <[u8; 4]>::try_from(spi.as_slice()).map(u32::from_be_bytes) else {
                    continue;
                };
                if let Some(i) = sa.children.iter().position(|c| c.outbound_spi == spi) {
                    let child = sa.children.remove(i);
                    self.inbound_spis.remove(&child.inbound_spi);
                    info!(remote = %sa.remote, identity = %who, spi_in = format_args!("{:08x}", child.inbound_spi), "peer deleted a Child SA");
                    ours.push(child.inbound_spi.to_be_bytes().to_vec());
                    actions.push(Action::DeleteChild {
                        inbound_spi: child.inbound_spi,
                    });
                }
            }
        }
        let mut response = self.mobike_answer(sa, inner);
        if !ours.is_empty() {
            response.push(Payload::Delete(DeletePayload {
                protocol: ProtocolId::ESP,
                spi_size: 4,
                spis: ours,
            }));
        }
        Handled::reply(response, actions)
    }

    /// MOBIKE (RFC 4555 §3.5): the request's addresses were adopted when it authenticated;
    /// the answer carries NAT detection for them when asked, and echoes COOKIE2 (§3.6).
    fn mobike_answer(&self, sa: &IkeSa, inner: &[Payload]) -> Vec<Payload> {
        let mut out = Vec::new();
        let has = |t: NotifyType| {
            inner
                .iter()
                .any(|p| matches!(p, Payload::Notify(n) if n.notify_type == t))
        };
        if sa.peer_mobike && has(NotifyType::UPDATE_SA_ADDRESSES) {
            info!(remote = %sa.remote, "client moved (MOBIKE)");
            if has(NotifyType::NAT_DETECTION_SOURCE_IP) {
                out.push(Payload::notify(
                    NotifyType::NAT_DETECTION_SOURCE_IP,
                    nat_hash(sa.spi_i, sa.spi_r, sa.local),
                ));
                out.push(Payload::notify(
                    NotifyType::NAT_DETECTION_DESTINATION_IP,
                    nat_hash(sa.spi_i, sa.spi_r, sa.remote),
                ));
            }
        }
        for p in inner {
            if let Payload::Notify(n) = p {
                if n.notify_type == NotifyType::COOKIE2 {
                    out.push(Payload::notify(NotifyType::COOKIE2, n.data.clone()));
                }
            }
        }
        out
    }
}

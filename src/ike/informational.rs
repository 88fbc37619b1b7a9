//! INFORMATIONAL requests from the initiator (RFC 7296 §1.4): liveness checks (empty),
//! DELETE of the IKE SA or of Child SAs (answered with our SPIs of the same pairs, §1.4.1).

use tracing::info;

use crate::wire::{DeletePayload, Payload, ProtocolId};

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
                return Handled {
                    response: Vec::new(),
                    actions,
                    keep: false,
                };
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
        let response = if ours.is_empty() {
            Vec::new()
        } else {
            vec![Payload::Delete(DeletePayload {
                protocol: ProtocolId::ESP,
                spi_size: 4,
                spis: ours,
            })]
        };
        Handled {
            response,
            actions,
            keep: true,
        }
    }
}

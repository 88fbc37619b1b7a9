//! Choosing proposals from SA payloads (RFC 7296 §2.7, §3.3) and building the ones we send.
//!
//! We accept exactly the configured suite: a proposal is chosen when each of its transform
//! types offers the configured algorithm. The reply carries one transform of each type.

use crate::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use crate::wire::{Attribute, AttributeValue, Proposal, ProtocolId, Transform, TransformType};

use super::IkeError;

/// KEY_LENGTH transform attribute (RFC 7296 §3.3.5).
const ATTR_KEY_LENGTH: u16 = 14;
/// ESN transform IDs (RFC 7296 §3.3.2): no extended sequence numbers.
const ESN_NONE: u16 = 0;
/// DH transform ID NONE (RFC 7296 §3.3.2).
const DH_NONE: u16 = 0;

/// The IKE SA's algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeSuite {
    pub encr: EncrAlg,
    pub integ: IntegAlg,
    pub prf: PrfAlg,
    pub dh: DhGroup,
}

/// A Child SA's algorithms (ESP, no ESN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspSuite {
    pub encr: EncrAlg,
    pub integ: IntegAlg,
}

/// The proposal chosen from an IKE SA payload: its number, the peer's SPI (empty in
/// IKE_SA_INIT, 8 bytes in a rekey).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChosenIke {
    pub number: u8,
    pub peer_spi: Vec<u8>,
}

/// The proposal chosen from an ESP SA payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChosenEsp {
    pub number: u8,
    pub peer_spi: u32,
    /// Whether the proposal had an ESN transform; the answer mirrors it.
    pub esn: EsnTransform,
}

/// Whether an ESP proposal we send carries an ESN transform (RFC 7296 §3.3.2); when it does,
/// it says "no extended sequence numbers", the only kind we support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EsnTransform {
    Omitted,
    NoEsn,
}

impl IkeSuite {
    /// The first proposal offering every algorithm of this suite.
    pub(crate) fn choose(&self, proposals: &[Proposal]) -> Result<ChosenIke, IkeError> {
        proposals
            .iter()
            .filter(|p| p.protocol == ProtocolId::IKE)
            .find(|p| {
                offers(p, TransformType::ENCR, |t| {
                    EncrAlg::from_ike(t.id, t.key_length()) == Some(self.encr)
                }) && offers(p, TransformType::INTEG, |t| {
                    IntegAlg::from_ike(t.id) == Some(self.integ)
                }) && offers(p, TransformType::PRF, |t| {
                    PrfAlg::from_ike(t.id) == Some(self.prf)
                }) && offers(p, TransformType::DH, |t| {
                    DhGroup::from_id(t.id) == Some(self.dh)
                })
            })
            .map(|p| ChosenIke {
                number: p.number,
                peer_spi: p.spi.clone(),
            })
            .ok_or(IkeError::NoProposalChosen)
    }

    /// The single-proposal SA we answer with (or offer, as initiator).
    pub(crate) fn proposal(&self, number: u8, spi: Vec<u8>) -> Proposal {
        Proposal {
            number,
            protocol: ProtocolId::IKE,
            spi,
            transforms: vec![
                encr_transform(self.encr),
                Transform {
                    transform_type: TransformType::PRF,
                    id: self.prf.transform_id(),
                    attributes: vec![],
                },
                Transform {
                    transform_type: TransformType::INTEG,
                    id: self.integ.transform_id(),
                    attributes: vec![],
                },
                Transform {
                    transform_type: TransformType::DH,
                    id: self.dh.id(),
                    attributes: vec![],
                },
            ],
        }
    }
}

impl EspSuite {
    /// The first ESP proposal offering this suite. `pfs` is the DH group a CREATE_CHILD_SA
    /// must use (`None` in IKE_AUTH, where DH transforms are ignored, §1.2).
    pub(crate) fn choose(
        &self,
        proposals: &[Proposal],
        pfs: Option<Option<DhGroup>>,
    ) -> Result<ChosenEsp, IkeError> {
        proposals
            .iter()
            .filter(|p| p.protocol == ProtocolId::ESP && p.spi.len() == 4)
            .find(|p| {
                offers(p, TransformType::ENCR, |t| {
                    EncrAlg::from_ike(t.id, t.key_length()) == Some(self.encr)
                }) && offers(p, TransformType::INTEG, |t| {
                    IntegAlg::from_ike(t.id) == Some(self.integ)
                }) && (!has(p, TransformType::ESN)
                    || offers(p, TransformType::ESN, |t| t.id == ESN_NONE))
                    && match pfs {
                        None => true,
                        Some(Some(g)) => {
                            offers(p, TransformType::DH, |t| DhGroup::from_id(t.id) == Some(g))
                        }
                        Some(None) => {
                            !has(p, TransformType::DH)
                                || offers(p, TransformType::DH, |t| t.id == DH_NONE)
                        }
                    }
            })
            .map(|p| ChosenEsp {
                number: p.number,
                peer_spi: u32::from_be_bytes([p.spi[0], p.spi[1], p.spi[2], p.spi[3]]),
                esn: if has(p, TransformType::ESN) {
                    EsnTransform::NoEsn
                } else {
                    EsnTransform::Omitted
                },
            })
            .ok_or(IkeError::NoProposalChosen)
    }

    /// An ESP proposal with our SPI; `dh` adds a DH transform (PFS rekeys).
    pub(crate) fn proposal(
        &self,
        number: u8,
        spi: u32,
        dh: Option<DhGroup>,
        esn: EsnTransform,
    ) -> Proposal {
        let mut transforms = vec![
            encr_transform(self.encr),
            Transform {
                transform_type: TransformType::INTEG,
                id: self.integ.transform_id(),
                attributes: vec![],
            },
        ];
        if let Some(g) = dh {
            transforms.push(Transform {
                transform_type: TransformType::DH,
                id: g.id(),
                attributes: vec![],
            });
        }
        if esn == EsnTransform::NoEsn {
            transforms.push(Transform {
                transform_type: TransformType::ESN,
                id: ESN_NONE,
                attributes: vec![],
            });
        }
        Proposal {
            number,
            protocol: ProtocolId::ESP,
            spi: spi.to_be_bytes().to_vec(),
            transforms,
        }
    }
}

fn encr_transform(encr: EncrAlg) -> Transform {
    Transform {
        transform_type: TransformType::ENCR,
        id: encr.transform_id(),
        attributes: encr
            .key_length_attr()
            .map(|bits| Attribute {
                attr_type: ATTR_KEY_LENGTH,
                value: AttributeValue::Tv(bits),
            })
            .into_iter()
            .collect(),
    }
}

fn has(p: &Proposal, ty: TransformType) -> bool {
    p.transforms.iter().any(|t| t.transform_type == ty)
}

fn offers(p: &Proposal, ty: TransformType, ok: impl Fn(&Transform) -> bool) -> bool {
    p.transforms
        .iter()
        .filter(|t| t.transform_type == ty)
        .any(ok)
}

/// Whether any IKE proposal offers `group` (used to tell INVALID_KE_PAYLOAD from
/// NO_PROPOSAL_CHOSEN, §1.2).
pub(crate) fn offers_group(proposals: &[Proposal], group: DhGroup) -> bool {
    proposals
        .iter()
        .any(|p| offers(p, TransformType::DH, |t| t.id == group.id()))
}

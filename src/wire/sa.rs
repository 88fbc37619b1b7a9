//! Security Association payload body (RFC 7296 §3.3): proposals, transforms, attributes;
//! and the transform IDs of the IANA "IKEv2 Transform Type N" registries.
//!
//! Invariants: every proposal and transform is parsed from a reader bounded by its own
//! Length and must consume it exactly; the "Last Substruc" markers (0 / 2 / 3) and the
//! "Num Transforms" count must agree with what is actually present; attribute lengths
//! stay inside their transform. Transform types, IDs and attribute types are data.

use super::reader::{count, with_u16_length, Counted, Reader};
use super::{ProtocolId, TransformType, WireError};

/// One proposal of an SA payload (RFC 7296 §3.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal Num: 1 for the first, +1 for each further one (RFC 7296 §3.3.1).
    pub number: u8,
    pub protocol: ProtocolId,
    /// Empty in IKE_SA_INIT, 8 octets for an IKE rekey, 4 for ESP/AH.
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

/// One transform of a proposal (RFC 7296 §3.3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    pub transform_type: TransformType,
    /// Transform ID: see [`encr`], [`prf`], [`integ`], [`dh`], [`esn`].
    pub id: u16,
    pub attributes: Vec<Attribute>,
}

/// A transform attribute (RFC 7296 §3.3.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute Type without the AF bit (emit masks it to 15 bits).
    pub attr_type: u16,
    pub value: AttributeValue,
}

/// The two attribute encodings (RFC 7296 §3.3.5: AF = 1 is TV, AF = 0 is TLV).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValue {
    Tv(u16),
    Tlv(Vec<u8>),
}

/// Encryption algorithm transform IDs (RFC 7296 §3.3.2, IANA Transform Type 1).
pub mod encr {
    /// RFC 2405
    pub const DES: u16 = 0x0002;
    /// RFC 2451
    pub const TRIPLE_DES: u16 = 0x0003;
    /// RFC 2410
    pub const NULL: u16 = 0x000b;
    /// RFC 3602 (key length attribute required)
    pub const AES_CBC: u16 = 0x000c;
    /// RFC 5930
    pub const AES_CTR: u16 = 0x000d;
    /// RFC 5282
    pub const AES_GCM_16: u16 = 0x0014;
    /// RFC 7634
    pub const CHACHA20_POLY1305: u16 = 0x001c;
}

/// Pseudorandom function transform IDs (RFC 7296 §3.3.2, IANA Transform Type 2).
pub mod prf {
    /// RFC 2104
    pub const HMAC_MD5: u16 = 0x0001;
    /// RFC 2104
    pub const HMAC_SHA1: u16 = 0x0002;
    /// RFC 4434
    pub const AES128_XCBC: u16 = 0x0004;
    /// RFC 4868
    pub const HMAC_SHA2_256: u16 = 0x0005;
    /// RFC 4868
    pub const HMAC_SHA2_384: u16 = 0x0006;
    /// RFC 4868
    pub const HMAC_SHA2_512: u16 = 0x0007;
    /// RFC 4615
    pub const AES128_CMAC: u16 = 0x0008;
}

/// Integrity algorithm transform IDs (RFC 7296 §3.3.2, IANA Transform Type 3).
pub mod integ {
    /// RFC 7296 §3.3.2 (with AEAD ciphers)
    pub const NONE: u16 = 0x0000;
    /// RFC 2403
    pub const HMAC_MD5_96: u16 = 0x0001;
    /// RFC 2404
    pub const HMAC_SHA1_96: u16 = 0x0002;
    /// RFC 3566
    pub const AES_XCBC_96: u16 = 0x0005;
    /// RFC 4494
    pub const AES_CMAC_96: u16 = 0x0008;
    /// RFC 4868
    pub const HMAC_SHA2_256_128: u16 = 0x000c;
    /// RFC 4868
    pub const HMAC_SHA2_384_192: u16 = 0x000d;
    /// RFC 4868
    pub const HMAC_SHA2_512_256: u16 = 0x000e;
}

/// Diffie-Hellman group transform IDs (RFC 7296 §3.3.2, IANA Transform Type 4).
pub mod dh {
    /// RFC 7296 §3.3.2 (no PFS in a Child SA proposal)
    pub const NONE: u16 = 0x0000;
    /// RFC 2409 §6.1, group 1
    pub const MODP_768: u16 = 0x0001;
    /// RFC 2409 §6.2, group 2
    pub const MODP_1024: u16 = 0x0002;
    /// RFC 3526 §2, group 5
    pub const MODP_1536: u16 = 0x0005;
    /// RFC 3526 §3, group 14
    pub const MODP_2048: u16 = 0x000e;
    /// RFC 3526 §4, group 15
    pub const MODP_3072: u16 = 0x000f;
    /// RFC 3526 §5, group 16
    pub const MODP_4096: u16 = 0x0010;
    /// RFC 5903 §3.1, group 19
    pub const ECP_256: u16 = 0x0013;
    /// RFC 5903 §3.2, group 20
    pub const ECP_384: u16 = 0x0014;
    /// RFC 5114 §2.1, group 22
    pub const MODP_1024_160: u16 = 0x0016;
    /// RFC 5114 §2.2, group 23
    pub const MODP_2048_224: u16 = 0x0017;
    /// RFC 5114 §2.3, group 24
    pub const MODP_2048_256: u16 = 0x0018;
    /// RFC 8031, group 31
    pub const CURVE25519: u16 = 0x001f;
}

/// Extended Sequence Numbers transform IDs (RFC 7296 §3.3.2, IANA Transform Type 5).
pub mod esn {
    pub const NO: u16 = 0x0000;
    pub const YES: u16 = 0x0001;
}

impl Proposal {
    /// The proposal's transforms of one type, in order.
    pub fn transforms_of(&self, ty: TransformType) -> impl Iterator<Item = &Transform> {
        self.transforms
            .iter()
            .filter(move |t| t.transform_type == ty)
    }

    /// RFC 7296 §3.3.1: Proposal Num, Protocol ID, SPI Size, Num Transforms, SPI,
    /// Transforms; `r` is bounded by the Proposal Length.
    fn parse(r: &mut Reader<'_>) -> Result<Proposal, WireError> {
        let number = r.u8()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = r.u8()?;
        let count = r.u8()?;
        let spi = r
            .take_declared(usize::from(spi_size), "proposal SPI")?
            .to_vec();
        let mut transforms = Vec::new();
        for i in 1..=count {
            let marker = r.u8()?;
            let expected = if i == count { LAST } else { MORE_TRANSFORMS };
            if marker != expected {
                return Err(WireError::InvalidSyntax(
                    "transform Last Substruc disagrees with Num Transforms",
                ));
            }
            r.take(1)?;
            let length = usize::from(r.u16()?);
            let mut body = r.nested(length, SUBSTRUCT_HEADER_LEN, "transform")?;
            transforms.push(Transform::parse(&mut body)?);
            body.finish()?;
        }
        Ok(Proposal {
            number,
            protocol,
            spi,
            transforms,
        })
    }
}

impl Transform {
    /// Key Length attribute type (RFC 7296 §3.3.5), always TV, in bits.
    pub const KEY_LENGTH: u16 = 0x000e;

    pub fn new(transform_type: TransformType, id: u16) -> Transform {
        Transform {
            transform_type,
            id,
            attributes: Vec::new(),
        }
    }

    /// The Key Length attribute's value in bits, if the transform has one (TV form).
    pub fn key_length(&self) -> Option<u16> {
        self.attributes
            .iter()
            .find(|a| a.attr_type == Self::KEY_LENGTH)
            .and_then(|a| match a.value {
                AttributeValue::Tv(bits) => Some(bits),
                AttributeValue::Tlv(_) => None,
            })
    }

    /// This transform with its Key Length attribute set to `bits` (replacing any).
    pub fn with_key_length(mut self, bits: u16) -> Transform {
        self.attributes.retain(|a| a.attr_type != Self::KEY_LENGTH);
        self.attributes.push(Attribute {
            attr_type: Self::KEY_LENGTH,
            value: AttributeValue::Tv(bits),
        });
        self
    }

    /// RFC 7296 §3.3.2: Transform Type, RESERVED, Transform ID, Attributes; `r` is bounded
    /// by the Transform Length.
    fn parse(r: &mut Reader<'_>) -> Result<Transform, WireError> {
        let transform_type = TransformType(r.u8()?);
        r.take(1)?;
        let id = r.u16()?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            attributes.push(Attribute::parse(r)?);
        }
        Ok(Transform {
            transform_type,
            id,
            attributes,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        out.extend_from_slice(&[self.transform_type.0, 0x00]);
        out.extend_from_slice(&self.id.to_be_bytes());
        for attribute in &self.attributes {
            attribute.emit(out)?;
        }
        Ok(())
    }
}

impl Attribute {
    /// RFC 7296 §3.3.5: AF|Attribute Type, then the value (AF = 1) or a length and the
    /// value (AF = 0).
    fn parse(r: &mut Reader<'_>) -> Result<Attribute, WireError> {
        let raw_type = r.u16()?;
        let attr_type = raw_type & !ATTRIBUTE_FORMAT;
        let value = if raw_type & ATTRIBUTE_FORMAT != 0 {
            AttributeValue::Tv(r.u16()?)
        } else {
            let length = usize::from(r.u16()?);
            AttributeValue::Tlv(r.take_declared(length, "transform attribute")?.to_vec())
        };
        Ok(Attribute { attr_type, value })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let attr_type = self.attr_type & !ATTRIBUTE_FORMAT;
        match &self.value {
            AttributeValue::Tv(value) => {
                out.extend_from_slice(&(attr_type | ATTRIBUTE_FORMAT).to_be_bytes());
                out.extend_from_slice(&value.to_be_bytes());
            }
            AttributeValue::Tlv(value) => {
                out.extend_from_slice(&attr_type.to_be_bytes());
                with_u16_length(out, Counted::AfterField, "transform attribute", |out| {
                    out.extend_from_slice(value);
                    Ok(())
                })?;
            }
        }
        Ok(())
    }
}

/// "Last Substruc" of the last proposal or transform (RFC 7296 §3.3.1, §3.3.2).
const LAST: u8 = 0x00;
/// "Last Substruc" of a proposal followed by another (RFC 7296 §3.3.1).
const MORE_PROPOSALS: u8 = 0x02;
/// "Last Substruc" of a transform followed by another (RFC 7296 §3.3.2).
const MORE_TRANSFORMS: u8 = 0x03;
/// Last Substruc, RESERVED, Length: the header of proposals and transforms.
const SUBSTRUCT_HEADER_LEN: usize = 4;
/// AF bit of an attribute's type field (RFC 7296 §3.3.5).
const ATTRIBUTE_FORMAT: u16 = 0x8000;

/// The body of an SA payload: one or more proposals (RFC 7296 §3.3).
pub(crate) fn parse_proposals(r: &mut Reader<'_>) -> Result<Vec<Proposal>, WireError> {
    if r.is_empty() {
        return Err(WireError::InvalidSyntax("SA payload without proposals"));
    }
    let mut proposals = Vec::new();
    while !r.is_empty() {
        let marker = r.u8()?;
        r.take(1)?;
        let length = usize::from(r.u16()?);
        let mut body = r.nested(length, SUBSTRUCT_HEADER_LEN, "proposal")?;
        proposals.push(Proposal::parse(&mut body)?);
        body.finish()?;
        let expected = if r.is_empty() { LAST } else { MORE_PROPOSALS };
        if marker != expected {
            return Err(WireError::InvalidSyntax(
                "proposal Last Substruc disagrees with the SA payload's length",
            ));
        }
    }
    Ok(proposals)
}

/// A proposal with more than 255 transforms or an SPI over 255 octets (one-octet fields,
/// RFC 7296 §3.3.1) is [`WireError::TooLong`].
pub(crate) fn emit_proposals(proposals: &[Proposal], out: &mut Vec<u8>) -> Result<(), WireError> {
    for (i, proposal) in proposals.iter().enumerate() {
        let start = out.len();
        let marker = if i + 1 == proposals.len() {
            LAST
        } else {
            MORE_PROPOSALS
        };
        out.extend_from_slice(&[marker, 0x00]);
        with_u16_length(out, Counted::From(start), "proposal", |out| {
            out.extend_from_slice(&[
                proposal.number,
                proposal.protocol.0,
                count(proposal.spi.len(), "proposal SPI Size")?,
                count(proposal.transforms.len(), "Num Transforms")?,
            ]);
            out.extend_from_slice(&proposal.spi);
            for (j, transform) in proposal.transforms.iter().enumerate() {
                let start = out.len();
                let marker = if j + 1 == proposal.transforms.len() {
                    LAST
                } else {
                    MORE_TRANSFORMS
                };
                out.extend_from_slice(&[marker, 0x00]);
                with_u16_length(out, Counted::From(start), "transform", |out| {
                    transform.emit(out)
                })?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

//! Configuration payload body (RFC 7296 §3.15, §3.15.1).
//!
//! Invariants: each attribute's Length stays inside the payload and the attributes fill
//! it exactly; attribute types are data (the reserved high bit is ignored on receipt and
//! sent as zero), and values are not interpreted here: an empty INTERNAL_IP4_ADDRESS is
//! how a client asks for one (RFC 7296 §3.15.1), its length is the responder's to check.

use super::reader::{with_u16_length, Counted, Reader};
use super::WireError;

/// Configuration payload (RFC 7296 §3.15).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpPayload {
    pub cfg_type: u8,
    pub attributes: Vec<CpAttribute>,
}

/// One configuration attribute (RFC 7296 §3.15.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpAttribute {
    /// Attribute Type, 15 bits.
    pub attr_type: u16,
    pub value: Vec<u8>,
}

impl CpPayload {
    /// RFC 7296 §3.15
    pub const CFG_REQUEST: u8 = 0x01;
    /// RFC 7296 §3.15
    pub const CFG_REPLY: u8 = 0x02;
    /// RFC 7296 §3.15
    pub const CFG_SET: u8 = 0x03;
    /// RFC 7296 §3.15
    pub const CFG_ACK: u8 = 0x04;

    /// The values of every attribute of one type, in order.
    pub fn values_of(&self, attr_type: u16) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter(move |a| a.attr_type == attr_type)
            .map(|a| a.value.as_slice())
    }

    /// RFC 7296 §3.15: CFG Type, RESERVED (3), attributes; `r` is bounded by the payload.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<CpPayload, WireError> {
        let cfg_type = r.u8()?;
        r.take(3)?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            let attr_type = r.u16()? & ATTR_TYPE_MASK;
            let length = usize::from(r.u16()?);
            let value = r.take_declared(length, "configuration attribute")?.to_vec();
            attributes.push(CpAttribute { attr_type, value });
        }
        Ok(CpPayload {
            cfg_type,
            attributes,
        })
    }

    /// An attribute value over the 16-bit Length (RFC 7296 §3.15.1) is [`WireError::TooLong`].
    pub(crate) fn emit_body(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        out.extend_from_slice(&[self.cfg_type, 0x00, 0x00, 0x00]);
        for attribute in &self.attributes {
            out.extend_from_slice(&(attribute.attr_type & ATTR_TYPE_MASK).to_be_bytes());
            with_u16_length(out, Counted::AfterField, "configuration attribute", |out| {
                out.extend_from_slice(&attribute.value);
                Ok(())
            })?;
        }
        Ok(())
    }
}

impl CpAttribute {
    /// RFC 7296 §3.15.1
    pub const INTERNAL_IP4_ADDRESS: u16 = 0x0001;
    /// RFC 7296 §3.15.1
    pub const INTERNAL_IP4_NETMASK: u16 = 0x0002;
    /// RFC 7296 §3.15.1
    pub const INTERNAL_IP4_DNS: u16 = 0x0003;
    /// RFC 7296 §3.15.1
    pub const INTERNAL_IP4_NBNS: u16 = 0x0004;
    /// RFC 7296 §3.15.1
    pub const INTERNAL_IP4_DHCP: u16 = 0x0006;
    /// RFC 7296 §3.15.1
    pub const APPLICATION_VERSION: u16 = 0x0007;
    /// RFC 7296 §3.15.1
    pub const INTERNAL_IP6_ADDRESS: u16 = 0x0008;
    /// RFC 7296 §3.15.1
    pub const INTERNAL_IP6_DNS: u16 = 0x000a;
    /// RFC 7296 §3.15.1
    pub const INTERNAL_IP6_DHCP: u16 = 0x000c;
    /// RFC 7296 §3.15.1
    pub const INTERNAL_IP4_SUBNET: u16 = 0x000d;
    /// RFC 7296 §3.15.1
    pub const SUPPORTED_ATTRIBUTES: u16 = 0x000e;
    /// RFC 7296 §3.15.1
    pub const INTERNAL_IP6_SUBNET: u16 = 0x000f;

    pub fn new(attr_type: u16, value: Vec<u8>) -> CpAttribute {
        CpAttribute { attr_type, value }
    }
}

/// The Attribute Type field without its reserved high bit (RFC 7296 §3.15.1).
const ATTR_TYPE_MASK: u16 = 0x7fff;

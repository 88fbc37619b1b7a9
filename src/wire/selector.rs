//! Traffic Selector payload body (RFC 7296 §3.13, §3.13.1).
//!
//! Invariants: the Number of TSs must equal the selectors present, each selector is read
//! from a reader bounded by its Selector Length, IPv4 and IPv6 range selectors must have
//! exactly their fixed length (16 and 40 octets), and unknown TS types are kept as data.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::reader::{count, with_u16_length, Counted, Reader};
use super::WireError;

/// One traffic selector (RFC 7296 §3.13.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrafficSelector {
    /// TS_IPV4_ADDR_RANGE
    Ipv4 {
        /// IP Protocol ID, 0 for any.
        ip_protocol: u8,
        start_port: u16,
        end_port: u16,
        start: Ipv4Addr,
        end: Ipv4Addr,
    },
    /// TS_IPV6_ADDR_RANGE
    Ipv6 {
        ip_protocol: u8,
        start_port: u16,
        end_port: u16,
        start: Ipv6Addr,
        end: Ipv6Addr,
    },
    /// Any other TS Type. `body` is the selector without its TS Type and Selector Length
    /// fields: octet 1 (IP Protocol ID in the known types), then octets 4.. .
    Unknown { ts_type: u8, body: Vec<u8> },
}

impl TrafficSelector {
    /// RFC 7296 §3.13.1
    pub const TS_IPV4_ADDR_RANGE: u8 = 0x07;
    /// RFC 7296 §3.13.1
    pub const TS_IPV6_ADDR_RANGE: u8 = 0x08;

    /// All ports and protocols over an IPv4 range.
    pub fn ipv4_range(start: Ipv4Addr, end: Ipv4Addr) -> TrafficSelector {
        TrafficSelector::Ipv4 {
            ip_protocol: 0,
            start_port: 0,
            end_port: 0xffff,
            start,
            end,
        }
    }

    pub fn ts_type(&self) -> u8 {
        match self {
            TrafficSelector::Ipv4 { .. } => Self::TS_IPV4_ADDR_RANGE,
            TrafficSelector::Ipv6 { .. } => Self::TS_IPV6_ADDR_RANGE,
            TrafficSelector::Unknown { ts_type, .. } => *ts_type,
        }
    }

    /// `r` is bounded by the Selector Length, whose field has been read.
    fn parse(ts_type: u8, octet1: u8, r: &mut Reader<'_>) -> Result<TrafficSelector, WireError> {
        let fixed = |what, len| {
            if r.remaining() + SELECTOR_HEADER_LEN == len {
                Ok(())
            } else {
                Err(WireError::BadLength {
                    what,
                    length: r.remaining() + SELECTOR_HEADER_LEN,
                })
            }
        };
        Ok(match ts_type {
            Self::TS_IPV4_ADDR_RANGE => {
                fixed("IPv4 traffic selector", IPV4_SELECTOR_LEN)?;
                TrafficSelector::Ipv4 {
                    ip_protocol: octet1,
                    start_port: r.u16()?,
                    end_port: r.u16()?,
                    start: Ipv4Addr::from(r.array::<4>()?),
                    end: Ipv4Addr::from(r.array::<4>()?),
                }
            }
            Self::TS_IPV6_ADDR_RANGE => {
                fixed("IPv6 traffic selector", IPV6_SELECTOR_LEN)?;
                TrafficSelector::Ipv6 {
                    ip_protocol: octet1,
                    start_port: r.u16()?,
                    end_port: r.u16()?,
                    start: Ipv6Addr::from(r.array::<16>()?),
                    end: Ipv6Addr::from(r.array::<16>()?),
                }
            }
            _ => {
                let rest = r.rest();
                let mut body = Vec::with_capacity(1 + rest.len());
                body.push(octet1);
                body.extend_from_slice(rest);
                TrafficSelector::Unknown { ts_type, body }
            }
        })
    }

    /// TS Type, IP Protocol ID (octet 1 of an unknown type), the guarded Selector Length,
    /// then the rest of the selector.
    fn emit(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let start = out.len();
        let octet1 = match self {
            TrafficSelector::Ipv4 { ip_protocol, .. }
            | TrafficSelector::Ipv6 { ip_protocol, .. } => *ip_protocol,
            TrafficSelector::Unknown { body, .. } => body.first().copied().unwrap_or(0),
        };
        out.extend_from_slice(&[self.ts_type(), octet1]);
        with_u16_length(out, Counted::From(start), "traffic selector", |out| {
            match self {
                TrafficSelector::Ipv4 {
                    start_port,
                    end_port,
                    start,
                    end,
                    ..
                } => emit_range(
                    out,
                    [*start_port, *end_port],
                    &start.octets(),
                    &end.octets(),
                ),
                TrafficSelector::Ipv6 {
                    start_port,
                    end_port,
                    start,
                    end,
                    ..
                } => emit_range(
                    out,
                    [*start_port, *end_port],
                    &start.octets(),
                    &end.octets(),
                ),
                TrafficSelector::Unknown { body, .. } => {
                    out.extend_from_slice(body.get(1..).unwrap_or_default());
                }
            }
            Ok(())
        })
    }
}

/// Start Port, End Port, Starting Address, Ending Address (RFC 7296 §3.13.1).
fn emit_range(out: &mut Vec<u8>, ports: [u16; 2], first: &[u8], last: &[u8]) {
    for port in ports {
        out.extend_from_slice(&port.to_be_bytes());
    }
    out.extend_from_slice(first);
    out.extend_from_slice(last);
}

/// TS Type, IP Protocol ID (or reserved), Selector Length (RFC 7296 §3.13.1).
const SELECTOR_HEADER_LEN: usize = 4;
/// RFC 7296 §3.13.1: 4 + 2 ports + 2 IPv4 addresses.
const IPV4_SELECTOR_LEN: usize = 16;
/// RFC 7296 §3.13.1: 4 + 2 ports + 2 IPv6 addresses.
const IPV6_SELECTOR_LEN: usize = 40;

/// RFC 7296 §3.13: Number of TSs, RESERVED (3), the selectors.
pub(crate) fn parse_selectors(r: &mut Reader<'_>) -> Result<Vec<TrafficSelector>, WireError> {
    let count = r.u8()?;
    r.take(3)?;
    let mut selectors = Vec::new();
    for _ in 0..count {
        let ts_type = r.u8()?;
        let octet1 = r.u8()?;
        let length = usize::from(r.u16()?);
        let mut body = r.nested(length, SELECTOR_HEADER_LEN, "traffic selector")?;
        selectors.push(TrafficSelector::parse(ts_type, octet1, &mut body)?);
        body.finish()?;
    }
    Ok(selectors)
}

/// More than 255 selectors (the one-octet Number of TSs, RFC 7296 §3.13) is
/// [`WireError::TooLong`].
pub(crate) fn emit_selectors(
    selectors: &[TrafficSelector],
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    out.extend_from_slice(&[count(selectors.len(), "Number of TSs")?, 0x00, 0x00, 0x00]);
    for selector in selectors {
        selector.emit(out)?;
    }
    Ok(())
}

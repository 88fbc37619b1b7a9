//! Traffic Selector payload body (RFC 7296 §3.13, §3.13.1).
//!
//! Invariants: the Number of TSs must equal the selectors present, each selector is read
//! from a reader bounded by its Selector Length, IPv4 and IPv6 range selectors must have
//! exactly their fixed length (16 and 40 octets), and unknown TS types are kept as data.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::reader::{count_u8, with_u16_length, Counted, Reader};
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

    fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            TrafficSelector::Ipv4 {
                ip_protocol,
                start_port,
                end_port,
                start: first,
                end: last,
            } => {
                out.extend_from_slice(&[Self::TS_IPV4_ADDR_RANGE, *ip_protocol]);
                with_u16_length(out, Counted::From(start), |out| {
                    out.extend_from_slice(&start_port.to_be_bytes());
                    out.extend_from_slice(&end_port.to_be_bytes());
                    out.extend_from_slice(&first.octets());
                    out.extend_from_slice(&last.octets());
                });
            }
            TrafficSelector::Ipv6 {
                ip_protocol,
                start_port,
                end_port,
                start: first,
                end: last,
            } => {
                out.extend_from_slice(&[Self::TS_IPV6_ADDR_RANGE, *ip_protocol]);
                with_u16_length(out, Counted::From(start), |out| {
                    out.extend_from_slice(&start_port.to_be_bytes());
                    out.extend_from_slice(&end_port.to_be_bytes());
                    out.extend_from_slice(&first.octets());
                    out.extend_from_slice(&last.octets());
                });
            }
            TrafficSelector::Unknown { ts_type, body } => {
                let (octet1, rest) = body.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
                out.extend_from_slice(&[*ts_type, octet1]);
                with_u16_length(out, Counted::From(start), |out| out.extend_from_slice(rest));
            }
        }
    }
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

/// # Panics
/// With more than 255 selectors.
pub(crate) fn emit_selectors(selectors: &[TrafficSelector], out: &mut Vec<u8>) {
    out.extend_from_slice(&[count_u8(selectors.len(), "Number of TSs"), 0x00, 0x00, 0x00]);
    for selector in selectors {
        selector.emit(out);
    }
}

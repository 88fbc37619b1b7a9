//! Traffic selector narrowing (RFC 7296 §2.9): TSi becomes the client's virtual IP, TSr the
//! intersection of what the client asked for with LocalSubnet.
//!
//! Only IPv4 address ranges are narrowed; the protocol and port range of a selector are kept
//! as the client sent them (the data plane checks addresses only).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::ipsec::Ipv4Range;
use crate::wire::TrafficSelector;

use super::IkeError;

/// TSi narrowed to `vip`/32: the client must have offered a selector containing it.
pub(crate) fn narrow_tsi(
    tsi: &[TrafficSelector],
    vip: Ipv4Addr,
) -> Result<Vec<TrafficSelector>, IkeError> {
    tsi.iter()
        .find_map(|ts| match ts {
            TrafficSelector::Ipv4 {
                ip_protocol,
                start_port,
                end_port,
                start,
                end,
            } if *start <= vip && vip <= *end => Some(TrafficSelector::Ipv4 {
                ip_protocol: *ip_protocol,
                start_port: *start_port,
                end_port: *end_port,
                start: vip,
                end: vip,
            }),
            _ => None,
        })
        .map(|ts| vec![ts])
        .ok_or(IkeError::TsUnacceptable)
}

/// Most traffic selectors one TS payload can carry (its Number of TSs is one octet, §3.13).
pub(crate) const MAX_SELECTORS: usize = 255;

/// TSr narrowed to the local subnets; an empty intersection, or one of more than
/// [`MAX_SELECTORS`] ranges (a client asking for many ranges that each straddle several
/// local subnets), is TS_UNACCEPTABLE.
pub(crate) fn narrow_tsr(
    tsr: &[TrafficSelector],
    locals: &[Ipv4Net],
) -> Result<(Vec<TrafficSelector>, Vec<Ipv4Range>), IkeError> {
    let mut selectors = Vec::new();
    let mut ranges = Vec::new();
    for ts in tsr {
        if let TrafficSelector::Ipv4 {
            ip_protocol,
            start_port,
            end_port,
            start,
            end,
        } = ts
        {
            let asked = Ipv4Range {
                start: *start,
                end: *end,
            };
            for local in locals {
                if let Some(r) = asked.intersect(&Ipv4Range::from(*local)) {
                    if ranges.len() <= MAX_SELECTORS && !ranges.contains(&r) {
                        ranges.push(r);
                        selectors.push(TrafficSelector::Ipv4 {
                            ip_protocol: *ip_protocol,
                            start_port: *start_port,
                            end_port: *end_port,
                            start: r.start,
                            end: r.end,
                        });
                    }
                }
            }
        }
    }
    if ranges.is_empty() || ranges.len() > MAX_SELECTORS {
        return Err(IkeError::TsUnacceptable);
    }
    Ok((selectors, ranges))
}

/// A selector for an address range, all protocols and ports.
pub(crate) fn selector(r: Ipv4Range) -> TrafficSelector {
    TrafficSelector::Ipv4 {
        ip_protocol: 0,
        start_port: 0,
        end_port: 0xffff,
        start: r.start,
        end: r.end,
    }
}

/// The whole IPv4 space, all protocols and ports: what a road-warrior initiator offers.
pub(crate) fn any_ipv4() -> TrafficSelector {
    TrafficSelector::Ipv4 {
        ip_protocol: 0,
        start_port: 0,
        end_port: 0xffff,
        start: Ipv4Addr::UNSPECIFIED,
        end: Ipv4Addr::BROADCAST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(start: [u8; 4], end: [u8; 4]) -> TrafficSelector {
        TrafficSelector::Ipv4 {
            ip_protocol: 0,
            start_port: 0,
            end_port: 0xffff,
            start: start.into(),
            end: end.into(),
        }
    }

    #[test]
    fn tsr_is_narrowed_to_local_subnets() {
        let locals: Vec<Ipv4Net> = vec![
            "192.168.0.0/24".parse().unwrap(),
            "172.16.5.0/24".parse().unwrap(),
        ];
        let (sels, ranges) = narrow_tsr(&[any_ipv4()], &locals).unwrap();
        assert_eq!(
            sels,
            vec![
                sel([192, 168, 0, 0], [192, 168, 0, 255]),
                sel([172, 16, 5, 0], [172, 16, 5, 255])
            ]
        );
        assert_eq!(ranges.len(), 2);
        let (sels, _) = narrow_tsr(&[sel([192, 168, 0, 128], [192, 168, 1, 10])], &locals).unwrap();
        assert_eq!(sels, vec![sel([192, 168, 0, 128], [192, 168, 0, 255])]);
        assert_eq!(
            narrow_tsr(&[sel([10, 9, 0, 0], [10, 9, 0, 255])], &locals),
            Err(IkeError::TsUnacceptable)
        );
    }

    #[test]
    fn narrowing_past_255_selectors_is_refused() {
        let locals: Vec<Ipv4Net> = vec![
            "192.168.0.0/24".parse().unwrap(),
            "192.168.1.0/24".parse().unwrap(),
        ];
        // Each asked range straddles both subnets: two narrowed selectors per range.
        let ask = |n: u8| -> Vec<TrafficSelector> {
            (0..n)
                .map(|i| sel([192, 168, 0, i], [192, 168, 1, i]))
                .collect()
        };
        let (sels, _) = narrow_tsr(&ask(127), &locals).unwrap();
        assert_eq!(sels.len(), 254);
        assert_eq!(
            narrow_tsr(&ask(128), &locals),
            Err(IkeError::TsUnacceptable)
        );
        assert_eq!(
            narrow_tsr(&ask(200), &locals),
            Err(IkeError::TsUnacceptable)
        );
    }

    #[test]
    fn tsi_must_contain_the_virtual_ip() {
        let vip = Ipv4Addr::new(10, 0, 0, 7);
        assert_eq!(
            narrow_tsi(&[any_ipv4()], vip).unwrap(),
            vec![sel([10, 0, 0, 7], [10, 0, 0, 7])]
        );
        assert_eq!(
            narrow_tsi(&[sel([10, 1, 0, 0], [10, 1, 0, 9])], vip),
            Err(IkeError::TsUnacceptable)
        );
    }
}

//! The host's directly connected IPv4 networks, which ClientIpPool must not overlap
//! (`InvalidClientIpPool.Conflict`). Read from `/proc/net/route` (Linux `fib_route_seq_show`).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// `RTF_GATEWAY` (linux/route.h): the route goes through a next hop, not a connected link.
const RTF_GATEWAY: u16 = 0x0002;
/// `RTF_REJECT` (linux/route.h): an unreachable/prohibit route, not a network of the host.
const RTF_REJECT: u16 = 0x0200;

/// Every directly connected IPv4 network of the host (routes without `RTF_GATEWAY` and with
/// a nonzero mask), canonical, sorted, deduplicated. Empty if `/proc/net/route` cannot be
/// read (not Linux, or no procfs).
pub fn host_networks() -> Vec<Ipv4Net> {
    read_routes(None)
}

/// As [`host_networks`] without the routes of interface `iface`: the daemon passes its own
/// TUN name, whose route to ClientIpPool would otherwise conflict with itself on reload.
pub fn host_networks_excluding(iface: &str) -> Vec<Ipv4Net> {
    read_routes(Some(iface))
}

/// Parses the text of `/proc/net/route`. Addresses are the kernel's `__be32` printed with
/// `%08X`, i.e. the network-order bytes read as a native-endian integer. Malformed lines
/// are skipped.
pub fn parse_proc_net_route(text: &str, exclude_iface: Option<&str>) -> Vec<Ipv4Net> {
    let mut nets: Vec<Ipv4Net> = text
        .lines()
        .skip(1) // header: Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
        .filter_map(|line| route_line(line, exclude_iface))
        .collect();
    nets.sort();
    nets.dedup();
    nets
}

fn read_routes(exclude_iface: Option<&str>) -> Vec<Ipv4Net> {
    std::fs::read_to_string("/proc/net/route")
        .map(|text| parse_proc_net_route(&text, exclude_iface))
        .unwrap_or_default()
}

fn route_line(line: &str, exclude_iface: Option<&str>) -> Option<Ipv4Net> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [iface, dest, _gateway, flags, _refcnt, _use, _metric, mask, ..] = fields.as_slice() else {
        return None;
    };
    if Some(*iface) == exclude_iface {
        return None;
    }
    let flags = u16::from_str_radix(flags, 16).ok()?;
    if flags & (RTF_GATEWAY | RTF_REJECT) != 0 {
        return None;
    }
    let dest = be32(dest)?;
    let mask = be32(mask)?;
    if mask.is_unspecified() {
        return None;
    }
    let prefix = ipnet::ipv4_mask_to_prefix(mask).ok()?;
    Ipv4Net::new(dest, prefix).ok().map(|n| n.trunc())
}

fn be32(hex: &str) -> Option<Ipv4Addr> {
    u32::from_str_radix(hex, 16)
        .ok()
        .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
}

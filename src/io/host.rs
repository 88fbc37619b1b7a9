//! The host's directly connected IPv4 networks, which ClientIpPool must not overlap
//! (`InvalidClientIpPool.Conflict`). Read from `/proc/net/route` (Linux `fib_route_seq_show`)
//! here in `io`; the configuration layer is handed the result (see `config::load`).

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

/// Whether a network interface named `name` exists in this network namespace (seen through
/// sysfs, which shows the namespace of the process that mounted it: the host's for a daemon).
pub fn interface_exists(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('/')
        && std::path::Path::new("/sys/class/net").join(name).exists()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("CIDR")
    }

    /// `/proc/net/route` holds `__be32` values printed as native-endian `%08X`.
    fn route_hex(a: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(a))
    }

    fn route_line(iface: &str, dest: [u8; 4], flags: u16, mask: [u8; 4]) -> String {
        format!(
            "{iface}\t{}\t00000000\t{flags:04X}\t0\t0\t0\t{}\t0\t0\t0",
            route_hex(dest),
            route_hex(mask)
        )
    }

    #[test]
    fn proc_net_route_keeps_connected_networks_only() {
        let text = [
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
                .to_owned(),
            route_line("eth0", [0, 0, 0, 0], 0x0003, [0, 0, 0, 0]), // default via gateway
            route_line("eth0", [192, 0, 2, 0], 0x0001, [255, 255, 255, 0]), // connected
            route_line("eth1", [192, 0, 2, 0], 0x0001, [255, 255, 255, 0]), // duplicate
            route_line("eth0", [198, 51, 100, 0], 0x0003, [255, 255, 255, 0]), // via gateway
            route_line("eth0", [203, 0, 113, 0], 0x0201, [255, 255, 255, 0]), // reject
            route_line("docker0", [172, 17, 0, 0], 0x0001, [255, 255, 0, 0]),
            route_line("ipsec0", [10, 0, 0, 0], 0x0001, [255, 255, 255, 0]), // our TUN
            route_line("eth2", [10, 9, 9, 9], 0x0001, [255, 255, 255, 0]),   // host bits
            route_line("eth3", [10, 8, 0, 0], 0x0001, [255, 0, 255, 0]),     // non-contiguous mask
            "eth4\tZZZZZZZZ\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0".to_owned(),
            "truncated line".to_owned(),
            String::new(),
        ]
        .join("\n");
        let all = parse_proc_net_route(&text, None);
        assert_eq!(
            all,
            [
                net("10.0.0.0/24"),
                net("10.9.9.0/24"),
                net("172.17.0.0/16"),
                net("192.0.2.0/24")
            ]
        );
        let without_tun = parse_proc_net_route(&text, Some("ipsec0"));
        assert!(!without_tun.contains(&net("10.0.0.0/24")));
        assert_eq!(without_tun.len(), 3);
        assert!(parse_proc_net_route("", None).is_empty());
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn proc_net_route_real_sample() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(parse_proc_net_route(text, None), [net("192.0.2.0/24")]);
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "\n\n",
            "a b c d e f g h",
            "x\tFFFFFFFFFF\t0\tZZ\t0\t0\t0\t-1",
            "é\u{0}",
        ] {
            let _ = parse_proc_net_route(text, None);
            let _ = parse_proc_net_route(text, Some("a"));
        }
    }

    #[test]
    fn host_networks_are_canonical() {
        for n in host_networks() {
            assert_eq!(n, n.trunc());
            assert_ne!(n.prefix_len(), 0);
        }
    }
}

//! Steps shared by the interop suites: connect a strongSwan client, ping through the tunnel.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::charon::Charon;
use super::topo::{addr, Role, Topology};
use super::ClientConfig;

/// Starts the client charon in `role`, initiates, and checks the SAs; returns it and its VIP.
pub fn connect(topo: &Topology, role: Role, cfg: &ClientConfig) -> (Charon, Ipv4Addr) {
    let t = Instant::now();
    let charon = Charon::start_client(topo, role, cfg);
    charon.connect();
    let sas = charon.list_sas();
    assert!(
        sas.contains("ESTABLISHED"),
        "{role:?}: no ESTABLISHED IKE SA:\n{sas}"
    );
    assert!(
        sas.contains("INSTALLED"),
        "{role:?}: no INSTALLED Child SA:\n{sas}"
    );
    let vip = charon
        .virtual_ip()
        .unwrap_or_else(|| panic!("{role:?}: no virtual IP in --list-sas:\n{sas}"));
    let pool: ipnet::Ipv4Net = addr::CLIENT_IP_POOL.parse().unwrap();
    assert!(
        pool.contains(&vip),
        "{role:?}: virtual IP {vip} not in {pool}"
    );
    assert!(
        sas.contains(&format!("{vip}/32")),
        "{role:?}: Child SA local TS is not {vip}/32:\n{sas}"
    );
    assert!(
        sas.contains(addr::LOCAL_SUBNET),
        "{role:?}: Child SA remote TS is not {}:\n{sas}",
        addr::LOCAL_SUBNET
    );
    eprintln!(
        "[{}] {role:?} {} connected as {vip} in {:?}",
        topo.tag,
        cfg.id,
        t.elapsed()
    );
    (charon, vip)
}

/// `ping -c 3 -W 2 -I <vip> 192.168.0.10` from `role`: (no loss, output).
pub fn ping(topo: &Topology, role: Role, vip: Ipv4Addr) -> (bool, String) {
    let out = topo.exec(
        role,
        "ping",
        &[
            "-c",
            "3",
            "-W",
            "2",
            "-I",
            &vip.to_string(),
            &addr::LAN_HOST.to_string(),
        ],
    );
    (
        out.success() && out.stdout.contains(" 0% packet loss"),
        out.to_string(),
    )
}

/// [`ping`], no loss allowed.
pub fn assert_ping(topo: &Topology, role: Role, vip: Ipv4Addr) {
    let (ok, out) = ping(topo, role, vip);
    assert!(ok, "ping through the tunnel from {role:?}:\n{out}");
}

/// `ping -q -c count -i interval_ms/1000 -W 1 -I <vip> 192.168.0.10` from `role` (a deadline
/// of the series' length plus 30 s): (sent, received).
pub fn ping_series(
    topo: &Topology,
    role: Role,
    vip: Ipv4Addr,
    count: u32,
    interval_ms: u32,
) -> (u32, u32) {
    let out = topo.exec_timeout(
        role,
        "ping",
        &[
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            &format!("{}", f64::from(interval_ms) / 1000.0),
            "-W",
            "1",
            "-I",
            &vip.to_string(),
            &addr::LAN_HOST.to_string(),
        ],
        Duration::from_secs(u64::from(count * interval_ms / 1000 + 30)),
    );
    let nums: Vec<u32> = out
        .stdout
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect();
    assert!(nums.len() >= 2, "{role:?}: no ping summary:\n{out}");
    (nums[0], nums[1])
}

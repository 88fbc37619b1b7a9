//! What `ipsec-server status` shows, as `swanctl --list-sas` and `wg show` do: a header
//! (version, uptime, listen addresses, pool use, online clients, the IKE queue and the
//! refused IKE messages) and per IKE SA its identity, outer addresses, NAT, virtual IP,
//! algorithms in strongSwan's notation, SPIs, times, and per Child SA its traffic and
//! selectors.
//!
//! One model, [`Status`], is both the control socket's answer (JSON, whose field names are
//! the stable interface of `status --json`, README "Commands") and the source of the text
//! ([`Status::render`]), so the two never disagree. Numbers are raw values (bytes, packets,
//! seconds); only the text turns them into human units. The IKE thread fills
//! [`ServerStatus`] ([`collect`]) from the responder and the SA database; the control socket
//! adds the daemon's header and applies the filters.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use crate::ike::{EspSuite, IkeSuite, Ipv4Range, Responder, SaInfo};
use crate::ipsec::Sad;

/// `ipsec-server status --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The daemon's version (Cargo package version).
    pub version: String,
    pub uptime_secs: u64,
    pub listen_addrs: Vec<IpAddr>,
    pub ike_port: u16,
    pub nat_t_port: u16,
    /// `null` while no IPsec server runs (a gateway with `[api]` waiting for
    /// CreateIpsecServer).
    pub server: Option<ServerStatus>,
}

/// The running IPsec server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub pool: PoolStatus,
    /// Established IKE SAs that were not rekeyed (what `max_connections` counts).
    pub online_clients: usize,
    pub ike_queue: IkeQueue,
    /// Refused or dropped IKE messages since the start, by reason.
    pub refused: Vec<Refused>,
    /// The IKE SAs (all of them, or those the filters select), by virtual IP.
    pub sas: Vec<SaStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    pub network: Ipv4Net,
    /// Addresses leased now.
    pub used: usize,
    /// Addresses the pool holds (network and broadcast excluded).
    pub size: usize,
}

/// The IKE thread's queue (`limits.ike_queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeQueue {
    pub capacity: usize,
    /// Datagrams dropped since the start because the queue, or the sender's share of it (an
    /// eighth per source address), was full.
    pub dropped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub reason: String,
    pub count: u64,
}

/// One IKE SA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaStatus {
    /// `ESTABLISHED`, `CONNECTING` (waiting for IKE_AUTH) or `REKEYED` (replaced by the
    /// client's IKE rekey, waiting for its DELETE).
    pub state: String,
    /// The client's IDi; `null` while connecting.
    pub identity: Option<String>,
    /// Our address and port the client talks to, and the client's as we see it.
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// NAT detection of IKE_SA_INIT: the client is behind a NAT, we are (as it sees us),
    /// we claimed one ourselves (`force_udp_encap`).
    pub nat_remote: bool,
    pub nat_local: bool,
    pub nat_faked: bool,
    pub vip: Option<Ipv4Addr>,
    /// 16 hex digits each.
    pub ike_spi_i: String,
    pub ike_spi_r: String,
    /// e.g. `AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024`.
    pub ike_proposal: String,
    /// Since it was established (or, connecting, since IKE_SA_INIT).
    pub established_secs: u64,
    /// The gateway never rekeys an IKE SA itself (the client does); always `null`, kept
    /// for the shape of `swanctl --list-sas`.
    pub ike_rekey_in_secs: Option<u64>,
    /// Until `ike_lifetime` ends it; `null` = unlimited.
    pub ike_expires_in_secs: Option<u64>,
    /// Until the client must authenticate again (`ike_lifetime`, `psk_change_reauth`).
    pub reauth_in_secs: Option<u64>,
    pub children: Vec<ChildStatus>,
}

/// One Child SA pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildStatus {
    /// `INSTALLED`, or `REKEYED` (replaced, waiting for its DELETE).
    pub state: String,
    /// e.g. `AES_CBC-128/HMAC_SHA1_96`.
    pub esp_proposal: String,
    /// 8 hex digits: ours (the client's ESP carries it) and the client's.
    pub spi_in: String,
    pub spi_out: String,
    pub installed_secs: u64,
    /// Until the gateway rekeys it unless the client does first; `null` = never by time.
    pub rekey_in_secs: Option<u64>,
    pub expires_in_secs: Option<u64>,
    /// Since the last inbound packet (about a second's resolution); `null` = none yet.
    pub last_inbound_secs: Option<u64>,
    pub bytes_in: u64,
    pub packets_in: u64,
    /// Inbound packets dropped (ICV, replay, selectors…), those outside the selectors
    /// among them, and dummy packets (RFC 4303 §2.6) received.
    pub dropped_in: u64,
    pub outside_selectors_in: u64,
    pub dummies_in: u64,
    /// Outbound: 0 for a pair that no longer carries the client's traffic.
    pub bytes_out: u64,
    pub packets_out: u64,
    pub dropped_out: u64,
    pub outside_selectors_out: u64,
    /// The last outbound sequence number used.
    pub seq_out: u64,
    /// CIDRs: the gateway's side and the client's (its virtual IP).
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
}

/// Which clients a request is about: every given field must match (none given: all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// The identity as status shows it (exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<Ipv4Addr>,
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.vip.is_none()
    }

    /// Whether the IKE SA of `identity` with `vip` is selected.
    pub fn matches(&self, identity: &str, vip: Option<Ipv4Addr>) -> bool {
        self.id.as_deref().is_none_or(|id| id == identity)
            && self.vip.is_none_or(|v| vip == Some(v))
    }
}

/// The server part of the status, from the responder and the SA database (IKE thread).
pub(crate) fn collect(
    responder: &Responder,
    sad: &Sad,
    queue: IkeQueue,
    now: std::time::Instant,
) -> ServerStatus {
    let mut sas: Vec<SaStatus> = responder
        .sas(now)
        .into_iter()
        .map(|sa| sa_status(sa, sad))
        .collect();
    sas.sort_by(|a, b| (a.vip, &a.identity).cmp(&(b.vip, &b.identity)));
    let pool = responder.pool();
    ServerStatus {
        pool: PoolStatus {
            network: pool.network(),
            used: pool.in_use(),
            size: pool.size(),
        },
        online_clients: responder.online_clients(),
        ike_queue: queue,
        refused: responder
            .refusals()
            .into_iter()
            .map(|(why, count)| Refused {
                reason: why.to_string(),
                count,
            })
            .collect(),
        sas,
    }
}

pub(crate) fn sa_status(sa: SaInfo, sad: &Sad) -> SaStatus {
    let snap = sad.snapshot();
    let remote_ts: Vec<String> = sa.vip.map(|v| format!("{v}/32")).into_iter().collect();
    let children = sa
        .children
        .iter()
        .map(|c| {
            let inbound = snap.inbound(c.spi_in);
            let (packets_in, bytes_in, dropped_in) =
                inbound.map(|s| s.counters.read()).unwrap_or_default();
            // The client's current outbound SA counts for the pair it belongs to.
            let outbound = sa
                .vip
                .and_then(|v| snap.outbound(v))
                .filter(|o| o.inbound_spi == c.spi_in);
            let (packets_out, bytes_out, dropped_out) =
                outbound.map(|o| o.counters.read()).unwrap_or_default();
            ChildStatus {
                state: if c.rekeyed { "REKEYED" } else { "INSTALLED" }.into(),
                esp_proposal: esp_proposal(c.suite),
                spi_in: format!("{:08x}", c.spi_in),
                spi_out: format!("{:08x}", c.spi_out),
                installed_secs: c.installed_secs,
                rekey_in_secs: c.rekey_in_secs,
                expires_in_secs: c.expires_in_secs,
                last_inbound_secs: c.last_inbound_secs,
                bytes_in,
                packets_in,
                dropped_in,
                outside_selectors_in: inbound.map_or(0, |s| s.counters.outside_selectors()),
                dummies_in: inbound.map_or(0, |s| s.counters.dummies()),
                bytes_out,
                packets_out,
                dropped_out,
                outside_selectors_out: outbound.map_or(0, |o| o.counters.outside_selectors()),
                seq_out: outbound.map_or(0, |o| o.seq()),
                local_ts: c.local_ts.iter().flat_map(|r| cidrs(*r)).collect(),
                remote_ts: remote_ts.clone(),
            }
        })
        .collect();
    let state = match (sa.established, sa.rekeyed) {
        (false, _) => "CONNECTING",
        (true, false) => "ESTABLISHED",
        (true, true) => "REKEYED",
    };
    SaStatus {
        state: state.into(),
        identity: sa.established.then_some(sa.identity),
        local: sa.local,
        remote: sa.remote,
        nat_remote: sa.nat.remote,
        nat_local: sa.nat.local,
        nat_faked: sa.nat.faked,
        vip: sa.vip,
        ike_spi_i: format!("{:016x}", sa.spi_i),
        ike_spi_r: format!("{:016x}", sa.spi_r),
        ike_proposal: ike_proposal(sa.suite),
        established_secs: sa.age_secs,
        ike_rekey_in_secs: None,
        ike_expires_in_secs: sa.expires_in_secs,
        reauth_in_secs: sa.reauth_in_secs,
        children,
    }
}

/// The fewest CIDRs covering a selector's range (strongSwan shows selectors so).
fn cidrs(r: Ipv4Range) -> Vec<String> {
    ipnet::Ipv4Subnets::new(r.start, r.end, 0)
        .map(|n| n.to_string())
        .collect()
}

/// strongSwan's names of our transforms (`swanctl --list-sas`).
fn encr_name(e: EncrAlg) -> &'static str {
    match e {
        EncrAlg::DesCbc => "DES_CBC",
        EncrAlg::TripleDesCbc => "3DES_CBC",
        EncrAlg::AesCbc128 => "AES_CBC-128",
        EncrAlg::AesCbc192 => "AES_CBC-192",
        EncrAlg::AesCbc256 => "AES_CBC-256",
    }
}

fn integ_name(i: IntegAlg) -> &'static str {
    match i {
        IntegAlg::HmacMd5_96 => "HMAC_MD5_96",
        IntegAlg::HmacSha1_96 => "HMAC_SHA1_96",
        IntegAlg::HmacSha256_128 => "HMAC_SHA2_256_128",
        IntegAlg::HmacSha384_192 => "HMAC_SHA2_384_192",
        IntegAlg::HmacSha512_256 => "HMAC_SHA2_512_256",
    }
}

fn prf_name(p: PrfAlg) -> &'static str {
    match p {
        PrfAlg::HmacMd5 => "PRF_HMAC_MD5",
        PrfAlg::HmacSha1 => "PRF_HMAC_SHA1",
        PrfAlg::HmacSha256 => "PRF_HMAC_SHA2_256",
        PrfAlg::HmacSha384 => "PRF_HMAC_SHA2_384",
        PrfAlg::HmacSha512 => "PRF_HMAC_SHA2_512",
    }
}

fn dh_name(g: DhGroup) -> &'static str {
    match g {
        DhGroup::Modp768 => "MODP_768",
        DhGroup::Modp1024 => "MODP_1024",
        DhGroup::Modp1536 => "MODP_1536",
        DhGroup::Modp2048 => "MODP_2048",
        DhGroup::Modp2048_256 => "MODP_2048_256",
    }
}

/// `AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024`.
pub fn ike_proposal(s: IkeSuite) -> String {
    format!(
        "{}/{}/{}/{}",
        encr_name(s.encr),
        integ_name(s.integ),
        prf_name(s.prf),
        dh_name(s.dh)
    )
}

/// `AES_CBC-128/HMAC_SHA1_96`.
pub fn esp_proposal(s: EspSuite) -> String {
    format!("{}/{}", encr_name(s.encr), integ_name(s.integ))
}

/// Bytes in binary units: `512 B`, `1.21 KiB`, `3.50 MiB`.
pub fn human_bytes(n: u64) -> String {
    humansize::format_size(n, humansize::BINARY)
}

/// Seconds as `1d 2h 3m 4s` (leading zero units left out).
pub fn human_secs(s: u64) -> String {
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m")] {
        if n > 0 || !out.is_empty() {
            let _ = write!(out, "{n}{unit} ");
        }
    }
    let _ = write!(out, "{sec}s");
    out
}

impl Status {
    /// Keeps only the IKE SAs `select` matches.
    pub fn retain(&mut self, select: &Selector) {
        if let Some(server) = &mut self.server {
            server
                .sas
                .retain(|sa| select.matches(sa.identity.as_deref().unwrap_or_default(), sa.vip));
        }
    }

    /// The text of `ipsec-server status`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ipsec-server {}, up {}",
            self.version,
            human_secs(self.uptime_secs)
        );
        let addrs: Vec<String> = self.listen_addrs.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(
            out,
            "listening on {}, UDP {} and {}",
            addrs.join(", "),
            self.ike_port,
            self.nat_t_port
        );
        let Some(server) = &self.server else {
            let _ = writeln!(out, "no IPsec server running");
            return out;
        };
        let p = &server.pool;
        let _ = writeln!(out, "pool {}: {}/{} in use", p.network, p.used, p.size);
        let _ = writeln!(out, "online clients: {}", server.online_clients);
        let _ = writeln!(
            out,
            "ike queue: {} dropped (queue full), capacity {} datagrams",
            server.ike_queue.dropped, server.ike_queue.capacity
        );
        if !server.refused.is_empty() {
            let r: Vec<String> = server
                .refused
                .iter()
                .map(|r| format!("{} {}", r.reason, r.count))
                .collect();
            let _ = writeln!(out, "refused ike messages: {}", r.join(", "));
        }
        for sa in &server.sas {
            render_sa(&mut out, sa);
        }
        out
    }
}

fn render_sa(out: &mut String, sa: &SaStatus) {
    let _ = writeln!(
        out,
        "{}: {} {}s ago, ike-spis {}_i {}_r",
        sa.identity.as_deref().unwrap_or("-"),
        sa.state,
        sa.established_secs,
        sa.ike_spi_i,
        sa.ike_spi_r
    );
    let mut nat = Vec::new();
    if sa.nat_remote {
        nat.push("remote host behind NAT");
    }
    if sa.nat_local {
        nat.push("local host behind NAT");
    }
    if sa.nat_faked {
        nat.push("faked by us (force_udp_encap)");
    }
    let nat = if nat.is_empty() {
        "no".to_string()
    } else {
        format!("yes, {}", nat.join(", "))
    };
    let _ = writeln!(out, "  remote {} local {}, NAT: {nat}", sa.remote, sa.local);
    if let Some(vip) = sa.vip {
        let _ = writeln!(out, "  vip {vip}");
    }
    let mut times = vec!["rekeying left to the client".to_string()];
    times.extend(sa.ike_expires_in_secs.map(|s| format!("expires in {s}s")));
    times.extend(
        sa.reauth_in_secs
            .map(|s| format!("re-authenticate within {s}s")),
    );
    let _ = writeln!(out, "  IKE {}, {}", sa.ike_proposal, times.join(", "));
    for c in &sa.children {
        let mut times = vec![format!("installed {}s ago", c.installed_secs)];
        times.extend(c.rekey_in_secs.map(|s| format!("rekeying in {s}s")));
        times.extend(c.expires_in_secs.map(|s| format!("expires in {s}s")));
        let _ = writeln!(
            out,
            "  child {} ESP {}, {}",
            c.state,
            c.esp_proposal,
            times.join(", ")
        );
        let ago = c
            .last_inbound_secs
            .map(|s| format!(", {s}s ago"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    in  {}, {}, {} packets{ago} ({} dropped, {} outside selectors, {} dummy)",
            c.spi_in,
            human_bytes(c.bytes_in),
            c.packets_in,
            c.dropped_in,
            c.outside_selectors_in,
            c.dummies_in
        );
        let _ = writeln!(
            out,
            "    out {}, {}, {} packets ({} dropped, {} outside selectors), seq {}",
            c.spi_out,
            human_bytes(c.bytes_out),
            c.packets_out,
            c.dropped_out,
            c.outside_selectors_out,
            c.seq_out
        );
        let _ = writeln!(
            out,
            "    local {} === remote {}",
            c.local_ts.join(" "),
            c.remote_ts.join(" ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clients, as the IKE thread and the daemon would fill them.
    pub(crate) fn sample() -> Status {
        let child = |spi: &str, vip: &str, bytes: u64| ChildStatus {
            state: "INSTALLED".into(),
            esp_proposal: "AES_CBC-128/HMAC_SHA1_96".into(),
            spi_in: spi.into(),
            spi_out: "c0ffee01".into(),
            installed_secs: 12,
            rekey_in_secs: Some(3230),
            expires_in_secs: Some(3588),
            last_inbound_secs: Some(1),
            bytes_in: bytes,
            packets_in: 7,
            dropped_in: 0,
            outside_selectors_in: 0,
            dummies_in: 0,
            bytes_out: 3 << 20,
            packets_out: 2400,
            dropped_out: 1,
            outside_selectors_out: 0,
            seq_out: 2400,
            local_ts: vec!["192.168.0.0/24".into()],
            remote_ts: vec![format!("{vip}/32")],
        };
        let sa = |id: &str, vip: [u8; 4], remote: &str, spi: &str, bytes: u64| SaStatus {
            state: "ESTABLISHED".into(),
            identity: Some(id.into()),
            local: "172.29.1.1:4500".parse().unwrap(),
            remote: remote.parse().unwrap(),
            nat_remote: false,
            nat_local: false,
            nat_faked: true,
            vip: Some(vip.into()),
            ike_spi_i: "0123456789abcdef".into(),
            ike_spi_r: "fedcba9876543210".into(),
            ike_proposal: "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024".into(),
            established_secs: 12,
            ike_rekey_in_secs: None,
            ike_expires_in_secs: Some(86388),
            reauth_in_secs: Some(86388),
            children: vec![child(spi, &Ipv4Addr::from(vip).to_string(), bytes)],
        };
        Status {
            version: "0.1.0".into(),
            uptime_secs: 3725,
            listen_addrs: vec!["0.0.0.0".parse().unwrap()],
            ike_port: 500,
            nat_t_port: 4500,
            server: Some(ServerStatus {
                pool: PoolStatus {
                    network: "10.0.0.0/24".parse().unwrap(),
                    used: 2,
                    size: 254,
                },
                online_clients: 2,
                ike_queue: IkeQueue {
                    capacity: 4096,
                    dropped: 0,
                },
                refused: vec![Refused {
                    reason: "authentication failed".into(),
                    count: 3,
                }],
                sas: vec![
                    sa(
                        "client1.example",
                        [10, 0, 0, 1],
                        "172.29.1.2:4500",
                        "c1000001",
                        840,
                    ),
                    sa(
                        "client2.example",
                        [10, 0, 0, 2],
                        "172.29.1.4:4500",
                        "c2000002",
                        1300,
                    ),
                ],
            }),
        }
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1 KiB");
        assert_eq!(human_bytes(1300), "1.27 KiB");
        assert_eq!(human_bytes(3 << 20), "3 MiB");
        assert_eq!(human_bytes(5 << 30), "5 GiB");
        assert_eq!(human_secs(0), "0s");
        assert_eq!(human_secs(59), "59s");
        assert_eq!(human_secs(3725), "1h 2m 5s");
        assert_eq!(human_secs(90000), "1d 1h 0m 0s");
    }

    #[test]
    fn strongswan_names() {
        let ike = IkeSuite {
            encr: EncrAlg::AesCbc128,
            integ: IntegAlg::HmacSha1_96,
            prf: PrfAlg::HmacSha1,
            dh: DhGroup::Modp1024,
        };
        assert_eq!(
            ike_proposal(ike),
            "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024"
        );
        let esp = EspSuite {
            encr: EncrAlg::AesCbc256,
            integ: IntegAlg::HmacSha256_128,
        };
        assert_eq!(esp_proposal(esp), "AES_CBC-256/HMAC_SHA2_256_128");
        assert_eq!(
            cidrs(Ipv4Range {
                start: Ipv4Addr::new(10, 0, 0, 0),
                end: Ipv4Addr::new(10, 0, 1, 255)
            }),
            vec!["10.0.0.0/23"]
        );
        assert_eq!(
            cidrs(Ipv4Range::single(Ipv4Addr::new(10, 0, 0, 7))),
            vec!["10.0.0.7/32"]
        );
    }

    #[test]
    fn text_shows_every_client_in_human_units() {
        let text = sample().render();
        for want in [
            "ipsec-server 0.1.0, up 1h 2m 5s",
            "listening on 0.0.0.0, UDP 500 and 4500",
            "pool 10.0.0.0/24: 2/254 in use",
            "online clients: 2",
            "refused ike messages: authentication failed 3",
            "client1.example: ESTABLISHED 12s ago, ike-spis 0123456789abcdef_i fedcba9876543210_r",
            "  remote 172.29.1.2:4500 local 172.29.1.1:4500, NAT: yes, faked by us (force_udp_encap)",
            "  vip 10.0.0.1",
            "  IKE AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024, rekeying left to the client, expires in 86388s",
            "  child INSTALLED ESP AES_CBC-128/HMAC_SHA1_96, installed 12s ago, rekeying in 3230s, expires in 3588s",
            "    in  c1000001, 840 B, 7 packets, 1s ago (0 dropped",
            "    in  c2000002, 1.27 KiB, 7 packets",
            "    out c0ffee01, 3 MiB, 2400 packets (1 dropped, 0 outside selectors), seq 2400",
            "    local 192.168.0.0/24 === remote 10.0.0.2/32",
        ] {
            assert!(text.contains(want), "{want:?} missing in:\n{text}");
        }
        let mut none = sample();
        none.server = None;
        assert!(none.render().ends_with("no IPsec server running\n"));
    }

    #[test]
    fn json_has_stable_names_and_raw_numbers() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["uptime_secs"], 3725);
        assert_eq!(v["server"]["pool"]["network"], "10.0.0.0/24");
        assert_eq!(v["server"]["pool"]["used"], 2);
        assert_eq!(v["server"]["online_clients"], 2);
        let sa = &v["server"]["sas"][1];
        assert_eq!(sa["identity"], "client2.example");
        assert_eq!(sa["vip"], "10.0.0.2");
        assert_eq!(sa["remote"], "172.29.1.4:4500");
        assert_eq!(sa["nat_faked"], true);
        assert_eq!(sa["ike_rekey_in_secs"], serde_json::Value::Null);
        let c = &sa["children"][0];
        assert_eq!(c["bytes_in"], 1300, "bytes are integers, not human units");
        assert_eq!(c["bytes_out"], 3 << 20);
        assert_eq!(c["esp_proposal"], "AES_CBC-128/HMAC_SHA1_96");
        assert_eq!(c["local_ts"][0], "192.168.0.0/24");
        // It reads back as it was written (the client renders the text from it).
        let back: Status = serde_json::from_value(v).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn selectors_filter_clients() {
        let mut s = sample();
        s.retain(&Selector {
            id: None,
            vip: Some(Ipv4Addr::new(10, 0, 0, 2)),
        });
        let sas = &s.server.as_ref().unwrap().sas;
        assert_eq!(sas.len(), 1);
        assert_eq!(sas[0].identity.as_deref(), Some("client2.example"));
        let mut s = sample();
        s.retain(&Selector {
            id: Some("client1.example".into()),
            vip: Some(Ipv4Addr::new(10, 0, 0, 2)),
        });
        assert!(s.server.unwrap().sas.is_empty(), "both must match");
        let mut s = sample();
        s.retain(&Selector::default());
        assert_eq!(s.server.unwrap().sas.len(), 2);
    }
}

//! strongSwan 5.9 `charon` instances, one per namespace, exactly as `docs/STRONGSWAN.md`
//! prescribes: a private tmpfs on `/run` (charon hard-codes `/var/run/charon.pid`), its own
//! `STRONGSWAN_CONF`, vici socket and filelog, an explicit plugin `load` list with
//! `kernel-libipsec` before `kernel-netlink` (this kernel has no ESP in XFRM).

use super::proc::{self, CmdOutput};
use super::topo::{addr, Role, Topology};
use super::{poll_until, GATEWAY_ID, PSK};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// Name of the client's connection and of its child in the swanctl.conf written here.
pub const CLIENT_CONN: &str = "gw";
pub const CLIENT_CHILD: &str = "net";

/// A cipher suite, as strongSwan proposal and as the daemon's config values (docs/DESIGN.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    /// strongSwan proposal keyword, used for both `proposals` and `esp_proposals`.
    pub proposal: &'static str,
    /// `ike_enc_alg` / `ipsec_enc_alg`.
    pub enc: &'static str,
    /// `ike_auth_alg` / `ipsec_auth_alg`.
    pub auth: &'static str,
    /// `ike_pfs` / `ipsec_pfs`.
    pub pfs: &'static str,
}

impl Suite {
    /// The API defaults: AES-128-CBC, HMAC-SHA1, MODP-1024.
    pub const DEFAULT: Suite = Suite {
        proposal: "aes128-sha1-modp1024",
        enc: "aes",
        auth: "sha1",
        pfs: "group2",
    };
    /// AES-256-CBC, HMAC-SHA2-256, MODP-2048.
    pub const AES256_SHA256_MODP2048: Suite = Suite {
        proposal: "aes256-sha256-modp2048",
        enc: "aes256",
        auth: "sha256",
        pfs: "group14",
    };
}

/// A road-warrior client as in docs/STRONGSWAN.md "Client (initiator) swanctl.conf essentials".
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub id: String,
    pub psk: String,
    pub suite: Suite,
    pub remote_addr: Ipv4Addr,
    pub remote_id: String,
    pub remote_ts: String,
    /// Extra lines for the connection block (e.g. `rekey_time = 20s`, `mobike = yes`).
    pub conn_extra: Vec<String>,
    /// Extra lines for the child block (e.g. `rekey_time = 10s`).
    pub child_extra: Vec<String>,
    /// Extra `charon { … }` settings of strongswan.conf (e.g. `fragment_size = 200`).
    pub charon_extra: Vec<String>,
}

impl ClientConfig {
    pub fn new(id: &str) -> ClientConfig {
        ClientConfig {
            id: id.to_string(),
            psk: PSK.to_string(),
            suite: Suite::DEFAULT,
            remote_addr: addr::GW_OUTSIDE,
            remote_id: GATEWAY_ID.to_string(),
            remote_ts: addr::LOCAL_SUBNET.to_string(),
            conn_extra: Vec::new(),
            child_extra: Vec::new(),
            charon_extra: Vec::new(),
        }
    }

    pub fn conn(mut self, line: &str) -> Self {
        self.conn_extra.push(line.to_string());
        self
    }

    pub fn child(mut self, line: &str) -> Self {
        self.child_extra.push(line.to_string());
        self
    }

    pub fn charon(mut self, line: &str) -> Self {
        self.charon_extra.push(line.to_string());
        self
    }

    pub fn psk(mut self, psk: &str) -> Self {
        self.psk = psk.to_string();
        self
    }

    pub fn suite(mut self, suite: Suite) -> Self {
        self.suite = suite;
        self
    }

    /// swanctl.conf text (one setting per line, as swanctl wants).
    pub fn swanctl_conf(&self) -> String {
        let ClientConfig {
            id,
            psk,
            suite,
            remote_addr,
            remote_id,
            remote_ts,
            conn_extra,
            child_extra,
            charon_extra: _,
        } = self;
        let p = suite.proposal;
        let conn_extra: String = conn_extra
            .iter()
            .map(|l| format!("        {l}\n"))
            .collect();
        let child_extra: String = child_extra
            .iter()
            .map(|l| format!("                {l}\n"))
            .collect();
        format!(
            r#"connections {{
    {CLIENT_CONN} {{
        version = 2
        remote_addrs = {remote_addr}
        vips = 0.0.0.0
        proposals = {p}
{conn_extra}        local {{
            auth = psk
            id = {id}
        }}
        remote {{
            auth = psk
            id = {remote_id}
        }}
        children {{
            {CLIENT_CHILD} {{
                remote_ts = {remote_ts}
                esp_proposals = {p}
                start_action = none
{child_extra}            }}
        }}
    }}
}}
secrets {{
    ike-client {{
        id-a = {id}
        id-b = {remote_id}
        secret = "{psk}"
    }}
}}
"#
        )
    }
}

/// A running charon, driven through its own vici socket.
pub struct Charon {
    pub name: String,
    pub role: Role,
    pub pid: u32,
    pub dir: PathBuf,
    pub log: PathBuf,
    uri: String,
    procs: Arc<super::proc::Procs>,
}

impl Charon {
    /// A client charon in namespace `role` with `cfg` loaded.
    pub fn start_client(topo: &Topology, role: Role, cfg: &ClientConfig) -> Charon {
        Charon::start_with(topo, role, &cfg.swanctl_conf(), &cfg.charon_extra)
    }

    /// Starts charon in namespace `role`, waits (≤ 10 s) for its vici socket and loads
    /// `swanctl_conf` with `swanctl --load-all`.
    pub fn start(topo: &Topology, role: Role, swanctl_conf: &str) -> Charon {
        Charon::start_with(topo, role, swanctl_conf, &[])
    }

    /// [`Charon::start`] with extra `charon { … }` settings in strongswan.conf.
    pub fn start_with(
        topo: &Topology,
        role: Role,
        swanctl_conf: &str,
        charon_extra: &[String],
    ) -> Charon {
        let name = format!("charon-{}", format!("{role:?}").to_lowercase());
        let dir = topo.dir().join(&name);
        std::fs::create_dir_all(dir.join("swanctl")).expect("create charon dir");
        let log = dir.join("charon.log");
        let vici = dir.join("charon.vici");
        let uri = format!("unix://{}", vici.display());
        let conf = dir.join("strongswan.conf");
        std::fs::write(&conf, strongswan_conf(&log, &uri, charon_extra))
            .expect("write strongswan.conf");
        std::fs::write(dir.join("swanctl/swanctl.conf"), swanctl_conf).expect("write swanctl.conf");

        let script = format!(
            "mount -t tmpfs t /run && exec env STRONGSWAN_CONF={} /usr/lib/ipsec/charon",
            conf.display()
        );
        let pid = topo.spawn(role, &format!("{name}.out"), "sh", &["-c", &script], &[]);
        topo.add_log(&name, &log);
        let charon = Charon {
            name,
            role,
            pid,
            dir,
            log,
            uri,
            procs: topo.procs.clone(),
        };

        let ready = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
            if let Some(how) = topo.exited(pid) {
                panic!("{} (pid {pid}) ended during startup ({how})", charon.name);
            }
            (vici.exists() && charon.swanctl(&["--stats"]).success()).then_some(())
        });
        assert!(
            ready.is_some(),
            "{}: vici not ready after 10 s",
            charon.name
        );
        let file = charon.dir.join("swanctl/swanctl.conf");
        charon
            .swanctl(&["--load-all", "--noprompt", "--file", file.to_str().unwrap()])
            .expect_ok("swanctl --load-all");
        charon
    }

    /// `swanctl ARGS… --uri <this charon>` (the URI must follow the command word), 40 s max.
    pub fn swanctl(&self, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new("swanctl");
        cmd.args(args).args(["--uri", &self.uri]);
        proc::run(cmd, Duration::from_secs(40))
    }

    /// `swanctl --initiate --child CHILD --timeout 20`.
    pub fn initiate(&self, child: &str) -> CmdOutput {
        self.swanctl(&["--initiate", "--child", child, "--timeout", "20"])
    }

    /// Initiates the client child and panics (with the output) unless it succeeded.
    pub fn connect(&self) {
        self.initiate(CLIENT_CHILD)
            .expect_ok(&format!("{}: swanctl --initiate", self.name));
    }

    pub fn list_sas(&self) -> String {
        self.swanctl(&["--list-sas"])
            .expect_ok("swanctl --list-sas")
            .stdout
    }

    /// The virtual IP this client got (`local … [VIP]` in `--list-sas`).
    pub fn virtual_ip(&self) -> Option<Ipv4Addr> {
        parse_virtual_ip(&self.list_sas())
    }

    /// Byte/packet counters of the first installed Child SA.
    pub fn child_counters(&self) -> Option<ChildCounters> {
        parse_counters(&self.list_sas())
    }

    /// SPIs of every IKE SA and Child SA this client has.
    pub fn spis(&self) -> Spis {
        parse_spis(&self.list_sas())
    }

    /// The outer `address[port]` of the remote peer of each IKE SA (`remote '…' @ A[P]`).
    pub fn remote_endpoints(&self) -> Vec<String> {
        self.list_sas()
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                l.starts_with("remote ").then(|| l.split(" @ ").nth(1))?
            })
            .filter_map(|r| r.split_whitespace().next().map(str::to_string))
            .collect()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops this charon now (SIGTERM, SIGKILL after 3 s); otherwise the topology does it.
    pub fn stop(self) {
        self.procs.kill(self.pid, Duration::from_secs(3));
    }
}

/// Counters of one Child SA as `swanctl --list-sas` prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildCounters {
    pub bytes_in: u64,
    pub packets_in: u64,
    pub bytes_out: u64,
    pub packets_out: u64,
}

fn strongswan_conf(log: &Path, uri: &str, extra: &[String]) -> String {
    let extra: String = extra.iter().map(|l| format!("    {l}\n")).collect();
    format!(
        r#"charon {{
{extra}    load_modular = no
    load = random nonce openssl kdf kernel-libipsec kernel-netlink socket-default vici
    install_routes = yes
    install_virtual_ip = yes
    filelog {{
        test {{
            path = {}
            default = 1
            ike = 2
            flush_line = yes
        }}
    }}
    syslog {{
        daemon {{
            default = -1
        }}
    }}
    plugins {{
        vici {{
            socket = {uri}
        }}
    }}
}}
"#,
        log.display()
    )
}

/// `local  'client1.example' @ 172.29.1.2[4500] [10.0.0.1]` → 10.0.0.1.
pub fn parse_virtual_ip(list_sas: &str) -> Option<Ipv4Addr> {
    list_sas
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("local ") && l.contains(" @ "))
        .find_map(|l| {
            let last = l.split_whitespace().last()?;
            last.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
        })
}

/// SPIs as `swanctl --list-sas` prints them, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spis {
    /// (initiator's, responder's) SPI of each IKE SA, 16 hex digits each.
    pub ike: Vec<(String, String)>,
    /// (inbound, outbound) SPI of each Child SA, 8 hex digits each (the client's view: its
    /// outbound SPI is the gateway's inbound one).
    pub child: Vec<(String, String)>,
}

/// `gw: #1, ESTABLISHED, IKEv2, fa09a4ad3947f959_i* 5dfa9af0e839605f_r` (the `*` marks our
/// side) and each Child SA's `in  f5bdc933, …` / `out 1d4159b4, …` lines.
pub fn parse_spis(list_sas: &str) -> Spis {
    let mut spis = Spis::default();
    let mut child_in = None;
    for line in list_sas.lines() {
        if line.contains(", IKEv2, ") {
            let spi = |suffix: &str| {
                line.split_whitespace().find_map(|t| {
                    let t = t.trim_end_matches('*').strip_suffix(suffix)?;
                    (t.len() == 16 && t.bytes().all(|b| b.is_ascii_hexdigit()))
                        .then(|| t.to_string())
                })
            };
            if let (Some(i), Some(r)) = (spi("_i"), spi("_r")) {
                spis.ike.push((i, r));
            }
            continue;
        }
        let line = line.trim_start();
        let spi = |prefix: &str| -> Option<String> {
            let t = line.strip_prefix(prefix)?.trim_start().get(..8)?;
            t.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| t.to_string())
        };
        if let Some(s) = spi("in ") {
            child_in = Some(s);
        } else if let (Some(s), Some(i)) = (spi("out "), child_in.take()) {
            spis.child.push((i, s));
        }
    }
    spis
}

/// `in  f5bdc933,    252 bytes,     3 packets,     0s ago` (and the `out` line) of the first
/// Child SA.
pub fn parse_counters(list_sas: &str) -> Option<ChildCounters> {
    let field = |dir: &str| -> Option<(u64, u64)> {
        let line = list_sas
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(dir))?;
        let parts: Vec<&str> = line.split(',').map(str::trim).collect();
        let num = |s: &str, unit: &str| s.strip_suffix(unit)?.trim().parse::<u64>().ok();
        Some((num(parts.get(1)?, "bytes")?, num(parts.get(2)?, "packets")?))
    };
    let (bytes_in, packets_in) = field("in ")?;
    let (bytes_out, packets_out) = field("out ")?;
    Some(ChildCounters {
        bytes_in,
        packets_in,
        bytes_out,
        packets_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "gw: #1, ESTABLISHED, IKEv2, fa09a4ad3947f959_i* 5dfa9af0e839605f_r
  local  'client1.example' @ 172.29.1.2[4500] [10.0.0.1]
  remote 'gw.example.com' @ 172.29.1.1[4500]
  AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024
  established 0s ago, rekeying in 13221s
  net: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA1_96
    installed 0s ago, rekeying in 3299s, expires in 3960s
    in  f5bdc933,    252 bytes,     3 packets,     0s ago
    out 1d4159b4,      0 bytes,     0 packets
    local  10.0.0.1/32
    remote 192.168.0.0/24
";

    /// Two IKE SAs (one rekeyed by the client), the first with a Child SA being replaced.
    const REKEYED: &str = "gw: #2, ESTABLISHED, IKEv2, 0123456789abcdef_i* fedcba9876543210_r
  local  'client1.example' @ 172.29.1.2[4500] [10.0.0.1]
  remote 'gw.example.com' @ 172.29.1.1[4500]
  net: #3, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA1_96
    in  c0000003,      0 bytes,     0 packets
    out 0000abcd,     84 bytes,     1 packets,     1s ago
  net: #2, reqid 1, REKEYED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA1_96
    in  c0000002,    252 bytes,     3 packets,     5s ago
    out 1d4159b4,    252 bytes,     3 packets,     5s ago
gw: #1, REKEYED, IKEv2, aaaaaaaaaaaaaaaa_i* bbbbbbbbbbbbbbbb_r
";

    #[test]
    fn parses_spis() {
        assert_eq!(
            parse_spis(SAMPLE),
            Spis {
                ike: vec![("fa09a4ad3947f959".into(), "5dfa9af0e839605f".into())],
                child: vec![("f5bdc933".into(), "1d4159b4".into())],
            }
        );
        let s = parse_spis(REKEYED);
        assert_eq!(
            s.ike,
            [
                ("0123456789abcdef".into(), "fedcba9876543210".into()),
                ("aaaaaaaaaaaaaaaa".into(), "bbbbbbbbbbbbbbbb".into())
            ]
        );
        assert_eq!(
            s.child,
            [
                ("c0000003".into(), "0000abcd".into()),
                ("c0000002".into(), "1d4159b4".into())
            ]
        );
        assert_eq!(parse_spis("no SAs\n"), Spis::default());
    }

    #[test]
    fn parses_list_sas() {
        assert_eq!(parse_virtual_ip(SAMPLE), Some(Ipv4Addr::new(10, 0, 0, 1)));
        let c = parse_counters(SAMPLE).unwrap();
        assert_eq!(
            c,
            ChildCounters {
                bytes_in: 252,
                packets_in: 3,
                bytes_out: 0,
                packets_out: 0
            }
        );
    }
}

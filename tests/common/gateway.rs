//! The gateway under test, in the gateway namespace: `ipsec-server` (the default) or a
//! strongSwan responder (`INTEROP_GATEWAY=strongswan`; also the baseline of the benchmarks).
//!
//! strongSwan as the gateway needs nothing beyond docs/STRONGSWAN.md: with `kernel-libipsec` and
//! `install_routes = yes`, charon creates its TUN device `ipsec0` and, per Child SA, installs
//! `<client VIP>/32 dev ipsec0 src 192.168.0.1` in routing table 220 (with an `ip rule` to it),
//! so LAN→client packets forwarded by the gateway namespace (ip_forward=1, set by the topology)
//! go into the tunnel. The client pool is a swanctl `pools` entry; `local_ts` narrows the
//! client's TSr to LocalSubnet; the only PSK entry names the gateway's own ID, so it matches any
//! client ID.

use super::charon::{Charon, Suite};
use super::proc::Adopted;
use super::topo::{addr, Role, Topology};
use super::{poll_until, GATEWAY_ID, PSK};
use std::path::PathBuf;
use std::time::Duration;

/// Which implementation answers as the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayKind {
    /// `ipsec-server run --config FILE` (this crate's binary).
    IpsecServer,
    /// strongSwan charon as responder (kernel-libipsec).
    StrongSwan,
}

impl GatewayKind {
    /// `INTEROP_GATEWAY=strongswan` → StrongSwan; unset or `ipsec-server` → IpsecServer.
    pub fn from_env() -> GatewayKind {
        match std::env::var("INTEROP_GATEWAY").as_deref() {
            Err(_) | Ok("") | Ok("ipsec-server") => GatewayKind::IpsecServer,
            Ok("strongswan") => GatewayKind::StrongSwan,
            Ok(other) => panic!("INTEROP_GATEWAY={other:?}: expected ipsec-server or strongswan"),
        }
    }
}

/// What the gateway serves; rendered as the daemon's TOML (docs/DESIGN.md §1b) or as swanctl.conf.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub psk: String,
    pub suite: Suite,
    pub local_id: String,
    pub local_subnet: Vec<String>,
    pub client_ip_pool: String,
    pub ipsec_lifetime: u32,
    /// Seconds; 0 = unlimited (ipsec-server only: the strongSwan gateway keeps its default).
    pub ike_lifetime: u32,
    /// Extra `[gateway]` lines of the daemon's TOML (e.g. `dpd_interval = 3`).
    pub gateway_extra: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            psk: PSK.to_string(),
            suite: Suite::DEFAULT,
            local_id: GATEWAY_ID.to_string(),
            local_subnet: vec![addr::LOCAL_SUBNET.to_string()],
            client_ip_pool: addr::CLIENT_IP_POOL.to_string(),
            ipsec_lifetime: 86400,
            ike_lifetime: 86400,
            gateway_extra: Vec::new(),
        }
    }
}

impl GatewayConfig {
    pub fn suite(mut self, suite: Suite) -> Self {
        self.suite = suite;
        self
    }

    /// The daemon's config file. Only keys from docs/DESIGN.md §1b (unknown keys are errors there).
    pub fn to_toml(&self, state_dir: &str) -> String {
        let GatewayConfig {
            psk,
            suite,
            local_id,
            local_subnet,
            client_ip_pool,
            ipsec_lifetime,
            ike_lifetime,
            gateway_extra,
        } = self;
        let gateway_extra: String = gateway_extra.iter().map(|l| format!("{l}\n")).collect();
        let subnets: Vec<String> = local_subnet.iter().map(|s| format!("\"{s}\"")).collect();
        let subnets = subnets.join(", ");
        let Suite { enc, auth, pfs, .. } = suite;
        format!(
            r#"[gateway]
vpn_gateway_id = "vpn-interop01"
region_id = "local"
listen_addrs = ["0.0.0.0"]
ike_port = 500
nat_t_port = 4500
tun_name = "ipsec0"
state_dir = "{state_dir}"
control_socket = "{state_dir}/control.sock"
{gateway_extra}
[ipsec_server]
ipsec_server_name = "interop"
local_subnet = [{subnets}]
client_ip_pool = "{client_ip_pool}"
effect_immediately = false
psk_enabled = true
psk = "{psk}"

[ipsec_server.ike_config]
ike_version = "ikev2"
ike_mode = "main"
ike_enc_alg = "{enc}"
ike_auth_alg = "{auth}"
ike_pfs = "{pfs}"
ike_lifetime = {ike_lifetime}
local_id = "{local_id}"
remote_id = ""

[ipsec_server.ipsec_config]
ipsec_enc_alg = "{enc}"
ipsec_auth_alg = "{auth}"
ipsec_pfs = "{pfs}"
ipsec_lifetime = {ipsec_lifetime}
"#
        )
    }

    /// The equivalent strongSwan responder (see the module docs).
    pub fn to_swanctl(&self) -> String {
        let GatewayConfig {
            psk,
            suite,
            local_id,
            local_subnet,
            client_ip_pool,
            ..
        } = self;
        let p = suite.proposal;
        let local_ts = local_subnet.join(",");
        format!(
            r#"connections {{
    rw {{
        version = 2
        local_addrs = {gw}
        proposals = {p}
        pools = clients
        local {{
            auth = psk
            id = {local_id}
        }}
        remote {{
            auth = psk
        }}
        children {{
            lan {{
                local_ts = {local_ts}
                esp_proposals = {p}
            }}
        }}
    }}
}}
pools {{
    clients {{
        addrs = {client_ip_pool}
    }}
}}
secrets {{
    ike-gw {{
        id-gw = {local_id}
        secret = "{psk}"
    }}
}}
"#,
            gw = addr::GW_OUTSIDE
        )
    }
}

/// The running gateway.
pub enum Gateway {
    IpsecServer(Daemon),
    StrongSwan(Charon),
}

impl Gateway {
    /// Starts the gateway selected by `INTEROP_GATEWAY` (default: ipsec-server).
    pub fn start(topo: &Topology, cfg: &GatewayConfig) -> Gateway {
        Gateway::start_kind(GatewayKind::from_env(), topo, cfg)
    }

    pub fn start_kind(kind: GatewayKind, topo: &Topology, cfg: &GatewayConfig) -> Gateway {
        Gateway::start_kind_log(kind, topo, cfg, "debug")
    }

    /// [`Gateway::start`] with the daemon's `RUST_LOG` set to `rust_log` (a flood test logs at
    /// `info`, as in production, so that the log is not the bottleneck); ignored for strongSwan.
    pub fn start_log(topo: &Topology, cfg: &GatewayConfig, rust_log: &str) -> Gateway {
        Gateway::start_kind_log(GatewayKind::from_env(), topo, cfg, rust_log)
    }

    fn start_kind_log(
        kind: GatewayKind,
        topo: &Topology,
        cfg: &GatewayConfig,
        rust_log: &str,
    ) -> Gateway {
        match kind {
            GatewayKind::IpsecServer => {
                let state = topo.dir().join("ipsec-server/state");
                std::fs::create_dir_all(&state).expect("create state dir");
                let toml = cfg.to_toml(state.to_str().unwrap());
                Gateway::IpsecServer(Daemon::start_log(topo, &toml, rust_log))
            }
            GatewayKind::StrongSwan => {
                Gateway::StrongSwan(Charon::start(topo, Role::Gateway, &cfg.to_swanctl()))
            }
        }
    }

    /// ipsec-server (whatever `INTEROP_GATEWAY` says) with extra environment variables for the
    /// daemon: its test hooks (`IPSEC_SERVER_TEST_FIRST_SEQ`, README "Tests").
    pub fn start_daemon_env(topo: &Topology, cfg: &GatewayConfig, env: &[(&str, &str)]) -> Gateway {
        let state = topo.dir().join("ipsec-server/state");
        std::fs::create_dir_all(&state).expect("create state dir");
        let toml = cfg.to_toml(state.to_str().unwrap());
        Gateway::IpsecServer(Daemon::start_env(topo, &toml, "debug", env))
    }

    pub fn kind(&self) -> GatewayKind {
        match self {
            Gateway::IpsecServer(_) => GatewayKind::IpsecServer,
            Gateway::StrongSwan(_) => GatewayKind::StrongSwan,
        }
    }

    /// The gateway charon, when strongSwan is the gateway.
    pub fn charon(&self) -> Option<&Charon> {
        match self {
            Gateway::StrongSwan(c) => Some(c),
            Gateway::IpsecServer(_) => None,
        }
    }

    /// The PID of the gateway process (`ip netns exec` and charon's `sh -c` wrapper both
    /// exec, so this is the daemon or charon itself).
    pub fn pid(&self) -> u32 {
        match self {
            Gateway::IpsecServer(d) => d.pid,
            Gateway::StrongSwan(c) => c.pid,
        }
    }

    /// Panics if the gateway process has died (a crash during the test).
    pub fn assert_running(&self, topo: &Topology) {
        let (name, pid, exited) = match self {
            Gateway::IpsecServer(d) => ("ipsec-server", d.pid, d.exited(topo)),
            Gateway::StrongSwan(c) => (c.name.as_str(), c.pid, topo.exited(c.pid)),
        };
        if let Some(how) = exited {
            panic!("gateway {name} (pid {pid}) has ended ({how})");
        }
    }

    pub fn log_text(&self) -> String {
        match self {
            Gateway::IpsecServer(d) => std::fs::read_to_string(&d.log).unwrap_or_default(),
            Gateway::StrongSwan(c) => c.log_text(),
        }
    }
}

/// `ipsec-server run --config FILE` in the gateway namespace, `RUST_LOG=debug` (unless
/// started with [`Daemon::start_log`]), stdout and stderr to `{dir}/ipsec-server.log`.
pub struct Daemon {
    /// The process serving now: the one started here, or after `ipsec-server upgrade` its
    /// successor ([`Daemon::adopt_upgraded`]).
    pub pid: u32,
    pub config: PathBuf,
    pub log: PathBuf,
    /// The successor after an upgrade, stopped when the daemon is dropped (the topology
    /// stops only what it started).
    successor: Option<Adopted>,
}

impl Daemon {
    pub const BIN: &'static str = env!("CARGO_BIN_EXE_ipsec-server");

    /// Writes `toml`, runs `ipsec-server check` on it, and starts the daemon; ready once UDP 500
    /// and 4500 are bound and the TUN device `ipsec0` exists in the gateway namespace (≤ 15 s;
    /// an early exit fails at once).
    pub fn start(topo: &Topology, toml: &str) -> Daemon {
        Daemon::start_log(topo, toml, "debug")
    }

    /// [`Daemon::start`] with `RUST_LOG=rust_log`.
    pub fn start_log(topo: &Topology, toml: &str, rust_log: &str) -> Daemon {
        Daemon::start_env(topo, toml, rust_log, &[])
    }

    /// [`Daemon::start_log`] with further environment variables `env`.
    pub fn start_env(topo: &Topology, toml: &str, rust_log: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_in(topo, Role::Gateway, "ipsec-server", toml, rust_log, env)
    }

    /// [`Daemon::start_env`] in namespace `role`, its files named after `name` (several
    /// daemons in one topology: the nodes of a cluster).
    pub fn start_in(
        topo: &Topology,
        role: Role,
        name: &str,
        toml: &str,
        rust_log: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = topo.dir().join(name);
        std::fs::create_dir_all(&dir).expect("create daemon dir");
        let config = dir.join("config.toml");
        std::fs::write(&config, toml).expect("write config.toml");
        let cfg = config.to_str().unwrap();
        // `check` first: a rejected config fails here with the daemon's error code and message.
        let check = topo.exec(role, Daemon::BIN, &["check", "--config", cfg]);
        assert!(
            check.success(),
            "ipsec-server check rejected the test config:\n{check}\n{toml}"
        );
        let pid = topo.spawn(
            role,
            name,
            Daemon::BIN,
            &["run", "--config", cfg],
            &[&[("RUST_LOG", rust_log)], env].concat(),
        );
        let log = topo.dir().join(format!("{name}.log"));
        topo.add_log(&format!("{name} config"), &config);
        let ready = poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
            if let Some(how) = topo.exited(pid) {
                panic!("ipsec-server (pid {pid}) ended during startup ({how}); see its log below");
            }
            let udp = topo.exec(role, "ss", &["-Hlun"]);
            let bound = |port: &str| {
                udp.stdout.lines().any(|l| {
                    l.split_whitespace()
                        .nth(3)
                        .is_some_and(|a| a.ends_with(port))
                })
            };
            let tun = topo.exec(role, "ip", &["link", "show", "ipsec0"]).success();
            (bound(":500") && bound(":4500") && tun).then_some(())
        });
        assert!(
            ready.is_some(),
            "ipsec-server not ready after 15 s (UDP 500/4500 bound and TUN ipsec0)"
        );
        Daemon {
            pid,
            config,
            log,
            successor: None,
        }
    }

    /// A daemon the topology started by other means (`topo.spawn`): its PID, config and log.
    pub fn started(pid: u32, config: PathBuf, log: PathBuf) -> Daemon {
        Daemon {
            pid,
            config,
            log,
            successor: None,
        }
    }

    /// After `ipsec-server upgrade`: the new process `pid` (started by the old one with its
    /// stdout and stderr, so it logs into [`Daemon::log`] too) is this daemon from now on, and
    /// dropping the daemon stops it (SIGTERM, SIGKILL after 3 s, by pidfd).
    pub fn adopt_upgraded(&mut self, pid: u32) {
        let adopted = Adopted::new("ipsec-server (upgraded)", pid)
            .unwrap_or_else(|e| panic!("the upgraded daemon (pid {pid}) is not running: {e}"));
        self.successor = Some(adopted);
        self.pid = pid;
    }

    /// How the serving process ended, `None` while it runs.
    pub fn exited(&self, topo: &Topology) -> Option<String> {
        match &self.successor {
            Some(s) => s.exited(),
            None => topo.exited(self.pid),
        }
    }
}

/// What `ipsec-server upgrade` reported: `upgraded: pid OLD -> NEW, switch N ms`, optionally
/// followed by `, K IKE SAs kept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgraded {
    pub old_pid: u32,
    pub new_pid: u32,
    /// Last packet handled by the old process → first handled by the new, as the daemon
    /// measured it.
    pub switch_ms: u64,
    pub ike_sas_kept: Option<usize>,
}

pub fn parse_upgraded(stdout: &str) -> Option<Upgraded> {
    let [line] = stdout.lines().collect::<Vec<_>>()[..] else {
        return None;
    };
    let rest = line.strip_prefix("upgraded: pid ")?;
    let (old, rest) = rest.split_once(" -> ")?;
    let (new, rest) = rest.split_once(", switch ")?;
    let (switch, kept) = match rest.split_once(", ") {
        Some((switch, kept)) => (switch, Some(kept.strip_suffix(" IKE SAs kept")?)),
        None => (rest, None),
    };
    Some(Upgraded {
        old_pid: old.parse().ok()?,
        new_pid: new.parse().ok()?,
        switch_ms: switch.strip_suffix(" ms")?.parse().ok()?,
        ike_sas_kept: kept.map(str::parse).transpose().ok()?,
    })
}

impl Daemon {
    /// `ipsec-server upgrade` against this daemon's control socket (as `status` finds it) in
    /// namespace `role`, 30 s at most (the daemon's own bound is 10 s).
    pub fn run_upgrade(&self, topo: &Topology, role: Role) -> super::proc::CmdOutput {
        let cfg = self.config.to_str().unwrap();
        topo.exec_timeout(
            role,
            Daemon::BIN,
            &["upgrade", "--config", cfg],
            Duration::from_secs(30),
        )
    }

    /// Upgrades the daemon in place and checks the hand-over from outside — one line naming
    /// the old and the new PID, the old process gone with exit status 0, the new one adopted
    /// (the daemon's Drop stops it).
    pub fn upgrade(&mut self, topo: &Topology, role: Role) -> Upgraded {
        // The new process is the old one's child; when the old one exits it becomes ours, so
        // we reap it (`proc::Adopted`).
        super::proc::become_subreaper();
        let old = self.pid;
        let out = self
            .run_upgrade(topo, role)
            .expect_ok("ipsec-server upgrade");
        let up = parse_upgraded(&out.stdout)
            .unwrap_or_else(|| panic!("not `upgraded: pid OLD -> NEW, switch N ms`:\n{out}"));
        assert_eq!(up.old_pid, old, "upgrade names another old process:\n{out}");
        assert_ne!(up.new_pid, old, "upgrade kept the same process:\n{out}");
        self.adopt_upgraded(up.new_pid);
        let how = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
            topo.exited(old)
        })
        .unwrap_or_else(|| panic!("the old daemon (pid {old}) still runs 10 s after the upgrade"));
        assert_eq!(how, "exit code 0", "how the old daemon (pid {old}) ended");
        assert!(
            self.exited(topo).is_none(),
            "the new daemon (pid {}) has ended",
            up.new_pid
        );
        up
    }
}

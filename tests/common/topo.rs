//! Network namespaces and links of one test.

use super::proc::{self, CmdOutput, Procs};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

/// Addresses of the topology (fixed: every test has its own namespaces).
pub mod addr {
    use std::net::Ipv4Addr;
    /// The gateway's outside address (a bridge in the gateway ns); every client dials it.
    pub const GW_OUTSIDE: Ipv4Addr = Ipv4Addr::new(172, 29, 1, 1);
    /// Client 1 when directly on the outside link.
    pub const CLIENT: Ipv4Addr = Ipv4Addr::new(172, 29, 1, 2);
    /// The NAT box's outside address (`TopoOpts::nat`).
    pub const NAT_OUTSIDE: Ipv4Addr = Ipv4Addr::new(172, 29, 1, 3);
    /// Client 2 (`TopoOpts::second_client`), on the same link as client 1.
    pub const CLIENT2: Ipv4Addr = Ipv4Addr::new(172, 29, 1, 4);
    /// A second gateway address on the same bridge (`TopoOpts::second_gateway_addr`).
    pub const GW_OUTSIDE2: Ipv4Addr = Ipv4Addr::new(172, 29, 1, 9);
    /// The NAT box's inside address, client 1's default router behind NAT.
    pub const NAT_INSIDE: Ipv4Addr = Ipv4Addr::new(172, 29, 2, 1);
    /// Client 1 behind NAT.
    pub const CLIENT_BEHIND_NAT: Ipv4Addr = Ipv4Addr::new(172, 29, 2, 2);
    /// The gateway's LAN address.
    pub const GW_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
    /// The host on the gateway's LocalSubnet.
    pub const LAN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);
    pub const LOCAL_SUBNET: &str = "192.168.0.0/24";
    pub const CLIENT_IP_POOL: &str = "10.0.0.0/24";
    /// The second gateway node's outside address (`TopoOpts::cluster`).
    pub const GW2_OUTSIDE: Ipv4Addr = Ipv4Addr::new(172, 29, 1, 5);
    /// The second gateway node's LAN address (`TopoOpts::cluster`).
    pub const GW2_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
}

/// A namespace of the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Client2,
    Nat,
    Gateway,
    /// The second gateway node (`TopoOpts::cluster`).
    Gateway2,
    Lan,
}

impl Role {
    fn short(self) -> &'static str {
        match self {
            Role::Client => "cl",
            Role::Client2 => "cl2",
            Role::Nat => "nat",
            Role::Gateway => "gw",
            Role::Gateway2 => "gw2",
            Role::Lan => "lan",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TopoOpts {
    /// Put client 1 behind a NAT namespace that rewrites source ports.
    pub nat: bool,
    /// Add a second client namespace (172.29.1.4) on the gateway's outside link.
    pub second_client: bool,
    /// Give the gateway's outside bridge a second address (172.29.1.9).
    pub second_gateway_addr: bool,
    /// A second gateway node (172.29.1.5 outside on the same bridge, 192.168.0.2 on the
    /// LAN, which becomes a bridge in the LAN namespace holding 192.168.0.10).
    pub cluster: bool,
}

/// Namespaces, links, temp dir and tracked processes of one test; cleans all up on drop.
pub struct Topology {
    pub tag: String,
    pub opts: TopoOpts,
    dir: PathBuf,
    /// (role, namespace name), in creation order.
    namespaces: Vec<(Role, String)>,
    pub(crate) procs: Arc<Procs>,
}

/// Tags in use by live topologies of this process (names must not clash).
static TAGS: Mutex<Vec<String>> = Mutex::new(Vec::new());
const NS_PREFIX: &str = "ipt-";

impl Topology {
    /// Builds the namespaces for a test. `tag`: 1..=4 lowercase letters/digits, unique among
    /// the tests of the binary (it names the namespaces, interfaces and the temp dir).
    pub fn new(tag: &str, opts: TopoOpts) -> Topology {
        assert!(
            (1..=4).contains(&tag.len())
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "tag {tag:?}: 1..=4 of [a-z0-9]"
        );
        check_prerequisites();
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale);
        {
            let mut tags = TAGS.lock().unwrap_or_else(|e| e.into_inner());
            assert!(
                !tags.iter().any(|t| t == tag),
                "topology tag {tag:?} is already in use"
            );
            tags.push(tag.to_string());
        }
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("ipsec-interop-{tag}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let mut topo = Topology {
            tag: tag.to_string(),
            opts,
            dir,
            namespaces: Vec::new(),
            procs: Arc::default(),
        };
        // From here on a panic drops `topo`, which removes whatever was created so far.
        topo.build();
        topo
    }

    /// The namespace name of `role` (panics if the topology has no such namespace).
    pub fn ns(&self, role: Role) -> &str {
        self.namespaces
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, n)| n.as_str())
            .unwrap_or_else(|| panic!("topology {} has no {role:?} namespace", self.tag))
    }

    pub fn has(&self, role: Role) -> bool {
        self.namespaces.iter().any(|(r, _)| *r == role)
    }

    /// The test's temp dir (removed on drop unless the test failed and `INTEROP_KEEP=1`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Client 1's own address (behind the NAT when `opts.nat`).
    pub fn client_addr(&self, role: Role) -> Ipv4Addr {
        match (role, self.opts.nat) {
            (Role::Client, false) => addr::CLIENT,
            (Role::Client, true) => addr::CLIENT_BEHIND_NAT,
            (Role::Client2, _) => addr::CLIENT2,
            _ => panic!("{role:?} is not a client"),
        }
    }

    /// Runs `prog args…` inside namespace `role` with a 30 s deadline.
    pub fn exec(&self, role: Role, prog: &str, args: &[&str]) -> CmdOutput {
        self.exec_timeout(role, prog, args, Duration::from_secs(30))
    }

    pub fn exec_timeout(
        &self,
        role: Role,
        prog: &str,
        args: &[&str],
        timeout: Duration,
    ) -> CmdOutput {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(role), prog]).args(args);
        proc::run(cmd, timeout)
    }

    /// `sh -c script` inside namespace `role`.
    pub fn sh(&self, role: Role, script: &str) -> CmdOutput {
        self.exec(role, "sh", &["-c", script])
    }

    /// Starts a long-running `prog args…` in namespace `role`, output to `{dir}/{name}.log`.
    /// Returns its PID; it is killed by PID on drop (or earlier with [`Topology::kill`]).
    pub fn spawn(
        &self,
        role: Role,
        name: &str,
        prog: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> u32 {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(role), prog]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = self.dir.join(format!("{name}.log"));
        self.procs.spawn(name, cmd, &log)
    }

    /// Stops a process started by this topology: SIGTERM, SIGKILL after 3 s.
    pub fn kill(&self, pid: u32) {
        self.procs.kill(pid, Duration::from_secs(3));
    }

    /// How the tracked process `pid` ended (e.g. "exit code 1"), `None` while it runs.
    pub fn exited(&self, pid: u32) -> Option<String> {
        self.procs.exited(pid)
    }

    /// Waits (≤ `timeout`) until something in namespace `role` listens on `port`
    /// (`proto`: "tcp" or "udp"), per `ss`.
    pub fn wait_listening(&self, role: Role, proto: &str, port: u16, timeout: Duration) -> bool {
        let flag = if proto == "tcp" { "-Hltn" } else { "-Hlun" };
        let suffix = format!(":{port}");
        super::poll_until(timeout, Duration::from_millis(50), || {
            let out = self.exec(role, "ss", &[flag]);
            out.stdout
                .lines()
                .any(|l| {
                    l.split_whitespace()
                        .nth(3)
                        .is_some_and(|a| a.ends_with(&suffix))
                })
                .then_some(())
        })
        .is_some()
    }

    /// TCP from `from` (bound to `src`) to an `iperf3 -s -1` on the LAN host (PID-tracked)
    /// for `secs` seconds, with `extra` client arguments (e.g. `-i 0.5`); the client's `-J`
    /// report (panics unless iperf3 succeeded).
    pub fn iperf3_json(
        &self,
        from: Role,
        src: Ipv4Addr,
        secs: u32,
        extra: &[&str],
    ) -> serde_json::Value {
        let port = "5202";
        let lan = addr::LAN_HOST.to_string();
        let server = self.spawn(
            Role::Lan,
            "iperf3-server",
            "iperf3",
            &["-s", "-1", "-B", &lan, "-p", port],
            &[],
        );
        assert!(
            self.wait_listening(Role::Lan, "tcp", 5202, Duration::from_secs(5)),
            "iperf3 -s did not start"
        );
        let (src, secs_arg) = (src.to_string(), secs.to_string());
        let mut args = vec!["-c", &lan, "-p", port, "-B", &src, "-t", &secs_arg, "-J"];
        args.extend_from_slice(extra);
        let out = self.exec_timeout(
            from,
            "iperf3",
            &args,
            Duration::from_secs(u64::from(secs) + 20),
        );
        self.kill(server);
        let out = out.expect_ok("iperf3 -c");
        serde_json::from_str(&out.stdout).expect("iperf3 -J output is JSON")
    }

    /// Registers a log file whose tail is printed if the test fails.
    pub fn add_log(&self, name: &str, path: &Path) {
        self.procs.add_log(name, path);
    }

    /// Prints the tail of every registered log plus addresses and routes of each namespace.
    pub fn dump_diagnostics(&self) {
        eprintln!(
            "===== interop diagnostics for topology {:?} ({})",
            self.tag,
            self.dir.display()
        );
        for (name, path) in self.procs.logs() {
            let text =
                std::fs::read_to_string(&path).unwrap_or_else(|e| format!("<unreadable: {e}>"));
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(80);
            eprintln!(
                "----- {name}: last {} of {} lines of {}",
                lines.len() - from,
                lines.len(),
                path.display()
            );
            for l in &lines[from..] {
                eprintln!("{l}");
            }
        }
        for (_, ns) in &self.namespaces {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns, "sh", "-c", "ip -br addr; ip route show table all | grep -v -e '^local' -e '^broadcast' -e '^fe80' -e '^multicast'; ip rule"]);
            let out = proc::run(cmd, Duration::from_secs(5));
            eprintln!("----- namespace {ns}\n{}{}", out.stdout, out.stderr);
        }
        eprintln!("===== end of diagnostics");
    }

    fn build(&mut self) {
        let tag = self.tag.clone();
        let pid = std::process::id();
        let mut roles = vec![Role::Client, Role::Gateway, Role::Lan];
        if self.opts.second_client {
            roles.push(Role::Client2);
        }
        if self.opts.nat {
            roles.push(Role::Nat);
        }
        if self.opts.cluster {
            roles.push(Role::Gateway2);
        }
        for role in roles {
            let name = format!("{NS_PREFIX}{tag}-{pid}-{}", role.short());
            ip(&["netns", "add", &name]);
            self.namespaces.push((role, name));
            self.ip(role, &["link", "set", "lo", "up"]);
        }
        // Interface names: one letter + tag (≤ 4) + pid (≤ 7 digits) ≤ 12 < IFNAMSIZ. They
        // are created directly inside their namespaces, never in the caller's.
        let ifn = |c: char| format!("{c}{tag}{pid}");
        let (br, gw_port1, gw_port2, gw_lan) = (ifn('w'), ifn('g'), ifn('h'), ifn('m'));

        // Gateway: a bridge carries the outside subnet so several clients (or the NAT box)
        // share 172.29.1.0/24 with it; forwarding on for the LAN side.
        self.ip(Role::Gateway, &["link", "add", &br, "type", "bridge"]);
        self.ip(
            Role::Gateway,
            &[
                "addr",
                "add",
                &format!("{}/24", addr::GW_OUTSIDE),
                "dev",
                &br,
            ],
        );
        if self.opts.second_gateway_addr {
            self.ip(
                Role::Gateway,
                &[
                    "addr",
                    "add",
                    &format!("{}/24", addr::GW_OUTSIDE2),
                    "dev",
                    &br,
                ],
            );
        }
        self.ip(Role::Gateway, &["link", "set", &br, "up"]);
        self.sysctl(Role::Gateway, "net.ipv4.ip_forward=1");

        // Client 1, directly or behind the NAT namespace.
        let first_hop = if self.opts.nat {
            Role::Nat
        } else {
            Role::Client
        };
        let (hop_if, hop_addr) = if self.opts.nat {
            (ifn('o'), addr::NAT_OUTSIDE)
        } else {
            (ifn('c'), addr::CLIENT)
        };
        self.veth(
            first_hop,
            &hop_if,
            &format!("{hop_addr}/24"),
            &gw_port1,
            &br,
        );
        if self.opts.nat {
            let (cl_if, nat_in) = (ifn('c'), ifn('n'));
            self.veth_pair(Role::Client, &cl_if, Role::Nat, &nat_in);
            self.ip(
                Role::Nat,
                &[
                    "addr",
                    "add",
                    &format!("{}/24", addr::NAT_INSIDE),
                    "dev",
                    &nat_in,
                ],
            );
            self.ip(Role::Nat, &["link", "set", &nat_in, "up"]);
            self.ip(
                Role::Client,
                &[
                    "addr",
                    "add",
                    &format!("{}/24", addr::CLIENT_BEHIND_NAT),
                    "dev",
                    &cl_if,
                ],
            );
            self.ip(Role::Client, &["link", "set", &cl_if, "up"]);
            self.ip(
                Role::Client,
                &[
                    "route",
                    "add",
                    "default",
                    "via",
                    &addr::NAT_INSIDE.to_string(),
                ],
            );
            self.sysctl(Role::Nat, "net.ipv4.ip_forward=1");
            // Port-rewriting NAT: IKE from 500 and from 4500 each get a random source port.
            let rules = format!(
                "table ip nat {{\n chain post {{\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"{hop_if}\" counter masquerade random,fully-random\n }}\n}}\n"
            );
            let path = self.dir.join("nat.nft");
            std::fs::write(&path, rules).expect("write nat.nft");
            self.exec(Role::Nat, "nft", &["-f", path.to_str().unwrap()])
                .expect_ok("nft -f nat.nft");
        }
        if self.opts.second_client {
            self.veth(
                Role::Client2,
                &ifn('d'),
                &format!("{}/24", addr::CLIENT2),
                &gw_port2,
                &br,
            );
        }

        // LAN host: default route via the gateway, which routes 10.0.0.0/24 into the tunnel.
        let lan_if = ifn('l');
        self.veth_pair(Role::Lan, &lan_if, Role::Gateway, &gw_lan);
        let lan_if = if self.opts.cluster {
            self.cluster_links(&br, &lan_if)
        } else {
            lan_if
        };
        self.ip(
            Role::Lan,
            &[
                "addr",
                "add",
                &format!("{}/24", addr::LAN_HOST),
                "dev",
                &lan_if,
            ],
        );
        self.ip(Role::Lan, &["link", "set", &lan_if, "up"]);
        self.ip(
            Role::Gateway,
            &[
                "addr",
                "add",
                &format!("{}/24", addr::GW_LAN),
                "dev",
                &gw_lan,
            ],
        );
        self.ip(Role::Gateway, &["link", "set", &gw_lan, "up"]);
        self.ip(
            Role::Lan,
            &["route", "add", "default", "via", &addr::GW_LAN.to_string()],
        );

        // Fail early (with a clear message) if the plumbing is broken.
        let mut checks = vec![(Role::Client, addr::GW_OUTSIDE), (Role::Lan, addr::GW_LAN)];
        if self.opts.second_client {
            checks.push((Role::Client2, addr::GW_OUTSIDE));
        }
        if self.opts.second_gateway_addr {
            checks.push((Role::Client, addr::GW_OUTSIDE2));
        }
        if self.opts.cluster {
            checks.push((Role::Client, addr::GW2_OUTSIDE));
            checks.push((Role::Lan, addr::GW2_LAN));
        }
        for (role, dst) in checks {
            self.exec(role, "ping", &["-c", "1", "-W", "3", &dst.to_string()])
                .expect_ok(&format!("topology self-check: {role:?} → {dst}"));
        }
    }

    /// `TopoOpts::cluster`: the second node on the outside bridge `br`, and a LAN bridge in
    /// the LAN namespace joining `lan_port` (the first node's link) and the second node's
    /// link. Returns the bridge, the interface the LAN host's address goes on.
    fn cluster_links(&self, br: &str, lan_port: &str) -> String {
        let tag = &self.tag;
        let pid = std::process::id();
        let ifn = |c: char| format!("{c}{tag}{pid}");
        self.veth(
            Role::Gateway2,
            &ifn('e'),
            &format!("{}/24", addr::GW2_OUTSIDE),
            &ifn('f'),
            br,
        );
        self.sysctl(Role::Gateway2, "net.ipv4.ip_forward=1");
        let (lan_br, lan_port2, gw2_lan) = (ifn('v'), ifn('u'), ifn('k'));
        self.ip(Role::Lan, &["link", "add", &lan_br, "type", "bridge"]);
        self.ip(Role::Lan, &["link", "set", &lan_br, "up"]);
        self.veth_pair(Role::Lan, &lan_port2, Role::Gateway2, &gw2_lan);
        for port in [lan_port, lan_port2.as_str()] {
            self.ip(Role::Lan, &["link", "set", port, "master", &lan_br]);
            self.ip(Role::Lan, &["link", "set", port, "up"]);
        }
        let cidr = format!("{}/24", addr::GW2_LAN);
        self.ip(Role::Gateway2, &["addr", "add", &cidr, "dev", &gw2_lan]);
        self.ip(Role::Gateway2, &["link", "set", &gw2_lan, "up"]);
        lan_br
    }

    /// A veth pair from `role` (address `cidr`) to a port of the gateway's bridge `br`.
    fn veth(&self, role: Role, ifname: &str, cidr: &str, gw_port: &str, br: &str) {
        self.veth_pair(role, ifname, Role::Gateway, gw_port);
        self.ip(role, &["addr", "add", cidr, "dev", ifname]);
        self.ip(role, &["link", "set", ifname, "up"]);
        self.ip(Role::Gateway, &["link", "set", gw_port, "master", br]);
        self.ip(Role::Gateway, &["link", "set", gw_port, "up"]);
    }

    fn veth_pair(&self, a: Role, a_if: &str, b: Role, b_if: &str) {
        ip(&[
            "link",
            "add",
            a_if,
            "netns",
            self.ns(a),
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            self.ns(b),
        ]);
    }

    fn ip(&self, role: Role, args: &[&str]) {
        let mut all = vec!["-n", self.ns(role)];
        all.extend_from_slice(args);
        ip(&all);
    }

    fn sysctl(&self, role: Role, kv: &str) {
        self.exec(role, "sysctl", &["-qw", kv])
            .expect_ok(&format!("sysctl {kv}"));
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            self.dump_diagnostics();
        }
        self.procs.kill_all(Duration::from_secs(3));
        for (_, ns) in self.namespaces.iter().rev() {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "del", ns]);
            let out = proc::run(cmd, Duration::from_secs(10));
            if !out.success() {
                eprintln!("[harness] could not delete namespace {ns}:\n{out}");
            }
        }
        if failed && std::env::var("INTEROP_KEEP").is_ok_and(|v| v == "1") {
            eprintln!("[harness] INTEROP_KEEP=1: kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        TAGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|t| *t != self.tag);
    }
}

/// `ip ARGS…` in the caller's namespace; panics on failure.
fn ip(args: &[&str]) {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    proc::run(cmd, Duration::from_secs(10)).expect_ok("ip");
}

/// Not root or no strongSwan is an error, not a silent pass.
#[allow(unsafe_code)] // geteuid(2): std does not wrap it
fn check_prerequisites() {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "interop tests need root (network namespaces, TUN)");
    for tool in ["/usr/lib/ipsec/charon", "/usr/sbin/swanctl"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} missing: apt-get install strongswan-charon strongswan-swanctl libcharon-extra-plugins"
        );
    }
}

/// Deletes namespaces left by earlier runs whose test process is gone (killed before its
/// destructors ran). Their processes died with it (PR_SET_PDEATHSIG), so only names remain.
fn sweep_stale() {
    // Temp dirs `ipsec-interop-{tag}-{pid}` of dead test processes.
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("ipsec-interop-") else {
                continue;
            };
            let Some(Ok(pid)) = rest.rsplit('-').next().map(str::parse::<u32>) else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('-').collect();
        let [_, pid, _] = parts[..] else { continue };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue; // owner alive (another test binary running now)
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "del", &name]);
        let _ = proc::run(cmd, Duration::from_secs(5));
        eprintln!("[harness] removed stale namespace {name}");
    }
}

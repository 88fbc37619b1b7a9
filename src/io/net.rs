//! Configuration of the gateway's network namespace: routes to the client pool through the
//! TUN device, IPv4 forwarding, masquerading of pool traffic and TCP MSS clamping.
//!
//! It drives iproute2 (`ip`) and nftables (`nft`) as commands: they are installed on every
//! gateway, their error messages are the ones operators know, and the rules are plain text in
//! one place. Each command runs with a timeout ([`COMMAND_TIMEOUT`]) in the calling thread's
//! network namespace.
//!
//! Invariants:
//! - Interface names and table suffixes are checked against narrow character sets before
//!   they reach a command line or an nft script, so nothing can be injected through them.
//! - Every nftables object this module creates lives in a table of its own named
//!   `ipsec_server_<suffix>_nat` / `ipsec_server_<suffix>_mss`, created atomically (one
//!   `nft -f` transaction that also replaces a stale table of that name from a crashed run)
//!   and deleted when its guard ([`Masquerade`], [`MssClamp`]) is dropped or removed. Other
//!   tables of the host's firewall are never touched.
//! - [`add_route`] and [`del_route`] are idempotent: adding replaces, deleting a missing route
//!   succeeds.
//! - A failure names the command line, its exit status and its stderr.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

use super::context;
use super::tun::validate_ifname;

/// The longest a single `ip`/`nft` command may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Routes `net` through `dev` (`ip -4 route replace NET dev DEV`); replaces an existing route
/// to the same prefix.
pub fn add_route(net: Ipv4Net, dev: &str) -> io::Result<()> {
    validate_ifname(dev)?;
    let net = net.trunc().to_string();
    run("ip", &["-4", "route", "replace", &net, "dev", dev], None).map(drop)
}

/// Deletes the route to `net` through `dev`; a route that is not there is not an error.
pub fn del_route(net: Ipv4Net, dev: &str) -> io::Result<()> {
    validate_ifname(dev)?;
    let net = net.trunc().to_string();
    match run("ip", &["-4", "route", "del", &net, "dev", dev], None) {
        Ok(_) => Ok(()),
        // iproute2 reports a missing route as ESRCH.
        Err(e) if e.to_string().contains("No such process") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Gives `dev` the address `addr` (host address and prefix, e.g. `10.0.0.1/24`):
/// `ip -4 addr replace ADDR dev DEV`.
pub fn add_address(addr: Ipv4Net, dev: &str) -> io::Result<()> {
    validate_ifname(dev)?;
    run(
        "ip",
        &["-4", "addr", "replace", &addr.to_string(), "dev", dev],
        None,
    )
    .map(drop)
}

/// Turns IPv4 forwarding (`net.ipv4.ip_forward`) on or off; returns the previous setting so
/// the caller can restore it.
pub fn set_ip_forward(on: bool) -> io::Result<bool> {
    let prev = std::fs::read_to_string(IP_FORWARD)
        .map_err(|e| context(format_args!("read {IP_FORWARD}"), e))?;
    let prev = prev.trim() != "0";
    if prev != on {
        std::fs::write(IP_FORWARD, if on { "1\n" } else { "0\n" })
            .map_err(|e| context(format_args!("write {IP_FORWARD}"), e))?;
    }
    Ok(prev)
}

/// Source NAT of the pool's traffic that leaves through any interface but the tunnel, so
/// clients reach networks that have no route back to the pool. The nft table is deleted when
/// this is dropped or [`Masquerade::remove`]d.
#[derive(Debug)]
pub struct Masquerade {
    table: NftTable,
}

impl Masquerade {
    /// The nft table holding the rule (family `ip`).
    pub fn table(&self) -> &str {
        &self.table.name
    }

    /// The table a previous process of this gateway created for `table_suffix` (an
    /// upgrade's hand-over): owned from here on, nothing run now.
    pub fn adopt(table_suffix: &str) -> io::Result<Self> {
        NftTable::adopt("ip", table_name(table_suffix, "nat")?).map(|table| Self { table })
    }

    /// Leaves the table in place (for the process taking over).
    pub fn keep(mut self) {
        self.table.live = false;
    }

    /// Deletes the table now, reporting a failure that drop would only log.
    pub fn remove(mut self) -> io::Result<()> {
        self.table.delete()
    }
}

/// Installs table `ip ipsec_server_<table_suffix>_nat` with a postrouting rule masquerading
/// packets from `pool` that leave through an interface other than `tun`.
pub fn masquerade(table_suffix: &str, pool: Ipv4Net, tun: &str) -> io::Result<Masquerade> {
    validate_ifname(tun)?;
    let name = table_name(table_suffix, "nat")?;
    let pool = pool.trunc();
    let body = format!(
        "    chain postrouting {{\n\
         \x20       type nat hook postrouting priority 100; policy accept;\n\
         \x20       ip saddr {pool} oifname != \"{tun}\" masquerade\n\
         \x20   }}\n"
    );
    let table = NftTable::create("ip", name, &body)?;
    Ok(Masquerade { table })
}

/// TCP MSS clamping to the route MTU (`rt mtu`) for SYN and SYN-ACK segments forwarded into
/// or out of the tunnel, so TCP through the tunnel never needs fragmentation or PMTU
/// discovery. The nft table is deleted when this is dropped or [`MssClamp::remove`]d.
#[derive(Debug)]
pub struct MssClamp {
    table: NftTable,
}

impl MssClamp {
    /// The nft table holding the rules (family `inet`).
    pub fn table(&self) -> &str {
        &self.table.name
    }

    /// The table a previous process of this gateway created for `table_suffix` (an
    /// upgrade's hand-over): owned from here on, nothing run now.
    pub fn adopt(table_suffix: &str) -> io::Result<Self> {
        NftTable::adopt("inet", table_name(table_suffix, "mss")?).map(|table| Self { table })
    }

    /// Leaves the table in place (for the process taking over).
    pub fn keep(mut self) {
        self.table.live = false;
    }

    /// Deletes the table now, reporting a failure that drop would only log.
    pub fn remove(mut self) -> io::Result<()> {
        self.table.delete()
    }
}

/// Installs table `inet ipsec_server_<table_suffix>_mss` with a forward-hook rule (mangle
/// priority) setting the MSS option of SYN/SYN-ACK segments entering or leaving `tun` to the
/// route MTU minus the headers.
pub fn clamp_mss(table_suffix: &str, tun: &str) -> io::Result<MssClamp> {
    validate_ifname(tun)?;
    let name = table_name(table_suffix, "mss")?;
    let body = format!(
        "    chain forward {{\n\
         \x20       type filter hook forward priority -150; policy accept;\n\
         \x20       oifname \"{tun}\" tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu\n\
         \x20       iifname \"{tun}\" tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu\n\
         \x20   }}\n"
    );
    let table = NftTable::create("inet", name, &body)?;
    Ok(MssClamp { table })
}

// ---------------------------------------------------------------------------------------
// helpers

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// An nftables table this process created; deleted on drop unless already deleted.
#[derive(Debug)]
struct NftTable {
    family: &'static str,
    name: String,
    live: bool,
}

impl NftTable {
    /// Creates (or atomically replaces) `family name` holding `body`, in one transaction.
    fn create(family: &'static str, name: String, body: &str) -> io::Result<NftTable> {
        // "table X" first makes "delete table X" valid whether or not X exists.
        let script =
            format!("table {family} {name}\ndelete table {family} {name}\ntable {family} {name} {{\n{body}}}\n");
        run("nft", &["-f", "-"], Some(&script))
            .map_err(|e| context(format_args!("nft: create table {family} {name}"), e))?;
        Ok(NftTable {
            family,
            name,
            live: true,
        })
    }

    /// `family name`, created by another process of this gateway, owned from here on.
    fn adopt(family: &'static str, name: String) -> io::Result<NftTable> {
        Ok(NftTable {
            family,
            name,
            live: true,
        })
    }

    fn delete(&mut self) -> io::Result<()> {
        if !self.live {
            return Ok(());
        }
        self.live = false;
        match run("nft", &["delete", "table", self.family, &self.name], None) {
            Ok(_) => Ok(()),
            // Someone (an operator's `nft flush ruleset`) removed it already.
            Err(e) if e.to_string().contains("No such file or directory") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        if let Err(e) = self.delete() {
            tracing::warn!("leaving nft table {} {}: {e}", self.family, self.name);
        }
    }
}

/// `ipsec_server_<suffix>_<kind>`, with `suffix` of 1..=32 characters `[A-Za-z0-9_]` (the
/// daemon passes its TUN name; `config` holds `tun_name` to what this and an interface name
/// accept, which tests/check.rs verifies).
pub fn table_name(suffix: &str, kind: &str) -> io::Result<String> {
    let ok = !suffix.is_empty()
        && suffix.len() <= 32
        && suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        return Err(super::invalid_input(format!(
            "invalid nft table suffix {suffix:?}: want 1..=32 characters of [A-Za-z0-9_]"
        )));
    }
    Ok(format!("ipsec_server_{suffix}_{kind}"))
}

/// Runs `program args` (found in the sbin/bin directories, whatever `PATH` says), feeding
/// `stdin` if given, killing it after [`COMMAND_TIMEOUT`]; returns its stdout, or an error
/// naming the command line, the exit status and stderr.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> io::Result<String> {
    let cmdline = format!("`{program} {}`", args.join(" "));
    let mut child = Command::new(locate(program))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| context(format_args!("{cmdline}: spawn"), e))?;
    let input = child.stdin.take();
    let output = child.stdout.take();
    let errors = child.stderr.take();
    let (status, out, err) = std::thread::scope(|s| {
        if let (Some(mut w), Some(text)) = (input, stdin) {
            // A child that exits without reading makes this fail; its status tells why.
            s.spawn(move || w.write_all(text.as_bytes()));
        }
        let out = s.spawn(move || read_all(output));
        let err = s.spawn(move || read_all(errors));
        let status = wait_bounded(&mut child, COMMAND_TIMEOUT);
        (
            status,
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
        )
    });
    let status = status.map_err(|e| context(&cmdline, e))?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "{cmdline} failed ({status}): {}",
            err.trim()
        )));
    }
    Ok(out)
}

fn read_all(pipe: Option<impl Read>) -> String {
    let mut s = String::new();
    if let Some(mut p) = pipe {
        let mut bytes = Vec::new();
        // A read error leaves what was read; the exit status is the verdict.
        let _ = p.read_to_end(&mut bytes);
        s = String::from_utf8_lossy(&bytes).into_owned();
    }
    s
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> io::Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            // Kill and reap; the timeout is the error worth reporting.
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("killed after {} s", timeout.as_secs()),
            ));
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// Where `program` lives: root's tools are in sbin, which a daemon's `PATH` may lack.
fn locate(program: &str) -> std::path::PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| program.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::testns::{sh, NetNs};

    fn veth(ns: &NetNs) {
        ns.run(|| {
            sh("ip link add iov0 type veth peer name iov1 && ip link set iov0 up && ip link set iov1 up")
                .expect("veth pair");
        });
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("cidr")
    }

    #[test]
    #[ignore = "needs root: network namespace"]
    fn route_add_replace_delete() {
        let ns = NetNs::new("net-route").expect("netns");
        veth(&ns);
        ns.run(|| {
            let routes = || -> Vec<(String, String)> {
                let out = sh("ip -j -4 route show").expect("ip route");
                let v: serde_json::Value = serde_json::from_str(&out).expect("json");
                v.as_array()
                    .expect("list")
                    .iter()
                    .map(|r| {
                        (
                            r["dst"].as_str().unwrap_or("").to_owned(),
                            r["dev"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            };
            let want = ("10.99.0.0/24".to_owned(), "iov0".to_owned());
            add_route(net("10.99.0.7/24"), "iov0").expect("add");
            assert!(routes().contains(&want), "{:?}", routes());
            add_route(net("10.99.0.0/24"), "iov0").expect("add again replaces");
            assert_eq!(routes().iter().filter(|r| **r == want).count(), 1);
            del_route(net("10.99.0.0/24"), "iov0").expect("del");
            assert!(!routes().contains(&want));
            del_route(net("10.99.0.0/24"), "iov0").expect("del missing is ok");

            let err = add_route(net("10.98.0.0/24"), "nosuchdev").expect_err("no device");
            assert!(err.to_string().contains("ip -4 route replace"), "{err}");
            assert_eq!(
                add_route(net("10.98.0.0/24"), "bad dev").map_err(|e| e.kind()),
                Err(io::ErrorKind::InvalidInput)
            );
        });
    }

    #[test]
    #[ignore = "needs root: network namespace"]
    fn ip_forward_toggles_and_reports_previous() {
        let ns = NetNs::new("net-forward").expect("netns");
        ns.run(|| {
            // A new namespace starts with forwarding off.
            assert!(!set_ip_forward(true).expect("on"));
            assert_eq!(
                sh("cat /proc/sys/net/ipv4/ip_forward")
                    .expect("read")
                    .trim(),
                "1"
            );
            assert!(set_ip_forward(true).expect("on again"));
            assert!(set_ip_forward(false).expect("off"));
            assert_eq!(
                sh("cat /proc/sys/net/ipv4/ip_forward")
                    .expect("read")
                    .trim(),
                "0"
            );
        });
    }

    #[test]
    #[ignore = "needs root: network namespace, nftables"]
    fn masquerade_and_clamp_tables_live_as_long_as_their_guards() {
        let ns = NetNs::new("net-nft").expect("netns");
        ns.run(|| {
            let tables = || sh("nft list tables").expect("nft list tables");
            let m = masquerade("t1", net("10.66.0.0/24"), "iotun0").expect("masquerade");
            assert_eq!(m.table(), "ipsec_server_t1_nat");
            let c = clamp_mss("t1", "iotun0").expect("clamp");
            assert_eq!(c.table(), "ipsec_server_t1_mss");
            let listed = tables();
            assert!(listed.contains("table ip ipsec_server_t1_nat"), "{listed}");
            assert!(
                listed.contains("table inet ipsec_server_t1_mss"),
                "{listed}"
            );
            let rules = sh("nft list ruleset").expect("ruleset");
            assert!(
                rules.contains("ip saddr 10.66.0.0/24 oifname != \"iotun0\" masquerade"),
                "{rules}"
            );
            assert!(rules.contains("maxseg size set rt mtu"), "{rules}");

            // Creating again replaces the stale table instead of failing or duplicating.
            let m2 = masquerade("t1", net("10.66.0.0/24"), "iotun0").expect("replace");
            let rules = sh("nft list table ip ipsec_server_t1_nat").expect("table");
            assert_eq!(rules.matches("masquerade").count(), 1, "{rules}");
            let mut m = m;
            m.table.live = false; // the table is m2's now: dropping m must not delete it
            drop(m);

            drop(c);
            assert!(!tables().contains("ipsec_server_t1_mss"));
            m2.remove().expect("remove");
            assert!(!tables().contains("ipsec_server_t1_nat"));

            assert!(masquerade("bad-suffix", net("10.66.0.0/24"), "iotun0").is_err());
            assert!(clamp_mss("t1", "tun\"0").is_err());
        });
    }

    #[test]
    fn command_failure_names_the_command() {
        let err = run("sh", &["-c", "echo oops >&2; exit 3"], None).expect_err("fails");
        let msg = err.to_string();
        assert!(
            msg.contains("`sh -c") && msg.contains("oops") && msg.contains('3'),
            "{msg}"
        );
        let out = run("cat", &[], Some("fed via stdin")).expect("cat");
        assert_eq!(out, "fed via stdin");
    }
}

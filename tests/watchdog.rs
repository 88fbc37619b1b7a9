//! The daemon never lives half alive (docs/DESIGN.md §6.11, ARCHITECTURE.md §2): when its TUN device disappears under
//! it (`ip link del`), it ends with a non-zero status and one clear log line, for a supervisor
//! to restart it, instead of running on without a data plane.
//!
//! Root: the daemon runs in a network namespace of the test's own (`dwd-<test>-<pid>`), with
//! only its loopback; the namespace, the temp dir and the daemon (killed by PID) are removed
//! even when the test fails. The daemon's config is the interop harness's
//! ([`common::GatewayConfig`]), its process handling the harness's [`common::proc::Procs`].
// Test code: deadlines and timings over real sockets and processes read the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::proc::{self, Procs};
use common::{poll_until, GatewayConfig};

const BIN: &str = env!("CARGO_BIN_EXE_ipsec-server");

#[test]
#[ignore = "needs root: network namespace, TUN"]
fn deleting_the_tun_device_ends_the_daemon() {
    let ns = Netns::new("tun");
    let pid = ns.start_daemon();

    let t0 = Instant::now();
    ns.ip(&["link", "del", "ipsec0"]);
    let ended = poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
        ns.procs.exited(pid)
    });
    let log = ns.log();
    let ended = ended.unwrap_or_else(|| {
        panic!("the daemon still runs 5 s after its TUN device was deleted; log:\n{log}")
    });
    assert_eq!(ended, "exit code 70", "log:\n{log}");
    let fatal: Vec<&str> = log.lines().filter(|l| l.contains("fatal:")).collect();
    assert_eq!(
        fatal.len(),
        1,
        "exactly one line, whatever the workers:\n{log}"
    );
    assert!(
        fatal[0].contains("ERROR")
            && fatal[0].contains("thread 'dp-")
            && fatal[0].contains("TUN ipsec0 is gone")
            && fatal[0].contains("exiting with status 70"),
        "the line names the thread and the cause:\n{log}"
    );
    eprintln!("ended {:?} after the deletion: {}", t0.elapsed(), fatal[0]);
}

/// A network namespace with its loopback up, a temp dir and the processes started in it; on
/// drop (also while a failed test unwinds) the processes are killed by PID, then the
/// namespace and the temp dir are removed.
struct Netns {
    name: String,
    dir: PathBuf,
    procs: Procs,
}

impl Netns {
    #[allow(unsafe_code)] // geteuid(2): std does not wrap it
    fn new(test: &str) -> Netns {
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(euid, 0, "this test needs root (network namespace, TUN)");
        let pid = std::process::id();
        let name = format!("dwd-{test}-{pid}");
        let dir = std::env::temp_dir().join(format!("ipsec-watchdog-{test}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state")).expect("temp dir");
        // A leftover of a killed run with the same PID would make `add` fail.
        let _ = run_ip(&["netns", "del", &name]);
        let ns = Netns {
            name,
            dir,
            procs: Procs::default(),
        };
        // From here on a panic drops `ns`, which removes what exists so far.
        run_ip(&["netns", "add", &ns.name]).expect_ok("ip netns add");
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS…`; panics on failure.
    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run_ip(&all).expect_ok("ip");
    }

    /// Runs the daemon with the interop harness's config; returns its PID once UDP 500 is
    /// bound and its TUN device `ipsec0` exists (≤ 15 s).
    fn start_daemon(&self) -> u32 {
        let state = self.dir.join("state");
        let config = self.dir.join("config.toml");
        let toml = GatewayConfig::default().to_toml(state.to_str().expect("utf-8 path"));
        std::fs::write(&config, toml).expect("write config.toml");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, BIN, "run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info");
        let pid = self.procs.spawn("ipsec-server", cmd, &self.log_path());
        let ready = poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
            if let Some(how) = self.procs.exited(pid) {
                panic!("ipsec-server ended during startup ({how}):\n{}", self.log());
            }
            let udp = self.exec(&["ss", "-Hlun"]).stdout;
            let tun = self.exec(&["ip", "link", "show", "ipsec0"]).success();
            (udp.contains(":500 ") && tun).then_some(())
        });
        assert!(
            ready.is_some(),
            "ipsec-server not ready after 15 s:\n{}",
            self.log()
        );
        pid
    }

    fn exec(&self, cmdline: &[&str]) -> proc::CmdOutput {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(cmdline);
        proc::run(cmd, Duration::from_secs(10))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("ipsec-server.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.procs.kill_all(Duration::from_secs(3));
        let out = run_ip(&["netns", "del", &self.name]);
        if !out.success() {
            eprintln!(
                "[watchdog test] could not delete namespace {}:\n{out}",
                self.name
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `ip ARGS…` in the test's own namespace, bounded.
fn run_ip(args: &[&str]) -> proc::CmdOutput {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    proc::run(cmd, Duration::from_secs(10))
}

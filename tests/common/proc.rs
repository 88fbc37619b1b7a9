//! Child processes: commands with a deadline, and long-running processes tracked by PID.
//!
//! Every child gets its own process group (so a timeout can kill a whole `sh -c` pipeline) and
//! `PR_SET_PDEATHSIG = SIGKILL` (so it dies with the test thread that started it even when the
//! test binary itself is killed and no destructor runs).
//!
//! One process is stopped that the harness did not start: the daemon's successor after
//! `ipsec-server upgrade` ([`Adopted`]), held by a pidfd so no signal can reach a process that
//! later reuses its PID.
// System calls std does not wrap: prctl(2) before exec, kill(2), waitid(2), pidfd_open(2),
// pidfd_send_signal(2), poll(2).
#![allow(unsafe_code)]

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Result of a command run to completion (or killed at its deadline).
#[derive(Debug, Clone)]
pub struct CmdOutput {
    pub cmdline: String,
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// Panics with the full command output unless it succeeded.
    pub fn expect_ok(self, what: &str) -> Self {
        assert!(self.success(), "{what} failed:\n{self}");
        self
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match (self.timed_out, self.status) {
            (true, _) => "killed at its deadline".to_string(),
            (false, Some(s)) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(sig)) => format!("signal {sig}"),
                _ => format!("{s}"),
            },
            (false, None) => "not started".to_string(),
        };
        write!(
            f,
            "$ {}\n[{status}]\n--- stdout\n{}--- stderr\n{}",
            self.cmdline, self.stdout, self.stderr
        )
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Own process group + die with the parent thread. See the module docs.
fn harden(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `cmd` to completion, killing its process group at `timeout`.
pub fn run(mut cmd: Command, timeout: Duration) -> CmdOutput {
    let cmdline = describe(&cmd);
    harden(&mut cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return CmdOutput {
                cmdline,
                status: None,
                stdout: String::new(),
                stderr: format!("spawn failed: {e}"),
                timed_out: false,
            }
        }
    };
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                signal_group(child.id(), libc::SIGKILL);
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    // The readers end when every holder of the pipes is gone; a grandchild that escaped the
    // process group could keep them open, so collect with a bound too.
    let stdout = collect(out, Duration::from_secs(2));
    let stderr = collect(err, Duration::from_secs(2));
    CmdOutput {
        cmdline,
        status,
        stdout,
        stderr,
        timed_out,
    }
}

type Reader = Option<std::sync::mpsc::Receiver<String>>;

fn reader(pipe: Option<impl Read + Send + 'static>) -> Reader {
    let mut pipe = pipe?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    Some(rx)
}

fn collect(r: Reader, timeout: Duration) -> String {
    r.and_then(|rx| rx.recv_timeout(timeout).ok())
        .unwrap_or_default()
}

fn signal_group(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a negative PID signals the process group this harness created for
    // the child (process_group(0) made its PGID equal to its PID); no memory is involved.
    unsafe {
        libc::kill(-(pid as libc::pid_t), sig);
    }
}

/// A long-running process started by the harness.
struct Tracked {
    name: String,
    child: Child,
}

/// Registry of the long-running processes and log files of one topology.
#[derive(Default)]
pub struct Procs {
    procs: Mutex<Vec<Tracked>>,
    logs: Mutex<Vec<(String, PathBuf)>>,
}

impl Procs {
    /// Starts `cmd` with stdout and stderr appended to `log` and tracks it. Returns its PID.
    pub fn spawn(&self, name: &str, mut cmd: Command, log: &Path) -> u32 {
        let cmdline = describe(&cmd);
        harden(&mut cmd);
        let f = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let f2 = f.try_clone().expect("dup log fd");
        cmd.stdin(Stdio::null()).stdout(f).stderr(f2);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
        let pid = child.id();
        self.procs.lock().unwrap().push(Tracked {
            name: name.to_string(),
            child,
        });
        self.add_log(name, log);
        pid
    }

    /// Registers a log file whose tail is printed when the test fails.
    pub fn add_log(&self, name: &str, path: &Path) {
        let mut logs = self.logs.lock().unwrap();
        if !logs.iter().any(|(_, p)| p == path) {
            logs.push((name.to_string(), path.to_path_buf()));
        }
    }

    pub fn logs(&self) -> Vec<(String, PathBuf)> {
        self.logs.lock().unwrap().clone()
    }

    /// How the tracked process `pid` ended (e.g. "exit code 1"), `None` while it runs.
    pub fn exited(&self, pid: u32) -> Option<String> {
        let procs = self.procs.lock().unwrap();
        procs
            .iter()
            .any(|t| t.child.id() == pid)
            .then(|| exit_info(pid))?
    }

    /// Stops the tracked process `pid`: SIGTERM to its group, SIGKILL after `grace`.
    pub fn kill(&self, pid: u32, grace: Duration) -> Option<ExitStatus> {
        let t = {
            let mut procs = self.procs.lock().unwrap();
            let i = procs.iter().position(|t| t.child.id() == pid)?;
            procs.remove(i)
        };
        Some(stop(t, grace))
    }

    /// Stops every tracked process (in reverse start order).
    pub fn kill_all(&self, grace: Duration) {
        let all: Vec<Tracked> = std::mem::take(&mut *self.procs.lock().unwrap());
        for t in all.into_iter().rev() {
            let name = t.name.clone();
            let st = stop(t, grace);
            if !st.success() && st.signal() != Some(libc::SIGTERM) {
                eprintln!("[harness] {name} ended with {st:?}");
            }
        }
    }
}

fn stop(mut t: Tracked, grace: Duration) -> ExitStatus {
    let pid = t.child.id();
    // The group is signalled only while its leader is an unreaped child of ours, so neither
    // its PID nor its PGID can have been reused by an unrelated process.
    if !has_exited(pid) {
        signal_group(pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while !has_exited(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !has_exited(pid) {
            eprintln!(
                "[harness] {} (pid {pid}) ignored SIGTERM; sending SIGKILL",
                t.name
            );
        }
    }
    signal_group(pid, libc::SIGKILL); // the leader if still there, and leftovers in its group
    t.child.wait().expect("wait for killed child")
}

/// A process this harness did not start but must stop: the successor a daemon started for
/// `ipsec-server upgrade`, reparented when the old daemon exits (to this test process if it
/// called [`become_subreaper`], else to init). Held by a pidfd taken while it runs; dropping
/// it stops the process (SIGTERM, SIGKILL after 3 s) and waits, bounded, until its
/// `/proc/PID` is gone.
pub struct Adopted {
    pub name: String,
    pub pid: u32,
    pidfd: OwnedFd,
}

impl Adopted {
    /// Takes hold of the running process `pid`; fails if there is none.
    pub fn new(name: &str, pid: u32) -> std::io::Result<Adopted> {
        // SAFETY: pidfd_open(2) takes a PID and flags and returns a new fd or -1; no memory
        // is passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a pidfd just returned to us and owned by nothing else.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        Ok(Adopted {
            name: name.to_string(),
            pid,
            pidfd,
        })
    }

    /// Waits at most `wait` for the process to end; true once it has (the pidfd turns
    /// readable when it exits, reaped or not).
    pub fn has_exited(&self, wait: Duration) -> bool {
        let mut p = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll(2) on one pollfd we own, for at most `ms`.
        unsafe { libc::poll(&mut p, 1, ms) > 0 }
    }

    /// How it ended ("exit code 0" if this process is its reaper, else "ended"), `None`
    /// while it runs. Does not reap it.
    pub fn exited(&self) -> Option<String> {
        self.has_exited(Duration::ZERO)
            .then(|| exit_info(self.pid).unwrap_or_else(|| "ended".to_string()))
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: pidfd_send_signal(2) with our pidfd, no siginfo (null) and no flags.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }
}

impl Drop for Adopted {
    fn drop(&mut self) {
        let pid = self.pid;
        if !self.has_exited(Duration::ZERO) {
            self.signal(libc::SIGTERM);
            if !self.has_exited(Duration::from_secs(3)) {
                eprintln!(
                    "[harness] {} (pid {pid}) ignored SIGTERM; sending SIGKILL",
                    self.name
                );
                self.signal(libc::SIGKILL);
                self.has_exited(Duration::from_secs(5));
            }
        }
        // Reap it if it is ours (the pidfd pins nothing: /proc/PID goes with the zombie).
        // SAFETY: waitid(2) writes only into the zeroed siginfo_t we own; ECHILD when it is
        // not our child is fine.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            );
        }
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let deadline = Instant::now() + Duration::from_secs(2);
        while proc_dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if proc_dir.exists() {
            eprintln!(
                "[harness] {} (pid {pid}) ended but {} remains (its reaper has not reaped it)",
                self.name,
                proc_dir.display()
            );
        }
    }
}

/// Makes this test process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER):
/// a daemon's successor then becomes our child when the old daemon exits, and is reaped
/// here rather than by whatever init the machine has.
pub fn become_subreaper() {
    // SAFETY: prctl(2) with an integer option and value; no memory is involved.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        r,
        0,
        "prctl(PR_SET_CHILD_SUBREAPER): {}",
        std::io::Error::last_os_error()
    );
}

/// True once the child `pid` has exited; does not reap it (WNOWAIT).
fn has_exited(pid: u32) -> bool {
    exit_info(pid).is_some()
}

/// How the child `pid` ended ("exit code 1", "signal 11"), `None` while it runs. Does not reap
/// it (WNOWAIT), so std's `Child::wait` still can.
fn exit_info(pid: u32) -> Option<String> {
    // SAFETY: waitid(2) writes only into the zeroed siginfo_t we own; WNOWAIT leaves the child
    // waitable. si_pid/si_status read the fields waitid filled in for SIGCHLD-style info.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        if r != 0 || info.si_pid() == 0 {
            return None;
        }
        let status = info.si_status();
        Some(match info.si_code {
            libc::CLD_EXITED => format!("exit code {status}"),
            _ => format!("signal {status}"),
        })
    }
}

//! Test fixture: a network namespace of the test's own, entered by one thread.
//!
//! Invariants: the namespace is named `iotest-<name>-<pid>` (unique per test and process),
//! its loopback is up, it is deleted when the [`NetNs`] guard drops (also while unwinding from
//! a failed assertion), and only the thread spawned by [`NetNs::run`] ever enters it, so the
//! test harness's own threads stay in the original namespace.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;

use super::{context, last_os_error};

/// A network namespace deleted on drop.
pub(crate) struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `iotest-<test>-<pid>` and brings its loopback up.
    pub(crate) fn new(test: &str) -> io::Result<NetNs> {
        let name = format!("iotest-{test}-{}", std::process::id());
        // A leftover from a crashed run of the same pid would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name])?;
        let ns = NetNs { name };
        run("ip", &["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `f` on a new thread that has entered the namespace, and returns its result. A
    /// panic in `f` is resumed on the caller's thread (after the thread has ended), so the
    /// guard still deletes the namespace.
    pub(crate) fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        let joined = std::thread::scope(|s| {
            s.spawn(|| {
                if let Err(e) = enter(&path) {
                    panic!("{e}");
                }
                f()
            })
            .join()
        });
        match joined {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("cleanup of namespace {} failed: {e}", self.name);
        }
    }
}

/// Runs a shell command line (in the calling thread's namespace) and returns its stdout;
/// an error carries the exit status and stderr.
pub(crate) fn sh(cmdline: &str) -> io::Result<String> {
    run("sh", &["-c", cmdline])
}

fn enter(path: &str) -> io::Result<()> {
    let file = File::open(path).map_err(|e| context(format_args!("open {path}"), e))?;
    // SAFETY: setns takes a descriptor we own (valid for the call) and a namespace type
    // constant; it only changes the calling thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(last_os_error(format_args!("setns({path}, CLONE_NEWNET)")));
    }
    Ok(())
}

fn run(program: &str, args: &[&str]) -> io::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| context(format_args!("{program} {}", args.join(" ")), e))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{program} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

//! Supervision: a thread that dies ends the process, so a supervisor (systemd's
//! `Restart=on-failure`) starts a whole daemon again instead of leaving half of one running
//! (docs/DESIGN.md §6.11, ARCHITECTURE.md §2).
//!
//! Two ways a thread dies, one outcome:
//! - a panic, on any thread: the hook of [`install_panic_hook`] (installed by `main` before
//!   anything else runs, in debug and release builds alike) logs it and exits;
//! - a thread started by [`spawn`] that returns an error, or returns at all before its
//!   `stopping` flag was set (a data-plane worker whose TUN device was deleted, a receiver
//!   whose poll failed): the watchdog around its body logs it and exits.
//!
//! Invariants:
//! - The process exits with [`EXIT_THREAD_DIED`] (70, `EX_SOFTWARE` of sysexits.h) and
//!   exactly one log line at ERROR level naming the thread and why it died, even when several
//!   threads die at once (the first one reports and exits; the others wait for the exit).
//! - Nothing is torn down on the way out: another thread may hold a lock in any state. The TUN
//!   device and its routes disappear with the process's descriptors; the nftables table of a
//!   crashed run is replaced by the next start ([`crate::io::net`]).

use std::fmt::Display;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::DaemonError;

/// Exit status of a process ended by a dead thread: `EX_SOFTWARE` (sysexits.h), "an internal
/// software error has been detected".
pub const EXIT_THREAD_DIED: i32 = 70;

/// Makes every panic, on any thread, fatal for the process: one line (thread name, message,
/// location) at ERROR level, then exit with [`EXIT_THREAD_DIED`]. A backtrace follows the
/// line when `RUST_BACKTRACE` asks for one. Call once, early in `main`, after the logger is
/// set up.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(a panic payload that is not a string)");
        let location = info
            .location()
            .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = (backtrace.status() == std::backtrace::BacktraceStatus::Captured)
            .then(|| backtrace.to_string());
        die_with(
            &current_thread_name(),
            &format!("panicked{location}: {message}"),
            backtrace.as_deref(),
        )
    }));
}

/// Ends the process because thread `thread` died for `why` (see the module docs). Never
/// returns; when another thread is already ending the process, waits for that.
pub fn die(thread: &str, why: impl Display) -> ! {
    die_with(thread, &why.to_string(), None)
}

/// Spawns thread `name` running `body`, which must run until `stopping` is set: if it returns
/// an error, or returns before `stopping` is set, the process ends ([`die`]). Once `stopping`
/// is set, an error is only logged (the device may be going away with the rest of the stack).
pub(crate) fn spawn(
    name: String,
    stopping: &Arc<AtomicBool>,
    body: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<JoinHandle<()>, DaemonError> {
    let thread = name.clone();
    let stopping = stopping.clone();
    let spawned = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let outcome = body();
            let expected = stopping.load(Ordering::SeqCst);
            match outcome {
                Ok(()) if expected => {}
                Ok(()) => die(&thread, "ended while the daemon was still running"),
                Err(why) if expected => tracing::warn!(thread, "ended while stopping: {why}"),
                Err(why) => die(&thread, why),
            }
        });
    spawned.map_err(|source| DaemonError::Spawn { name, source })
}

/// Set by the first thread that ends the process.
static DYING: AtomicBool = AtomicBool::new(false);

fn die_with(thread: &str, why: &str, backtrace: Option<&str>) -> ! {
    if DYING.swap(true, Ordering::SeqCst) {
        // Another thread is reporting and exiting; one line is enough.
        loop {
            std::thread::park();
        }
    }
    // One line, whatever the message holds.
    let why = why.trim_end().replace('\n', "; ");
    let line = format!(
        "fatal: thread '{thread}' {why}; exiting with status {EXIT_THREAD_DIED} so that a \
         supervisor restarts the daemon"
    );
    if tracing::dispatcher::has_been_set() {
        tracing::error!("{line}");
    } else {
        // Straight to the descriptor: not through a test harness's output capture.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
    if let Some(bt) = backtrace {
        let _ = writeln!(std::io::stderr().lock(), "{bt}");
    }
    std::process::exit(EXIT_THREAD_DIED)
}

fn current_thread_name() -> String {
    let t = std::thread::current();
    t.name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:?}", t.id()))
}

#[cfg(test)]
mod tests {
    //! Each test re-executes this test binary, filtered to itself, with [`CHILD`] naming what
    //! the child does; the child installs the supervision as `main` does and lets a thread die.
    //! The parent asserts the child's exit status and its one line on stderr.

    use super::*;
    use std::process::Command;
    use std::time::Duration;

    const CHILD: &str = "IPSEC_SERVER_SUPERVISE_CHILD";

    /// In the child (when [`CHILD`] is set): runs `scenario`, which must end the process.
    /// In the parent: re-runs `test` as a child and returns its exit code and stderr.
    fn child_outcome(test: &str, scenario: impl FnOnce()) -> (Option<i32>, String) {
        if std::env::var_os(CHILD).is_some() {
            install_panic_hook();
            scenario();
            // Not reached when supervision works; a clean exit fails the parent's assertion.
            std::thread::sleep(Duration::from_secs(10));
            std::process::exit(0);
        }
        let exe = std::env::current_exe().expect("test binary path");
        let out = Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("re-run the test binary");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    fn fatal_lines(stderr: &str) -> Vec<&str> {
        stderr.lines().filter(|l| l.contains("fatal:")).collect()
    }

    #[test]
    fn a_panicking_thread_ends_the_process() {
        let (code, stderr) = child_outcome(
            "daemon::supervise::tests::a_panicking_thread_ends_the_process",
            || {
                let t = std::thread::Builder::new()
                    .name("doomed".into())
                    .spawn(|| panic!("the 42nd\nreason"))
                    .expect("spawn");
                let _ = t.join();
            },
        );
        assert_eq!(code, Some(EXIT_THREAD_DIED), "stderr:\n{stderr}");
        let lines = fatal_lines(&stderr);
        assert_eq!(lines.len(), 1, "one line:\n{stderr}");
        assert!(
            lines[0].contains("thread 'doomed' panicked at src/daemon/supervise.rs:")
                && lines[0].contains("the 42nd; reason"),
            "names the thread, the place and the message:\n{stderr}"
        );
        assert!(!stderr.contains("test result"), "the harness did not go on");
    }

    #[test]
    fn threads_panicking_together_report_once() {
        let (code, stderr) = child_outcome(
            "daemon::supervise::tests::threads_panicking_together_report_once",
            || {
                let barrier = Arc::new(std::sync::Barrier::new(4));
                let threads: Vec<_> = (0..4)
                    .map(|i| {
                        let b = barrier.clone();
                        std::thread::Builder::new()
                            .name(format!("dp-{i}"))
                            .spawn(move || {
                                b.wait();
                                panic!("worker {i} failed")
                            })
                            .expect("spawn")
                    })
                    .collect();
                for t in threads {
                    let _ = t.join();
                }
            },
        );
        assert_eq!(code, Some(EXIT_THREAD_DIED), "stderr:\n{stderr}");
        assert_eq!(fatal_lines(&stderr).len(), 1, "one line:\n{stderr}");
    }

    #[test]
    fn a_supervised_thread_that_fails_ends_the_process() {
        let (code, stderr) = child_outcome(
            "daemon::supervise::tests::a_supervised_thread_that_fails_ends_the_process",
            || {
                let t = spawn("dp-0".into(), &Arc::default(), || {
                    Err("TUN ipsec0 is gone: File descriptor in bad state (os error 77)".into())
                })
                .expect("spawn");
                let _ = t.join();
            },
        );
        assert_eq!(code, Some(EXIT_THREAD_DIED), "stderr:\n{stderr}");
        let lines = fatal_lines(&stderr);
        assert_eq!(lines.len(), 1, "one line:\n{stderr}");
        assert!(
            lines[0].contains("thread 'dp-0' TUN ipsec0 is gone"),
            "{stderr}"
        );
    }

    #[test]
    fn a_supervised_thread_that_returns_early_ends_the_process() {
        let (code, stderr) = child_outcome(
            "daemon::supervise::tests::a_supervised_thread_that_returns_early_ends_the_process",
            || {
                let t = spawn("ike-rx-0".into(), &Arc::default(), || Ok(())).expect("spawn");
                let _ = t.join();
            },
        );
        assert_eq!(code, Some(EXIT_THREAD_DIED), "stderr:\n{stderr}");
        let lines = fatal_lines(&stderr);
        assert_eq!(lines.len(), 1, "one line:\n{stderr}");
        assert!(
            lines[0].contains("thread 'ike-rx-0' ended while the daemon was still running"),
            "{stderr}"
        );
    }

    #[test]
    fn ends_after_stopping_are_expected() {
        // In this process: nothing may exit.
        let stopping = Arc::new(AtomicBool::new(true));
        let ok = spawn("ike".into(), &stopping, || Ok(())).expect("spawn");
        let failed = spawn("dp-0".into(), &stopping, || Err("TUN gone".into())).expect("spawn");
        assert!(ok.join().is_ok());
        assert!(failed.join().is_ok());
    }
}

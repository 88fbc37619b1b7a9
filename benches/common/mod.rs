//! Helpers shared by the benches (each bench includes this module with `mod common;`).

use std::time::Duration;

/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID): unlike wall time it does not
/// count the time other processes on a shared machine hold the core.
#[allow(unsafe_code)] // clock_gettime(2) with a thread CPU clock: std does not wrap it
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` `iters` times and returns the thread CPU time it took.
#[allow(dead_code)] // not every bench that includes this module uses it
pub fn cpu_iters(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = thread_cpu();
    for _ in 0..iters {
        f();
    }
    thread_cpu() - start
}

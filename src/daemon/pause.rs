//! Holds a stack's packet threads (the data-plane workers and the UDP 500 receivers) still
//! while `ipsec-server upgrade` captures its state (`upgrade.rs`): a parked thread reads
//! nothing, so what arrives waits in the kernel's socket buffers for whichever process
//! serves next, and the SA database does not change under the capture.
//!
//! Each packet thread calls [`Pause::hold`] at the top of its loop; [`Pause::engage`]
//! requests the pause and waits until every thread is parked (a thread in the middle of a
//! batch finishes it first); [`Pause::release`] lets them go on. A stack that stops releases
//! its parked threads too (`hold` watches the stop flag).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often a parked thread looks whether it may go on.
const PARKED_POLL: Duration = Duration::from_millis(1);

/// The longest a packet thread waits for readiness before it looks at its stop flag and at
/// [`Pause`]: a hand-over waits until the last thread is parked while the first ones handle
/// nothing any more, so this bounds the switch's extra delay (20 idle wake-ups a second
/// and thread cost nothing measurable).
pub(crate) const PACKET_WAIT: Duration = Duration::from_millis(20);

#[derive(Default)]
pub(crate) struct Pause {
    requested: AtomicBool,
    parked: AtomicUsize,
}

impl Pause {
    /// Parks the calling thread while a pause is requested and `stop` is not set. `false`:
    /// `stop` is set, the thread must end without handling anything more (after a hand-over
    /// the packets are the new process's).
    #[must_use]
    pub(crate) fn hold(&self, stop: &AtomicBool) -> bool {
        if self.requested.load(Ordering::Acquire) {
            self.parked.fetch_add(1, Ordering::AcqRel);
            while self.requested.load(Ordering::Acquire) && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(PARKED_POLL);
            }
            self.parked.fetch_sub(1, Ordering::AcqRel);
        }
        !stop.load(Ordering::Relaxed)
    }

    /// Requests the pause and waits at most `bound` until `threads` threads are parked.
    /// `false`: they were not (the pause is released again).
    pub(crate) fn engage(&self, threads: usize, bound: Duration) -> bool {
        self.requested.store(true, Ordering::Release);
        let end = Instant::now() + bound;
        while self.parked.load(Ordering::Acquire) < threads {
            if Instant::now() >= end {
                self.release();
                return false;
            }
            std::thread::sleep(PARKED_POLL);
        }
        true
    }

    /// Lets parked threads go on.
    pub(crate) fn release(&self) {
        self.requested.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn engaged_threads_do_no_work_until_released_or_stopped() {
        let pause = Arc::new(Pause::default());
        let stop = Arc::new(AtomicBool::new(false));
        let work = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (pause, stop, work) = (pause.clone(), stop.clone(), work.clone());
                std::thread::spawn(move || {
                    while pause.hold(&stop) {
                        work.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_micros(100));
                    }
                })
            })
            .collect();
        assert!(pause.engage(3, Duration::from_secs(10)));
        let frozen = work.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            work.load(Ordering::Relaxed),
            frozen,
            "a parked thread worked"
        );
        pause.release();
        let t = Instant::now();
        while work.load(Ordering::Relaxed) == frozen && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            work.load(Ordering::Relaxed) > frozen,
            "released threads work again"
        );
        // Waiting for more threads than there are gives up within the bound.
        assert!(!pause.engage(4, Duration::from_millis(100)));
        // A stopping stack ends parked threads.
        assert!(pause.engage(3, Duration::from_secs(10)));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
    }
}

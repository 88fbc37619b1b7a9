//! Anti-replay window (RFC 4303 §3.4.3), lock-free in the style of RFC 6479.
//!
//! The window is [`SLOTS`] atomic words; each holds a 32-bit bitmap of one block of 32
//! sequence numbers in its low half and that block's number in its high half. Setting a bit
//! is a compare-and-swap on one word, so a word can never mix the bits of two blocks and two
//! workers can never both accept the same sequence number. A slot whose block is older than
//! the one being set is reset in the same CAS (the window slides); a slot already holding a
//! newer block means the packet fell out of the window.
//!
//! Invariants: a sequence number is accepted by [`ReplayWindow::accept`] at most once;
//! every number within [`WINDOW`] of the highest accepted one is remembered.

use std::sync::atomic::{AtomicU64, Ordering};

/// Number of 32-bit blocks: 33 keep a window of 1024 (RFC 4303 §3.4.3 asks for at least 64;
/// 1024 absorbs the reordering of a multi-queue path) in 264 bytes per SA.
const SLOTS: usize = 33;
const BLOCK_BITS: u64 = 32;
/// Sequence numbers this far below the highest accepted one are still checked exactly
/// (one block is kept free for sliding, as RFC 6479 §2 does).
pub const WINDOW: u64 = (SLOTS as u64 - 1) * BLOCK_BITS;

pub struct ReplayWindow {
    slots: [AtomicU64; SLOTS],
    top: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// Sequence number 0 is never sent (RFC 4303 §2.2).
    Zero,
    /// Older than the window.
    TooOld,
    /// Seen before.
    Duplicate,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    pub fn new() -> Self {
        Self {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            top: AtomicU64::new(0),
        }
    }

    /// The highest sequence number accepted (0: none yet).
    pub fn highest(&self) -> u64 {
        self.top.load(Ordering::Relaxed)
    }

    /// Cheap pre-check before the ICV is verified: rejects what is surely a replay.
    pub fn check(&self, seq: u32) -> Result<(), ReplayError> {
        let seq = u64::from(seq);
        if seq == 0 {
            return Err(ReplayError::Zero);
        }
        let top = self.top.load(Ordering::Relaxed);
        if seq + WINDOW <= top {
            return Err(ReplayError::TooOld);
        }
        let (block, bit) = (seq / BLOCK_BITS, seq % BLOCK_BITS);
        let word = self.slots[slot(block)].load(Ordering::Relaxed);
        if word >> 32 == block && word & (1 << bit) != 0 {
            return Err(ReplayError::Duplicate);
        }
        Ok(())
    }

    /// Marks `seq` as received after its ICV verified; fails if it was accepted before (by
    /// this or another worker) or fell out of the window meanwhile.
    pub fn accept(&self, seq: u32) -> Result<(), ReplayError> {
        self.check(seq)?;
        let seq = u64::from(seq);
        let (block, bit) = (seq / BLOCK_BITS, seq % BLOCK_BITS);
        let cell = &self.slots[slot(block)];
        let mut cur = cell.load(Ordering::Acquire);
        loop {
            let held = cur >> 32;
            let next = if held == block {
                if cur & (1 << bit) != 0 {
                    return Err(ReplayError::Duplicate);
                }
                cur | (1 << bit)
            } else if held < block {
                (block << 32) | (1 << bit)
            } else {
                return Err(ReplayError::TooOld);
            };
            match cell.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.top.fetch_max(seq, Ordering::Relaxed);
        Ok(())
    }
}

/// A [`ReplayWindow`]'s contents as plain numbers: what the hand-over snapshot of
/// `ipsec-server upgrade` carries so that a packet replayed across the switch is still
/// refused.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct ReplayState {
    pub top: u64,
    pub slots: Vec<u64>,
}

impl ReplayWindow {
    /// Its contents now (the data plane is quiesced during a hand-over: no packet races it).
    pub fn export(&self) -> ReplayState {
        ReplayState {
            top: self.top.load(Ordering::Acquire),
            slots: self
                .slots
                .iter()
                .map(|s| s.load(Ordering::Acquire))
                .collect(),
        }
    }

    /// The window `state` describes; `None` unless it has exactly [`SLOTS`] words (it comes
    /// from a hand-over socket).
    pub fn import(state: &ReplayState) -> Option<Self> {
        if state.slots.len() != SLOTS {
            return None;
        }
        Some(Self {
            slots: std::array::from_fn(|i| AtomicU64::new(state.slots[i])),
            top: AtomicU64::new(state.top),
        })
    }
}

fn slot(block: u64) -> usize {
    (block % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imported_window_refuses_what_the_exported_one_saw() {
        let w = ReplayWindow::new();
        for s in [1u32, 2, 3, 700, 1500, 1499] {
            w.accept(s).unwrap();
        }
        let state = w.export();
        let v = ReplayWindow::import(&state).unwrap();
        assert_eq!(v.highest(), 1500);
        for s in [700u32, 1500, 1499] {
            assert_eq!(v.accept(s), Err(ReplayError::Duplicate), "seq {s}");
        }
        assert_eq!(v.accept(1), Err(ReplayError::TooOld));
        v.accept(1498).unwrap();
        v.accept(1501).unwrap();
        let short = ReplayState {
            top: 1,
            slots: vec![0; 3],
        };
        assert!(ReplayWindow::import(&short).is_none());
    }

    #[test]
    fn in_order_and_duplicates() {
        let w = ReplayWindow::new();
        assert_eq!(w.accept(0), Err(ReplayError::Zero));
        for s in 1..5000u32 {
            w.accept(s).unwrap();
        }
        assert_eq!(w.accept(4999), Err(ReplayError::Duplicate));
        assert_eq!(w.check(4000), Err(ReplayError::Duplicate));
        assert_eq!(w.accept(1), Err(ReplayError::TooOld));
    }

    #[test]
    fn reordering_within_the_window_is_accepted_once() {
        let w = ReplayWindow::new();
        w.accept(3000).unwrap();
        // Everything within WINDOW below the top is still acceptable once.
        let low = 3000 - WINDOW as u32 + 1;
        for s in (low..3000).rev() {
            w.accept(s).unwrap();
        }
        for s in low..3000 {
            assert_eq!(w.accept(s), Err(ReplayError::Duplicate), "seq {s}");
        }
        assert_eq!(w.accept(low - 1), Err(ReplayError::TooOld));
    }

    #[test]
    fn a_jump_forward_forgets_old_blocks_but_not_new_ones() {
        let w = ReplayWindow::new();
        w.accept(5).unwrap();
        w.accept(1_000_000).unwrap();
        assert_eq!(w.accept(5), Err(ReplayError::TooOld));
        w.accept(999_999).unwrap();
        // Same slot as a far older block: the old bitmap must not leak into the new block.
        let same_slot = 1_000_000 - SLOTS as u32 * 32;
        assert_eq!(w.accept(same_slot), Err(ReplayError::TooOld));
        w.accept(1_000_001).unwrap();
    }

    #[test]
    fn concurrent_workers_never_accept_a_number_twice() {
        use std::sync::Arc;
        let w = Arc::new(ReplayWindow::new());
        let accepted: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let w = w.clone();
                    s.spawn(move || (1..20_000u32).filter(|&q| w.accept(q).is_ok()).count())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total: usize = accepted.iter().sum();
        assert!(
            total <= 19_999,
            "a sequence number was accepted twice: {total}"
        );
        assert!(total > 0);
    }
}

//! ESP packets dropped by the data plane, by reason, over every SA since the start: what the
//! periodic drop summary in the log reports (per-packet lines stay at debug). The per-SA
//! counters ([`super::SaCounters`]) vanish with their SA and do not tell unknown SPIs at
//! all; these do.
//!
//! Invariant: one relaxed atomic add per dropped packet, no lock, no allocation.

use std::sync::atomic::{AtomicU64, Ordering};

use super::EspError;

/// Why an ESP packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Inbound: sequence number replayed or left of the window (RFC 4303 §3.4.3).
    Replay,
    /// Inbound: the ICV did not verify (wrong keys, corruption, forgery).
    Icv,
    /// Inbound: no SA with this SPI (deleted, rekeyed away, or never ours).
    UnknownSpi,
    /// Inner addresses outside the SA's traffic selectors (either direction).
    Selector,
    /// Inbound: too short, bad padding, or an inner protocol we do not carry.
    Malformed,
    /// Outbound: the SA's sequence numbers ran out before its rekey.
    SeqExhausted,
    /// Outbound: a packet from the TUN to an address no client's SA serves.
    NoSa,
    /// Anything else (no socket for the SA's address, IPv6 outer addresses, buffers).
    Other,
}

impl DropReason {
    /// Every reason, in the order of [`EspDrops::read`] and of the summary.
    pub const ALL: [DropReason; 8] = [
        DropReason::Replay,
        DropReason::Icv,
        DropReason::UnknownSpi,
        DropReason::Selector,
        DropReason::Malformed,
        DropReason::SeqExhausted,
        DropReason::NoSa,
        DropReason::Other,
    ];

    /// The reason's name in the summary line.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Replay => "replay",
            DropReason::Icv => "ICV",
            DropReason::UnknownSpi => "unknown SPI",
            DropReason::Selector => "selector",
            DropReason::Malformed => "malformed",
            DropReason::SeqExhausted => "sequence numbers exhausted",
            DropReason::NoSa => "no SA for the destination",
            DropReason::Other => "other",
        }
    }

    /// The reason as a metrics label value.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Replay => "replay",
            DropReason::Icv => "icv",
            DropReason::UnknownSpi => "unknown_spi",
            DropReason::Selector => "selector",
            DropReason::Malformed => "malformed",
            DropReason::SeqExhausted => "seq_exhausted",
            DropReason::NoSa => "no_sa",
            DropReason::Other => "other",
        }
    }

    /// The reason of an `open` or `seal_prepare` failure.
    pub fn of(e: &EspError) -> Self {
        match e {
            EspError::Replay(_) => DropReason::Replay,
            EspError::Integrity => DropReason::Icv,
            EspError::Selector => DropReason::Selector,
            EspError::Truncated | EspError::BadPadding | EspError::NextHeader(_) => {
                DropReason::Malformed
            }
            EspError::SeqExhausted => DropReason::SeqExhausted,
            EspError::BufferTooSmall | EspError::Ipv6Outer | EspError::Key(_) => DropReason::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Dropped packets by reason since the start (shared by every worker through the [`super::Sad`]).
#[derive(Debug, Default)]
pub struct EspDrops {
    counts: [AtomicU64; DropReason::ALL.len()],
}

impl EspDrops {
    pub fn count(&self, why: DropReason) {
        self.counts[why.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts, in the order of [`DropReason::ALL`].
    pub fn read(&self) -> [u64; DropReason::ALL.len()] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }
}

/// The reasons with new drops between two [`EspDrops::read`]s, as `replay 3, ICV 1`; `None`
/// when there are none.
pub fn drops_since(
    before: &[u64; DropReason::ALL.len()],
    now: &[u64; DropReason::ALL.len()],
) -> Option<String> {
    let parts: Vec<String> = DropReason::ALL
        .iter()
        .zip(before.iter().zip(now))
        .filter_map(|(why, (b, n))| {
            let new = n.saturating_sub(*b);
            (new > 0).then(|| format!("{} {new}", why.name()))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipsec::ReplayError;

    #[test]
    fn every_reason_has_its_counter_and_the_summary_names_only_new_ones() {
        let d = EspDrops::default();
        let start = d.read();
        assert_eq!(drops_since(&start, &d.read()), None);
        for e in [
            EspError::Replay(ReplayError::Duplicate),
            EspError::Replay(ReplayError::Duplicate),
            EspError::Integrity,
            EspError::Selector,
            EspError::BadPadding,
        ] {
            d.count(DropReason::of(&e));
        }
        d.count(DropReason::UnknownSpi);
        let mid = d.read();
        assert_eq!(
            drops_since(&start, &mid).as_deref(),
            Some("replay 2, ICV 1, unknown SPI 1, selector 1, malformed 1")
        );
        d.count(DropReason::Icv);
        assert_eq!(drops_since(&mid, &d.read()).as_deref(), Some("ICV 1"));
    }
}

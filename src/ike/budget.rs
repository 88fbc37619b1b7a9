//! The responder's DoS budget (RFC 7296 §2.6, RFC 8019): what unauthenticated senders may make
//! it compute, and how refusals are counted and logged.
//!
//! - [`DhRate`]: Diffie-Hellman computations for IKE_SA_INIT in the last second; above
//!   [`Limits::dh_per_second_cookie`] every IKE_SA_INIT must carry a cookie, so the cost of a
//!   flood counts toward the cookie decision, not only the half-open state it leaves.
//! - [`AuthBackoff`]: failed authentications per source address and per identity (online PSK
//!   guessing); from [`Limits::auth_failures_before_backoff`] failures on, further attempts are
//!   refused for a time that doubles with each failure, up to [`Limits::auth_backoff_max`].
//! - [`Refusals`]: every refused or dropped message is counted by reason; the log gets a
//!   summary per [`SUMMARY_EVERY`] and at most one detailed line per source address and
//!   reason in that interval (so a cookie challenge does not hide the proposal mismatch that
//!   follows it), at most [`MAX_DETAILED`] in all, never one line per packet.
//!
//! Invariants: every table here is bounded ([`MAX_TRACKED`] entries each); when one is full
//! the entry that expires first is forgotten, so memory never grows with the number of
//! senders.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::info;

use super::Limits;

/// How often the refusal summary is logged.
pub(crate) const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// Entries per table: sources with failed authentications, identities, detailed log lines.
pub(crate) const MAX_TRACKED: usize = 4096;
/// Detailed log lines per summary interval (one per source address and reason).
const MAX_DETAILED: usize = 64;

/// Why a message was refused or dropped (one counter each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// Larger than `max_ike_message`.
    TooLarge,
    /// A protected message that did not authenticate (no SK, bad ICV).
    Unauthenticated,
    /// A request outside the message-ID window, or a retransmission that is not
    /// byte-identical to the request the cached response answers.
    OutsideWindow,
    /// A retransmission answered too soon after the previous one.
    RetransmitLimited,
    /// IKE_SA_INIT answered with a cookie challenge.
    CookieChallenge,
    /// IKE_SA_INIT dropped: the source's half-open SAs are at `block_threshold_ip`.
    BlockedSource,
    /// IKE_SA_INIT dropped: `half_open_max` half-open SAs in total.
    HalfOpenFull,
    /// IKE_SA_INIT dropped: `max_connections` IKE SAs established.
    ConnectionsFull,
    /// IKE_SA_INIT dropped: its KE payload is not a valid public value (RFC 6989).
    InvalidKe,
    /// IKE_SA_INIT refused for another reason (syntax, nonce, group).
    InitRefused,
    /// No acceptable IKE proposal (IKE_SA_INIT, IKE SA rekey): the detailed line names the
    /// client's proposals and ours.
    NoProposal,
    /// No acceptable ESP proposal for a Child SA (IKE_AUTH, CREATE_CHILD_SA): the detailed
    /// line names the client's proposals and ours.
    ChildNoProposal,
    /// IKE_AUTH that did not authenticate (`AuthFailure`: identity, PSK, method).
    AuthFailed,
    /// A source address or identity in authentication back-off.
    AuthBackoff,
    /// CREATE_CHILD_SA refused: Child SA limit, rekeyed IKE SA, IKE SA limit.
    ChildRefused,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::TooLarge => "too large",
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::OutsideWindow => "outside the message-ID window",
            Refusal::RetransmitLimited => "retransmission rate-limited",
            Refusal::CookieChallenge => "cookie challenge",
            Refusal::BlockedSource => "source at its half-open limit",
            Refusal::HalfOpenFull => "half-open limit",
            Refusal::ConnectionsFull => "max_connections reached",
            Refusal::InvalidKe => "invalid KE",
            Refusal::InitRefused => "IKE_SA_INIT refused",
            Refusal::NoProposal => "no proposal chosen",
            Refusal::ChildNoProposal => "no Child SA proposal chosen",
            Refusal::AuthFailed => "authentication failed",
            Refusal::AuthBackoff => "authentication back-off",
            Refusal::ChildRefused => "CREATE_CHILD_SA refused",
        })
    }
}

/// Counts of refusals since start (for `status`) and in the current summary interval.
#[derive(Default)]
pub(crate) struct Refusals {
    total: HashMap<Refusal, u64>,
    interval: HashMap<Refusal, u64>,
    detailed: Vec<(IpAddr, Refusal)>,
    interval_start: Option<Instant>,
}

impl Refusals {
    /// Counts one refusal from `source`; logs `detail` if `source` had no detailed line for
    /// `why` in this interval yet (and fewer than [`MAX_DETAILED`] lines were logged).
    pub fn record(
        &mut self,
        now: Instant,
        source: IpAddr,
        why: Refusal,
        detail: impl FnOnce() -> String,
    ) {
        self.interval_start.get_or_insert(now);
        *self.total.entry(why).or_default() += 1;
        *self.interval.entry(why).or_default() += 1;
        if self.detailed.len() < MAX_DETAILED && !self.detailed.contains(&(source, why)) {
            self.detailed.push((source, why));
            info!(%source, reason = %why, "refused: {}", detail());
        }
    }

    /// Logs the summary of the interval when it is over.
    pub fn maybe_summarize(&mut self, now: Instant) {
        let Some(start) = self.interval_start else {
            return;
        };
        if now.saturating_duration_since(start) < SUMMARY_EVERY {
            return;
        }
        let mut counts: Vec<(Refusal, u64)> = self.interval.drain().collect();
        counts.sort();
        let text: Vec<String> = counts.iter().map(|(r, n)| format!("{r}: {n}")).collect();
        info!(
            seconds = now.saturating_duration_since(start).as_secs(),
            "refused IKE messages: {}",
            text.join(", ")
        );
        self.detailed.clear();
        self.interval_start = None;
    }

    /// Refusals since start, by reason.
    pub fn totals(&self) -> Vec<(Refusal, u64)> {
        let mut v: Vec<(Refusal, u64)> = self.total.iter().map(|(r, n)| (*r, *n)).collect();
        v.sort();
        v
    }

    #[cfg(test)]
    pub fn count(&self, why: Refusal) -> u64 {
        self.total.get(&why).copied().unwrap_or(0)
    }
}

/// Diffie-Hellman computations in a sliding one-second window (two half-second buckets).
#[derive(Default)]
pub(crate) struct DhRate {
    bucket_start: Option<Instant>,
    current: usize,
    previous: usize,
}

const HALF_SECOND: Duration = Duration::from_millis(500);

impl DhRate {
    /// Computations in about the last second.
    pub fn per_second(&mut self, now: Instant) -> usize {
        self.roll(now);
        self.current + self.previous
    }

    pub fn add(&mut self, now: Instant) {
        self.roll(now);
        self.current += 1;
    }

    fn roll(&mut self, now: Instant) {
        let start = *self.bucket_start.get_or_insert(now);
        let age = now.saturating_duration_since(start);
        if age >= HALF_SECOND * 2 {
            self.previous = 0;
            self.current = 0;
            self.bucket_start = Some(now);
        } else if age >= HALF_SECOND {
            self.previous = self.current;
            self.current = 0;
            self.bucket_start = Some(start + HALF_SECOND);
        }
    }
}

/// Failed authentications per source address and per identity.
#[derive(Default)]
pub(crate) struct AuthBackoff {
    by_source: Failures<IpAddr>,
    by_identity: Failures<Vec<u8>>,
}

impl AuthBackoff {
    /// Whether `source` is in back-off now.
    pub fn source_blocked(&self, now: Instant, source: IpAddr) -> bool {
        self.by_source.blocked(now, &source)
    }

    /// Whether the identity (ID payload body) is in back-off now.
    pub fn identity_blocked(&self, now: Instant, identity: &[u8]) -> bool {
        self.by_identity.blocked(now, identity)
    }

    pub fn failed(&mut self, limits: &Limits, now: Instant, source: IpAddr, identity: &[u8]) {
        self.by_source.failed(limits, now, source);
        self.by_identity.failed(limits, now, identity.to_vec());
    }

    /// A successful authentication clears both records.
    pub fn succeeded(&mut self, source: IpAddr, identity: &[u8]) {
        self.by_source.entries.remove(&source);
        self.by_identity.entries.remove(identity);
    }

    #[cfg(test)]
    pub fn tracked(&self) -> (usize, usize) {
        (self.by_source.entries.len(), self.by_identity.entries.len())
    }
}

struct Failures<K> {
    entries: HashMap<K, Failure>,
}

impl<K> Default for Failures<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

#[derive(Clone, Copy)]
struct Failure {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl Failure {
    /// When the entry may be forgotten: a while after its last failure or back-off.
    fn forget_at(&self) -> Instant {
        self.blocked_until.unwrap_or(self.last).max(self.last) + FAILURE_MEMORY
    }
}

/// How long failures are remembered after the last one (or after the back-off ended).
const FAILURE_MEMORY: Duration = Duration::from_secs(60);

impl<K: Hash + Eq + Clone> Failures<K> {
    fn blocked<Q>(&self, now: Instant, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries
            .get(key)
            .and_then(|f| f.blocked_until)
            .is_some_and(|t| now < t)
    }

    fn failed(&mut self, limits: &Limits, now: Instant, key: K) {
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_TRACKED {
            self.evict(now);
        }
        let f = self.entries.entry(key).or_insert(Failure {
            count: 0,
            last: now,
            blocked_until: None,
        });
        if now >= f.forget_at() {
            f.count = 0;
            f.blocked_until = None;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        let threshold = limits.auth_failures_before_backoff.max(1);
        if f.count >= threshold {
            // 1 s, 2 s, 4 s … for each failure from the threshold on.
            let doublings = (f.count - threshold).min(20);
            let wait = Duration::from_secs(1u64 << doublings).min(limits.auth_backoff_max);
            f.blocked_until = Some(now + wait);
        }
    }

    /// Forgets expired entries, or, if none expired, the one that would be forgotten first.
    fn evict(&mut self, now: Instant) {
        self.entries.retain(|_, f| now < f.forget_at());
        if self.entries.len() >= MAX_TRACKED {
            let first = self
                .entries
                .iter()
                .min_by_key(|(_, f)| f.forget_at())
                .map(|(k, _)| k.clone());
            if let Some(k) = first {
                self.entries.remove(&k);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // test code: the base instant comes from the clock
mod tests {
    use super::*;

    #[test]
    fn failure_tables_stay_bounded() {
        let limits = Limits::default();
        let now = Instant::now();
        let mut b = AuthBackoff::default();
        for i in 0..(MAX_TRACKED as u32 + 1000) {
            b.failed(
                &limits,
                now,
                IpAddr::from(i.to_be_bytes()),
                &i.to_be_bytes(),
            );
        }
        assert_eq!(b.tracked(), (MAX_TRACKED, MAX_TRACKED));
        // Entries whose memory ran out make room first.
        let later = now + FAILURE_MEMORY + Duration::from_secs(1);
        b.failed(&limits, later, IpAddr::from([1, 2, 3, 4]), b"x");
        assert_eq!(b.tracked(), (1, 1));
    }

    #[test]
    fn back_off_doubles_up_to_its_maximum() {
        let limits = Limits {
            auth_failures_before_backoff: 2,
            auth_backoff_max: Duration::from_secs(5),
            ..Limits::default()
        };
        let t0 = Instant::now();
        let src = IpAddr::from([192, 0, 2, 1]);
        let mut b = AuthBackoff::default();
        b.failed(&limits, t0, src, b"id");
        assert!(!b.source_blocked(t0, src), "below the threshold");
        let mut t = t0;
        for wait in [1, 2, 4, 5, 5] {
            b.failed(&limits, t, src, b"id");
            let d = Duration::from_secs(wait);
            assert!(b.source_blocked(t + d - Duration::from_millis(1), src));
            assert!(b.identity_blocked(t + d - Duration::from_millis(1), b"id"));
            assert!(!b.source_blocked(t + d, src), "{wait} s");
            t += d;
        }
        b.succeeded(src, b"id");
        assert_eq!(b.tracked(), (0, 0));
    }

    #[test]
    fn dh_rate_counts_about_the_last_second() {
        let t0 = Instant::now();
        let mut r = DhRate::default();
        for _ in 0..10 {
            r.add(t0);
        }
        assert_eq!(r.per_second(t0 + Duration::from_millis(400)), 10);
        assert_eq!(r.per_second(t0 + Duration::from_millis(700)), 10);
        r.add(t0 + Duration::from_millis(700));
        assert_eq!(r.per_second(t0 + Duration::from_millis(1100)), 1);
        assert_eq!(r.per_second(t0 + Duration::from_secs(3)), 0);
    }

    #[test]
    fn refusal_log_lines_are_bounded_per_interval() {
        let t0 = Instant::now();
        let mut r = Refusals::default();
        for i in 0..10_000u32 {
            r.record(
                t0,
                IpAddr::from(i.to_be_bytes()),
                Refusal::CookieChallenge,
                String::new,
            );
        }
        assert_eq!(r.detailed.len(), MAX_DETAILED);
        assert_eq!(r.count(Refusal::CookieChallenge), 10_000);
        // Full: not even a new reason of a known source gets a line.
        r.record(
            t0,
            IpAddr::from([0, 0, 0, 0]),
            Refusal::NoProposal,
            String::new,
        );
        assert_eq!(r.detailed.len(), MAX_DETAILED);
        assert_eq!(r.count(Refusal::NoProposal), 1);
        r.maybe_summarize(t0 + SUMMARY_EVERY);
        assert!(r.detailed.is_empty() && r.interval.is_empty());
        assert_eq!(
            r.totals(),
            vec![(Refusal::CookieChallenge, 10_000), (Refusal::NoProposal, 1)]
        );
    }

    #[test]
    fn one_detailed_line_per_source_and_reason() {
        let t0 = Instant::now();
        let mut r = Refusals::default();
        let src = IpAddr::from([192, 0, 2, 1]);
        for why in [Refusal::CookieChallenge, Refusal::NoProposal] {
            for _ in 0..3 {
                r.record(t0, src, why, String::new);
            }
        }
        assert_eq!(
            r.detailed,
            vec![(src, Refusal::CookieChallenge), (src, Refusal::NoProposal)]
        );
    }
}

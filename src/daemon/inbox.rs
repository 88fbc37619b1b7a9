//! The IKE thread's inbox: IKE datagrams from the UDP receivers (UDP 500, and the data-plane
//! workers that forward IKE arriving on UDP 4500) in a bounded queue; control messages
//! (status, reconfigure, shutdown) beside it, never dropped.
//!
//! Invariants:
//! - At most `capacity` datagrams, and at most [`MAX_QUEUED_BYTES`] of them, wait. A
//!   datagram that finds the queue full is dropped and counted ([`Inbox::dropped`]); posting
//!   never blocks, so an IKE flood (of large datagrams too) can neither grow memory beyond
//!   that nor stall a worker's ESP.
//! - One source address holds at most an eighth of the queue (of its slots and of its bytes,
//!   [`SHARE_DIVISOR`]): a flood from one address is dropped at its share and everybody
//!   else still finds room, whatever the IKE thread's speed. Sources are counted in
//!   [`SHARE_BUCKETS`] buckets under a hash keyed at random per inbox, so a sender cannot
//!   choose an address that shares another's bucket; memory is fixed.
//! - A control message is never dropped and never waits behind datagrams: [`Inbox::recv`]
//!   hands out every pending control message before the next datagram.
//! - The IKE thread wakes promptly for both: posting a control message also offers a wake-up
//!   token to the datagram queue; when that queue is full the thread is not asleep, and it
//!   looks for control messages before each datagram anyway.
//! - [`DropReport`] turns the drop counter into at most one log line per period.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{
    self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError, TrySendError,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::control_plane::ControlMsg;

/// One IKE message (the UDP payload, non-ESP marker stripped) and where it travelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Datagram {
    pub bytes: Vec<u8>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// Bytes of datagrams that may wait in all: 4096 typical IKE messages (at most 1 KiB each)
/// fit, a flood of maximal UDP datagrams cannot hold more than this.
pub(crate) const MAX_QUEUED_BYTES: usize = 4 << 20;
/// One source address may hold at most `1 / SHARE_DIVISOR` of the queue's slots and bytes.
pub(crate) const SHARE_DIVISOR: usize = 8;
/// Buckets the per-source counts are kept in.
const SHARE_BUCKETS: usize = 1024;

/// Bytes queued in all, datagrams and bytes queued per source address (bucketed), and what
/// may wait.
struct Ledger {
    queued_bytes: AtomicUsize,
    hasher: RandomState,
    slots: Box<[AtomicU32]>,
    bytes: Box<[AtomicUsize]>,
    max_slots: u32,
    max_bytes: usize,
}

impl Ledger {
    fn new(capacity: usize) -> Self {
        Self {
            queued_bytes: AtomicUsize::new(0),
            hasher: RandomState::new(),
            slots: (0..SHARE_BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            bytes: (0..SHARE_BUCKETS).map(|_| AtomicUsize::new(0)).collect(),
            max_slots: u32::try_from((capacity / SHARE_DIVISOR).max(1)).unwrap_or(u32::MAX),
            max_bytes: MAX_QUEUED_BYTES / SHARE_DIVISOR,
        }
    }

    fn bucket(&self, ip: IpAddr) -> usize {
        (self.hasher.hash_one(ip) % SHARE_BUCKETS as u64) as usize
    }

    /// Admits a datagram of `len` bytes from `ip`: the bucket it is counted in, or None (and
    /// nothing counted) when the queue's bytes or the source's share are used up.
    fn admit(&self, ip: IpAddr, len: usize) -> Option<usize> {
        if self.queued_bytes.fetch_add(len, Ordering::Relaxed) + len > MAX_QUEUED_BYTES {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            return None;
        }
        let bucket = self.bucket(ip);
        if self.slots[bucket].fetch_add(1, Ordering::Relaxed) >= self.max_slots {
            self.slots[bucket].fetch_sub(1, Ordering::Relaxed);
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            return None;
        }
        if self.bytes[bucket].fetch_add(len, Ordering::Relaxed) + len > self.max_bytes {
            self.release(bucket, len);
            return None;
        }
        Some(bucket)
    }

    /// Gives back what [`Ledger::admit`] counted.
    fn release(&self, bucket: usize, len: usize) {
        self.bytes[bucket].fetch_sub(len, Ordering::Relaxed);
        self.slots[bucket].fetch_sub(1, Ordering::Relaxed);
        self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
    }
}

/// A new inbox holding at most `capacity` (≥ 1) datagrams, and the postbox that fills it.
pub(crate) fn with_capacity(capacity: usize) -> (Postbox, Inbox) {
    let capacity = capacity.max(1);
    let (items_tx, items_rx) = mpsc::sync_channel(capacity);
    let (control_tx, control_rx) = mpsc::channel();
    let dropped = Arc::new(AtomicU64::new(0));
    let ledger = Arc::new(Ledger::new(capacity));
    (
        Postbox {
            items: items_tx,
            control: control_tx,
            dropped: dropped.clone(),
            ledger: ledger.clone(),
        },
        Inbox {
            items: items_rx,
            control: control_rx,
            dropped,
            ledger,
            capacity,
        },
    )
}

/// The IKE thread has ended: nothing can be posted any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// The sending side, cloned into every receiver thread and control-message sender.
#[derive(Clone)]
pub(crate) struct Postbox {
    items: SyncSender<Item>,
    control: Sender<ControlMsg>,
    dropped: Arc<AtomicU64>,
    ledger: Arc<Ledger>,
}

impl Postbox {
    /// Queues an IKE datagram without blocking; a full queue, or a source that holds its
    /// share of it already, drops it and counts the drop.
    pub fn datagram(&self, d: Datagram) -> Result<(), Closed> {
        let len = d.bytes.len();
        let Some(bucket) = self.ledger.admit(d.remote.ip(), len) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        match self.items.try_send(Item::Datagram(d, bucket)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.ledger.release(bucket, len);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err(Closed),
        }
    }

    /// Queues a control message (never dropped) and wakes the IKE thread.
    pub fn control(&self, msg: ControlMsg) -> Result<(), Closed> {
        self.control.send(msg).map_err(|_| Closed)?;
        // Full: the thread is busy and sees the message before its next datagram.
        match self.items.try_send(Item::Wake) {
            Ok(()) | Err(TrySendError::Full(_)) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(Closed),
        }
    }
}

/// What [`Inbox::recv`] got.
#[derive(Debug)]
pub(crate) enum Received {
    Control(ControlMsg),
    Datagram(Datagram),
    /// Nothing within the timeout.
    Timeout,
    /// Every [`Postbox`] is gone.
    Closed,
}

/// The IKE thread's receiving side.
pub(crate) struct Inbox {
    items: Receiver<Item>,
    control: Receiver<ControlMsg>,
    dropped: Arc<AtomicU64>,
    ledger: Arc<Ledger>,
    capacity: usize,
}

impl Inbox {
    /// The next control message if one is pending, else the next datagram, waiting at most
    /// `timeout`.
    pub fn recv(&self, timeout: Duration) -> Received {
        let deadline = Instant::now() + timeout;
        loop {
            match self.control.try_recv() {
                Ok(msg) => return Received::Control(msg),
                Err(TryRecvError::Disconnected) => return Received::Closed,
                Err(TryRecvError::Empty) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.items.recv_timeout(left) {
                Ok(Item::Datagram(d, bucket)) => {
                    self.ledger.release(bucket, d.bytes.len());
                    return Received::Datagram(d);
                }
                // A control message is pending, or was taken above already: look again.
                Ok(Item::Wake) => {}
                Err(RecvTimeoutError::Timeout) => return Received::Timeout,
                Err(RecvTimeoutError::Disconnected) => return Received::Closed,
            }
        }
    }

    /// A datagram already queued, without waiting; control messages stay queued.
    pub fn try_datagram(&self) -> Option<Datagram> {
        loop {
            match self.items.try_recv() {
                Ok(Item::Datagram(d, bucket)) => {
                    self.ledger.release(bucket, d.bytes.len());
                    return Some(d);
                }
                // `recv` looks at the control messages first each time: nothing is lost.
                Ok(Item::Wake) => {}
                Err(_) => return None,
            }
        }
    }

    /// Datagrams dropped so far because the queue (or the source's share of it) was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// How many datagrams may wait.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Rate-limits the report of dropped datagrams: at most one line per `period`, each with the
/// drops since the previous line.
#[derive(Debug)]
pub(crate) struct DropReport {
    period: Duration,
    last: Option<Instant>,
    reported: u64,
}

impl DropReport {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            last: None,
            reported: 0,
        }
    }

    /// With `total` drops so far: the number of new drops to report now, if a line is due
    /// (there are new drops and the last line is at least `period` old).
    pub fn due(&mut self, now: Instant, total: u64) -> Option<u64> {
        let new = total.saturating_sub(self.reported);
        if new == 0
            || self
                .last
                .is_some_and(|t| now.duration_since(t) < self.period)
        {
            return None;
        }
        self.last = Some(now);
        self.reported = total;
        Some(new)
    }
}

/// What the datagram queue carries: a datagram, or a wake-up for a pending control message.
enum Item {
    /// With the bucket it is counted in.
    Datagram(Datagram, usize),
    Wake,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(i: u8) -> Datagram {
        Datagram {
            bytes: vec![i],
            local: SocketAddr::from(([192, 0, 2, 1], 500)),
            remote: SocketAddr::from(([198, 51, 100, 7], 500)),
        }
    }

    /// `n` source addresses that the inbox counts in different buckets.
    fn distinct_sources(post: &Postbox, n: usize) -> Vec<SocketAddr> {
        let mut seen = std::collections::HashSet::new();
        (0u32..)
            .map(|i| SocketAddr::from((std::net::Ipv4Addr::from(0x0a00_0000 + i), 500)))
            .filter(|a| seen.insert(post.ledger.bucket(a.ip())))
            .take(n)
            .collect()
    }

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn large_datagrams_are_bounded_by_bytes_too() {
        let (post, inbox) = with_capacity(4096);
        let sources = distinct_sources(&post, 200);
        let big = |i: usize| Datagram {
            bytes: vec![i as u8; 65_000],
            remote: sources[i],
            ..datagram(0)
        };
        for i in 0..200 {
            assert_eq!(post.datagram(big(i)), Ok(()));
        }
        let fits = MAX_QUEUED_BYTES / 65_000;
        assert_eq!(inbox.dropped(), 200 - fits as u64);
        // Taking one out makes room for exactly one more.
        assert!(matches!(inbox.recv(NOW), Received::Datagram(_)));
        post.datagram(big(1)).unwrap();
        post.datagram(big(2)).unwrap();
        assert_eq!(inbox.dropped(), 200 - fits as u64 + 1);
    }

    #[test]
    fn one_source_holds_at_most_its_share_and_the_others_still_get_in() {
        let (post, inbox) = with_capacity(64);
        let [flooder, victim] = distinct_sources(&post, 2)[..] else {
            unreachable!()
        };
        let from = |remote, len| Datagram {
            bytes: vec![7; len],
            remote,
            ..datagram(0)
        };
        for _ in 0..1000 {
            post.datagram(from(flooder, 100)).expect("open");
        }
        assert_eq!(inbox.dropped(), 1000 - 64 / SHARE_DIVISOR as u64);
        post.datagram(from(victim, 100)).expect("open");
        assert_eq!(inbox.dropped(), 1000 - 8, "the victim's datagram is kept");
        // Its share is of bytes too: 512 KiB of large datagrams from one address.
        let (post, inbox) = with_capacity(4096);
        let [flooder, victim] = distinct_sources(&post, 2)[..] else {
            unreachable!()
        };
        for _ in 0..100 {
            post.datagram(from(flooder, 65_000)).expect("open");
        }
        let fits = MAX_QUEUED_BYTES / SHARE_DIVISOR / 65_000;
        assert_eq!(inbox.dropped(), 100 - fits as u64);
        post.datagram(from(victim, 65_000)).expect("open");
        assert_eq!(inbox.dropped(), 100 - fits as u64);
        // Taken out, the flooder's datagrams free its share again, slot and bytes.
        let mut taken = 0;
        while let Some(d) = inbox.try_datagram() {
            taken += 1;
            assert_eq!(d.bytes.len(), 65_000);
        }
        assert_eq!(taken, fits + 1);
        for _ in 0..fits {
            post.datagram(from(flooder, 65_000)).expect("open");
        }
        assert_eq!(inbox.dropped(), 100 - fits as u64, "room again");
    }

    #[test]
    fn a_full_queue_drops_and_counts_but_control_messages_get_through() {
        let (post, inbox) = with_capacity(4);
        let sources = distinct_sources(&post, 10);
        let datagram = |i: u8| Datagram {
            remote: sources[i as usize],
            ..datagram(i)
        };
        for i in 0..10 {
            assert_eq!(post.datagram(datagram(i)), Ok(()), "posting never fails");
        }
        assert_eq!(inbox.dropped(), 6);
        assert_eq!(inbox.capacity(), 4);
        // The queue is full, and a control message still goes in, without blocking, ahead
        // of every waiting datagram.
        post.control(ControlMsg::Shutdown).expect("inbox open");
        assert!(matches!(
            inbox.recv(NOW),
            Received::Control(ControlMsg::Shutdown)
        ));
        for i in 0..4 {
            match inbox.recv(NOW) {
                Received::Datagram(d) => assert_eq!(d, datagram(i), "first come, first kept"),
                other => panic!("datagram {i}: {other:?}"),
            }
        }
        assert!(matches!(inbox.recv(NOW), Received::Timeout));
        // Room again.
        post.datagram(datagram(9)).expect("open");
        assert_eq!(inbox.dropped(), 6);
        assert!(matches!(inbox.recv(NOW), Received::Datagram(d) if d.bytes == [9]));
    }

    #[test]
    fn a_control_message_wakes_a_waiting_thread_promptly() {
        let (post, inbox) = with_capacity(4);
        let waiter = std::thread::spawn(move || {
            let t0 = Instant::now();
            let got = inbox.recv(Duration::from_secs(30));
            (
                matches!(got, Received::Control(ControlMsg::Shutdown)),
                t0.elapsed(),
            )
        });
        std::thread::sleep(Duration::from_millis(50));
        post.control(ControlMsg::Shutdown).expect("open");
        let (shutdown, waited) = waiter.join().expect("waiter");
        assert!(shutdown);
        assert!(waited < Duration::from_secs(10), "woke after {waited:?}");
    }

    #[test]
    fn a_stale_wake_up_is_not_a_message() {
        let (post, inbox) = with_capacity(4);
        post.control(ControlMsg::Shutdown).expect("open");
        // The message is taken before the datagram queue is looked at; its wake-up token
        // stays behind and must not end the next wait early or show up as anything.
        assert!(matches!(inbox.recv(NOW), Received::Control(_)));
        let t0 = Instant::now();
        assert!(matches!(
            inbox.recv(Duration::from_millis(50)),
            Received::Timeout
        ));
        assert!(t0.elapsed() >= Duration::from_millis(45));
    }

    #[test]
    fn closed_both_ways() {
        let (post, inbox) = with_capacity(1);
        drop(inbox);
        assert_eq!(post.datagram(datagram(1)), Err(Closed));
        assert_eq!(post.control(ControlMsg::Shutdown), Err(Closed));
        let (post, inbox) = with_capacity(1);
        post.datagram(datagram(1)).expect("open");
        drop(post);
        assert!(matches!(inbox.recv(NOW), Received::Closed));
    }

    #[test]
    fn drop_reports_are_rate_limited_and_carry_the_count() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = DropReport::new(s(10));
        assert_eq!(r.due(t0, 0), None, "nothing dropped, nothing to say");
        assert_eq!(
            r.due(t0, 3),
            Some(3),
            "the first drops are reported at once"
        );
        assert_eq!(r.due(t0 + s(1), 50), None);
        assert_eq!(r.due(t0 + s(9), 70), None);
        assert_eq!(
            r.due(t0 + s(10), 75),
            Some(72),
            "one line per period, with the count"
        );
        assert_eq!(r.due(t0 + s(30), 75), None, "no new drops");
        assert_eq!(r.due(t0 + s(31), 76), Some(1));
    }
}

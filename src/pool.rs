//! ClientIpPool leases (docs/DESIGN.md §1: CP INTERNAL_IP4_ADDRESS, RFC 7296 §3.15).
//!
//! Invariants:
//! - the network and broadcast addresses of the pool are never leased;
//! - an address is leased to at most one IKE SA at a time;
//! - at most `max_leases` addresses are leased at once (the gateway's MaxConnections);
//! - an identity gets its previous address again while that address is free ("sticky"); the
//!   sticky memory holds at most one entry per pool address, so it is bounded by the pool size.
//!
//! In cluster mode several gateways share one pool: the pool then consults its
//! [`SharedLeases`] (set with [`Pool::share`]; the daemon's etcd client implements it) for
//! every address, and keeps only this node's leases itself. The cluster, not this node,
//! picks the address and remembers who had it (stickiness across nodes); this node still
//! bounds its leases by `max_leases` and never hands out an address it holds already.
//! The trait is the whole seam: this module stays sans-IO, the blocking and its bound are
//! the implementation's.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("client address pool {0} is exhausted")]
    Exhausted(Ipv4Net),
    #[error("MaxConnections ({0}) reached")]
    MaxConnections(usize),
    /// The cluster's lease store did not give an address (unreachable, timed out, fenced).
    #[error("no address from the cluster: {0}")]
    Cluster(String),
}

/// The cluster's half of a shared pool: claims an address for an identity so that no other
/// node holds it, and gives it back. Called by the `ike` thread; `claim` may block for a
/// bounded time (the implementation's bound), `release` must not block.
pub trait SharedLeases: Send {
    /// An address of the pool for `identity`, held by no node now: its previous one when
    /// free (sticky across nodes), else a free one. Errors are the client's
    /// INTERNAL_ADDRESS_FAILURE.
    fn claim(&mut self, identity: &[u8]) -> Result<Ipv4Addr, PoolError>;
    /// Gives `addr` back to the cluster's pool.
    fn release(&mut self, addr: Ipv4Addr);
}

pub struct Pool {
    net: Ipv4Net,
    max_leases: usize,
    leased: HashSet<Ipv4Addr>,
    /// The identity an address was last leased to, for stickiness.
    last_owner: HashMap<Ipv4Addr, Vec<u8>>,
    /// The reverse of `last_owner`.
    sticky: HashMap<Vec<u8>, Ipv4Addr>,
    /// Next host offset to try, so fresh addresses are spread before old ones are reused.
    cursor: u32,
    /// Cluster mode: where addresses come from and go back to.
    shared: Option<Box<dyn SharedLeases>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("net", &self.net)
            .field("max_leases", &self.max_leases)
            .field("leased", &self.leased.len())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Pool {
    pub fn new(net: Ipv4Net, max_leases: usize) -> Self {
        Self {
            net: net.trunc(),
            max_leases,
            leased: HashSet::new(),
            last_owner: HashMap::new(),
            sticky: HashMap::new(),
            cursor: 0,
            shared: None,
        }
    }

    /// From now on addresses come from (and go back to) the cluster's `shared` leases.
    pub fn share(&mut self, shared: Box<dyn SharedLeases>) {
        self.shared = Some(shared);
    }

    pub fn network(&self) -> Ipv4Net {
        self.net
    }

    /// Number of addresses it can lease at once: its host addresses, at most `max_leases`.
    pub fn capacity(&self) -> usize {
        (self.host_count() as usize).min(self.max_leases)
    }

    /// Number of addresses leased now.
    pub fn in_use(&self) -> usize {
        self.leased.len()
    }

    /// Number of addresses the pool holds: its hosts, without the network and broadcast
    /// addresses (never leased). `max_leases` may allow fewer at once.
    pub fn size(&self) -> usize {
        self.host_count() as usize
    }

    /// Leases an address to `identity`: its previous address if free, else a fresh one
    /// (addresses never handed out first), else any free address.
    pub fn acquire(&mut self, identity: &[u8]) -> Result<Ipv4Addr, PoolError> {
        if self.leased.len() >= self.max_leases {
            return Err(PoolError::MaxConnections(self.max_leases));
        }
        if let Some(shared) = self.shared.as_mut() {
            let addr = shared.claim(identity)?;
            if !self.net.contains(&addr) || !self.leased.insert(addr) {
                // The cluster's view and ours disagree (an address of another pool, or one
                // this node holds): refuse rather than hand it out twice.
                return Err(PoolError::Cluster(format!(
                    "the cluster offered {addr}, which this node cannot lease"
                )));
            }
            return Ok(addr);
        }
        if let Some(&addr) = self.sticky.get(identity) {
            if self.leased.insert(addr) {
                return Ok(addr);
            }
        }
        let addr = self
            .scan(|pool, a| !pool.leased.contains(&a) && !pool.last_owner.contains_key(&a))
            .or_else(|| self.scan(|pool, a| !pool.leased.contains(&a)))
            .ok_or(PoolError::Exhausted(self.net))?;
        self.leased.insert(addr);
        if let Some(old) = self.last_owner.insert(addr, identity.to_vec()) {
            self.sticky.remove(&old);
        }
        if let Some(prev) = self.sticky.insert(identity.to_vec(), addr) {
            if prev != addr {
                self.last_owner.remove(&prev);
            }
        }
        Ok(addr)
    }

    /// Returns `addr` to the pool; unknown addresses are ignored.
    pub fn release(&mut self, addr: Ipv4Addr) {
        if self.leased.remove(&addr) {
            if let Some(shared) = self.shared.as_mut() {
                shared.release(addr);
            }
        }
    }

    pub fn is_leased(&self, addr: Ipv4Addr) -> bool {
        self.leased.contains(&addr)
    }

    /// Usable host addresses: all but the network and broadcast addresses.
    fn host_count(&self) -> u32 {
        // prefix_len is 16..=29 after config validation, but stay total for any prefix.
        let size = 1u64 << (32 - u32::from(self.net.prefix_len()));
        size.saturating_sub(2).min(u64::from(u32::MAX)) as u32
    }

    /// First host address after the cursor satisfying `ok`, advancing the cursor past it.
    fn scan(&mut self, ok: impl Fn(&Self, Ipv4Addr) -> bool) -> Option<Ipv4Addr> {
        let hosts = self.host_count();
        let base = u32::from(self.net.network());
        for i in 0..hosts {
            let offset = (self.cursor + i) % hosts;
            let addr = Ipv4Addr::from(base + 1 + offset);
            if ok(self, addr) {
                self.cursor = (offset + 1) % hosts;
                return Some(addr);
            }
        }
        None
    }
}

/// A [`Pool`]'s leases and sticky memory as plain data: what the hand-over snapshot of
/// `ipsec-server upgrade` carries, so clients keep their addresses and come back to them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolState {
    pub leased: Vec<Ipv4Addr>,
    /// identity → the address it was last leased.
    pub sticky: Vec<(Vec<u8>, Ipv4Addr)>,
    pub cursor: u32,
}

impl Pool {
    pub fn export(&self) -> PoolState {
        let mut leased: Vec<Ipv4Addr> = self.leased.iter().copied().collect();
        leased.sort_unstable();
        let mut sticky: Vec<(Vec<u8>, Ipv4Addr)> =
            self.sticky.iter().map(|(id, a)| (id.clone(), *a)).collect();
        sticky.sort_unstable();
        PoolState {
            leased,
            sticky,
            cursor: self.cursor,
        }
    }

    /// This (empty) pool with `state`'s leases and memory; `None` if an address lies outside
    /// its hosts, an address or identity appears twice, or there are more leases than it
    /// may hold (the state comes from a hand-over socket; the pool may have been changed).
    pub fn import(mut self, state: &PoolState) -> Option<Self> {
        let hosts = self.host_count();
        let base = u32::from(self.net.network());
        let inside = |a: Ipv4Addr| (1..=hosts).contains(&u32::from(a).wrapping_sub(base));
        if state.leased.len() > self.max_leases || state.sticky.len() > hosts as usize {
            return None;
        }
        for &a in &state.leased {
            if !inside(a) || !self.leased.insert(a) {
                return None;
            }
        }
        for (id, a) in &state.sticky {
            if !inside(*a)
                || self.sticky.insert(id.clone(), *a).is_some()
                || self.last_owner.insert(*a, id.clone()).is_some()
            {
                return None;
            }
        }
        self.cursor = state.cursor % hosts.max(1);
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imported_pool_keeps_leases_and_sticky_addresses() {
        let net: Ipv4Net = "10.0.0.0/29".parse().unwrap();
        let mut p = Pool::new(net, 4);
        let a = p.acquire(b"alice").unwrap();
        let b = p.acquire(b"bob").unwrap();
        p.release(b);
        let state = p.export();
        let mut q = Pool::new(net, 4).import(&state).unwrap();
        assert!(q.is_leased(a) && !q.is_leased(b));
        assert_eq!(
            q.acquire(b"bob").unwrap(),
            b,
            "bob comes back to his address"
        );
        let c = q.acquire(b"carol").unwrap();
        assert!(![a, b].contains(&c));
        // Another pool, a duplicate lease, too many leases: refused.
        assert!(Pool::new("10.9.0.0/29".parse().unwrap(), 4)
            .import(&state)
            .is_none());
        let twice = PoolState {
            leased: vec![a, a],
            ..state.clone()
        };
        assert!(Pool::new(net, 4).import(&twice).is_none());
        assert!(Pool::new(net, 0).import(&state).is_none());
    }

    fn pool(net: &str, max: usize) -> Pool {
        Pool::new(net.parse().unwrap(), max)
    }

    #[test]
    fn never_leases_network_or_broadcast() {
        let mut p = pool("10.0.0.0/29", 100);
        let mut got = Vec::new();
        for i in 0..6u8 {
            got.push(p.acquire(&[i]).unwrap());
        }
        assert_eq!(got.first(), Some(&Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(10, 0, 0, 6)));
        assert_eq!(p.acquire(&[9]), Err(PoolError::Exhausted(p.network())));
    }

    #[test]
    fn same_identity_gets_same_address_again_while_free() {
        let mut p = pool("10.0.0.0/24", 100);
        let a = p.acquire(b"alice").unwrap();
        let b = p.acquire(b"bob").unwrap();
        p.release(a);
        let c = p.acquire(b"carol").unwrap();
        assert_ne!(c, a, "a fresh address is preferred over alice's old one");
        assert_eq!(p.acquire(b"alice").unwrap(), a);
        assert_ne!(a, b);
    }

    #[test]
    fn two_sas_of_one_identity_get_distinct_addresses() {
        let mut p = pool("10.0.0.0/24", 100);
        let a1 = p.acquire(b"shared").unwrap();
        let a2 = p.acquire(b"shared").unwrap();
        assert_ne!(a1, a2);
        assert_eq!(p.in_use(), 2);
    }

    #[test]
    fn capacity_is_the_hosts_within_max_connections() {
        assert_eq!(pool("10.0.0.0/24", 1000).capacity(), 254);
        assert_eq!(pool("10.0.0.0/24", 2).capacity(), 2);
    }

    #[test]
    fn max_connections_limits_leases() {
        let mut p = pool("10.0.0.0/24", 2);
        p.acquire(b"a").unwrap();
        let b = p.acquire(b"b").unwrap();
        assert_eq!(p.acquire(b"c"), Err(PoolError::MaxConnections(2)));
        p.release(b);
        assert!(p.acquire(b"c").is_ok());
    }

    /// A cluster stand-in: hands out the addresses in `offer` in turn, records releases.
    struct Scripted {
        offer: Vec<Result<Ipv4Addr, PoolError>>,
        released: std::sync::Arc<std::sync::Mutex<Vec<Ipv4Addr>>>,
    }

    impl SharedLeases for Scripted {
        fn claim(&mut self, _identity: &[u8]) -> Result<Ipv4Addr, PoolError> {
            self.offer.remove(0)
        }
        fn release(&mut self, addr: Ipv4Addr) {
            self.released.lock().unwrap().push(addr);
        }
    }

    #[test]
    fn shared_pool_takes_the_clusters_address_and_refuses_one_it_holds() {
        let a = Ipv4Addr::new(10, 0, 0, 7);
        let released = std::sync::Arc::default();
        let mut p = pool("10.0.0.0/24", 100);
        p.share(Box::new(Scripted {
            offer: vec![
                Ok(a),
                Ok(a),
                Ok(Ipv4Addr::new(10, 9, 0, 1)),
                Err(PoolError::Cluster("etcd timed out".into())),
            ],
            released: std::sync::Arc::clone(&released),
        }));
        assert_eq!(p.acquire(b"alice"), Ok(a));
        assert!(
            matches!(p.acquire(b"bob"), Err(PoolError::Cluster(_))),
            "held here"
        );
        assert!(
            matches!(p.acquire(b"bob"), Err(PoolError::Cluster(_))),
            "another pool"
        );
        assert_eq!(
            p.acquire(b"bob"),
            Err(PoolError::Cluster("etcd timed out".into()))
        );
        assert_eq!(p.in_use(), 1);
        p.release(a);
        p.release(a);
        assert_eq!(
            *released.lock().unwrap(),
            vec![a],
            "released once, to the cluster"
        );
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn reuses_released_addresses_when_no_fresh_one_is_left() {
        let mut p = pool("10.0.0.0/30", 10);
        let a = p.acquire(b"a").unwrap();
        let b = p.acquire(b"b").unwrap();
        p.release(a);
        let c = p.acquire(b"c").unwrap();
        assert_eq!(c, a);
        assert!(p.is_leased(b));
        // a's stickiness moved to c
        p.release(c);
        assert_eq!(p.acquire(b"c").unwrap(), c);
    }
}

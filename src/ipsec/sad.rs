//! The SA database: inbound SAs by SPI, outbound SAs by the client's virtual IP.
//!
//! Readers (the data-plane workers) load an immutable [`SadSnapshot`] through `ArcSwap`, once
//! per batch, without a lock; the control plane (IKE) replaces the snapshot copy-on-write on
//! install and delete, which are rare. SAs are `Arc`s shared by consecutive snapshots, so
//! their counters and replay windows survive every change. The counters of a deleted SA are
//! added to running totals as it leaves ([`Sad::totals`]: metrics count since the start,
//! not only over the SAs alive now).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::drops::EspDrops;
use super::esp::{EspError, EspTotals, InboundSa, OutboundSa};
use super::{ChildSaSpec, Role, REKEY_AT_SEQ};

/// Shards per map. An install or delete copies only the shards it changes (copy-on-write
/// via `Arc::make_mut`), so its cost is about n / SHARDS entries instead of n: with 10,000
/// clients a whole-map copy per handshake made installs O(n) and connecting n clients O(n²).
const SHARDS: usize = 128;

type Shards<K, V> = Vec<Arc<HashMap<K, V>>>;

fn empty_shards<K, V>() -> Shards<K, V> {
    (0..SHARDS).map(|_| Arc::new(HashMap::new())).collect()
}

fn spi_shard(spi: u32) -> usize {
    spi as usize % SHARDS
}

fn vip_shard(vip: Ipv4Addr) -> usize {
    u32::from(vip) as usize % SHARDS
}

/// One immutable view of the SA database.
#[derive(Clone)]
pub struct SadSnapshot {
    inbound: Shards<u32, Arc<InboundSa>>,
    outbound: Shards<Ipv4Addr, Arc<OutboundSa>>,
    /// inbound SPI → the client's address, to delete the outbound side with it.
    pairs: Shards<u32, Ipv4Addr>,
    /// [`Role::Client`]: the SA every outbound packet takes (the kernel routes only the
    /// remote subnets into the TUN).
    default_outbound: Option<Arc<OutboundSa>>,
}

impl Default for SadSnapshot {
    fn default() -> Self {
        Self {
            inbound: empty_shards(),
            outbound: empty_shards(),
            pairs: empty_shards(),
            default_outbound: None,
        }
    }
}

impl SadSnapshot {
    pub fn inbound(&self, spi: u32) -> Option<&Arc<InboundSa>> {
        self.inbound[spi_shard(spi)].get(&spi)
    }

    /// The SA that carries packets to `dst` (a client's virtual IP; in the client role,
    /// any destination).
    pub fn outbound(&self, dst: Ipv4Addr) -> Option<&Arc<OutboundSa>> {
        self.outbound[vip_shard(dst)]
            .get(&dst)
            .or(self.default_outbound.as_ref())
    }

    pub fn len(&self) -> usize {
        self.inbound.iter().map(|m| m.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.inbound.iter().all(|m| m.is_empty())
    }

    /// Inbound SPIs of the pairs whose sequence numbers reached [`REKEY_AT_SEQ`] in either
    /// direction: the control plane's tick reads this and rekeys them. One pass over the
    /// counters, no lock; allocates only for the (usually empty) answer.
    pub fn rekey_due(&self) -> Vec<u32> {
        let outbound = self
            .outbound
            .iter()
            .flat_map(|m| m.values())
            .filter(|o| o.seq() >= REKEY_AT_SEQ)
            .map(|o| o.inbound_spi);
        let inbound = self
            .inbound
            .iter()
            .flat_map(|m| m.values())
            .filter(|i| i.highest_seq() >= REKEY_AT_SEQ)
            .map(|i| i.spi);
        let mut due: Vec<u32> = outbound.chain(inbound).collect();
        due.sort_unstable();
        due.dedup();
        due
    }

    /// (inbound, outbound) of every pair, for status output.
    pub fn pairs(&self) -> impl Iterator<Item = (&Arc<InboundSa>, Option<&Arc<OutboundSa>>)> {
        self.inbound
            .iter()
            .flat_map(|m| m.values())
            .map(|i| (i, self.outbound(i.client_vip)))
    }
}

/// What the hand-over (`super::handover`) reads and builds.
impl SadSnapshot {
    pub(super) fn inbound_sas(&self) -> impl Iterator<Item = &Arc<InboundSa>> {
        self.inbound.iter().flat_map(|m| m.values())
    }

    pub(super) fn outbound_sas(&self) -> impl Iterator<Item = (Ipv4Addr, &Arc<OutboundSa>)> {
        self.outbound
            .iter()
            .flat_map(|m| m.iter().map(|(vip, sa)| (*vip, sa)))
    }

    pub(super) fn pair_list(&self) -> Vec<(u32, Ipv4Addr)> {
        self.pairs
            .iter()
            .flat_map(|m| m.iter().map(|(spi, vip)| (*spi, *vip)))
            .collect()
    }

    pub(super) fn is_default_outbound(&self, sa: &Arc<OutboundSa>) -> bool {
        self.default_outbound
            .as_ref()
            .is_some_and(|d| Arc::ptr_eq(d, sa))
    }

    pub(super) fn put_inbound(&mut self, sa: Arc<InboundSa>) {
        Arc::make_mut(&mut self.inbound[spi_shard(sa.spi)]).insert(sa.spi, sa);
    }

    pub(super) fn put_outbound(&mut self, vip: Ipv4Addr, sa: Arc<OutboundSa>) {
        Arc::make_mut(&mut self.outbound[vip_shard(vip)]).insert(vip, sa);
    }

    pub(super) fn put_pair(&mut self, spi: u32, vip: Ipv4Addr) {
        Arc::make_mut(&mut self.pairs[spi_shard(spi)]).insert(spi, vip);
    }

    pub(super) fn set_default_outbound(&mut self, sa: Arc<OutboundSa>) {
        self.default_outbound = Some(sa);
    }
}

#[derive(Default)]
pub struct Sad {
    current: ArcSwap<SadSnapshot>,
    /// Serializes writers (the control plane); readers never take it. Holds the counters of
    /// the SAs deleted so far.
    write: Mutex<EspTotals>,
    /// Dropped ESP packets by reason, over every SA and the packets that found none (the
    /// workers count; the control plane summarises, metrics report).
    drops: EspDrops,
}

impl Sad {
    pub fn new() -> Self {
        Self::default()
    }

    /// Dropped ESP packets by reason since the start.
    pub fn drops(&self) -> &EspDrops {
        &self.drops
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<SadSnapshot> {
        self.current.load_full()
    }

    /// Installs an SA pair. The outbound SA of the client's address is replaced (make before
    /// break: a rekeyed pair takes over sending at once; the old inbound SA stays until it is
    /// deleted).
    pub fn install(&self, spec: &ChildSaSpec) -> Result<(), EspError> {
        self.install_as(spec, Role::Gateway)
    }

    /// [`Self::install`] for the tunnel end `role`: as [`Role::Client`] the pair's outbound
    /// SA also becomes the default for every destination.
    pub fn install_as(&self, spec: &ChildSaSpec, role: Role) -> Result<(), EspError> {
        let inbound = Arc::new(InboundSa::with_role(spec, role)?);
        let outbound = Arc::new(OutboundSa::with_role(spec, role)?);
        self.update(|s, retired| {
            let (spi, vip) = (spec.inbound_spi, spec.client_vip);
            if let Some(old) = Arc::make_mut(&mut s.inbound[spi_shard(spi)]).insert(spi, inbound) {
                retired.add_inbound(&old);
            }
            if role == Role::Client {
                s.default_outbound = Some(outbound.clone());
            }
            // The client's previous outbound SA (a rekey) leaves the database here.
            if let Some(old) = Arc::make_mut(&mut s.outbound[vip_shard(vip)]).insert(vip, outbound)
            {
                retired.add_outbound(&old);
            }
            Arc::make_mut(&mut s.pairs[spi_shard(spi)]).insert(spi, vip);
        });
        Ok(())
    }

    /// Deletes the pair of inbound SPI `spi`; the outbound SA goes too unless a newer pair
    /// of the same client replaced it.
    pub fn remove(&self, spi: u32) {
        self.update(|s, retired| {
            let shard = spi_shard(spi);
            if s.inbound[shard].contains_key(&spi) {
                if let Some(gone) = Arc::make_mut(&mut s.inbound[shard]).remove(&spi) {
                    retired.add_inbound(&gone);
                }
            }
            if !s.pairs[shard].contains_key(&spi) {
                return;
            }
            if let Some(vip) = Arc::make_mut(&mut s.pairs[shard]).remove(&spi) {
                let still_used = s.pairs.iter().any(|m| m.values().any(|v| *v == vip));
                if !still_used {
                    let gone = Arc::make_mut(&mut s.outbound[vip_shard(vip)]).remove(&vip);
                    if let Some(gone) = gone {
                        retired.add_outbound(&gone);
                        if s.default_outbound
                            .as_ref()
                            .is_some_and(|d| Arc::ptr_eq(d, &gone))
                        {
                            s.default_outbound = None;
                        }
                    }
                }
            }
        });
    }

    /// Sends the pair of inbound SPI `spi` to `remote` from now on.
    pub fn set_remote(&self, spi: u32, remote: std::net::SocketAddr) {
        let snap = self.snapshot();
        if let Some(out) = snap.inbound(spi).and_then(|i| snap.outbound(i.client_vip)) {
            out.set_remote(remote);
        }
    }

    pub fn clear(&self) {
        self.update(|s, retired| {
            add_live(s, retired);
            *s = SadSnapshot::default()
        });
    }

    /// The counters of every SA since this database was created, deleted SAs included (the
    /// packets that found no SA are in [`Sad::drops`]). Only grows, except that a worker still holding an
    /// older snapshot may count a last packet on a deleted SA, which is then not seen.
    pub fn totals(&self) -> EspTotals {
        let retired = self.lock();
        let mut t = *retired;
        add_live(&self.current.load(), &mut t);
        t
    }

    /// The counters of the SAs deleted so far (the hand-over carries them).
    pub(super) fn retired_totals(&self) -> EspTotals {
        *self.lock()
    }

    /// Makes `snapshot` current and `retired` the deleted SAs' counters (the hand-over).
    pub(super) fn replace(&self, snapshot: SadSnapshot, retired: EspTotals) {
        let mut r = self.lock();
        *r = retired;
        self.current.store(Arc::new(snapshot));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EspTotals> {
        // A poisoned lock only means another writer panicked; the snapshot itself is
        // immutable and consistent, so carry on.
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the snapshot by `f`'s edit of a copy; `f` adds the counters of the SAs it
    /// removes to the retired totals it is given.
    fn update(&self, f: impl FnOnce(&mut SadSnapshot, &mut EspTotals)) {
        let mut retired = self.lock();
        let mut next = SadSnapshot::clone(&self.current.load());
        f(&mut next, &mut retired);
        self.current.store(Arc::new(next));
    }
}

/// Adds the counters of every SA of `s` to `t`.
fn add_live(s: &SadSnapshot, t: &mut EspTotals) {
    for sa in s.inbound.iter().flat_map(|m| m.values()) {
        t.add_inbound(sa);
    }
    for sa in s.outbound.iter().flat_map(|m| m.values()) {
        t.add_outbound(sa);
    }
}

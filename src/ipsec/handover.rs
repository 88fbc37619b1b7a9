//! The SA database as plain data, for the hand-over snapshot of `ipsec-server upgrade`: every
//! inbound and outbound SA with its keys, the outbound sequence numbers, the replay windows
//! and the counters, and the running totals of the SAs already gone.
//!
//! Invariants:
//! - no outbound sequence number is ever sent twice: [`Sad::export`] records each outbound
//!   SA's last number plus a reserved margin ([`SEQ_MARGIN`]), so a packet the old process
//!   sealed after the export (a worker that had not quiesced yet) still lies below what the
//!   new process sends next;
//! - a replay window carries over word for word ([`ReplayWindow::export`]): a packet the old
//!   process accepted is refused by the new one;
//! - [`Sad::import`] checks what it is given (known algorithms, key lengths, IPv4 outer
//!   addresses, unique SPIs, a bounded count) and builds nothing on a failure.
//!
//! The types derive serde but not `Debug`: they hold keys (serialized only through
//! `crate::secret::handover`, into the hand-over socket).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::esp::{InboundSa, OutboundSa, SaCounters};
use super::replay::{ReplayState, ReplayWindow};
use super::sad::SadSnapshot;
use super::{ChildSaSpec, DirectionTotals, EspTotals, Ipv4Range, Role, Sad};
use crate::crypto::{EncrAlg, IntegAlg};
use crate::secret::SecretBytes;

/// Sequence numbers reserved above each outbound SA's last one at export: more than a
/// worker seals between the export and its quiesce (a few batches of 64), far less than
/// the 2^31 left after the rekey threshold ([`super::REKEY_AT_SEQ`]).
pub const SEQ_MARGIN: u64 = 1 << 16;

/// Why [`Sad::import`] refused a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("more SAs than the limit ({0})")]
    TooMany(usize),
    #[error("SA {0:08x}: {1}")]
    Sa(u32, String),
    #[error("inbound SPI {0:08x} twice")]
    DuplicateSpi(u32),
}

/// The whole SA database.
#[derive(Serialize, Deserialize, Default)]
pub struct SadState {
    pub inbound: Vec<InboundState>,
    pub outbound: Vec<OutboundState>,
    /// Inbound SPI → the client's virtual IP (which outbound SA goes with it).
    pub pairs: Vec<(u32, Ipv4Addr)>,
    /// The counters of the SAs deleted before the export ([`Sad::totals`]).
    pub retired: [DirectionState; 2],
}

/// One direction's algorithms and keys.
#[derive(Serialize, Deserialize)]
pub struct KeyState {
    #[serde(with = "crate::crypto::handover::encr")]
    pub encr: EncrAlg,
    #[serde(with = "crate::crypto::handover::integ")]
    pub integ: IntegAlg,
    #[serde(with = "crate::secret::handover")]
    pub encr_key: SecretBytes,
    #[serde(with = "crate::secret::handover")]
    pub integ_key: SecretBytes,
}

/// An SA's counters: packets, bytes, dropped, dummies, outside the selectors.
#[derive(Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct CounterState([u64; 5]);

#[derive(Serialize, Deserialize)]
pub struct InboundState {
    pub spi: u32,
    pub keys: KeyState,
    pub replay: ReplayState,
    pub client_vip: Ipv4Addr,
    pub local_ts: Vec<Ipv4Range>,
    /// [`Role::Client`] (the `client` command's data plane).
    pub client_role: bool,
    pub counters: CounterState,
}

#[derive(Serialize, Deserialize)]
pub struct OutboundState {
    pub spi: u32,
    pub inbound_spi: u32,
    /// The client's virtual IP: the key of the outbound table.
    pub client_vip: Ipv4Addr,
    /// The last sequence number the new process may consider used (last sent +
    /// [`SEQ_MARGIN`]).
    pub seq: u64,
    pub sources: Vec<Ipv4Range>,
    pub keys: KeyState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The default outbound SA of [`Role::Client`].
    pub default: bool,
    pub counters: CounterState,
}

/// Running totals of one direction ([`DirectionTotals`]).
#[derive(Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct DirectionState([u64; 4]);

impl From<&DirectionTotals> for DirectionState {
    fn from(t: &DirectionTotals) -> Self {
        Self([t.packets, t.bytes, t.dropped, t.outside_selectors])
    }
}

impl From<DirectionState> for DirectionTotals {
    fn from(s: DirectionState) -> Self {
        let [packets, bytes, dropped, outside_selectors] = s.0;
        Self {
            packets,
            bytes,
            dropped,
            outside_selectors,
        }
    }
}

impl CounterState {
    fn of(c: &SaCounters) -> Self {
        let (packets, bytes, dropped) = c.read();
        Self([packets, bytes, dropped, c.dummies(), c.outside_selectors()])
    }

    fn apply(self, c: &SaCounters) {
        let [packets, bytes, dropped, dummies, outside] = self.0;
        c.packets.store(packets, Ordering::Relaxed);
        c.bytes.store(bytes, Ordering::Relaxed);
        c.dropped.store(dropped, Ordering::Relaxed);
        c.dummies.store(dummies, Ordering::Relaxed);
        c.outside_selectors.store(outside, Ordering::Relaxed);
    }
}

fn key_state(k: &super::esp::SaKeys) -> KeyState {
    KeyState {
        encr: k.encr,
        integ: k.integ,
        encr_key: k.encr_key.clone(),
        integ_key: k.integ_key.clone(),
    }
}

/// A spec whose both directions carry `keys`: what the SA constructors read from it (each
/// takes one direction).
fn spec_with(
    keys: &KeyState,
    inbound_spi: u32,
    outbound_spi: u32,
    client_vip: Ipv4Addr,
    local_ts: Vec<Ipv4Range>,
    local: SocketAddr,
    remote: SocketAddr,
) -> ChildSaSpec {
    ChildSaSpec {
        inbound_spi,
        outbound_spi,
        encr: keys.encr,
        integ: keys.integ,
        inbound_encr_key: keys.encr_key.clone(),
        inbound_integ_key: keys.integ_key.clone(),
        outbound_encr_key: keys.encr_key.clone(),
        outbound_integ_key: keys.integ_key.clone(),
        client_vip,
        local_ts,
        local,
        remote,
        udp_encap: true,
        lifetime: Duration::ZERO,
    }
}

fn role(client: bool) -> Role {
    if client {
        Role::Client
    } else {
        Role::Gateway
    }
}

impl InboundState {
    fn build(&self) -> Result<InboundSa, ImportError> {
        let bad = |why: String| ImportError::Sa(self.spi, why);
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        let spec = spec_with(
            &self.keys,
            self.spi,
            0,
            self.client_vip,
            self.local_ts.clone(),
            unspecified,
            unspecified,
        );
        let mut sa =
            InboundSa::with_role(&spec, role(self.client_role)).map_err(|e| bad(e.to_string()))?;
        sa.replay =
            ReplayWindow::import(&self.replay).ok_or_else(|| bad("replay window".into()))?;
        self.counters.apply(&sa.counters);
        Ok(sa)
    }
}

impl OutboundState {
    fn build(&self) -> Result<OutboundSa, ImportError> {
        let bad = |why: String| ImportError::Sa(self.spi, why);
        let spec = spec_with(
            &self.keys,
            self.inbound_spi,
            self.spi,
            self.client_vip,
            Vec::new(),
            self.local,
            self.remote,
        );
        let mut sa = OutboundSa::new(&spec).map_err(|e| bad(e.to_string()))?;
        sa.sources = self.sources.clone();
        sa.seq.store(self.seq, Ordering::Relaxed);
        self.counters.apply(&sa.counters);
        Ok(sa)
    }
}

impl Sad {
    /// Everything the database holds, each outbound SA's sequence number raised by
    /// [`SEQ_MARGIN`] (and those of the new process start above it).
    pub fn export(&self) -> SadState {
        let snap = self.snapshot();
        let totals = self.retired_totals();
        let mut state = SadState {
            retired: [(&totals.inbound).into(), (&totals.outbound).into()],
            ..SadState::default()
        };
        for sa in snap.inbound_sas() {
            state.inbound.push(InboundState {
                spi: sa.spi,
                keys: key_state(&sa.keys),
                replay: sa.replay.export(),
                client_vip: sa.client_vip,
                local_ts: sa.local_ts.clone(),
                client_role: sa.role == Role::Client,
                counters: CounterState::of(&sa.counters),
            });
        }
        for (vip, sa) in snap.outbound_sas() {
            state.outbound.push(OutboundState {
                spi: sa.spi,
                inbound_spi: sa.inbound_spi,
                client_vip: vip,
                seq: sa.seq().saturating_add(SEQ_MARGIN).min(u64::from(u32::MAX)),
                sources: sa.sources.clone(),
                keys: key_state(&sa.keys),
                local: sa.local,
                remote: sa.remote(),
                default: snap.is_default_outbound(sa),
                counters: CounterState::of(&sa.counters),
            });
        }
        state.pairs = snap.pair_list();
        state.inbound.sort_by_key(|s| s.spi);
        state.outbound.sort_by_key(|s| s.client_vip);
        state.pairs.sort_unstable();
        state
    }

    /// Replaces the (empty) database by `state`, with at most `max_sas` inbound SAs. Nothing
    /// changes unless every SA is valid.
    pub fn import(&self, state: &SadState, max_sas: usize) -> Result<(), ImportError> {
        if state.inbound.len() > max_sas
            || state.outbound.len() > max_sas
            || state.pairs.len() > max_sas
        {
            return Err(ImportError::TooMany(max_sas));
        }
        let mut seen = HashSet::new();
        let mut next = SadSnapshot::default();
        for s in &state.inbound {
            if !seen.insert(s.spi) {
                return Err(ImportError::DuplicateSpi(s.spi));
            }
            next.put_inbound(Arc::new(s.build()?));
        }
        for s in &state.outbound {
            let sa = Arc::new(s.build()?);
            if s.default {
                next.set_default_outbound(sa.clone());
            }
            next.put_outbound(s.client_vip, sa);
        }
        for &(spi, vip) in &state.pairs {
            next.put_pair(spi, vip);
        }
        let retired = EspTotals {
            inbound: state.retired[0].into(),
            outbound: state.retired[1].into(),
        };
        self.replace(next, retired);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipsec::fixtures;
    use crate::ipsec::tests::ipv4_packet;
    use crate::ipsec::EspError;

    #[test]
    fn a_restored_sa_refuses_replays_and_sends_above_the_margin() {
        let (spec, cl) = fixtures::spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha256_128);
        let old = Sad::new();
        old.install(&spec).unwrap();
        let cl_out = OutboundSa::with_role(&cl, Role::Client).unwrap();
        let cl_in = InboundSa::with_role(&cl, Role::Client).unwrap();
        let mut rng = rand::rngs::mock::StepRng::new(1, 1);
        let lan = spec.local_ts[0].start;
        let to_lan = ipv4_packet(spec.client_vip, lan, 32);
        let to_client = ipv4_packet(lan, spec.client_vip, 32);
        let (mut wire, mut out) = (vec![0u8; 2048], vec![0u8; 2048]);

        // The client sends three packets; the old gateway accepts them.
        let mut sent = Vec::new();
        for _ in 0..3 {
            let n = cl_out.seal(&to_lan, &mut wire, &mut rng).unwrap();
            let inb = old.snapshot().inbound(spec.inbound_spi).unwrap().clone();
            inb.open(&wire[..n], &mut out).unwrap();
            sent.push(wire[..n].to_vec());
        }
        // The old gateway sends 5 packets.
        let gw_out = old.snapshot().outbound(spec.client_vip).unwrap().clone();
        for _ in 0..5 {
            gw_out.seal(&to_client, &mut wire, &mut rng).unwrap();
        }

        let bytes = postcard::to_stdvec(&old.export()).unwrap();
        let new = Sad::new();
        new.import(&postcard::from_bytes(&bytes).unwrap(), 16)
            .unwrap();
        let snap = new.snapshot();
        let inb = snap.inbound(spec.inbound_spi).unwrap();
        for p in &sent {
            assert_eq!(
                inb.open(p, &mut out),
                Err(EspError::Replay(crate::ipsec::ReplayError::Duplicate)),
                "a packet the old process accepted is a replay for the new one"
            );
        }
        let (packets, _, dropped) = inb.counters.read();
        assert_eq!(
            (packets, dropped),
            (3, 3),
            "counters carried over and counting"
        );
        // The client's next packet passes.
        let n = cl_out.seal(&to_lan, &mut wire, &mut rng).unwrap();
        assert!(inb.open(&wire[..n], &mut out).is_ok());
        // Outbound: the next sequence number lies above the old one plus the margin.
        let o = snap.outbound(spec.client_vip).unwrap();
        assert_eq!(o.seq(), 5 + SEQ_MARGIN);
        assert_eq!(o.remote(), spec.remote);
        let n = o.seal(&to_client, &mut wire, &mut rng).unwrap();
        let seq = u32::from_be_bytes(wire[4..8].try_into().unwrap());
        assert_eq!(u64::from(seq), 6 + SEQ_MARGIN);
        // ... and the client opens it: same keys, same SPI.
        assert!(cl_in.open(&wire[..n], &mut out).is_ok());
        assert_eq!(new.totals().inbound.packets, 4);
        assert_eq!(new.totals().outbound.packets, 6);
        // The pair is known: deleting the inbound SPI takes the outbound SA with it.
        new.remove(spec.inbound_spi);
        assert!(new.snapshot().outbound(spec.client_vip).is_none());
    }

    #[test]
    fn invalid_states_are_refused_and_change_nothing() {
        let (spec, _) = fixtures::spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha256_128);
        let old = Sad::new();
        old.install(&spec).unwrap();
        let new = Sad::new();
        assert_eq!(new.import(&old.export(), 0), Err(ImportError::TooMany(0)));
        let mut bad = old.export();
        bad.inbound[0].keys.encr_key = SecretBytes::from_slice(b"short");
        assert!(matches!(new.import(&bad, 16), Err(ImportError::Sa(..))));
        let mut twice = old.export();
        let again = old.export().inbound.pop().unwrap();
        twice.inbound.push(again);
        assert_eq!(
            new.import(&twice, 16),
            Err(ImportError::DuplicateSpi(spec.inbound_spi))
        );
        assert!(new.snapshot().is_empty());
    }
}

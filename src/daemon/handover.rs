//! The hand-over snapshot of `ipsec-server upgrade` (issue 18): everything a new process
//! needs to take over a running stack without dropping a tunnel — the responder's state
//! ([`crate::ike::snapshot`]), the SA database ([`crate::ipsec::handover`]) and what the
//! stack needs to be rebuilt from the handed-over file descriptors instead of creating the
//! TUN device, routes and nftables tables again ([`StackState`]).
//!
//! Format: a 2-byte big-endian version, then the snapshot in postcard (serde, compact, not
//! self-describing). The version rule: [`VERSION`] is raised whenever the layout of any type
//! below changes (a field added, removed or reordered, an enum variant added), and the
//! types of every older version stay in the code, frozen, with a conversion to the current
//! ones, so a newer binary reads what an older one hands it ([`decode`]); an unknown
//! version, a truncated or oversized snapshot, trailing bytes are refused with
//! [`HandoverError`] (the old process then keeps serving). `tests::a_stored_vN_sample_is_read`
//! holds a snapshot of each version as bytes: it fails the day one stops being readable.
//!
//! Secrets: the snapshot holds every key. It is written only into the hand-over socket,
//! never to a file or a log; none of its types implements `Debug`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ike::snapshot::ResponderState;
use crate::ipsec::handover::SadState;

/// The version [`encode`] writes.
pub const VERSION: u16 = 2;

/// The largest snapshot read: far above 10,000 clients (about 2 KiB each with their cached
/// response), far below what would hurt the new process.
pub const MAX_SNAPSHOT: usize = 64 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandoverError {
    #[error("snapshot version {version} is unknown to this binary (it reads up to {newest})")]
    UnknownVersion { version: u16, newest: u16 },
    #[error("snapshot of {0} octets: more than {MAX_SNAPSHOT}")]
    TooLarge(usize),
    #[error("malformed snapshot: {0}")]
    Malformed(String),
}

/// Version 2 (the current one): version 1 and the daemon's listeners.
#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    pub responder: ResponderState,
    pub sad: SadState,
    pub stack: StackState,
    /// Cluster mode (issue 17): the node's etcd lease, which the new process keeps alive
    /// instead of registering again. `None` outside cluster mode.
    pub cluster: Option<ClusterLease>,
    /// The listeners whose descriptors follow the stack's, in this order.
    pub listeners: Vec<Listener>,
}

/// A listening socket of the daemon (not of a stack) handed over after the stack's sockets.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The control socket (Unix stream).
    Control,
    /// `[api]`'s TCP listener.
    Api,
    /// `[metrics]`'s TCP listener.
    Metrics,
}

/// Version 1, frozen: what a v1 daemon hands over. It passed no listener (a new process
/// reading it binds its own).
mod v1 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct Snapshot {
        pub responder: ResponderState,
        pub sad: SadState,
        pub stack: StackState,
        pub cluster: Option<ClusterLease>,
    }

    impl From<Snapshot> for super::Snapshot {
        fn from(s: Snapshot) -> Self {
            super::Snapshot {
                responder: s.responder,
                sad: s.sad,
                stack: s.stack,
                cluster: s.cluster,
                listeners: Vec::new(),
            }
        }
    }
}

/// The etcd lease of a cluster node (see [`Snapshot::cluster`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ClusterLease {
    pub lease_id: i64,
    /// Milliseconds of its TTL left at the capture instant.
    pub ttl_left_ms: u64,
}

/// What the running stack is made of, so the new process rebuilds it from the handed-over
/// file descriptors (in this order: a UDP 500 socket per listen address, then per worker a
/// UDP 4500 socket per listen address; the TUN device is kept by attaching new queues to
/// it, `upgrade.rs`) and knows what to undo at its own orderly stop.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StackState {
    pub tun_name: String,
    pub workers: u32,
    pub listen: Vec<IpAddr>,
    /// The host changes `OsState` made: routes (network, device), the previous
    /// `ip_forward` (if it was set), masquerade and MSS clamp tables.
    pub routes: Vec<(ipnet::Ipv4Net, String)>,
    pub previous_forward: Option<bool>,
    pub masquerade: bool,
    pub clamp: bool,
}

/// The snapshot with its version, for the hand-over socket only.
pub fn encode(s: &Snapshot) -> Result<Vec<u8>, HandoverError> {
    let out = VERSION.to_be_bytes().to_vec();
    postcard::to_extend(s, out).map_err(|e| HandoverError::Malformed(e.to_string()))
}

/// Reads a snapshot of this or an older version.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, HandoverError> {
    decode_up_to(bytes, VERSION)
}

/// [`decode`] reading versions up to `newest` (at most [`VERSION`]) only, as an older binary
/// would (the upgrade's test hook, `upgrade::SNAPSHOT_VERSION_ENV`).
pub fn decode_up_to(bytes: &[u8], newest: u16) -> Result<Snapshot, HandoverError> {
    if bytes.len() > MAX_SNAPSHOT {
        return Err(HandoverError::TooLarge(bytes.len()));
    }
    let Some((version, body)) = bytes.split_first_chunk::<2>() else {
        return Err(HandoverError::Malformed("no version".into()));
    };
    let newest = newest.min(VERSION);
    match u16::from_be_bytes(*version) {
        v @ 1..=2 if v <= newest => match v {
            1 => take_all::<v1::Snapshot>(body).map(Snapshot::from),
            _ => take_all::<Snapshot>(body),
        },
        version => Err(HandoverError::UnknownVersion { version, newest }),
    }
}

/// One `T` in postcard, and nothing after it.
fn take_all<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, HandoverError> {
    let (s, rest) = postcard::take_from_bytes::<T>(body)
        .map_err(|e| HandoverError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(HandoverError::Malformed(format!(
            "{} octets after the snapshot",
            rest.len()
        )));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Instant;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::ike::initiator::Initiator;
    use crate::ike::{fixtures, Action, Responder};
    use crate::ipsec::Sad;

    const GW500: &str = "192.0.2.1:500";
    const GW4500: &str = "192.0.2.1:4500";

    /// A gateway with one client connected (the fixtures' configuration, a seeded RNG):
    /// the responder, its SAD, and the capture instant.
    fn one_client() -> (Responder, Sad, Instant) {
        let mut rng = StdRng::seed_from_u64(18);
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut r = Responder::new(Arc::new(fixtures::responder_config()));
        let sad = Sad::new();
        let client: SocketAddr = "198.51.100.7:500".parse().unwrap();
        let cfg = fixtures::initiator_config(client, GW500.parse().unwrap());
        let (mut ini, mut req) = Initiator::start(cfg, &mut rng).unwrap();
        let (mut local, mut remote) = (GW500.parse().unwrap(), client);
        for _ in 0..2 {
            let actions = r.handle(now, &mut rng, &req, local, remote);
            let mut answer = None;
            for a in actions {
                match a {
                    Action::Send { bytes, .. } => answer = Some(bytes),
                    Action::InstallChild(spec) => sad.install(&spec).unwrap(),
                    _ => {}
                }
            }
            match ini.handle(&mut rng, &answer.unwrap()).unwrap() {
                Some(next) => req = next,
                None => break,
            }
            (local, remote) = (
                GW4500.parse().unwrap(),
                "198.51.100.7:4500".parse().unwrap(),
            );
        }
        (r, sad, now)
    }

    fn snapshot_of(r: &Responder, sad: &Sad, now: Instant) -> Snapshot {
        Snapshot {
            responder: r.snapshot(now),
            sad: sad.export(),
            stack: StackState {
                tun_name: "ipsec0".into(),
                workers: 2,
                listen: vec!["192.0.2.1".parse().unwrap()],
                routes: vec![("10.0.0.0/24".parse().unwrap(), "ipsec0".into())],
                previous_forward: Some(false),
                masquerade: true,
                clamp: true,
            },
            cluster: Some(ClusterLease {
                lease_id: 0x1234,
                ttl_left_ms: 9000,
            }),
            listeners: vec![Listener::Control, Listener::Api],
        }
    }

    /// `handover-v1.bin` was written by `encode(&snapshot_of(one_client()))` when version 1
    /// was made (keys of the fixtures' test PSK, nothing else). Never regenerate it: it is
    /// what a v1 daemon hands over, and every later binary must read it.
    #[test]
    fn a_stored_v1_sample_is_read() {
        let sample = include_bytes!("handover-v1.bin");
        assert_eq!(&sample[..2], &1u16.to_be_bytes());
        let s = decode(sample).unwrap();
        // v1 handed over no listener.
        assert!(s.listeners.is_empty());
        assert_sample(s);
    }

    /// `handover-v2.bin`: as the v1 sample, written by version 2 (which added the
    /// listeners). Never regenerate it either.
    #[test]
    fn a_stored_v2_sample_is_read() {
        let sample = include_bytes!("handover-v2.bin");
        assert_eq!(&sample[..2], &2u16.to_be_bytes());
        let s = decode(sample).unwrap();
        assert_eq!(s.listeners, [Listener::Control, Listener::Api]);
        assert_sample(s);
    }

    /// What both samples hold: one client of the fixtures' gateway.
    fn assert_sample(s: Snapshot) {
        assert_eq!(s.stack.tun_name, "ipsec0");
        assert_eq!(s.stack.workers, 2);
        assert_eq!(s.stack.previous_forward, Some(false));
        assert_eq!(
            s.cluster,
            Some(ClusterLease {
                lease_id: 0x1234,
                ttl_left_ms: 9000
            })
        );
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let cfg = Arc::new(fixtures::responder_config());
        let r = Responder::restore(cfg, &s.responder, now).unwrap();
        let sas = r.sas(now);
        assert_eq!(sas.len(), 1);
        assert_eq!(sas[0].identity, "client1.example");
        assert_eq!(sas[0].vip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(sas[0].remote, "198.51.100.7:4500".parse().unwrap());
        let sad = Sad::new();
        sad.import(&s.sad, 16).unwrap();
        let child = &sas[0].children[0];
        let snap = sad.snapshot();
        assert!(snap.inbound(child.spi_in).is_some());
        assert_eq!(
            snap.outbound("10.0.0.1".parse().unwrap()).map(|o| o.spi),
            Some(child.spi_out)
        );
    }

    #[test]
    fn a_snapshot_round_trips_and_anything_else_is_refused() {
        let (r, sad, now) = one_client();
        let bytes = encode(&snapshot_of(&r, &sad, now)).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.responder.sas.len(), 1);
        assert_eq!(back.sad.inbound.len(), 1);
        // The capture's own encoding is the same again (nothing lost on the way).
        assert_eq!(encode(&back).unwrap(), bytes);

        let mut next = bytes.clone();
        next[..2].copy_from_slice(&(VERSION + 1).to_be_bytes());
        assert_eq!(
            decode(&next).err(),
            Some(HandoverError::UnknownVersion {
                version: VERSION + 1,
                newest: VERSION
            })
        );
        // A binary that reads only older versions (the test hook) refuses this one alike.
        assert_eq!(
            decode_up_to(&bytes, VERSION - 1).err(),
            Some(HandoverError::UnknownVersion {
                version: VERSION,
                newest: VERSION - 1
            })
        );
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(HandoverError::Malformed(_))
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(HandoverError::Malformed(_))));
        assert!(matches!(decode(&[1]), Err(HandoverError::Malformed(_))));
        let huge = vec![0u8; MAX_SNAPSHOT + 1];
        assert_eq!(
            decode(&huge).err(),
            Some(HandoverError::TooLarge(MAX_SNAPSHOT + 1))
        );
        // Garbage after a valid version never panics.
        for version in 1..=VERSION {
            for n in [3usize, 50, 500] {
                let mut junk = vec![0xffu8; n];
                junk[..2].copy_from_slice(&version.to_be_bytes());
                assert!(decode(&junk).is_err());
            }
        }
    }
}

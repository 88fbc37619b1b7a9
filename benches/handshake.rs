//! Full responder handshake in memory: IKE_SA_INIT + IKE_AUTH (PSK, virtual IP, one Child SA)
//! through `Responder::handle`, for DH groups 2 and 14.
//!
//! Method ("replay"): the initiator's requests are generated OUTSIDE the timed part. For each
//! handshake `i` the responder's RNG is `StdRng::seed_from_u64(i)` and the clock is fixed, so
//! the responder is deterministic: a first, untimed responder runs the whole exchange with the
//! in-crate initiator and records both requests; then a fresh responder, fed the same sequence
//! of requests with the same RNG seeds, is timed. Its answers are byte-identical (checked once
//! before measuring), so the IKE_AUTH request recorded in the first pass verifies against it.
//! The timed part is therefore responder CPU only: parsing, DH key generation + shared secret,
//! key schedule, AUTH, pool lease, Child SA keys and both responses.
//!
//! The `responder` figure is thread CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the
//! machine is shared, and CPU per handshake is the quantity compared with strongSwan. The
//! other figures are criterion's usual wall time.
//!
//! Also measured: `Initiator::start` alone and the DH operations alone.
//!
//! Run: `cargo bench --bench handshake -- --warm-up-time 1 --measurement-time 5`.
// Bench code: the responder's fixed `now` is taken from the clock once.
#![allow(clippy::disallowed_methods)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::thread_cpu;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ipsec_server::crypto::{DhGroup, DhPrivate};
use ipsec_server::ike::initiator::{Initiator, InitiatorConfig};
use ipsec_server::ike::{fixtures, Action, Identity, IkeSuite, Limits, Responder, ResponderConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;

const GW500: &str = "192.0.2.1:500";
const GW4500: &str = "192.0.2.1:4500";
/// Handshakes per responder instance (a /16 pool holds them all).
const CHUNK: u64 = 2000;

/// The fixture responder for group `dh`, sized for `CHUNK` handshakes.
fn responder_config(dh: DhGroup) -> Arc<ResponderConfig> {
    Arc::new(ResponderConfig {
        ike: IkeSuite {
            dh,
            ..fixtures::ike_suite()
        },
        pool: "10.0.0.0/16".parse().unwrap(),
        max_connections: 65000,
        // The benchmark replays handshakes from few addresses, as the load generator does.
        limits: Limits {
            cookie_threshold: 512,
            cookie_threshold_ip: 16,
            block_threshold_ip: 512,
            half_open_max: 65000,
            dh_per_second_cookie: usize::MAX,
            ..Limits::default()
        },
        ..fixtures::responder_config()
    })
}

/// Client `i`: its own address and identity.
fn client(i: u64) -> (SocketAddr, SocketAddr, String) {
    let ip = Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8);
    (
        SocketAddr::new(ip.into(), 500),
        SocketAddr::new(ip.into(), 4500),
        format!("client{i}.example"),
    )
}

fn initiator_config(dh: DhGroup, i: u64) -> InitiatorConfig {
    let (c500, _, id) = client(i);
    InitiatorConfig {
        ike: IkeSuite {
            dh,
            ..fixtures::ike_suite()
        },
        id: Identity::Fqdn(id),
        ..fixtures::initiator_config(c500, GW500.parse().unwrap())
    }
}

fn first_send(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Send { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .expect("responder answered")
}

/// The recorded requests of one handshake and the responder's answers to them.
struct Recorded {
    init: Vec<u8>,
    auth: Vec<u8>,
    init_resp: Vec<u8>,
    auth_resp: Vec<u8>,
}

/// Runs `n` complete handshakes (client indices `first..first+n`) against a fresh responder,
/// recording everything. Untimed.
fn record(dh: DhGroup, now: Instant, first: u64, n: u64) -> Vec<Recorded> {
    let mut responder = Responder::new(responder_config(dh));
    let (gw500, gw4500): (SocketAddr, SocketAddr) =
        (GW500.parse().unwrap(), GW4500.parse().unwrap());
    let mut irng = StdRng::seed_from_u64(first.wrapping_mul(7919) + 1);
    (first..first + n)
        .map(|i| {
            let (c500, c4500, _) = client(i);
            let mut rrng = StdRng::seed_from_u64(i);
            let (mut ini, init) =
                Initiator::start(initiator_config(dh, i), &mut irng).expect("IKE_SA_INIT");
            let init_resp = first_send(&responder.handle(now, &mut rrng, &init, gw500, c500));
            let auth = ini
                .handle(&mut irng, &init_resp)
                .expect("IKE_SA_INIT response")
                .expect("IKE_AUTH request");
            let auth_resp = first_send(&responder.handle(now, &mut rrng, &auth, gw4500, c4500));
            assert!(ini
                .handle(&mut irng, &auth_resp)
                .expect("IKE_AUTH")
                .is_none());
            assert!(ini.is_established() && ini.child().is_some());
            Recorded {
                init,
                auth,
                init_resp,
                auth_resp,
            }
        })
        .collect()
}

/// Replays recorded handshakes into a fresh responder; returns the thread CPU time spent in
/// `handle`.
fn replay(dh: DhGroup, now: Instant, first: u64, recs: &[Recorded], check: bool) -> Duration {
    let mut responder = Responder::new(responder_config(dh));
    let (gw500, gw4500): (SocketAddr, SocketAddr) =
        (GW500.parse().unwrap(), GW4500.parse().unwrap());
    let start = thread_cpu();
    for (k, rec) in recs.iter().enumerate() {
        let i = first + k as u64;
        let (c500, c4500, _) = client(i);
        let mut rrng = StdRng::seed_from_u64(i);
        let a = responder.handle(now, &mut rrng, black_box(&rec.init), gw500, c500);
        let b = responder.handle(now, &mut rrng, black_box(&rec.auth), gw4500, c4500);
        if check {
            assert_eq!(first_send(&a), rec.init_resp, "deterministic IKE_SA_INIT");
            assert_eq!(first_send(&b), rec.auth_resp, "deterministic IKE_AUTH");
            assert!(b.iter().any(|x| matches!(x, Action::InstallChild(_))));
        }
        black_box((a, b));
    }
    let elapsed = thread_cpu() - start;
    if check {
        assert_eq!(responder.online_clients(), recs.len());
    }
    elapsed
}

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.sample_size(20);
    for (name, dh) in [
        ("group2", DhGroup::Modp1024),
        ("group14", DhGroup::Modp2048),
    ] {
        let now = Instant::now();
        // Determinism check, once.
        let recs = record(dh, now, 0, 20);
        replay(dh, now, 0, &recs, true);

        group.bench_function(format!("{name}/responder-cpu"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(CHUNK);
                    let recs = record(dh, now, 0, n);
                    total += replay(dh, now, 0, &recs, false);
                    done += n;
                }
                total
            })
        });

        // For comparison: the initiator's first step (DH key generation + IKE_SA_INIT).
        let mut irng = StdRng::seed_from_u64(1);
        group.bench_function(format!("{name}/initiator-start"), |b| {
            b.iter(|| black_box(Initiator::start(initiator_config(dh, 0), &mut irng)))
        });

        let mut rng = StdRng::seed_from_u64(3);
        let peer = DhPrivate::generate(dh, &mut rng);
        group.bench_function(format!("{name}/dh-keygen"), |b| {
            b.iter(|| black_box(DhPrivate::generate(dh, &mut rng)))
        });
        let mine = DhPrivate::generate(dh, &mut rng);
        group.bench_function(format!("{name}/dh-shared"), |b| {
            b.iter(|| black_box(mine.shared_secret(black_box(peer.public_value())).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);

//! ESP data-plane benchmarks: `OutboundSa::seal` and `InboundSa::open` per suite and packet
//! size, next to the crypto-only bound (CBC encrypt + HMAC over the same bytes with the
//! crypto layer's `Cipher`/`Integ`) so the ESP framing overhead is visible.
//!
//! Coverage: AES-128-CBC/HMAC-SHA1-96 (the default) and AES-256-CBC/HMAC-SHA2-256-128 at
//! 64/576/1400/8192 bytes; every ENCR × INTEG combination at 1400 bytes.
//!
//! Run: `cargo bench --bench esp -- --warm-up-time 1 --measurement-time 3`.
// Bench code: one timing loop measures wall time with the clock.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

mod common;

use common::cpu_iters;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipsec_server::crypto::{Cipher, EncrAlg, Integ, IntegAlg, PAR_BLOCKS};
use ipsec_server::ipsec::fixtures::spec_pair;
use ipsec_server::ipsec::{ChildSaSpec, EspError, InboundSa, OutboundSa, Role};
use ipsec_server::wire::{write_ipv4_header, IPPROTO_UDP};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Inner packet sizes (bytes) from docs/DESIGN.md §5.
const SIZES: [usize; 4] = [64, 576, 1400, 8192];

const ENCRS: [(&str, EncrAlg); 5] = [
    ("aes128", EncrAlg::AesCbc128),
    ("aes192", EncrAlg::AesCbc192),
    ("aes256", EncrAlg::AesCbc256),
    ("3des", EncrAlg::TripleDesCbc),
    ("des", EncrAlg::DesCbc),
];
const INTEGS: [(&str, IntegAlg); 5] = [
    ("sha1", IntegAlg::HmacSha1_96),
    ("sha256", IntegAlg::HmacSha256_128),
    ("sha384", IntegAlg::HmacSha384_192),
    ("sha512", IntegAlg::HmacSha512_256),
    ("md5", IntegAlg::HmacMd5_96),
];

/// An IPv4/UDP packet of `total` bytes from `src` to `dst`.
fn inner_packet(total: usize, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0x5au8; total];
    write_ipv4_header(&mut p, total as u16, IPPROTO_UDP, src.into(), dst.into())
        .expect("room for the header");
    p
}

/// Benchmarks seal, open and the crypto-only bound for one suite and size.
fn bench_suite(
    c: &mut Criterion,
    group_name: &str,
    name: &str,
    encr: EncrAlg,
    integ: IntegAlg,
    size: usize,
) {
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Bytes(size as u64));
    let (gw, client) = spec_pair(encr, integ);
    let out_sa = OutboundSa::new(&gw).expect("gateway SA");
    let client_out = OutboundSa::with_role(&client, Role::Client).expect("client SA");
    let in_sa = InboundSa::new(&gw).expect("gateway inbound SA");
    let (vip, lan) = ([10, 0, 0, 5], [192, 168, 0, 10]);
    // Gateway → client (from inside LocalSubnet: the outbound selector check passes), and
    // client → gateway.
    let inner = inner_packet(size, lan, vip);
    let from_client = inner_packet(size, vip, lan);
    let mut rng = StdRng::seed_from_u64(1);
    let mut sealed = vec![0u8; out_sa.sealed_len(size)];

    group.bench_with_input(
        BenchmarkId::new(format!("{name}/seal"), size),
        &size,
        |b, _| {
            b.iter(|| {
                out_sa
                    .seal(black_box(&inner), black_box(&mut sealed), &mut rng)
                    .expect("seal")
            })
        },
    );

    // The worker's path: a run of packets to one SA, framed one by one and then encrypted
    // together (interleaved CBC chains) and signed.
    let mut batch = vec![vec![0u8; out_sa.sealed_len(size)]; PAR_BLOCKS];
    group.throughput(Throughput::Bytes((size * PAR_BLOCKS) as u64));
    group.bench_with_input(
        BenchmarkId::new(format!("{name}/seal-x{PAR_BLOCKS}"), size),
        &size,
        // Thread CPU time, as the crypto bound below (issue 15 asks the batched seal in it).
        |b, _| {
            b.iter_custom(|iters| {
                cpu_iters(iters, || {
                    for p in batch.iter_mut() {
                        out_sa
                            .seal_prepare(black_box(&inner), p, &mut rng)
                            .expect("prepare");
                    }
                    out_sa
                        .seal_finish(batch.iter_mut().map(|p| p.as_mut_slice()))
                        .expect("finish");
                })
            })
        },
    );
    group.throughput(Throughput::Bytes(size as u64));

    // Crypto-only bound: CBC over the padded payload + HMAC over header|IV|ciphertext, the
    // same bytes seal processes, without framing, padding or sequence numbers.
    let cipher = Cipher::new(encr, gw.outbound_encr_key.expose()).expect("key");
    let mac = Integ::new(integ, gw.outbound_integ_key.expose()).expect("key");
    let (iv_len, icv_len) = (encr.iv_len(), integ.icv_len());
    let body_len = sealed.len() - 8 - iv_len - icv_len;
    let iv = vec![0x24u8; iv_len];
    let mut buf = vec![0xa5u8; sealed.len()];
    group.bench_with_input(
        BenchmarkId::new(format!("{name}/crypto-bound"), size),
        &size,
        |b, _| {
            b.iter_custom(|iters| {
                cpu_iters(iters, || {
                    let (signed, icv) = buf.split_at_mut(8 + iv_len + body_len);
                    signed[8..8 + iv_len].copy_from_slice(black_box(&iv));
                    cipher.encrypt(&mut signed[8..]).expect("aligned");
                    mac.sign(signed, black_box(icv));
                })
            })
        },
    );

    // Open: replay protection refuses a packet twice, so pre-seal a ring of packets with the
    // client's SA and rebuild the inbound SA when the ring is used up (outside the timing).
    const RING: usize = 4096;
    let packets: Vec<Vec<u8>> = (0..RING)
        .map(|_| {
            let mut p = vec![0u8; client_out.sealed_len(size)];
            let n = client_out
                .seal(&from_client, &mut p, &mut rng)
                .expect("seal");
            p.truncate(n);
            p
        })
        .collect();
    let mut plain = vec![0u8; sealed.len()];
    group.bench_with_input(
        BenchmarkId::new(format!("{name}/open"), size),
        &size,
        |b, _| {
            b.iter_custom(|iters| {
                on_ring(iters, &packets, 1, &gw, |sa, p| {
                    black_box(sa.open(black_box(&p[0]), &mut plain).expect("open"));
                })
            })
        },
    );

    // The worker's receive path: runs of PAR_BLOCKS packets of one SA opened together (the
    // ICVs checked at once, `InboundSa::open_many`); per run, so against 8 × `open`.
    let mut bufs = vec![vec![0u8; sealed.len()]; PAR_BLOCKS];
    let mut results = [Err(EspError::Truncated); PAR_BLOCKS];
    group.throughput(Throughput::Bytes((size * PAR_BLOCKS) as u64));
    group.bench_with_input(
        BenchmarkId::new(format!("{name}/open-x{PAR_BLOCKS}"), size),
        &size,
        |b, _| {
            b.iter_custom(|iters| {
                on_ring(iters, &packets, PAR_BLOCKS, &gw, |sa, run| {
                    let mut refs: [&[u8]; PAR_BLOCKS] = [&[]; PAR_BLOCKS];
                    for (r, p) in refs.iter_mut().zip(run) {
                        *r = p.as_slice();
                    }
                    let mut outs: [&mut [u8]; PAR_BLOCKS] = Default::default();
                    for (o, b) in outs.iter_mut().zip(bufs.iter_mut()) {
                        *o = b.as_mut_slice();
                    }
                    sa.open_many(black_box(&refs), &mut outs, &mut results);
                    assert!(results.iter().all(Result::is_ok), "every packet opens");
                })
            })
        },
    );
    group.throughput(Throughput::Bytes(size as u64));
    drop(in_sa);
    group.finish();
}

/// Wall time of `iters` steps, each opening the next `per_step` packets of the pre-sealed
/// `ring` with `step`. Replay protection refuses a packet twice, so the inbound SA of `spec`
/// is rebuilt (outside the timing) whenever the ring is used up.
fn on_ring(
    iters: u64,
    ring: &[Vec<u8>],
    per_step: usize,
    spec: &ChildSaSpec,
    mut step: impl FnMut(&InboundSa, &[Vec<u8>]),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0u64;
    let steps = (ring.len() / per_step) as u64;
    while done < iters {
        let sa = InboundSa::new(spec).expect("inbound SA");
        let n = (iters - done).min(steps) as usize;
        let start = std::time::Instant::now();
        for chunk in ring.chunks(per_step).take(n) {
            step(&sa, chunk);
        }
        total += start.elapsed();
        done += n as u64;
    }
    total
}

fn esp_sizes(c: &mut Criterion) {
    for (name, encr, integ) in [
        ("aes128-sha1", EncrAlg::AesCbc128, IntegAlg::HmacSha1_96),
        (
            "aes256-sha256",
            EncrAlg::AesCbc256,
            IntegAlg::HmacSha256_128,
        ),
    ] {
        for size in SIZES {
            bench_suite(c, "esp", name, encr, integ, size);
        }
    }
}

fn esp_all_suites(c: &mut Criterion) {
    for (ename, encr) in ENCRS {
        for (iname, integ) in INTEGS {
            bench_suite(
                c,
                "esp-suites",
                &format!("{ename}-{iname}"),
                encr,
                integ,
                1400,
            );
        }
    }
}

criterion_group!(benches, esp_sizes, esp_all_suites);
criterion_main!(benches);

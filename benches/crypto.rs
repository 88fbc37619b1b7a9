//! Crypto-layer benchmarks: the per-packet transforms (CBC, truncated HMAC; HMAC-SHA1 also
//! eight at a time, one by one against the multi-buffer `Integ::sign_many`) over ESP-like
//! sizes, and one responder-side DH (key generation + shared secret) per MODP group.
//!
//! Run: `cargo bench --bench crypto -- --warm-up-time 1 --measurement-time 3`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipsec_server::crypto::{Cipher, DhGroup, DhPrivate, EncrAlg, Integ, IntegAlg, PAR_BLOCKS};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Packet sizes (bytes) from docs/DESIGN.md §5.
const SIZES: [usize; 4] = [64, 576, 1400, 8192];

/// CBC needs whole blocks: each size rounded down to the AES block (1400 becomes 1392, the
/// ciphertext of a padded ESP payload of that size).
fn cbc_len(size: usize) -> usize {
    size / 16 * 16
}

fn cbc(c: &mut Criterion) {
    let mut group = c.benchmark_group("cbc");
    for (name, alg) in [
        ("aes128", EncrAlg::AesCbc128),
        ("aes256", EncrAlg::AesCbc256),
    ] {
        let cipher = Cipher::new(alg, &vec![0x42; alg.key_len()]).expect("key length");
        let iv = [0x24u8; 16];
        for size in SIZES.map(cbc_len) {
            // IV || data, the layout `encrypt` works on.
            let mut buf = [&iv[..], &vec![0xa5u8; size]].concat();
            let mut out = vec![0u8; size];
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{name}-encrypt"), size),
                &size,
                |b, _| b.iter(|| cipher.encrypt(black_box(&mut buf)).expect("aligned")),
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{name}-decrypt"), size),
                &size,
                |b, _| {
                    b.iter(|| {
                        cipher
                            .decrypt(black_box(&iv), black_box(&buf[16..]), &mut out)
                            .expect("aligned")
                    })
                },
            );
            // PAR_BLOCKS messages at once, their CBC chains interleaved.
            let mut many = vec![buf.clone(); PAR_BLOCKS];
            group.throughput(Throughput::Bytes((size * PAR_BLOCKS) as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{name}-encrypt-x{PAR_BLOCKS}"), size),
                &size,
                |b, _| {
                    b.iter(|| {
                        let mut items: [&mut [u8]; PAR_BLOCKS] = Default::default();
                        for (item, m) in items.iter_mut().zip(many.iter_mut()) {
                            *item = m.as_mut_slice();
                        }
                        cipher.encrypt_many(black_box(&mut items)).expect("aligned")
                    })
                },
            );
        }
    }
    group.finish();
}

fn hmac(c: &mut Criterion) {
    let mut group = c.benchmark_group("hmac");
    for (name, alg) in [
        ("sha1-96", IntegAlg::HmacSha1_96),
        ("sha256-128", IntegAlg::HmacSha256_128),
    ] {
        let integ = Integ::new(alg, &vec![0x17; alg.key_len()]).expect("key length");
        for size in SIZES {
            let data = vec![0x3cu8; size];
            let mut icv = [0u8; 32];
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{name}-sign"), size),
                &size,
                |b, _| b.iter(|| integ.sign(black_box(&data), &mut icv)),
            );
        }
    }
    // A run of eight packets (the ESP batch): one `sign` after the other against
    // `sign_many`, which interleaves HMAC-SHA1's chains (src/crypto/sha1_multi.rs).
    let alg = IntegAlg::HmacSha1_96;
    let integ = Integ::new(alg, &[0x17; 20]).expect("key length");
    for size in SIZES {
        let data = vec![0x3cu8; size];
        let mut items = vec![[&data[..], &[0u8; 12]].concat(); PAR_BLOCKS];
        group.throughput(Throughput::Bytes((size * PAR_BLOCKS) as u64));
        group.bench_with_input(
            BenchmarkId::new(format!("sha1-96-sign-x{PAR_BLOCKS}"), size),
            &size,
            |b, _| {
                b.iter(|| {
                    for item in items.iter_mut() {
                        let (msg, icv) = item.split_at_mut(size);
                        integ.sign(black_box(msg), icv);
                    }
                })
            },
        );
        // One message alone (a run of one packet): `sign_many` hands it to the `hmac`
        // crate rather than to one lane (src/crypto/integ.rs, `sha1_group`).
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("sha1-96-sign-many-x1", size),
            &size,
            |b, _| b.iter(|| integ.sign_many(black_box(&mut [items[0].as_mut_slice()]))),
        );
        group.throughput(Throughput::Bytes((size * PAR_BLOCKS) as u64));
        group.bench_with_input(
            BenchmarkId::new(format!("sha1-96-sign-many-x{PAR_BLOCKS}"), size),
            &size,
            |b, _| {
                b.iter(|| {
                    let mut refs: [&mut [u8]; PAR_BLOCKS] = Default::default();
                    for (r, item) in refs.iter_mut().zip(items.iter_mut()) {
                        *r = item.as_mut_slice();
                    }
                    integ.sign_many(black_box(&mut refs))
                })
            },
        );
    }
    group.finish();
}

fn dh(c: &mut Criterion) {
    let mut group = c.benchmark_group("dh");
    let mut rng = StdRng::seed_from_u64(1);
    for (name, dh_group) in [
        ("modp1024", DhGroup::Modp1024),
        ("modp2048", DhGroup::Modp2048),
    ] {
        // The peer (initiator) key is fixed; each iteration is the responder's work for one
        // IKE_SA_INIT: generate a key pair, then compute g^ir.
        let peer = DhPrivate::generate(dh_group, &mut rng);
        let peer_public = peer.public_value().to_vec();
        group.bench_function(BenchmarkId::new("keygen+shared", name), |b| {
            b.iter(|| {
                let own = DhPrivate::generate(dh_group, &mut rng);
                own.shared_secret(black_box(&peer_public))
                    .expect("valid peer")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cbc, hmac, dh);
criterion_main!(benches);

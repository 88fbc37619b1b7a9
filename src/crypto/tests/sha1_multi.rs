//! Differential tests: the multi-buffer HMAC-SHA1 against the `hmac`/`sha1` crates, on both
//! kernels, for random keys (shorter than, equal to and longer than a block), random
//! numbers of messages and random, unequal lengths (0..=9000) in one call.

use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::*;

fn reference(key: &[u8], msg: &[u8]) -> [u8; DIGEST] {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn kernels() -> Vec<Kernel> {
    let mut k = vec![Kernel::Portable];
    if Kernel::detect() == Kernel::ShaNi {
        k.push(Kernel::ShaNi);
    }
    k
}

/// Checks one call of `msgs` under `key` on every kernel against the reference.
fn check(key: &[u8], msgs: &[Vec<u8>]) {
    let pads = Sha1Pads::new(key);
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let want: Vec<[u8; DIGEST]> = msgs.iter().map(|m| reference(key, m)).collect();
    for kernel in kernels() {
        let mut got = vec![[0u8; DIGEST]; msgs.len()];
        hmac_sha1_many_with(kernel, &pads, &refs, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "{kernel:?}: message {i} of {} (len {}), key len {}",
                msgs.len(),
                msgs[i].len(),
                key.len()
            );
        }
    }
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

#[test]
fn matches_hmac_crate_on_random_lengths_keys_and_stream_counts() {
    let mut rng = StdRng::seed_from_u64(0x5a1_0015);
    for _ in 0..60 {
        let key_len = match rng.gen_range(0..4) {
            0 => 20,
            1 => 64,
            2 => rng.gen_range(0..=64),
            _ => rng.gen_range(65..=300),
        };
        let key = random_bytes(&mut rng, key_len);
        let streams = rng.gen_range(0..=11);
        let msgs: Vec<Vec<u8>> = (0..streams)
            .map(|_| {
                let len = rng.gen_range(0..=9000);
                random_bytes(&mut rng, len)
            })
            .collect();
        check(&key, &msgs);
    }
}

#[test]
fn matches_hmac_crate_on_batches_of_equal_lengths() {
    // The data plane's usual call: a batch of packets of one length, every lane in a run of
    // whole blocks from the first to the tails.
    let mut rng = StdRng::seed_from_u64(0x5a1_0016);
    for len in [0, 63, 64, 65, 119, 120, 128, 1400, 1432, 9000] {
        for streams in 1..=9 {
            let key = random_bytes(&mut rng, 20);
            let msgs: Vec<Vec<u8>> = (0..streams).map(|_| random_bytes(&mut rng, len)).collect();
            check(&key, &msgs);
        }
    }
}

#[test]
fn matches_hmac_crate_at_every_padding_boundary() {
    // Tails of 0..=64+ bytes around the one/two padding block limit (55/56 bytes), all in
    // one call so the lanes end at different steps.
    let key = [0x0bu8; 20];
    let msgs: Vec<Vec<u8>> = (0..=140).map(|len| vec![(len % 251) as u8; len]).collect();
    check(&key, &msgs);
}

#[test]
fn rfc2202_sha1_vectors() {
    // RFC 2202 §3 test cases 1 and 6 (an 80-byte key: hashed first).
    let pads = Sha1Pads::new(&[0x0b; 20]);
    let long = Sha1Pads::new(&[0xaa; 80]);
    let mut out = [[0u8; DIGEST]; 1];
    hmac_sha1_many(&pads, &[b"Hi There"], &mut out);
    assert_eq!(
        hex::encode(out[0]),
        "b617318655057264e28bc0b6fb378c8ef146be00"
    );
    hmac_sha1_many(
        &long,
        &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        &mut out,
    );
    assert_eq!(
        hex::encode(out[0]),
        "aa4ae5e15272d00e95705637ce8a3b55ed402112"
    );
}

#[test]
fn equal_messages_give_equal_macs_in_every_lane() {
    // Eight identical 1400-byte messages (the ESP batch shape): every lane of the
    // interleaved kernel produces the reference MAC.
    let key = [0x17u8; 20];
    let msg = vec![0x3cu8; 1400];
    check(&key, &vec![msg; 8]);
}

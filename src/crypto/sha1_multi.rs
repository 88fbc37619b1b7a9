//! Multi-buffer HMAC-SHA1 (RFC 2104 over FIPS 180-4 SHA-1): the MACs of several independent
//! messages computed together, their SHA-1 compressions interleaved on the SHA-NI units.
//!
//! Why hand-written: HMAC-SHA1 is the largest per-packet cost of the default ESP suite
//! (about 1.0 µs of a 1.65 µs seal at 1400 bytes, BENCHMARKS.md). One SHA-1 block is a chain
//! of 20 dependent `sha1rnds4` instructions, each waiting for the one before, so a single
//! message leaves the SHA unit idle most of the time; the `sha1` crate (which we use for
//! everything else) hashes one message at a time, and no maintained crate offers
//! multi-buffer SHA-1 (tape-sha256 and purecrypto do SHA-256 only). The data plane seals
//! packets in runs (ESP `seal_finish`), so their chains are independent and can advance
//! together, as the CBC code interleaves AES chains (`Cipher::encrypt_many`). Measured in
//! `benches/crypto.rs` (`hmac/sha1-96-sign-many-x8` against `hmac/sha1-96-sign-x8`: about
//! 2.2× at 1,400 bytes, BENCHMARKS.md "Signing a batch").
//!
//! How: a message's HMAC is a stream of blocks from precomputed pad states ([`Sha1Pads`]:
//! `K ^ ipad`, `K ^ opad` absorbed once per key): the message's whole blocks, its padded
//! tail (one or two blocks), then the outer block (inner digest, padded). Up to [`LANES`]
//! streams run at once, one per lane; a lane whose stream ends takes the next message, so
//! unequal lengths cost no idle work until the last messages. Each step compresses one block
//! of every busy lane: with SHA-NI (`sha`, `ssse3`, `sse4.1`, detected at run time) in one
//! interleaved kernel of 1, 2 or 4 lanes, else one lane after the other with the `sha1`
//! crate's own compression (`sha1::compress`, which picks its best backend itself).
//!
//! `unsafe` here: only the unaligned 16-byte loads and stores of the kernel and the call of
//! the `#[target_feature]` kernel after detection. Everything else is safe code; the
//! differential tests (tests/sha1_multi.rs) and the fuzz target `hmac_multi` compare it with
//! the `hmac`/`sha1` crates.
//!
//! Secrets: [`Sha1Pads`] are wiped on drop; the per-call lane states and inner digests are
//! wiped before returning (the message tails are the caller's own bytes, left as they are).
#![allow(unsafe_code)]

use sha1::{Digest, Sha1};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// SHA-1 block length (FIPS 180-4 §5.1.1).
const BLOCK: usize = 64;
/// SHA-1 digest length.
pub(crate) const DIGEST: usize = 20;
/// Streams in flight at once: enough to cover `sha1rnds4`'s latency; more would spill the
/// 16 XMM registers (a lane holds 7 vectors).
pub(crate) const LANES: usize = 4;

/// SHA-1 initial hash value (FIPS 180-4 §5.3.1).
const H0: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

/// The SHA-1 states after absorbing `K ^ ipad` and `K ^ opad` (RFC 2104 §2), computed once
/// per key. Wiped on drop; `Debug` is not implemented.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Sha1Pads {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl Sha1Pads {
    /// Keys HMAC-SHA1 with a key of any length (RFC 2104 §2: a key longer than a block is
    /// hashed first, a shorter one zero-padded).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            let mut hashed = Sha1::digest(key);
            block[..DIGEST].copy_from_slice(&hashed);
            hashed.as_mut_slice().zeroize();
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut pads = Sha1Pads {
            inner: H0,
            outer: H0,
        };
        let mut padded = [0u8; BLOCK];
        for (state, pad) in [(&mut pads.inner, 0x36u8), (&mut pads.outer, 0x5c)] {
            for (p, k) in padded.iter_mut().zip(block) {
                *p = k ^ pad;
            }
            sha1::compress(state, &[padded.into()]);
        }
        block.zeroize();
        padded.zeroize();
        pads
    }
}

/// Which compression runs the lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Interleaved SHA-NI lanes.
    ShaNi,
    /// One lane after the other with `sha1::compress`.
    Portable,
}

impl Kernel {
    /// The best kernel this CPU runs (the detection is cached by the standard library).
    pub(crate) fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("sha")
                && std::arch::is_x86_feature_detected!("ssse3")
                && std::arch::is_x86_feature_detected!("sse4.1")
            {
                return Kernel::ShaNi;
            }
        }
        Kernel::Portable
    }
}

/// Writes HMAC-SHA1(`msgs[i]`) to `out[i]` for every `i` (the full 20 bytes), with the best
/// kernel of this CPU.
///
/// # Panics
/// If `out` is shorter than `msgs` — a caller bug.
pub(crate) fn hmac_sha1_many(pads: &Sha1Pads, msgs: &[&[u8]], out: &mut [[u8; DIGEST]]) {
    hmac_sha1_many_with(Kernel::detect(), pads, msgs, out);
}

/// One lane: the message it works on and where its block stream stands.
struct Lane<'a> {
    /// Index of the message in `msgs`.
    msg: usize,
    data: &'a [u8],
    /// The running SHA-1 state (inner, then outer hash).
    state: [u32; 5],
    /// Next block of the stream: `0..full` the message's whole blocks, then the padded
    /// tail blocks up to `inner_end`, then the outer block (`outer` set).
    next: usize,
    full: usize,
    inner_end: usize,
    outer: bool,
    /// The padded tail (one or two blocks), then reused for the outer block.
    tail: [u8; 2 * BLOCK],
}

impl<'a> Lane<'a> {
    fn start(msg: usize, data: &'a [u8], pads: &Sha1Pads) -> Self {
        let full = data.len() / BLOCK;
        let rest = &data[full * BLOCK..];
        // 0x80, zeros, then the 64-bit big-endian bit length of ipad block + message
        // (FIPS 180-4 §5.1.1); a second tail block when fewer than 9 bytes are left.
        let tail_len = if rest.len() + 9 <= BLOCK {
            BLOCK
        } else {
            2 * BLOCK
        };
        let mut tail = [0u8; 2 * BLOCK];
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()] = 0x80;
        let bits = (BLOCK as u64 + data.len() as u64).wrapping_mul(8);
        tail[tail_len - 8..tail_len].copy_from_slice(&bits.to_be_bytes());
        Lane {
            msg,
            data,
            state: pads.inner,
            next: 0,
            full,
            inner_end: full + tail_len / BLOCK,
            outer: false,
            tail,
        }
    }

    /// Blocks that can be compressed in one run from here: the whole message blocks left,
    /// else one (a tail block, or the outer block).
    fn run(&self) -> usize {
        if self.next < self.full {
            self.full - self.next
        } else {
            1
        }
    }

    /// The next `count` blocks (`1..=self.run()`).
    fn blocks(&self, count: usize) -> &[u8] {
        debug_assert!((1..=self.run()).contains(&count));
        if self.next < self.full {
            &self.data[self.next * BLOCK..(self.next + count) * BLOCK]
        } else {
            let i = self.next - self.full;
            &self.tail[i * BLOCK..(i + 1) * BLOCK]
        }
    }

    /// After `blocks(count)` were compressed into `state`: moves on; at the end of the inner
    /// hash starts the outer one. Returns the MAC once the outer block is done.
    fn advance(&mut self, count: usize, pads: &Sha1Pads) -> Option<[u8; DIGEST]> {
        if self.outer {
            let mut mac = [0u8; DIGEST];
            digest_into(&self.state, &mut mac);
            return Some(mac);
        }
        self.next += count;
        if self.next == self.inner_end {
            // The outer block: inner digest, 0x80, zeros, bit length of opad block + digest.
            self.tail.fill(0);
            digest_into(&self.state, &mut self.tail[..DIGEST]);
            self.tail[DIGEST] = 0x80;
            self.tail[BLOCK - 8..BLOCK]
                .copy_from_slice(&(((BLOCK + DIGEST) * 8) as u64).to_be_bytes());
            self.full = 0;
            self.next = 0;
            self.outer = true;
            self.state = pads.outer;
        }
        None
    }
}

impl Drop for Lane<'_> {
    fn drop(&mut self) {
        self.state.zeroize();
        // Only the outer block's first bytes held a secret (the inner digest); the rest of
        // the tail is the message's own bytes and padding.
        self.tail[..DIGEST].zeroize();
    }
}

fn digest_into(state: &[u32; 5], out: &mut [u8]) {
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

/// [`hmac_sha1_many`] with a chosen kernel (the differential tests run both). A kernel the
/// CPU lacks is replaced by [`Kernel::Portable`].
pub(crate) fn hmac_sha1_many_with(
    kernel: Kernel,
    pads: &Sha1Pads,
    msgs: &[&[u8]],
    out: &mut [[u8; DIGEST]],
) {
    assert!(out.len() >= msgs.len(), "one output per message");
    let kernel = if kernel == Kernel::ShaNi {
        Kernel::detect()
    } else {
        kernel
    };
    let mut lanes: [Option<Lane<'_>>; LANES] = Default::default();
    let mut queued = msgs.iter().enumerate();
    // The busy lanes' states, packed to the front for the kernel.
    let mut packed = [[0u32; 5]; LANES];
    loop {
        let mut n = 0;
        for slot in lanes.iter_mut() {
            if slot.is_none() {
                *slot = queued.next().map(|(i, data)| Lane::start(i, data, pads));
            }
            if let Some(lane) = slot {
                packed[n] = lane.state;
                n += 1;
            }
        }
        if n == 0 {
            break;
        }
        // As many blocks as every busy lane can take in one run: while all are inside their
        // messages (equal lengths, the usual batch, stay there until the tails), the kernel
        // keeps the states in registers across the whole run.
        let count = lanes.iter().flatten().map(Lane::run).min().unwrap_or(1);
        let mut blocks: [&[u8]; LANES] = [&[]; LANES];
        for (block, lane) in blocks.iter_mut().zip(lanes.iter().flatten()) {
            *block = lane.blocks(count);
        }
        compress(kernel, &mut packed, &mut blocks, n, count);
        for (slot, state) in lanes.iter_mut().filter(|s| s.is_some()).zip(packed.iter()) {
            if let Some(lane) = slot {
                lane.state = *state;
                if let Some(mut mac) = lane.advance(count, pads) {
                    out[lane.msg] = mac;
                    mac.zeroize();
                    *slot = None;
                }
            }
        }
    }
    packed.zeroize();
}

/// Compresses the `count` blocks of `blocks[i]` (exactly `count * BLOCK` bytes) into
/// `states[i]` for `i < n`; the lanes from `n` on are dummies (they hash lane 0's blocks).
fn compress(
    kernel: Kernel,
    states: &mut [[u32; 5]; LANES],
    blocks: &mut [&[u8]; LANES],
    n: usize,
    count: usize,
) {
    let (busy, dummies) = blocks.split_at_mut(n);
    dummies.fill(busy[0]);
    assert!(
        blocks.iter().all(|b| b.len() == count * BLOCK),
        "every lane has its blocks"
    );
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::ShaNi => {
            // SAFETY: `Kernel::ShaNi` is only used after `Kernel::detect` found sha, ssse3
            // and sse4.1 (`hmac_sha1_many_with` re-detects a kernel it is handed); every lane
            // holds `count` blocks (asserted above).
            unsafe {
                match n {
                    1 => shani::compress::<1>(states, blocks, count),
                    2 => shani::compress::<2>(states, blocks, count),
                    // Three lanes run in the four-lane kernel, the fourth on a dummy.
                    _ => shani::compress::<LANES>(states, blocks, count),
                }
            }
        }
        _ => {
            for (state, lane) in states.iter_mut().zip(blocks.iter()).take(n) {
                for block in lane.chunks_exact(BLOCK) {
                    let block: &[u8; BLOCK] = block.try_into().expect("a block");
                    sha1::compress(state, &[(*block).into()]);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod shani {
    use core::arch::x86_64::*;

    /// `count` SHA-1 blocks compressed into each of `N` states, the lanes' rounds
    /// interleaved: group `g` (rounds 4g..4g+3) of every lane is issued before group `g + 1`
    /// of any. The states stay in registers from the first block to the last.
    ///
    /// The schedule (FIPS 180-4 §6.1.2) in groups of four words: `W[g]` for `g >= 4` is
    /// `sha1msg2(sha1msg1(W[g-4], W[g-3]) ^ W[g-2], W[g-1])`; the round input of group
    /// `g >= 1` is `sha1nexte(ABCD before group g-1, W[g])` (E is A rotated by 30).
    ///
    /// # Safety
    /// The CPU must have `sha`, `ssse3` and `sse4.1`; `blocks[l]` must hold at least
    /// `count * 64` bytes for every `l < N`.
    #[target_feature(enable = "sha,ssse3,sse4.1")]
    pub(super) unsafe fn compress<const N: usize>(
        states: &mut [[u32; 5]; super::LANES],
        blocks: &[&[u8]; super::LANES],
        count: usize,
    ) {
        // Reverses the bytes of the whole register: big-endian words, word 0 on top.
        let flip = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
        let mut abcd = [_mm_setzero_si128(); N];
        // E in the top word, as `sha1nexte` leaves it.
        let mut e0 = [_mm_setzero_si128(); N];
        for l in 0..N {
            // SAFETY: an unaligned 16-byte load inside the 20-byte state.
            let s = unsafe { _mm_loadu_si128(states[l].as_ptr().cast()) };
            abcd[l] = _mm_shuffle_epi32(s, 0x1b);
            e0[l] = _mm_set_epi32(states[l][4] as i32, 0, 0, 0);
        }
        for b in 0..count {
            let mut w = [[_mm_setzero_si128(); 4]; N];
            for l in 0..N {
                for (i, word) in w[l].iter_mut().enumerate() {
                    // SAFETY: bytes 64b+16i..64b+16i+16 of a lane of `count` blocks.
                    let m =
                        unsafe { _mm_loadu_si128(blocks[l].as_ptr().add(64 * b + 16 * i).cast()) };
                    *word = _mm_shuffle_epi8(m, flip);
                }
            }
            let abcd_save = abcd;
            let mut prev = abcd;
            for l in 0..N {
                let e = _mm_add_epi32(e0[l], w[l][0]);
                abcd[l] = _mm_sha1rnds4_epu32::<0>(abcd[l], e);
            }
            // Group `$g` (a literal, so that the schedule indices and the round function `$f`
            // are constants and the whole block unrolls into registers).
            macro_rules! group {
                ($g:literal, $f:literal) => {
                    for l in 0..N {
                        let w = &mut w[l];
                        if $g >= 4 {
                            let x = _mm_sha1msg1_epu32(w[$g % 4], w[($g + 1) % 4]);
                            let x = _mm_xor_si128(x, w[($g + 2) % 4]);
                            w[$g % 4] = _mm_sha1msg2_epu32(x, w[($g + 3) % 4]);
                        }
                        let e = _mm_sha1nexte_epu32(prev[l], w[$g % 4]);
                        prev[l] = abcd[l];
                        abcd[l] = _mm_sha1rnds4_epu32::<$f>(abcd[l], e);
                    }
                };
            }
            group!(1, 0);
            group!(2, 0);
            group!(3, 0);
            group!(4, 0);
            group!(5, 1);
            group!(6, 1);
            group!(7, 1);
            group!(8, 1);
            group!(9, 1);
            group!(10, 2);
            group!(11, 2);
            group!(12, 2);
            group!(13, 2);
            group!(14, 2);
            group!(15, 3);
            group!(16, 3);
            group!(17, 3);
            group!(18, 3);
            group!(19, 3);
            for l in 0..N {
                e0[l] = _mm_sha1nexte_epu32(prev[l], e0[l]);
                abcd[l] = _mm_add_epi32(abcd[l], abcd_save[l]);
            }
        }
        for l in 0..N {
            let a = _mm_shuffle_epi32(abcd[l], 0x1b);
            // SAFETY: an unaligned 16-byte store into words 0..4 of the state.
            unsafe { _mm_storeu_si128(states[l].as_mut_ptr().cast(), a) };
            states[l][4] = _mm_extract_epi32::<3>(e0[l]) as u32;
        }
    }
}

#[cfg(test)]
#[path = "tests/sha1_multi.rs"]
mod tests;

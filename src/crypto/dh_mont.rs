//! Montgomery multiplication and fixed-window exponentiation for the MODP groups, on
//! crypto-bigint's limbs but with a fused multiply-and-reduce loop (CIOS, Koç et al. 1996)
//! instead of crypto-bigint 0.5's separate double-width product and reduction, which
//! halves the cost of each multiplication at these sizes.
//!
//! Invariants:
//! - Every function runs the same instructions whatever the (secret) values are: no branch
//!   or index depends on them; the final subtraction and table lookups use masks.
//! - Inputs and outputs are fully reduced Montgomery residues (< p), little-endian words.
//! - The modulus is odd with its top bit set (all RFC 2409/3526/5114 primes), so
//!   intermediate sums stay below 2p.

use crypto_bigint::{Uint, WideWord, Word};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

const WORD_BITS: u32 = Word::BITS;

/// -p^{-1} mod 2^WORD_BITS (Newton iteration; p odd).
pub(super) fn neg_inv(p0: Word) -> Word {
    let mut inv: Word = 1;
    for _ in 0..7 {
        inv = inv.wrapping_mul((2 as Word).wrapping_sub(p0.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

#[inline(always)]
fn mac(a: Word, b: Word, c: Word, carry: Word) -> (Word, Word) {
    let t = (a as WideWord) + (b as WideWord) * (c as WideWord) + (carry as WideWord);
    (t as Word, (t >> WORD_BITS) as Word)
}

/// a * b * R^-1 mod p for a, b < p (R = 2^(L * WORD_BITS)); result < p.
#[inline]
pub(super) fn mont_mul<const L: usize>(
    a: &[Word; L],
    b: &[Word; L],
    p: &[Word; L],
    n0: Word,
) -> [Word; L] {
    let mut t = [0 as Word; L];
    let mut t_hi: Word = 0;
    for &bi in b.iter() {
        // t += a * b[i]
        let mut carry = 0;
        for j in 0..L {
            (t[j], carry) = mac(t[j], a[j], bi, carry);
        }
        let (s, c1) = t_hi.overflowing_add(carry);
        t_hi = s;
        let t_top = c1 as Word;
        // t = (t + m * p) / 2^WORD_BITS
        let m = t[0].wrapping_mul(n0);
        let (_, mut carry) = mac(t[0], m, p[0], 0);
        for j in 1..L {
            (t[j - 1], carry) = mac(t[j], m, p[j], carry);
        }
        let (s, c2) = t_hi.overflowing_add(carry);
        t[L - 1] = s;
        t_hi = t_top + c2 as Word;
    }
    // t < 2p: subtract p once if t ≥ p, selected by mask.
    let mut d = [0 as Word; L];
    let mut borrow: Word = 0;
    for j in 0..L {
        let (x, b1) = t[j].overflowing_sub(p[j]);
        let (x, b2) = x.overflowing_sub(borrow);
        d[j] = x;
        borrow = (b1 | b2) as Word;
    }
    // Keep t only if t_hi == 0 and the subtraction borrowed.
    let keep_t = Choice::from((borrow & (t_hi ^ 1) & 1) as u8);
    for j in 0..L {
        d[j] = Word::conditional_select(&d[j], &t[j], keep_t);
    }
    t.zeroize();
    d
}

/// Precomputed constants of one modulus.
#[derive(Clone, Copy)]
pub(super) struct Mont<const L: usize> {
    pub(super) p: [Word; L],
    pub(super) n0: Word,
    /// R mod p: Montgomery form of 1.
    pub(super) one: [Word; L],
}

impl<const L: usize> Mont<L> {
    /// `one` must be R mod p (crypto-bigint's `DynResidue::one(..).to_montgomery()`).
    pub(super) fn new(p: &Uint<L>, one: &Uint<L>) -> Self {
        Mont {
            p: *p.as_words(),
            n0: neg_inv(p.as_words()[0]),
            one: *one.as_words(),
        }
    }

    #[inline]
    pub(super) fn mul(&self, a: &[Word; L], b: &[Word; L]) -> [Word; L] {
        mont_mul(a, b, &self.p, self.n0)
    }

    /// Leaves Montgomery form: a * R^-1 mod p.
    pub(super) fn retrieve(&self, a: &[Word; L]) -> [Word; L] {
        let mut one = [0 as Word; L];
        one[0] = 1;
        self.mul(a, &one)
    }

    /// base^exponent (Montgomery form in and out) over exactly the low `exponent_bits` bits
    /// of the exponent: fixed 4-bit windows, 4 squarings and one multiplication by a table
    /// entry chosen with a constant-time scan of all 16 entries per window.
    pub(super) fn pow<const E: usize>(
        &self,
        base: &[Word; L],
        exponent: &Uint<E>,
        exponent_bits: usize,
    ) -> [Word; L] {
        let exponent_bits = exponent_bits.min(Uint::<E>::BITS);
        let mut table = [[0 as Word; L]; 16];
        table[0] = self.one;
        table[1] = *base;
        for d in 2..16 {
            table[d] = self.mul(&table[d - 1], base);
        }
        let words = exponent.as_words();
        let windows = exponent_bits.div_ceil(4);
        let mut acc = self.one;
        let mut entry = [0 as Word; L];
        for w in (0..windows).rev() {
            if w + 1 != windows {
                for _ in 0..4 {
                    acc = self.mul(&acc, &acc);
                }
            }
            let bit = w * 4;
            let mut digit = (words[bit / WORD_BITS as usize] >> (bit % WORD_BITS as usize)) & 15;
            let valid = exponent_bits - bit;
            if valid < 4 {
                digit &= (1 << valid) - 1;
            }
            select(&table, digit, &mut entry);
            acc = self.mul(&acc, &entry);
            digit.zeroize();
        }
        table.zeroize();
        entry.zeroize();
        acc
    }
}

/// entry = table[digit], reading every entry (constant time in `digit`).
#[inline]
pub(super) fn select<const L: usize>(table: &[[Word; L]; 16], digit: Word, entry: &mut [Word; L]) {
    *entry = table[0];
    for (d, candidate) in table.iter().enumerate().skip(1) {
        let hit = digit.ct_eq(&(d as Word));
        for j in 0..L {
            entry[j].conditional_assign(&candidate[j], hit);
        }
    }
}

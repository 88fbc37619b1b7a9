//! Finite-field Diffie-Hellman over the MODP groups IKEv2 transform type 4 offers here:
//! 1, 2 (RFC 2409), 5, 14 (RFC 3526) and 24 (RFC 5114).
//!
//! Invariants:
//! - Private exponents have a fixed, per-group bit length ([`DhGroup::exponent_bits`]) and
//!   every exponentiation with them runs over exactly that many bits, so timing does not
//!   depend on the exponent's value (crypto-bigint `pow_bounded_exp`, constant-time
//!   Montgomery arithmetic). One function (`ModpGroup::pow`) computes both the public value
//!   and the shared secret.
//! - Exponent sizes follow RFC 3526 §8 and NIST SP 800-57 Part 1 Table 2: at least twice the
//!   group's symmetric strength and never below 160 bits — 160 bits for groups 1 and 2
//!   (80-bit strength), 192 for group 5 (~96), 256 for group 14 (112, NIST minimum 224).
//!   Group 24 draws x uniformly from [1, q-1] with its 256-bit q (RFC 5114 §2.3).
//! - A peer's public value is accepted only if it has exactly [`DhGroup::public_len`] bytes,
//!   1 < y < p-1 (RFC 6989 §2.1) and, for group 24, y^q = 1 mod p (RFC 6989 §2.2).
//! - Public values and shared secrets are big-endian and left-padded to the prime's length
//!   (RFC 7296 §3.4, §2.14). The private exponent is zeroized on drop and never printed.

use crypto_bigint::{Limb, Uint, Word, U512};
use rand::{CryptoRng, RngCore};
use subtle::{ConstantTimeEq, ConstantTimeGreater, ConstantTimeLess};
use zeroize::Zeroize;

use super::dh_groups::{self, ModpGroup};
use super::CryptoError;
use crate::secret::SecretBytes;

/// The MODP groups we negotiate (IANA "Transform Type 4 - Key Exchange Method Transform IDs").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// Group 1: 768-bit MODP (RFC 2409 §6.1). Legacy.
    Modp768,
    /// Group 2: 1024-bit MODP (RFC 2409 §6.2).
    Modp1024,
    /// Group 5: 1536-bit MODP (RFC 3526 §2).
    Modp1536,
    /// Group 14: 2048-bit MODP (RFC 3526 §3).
    Modp2048,
    /// Group 24: 2048-bit MODP with 256-bit prime-order subgroup (RFC 5114 §2.3).
    Modp2048_256,
}

impl DhGroup {
    /// Maps an IKEv2 key exchange method ID.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            1 => Some(DhGroup::Modp768),
            2 => Some(DhGroup::Modp1024),
            5 => Some(DhGroup::Modp1536),
            14 => Some(DhGroup::Modp2048),
            24 => Some(DhGroup::Modp2048_256),
            _ => None,
        }
    }

    /// The IKEv2 key exchange method ID (the KE payload's DH Group Num, RFC 7296 §3.4).
    pub fn id(self) -> u16 {
        match self {
            DhGroup::Modp768 => 1,
            DhGroup::Modp1024 => 2,
            DhGroup::Modp1536 => 5,
            DhGroup::Modp2048 => 14,
            DhGroup::Modp2048_256 => 24,
        }
    }

    /// Length of a public value (and of the shared secret): the prime's length in bytes
    /// (RFC 7296 §3.4: "the length of the Diffie-Hellman public value for MODP groups MUST be
    /// equal to the length of the prime modulus over which the exponentiation was performed").
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Modp768 => 96,
            DhGroup::Modp1024 => 128,
            DhGroup::Modp1536 => 192,
            DhGroup::Modp2048 | DhGroup::Modp2048_256 => 256,
        }
    }

    /// Bit length of the private exponents we generate (see the module docs for the sizing).
    pub fn exponent_bits(self) -> usize {
        match self {
            DhGroup::Modp768 | DhGroup::Modp1024 => 160,
            DhGroup::Modp1536 => 192,
            DhGroup::Modp2048 | DhGroup::Modp2048_256 => 256,
        }
    }

    /// Group 1 is accepted only because the API offers it (RFC 8247 §2.4: MUST NOT).
    /// Groups 2, 5 and 24 are "SHOULD NOT" there but are the API's own defaults, so they
    /// are not flagged.
    pub fn is_legacy(self) -> bool {
        matches!(self, DhGroup::Modp768)
    }
}

/// The private exponent type: wide enough for every group's exponent (at most 256 bits in
/// production; the known-answer tests use up to 384).
type Exponent = U512;

impl DhGroup {
    /// The cheap checks of a peer's public value (length, 1 < y < p-1; RFC 6989 §2.1), run
    /// before anything is spent on a key pair. [`DhPrivate::shared_secret`] repeats them and
    /// adds the subgroup check of group 24 (§2.2), which costs an exponentiation.
    pub fn check_public(self, peer_public: &[u8]) -> Result<(), CryptoError> {
        match self {
            DhGroup::Modp768 => in_range(&dh_groups::MODP768, peer_public).map(drop),
            DhGroup::Modp1024 => in_range(&dh_groups::MODP1024, peer_public).map(drop),
            DhGroup::Modp1536 => in_range(&dh_groups::MODP1536, peer_public).map(drop),
            DhGroup::Modp2048 => in_range(&dh_groups::MODP2048, peer_public).map(drop),
            DhGroup::Modp2048_256 => in_range(&dh_groups::MODP2048_256, peer_public).map(drop),
        }
    }
}

/// An ephemeral DH key pair. The public value is computed once, in [`DhPrivate::generate`].
pub struct DhPrivate {
    group: DhGroup,
    exponent: Exponent,
    exponent_bits: usize,
    public: Vec<u8>,
}

impl DhPrivate {
    /// Draws a private exponent from `rng` (see [`DhGroup::exponent_bits`]) and computes the
    /// public value g^x mod p.
    pub fn generate(group: DhGroup, rng: &mut (impl CryptoRng + RngCore + ?Sized)) -> Self {
        let bits = group.exponent_bits();
        let exponent = loop {
            let mut candidate = random_exponent(rng, bits);
            if bool::from(acceptable_exponent(group, &candidate)) {
                break candidate;
            }
            // Rejection happens with probability < 2^-159 for the safe-prime groups and
            // about 0.45 per draw for group 24 (q is just above 2^255).
            candidate.zeroize();
        };
        Self::with_exponent(group, exponent, bits)
    }

    /// The group this key belongs to.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// g^x mod p, big-endian, left-padded to [`DhGroup::public_len`] — the KE payload's
    /// Key Exchange Data (RFC 7296 §3.4).
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// Validates the peer's public value (RFC 6989) and returns g^ir = y^x mod p, big-endian
    /// and left-padded to [`DhGroup::public_len`] (RFC 7296 §2.14).
    pub fn shared_secret(&self, peer_public: &[u8]) -> Result<SecretBytes, CryptoError> {
        if peer_public.len() != self.group.public_len() {
            return Err(CryptoError::InvalidDhPublic("wrong length"));
        }
        let (x, bits) = (&self.exponent, self.exponent_bits);
        match self.group {
            DhGroup::Modp768 => shared_secret_in(&dh_groups::MODP768, x, bits, peer_public),
            DhGroup::Modp1024 => shared_secret_in(&dh_groups::MODP1024, x, bits, peer_public),
            DhGroup::Modp1536 => shared_secret_in(&dh_groups::MODP1536, x, bits, peer_public),
            DhGroup::Modp2048 => shared_secret_in(&dh_groups::MODP2048, x, bits, peer_public),
            DhGroup::Modp2048_256 => {
                shared_secret_in(&dh_groups::MODP2048_256, x, bits, peer_public)
            }
        }
    }

    /// Builds the key pair for an explicit exponent; the one constructor behind
    /// [`DhPrivate::generate`] and the known-answer tests.
    fn with_exponent(group: DhGroup, exponent: Exponent, exponent_bits: usize) -> Self {
        let x = &exponent;
        let public = match group {
            DhGroup::Modp768 => public_value_in(&dh_groups::MODP768, x, exponent_bits),
            DhGroup::Modp1024 => public_value_in(&dh_groups::MODP1024, x, exponent_bits),
            DhGroup::Modp1536 => public_value_in(&dh_groups::MODP1536, x, exponent_bits),
            DhGroup::Modp2048 => public_value_in(&dh_groups::MODP2048, x, exponent_bits),
            DhGroup::Modp2048_256 => public_value_in(&dh_groups::MODP2048_256, x, exponent_bits),
        };
        DhPrivate {
            group,
            exponent,
            exponent_bits,
            public,
        }
    }

    /// The private exponent (big-endian, [`EXPONENT_BYTES`] octets) and its bit length: what
    /// the hand-over snapshot of `ipsec-server upgrade` carries for a Child SA rekey of ours
    /// in flight, so the new process can finish it ([`Self::import`]).
    pub fn export(&self) -> (SecretBytes, usize) {
        let mut buf = vec![0u8; EXPONENT_BYTES];
        write_be(&self.exponent, &mut buf);
        (SecretBytes::new(buf), self.exponent_bits)
    }

    /// The key pair [`Self::export`] described; `None` for an exponent longer than
    /// [`EXPONENT_BYTES`] or a bit length beyond it (the bytes come from a hand-over socket).
    pub fn import(group: DhGroup, exponent: &[u8], exponent_bits: usize) -> Option<Self> {
        if exponent.len() > EXPONENT_BYTES || exponent_bits > Exponent::BITS {
            return None;
        }
        Some(Self::with_exponent(
            group,
            exponent_from_be(exponent),
            exponent_bits,
        ))
    }

    /// Not part of the API (known-answer tests and the `dh_mont` fuzz target): a key pair
    /// with the given big-endian exponent, run over exactly `8 * exponent.len()` bits.
    ///
    /// # Panics
    /// If `exponent` is longer than 64 octets.
    #[doc(hidden)]
    pub fn from_exponent_be(group: DhGroup, exponent: &[u8]) -> Self {
        let x = exponent_from_be(exponent);
        Self::with_exponent(group, x, exponent.len() * 8)
    }
}

impl Drop for DhPrivate {
    fn drop(&mut self) {
        self.exponent.zeroize();
    }
}

impl std::fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhPrivate")
            .field("group", &self.group)
            .field("exponent", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Bytes in an [`Exponent`].
const EXPONENT_BYTES: usize = Exponent::BITS / 8;

/// An exponent from big-endian bytes, left-padded.
///
/// # Panics
/// If `exponent` is longer than [`EXPONENT_BYTES`] (callers are tests and fuzz targets).
fn exponent_from_be(exponent: &[u8]) -> Exponent {
    let mut buf = [0u8; EXPONENT_BYTES];
    buf[EXPONENT_BYTES - exponent.len()..].copy_from_slice(exponent);
    let x = Exponent::from_be_slice(&buf);
    buf.zeroize();
    x
}

/// Not part of the API: the two exponentiations behind [`DhPrivate`] on raw values and the
/// groups' constants, for the `dh_mont` fuzz target, which compares them with crypto-bigint's
/// own modular exponentiation (`DynResidue::pow_bounded_exp`). Values are big-endian, of
/// [`DhGroup::public_len`] octets; exponents are at most 64 octets and only their low
/// `exponent_bits` bits count (at most 512).
#[doc(hidden)]
pub mod internals {
    use super::*;

    /// Runs `$body` with `$g` bound to the group's parameters, whatever their size.
    macro_rules! on_group {
        ($group:expr, $g:ident => $body:expr) => {
            match $group {
                DhGroup::Modp768 => {
                    let $g = &*dh_groups::MODP768;
                    $body
                }
                DhGroup::Modp1024 => {
                    let $g = &*dh_groups::MODP1024;
                    $body
                }
                DhGroup::Modp1536 => {
                    let $g = &*dh_groups::MODP1536;
                    $body
                }
                DhGroup::Modp2048 => {
                    let $g = &*dh_groups::MODP2048;
                    $body
                }
                DhGroup::Modp2048_256 => {
                    let $g = &*dh_groups::MODP2048_256;
                    $body
                }
            }
        };
    }

    /// The group's prime p.
    pub fn prime(group: DhGroup) -> Vec<u8> {
        on_group!(group, g => be(&g.p_minus_1.wrapping_add(&Uint::ONE)))
    }

    /// The group's generator g.
    pub fn generator(group: DhGroup) -> Vec<u8> {
        on_group!(group, g => be(&g.g))
    }

    /// The order q of the subgroup g generates, when it is not (p-1)/2 (group 24).
    pub fn subgroup_order(group: DhGroup) -> Option<Vec<u8>> {
        on_group!(group, g => g.q.as_ref().map(be))
    }

    /// `base^exponent mod p` with the fused Montgomery ladder (`ModpGroup::pow`, the
    /// shared-secret and subgroup-check path); `None` for a base of another length or an
    /// exponent longer than 64 octets. `base` may be any value below 2^(8 * public_len).
    pub fn pow(
        group: DhGroup,
        base: &[u8],
        exponent: &[u8],
        exponent_bits: usize,
    ) -> Option<Vec<u8>> {
        if exponent.len() > EXPONENT_BYTES {
            return None;
        }
        let x = exponent_from_be(exponent);
        let bits = exponent_bits.min(Exponent::BITS);
        on_group!(group, g => read_be(base).map(|b| be(&g.pow(&b, &x, bits))))
    }

    /// `g^exponent mod p` with the fixed-base comb (`ModpGroup::pow_g`, the public-value path,
    /// which falls back to the ladder beyond the group's exponent size); `None` for an
    /// exponent longer than 64 octets.
    pub fn pow_g(group: DhGroup, exponent: &[u8], exponent_bits: usize) -> Option<Vec<u8>> {
        if exponent.len() > EXPONENT_BYTES {
            return None;
        }
        let x = exponent_from_be(exponent);
        let bits = exponent_bits.min(Exponent::BITS);
        Some(on_group!(group, g => be(&g.pow_g(&x, bits))))
    }

    fn be<const L: usize>(value: &Uint<L>) -> Vec<u8> {
        let mut out = vec![0u8; L * Limb::BYTES];
        write_be(value, &mut out);
        out
    }
}

/// A uniformly random exponent of `bits` bits (`bits` is a multiple of 8, at most 512).
fn random_exponent<R: RngCore + ?Sized>(rng: &mut R, bits: usize) -> Exponent {
    let mut buf = [0u8; EXPONENT_BYTES];
    rng.fill_bytes(&mut buf[EXPONENT_BYTES - bits / 8..]);
    // `buf` is exactly EXPONENT_BYTES long, the length `from_be_slice` requires.
    let x = Exponent::from_be_slice(&buf);
    buf.zeroize();
    x
}

/// x ≥ 2 for the safe-prime groups (x = 0 or 1 would give a public value of 1 or g);
/// 1 ≤ x < q for group 24 (RFC 5114 §2.3). Evaluated in constant time.
fn acceptable_exponent(group: DhGroup, x: &Exponent) -> subtle::Choice {
    match group {
        DhGroup::Modp2048_256 => {
            let q: Exponent = dh_groups::MODP2048_256_Q.resize();
            x.ct_lt(&q) & !x.ct_eq(&Exponent::ZERO)
        }
        _ => x.ct_gt(&Exponent::ONE),
    }
}

fn public_value_in<const L: usize>(
    group: &ModpGroup<L>,
    x: &Exponent,
    exponent_bits: usize,
) -> Vec<u8> {
    let y = group.pow_g(x, exponent_bits);
    let mut out = vec![0u8; L * Limb::BYTES];
    write_be(&y, &mut out);
    out
}

fn shared_secret_in<const L: usize>(
    group: &ModpGroup<L>,
    x: &Exponent,
    exponent_bits: usize,
    peer_public: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let y = in_range(group, peer_public)?;
    // RFC 6989 §2.2: in a group with a small cofactor, y must lie in the order-q subgroup.
    if let Some(q) = &group.q {
        if group.pow(&y, q, q.bits_vartime()) != Uint::ONE {
            return Err(CryptoError::InvalidDhPublic(
                "not in the prime-order subgroup",
            ));
        }
    }
    let mut z = group.pow(&y, x, exponent_bits);
    // Unreachable for a valid y and x < ord(y); kept as a cheap guard against a degenerate
    // secret.
    if z == Uint::ONE {
        return Err(CryptoError::InvalidDhPublic("shared secret is 1"));
    }
    let mut out = vec![0u8; L * Limb::BYTES];
    write_be(&z, &mut out);
    z.zeroize();
    Ok(SecretBytes::new(out))
}

/// RFC 6989 §2.1: the public value has the group's length and 1 < y < p-1 (0, 1, p-1 and
/// anything ≥ p are refused).
fn in_range<const L: usize>(
    group: &ModpGroup<L>,
    peer_public: &[u8],
) -> Result<Uint<L>, CryptoError> {
    let y = read_be::<L>(peer_public).ok_or(CryptoError::InvalidDhPublic("wrong length"))?;
    if y <= Uint::ONE || y >= group.p_minus_1 {
        return Err(CryptoError::InvalidDhPublic("not in 1 < y < p-1"));
    }
    Ok(y)
}

/// Parses big-endian bytes of exactly `L` limbs; `None` on any other length.
fn read_be<const L: usize>(bytes: &[u8]) -> Option<Uint<L>> {
    if bytes.len() != L * Limb::BYTES {
        return None;
    }
    let mut words = [0 as Word; L];
    for (word, chunk) in words.iter_mut().zip(bytes.rchunks_exact(Limb::BYTES)) {
        *word = Word::from_be_bytes(chunk.try_into().ok()?);
    }
    Some(Uint::from_words(words))
}

/// Writes `value` big-endian into `out`, which is exactly `L` limbs long.
fn write_be<const L: usize>(value: &Uint<L>, out: &mut [u8]) {
    for (chunk, word) in out.rchunks_exact_mut(Limb::BYTES).zip(value.as_words()) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

#[cfg(test)]
#[path = "tests/dh.rs"]
mod tests;

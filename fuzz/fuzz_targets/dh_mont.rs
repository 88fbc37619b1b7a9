//! Differential: our constant-time Montgomery code (src/crypto/dh_mont.rs: the fused ladder
//! behind shared secrets and the subgroup check, the fixed-base comb behind public values)
//! against crypto-bigint's own modular exponentiation (`DynResidue::pow_bounded_exp`) on the
//! same moduli, the MODP groups of src/crypto/dh_groups.rs: arbitrary bases (0, 1, p-1, p and
//! above included), exponents of up to 512 bits and any bit count. The key-pair mode goes
//! through the public `DhPrivate` API: the public value, and the shared secret or the refusal
//! of the peer's value (RFC 6989), as the reference says they must be.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Uint, U1024, U1536, U2048, U512, U768};
use ipsec_server::crypto::dh_internals as dh;
use ipsec_server::crypto::{DhGroup, DhPrivate};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    group: u8,
    mode: Mode,
}

#[derive(Arbitrary, Debug)]
enum Mode {
    /// base^x with the ladder, over the low `bits % 513` bits of x.
    Pow { base: Value, x: Vec<u8>, bits: u16 },
    /// g^x with the comb (the ladder beyond the group's exponent size).
    PowG { x: Vec<u8>, bits: u16 },
    /// `DhPrivate::from_exponent_be(x)`: its public value, and its shared secret with `peer`.
    KeyPair { x: Vec<u8>, peer: Peer },
}

/// A value of the prime's length.
#[derive(Arbitrary, Debug)]
enum Value {
    /// Left-padded or cut to the prime's length.
    Bytes(Vec<u8>),
    Small(u16),
    /// p - k (p itself for 0).
    PMinus(u16),
    /// p + k, below 2^(8 * length).
    PPlus(u16),
    Ones,
}

#[derive(Arbitrary, Debug)]
enum Peer {
    Value(Value),
    /// g^k: in the prime-order subgroup of group 24.
    Power(Vec<u8>),
    /// Any length.
    Raw(Vec<u8>),
}

const GROUPS: [DhGroup; 5] = [
    DhGroup::Modp768,
    DhGroup::Modp1024,
    DhGroup::Modp1536,
    DhGroup::Modp2048,
    DhGroup::Modp2048_256,
];

// The reference's Montgomery parameters cost about an exponentiation: made once per group.
static MODP768: LazyLock<Reference<{ U768::LIMBS }>> =
    LazyLock::new(|| Reference::new(DhGroup::Modp768));
static MODP1024: LazyLock<Reference<{ U1024::LIMBS }>> =
    LazyLock::new(|| Reference::new(DhGroup::Modp1024));
static MODP1536: LazyLock<Reference<{ U1536::LIMBS }>> =
    LazyLock::new(|| Reference::new(DhGroup::Modp1536));
static MODP2048: LazyLock<Reference<{ U2048::LIMBS }>> =
    LazyLock::new(|| Reference::new(DhGroup::Modp2048));
static MODP2048_256: LazyLock<Reference<{ U2048::LIMBS }>> =
    LazyLock::new(|| Reference::new(DhGroup::Modp2048_256));

fuzz_target!(|input: Input| {
    let group = GROUPS[usize::from(input.group) % GROUPS.len()];
    match group {
        DhGroup::Modp768 => run(&MODP768, group, &input.mode),
        DhGroup::Modp1024 => run(&MODP1024, group, &input.mode),
        DhGroup::Modp1536 => run(&MODP1536, group, &input.mode),
        DhGroup::Modp2048 => run(&MODP2048, group, &input.mode),
        DhGroup::Modp2048_256 => run(&MODP2048_256, group, &input.mode),
    }
});

/// The group's constants and the reference exponentiation, for `L`-limb moduli.
struct Reference<const L: usize> {
    p: Uint<L>,
    g: Uint<L>,
    params: DynResidueParams<L>,
    len: usize,
}

impl<const L: usize> Reference<L> {
    fn new(group: DhGroup) -> Self {
        let p = Uint::<L>::from_be_slice(&dh::prime(group));
        Reference {
            p,
            g: Uint::from_be_slice(&dh::generator(group)),
            params: DynResidueParams::new(&p),
            len: group.public_len(),
        }
    }

    /// base^x mod p over the low `bits` bits of x (at most 64 octets).
    fn pow(&self, base: &Uint<L>, x: &[u8], bits: usize) -> Uint<L> {
        DynResidue::new(base, self.params)
            .pow_bounded_exp(&exponent(x), bits)
            .retrieve()
    }

    fn value(&self, v: &Value) -> Vec<u8> {
        let n = |k: u16| Uint::<L>::from_u64(u64::from(k));
        let u = match v {
            Value::Bytes(b) => {
                let mut out = vec![0u8; self.len];
                let b = &b[b.len().saturating_sub(self.len)..];
                out[self.len - b.len()..].copy_from_slice(b);
                return out;
            }
            Value::Small(k) => n(*k),
            Value::PMinus(k) => self.p.wrapping_sub(&n(*k)),
            // p + k < 2^(8 * len): every prime here is more than 2^16 below that.
            Value::PPlus(k) => self.p.wrapping_add(&n(*k)),
            Value::Ones => Uint::MAX,
        };
        be(&u)
    }
}

fn run<const L: usize>(r: &Reference<L>, group: DhGroup, mode: &Mode) {
    match mode {
        Mode::Pow { base, x, bits } => {
            let x = &x[..x.len().min(64)];
            let bits = usize::from(*bits) % 513;
            let base = r.value(base);
            let ours = dh::pow(group, &base, x, bits).expect("lengths are right");
            let want = r.pow(&Uint::from_be_slice(&base), x, bits);
            assert_eq!(Uint::<L>::from_be_slice(&ours), want, "ladder, {group:?}");
        }
        Mode::PowG { x, bits } => {
            let x = &x[..x.len().min(64)];
            let bits = usize::from(*bits) % 513;
            let ours = dh::pow_g(group, x, bits).expect("lengths are right");
            let want = r.pow(&r.g, x, bits);
            assert_eq!(Uint::<L>::from_be_slice(&ours), want, "comb, {group:?}");
        }
        Mode::KeyPair { x, peer } => {
            let x = &x[..x.len().min(64)];
            let key = DhPrivate::from_exponent_be(group, x);
            let public = r.pow(&r.g, x, 8 * x.len());
            assert_eq!(key.public_value(), be(&public), "public value, {group:?}");
            let peer = match peer {
                Peer::Value(v) => r.value(v),
                Peer::Power(k) => be(&r.pow(&r.g, &k[..k.len().min(64)], 8 * k.len().min(64))),
                Peer::Raw(b) => b.clone(),
            };
            let ours = key.shared_secret(&peer);
            match expected_secret(r, group, &peer, x) {
                Some(z) => assert_eq!(ours.map(|s| s.expose().to_vec()), Ok(z), "{group:?}"),
                None => assert!(ours.is_err(), "{group:?}: accepted {peer:02x?}"),
            }
        }
    }
}

/// y^x for an acceptable peer value y (RFC 6989: the prime's length, 1 < y < p-1, in the
/// subgroup of group 24) unless it is 1; `None` when the value must be refused.
fn expected_secret<const L: usize>(
    r: &Reference<L>,
    group: DhGroup,
    peer: &[u8],
    x: &[u8],
) -> Option<Vec<u8>> {
    if peer.len() != r.len {
        return None;
    }
    let y = Uint::<L>::from_be_slice(peer);
    if y <= Uint::ONE || y >= r.p.wrapping_sub(&Uint::ONE) {
        return None;
    }
    if let Some(q) = dh::subgroup_order(group) {
        if r.pow(&y, &q, 8 * q.len()) != Uint::ONE {
            return None;
        }
    }
    let z = r.pow(&y, x, 8 * x.len());
    (z != Uint::ONE).then(|| be(&z))
}

/// At most 64 octets, big-endian, as a 512-bit exponent.
fn exponent(x: &[u8]) -> U512 {
    let mut buf = [0u8; 64];
    buf[64 - x.len()..].copy_from_slice(x);
    U512::from_be_slice(&buf)
}

fn be<const L: usize>(u: &Uint<L>) -> Vec<u8> {
    u.as_words()
        .iter()
        .rev()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

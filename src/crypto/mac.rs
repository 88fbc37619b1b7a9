//! Keyed HMAC (RFC 2104) shared by the integrity transforms and the PRFs.
//!
//! Invariants:
//! - A [`KeyedMac`] holds the hash states after absorbing `K ^ ipad` and `K ^ opad`
//!   (RFC 2104 §2), computed once in [`KeyedMac::new`]; the raw key is not kept.
//! - Every MAC computation works on a clone of that state on the stack ([`KeyedMac::start`]),
//!   so a `KeyedMac` is never mutated after keying and is safe to share.
//! - Output is written into a caller-provided `[u8; MAX_OUTPUT]`; nothing allocates.
//! - `Debug` prints no state.

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};
use zeroize::Zeroize;

/// Largest HMAC output we produce (SHA-512, FIPS 180-4).
pub(crate) const MAX_OUTPUT: usize = 64;

/// Hash functions under the HMACs we negotiate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum HashAlg {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// Digest length in bytes (RFC 1321, FIPS 180-4).
    pub(crate) const fn output_len(self) -> usize {
        match self {
            HashAlg::Md5 => 16,
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }
}

/// An HMAC keyed once; clone-per-use via [`KeyedMac::start`].
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Md5(Hmac<Md5>),
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

impl KeyedMac {
    /// Keys an HMAC. HMAC accepts keys of any length (RFC 2104 §2: longer keys are hashed,
    /// shorter ones zero-padded), so this cannot fail.
    pub(crate) fn new(alg: HashAlg, key: &[u8]) -> Self {
        match alg {
            HashAlg::Md5 => KeyedMac::Md5(keyed(key)),
            HashAlg::Sha1 => KeyedMac::Sha1(keyed(key)),
            HashAlg::Sha256 => KeyedMac::Sha256(keyed(key)),
            HashAlg::Sha384 => KeyedMac::Sha384(keyed(key)),
            HashAlg::Sha512 => KeyedMac::Sha512(keyed(key)),
        }
    }

    /// A fresh computation from the precomputed keyed state (a stack copy, no allocation).
    pub(crate) fn start(&self) -> KeyedMac {
        self.clone()
    }

    /// Absorbs `data` into a computation begun with [`KeyedMac::start`].
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            KeyedMac::Md5(m) => m.update(data),
            KeyedMac::Sha1(m) => m.update(data),
            KeyedMac::Sha256(m) => m.update(data),
            KeyedMac::Sha384(m) => m.update(data),
            KeyedMac::Sha512(m) => m.update(data),
        }
    }

    /// Finishes the computation: writes the full (untruncated) MAC to `out[..n]` and returns
    /// `n`, the hash output length.
    pub(crate) fn finish_into(self, out: &mut [u8; MAX_OUTPUT]) -> usize {
        match self {
            KeyedMac::Md5(m) => finish(m, out),
            KeyedMac::Sha1(m) => finish(m, out),
            KeyedMac::Sha256(m) => finish(m, out),
            KeyedMac::Sha384(m) => finish(m, out),
            KeyedMac::Sha512(m) => finish(m, out),
        }
    }
}

impl std::fmt::Debug for KeyedMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedMac(<redacted>)")
    }
}

fn keyed<M: Mac + hmac::digest::KeyInit>(key: &[u8]) -> M {
    // Cannot fail: `Hmac<D>` overrides `new_from_slice` to accept keys of every length
    // (hmac 0.12; RFC 2104 §2 hashes long keys and zero-pads short ones).
    <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn finish<M: Mac>(m: M, out: &mut [u8; MAX_OUTPUT]) -> usize {
    let mut tag = m.finalize().into_bytes();
    let n = tag.len();
    out[..n].copy_from_slice(&tag);
    tag.as_mut_slice().zeroize();
    n
}

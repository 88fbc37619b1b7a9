//! Integrity transforms (IKEv2 transform type 3): truncated HMACs for IKE SK payloads and ESP.
//!
//! Invariants:
//! - An [`Integ`] is keyed once; the HMAC pad states are precomputed and cloned per call,
//!   so [`Integ::sign`] and [`Integ::verify`] neither rehash the key nor allocate.
//! - The ICV is the leftmost [`IntegAlg::icv_len`] bytes of the HMAC (RFC 2404 §2,
//!   RFC 4868 §2.3).
//! - [`Integ::verify`] compares in constant time (`subtle`) and rejects a wrong-length ICV
//!   without looking at its contents.
//! - `Debug` shows the algorithm only.
//! - [`Integ::sign_many`] gives every message the ICV [`Integ::sign`] would; for
//!   HMAC-SHA1-96 it computes them together with the multi-buffer code (`sha1_multi`),
//!   whose own pad states are kept next to the `hmac` crate's (40 bytes, wiped on drop).

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::mac::{HashAlg, KeyedMac, MAX_OUTPUT};
use super::sha1_multi::{self, Sha1Pads};
use super::CryptoError;

/// IKEv2 integrity transforms (IANA "Transform Type 3 - Integrity Algorithm Transform IDs").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]

pub enum IntegAlg {
    /// AUTH_HMAC_MD5_96 = 1 (RFC 2403). Legacy.
    HmacMd5_96,
    /// AUTH_HMAC_SHA1_96 = 2 (RFC 2404).
    HmacSha1_96,
    /// AUTH_HMAC_SHA2_256_128 = 12 (RFC 4868).
    HmacSha256_128,
    /// AUTH_HMAC_SHA2_384_192 = 13 (RFC 4868).
    HmacSha384_192,
    /// AUTH_HMAC_SHA2_512_256 = 14 (RFC 4868).
    HmacSha512_256,
}

impl IntegAlg {
    /// Every transform, for exhaustive tests.
    pub const ALL: [IntegAlg; 5] = [
        IntegAlg::HmacMd5_96,
        IntegAlg::HmacSha1_96,
        IntegAlg::HmacSha256_128,
        IntegAlg::HmacSha384_192,
        IntegAlg::HmacSha512_256,
    ];

    /// Maps an IKEv2 integrity transform ID (IANA registry; RFC 7296 §3.3.2, RFC 4868 §3).
    pub fn from_ike(id: u16) -> Option<Self> {
        match id {
            1 => Some(IntegAlg::HmacMd5_96),
            2 => Some(IntegAlg::HmacSha1_96),
            12 => Some(IntegAlg::HmacSha256_128),
            13 => Some(IntegAlg::HmacSha384_192),
            14 => Some(IntegAlg::HmacSha512_256),
            _ => None,
        }
    }

    /// The IKEv2 transform ID.
    pub fn transform_id(self) -> u16 {
        match self {
            IntegAlg::HmacMd5_96 => 1,
            IntegAlg::HmacSha1_96 => 2,
            IntegAlg::HmacSha256_128 => 12,
            IntegAlg::HmacSha384_192 => 13,
            IntegAlg::HmacSha512_256 => 14,
        }
    }

    /// Key length in bytes: the hash length (RFC 2403 §3, RFC 2404 §3, RFC 4868 §2.1.1).
    pub fn key_len(self) -> usize {
        self.hash().output_len()
    }

    /// ICV (truncated MAC) length in bytes: 96 bits for MD5/SHA-1 (RFC 2403 §2,
    /// RFC 2404 §2), half the hash for SHA-2 (RFC 4868 §2.3).
    pub fn icv_len(self) -> usize {
        match self {
            IntegAlg::HmacMd5_96 | IntegAlg::HmacSha1_96 => 12,
            IntegAlg::HmacSha256_128 => 16,
            IntegAlg::HmacSha384_192 => 24,
            IntegAlg::HmacSha512_256 => 32,
        }
    }

    /// MD5 is accepted only for the API's sake (RFC 8247 §2.3: AUTH_HMAC_MD5_96 MUST NOT).
    pub fn is_legacy(self) -> bool {
        matches!(self, IntegAlg::HmacMd5_96)
    }

    fn hash(self) -> HashAlg {
        match self {
            IntegAlg::HmacMd5_96 => HashAlg::Md5,
            IntegAlg::HmacSha1_96 => HashAlg::Sha1,
            IntegAlg::HmacSha256_128 => HashAlg::Sha256,
            IntegAlg::HmacSha384_192 => HashAlg::Sha384,
            IntegAlg::HmacSha512_256 => HashAlg::Sha512,
        }
    }
}

/// A keyed integrity transform, reused for every packet of an SA.
#[derive(Clone)]
pub struct Integ {
    alg: IntegAlg,
    mac: KeyedMac,
    /// HMAC-SHA1 only: the pad states of the multi-buffer path ([`Integ::sign_many`]).
    sha1: Option<Sha1Pads>,
}

/// Messages [`Integ::sign_many`] hands to the multi-buffer code at once (a stack batch).
const MANY: usize = 8;

impl Integ {
    /// Keys the transform. The key must be exactly [`IntegAlg::key_len`] bytes
    /// (RFC 4868 §2.1.1; RFC 7296 §2.14 derives it at that length).
    pub fn new(alg: IntegAlg, key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        Ok(Integ {
            alg,
            mac: KeyedMac::new(alg.hash(), key),
            sha1: (alg == IntegAlg::HmacSha1_96).then(|| Sha1Pads::new(key)),
        })
    }

    /// The algorithm this transform was keyed for.
    pub fn alg(&self) -> IntegAlg {
        self.alg
    }

    /// Writes the ICV of `data` to `icv_out[..icv_len]`.
    ///
    /// # Panics
    /// If `icv_out` is shorter than [`IntegAlg::icv_len`] — a caller bug, independent of
    /// any received data.
    pub fn sign(&self, data: &[u8], icv_out: &mut [u8]) {
        self.sign_parts(&[data], icv_out);
    }

    /// [`Integ::sign`] over the concatenation of `parts` (e.g. ESP payload then the ESN
    /// high-order bits, RFC 4303 §2.2.1), without copying them together.
    ///
    /// # Panics
    /// As [`Integ::sign`].
    pub fn sign_parts(&self, parts: &[&[u8]], icv_out: &mut [u8]) {
        let icv_len = self.alg.icv_len();
        let mut full = [0u8; MAX_OUTPUT];
        self.mac_into(parts, &mut full);
        icv_out[..icv_len].copy_from_slice(&full[..icv_len]);
        full.zeroize();
    }

    /// Signs several messages in place: each item is `data || room for the ICV`, and its last
    /// [`IntegAlg::icv_len`] bytes receive the ICV of the bytes before them — what
    /// [`Integ::sign`] writes, byte for byte. HMAC-SHA1 computes several MACs at once
    /// (their SHA-1 chains interleaved, `sha1_multi`); the other hashes sign one by one.
    ///
    /// # Panics
    /// If an item is shorter than the ICV — a caller bug, independent of any received data.
    pub fn sign_many(&self, items: &mut [&mut [u8]]) {
        let icv_len = self.alg.icv_len();
        let Some(pads) = &self.sha1 else {
            for item in items.iter_mut() {
                let (data, icv) = item.split_at_mut(item.len() - icv_len);
                self.sign(data, icv);
            }
            return;
        };
        let mut macs = [[0u8; sha1_multi::DIGEST]; MANY];
        for group in items.chunks_mut(MANY) {
            let n = group.len();
            let mut msgs: [&[u8]; MANY] = [&[]; MANY];
            let mut icvs: [&mut [u8]; MANY] = Default::default();
            for ((msg, icv), item) in msgs.iter_mut().zip(icvs.iter_mut()).zip(group.iter_mut()) {
                (*msg, *icv) = item.split_at_mut(item.len() - icv_len);
            }
            self.sha1_group(pads, &msgs[..n], &mut macs[..n]);
            for (icv, mac) in icvs.iter_mut().zip(&macs[..n]) {
                icv.copy_from_slice(&mac[..icv_len]);
            }
        }
        macs.zeroize();
    }

    /// Checks several messages at once: each item is `data || ICV` (its last
    /// [`IntegAlg::icv_len`] bytes), and `ok[i]` becomes what [`Integ::verify`] says of item
    /// `i` (constant-time comparison; HMAC-SHA1 computes the MACs together as
    /// [`Integ::sign_many`] does).
    ///
    /// # Panics
    /// If an item is shorter than the ICV or `ok` is shorter than `items` — caller bugs,
    /// independent of any received data.
    pub fn verify_many(&self, items: &[&[u8]], ok: &mut [bool]) {
        let icv_len = self.alg.icv_len();
        let Some(pads) = &self.sha1 else {
            for (item, ok) in items.iter().zip(ok.iter_mut()) {
                let (data, icv) = item.split_at(item.len() - icv_len);
                *ok = self.verify(data, icv);
            }
            return;
        };
        let mut macs = [[0u8; sha1_multi::DIGEST]; MANY];
        for (group, ok) in items.chunks(MANY).zip(ok.chunks_mut(MANY)) {
            let n = group.len();
            let mut msgs: [&[u8]; MANY] = [&[]; MANY];
            for (msg, item) in msgs.iter_mut().zip(group) {
                *msg = &item[..item.len() - icv_len];
            }
            self.sha1_group(pads, &msgs[..n], &mut macs[..n]);
            for ((ok, mac), item) in ok.iter_mut().zip(&macs[..n]).zip(group) {
                *ok = bool::from(mac[..icv_len].ct_eq(&item[item.len() - icv_len..]));
            }
        }
        macs.zeroize();
    }

    /// The HMAC-SHA1 of each of up to [`MANY`] messages into `macs`.
    fn sha1_group(&self, pads: &Sha1Pads, msgs: &[&[u8]], macs: &mut [[u8; sha1_multi::DIGEST]]) {
        if let [msg] = msgs {
            // One message: nothing to interleave, so the `hmac` crate's one-stream SHA-NI
            // path (`benches/crypto.rs`, hmac/sha1-96-sign-many-x1: measured against one lane,
            // BENCHMARKS.md "One message alone").
            let mut full = [0u8; MAX_OUTPUT];
            self.mac_into(&[msg], &mut full);
            macs[0].copy_from_slice(&full[..sha1_multi::DIGEST]);
            full.zeroize();
        } else {
            sha1_multi::hmac_sha1_many(pads, msgs, macs);
        }
    }

    /// Checks `icv` against the ICV of `data` in constant time. An ICV of the wrong length
    /// is rejected.
    pub fn verify(&self, data: &[u8], icv: &[u8]) -> bool {
        self.verify_parts(&[data], icv)
    }

    /// [`Integ::verify`] over the concatenation of `parts`.
    pub fn verify_parts(&self, parts: &[&[u8]], icv: &[u8]) -> bool {
        let icv_len = self.alg.icv_len();
        if icv.len() != icv_len {
            return false;
        }
        let mut full = [0u8; MAX_OUTPUT];
        self.mac_into(parts, &mut full);
        let ok = bool::from(full[..icv_len].ct_eq(icv));
        full.zeroize();
        ok
    }

    fn mac_into(&self, parts: &[&[u8]], out: &mut [u8; MAX_OUTPUT]) {
        let mut run = self.mac.start();
        for part in parts {
            run.update(part);
        }
        run.finish_into(out);
    }
}

impl std::fmt::Debug for Integ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integ")
            .field("alg", &self.alg)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
#[path = "tests/integ.rs"]
mod tests;

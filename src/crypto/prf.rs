//! Pseudo-random functions (IKEv2 transform type 2) and `prf+` (RFC 7296 §2.13).
//!
//! Invariants:
//! - Every PRF is HMAC over the negotiated hash (RFC 2104; RFC 4868 for SHA-2), so any
//!   key length is accepted and the output is exactly [`PrfAlg::output_len`] bytes.
//! - Results are returned as [`SecretBytes`]; intermediate blocks are zeroized.
//! - `prf+` refuses to produce more than 255 blocks instead of wrapping its one-octet
//!   counter (RFC 7296 §2.13).

use zeroize::Zeroize;

use super::mac::{HashAlg, KeyedMac, MAX_OUTPUT};
use super::CryptoError;
use crate::secret::SecretBytes;

/// IKEv2 PRF transforms (IANA "Transform Type 2 - Pseudorandom Function Transform IDs").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrfAlg {
    /// PRF_HMAC_MD5 = 1 (RFC 2104). Legacy.
    HmacMd5,
    /// PRF_HMAC_SHA1 = 2 (RFC 2104).
    HmacSha1,
    /// PRF_HMAC_SHA2_256 = 5 (RFC 4868).
    HmacSha256,
    /// PRF_HMAC_SHA2_384 = 6 (RFC 4868).
    HmacSha384,
    /// PRF_HMAC_SHA2_512 = 7 (RFC 4868).
    HmacSha512,
}

/// Largest `prf+` output: 255 iterations of the one-octet counter (RFC 7296 §2.13).
const PRF_PLUS_MAX_BLOCKS: usize = 255;

impl PrfAlg {
    /// Maps an IKEv2 PRF transform ID (IANA registry; RFC 7296 §3.3.2, RFC 4868).
    pub fn from_ike(id: u16) -> Option<Self> {
        match id {
            1 => Some(PrfAlg::HmacMd5),
            2 => Some(PrfAlg::HmacSha1),
            5 => Some(PrfAlg::HmacSha256),
            6 => Some(PrfAlg::HmacSha384),
            7 => Some(PrfAlg::HmacSha512),
            _ => None,
        }
    }

    /// The IKEv2 transform ID.
    pub fn transform_id(self) -> u16 {
        match self {
            PrfAlg::HmacMd5 => 1,
            PrfAlg::HmacSha1 => 2,
            PrfAlg::HmacSha256 => 5,
            PrfAlg::HmacSha384 => 6,
            PrfAlg::HmacSha512 => 7,
        }
    }

    /// PRF output length in bytes (the hash length).
    pub fn output_len(self) -> usize {
        self.hash().output_len()
    }

    /// Preferred key size: the output length (RFC 7296 §2.13, §2.14: SK_d, SK_pi and SK_pr
    /// have the PRF's preferred key length; for an HMAC PRF that is the hash length,
    /// RFC 2104 §3, RFC 4868).
    pub fn key_len(self) -> usize {
        self.output_len()
    }

    /// MD5 is kept only because the API accepts it; RFC 8247 §2.3 says MUST NOT.
    pub fn is_legacy(self) -> bool {
        matches!(self, PrfAlg::HmacMd5)
    }

    /// `prf(key, data)`.
    pub fn prf(self, key: &[u8], data: &[u8]) -> SecretBytes {
        self.prf_parts(key, &[data])
    }

    /// `prf(key, parts[0] | parts[1] | ...)` without concatenating the parts first.
    pub fn prf_parts(self, key: &[u8], parts: &[&[u8]]) -> SecretBytes {
        let mut run = KeyedMac::new(self.hash(), key).start();
        for part in parts {
            run.update(part);
        }
        let mut block = [0u8; MAX_OUTPUT];
        let n = run.finish_into(&mut block);
        let out = SecretBytes::from_slice(&block[..n]);
        block.zeroize();
        out
    }

    /// `prf+(key, seed)` truncated to `len` bytes (RFC 7296 §2.13):
    ///
    /// ```text
    /// prf+ (K,S) = T1 | T2 | T3 | ...
    /// T1 = prf (K, S | 0x01)
    /// Tn = prf (K, Tn-1 | S | n)      n = 2 .. 255
    /// ```
    ///
    /// Errors with [`CryptoError::PrfPlusTooLong`] when `len > 255 * output_len`.
    pub fn prf_plus(self, key: &[u8], seed: &[u8], len: usize) -> Result<SecretBytes, CryptoError> {
        self.prf_plus_parts(key, &[seed], len)
    }

    /// [`PrfAlg::prf_plus`] with the seed given as consecutive parts `S = parts[0] | ...`.
    pub fn prf_plus_parts(
        self,
        key: &[u8],
        seed_parts: &[&[u8]],
        len: usize,
    ) -> Result<SecretBytes, CryptoError> {
        let output_len = self.output_len();
        if len > PRF_PLUS_MAX_BLOCKS * output_len {
            return Err(CryptoError::PrfPlusTooLong {
                requested: len,
                output_len,
            });
        }
        let mac = KeyedMac::new(self.hash(), key);
        // Allocated once at its final size, so no reallocation leaves key copies behind.
        let mut out = vec![0u8; len];
        let mut block = [0u8; MAX_OUTPUT];
        let mut prev_len = 0;
        for (index, chunk) in out.chunks_mut(output_len).enumerate() {
            let mut run = mac.start();
            run.update(&block[..prev_len]); // T(n-1); empty for T1
            for part in seed_parts {
                run.update(part);
            }
            // index < 255 by the length check above, so the counter fits one octet.
            run.update(&[(index + 1) as u8]);
            prev_len = run.finish_into(&mut block);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        block.zeroize();
        Ok(SecretBytes::new(out))
    }

    fn hash(self) -> HashAlg {
        match self {
            PrfAlg::HmacMd5 => HashAlg::Md5,
            PrfAlg::HmacSha1 => HashAlg::Sha1,
            PrfAlg::HmacSha256 => HashAlg::Sha256,
            PrfAlg::HmacSha384 => HashAlg::Sha384,
            PrfAlg::HmacSha512 => HashAlg::Sha512,
        }
    }
}

#[cfg(test)]
#[path = "tests/prf.rs"]
mod tests;

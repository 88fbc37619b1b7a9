//! Cryptographic transforms and the IKEv2 key schedule (ARCHITECTURE.md §1).
//!
//! What lives here:
//! - [`EncrAlg`] / [`Cipher`]: CBC encryption (RFC 2405 DES, RFC 2451 3DES, RFC 3602 AES),
//! - [`IntegAlg`] / [`Integ`]: truncated HMAC integrity (RFC 2403, 2404, 4868),
//!   HMAC-SHA1 also several messages at once ([`Integ::sign_many`], `sha1_multi`: SHA-NI
//!   lanes interleaved, the one module here that allows `unsafe`),
//! - [`PrfAlg`]: HMAC PRFs and `prf+` (RFC 2104, RFC 4868, RFC 7296 §2.13),
//! - [`DhGroup`] / [`DhPrivate`]: MODP Diffie-Hellman with RFC 6989 peer-value checks,
//! - [`keys`]: SKEYSEED, the IKE SA and Child SA key schedules and the PSK AUTH value
//!   (RFC 7296 §2.14, §2.15, §2.17, §2.18).
//!
//! Invariants every item in this module keeps:
//! - Key material lives in [`SecretBytes`](crate::secret::SecretBytes) or in cipher/MAC
//!   states built once from it; buffers holding secrets are zeroized when dropped, and no
//!   `Debug` output contains key bytes (keyed types print `<redacted>`).
//! - Nothing here panics on peer-supplied data: lengths are checked and reported as
//!   [`CryptoError`]. The only panics are documented caller contract violations (for example
//!   an ICV output buffer shorter than [`IntegAlg::icv_len`]).
//! - The per-packet paths ([`Cipher::encrypt_many`], [`Cipher::decrypt`], [`Integ::sign`],
//!   [`Integ::verify`]) do not allocate: cipher key schedules are expanded once in `new` and
//!   only read afterwards; HMAC pad states are precomputed in `new` and cloned on the stack
//!   per call.
//! - Secret-dependent work is constant time: MAC comparison uses `subtle`, and modular
//!   exponentiation runs over a fixed number of exponent bits (see `dh.rs`).
//!
//! Known limitation: the RustCrypto `hmac` 0.12 / `digest` 0.10 states (the precomputed
//! `K ^ ipad` / `K ^ opad` hash states) offer no zeroize-on-drop; they are derived from the key
//! and are not wiped when an [`Integ`] is dropped. AES/DES key schedules are wiped (crate
//! feature `zeroize`).

mod dh;
mod dh_groups;
mod dh_mont;
mod encr;
pub mod handover;
mod integ;
pub mod keys;
mod mac;
mod prf;
mod sha1_multi;

#[doc(hidden)]
pub use dh::internals as dh_internals;
pub use dh::{DhGroup, DhPrivate};
pub use encr::{Cipher, EncrAlg, PAR_BLOCKS};
pub use integ::{Integ, IntegAlg};
pub use keys::{
    child_keymat, derive_child_keys, derive_ike_keys, psk_auth, rekey_skeyseed, skeyseed,
    ChildKeys, IkeKeys,
};
pub use prf::PrfAlg;

/// Errors of the crypto layer. None of them carries secret data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A key does not have the length the algorithm requires.
    #[error("invalid key length")]
    InvalidKeyLength,
    /// An IV does not have the cipher's block length (RFC 3602 §3, RFC 2451 §3).
    #[error("invalid IV length")]
    InvalidIvLength,
    /// CBC input is not a whole number of cipher blocks (RFC 3602 §2.4).
    #[error("data length is not a multiple of the cipher block size")]
    NotBlockAligned,
    /// A decryption output buffer is not as long as its input.
    #[error("output buffer length differs from the input's")]
    OutputLength,
    /// A peer's Diffie-Hellman public value failed the RFC 6989 checks.
    #[error("invalid Diffie-Hellman public value: {0}")]
    InvalidDhPublic(&'static str),
    /// `prf+` cannot produce more than 255 PRF outputs (RFC 7296 §2.13).
    #[error("prf+ output of {requested} bytes exceeds 255 * {output_len}")]
    PrfPlusTooLong {
        /// Bytes asked for.
        requested: usize,
        /// Output length of the PRF.
        output_len: usize,
    },
}

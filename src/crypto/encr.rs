//! Encryption transforms (IKEv2 transform type 1): block ciphers in CBC mode, used both for
//! the IKE SK payload (RFC 7296 §3.14) and for ESP (RFC 4303).
//!
//! Invariants:
//! - A [`Cipher`] owns the key schedule, expanded once in [`Cipher::new`] and only read
//!   afterwards (`&self` block operations): encryption and decryption neither allocate nor
//!   copy the schedule, and a `Cipher` can be shared between packets.
//! - CBC chaining is done here (RFC 3602 §2.1): encryption block by block, decryption in
//!   batches of [`PAR_BLOCKS`] so AES-NI/ARMv8 backends pipeline them.
//! - CBC works in place on whole blocks only; the caller (ESP/SK framing) owns padding
//!   (RFC 4303 §2.4, RFC 7296 §3.14). Misaligned data and wrong-length IVs are errors.
//! - Key schedules are wiped on drop (`aes`/`des` feature `zeroize`); `Debug` prints the
//!   algorithm only.

use aes::cipher::inout::InOutBuf;
use aes::cipher::{Block, BlockDecrypt, BlockEncrypt, BlockSizeUser, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use des::{Des, TdesEde3};

use super::CryptoError;

/// IKEv2 encryption transforms (IANA "Transform Type 1 - Encryption Algorithm Transform IDs").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncrAlg {
    /// ENCR_DES = 2 (RFC 2405). Legacy.
    DesCbc,
    /// ENCR_3DES = 3 (RFC 2451). Legacy.
    TripleDesCbc,
    /// ENCR_AES_CBC = 12 with a 128-bit key (RFC 3602).
    AesCbc128,
    /// ENCR_AES_CBC = 12 with a 192-bit key (RFC 3602).
    AesCbc192,
    /// ENCR_AES_CBC = 12 with a 256-bit key (RFC 3602).
    AesCbc256,
}

/// ENCR_DES (IANA IKEv2 Transform Type 1).
const ENCR_DES: u16 = 2;
/// ENCR_3DES (IANA IKEv2 Transform Type 1).
const ENCR_3DES: u16 = 3;
/// ENCR_AES_CBC (IANA IKEv2 Transform Type 1).
const ENCR_AES_CBC: u16 = 12;

impl EncrAlg {
    /// Maps an IKEv2 encryption transform and its Key Length attribute (in bits).
    ///
    /// AES-CBC needs the Key Length attribute (RFC 7296 §3.3.5, RFC 3602 §5); DES and 3DES
    /// have fixed key sizes and the attribute MUST NOT be present (RFC 7296 §3.3.5), so a
    /// transform carrying one is not accepted.
    pub fn from_ike(transform_id: u16, key_length_bits: Option<u16>) -> Option<Self> {
        match (transform_id, key_length_bits) {
            (ENCR_DES, None) => Some(EncrAlg::DesCbc),
            (ENCR_3DES, None) => Some(EncrAlg::TripleDesCbc),
            (ENCR_AES_CBC, Some(128)) => Some(EncrAlg::AesCbc128),
            (ENCR_AES_CBC, Some(192)) => Some(EncrAlg::AesCbc192),
            (ENCR_AES_CBC, Some(256)) => Some(EncrAlg::AesCbc256),
            _ => None,
        }
    }

    /// The IKEv2 transform ID.
    pub fn transform_id(self) -> u16 {
        match self {
            EncrAlg::DesCbc => ENCR_DES,
            EncrAlg::TripleDesCbc => ENCR_3DES,
            EncrAlg::AesCbc128 | EncrAlg::AesCbc192 | EncrAlg::AesCbc256 => ENCR_AES_CBC,
        }
    }

    /// The Key Length attribute value (bits) to put in a proposal, if the transform has one.
    pub fn key_length_attr(self) -> Option<u16> {
        match self {
            EncrAlg::DesCbc | EncrAlg::TripleDesCbc => None,
            EncrAlg::AesCbc128 => Some(128),
            EncrAlg::AesCbc192 => Some(192),
            EncrAlg::AesCbc256 => Some(256),
        }
    }

    /// Key length in bytes (RFC 2405: 8 incl. parity bits; RFC 2451 §2.2: 24; RFC 3602 §2.2).
    pub fn key_len(self) -> usize {
        match self {
            EncrAlg::DesCbc => 8,
            EncrAlg::TripleDesCbc => 24,
            EncrAlg::AesCbc128 => 16,
            EncrAlg::AesCbc192 => 24,
            EncrAlg::AesCbc256 => 32,
        }
    }

    /// Cipher block length in bytes (64-bit DES blocks, 128-bit AES blocks).
    pub fn block_len(self) -> usize {
        match self {
            EncrAlg::DesCbc | EncrAlg::TripleDesCbc => 8,
            EncrAlg::AesCbc128 | EncrAlg::AesCbc192 | EncrAlg::AesCbc256 => 16,
        }
    }

    /// IV length in bytes: one block (RFC 2405, RFC 2451 §3, RFC 3602 §3).
    pub fn iv_len(self) -> usize {
        self.block_len()
    }

    /// DES and 3DES are accepted only because the API offers them (RFC 8247 §2.1).
    pub fn is_legacy(self) -> bool {
        matches!(self, EncrAlg::DesCbc | EncrAlg::TripleDesCbc)
    }
}

/// A keyed CBC cipher, reused for every packet of an SA.
#[derive(Clone)]
pub struct Cipher {
    alg: EncrAlg,
    schedule: Schedule,
}

/// The expanded key schedule for each block cipher, boxed so that each SA pays for its own
/// algorithm's schedule (AES-128: 704 bytes) rather than the largest one (AES-256: 960):
/// at 10,000 clients that is 5 MiB. Only the key schedule is boxed; no call allocates.
#[derive(Clone)]
enum Schedule {
    Des(Box<Des>),
    TripleDes(Box<TdesEde3>),
    Aes128(Box<Aes128>),
    Aes192(Box<Aes192>),
    Aes256(Box<Aes256>),
}

impl Cipher {
    /// Expands the key schedule. `key` must be exactly [`EncrAlg::key_len`] bytes.
    pub fn new(alg: EncrAlg, key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        let schedule = match alg {
            EncrAlg::DesCbc => Schedule::Des(Box::new(expand(key)?)),
            EncrAlg::TripleDesCbc => Schedule::TripleDes(Box::new(expand(key)?)),
            EncrAlg::AesCbc128 => Schedule::Aes128(Box::new(expand(key)?)),
            EncrAlg::AesCbc192 => Schedule::Aes192(Box::new(expand(key)?)),
            EncrAlg::AesCbc256 => Schedule::Aes256(Box::new(expand(key)?)),
        };
        Ok(Cipher { alg, schedule })
    }

    /// The algorithm this cipher was keyed for.
    pub fn alg(&self) -> EncrAlg {
        self.alg
    }

    /// CBC-encrypts `data` in place with `iv` (RFC 3602 §2).
    ///
    /// `iv` must be one block long and `data.len()` a multiple of the block length.
    pub fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        self.check(iv, data)?;
        match &self.schedule {
            Schedule::Des(c) => cbc_encrypt(&**c, iv, data),
            Schedule::TripleDes(c) => cbc_encrypt(&**c, iv, data),
            Schedule::Aes128(c) => cbc_encrypt(&**c, iv, data),
            Schedule::Aes192(c) => cbc_encrypt(&**c, iv, data),
            Schedule::Aes256(c) => cbc_encrypt(&**c, iv, data),
        }
    }

    /// CBC-decrypts `data` in place with `iv` (RFC 3602 §2).
    ///
    /// `iv` must be one block long and `data.len()` a multiple of the block length.
    pub fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        self.check(iv, data)?;
        match &self.schedule {
            Schedule::Des(c) => cbc_decrypt(&**c, iv, data),
            Schedule::TripleDes(c) => cbc_decrypt(&**c, iv, data),
            Schedule::Aes128(c) => cbc_decrypt(&**c, iv, data),
            Schedule::Aes192(c) => cbc_decrypt(&**c, iv, data),
            Schedule::Aes256(c) => cbc_decrypt(&**c, iv, data),
        }
    }

    fn check(&self, iv: &[u8], data: &[u8]) -> Result<(), CryptoError> {
        if iv.len() != self.alg.iv_len() {
            return Err(CryptoError::InvalidIvLength);
        }
        if data.len() % self.alg.block_len() != 0 {
            return Err(CryptoError::NotBlockAligned);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("alg", &self.alg)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn expand<C: KeyInit>(key: &[u8]) -> Result<C, CryptoError> {
    C::new_from_slice(key).map_err(|_| CryptoError::InvalidKeyLength)
}

/// Blocks decrypted per batch: the AES backends' parallel width (8 for AES-NI).
const PAR_BLOCKS: usize = 8;

/// CBC encryption in place: `C_i = E(P_i ^ C_{i-1})`, `C_0 = IV` (RFC 3602 §2.1).
/// `iv` is one block and `data` whole blocks (checked by the caller).
fn cbc_encrypt<C: BlockEncrypt>(cipher: &C, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
    let mut chain = block_from::<C>(iv)?;
    for chunk in data.chunks_exact_mut(C::block_size()) {
        let block = Block::<C>::from_mut_slice(chunk);
        xor_into(block, &chain);
        cipher.encrypt_block(block);
        chain.copy_from_slice(block);
    }
    Ok(())
}

/// CBC decryption in place: `P_i = D(C_i) ^ C_{i-1}` (RFC 3602 §2.1), decrypting up to
/// [`PAR_BLOCKS`] blocks at once and keeping their ciphertext for the chaining XOR.
fn cbc_decrypt<C: BlockDecrypt>(cipher: &C, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
    let block_len = C::block_size();
    let mut chain = block_from::<C>(iv)?;
    let mut saved: [Block<C>; PAR_BLOCKS] = Default::default();
    for batch in data.chunks_mut(PAR_BLOCKS * block_len) {
        for (copy, ct) in saved.iter_mut().zip(batch.chunks_exact(block_len)) {
            copy.copy_from_slice(ct);
        }
        let (blocks, _none) = InOutBuf::from(&mut *batch).into_chunks::<C::BlockSize>();
        cipher.decrypt_blocks_inout(blocks);
        for (i, pt) in batch.chunks_exact_mut(block_len).enumerate() {
            let previous = if i == 0 { &chain } else { &saved[i - 1] };
            xor_into(pt, previous);
        }
        let used = batch.len() / block_len;
        if let Some(last) = saved[..used].last() {
            chain.clone_from(last);
        }
    }
    Ok(())
}

fn block_from<C: BlockSizeUser>(bytes: &[u8]) -> Result<Block<C>, CryptoError> {
    if bytes.len() != C::block_size() {
        return Err(CryptoError::InvalidIvLength);
    }
    Ok(Block::<C>::clone_from_slice(bytes))
}

fn xor_into(target: &mut [u8], mask: &[u8]) {
    for (t, m) in target.iter_mut().zip(mask) {
        *t ^= m;
    }
}

#[cfg(test)]
#[path = "tests/encr.rs"]
mod tests;

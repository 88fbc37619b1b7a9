//! Encryption transforms (IKEv2 transform type 1): block ciphers in CBC mode, used both for
//! the IKE SK payload (RFC 7296 §3.14) and for ESP (RFC 4303).
//!
//! Invariants:
//! - A [`Cipher`] owns the key schedule, expanded once in [`Cipher::new`] and only read
//!   afterwards (`&self` block operations): encryption and decryption neither allocate nor
//!   copy the schedule, and a `Cipher` can be shared between packets.
//! - CBC chaining is done here (RFC 3602 §2.1). Encryption interleaves the chains of up to
//!   [`PAR_BLOCKS`] messages ([`Cipher::encrypt_many`]) and decryption hands all blocks of a
//!   message to the cipher at once, so AES-NI/ARMv8 backends pipeline them.
//! - Encryption works in place after the IV, decryption from one buffer into another; both
//!   on whole blocks only: the caller (ESP/SK framing) owns padding
//!   (RFC 4303 §2.4, RFC 7296 §3.14). Misaligned data and wrong-length IVs are errors.
//! - Key schedules are wiped on drop (`aes`/`des` feature `zeroize`); `Debug` prints the
//!   algorithm only.

use std::marker::PhantomData;

use aes::cipher::generic_array::{ArrayLength, GenericArray};
use aes::cipher::inout::InOutBuf;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{
    Block, BlockBackend, BlockClosure, BlockDecrypt, BlockEncrypt, BlockSizeUser, KeyInit,
};
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
    /// Every transform, for exhaustive tests.
    pub const ALL: [EncrAlg; 5] = [
        EncrAlg::DesCbc,
        EncrAlg::TripleDesCbc,
        EncrAlg::AesCbc128,
        EncrAlg::AesCbc192,
        EncrAlg::AesCbc256,
    ];

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

    /// CBC-encrypts one message laid out as `IV || plaintext`, in place after the IV
    /// (RFC 3602 §2). The plaintext must be whole blocks.
    pub fn encrypt(&self, iv_and_data: &mut [u8]) -> Result<(), CryptoError> {
        self.encrypt_many(&mut [iv_and_data])
    }

    /// CBC-encrypts several independent messages, each laid out as `IV || plaintext` and
    /// encrypted in place after its IV.
    ///
    /// CBC encryption of one message is serial (each block waits for the one before), so
    /// the chains of up to [`PAR_BLOCKS`] messages are interleaved: their i-th blocks go to
    /// the cipher together and AES-NI pipelines them. Every item is checked first; on an
    /// error nothing is encrypted.
    pub fn encrypt_many(&self, items: &mut [&mut [u8]]) -> Result<(), CryptoError> {
        let iv_len = self.alg.iv_len();
        for item in items.iter() {
            let data = item.get(iv_len..).ok_or(CryptoError::InvalidIvLength)?;
            self.check(&item[..iv_len], data)?;
        }
        match &self.schedule {
            Schedule::Des(c) => cbc_encrypt_interleaved(&**c, items),
            Schedule::TripleDes(c) => cbc_encrypt_interleaved(&**c, items),
            Schedule::Aes128(c) => cbc_encrypt_interleaved(&**c, items),
            Schedule::Aes192(c) => cbc_encrypt_interleaved(&**c, items),
            Schedule::Aes256(c) => cbc_encrypt_interleaved(&**c, items),
        }
        Ok(())
    }

    /// CBC-decrypts `input` into `output` (same length) with `iv` (RFC 3602 §2).
    ///
    /// `iv` must be one block long and `input.len()` a multiple of the block length.
    pub fn decrypt(&self, iv: &[u8], input: &[u8], output: &mut [u8]) -> Result<(), CryptoError> {
        self.check(iv, input)?;
        match &self.schedule {
            Schedule::Des(c) => cbc_decrypt(&**c, iv, input, output),
            Schedule::TripleDes(c) => cbc_decrypt(&**c, iv, input, output),
            Schedule::Aes128(c) => cbc_decrypt(&**c, iv, input, output),
            Schedule::Aes192(c) => cbc_decrypt(&**c, iv, input, output),
            Schedule::Aes256(c) => cbc_decrypt(&**c, iv, input, output),
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

/// Blocks handed to the cipher at once: the AES backends' parallel width (8 for AES-NI).
pub const PAR_BLOCKS: usize = 8;

/// CBC encryption in place, `C_i = E(P_i ^ C_{i-1})` with `C_0 = IV` (RFC 3602 §2.1), of
/// items laid out as `IV || plaintext` (checked by the caller). Up to [`PAR_BLOCKS`] items
/// advance together, one lane each: a lane holds its item's chaining value, takes the next
/// plaintext block in, and the lanes are encrypted together (the backend's parallel path).
/// A lane whose item has ended keeps being encrypted and is ignored: cheaper than
/// regrouping, and never more work than the group's longest item.
///
/// The loop runs inside the cipher's backend ([`BlockClosure`]): one CPU-feature dispatch
/// per call instead of one per block step, and the loop is compiled with the backend's
/// target features, so the AES-NI rounds inline into it (a third of the batched seal went
/// to that dispatch and the copies around it, BENCHMARKS.md "Sealing a batch").
fn cbc_encrypt_interleaved<C: BlockEncrypt>(cipher: &C, items: &mut [&mut [u8]]) {
    cipher.encrypt_with_backend(CbcEncryptMany::<C::BlockSize> {
        items,
        block: PhantomData,
    });
}

/// The CBC loop of [`cbc_encrypt_interleaved`] as a closure over the cipher's backend.
struct CbcEncryptMany<'a, 'b, BS> {
    items: &'a mut [&'b mut [u8]],
    block: PhantomData<BS>,
}

impl<BS: ArrayLength<u8>> BlockSizeUser for CbcEncryptMany<'_, '_, BS> {
    type BlockSize = BS;
}

impl<BS: ArrayLength<u8>> BlockClosure for CbcEncryptMany<'_, '_, BS> {
    fn call<B: BlockBackend<BlockSize = BS>>(self, backend: &mut B) {
        let bl = BS::USIZE;
        let par = B::ParBlocksSize::USIZE;
        let mut lanes: [Block<B>; PAR_BLOCKS] = Default::default();
        for group in self.items.chunks_mut(PAR_BLOCKS) {
            let mut blocks = 0;
            for (lane, item) in lanes.iter_mut().zip(group.iter()) {
                lane.copy_from_slice(&item[..bl]);
                blocks = blocks.max(item.len() / bl);
            }
            // Whole parallel batches of lanes: a short group's spare lanes ride along.
            let busy = (group.len().div_ceil(par) * par).min(PAR_BLOCKS);
            for i in 1..blocks {
                let range = i * bl..(i + 1) * bl;
                for (lane, item) in lanes.iter_mut().zip(group.iter()) {
                    if let Some(plain) = item.get(range.clone()) {
                        xor_block(lane, plain);
                    }
                }
                let mut batches = lanes[..busy].chunks_exact_mut(par);
                for batch in &mut batches {
                    backend.proc_par_blocks_inplace(GenericArray::from_mut_slice(batch));
                }
                for lane in batches.into_remainder() {
                    backend.proc_block_inplace(lane);
                }
                for (lane, item) in lanes.iter().zip(group.iter_mut()) {
                    if let Some(out) = item.get_mut(range.clone()) {
                        copy_block(out, lane);
                    }
                }
            }
        }
    }
}

/// CBC decryption, `P_i = D(C_i) ^ C_{i-1}` (RFC 3602 §2.1): every block is decrypted in one
/// call (the backend pipelines them), then each is XORed with the ciphertext block before
/// it, which `input` still holds.
fn cbc_decrypt<C: BlockDecrypt>(
    cipher: &C,
    iv: &[u8],
    input: &[u8],
    output: &mut [u8],
) -> Result<(), CryptoError> {
    let bl = C::block_size();
    let buf = InOutBuf::new(input, output).map_err(|_| CryptoError::OutputLength)?;
    let (blocks, _none) = buf.into_chunks::<C::BlockSize>();
    cipher.decrypt_blocks_inout(blocks);
    for (i, pt) in output.chunks_exact_mut(bl).enumerate() {
        let previous = if i == 0 {
            iv
        } else {
            &input[(i - 1) * bl..i * bl]
        };
        xor_block(pt, previous);
    }
    Ok(())
}

/// `lane ^= plain` for one cipher block. An AES block is XORed as one 128-bit word: the
/// cipher then loads the lane with one 16-byte load, which the CPU forwards from this one
/// store (a byte-wise XOR's sixteen stores cannot be forwarded and stall the load).
fn xor_block(lane: &mut [u8], plain: &[u8]) {
    match (<[u8; 16]>::try_from(&*lane), <[u8; 16]>::try_from(plain)) {
        (Ok(a), Ok(b)) => {
            lane.copy_from_slice(&(u128::from_ne_bytes(a) ^ u128::from_ne_bytes(b)).to_ne_bytes())
        }
        _ => xor_into(lane, plain),
    }
}

/// `out = lane` for one cipher block, an AES block as one 128-bit word.
fn copy_block(out: &mut [u8], lane: &[u8]) {
    match (
        <&mut [u8; 16]>::try_from(&mut *out),
        <[u8; 16]>::try_from(lane),
    ) {
        (Ok(o), Ok(l)) => *o = l,
        _ => out.copy_from_slice(lane),
    }
}

fn xor_into(target: &mut [u8], mask: &[u8]) {
    for (t, m) in target.iter_mut().zip(mask) {
        *t ^= m;
    }
}

#[cfg(test)]
#[path = "tests/encr.rs"]
mod tests;

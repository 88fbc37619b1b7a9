//! The IKEv2 key schedule (RFC 7296 §2.13–§2.18) and the PSK AUTH value (§2.15).
//!
//! Invariants:
//! - Every derived key is a [`SecretBytes`]: zeroized on drop, redacted in `Debug`. Secret
//!   inputs (g^ir, SK_d, the PSK) are fed to the PRF in parts and never concatenated into
//!   an unprotected buffer.
//! - Key lengths come only from the negotiated transforms: SK_d, SK_pi and SK_pr have the
//!   PRF's preferred key length, SK_a* the integrity key length, SK_e* the encryption key
//!   length (RFC 7296 §2.14); Child SA keys are taken in the order of §2.17.
//! - SPIs enter the seeds as their 8 wire octets (`u64::to_be_bytes`), nonces and g^ir as
//!   given.

use super::{EncrAlg, IntegAlg, PrfAlg};
use crate::secret::SecretBytes;

/// The seven IKE SA keys `{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}`
/// (RFC 7296 §2.14). `i` keys protect initiator → responder traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeKeys {
    /// Key for deriving Child SA keys and rekeyed IKE SAs.
    pub sk_d: SecretBytes,
    /// Integrity key, initiator → responder.
    pub sk_ai: SecretBytes,
    /// Integrity key, responder → initiator.
    pub sk_ar: SecretBytes,
    /// Encryption key, initiator → responder.
    pub sk_ei: SecretBytes,
    /// Encryption key, responder → initiator.
    pub sk_er: SecretBytes,
    /// Key for the initiator's AUTH payload (§2.15).
    pub sk_pi: SecretBytes,
    /// Key for the responder's AUTH payload (§2.15).
    pub sk_pr: SecretBytes,
}

/// Child SA (ESP) keys taken from KEYMAT (RFC 7296 §2.17). `i` = initiator → responder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildKeys {
    /// ESP encryption key, initiator → responder.
    pub encr_i: SecretBytes,
    /// ESP integrity key, initiator → responder.
    pub integ_i: SecretBytes,
    /// ESP encryption key, responder → initiator.
    pub encr_r: SecretBytes,
    /// ESP integrity key, responder → initiator.
    pub integ_r: SecretBytes,
}

/// `SKEYSEED = prf(Ni | Nr, g^ir)` (RFC 7296 §2.14). `ni`/`nr` are the nonce payload data.
pub fn skeyseed(prf: PrfAlg, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> SecretBytes {
    // The PRF key is Ni | Nr; HMAC takes it at any length, so it is concatenated (nonces are
    // public).
    let mut key = Vec::with_capacity(ni.len() + nr.len());
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    prf.prf(&key, g_ir)
}

/// `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` for an IKE SA rekey (RFC 7296 §2.18).
/// `ni`/`nr` are the nonces of the CREATE_CHILD_SA exchange.
pub fn rekey_skeyseed(
    prf: PrfAlg,
    old_sk_d: &[u8],
    g_ir: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> SecretBytes {
    prf.prf_parts(old_sk_d, &[g_ir, ni, nr])
}

/// `{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)`
/// (RFC 7296 §2.14). `spi_i`/`spi_r` are the IKE header SPIs read as big-endian `u64`.
#[allow(clippy::too_many_arguments)] // the eight §2.14 inputs; a struct would only rename them
pub fn derive_ike_keys(
    prf: PrfAlg,
    encr: EncrAlg,
    integ: IntegAlg,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
) -> IkeKeys {
    let (d_len, a_len, e_len) = (prf.key_len(), integ.key_len(), encr.key_len());
    let total = 3 * d_len + 2 * a_len + 2 * e_len;
    let (spi_i, spi_r) = (spi_i.to_be_bytes(), spi_r.to_be_bytes());
    // Cannot fail: total ≤ 3·64 + 2·64 + 2·32 = 384 bytes, below prf+'s smallest limit of
    // 255·16 = 4080 bytes (HMAC-MD5).
    let keymat = prf
        .prf_plus_parts(skeyseed, &[ni, nr, &spi_i, &spi_r], total)
        .expect("IKE SA keys are far below the prf+ limit");
    let mut rest = keymat.expose();
    let mut take = |len: usize| {
        let (key, tail) = rest.split_at(len);
        rest = tail;
        SecretBytes::from_slice(key)
    };
    IkeKeys {
        sk_d: take(d_len),
        sk_ai: take(a_len),
        sk_ar: take(a_len),
        sk_ei: take(e_len),
        sk_er: take(e_len),
        sk_pi: take(d_len),
        sk_pr: take(d_len),
    }
}

/// What a new IKE SA's SKEYSEED is computed from. No `Debug`: it holds secrets.
#[derive(Clone, Copy)]
pub enum SkeyseedFrom<'a> {
    /// IKE_SA_INIT's Diffie-Hellman secret: [`skeyseed`] (§2.14).
    Init { g_ir: &'a [u8] },
    /// A CREATE_CHILD_SA that rekeys an IKE SA: the old SA's SK_d and the new DH secret,
    /// [`rekey_skeyseed`] (§2.18).
    Rekey { old_sk_d: &'a [u8], g_ir: &'a [u8] },
}

/// The keys of a new IKE SA, in either role: SKEYSEED from `from`, then
/// [`derive_ike_keys`] with the exchange's nonces and the new SA's SPIs. The one key
/// schedule step of IKE_SA_INIT and of the IKE SA rekey (RFC 7296 §2.14, §2.18).
pub fn derive_ike_sa(
    prf: PrfAlg,
    encr: EncrAlg,
    integ: IntegAlg,
    from: SkeyseedFrom<'_>,
    (ni, nr): (&[u8], &[u8]),
    (spi_i, spi_r): (u64, u64),
) -> IkeKeys {
    let seed = match from {
        SkeyseedFrom::Init { g_ir } => skeyseed(prf, ni, nr, g_ir),
        SkeyseedFrom::Rekey { old_sk_d, g_ir } => rekey_skeyseed(prf, old_sk_d, g_ir, ni, nr),
    };
    derive_ike_keys(prf, encr, integ, seed.expose(), ni, nr, spi_i, spi_r)
}

/// `KEYMAT = prf+(SK_d, Ni | Nr)`, or `prf+(SK_d, g^ir (new) | Ni | Nr)` when the
/// CREATE_CHILD_SA exchange carried KE payloads (RFC 7296 §2.17), truncated to `len` bytes.
///
/// Errors only when `len` exceeds prf+'s 255 blocks.
pub fn child_keymat(
    prf: PrfAlg,
    sk_d: &[u8],
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Result<SecretBytes, super::CryptoError> {
    match g_ir {
        Some(g_ir) => prf.prf_plus_parts(sk_d, &[g_ir, ni, nr], len),
        None => prf.prf_plus_parts(sk_d, &[ni, nr], len),
    }
}

/// Child SA keys from KEYMAT (RFC 7296 §2.17): all initiator → responder keys first, and
/// within a direction the encryption key before the integrity key (§2.17, citing RFC 4301).
pub fn derive_child_keys(
    prf: PrfAlg,
    sk_d: &[u8],
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    encr: EncrAlg,
    integ: IntegAlg,
) -> ChildKeys {
    let (e_len, a_len) = (encr.key_len(), integ.key_len());
    // Cannot fail: 2·(32 + 64) = 192 bytes at most, below prf+'s smallest limit of 4080.
    let keymat = child_keymat(prf, sk_d, g_ir, ni, nr, 2 * (e_len + a_len))
        .expect("Child SA keys are far below the prf+ limit");
    let mut rest = keymat.expose();
    let mut take = |len: usize| {
        let (key, tail) = rest.split_at(len);
        rest = tail;
        SecretBytes::from_slice(key)
    };
    ChildKeys {
        encr_i: take(e_len),
        integ_i: take(a_len),
        encr_r: take(e_len),
        integ_r: take(a_len),
    }
}

/// The pad string of the shared-key AUTH computation, 17 octets, no NUL (RFC 7296 §2.15).
pub const KEY_PAD_IKEV2: &[u8] = b"Key Pad for IKEv2";

/// The AUTH payload data for shared-key authentication (RFC 7296 §2.15):
///
/// ```text
/// AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
/// SignedOctets = RealMessage | Nonce | prf(SK_px, RestOfIDPayload)
/// ```
///
/// For the initiator's AUTH: `message` = the IKE_SA_INIT request as sent, `nonce` = Nr,
/// `sk_p` = SK_pi, `id_body` = the IDi payload body. For the responder's AUTH: the
/// IKE_SA_INIT response, Ni, SK_pr and the IDr body. `id_body` ("RestOfIDPayload") starts at
/// the ID Type octet, i.e. the ID payload without its 4-octet generic header. Compare a
/// received AUTH with [`SecretBytes::ct_eq`].
pub fn psk_auth(
    prf: PrfAlg,
    psk: &[u8],
    message: &[u8],
    nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> SecretBytes {
    let pad_key = prf.prf(psk, KEY_PAD_IKEV2);
    let maced_id = prf.prf(sk_p, id_body);
    prf.prf_parts(pad_key.expose(), &[message, nonce, maced_id.expose()])
}

#[cfg(test)]
#[path = "tests/keys.rs"]
mod tests;

//! The Encrypted payload (RFC 7296 §3.14): IV | ciphertext | ICV, where the ICV covers the
//! whole message from the IKE header to the end of the ciphertext.
//!
//! Invariant: [`SkCrypto::open`] verifies the ICV (constant time) before it decrypts anything,
//! and its type separates the two outcomes: a message that did not authenticate
//! ([`Unauthentic`], dropped silently by every caller) and an authentic one (its payloads, or
//! the syntax error it holds).

use rand::RngCore;

use crate::crypto::{Cipher, EncrAlg, IkeKeys, Integ, IntegAlg};
use crate::secret::SecretBytes;
use crate::wire::{self, Header, Message, Payload, PayloadType, SkPayload, SkfPayload};

use super::IkeError;

/// Why a protected message was dropped before it authenticated. Every caller drops such a message without
/// an answer and without any change of state (RFC 7296 §2.21.2, §3.14); the reason is for
/// counters and debug logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unauthentic {
    /// The last payload is not an Encrypted payload.
    NoSk,
    /// Too short for IV, one block and the ICV.
    TooShort,
    /// The ICV does not verify.
    BadIcv,
    /// An Encrypted Fragment numbered impossibly (RFC 7383 §2.5), checked before its ICV.
    FragmentNumbering,
}

impl From<Unauthentic> for IkeError {
    fn from(_: Unauthentic) -> Self {
        IkeError::IntegrityCheckFailed
    }
}

/// Keyed transforms of one IKE SA, in the direction of one role.
pub(crate) struct SkCrypto {
    encr: EncrAlg,
    integ: IntegAlg,
    out: Keys,
    inn: Keys,
}

/// One direction's keys. The keyed transforms are built per message: IKE messages are rare,
/// and an AES key schedule with its HMAC states is ~2.6 KiB an IKE SA would otherwise keep
/// for its whole life (10,000 clients: 26 MiB).
struct Keys {
    encr: SecretBytes,
    integ: SecretBytes,
}

impl SkCrypto {
    /// Keys of the responder: send with SK_er/SK_ar, receive with SK_ei/SK_ai.
    pub fn responder(encr: EncrAlg, integ: IntegAlg, keys: &IkeKeys) -> Result<Self, IkeError> {
        Self::new(
            encr,
            integ,
            (&keys.sk_er, &keys.sk_ar),
            (&keys.sk_ei, &keys.sk_ai),
        )
    }

    /// Keys of the initiator: send with SK_ei/SK_ai, receive with SK_er/SK_ar.
    pub fn initiator(encr: EncrAlg, integ: IntegAlg, keys: &IkeKeys) -> Result<Self, IkeError> {
        Self::new(
            encr,
            integ,
            (&keys.sk_ei, &keys.sk_ai),
            (&keys.sk_er, &keys.sk_ar),
        )
    }

    fn new(
        encr: EncrAlg,
        integ: IntegAlg,
        out: (&SecretBytes, &SecretBytes),
        inn: (&SecretBytes, &SecretBytes),
    ) -> Result<Self, IkeError> {
        let sk = Self {
            encr,
            integ,
            out: Keys {
                encr: out.0.clone(),
                integ: out.1.clone(),
            },
            inn: Keys {
                encr: inn.0.clone(),
                integ: inn.1.clone(),
            },
        };
        // Keyed once here so that a wrong key length is an error now; each message keys
        // them again through the same two functions.
        for k in [&sk.out, &sk.inn] {
            sk.cipher_for(k)?;
            sk.integ_for(k)?;
        }
        Ok(sk)
    }

    /// Verifies and decrypts the SK payload of `msg` (parsed from `raw`). The outer `Err` is a
    /// message that did not authenticate; the inner result is that of an authentic message:
    /// its payloads, or the syntax error it holds (answered with a notify).
    pub fn open(
        &self,
        raw: &[u8],
        msg: &Message,
    ) -> Result<Result<Vec<Payload>, IkeError>, Unauthentic> {
        let Some(Payload::Sk(sk)) = msg.payloads.last() else {
            return Err(Unauthentic::NoSk);
        };
        Ok(self
            .open_body(raw, sk.first_inner, &sk.body)?
            .and_then(|(first, plain)| Ok(wire::parse_payloads(first, &plain)?)))
    }

    /// Verifies `raw`'s ICV and decrypts `body` (IV | ciphertext | ICV, the last payload of
    /// `raw`), returning the plaintext without padding. Shared by SK and SKF (RFC 7383 §2.5).
    /// Nothing of `body` is looked at before the ICV verified, but its length.
    pub fn open_body(
        &self,
        raw: &[u8],
        first: PayloadType,
        body: &[u8],
    ) -> Result<Result<(PayloadType, Vec<u8>), IkeError>, Unauthentic> {
        let icv_len = self.integ.icv_len();
        let iv_len = self.encr.iv_len();
        let block = self.encr.block_len();
        if body.len() < iv_len + icv_len + block || raw.len() < body.len() {
            return Err(Unauthentic::TooShort);
        }
        let (signed, icv) = raw.split_at(raw.len() - icv_len);
        // `new` keyed this transform once; an error here cannot happen and drops the message.
        let integ = self.integ_for(&self.inn).map_err(|_| Unauthentic::BadIcv)?;
        if !integ.verify(signed, icv) {
            return Err(Unauthentic::BadIcv);
        }
        Ok(self.decrypt(first, &body[..body.len() - icv_len]))
    }

    /// Decrypts IV | ciphertext of an authentic message and strips the padding (§3.14).
    fn decrypt(
        &self,
        first: PayloadType,
        iv_and_ciphertext: &[u8],
    ) -> Result<(PayloadType, Vec<u8>), IkeError> {
        let (iv, ciphertext) = iv_and_ciphertext.split_at(self.encr.iv_len());
        if ciphertext.len() % self.encr.block_len() != 0 {
            return Err(IkeError::InvalidSyntax("SK ciphertext not block aligned"));
        }
        let mut plain = vec![0u8; ciphertext.len()];
        self.cipher_for(&self.inn)?
            .decrypt(iv, ciphertext, &mut plain)
            .map_err(|_| IkeError::InvalidSyntax("SK decryption"))?;
        // The last octet is the pad length; padding may have any content.
        let pad_len = usize::from(*plain.last().unwrap_or(&0));
        if pad_len + 1 > plain.len() {
            return Err(IkeError::InvalidSyntax("SK pad length"));
        }
        plain.truncate(plain.len() - pad_len - 1);
        Ok((first, plain))
    }

    /// Builds a protected message: `header` with an SK payload carrying `inner`.
    ///
    /// Inner payloads too long or too many for their fields are
    /// [`IkeError::Wire`]`(`[`WireError::TooLong`](wire::WireError::TooLong)`)`.
    pub fn seal(
        &self,
        header: Header,
        inner: &[Payload],
        rng: &mut dyn RngCore,
    ) -> Result<Vec<u8>, IkeError> {
        let mut plain = Vec::new();
        let first = wire::emit_payloads(inner, &mut plain)?;
        let body = self.seal_body(plain, rng)?;
        let msg = Message {
            header,
            payloads: vec![Payload::Sk(SkPayload {
                first_inner: first,
                body,
            })],
        };
        self.sign(msg.emit()?)
    }

    /// Like [`Self::seal`], but split into Encrypted Fragment messages of at most `max`
    /// octets when the whole message would be larger (RFC 7383 §2.5). Errors as
    /// [`Self::seal`], and when more than 65535 fragments would be needed (the 16-bit Total
    /// Fragments, RFC 7383 §2.5).
    pub fn seal_fragments(
        &self,
        header: Header,
        inner: &[Payload],
        max: usize,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<Vec<u8>>, IkeError> {
        let whole = self.seal(header.clone(), inner, rng)?;
        if whole.len() <= max {
            return Ok(vec![whole]);
        }
        let mut plain = Vec::new();
        let first = wire::emit_payloads(inner, &mut plain)?;
        let alg = self.encr;
        // Header, SKF header (8), IV, ICV and up to a block of padding around each chunk.
        let overhead =
            wire::IKE_HEADER_LEN + 8 + alg.iv_len() + self.integ.icv_len() + alg.block_len();
        let chunk = max.saturating_sub(overhead).max(alg.block_len());
        let chunks: Vec<&[u8]> = plain.chunks(chunk).collect();
        let total = u16::try_from(chunks.len()).map_err(|_| wire::WireError::TooLong {
            what: "Total Fragments",
            len: chunks.len(),
        })?;
        chunks
            .iter()
            .zip(1..=total)
            .map(|(c, number)| {
                let body = self.seal_body(c.to_vec(), rng)?;
                let skf = SkfPayload {
                    first_inner: if number == 1 {
                        first
                    } else {
                        PayloadType::NONE
                    },
                    fragment_number: number,
                    total_fragments: total,
                    body,
                };
                self.sign(
                    Message {
                        header: header.clone(),
                        payloads: vec![Payload::Skf(skf)],
                    }
                    .emit()?,
                )
            })
            .collect()
    }

    /// IV | ciphertext(plain | padding | pad length) | zeroed ICV, ready for [`Self::sign`].
    pub fn seal_body(
        &self,
        mut plain: Vec<u8>,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<u8>, IkeError> {
        let alg = self.encr;
        let block = alg.block_len();
        let pad_len = (block - (plain.len() + 1) % block) % block;
        plain.extend(std::iter::repeat_n(0u8, pad_len));
        // pad_len < block ≤ 16, so it fits a byte.
        plain.push(pad_len as u8);
        let mut body = vec![0u8; alg.iv_len()];
        rng.fill_bytes(&mut body);
        body.extend_from_slice(&plain);
        // The plaintext was just padded to a block multiple after a one-block IV, so
        // encryption does not fail; if it did, the body must not go out in the clear.
        self.cipher_for(&self.out)?
            .encrypt(&mut body)
            .map_err(|_| IkeError::InvalidSyntax("SK encryption"))?;
        body.extend(std::iter::repeat_n(0u8, self.integ.icv_len()));
        Ok(body)
    }

    /// Writes the ICV over everything before it into the message's last `icv_len` bytes.
    /// A message shorter than the ICV is [`IkeError::InvalidSyntax`].
    pub fn sign(&self, mut bytes: Vec<u8>) -> Result<Vec<u8>, IkeError> {
        let split = bytes
            .len()
            .checked_sub(self.integ.icv_len())
            .ok_or(IkeError::InvalidSyntax("message shorter than its ICV"))?;
        let (signed, icv) = bytes.split_at_mut(split);
        self.integ_for(&self.out)?.sign(signed, icv);
        Ok(bytes)
    }
}

impl SkCrypto {
    /// The cipher keyed with `k`. `new` succeeded on the same keys, so this does not fail in
    /// practice; a wrong key length is an error, not a panic.
    fn cipher_for(&self, k: &Keys) -> Result<Cipher, IkeError> {
        Cipher::new(self.encr, k.encr.expose()).map_err(|_| KEY_LENGTH)
    }

    /// As [`Self::cipher_for`] for the integrity transform.
    fn integ_for(&self, k: &Keys) -> Result<Integ, IkeError> {
        Integ::new(self.integ, k.integ.expose()).map_err(|_| KEY_LENGTH)
    }
}

/// A key whose length does not suit its transform (RFC 7296 §2.14 derives each at its
/// transform's length, so only a bug makes one).
const KEY_LENGTH: IkeError = IkeError::InvalidSyntax("key length");

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::crypto::{derive_ike_keys, PrfAlg};
    use crate::wire::{
        ExchangeType, NotifyType, TrafficSelector, WireError, FLAG_RESPONSE, IKEV2_VERSION,
    };

    fn pair() -> (SkCrypto, SkCrypto) {
        let (encr, integ) = (EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
        let keys = derive_ike_keys(
            PrfAlg::HmacSha1,
            encr,
            integ,
            &[0x5a; 20],
            &[0x01; 32],
            &[0x02; 32],
            0x0102_0304_0506_0708,
            0x1112_1314_1516_1718,
        );
        (
            SkCrypto::responder(encr, integ, &keys).unwrap(),
            SkCrypto::initiator(encr, integ, &keys).unwrap(),
        )
    }

    fn header() -> Header {
        Header {
            spi_i: 0x0102_0304_0506_0708,
            spi_r: 0x1112_1314_1516_1718,
            next_payload: PayloadType::SK,
            version: IKEV2_VERSION,
            exchange: ExchangeType::IKE_AUTH,
            flags: FLAG_RESPONSE,
            message_id: 1,
            length: 0,
        }
    }

    fn selectors(n: u32) -> Vec<TrafficSelector> {
        (0..n)
            .map(|i| TrafficSelector::ipv4_range(Ipv4Addr::from(i), Ipv4Addr::from(i)))
            .collect()
    }

    #[test]
    fn sealed_message_opens_with_the_peers_keys() {
        let (responder, initiator) = pair();
        let mut rng = StdRng::seed_from_u64(1);
        let inner = vec![Payload::TsR(selectors(255))];
        let bytes = responder.seal(header(), &inner, &mut rng).unwrap();
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(initiator.open(&bytes, &msg), Ok(Ok(inner)));
    }

    #[test]
    fn seal_of_payloads_too_long_for_their_fields_is_an_error() {
        let (sk, _) = pair();
        let mut rng = StdRng::seed_from_u64(2);
        let too_many = [Payload::TsR(selectors(256))];
        let too_long = [Payload::notify(
            NotifyType::NAT_DETECTION_SOURCE_IP,
            vec![0xab; 0x1_0000],
        )];
        for (inner, what) in [(&too_many, "Number of TSs"), (&too_long, "payload")] {
            for result in [
                sk.seal(header(), inner, &mut rng),
                sk.seal_fragments(header(), inner, 1280, &mut rng)
                    .map(|fragments| fragments.concat()),
            ] {
                assert!(
                    matches!(result, Err(IkeError::Wire(WireError::TooLong { what: w, .. })) if w == what),
                    "{what}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn sign_refuses_a_message_shorter_than_the_icv() {
        let (sk, _) = pair();
        assert!(matches!(
            sk.sign(vec![0x00; 11]),
            Err(IkeError::InvalidSyntax(_))
        ));
        // HMAC-SHA1-96: a 12-octet ICV over nothing.
        assert_eq!(sk.sign(vec![0x00; 12]).map(|b| b.len()), Ok(12));
    }
}

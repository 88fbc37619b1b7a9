//! IKE fragmentation (RFC 7383): reassembly of Encrypted Fragment payloads of a request.
//!
//! Invariants: a fragment changes nothing before its ICV verified (§2.6); at most
//! [`MAX_FRAGMENTS`] fragments and `max_ike_message` octets of plaintext are buffered per IKE
//! SA, for one message at a time.

use crate::wire::{parse_payloads, Header, Message, Payload, PayloadType, IKE_HEADER_LEN};

use super::responder::{request_hash, SaCore};
use super::sk::Unauthentic;
use super::{IkeError, Limits};

/// Windows sends many small fragments; 64 of them carry more than any IKE_AUTH we accept.
pub(crate) const MAX_FRAGMENTS: u16 = 64;

/// The fragments of one message received so far.
pub(crate) struct Reassembly {
    message_id: u32,
    first: PayloadType,
    /// SHA-256 of fragment 1 as received: a retransmission of the message is recognised by it.
    first_hash: [u8; 32],
    parts: Vec<Option<Vec<u8>>>,
    bytes: usize,
}

/// A complete message: the hash that identifies its retransmission and its payloads (or the
/// syntax error they hold).
pub(crate) type Complete = ([u8; 32], Result<Vec<Payload>, IkeError>);

/// Verifies, decrypts and buffers one fragment; returns the whole message once complete.
/// `Err`: the fragment did not authenticate (or is numbered impossibly) and changed nothing.
pub(crate) fn add(
    sa: &mut SaCore,
    limits: &Limits,
    raw: &[u8],
    msg: &Message,
) -> Result<Option<Complete>, Unauthentic> {
    let Some(Payload::Skf(f)) = msg.payloads.last() else {
        return Err(Unauthentic::NoSk);
    };
    let (number, total) = (f.fragment_number, f.total_fragments);
    if number == 0 || number > total || total > MAX_FRAGMENTS {
        return Err(Unauthentic::FragmentNumbering);
    }
    // Authentic from here on (§2.6: the ICV of each fragment is checked first).
    let (first, plain) = match sa.sk.open_body(raw, f.first_inner, &f.body)? {
        Ok(opened) => opened,
        Err(e) => return Ok(Some((request_hash(raw), Err(e)))),
    };
    let mid = msg.header.message_id;
    let fragments = &mut sa.window.fragments;
    let fresh =
        !matches!(fragments, Some(r) if r.message_id == mid && r.parts.len() == usize::from(total));
    let r = if fresh {
        fragments.insert(Reassembly {
            message_id: mid,
            first: PayloadType::NONE,
            first_hash: [0; 32],
            parts: vec![None; usize::from(total)],
            bytes: 0,
        })
    } else {
        match fragments.as_mut() {
            Some(r) => r,
            None => return Ok(None),
        }
    };
    let slot = usize::from(number - 1);
    if r.parts[slot].is_some() {
        return Ok(None);
    }
    r.bytes += plain.len();
    if r.bytes > limits.max_ike_message {
        *fragments = None;
        return Ok(Some((
            request_hash(raw),
            Err(IkeError::InvalidSyntax("fragmented message too large")),
        )));
    }
    if number == 1 {
        r.first = first;
        r.first_hash = request_hash(raw);
    }
    r.parts[slot] = Some(plain);
    if r.parts.iter().any(Option::is_none) {
        return Ok(None);
    }
    let (first, hash) = (r.first, r.first_hash);
    let whole: Vec<u8> = r.parts.iter().flatten().flatten().copied().collect();
    *fragments = None;
    Ok(Some((
        hash,
        parse_payloads(first, &whole).map_err(IkeError::from),
    )))
}

/// Whether a protected message is unfragmented or the first fragment (by its header and the
/// SKF payload's Fragment Number, RFC 7383 §2.5), without decrypting it.
pub(crate) fn is_first_or_whole(bytes: &[u8]) -> bool {
    match Header::parse(bytes) {
        Ok(h) if h.next_payload == PayloadType::SKF => {
            // Generic payload header (4) then Fragment Number (2).
            let at = IKE_HEADER_LEN + 4;
            bytes.get(at..at + 2) == Some(&[0, 1][..])
        }
        _ => true,
    }
}

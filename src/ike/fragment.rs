//! IKE fragmentation (RFC 7383): reassembly of Encrypted Fragment payloads of a request.
//!
//! Invariants: every fragment's ICV is verified before its plaintext is kept (§2.6); at most
//! [`MAX_FRAGMENTS`] fragments and [`MAX_BYTES`] of plaintext are buffered per IKE SA, for one
//! message at a time.

use crate::wire::{parse_payloads, Header, Message, Payload, PayloadType, IKE_HEADER_LEN};

use super::responder::IkeSa;
use super::IkeError;

/// Windows sends many small fragments; 64 of them carry more than any IKE_AUTH we accept.
pub(crate) const MAX_FRAGMENTS: u16 = 64;
/// Plaintext of one reassembled message.
pub(crate) const MAX_BYTES: usize = 64 * 1024;

/// The fragments of one message received so far.
pub(crate) struct Reassembly {
    message_id: u32,
    first: PayloadType,
    parts: Vec<Option<Vec<u8>>>,
    bytes: usize,
}

/// Verifies, decrypts and buffers one fragment; returns the inner payloads once the message
/// is complete.
pub(crate) fn add(
    sa: &mut IkeSa,
    raw: &[u8],
    msg: &Message,
) -> Result<Option<Vec<Payload>>, IkeError> {
    let Some(Payload::Skf(f)) = msg.payloads.last() else {
        return Err(IkeError::InvalidSyntax("no SKF payload"));
    };
    let (number, total) = (f.fragment_number, f.total_fragments);
    if number == 0 || number > total || total > MAX_FRAGMENTS {
        return Err(IkeError::InvalidSyntax("fragment numbering"));
    }
    let (first, plain) = sa.sk.open_body(raw, f.first_inner, &f.body)?;
    let mid = msg.header.message_id;
    let fresh = !matches!(&sa.fragments, Some(r) if r.message_id == mid && r.parts.len() == usize::from(total));
    if fresh {
        sa.fragments = Some(Reassembly {
            message_id: mid,
            first: PayloadType::NONE,
            parts: vec![None; usize::from(total)],
            bytes: 0,
        });
    }
    let Some(r) = sa.fragments.as_mut() else {
        return Ok(None);
    };
    let slot = usize::from(number - 1);
    if r.parts[slot].is_some() {
        return Ok(None);
    }
    r.bytes += plain.len();
    if r.bytes > MAX_BYTES {
        sa.fragments = None;
        return Err(IkeError::InvalidSyntax("fragmented message too large"));
    }
    if number == 1 {
        r.first = first;
    }
    r.parts[slot] = Some(plain);
    if r.parts.iter().any(Option::is_none) {
        return Ok(None);
    }
    let first = r.first;
    let whole: Vec<u8> = r.parts.iter().flatten().flatten().copied().collect();
    sa.fragments = None;
    Ok(Some(parse_payloads(first, &whole)?))
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

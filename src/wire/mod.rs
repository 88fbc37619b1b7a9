//! IKEv2 (RFC 7296) and ESP (RFC 4303, RFC 3948) wire formats: codecs only.
//!
//! This layer knows nothing of crypto, state, sockets or tokio. It turns datagrams into
//! values ([`Message`], [`Payload`], [`EspHeader`], [`Udp4500`], [`Ipv4Header`]) and values back
//! into bytes.
//!
//! Invariants, for every function that takes untrusted bytes:
//! - it never panics and never reads out of bounds: all reads go through [`Reader`], which
//!   hands out sub-slices only after checking the length;
//! - it never sizes an allocation from a length or count field: what it allocates is
//!   proportional to the bytes actually present;
//! - every length and count field is checked strictly, at every nesting level (payload,
//!   proposal, transform, attribute, traffic selector, configuration attribute): a length
//!   shorter than its own header, one that runs past its container, or bytes left over
//!   inside a container are errors;
//! - unknown payload types (non-critical), notify types, transform types and IDs,
//!   attribute types, TS types and CP attribute types are data, not errors; an unknown
//!   payload with the critical bit set is [`WireError::UnsupportedCriticalPayload`];
//! - `parse` then `emit` reproduces the input byte for byte, except for reserved fields and
//!   the critical bit of known payloads, which are ignored on receipt and sent as zero
//!   (RFC 7296 §3.2). `emit` computes every length, count, "last substructure" marker and
//!   next-payload field itself; length prefixes are written by a guard that reserves the
//!   field and patches it when the nested emit ends.
//!
//! `emit` never panics. A value that no parse can produce but local code can build (a
//! payload over 64 KiB, more than 255 transforms or traffic selectors, an SPI over 255
//! octets) is [`WireError::TooLong`], and the public emits then append nothing.

mod cp;
mod esp;
mod ike;
mod ipv4;
mod numbers;
mod payload;
mod reader;
mod sa;
mod selector;
mod udp;

pub use cp::{CpAttribute, CpPayload};
pub use esp::{
    pad_len_for, parse_trailer, write_padding, EspHeader, EspTrailer, ESP_HEADER_LEN,
    ESP_TRAILER_LEN, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6, NEXT_HEADER_NONE,
};
pub use ike::{
    Header, Message, FLAG_INITIATOR, FLAG_RESPONSE, FLAG_VERSION, IKEV2_VERSION, IKE_HEADER_LEN,
};
pub use ipv4::{write_ipv4_header, Ipv4Header, IPPROTO_UDP, IPV4_MIN_HEADER_LEN};
pub use numbers::{ExchangeType, NotifyType, PayloadType, ProtocolId, TransformType};
pub use payload::{
    emit_payloads, parse_payloads, AuthPayload, DeletePayload, IdPayload, KePayload, NotifyPayload,
    Payload, PayloadList, SkPayload, SkfPayload, CRITICAL, GENERIC_HEADER_LEN,
};
pub use reader::Reader;
pub use sa::{dh, encr, esn, integ, prf, Attribute, AttributeValue, Proposal, Transform};
pub use selector::TrafficSelector;
pub use udp::{classify_4500, with_non_esp_marker, Udp4500, NAT_KEEPALIVE, NON_ESP_MARKER};

/// Why bytes could not be parsed, or a value emitted ([`WireError::TooLong`]). Each parse
/// variant maps to an IKE INVALID_SYNTAX (or, for [`WireError::UnsupportedCriticalPayload`],
/// UNSUPPORTED_CRITICAL_PAYLOAD) response or to a silently dropped datagram; the choice is
/// the responder's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A fixed-size field runs past the end of the data.
    #[error("truncated")]
    Truncated,
    /// A length field is shorter than its structure's header or runs past its container.
    #[error("bad {what} length {length}")]
    BadLength { what: &'static str, length: usize },
    /// Bytes left over after a structure that should have filled its container.
    #[error("trailing bytes")]
    TrailingBytes,
    /// RFC 7296 §2.5: an unrecognised payload type with the critical bit set.
    #[error("unsupported critical payload type {0}")]
    UnsupportedCriticalPayload(u8),
    /// A well-delimited field has a value the format forbids.
    #[error("invalid syntax: {0}")]
    InvalidSyntax(&'static str),
    /// Emit only: `len` (a structure's octets, or a count) does not fit the field that must
    /// carry it, e.g. more than 255 traffic selectors for the one-octet Number of TSs
    /// (RFC 7296 §3.13) or a payload over the 16-bit Payload Length (§3.2).
    #[error("{what} of {len} does not fit its length or count field")]
    TooLong { what: &'static str, len: usize },
}

#[cfg(test)]
mod tests;

//! The IKE header (RFC 7296 §3.1) and whole IKE messages.
//!
//! Invariants: [`Header::parse`] reads exactly the 28 header octets and judges none of
//! them (version, flags and SPIs are the responder's to check), so a datagram can be routed
//! before it is parsed in full. [`Message::parse`] additionally requires the header's
//! Length to equal the datagram's size and the payload chain to fill the rest exactly.
//! [`Message::emit`] ignores the stored `next_payload` and `length` and writes the values
//! that match the payloads.

use super::payload::{emit_payloads, parse_payloads, Payload, PayloadList};
use super::reader::{all_or_nothing, with_u32_length, Counted, Reader};
use super::{ExchangeType, PayloadType, WireError};

/// Size of the IKE header (RFC 7296 §3.1).
pub const IKE_HEADER_LEN: usize = 28;
/// MjVer 2, MnVer 0 (RFC 7296 §3.1).
pub const IKEV2_VERSION: u8 = 0x20;
/// Flags octet: I(nitiator) bit, set by the original initiator of the IKE SA (RFC 7296 §3.1).
pub const FLAG_INITIATOR: u8 = 0x08;
/// Flags octet: V(ersion) bit, "can speak a higher major version" (RFC 7296 §3.1).
pub const FLAG_VERSION: u8 = 0x10;
/// Flags octet: R(esponse) bit (RFC 7296 §3.1).
pub const FLAG_RESPONSE: u8 = 0x20;

/// The fixed IKE header, field for field (RFC 7296 §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub spi_i: u64,
    pub spi_r: u64,
    pub next_payload: PayloadType,
    /// MjVer in the high nibble, MnVer in the low one.
    pub version: u8,
    pub exchange: ExchangeType,
    pub flags: u8,
    pub message_id: u32,
    /// Length of the whole message, header included.
    pub length: u32,
}

impl Header {
    /// Reads the first [`IKE_HEADER_LEN`] octets of `buf` (which may be longer).
    pub fn parse(buf: &[u8]) -> Result<Header, WireError> {
        let mut r = Reader::new(buf);
        Ok(Header {
            spi_i: r.u64()?,
            spi_r: r.u64()?,
            next_payload: PayloadType(r.u8()?),
            version: r.u8()?,
            exchange: ExchangeType(r.u8()?),
            flags: r.u8()?,
            message_id: r.u32()?,
            length: r.u32()?,
        })
    }

    /// Appends the 28 octets, every field as stored (use [`Message::emit`] to have Next
    /// Payload and Length computed).
    pub fn emit(&self, out: &mut Vec<u8>) {
        self.emit_before_length(self.next_payload, out);
        out.extend_from_slice(&self.length.to_be_bytes());
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    pub fn is_initiator(&self) -> bool {
        self.flags & FLAG_INITIATOR != 0
    }

    /// MjVer (RFC 7296 §2.5: a higher one gets INVALID_MAJOR_VERSION).
    pub fn major_version(&self) -> u8 {
        self.version >> 4
    }

    pub fn minor_version(&self) -> u8 {
        self.version & 0x0f
    }

    /// Octets 0..24: everything but the Length field.
    fn emit_before_length(&self, next_payload: PayloadType, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i.to_be_bytes());
        out.extend_from_slice(&self.spi_r.to_be_bytes());
        out.extend_from_slice(&[next_payload.0, self.version, self.exchange.0, self.flags]);
        out.extend_from_slice(&self.message_id.to_be_bytes());
    }
}

/// An IKE message: header and payload chain. SK and SKF payloads stay encrypted
/// ([`Payload::Sk`], [`Payload::Skf`]); decrypt their body and hand the plaintext to
/// [`parse_payloads`] with their `first_inner` type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses a whole datagram (without the non-ESP marker of port 4500).
    pub fn parse(buf: &[u8]) -> Result<Message, WireError> {
        let header = Header::parse(buf)?;
        if usize::try_from(header.length) != Ok(buf.len()) {
            return Err(WireError::BadLength {
                what: "IKE message",
                length: usize::try_from(header.length).unwrap_or(usize::MAX),
            });
        }
        let body = buf.get(IKE_HEADER_LEN..).ok_or(WireError::Truncated)?;
        let payloads = parse_payloads(header.next_payload, body)?;
        Ok(Message { header, payloads })
    }

    /// The message's bytes, with the header's Next Payload and Length computed from the
    /// payloads (the stored ones are ignored).
    ///
    /// Values no parse produces are [`WireError::TooLong`]: see [`emit_payloads`].
    pub fn emit(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.emit_into(&mut out)?;
        Ok(out)
    }

    /// As [`Message::emit`], appending to `out`; on an error nothing is appended.
    pub fn emit_into(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        all_or_nothing(out, |out| {
            let start = out.len();
            let first = self
                .payloads
                .first()
                .map_or(PayloadType::NONE, Payload::payload_type);
            self.header.emit_before_length(first, out);
            with_u32_length(out, Counted::From(start), "IKE message", |out| {
                emit_payloads(&self.payloads, out).map(|_| ())
            })
        })
    }
}

impl PayloadList for Message {
    fn payload_slice(&self) -> &[Payload] {
        &self.payloads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7296 §3.1 layout, every field distinct.
    const HEADER: [u8; IKE_HEADER_LEN] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // SPIi
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, // SPIr
        0x29, 0x20, 0x25, 0x28, // N, 2.0, INFORMATIONAL, R|I
        0x00, 0x00, 0x00, 0x07, // Message ID
        0x00, 0x00, 0x00, 0x1c, // Length 28
    ];

    fn header() -> Header {
        Header {
            spi_i: 0x0102_0304_0506_0708,
            spi_r: 0x1112_1314_1516_1718,
            next_payload: PayloadType::NOTIFY,
            version: IKEV2_VERSION,
            exchange: ExchangeType::INFORMATIONAL,
            flags: FLAG_RESPONSE | FLAG_INITIATOR,
            message_id: 7,
            length: 28,
        }
    }

    #[test]
    fn header_parse_and_emit_are_byte_exact() {
        let parsed = Header::parse(&HEADER).unwrap();
        assert_eq!(parsed, header());
        assert!(parsed.is_response());
        assert!(parsed.is_initiator());
        assert_eq!((parsed.major_version(), parsed.minor_version()), (2, 0));
        let mut out = Vec::new();
        parsed.emit(&mut out);
        assert_eq!(out, HEADER);
    }

    #[test]
    fn header_parse_reads_only_28_bytes() {
        let mut long = HEADER.to_vec();
        long.extend_from_slice(&[0xff; 10]);
        assert_eq!(Header::parse(&long), Ok(header()));
        assert_eq!(Header::parse(&HEADER[..27]), Err(WireError::Truncated));
    }

    #[test]
    fn empty_message_emits_none_and_its_length() {
        let msg = Message {
            header: Header {
                next_payload: PayloadType::SA,
                length: 0xdead,
                ..header()
            },
            payloads: Vec::new(),
        };
        let bytes = msg.emit().unwrap();
        let mut expected = HEADER;
        expected[16] = 0x00;
        assert_eq!(bytes, expected);
        let reparsed = Message::parse(&bytes).unwrap();
        assert_eq!(reparsed.header.next_payload, PayloadType::NONE);
        assert_eq!(reparsed.header.length, 28);
    }

    #[test]
    fn message_length_must_match_datagram() {
        let mut bytes = HEADER;
        bytes[16] = 0x00;
        assert!(Message::parse(&bytes).is_ok());
        let mut longer = bytes.to_vec();
        longer.push(0x00);
        assert_eq!(
            Message::parse(&longer),
            Err(WireError::BadLength {
                what: "IKE message",
                length: 28
            })
        );
    }
}

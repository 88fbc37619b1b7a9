//! ESP header and trailer framing (RFC 4303 §2). No crypto: the IV, ciphertext and ICV
//! between header and trailer are the data plane's business.
//!
//! Invariants: [`EspHeader::parse`] reads exactly 8 octets; [`parse_trailer`] accepts a
//! decrypted payload only if its Pad Length fits and the padding is the default
//! monotonic 1, 2, 3, … (RFC 4303 §2.4), and never reads outside the plaintext. The writers
//! work in caller-owned buffers, never allocate, and report a buffer too short as
//! [`WireError::Truncated`] rather than panicking.

use super::reader::Reader;
use super::WireError;

/// SPI and Sequence Number (RFC 4303 §2).
pub const ESP_HEADER_LEN: usize = 8;
/// Pad Length and Next Header (RFC 4303 §2).
pub const ESP_TRAILER_LEN: usize = 2;
/// Next Header of a tunnelled IPv4 packet (RFC 4303 §2.6; IANA protocol 4).
pub const NEXT_HEADER_IPV4: u8 = 0x04;
/// Next Header of a tunnelled IPv6 packet (RFC 4303 §2.6; IANA protocol 41).
pub const NEXT_HEADER_IPV6: u8 = 0x29;
/// Next Header of a dummy (TFC) packet, to be dropped (RFC 4303 §2.6; IANA protocol 59).
pub const NEXT_HEADER_NONE: u8 = 0x3b;

/// The cleartext ESP header (RFC 4303 §2.1, §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EspHeader {
    pub spi: u32,
    /// Low 32 bits of the sequence number (the high ones are implicit with ESN).
    pub seq: u32,
}

/// The ESP trailer that ends the encrypted payload (RFC 4303 §2.4, §2.5, §2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EspTrailer {
    pub pad_len: u8,
    pub next_header: u8,
}

impl EspHeader {
    /// Reads the first [`ESP_HEADER_LEN`] octets of `buf` (which may be longer).
    pub fn parse(buf: &[u8]) -> Result<EspHeader, WireError> {
        let mut r = Reader::new(buf);
        Ok(EspHeader {
            spi: r.u32()?,
            seq: r.u32()?,
        })
    }

    pub fn to_bytes(&self) -> [u8; ESP_HEADER_LEN] {
        let [a, b, c, d] = self.spi.to_be_bytes();
        let [e, f, g, h] = self.seq.to_be_bytes();
        [a, b, c, d, e, f, g, h]
    }

    /// Writes the header into the first [`ESP_HEADER_LEN`] octets of `buf`; a shorter `buf`
    /// is [`WireError::Truncated`] and is left untouched.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let slot = buf
            .first_chunk_mut::<ESP_HEADER_LEN>()
            .ok_or(WireError::Truncated)?;
        *slot = self.to_bytes();
        Ok(())
    }
}

impl EspTrailer {
    /// The trailer for `payload_len` octets of payload under a cipher of `block_size`.
    pub fn for_payload(payload_len: usize, block_size: u8, next_header: u8) -> EspTrailer {
        EspTrailer {
            pad_len: pad_len_for(payload_len, block_size),
            next_header,
        }
    }
}

/// Splits a decrypted ESP payload (`Payload Data | Padding | Pad Length | Next Header`,
/// the IV and ICV already removed) into the payload's length and the trailer, checking
/// that the padding fits and is 1, 2, 3, … (RFC 4303 §2.4).
pub fn parse_trailer(plaintext: &[u8]) -> Result<(usize, EspTrailer), WireError> {
    let (rest, &[pad_len, next_header]) = plaintext
        .split_last_chunk::<ESP_TRAILER_LEN>()
        .ok_or(WireError::Truncated)?;
    let bad = WireError::BadLength {
        what: "ESP padding",
        length: usize::from(pad_len),
    };
    let payload_len = rest.len().checked_sub(usize::from(pad_len)).ok_or(bad)?;
    let padding = rest.get(payload_len..).unwrap_or_default();
    let monotonic = padding
        .iter()
        .enumerate()
        .all(|(i, &byte)| usize::from(byte) == i + 1);
    if !monotonic {
        return Err(WireError::InvalidSyntax("ESP padding is not 1, 2, 3, ..."));
    }
    Ok((
        payload_len,
        EspTrailer {
            pad_len,
            next_header,
        },
    ))
}

/// The Pad Length that makes `payload_len + padding + 2` a multiple of the cipher's block
/// size and of 4 (RFC 4303 §2.4: the ciphertext must be 4-octet aligned). No TFC padding.
pub fn pad_len_for(payload_len: usize, block_size: u8) -> u8 {
    let align = usize::from(block_size.max(4));
    let pad = (align - (payload_len % align + ESP_TRAILER_LEN) % align) % align;
    // pad < align ≤ 255.
    u8::try_from(pad).unwrap_or(0)
}

/// Writes the padding 1, 2, …, Pad Length and the trailer into `buf` after `payload_len`
/// octets of payload; returns the length of the whole plaintext to encrypt.
pub fn write_padding(
    buf: &mut [u8],
    payload_len: usize,
    trailer: EspTrailer,
) -> Result<usize, WireError> {
    let pad_len = usize::from(trailer.pad_len);
    let end = payload_len
        .checked_add(pad_len + ESP_TRAILER_LEN)
        .ok_or(WireError::Truncated)?;
    let tail = buf.get_mut(payload_len..end).ok_or(WireError::Truncated)?;
    for (slot, value) in tail.iter_mut().zip(1..=trailer.pad_len) {
        *slot = value;
    }
    if let Some(last_two) = tail.last_chunk_mut::<ESP_TRAILER_LEN>() {
        *last_two = [trailer.pad_len, trailer.next_header];
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parse_and_emit_are_byte_exact() {
        let bytes = [0xc0, 0x01, 0x02, 0x03, 0x00, 0x00, 0x00, 0x2a, 0x99];
        let header = EspHeader::parse(&bytes).unwrap();
        assert_eq!(
            header,
            EspHeader {
                spi: 0xc001_0203,
                seq: 42
            }
        );
        let mut out = [0xff; 10];
        assert_eq!(header.emit(&mut out), Ok(()));
        assert_eq!(out[..8], bytes[..8]);
        assert_eq!(out[8..], [0xff, 0xff]);
        let mut short = [0xff; 7];
        assert_eq!(header.emit(&mut short), Err(WireError::Truncated));
        assert_eq!(short, [0xff; 7]);
        assert_eq!(EspHeader::parse(&bytes[..7]), Err(WireError::Truncated));
    }

    #[test]
    fn trailer_parse_checks_padding() {
        // Payload "ab", padding 1 2 3, Pad Length 3, Next Header IPv4.
        let plain = [0x61, 0x62, 0x01, 0x02, 0x03, 0x03, 0x04];
        assert_eq!(
            parse_trailer(&plain),
            Ok((
                2,
                EspTrailer {
                    pad_len: 3,
                    next_header: NEXT_HEADER_IPV4
                }
            ))
        );
        assert_eq!(
            parse_trailer(&[0x00, 0x3b]),
            Ok((
                0,
                EspTrailer {
                    pad_len: 0,
                    next_header: NEXT_HEADER_NONE
                }
            ))
        );
        let mut bad = plain;
        bad[3] = 0x00;
        assert!(matches!(
            parse_trailer(&bad),
            Err(WireError::InvalidSyntax(_))
        ));
        assert!(matches!(
            parse_trailer(&[0x01, 0x02, 0x03, 0x04]),
            Err(WireError::BadLength { .. })
        ));
        assert_eq!(parse_trailer(&[0x04]), Err(WireError::Truncated));
    }

    #[test]
    fn max_padding_round_trips() {
        let mut buf = [0u8; 300];
        let trailer = EspTrailer {
            pad_len: 0xff,
            next_header: NEXT_HEADER_IPV6,
        };
        let end = write_padding(&mut buf, 10, trailer).unwrap();
        assert_eq!(end, 10 + 255 + 2);
        assert_eq!(parse_trailer(&buf[..end]), Ok((10, trailer)));
    }

    #[test]
    fn padding_aligns_to_block_and_four() {
        for (len, block, pad) in [(0, 16, 14), (14, 16, 0), (15, 16, 15), (3, 0, 3), (6, 8, 0)] {
            assert_eq!(pad_len_for(len, block), pad, "len {len} block {block}");
        }
        let mut buf = [0xee; 32];
        let trailer = EspTrailer::for_payload(13, 16, NEXT_HEADER_IPV4);
        assert_eq!(trailer.pad_len, 1);
        assert_eq!(write_padding(&mut buf, 13, trailer), Ok(16));
        assert_eq!(buf[13..16], [0x01, 0x01, 0x04]);
        assert_eq!(
            write_padding(&mut buf[..15], 13, trailer),
            Err(WireError::Truncated)
        );
    }
}

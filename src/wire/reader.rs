//! Bounds-checked reading of untrusted bytes, and length prefixes written by a guard.
//!
//! Invariants: a [`Reader`] only ever hands out sub-slices of the slice it was made from;
//! every read checks the remaining length first and fails with [`WireError::Truncated`]
//! rather than panicking; [`Reader::finish`] is how a parser asserts that a container was
//! consumed exactly. On the writing side, [`with_u16_length`] and [`with_u32_length`]
//! reserve a length field, run the nested emit, then patch the field with the number of
//! bytes actually written, so no length is ever computed twice.

use super::WireError;

/// A cursor over untrusted bytes (rustls `codec::Reader` style).
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(WireError::Truncated)?;
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(WireError::Truncated)?;
        self.rest = tail;
        Ok(*head)
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        self.array::<1>().map(|[b]| b)
    }

    pub fn u16(&mut self) -> Result<u16, WireError> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        self.array().map(u32::from_be_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, WireError> {
        self.array().map(u64::from_be_bytes)
    }

    /// A child reader over the next `len` bytes, which this reader skips.
    pub fn sub(&mut self, len: usize) -> Result<Reader<'a>, WireError> {
        self.take(len).map(Reader::new)
    }

    /// A child reader over the body of a structure whose `declared` length counts its own
    /// `header_len`-byte header, which the caller has already read. A declared length
    /// shorter than the header or running past this reader is [`WireError::BadLength`].
    pub fn nested(
        &mut self,
        declared: usize,
        header_len: usize,
        what: &'static str,
    ) -> Result<Reader<'a>, WireError> {
        let bad = WireError::BadLength {
            what,
            length: declared,
        };
        let body_len = declared.checked_sub(header_len).ok_or(bad.clone())?;
        self.sub(body_len).map_err(|_| bad)
    }

    /// The next `len` bytes, where `len` came from a length field: running past the end is
    /// [`WireError::BadLength`] rather than [`WireError::Truncated`].
    pub fn take_declared(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        self.take(len)
            .map_err(|_| WireError::BadLength { what, length: len })
    }

    /// Everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Succeeds only if every byte was read.
    pub fn finish(self) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes)
        }
    }
}

/// Where the region counted by a length field starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counted {
    /// At this offset of the output (the structure's first byte, before the field).
    From(usize),
    /// Just after the length field itself.
    AfterField,
}

/// Writes a big-endian 16-bit length field, runs `body`, then patches the field with the
/// number of bytes counted from `counted` to the end of the output.
///
/// # Panics
/// If the counted length exceeds `u16::MAX`: only a locally built value can be that large.
pub(crate) fn with_u16_length<R>(
    out: &mut Vec<u8>,
    counted: Counted,
    body: impl FnOnce(&mut Vec<u8>) -> R,
) -> R {
    with_length(out, counted, body, |len| {
        u16::try_from(len)
            .expect("nested structure longer than its 16-bit length field allows")
            .to_be_bytes()
    })
}

/// As [`with_u16_length`] for a 32-bit field (the IKE header's Length).
///
/// # Panics
/// If the counted length exceeds `u32::MAX`.
pub(crate) fn with_u32_length<R>(
    out: &mut Vec<u8>,
    counted: Counted,
    body: impl FnOnce(&mut Vec<u8>) -> R,
) -> R {
    with_length(out, counted, body, |len| {
        u32::try_from(len)
            .expect("message longer than its 32-bit length field allows")
            .to_be_bytes()
    })
}

/// A count that must fit one octet on the wire (number of transforms, of TSs, SPI size).
///
/// # Panics
/// If `n > 255`: only a locally built value can hold that many.
pub(crate) fn count_u8(n: usize, what: &'static str) -> u8 {
    match u8::try_from(n) {
        Ok(n) => n,
        Err(_) => panic!("{what}: {n} does not fit an 8-bit field"),
    }
}

/// As [`count_u8`] for a 16-bit count.
///
/// # Panics
/// If `n > 65535`.
pub(crate) fn count_u16(n: usize, what: &'static str) -> u16 {
    match u16::try_from(n) {
        Ok(n) => n,
        Err(_) => panic!("{what}: {n} does not fit a 16-bit field"),
    }
}

fn with_length<R, const N: usize>(
    out: &mut Vec<u8>,
    counted: Counted,
    body: impl FnOnce(&mut Vec<u8>) -> R,
    encode: impl FnOnce(usize) -> [u8; N],
) -> R {
    let field_at = out.len();
    out.extend_from_slice(&[0; N]);
    let start = match counted {
        Counted::From(offset) => offset,
        Counted::AfterField => field_at + N,
    };
    let result = body(out);
    let field = encode(out.len().saturating_sub(start));
    if let Some(slot) = out.get_mut(field_at..field_at + N) {
        slot.copy_from_slice(&field);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_fields_and_rejects_overrun() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
        assert_eq!(r.u8(), Ok(0x01));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.u8(), Err(WireError::Truncated));
        assert!(r.finish().is_ok());
    }

    #[test]
    fn failed_read_consumes_nothing() {
        let mut r = Reader::new(&[0xaa, 0xbb, 0xcc]);
        assert_eq!(r.u32(), Err(WireError::Truncated));
        assert_eq!(r.take(4), Err(WireError::Truncated));
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.u64(), Err(WireError::Truncated));
        assert_eq!(r.take(3), Ok(&[0xaa, 0xbb, 0xcc][..]));
    }

    #[test]
    fn sub_reader_is_bounded_and_finish_rejects_leftovers() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03, 0x04]);
        let mut child = r.sub(2).unwrap();
        assert_eq!(child.u8(), Ok(0x01));
        assert_eq!(child.clone().finish(), Err(WireError::TrailingBytes));
        assert_eq!(child.u16(), Err(WireError::Truncated));
        assert_eq!(r.rest(), &[0x03, 0x04]);
        assert!(r.is_empty());
    }

    #[test]
    fn nested_checks_declared_length_both_ways() {
        let data = [0x00; 6];
        let bad = |length| WireError::BadLength { what: "x", length };
        assert_eq!(Reader::new(&data).nested(3, 4, "x").err(), Some(bad(3)));
        assert_eq!(Reader::new(&data).nested(11, 4, "x").err(), Some(bad(11)));
        assert_eq!(
            Reader::new(&data).nested(10, 4, "x").unwrap().remaining(),
            6
        );
        assert_eq!(
            Reader::new(&data).take_declared(7, "y"),
            Err(WireError::BadLength {
                what: "y",
                length: 7
            })
        );
    }

    #[test]
    fn length_guard_patches_field() {
        let mut out = vec![0xee];
        with_u16_length(&mut out, Counted::From(0), |out| out.extend([0x01, 0x02]));
        assert_eq!(out, [0xee, 0x00, 0x05, 0x01, 0x02]);

        let mut out = Vec::new();
        with_u16_length(&mut out, Counted::AfterField, |out| out.push(0x09));
        assert_eq!(out, [0x00, 0x01, 0x09]);

        let mut out = Vec::new();
        with_u32_length(&mut out, Counted::From(0), |_| ());
        assert_eq!(out, [0x00, 0x00, 0x00, 0x04]);
    }

    #[test]
    #[should_panic(expected = "16-bit length")]
    fn length_guard_refuses_overflow() {
        let mut out = Vec::new();
        with_u16_length(&mut out, Counted::AfterField, |out| {
            out.resize(2 + 0x1_0000, 0);
        });
    }
}

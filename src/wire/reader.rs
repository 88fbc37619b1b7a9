//! Bounds-checked reading of untrusted bytes, and length prefixes written by a guard.
//!
//! Invariants: a [`Reader`] only ever hands out sub-slices of the slice it was made from;
//! every read checks the remaining length first and fails with [`WireError::Truncated`]
//! rather than panicking; [`Reader::finish`] is how a parser asserts that a container was
//! consumed exactly. On the writing side, [`with_u16_length`] and [`with_u32_length`]
//! reserve a length field, run the nested emit, then patch the field with the number of
//! bytes actually written, so no length is ever computed twice; a length or [`count`] too
//! large for its field is [`WireError::TooLong`], never a panic.

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
/// A counted length over `u16::MAX` is [`WireError::TooLong`] naming `what` (only a locally
/// built value can be that large), as is any error of `body`. On an error `out` holds a
/// partial structure: [`all_or_nothing`] at the top of the emit takes it back out.
pub(crate) fn with_u16_length<R>(
    out: &mut Vec<u8>,
    counted: Counted,
    what: &'static str,
    body: impl FnOnce(&mut Vec<u8>) -> Result<R, WireError>,
) -> Result<R, WireError> {
    with_length(out, counted, what, body, |len| {
        u16::try_from(len).ok().map(u16::to_be_bytes)
    })
}

/// As [`with_u16_length`] for a 32-bit field (the IKE header's Length).
pub(crate) fn with_u32_length<R>(
    out: &mut Vec<u8>,
    counted: Counted,
    what: &'static str,
    body: impl FnOnce(&mut Vec<u8>) -> Result<R, WireError>,
) -> Result<R, WireError> {
    with_length(out, counted, what, body, |len| {
        u32::try_from(len).ok().map(u32::to_be_bytes)
    })
}

/// A count or size that must fit its field: `count::<u8>` for one octet (Num Transforms,
/// Number of TSs, SPI Size), `count::<u16>` for two (Num of SPIs). One that does not fit is
/// [`WireError::TooLong`] naming `what`: only a locally built value can hold that many.
pub(crate) fn count<T: TryFrom<usize>>(n: usize, what: &'static str) -> Result<T, WireError> {
    T::try_from(n).map_err(|_| WireError::TooLong { what, len: n })
}

/// Runs the emit `body` on `out`; if it fails, truncates `out` to its length before, so a
/// failed emit appends nothing (the public emits' promise).
pub(crate) fn all_or_nothing<R>(
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<R, WireError>,
) -> Result<R, WireError> {
    let before = out.len();
    let result = body(out);
    if result.is_err() {
        out.truncate(before);
    }
    result
}

fn with_length<R, const N: usize>(
    out: &mut Vec<u8>,
    counted: Counted,
    what: &'static str,
    body: impl FnOnce(&mut Vec<u8>) -> Result<R, WireError>,
    encode: impl FnOnce(usize) -> Option<[u8; N]>,
) -> Result<R, WireError> {
    let field_at = out.len();
    out.extend_from_slice(&[0; N]);
    let start = match counted {
        Counted::From(offset) => offset,
        Counted::AfterField => field_at + N,
    };
    let result = body(out)?;
    let len = out.len().saturating_sub(start);
    let field = encode(len).ok_or(WireError::TooLong { what, len })?;
    if let Some(slot) = out.get_mut(field_at..field_at + N) {
        slot.copy_from_slice(&field);
    }
    Ok(result)
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
        let ok = with_u16_length(&mut out, Counted::From(0), "x", |out| {
            out.extend([0x01, 0x02]);
            Ok(7)
        });
        assert_eq!(ok, Ok(7));
        assert_eq!(out, [0xee, 0x00, 0x05, 0x01, 0x02]);

        let mut out = Vec::new();
        with_u16_length(&mut out, Counted::AfterField, "x", |out| {
            out.push(0x09);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [0x00, 0x01, 0x09]);

        let mut out = Vec::new();
        with_u32_length(&mut out, Counted::From(0), "x", |_| Ok(())).unwrap();
        assert_eq!(out, [0x00, 0x00, 0x00, 0x04]);
    }

    /// A body of `len` octets counted after a 16-bit field.
    fn u16_guard_over(len: usize) -> (Result<(), WireError>, Vec<u8>) {
        let mut out = Vec::new();
        let result = with_u16_length(&mut out, Counted::AfterField, "body", |out| {
            out.resize(2 + len, 0xab);
            Ok(())
        });
        (result, out)
    }

    #[test]
    fn length_guard_refuses_overflow_at_the_boundary() {
        let (result, out) = u16_guard_over(0xffff);
        assert_eq!(result, Ok(()));
        assert_eq!(out[..2], [0xff, 0xff]);
        let (result, _) = u16_guard_over(0x1_0000);
        assert_eq!(
            result,
            Err(WireError::TooLong {
                what: "body",
                len: 0x1_0000
            })
        );
    }

    #[test]
    fn length_guard_passes_the_body_error_on() {
        let mut out = Vec::new();
        let inner = WireError::TooLong {
            what: "inner",
            len: 256,
        };
        let result: Result<(), _> = with_u16_length(&mut out, Counted::AfterField, "outer", |_| {
            Err(inner.clone())
        });
        assert_eq!(result, Err(inner));
    }

    #[test]
    fn counts_refuse_overflow_at_the_boundary() {
        assert_eq!(count::<u8>(0xff, "n"), Ok(0xff));
        assert_eq!(
            count::<u8>(0x100, "n"),
            Err(WireError::TooLong {
                what: "n",
                len: 0x100
            })
        );
        assert_eq!(count::<u16>(0xffff, "n"), Ok(0xffff));
        assert_eq!(
            count::<u16>(0x1_0000, "n"),
            Err(WireError::TooLong {
                what: "n",
                len: 0x1_0000
            })
        );
    }

    #[test]
    fn all_or_nothing_takes_a_failed_emit_back_out() {
        let mut out = vec![0x01];
        let result = all_or_nothing(&mut out, |out| {
            with_u16_length(out, Counted::AfterField, "x", |out| {
                out.push(0x02);
                count::<u8>(0x100, "n").map(|_| ())
            })
        });
        assert!(result.is_err());
        assert_eq!(out, [0x01]);
        assert_eq!(
            all_or_nothing(&mut out, |out| {
                out.push(0x03);
                Ok(())
            }),
            Ok(())
        );
        assert_eq!(out, [0x01, 0x03]);
    }
}

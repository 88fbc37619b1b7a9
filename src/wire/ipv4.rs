//! The IPv4 header (RFC 791 §3.1) as the data plane needs it: the inner packets ESP carries
//! and the TUN device hands over are routed by their addresses, never reassembled or
//! rewritten, so a read-only view of the fixed 20 octets is all it takes.
//!
//! Invariants: [`Ipv4Header::parse`] accepts any slice of at least 20 octets with version 4
//! and nothing else; it never panics and never allocates, and its accessors are plain loads
//! from the 20 octets it checked (no bounds checks left on the hot path). It does not judge
//! IHL, Total Length or the checksum: each reader checks the fields it relies on (ESP
//! checks Total Length against the decrypted bytes). [`write_ipv4_header`] writes a
//! header without options into a caller-owned buffer, checksum included.

use std::net::Ipv4Addr;

use super::WireError;

/// An IPv4 header without options (IHL 5).
pub const IPV4_MIN_HEADER_LEN: usize = 20;
/// Protocol number of UDP (IANA).
pub const IPPROTO_UDP: u8 = 17;

/// The fixed part of an IPv4 header at the start of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Header<'a> {
    fixed: &'a [u8; IPV4_MIN_HEADER_LEN],
}

impl<'a> Ipv4Header<'a> {
    /// The header at the start of `packet` (which may be longer): `None` if `packet` is
    /// shorter than 20 octets or its version is not 4.
    #[inline]
    pub fn parse(packet: &'a [u8]) -> Option<Self> {
        let fixed = packet.first_chunk::<IPV4_MIN_HEADER_LEN>()?;
        (fixed[0] >> 4 == 4).then_some(Self { fixed })
    }

    /// Always 4 (what `parse` checked).
    #[inline]
    pub fn version(&self) -> u8 {
        self.fixed[0] >> 4
    }

    /// Internet Header Length in 32-bit words, as sent (5 without options; not checked).
    #[inline]
    pub fn ihl(&self) -> u8 {
        self.fixed[0] & 0x0f
    }

    /// The header's length in octets per IHL, as sent (not checked against the packet).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// Total Length: header and data in octets, as sent (not checked against the packet).
    #[inline]
    pub fn total_len(&self) -> usize {
        usize::from(u16::from_be_bytes([self.fixed[2], self.fixed[3]]))
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.fixed[8]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.fixed[9]
    }

    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        let [.., a, b, c, d, _, _, _, _] = *self.fixed;
        Ipv4Addr::new(a, b, c, d)
    }

    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        let [.., a, b, c, d] = *self.fixed;
        Ipv4Addr::new(a, b, c, d)
    }
}

/// Writes a 20-octet IPv4 header (no options, TTL 64, no fragmentation fields) with its
/// checksum into `out[..20]`; a shorter `out` is [`WireError::Truncated`] and is left
/// untouched. `total_len` counts the header and the data after it.
pub fn write_ipv4_header(
    out: &mut [u8],
    total_len: u16,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<(), WireError> {
    let h = out
        .first_chunk_mut::<IPV4_MIN_HEADER_LEN>()
        .ok_or(WireError::Truncated)?;
    *h = [0; IPV4_MIN_HEADER_LEN];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total_len.to_be_bytes());
    h[8] = 64;
    h[9] = protocol;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    // RFC 791 §3.1: the one's complement of the one's complement sum of the 16-bit words.
    let sum = h
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);

    #[test]
    fn written_header_reads_back() {
        let mut p = [0xaa_u8; 48];
        write_ipv4_header(&mut p, 48, IPPROTO_UDP, SRC, DST).unwrap();
        let h = Ipv4Header::parse(&p).unwrap();
        assert_eq!(h.version(), 4);
        assert_eq!((h.ihl(), h.header_len()), (5, 20));
        assert_eq!(h.total_len(), 48);
        assert_eq!((h.ttl(), h.protocol()), (64, IPPROTO_UDP));
        assert_eq!((h.src(), h.dst()), (SRC, DST));
        assert_eq!(&p[20..], &[0xaa; 28], "only the header is written");
    }

    #[test]
    fn checksum_matches_a_known_header() {
        // The header of Wikipedia's "IPv4 header checksum" example, whose checksum is b861
        // with DF set; without DF (0x4000 less in the sum) it is f861. And the sum over a
        // correct header, checksum included, is 0xffff.
        let mut p = [0u8; 20];
        write_ipv4_header(
            &mut p,
            0x73,
            17,
            [192, 168, 0, 1].into(),
            [192, 168, 0, 199].into(),
        )
        .unwrap();
        assert_eq!(&p[10..12], &[0xf8, 0x61]);
        let sum: u32 = p
            .chunks_exact(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff);
    }

    #[test]
    fn short_or_not_v4_is_none_and_fields_are_as_sent() {
        let mut p = [0u8; 20];
        write_ipv4_header(&mut p, 20, 1, SRC, DST).unwrap();
        for len in 0..20 {
            assert_eq!(Ipv4Header::parse(&p[..len]), None, "{len} octets");
        }
        for version in [0u8, 1, 6, 15] {
            let mut q = p;
            q[0] = version << 4 | 5;
            assert_eq!(Ipv4Header::parse(&q), None, "version {version}");
        }
        // IHL and Total Length are reported, not judged.
        let mut q = p;
        q[0] = 0x40;
        q[2..4].copy_from_slice(&[0xff, 0xff]);
        let h = Ipv4Header::parse(&q).unwrap();
        assert_eq!((h.ihl(), h.header_len(), h.total_len()), (0, 0, 0xffff));
        let mut short = [0u8; 19];
        assert_eq!(
            write_ipv4_header(&mut short, 20, 1, SRC, DST),
            Err(WireError::Truncated)
        );
        assert_eq!(short, [0; 19]);
    }

    #[test]
    fn garbage_never_panics() {
        // Every length up to 64 with pseudo-random contents: parse and every accessor.
        let mut x = 0x2545_f491_u32;
        let mut buf = [0u8; 64];
        for round in 0..4096 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let len = round % 65;
            if let Some(h) = Ipv4Header::parse(&buf[..len]) {
                assert!(len >= 20);
                assert_eq!(h.version(), 4);
                let _ = (h.header_len(), h.total_len(), h.ttl(), h.protocol());
                assert_eq!(h.src().octets(), buf[12..16]);
                assert_eq!(h.dst().octets(), buf[16..20]);
            }
        }
    }
}

//! Demultiplexing UDP port 4500 (RFC 3948 §2.2, RFC 7296 §2.23): NAT keepalives, IKE
//! behind a non-ESP marker, and UDP-encapsulated ESP.
//!
//! Invariant: [`classify_4500`] looks at no more than the first 8 octets, returns borrowed
//! sub-slices of its input, and accepts as ESP only datagrams that hold a full ESP header
//! (an ESP SPI is never zero, RFC 4303 §2.1, which is what makes the marker unambiguous).

use super::esp::ESP_HEADER_LEN;
use super::WireError;

/// Four zero octets in place of an SPI: "an IKE message follows" (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0x00; 4];
/// The one-octet NAT-keepalive payload (RFC 3948 §2.3).
pub const NAT_KEEPALIVE: u8 = 0xff;

/// What a datagram received on port 4500 carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Udp4500<'a> {
    /// RFC 3948 §2.3: drop it (it only refreshes the NAT mapping).
    Keepalive,
    /// The IKE message, non-ESP marker stripped.
    Ike(&'a [u8]),
    /// The whole ESP packet, starting with its SPI.
    Esp(&'a [u8]),
}

/// Classifies a UDP payload received on port 4500 (RFC 3948 §2.2).
pub fn classify_4500(datagram: &[u8]) -> Result<Udp4500<'_>, WireError> {
    match datagram {
        [NAT_KEEPALIVE] => Ok(Udp4500::Keepalive),
        [0x00, 0x00, 0x00, 0x00, ike @ ..] => Ok(Udp4500::Ike(ike)),
        esp if esp.len() >= ESP_HEADER_LEN => Ok(Udp4500::Esp(esp)),
        _ => Err(WireError::Truncated),
    }
}

/// An IKE message ready to send from or to port 4500: the non-ESP marker, then `ike`.
pub fn with_non_esp_marker(ike: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(NON_ESP_MARKER.len() + ike.len());
    out.extend_from_slice(&NON_ESP_MARKER);
    out.extend_from_slice(ike);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_three_kinds() {
        assert_eq!(classify_4500(&[0xff]), Ok(Udp4500::Keepalive));
        let ike = with_non_esp_marker(&[0x12, 0x34]);
        assert_eq!(ike, [0x00, 0x00, 0x00, 0x00, 0x12, 0x34]);
        assert_eq!(classify_4500(&ike), Ok(Udp4500::Ike(&[0x12, 0x34])));
        let esp = [0xc0, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01];
        assert_eq!(classify_4500(&esp), Ok(Udp4500::Esp(&esp)));
    }

    #[test]
    fn rejects_short_or_odd_datagrams() {
        for bad in [
            &[][..],
            &[0x00],
            &[0xfe],
            &[0xff, 0xff],
            &[0x00, 0x00, 0x00],
            &[0xc0, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00],
        ] {
            assert_eq!(classify_4500(bad), Err(WireError::Truncated), "{bad:02x?}");
        }
        assert_eq!(classify_4500(&[0x00; 4]), Ok(Udp4500::Ike(&[])));
    }
}

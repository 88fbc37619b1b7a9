//! The inner MTU of the TUN device, gateway and client alike: the largest inner packet whose
//! ESP-in-UDP datagram still fits a 1500-byte path, so nothing the tunnel carries needs
//! fragmenting outside it.

use crate::ike::EspSuite;

/// The TUN MTU for Child SAs of `esp`: 1500 less IPv4(20) + UDP(8) + ESP header(8) + IV +
/// ICV, rounded down to the cipher's block with room for the 2 trailer bytes (pad length,
/// next header).
pub fn tun_mtu(esp: &EspSuite) -> u16 {
    let iv = esp.encr.iv_len();
    let block = esp.encr.block_len();
    let icv = esp.integ.icv_len();
    let room = 1500 - 20 - 8 - 8 - iv - icv;
    let padded = room / block * block;
    // Lower bound keeps any configured suite usable; the values here are all small.
    (padded - 2).max(576) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{EncrAlg, IntegAlg};

    const ENCR: [EncrAlg; 5] = [
        EncrAlg::DesCbc,
        EncrAlg::TripleDesCbc,
        EncrAlg::AesCbc128,
        EncrAlg::AesCbc192,
        EncrAlg::AesCbc256,
    ];
    const INTEG: [IntegAlg; 5] = [
        IntegAlg::HmacMd5_96,
        IntegAlg::HmacSha1_96,
        IntegAlg::HmacSha256_128,
        IntegAlg::HmacSha384_192,
        IntegAlg::HmacSha512_256,
    ];

    #[test]
    fn the_default_suites_mtu() {
        let mtu = |encr, integ| tun_mtu(&EspSuite { encr, integ });
        assert_eq!(mtu(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96), 1422);
        assert_eq!(mtu(EncrAlg::AesCbc256, IntegAlg::HmacSha512_256), 1406);
        assert_eq!(mtu(EncrAlg::DesCbc, IntegAlg::HmacSha1_96), 1438);
    }

    #[test]
    fn a_full_inner_packet_fits_1500_bytes_after_esp_in_udp() {
        for encr in ENCR {
            for integ in INTEG {
                let mtu = usize::from(tun_mtu(&EspSuite { encr, integ }));
                let block = encr.block_len();
                // Inner packet + 2 trailer bytes, padded to the block (RFC 4303 §2.4).
                let encrypted = (mtu + 2).div_ceil(block) * block;
                let datagram = 20 + 8 + 8 + encr.iv_len() + encrypted + integ.icv_len();
                assert!(datagram <= 1500, "{encr:?}/{integ:?}: {datagram}");
                assert!(datagram > 1500 - block, "{encr:?}/{integ:?}: room left");
            }
        }
    }
}

//! The SA pair that the ipsec unit tests, `benches/esp.rs` and the ESP fuzz target share.
//! Compiled always (hidden from the docs): benches and the fuzz crate cannot see
//! `#[cfg(test)]` items. Nothing in the daemon uses it.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{ChildSaSpec, Ipv4Range};
use crate::crypto::{EncrAlg, IntegAlg};
use crate::secret::SecretBytes;

/// `len` key octets derived from `seed` (different seeds, different keys).
fn key(len: usize, seed: u8) -> SecretBytes {
    // DES keys must not be weak; these patterns are not.
    SecretBytes::new(
        (0..len)
            .map(|i| {
                seed.wrapping_mul(31)
                    .wrapping_add((i as u8).wrapping_mul(7))
                    .wrapping_add(1)
            })
            .collect(),
    )
}

/// The gateway's view of a pair, and the client's mirror of it.
pub fn spec_pair(encr: EncrAlg, integ: IntegAlg) -> (ChildSaSpec, ChildSaSpec) {
    let gw = ChildSaSpec {
        inbound_spi: 0xc0ffee01,
        outbound_spi: 0xc1e47002,
        encr,
        integ,
        inbound_encr_key: key(encr.key_len(), 1),
        inbound_integ_key: key(integ.key_len(), 2),
        outbound_encr_key: key(encr.key_len(), 3),
        outbound_integ_key: key(integ.key_len(), 4),
        client_vip: Ipv4Addr::new(10, 0, 0, 5),
        local_ts: vec![Ipv4Range {
            start: Ipv4Addr::new(192, 168, 0, 0),
            end: Ipv4Addr::new(192, 168, 0, 255),
        }],
        local: "192.0.2.1:4500".parse().unwrap(),
        remote: "198.51.100.7:4500".parse().unwrap(),
        udp_encap: true,
        lifetime: Duration::from_secs(3600),
    };
    // The client seals with the gateway's inbound keys towards the gateway's inbound SPI.
    let client = gw.mirrored();
    (gw, client)
}

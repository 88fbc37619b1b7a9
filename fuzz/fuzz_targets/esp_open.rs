//! ESP open on arbitrary packets: never panics, never accepts what it did not authenticate.
#![no_main]

use std::time::Duration;

use ipsec_server::crypto::{EncrAlg, IntegAlg};
use ipsec_server::ipsec::{ChildSaSpec, InboundSa, Ipv4Range};
use ipsec_server::secret::SecretBytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let spec = ChildSaSpec {
        inbound_spi: 0x1000,
        outbound_spi: 0x2000,
        encr: EncrAlg::AesCbc128,
        integ: IntegAlg::HmacSha1_96,
        inbound_encr_key: SecretBytes::from_slice(&[1; 16]),
        inbound_integ_key: SecretBytes::from_slice(&[2; 20]),
        outbound_encr_key: SecretBytes::from_slice(&[3; 16]),
        outbound_integ_key: SecretBytes::from_slice(&[4; 20]),
        client_vip: "10.0.0.5".parse().unwrap(),
        local_ts: vec![Ipv4Range { start: "192.168.0.0".parse().unwrap(), end: "192.168.0.255".parse().unwrap() }],
        local: "192.0.2.1:4500".parse().unwrap(),
        remote: "198.51.100.7:4500".parse().unwrap(),
        udp_encap: true,
        lifetime: Duration::from_secs(60),
    };
    let sa = InboundSa::new(&spec).unwrap();
    let mut out = vec![0u8; 4096];
    // Random bytes cannot carry a valid HMAC-SHA1-96 ICV in practice.
    assert!(sa.open(data, &mut out).is_err());
});

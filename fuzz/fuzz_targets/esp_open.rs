//! ESP open on arbitrary packets: never panics, never accepts what it did not authenticate.
#![no_main]

use ipsec_server::crypto::{EncrAlg, IntegAlg};
use ipsec_server::ipsec::fixtures::spec_pair;
use ipsec_server::ipsec::InboundSa;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (spec, _) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    let sa = InboundSa::new(&spec).unwrap();
    let mut out = vec![0u8; 4096];
    // Random bytes cannot carry a valid HMAC-SHA1-96 ICV in practice.
    assert!(sa.open(data, &mut out).is_err());
});

//! ESP open on arbitrary packets: never panics, never accepts what it did not authenticate —
//! one at a time (`open`) and as a run of up to eight (`open_many`, the worker's path).
#![no_main]

use ipsec_server::crypto::{EncrAlg, IntegAlg, PAR_BLOCKS};
use ipsec_server::ipsec::fixtures::spec_pair;
use ipsec_server::ipsec::{EspError, InboundSa};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (spec, _) = spec_pair(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96);
    let sa = InboundSa::new(&spec).unwrap();
    let mut out = vec![0u8; 4096];
    // Random bytes cannot carry a valid HMAC-SHA1-96 ICV in practice.
    assert!(sa.open(data, &mut out).is_err());
    // The same bytes cut into a run of 1..=8 packets (the first byte picks how many).
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k) % PAR_BLOCKS + 1;
    let packets: Vec<&[u8]> = rest.chunks(rest.len().div_ceil(k).max(1)).collect();
    let mut bufs = vec![vec![0u8; 4096]; packets.len()];
    let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    let mut results = vec![Err(EspError::Truncated); packets.len()];
    sa.open_many(&packets, &mut outs, &mut results);
    assert!(results.iter().all(Result::is_err));
});

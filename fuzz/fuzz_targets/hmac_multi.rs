//! Multi-buffer HMAC against one at a time: `Integ::sign_many` (HMAC-SHA1's interleaved
//! SHA-NI lanes, `src/crypto/sha1_multi.rs`) writes, for any number of messages of any
//! lengths in one call, exactly the ICVs `Integ::sign` (the `hmac` crate) writes, and
//! `Integ::verify` accepts them; `Integ::verify_many` accepts them all, and refuses exactly
//! the one whose ICV the input flips. The other HMACs (one by one inside) ride along.
#![no_main]

use arbitrary::Arbitrary;
use ipsec_server::crypto::{Integ, IntegAlg};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    alg: u8,
    key: [u8; 64],
    msgs: Vec<Vec<u8>>,
    /// Which item's ICV `verify_many` sees with a flipped bit.
    flip: u8,
}

fuzz_target!(|input: Input| {
    let alg = IntegAlg::ALL[usize::from(input.alg) % IntegAlg::ALL.len()];
    let integ = Integ::new(alg, &input.key[..alg.key_len()]).expect("key of the right length");
    let icv_len = alg.icv_len();
    // Each item: message || room for the ICV.
    let mut items: Vec<Vec<u8>> = input
        .msgs
        .iter()
        .take(32)
        .map(|m| [m.as_slice(), &vec![0u8; icv_len]].concat())
        .collect();
    let mut refs: Vec<&mut [u8]> = items.iter_mut().map(|i| i.as_mut_slice()).collect();
    integ.sign_many(&mut refs);
    for (item, msg) in items.iter().zip(&input.msgs) {
        let mut want = vec![0u8; icv_len];
        integ.sign(msg, &mut want);
        assert_eq!(
            &item[msg.len()..],
            &want[..],
            "{alg:?}, message of {} bytes",
            msg.len()
        );
        assert!(integ.verify(msg, &want));
    }
    let flip = usize::from(input.flip) % (items.len() + 1);
    if let Some(item) = items.get_mut(flip) {
        *item.last_mut().expect("an ICV") ^= 0x80;
    }
    let refs: Vec<&[u8]> = items.iter().map(|i| i.as_slice()).collect();
    let mut ok = vec![false; refs.len()];
    integ.verify_many(&refs, &mut ok);
    for (i, ok) in ok.iter().enumerate() {
        assert_eq!(*ok, i != flip, "{alg:?}, item {i} of {}", refs.len());
    }
});
